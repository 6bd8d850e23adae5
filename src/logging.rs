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
    #[error("--log-file {path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
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
                .map_err(|source| LogError::File { path: path.clone(), source })?;
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
