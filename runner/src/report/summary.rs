//! The two summaries the console prints: what a stage's SARIF reports
//! found (counts by level and rule, the first few findings, where the rest
//! are), and the table of stages at the end of a run.

use std::path::Path;

use super::escape_controls as esc;
use crate::ci::findings::{self, Finding, Level};
use sluice_pipeline::gates::Verdict;
use sluice_record::artifacts::Cas;
use sluice_record::{RunRecord, StageRecord, StageState};

/// How many rules the `by rule:` line names before `… n more rules`.
pub const TOP_RULES: usize = 5;

/// What one SARIF artifact of a stage gave.
#[derive(Debug)]
pub struct SarifFile {
    /// The artifact's name, e.g. `lint.sarif`.
    pub name: String,
    /// Its findings, or one sentence saying why it could not be read.
    pub findings: Result<Vec<Finding>, String>,
}

/// The SARIF artifacts of `record` (stage `stage`) read from `cas`, each
/// blob checked against its digest first; paths under `cwd` are made
/// relative. A stage without SARIF artifacts gives an empty list.
pub fn read_sarif(stage: &str, record: &StageRecord, cas: &Cas, cwd: &Path) -> Vec<SarifFile> {
    record
        .artifacts
        .iter()
        .filter(|a| findings::is_sarif(a))
        .map(|a| SarifFile {
            name: a.name.clone(),
            findings: findings::read(cas, a)
                .map_err(|why| format!("could not be read: {why}"))
                .and_then(|text| {
                    findings::sarif_findings(stage, &text, cwd)
                        .map_err(|why| format!("is not SARIF: {why}"))
                }),
        })
        .collect()
}

/// `n` with a comma every three digits: `10,669`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 error` / `2 errors`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "note",
    }
}

/// Errors first, then warnings, then notes.
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 0,
        Level::Warning => 1,
        Level::Note => 2,
    }
}

/// One finding as `path:line: level rule message` (control characters
/// escaped: SARIF text comes from the stage).
pub fn finding_line(f: &Finding) -> String {
    let at = match (&f.path, f.line) {
        (Some(path), Some(line)) => format!("{}:{line}:", esc(path)),
        (Some(path), None) => format!("{}:", esc(path)),
        (None, _) => "(no location)".to_string(),
    };
    let rule = f.rule.as_deref().unwrap_or("(no rule)");
    let message = f.message.lines().next().unwrap_or("");
    format!(
        "{at} {} {} {}",
        level_word(f.level),
        esc(rule),
        esc(message)
    )
}

