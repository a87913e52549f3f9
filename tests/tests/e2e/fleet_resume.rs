//! A fleet run survives its infrastructure: the NATS server restarting
//! mid-run (SIGTERM or SIGKILL, file storage) loses no job, and a
//! coordinator killed with SIGKILL mid-stage is resumed with `--resume`,
//! which re-attaches to the job still running on its agent instead of
//! running the stage a second time.

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use sluice_tests::agent::AgentProcess;
use sluice_tests::nats::NatsServer;
use sluice_tests::{shared_cache, Project};

/// A `sluice agent` on NATS (short ack wait and heartbeat, unsigned
/// plugins allowed), killed when dropped.
struct Agent;

impl Agent {
    /// Start agent `name` on `server`'s namespace `ns` with the workspace
    /// shared, and wait until it takes jobs.
    fn start(p: &Project, name: &str, server: &NatsServer, ns: &str) -> AgentProcess {
        Agent::start_with(p, name, server, ns, "workspace: shared\n")
    }

    /// [`Agent::start`] with `extra` config lines instead of a shared
    /// workspace.
    fn start_with(
        p: &Project,
        name: &str,
        server: &NatsServer,
        ns: &str,
        extra: &str,
    ) -> AgentProcess {
        let config = format!(
            "allow-unsigned: true\n{extra}nats: {{ url: \"{}\", namespace: {ns} }}\n\
             concurrency: 2\nack-wait: 2s\nheartbeat: 1s\n",
            server.url()
        );
        AgentProcess::start(p, name, &config, None)
    }
}

/// `--executor` for namespace `ns` of `server`.
fn executor(server: &NatsServer, ns: &str) -> String {
    format!("{}?namespace={ns}", server.url())
}

/// A chain: `slow` appends a line to `count` and sleeps `secs` (through a
/// granted `sh`), then `package` writes artifacts and `check` reads them
/// (with the workspace mounted: the agents share it by path).
fn chain(p: &Project, count: &Path, secs: u32) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: fleet-resume\nstages:\n  slow:\n    uses: {{fixture}}\n    \
             with: {{ mode: exec, program: sh, args: [\"-c\", \"echo ran >> {}; sleep {secs}\"] }}\n    \
             grants: {{ exec: [sh] }}\n  package:\n    uses: {{fixture}}\n    needs: [slow]\n    \
             with: {{ mode: pass, text: \"release\\n\", version: \"1.0.0\" }}\n  check:\n    \
             uses: {{fixture}}\n    needs: [package]\n    with: {{ mode: read }}\n    \
             grants: {{ workspace: read }}\n",
            count.display()
        ),
    );
}

/// Start `sluice run args…` with `--json` output piped.
fn spawn_run(
    p: &Project,
    args: &[&str],
) -> (Child, std::io::Lines<std::io::BufReader<ChildStdout>>) {
    let mut child = p
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice run");
    let stdout = child.stdout.take().expect("stdout");
    (child, std::io::BufReader::new(stdout).lines())
}

