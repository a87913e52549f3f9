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
/// An entry is native code that wasmtime maps and runs without checking it
/// (a flipped byte in its `.text` crashed the runner with SIGSEGV), so every
/// entry carries a checksum that is verified before wasmtime sees it: the
/// serialized component, then a tag (`ENTRY_TAG`), the component's length (u64,
/// little-endian) and its sha256. An entry that is too short, has no
/// trailer, has another length or does not match its checksum is discarded
/// with a warning that names the file, and the plugin is compiled again
/// (reported as [`CacheOutcome::Compiled`]).
///
/// Entries are written whole under a temporary name in the same directory
/// and renamed into place ([`sluice_files::fsutil::write_atomic`]): two runners
/// compiling the same plugin each write a complete entry and the last
/// rename wins; a reader never sees half of one. Only the runner writes
/// here, and the directory must be writable by the runner's user alone
/// (it is created 0700).
pub struct CompileCache {
    /// `None`: compile in memory every time (the directory was not safe).
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Marks the checksum trailer at the end of a cache entry.
const ENTRY_TAG: [u8; 8] = *b"sluice\x00\x02";
/// Tag, length of the serialized component (u64 LE), its sha256.
const TRAILER_LEN: u64 = 8 + 8 + 32;
/// Part of the key in every entry's name, so that entries of an earlier
/// layout (without a checksum) are simply not found after an upgrade,
/// instead of each being discarded with a warning.
const ENTRY_FORMAT: &[u8] = b"sluice compile cache entry, sha256 trailer (2)";
/// Read size while verifying an entry.
const VERIFY_BUF: usize = 256 * 1024;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the compile cache; nothing was compiled.
    Hit,
    /// Compiled now (and stored for next time).
    Compiled,
}

/// Why a compile cache entry was not used (it is then compiled again).
#[derive(Debug, thiserror::Error)]
enum EntryError {
    #[error("could not read it: {0}")]
    Read(std::io::Error),
    #[error("it is {size} bytes, too short to hold its checksum (a truncated copy?)")]
    TooShort { size: u64 },
    #[error("it has no checksum trailer (truncated, or not written by this version of sluice)")]
    NoTrailer,
    #[error("it is {size} bytes but its trailer says {expected} (truncated or extended)")]
    WrongLength { size: u64, expected: u64 },
    #[error(
        "its content does not match its checksum (sha256 {actual}, expected {expected}): \
         the file was damaged or altered"
    )]
    Mismatch { expected: String, actual: String },
    #[error("wasmtime refused it: {0}")]
    Deserialize(String),
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
        hasher.0.update(ENTRY_FORMAT);
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
    /// verified by the caller): from the cache when present and intact, else
    /// compiled and stored. A damaged or stale entry is replaced, never
    /// trusted.
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
        match std::fs::File::open(&path) {
            Ok(file) => match load_entry(engine, &file, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit, started.elapsed())),
                Err(why) => {
                    tracing::warn!(
                        "compile cache entry {} is unusable: {why}; discarding it and compiling the plugin again",
                        path.display()
                    );
                    drop(file);
                    // A concurrent runner may have renamed a good entry
                    // over it meanwhile; removing that costs one compile.
                    if let Err(e) = std::fs::remove_file(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(path = %path.display(), error = %e, "could not remove the unusable compile cache entry");
                        }
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not open compile cache entry {}; compiling the plugin again", path.display());
            }
        }
        let component = Component::new(engine, bytes)
            .map_err(|e| HostError::InvalidComponent(format!("{e:#}")))?;
        match component.serialize() {
            Ok(mut serialized) => {
                append_trailer(&mut serialized);
                if let Err(e) = sluice_files::fsutil::write_atomic(&path, &serialized) {
                    tracing::warn!(path = %path.display(), error = %e, "could not write compile cache entry");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize compiled component"),
        }
        Ok((component, CacheOutcome::Compiled, started.elapsed()))
    }
}

