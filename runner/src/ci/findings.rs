//! What a finished run found, read back from its report artifacts: SARIF
//! results (lint, scan, any stage that writes `*.sarif`) and failed JUnit
//! test cases (the test stage's `*.xml`). Every blob is read from the
//! content-addressed store and checked against its recorded digest first,
//! so a tampered store cannot put words into a CI annotation.

use std::path::Path;

use serde_json::Value;
use sluice_record::artifacts::{ArtifactRecord, Cas};
use sluice_record::RunRecord;

/// Blobs larger than this are not parsed for CI output (a 10,000-finding
/// SARIF log is a few MiB); the job summary says which were left out.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// A finding's severity, as SARIF's `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `error`.
    Error,
    /// `warning` (also SARIF's default when `level` is absent).
    Warning,
    /// `note`.
    Note,
}

/// One SARIF result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The stage whose artifact holds it.
    pub stage: String,
    /// `ruleId`.
    pub rule: Option<String>,
    /// `level`.
    pub level: Level,
    /// `message.text`.
    pub message: String,
    /// The first location's file, relative to the working directory when
    /// it was an absolute path under it.
    pub path: Option<String>,
    /// 1-based line.
    pub line: Option<u64>,
    /// 1-based column.
    pub column: Option<u64>,
    /// Last line of the region.
    pub end_line: Option<u64>,
    /// Last column of the region.
    pub end_column: Option<u64>,
    /// The first of `fingerprints` / `partialFingerprints`, if any.
    pub fingerprint: Option<String>,
}

/// One failed (or errored) JUnit test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTest {
    /// The stage whose artifact holds it.
    pub stage: String,
    /// `classname.name` (or `name` alone).
    pub name: String,
    /// The failure's `message`, else the first line of its text.
    pub message: String,
    /// `file` of the test case, else the last `path:line:` of the text.
    pub file: Option<String>,
    /// `line` of the test case, or the line of that `path:line:`.
    pub line: Option<u64>,
}

/// A JUnit document of a stage, as written.
#[derive(Debug, Clone)]
pub struct JunitDoc {
    /// The stage.
    pub stage: String,
    /// The artifact name.
    pub name: String,
    /// The document's text.
    pub text: String,
}

/// Everything read from one run's reports.
#[derive(Debug, Default)]
pub struct Reports {
    /// SARIF results, in pipeline order, then in file order.
    pub findings: Vec<Finding>,
    /// Failed test cases, in pipeline order, then in file order.
    pub failed_tests: Vec<FailedTest>,
    /// JUnit documents (for a merged `junit.xml`).
    pub junit: Vec<JunitDoc>,
    /// Reports that could not be read, one sentence each.
    pub problems: Vec<String>,
}

/// Whether `a` is a SARIF log (by media type or name).
pub fn is_sarif(a: &ArtifactRecord) -> bool {
    a.media_type == "application/sarif+json"
        || a.name.ends_with(".sarif")
        || a.name.ends_with(".sarif.json")
}

fn is_xml(a: &ArtifactRecord) -> bool {
    a.media_type.ends_with("/xml") || a.media_type.ends_with("+xml") || a.name.ends_with(".xml")
}

/// Reads the reports of every stage of `record` from `cas`. `cwd` makes
/// absolute paths of findings relative.
pub fn collect(record: &RunRecord, cas: &Cas, cwd: &Path) -> Reports {
    let mut reports = Reports::default();
    for (stage, r) in &record.stages {
        for a in &r.artifacts {
            let (sarif, xml) = (is_sarif(a), is_xml(a));
            if !sarif && !xml {
                continue;
            }
            let text = match read(cas, a) {
                Ok(text) => text,
                Err(why) => {
                    reports
                        .problems
                        .push(format!("{stage}/{} was not read: {why}", a.name));
                    continue;
                }
            };
            if sarif {
                match sarif_findings(stage, &text, cwd) {
                    Ok(mut f) => reports.findings.append(&mut f),
                    Err(why) => reports
                        .problems
                        .push(format!("{stage}/{} is not SARIF: {why}", a.name)),
                }
            } else if let Some(mut failed) = junit_failures(stage, &text) {
                reports.failed_tests.append(&mut failed);
                reports.junit.push(JunitDoc {
                    stage: stage.clone(),
                    name: a.name.clone(),
                    text,
                });
            }
        }
    }
    reports
}

