//! One-line log helpers: `[info] message` on stderr, which the runner
//! captures into the stage log (redacting secret values).
//!
//! Use the functions with any `Display` value, or the `format!`-style
//! macros:
//!
//! ```
//! sluice_sdk::info("starting");
//! sluice_sdk::warn(format!("{} files skipped", 3));
//! sluice_sdk::info!("checked {} of {} paths", 2, 5);
//! sluice_sdk::error!("could not parse {}", "junit.xml");
//! ```
//!
//! A message with several lines gets the prefix on every line, so each line
//! of the stage log says its level.

use std::fmt::Display;
use std::io::Write;

/// The level written in front of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `[debug]`
    Debug,
    /// `[info]`
    Info,
    /// `[warn]`
    Warn,
    /// `[error]`
    Error,
}

impl Level {
    /// The prefix, e.g. `[info]`.
    ///
    /// ```
    /// assert_eq!(sluice_sdk::log::Level::Warn.prefix(), "[warn]");
    /// ```
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Debug => "[debug]",
            Self::Info => "[info]",
            Self::Warn => "[warn]",
            Self::Error => "[error]",
        }
    }
}

/// Writes `message` at `level` to stderr in one write. Errors writing to
/// stderr are ignored: logging must never fail a stage.
///
/// ```
/// sluice_sdk::log::log(sluice_sdk::log::Level::Info, "hello");
/// ```
pub fn log(level: Level, message: impl Display) {
    let text = format_lines(level, &message.to_string());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// `message` with `level`'s prefix on every line, newline-terminated.
fn format_lines(level: Level, message: &str) -> String {
    let mut text = String::with_capacity(message.len() + 16);
    let mut lines = message.lines().peekable();
    if lines.peek().is_none() {
        text.push_str(level.prefix());
        text.push('\n');
    }
    for l in lines {
        text.push_str(level.prefix());
        text.push(' ');
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// Logs at debug level: `[debug] message`.
///
/// ```
/// sluice_sdk::debug("resolved 12 paths");
/// ```
pub fn debug(message: impl Display) {
    log(Level::Debug, message);
}

/// Logs at info level: `[info] message`.
///
/// ```
/// sluice_sdk::info("tests passed");
/// ```
pub fn info(message: impl Display) {
    log(Level::Info, message);
}

/// Logs at warn level: `[warn] message`.
///
/// ```
/// sluice_sdk::warn("coverage report missing");
/// ```
pub fn warn(message: impl Display) {
    log(Level::Warn, message);
}

/// Logs at error level: `[error] message`.
///
/// ```
/// sluice_sdk::error("deploy target unreachable");
/// ```
pub fn error(message: impl Display) {
    log(Level::Error, message);
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
    fn every_line_gets_the_prefix() {
        assert_eq!(format_lines(Level::Info, "one"), "[info] one\n");
        assert_eq!(
            format_lines(Level::Error, "a\nb\n"),
            "[error] a\n[error] b\n"
        );
        assert_eq!(format_lines(Level::Warn, ""), "[warn]\n");
    }
}
