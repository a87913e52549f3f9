//! Turning a [`LintResult`] into the stage's [`Report`]: metrics, the
//! optional `lint` gate, outputs and a short markdown summary.

use sluice_sdk::{Gate, Report};

use crate::config::FailOn;
use crate::finding::{Counts, Finding, SELF_TOOL};
use crate::lint::LintResult;

/// How many findings the summary lists.
pub const SUMMARY_FINDINGS: usize = 10;

/// The artifact the stage writes.
pub const SARIF_ARTIFACT: &str = "lint.sarif";

/// The report for `result`.
///
/// Metrics: `lint.errors`, `lint.warnings`, `lint.notes`, `lint.files`.
/// Outputs: `errors`, `warnings`, `sarif` (the artifact's name). With
/// `fail-on: error|warning` the stage adds its own `lint` gate.
pub fn build(result: &LintResult, fail_on: FailOn) -> Report {
    let counts = Counts::of(result.findings());
    let mut report = Report::new(summary(result, counts))
        .metric("lint.errors", counts.errors as f64)
        .metric("lint.warnings", counts.warnings as f64)
        .metric("lint.notes", counts.notes as f64)
        .metric("lint.files", result.files() as f64)
        .output("errors", counts.errors.to_string())
        .output("warnings", counts.warnings.to_string())
        .output("sarif", SARIF_ARTIFACT);
    let failing = match fail_on {
        FailOn::Never => None,
        FailOn::Error => Some((counts.errors, "error")),
        FailOn::Warning => Some((counts.errors + counts.warnings, "error or warning")),
    };
    if let Some((n, what)) = failing {
        let gate = if n == 0 {
            Gate::pass("lint", format!("no {what} findings"))
        } else {
            Gate::fail(
                "lint",
                format!(
                    "{n} {what} finding{} (fail-on: {})",
                    plural(n),
                    fail_on_name(fail_on)
                ),
            )
        };
        report = report.gate(gate.observed(n as f64).threshold(0.0));
    }
    report
}