/// The blob of `a` as text, after checking its digest.
pub fn read(cas: &Cas, a: &ArtifactRecord) -> Result<String, String> {
    if a.size > MAX_REPORT_BYTES {
        return Err(format!(
            "{} bytes is over the {} MiB read for summaries and annotations",
            a.size,
            MAX_REPORT_BYTES / (1024 * 1024)
        ));
    }
    cas.verify(a).map_err(|e| e.to_string())?;
    let path = cas.blob_path(&a.digest).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

/// The results of a SARIF 2.1.0 log. Suppressed results (a suppression
/// that is not `rejected`), `kind` other than `fail`, and level `none` are
/// not findings.
pub fn sarif_findings(stage: &str, text: &str, cwd: &Path) -> Result<Vec<Finding>, String> {
    let log: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let runs = log
        .get("runs")
        .and_then(Value::as_array)
        .ok_or("it has no `runs` array")?;
    let mut out = Vec::new();
    for run in runs {
        let Some(results) = run.get("results").and_then(Value::as_array) else {
            continue;
        };
        let rules = run
            .pointer("/tool/driver/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in results {
            let suppressed = r
                .get("suppressions")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| str_at(s, &["status"]) != Some("rejected")));
            if suppressed || str_at(r, &["kind"]).is_some_and(|k| k != "fail") {
                continue;
            }
            let rule = str_at(r, &["ruleId"])
                .or_else(|| str_at(r, &["rule", "id"]))
                .map(str::to_string);
            // SARIF: an absent level is the rule's default, else `warning`.
            let default_level = rule.as_deref().and_then(|id| {
                rules
                    .iter()
                    .find(|d| str_at(d, &["id"]) == Some(id))
                    .and_then(|d| str_at(d, &["defaultConfiguration", "level"]))
            });
            let level = match str_at(r, &["level"]).or(default_level) {
                Some("error") => Level::Error,
                Some("note") => Level::Note,
                Some("none") => continue,
                _ => Level::Warning,
            };
            let message = str_at(r, &["message", "text"])
                .or_else(|| str_at(r, &["message", "markdown"]))
                .unwrap_or("")
                .to_string();
            let physical = r.pointer("/locations/0/physicalLocation");
            let path = physical
                .and_then(|p| str_at(p, &["artifactLocation", "uri"]))
                .map(|uri| relative_path(uri, cwd));
            let region = physical.and_then(|p| p.get("region"));
            let at = |k: &str| region.and_then(|r| u64_at(r, &[k]));
            let fingerprint = ["fingerprints", "partialFingerprints"]
                .iter()
                .find_map(|k| r.get(*k)?.as_object()?.values().find_map(Value::as_str))
                .map(str::to_string);
            out.push(Finding {
                stage: stage.to_string(),
                rule,
                level,
                message,
                path,
                line: at("startLine"),
                column: at("startColumn"),
                end_line: at("endLine"),
                end_column: at("endColumn"),
                fingerprint,
            });
        }
    }
    Ok(out)
}

