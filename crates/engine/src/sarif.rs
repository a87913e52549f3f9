//! SARIF 2.1.0 from a stage's typed findings (WIT 0.2): the runner writes
//! `findings.sarif` for every stage that reports findings, so that stage
//! authors need no SARIF library and every consumer (code scanning, the
//! console, the HTML report, CI annotations) reads one format.
//!
//! One run, one tool (the plugin), one rule per distinct rule id (with its
//! help URI when a finding gave one), results in the order reported.
//! Locations are relative to the workspace root (`uriBaseId`
//! `%SRCROOT%`); a finding's fingerprint becomes
//! `partialFingerprints["sluice/v1"]`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sluice_types::Finding;

/// The file name the runner gives the SARIF it writes.
pub const FINDINGS_FILE: &str = "findings.sarif";
/// Its media type.
pub const SARIF_MEDIA_TYPE: &str = "application/sarif+json";

/// Who reported the findings.
#[derive(Debug, Clone)]
pub struct Tool<'a> {
    /// The plugin's name.
    pub name: &'a str,
    /// The plugin's version, when known.
    pub version: Option<&'a str>,
    /// The stage that ran it.
    pub stage: &'a str,
    /// The plugin's digest.
    pub digest: &'a str,
}

/// The SARIF document for `findings`.
pub fn document(tool: &Tool<'_>, findings: &[Finding]) -> Value {
    let mut rules: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for f in findings {
        let help = rules.entry(f.rule_id.as_str()).or_insert(None);
        if help.is_none() {
            *help = f.help_uri.as_deref();
        }
    }
    let rule_list: Vec<Value> = rules
        .iter()
        .map(|(id, help)| {
            let mut rule = Map::new();
            rule.insert("id".into(), json!(id));
            if let Some(uri) = help {
                rule.insert("helpUri".into(), json!(uri));
            }
            Value::Object(rule)
        })
        .collect();
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = Map::new();
            result.insert("ruleId".into(), json!(f.rule_id));
            if let Some(i) = index.get(f.rule_id.as_str()) {
                result.insert("ruleIndex".into(), json!(i));
            }
            result.insert("level".into(), json!(f.level.as_str()));
            result.insert("message".into(), json!({ "text": f.message }));
            if let Some(loc) = &f.location {
                let mut physical = Map::new();
                physical.insert(
                    "artifactLocation".into(),
                    json!({ "uri": loc.path, "uriBaseId": "%SRCROOT%" }),
                );
                if loc.start_line > 0 {
                    let mut region = Map::new();
                    region.insert("startLine".into(), json!(loc.start_line));
                    if let Some(c) = loc.start_column.filter(|c| *c > 0) {
                        region.insert("startColumn".into(), json!(c));
                    }
                    if let Some(l) = loc.end_line.filter(|l| *l >= loc.start_line) {
                        region.insert("endLine".into(), json!(l));
                    }
                    if let Some(c) = loc.end_column.filter(|c| *c > 0) {
                        region.insert("endColumn".into(), json!(c));
                    }
                    physical.insert("region".into(), Value::Object(region));
                }
                result.insert(
                    "locations".into(),
                    json!([{ "physicalLocation": Value::Object(physical) }]),
                );
            }
            if let Some(fp) = &f.fingerprint {
                result.insert("partialFingerprints".into(), json!({ "sluice/v1": fp }));
            }
            Value::Object(result)
        })
        .collect();
    let mut driver = Map::new();
    driver.insert("name".into(), json!(tool.name));
    if let Some(v) = tool.version {
        driver.insert("version".into(), json!(v));
    }
    driver.insert("rules".into(), Value::Array(rule_list));
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": Value::Object(driver) },
            "originalUriBaseIds": { "%SRCROOT%": { "description": { "text": "the pipeline's workspace" } } },
            "results": results,
            "properties": { "sluice": { "stage": tool.stage, "plugin": tool.digest } },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_types::{FindingLevel, FindingLocation};

    fn finding(rule: &str, level: FindingLevel, path: Option<(&str, u32)>) -> Finding {
        Finding {
            rule_id: rule.into(),
            level,
            message: format!("{rule} found"),
            location: path.map(|(p, line)| FindingLocation {
                path: p.into(),
                start_line: line,
                start_column: Some(4),
                end_line: None,
                end_column: None,
            }),
            fingerprint: Some(format!("fp-{rule}")),
            help_uri: (rule == "E501").then(|| "https://example.com/E501".to_owned()),
        }
    }

    #[test]
    fn findings_become_one_sarif_run_with_rules_and_regions() {
        let tool = Tool {
            name: "lint",
            version: Some("1.2.0"),
            stage: "lint",
            digest: "sha256:ab",
        };
        let doc = document(
            &tool,
            &[
                finding("E501", FindingLevel::Warning, Some(("src/a.py", 3))),
                finding("F401", FindingLevel::Error, Some(("src/b.py", 0))),
                finding("E501", FindingLevel::Warning, None),
            ],
        );
        assert_eq!(doc["version"], "2.1.0");
        let run = &doc["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "lint");
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "E501");
        assert_eq!(
            run["tool"]["driver"]["rules"][0]["helpUri"],
            "https://example.com/E501"
        );
        assert_eq!(run["tool"]["driver"]["rules"][1]["id"], "F401");
        let r = &run["results"];
        assert_eq!(r[0]["level"], "warning");
        assert_eq!(r[0]["ruleIndex"], 0);
        assert_eq!(
            r[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "src/a.py"
        );
        assert_eq!(
            r[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        assert_eq!(r[0]["partialFingerprints"]["sluice/v1"], "fp-E501");
        // Line 0: the whole file, no region.
        assert!(r[1]["locations"][0]["physicalLocation"]
            .get("region")
            .is_none());
        assert!(r[2].get("locations").is_none());
    }

    #[test]
    fn no_findings_is_an_empty_run() {
        let tool = Tool {
            name: "lint",
            version: None,
            stage: "lint",
            digest: "sha256:ab",
        };
        let doc = document(&tool, &[]);
        assert_eq!(doc["runs"][0]["results"], json!([]));
    }
}
