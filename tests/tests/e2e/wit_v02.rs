//! WIT `sluice:stage@0.2.0` through the real binary: 0.1 and 0.2 plugins
//! in one pipeline, exec output streamed live (console and `--json`),
//! typed findings written as SARIF by the runner, artifact roles and
//! annotations, progress and leveled logs, and cancellation with a grace
//! period (fail-fast and timeouts).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_tests::{plugin, Project};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Run `sluice args…` and read its stdout line by line as it arrives:
/// each line with the wall-clock time (ms) it was read.
fn run_streaming(p: &Project, args: &[&str]) -> (Vec<(u128, String)>, i32) {
    let mut child = p
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        lines.push((now_ms(), line));
    }
    let status = child.wait().expect("wait").code().unwrap_or(-1);
    (lines, status)
}

/// `out <i> <ms>` / `err <i> <ms>` inside a line: (stream, i, ms).
fn stamped(line: &str) -> Option<(String, u32, u128)> {
    let start = line.find("out ").or_else(|| line.find("err "))?;
    let mut parts = line[start..].split_whitespace();
    let stream = parts.next()?.to_owned();
    let i = parts.next()?.parse().ok()?;
    let ms = parts.next()?.parse().ok()?;
    Some((stream, i, ms))
}

const STREAM: &str = "version: 1
name: stream
stages:
  s:
    uses: {fixture}
    with: { mode: stream }
    grants: { exec: [sh] }
";

/// The acceptance test of issue 18: a program printing a line every 100 ms
/// for 2 s, on stdout and stderr in turn; every line reaches `--json` and
/// the console within 200 ms of being written, in the order written.
fn assert_streamed(lines: &[(u128, String)], what: &str) {
    let got: Vec<(u128, (String, u32, u128))> = lines
        .iter()
        .filter_map(|(at, l)| stamped(l).map(|s| (*at, s)))
        .collect();
    assert_eq!(got.len(), 40, "{what}: 20 lines on each stream: {lines:#?}");
    for (n, (arrived, (stream, i, written))) in got.iter().enumerate() {
        let lag = arrived.saturating_sub(*written);
        assert!(
            lag <= 200,
            "{what}: `{stream} {i}` arrived {lag} ms after it was written"
        );
        let expected = if n % 2 == 0 { "out" } else { "err" };
        // The program counts from 1.
        assert_eq!(
            (stream.as_str(), *i as usize),
            (expected, n / 2 + 1),
            "{what}: order"
        );
    }
    let first = got.first().map(|g| g.1 .2).unwrap_or(0);
    let last = got.last().map(|g| g.1 .2).unwrap_or(0);
    assert!(
        last - first >= 1500,
        "{what}: the lines were spread over ~2 s"
    );
}

#[test]
fn exec_output_reaches_json_and_the_console_within_200_ms_in_order() {
    let p = Project::new();
    p.write("sluice.yaml", STREAM);
    let (lines, status) = run_streaming(&p, &["run", "--json"]);
    assert_eq!(status, 0, "{lines:#?}");
    // In `--json`, the lines are `stage_log` events; their `ts` too is
    // within 200 ms of the write.
    let logs: Vec<(u128, String)> = lines
        .iter()
        .filter_map(|(at, l)| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["event"] == "stage_log").then(|| {
                let ts = v["ts"].as_u64().unwrap_or(0) as u128 / 1000;
                if let Some((_, i, written)) = stamped(v["line"].as_str().unwrap_or("")) {
                    assert!(ts.saturating_sub(written) <= 200, "ts of line {i}: {v}");
                }
                (*at, v["line"].as_str().unwrap_or("").to_owned())
            })
        })
        .collect();
    assert_streamed(&logs, "--json");

    let (lines, status) = run_streaming(&p, &["run"]);
    assert_eq!(status, 0, "{lines:#?}");
    assert_streamed(&lines, "console");
    assert!(
        lines.iter().any(|(_, l)| l.contains("│ s: out 1 ")),
        "console lines carry the stage prefix: {lines:#?}"
    );
}

#[test]
fn a_0_1_plugin_and_a_0_2_plugin_run_in_one_pipeline() {
    let p = Project::new();
    let legacy = plugin("legacy-v01");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1
name: mixed
stages:
  legacy:
    uses: {}
  modern:
    uses: {{fixture}}
    needs: [legacy]
    with: {{ mode: roles }}
",
            legacy.display()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let legacy = &record["stages"]["legacy"];
    let modern = &record["stages"]["modern"];
    assert_eq!(legacy["state"], "passed");
    assert_eq!(modern["state"], "passed");
    assert_eq!(legacy["plugin"]["wit"], "0.1.0", "{legacy:#}");
    assert_eq!(modern["plugin"]["wit"], "0.2.0", "{modern:#}");
    assert_eq!(legacy["outputs"]["wit"], "0.1.0");
    assert_eq!(
        p.artifact(legacy, "legacy.txt").trim_end(),
        "built against sluice:stage@0.1.0"
    );
    // The 0.2 stage declared roles and annotations; they are recorded.
    let artifacts = modern["artifacts"].as_array().cloned().unwrap_or_default();
    let roles: Vec<&str> = artifacts
        .iter()
        .filter_map(|a| a["role"].as_str())
        .collect();
    assert!(roles.contains(&"report"), "{artifacts:#?}");
    assert!(roles.contains(&"container-image"), "{artifacts:#?}");
    assert!(
        artifacts
            .iter()
            .any(|a| a["annotations"].as_object().is_some_and(|m| !m.is_empty())),
        "{artifacts:#?}"
    );
    // `plugin inspect` says which version each targets.
    let inspect = p.sluice(&[
        "plugin",
        "inspect",
        &plugin("legacy-v01").display().to_string(),
    ]);
    assert!(
        inspect.stdout.contains("wit: sluice:stage@0.1.0"),
        "{}",
        inspect.all()
    );
    let inspect = p.sluice(&[
        "plugin",
        "inspect",
        &plugin("fixture").display().to_string(),
    ]);
    assert!(
        inspect.stdout.contains("wit: sluice:stage@0.2.0"),
        "{}",
        inspect.all()
    );
    assert!(
        inspect.stdout.contains("sluice:stage/plugin@0.2.0"),
        "{}",
        inspect.all()
    );
}

