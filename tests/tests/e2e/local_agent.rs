//! The warm local agent: `sluice agent --listen unix:PATH` serves
//! `sluice run --agent unix:PATH` on the same machine. A run through it
//! records what a local run records (plus the agent's name), plugins stay
//! compiled between runs, a changed plugin file is hashed again, and the
//! agent's own operator policy decides what runs (refused: exit 3).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_tests::{plugin, repo_root, Project};

use crate::stage_test_build::copy_example;

/// A `sluice agent --listen unix:…` process of one test; killed (by its
/// pid) when dropped.
struct LocalAgent {
    child: Child,
    socket: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl LocalAgent {
    /// Start an agent with `config` (YAML) beside `p`'s project and wait
    /// until its socket accepts connections.
    fn start(p: &Project, config: &str) -> LocalAgent {
        let config_path = p.write_outside("agent/agent.yaml", config.as_bytes());
        let socket = p.root().join("agent/run/agent.sock");
        let listen = format!("unix:{}", socket.display());
        let mut cmd = p.command(&[
            "agent",
            "--config",
            &config_path.display().to_string(),
            "--listen",
            &listen,
        ]);
        cmd.env("SLUICE_LOG", "info")
            // The agent decides by its own config, never by the runner's
            // environment.
            .env_remove("SLUICE_ALLOW_UNSIGNED")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sluice agent");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut all = sink.lock().unwrap_or_else(|e| e.into_inner());
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let agent = LocalAgent {
            child,
            socket,
            stderr,
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the agent did not listen on {} within 60 s:\n{}",
            self.socket.display(),
            self.log()
        );
    }

    /// `--agent unix:PATH` for `sluice run`.
    fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// What the agent logged so far.
    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for LocalAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent config: name `local1`, the workspace shared, `policy` as its
/// operator policy.
fn agent_config(p: &Project, policy: &Path) -> String {
    format!(
        "name: local1\npolicy: {}\nworkspace: shared\nconcurrency: 2\ncache-dir: {}\n",
        policy.display(),
        p.root().join("agent/cache").display()
    )
}

/// An operator policy for the agent that admits the reference plugins
/// signed by the demo key.
fn demo_policy(p: &Project) -> PathBuf {
    let text = format!(
        "mode: enforce\nno-match: deny\nrules:\n  - name: reference-stages\n    match: [\"**/*.wasm\"]\n    authorities:\n      - key: {}\n    max-grants:\n      workspace: write\n      exec: [python3]\n",
        repo_root().join("dist/keys/demo.pub").display()
    );
    p.write_outside("agent/policy.yaml", text.as_bytes())
}

/// A copy of `examples/quickstart` whose plugin and key paths point at this
/// checkout's `dist/`.
pub(crate) fn quickstart() -> Project {
    let p = Project::new();
    copy_example(&repo_root().join("examples/quickstart"), p.path());
    let dist = repo_root().join("dist");
    for file in ["sluice.yaml", "sluice-policy.yaml"] {
        let text = p
            .read(file)
            .replace("../../dist", &dist.display().to_string());
        p.write(file, &text);
    }
    p
}

/// `text` with every `sha256:<hex>` cut to `sha256:…`: the zipapp holds
/// the copied files' modification times, so its digest differs between two
/// copies of the project whoever runs the stage.
fn without_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sha256:") {
        out.push_str(&rest[..at + "sha256:".len()]);
        out.push('…');
        rest = rest[at + "sha256:".len()..]
            .trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '…');
    }
    out.push_str(rest);
    out
}

