//! One lint pass: the stage's own checks over the selected files, then each
//! external linter, collected as one [`ToolRun`] per tool. Knows nothing of
//! the SDK's report types, so it runs natively in tests.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;

use sluice_sdk::{Capability, StageError};

use crate::checks::{self, Outcome};
use crate::config::Settings;
use crate::external::{self, Exec, RuleDoc, ToolRun};
use crate::finding::{Finding, SELF_TOOL};
use crate::rules::Rule;
use crate::walk;

/// What a lint pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintResult {
    /// `sluice-lint` first (when `builtin`), then each external tool.
    pub runs: Vec<ToolRun>,
    /// Whether the stage's own checks ran (`builtin`).
    pub builtin: bool,
    /// Files the stage's own checks looked at (workspace-relative): text
    /// files read, plus files reported as too large. Binary files are not
    /// counted.
    pub checked: BTreeSet<String>,
    /// Binary files that were skipped.
    pub binary: usize,
    /// Things worth a warning in the log (unreadable paths, cut output).
    pub notes: Vec<String>,
}

impl LintResult {
    /// Every finding, in run order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.runs.iter().flat_map(|r| r.findings.iter())
    }

    /// Files looked at, from all sources: those the stage's own checks read
    /// and those external tools reported findings in (external tools do
    /// not say which files they read without a finding). Findings without
    /// a file, or in a file outside the workspace, do not count.
    pub fn files(&self) -> usize {
        let external = self
            .runs
            .iter()
            .skip(usize::from(self.builtin))
            .flat_map(|r| r.findings.iter())
            .filter_map(|f| f.location.as_ref())
            .map(|l| l.path.as_str())
            .filter(|p| !p.is_empty() && !Path::new(p).is_absolute())
            .filter(|p| !self.checked.contains(*p));
        let external: BTreeSet<&str> = external.collect();
        self.checked.len() + external.len()
    }

    /// The external tools that ran, in order, each once.
    pub fn external_tools(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let own = usize::from(self.builtin);
        for r in self.runs.iter().skip(own) {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
        names
    }
}

/// Lints `workspace` (the guest's `/workspace`) as `settings` say, running
/// external linters through `exec`.
pub fn lint(
    workspace: &Path,
    settings: &Settings,
    exec: &dyn Exec,
) -> Result<LintResult, StageError> {
    let mut result = LintResult {
        runs: Vec::new(),
        builtin: settings.builtin,
        checked: BTreeSet::new(),
        binary: 0,
        notes: Vec::new(),
    };
    if settings.builtin {
        let own = builtin(workspace, settings, &mut result)?;
        result.runs.push(own);
    }
    for ext in &settings.external {
        let outcome = external::run(ext, exec, workspace)?;
        result.notes.extend(outcome.notes);
        result.runs.extend(outcome.runs);
    }
    Ok(result)
}

