//! Multi-window, multi-burn-rate SLO alerts and the error budget (issue 17), against a real Prometheus.
//!
//! One real service for the whole file (a python3 stdlib server written
//! here) answers `/svc/<name>` with a fixed share of 500s per name — every
//! Nth request fails — and loads itself with real HTTP requests; one real
//! Prometheus (the Debian package, `scripts/setup-delivery-services.sh`)
//! scrapes it every second. Both start once, on first use, and a watcher in
//! the python process stops them when the test process exits.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{free_port, gate, metric, plugin, prom_value, require_prometheus, Project};

use super::delivery_rollback::{build_stage, deploy_stage, write_app};

/// The service, its load and Prometheus. Error shares per service: every
/// Nth request answers 500 (0: none).
const SERVICE: &str = r##"
import os, shutil, subprocess, sys, threading, time, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVERY = {"healthy": 0, "spent": 50, "ticket": 25, "fast": 2}
LOCK = threading.Lock()
SEEN = {n: 0 for n in EVERY}
COUNT = {(n, c): 0 for n in EVERY for c in ("200", "500")}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        parts = self.path.split("?")[0].split("/")
        if self.path == "/metrics":
            with LOCK:
                lines = ["# TYPE http_requests_total counter"] + [
                    'http_requests_total{svc="%s",code="%s"} %d' % (n, c, v)
                    for (n, c), v in sorted(COUNT.items())
                ]
            return self.reply(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
        if len(parts) == 3 and parts[1] == "svc" and parts[2] in EVERY:
            n = parts[2]
            with LOCK:
                SEEN[n] += 1
                every = EVERY[n]
                code = "500" if every and SEEN[n] % every == 0 else "200"
                COUNT[(n, code)] += 1
            return self.reply(int(code), code)
        return self.reply(404, "not found")
    def log_message(self, *a):
        pass

def load(port):
    while True:
        for n in EVERY:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/svc/%s" % (port, n), timeout=5).read()
            except urllib.error.HTTPError:
                pass
            except Exception:
                time.sleep(0.1)
        time.sleep(0.01)

dir, prom_port = sys.argv[1], int(sys.argv[2])
parent = os.getppid()
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
threading.Thread(target=load, args=(port,), daemon=True).start()
config = os.path.join(dir, "prometheus.yml")
with open(config, "w") as f:
    f.write("global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
            "scrape_configs:\n  - job_name: svc\n    static_configs: [{ targets: ['127.0.0.1:%d'] }]\n" % port)
prom = subprocess.Popen(
    ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(dir, "tsdb"),
     "--web.listen-address=127.0.0.1:%d" % prom_port],
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(dir, "prometheus.stderr"), "w"))
print("PORT %d" % port, flush=True)
# The test process owns nothing to drop for a shared fixture: stop when it is gone.
while os.getppid() == parent and prom.poll() is None:
    time.sleep(0.5)
prom.kill()
prom.wait()
shutil.rmtree(dir, ignore_errors=True)
os._exit(0)
"##;

struct Shared {
    svc: u16,
    prom: u16,
}

/// The service and Prometheus, started on first use.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        require_prometheus();
        let dir = std::env::temp_dir().join(format!("sluice-e2e-slo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let script = dir.join("service.py");
        std::fs::write(&script, SERVICE).expect("write service.py");
        let prom = free_port();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .arg(&dir)
            .arg(prom.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("service.stderr")).expect("stderr file"),
            ))
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the service's port");
        let svc: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the service printed {line:?}: {}",
                    std::fs::read_to_string(dir.join("service.stderr")).unwrap_or_default()
                )
            });
        // The python process stops itself and Prometheus when we exit.
        std::mem::forget(child);
        // Rates need a few scrapes with traffic.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let scrapes = prom_value(prom, "count_over_time(up[1m])").unwrap_or(0.0);
            let errors = prom_value(prom, r#"sum(http_requests_total{svc="fast",code="500"})"#)
                .unwrap_or(0.0);
            if scrapes >= 5.0 && errors > 0.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape the service 5 times in 60s: {}",
                std::fs::read_to_string(dir.join("prometheus.stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Shared { svc, prom }
    })
}

