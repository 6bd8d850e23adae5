//! `wgminer pool`: the embedded pool alone, Stratum v1 and, with `--sv2-listen`, Stratum V2,
//! until Ctrl-C.

use crate::http::{Mode, Site};
use crate::listen::ListenOptions;
use crate::pool::sv2::Sv2Pool;
use crate::pool::{EmbeddedPool, PoolOptions};
use crate::wire::stratum_v2::key::AuthorityPair;
use std::process::ExitCode;

pub fn run(
    listen: &str,
    sv2: Option<(&str, AuthorityPair)>,
    options: PoolOptions,
    http: Option<ListenOptions>,
) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let pool = EmbeddedPool::start(listen, options.clone()).await?;
        tracing::info!("embedded pool listening on {} (Ctrl-C or SIGTERM stops it)", pool.addr);
        let mut pool_side = vec![("stratum v1", pool.stats.clone())];
        let _sv2 = match sv2 {
            Some((listen, keys)) => {
                let pool = Sv2Pool::start(listen, keys, options).await?;
                // Printed for the user (and scripts) to copy: the key is how miners know this pool.
                println!("Stratum V2: {}", pool.url());
                println!("authority public key: {}", pool.authority);
                pool_side.push(("stratum v2", pool.stats.clone()));
                Some(pool)
            }
            None => None,
        };
        if let Some(listen) = http {
            // No miner here: the page and the metrics show the pool's side.
            let site = Site { mode: Mode::Pool, stats: Default::default(), pool_side };
            crate::run::serve_http(listen, site, None).await;
        }
        crate::run::stop_signal().await;
        anyhow::Ok(())
    })
}

/// The arguments of `wgminer pool` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:3333", value_name = "ADDR")]
    pub listen: String,
    /// Starting share difficulty
    #[arg(long, default_value = "0.001", value_name = "D", value_parser = super::args::parse_difficulty)]
    pub difficulty: crate::work::Difficulty,
    /// Seconds between new chain tips (clean jobs)
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub job_interval: u64,
    /// Also serve Stratum V2 on this address (the URL with the authority key is printed)
    #[arg(long, value_name = "ADDR")]
    pub sv2_listen: Option<String>,
    /// File holding the Stratum V2 authority secret key, base58-check as SRI's configs write
    /// `authority_secret_key` (default: a new key for each start)
    #[arg(long, value_name = "PATH", requires = "sv2_listen")]
    pub sv2_authority_secret: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub http: super::args::HttpArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let options = PoolOptions {
            difficulty: self.difficulty,
            job_interval: std::time::Duration::from_secs(self.job_interval.max(1)),
            ..Default::default()
        };
        let keys = match &self.sv2_authority_secret {
            Some(path) => {
                let error =
                    |e: &dyn std::fmt::Display| anyhow::anyhow!("--sv2-authority-secret {}: {e}", path.display());
                let text = std::fs::read_to_string(path).map_err(|e| error(&e))?;
                AuthorityPair::parse_secret(&text).map_err(|e| error(&e))?
            }
            None => AuthorityPair::generate(),
        };
        run(&self.listen, self.sv2_listen.as_deref().map(|l| (l, keys)), options, self.http.options()?)?;
        Ok(ExitCode::SUCCESS)
    }
}
