use std::os::unix::fs::PermissionsExt as _;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Store every file of `entries` (found under `root`) in `cas`.
fn ingest(entries: &BTreeMap<String, Node>, root: &Path, cas: &Cas) -> TestResult {
    for (digest, path) in file_blobs(entries, root) {
        let mut file = std::fs::File::open(&path)?;
        cas.ingest_verified(&mut file, digest, &path)?;
    }
    Ok(())
}

fn blob(cas: &Cas, body: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)));
    cas.ingest_verified(&mut &body[..], &digest, Path::new("test"))?;
    Ok(digest)
}

#[test]
fn a_workspace_travels_and_a_stage_s_changes_come_back() -> TestResult {
    let (coordinator, agent, store) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let ws = coordinator.path();
    std::fs::create_dir_all(ws.join("src/pkg"))?;
    std::fs::create_dir_all(ws.join("old/inner"))?;
    std::fs::write(ws.join("src/pkg/a.py"), "print('a')\n")?;
    std::fs::write(ws.join("run.sh"), "#!/bin/sh\n")?;
    std::fs::set_permissions(ws.join("run.sh"), std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(ws.join("old/inner/gone.txt"), "x")?;
    std::os::unix::fs::symlink("src/pkg/a.py", ws.join("link"))?;
    let cas = Cas::open(store.path())?;

    let manifest = scan(ws)?;
    assert_eq!(manifest.entries.len(), 8, "{manifest:#?}");
    assert!(matches!(
        manifest.entries.get("run.sh"),
        Some(Node::File {
            executable: true,
            size: 10,
            ..
        })
    ));
    ingest(&manifest.entries, ws, &cas)?;
    let copy = agent.path().join("ws");
    std::fs::create_dir(&copy)?;
    materialise(&manifest, &cas, &copy)?;
    assert_eq!(scan(&copy)?, manifest, "the copy lists the same");
    assert_eq!(
        std::fs::read_link(copy.join("link"))?,
        Path::new("src/pkg/a.py")
    );

    // The stage writes, adds, removes.
    std::fs::write(copy.join("src/pkg/a.py"), "print('b')\n")?;
    std::fs::create_dir(copy.join("dist"))?;
    std::fs::write(copy.join("dist/out.zip"), "zip")?;
    std::fs::remove_dir_all(copy.join("old"))?;
    let delta = diff(&manifest, &copy)?;
    assert_eq!(
        delta.changed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["dist", "dist/out.zip", "src/pkg/a.py"]
    );
    assert_eq!(delta.deleted, ["old/inner/gone.txt", "old/inner", "old"]);
    ingest(&delta.changed, &copy, &cas)?;
    apply(&delta, &cas, ws)?;
    assert_eq!(
        std::fs::read_to_string(ws.join("src/pkg/a.py"))?,
        "print('b')\n"
    );
    assert_eq!(std::fs::read_to_string(ws.join("dist/out.zip"))?, "zip");
    assert!(!ws.join("old").exists());
    assert_eq!(scan(ws)?, scan(&copy)?);
    Ok(())
}

#[test]
fn fifos_are_left_out_and_links_never_followed() -> TestResult {
    let (ws, outside) = (tempfile::tempdir()?, tempfile::tempdir()?);
    std::fs::write(outside.path().join("secret"), "s3cr3t")?;
    std::os::unix::fs::symlink(outside.path(), ws.path().join("escape"))?;
    let fifo = ws.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success());
    let manifest = scan(ws.path())?;
    assert_eq!(manifest.skipped, ["pipe"]);
    assert_eq!(
        manifest.entries.get("escape"),
        Some(&Node::Symlink {
            target: outside.path().display().to_string()
        })
    );
    assert_eq!(manifest.entries.len(), 1, "nothing read through the link");
    Ok(())
}

