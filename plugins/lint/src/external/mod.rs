//! External linters: run a granted program through the SDK's `exec`, read
//! its report (cargo's JSON diagnostics or a SARIF log, from stdout or a
//! file), and turn it into [`Finding`]s grouped per tool ([`ToolRun`]).
//!
//! The program runs on the host, so the paths it reports are host paths:
//! relative ones are taken relative to its `cwd` (or, failing that, the
//! workspace root); absolute ones are mapped back into the workspace by the
//! longest path suffix that names a file there (`/home/ci/repo/src/x.rs` →
//! `src/x.rs`), and kept as they are when none does.
//!
//! A linter that exits non-zero is normal (it found something). The stage
//! fails only when the program could not run, was killed by its timeout, or
//! exited non-zero without producing a readable report.
//!
//! A report named in `output:` must be this run's. Before the program runs
//! the stage removes the file (tools such as flake8 append to their
//! `--output-file`, so a kept file would hold two reports); that needs
//! `grants.workspace: write`. When it cannot remove it, it records the
//! file's modification time and size, and afterwards refuses a report that
//! is unchanged: it is left from an earlier run, and taking it for this
//! run's would report old findings as new.

pub mod clippy;
pub mod sarif_in;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use sluice_sdk::exec::{ExecError, ExecOutput};
use sluice_sdk::StageError;

use crate::config::{External, ExternalFormat};
use crate::finding::{Finding, Level};

/// Runs host programs. The stage uses [`SdkExec`]; tests use a fake.
pub trait Exec {
    /// Runs `program` with `args` in `cwd` (relative to the workspace).
    fn run(
        &self,
        program: &str,
        args: &[String],
        cwd: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, ExecError>;
}

/// [`Exec`] through `sluice:stage/exec` (only works inside the runner).
#[derive(Debug, Clone, Copy, Default)]
pub struct SdkExec;

impl Exec for SdkExec {
    fn run(
        &self,
        program: &str,
        args: &[String],
        cwd: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, ExecError> {
        let mut cmd = sluice_sdk::exec::Command::new(program).args(args.iter().cloned());
        if let Some(c) = cwd {
            cmd = cmd.cwd(c);
        }
        if let Some(t) = timeout {
            cmd = cmd.timeout(t);
        }
        cmd.run()
    }
}

/// Documentation for one rule, shown in the SARIF `rules` array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDoc {
    /// The level the tool gives the rule by default, when known.
    pub level: Option<Level>,
    /// One-line description.
    pub description: Option<String>,
    /// Where to read more.
    pub help_uri: Option<String>,
}

/// How an external program ran, for the SARIF `invocations` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command line, space-joined.
    pub command_line: String,
    /// Its exit status.
    pub exit_code: i32,
}

/// The findings of one tool, which becomes one SARIF run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRun {
    /// Tool name (SARIF `tool.driver.name`).
    pub name: String,
    /// Tool version, when known.
    pub version: Option<String>,
    /// The tool's home page, when known.
    pub information_uri: Option<String>,
    /// How columns are counted (`unicodeCodePoints` / `utf16CodeUnits`), when known.
    pub column_kind: Option<String>,
    /// Rules with documentation (every rule of a finding is listed anyway).
    pub rules: BTreeMap<String, RuleDoc>,
    /// What it found.
    pub findings: Vec<Finding>,
    /// How it ran, for external tools.
    pub invocation: Option<Invocation>,
}

impl ToolRun {
    /// An empty run of tool `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
            information_uri: None,
            column_kind: None,
            rules: BTreeMap::new(),
            findings: Vec::new(),
            invocation: None,
        }
    }
}

/// What running one external linter gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One run per tool in its report (a SARIF log may hold several).
    pub runs: Vec<ToolRun>,
    /// Things worth a log line (truncated output, skipped lines).
    pub notes: Vec<String>,
}

