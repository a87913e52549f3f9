//! The wasmtime engine: configuration (pooling allocator, epochs), the epoch
//! ticker thread, and the on-disk compile cache.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::HostError;

/// How often the ticker advances the engine epoch. A guest notices its
/// deadline (and yields to other tasks) at most one tick late.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Deepest wasm stack a guest may use before it traps with a stack
/// overflow (interpreted Python and JavaScript guests recurse deeply).
pub const MAX_WASM_STACK: usize = 2 << 20;

/// Size of each stage's async (fiber) stack. wasmtime guarantees host
/// functions only `async_stack_size - max_wasm_stack` bytes: host calls made
/// from deep inside a guest (file I/O runs on this stack, see
/// `allow_blocking_current_thread`) need that room, and running out of it
/// aborts the whole process instead of trapping one stage. Virtual address
/// space only; untouched pages cost nothing.
pub const ASYNC_STACK: usize = MAX_WASM_STACK + (2 << 20);

/// The largest linear memory a stage may be granted. Every pooled memory slot
/// reserves this much address space (not physical memory).
pub const MAX_STAGE_MEMORY: u64 = 4 << 30;

/// Sizing of the pooling allocator. Slots are virtual reservations; only what
/// a stage touches becomes resident.
#[derive(Debug, Clone)]
pub struct PoolSizing {
    /// Component instances that may be alive at once (running stages plus
    /// `describe` calls).
    pub concurrent_instances: u32,
}

impl PoolSizing {
    fn config(&self) -> PoolingAllocationConfig {
        let instances = self.concurrent_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            // Guests built by wit-component carry a handful of core instances
            // (main module, adapters, shims); Python and JavaScript guests more.
            .max_core_instances_per_component(64)
            .total_core_instances(instances * 64)
            .max_memories_per_component(16)
            .max_memories_per_module(1)
            .total_memories(instances * 16)
            .max_tables_per_component(64)
            .max_tables_per_module(8)
            .total_tables(instances * 64)
            .table_elements(100_000)
            .max_memory_size(MAX_STAGE_MEMORY as usize)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(16 << 20)
            .total_stacks(instances)
            // Keep a few warm slots so back-to-back stages skip page faults.
            .max_unused_warm_slots(instances.min(16))
            .linear_memory_keep_resident(64 << 10);
        pool
    }
}

/// File descriptors kept back for the runner itself (record, journal, logs,
/// CAS copies, compile cache, HTTP connections).
const RUNNER_DESCRIPTORS: u64 = 256;
/// Most handles one stage may hold, whatever the descriptor limit.
const MAX_HANDLES_PER_STAGE: u64 = 4096;
/// Fewest handles a stage is given even under a tiny descriptor limit.
const MIN_HANDLES_PER_STAGE: u64 = 64;

/// Raise the runner's soft limit on open files to its hard limit (as most
/// servers do at start) and return the soft limit now in force; `None` where
/// it cannot be read.
#[allow(unsafe_code)]
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many handles each of `concurrent` stages may hold so that together
/// they cannot exhaust `open_files` descriptors (and starve a neighbour's
/// artifact writes): an equal share of what the runner does not keep for
/// itself, between 64 and 4096.
pub fn handles_per_stage(open_files: Option<u64>, concurrent: usize) -> usize {
    let share = open_files
        .unwrap_or(1024)
        .saturating_sub(RUNNER_DESCRIPTORS)
        / (concurrent.max(1) as u64);
    share.clamp(MIN_HANDLES_PER_STAGE, MAX_HANDLES_PER_STAGE) as usize
}

/// Build the engine every stage of a run shares.
pub fn build_engine(pool: &PoolSizing) -> Result<Engine, HostError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool.config()));
    // `SLUICE_GUEST_PROFILE=perfmap`: write /tmp/perf-<pid>.map so that
    // `perf record`/`perf report` name the guest's functions (for stage
    // authors chasing a slow stage; use a fresh --cache-dir with it).
    if std::env::var("SLUICE_GUEST_PROFILE").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| HostError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a dedicated OS thread
