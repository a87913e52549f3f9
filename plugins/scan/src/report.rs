//! What people read: the summary, the metrics, the log lines and
//! `scan.json`. Plain data, no SDK, so it is unit-tested natively.

use serde_json::{json, Value};

use crate::scan::{Outcome, VulnFinding};
use crate::secrets::SecretFinding;
use crate::severity::Severity;

/// At most this many findings are listed in the summary.
pub const SUMMARY_FINDINGS: usize = 10;

/// The metrics of an outcome, in report order.
///
/// `secrets.found` is reported only when secrets were scanned, and the
/// `vulns.*` metrics only when dependencies were checked against an
/// advisory database: a pipeline gate on a metric that was not measured is
/// *inconclusive* and blocks, so a missing database can never pass a
/// `vulns.critical max 0` gate by accident.
pub fn metrics(o: &Outcome) -> Vec<(&'static str, f64, Option<&'static str>)> {
    let mut m = Vec::new();
    if o.secrets_scanned {
        m.push(("secrets.found", o.secrets.len() as f64, None));
    }
    if o.vulns_checked {
        m.push(("vulns.critical", o.count(Severity::Critical) as f64, None));
        m.push(("vulns.high", o.count(Severity::High) as f64, None));
        m.push(("vulns.medium", o.count(Severity::Medium) as f64, None));
        m.push(("vulns.low", o.count(Severity::Low) as f64, None));
        m.push(("vulns.unknown", o.count(Severity::Unknown) as f64, None));
        m.push(("vulns.total", o.vuln_total() as f64, None));
        m.push(("vulns.packages", o.vulnerable_packages() as f64, None));
    }
    m.push(("deps.packages", o.package_count() as f64, None));
    m.push(("scan.files", o.files as f64, None));
    m.push(("scan.bytes", o.bytes as f64, Some("bytes")));
    m
}

/// One line for a secret finding: `github-token ghp_… — src/app.py:4:9`.
pub fn secret_line(s: &SecretFinding) -> String {
    format!(
        "{} {} — {}:{}:{}",
        s.rule_id, s.preview, s.file, s.line, s.column
    )
}

/// One line for a vulnerability:
/// `requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high: fixed in 2.20.0 — requirements.txt`.
pub fn vuln_line(v: &VulnFinding) -> String {
    let at = match v.line {
        Some(l) => format!("{}:{l}", v.file),
        None => v.file.clone(),
    };
    format!(
        "{} {} ({}) {} {}: {} — {at}",
        v.package,
        v.version,
        v.ecosystem,
        v.id,
        v.severity,
        v.remedy()
    )
}

/// The markdown summary: a headline of counts, then the most important
/// findings one per line (vulnerabilities from critical down, with secrets
/// ranked with high ones).
pub fn summary(o: &Outcome) -> String {
    let mut head = Vec::new();
    if o.secrets_scanned {
        head.push(plural(o.secrets.len(), "secret"));
    }
    if o.vulns_checked {
        let mut parts = Vec::new();
        for s in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Unknown,
        ] {
            let n = o.count(s);
            if n > 0 {
                parts.push(format!("{n} {s}"));
            }
        }
        let detail = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        head.push(format!(
            "{}{detail} in {} of {}",
            plural(o.vuln_total(), "vulnerability"),
            o.vulnerable_packages(),
            plural(o.package_count(), "package")
        ));
    } else if !o.dependencies.is_empty() {
        head.push(format!(
            "{} not checked (no advisory database)",
            plural(o.package_count(), "package")
        ));
    }
    let mut text = format!(
        "{} · {} scanned",
        head.join(", "),
        plural(o.files as usize, "file")
    );

    // Critical vulns, then high vulns and secrets, then the rest.
    let mut lines: Vec<(u8, String)> = Vec::new();
    for v in &o.vulns {
        let rank = match v.severity {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 3,
            Severity::Unknown => 4,
            Severity::Low => 5,
            Severity::None => 6,
        };
        lines.push((rank, vuln_line(v)));
    }
    for s in &o.secrets {
        lines.push((2, secret_line(s)));
    }
    lines.sort_by_key(|(rank, _)| *rank);
    let total = lines.len();
    for (_, line) in lines.into_iter().take(SUMMARY_FINDINGS) {
        text.push_str("\n- ");
        text.push_str(&line);
    }
    if total > SUMMARY_FINDINGS {
        text.push_str(&format!(
            "\n- … and {} more in scan.json / scan.sarif",
            total - SUMMARY_FINDINGS
        ));
    }
    // Never silent about lockfiles it could not check.
    if !o.unread_lockfiles.is_empty() {
        text.push_str(&format!(
            "\n\nNot read (lockfile format not supported, so not checked): {}",
            o.unread_lockfiles.join(", ")
        ));
    }
    text
}

