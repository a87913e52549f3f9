//! Argo/Kayenta-style canary analysis (issue 17): initial-delay, background analysis, dry-run metrics, analysis templates, weighted metric groups.
//!
//! The `canary` stage runs through the real binary on a `local` target
//! whose two slots are small python3 HTTP servers on loopback: `good`
//! answers 200, `errors` answers requests 0, 1 and 2 of every 10 with a
//! 500 (a 30% error rate, without extra latency). Both record the paths
//! they were asked for and list them at `/seen`.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{gate, http_get, metric, Project, PyServer};

use super::stage_canary::{
    canary_project, feature_flag_state, grant_pause_env, json, kill_run, output, saved_step,
    spawn_paused_run, stage, wait_in_run, WEIGHTS,
};

const SERVER: &str = r##"
import sys, threading, json, urllib.parse
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
errors = sys.argv[1] == "errors"
lock = threading.Lock()
count = [0]
seen = []
class H(BaseHTTPRequestHandler):
    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/seen":
            with lock:
                return self.reply(200, json.dumps(sorted(set(seen))).encode())
        with lock:
            n = count[0]
            count[0] += 1
            seen.append(path)
        status = 500 if errors and n % 10 < 3 else 200
        self.reply(status, b"fail\n" if status == 500 else b"ok\n")
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"##;

/// A fixture server in `mode` (`good` or `errors`), killed on drop.
fn server(mode: &str) -> PyServer {
    PyServer::start(SERVER, &[mode])
}

/// The paths `server` was asked for so far.
fn seen(server: &PyServer) -> Vec<String> {
    http_get(server.port, "/seen")
        .and_then(|(_, body)| serde_json::from_str(&body).ok())
        .unwrap_or_default()
}

/// Stable 1.0.0 on blue and candidate 2.0.0 on green.
const STATE: &str = r#"{"environment": "production", "strategy": "canary",
            "stable": {"slot": "blue", "version": "1.0.0"},
            "candidate": {"slot": "green", "version": "2.0.0"}}"#;

/// A project with [`STATE`] and a `canary` stage whose `with:` ends with
/// `rest` (YAML at 6 spaces).
fn project(blue: &PyServer, green: &PyServer, rest: &str) -> Project {
    canary_project("canary-analysis-e2e", STATE, blue, green, rest)
}

/// The stage's `canary-analysis.json`, from the content-addressed store.
fn analysis_artifact(p: &Project, stage: &Value) -> Value {
    serde_json::from_str(&p.artifact(stage, "canary-analysis.json")).expect("JSON")
}