/// The summary lines (without indentation) of the SARIF files of stage
/// `stage` of run `run_id`: a line of counts by level, a line of counts by
/// rule (the [`TOP_RULES`] most frequent), then the first `limit`
/// findings, errors first (`None`: every finding), then `… and N more in
/// <file> (<command to get it>)`. With `list == false` (`--quiet`) only
/// the two count lines. A file that cannot be read is one line saying so.
/// No SARIF files: no lines.
pub fn findings_summary(
    run_id: &str,
    stage: &str,
    files: &[SarifFile],
    limit: Option<usize>,
    list: bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut all: Vec<(&str, &Finding)> = Vec::new();
    let mut readable = Vec::new();
    for file in files {
        match &file.findings {
            Ok(found) => {
                readable.push(file.name.as_str());
                all.extend(found.iter().map(|f| (file.name.as_str(), f)));
            }
            Err(why) => lines.push(format!(
                "findings: {stage}/{} {}",
                esc(&file.name),
                esc(why)
            )),
        }
    }
    if readable.is_empty() {
        return lines;
    }
    let names = readable
        .iter()
        .map(|n| esc(n).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if all.is_empty() {
        lines.push(format!("findings: none in {names}"));
        return lines;
    }
    let by_level = [Level::Error, Level::Warning, Level::Note]
        .iter()
        .map(|l| (*l, all.iter().filter(|(_, f)| f.level == *l).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| match l {
            Level::Error => count(n, "error", "errors"),
            Level::Warning => count(n, "warning", "warnings"),
            Level::Note => count(n, "note", "notes"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    lines.push(format!(
        "findings: {} in {names} ({by_level})",
        thousands(all.len())
    ));
    let mut rules: Vec<(&str, usize)> = Vec::new();
    for (_, f) in &all {
        let rule = f.rule.as_deref().unwrap_or("(no rule)");
        match rules.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => *n += 1,
            None => rules.push((rule, 1)),
        }
    }
    // Most frequent first; ties by name, so the line is the same each run.
    rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut by_rule = rules
        .iter()
        .take(TOP_RULES)
        .map(|(r, n)| format!("{} {}", esc(r), thousands(*n)))
        .collect::<Vec<_>>()
        .join(" · ");
    if rules.len() > TOP_RULES {
        let more = rules.len() - TOP_RULES;
        let word = if more == 1 { "rule" } else { "rules" };
        by_rule.push_str(&format!(" · {} more {word}", thousands(more)));
    }
    lines.push(format!("by rule: {by_rule}"));
    if !list {
        return lines;
    }
    // Stable: within a level, the order the tool wrote them in.
    all.sort_by_key(|(_, f)| severity(f.level));
    let shown = limit.unwrap_or(all.len()).min(all.len());
    for (_, f) in &all[..shown] {
        lines.push(finding_line(f));
    }
    let rest = &all[shown..];
    if !rest.is_empty() {
        // In the order of the stage's artifacts.
        let in_files: Vec<&str> = readable
            .iter()
            .copied()
            .filter(|n| rest.iter().any(|(name, _)| name == n))
            .collect();
        let hint = match in_files.as_slice() {
            [one] => format!("sluice artifacts get {run_id} {stage}/{}", esc(one)),
            _ => format!("sluice artifacts export {run_id} {stage} --to DIR"),
        };
        let where_ = in_files
            .iter()
            .map(|n| esc(n).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "… and {} more in {where_} ({hint})",
            thousands(rest.len())
        ));
    }
    lines
}

/// The symbol and colour (ANSI SGR code) of a stage state.
pub fn state_mark(state: StageState) -> (&'static str, &'static str) {
    match state {
        StageState::Passed => ("✓", "32"),
        StageState::Warned => ("!", "33"),
        StageState::Failed | StageState::Blocked | StageState::Cancelled => ("✗", "31"),
        StageState::Skipped => ("-", "2"),
        StageState::Pending => ("·", "2"),
        StageState::Running => ("▶", "36"),
        StageState::AwaitingApproval => ("⏸", "35"),
    }
}

/// `n passed / n warned / n failed` (and `/ n inconclusive` when there
/// are any) for a stage's gates; `-` without gates.
pub fn gate_counts(record: &StageRecord) -> String {
    if record.gates.is_empty() {
        return "-".to_string();
    }
    let n = |v: Verdict| record.gates.iter().filter(|g| g.verdict == v).count();
    let mut text = format!(
        "{} passed / {} warned / {} failed",
        n(Verdict::Pass),
        n(Verdict::Warn),
        n(Verdict::Fail)
    );
    let inconclusive = n(Verdict::Inconclusive);
    if inconclusive > 0 {
        text.push_str(&format!(" / {inconclusive} inconclusive"));
    }
    text
}

/// Seconds with two decimals, `-` when the stage did not run.
pub fn duration(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => format!("{:.2}s", ms as f64 / 1000.0),
        None => "-".to_string(),
    }
}

/// The table of stages at the end of a run: name, state, gates, number
/// of artifacts and duration, one row per stage in pipeline order, under
/// a header. `paint(code, text)` colours a cell (identity without colour).
///
/// Aligned by hand: no table crate is in the dependency tree, and five
/// columns of short text need no more than padding. Widths count
/// characters, which is right for the symbols and the names a pipeline
/// accepts. The duration is the last column so that its width, which
/// changes from run to run, moves nothing after it.
pub fn stage_table(record: &RunRecord, paint: &dyn Fn(&str, &str) -> String) -> Vec<String> {
    let header = ["stage", "state", "gates", "artifacts", "time"];
    let rows: Vec<([String; 5], &'static str)> = record
        .stages
        .iter()
        .map(|(name, r)| {
            let (mark, color) = state_mark(r.state);
            (
                [
                    esc(name).into_owned(),
                    format!("{mark} {}", r.state.as_str()),
                    gate_counts(r),
                    r.artifacts.len().to_string(),
                    duration(r.duration_ms),
                ],
                color,
            )
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let pad = |text: &str, width: usize, right: bool| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        if right {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    // A run on agents says which agent ran each stage, in a last column
    // that a local run does not have.
    let on_agents = record.stages.values().any(|r| r.agent.is_some());
    let line = |cells: [String; 5], agent: &str, color: Option<&str>| {
        let state = pad(&cells[1], widths[1], false);
        let state = match color {
            Some(c) => paint(c, &state),
            None => state,
        };
        let mut text = format!(
            "  {}  {state}  {}  {}  {}",
            pad(&cells[0], widths[0], false),
            pad(&cells[2], widths[2], false),
            pad(&cells[3], widths[3], true),
            cells[4]
        );
        if on_agents {
            text.push_str("  ");
            text.push_str(agent);
        }
        text
    };
    let time_width = widths[4];
    let padded = |mut cells: [String; 5]| {
        if on_agents {
            cells[4] = pad(&cells[4], time_width, false);
        }
        cells
    };
    let mut out = vec![paint(
        "2",
        line(padded(header.map(str::to_string)), "agent", None).trim_end(),
    )];
    for ((cells, color), r) in rows.into_iter().zip(record.stages.values()) {
        let agent = r.agent.as_deref().map(esc).unwrap_or_default();
        out.push(
            line(padded(cells), &agent, Some(color))
                .trim_end()
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use sluice_pipeline::gates::{GateResult, GateSource};
    use sluice_record::artifacts::ArtifactRecord;

    fn finding(level: Level, rule: &str, path: &str, line: u64) -> Finding {
        Finding {
            stage: "lint".into(),
            rule: Some(rule.into()),
            level,
            message: format!("{rule} here"),
            path: Some(path.into()),
            line: Some(line),
            column: None,
            end_line: None,
            end_column: None,
            fingerprint: None,
        }
    }

    fn many(n: u64) -> Vec<Finding> {
        (1..=n)
            .map(|i| {
                let (level, rule) = match i % 3 {
                    0 => (Level::Error, "merge-conflict"),
                    1 => (Level::Warning, "trailing-whitespace"),
                    _ => (Level::Note, "long-line"),
                };
                finding(level, rule, "src/a.py", i)
            })
            .collect()
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_669), "10,669");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn more_findings_than_the_limit_end_with_where_the_rest_are() {
        let files = [SarifFile {
            name: "lint.sarif".into(),
            findings: Ok(many(30)),
        }];
        let lines = findings_summary("r-1", "lint", &files, Some(10), true);
        assert_eq!(
            lines[0],
            "findings: 30 in lint.sarif (10 errors, 10 warnings, 10 notes)"
        );
        assert_eq!(
            lines[1],
            "by rule: long-line 10 · merge-conflict 10 · trailing-whitespace 10"
        );
        // Errors first, in file order.
        assert_eq!(
            lines[2],
            "src/a.py:3: error merge-conflict merge-conflict here"
        );
        assert_eq!(
            lines[11],
            "src/a.py:30: error merge-conflict merge-conflict here"
        );
        assert_eq!(lines.len(), 2 + 10 + 1);
        assert_eq!(
            lines[12],
            "… and 20 more in lint.sarif (sluice artifacts get r-1 lint/lint.sarif)"
        );
        // Verbose: every one, no `more` line.
        let all = findings_summary("r-1", "lint", &files, None, true);
        assert_eq!(all.len(), 2 + 30);
        assert!(!all.iter().any(|l| l.starts_with('…')));
        // Quiet: the counts only.
        assert_eq!(
            findings_summary("r-1", "lint", &files, Some(10), false).len(),
            2
        );
    }

    #[test]
    fn top_rules_are_capped_and_large_counts_grouped() {
        let mut found: Vec<Finding> = (0..10_679)
            .map(|i| finding(Level::Warning, "trailing-whitespace", "a", i))
            .collect();
        for r in ["a1", "a2", "a3", "a4", "a5", "a6"] {
            found.push(finding(Level::Error, r, "b", 1));
        }
        let files = [SarifFile {
            name: "lint.sarif".into(),
            findings: Ok(found),
        }];
        let lines = findings_summary("r", "lint", &files, Some(10), true);
        assert_eq!(
            lines[0],
            "findings: 10,685 in lint.sarif (6 errors, 10,679 warnings)"
        );
        assert_eq!(
            lines[1],
            "by rule: trailing-whitespace 10,679 · a1 1 · a2 1 · a3 1 · a4 1 · 2 more rules"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("… and 10,675 more in lint.sarif (sluice artifacts get r lint/lint.sarif)")
        );
    }

    #[test]
    fn a_bad_file_is_one_line_and_the_others_still_count() {
        let files = [
            SarifFile {
                name: "broken.sarif".into(),
                findings: Err("is not SARIF: expected value at line 1 column 1".into()),
            },
            SarifFile {
                name: "a.sarif".into(),
                findings: Ok(many(2)),
            },
            SarifFile {
                name: "b.sarif".into(),
                findings: Ok(many(12)),
            },
        ];
        let lines = findings_summary("r", "scan", &files, Some(10), true);
        assert_eq!(
            lines[0],
            "findings: scan/broken.sarif is not SARIF: expected value at line 1 column 1"
        );
        assert_eq!(
            lines[1],
            "findings: 14 in a.sarif, b.sarif (4 errors, 5 warnings, 5 notes)"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("… and 4 more in b.sarif (sluice artifacts get r scan/b.sarif)")
        );
        // The rest in two files: the export command.
        let lines = findings_summary("r", "scan", &files[1..], Some(1), true);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("… and 13 more in a.sarif, b.sarif (sluice artifacts export r scan --to DIR)")
        );
        let empty = [SarifFile {
            name: "lint.sarif".into(),
            findings: Ok(Vec::new()),
        }];
        assert_eq!(
            findings_summary("r", "lint", &empty, Some(10), true),
            ["findings: none in lint.sarif"]
        );
        assert!(findings_summary("r", "lint", &[], Some(10), true).is_empty());
    }

    #[test]
    fn finding_text_from_the_stage_is_escaped() {
        let mut f = finding(Level::Error, "r\u{1b}[2J", "a\u{202e}b.py", 3);
        f.message = "bad\rthing\nsecond line".into();
        assert_eq!(
            finding_line(&f),
            "a\\u{202e}b.py:3: error r\\u{1b}[2J bad\\u{d}thing"
        );
        f.path = None;
        f.rule = None;
        assert!(finding_line(&f).starts_with("(no location) error (no rule) "));
    }

    #[test]
    fn the_stage_table_aligns_its_columns() {
        let mut build = StageRecord::pending("build");
        build.state = StageState::Passed;
        build.duration_ms = Some(1234);
        for (verdict, name) in [
            (Verdict::Pass, "a"),
            (Verdict::Warn, "b"),
            (Verdict::Pass, "c"),
        ] {
            build.gates.push(GateResult {
                name: name.into(),
                source: GateSource::Pipeline,
                verdict,
                observed: None,
                condition: None,
                message: String::new(),
            });
        }
        build.artifacts.push(ArtifactRecord {
            name: "x".into(),
            digest: "sha256:00".into(),
            size: 1,
            media_type: "text/plain".into(),
            role: None,
            annotations: Default::default(),
        });
        let mut lint_stage = StageRecord::pending("lint-everything");
        lint_stage.state = StageState::Failed;
        lint_stage.duration_ms = Some(20);
        let mut stages = IndexMap::new();
        stages.insert("build".to_owned(), build);
        stages.insert("lint-everything".to_owned(), lint_stage);
        stages.insert("deploy".to_owned(), StageRecord::pending("deploy"));
        let record = RunRecord::new("r", "p", "/p/sluice.yaml", "sha256:00", stages);
        let plain = |_: &str, t: &str| t.to_string();
        assert_eq!(
            stage_table(&record, &plain),
            [
                "  stage            state      gates                           artifacts  time",
                "  build            ✓ passed   2 passed / 1 warned / 0 failed          1  1.23s",
                "  lint-everything  ✗ failed   -                                       0  0.02s",
                "  deploy           · pending  -                                       0  -",
            ]
        );
        // Colour goes around the padded cell, so the columns still line up.
        let painted = |c: &str, t: &str| format!("<{c}>{t}</>");
        let rows = stage_table(&record, &painted);
        assert!(
            rows[1].contains("<32>✓ passed </>  2 passed"),
            "{}",
            rows[1]
        );
        // A run on agents gets an agent column; a stage no agent ran (it
        // never started) has an empty cell.
        let mut remote = record.clone();
        for (name, agent) in [("build", "a1"), ("lint-everything", "a2\u{1b}[2J")] {
            if let Some(r) = remote.stages.get_mut(name) {
                r.agent = Some(agent.into());
            }
        }
        assert_eq!(
            stage_table(&remote, &plain),
            [
                "  stage            state      gates                           artifacts  time   agent",
                "  build            ✓ passed   2 passed / 1 warned / 0 failed          1  1.23s  a1",
                "  lint-everything  ✗ failed   -                                       0  0.02s  a2\\u{1b}[2J",
                "  deploy           · pending  -                                       0  -",
            ]
        );
    }
}
