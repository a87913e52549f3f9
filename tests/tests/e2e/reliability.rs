//! The run record under less polite conditions than a clean exit: a signal
//! to the runner, a torn journal tail, a corrupt journal line, and a loop of
//! `kill -9` at random points (issue #15).

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::Project;

/// The run directory of the only run of `p`, once it has a snapshot.
fn only_run(p: &Project) -> Option<String> {
    let dir = std::fs::read_dir(p.state_dir().join("runs")).ok()?;
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|id| p.state_dir().join(format!("runs/{id}/run.json")).is_file())
}

fn journal(p: &Project, id: &str) -> PathBuf {
    p.state_dir().join(format!("runs/{id}/journal.jsonl"))
}

/// Waits (bounded) until `what` holds; panics naming it otherwise.
fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn stage_state(p: &Project, id: &str, stage: &str) -> String {
    p.record(id)["stages"][stage]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn spawn(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = p.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn kill9(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_interrupted_run_records_its_cancelled_stages_and_resumes() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: interrupted
stages:
  first:
    uses: {fixture}
    with: { mode: pass }
  slow:
    uses: {fixture}
    needs: [first]
    grants: { env: [SLOW] }
    with: { mode: sleep, seconds: "${{ env.SLOW }}" }
  last:
    uses: {fixture}
    needs: [slow]
    with: { mode: pass }
"#,
    );
    let child = spawn(&p, &["run"], &[("SLOW", "60")]);
    let pid = child.id();
    wait_for("stage `slow` to run", Duration::from_secs(60), || {
        only_run(&p).is_some_and(|id| stage_state(&p, &id, "slow") == "running")
    });
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let id = only_run(&p).expect("run id");
    assert!(
        stderr.contains(&format!("sluice run --resume {id}")),
        "{stderr}"
    );

    let record = p.record(&id);
    assert_eq!(record["status"], "interrupted", "{record:#}");
    assert_eq!(record["stages"]["first"]["state"], "passed");
    assert_eq!(record["stages"]["slow"]["state"], "cancelled");
    let reason = record["stages"]["slow"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("interrupted by SIGINT"), "{reason}");
    assert_eq!(record["stages"]["last"]["state"], "pending");
    let list = p.sluice(&["runs", "list"]);
    assert!(list.stdout.contains("interrupted"), "{}", list.all());

    let resumed = p.sluice_env(&["run", "--resume", &id], &[("SLOW", "0")]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let record = p.record(&id);
    assert_eq!(record["status"], "passed");
    assert_eq!(record["stages"]["first"]["attempts"], 1, "first ran again");
}

/// The torn-tail case of the issue: half a line at the end of the journal,
/// a resume, another kill, another resume — no finished stage runs twice.
#[test]
fn a_torn_journal_tail_never_reruns_finished_stages() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: torn
stages:
  a:
    uses: {fixture}
    grants: { workspace: write }
    with: { mode: count, file: a.txt }
  wait1:
    uses: {fixture}
    needs: [a]
    grants: { env: [S1] }
    with: { mode: sleep, seconds: "${{ env.S1 }}" }
  b:
    uses: {fixture}
    needs: [wait1]
    grants: { workspace: write }
    with: { mode: count, file: b.txt }
  wait2:
    uses: {fixture}
    needs: [b]
    grants: { env: [S2] }
    with: { mode: sleep, seconds: "${{ env.S2 }}" }
  c:
    uses: {fixture}
    needs: [wait2]
    grants: { workspace: write }
    with: { mode: count, file: c.txt }
"#,
    );
    let child = spawn(&p, &["run"], &[("S1", "60"), ("S2", "60")]);
    wait_for("stage `wait1` to run", Duration::from_secs(60), || {
        only_run(&p).is_some_and(|id| stage_state(&p, &id, "wait1") == "running")
    });
    kill9(child);
    let id = only_run(&p).expect("run id");

    // A write cut short by a full disk or a power cut.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(journal(&p, &id))
        .and_then(|mut f| {
            f.write_all(br#"{"seq":99,"at":"2026-01-01T00:00:00Z","stage":"wait1","started_a"#)
        })
        .expect("tear the journal");

    // The resume finishes wait1 and b, then is killed in wait2.
    let child = spawn(&p, &["run", "--resume", &id], &[("S1", "0"), ("S2", "60")]);
    wait_for("stage `wait2` to run", Duration::from_secs(60), || {
        stage_state(&p, &id, "wait2") == "running"
    });
    kill9(child);
    assert_eq!(stage_state(&p, &id, "b"), "passed");

    let last = p.sluice_env(&["run", "--resume", &id], &[("S1", "0"), ("S2", "0")]);
    assert_eq!(last.code, 0, "{}", last.all());
    for f in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(
            p.read(f).lines().count(),
            1,
            "{f}: a finished stage ran again"
        );
    }
    // Every line of the journal is whole again.
    let text = std::fs::read_to_string(journal(&p, &id)).expect("journal");
    for (n, line) in text.lines().enumerate() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "line {}: {line}",
            n + 1
        );
    }
}

