//! The warm plugin cache: one wasmtime engine (`Host`, with its pooling
//! allocator and on-disk compile cache) for the agent's lifetime, and the
//! compiled, linked plugins by digest, least recently used dropped first.
//!
//! A plugin reaches [`PluginCache::load`] only after the agent admitted it
//! ([`crate::verify`]); the cache is keyed by the digest the agent computed
//! itself. Plugin files on a shared path (the unix-socket agent) are
//! re-read and re-hashed only when their inode, size or modification time
//! changed ([`PluginCache::read_file`]).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sluice_engine::admission::{self, PluginFile, PluginFileError};
use sluice_engine::executor::StageFailure;
use sluice_host::bindings::wit::PluginInfo;
use sluice_host::{Host, HostError, Plugin, PoolSizing};

/// What a file looked like when it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
}

struct Entry {
    plugin: Plugin,
    info: Option<PluginInfo>,
    used: u64,
}

#[derive(Default)]
struct Lru {
    tick: u64,
    entries: HashMap<String, Entry>,
}

/// Compiled plugins by digest, and the engine that runs them.
pub struct PluginCache {
    host: Arc<Host>,
    capacity: usize,
    lru: Mutex<Lru>,
    files: Mutex<HashMap<(PathBuf, String), (Stamp, PluginFile)>>,
}

/// Whether a plugin came from the warm cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmth {
    /// Already compiled and linked in this agent.
    Warm,
    /// Compiled now, or loaded from the on-disk compile cache.
    Loaded,
}

impl PluginCache {
    /// Start the engine for `concurrency` jobs at once (plus room for
    /// `describe` calls), with its compile cache under `cache_dir`, keeping
    /// at most `capacity` plugins.
    pub fn start(
        cache_dir: &Path,
        concurrency: usize,
        capacity: usize,
    ) -> Result<PluginCache, HostError> {
        let pool = PoolSizing {
            concurrent_instances: u32::try_from(concurrency + 4).unwrap_or(u32::MAX),
        };
        let host = Host::new(Some(&cache_dir.join("compile")), &pool)?;
        Ok(PluginCache {
            host: Arc::new(host),
            capacity: capacity.max(1),
            lru: Mutex::new(Lru::default()),
            files: Mutex::new(HashMap::new()),
        })
    }