/// Read events until `stop` says so; returns the lines read and the run id.
fn read_until(
    lines: &mut std::io::Lines<std::io::BufReader<ChildStdout>>,
    mut stop: impl FnMut(&serde_json::Value) -> bool,
) -> (Vec<String>, Option<String>) {
    let mut seen = Vec::new();
    let mut run_id = None;
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if run_id.is_none() {
            run_id = event["run_id"].as_str().map(str::to_owned);
        }
        seen.push(line);
        if stop(&event) {
            break;
        }
    }
    (seen, run_id)
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// Restart the server (SIGKILL when `kill9`) while the first stage runs on
/// the agent: the run still passes, every stage finished once, and each
/// one is recorded with its agent.
fn nats_restart_mid_run_loses_no_job(kill9: bool) {
    let server = NatsServer::private();
    let ns = NatsServer::namespace();
    let p = Project::new();
    let count = p.root().join("count");
    chain(&p, &count, 3);
    let agent = Agent::start(&p, "r1", &server, &ns);
    let executor = executor(&server, &ns);
    let (mut run, mut lines) = spawn_run(&p, &["run", "--executor", &executor, "--json"]);
    let (mut events, run_id) = read_until(&mut lines, |e| {
        e["event"] == "stage_assigned" && e["stage"] == "slow"
    });
    // The stage runs on the agent now: take the server away under it.
    std::thread::sleep(Duration::from_millis(300));
    if kill9 {
        server.kill9_and_restart();
    } else {
        server.restart();
    }
    let (rest, _) = read_until(&mut lines, |_| false);
    events.extend(rest);
    let status = run.wait().expect("wait for the run");
    let stderr = stderr_of(&mut run);
    let context = || {
        format!(
            "{}\n--- stderr\n{stderr}\n--- agent\n{}\n--- server\n{}",
            events.join("\n"),
            agent.log(),
            server.log()
        )
    };
    assert_eq!(status.code(), Some(0), "{}", context());
    let record = p.record(run_id.as_deref().expect("run id"));
    assert_eq!(record["status"], "passed", "{}", context());
    for stage in ["slow", "package", "check"] {
        let r = &record["stages"][stage];
        assert_eq!(r["state"], "passed", "{stage}: {r}");
        assert_eq!(r["agent"], "r1", "{stage}: {r}");
        let finished = events
            .iter()
            .filter(|l| {
                l.contains("\"stage_finished\"") && l.contains(&format!("\"stage\":\"{stage}\""))
            })
            .count();
        assert_eq!(finished, 1, "{stage} finished once: {}", context());
    }
    // The artifacts crossed the restart intact: the last stage read them.
    assert!(
        record["stages"]["check"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("read 3 input artifacts"),
        "{}",
        context()
    );
    // The slow stage ran at most twice (a second time only if the outage
    // outlasted its ack wait, which the record then shows as a loss).
    let runs = std::fs::read_to_string(&count)
        .unwrap_or_default()
        .lines()
        .count();
    let lost = record["stages"]["slow"]["lost"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(runs, 1 + lost, "{}", context());
}

#[test]
fn restarting_nats_mid_run_loses_no_job() {
    nats_restart_mid_run_loses_no_job(false);
}

#[test]
fn killing_nats_mid_run_loses_no_job() {
    nats_restart_mid_run_loses_no_job(true);
}

/// Whether the CAS under an agent's `cache-dir` holds blob `digest`.
fn agent_has_blob(name: &str, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    shared_cache()
        .join("agents")
        .join(name)
        .join("cas/sha256")
        .join(&hex[..2])
        .join(&hex[2..])
        .is_file()
}

#[test]
fn a_pipeline_split_over_three_agents_passes_artifacts_between_them_by_digest() {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let p = Project::new();
    // Content no earlier run produced: its blob in an agent's own CAS can
    // only come from this run, through the object store.
    let marker = format!("release {ns}");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: three-agents\nstages:\n  package:\n    uses: {{fixture}}\n    \
             runs-on: [role=package]\n    with: {{ mode: pass, text: \"{marker}\\n\", version: \"1.0.0\" }}\n  \
             check:\n    uses: {{fixture}}\n    needs: [package]\n    runs-on: [role=check]\n    \
             with: {{ mode: read }}\n  report:\n    uses: {{fixture}}\n    needs: [package, check]\n    \
             runs-on: [role=report]\n    with: {{ mode: read }}\n"
        ),
    );
    // Three agents, each with its own CAS and none sharing the
    // coordinator's workspace or run directory.
    let agents: Vec<(&str, AgentProcess)> = [
        ("packager", "package"),
        ("checker", "check"),
        ("reporter", "report"),
    ]
    .into_iter()
    .map(|(name, role)| {
        let extra = format!("workspace: none\nlabels: [role={role}]\n");
        (name, Agent::start_with(&p, name, server, &ns, &extra))
    })
    .collect();
    let run = p.sluice(&["run", "--executor", &executor(server, &ns), "--json"]);
    let context = || {
        let logs: Vec<String> = agents
            .iter()
            .map(|(name, a)| format!("--- {name}\n{}", a.log()))
            .collect();
        format!("{}\n{}", run.all(), logs.join("\n"))
    };
    assert_eq!(run.code, 0, "{}", context());
    let record = p.record(&run.run_id());
    for (stage, agent) in [
        ("package", "packager"),
        ("check", "checker"),
        ("report", "reporter"),
    ] {
        assert_eq!(
            record["stages"][stage]["agent"],
            agent,
            "{stage}: {}",
            context()
        );
    }
    let produced: Vec<(String, String)> = record["stages"]["package"]["artifacts"]
        .as_array()
        .expect("package's artifacts")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_owned(),
                a["digest"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        produced.iter().any(|(name, _)| name == "greeting.txt"),
        "{produced:?}"
    );
    for stage in ["check", "report"] {
        let r = &record["stages"][stage];
        assert_eq!(
            r["summary"].as_str().unwrap_or_default(),
            format!("read {} input artifacts", produced.len()),
            "{stage}: {}",
            context()
        );
    }
    // The first input `check` read is the greeting `packager` wrote.
    assert_eq!(
        record["stages"]["check"]["outputs"]["first"],
        marker.as_str()
    );
    // Every artifact reached the other two agents as a blob named by its
    // digest, re-hashed on arrival (a blob that hashed otherwise would have
    // failed the stage); the packager holds what it wrote (the provenance
    // statement is the coordinator's).
    for (name, digest) in &produced {
        let holders: &[&str] = if name == "provenance.intoto.json" {
            &["checker", "reporter"]
        } else {
            &["packager", "checker", "reporter"]
        };
        for agent in holders {
            assert!(
                agent_has_blob(agent, digest),
                "{name} ({digest}) is not in {agent}'s CAS\n{}",
                context()
            );
        }
    }
    // The coordinator holds them too, under the same digests.
    for (name, digest) in &produced {
        let hex = digest.trim_start_matches("sha256:");
        let blob = p
            .root()
            .join("state/cas/sha256")
            .join(&hex[..2])
            .join(&hex[2..]);
        assert!(blob.is_file(), "{name}: {}", blob.display());
    }
}

#[test]
fn the_quickstart_runs_on_agents_that_get_the_workspace_as_a_snapshot() {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let p = crate::local_agent::quickstart();
    // Two agents that do not see the coordinator's file system: each has
    // its own CAS and `workspace: none`.
    let agents: Vec<AgentProcess> = ["snap1", "snap2"]
        .into_iter()
        .map(|name| Agent::start_with(&p, name, server, &ns, "workspace: none\n"))
        .collect();
    assert!(!p.path().join("dist").exists());
    // A local secret the checkout keeps out of every snapshot: its bytes
    // (unique to this test) must reach no agent.
    p.write(".sluiceignore", "# never sent to agents\n/local.env\n");
    let secret = format!("TOKEN={}\n", p.path().display());
    p.write("local.env", &secret);
    let secret_digest = sluice_tests::registry::sha256_file(&p.path().join("local.env"));
    let url = format!("{}&workspace=snapshot", executor(server, &ns));
    let run = p.sluice(&["run", "--executor", &url, "--json"]);
    let context = || {
        let logs: Vec<String> = agents.iter().map(AgentProcess::log).collect();
        format!("{}\n--- agents\n{}", run.all(), logs.join("\n---\n"))
    };
    assert_eq!(run.code, 0, "{}", context());
    let record = p.record(&run.run_id());
    for stage in ["lint", "test", "scan", "build"] {
        let r = &record["stages"][stage];
        assert_eq!(r["state"], "passed", "{stage}: {}", context());
        let agent = r["agent"].as_str().unwrap_or_default();
        assert!(agent == "snap1" || agent == "snap2", "{stage}: {r}");
    }
    // `build` (workspace: write) made dist/quickstart.pyz in its copy of
    // the workspace; the change came back and is in the user's checkout,
    // byte for byte the artifact the record names.
    let pyz = p.path().join("dist/quickstart.pyz");
    assert!(pyz.is_file(), "{}\n{}", pyz.display(), context());
    let digest = sluice_tests::registry::sha256_file(&pyz);
    let artifacts = record["stages"]["build"]["artifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        artifacts
            .iter()
            .any(|a| a["name"] == "dist/quickstart.pyz" && a["digest"] == digest.as_str()),
        "{artifacts:?}"
    );
    // What `.sluiceignore` lists stayed home (and `build`'s changes did not
    // take it away), while the file that lists it travelled to the agents
    // that ran stages.
    let in_cas = |agent: &AgentProcess, digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        sluice_tests::shared_cache()
            .join("agents")
            .join(&agent.name)
            .join("cas/sha256")
            .join(&hex[..2])
            .join(&hex[2..])
            .exists()
    };
    for agent in &agents {
        assert!(
            !in_cas(agent, &secret_digest),
            "the ignored file reached agent {}",
            agent.name
        );
    }
    let listing = sluice_tests::registry::sha256_file(&p.path().join(".sluiceignore"));
    assert!(agents.iter().any(|a| in_cas(a, &listing)), "{}", context());
    // The digests of the checkout's files are kept for the next snapshot.
    let kept: Vec<_> = std::fs::read_dir(p.state_dir().join("snapshots"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let cache = std::fs::read_to_string(&kept[0]).unwrap_or_default();
    assert!(cache.contains("\".sluiceignore\""), "{cache}");
    assert!(
        !cache.contains("local.env"),
        "ignored files are not even hashed"
    );
    assert_eq!(p.read("local.env"), secret);
}

#[test]
fn a_bad_sluiceignore_stops_a_snapshot_run_before_it_starts() {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let p = crate::local_agent::quickstart();
    p.write(".sluiceignore", "target/\nbad[z-a]\n");
    let url = format!("{}&workspace=snapshot", executor(server, &ns));
    let run = p.sluice(&["run", "--executor", &url]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains(
            "cannot be sent to agents as a snapshot: `.sluiceignore` line 2: `bad[z-a]` is not a pattern"
        ) && run.stderr.contains("fix it (gitignore syntax) or remove the line"),
        "{}",
        run.all()
    );
    // Refused before there was a run, as any other setup mistake is.
    let runs = std::fs::read_dir(p.state_dir().join("runs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(runs, 0, "{}", run.all());
}

#[test]
fn a_killed_coordinator_resumes_and_reattaches_to_the_running_job() {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let p = Project::new();
    let count = p.root().join("count");
    chain(&p, &count, 4);
    let agent = Agent::start(&p, "c1", server, &ns);
    let executor = executor(server, &ns);
    let (mut run, mut lines) = spawn_run(&p, &["run", "--executor", &executor, "--json"]);
    let (events, run_id) = read_until(&mut lines, |e| {
        e["event"] == "stage_assigned" && e["stage"] == "slow"
    });
    let run_id = run_id.unwrap_or_else(|| panic!("no run id:\n{}", events.join("\n")));
    // SIGKILL: no goodbye; the record shows `slow` running.
    let _ = run.kill();
    let _ = run.wait();
    assert_eq!(p.record(&run_id)["stages"]["slow"]["state"], "running");
    let resumed = p.sluice(&[
        "run",
        "--resume",
        &run_id,
        "--executor",
        &executor,
        "--json",
    ]);
    let context = || format!("{}\n--- agent\n{}", resumed.all(), agent.log());
    assert_eq!(resumed.code, 0, "{}", context());
    let record = p.record(&run_id);
    assert_eq!(record["status"], "passed", "{}", context());
    assert_eq!(record["stages"]["slow"]["agent"], "c1", "{}", context());
    // The job the dead coordinator had sent finished on the agent and was
    // taken as it was: the stage ran once.
    let runs = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "ran {runs:?}\n{}", context());
    assert!(record["fleet_epoch"].as_u64() >= Some(2), "{record}");
}

/// `text` with every regex metacharacter escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_console_names_the_agent_of_each_stage() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir plugins");
    std::fs::copy(
        sluice_tests::plugin("fixture"),
        p.path().join("plugins/fixture.wasm"),
    )
    .expect("copy fixture");
    p.write(
        "sluice.yaml",
        "version: 1\nname: on-agents\nstages:\n  package:\n    uses: plugins/fixture.wasm\n    \
         with: { mode: pass, text: \"release\\n\", version: \"1.0.0\" }\n  check:\n    \
         uses: plugins/fixture.wasm\n    needs: [package]\n    with: { mode: read }\n    \
         grants: { workspace: read }\n",
    );
    // A local agent: same job path as NATS, one known agent, no server.
    let socket = p.root().join("agent.sock");
    let agent = AgentProcess::start(&p, "snap", "allow-unsigned: true\n", Some(&socket));
    let target = format!("unix:{}", socket.display());
    let run = p.sluice(&["run", "--jobs", "1", "--agent", &target]);
    assert_eq!(run.code, 0, "{}\n--- agent\n{}", run.all(), agent.log());
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    for root in [
        p.root().to_path_buf(),
        p.root().canonicalize().unwrap_or_default(),
    ] {
        let text = root.display().to_string();
        if !text.is_empty() {
            s.add_filter(&regex_escape(&text), "[tmp]");
        }
    }
    s.add_filter(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "[run-id]");
    s.add_filter(
        r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
        "[timestamp]",
    );
    s.add_filter(r"sha256:[0-9a-f]{12,64}\b", "sha256:[digest]");
    s.add_filter(r"\b\d+\.\d+s\b", "[duration]");
    s.add_filter(r"duration_ms = \d+", "duration_ms = [ms]");
    s.add_filter(
        r"(provenance\.intoto\.json[^\n]*?)\b\d+ bytes",
        "${1}[size] bytes",
    );
    s.bind(|| {
        insta::assert_snapshot!(
            "console__on_agents",
            format!(
                "$ sluice run --jobs 1 --agent unix:[tmp]/agent.sock\n{}",
                run.stdout
            )
        );
    });
}

#[test]
fn runs_on_is_validated_shown_by_validate_and_ignored_by_a_local_run() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: labels\nstages:\n  build:\n    uses: {fixture}\n    \
         with: { mode: pass, text: \"x\\n\", version: \"1\" }\n    runs-on: [os=linux, net=egress]\n  \
         check:\n    uses: {fixture}\n    needs: [build]\n    with: { mode: read }\n",
    );
    let validate = p.sluice(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(
        validate.stdout.contains("(runs on net=egress,os=linux)"),
        "{}",
        validate.all()
    );
    // Only stages that name labels say where they run.
    let check_line = validate
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("check:"))
        .unwrap_or_default();
    assert!(!check_line.contains("runs on"), "{}", validate.all());
    // Without --executor the labels mean nothing: the run is local, as
    // always, and its record and events name no agent.
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.events().iter().all(|e| e["event"] != "stage_assigned"),
        "{}",
        run.all()
    );
    let record = p.record(&run.run_id());
    assert!(record.get("fleet_epoch").is_none(), "{record}");
    for stage in ["build", "check"] {
        let r = &record["stages"][stage];
        assert_eq!(r["state"], "passed", "{r}");
        assert!(r.get("agent").is_none() && r.get("lost").is_none(), "{r}");
    }
    // A bad label is refused before anything runs, located, with the fix.
    p.write(
        "sluice.yaml",
        "version: 1\nname: labels\nstages:\n  build:\n    uses: {fixture}\n    runs-on: [os=Linux]\n",
    );
    let bad = p.sluice(&["run"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr.contains("sluice.yaml:6:15")
            && bad.stderr.contains("`os=Linux` is not a valid label")
            && bad.stderr.contains("help: write a label as `key=value`"),
        "{}",
        bad.all()
    );
}