#[test]
fn a_hostile_delta_cannot_reach_outside_the_workspace() -> TestResult {
    let (ws, outside, store) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let cas = Cas::open(store.path())?;
    let file = Node::File {
        digest: blob(&cas, b"pwned")?,
        size: 5,
        executable: false,
    };
    for bad in ["../escape.txt", "/etc/x", "a/../../b", "", "a//b", "./a"] {
        let delta = Delta {
            changed: BTreeMap::from([(bad.to_owned(), file.clone())]),
            deleted: vec![],
        };
        assert!(
            matches!(
                apply(&delta, &cas, ws.path()),
                Err(SnapshotError::BadPath { .. })
            ),
            "{bad}"
        );
        let delta = Delta {
            changed: BTreeMap::new(),
            deleted: vec![bad.to_owned()],
        };
        assert!(
            matches!(
                apply(&delta, &cas, ws.path()),
                Err(SnapshotError::BadPath { .. })
            ),
            "{bad}"
        );
    }
    // A symlink in the coordinator's workspace that leads outside: a change
    // below it is not written there …
    std::os::unix::fs::symlink(outside.path(), ws.path().join("out"))?;
    let delta = Delta {
        changed: BTreeMap::from([("out/planted.txt".to_owned(), file.clone())]),
        deleted: vec![],
    };
    assert!(apply(&delta, &cas, ws.path()).is_err());
    assert!(!outside.path().join("planted.txt").exists());
    // … nor can a deletion reach through it.
    std::fs::write(outside.path().join("keep.txt"), "keep")?;
    let delta = Delta {
        changed: BTreeMap::new(),
        deleted: vec!["out/keep.txt".to_owned()],
    };
    assert!(apply(&delta, &cas, ws.path()).is_err());
    assert!(outside.path().join("keep.txt").exists());
    // A symlink with an absolute target is refused, as a stage's own is.
    let delta = Delta {
        changed: BTreeMap::from([(
            "abs".to_owned(),
            Node::Symlink {
                target: "/etc/passwd".to_owned(),
            },
        )]),
        deleted: vec![],
    };
    assert!(apply(&delta, &cas, ws.path()).is_err());
    assert!(std::fs::symlink_metadata(ws.path().join("abs")).is_err());
    Ok(())
}

#[test]
fn a_manifest_cannot_write_through_its_own_symlinks() -> TestResult {
    let (dest, outside, store) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let cas = Cas::open(store.path())?;
    // `a` is a link out, and `a/b` a file "inside" it.
    let manifest = Manifest {
        entries: BTreeMap::from([
            (
                "a".to_owned(),
                Node::Symlink {
                    target: outside.path().display().to_string(),
                },
            ),
            (
                "a/b".to_owned(),
                Node::File {
                    digest: blob(&cas, b"x")?,
                    size: 1,
                    executable: false,
                },
            ),
        ]),
        ..Manifest::default()
    };
    assert!(materialise(&manifest, &cas, dest.path()).is_err());
    assert!(!outside.path().join("b").exists());
    Ok(())
}