/// Runs `ext` and reads its report. `workspace` is where the workspace is
/// mounted (`/workspace`), used to read `output:` files and map paths.
pub fn run(ext: &External, exec: &dyn Exec, workspace: &Path) -> Result<Outcome, StageError> {
    let label = ext.label();
    let mut notes = Vec::new();
    let previous = match &ext.output {
        Some(rel) => {
            let prepared = prepare_output(&workspace.join(rel));
            if let Some(e) = &prepared.kept_because {
                notes.push(format!(
                    "{label}: could not remove the previous report `{rel}` before the tool ran ({e}); \
                     a report it does not rewrite will be refused (grant `workspace: write` so the \
                     stage can remove it)"
                ));
            }
            Some(prepared)
        }
        None => None,
    };
    let out = exec
        .run(&ext.program, &ext.args, ext.cwd.as_deref(), ext.timeout)
        .map_err(|e| {
            if let ExecError::Denied(program) = &e {
                // 0.2's `denied` carries only the capability: say which
                // linter needed it in the log.
                sluice_sdk::error!("{label}: the stage may not run `{program}`");
            }
            StageError::from(e).with_context(&label)
        })?;
    if out.timed_out {
        return Err(StageError::failed(format!(
            "{label}: killed after its timeout{}",
            stderr_tail(&out)
        )));
    }
    let report = match (&ext.output, &previous) {
        (Some(rel), Some(previous)) => read_output(workspace, rel, previous, &label, &out)?,
        _ => {
            if out.truncated {
                notes.push(format!(
                    "{label}: output was cut at the stage's output cap; raise grants.output or have the tool write a file and set `output:`"
                ));
            }
            out.stdout.clone()
        }
    };
    // When an old report could not be removed and the tool appended to it,
    // the file holds two reports: say why it does not parse.
    let appended_hint = match (&ext.output, previous.as_ref().and_then(|p| p.stamp)) {
        (Some(rel), Some(_)) => format!(
            " (the previous `{rel}` could not be removed before the tool ran, and some tools \
             append to their output file: grant `workspace: write` so the stage can remove it)"
        ),
        _ => String::new(),
    };
    let resolver = Resolver::new(workspace, ext.cwd.as_deref());
    let mut runs = match ext.format {
        ExternalFormat::ClippyJson => {
            let text = String::from_utf8_lossy(&report);
            let name = ext
                .name
                .clone()
                .unwrap_or_else(|| default_cargo_tool_name(&ext.args));
            let parsed = clippy::parse(&text, &name, &resolver);
            if parsed.diagnostics == 0 && out.status != 0 {
                return Err(StageError::failed(format!(
                    "{label} exited {} without reporting a diagnostic{}",
                    out.status,
                    stderr_tail(&out)
                )));
            }
            if parsed.unreadable_lines > 0 {
                notes.push(format!(
                    "{label}: {} output line(s) were not cargo JSON messages and were ignored",
                    parsed.unreadable_lines
                ));
            }
            vec![parsed.run]
        }
        ExternalFormat::Sarif => {
            if report.iter().all(u8::is_ascii_whitespace) {
                return Err(StageError::failed(format!(
                    "{label} exited {} and produced no SARIF log{}",
                    out.status,
                    stderr_tail(&out)
                )));
            }
            sarif_in::parse(&report, ext.name.as_deref(), &resolver).map_err(|e| {
                let cut = if out.truncated && ext.output.is_none() {
                    " (its output was cut at the stage's output cap: raise grants.output or set `output:`)"
                } else {
                    appended_hint.as_str()
                };
                StageError::failed(format!(
                    "{label}: its output is not a SARIF 2.1.0 log: {e}{cut}"
                ))
            })?
        }
    };
    let command_line = std::iter::once(ext.program.as_str())
        .chain(ext.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    for r in &mut runs {
        r.invocation = Some(Invocation {
            command_line: command_line.clone(),
            exit_code: out.status,
        });
    }
    Ok(Outcome { runs, notes })
}

/// What identifies one version of a file: modification time and size (as
/// the test stage's report snapshot does).
type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// The state of an `output:` file just before the tool runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedOutput {
    /// The stamp of a previous report that could not be removed.
    pub stamp: Option<Stamp>,
    /// Whether a previous report was removed.
    pub removed: bool,
    /// Why a previous report was kept (it could not be removed).
    pub kept_because: Option<String>,
}