#[test]
fn a_0_1_plugin_denial_keeps_its_message() {
    let p = Project::new();
    let legacy = plugin("legacy-v01");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: mixed\nstages:\n  legacy:\n    uses: {}\n    with: {{ fail: true }}\n",
            legacy.display()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0);
    let record = p.record(&run.run_id());
    let reason = record["stages"]["legacy"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("denied: network example.com:443 is not granted"),
        "{reason}"
    );
}

#[test]
fn typed_findings_become_the_runners_sarif_and_bad_ones_fail_the_stage() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1
name: findings
stages:
  check:
    uses: {fixture}
    with: { mode: findings, count: 5 }
",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let stage = &record["stages"]["check"];
    let sarif_record = stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "findings.sarif").cloned())
        .unwrap_or_else(|| panic!("no findings.sarif: {stage:#}"));
    assert_eq!(sarif_record["media_type"], "application/sarif+json");
    assert_eq!(sarif_record["role"], "report");
    let sarif: serde_json::Value =
        serde_json::from_str(&p.artifact(stage, "findings.sarif")).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 5, "{sarif:#}");
    assert!(results
        .iter()
        .all(|r| r["ruleId"].is_string() && r["level"].is_string()));
    let log = p.log(&run.run_id(), "check");
    assert!(log.contains("5 findings"), "{log}");

    // A finding with a path outside the workspace fails the stage with
    // the rule it broke.
    p.write(
        "sluice.yaml",
        "version: 1
name: findings
stages:
  check:
    uses: {fixture}
    with: { mode: findings, bad: true }
",
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0);
    let record = p.record(&run.run_id());
    let reason = record["stages"]["check"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("bad finding"), "{reason}");
    assert!(
        reason.contains("must be relative to the workspace"),
        "{reason}"
    );
}

#[test]
fn progress_and_leveled_logs_reach_the_json_stream() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: progress\nstages:\n  s:\n    uses: {fixture}\n    with: { mode: progress }\n",
    );
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let events = run.events();
    let progress: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "stage_progress")
        .collect();
    assert!(!progress.is_empty(), "{events:#?}");
    let last = progress.last().expect("one");
    assert_eq!(
        last["done"], last["total"],
        "the last progress is kept: {last}"
    );
    let warn = events
        .iter()
        .find(|e| e["event"] == "stage_log" && e["level"] == "warn")
        .unwrap_or_else(|| panic!("a warn record: {events:#?}"));
    assert!(
        warn["fields"].as_object().is_some_and(|f| !f.is_empty()),
        "{warn}"
    );
    // The file keeps every level; the console hides debug/trace by default.
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("debug"), "{log}");
}

const CANCEL: &str = "version: 1
name: cancel
stages:
  broken:
    uses: {fixture}
    with: { mode: sleep, seconds: 1 }
  fails:
    uses: {fixture}
    needs: [broken]
    with: { mode: fail, message: boom }
  waiter:
    uses: {fixture}
    with: { mode: cancel-wait, marker: restored.txt, wait: 60 }
    grants: { workspace: write }
    grace-period: 20s
";

/// Fail-fast cancels the waiting stage; it is told, puts things back
/// (writes its marker) within its grace period, and the run ends then,
/// long before the stage's own 60 s.
#[test]
fn a_cancelled_stage_gets_its_grace_period_to_put_things_back() {
    let p = Project::new();
    p.write("sluice.yaml", CANCEL);
    let started = std::time::Instant::now();
    let run = p.sluice(&["run", "--jobs", "3"]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(started.elapsed().as_secs() < 30, "ended early");
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["waiter"]["state"], "cancelled",
        "{record:#}"
    );
    assert_eq!(p.read("restored.txt"), "restored");
    let log = p.log(&run.run_id(), "waiter");
    assert!(
        log.contains("cancelled: the stage has its grace period of 20s"),
        "{log}"
    );
    assert!(
        log.contains("the stage ended within its grace period"),
        "{log}"
    );
}

/// At its timeout a 0.2 stage is cancelled too, and may put things back
/// within its grace period; the attempt still fails as timed out.
#[test]
fn a_timed_out_stage_is_cancelled_before_it_is_dropped() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1
name: timeout
stages:
  waiter:
    uses: {fixture}
    with: { mode: cancel-wait, marker: restored.txt, wait: 60 }
    grants: { workspace: write }
    timeout: 2s
    grace-period: 10s
",
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let reason = record["stages"]["waiter"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("timed out after 2s"), "{reason}");
    assert_eq!(p.read("restored.txt"), "restored");
}
