//! The `deploy` delivery stage through the real binary: every strategy on
//! the `local` target (files, links and outputs), a rolling deploy that
//! fails in its second batch and rolls the first back, the `nginx` target
//! against a real nginx on loopback, and the `http` target against a
//! webhook server. Artifacts come from the `build` stage of the same
//! pipeline (a granted `sh` runs `tar`).
//!
//! The slot applications and the webhook are small Python servers under
//! `tests/fixtures/delivery/`; nginx comes from
//! `scripts/setup-delivery-services.sh`. A missing program fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{free_port, metric, plugin, repo_root, Project};

// ---------------------------------------------------------------- helpers

/// A process started by a test, killed when dropped.
struct Server {
    child: Child,
    what: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Fails the test when the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.what);
        }
    }
}

/// Waits until something accepts on `port`.
fn wait_for_port(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        server.assert_running();
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} did not listen on 127.0.0.1:{port} within 15s",
        server.what
    );
}

/// Starts `tests/fixtures/delivery/<script>` with python3 on `port`.
fn python_server(script: &str, port: u16, args: &[&str]) -> Server {
    let path = repo_root().join("tests/fixtures/delivery").join(script);
    let child = Command::new("python3")
        .arg(&path)
        .arg(port.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start python3 ({e}): the deploy e2e tests need python3 on PATH \
                 (scripts/setup.sh installs it)"
            )
        });
    let mut s = Server {
        child,
        what: format!("{script} on port {port}"),
    };
    wait_for_port(port, &mut s);
    s
}

/// A slot application on `port` reporting the version `link` points at.
fn slot_server(port: u16, name: &str, link: &Path, status: u16) -> Server {
    let link = link.display().to_string();
    let status = status.to_string();
    python_server(
        "slot_server.py",
        port,
        &[name, "--slot-link", &link, "--status", &status],
    )
}

/// A plain HTTP/1.0 GET; returns (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// The pipeline: `build` tars `app/` into `out/app.tgz` with the version
/// from `app/VERSION`; `deploy` runs with `with` (YAML lines indented by
/// 6) and `grants`.
fn pipeline(p: &Project, with: &str, grants: &str) {
    let yaml = r#"version: 1
name: deliver
stages:
  build:
    uses: BUILD
    with:
      commands:
        - [sh, -c, "mkdir -p out && tar czf out/app.tgz -C app ."]
      outputs: [out/app.tgz]
      version-file: app/VERSION
    grants: { workspace: write, exec: [sh] }
  deploy:
    uses: DEPLOY
    needs: [build]
    environment: production
    with:
      version: "${{ stages.build.outputs.version }}"
WITH    grants: GRANTS
"#
    .replace("BUILD", &plugin("build").display().to_string())
    .replace("DEPLOY", &plugin("deploy").display().to_string())
    .replace("WITH", with)
    .replace("GRANTS", grants);
    p.write("sluice.yaml", &yaml);
}

/// Writes release `version` of the app.
fn release(p: &Project, version: &str) {
    p.write("app/VERSION", &format!("{version}\n"));
    p.write("app/index.html", &format!("hello {version}\n"));
}

/// Runs the pipeline and returns the deploy stage's record.
/// The build's `digest` output is copied into the record as
/// `build-digest`.
fn run(p: &Project) -> (i32, Value, String) {
    let run = p.sluice(&["run"]);
    let record = p.record(&run.run_id());
    let mut deploy = record["stages"]["deploy"].clone();
    deploy["build-digest"] = record["stages"]["build"]["outputs"]["digest"].clone();
    (run.code, deploy, run.all())
}

/// Runs the pipeline, which must pass, and returns the deploy record.
fn deploy_ok(p: &Project, version: &str) -> Value {
    release(p, version);
    let (code, deploy, all) = run(p);
    assert_eq!(code, 0, "{all}\n{deploy:#}");
    assert_eq!(deploy["state"], "passed", "{deploy:#}");
    assert_eq!(deploy["outputs"]["version"], version, "{deploy:#}");
    deploy
}

fn json(p: &Project, rel: &str) -> Value {
    serde_json::from_str(&p.read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

fn link(p: &Project, rel: &str) -> String {
    std::fs::read_link(p.path().join(rel))
        .unwrap_or_else(|e| panic!("{rel} is not a link: {e}"))
        .display()
        .to_string()
}

/// Every instance slot of `ports` links to release `version`; `context`
/// is added to the failure message.
fn assert_instances_on(p: &Project, ports: &[(String, u16)], version: &str, context: &str) {
    for (slot, _) in ports {
        assert_eq!(
            link(p, &format!("{ROOT}/slots/{slot}")),
            format!("../releases/{version}"),
            "{slot}\n{context}"
        );
    }
}

fn history(p: &Project, root: &str) -> Vec<Value> {
    p.read(&format!("{root}/history.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("history line is JSON"))
        .collect()
}

fn sv(slot: &str, version: &str) -> Value {
    serde_json::json!({"slot": slot, "version": version})
}

/// No temporary files are left beside the atomically replaced ones.
fn assert_no_temp_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".tmp-") && !name.contains(".link-") && !name.contains(".installing-"),
            "temporary file left: {}",
            entry.path().display()
        );
    }
}

const ROOT: &str = "deploy/production";

// ------------------------------------------------------------ strategies