/// `text` with every duration in seconds (`0.18s`) replaced by `<time>`.
fn without_timings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number =
            chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if starts_number {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let unit_end = j + 1;
            if chars.get(j) == Some(&'s')
                && chars.get(unit_end).is_none_or(|c| !c.is_alphanumeric())
            {
                out.push_str("<time>");
                i = unit_end;
                continue;
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// What must be the same in a local and an agent run's stage record:
/// everything but timings, the agent's name and the zipapp's digest.
fn comparable(stage: &serde_json::Value) -> serde_json::Value {
    let metrics: Vec<serde_json::Value> = stage["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| match m["unit"].as_str() {
                    Some("s" | "ms") => serde_json::json!([m["name"], "<time>"]),
                    _ => serde_json::json!([m["name"], m["value"], m["unit"]]),
                })
                .collect()
        })
        .unwrap_or_default();
    let outputs: serde_json::Map<String, serde_json::Value> = stage["outputs"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        without_digests(v.as_str().unwrap_or_default()).into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let artifacts: Vec<serde_json::Value> = stage["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| serde_json::json!([x["name"], x["media_type"]]))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "state": stage["state"],
        "verdict": stage["verdict"],
        "reason": stage["reason"],
        "summary": without_timings(&without_digests(stage["summary"].as_str().unwrap_or_default())),
        "attempts": stage["attempts"],
        "gates": stage["gates"],
        "metrics": metrics,
        "outputs": outputs,
        "plugin": stage["plugin"],
        "artifacts": artifacts,
    })
}

