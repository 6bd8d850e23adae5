//! The config file: every command-line option of a subcommand, by its long name, in TOML;
//! pools as `[[pool]]` tables. It sits under the environment (`WGMINER_<OPTION>`), which sits
//! under the command line. The merge works on clap's own description of the options, so a new
//! option is in the file and the environment the day it is added, validated by the same
//! parser, and a bad value names the file's line.
//!
//! ```toml
//! device = ["0"]
//! status-every = 10
//! api-listen = "127.0.0.1:4028"
//!
//! [[pool]]
//! url = "stratum+tcp://pool.example:3333"
//! user = "worker.1"
//! pass = "x"
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Options that hold secrets: shown masked.
const SECRETS: [&str; 2] = ["pass", "rpc-password"];

/// The keys of a `[[pool]]` table, and the options they stand for.
const POOL_KEYS: [&str; 3] = ["url", "user", "pass"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}, line {line}: {reason}")]
    At { path: PathBuf, line: usize, reason: String },
}

/// The environment variable of an option: `--status-every` is `WGMINER_STATUS_EVERY`.
pub fn env_name(long: &str) -> String {
    format!("WGMINER_{}", long.replace('-', "_").to_uppercase())
}

/// Gives every option of every subcommand its environment variable.
pub fn with_env(command: Command) -> Command {
    command.mut_subcommands(|sub| {
        sub.mut_args(|arg| match arg.get_long().map(str::to_string) {
            Some(long) if !matches!(long.as_str(), "help" | "version") && arg.get_env().is_none() => {
                arg.env(env_name(&long))
            }
            _ => arg,
        })
    })
}

