//! The `canary` delivery stage through the real binary, on a `local`
//! target whose two slots are small python3 HTTP servers on loopback:
//! a "good" candidate identical to the baseline, and a "bad" one that
//! answers 30% of requests with 500 and adds 200 ms to every request.
//! The judge's decision (score, p-values, gate) and what the stage did to
//! the environment (weights, state, history) are checked.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{gate, metric, plugin, Project, PyServer};

/// A python3 stdlib HTTP server. `bad`: requests 0, 1, 2 of every 10 get
/// a 500, and every request waits 200 ms first. It binds port 0 and prints
/// the port it got. It also serves `/metrics` (gauge `app_error_ratio`:
/// 0.3 when bad, else 0) and a fake Prometheus `/api/v1/query` that
/// returns the same ratio for a query naming `version="2.0.0"` (and an
/// empty vector otherwise, so a wrong placeholder shows as an Error).
const SERVER: &str = r##"
import sys, time, threading, json, urllib.parse
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
bad = sys.argv[1] == "bad"
ratio = 0.3 if bad else 0.0
lock = threading.Lock()
count = [0]
class H(BaseHTTPRequestHandler):
    def reply(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/metrics":
            page = "# TYPE app_error_ratio gauge\napp_error_ratio{app=\"web\"} %s\n" % ratio
            return self.reply(200, page.encode())
        if url.path == "/api/v1/query":
            q = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            result = []
            if 'version="2.0.0"' in q:
                result = [{"metric": {"version": "2.0.0"}, "value": [time.time(), str(ratio)]}]
            doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
            return self.reply(200, json.dumps(doc).encode(), "application/json")
        with lock:
            n = count[0]
            count[0] += 1
        if bad:
            time.sleep(0.2)
        status = 500 if bad and n % 10 < 3 else 200
        self.reply(status, b"fail\n" if status == 500 else b"ok\n")
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"##;

/// A fixture server in `mode` (`good` or `bad`), killed on drop.
fn server(mode: &str) -> PyServer {
    PyServer::start(SERVER, &[mode])
}

/// Stable 1.0.0 on blue, candidate 2.0.0 on green, previous 0.9.0.
const STATE: &str = r#"{"environment": "production", "strategy": "canary",
            "stable": {"slot": "blue", "version": "1.0.0"},
            "candidate": {"slot": "green", "version": "2.0.0"},
            "previous": {"slot": "green", "version": "0.9.0"}}"#;

/// All traffic on stable 1.0.0 (blue), none on candidate 2.0.0 (green).
pub(super) const WEIGHTS: &str = r#"{"routes": [{"slot": "blue", "version": "1.0.0", "weight": 100},
                       {"slot": "green", "version": "2.0.0", "weight": 0}]}"#;

/// A project with a `local` target under `env/` holding `state` and
/// [`WEIGHTS`], and a pipeline `name` whose `canary` stage's `with:` ends
/// with `rest` (YAML, indented 6 spaces).
pub(super) fn canary_project(
    name: &str,
    state: &str,
    blue: &PyServer,
    green: &PyServer,
    rest: &str,
) -> Project {
    let p = Project::new();
    p.write("env/state.json", state);
    p.write("env/weights.json", WEIGHTS);
    let pipeline = format!(
        r#"version: 1
name: {name}
stages:
  canary:
    uses: {canary}
    environment: production
    on-inconclusive: pause
    grants:
      workspace: write
      network: ["127.0.0.1:{bp}", "127.0.0.1:{gp}"]
    with:
      target:
        kind: local
        root: env
        slots: {{ blue: "{bu}", green: "{gu}" }}
{rest}
"#,
        canary = plugin("canary").display(),
        bp = blue.port,
        gp = green.port,
        bu = blue.url(),
        gu = green.url(),
    );
    p.write("sluice.yaml", &pipeline);
    p
}

/// [`canary_project`] with [`STATE`] and the canary's `steps` (YAML,
/// indented 8 spaces).
fn project(blue: &PyServer, green: &PyServer, steps: &str) -> Project {
    canary_project(
        "canary-e2e",
        STATE,
        blue,
        green,
        &format!("      steps:\n{steps}"),
    )
}

