//! Agents decide for themselves: `sluice agent` admits every plugin under
//! its own operator policy, grant ceiling and secrets, whatever the
//! coordinator's policy allowed, and a refusal makes the run exit 3 naming
//! the agent and the rule. Bad agent configs are located errors (exit 2).
//! An agent killed with SIGKILL mid-stage loses nothing: NATS redelivers
//! the job to another agent and the stage is recorded once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sluice_tests::{repo_root, Project};

use sluice_tests::agent::AgentProcess as AgentProc;

/// A policy trusting only `key` (a PEM file), as the agent's operator policy.
fn policy_trusting(p: &Project, file: &str, key: &Path) -> PathBuf {
    let path = p.root().join(file);
    std::fs::write(
        &path,
        format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: ops-signed\n    match: [\"**\"]\n    authorities:\n      - key: {}\n",
            key.display()
        ),
    )
    .expect("write policy");
    path
}

/// The demo key the reference plugins are signed with.
fn demo_key() -> PathBuf {
    repo_root().join("dist/keys/demo.pub")
}

/// A fresh key pair that signed nothing; returns the public key.
fn other_key(p: &Project) -> PathBuf {
    let out = p.root().join("other");
    let run = p.sluice_env(
        &["key", "generate", "--out", &out.display().to_string()],
        &[("SLUICE_KEY_PASSWORD", "pw")],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    p.root().join("other.pub")
}

fn socket(p: &Project, name: &str) -> PathBuf {
    p.root().join(format!("{name}.sock"))
}

fn agent_arg(socket: &Path) -> String {
    format!("unix:{}", socket.display())
}

/// A one-stage pipeline of the fixture in `mode`, with extra stage keys.
fn one_stage(p: &Project, with: &str, grants: &str) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: fleet\nstages:\n  s:\n    uses: {{fixture}}\n    with: {with}\n    grants: {grants}\n"
        ),
    );
}

