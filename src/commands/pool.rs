//! `wgminer pool`: the embedded Stratum v1 pool alone, until Ctrl-C.

use crate::pool::{EmbeddedPool, PoolOptions};

pub fn run(listen: &str, options: PoolOptions) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let pool = EmbeddedPool::start(listen, options).await?;
        tracing::info!("embedded pool listening on {} (Ctrl-C or SIGTERM stops it)", pool.addr);
        super::stop_signal().await;
        anyhow::Ok(())
    })
}