#[test]
fn recreate_replaces_main_and_keeps_previous() {
    let p = Project::new();
    pipeline(
        &p,
        "      target: { kind: local, root: deploy/production }\n      strategy: recreate\n",
        "{ workspace: write }",
    );
    let d1 = deploy_ok(&p, "1.0.0");
    assert_eq!(d1["outputs"]["previous-version"], "");
    assert_eq!(d1["outputs"]["slot"], "main");
    assert_eq!(d1["outputs"]["environment"], "production");
    assert_eq!(d1["outputs"]["strategy"], "recreate");

    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["previous-version"], "1.0.0");
    assert_eq!(d2["outputs"]["stable-slot"], "main");
    assert!(metric(&d2, "deploy.duration_s") >= 0.0);

    assert_eq!(
        link(&p, "deploy/production/slots/main"),
        "../releases/2.0.0"
    );
    assert_eq!(
        p.read("deploy/production/slots/main/index.html"),
        "hello 2.0.0\n"
    );
    assert_eq!(
        p.read("deploy/production/releases/1.0.0/index.html"),
        "hello 1.0.0\n"
    );
    let meta = json(&p, "deploy/production/releases/2.0.0/.release.json");
    assert_eq!(meta["version"], "2.0.0");
    assert_eq!(meta["artifact"], "build/out/app.tgz");
    assert_eq!(meta["digest"], d2["build-digest"], "{meta:#}");
    assert!(meta["digest"]
        .as_str()
        .unwrap_or_default()
        .starts_with("sha256:"));

    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["environment"], "production");
    assert_eq!(state["strategy"], "recreate");
    assert_eq!(state["stable"], sv("main", "2.0.0"));
    assert_eq!(state["previous"], sv("main", "1.0.0"));
    assert!(state.get("candidate").is_none(), "{state:#}");
    let weights = json(&p, "deploy/production/weights.json");
    assert_eq!(
        weights,
        serde_json::json!({"routes": [{"slot": "main", "version": "2.0.0", "weight": 100}]})
    );
    let h = history(&p, ROOT);
    let actions: Vec<&str> = h.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["install", "point", "weights", "install", "point", "weights"],
        "{h:#?}"
    );
    assert_eq!(h[4]["slot"], "main");
    assert_eq!(h[4]["version"], "2.0.0");
    assert_eq!(h[4]["stage"], "deploy");
    assert_no_temp_files(&p.path().join(ROOT));
    assert_no_temp_files(&p.path().join("deploy/production/slots"));
    assert_no_temp_files(&p.path().join("deploy/production/releases"));
}

/// `target:` with local root and the given slots as YAML lines.
fn local_target(slots: &[(&str, u16)]) -> String {
    let mut t =
        String::from("      target:\n        kind: local\n        root: deploy/production\n");
    if !slots.is_empty() {
        t.push_str("        slots:\n");
        for (slot, port) in slots {
            t.push_str(&format!("          {slot}: http://127.0.0.1:{port}\n"));
        }
    }
    t
}

/// `grants:` with workspace write and network for the ports.
fn grants(ports: &[u16]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!("{{ workspace: write, network: [{}] }}", hosts.join(", "))
}

#[test]
fn blue_green_checks_the_idle_slot_switches_and_keeps_previous() {
    let p = Project::new();
    let (pb, pg) = (free_port(), free_port());
    let slots = p.path().join("deploy/production/slots");
    let _blue = slot_server(pb, "blue", &slots.join("blue"), 200);
    let _green = slot_server(pg, "green", &slots.join("green"), 200);
    let with = |auto: bool| {
        format!(
            "{}      strategy: blue-green\n      auto-promote: {auto}\n      health-check: {{ retries: 3, interval: 200ms }}\n",
            local_target(&[("blue", pb), ("green", pg)])
        )
    };
    pipeline(&p, &with(true), &grants(&[pb, pg]));

    // First deploy: nothing is stable, so blue takes it.
    let d1 = deploy_ok(&p, "1.0.0");
    assert_eq!(d1["outputs"]["slot"], "blue");
    assert_eq!(d1["outputs"]["stable-slot"], "blue");
    assert_eq!(d1["outputs"]["url"], format!("http://127.0.0.1:{pb}"));
    assert_eq!(
        link(&p, "deploy/production/slots/blue"),
        "../releases/1.0.0"
    );

    // Second: to the idle green, checked (its server reports 2.0.0), switched.
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["slot"], "green");
    assert_eq!(d2["outputs"]["stable-slot"], "green");
    assert_eq!(d2["outputs"]["previous-version"], "1.0.0");
    assert_eq!(d2["outputs"]["url"], format!("http://127.0.0.1:{pg}"));
    assert!(metric(&d2, "deploy.health_attempts") >= 1.0);
    assert_eq!(
        link(&p, "deploy/production/slots/green"),
        "../releases/2.0.0"
    );
    assert_eq!(
        link(&p, "deploy/production/slots/blue"),
        "../releases/1.0.0"
    );
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["strategy"], "blue-green");
    assert_eq!(state["stable"], sv("green", "2.0.0"));
    assert_eq!(state["previous"], sv("blue", "1.0.0"));
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(
        w["routes"],
        serde_json::json!([{"slot": "green", "version": "2.0.0", "weight": 100}])
    );
    assert!(history(&p, ROOT)
        .iter()
        .any(|h| h["action"] == "promote" && h["slot"] == "green"));

    // Third, without auto-promote: blue becomes the candidate, green keeps all traffic.
    pipeline(&p, &with(false), &grants(&[pb, pg]));
    let d3 = deploy_ok(&p, "3.0.0");
    assert_eq!(d3["outputs"]["slot"], "blue");
    assert_eq!(d3["outputs"]["stable-slot"], "green");
    assert_eq!(d3["outputs"]["previous-version"], "2.0.0");
    assert!(
        d3["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("not promoted"),
        "{d3:#}"
    );
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["stable"], sv("green", "2.0.0"));
    assert_eq!(state["candidate"], sv("blue", "3.0.0"));
    assert_eq!(state["previous"], sv("blue", "1.0.0"));
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(
        w["routes"],
        serde_json::json!([
            {"slot": "green", "version": "2.0.0", "weight": 100},
            {"slot": "blue", "version": "3.0.0", "weight": 0}
        ])
    );
    // The slot application really serves through the switched link.
    assert_eq!(http_get(pb, "/version"), (200, "3.0.0\n".to_string()));
}

