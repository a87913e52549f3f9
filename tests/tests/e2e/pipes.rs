//! A closed stdout (`sluice … | head -1`, a reader that went away) ends the
//! output quietly: no panic (exit 101, "panicked" on stderr), and the
//! command's usual exit code.

use std::io::Read;
use std::process::{Command, Stdio};

use sluice_tests::{plugin, Project};

const PASSWORD: &str = "test-password";

/// Runs `cmd` with stdout a pipe whose read end is closed: before the child
/// starts (`pre_closed`), or right after it is spawned, before it had time
/// to write. Returns the exit code and stderr.
fn with_closed_stdout(mut cmd: Command, pre_closed: bool) -> (i32, String) {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let mut child = if pre_closed {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        cmd.stdout(writer);
        let child = cmd.spawn().expect("spawn sluice");
        // The parent's copy of the write end goes with `cmd`.
        drop(cmd);
        child
    } else {
        cmd.stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sluice");
        drop(child.stdout.take());
        child
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("read stderr");
    }
    let status = child.wait().expect("wait for sluice");
    (status.code().unwrap_or(-1), stderr)
}

fn assert_quiet(p: &Project, args: &[&str], env: &[(&str, &str)], expected: i32) {
    for attempt in 0..4 {
        let mut cmd = p.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (code, stderr) = with_closed_stdout(cmd, attempt % 2 == 0);
        assert!(
            !stderr.contains("panicked"),
            "sluice {args:?} (attempt {attempt}) panicked on a closed stdout:\n{stderr}"
        );
        assert_ne!(code, 101, "sluice {args:?} (attempt {attempt}):\n{stderr}");
        assert_eq!(
            code, expected,
            "sluice {args:?} (attempt {attempt}) exit code:\n{stderr}"
        );
    }
}

#[test]
fn no_command_panics_on_a_closed_stdout() {
    let p = Project::new();
    let fixture = plugin("fixture");
    let fixture = fixture.to_str().expect("utf8");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: pipes\nstages:\n  a: {{ uses: \"{fixture}\", with: {{ mode: pass }} }}\n  b: {{ uses: \"{fixture}\", needs: [a], with: {{ mode: pass }} }}\n"
        ),
    );
    // A key and a policy for `policy check`.
    let gen = p.sluice_env(
        &["key", "generate", "--out", "keys/release"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    p.write(
        "policy.yaml",
        "rules:\n  - name: first-party\n    match: [\"plugins/*.wasm\"]\n    authorities:\n      - key: keys/release.pub\n",
    );
    // A run, so that `runs list` has something to print.
    let first = p.sluice(&["run"]);
    assert_eq!(first.code, 0, "{}", first.all());

    assert_quiet(&p, &["policy", "check", "policy.yaml"], &[], 0);
    assert_quiet(&p, &["plugin", "inspect", "--json", fixture], &[], 0);
    assert_quiet(&p, &["plugin", "inspect", fixture], &[], 0);
    assert_quiet(&p, &["runs", "list"], &[], 0);
    assert_quiet(&p, &["runs", "list", "--json"], &[], 0);
    assert_quiet(&p, &["validate"], &[], 0);
    assert_quiet(&p, &["run"], &[], 0);
    assert_quiet(&p, &["run", "--json"], &[], 0);
    // The runs above were recorded although nobody read their output.
    let list = p.sluice(&["runs", "list", "--json"]);
    assert_eq!(list.code, 0, "{}", list.all());
}
