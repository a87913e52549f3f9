//! The console (docs/console.md): the findings summary of a lint stage that
//! finds many problems, `--verbose` and `--quiet`, the table of stages at
//! the end, plain lines when stdout is not a terminal, and the live view
//! on a pseudo-terminal (`script`, util-linux).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{copy_tree, plugin, repo_root, Project};

/// Extra trailing-whitespace warnings written beside the lint fixture.
const EXTRA: usize = 30;
/// The fixture's own findings (tests/fixtures/lint/README.md).
const ERRORS: usize = 8;
const WARNINGS: usize = 3 + EXTRA;

/// The lint fixture tree plus `notes/many.txt` with [`EXTRA`] lines that
/// end in a space, and a pipeline with one `lint` stage.
fn lint_project() -> Project {
    let p = Project::new();
    copy_tree(&repo_root().join("tests/fixtures/lint"), p.path());
    let many: String = (1..=EXTRA).map(|i| format!("line {i} \n")).collect();
    p.write("notes/many.txt", &many);
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: console-e2e\nstages:\n  lint:\n    uses: {}\n    grants:\n      workspace: read\n",
            plugin("lint").display()
        ),
    );
    p
}

/// The lines of the findings summary (indented four spaces under the
/// stage, from `findings:` to before the table).
fn summary(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("    findings: "))
        .take_while(|l| l.starts_with("    "))
        .collect()
}

#[test]
fn a_lint_stage_with_many_findings_is_summarised() {
    let p = lint_project();
    let run = p.sluice(&["run", "--jobs", "1"]);
    let id = run.run_id();
    let out = &run.stdout;
    // Not a terminal: plain lines, nothing redrawn.
    assert!(
        !out.contains('\u{1b}') && !out.contains('\r'),
        "escape codes in a pipe:\n{out}"
    );
    let lines = summary(out);
    let total = ERRORS + WARNINGS;
    assert_eq!(
        lines.first().copied(),
        Some(
            format!("    findings: {total} in lint.sarif ({ERRORS} errors, {WARNINGS} warnings)")
                .as_str()
        ),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "    by rule: trailing-whitespace {} · ",
            EXTRA + 2
        )),
        "{}",
        lines[1]
    );
    // The first 10, errors first, as `path:line: level rule message`.
    let listed = &lines[2..12];
    for l in &listed[..ERRORS] {
        assert!(l.contains(": error "), "{l}");
    }
    assert!(listed.contains(&"    src/app.py:2: error merge-conflict-marker merge conflict marker `<<<<<<<` left in the file"), "{listed:#?}");
    for l in &listed[ERRORS..] {
        assert!(l.contains(": warning "), "{l}");
    }
    assert_eq!(
        lines[12],
        format!(
            "    … and {} more in lint.sarif (sluice artifacts get {id} lint/lint.sarif)",
            total - 10
        )
    );
    assert_eq!(lines.len(), 13, "{out}");
    // The command it names gives the whole file.
    let got = p.sluice(&["artifacts", "get", &id, "lint/lint.sarif"]);
    assert_eq!(got.code, 0, "{}", got.all());
    let sarif: serde_json::Value = serde_json::from_str(&got.stdout).expect("SARIF is JSON");
    let results: usize = sarif["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["results"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(results, total);
    // The table of stages, then the final line.
    let tail: Vec<&str> = out
        .lines()
        .rev()
        .skip_while(|l| !l.starts_with(&format!("run {id} passed")))
        .take(3)
        .collect();
    assert_eq!(tail.len(), 3, "no final line:\n{out}");
    assert!(tail[1].starts_with("  lint   ✓ passed  -"), "{out}");
    assert!(tail[1].contains(" 2  "), "two artifacts: {}", tail[1]);
    assert_eq!(tail[2], "  stage  state     gates  artifacts  time");

    // --verbose: every finding, no `… more`.
    let run = p.sluice(&["run", "--jobs", "1", "--verbose"]);
    let lines = summary(&run.stdout);
    assert_eq!(lines.len(), 2 + total, "{}", run.stdout);
    assert!(!run.stdout.contains("more in lint.sarif"), "{}", run.stdout);

    // --quiet: the counts only, no log lines.
    let run = p.sluice(&["run", "--jobs", "1", "-q"]);
    let lines = summary(&run.stdout);
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(!run.stdout.contains("│ lint:"), "{}", run.stdout);

    // Both at once is a usage error.
    let both = p.sluice(&["run", "-q", "-v"]);
    assert_eq!(both.code, 2, "{}", both.all());
}

/// The live view on a pseudo-terminal: `script -qec "sluice run" /dev/null`
/// (util-linux). It must draw, print the summary and the table, and exit
/// cleanly. Skipped, saying so, where `script` is not installed.
#[test]
fn the_live_view_renders_on_a_terminal_and_exits_cleanly() {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
    let Some(script) = script else {
        eprintln!("skipped: `script` (util-linux) is not installed, no pseudo-terminal to draw on");
        return;
    };
    // A container without /dev/pts has `script` but no terminal to give.
    let pty = Command::new(script)
        .args(["-qec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !pty {
        eprintln!("skipped: `script` cannot allocate a pseudo-terminal here");
        return;
    }
    let p = lint_project();
    // The harness's command: its working directory and environment.
    let template = p.command(&["run", "--jobs", "1"]);
    let mut cmd = Command::new(script);
    let line = format!("'{}' run --jobs 1", sluice_tests::sluice_bin().display());
    cmd.args(["-qec", &line, "/dev/null"]);
    if let Some(dir) = template.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    // A terminal outside CI, with colour.
    cmd.env_remove("CI")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn script");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("`sluice run` on a terminal did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(status.success(), "exit {status}:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    // Drawn for a terminal: colour and indicatif's line clearing.
    assert!(text.contains("\u{1b}[32m✓"), "no colour:\n{text}");
    assert!(text.contains("\u{1b}[2K"), "no live area drawn:\n{text}");
    // Everything a pipe gets is there too.
    assert!(
        text.contains("findings: 41 in lint.sarif (8 errors, 33 warnings)"),
        "{text}"
    );
    assert!(text.contains("… and 31 more in lint.sarif"), "{text}");
    assert!(
        text.contains("  stage  state     gates  artifacts  time"),
        "{text}"
    );
    assert!(text.contains("m: 1 passed"), "no final line:\n{text}");
}