#[test]
fn a_corrupt_journal_line_stops_the_resume_with_its_place_and_the_way_out() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: corrupt
stages:
  a:
    uses: {fixture}
    grants: { workspace: write }
    with: { mode: count, file: a.txt }
  b:
    uses: {fixture}
    needs: [a]
    approval: required
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    let path = journal(&p, &id);
    let text = std::fs::read_to_string(&path).expect("journal");
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    lines.insert(1, "{\"seq\": 2, \"at\": garbage");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");

    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 2, "{}", resumed.all());
    assert!(
        resumed.stderr.contains("journal.jsonl"),
        "{}",
        resumed.all()
    );
    assert!(resumed.stderr.contains("line 2"), "{}", resumed.all());
    assert!(
        resumed.stderr.contains(&format!("sluice runs repair {id}")),
        "{}",
        resumed.all()
    );
    let show = p.sluice(&["runs", "show", &id]);
    assert_eq!(show.code, 2, "{}", show.all());

    // The way out the message gives: keep what is intact, then resume.
    let repair = p.sluice(&["runs", "repair", &id]);
    assert_eq!(repair.code, 0, "{}", repair.all());
    assert!(
        repair.stdout.contains("kept the journal up to line 1"),
        "{}",
        repair.all()
    );
    assert!(!journal(&p, &id).exists());
    assert_eq!(p.record(&id)["stages"]["a"]["state"], "passed");
    let again = p.sluice(&["runs", "repair", &id]);
    assert!(
        again.stdout.contains("nothing to repair"),
        "{}",
        again.all()
    );
    let approve = p.sluice(&["approve", &id, "b"]);
    assert_eq!(approve.code, 0, "{}", approve.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    assert_eq!(p.record(&id)["status"], "passed");
    assert_eq!(p.read("a.txt").lines().count(), 1, "`a` ran again");
    // The new journal continues the snapshot and is read back whole.
    let show = p.sluice(&["runs", "show", &id, "--json"]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert!(
        show.stdout.contains("\"status\": \"passed\""),
        "{}",
        show.all()
    );
}

/// A small deterministic generator (the seed is printed, so a failure can be
/// replayed with `SLUICE_CRASH_SEED`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The runs of `p` that have a snapshot.
fn runs(p: &Project) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(p.state_dir().join("runs"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| p.state_dir().join(format!("runs/{id}/run.json")).is_file())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A finished crash-loop run: every stage passed, no stage recorded as
/// passed ever went back to another state, every artifact's bytes match
/// its digest, and the last consumer read what the producer wrote.
fn check_crash_loop_run(p: &Project, id: &str) {
    let record = p.record(id);
    assert_eq!(record["status"], "passed", "{record:#}");
    let stages = record["stages"].as_object().expect("stages");
    assert_eq!(stages.len(), 8);
    for (name, s) in stages {
        assert_eq!(s["state"], "passed", "{name}: {s:#}");
    }
    let text = std::fs::read_to_string(journal(p, id)).expect("journal");
    let mut passed: std::collections::HashSet<String> = Default::default();
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("whole journal lines");
        let stage = entry["stage"].as_str().unwrap_or_default().to_string();
        let state = entry["record"]["state"].as_str().unwrap_or_default();
        if passed.contains(&stage) {
            panic!("`{stage}` went to `{state}` after it had passed:\n{text}");
        }
        if state == "passed" {
            passed.insert(stage);
        }
    }
    let mut checked = 0;
    for (name, s) in stages {
        for a in s["artifacts"].as_array().into_iter().flatten() {
            let digest = a["digest"].as_str().unwrap_or_default();
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let blob = p
                .state_dir()
                .join("cas/sha256")
                .join(&hex[..2])
                .join(&hex[2..]);
            assert_eq!(sha256_of(&blob), hex, "{name}: {}", a["name"]);
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} artifacts checked");
    assert_eq!(
        record["stages"]["read2"]["outputs"]["first"],
        "second artifact"
    );
}

/// 20 `kill -9` at random points of an 8-stage pipeline with artifacts,
/// including kills of resumes, each followed by a resume: every run ends
/// with all stages passed, no stage recorded as passed ever ran again, and
/// every artifact's bytes match its digest. A run that reaches its end
/// between two kills is checked and a new one started, until 20 kills have
/// hit a live runner.
#[test]
fn twenty_kills_at_random_points_lose_nothing_and_redo_nothing() {
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("crash loop seed {seed} (SLUICE_CRASH_SEED={seed} replays it)");
    let mut rng = Lcg(seed);
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: crash-loop
stages:
  make1:
    uses: {fixture}
    with: { mode: pass, text: "first artifact\n" }
  nap1:
    uses: {fixture}
    with: { mode: sleep, seconds: 0.15 }
  make2:
    uses: {fixture}
    needs: [make1, nap1]
    with: { mode: pass, text: "second artifact\n", version: "2.0.0" }
  count1:
    uses: {fixture}
    needs: [make1]
    grants: { workspace: write }
    with: { mode: count, file: count1.txt }
  nap2:
    uses: {fixture}
    needs: [make2]
    with: { mode: sleep, seconds: 0.15 }
  read1:
    uses: {fixture}
    needs: [make1, make2]
    with: { mode: read }
  count2:
    uses: {fixture}
    needs: [read1, nap2]
    grants: { workspace: write }
    with: { mode: count, file: count2.txt }
  read2:
    uses: {fixture}
    needs: [make2, count2]
    with: { mode: read }
"#,
    );
    let mut current: Option<String> = None;
    let (mut kills, mut finished_runs) = (0, 0);
    for _ in 0..200 {
        if kills == 20 {
            break;
        }
        let before = runs(&p);
        let args: Vec<String> = match &current {
            Some(id) => vec!["run".into(), "--resume".into(), id.clone()],
            None => vec!["run".into(), "--jobs".into(), "2".into()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = spawn(&p, &args, &[]);
        std::thread::sleep(Duration::from_millis(rng.next() % 600));
        if child.try_wait().ok().flatten().is_none() {
            kills += 1;
        }
        kill9(child);
        if current.is_none() {
            current = runs(&p).into_iter().find(|id| !before.contains(id));
        }
        if let Some(id) = current.clone() {
            if p.record(&id)["status"] == "passed" {
                check_crash_loop_run(&p, &id);
                finished_runs += 1;
                current = None;
            }
        }
    }
    assert_eq!(kills, 20, "only {kills} kills hit a live runner");
    if let Some(id) = current {
        let last = p.sluice(&["run", "--resume", &id]);
        assert_eq!(last.code, 0, "{}", last.all());
        check_crash_loop_run(&p, &id);
        finished_runs += 1;
    }
    eprintln!("20 kills over {finished_runs} runs");
    assert!(finished_runs >= 1);
}
