//! Run an allowlisted host program (`grants.exec`) through `sluice:stage/exec`.
//!
//! The program runs on the host with a cleared environment (only `PATH`,
//! `HOME` and the stage's granted `env`), no stdin, a working directory
//! inside the workspace, a timeout and an output cap. A program that is not
//! granted fails with [`ExecError::Denied`], which `?` turns into
//! [`StageError::Denied`].
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_sdk::exec::{self, Command};
//!
//! # fn f() -> Result<(), sluice_sdk::StageError> {
//! let out = exec::run("cargo", ["--version"])?;
//! sluice_sdk::info(out.stdout_str().trim());
//!
//! let out = Command::new("cargo")
//!     .args(["test", "--no-fail-fast"])
//!     .cwd("service")
//!     .timeout(Duration::from_secs(600))
//!     .run()?;
//! if !out.success() {
//!     return Err(sluice_sdk::StageError::failed(format!("cargo test exited {}", out.status)));
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::bindings::sluice::stage::exec as wit;
use crate::error::StageError;

/// What a finished program produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; -1 when the program was killed by a signal or the timeout.
    pub status: i32,
    /// Captured standard output, at most the stage's output cap.
    pub stdout: Vec<u8>,
    /// Captured standard error, at most the stage's output cap.
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was cut at the cap.
    pub truncated: bool,
    /// True when the program was killed because it ran past its timeout.
    pub timed_out: bool,
}

impl ExecOutput {
    /// True when the program exited with status 0 (and was not killed).
    ///
    /// ```
    /// # use sluice_sdk::exec::ExecOutput;
    /// let out = ExecOutput { status: 0, stdout: vec![], stderr: vec![], truncated: false, timed_out: false };
    /// assert!(out.success());
    /// ```
    pub fn success(&self) -> bool {
        self.status == 0 && !self.timed_out
    }

    /// Standard output as text (invalid UTF-8 replaced by `U+FFFD`).
    ///
    /// ```
    /// # use sluice_sdk::exec::ExecOutput;
    /// let out = ExecOutput { status: 0, stdout: b"v1\n".to_vec(), stderr: vec![], truncated: false, timed_out: false };
    /// assert_eq!(out.stdout_str().trim(), "v1");
    /// ```
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text (invalid UTF-8 replaced by `U+FFFD`).
    ///
    /// ```
    /// # use sluice_sdk::exec::ExecOutput;
    /// let out = ExecOutput { status: 1, stdout: vec![], stderr: b"boom".to_vec(), truncated: false, timed_out: false };
    /// assert_eq!(out.stderr_str(), "boom");
    /// ```
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// How the program ended, for messages: `exited 2`, `was killed after
    /// its timeout` or `was killed by a signal`.
    ///
    /// ```
    /// # use sluice_sdk::exec::ExecOutput;
    /// let mut out = ExecOutput { status: 2, stdout: vec![], stderr: vec![], truncated: false, timed_out: false };
    /// assert_eq!(out.outcome(), "exited 2");
    /// out.status = -1;
    /// out.timed_out = true;
    /// assert_eq!(out.outcome(), "was killed after its timeout");
    /// ```
    pub fn outcome(&self) -> String {
        if self.timed_out {
            "was killed after its timeout".to_string()
        } else if self.status < 0 {
            "was killed by a signal".to_string()
        } else {
            format!("exited {}", self.status)
        }
    }

    /// Copies the output into the stage log: stdout to the log's stdout,
    /// stderr to its stderr (each trimmed at the end), and a warning when
    /// the output was cut at the stage's output cap.
    ///
    /// ```no_run
    /// let out = sluice_sdk::exec::Command::new("make").arg("test").run()?;
    /// out.echo();
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn echo(&self) {
        if !self.stdout.is_empty() {
            println!("{}", self.stdout_str().trim_end());
        }
        if !self.stderr.is_empty() {
            eprintln!("{}", self.stderr_str().trim_end());
        }
        if self.truncated {
            crate::log::warn(
                "the command's output was cut at the stage's output cap (grants.output)",
            );
        }
    }

    /// The end of the output, for quoting in an error message: the last
    /// `max_lines` non-empty lines of stderr (of stdout when stderr is blank:
    /// many tools report errors there), joined by `\n` and cut to its last
    /// ~2000 bytes (marked with a leading `…`). Empty when both are blank.
    ///
    /// ```
    /// # use sluice_sdk::exec::ExecOutput;
    /// let out = ExecOutput { status: 1, stdout: b"ignored".to_vec(), stderr: b"a\n\nb\nc\n".to_vec(), truncated: false, timed_out: false };
    /// assert_eq!(out.tail(2), "b\nc");
    /// let out = ExecOutput { status: 1, stdout: b"only stdout\n".to_vec(), stderr: b"  \n".to_vec(), truncated: false, timed_out: false };
    /// assert_eq!(out.tail(5), "only stdout");
    /// ```
    pub fn tail(&self, max_lines: usize) -> String {
        const MAX: usize = 2000;
        let stderr = self.stderr_str();
        let text = if stderr.trim().is_empty() {
            self.stdout_str()
        } else {
            stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(max_lines);
        let mut tail = lines[start..].join("\n");
        if tail.len() > MAX {
            let mut cut = tail.len() - MAX;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail = format!("…{}", &tail[cut..]);
        }
        tail
    }
}

/// Why a program could not be run at all. The message comes from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The program is not in the stage's `grants.exec`.
    Denied(String),
    /// The program was granted but is not installed on the host.
    NotFound(String),
    /// `cwd` is not a directory inside the workspace, or an argument is invalid.
    InvalidArgument(String),
    /// The operating system refused to start the program.
    SpawnFailed(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "exec denied: {m}"),
            Self::NotFound(m) => write!(f, "exec program not found: {m}"),
            Self::InvalidArgument(m) => write!(f, "exec invalid argument: {m}"),
            Self::SpawnFailed(m) => write!(f, "exec spawn failed: {m}"),
        }
    }
}