/// `scan.json`: counts, then one flat list of findings (`kind` is
/// `secret` or `vulnerability`), then warnings.
pub fn json_report(o: &Outcome, tool_version: &str) -> Value {
    let mut findings: Vec<Value> = Vec::new();
    for s in &o.secrets {
        findings.push(json!({
            "kind": "secret",
            "rule": s.rule_id,
            "name": s.rule_name,
            "file": s.file,
            "line": s.line,
            "column": s.column,
            "preview": s.preview,
            "fingerprint": s.fingerprint,
        }));
    }
    for v in &o.vulns {
        findings.push(json!({
            "kind": "vulnerability",
            "id": v.id,
            "aliases": v.aliases,
            "package": v.package,
            "version": v.version,
            "ecosystem": v.ecosystem.osv_name(),
            "severity": v.severity.as_str(),
            "score": v.score,
            "fixed": v.fixed,
            "last_affected": v.last_affected,
            "summary": v.summary,
            "file": v.file,
            "line": v.line,
            "url": v.url,
        }));
    }
    let counts: serde_json::Map<String, Value> = metrics(o)
        .into_iter()
        .map(|(name, value, _)| (name.to_string(), json!(value as u64)))
        .collect();
    json!({
        "tool": "sluice-scan",
        "version": tool_version,
        "counts": counts,
        "suppressed": { "inline": o.ignored_inline, "allowlisted": o.allowlisted, "placeholders": o.placeholders },
        "skipped": { "binary": o.skipped_binary, "too_large": o.skipped_large },
        "lockfiles": o.lockfiles,
        "unread_lockfiles": o.unread_lockfiles,
        "findings": findings,
        "warnings": o.warnings,
    })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Ecosystem;

    fn vuln(pkg: &str, sev: Severity) -> VulnFinding {
        VulnFinding {
            package: pkg.into(),
            version: "2.19.1".into(),
            ecosystem: Ecosystem::PyPi,
            file: "requirements.txt".into(),
            line: None,
            id: "GHSA-x84v-xcm2-53pg".into(),
            aliases: vec![],
            summary: String::new(),
            severity: sev,
            score: None,
            fixed: Some("2.20.0".into()),
            last_affected: None,
            url: None,
        }
    }

    #[test]
    fn vuln_lines_read_as_documented() {
        assert_eq!(
            vuln_line(&vuln("requests", Severity::High)),
            "requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high: fixed in 2.20.0 — requirements.txt"
        );
    }

    #[test]
    fn summary_headline_and_order() {
        let o = Outcome {
            secrets_scanned: true,
            vulns_checked: true,
            files: 3,
            vulns: vec![
                vuln("low-pkg", Severity::Low),
                vuln("crit-pkg", Severity::Critical),
            ],
            dependencies: vec![dep("low-pkg"), dep("crit-pkg"), dep("safe-pkg")],
            ..Outcome::default()
        };
        let s = summary(&o);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "0 secrets, 2 vulnerabilities (1 critical, 1 low) in 2 of 3 packages · 3 files scanned"
        );
        assert!(lines[1].starts_with("- crit-pkg"));
        assert!(lines[2].starts_with("- low-pkg"));
        assert_eq!(lines.len(), 3, "{s}");
    }

    fn dep(name: &str) -> crate::deps::Dependency {
        crate::deps::Dependency {
            ecosystem: Ecosystem::PyPi,
            name: name.into(),
            version: "2.19.1".into(),
            file: "requirements.txt".into(),
            line: None,
        }
    }

    #[test]
    fn counts_are_vulnerabilities_and_vulnerable_packages() {
        // One package version with two advisories, pinned in two files
        // (as go.mod and go.sum both pin it): 2 vulnerabilities in 1
        // package, whatever the number of files.
        let mut a = vuln("Requests", Severity::High);
        a.file = "go.mod".into();
        let mut b = vuln("requests", Severity::High);
        b.file = "go.sum".into();
        let mut c = vuln("requests", Severity::Medium);
        c.id = "GHSA-j8r2-6x86-q33q".into();
        let mut d2 = dep("requests");
        d2.file = "requirements-dev.txt".into();
        let o = Outcome {
            vulns_checked: true,
            vulns: vec![a, b, c],
            dependencies: vec![dep("requests"), d2, dep("six")],
            ..Outcome::default()
        };
        let m: Vec<(&str, f64)> = metrics(&o).into_iter().map(|(n, v, _)| (n, v)).collect();
        for expected in [
            ("vulns.high", 1.0),
            ("vulns.medium", 1.0),
            ("vulns.total", 2.0),
            ("vulns.packages", 1.0),
            ("deps.packages", 2.0),
        ] {
            assert!(m.contains(&expected), "{expected:?} in {m:?}");
        }
        assert!(
            summary(&o).starts_with("2 vulnerabilities (1 high, 1 medium) in 1 of 2 packages"),
            "{}",
            summary(&o)
        );
    }

    #[test]
    fn unread_lockfiles_are_listed_in_the_summary_and_json() {
        let o = Outcome {
            unread_lockfiles: vec!["Gemfile.lock".into(), "php/composer.lock".into()],
            ..Outcome::default()
        };
        assert!(summary(&o).ends_with(
            "\n\nNot read (lockfile format not supported, so not checked): Gemfile.lock, php/composer.lock"
        ));
        let j = json_report(&o, "0");
        assert_eq!(j["unread_lockfiles"][1], "php/composer.lock");
    }

    #[test]
    fn metrics_are_omitted_when_not_measured() {
        let o = Outcome::default();
        let names: Vec<&str> = metrics(&o).into_iter().map(|m| m.0).collect();
        assert_eq!(names, vec!["deps.packages", "scan.files", "scan.bytes"]);
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "vulnerability"), "1 vulnerability");
        assert_eq!(plural(2, "vulnerability"), "2 vulnerabilities");
        assert_eq!(plural(0, "secret"), "0 secrets");
    }
}