/// First line: the counts and what was checked; then the first findings,
/// errors first.
///
/// - built-in checks on: `8 errors, 3 warnings in 16 files (sluice-lint, ruff)`
/// - built-in checks off: `2 errors from clippy (external); built-in checks off`
/// - nothing ran: `nothing checked: built-in checks off and no external linters`
fn summary(result: &LintResult, c: Counts) -> String {
    let mut counts = Vec::new();
    if c.errors > 0 || (c.warnings == 0 && c.notes == 0) {
        counts.push(format!("{} error{}", c.errors, plural(c.errors)));
    }
    if c.warnings > 0 {
        counts.push(format!("{} warning{}", c.warnings, plural(c.warnings)));
    }
    if c.notes > 0 {
        counts.push(format!("{} note{}", c.notes, plural(c.notes)));
    }
    let counts = counts.join(", ");
    let external = result.external_tools();
    let mut text = if result.builtin {
        let files = result.files();
        let tools: Vec<&str> = std::iter::once(SELF_TOOL)
            .chain(external.iter().copied())
            .collect();
        format!(
            "{counts} in {files} file{} ({})",
            plural(files),
            tools.join(", ")
        )
    } else if external.is_empty() {
        "nothing checked: built-in checks off and no external linters".to_string()
    } else {
        format!(
            "{counts} from {} (external); built-in checks off",
            external.join(", ")
        )
    };
    let mut findings: Vec<&Finding> = result.findings().collect();
    // Stable: keeps file order within a level.
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    if !findings.is_empty() {
        text.push_str("\n\n");
        for f in findings.iter().take(SUMMARY_FINDINGS) {
            text.push_str(&format!("- `{}`\n", f.to_string().replace('`', "'")));
        }
        let rest = findings.len().saturating_sub(SUMMARY_FINDINGS);
        if rest > 0 {
            text.push_str(&format!(
                "- … and {rest} more (see the stage log and `{SARIF_ARTIFACT}`)\n"
            ));
        }
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn fail_on_name(f: FailOn) -> &'static str {
    match f {
        FailOn::Error => "error",
        FailOn::Warning => "warning",
        FailOn::Never => "never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::ToolRun;
    use crate::finding::{Level, Location};
    use sluice_sdk::Verdict;
    use std::collections::BTreeSet;

    fn result(levels: &[Level]) -> LintResult {
        let mut run = ToolRun::new(SELF_TOOL);
        for (i, l) in levels.iter().enumerate() {
            run.findings.push(Finding {
                tool: SELF_TOOL.into(),
                rule: "r".into(),
                level: *l,
                message: format!("m{i}"),
                location: Some(Location::at(format!("f{i}.txt"), Some(1), Some(1))),
            });
        }
        LintResult {
            runs: vec![run, ToolRun::new("ruff")],
            builtin: true,
            checked: ["f0.txt", "f1.txt", "f2.txt"]
                .map(String::from)
                .into_iter()
                .collect(),
            binary: 0,
            notes: vec![],
        }
    }

    fn metric(r: &Report, name: &str) -> Option<f64> {
        r.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    #[test]
    fn metrics_outputs_and_summary() {
        let r = build(
            &result(&[Level::Warning, Level::Error, Level::Note]),
            FailOn::Never,
        );
        assert_eq!(metric(&r, "lint.errors"), Some(1.0));
        assert_eq!(metric(&r, "lint.warnings"), Some(1.0));
        assert_eq!(metric(&r, "lint.notes"), Some(1.0));
        assert_eq!(metric(&r, "lint.files"), Some(3.0));
        assert!(r.gates.is_empty());
        assert!(r.outputs.contains(&("errors".into(), "1".into())));
        let lines: Vec<&str> = r.summary.lines().collect();
        assert_eq!(
            lines[0],
            "1 error, 1 warning, 1 note in 3 files (sluice-lint, ruff)"
        );
        assert_eq!(lines[2], "- `f1.txt:1:1 error r m1`", "errors first");
        assert_eq!(lines[3], "- `f0.txt:1:1 warning r m0`");
    }

    #[test]
    fn clean_and_long_summaries() {
        let r = build(&result(&[]), FailOn::Never);
        assert_eq!(r.summary, "0 errors in 3 files (sluice-lint, ruff)");
        let r = build(&result(&[Level::Warning; 12]), FailOn::Never);
        assert!(
            r.summary.starts_with("12 warnings in 3 files"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("- … and 2 more"), "{}", r.summary);
    }

    fn external_finding(tool: &str, level: Level, path: Option<&str>) -> Finding {
        Finding {
            tool: tool.into(),
            rule: "x".into(),
            level,
            message: "m".into(),
            location: path.map(|p| Location::at(p, Some(1), None)),
        }
    }

    #[test]
    fn builtin_off_says_what_was_checked() {
        let mut clippy = ToolRun::new("clippy");
        clippy.findings = vec![
            external_finding("clippy", Level::Error, Some("src/lib.rs")),
            external_finding("clippy", Level::Error, Some("src/main.rs")),
        ];
        let result = LintResult {
            runs: vec![clippy],
            builtin: false,
            checked: BTreeSet::new(),
            binary: 0,
            notes: vec![],
        };
        let r = build(&result, FailOn::Never);
        assert_eq!(
            r.summary.lines().next(),
            Some("2 errors from clippy (external); built-in checks off")
        );
        assert_eq!(
            metric(&r, "lint.files"),
            Some(2.0),
            "files from all sources"
        );

        let nothing = LintResult {
            runs: vec![],
            builtin: false,
            checked: BTreeSet::new(),
            binary: 0,
            notes: vec![],
        };
        assert_eq!(
            build(&nothing, FailOn::Never).summary,
            "nothing checked: built-in checks off and no external linters"
        );
    }

    #[test]
    fn files_count_external_findings_outside_the_checked_set() {
        let mut r = result(&[Level::Warning]);
        r.runs[1].findings = vec![
            // Already counted by the built-in checks.
            external_finding("ruff", Level::Warning, Some("f0.txt")),
            external_finding("ruff", Level::Warning, Some("src/app.py")),
            external_finding("ruff", Level::Warning, Some("src/app.py")),
            external_finding("ruff", Level::Note, None),
            external_finding("ruff", Level::Note, Some("/usr/lib/python3/x.py")),
        ];
        let report = build(&r, FailOn::Never);
        assert_eq!(metric(&report, "lint.files"), Some(4.0));
        assert!(
            report
                .summary
                .starts_with("4 warnings, 2 notes in 4 files (sluice-lint, ruff)"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn fail_on_adds_a_gate() {
        let r = build(&result(&[Level::Warning]), FailOn::Error);
        assert_eq!(r.gates[0].verdict, Verdict::Pass);
        let r = build(&result(&[Level::Warning]), FailOn::Warning);
        assert_eq!(r.gates[0].verdict, Verdict::Fail);
        assert_eq!(r.gates[0].observed, Some(1.0));
        assert_eq!(
            r.gates[0].message,
            "1 error or warning finding (fail-on: warning)"
        );
    }
}
