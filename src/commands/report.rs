//! `wgminer report FILES…`: merges `bench --json` records from any number of machines into a
//! Markdown table and an SVG bar chart (drawn by plotters), so that GPUs of different vendors
//! and drivers compare side by side.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use plotters::prelude::*;

use super::record::{Efficiency, Report, SampleReading, Sustained};

/// One measured device, as the table and the chart show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub device: String,
    pub vendor: String,
    pub backend: String,
    pub driver: String,
    pub device_type: String,
    pub os: String,
    pub kernel: String,
    /// Effective Gops/s (median × operations per nonce), for records that have it.
    pub gops: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub spread_percent: f64,
    pub runs: usize,
    pub cpu_reference: f64,
    pub ratio: f64,
    pub host_cpu: String,
    pub date: String,
    /// With `bench --sustained`: the rate over time.
    pub sustained: Option<Sustained>,
    /// The device's sensor, or "not reported".
    pub sensor: String,
    /// Power and MH/J, where the sensor reports power.
    pub power: Option<Efficiency>,
}

/// `wgminer report FILE… --svg PATH`: the tables to stdout, the chart to `svg`, and the rates
/// over time of sustained runs, if any, beside it (`NAME-sustained.svg`).
pub fn run(files: &[std::path::PathBuf], svg_path: &Path) -> anyhow::Result<()> {
    let rows = rows(&load(files)?);
    print!("{}", markdown(&rows));
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("--svg {}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
        anyhow::Ok(())
    };
    write(svg_path, svg(&rows)?)?;
    let stem = svg_path.file_stem().map_or("wgminer-report".into(), |s| s.to_string_lossy());
    if let Some(chart) = efficiency_svg(&rows)? {
        write(&svg_path.with_file_name(format!("{stem}-efficiency.svg")), chart)?;
    }
    if let Some(chart) = sustained_svg(&rows)? {
        write(&svg_path.with_file_name(format!("{stem}-sustained.svg")), chart)?;
    }
    Ok(())
}

/// Reads every record of `paths`: one JSON object per line (`bench --json >> results.jsonl`
/// appends), blank lines skipped. Errors name the file and line.
pub fn load(paths: &[impl AsRef<Path>]) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let report: Report = serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!("{}, line {}: not a `wgminer bench --json` record: {e}", path.display(), i + 1)
            })?;
            reports.push(report);
        }
    }
    if reports.is_empty() {
        anyhow::bail!("no bench records in {} file(s)", paths.len());
    }
    Ok(reports)
}

/// Every device of every record, fastest first.
pub fn rows(reports: &[Report]) -> Vec<Row> {
    let mut rows: Vec<Row> = reports
        .iter()
        .flat_map(|r| {
            r.devices.iter().map(move |d| Row {
                device: d.device.name.clone(),
                vendor: d.device.vendor.clone(),
                backend: d.device.backend.clone(),
                driver: d.device.driver.clone(),
                device_type: d.device.device_type.clone(),
                os: format!("{} {}", r.os, r.arch),
                // The sha2 reference runs no kernel.
                kernel: match (&d.kernel, r.kernel.workgroup_size, r.kernel.nonces_per_invocation) {
                    (Some(k), _, _) => k.shape.to_string(),
                    // The sha2 reference runs no kernel.
                    _ if d.device.backend == "cpu" => "-".into(),
                    // Records from before K was measured: one version a nonce.
                    (None, Some(w), Some(n)) => format!("{w}×{n}, K=1"),
                    _ => "?".into(),
                },
                gops: d.gops,
                median: d.mhs.median,
                min: d.mhs.min,
                max: d.mhs.max,
                spread_percent: d.mhs.spread_percent(),
                runs: d.mhs.runs.len(),
                cpu_reference: r.cpu_reference.mhs.median,
                ratio: d.ratio_to_cpu,
                host_cpu: r.host_cpu.clone().unwrap_or_default(),
                date: r.date.get(..10).unwrap_or(&r.date).to_string(),
                sustained: d.sustained.clone(),
                sensor: d.sensor.clone(),
                power: d.power.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| b.median.total_cmp(&a.median).then_with(|| a.device.cmp(&b.device)));
    rows
}

/// Pipes would split a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| # | Device | Vendor | Type | Backend | Driver | OS | Kernel (wg×nonces, K) | MH/s (median) | Gops/s | W | MH/J | J/GH | Peak °C | Spread | Runs | × CPU ref | CPU ref MH/s | Host CPU | Date |\n\
         |---|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.1}% ({:.2}–{:.2}) | {} | {:.2} | {:.2} | {} | {} |",
            i + 1,
            cell(&r.device),
            cell(&r.vendor),
            cell(&r.device_type),
            cell(&r.backend),
            cell(&r.driver),
            cell(&r.os),
            r.kernel,
            r.median,
            r.gops.map_or("-".into(), |g| format!("{g:.1}")),
            power_cells(r),
            r.spread_percent,
            r.min,
            r.max,
            r.runs,
            r.ratio,
            r.cpu_reference,
            cell(&r.host_cpu),
            r.date
        );
    }
    markdown_sustained(rows, &mut out);
    out
}

