//! A Stratum v1 connection over TCP, or TLS as pool users expect it: lines read on a task of
//! their own, lines written by the wire's `LineWriter`, with the send timeout of every protocol.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::source::stratum::core::{ConnectError, TransportError};
use crate::source::stratum::pool_url::Endpoint;
use crate::source::stratum::tls::{self, TlsError, Trust};
use crate::wire::stratum_v1::{LineWriter, MAX_LINE, spawn_line_reader};

type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// How long a TLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the connection over `tcp`, with TLS when the endpoint asks for it: the pool's lines
/// and the writer.
pub async fn connect(
    tcp: TcpStream,
    endpoint: &Endpoint,
    trust: &Trust,
) -> Result<(mpsc::Receiver<Result<String, TransportError>>, LineWriter), ConnectError> {
    let (read, write): (Reader, LineWriter) = if endpoint.tls {
        let config = tls::client_config(trust).map_err(ConnectError::TlsConfig)?;
        let name = pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| ConnectError::TlsConfig(TlsError::Settings(format!("{}: {e}", endpoint.host))))?;
        let address = endpoint.address();
        let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let stream = match tokio::time::timeout(TLS_TIMEOUT, handshake).await {
            Err(_) => {
                let seconds = TLS_TIMEOUT.as_secs();
                return Err(ConnectError::HandshakeTimedOut { address, handshake: "TLS", seconds });
            }
            Ok(Err(e)) => return Err(tls_error(address, &e)),
            Ok(Ok(stream)) => stream,
        };
        let (read, write) = tokio::io::split(stream);
        (Box::new(read), LineWriter(Box::new(write)))
    } else {
        let (read, write) = tcp.into_split();
        (Box::new(read), LineWriter(Box::new(write)))
    };
    Ok((spawn_line_reader(read, MAX_LINE), write))
}

/// A failed handshake: a certificate nobody trusts is told apart from the rest.
fn tls_error(address: String, error: &std::io::Error) -> ConnectError {
    let rustls = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls {
        Some(e @ rustls::Error::InvalidCertificate(_)) => ConnectError::TlsTrust { address, reason: e.to_string() },
        _ => ConnectError::Tls { address, reason: error.to_string() },
    }
}
