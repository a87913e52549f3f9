//! [`Report`] builder and [`Gate`]s: what a stage returns when it ran.

use crate::bindings::sluice::stage::types as wit;

/// The outcome of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The check held.
    Pass,
    /// The check did not hold, but it must not stop the pipeline.
    Warn,
    /// The check did not hold; the pipeline stops.
    Fail,
    /// The check could not be decided; treated as not passed.
    Inconclusive,
}

/// A decision the stage made itself, combined by the runner with the
/// pipeline's own metric gates.
///
/// ```
/// use sluice_sdk::Gate;
/// let g = Gate::fail("critical-vulns", "2 critical vulnerabilities").observed(2.0).threshold(0.0);
/// assert_eq!(g.verdict, sluice_sdk::Verdict::Fail);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Short name, unique within one report.
    pub name: String,
    /// What the stage decided.
    pub verdict: Verdict,
    /// The observed value, when the gate is numeric.
    pub observed: Option<f64>,
    /// The threshold it was compared with, when the gate is numeric.
    pub threshold: Option<f64>,
    /// One line a person can act on.
    pub message: String,
}

impl Gate {
    /// A gate with any verdict.
    ///
    /// ```
    /// use sluice_sdk::{Gate, Verdict};
    /// let g = Gate::new("coverage", Verdict::Warn, "coverage fell below 80%");
    /// # assert_eq!(g.name, "coverage");
    /// ```
    pub fn new(name: impl Into<String>, verdict: Verdict, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict,
            observed: None,
            threshold: None,
            message: message.into(),
        }
    }

    /// A gate that held.
    ///
    /// ```
    /// let g = sluice_sdk::Gate::pass("lint", "no findings");
    /// # assert_eq!(g.verdict, sluice_sdk::Verdict::Pass);
    /// ```
    pub fn pass(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Verdict::Pass, message)
    }

    /// A gate that did not hold but must not stop the pipeline.
    ///
    /// ```
    /// let g = sluice_sdk::Gate::warn("coverage", "79% < 80%").observed(79.0).threshold(80.0);
    /// # assert_eq!(g.threshold, Some(80.0));
    /// ```
    pub fn warn(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Verdict::Warn, message)
    }

    /// A gate that did not hold; the pipeline stops.
    ///
    /// ```
    /// let g = sluice_sdk::Gate::fail("tests", "3 tests failed").observed(3.0).threshold(0.0);
    /// # assert_eq!(g.observed, Some(3.0));
    /// ```
    pub fn fail(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Verdict::Fail, message)
    }

    /// A gate that could not be decided (for example, too little data).
    ///
    /// ```
    /// let g = sluice_sdk::Gate::inconclusive("canary", "only 12 requests observed");
    /// # assert_eq!(g.verdict, sluice_sdk::Verdict::Inconclusive);
    /// ```
    pub fn inconclusive(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Verdict::Inconclusive, message)
    }

    /// Sets the observed value.
    ///
    /// ```
    /// let g = sluice_sdk::Gate::pass("p99", "fast enough").observed(120.0);
    /// # assert_eq!(g.observed, Some(120.0));
    /// ```
    pub fn observed(mut self, value: f64) -> Self {
        self.observed = Some(value);
        self
    }

    /// Sets the threshold the observed value was compared with.
    ///
    /// ```
    /// let g = sluice_sdk::Gate::pass("p99", "fast enough").threshold(250.0);
    /// # assert_eq!(g.threshold, Some(250.0));
    /// ```
    pub fn threshold(mut self, value: f64) -> Self {
        self.threshold = Some(value);
        self
    }
}

/// One measured value; pipelines gate on metrics by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Dotted lowercase name, unique within one report (`tests.failed`).
    pub name: String,
    /// The value; NaN and infinities are rejected by the runner.
    pub value: f64,
    /// Optional unit for display (`%`, `ms`, `s`, `bytes`).
    pub unit: Option<String>,
}