/// A parsed config file: its keys with the line each starts on.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
    lines: BTreeMap<String, usize>,
    /// Each `[[pool]]`: the line of its header, and of each of its keys.
    pool_lines: Vec<(usize, BTreeMap<String, usize>)>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        // Line starts, found once: looking a line up is a binary search, not a scan from the
        // top (80,000 keys took 19 s that way).
        let starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let line_of = |offset: usize| starts.partition_point(|&start| start <= offset);
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| match e.span() {
            Some(span) => {
                ConfigError::At { path: path.into(), line: line_of(span.start), reason: e.message().to_string() }
            }
            None => ConfigError::Read { path: path.into(), reason: e.to_string() },
        })?;
        let spanned = toml::de::DeTable::parse(text)
            .map_err(|e| ConfigError::Read { path: path.into(), reason: e.to_string() })?;
        let mut lines = BTreeMap::new();
        let mut pool_lines = Vec::new();
        for (key, value) in spanned.get_ref() {
            lines.insert(key.get_ref().to_string(), line_of(key.span().start));
            if key.get_ref().as_ref() == "pool" {
                if let toml::de::DeValue::Array(pools) = value.get_ref() {
                    for pool in pools.iter() {
                        let keys = match pool.get_ref() {
                            toml::de::DeValue::Table(t) => {
                                t.iter().map(|(k, _)| (k.get_ref().to_string(), line_of(k.span().start))).collect()
                            }
                            _ => BTreeMap::new(),
                        };
                        pool_lines.push((line_of(pool.span().start), keys));
                    }
                }
            }
        }
        Ok(ConfigFile { path: path.into(), table, lines, pool_lines })
    }

    fn error(&self, line: usize, reason: impl Into<String>) -> ConfigError {
        ConfigError::At { path: self.path.clone(), line, reason: reason.into() }
    }

    /// The arguments that bring the file's settings into `sub` (the subcommand being run),
    /// for the options that `matches` (its matches from the command line and environment)
    /// left to their defaults. Options of other subcommands are left alone; a key no
    /// subcommand knows is an error, as is a value the option's parser refuses.
    pub fn arguments(&self, root: &Command, sub: &Command, matches: &ArgMatches) -> Result<Vec<OsString>, ConfigError> {
        let known_anywhere = |key: &str| {
            key == "pool"
                || root.get_arguments().any(|a| a.get_long() == Some(key) && key != "config")
                || root.get_subcommands().any(|c| c.get_arguments().any(|a| a.get_long() == Some(key)))
        };
        let explicit =
            |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        let mut out = Vec::new();
        for (key, value) in &self.table {
            let line = self.lines.get(key).copied().unwrap_or(0);
            if !known_anywhere(key) {
                return Err(
                    self.error(line, format!("unknown key `{}` (keys are long option names, see --help)", cut(key)))
                );
            }
            if key == "pool" {
                self.pool_arguments(sub, value, &explicit, &mut out)?;
                continue;
            }
            // The subcommand's own options, and the global ones (logging).
            let Some(arg) =
                sub.get_arguments().chain(root.get_arguments()).find(|a| a.get_long() == Some(key.as_str()))
            else {
                continue;
            };
            // Checked even when the command line overrides it: a bad file is bad either way.
            let texts = self.values(key, value, line, arg)?;
            if explicit(arg.get_id().as_str()) {
                continue;
            }
            for text in texts {
                out.push(OsString::from(format!("--{key}={text}")));
            }
        }
        Ok(out)
    }

    fn pool_arguments(
        &self,
        sub: &Command,
        value: &toml::Value,
        explicit: &dyn Fn(&str) -> bool,
        out: &mut Vec<OsString>,
    ) -> Result<(), ConfigError> {
        let line = self.lines.get("pool").copied().unwrap_or(0);
        let Some(pools) = value.as_array() else {
            return Err(self.error(line, "`pool` is a list of tables: write each as [[pool]]"));
        };
        let line_in = |i: usize, key: Option<&str>| {
            let pool = self.pool_lines.get(i);
            key.and_then(|k| pool?.1.get(k).copied()).or(pool.map(|p| p.0)).unwrap_or(line)
        };
        for (i, pool) in pools.iter().enumerate() {
            let line = line_in(i, None);
            let Some(pool) = pool.as_table() else { return Err(self.error(line, "each [[pool]] is a table")) };
            if let Some(key) = pool.keys().find(|k| !POOL_KEYS.contains(&k.as_str())) {
                let line = line_in(i, Some(key));
                return Err(self.error(line, format!("unknown key `{}` in [[pool]] (url, user, pass)", cut(key))));
            }
            if !pool.contains_key("url") {
                return Err(self.error(line, "[[pool]] without url"));
            }
        }
        // Pools go to commands that take them, unless the command line named its own.
        let Some(url) = sub.get_arguments().find(|a| a.get_long() == Some("url")) else { return Ok(()) };
        let mut args = Vec::new();
        for (i, pool) in pools.iter().filter_map(toml::Value::as_table).enumerate() {
            for key in POOL_KEYS {
                let line = line_in(i, Some(key));
                let arg = sub.get_arguments().find(|a| a.get_long() == Some(key));
                match (pool.get(key), arg) {
                    (Some(value), Some(arg)) => {
                        for text in self.values(key, value, line, arg)? {
                            args.push(OsString::from(format!("--{key}={text}")));
                        }
                    }
                    // Each pool keeps its place: one without a user or password repeats the default.
                    (None, Some(arg)) if key != "url" => {
                        let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
                        if let Some(d) = default {
                            args.push(OsString::from(format!("--{key}={d}")));
                        }
                    }
                    _ => {}
                }
            }
        }
        if !explicit(url.get_id().as_str()) {
            out.extend(args);
        }
        Ok(())
    }

    /// A TOML value as the option's textual values, checked by the option's own parser.
    fn values(&self, key: &str, value: &toml::Value, line: usize, arg: &clap::Arg) -> Result<Vec<String>, ConfigError> {
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => {
                let other = cut(&other.to_string());
                Err(self.error(line, format!("`{key}` takes a string, number or true/false, not {other}")))
            }
        };
        let flag = matches!(arg.get_action(), ArgAction::SetTrue);
        let many = matches!(arg.get_action(), ArgAction::Append);
        let texts = match value {
            toml::Value::Array(items) if many => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            toml::Value::Array(_) => return Err(self.error(line, format!("`{key}` takes one value, not a list"))),
            toml::Value::Boolean(b) if flag => return Ok(if *b { vec!["true".into()] } else { vec![] }),
            _ if flag => return Err(self.error(line, format!("`{key}` is a switch: true or false"))),
            v => vec![scalar(v)?],
        };
        // The option's own parser decides, alone in a command of its own.
        let lone = arg
            .clone()
            .required(false)
            .requires(clap::builder::Resettable::Reset)
            .conflicts_with(clap::builder::Resettable::Reset)
            .env(None::<&str>);
        let probe = Command::new("wgminer").no_binary_name(true).arg(lone);
        for text in &texts {
            if let Err(e) = probe.clone().try_get_matches_from([format!("--{key}={text}")]) {
                let reason = e.render().to_string();
                let reason = reason.lines().next().unwrap_or("").trim_start_matches("error: ");
                // clap repeats the value whole: a 50 MB value made 50 MB of stderr.
                let reason = reason.replace(text.as_str(), &cut(text));
                return Err(self.error(line, format!("`{key}`: {reason}")));
            }
        }
        Ok(texts)
    }
}