/// Needs python3 with pytest and pytest-cov, as the quickstart does.
#[test]
fn run_through_a_warm_agent_matches_a_local_run() {
    let local = quickstart();
    let run = local.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let local_record = local.record(&run.run_id());

    let p = quickstart();
    let agent = LocalAgent::start(&p, &agent_config(&p, &p.path().join("sluice-policy.yaml")));
    let run = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(run.code, 0, "{}\n--- agent\n{}", run.all(), agent.log());
    let id = run.run_id();
    let record = p.record(&id);

    let stages = local_record["stages"].as_object().expect("stages");
    assert_eq!(
        stages.keys().collect::<Vec<_>>(),
        record["stages"]
            .as_object()
            .expect("stages")
            .keys()
            .collect::<Vec<_>>()
    );
    for (name, stage) in stages {
        let remote = &record["stages"][name];
        assert_eq!(
            comparable(remote),
            comparable(stage),
            "stage {name} differs between a local run and one through the agent"
        );
        assert_eq!(remote["agent"], "local1", "{remote}");
        assert!(
            stage.get("agent").is_none(),
            "a local run names no agent: {stage}"
        );
        assert!(remote.get("lost").is_none(), "{remote}");
    }
    // The artifacts are in the coordinator's CAS, usable as after a local
    // run, and the workspace was written in place (the zipapp).
    let build = &record["stages"]["build"];
    let zipapp = build["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "dist/quickstart.pyz"))
        .and_then(|x| x["digest"].as_str())
        .and_then(|d| d.strip_prefix("sha256:"))
        .unwrap_or_else(|| panic!("no zipapp in {build}"))
        .to_owned();
    let blob = p
        .state_dir()
        .join("cas/sha256")
        .join(&zipapp[..2])
        .join(&zipapp[2..]);
    assert!(blob.is_file(), "{} is not in the CAS", blob.display());
    assert!(p.path().join("dist/quickstart.pyz").is_file());
    // The agent wrote the stage logs into this run's directory.
    let log = p.log(&id, "test");
    assert!(log.contains("passed"), "{log}");
}

/// The compile cache entries of the agent (`<cache-dir>/compile/<hex>-<engine>.cwasm`)
/// by the hex digest they start with.
fn compiled(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.root().join("agent/cache/compile"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_second_run_hits_the_warm_plugin_cache() {
    let p = Project::new();
    let pipeline = |extra: &str| {
        format!(
            "version: 1\nname: warm\nstages:\n  a: {{ uses: \"{{hello}}\", with: {{ greeting: hi }} }}\n  b: {{ uses: \"{{hello}}\", needs: [a], with: {{ greeting: again }} }}\n{extra}"
        )
    };
    p.write("sluice.yaml", &pipeline(""));
    let agent = LocalAgent::start(&p, &agent_config(&p, &demo_policy(&p)));
    let first = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(first.code, 0, "{}\n--- agent\n{}", first.all(), agent.log());
    let hello = p.record(&first.run_id())["stages"]["a"]["plugin"]["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .expect("digest")
        .to_owned();
    let entries = compiled(&p);
    assert!(
        entries.iter().any(|e| e.starts_with(&hello)),
        "the first run compiles hello into the agent's compile cache: {entries:?}"
    );
    // Empty the on-disk cache: a plugin that is not warm in the agent must
    // now be compiled again and written back.
    for entry in &entries {
        std::fs::remove_file(p.root().join("agent/cache/compile").join(entry))
            .expect("remove entry");
    }

    // The second run adds a stage with a plugin the agent has not seen.
    p.write(
        "sluice.yaml",
        &pipeline(&format!(
            "  c: {{ uses: \"{}\", needs: [b] }}\n",
            plugin("noop").display()
        )),
    );
    let second = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(
        second.code,
        0,
        "{}\n--- agent\n{}",
        second.all(),
        agent.log()
    );
    let record = p.record(&second.run_id());
    let noop = record["stages"]["c"]["plugin"]["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .expect("digest")
        .to_owned();
    let entries = compiled(&p);
    assert!(
        entries.iter().any(|e| e.starts_with(&noop)),
        "a plugin new to the agent is compiled and cached: {entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.starts_with(&hello)),
        "hello was warm in the agent: neither compiled nor read from disk again: {entries:?}"
    );
    for stage in ["a", "b", "c"] {
        assert_eq!(record["stages"][stage]["state"], "passed", "{record}");
        assert_eq!(record["stages"][stage]["agent"], "local1", "{record}");
    }
}

#[test]
fn a_changed_plugin_file_is_re_hashed() {
    let p = Project::new();
    let file = p.path().join("plugins/stage.wasm");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    let install = |name: &str, to: &Path| {
        std::fs::copy(plugin(name), to).expect("copy the component");
        let bundle = plugin(name).with_extension("wasm.sigstore.json");
        std::fs::copy(bundle, file.with_extension("wasm.sigstore.json")).expect("copy its bundle");
    };
    install("hello", &file);
    p.write(
        "sluice.yaml",
        "version: 1\nname: rehash\nstages:\n  a: { uses: plugins/stage.wasm, with: { greeting: hi, mode: pass } }\n",
    );
    let agent = LocalAgent::start(&p, &agent_config(&p, &demo_policy(&p)));
    let first = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(first.code, 0, "{}\n--- agent\n{}", first.all(), agent.log());
    let first_digest = p.record(&first.run_id())["stages"]["a"]["plugin"]["digest"].clone();

    // Another component at the same path, with the old modification time:
    // a cache keyed by path and time alone would run the old plugin.
    let old_mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime");
    let next = file.with_extension("next");
    install("fixture", &next);
    std::fs::File::options()
        .write(true)
        .open(&next)
        .and_then(|f| f.set_modified(old_mtime))
        .expect("set mtime");
    std::fs::rename(&next, &file).expect("replace the plugin");

    let second = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(
        second.code,
        0,
        "{}\n--- agent\n{}",
        second.all(),
        agent.log()
    );
    let record = p.record(&second.run_id());
    let digest = &record["stages"]["a"]["plugin"]["digest"];
    assert_ne!(digest, &first_digest, "{record}");
    assert_eq!(
        record["stages"]["a"]["plugin"]["name"], "fixture",
        "{record}"
    );
    assert_eq!(record["stages"]["a"]["agent"], "local1", "{record}");
}

#[test]
fn an_agent_whose_policy_refuses_the_plugin_fails_the_run_with_exit_3() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: refused\nstages:\n  a: { uses: \"{hello}\", with: { greeting: hi } }\n",
    );
    // The coordinator admits everything (`SLUICE_ALLOW_UNSIGNED=1` in the
    // test environment); the agent's own policy admits no plugin from
    // `dist/plugins`.
    let policy = p.write_outside(
        "agent/policy.yaml",
        format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: elsewhere\n    match: [\"**/elsewhere/*.wasm\"]\n    authorities:\n      - key: {}\n",
            repo_root().join("dist/keys/demo.pub").display()
        )
        .as_bytes(),
    );
    let agent = LocalAgent::start(&p, &agent_config(&p, &policy));
    let run = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(run.code, 3, "{}\n--- agent\n{}", run.all(), agent.log());
    let record = p.record(&run.run_id());
    let stage = &record["stages"]["a"];
    assert_eq!(stage["state"], "failed", "{record}");
    let reason = stage["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refused by agent `local1`"), "{reason}");
    assert_eq!(stage["attempts"], 1, "a refusal is not retried: {record}");
}

#[test]
fn a_stage_whose_labels_the_local_agent_lacks_is_not_run_there() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: labels\nstages:\n  anywhere: { uses: \"{hello}\", with: { greeting: hi } }\n  \
         egress:\n    uses: \"{hello}\"\n    needs: [anywhere]\n    with: { greeting: hi }\n    runs-on: [net=egress]\n",
    );
    let policy = demo_policy(&p);
    let config = format!("{}labels: [os=linux]\n", agent_config(&p, &policy));
    let agent = LocalAgent::start(&p, &config);
    let run = p.sluice(&["run", "--agent", &agent.target()]);
    assert_eq!(run.code, 1, "{}\n--- agent\n{}", run.all(), agent.log());
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["anywhere"]["state"], "passed", "{record}");
    let egress = &record["stages"]["egress"];
    assert_eq!(egress["state"], "failed", "{record}");
    let reason = egress["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("needs an agent with the labels `net=egress`")
            && reason.contains("`local1` has `os=linux`")
            && reason.contains("labels:"),
        "{reason}"
    );
    // Job ids are `<run>.<epoch>.<stage>.<attempt>`: the agent logged the
    // first stage's job and never saw the second's.
    let log = agent.log();
    assert!(log.contains(".anywhere.1"), "{log}");
    assert!(!log.contains(".egress."), "the agent saw the job:\n{log}");
}

#[test]
fn no_agent_at_the_socket_is_a_clear_error() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: alone\nstages:\n  a: { uses: \"{hello}\", with: { greeting: hi } }\n",
    );
    let socket = p.root().join("nobody.sock");
    let run = p.sluice(&["run", "--agent", &format!("unix:{}", socket.display())]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("sluice agent --listen"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&socket.display().to_string()),
        "{}",
        run.all()
    );
}

