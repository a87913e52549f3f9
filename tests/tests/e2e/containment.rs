//! Every host process a stage starts through `exec` ends with the stage:
//! after a timeout, a normal exit that left children behind, fail-fast
//! cancellation, and SIGINT/SIGTERM to the runner; and a relative `PATH`
//! entry never picks a program out of the workspace.
//!
//! The stage's programs carry a unique token in their environment (granted
//! to the stage), so every process of the stage, however it detached, is
//! found in `/proc/*/environ` or `/proc/*/cmdline`. Each stage also plants
//! marker files that a surviving process would write a few seconds later.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sluice_tests::Project;

/// The longest any runner in these tests may take before it is killed and
/// the test fails.
const RUNNER_BOUND: Duration = Duration::from_secs(120);

/// How containment is chosen: the default (a cgroup where one can be made,
/// as on the CI machines, which run as root) or the fallback.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Auto,
    Fallback,
}

impl Mode {
    fn env(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Fallback => "process-group",
        }
    }
}

fn unique_token() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sluicect{}x{}x{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Live processes (not zombies) carrying `token`, other than `except`.
fn processes_with(token: &str, except: Option<u32>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if Some(pid) == except || pid == std::process::id() {
            continue;
        }
        let dir = entry.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("");
        if state == "Z" || state == "X" || state.is_empty() {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let has = |bytes: &[u8]| String::from_utf8_lossy(bytes).contains(token);
        if has(&cmdline) || has(&environ) {
            found.push(format!(
                "{pid} {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

/// A runner started in the background, with its output collected.
struct Runner {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// What a runner did.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    exited_at: Instant,
}

impl Finished {
    fn all(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    fn run_id(&self) -> String {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|e| e["run_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no run id in the output:\n{}", self.all()))
    }

    /// The runner exited by itself with `code` (not killed by a signal).
    fn assert_exit(&self, code: i32) {
        assert_eq!(self.status.signal(), None, "{}", self.all());
        assert_eq!(self.status.code(), Some(code), "{}", self.all());
    }
}

fn start(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Runner {
    let mut cmd = p.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    Runner {
        child,
        stdout,
        stderr,
    }
}

impl Runner {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the runner to exit; past `RUNNER_BOUND` kill it and fail.
    fn wait(mut self) -> Finished {
        let deadline = Instant::now() + RUNNER_BOUND;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let out = self.stdout.join().unwrap_or_default();
                    let err = self.stderr.join().unwrap_or_default();
                    panic!(
                        "the runner did not finish within {RUNNER_BOUND:?}; killed it\n--- stdout\n{out}\n--- stderr\n{err}"
                    );
                }
                Err(e) => panic!("waiting for the runner: {e}"),
            }
        };
        let exited_at = Instant::now();
        Finished {
            status,
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
            exited_at,
        }
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

/// Poll `f` every 50 ms for up to `within`.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A YAML double-quoted string (JSON escapes are valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A stage running `sh -c script` with the token granted.
fn sh_stage(name: &str, script: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    uses: {{fixture}}\n    grants: {{ exec: [sh], env: [SLUICE_CT_TOKEN] }}\n{extra}    with: {{ mode: exec, program: sh, args: [\"-c\", {}] }}\n",
        quoted(script)
    )
}

fn pipeline(p: &Project, stages: &[String]) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: containment\nstages:\n{}",
            stages.concat()
        ),
    );
}

/// `sh` that backgrounds two detached grandchildren writing `m1` and `m2`
/// after `delay` seconds: one in a new session that ignores SIGTERM (only
/// SIGKILL ends it), one in a subshell. `then` runs in the foreground.
fn detaching_script(m1: &Path, m2: &Path, delay: u32, then: &str) -> String {
    format!(
        "setsid sh -c 'trap \"\" TERM; sleep {delay}; touch {m1}' </dev/null >/dev/null 2>&1 & \
         (sleep {delay}; touch {m2}) & {then}",
        m1 = m1.display(),
        m2 = m2.display()
    )
}

/// After the runner exited: no process of the stage is alive, now and
/// until every marker would have been written, and no marker was.
fn assert_nothing_survived(token: &str, markers: &[PathBuf], finished: &Finished, until: Instant) {
    let alive = processes_with(token, None);
    assert!(
        alive.is_empty(),
        "stage processes alive after the runner exited: {alive:#?}\n{}",
        finished.all()
    );
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        let alive = processes_with(token, None);
        assert!(alive.is_empty(), "stage processes came back: {alive:#?}");
    }
    for m in markers {
        assert!(
            !m.exists(),
            "{} was written: a stage process survived\n{}",
            m.display(),
            finished.all()
        );
    }
}

fn stage<'a>(record: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &record["stages"][name]
}

fn state_of(record: &serde_json::Value, name: &str) -> String {
    stage(record, name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn markers(p: &Project, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| p.path().join(format!("marker-{i}")))
        .collect()
}

// (a) -----------------------------------------------------------------------

fn a_stage_timeout_ends_detached_grandchildren(mode: Mode) {
    let p = Project::new();
    let token = unique_token();
    let m = markers(&p, 2);
    let script = detaching_script(&m[0], &m[1], 3, "sleep 30");
    pipeline(&p, &[sh_stage("s", &script, "    timeout: 2s\n")]);
    let done = start(
        &p,
        &["run", "--json"],
        &[
            ("SLUICE_CT_TOKEN", &token),
            ("SLUICE_KILL_GRACE", "500ms"),
            ("SLUICE_CONTAINMENT", mode.env()),
        ],
    )
    .wait();
    done.assert_exit(1);
    let record = p.record(&done.run_id());
    assert_eq!(record["status"], "failed", "{record:#}");
    assert_eq!(state_of(&record, "s"), "failed", "{record:#}");
    let reason = stage(&record, "s")["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("timed out after 2s"), "{reason}");
    // Every process started before the runner exited: 3 s later each
    // marker would be there.
    assert_nothing_survived(&token, &m, &done, done.exited_at + Duration::from_secs(4));
    let log = p.log(&done.run_id(), "s");
    assert!(log.contains("SIGTERM, then SIGKILL after 500ms"), "{log}");
}

#[test]
fn a_stage_timeout_ends_setsid_grandchildren() {
    a_stage_timeout_ends_detached_grandchildren(Mode::Auto);
}

#[test]
fn a_stage_timeout_ends_setsid_grandchildren_without_cgroups() {
    a_stage_timeout_ends_detached_grandchildren(Mode::Fallback);
}

// (b) -----------------------------------------------------------------------

fn background_children_end_with_a_normal_exit(mode: Mode) {
    let p = Project::new();
    let token = unique_token();
    let m = markers(&p, 3);
    // Two kinds of leftovers: detached ones, and a background child that
    // keeps the program's stdout open.
    let script = detaching_script(
        &m[0],
        &m[1],
        3,
        &format!("(sleep 3; touch {}) & echo started; exit 0", m[2].display()),
    );
    pipeline(&p, &[sh_stage("s", &script, "")]);
    let done = start(
        &p,
        &["run", "--json"],
        &[
            ("SLUICE_CT_TOKEN", &token),
            ("SLUICE_CONTAINMENT", mode.env()),
        ],
    )
    .wait();
    // Had the call waited for the child holding stdout, `marker-2` would
    // have been written by now (checked below).
    done.assert_exit(0);
    let record = p.record(&done.run_id());
    assert_eq!(record["status"], "passed", "{record:#}");
    assert_eq!(state_of(&record, "s"), "passed", "{record:#}");
    assert_nothing_survived(&token, &m, &done, done.exited_at + Duration::from_secs(4));
    let log = p.log(&done.run_id(), "s");
    assert!(log.contains("started"), "{log}");
    let label = match mode {
        Mode::Auto => "",
        Mode::Fallback => "(process tree)",
    };
    assert!(
        log.lines()
            .any(|l| l.contains("leftover process") && l.contains(label)),
        "{log}"
    );
}

#[test]
fn background_children_end_when_the_program_exits() {
    background_children_end_with_a_normal_exit(Mode::Auto);
}

#[test]
fn background_children_end_when_the_program_exits_without_cgroups() {
    background_children_end_with_a_normal_exit(Mode::Fallback);
}

// (c) -----------------------------------------------------------------------

#[test]
fn fail_fast_cancellation_ends_the_cancelled_stage_processes() {
    let p = Project::new();
    let token = unique_token();
    let m = markers(&p, 2);
    let ready = p.path().join("b-is-running");
    // `a` fails (its gate blocks) as soon as `b`'s program and grandchildren
    // run; `b` is then cancelled in the middle of its `exec`.
    let a = sh_stage(
        "a",
        &format!(
            "i=0; while [ ! -e {r} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 3",
            r = ready.display()
        ),
        "    gates: [{ metric: exec.status, max: 0 }]\n",
    );
    let b = sh_stage(
        "b",
        &detaching_script(
            &m[0],
            &m[1],
            3,
            &format!("touch {}; sleep 30", ready.display()),
        ),
        "",
    );
    pipeline(&p, &[a, b]);
    let done = start(
        &p,
        &["run", "--json", "--jobs", "2"],
        &[("SLUICE_CT_TOKEN", &token), ("SLUICE_KILL_GRACE", "1s")],
    )
    .wait();
    done.assert_exit(1);
    assert!(ready.exists(), "b never ran its program\n{}", done.all());
    let record = p.record(&done.run_id());
    assert_eq!(record["status"], "failed", "{record:#}");
    assert_eq!(state_of(&record, "a"), "blocked", "{record:#}");
    assert_eq!(state_of(&record, "b"), "cancelled", "{record:#}");
    let reason = stage(&record, "b")["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("fail-fast"), "{reason}");
    assert_nothing_survived(&token, &m, &done, done.exited_at + Duration::from_secs(4));
    // The stage was told first (WIT 0.2): its blocking `exec` ended its
    // program set at once, and the stage returned within its grace period.
    let log = p.log(&done.run_id(), "b");
    assert!(log.contains("processes of the stage: SIGTERM"), "{log}");
    assert!(log.contains("killed (the stage was cancelled)"), "{log}");
}

// (d), (e) --------------------------------------------------------------------

/// A stage whose program (and its detached grandchildren) runs long; the
/// runner gets `signal` 2 s into it.
fn a_runner_signal_ends_every_stage_process(signal: &str, code: i32, mode: Mode, grace: &str) {
    let p = Project::new();
    let token = unique_token();
    let m = markers(&p, 3);
    // A python3 grandchild too when there is one (its own interpreter, its
    // own signal handling); `sh` otherwise.
    let python = if std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        format!(
            "python3 -c 'import time, subprocess, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); subprocess.Popen([\"sh\", \"-c\", \"sleep 8; touch {m2}\"], start_new_session=True); time.sleep(60)' & ",
            m2 = m[2].display()
        )
    } else {
        String::new()
    };
    let script = format!("{python}{}", detaching_script(&m[0], &m[1], 8, "sleep 60"));
    pipeline(&p, &[sh_stage("s", &script, "")]);
    let runner = start(
        &p,
        &["run", "--json"],
        &[
            ("SLUICE_CT_TOKEN", &token),
            ("SLUICE_KILL_GRACE", grace),
            ("SLUICE_CONTAINMENT", mode.env()),
        ],
    );
    let runner_pid = runner.pid();
    let running = eventually(Duration::from_secs(60), || {
        processes_with(&token, Some(runner_pid)).len() >= 3
    });
    if !running {
        let done = runner.wait();
        panic!("the stage's processes never started\n{}", done.all());
    }
    let stage_started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    runner.signal(signal);
    let done = runner.wait();
    done.assert_exit(code);
    let id = done.run_id();
    assert!(
        done.stderr.contains(&format!("interrupted by SIG{signal}"))
            && done.stderr.contains(&format!("sluice run --resume {id}")),
        "{}",
        done.all()
    );
    // The record says what happened: the run was interrupted and the
    // stage that was running was cancelled, with the signal as the reason;
    // `--resume` runs `s` again.
    let record = p.record(&id);
    assert_eq!(record["status"], "interrupted", "{record:#}");
    assert_eq!(state_of(&record, "s"), "cancelled", "{record:#}");
    let reason = stage(&record, "s")["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("interrupted by SIG{signal}")),
        "{reason}"
    );
    let list = p.sluice(&["runs", "list", "--json"]);
    assert!(list.stdout.contains("\"interrupted\""), "{}", list.all());
    let until =
        (done.exited_at + Duration::from_secs(10)).max(stage_started + Duration::from_secs(9));
    assert_nothing_survived(&token, &m, &done, until);
}

#[test]
fn sigint_to_the_runner_ends_every_stage_process() {
    a_runner_signal_ends_every_stage_process("INT", 130, Mode::Auto, "3s");
}

#[test]
fn sigterm_to_the_runner_ends_every_stage_process() {
    a_runner_signal_ends_every_stage_process("TERM", 143, Mode::Auto, "1s");
}

#[test]
fn sigint_to_the_runner_ends_every_stage_process_without_cgroups() {
    a_runner_signal_ends_every_stage_process("INT", 130, Mode::Fallback, "1s");
}

#[test]
fn a_second_signal_kills_at_once() {
    let p = Project::new();
    let token = unique_token();
    let m = markers(&p, 2);
    pipeline(
        &p,
        &[sh_stage(
            "s",
            &detaching_script(&m[0], &m[1], 8, "sleep 60"),
            "",
        )],
    );
    let runner = start(
        &p,
        &["run", "--json"],
        &[("SLUICE_CT_TOKEN", &token), ("SLUICE_KILL_GRACE", "60s")],
    );
    let runner_pid = runner.pid();
    if !eventually(Duration::from_secs(60), || {
        processes_with(&token, Some(runner_pid)).len() >= 2
    }) {
        let done = runner.wait();
        panic!("the stage's processes never started\n{}", done.all());
    }
    runner.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    let second = Instant::now();
    runner.signal("INT");
    let done = runner.wait();
    done.assert_exit(130);
    // Not the 60 s grace.
    assert!(
        done.exited_at.duration_since(second) < Duration::from_secs(15),
        "{}",
        done.all()
    );
    assert_nothing_survived(&token, &m, &done, second + Duration::from_secs(9));
}

// (f) -----------------------------------------------------------------------

#[test]
fn a_relative_path_entry_never_runs_a_planted_program() {
    let p = Project::new();
    let planted = p.path().join("planted-git-ran");
    p.write(
        "git",
        &format!("#!/bin/sh\ntouch {}\necho fake git\n", planted.display()),
    );
    std::fs::set_permissions(
        p.path().join("git"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    p.write(
        "sluice.yaml",
        "version: 1\nname: path\nstages:\n  \
         g:\n    uses: {fixture}\n    grants: { workspace: read, exec: [git] }\n    with: { mode: exec, program: git, args: [\"--version\"] }\n  \
         e:\n    uses: {fixture}\n    grants: { workspace: read, exec: [sh] }\n    with: { mode: exec, program: sh, args: [\"-c\", \"echo PATH=$PATH\"] }\n",
    );
    let host_path = std::env::var("PATH").unwrap_or_default();
    let real_git = std::env::split_paths(&host_path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("git"))
        .find(|g| g.is_file());
    let runner_path = format!(".:{host_path}:bin");
    let done = start(
        &p,
        &["run", "--json", "--keep-going"],
        &[("PATH", &runner_path)],
    )
    .wait();
    assert!(!planted.exists(), "the planted ./git ran\n{}", done.all());
    let id = done.run_id();
    let record = p.record(&id);
    let log = p.log(&id, "g");
    assert!(!log.contains("fake git"), "{log}");
    match &real_git {
        Some(git) => {
            done.assert_exit(0);
            assert_eq!(record["status"], "passed", "{record:#}");
            assert!(log.contains("git version"), "{log}");
            assert!(
                log.contains(&format!("exec: `git` is {}", git.display())),
                "{log}"
            );
        }
        None => {
            done.assert_exit(1);
            assert_eq!(state_of(&record, "g"), "failed", "{record:#}");
            let reason = stage(&record, "g")["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("not found"), "{reason}");
        }
    }
    // The program's own PATH has no relative entry either.
    let log = p.log(&id, "e");
    let path_line = log
        .lines()
        .find(|l| l.starts_with("PATH="))
        .unwrap_or_else(|| panic!("no PATH line: {log}"));
    let entries: Vec<&str> = path_line["PATH=".len()..].split(':').collect();
    assert!(entries.iter().all(|e| e.starts_with('/')), "{path_line}");
    assert_eq!(state_of(&record, "e"), "passed", "{record:#}");
}