#[test]
fn blue_green_does_not_switch_to_an_unhealthy_slot() {
    let p = Project::new();
    let (pb, pg) = (free_port(), free_port());
    let slots = p.path().join("deploy/production/slots");
    let _blue = slot_server(pb, "blue", &slots.join("blue"), 200);
    let _green = slot_server(pg, "green", &slots.join("green"), 503);
    pipeline(
        &p,
        &format!(
            "{}      strategy: blue-green\n      health-check: {{ retries: 1, interval: 100ms }}\n",
            local_target(&[("blue", pb), ("green", pg)])
        ),
        &grants(&[pb, pg]),
    );
    deploy_ok(&p, "1.0.0");
    release(&p, "2.0.0");
    let (code, d, all) = run(&p);
    assert_ne!(code, 0, "{all}");
    assert_eq!(d["state"], "blocked", "{d:#}");
    let gate = &d["gates"][0];
    assert_eq!(gate["name"], "deploy.pre-promotion", "{d:#}");
    assert_eq!(gate["verdict"], "fail");
    assert!(
        gate["message"]
            .as_str()
            .unwrap_or_default()
            .contains("answered 503"),
        "{gate:#}"
    );
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["stable"], sv("blue", "1.0.0"));
    assert_eq!(state["candidate"], sv("green", "2.0.0"));
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(
        w["routes"][0],
        serde_json::json!({"slot": "blue", "version": "1.0.0", "weight": 100})
    );
    assert_eq!(w["routes"][1]["weight"], 0);
}

#[test]
fn canary_starts_the_candidate_at_its_initial_weight() {
    let p = Project::new();
    pipeline(
        &p,
        &format!(
            "{}      strategy: canary\n      initial-weight: 10\n",
            local_target(&[])
        ),
        "{ workspace: write }",
    );
    let d1 = deploy_ok(&p, "1.0.0");
    assert_eq!(d1["outputs"]["slot"], "blue");
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["slot"], "green");
    assert_eq!(d2["outputs"]["stable-slot"], "blue");
    assert_eq!(d2["outputs"]["url"], "");
    assert_eq!(metric(&d2, "deploy.weight"), 10.0);
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(
        w["routes"],
        serde_json::json!([
            {"slot": "blue", "version": "1.0.0", "weight": 90},
            {"slot": "green", "version": "2.0.0", "weight": 10}
        ])
    );
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["strategy"], "canary");
    assert_eq!(state["stable"], sv("blue", "1.0.0"));
    assert_eq!(state["candidate"], sv("green", "2.0.0"));
    assert_eq!(
        link(&p, "deploy/production/slots/green"),
        "../releases/2.0.0"
    );
}

#[test]
fn feature_flag_puts_the_release_behind_a_flag() {
    let p = Project::new();
    pipeline(
        &p,
        &format!(
            "{}      strategy: feature-flag\n      initial-percent: 5\n",
            local_target(&[])
        ),
        "{ workspace: write }",
    );
    deploy_ok(&p, "1.0.0");
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["flag"], "release-2.0.0");
    assert_eq!(metric(&d2, "deploy.flag_percent"), 5.0);
    let flags = json(&p, "deploy/production/flags.json");
    assert_eq!(
        flags,
        serde_json::json!({"flags": {"release-2.0.0": {"on": "green", "off": "blue", "percent": 5.0}}})
    );
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["candidate"], sv("green", "2.0.0"));
    assert_eq!(state["stable"], sv("blue", "1.0.0"));
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(w["routes"][0]["weight"], 100);
    assert_eq!(w["routes"][1]["weight"], 0);
    assert!(history(&p, ROOT).iter().any(|h| h["action"] == "flag"));
}

// ---------------------------------------------------------------- rolling

/// `n` instance slots on fresh ports.
fn instance_ports(n: usize) -> Vec<(String, u16)> {
    (0..n)
        .map(|i| (format!("instance-{i}"), free_port()))
        .collect()
}

