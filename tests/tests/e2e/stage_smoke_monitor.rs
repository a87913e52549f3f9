//! The `smoke` and `monitor` delivery stages against real HTTP services on
//! loopback: a python3 fixture server (probes that pass, fail and recover;
//! `/metrics` endpoints with known counts), the real example service of
//! `examples/delivery/service` (release 1.0.0, and 2.0.0 with its bug), and
//! a real Prometheus (the Debian package, installed by
//! `scripts/setup-delivery-services.sh`) scraping those services.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{
    free_port, gate, http_get, metric, plugin, prom_value, repo_root, Project, Prometheus,
};

/// A child process killed (and reaped) when dropped. Its stderr goes to
/// a file (a pipe nobody reads would block it once full).
struct Proc {
    child: Child,
    what: String,
    stderr: std::path::PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Panics with the process' stderr when it already exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!("{} exited early ({status}):\n{err}", self.what);
        }
    }
}

/// Spawns `cmd` with stderr to `<dir>/<name>.stderr`.
fn spawn(mut cmd: Command, dir: &Path, name: &str, what: &str) -> Proc {
    let stderr = dir.join(format!("{name}.stderr"));
    let file = std::fs::File::create(&stderr).expect("create a stderr file");
    let child = cmd
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    Proc {
        child,
        what: what.to_string(),
        stderr,
    }
}

/// A python3 stdlib server: probes and `/metrics` endpoints with known
/// behaviour. Binds port 0 and prints `PORT <n>` first.
const FIXTURE_SERVER: &str = r##"
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
HITS = {}
# /<name>/metrics: every scrape adds (ok, errors, fast, slow) requests.
METRICS = {"good": (100, 0, 98, 2), "bad": (90, 10, 50, 50)}
TOTALS = {}

def hit(path):
    with LOCK:
        HITS[path] = HITS.get(path, 0) + 1
        return HITS[path]

def metrics(name):
    ok, err, fast, slow = METRICS[name]
    with LOCK:
        t = TOTALS.setdefault(name, [0, 0, 0, 0])
        t[0] += ok; t[1] += err; t[2] += fast; t[3] += slow
        o, e, f, s = t
    lines = [
        "# HELP http_requests_total Requests.",
        "# TYPE http_requests_total counter",
        'http_requests_total{path="/",code="200"} %d' % o,
        'http_requests_total{path="/",code="500"} %d' % e,
        'http_requests_total{path="/metrics",code="200"} %d' % (o + e),
        "# TYPE http_request_duration_seconds histogram",
        'http_request_duration_seconds_bucket{path="/",le="0.05"} %d' % f,
        'http_request_duration_seconds_bucket{path="/",le="0.5"} %d' % (f + s),
        'http_request_duration_seconds_bucket{path="/",le="+Inf"} %d' % (f + s),
        'http_request_duration_seconds_sum{path="/"} 1',
        'http_request_duration_seconds_count{path="/"} %d' % (f + s),
    ]
    return "\n".join(lines) + "\n"

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/health":
            return self.reply(200, {"status": "ok", "checks": {"db": "up"}})
        if p == "/version":
            return self.reply(200, {"version": "1.0.0"})
        if p == "/slow":
            time.sleep(0.4)
            return self.reply(200, {"status": "ok"})
        if p == "/error":
            return self.reply(500, {"error": "database unavailable"})
        if p == "/flaky":
            n = hit(p)
            return self.reply(503 if n <= 2 else 200, {"attempt": n})
        if p == "/hits":
            with LOCK:
                return self.reply(200, dict(HITS))
        if p.endswith("/metrics") and p.split("/")[1] in METRICS:
            return self.reply(200, metrics(p.split("/")[1]), "text/plain; version=0.0.4")
        if p == "/broken/metrics":
            return self.reply(200, 'http_requests_total{code=500 3\n', "text/plain")
        return self.reply(404, {"error": "not found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"null")
        token = self.headers.get("Authorization", "")
        return self.reply(201, {"echo": body, "auth": token})
    def log_message(self, *a):
        pass

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print("PORT %d" % srv.server_address[1], flush=True)
srv.serve_forever(poll_interval=0.1)
"##;

/// Starts the fixture server in `dir`; returns it and its port.
fn fixture_server(dir: &Path) -> (Proc, u16) {
    let script = dir.join("fixture_server.py");
    std::fs::write(&script, FIXTURE_SERVER).expect("write fixture server");
    let mut cmd = Command::new("python3");
    cmd.arg("-u").arg(&script).stdout(Stdio::piped());
    let mut proc = spawn(cmd, dir, "fixture-server", "the fixture server (python3)");
    let stdout = proc.child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the fixture server's port");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            proc.assert_running();
            panic!("fixture server printed {line:?}")
        });
    (proc, port)
}

