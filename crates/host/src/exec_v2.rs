//! `sluice:stage/exec@0.2.0`: `run` (0.1's call) and `spawn` with the
//! `process` resource.
//!
//! `spawn` checks a command like 0.1's `run` (`exec`: the grant,
//! the PATH lookup, the working directory) and its `env` (never `PATH`,
//! no empty name, no `=` or NUL), then starts the program in the stage's
//! process set, in a process group of its own, with a cleared environment
//! plus the command's `env`. A supervisor task owns the child: it waits
//! for the exit, the timeout, or a kill request (`kill`, or the `process`
//! being dropped), stops the program's process group when it must, counts
//! the program as running in the set until then (see
//! [`super::procs`]: leftovers are stopped when the last running program
//! exits), notes the end in the log and publishes the `Ended` status.
//!
//! Output, per stream, by its `output-mode`:
//! - `pipe`: a wasi `input-stream` over the pipe, ended after the stage's
//!   output cap ([`ExecGrant::output_cap`](super::state::ExecGrant)); the
//!   rest is drained so that the program never blocks on a full pipe,
//!   and `truncated` says so. A pipe the stage never reads fills up and
//!   blocks the program, as any pipe does; dropping the stream closes it
//!   (the program then gets `EPIPE`/`SIGPIPE` when it writes).
//! - `log`: a task per stream writes chunks to the stage log as they
//!   arrive ([`LogStream::ProgramStdout`] / [`LogStream::ProgramStderr`]),
//!   which redacts, caps and shows them live line by line.
//! - `discard`: `/dev/null`.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::pipe::{AsyncReadStream, AsyncWriteStream};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, Pollable};

use super::bindings::wit_exec::{
    Command, ErrorCode, ExitStatus, Host, HostProcess, Output, OutputMode,
};
use super::bindings::wit_exec_v1;
use super::exec::{self, Refusal};
use super::logpipe::{LogStream, StageLog};
use super::procs::{self, ProcHandle, Running};
use super::state::StageState;

/// How much the stage may write to a program's stdin before it must wait
/// for the program to read (the `output-stream`'s write budget).
const STDIN_BUDGET: usize = 64 * 1024;

/// Read size of the `log`-mode readers.
const LOG_CHUNK: usize = 16 * 1024;

/// After a program exited, how long its end waits for the `log`-mode
/// readers to reach the end of its output. Bounded because a leftover
/// background process (kept while other programs run) may hold the pipe
/// open; normally the pipes end at once.
const LOG_DRAIN_WAIT: Duration = Duration::from_millis(500);

/// How a spawned program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal the runner did not send killed it.
    Signaled(i32),
    /// The runner killed it at its timeout.
    TimedOut,
    /// The runner killed it on request (`kill`, dropping the process, the
    /// stage ending).
    Killed,
}

impl From<Ended> for ExitStatus {
    fn from(e: Ended) -> ExitStatus {
        match e {
            Ended::Exited(c) => ExitStatus::Exited(c),
            Ended::Signaled(s) => ExitStatus::Signaled(s),
            Ended::TimedOut => ExitStatus::TimedOut,
            Ended::Killed => ExitStatus::Killed,
        }
    }
}

/// The read end of a program's output as the stage gets it: the child's
/// pipe (`pipe`), or the copy a `tee` reader forwards.
type OutputPipe = Box<dyn AsyncRead + Unpin + Send>;

/// A program started through `spawn` (the `process` resource).
pub struct Process {
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    stdout: Option<CappedReader<OutputPipe>>,
    stderr: Option<CappedReader<OutputPipe>>,
    /// `None` while it runs.
    status: watch::Receiver<Option<Ended>>,
    /// Tells the supervisor to kill the program; dropping it does too.
    kill: Option<oneshot::Sender<()>>,
    truncated: Arc<AtomicBool>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Process {
    /// The program's stdin as a wasi stream, once.
    fn take_stdin(&mut self) -> Option<DynOutputStream> {
        let pipe = self.stdin.take()?;
        Some(Box::new(AsyncWriteStream::new(STDIN_BUDGET, pipe)))
    }

    /// The program's piped stdout as a wasi stream, once.
    fn take_stdout(&mut self) -> Option<DynInputStream> {
        let pipe = self.stdout.take()?;
        Some(Box::new(AsyncReadStream::new(pipe)))
    }

    /// The program's piped stderr as a wasi stream, once.
    fn take_stderr(&mut self) -> Option<DynInputStream> {
        let pipe = self.stderr.take()?;
        Some(Box::new(AsyncReadStream::new(pipe)))
    }

    /// How it ended, or `None` while it runs.
    fn try_status(&self) -> Option<Ended> {
        current(&self.status)
    }

    /// A receiver that sees the end.
    fn watcher(&self) -> watch::Receiver<Option<Ended>> {
        self.status.clone()
    }

    /// Ask the supervisor to kill the program (no effect once it ended).
    fn request_kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }

    /// True when piped output was cut at the cap.
    fn was_truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Dropping the sender is a kill request too; explicit for clarity.
        self.request_kill();
    }
}

/// The status a receiver holds; a supervisor that went away without one
/// (its runtime shut down) killed the program on its way out.
fn current(rx: &watch::Receiver<Option<Ended>>) -> Option<Ended> {
    let now = *rx.borrow();
    match now {
        Some(e) => Some(e),
        None if rx.has_changed().is_err() => Some(Ended::Killed),
        None => None,
    }
}

