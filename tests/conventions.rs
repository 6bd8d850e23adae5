//! What a newcomer and a packager meet first: the README's two commands (the demo on a machine
//! with no adapter, the test script's set-up), a first screen with no false error, completions,
//! the man page, the systemd unit and the example config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conventions-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, run in `dir` with its shape cache there, never the user's.
fn wgminer(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wgminer"));
    command.args(args).current_dir(dir).env("XDG_CACHE_HOME", dir.join("cache"));
    command
}

/// No Vulkan driver and no other backend: what a fresh machine without Mesa or a GPU driver
/// shows. The Vulkan loader reads its drivers' manifests from `VK_DRIVER_FILES` (and, older,
/// `VK_ICD_FILENAMES`) instead of the system's when set; wgpu takes its backends from
/// `WGPU_BACKEND` (wgpu-types' `Backends::from_env`).
fn without_adapters(command: &mut Command) -> &mut Command {
    command
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("WGPU_BACKEND", "vulkan")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Lines that read as an error in a run that succeeded: GL's probing once wrote libwayland's
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` on every headless start.
fn false_errors(out: &Output) -> Vec<String> {
    let (stdout, stderr) = text(out);
    stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| line.to_lowercase().contains("error:") || line.contains("ERROR"))
        .map(String::from)
        .collect()
}

/// The summary's accepted count.
fn accepted(stdout: &str) -> u64 {
    let summary = stdout.lines().find(|l| l.starts_with("summary:")).unwrap_or_else(|| panic!("no summary: {stdout}"));
    let count = summary.split("accepted ").nth(1).and_then(|rest| rest.split(',').next()).unwrap();
    count.parse().unwrap()
}

/// The README's first command on a machine with no adapter: the demo mines on the CPU reference
/// device, says so first and in its summary with how to get lavapipe, and its shares are
/// accepted by the embedded pool (which re-hashes each). `mine` still refuses.
#[test]
fn demo_without_an_adapter_mines_accepted_shares_on_the_cpu() {
    let dir = scratch("no-adapter");
    let out = without_adapters(&mut wgminer(&dir, &["demo", "--seconds", "120", "--shares", "2"])).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("no GPU adapter found: mining on the CPU reference device"), "{stdout}");
    assert!(first.contains("apt-get install mesa-vulkan-drivers"), "{first}");
    assert!(accepted(&stdout) >= 2, "{stdout}");
    let after_summary: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("summary:")).collect();
    assert!(after_summary.contains(&first), "the summary says it too: {stdout}");
    assert_eq!(false_errors(&out), Vec::<String>::new());

    let mine = ["mine", "-o", "stratum+tcp://127.0.0.1:9", "-u", "w", "--seconds", "1"];
    let out = without_adapters(&mut wgminer(&dir, &mine)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("no GPU adapter found"), "{}", text(&out).1);
}

/// The first screen of each command a newcomer runs carries no error that is not one, with the
/// machine's adapters and without any.
#[test]
fn no_first_screen_shows_a_false_error() {
    let dir = scratch("first-screen");
    let runs: [&[&str]; 3] =
        [&["devices"], &["demo", "--seconds", "60", "--shares", "1"], &["selftest", "-d", "cpu", "--dispatch-ms", "5"]];
    for args in runs {
        for hidden in [false, true] {
            let mut command = wgminer(&dir, args);
            if hidden {
                without_adapters(&mut command);
            }
            let out = command.output().unwrap();
            assert!(out.status.success(), "{args:?}, adapters hidden: {hidden}: {:?}", text(&out));
            assert_eq!(false_errors(&out), Vec::<String>::new(), "{args:?}, adapters hidden: {hidden}");
        }
    }
}

/// The README's test command: on CI, which runs it, its check finds nothing missing.
#[test]
fn the_test_script_finds_nothing_missing() {
    let out = Command::new(repo("scripts/test")).arg("--check").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "run scripts/test once to set this machine up:\n{stdout}{stderr}");
    assert_eq!(stdout.trim(), "scripts/test: nothing missing");
}

/// A completion script for each shell clap_complete knows; bash's parses (`bash -n`).
#[test]
fn completions_generate_for_every_shell() {
    let dir = scratch("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = wgminer(&dir, &["completions", shell]).output().unwrap();
        let (script, stderr) = text(&out);
        assert!(out.status.success(), "{shell}: {stderr}");
        for word in ["wgminer", "demo", "--device", "completions"] {
            assert!(script.contains(word), "{shell}'s script lacks {word}");
        }
        if shell == "bash" {
            let path = dir.join("wgminer.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(check.status.success(), "bash -n: {}", text(&check).1);
        }
    }
    let out = wgminer(&dir, &["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

/// Whether `tool` runs here. The test script installs every tool these tests use, so on CI
/// each runs; elsewhere a test says what it skipped.
fn installed(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("{tool} is not installed (scripts/test --setup installs it): skipped");
    }
    found
}

/// The man page, and a page per subcommand, render with groff without a warning, and carry
/// the options and the environment variables of the clap definition.
#[test]
fn man_pages_render() {
    let dir = scratch("man");
    let out = wgminer(&dir, &["man"]).output().unwrap();
    let (page, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH wgminer 1"), "{page}");
    let out = wgminer(&dir, &["man", "--dir", "pages"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let mut pages: Vec<String> = std::fs::read_dir(dir.join("pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in ["wgminer.1", "wgminer-mine.1", "wgminer-demo.1", "wgminer-completions.1", "wgminer-man.1"] {
        assert!(pages.iter().any(|p| p == page), "{page} missing from {pages:?}");
    }
    let mine = std::fs::read_to_string(dir.join("pages/wgminer-mine.1")).unwrap();
    for text in ["\\-\\-journal", "WGMINER_JOURNAL", "stratum2+tcp"] {
        assert!(mine.contains(text), "wgminer-mine.1 lacks {text}");
    }
    if !installed("groff") {
        return;
    }
    // -k: through preconv, as man does, for the help texts' UTF-8.
    for page in &pages {
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww"])
            .arg(dir.join("pages").join(page))
            .output()
            .unwrap();
        let (rendered, warnings) = text(&out);
        assert!(out.status.success() && warnings.is_empty(), "{page}: {warnings}");
        assert!(!rendered.is_empty(), "{page}");
    }
}

/// contrib/systemd/wgminer.service passes `systemd-analyze verify`, with its ExecStart pointed
/// at this build (verify checks that the binary exists).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo("contrib/systemd/wgminer.service")).unwrap();
    for setting in ["DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=wgminer", "Restart=on-failure"] {
        assert!(unit.lines().any(|l| l == setting), "{setting} missing");
    }
    assert!(unit.contains("ExecStart=/usr/local/bin/wgminer --config %d/wgminer.toml mine"), "{unit}");
    if !installed("systemd-analyze") {
        return;
    }
    let dir = scratch("systemd");
    let path = dir.join("wgminer.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/wgminer", env!("CARGO_BIN_EXE_wgminer"))).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success() && stderr.is_empty(), "{stdout}{stderr}");
}

/// contrib/wgminer.toml is a config file `wgminer config` accepts, for `mine`, its pools in
/// order and its password masked.
#[test]
fn the_example_config_loads() {
    let dir = scratch("config");
    let example = repo("contrib/wgminer.toml");
    let out = wgminer(&dir, &["--config", example.to_str().unwrap(), "config", "--print", "mine"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let main = stdout.find("url = \"stratum+tcp://pool.example:3333\"").expect("the first pool");
    let backup = stdout.find("url = \"stratum+ssl://backup.example:4443\"").expect("the backup pool");
    assert!(main < backup, "{stdout}");
    assert!(stdout.contains("temp-cutoff = 90"), "{stdout}");
    assert!(!stdout.contains("pass = \"x\""), "{stdout}");
}
