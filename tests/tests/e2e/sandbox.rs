//! The sandbox: limits, denied capabilities, redaction. Each test runs a
//! fixture mode that misbehaves and checks the reason a user reads.

use std::io::{Read, Write};
use std::net::TcpListener;

use sluice_tests::Project;

fn one_stage(p: &Project, body: &str) {
    p.write(
        "sluice.yaml",
        &format!("version: 1\nname: sandbox\nstages:\n  s:\n    uses: {{fixture}}\n{body}"),
    );
}

fn reason(p: &Project, id: &str) -> String {
    p.record(id)["stages"]["s"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_endless_loop_times_out() {
    let p = Project::new();
    one_stage(&p, "    timeout: 2s\n    with: { mode: loop }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("timed out after 2s"), "{r}");
    assert!(run.stdout.contains("s failed"), "{}", run.all());
}

#[test]
fn a_guest_blocked_in_a_host_call_times_out() {
    let p = Project::new();
    one_stage(
        &p,
        "    timeout: 1s\n    with: { mode: sleep, seconds: 60 }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(reason(&p, &run.run_id()).contains("timed out after 1s"));
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { memory: 64MiB }\n    with: { mode: alloc }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("memory limit exceeded"), "{r}");
    assert!(r.contains("64.0 MiB") || r.contains("64 MiB"), "{r}");
}

#[test]
fn traps_and_panics_fail_the_stage_with_the_message() {
    let p = Project::new();
    one_stage(&p, "    with: { mode: trap }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(reason(&p, &run.run_id()).contains("trapped"));

    let p = Project::new();
    one_stage(&p, "    with: { mode: panic }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("fixture panicked on purpose"), "{r}");
}

#[test]
fn flooding_stdout_is_truncated_at_the_cap() {
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { output: 64KiB }\n    with: { mode: flood, lines: 20000 }\n",
    );
    let run = p.sluice(&["run", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(
        log.contains("[sluice] output truncated"),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
    assert!(log.len() < 80 * 1024, "log is {} bytes", log.len());
}

#[test]
fn the_sandbox_cannot_read_or_write_outside_its_preopens() {
    let p = Project::new();
    p.write("src/keep.txt", "workspace file\n");
    one_stage(
        &p,
        "    grants: { workspace: read }\n    with: { mode: escape }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let metrics = record["stages"]["s"]["metrics"]
        .as_array()
        .expect("metrics");
    let metric = |n: &str| {
        metrics
            .iter()
            .find(|m| m["name"] == n)
            .and_then(|m| m["value"].as_f64())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        metric("escape.read_ok"),
        0.0,
        "{}",
        p.log(&run.run_id(), "s")
    );
    assert_eq!(metric("escape.write_ok"), 0.0);
    assert!(!p.path().join("pwned.txt").exists());
}

#[test]
fn workspace_write_needs_a_write_grant() {
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { workspace: read }\n    with: { mode: write-file, path: out.txt, content: x }\n",
    );
    let run = p.sluice(&["run"]);
    assert!(!p.path().join("out.txt").exists(), "{}", run.all());

    let p = Project::new();
    one_stage(
        &p,
        "    grants: { workspace: write }\n    with: { mode: write-file, path: out.txt, content: written }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(p.read("out.txt"), "written");
}

/// A one-shot HTTP server on loopback; returns its port.
fn serve_once(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn http_reaches_only_granted_hosts() {
    let port = serve_once("granted hello");
    let p = Project::new();
    one_stage(
        &p,
        &format!(
            "    grants: {{ network: [\"127.0.0.1:{port}\"] }}\n    with: {{ mode: http, url: \"http://127.0.0.1:{port}/x\" }}\n"
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("granted hello"), "{log}");

    let port = serve_once("must not be reached");
    let p = Project::new();
    one_stage(
        &p,
        &format!("    with: {{ mode: http, url: \"http://127.0.0.1:{port}/x\" }}\n"),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(
        r.contains(&format!("HTTP request to 127.0.0.1:{port} is not allowed")),
        "{r}"
    );
    assert!(r.contains("grants.network"), "{r}");
}

#[test]
fn exec_runs_only_granted_programs_with_a_clean_environment() {
    let p = Project::new();
    one_stage(&p, "    with: { mode: exec, program: ls, args: [\"/\"] }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("exec of `ls` is not allowed"), "{r}");
    assert!(r.contains("grants.exec"), "{r}");

    let p = Project::new();
    one_stage(
        &p,
        "    grants: { workspace: read, exec: [env] }\n    with: { mode: exec, program: env }\n",
    );
    let run = p.sluice_env(&["run"], &[("SLUICE_TEST_LEAK", "leaked-value")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("PATH="), "{log}");
    assert!(!log.contains("leaked-value"), "{log}");
}

#[test]
fn env_is_an_allowlist() {
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { env: [SLUICE_GRANTED] }\n    with: { mode: env, names: [SLUICE_GRANTED, SLUICE_HIDDEN] }\n",
    );
    let run = p.sluice_env(
        &["run"],
        &[
            ("SLUICE_GRANTED", "visible"),
            ("SLUICE_HIDDEN", "hidden-value"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("visible"), "{log}");
    assert!(!log.contains("hidden-value"), "{log}");
}

#[test]
fn secrets_are_redacted_everywhere() {
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { secrets: [DEPLOY_TOKEN] }\n    with: { mode: secret, name: DEPLOY_TOKEN }\n",
    );
    let secret = "s3cr3t-T0ken-value-42";
    let run = p.sluice_env(&["run"], &[("DEPLOY_TOKEN", secret)]);
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("the secret is: ***"), "{log}");
    assert!(!log.contains(secret), "{log}");
    assert!(
        !log.contains("s3cr3t"),
        "split write leaked a prefix: {log}"
    );
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));

    // Multi-line values, and a secret the stage was not granted.
    let p = Project::new();
    one_stage(
        &p,
        "    grants: { secrets: [PEM] }\n    with: { mode: secret, name: PEM }\n",
    );
    let pem = "-----BEGIN KEY-----\nAAAAline-one-secret\nBBBBline-two-secret\n-----END KEY-----";
    let run = p.sluice_env(&["run"], &[("PEM", pem)]);
    assert_eq!(run.code, 0, "{}", run.all());
    let log = p.log(&run.run_id(), "s");
    assert!(
        !log.contains("line-one-secret") && !log.contains("line-two-secret"),
        "{log}"
    );

    let p = Project::new();
    one_stage(&p, "    with: { mode: secret, name: DEPLOY_TOKEN }\n");
    let run = p.sluice_env(&["run"], &[("DEPLOY_TOKEN", secret)]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("secret `DEPLOY_TOKEN` is not granted"), "{r}");

    // A stage that handled an earlier refusal (exec of `git`) and then
    // returns `denied(secret)`: the reason is the secret, the refusal the
    // stage named, not the first one in the log.
    let p = Project::new();
    one_stage(
        &p,
        "    with: { mode: secret, name: DEPLOY_TOKEN, program: git }\n",
    );
    let run = p.sluice_env(&["run"], &[("DEPLOY_TOKEN", secret)]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r = reason(&p, &run.run_id());
    assert!(r.contains("secret `DEPLOY_TOKEN` is not granted"), "{r}");
    assert!(
        !r.contains("git"),
        "the reason names a refusal the stage handled: {r}"
    );
    let log = p.log(&run.run_id(), "s");
    assert!(log.contains("exec of `git` is not allowed"), "{log}");
}