/// Wait for the end.
async fn wait_end(mut rx: watch::Receiver<Option<Ended>>) -> Ended {
    let seen = rx.wait_for(Option::is_some).await.map(|v| *v);
    match seen {
        Ok(v) => v.unwrap_or(Ended::Killed),
        Err(_) => current(&rx).unwrap_or(Ended::Killed),
    }
}

/// The `pollable` of `subscribe`: ready once the program ended.
struct ExitWatch(watch::Receiver<Option<Ended>>);

#[async_trait::async_trait]
impl Pollable for ExitWatch {
    async fn ready(&mut self) {
        // An error means the supervisor is gone: ended too.
        let _ = self.0.wait_for(Option::is_some).await;
    }
}

/// A checked command, ready to start.
pub(crate) struct Launch {
    /// The program's file.
    pub binary: PathBuf,
    /// The name the stage gave (for notes).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory.
    pub dir: PathBuf,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Pipe stdin?
    pub stdin: bool,
    /// Where stdout goes.
    pub stdout: OutputMode,
    /// Where stderr goes.
    pub stderr: OutputMode,
    /// Kill it after this long.
    pub timeout: Duration,
    /// Cap on each piped stream.
    pub cap: u64,
}

/// Refuse `env` entries and arguments a program cannot be given.
pub(crate) fn check_command(args: &[String], env: &[(String, String)]) -> Result<(), Refusal> {
    for (name, value) in env {
        let why = if name == "PATH" {
            Some("`PATH` may not be set (programs are looked up on the host's own PATH)")
        } else if name.is_empty() {
            Some("a variable name may not be empty")
        } else if name.contains('=') {
            Some("a variable name may not contain `=`")
        } else if name.contains('\0') {
            Some("a variable name may not contain NUL")
        } else if value.contains('\0') {
            Some("a variable's value may not contain NUL")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Refusal::InvalidArgument(format!(
                "env variable {:?}: {why}",
                shorten(name)
            )));
        }
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(Refusal::InvalidArgument(format!(
            "argument {i} contains NUL"
        )));
    }
    Ok(())
}

/// A guest-given name cut for messages.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Start a checked command in the stage's process set and supervise it.
pub(crate) async fn start(
    launch: Launch,
    procs: &ProcHandle,
    log: &StageLog,
) -> Result<Process, Refusal> {
    let mut cmd = tokio::process::Command::new(&launch.binary);
    cmd.args(&launch.args)
        .current_dir(&launch.dir)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(if launch.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    // Both streams to the log: one pipe for both (`2>&1`), so that lines
    // reach the log in the order the program wrote them. Two pipes have no
    // order between them: a reader of each could swap lines written a
    // microsecond apart.
    let merged = if launch.stdout == OutputMode::Log && launch.stderr == OutputMode::Log {
        let (reader, writer) = std::io::pipe()
            .map_err(|e| Refusal::SpawnFailed(format!("cannot make a pipe: {e}")))?;
        let second = writer
            .try_clone()
            .map_err(|e| Refusal::SpawnFailed(format!("cannot make a pipe: {e}")))?;
        cmd.stdout(writer).stderr(second);
        Some(reader)
    } else {
        cmd.stdout(stdio_for(launch.stdout))
            .stderr(stdio_for(launch.stderr));
        None
    };
    // Its own process group: `kill` signals the group, and a Ctrl-C on the
    // terminal reaches the runner only.
    #[cfg(unix)]
    cmd.process_group(0);
    let epoch = procs.signalled();
    let (mut child, running) = procs
        .spawn_program(&mut cmd)
        .await
        .map_err(|e| Refusal::SpawnFailed(format!("{}: {e}", launch.binary.display())))?;
    // The command holds the merged pipe's write ends: without closing them
    // here the reader would never see the end of the output.
    drop(cmd);
    let pid = child.id();
    log.note(&format!(
        "spawn {} {} -> pid {}",
        launch.program,
        launch.args.join(" "),
        pid.map_or_else(|| "?".to_string(), |p| p.to_string())
    ));
    let truncated = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut stdout = None;
    let mut stderr = None;
    if let Some(reader) = merged {
        readers.push(merged_log_reader(reader, log.clone()));
    }
    if let Some(pipe) = child.stdout.take() {
        match launch.stdout {
            OutputMode::Log => {
                readers.push(log_reader(pipe, log.clone(), LogStream::ProgramStdout))
            }
            OutputMode::Tee => {
                let (reader, copy) = tee_reader(pipe, log.clone(), LogStream::ProgramStdout);
                readers.push(reader);
                stdout = Some(CappedReader::new(copy, launch.cap, truncated.clone()));
            }
            _ => {
                let pipe: OutputPipe = Box::new(pipe);
                stdout = Some(CappedReader::new(pipe, launch.cap, truncated.clone()))
            }
        }
    }
    if let Some(pipe) = child.stderr.take() {
        match launch.stderr {
            OutputMode::Log => {
                readers.push(log_reader(pipe, log.clone(), LogStream::ProgramStderr))
            }
            OutputMode::Tee => {
                let (reader, copy) = tee_reader(pipe, log.clone(), LogStream::ProgramStderr);
                readers.push(reader);
                stderr = Some(CappedReader::new(copy, launch.cap, truncated.clone()));
            }
            _ => {
                let pipe: OutputPipe = Box::new(pipe);
                stderr = Some(CappedReader::new(pipe, launch.cap, truncated.clone()))
            }
        }
    }
    let stdin = child.stdin.take();
    let (status_tx, status) = watch::channel(None);
    let (kill, kill_rx) = oneshot::channel();
    let supervisor = Supervisor {
        procs: procs.clone(),
        log: log.clone(),
        program: launch.program,
        timeout: launch.timeout,
        started: Instant::now(),
        epoch,
        readers,
        truncated: truncated.clone(),
        status: status_tx,
    };
    tokio::spawn(supervisor.run(child, running, kill_rx));
    Ok(Process {
        pid,
        stdin,
        stdout,
        stderr,
        status,
        kill: Some(kill),
        truncated,
    })
}

fn stdio_for(mode: OutputMode) -> Stdio {
    match mode {
        OutputMode::Pipe | OutputMode::Log | OutputMode::Tee => Stdio::piped(),
        OutputMode::Discard => Stdio::null(),
    }
}

/// Copy the merged stdout+stderr pipe into the stage log as it arrives (a
/// blocking read on its own thread: a std pipe, read until every writer,
/// the program and whatever inherited it, has closed it).
fn merged_log_reader(mut pipe: std::io::PipeReader, log: StageLog) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = vec![0u8; LOG_CHUNK];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => log.write(LogStream::ProgramStdout, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

/// `tee`: copy a pipe into the stage log as it arrives, and forward the
/// same bytes to the stage's stream (the returned reader). Once the stage
/// drops its stream, the rest still goes to the log.
fn tee_reader<R>(mut pipe: R, log: StageLog, stream: LogStream) -> (JoinHandle<()>, OutputPipe)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (mut to_stage, from_tee) = tokio::io::duplex(LOG_CHUNK);
    let task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut buf = vec![0u8; LOG_CHUNK];
        let mut stage_reads = true;
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.write(stream, &buf[..n]);
                    if stage_reads && to_stage.write_all(&buf[..n]).await.is_err() {
                        stage_reads = false;
                    }
                }
            }
        }
    });
    (task, Box::new(from_tee))
}