#[test]
fn an_agent_whose_policy_refuses_the_plugin_fails_the_run_with_exit_3() {
    // The coordinator allows unsigned plugins (no policy at all); the agent
    // trusts only a key that signed nothing here.
    let p = Project::new();
    let key = other_key(&p);
    let policy = policy_trusting(&p, "strict-policy.yaml", &key);
    let sock = socket(&p, "strict");
    let agent = AgentProc::start(
        &p,
        "strict",
        &format!("policy: {}\n", policy.display()),
        Some(&sock),
    );
    one_stage(&p, "{ mode: pass }", "{}");
    let run = p.sluice(&["run", "--agent", &agent_arg(&sock)]);
    assert_eq!(run.code, 3, "{}\n{}", run.all(), agent.log());
    assert!(
        run.stdout.contains("refused by agent `strict`"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("rule `ops-signed`"), "{}", run.all());
    let record = p.record(&run.run_id());
    let stage = &record["stages"]["s"];
    assert_eq!(stage["state"], "failed", "{stage}");
    assert_eq!(stage["agent"], "strict", "{stage}");
    assert!(
        agent.log().contains("refused by agent `strict`"),
        "the agent logs its refusal:\n{}",
        agent.log()
    );
}

#[test]
fn an_agent_refuses_grants_over_its_ceiling_and_secrets_it_does_not_hold() {
    let p = Project::new();
    let policy = policy_trusting(&p, "ops-policy.yaml", &demo_key());
    let sock = socket(&p, "ceiling");
    let _agent = AgentProc::start(
        &p,
        "ceiling",
        &format!(
            "policy: {}\naccept: {{ max-grants: {{ exec: [sleep] }} }}\nsecrets: {{ HELD: {{ env: PATH }} }}\n",
            policy.display()
        ),
        Some(&sock),
    );
    // Within the ceiling: runs (a signed plugin, a granted `sleep`).
    one_stage(
        &p,
        "{ mode: exec, program: sleep, args: [\"0\"] }",
        "{ exec: [sleep], secrets: [HELD] }",
    );
    let run = p.sluice(&["run", "--agent", &agent_arg(&sock)]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(p.record(&run.run_id())["stages"]["s"]["agent"], "ceiling");

    // One program more than the ceiling allows.
    one_stage(
        &p,
        "{ mode: exec, program: sleep, args: [\"0\"] }",
        "{ exec: [sleep, curl] }",
    );
    let run = p.sluice(&["run", "--agent", &agent_arg(&sock)]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stdout.contains("refused by agent `ceiling`"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("accept.max-grants"), "{}", run.all());
    assert!(run.stdout.contains("exec: [curl]"), "{}", run.all());

    // A secret the agent's config does not list, though the coordinator's
    // environment has it: the value comes only from the agent.
    one_stage(
        &p,
        "{ mode: secret, name: NPM_TOKEN }",
        "{ secrets: [NPM_TOKEN] }",
    );
    let run = p.sluice_env(
        &["run", "--agent", &agent_arg(&sock)],
        &[("NPM_TOKEN", "coordinator-value")],
    );
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stdout
            .contains("agent `ceiling` holds no secret `NPM_TOKEN`"),
        "{}",
        run.all()
    );
    p.assert_nothing_contains(&run, b"coordinator-value");
}

#[test]
fn a_bad_agent_config_names_the_line_and_exits_2() {
    let p = Project::new();
    let file = p.root().join("bad.yaml");
    std::fs::write(&file, "name: a1\npolicy: p.yaml\nconcurency: 2\n").expect("write");
    let run = p.sluice(&[
        "agent",
        "--config",
        &file.display().to_string(),
        "--listen",
        "unix:/nonexistent/x.sock",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("unknown field `concurency`"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("bad.yaml:3:1"), "{}", run.all());

    // No policy and no allow-unsigned: an agent never runs unverified code
    // by default.
    std::fs::write(&file, "name: a1\nlabels: [os=linux]\n").expect("write");
    let run = p.sluice(&["agent", "--config", &file.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no operator policy"), "{}", run.all());

    // A policy file that is not one: located in the policy file.
    std::fs::write(p.root().join("p.yaml"), "mode: enforce\nrules: 7\n").expect("write");
    std::fs::write(&file, "name: a1\npolicy: p.yaml\n").expect("write");
    let run = p.sluice(&[
        "agent",
        "--config",
        &file.display().to_string(),
        "--listen",
        "unix:x.sock",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("p.yaml:2:"), "{}", run.all());

    // Nowhere to take jobs from.
    std::fs::write(&file, "name: a1\nallow-unsigned: true\n").expect("write");
    let run = p.sluice(&["agent", "--config", &file.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("nowhere to take jobs from"),
        "{}",
        run.all()
    );
}

/// Agent config lines for NATS namespace `ns` of `server`: short ack wait
/// and heartbeat, so a dead agent's job moves on within seconds.
fn nats_agent(server: &sluice_tests::nats::NatsServer, ns: &str) -> String {
    format!(
        "allow-unsigned: true\nworkspace: shared\nnats: {{ url: \"{}\", namespace: {ns} }}\nack-wait: 2s\nheartbeat: 1s\n",
        server.url()
    )
}

#[test]
fn killing_an_agent_mid_stage_redelivers_and_records_the_stage_once() {
    use std::io::BufRead;
    let server = sluice_tests::nats::NatsServer::shared();
    let ns = sluice_tests::nats::NatsServer::namespace();
    let p = Project::new();
    let mut a1 = AgentProc::start(&p, "k1", &nats_agent(server, &ns), None);
    let mut a2 = AgentProc::start(&p, "k2", &nats_agent(server, &ns), None);
    one_stage(
        &p,
        "{ mode: exec, program: sleep, args: [\"4\"] }",
        "{ exec: [sleep] }",
    );
    let executor = format!("{}?namespace={ns}", server.url());
    let mut run = p
        .command(&["run", "--executor", &executor, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice run");
    let stdout = run.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    // Kill the agent that took the job, once it runs it.
    let mut run_id = None;
    let mut killed = None;
    let mut events = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if run_id.is_none() {
            run_id = event["run_id"].as_str().map(str::to_owned);
        }
        events.push(line);
        if event["event"] == "stage_assigned" && killed.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            let victim = if event["agent"] == "k1" {
                &mut a1
            } else {
                &mut a2
            };
            assert!(event["agent"] == "k1" || event["agent"] == "k2", "{event}");
            killed = Some((victim.name.clone(), victim.pid()));
            victim.kill9();
        }
    }
    let status = run.wait().expect("wait for the run");
    let mut stderr = String::new();
    let _ = run.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
    let (victim, _) = killed.unwrap_or_else(|| {
        panic!(
            "no stage_assigned event:\n{}\n{stderr}\nk1:\n{}\nk2:\n{}",
            events.join("\n"),
            a1.log(),
            a2.log()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{stderr}\nk1:\n{}\nk2:\n{}",
        events.join("\n"),
        a1.log(),
        a2.log()
    );
    let survivor = if victim == "k1" { "k2" } else { "k1" };
    let record = p.record(run_id.as_deref().expect("run id"));
    let stage = &record["stages"]["s"];
    assert_eq!(stage["state"], "passed", "{stage}");
    assert_eq!(stage["attempts"], 1, "a loss is not a retry: {stage}");
    assert_eq!(stage["agent"], survivor, "{stage}");
    let lost = stage["lost"].as_array().expect("lost executions");
    assert_eq!(lost.len(), 1, "{stage}");
    assert_eq!(lost[0]["agent"], victim, "{stage}");
    // Recorded once: one stage_finished for it.
    let finished = events
        .iter()
        .filter(|l| l.contains("\"stage_finished\""))
        .count();
    assert_eq!(finished, 1, "{}", events.join("\n"));
}

#[test]
fn over_nats_an_agent_refuses_what_its_own_policy_refuses() {
    // The same refusal as over the socket, through the NATS job path: the
    // coordinator allows unsigned plugins, the agent trusts another key.
    let server = sluice_tests::nats::NatsServer::shared();
    let ns = sluice_tests::nats::NatsServer::namespace();
    let p = Project::new();
    let key = other_key(&p);
    let policy = policy_trusting(&p, "nats-policy.yaml", &key);
    let config = nats_agent(server, &ns).replace(
        "allow-unsigned: true\n",
        &format!("policy: {}\n", policy.display()),
    );
    let agent = AgentProc::start(&p, "picky", &config, None);
    one_stage(&p, "{ mode: pass }", "{}");
    let executor = format!("{}?namespace={ns}", server.url());
    let run = p.sluice(&["run", "--executor", &executor]);
    assert_eq!(run.code, 3, "{}\n{}", run.all(), agent.log());
    assert!(
        run.stdout.contains("refused by agent `picky`"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("rule `ops-signed`"), "{}", run.all());
}

#[test]
fn agents_list_shows_heartbeats_and_forgets_dead_agents() {
    let server = sluice_tests::nats::NatsServer::shared();
    let ns = sluice_tests::nats::NatsServer::namespace();
    let p = Project::new();
    let nats = format!("{}?namespace={ns}", server.url());
    let run = p.sluice(&["agents", "list", "--nats", &nats]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("no live agents"), "{}", run.all());

    let config = format!(
        "labels: [os=linux, net=egress]\nconcurrency: 3\n{}",
        nats_agent(server, &ns)
    );
    let mut agent = AgentProc::start(&p, "lister", &config, None);
    let listed = |p: &Project| {
        let run = p.sluice(&["agents", "list", "--nats", &nats, "--json"]);
        assert_eq!(run.code, 0, "{}", run.all());
        serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", run.all()))
    };
    let started = Instant::now();
    let agents = loop {
        let agents = listed(&p);
        if !agents.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break agents;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(agents.len(), 1, "{agents:?}\n{}", agent.log());
    assert_eq!(agents[0]["name"], "lister");
    assert_eq!(agents[0]["labels"], "net=egress,os=linux");
    assert_eq!(agents[0]["slots"], 3);
    assert_eq!(agents[0]["allow_unsigned"], true);
    let table = p.sluice(&["agents", "list", "--nats", &nats]);
    assert!(
        table
            .stdout
            .contains("lister (unsigned allowed)  net=egress,os=linux  0/3"),
        "{}",
        table.all()
    );

    // Dead (SIGKILL: no goodbye): gone once three heartbeats are missed.
    agent.kill9();
    let started = Instant::now();
    while !listed(&p).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a dead agent is still listed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
