//! [`Report`] builder, [`Gate`]s and [`ArtifactInfo`]: what a stage
//! returns when it ran.

use sluice_types::findings::{Finding, FindingLevel, FindingLocation};
use sluice_types::ArtifactRole;

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

/// A file the stage left under `/artifacts/out`, described: media type, role
/// and annotations.
///
/// ```
/// use sluice_sdk::{ArtifactInfo, ArtifactRole};
/// let info = ArtifactInfo::new("dist/app.tar.gz")
///     .media_type("application/gzip")
///     .role(ArtifactRole::Package)
///     .annotation("org.opencontainers.image.version", "1.4.0");
/// assert_eq!(info.annotations.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArtifactInfo {
    /// Path relative to `/artifacts/out`, `/`-separated.
    pub path: String,
    /// IANA media type; `application/octet-stream` when `None`.
    pub media_type: Option<String>,
    /// What the artifact is for.
    pub role: Option<ArtifactRole>,
    /// Key/value annotations for consumers (keys unique, at most 64 pairs
    /// and 16 KiB in total).
    pub annotations: Vec<(String, String)>,
}

impl ArtifactInfo {
    /// A description of the file at `relative_path` (`/`-separated).
    ///
    /// ```
    /// let info = sluice_sdk::ArtifactInfo::new("report.html");
    /// # assert!(info.role.is_none());
    /// ```
    pub fn new(relative_path: impl Into<String>) -> Self {
        Self {
            path: relative_path.into(),
            ..Self::default()
        }
    }

    /// Sets the media type.
    ///
    /// ```
    /// let info = sluice_sdk::ArtifactInfo::new("a.json").media_type("application/json");
    /// # assert_eq!(info.media_type.as_deref(), Some("application/json"));
    /// ```
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// Sets the role; an [`ArtifactRole::Other`] word must be lowercase
    /// letters, digits and dashes (at most 64).
    ///
    /// ```
    /// use sluice_sdk::{ArtifactInfo, ArtifactRole};
    /// let info = ArtifactInfo::new("img.tar").role(ArtifactRole::Other("container-image".into()));
    /// # assert!(info.role.is_some());
    /// ```
    pub fn role(mut self, role: ArtifactRole) -> Self {
        self.role = Some(role);
        self
    }

    /// Adds an annotation; setting a key again replaces its value.
    ///
    /// ```
    /// let info = sluice_sdk::ArtifactInfo::new("a").annotation("k", "1").annotation("k", "2");
    /// assert_eq!(info.annotations, vec![("k".to_string(), "2".to_string())]);
    /// ```
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.annotations.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.annotations.push((key, value)),
        }
        self
    }

    /// Checks the role and annotations with the runner's rules.
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(role) = &self.role {
            role.check()
                .map_err(|e| format!("artifact `{}`: {e}", self.path))?;
        }
        sluice_types::check_annotations(&self.path, &self.annotations).map_err(|e| e.to_string())
    }

    fn into_wit(self) -> wit::ArtifactInfo {
        wit::ArtifactInfo {
            path: self.path,
            media_type: self.media_type,
            role: self.role.map(role_into_wit),
            annotations: self.annotations,
        }
    }
}

pub(crate) fn role_into_wit(role: ArtifactRole) -> wit::ArtifactRole {
    match role {
        ArtifactRole::Report => wit::ArtifactRole::Report,
        ArtifactRole::TestResults => wit::ArtifactRole::TestResults,
        ArtifactRole::Coverage => wit::ArtifactRole::Coverage,
        ArtifactRole::Package => wit::ArtifactRole::Package,
        ArtifactRole::Sbom => wit::ArtifactRole::Sbom,
        ArtifactRole::Provenance => wit::ArtifactRole::Provenance,
        ArtifactRole::Log => wit::ArtifactRole::Log,
        ArtifactRole::Other(s) => wit::ArtifactRole::Other(s),
    }
}

