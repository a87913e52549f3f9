//! The incident report (issue 17): severity, exposure, detection, time to recover, root-cause hints, action items.
//!
//! Each test runs the real `sluice` binary with the example environment
//! (`examples/delivery`: LocalEnv and the quote service's releases 1.0.0
//! and 2.0.0, whose quote tokens overflow for a third of the requests) and
//! reads `incident.json` / `incident.md` as an on-call engineer would.
//! Also the deploy defect of a stale feature flag routing users to the
//! idle slot.

use sluice_tests::{plugin, Project};

use super::delivery_demo::{
    artifact, bootstrap, delivery_pipeline, example_with_load, incident_json, version_for_user,
    wait_for_version, LocalEnv,
};
use super::delivery_rollback::remediate_stage;

const ROOT: &str = "deploy/production";

/// The example copied into a fresh project, its environment running with
/// `rps` requests a second of load, and 1.0.0 deployed by the example's
/// bootstrap pipeline (stable on blue). Returns the project, the
/// environment and the rewritten bootstrap pipeline's text.
fn with_1_0_0(rps: f64) -> (Project, LocalEnv, String) {
    let (p, env) = example_with_load(rps);
    let text = p.read(&bootstrap(&p, &env, "1.0.0"));
    (p, env, text)
}

/// The bootstrap pipeline's `build` and `deploy` stages (the deploy with
/// `deploy` replacing its strategy lines), then `more` (YAML stages,
/// indented 2 spaces), written as `file`.
fn pipeline(p: &Project, bootstrap: &str, deploy: &str, more: &str, file: &str) {
    let head = bootstrap
        .split("\n  smoke:")
        .next()
        .expect("the bootstrap pipeline has a smoke stage");
    let strategy = "strategy: canary                # the new version goes to the idle slot at weight 0\n      initial-weight: 0";
    assert!(head.contains(strategy), "{head}");
    let text = head
        .replace(strategy, deploy)
        .replace("name: delivery-bootstrap", "name: delivery");
    p.write(file, &format!("{text}\n{more}"));
}

/// A `remediate` stage after `deploy` and `failed` on the pipeline's
/// target (`*target`), verifying 20 requests through the router on
/// `router`.
fn verified_remediate(failed: &str, router: u16) -> String {
    remediate_stage(
        &format!("deploy, {failed}"),
        &format!(
            "      target: *target\n      verify: {{ url: \"http://127.0.0.1:{router}\", samples: 20, \
             retries: 20, interval: 250ms }}\n"
        ),
        r#"{ workspace: write, network: ["127.0.0.1:*"] }"#,
    )
}

fn incident(p: &Project, run_id: &str) -> (serde_json::Value, String) {
    (
        incident_json(p, run_id),
        artifact(p, run_id, "remediate", "incident.md"),
    )
}

fn items_of(json: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    json["action_items"]
        .as_array()
        .expect("action_items")
        .iter()
        .filter(|i| i["kind"] == kind)
        .cloned()
        .collect()
}

