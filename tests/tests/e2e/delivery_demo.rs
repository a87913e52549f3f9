//! The delivery example (`examples/delivery`) end to end: the real quote
//! service, the example environment (`env/localenv.py`: one process per
//! slot and a weighted router) on free loopback ports, and the real
//! `sluice` binary running the delivery stages.
//!
//! Needs `python3` and `tar` (both in the base image; `scripts/setup.sh`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_tests::{http_get, metric, plugin, repo_root, wait_for_query, Project, Prometheus};

use super::delivery_switch::Nginx;

pub(super) use sluice_tests::free_port;

pub(super) fn require(program: &str) {
    require_with(program, "scripts/setup.sh", "--version");
}

pub(super) fn require_with(program: &str, setup: &str, version_flag: &str) {
    let ok = Command::new(program)
        .arg(version_flag)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{program}` is needed by the delivery demo tests and is not installed: run {setup}"
    );
}

/// The example environment, started detached; stopped on drop.
pub(super) struct LocalEnv {
    config: PathBuf,
    pub(super) router: u16,
    slots: Vec<(String, u16)>,
}

impl LocalEnv {
    /// Writes `env.json` for `root` (relative to `dir`) with free ports for
    /// `slots`, and starts the environment.
    pub(super) fn start(dir: &Path, root: &str, slots: &[&str]) -> LocalEnv {
        LocalEnv::start_with_load(dir, root, slots, 0.0)
    }

    /// Like [`start`](Self::start), with the environment's load generator
    /// sending `rps` quote requests a second through the router.
    pub(super) fn start_with_load(dir: &Path, root: &str, slots: &[&str], rps: f64) -> LocalEnv {
        LocalEnv::start_full(dir, root, slots, rps, None)
    }

    /// Like [`start_with_load`](Self::start_with_load), with the load sent
    /// to `load_port` (e.g. nginx) instead of the router.
    pub(super) fn start_full(
        dir: &Path,
        root: &str,
        slots: &[&str],
        rps: f64,
        load_port: Option<u16>,
    ) -> LocalEnv {
        require("python3");
        let router = free_port();
        let slots: Vec<(String, u16)> =
            slots.iter().map(|s| (s.to_string(), free_port())).collect();
        let slot_json: serde_json::Map<String, serde_json::Value> = slots
            .iter()
            .map(|(s, p)| (s.clone(), serde_json::json!(p)))
            .collect();
        let config = dir.join("env.json");
        let text = serde_json::json!({
            "root": root,
            "router": router,
            "slots": slot_json,
            "command": ["python3", "{release}/app.py", "--port", "{port}"],
            "load": {
                "rps": rps,
                "paths": ["/quote?sku=widget&qty=3", "/products"],
                "users": 100,
                "target": format!("127.0.0.1:{}", load_port.unwrap_or(router)),
            },
        });
        std::fs::write(&config, text.to_string()).expect("write env.json");
        let env = LocalEnv {
            config,
            router,
            slots,
        };
        let out = env.localenv(&["up", "--detach"]);
        assert!(
            out.status.success(),
            "localenv up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    pub(super) fn localenv(&self, args: &[&str]) -> std::process::Output {
        Command::new("python3")
            .arg(repo_root().join("examples/delivery/env/localenv.py"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run python3 localenv.py")
    }

    pub(super) fn port(&self, slot: &str) -> u16 {
        self.slots
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no slot {slot}"))
    }

    pub(super) fn url(&self, slot: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(slot))
    }

    pub(super) fn router_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.router)
    }
}

impl Drop for LocalEnv {
    fn drop(&mut self) {
        let _ = self.localenv(&["down"]);
    }
}

pub(super) fn version_at(port: u16) -> Option<String> {
    let (status, body) = http_get(port, "/version")?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["version"].as_str().map(str::to_string)
}

/// Waits until `port` answers `/version` with `version`.
pub(super) fn wait_for_version(port: u16, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        last = version_at(port);
        if last.as_deref() == Some(version) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port {port} did not serve {version} within 20 s (last answer {last:?})");
}

/// Copies the quote service's release `version` into
/// `<root>/releases/<version>` as the deploy stage would unpack it.
pub(super) fn install_release(root: &Path, version: &str) {
    let service = repo_root().join("examples/delivery/service");
    let dir = root.join("releases").join(version);
    std::fs::create_dir_all(&dir).expect("mkdir release");
    for f in ["app.py", "metrics.py"] {
        std::fs::copy(service.join(f), dir.join(f)).expect("copy service file");
    }
    for f in ["quotes.py", "VERSION"] {
        std::fs::copy(service.join("releases").join(version).join(f), dir.join(f))
            .expect("copy release file");
    }
    let meta = serde_json::json!({
        "version": version, "artifact": format!("quote-service-{version}.tar.gz"),
        "digest": "sha256:0", "deployed_at": "2026-11-22T05:00:00Z",
    });
    std::fs::write(dir.join(".release.json"), meta.to_string()).expect("write .release.json");
}

pub(super) fn point(root: &Path, slot: &str, version: &str) {
    let slots = root.join("slots");
    std::fs::create_dir_all(&slots).expect("mkdir slots");
    let link = slots.join(slot);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("../releases/{version}"), &link).expect("symlink");
}

/// The bytes of artifact `name` of `stage` in run `run_id`, from the CAS.
pub(super) fn artifact(p: &Project, run_id: &str, stage: &str, name: &str) -> String {
    p.artifact(&p.record(run_id)["stages"][stage], name)
}

/// `incident.json` of the `remediate` stage of run `run_id`.
pub(super) fn incident_json(p: &Project, run_id: &str) -> serde_json::Value {
    serde_json::from_str(&artifact(p, run_id, "remediate", "incident.json")).expect("incident.json")
}

pub(super) fn weights(p: &Project, root: &str) -> serde_json::Value {
    serde_json::from_str(&p.read(&format!("{root}/weights.json"))).expect("weights.json is JSON")
}

/// A canary of 2.0.0 (with its real bug) taking 20% of the traffic, whose
/// analysis failed (the `fixture` plugin reports the failing gate): the
/// `remediate` stage sends every request back to 1.0.0, verifies it on the
/// slot and through the router, and writes the incident report.
#[test]
fn remediate_returns_traffic_to_stable_and_reports_the_failed_gate() {
    let p = Project::new();
    let root_rel = "deploy/production";
    let root = p.path().join(root_rel);
    install_release(&root, "1.0.0");
    install_release(&root, "2.0.0");
    point(&root, "blue", "1.0.0");
    point(&root, "green", "2.0.0");
    p.write(
        &format!("{root_rel}/state.json"),
        r#"{"environment":"production","strategy":"canary",
            "stable":{"slot":"blue","version":"1.0.0"},
            "candidate":{"slot":"green","version":"2.0.0"}}"#,
    );
    p.write(
        &format!("{root_rel}/weights.json"),
        r#"{"routes":[{"slot":"blue","version":"1.0.0","weight":80},
                      {"slot":"green","version":"2.0.0","weight":20}]}"#,
    );
    let env = LocalEnv::start(p.path(), root_rel, &["blue", "green"]);
    wait_for_version(env.port("blue"), "1.0.0");
    wait_for_version(env.port("green"), "2.0.0");

    p.write(
        "sluice.yaml",
        &format!(
            r#"version: 1
name: delivery
stages:
  canary:
    uses: {fixture}
    with:
      mode: metric
      metrics: {{ canary.weight: 20 }}
      gates:
        - {{ name: canary.analysis, verdict: fail, observed: 0.35, threshold: 0.05,
            message: "error-rate 0.35 >= 0.05 on the candidate" }}
  remediate:
    uses: {remediate}
    needs: [canary]
    when: failure
    environment: production
    with:
      target:
        kind: local
        root: {root_rel}
        slots: {{ blue: "{blue}", green: "{green}" }}
      verify: {{ url: "{router}", samples: 20, interval: 200ms }}
    grants: {{ workspace: write, network: ["127.0.0.1:*"] }}
"#,
            fixture = plugin("fixture").display(),
            remediate = plugin("remediate").display(),
            blue = env.url("blue"),
            green = env.url("green"),
            router = env.router_url(),
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(
        run.code,
        1,
        "the canary failed, so the run fails\n{}",
        run.all()
    );
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["canary"]["state"], "blocked", "{record}");
    assert_eq!(
        record["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run.all()
    );
    assert_eq!(
        record["stages"]["remediate"]["outputs"]["action"],
        "weights"
    );
    assert_eq!(record["stages"]["remediate"]["outputs"]["version"], "1.0.0");
    assert_eq!(
        record["stages"]["remediate"]["outputs"]["status"],
        "resolved"
    );

    // Every request goes to 1.0.0 again.
    let w = weights(&p, root_rel);
    assert_eq!(w["routes"].as_array().map(Vec::len), Some(1), "{w}");
    assert_eq!(w["routes"][0]["slot"], "blue");
    assert_eq!(w["routes"][0]["weight"], 100);
    for _ in 0..20 {
        assert_eq!(version_at(env.router).as_deref(), Some("1.0.0"));
    }
    let state: serde_json::Value =
        serde_json::from_str(&p.read(&format!("{root_rel}/state.json"))).expect("state");
    assert!(state.get("candidate").is_none(), "{state}");

    // The incident report names the failed gate with observed vs threshold.
    let md = artifact(&p, &run.run_id(), "remediate", "incident.md");
    assert!(md.contains("**Status:** resolved"), "{md}");
    assert!(
        md.contains("| canary.analysis | **fail** | 0.35 | 0.05 | error-rate 0.35 >= 0.05 on the candidate |"),
        "{md}"
    );
    assert!(md.contains("**weights**"), "{md}");
    assert!(md.contains("Now serving: **1.0.0** on slot blue"), "{md}");
    let json = incident_json(&p, &run.run_id());
    assert_eq!(json["schema"], "sluice.incident/v1");
    assert_eq!(json["verification"]["outcome"], "passed");
    assert_eq!(json["failed_stages"][0]["stage"], "canary");
}

/// Copies `examples/delivery` (without what its runs generate) into `to`.
pub(super) fn copy_delivery_example(from: &Path, to: &Path) {
    const GENERATED: [&str; 4] = [".sluice", "deploy", "dist", "__pycache__"];
    for entry in std::fs::read_dir(from).expect("read example dir").flatten() {
        let name = entry.file_name();
        if GENERATED.iter().any(|g| name == *g) {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_delivery_example(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The delivery example copied into a fresh project, its environment
/// (blue and green under `deploy/production`) started with the load
/// generator sending `rps` requests a second.
pub(super) fn example_with_load(rps: f64) -> (Project, LocalEnv) {
    require("tar");
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let root = "deploy/production";
    std::fs::create_dir_all(p.path().join(root)).expect("mkdir root");
    let env = LocalEnv::start_with_load(p.path(), root, &["blue", "green"], rps);
    (p, env)
}

/// Deploys `version` with the example's bootstrap pipeline (the run must
/// pass) and waits until the router serves it; returns the rewritten
/// pipeline's file name.
pub(super) fn bootstrap(p: &Project, env: &LocalEnv, version: &str) -> String {
    let bootstrap = delivery_pipeline(p, env, "sluice-bootstrap.yaml");
    let run = p.sluice_env(&["run", &bootstrap], &[("SERVICE_VERSION", version)]);
    assert_eq!(run.code, 0, "bootstrap {version}\n{}", run.all());
    wait_for_version(env.router, version);
    bootstrap
}

/// `examples/delivery/<file>` as a user runs it, with this checkout's
/// plugins, the environment's free ports instead of 18100-18102, a shorter
/// monitor window, and no trust policy (the e2e plugins are not all
/// signed). Returns the name of the rewritten file.
pub(super) fn delivery_pipeline(p: &Project, env: &LocalEnv, file: &str) -> String {
    let dist = repo_root().join("dist");
    let text = p
        .read(file)
        .replace("../../dist", &dist.display().to_string())
        .replace("policy: sluice-policy.yaml", "")
        .replace("window: 10s", "window: 3s")
        .replace("127.0.0.1:18100", &format!("127.0.0.1:{}", env.router))
        .replace(
            "127.0.0.1:18101",
            &format!("127.0.0.1:{}", env.port("blue")),
        )
        .replace(
            "127.0.0.1:18102",
            &format!("127.0.0.1:{}", env.port("green")),
        );
    let name = format!("e2e-{file}");
    p.write(&name, &text);
    name
}

/// The demo of the issue (what `scripts/demo-delivery.sh` does): after the
/// first release, `examples/delivery/sluice.yaml` with version 1.0.0
/// promotes it; with 2.0.0 (whose quote tokens overflow for a third of
/// the requests) the canary analysis fails, traffic returns to 1.0.0 on its
/// own, and the incident report names the failed gate.
#[test]
fn delivery_demo_promotes_1_0_0_and_rolls_back_2_0_0() {
    let (p, env) = example_with_load(10.0);
    let root = "deploy/production";
    let bootstrap = delivery_pipeline(&p, &env, "sluice-bootstrap.yaml");
    let pipeline = delivery_pipeline(&p, &env, "sluice.yaml");

    // The first release of the empty environment.
    let run0 = p.sluice_env(&["run", &bootstrap], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run0.code, 0, "bootstrap\n{}", run0.all());

    // 1.0.0 through the whole pipeline: the canary promotes it, monitor
    // watches the router, remediate is skipped.
    let run1 = p.sluice_env(&["run", &pipeline], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run1.code, 0, "1.0.0 must promote\n{}", run1.all());
    let rec1 = p.record(&run1.run_id());
    assert_eq!(rec1["stages"]["build"]["outputs"]["version"], "1.0.0");
    assert_eq!(
        rec1["stages"]["canary"]["outputs"]["decision"], "promoted",
        "{rec1}"
    );
    assert_eq!(
        rec1["stages"]["monitor"]["state"],
        "passed",
        "{}",
        run1.all()
    );
    assert_eq!(rec1["stages"]["remediate"]["state"], "skipped", "{rec1}");
    wait_for_version(env.router, "1.0.0");

    // 2.0.0: the canary aborts, remediate returns all traffic to 1.0.0.
    let run2 = p.sluice_env(&["run", &pipeline], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run2.code, 1, "2.0.0 must fail\n{}", run2.all());
    let id2 = run2.run_id();
    let rec2 = p.record(&id2);
    assert_eq!(
        rec2["stages"]["deploy"]["state"],
        "passed",
        "{}",
        run2.all()
    );
    assert_eq!(rec2["stages"]["smoke"]["state"], "passed", "{}", run2.all());
    let canary = &rec2["stages"]["canary"];
    assert!(
        canary["state"] == "blocked" || canary["state"] == "failed",
        "{canary}"
    );
    assert_eq!(canary["outputs"]["decision"], "aborted", "{canary}");
    assert_eq!(rec2["stages"]["monitor"]["state"], "skipped");
    assert_eq!(
        rec2["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run2.all()
    );
    assert_eq!(rec2["stages"]["remediate"]["outputs"]["version"], "1.0.0");
    assert!(run2.stdout.contains("remediate passed"), "{}", run2.all());

    let w = weights(&p, root);
    let to_v1: u64 = w["routes"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["version"] == "1.0.0")
                .filter_map(|r| r["weight"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    let total: u64 = w["routes"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["weight"].as_u64()).sum())
        .unwrap_or(0);
    assert!(total > 0 && to_v1 == total, "all traffic to 1.0.0: {w}");
    for _ in 0..30 {
        assert_eq!(version_at(env.router).as_deref(), Some("1.0.0"));
    }

    let md = artifact(&p, &id2, "remediate", "incident.md");
    assert!(md.contains("**Status:** resolved"), "{md}");
    assert!(md.contains("**canary** "), "{md}");
    assert!(
        md.contains("canary.analysis"),
        "the failed gate is named\n{md}"
    );
    assert!(md.contains("Now serving: **1.0.0**"), "{md}");

    // Issue 17 defect 9: the time to recover counts from the first exposure
    // of 2.0.0 (the canary's first weight above 0 in this run), not from the
    // end of the failed stage; detection time is exposure → failure.
    let json = incident_json(&p, &id2);
    let exposed_at = json["exposed_at"].as_str().expect("exposed_at");
    let exposure = json["exposure"].as_str().expect("exposure");
    assert!(exposure.starts_with("weights"), "{json}");
    let opened_at = json["opened_at"].as_str().expect("opened_at");
    let (detect, window, ttr) = (
        json["detection_time_s"].as_f64().expect("detection_time_s"),
        json["exposure_window_s"]
            .as_f64()
            .expect("exposure_window_s"),
        json["time_to_recover_s"]
            .as_f64()
            .expect("time_to_recover_s"),
    );
    assert!(secs(exposed_at) < secs(opened_at) && detect > 0.0, "{json}");
    assert!(window > detect && ttr == window, "{json}");
    // Before: counted from the failed stage's end, it left out the time
    // users saw 2.0.0 while the canary analysed it.
    let resolved_at = json["resolved_at"].as_str().expect("resolved_at");
    assert!(
        ttr > secs(resolved_at) - secs(opened_at) + 0.5 * detect,
        "{json}"
    );
    assert!(
        md.contains(&format!("**First exposure:** {exposed_at} (")),
        "{md}"
    );
    assert!(md.contains("**Exposure window:**"), "{md}");
    assert!(md.contains("**Detection time:**"), "{md}");
    // Every timeline entry has a full-precision time, and they are in
    // order.
    let times: Vec<f64> = json["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            let at = e["at"].as_str().expect("at");
            assert!(at.contains('.'), "whole seconds in the timeline: {e}");
            secs(at)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{json}");
    for line in p.read(&format!("{root}/history.jsonl")).lines() {
        let h: serde_json::Value = serde_json::from_str(line).expect("history line");
        assert!(h["at"].as_str().is_some_and(|a| a.contains('.')), "{line}");
    }
}

/// Seconds since 2000-01-01 of an RFC 3339 UTC time
/// (`2026-11-22T05:00:00Z` or with a fraction).
pub(super) fn secs(at: &str) -> f64 {
    let at = at.trim_end_matches('Z');
    let (date, time) = at.split_once('T').expect("T");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let t: Vec<f64> = time.split(':').map(|x| x.parse().expect("time")).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// Feature flags on the nginx target used to be written to `flags.json`
/// and ignored by nginx (issue 17 defect 9), then refused; now nginx
/// routes them. A `strategy: feature-flag` deploy of 2.0.0 at 10% after
/// 1.0.0 writes the flag and, in the generated upstreams file, its
/// `split_clients` on `X-User` to single-server upstreams of the two
/// slots. (The reload is `true` here; delivery_traffic.rs runs real nginx.)
#[test]
fn feature_flags_are_routed_by_nginx_on_the_nginx_target() {
    require("tar");
    let p = Project::new();
    p.write("app/VERSION", "x\n");
    p.write(
        "sluice.yaml",
        &format!(
            r#"version: 1
name: delivery
stages:
  build:
    uses: {build}
    with:
      commands:
        - [mkdir, -p, dist]
        - [tar, -czf, "dist/app-${{{{ env.SERVICE_VERSION }}}}.tar.gz", -C, app, VERSION]
      outputs: ["dist/app-${{{{ env.SERVICE_VERSION }}}}.tar.gz"]
    grants: {{ workspace: write, exec: [mkdir, tar] }}
  deploy:
    uses: {deploy}
    needs: [build]
    environment: production
    with:
      target:
        kind: nginx
        root: deploy/production
        slots: {{ blue: "http://127.0.0.1:18101", green: "http://127.0.0.1:18102" }}
        reload: ["true"]
      version: "${{{{ env.SERVICE_VERSION }}}}"
      strategy: feature-flag
      initial-percent: 10
    grants: {{ workspace: write, exec: ["true"] }}
"#,
            build = plugin("build").display(),
            deploy = plugin("deploy").display(),
        ),
    );
    for v in ["1.0.0", "2.0.0"] {
        let run = p.sluice_env(&["run"], &[("SERVICE_VERSION", v)]);
        assert_eq!(run.code, 0, "{v}\n{}", run.all());
    }
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags.json");
    assert_eq!(
        flags,
        serde_json::json!({"flags": {"release-2.0.0": {"on": "green", "off": "blue", "percent": 10.0}}})
    );
    let conf = p.read("deploy/production/nginx/upstreams.conf");
    for line in [
        "split_clients \"release-2.0.0:$http_x_user\" $sluice_flag { 10.00% sluice__green; * sluice__blue; }",
        "upstream sluice__green {\n    server 127.0.0.1:18102; # 2.0.0\n}",
        "map \"\" $sluice_upstream {\n    default $sluice_by_flag;\n}",
    ] {
        assert!(conf.contains(line), "{line}\n{conf}");
    }
}

/// nginx (`env/nginx.conf`) and Prometheus (`env/prometheus.yml`) of the
/// example on free ports, started by the test and stopped on drop.
pub(super) struct Services {
    _nginx: Nginx,
    prom: Prometheus,
}

impl Services {
    /// nginx on `nginx`, Prometheus on a free port, scraping `env`'s slots.
    pub(super) fn start(dir: &Path, env: &LocalEnv, nginx: u16) -> Services {
        let prom = std::fs::read_to_string(dir.join("env/prometheus.yml"))
            .expect("env/prometheus.yml")
            .replace(
                "127.0.0.1:18101",
                &format!("127.0.0.1:{}", env.port("blue")),
            )
            .replace(
                "127.0.0.1:18102",
                &format!("127.0.0.1:{}", env.port("green")),
            );
        std::fs::write(dir.join("env/prometheus.yml"), prom).expect("write prometheus.yml");
        let nginx = Nginx::start(
            dir,
            nginx,
            &format!(
                "upstream sluice {{\n    server 127.0.0.1:{};\n}}\n",
                env.port("blue")
            ),
        );
        let prom = Prometheus::start(dir, "env/prometheus.yml", "deploy/prometheus/data");
        Services {
            _nginx: nginx,
            prom,
        }
    }

    /// Prometheus' port.
    pub(super) fn prometheus(&self) -> u16 {
        self.prom.port
    }
}

/// `sluice-nginx.yaml`: the same delivery with the `nginx` target (weighted
/// upstreams, a granted `nginx -s reload`) and monitor asking Prometheus,
/// which scrapes the slots. Needs nginx and prometheus
/// (scripts/setup-delivery-services.sh).
#[test]
fn delivery_demo_against_nginx_and_prometheus() {
    require("tar");
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let root = "deploy/production";
    std::fs::create_dir_all(p.path().join(root)).expect("mkdir root");
    let nginx_port = free_port();
    let env = LocalEnv::start_full(p.path(), root, &["blue", "green"], 10.0, Some(nginx_port));
    let services = Services::start(p.path(), &env, nginx_port);
    let bootstrap = delivery_pipeline(&p, &env, "sluice-bootstrap.yaml");
    let text = p
        .read("sluice-nginx.yaml")
        .replace(
            "../../dist",
            &repo_root().join("dist").display().to_string(),
        )
        .replace("policy: sluice-policy.yaml", "")
        .replace("window: 10s", "window: 8s")
        .replace("interval: 2s", "interval: 1s")
        .replace(
            "127.0.0.1:18101",
            &format!("127.0.0.1:{}", env.port("blue")),
        )
        .replace(
            "127.0.0.1:18102",
            &format!("127.0.0.1:{}", env.port("green")),
        )
        .replace("127.0.0.1:18180", &format!("127.0.0.1:{nginx_port}"))
        .replace(
            "127.0.0.1:19090",
            &format!("127.0.0.1:{}", services.prometheus()),
        );
    p.write("e2e-nginx.yaml", &text);

    let run0 = p.sluice_env(&["run", &bootstrap], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run0.code, 0, "bootstrap\n{}", run0.all());
    // The `budget` stage needs two scrapes of the served requests to see
    // an increase (with none, its gate is inconclusive and blocks).
    wait_for_query(
        services.prometheus(),
        r#"sum(increase(http_requests_total{job="quote",path!="/metrics"}[1h]))"#,
    );
    let run1 = p.sluice_env(&["run", "e2e-nginx.yaml"], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run1.code, 0, "1.0.0 must promote\n{}", run1.all());
    let rec1 = p.record(&run1.run_id());
    assert_eq!(
        rec1["stages"]["monitor"]["state"],
        "passed",
        "{}",
        run1.all()
    );

    // Nothing failed yet: the whole error budget is left.
    assert_eq!(
        metric(&rec1["stages"]["budget"], "monitor.error_budget_remaining"),
        100.0,
        "{}",
        run1.all()
    );

    let run2 = p.sluice_env(&["run", "e2e-nginx.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_eq!(run2.code, 1, "2.0.0 must fail\n{}", run2.all());
    let rec2 = p.record(&run2.run_id());
    assert_eq!(
        rec2["stages"]["canary"]["outputs"]["decision"],
        "aborted",
        "{}",
        run2.all()
    );
    assert_eq!(
        rec2["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run2.all()
    );

    // nginx sends everything to the slot serving 1.0.0.
    let stable = rec2["stages"]["remediate"]["outputs"]["slot"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let upstreams = p.read("deploy/production/nginx/upstreams.conf");
    assert!(
        upstreams.contains(&format!("server 127.0.0.1:{} weight=", env.port(&stable))),
        "{upstreams}"
    );
    for _ in 0..20 {
        assert_eq!(version_at(nginx_port).as_deref(), Some("1.0.0"));
    }
    let md = artifact(&p, &run2.run_id(), "remediate", "incident.md");
    assert!(md.contains("canary.analysis"), "{md}");
}

/// A prepared environment with releases 1.0.0 and 2.0.0 on blue and green,
/// the given `state.json`, `weights.json` and `flags.json`, its processes
/// running, and a pipeline where `failing` (the fixture) fails gate `gate`
/// and `remediate` runs `when: failure`. Returns the project, the
/// environment and the run.
pub(super) fn remediate_scenario(
    failing: &str,
    gate: &str,
    state: &str,
    weights: &str,
    flags: Option<&str>,
    blue: &str,
    green: &str,
) -> (Project, LocalEnv, sluice_tests::Run) {
    remediate_scenario_with(failing, gate, state, weights, flags, blue, green, "")
}

/// [`remediate_scenario`] with more `with:` lines for `remediate` (YAML,
/// indented 6 spaces, each ending in a newline).
#[allow(clippy::too_many_arguments)]
pub(super) fn remediate_scenario_with(
    failing: &str,
    gate: &str,
    state: &str,
    weights: &str,
    flags: Option<&str>,
    blue: &str,
    green: &str,
    with: &str,
) -> (Project, LocalEnv, sluice_tests::Run) {
    let p = Project::new();
    let root_rel = "deploy/production";
    let root = p.path().join(root_rel);
    install_release(&root, "1.0.0");
    install_release(&root, "2.0.0");
    point(&root, "blue", blue);
    point(&root, "green", green);
    p.write(&format!("{root_rel}/state.json"), state);
    p.write(&format!("{root_rel}/weights.json"), weights);
    if let Some(f) = flags {
        p.write(&format!("{root_rel}/flags.json"), f);
    }
    let env = LocalEnv::start(p.path(), root_rel, &["blue", "green"]);
    wait_for_version(env.port("blue"), blue);
    wait_for_version(env.port("green"), green);
    p.write(
        "sluice.yaml",
        &format!(
            r#"version: 1
name: delivery
stages:
  {failing}:
    uses: {fixture}
    with:
      mode: metric
      gates:
        - {{ name: {gate}, verdict: fail, observed: 2.5, threshold: 1, message: "{gate} 2.5 > 1" }}
  remediate:
    uses: {remediate}
    needs: [{failing}]
    when: failure
    with:
      target: {{ kind: local, root: {root_rel}, slots: {{ blue: "{blue_url}", green: "{green_url}" }} }}
      verify: {{ url: "{router}", samples: 20, interval: 200ms }}
{with}    grants: {{ workspace: write, network: ["127.0.0.1:*"] }}
"#,
            fixture = plugin("fixture").display(),
            remediate = plugin("remediate").display(),
            blue_url = env.url("blue"),
            green_url = env.url("green"),
            router = env.router_url(),
        ),
    );
    let run = p.sluice(&["run"]);
    (p, env, run)
}

/// 2.0.0 was promoted (green, 100%) and then failed its monitoring window:
/// `remediate` rolls back to the previous release, 1.0.0 on blue.
#[test]
fn remediate_rolls_back_a_promoted_release_when_monitor_fails() {
    let (p, env, run) = remediate_scenario(
        "monitor",
        "error-rate",
        r#"{"environment":"production","strategy":"canary",
            "stable":{"slot":"green","version":"2.0.0"},
            "previous":{"slot":"blue","version":"1.0.0"}}"#,
        r#"{"routes":[{"slot":"green","version":"2.0.0","weight":100}]}"#,
        None,
        "1.0.0",
        "2.0.0",
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run.all()
    );
    assert_eq!(
        record["stages"]["remediate"]["outputs"]["action"],
        "rollback"
    );
    assert_eq!(record["stages"]["remediate"]["outputs"]["slot"], "blue");
    let state: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/state.json")).expect("state");
    assert_eq!(state["stable"]["version"], "1.0.0", "{state}");
    for _ in 0..20 {
        assert_eq!(version_at(env.router).as_deref(), Some("1.0.0"));
    }
    let md = artifact(&p, &run.run_id(), "remediate", "incident.md");
    assert!(
        md.contains("| error-rate | **fail** | 2.5 | 1 | error-rate 2.5 > 1 |"),
        "{md}"
    );
    assert!(
        md.contains("monitor failed gate error-rate; rollback to 1.0.0 (slot blue)"),
        "{md}"
    );
}

/// 2.0.0 behind a feature flag for 30% of the users: `remediate` turns the
/// flag off, so every user (routed by `X-User`) gets 1.0.0 again.
#[test]
fn remediate_turns_a_feature_flag_off() {
    let (p, env, run) = remediate_scenario(
        "canary",
        "canary.analysis",
        r#"{"environment":"production","strategy":"feature-flag",
            "stable":{"slot":"blue","version":"1.0.0"},
            "candidate":{"slot":"green","version":"2.0.0"}}"#,
        r#"{"routes":[{"slot":"blue","version":"1.0.0","weight":100},
                      {"slot":"green","version":"2.0.0","weight":0}]}"#,
        Some(r#"{"flags":{"release-2.0.0":{"on":"green","off":"blue","percent":30.0}}}"#),
        "1.0.0",
        "2.0.0",
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["remediate"]["state"],
        "passed",
        "{}",
        run.all()
    );
    assert_eq!(record["stages"]["remediate"]["outputs"]["action"], "flag");
    assert_eq!(
        record["stages"]["remediate"]["outputs"]["status"],
        "resolved"
    );
    // The flag is gone, not left at 0% to route users to whatever its slot
    // serves next.
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags");
    assert_eq!(flags, serde_json::json!({"flags": {}}), "{flags}");
    // user-1 (bucket 4452) and user-2 (8056) and everyone else: 1.0.0.
    for user in ["user-1", "user-2", "alice", "bob"] {
        assert_eq!(version_for_user(env.router, user), "1.0.0", "{user}");
    }
    // Verified as users are routed: 100 user ids, all on 1.0.0.
    let json = incident_json(&p, &run.run_id());
    let msg = json["verification"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("100 of 100 users (one request per X-User user-0..user-99) answered 1.0.0"),
        "{msg}"
    );
}

/// The `/version` the router answers for user `user` (`X-User`).
pub(super) fn version_for_user(router: u16, user: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", router)).expect("router");
    write!(
        s,
        "GET /version HTTP/1.1\r\nHost: x\r\nX-User: {user}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{user}: {e}: {raw}"));
    v["version"].as_str().unwrap_or_default().to_string()
}

/// Issue 17: 1.0.0 went out behind flag `release-1.0.0` at 5% on green and
/// was promoted, but the flag stayed (on green, off blue); the next canary
/// put 2.0.0 on blue at weight 0, so the flag sent 95% of the users to it.
/// Its canary failed: `remediate` (auto: weights) must take the flag away
/// too, and verify as users are routed, not only with anonymous requests.
#[test]
fn remediate_removes_a_leftover_flag_that_routes_users_to_the_candidate() {
    let (p, env, run) = remediate_scenario(
        "canary",
        "canary.analysis",
        r#"{"environment":"production","strategy":"canary",
            "stable":{"slot":"green","version":"1.0.0"},
            "candidate":{"slot":"blue","version":"2.0.0"}}"#,
        r#"{"routes":[{"slot":"green","version":"1.0.0","weight":100},
                      {"slot":"blue","version":"2.0.0","weight":0}]}"#,
        Some(r#"{"flags":{"release-1.0.0":{"on":"green","off":"blue","percent":5.0}}}"#),
        "2.0.0",
        "1.0.0",
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let r = &record["stages"]["remediate"];
    assert_eq!(r["state"], "passed", "{}", run.all());
    assert_eq!(r["outputs"]["action"], "weights", "{r}");
    assert_eq!(r["outputs"]["status"], "resolved", "{r}");
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags");
    assert_eq!(flags, serde_json::json!({"flags": {}}), "{flags}");
    let history = p.read("deploy/production/history.jsonl");
    assert!(
        history.contains("release-1.0.0 removed (was 5% on=green off=blue)"),
        "{history}"
    );
    for i in 0..50 {
        let user = format!("user-{i}");
        assert_eq!(version_for_user(env.router, &user), "1.0.0", "{user}");
    }
}

/// A flag other than the one `remediate` takes away still sends 30% of
/// the users to the bad release: verification samples 100 user ids, sees
/// them reach 2.0.0 and does not report the incident resolved.
#[test]
fn remediate_verification_catches_a_flag_still_routing_users_to_the_bad_release() {
    let (p, _env, run) = remediate_scenario_with(
        "canary",
        "canary.analysis",
        r#"{"environment":"production","strategy":"feature-flag",
            "stable":{"slot":"blue","version":"1.0.0"},
            "candidate":{"slot":"green","version":"2.0.0"}}"#,
        r#"{"routes":[{"slot":"blue","version":"1.0.0","weight":100},
                      {"slot":"green","version":"2.0.0","weight":0}]}"#,
        Some(
            r#"{"flags":{"release-2.0.0":{"on":"green","off":"blue","percent":10.0},
                         "new-checkout":{"on":"green","off":"blue","percent":30.0}}}"#,
        ),
        "1.0.0",
        "2.0.0",
        "      action: flag\n      flag: release-2.0.0\n",
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let r = &record["stages"]["remediate"];
    assert_eq!(r["outputs"]["status"], "unresolved", "{r}\n{}", run.all());
    assert_ne!(r["state"], "passed", "{r}");
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags");
    assert!(flags["flags"].get("release-2.0.0").is_none(), "{flags}");
    assert_eq!(flags["flags"]["new-checkout"]["percent"], 30.0, "{flags}");
    let json = incident_json(&p, &run.run_id());
    assert_eq!(json["verification"]["outcome"], "failed", "{json:#}");
    let msg = json["verification"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("of 100 users (one request per X-User user-0..user-99) did not get 1.0.0")
            && msg.contains("2.0.0 ×"),
        "{msg}"
    );
}

/// The example's pipelines and trust policy are valid as shipped.
#[test]
fn delivery_example_files_are_valid() {
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let dist = repo_root().join("dist");
    const PIPELINES: [&str; 7] = [
        "sluice.yaml",
        "sluice-bootstrap.yaml",
        "sluice-nginx.yaml",
        "guide-canary.yaml",
        "guide-feature-flag.yaml",
        "guide-rolling.yaml",
        "guide-blue-green.yaml",
    ];
    for file in PIPELINES.iter().chain(&["sluice-policy.yaml"]) {
        let text = p
            .read(file)
            .replace("../../dist", &dist.display().to_string());
        p.write(file, &text);
    }
    for file in PIPELINES {
        let run = p.sluice(&["validate", file]);
        assert_eq!(run.code, 0, "{file}\n{}", run.all());
    }
    let run = p.sluice(&["policy", "check", "sluice-policy.yaml"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

/// The example's own unit tests: the quote service (both releases) and the
/// environment (bucketing vectors, routing, a link switch).
#[test]
fn delivery_example_unit_tests_pass() {
    require("python3");
    for dir in ["service", "env"] {
        let out = Command::new("python3")
            .args(["-B", "-m", "unittest", "-v"])
            .current_dir(repo_root().join("examples/delivery").join(dir))
            .output()
            .expect("run python3 -m unittest");
        assert!(
            out.status.success(),
            "examples/delivery/{dir}: python3 -m unittest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
