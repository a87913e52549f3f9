//! Snapshot tests of what users read (issue 16, point 5): the `--help` of
//! every command, the diagnostics for bad pipeline and policy files, and
//! the console output of runs. The snapshots are in `snapshots/` beside
//! this file; a change to any of these texts shows up as a diff to review.
//!
//! To accept changed texts, run the tests with `INSTA_UPDATE=always` (or
//! `cargo insta review`) and read every changed `.snap` file. Under
//! `CI=true`, insta writes nothing and a missing snapshot fails, so a new
//! command without a snapshot of its `--help` fails the suite.
//!
//! Every snapshot must be the same on every machine and every run: the
//! temporary directory becomes `[tmp]`, the repository `[repo]`, and run
//! ids, timestamps, durations, digests, compile times and the version are
//! filtered (see [`settings`] and [`run_settings`]). Runs use `--jobs 1`
//! (the default is the number of cores, printed in the run's header) and
//! the fixture plugin copied into the project (`plugins/fixture.wasm`), so
//! no absolute path of the machine appears.

use std::path::Path;
use std::time::Duration;

use insta::{assert_snapshot, Settings};
use serde_json::Value;
use sluice_tests::{plugin, repo_root, sluice_bin, Project, Run};

/// Generous: every command here answers at once; a hang is a failure, not
/// a stuck suite.
const LIMIT: Duration = Duration::from_secs(120);

/// The filters every snapshot gets: the machine's paths, `[env: NAME=value]`
/// in `--help` (clap shows the variable's current value) and the version.
fn settings(p: Option<&Project>) -> Settings {
    let mut s = Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    // First: the value may be a path another filter would change.
    s.add_filter(r"\[env: ([A-Z0-9_]+)=[^\]\n]*\]", "[env: $1=]");
    let mut paths = Vec::new();
    if let Some(p) = p {
        paths.push((p.root().to_path_buf(), "[tmp]"));
        if let Ok(canonical) = p.root().canonicalize() {
            paths.push((canonical, "[tmp]"));
        }
    }
    paths.push((repo_root(), "[repo]"));
    if let Ok(canonical) = repo_root().canonicalize() {
        paths.push((canonical, "[repo]"));
    }
    // Longest first, so a path inside another is replaced whole.
    paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.as_os_str().len()));
    for (path, placeholder) in paths {
        s.add_filter(&regex_escape(&path.display().to_string()), placeholder);
    }
    s.add_filter(
        &format!(r"\b{}\b", regex_escape(env!("CARGO_PKG_VERSION"))),
        "[version]",
    );
    // clap names the program after argv[0]: `$SLUICE_TESTS_BIN` may be
    // another build under another name.
    if let Some(name) = sluice_bin().file_name().and_then(|n| n.to_str()) {
        if name != "sluice" {
            s.add_filter(&format!(r"\b{}\b", regex_escape(name)), "sluice");
        }
    }
    s
}

/// [`settings`] plus what changes from run to run: run ids, timestamps,
/// durations, digests (the plugin's changes with every SDK change, the
/// provenance's with the time), the size of provenance statements (they
/// hold the host name and times) and whether the plugin came from the
/// compile cache.
fn run_settings(p: &Project) -> Settings {
    let mut s = settings(Some(p));
    s.add_filter(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "[run-id]");
    s.add_filter(
        r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
        "[timestamp]",
    );
    s.add_filter(r"sha256:[0-9a-f]{12,64}\b", "sha256:[digest]");
    s.add_filter(
        r"(cached \(\d+ ms\)|compiled in \d+(\.\d+)?m?s)",
        "[cached or compiled]",
    );
    s.add_filter(r"\b\d+\.\d+s\b", "[duration]");
    s.add_filter(r"duration_ms = \d+", "duration_ms = [ms]");
    s.add_filter(
        r"(provenance\.intoto\.json[^\n]*?)\b\d+ bytes",
        "${1}[size] bytes",
    );
    s
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

/// A project with the fixture plugin copied to `plugins/fixture.wasm`.
fn project() -> Project {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir plugins");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy fixture");
    p
}

