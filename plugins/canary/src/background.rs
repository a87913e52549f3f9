//! Background analysis (Argo Rollouts' `strategy.canary.analysis` with
//! `startingStep`): metrics measured again and again while the steps run,
//! from step `starting-step` until the last step is done.
//!
//! The stage is single-threaded, so measuring is interleaved with the
//! steps: due measurements are taken before every step and during timed
//! pauses (a pause, and an analysis step's `initial-delay`, sleep in slices
//! that end when the next measurement is due). A metric is first measured
//! `initial-delay` after its starting step began, then every `interval`
//! after its previous measurement. Without `count` a metric measures until
//! the steps end; with one it stops (Successful) after `count`.
//!
//! The background ends the canary as soon as a metric that is not
//! `dry-run` ends badly, by the same rules as a step's metric
//! ([`crate::analysis`]): more than `failure-limit` failed measurements or
//! more than `consecutive-error-limit` errors in a row abort it — in the
//! middle of a pause if need be — and more than `inconclusive-limit`
//! inconclusive ones pause it for a person.

use std::time::Duration;

use sluice_sdk::StageError;

use crate::analysis::{dry_run_failures, fmt_num, metric_json, Clock, MetricRun, Phase};
use crate::config::{BackgroundSpec, Provider};
use crate::steps::StepAnalysis;

/// Takes one measurement with a provider: `Ok(Err(_))` is an Error
/// measurement, `Err(_)` stops the stage (say, a denied destination).
pub type Measure<'a> = dyn FnMut(&Provider) -> Result<Result<Vec<f64>, String>, StageError> + 'a;

/// A background analysis in progress.
#[derive(Debug)]
pub struct Background {
    spec: BackgroundSpec,
    runs: Vec<MetricRun>,
    /// Clock time each metric is next due (set when it starts).
    next: Vec<Duration>,
    /// The step it started at, once started.
    started: Option<usize>,
    /// The phase that ended the canary, with the step it happened in.
    ended: Option<(Phase, usize)>,
}

impl Background {
    /// Not started yet.
    pub fn new(spec: BackgroundSpec) -> Self {
        let runs = spec
            .metrics
            .iter()
            .map(|(m, _)| MetricRun::new(m.clone()))
            .collect();
        let next = vec![Duration::ZERO; spec.metrics.len()];
        Self {
            spec,
            runs,
            next,
            started: None,
            ended: None,
        }
    }

    fn start(&mut self, step: usize, now: Duration) {
        if self.started.is_none() && step >= self.spec.starting_step {
            self.started = Some(step);
            sluice_sdk::info!(
                "step {step}: background analysis starts ({} metric(s), first measurement in {})",
                self.runs.len(),
                humantime::format_duration(self.spec.initial_delay)
            );
            self.next = vec![now + self.spec.initial_delay; self.runs.len()];
        }
    }

    /// Time from `now` until the next measurement is due; `None` when it
    /// has not started, has ended, or has nothing left to measure.
    pub fn due_in(&self, now: Duration) -> Option<Duration> {
        if self.started.is_none() || self.ended.is_some() {
            return None;
        }
        self.runs
            .iter()
            .zip(&self.next)
            .filter(|(r, _)| r.phase().is_none())
            .map(|(_, due)| due.saturating_sub(now))
            .min()
    }

    /// Starts it when `step` is its starting step (or later) and takes every
    /// measurement that is due. Returns the phase when it ended the canary
    /// (Failed, Error or Inconclusive).
    pub fn poll(
        &mut self,
        step: usize,
        clock: &dyn Clock,
        measure: &mut Measure<'_>,
    ) -> Result<Option<Phase>, StageError> {
        self.start(step, clock.elapsed());
        if self.started.is_none() {
            return Ok(None);
        }
        if let Some((p, _)) = self.ended {
            return Ok(Some(p));
        }
        for i in 0..self.runs.len() {
            if self.runs[i].phase().is_some() || self.next[i] > clock.elapsed() {
                continue;
            }
            let outcome = measure(&self.spec.metrics[i].1)?;
            self.runs[i].record(outcome);
            self.next[i] = clock.elapsed() + self.runs[i].spec.interval;
            let run = &self.runs[i];
            sluice_sdk::info!("step {step}: background {}", run.describe());
            if let Some(p @ (Phase::Failed | Phase::Error | Phase::Inconclusive)) = run.phase() {
                if !run.spec.dry_run {
                    self.ended = Some((p, step));
                    return Ok(Some(p));
                }
            }
        }
        Ok(None)
    }

