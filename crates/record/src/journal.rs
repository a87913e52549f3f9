//! The run's write-ahead journal: one JSON line per stage change, so that a
//! change costs one small append instead of rewriting the whole `run.json`
//! (which grows with the number of stages and made long pipelines
//! quadratic).
//!
//! `run.json` is a snapshot that says which journal entries it already holds
//! (`journal_seq`); loading a run reads the snapshot and applies the newer
//! entries in order. A torn last line (the runner was killed mid-write) ends
//! the replay: every entry before it was complete and is kept. The journal
//! is never emptied: it is the run's history of changes, and a snapshot
//! only records how far it has folded it in.
//!
//! Durability: every entry is written with `write(2)` before the scheduler
//! goes on, so a killed runner loses nothing. Entries that finish a stage
//! are also `fdatasync`ed, by a background thread (group commit: one sync
//! covers every entry written before it), so no stage waits for the disk.
//! A power cut in the window between a stage's end and that sync makes the
//! stage `pending` again, and it runs again on resume; it never corrupts
//! the record. Snapshots wait for the syncer first.
//!
//! A new run's first snapshot is not synced by the scheduler either: the
//! journal is opened with the paths it must sync before anything else
//! (`run.json`, the run's directory and the runs directory), so the run
//! becomes durable with its first sync, and no entry is ever reported
//! synced before the snapshot it extends.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use super::{RecordError, RunRecord, StageRecord};

/// File name of the journal inside a run's directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One line of the journal: the whole new record of one stage.
#[derive(Debug, Serialize, Deserialize)]
struct Entry<'a> {
    seq: u64,
    at: std::borrow::Cow<'a, str>,
    stage: std::borrow::Cow<'a, str>,
    record: std::borrow::Cow<'a, StageRecord>,
}

/// An open journal of one run, appended to by the scheduler.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    seq: u64,
    syncer: Syncer,
}

impl Journal {
    /// Open (creating) the journal in `run_dir`, continuing after `seq`
    /// (the last entry the snapshot holds).
    pub fn open(run_dir: &Path, seq: u64) -> Result<Journal, RecordError> {
        Journal::open_syncing_first(run_dir, seq, Vec::new())
    }