/// The stage's own checks.
fn builtin(
    workspace: &Path,
    settings: &Settings,
    result: &mut LintResult,
) -> Result<ToolRun, StageError> {
    if !workspace.is_dir() {
        sluice_sdk::error(
            "the lint stage reads the workspace (or set `builtin: false` to run only external \
             linters)",
        );
        return Err(StageError::denied(Capability::WorkspaceRead));
    }
    for (i, root) in settings.paths.iter().enumerate() {
        if let Err(e) = std::fs::symlink_metadata(workspace.join(root)) {
            return Err(if e.kind() == ErrorKind::NotFound {
                StageError::invalid_config(format!(
                    "with.paths[{i}]: `{root}` does not exist in the workspace; give a directory or file relative to the workspace root"
                ))
            } else {
                StageError::failed(format!("reading `{root}` in the workspace: {e}"))
            });
        }
    }
    let walked = walk::walk(workspace, &settings.paths, &settings.selection)
        .map_err(|e| StageError::failed(format!("walking the workspace: {e}")))?;
    for (path, e) in walked.unreadable {
        result.notes.push(format!("skipped `{path}`: {e}"));
    }

    let mut run = ToolRun::new(SELF_TOOL);
    run.version = Some(env!("CARGO_PKG_VERSION").to_string());
    run.column_kind = Some("unicodeCodePoints".into());
    for rule in Rule::ALL {
        if let Some(level) = settings.level(rule) {
            run.rules.insert(
                rule.name().to_string(),
                RuleDoc {
                    level: Some(level),
                    description: Some(rule.description().to_string()),
                    help_uri: None,
                },
            );
        }
    }
    for entry in walked.files {
        if let Some(hit) = checks::size::check(entry.size, settings.max_file_size) {
            result.checked.insert(entry.rel.clone());
            run.findings
                .extend(checks::to_finding(&entry.rel, hit, settings));
            continue;
        }
        let bytes = match std::fs::read(&entry.path) {
            Ok(b) => b,
            Err(e) => {
                result.notes.push(format!("skipped `{}`: {e}", entry.rel));
                continue;
            }
        };
        match checks::check_file(&entry.rel, &bytes, settings) {
            Outcome::Binary => result.binary += 1,
            Outcome::Checked(found) => {
                result.checked.insert(entry.rel.clone());
                run.findings.extend(found);
            }
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::finding::Counts;
    use sluice_sdk::exec::{ExecError, ExecOutput};
    use std::time::Duration;

    struct NoExec;
    impl Exec for NoExec {
        fn run(
            &self,
            program: &str,
            _: &[String],
            _: Option<&str>,
            _: Option<Duration>,
        ) -> Result<ExecOutput, ExecError> {
            Err(ExecError::Denied(program.to_string()))
        }
    }

    fn settings(json: &str) -> Settings {
        let ctx = sluice_sdk::Context::for_test("lint", json);
        let cfg: Config = ctx.config().expect("config");
        Settings::from_config(cfg).expect("settings")
    }

    fn workspace(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
        dir
    }

    #[test]
    fn counts_files_findings_and_binaries() {
        let ws = workspace(&[
            ("ok.yaml", b"a: 1\n"),
            ("bad.json", b"{\"a\": }\n"),
            ("notes.txt", b"trailing \nno newline"),
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0"),
            ("target/x.json", b"{"),
            ("big.txt", &[b'x'; 300]),
        ]);
        let s = settings(r#"{"max-file-size": 200}"#);
        let r = lint(ws.path(), &s, &NoExec).expect("lints");
        assert_eq!(r.files(), 4, "ok.yaml bad.json notes.txt big.txt");
        assert_eq!(r.binary, 1);
        let c = Counts::of(r.findings());
        assert_eq!((c.errors, c.warnings), (1, 3), "{:#?}", r.runs);
        let lines: Vec<String> = r.findings().map(|f| f.to_string()).collect();
        assert!(
            lines[0].starts_with("bad.json:1:7 error json-syntax invalid JSON: "),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("big.txt warning large-file file is 300 B"),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            "notes.txt:1:9 warning trailing-whitespace trailing whitespace (1 character)"
        );
        assert_eq!(
            lines[3],
            "notes.txt:2:11 warning final-newline file does not end with a newline"
        );
        assert_eq!(r.runs[0].rules.len(), 8, "every enabled rule is documented");
    }

    #[test]
    fn missing_workspace_or_path_is_explained() {
        let s = settings("{}");
        let e = lint(Path::new("/nonexistent-workspace"), &s, &NoExec).expect_err("no workspace");
        assert!(matches!(e, StageError::Denied(_)));
        assert!(e.message().contains("workspace: read"), "{e}");
        let ws = workspace(&[("a.txt", b"a\n")]);
        let s = settings(r#"{"paths": [".", "srcs"]}"#);
        let e = lint(ws.path(), &s, &NoExec).expect_err("no such path");
        assert!(
            e.message()
                .starts_with("with.paths[1]: `srcs` does not exist"),
            "{e}"
        );
    }

    #[test]
    fn builtin_off_runs_only_externals() {
        let s = settings(
            r#"{"builtin": false, "external": [{"command": ["cat", "x"], "format": "sarif"}]}"#,
        );
        let e = lint(Path::new("/nonexistent-workspace"), &s, &NoExec).expect_err("denied");
        assert_eq!(e, StageError::Denied(Capability::exec("cat")));
        let s = settings(r#"{"builtin": false}"#);
        let r = lint(Path::new("/nonexistent-workspace"), &s, &NoExec).expect("nothing to do");
        assert!(r.runs.is_empty());
    }
}
