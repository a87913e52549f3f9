//! The http target for real platforms (issue 17): headers from secrets, TLS with a CA file, artifact references, the JSON Schema contract.
//!
//! The platform adapter is a small Python HTTPS server on loopback written
//! by the test ([`ADAPTER`]), with a CA and a server certificate made by
//! `openssl` into the project. It answers the webhook API of
//! docs/delivery.md, requires `Authorization: Bearer <token>`, serves
//! `/slots/<slot>/health` and `/version` for the probes, and logs every
//! request and response; each body is validated against
//! docs/delivery-http.schema.json.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{plugin, repo_root, Project, Run};

use super::delivery_demo::{free_port, require, require_with};
use super::delivery_rollback::{build_stage, deploy_stage, remediate_stage, write_app};

/// The token the adapter accepts.
const TOKEN: &str = "dpl-7f3c9a1e-platform-token-5b2d";
/// A token the adapter refuses (and, hostile, echoes in its 401 body).
const WRONG_TOKEN: &str = "dpl-wrong-0c8e1d44-not-the-token";
/// The OCI digest of the release image.
const IMAGE_DIGEST: &str =
    "sha256:3b5f0e6a3d1c2b4a59687766554433221100ffeeddccbbaa9988776655443322";

const ADAPTER: &str = r#"
import json, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log, cert, key, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
lock = threading.Lock()
state, slots = {}, {}

class Handler(BaseHTTPRequestHandler):
    def reply(self, status, doc, body=None, auth=None):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with lock, open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "status": status,
                                "auth": auth, "env": self.headers.get("x-deploy-env"),
                                "content_type": self.headers.get("content-type"),
                                "body": body, "response": doc}) + "\n")

    def slot(self):
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1] == "slots":
            slot, what = parts[2], parts[3]
            if what == "health":
                self.send_response(200); self.send_header("content-length", "2"); self.end_headers()
                self.wfile.write(b"ok")
                return True
            if what == "version":
                data = json.dumps({"version": slots.get(slot, "")}).encode()
                self.send_response(200); self.send_header("content-length", str(len(data))); self.end_headers()
                self.wfile.write(data)
                return True
        return False

    def authorised(self, body):
        got = self.headers.get("authorization")
        if got is None:
            self.reply(401, {"error": "missing bearer token"}, body, "missing")
            return False
        if got != "Bearer " + token:
            # Hostile on purpose: the rejected token comes back in the body.
            self.reply(401, {"error": "token rejected: " + got}, body, "wrong")
            return False
        return True

    def do_GET(self):
        if self.slot():
            return
        if not self.authorised(None):
            return
        if self.path == "/state":
            self.reply(200, state, None, "ok")
        else:
            self.reply(404, {"error": "no such endpoint"}, None, "ok")

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        if not self.authorised(body):
            return
        with lock:
            if self.path == "/deploy":
                prev = slots.get(body["slot"])
                slots[body["slot"]] = body["version"]
                doc = {"slot": body["slot"], "previous_version": prev}
            elif self.path == "/rollback":
                slots[body["slot"]] = body["to_version"]
                doc = {"version": body["to_version"]}
            elif self.path == "/state":
                state.clear(); state.update(body); doc = {}
            elif self.path in ("/weights", "/flags"):
                doc = {}
            else:
                self.reply(404, {"error": "no such endpoint"}, body, "ok")
                return
        self.reply(200, doc, body, "ok")

    def log_message(self, *a):
        pass

srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#;

