//! `wgminer report` over fixed bench records (two real `bench --json` runs on lavapipe, with
//! different kernel settings): the Markdown table and the SVG chart must match the golden
//! files byte for byte. `UPDATE_GOLDEN=1 cargo test --test report` rewrites them after an
//! intended change; review the diff (and the chart) before committing.

use std::path::{Path, PathBuf};

use wgminer::commands::report;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report").join(name)
}

fn golden(name: &str, actual: &str) {
    let path = data(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == actual, "{} differs from the output; UPDATE_GOLDEN=1 rewrites it:\n{actual}", path.display());
}

#[test]
fn records_merge_into_the_golden_table_and_chart() {
    let reports = report::load(&[data("lavapipe-64x64.jsonl"), data("lavapipe-32x16.jsonl")]).unwrap();
    assert_eq!(reports.len(), 2);
    let rows = report::rows(&reports);
    // Fastest first: the 64×64 kernel, then 32×16, then the sha2 reference.
    let order: Vec<(&str, &str)> = rows.iter().map(|r| (r.backend.as_str(), r.kernel.as_str())).collect();
    assert_eq!(order, [("Vulkan", "64×64, K=1"), ("Vulkan", "32×16, K=1"), ("cpu", "-")]);
    golden("expected.md", &report::markdown(&rows));
    golden("expected.svg", &report::svg(&rows).unwrap());
}

/// A real `bench -d 0 --sustained 1 --sample 5 --json` record on lavapipe (a kernel shape
/// from the cache, the work per nonce, twelve samples): its table gains the sustained rows and
/// Gops/s, and the series is drawn as a line over minutes.
#[test]
fn sustained_runs_get_their_table_and_chart() {
    let reports = report::load(&[data("lavapipe-sustained.jsonl"), data("lavapipe-64x64.jsonl")]).unwrap();
    let rows = report::rows(&reports);
    let sustained: Vec<_> = rows.iter().filter_map(|r| r.sustained.as_ref()).collect();
    assert_eq!(sustained.len(), 1);
    assert_eq!(sustained[0].samples.len(), 12);
    let markdown = report::markdown(&rows);
    assert!(markdown.contains("| Sustained |"), "{markdown}");
    golden("expected-sustained.md", &markdown);
    golden("expected-sustained.svg", &report::sustained_svg(&rows).unwrap().unwrap());
    // Records without a sustained run draw no such chart.
    let plain = report::rows(&report::load(&[data("lavapipe-64x64.jsonl")]).unwrap());
    assert!(report::sustained_svg(&plain).unwrap().is_none());
    assert!(!report::markdown(&plain).contains("Sustained"));
}

/// Power figures: `constructed-power.jsonl` is the sustained lavapipe record above with power,
/// temperature and a sensor name written in by hand (no machine here has a readable RAPL
/// counter): the table gains W, MH/J, J/GH and peak °C (older records say "not reported"), a
/// second chart ranks MH/J, and the sustained chart gains power and temperature below the rate.
#[test]
fn power_records_get_efficiency_columns_and_charts() {
    let reports = report::load(&[data("constructed-power.jsonl"), data("lavapipe-64x64.jsonl")]).unwrap();
    let rows = report::rows(&reports);
    let markdown = report::markdown(&rows);
    assert!(markdown.contains("| 41.5 | 0.3663 | 2730.0 | - |"), "{markdown}");
    assert!(markdown.contains("| not reported | - | - | - |"), "older records load, without power: {markdown}");
    golden("expected-power.md", &markdown);
    golden("expected-efficiency.svg", &report::efficiency_svg(&rows).unwrap().unwrap());
    let sustained = report::sustained_svg(&rows).unwrap().unwrap();
    assert!(sustained.contains("\npower\n") && sustained.contains("\ntemperature\n"), "the two panels below the rate");
    golden("expected-power-sustained.svg", &sustained);
    let plain = report::rows(&report::load(&[data("lavapipe-64x64.jsonl")]).unwrap());
    assert!(report::efficiency_svg(&plain).unwrap().is_none(), "no power, no efficiency chart");
}

#[test]
fn a_bad_record_names_its_file_and_line() {
    let path = std::env::temp_dir().join(format!("wgminer-test-report-{}.jsonl", std::process::id()));
    let good = std::fs::read_to_string(data("lavapipe-64x64.jsonl")).unwrap();
    std::fs::write(&path, format!("{}\n\n{{\"devices\": 3}}\n", good.trim())).unwrap();
    let error = report::load(&[&path]).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{}, line 3: not a `wgminer bench --json` record", path.display())), "{error}");
    let empty = std::env::temp_dir().join(format!("wgminer-test-report-empty-{}.jsonl", std::process::id()));
    std::fs::write(&empty, "\n").unwrap();
    assert_eq!(report::load(&[&empty]).unwrap_err().to_string(), "no bench records in 1 file(s)");
}
