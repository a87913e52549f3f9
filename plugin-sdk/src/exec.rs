//! Run an allowlisted host program (`grants.exec`) through `sluice:stage/exec`.
//!
//! The program runs on the host with a cleared environment (only `PATH`,
//! `HOME`, the stage's granted `env` and the command's own
//! [`env`](Command::env)), a working directory inside the workspace, a
//! timeout and an output cap. A program that is not granted fails with
//! [`ExecError::Denied`], which `?` turns into [`StageError::Denied`].
//!
//! Two ways to run one:
//!
//! - [`Command::run`] (or [`run`]) runs it to its end and captures stdout
//!   and stderr ([`ExecOutput`]).
//! - [`Command::spawn`] starts it and returns a [`Process`]: write its stdin,
//!   read its stdout/stderr as they arrive, or send them straight to the
//!   stage log ([`OutputMode::Log`], the right choice for build and test
//!   tools whose output is for people), then [`wait`](Process::wait) for
//!   its [`ExitStatus`]. [`Command::output`] spawns and captures both
//!   streams.
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
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use crate::bindings::sluice::stage::exec as wit;
use crate::bindings::wasi::io::poll;
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};
use crate::error::StageError;
use crate::info::Capability;

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

/// Why a program could not be run at all. Except for
/// [`Denied`](Self::Denied), the message comes from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The program (named here) is not in the stage's `grants.exec`.
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
            Self::Denied(p) => write!(f, "exec denied: `{p}` is not in the stage's grants.exec"),
            Self::NotFound(m) => write!(f, "exec program not found: {m}"),
            Self::InvalidArgument(m) => write!(f, "exec invalid argument: {m}"),
            Self::SpawnFailed(m) => write!(f, "exec spawn failed: {m}"),
        }
    }
}

impl std::error::Error for ExecError {}

impl From<ExecError> for StageError {
    /// [`ExecError::Denied`] becomes [`StageError::Denied`] with
    /// [`Capability::Exec`] of the program; the rest [`StageError::Failed`].
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Denied(program) => StageError::denied(Capability::Exec(program)),
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

/// Where a spawned program's stdout or stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// To the stage: read it from [`Process::stdout`] /
    /// [`Process::stderr`] (at most the stage's output cap).
    Pipe,
    /// To the stage log, line by line as it arrives (shown live in the
    /// console and in `--json` events). The default.
    #[default]
    Log,
    /// Nowhere.
    Discard,
    /// Both to the stage log as it arrives (like [`Log`](Self::Log)) and
    /// to the stage's stream (like [`Pipe`](Self::Pipe)): for a tool whose
    /// output people should see live and the stage also reads. The stage
    /// must read the stream (a full pipe stops the program);
    /// [`Command::tee_output`] does.
    Tee,
}