/// `n` instances that all answer 200: their slots and ports, their running
/// servers (stopped on drop), and the network grants that reach them.
fn healthy_instances(p: &Project, n: usize) -> (Vec<(String, u16)>, Vec<Server>, String) {
    let ports = instance_ports(n);
    let slots = p.path().join("deploy/production/slots");
    let servers = ports
        .iter()
        .map(|(s, port)| slot_server(*port, s, &slots.join(s), 200))
        .collect();
    let g = grants(&ports.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    (ports, servers, g)
}

fn rolling_with(ports: &[(String, u16)], batch: u32, health: &str) -> String {
    let slots: Vec<(&str, u16)> = ports.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    format!(
        "{}      strategy: rolling\n      instances: {}\n      batch-size: {batch}\n      health-check: {health}\n",
        local_target(&slots),
        ports.len()
    )
}

#[test]
fn rolling_updates_every_instance_in_batches() {
    let p = Project::new();
    let (ports, _servers, g) = healthy_instances(&p, 3);
    pipeline(
        &p,
        &rolling_with(&ports, 2, "{ retries: 3, interval: 200ms }"),
        &g,
    );
    let d1 = deploy_ok(&p, "1.0.0");
    assert_eq!(metric(&d1, "deploy.batches"), 2.0);
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["previous-version"], "1.0.0");
    assert_eq!(d2["outputs"]["slot"], "instance-0");
    assert_eq!(metric(&d2, "deploy.batches_completed"), 2.0);
    assert_eq!(metric(&d2, "deploy.rolled_back"), 0.0);
    for (slot, port) in &ports {
        assert_eq!(
            link(&p, &format!("{ROOT}/slots/{slot}")),
            "../releases/2.0.0"
        );
        assert_eq!(http_get(*port, "/version").1, "2.0.0\n");
    }
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["strategy"], "rolling");
    assert_eq!(
        state["instances"],
        serde_json::json!([
            sv("instance-0", "2.0.0"),
            sv("instance-1", "2.0.0"),
            sv("instance-2", "2.0.0")
        ])
    );
    assert_eq!(state["previous"], sv("instance-0", "1.0.0"));
    let w = json(&p, "deploy/production/weights.json");
    assert_eq!(w["routes"].as_array().map(Vec::len), Some(3));
}