/// The error ratio of `svc` over `{{window}}`, as PromQL.
fn ratio(func: &str, svc: &str) -> String {
    format!(
        r#"sum({func}(http_requests_total{{svc="{svc}",code="500"}}[{{{{window}}}}])) / sum({func}(http_requests_total{{svc="{svc}"}}[{{{{window}}}}]))"#
    )
}

/// A monitor stage `name` on Prometheus with `with` (YAML lines indented
/// by 6) under `with:` and the pipeline-level `extra` lines.
fn monitor_stage(name: &str, queries: &str, with: &str, extra: &str) -> String {
    let s = shared();
    format!(
        "  {name}:\n    uses: {}\n    with:\n      source:\n        prometheus:\n          address: http://127.0.0.1:{}\n          queries:\n{queries}{with}{extra}    grants:\n      network: [\"127.0.0.1:*\"]\n",
        plugin("monitor").display(),
        s.prom
    )
}

fn monitor_json(p: &Project, stage: &Value) -> Value {
    serde_json::from_str(&p.artifact(stage, "monitor.json")).expect("monitor.json is JSON")
}

/// build → budget (a look at the error budget, gated) → deploy.
fn budget_gated_pipeline(p: &Project, svc: &str) {
    write_app(p, "1.0.0");
    let budget = monitor_stage(
        "budget",
        &format!("            budget: '{}'\n", ratio("increase", svc)),
        "      window: 0s\n      slo: { target: 99% }\n",
        "    gates:\n      - { metric: monitor.error_budget_remaining, min: 25 }\n",
    );
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: budget-gate\nstages:\n{}{budget}{}",
            build_stage(""),
            deploy_stage("build, budget", LOCAL_RECREATE, "{ workspace: write }"),
        ),
    );
}

/// `with:` lines of a recreate deploy on the local target.
const LOCAL_RECREATE: &str =
    "      target: { kind: local, root: deploy/production }\n      strategy: recreate\n";

/// A spent error budget blocks the deploy behind it; an intact one lets it
/// through. The look takes `window: 0s`: one query over the 30-day period.
#[test]
fn a_budget_gate_blocks_the_deploy_when_the_budget_is_spent() {
    // 1 request in 50 fails against a 99% objective: twice the budget.
    let p = Project::new();
    budget_gated_pipeline(&p, "spent");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let b = p.assert_stage(&record, &run.run_id(), "budget", "blocked");
    let left = metric(b, "monitor.error_budget_remaining");
    assert!(
        left < -50.0 && left > -150.0,
        "2% errors vs 1% budget: {left}"
    );
    let used = metric(b, "monitor.error_budget_consumed");
    assert!((left + used - 100.0).abs() < 1e-6, "{left} + {used}");
    let g = gate(b, "monitor.error_budget_remaining");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert_ne!(record["stages"]["deploy"]["state"], "passed", "{record:#}");
    assert!(
        !p.path().join("deploy/production/state.json").exists(),
        "nothing was deployed"
    );
    let doc = monitor_json(&p, b);
    assert_eq!(doc["measured"]["budget"]["over"], "30days", "{doc:#}");
    assert!(
        b["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("% left over 30days"),
        "{b:#}"
    );

    // No errors: the whole budget is left and the deploy goes ahead.
    let p = Project::new();
    budget_gated_pipeline(&p, "healthy");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let b = &record["stages"]["budget"];
    assert_eq!(metric(b, "monitor.error_budget_remaining"), 100.0);
    assert_eq!(metric(b, "monitor.error_budget_consumed"), 0.0);
    assert_eq!(record["stages"]["deploy"]["state"], "passed", "{record:#}");
    assert!(p.path().join("deploy/production/state.json").exists());
}

/// Half the requests fail: the workbook's page alerts (14.4x over 1h and
/// 5m, 6x over 6h and 30m) fire and fail the stage; the windows are
/// queried as configured.
#[test]
fn a_fast_burn_fires_the_page_alerts_and_fails_the_stage() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: page\nstages:\n{}",
            monitor_stage(
                "watch",
                &format!("            error-rate: '{}'\n", ratio("rate", "fast")),
                "      window: 2s\n      interval: 1s\n      slo: { target: 99% }\n",
                ""
            )
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let s = p.assert_stage(&record, &run.run_id(), "watch", "blocked");
    for name in ["burn-rate-page-1h-5m", "burn-rate-page-6h-30m"] {
        let g = gate(s, name);
        assert_eq!(g["verdict"], "fail", "{g:#}");
        assert!(
            g["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("paging alert fired"),
            "{g:#}"
        );
    }
    for name in ["burn-rate-ticket-1day-2h", "burn-rate-ticket-3days-6h"] {
        assert_eq!(gate(s, name)["verdict"], "warn", "{s:#}");
    }
    let page = metric(s, "monitor.burn_rate_page");
    assert!(
        page > 30.0 && page < 70.0,
        "50% errors vs a 1% budget: {page}"
    );
    assert_eq!(metric(s, "monitor.alerts_fired_page"), 2.0);
    assert_eq!(metric(s, "monitor.alerts_fired_ticket"), 2.0);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("paging alert fired"), "{reason}");
    let doc = monitor_json(&p, s);
    let a = &doc["measured"]["alerts"][0];
    assert_eq!(
        (
            a["long_s"].as_f64(),
            a["short_s"].as_f64(),
            a["fired"].as_bool()
        ),
        (Some(3600.0), Some(300.0), Some(true)),
        "Prometheus windows are queried as configured: {doc:#}"
    );
    assert_eq!(a["severity"], "page");
}

