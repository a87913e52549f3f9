//! One stage, one sandbox: a fresh `Store` from the plugin's `InstancePre`,
//! a WASI context built only from the stage's grants, memory and time
//! limits, and a precise reason when the guest does not finish well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::wit;
use super::logpipe::{LogStream, StageLog};
use super::net::NetPolicy;
use super::state::{Denials, ExecGrant, MemoryLimiter, StageState};
use super::Plugin;

/// Bytes the guest may have in flight to stdout/stderr before it waits for
/// the log to catch up (the pipe is bounded; the log itself truncates).
const STDIO_BUDGET: usize = 64 * 1024;

/// How long `describe` may take (fixed: it must only return metadata).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Extra wall time granted past the stage timeout for a guest blocked in a
/// host call to be cut off (the epoch deadline ends busy guests on time).
const TIMEOUT_GRACE: Duration = Duration::from_millis(500);

/// Everything the sandbox of one stage attempt is made from.
pub struct StageRequest {
    /// The context passed to `run`.
    pub context: wit::Context,
    /// Host directory for `/workspace` and whether it is writable; `None`
    /// mounts nothing.
    pub workspace: Option<(PathBuf, bool)>,
    /// Host directory for `/artifacts/in` (read-only); `None` mounts
    /// nothing (`describe`).
    pub inputs_dir: Option<PathBuf>,
    /// Host directory for `/artifacts/out` (fresh, writable); `None` mounts
    /// nothing (`describe`).
    pub outputs_dir: Option<PathBuf>,
    /// Private scratch directory (cwd for `exec` without a workspace),
    /// created when a program first runs there.
    pub scratch_dir: PathBuf,
    /// Environment variables visible to the guest (already filtered).
    pub env: Vec<(String, String)>,
    /// Programs `exec` may run.
    pub exec_programs: Vec<String>,
    /// Environment for programs run through `exec`.
    pub exec_env: Vec<(String, String)>,
    /// `grants.network` patterns.
    pub network: Vec<String>,
    /// Granted secret names.
    pub secret_grants: Vec<String>,
    /// Values of the granted secrets the runner has.
    pub secrets: BTreeMap<String, String>,
    /// Linear memory limit in bytes.
    pub memory: u64,
    /// Cap for captured `exec` output (per stream).
    pub output_cap: u64,
    /// Wall-clock limit for the attempt.
    pub timeout: Duration,
    /// Most handles (open files and directories, streams, HTTP requests …)
    /// the guest may hold at once; see [`super::engine::handles_per_stage`].
    pub max_handles: usize,
    /// The stage's log.
    pub log: StageLog,
}

/// Why a stage attempt produced no report.
#[derive(Debug, Clone, PartialEq)]
pub enum StageFailure {
    /// The stage rejected its `with:` block.
    InvalidConfig(String),
    /// The stage lacked a capability (reported by the stage or the sandbox).
    Denied(String),
    /// The stage reported failure.
    Failed(String),
    /// The guest trapped (panic, unreachable, out-of-bounds access ...).
    Trap(String),
    /// The attempt ran past its timeout.
    Timeout(Duration),
    /// `describe` ran past its fixed limit.
    DescribeTimeout(Duration),
    /// The guest tried to use more memory than granted.
    MemoryLimit {
        /// The grant.
        limit: u64,
        /// What it asked for.
        asked: u64,
    },
    /// The guest held as many handles as it may (open files, streams …).
    TooManyHandles {
        /// The limit.
        limit: usize,
    },
    /// The runner could not set up the sandbox.
    Setup(String),
}

impl StageFailure {
    /// Whether `retries:` applies (config and permission problems never
    /// change by trying again).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            StageFailure::InvalidConfig(_) | StageFailure::Denied(_) | StageFailure::Setup(_)
        )
    }
}

impl std::fmt::Display for StageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageFailure::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            StageFailure::Denied(m) => write!(f, "denied: {m}"),
            StageFailure::Failed(m) => write!(f, "failed: {m}"),
            StageFailure::Trap(m) => write!(f, "trapped: {m}"),
            StageFailure::Timeout(d) => write!(
                f,
                "timed out after {}; raise the stage's `timeout:` if it needs longer",
                humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
            ),
            StageFailure::DescribeTimeout(d) => write!(
                f,
                "`describe` did not answer within {}s (a fixed limit: `describe` must only return the plugin's metadata, without doing work)",
                d.as_secs()
            ),
            StageFailure::MemoryLimit { limit, asked } => write!(
                f,
                "memory limit exceeded: the stage asked for {} but grants.memory is {}; raise grants.memory if it really needs more",
                bytesize::ByteSize(*asked),
                bytesize::ByteSize(*limit)
            ),
            StageFailure::TooManyHandles { limit } => write!(
                f,
                "the stage held {limit} handles (open files, directories, streams) at once, the most a stage may; close what it no longer needs"
            ),
            StageFailure::Setup(m) => write!(f, "sandbox setup failed: {m}"),
        }
    }
}

