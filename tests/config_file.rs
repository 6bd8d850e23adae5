//! The config file through the binary: `config --print` round-trips, the command line beats
//! the environment which beats the file, and every kind of bad value names its line.

use std::path::PathBuf;
use std::process::{Command, Output};

fn wgminer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgminer"));
    // Only what the test sets: an inherited WGMINER_* variable would change the answers.
    for (key, _) in std::env::vars() {
        if key.starts_with("WGMINER_") {
            cmd.env_remove(key);
        }
    }
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
    cmd.env("XDG_CACHE_HOME", cache).args(args).envs(env.iter().copied()).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wgminer-test-config-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

const CONFIG: &str = r#"device = ["cpu"]
status-every = 9
seconds = 30
api-listen = "127.0.0.1:4029"
api-allow = ["W:127.0.0.1", "10.0.0.0/8"]
http-listen = "0.0.0.0:8081"
http-allow = ["192.168.1.0/24"]
http-allow-host = ["miner.lan"]
suggest-difficulty = 0.5

[[pool]]
url = "stratum+tcp://pool.example:3333"
user = "worker.1"
pass = "secret"

[[pool]]
url = "stratum+tcp://backup.example:3333"
user = "worker.2"
"#;

/// The printed TOML without the comments that say where values came from.
fn settings(printed: &str) -> String {
    printed
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split("  # ").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn print_round_trips_and_masks_passwords() {
    let path = file("roundtrip", CONFIG);
    let out = wgminer(&["--config", path.to_str().unwrap(), "config", "--print", "mine"], &[]);
    let (printed, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(!printed.contains("secret"), "{printed}");
    assert!(printed.contains("status-every = 9  # config file\n"), "{printed}");
    assert!(printed.contains("api-allow = [\"W:127.0.0.1\", \"10.0.0.0/8\"]  # config file\n"), "{printed}");
    // --dispatch-ms has no one default (16 ms on an integrated GPU, 50 elsewhere): not printed.
    assert!(printed.contains("retune = false  # default\n"), "{printed}");
    assert!(!printed.contains("dispatch-ms"), "{printed}");
    assert!(printed.contains("http-listen = \"0.0.0.0:8081\"  # config file\n"), "{printed}");
    assert!(printed.contains("http-allow = [\"192.168.1.0/24\"]  # config file\n"), "{printed}");
    assert!(printed.contains("http-allow-host = [\"miner.lan\"]  # config file\n"), "{printed}");
    assert!(
        printed.contains(
            "\n[[pool]]\nurl = \"stratum+tcp://pool.example:3333\"\nuser = \"worker.1\"\npass = \"********\"\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains(
            "\n[[pool]]\nurl = \"stratum+tcp://backup.example:3333\"\nuser = \"worker.2\"\npass = \"********\"\n"
        ),
        "{printed}"
    );

    // What it printed is itself a config file that gives the same settings.
    let again = file("roundtrip-again", &settings(&printed));
    let out = wgminer(&["--config", again.to_str().unwrap(), "config", "--print", "mine"], &[]);
    let (reprinted, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(settings(&reprinted), settings(&printed));
}

#[test]
fn command_line_beats_environment_beats_file() {
    let path = file("precedence", CONFIG);
    let config = path.to_str().unwrap();
    let print = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--config", config, "config", "--print", "mine"];
        all.extend_from_slice(args);
        let out = wgminer(&all, env);
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0
    };
    assert!(print(&[], &[]).contains("status-every = 9  # config file"));
    let env = [("WGMINER_STATUS_EVERY", "4")];
    assert!(print(&[], &env).contains("status-every = 4  # environment"));
    assert!(print(&["--status-every", "2"], &env).contains("status-every = 2  # command line"));
    // Pools on the command line replace the file's.
    let printed = print(&["-o", "stratum+tcp://other:1", "-u", "me"], &[]);
    assert!(printed.contains("url = \"stratum+tcp://other:1\"") && !printed.contains("pool.example"), "{printed}");
    // The config file itself may come from the environment.
    let out = wgminer(&["config", "--print", "mine"], &[("WGMINER_CONFIG", config)]);
    assert!(text(&out).0.contains("status-every = 9  # config file"), "{}", text(&out).1);
}

#[test]
fn every_kind_of_bad_value_names_its_line() {
    let cases = [
        ("device = [\"cpu\"]\nstatus-evry = 3\n", "line 2: unknown key `status-evry`"),
        ("status-every = 0\n", "line 1: `status-every`: invalid value '0'"),
        ("status-every = \"soon\"\n", "line 1: `status-every`: invalid value 'soon'"),
        ("status-every = [1, 2]\n", "line 1: `status-every` takes one value, not a list"),
        ("api-allow = [\"W:300.0.0.1\"]\n", "line 1: `api-allow`: invalid value 'W:300.0.0.1'"),
        ("device = [\"\"]\n", "line 1: `device`: invalid value ''"),
        ("\n\n[[pool]]\nuser = \"u\"\n", "line 3: [[pool]] without url"),
        ("[[pool]]\nurl = \"a:1\"\npassword = \"p\"\n", "line 3: unknown key `password` in [[pool]]"),
        ("status-every = 5\nstatus-every = 6\n", "line 2: "),
        ("status-every = \n", "line 1: "),
        ("seconds = { a = 1 }\n", "line 1: `seconds` takes a string, number or true/false"),
    ];
    for (contents, expected) in cases {
        let path = file("bad", contents);
        let out =
            wgminer(&["--config", path.to_str().unwrap(), "mine", "-o", "tcp://x:1", "-u", "u", "--seconds", "5"], &[]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{contents:?}: {err}");
        let prefix = format!("wgminer: config file {}, ", path.display());
        assert!(err.starts_with(&prefix) && err.contains(expected), "{contents:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = wgminer(&["--config", "/nonexistent/wgminer.toml", "devices"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.starts_with("wgminer: config file /nonexistent/wgminer.toml: "), "{}", text(&out).1);
}