impl OutputMode {
    fn into_wit(self) -> wit::OutputMode {
        match self {
            Self::Pipe => wit::OutputMode::Pipe,
            Self::Log => wit::OutputMode::Log,
            Self::Discard => wit::OutputMode::Discard,
            Self::Tee => wit::OutputMode::Tee,
        }
    }
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
    env: Vec<(String, String)>,
    stdin: bool,
    stdout: OutputMode,
    stderr: OutputMode,
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
            env: Vec::new(),
            stdin: false,
            stdout: OutputMode::Log,
            stderr: OutputMode::Log,
            timeout: None,
        }
    }

    /// Sets a variable for the program on top of its cleared environment
    /// (`PATH` may not be set: the host refuses it with
    /// [`ExecError::InvalidArgument`]). Setting a name twice keeps the last
    /// value.
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("pytest").env("PYTHONDONTWRITEBYTECODE", "1");
    /// ```
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value.into()));
        self
    }

    /// Gives the spawned program a stdin pipe ([`Process::stdin`]) when
    /// `piped` is true; otherwise (the default) it reads `/dev/null`. Only
    /// [`spawn`](Self::spawn) uses it.
    ///
    /// ```
    /// let cmd = sluice_sdk::exec::Command::new("sh").args(["-c", "cat"]).stdin(true);
    /// ```
    pub fn stdin(mut self, piped: bool) -> Self {
        self.stdin = piped;
        self
    }

    /// Where a spawned program's stdout goes; [`OutputMode::Log`] by default.
    /// [`run`](Self::run) and [`output`](Self::output) always capture it.
    ///
    /// ```
    /// use sluice_sdk::exec::{Command, OutputMode};
    /// let cmd = Command::new("git").arg("rev-parse").stdout(OutputMode::Pipe);
    /// ```
    pub fn stdout(mut self, mode: OutputMode) -> Self {
        self.stdout = mode;
        self
    }

    /// Where a spawned program's stderr goes; [`OutputMode::Log`] by default.
    /// [`run`](Self::run) and [`output`](Self::output) always capture it.
    ///
    /// ```
    /// use sluice_sdk::exec::{Command, OutputMode};
    /// let cmd = Command::new("make").stderr(OutputMode::Discard);
    /// ```
    pub fn stderr(mut self, mode: OutputMode) -> Self {
        self.stderr = mode;
        self
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

    fn timeout_ms(&self) -> Option<u32> {
        self.timeout
            .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX))
    }

    fn error(&self, e: wit::ErrorCode) -> ExecError {
        match e {
            // The host's message names the grant too, but the SDK's error
            // carries the program so that `?` can build the capability.
            wit::ErrorCode::Denied(_) => ExecError::Denied(self.program.clone()),
            wit::ErrorCode::NotFound(m) => ExecError::NotFound(m),
            wit::ErrorCode::InvalidArgument(m) => ExecError::InvalidArgument(m),
            wit::ErrorCode::SpawnFailed(m) => ExecError::SpawnFailed(m),
        }
    }

    /// Runs the program and waits for it to finish, capturing stdout and
    /// stderr; stdin is `/dev/null`. The stdin and output modes are not used.
    /// Without [`env`](Self::env) this is the host's `run` call; with it,
    /// [`output`](Self::output) does the work.
    ///
    /// A program that runs but exits non-zero is `Ok` — check
    /// [`ExecOutput::success`].
    ///
    /// ```no_run
    /// let out = sluice_sdk::exec::Command::new("cargo").arg("check").run()?;
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn run(&self) -> Result<ExecOutput, ExecError> {
        if !self.env.is_empty() {
            return self.output().map(Output::into_exec_output);
        }
        match wit::run(
            &self.program,
            &self.args,
            self.cwd.as_deref(),
            self.timeout_ms(),
        ) {
            Ok(o) => Ok(ExecOutput {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
                truncated: o.truncated,
                timed_out: o.timed_out,
            }),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Starts the program and returns at once.
    ///
    /// ```no_run
    /// use sluice_sdk::exec::{Command, ExitStatus};
    /// // Output goes to the stage log as it arrives (the default).
    /// let mut p = Command::new("cargo").args(["test", "--workspace"]).spawn()?;
    /// match p.wait() {
    ///     ExitStatus::Exited(0) => sluice_sdk::info("tests passed"),
    ///     other => sluice_sdk::error!("cargo test {other}"),
    /// }
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn spawn(&self) -> Result<Process, ExecError> {
        let command = wit::Command {
            program: self.program.clone(),
            args: self.args.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            stdin: self.stdin,
            stdout: self.stdout.into_wit(),
            stderr: self.stderr.into_wit(),
            timeout_ms: self.timeout_ms(),
        };
        wit::spawn(&command)
            .map(|inner| Process { inner })
            .map_err(|e| self.error(e))
    }

    /// Spawns the program with stdin `/dev/null` and stdout and stderr
    /// piped, reads both to their end (as they arrive, so neither blocks the
    /// other) and waits for it.
    ///
    /// ```no_run
    /// let out = sluice_sdk::exec::Command::new("git").args(["status", "--short"]).output()?;
    /// if out.status.success() {
    ///     sluice_sdk::info!("{} changed files", String::from_utf8_lossy(&out.stdout).lines().count());
    /// }
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn output(&self) -> Result<Output, ExecError> {
        self.collect(OutputMode::Pipe)
    }

    /// Like [`output`](Self::output), but the program's stdout and stderr
    /// also stream into the stage log as they arrive ([`OutputMode::Tee`]):
    /// a test runner or a build shows its progress live, and the stage
    /// still gets the output to parse or to quote when the program fails.
    ///
    /// ```no_run
    /// let out = sluice_sdk::exec::Command::new("pytest").arg("-q").tee_output()?;
    /// if !out.status.success() {
    ///     let tail = String::from_utf8_lossy(&out.stdout);
    ///     sluice_sdk::error!("pytest failed: {}", tail.lines().last().unwrap_or(""));
    /// }
    /// # Ok::<(), sluice_sdk::exec::ExecError>(())
    /// ```
    pub fn tee_output(&self) -> Result<Output, ExecError> {
        self.collect(OutputMode::Tee)
    }

    /// Spawn with both streams in `mode` (`Pipe` or `Tee`), read both to
    /// their end as data arrives, and wait.
    fn collect(&self, mode: OutputMode) -> Result<Output, ExecError> {
        let process = self
            .clone()
            .stdin(false)
            .stdout(mode)
            .stderr(mode)
            .spawn()?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        {
            let mut streams = [
                (process.inner.stdout(), &mut stdout),
                (process.inner.stderr(), &mut stderr),
            ];
            loop {
                let open: Vec<usize> = (0..streams.len())
                    .filter(|&i| streams[i].0.is_some())
                    .collect();
                if open.is_empty() {
                    break;
                }
                // Pollables are children of their streams: drop them before
                // a stream is closed below.
                let ready: Vec<usize> = {
                    let pollables: Vec<poll::Pollable> = open
                        .iter()
                        .filter_map(|&i| streams[i].0.as_ref().map(InputStream::subscribe))
                        .collect();
                    let refs: Vec<&poll::Pollable> = pollables.iter().collect();
                    poll::poll(&refs)
                        .into_iter()
                        .filter_map(|r| open.get(r as usize).copied())
                        .collect()
                };
                for i in ready {
                    let (stream, buf) = &mut streams[i];
                    let Some(s) = stream.as_ref() else { continue };
                    match s.read(READ_CHUNK) {
                        Ok(bytes) => buf.extend_from_slice(&bytes),
                        Err(_) => *stream = None,
                    }
                }
            }
        }
        let status = process.wait();
        Ok(Output {
            status,
            stdout,
            stderr,
            truncated: process.truncated(),
        })
    }
}

/// How much one read from a process's stream asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// How a spawned program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal, not by the runner.
    Signaled(i32),
    /// The runner killed it because it ran past its timeout.
    TimedOut,
    /// The stage killed it ([`Process::kill`], or dropping the process).
    Killed,
}

