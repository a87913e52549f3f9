//! `sluice run --json` prints what docs/events.schema.json publishes: every
//! line of a passing, a failing, a paused and a resumed run validates
//! against the schema, and names no field the schema does not document.

use std::collections::BTreeSet;

use serde_json::Value;
use sluice_tests::{repo_root, Project, Run};

/// The published schema and its validator.
fn schema() -> (Value, jsonschema::Validator) {
    let path = repo_root().join("docs/events.schema.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    (schema, validator)
}

/// Every stdout line of `run` is a JSON object valid under the schema,
/// with only documented fields; returns the events' kinds in order.
#[track_caller]
fn assert_valid(run: &Run) -> Vec<String> {
    let (schema, validator) = schema();
    let mut kinds = Vec::new();
    for line in run.stdout.lines() {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", run.all()));
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| format!("  {e} (at {})", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{line}\ndoes not match docs/events.schema.json:\n{}",
            errors.join("\n")
        );
        let kind = event["event"].as_str().unwrap_or_default().to_owned();
        let documented = &schema["$defs"][&kind]["properties"];
        for key in event.as_object().map(|o| o.keys()).into_iter().flatten() {
            assert!(
                documented.get(key).is_some() || schema["properties"].get(key).is_some(),
                "{kind}: field `{key}` is not documented in docs/events.schema.json: {line}"
            );
        }
        kinds.push(kind);
    }
    assert!(!kinds.is_empty(), "no events:\n{}", run.all());
    kinds
}

/// `kinds` contains each of `expected`.
#[track_caller]
fn assert_has(kinds: &[String], expected: &[&str]) {
    let seen: BTreeSet<&str> = kinds.iter().map(String::as_str).collect();
    for e in expected {
        assert!(seen.contains(e), "no `{e}` event among {kinds:?}");
    }
}

#[test]
fn a_passing_run_prints_valid_events() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: events-pass
stages:
  build:
    uses: {fixture}
    with: { mode: pass }
  check:
    uses: {fixture}
    needs: [build]
    with:
      mode: metric
      metrics: { lint.warnings: 3 }
      gates: [{ name: own-check, verdict: warn, message: "three warnings", observed: 3 }]
    gates:
      - { metric: lint.warnings, max: 5 }
"#,
    );
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let kinds = assert_valid(&run);
    assert_eq!(kinds.first().map(String::as_str), Some("run_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run_finished"));
    // The tests' projects allow unsigned plugins: that is a warning.
    assert_has(
        &kinds,
        &[
            "plugin_loaded",
            "warning",
            "stage_started",
            "stage_log",
            "stage_finished",
        ],
    );
    let events = run.events();
    assert_eq!(events[0]["v"], 1, "{}", run.stdout);
    let check = events
        .iter()
        .find(|e| e["event"] == "stage_finished" && e["stage"] == "check")
        .unwrap_or_else(|| panic!("no stage_finished for check:\n{}", run.stdout));
    assert_eq!(check["state"], "warned", "{check}");
    assert!(
        !check["gates"].as_array().is_none_or(Vec::is_empty),
        "{check}"
    );
    assert!(
        !check["metrics"].as_array().is_none_or(Vec::is_empty),
        "{check}"
    );
    let build = events
        .iter()
        .find(|e| e["event"] == "stage_finished" && e["stage"] == "build")
        .unwrap_or_else(|| panic!("no stage_finished for build:\n{}", run.stdout));
    assert!(
        !build["artifacts"].as_array().is_none_or(Vec::is_empty),
        "{build}"
    );
}

#[test]
fn a_failing_run_prints_valid_events() {
    let p = Project::new();
    // `flaky` fails twice (one retry); fail-fast then cancels `slow`, and
    // `after`, which needs `flaky`, is skipped.
    p.write(
        "sluice.yaml",
        r#"version: 1
name: events-fail
stages:
  flaky:
    uses: {fixture}
    retries: 1
    with: { mode: fail, message: "still broken" }
  slow:
    uses: {fixture}
    with: { mode: sleep, seconds: 30 }
  after:
    uses: {fixture}
    needs: [flaky]
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run", "--json", "--jobs", "4"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let kinds = assert_valid(&run);
    assert_has(
        &kinds,
        &[
            "run_started",
            "stage_retrying",
            "stage_finished",
            "stage_cancelled",
            "stage_skipped",
            "run_finished",
        ],
    );
    let finished = run.events().into_iter().last().unwrap_or_default();
    assert_eq!(finished["status"], "failed", "{finished}");
    assert_eq!(finished["stages"]["slow"], "cancelled", "{finished}");
    assert_eq!(finished["stages"]["after"], "skipped", "{finished}");
}

#[test]
fn a_paused_and_resumed_run_prints_valid_events() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: events-pause
stages:
  build:
    uses: {fixture}
    with: { mode: pass }
  deploy:
    uses: {fixture}
    needs: [build]
    approval: required
    with: { mode: pass }
"#,
    );
    let paused = p.sluice(&["run", "--json"]);
    assert_eq!(paused.code, 4, "{}", paused.all());
    let kinds = assert_valid(&paused);
    assert_has(&kinds, &["stage_awaiting_approval", "run_finished"]);
    let id = paused.run_id();
    assert_eq!(
        paused.events().last().map(|e| e["status"].clone()),
        Some("paused".into())
    );

    let approve = p.sluice(&["approve", &id, "deploy", "--by", "alice"]);
    assert_eq!(approve.code, 0, "{}", approve.all());
    let resumed = p.sluice(&["run", "--json", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    assert_valid(&resumed);
    let events = resumed.events();
    assert_eq!(events[0]["event"], "run_started", "{}", resumed.stdout);
    assert_eq!(events[0]["resumed"], true, "{}", resumed.stdout);
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some("passed".into())
    );
}
