//! Logs and the status line. Events (shares, blocks, pool changes, errors) are `tracing`
//! events: text or JSON, to stderr or a file, filtered by level. The status line is not an
//! event: on a terminal it is redrawn in place at the bottom of the screen, with events
//! printed above it; when stdout is a pipe or a file it is a plain line each interval, so
//! piped output never carries control characters.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub level: Level,
    pub format: LogFormat,
    /// Events go here (appended) instead of stderr.
    pub file: Option<PathBuf>,
}

/// The status line now on the terminal, to redraw after an event is printed above it.
static STATUS: Mutex<Option<String>> = Mutex::new(None);

fn status_on_terminal() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Shows the status line: in place on a terminal, a plain line otherwise.
pub fn status(line: &str) {
    let mut out = std::io::stdout().lock();
    if status_on_terminal() {
        let _ = write!(out, "\r\x1b[2K{line}");
        *STATUS.lock().unwrap_or_else(|p| p.into_inner()) = Some(line.to_string());
    } else {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Ends the in-place status line, before the summary is printed under it.
pub fn end_status() {
    if STATUS.lock().unwrap_or_else(|p| p.into_inner()).take().is_some() {
        println!();
    }
}

/// Writes events to stderr, first clearing the status line on a terminal and redrawing it after.
struct Console;

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let status = STATUS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = status.as_ref() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            std::io::stderr().write_all(buf)?;
            let _ = write!(out, "{line}");
            let _ = out.flush();
        } else {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Logging that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    // Not a `source`: the reason is said here once, not again by the error chain.
    #[error("--log-file {path}: {error}")]
    File { path: std::path::PathBuf, error: std::io::Error },
    #[error("cannot start logging: {0}")]
    Init(String),
}

/// Installs the subscriber; call once, at start.
pub fn init(options: &LogOptions) -> Result<(), LogError> {
    let builder = tracing_subscriber::fmt().with_max_level(options.level).with_target(false);
    let result = match (&options.file, options.format) {
        (Some(path), format) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| LogError::File { path: path.clone(), error })?;
            let writer = Mutex::new(file);
            match format {
                LogFormat::Text => builder.with_ansi(false).with_writer(writer).try_init(),
                LogFormat::Json => builder.json().with_writer(writer).try_init(),
            }
        }
        (None, LogFormat::Text) => {
            builder.with_ansi(std::io::stderr().is_terminal()).with_writer(|| Console).try_init()
        }
        (None, LogFormat::Json) => builder.json().with_writer(|| Console).try_init(),
    };
    result.map_err(|e| LogError::Init(e.to_string()))
}

/// A peer's text with its control characters escaped, so that a pool or a node cannot forge
/// log lines.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Events of one kind counted for the log, which says them at most once a second: a flood
/// (a pool that sets difficulty 1e-9 and never answers) is a line a second, not one an
/// event. The first of a quiet spell is said at once, on its own.
#[derive(Debug, Default)]
pub struct Tally {
    unsaid: u64,
    last_said: Option<std::time::Instant>,
}

impl Tally {
    /// Counts `n` more; the count to say now (every one not said yet), if a line is due.
    pub fn add(&mut self, n: u64, now: std::time::Instant) -> Option<u64> {
        self.unsaid += n;
        self.due(now)
    }

    /// The count not said yet, if there is one and a second has passed since the last line
    /// (call it each second, so that the end of a flood is said too).
    pub fn due(&mut self, now: std::time::Instant) -> Option<u64> {
        let quiet = self.last_said.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1));
        (self.unsaid > 0 && quiet).then(|| {
            self.last_said = Some(now);
            std::mem::take(&mut self.unsaid)
        })
    }

    /// Whatever is not said yet, now (at the end of a run).
    pub fn rest(&mut self) -> Option<u64> {
        (self.unsaid > 0).then(|| std::mem::take(&mut self.unsaid))
    }
}

/// A count as people write it: 1,834.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Tally, thousands};

    #[test]
    fn a_flood_is_a_line_a_second() {
        let (t0, mut tally) = (Instant::now(), Tally::default());
        assert_eq!(tally.add(1, t0), Some(1), "the first is said at once");
        let said: Vec<u64> = (1..=1834).filter_map(|i| tally.add(1, t0 + Duration::from_micros(i * 500))).collect();
        assert_eq!(said, [] as [u64; 0], "the rest of the second is counted");
        assert_eq!(tally.due(t0 + Duration::from_millis(999)), None);
        assert_eq!(tally.due(t0 + Duration::from_secs(1)), Some(1834));
        assert_eq!(tally.due(t0 + Duration::from_secs(5)), None, "nothing to say");
        assert_eq!(tally.add(2, t0 + Duration::from_millis(5500)), Some(2));
        assert_eq!(tally.add(1, t0 + Duration::from_millis(5600)), None);
        assert_eq!(tally.rest(), Some(1));
        assert_eq!(
            (thousands(1834), thousands(999), thousands(1_000_000), thousands(0)),
            ("1,834".into(), "999".into(), "1,000,000".into(), "0".into())
        );
    }
}
