//! Is the working tree dirty? Read from `.git/index` and the files it
//! lists, without running git and without trusting either.
//!
//! What counts as a change (the same as `git describe --dirty` and
//! `git diff --quiet` for tracked files): a tracked file whose content,
//! type or executable bit differs from the index, a tracked file that is
//! gone, an unmerged entry (a conflict) and an intent-to-add entry.
//!
//! What is not seen (stated in docs/provenance.md):
//!
//! - changes staged in the index but not committed (`git add` without
//!   `git commit`): comparing the index with HEAD's tree needs git's object
//!   store (zlib, packs, deltas), which this reader does not parse;
//! - untracked files (they would need `.gitignore` semantics);
//! - clean/smudge filters and line-ending conversion: the file's bytes are
//!   hashed as they are, so a filtered file whose stat data changed is
//!   reported as changed when git might call it clean (the error is on the
//!   side of "dirty").
//!
//! Safety: the index is workspace content. It is read through the same
//! capability handle on `.git` as the refs (regular file, non-blocking
//! open, at most [`MAX_INDEX`] bytes), every length in it is bounds-checked,
//! every path must be a plain relative path (no `..`, `.`, empty or `.git`
//! component, no NUL), and files are looked up through a capability handle
//! on the repository root (or on a directory opened through it), so no
//! path or symlink in the index reaches outside it. Symlinks in the tree are compared by their target text and
//! never followed; FIFOs, devices and sockets are never opened. Anything
//! unreadable makes the state unknown, never an error and never content in
//! the provenance beyond path names.

use std::io::Read;

use cap_std::fs::{Dir, MetadataExt, OpenOptionsExt};
use sha2::Digest as _;

/// Largest index read (the index of a 2-million-file repository is
/// around 200 MiB).
pub const MAX_INDEX: u64 = 512 * 1024 * 1024;
/// Changed paths listed by name in the provenance (beyond that only their
/// count and digest).
pub const MAX_LISTED: usize = 50;

/// What the working tree looks like next to its index.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeState {
    /// Every tracked file matches the index.
    Clean,
    /// Some tracked files differ.
    Dirty(Changes),
    /// It could not be told (no index, an index this reader does not
    /// understand); the reason.
    Unknown(String),
}

/// The tracked files that differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// How many.
    pub count: usize,
    /// `sha256:` over the sorted lines `<kind> <sha256 of the current
    /// content or -> <path>\n`: pins what the dirty tree held.
    pub digest: String,
    /// `(kind, path)` of each, when there are at most `MAX_LISTED`.
    pub listed: Option<Vec<(String, String)>>,
}

/// One stage-0 (or unmerged) entry of the index.
struct Entry {
    path: String,
    mode: u32,
    size: u32,
    mtime: (u32, u32),
    ino: u32,
    oid: Vec<u8>,
    stage: u16,
    skip_worktree: bool,
    intent_to_add: bool,
}

/// Compare the tree under `root` with `git`'s index. `oid_len` is 20 for
/// SHA-1 repositories and 32 for SHA-256 ones.
pub fn tree_state(root: &Dir, git: &Dir, oid_len: usize) -> TreeState {
    let (bytes, index_mtime) = match read_index(git) {
        Ok(found) => found,
        Err(why) => return TreeState::Unknown(why),
    };
    let entries = match parse_index(&bytes, oid_len) {
        Ok(entries) => entries,
        Err(why) => return TreeState::Unknown(format!("index: {why}")),
    };
    let mut changed: Vec<(String, String, Option<String>)> = Vec::new();
    let mut dirs = Parents::new(root);
    for e in &entries {
        // A parent that cannot be opened as a directory (gone, a file, a
        // symlink leaving the root, no read permission) is looked at the
        // slow way, by the whole path from the root.
        let kind = match dirs.get(&e.path) {
            Ok((dir, name)) => compare(dir, name, e, index_mtime),
            Err(_) => compare(root, &e.path, e, index_mtime),
        };
        if let Some(kind) = kind {
            let content = if kind == "deleted" || kind == "unmerged" {
                None
            } else {
                match dirs.get(&e.path) {
                    Ok((dir, name)) => content_sha256(dir, name),
                    Err(_) => content_sha256(root, &e.path),
                }
            };
            changed.push((kind.to_string(), e.path.clone(), content));
        }
    }
    if changed.is_empty() {
        return TreeState::Clean;
    }
    changed.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    changed.dedup();
    let mut hasher = sha2::Sha256::new();
    for (kind, path, content) in &changed {
        hasher.update(kind.as_bytes());
        hasher.update(b" ");
        hasher.update(content.as_deref().unwrap_or("-").as_bytes());
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
    }
    TreeState::Dirty(Changes {
        count: changed.len(),
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
        listed: (changed.len() <= MAX_LISTED)
            .then(|| changed.into_iter().map(|(k, p, _)| (k, p)).collect()),
    })
}