#[test]
fn rolling_deploy_failing_in_its_second_batch_rolls_back_the_first() {
    let p = Project::new();
    let ports = instance_ports(6);
    let slots = p.path().join("deploy/production/slots");
    // instance-2 (the second batch) answers /health with 500.
    let _servers: Vec<Server> = ports
        .iter()
        .take(4)
        .map(|(s, port)| {
            let status = if s == "instance-2" { 500 } else { 200 };
            slot_server(*port, s, &slots.join(s), status)
        })
        .collect();
    let g = grants(&ports.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    pipeline(&p, &rolling_with(&ports, 2, "false"), &g);
    deploy_ok(&p, "1.0.0");

    pipeline(
        &p,
        &rolling_with(&ports, 2, "{ retries: 1, interval: 100ms }"),
        &g,
    );
    release(&p, "2.0.0");
    let (code, d, all) = run(&p);
    assert_ne!(code, 0, "{all}");
    assert_eq!(d["state"], "blocked", "{d:#}");
    assert_eq!(d["outputs"]["failed-batch"], "2", "{d:#}");
    assert_eq!(metric(&d, "deploy.batches_completed"), 1.0);
    assert_eq!(metric(&d, "deploy.rolled_back"), 1.0);
    let gate = &d["gates"][0];
    assert_eq!(gate["name"], "deploy.rolling");
    assert_eq!(gate["verdict"], "fail");
    let msg = gate["message"].as_str().unwrap_or_default();
    assert!(msg.contains("failed in batch 2 of 3"), "{msg}");
    assert!(msg.contains("instance-2"), "{msg}");
    assert!(msg.contains("answered 500"), "{msg}");
    assert!(msg.contains("rolled back batches 1, 2"), "{msg}");
    assert!(
        d["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("batch 2"),
        "{d:#}"
    );

    // Every instance serves 1.0.0 again; batch 3 was never touched.
    assert_instances_on(&p, &ports, "1.0.0", "");
    let h = history(&p, ROOT);
    let moved: Vec<String> = h
        .iter()
        .filter(|e| e["action"] == "point" && e["version"] == "2.0.0")
        .filter_map(|e| e["slot"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        moved,
        ["instance-0", "instance-1", "instance-2", "instance-3"],
        "{h:#?}"
    );
    let back: Vec<String> = h
        .iter()
        .filter(|e| e["action"] == "point" && e["version"] == "1.0.0" && e["detail"] == "was 2.0.0")
        .filter_map(|e| e["slot"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        back,
        ["instance-3", "instance-2", "instance-1", "instance-0"],
        "{h:#?}"
    );
    assert!(h.iter().any(|e| e["action"] == "rollback"));
    let state = json(&p, "deploy/production/state.json");
    let versions: Vec<&str> = state["instances"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["version"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(versions, ["1.0.0"; 6], "{state:#}");
    assert_eq!(state["stable"], sv("instance-0", "1.0.0"));
}

/// Rolling `with:` lines with `batch-size` as written (e.g. `34%`) and
/// `pause` when given.
fn rolling_pause_with(
    ports: &[(String, u16)],
    batch: &str,
    pause: Option<&str>,
    health: &str,
) -> String {
    let slots: Vec<(&str, u16)> = ports.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    format!(
        "{}      strategy: rolling\n      instances: {}\n      batch-size: {batch}\n{}      health-check: {health}\n",
        local_target(&slots),
        ports.len(),
        pause
            .map(|p| format!("      pause: {p}\n"))
            .unwrap_or_default()
    )
}

/// The `batch` history entries of `version`, as their details.
fn batch_entries(h: &[Value], version: &str) -> Vec<String> {
    h.iter()
        .filter(|e| e["action"] == "batch" && e["version"] == version)
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .collect()
}

/// Issue 17, defect 8: `batch-size` as a percentage (3 instances at 34% →
/// ceil(1.02) = 2 per batch → 2 batches) and a `pause` between batches
/// (one pause: none after the last batch), recorded in order.
#[test]
fn rolling_percentage_batches_pause_between_batches() {
    let p = Project::new();
    let (ports, _servers, g) = healthy_instances(&p, 3);
    pipeline(&p, &rolling_pause_with(&ports, "34%", None, "false"), &g);
    deploy_ok(&p, "1.0.0");

    pipeline(
        &p,
        &rolling_pause_with(&ports, "34%", Some("1s"), "{ retries: 3, interval: 200ms }"),
        &g,
    );
    let started = Instant::now();
    let d = deploy_ok(&p, "2.0.0");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "no pause: {took:?}");
    assert_eq!(metric(&d, "deploy.batches"), 2.0, "{d:#}");
    assert_eq!(metric(&d, "deploy.batches_completed"), 2.0, "{d:#}");
    assert_eq!(metric(&d, "deploy.rolled_back"), 0.0, "{d:#}");
    // Each instance is probed once after its move; batch 1 once more
    // after the pause.
    assert_eq!(metric(&d, "deploy.health_attempts"), 5.0, "{d:#}");

    let h = history(&p, ROOT);
    assert_eq!(
        batch_entries(&h, "2.0.0"),
        [
            "batch 1 of 2 healthy: instance-0, instance-1; pausing 1s",
            "batch 2 of 2 healthy: instance-2"
        ],
        "{h:#?}"
    );
    // In order: batch 1's points, its batch entry, batch 2's point, its
    // batch entry.
    let order: Vec<String> = h
        .iter()
        .filter(|e| e["version"] == "2.0.0" && (e["action"] == "point" || e["action"] == "batch"))
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap_or_default(),
                e["slot"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "point instance-0",
            "point instance-1",
            "batch instance-0",
            "point instance-2",
            "batch instance-2"
        ],
        "{h:#?}"
    );
    for (slot, port) in &ports {
        assert_eq!(
            link(&p, &format!("{ROOT}/slots/{slot}")),
            "../releases/2.0.0"
        );
        assert_eq!(http_get(*port, "/version").1, "2.0.0\n");
    }
}

/// Issue 17, defect 8: an instance of a healthy batch that turns unhealthy
/// during the pause fails the deploy before the next batch, and every moved
/// instance is put back.
#[test]
fn rolling_batch_unhealthy_after_the_pause_fails_and_restores() {
    let p = Project::new();
    let (ports, mut servers, g) = healthy_instances(&p, 3);
    pipeline(&p, &rolling_pause_with(&ports, "1", None, "false"), &g);
    deploy_ok(&p, "1.0.0");

    pipeline(
        &p,
        &rolling_pause_with(
            &ports,
            "1",
            Some("3s"),
            "{ retries: 1, interval: 100ms, timeout: 1s }",
        ),
        &g,
    );
    release(&p, "2.0.0");
    // When batch 1 is recorded healthy (the pause starts), instance-0 dies.
    let instance0 = servers.remove(0);
    let hist = p.path().join(ROOT).join("history.jsonl");
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&hist).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.contains("\"batch\"") && l.contains("batch 1 of 3 healthy"))
            {
                drop(instance0);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let (code, d, all) = run(&p);
    assert!(killer.join().expect("killer"), "batch 1 was never recorded");
    assert_ne!(code, 0, "{all}");
    assert_eq!(d["state"], "blocked", "{d:#}");
    assert_eq!(d["outputs"]["failed-batch"], "1", "{d:#}");
    assert_eq!(metric(&d, "deploy.batches_completed"), 0.0);
    assert_eq!(metric(&d, "deploy.rolled_back"), 1.0);
    let gate = &d["gates"][0];
    assert_eq!(gate["name"], "deploy.rolling");
    assert_eq!(gate["verdict"], "fail");
    let msg = gate["message"].as_str().unwrap_or_default();
    assert!(msg.contains("failed in batch 1 of 3"), "{msg}");
    assert!(
        msg.contains("instance-0: unhealthy after the 3s pause"),
        "{msg}"
    );
    assert!(
        msg.contains("rolled back batch 1: instance-0→1.0.0"),
        "{msg}"
    );

    // Batch 2 was never started; instance-0 is back on 1.0.0.
    assert_instances_on(&p, &ports, "1.0.0", "");
    let h = history(&p, ROOT);
    assert_eq!(
        batch_entries(&h, "2.0.0"),
        ["batch 1 of 3 healthy: instance-0; pausing 3s"],
        "{h:#?}"
    );
    let moved: Vec<&str> = h
        .iter()
        .filter(|e| e["action"] == "point" && e["version"] == "2.0.0")
        .filter_map(|e| e["slot"].as_str())
        .collect();
    assert_eq!(moved, ["instance-0"], "{h:#?}");
    assert!(h.iter().any(|e| e["action"] == "rollback"));
    let state = json(&p, "deploy/production/state.json");
    let versions: Vec<&str> = state["instances"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["version"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(versions, ["1.0.0"; 3], "{state:#}");
    assert_eq!(state["stable"], sv("instance-0", "1.0.0"));
}

/// Issue 17, defect 3: a release failing in rolling batch 1 is put back by
/// `deploy` itself; the state then says what serves (the old version on
/// every instance) and marks the failed release bad, and `remediate` does
/// not roll back a second time (to the release before the old one).
#[test]
fn rolling_failure_in_batch_1_leaves_remediate_nothing_to_roll_back() {
    let p = Project::new();
    let ports = instance_ports(2);
    let slots = p.path().join("deploy/production/slots");
    // instance-0 (batch 1) answers /health with 500.
    let _servers: Vec<Server> = ports
        .iter()
        .map(|(s, port)| {
            let status = if s == "instance-0" { 500 } else { 200 };
            slot_server(*port, s, &slots.join(s), status)
        })
        .collect();
    let g = grants(&ports.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    let with_remediate = |health: &str| {
        pipeline(&p, &rolling_with(&ports, 1, health), &g);
        let mut yaml = p.read("sluice.yaml");
        yaml.push_str(&format!(
            r#"  remediate:
    uses: {}
    needs: [deploy]
    when: failure
    environment: production
    with:
      target: {{ kind: local, root: {ROOT} }}
      action: auto
      verify: {{ enabled: false }}
    grants: {{ workspace: write }}
"#,
            plugin("remediate").display()
        ));
        p.write("sluice.yaml", &yaml);
    };
    with_remediate("false");
    deploy_ok(&p, "1.0.0");
    deploy_ok(&p, "2.0.0");
    let before = json(&p, "deploy/production/state.json");
    assert_eq!(before["stable"], sv("instance-0", "2.0.0"), "{before:#}");
    assert_eq!(before["previous"], sv("instance-0", "1.0.0"), "{before:#}");

    with_remediate("{ retries: 1, interval: 100ms }");
    release(&p, "3.0.0");
    let run = p.sluice(&["run"]);
    let record = p.record(&run.run_id());
    let all = run.all();
    assert_ne!(run.code, 0, "{all}");
    let d = &record["stages"]["deploy"];
    assert_eq!(d["state"], "blocked", "{d:#}");
    assert_eq!(d["outputs"]["failed-batch"], "1", "{d:#}");

    // deploy's own restore: every instance on 2.0.0, the state says so
    // and records 3.0.0 as bad.
    assert_instances_on(&p, &ports, "2.0.0", &all);
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["stable"], sv("instance-0", "2.0.0"), "{state:#}");
    assert_eq!(state["previous"], sv("instance-0", "1.0.0"), "{state:#}");
    let verdict = |v: &str| {
        state["releases"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["version"] == v))
            .map(|r| r["verdict"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(verdict("3.0.0"), "bad", "{state:#}");
    assert_eq!(verdict("2.0.0"), "good", "{state:#}");
    assert_eq!(verdict("1.0.0"), "good", "{state:#}");

    // remediate: nothing left to roll back, naming 3.0.0 as the failed
    // release; no second rollback to 1.0.0.
    let r = &record["stages"]["remediate"];
    assert!(
        r["state"] == "passed" || r["state"] == "warned",
        "{r:#}\n{all}"
    );
    assert_eq!(r["outputs"]["status"], "no-action", "{r:#}");
    assert_ne!(r["outputs"]["action"], "rollback", "{r:#}");
    let summary = r["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("nothing to remediate: release 3.0.0 failed"),
        "{summary}\n{all}"
    );
    assert!(
        summary.contains("already serves the last good release 2.0.0"),
        "{summary}"
    );
    let h = history(&p, ROOT);
    assert!(
        !h.iter()
            .any(|e| e["version"] == "1.0.0" && e["run_id"] == Value::String(run.run_id())),
        "{h:#?}"
    );
    assert!(!h.iter().any(|e| e["stage"] == "remediate"), "{h:#?}");
}

// ----------------------------------------------------------------- errors

#[test]
fn bad_config_and_missing_grants_are_named() {
    let p = Project::new();
    pipeline(
        &p,
        "      target: { kind: local, root: deploy/production }\n      instances: 3\n",
        "{ workspace: write }",
    );
    release(&p, "1.0.0");
    let (code, d, all) = run(&p);
    assert_ne!(code, 0, "{all}");
    let r = d["reason"].as_str().unwrap_or_default();
    assert!(
        r.starts_with("invalid config: with.instances: only for strategy rolling"),
        "{r}"
    );

    pipeline(
        &p,
        "      target: { kind: local }\n",
        "{ workspace: write }",
    );
    let (_, d, _) = run(&p);
    let r = d["reason"].as_str().unwrap_or_default();
    assert!(
        r.starts_with("invalid config: with.target.root: required for kind local"),
        "{r}"
    );

    pipeline(
        &p,
        "      target: { kind: local, root: deploy/production }\n",
        "{ workspace: read }",
    );
    let (_, d, _) = run(&p);
    let r = d["reason"].as_str().unwrap_or_default();
    assert!(r.starts_with("denied: "), "{r}");
    assert!(r.contains("workspace: write"), "{r}");
}

// ------------------------------------------------------------------ nginx

/// nginx from `scripts/setup-delivery-services.sh`, or a loud failure.
fn nginx_binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join("nginx");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "nginx is not installed: run scripts/setup-delivery-services.sh (the nginx target test \
         needs a real nginx)"
    );
}

/// The number of the effective user (nginx's `user` directive is only
/// valid for root).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn nginx_target_weights_real_upstreams_and_logs_json() {
    let nginx = nginx_binary();
    let p = Project::new();
    let (pb, pg, pn) = (free_port(), free_port(), free_port());
    let slots = p.path().join("deploy/production/slots");
    let _blue = slot_server(pb, "blue", &slots.join("blue"), 200);
    let _green = slot_server(pg, "green", &slots.join("green"), 200);

    // nginx on loopback, proxying to the upstream block the stage writes.
    let prefix = p.path().join(".nginx");
    std::fs::create_dir_all(prefix.join("logs")).expect("mkdir");
    let upstreams = p.path().join("deploy/production/nginx/upstreams.conf");
    p.write(
        "deploy/production/nginx/upstreams.conf",
        &format!("upstream sluice {{\n    server 127.0.0.1:{pb};\n}}\n"),
    );
    let access_log = p.path().join("logs/nginx-access.json");
    std::fs::create_dir_all(p.path().join("logs")).expect("mkdir");
    let conf = prefix.join("nginx.conf");
    let conf_text = format!(
        r#"{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 128; }}
http {{
    log_format sluice escape=json '{{"upstream":"$upstream_addr","status":$status,"request_time":$request_time,"upstream_response_time":"$upstream_response_time"}}';
    access_log {access_log} sluice;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {upstreams};
    server {{
        listen 127.0.0.1:{pn};
        location / {{ proxy_pass http://sluice; }}
    }}
}}
"#,
        user = if is_root() { "user root;" } else { "" },
        prefix = prefix.display(),
        access_log = access_log.display(),
        upstreams = upstreams.display(),
    );
    std::fs::write(&conf, conf_text).expect("write nginx.conf");
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", nginx.display()));
    let mut server = Server {
        child,
        what: format!("nginx on port {pn}"),
    };
    wait_for_port(pn, &mut server);
    let master = server.child.id();
    let _nginx = server;

    let with = format!(
        r#"      target:
        kind: nginx
        root: deploy/production
        slots: {{ blue: "http://127.0.0.1:{pb}", green: "http://127.0.0.1:{pg}" }}
        reload: [nginx, -p, "{prefix}", -c, "{conf}", -s, reload]
        access-log: logs/nginx-access.json
        upstream: sluice
      strategy: canary
      initial-weight: 25
"#,
        prefix = prefix.display(),
        conf = conf.display()
    );
    pipeline(&p, &with, "{ workspace: write, exec: [nginx] }");

    /// Sends `n` requests through nginx and counts the answers per slot.
    fn through_nginx(port: u16, n: usize) -> (usize, usize) {
        let (mut blue, mut green) = (0, 0);
        for _ in 0..n {
            let (status, body) = http_get(port, "/");
            assert_eq!(status, 200, "{body}");
            if body.starts_with("blue") {
                blue += 1;
            } else if body.starts_with("green") {
                green += 1;
            }
        }
        (blue, green)
    }

    /// Worker processes of the nginx master `master` (during a reload the
    /// old worker, still on the old config, runs beside the new one).
    fn workers(master: u32) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 1;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // `pid (comm) state ppid …`; comm may hold spaces.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|ppid| ppid.parse::<u32>().ok())
                    == Some(master)
            })
            .count()
    }

    /// Waits until nginx's new workers serve green (reload is asynchronous)
    /// and the old worker has gone, so that no sample is split between two
    /// configurations.
    fn settle(port: u16, master: u32, want_green: bool) {
        // Waiting for green to get nothing needs a sample the old config
        // (blue 75, green 25) would almost never give: 8 requests all
        // landed on blue one time in ten, and the check after it failed.
        let sample = if want_green { 8 } else { 40 };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (_, g) = through_nginx(port, sample);
            if (g > 0) == want_green && workers(master) <= 1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // 1.0.0: first deploy, blue takes everything.
    deploy_ok(&p, "1.0.0");
    let conf1 = std::fs::read_to_string(&upstreams).expect("upstreams.conf");
    assert!(
        conf1.contains(&format!("server 127.0.0.1:{pb} weight=100;")),
        "{conf1}"
    );
    settle(pn, master, false);
    assert_eq!(through_nginx(pn, 20), (20, 0));

    // 2.0.0: canary at 25 on green.
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["slot"], "green");
    let conf2 = std::fs::read_to_string(&upstreams).expect("upstreams.conf");
    assert!(conf2.contains("upstream sluice {"), "{conf2}");
    assert!(
        conf2.contains(&format!("server 127.0.0.1:{pb} weight=75;")),
        "{conf2}"
    );
    assert!(
        conf2.contains(&format!("server 127.0.0.1:{pg} weight=25;")),
        "{conf2}"
    );
    settle(pn, master, true);
    std::fs::write(&access_log, "").expect("truncate the access log");
    let (blue, green) = through_nginx(pn, 200);
    assert_eq!(blue + green, 200);
    assert!(
        (35..=65).contains(&green),
        "green got {green} of 200 at weight 25"
    );

    // The JSON access log parses and attributes requests to upstreams.
    let log = std::fs::read_to_string(&access_log).expect("access log");
    let (mut to_blue, mut to_green) = (0, 0);
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(e["status"], 200, "{line}");
        assert!(e["request_time"].as_f64().is_some(), "{line}");
        let rt = e["upstream_response_time"].as_str().unwrap_or_default();
        assert!(rt.parse::<f64>().is_ok(), "{line}");
        match e["upstream"].as_str().unwrap_or_default() {
            u if u == format!("127.0.0.1:{pb}") => to_blue += 1,
            u if u == format!("127.0.0.1:{pg}") => to_green += 1,
            u => panic!("unexpected upstream {u}"),
        }
    }
    assert_eq!((to_blue, to_green), (blue, green), "{log}");
    let state = json(&p, "deploy/production/state.json");
    assert_eq!(state["candidate"], sv("green", "2.0.0"));

    // 3.0.0 at weight 0: green is marked `down` and nginx sends it nothing.
    pipeline(
        &p,
        &with.replace("initial-weight: 25", "initial-weight: 0"),
        "{ workspace: write, exec: [nginx] }",
    );
    deploy_ok(&p, "3.0.0");
    let conf3 = std::fs::read_to_string(&upstreams).expect("upstreams.conf");
    assert!(
        conf3.contains(&format!("server 127.0.0.1:{pg} down;")),
        "{conf3}"
    );
    settle(pn, master, false);
    assert_eq!(through_nginx(pn, 20), (20, 0));
}

// ------------------------------------------------------------------- http

/// The JSON lines the webhook server logged.
fn webhook_log(path: &Path) -> Vec<Value> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).expect("webhook log line"))
        .collect()
}

