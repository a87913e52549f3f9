//! A hostile plugin (`tests/plugins/hostile`) against the runner: each test
//! is one attack from the adversarial review (issue #13), asserting the
//! runner's *secure* behaviour.
//!
//! Every test checks, besides its own point, that the runner exited by
//! itself with 0, 1, 2 or 3 (no signal, panic or abort, no hang: every run
//! has a time limit), that a recorded run has a final status and every stage
//! a final state, and that the canary (an environment variable of the runner
//! and a file outside the project) and any secret appear in no output and no
//! file of the state directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_tests::{metric, Project, Run};

/// A value that must never leave where the test put it.
const CANARY: &str = "CANARY-7f3a9c-do-not-leak";
/// The runner's environment variable holding [`CANARY`] (never granted).
const CANARY_ENV: &str = "HOSTILE_CANARY";
/// The secret of the leak tests (granted to the stage as `DEPLOY_TOKEN`).
const SECRET: &str = "s3cr3t-5e9a1d-deploy-token";

/// The default time limit of one runner invocation.
const LIMIT: Duration = Duration::from_secs(120);

fn pipeline(p: &Project, stages: &str) {
    p.write(
        "sluice.yaml",
        &format!("version: 1\nname: hostile\nstages:\n{stages}"),
    );
}

/// `sluice args...` with the canary (and `extra`) in its environment,
/// killed (and the test failed) after `limit`.
fn sluice(p: &Project, args: &[&str], extra: &[(&str, &str)], limit: Duration) -> Run {
    let mut env = vec![(CANARY_ENV, CANARY)];
    env.extend_from_slice(extra);
    p.sluice_timeout(args, &env, limit)
}

/// Writes the canary file beside `project/` and `state/`; returns its path.
fn canary_file(p: &Project) -> PathBuf {
    p.write_outside("outside/canary.txt", format!("{CANARY}\n").as_bytes())
}

/// The runner ended by itself with one of its documented exit codes.
fn assert_exited(run: &Run) {
    assert!(
        run.signal.is_none() && (0..=3).contains(&run.code),
        "the runner did not exit cleanly (code {}, signal {:?}):\n{}",
        run.code,
        run.signal,
        tail(&run.all())
    );
}

const FINAL_STATES: [&str; 6] = [
    "passed",
    "warned",
    "failed",
    "blocked",
    "skipped",
    "cancelled",
];

/// The run is over: a final status and every stage in a final state.
fn assert_final(p: &Project, id: &str) -> serde_json::Value {
    let record = p.record(id);
    let status = record["status"].as_str().unwrap_or_default();
    assert!(
        status == "passed" || status == "failed",
        "run status `{status}`: {record:#}"
    );
    assert_stages_final(&record);
    record
}

fn assert_stages_final(record: &serde_json::Value) {
    let stages = record["stages"].as_object().expect("stages in the record");
    for (name, stage) in stages {
        let state = stage["state"].as_str().unwrap_or_default();
        assert!(
            FINAL_STATES.contains(&state),
            "stage `{name}` is `{state}`: {stage:#}"
        );
    }
}

/// Exit checks, the record, and the canary scan of one run.
fn checked(p: &Project, run: &Run) -> serde_json::Value {
    assert_exited(run);
    let record = assert_final(p, &run.run_id());
    p.assert_nothing_contains(run, CANARY.as_bytes());
    record
}

fn reason(stage: &serde_json::Value) -> String {
    stage["reason"].as_str().unwrap_or_default().to_string()
}

/// The first 2000 bytes of `text` (at a character boundary).
fn head(text: &str) -> &str {
    let mut to = text.len().min(2000);
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    &text[..to]
}

