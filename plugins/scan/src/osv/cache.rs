//! A small on-disk cache for OSV API answers and downloaded dumps.
//!
//! Each entry is one file `<dir>/<fnv64 of the key>.entry` holding a header
//! line (`sluice-osv-cache 1 <unix seconds stored> <key length>`), the key
//! itself and the data. The key is stored so a hash collision reads as a
//! miss, never as someone else's answer. Entries older than the max age
//! (`with.cache-max-age`, default 1h) are misses and are overwritten by the
//! next answer. Writes go to a temporary file renamed into place, so an
//! interrupted run leaves no half-written entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default cache directory, relative to the workspace.
pub const DEFAULT_DIR: &str = ".sluice-osv-cache";

/// Default `cache-max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

const MAGIC: &str = "sluice-osv-cache 1";

/// An opened, writable cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_age: Duration,
}

impl Cache {
    /// Creates `dir` if needed and checks that it is writable (a read-only
    /// workspace fails here, before any answer is fetched).
    pub fn open(dir: &Path, max_age: Duration) -> std::io::Result<Cache> {
        std::fs::create_dir_all(dir)?;
        let probe = dir.join(".write-probe");
        std::fs::write(&probe, b"")?;
        let _ = std::fs::remove_file(&probe);
        Ok(Cache {
            dir: dir.to_path_buf(),
            max_age,
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{:016x}.entry", fnv64(key.as_bytes())))
    }

    /// The data stored under `key`, if it was stored no longer than the max
    /// age before `now`.
    pub fn get(&self, key: &str, now: SystemTime) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let nl = bytes.iter().position(|&b| b == b'\n')?;
        let header = std::str::from_utf8(bytes.get(..nl)?).ok()?;
        let rest = header.strip_prefix(MAGIC)?.trim();
        let (stored, key_len) = rest.split_once(' ')?;
        let stored: u64 = stored.parse().ok()?;
        let key_len: usize = key_len.parse().ok()?;
        let body = bytes.get(nl + 1..)?;
        if body.get(..key_len)? != key.as_bytes() || body.get(key_len) != Some(&b'\n') {
            return None;
        }
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        // A timestamp in the future (clock moved back) counts as stale.
        let age = now.checked_sub(stored)?;
        if Duration::from_secs(age) > self.max_age {
            return None;
        }
        Some(body.get(key_len + 1..)?.to_vec())
    }

    /// Stores `data` under `key` as of `now`.
    pub fn put(&self, key: &str, data: &[u8], now: SystemTime) -> std::io::Result<()> {
        let stored = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut out = Vec::with_capacity(data.len() + key.len() + 64);
        out.extend_from_slice(format!("{MAGIC} {stored} {}\n", key.len()).as_bytes());
        out.extend_from_slice(key.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(data);
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, &path)
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's
/// hasher), which is all a file name needs.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("sluice-osv-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stores_and_expires_by_max_age() {
        let dir = tmp("age");
        let c = Cache::open(&dir, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        c.put("query\nnpm\nlodash\n4.17.15", b"{\"ids\":[]}", at(1000))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.get("query\nnpm\nlodash\n4.17.15", at(1060)).as_deref(),
            Some(&b"{\"ids\":[]}"[..])
        );
        assert_eq!(c.get("query\nnpm\nlodash\n4.17.15", at(1061)), None);
        // A clock that went backwards does not make an entry fresh forever.
        assert_eq!(c.get("query\nnpm\nlodash\n4.17.15", at(999)), None);
        assert_eq!(c.get("query\nnpm\nlodash\n4.17.16", at(1000)), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_colliding_or_corrupt_entry_is_a_miss() {
        let dir = tmp("corrupt");
        let c = Cache::open(&dir, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        c.put("a", b"data", at(10))
            .unwrap_or_else(|e| panic!("{e}"));
        // Same file, other key: as a hash collision would look.
        let path = c.path("a");
        let other = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let forged = String::from_utf8_lossy(&other).replace("\na\n", "\nb\n");
        std::fs::write(&path, forged).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("a", at(10)), None);
        std::fs::write(&path, b"garbage").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("a", at(10)), None);
        std::fs::write(&path, b"sluice-osv-cache 1 x 1\na\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("a", at(10)), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn binary_data_round_trips() {
        let dir = tmp("binary");
        let c = Cache::open(&dir, DEFAULT_MAX_AGE).unwrap_or_else(|e| panic!("{e}"));
        let data: Vec<u8> = (0..=255u8).chain([b'\n', 0, b'\n']).collect();
        c.put("dump\nhttp://x/all.zip", &data, at(5))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("dump\nhttp://x/all.zip", at(6)), Some(data));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_directory_fails_to_open() {
        let dir = tmp("file");
        std::fs::write(&dir, b"a file, not a directory").unwrap_or_else(|e| panic!("{e}"));
        assert!(Cache::open(&dir, DEFAULT_MAX_AGE).is_err());
        let _ = std::fs::remove_file(&dir);
    }
}