/// Waits until `GET path` answers 200, or panics naming `what`.
fn wait_ready(port: u16, path: &str, what: &str, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if matches!(http_get(port, path), Some((200, _))) {
            return;
        }
        proc.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer GET {path} on 127.0.0.1:{port} within 15s");
}

/// `p.write` with `{smoke}` and `{monitor}` replaced by the plugin paths.
fn write(p: &Project, rel: &str, text: &str) {
    let text = text
        .replace("{smoke}", &plugin("smoke").display().to_string())
        .replace("{monitor}", &plugin("monitor").display().to_string());
    p.write(rel, &text);
}

fn run_stage(p: &Project, args: &[&str], stage: &str) -> (sluice_tests::Run, Value) {
    let run = p.sluice(args);
    let record = p.record(&run.run_id());
    let s = record["stages"][stage].clone();
    (run, s)
}

#[test]
fn smoke_probes_pass_with_retries_json_pointers_and_bodies() {
    let p = Project::new();
    let (_server, port) = fixture_server(p.path());
    write(
        &p,
        "sluice.yaml",
        &format!(
            r#"version: 1
name: smoke-pass
stages:
  smoke:
    uses: {{smoke}}
    with:
      base-url: http://127.0.0.1:{port}/
      timeout: 3s
      retries: {{ attempts: 3, backoff: 50ms, max: 200ms }}
      headers: {{ X-Env: test }}
      probes:
        - name: health
          path: /health
          json: {{ /status: ok, /checks/db: up }}
          body-contains: status
          max-latency: 2s
        - {{ name: version, path: /version, json: {{ /version: "1.0.0" }} }}
        - {{ name: flaky, path: /flaky, expect-status: [200] }}
        - name: create
          method: POST
          url: http://127.0.0.1:{port}/orders
          headers: {{ Authorization: Bearer t0ken }}
          body: {{ sku: widget, qty: 2 }}
          expect-status: 2xx
          json: {{ /echo/qty: 2, /auth: Bearer t0ken }}
    grants:
      network: ["127.0.0.1:*"]
    gates:
      - {{ metric: smoke.failed, max: 0 }}
"#
        ),
    );
    let (run, s) = run_stage(&p, &["run"], "smoke");
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(s["state"], "passed", "{s:#}");
    assert_eq!(metric(&s, "smoke.passed"), 4.0);
    assert_eq!(metric(&s, "smoke.failed"), 0.0);
    let p95 = metric(&s, "smoke.p95_ms");
    assert!(p95 > 0.0 && p95 < 5000.0, "{p95}");
    let results: Value =
        serde_json::from_str(&p.artifact(&s, "smoke.json")).expect("smoke.json is JSON");
    let flaky = &results["probes"][2];
    assert_eq!(flaky["name"], "flaky");
    assert_eq!(flaky["attempts"], 3, "{results:#}");
    assert_eq!(flaky["backoff_ms"], serde_json::json!([50.0, 100.0]));
    assert_eq!(flaky["status"], 200);
    assert_eq!(results["probes"][3]["status"], 201);
    let log = p.log(&run.run_id(), "smoke");
    assert!(
        log.contains("probe flaky: attempt 1 failed (status: observed 503"),
        "{log}"
    );
    assert!(
        log.contains("| health | GET http://127.0.0.1:"),
        "the summary table is in the log:\n{log}"
    );
    assert!(p.artifact(&s, "smoke-summary.md").contains("| flaky |"));
}

