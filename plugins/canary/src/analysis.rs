//! Argo Rollouts analysis semantics, independent of where measurements come
//! from.
//!
//! Each measurement is `Successful`, `Failed`, `Inconclusive` or `Error`:
//!
//! | conditions given | Failed when | Successful when | Inconclusive when |
//! |---|---|---|---|
//! | none | never | always | never |
//! | `success-condition` only | it is false | it is true | never |
//! | `failure-condition` only | it is true | it is false | never |
//! | both | failure is true | success is true and failure false | neither holds |
//!
//! A provider error, or a condition that cannot be evaluated (say
//! `result[0]` on an empty vector), is an `Error` measurement.
//!
//! A metric takes `count` measurements, `interval` apart. It ends early as
//! `Failed` once more than `failure-limit` measurements failed, as
//! `Inconclusive` once more than `inconclusive-limit` were inconclusive,
//! and as `Error` once more than `consecutive-error-limit` errors came in a
//! row; otherwise it is `Successful` after its last measurement. The
//! analysis is the worst of its metrics (Error and Failed abort,
//! Inconclusive pauses) and stops as soon as one metric ends badly.

use std::time::Duration;

use crate::expr::Condition;

/// The phase of one measurement, one metric or a whole analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Held.
    Successful,
    /// Could not be decided.
    Inconclusive,
    /// Did not hold.
    Failed,
    /// Could not be measured.
    Error,
}

impl Phase {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Successful => "successful",
            Phase::Inconclusive => "inconclusive",
            Phase::Failed => "failed",
            Phase::Error => "error",
        }
    }
}

/// A validated analysis metric (its provider is kept by the caller).
#[derive(Debug, Clone)]
pub struct MetricSpec {
    /// Name, unique within the analysis.
    pub name: String,
    /// `success-condition`.
    pub success: Option<Condition>,
    /// `success-condition` as written.
    pub success_text: Option<String>,
    /// `failure-condition`.
    pub failure: Option<Condition>,
    /// `failure-condition` as written.
    pub failure_text: Option<String>,
    /// Time between measurements.
    pub interval: Duration,
    /// Number of measurements.
    pub count: u32,
    /// Failed measurements tolerated.
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated.
    pub inconclusive_limit: u32,
    /// Consecutive errors tolerated.
    pub consecutive_error_limit: u32,
    /// Argo's `dryRun`: measured and reported, but its phase never
    /// decides the analysis.
    pub dry_run: bool,
}

/// Classifies one measurement (Argo's `evaluateResult`).
pub fn evaluate(spec: &MetricSpec, result: &[f64]) -> Result<Phase, String> {
    let eval = |c: &Option<Condition>| -> Result<Option<bool>, String> {
        c.as_ref()
            .map(|c| c.eval(result))
            .transpose()
            .map_err(|e| e.to_string())
    };
    let success = eval(&spec.success)?;
    let failure = eval(&spec.failure)?;
    let (success, failure) = match (success, failure) {
        (None, None) => return Ok(Phase::Successful),
        (Some(s), None) => (s, !s),
        (None, Some(f)) => (!f, f),
        (Some(s), Some(f)) => (s, f),
    };
    Ok(if failure {
        Phase::Failed
    } else if success {
        Phase::Successful
    } else {
        Phase::Inconclusive
    })
}

/// One measurement as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Its phase.
    pub phase: Phase,
    /// The values measured (empty on error).
    pub value: Vec<f64>,
    /// The error message, for `Error`.
    pub message: Option<String>,
}

/// The tally and state of one metric.
#[derive(Debug, Clone)]
pub struct MetricRun {
    /// The metric.
    pub spec: MetricSpec,
    /// Every measurement taken, in order.
    pub measurements: Vec<Measurement>,
    consecutive_errors: u32,
}

impl MetricRun {
    /// A metric with no measurement yet.
    pub fn new(spec: MetricSpec) -> Self {
        Self {
            spec,
            measurements: Vec::new(),
            consecutive_errors: 0,
        }
    }

    fn count(&self, phase: Phase) -> u32 {
        self.measurements
            .iter()
            .filter(|m| m.phase == phase)
            .count() as u32
    }

