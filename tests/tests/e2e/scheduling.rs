//! DAG scheduling: fail-fast, retries, --keep-going, parallelism.

use sluice_tests::Project;

#[test]
fn fail_fast_cancels_running_stages() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: failfast
stages:
  slow:
    uses: {fixture}
    timeout: 60s
    with: { mode: loop }
  broken:
    uses: {fixture}
    with: { mode: fail, message: "compiler exploded" }
  after:
    uses: {fixture}
    needs: [slow]
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run", "--jobs", "2"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["broken"]["state"], "failed");
    assert_eq!(
        record["stages"]["broken"]["reason"],
        "failed: compiler exploded"
    );
    assert_eq!(record["stages"]["slow"]["state"], "cancelled");
    assert_eq!(record["stages"]["after"]["state"], "skipped");
    assert!(
        run.stdout.contains("cancelled because `broken` failed"),
        "{}",
        run.all()
    );
}

#[test]
fn keep_going_runs_independent_stages() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: keepgoing
stages:
  broken:
    uses: {fixture}
    with: { mode: fail, message: nope }
  independent:
    uses: {fixture}
    with: { mode: pass }
  dependent:
    uses: {fixture}
    needs: [broken]
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run", "--keep-going", "--jobs", "1"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["independent"]["state"], "passed");
    assert_eq!(record["stages"]["dependent"]["state"], "skipped");
    assert!(record["stages"]["dependent"]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("`broken` did not pass"));
}

#[test]
fn retries_run_a_failing_stage_again() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: retries
stages:
  flaky:
    uses: {fixture}
    retries: 2
    with: { mode: fail, message: "still broken" }
  badconfig:
    uses: {fixture}
    retries: 2
    with: { mode: badconfig }
"#,
    );
    let run = p.sluice(&["run", "--keep-going"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["flaky"]["attempts"], 3);
    assert!(run.stdout.contains("retrying (2/3)"), "{}", run.all());
    // Configuration errors never get better by retrying.
    assert_eq!(record["stages"]["badconfig"]["attempts"], 1);
    let reason = record["stages"]["badconfig"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.starts_with("invalid config:"), "{reason}");
    let log = p.log(&run.run_id(), "flaky");
    assert!(log.contains("attempt 3 of stage `flaky`"), "{log}");
}

#[test]
fn independent_stages_run_in_parallel() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: parallel
stages:
  a: { uses: "{fixture}", with: { mode: sleep, seconds: 1 } }
  b: { uses: "{fixture}", with: { mode: sleep, seconds: 1 } }
  c: { uses: "{fixture}", with: { mode: sleep, seconds: 1 } }
  join: { uses: "{fixture}", needs: [a, b, c], with: { mode: pass } }
"#,
    );
    let order = |jobs: &str| -> Vec<String> {
        let run = p.sluice(&["run", "--jobs", jobs, "--json"]);
        assert_eq!(run.code, 0, "{}", run.all());
        run.events()
            .iter()
            .filter(|e| e["event"] == "stage_started" || e["event"] == "stage_finished")
            .map(|e| {
                let kind = if e["event"] == "stage_started" {
                    "start"
                } else {
                    "end"
                };
                format!("{kind} {}", e["stage"].as_str().unwrap_or_default())
            })
            .collect()
    };
    // With three jobs, all three start before any of them ends.
    let parallel = order("3");
    assert_eq!(
        &parallel[..3],
        ["start a", "start b", "start c"],
        "{parallel:?}"
    );
    assert_eq!(parallel.last().map(String::as_str), Some("end join"));
    // With one job they run one at a time, in file order.
    let serial = order("1");
    assert_eq!(
        serial,
        [
            "start a",
            "end a",
            "start b",
            "end b",
            "start c",
            "end c",
            "start join",
            "end join"
        ]
    );
}
