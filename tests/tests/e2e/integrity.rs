//! The compile cache and the artifact store heal instead of lying: a damaged
//! cache entry is compiled again, a resumed run re-runs a passed producer
//! whose blobs are gone or damaged, storing a blob again replaces a damaged
//! copy, and leftovers of killed runners are swept.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sluice_tests::Project;

/// The `.cwasm` entries in a compile cache directory.
fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    entries
}

/// Whether the `plugin_loaded` event of a `--json` run says it was cached.
fn loaded_from_cache(run: &sluice_tests::Run) -> bool {
    run.events()
        .iter()
        .find(|e| e["event"] == "plugin_loaded")
        .and_then(|e| e["cached"].as_bool())
        .unwrap_or_else(|| panic!("no plugin_loaded event:\n{}", run.all()))
}

#[test]
fn a_cache_entry_with_a_flipped_byte_is_compiled_again_and_rewritten() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: cache\nstages:\n  only: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    // A private cache: the shared one must never be damaged.
    let cache = p.root().join("cache");
    let cache_arg = cache.display().to_string();
    let run = |what: &str| {
        let run = p.sluice(&["--cache-dir", &cache_arg, "run", "--json"]);
        assert_eq!(run.code, 0, "{what}: {}", run.all());
        run
    };

    let first = run("first run");
    assert!(!loaded_from_cache(&first), "{}", first.all());
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let mut bytes = std::fs::read(entry).expect("read the entry");
    // The middle of the fixture's entry is compiled code.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(entry, &bytes).expect("damage the entry");

    let damaged = run("run over the damaged entry");
    assert!(
        !loaded_from_cache(&damaged),
        "a damaged entry was used as a hit:\n{}",
        damaged.all()
    );
    let name = entry
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        damaged.stderr.contains("compile cache entry")
            && damaged.stderr.contains(&name)
            && damaged.stderr.contains("compiling the plugin again"),
        "no warning naming the entry:\n{}",
        damaged.all()
    );
    let rewritten = std::fs::read(entry).expect("the entry was written again");
    assert_ne!(rewritten, bytes, "the damaged entry is still there");

    let again = run("run after the rewrite");
    assert!(loaded_from_cache(&again), "{}", again.all());
    assert!(
        !again.stderr.contains("compile cache entry"),
        "{}",
        again.all()
    );
}

/// The pipeline of the resume tests: `consume` waits for approval after
/// `produce` passed.
const PRODUCE_CONSUME: &str = r#"version: 1
name: heal
stages:
  produce:
    uses: {fixture}
    with: { mode: pass, text: "original\n" }
  consume:
    uses: {fixture}
    needs: [produce]
    approval: required
    with: { mode: read }
"#;

