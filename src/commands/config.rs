//! `wgminer config --print [COMMAND ARGS…]`: the settings a command would run with, merged
//! from the file, the environment and the command line, each with where it came from.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The arguments of `wgminer config` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Print the configuration (the only action so far)
    #[arg(long)]
    pub print: bool,
    /// The command line to evaluate, as you would run it (default: mine)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub args: Vec<String>,
}

/// How `main` parses a command line with the config file merged in: the matches, and the
/// options the file set. Passed in so that there is one parser, `main`'s.
pub type Parse<'a> = &'a dyn Fn(Vec<OsString>) -> anyhow::Result<(clap::ArgMatches, Vec<String>)>;

impl Args {
    /// Parses the command line given as the real one would be, with the same config `file`,
    /// and prints what it would run with.
    pub fn run(self, root: &clap::Command, file: Option<&Path>, parse: Parse) -> anyhow::Result<ExitCode> {
        if !self.print {
            anyhow::bail!("say what to do: `wgminer config --print [COMMAND ARGS…]`");
        }
        let mut argv: Vec<OsString> = vec!["wgminer".into()];
        if let Some(path) = file {
            argv.extend(["--config".into(), path.into()]);
        }
        let args = if self.args.is_empty() { vec!["mine".to_string()] } else { self.args };
        argv.extend(args.into_iter().map(OsString::from));
        let (matches, from_file) = parse(argv)?;
        print(root, &matches, &from_file, file)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints the merged settings of the subcommand in `matches`; `from_file` names the options
/// the config file set.
pub fn print(
    root: &clap::Command,
    matches: &clap::ArgMatches,
    from_file: &[String],
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let Some((name, sub_matches)) = matches.subcommand() else { anyhow::bail!("no command to show") };
    let sub = root.find_subcommand(name).expect("a parsed subcommand exists");
    if let Some(path) = file {
        println!("# wgminer {name}, with {}", path.display());
    }
    print!("{}", crate::config::render(root, sub, sub_matches, from_file));
    Ok(())
}