/// Removes the previous report at `path` so that the tool writes a new one
/// (and one that appends does not append to the old). When it cannot be
/// removed (a read-only workspace), remembers its stamp so that
/// [`read_output`] can tell whether the tool rewrote it.
pub fn prepare_output(path: &Path) -> PreparedOutput {
    let mut prepared = PreparedOutput {
        stamp: None,
        removed: false,
        kept_because: None,
    };
    match std::fs::symlink_metadata(path) {
        Err(_) => {}
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => match std::fs::remove_file(path) {
            Ok(()) => prepared.removed = true,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                prepared.stamp = stamp(path);
                prepared.kept_because = Some(e.to_string());
            }
        },
    }
    prepared
}

/// Reads the `output:` report `rel`, refusing one this run did not write.
pub fn read_output(
    workspace: &Path,
    rel: &str,
    previous: &PreparedOutput,
    label: &str,
    out: &ExecOutput,
) -> Result<Vec<u8>, StageError> {
    let path = workspace.join(rel);
    let now = stamp(&path);
    if now.is_none() && previous.removed {
        return Err(StageError::failed(format!(
            "{label} did not write its report `{rel}` (the previous one was removed before it \
             ran, so findings from an earlier run are not reported); it exited {}{}",
            out.status,
            stderr_tail(out)
        )));
    }
    if previous.stamp.is_some() && now == previous.stamp {
        return Err(StageError::failed(format!(
            "{label}: its report `{rel}` is left from an earlier run (it is unchanged since \
             before the tool ran, so it is not this run's and is refused); it exited {}{}. Make \
             the tool write `{rel}`, or delete the file (grant `workspace: write` so the stage \
             removes it before each run)",
            out.status,
            stderr_tail(out)
        )));
    }
    std::fs::read(&path).map_err(|e| {
        StageError::failed(format!(
            "{label}: could not read its report `{rel}` ({e}); it exited {}{}",
            out.status,
            stderr_tail(out)
        ))
    })
}

/// `clippy` for `cargo clippy ...`, otherwise `cargo` (check, build).
fn default_cargo_tool_name(args: &[String]) -> String {
    if args.iter().any(|a| a == "clippy") {
        "clippy".into()
    } else {
        "cargo".into()
    }
}

/// The last lines of stderr, to show why a program failed.
fn stderr_tail(out: &ExecOutput) -> String {
    let text = out.stderr_str();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(5)..];
    format!("; stderr: {}", tail.join(" | "))
}

/// Maps paths an external tool reported to workspace-relative paths.
#[derive(Debug, Clone)]
pub struct Resolver {
    workspace: PathBuf,
    cwd: Option<String>,
}

impl Resolver {
    /// Paths are relative to `cwd` (itself relative to `workspace`).
    pub fn new(workspace: &Path, cwd: Option<&str>) -> Self {
        Self {
            workspace: workspace.to_path_buf(),
            cwd: cwd.filter(|c| !c.is_empty()).map(str::to_string),
        }
    }

    fn exists(&self, rel: &str) -> bool {
        !rel.is_empty() && self.workspace.join(rel).is_file()
    }