/// The blob of `produce`'s `greeting.txt` in run `id`.
fn greeting_blob(p: &Project, id: &str) -> PathBuf {
    let record = p.record(id);
    let digest = record["stages"]["produce"]["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "greeting.txt"))
        .and_then(|a| a["digest"].as_str())
        .unwrap_or_else(|| panic!("no greeting.txt in {record:#}"))
        .to_owned();
    let hex = digest.trim_start_matches("sha256:");
    p.state_dir()
        .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

/// Same size, other bytes: what a disk error or a stray edit leaves.
fn corrupt(blob: &Path) {
    let mut perms = std::fs::metadata(blob).expect("blob").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(blob, perms).expect("chmod");
    std::fs::write(blob, b"tampered\n").expect("corrupt the blob");
}

fn delete(blob: &Path) {
    std::fs::remove_file(blob).expect("delete the blob");
}

/// How many times `produce` ran in run `id` (its log grows by one
/// "fixture mode" line per attempt, across resumes).
fn produce_runs(p: &Project, id: &str) -> usize {
    p.log(id, "produce").matches("fixture mode `pass`").count()
}

/// Pause after `produce`, damage its blob, approve, resume: `produce` runs
/// again with a warning naming it, and `consume` reads the right bytes.
/// Then a new run of the same pipeline over a blob damaged again passes too.
fn resume_heals(damage: fn(&Path), what: &str) {
    let p = Project::new();
    p.write("sluice.yaml", PRODUCE_CONSUME);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    assert_eq!(produce_runs(&p, &id), 1);
    let blob = greeting_blob(&p, &id);
    damage(&blob);

    let approve = p.sluice(&["approve", &id, "consume"]);
    assert_eq!(approve.code, 0, "{}", approve.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    assert_eq!(produce_runs(&p, &id), 2, "produce did not run again");
    let warning = resumed
        .stdout
        .lines()
        .find(|l| l.starts_with("warning: stage `produce` runs again"))
        .unwrap_or_else(|| panic!("no warning about produce:\n{}", resumed.all()));
    assert!(
        warning.contains("greeting.txt")
            && warning.contains(what)
            && warning.contains(&blob.display().to_string()),
        "{warning}"
    );
    let record = p.record(&id);
    assert_eq!(record["status"], "passed");
    assert_eq!(record["stages"]["consume"]["outputs"]["first"], "original");
    assert!(
        record["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str() == Some(warning.trim_start_matches("warning: ")))),
        "the warning is not in the record: {:#}",
        record["warnings"]
    );
    assert_eq!(std::fs::read(&blob).expect("blob"), b"original\n");

    // A new run over a blob damaged again is not poisoned by it: storing
    // `produce`'s output again replaces the damaged copy.
    damage(&blob);
    let fresh = p.sluice(&["run"]);
    assert_eq!(fresh.code, 4, "{}", fresh.all());
    let fresh_id = fresh.run_id();
    assert_eq!(std::fs::read(&blob).expect("blob"), b"original\n");
    let approve = p.sluice(&["approve", &fresh_id, "consume"]);
    assert_eq!(approve.code, 0, "{}", approve.all());
    let finished = p.sluice(&["run", "--resume", &fresh_id]);
    assert_eq!(finished.code, 0, "{}", finished.all());
    assert_eq!(produce_runs(&p, &fresh_id), 1, "{}", finished.all());
    let record = p.record(&fresh_id);
    assert_eq!(record["stages"]["consume"]["outputs"]["first"], "original");
}

#[test]
fn resume_runs_a_producer_whose_blob_is_corrupt_again() {
    resume_heals(corrupt, "is corrupt");
}

#[test]
fn resume_runs_a_producer_whose_blob_is_gone_again() {
    resume_heals(delete, "is missing");
}

#[test]
fn a_new_run_warns_when_it_replaces_a_corrupt_blob() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: store\nstages:\n  produce: { uses: \"{fixture}\", with: { mode: pass, text: \"original\\n\" } }\n",
    );
    let first = p.sluice(&["run"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let blob = greeting_blob(&p, &first.run_id());
    corrupt(&blob);
    let second = p.sluice(&["run"]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stderr.contains("is damaged") && second.stderr.contains(&blob.display().to_string()),
        "{}",
        second.all()
    );
    assert_eq!(std::fs::read(&blob).expect("blob"), b"original\n");
}

#[test]
fn a_run_sweeps_what_killed_runners_left() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: sweep\nstages:\n  a: { uses: \"{fixture}\", approval: required, with: { mode: pass } }\n",
    );
    let paused = p.sluice(&["run"]);
    assert_eq!(paused.code, 4, "{}", paused.all());
    let id = paused.run_id();
    let state = p.state_dir();
    let aged = |rel: &str, age: Duration| {
        let path = state.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"left by a killed runner").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now() - age))
            .expect("date the file");
        path
    };
    let hours = Duration::from_secs(3 * 60 * 60);
    let minute = Duration::from_secs(60);
    let old_cas_tmp = aged("cas/tmp/.tmpOLDcas", hours);
    let young_cas_tmp = aged("cas/tmp/.tmpNEWcas", minute);
    let old_run_tmp = aged(&format!("runs/{id}/.tmpOLDrun"), hours);
    let young_run_tmp = aged(&format!("runs/{id}/.tmpNEWrun"), minute);
    let leftover_out = aged(&format!("runs/{id}/work/.out-3/half-written.bin"), minute);

    p.write(
        "other.yaml",
        "version: 1\nname: other\nstages:\n  b: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    let other = p.sluice(&["run", "other.yaml"]);
    assert_eq!(other.code, 0, "{}", other.all());
    for gone in [&old_cas_tmp, &old_run_tmp, &leftover_out] {
        assert!(!gone.exists(), "{} was not swept", gone.display());
    }
    for kept in [&young_cas_tmp, &young_run_tmp] {
        assert!(kept.exists(), "{} was swept too early", kept.display());
    }
    // The paused run still resumes.
    let approve = p.sluice(&["approve", &id, "a"]);
    assert_eq!(approve.code, 0, "{}", approve.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
}

#[test]
fn gc_removes_only_blobs_no_run_references() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: gc\nstages:\n  produce: { uses: \"{fixture}\", with: { mode: pass, text: \"collect me\\n\" } }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let blob = greeting_blob(&p, &id);
    // Older than the hour during which a blob counts as in flight.
    std::fs::File::open(&blob)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(3 * 60 * 60)))
        .expect("date the blob");
    let blob_text = blob.display().to_string();

    let kept = p.sluice(&["gc"]);
    assert_eq!(kept.code, 0, "{}", kept.all());
    assert!(
        blob.exists(),
        "a referenced blob was collected:\n{}",
        kept.all()
    );

    // Pruning the run leaves its blobs unreferenced.
    std::fs::remove_dir_all(p.state_dir().join("runs").join(&id)).expect("delete the run");
    let dry = p.sluice(&["gc", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(
        dry.stdout.contains(&format!("would remove {blob_text}")),
        "{}",
        dry.all()
    );
    assert!(blob.exists(), "--dry-run removed a blob");
    let collected = p.sluice(&["gc"]);
    assert_eq!(collected.code, 0, "{}", collected.all());
    assert!(
        collected.stdout.contains(&format!("removed {blob_text}")),
        "{}",
        collected.all()
    );
    assert!(!blob.exists());
}
