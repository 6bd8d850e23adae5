//! `wgminer config --print [COMMAND ARGS…]`: the settings a command would run with, merged
//! from the file, the environment and the command line, each with where it came from.

use std::path::Path;

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