/// Copy a pipe into the stage log, chunk by chunk as it arrives.
fn log_reader<R>(mut pipe: R, log: StageLog, stream: LogStream) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = vec![0u8; LOG_CHUNK];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                // Past the log's cap this keeps reading and dropping, so
                // the program never blocks on a full pipe.
                Ok(n) => log.write(stream, &buf[..n]),
            }
        }
    })
}

/// Owns a spawned child until it ended.
struct Supervisor {
    procs: ProcHandle,
    log: StageLog,
    program: String,
    timeout: Duration,
    started: Instant,
    /// The set's signal count at the start (see [`ProcHandle::signalled`]).
    epoch: u64,
    readers: Vec<JoinHandle<()>>,
    truncated: Arc<AtomicBool>,
    status: watch::Sender<Option<Ended>>,
}

impl Supervisor {
    async fn run(self, mut child: Child, running: Running, kill: oneshot::Receiver<()>) {
        let pid = child.id();
        enum Why {
            Exit(std::io::Result<std::process::ExitStatus>),
            Timeout,
            Kill,
        }
        let why = tokio::select! {
            status = child.wait() => Why::Exit(status),
            () = tokio::time::sleep(self.timeout) => Why::Timeout,
            // Sent, or the `process` was dropped.
            _ = kill => Why::Kill,
        };
        let ended = match why {
            Why::Exit(Ok(status)) => classify(status, self.procs.signalled() != self.epoch),
            Why::Exit(Err(e)) => {
                self.log.note(&format!(
                    "{}: cannot collect its exit status: {e}",
                    self.program
                ));
                Ended::Killed
            }
            Why::Timeout | Why::Kill => {
                // The wait runs beside the stop so that the program is
                // reaped as soon as it goes.
                let stop = self.procs.stop_program(pid, procs::kill_grace());
                let _ = tokio::join!(child.wait(), stop);
                if matches!(why, Why::Timeout) {
                    Ended::TimedOut
                } else {
                    Ended::Killed
                }
            }
        };
        self.procs.reaped(pid);
        drop(running);
        // Unless another program still runs; that closes the pipes the
        // leftovers hold, which the log readers wait for.
        self.procs.stop_leftovers().await;
        let readers = futures_all(self.readers);
        let _ = tokio::time::timeout(LOG_DRAIN_WAIT, readers).await;
        let how = match ended {
            Ended::Exited(code) => format!(
                "exit {code} in {:.2}s",
                self.started.elapsed().as_secs_f64()
            ),
            Ended::Signaled(sig) => format!(
                "killed by signal {sig} in {:.2}s",
                self.started.elapsed().as_secs_f64()
            ),
            Ended::TimedOut => format!("timed out after {:.1}s", self.timeout.as_secs_f64()),
            Ended::Killed => "killed".to_string(),
        };
        let cut = if self.truncated.load(Ordering::Relaxed) {
            ", output truncated"
        } else {
            ""
        };
        let pid = pid.map_or_else(|| "?".to_string(), |p| p.to_string());
        self.log
            .note(&format!("{} (pid {pid}): {how}{cut}", self.program));
        self.status.send_replace(Some(ended));
    }
}

/// Wait for every task.
async fn futures_all(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// How a program that exited by itself ended; `runner_signalled`: the
/// runner signalled the whole set meanwhile (the stage is ending).
fn classify(status: std::process::ExitStatus, runner_signalled: bool) -> Ended {
    if let Some(code) = status.code() {
        return Ended::Exited(code);
    }
    if runner_signalled {
        return Ended::Killed;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Ended::Signaled(sig);
        }
    }
    Ended::Killed
}