pub(crate) fn role_from_wit(role: wit::ArtifactRole) -> ArtifactRole {
    match role {
        wit::ArtifactRole::Report => ArtifactRole::Report,
        wit::ArtifactRole::TestResults => ArtifactRole::TestResults,
        wit::ArtifactRole::Coverage => ArtifactRole::Coverage,
        wit::ArtifactRole::Package => ArtifactRole::Package,
        wit::ArtifactRole::Sbom => ArtifactRole::Sbom,
        wit::ArtifactRole::Provenance => ArtifactRole::Provenance,
        wit::ArtifactRole::Log => ArtifactRole::Log,
        wit::ArtifactRole::Other(s) => ArtifactRole::Other(s),
    }
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
    /// Descriptions of files under `/artifacts/out`.
    pub artifacts: Vec<ArtifactInfo>,
    /// What the stage found: `None` when it does not report findings,
    /// `Some(empty)` when it looked and found nothing.
    pub findings: Option<Vec<Finding>>,
    /// Set by [`skip_sdk_checks`](Self::skip_sdk_checks).
    #[doc(hidden)]
    pub skip_sdk_checks: bool,
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
    pub fn artifact(self, relative_path: impl Into<String>, media_type: impl Into<String>) -> Self {
        self.artifact_info(ArtifactInfo::new(relative_path).media_type(media_type))
    }

    /// Describes a file the stage wrote under `/artifacts/out`, with role
    /// and annotations. A second description of the same path replaces the
    /// first.
    ///
    /// ```
    /// use sluice_sdk::{ArtifactInfo, ArtifactRole, Report};
    /// let r = Report::new("ok").artifact_info(
    ///     ArtifactInfo::new("junit.xml").media_type("application/xml").role(ArtifactRole::TestResults),
    /// );
    /// # assert_eq!(r.artifacts[0].role, Some(ArtifactRole::TestResults));
    /// ```
    pub fn artifact_info(mut self, info: ArtifactInfo) -> Self {
        self.artifacts.retain(|a| a.path != info.path);
        self.artifacts.push(info);
        self
    }

    /// Sets the stage's findings (even an empty list: "looked and found
    /// nothing", which writes an empty SARIF run). Accepts [`Finding`]s or
    /// [`FindingBuilder`](crate::findings::FindingBuilder)s. The SDK checks
    /// them before the report leaves the stage; a bad one fails the stage
    /// with a message naming it.
    ///
    /// ```
    /// use sluice_sdk::{findings, Report};
    /// let r = Report::new("2 findings").findings([
    ///     findings::warning("E501", "line too long").at("src/a.py", 3),
    ///     findings::note("TODO", "left a TODO").at("src/b.py", 9),
    /// ]);
    /// assert_eq!(r.findings.map(|f| f.len()), Some(2));
    /// assert_eq!(Report::new("clean").findings(Vec::<sluice_sdk::findings::Finding>::new()).findings, Some(vec![]));
    /// ```
    pub fn findings<F: Into<Finding>>(mut self, findings: impl IntoIterator<Item = F>) -> Self {
        self.findings = Some(findings.into_iter().map(Into::into).collect());
        self
    }

    /// Returns the report without the SDK's own checks of findings and
    /// artifact descriptions, so that the runner sees what the stage wrote.
    /// Only for test plugins that exercise the runner's checks.
    #[doc(hidden)]
    pub fn skip_sdk_checks(mut self) -> Self {
        self.skip_sdk_checks = true;
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
            artifacts: self
                .artifacts
                .into_iter()
                .map(ArtifactInfo::into_wit)
                .collect(),
            findings: self
                .findings
                .map(|f| f.into_iter().map(finding_into_wit).collect()),
        }
    }
}

fn finding_into_wit(f: Finding) -> wit::Finding {
    wit::Finding {
        rule_id: f.rule_id,
        level: match f.level {
            FindingLevel::Note => wit::FindingLevel::Note,
            FindingLevel::Warning => wit::FindingLevel::Warning,
            FindingLevel::Error => wit::FindingLevel::Error,
        },
        message: f.message,
        location: f.location.map(|l: FindingLocation| wit::Location {
            path: l.path,
            start_line: l.start_line,
            start_column: l.start_column,
            end_line: l.end_line,
            end_column: l.end_column,
        }),
        fingerprint: f.fingerprint,
        help_uri: f.help_uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_descriptions_are_checked() {
        let ok = ArtifactInfo::new("a.tar")
            .role(ArtifactRole::Other("container-image".into()))
            .annotation("v", "1");
        assert_eq!(ok.check(), Ok(()));
        let bad_role = ArtifactInfo::new("a.tar").role(ArtifactRole::Other("Bad Role".into()));
        let e = bad_role.check().err().unwrap_or_default();
        assert!(
            e.starts_with("artifact `a.tar`: artifact role `Bad Role`"),
            "{e}"
        );
        let mut bad = ArtifactInfo::new("b");
        bad.annotations = vec![("k".into(), "1".into()), ("k".into(), "2".into())];
        assert!(bad.check().is_err());
    }

    #[test]
    fn a_second_description_replaces_the_first() {
        let r = Report::new("x")
            .artifact("a", "text/plain")
            .artifact_info(ArtifactInfo::new("a").role(ArtifactRole::Log));
        assert_eq!(r.artifacts.len(), 1);
        assert_eq!(r.artifacts[0].media_type, None);
    }

    #[test]
    fn roles_map_both_ways() {
        for role in [
            ArtifactRole::Report,
            ArtifactRole::TestResults,
            ArtifactRole::Coverage,
            ArtifactRole::Package,
            ArtifactRole::Sbom,
            ArtifactRole::Provenance,
            ArtifactRole::Log,
            ArtifactRole::Other("x".into()),
        ] {
            assert_eq!(role_from_wit(role_into_wit(role.clone())), role);
        }
    }
}
