//! `wgminer completions SHELL`: the shell's completion script, from the same clap definition
//! that parses the command line.

use std::process::ExitCode;

/// The arguments of `wgminer completions`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Args {
    /// Writes the script for `root` (the whole command line) to stdout.
    pub fn run(self, mut root: clap::Command) -> anyhow::Result<ExitCode> {
        let name = root.get_name().to_string();
        clap_complete::generate(self.shell, &mut root, name, &mut std::io::stdout());
        Ok(ExitCode::SUCCESS)
    }
}