fn weight_of(p: &Project, slot: &str) -> Option<u64> {
    json(p, "env/weights.json")["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["slot"] == slot))
        .and_then(|r| r["weight"].as_u64())
}

/// Background analysis (Argo `strategy.canary.analysis`, `startingStep`)
/// measures during a 10-minute pause and aborts the canary the moment its
/// failure-limit is exceeded: the run ends long before the pause would,
/// the reason names the background analysis, the metric and the value,
/// and a failing dry-run metric beside it changes nothing. Before: the
/// plugin's schema refused `background-analysis` (invalid config).
#[test]
fn background_analysis_aborts_during_a_long_pause() {
    let blue = server("good");
    let green = server("errors");
    let p = project(
        &blue,
        &green,
        r#"      steps:
        - set-weight: 10
        - set-weight: 20
        - pause: { duration: 10m }
        - set-weight: 50
      background-analysis:
        starting-step: 1
        interval: 300ms
        initial-delay: 200ms
        metrics:
          - name: error-rate
            provider: { synthetic: { measure: error-rate, requests: 10 } }
            success-condition: result < 0.05
            failure-limit: 1
          - name: strict
            provider: { synthetic: { measure: error-rate, requests: 10, path: /strict } }
            success-condition: result < 0
            dry-run: true"#,
    );
    let started = Instant::now();
    let run = p.sluice(&["run"]);
    let took = started.elapsed();
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        took < Duration::from_secs(300),
        "the canary waited out the pause: {took:?}"
    );
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert_eq!(g["observed"], 0.3, "{g:#}");
    let msg = g["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("background analysis failed during step 2: metric `error-rate` failed")
            && msg.contains("2 failed (limit 1)")
            && msg.contains("last result 0.3"),
        "{msg}"
    );
    assert!(
        s["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("**aborted** 2.0.0 at step 2"),
        "{s:#}"
    );
    assert_eq!(metric(&s, "canary.background.error-rate.value"), 0.3);
    assert!(metric(&s, "canary.background.dry_run_failures") >= 1.0);

    let doc = analysis_artifact(&p, &s);
    let bg = &doc["background"];
    assert_eq!(bg["phase"], "failed", "{doc:#}");
    assert_eq!(bg["background"], true);
    assert_eq!(bg["details"]["starting_step"], 1);
    let m = &bg["details"]["metrics"];
    assert_eq!(m[0]["name"], "error-rate");
    assert_eq!(m[0]["failed"], 2, "{m:#}");
    assert_eq!(m[1]["dry_run"], true, "{m:#}");
    assert_eq!(m[1]["phase"], "failed", "{m:#}");
    assert_eq!(doc["analyses"][0]["background"], true, "{doc:#}");

    // Traffic is back on stable; step 3 never ran.
    assert_eq!(weight_of(&p, "green"), Some(0));
    let history = p.read("env/history.jsonl");
    assert!(history.contains("\"abort\""), "{history}");
    assert!(!history.contains("green=50"), "{history}");
    // The background only started at step 1 and measured both metrics.
    let seen = seen(&green);
    assert!(seen.contains(&"/strict".to_string()), "{seen:?}");
}

/// A `dry-run` metric (Argo `dryRun`) that fails is measured, logged and
/// reported (`canary.dry_run_failures`, canary-analysis.json) but the
/// canary is promoted; the analysis's `initial-delay` is reported too.
/// Before: the schema refused `dry-run` and `initial-delay`.
#[test]
fn dry_run_metric_fails_but_the_canary_promotes() {
    let blue = server("good");
    let green = server("errors");
    let p = project(
        &blue,
        &green,
        r#"      steps:
        - set-weight: 25
        - analysis:
            initial-delay: 300ms
            metrics:
              - name: error-rate
                provider: { synthetic: { measure: error-rate, requests: 10 } }
                success-condition: result < 0.05
                dry-run: true
              - name: answers
                provider: { synthetic: { measure: error-rate, requests: 10 } }
                success-condition: result < 0.5
        - set-weight: 100"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    assert_eq!(gate(&s, "canary.analysis")["verdict"], "pass", "{s:#}");
    assert_eq!(metric(&s, "canary.dry_run_failures"), 1.0);
    assert_eq!(metric(&s, "canary.error-rate.value"), 0.3);
    let summary = s["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("metric `error-rate` (dry-run) failed")
            && summary.contains("initial delay 300ms"),
        "{summary}"
    );
    let doc = analysis_artifact(&p, &s);
    let a = &doc["analyses"][0];
    assert_eq!(a["phase"], "successful", "{doc:#}");
    assert_eq!(a["details"]["initial_delay"], "300ms", "{doc:#}");
    assert_eq!(a["details"]["dry_run_failures"], 1);
    assert_eq!(a["details"]["metrics"][0]["dry_run"], true);
    assert_eq!(a["details"]["metrics"][0]["phase"], "failed");
    let log = p.log(&id, "canary");
    assert!(
        log.contains("dry-run") && log.contains("(not deciding)"),
        "{log}"
    );
    assert!(
        log.contains("step 1: analysis after an initial delay of 300ms"),
        "{log}"
    );
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "2.0.0", "{state:#}");
}

const TEMPLATE: &str = r#"# Reusable analysis: the candidate's error rate on one path.
metrics:
  - name: error-rate
    provider:
      synthetic: { measure: error-rate, requests: 10, path: "{{args.path}}" }
    success-condition: "result <= {{args.max-error}}"
"#;

/// One analysis template (Argo AnalysisTemplate with `args`) used by two
/// steps with different arguments: each step measures its own path with
/// its own threshold. Before: the schema refused `template` and `args`.
#[test]
fn template_with_args_is_used_by_two_steps() {
    let blue = server("good");
    let green = server("good");
    let p = project(
        &blue,
        &green,
        r#"      steps:
        - set-weight: 20
        - analysis:
            template: analysis/error-rate.yaml
            args: { path: /quote, max-error: "0.005" }
        - set-weight: 50
        - analysis:
            template: analysis/error-rate.yaml
            args: { path: /cart, max-error: 0.01 }"#,
    );
    p.write("analysis/error-rate.yaml", TEMPLATE);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    let doc = analysis_artifact(&p, &s);
    let lines = |i: usize| doc["analyses"][i]["lines"].to_string();
    assert!(
        lines(0).contains("template analysis/error-rate.yaml")
            && lines(0).contains("result <= 0.005"),
        "{doc:#}"
    );
    assert!(lines(1).contains("result <= 0.01"), "{doc:#}");
    assert_eq!(
        doc["analyses"][1]["details"]["template"],
        "analysis/error-rate.yaml"
    );
    let seen = seen(&green);
    assert!(
        seen.contains(&"/quote".to_string()) && seen.contains(&"/cart".to_string()),
        "{seen:?}"
    );
}

/// A template whose placeholder has no argument is refused before any
/// traffic moves, naming the step, the file, the argument and the fix; so
/// is a missing template file and an argument the template does not use.
#[test]
fn bad_template_is_rejected_with_a_clear_message() {
    let blue = server("good");
    let green = server("good");
    let case = |analysis: &str| {
        let p = project(
            &blue,
            &green,
            &format!("      steps:\n        - set-weight: 20\n        - analysis: {analysis}"),
        );
        p.write("analysis/error-rate.yaml", TEMPLATE);
        let run = p.sluice(&["run"]);
        assert_ne!(run.code, 0, "{}", run.all());
        let s = stage(&p, &run.run_id());
        assert!(
            !p.path().join("env/history.jsonl").exists(),
            "traffic moved before the config was checked"
        );
        s["reason"].as_str().unwrap_or_default().to_string()
    };
    let reason = case(r#"{ template: analysis/error-rate.yaml, args: { max-error: "0.01" } }"#);
    assert!(
        reason.contains(
            "with.steps[1].analysis.args: `analysis/error-rate.yaml` uses `{{args.path}}` but \
             this step gives no `path`; add it"
        ),
        "{reason}"
    );
    let reason = case(r#"{ template: analysis/latency.yaml }"#);
    assert!(
        reason.contains("with.steps[1].analysis.template: `analysis/latency.yaml` does not exist"),
        "{reason}"
    );
    let reason = case(
        r#"{ template: analysis/error-rate.yaml, args: { path: /, max-error: 1, maxerror: 1 } }"#,
    );
    assert!(
        reason.contains("with.steps[1].analysis.args.maxerror: `analysis/error-rate.yaml` has no"),
        "{reason}"
    );
    let reason = case(r#"{ template: ../outside.yaml }"#);
    assert!(
        reason.contains("must be a relative path inside the workspace"),
        "{reason}"
    );
}

/// The judge with Kayenta weighted groups: `errors` (one metric) and
/// `latency` (two). On the `errors` slot (30% 500s, normal latency) the
/// errors group scores 0 and latency 100, so weights decide: 20/80 gives 80
/// (marginal: the canary pauses), 60/40 gives 40 (fail: abort); on a good
/// slot every group scores 100 (pass: promote). Before: the schema refused
/// `groups`, `score` and `group`.
#[test]
fn weighted_groups_give_pass_marginal_and_fail() {
    let blue = server("good");
    let judge = |weights: &str| {
        format!(
            r#"      steps:
        - set-weight: 30
        - analysis:
            judge:
              alpha: 0.01
              load: {{ requests: 30 }}
              groups: {weights}
              score: {{ pass: 95, marginal: 75 }}
              metrics:
                - {{ name: errors, sample: errors, group: errors }}
                - {{ name: latency, sample: latency, effect: median, max-effect: 3, group: latency }}
                - {{ name: latency-either, sample: latency, direction: either, effect: median, max-effect: 3, group: latency }}
        - set-weight: 60"#
        )
    };

    let good = server("good");
    let p = project(&blue, &good, &judge("{ errors: 60, latency: 40 }"));
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 100.0);
    assert_eq!(metric(&s, "canary.group.errors.score"), 100.0);
    assert_eq!(metric(&s, "canary.group.latency.score"), 100.0);

    let bad = server("errors");
    let p = project(&blue, &bad, &judge("{ errors: 20, latency: 80 }"));
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(s["state"], "awaiting-approval", "{s:#}");
    assert_eq!(output(&s, "decision"), "paused", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 80.0);
    assert_eq!(metric(&s, "canary.group.errors.score"), 0.0);
    assert_eq!(metric(&s, "canary.group.latency.score"), 100.0);
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "inconclusive", "{g:#}");
    let msg = g["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("judge score 80 (marginal")
            && msg.contains(
                "groups: errors 0 (0/1 passed, weight 20), latency 100 (2/2 passed, weight 80)"
            ),
        "{msg}"
    );
    let doc = analysis_artifact(&p, &s);
    let j = &doc["analyses"][0]["details"]["judge"];
    assert_eq!(j["classification"], "marginal", "{doc:#}");
    assert_eq!(j["groups"][0]["name"], "errors");
    assert_eq!(j["groups"][0]["score"], 0.0);
    assert_eq!(j["metrics"][0]["classification"], "high", "{j:#}");
    assert_eq!(j["metrics"][0]["group"], "errors");
    assert_eq!(j["metrics"][1]["classification"], "pass", "{j:#}");
    assert_eq!(weight_of(&p, "green"), Some(30), "paused at its weight");

    let p = project(&blue, &bad, &judge("{ errors: 60, latency: 40 }"));
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 40.0);
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert_eq!(g["observed"], 40.0);
    assert_eq!(weight_of(&p, "green"), Some(0));
}

/// Weights that do not sum to 100 are refused, naming the key.
#[test]
fn group_weights_must_sum_to_100() {
    let blue = server("good");
    let green = server("good");
    let p = project(
        &blue,
        &green,
        r#"      steps:
        - analysis:
            judge:
              groups: { errors: 50, latency: 40 }
              metrics:
                - { name: errors, sample: errors, group: errors }
                - { name: latency, sample: latency, group: latency }"#,
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let reason = stage(&p, &run.run_id())["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("with.steps[0].analysis.judge.groups: the weights sum to 90, not 100"),
        "{reason}"
    );
}

/// Issue 17 (canary resume): a runner killed during a pause at weight 30
/// is resumed after the environment lost that weight (the router came back
/// with stable at 100% and the release flag at its initial 5%). The
/// resumed canary sets weight and flag back to 30% before it continues.
/// Before the fix it continued at step 3 with the candidate at 0% and the
/// flag at 5%, so the first line of history after the kill was
/// `green=60`.
#[test]
fn resumed_canary_reapplies_its_saved_weight_and_flag() {
    let blue = server("good");
    let green = server("good");
    let p = project(
        &blue,
        &green,
        r#"      steps:
        - set-weight: 10
        - set-weight: 30
        - pause: { duration: "${{ env.PAUSE }}" }
        - set-weight: 60"#,
    );
    grant_pause_env(&p);
    feature_flag_state(&p);
    const FLAG_AT_5: &str =
        r#"{"flags": {"release-2.0.0": {"on": "green", "off": "blue", "percent": 5.0}}}"#;
    p.write("env/flags.json", FLAG_AT_5);

    let mut child = spawn_paused_run(&p);
    wait_in_run(&mut child, "the canary never reached the pause", || {
        saved_step(&p) == Some(2)
    });
    let id = kill_run(&p, child); // SIGKILL, in the pause
    assert_eq!(weight_of(&p, "green"), Some(30));

    // The environment forgets the canary's weight and flag.
    p.write("env/weights.json", WEIGHTS);
    p.write("env/flags.json", FLAG_AT_5);
    let before = p.read("env/history.jsonl").lines().count();

    let resumed = p.sluice_env(&["run", "--resume", &id], &[("PAUSE", "100ms")]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    let history = p.read("env/history.jsonl");
    let after: Vec<Value> = history
        .lines()
        .skip(before)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let details: Vec<&str> = after.iter().filter_map(|e| e["detail"].as_str()).collect();
    assert!(
        details.first().is_some_and(|d| d.contains("green=30")),
        "the resumed canary did not re-apply weight 30 first: {details:#?}"
    );
    assert!(
        details.contains(&"release-2.0.0 30% on=green off=blue"),
        "the flag was not re-applied: {details:#?}"
    );
    let w30 = details.iter().position(|d| d.contains("green=30"));
    let w60 = details.iter().position(|d| d.contains("green=60"));
    assert!(w30 < w60, "{details:#?}");
    let log = p.log(&id, "canary");
    assert!(
        log.contains("re-applying the saved weight: candidate 2.0.0 at 30% (the target had 0%)"),
        "{log}"
    );
    // Promotion removed the flag.
    let flags = json(&p, "env/flags.json");
    assert!(flags["flags"].get("release-2.0.0").is_none(), "{flags:#}");
}