impl ExitStatus {
    /// True when it exited with code 0.
    ///
    /// ```
    /// use sluice_sdk::exec::ExitStatus;
    /// assert!(ExitStatus::Exited(0).success());
    /// assert!(!ExitStatus::TimedOut.success());
    /// ```
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }

    /// The exit code, when it exited.
    ///
    /// ```
    /// use sluice_sdk::exec::ExitStatus;
    /// assert_eq!(ExitStatus::Exited(2).code(), Some(2));
    /// assert_eq!(ExitStatus::Killed.code(), None);
    /// ```
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Exited(c) => Some(c),
            _ => None,
        }
    }

    fn from_wit(s: wit::ExitStatus) -> Self {
        match s {
            wit::ExitStatus::Exited(c) => Self::Exited(c),
            wit::ExitStatus::Signaled(n) => Self::Signaled(n),
            wit::ExitStatus::TimedOut => Self::TimedOut,
            wit::ExitStatus::Killed => Self::Killed,
        }
    }
}

impl fmt::Display for ExitStatus {
    /// `exited 2`, `was killed by signal 9`, `was killed after its timeout`
    /// or `was killed by the stage`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exited {c}"),
            Self::Signaled(n) => write!(f, "was killed by signal {n}"),
            Self::TimedOut => f.write_str("was killed after its timeout"),
            Self::Killed => f.write_str("was killed by the stage"),
        }
    }
}

/// What [`Command::output`] captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the program ended.
    pub status: ExitStatus,
    /// Its standard output, at most the stage's output cap.
    pub stdout: Vec<u8>,
    /// Its standard error, at most the stage's output cap.
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was cut at the cap.
    pub truncated: bool,
}

impl Output {
    /// The same as an [`ExecOutput`] (what [`Command::run`] returns):
    /// status -1 unless the program exited.
    ///
    /// ```
    /// use sluice_sdk::exec::{ExitStatus, Output};
    /// let o = Output { status: ExitStatus::TimedOut, stdout: vec![], stderr: vec![], truncated: false };
    /// let e = o.into_exec_output();
    /// assert_eq!((e.status, e.timed_out), (-1, true));
    /// ```
    pub fn into_exec_output(self) -> ExecOutput {
        ExecOutput {
            status: self.status.code().unwrap_or(-1),
            timed_out: self.status == ExitStatus::TimedOut,
            stdout: self.stdout,
            stderr: self.stderr,
            truncated: self.truncated,
        }
    }
}

/// A running program, from [`Command::spawn`]. Dropping it kills the
/// program (and everything it started) if it is still running.
///
/// Its streams borrow it, so they are closed before it is dropped.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use sluice_sdk::exec::{Command, OutputMode};
///
/// let p = Command::new("sh").args(["-c", "tr a-z A-Z"])
///     .stdin(true).stdout(OutputMode::Pipe).spawn()?;
/// if let Some(mut stdin) = p.stdin() {
///     stdin.write_all(b"hello\n")?;
/// } // dropping stdin closes it: the program sees end of input
/// let mut text = String::new();
/// if let Some(mut stdout) = p.stdout() {
///     stdout.read_to_string(&mut text)?;
/// }
/// assert!(p.wait().success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Process {
    inner: wit::Process,
}