/// The last 20000 bytes of `text` (at a character boundary).
fn tail(text: &str) -> &str {
    let mut from = text.len().saturating_sub(20_000);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// A stage's log, or "" when it has none.
fn log_of(p: &Project, id: &str, stage: &str) -> String {
    std::fs::read_to_string(p.state_dir().join(format!("runs/{id}/logs/{stage}.log")))
        .unwrap_or_default()
}

fn cas_path(p: &Project, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    p.state_dir()
        .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

// ---------------------------------------------------------------------
// 1. A forged `.git/HEAD` must not put host files into the provenance.
// ---------------------------------------------------------------------

/// Runs `build` (the hostile plugin, mode `forge-git-head` with `with`),
/// and checks the provenance it gets: no canary byte, a `gitCommit` (if
/// any) of 40 or 64 lowercase hex digits. Returns the provenance text (if
/// the stage passed) and the run.
///
/// The runner reads the source revision when a run starts, so the stage's
/// forgery reaches the provenance of the *next* run: the pipeline runs
/// twice and both runs' provenance is checked.
fn forge(p: &Project, with: &str, grants: &str) -> (Option<String>, Run) {
    pipeline(
        p,
        &format!(
            "  build:\n    uses: {{hostile}}\n{grants}    with: {{ mode: forge-git-head{with} }}\n"
        ),
    );
    let first = forge_once(p);
    p.assert_nothing_contains(&first.1, CANARY.as_bytes());
    forge_once(p)
}

fn forge_once(p: &Project) -> (Option<String>, Run) {
    let run = sluice(p, &["run"], &[], Duration::from_secs(60));
    let record = checked(p, &run);
    let build = &record["stages"]["build"];
    let provenance = if build["state"] == "passed" {
        let artifact = build["artifacts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "provenance.intoto.json"))
            .unwrap_or_else(|| panic!("a passed build stage has provenance: {build:#}"));
        let digest = artifact["digest"].as_str().expect("digest");
        let bytes = std::fs::read(cas_path(p, digest)).expect("provenance blob in the CAS");
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "the canary is in the provenance"
        );
        let text = String::from_utf8(bytes).expect("provenance is UTF-8");
        let statement: serde_json::Value = serde_json::from_str(&text).expect("provenance is JSON");
        let mut commits = Vec::new();
        git_commits(&statement, &mut commits);
        for commit in commits {
            let hex = commit.len() == 40 || commit.len() == 64;
            assert!(
                hex && commit
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "gitCommit is not a commit id: {:?}",
                &commit[..commit.len().min(300)]
            );
        }
        Some(text)
    } else {
        assert_eq!(build["state"], "failed", "{build:#}");
        None
    };
    (provenance, run)
}

fn git_commits(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "gitCommit" {
                    out.push(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    );
                } else {
                    git_commits(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| git_commits(v, out)),
        _ => {}
    }
}

const WRITE: &str = "    grants: { workspace: write }\n";

#[test]
fn a_forged_head_ref_to_proc_self_environ_leaks_nothing() {
    let p = Project::new();
    forge(&p, ", target: \"/proc/self/environ\"", WRITE);
}

#[test]
fn a_forged_head_ref_to_an_absolute_path_outside_leaks_nothing() {
    let p = Project::new();
    let canary = canary_file(&p);
    forge(&p, &format!(", target: \"{}\"", canary.display()), WRITE);
}

#[test]
fn a_forged_head_ref_climbing_out_of_git_leaks_nothing() {
    let p = Project::new();
    let canary = canary_file(&p);
    // More `..` than the path is deep: they stop at `/`.
    let up = "../".repeat(24);
    let rel = canary.display().to_string();
    forge(
        &p,
        &format!(", target: \"{up}{}\"", rel.trim_start_matches('/')),
        WRITE,
    );
}

#[test]
fn a_5_mib_detached_head_stays_out_of_the_provenance() {
    let p = Project::new();
    let (provenance, run) = forge(&p, ", head_raw: HUGEHEAD, head_repeat: 655360", WRITE);
    p.assert_nothing_contains(&run, b"HUGEHEADHUGEHEAD");
    if let Some(text) = provenance {
        assert!(text.len() < 1 << 20, "provenance is {} bytes", text.len());
    }
}

#[test]
fn a_fifo_at_git_head_does_not_hang_the_runner() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join(".git")).expect("mkdir .git");
    mkfifo(&p.path().join(".git/HEAD"));
    forge(&p, "", "");
}

#[test]
fn a_git_head_linked_to_dev_zero_does_not_exhaust_the_runner() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join(".git")).expect("mkdir .git");
    std::os::unix::fs::symlink("/dev/zero", p.path().join(".git/HEAD")).expect("symlink");
    let (_, run) = forge(&p, "", "");
    // A runner that reads HEAD to its end grows until its data limit
    // (`ulimit -d`, 4 GiB here; the whole machine without one).
    let peak = run.peak_rss_kib.expect("peak memory seen");
    assert!(
        peak < 512 * 1024,
        "the runner's memory peaked at {} MiB",
        peak / 1024
    );
}

