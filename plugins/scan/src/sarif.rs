//! SARIF 2.1.0 output (`scan.sarif`), the format GitHub code scanning,
//! GitLab and most IDEs read.
//!
//! One run, tool driver `sluice-scan`. Rules: the secret rules (when
//! secrets were scanned) and one rule per advisory that matched, with
//! `properties.security-severity` set to the CVSS score (or a
//! representative score for the bucket) as GitHub expects. Results carry
//! `ruleId`, `ruleIndex`, `level`, a message, and a physical location
//! relative to `%SRCROOT%` (the workspace) with a region when the line is
//! known; secret results carry their `with.allow` fingerprint in
//! `partialFingerprints`. No secret value is ever written: messages use the
//! redacted preview.
//!
//! Written with `serde_json` rather than a SARIF type crate: the subset is
//! small, and the generated SARIF crates would add far more code to the
//! component than this module.

use serde_json::{json, Value};

use crate::scan::Outcome;
use crate::secrets::rules::RULES;
use crate::severity::Severity;

/// The SARIF schema URI.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Builds the SARIF log of `outcome`.
pub fn to_sarif(outcome: &Outcome, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<String> = Vec::new();
    if outcome.secrets_scanned {
        for r in RULES {
            rule_ids.push(r.id.to_string());
            rules.push(json!({
                "id": r.id,
                "name": pascal(r.id),
                "shortDescription": { "text": r.name },
                "fullDescription": { "text": r.help },
                "help": { "text": r.help },
                "defaultConfiguration": { "level": "error" },
                "properties": {
                    "tags": ["security", "secret"],
                    "precision": if r.id == "generic-secret" { "medium" } else { "high" },
                    "security-severity": "8.0"
                }
            }));
        }
    }
    for v in &outcome.vulns {
        if rule_ids.contains(&v.id) {
            continue;
        }
        rule_ids.push(v.id.clone());
        let mut rule = json!({
            "id": v.id,
            "name": pascal(&v.id),
            "shortDescription": { "text": if v.summary.is_empty() { v.id.clone() } else { v.summary.clone() } },
            "fullDescription": { "text": format!("{} affects {} ({})", v.id, v.package, v.ecosystem) },
            "help": { "text": format!("Upgrade {} ({}): {}.", v.package, v.ecosystem, v.remedy()) },
            "defaultConfiguration": { "level": v.severity.sarif_level() },
            "properties": {
                "tags": ["security", "vulnerability", v.ecosystem.osv_name()],
                "security-severity": security_severity(v.severity, v.score),
                "aliases": v.aliases,
            }
        });
        if let (Some(url), Some(obj)) = (&v.url, rule.as_object_mut()) {
            obj.insert("helpUri".into(), json!(url));
        }
        rules.push(rule);
    }
    let index_of = |id: &str| rule_ids.iter().position(|r| r == id);

    let mut results: Vec<Value> = Vec::new();
    for s in &outcome.secrets {
        results.push(json!({
            "ruleId": s.rule_id,
            "ruleIndex": index_of(s.rule_id),
            "level": "error",
            "message": { "text": format!("{} found: {} (redacted)", s.rule_name, s.preview) },
            "locations": [location(&s.file, Some(s.line), Some(s.column))],
            "partialFingerprints": { "sluiceSecret/v1": s.fingerprint },
        }));
    }
    for v in &outcome.vulns {
        let score = v
            .score
            .map(|s| format!(", CVSS {s:.1}"))
            .unwrap_or_default();
        let summary = if v.summary.is_empty() {
            String::new()
        } else {
            format!(": {}", v.summary)
        };
        results.push(json!({
            "ruleId": v.id,
            "ruleIndex": index_of(&v.id),
            "level": v.severity.sarif_level(),
            "message": { "text": format!(
                "{} {} ({}) is affected by {} ({}{score}){summary}. {}.",
                v.package, v.version, v.ecosystem, v.id, v.severity, capitalize(&v.remedy())
            ) },
            "locations": [location(&v.file, v.line, None)],
            "partialFingerprints": {
                "sluiceVuln/v1": format!("{}:{}:{}@{}", v.file, v.id, v.package, v.version)
            },
        }));
    }

    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "sluice-scan",
                "version": tool_version,
                "semanticVersion": tool_version,
                "rules": rules,
            } },
            "originalUriBaseIds": { "%SRCROOT%": { "uri": "file:///workspace/" } },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// A physicalLocation for `file` (relative path) at an optional position.