/// The judge used by both paths: latency by median with a generous
/// max-effect (loopback jitter between two identical servers must never
/// fail it; +200 ms always does), errors critical. 30 requests per side:
/// the bad candidate's 9 failures of 30 against 0 of 30 are p = 0.00097 by
/// Fisher's exact test; 6 of 20 would be p = 0.0101, not below alpha 0.01.
const JUDGE: &str = r#"            judge:
              alpha: 0.01
              load: { requests: 30, path: /, timeout: 5s }
              metrics:
                - { name: latency, sample: latency, direction: increase, effect: median, max-effect: 3 }
                - { name: errors, sample: errors, direction: increase, critical: true }"#;

pub(super) fn stage(p: &Project, run_id: &str) -> Value {
    p.record(run_id)["stages"]["canary"].clone()
}

pub(super) fn output(stage: &Value, name: &str) -> String {
    let outputs = &stage["outputs"];
    let v = match outputs {
        Value::Object(m) => m.get(name).cloned(),
        Value::Array(a) => a
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["value"].clone()),
        _ => None,
    };
    v.and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("output {name} missing in {stage:#}"))
}

pub(super) fn json(p: &Project, rel: &str) -> Value {
    serde_json::from_str(&p.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn good_canary_is_promoted() {
    let blue = server("good");
    let green = server("good");
    let steps = format!(
        r#"        - set-weight: 20
        - pause: {{ duration: 200ms }}
        - analysis:
            metrics:
              - name: error-rate
                provider: {{ synthetic: {{ measure: error-rate, requests: 10 }} }}
                success-condition: result < 0.05
                interval: 100ms
                count: 2
{JUDGE}
        - set-weight: 50"#
    );
    let p = project(&blue, &green, &steps);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 100.0);
    assert_eq!(metric(&s, "canary.weight"), 100.0);
    assert_eq!(metric(&s, "canary.steps_completed"), 4.0);
    assert_eq!(metric(&s, "canary.error-rate.value"), 0.0);
    assert_eq!(metric(&s, "canary.errors.p_value"), 1.0);
    assert!(metric(&s, "canary.latency.p_value") <= 1.0);
    assert_eq!(gate(&s, "canary.analysis")["verdict"], "pass", "{s:#}");

    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "2.0.0", "{state:#}");
    assert_eq!(state["stable"]["slot"], "green");
    assert_eq!(state["previous"]["version"], "1.0.0");
    assert!(
        state.get("candidate").is_none_or(Value::is_null),
        "{state:#}"
    );
    let weights = json(&p, "env/weights.json");
    assert_eq!(weights["routes"][0]["slot"], "green", "{weights:#}");
    assert_eq!(weights["routes"][0]["weight"], 100);
    let history = p.read("env/history.jsonl");
    let actions: Vec<String> = history
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect();
    assert!(actions.iter().any(|a| a == "promote"), "{history}");
    assert!(
        history.contains("green=20") && history.contains("green=50"),
        "{history}"
    );
    assert!(!p.path().join("env/canary.json").exists());
}

#[test]
fn bad_canary_is_aborted_by_the_judge() {
    let blue = server("good");
    let green = server("bad");
    let steps = format!(
        "        - set-weight: 25\n        - analysis:\n{JUDGE}\n        - set-weight: 100"
    );
    let p = project(&blue, &green, &steps);
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    // Latency (+200 ms) and errors (30% vs 0%) both fail; errors is critical.
    assert_eq!(metric(&s, "canary.score"), 0.0);
    assert_eq!(metric(&s, "canary.weight"), 0.0);
    assert!(metric(&s, "canary.latency.p_value") < 1e-6, "{s:#}");
    assert!(metric(&s, "canary.errors.p_value") < 0.01, "{s:#}");
    assert!(metric(&s, "canary.latency.effect") > 10.0, "{s:#}");
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert_eq!(g["observed"], 0.0);
    assert_eq!(g["condition"], "threshold 75");
    let msg = g["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("judge score 0")
            && msg.contains("`latency`")
            && msg.contains("`errors` (critical) failed"),
        "{msg}"
    );

    // Traffic is back on stable; the candidate stays for remediate.
    let weights = json(&p, "env/weights.json");
    let weight_of = |slot: &str| {
        weights["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["slot"] == slot))
            .and_then(|r| r["weight"].as_u64())
    };
    assert_eq!(weight_of("blue"), Some(100), "{weights:#}");
    assert_eq!(weight_of("green"), Some(0), "{weights:#}");
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "1.0.0", "{state:#}");
    assert_eq!(state["candidate"]["version"], "2.0.0", "{state:#}");
    let history = p.read("env/history.jsonl");
    assert!(history.contains("\"abort\""), "{history}");
    assert!(
        !history.contains("green=100"),
        "the last step must not run: {history}"
    );
}