    /// The engine.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// How many compiled plugins it holds.
    pub fn len(&self) -> usize {
        self.lru.lock().map(|l| l.entries.len()).unwrap_or(0)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compiled plugin of an admitted `file`: from the cache, else
    /// compiled (or loaded from the compile cache) on a blocking thread.
    pub async fn load(&self, file: &PluginFile) -> Result<(Plugin, Warmth), HostError> {
        if let Some(plugin) = self.touch(&file.digest, |e| e.plugin.clone()) {
            return Ok((plugin, Warmth::Warm));
        }
        let host = self.host.clone();
        let bytes = file.bytes.clone();
        let digest = file.digest.clone();
        let plugin = tokio::task::spawn_blocking(move || host.load(&bytes, &digest))
            .await
            .map_err(|e| HostError::Engine(format!("the compiling thread failed: {e}")))??;
        self.insert(plugin.clone(), None);
        Ok((plugin, Warmth::Loaded))
    }

    /// What the plugin says about itself (`describe`), asked once per
    /// digest.
    pub async fn describe(&self, plugin: &Plugin) -> Result<PluginInfo, StageFailure> {
        if let Some(Some(info)) = self.touch(&plugin.digest, |e| e.info.clone()) {
            return Ok(info);
        }
        let info = sluice_host::sandbox::describe(plugin).await?;
        self.insert(plugin.clone(), Some(info.clone()));
        Ok(info)
    }

    /// A plugin file on a path this agent shares with the coordinator, as
    /// `reference`: read and hashed again only when the file changed.
    pub fn read_file(&self, path: &Path, reference: &str) -> Result<PluginFile, PluginFileError> {
        let key = (path.to_path_buf(), reference.to_owned());
        let stamp = std::fs::metadata(path).ok().map(|m| Stamp::of(&m));
        if let (Some(stamp), Ok(files)) = (stamp, self.files.lock()) {
            if let Some((seen, file)) = files.get(&key) {
                if *seen == stamp {
                    return Ok(file.clone());
                }
            }
        }
        let file = admission::read_plugin_file(path, reference.to_owned())?;
        // The stamp from before the read: a change during the read makes
        // the next call read again rather than trust a mixed state.
        if let (Some(stamp), Ok(mut files)) = (stamp, self.files.lock()) {
            files.insert(key, (stamp, file.clone()));
        }
        Ok(file)
    }

    fn touch<T>(&self, digest: &str, get: impl FnOnce(&Entry) -> T) -> Option<T> {
        let mut lru = self.lru.lock().ok()?;
        lru.tick += 1;
        let tick = lru.tick;
        let entry = lru.entries.get_mut(digest)?;
        entry.used = tick;
        Some(get(entry))
    }

    fn insert(&self, plugin: Plugin, info: Option<PluginInfo>) {
        let Ok(mut lru) = self.lru.lock() else {
            return;
        };
        lru.tick += 1;
        let tick = lru.tick;
        let digest = plugin.digest.clone();
        match lru.entries.get_mut(&digest) {
            Some(entry) => {
                entry.used = tick;
                if info.is_some() {
                    entry.info = info;
                }
            }
            None => {
                lru.entries.insert(
                    digest,
                    Entry {
                        plugin,
                        info,
                        used: tick,
                    },
                );
            }
        }
        while lru.entries.len() > self.capacity {
            // A linear scan: the cache holds tens of plugins.
            let oldest = lru
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(d, _)| d.clone());
            match oldest {
                Some(d) => {
                    tracing::debug!(digest = %d, "dropping a compiled plugin from the warm cache");
                    lru.entries.remove(&d);
                }
                None => break,
            }
        }
    }

    /// Whether a plugin of `digest` is compiled and warm.
    pub fn contains(&self, digest: &str) -> bool {
        self.lru
            .lock()
            .map(|l| l.entries.contains_key(digest))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../dist/plugins")
            .join(name)
    }

    #[tokio::test]
    async fn plugins_stay_warm_and_the_least_recently_used_goes() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = PluginCache::start(dir.path(), 1, 2).expect("engine");
        let file = |name: &str| cache.read_file(&dist(name), name).expect("read");
        let (noop, hello, fixture) = (file("noop.wasm"), file("hello.wasm"), file("fixture.wasm"));
        let (p, warmth) = cache.load(&noop).await.expect("load");
        assert_eq!(warmth, Warmth::Loaded);
        assert_eq!(p.digest, noop.digest);
        assert_eq!(cache.load(&noop).await.expect("load").1, Warmth::Warm);
        let info = cache.describe(&p).await.expect("describe");
        assert_eq!(cache.describe(&p).await.expect("describe").name, info.name);
        cache.load(&hello).await.expect("load");
        // noop is used again, so hello is the oldest when fixture arrives.
        cache.load(&noop).await.expect("load");
        cache.load(&fixture).await.expect("load");
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&noop.digest) && cache.contains(&fixture.digest));
        assert!(!cache.contains(&hello.digest));
    }

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = PluginCache::start(&dir.path().join("cache"), 1, 4).expect("engine");
        let path = dir.path().join("p.wasm");
        std::fs::copy(dist("noop.wasm"), &path).expect("copy");
        let first = cache.read_file(&path, "p.wasm").expect("read");
        assert!(Arc::ptr_eq(
            &first.bytes,
            &cache.read_file(&path, "p.wasm").expect("read").bytes
        ));
        // Another file at the same path (a new inode): read again.
        let next = dir.path().join("next.wasm");
        std::fs::copy(dist("hello.wasm"), &next).expect("copy");
        std::fs::rename(&next, &path).expect("rename");
        let second = cache.read_file(&path, "p.wasm").expect("read");
        assert_ne!(first.digest, second.digest);
        std::fs::remove_file(&path).expect("rm");
        assert!(cache.read_file(&path, "p.wasm").is_err());
    }
}
