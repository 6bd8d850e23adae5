//! `wgminer pool`: the embedded pool alone, Stratum v1 and, with `--sv2-listen`, Stratum V2,
//! until Ctrl-C.

use crate::pool::sv2::Sv2Pool;
use crate::pool::{EmbeddedPool, PoolOptions};
use crate::source::stratum::v2::key::AuthorityPair;

pub fn run(listen: &str, sv2: Option<(&str, AuthorityPair)>, options: PoolOptions) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let pool = EmbeddedPool::start(listen, options.clone()).await?;
        tracing::info!("embedded pool listening on {} (Ctrl-C or SIGTERM stops it)", pool.addr);
        let _sv2 = match sv2 {
            Some((listen, keys)) => {
                let pool = Sv2Pool::start(listen, keys, options).await?;
                // Printed for the user (and scripts) to copy: the key is how miners know this pool.
                println!("Stratum V2: {}", pool.url());
                println!("authority public key: {}", pool.authority);
                Some(pool)
            }
            None => None,
        };
        super::stop_signal().await;
        anyhow::Ok(())
    })
}