/// W, MH/J, J/GH and peak °C, or "not reported" where the device's sensor gave no power.
fn power_cells(r: &Row) -> String {
    match &r.power {
        Some(p) => format!(
            "{:.1} | {:.4} | {:.1} | {}",
            p.watts,
            p.mh_per_joule,
            p.joules_per_gh,
            p.peak_temp_c.map_or("-".into(), |t| format!("{t:.0}"))
        ),
        None => "not reported | - | - | -".into(),
    }
}

/// A bar per device whose power was reported: megahashes per joule.
pub fn efficiency_svg(rows: &[Row]) -> anyhow::Result<Option<String>> {
    let measured: Vec<(&Row, &Efficiency)> = rows.iter().filter_map(|r| Some((r, r.power.as_ref()?))).collect();
    if measured.is_empty() {
        return Ok(None);
    }
    let labels: Vec<String> =
        measured.iter().map(|(r, p)| format!("{} ({}, {:.0} W, {})", r.device, r.backend, p.watts, r.sensor)).collect();
    let values: Vec<(f64, Option<(f64, f64)>)> = measured.iter().map(|(_, p)| (p.mh_per_joule, None)).collect();
    bars("wgminer bench: efficiency, MH/J (megahashes per joule)", "MH/J", &labels, &values).map(Some)
}

/// The sustained runs: how each device's rate held, first window against the last.
fn markdown_sustained(rows: &[Row], out: &mut String) {
    let runs: Vec<(&Row, &Sustained)> = rows.iter().filter_map(|r| Some((r, r.sustained.as_ref()?))).collect();
    if runs.is_empty() {
        return;
    }
    out.push_str(
        "\n| Sustained | Backend | OS | Seconds | Samples | Window (s) | First MH/s | Last MH/s | Last / first | Slowest–fastest sample | Date |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for (r, s) in runs {
        let (low, high) = s.range();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {:.0} | {:.2} | {:.2} | {:.1}% | {:.2}–{:.2} | {} |",
            cell(&r.device),
            cell(&r.backend),
            cell(&r.os),
            s.samples.last().map_or(0.0, |x| x.0),
            s.samples.len(),
            s.window_s,
            s.first_window_mhs,
            s.last_window_mhs,
            s.last_to_first * 100.0,
            low,
            high,
            r.date
        );
    }
}