/// A value as an error may repeat it: escaped, and cut short when long.
fn cut(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        None => crate::logging::printable(value),
        Some((end, _)) => format!("{}… ({} bytes)", crate::logging::printable(&value[..end]), value.len()),
    }
}

/// The effective settings of a parsed subcommand as TOML, each with where it came from
/// (`from_file`: the options the config file set); secrets masked, pools as `[[pool]]` tables.
pub fn render(root: &Command, sub: &Command, matches: &ArgMatches, from_file: &[String]) -> String {
    let mut out = String::new();
    let mut pools: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for arg in sub.get_arguments().chain(root.get_arguments()) {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
        if matches!(long, "help" | "version" | "config") {
            continue;
        }
        let Some(raw) = matches.get_raw(id) else { continue };
        let mut values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
        if SECRETS.contains(&long) {
            values = values.iter().map(|_| "********".to_string()).collect();
        }
        // A URL's `user:password@` keeps its user only.
        values = values.iter().map(|v| crate::source::stratum::pool_url::masked(v)).collect();
        if POOL_KEYS.contains(&long) && sub.get_arguments().any(|a| a.get_long() == Some("url")) {
            pools.insert(long, values);
            continue;
        }
        let source = match matches.value_source(id) {
            _ if from_file.iter().any(|f| f == long) => "config file",
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unknown",
        };
        // Options that take several values stay lists even with one.
        let value = match (arg.get_action(), values.as_slice()) {
            (ArgAction::SetTrue, [v]) => v.clone(),
            (action, [v]) if !matches!(action, ArgAction::Append) => toml_value(v),
            (_, vs) => format!("[{}]", vs.iter().map(|v| toml_value(v)).collect::<Vec<_>>().join(", ")),
        };
        out += &format!("{long} = {value}  # {source}\n");
    }
    let urls = pools.get("url").cloned().unwrap_or_default();
    for (i, url) in urls.iter().enumerate() {
        out += &format!("\n[[pool]]\nurl = {}\n", toml_value(url));
        for key in ["user", "pass"] {
            let list = pools.get(key).cloned().unwrap_or_default();
            if let Some(v) = list.get(i).or(list.last()) {
                out += &format!("{key} = {}\n", toml_value(v));
            }
        }
    }
    out
}