fn build_state(req: &StageRequest, denials: &Denials) -> Result<StageState, StageFailure> {
    let setup = |e: wasmtime::Error| StageFailure::Setup(format!("{e:#}"));
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(AsyncStdoutStream::new(
        STDIO_BUDGET,
        req.log.writer(LogStream::Stdout),
    ))
    .stderr(AsyncStdoutStream::new(
        STDIO_BUDGET,
        req.log.writer(LogStream::Stderr),
    ))
    .envs(&req.env)
    // File calls run on the stage's own thread instead of a round trip
    // through tokio's blocking pool per call (~0.2 ms each), which made
    // many-small-file stages (scan, lint) several times slower than native.
    // The preopens hold only regular files and directories of the
    // workspace and the artifact dirs; the overall timeout still ends the
    // stage once the call returns.
    .allow_blocking_current_thread(true)
    .allow_tcp(false)
    .allow_udp(false)
    .allow_ip_name_lookup(false);
    if let Some((dir, writable)) = &req.workspace {
        let perms = if *writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(dir, "/workspace", perms)
            .map_err(setup)?;
    }
    if let Some(dir) = &req.inputs_dir {
        wasi.preopened_dir(dir, "/artifacts/in", FsPerms::ReadOnly)
            .map_err(setup)?;
    }
    if let Some(dir) = &req.outputs_dir {
        wasi.preopened_dir(dir, "/artifacts/out", FsPerms::ReadWrite)
            .map_err(setup)?;
    }
    // `checked_add`: a timeout too large to add to the clock (validation
    // caps it, this is the last line of defence) means "no deadline soon".
    let deadline = Instant::now()
        .checked_add(req.timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
    // Every handle the guest holds is a table entry, and every open file
    // or directory among them is a file descriptor of the runner: bounding
    // the table keeps one stage from exhausting the runner's descriptors.
    let mut table = ResourceTable::new();
    table.set_max_capacity(req.max_handles);
    Ok(StageState {
        wasi: wasi.build(),
        table,
        http: WasiHttpCtx::new(),
        net: NetPolicy::new(&req.network, req.log.clone(), denials.clone()),
        limiter: MemoryLimiter {
            limit: req.memory,
            exceeded: None,
        },
        exec: ExecGrant {
            programs: req.exec_programs.clone(),
            workspace: req.workspace.as_ref().map(|(d, _)| d.clone()),
            scratch: req.scratch_dir.clone(),
            env: req.exec_env.clone(),
            output_cap: req.output_cap,
            resolved: BTreeMap::new(),
        },
        secrets: req.secrets.clone(),
        secret_grants: req.secret_grants.clone(),
        log: req.log.clone(),
        denials: denials.clone(),
        deadline,
        procs: super::procs::StageProcs::new(req.log.clone()),
    })
}

/// Make a store whose guest traps at `deadline` and yields to other tasks
/// at every epoch tick before that.
fn new_store(plugin: &Plugin, state: StageState, deadline: Instant) -> Store<StageState> {
    let mut store = Store::new(plugin.pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// Run one attempt of a stage.
pub async fn run_stage(plugin: &Plugin, req: StageRequest) -> Result<wit::Report, StageFailure> {
    let denials = Denials::default();
    let state = build_state(&req, &denials)?;
    let deadline = state.deadline;
    let mut store = new_store(plugin, state, deadline);
    let call = async {
        let stage = plugin.pre.instantiate_async(&mut store).await?;
        stage.call_run(&mut store, &req.context).await
    };
    let outcome = tokio::time::timeout(req.timeout.saturating_add(TIMEOUT_GRACE), call).await;
    let limiter = &store.data().limiter;
    let result = match outcome {
        Err(_) => Err(StageFailure::Timeout(req.timeout)),
        Ok(Err(e)) => Err(classify_error(&e, limiter, req.timeout, req.max_handles)),
        Ok(Ok(Err(stage_error))) => Err(match stage_error {
            wit::StageError::InvalidConfig(m) => StageFailure::InvalidConfig(m),
            wit::StageError::Denied(m) => StageFailure::Denied(m),
            wit::StageError::Failed(m) => StageFailure::Failed(m),
        }),
        Ok(Ok(Ok(report))) => Ok(report),
    };
    // A stage that failed after the sandbox refused it something fails
    // *because* of that refusal: say so, whatever the stage reported.
    match (result, denials.list().into_iter().next()) {
        (Err(StageFailure::Failed(m)), Some(denied))
        | (Err(StageFailure::Trap(m)), Some(denied)) => Err(StageFailure::Denied(format!(
            "{denied} (the stage then failed: {m})"
        ))),
        (r, _) => r,
    }
}

fn classify_error(
    e: &wasmtime::Error,
    limiter: &MemoryLimiter,
    timeout: Duration,
    max_handles: usize,
) -> StageFailure {
    if let Some(asked) = limiter.exceeded {
        return StageFailure::MemoryLimit {
            limit: limiter.limit,
            asked,
        };
    }
    if let Some(wasmtime::component::ResourceTableError::Full) =
        e.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return StageFailure::TooManyHandles { limit: max_handles };
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return StageFailure::Failed(format!(
            "the plugin called exit({}) instead of returning from `run`; a stage must return a report or an error",
            exit.0
        ));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => StageFailure::Timeout(timeout),
        Some(Trap::UnreachableCodeReached) => StageFailure::Trap(
            "wasm `unreachable` executed (this is how a panic ends; its message is in the log)"
                .into(),
        ),
        Some(Trap::StackOverflow) => StageFailure::Trap(format!(
            "stack overflow: the guest used more than its {} of wasm stack (unbounded recursion?)",
            bytesize::ByteSize(super::engine::MAX_WASM_STACK as u64)
        )),
        Some(trap) => StageFailure::Trap(trap.to_string()),
        None => {
            let text = format!("{e:#}");
            if text.contains("pooling allocator") || text.contains("instance count") {
                StageFailure::Setup(format!(
                    "{text} (too many stages at once for the instance pool; lower --jobs)"
                ))
            } else {
                StageFailure::Trap(text)
            }
        }
    }
}

/// Call `describe` in a sandbox with no grants at all: no directories, no
/// environment, and whatever it prints is discarded (it touches no file, so
/// loading plugins costs no file-system work).
pub async fn describe(plugin: &Plugin) -> Result<wit::PluginInfo, StageFailure> {
    let log = StageLog::discarding()
        .map_err(|e| StageFailure::Setup(format!("cannot open the null device: {e}")))?;
    let req = StageRequest {
        context: wit::Context {
            run_id: String::new(),
            pipeline: String::new(),
            stage: String::new(),
            environment: None,
            config: "{}".into(),
            inputs: Vec::new(),
            outputs_dir: "/artifacts/out".into(),
            upstream: Vec::new(),
            attempt: 1,
        },
        workspace: None,
        inputs_dir: None,
        outputs_dir: None,
        // Never created: `describe` has no `exec` grant.
        scratch_dir: PathBuf::new(),
        env: Vec::new(),
        exec_programs: Vec::new(),
        exec_env: Vec::new(),
        network: Vec::new(),
        secret_grants: Vec::new(),
        secrets: BTreeMap::new(),
        memory: 256 << 20,
        output_cap: 0,
        timeout: DESCRIBE_TIMEOUT,
        max_handles: 1024,
        log,
    };
    let denials = Denials::default();
    let state = build_state(&req, &denials)?;
    let deadline = state.deadline;
    let mut store = new_store(plugin, state, deadline);
    let call = async {
        let stage = plugin.pre.instantiate_async(&mut store).await?;
        stage.call_describe(&mut store).await
    };
    match tokio::time::timeout(req.timeout + TIMEOUT_GRACE, call).await {
        Err(_) => Err(StageFailure::DescribeTimeout(req.timeout)),
        Ok(Err(e)) => Err(
            match classify_error(&e, &store.data().limiter, req.timeout, req.max_handles) {
                StageFailure::Timeout(d) => StageFailure::DescribeTimeout(d),
                other => other,
            },
        ),
        Ok(Ok(info)) => Ok(info),
    }
}