fn read_index(git: &Dir) -> Result<(Vec<u8>, (i64, i64)), String> {
    let file = open_regular(git, "index").map_err(|e| format!("index: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("index: {e}"))?;
    if meta.len() > MAX_INDEX {
        return Err(format!("index: larger than {MAX_INDEX} bytes"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_INDEX)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("index: {e}"))?;
    Ok((bytes, (meta.mtime(), meta.mtime_nsec())))
}

/// Open a regular file under `dir` without blocking on a FIFO.
fn open_regular(dir: &Dir, path: &str) -> std::io::Result<cap_std::fs::File> {
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    opts.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    let file = dir.open_with(path, &opts)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// A bounds-checked reader over the index bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("truncated")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn until_nul(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated path")?;
        self.at += n + 1;
        Ok(&rest[..n])
    }
    /// git's offset varint (index v4 path prefix length).
    fn varint(&mut self) -> Result<usize, String> {
        let mut c = self.take(1)?[0];
        let mut val = usize::from(c & 0x7f);
        while c & 0x80 != 0 {
            c = self.take(1)?[0];
            val = val
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .map(|v| v + usize::from(c & 0x7f))
                .ok_or("varint overflow")?;
        }
        Ok(val)
    }
}

/// Index versions 2, 3 and 4 (`Documentation/gitformat-index.txt`).
fn parse_index(bytes: &[u8], oid_len: usize) -> Result<Vec<Entry>, String> {
    let mut c = Cursor { bytes, at: 0 };
    if c.take(4)? != b"DIRC" {
        return Err("no DIRC signature".into());
    }
    let version = c.u32()?;
    if !(2..=4).contains(&version) {
        return Err(format!("unsupported version {version}"));
    }
    let count = c.u32()? as usize;
    // Every entry takes at least 40 + oid + 2 + 1 bytes.
    if count > bytes.len() / (43 + oid_len) {
        return Err("more entries than the file can hold".into());
    }
    let mut entries = Vec::with_capacity(count);
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = c.at;
        let stat = c.take(40)?;
        let word = |i: usize| {
            u32::from_be_bytes([
                stat[i * 4],
                stat[i * 4 + 1],
                stat[i * 4 + 2],
                stat[i * 4 + 3],
            ])
        };
        let oid = c.take(oid_len)?.to_vec();
        let flags = c.u16()?;
        let mut extended = 0;
        if flags & 0x4000 != 0 {
            if version < 3 {
                return Err("extended flags in a version 2 index".into());
            }
            extended = c.u16()?;
        }
        let path = if version == 4 {
            let strip = c.varint()?;
            if strip > previous.len() {
                return Err("path prefix longer than the previous path".into());
            }
            let suffix = c.until_nul()?;
            let mut path = previous[..previous.len() - strip].to_vec();
            path.extend_from_slice(suffix);
            path
        } else {
            let path = c.until_nul()?.to_vec();
            // Entries are NUL-padded to a multiple of 8 bytes.
            let len = c.at - start;
            let padded = (len + 7) & !7;
            c.take(padded - len)?;
            path
        };
        previous.clone_from(&path);
        let path = String::from_utf8(path).map_err(|_| "a path is not UTF-8".to_string())?;
        if !valid_path(&path) {
            return Err("an entry has an invalid path".into());
        }
        entries.push(Entry {
            path,
            mode: word(6),
            size: word(9),
            mtime: (word(2), word(3)),
            ino: word(5),
            oid,
            stage: (flags >> 12) & 0x3,
            skip_worktree: extended & 0x4000 != 0,
            intent_to_add: extended & 0x2000 != 0,
        });
    }
    // Extensions: only the split index changes what the entries mean.
    while c.bytes.len() - c.at > oid_len {
        let sig = c.take(4)?;
        let size = c.u32()? as usize;
        if sig == b"link" {
            return Err("split index (not supported)".into());
        }
        c.take(size)?;
    }
    Ok(entries)
}

/// A path as git stores it: relative, `/`-separated, no empty, `.`, `..`
/// or `.git` component.
fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && !path.contains('\0')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.eq_ignore_ascii_case(".git"))
}