    /// [`Journal::open`], with files and directories that the sync thread
    /// makes durable before its first journal sync (see the module doc).
    pub fn open_syncing_first(
        run_dir: &Path,
        seq: u64,
        first: Vec<PathBuf>,
    ) -> Result<Journal, RecordError> {
        let path = run_dir.join(JOURNAL_FILE);
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io)?;
        cut_torn_tail(&file, &path).map_err(io)?;
        let syncer = Syncer::start(file.try_clone().map_err(io)?, &path, first).map_err(io)?;
        Ok(Journal {
            path,
            file,
            seq,
            syncer,
        })
    }

    /// Sequence number of the last entry written.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Append the current records of `stages` as one write; with `durable`,
    /// also have the entries synced to disk (in the background, see the
    /// module doc). Entries that only say a stage started need no sync: lost
    /// to a power cut, the stage is pending again and simply runs on resume,
    /// as it would from `running`.
    pub fn append<'a>(
        &mut self,
        stages: impl IntoIterator<Item = (&'a str, &'a StageRecord)>,
        at: &str,
        durable: bool,
    ) -> Result<(), RecordError> {
        let mut buf = Vec::new();
        for (stage, record) in stages {
            self.seq += 1;
            let entry = Entry {
                seq: self.seq,
                at: at.into(),
                stage: stage.into(),
                record: std::borrow::Cow::Borrowed(record),
            };
            serde_json::to_writer(&mut buf, &entry).map_err(|e| RecordError::Corrupt {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&buf).map_err(self.io())?;
        if durable {
            self.syncer.request(self.seq).map_err(self.io())?;
        }
        Ok(())
    }

    /// Wait until every entry written so far is on disk.
    pub fn sync(&mut self) -> Result<(), RecordError> {
        let seq = self.seq;
        self.syncer
            .request(seq)
            .and_then(|()| self.syncer.wait(seq))
            .map_err(self.io())
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
        |source| RecordError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// What the scheduler asked of the sync thread and what it has done.
#[derive(Debug, Default)]
struct SyncState {
    /// Highest entry that must reach the disk.
    requested: u64,
    /// Highest entry known to be on disk.
    synced: u64,
    /// Whether the paths to sync first are on disk.
    ready: bool,
    /// The first failed sync (every later request reports it).
    error: Option<(std::io::ErrorKind, String)>,
    stop: bool,
}

type Shared = Arc<(Mutex<SyncState>, Condvar)>;

/// The thread that `fdatasync`s the journal (group commit).
#[derive(Debug)]
struct Syncer {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, SyncState> {
    // The state is plain numbers: still meaningful after a panic elsewhere.
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl Syncer {
    fn start(file: File, path: &Path, first: Vec<PathBuf>) -> std::io::Result<Syncer> {
        let shared: Shared = Arc::default();
        let state = shared.clone();
        let name = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("sluice-journal".into())
            .spawn(move || {
                if sync_first(&first, &state) {
                    sync_loop(&file, &state, &name);
                }
            })?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    fn failed(state: &SyncState) -> std::io::Result<()> {
        match &state.error {
            Some((kind, message)) => Err(std::io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    /// Ask for entries up to `seq` to be synced; fails if a sync already
    /// failed.
    fn request(&self, seq: u64) -> std::io::Result<()> {
        let mut state = lock(&self.shared);
        Self::failed(&state)?;
        if seq > state.requested {
            state.requested = seq;
            self.shared.1.notify_all();
        }
        Ok(())
    }

    /// Block until entries up to `seq` are on disk (or a sync failed).
    fn wait(&self, seq: u64) -> std::io::Result<()> {
        let mut state = lock(&self.shared);
        while (state.synced < seq || !state.ready) && state.error.is_none() {
            state = self.shared.1.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        Self::failed(&state)
    }
}

/// Sync the paths the journal must not get ahead of; false if that failed.
fn sync_first(first: &[PathBuf], shared: &Shared) -> bool {
    let result = first
        .iter()
        .try_for_each(|path| sluice_files::fsutil::sync_path(path));
    let mut state = lock(shared);
    match result {
        Ok(()) => state.ready = true,
        Err(e) => {
            tracing::error!(error = %e, "syncing the new run's record failed");
            state.error = Some((e.kind(), e.to_string()));
        }
    }
    shared.1.notify_all();
    state.error.is_none()
}

fn sync_loop(file: &File, shared: &Shared, name: &str) {
    let mut state = lock(shared);
    loop {
        while state.requested <= state.synced && !state.stop {
            state = shared.1.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.requested <= state.synced {
            return;
        }
        let target = state.requested;
        drop(state);
        let result = file.sync_data();
        state = lock(shared);
        match result {
            Ok(()) => state.synced = target,
            Err(e) => {
                tracing::error!(journal = name, error = %e, "syncing the run journal failed");
                state.error = Some((e.kind(), e.to_string()));
                shared.1.notify_all();
                return;
            }
        }
        shared.1.notify_all();
    }
}

impl Drop for Syncer {
    /// Finish the syncs already asked for, then stop.
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Apply the journal in `run_dir` to `record` (entries newer than its
/// `journal_seq`, in order). A torn last line is ignored; any other bad line
/// is an error naming the file, the line and the way out.
pub fn replay(run_dir: &Path, record: &mut RunRecord) -> Result<(), RecordError> {
    let path = run_dir.join(JOURNAL_FILE);
    match replay_until_bad(run_dir, record)? {
        None => Ok(()),
        Some((line, what)) => {
            let run = run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Err(RecordError::Corrupt {
                path,
                message: format!(
                    "line {line}: {what}. The journal was changed by something other than sluice, \
                     or the disk lost data; nothing from that line on is trusted. \
                     `sluice runs repair {run}` keeps the entries before it and moves the \
                     journal aside (stages recorded after them run again on --resume)"
                ),
            })
        }
    }
}

/// [`replay`] up to the first bad line, which is returned (line number,
/// what is wrong) instead of failing; `record` then holds everything
/// before it.
pub fn replay_until_bad(
    run_dir: &Path,
    record: &mut RunRecord,
) -> Result<Option<(usize, String)>, RecordError> {
    let path = run_dir.join(JOURNAL_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RecordError::Io { path, source }),
    };
    // Only complete lines count: a last line without its newline is a torn
    // write from a killed runner (everything before it was whole).
    let complete = match text.iter().rposition(|b| *b == b'\n') {
        Some(end) => &text[..end],
        None => return Ok(None),
    };
    // Entries are numbered 1, 2, 3 … by the one writer. A journal that was
    // moved aside (see the error below) starts again right after the
    // snapshot's last entry, so the first line may start there; after it,
    // a gap or a jump is an entry sluice did not write.
    let mut expected: Option<u64> = None;
    for (number, line) in (1usize..).zip(complete.split(|b| *b == b'\n')) {
        let entry = match serde_json::from_slice::<Entry<'_>>(line) {
            Ok(entry) => entry,
            Err(e) => return Ok(Some((number, format!("not a journal entry ({e})")))),
        };
        match expected {
            None if entry.seq == 0 || entry.seq > record.journal_seq + 1 => {
                return Ok(Some((
                    number,
                    format!(
                    "the journal starts at entry number {} but the snapshot holds entries up to {}",
                    entry.seq, record.journal_seq
                ),
                )))
            }
            Some(want) if entry.seq != want => {
                return Ok(Some((
                    number,
                    format!("entry number {} where {want} was expected", entry.seq),
                )))
            }
            _ => {}
        }
        expected = Some(entry.seq + 1);
        if !record.stages.contains_key(entry.stage.as_ref()) {
            return Ok(Some((
                number,
                format!(
                    "entry for stage `{}`, which the run does not have",
                    entry.stage
                ),
            )));
        }
        if entry.seq <= record.journal_seq {
            continue;
        }
        record.journal_seq = entry.seq;
        record.updated_at = entry.at.into_owned();
        if let Some(slot) = record.stages.get_mut(entry.stage.as_ref()) {
            *slot = entry.record.into_owned();
        }
    }
    Ok(None)
}

/// Cut a torn last line (a write cut short by a kill, a full disk or a power
/// cut) off the journal at `path`, so that the next entry starts on a line
/// of its own instead of being glued to the fragment (which would make it,
/// and everything after it, unreadable).
fn cut_torn_tail(file: &File, path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut reader = file;
    // Scan back from the end for the last newline, a block at a time.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    let keep = loop {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            break start + i as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    if keep < len {
        tracing::warn!(
            path = %path.display(),
            dropped = len - keep,
            "cutting a torn last line off the journal"
        );
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageState;
    use indexmap::IndexMap;

    fn record() -> RunRecord {
        let mut stages = IndexMap::new();
        stages.insert("a".to_string(), StageRecord::pending("a"));
        stages.insert("b".to_string(), StageRecord::pending("b"));
        RunRecord::new(
            "r",
            "p",
            PathBuf::from("/x/sluice.yaml"),
            "sha256:00",
            stages,
        )
    }

    #[test]
    fn replays_newer_entries_in_order_and_stops_at_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), 0).expect("open");
        let mut a = StageRecord::pending("a");
        a.state = StageState::Running;
        journal.append([("a", &a)], "t1", true).expect("append");
        a.state = StageState::Passed;
        let mut b = StageRecord::pending("b");
        b.state = StageState::Running;
        journal
            .append([("a", &a), ("b", &b)], "t2", false)
            .expect("append");
        assert_eq!(journal.seq(), 3);
        // A half-written entry after a kill.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .and_then(|mut f| f.write_all(br#"{"seq":4,"at":"t3","stage":"b","rec"#))
            .expect("torn write");

        let mut rec = record();
        replay(dir.path(), &mut rec).expect("replay");
        assert_eq!(rec.stages["a"].state, StageState::Passed);
        assert_eq!(rec.stages["b"].state, StageState::Running);
        assert_eq!(rec.journal_seq, 3);
        assert_eq!(rec.updated_at, "t2");
    }

    #[test]
    fn a_torn_tail_is_cut_before_appending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), 0).expect("open");
        let mut a = StageRecord::pending("a");
        a.state = StageState::Passed;
        journal.append([("a", &a)], "t1", true).expect("append");
        drop(journal);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .and_then(|mut f| f.write_all(br#"{"seq":2,"at":"t2","stage":"b","started_a"#))
            .expect("torn write");
        // The resumed runner continues after entry 1.
        let mut journal = Journal::open(dir.path(), 1).expect("open");
        let mut b = StageRecord::pending("b");
        b.state = StageState::Passed;
        journal.append([("b", &b)], "t3", true).expect("append");
        let mut rec = record();
        replay(dir.path(), &mut rec).expect("replay");
        assert_eq!(rec.stages["b"].state, StageState::Passed);
        assert_eq!(rec.journal_seq, 2);
    }

    #[test]
    fn entries_sluice_did_not_write_stop_the_replay_with_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), 0).expect("open");
        let a = StageRecord::pending("a");
        journal
            .append([("a", &a), ("b", &a)], "t1", true)
            .expect("append");
        let good = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("read");
        let first = good.lines().next().expect("a line").to_string();
        for (forged, what) in [
            (
                first.replace(r#""seq":1"#, r#""seq":999999"#),
                "entry number 999999",
            ),
            (
                first
                    .replace(r#""seq":1"#, r#""seq":3"#)
                    .replace(r#""stage":"a""#, r#""stage":"zz""#),
                "stage `zz`",
            ),
            ("garbage".to_string(), "not a journal entry"),
        ] {
            std::fs::write(dir.path().join(JOURNAL_FILE), format!("{good}{forged}\n"))
                .expect("write");
            let err = replay(dir.path(), &mut record()).expect_err("refused");
            let msg = err.to_string();
            assert!(msg.contains("line 3") && msg.contains(what), "{msg}");
        }
        // A bad line in the middle is not a torn tail.
        let mut lines: Vec<&str> = good.lines().collect();
        lines.insert(1, "{\"seq\":2,\"at\":");
        std::fs::write(dir.path().join(JOURNAL_FILE), lines.join("\n") + "\n").expect("write");
        let msg = replay(dir.path(), &mut record())
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn finished_stages_are_synced_in_the_background_and_sync_waits_for_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), 0).expect("open");
        let mut a = StageRecord::pending("a");
        a.state = StageState::Passed;
        journal.append([("a", &a)], "t1", true).expect("append");
        let mut b = StageRecord::pending("b");
        b.state = StageState::Running;
        journal.append([("b", &b)], "t2", false).expect("append");
        // Written at once (a killed runner loses nothing) ...
        let mut rec = record();
        replay(dir.path(), &mut rec).expect("replay");
        assert_eq!(rec.journal_seq, 2);
        // ... and `sync` covers the entry that did not ask for it too.
        journal.sync().expect("sync");
        let state = lock(&journal.syncer.shared);
        assert_eq!((state.requested, state.synced), (2, 2));
        assert!(state.error.is_none());
    }

    #[test]
    fn paths_to_sync_first_are_synced_before_any_entry_is_reported_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = dir.path().join("run.json");
        std::fs::write(&snapshot, b"{}").expect("write");
        let mut journal =
            Journal::open_syncing_first(dir.path(), 0, vec![snapshot, dir.path().to_path_buf()])
                .expect("open");
        // Nothing appended yet: `sync` still waits for the first paths.
        journal.sync().expect("sync");
        assert!(lock(&journal.syncer.shared).ready);

        // A path that cannot be synced fails every later durable step.
        let other = tempfile::tempdir().expect("tempdir");
        let mut journal =
            Journal::open_syncing_first(other.path(), 0, vec![other.path().join("missing.json")])
                .expect("open");
        let err = journal.sync().expect_err("the first sync failed");
        assert!(err.to_string().contains("missing.json"), "{err}");
        let a = StageRecord::pending("a");
        assert!(journal.append([("a", &a)], "t1", true).is_err());
    }

    #[test]
    fn entries_already_in_the_snapshot_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), 0).expect("open");
        let mut a = StageRecord::pending("a");
        a.state = StageState::Running;
        journal.append([("a", &a)], "t1", true).expect("append");
        // The snapshot already says `a` was cancelled after entry 1.
        let mut rec = record();
        rec.journal_seq = 1;
        rec.stages["a"].state = StageState::Cancelled;
        replay(dir.path(), &mut rec).expect("replay");
        assert_eq!(rec.stages["a"].state, StageState::Cancelled);
    }
}