/// The one run directory of `p` (`state/runs/<id>`), once it exists.
fn only_run_dir(p: &Project) -> Option<PathBuf> {
    std::fs::read_dir(p.state_dir().join("runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|d| d.is_dir())
}

#[test]
fn killing_the_agent_mid_stage_fails_the_stage_as_lost() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: killed\nstages:\n  a: { uses: \"{fixture}\", with: { mode: sleep, seconds: 60 } }\n",
    );
    let mut agent = LocalAgent::start(&p, &agent_config(&p, &demo_policy(&p)));
    let mut run = p
        .command(&["run", "--agent", &agent.target()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice run");
    // The agent writes the stage's log into the run directory: once it says
    // the stage sleeps, the stage is running on the agent.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let log = only_run_dir(&p)
            .and_then(|d| std::fs::read_to_string(d.join("logs/a.log")).ok())
            .unwrap_or_default();
        if log.contains("sleeping 60s") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the stage did not start on the agent:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL, by the pid of the agent this test started.
    agent.child.kill().expect("kill the agent");
    let _ = agent.child.wait();

    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait for sluice run") {
            break status;
        }
        if Instant::now() > until {
            let _ = run.kill();
            panic!("the run did not end after its agent was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = run.wait_with_output().expect("output");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(1), "{all}");
    let id = only_run_dir(&p)
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .expect("run id");
    let record = p.record(&id);
    let stage = &record["stages"]["a"];
    assert_eq!(stage["state"], "failed", "{record}");
    let reason = stage["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("lost: 1 agents took the job"),
        "{reason}"
    );
    assert_eq!(stage["lost"][0]["agent"], "local1", "{record}");
}
