//! Per-stage store data: the WASI context built from grants, the HTTP
//! policy, the memory limiter, and what the `exec` and `secrets` host
//! interfaces may hand out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::logpipe::StageLog;
use super::net::NetPolicy;
use super::procs::StageProcs;

/// Denials logged one by one; later ones are only counted (a stage retrying
/// a refused call in a loop must not flood the log).
pub const DENIALS_LOGGED: usize = 20;
/// Denials kept for the record; later ones are only counted.
pub const DENIALS_KEPT: usize = 100;

/// Calls the sandbox refused, in order; the runner reports the first as the
/// reason when the stage then fails. Bounded: the first
/// [`DENIALS_KEPT`] are kept and all are counted.
#[derive(Debug, Clone, Default)]
pub struct Denials(Arc<Mutex<DenialList>>);

#[derive(Debug, Default)]
struct DenialList {
    kept: Vec<(DeniedCall, String)>,
    total: u64,
}

/// What kind of call the sandbox refused: lets the runner match a stage's
/// own `denied(capability)` to the refusal behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeniedCall {
    /// `exec` of this program.
    Exec(String),
    /// `secrets.get` of this name.
    Secret(String),
    /// An outgoing HTTP request.
    Network,
    /// Opening a workspace file (a FIFO, a device).
    File,
}

impl Denials {
    /// Remember a refusal (and log it, while few have been logged).
    pub fn push(&self, log: &StageLog, call: DeniedCall, message: String) {
        let Ok(mut list) = self.0.lock() else {
            return;
        };
        list.total += 1;
        let n = list.total;
        if n <= DENIALS_LOGGED as u64 {
            log.note(&format!("denied: {message}"));
        } else if n == DENIALS_LOGGED as u64 + 1 {
            log.note("denied: further refused calls are counted, not logged");
        }
        if list.kept.len() < DENIALS_KEPT {
            list.kept.push((call, message));
        }
    }

    /// The first refusals (at most [`DENIALS_KEPT`]).
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|l| l.kept.iter().map(|(_, m)| m.clone()).collect())
            .unwrap_or_default()
    }

    /// The first kept refusal of `call`'s kind (any request, for
    /// [`DeniedCall::Network`]).
    pub fn first_of(&self, call: &DeniedCall) -> Option<String> {
        let list = self.0.lock().ok()?;
        list.kept
            .iter()
            .find(|(c, _)| c == call)
            .map(|(_, m)| m.clone())
    }

    /// How many calls were refused in all.
    pub fn total(&self) -> u64 {
        self.0.lock().map(|l| l.total).unwrap_or_default()
    }
}

/// What `exec` may run and how.
#[derive(Debug, Clone)]
pub struct ExecGrant {
    /// Granted program names.
    pub programs: Vec<String>,
    /// Host directory that guest `/workspace` maps to, when granted.
    pub workspace: Option<PathBuf>,
    /// Directory used as cwd when there is no workspace grant.
    pub scratch: PathBuf,
    /// Environment passed to programs (already filtered by the grants).
    pub env: Vec<(String, String)>,
    /// Cap on captured stdout and on stderr, each.
    pub output_cap: u64,
    /// Granted name -> the file it resolved to, on first use in the
    /// attempt; later calls run that file.
    pub resolved: BTreeMap<String, PathBuf>,
}

/// Enforces the stage's memory grant. Unlike `StoreLimits` it remembers that
/// the limit was hit, so the stage's failure reason can say so plainly.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Bytes the stage may use in linear memories (summed).
    pub limit: u64,
    /// The size a refused growth asked for, if one was refused.
    pub exceeded: Option<u64>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.exceeded = Some(desired as u64);
            // An error (not `Ok(false)`) so that the guest traps at once
            // instead of looping on a failed allocation.
            wasmtime::bail!(
                "memory limit exceeded: the stage asked to grow its memory from {} to {}, over its limit of {}",
                bytesize::ByteSize(current as u64),
                bytesize::ByteSize(desired as u64),
                bytesize::ByteSize(self.limit)
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The data of one stage's `Store`.
pub struct StageState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) net: NetPolicy,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) exec: ExecGrant,
    /// Granted secret name -> value (only granted names are present).
    pub(crate) secrets: BTreeMap<String, String>,
    /// All secret names granted, including those with no value on the host.
    pub(crate) secret_grants: Vec<String>,
    pub(crate) log: StageLog,
    pub(crate) denials: Denials,
    /// When the stage must be finished; `exec` timeouts are capped by it.
    pub(crate) deadline: Instant,
    /// The host processes `exec` started; dropping it (the stage ended,
    /// timed out or was cancelled) ends them all.
    pub(crate) procs: StageProcs,
    /// Fires when the stage is cancelled (WIT 0.2 `cancel`).
    pub(crate) cancel: tokio_util::sync::CancellationToken,
    /// Where `log.progress` goes.
    pub(crate) progress: super::guest_api::Progress,
}

impl WasiView for StageState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StageState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.net,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}