/// A pipe ended after `cap` bytes: past it, `truncated` is set, the
/// reader reports the end, and a task drains the rest so that the
/// program never blocks on a full pipe.
struct CappedReader<R> {
    inner: Option<R>,
    left: u64,
    truncated: Arc<AtomicBool>,
    buf: Vec<u8>,
}

impl<R> CappedReader<R> {
    fn new(inner: R, cap: u64, truncated: Arc<AtomicBool>) -> CappedReader<R> {
        CappedReader {
            inner: Some(inner),
            left: cap,
            truncated,
            buf: Vec::new(),
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> CappedReader<R> {
    /// Past the cap: the rest goes nowhere, without blocking the program.
    fn drain(&mut self) {
        let Some(mut rest) = self.inner.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
            });
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> AsyncRead for CappedReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // At the cap, one more byte tells whether the output went past it.
        let want = usize::try_from(this.left)
            .unwrap_or(usize::MAX)
            .min(out.remaining())
            .clamp(1, 64 * 1024);
        this.buf.resize(want, 0);
        let mut scratch = ReadBuf::new(&mut this.buf);
        match Pin::new(inner).poll_read(cx, &mut scratch) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.inner = None;
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(())) => {}
        }
        let got = scratch.filled().len();
        if got == 0 {
            this.inner = None;
        } else if this.left == 0 {
            this.truncated.store(true, Ordering::Relaxed);
            this.drain();
        } else {
            // `want` was at most `left` and `remaining`.
            out.put_slice(&this.buf[..got]);
            this.left = this.left.saturating_sub(got as u64);
        }
        Poll::Ready(Ok(()))
    }
}

impl StageState {
    /// `spawn`'s checks, in order: the grant (a refusal is recorded as a
    /// denial), the PATH lookup, `env` and arguments, `cwd`.
    fn check_spawn(&mut self, command: Command) -> Result<Launch, Refusal> {
        let binary =
            exec::granted_binary(&mut self.exec, &self.denials, &self.log, &command.program)?;
        check_command(&command.args, &command.env)?;
        let dir = exec::resolve_cwd(&self.exec, command.cwd.as_deref())
            .map_err(Refusal::InvalidArgument)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout = command
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()).min(left))
            .unwrap_or(left);
        let env = exec::program_env(&self.exec.env)
            .chain(command.env)
            .collect();
        Ok(Launch {
            binary,
            program: command.program,
            args: command.args,
            dir,
            env,
            stdin: command.stdin,
            stdout: command.stdout,
            stderr: command.stderr,
            timeout,
            cap: self.exec.output_cap,
        })
    }
}

fn error_code(r: Refusal) -> ErrorCode {
    match r {
        Refusal::Denied(m) => ErrorCode::Denied(m),
        Refusal::NotFound(m) => ErrorCode::NotFound(m),
        Refusal::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        Refusal::SpawnFailed(m) => ErrorCode::SpawnFailed(m),
    }
}

fn v1_error(e: wit_exec_v1::ErrorCode) -> ErrorCode {
    match e {
        wit_exec_v1::ErrorCode::Denied(m) => ErrorCode::Denied(m),
        wit_exec_v1::ErrorCode::NotFound(m) => ErrorCode::NotFound(m),
        wit_exec_v1::ErrorCode::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        wit_exec_v1::ErrorCode::SpawnFailed(m) => ErrorCode::SpawnFailed(m),
    }
}

impl Host for StageState {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        cwd: Option<String>,
        timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Result<Output, ErrorCode>> {
        let out = match wit_exec_v1::Host::run(self, program, args, cwd, timeout_ms).await {
            Ok(out) => out,
            Err(e) => return Ok(Err(v1_error(e))),
        };
        Ok(Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
            truncated: out.truncated,
            timed_out: out.timed_out,
        }))
    }

    async fn spawn(
        &mut self,
        command: Command,
    ) -> wasmtime::Result<Result<Resource<Process>, ErrorCode>> {
        let started = async {
            let launch = self.check_spawn(command)?;
            let procs = exec::process_set(&mut self.procs)?;
            start(launch, &procs, &self.log).await
        };
        match started.await {
            // A full table traps the guest and drops (so kills) the
            // process it could not hold.
            Ok(process) => Ok(Ok(self.table.push(process)?)),
            Err(refusal) => Ok(Err(error_code(refusal))),
        }
    }
}

impl HostProcess for StageState {
    async fn stdin(
        &mut self,
        p: Resource<Process>,
    ) -> wasmtime::Result<Option<Resource<DynOutputStream>>> {
        match self.table.get_mut(&p)?.take_stdin() {
            Some(stream) => Ok(Some(self.table.push(stream)?)),
            None => Ok(None),
        }
    }

    async fn stdout(
        &mut self,
        p: Resource<Process>,
    ) -> wasmtime::Result<Option<Resource<DynInputStream>>> {
        match self.table.get_mut(&p)?.take_stdout() {
            Some(stream) => Ok(Some(self.table.push(stream)?)),
            None => Ok(None),
        }
    }

    async fn stderr(
        &mut self,
        p: Resource<Process>,
    ) -> wasmtime::Result<Option<Resource<DynInputStream>>> {
        match self.table.get_mut(&p)?.take_stderr() {
            Some(stream) => Ok(Some(self.table.push(stream)?)),
            None => Ok(None),
        }
    }

