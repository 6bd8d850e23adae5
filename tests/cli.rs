//! The binary as a user runs it: exact JSON out of `scan`, PASS lines out of `selftest`, and
//! clear errors (exit 2, no panic) for bad input.

use std::path::Path;
use std::process::{Command, Output};

use wgminer::commands::record::Report;
use wgminer::gpu::shape::{Origin, Shape};

const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

/// The binary, with its kernel shape cache in the test build's own directory (shared by these
/// tests, so that the shape is measured once), never the user's.
fn wgminer(args: &[&str]) -> Output {
    with_cache(args, &Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"))
}

fn with_cache(args: &[&str], xdg_cache_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgminer")).args(args).env("XDG_CACHE_HOME", xdg_cache_home).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn scan_prints_the_genesis_nonce_then_a_summary() {
    for device in ["auto", "cpu"] {
        let out = wgminer(&[
            "scan",
            "--header",
            GENESIS,
            "--start",
            "0x7c2b0000",
            "--count",
            "65536",
            "-d",
            device,
            "--dispatch-ms",
            "5",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            serde_json::json!({"type": "hit", "nonce": 2083236893u32, "nonce_hex": "7c2bac1d", "version_hex": "00000001",
                "hash": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"})
        );
        assert_eq!(lines[1]["type"], "summary");
        assert_eq!(lines[1]["hashes"], 65536);
        assert_eq!(lines[1]["hits"], 1);
        assert_eq!(lines[1]["hw_errors"], 0);
    }
}

/// Block 881,423's share was mined with rolled version bits (0x2e596000 under 0x1fffe000; see
/// `wire::stratum_v1::tests`): `scan --versions` sweeps four versions of each nonce, as a unit
/// of a pool's job is swept, and finds it at its own version on the GPU and the CPU reference.
#[test]
fn scan_finds_a_real_version_rolled_share() {
    let header = "0060592ee3c96a8a70ca15fe215e99f84ab64c43e1b5d2c43b540100000000000000000076f63a35f1b8b5016d3eb0cce2eebbdf58bf8fbea4e870c8f770346bdfcf622d69c19a678a9a021702fb05ff";
    for device in ["auto", "cpu"] {
        let versions = "2e590000,2e592000,2e594000,2e596000";
        let args = ["scan", "--header", header, "--start", "0xff050000", "--count", "65536", "--versions", versions];
        let out = wgminer(&[&args[..], &["-d", device]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{}", stdout(&out));
        assert_eq!(
            lines[0],
            serde_json::json!({"type": "hit", "nonce": 0xff05_fb02u32, "nonce_hex": "ff05fb02", "version_hex": "2e596000",
                "hash": "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd"})
        );
        assert_eq!((lines[1]["hashes"].as_u64(), lines[1]["hw_errors"].as_u64()), (Some(4 * 65536), Some(0)));
    }
    let nine = ["20000000"; 9].join(",");
    let out = wgminer(&["scan", "--header", header, "--versions", &nine]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at most 8 versions"), "{}", stderr(&out));
    let out = wgminer(&["scan", "--header", header, "--versions", "2e59600"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected 8 hex digits"), "{}", stderr(&out));
}

#[test]
fn scan_with_a_difficulty_reports_every_share() {
    // The real block nonce is also a share at difficulty 1/65536.
    let out = wgminer(&[
        "scan",
        "--header",
        GENESIS,
        "--start",
        "0x7c2bac1d",
        "--count",
        "1",
        "--difficulty",
        "0.0000152587890625",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"nonce\":2083236893"), "{}", stdout(&out));
}

#[test]
fn selftest_passes_on_the_default_device() {
    let out = wgminer(&["selftest", "--dispatch-ms", "10"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(text.lines().filter(|l| l.starts_with("PASS")).count(), 9, "{text}");
    assert!(text.contains("9 passed, 0 failed"), "{text}");
}

#[test]
fn devices_lists_an_adapter_and_the_cpu() {
    let out = wgminer(&["devices", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() >= 2, "no adapter found: install mesa-vulkan-drivers");
    assert_eq!(rows[0]["index"], "0");
    assert_eq!(rows.last().unwrap()["index"], "cpu");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&["scan", "--header", "abcd"], "80 bytes"),
        (&["scan", "--header", &"zz".repeat(80)], "not valid hex"),
        (&["scan", "--header", GENESIS, "--count", "4294967297"], "at most 2^32"),
        (&["scan", "--header", GENESIS, "--start", "4294967296"], "past 0xffffffff"),
        (&["scan", "--header", GENESIS, "--difficulty=-1"], "positive finite"),
        (&["scan", "--header", GENESIS, "--target", "xyz"], "64 hex digits"),
        (&["scan", "--header", GENESIS, "--device", "no-such-gpu"], "no adapter matches"),
        (&["bench", "--seconds", "0"], "positive number"),
        // Beyond what a Duration holds: refused by the parser, not a panic in from_secs_f64.
        (&["demo", "--seconds", "1e300"], "positive number up to 1e9"),
        (&["demo", "--http-allow", "300.1.1.1"], "not an address"),
        (&["demo", "--temp-cutoff", "hot"], "temperature in °C from 0 to 150"),
        (&["demo", "--temp-target", "70"], "--temp-cutoff"),
    ];
    for (args, needle) in cases {
        let out = wgminer(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A header whose nBits is negative cannot be a block target.
    let negative = format!("{}{}{}", &GENESIS[..144], "ffff801d", &GENESIS[152..]);
    let out = wgminer(&["scan", "--header", &negative, "--count", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("negative"), "{}", stderr(&out));
}

/// Settings that cannot work are refused before mining: an HTTP listener beyond loopback
/// without an allow list (as the API), a temperature target above the cutoff.
#[test]
fn listener_and_guard_settings_that_cannot_work_are_refused() {
    for (args, needle) in [
        (&["demo", "-d", "cpu", "--http-listen", "0.0.0.0:8080"][..], "name who may connect with --http-allow"),
        (&["demo", "-d", "cpu", "--http-allow", "10.0.0.0/8"][..], "--http-allow needs --http-listen"),
        (&["pool", "--http-listen", "localhost:80"][..], "is not an address:port"),
        (&["pool", "--http-allow-host", "miner.lan"][..], "--http-allow-host needs --http-listen"),
        (&["pool", "--http-listen", "--http-allow-host", "miner.lan:80"][..], "`miner.lan:80` is not a host name"),
        (&["demo", "-d", "cpu", "--temp-cutoff", "80", "--temp-target", "85"][..], "must be below --temp-cutoff"),
    ] {
        let out = wgminer(args);
        assert!(!out.status.success() && stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn piped_demo_prints_plain_status_lines_and_logs_json_events_to_a_file() {
    let log = std::env::temp_dir().join(format!("wgminer-test-log-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let journal = std::env::temp_dir().join(format!("wgminer-test-log-journal-{}.jsonl", std::process::id()));
    let out = wgminer(&[
        "demo",
        "--seconds",
        "3",
        "--difficulty",
        "0.0002",
        "-d",
        "cpu",
        "--status-every",
        "1",
        "--journal",
        journal.to_str().unwrap(),
        "--log-format",
        "json",
        "--log-file",
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\r') && !text.contains('\x1b'), "control characters in piped output: {text:?}");
    // The demo is for looking at: its dashboard's URL comes first.
    assert!(text.starts_with("dashboard: http://127.0.0.1:"), "{text}");
    assert!(text.lines().filter(|l| l.contains(" MH/s now, ")).count() >= 2, "{text}");
    assert!(text.lines().any(|l| l.starts_with("summary: ")), "{text}");
    assert_eq!(stderr(&out), "", "events go to the log file");

    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let accepted: Vec<_> = events.iter().filter(|e| e["fields"]["message"] == "share accepted").collect();
    assert!(!accepted.is_empty(), "{events:?}");
    assert_eq!(accepted[0]["level"], "INFO");
    assert_eq!(accepted[0]["fields"]["nonce"].as_str().unwrap().len(), 8);
    assert!(events.iter().all(|e| e["timestamp"].is_string()));
}

/// The README's `demo --sv2`: the embedded pool over Noise, header-only work on a standard
/// channel, every share the miner counts accepted by the pool's own check. Two shares: the
/// channel opens at a nominal 100 MH/s and its target follows the CPU's rate after a second or
/// two, then 30 shares a minute (120 s is only the ceiling).
#[test]
fn demo_over_stratum_v2_has_its_shares_accepted_by_the_embedded_pool() {
    let journal = std::env::temp_dir().join(format!("wgminer-test-demo-sv2-{}.jsonl", std::process::id()));
    let journal = journal.to_str().unwrap();
    let out =
        wgminer(&["demo", "--sv2", "standard", "--shares", "2", "--seconds", "120", "-d", "cpu", "--journal", journal]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (text, log) = (stdout(&out), stderr(&out));
    assert!(log.contains("embedded Stratum V2 pool listening on stratum2+tcp://127.0.0.1:"), "{log}");
    let pool_side = text.lines().find_map(|l| l.strip_prefix("pool side: ")).expect("a pool-side line");
    let accepted: u64 = pool_side.split(' ').next().unwrap().parse().unwrap();
    assert!(accepted >= 2 && pool_side.ends_with("accepted, 0 rejected"), "{text}");
    assert!(text.contains(&format!("accepted {accepted}, rejected 0, stale 0, hardware errors 0")), "{text}");
}

#[test]
fn log_level_filters_events() {
    let journal = std::env::temp_dir().join(format!("wgminer-test-quiet-journal-{}.jsonl", std::process::id()));
    let demo = |extra: &[&str]| {
        let mut args = vec!["demo", "--shares", "1", "--seconds", "60", "--difficulty", "0.0002", "-d", "cpu"];
        args.extend(["--journal", journal.to_str().unwrap()]);
        args.extend_from_slice(extra);
        wgminer(&args)
    };
    let out = demo(&["--log-level", "warn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("INFO") && !stderr(&out).contains("share accepted"), "{}", stderr(&out));
    let out = demo(&[]);
    assert!(stderr(&out).contains("share accepted"), "{}", stderr(&out));
    let out = wgminer(&["devices", "--log-level", "loud"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_json_is_a_record_that_report_reads() {
    let out = wgminer(&["bench", "--seconds", "0.2", "--runs", "2", "-d", "cpu", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: Report = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((record.runs, record.os.as_str(), record.devices.len()), (2, std::env::consts::OS, 1));
    assert_eq!(record.devices[0].mhs.runs.len(), 2);
    assert!(
        record.devices[0].mhs.min <= record.devices[0].mhs.median
            && record.devices[0].mhs.median <= record.devices[0].mhs.max
    );
    let ops = wgminer::gpu::ops::per_header(wgminer::gpu::kernel::SOURCE, "sweep", 1).unwrap();
    assert_eq!(record.kernel.ops_per_nonce, Some(ops));
    // The CPU reference runs no kernel.
    let cpu = &record.devices[0];
    assert_eq!((cpu.kernel, cpu.ops_per_hash, cpu.gops), (None, None, None));
    assert!(record.cpu_reference.mhs.median > 0.0);
    assert!(record.date.starts_with("20") && record.date.ends_with('Z'), "{}", record.date);
}

/// `grind` as `bitcoin-util grind` (Bitcoin Core, src/bitcoin-util.cpp): the solved header on
/// stdout, only its nonce changed, its hash under its own nBits; regtest's 207fffff and signet's
/// 1e0377ae on the default device (lavapipe in CI).
#[test]
fn grind_solves_regtest_and_signet_headers_like_bitcoin_util() {
    use wgminer::work::{Work, header_from_hex};
    let prefix = &GENESIS[..144];
    for bits in ["ffff7f20", "ae77031e"] {
        let header = format!("{prefix}{bits}00000000");
        let out = wgminer(&["grind", &header]);
        assert!(out.status.success(), "{}", stderr(&out));
        let solved = stdout(&out).trim().to_string();
        assert_eq!(solved.len(), 160, "{solved}");
        assert_eq!(solved[..152], header[..152], "only the nonce changes");
        let solved = header_from_hex(&solved).unwrap();
        let work = Work::block(solved).unwrap();
        assert!(work.target.is_met_by(solved.block_hash()), "{bits}: {}", solved.block_hash());
    }
}

/// bitcoin-util's failures, word for word, with exit status 1.
#[test]
fn grind_fails_as_bitcoin_util_does() {
    let prefix = &GENESIS[..144];
    let cases = [
        (vec!["grind"], "Must specify block header to grind"),
        (vec!["grind", "a", "b"], "Must specify block header to grind"),
        (vec!["grind", "zz"], "Could not decode block header"),
    ];
    for (args, message) in cases {
        let out = wgminer(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    // A negative nBits (0x1d800001) or a zero one has no target to meet: bitcoin-util's
    // grind_task returns at once, and so does this.
    for bits in ["0100801d", "00000000"] {
        let out = wgminer(&["grind", "-d", "cpu", &format!("{prefix}{bits}00000000")]);
        assert_eq!(out.status.code(), Some(1), "{bits}");
        assert!(stderr(&out).contains("Could not satisfy difficulty target"), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
    }
}

/// The kernel's shape on lavapipe: measured on first use within the budget and written to the
/// cache, read back on the next start, measured again with --retune; options given win and
/// leave the cache alone.
#[test]
fn the_kernel_shape_is_measured_once_then_remembered() {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shape-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let file = home.join("wgminer/kernel-shapes.json");
    let bench = |extra: &[&str]| -> wgminer::commands::record::KernelShape {
        let mut args = vec!["bench", "-d", "0", "--seconds", "0.2", "--runs", "1", "--json"];
        args.extend_from_slice(extra);
        let out = with_cache(&args, &home);
        assert!(out.status.success(), "{}", stderr(&out));
        let record: Report = serde_json::from_str(stdout(&out).trim()).unwrap();
        let device = &record.devices[0];
        let k = device.kernel.unwrap().shape.versions_per_nonce;
        let ops = wgminer::gpu::ops::per_header(wgminer::gpu::kernel::SOURCE, "sweep", k).unwrap();
        assert_eq!(device.ops_per_hash, Some(ops.fused));
        let gops = device.mhs.median * ops.fused / 1e3;
        assert!((device.gops.unwrap() - gops).abs() < 1e-9);
        device.kernel.unwrap()
    };
    let first = bench(&[]);
    let Origin::Measured { shapes, seconds } = first.origin else { panic!("{first:?}") };
    assert!(shapes >= 1 && seconds > 0.0, "{first:?}");
    assert!([32, 64, 128, 256].contains(&first.shape.workgroup_size), "{first:?}");
    assert!([16, 64, 256].contains(&first.shape.nonces_per_invocation), "{first:?}");
    assert!([1, 2, 4, 8].contains(&first.shape.versions_per_nonce), "{first:?}");
    let cached = std::fs::read_to_string(&file).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&cached).unwrap();
    let entries = entries.as_object().unwrap();
    assert_eq!(entries.len(), 1, "{cached}");
    let (key, entry) = entries.iter().next().unwrap();
    assert!(key.contains("llvmpipe") && key.contains("kernel "), "{key}");
    assert_eq!(serde_json::from_value::<Shape>(entry["shape"].clone()).unwrap(), first.shape);

    let second = bench(&[]);
    assert_eq!((second.shape, second.origin), (first.shape, Origin::Cache));
    // `devices` shows the remembered shape without measuring anything.
    let out = with_cache(&["devices", "--json"], &home);
    let row: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(serde_json::from_value::<Shape>(row["kernel_shape"].clone()).unwrap(), first.shape);

    let again = bench(&["--retune"]);
    assert!(matches!(again.origin, Origin::Measured { .. }), "{again:?}");
    let cached = std::fs::read_to_string(&file).unwrap();

    let given = bench(&["--workgroup-size", "32", "--nonces-per-invocation", "16", "--versions-per-nonce", "2"]);
    let shape = Shape { workgroup_size: 32, nonces_per_invocation: 16, versions_per_nonce: 2 };
    assert_eq!((given.shape, given.origin), (shape, Origin::CommandLine));
    // One dimension given: the other is measured, unless the remembered shape has the given
    // one (then it is taken from the cache), so give the one it does not have.
    let other = if again.shape.workgroup_size == 32 { 64 } else { 32 };
    let half = bench(&["--workgroup-size", &other.to_string()]);
    assert_eq!(half.shape.workgroup_size, other);
    assert!(matches!(half.origin, Origin::Measured { .. }), "{half:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), cached, "given options leave the cache alone");

    // A cache that is not JSON is measured over and rewritten, not a failure.
    std::fs::write(&file, "{ not json").unwrap();
    let repaired = bench(&[]);
    assert!(matches!(repaired.origin, Origin::Measured { .. }), "{repaired:?}");
    assert!(serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&file).unwrap()).is_ok());
    std::fs::remove_dir_all(&home).unwrap();
}

/// `bench --sustained`: the series in the record, sampled for as long as asked; nonsense
/// durations are refused by the parser.
#[test]
fn bench_sustained_keeps_the_series() {
    let args = ["bench", "-d", "cpu", "--seconds", "0.2", "--runs", "1", "--sustained", "0.05", "--sample", "0.5"];
    let out = wgminer(&[&args[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let record: Report = serde_json::from_str(stdout(&out).trim()).unwrap();
    let s = record.devices[0].sustained.as_ref().unwrap();
    let times: Vec<f64> = s.samples.iter().map(|x| x.0).collect();
    assert!(times.len() >= 5 && times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(*times.last().unwrap() >= 3.0 && *times.last().unwrap() < 4.5, "{times:?}");
    assert!(s.samples.iter().all(|x| x.1 > 0.0));
    assert_eq!(s.window_s, times.last().unwrap() / 4.0);
    for bad in ["0", "-1", "nan", "soon"] {
        let out = wgminer(&["bench", "-d", "cpu", &format!("--sustained={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains("expected a positive number"), "{}", stderr(&out));
    }
}