/// The demo's 2.0.0: the canary at 20% fails on the judge's `errors`
/// metric at step 1, remediate returns the traffic to 1.0.0. The report
/// rates it SEV3 (20% of the traffic, resolved), names `errors` with the
/// step and weight, and asks for a smoke probe (smoke passed) and an
/// analysis at a lower weight.
#[test]
fn incident_rates_the_demo_canary_failure_and_names_the_errors_metric() {
    let (p, env) = example_with_load(10.0);
    let bootstrap = delivery_pipeline(&p, &env, "sluice-bootstrap.yaml");
    let pipeline = delivery_pipeline(&p, &env, "sluice.yaml");
    let run0 = p.sluice_env(&["run", &bootstrap], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run0.code, 0, "bootstrap\n{}", run0.all());
    let run = p.sluice_env(&["run", &pipeline], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run.code, 1, "2.0.0 must fail\n{}", run.all());
    let id = run.run_id();
    let rec = p.record(&id);
    assert_eq!(rec["stages"]["smoke"]["state"], "passed", "{}", run.all());
    assert_eq!(
        rec["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run.all()
    );
    let (json, md) = incident(&p, &id);
    assert_eq!(json["schema"], "sluice.incident/v1");
    assert_eq!(json["status"], "resolved", "{json:#}");

    // The canary's first step gave 2.0.0 20% of the traffic.
    assert_eq!(json["exposure_share"], 0.2, "{json:#}");
    assert_eq!(json["severity"], "SEV3", "{json:#}");
    let reason = json["severity_reason"].as_str().expect("severity_reason");
    assert!(
        reason.starts_with("partial: 20% of the traffic"),
        "{reason}"
    );

    let hints = json["root_cause_hints"].as_array().expect("hints");
    let top = &hints[0];
    assert_eq!(top["stage"], "canary", "{json:#}");
    assert_eq!(top["metric"], "errors", "{json:#}");
    assert_eq!(top["step"], 1, "{json:#}");
    assert_eq!(top["weight"], 20.0, "{json:#}");
    // Canary error rate vs the baseline's, with the judge's p-value.
    let (observed, baseline) = (
        top["observed"].as_f64().expect("observed"),
        top["threshold"].as_f64().expect("threshold"),
    );
    assert!(observed > baseline && observed > 0.1, "{top}");
    assert!(top["p_value"].as_f64().is_some_and(|p| p < 0.05), "{top}");
    assert!(top["score"].is_number(), "{top}");

    let prevent = items_of(&json, "prevent");
    assert_eq!(prevent.len(), 1, "{json:#}");
    assert!(
        prevent[0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("`smoke` probe") && t.contains("`errors`")),
        "{prevent:?}"
    );
    assert!(
        prevent[0]["because"].as_str().is_some_and(|b| b
            .contains("stage `smoke` passed but stage `canary` failed on `errors` at step 1 (20% of the traffic)")),
        "{prevent:?}"
    );
    let detect = items_of(&json, "detect");
    assert!(
        detect.iter().any(|i| i["because"]
            .as_str()
            .is_some_and(|b| b.starts_with("exposure reached 20% of the traffic"))),
        "{json:#}"
    );
    assert!(items_of(&json, "mitigate").is_empty(), "{json:#}");
    assert!(json["action_items"]
        .as_array()
        .is_some_and(|a| a.iter().all(|i| i["owner"] == "unassigned")));

    assert!(
        md.contains("- **Severity:** SEV3 (partial: 20% of the traffic"),
        "{md}"
    );
    assert!(
        md.contains("- **Exposure:** 20% of the traffic at most"),
        "{md}"
    );
    assert!(md.contains("## Likely cause\n\n1. canary analysis at step 1 (20% of the traffic): the judge's `errors` failed"), "{md}");
    assert!(md.contains("## Action items"), "{md}");
    // The timeline stays in true order.
    let times: Vec<f64> = json["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| super::delivery_demo::secs(e["at"].as_str().expect("at")))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{json:#}");
    drop(env);
}

/// 2.0.0 promoted blue-green (100% of the traffic) fails the real
/// `monitor` stage's error-rate SLO under load: remediate rolls back, and
/// the report is SEV1 (all traffic, errors far above the SLO), its first
/// hint the breached SLO with observed vs threshold and the first
/// breaching sample's time, and an action item for an analysis at a
/// lower weight.
#[test]
fn incident_of_a_monitor_failure_names_the_slo_breached() {
    let (p, env, bootstrap) = with_1_0_0(20.0);
    let router = env.router;
    pipeline(
        &p,
        &bootstrap,
        "strategy: blue-green",
        &format!(
            r#"  monitor:
    uses: {monitor}
    needs: [deploy]
    environment: production
    with:
      window: 20s
      interval: 1s
      failure-limit: 1
      source:
        scrape:
          url: http://127.0.0.1:{router}/_router/metrics
          requests: router_requests_total
          latency: router_request_duration_seconds
          labels: {{ version: "${{{{ stages.deploy.outputs.version }}}}" }}
      slo: {{ error-rate: 1% }}
    grants: {{ network: ["127.0.0.1:*"] }}

{remediate}"#,
            monitor = plugin("monitor").display(),
            remediate = verified_remediate("monitor", router),
        ),
        "monitor.yaml",
    );
    let run = p.sluice_env(&["run", "monitor.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let rec = p.record(&id);
    let monitor = &rec["stages"]["monitor"]["state"];
    assert!(
        *monitor == "blocked" || *monitor == "failed",
        "{}",
        run.all()
    );
    let r = &rec["stages"]["remediate"];
    assert_eq!(r["state"], "passed", "{}", run.all());
    assert_eq!(r["outputs"]["action"], "rollback", "{r}");
    wait_for_version(router, "1.0.0");

    let (json, md) = incident(&p, &id);
    assert_eq!(json["status"], "resolved", "{json:#}");
    assert_eq!(json["exposure_share"], 1.0, "{json:#}");
    assert_eq!(json["severity"], "SEV1", "{json:#}");
    assert!(
        json["severity_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("wide-severe: 100% of the traffic")),
        "{json:#}"
    );
    let top = &json["root_cause_hints"][0];
    assert_eq!(top["stage"], "monitor", "{json:#}");
    assert_eq!(top["metric"], "error-rate", "{json:#}");
    assert_eq!(top["threshold"], 1.0, "{json:#}");
    assert!(top["observed"].as_f64().is_some_and(|o| o > 2.0), "{top}");
    assert!(top["step"].is_null(), "{top}");
    let first = top["first_failing_at"].as_str().expect("first_failing_at");
    let secs = super::delivery_demo::secs;
    let started = rec["stages"]["monitor"]["started_at"]
        .as_str()
        .map(secs)
        .expect("monitor started_at");
    assert!(secs(first) >= started, "{top}");
    assert!(
        json["opened_at"]
            .as_str()
            .is_some_and(|o| secs(first) <= secs(o)),
        "{json:#}"
    );
    let detect = items_of(&json, "detect");
    assert!(
        detect.iter().any(|i| i["because"].as_str().is_some_and(
            |b| b.starts_with("exposure reached 100% of the traffic before stage `monitor`")
        )),
        "{json:#}"
    );
    // No smoke stage ran: no smoke item.
    assert!(items_of(&json, "prevent").is_empty(), "{json:#}");
    assert!(
        md.contains("stage `monitor` gate `error-rate` fail"),
        "{md}"
    );
}

/// The canary stage crashes (the fixture traps) after the deploy gave
/// 2.0.0 20% of the traffic: nothing says why, so the report's cause is
/// "unknown" with the stage's log, and no metric is invented.
#[test]
fn incident_of_a_crashed_stage_says_unknown_and_points_at_its_log() {
    let (p, env, bootstrap) = with_1_0_0(0.0);
    let router = env.router;
    pipeline(
        &p,
        &bootstrap,
        "strategy: canary\n      initial-weight: 20",
        &format!(
            r#"  canary:
    uses: {fixture}
    needs: [deploy]
    with: {{ mode: trap }}

{remediate}"#,
            fixture = plugin("fixture").display(),
            remediate = verified_remediate("canary", router),
        ),
        "crash.yaml",
    );
    let run = p.sluice_env(&["run", "crash.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let rec = p.record(&id);
    assert_eq!(rec["stages"]["canary"]["state"], "failed", "{}", run.all());
    assert_eq!(
        rec["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run.all()
    );
    let (json, md) = incident(&p, &id);
    assert_eq!(json["status"], "resolved", "{json:#}");
    assert_eq!(json["exposure_share"], 0.2, "{json:#}");
    assert_eq!(json["severity"], "SEV3", "{json:#}");
    let hints = json["root_cause_hints"].as_array().expect("hints");
    assert_eq!(hints.len(), 1, "{json:#}");
    let h = &hints[0];
    assert!(h["metric"].is_null() && h["observed"].is_null(), "{h}");
    let log = format!("runs/{id}/logs/canary.log");
    assert_eq!(h["log"], log.as_str(), "{h}");
    assert!(
        h["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("unknown: stage `canary` failed")),
        "{h}"
    );
    // The log it points at exists and holds the crash.
    assert!(p.state_dir().join(&log).is_file(), "{log}");
    let detect = items_of(&json, "detect");
    assert!(
        detect.iter().any(|i| i["title"]
            .as_str()
            .is_some_and(|t| t.contains("make stage `canary` report why") && t.contains(&log))),
        "{json:#}"
    );
    assert!(
        md.contains("## Likely cause\n\n1. unknown: stage `canary` failed"),
        "{md}"
    );
}

/// A crashed earlier run left flag `left-over` sending 30% of the users to
/// green; deploying 2.0.0 to green as a canary at weight 0 must take the
/// flag away before the slot serves it (and record that): no user gets
/// 2.0.0 through the router.
#[test]
fn deploy_removes_a_stale_flag_that_routes_users_to_the_idle_slot() {
    let (p, env, bootstrap) = with_1_0_0(0.0);
    p.write(
        &format!("{ROOT}/flags.json"),
        r#"{"flags":{"left-over":{"on":"green","off":"blue","percent":30.0}}}"#,
    );
    pipeline(
        &p,
        &bootstrap,
        "strategy: canary\n      initial-weight: 0",
        "",
        "deploy.yaml",
    );
    let run = p.sluice_env(&["run", "deploy.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run.code, 0, "{}", run.all());
    wait_for_version(env.port("green"), "2.0.0");
    let flags: serde_json::Value =
        serde_json::from_str(&p.read(&format!("{ROOT}/flags.json"))).expect("flags");
    assert_eq!(flags, serde_json::json!({"flags": {}}), "{flags}");
    let history = p.read(&format!("{ROOT}/history.jsonl"));
    let removed = history
        .lines()
        .position(|l| l.contains("left-over removed (was 30% on=green off=blue)"))
        .unwrap_or_else(|| panic!("the removal is recorded\n{history}"));
    let pointed = history
        .lines()
        .position(|l| l.contains("\"deploy\"") && l.contains("2.0.0"))
        .unwrap_or_else(|| panic!("the deploy is recorded\n{history}"));
    assert!(
        removed < pointed,
        "removed before the slot is pointed\n{history}"
    );
    assert!(
        run.all()
            .contains("removed stale flag left-over (30% on=green off=blue)"),
        "{}",
        run.all()
    );
    let on_2: Vec<String> = (0..100)
        .map(|i| format!("user-{i}"))
        .filter(|u| version_for_user(env.router, u) != "1.0.0")
        .collect();
    assert!(on_2.is_empty(), "users on 2.0.0: {on_2:?}");
}