/// Exit code, stdout and stderr of a run, as one text.
fn transcript(command: &str, run: &Run) -> String {
    transcript_of(command, run.code, &run.stdout, &run.stderr)
}

fn transcript_of(command: &str, code: i32, stdout: &str, stderr: &str) -> String {
    let mut out = format!("$ {command}\nexit code: {code}\n");
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if text.is_empty() {
            out.push_str(&format!("--- {name}: (empty)\n"));
        } else {
            out.push_str(&format!("--- {name}\n{text}"));
            if !text.ends_with('\n') {
                out.push_str("\n(no newline at the end)\n");
            }
        }
    }
    out
}

/// `sluice args...` without the variables the harness sets for runs
/// (`SLUICE_STATE_DIR`, `SLUICE_CACHE_DIR`, `SLUICE_ALLOW_UNSIGNED`): what
/// a user with none of them set reads. (clap shows a variable's value in
/// `--help`, and an option set through one in the usage line of an error.)
/// Returns the transcript and the exit code.
fn bare(p: &Project, args: &[&str]) -> (String, i32) {
    let out = p
        .command(args)
        .env_remove("SLUICE_STATE_DIR")
        .env_remove("SLUICE_CACHE_DIR")
        .env_remove("SLUICE_ALLOW_UNSIGNED")
        .output()
        .expect("run sluice");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let command = std::iter::once("sluice")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    (transcript_of(&command, code, &stdout, &stderr), code)
}

// ---------------------------------------------------------------------------
// 1. `--help` of every command.

/// The subcommands listed under `Commands:` in a `--help` text, without
/// `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Walks `sluice --help` and every subcommand's, recursively, and
/// snapshots each one as `help__sluice[_sub...]`. A new command fails
/// until its help is reviewed and committed; a snapshot of a command that
/// no longer exists fails too.
#[test]
fn help_of_every_command() {
    let p = Project::new();
    let settings = settings(Some(&p));
    let mut queue = vec![Vec::<String>::new()];
    let mut names = Vec::new();
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (text, code) = bare(&p, &args);
        assert_eq!(code, 0, "{text}");
        let name = std::iter::once("help__sluice".to_owned())
            .chain(path.iter().map(|c| c.replace('-', "_")))
            .collect::<Vec<_>>()
            .join("_");
        settings.bind(|| assert_snapshot!(name.as_str(), text));
        for sub in subcommands(&text) {
            let mut deeper = path.clone();
            deeper.push(sub);
            queue.push(deeper);
        }
        names.push(name);
    }
    // `sluice run`, `sluice plugin sign`, `sluice runs repair`, ...: the
    // walk must have found the commands this suite uses.
    for expected in [
        "help__sluice_run",
        "help__sluice_validate",
        "help__sluice_plugin_sign",
        "help__sluice_plugin_inspect",
        "help__sluice_key_generate",
        "help__sluice_policy_check",
        "help__sluice_runs_repair",
        "help__sluice_approve",
        "help__sluice_gc",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not walked");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/snapshots");
    let stale: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the snapshot directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|f| f.strip_suffix(".snap").map(str::to_owned))
        .filter(|f| f.starts_with("help__") && !names.contains(f))
        .collect();
    assert!(
        stale.is_empty(),
        "snapshots of --help for commands that no longer exist: {stale:?}"
    );
}

/// What a user who mistypes a command or an option reads.
#[test]
fn command_line_mistakes() {
    let p = Project::new();
    let settings = settings(Some(&p));
    for (name, args) in [
        ("cli__no_command", &[][..]),
        ("cli__unknown_command", &["rnu"][..]),
        ("cli__unknown_option", &["run", "--jbos", "2"][..]),
        ("cli__missing_argument", &["approve", "some-run"][..]),
    ] {
        let (text, code) = bare(&p, args);
        assert_eq!(code, 2, "{text}");
        settings.bind(|| assert_snapshot!(name, text));
    }
}