#[test]
fn sluiceignore_decides_what_is_sent_but_not_what_comes_back() -> TestResult {
    let (coordinator, agent, store) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let ws = coordinator.path();
    std::fs::write(
        ws.join(IGNORE_FILE),
        "\u{feff}# build output and local secrets\r\ntarget/\n/secret.env\n*.log\n!keep.log\n\n",
    )?;
    std::fs::create_dir_all(ws.join("target/debug"))?;
    std::fs::write(ws.join("target/debug/big.bin"), "big")?;
    // Nothing under an ignored directory is even looked at: not a FIFO …
    mkfifo(&ws.join("target/debug/fifo"))?;
    // … nor a directory that cannot be read.
    std::fs::create_dir(ws.join("target/locked"))?;
    std::fs::set_permissions(
        ws.join("target/locked"),
        std::fs::Permissions::from_mode(0o000),
    )?;
    std::fs::write(ws.join("secret.env"), "TOKEN=hunter2\n")?;
    std::fs::create_dir(ws.join("sub"))?;
    std::fs::write(ws.join("sub/secret.env"), "not anchored: travels\n")?;
    std::fs::write(ws.join("sub/run.log"), "x")?;
    std::fs::write(ws.join("keep.log"), "kept")?;
    // `target/` is for directories only: a file of that name travels.
    std::fs::write(ws.join("sub/target"), "a file")?;
    std::fs::write(ws.join("main.c"), "int main;\n")?;

    let manifest = scan(ws)?;
    std::fs::set_permissions(
        ws.join("target/locked"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    let listed: Vec<&str> = manifest.entries.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        [
            IGNORE_FILE,
            "keep.log",
            "main.c",
            "sub",
            "sub/secret.env",
            "sub/target"
        ],
        "{manifest:#?}"
    );
    assert_eq!(manifest.ignored, ["secret.env", "sub/run.log", "target"]);
    assert!(manifest.skipped.is_empty(), "{manifest:#?}");
    let wire = serde_json::to_string(&manifest)?;
    assert!(
        !wire.contains("ignored") && !wire.contains("\"secret.env\""),
        "{wire}"
    );

    // The agent's copy: a stage writes into ignored places too, and all of
    // it comes back; the coordinator's ignored files are not "deleted".
    let cas = Cas::open(store.path())?;
    ingest(&manifest.entries, ws, &cas)?;
    let copy = agent.path().join("ws");
    std::fs::create_dir(&copy)?;
    materialise(&manifest, &cas, &copy)?;
    assert!(!copy.join("secret.env").exists() && !copy.join("target").exists());
    std::fs::create_dir_all(copy.join("target/release"))?;
    std::fs::write(copy.join("target/release/app"), "built")?;
    std::fs::write(copy.join("build.log"), "log")?;
    let delta = diff(&manifest, &copy)?;
    let changed: Vec<&str> = delta.changed.keys().map(String::as_str).collect();
    assert_eq!(
        changed,
        [
            "build.log",
            "target",
            "target/release",
            "target/release/app"
        ]
    );
    assert!(delta.deleted.is_empty(), "{delta:?}");
    ingest(&delta.changed, &copy, &cas)?;
    apply(&delta, &cas, ws)?;
    assert_eq!(
        std::fs::read_to_string(ws.join("target/release/app"))?,
        "built"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("target/debug/big.bin"))?,
        "big"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("secret.env"))?,
        "TOKEN=hunter2\n"
    );
    Ok(())
}

#[test]
fn a_bad_sluiceignore_is_named_with_its_line_and_never_blocks() -> TestResult {
    let ws = tempfile::tempdir()?;
    std::fs::write(ws.path().join("a.txt"), "a")?;
    // An invalid range on line 3.
    std::fs::write(ws.path().join(IGNORE_FILE), "# ok\ntarget/\nbad[z-a]\n")?;
    match scan(ws.path()) {
        Err(SnapshotError::IgnorePattern { line, pattern, .. }) => {
            assert_eq!((line, pattern.as_str()), (3, "bad[z-a]"));
        }
        other => panic!("{other:?}"),
    }
    let message = scan(ws.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("`.sluiceignore` line 3: `bad[z-a]` is not a pattern")
            && message.ends_with("fix it (gitignore syntax) or remove the line"),
        "{message}"
    );
    // A FIFO in its place is refused at once, not opened (it would block).
    std::fs::remove_file(ws.path().join(IGNORE_FILE))?;
    mkfifo(&ws.path().join(IGNORE_FILE))?;
    assert!(
        matches!(scan(ws.path()), Err(SnapshotError::IgnoreFile { .. })),
        "a FIFO"
    );
    // A symlink, even to a good file, is not followed.
    std::fs::remove_file(ws.path().join(IGNORE_FILE))?;
    std::fs::write(ws.path().join("rules"), "a.txt\n")?;
    std::os::unix::fs::symlink("rules", ws.path().join(IGNORE_FILE))?;
    let err = scan(ws.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("is not a regular file") && err.contains("make it a plain file"),
        "{err}"
    );
    // Not UTF-8.
    std::fs::remove_file(ws.path().join(IGNORE_FILE))?;
    std::fs::write(ws.path().join(IGNORE_FILE), b"\xff\xfe\n")?;
    let err = scan(ws.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("not UTF-8"), "{err}");
    Ok(())
}

/// A FIFO at `path`.
fn mkfifo(path: &Path) -> TestResult {
    let made = std::process::Command::new("mkfifo").arg(path).status()?;
    assert!(made.success(), "mkfifo {}", path.display());
    Ok(())
}

