//! One stage, one sandbox: a fresh `Store` from the plugin's `InstancePre`,
//! a WASI context built only from the stage's grants, memory and time
//! limits, and a precise reason when the guest does not finish well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{wit, wit_v1};
use super::guest_api::{Progress, ProgressFn};
use super::logpipe::{LogStream, StageLog};
use super::net::NetPolicy;
use super::state::{Denials, DeniedCall, ExecGrant, MemoryLimiter, StageState};
use super::{Plugin, PluginPre, WitVersion};
use sluice_engine::executor::ConfigOrigin;
pub use sluice_engine::executor::{StageFailure, TrapKind};

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
    pub network: Vec<sluice_types::NetPattern>,
    /// Certificates of `grants.tls-ca`, trusted for HTTPS besides the
    /// public roots.
    pub tls_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
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
    /// Fires when the runner cancels the attempt (fail-fast, interrupt).
    pub cancel: CancellationToken,
    /// How long a cancelled (or timed-out) 0.2 stage may run on.
    pub grace_period: Duration,
    /// Where `log.progress` goes.
    pub progress: Option<ProgressFn>,
}

fn build_state(req: &StageRequest, denials: &Denials) -> Result<StageState, StageFailure> {
    let setup = |e: wasmtime::Error| StageFailure::setup(format!("{e:#}"));
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
        net: NetPolicy::new(
            &req.network,
            &req.tls_roots,
            req.log.clone(),
            denials.clone(),
        )
        .map_err(|e| StageFailure::setup(e.to_string()))?,
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
        // The guest's own token: it fires on the runner's cancellation and
        // at the timeout (see `run_stage`).
        cancel: CancellationToken::new(),
        progress: Progress::new(req.progress.clone(), req.log.clone()),
    })
}

/// When the guest is cut off, movable while it runs (a cancellation moves
/// it to the end of the grace period). Read by the epoch callback.
#[derive(Clone)]
struct HardDeadline {
    base: Instant,
    /// Nanoseconds after `base`.
    after: Arc<AtomicU64>,
}

impl HardDeadline {
    fn new(at: Instant) -> HardDeadline {
        let base = Instant::now();
        let d = HardDeadline {
            base,
            after: Arc::new(AtomicU64::new(u64::MAX)),
        };
        d.set(at);
        d
    }

    /// Move the deadline to `at` (never later than it is).
    fn set(&self, at: Instant) {
        let nanos =
            u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        self.after.fetch_min(nanos, Ordering::Relaxed);
    }

    fn passed(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now >= self.after.load(Ordering::Relaxed)
    }
}