    /// A file path (`src/main.rs`, `/home/ci/repo/src/main.rs`) as a
    /// workspace-relative path, or as given when it is outside.
    pub fn path(&self, raw: &str) -> String {
        let raw_path = Path::new(raw);
        if raw_path.is_absolute() {
            if let Ok(rest) = raw_path.strip_prefix(&self.workspace) {
                if let Some(n) = normalize(rest) {
                    return n;
                }
            }
            let parts: Vec<String> = raw_path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            for i in 0..parts.len() {
                let candidate = parts[i..].join("/");
                if self.exists(&candidate) {
                    return candidate;
                }
            }
            return raw.to_string();
        }
        let direct = normalize(raw_path);
        let in_cwd = self
            .cwd
            .as_ref()
            .and_then(|c| normalize(&Path::new(c).join(raw_path)));
        match (in_cwd, direct) {
            (Some(c), _) if self.exists(&c) => c,
            (_, Some(d)) if self.exists(&d) => d,
            (Some(c), _) => c,
            (None, Some(d)) => d,
            (None, None) => raw.to_string(),
        }
    }

    /// `raw` as a workspace-relative path when it names a file inside the
    /// workspace, `None` when it is outside: absolute paths that are not
    /// under the workspace and match no file there, relative paths that
    /// climb out of it, and the toolchain's and cargo's own sources
    /// (`/rustc/<hash>/library/...`, `~/.cargo/registry/...`,
    /// `.../lib/rustlib/...`), which a path suffix must never map onto a
    /// workspace file of the same name.
    pub fn inside(&self, raw: &str) -> Option<String> {
        let slashed = raw.replace('\\', "/");
        let toolchain = slashed.starts_with("/rustc/")
            || [
                "/.cargo/registry/",
                "/.cargo/git/",
                "/.rustup/",
                "/lib/rustlib/",
            ]
            .iter()
            .any(|m| slashed.contains(m));
        if toolchain && !Path::new(raw).starts_with(&self.workspace) {
            return None;
        }
        let mapped = self.path(raw);
        let outside = mapped.is_empty()
            || Path::new(&mapped).is_absolute()
            || mapped == ".."
            || mapped.starts_with("../");
        (!outside).then_some(mapped)
    }

    /// A SARIF `artifactLocation.uri` (percent-encoded, maybe `file://`),
    /// relative to the base URI `base` when given.
    pub fn uri(&self, uri: &str, base: Option<&str>) -> String {
        let decoded = percent_decode(uri);
        if let Some(path) = file_uri_path(&decoded) {
            return self.path(&path);
        }
        if let Some(base_path) = base.and_then(|b| file_uri_path(&percent_decode(b))) {
            let joined = self.path(&Path::new(&base_path).join(&decoded).to_string_lossy());
            if !Path::new(&joined).is_absolute() {
                return joined;
            }
        }
        self.path(&decoded)
    }
}

