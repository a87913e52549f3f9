//! The run's write-ahead journal: one JSON line per stage change, so that a
//! change costs one small append instead of rewriting the whole `run.json`
//! (which grows with the number of stages and made long pipelines
//! quadratic).
//!
//! `run.json` is a snapshot that says which journal entries it already holds
//! (`journal_seq`); loading a run reads the snapshot and applies the newer
//! entries in order. A torn last line (the runner was killed mid-write) ends
//! the replay: every entry before it was complete and is kept. The runner
//! folds the journal into a fresh snapshot at the end of every run (and on
//! pause), then empties it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

impl Journal {
    /// Open (creating) the journal in `run_dir`, continuing after `seq`
    /// (the last entry the snapshot holds).
    pub fn open(run_dir: &Path, seq: u64) -> Result<Journal, RecordError> {
        let path = run_dir.join(JOURNAL_FILE);
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| RecordError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Journal { path, file, seq })
    }

    /// Sequence number of the last entry written.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Append the current records of `stages` as one write; with `durable`,
    /// also `fdatasync` (group commit: several changes, one sync). Entries
    /// that only say a stage started need no sync: lost to a power cut, the
    /// stage is pending again and simply runs on resume, as it would from
    /// `running`.
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
        let io = |source| RecordError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        if durable {
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// Drop every entry (they are in the snapshot just written).
    pub fn clear(&mut self) -> Result<(), RecordError> {
        self.file.set_len(0).map_err(|source| RecordError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Apply the journal in `run_dir` to `record` (entries newer than its
/// `journal_seq`, in order, stopping at the first incomplete line).
pub fn replay(run_dir: &Path, record: &mut RunRecord) -> Result<(), RecordError> {
    let path = run_dir.join(JOURNAL_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(RecordError::Io { path, source }),
    };
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<'_>>(line) else {
            // A torn write at the end: what came before is complete.
            break;
        };
        if entry.seq <= record.journal_seq {
            continue;
        }
        record.journal_seq = entry.seq;
        record.updated_at = entry.at.into_owned();
        if let Some(slot) = record.stages.get_mut(entry.stage.as_ref()) {
            *slot = entry.record.into_owned();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RunStatus, StageState, SCHEMA};
    use indexmap::IndexMap;

    fn record() -> RunRecord {
        let mut stages = IndexMap::new();
        stages.insert("a".to_string(), StageRecord::pending("a"));
        stages.insert("b".to_string(), StageRecord::pending("b"));
        RunRecord {
            schema: SCHEMA,
            run_id: "r".into(),
            pipeline: "p".into(),
            pipeline_path: PathBuf::from("/x/sluice.yaml"),
            pipeline_digest: "sha256:00".into(),
            status: RunStatus::Running,
            created_at: "t".into(),
            updated_at: "t".into(),
            unsigned_plugins_allowed: false,
            policy: None,
            warnings: vec![],
            journal_seq: 0,
            stages,
        }
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