/// 1 request in 25 fails (4x the 1% budget): above the tickets' 3x and
/// 1x, below the pages' 14.4x and 6x. The stage warns and the run goes on.
#[test]
fn a_slow_burn_fires_only_the_ticket_alerts_which_warn() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: ticket\nstages:\n{}",
            monitor_stage(
                "watch",
                &format!("            error-rate: '{}'\n", ratio("rate", "ticket")),
                "      window: 0s\n      slo: { target: 99% }\n      alerts: workbook\n",
                ""
            )
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let s = p.assert_stage(&record, &run.run_id(), "watch", "warned");
    assert_eq!(gate(s, "burn-rate-page-1h-5m")["verdict"], "pass", "{s:#}");
    assert_eq!(gate(s, "burn-rate-page-6h-30m")["verdict"], "pass", "{s:#}");
    for name in ["burn-rate-ticket-1day-2h", "burn-rate-ticket-3days-6h"] {
        let g = gate(s, name);
        assert_eq!(g["verdict"], "warn", "{g:#}");
        assert!(
            g["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("ticket alert fired"),
            "{g:#}"
        );
    }
    let page = metric(s, "monitor.burn_rate_page");
    assert!(page > 3.0 && page < 6.0, "{page}");
    assert_eq!(metric(s, "monitor.alerts_fired_page"), 0.0);
    assert_eq!(metric(s, "monitor.alerts_fired_ticket"), 2.0);
}