/// `pause: {}` stops the stage with the inconclusive gate `canary.paused`
/// and saves its place; re-run in the same run (approve, then resume), it
/// continues after the pause instead of starting over.
#[test]
fn indefinite_pause_continues_after_approval() {
    let blue = server("good");
    let green = server("good");
    let p = project(
        &blue,
        &green,
        "        - set-weight: 10\n        - pause: {}\n        - analysis: { judge: { load: { requests: 10 } } }\n        - set-weight: 60",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(s["state"], "awaiting-approval", "{s:#}");
    assert_eq!(output(&s, "decision"), "paused", "{s:#}");
    assert_eq!(metric(&s, "canary.weight"), 10.0);
    assert_eq!(
        gate(&s, "canary.paused")["verdict"],
        "inconclusive",
        "{s:#}"
    );
    let how = format!("`sluice approve {id} canary`, then `sluice run --resume {id}`");
    let msg = gate(&s, "canary.paused")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains(&how), "{msg}");
    let progress = json(&p, "env/canary.json");
    assert_eq!(progress["next_step"], 2, "{progress:#}");
    assert_eq!(progress["run_id"], id.as_str());
    assert_eq!(progress["candidate"], "2.0.0");

    // Without approval, resuming waits again and changes nothing.
    let again = p.sluice(&["run", "--resume", &id]);
    assert_eq!(again.code, 4, "{}", again.all());
    assert!(!p.read("env/history.jsonl").contains("green=60"));

    let ok = p.sluice(&["approve", &id, "canary"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    assert_eq!(metric(&s, "canary.steps_completed"), 4.0);
    // The default judge (latency by median with max-effect 1.5, errors).
    assert_eq!(metric(&s, "canary.score"), 100.0);
    assert_eq!(gate(&s, "canary.analysis")["verdict"], "pass", "{s:#}");
    let history = p.read("env/history.jsonl");
    assert_eq!(
        history.matches("blue=90 green=10\"").count(),
        1,
        "step 0 ran twice: {history}"
    );
    assert!(history.contains("green=60"), "{history}");
    assert!(!p.path().join("env/canary.json").exists());
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "2.0.0", "{state:#}");
}

/// Argo-style metrics decide without the judge: a scraped `/metrics` gauge
/// and a Prometheus query (placeholders filled in) on the bad candidate
/// fail their conditions and abort with the measurement and threshold in
/// the gate.
#[test]
fn failing_analysis_metrics_abort() {
    let blue = server("good");
    let green = server("bad");
    let steps = format!(
        r#"        - set-weight: 30
        - analysis:
            metrics:
              - name: scraped
                provider: {{ metrics: {{ url: "{{{{canary_url}}}}/metrics", metric: app_error_ratio, labels: {{ app: web }} }} }}
                success-condition: result < 0.05
                failure-condition: result > 0.1
                interval: 100ms
                count: 3
                failure-limit: 1
              - name: prom
                provider: {{ prometheus: {{ address: "{gu}", query: 'sum(rate(errors{{version="{{{{version}}}}",slot="{{{{slot}}}}"}}[1m]))' }} }}
                success-condition: result[0] < 0.05
                interval: 100ms
                count: 3
                failure-limit: 2
        - set-weight: 100"#,
        gu = green.url()
    );
    let p = project(&blue, &green, &steps);
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    assert_eq!(metric(&s, "canary.scraped.value"), 0.3);
    assert_eq!(metric(&s, "canary.prom.value"), 0.3);
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert_eq!(g["observed"], 0.3);
    let msg = g["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("metric `scraped` failed") && msg.contains("2 failed (limit 1)"),
        "{msg}"
    );
    let weights = json(&p, "env/weights.json");
    assert_eq!(weights["routes"][1]["weight"], 0, "{weights:#}");
    assert!(!p.read("env/history.jsonl").contains("green=100"));
}

/// With an `nginx` target the judge can use real traffic from the JSON
/// access log instead of synthetic load. The reload command is `true`
/// (nginx itself is tested with the target); the log holds 40 requests per
/// upstream, the candidate's slow and 30% failing. The weights end in the
/// upstream block with the candidate `down`.
#[test]
fn access_log_judge_aborts_on_nginx_target() {
    let mut log = String::new();
    for i in 0..40 {
        log.push_str(&format!(
            "{{\"upstream\":\"127.0.0.1:18101\",\"status\":200,\"request_time\":0.003,\"upstream_response_time\":\"0.00{}\"}}\n",
            i % 4 + 1
        ));
        let status = if i % 10 < 3 { 502 } else { 200 };
        log.push_str(&format!(
            "{{\"upstream\":\"127.0.0.1:18102\",\"status\":{status},\"request_time\":0.25,\"upstream_response_time\":\"0.2{}\"}}\n",
            i % 4
        ));
    }
    let p = nginx_log_project(
        &log,
        "              metrics:
                - { name: latency, sample: latency, effect: median, max-effect: 2 }
                - { name: errors, sample: errors }",
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 0.0);
    assert!(metric(&s, "canary.latency.p_value") < 1e-6, "{s:#}");
    assert!(metric(&s, "canary.errors.p_value") < 0.01, "{s:#}");
    let conf = p.read("env/nginx/upstreams.conf");
    assert!(
        conf.contains("server 127.0.0.1:18101 weight=100;"),
        "{conf}"
    );
    assert!(conf.contains("server 127.0.0.1:18102 down;"), "{conf}");
}

/// A project with an `nginx` target (reload `true`) whose access log is
/// `log` and whose canary stage sets weight 10 and runs an analysis with
/// `judge` (YAML of the `judge:` value's keys, indented 14 spaces).
fn nginx_log_project(log: &str, judge: &str) -> Project {
    let p = Project::new();
    p.write(
        "env/state.json",
        r#"{"environment": "production", "strategy": "canary",
            "stable": {"slot": "blue", "version": "1.0.0"},
            "candidate": {"slot": "green", "version": "2.0.0"}}"#,
    );
    p.write("logs/access.log", log);
    let pipeline = format!(
        r#"version: 1
name: canary-nginx
stages:
  canary:
    uses: {canary}
    on-inconclusive: pause
    grants: {{ workspace: write, exec: ["true"] }}
    with:
      target:
        kind: nginx
        root: env
        access-log: logs/access.log
        reload: ["true"]
        slots: {{ blue: "http://127.0.0.1:18101", green: "http://127.0.0.1:18102" }}
      steps:
        - set-weight: 10
        - analysis:
            judge:
              source: access-log
{judge}
"#,
        canary = plugin("canary").display()
    );
    p.write("sluice.yaml", &pipeline);
    p
}

