//! Evidence from upstream artifacts: the `canary` stage's
//! `canary-analysis.json` (decision, versions, and each analysis with its
//! phase, observed value, threshold and lines). It fills in what the
//! runner's reserved outputs (`sluice.gates`, `sluice.state`) leave unknown,
//! and its lines go into the incident report.

use serde::{Deserialize, Serialize};
use sluice_sdk::Context;

use crate::upstream::{GateResult, StageResult};

/// One analysis of a canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Step number.
    #[serde(default)]
    pub step: u32,
    /// `Successful`, `Failed`, `Inconclusive`, `Error`.
    #[serde(default)]
    pub phase: String,
    /// Judge score.
    #[serde(default)]
    pub score: Option<f64>,
    /// Observed value.
    #[serde(default)]
    pub observed: Option<f64>,
    /// Threshold.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Why.
    #[serde(default)]
    pub why: String,
    /// Detail lines.
    #[serde(default)]
    pub lines: Vec<String>,
    /// The analysis' metrics (`canary.<name>.p_value`, `canary.score` …).
    #[serde(default)]
    pub metrics: Vec<NamedValue>,
    /// The structured verdicts (absent from files of older canaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<AnalysisDetails>,
}

/// `details` of an analysis: what decided it, as data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDetails {
    /// The Argo-style metric whose failure decided the analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The judge's verdicts, when a judge ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeDetails>,
}

/// The judge of an analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeDetails {
    /// The path its synthetic load requested (none for `source: access-log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// One verdict per judge metric.
    #[serde(default)]
    pub metrics: Vec<JudgeMetric>,
}

/// One judge metric's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeMetric {
    /// The metric's name.
    #[serde(default)]
    pub name: String,
    /// Kayenta's classification: `pass`, `high`, `low` or `nodata`.
    #[serde(default)]
    pub classification: String,
    /// The baseline's center (mean, median, p95 or error rate).
    #[serde(default)]
    pub baseline: Option<f64>,
    /// The canary's.
    #[serde(default)]
    pub canary: Option<f64>,
    /// The p-value of its test, when it has one.
    #[serde(default)]
    pub p_value: Option<f64>,
}

impl JudgeMetric {
    /// Whether the judge found the canary worse (or better, for a
    /// `decrease` metric) beyond its limits.
    pub fn failed(&self) -> bool {
        matches!(self.classification.as_str(), "high" | "low")
    }
}

/// One `{name, value}` of an analysis' `metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedValue {
    /// Metric name.
    #[serde(default)]
    pub name: String,
    /// Its value (`null` when not finite).
    #[serde(default)]
    pub value: Option<f64>,
}

impl Analysis {
    /// Whether this analysis did not succeed.
    pub fn failed(&self) -> bool {
        !self.phase.eq_ignore_ascii_case("successful")
    }
}

/// `canary-analysis.json` of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The stage that wrote it.
    #[serde(default)]
    pub stage: String,
    /// `promoted`, `aborted`, `paused`, `passed`.
    #[serde(default)]
    pub decision: String,
    /// Final candidate weight.
    #[serde(default)]
    pub weight: Option<f64>,
    /// The analyses in order.
    #[serde(default)]
    pub analyses: Vec<Analysis>,
}

impl Canary {
    /// The gate the canary stage reported for its last failed analysis.
    pub fn gate(&self) -> Option<GateResult> {
        let a = self.analyses.iter().rev().find(|a| a.failed())?;
        Some(GateResult {
            name: "canary.analysis".into(),
            verdict: if a.phase.eq_ignore_ascii_case("inconclusive") {
                "inconclusive".into()
            } else {
                "fail".into()
            },
            observed: a.observed,
            threshold: a.threshold,
            condition: None,
            source: Some("canary-analysis.json".into()),
            message: format!("step {} {}: {}", a.step, a.phase, a.why),
        })
    }
}

/// One sample of a `monitor.json` watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSample {
    /// Seconds since the watch started.
    #[serde(default)]
    pub t: f64,
    /// The SLOs this sample breached.
    #[serde(default)]
    pub breaches: Vec<String>,
}

/// What `remediate` uses of a `monitor` stage's `monitor.json`: when the
/// first sample breached an SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    /// The stage that wrote it.
    #[serde(default)]
    pub stage: String,
    /// Every look, in order.
    #[serde(default)]
    pub samples: Vec<MonitorSample>,
}

impl Monitor {
    /// The first sample that breached an SLO: seconds into the watch and
    /// what it breached.
    pub fn first_breach(&self) -> Option<&MonitorSample> {
        self.samples.iter().find(|s| !s.breaches.is_empty())
    }
}

/// Parses one `monitor.json`.
pub fn parse_monitor(stage: &str, text: &str) -> Result<Monitor, String> {
    let mut m: Monitor = serde_json::from_str(text).map_err(|e| e.to_string())?;
    m.stage = stage.to_string();
    Ok(m)
}

