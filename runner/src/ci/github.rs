//! GitHub Actions: workflow commands (`::group::`, `::error`, `::warning`,
//! `::notice`), the Markdown job summary (`$GITHUB_STEP_SUMMARY`) and step
//! outputs (`$GITHUB_OUTPUT`), as GitHub's "Workflow commands for GitHub
//! Actions" page specifies them.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use sluice_pipeline::gates::Verdict;
use sluice_record::{RunRecord, RunStatus, StageState};

use super::findings::{Level, Reports};

/// Annotations of one kind GitHub shows per step (10 errors, 10 warnings,
/// 10 notices); it drops the rest without a word.
pub const ANNOTATIONS_PER_KIND: usize = 10;

/// Failed tests listed by name in the job summary.
const SUMMARY_TESTS: usize = 20;

/// A workflow command's message: `%`, CR and LF percent-encoded (as the
/// actions toolkit's `escapeData`), so a message is always one line and
/// cannot start another command.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: [`escape_data`] plus `:` and `,`,
/// which would end the value (`escapeProperty`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::command k=v,k=v::message` with everything escaped.
pub fn command(name: &str, properties: &[(&str, String)], message: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        let sep = if i == 0 { ' ' } else { ',' };
        let _ = write!(line, "{sep}{key}={}", escape_property(value));
    }
    let _ = write!(line, "::{}", escape_data(message));
    line
}

/// The line opening a log group.
pub fn group_start(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

/// The line closing the open log group.
pub const GROUP_END: &str = "::endgroup::";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The annotation lines for `reports`: failed tests (as errors), then SARIF
/// findings, at most `cap` of each kind; when some are left out, a last
/// plain line says how many and where they all are.
pub fn annotations(reports: &Reports, cap: usize, run_id: &str) -> Vec<String> {
    let mut lines = Vec::new();
    // Shown / left out, by kind: error, warning, notice.
    let mut shown = [0usize; 3];
    let mut left = [0usize; 3];
    let mut emit = |kind: usize, line: String| {
        if shown[kind] < cap {
            shown[kind] += 1;
            lines.push(line);
        } else {
            left[kind] += 1;
        }
    };
    for t in &reports.failed_tests {
        let mut props = Vec::new();
        if let Some(file) = &t.file {
            props.push(("file", file.clone()));
            if let Some(line) = t.line {
                props.push(("line", line.to_string()));
            }
        }
        props.push(("title", format!("{}: test {} failed", t.stage, t.name)));
        emit(0, command("error", &props, &t.message));
    }
    for f in &reports.findings {
        let (kind, name) = match f.level {
            Level::Error => (0, "error"),
            Level::Warning => (1, "warning"),
            Level::Note => (2, "notice"),
        };
        let mut props = Vec::new();
        if let Some(path) = &f.path {
            props.push(("file", path.clone()));
            for (key, value) in [
                ("line", f.line),
                ("endLine", f.end_line),
                ("col", f.column),
                ("endColumn", f.end_column),
            ] {
                if let Some(v) = value {
                    props.push((key, v.to_string()));
                }
            }
        }
        let title = match &f.rule {
            Some(rule) => format!("{}: {rule}", f.stage),
            None => f.stage.clone(),
        };
        props.push(("title", title));
        emit(kind, command(name, &props, &f.message));
    }
    let total: usize = left.iter().sum();
    if total > 0 {
        let parts: Vec<String> = [
            ("error", "errors"),
            ("warning", "warnings"),
            ("notice", "notices"),
        ]
        .iter()
        .zip(left)
        .filter(|(_, n)| *n > 0)
        .map(|((one, many), n)| plural(n, one, many))
        .collect();
        lines.push(format!(
            "sluice: {} not annotated ({}): GitHub shows at most {cap} errors, {cap} warnings and {cap} notices per step. The job summary counts them all; `sluice artifacts export {run_id} --to DIR` copies out the SARIF and JUnit files.",
            plural(total, "finding was", "findings were"),
            parts.join(", ")
        ));
    }
    lines
}

/// Text for a Markdown table cell or line: no line breaks, and every
/// character Markdown or HTML would act on escaped, so a name or message
/// from a stage cannot add links, images, HTML or table columns.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn state_mark(state: StageState) -> &'static str {
    match state {
        StageState::Passed => "✅",
        StageState::Warned => "⚠️",
        StageState::Failed => "❌",
        StageState::Blocked => "⛔",
        StageState::Cancelled => "✖️",
        StageState::Skipped => "⏭️",
        StageState::AwaitingApproval => "⏸️",
        _ => "…",
    }
}

