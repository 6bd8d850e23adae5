//! `wgminer man`: the manual page in roff, from the same clap definition that parses the
//! command line (its help texts, defaults and environment variables).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// The arguments of `wgminer man`.
#[derive(clap::Args)]
pub struct Args {
    /// Write wgminer.1 and a page per subcommand (wgminer-mine.1, …) into this directory,
    /// made if missing, instead of printing wgminer.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl Args {
    /// Renders the pages of `root` (the whole command line).
    pub fn run(self, root: clap::Command) -> anyhow::Result<ExitCode> {
        match self.dir {
            Some(dir) => {
                let write = || {
                    std::fs::create_dir_all(&dir)?;
                    clap_mangen::generate_to(root, &dir)
                };
                write().with_context(|| format!("writing the pages into {}", dir.display()))?
            }
            None => clap_mangen::Man::new(root).render(&mut std::io::stdout().lock())?,
        }
        Ok(ExitCode::SUCCESS)
    }
}
