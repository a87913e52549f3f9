//! The stage log: leveled records with structured fields, and progress,
//! through `sluice:stage/log`.
//!
//! Use the functions with any `Display` value, the `format!`-style macros,
//! or the `*_with` functions to attach key/value fields (kept as data in
//! `--json` events, shown as `key=value` in the console):
//!
//! ```
//! sluice_sdk::info("starting");
//! sluice_sdk::warn(format!("{} files skipped", 3));
//! sluice_sdk::info!("checked {} of {} paths", 2, 5);
//! sluice_sdk::error!("could not parse {}", "junit.xml");
//! sluice_sdk::log::info_with("linted", &[("file", "src/app.py"), ("findings", "2")]);
//! sluice_sdk::progress(3, Some(10), "linting src/");
//! ```
//!
//! A record is one line: the runner shows newlines in `message` as `\n`.
//! Logging never fails a stage; past the stage's output cap, records are
//! counted and dropped by the runner. Secret values are redacted.
//!
//! Outside a WebAssembly guest (unit tests of a stage on the host) records
//! go to stderr as `[level] message key=value`, and progress as
//! `[progress] done/total message`.

use std::fmt::Display;

/// How important a log record is. The console shows [`Info`](Self::Info)
/// and above (`--verbose`: everything); the log file keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detail for whoever debugs the stage.
    Debug,
    /// What the stage is doing.
    Info,
    /// Something is off, but the stage goes on.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    ///
    /// ```
    /// assert_eq!(sluice_sdk::log::Level::Warn.as_str(), "warn");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Writes one record at `level` without fields.
///
/// ```
/// sluice_sdk::log::log(sluice_sdk::log::Level::Info, "hello");
/// ```
pub fn log(level: Level, message: impl Display) {
    log_with(level, message, &[]);
}

/// Writes one record at `level` with key/value `fields`.
///
/// ```
/// use sluice_sdk::log::{log_with, Level};
/// log_with(Level::Debug, "cache hit", &[("key", "deps-3f2a"), ("bytes", "1024")]);
/// ```
pub fn log_with(level: Level, message: impl Display, fields: &[(&str, &str)]) {
    imp::log(level, &message.to_string(), fields);
}

/// Says how far the stage has got: `done` of `total` units (`None` when
/// unknown) and what it is doing. The console shows the latest progress
/// next to the stage's elapsed time; `--json` emits `stage_progress`
/// events (rate-limited by the runner, the latest always kept).
///
/// ```
/// for (i, file) in ["a.py", "b.py"].iter().enumerate() {
///     sluice_sdk::progress(i as u64, Some(2), format!("checking {file}"));
/// }
/// sluice_sdk::progress(2, Some(2), "done");
/// sluice_sdk::progress(17, None, "files scanned so far");
/// ```
pub fn progress(done: u64, total: Option<u64>, message: impl Display) {
    imp::progress(done, total, &message.to_string());
}

/// Logs at trace level.
///
/// ```
/// sluice_sdk::log::trace("entering parse_junit");
/// ```
pub fn trace(message: impl Display) {
    log(Level::Trace, message);
}

/// Logs at debug level.
///
/// ```
/// sluice_sdk::debug("resolved 12 paths");
/// ```
pub fn debug(message: impl Display) {
    log(Level::Debug, message);
}

/// Logs at info level.
///
/// ```
/// sluice_sdk::info("tests passed");
/// ```
pub fn info(message: impl Display) {
    log(Level::Info, message);
}

/// Logs at warn level.
///
/// ```
/// sluice_sdk::warn("coverage report missing");
/// ```
pub fn warn(message: impl Display) {
    log(Level::Warn, message);
}

/// Logs at error level.
///
/// ```
/// sluice_sdk::error("deploy target unreachable");
/// ```
pub fn error(message: impl Display) {
    log(Level::Error, message);
}

/// Logs at trace level with fields.
///
/// ```
/// sluice_sdk::log::trace_with("read", &[("bytes", "512")]);
/// ```
pub fn trace_with(message: impl Display, fields: &[(&str, &str)]) {
    log_with(Level::Trace, message, fields);
}

/// Logs at debug level with fields.
///
/// ```
/// sluice_sdk::log::debug_with("cache", &[("hit", "true")]);
/// ```
pub fn debug_with(message: impl Display, fields: &[(&str, &str)]) {
    log_with(Level::Debug, message, fields);
}

/// Logs at info level with fields.
///
/// ```
/// sluice_sdk::log::info_with("msg", &[("file", "a.py")]);
/// ```
pub fn info_with(message: impl Display, fields: &[(&str, &str)]) {
    log_with(Level::Info, message, fields);
}

/// Logs at warn level with fields.
///
/// ```
/// sluice_sdk::log::warn_with("slow probe", &[("probe", "health"), ("ms", "950")]);
/// ```
pub fn warn_with(message: impl Display, fields: &[(&str, &str)]) {
    log_with(Level::Warn, message, fields);
}

/// Logs at error level with fields.
///
/// ```
/// sluice_sdk::log::error_with("request failed", &[("status", "503")]);
/// ```
pub fn error_with(message: impl Display, fields: &[(&str, &str)]) {
    log_with(Level::Error, message, fields);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::sluice::stage::log as wit;

    pub(super) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        wit::log(level, message, &fields);
    }

    pub(super) fn progress(done: u64, total: Option<u64>, message: &str) {
        wit::progress(done, total, message);
    }
}

/// Outside a guest there is no runner to log to: write to stderr, so that a
/// stage's unit tests on the host can call code that logs.
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::io::Write;

    use super::Level;

    pub(super) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let line = super::host_line(level, message, fields);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }

    pub(super) fn progress(done: u64, total: Option<u64>, message: &str) {
        let total = total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "[progress] {done}/{total} {message}");
    }
}

/// The stderr line used outside a guest: `[level] message k=v`.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn host_line(level: Level, message: &str, fields: &[(&str, &str)]) -> String {
    let mut line = format!("[{}] {}", level.as_str(), message.replace('\n', "\\n"));
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    line.push('\n');
    line
}

/// `format!`-style [`debug`](fn@crate::debug).
///
/// ```
/// sluice_sdk::debug!("attempt {}", 2);
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, ::std::format_args!($($arg)*)) };
}

/// `format!`-style [`info`](fn@crate::info).
///
/// ```
/// sluice_sdk::info!("{} tests passed", 42);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, ::std::format_args!($($arg)*)) };
}

/// `format!`-style [`warn`](fn@crate::warn).
///
/// ```
/// sluice_sdk::warn!("{} files skipped", 3);
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, ::std::format_args!($($arg)*)) };
}

/// `format!`-style [`error`](fn@crate::error).
///
/// ```
/// sluice_sdk::error!("exit status {}", 2);
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, ::std::format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_carry_level_message_and_fields() {
        assert_eq!(host_line(Level::Info, "one", &[]), "[info] one\n");
        assert_eq!(
            host_line(Level::Error, "a\nb", &[("file", "x.py"), ("n", "2")]),
            "[error] a\\nb file=x.py n=2\n"
        );
        assert!(Level::Trace < Level::Error);
    }
}