/// The scrape source has no history: the alerts' windows shrink to the
/// watch (long:short kept), the gates say so, and the budget covers the
/// watch and says that too.
#[test]
fn scrape_alerts_scale_to_the_watch_and_the_budget_says_what_it_covers() {
    let s = shared();
    let p = Project::new();
    p.write(
        "sluice.yaml",
        &format!(
            r#"version: 1
name: scrape-alerts
stages:
  watch:
    uses: {monitor}
    with:
      window: 3s
      interval: 1s
      source:
        scrape:
          url: http://127.0.0.1:{port}/metrics
          labels: {{ svc: ticket }}
      slo: {{ target: 99% }}
    grants:
      network: ["127.0.0.1:*"]
"#,
            monitor = plugin("monitor").display(),
            port = s.svc
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let st = p.assert_stage(&record, &run.run_id(), "watch", "warned");
    for name in ["burn-rate-page-1h-5m", "burn-rate-page-6h-30m"] {
        assert_eq!(gate(st, name)["verdict"], "pass", "{st:#}");
    }
    let g = gate(st, "burn-rate-ticket-3days-6h");
    assert_eq!(g["verdict"], "warn", "{g:#}");
    let msg = g["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("configured 3days and 6h, scaled to the watch") && !msg.contains("over 3days"),
        "{msg}"
    );
    let doc = monitor_json(&p, st);
    let over = doc["measured"]["budget"]["over"]
        .as_str()
        .unwrap_or_default();
    assert!(
        over.contains("watched (not the 30days SLO period"),
        "{doc:#}"
    );
    let left = metric(st, "monitor.error_budget_remaining");
    assert!(left < -100.0 && left > -600.0, "4% errors vs 1%: {left}");
}

/// Bad alert configurations fail the stage naming the key and the fix.
#[test]
fn a_bad_alert_config_is_a_clear_error() {
    let p = Project::new();
    let q = format!("            error-rate: '{}'\n", ratio("rate", "healthy"));
    let stages = [
        monitor_stage(
            "swapped",
            &q,
            "      window: 0s\n      slo: { target: 99.9% }\n      alerts: [{ long: 5m, short: 1h, factor: 2 }]\n",
            "",
        ),
        monitor_stage(
            "severity",
            &q,
            "      window: 0s\n      slo: { target: 99.9% }\n      alerts: [{ long: 1h, short: 5m, factor: 14.4, severity: sms }]\n",
            "",
        ),
        monitor_stage(
            "no-target",
            &q,
            "      window: 0s\n      alerts: workbook\n",
            "",
        ),
    ];
    p.write(
        "sluice.yaml",
        &format!("version: 1\nname: bad-alerts\nstages:\n{}", stages.concat()),
    );
    let run = p.sluice(&["run", "--keep-going"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    for (stage, want) in [
        ("swapped", "with.alerts[0].short: 1h is longer than long 5m"),
        // The runner checks the published schema first.
        (
            "severity",
            r#"with.alerts.0.severity: "sms" is not one of "page" or "ticket""#,
        ),
        ("no-target", "with.alerts: needs with.slo.target"),
    ] {
        let s = &record["stages"][stage];
        assert_eq!(s["state"], "failed", "{stage}: {s:#}");
        let reason = s["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(want), "{stage}: {reason}");
    }
}

/// Defect: `monitor.exposure_seconds` counted from the watch's start. With
/// a target, it counts from when this run first routed traffic to the
/// release (history.jsonl), here the deploy before a 3s wait.
#[test]
fn exposure_counts_from_the_release_s_first_traffic_in_this_run() {
    let s = shared();
    let p = Project::new();
    write_app(&p, "1.0.0");
    let scrape = |name: &str, needs: &str, window: &str, extra: &str, grants: &str| {
        format!(
            r#"  {name}:
    uses: {monitor}
    needs: [{needs}]
    with:
      window: {window}
      interval: 1s
      source:
        scrape:
          url: http://127.0.0.1:{port}/metrics
          labels: {{ svc: healthy }}
{extra}    grants:
      network: ["127.0.0.1:*"]
{grants}"#,
            monitor = plugin("monitor").display(),
            port = s.svc
        )
    };
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: exposure\nstages:\n{}{}{wait}{watch}",
            build_stage(""),
            deploy_stage("build", LOCAL_RECREATE, "{ workspace: write }"),
            wait = scrape("wait", "deploy", "3s", "", ""),
            watch = scrape(
                "watch",
                "wait",
                "1s",
                "      target: { kind: local, root: deploy/production }\n",
                "      workspace: read\n"
            ),
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let w = &record["stages"]["watch"];
    let exposed = metric(w, "monitor.exposure_seconds");
    // The 3s wait and the 1s watch at least; before the fix, about 1s.
    assert!(exposed >= 4.0, "{exposed}: {w:#}");
    let doc = monitor_json(&p, w);
    let basis = doc["exposure"]["basis"].as_str().unwrap_or_default();
    assert!(
        basis.contains("from its first traffic in this run (weights main=100 at "),
        "{basis}"
    );
    assert!(doc["exposure"]["exposed_at"].is_string(), "{doc:#}");
    assert_eq!(metric(w, "monitor.exposure_share"), 1.0);
}
