//! What a strategy did, turned into the stage's report.

use sluice_sdk::{Gate, Report};

/// The result of one strategy run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The slot the new version went to (rolling: the first instance).
    pub slot: String,
    /// The slot serving production traffic afterwards.
    pub stable_slot: String,
    /// The version that served before, if any.
    pub previous_version: Option<String>,
    /// URL of [`slot`](Self::slot), when known.
    pub url: Option<String>,
    /// One line for the report.
    pub summary: String,
    /// Extra metrics.
    pub metrics: Vec<(String, f64)>,
    /// Failing (or passing) plugin gates.
    pub gates: Vec<Gate>,
    /// Extra outputs.
    pub outputs: Vec<(String, String)>,
}

impl Outcome {
    /// Adds a metric.
    pub fn metric(mut self, name: &str, value: f64) -> Self {
        self.metrics.push((name.to_string(), value));
        self
    }

    /// Adds an output.
    pub fn output(mut self, name: &str, value: impl Into<String>) -> Self {
        self.outputs.push((name.to_string(), value.into()));
        self
    }

    /// Adds a gate.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// The report: outputs `environment`, `version`, `previous-version`,
    /// `slot`, `url`, `stable-slot`, `strategy` (+ extras), metric
    /// `deploy.duration_s` (+ extras), gates.
    pub fn into_report(
        self,
        environment: &str,
        version: &str,
        strategy: &str,
        duration_s: f64,
    ) -> Report {
        let mut r = Report::new(self.summary)
            .output("environment", environment)
            .output("version", version)
            .output(
                "previous-version",
                self.previous_version.unwrap_or_default(),
            )
            .output("slot", self.slot)
            .output("url", self.url.unwrap_or_default())
            .output("stable-slot", self.stable_slot)
            .output("strategy", strategy)
            .metric_with_unit("deploy.duration_s", duration_s, "s");
        for (k, v) in self.outputs {
            r = r.output(k, v);
        }
        for (k, v) in self.metrics {
            r = r.metric(k, v);
        }
        for g in self.gates {
            r = r.gate(g);
        }
        r
    }
}
