//! How the driver opens a Stratum V2 connection: SRI's Noise frames, the pool's authority
//! key proven.

use tokio::net::TcpStream;

use super::session::Session;
use super::{Message, transport};
use crate::source::stratum::core::{ConnectError, Incoming, Wire};
use crate::source::stratum::pool_url::{Endpoint, PoolConfig};
use crate::wire::stratum_v2::{Writer, spawn_reader};

impl Wire for Session {
    type Writer = Writer;

    async fn open(
        tcp: TcpStream,
        endpoint: &Endpoint,
        _: &PoolConfig,
    ) -> Result<(Incoming<Message>, Writer), ConnectError> {
        let address = endpoint.address();
        let Some(authority) = endpoint.authority.as_ref() else {
            // Pool URLs give V2 endpoints their key; a redirect keeps it.
            return Err(ConnectError::Handshake { address, reason: "no authority key to check".into() });
        };
        let (read, write) = transport::connect(tcp, authority).await?;
        Ok((spawn_reader(read), write))
    }
}