    /// Records the outcome of a provider call.
    pub fn record(&mut self, outcome: Result<Vec<f64>, String>) {
        let m = match outcome.and_then(|v| evaluate(&self.spec, &v).map(|p| (p, v))) {
            Ok((phase, value)) => Measurement {
                phase,
                value,
                message: None,
            },
            Err(e) => Measurement {
                phase: Phase::Error,
                value: Vec::new(),
                message: Some(e),
            },
        };
        if m.phase == Phase::Error {
            self.consecutive_errors += 1;
        } else {
            self.consecutive_errors = 0;
        }
        self.measurements.push(m);
    }

    /// The metric's phase once decided, `None` while it still measures.
    pub fn phase(&self) -> Option<Phase> {
        if self.count(Phase::Failed) > self.spec.failure_limit {
            return Some(Phase::Failed);
        }
        if self.consecutive_errors > self.spec.consecutive_error_limit {
            return Some(Phase::Error);
        }
        if self.count(Phase::Inconclusive) > self.spec.inconclusive_limit {
            return Some(Phase::Inconclusive);
        }
        if self.measurements.len() as u32 >= self.spec.count {
            // Errors at the end that did not exceed the limit still leave
            // the metric without a usable last measurement.
            if self.measurements.last().map(|m| m.phase) == Some(Phase::Error)
                && self.count(Phase::Successful) == 0
            {
                return Some(Phase::Error);
            }
            return Some(Phase::Successful);
        }
        None
    }

    /// One line: phase, counts, last value, and the condition.
    pub fn describe(&self) -> String {
        let phase = self.phase().map(Phase::as_str).unwrap_or("running");
        let last = self
            .measurements
            .iter()
            .rev()
            .find(|m| m.phase != Phase::Error)
            .and_then(|m| m.value.first())
            .map(|v| format!(", last result {}", fmt_num(*v)))
            .unwrap_or_default();
        let err = self
            .measurements
            .iter()
            .rev()
            .find_map(|m| m.message.as_deref())
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default();
        let cond = match (&self.spec.success_text, &self.spec.failure_text) {
            (Some(s), Some(f)) => format!(" (success `{s}`, failure `{f}`)"),
            (Some(s), None) => format!(" (success `{s}`)"),
            (None, Some(f)) => format!(" (failure `{f}`)"),
            (None, None) => String::new(),
        };
        let dry = if self.spec.dry_run { " (dry-run)" } else { "" };
        format!(
            "metric `{}`{dry} {phase}{cond}: {} successful, {} failed (limit {}), {} inconclusive (limit {}), {} error(s){last}{err}",
            self.spec.name,
            self.count(Phase::Successful),
            self.count(Phase::Failed),
            self.spec.failure_limit,
            self.count(Phase::Inconclusive),
            self.spec.inconclusive_limit,
            self.count(Phase::Error),
        )
    }

    /// The last value measured, if any.
    pub fn last_value(&self) -> Option<f64> {
        self.measurements
            .iter()
            .rev()
            .find(|m| m.phase != Phase::Error)
            .and_then(|m| m.value.first().copied())
    }

    /// The numeric threshold of the condition that decided, for gates.
    pub fn threshold(&self) -> Option<f64> {
        self.spec
            .failure
            .as_ref()
            .and_then(Condition::threshold)
            .or_else(|| self.spec.success.as_ref().and_then(Condition::threshold))
    }
}

/// Dry-run metrics that ended Failed or Error: what would have aborted.
pub fn dry_run_failures(runs: &[MetricRun]) -> usize {
    runs.iter()
        .filter(|r| r.spec.dry_run && matches!(r.phase(), Some(Phase::Failed | Phase::Error)))
        .count()
}

/// One metric for `canary-analysis.json`: phase, tallies and every value.
pub fn metric_json(r: &MetricRun) -> serde_json::Value {
    serde_json::json!({
        "name": r.spec.name,
        "phase": r.phase().map(Phase::as_str).unwrap_or("running"),
        "dry_run": r.spec.dry_run,
        "successful": r.count(Phase::Successful),
        "failed": r.count(Phase::Failed),
        "inconclusive": r.count(Phase::Inconclusive),
        "errors": r.count(Phase::Error),
        "failure_limit": r.spec.failure_limit,
        "last": r.last_value().filter(|v| v.is_finite()),
        "measurements": r.measurements.iter().map(|m| serde_json::json!({
            "phase": m.phase.as_str(),
            "value": m.value.iter().copied().filter(|v| v.is_finite()).collect::<Vec<f64>>(),
            "error": m.message,
        })).collect::<Vec<_>>(),
    })
}