/// Handles on the directories that hold tracked files, opened through the
/// root's capability (so no path leaves it) and kept while the index walk
/// is in them: a file is then looked at with one `statx` relative to its
/// directory, where a path from the root costs `cap-std` an `openat2`, a
/// `statx` and a `close`. At most [`Parents::MAX`] handles stay open.
struct Parents<'r> {
    root: &'r Dir,
    open: std::collections::HashMap<String, Dir>,
}

impl<'r> Parents<'r> {
    const MAX: usize = 64;

    fn new(root: &'r Dir) -> Parents<'r> {
        Parents {
            root,
            open: std::collections::HashMap::new(),
        }
    }

    /// The directory holding `path` (a checked relative path) and the
    /// file's name in it.
    fn get<'p>(&mut self, path: &'p str) -> std::io::Result<(&Dir, &'p str)> {
        let Some((parent, name)) = path.rsplit_once('/') else {
            return Ok((self.root, path));
        };
        if !self.open.contains_key(parent) {
            if self.open.len() >= Self::MAX {
                self.open.clear();
            }
            let dir = self.root.open_dir(parent)?;
            self.open.insert(parent.to_owned(), dir);
        }
        match self.open.get(parent) {
            Some(dir) => Ok((dir, name)),
            None => Err(std::io::ErrorKind::NotFound.into()),
        }
    }
}

/// What `e` says without looking at the tree: `Some(answer)` when that
/// decides it.
fn precheck(e: &Entry) -> Option<Option<&'static str>> {
    if e.stage != 0 {
        return Some(Some("unmerged"));
    }
    let kind = e.mode & 0o170000;
    // Submodules, sparse directories and skip-worktree entries have no
    // file of their own to compare.
    if e.skip_worktree || kind == 0o160000 || kind == 0o040000 {
        return Some(None);
    }
    if e.intent_to_add {
        return Some(Some("added"));
    }
    None
}

/// How `e` differs from the tree, if it does; `name` is its file in `dir`
/// (or its whole path, with the root as `dir`).
fn compare(dir: &Dir, name: &str, e: &Entry, index_mtime: (i64, i64)) -> Option<&'static str> {
    if let Some(answer) = precheck(e) {
        return answer;
    }
    let kind = e.mode & 0o170000;
    let meta = match dir.symlink_metadata(name) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Some("deleted"),
        // ENOTDIR (a parent became a file), a symlinked parent leaving
        // the root …: the file is not where the index says.
        Err(_) => return Some("deleted"),
    };
    let ft = meta.file_type();
    match kind {
        0o120000 if !ft.is_symlink() => return Some("type"),
        0o100000 if !ft.is_file() => return Some("type"),
        0o120000 | 0o100000 => {}
        _ => return Some("type"),
    }
    if kind == 0o100000 && (e.mode & 0o100 != 0) != (meta.mode() & 0o100 != 0) {
        return Some("mode");
    }
    if u64::from(e.size) != meta.len() & 0xffff_ffff {
        return Some("modified");
    }
    let mtime = (meta.mtime(), meta.mtime_nsec());
    let same_stat = mtime == (i64::from(e.mtime.0), i64::from(e.mtime.1))
        && (meta.ino() & 0xffff_ffff) == u64::from(e.ino);
    // "Racily clean": a file written in the same instant as the index may
    // have changed after its stat data was taken; git hashes it, so do we.
    if same_stat && mtime < index_mtime {
        return None;
    }
    let oid = if kind == 0o120000 {
        let target = dir.read_link_contents(name).ok()?;
        blob_oid(
            target.as_os_str().as_encoded_bytes(),
            &mut std::io::empty(),
            e.oid.len(),
        )
    } else {
        let file = open_regular(dir, name).ok();
        let Some(file) = file else {
            return Some("modified");
        };
        let len = file.metadata().ok()?.len();
        let mut body = file.take(len);
        let oid = blob_oid_stream(len, &mut body, e.oid.len())?;
        if body.limit() != 0 {
            return Some("modified");
        }
        Some(oid)
    };
    match oid {
        Some(oid) if oid == e.oid => None,
        _ => Some("modified"),
    }
}