/// Appends the checksum trailer to a serialized component.
fn append_trailer(serialized: &mut Vec<u8>) {
    let sum = Sha256::digest(serialized.as_slice());
    let len = serialized.len() as u64;
    serialized.extend_from_slice(&ENTRY_TAG);
    serialized.extend_from_slice(&len.to_le_bytes());
    serialized.extend_from_slice(&sum);
}

/// Checks the entry open as `file` against its trailer. Streams it (the
/// largest entries are ~40 MB): hashing costs about as much as reading, and
/// wasmtime then maps the file lazily instead of copying it into memory.
fn verify_entry(mut file: &std::fs::File) -> Result<(), EntryError> {
    use std::io::Read;
    let size = file.metadata().map_err(EntryError::Read)?.len();
    if size < TRAILER_LEN {
        return Err(EntryError::TooShort { size });
    }
    let payload_len = size - TRAILER_LEN;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; VERIFY_BUF];
    let mut payload = file.take(payload_len);
    let mut seen: u64 = 0;
    loop {
        match payload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                seen += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(EntryError::Read(e)),
        }
    }
    if seen != payload_len {
        // Shrunk while being read (entries are replaced by rename, never
        // rewritten in place, so this is damage, not a concurrent writer).
        return Err(EntryError::TooShort { size: seen });
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact(&mut trailer).map_err(EntryError::Read)?;
    let (tag, rest) = trailer.split_at(ENTRY_TAG.len());
    let (len, sum) = rest.split_at(8);
    if tag != ENTRY_TAG {
        return Err(EntryError::NoTrailer);
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(len);
    let expected_len = u64::from_le_bytes(len_bytes);
    if expected_len != payload_len {
        return Err(EntryError::WrongLength {
            size,
            expected: expected_len.saturating_add(TRAILER_LEN),
        });
    }
    let actual = hasher.finalize();
    if actual.as_slice() != sum {
        return Err(EntryError::Mismatch {
            expected: hex::encode(sum),
            actual: hex::encode(actual),
        });
    }
    Ok(())
}

/// Verifies the entry open as `file` and hands exactly that file to
/// wasmtime.
fn load_entry(engine: &Engine, file: &std::fs::File, path: &Path) -> Result<Component, EntryError> {
    verify_entry(file)?;
    let same_file = same_file_path(file).unwrap_or_else(|| path.to_path_buf());
    deserialize_verified(engine, &same_file).map_err(|e| EntryError::Deserialize(format!("{e:#}")))
}

/// A path that opens the very file `file` has open (on Linux its
/// `/proc/self/fd` entry), so that wasmtime maps the bytes just verified
/// even if another runner renames a new entry over the name meanwhile.
/// `None` where there is no such path; the entry's own path is used then.
fn same_file_path(file: &std::fs::File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        path.exists().then_some(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` is a file in the runner's private cache directory,
    // written by `Component::serialize` of an engine with the same
    // compatibility hash (it is part of the file name), and its content
    // was just checked against the sha256 in its trailer (`verify_entry`),
    // so these are the bytes that were written. wasmtime additionally checks
    // the header and version, and ignores the trailer after the ELF image.
    // Precompiled code from anywhere else is never loaded.
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

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A component with real code in it (a core function behind a lift).
    const COMPONENT_WAT: &str = r#"(component
        (core module $m
            (func (export "f") (param i32) (result i32)
                local.get 0 i32.const 42 i32.mul i32.const 7 i32.add))
        (core instance $i (instantiate $m))
        (func (export "f") (param "x" u32) (result u32) (canon lift (core func $i "f"))))"#;

    struct CacheFixture {
        dir: tempfile::TempDir,
        engine: Engine,
        bytes: Vec<u8>,
        digest: String,
    }

    impl CacheFixture {
        fn new() -> Result<CacheFixture, Box<dyn std::error::Error>> {
            let bytes = wat::parse_str(COMPONENT_WAT)?;
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            Ok(CacheFixture {
                dir: tempfile::tempdir()?,
                engine: Engine::default(),
                bytes,
                digest,
            })
        }

        fn cache(&self) -> Result<CompileCache, HostError> {
            CompileCache::open(self.dir.path(), &self.engine)
        }

        fn load(&self) -> Result<CacheOutcome, HostError> {
            let (_, outcome, _) =
                self.cache()?
                    .load_or_compile(&self.engine, &self.digest, &self.bytes)?;
            Ok(outcome)
        }

        fn entry(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
            Ok(self.cache()?.entry(&self.digest).ok_or("no entry path")?)
        }

        /// Whether the entry on disk is whole and matches its checksum.
        fn entry_is_intact(&self) -> Result<bool, Box<dyn std::error::Error>> {
            let file = std::fs::File::open(self.entry()?)?;
            Ok(verify_entry(&file).is_ok())
        }
    }

    #[test]
    fn a_second_load_is_a_hit_and_the_entry_carries_its_checksum() -> TestResult {
        let f = CacheFixture::new()?;
        assert_eq!(f.load()?, CacheOutcome::Compiled);
        assert!(f.entry_is_intact()?);
        assert_eq!(f.load()?, CacheOutcome::Hit);
        Ok(())
    }

    #[test]
    fn an_entry_with_a_flipped_byte_is_compiled_again_and_rewritten() -> TestResult {
        let f = CacheFixture::new()?;
        assert_eq!(f.load()?, CacheOutcome::Compiled);
        let path = f.entry()?;
        let mut bytes = std::fs::read(&path)?;
        let middle = (bytes.len() - TRAILER_LEN as usize) / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&path, &bytes)?;
        assert!(!f.entry_is_intact()?);
        assert_eq!(
            f.load()?,
            CacheOutcome::Compiled,
            "a damaged entry is no hit"
        );
        assert!(f.entry_is_intact()?, "the entry was rewritten");
        assert_eq!(f.load()?, CacheOutcome::Hit);
        Ok(())
    }

    #[test]
    fn truncated_extended_and_unsummed_entries_are_compiled_again() -> TestResult {
        let f = CacheFixture::new()?;
        assert_eq!(f.load()?, CacheOutcome::Compiled);
        let path = f.entry()?;
        let good = std::fs::read(&path)?;
        let payload = &good[..good.len() - TRAILER_LEN as usize];
        let mut extended = good.clone();
        extended.extend_from_slice(b"more");
        let cases: [(&str, &[u8]); 5] = [
            ("truncated in the middle", &good[..good.len() / 2]),
            ("cut inside the trailer", &good[..good.len() - 3]),
            ("empty", &[]),
            ("without a trailer (earlier layout)", payload),
            ("extended", &extended),
        ];
        for (what, content) in cases {
            std::fs::write(&path, content)?;
            let file = std::fs::File::open(&path)?;
            let why = match verify_entry(&file) {
                Ok(()) => return Err(format!("{what}: accepted").into()),
                Err(e) => e.to_string(),
            };
            drop(file);
            assert_eq!(f.load()?, CacheOutcome::Compiled, "{what}: {why}");
            assert!(f.entry_is_intact()?, "{what}: rewritten");
        }
        assert_eq!(f.load()?, CacheOutcome::Hit);
        Ok(())
    }

    #[test]
    fn concurrent_writers_and_readers_always_see_a_whole_entry() -> TestResult {
        let f = CacheFixture::new()?;
        let path = f.entry()?;
        let errors = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let (f, path, errors) = (&f, &path, &errors);
                scope.spawn(move || {
                    for round in 0..6 {
                        // Half the workers keep forcing misses, so writes
                        // and reads of the same entry overlap.
                        if worker % 2 == 0 && round % 2 == 0 {
                            let _ = std::fs::remove_file(path);
                        }
                        if let Err(e) = f.load() {
                            if let Ok(mut errors) = errors.lock() {
                                errors.push(format!("worker {worker} round {round}: {e}"));
                            }
                        }
                    }
                });
            }
        });
        let errors = errors.into_inner().map_err(|_| "poisoned")?;
        assert!(errors.is_empty(), "{errors:?}");
        assert!(f.entry_is_intact()?);
        assert_eq!(f.load()?, CacheOutcome::Hit);
        // Only the entry is left: every temporary file was renamed or removed.
        let names: Vec<_> = std::fs::read_dir(f.dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 1, "{names:?}");
        Ok(())
    }
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