/// What a stage returns when it ran to completion.
///
/// ```
/// use sluice_sdk::{Gate, Report};
///
/// let report = Report::new("**42** tests passed")
///     .metric("tests.passed", 42.0)
///     .metric_with_unit("tests.duration", 3.2, "s")
///     .gate(Gate::pass("tests", "all tests passed"))
///     .output("version", "1.2.3")
///     .artifact("junit.xml", "application/xml");
/// assert_eq!(report.metrics.len(), 2);
/// ```
///
/// The runner rejects a report that repeats a metric or gate name, reports a
/// non-finite metric, declares an artifact that does not exist, or whose
/// outputs exceed 64 KiB in total.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Short markdown shown in the console and in reports.
    pub summary: String,
    /// Measured values.
    pub metrics: Vec<Metric>,
    /// The stage's own decisions.
    pub gates: Vec<Gate>,
    /// Small named values for later stages (`${{ stages.<s>.outputs.<name> }}`).
    pub outputs: Vec<(String, String)>,
    /// Media types of files under `/artifacts/out` (relative path → media type).
    pub artifacts: Vec<(String, String)>,
}

impl Report {
    /// A report with a short markdown summary.
    ///
    /// ```
    /// let r = sluice_sdk::Report::new("deployed **1.2.3**");
    /// # assert_eq!(r.summary, "deployed **1.2.3**");
    /// ```
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            ..Self::default()
        }
    }

    /// Adds a metric without a unit.
    ///
    /// ```
    /// let r = sluice_sdk::Report::new("ok").metric("tests.failed", 0.0);
    /// # assert_eq!(r.metrics[0].value, 0.0);
    /// ```
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
            unit: None,
        });
        self
    }

    /// Adds a metric with a display unit.
    ///
    /// ```
    /// let r = sluice_sdk::Report::new("ok").metric_with_unit("coverage.line", 83.5, "%");
    /// # assert_eq!(r.metrics[0].unit.as_deref(), Some("%"));
    /// ```
    pub fn metric_with_unit(
        mut self,
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
            unit: Some(unit.into()),
        });
        self
    }

    /// Adds a gate.
    ///
    /// ```
    /// use sluice_sdk::{Gate, Report};
    /// let r = Report::new("scan").gate(Gate::pass("critical", "none found"));
    /// # assert_eq!(r.gates.len(), 1);
    /// ```
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// Adds an output for later stages.
    ///
    /// ```
    /// let r = sluice_sdk::Report::new("built").output("image", "shop-api:1.2.3");
    /// # assert_eq!(r.outputs[0].1, "shop-api:1.2.3");
    /// ```
    pub fn output(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.outputs.push((name.into(), value.into()));
        self
    }

    /// Declares the media type of a file the stage wrote under
    /// `/artifacts/out` (`relative_path` uses `/`). Files written with
    /// [`Context::write_artifact`](crate::Context::write_artifact) are
    /// declared already.
    ///
    /// ```
    /// let r = sluice_sdk::Report::new("ok").artifact("sbom.json", "application/spdx+json");
    /// # assert_eq!(r.artifacts.len(), 1);
    /// ```
    pub fn artifact(
        mut self,
        relative_path: impl Into<String>,
        media_type: impl Into<String>,
    ) -> Self {
        self.artifacts
            .push((relative_path.into(), media_type.into()));
        self
    }

    pub(crate) fn into_wit(self) -> wit::Report {
        wit::Report {
            summary: self.summary,
            metrics: self
                .metrics
                .into_iter()
                .map(|m| wit::Metric {
                    name: m.name,
                    value: m.value,
                    unit: m.unit,
                })
                .collect(),
            gates: self
                .gates
                .into_iter()
                .map(|g| wit::Gate {
                    name: g.name,
                    verdict: match g.verdict {
                        Verdict::Pass => wit::Verdict::Pass,
                        Verdict::Warn => wit::Verdict::Warn,
                        Verdict::Fail => wit::Verdict::Fail,
                        Verdict::Inconclusive => wit::Verdict::Inconclusive,
                    },
                    observed: g.observed,
                    threshold: g.threshold,
                    message: g.message,
                })
                .collect(),
            outputs: self.outputs,
            artifacts: self.artifacts,
        }
    }
}