/// git's blob id of `head` followed by `rest`.
fn blob_oid(head: &[u8], rest: &mut dyn Read, oid_len: usize) -> Option<Vec<u8>> {
    let mut all = head.to_vec();
    rest.read_to_end(&mut all).ok()?;
    let len = all.len() as u64;
    blob_oid_stream(len, &mut all.as_slice(), oid_len)
}

/// git's blob id (`blob <len>\0<bytes>`) with SHA-1 or SHA-256.
fn blob_oid_stream(len: u64, body: &mut dyn Read, oid_len: usize) -> Option<Vec<u8>> {
    let header = format!("blob {len}\0");
    let mut buf = vec![0u8; 64 * 1024];
    // sha1 and sha2 come with different `digest` versions, so the one loop
    // takes the update function rather than a `Digest` bound.
    let mut feed = |update: &mut dyn FnMut(&[u8])| -> Option<()> {
        update(header.as_bytes());
        loop {
            let n = body.read(&mut buf).ok()?;
            if n == 0 {
                return Some(());
            }
            update(&buf[..n]);
        }
    };
    if oid_len == 32 {
        let mut h = sha2::Sha256::new();
        feed(&mut |b| h.update(b))?;
        Some(h.finalize().to_vec())
    } else {
        use sha1::Digest as _;
        let mut h = sha1::Sha1::new();
        feed(&mut |b| h.update(b))?;
        Some(h.finalize().to_vec())
    }
}