impl std::error::Error for ExecError {}

impl From<ExecError> for StageError {
    /// [`ExecError::Denied`] becomes [`StageError::Denied`] with the host's
    /// message (which names the grant to add); the rest
    /// [`StageError::Failed`].
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Denied(m) => StageError::denied(m),
            _ => StageError::failed(e.to_string()),
        }
    }
}

/// A command line as a person would type it, for logs and messages:
/// arguments that are empty or hold white space or quotes are quoted
/// (Rust string syntax), the rest are written as they are.
///
/// ```
/// let line = sluice_sdk::exec::command_line("sh", &["-c", "cp a b", ""]);
/// assert_eq!(line, r#"sh -c "cp a b" """#);
/// ```
pub fn command_line<S: AsRef<str>>(program: &str, args: &[S]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("{a:?}")
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program` with `args` in the workspace root with the default timeout.
///
/// ```no_run
/// let out = sluice_sdk::exec::run("git", ["rev-parse", "HEAD"])?;
/// # Ok::<(), sluice_sdk::exec::ExecError>(())
/// ```
pub fn run<I, S>(program: &str, args: I) -> Result<ExecOutput, ExecError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Command::new(program).args(args).run()
}

/// A program invocation, built step by step.
///
/// ```no_run
/// use std::time::Duration;
/// let out = sluice_sdk::exec::Command::new("npm")
///     .arg("test")
///     .cwd("web")
///     .timeout(Duration::from_secs(300))
///     .run()?;
/// # Ok::<(), sluice_sdk::exec::ExecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: String,
    args: Vec<String>,
    cwd: Option<String>,
    timeout: Option<Duration>,
}

impl Command {
    /// A bare program name from `grants.exec` (never a path).
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("cargo");
    /// ```
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            timeout: None,
        }
    }

    /// Adds one argument.
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("cargo").arg("build");
    /// ```
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several arguments.
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("cargo").args(["build", "--release"]);
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Working directory relative to the workspace root (or an absolute
    /// guest path under `/workspace`). Defaults to the workspace root.
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("make").cwd("native");
    /// ```
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Kills the program after `timeout`. Defaults to, and is capped at by
    /// the host, the time the stage has left. Rounded down to milliseconds
    /// and capped at `u32::MAX` ms (about 49 days).
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("sleep").arg("5")
    ///     .timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the program and waits for it to finish.
    ///
    /// A program that runs but exits non-zero is `Ok` — check
    /// [`ExecOutput::success`].
    ///
    /// ```no_run
    /// let out = sluice_sdk::exec::Command::new("cargo").arg("check").run()?;
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn run(&self) -> Result<ExecOutput, ExecError> {
        let timeout_ms = self
            .timeout
            .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX));
        match wit::run(&self.program, &self.args, self.cwd.as_deref(), timeout_ms) {
            Ok(o) => Ok(ExecOutput {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
                truncated: o.truncated,
                timed_out: o.timed_out,
            }),
            Err(wit::ErrorCode::Denied(m)) => Err(ExecError::Denied(m)),
            Err(wit::ErrorCode::NotFound(m)) => Err(ExecError::NotFound(m)),
            Err(wit::ErrorCode::InvalidArgument(m)) => Err(ExecError::InvalidArgument(m)),
            Err(wit::ErrorCode::SpawnFailed(m)) => Err(ExecError::SpawnFailed(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            status: 1,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            timed_out: false,
        }
    }

    #[test]
    fn outcome_words() {
        let mut o = out("", "");
        assert_eq!(o.outcome(), "exited 1");
        o.status = -1;
        assert_eq!(o.outcome(), "was killed by a signal");
        o.timed_out = true;
        assert_eq!(o.outcome(), "was killed after its timeout");
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        assert_eq!(command_line::<&str>("make", &[]), "make");
        assert_eq!(
            command_line("python3", &["-m", "zipapp", "src dir", "it's", "a\"b"]),
            r#"python3 -m zipapp "src dir" "it's" "a\"b""#
        );
    }

    #[test]
    fn tail_prefers_stderr_and_keeps_the_end() {
        assert_eq!(out("ignored", "a\n\nb\nc\nd\n").tail(2), "c\nd");
        assert_eq!(out("", "a\nb\nc\n").tail(2), "b\nc");
        assert_eq!(out("only stdout\n", "  \n").tail(5), "only stdout");
        assert_eq!(out("building...", "").tail(2), "building...");
        assert_eq!(out("", " \n").tail(3), "");
        let long = "é".repeat(3000);
        let t = out("", &long).tail(5);
        assert!(t.starts_with('…') && t.len() <= 2010, "{}", t.len());
        assert!(t.trim_start_matches('…').chars().all(|c| c == 'é'));
    }
}
