//! What the probes found, as the stage reports it: counts and p95 latency,
//! one gate per failing probe, the `smoke.json` results document and the
//! summary table.

use serde::Serialize;
use sluice_sdk::Gate;

use crate::probe::ProbeResult;

/// All probe results of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// `with.base-url`, if set.
    pub base_url: Option<String>,
    /// Probes whose checks held.
    pub passed: usize,
    /// Probes whose checks did not hold.
    pub failed: usize,
    /// 95th percentile of the probes' last latencies (nearest rank), ms.
    pub p95_ms: Option<f64>,
    /// Every probe, in order.
    pub probes: Vec<ProbeResult>,
}

impl Results {
    /// Counts and percentiles for `probes`.
    pub fn new(base_url: Option<String>, probes: Vec<ProbeResult>) -> Self {
        let passed = probes.iter().filter(|p| p.passed).count();
        let latencies: Vec<f64> = probes.iter().filter_map(|p| p.latency_ms).collect();
        Self {
            base_url,
            passed,
            failed: probes.len() - passed,
            p95_ms: percentile(&latencies, 95.0),
            probes,
        }
    }

    /// `smoke.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One failing gate per failed probe, with observed vs expected.
    pub fn gates(&self) -> Vec<Gate> {
        self.probes
            .iter()
            .filter(|p| !p.passed)
            .map(|p| {
                let what: Vec<String> = p.failures.iter().map(|f| f.describe()).collect();
                let mut g = Gate::fail(
                    format!("probe {}", p.name),
                    format!(
                        "{} {} after {} attempt(s): {}",
                        p.method,
                        p.url,
                        p.attempts,
                        what.join("; ")
                    ),
                );
                if let Some(f) = p
                    .failures
                    .iter()
                    .find(|f| f.observed_value.is_some() && f.expected_value.is_some())
                {
                    if let (Some(o), Some(e)) = (f.observed_value, f.expected_value) {
                        g = g.observed(o).threshold(e);
                    }
                }
                g
            })
            .collect()
    }

    /// One line for the console.
    pub fn headline(&self) -> String {
        let total = self.passed + self.failed;
        let p95 = self
            .p95_ms
            .map(|v| format!(", p95 {v:.1} ms"))
            .unwrap_or_default();
        if self.failed == 0 {
            format!("{total} probe(s) passed{p95}")
        } else {
            let names: Vec<&str> = self
                .probes
                .iter()
                .filter(|p| !p.passed)
                .map(|p| p.name.as_str())
                .collect();
            format!(
                "{} of {total} probe(s) failed ({}){p95}",
                self.failed,
                names.join(", ")
            )
        }
    }

    /// A markdown table of every probe.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| probe | request | status | latency | attempts | result |\n|---|---|---|---|---|---|\n",
        );
        for p in &self.probes {
            let status = p
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            let latency = p
                .latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "-".into());
            let result = if p.passed {
                "pass".to_string()
            } else {
                let what: Vec<String> = p.failures.iter().map(|f| f.describe()).collect();
                format!("FAIL: {}", what.join("; ").replace('|', "\\|"))
            };
            out.push_str(&format!(
                "| {} | {} {} | {status} | {latency} | {} | {result} |\n",
                p.name.replace('|', "\\|"),
                p.method,
                p.url,
                p.attempts
            ));
        }
        out
    }

    /// `smoke-summary.md`.
    pub fn markdown(&self) -> String {
        format!("# Smoke test\n\n{}\n\n{}", self.headline(), self.table())
    }
}

/// Nearest-rank percentile (`p` in 0–100) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Failure;

    fn result(name: &str, passed: bool, latency: Option<f64>) -> ProbeResult {
        ProbeResult {
            name: name.into(),
            method: "GET".into(),
            url: format!("http://h/{name}"),
            passed,
            attempts: if passed { 1 } else { 3 },
            status: latency.map(|_| if passed { 200 } else { 500 }),
            latency_ms: latency,
            failures: if passed {
                vec![]
            } else {
                vec![Failure {
                    check: "status".into(),
                    expected: "200".into(),
                    observed: "500".into(),
                    observed_value: Some(500.0),
                    expected_value: Some(200.0),
                }]
            },
            backoff_ms: vec![],
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&v, 100.0), Some(20.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn counts_gates_and_table() {
        let r = Results::new(
            Some("http://h".into()),
            vec![
                result("health", true, Some(4.0)),
                result("version", false, Some(10.0)),
            ],
        );
        assert_eq!((r.passed, r.failed), (1, 1));
        assert_eq!(r.p95_ms, Some(10.0));
        let gates = r.gates();
        assert_eq!(gates.len(), 1);
        assert_eq!(gates[0].name, "probe version");
        assert_eq!(gates[0].observed, Some(500.0));
        assert_eq!(gates[0].threshold, Some(200.0));
        assert_eq!(
            gates[0].message,
            "GET http://h/version after 3 attempt(s): status: observed 500, expected 200"
        );
        assert_eq!(
            r.headline(),
            "1 of 2 probe(s) failed (version), p95 10.0 ms"
        );
        let table = r.table();
        assert!(
            table.contains("| health | GET http://h/health | 200 | 4.0 ms | 1 | pass |"),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
        assert_eq!(json["failed"], 1);
        assert_eq!(json["probes"][1]["failures"][0]["observed"], "500");
    }
}
