//! Every input bounded, errors in plain words (issue #15, points 6 and 7).
//!
//! The files a user names (pipeline, policy, plugin, Sigstore bundle, key)
//! are read only when they are regular files under a size cap: a FIFO must
//! not hang a command, `/dev/zero` must not eat the machine. YAML may not
//! nest deeper than 64 levels nor expand through aliases without bound. A
//! byte order mark is accepted, absurd timeouts are refused at validation,
//! `--resume` works from any directory, an approver's name cannot forge
//! lines, and a full disk is called a full disk.
//!
//! Commands that could hang run under `sluice_timeout`, so a regression
//! fails the test instead of hanging the suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_tests::{plugin, Project, Run};

/// Generous: every refusal here is immediate; a hang is what this catches.
const LIMIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "test-password";

/// A project with a key pair (`keys/k.key`, `keys/k.pub`) and a copy of
/// the fixture signed with it (`plugins/fixture.wasm` and its bundle).
fn keyed_project() -> Project {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy");
    let gen = p.sluice_env(
        &["key", "generate", "--out", "keys/k"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    let sign = p.sluice_env(
        &[
            "plugin",
            "sign",
            "plugins/fixture.wasm",
            "--key",
            "keys/k.key",
        ],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(sign.code, 0, "{}", sign.all());
    p
}

/// The kinds of file no command may block on or read whole.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// A FIFO with no writer: reading it blocks for ever.
    Fifo,
    /// A symbolic link to `/dev/zero`: reading it never ends.
    DevZero,
    /// A directory.
    Directory,
    /// A regular file of 2 MiB, over every cap but the plugin's.
    TwoMiB,
}

impl Bad {
    /// Makes `rel` (relative to the project) a file of this kind.
    fn make(self, p: &Project, rel: &str) -> PathBuf {
        let path = p.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let _ = std::fs::remove_file(&path);
        match self {
            Bad::Fifo => {
                let made = Command::new("mkfifo").arg(&path).status();
                assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
            }
            Bad::DevZero => {
                std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
            }
            Bad::Directory => std::fs::create_dir_all(&path).expect("mkdir"),
            Bad::TwoMiB => {
                // Valid YAML (one long comment), so only the cap refuses it.
                let mut text = vec![b'#'; 2 << 20];
                text[(2 << 20) - 1] = b'\n';
                std::fs::write(&path, text).expect("write");
            }
        }
        path
    }

    /// What the error says about such a file; `cap` is the cap expected
    /// for a file too large.
    fn says(self, cap: &str) -> String {
        match self {
            Bad::Fifo => "is a FIFO (named pipe), not a regular file".to_owned(),
            Bad::DevZero => "is a character device, not a regular file".to_owned(),
            Bad::Directory => "is a directory, not a regular file".to_owned(),
            Bad::TwoMiB => format!("is 2097152 bytes, more than the {cap}"),
        }
    }
}

/// `run` exited 2 promptly with an error naming `file` and saying `says`.
#[track_caller]
fn assert_refused(run: &Run, file: &str, says: &str) {
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains(file),
        "should name {file}:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(says),
        "should say {says:?}:\n{}",
        run.all()
    );
}

/// `validate`, `run`, `policy check` and `plugin verify` (on the plugin,
/// on its bundle and on the key) each refuse a file of kind `bad`, naming
/// it, without blocking or reading it whole.
fn refused_by_every_command(bad: Bad) {
    let p = keyed_project();
    bad.make(&p, "bad.yaml");
    for args in [
        &["validate", "bad.yaml"][..],
        &["run", "bad.yaml"],
        &["policy", "check", "bad.yaml"],
    ] {
        let run = p.sluice_timeout(args, &[], LIMIT);
        assert_refused(&run, "bad.yaml", &bad.says("1 MiB"));
    }
    // The plugin itself. Its cap is 256 MiB: one byte more, in a sparse
    // file that must not be read at all.
    let plugin_says = if matches!(bad, Bad::TwoMiB) {
        let file = std::fs::File::create(p.path().join("plugins/bad.wasm")).expect("create");
        file.set_len((256 << 20) + 1).expect("set_len");
        "is 268435457 bytes, more than the 256 MiB".to_owned()
    } else {
        bad.make(&p, "plugins/bad.wasm");
        bad.says("")
    };
    let run = p.sluice_timeout(
        &[
            "plugin",
            "verify",
            "plugins/bad.wasm",
            "--key",
            "keys/k.pub",
        ],
        &[],
        LIMIT,
    );
    assert_refused(&run, "plugins/bad.wasm", &plugin_says);
    // The bundle next to a good plugin.
    std::fs::copy(plugin("fixture"), p.path().join("plugins/other.wasm")).expect("copy");
    bad.make(&p, "plugins/other.wasm.sigstore.json");
    let run = p.sluice_timeout(
        &[
            "plugin",
            "verify",
            "plugins/other.wasm",
            "--key",
            "keys/k.pub",
        ],
        &[],
        LIMIT,
    );
    assert_refused(&run, "other.wasm.sigstore.json", &bad.says("1 MiB"));
    // The key.
    bad.make(&p, "keys/bad.pub");
    let run = p.sluice_timeout(
        &[
            "plugin",
            "verify",
            "plugins/fixture.wasm",
            "--key",
            "keys/bad.pub",
        ],
        &[],
        LIMIT,
    );
    assert_refused(&run, "keys/bad.pub", &bad.says("64 KiB"));
    // The runner's provenance key.
    p.write(
        "ok.yaml",
        "version: 1\nname: ok\nstages:\n  s: { uses: plugins/fixture.wasm, with: { mode: pass } }\n",
    );
    let run = p.sluice_timeout(
        &["run", "ok.yaml", "--provenance-key", "keys/bad.pub"],
        &[],
        LIMIT,
    );
    assert_refused(&run, "keys/bad.pub", &bad.says("64 KiB"));
    // A policy named by the pipeline is read through the same door.
    if !matches!(bad, Bad::Directory) {
        p.write(
            "sluice.yaml",
            "version: 1\nname: p\npolicy: bad.yaml\nstages:\n  s: { uses: plugins/fixture.wasm, with: { mode: pass } }\n",
        );
        let run = p.sluice_timeout(&["run"], &[], LIMIT);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(run.stderr.contains("bad.yaml"), "{}", run.all());
    }
}

#[test]
fn a_fifo_is_refused_at_once_by_every_command() {
    refused_by_every_command(Bad::Fifo);
}

#[test]
fn dev_zero_behind_a_symlink_is_refused_by_every_command() {
    refused_by_every_command(Bad::DevZero);
}

#[test]
fn a_directory_is_refused_by_every_command() {
    refused_by_every_command(Bad::Directory);
}

#[test]
fn files_over_their_cap_are_refused_by_every_command() {
    refused_by_every_command(Bad::TwoMiB);
}

#[test]
fn deeply_nested_yaml_fails_fast_with_the_depth_error() {
    let p = Project::new();
    let brackets = 100_000;
    p.write(
        "deep.yaml",
        &format!(
            "version: 1\nname: deep\nstages:\n  a:\n    uses: {{fixture}}\n    with: {{ x: {}{} }}\n",
            "[".repeat(brackets),
            "]".repeat(brackets)
        ),
    );
    let run = p.sluice_timeout(&["validate", "deep.yaml"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("the YAML nests mappings and lists more than 64 levels deep"),
        "{}",
        run.all()
    );
    // Levels: the file, `stages`, `a`, `with`, then bracket 61 is the 65th.
    assert!(run.stderr.contains("deep.yaml:6:76"), "{}", run.all());
    // The 200 000 brackets are not all printed back.
    assert!(run.stderr.len() < 2000, "{}", run.all());

    p.write(
        "deep-policy.yaml",
        &format!("rules: {}{}\n", "[".repeat(brackets), "]".repeat(brackets)),
    );
    let run = p.sluice_timeout(&["policy", "check", "deep-policy.yaml"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("more than 64 levels deep")
            && run.stderr.contains("deep-policy.yaml:1:71"),
        "{}",
        run.all()
    );
}

#[test]
fn an_alias_bomb_is_refused() {
    let p = Project::new();
    // One anchor of 2 000 items aliased 2 000 times: 4 million values from
    // a 20 KB file. serde_yaml_ng's own alias limit (100 jumps per event)
    // lets it through.
    let items = vec!["1"; 2000].join(",");
    let aliases = vec!["*a"; 2000].join(",");
    p.write(
        "bomb.yaml",
        &format!(
            "version: 1\nname: bomb\nstages:\n  a:\n    uses: {{fixture}}\n    with:\n      mode: pass\n      a: &a [{items}]\n      b: [{aliases}]\n"
        ),
    );
    let run = p.sluice_timeout(&["validate", "bomb.yaml"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("aliases would expand the YAML by more than 100000 nodes"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("bomb.yaml:9:"), "{}", run.all());

    // The classic exponential one ("billion laughs").
    let mut laughs = String::from("      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let row = vec![format!("*l{}", level - 1); 10].join(", ");
        laughs.push_str(&format!("      l{level}: &l{level} [{row}]\n"));
    }
    p.write(
        "laughs.yaml",
        &format!(
            "version: 1\nname: laughs\nstages:\n  a:\n    uses: {{fixture}}\n    with:\n      mode: pass\n{laughs}"
        ),
    );
    let run = p.sluice_timeout(&["validate", "laughs.yaml"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("aliases would expand the YAML"),
        "{}",
        run.all()
    );
}

#[test]
fn a_pipeline_with_a_byte_order_mark_runs() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "\u{feff}version: 1\nname: bom\nstages:\n  a:\n    uses: {fixture}\n    with: { mode: pass }\n",
    );
    let run = p.sluice_timeout(&["run"], &[], LIMIT);
    assert_eq!(run.code, 0, "{}", run.all());
    // The record keeps the digest of the file as it is, mark included, so
    // a resume checks the very same bytes.
    let record = p.record(&run.run_id());
    assert_eq!(record["status"], "passed");
}

#[test]
fn an_absurd_timeout_fails_validation_instead_of_panicking() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: forever\nstages:\n  a:\n    uses: {fixture}\n    timeout: 200000000000000d\n    with: { mode: pass }\n",
    );
    for args in [&["validate"][..], &["run"]] {
        let run = p.sluice_timeout(args, &[], LIMIT);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(
            run.stderr
                .contains("timeout `200000000000000d` is longer than the 7 days a stage may run"),
            "{}",
            run.all()
        );
        assert!(run.stderr.contains("sluice.yaml:6:14"), "{}", run.all());
        assert!(!run.stderr.contains("panicked"), "{}", run.all());
    }
    p.write(
        "sluice.yaml",
        "version: 1\nname: forever\ndefaults: { timeout: 8d }\nstages:\n  a: { uses: {fixture}, with: { mode: pass } }\n",
    );
    let run = p.sluice_timeout(&["validate"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("timeout `8d` is longer"),
        "{}",
        run.all()
    );
}

/// Runs `sluice args` in `dir` instead of the project directory.
fn sluice_in(p: &Project, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = p
        .command(args)
        .current_dir(dir)
        .output()
        .expect("run sluice");
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn resume_works_from_another_directory() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        r#"version: 1
name: gated
stages:
  build:
    uses: {fixture}
    grants: { workspace: write }
    with: { mode: count, file: build-runs.txt }
  deploy:
    uses: {fixture}
    needs: [build]
    approval: required
    with: { mode: pass }
"#,
    );
    // Started with the pipeline path as typed, relative to the project.
    let run = p.sluice(&["run", "sluice.yaml"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    let elsewhere = p.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let (code, out) = sluice_in(&p, &elsewhere, &["approve", &id, "deploy", "--by", "alice"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sluice_in(&p, &elsewhere, &["run", "--resume", &id]);
    assert_eq!(code, 0, "{out}");
    let record = p.record(&id);
    assert_eq!(record["status"], "passed");
    assert_eq!(
        p.read("build-runs.txt").lines().count(),
        1,
        "build ran again"
    );
    // The record stores the pipeline path absolute.
    let stored = record["pipeline_path"].as_str().unwrap_or_default();
    assert!(
        Path::new(stored).is_absolute(),
        "the record stores {stored:?}"
    );
}

#[test]
fn approve_refuses_control_characters_in_by() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: gated\nstages:\n  deploy:\n    uses: {fixture}\n    approval: required\n    with: { mode: pass }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 4, "{}", run.all());
    let id = run.run_id();
    for by in ["x\nforged", "x\r✓ deploy passed", "\u{1b}[2Jwiped"] {
        let refused = p.sluice(&["approve", &id, "deploy", "--by", by]);
        assert_eq!(refused.code, 2, "{by:?}: {}", refused.all());
        assert!(
            refused.stderr.contains("control character"),
            "{by:?}: {}",
            refused.all()
        );
    }
    // Nothing was recorded: the stage still waits, and no line is forged.
    let record = p.record(&id);
    assert_eq!(record["stages"]["deploy"]["state"], "awaiting-approval");
    let show = p.sluice(&["runs", "show", &id]);
    assert!(
        !show.stdout.lines().any(|l| l.starts_with("forged")),
        "{}",
        show.all()
    );
    let ok = p.sluice(&["approve", &id, "deploy", "--by", "Zoë <zoe@example.com>"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
}

/// Unmounts a file system when dropped (also when the test fails).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(&self.0).status();
        if !done.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn a_stage_that_fills_the_disk_is_told_so_in_plain_words() {
    let p = Project::new();
    let disk = p.root().join("small-disk");
    std::fs::create_dir_all(&disk).expect("mkdir");
    // A 1 MiB tmpfs as the state directory; needs the right to mount.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&disk)
        .output();
    match &mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "note: skipping the full-disk test: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("note: skipping the full-disk test: cannot run mount ({e})");
            return;
        }
    }
    let _unmount = Unmount(disk.clone());
    let state = disk.join("state");
    std::fs::create_dir_all(&state).expect("mkdir state");
    // The stage writes a 700 KiB artifact: it fits, but its copy into the
    // content-addressed store on the same 1 MiB disk does not.
    let text = "x".repeat(700 << 10);
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: full\nstages:\n  big:\n    uses: {{fixture}}\n    with: {{ mode: pass, text: {text} }}\n"
        ),
    );
    let state_env = state.display().to_string();
    let run = p.sluice_timeout(&["run"], &[("SLUICE_STATE_DIR", &state_env)], LIMIT);
    assert_eq!(run.code, 1, "{}", tail(&run.all()));
    assert!(
        run.stdout.contains("the disk is full (ENOSPC)"),
        "{}",
        tail(&run.all())
    );
    assert!(!run.all().contains("os error 28"), "{}", tail(&run.all()));
}

/// The end of a long output, for assertion messages.
fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}