/// Reads every `monitor.json` among the inputs. Unreadable ones are
/// reported as warnings.
pub fn read_monitors(ctx: &Context) -> (Vec<Monitor>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for a in ctx.inputs() {
        if a.name != "monitor.json" && !a.name.ends_with("/monitor.json") {
            continue;
        }
        match std::fs::read_to_string(ctx.input_path(a)) {
            Ok(text) => match parse_monitor(&a.stage, &text) {
                Ok(m) => out.push(m),
                Err(e) => warnings.push(format!("{}/{}: not readable: {e}", a.stage, a.name)),
            },
            Err(e) => warnings.push(format!("{}/{}: {e}", a.stage, a.name)),
        }
    }
    (out, warnings)
}

/// Parses one `canary-analysis.json`.
pub fn parse_canary(stage: &str, text: &str) -> Result<Canary, String> {
    let mut c: Canary = serde_json::from_str(text).map_err(|e| e.to_string())?;
    c.stage = stage.to_string();
    Ok(c)
}

/// Reads every `canary-analysis.json` among the inputs. Unreadable ones are
/// reported as warnings.
pub fn read(ctx: &Context) -> (Vec<Canary>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for a in ctx.inputs() {
        if a.name != "canary-analysis.json" && !a.name.ends_with("/canary-analysis.json") {
            continue;
        }
        match std::fs::read_to_string(ctx.input_path(a)) {
            Ok(text) => match parse_canary(&a.stage, &text) {
                Ok(c) => out.push(c),
                Err(e) => warnings.push(format!("{}/{}: not readable: {e}", a.stage, a.name)),
            },
            Err(e) => warnings.push(format!("{}/{}: {e}", a.stage, a.name)),
        }
    }
    (out, warnings)
}

/// Completes the upstream results with the canaries' evidence: unknown
/// gates become the canary's analysis gate, an unknown state of an aborted
/// canary becomes `failed`. Returns notes for the report.
pub fn complete(stages: &mut Vec<StageResult>, canaries: &[Canary]) -> Vec<String> {
    let mut notes = Vec::new();
    for c in canaries {
        let idx = match stages.iter().position(|s| s.stage == c.stage) {
            Some(i) => i,
            None => {
                stages.push(StageResult {
                    stage: c.stage.clone(),
                    ..StageResult::default()
                });
                stages.len() - 1
            }
        };
        let s = &mut stages[idx];
        if s.gates.is_none() {
            if let Some(g) = c.gate() {
                s.gates = Some(vec![g]);
                notes.push(format!(
                    "gates of stage {} taken from its canary-analysis.json",
                    c.stage
                ));
            }
        }
        if s.state.is_none() && c.decision == "aborted" {
            s.state = Some("failed".into());
            notes.push(format!(
                "stage {}: state inferred from its canary-analysis.json (decision aborted)",
                c.stage
            ));
        }
        if s.reason.is_none() && c.decision == "aborted" {
            s.reason = c
                .analyses
                .iter()
                .rev()
                .find(|a| a.failed())
                .map(|a| format!("canary aborted: {}", a.why));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABORTED: &str = r#"{
      "decision": "aborted",
      "stable": {"slot": "blue", "version": "1.0.0"},
      "candidate": {"slot": "green", "version": "2.0.0"},
      "weight": 0, "steps_completed": 1,
      "analyses": [{"step": 2, "phase": "Failed", "score": 0.0, "observed": 0.0,
                    "threshold": 75.0, "why": "judge score 0 (fail)",
                    "lines": ["`errors` failed: p=0.0001"], "metrics": []}]
    }"#;

    #[test]
    fn fills_unknown_gates_and_state_from_the_analysis() {
        let c = parse_canary("canary", ABORTED).expect("parse");
        let mut stages = vec![];
        let notes = complete(&mut stages, &[c]);
        assert_eq!(notes.len(), 2);
        let s = &stages[0];
        assert!(s.failed());
        let g = &s.failed_gates()[0];
        assert_eq!(g.name, "canary.analysis");
        assert_eq!(g.threshold, Some(75.0));
        assert_eq!(g.message, "step 2 Failed: judge score 0 (fail)");
        assert_eq!(
            s.reason.as_deref(),
            Some("canary aborted: judge score 0 (fail)")
        );
    }

    #[test]
    fn keeps_what_the_runner_said() {
        let c = parse_canary("canary", ABORTED).expect("parse");
        let mut stages = vec![StageResult {
            stage: "canary".into(),
            state: Some("blocked".into()),
            gates: Some(vec![]),
            ..StageResult::default()
        }];
        assert!(complete(&mut stages, &[c]).is_empty());
        assert_eq!(stages[0].state.as_deref(), Some("blocked"));
    }
}