    /// Sleeps `d` during step `step`, in slices that end when a
    /// measurement is due; returns early with the phase when the background
    /// ended the canary.
    pub fn sleep(
        &mut self,
        step: usize,
        d: Duration,
        clock: &mut dyn Clock,
        measure: &mut Measure<'_>,
    ) -> Result<Option<Phase>, StageError> {
        let end = clock.elapsed() + d;
        loop {
            if let Some(p) = self.poll(step, clock, measure)? {
                return Ok(Some(p));
            }
            let now = clock.elapsed();
            if now >= end {
                return Ok(None);
            }
            let left = end - now;
            let slice = self.due_in(now).map_or(left, |due| due.min(left));
            clock.sleep(slice);
        }
    }

    /// Whether it has taken any measurement.
    pub fn measured(&self) -> bool {
        self.runs.iter().any(|r| !r.measurements.is_empty())
    }

    /// The result for the report: the phase that ended the canary, or
    /// Successful when it did not (still running when the steps ended).
    pub fn report(&self, step: usize) -> StepAnalysis {
        let (phase, at) = self.ended.unwrap_or((Phase::Successful, step));
        let mut lines = vec![format!(
            "background analysis from step {}{}{}",
            self.spec.starting_step,
            if self.spec.initial_delay.is_zero() {
                String::new()
            } else {
                format!(
                    ", initial delay {}",
                    humantime::format_duration(self.spec.initial_delay)
                )
            },
            self.spec
                .template
                .as_deref()
                .map(|t| format!(", template {t}"))
                .unwrap_or_default()
        )];
        lines.extend(self.runs.iter().map(MetricRun::describe));
        let decider = self.runs.iter().find(|r| {
            !r.spec.dry_run && matches!(r.phase(), Some(p) if p == phase && p != Phase::Successful)
        });
        let why = match decider {
            Some(r) => format!(
                "background analysis {} during step {at}: {}",
                phase.as_str(),
                r.describe()
            ),
            None => format!(
                "background analysis successful: {} metric(s), {} measurement(s)",
                self.runs.len(),
                self.runs
                    .iter()
                    .map(|r| r.measurements.len())
                    .sum::<usize>()
            ),
        };
        let mut metrics: Vec<(String, f64)> = self
            .runs
            .iter()
            .filter_map(|r| {
                r.last_value()
                    .filter(|v| v.is_finite())
                    .map(|v| (format!("canary.background.{}.value", r.spec.name), v))
            })
            .collect();
        let dry = dry_run_failures(&self.runs);
        if self.runs.iter().any(|r| r.spec.dry_run) {
            metrics.push(("canary.background.dry_run_failures".into(), dry as f64));
        }
        if let Some(r) = decider {
            if let Some(v) = r.last_value() {
                sluice_sdk::warn!(
                    "background analysis: metric `{}` {} with {}",
                    r.spec.name,
                    phase.as_str(),
                    fmt_num(v)
                );
            }
        }
        StepAnalysis {
            step: at,
            phase,
            score: None,
            observed: decider
                .and_then(|r| r.last_value())
                .filter(|v| v.is_finite()),
            threshold: decider.and_then(MetricRun::threshold),
            lines,
            why,
            metrics,
            background: true,
            details: serde_json::json!({
                "starting_step": self.spec.starting_step,
                "started_at_step": self.started,
                "initial_delay": humantime::format_duration(self.spec.initial_delay).to_string(),
                "template": self.spec.template,
                "dry_run_failures": dry,
                "metrics": self.runs.iter().map(metric_json).collect::<Vec<_>>(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::FakeClock;
    use crate::analysis::MetricSpec;
    use crate::expr::Condition;
    use crate::load::Measure as What;

    fn metric(name: &str, limit: u32, dry_run: bool) -> (MetricSpec, Provider) {
        (
            MetricSpec {
                name: name.into(),
                success: Condition::parse("result < 0.05").ok(),
                success_text: Some("result < 0.05".into()),
                failure: None,
                failure_text: None,
                interval: Duration::from_secs(5),
                count: u32::MAX,
                failure_limit: limit,
                inconclusive_limit: 0,
                consecutive_error_limit: 4,
                dry_run,
            },
            Provider::Synthetic {
                measure: What::ErrorRate,
                requests: 1,
                path: format!("/{name}"),
                side: crate::config::Side::Canary,
                timeout: Duration::from_secs(1),
            },
        )
    }

    fn spec(metrics: Vec<(MetricSpec, Provider)>) -> BackgroundSpec {
        BackgroundSpec {
            starting_step: 1,
            initial_delay: Duration::from_secs(2),
            metrics,
            template: None,
        }
    }

    /// Values by the provider's path: `/bad` always 0.3, others 0.
    fn values(p: &Provider) -> Result<Result<Vec<f64>, String>, StageError> {
        let Provider::Synthetic { path, .. } = p else {
            return Ok(Err("unexpected provider".into()));
        };
        Ok(Ok(vec![if path.contains("bad") { 0.3 } else { 0.0 }]))
    }

    #[test]
    fn waits_for_its_step_and_initial_delay() {
        let mut b = Background::new(spec(vec![metric("good", 0, false)]));
        let mut clock = FakeClock::default();
        assert_eq!(b.poll(0, &clock, &mut values).expect("poll"), None);
        assert!(!b.measured(), "step 0 is before the starting step");
        assert_eq!(b.due_in(clock.0), None);
        assert_eq!(b.poll(1, &clock, &mut values).expect("poll"), None);
        assert!(!b.measured(), "initial delay");
        assert_eq!(b.due_in(clock.0), Some(Duration::from_secs(2)));
        // A 13 s pause: measurements at 2, 7, 12 s.
        assert_eq!(
            b.sleep(1, Duration::from_secs(13), &mut clock, &mut values)
                .expect("sleep"),
            None
        );
        assert_eq!(clock.0, Duration::from_secs(13));
        assert_eq!(b.runs[0].measurements.len(), 3);
        let r = b.report(3);
        assert_eq!(r.phase, Phase::Successful);
        assert!(r.background);
        assert!(r.lines[0].contains("initial delay 2s"), "{:?}", r.lines);
    }

    /// A failing metric ends a long pause early: failure-limit 1, so the
    /// second failed measurement (at 2 s + 5 s) aborts 7 s into a 600 s
    /// pause. A failing dry-run metric beside it never does.
    #[test]
    fn failure_ends_the_pause_early_dry_run_never_does() {
        let mut b = Background::new(spec(vec![
            metric("bad-dry", 0, true),
            metric("bad", 1, false),
        ]));
        let mut clock = FakeClock::default();
        let p = b
            .sleep(2, Duration::from_secs(600), &mut clock, &mut values)
            .expect("sleep");
        assert_eq!(p, Some(Phase::Failed));
        assert_eq!(clock.0, Duration::from_secs(7));
        let r = b.report(5);
        assert_eq!((r.phase, r.step), (Phase::Failed, 2));
        assert_eq!(r.observed, Some(0.3));
        assert_eq!(r.threshold, Some(0.05));
        assert!(
            r.why
                .starts_with("background analysis failed during step 2: metric `bad` failed"),
            "{}",
            r.why
        );
        assert!(r
            .metrics
            .contains(&("canary.background.dry_run_failures".to_string(), 1.0)));
        // Once ended it stays ended.
        assert_eq!(
            b.poll(3, &clock, &mut values).expect("poll"),
            Some(Phase::Failed)
        );

        let mut only_dry = Background::new(spec(vec![metric("bad-dry", 0, true)]));
        let mut clock = FakeClock::default();
        assert_eq!(
            only_dry
                .sleep(1, Duration::from_secs(30), &mut clock, &mut values)
                .expect("sleep"),
            None
        );
        assert_eq!(clock.0, Duration::from_secs(30));
        assert_eq!(only_dry.report(2).phase, Phase::Successful);
    }

    #[test]
    fn provider_stop_is_passed_on() {
        let mut b = Background::new(spec(vec![metric("good", 0, false)]));
        let mut clock = FakeClock::default();
        let mut denied = |_: &Provider| -> Result<Result<Vec<f64>, String>, StageError> {
            Err(StageError::failed("denied"))
        };
        assert!(b
            .sleep(1, Duration::from_secs(10), &mut clock, &mut denied)
            .is_err());
    }
}