/// A SARIF `uri` as a path: `file://` dropped, `%XX` decoded, and made
/// relative to `cwd` when it lies under it.
pub fn relative_path(uri: &str, cwd: &Path) -> String {
    let raw = uri.strip_prefix("file://").unwrap_or(uri);
    let decoded = percent_decode(raw);
    match Path::new(&decoded).strip_prefix(cwd) {
        Ok(rel) if Path::new(&decoded).is_absolute() => rel.to_string_lossy().into_owned(),
        _ => decoded,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits are below 256.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The failed test cases of a JUnit document; `None` when it is not JUnit
/// (not XML, or its root is neither `testsuites` nor `testsuite`).
pub fn junit_failures(stage: &str, text: &str) -> Option<Vec<FailedTest>> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return None;
    }
    let located = regex::Regex::new(r"^\s*([^\s:/][^\s:]*\.[A-Za-z0-9]+):(\d+):").ok();
    let mut out = Vec::new();
    for case in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        let Some(failure) = case
            .children()
            .find(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
        else {
            continue;
        };
        let name = match (case.attribute("classname"), case.attribute("name")) {
            (Some(c), Some(n)) if !c.is_empty() => format!("{c}.{n}"),
            (_, Some(n)) => n.to_string(),
            (Some(c), None) => c.to_string(),
            (None, None) => "(unnamed test)".to_string(),
        };
        let body = failure.text().unwrap_or("");
        let message = failure
            .attribute("message")
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string)
            .or_else(|| {
                body.lines()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_string())
            })
            .unwrap_or_else(|| failure.tag_name().name().to_string());
        // pytest and others end the traceback with `path:line: Error`.
        let from_body = located.as_ref().and_then(|re| {
            body.lines().rev().find_map(|l| {
                let c = re.captures(l)?;
                Some((c[1].to_string(), c[2].parse::<u64>().ok()?))
            })
        });
        let (file, line) = match case.attribute("file") {
            Some(f) => (
                Some(f.to_string()),
                case.attribute("line").and_then(|l| l.parse().ok()),
            ),
            None => match from_body {
                Some((f, l)) => (Some(f), Some(l)),
                None => (None, None),
            },
        };
        out.push(FailedTest {
            stage: stage.to_string(),
            name,
            message,
            file,
            line,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_levels_defaults_suppressions_and_paths() {
        let text = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[
            {"id":"R1","defaultConfiguration":{"level":"error"}},{"id":"R2"}]}},
          "results":[
            {"ruleId":"R1","message":{"text":"one"},"locations":[{"physicalLocation":{
              "artifactLocation":{"uri":"file:///w/src/a%20b.py"},"region":{"startLine":3,"startColumn":4}}}]},
            {"ruleId":"R2","message":{"text":"two"},"partialFingerprints":{"x":"fp"}},
            {"ruleId":"R2","level":"note","message":{"text":"three"}},
            {"ruleId":"R2","level":"none","message":{"text":"no"}},
            {"ruleId":"R2","kind":"pass","message":{"text":"no"}},
            {"ruleId":"R2","message":{"text":"no"},"suppressions":[{"kind":"inSource"}]},
            {"ruleId":"R2","level":"error","message":{"text":"kept"},"suppressions":[{"kind":"external","status":"rejected"}]}
          ]}]}"#;
        let f = sarif_findings("lint", text, Path::new("/w")).expect("sarif");
        let summary: Vec<_> = f
            .iter()
            .map(|f| (f.message.as_str(), f.level, f.path.as_deref(), f.line))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("one", Level::Error, Some("src/a b.py"), Some(3)),
                ("two", Level::Warning, None, None),
                ("three", Level::Note, None, None),
                ("kept", Level::Error, None, None),
            ]
        );
        assert_eq!(f[0].column, Some(4));
        assert_eq!(f[1].fingerprint.as_deref(), Some("fp"));
        assert!(sarif_findings("lint", "{}", Path::new("/")).is_err());
        assert!(sarif_findings("lint", "not json", Path::new("/")).is_err());
    }

    #[test]
    fn paths_outside_the_working_directory_stay_absolute() {
        assert_eq!(
            relative_path("file:///elsewhere/x.py", Path::new("/w")),
            "/elsewhere/x.py"
        );
        assert_eq!(relative_path("src/x%2", Path::new("/w")), "src/x%2");
        assert_eq!(relative_path("%41%zz", Path::new("/w")), "A%zz");
    }

    #[test]
    fn junit_failures_with_locations_from_attributes_or_the_traceback() {
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="s">
          <testcase classname="pkg.mod" name="ok"/>
          <testcase classname="pkg.mod" name="bad"><failure message="assert 1 == 2">trace
tests/test_mod.py:27: AssertionError</failure></testcase>
          <testcase name="err" file="src/x.rs" line="9"><error>boom
second</error></testcase>
          <testcase name="skipped"><skipped/></testcase>
        </testsuite></testsuites>"#;
        let f = junit_failures("test", xml).expect("junit");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "pkg.mod.bad");
        assert_eq!(f[0].message, "assert 1 == 2");
        assert_eq!(
            (f[0].file.as_deref(), f[0].line),
            (Some("tests/test_mod.py"), Some(27))
        );
        assert_eq!(f[1].name, "err");
        assert_eq!(f[1].message, "boom");
        assert_eq!(
            (f[1].file.as_deref(), f[1].line),
            (Some("src/x.rs"), Some(9))
        );
        assert!(junit_failures("test", "<project/>").is_none());
        assert!(junit_failures("test", "<testsuite").is_none());
        // No DTDs (entity expansion) are accepted.
        assert!(junit_failures(
            "test",
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><testsuite>&a;</testsuite>"
        )
        .is_none());
    }
}