#[test]
fn smoke_failing_probes_block_with_observed_vs_expected() {
    let p = Project::new();
    let (_server, port) = fixture_server(p.path());
    let dead = free_port();
    write(
        &p,
        "sluice.yaml",
        &format!(
            r#"version: 1
name: smoke-fail
stages:
  smoke:
    uses: {{smoke}}
    with:
      base-url: http://127.0.0.1:{port}
      timeout: 2s
      retries: 1
      backoff: 10ms
      probes:
        - {{ name: health, path: /health }}
        - {{ name: error, path: /error }}
        - {{ name: slow, path: /slow, max-latency: 100ms }}
        - {{ name: version, path: /version, json: {{ /version: "2.0.0" }} }}
        - {{ name: down, url: "http://127.0.0.1:{dead}/health", retries: 0 }}
    grants:
      network: ["127.0.0.1:*"]
"#
        ),
    );
    let (run, s) = run_stage(&p, &["run", "--keep-going"], "smoke");
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(s["state"], "blocked", "{s:#}");
    assert_eq!(metric(&s, "smoke.passed"), 1.0);
    assert_eq!(metric(&s, "smoke.failed"), 4.0);

    let g = gate(&s, "probe error");
    assert_eq!(g["verdict"], "fail");
    assert_eq!(g["observed"], 500.0);
    let m = g["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("after 2 attempt(s): status: observed 500") && m.contains("expected 200"),
        "{m}"
    );
    assert!(m.contains("database unavailable"), "the body excerpt: {m}");

    let g = gate(&s, "probe slow");
    let m = g["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("max-latency: observed") && m.contains("expected <= 100.0 ms"),
        "{m}"
    );
    assert!(g["observed"].as_f64().unwrap_or_default() >= 100.0, "{g:#}");

    let m = gate(&s, "probe version")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        m.contains(r#"json /version: observed "1.0.0", expected "2.0.0""#),
        "{m}"
    );

    let m = gate(&s, "probe down")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        m.contains("request: observed") && m.contains("expected a response"),
        "{m}"
    );

    let results: Value =
        serde_json::from_str(&p.artifact(&s, "smoke.json")).expect("smoke.json is JSON");
    assert_eq!(results["failed"], 4);
    assert_eq!(results["probes"][1]["failures"][0]["check"], "status");
}

