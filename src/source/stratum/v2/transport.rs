//! The client's side of the Noise handshake: the pool must prove its authority key.

use std::time::Duration;

use stratum_apps::network_helpers::Error;
use stratum_apps::network_helpers::noise_stream::{NoiseTcpReadHalf, NoiseTcpStream};
use stratum_apps::stratum_core::codec_sv2::Error as CodecError;
use stratum_apps::stratum_core::noise_sv2::{Error as NoiseError, Initiator};
use tokio::net::TcpStream;

use crate::source::stratum::core::ConnectError;
use crate::wire::stratum_v2::{AuthorityKey, Writer};

/// How long the Noise handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the Noise handshake as initiator, checking the pool's certificate against its
/// authority key: a pool that cannot prove the key is refused here.
pub async fn connect(tcp: TcpStream, authority: &AuthorityKey) -> Result<(NoiseTcpReadHalf, Writer), ConnectError> {
    let address = tcp.peer_addr().map_or_else(|_| "the pool".to_string(), |a| a.to_string());
    let initiator = Initiator::from_raw_k(authority.bytes())
        .map_err(|e| ConnectError::Handshake { address: address.clone(), reason: format!("authority key: {e:?}") })?;
    let stream = NoiseTcpStream::connect(tcp, initiator, HANDSHAKE_TIMEOUT).await.map_err(|e| match e {
        Error::HandshakeTimeout => {
            ConnectError::HandshakeTimedOut { address, handshake: "Noise", seconds: HANDSHAKE_TIMEOUT.as_secs() }
        }
        Error::CodecError(CodecError::NoiseSv2Error(NoiseError::InvalidCertificate(_))) => {
            ConnectError::AuthorityKey { address, key: authority.to_string() }
        }
        other => ConnectError::Handshake { address, reason: other.to_string() },
    })?;
    let (read, write) = stream.into_split();
    Ok((read, Writer::from(write)))
}