/// Pretend every file of `cache` was hashed `secs` seconds later than it
/// was: long after its last change.
fn age(cache: &mut DigestCache, secs: i128) {
    for entry in cache.entries.values_mut() {
        entry.hashed_at_ns += secs * 1_000_000_000;
    }
}

#[test]
fn the_digest_cache_reads_only_what_changed() -> TestResult {
    let ws = tempfile::tempdir()?;
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(ws.path().join(name), name)?;
    }
    let mut cache = DigestCache::default();
    let first = scan_cached(ws.path(), &mut cache)?;
    assert_eq!(cache.hashed, 3);
    assert_eq!(first, scan(ws.path())?);

    // Just hashed: nothing had settled, so everything is read again.
    let again = scan_cached(ws.path(), &mut cache)?;
    assert_eq!((cache.hashed, &again), (3, &first));

    // Settled: nothing is read, and the manifest is the same.
    age(&mut cache, 10);
    let cached = scan_cached(ws.path(), &mut cache)?;
    assert_eq!((cache.hashed, &cached), (0, &first));

    // Same size, mtime put back as it was: ctime moved, so it is read.
    let file = ws.path().join("b.txt");
    let mtime = std::fs::metadata(&file)?.modified()?;
    std::fs::write(&file, "B.txt")?;
    std::fs::File::options()
        .write(true)
        .open(&file)?
        .set_modified(mtime)?;
    std::fs::remove_file(ws.path().join("c.txt"))?;
    let changed = scan_cached(ws.path(), &mut cache)?;
    assert_eq!(cache.hashed, 1);
    assert_eq!(changed, scan(ws.path())?, "the new bytes' digest");
    assert_ne!(changed.entries.get("b.txt"), first.entries.get("b.txt"));
    assert!(
        !cache.entries.contains_key("c.txt"),
        "gone files leave the cache"
    );
    Ok(())
}

#[test]
fn a_change_in_the_tick_it_was_hashed_in_is_never_taken_from_the_cache() -> TestResult {
    let ws = tempfile::tempdir()?;
    let file = ws.path().join("racy.txt");
    std::fs::write(&file, "one")?;
    let mut cache = DigestCache::default();
    let first = scan_cached(ws.path(), &mut cache)?;
    // A write in the same timestamp tick leaves the file looking as it
    // did: make the cache's stamp match the changed file exactly.
    std::fs::write(&file, "two")?;
    let dir = open_root(ws.path())?;
    let now = Stamp::of(&dir.symlink_metadata("racy.txt")?);
    if let Some(entry) = cache.entries.get_mut("racy.txt") {
        entry.stamp = now;
    }
    let second = scan_cached(ws.path(), &mut cache)?;
    assert_eq!(
        cache.hashed, 1,
        "hashed within 2 s of its change: read again"
    );
    assert_ne!(second, first);
    assert_eq!(second, scan(ws.path())?);
    Ok(())
}

#[test]
fn the_digest_cache_survives_a_save_and_a_damaged_file_is_an_empty_cache() -> TestResult {
    let (ws, state) = (tempfile::tempdir()?, tempfile::tempdir()?);
    std::fs::write(ws.path().join("a.txt"), "a")?;
    let mut cache = DigestCache::default();
    let first = scan_cached(ws.path(), &mut cache)?;
    age(&mut cache, 10);
    let saved = state.path().join("snapshots/w.json");
    cache.save(&saved)?;
    let mut loaded = DigestCache::load(&saved);
    assert_eq!(scan_cached(ws.path(), &mut loaded)?, first);
    assert_eq!(loaded.hashed, 0, "taken from the saved cache");
    // Damaged or missing: every file is read, nothing fails.
    std::fs::write(&saved, "{\"entries\": {\"a.txt\": 7")?;
    let mut damaged = DigestCache::load(&saved);
    assert_eq!(scan_cached(ws.path(), &mut damaged)?, first);
    assert_eq!(damaged.hashed, 1);
    let mut missing = DigestCache::load(&state.path().join("none.json"));
    assert_eq!(scan_cached(ws.path(), &mut missing)?, first);
    Ok(())
}
