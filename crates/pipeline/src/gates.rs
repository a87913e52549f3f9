//! Gates: the pipeline's metric thresholds and the plugin's own verdicts,
//! combined into one verdict per stage.
//!
//! Rules (documented in the README):
//! - A pipeline gate passes when the metric satisfies every bound it names
//!   (`min` ≤ value, value ≤ `max`, value = `equals`).
//! - A gate whose metric the stage did not report is `inconclusive`: a
//!   missing measurement must never pass silently.
//! - A failed or inconclusive gate with `on-fail: warn` becomes `warn`.
//! - The stage verdict is the worst of its gates: fail > inconclusive > warn
//!   > pass. `fail` and `inconclusive` stop the run (state `blocked`).

use serde::{Deserialize, Serialize};

use crate::{GateSpec, OnFail};

/// Outcome of a gate or a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The check held.
    Pass,
    /// It did not hold but must not stop the run.
    Warn,
    /// It could not be decided.
    Inconclusive,
    /// It did not hold.
    Fail,
}

impl Verdict {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Fail => "fail",
        }
    }
}

/// Where a gate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateSource {
    /// `gates:` in the pipeline file.
    Pipeline,
    /// The plugin's report.
    Plugin,
}

/// One evaluated gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// Metric name (pipeline gates) or gate name (plugin gates).
    pub name: String,
    /// Who defined it.
    pub source: GateSource,
    /// Outcome after `on-fail`.
    pub verdict: Verdict,
    /// Observed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// Human-readable condition, e.g. `<= 0` or `>= 80`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// One line explaining the outcome.
    pub message: String,
}

/// A gate the plugin reported about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginGate {
    /// Gate name.
    pub name: String,
    /// The plugin's verdict.
    pub verdict: Verdict,
    /// Observed value.
    pub observed: Option<f64>,
    /// Threshold.
    pub threshold: Option<f64>,
    /// Message.
    pub message: String,
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

fn condition(spec: &GateSpec) -> String {
    let mut parts = Vec::new();
    if let Some(min) = spec.min {
        parts.push(format!(">= {}", fmt_num(min)));
    }
    if let Some(max) = spec.max {
        parts.push(format!("<= {}", fmt_num(max)));
    }
    if let Some(eq) = spec.equals {
        parts.push(format!("== {}", fmt_num(eq)));
    }
    parts.join(" and ")
}

fn check(spec: &GateSpec, metrics: &[(String, f64)]) -> GateResult {
    let cond = condition(spec);
    let soften = |v: Verdict| match (v, spec.on_fail) {
        (Verdict::Fail | Verdict::Inconclusive, OnFail::Warn) => Verdict::Warn,
        (v, _) => v,
    };
    let Some(value) = metrics
        .iter()
        .find(|(n, _)| *n == spec.metric)
        .map(|(_, v)| *v)
    else {
        return GateResult {
            name: spec.metric.clone(),
            source: GateSource::Pipeline,
            verdict: soften(Verdict::Inconclusive),
            observed: None,
            condition: Some(cond),
            message: format!(
                "metric `{}` was not reported by the stage, so the gate cannot be decided",
                spec.metric
            ),
        };
    };
    let mut broken = Vec::new();
    if let Some(min) = spec.min {
        if value < min {
            broken.push(format!("below the minimum {}", fmt_num(min)));
        }
    }
    if let Some(max) = spec.max {
        if value > max {
            broken.push(format!("above the maximum {}", fmt_num(max)));
        }
    }
    if let Some(eq) = spec.equals {
        if (value - eq).abs() > f64::EPSILON * eq.abs().max(1.0) {
            broken.push(format!("not equal to {}", fmt_num(eq)));
        }
    }
    let (verdict, message) = if broken.is_empty() {
        (
            Verdict::Pass,
            format!("{} = {} ({cond})", spec.metric, fmt_num(value)),
        )
    } else {
        (
            soften(Verdict::Fail),
            format!(
                "{} = {} is {}",
                spec.metric,
                fmt_num(value),
                broken.join(" and ")
            ),
        )
    };
    GateResult {
        name: spec.metric.clone(),
        source: GateSource::Pipeline,
        verdict,
        observed: Some(value),
        condition: Some(cond),
        message,
    }
}

/// Evaluate the pipeline's gates against the reported metrics and merge the
/// plugin's own gates. Returns every gate result and the stage verdict.
pub fn evaluate(
    specs: &[GateSpec],
    metrics: &[(String, f64)],
    plugin_gates: &[PluginGate],
) -> (Vec<GateResult>, Verdict) {
    let mut results: Vec<GateResult> = specs.iter().map(|s| check(s, metrics)).collect();
    results.extend(plugin_gates.iter().map(|g| GateResult {
        name: g.name.clone(),
        source: GateSource::Plugin,
        verdict: g.verdict,
        observed: g.observed,
        condition: g.threshold.map(|t| format!("threshold {}", fmt_num(t))),
        message: g.message.clone(),
    }));
    let verdict = results
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Pass);
    (results, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(metric: &str, min: Option<f64>, max: Option<f64>, on_fail: OnFail) -> GateSpec {
        GateSpec {
            metric: metric.into(),
            min,
            max,
            equals: None,
            on_fail,
        }
    }

    #[test]
    fn thresholds_and_on_fail() {
        let metrics = vec![
            ("tests.failed".to_string(), 2.0),
            ("coverage.line".to_string(), 75.5),
        ];
        let (results, verdict) = evaluate(
            &[
                spec("tests.failed", None, Some(0.0), OnFail::Block),
                spec("coverage.line", Some(80.0), None, OnFail::Warn),
            ],
            &metrics,
            &[],
        );
        assert_eq!(results[0].verdict, Verdict::Fail);
        assert_eq!(
            results[0].message,
            "tests.failed = 2 is above the maximum 0"
        );
        assert_eq!(results[1].verdict, Verdict::Warn);
        assert_eq!(verdict, Verdict::Fail);
    }

    #[test]
    fn missing_metric_is_inconclusive() {
        let (results, verdict) = evaluate(&[spec("x", Some(1.0), None, OnFail::Block)], &[], &[]);
        assert_eq!(results[0].verdict, Verdict::Inconclusive);
        assert_eq!(verdict, Verdict::Inconclusive);
        let (_, verdict) = evaluate(&[spec("x", Some(1.0), None, OnFail::Warn)], &[], &[]);
        assert_eq!(verdict, Verdict::Warn);
    }

    #[test]
    fn plugin_gates_merge() {
        let (_, verdict) = evaluate(
            &[spec("a", Some(0.0), Some(10.0), OnFail::Block)],
            &[("a".into(), 5.0)],
            &[PluginGate {
                name: "own".into(),
                verdict: Verdict::Warn,
                observed: None,
                threshold: None,
                message: "meh".into(),
            }],
        );
        assert_eq!(verdict, Verdict::Warn);
        let (r, verdict) = evaluate(
            &[GateSpec {
                metric: "e".into(),
                min: None,
                max: None,
                equals: Some(1.0),
                on_fail: OnFail::Block,
            }],
            &[("e".into(), 1.0)],
            &[],
        );
        assert_eq!(verdict, Verdict::Pass);
        assert_eq!(r[0].condition.as_deref(), Some("== 1"));
    }
}