/// A line per device with a sustained run: MH/s against minutes since its start; below it
/// the power and the temperature, where the runs read a sensor.
pub fn sustained_svg(rows: &[Row]) -> anyhow::Result<Option<String>> {
    let runs: Vec<(&Row, &Sustained)> = rows.iter().filter_map(|r| Some((r, r.sustained.as_ref()?))).collect();
    if runs.is_empty() {
        return Ok(None);
    }
    let minutes = |t: f64| t / 60.0;
    let xmax = runs.iter().flat_map(|(_, s)| s.samples.last()).map(|x| minutes(x.0)).fold(0.0, f64::max).max(1e-3);
    let label = |r: &Row, s: &Sustained| {
        format!("{} ({}, {}): last / first {:.1}%", r.device, r.backend, r.os, s.last_to_first * 100.0)
    };
    let rates: Vec<Line> =
        runs.iter().map(|(r, s)| (label(r, s), s.samples.iter().map(|&(t, m)| (minutes(t), m)).collect())).collect();
    let sensed = |f: fn(&SampleReading) -> Option<f64>| -> Vec<Line> {
        runs.iter()
            .filter(|(_, s)| !s.readings.is_empty())
            .map(|(r, s)| (label(r, s), s.readings.iter().filter_map(|x| Some((minutes(x.t), f(x)?))).collect()))
            .collect()
    };
    let (watts, temps) = (sensed(|x| x.watts), sensed(|x| x.temp_c));
    let panels: Vec<(&str, &str, Vec<Line>)> = [
        ("wgminer bench --sustained: MH/s over time", "MH/s", rates),
        ("power", "W", watts),
        ("temperature", "°C", temps),
    ]
    .into_iter()
    .filter(|(_, _, lines)| lines.iter().any(|(_, points)| !points.is_empty()))
    .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 520 * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        for ((caption, unit, lines), area) in panels.iter().zip(root.split_evenly((panels.len(), 1))) {
            line_panel(&area, caption, unit, xmax, lines)?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(Some(svg))
}

/// A labelled series of (minutes, value).
type Line = (String, Vec<(f64, f64)>);

/// One chart of lines over minutes.
fn line_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    xmax: f64,
    lines: &[Line],
) -> anyhow::Result<()> {
    let ymax = lines.iter().flat_map(|(_, points)| points).map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("minutes").y_desc(unit).draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i);
        chart
            .draw_series(std::iter::once(PathElement::new(points.clone(), color.stroke_width(2))))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A horizontal bar per device: the median, with a line from the slowest to the fastest run.
pub fn svg(rows: &[Row]) -> anyhow::Result<String> {
    let labels: Vec<String> =
        rows.iter().map(|r| format!("{} ({}, {}, {})", r.device, r.backend, r.kernel, r.os)).collect();
    let values: Vec<(f64, Option<(f64, f64)>)> = rows.iter().map(|r| (r.median, Some((r.min, r.max)))).collect();
    bars("wgminer bench: median MH/s, line = slowest to fastest run", "MH/s", &labels, &values)
}

/// A horizontal bar for each value, labelled, with a line over its range where it has one.
fn bars(caption: &str, unit: &str, labels: &[String], values: &[(f64, Option<(f64, f64)>)]) -> anyhow::Result<String> {
    let n = values.len() as u32;
    let height = 120 + 40 * n;
    let top = values.iter().map(|(v, range)| range.map_or(*v, |r| r.1.max(*v))).fold(0.0, f64::max);
    let xmax = top.max(1e-3) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(420)
            .build_cartesian_2d(0.0..xmax, (0..n.saturating_sub(1)).into_segmented())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(unit)
            .y_labels(n as usize)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, (v, _))| {
                let i = i as u32;
                let mut bar = Rectangle::new(
                    [(0.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))],
                    Palette99::pick(i as usize).mix(0.8).filled(),
                );
                bar.set_margin(8, 8, 0, 0);
                bar
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, (_, range))| {
                let (low, high) = (*range)?;
                let y = SegmentValue::CenterOf(i as u32);
                Some(PathElement::new(vec![(low, y.clone()), (high, y)], BLACK.stroke_width(2)))
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// The arguments of `wgminer report` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Files of bench records
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Where to write the chart
    #[arg(long, default_value = "wgminer-report.svg", value_name = "PATH")]
    pub svg: std::path::PathBuf,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        run(&self.files, &self.svg)?;
        Ok(ExitCode::SUCCESS)
    }
}