/// Make a store whose guest traps at `deadline` and yields to other tasks
/// at every epoch tick before that.
fn new_store(plugin: &Plugin, state: StageState, deadline: HardDeadline) -> Store<StageState> {
    let engine = match &plugin.pre {
        PluginPre::V1(pre) => pre.engine(),
        PluginPre::V2(pre) => pre.engine(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if deadline.passed() {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// Why the runner stopped waiting for a guest.
enum Stop {
    Cancelled,
    Timeout,
}

/// Run one attempt of a stage.
///
/// At the stage's timeout or when `req.cancel` fires, a 0.2 guest is told
/// (its `cancel` pollable) and gets `req.grace_period` to return; then, and
/// at once for a 0.1 guest (which cannot be told), it is dropped. Whatever
/// it returns after being told is not taken: the attempt is cancelled or
/// timed out.
pub async fn run_stage(plugin: &Plugin, req: StageRequest) -> Result<wit::Report, StageFailure> {
    let denials = Denials::default();
    let state = build_state(&req, &denials)?;
    let soft_deadline = state.deadline;
    let guest_cancel = state.cancel.clone();
    let progress = state.progress.clone();
    let grace = match plugin.wit {
        WitVersion::V0_1 => Duration::ZERO,
        WitVersion::V0_2 => req.grace_period,
    };
    let hard = HardDeadline::new(soft_deadline.checked_add(grace).unwrap_or(soft_deadline));
    let mut store = new_store(plugin, state, hard.clone());
    // What a 0.2 stage said it was denied (`denied(capability)`), to find
    // the sandbox's refusal behind it.
    let mut claimed: Option<DeniedCall> = None;
    let mut call = Box::pin(async {
        match &plugin.pre {
            PluginPre::V1(pre) => {
                let stage = pre.instantiate_async(&mut store).await?;
                let ctx = context_v1(&req.context);
                stage
                    .call_run(&mut store, &ctx)
                    .await
                    .map(|r| r.map(report_from_v1).map_err(error_from_v1))
            }
            PluginPre::V2(pre) => {
                let stage = pre.instantiate_async(&mut store).await?;
                let result = stage
                    .sluice_stage_plugin()
                    .call_run(&mut store, &req.context)
                    .await?;
                Ok(result.map_err(|e| {
                    if let wit::StageError::Denied(capability) = &e {
                        claimed = denied_call(capability);
                    }
                    error_from_v2(e)
                }))
            }
        }
    });
    let stop = tokio::select! {
        finished = &mut call => {
            drop(call);
            progress.flush();
            let limiter = &store.data().limiter;
            let result = match finished {
                Err(e) => Err(classify_error(&e, limiter, req.timeout, req.max_handles)),
                Ok(Err(failure)) => Err(failure),
                Ok(Ok(report)) => Ok(report),
            };
            return with_denials(result, &denials, claimed.as_ref());
        }
        () = req.cancel.cancelled() => Stop::Cancelled,
        () = tokio::time::sleep_until(soft_deadline.into()) => Stop::Timeout,
    };
    guest_cancel.cancel();
    let in_grace = if grace.is_zero() {
        false
    } else {
        hard.set(Instant::now() + grace);
        req.log.note(&format!(
            "{}: the stage has its grace period of {} to finish",
            match stop {
                Stop::Cancelled => "cancelled",
                Stop::Timeout => "timed out",
            },
            sluice_types::Duration::from(grace)
        ));
        let ended = tokio::time::timeout(grace + TIMEOUT_GRACE, &mut call).await;
        progress.flush();
        match ended {
            Ok(_) => {
                req.log.note("the stage ended within its grace period");
                true
            }
            Err(_) => {
                req.log
                    .note("the stage did not end within its grace period and was dropped");
                false
            }
        }
    };
    match stop {
        Stop::Cancelled => Err(StageFailure::Cancelled { in_grace }),
        Stop::Timeout => Err(StageFailure::Timeout { after: req.timeout }),
    }
}

/// The kind of sandbox refusal a stage's `denied(capability)` points at
/// (`None`: the sandbox never records that kind, e.g. a missing workspace
/// grant, which is no call at all).
fn denied_call(capability: &wit::Capability) -> Option<DeniedCall> {
    use wit::Capability as C;
    match capability {
        C::Exec(program) => Some(DeniedCall::Exec(program.clone())),
        C::Secret(name) => Some(DeniedCall::Secret(name.clone())),
        C::Network(_) => Some(DeniedCall::Network),
        C::WorkspaceRead | C::WorkspaceWrite | C::Env(_) => None,
    }
}

/// A stage that failed after the sandbox refused it something fails
/// *because* of that refusal: say so, whatever the stage reported. A stage
/// that names what it was denied (`claimed`, WIT 0.2) is taken at its
/// word: the sandbox's refusal of that call when there is one (it says
/// what is granted now), else the stage's own words — never an earlier
/// refusal the stage handled.
fn with_denials(
    result: Result<wit::Report, StageFailure>,
    denials: &Denials,
    claimed: Option<&DeniedCall>,
) -> Result<wit::Report, StageFailure> {
    if let (Some(call), Err(StageFailure::Denied { .. })) = (claimed, &result) {
        return match denials.first_of(call) {
            Some(message) => Err(StageFailure::Denied {
                message,
                then_failed: None,
            }),
            None => result,
        };
    }
    let Some(denied) = denials.list().into_iter().next() else {
        return result;
    };
    let then_failed = match &result {
        Err(StageFailure::Failed { message }) | Err(StageFailure::Trap { message, .. }) => {
            message.clone()
        }
        Err(StageFailure::Exit { code }) => sluice_engine::executor::exit_reason(*code),
        // The stage passed the refusal on (`denied(capability)`): the
        // sandbox's words say what is granted now and what to add.
        Err(StageFailure::Denied { .. }) => {
            return Err(StageFailure::Denied {
                message: denied,
                then_failed: None,
            })
        }
        _ => return result,
    };
    Err(StageFailure::Denied {
        message: denied,
        then_failed: Some(then_failed),
    })
}

/// A 0.2 `stage-error` as the runner's failure.
fn error_from_v2(e: wit::StageError) -> StageFailure {
    match e {
        wit::StageError::InvalidConfig(message) => StageFailure::InvalidConfig {
            origin: ConfigOrigin::Plugin,
            message,
        },
        wit::StageError::Denied(capability) => StageFailure::Denied {
            message: denied_message(&capability),
            then_failed: None,
        },
        wit::StageError::Failed(message) => StageFailure::Failed { message },
    }
}

/// A 0.1 `stage-error` as the runner's failure.
fn error_from_v1(e: wit_v1::StageError) -> StageFailure {
    match e {
        wit_v1::StageError::InvalidConfig(message) => StageFailure::InvalidConfig {
            origin: ConfigOrigin::Plugin,
            message,
        },
        wit_v1::StageError::Denied(message) => StageFailure::Denied {
            message,
            then_failed: None,
        },
        wit_v1::StageError::Failed(message) => StageFailure::Failed { message },
    }
}

/// What to tell the user when a stage says it lacks `capability`: what it
/// needs and the grant to add.
pub fn denied_message(capability: &wit::Capability) -> String {
    use wit::Capability as C;
    match capability {
        C::WorkspaceRead => {
            "the stage needs to read the workspace; add `grants: { workspace: read }` to the stage".to_owned()
        }
        C::WorkspaceWrite => {
            "the stage needs to write the workspace; add `grants: { workspace: write }` to the stage".to_owned()
        }
        C::Env(name) => format!(
            "the stage needs the environment variable `{name}`; add `{name}` to the stage's grants.env"
        ),
        C::Network(pattern) => format!(
            "the stage needs network access to `{pattern}`; add `{pattern}` to the stage's grants.network"
        ),
        C::Exec(program) => format!(
            "the stage needs to run `{program}`; add `{program}` to the stage's grants.exec"
        ),
        C::Secret(name) => format!(
            "the stage needs the secret `{name}`; add `{name}` to the stage's grants.secrets"
        ),
    }
}

/// 0.2's context as 0.1 has it (0.1 has no deadline, grace period, roles
/// or annotations).
fn context_v1(c: &wit::Context) -> wit_v1::Context {
    wit_v1::Context {
        run_id: c.run_id.clone(),
        pipeline: c.pipeline.clone(),
        stage: c.stage.clone(),
        environment: c.environment.clone(),
        config: c.config.clone(),
        inputs: c
            .inputs
            .iter()
            .map(|a| wit_v1::Artifact {
                stage: a.stage.clone(),
                name: a.name.clone(),
                digest: a.digest.clone(),
                size: a.size,
                media_type: a.media_type.clone(),
            })
            .collect(),
        outputs_dir: c.outputs_dir.clone(),
        upstream: c
            .upstream
            .iter()
            .map(|o| wit_v1::OutputValue {
                stage: o.stage.clone(),
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect(),
        attempt: c.attempt,
    }
}

fn verdict_from_v1(v: wit_v1::Verdict) -> wit::Verdict {
    match v {
        wit_v1::Verdict::Pass => wit::Verdict::Pass,
        wit_v1::Verdict::Warn => wit::Verdict::Warn,
        wit_v1::Verdict::Fail => wit::Verdict::Fail,
        wit_v1::Verdict::Inconclusive => wit::Verdict::Inconclusive,
    }
}

/// A 0.1 report in 0.2's shape: artifacts with a media type only, and no
/// findings (`none`: the stage does not report findings).
fn report_from_v1(r: wit_v1::Report) -> wit::Report {
    wit::Report {
        summary: r.summary,
        metrics: r
            .metrics
            .into_iter()
            .map(|m| wit::Metric {
                name: m.name,
                value: m.value,
                unit: m.unit,
            })
            .collect(),
        gates: r
            .gates
            .into_iter()
            .map(|g| wit::Gate {
                name: g.name,
                verdict: verdict_from_v1(g.verdict),
                observed: g.observed,
                threshold: g.threshold,
                message: g.message,
            })
            .collect(),
        outputs: r.outputs,
        artifacts: r
            .artifacts
            .into_iter()
            .map(|(path, media_type)| wit::ArtifactInfo {
                path,
                media_type: Some(media_type),
                role: None,
                annotations: Vec::new(),
            })
            .collect(),
        findings: None,
    }
}

fn capability_from_v1(c: wit_v1::Capability) -> wit::Capability {
    match c {
        wit_v1::Capability::WorkspaceRead => wit::Capability::WorkspaceRead,
        wit_v1::Capability::WorkspaceWrite => wit::Capability::WorkspaceWrite,
        wit_v1::Capability::Env(n) => wit::Capability::Env(n),
        wit_v1::Capability::Network(n) => wit::Capability::Network(n),
        wit_v1::Capability::Exec(n) => wit::Capability::Exec(n),
        wit_v1::Capability::Secret(n) => wit::Capability::Secret(n),
    }
}

/// 0.1's kind string as 0.2's `stage-kind`.
pub fn stage_kind(kind: &str) -> wit::StageKind {
    use wit::StageKind as K;
    match kind {
        "lint" => K::Lint,
        "test" => K::Test,
        "scan" => K::Scan,
        "build" => K::Build,
        "deploy" => K::Deploy,
        "smoke" => K::Smoke,
        "canary" => K::Canary,
        "monitor" => K::Monitor,
        "remediate" => K::Remediate,
        other => K::Custom(other.to_owned()),
    }
}

/// A `stage-kind` as text (`lint` …, or the custom word).
pub fn kind_name(kind: &wit::StageKind) -> &str {
    use wit::StageKind as K;
    match kind {
        K::Lint => "lint",
        K::Test => "test",
        K::Scan => "scan",
        K::Build => "build",
        K::Deploy => "deploy",
        K::Smoke => "smoke",
        K::Canary => "canary",
        K::Monitor => "monitor",
        K::Remediate => "remediate",
        K::Custom(s) => s,
    }
}

fn info_from_v1(i: wit_v1::PluginInfo) -> wit::PluginInfo {
    wit::PluginInfo {
        name: i.name,
        version: i.version,
        kind: stage_kind(&i.kind),
        description: i.description,
        config_schema: i.config_schema,
        capabilities: i.capabilities.into_iter().map(capability_from_v1).collect(),
    }
}

/// Why a call into the guest failed, by the types wasmtime returns: the
/// memory limiter's record, a full resource table, `exit`, the pooling
/// allocator's limit, or the trap code. Never by the message's words.
pub(crate) fn classify_error(
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
        return StageFailure::Exit { code: exit.0 };
    }
    if e.is::<wasmtime::PoolConcurrencyLimitError>() {
        return StageFailure::InstancePool {
            message: format!("{e:#}"),
        };
    }
    let Some(trap) = e.downcast_ref::<Trap>() else {
        return StageFailure::Trap {
            kind: TrapKind::Host,
            message: format!("{e:#}"),
        };
    };
    let (kind, message) = match trap {
        Trap::Interrupt => return StageFailure::Timeout { after: timeout },
        Trap::UnreachableCodeReached => (
            TrapKind::Unreachable,
            "wasm `unreachable` executed (this is how a panic ends; its message is in the log)"
                .to_owned(),
        ),
        Trap::StackOverflow => (
            TrapKind::StackOverflow,
            format!(
                "stack overflow: the guest used more than its {} of wasm stack (unbounded recursion?)",
                bytesize::ByteSize(super::engine::MAX_WASM_STACK as u64)
            ),
        ),
        other => {
            let kind = match other {
                Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
                Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
                Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
                Trap::BadSignature => TrapKind::BadSignature,
                Trap::IntegerOverflow => TrapKind::IntegerOverflow,
                Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
                Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
                _ => TrapKind::Other,
            };
            (kind, other.to_string())
        }
    };
    StageFailure::Trap { kind, message }
}

/// Call `describe` in a sandbox with no grants at all: no directories, no
/// environment, and whatever it prints is discarded (it touches no file, so
/// loading plugins costs no file-system work).
pub async fn describe(plugin: &Plugin) -> Result<wit::PluginInfo, StageFailure> {
    let log = StageLog::discarding()
        .map_err(|e| StageFailure::setup(format!("cannot open the null device: {e}")))?;
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
            deadline: wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime {
                seconds: 0,
                nanoseconds: 0,
            },
            grace_period: 0,
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
        tls_roots: Vec::new(),
        secret_grants: Vec::new(),
        secrets: BTreeMap::new(),
        memory: 256 << 20,
        output_cap: 0,
        timeout: DESCRIBE_TIMEOUT,
        max_handles: 1024,
        log,
        cancel: CancellationToken::new(),
        grace_period: Duration::ZERO,
        progress: None,
    };
    let denials = Denials::default();
    let state = build_state(&req, &denials)?;
    let deadline = HardDeadline::new(state.deadline);
    let mut store = new_store(plugin, state, deadline);
    let call = async {
        match &plugin.pre {
            PluginPre::V1(pre) => {
                let stage = pre.instantiate_async(&mut store).await?;
                stage.call_describe(&mut store).await.map(info_from_v1)
            }
            PluginPre::V2(pre) => {
                let stage = pre.instantiate_async(&mut store).await?;
                stage.sluice_stage_plugin().call_describe(&mut store).await
            }
        }
    };
    match tokio::time::timeout(req.timeout + TIMEOUT_GRACE, call).await {
        Err(_) => Err(StageFailure::DescribeTimeout { after: req.timeout }),
        Ok(Err(e)) => Err(
            match classify_error(&e, &store.data().limiter, req.timeout, req.max_handles) {
                StageFailure::Timeout { after } => StageFailure::DescribeTimeout { after },
                other => other,
            },
        ),
        Ok(Ok(info)) => Ok(info),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{
        Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// One export per way to fail.
    const FAILING: &str = r#"(module
        (import "host" "refuse" (func $refuse))
        (memory 1)
        (func $recurse (export "recurse") (call $recurse))
        (func (export "unreachable") unreachable)
        (func (export "out-of-bounds") (drop (i32.load (i32.const 0x7ffffff0))))
        (func (export "divide") (drop (i32.div_s (i32.const 1) (i32.const 0))))
        (func (export "host") (call $refuse)))"#;

    fn no_limit() -> MemoryLimiter {
        MemoryLimiter {
            limit: 1 << 30,
            exceeded: None,
        }
    }

    /// Call export `name` of [`FAILING`] and classify how it failed.
    fn failure_of(name: &str) -> Result<StageFailure, Box<dyn std::error::Error>> {
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(FAILING)?)?;
        let mut linker = Linker::new(&engine);
        linker.func_wrap("host", "refuse", || -> wasmtime::Result<()> {
            wasmtime::bail!("the host refused")
        })?;
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module)?;
        let f = instance.get_typed_func::<(), ()>(&mut store, name)?;
        let Err(e) = f.call(&mut store, ()) else {
            return Err(format!("{name} did not fail").into());
        };
        Ok(classify_error(&e, &no_limit(), Duration::from_secs(1), 64))
    }

    fn kind(failure: &StageFailure) -> Option<TrapKind> {
        match failure {
            StageFailure::Trap { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    #[test]
    fn traps_are_classified_by_their_code() -> TestResult {
        let unreachable = failure_of("unreachable")?;
        assert_eq!(kind(&unreachable), Some(TrapKind::Unreachable));
        assert_eq!(
            unreachable.to_string(),
            "trapped: wasm `unreachable` executed (this is how a panic ends; its message is in the log)"
        );
        let overflow = failure_of("recurse")?;
        assert_eq!(kind(&overflow), Some(TrapKind::StackOverflow));
        assert!(
            overflow
                .to_string()
                .starts_with("trapped: stack overflow: the guest used more than its"),
            "{overflow}"
        );
        let oob = failure_of("out-of-bounds")?;
        assert_eq!(kind(&oob), Some(TrapKind::MemoryOutOfBounds));
        assert_eq!(
            oob.to_string(),
            "trapped: wasm trap: out of bounds memory access"
        );
        assert_eq!(
            kind(&failure_of("divide")?),
            Some(TrapKind::IntegerDivisionByZero)
        );
        let host = failure_of("host")?;
        assert_eq!(kind(&host), Some(TrapKind::Host));
        assert!(host.to_string().contains("the host refused"), "{host}");
        assert!(overflow.retryable());
        Ok(())
    }

    #[test]
    fn the_memory_limit_and_the_deadline_are_not_traps() -> TestResult {
        let engine = Engine::default();
        let e: wasmtime::Error = Trap::Interrupt.into();
        assert_eq!(
            classify_error(&e, &no_limit(), Duration::from_secs(3), 64),
            StageFailure::Timeout {
                after: Duration::from_secs(3)
            }
        );
        let limiter = MemoryLimiter {
            limit: 1 << 20,
            exceeded: Some(2 << 20),
        };
        assert_eq!(
            classify_error(&e, &limiter, Duration::from_secs(3), 64),
            StageFailure::MemoryLimit {
                limit: 1 << 20,
                asked: 2 << 20
            }
        );
        drop(engine);
        Ok(())
    }

    #[test]
    fn an_exhausted_instance_pool_is_told_by_its_error_type() -> TestResult {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(1)
            .total_memories(1)
            .max_memory_size(1 << 16)
            .total_tables(1)
            .total_stacks(1);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, wat::parse_str("(module (memory 1))")?)?;
        let mut first = Store::new(&engine, ());
        wasmtime::Instance::new(&mut first, &module, &[])?;
        let mut second = Store::new(&engine, ());
        let Err(e) = wasmtime::Instance::new(&mut second, &module, &[]) else {
            return Err("a second instance fit in a pool of one".into());
        };
        let failure = classify_error(&e, &no_limit(), Duration::from_secs(1), 64);
        assert!(
            matches!(failure, StageFailure::InstancePool { .. }),
            "{failure:?}"
        );
        assert!(
            failure
                .to_string()
                .ends_with("(too many stages at once for the instance pool; lower --jobs)"),
            "{failure}"
        );
        assert!(!failure.retryable());
        Ok(())
    }
}
