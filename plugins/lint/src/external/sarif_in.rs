//! Reading a SARIF 2.1.0 log written by an external linter (ruff, eslint,
//! semgrep, hadolint, shellcheck via converters, ...), one [`ToolRun`] per
//! SARIF run.
//!
//! For each result:
//! - rule: `ruleId`, else `rule.id`, else the `rules[ruleIndex]` id, else `unknown`;
//! - level: `level`, else the rule's `defaultConfiguration.level`, else
//!   `warning` (SARIF's default); `none` counts as a note;
//! - message: `message.text`, else the rule's message string `message.id`
//!   with `{0}`-style arguments filled in, else the rule's short description;
//! - location: the first `locations[].physicalLocation`, its
//!   `artifactLocation.uri` (resolved against `uriBaseId` when the run's
//!   `originalUriBaseIds` gives a `file:` URI) and `region.startLine` /
//!   `startColumn`.
//!
//! Results of kind `pass` or `notApplicable`, and results with an accepted
//! (or status-less) suppression, are not findings.

use std::collections::BTreeMap;

use serde_sarif::sarif::{self, ReportingDescriptor, ResultKind, ResultLevel};

use super::{Resolver, RuleDoc, ToolRun};
use crate::finding::{Finding, Level, Location};

/// Parses a SARIF log into one [`ToolRun`] per run. `name` replaces every
/// run's tool name when given.
pub fn parse(
    bytes: &[u8],
    name: Option<&str>,
    resolver: &Resolver,
) -> Result<Vec<ToolRun>, String> {
    let log: sarif::Sarif = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match log.version.as_str() {
        Some("2.1.0") => {}
        other => {
            return Err(format!(
                "version is {}, expected \"2.1.0\"",
                other.map_or_else(|| log.version.to_string(), |v| format!("\"{v}\""))
            ))
        }
    }
    Ok(log
        .runs
        .into_iter()
        .map(|run| tool_run(run, name, resolver))
        .collect())
}

fn tool_run(run: sarif::Run, name: Option<&str>, resolver: &Resolver) -> ToolRun {
    let driver = run.tool.driver;
    let tool = name.unwrap_or(&driver.name).to_string();
    let mut out = ToolRun::new(tool.clone());
    out.version = driver.version.or(driver.semantic_version);
    out.information_uri = driver.information_uri;
    out.column_kind = run
        .column_kind
        .as_ref()
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let rules: Vec<ReportingDescriptor> = driver.rules.unwrap_or_default();
    for r in &rules {
        out.rules.insert(
            r.id.clone(),
            RuleDoc {
                level: r
                    .default_configuration
                    .as_ref()
                    .and_then(|c| c.level.as_ref())
                    .and_then(|l| l.as_str())
                    .and_then(Level::from_sarif),
                description: r.short_description.as_ref().map(|d| d.text.clone()),
                help_uri: r.help_uri.clone(),
            },
        );
    }
    let bases: BTreeMap<String, String> = run
        .original_uri_base_ids
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.uri.map(|u| (k, u)))
        .collect();
    for result in run.results.unwrap_or_default() {
        if let Some(f) = finding(result, &tool, &rules, &bases, resolver) {
            out.rules.entry(f.rule.clone()).or_default();
            out.findings.push(f);
        }
    }
    out
}

fn finding(
    result: sarif::Result,
    tool: &str,
    rules: &[ReportingDescriptor],
    bases: &BTreeMap<String, String>,
    resolver: &Resolver,
) -> Option<Finding> {
    if matches!(
        result.kind,
        Some(ResultKind::Pass | ResultKind::NotApplicable)
    ) {
        return None;
    }
    if is_suppressed(&result) {
        return None;
    }
    let indexed = result
        .rule_index
        .or_else(|| result.rule.as_ref().and_then(|r| r.index))
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| rules.get(i));
    let rule_id = result
        .rule_id
        .clone()
        .or_else(|| result.rule.as_ref().and_then(|r| r.id.clone()))
        .or_else(|| indexed.map(|r| r.id.clone()))
        .unwrap_or_else(|| "unknown".to_string());
    let descriptor = indexed.or_else(|| rules.iter().find(|r| r.id == rule_id));
    let level = match result.level {
        Some(ResultLevel::Error) => Level::Error,
        Some(ResultLevel::Warning) => Level::Warning,
        Some(ResultLevel::Note | ResultLevel::None) => Level::Note,
        None => descriptor
            .and_then(|d| d.default_configuration.as_ref())
            .and_then(|c| c.level.as_ref())
            .and_then(|l| l.as_str())
            .and_then(Level::from_sarif)
            .unwrap_or(Level::Warning),
    };
    let message = message_text(&result.message, descriptor);
    let location = result
        .locations
        .as_ref()
        .and_then(|ls| ls.iter().find_map(|l| l.physical_location.as_ref()))
        .and_then(|p| {
            let artifact = p.artifact_location.as_ref()?;
            let uri = artifact.uri.as_deref()?;
            let base = artifact
                .uri_base_id
                .as_ref()
                .and_then(|b| bases.get(b))
                .map(String::as_str);
            let region = p.region.as_ref();
            Some(Location::at(
                resolver.uri(uri, base),
                region.and_then(|r| r.start_line).and_then(positive),
                region.and_then(|r| r.start_column).and_then(positive),
            ))
        });
    Some(Finding {
        tool: tool.to_string(),
        rule: rule_id,
        level,
        message,
        location,
    })
}

