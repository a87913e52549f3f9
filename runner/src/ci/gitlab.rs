//! GitLab CI: collapsible log sections and the report artifacts GitLab
//! reads (`artifacts:reports:codequality` and `artifacts:reports:junit`),
//! as GitLab's "Job logs" and "Code Quality" pages specify them.

use std::fmt::Write as _;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::findings::{Level, Reports};

/// The Code Quality report's file name.
pub const CODE_QUALITY_FILE: &str = "gl-code-quality-report.json";
/// The merged JUnit report's file name.
pub const JUNIT_FILE: &str = "junit.xml";

/// A section name: GitLab accepts letters, digits, `_`, `.` and `-`.
pub fn section_name(stage: &str) -> String {
    let name: String = stage
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("sluice_{name}")
}

/// The line opening a section (expanded: a failing stage's log must be in
/// sight, and whether it fails is not known when it starts).
pub fn section_start(stage: &str, header: &str, unix_seconds: u64) -> String {
    format!(
        "\x1b[0Ksection_start:{unix_seconds}:{}\r\x1b[0K{header}",
        section_name(stage)
    )
}

/// The line closing the section of `stage`.
pub fn section_end(stage: &str, unix_seconds: u64) -> String {
    format!(
        "\x1b[0Ksection_end:{unix_seconds}:{}\r\x1b[0K",
        section_name(stage)
    )
}

/// The Code Quality report (the CodeClimate subset GitLab reads:
/// `description`, `check_name`, `fingerprint`, `severity`,
/// `location.path`, `location.lines.begin`) of the SARIF findings. The
/// fingerprint is the finding's own when it has one, else a hash of
/// stage, rule, path, line and message, so it is stable across runs and
/// GitLab can tell new findings from old ones.
pub fn code_quality(reports: &Reports, pipeline_file: &str) -> String {
    let issues: Vec<serde_json::Value> = reports
        .findings
        .iter()
        .map(|f| {
            let severity = match f.level {
                Level::Error => "major",
                Level::Warning => "minor",
                Level::Note => "info",
            };
            let rule = f.rule.clone().unwrap_or_else(|| f.stage.clone());
            // A finding without a file is about the project as a whole;
            // GitLab needs a path, so it points at the pipeline.
            let path = f.path.clone().unwrap_or_else(|| pipeline_file.to_string());
            let line = f.line.unwrap_or(1);
            let fingerprint = match &f.fingerprint {
                Some(own) => hex::encode(Sha256::digest(format!("{}\0{own}", f.stage))),
                None => hex::encode(Sha256::digest(format!(
                    "{}\0{rule}\0{path}\0{line}\0{}",
                    f.stage, f.message
                ))),
            };
            json!({
                "description": f.message,
                "check_name": format!("{}/{rule}", f.stage),
                "fingerprint": fingerprint,
                "severity": severity,
                "location": { "path": path, "lines": { "begin": line } },
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

/// One JUnit document holding the test suites of every stage's report:
/// the `<testsuite>` elements are copied as written (so nothing of them is
/// lost or re-encoded) into one `<testsuites>`.
pub fn merged_junit(reports: &Reports) -> String {
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sluice\">\n");
    for doc in &reports.junit {
        let Ok(parsed) = roxmltree::Document::parse(&doc.text) else {
            continue;
        };
        let root = parsed.root_element();
        let suites: Vec<roxmltree::Node<'_, '_>> = if root.has_tag_name("testsuite") {
            vec![root]
        } else {
            root.children()
                .filter(|n| n.has_tag_name("testsuite"))
                .collect()
        };
        for suite in suites {
            if let Some(text) = doc.text.get(suite.range()) {
                let _ = writeln!(xml, "{text}");
            }
        }
    }
    xml.push_str("</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::super::findings::{Finding, JunitDoc};
    use super::*;

    #[test]
    fn sections_have_the_documented_markers() {
        assert_eq!(
            section_start("unit tests", "▶ unit tests", 1700000000),
            "\x1b[0Ksection_start:1700000000:sluice_unit_tests\r\x1b[0K▶ unit tests"
        );
        assert_eq!(
            section_end("lint", 1700000001),
            "\x1b[0Ksection_end:1700000001:sluice_lint\r\x1b[0K"
        );
    }

    #[test]
    fn code_quality_has_the_fields_gitlab_reads() {
        let mut reports = Reports::default();
        reports.findings.push(Finding {
            stage: "lint".into(),
            rule: Some("F401".into()),
            level: Level::Error,
            message: "unused \"os\"\n".into(),
            path: Some("src/a.py".into()),
            line: Some(2),
            column: None,
            end_line: None,
            end_column: None,
            fingerprint: None,
        });
        let mut note = reports.findings[0].clone();
        note.level = Level::Note;
        note.path = None;
        note.line = None;
        reports.findings.push(note);
        let v: serde_json::Value =
            serde_json::from_str(&code_quality(&reports, "sluice.yaml")).expect("json");
        assert_eq!(v[0]["description"], "unused \"os\"\n");
        assert_eq!(v[0]["check_name"], "lint/F401");
        assert_eq!(v[0]["severity"], "major");
        assert_eq!(v[0]["location"]["path"], "src/a.py");
        assert_eq!(v[0]["location"]["lines"]["begin"], 2);
        assert_eq!(v[0]["fingerprint"].as_str().map(str::len), Some(64));
        assert_eq!(v[1]["severity"], "info");
        assert_eq!(v[1]["location"]["path"], "sluice.yaml");
        assert_eq!(v[1]["location"]["lines"]["begin"], 1);
        assert_ne!(v[0]["fingerprint"], v[1]["fingerprint"]);
        assert_eq!(code_quality(&Reports::default(), "x"), "[]\n");
    }

    #[test]
    fn junit_suites_are_merged_as_written() {
        let mut reports = Reports::default();
        for text in [
            "<?xml version=\"1.0\"?><testsuites><testsuite name=\"a\"><testcase name=\"x\"/></testsuite><testsuite name=\"b\"/></testsuites>",
            "<testsuite name=\"c\" tests=\"1\"><testcase name=\"y &amp; z\"><failure message=\"m\"/></testcase></testsuite>",
        ] {
            reports.junit.push(JunitDoc { stage: "t".into(), name: "j.xml".into(), text: text.into() });
        }
        let merged = merged_junit(&reports);
        assert_eq!(
            merged,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sluice\">\n\
             <testsuite name=\"a\"><testcase name=\"x\"/></testsuite>\n<testsuite name=\"b\"/>\n\
             <testsuite name=\"c\" tests=\"1\"><testcase name=\"y &amp; z\"><failure message=\"m\"/></testcase></testsuite>\n\
             </testsuites>\n"
        );
        assert!(roxmltree::Document::parse(&merged).is_ok());
    }
}
