//! `wgminer mine`: its arguments (pools, with credentials in their URLs or given with -u/-p),
//! the run, and the summary printed at its end.

use std::process::ExitCode;

use super::args::RunArgs;
use crate::device::Sweeper;
use crate::miner::Source;
use crate::run::{MineOptions, Summary, mine};
use crate::source::stratum::PoolConfig;
use crate::source::stratum::pool_url::PoolUrl;
use crate::source::stratum::tls::Trust;
use crate::source::stratum::v2::session::ChannelKind;
use crate::work::Difficulty;

/// `wgminer mine`: mines on `source` until the duration ends or Ctrl-C, then prints the summary.
pub fn run(source: Source, devices: Vec<Box<dyn Sweeper>>, options: &MineOptions) -> anyhow::Result<Summary> {
    let (summary, _) = super::runtime()?.block_on(mine(source, devices, options));
    print_summary(&summary);
    if summary.unjournaled > 0 {
        anyhow::bail!("{} share(s) could be neither sent nor journaled; the log says why", summary.unjournaled);
    }
    Ok(summary)
}

pub fn print_summary(s: &Summary) {
    println!(
        "summary: {:.1}s, {:.2} MH/s average, accepted {}, rejected {}, stale {}, hardware errors {}, journaled {}, best share {:.4}",
        s.seconds, s.mhs, s.accepted, s.rejected, s.stale, s.hw_errors, s.journaled, s.best_share
    );
    if s.unjournaled > 0 {
        println!(
            "NOT journaled: {} share(s) could be neither sent nor written to the journal (the log says why)",
            s.unjournaled
        );
    }
    if s.templates > 0 {
        println!("solo: {} templates, {} blocks found", s.templates, s.blocks);
    }
    if let (Some(p50), Some(p99)) = (s.job_switch_p50_ms, s.job_switch_p99_ms) {
        println!("new job to its first dispatch: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
}

/// The arguments of `wgminer mine` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Pool URL: stratum+tcp://HOST:PORT, or stratum+ssl:// (stratum+tls://) for TLS, or
    /// stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY for Stratum V2 (the pool publishes its key)
    #[arg(short = 'o', long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Worker name, one for each -o (the last one serves the pools after it); a pool URL may
    /// carry its own as stratum+tcp://USER:PASS@HOST:PORT
    #[arg(short, long, value_name = "USER")]
    pub user: Vec<String>,
    /// Worker password, one for each -o
    #[arg(short, long, default_value = "x", value_name = "PASS")]
    pub pass: Vec<String>,
    /// PEM file for stratum+ssl:// pools: CA certificates to trust besides the webpki roots,
    /// or the pool's own certificate (a self-signed `openssl req -x509` one too), which is
    /// then trusted as itself, still checked for host name and dates
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Take only the pool certificate with this SHA-256 fingerprint (64 hex digits, colons
    /// allowed: `openssl x509 -noout -fingerprint -sha256 -in pool.pem`)
    #[arg(long, value_name = "HEX", value_parser = crate::source::stratum::tls::parse_fingerprint)]
    pub pool_cert_sha256: Option<[u8; 32]>,
    /// Ask the pools for this share difficulty (mining.suggest_difficulty); on Stratum V2
    /// pools, the least difficulty the channel takes
    #[arg(long, value_name = "D", value_parser = super::args::parse_difficulty)]
    pub suggest_difficulty: Option<Difficulty>,
    /// The channel to open on Stratum V2 pools: extended (the extranonce rolled here, as in
    /// v1) or standard (header-only: version bits and ntime rolled)
    #[arg(long, value_name = "KIND", default_value = "extended")]
    pub sv2_channel: ChannelKind,
    /// Stop after this many seconds (default: until Ctrl-C)
    #[arg(long, value_name = "S", value_parser = super::args::positive_number)]
    pub seconds: Option<f64>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let options = self.run.options(self.seconds)?;
        let pools = self.pools()?;
        crate::source::check_journal(&self.run.journal)?;
        run(Source::Pools(pools), self.run.open()?, &options)?;
        Ok(ExitCode::SUCCESS)
    }

    /// The pools: each -u/-p belongs to the -o in the same position; a pool without one takes
    /// its URL's `user:password@`, else the last given. What is given for a pool's place wins
    /// over its URL, said once (never the password); `-p x`, the default, counts as not
    /// given. Every URL is checked now, not at its first connection.
    fn pools(&self) -> anyhow::Result<Vec<PoolConfig>> {
        let trust = Trust { ca_file: self.ca_file.clone(), cert_sha256: self.pool_cert_sha256 };
        let mut pools = Vec::new();
        for (i, url) in self.urls.iter().enumerate() {
            let parsed = PoolUrl::parse(url)?;
            let given_pass = self.pass.get(i).filter(|p| *p != DEFAULT_PASS);
            if let (Some(user), Some(in_url)) = (self.user.get(i), &parsed.user)
                && user != in_url
            {
                tracing::warn!("pool {i} ({}): -u {user} is used, not the user in its URL", parsed.shown);
            }
            if let (Some(_), Some(_)) = (given_pass, &parsed.pass) {
                tracing::warn!("pool {i} ({}): -p is used, not the password in its URL", parsed.shown);
            }
            let user = self.user.get(i).or(parsed.user.as_ref()).or(self.user.last()).cloned().ok_or_else(|| {
                anyhow::anyhow!("pool {} needs a worker name: -u USER, or USER@ in its URL", parsed.shown)
            })?;
            let pass = given_pass.or(parsed.pass.as_ref()).or(self.pass.last()).cloned();
            pools.push(PoolConfig {
                url: parsed.shown,
                user,
                pass: pass.unwrap_or_else(|| DEFAULT_PASS.into()),
                journal: self.run.journal.clone(),
                journal_max: self.run.journal_max_mb << 20,
                trust: trust.clone(),
                suggest_difficulty: self.suggest_difficulty,
                channel: self.sv2_channel,
            });
        }
        Ok(pools)
    }
}

/// The worker password pools take when none is given (cgminer's and ckpool's examples use it).
const DEFAULT_PASS: &str = "x";

#[cfg(test)]
mod tests {
    use clap::{Args as _, FromArgMatches};

    fn pools(args: &[&str]) -> anyhow::Result<Vec<(String, String, String)>> {
        let command = super::Args::augment_args(clap::Command::new("mine").no_binary_name(true));
        let args = super::Args::from_arg_matches(&command.try_get_matches_from(args)?)?;
        Ok(args.pools()?.into_iter().map(|p| (p.url, p.user, p.pass)).collect())
    }

    /// A URL's `user:password@` is its pool's -u/-p; what is given in the pool's place wins;
    /// a pool with neither takes the last given, and one with no user at all is refused.
    #[test]
    fn credentials_in_urls_and_on_the_command_line() {
        let own = |u: &str, p: &str| ("stratum+tcp://127.0.0.1:1".to_string(), u.to_string(), p.to_string());
        assert_eq!(pools(&["-o", "stratum+tcp://uu:secret@127.0.0.1:1"]).unwrap(), [own("uu", "secret")]);
        let given = pools(&["-o", "stratum+tcp://uu:secret@127.0.0.1:1", "-u", "w", "-p", "given"]).unwrap();
        assert_eq!(given, [own("w", "given")]);
        let default_pass = pools(&["-o", "stratum+tcp://uu:secret@127.0.0.1:1", "-u", "w", "-p", "x"]).unwrap();
        assert_eq!(default_pass, [own("w", "secret")], "-p x, the default, counts as not given");
        let second = pools(&["-o", "127.0.0.1:2", "-u", "w", "-o", "stratum+tcp://uu:secret@127.0.0.1:1"]).unwrap();
        assert_eq!(second[1], own("uu", "secret"), "the URL's, not the last given");
        assert_eq!(second[0].1, "w");
        let error = pools(&["-o", "stratum+tcp://127.0.0.1:1"]).unwrap_err().to_string();
        assert!(error.contains("needs a worker name"), "{error}");
        let error = pools(&["-o", "stratum+tcp://uu:secret@127.0.0.1:x"]).unwrap_err().to_string();
        assert!(!error.contains("secret") && error.contains("stratum+tcp://127.0.0.1:x"), "{error}");
    }
}
