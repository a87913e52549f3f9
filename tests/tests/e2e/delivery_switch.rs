//! Issue 17: zero-downtime switches on real nginx. A load thread sends
//! 1000 requests through nginx (one TCP connection per request,
//! `Connection: close`: every request goes through nginx's listening
//! socket, which `nginx -s reload` hands to the new workers) at a steady
//! pace covering before, during and after a deploy run by the real
//! `sluice` binary with the `nginx` target; every failed request (a
//! status other than 200 or a connection error) is counted, printed and
//! must be 0.
//!
//! Needs `python3`, `tar` and nginx (scripts/setup-delivery-services.sh).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_tests::{http_get, repo_root, Project};

use super::delivery_demo::{
    copy_delivery_example, free_port, require, require_with, wait_for_version, LocalEnv,
};

/// Requests the load thread sends.
pub(super) const REQUESTS: usize = 1000;
/// Requests sent before the deploy starts, and at least after it ends.
pub(super) const BEFORE: usize = 200;
pub(super) const AFTER: usize = 200;

/// nginx of the example (`env/nginx.conf`) on `port`, with `upstreams`
/// as the first `upstreams.conf`; stopped on drop.
pub(super) struct Nginx {
    dir: PathBuf,
}

impl Nginx {
    pub(super) fn start(dir: &Path, port: u16, upstreams: &str) -> Nginx {
        require_with("nginx", "scripts/setup-delivery-services.sh", "-v");
        let conf = std::fs::read_to_string(dir.join("env/nginx.conf"))
            .expect("env/nginx.conf")
            .replace("127.0.0.1:18180", &format!("127.0.0.1:{port}"));
        std::fs::write(dir.join("env/nginx.conf"), conf).expect("write nginx.conf");
        for d in ["deploy/nginx/tmp", "deploy/production/nginx"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        std::fs::write(
            dir.join("deploy/production/nginx/upstreams.conf"),
            upstreams,
        )
        .expect("write upstreams.conf");
        let out = Command::new("nginx")
            .args(["-p", "./", "-c", "env/nginx.conf"])
            .current_dir(dir)
            .output()
            .expect("run nginx");
        assert!(
            out.status.success(),
            "nginx did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Nginx {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .args(["-p", "./", "-c", "env/nginx.conf", "-s", "quit"])
            .current_dir(&self.dir)
            .output();
    }
}

/// One request's result: the version answered, or why it failed.
pub(super) type Answer = Result<String, String>;

/// `GET /version` on `port` with `headers` and `Connection: close`: the
/// version answered, or why the request failed.
pub(super) fn version_with(port: u16, headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let status = raw.split_whitespace().nth(1).unwrap_or("none");
    if status != "200" {
        return Err(format!("status {status}"));
    }
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("body: {e}"))?;
    Ok(v["version"].as_str().unwrap_or_default().to_string())
}

/// Sends [`REQUESTS`] requests to `port`, one every `pace`, while `deploy` runs:
/// `deploy` starts after [`BEFORE`] requests, and the last [`AFTER`] are
/// held back until it returned. Returns the answers in order and what
/// `deploy` returned.
pub(super) fn under_load<T>(
    port: u16,
    pace: Duration,
    deploy: impl FnOnce() -> T,
) -> (Vec<Answer>, T) {
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let (sent, done) = (sent.clone(), done.clone());
        std::thread::spawn(move || {
            let mut out = Vec::with_capacity(REQUESTS);
            let mut next = Instant::now();
            for i in 0..REQUESTS {
                if i >= REQUESTS - AFTER {
                    while !done.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                next = Instant::now().max(next) + pace;
                out.push(version_with(port, &[]));
                sent.store(i + 1, Ordering::SeqCst);
            }
            out
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::SeqCst) < BEFORE {
        assert!(Instant::now() < deadline, "the load did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = sent.load(Ordering::SeqCst);
    let result = deploy();
    let ended = sent.load(Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let answers = load.join().expect("load thread");
    eprintln!("load: {REQUESTS} requests; the deploy ran from request {started} to {ended}");
    (answers, result)
}

/// Failed requests (index, reason), and answers per version.
fn tally(
    answers: &[Answer],
) -> (
    Vec<(usize, String)>,
    std::collections::BTreeMap<String, usize>,
) {
    let mut failed = Vec::new();
    let mut versions = std::collections::BTreeMap::new();
    for (i, a) in answers.iter().enumerate() {
        match a {
            Ok(v) => *versions.entry(v.clone()).or_insert(0) += 1,
            Err(e) => failed.push((i, e.clone())),
        }
    }
    (failed, versions)
}

/// Asserts that all [`REQUESTS`] were answered and none failed, printing
/// the tally for `what`; returns the answers per version.
pub(super) fn assert_none_failed(
    what: &str,
    answers: &[Answer],
) -> std::collections::BTreeMap<String, usize> {
    let (failed, versions) = tally(answers);
    eprintln!(
        "{what}: {} of {REQUESTS} requests failed; answers {versions:?}",
        failed.len()
    );
    assert_eq!(answers.len(), REQUESTS);
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    versions
}

/// Waits (up to 20 s) until nginx on `port` answers `/health` with 200 40
/// times in a row: every instance behind it is up.
pub(super) fn wait_for_nginx(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (0..40).any(|_| http_get(port, "/health").map(|(s, _)| s) != Some(200)) {
        assert!(Instant::now() < deadline, "nginx did not answer 200");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A project with the delivery example, its environment on free ports for
/// `slots` and nginx in front of them (first upstream: the first slot).
pub(super) fn setup(slots: &[&str]) -> (Project, LocalEnv, Nginx, u16) {
    require("tar");
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let root = "deploy/production";
    std::fs::create_dir_all(p.path().join(root)).expect("mkdir root");
    let nginx_port = free_port();
    let env = LocalEnv::start_full(p.path(), root, slots, 0.0, Some(nginx_port));
    // The first slot only, as `env/services.sh` starts it: the first
    // release puts it there.
    let servers = format!("    server 127.0.0.1:{};\n", env.port(slots[0]));
    let nginx = Nginx::start(
        p.path(),
        nginx_port,
        &format!("upstream sluice {{\n{servers}}}\n"),
    );
    (p, env, nginx, nginx_port)
}

/// The `target:` block (indented 6 spaces): `kind` over `slots`, plus
/// `extra` lines (indented 8).
pub(super) fn target_block(env: &LocalEnv, kind: &str, slots: &[&str], extra: &str) -> String {
    let slot_urls: Vec<String> = slots
        .iter()
        .map(|s| format!("{s}: \"http://127.0.0.1:{}\"", env.port(s)))
        .collect();
    let nginx = if kind == "nginx" {
        "        reload: [nginx, -p, ./, -c, env/nginx.conf, -s, reload]\n        access-log: \
         deploy/nginx/access.log\n"
    } else {
        ""
    };
    format!(
        "      target:\n        kind: {kind}\n        root: deploy/production\n        slots: {{ {} \
         }}\n{nginx}{extra}",
        slot_urls.join(", ")
    )
}

/// A pipeline file `file` of pipeline `name`: the example's build, `deploy`
/// with `target` and the `with:` lines `with` (indented 6), then `more`
/// (further stages).
pub(super) fn example_pipeline(
    p: &Project,
    file: &str,
    name: &str,
    target: &str,
    with: &str,
    more: &str,
) {
    let dist = repo_root().join("dist");
    p.write(
        file,
        &format!(
            r#"version: 1
name: {name}
defaults: {{ timeout: 2m }}
stages:
  build:
    uses: {dist}/plugins/build.wasm
    with:
      commands:
        - [mkdir, -p, dist]
        - [tar, -czf, "dist/quote-service-${{{{ env.SERVICE_VERSION }}}}.tar.gz",
           -C, service, app.py, metrics.py,
           -C, "releases/${{{{ env.SERVICE_VERSION }}}}", quotes.py, VERSION]
      outputs: ["dist/quote-service-${{{{ env.SERVICE_VERSION }}}}.tar.gz"]
      version-file: "service/releases/${{{{ env.SERVICE_VERSION }}}}/VERSION"
    grants: {{ workspace: write, exec: [mkdir, tar] }}
  deploy:
    uses: {dist}/plugins/deploy.wasm
    needs: [build]
    environment: production
    with:
{target}      version: ${{{{ stages.build.outputs.version }}}}
{with}    grants: {{ workspace: write, network: ["127.0.0.1:*"], exec: [nginx] }}
{more}"#,
            dist = dist.display(),
        ),
    );
}

/// A pipeline `file`: the example's build, then `deploy` with the nginx
/// target over `slots` and the `with:` lines `with` (indented 6 spaces).
fn pipeline(p: &Project, env: &LocalEnv, file: &str, slots: &[&str], with: &str) {
    example_pipeline(
        p,
        file,
        "delivery-switch",
        &target_block(env, "nginx", slots, ""),
        &format!(
            "      health-check: {{ path: /health, retries: 40, interval: 250ms, timeout: 2s \
             }}\n{with}"
        ),
        "",
    );
}

/// Blue-green on nginx: 2.0.0 goes to the idle slot (its process restarts
/// there, with no traffic: the slot is `down` in the upstream), is
/// health-checked, then `nginx -s reload` moves every request to it. The
/// 1000 requests over the switch: 0 failed.
#[test]
fn blue_green_switch_on_nginx_fails_no_request_of_1000() {
    let slots = ["blue", "green"];
    let (p, env, _nginx, port) = setup(&slots);
    pipeline(&p, &env, "bg.yaml", &slots, "      strategy: blue-green\n");
    let run0 = p.sluice_env(&["run", "bg.yaml"], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run0.code, 0, "first release\n{}", run0.all());
    wait_for_version(port, "1.0.0");

    let (answers, run) = under_load(port, Duration::from_millis(6), || {
        p.sluice_env(&["run", "bg.yaml"], &[("SERVICE_VERSION", "2.0.0")])
    });
    assert_eq!(run.code, 0, "2.0.0 blue-green\n{}", run.all());
    assert_none_failed("blue-green over nginx", &answers);
    // The switch happened under the load: 1.0.0 before, 2.0.0 after.
    assert!(answers[..BEFORE]
        .iter()
        .all(|a| a.as_deref() == Ok("1.0.0")));
    assert!(answers[REQUESTS - AFTER..]
        .iter()
        .all(|a| a.as_deref() == Ok("2.0.0")));
    let upstreams = p.read("deploy/production/nginx/upstreams.conf");
    assert!(
        upstreams.contains(&format!(
            "server 127.0.0.1:{} weight=100;",
            env.port("green")
        )),
        "{upstreams}"
    );
}

/// Rolling on nginx: four instances, one per batch. Each instance's
/// process restarts when its link moves to 2.0.0 (the example
/// environment follows the link), so nginx must not send it requests
/// meanwhile: the deploy drains it (`down` in the upstream, reloaded)
/// before moving it and puts it back once it is healthy. The 1000
/// requests over the rollout: 0 failed.
#[test]
fn rolling_deploy_on_nginx_fails_no_request_of_1000() {
    let slots = ["instance-0", "instance-1", "instance-2", "instance-3"];
    let (p, env, _nginx, port) = setup(&slots);
    pipeline(
        &p,
        &env,
        "rolling.yaml",
        &slots,
        "      strategy: rolling\n      instances: 4\n      batch-size: 1\n",
    );
    let run0 = p.sluice_env(&["run", "rolling.yaml"], &[("SERVICE_VERSION", "1.0.0")]);
    assert_eq!(run0.code, 0, "first release\n{}", run0.all());
    for s in slots {
        wait_for_version(env.port(s), "1.0.0");
    }
    // Every instance answers through nginx before the load starts.
    wait_for_nginx(port);

    let (answers, run) = under_load(port, Duration::from_millis(12), || {
        p.sluice_env(&["run", "rolling.yaml"], &[("SERVICE_VERSION", "2.0.0")])
    });
    assert_eq!(run.code, 0, "2.0.0 rolling\n{}", run.all());
    assert_none_failed("rolling over nginx", &answers);
    assert!(answers[..BEFORE]
        .iter()
        .all(|a| a.as_deref() == Ok("1.0.0")));
    assert!(answers[REQUESTS - AFTER..]
        .iter()
        .all(|a| a.as_deref() == Ok("2.0.0")));
}