/// One JSON access-log line of `upstream` (18101 blue, 18102 green).
fn log_line(port: u16, status: u16, ms: u32) -> String {
    format!(
        "{{\"upstream\":\"127.0.0.1:{port}\",\"status\":{status},\"request_time\":{s:.3},\"upstream_response_time\":\"{s:.3}\"}}\n",
        s = f64::from(ms) / 1000.0
    )
}

/// Issue 17 defect 6: one failure in 6 canary requests against none in 113
/// baseline requests is p = 6/119 = 0.0504 by Fisher's exact test — not
/// significant at the default alpha 0.05. The rank test's normal
/// approximation said p = 1.7e-5 and aborted the canary.
#[test]
fn one_failure_in_few_canary_requests_does_not_abort() {
    let mut log = String::new();
    for i in 0..113u32 {
        log.push_str(&log_line(18101, 200, i % 4 + 1));
    }
    for i in 0..6u32 {
        log.push_str(&log_line(18102, if i == 0 { 502 } else { 200 }, i % 4 + 1));
    }
    let p = nginx_log_project(&log, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    let pv = metric(&s, "canary.errors.p_value");
    assert!((pv - 6.0 / 119.0).abs() < 1e-9, "{pv} {s:#}");
    assert_eq!(metric(&s, "canary.score"), 100.0, "{s:#}");
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "2.0.0", "{state:#}");
}