// ---------------------------------------------------------------------
// 2. Unbounded recursion traps one stage, not the runner.
// ---------------------------------------------------------------------

#[test]
fn unbounded_recursion_fails_only_its_stage() {
    let p = Project::new();
    pipeline(
        &p,
        "  deep:\n    uses: {hostile}\n    with: { mode: recurse }\n  \
         nap:\n    uses: {fixture}\n    with: { mode: sleep, seconds: 2 }\n",
    );
    // --keep-going: the sleeping stage is independent and must finish.
    let run = sluice(&p, &["run", "--jobs", "2", "--keep-going"], &[], LIMIT);
    let record = checked(&p, &run);
    assert_eq!(run.code, 1, "{}", tail(&run.all()));
    let deep = &record["stages"]["deep"];
    assert_eq!(deep["state"], "failed", "{deep:#}");
    assert!(reason(deep).contains("stack overflow"), "{}", reason(deep));
    assert_eq!(record["stages"]["nap"]["state"], "passed", "{record:#}");
}

// ---------------------------------------------------------------------
// 3. The runner's state is out of every stage's reach.
// ---------------------------------------------------------------------

#[test]
fn a_state_directory_inside_a_readable_workspace_is_refused() {
    let p = Project::new();
    pipeline(
        &p,
        "  probe:\n    uses: {hostile}\n    grants: { workspace: read }\n    with: { mode: state-probe }\n",
    );
    let run = sluice(&p, &["run", "--state-dir", ".sluice"], &[], LIMIT);
    assert_exited(&run);
    p.assert_nothing_contains(&run, CANARY.as_bytes());
    assert_eq!(run.code, 2, "{}", tail(&run.all()));
    assert!(
        run.stderr.contains("state directory") && run.stderr.contains("workspace"),
        "{}",
        tail(&run.all())
    );
    assert!(
        !p.path().join(".sluice/runs").exists(),
        "a run was recorded inside the workspace"
    );
}

#[test]
fn a_stage_reading_the_workspace_finds_no_runner_state() {
    let p = Project::new();
    pipeline(
        &p,
        "  probe:\n    uses: {hostile}\n    grants: { workspace: read }\n    with: { mode: state-probe }\n",
    );
    // Twice, so there is a finished run's state to look for.
    for _ in 0..2 {
        let run = sluice(&p, &["run"], &[], LIMIT);
        let record = checked(&p, &run);
        assert_eq!(run.code, 0, "{}", tail(&run.all()));
        let probe = &record["stages"]["probe"];
        assert_eq!(
            metric(probe, "probe.found"),
            0.0,
            "{}",
            log_of(&p, &run.run_id(), "probe")
        );
    }
}

/// The bytes a forged journal entry points the next stage at.
const FORGED: &str = "FORGED-ARTIFACT-0c4e2b-from-a-planted-journal-line\n";