/// A number as people write it: `3`, not `3.0`.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The job summary of a finished run, in GitHub-flavoured Markdown.
pub fn summary(record: &RunRecord, reports: &Reports) -> String {
    let status = match record.status {
        RunStatus::Passed => "✅ passed",
        RunStatus::Failed => "❌ failed",
        RunStatus::Paused => "⏸️ paused",
        RunStatus::Running | RunStatus::Interrupted => "✖️ interrupted",
    };
    let mut md = format!(
        "### sluice run {} · {} · {status}\n\n| Stage | State | Duration | Gates | Artifacts |\n| --- | --- | --- | --- | --- |\n",
        markdown(&record.run_id),
        markdown(&record.pipeline),
    );
    for (name, r) in &record.stages {
        let duration = r
            .duration_ms
            .map(|ms| format!("{:.2}s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "–".into());
        let gates: Vec<String> = r
            .gates
            .iter()
            .map(|g| {
                let mark = match g.verdict {
                    Verdict::Pass => "✅",
                    Verdict::Warn => "⚠️",
                    _ => "❌",
                };
                let observed = g.observed.map(number).unwrap_or_else(|| "no value".into());
                match &g.condition {
                    Some(c) => format!(
                        "{mark} {} = {} ({})",
                        markdown(&g.name),
                        observed,
                        markdown(c)
                    ),
                    None => format!("{mark} {} = {}", markdown(&g.name), observed),
                }
            })
            .collect();
        let artifacts: Vec<String> = r
            .artifacts
            .iter()
            .map(|a| format!("{} ({})", markdown(&a.name), bytesize::ByteSize(a.size)))
            .collect();
        let cell = |v: Vec<String>| {
            if v.is_empty() {
                "–".to_string()
            } else {
                v.join("<br>")
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} {} | {duration} | {} | {} |",
            markdown(name),
            state_mark(r.state),
            r.state.as_str(),
            cell(gates),
            cell(artifacts)
        );
    }
    let count = |level| reports.findings.iter().filter(|f| f.level == level).count();
    let (errors, warnings, notes) = (
        count(Level::Error),
        count(Level::Warning),
        count(Level::Note),
    );
    if errors + warnings + notes > 0 || !reports.failed_tests.is_empty() {
        let _ = writeln!(
            md,
            "\n**Findings:** {}, {}, {} (SARIF); {}.",
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings"),
            plural(notes, "note", "notes"),
            plural(reports.failed_tests.len(), "failed test", "failed tests"),
        );
    }
    if !reports.failed_tests.is_empty() {
        md.push_str("\n**Failed tests:**\n\n");
        for t in reports.failed_tests.iter().take(SUMMARY_TESTS) {
            let at = match (&t.file, t.line) {
                (Some(f), Some(l)) => format!(" ({}:{l})", markdown(f)),
                (Some(f), None) => format!(" ({})", markdown(f)),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "- {}: {}{at}: {}",
                markdown(&t.stage),
                markdown(&t.name),
                markdown(&t.message)
            );
        }
        if reports.failed_tests.len() > SUMMARY_TESTS {
            let _ = writeln!(
                md,
                "- … and {} more",
                reports.failed_tests.len() - SUMMARY_TESTS
            );
        }
    }
    for p in &reports.problems {
        let _ = writeln!(md, "\n⚠️ {}", markdown(p));
    }
    md.push('\n');
    md
}

/// A step output's name: `[A-Za-z0-9_-]`, starting with a letter or `_`.
pub fn output_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or the heredoc form for a
/// value with a line break. The delimiter is derived from the value's hash
/// and checked not to occur in it, so a value cannot end its own entry
/// early and set other outputs.
pub fn output_entry(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let mut delimiter = format!("ghadelimiter_{}", &hex::encode(Sha256::digest(value))[..32]);
    while value.contains(&delimiter) {
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// The `$GITHUB_OUTPUT` text of a run: `run_id`, `status`, and every
/// stage output as `<stage>_<name>`.
pub fn outputs(record: &RunRecord) -> String {
    let status = match record.status {
        RunStatus::Passed => "passed",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Running | RunStatus::Interrupted => "interrupted",
    };
    let mut out = output_entry("run_id", &record.run_id);
    out.push_str(&output_entry("status", status));
    for (stage, r) in &record.stages {
        for (name, value) in &r.outputs {
            out.push_str(&output_entry(
                &output_name(&format!("{stage}_{name}")),
                value,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::findings::{FailedTest, Finding};
    use super::*;

    fn finding(level: Level, message: &str) -> Finding {
        Finding {
            stage: "lint".into(),
            rule: Some("R,1:x".into()),
            level,
            message: message.into(),
            path: Some("src/a,b:c.py".into()),
            line: Some(3),
            column: Some(4),
            end_line: None,
            end_column: None,
            fingerprint: None,
        }
    }

    #[test]
    fn messages_and_properties_are_escaped() {
        assert_eq!(escape_data("100%\r\n::error::x"), "100%25%0D%0A::error::x");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        let line = command(
            "error",
            &[("file", "a,b.py".into()), ("title", "t: x".into())],
            "50% done\n::warning::injected",
        );
        assert_eq!(
            line,
            "::error file=a%2Cb.py,title=t%3A x::50%25 done%0A::warning::injected"
        );
        assert_eq!(line.lines().count(), 1);
        assert_eq!(group_start("a\nb"), "::group::a%0Ab");
    }

    #[test]
    fn annotations_are_capped_per_kind_and_the_rest_counted() {
        let mut reports = Reports::default();
        for i in 0..12 {
            reports
                .findings
                .push(finding(Level::Error, &format!("e{i}")));
        }
        reports.findings.push(finding(Level::Warning, "w"));
        reports.findings.push(finding(Level::Note, "n"));
        reports.failed_tests.push(FailedTest {
            stage: "test".into(),
            name: "pkg.t".into(),
            message: "boom".into(),
            file: None,
            line: None,
        });
        let lines = annotations(&reports, 10, "RUN");
        assert_eq!(lines.len(), 13, "{lines:#?}");
        assert_eq!(lines[0], "::error title=test%3A test pkg.t failed::boom");
        assert_eq!(
            lines[1],
            "::error file=src/a%2Cb%3Ac.py,line=3,col=4,title=lint%3A R%2C1%3Ax::e0"
        );
        assert!(lines[10].starts_with("::warning "), "{}", lines[10]);
        assert!(lines[11].starts_with("::notice "), "{}", lines[11]);
        assert!(
            lines[12].starts_with(
                "sluice: 3 findings were not annotated (3 errors): GitHub shows at most 10 errors"
            ),
            "{}",
            lines[12]
        );
        assert!(annotations(&Reports::default(), 10, "RUN").is_empty());
    }

    #[test]
    fn markdown_cells_cannot_break_the_table_or_add_html() {
        assert_eq!(
            markdown("a|b <img src=x> [l](u) &amp;\nx"),
            "a\\|b \\<img src=x\\> \\[l\\]\\(u\\) &amp;amp; x"
        );
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
    }

    #[test]
    fn outputs_are_sanitized_and_multiline_values_use_a_heredoc() {
        assert_eq!(output_name("build_image.digest"), "build_image_digest");
        assert_eq!(output_name("1st_x"), "_1st_x");
        assert_eq!(output_entry("a", "b=c"), "a=b=c\n");
        let entry = output_entry("a", "x\nevil=1");
        let mut lines = entry.lines();
        let first = lines.next().unwrap_or_default();
        let delimiter = first.strip_prefix("a<<").unwrap_or_default();
        assert!(delimiter.starts_with("ghadelimiter_"), "{entry}");
        assert_eq!(lines.collect::<Vec<_>>(), vec!["x", "evil=1", delimiter]);
    }
}
