//! Findings from SARIF 2.1.0, as the `lint` and `scan` stages keep them:
//! only what the report shows (tool, rule, level, message, first
//! location), read leniently so one odd result does not hide the rest.

use serde_json::Value;

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `tool.driver.name` of its run.
    pub tool: String,
    /// `ruleId` (or `rule.id`); `(no rule)` when it has none.
    pub rule: String,
    /// `error`, `warning`, `note` or `none` (SARIF's default: `warning`).
    pub level: String,
    /// `message.text`.
    pub message: String,
    /// `artifactLocation.uri` of its first physical location.
    pub uri: Option<String>,
    /// `region.startLine`.
    pub line: Option<u64>,
    /// `region.startColumn`.
    pub column: Option<u64>,
}

/// The results of a SARIF log, and each rule's short description.
#[derive(Debug, Default)]
pub struct Log {
    /// Every result, in file order.
    pub findings: Vec<Finding>,
    /// `(rule id, short description)` from the drivers' `rules`.
    pub rules: Vec<(String, String)>,
}

/// Reads a SARIF log. Text that is not JSON, or JSON without a `runs`
/// array, is an error that says so (the report shows it as a note).
pub fn parse(text: &str) -> Result<Log, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let runs = v
        .get("runs")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a SARIF log: it has no `runs` array".to_string())?;
    let mut log = Log::default();
    for run in runs {
        let driver = &run["tool"]["driver"];
        let tool = driver["name"]
            .as_str()
            .unwrap_or("unknown tool")
            .to_string();
        for rule in driver["rules"].as_array().into_iter().flatten() {
            if let Some(id) = rule["id"].as_str() {
                let text = rule["shortDescription"]["text"]
                    .as_str()
                    .or_else(|| rule["name"].as_str())
                    .unwrap_or_default();
                log.rules.push((id.to_string(), text.to_string()));
            }
        }
        for r in run["results"].as_array().into_iter().flatten() {
            let rule = r["ruleId"]
                .as_str()
                .or_else(|| r["rule"]["id"].as_str())
                .unwrap_or("(no rule)");
            let physical = &r["locations"][0]["physicalLocation"];
            let region = &physical["region"];
            log.findings.push(Finding {
                tool: tool.clone(),
                rule: rule.to_string(),
                level: r["level"].as_str().unwrap_or("warning").to_string(),
                message: r["message"]["text"]
                    .as_str()
                    .or_else(|| r["message"]["markdown"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                uri: physical["artifactLocation"]["uri"]
                    .as_str()
                    .map(str::to_string),
                line: region["startLine"].as_u64(),
                column: region["startColumn"].as_u64(),
            });
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lint_fixture_reads_whole() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/lint/lint-output.sarif");
        let text = std::fs::read_to_string(path).expect("fixture");
        let log = parse(&text).expect("SARIF");
        assert_eq!(log.findings.len(), 4);
        let first = &log.findings[0];
        assert_eq!(first.tool, "ruff");
        assert_eq!(first.rule, "F401");
        assert_eq!(first.level, "warning", "SARIF's default level");
        assert_eq!(first.message, "`os` imported but unused");
        assert_eq!(first.uri.as_deref(), Some("src/util.py"));
        assert_eq!((first.line, first.column), (Some(1), Some(8)));
        assert!(log
            .rules
            .contains(&("E501".to_string(), "line-too-long".to_string())));
    }

    #[test]
    fn odd_results_are_kept_with_what_they_have() {
        let log =
            parse(r#"{"runs":[{"results":[{"message":{}},{"ruleId":7}]}]}"#).expect("lenient");
        assert_eq!(log.findings.len(), 2);
        assert_eq!(log.findings[0].rule, "(no rule)");
        assert_eq!(log.findings[0].tool, "unknown tool");
        assert_eq!(log.findings[1].uri, None);
    }

    #[test]
    fn malformed_input_is_an_error_that_says_what() {
        let err = parse("{\"runs\": [").expect_err("truncated");
        assert!(err.starts_with("not JSON:"), "{err}");
        let err = parse("{\"version\": \"2.1.0\"}").expect_err("no runs");
        assert_eq!(err, "not a SARIF log: it has no `runs` array");
    }
}