/// (epochs keep counting even when every tokio worker is busy running guest
/// code). Stops when dropped, at once: the thread waits on a channel rather
/// than sleeping, so the end of a run never waits out a tick.
pub struct EpochTicker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: &Engine) -> EpochTicker {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let engine = engine.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread with `Disconnected`.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Compiled components on disk, keyed by the component's sha256 and the
/// engine's compatibility hash (wasmtime version, target, settings), so a
/// cache written by another engine configuration is never loaded.
///
/// Only the runner writes here; entries are loaded with
/// `Component::deserialize_file`, which trusts its input, so the cache
/// directory must be writable by the runner's user alone (it lives under
/// `.sluice/cache`, created 0700).
pub struct CompileCache {
    /// `None`: compile in memory every time (the directory was not safe).
    dir: Option<PathBuf>,
    engine_key: String,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the compile cache; nothing was compiled.
    Hit,
    /// Compiled now (and stored for next time).
    Compiled,
}

impl CompileCache {
    /// Open (creating) the cache under `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, HostError> {
        std::fs::create_dir_all(dir).map_err(|e| HostError::Cache {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        restrict_permissions(dir);
        let mut hasher = Sha256Hasher::default();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(CompileCache {
            dir: Some(dir.to_path_buf()),
            engine_key,
        })
    }

    /// No cache: every plugin is compiled in memory and nothing is read
    /// from or written to disk.
    pub fn disabled() -> CompileCache {
        CompileCache {
            dir: None,
            engine_key: String::new(),
        }
    }

    fn entry(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{hex}-{}.cwasm", self.engine_key)))
    }

    /// The compiled component for `bytes` (whose sha256 is `digest`, already
    /// verified by the caller): from the cache when present, else compiled and
    /// stored. A corrupt or stale entry is replaced, never trusted.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome, Duration), HostError> {
        let started = Instant::now();
        let Some(path) = self.entry(digest) else {
            let component = Component::new(engine, bytes)
                .map_err(|e| HostError::InvalidComponent(format!("{e:#}")))?;
            return Ok((component, CacheOutcome::Compiled, started.elapsed()));
        };
        if path.is_file() {
            match deserialize_cached(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit, started.elapsed())),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable compile cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, bytes)
            .map_err(|e| HostError::InvalidComponent(format!("{e:#}")))?;
        match component.serialize() {
            Ok(serialized) => {
                if let Err(e) = crate::fsutil::write_atomic(&path, &serialized) {
                    tracing::warn!(path = %path.display(), error = %e, "could not write compile cache entry");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize compiled component"),
        }
        Ok((component, CacheOutcome::Compiled, started.elapsed()))
    }
}

#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` is inside the runner's private cache directory and was
    // written by `Component::serialize` of an engine with the same
    // compatibility hash (it is part of the file name). wasmtime additionally
    // checks the header and version. Precompiled code from anywhere else is
    // never loaded.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_budget_is_a_bounded_share_of_the_descriptor_limit() {
        assert_eq!(handles_per_stage(Some(1 << 20), 4), 4096);
        assert_eq!(handles_per_stage(Some(20_000), 6), (20_000 - 256) / 6);
        assert_eq!(handles_per_stage(Some(1024), 12), 64);
        assert_eq!(handles_per_stage(None, 1), 768);
    }

    // Host frames need room on the fiber stack beyond the wasm stack.
    const _: () = assert!(ASYNC_STACK >= MAX_WASM_STACK + (1 << 20));
}

#[cfg(unix)]
fn restrict_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict_permissions(_dir: &Path) {}

/// Feeds `Hash` output into sha256 so the cache key is stable across
/// processes (std's `DefaultHasher` is not guaranteed to be).
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