/// The path of a `file:` URI (`file:///x`, `file://localhost/x`, `file:/x`).
fn file_uri_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file:")?;
    let path = if let Some(after) = rest.strip_prefix("//") {
        let slash = after.find('/')?;
        &after[slash..]
    } else {
        rest
    };
    Some(path.to_string())
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a/./b/../c` → `a/c`; `None` when it climbs above its start or is absolute.
fn normalize(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => parts.push(x.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Settings};
    use std::cell::RefCell;

    /// Program, arguments and cwd of one call.
    type Call = (String, Vec<String>, Option<String>);

    /// A fake `exec`: records calls and answers with a fixed result.
    struct Fake {
        answer: Result<ExecOutput, ExecError>,
        calls: RefCell<Vec<Call>>,
        /// A file the "tool" appends to when it runs, as flake8 does with
        /// `--output-file`.
        appends: Option<(PathBuf, String)>,
    }

    impl Fake {
        fn ok(status: i32, stdout: &str, stderr: &str) -> Self {
            Self::answer(Ok(ExecOutput {
                status,
                stdout: stdout.as_bytes().to_vec(),
                stderr: stderr.as_bytes().to_vec(),
                truncated: false,
                timed_out: false,
            }))
        }
        fn answer(answer: Result<ExecOutput, ExecError>) -> Self {
            Self {
                answer,
                calls: RefCell::new(Vec::new()),
                appends: None,
            }
        }
        fn appending(mut self, path: PathBuf, text: &str) -> Self {
            self.appends = Some((path, text.to_string()));
            self
        }
    }

    impl Exec for Fake {
        fn run(
            &self,
            program: &str,
            args: &[String],
            cwd: Option<&str>,
            _timeout: Option<Duration>,
        ) -> Result<ExecOutput, ExecError> {
            self.calls
                .borrow_mut()
                .push((program.into(), args.to_vec(), cwd.map(str::to_string)));
            if let Some((path, text)) = &self.appends {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| ExecError::SpawnFailed(e.to_string()))?;
                f.write_all(text.as_bytes())
                    .map_err(|e| ExecError::SpawnFailed(e.to_string()))?;
            }
            self.answer.clone()
        }
    }

    fn external(json: &str) -> External {
        let ctx = sluice_sdk::Context::for_test("lint", &format!(r#"{{"external": [{json}]}}"#));
        let cfg: Config = ctx.config().expect("config");
        let mut s = Settings::from_config(cfg).expect("settings");
        s.external.remove(0)
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["src/main.rs", "svc/src/lib.rs", "app.py"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "x\n").expect("write");
        }
        dir
    }

    const SARIF: &str = r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "ruff"}},
        "results": [{"ruleId": "F401", "level": "error", "message": {"text": "unused import"},
          "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app.py"},
            "region": {"startLine": 1, "startColumn": 8}}}]}]}]}"#;

    #[test]
    fn sarif_from_stdout() {
        let ws = workspace();
        let fake = Fake::ok(1, SARIF, "");
        let ext = external(
            r#"{"command": ["ruff", "check", "--output-format=sarif"], "format": "sarif"}"#,
        );
        let out = run(&ext, &fake, ws.path()).expect("runs");
        assert_eq!(fake.calls.borrow()[0].0, "ruff");
        assert_eq!(out.runs.len(), 1);
        let r = &out.runs[0];
        assert_eq!(r.name, "ruff");
        assert_eq!(
            r.findings[0].to_string(),
            "app.py:1:8 error F401 unused import [ruff]"
        );
        assert_eq!(
            r.invocation,
            Some(Invocation {
                command_line: "ruff check --output-format=sarif".into(),
                exit_code: 1
            })
        );
    }

    #[test]
    fn sarif_from_an_output_file() {
        let ws = workspace();
        let fake = Fake::ok(0, "not json", "").appending(ws.path().join("report.sarif"), SARIF);
        let ext = external(
            r#"{"command": ["ruff"], "format": "sarif", "output": "report.sarif", "name": "py"}"#,
        );
        let out = run(&ext, &fake, ws.path()).expect("runs");
        assert_eq!(out.runs[0].name, "py");
        assert_eq!(out.runs[0].findings.len(), 1);
        let ext =
            external(r#"{"command": ["ruff"], "format": "sarif", "output": "missing.sarif"}"#);
        let e = run(&ext, &fake, ws.path()).expect_err("no report");
        assert!(
            e.message()
                .contains("could not read its report `missing.sarif`"),
            "{e}"
        );
    }

    #[test]
    fn an_appending_tool_runs_twice_with_one_report() {
        let ws = workspace();
        let report = ws.path().join("reports/flake8.sarif");
        std::fs::create_dir_all(ws.path().join("reports")).expect("mkdir");
        let fake = Fake::ok(1, "", "").appending(report.clone(), SARIF);
        let ext = external(
            r#"{"command": ["flake8", "--output-file=reports/flake8.sarif"], "format": "sarif", "output": "reports/flake8.sarif"}"#,
        );
        for round in 1..=2 {
            let out = run(&ext, &fake, ws.path()).unwrap_or_else(|e| panic!("run {round}: {e}"));
            assert_eq!(out.runs[0].findings.len(), 1, "run {round}");
            assert!(out.notes.is_empty(), "{:?}", out.notes);
            assert_eq!(
                std::fs::read_to_string(&report).expect("read"),
                SARIF,
                "run {round}: the old report was removed, not appended to"
            );
        }
    }

    #[test]
    fn a_report_the_tool_did_not_write_is_refused() {
        let ws = workspace();
        std::fs::write(ws.path().join("old.sarif"), SARIF).expect("write");
        let fake = Fake::ok(0, "", "flake8: no such option\n");
        let ext = external(r#"{"command": ["flake8"], "format": "sarif", "output": "old.sarif"}"#);
        let e = run(&ext, &fake, ws.path()).expect_err("stale");
        assert!(matches!(e, StageError::Failed(_)), "{e:?}");
        assert!(
            e.message().contains("did not write its report `old.sarif`")
                && e.message().contains("stderr: flake8: no such option"),
            "{e}"
        );
        assert!(
            !ws.path().join("old.sarif").exists(),
            "removed before the run"
        );
    }

    #[test]
    fn a_stale_report_that_could_not_be_removed_is_refused() {
        let ws = workspace();
        let path = ws.path().join("ruff.sarif");
        std::fs::write(&path, SARIF).expect("write");
        // What `prepare_output` records when the workspace is read-only.
        let kept = PreparedOutput {
            stamp: stamp(&path),
            removed: false,
            kept_because: Some("Read-only file system".into()),
        };
        let out = ExecOutput {
            status: 0,
            stdout: vec![],
            stderr: vec![],
            truncated: false,
            timed_out: false,
        };
        let e = read_output(ws.path(), "ruff.sarif", &kept, "ruff", &out).expect_err("stale");
        assert!(
            e.message()
                .starts_with("ruff: its report `ruff.sarif` is left from an earlier run"),
            "{e}"
        );
        assert!(e.message().contains("grant `workspace: write`"), "{e}");
        // Rewritten by the tool: accepted.
        std::fs::write(&path, format!("{SARIF}\n")).expect("rewrite");
        let bytes = read_output(ws.path(), "ruff.sarif", &kept, "ruff", &out).expect("fresh");
        assert!(bytes.ends_with(b"\n"));
    }

    #[test]
    fn prepare_output_removes_files_only() {
        let ws = workspace();
        let file = ws.path().join("app.py");
        let p = prepare_output(&file);
        assert_eq!((p.removed, p.stamp, p.kept_because), (true, None, None));
        assert!(!file.exists());
        let p = prepare_output(&ws.path().join("missing.sarif"));
        assert!(!p.removed && p.stamp.is_none());
        let p = prepare_output(&ws.path().join("src"));
        assert!(!p.removed, "a directory is left alone");
        assert!(ws.path().join("src/main.rs").exists());
    }

    #[test]
    fn clippy_json_in_a_subdirectory() {
        let ws = workspace();
        let line = r#"{"reason":"compiler-message","message":{"message":"m","code":{"code":"clippy::x"},"level":"warning","spans":[{"file_name":"src/lib.rs","line_start":3,"column_start":2,"is_primary":true}]}}"#;
        let fake = Fake::ok(0, line, "");
        let ext = external(
            r#"{"command": ["cargo", "clippy", "--message-format=json"], "format": "clippy-json", "cwd": "svc"}"#,
        );
        let out = run(&ext, &fake, ws.path()).expect("runs");
        assert_eq!(fake.calls.borrow()[0].2.as_deref(), Some("svc"));
        let f = &out.runs[0].findings[0];
        assert_eq!(out.runs[0].name, "clippy");
        assert_eq!(f.level, Level::Warning);
        assert_eq!(
            f.to_string(),
            "svc/src/lib.rs:3:2 warning clippy::x m [clippy]"
        );
    }

    #[test]
    fn failures_are_reported_with_their_reason() {
        let ws = workspace();
        let ext = external(r#"{"command": ["cat", "x.sarif"], "format": "sarif"}"#);
        let denied = Fake::answer(Err(ExecError::Denied("cat".into())));
        let e = run(&ext, &denied, ws.path()).expect_err("denied");
        assert_eq!(e, StageError::Denied(sluice_sdk::Capability::exec("cat")));

        let missing = Fake::ok(1, "", "cat: x.sarif: No such file or directory\n");
        let e = run(&ext, &missing, ws.path()).expect_err("no output");
        assert!(matches!(e, StageError::Failed(_)));
        assert!(
            e.message()
                .contains("exited 1 and produced no SARIF log; stderr: cat: x.sarif: No such file"),
            "{e}"
        );

        let garbage = Fake::ok(0, "{\"version\": \"2.1.0\"}", "");
        let e = run(&ext, &garbage, ws.path()).expect_err("not sarif");
        assert!(e.message().contains("is not a SARIF 2.1.0 log"), "{e}");

        let cargo = external(r#"{"command": ["cargo", "clippy"], "format": "clippy-json"}"#);
        let broken = Fake::ok(101, "", "error: could not find `Cargo.toml`\n");
        let e = run(&cargo, &broken, ws.path()).expect_err("cargo failed");
        assert!(e.message().contains("exited 101 without reporting a diagnostic; stderr: error: could not find `Cargo.toml`"), "{e}");

        let timed_out = Fake::answer(Ok(ExecOutput {
            status: -1,
            stdout: vec![],
            stderr: vec![],
            truncated: false,
            timed_out: true,
        }));
        let e = run(&cargo, &timed_out, ws.path()).expect_err("timeout");
        assert!(e.message().contains("killed after its timeout"), "{e}");
    }

    #[test]
    fn resolver_maps_host_paths_into_the_workspace() {
        let ws = workspace();
        let r = Resolver::new(ws.path(), Some("svc"));
        assert_eq!(r.path("src/lib.rs"), "svc/src/lib.rs");
        assert_eq!(
            r.path("src/main.rs"),
            "src/main.rs",
            "exists only at the root"
        );
        assert_eq!(
            r.path("src/new.rs"),
            "svc/src/new.rs",
            "missing: relative to cwd"
        );
        assert_eq!(
            r.path("/home/ci/build/repo/svc/src/lib.rs"),
            "svc/src/lib.rs"
        );
        assert_eq!(
            r.path("/usr/lib/rustlib/src/core.rs"),
            "/usr/lib/rustlib/src/core.rs"
        );
        let ws_abs = format!("{}/app.py", ws.path().display());
        assert_eq!(r.path(&ws_abs), "app.py");
        assert_eq!(r.uri("file:///home/ci/repo/app.py", None), "app.py");
        assert_eq!(r.uri("my%20file.py", None), "svc/my file.py");
        assert_eq!(r.uri("app.py", Some("file:///home/ci/repo/")), "app.py");
        let root = Resolver::new(ws.path(), None);
        assert_eq!(root.path("./a/../app.py"), "app.py");
    }

    #[test]
    fn inside_refuses_toolchain_and_outside_paths() {
        let ws = workspace();
        std::fs::create_dir_all(ws.path().join("src/macros")).expect("mkdir");
        std::fs::write(ws.path().join("src/macros/mod.rs"), "x\n").expect("write");
        let r = Resolver::new(ws.path(), None);
        assert_eq!(r.inside("src/main.rs").as_deref(), Some("src/main.rs"));
        assert_eq!(
            r.inside("/home/ci/repo/svc/src/lib.rs").as_deref(),
            Some("svc/src/lib.rs")
        );
        for outside in [
            "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/macros/mod.rs",
            "/root/.cargo/registry/src/index.crates.io-1/serde-1.0.0/src/main.rs",
            "/usr/lib/rustlib/src/rust/library/std/src/macros/mod.rs",
            "/elsewhere/nothing.rs",
            "../sibling/src/lib.rs",
        ] {
            assert_eq!(r.inside(outside), None, "{outside}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
