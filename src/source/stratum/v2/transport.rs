//! The Noise-encrypted SV2 connection, SRI's `NoiseTcpStream` with frames turned into
//! messages: the driver's only SV2 I/O.

use std::time::Duration;

use stratum_apps::network_helpers::Error;
use stratum_apps::network_helpers::noise_stream::{NoiseTcpReadHalf, NoiseTcpStream, NoiseTcpWriteHalf};
use stratum_apps::stratum_core::codec_sv2::Error as CodecError;
use stratum_apps::stratum_core::codec_sv2::{EncodableFrame, MessageFrame};
use stratum_apps::stratum_core::framing_sv2::header::Header;
use stratum_apps::stratum_core::noise_sv2::{Error as NoiseError, Initiator};
use stratum_apps::stratum_core::parsers_sv2::AnyMessage;
use stratum_apps::utils::types::OutboundFrame;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{AuthorityKey, Message};
use crate::source::stratum::core::{ConnectError, FrameError, TransportError};

/// How long the Noise handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the Noise handshake as initiator, checking the pool's certificate against its
/// authority key: a pool that cannot prove the key is refused here.
pub async fn connect(tcp: TcpStream, authority: &AuthorityKey) -> Result<(NoiseTcpReadHalf, Writer), ConnectError> {
    let address = tcp.peer_addr().map_or_else(|_| "the pool".to_string(), |a| a.to_string());
    let initiator = Initiator::from_raw_k(authority.bytes())
        .map_err(|e| ConnectError::Handshake { address: address.clone(), reason: format!("authority key: {e:?}") })?;
    let stream = NoiseTcpStream::connect(tcp, initiator, HANDSHAKE_TIMEOUT).await.map_err(|e| match e {
        Error::HandshakeTimeout => ConnectError::TimedOut { address },
        Error::CodecError(CodecError::NoiseSv2Error(NoiseError::InvalidCertificate(_))) => {
            ConnectError::AuthorityKey { address, key: authority.to_string() }
        }
        other => ConnectError::Handshake { address, reason: other.to_string() },
    })?;
    let (read, write) = stream.into_split();
    Ok((read, Writer::from(write)))
}

/// Decodes one frame's header and payload into a message.
fn decode(header: Header, payload: &mut [u8]) -> Result<Message, FrameError> {
    AnyMessage::try_from((header, payload))
        .map(AnyMessage::into_owned)
        .map_err(|e| FrameError::Message { kind: header.msg_type(), reason: format!("{e:?}") })
}

/// Decodes a whole plaintext frame (6-byte header, then the payload), as it is inside the
/// Noise transport.
pub fn decode_frame(bytes: &mut [u8]) -> Result<Message, FrameError> {
    if bytes.len() < Header::SIZE {
        return Err(FrameError::NoHeader(bytes.len()));
    }
    let header = Header::from_bytes(&bytes[..Header::SIZE]).map_err(|e| FrameError::Header(format!("{e:?}")))?;
    let payload = &mut bytes[Header::SIZE..];
    if payload.len() != header.payload_length() {
        return Err(FrameError::Length { said: header.payload_length(), got: payload.len() });
    }
    decode(header, payload)
}

/// The plaintext frame of a message, as it goes into the Noise transport.
pub fn encode_frame(message: Message) -> Result<Vec<u8>, FrameError> {
    let frame = MessageFrame::<Message>::try_from(message).map_err(|e| FrameError::Encode(format!("{e:?}")))?;
    let mut bytes = vec![0; frame.encoded_length()];
    frame.encode_into(&mut bytes).map_err(|e| FrameError::Encode(format!("{e:?}")))?;
    Ok(bytes)
}

/// Reads frames on a task of its own (SRI's `read_frame` cannot be cancelled halfway), each
/// decoded into a message; `Err` ends the stream.
pub fn spawn_reader(mut read: NoiseTcpReadHalf) -> mpsc::Receiver<Result<Message, TransportError>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let message = match read.read_frame().await {
                Ok(mut frame) => decode(frame.header(), frame.payload()).map_err(TransportError::from),
                Err(e) => Err(TransportError::Noise(e.to_string())),
            };
            let end = message.is_err();
            if tx.send(message).await.is_err() || end {
                break;
            }
        }
    });
    rx
}

/// The sending half.
pub struct Writer(NoiseTcpWriteHalf);

impl From<NoiseTcpWriteHalf> for Writer {
    fn from(write: NoiseTcpWriteHalf) -> Writer {
        Writer(write)
    }
}

impl Writer {
    pub async fn send(&mut self, message: Message) -> Result<(), TransportError> {
        let frame = OutboundFrame::from_message(message).map_err(|e| FrameError::Encode(format!("{e:?}")))?;
        self.0.write_frame(frame).await.map_err(|e| TransportError::Noise(e.to_string()))
    }
}