/// SARIF: a result is suppressed when it has a suppression whose status is
/// absent or `accepted` (`underReview` and `rejected` do not suppress).
fn is_suppressed(result: &sarif::Result) -> bool {
    result.suppressions.as_ref().is_some_and(|s| {
        s.iter().any(|sup| {
            sup.status
                .as_ref()
                .and_then(|v| v.as_str())
                .is_none_or(|st| st == "accepted")
        })
    })
}

fn message_text(m: &sarif::Message, rule: Option<&ReportingDescriptor>) -> String {
    if let Some(t) = m.text.as_ref().filter(|t| !t.trim().is_empty()) {
        return t.clone();
    }
    if let (Some(id), Some(r)) = (&m.id, rule) {
        if let Some(s) = r.message_strings.as_ref().and_then(|ms| ms.get(id)) {
            let mut text = s.text.clone();
            for (i, arg) in m.arguments.iter().flatten().enumerate() {
                text = text.replace(&format!("{{{i}}}"), arg);
            }
            return text;
        }
    }
    rule.and_then(|r| r.short_description.as_ref())
        .map(|d| d.text.clone())
        .unwrap_or_else(|| "(no message)".to_string())
}

fn positive(n: i64) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver::new(std::path::Path::new("/nonexistent-workspace"), None)
    }

    fn lines(runs: &[ToolRun]) -> Vec<String> {
        runs.iter()
            .flat_map(|r| r.findings.iter().map(|f| f.to_string()))
            .collect()
    }

    #[test]
    fn reads_results_with_rules_and_defaults() {
        let log = r#"{
          "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
          "version": "2.1.0",
          "runs": [{
            "tool": {"driver": {"name": "shellcheck", "version": "0.9.0",
              "rules": [
                {"id": "SC2086", "shortDescription": {"text": "Double quote to prevent globbing"},
                 "defaultConfiguration": {"level": "note"},
                 "messageStrings": {"default": {"text": "Quote {0} please"}}},
                {"id": "SC2034", "helpUri": "https://www.shellcheck.net/wiki/SC2034"}
              ]}},
            "columnKind": "utf16CodeUnits",
            "originalUriBaseIds": {"SRC": {"uri": "file:///home/ci/repo/"}},
            "results": [
              {"ruleId": "SC2086", "message": {"id": "default", "arguments": ["$x"]},
               "locations": [{"physicalLocation": {"artifactLocation": {"uri": "deploy.sh", "uriBaseId": "SRC"},
                 "region": {"startLine": 4, "startColumn": 6}}}]},
              {"ruleIndex": 1, "level": "warning", "message": {"text": "y appears unused"},
               "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file:///home/ci/repo/lib%20x.sh"},
                 "region": {"startLine": 2}}}]},
              {"ruleId": "SC2086", "kind": "pass", "message": {"text": "fine"}},
              {"ruleId": "SC2086", "level": "error", "message": {"text": "hidden"},
               "suppressions": [{"kind": "inSource"}]},
              {"ruleId": "SC2086", "level": "error", "message": {"text": "under review"},
               "suppressions": [{"kind": "external", "status": "underReview"}]},
              {"message": {"text": "no rule, no place"}, "level": "none"}
            ]
          }]
        }"#;
        let runs = parse(log.as_bytes(), None, &resolver()).expect("valid SARIF");
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.name, "shellcheck");
        assert_eq!(r.version.as_deref(), Some("0.9.0"));
        assert_eq!(r.column_kind.as_deref(), Some("utf16CodeUnits"));
        assert_eq!(
            lines(&runs),
            [
                "deploy.sh:4:6 note SC2086 Quote $x please [shellcheck]",
                "/home/ci/repo/lib x.sh:2 warning SC2034 y appears unused [shellcheck]",
                "- error SC2086 under review [shellcheck]",
                "- note unknown no rule, no place [shellcheck]",
            ]
        );
        assert_eq!(
            r.rules["SC2086"].description.as_deref(),
            Some("Double quote to prevent globbing")
        );
        assert!(r.rules.contains_key("unknown"));
    }

    #[test]
    fn several_runs_and_a_name_override() {
        let log = r#"{"version": "2.1.0", "runs": [
            {"tool": {"driver": {"name": "a"}}, "results": []},
            {"tool": {"driver": {"name": "b"}}}]}"#;
        let runs = parse(log.as_bytes(), None, &resolver()).expect("valid");
        assert_eq!(
            runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let runs = parse(log.as_bytes(), Some("mine"), &resolver()).expect("valid");
        assert!(runs.iter().all(|r| r.name == "mine"));
    }

    #[test]
    fn invalid_logs_are_rejected_with_a_reason() {
        let e = parse(b"{\"version\": \"2.0.0\", \"runs\": []}", None, &resolver())
            .expect_err("old version");
        assert_eq!(e, "version is \"2.0.0\", expected \"2.1.0\"");
        let e = parse(b"{\"runs\": []}", None, &resolver()).expect_err("no version");
        assert!(e.contains("version"), "{e}");
        let e = parse(b"[1, 2", None, &resolver()).expect_err("not JSON");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn reads_its_own_output() {
        use crate::finding::SELF_TOOL;
        let mut run = ToolRun::new(SELF_TOOL);
        run.findings.push(Finding {
            tool: SELF_TOOL.into(),
            rule: "final-newline".into(),
            level: Level::Warning,
            message: "file does not end with a newline".into(),
            location: Some(Location::at("dir/a b.txt", Some(3), Some(4))),
        });
        let json = crate::sarif::to_json(&[run.clone()]).expect("serializes");
        let back = parse(json.as_bytes(), None, &resolver()).expect("reads back");
        assert_eq!(back[0].findings, run.findings);
    }
}