// ---------------------------------------------------------------------------
// 2. Diagnostics for bad pipeline files.

/// Writes `yaml` as `sluice.yaml`, checks that `run` refuses it exactly as
/// `validate` does (exit 2, the same stderr, no run created) and snapshots
/// the file with the diagnostic.
fn pipeline_diagnostic(name: &str, yaml: &str) {
    let p = project();
    std::fs::write(p.path().join("sluice.yaml"), yaml).expect("write sluice.yaml");
    let validate = p.sluice_timeout(&["validate"], &[], LIMIT);
    assert_eq!(validate.code, 2, "{}", validate.all());
    assert!(validate.stdout.is_empty(), "{}", validate.all());
    let run = p.sluice_timeout(&["run", "--jobs", "1"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(run.stdout, "", "{}", run.all());
    assert_eq!(
        run.stderr, validate.stderr,
        "`run` and `validate` must say the same"
    );
    assert!(
        std::fs::read_dir(p.state_dir().join("runs")).map_or(true, |d| d.count() == 0),
        "an invalid pipeline must not create a run"
    );
    settings(Some(&p)).bind(|| {
        assert_snapshot!(
            name,
            format!(
                "--- sluice.yaml\n{yaml}{}",
                transcript("sluice validate", &validate)
            )
        );
    });
}

const HEAD: &str = "version: 1\nname: demo\nstages:\n";

/// Issue 19: `validate` checks every stage's `with:` against the config
/// schema its plugin publishes (it used to say "valid" and leave typos to
/// `run`, where a second stage's error was recorded as cancelled by
/// fail-fast), each problem located, an unknown key with the closest key
/// the plugin knows; a `${{ }}` value is left to the run.
#[test]
fn validate_checks_with_against_each_plugins_schema() {
    let p = project();
    for name in ["test", "scan"] {
        std::fs::copy(plugin(name), p.path().join(format!("plugins/{name}.wasm")))
            .expect("copy plugin");
    }
    let yaml = format!(
        "{HEAD}  test:\n    uses: plugins/test.wasm\n    with:\n      command: [python3, -m, pytest]\n      junit: reports/junit.xml\n      fromat: junit\n  scan:\n    uses: plugins/scan.wasm\n    with:\n      entropy: 4\n      max-file-size: \"${{{{ env.MAX }}}}\"\n"
    );
    std::fs::write(p.path().join("sluice.yaml"), &yaml).expect("write sluice.yaml");
    let validate = p.sluice_timeout(&["validate"], &[], LIMIT);
    assert_eq!(validate.code, 2, "{}", validate.all());
    settings(Some(&p)).bind(|| {
        assert_snapshot!(
            "validate__with_typos",
            format!(
                "--- sluice.yaml\n{yaml}{}",
                transcript("sluice validate", &validate)
            )
        );
    });
    // Fixed, it is valid; the templated value is counted, not checked.
    let fixed = yaml
        .replace("      fromat: junit\n", "")
        .replace("entropy: 4", "entropy-threshold: \"${{ env.T }}\"");
    std::fs::write(p.path().join("sluice.yaml"), &fixed).expect("write sluice.yaml");
    let validate = p.sluice_timeout(&["validate"], &[], LIMIT);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(
        validate.stdout.contains("checked against the plugin's config schema for 2 stages; 1 value with `${{ }}` templates"),
        "{}",
        validate.all()
    );
}

#[test]
fn pipeline_unknown_key_suggests_the_right_one() {
    pipeline_diagnostic(
        "pipeline__unknown_key",
        &format!("{HEAD}  build:\n    uses: plugins/fixture.wasm\n    needz: [lint]\n"),
    );
}

#[test]
fn pipeline_unknown_gate_key() {
    pipeline_diagnostic(
        "pipeline__unknown_gate_key",
        &format!(
            "{HEAD}  test:\n    uses: plugins/fixture.wasm\n    gates:\n      - {{ metric: tests.failed, mux: 0 }}\n"
        ),
    );
}

#[test]
fn pipeline_timeout_without_a_unit() {
    pipeline_diagnostic(
        "pipeline__timeout_without_unit",
        &format!("{HEAD}  build:\n    uses: plugins/fixture.wasm\n    timeout: 600\n"),
    );
}

#[test]
fn pipeline_timeout_in_months() {
    pipeline_diagnostic(
        "pipeline__timeout_in_months",
        &format!("{HEAD}  build:\n    uses: plugins/fixture.wasm\n    timeout: 10M\n"),
    );
}

#[test]
fn pipeline_timeout_in_words() {
    pipeline_diagnostic(
        "pipeline__timeout_in_words",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n    timeout: 10 minutes please\n"
        ),
    );
}

#[test]
fn pipeline_bad_memory_size() {
    pipeline_diagnostic(
        "pipeline__bad_memory_size",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n    grants: {{ memory: lots }}\n"
        ),
    );
}