/// `effect: p95` compares the tails: the candidate's median is the
/// baseline's, but one request in ten takes 50 ms instead of 1-4 ms, so its
/// p95 is far above the baseline's +10%; the median metric passes, the p95
/// metric fails (score 50) and the canary is aborted. With fewer than 20
/// requests on a side the p95 is inconclusive and the stage pauses.
#[test]
fn p95_judge_metric_catches_a_slow_tail() {
    let metrics = "              metrics:
                - { name: latency, sample: latency, effect: median, max-effect: 1.5 }
                - { name: tail, sample: latency, effect: p95 }";
    let log_of = |n: u32| {
        let mut log = String::new();
        for i in 0..n {
            log.push_str(&log_line(18101, 200, i % 4 + 1));
            let ms = if i % 10 == 9 { 50 } else { i % 4 + 1 };
            log.push_str(&log_line(18102, 200, ms));
        }
        log
    };
    let p = nginx_log_project(&log_of(40), metrics);
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    assert_eq!(metric(&s, "canary.score"), 50.0, "{s:#}");
    assert!(metric(&s, "canary.tail.effect") > 5.0, "{s:#}");
    let msg = gate(&s, "canary.analysis")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("`tail` failed: canary p95") && msg.contains("max 1.1x"),
        "{msg}"
    );
    assert!(!msg.contains("`latency` failed"), "{msg}");

    // 10 requests a side: too few for a p95, inconclusive → paused.
    let p = nginx_log_project(&log_of(10), metrics);
    let run = p.sluice(&["run"]);
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "paused", "{s:#}");
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "inconclusive", "{g:#}");
    assert!(
        g["message"]
            .as_str()
            .unwrap_or_default()
            .contains("p95 needs 20 each"),
        "{g:#}"
    );
}

/// A condition outside the documented grammar is refused before anything
/// changes, naming the key.
#[test]
fn bad_condition_is_invalid_config() {
    let p = Project::new();
    p.write(
        "env/state.json",
        r#"{"stable": {"slot": "blue", "version": "1.0.0"},
            "candidate": {"slot": "green", "version": "2.0.0"}}"#,
    );
    let pipeline = format!(
        r#"version: 1
name: canary-bad-config
stages:
  canary:
    uses: {canary}
    grants: {{ workspace: write }}
    with:
      target: {{ root: env, slots: {{ blue: "http://127.0.0.1:18101", green: "http://127.0.0.1:18102" }} }}
      steps:
        - set-weight: 10
        - analysis:
            metrics:
              - name: err
                provider: {{ synthetic: {{ measure: error-rate }} }}
                success-condition: len(result) > 0
"#,
        canary = plugin("canary").display()
    );
    p.write("sluice.yaml", &pipeline);
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("with.steps[1].analysis.metrics[0].success-condition")
            && reason.contains("unknown name `len`"),
        "{reason}"
    );
    assert!(!p.path().join("env/weights.json").exists());
}

