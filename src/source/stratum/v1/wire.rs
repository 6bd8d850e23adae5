//! How the driver opens a Stratum v1 connection: lines over TCP or TLS.

use tokio::net::TcpStream;

use super::session::Session;
use super::transport;
use crate::source::stratum::core::{ConnectError, Incoming, Wire};
use crate::source::stratum::pool_url::{Endpoint, PoolConfig};
use crate::wire::stratum_v1::LineWriter;

impl Wire for Session {
    type Writer = LineWriter;

    async fn open(
        tcp: TcpStream,
        endpoint: &Endpoint,
        config: &PoolConfig,
    ) -> Result<(Incoming<String>, LineWriter), ConnectError> {
        transport::connect(tcp, endpoint, &config.trust).await
    }
}