#[test]
fn a_forged_journal_line_is_refused_on_resume() {
    let p = Project::new();
    pipeline(
        &p,
        "  build:\n    uses: {fixture}\n    with: { mode: pass, text: \"genuine\\n\" }\n  \
         deploy:\n    uses: {fixture}\n    needs: [build]\n    approval: required\n    with: { mode: read }\n",
    );
    let paused = sluice(&p, &["run"], &[], LIMIT);
    assert_eq!(paused.code, 4, "{}", tail(&paused.all()));
    let id = paused.run_id();
    let journal_path = p.state_dir().join(format!("runs/{id}/journal.jsonl"));
    let journal = std::fs::read_to_string(&journal_path).expect("journal.jsonl");
    let entries: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = entries.last().expect("a journal entry").clone();

    // The blob the forged entry points at, planted in the CAS.
    let digest = {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .expect("stdin")
                    .write_all(FORGED.as_bytes())?;
                c.wait_with_output()
            })
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    };
    let blob = cas_path(&p, &digest);
    std::fs::create_dir_all(blob.parent().expect("parent")).expect("mkdir cas");
    std::fs::write(&blob, FORGED).expect("plant blob");

    // build's record (from the journal, else the snapshot), pointing its
    // artifact at the planted blob.
    let mut build = entries
        .iter()
        .rev()
        .find(|e| e["stage"] == "build")
        .map(|e| e["record"].clone())
        .unwrap_or_else(|| p.record(&id)["stages"]["build"].clone());
    let artifacts = build["artifacts"].as_array_mut().expect("build artifacts");
    let greeting = artifacts
        .iter_mut()
        .find(|a| a["name"] == "greeting.txt")
        .expect("greeting.txt");
    greeting["digest"] = format!("sha256:{digest}").into();
    greeting["size"] = FORGED.len().into();
    let mut forged = last;
    forged["seq"] = 999_999.into();
    forged["stage"] = "build".into();
    forged["record"] = build;
    let line_no = journal.lines().count() + 1;
    let mut text = journal.clone();
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("{forged}\n"));
    std::fs::write(&journal_path, text).expect("append the forged line");

    let approve = sluice(&p, &["approve", &id, "deploy"], &[], LIMIT);
    assert_exited(&approve);
    let resumed = sluice(&p, &["run", "--resume", &id], &[], LIMIT);
    assert_exited(&resumed);
    p.assert_nothing_contains(&resumed, CANARY.as_bytes());
    // Wherever the forged bytes went, it was not to the next stage.
    for (what, text) in [
        ("stdout", resumed.stdout.clone()),
        ("stderr", resumed.stderr.clone()),
        ("deploy log", log_of(&p, &id, "deploy")),
        (
            "run.json",
            std::fs::read_to_string(p.state_dir().join(format!("runs/{id}/run.json")))
                .unwrap_or_default(),
        ),
    ] {
        assert!(
            !text.contains(FORGED.trim_end()),
            "the forged artifact reached the deploy stage ({what}):\n{}",
            tail(&text)
        );
    }
    assert_eq!(resumed.code, 2, "{}", tail(&resumed.all()));
    assert!(
        resumed.stderr.contains("journal.jsonl"),
        "{}",
        tail(&resumed.all())
    );
    assert!(
        resumed.stderr.contains(&format!("line {line_no}"))
            || resumed.stderr.contains(&format!("jsonl:{line_no}")),
        "the error does not name line {line_no}:\n{}",
        tail(&resumed.all())
    );
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.state_dir().join(format!("runs/{id}/run.json")))
            .expect("run.json"),
    )
    .expect("run.json is JSON");
    assert_ne!(record["status"], "running", "{record:#}");
}

// ---------------------------------------------------------------------
// 4. A secret leaks through no report field, name or error.
// ---------------------------------------------------------------------

const SECRET_GRANT: &str = "    grants: { secrets: [DEPLOY_TOKEN] }\n";

fn assert_secret_safe(p: &Project, run: &Run) {
    p.assert_nothing_contains(run, SECRET.as_bytes());
    p.assert_nothing_contains(run, CANARY.as_bytes());
}

/// `runs show ID` and `runs show ID --json` of a finished run: no secret.
fn assert_show_safe(p: &Project, id: &str) {
    for args in [vec!["runs", "show", id], vec!["runs", "show", id, "--json"]] {
        let show = sluice(p, &args, &[], LIMIT);
        assert_exited(&show);
        assert_eq!(show.code, 0, "{}", tail(&show.all()));
        assert_secret_safe(p, &show);
    }
}

#[test]
fn a_secret_put_into_every_report_field_never_leaks() {
    let p = Project::new();
    pipeline(
        &p,
        &format!(
            "  leak:\n    uses: {{hostile}}\n{SECRET_GRANT}    with: {{ mode: leak-report, secret: DEPLOY_TOKEN }}\n  \
             echo:\n    uses: {{fixture}}\n    needs: [leak]\n    with: {{ mode: pass }}\n"
        ),
    );
    for args in [vec!["run", "--json"], vec!["run"]] {
        let run = sluice(&p, &args, &[("DEPLOY_TOKEN", SECRET)], LIMIT);
        checked(&p, &run);
        assert_secret_safe(&p, &run);
        assert_show_safe(&p, &run.run_id());
    }
}