#[test]
fn smoke_rejects_bad_config_and_ungranted_hosts() {
    let p = Project::new();
    let (_server, port) = fixture_server(p.path());
    for (with, want) in [
        (
            "base-url: http://127.0.0.1:1\n      probes: [{ path: /health, expect: 200 }]"
                .to_string(),
            "expect",
        ),
        (
            "probes: [{ url: \"htp//127.0.0.1/health\" }]".to_string(),
            "with.probes[0].url: `htp//127.0.0.1/health` is not a valid URL",
        ),
        (
            "probes: [{ path: /health }]".to_string(),
            "with.probes[0].path: `/health` is relative but with.base-url is not set",
        ),
        (
            "probes: [{ url: \"ftp://127.0.0.1/x\" }]".to_string(),
            "only http:// and https:// URLs can be probed",
        ),
    ] {
        write(
            &p,
            "sluice.yaml",
            &format!(
                "version: 1\nname: smoke-config\nstages:\n  smoke:\n    uses: {{smoke}}\n    with:\n      {with}\n    grants:\n      network: [\"127.0.0.1:*\"]\n"
            ),
        );
        let (run, s) = run_stage(&p, &["run"], "smoke");
        assert_ne!(run.code, 0, "{with}: {}", run.all());
        assert_eq!(s["state"], "failed", "{with}: {s:#}");
        let reason = s["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(want), "{with}: {reason}");
    }

    // No network grant: denied, naming the grant.
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: smoke-denied\nstages:\n  smoke:\n    uses: {{smoke}}\n    with:\n      probes: [{{ url: \"http://127.0.0.1:{port}/health\" }}]\n"
        ),
    );
    let (run, s) = run_stage(&p, &["run"], "smoke");
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(s["state"], "failed", "{s:#}");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("denied") && reason.contains("grants.network"),
        "{reason}"
    );
}

#[test]
fn monitor_scrapes_a_metrics_endpoint_and_gates_on_slos() {
    let p = Project::new();
    let (_server, port) = fixture_server(p.path());
    let stage = |name: &str, path: &str| {
        format!(
            r#"  {name}:
    uses: {{monitor}}
    with:
      samples: 2
      interval: 500ms
      source:
        scrape:
          url: http://127.0.0.1:{port}{path}
          exclude: {{ path: [/metrics] }}
      slo: {{ error-rate: 1%, p95-latency: 100ms, availability: 99.5%, target: 99% }}
      burn-rate: {{ long-window: 1s, short-window: 500ms, threshold: 2 }}
    grants:
      network: ["127.0.0.1:*"]
"#
        )
    };
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: monitor-scrape\nstages:\n{}{}",
            stage("good", "/good/metrics"),
            stage("bad", "/bad/metrics")
        ),
    );
    let run = p.sluice(&["run", "--keep-going", "--jobs", "2"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());

    // good: per scrape +100 requests, 0 errors; 98 under 50 ms, 2 under 500 ms.
    let good = &record["stages"]["good"];
    assert_eq!(good["state"], "passed", "{good:#}");
    assert_eq!(metric(good, "monitor.requests"), 200.0);
    assert_eq!(metric(good, "monitor.error_rate"), 0.0);
    assert_eq!(metric(good, "monitor.availability"), 100.0);
    // histogram_quantile: rank 190 of 200 lies in the first bucket (196): 50 * 190/196 ms
    let p95 = metric(good, "monitor.p95_ms");
    assert!((p95 - 50.0 * 190.0 / 196.0).abs() < 1e-6, "{p95}");
    assert_eq!(metric(good, "monitor.burn_rate_long"), 0.0);
    for g in ["error-rate", "p95-latency", "availability", "burn-rate"] {
        assert_eq!(gate(good, g)["verdict"], "pass", "{g}: {good:#}");
    }

    // bad: +100 requests, 10 errors per scrape; half of them slow.
    let bad = &record["stages"]["bad"];
    assert_eq!(bad["state"], "blocked", "{bad:#}");
    assert!((metric(bad, "monitor.error_rate") - 10.0).abs() < 1e-9);
    assert!((metric(bad, "monitor.availability") - 90.0).abs() < 1e-9);
    // rank 190 of 200: second bucket (50, 100]: 50 + 450 * (190-100)/100 ms
    let p95 = metric(bad, "monitor.p95_ms");
    assert!((p95 - (50.0 + 450.0 * 0.9)).abs() < 1e-6, "{p95}");
    // burn = 0.10 / (1 - 0.99) = 10 in both windows
    assert!((metric(bad, "monitor.burn_rate_long") - 10.0).abs() < 1e-9);
    assert!((metric(bad, "monitor.burn_rate_short") - 10.0).abs() < 1e-9);
    let g = gate(bad, "error-rate");
    assert_eq!(g["verdict"], "fail");
    assert!(
        (g["observed"].as_f64().unwrap_or_default() - 10.0).abs() < 1e-9,
        "{g:#}"
    );
    assert!(
        g["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error rate 10.00% > max 1.00% over"),
        "{g:#}"
    );
    assert_eq!(gate(bad, "p95-latency")["verdict"], "fail");
    assert_eq!(gate(bad, "availability")["verdict"], "fail");
    assert_eq!(gate(bad, "burn-rate")["verdict"], "fail");
    let doc: Value =
        serde_json::from_str(&p.artifact(bad, "monitor.json")).expect("monitor.json is JSON");
    assert_eq!(doc["samples"].as_array().map(Vec::len), Some(2), "{doc:#}");

    // A malformed exposition fails the stage naming the line.
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: monitor-broken\nstages:\n  m:\n    uses: {{monitor}}\n    with:\n      window: 0s\n      interval: 100ms\n      source: {{ scrape: {{ url: \"http://127.0.0.1:{port}/broken/metrics\" }} }}\n    grants:\n      network: [\"127.0.0.1:*\"]\n"
        ),
    );
    let (run, s) = run_stage(&p, &["run"], "m");
    assert_eq!(run.code, 1, "{}", run.all());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("is not in Prometheus text format: line 1"),
        "{reason}"
    );
}

/// Issue 17, defect 7: a release breaching its SLO early in a long watch
/// fails the stage as soon as more than `failure-limit` samples breached, instead of
/// keeping its traffic until the window ends, and the report says how long
/// and to what share of the traffic it was exposed. Defect 9: the burn-rate
/// message names the windows the scrape source actually measured.
#[test]
fn monitor_stops_at_the_failure_limit_and_reports_the_exposure() {
    let p = Project::new();
    let (_server, port) = fixture_server(p.path());
    // 2.0.0 has a quarter of the traffic: the share comes from weights.json.
    p.write(
        "deploy/production/weights.json",
        r#"{"routes":[{"slot":"blue","version":"1.0.0","weight":75},{"slot":"green","version":"2.0.0","weight":25}]}"#,
    );
    let stage = |name: &str, extra: &str| {
        format!(
            r#"  {name}:
    uses: {{monitor}}
    with:
      window: 30s
      interval: 500ms
      failure-limit: 1
      source:
        scrape:
          url: http://127.0.0.1:{port}/bad/metrics
          exclude: {{ path: [/metrics] }}
      slo: {{ error-rate: 1%, target: 99% }}
      burn-rate: {{ long-window: 1h, short-window: 5m, threshold: 2 }}
{extra}    grants:
      network: ["127.0.0.1:*"]
      workspace: read
"#
        )
    };
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: monitor-early\nstages:\n{}{}",
            stage("all", ""),
            stage(
                "split",
                "      target: { kind: local, root: deploy/production }\n      version: \"2.0.0\"\n"
            )
        ),
    );
    let run = p.sluice(&["run", "--keep-going", "--jobs", "2", "--json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    for name in ["all", "split"] {
        let s = &record["stages"][name];
        assert_eq!(s["state"], "blocked", "{name}: {s:#}");
        // Two breaching half-second intervals end a 30s watch: well before
        // half of it (a behavioural bound, not a timing measurement).
        let ms = s["duration_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(ms < 15_000, "{name} ran {ms} ms of a 30 s window: {s:#}");
        let finished = run
            .events()
            .into_iter()
            .find(|e| e["event"] == "stage_finished" && e["stage"] == name)
            .unwrap_or_else(|| panic!("no stage_finished for {name}:\n{}", run.stdout));
        assert!(
            finished["duration_ms"].as_u64().unwrap_or(u64::MAX) < 15_000,
            "{finished}"
        );
        let reason = s["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("error rate 10.00% > max 1.00%")
                && reason.contains("more than failure-limit 1")
                && reason.contains("stopped the watch at t+"),
            "{name}: {reason}"
        );
        let g = gate(s, "failure-limit");
        assert_eq!(g["verdict"], "fail", "{g:#}");
        assert_eq!(g["observed"], 2.0, "{g:#}");
        assert_eq!(metric(s, "monitor.samples"), 2.0);
        assert_eq!(metric(s, "monitor.breaching_samples"), 2.0);
        let exposed = metric(s, "monitor.exposure_seconds");
        assert!(exposed > 0.5 && exposed < 15.0, "{exposed}");
        let summary = s["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains("stopped early: failure-limit 1 exceeded at t+")
                && summary.contains("exposure "),
            "{summary}"
        );
        // The burn windows were scaled to the watch: the message says so
        // instead of claiming an hour and five minutes were measured.
        let burn = gate(s, "burn-rate")["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            burn.contains("configured 1h and 5m, scaled to the watch")
                && !burn.contains("over 1h")
                && !burn.contains("over 5m"),
            "{burn}"
        );
    }
    assert_eq!(
        metric(&record["stages"]["all"], "monitor.exposure_share"),
        1.0
    );
    assert_eq!(
        metric(&record["stages"]["split"], "monitor.exposure_share"),
        0.25
    );
    let doc: Value = serde_json::from_str(&p.artifact(&record["stages"]["split"], "monitor.json"))
        .expect("monitor.json is JSON");
    assert_eq!(doc["stopped_early"], true, "{doc:#}");
    assert_eq!(doc["exposure"]["share"], 0.25, "{doc:#}");
}

/// The example service of `examples/delivery/service` at `version`, laid
/// out as a release (app.py, metrics.py, quotes.py, VERSION) in `dir`.
fn example_service(dir: &Path, version: &str) -> (Proc, u16) {
    let src = repo_root().join("examples/delivery/service");
    let out = dir.join(format!("service-{version}"));
    std::fs::create_dir_all(&out).expect("mkdir");
    for f in ["app.py", "metrics.py"] {
        std::fs::copy(src.join(f), out.join(f)).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
    for f in ["quotes.py", "VERSION"] {
        let from = src.join("releases").join(version).join(f);
        std::fs::copy(&from, out.join(f))
            .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.arg(out.join("app.py"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null());
    let what = format!("the example service {version}");
    let mut proc = spawn(cmd, dir, &format!("service-{version}"), &what);
    wait_ready(port, "/health", &what, &mut proc);
    (proc, port)
}

/// Sends requests to every port until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(ports: Vec<u16>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for port in &ports {
                    let _ = http_get(*port, "/quote?sku=widget&qty=3");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn monitor_queries_a_real_prometheus_scraping_the_example_service() {
    let p = Project::new();
    let (_v1, port1) = example_service(p.path(), "1.0.0");
    let (_v2, port2) = example_service(p.path(), "2.0.0");
    let _traffic = Traffic::start(vec![port1, port2]);

    p.write(
        "prometheus.yml",
        &format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n\
             \x20 - job_name: quote-v1\n    static_configs: [{{ targets: ['127.0.0.1:{port1}'] }}]\n\
             \x20 - job_name: quote-v2\n    static_configs: [{{ targets: ['127.0.0.1:{port2}'] }}]\n"
        ),
    );
    let mut prom = Prometheus::start(p.path(), "prometheus.yml", "tsdb");
    let prom_port = prom.port;
    // Rates need a few scrapes of both services.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scrapes = prom_value(prom_port, "min(count_over_time(up[1m]))").unwrap_or(0.0);
        if scrapes >= 3.0 {
            break;
        }
        prom.assert_running();
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape the services 3 times in 15s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let stage = |job: &str| {
        format!(
            r#"  {job}:
    uses: {{monitor}}
    with:
      samples: 3
      interval: 1s
      source:
        prometheus:
          address: http://127.0.0.1:{prom_port}
          queries:
            error-rate: '(sum(rate(http_requests_total{{job="{job}",status=~"5.."}}[{{{{window}}}}])) or vector(0)) / sum(rate(http_requests_total{{job="{job}"}}[{{{{window}}}}]))'
            p95-latency: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{job="{job}"}}[5s])))'
            availability: 'avg_over_time(up{{job="{job}"}}[5s])'
      # A scrape that times out on a loaded machine makes `up` 0 once: the
      # availability SLO is loose so that it does not decide this test.
      slo: {{ error-rate: 5%, p95-latency: 500ms, availability: 50%, target: 99% }}
      burn-rate: {{ long-window: 6s, short-window: 3s, threshold: 5 }}
    grants:
      network: ["127.0.0.1:*"]
"#
        )
    };
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: monitor-prometheus\nstages:\n{}{}",
            stage("quote-v1"),
            stage("quote-v2")
        ),
    );
    let run = p.sluice(&["run", "--keep-going", "--jobs", "2"]);
    prom.assert_running();
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());

    let v1 = p.assert_stage(&record, &run.run_id(), "quote-v1", "passed");
    assert_eq!(metric(v1, "monitor.error_rate"), 0.0);
    let up = metric(v1, "monitor.availability");
    assert!(up > 50.0 && up <= 100.0, "{up}");
    let p95 = metric(v1, "monitor.p95_ms");
    assert!(p95 > 0.0 && p95 <= 500.0, "{p95}");
    assert_eq!(metric(v1, "monitor.burn_rate_long"), 0.0);
    for g in ["error-rate", "p95-latency", "availability", "burn-rate"] {
        assert_eq!(gate(v1, g)["verdict"], "pass", "{g}: {v1:#}");
    }

    // 2.0.0 packs a 5-digit nonce into a u16: about a third of quotes fail.
    let v2 = p.assert_stage(&record, &run.run_id(), "quote-v2", "blocked");
    let err = metric(v2, "monitor.error_rate");
    assert!(err > 15.0 && err < 60.0, "error rate {err}%");
    let g = gate(v2, "error-rate");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert!(
        g["message"]
            .as_str()
            .unwrap_or_default()
            .contains("> max 5.00%"),
        "{g:#}"
    );
    assert_eq!(
        gate(v2, "availability")["verdict"],
        "pass",
        "up is 1: {v2:#}"
    );
    let burn = gate(v2, "burn-rate");
    assert_eq!(burn["verdict"], "fail", "{burn:#}");
    assert!(metric(v2, "monitor.burn_rate_short") > 5.0);

    let log = p.log(&run.run_id(), "quote-v2");
    assert!(
        log.contains("t+0.0s: error rate"),
        "instant samples are logged:\n{log}"
    );
    let doc: Value =
        serde_json::from_str(&p.artifact(v2, "monitor.json")).expect("monitor.json is JSON");
    // Every look breaches the 5% SLO: the default failure-limit (2
    // tolerated) ends the 4-look watch at the third.
    assert_eq!(doc["samples"].as_array().map(Vec::len), Some(3), "{doc:#}");
    assert_eq!(doc["stopped_early"], true, "{doc:#}");
    assert_eq!(gate(v2, "failure-limit")["verdict"], "fail", "{v2:#}");

    // A query Prometheus rejects fails the stage with Prometheus' error.
    write(
        &p,
        "sluice.yaml",
        &format!(
            "version: 1\nname: monitor-badquery\nstages:\n  m:\n    uses: {{monitor}}\n    with:\n      window: 0s\n      source:\n        prometheus:\n          address: http://127.0.0.1:{prom_port}\n          queries: {{ availability: 'avg(up{{job=}})' }}\n    grants:\n      network: [\"127.0.0.1:*\"]\n"
        ),
    );
    let (run, s) = run_stage(&p, &["run"], "m");
    assert_eq!(run.code, 1, "{}", run.all());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            "with.source.prometheus.queries.availability: Prometheus rejected the query (bad_data)"
        ),
        "{reason}"
    );
}