    async fn subscribe(&mut self, p: Resource<Process>) -> wasmtime::Result<Resource<DynPollable>> {
        let watch = ExitWatch(self.table.get(&p)?.watcher());
        // A resource of its own, deleted with the pollable: the process
        // may be dropped while the pollable lives.
        let watch = self.table.push(watch)?;
        wasmtime_wasi::p2::subscribe(&mut self.table, watch)
    }

    async fn try_wait(&mut self, p: Resource<Process>) -> wasmtime::Result<Option<ExitStatus>> {
        Ok(self.table.get(&p)?.try_status().map(ExitStatus::from))
    }

    async fn wait(&mut self, p: Resource<Process>) -> wasmtime::Result<ExitStatus> {
        let watcher = self.table.get(&p)?.watcher();
        Ok(wait_end(watcher).await.into())
    }

    async fn kill(&mut self, p: Resource<Process>) -> wasmtime::Result<()> {
        self.table.get_mut(&p)?.request_kill();
        Ok(())
    }

    async fn truncated(&mut self, p: Resource<Process>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&p)?.was_truncated())
    }

    async fn drop(&mut self, p: Resource<Process>) -> wasmtime::Result<()> {
        // Dropping the process asks its supervisor to kill the program if
        // it still runs.
        self.table.delete(p)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::logpipe::{LiveFn, LiveLine, Redactor};
    use super::super::procs::tests::{serial, with_token};
    use super::super::procs::StageProcs;
    use super::super::state::{Denials, ExecGrant};
    use super::*;
    use std::path::Path;
    use std::sync::Mutex;
    use wasmtime_wasi::p2::StreamError;

    /// Liveness bound for waits that normally take milliseconds.
    const BOUND: Duration = Duration::from_secs(20);

    /// Where a `Launch`'s program would run, for tests.
    fn launch(binary: &Path, args: &[&str], dir: &Path) -> Launch {
        Launch {
            binary: binary.to_path_buf(),
            program: binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: dir.to_path_buf(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: false,
            stdout: OutputMode::Discard,
            stderr: OutputMode::Discard,
            timeout: Duration::from_secs(30),
            cap: 1 << 20,
        }
    }

    fn null_log() -> StageLog {
        StageLog::discarding().expect("null log")
    }

    fn sh() -> PathBuf {
        exec::find_on_path("sh", &[("PATH".into(), "/usr/bin:/bin".into())]).expect("sh on PATH")
    }

    fn script(s: &str) -> Launch {
        let dir = std::env::temp_dir();
        let mut l = launch(&sh(), &["-c", s], &dir);
        l.program = "sh".into();
        l
    }

    /// A log whose program lines are collected (runner notes left out).
    fn collecting_log(dir: &Path) -> (StageLog, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let live: LiveFn = Arc::new(move |l: LiveLine<'_>| {
            if !l.text.starts_with("[sluice]") {
                if let Ok(mut v) = sink.lock() {
                    v.push(l.text.to_string());
                }
            }
        });
        let log = StageLog::create(
            &dir.join("stage.log"),
            Arc::new(Redactor::new(Vec::<String>::new())),
            1 << 20,
            Some(live),
        )
        .expect("log");
        (log, lines)
    }

    async fn ended(p: &Process) -> Ended {
        tokio::time::timeout(BOUND, wait_end(p.watcher()))
            .await
            .expect("the program ends")
    }

    async fn read_all(mut stream: DynInputStream) -> Vec<u8> {
        let mut got = Vec::new();
        loop {
            stream.ready().await;
            match stream.read(4096) {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(StreamError::Closed) => return got,
                Err(e) => panic!("read failed: {e:?}"),
            }
        }
    }

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    fn token(name: &str) -> String {
        format!("sluice-exec2-{name}-{}", std::process::id())
    }

    #[tokio::test]
    async fn log_mode_writes_both_streams_in_arrival_order() {
        let _serial = serial().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, lines) = collecting_log(dir.path());
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let mut l = script("echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c");
        l.stdout = OutputMode::Log;
        l.stderr = OutputMode::Log;
        let mut p = start(l, &handle, &log).await.expect("starts");
        assert!(p.take_stdout().is_none(), "log mode has no stream");
        assert!(p.take_stderr().is_none(), "log mode has no stream");
        assert!(p.take_stdin().is_none(), "stdin was not asked for");
        assert_eq!(ended(&p).await, Ended::Exited(0));
        let got = lines.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got, ["a", "b", "c"]);
        log.finish();
        let text = std::fs::read_to_string(dir.path().join("stage.log")).expect("log file");
        assert!(text.contains("a\nb\nc\n"), "{text}");
        assert!(text.contains("spawn sh -c"), "{text}");
        assert!(text.contains("exit 0 in"), "{text}");
    }

    /// `tee`: the lines reach the log live and the stage reads the same
    /// bytes; a stage that drops its stream does not stop the logging.
    #[tokio::test]
    async fn tee_mode_logs_and_hands_the_same_bytes_to_the_stage() {
        let _serial = serial().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, lines) = collecting_log(dir.path());
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let mut l = script("echo one; echo two >&2; echo three");
        l.stdout = OutputMode::Tee;
        l.stderr = OutputMode::Tee;
        let mut p = start(l, &handle, &log).await.expect("starts");
        let out = p.take_stdout().expect("stdout stream");
        let err = p.take_stderr().expect("stderr stream");
        assert_eq!(read_all(out).await, b"one\nthree\n");
        assert_eq!(read_all(err).await, b"two\n");
        assert_eq!(ended(&p).await, Ended::Exited(0));
        let mut got = lines.lock().map(|v| v.clone()).unwrap_or_default();
        got.sort();
        assert_eq!(got, ["one", "three", "two"]);

        // The stage drops its stream: the program is not blocked and the
        // log still gets everything.
        let mut l = script("seq 1 50000");
        l.stdout = OutputMode::Tee;
        l.stderr = OutputMode::Discard;
        let mut p = start(l, &handle, &log).await.expect("starts");
        drop(p.take_stdout());
        assert_eq!(ended(&p).await, Ended::Exited(0));
        log.finish();
        let text = std::fs::read_to_string(dir.path().join("stage.log")).expect("log file");
        assert!(text.contains("\n50000\n"), "the log has the last line");
    }

    #[tokio::test]
    async fn pipe_mode_is_cut_at_the_cap_without_blocking_the_program() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        // Far more than a pipe buffer: the program would block (and never
        // exit) unless the rest is drained.
        let mut l = script("head -c 300000 /dev/zero; echo fine >&2");
        l.stdout = OutputMode::Pipe;
        l.stderr = OutputMode::Pipe;
        l.cap = 16;
        let mut p = start(l, &handle, &null_log()).await.expect("starts");
        let out = p.take_stdout().expect("stdout stream");
        assert!(p.take_stdout().is_none(), "stdout is handed out once");
        let err = p.take_stderr().expect("stderr stream");
        let out = read_all(out).await;
        assert_eq!(out, vec![0u8; 16]);
        assert!(p.was_truncated());
        assert_eq!(ended(&p).await, Ended::Exited(0));
        assert_eq!(read_all(err).await, b"fine\n");

        // Exactly the cap is not truncated.
        let mut l = script("printf 0123456789abcdef");
        l.stdout = OutputMode::Pipe;
        l.cap = 16;
        let mut p = start(l, &handle, &null_log()).await.expect("starts");
        let out = read_all(p.take_stdout().expect("stdout stream")).await;
        assert_eq!(out, b"0123456789abcdef");
        assert_eq!(ended(&p).await, Ended::Exited(0));
        assert!(!p.was_truncated());
    }

    #[tokio::test]
    async fn stdin_is_piped_through_to_cat() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let mut l = script("cat");
        l.stdin = true;
        l.stdout = OutputMode::Pipe;
        let mut p = start(l, &handle, &null_log()).await.expect("starts");
        let mut input = p.take_stdin().expect("stdin stream");
        assert!(p.take_stdin().is_none(), "stdin is handed out once");
        let out = p.take_stdout().expect("stdout stream");
        input.ready().await;
        assert!(input.check_write().expect("writable") >= 12);
        input
            .write(bytes::Bytes::from_static(b"hello, cat\n"))
            .expect("write");
        input.flush().expect("flush");
        input.ready().await;
        // Dropping the stream closes the pipe: cat sees the end.
        input.cancel().await;
        drop(input);
        assert_eq!(read_all(out).await, b"hello, cat\n");
        assert_eq!(ended(&p).await, Ended::Exited(0));
    }

    #[tokio::test]
    async fn kill_ends_the_program_and_its_children() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let tok = token("kill");
        let l = script(&format!("sh -c 'sleep 100; : {tok}' & sleep 100; : {tok}"));
        let mut p = start(l, &handle, &null_log()).await.expect("starts");
        assert!(wait_until(|| with_token(&tok).len() >= 2), "never started");
        assert_eq!(p.try_status(), None);
        p.request_kill();
        assert_eq!(ended(&p).await, Ended::Killed);
        assert_eq!(p.try_status(), Some(Ended::Killed));
        assert!(
            wait_until(|| with_token(&tok).is_empty()),
            "left running: {:?}",
            with_token(&tok)
        );
        // Kill after the end does nothing.
        p.request_kill();
        assert_eq!(p.try_status(), Some(Ended::Killed));
    }

    #[tokio::test]
    async fn dropping_the_process_kills_the_program() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let tok = token("drop");
        let p = start(script(&format!("sleep 100; : {tok}")), &handle, &null_log())
            .await
            .expect("starts");
        let watcher = p.watcher();
        assert!(wait_until(|| !with_token(&tok).is_empty()), "never started");
        drop(p);
        assert_eq!(
            tokio::time::timeout(BOUND, wait_end(watcher))
                .await
                .expect("ends"),
            Ended::Killed
        );
        assert!(wait_until(|| with_token(&tok).is_empty()));
    }

    #[tokio::test]
    async fn a_timeout_gives_timed_out() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let mut l = script("sleep 100");
        l.timeout = Duration::from_millis(200);
        let p = start(l, &handle, &null_log()).await.expect("starts");
        assert_eq!(ended(&p).await, Ended::TimedOut);
    }

    #[tokio::test]
    async fn exit_codes_and_foreign_signals_are_reported() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let p = start(script("exit 3"), &handle, &null_log())
            .await
            .expect("starts");
        assert_eq!(ended(&p).await, Ended::Exited(3));
        let p = start(script("kill -KILL $$"), &handle, &null_log())
            .await
            .expect("starts");
        assert_eq!(ended(&p).await, Ended::Signaled(9));
    }

    #[tokio::test]
    async fn one_program_exiting_does_not_stop_another() {
        let _serial = serial().await;
        let mut procs = StageProcs::new(null_log());
        let handle = procs.handle().expect("set");
        let long = token("long");
        let left = token("leftover");
        let mut a = start(
            script(&format!("sleep 100; : {long}")),
            &handle,
            &null_log(),
        )
        .await
        .expect("starts");
        // Leaves a background process behind and exits.
        let b = start(
            script(&format!("(sleep 100; : {left}) & exit 0")),
            &handle,
            &null_log(),
        )
        .await
        .expect("starts");
        assert_eq!(ended(&b).await, Ended::Exited(0));
        assert!(
            wait_until(|| !with_token(&left).is_empty()),
            "never started"
        );
        // The supervisor stops leftovers before it publishes the end, so
        // anything stopped would be gone by now.
        assert_eq!(a.try_status(), None, "the other program was stopped");
        assert!(
            !with_token(&long).is_empty(),
            "the other program was stopped"
        );
        assert!(
            !with_token(&left).is_empty(),
            "stopped while a program runs"
        );
        // The last running program ends: the leftover goes with it.
        a.request_kill();
        assert_eq!(ended(&a).await, Ended::Killed);
        assert!(
            wait_until(|| with_token(&left).is_empty() && with_token(&long).is_empty()),
            "left running: {:?} {:?}",
            with_token(&left),
            with_token(&long)
        );
    }

    /// A stage's store data with `sh` granted and no workspace.
    fn stage_state(scratch: &Path) -> StageState {
        use super::super::guest_api::Progress;
        use super::super::net::NetPolicy;
        use super::super::state::MemoryLimiter;
        let log = null_log();
        let denials = Denials::default();
        StageState {
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            table: wasmtime::component::ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            net: NetPolicy::new(&[], &[], log.clone(), denials.clone()).expect("net policy"),
            limiter: MemoryLimiter {
                limit: 1 << 30,
                exceeded: None,
            },
            exec: ExecGrant {
                programs: vec!["sh".into()],
                workspace: None,
                scratch: scratch.to_path_buf(),
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                output_cap: 1 << 20,
                resolved: Default::default(),
            },
            secrets: Default::default(),
            secret_grants: Vec::new(),
            log: log.clone(),
            denials,
            deadline: Instant::now() + Duration::from_secs(60),
            procs: StageProcs::new(log.clone()),
            cancel: tokio_util::sync::CancellationToken::new(),
            progress: Progress::new(None, log),
        }
    }

    fn command(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: None,
            env: Vec::new(),
            stdin: false,
            stdout: OutputMode::Discard,
            stderr: OutputMode::Discard,
            timeout_ms: None,
        }
    }

    // Multi-threaded: `wait_until` blocks its thread while the supervisor
    // task works.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_process_resource_through_the_host_traits() {
        use wasmtime_wasi_io::bindings::wasi::io::poll::HostPollable;
        use wasmtime_wasi_io::bindings::wasi::io::streams::HostInputStream;
        let _serial = serial().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut st = stage_state(dir.path());

        let denied = Host::spawn(&mut st, command("rm", &["-rf", "/"])).await;
        assert!(
            matches!(denied, Ok(Err(ErrorCode::Denied(_)))),
            "{denied:?}"
        );
        assert_eq!(st.denials.total(), 1);
        let mut c = command("sh", &["-c", "true"]);
        c.env = vec![("PATH".into(), "/tmp".into())];
        let refused = Host::spawn(&mut st, c).await;
        assert!(
            matches!(&refused, Ok(Err(ErrorCode::InvalidArgument(m))) if m.contains("PATH")),
            "{refused:?}"
        );
        let mut c = command("sh", &["-c", "true"]);
        c.cwd = Some("sub".into());
        let refused = Host::spawn(&mut st, c).await;
        assert!(
            matches!(refused, Ok(Err(ErrorCode::InvalidArgument(_)))),
            "{refused:?}"
        );

        let mut c = command("sh", &["-c", "echo \"$GREETING\"; exit 4"]);
        c.env = vec![("GREETING".into(), "hi there".into())];
        c.stdout = OutputMode::Pipe;
        let p = Host::spawn(&mut st, c)
            .await
            .expect("no trap")
            .expect("spawns");
        let rep = p.rep();
        let again = || Resource::<Process>::new_borrow(rep);
        assert!(HostProcess::stdin(&mut st, again())
            .await
            .expect("no trap")
            .is_none());
        assert!(HostProcess::stderr(&mut st, again())
            .await
            .expect("no trap")
            .is_none());
        let out = HostProcess::stdout(&mut st, again())
            .await
            .expect("no trap")
            .expect("stdout");
        assert!(HostProcess::stdout(&mut st, again())
            .await
            .expect("no trap")
            .is_none());
        let ready = HostProcess::subscribe(&mut st, again())
            .await
            .expect("no trap");
        let ready_rep = ready.rep();
        tokio::time::timeout(
            BOUND,
            HostPollable::block(&mut st.table, Resource::new_borrow(ready_rep)),
        )
        .await
        .expect("ready")
        .expect("no trap");
        let status = HostProcess::try_wait(&mut st, again())
            .await
            .expect("no trap");
        assert!(matches!(status, Some(ExitStatus::Exited(4))), "{status:?}");
        let status = HostProcess::wait(&mut st, again()).await.expect("no trap");
        assert!(matches!(status, ExitStatus::Exited(4)), "{status:?}");
        assert!(!HostProcess::truncated(&mut st, again())
            .await
            .expect("no trap"));
        let line =
            HostInputStream::blocking_read(&mut st.table, Resource::new_borrow(out.rep()), 100)
                .await
                .expect("read");
        assert_eq!(line, b"hi there\n");
        // The process goes before its pollable and stream.
        HostProcess::drop(&mut st, p).await.expect("drops");
        HostPollable::drop(&mut st.table, ready).expect("drops");

        let tok = token("glue");
        let p = Host::spawn(
            &mut st,
            command("sh", &["-c", &format!("sleep 100; : {tok}")]),
        )
        .await
        .expect("no trap")
        .expect("spawns");
        assert!(wait_until(|| !with_token(&tok).is_empty()), "never started");
        HostProcess::drop(&mut st, p).await.expect("drops");
        assert!(
            wait_until(|| with_token(&tok).is_empty()),
            "dropping did not kill it"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_beside_a_spawned_program_leaves_it_alone() {
        let _serial = serial().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut st = stage_state(dir.path());
        let tok = token("beside");
        let p = Host::spawn(
            &mut st,
            command("sh", &["-c", &format!("sleep 100; : {tok}")]),
        )
        .await
        .expect("no trap")
        .expect("spawns");
        assert!(wait_until(|| !with_token(&tok).is_empty()), "never started");
        let args = |s: &str| vec!["-c".to_string(), s.to_string()];
        // 0.1's `run`: its exit, and its timeout, stop nothing of the other.
        let out = wit_exec_v1::Host::run(&mut st, "sh".into(), args("exit 0"), None, None)
            .await
            .expect("runs");
        assert_eq!(out.status, 0);
        let out = wit_exec_v1::Host::run(&mut st, "sh".into(), args("sleep 30"), None, Some(200))
            .await
            .expect("runs");
        assert!(out.timed_out);
        let status = HostProcess::try_wait(&mut st, Resource::new_borrow(p.rep()))
            .await
            .expect("no trap");
        assert!(status.is_none(), "{status:?}");
        assert!(
            !with_token(&tok).is_empty(),
            "the spawned program was stopped"
        );
        HostProcess::kill(&mut st, Resource::new_borrow(p.rep()))
            .await
            .expect("no trap");
        let status = HostProcess::wait(&mut st, Resource::new_borrow(p.rep()))
            .await
            .expect("no trap");
        assert!(matches!(status, ExitStatus::Killed), "{status:?}");
        HostProcess::drop(&mut st, p).await.expect("drops");
    }

    #[test]
    fn bad_env_and_arguments_are_refused() {
        let env = |k: &str| vec![(k.to_string(), "v".to_string())];
        for bad in ["PATH", "", "A=B", "A\0B"] {
            let refused = check_command(&[], &env(bad));
            assert!(
                matches!(&refused, Err(Refusal::InvalidArgument(m)) if m.contains(&format!("{:?}", bad))),
                "{bad:?}: {refused:?}"
            );
        }
        assert!(check_command(&[], &[("A".into(), "x\0".into())]).is_err());
        assert!(check_command(&["ok".into(), "n\0ul".into()], &[]).is_err());
        assert!(check_command(&["ok".into()], &[("Path".into(), "x".into())]).is_ok());
        let long = "N".repeat(10_000);
        let refused = check_command(&[], &env(&format!("{long}=")));
        assert!(
            matches!(&refused, Err(Refusal::InvalidArgument(m)) if m.len() < 300),
            "{refused:?}"
        );
    }

    #[test]
    fn a_denied_program_is_recorded_and_a_missing_one_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut grant = ExecGrant {
            programs: vec!["sh".into(), "sluice-no-such-tool".into()],
            workspace: Some(dir.path().to_path_buf()),
            scratch: dir.path().to_path_buf(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            output_cap: 16,
            resolved: Default::default(),
        };
        let denials = Denials::default();
        let log = null_log();
        let refused = exec::granted_binary(&mut grant, &denials, &log, "rm");
        assert!(
            matches!(&refused, Err(Refusal::Denied(m)) if m.contains("`rm`")),
            "{refused:?}"
        );
        assert_eq!(denials.total(), 1);
        assert!(denials.list()[0].contains("grants.exec"));
        let missing = exec::granted_binary(&mut grant, &denials, &log, "sluice-no-such-tool");
        assert!(matches!(missing, Err(Refusal::NotFound(_))), "{missing:?}");
        assert_eq!(denials.total(), 1, "not found is no denial");
        let sh = exec::granted_binary(&mut grant, &denials, &log, "sh").expect("sh");
        assert!(sh.is_absolute());
        assert_eq!(grant.resolved.get("sh"), Some(&sh));
    }

    #[test]
    fn runner_signals_count_as_killed() {
        use std::os::unix::process::ExitStatusExt;
        let by_signal = std::process::ExitStatus::from_raw(15);
        assert_eq!(classify(by_signal, false), Ended::Signaled(15));
        assert_eq!(classify(by_signal, true), Ended::Killed);
        let exited = std::process::ExitStatus::from_raw(2 << 8);
        assert_eq!(classify(exited, true), Ended::Exited(2));
        assert!(matches!(
            ExitStatus::from(Ended::TimedOut),
            ExitStatus::TimedOut
        ));
    }
}