/// `sha256:` of a changed file's current bytes (or symlink target); `name`
/// is its file in `dir`.
fn content_sha256(dir: &Dir, name: &str) -> Option<String> {
    let meta = dir.symlink_metadata(name).ok()?;
    let mut h = sha2::Sha256::new();
    if meta.file_type().is_symlink() {
        let target = dir.read_link_contents(name).ok()?;
        h.update(target.as_os_str().as_encoded_bytes());
    } else {
        let mut file = open_regular(dir, name).ok()?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Some(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 2 index with one entry per `(path, content)`.
    fn index(files: &[(&str, &[u8])], stat_of: impl Fn(&str) -> (u32, u32, u32, u32)) -> Vec<u8> {
        let mut out = b"DIRC".to_vec();
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(&(files.len() as u32).to_be_bytes());
        for (path, content) in files {
            let start = out.len();
            let (mtime, mtime_ns, ino, size) = stat_of(path);
            let words = [0, 0, mtime, mtime_ns, 0, ino, 0o100644, 0, 0, size];
            for w in words {
                out.extend_from_slice(&w.to_be_bytes());
            }
            let oid = blob_oid(content, &mut std::io::empty(), 20).expect("oid");
            out.extend_from_slice(&oid);
            out.extend_from_slice(&(path.len() as u16).to_be_bytes());
            out.extend_from_slice(path.as_bytes());
            out.push(0);
            while !(out.len() - start).is_multiple_of(8) {
                out.push(0);
            }
        }
        out.extend_from_slice(&[0u8; 20]);
        out
    }

    #[test]
    fn blob_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let oid = blob_oid(b"hello\n", &mut std::io::empty(), 20).expect("oid");
        assert_eq!(hex::encode(oid), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn nested_paths_a_gone_parent_and_a_parent_link_leaving_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let root_path = dir.path();
        for d in [".git", "a/b", "a/c", "gone", "x"] {
            std::fs::create_dir_all(root_path.join(d)).expect("mkdir");
        }
        let files: [(&str, &[u8]); 5] = [
            ("a/b/one.txt", b"1\n"),
            ("a/c/two.txt", b"2\n"),
            ("a/three.txt", b"3\n"),
            ("gone/four.txt", b"4\n"),
            ("x/five.txt", b"5\n"),
        ];
        for (path, body) in files {
            std::fs::write(root_path.join(path), body).expect("write");
        }
        std::fs::write(
            root_path.join(".git/index"),
            index(&files, |_| (1, 0, 1, 2)),
        )
        .expect("write");
        let open = |p: &std::path::Path| {
            Dir::open_ambient_dir(p, cap_std::ambient_authority()).expect("open")
        };
        let (root, git) = (open(root_path), open(&root_path.join(".git")));
        assert_eq!(tree_state(&root, &git, 20), TreeState::Clean);
        // A parent directory removed, and one replaced by a symlink to an
        // identical copy outside the root: both files are gone as far as
        // the tree under the root goes; the one outside is never read.
        std::fs::remove_dir_all(root_path.join("gone")).expect("rm");
        std::fs::write(outside.path().join("five.txt"), b"5\n").expect("write");
        std::fs::remove_dir_all(root_path.join("x")).expect("rm");
        std::os::unix::fs::symlink(outside.path(), root_path.join("x")).expect("symlink");
        std::fs::write(root_path.join("a/c/two.txt"), b"9\n").expect("write");
        let TreeState::Dirty(changes) = tree_state(&root, &git, 20) else {
            panic!("not dirty");
        };
        assert_eq!(
            changes.listed,
            Some(vec![
                ("modified".to_string(), "a/c/two.txt".to_string()),
                ("deleted".to_string(), "gone/four.txt".to_string()),
                ("deleted".to_string(), "x/five.txt".to_string()),
            ])
        );
    }

    #[test]
    fn detects_modified_deleted_and_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("a.txt"), "hello\n").expect("write");
        std::fs::write(dir.path().join("src/b.txt"), "b\n").expect("write");
        let files: [(&str, &[u8]); 2] = [("a.txt", b"hello\n"), ("src/b.txt", b"b\n")];
        // Stat data that never matches: every file is hashed.
        std::fs::write(
            dir.path().join(".git/index"),
            index(&files, |_| (1, 0, 1, 0)),
        )
        .expect("write");
        let open = |p: &std::path::Path| {
            Dir::open_ambient_dir(p, cap_std::ambient_authority()).expect("open")
        };
        let root = open(dir.path());
        let git = open(&dir.path().join(".git"));
        // Sizes differ from the index (0), so both are reported …
        assert!(matches!(tree_state(&root, &git, 20), TreeState::Dirty(_)));
        // … with the right sizes they are hashed and match.
        let sized = index(&files, |p| (1, 0, 1, if p == "a.txt" { 6 } else { 2 }));
        std::fs::write(dir.path().join(".git/index"), sized).expect("write");
        assert_eq!(tree_state(&root, &git, 20), TreeState::Clean);
        std::fs::write(dir.path().join("src/b.txt"), "c\n").expect("write");
        std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
        let TreeState::Dirty(changes) = tree_state(&root, &git, 20) else {
            panic!("not dirty");
        };
        assert_eq!(changes.count, 2);
        assert_eq!(
            changes.listed,
            Some(vec![
                ("deleted".to_string(), "a.txt".to_string()),
                ("modified".to_string(), "src/b.txt".to_string())
            ])
        );
        assert!(changes.digest.starts_with("sha256:"));
    }

    #[test]
    fn hostile_indexes_are_unknown_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
        let open = |p: &std::path::Path| {
            Dir::open_ambient_dir(p, cap_std::ambient_authority()).expect("open")
        };
        let root = open(dir.path());
        let git = open(&dir.path().join(".git"));
        for path in ["../../etc/passwd", "/etc/passwd", ".git/config", "a//b"] {
            let files: [(&str, &[u8]); 1] = [(path, b"x")];
            std::fs::write(
                dir.path().join(".git/index"),
                index(&files, |_| (1, 0, 1, 1)),
            )
            .expect("write");
            assert!(
                matches!(tree_state(&root, &git, 20), TreeState::Unknown(_)),
                "{path}"
            );
        }
        let mut huge = b"DIRC".to_vec();
        huge.extend_from_slice(&2u32.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        std::fs::write(dir.path().join(".git/index"), huge).expect("write");
        assert!(matches!(tree_state(&root, &git, 20), TreeState::Unknown(_)));
        std::fs::write(dir.path().join(".git/index"), "garbage").expect("write");
        assert!(matches!(tree_state(&root, &git, 20), TreeState::Unknown(_)));
    }
}