/// Numbers as numbers, everything else as a TOML string.
fn toml_value(text: &str) -> String {
    if text.parse::<i64>().is_ok() || (text.parse::<f64>().is_ok_and(f64::is_finite) && text.contains('.')) {
        text.to_string()
    } else {
        toml::Value::String(text.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, value_parser};

    fn command() -> Command {
        Command::new("wgminer").subcommand(
            Command::new("mine")
                .arg(Arg::new("urls").long("url").short('o').action(ArgAction::Append).required(true))
                .arg(Arg::new("user").long("user").action(ArgAction::Append))
                .arg(Arg::new("pass").long("pass").action(ArgAction::Append).default_value("x"))
                .arg(
                    Arg::new("status_every")
                        .long("status-every")
                        .value_parser(value_parser!(u64).range(1..))
                        .default_value("5"),
                )
                .arg(Arg::new("mining").long("mining").action(ArgAction::SetTrue)),
        )
    }

    fn merged(file: &str, cli: &[&str]) -> Result<Vec<String>, ConfigError> {
        let root = command();
        let file = ConfigFile::parse(Path::new("test.toml"), file)?;
        let matches = root.clone().ignore_errors(true).try_get_matches_from(cli).unwrap();
        let (_, sub_matches) = matches.subcommand().unwrap();
        let sub = root.find_subcommand("mine").unwrap();
        Ok(file.arguments(&root, sub, sub_matches)?.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    #[test]
    fn file_values_become_arguments_unless_the_command_line_has_them() {
        let file = "status-every = 7\nmining = true\n[[pool]]\nurl = \"a:1\"\nuser = \"u\"\n[[pool]]\nurl = \"b:2\"\n";
        assert_eq!(
            merged(file, &["wgminer", "mine"]).unwrap(),
            ["--mining=true", "--url=a:1", "--user=u", "--pass=x", "--url=b:2", "--pass=x", "--status-every=7"]
        );
        assert_eq!(merged(file, &["wgminer", "mine", "--status-every", "3", "-o", "c:3"]).unwrap(), ["--mining=true"]);
        // A bad value is an error even where the command line overrides it.
        assert!(merged("status-every = 0\n", &["wgminer", "mine", "--status-every", "3"]).is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let error = |file: &str| merged(file, &["wgminer", "mine"]).unwrap_err().to_string();
        assert_eq!(
            error("\n\nstatus-evry = 3\n"),
            "config file test.toml, line 3: unknown key `status-evry` (keys are long option names, see --help)"
        );
        assert!(
            error("status-every = 0\n").starts_with("config file test.toml, line 1: `status-every`: invalid value '0'"),
            "{}",
            error("status-every = 0")
        );
        assert_eq!(error("mining = 1\n"), "config file test.toml, line 1: `mining` is a switch: true or false");
        assert_eq!(
            error("status-every = [1, 2]\n"),
            "config file test.toml, line 1: `status-every` takes one value, not a list"
        );
        assert_eq!(
            error("[[pool]]\nurl = \"a\"\n\n[[pool]]\nuser = \"u\"\n"),
            "config file test.toml, line 4: [[pool]] without url"
        );
        assert_eq!(
            error("[[pool]]\nurl = \"a\"\npassword = \"p\"\n"),
            "config file test.toml, line 3: unknown key `password` in [[pool]] (url, user, pass)"
        );
        assert!(
            error("status-every = \n").starts_with("config file test.toml, line 1: "),
            "{}",
            error("status-every = \n")
        );
        assert_eq!(
            error("pool = 3\n"),
            "config file test.toml, line 1: `pool` is a list of tables: write each as [[pool]]"
        );
    }

    /// A huge or forged value is cut and escaped in the error, never repeated whole.
    #[test]
    fn errors_cut_long_values() {
        let error = |file: &str| merged(file, &["wgminer", "mine"]).unwrap_err().to_string();
        let long = "9".repeat(1 << 20);
        let said = error(&format!("status-every = \"x{long}\"\n"));
        assert!(said.len() < 400 && said.contains("… (1048577 bytes)"), "{}", &said[..said.len().min(400)]);
        let said = error(&format!("mining = [\"{long}\"]\n"));
        assert!(said.len() < 400, "{}", &said[..400]);
        let said = error(&format!("\"{long}\nforged\" = 1\n"));
        assert!(said.len() < 400 && !said.contains('\n'), "{}", &said[..said.len().min(400)]);
    }

    #[test]
    fn render_masks_secrets_and_says_where_values_came_from() {
        let root = command();
        let matches = root
            .clone()
            .try_get_matches_from(["wgminer", "mine", "-o", "a:1", "--user", "u", "--pass", "secret"])
            .unwrap();
        let text = render(&root, root.find_subcommand("mine").unwrap(), matches.subcommand().unwrap().1, &[]);
        assert_eq!(
            text,
            "status-every = 5  # default\nmining = false  # default\n\n[[pool]]\nurl = \"a:1\"\nuser = \"u\"\npass = \"********\"\n"
        );
        assert!(!text.contains("secret"));
    }
}