fn location(file: &str, line: Option<usize>, column: Option<usize>) -> Value {
    let mut physical = json!({
        "artifactLocation": { "uri": percent_encode(file), "uriBaseId": "%SRCROOT%" }
    });
    if let (Some(line), Some(obj)) = (line, physical.as_object_mut()) {
        let mut region = json!({ "startLine": line });
        if let (Some(c), Some(r)) = (column, region.as_object_mut()) {
            r.insert("startColumn".into(), json!(c));
        }
        obj.insert("region".into(), region);
    }
    json!({ "physicalLocation": physical })
}

/// GitHub's `security-severity`: the CVSS score, or a score inside the
/// bucket when there is none.
fn security_severity(severity: Severity, score: Option<f64>) -> String {
    let s = score.unwrap_or(match severity {
        Severity::Critical => 9.5,
        Severity::High => 8.0,
        Severity::Medium => 5.5,
        Severity::Low => 2.0,
        Severity::None => 0.0,
        Severity::Unknown => 5.0,
    });
    format!("{s:.1}")
}

/// `github-token` → `GithubToken`, `GHSA-x84v` → `GhsaX84v`.
fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut cs = lower.chars();
            cs.next()
                .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut cs = s.chars();
    cs.next()
        .map(|f| f.to_uppercase().collect::<String>() + cs.as_str())
        .unwrap_or_default()
}

/// Percent-encodes a relative path for a URI (RFC 3986 unreserved
/// characters and `/` are kept).
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::VulnFinding;
    use crate::secrets::SecretFinding;
    use crate::version::Ecosystem;

    fn outcome() -> Outcome {
        Outcome {
            secrets_scanned: true,
            secrets: vec![SecretFinding {
                rule_id: "github-token",
                rule_name: "GitHub token",
                file: "src/my app.py".into(),
                line: 4,
                column: 9,
                preview: "ghp_…".into(),
                fingerprint: "src/my app.py:github-token:4".into(),
            }],
            vulns: vec![VulnFinding {
                package: "requests".into(),
                version: "2.19.1".into(),
                ecosystem: Ecosystem::PyPi,
                file: "requirements.txt".into(),
                line: Some(2),
                id: "GHSA-x84v-xcm2-53pg".into(),
                aliases: vec!["CVE-2018-18074".into()],
                summary: "Insufficiently Protected Credentials in Requests".into(),
                severity: Severity::High,
                score: Some(7.5),
                fixed: Some("2.20.0".into()),
                last_affected: None,
                url: Some("https://github.com/advisories/GHSA-x84v-xcm2-53pg".into()),
            }],
            ..Outcome::default()
        }
    }

    #[test]
    fn sarif_has_one_run_with_rules_and_results() {
        let s = to_sarif(&outcome(), "0.1.0");
        assert_eq!(s["version"], "2.1.0");
        assert_eq!(s["$schema"], SCHEMA);
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "sluice-scan");
        let rules = run["tool"]["driver"]["rules"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(rules, RULES.len() + 1);
        let results = run["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 2);
        let secret = &results[0];
        assert_eq!(secret["ruleId"], "github-token");
        assert_eq!(secret["level"], "error");
        let loc = &secret["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "src/my%20app.py");
        assert_eq!(loc["region"]["startLine"], 4);
        assert_eq!(loc["region"]["startColumn"], 9);
        let vuln = &results[1];
        assert_eq!(vuln["ruleId"], "GHSA-x84v-xcm2-53pg");
        assert_eq!(vuln["level"], "error");
        assert_eq!(vuln["ruleIndex"], RULES.len());
        assert_eq!(
            vuln["message"]["text"],
            "requests 2.19.1 (PyPI) is affected by GHSA-x84v-xcm2-53pg (high, CVSS 7.5): Insufficiently Protected Credentials in Requests. Fixed in 2.20.0."
        );
        let vrule = &run["tool"]["driver"]["rules"][RULES.len()];
        assert_eq!(vrule["properties"]["security-severity"], "7.5");
        assert_eq!(
            vrule["helpUri"],
            "https://github.com/advisories/GHSA-x84v-xcm2-53pg"
        );
    }

    #[test]
    fn unknown_lines_have_no_region() {
        let mut o = outcome();
        o.vulns[0].line = None;
        let s = to_sarif(&o, "0.1.0");
        let loc = &s["runs"][0]["results"][1]["locations"][0]["physicalLocation"];
        assert!(loc.get("region").is_none());
    }

    #[test]
    fn names_are_pascal_case() {
        assert_eq!(pascal("github-token"), "GithubToken");
        assert_eq!(pascal("RUSTSEC-2021-0003"), "Rustsec20210003");
    }
}