/// An analysis that can decide neither way (0.3 is between the success
/// condition `< 0.05` and the failure condition `> 0.5`) is Inconclusive:
/// the run waits for approval, and after it the canary continues with the
/// next step and is promoted.
#[test]
fn inconclusive_analysis_pauses_then_continues() {
    let blue = server("good");
    let green = server("bad");
    let steps = r#"        - set-weight: 20
        - analysis:
            metrics:
              - name: ratio
                provider: { metrics: { url: "{{canary_url}}/metrics", metric: app_error_ratio } }
                success-condition: result < 0.05
                failure-condition: result > 0.5
        - set-weight: 40"#;
    let p = project(&blue, &green, steps);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(s["state"], "awaiting-approval", "{s:#}");
    assert_eq!(output(&s, "decision"), "paused", "{s:#}");
    let g = gate(&s, "canary.analysis");
    assert_eq!(g["verdict"], "inconclusive", "{g:#}");
    assert_eq!(g["observed"], 0.3);
    assert_eq!(json(&p, "env/canary.json")["next_step"], 2);

    let ok = p.sluice(&["approve", &id, "canary"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let resumed = p.sluice(&["run", "--resume", &id]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    let history = p.read("env/history.jsonl");
    assert_eq!(history.matches("green=20").count(), 1, "{history}");
    assert!(history.contains("green=40"), "{history}");
}

#[test]
fn a_first_release_without_candidate_passes_with_nothing_to_analyse() {
    // The first deploy of an environment gives the release all traffic, so
    // there is no candidate; the canary passes instead of failing the run.
    let blue = server("good");
    let green = server("good");
    let steps = format!("        - set-weight: 20\n        - analysis:\n{JUDGE}\n");
    let p = project(&blue, &green, &steps);
    p.write(
        "env/state.json",
        r#"{"environment": "production", "strategy": "canary",
            "stable": {"slot": "blue", "version": "1.0.0"}}"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "nothing-to-analyse");
    assert!(
        run.stdout.contains("no candidate to analyse"),
        "{}",
        run.all()
    );
}

/// Issue 17 defect 10: a runner killed in the middle of a canary must not
/// restart it at step 0 on `sluice run --resume`. The stage saves its place
/// in `canary.json` after every completed step; the runner is killed during
/// the long pause at step 3 (after step 2 set the weight to 20), and the
/// resumed stage continues at step 3 with weight 20: `weights.json` never
/// goes back to 10, and step 0 / step 2 do not run again.
#[test]
fn killed_runner_resumes_the_canary_at_its_step() {
    let blue = server("good");
    let green = server("good");
    let steps = r#"        - set-weight: 10
        - analysis:
            metrics:
              - name: error-rate
                provider: { synthetic: { measure: error-rate, requests: 5 } }
                success-condition: result < 0.05
        - set-weight: 20
        - pause: { duration: "${{ env.PAUSE }}" }
        - set-weight: 40
        - analysis:
            metrics:
              - name: error-rate
                provider: { synthetic: { measure: error-rate, requests: 5 } }
                success-condition: result < 0.05"#;
    let p = project(&blue, &green, steps);
    grant_pause_env(&p);

    let mut child = spawn_paused_run(&p);
    // Step 2 set the weight to 20: the canary is now in the pause of step 3.
    let history_has = |needle: &str| {
        std::fs::read_to_string(p.path().join("env/history.jsonl"))
            .unwrap_or_default()
            .contains(needle)
    };
    wait_in_run(
        &mut child,
        "the canary never reached step 2 (weight 20)",
        || history_has("green=20"),
    );
    // canary.json follows the weight right away (bounded, so that a stage
    // that does not write it still gets killed and resumed below).
    let until = Instant::now() + Duration::from_secs(3);
    while saved_step(&p) != Some(3) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = kill_run(&p, child);

    let weights = json(&p, "env/weights.json");
    assert_eq!(weights["routes"][1]["weight"], 20, "{weights:#}");
    let progress = std::fs::read_to_string(p.path().join("env/canary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let before = p.read("env/history.jsonl").lines().count();

    let resumed = p.sluice_env(&["run", "--resume", &id], &[("PAUSE", "100ms")]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let s = stage(&p, &id);
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    assert_eq!(metric(&s, "canary.steps_completed"), 6.0);

    // After the kill: no return to the first weight, no step 0 or 2 again.
    let history = p.read("env/history.jsonl");
    let after: Vec<&str> = history.lines().skip(before).collect();
    assert!(
        after
            .iter()
            .all(|l| !l.contains("green=10\"") && !l.contains("green=20\"")),
        "the resumed canary went back to an earlier step: {after:#?}"
    );
    assert!(after[0].contains("green=40\""), "{after:#?}");
    assert_eq!(history.matches("green=10\"").count(), 1, "{history}");
    assert!(history.contains("\"promote\""), "{history}");
    let log = p.log(&id, "canary");
    assert!(
        log.contains("resuming canary 2.0.0 at step 3 with weight 20%"),
        "{log}"
    );
    assert!(!p.path().join("env/canary.json").exists());
    // What the killed runner left: step 2 done at weight 20, next step 3.
    let progress = progress.expect("canary.json after the kill");
    assert_eq!(progress["next_step"], 3, "{progress:#}");
    assert_eq!(progress["weight"], 20, "{progress:#}");
    assert_eq!(progress["run_id"], id.as_str(), "{progress:#}");
    assert_eq!(progress["candidate"], "2.0.0", "{progress:#}");
    assert_eq!(progress["stage"], "canary", "{progress:#}");
    assert_eq!(progress["reason"], "step 2 completed", "{progress:#}");
}

/// Lets the pipeline's `${{ env.PAUSE }}` come from the runner's
/// environment.
pub(super) fn grant_pause_env(p: &Project) {
    let yaml = p.read("sluice.yaml").replace(
        "      workspace: write\n",
        "      workspace: write\n      env: [PAUSE]\n",
    );
    p.write("sluice.yaml", &yaml);
}

/// `sluice run` in the background with `PAUSE=120s`, output discarded.
pub(super) fn spawn_paused_run(p: &Project) -> Child {
    p.command(&["run"])
        .env("PAUSE", "120s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sluice")
}

/// Polls `reached` for up to 60 s; panics with `what` when it never is, or
/// when the runner exits first.
pub(super) fn wait_in_run(child: &mut Child, what: &str, reached: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached() {
        assert!(Instant::now() < deadline, "{what}");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the runner exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `next_step` the canary saved in `env/canary.json`, if any.
pub(super) fn saved_step(p: &Project) -> Option<u64> {
    std::fs::read_to_string(p.path().join("env/canary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["next_step"].as_u64())
}

/// SIGKILLs the runner; returns the id of the run it left.
pub(super) fn kill_run(p: &Project, mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_dir(p.state_dir().join("runs"))
        .expect("runs")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|id| p.state_dir().join(format!("runs/{id}/run.json")).is_file())
        .expect("the killed run")
}

/// Marks the state's release as a feature-flag one.
pub(super) fn feature_flag_state(p: &Project) {
    let state = p
        .read("env/state.json")
        .replace(r#""strategy": "canary""#, r#""strategy": "feature-flag""#);
    p.write("env/state.json", &state);
}

/// [`project`] for a feature-flag release: `state.json` says so and
/// `flags.json` has 2.0.0's flag at 5% (as `deploy` with `strategy:
/// feature-flag, initial-percent: 5` leaves it), plus an unrelated flag.
fn flag_project(blue: &PyServer, green: &PyServer, steps: &str) -> Project {
    let p = project(blue, green, steps);
    feature_flag_state(&p);
    p.write(
        "env/flags.json",
        r#"{"flags": {"release-2.0.0": {"on": "green", "off": "blue", "percent": 5.0},
                      "dark-mode": {"on": "red", "off": "yellow", "percent": 40.0}}}"#,
    );
    p
}

/// The `detail`s of the `flag` lines of `history.jsonl`, in order.
fn flag_history(p: &Project) -> Vec<String> {
    p.read("env/history.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "flag")
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .collect()
}

/// Issue 17: the candidate is behind a feature flag. Every `set-weight`
/// steps the flag (5 → 25 → 50 → 100) as well as the weights; promoting
/// removes it, so every user is on the new stable release, and history
/// records each change.
#[test]
fn feature_flag_canary_steps_the_flag_and_removes_it_on_promote() {
    let blue = server("good");
    let green = server("good");
    let p = flag_project(
        &blue,
        &green,
        "        - set-weight: 25\n        - pause: { duration: 100ms }\n        - set-weight: 50\n        - set-weight: 100",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "promoted", "{s:#}");
    let flags = json(&p, "env/flags.json");
    assert_eq!(
        flags,
        serde_json::json!({"flags": {"dark-mode": {"on": "red", "off": "yellow", "percent": 40.0}}}),
        "{flags:#}"
    );
    assert_eq!(
        flag_history(&p),
        [
            "release-2.0.0 25% on=green off=blue",
            "release-2.0.0 50% on=green off=blue",
            "release-2.0.0 100% on=green off=blue",
            "release-2.0.0 removed (was 100% on=green off=blue)",
        ]
    );
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["slot"], "green", "{state:#}");
}

/// An aborted feature-flag canary removes the flag: no user stays on the
/// candidate (before the fix it stayed at the last step's share).
#[test]
fn feature_flag_canary_removes_the_flag_on_abort() {
    let blue = server("good");
    let green = server("bad");
    let steps = format!(
        "        - set-weight: 25\n        - analysis:\n{JUDGE}\n        - set-weight: 100"
    );
    let p = flag_project(&blue, &green, &steps);
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(output(&s, "decision"), "aborted", "{s:#}");
    let flags = json(&p, "env/flags.json");
    assert!(flags["flags"].get("release-2.0.0").is_none(), "{flags:#}");
    assert_eq!(flags["flags"]["dark-mode"]["percent"], 40.0, "{flags:#}");
    assert_eq!(
        flag_history(&p),
        [
            "release-2.0.0 25% on=green off=blue",
            "release-2.0.0 removed (was 25% on=green off=blue)",
        ]
    );
    let state = json(&p, "env/state.json");
    assert_eq!(state["stable"]["version"], "1.0.0", "{state:#}");
}

/// Issue 18: fail-fast cancels a canary that is at 30% and pausing; the
/// canary is told (WIT 0.2 `cancel`), puts all traffic back on the stable
/// release within its grace period, and only then does the runner exit.
#[test]
fn a_cancelled_canary_restores_its_weights_before_the_runner_exits() {
    let blue = server("good");
    let green = server("good");
    let p = project(
        &blue,
        &green,
        "        - set-weight: 30\n        - pause: { duration: 10m }\n",
    );
    let pipeline = p.read("sluice.yaml")
        + "    grace-period: 30s
  wait:
    uses: {fixture}
    with: { mode: sleep, seconds: 3 }
  tests:
    uses: {fixture}
    needs: [wait]
    with: { mode: fail, message: unit tests failed }
";
    p.write("sluice.yaml", &pipeline);
    let started = std::time::Instant::now();
    let run = p.sluice(&["run", "--jobs", "3"]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        started.elapsed().as_secs() < 120,
        "cancelled, not paused for 10m"
    );
    let canary = stage(&p, &run.run_id());
    assert_eq!(canary["state"], "cancelled", "{canary:#}");
    // The weights the canary had set (30% on green) are back to stable.
    let weights = json(&p, "env/weights.json");
    let weight_of = |slot: &str| {
        weights["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["slot"] == slot))
            .map(|r| r["weight"].as_u64().unwrap_or(0))
    };
    assert_eq!(weight_of("blue"), Some(100), "{weights:#}");
    assert_eq!(weight_of("green"), Some(0), "{weights:#}");
    let log = p.log(&run.run_id(), "canary");
    assert!(log.contains("set weight 30") || log.contains("30"), "{log}");
    assert!(log.contains("putting all traffic back on 1.0.0"), "{log}");
    assert!(
        log.contains("the stage ended within its grace period"),
        "{log}"
    );
    // The candidate was not judged: its verdict is not `bad`.
    let state = json(&p, "env/state.json");
    assert_ne!(state["verdicts"]["2.0.0"], "bad", "{state:#}");
}