#[test]
fn an_artifact_named_after_a_secret_fails_the_stage() {
    let p = Project::new();
    pipeline(
        &p,
        &format!(
            "  leak:\n    uses: {{hostile}}\n{SECRET_GRANT}    with: {{ mode: leak-report, secret: DEPLOY_TOKEN, into: artifact-name }}\n"
        ),
    );
    let run = sluice(&p, &["run"], &[("DEPLOY_TOKEN", SECRET)], LIMIT);
    let record = checked(&p, &run);
    assert_secret_safe(&p, &run);
    assert_show_safe(&p, &run.run_id());
    assert_eq!(run.code, 1, "{}", tail(&run.all()));
    assert_eq!(record["stages"]["leak"]["state"], "failed", "{record:#}");
}

#[test]
fn a_secret_in_an_error_message_is_redacted_from_the_reason() {
    let p = Project::new();
    let mut stages = String::new();
    for into in ["failed", "denied", "invalid-config"] {
        stages.push_str(&format!(
            "  leak-{into}:\n    uses: {{hostile}}\n{SECRET_GRANT}    with: {{ mode: leak-report, secret: DEPLOY_TOKEN, into: {into} }}\n"
        ));
    }
    pipeline(&p, &stages);
    let run = sluice(
        &p,
        &["run", "--keep-going", "--json"],
        &[("DEPLOY_TOKEN", SECRET)],
        LIMIT,
    );
    let record = checked(&p, &run);
    assert_secret_safe(&p, &run);
    assert_show_safe(&p, &run.run_id());
    assert_eq!(run.code, 1, "{}", tail(&run.all()));
    for into in ["failed", "denied", "invalid-config"] {
        let stage = &record["stages"][format!("leak-{into}")];
        assert_eq!(stage["state"], "failed", "{stage:#}");
        let r = reason(stage);
        assert!(r.contains("***"), "{into}: {r}");
        assert!(!r.contains(SECRET), "{into}: {r}");
    }
}

// ---------------------------------------------------------------------
// 5. Oversized reports and log floods are cut, not stored.
// ---------------------------------------------------------------------

fn huge(p: &Project, with: &str, grants: &str) -> (Run, serde_json::Value) {
    pipeline(
        p,
        &format!(
            "  huge:\n    uses: {{hostile}}\n{grants}    with: {{ mode: huge-report{with} }}\n"
        ),
    );
    let run = sluice(p, &["run"], &[], LIMIT);
    let record = checked(p, &run);
    (run, record)
}

#[test]
fn a_million_metrics_fail_the_stage_at_a_limit() {
    let p = Project::new();
    let (run, record) = huge(&p, ", metrics: 1000000", "    grants: { memory: 512MiB }\n");
    let huge = &record["stages"]["huge"];
    assert_eq!(huge["state"], "failed", "{}", tail(&run.all()));
    let r = reason(huge);
    assert!(r.contains("metrics") && r.contains("limit"), "{r}");
}

#[test]
fn a_100_mb_summary_fails_the_stage() {
    let p = Project::new();
    let (run, record) = huge(
        &p,
        ", summary_bytes: 100000000",
        "    grants: { memory: 512MiB }\n",
    );
    let huge = &record["stages"]["huge"];
    assert_eq!(huge["state"], "failed", "{}", tail(&run.all()));
    let r = reason(huge);
    assert!(r.contains("summary"), "{}", head(&r));
}

#[test]
fn duplicate_gate_names_fail_the_stage() {
    let p = Project::new();
    let (run, record) = huge(&p, ", duplicate_gates: true", "");
    let huge = &record["stages"]["huge"];
    assert_eq!(huge["state"], "failed", "{}", tail(&run.all()));
    let r = reason(huge);
    assert!(r.contains("dup-gate"), "{r}");
}

#[test]
fn denied_exec_spam_stays_within_the_output_cap() {
    let p = Project::new();
    pipeline(
        &p,
        "  spam:\n    uses: {hostile}\n    grants: { output: 256KiB }\n    with: { mode: exec-spam }\n",
    );
    let run = sluice(&p, &["run", "--json"], &[], LIMIT);
    checked(&p, &run);
    let log = log_of(&p, &run.run_id(), "spam");
    assert!(
        log.len() <= (256 + 16) * 1024,
        "the stage log is {} bytes",
        log.len()
    );
    assert!(
        run.raw_stdout().len() < 2_000_000,
        "--json printed {} bytes",
        run.raw_stdout().len()
    );
}