#[test]
fn http_target_speaks_the_webhook_api() {
    let p = Project::new();
    let port = free_port();
    let log = p.path().join("webhook.jsonl");
    let _hook = python_server("webhook_server.py", port, &[&log.display().to_string()]);
    pipeline(
        &p,
        &format!(
            "      target: {{ kind: http, url: \"http://127.0.0.1:{port}\" }}\n      strategy: canary\n      initial-weight: 10\n"
        ),
        &format!("{{ network: [\"127.0.0.1:{port}\"] }}"),
    );
    deploy_ok(&p, "1.0.0");
    let d2 = deploy_ok(&p, "2.0.0");
    assert_eq!(d2["outputs"]["slot"], "green");
    assert_eq!(d2["outputs"]["previous-version"], "1.0.0");

    let calls = webhook_log(&log);
    let paths: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["method"].as_str().unwrap_or(""),
                c["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            "GET /state",
            "POST /deploy",
            "POST /weights",
            "POST /state",
            "GET /state",
            "POST /deploy",
            "POST /weights",
            "POST /state"
        ],
        "{calls:#?}"
    );
    let deploy = &calls[5]["body"];
    assert_eq!(deploy["environment"], "production");
    assert_eq!(deploy["version"], "2.0.0");
    assert_eq!(deploy["slot"], "green");
    assert_eq!(deploy["artifact"]["name"], "build/out/app.tgz");
    assert_eq!(deploy["artifact"]["digest"], d2["build-digest"]);
    assert!(deploy["artifact"]["size"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        calls[6]["body"],
        serde_json::json!({"routes": [
            {"slot": "blue", "version": "1.0.0", "weight": 90},
            {"slot": "green", "version": "2.0.0", "weight": 10}
        ]})
    );
    assert_eq!(calls[7]["body"]["candidate"], sv("green", "2.0.0"));
    assert_eq!(calls[7]["body"]["stable"], sv("blue", "1.0.0"));
}

