//! What the stages this one `needs` did, from the runner's reserved
//! upstream outputs: `sluice.state`, `sluice.reason`, `sluice.gates` (a JSON
//! array of `{name, verdict, observed, threshold, message}`),
//! `sluice.started_at` and `sluice.finished_at` (RFC 3339). A value the
//! runner did not provide stays `None` and the report says "unknown".

use serde::{Deserialize, Serialize};
use sluice_sdk::UpstreamOutput;

/// One gate of an upstream stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// Gate name.
    #[serde(default)]
    pub name: String,
    /// `pass`, `warn`, `fail`, `inconclusive` (as the runner wrote it).
    #[serde(default)]
    pub verdict: String,
    /// Observed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// Threshold (a number, from `threshold` or a `threshold N` condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The runner's condition text (`<= 0`, `>= 80`, `threshold 0.05`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// `pipeline` or `plugin`, as the runner wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: String,
}

impl GateResult {
    /// Fills `threshold` from a `threshold N` condition, or a bare number.
    pub fn normalize(mut self) -> Self {
        if self.threshold.is_none() {
            if let Some(c) = &self.condition {
                let n = c.trim().strip_prefix("threshold").unwrap_or(c).trim();
                self.threshold = n.parse::<f64>().ok().filter(|x| x.is_finite());
            }
        }
        self
    }

    /// The threshold for display: the number, else the condition, else
    /// `unknown`.
    pub fn threshold_text(&self, num: impl Fn(Option<f64>) -> String) -> String {
        match (&self.threshold, &self.condition) {
            (Some(_), _) => num(self.threshold),
            (None, Some(c)) => c.clone(),
            (None, None) => "unknown".into(),
        }
    }

    /// Whether the gate did not hold (fail or inconclusive).
    pub fn failed(&self) -> bool {
        matches!(
            self.verdict.to_ascii_lowercase().as_str(),
            "fail" | "failed" | "inconclusive" | "block" | "blocked"
        )
    }
}

/// One upstream stage's result.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StageResult {
    /// Stage name.
    pub stage: String,
    /// passed | failed | blocked | skipped | cancelled, if known.
    pub state: Option<String>,
    /// Why it ended so.
    pub reason: Option<String>,
    /// Its gates, if known.
    pub gates: Option<Vec<GateResult>>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Its own outputs (non-reserved), e.g. `version`.
    pub outputs: Vec<(String, String)>,
}

impl StageResult {
    /// Whether the stage failed or was blocked.
    pub fn failed(&self) -> bool {
        matches!(self.state.as_deref(), Some("failed" | "blocked"))
    }

    /// The gates that did not hold.
    pub fn failed_gates(&self) -> Vec<&GateResult> {
        self.gates.iter().flatten().filter(|g| g.failed()).collect()
    }
}

/// Groups the upstream outputs by stage, in the order the stages first
/// appear. Unparseable `sluice.gates` is kept as unknown and reported in the
/// returned warnings.
pub fn collect(outputs: &[UpstreamOutput]) -> (Vec<StageResult>, Vec<String>) {
    let mut stages: Vec<StageResult> = Vec::new();
    let mut warnings = Vec::new();
    for o in outputs {
        let idx = match stages.iter().position(|s| s.stage == o.stage) {
            Some(i) => i,
            None => {
                stages.push(StageResult {
                    stage: o.stage.clone(),
                    ..StageResult::default()
                });
                stages.len() - 1
            }
        };
        let s = &mut stages[idx];
        match o.name.as_str() {
            "sluice.state" => s.state = Some(o.value.clone()),
            "sluice.reason" => s.reason = Some(o.value.clone()).filter(|r| !r.is_empty()),
            "sluice.started_at" => s.started_at = Some(o.value.clone()).filter(|r| !r.is_empty()),
            "sluice.finished_at" => s.finished_at = Some(o.value.clone()).filter(|r| !r.is_empty()),
            "sluice.gates" => match serde_json::from_str::<Vec<GateResult>>(&o.value) {
                Ok(g) => s.gates = Some(g.into_iter().map(GateResult::normalize).collect()),
                Err(e) => warnings.push(format!(
                    "stage {}: sluice.gates is not a JSON array of gates ({e}); gates unknown",
                    o.stage
                )),
            },
            name if name.starts_with("sluice.") => {}
            name => s.outputs.push((name.to_string(), o.value.clone())),
        }
    }
    (stages, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stage: &str, name: &str, value: &str) -> UpstreamOutput {
        UpstreamOutput {
            stage: stage.into(),
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn groups_reserved_outputs_by_stage() {
        let (stages, warnings) = collect(&[
            out("canary", "sluice.state", "failed"),
            out("canary", "sluice.reason", "analysis failed"),
            out(
                "canary",
                "sluice.gates",
                r#"[{"name":"error-rate","source":"plugin","verdict":"fail","observed":0.34,"condition":"threshold 0.05","message":"34% errors"},
                    {"name":"latency","verdict":"pass","observed":3.0,"threshold":250.0,"message":"ok"},
                    {"name":"smoke.failed","source":"pipeline","verdict":"pass","observed":0,"condition":"<= 0","message":"ok"}]"#,
            ),
            out("canary", "sluice.started_at", "2026-11-22T05:00:00Z"),
            out("monitor", "sluice.state", "skipped"),
            out("canary", "weight", "0"),
            out("monitor", "sluice.gates", "not json"),
        ]);
        assert_eq!(stages.len(), 2);
        let c = &stages[0];
        assert!(c.failed());
        assert_eq!(c.reason.as_deref(), Some("analysis failed"));
        assert_eq!(c.failed_gates().len(), 1);
        assert_eq!(c.failed_gates()[0].observed, Some(0.34));
        assert_eq!(c.failed_gates()[0].threshold, Some(0.05));
        let gates = c.gates.as_ref().expect("gates");
        assert_eq!(gates[2].threshold, None);
        assert_eq!(gates[2].threshold_text(|_| String::new()), "<= 0");
        assert_eq!(c.outputs, vec![("weight".to_string(), "0".to_string())]);
        assert_eq!(c.finished_at, None);
        assert!(!stages[1].failed());
        assert_eq!(stages[1].gates, None);
        assert_eq!(warnings.len(), 1);
    }
}
