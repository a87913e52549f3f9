//! Approvals, resume after a pause, and resume after `kill -9`.

use std::time::{Duration, Instant};

use sluice_tests::Project;

#[test]
fn approval_pauses_the_run_until_approved() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: gated-deploy
stages:
  build:
    uses: {fixture}
    grants: { workspace: write }
    with: { mode: count, file: build-runs.txt }
  deploy:
    uses: {fixture}
    needs: [build]
    approval: required
    environment: production
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    assert!(
        run.stdout.contains(&format!("sluice approve {id} deploy")),
        "{}",
        run.all()
    );
    let record = p.record(&id);
    assert_eq!(record["status"], "paused");
    assert_eq!(record["stages"]["deploy"]["state"], "awaiting-approval");

    // Resuming without approval pauses again and runs nothing twice.
    let again = p.sluice(&["run", "--resume", &id]);
    assert_eq!(again.code, 4, "{}", again.all());

    let wrong = p.sluice(&["approve", &id, "build"]);
    assert_eq!(wrong.code, 2, "{}", wrong.all());
    assert!(
        wrong.stderr.contains("not awaiting approval"),
        "{}",
        wrong.all()
    );

    let ok = p.sluice(&["approve", &id, "deploy", "--by", "alice"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let record = p.record(&id);
    assert_eq!(record["status"], "passed");
    assert_eq!(record["stages"]["deploy"]["approval"]["by"], "alice");
    assert_eq!(
        p.read("build-runs.txt").lines().count(),
        1,
        "build ran again"
    );

    let show = p.sluice(&["runs", "show", &id]);
    assert!(show.stdout.contains("approved by alice"), "{}", show.all());
}

#[test]
fn an_inconclusive_stage_can_pause_the_run_and_run_again_once_approved() {
    let p = Project::new();
    // `mode: count` reports no `analysis.score`, so the gate is
    // inconclusive: with `on-inconclusive: pause` that pauses the run.
    p.write(
        "sluice.yaml",
        r#"version: 1
name: paused-analysis
stages:
  canary:
    uses: {fixture}
    grants: { workspace: write }
    with: { mode: count, file: canary-runs.txt }
    on-inconclusive: pause
    gates:
      - { metric: analysis.score, min: 95 }
  promote:
    uses: {fixture}
    needs: [canary]
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    assert!(
        run.stdout.contains(&format!("sluice approve {id} canary")),
        "{}",
        run.all()
    );
    let record = p.record(&id);
    assert_eq!(record["status"], "paused");
    assert_eq!(record["stages"]["canary"]["state"], "awaiting-approval");
    let reason = record["stages"]["canary"]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("paused: inconclusive gate"), "{reason}");
    assert_eq!(record["stages"]["promote"]["state"], "pending");

    // Without approval, resuming does not run the stage again.
    let again = p.sluice(&["run", "--resume", &id]);
    assert_eq!(again.code, 4, "{}", again.all());
    assert_eq!(p.read("canary-runs.txt").lines().count(), 1);

    // Approved, it runs again; still inconclusive, it pauses again and
    // needs a fresh approval.
    let ok = p.sluice(&["approve", &id, "canary", "--by", "bob"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 4, "{}", resumed.all());
    assert_eq!(p.read("canary-runs.txt").lines().count(), 2);
    let record = p.record(&id);
    assert_eq!(record["stages"]["canary"]["state"], "awaiting-approval");
    assert!(record["stages"]["canary"]["approval"].is_null());

    // The default stays safe: inconclusive blocks.
    p.write(
        "block.yaml",
        r#"version: 1
name: blocked-analysis
stages:
  canary:
    uses: {fixture}
    with: { mode: pass }
    gates:
      - { metric: analysis.score, min: 95 }
"#,
    );
    let blocked = p.sluice(&["run", "block.yaml"]);
    assert_eq!(blocked.code, 1, "{}", blocked.all());
}

fn wait_for(p: &Project, what: &str, check: impl Fn(&Project) -> bool) {
    let start = Instant::now();
    while !check(p) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn only_run_id(p: &Project) -> Option<String> {
    let dir = std::fs::read_dir(p.state_dir().join("runs")).ok()?;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .next()
}

#[test]
fn a_killed_run_resumes_without_redoing_finished_stages() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: crashy
stages:
  produce:
    uses: {fixture}
    with: { mode: pass, text: "survives a crash\n" }
  counted:
    uses: {fixture}
    needs: [produce]
    grants: { workspace: write }
    with: { mode: count, file: counted.txt }
  slow:
    uses: {fixture}
    needs: [counted]
    grants: { env: [SLOW_SECONDS] }
    with: { mode: sleep, seconds: "${{ env.SLOW_SECONDS }}" }
  consume:
    uses: {fixture}
    needs: [produce, slow]
    with: { mode: read }
"#,
    );
    let mut child = p
        .command(&["run", "--jobs", "1"])
        .env("SLOW_SECONDS", "60")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sluice");
    wait_for(&p, "stage `slow` to start", |p| {
        // `run.json` is only the snapshot; `record` adds the journal.
        only_run_id(p)
            .filter(|id| p.state_dir().join(format!("runs/{id}/run.json")).is_file())
            .is_some_and(|id| p.record(&id)["stages"]["slow"]["state"] == "running")
    });
    // SIGKILL: no cleanup code runs.
    child.kill().expect("kill -9");
    let _ = child.wait();
    let id = only_run_id(&p).expect("run id");
    let record = p.record(&id);
    assert_eq!(record["status"], "running");
    assert_eq!(record["stages"]["produce"]["state"], "passed");

    let list = p.sluice(&["runs", "list"]);
    assert!(list.stdout.contains("interrupted"), "{}", list.all());

    let resumed = p.sluice_env(&["run", "--resume", &id], &[("SLOW_SECONDS", "0")]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let record = p.record(&id);
    assert_eq!(record["status"], "passed");
    assert_eq!(
        p.read("counted.txt").lines().count(),
        1,
        "a finished stage ran again"
    );
    assert_eq!(
        record["stages"]["consume"]["outputs"]["first"],
        "survives a crash"
    );
    assert_eq!(record["stages"]["produce"]["attempts"], 1);
}

#[test]
fn resume_refuses_a_changed_pipeline_and_unknown_runs() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: r\nstages:\n  a: { uses: \"{fixture}\", approval: required, with: { mode: pass } }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    p.write(
        "sluice.yaml",
        "version: 1\nname: r\nstages:\n  a: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 2, "{}", resumed.all());
    assert!(
        resumed.stderr.contains("changed since the run started"),
        "{}",
        resumed.all()
    );

    let unknown = p.sluice(&["run", "--resume", "no-such-run"]);
    assert_eq!(unknown.code, 2, "{}", unknown.all());
    assert!(
        unknown.stderr.contains("no run `no-such-run`"),
        "{}",
        unknown.all()
    );
}