/// Formats a number compactly for messages.
pub fn fmt_num(v: f64) -> String {
    let trim = |s: String| s.trim_end_matches('0').trim_end_matches('.').to_string();
    let a = v.abs();
    if v.is_finite() && v == v.trunc() && a < 1e15 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else if a >= 0.001 || v == 0.0 {
        trim(format!("{v:.4}"))
    } else {
        format!("{v:.3e}")
    }
}

/// Where time comes from: real in the stage, simulated in tests.
pub trait Clock {
    /// Time since the clock started.
    fn elapsed(&self) -> Duration;
    /// Waits for `d`.
    fn sleep(&mut self, d: Duration);
}

/// The wall clock (`std::time::Instant`, and sleeps that end early when
/// the stage is cancelled).
pub struct RealClock(std::time::Instant);

impl RealClock {
    /// Starts now.
    pub fn new() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        // Ends early when the runner cancels the stage; the driver checks
        // `cancel::is_cancelled` after every wait.
        let _ = sluice_sdk::cancel::sleep(d);
    }
}

/// Runs every metric to its end: measurements are taken when due (each
/// metric at 0, interval, 2×interval…), and the run stops at the first
/// metric that ends Failed, Error or Inconclusive. `measure(i)` takes one
/// measurement of metric `i`. A `dry_run` metric is measured to its end
/// like the others but neither stops the run nor counts in its phase.
pub fn run_metrics(
    specs: Vec<MetricSpec>,
    clock: &mut dyn Clock,
    mut measure: impl FnMut(usize) -> Result<Vec<f64>, String>,
) -> (Phase, Vec<MetricRun>) {
    let start = clock.elapsed();
    let mut runs: Vec<MetricRun> = specs.into_iter().map(MetricRun::new).collect();
    loop {
        // The unfinished metric whose next measurement is due first.
        let next = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.phase().is_none())
            .map(|(i, r)| (i, r.spec.interval * r.measurements.len() as u32))
            .min_by_key(|(_, due)| *due);
        let Some((i, due)) = next else { break };
        let now = clock.elapsed().saturating_sub(start);
        if due > now {
            clock.sleep(due - now);
        }
        let outcome = measure(i);
        runs[i].record(outcome);
        if !runs[i].spec.dry_run
            && matches!(
                runs[i].phase(),
                Some(Phase::Failed | Phase::Error | Phase::Inconclusive)
            )
        {
            break;
        }
    }
    let phase = runs
        .iter()
        .filter(|r| !r.spec.dry_run)
        .map(|r| r.phase().unwrap_or(Phase::Successful))
        .max()
        .unwrap_or(Phase::Successful);
    (phase, runs)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A clock that only advances when slept on.
    #[derive(Default)]
    pub struct FakeClock(pub Duration);

    impl Clock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.0
        }
        fn sleep(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    fn spec(success: Option<&str>, failure: Option<&str>) -> MetricSpec {
        let parse = |s: Option<&str>| s.map(|s| Condition::parse(s).expect("condition"));
        MetricSpec {
            name: "m".into(),
            success: parse(success),
            success_text: success.map(String::from),
            failure: parse(failure),
            failure_text: failure.map(String::from),
            interval: Duration::from_secs(10),
            count: 3,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: 4,
            dry_run: false,
        }
    }

    #[test]
    fn argo_evaluation_table() {
        let none = spec(None, None);
        assert_eq!(evaluate(&none, &[1.0]), Ok(Phase::Successful));
        let s = spec(Some("result < 0.05"), None);
        assert_eq!(evaluate(&s, &[0.01]), Ok(Phase::Successful));
        assert_eq!(evaluate(&s, &[0.1]), Ok(Phase::Failed));
        let f = spec(None, Some("result > 0.1"));
        assert_eq!(evaluate(&f, &[0.2]), Ok(Phase::Failed));
        assert_eq!(evaluate(&f, &[0.05]), Ok(Phase::Successful));
        let both = spec(Some("result < 0.05"), Some("result > 0.1"));
        assert_eq!(evaluate(&both, &[0.01]), Ok(Phase::Successful));
        assert_eq!(evaluate(&both, &[0.07]), Ok(Phase::Inconclusive));
        assert_eq!(evaluate(&both, &[0.2]), Ok(Phase::Failed));
        assert!(evaluate(&s, &[]).is_err());
    }

    #[test]
    fn failure_limit_is_exceeded_not_reached() {
        let mut sp = spec(Some("result < 1"), None);
        sp.failure_limit = 1;
        sp.count = 5;
        let run = |values: [f64; 5], sp: MetricSpec| {
            let mut clock = FakeClock::default();
            let mut n = 0;
            run_metrics(vec![sp], &mut clock, move |_| {
                n += 1;
                Ok(vec![values[n - 1]])
            })
        };
        let (phase, runs) = run([2.0, 0.5, 2.0, 0.5, 0.5], sp.clone());
        assert_eq!(phase, Phase::Failed);
        assert_eq!(runs[0].measurements.len(), 3, "stops at the second failure");
        let (phase, runs) = run([2.0, 0.5, 0.5, 0.5, 0.5], sp);
        assert_eq!(phase, Phase::Successful);
        assert_eq!(runs[0].measurements.len(), 5);
    }

    #[test]
    fn inconclusive_limit_pauses() {
        let mut sp = spec(Some("result < 0.05"), Some("result > 0.1"));
        sp.count = 4;
        sp.inconclusive_limit = 1;
        let mut clock = FakeClock::default();
        let (phase, runs) = run_metrics(vec![sp], &mut clock, |_| Ok(vec![0.07]));
        assert_eq!(phase, Phase::Inconclusive);
        assert_eq!(runs[0].measurements.len(), 2);
        assert_eq!(clock.0, Duration::from_secs(10));
    }

    #[test]
    fn consecutive_errors_end_in_error() {
        let mut sp = spec(Some("result < 1"), None);
        sp.count = 10;
        sp.consecutive_error_limit = 2;
        let mut clock = FakeClock::default();
        let (phase, runs) = run_metrics(vec![sp], &mut clock, |_| Err("down".into()));
        assert_eq!(phase, Phase::Error);
        assert_eq!(runs[0].measurements.len(), 3);
        assert!(runs[0].describe().contains("last error: down"));
    }

    #[test]
    fn metrics_are_interleaved_by_interval() {
        let mut a = spec(Some("result < 1"), None);
        a.name = "a".into();
        a.interval = Duration::from_secs(1);
        a.count = 3;
        let mut b = a.clone();
        b.name = "b".into();
        b.interval = Duration::from_secs(2);
        b.count = 2;
        let mut clock = FakeClock::default();
        let mut order = Vec::new();
        let (phase, _) = run_metrics(vec![a, b], &mut clock, |i| {
            order.push(i);
            Ok(vec![0.0])
        });
        assert_eq!(phase, Phase::Successful);
        assert_eq!(order, vec![0, 1, 0, 0, 1]);
        assert_eq!(clock.0, Duration::from_secs(2));
    }

    /// Argo `dryRun`: the failing metric is measured to its end and
    /// reported, but the analysis is Successful and not cut short.
    #[test]
    fn dry_run_metric_never_decides() {
        let mut dry = spec(Some("result < 1"), None);
        dry.name = "dry".into();
        dry.dry_run = true;
        let mut real = spec(Some("result < 1"), None);
        real.name = "real".into();
        let mut clock = FakeClock::default();
        let (phase, runs) = run_metrics(vec![dry, real], &mut clock, |i| {
            Ok(vec![if i == 0 { 5.0 } else { 0.0 }])
        });
        assert_eq!(phase, Phase::Successful);
        assert_eq!(runs[0].phase(), Some(Phase::Failed));
        assert_eq!(runs[1].measurements.len(), 3, "not stopped by the dry run");
        assert!(runs[0]
            .describe()
            .starts_with("metric `dry` (dry-run) failed"));
    }

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(0.000_012), "1.200e-5");
        assert_eq!(fmt_num(206.0033), "206");
        assert_eq!(fmt_num(2.7382), "2.74");
        assert_eq!(fmt_num(0.0093), "0.0093");
    }
}
