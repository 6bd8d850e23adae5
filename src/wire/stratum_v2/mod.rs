//! Stratum V2 on the wire, for the client and the embedded pool alike: messages (SRI's
//! `parsers_sv2`) in and out of plaintext frames, the reader and writer of SRI's Noise
//! stream, the field helpers, and authority keys (`key`).

pub mod key;

use bitcoin::Target;
use stratum_apps::network_helpers::noise_stream::{NoiseTcpReadHalf, NoiseTcpWriteHalf};
use stratum_apps::stratum_core::binary_sv2::{Str0255Owned, U256Owned};
use stratum_apps::stratum_core::codec_sv2::{EncodableFrame, MessageFrame};
use stratum_apps::stratum_core::framing_sv2::header::Header;
use stratum_apps::stratum_core::parsers_sv2::AnyMessage;
use stratum_apps::utils::types::OutboundFrame;
use tokio::sync::mpsc;

pub use key::{AuthorityKey, AuthorityPair};

use super::TransportError;

/// Every Stratum V2 message, owned: what sessions take in and hand out.
pub type Message = stratum_apps::stratum_core::parsers_sv2::AnyMessageOwned;

/// A string field, cut to the 255 bytes SV2 allows.
pub(crate) fn str255(s: &str) -> Str0255Owned {
    let mut bytes = s.as_bytes().to_vec();
    bytes.truncate(255);
    Str0255Owned::new(bytes).expect("at most 255 bytes")
}

/// A target field (a U256, little-endian on the wire).
pub(crate) fn target(field: &U256Owned) -> Target {
    Target::from_le_bytes(field.to_array())
}

/// A Stratum V2 frame that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {0} bytes has no header")]
    NoHeader(usize),
    #[error("bad frame header: {0}")]
    Header(String),
    #[error("the header says {said} payload bytes, the frame has {got}")]
    Length { said: usize, got: usize },
    #[error("message type 0x{kind:02x} cannot be read: {reason}")]
    Message { kind: u8, reason: String },
    #[error("cannot encode a message: {0}")]
    Encode(String),
}

/// Decodes one frame's header and payload into a message.
fn decode(header: Header, payload: &mut [u8]) -> Result<Message, FrameError> {
    AnyMessage::try_from((header, payload))
        .map(AnyMessage::into_owned)
        .map_err(|e| FrameError::Message { kind: header.msg_type(), reason: format!("{e:?}") })
}

/// Decodes a whole plaintext frame (6-byte header, then the payload), as it is inside the
/// Noise transport.
pub(crate) fn decode_frame(bytes: &mut [u8]) -> Result<Message, FrameError> {
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
    async fn send(&mut self, message: Message) -> Result<(), TransportError> {
        let frame = OutboundFrame::from_message(message).map_err(|e| FrameError::Encode(format!("{e:?}")))?;
        self.0.write_frame(frame).await.map_err(|e| TransportError::Noise(e.to_string()))
    }
}

impl super::Outbox<Message> for Writer {
    async fn put(&mut self, message: Message) -> Result<(), TransportError> {
        super::within_timeout(self.send(message)).await
    }
}