// ---------------------------------------------------------------------
// 6, 8. Special files and descriptor exhaustion.
// ---------------------------------------------------------------------

#[test]
fn opening_a_fifo_in_the_workspace_is_refused() {
    let p = Project::new();
    mkfifo(&p.path().join("pipe"));
    pipeline(
        &p,
        "  open:\n    uses: {hostile}\n    grants: { workspace: read }\n    timeout: 5s\n    with: { mode: open-file, path: pipe }\n",
    );
    let run = sluice(&p, &["run"], &[], Duration::from_secs(60));
    let record = checked(&p, &run);
    let stage = &record["stages"]["open"];
    let ok = stage["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == "open.ok"))
        .and_then(|m| m["value"].as_f64());
    assert!(
        ok == Some(0.0) || stage["state"] == "failed",
        "the FIFO was opened: {stage:#}"
    );
    let log = log_of(&p, &run.run_id(), "open");
    assert!(
        log.contains("not a regular file") || reason(stage).contains("not a regular file"),
        "reason: {}\nlog:\n{log}",
        reason(stage)
    );
}

#[test]
fn holding_every_descriptor_does_not_starve_other_stages() {
    let p = Project::new();
    p.write("data.txt", "open me\n");
    pipeline(
        &p,
        "  hog:\n    uses: {hostile}\n    grants: { workspace: read }\n    with: { mode: open-many, path: data.txt, hold: 3 }\n  \
         wait:\n    uses: {fixture}\n    with: { mode: sleep, seconds: 1 }\n  \
         produce:\n    uses: {fixture}\n    needs: [wait]\n    with: { mode: pass }\n",
    );
    // A usual CI limit of open files for the runner (lower than what the
    // hog tries to open).
    let run = p.sluice_limited(
        &["run", "--jobs", "2", "--keep-going"],
        &[(CANARY_ENV, CANARY)],
        LIMIT,
        &["-n 4096"],
    );
    let record = checked(&p, &run);
    assert!(run.code <= 1, "{}", tail(&run.all()));
    let produce = &record["stages"]["produce"];
    assert_eq!(
        produce["state"],
        "passed",
        "{produce:#}\n{}",
        tail(&run.all())
    );
    assert!(
        produce["artifacts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "greeting.txt")),
        "{produce:#}"
    );
}

// ---------------------------------------------------------------------
// 10, 11. The console, and a guest that exits.
// ---------------------------------------------------------------------

fn assert_terminal_safe(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    assert!(
        !out.contains(&0x1b),
        "{what} holds an ESC byte:\n{}",
        text.escape_debug()
    );
    assert!(
        !out.contains(&b'\r'),
        "{what} holds a carriage return:\n{}",
        text.escape_debug()
    );
    assert!(
        !text.lines().any(|l| l.starts_with("✓ deploy")),
        "{what} has a forged status line:\n{text}"
    );
}

#[test]
fn terminal_escapes_never_reach_the_console() {
    let p = Project::new();
    pipeline(
        &p,
        "  paint:\n    uses: {hostile}\n    with: { mode: ansi }\n",
    );
    let run = sluice(&p, &["run"], &[], LIMIT);
    checked(&p, &run);
    assert_terminal_safe("the console output", run.raw_stdout());
    let show = sluice(&p, &["runs", "show", &run.run_id()], &[], LIMIT);
    assert_exited(&show);
    assert_terminal_safe("`runs show`", show.raw_stdout());
}

#[test]
fn a_guest_that_exits_fails_its_stage() {
    let p = Project::new();
    pipeline(
        &p,
        "  quit:\n    uses: {hostile}\n    with: { mode: exit-zero }\n",
    );
    let run = sluice(&p, &["run"], &[], LIMIT);
    let record = checked(&p, &run);
    assert_eq!(run.code, 1, "{}", tail(&run.all()));
    let quit = &record["stages"]["quit"];
    assert_eq!(quit["state"], "failed", "{quit:#}");
    let r = reason(quit);
    assert!(r.contains("exit"), "{r}");
    assert!(!r.contains("wasm backtrace"), "{r}");
}