/// A child process killed on drop.
struct Adapter {
    child: Child,
    log: PathBuf,
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Adapter {
    /// Starts the adapter on `port` with the certificate `cert`/`key`
    /// (files under `certs/`).
    fn start(p: &Project, port: u16, cert: &str, key: &str) -> Adapter {
        require("python3");
        let script = p.path().join("adapter.py");
        std::fs::write(&script, ADAPTER).expect("write adapter");
        let log = p.path().join("adapter.jsonl");
        let stderr = std::fs::File::create(p.path().join("adapter.stderr")).expect("stderr file");
        let certs = p.path().join("certs");
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&log)
            .arg(certs.join(cert))
            .arg(certs.join(key))
            .arg(TOKEN)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start python3");
        let adapter = Adapter { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the adapter did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        adapter
    }

    /// Every request the adapter logged.
    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("adapter log line"))
            .collect()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `certs/<ca>.pem` (a CA) and `certs/<server>.pem`/`.key` (a server
/// certificate for 127.0.0.1 and localhost signed by it).
fn make_certs(p: &Project, ca: &str, server: &str) {
    require_with("openssl", "scripts/setup.sh", "version");
    let dir = p.path().join("certs");
    std::fs::create_dir_all(&dir).expect("certs dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_key = format!("{ca}.key");
    let ca_pem = format!("{ca}.pem");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-subj",
        "/CN=sluice test platform CA",
        "-days",
        "2",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&dir, &args);
    let key = format!("{server}.key");
    let csr = format!("{server}.csr");
    let pem = format!("{server}.pem");
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(&dir, &args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// The `target:` block (one line of YAML flow style) for the adapter on
/// `port`, with `extra` keys appended.
fn target(port: u16, extra: &str) -> String {
    format!(
        "{{ kind: http, url: \"https://127.0.0.1:{port}\", slots: {{ blue: \"https://127.0.0.1:{port}/slots/blue\", green: \"https://127.0.0.1:{port}/slots/green\" }}, headers: {{ X-Deploy-Env: production }}{extra} }}"
    )
}

const AUTH: &str =
    ", headers-from-secrets: { Authorization: { secret: DEPLOY_TOKEN, prefix: \"Bearer \" } }";

fn artifact_ref() -> String {
    format!(", artifact-ref: \"registry.example.com/shop/app@{IMAGE_DIGEST}\"")
}

/// The pipeline: `build` tars `app/`; `deploy` (canary, 10%) to `target`;
/// with `canary_and_rollback`, a `canary` stage steps to 25% and 50%
/// without promoting, a `check` stage fails, and `remediate` rolls back.
fn pipeline(p: &Project, target: &str, grants: &str, canary_and_rollback: bool) {
    let mut yaml = format!(
        "version: 1\nname: deliver-http\nstages:\n{}{}",
        build_stage(""),
        deploy_stage(
            "build",
            &format!("      strategy: canary\n      initial-weight: 10\n      target: {target}\n"),
            grants
        ),
    );
    if canary_and_rollback {
        yaml.push_str(&format!(
            r#"  canary:
    uses: {canary}
    needs: [deploy]
    environment: production
    with:
      target: {target}
      steps:
        - set-weight: 25
        - set-weight: 50
      promote: false
    grants: {grants}
  check:
    uses: {build}
    needs: [canary]
    with:
      commands:
        - [sh, -c, "echo the release fails its checks; exit 3"]
    grants: {{ exec: [sh] }}
{remediate}"#,
            build = plugin("build").display(),
            canary = plugin("canary").display(),
            remediate = remediate_stage(
                "deploy, canary, check",
                &format!("      action: rollback\n      target: {target}\n"),
                grants
            ),
        ));
    }
    p.write("sluice.yaml", &yaml);
}

fn grants(port: u16, ca: &str) -> String {
    format!(
        "{{ network: [\"127.0.0.1:{port}\"], secrets: [DEPLOY_TOKEN], tls-ca: [certs/{ca}.pem] }}"
    )
}

fn run_with(p: &Project, token: &str) -> (Run, Value) {
    let run = p.sluice_timeout(
        &["run"],
        &[("DEPLOY_TOKEN", token)],
        Duration::from_secs(300),
    );
    let record = p.record(&run.run_id());
    (run, record)
}

/// The contract, with `$ref` at its root pointing at `def`.
fn validator(def: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("docs/delivery-http.schema.json"))
        .expect("docs/delivery-http.schema.json");
    let mut schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    schema["$ref"] = Value::String(format!("#/$defs/{def}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema for {def}: {e}"))
}

/// Validates every logged request and response body against the contract.
fn assert_contract(calls: &[Value]) {
    for call in calls {
        let method = call["method"].as_str().unwrap_or_default();
        let path = call["path"].as_str().unwrap_or_default();
        if call["status"] != 200 {
            continue;
        }
        let (request, response) = match (method, path) {
            ("POST", "/deploy") => (Some("DeployRequest"), "DeployResponse"),
            ("POST", "/weights") => (Some("WeightsRequest"), "Ack"),
            ("POST", "/flags") => (Some("FlagsRequest"), "Ack"),
            ("POST", "/rollback") => (Some("RollbackRequest"), "RollbackResponse"),
            ("POST", "/state") => (Some("State"), "Ack"),
            ("GET", "/state") => (None, "State"),
            other => panic!("a request outside the contract: {other:?}"),
        };
        if let Some(def) = request {
            let v = validator(def);
            let errors: Vec<String> = v
                .iter_errors(&call["body"])
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path} body is not a {def}: {errors:?}\n{call:#}"
            );
            assert_eq!(call["content_type"], "application/json", "{call:#}");
        }
        let v = validator(response);
        let errors: Vec<String> = v
            .iter_errors(&call["response"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} answer is not a {response}: {errors:?}"
        );
    }
}

fn weights_of(calls: &[Value], slot: &str) -> Vec<u64> {
    calls
        .iter()
        .filter(|c| c["path"] == "/weights" && c["status"] == 200)
        .filter_map(|c| {
            c["body"]["routes"]
                .as_array()?
                .iter()
                .find(|r| r["slot"] == slot)
                .and_then(|r| r["weight"].as_u64())
        })
        .collect()
}

/// Deploy over HTTPS with a private CA and a bearer token from a secret,
/// canary steps, a failing check and a rollback: every body matches the
/// contract, every request carried the token and the extra header, the
/// deploy call carries the pinned image reference, and the token appears
/// nowhere the runner writes.
#[test]
fn deploy_canary_and_rollback_over_https_with_a_private_ca() {
    let p = Project::new();
    make_certs(&p, "platform-ca", "server");
    let port = free_port();
    let adapter = Adapter::start(&p, port, "server.pem", "server.key");
    let target = target(port, &format!("{AUTH}{}", artifact_ref()));

    pipeline(&p, &target, &grants(port, "platform-ca"), false);
    write_app(&p, "1.0.0");
    let (run1, record1) = run_with(&p, TOKEN);
    assert_eq!(run1.code, 0, "{}\n{record1:#}", run1.all());
    p.assert_nothing_contains(&run1, TOKEN.as_bytes());
    let log = p.log(&run1.run_id(), "deploy");
    assert!(log.contains("certs/platform-ca.pem (sha256:"), "{log}");

    pipeline(&p, &target, &grants(port, "platform-ca"), true);
    write_app(&p, "2.0.0");
    let (run2, record2) = run_with(&p, TOKEN);
    assert_ne!(run2.code, 0, "the check fails the run: {}", run2.all());
    let stages = &record2["stages"];
    assert_eq!(stages["deploy"]["state"], "passed", "{stages:#}");
    assert_eq!(stages["canary"]["state"], "passed", "{stages:#}");
    assert_eq!(stages["check"]["state"], "failed", "{stages:#}");
    assert_eq!(stages["remediate"]["state"], "passed", "{stages:#}");
    p.assert_nothing_contains(&run2, TOKEN.as_bytes());

    let calls = adapter.calls();
    assert_contract(&calls);
    let api: Vec<&Value> = calls
        .iter()
        .filter(|c| !c["path"].as_str().unwrap_or("").starts_with("/slots/"))
        .collect();
    assert!(!api.is_empty());
    for c in &api {
        assert_eq!(c["auth"], "ok", "{c:#}");
        assert_eq!(c["env"], "production", "{c:#}");
    }
    let deploys: Vec<&Value> = api
        .iter()
        .copied()
        .filter(|c| c["path"] == "/deploy")
        .collect();
    assert_eq!(deploys.len(), 2, "{calls:#?}");
    let artifact = &deploys[1]["body"]["artifact"];
    assert_eq!(
        artifact["ref"],
        format!("registry.example.com/shop/app@{IMAGE_DIGEST}")
    );
    assert_eq!(artifact["name"], "build/out/app.tgz");
    assert_eq!(
        artifact["digest"],
        record2["stages"]["build"]["outputs"]["digest"]
    );
    assert_eq!(deploys[1]["body"]["slot"], "green");
    assert_eq!(weights_of(&calls, "green"), [10, 25, 50], "{calls:#?}");
    let rollbacks: Vec<&Value> = api
        .iter()
        .copied()
        .filter(|c| c["path"] == "/rollback")
        .collect();
    assert_eq!(rollbacks.len(), 1, "{calls:#?}");
    assert_eq!(rollbacks[0]["body"]["to_version"], "1.0.0");
    assert_eq!(rollbacks[0]["body"]["slot"], "blue");
    // The rollback took the traffic off the candidate, not only the slot.
    let last_weights = api
        .iter()
        .rev()
        .find(|c| c["path"] == "/weights")
        .expect("weights were set");
    assert_eq!(
        last_weights["body"]["routes"],
        serde_json::json!([{"slot": "blue", "version": "1.0.0", "weight": 100}]),
        "{last_weights:#}"
    );
    let last_state = api
        .iter()
        .rev()
        .find(|c| c["method"] == "POST" && c["path"] == "/state")
        .expect("the state was written");
    assert_eq!(
        last_state["body"]["stable"]["version"], "1.0.0",
        "{last_state:#}"
    );
    assert!(
        last_state["body"].get("candidate").is_none(),
        "{last_state:#}"
    );
    let verdicts: Vec<(String, String)> = last_state["body"]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap_or_default().to_string(),
                r["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        verdicts.contains(&("2.0.0".into(), "bad".into())),
        "{verdicts:?}"
    );
}

/// A wrong token and a missing one: the platform answers 401 and the stage
/// fails saying which secret was sent (or that none was); the wrong token,
/// which the hostile adapter echoes, is redacted everywhere.
#[test]
fn a_refused_token_fails_with_a_clear_message_and_never_leaks() {
    let p = Project::new();
    make_certs(&p, "platform-ca", "server");
    let port = free_port();
    let _adapter = Adapter::start(&p, port, "server.pem", "server.key");

    pipeline(&p, &target(port, AUTH), &grants(port, "platform-ca"), false);
    write_app(&p, "1.0.0");
    let (run, record) = run_with(&p, WRONG_TOKEN);
    assert_ne!(run.code, 0, "{}", run.all());
    let deploy = &record["stages"]["deploy"];
    assert_eq!(deploy["state"], "failed", "{deploy:#}");
    let reason = deploy["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("answered 401"), "{reason}");
    assert!(
        reason.contains("refused the credentials sent as Authorization from secret DEPLOY_TOKEN"),
        "{reason}"
    );
    p.assert_nothing_contains(&run, WRONG_TOKEN.as_bytes());

    pipeline(&p, &target(port, ""), &grants(port, "platform-ca"), false);
    let (run, record) = run_with(&p, TOKEN);
    let reason = record["stages"]["deploy"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(reason.contains("answered 401"), "{reason}");
    assert!(reason.contains("missing bearer token"), "{reason}");
    assert!(reason.contains("target.headers-from-secrets"), "{reason}");
}

/// A server certificate from another CA fails the stage with a TLS error
/// (promptly, not by a timeout), and the log says what to grant.
#[test]
fn a_certificate_from_another_ca_is_a_tls_failure() {
    let p = Project::new();
    make_certs(&p, "platform-ca", "server");
    make_certs(&p, "other-ca", "impostor");
    let port = free_port();
    let _adapter = Adapter::start(&p, port, "impostor.pem", "impostor.key");

    pipeline(&p, &target(port, AUTH), &grants(port, "platform-ca"), false);
    write_app(&p, "1.0.0");
    let started = Instant::now();
    let (run, record) = run_with(&p, TOKEN);
    assert_ne!(run.code, 0, "{}", run.all());
    // Generous: a hang would run into the 30 s request timeout or longer.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    let deploy = &record["stages"]["deploy"];
    assert_eq!(deploy["state"], "failed", "{deploy:#}");
    let reason = deploy["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("webhook /state"), "{reason}");
    assert!(reason.to_ascii_lowercase().contains("tls"), "{reason}");
    let log = p.log(&run.run_id(), "deploy");
    assert!(log.contains("certificate is not trusted"), "{log}");
    assert!(log.contains("grants.tls-ca"), "{log}");
    p.assert_nothing_contains(&run, TOKEN.as_bytes());

    // The same server with its own CA granted works: it was the CA.
    pipeline(&p, &target(port, AUTH), &grants(port, "other-ca"), false);
    let (run, record) = run_with(&p, TOKEN);
    assert_eq!(run.code, 0, "{}\n{record:#}", run.all());
}

/// Configuration errors: a tag-only image reference (the deploy stage
/// fails before any request), and a missing or non-PEM CA file (the
/// pipeline does not load; the message names the stage, the grant and the
/// file).
#[test]
fn a_tag_only_reference_and_a_bad_ca_file_are_config_errors() {
    let p = Project::new();
    make_certs(&p, "platform-ca", "server");
    let port = free_port();
    let adapter = Adapter::start(&p, port, "server.pem", "server.key");
    let tag_only = ", artifact-ref: \"registry.example.com/shop/app:2.0.0\"";
    pipeline(
        &p,
        &target(port, &format!("{AUTH}{tag_only}")),
        &grants(port, "platform-ca"),
        false,
    );
    write_app(&p, "2.0.0");
    let (run, record) = run_with(&p, TOKEN);
    assert_ne!(run.code, 0, "{}", run.all());
    let reason = record["stages"]["deploy"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("with.target.artifact-ref: `registry.example.com/shop/app:2.0.0` is an OCI reference without a digest"),
        "{reason}"
    );
    assert!(reason.contains("@sha256:<64 hex digits>"), "{reason}");
    assert!(adapter.calls().is_empty(), "{:#?}", adapter.calls());

    for (file, problem) in [
        ("certs/missing.pem", "cannot read TLS CA file"),
        (
            "certs/server.ext",
            "holds no `-----BEGIN CERTIFICATE-----` section",
        ),
    ] {
        let grants = format!(
            "{{ network: [\"127.0.0.1:{port}\"], secrets: [DEPLOY_TOKEN], tls-ca: [{file}] }}"
        );
        pipeline(&p, &target(port, AUTH), &grants, false);
        let out = p.sluice(&["validate"]);
        assert_ne!(out.code, 0, "{}", out.all());
        let all = out.all();
        assert!(
            all.contains(&format!("stage `deploy`: grants.tls-ca `{file}`")),
            "{all}"
        );
        assert!(all.contains(problem), "{all}");
    }
}