#[test]
fn http_target_errors_quote_the_response() {
    let p = Project::new();
    let port = free_port();
    let log = p.path().join("webhook.jsonl");
    let _hook = python_server(
        "webhook_server.py",
        port,
        &[&log.display().to_string(), "--fail", "/weights"],
    );
    pipeline(
        &p,
        &format!("      target: {{ kind: http, url: \"http://127.0.0.1:{port}\" }}\n"),
        &format!("{{ network: [\"127.0.0.1:{port}\"] }}"),
    );
    release(&p, "1.0.0");
    let (code, d, all) = run(&p);
    assert_ne!(code, 0, "{all}");
    assert_eq!(d["state"], "failed", "{d:#}");
    let r = d["reason"].as_str().unwrap_or_default();
    assert!(r.contains("webhook /weights answered 500"), "{r}");
    assert!(r.contains("router exploded"), "{r}");

    // Without the network grant the stage is denied, naming it.
    pipeline(
        &p,
        &format!("      target: {{ kind: http, url: \"http://127.0.0.1:{port}\" }}\n"),
        "{ workspace: read }",
    );
    let (_, d, _) = run(&p);
    let r = d["reason"].as_str().unwrap_or_default();
    assert!(r.starts_with("denied: "), "{r}");
    assert!(r.contains("grants.network"), "{r}");
}