#[test]
fn pipeline_unknown_stage_in_needs() {
    pipeline_diagnostic(
        "pipeline__unknown_need",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n  deploy:\n    uses: plugins/fixture.wasm\n    needs: [biuld]\n"
        ),
    );
}

#[test]
fn pipeline_cycle() {
    pipeline_diagnostic(
        "pipeline__cycle",
        &format!(
            "{HEAD}  a: {{ uses: plugins/fixture.wasm, needs: [c] }}\n  b: {{ uses: plugins/fixture.wasm, needs: [a] }}\n  c: {{ uses: plugins/fixture.wasm, needs: [b] }}\n"
        ),
    );
}

#[test]
fn pipeline_template_names_an_unknown_stage() {
    pipeline_diagnostic(
        "pipeline__template_unknown_stage",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n  deploy:\n    uses: plugins/fixture.wasm\n    needs: [build]\n    with: {{ version: \"${{{{ stages.biuld.outputs.version }}}}\" }}\n"
        ),
    );
}

#[test]
fn pipeline_template_is_not_an_expression() {
    pipeline_diagnostic(
        "pipeline__template_bad_expression",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n    with: {{ text: \"${{{{ stages.build.outputz }}}}\" }}\n"
        ),
    );
}

#[test]
fn pipeline_bad_network_pattern() {
    pipeline_diagnostic(
        "pipeline__bad_network_pattern",
        &format!(
            "{HEAD}  deploy:\n    uses: plugins/fixture.wasm\n    grants: {{ network: [\"*.example.com:99999\"] }}\n"
        ),
    );
}

#[test]
fn pipeline_yaml_syntax_error() {
    pipeline_diagnostic(
        "pipeline__yaml_syntax_error",
        &format!("{HEAD}  build:\n    uses: plugins/fixture.wasm\n    with: {{ mode: pass\n"),
    );
}

#[test]
fn pipeline_tab_indentation() {
    pipeline_diagnostic(
        "pipeline__tab_indentation",
        &format!("{HEAD}  build:\n\tuses: plugins/fixture.wasm\n"),
    );
}

#[test]
fn pipeline_duplicate_stage() {
    pipeline_diagnostic(
        "pipeline__duplicate_stage",
        &format!(
            "{HEAD}  build:\n    uses: plugins/fixture.wasm\n  build:\n    uses: plugins/fixture.wasm\n"
        ),
    );
}

#[test]
fn pipeline_missing_plugin() {
    pipeline_diagnostic(
        "pipeline__missing_plugin",
        &format!("{HEAD}  build:\n    uses: plugins/missing.wasm\n"),
    );
}

#[test]
fn pipeline_unsupported_version() {
    pipeline_diagnostic(
        "pipeline__unsupported_version",
        "version: 2\nname: demo\nstages:\n  build:\n    uses: plugins/fixture.wasm\n",
    );
}

#[test]
fn pipeline_without_stages() {
    pipeline_diagnostic(
        "pipeline__no_stages",
        "version: 1\nname: demo\nstages: {}\n",
    );
}

#[test]
fn pipeline_empty_file() {
    pipeline_diagnostic("pipeline__empty_file", "");
}

/// A byte order mark is accepted: what `validate` says of such a file.
#[test]
fn pipeline_with_a_byte_order_mark_is_valid() {
    let p = project();
    let yaml = format!("\u{feff}{HEAD}  build:\n    uses: plugins/fixture.wasm\n    with: {{ mode: pass }}\n  test:\n    uses: plugins/fixture.wasm\n    needs: [build]\n    with: {{ mode: pass }}\n");
    std::fs::write(p.path().join("sluice.yaml"), &yaml).expect("write");
    let run = p.sluice(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    settings(Some(&p)).bind(|| {
        assert_snapshot!(
            "pipeline__byte_order_mark_is_valid",
            format!(
                "--- sluice.yaml (starts with U+FEFF)\n{}{}",
                yaml.trim_start_matches('\u{feff}'),
                transcript("sluice validate", &run)
            )
        );
    });
}

/// Pipeline files that are not regular files, over the cap, or missing.
#[test]
fn pipeline_files_that_cannot_be_read() {
    let p = project();
    let made = std::process::Command::new("mkfifo")
        .arg(p.path().join("fifo.yaml"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    // Valid YAML (one long comment) of 2 MiB: only the cap refuses it.
    let mut big = vec![b'#'; 2 << 20];
    big[(2 << 20) - 1] = b'\n';
    std::fs::write(p.path().join("big.yaml"), big).expect("write big.yaml");
    std::fs::create_dir(p.path().join("dir.yaml")).expect("mkdir");
    let settings = settings(Some(&p));
    for (name, file) in [
        ("pipeline__fifo", "fifo.yaml"),
        ("pipeline__oversize", "big.yaml"),
        ("pipeline__directory", "dir.yaml"),
        ("pipeline__missing_file", "missing.yaml"),
    ] {
        let validate = p.sluice_timeout(&["validate", file], &[], LIMIT);
        assert_eq!(validate.code, 2, "{}", validate.all());
        let run = p.sluice_timeout(&["run", "--jobs", "1", file], &[], LIMIT);
        assert_eq!(run.code, 2, "{}", run.all());
        assert_eq!(run.stderr, validate.stderr, "{}", run.all());
        settings.bind(|| {
            assert_snapshot!(
                name,
                transcript(&format!("sluice validate {file}"), &validate)
            );
        });
    }
}

// ---------------------------------------------------------------------------
// 3. Diagnostics for bad trust policy files.

/// Writes `yaml` as `policy.yaml` and snapshots what `policy check` says
/// (exit 2). The project has a key pair `keys/release.{key,pub}` and the
/// Sigstore trusted root at `trusted_root.json` for the policies that need
/// them.
fn policy_diagnostic(name: &str, yaml: &str) {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("keys")).expect("mkdir keys");
    std::fs::copy(
        repo_root().join("tests/fixtures/trust/public-good-trusted-root.json"),
        p.path().join("trusted_root.json"),
    )
    .expect("copy the trusted root");
    std::fs::write(p.path().join("policy.yaml"), yaml).expect("write policy.yaml");
    let check = p.sluice_timeout(&["policy", "check", "policy.yaml"], &[], LIMIT);
    assert_eq!(check.code, 2, "{}", check.all());
    settings(Some(&p)).bind(|| {
        assert_snapshot!(
            name,
            format!(
                "--- policy.yaml\n{yaml}{}",
                transcript("sluice policy check policy.yaml", &check)
            )
        );
    });
}

#[test]
fn policy_unknown_key() {
    policy_diagnostic("policy__unknown_key", "mode: enforce\nrulez: []\n");
}

#[test]
fn policy_unknown_key_in_a_keyless_authority() {
    policy_diagnostic(
        "policy__unknown_keyless_key",
        "trusted-root: trusted_root.json\nrules:\n  - name: ci\n    match: \"plugins/*.wasm\"\n    authorities:\n      - keyless: { issuer: \"https://token.actions.githubusercontent.com\", identity: \"https://github.com/acme/.*\" }\n",
    );
}

#[test]
fn policy_bad_regexp() {
    policy_diagnostic(
        "policy__bad_regexp",
        "trusted-root: trusted_root.json\nrules:\n  - name: ci\n    match: \"plugins/*.wasm\"\n    authorities:\n      - keyless: { issuer: \"https://token.actions.githubusercontent.com\", subject-regexp: \"^(https://github.com/acme/\" }\n",
    );
}

#[test]
fn policy_keyless_without_a_trusted_root() {
    policy_diagnostic(
        "policy__keyless_without_trusted_root",
        "rules:\n  - name: ci\n    match: \"plugins/*.wasm\"\n    authorities:\n      - keyless: { issuer: \"https://token.actions.githubusercontent.com\", subject: ci@acme.dev }\n",
    );
}

#[test]
fn policy_missing_trusted_root() {
    policy_diagnostic(
        "policy__missing_trusted_root",
        "trusted-root: missing_root.json\nrules: []\n",
    );
}

#[test]
fn policy_bad_network_pattern() {
    policy_diagnostic(
        "policy__bad_network_pattern",
        "rules:\n  - name: capped\n    match: \"plugins/*.wasm\"\n    max-grants: { network: [\"api.example.com:https\"] }\n",
    );
}

#[test]
fn policy_missing_key_file() {
    policy_diagnostic(
        "policy__missing_key_file",
        "rules:\n  - name: signed\n    match: \"plugins/*.wasm\"\n    authorities: [{ key: keys/missing.pub }]\n",
    );
}

#[test]
fn policy_unknown_mode() {
    policy_diagnostic("policy__unknown_mode", "mode: strict\nrules: []\n");
}

#[test]
fn policy_unknown_workspace_grant() {
    policy_diagnostic(
        "policy__unknown_workspace_grant",
        "rules:\n  - name: capped\n    match: \"plugins/*.wasm\"\n    max-grants: { workspace: all }\n",
    );
}

#[test]
fn policy_bad_glob() {
    policy_diagnostic(
        "policy__bad_glob",
        "rules:\n  - name: signed\n    match: \"plugins/[abc.wasm\"\n",
    );
}

#[test]
fn policy_duplicate_rule_names() {
    policy_diagnostic(
        "policy__duplicate_rule_names",
        "rules:\n  - name: signed\n    match: \"plugins/*.wasm\"\n  - name: signed\n    match: \"tools/*.wasm\"\n",
    );
}

#[test]
fn policy_tab_indentation() {
    policy_diagnostic(
        "policy__tab_indentation",
        "rules:\n\t- name: signed\n\t  match: \"plugins/*.wasm\"\n",
    );
}

/// A bad operator policy (`--operator-policy`, outside the project) stops
/// a run before any stage.
#[test]
fn policy_bad_operator_policy_stops_a_run() {
    let p = project();
    let op = p.write_outside("operator/policy.yaml", b"mode: enforce\nrulez: []\n");
    p.write(
        "sluice.yaml",
        &format!("{HEAD}  build:\n    uses: plugins/fixture.wasm\n    with: {{ mode: pass }}\n"),
    );
    let op = op.to_str().expect("utf-8 path");
    let run = p.sluice_timeout(&["--operator-policy", op, "run", "--jobs", "1"], &[], LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    run_settings(&p).bind(|| {
        assert_snapshot!(
            "policy__bad_operator_policy_run",
            transcript(
                "sluice --operator-policy [tmp]/operator/policy.yaml run --jobs 1",
                &run
            )
        );
    });
}

/// What `policy check` explains for a good policy (with a key, caps and a
/// static rule).
#[test]
fn policy_check_explains_a_good_policy() {
    let p = project();
    let key = p.sluice_env(
        &["key", "generate", "--out", "keys/release"],
        &[("SLUICE_KEY_PASSWORD", "test-password")],
    );
    assert_eq!(key.code, 0, "{}", key.all());
    let yaml = "mode: enforce\nno-match: deny\nrules:\n  - name: signed\n    match: \"plugins/*.wasm\"\n    authorities: [{ key: keys/release.pub }]\n    max-grants: { workspace: read, network: [\"api.example.com:443\"] }\n  - name: frozen\n    match: \"plugins/deploy.wasm\"\n    static: fail\n    message: deploys are frozen until Monday\n";
    p.write("policy.yaml", yaml);
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 0, "{}", check.all());
    run_settings(&p).bind(|| {
        assert_snapshot!(
            "policy__check_good_policy",
            format!(
                "--- policy.yaml\n{yaml}{}{}",
                transcript("sluice key generate --out keys/release", &key),
                transcript("sluice policy check policy.yaml", &check)
            )
        );
    });
}

// ---------------------------------------------------------------------------
// 4. The console output of runs.

/// Runs `sluice run --jobs 1 [extra...]` on `yaml` and snapshots the
/// transcript; returns the run.
fn run_snapshot(p: &Project, name: &str, yaml: &str, extra: &[&str], code: i32) -> Run {
    p.write("sluice.yaml", yaml);
    let mut args = vec!["run", "--jobs", "1"];
    args.extend_from_slice(extra);
    let run = p.sluice_timeout(&args, &[], LIMIT);
    assert_eq!(run.code, code, "{}", run.all());
    run_settings(p).bind(|| {
        assert_snapshot!(
            name,
            format!(
                "--- sluice.yaml\n{yaml}{}",
                transcript(&format!("sluice {}", args.join(" ")), &run)
            )
        );
    });
    run
}

const PASSING: &str = r#"version: 1
name: demo
stages:
  build:
    uses: plugins/fixture.wasm
    with: { mode: pass, text: "hello\n", version: "1.2.3" }
  test:
    uses: plugins/fixture.wasm
    needs: [build]
    with: { mode: read }
  package:
    uses: plugins/fixture.wasm
    needs: [test]
    with: { mode: metric, metrics: { size.kb: 12 } }
    gates:
      - { metric: size.kb, max: 100 }
"#;

#[test]
fn run_passing_pipeline() {
    let p = project();
    run_snapshot(&p, "run__passing", PASSING, &[], 0);
}

#[test]
fn run_blocked_by_a_gate() {
    let p = project();
    run_snapshot(
        &p,
        "run__gate_blocked",
        r#"version: 1
name: gated
stages:
  test:
    uses: plugins/fixture.wasm
    with: { mode: metric, metrics: { tests.failed: 2, coverage.line: 71.5 } }
    gates:
      - { metric: tests.failed, max: 0 }
      - { metric: coverage.line, min: 80, on-fail: warn }
  deploy:
    uses: plugins/fixture.wasm
    needs: [test]
    with: { mode: pass }
  remediate:
    uses: plugins/fixture.wasm
    needs: [test]
    when: failure
    with: { mode: pass }
"#,
        &[],
        1,
    );
}

/// A plugin that fails, retried twice, then the dependent stage skipped.
#[test]
fn run_plugin_failure_with_retries() {
    let p = project();
    run_snapshot(
        &p,
        "run__plugin_failure_retried",
        r#"version: 1
name: broken
stages:
  build:
    uses: plugins/fixture.wasm
    with: { mode: pass }
  test:
    uses: plugins/fixture.wasm
    needs: [build]
    retries: 2
    with: { mode: fail, message: "3 tests failed" }
  deploy:
    uses: plugins/fixture.wasm
    needs: [test]
    with: { mode: pass }
"#,
        &[],
        1,
    );
}

/// A configuration error is not retried; `--keep-going` runs the rest.
#[test]
fn run_invalid_plugin_config_keep_going() {
    let p = project();
    run_snapshot(
        &p,
        "run__invalid_config_keep_going",
        r#"version: 1
name: misconfigured
stages:
  lint:
    uses: plugins/fixture.wasm
    retries: 2
    with: { mode: badconfig }
  build:
    uses: plugins/fixture.wasm
    with: { mode: pass }
"#,
        &["--keep-going"],
        1,
    );
}

/// A stage that needs approval pauses the run; `approve` and `--resume`
/// finish it; `runs show` and `runs list` describe it.
#[test]
fn run_paused_for_approval_then_resumed() {
    let p = project();
    let run = run_snapshot(
        &p,
        "run__paused_for_approval",
        r#"version: 1
name: gated-deploy
stages:
  build:
    uses: plugins/fixture.wasm
    with: { mode: pass }
  deploy:
    uses: plugins/fixture.wasm
    needs: [build]
    approval: required
    environment: production
    with: { mode: pass }
"#,
        &[],
        4,
    );
    let id = run.run_id();
    let wrong = p.sluice(&["approve", &id, "build", "--by", "alice"]);
    assert_eq!(wrong.code, 2, "{}", wrong.all());
    let ok = p.sluice(&["approve", &id, "deploy", "--by", "alice"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let again = p.sluice(&["approve", &id, "deploy", "--by", "alice"]);
    assert_eq!(again.code, 2, "{}", again.all());
    let resumed = p.sluice_timeout(&["run", "--jobs", "1", "--resume", &id], &[], LIMIT);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let show = p.sluice(&["runs", "show", &id]);
    assert_eq!(show.code, 0, "{}", show.all());
    let list = p.sluice(&["runs", "list"]);
    assert_eq!(list.code, 0, "{}", list.all());
    run_settings(&p).bind(|| {
        assert_snapshot!(
            "run__approve_and_resume",
            [
                transcript("sluice approve RUN build --by alice", &wrong),
                transcript("sluice approve RUN deploy --by alice", &ok),
                transcript("sluice approve RUN deploy --by alice  # again", &again),
                transcript("sluice run --jobs 1 --resume RUN", &resumed),
                transcript("sluice runs show RUN", &show),
                transcript("sluice runs list", &list),
            ]
            .concat()
        );
    });
}

/// Replaces what changes between runs in a JSON event, by key: times,
/// durations, ids, digests, the cache state and the size of provenance
/// statements.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let provenance =
                map.get("name").and_then(Value::as_str) == Some("provenance.intoto.json");
            for (key, v) in map.iter_mut() {
                let placeholder = match key.as_str() {
                    "ts" | "started_at" | "finished_at" => Some("[timestamp]"),
                    "run_id" => Some("[run-id]"),
                    "duration_ms" | "millis" => Some("[ms]"),
                    "digest" => Some("[digest]"),
                    "cached" => Some("[cached]"),
                    "size" if provenance => Some("[size]"),
                    _ => None,
                };
                match placeholder {
                    Some(p) => *v = Value::String(p.to_owned()),
                    None => redact(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `run --json`: every line is one event; snapshotted as a JSON array
/// with times, ids, durations and digests redacted.
#[test]
fn run_json_events() {
    let p = project();
    p.write("sluice.yaml", PASSING);
    let run = p.sluice_timeout(&["run", "--jobs", "1", "--json"], &[], LIMIT);
    assert_eq!(run.code, 0, "{}", run.all());
    let mut events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    events.iter_mut().for_each(redact);
    let json = serde_json::to_string_pretty(&events).expect("serialize");
    run_settings(&p).bind(|| {
        assert_snapshot!(
            "run__json_events",
            transcript_of(
                "sluice run --jobs 1 --json  # stdout: one event a line, shown as an array",
                run.code,
                &format!("{json}\n"),
                &run.stderr
            )
        );
    });
}