impl Process {
    /// The program's stdin, when the command asked for one
    /// ([`Command::stdin`]). Returned once; later calls return `None`.
    /// Dropping it closes the pipe, which is how the program sees the end
    /// of its input.
    pub fn stdin(&self) -> Option<ProcessStdin<'_>> {
        self.inner.stdin().map(|stream| ProcessStdin {
            stream,
            _process: PhantomData,
        })
    }

    /// The program's stdout, when its mode is [`OutputMode::Pipe`].
    /// Returned once. It reaches its end when the program closes it, or
    /// early at the stage's output cap (see [`truncated`](Self::truncated)).
    pub fn stdout(&self) -> Option<ProcessOutput<'_>> {
        self.inner.stdout().map(ProcessOutput::new)
    }

    /// The program's stderr, when its mode is [`OutputMode::Pipe`].
    /// Returned once.
    pub fn stderr(&self) -> Option<ProcessOutput<'_>> {
        self.inner.stderr().map(ProcessOutput::new)
    }

    /// How it ended, or `None` while it runs.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.inner.try_wait().map(ExitStatus::from_wit)
    }

    /// Waits until it ends. A stage that is cancelled while waiting gets
    /// [`ExitStatus::Killed`] once its grace period ends.
    pub fn wait(&self) -> ExitStatus {
        ExitStatus::from_wit(self.inner.wait())
    }

    /// Kills it (SIGTERM, then SIGKILL) with everything it started. No
    /// effect once it has exited.
    pub fn kill(&self) {
        self.inner.kill();
    }

    /// True when piped output went past the stage's output cap and was cut.
    pub fn truncated(&self) -> bool {
        self.inner.truncated()
    }
}

/// A spawned program's stdin: a blocking [`std::io::Write`].
#[derive(Debug)]
pub struct ProcessStdin<'p> {
    stream: OutputStream,
    _process: PhantomData<&'p Process>,
}

impl io::Write for ProcessStdin<'_> {
    /// Waits until the pipe takes bytes, then writes as many of `buf` as it
    /// takes. A program that closed its stdin gives
    /// [`io::ErrorKind::BrokenPipe`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let permitted = self.stream.check_write().map_err(stream_error)?;
            if permitted == 0 {
                self.stream.subscribe().block();
                continue;
            }
            let n = usize::try_from(permitted)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            self.stream.write(&buf[..n]).map_err(stream_error)?;
            return Ok(n);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.blocking_flush().map_err(stream_error)
    }
}

impl Drop for ProcessStdin<'_> {
    /// Flushes what the host still buffers before the stream closes, so
    /// that the program gets all of its input; a program that already
    /// closed its stdin is not an error here.
    fn drop(&mut self) {
        let _ = self.stream.blocking_flush();
    }
}

/// A spawned program's stdout or stderr: a blocking [`std::io::Read`];
/// the stream's end is end of file.
#[derive(Debug)]
pub struct ProcessOutput<'p> {
    stream: InputStream,
    _process: PhantomData<&'p Process>,
}

impl ProcessOutput<'_> {
    fn new(stream: InputStream) -> Self {
        Self {
            stream,
            _process: PhantomData,
        }
    }
}

impl io::Read for ProcessOutput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        loop {
            match self.stream.blocking_read(want) {
                // Ok(empty) is allowed by wasi:io and is not the end.
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    return Ok(n);
                }
                Err(StreamError::Closed) => return Ok(0),
                Err(e) => return Err(stream_error(e)),
            }
        }
    }
}

fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "the stream is closed"),
        StreamError::LastOperationFailed(err) => io::Error::other(err.to_debug_string()),
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
    fn exit_statuses_read_as_words() {
        assert_eq!(ExitStatus::Exited(3).to_string(), "exited 3");
        assert_eq!(
            ExitStatus::Signaled(9).to_string(),
            "was killed by signal 9"
        );
        assert!(!ExitStatus::Signaled(0).success());
        let o = Output {
            status: ExitStatus::Signaled(9),
            stdout: b"x".to_vec(),
            stderr: vec![],
            truncated: true,
        }
        .into_exec_output();
        assert_eq!((o.status, o.timed_out, o.truncated), (-1, false, true));
    }

    #[test]
    fn env_keeps_the_last_value_and_modes_default_to_log() {
        let c = Command::new("x").env("A", "1").env("B", "2").env("A", "3");
        assert_eq!(
            c.env,
            vec![("B".to_string(), "2".to_string()), ("A".into(), "3".into())]
        );
        assert_eq!(
            (c.stdout, c.stderr, c.stdin),
            (OutputMode::Log, OutputMode::Log, false)
        );
    }

    #[test]
    fn denied_names_the_program_as_an_exec_capability() {
        let e: StageError = ExecError::Denied("cargo".into()).into();
        assert_eq!(e, StageError::Denied(Capability::exec("cargo")));
        let e: StageError = ExecError::NotFound("cargo".into()).into();
        assert!(matches!(e, StageError::Failed(_)));
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
