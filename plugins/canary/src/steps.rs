//! The steps engine: walks `set-weight`, `pause` and `analysis` steps from
//! a starting index and stops at the first abort or pause. What a step
//! does to the world is the [`Driver`]'s business, so the engine is tested
//! with a recording driver.

use std::time::Duration;

use sluice_sdk::StageError;

use crate::analysis::Phase;
use crate::config::{Analysis, Step};

/// The outcome of one analysis step, ready for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct StepAnalysis {
    /// Index of the step.
    pub step: usize,
    /// Successful, Inconclusive, or Failed/Error.
    pub phase: Phase,
    /// The judge's score, when a judge ran.
    pub score: Option<f64>,
    /// The observed value and threshold of what decided (for the gate).
    pub observed: Option<f64>,
    /// Threshold compared with.
    pub threshold: Option<f64>,
    /// One line per metric and the judge's explanation.
    pub lines: Vec<String>,
    /// The line that says why (the deciding metric or the judge).
    pub why: String,
    /// Metrics to report (`canary.<name>.p_value` …).
    pub metrics: Vec<(String, f64)>,
    /// The background analysis rather than an analysis step.
    pub background: bool,
    /// Structured detail for `canary-analysis.json` (metrics with every
    /// measurement, judge groups and classifications, initial delay).
    pub details: serde_json::Value,
}

/// What steps do to the environment.
pub trait Driver {
    /// Gives the candidate `weight` percent of the traffic.
    fn set_weight(&mut self, weight: u32) -> Result<(), StageError>;
    /// Waits `d` during step `index` (a timed pause, an analysis's initial
    /// delay) while the background analysis measures; returns its result
    /// when it ended the canary meanwhile.
    fn pause(&mut self, index: usize, d: Duration) -> Result<Option<StepAnalysis>, StageError>;
    /// Before step `index`: takes the background measurements that are due;
    /// returns the background's result when it ended the canary.
    fn between(&mut self, index: usize) -> Result<Option<StepAnalysis>, StageError>;
    /// The background analysis so far, if there is one and it measured,
    /// for the report; `index` is the step it got to.
    fn background(&mut self, index: usize) -> Option<StepAnalysis>;
    /// Runs the analysis of step `index`.
    fn analyse(&mut self, index: usize, analysis: &Analysis) -> Result<StepAnalysis, StageError>;
    /// Step `index` completed (its weight is set, its pause over, its
    /// analysis passed) and the candidate has `weight`: the place to save
    /// progress, so that a runner killed later resumes at `index + 1`.
    fn completed(&mut self, index: usize, weight: u32) -> Result<(), StageError>;
}

/// Why the steps stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Every step ran and every analysis passed.
    Completed,
    /// An analysis failed at this step.
    Aborted(usize),
    /// An indefinite pause at this step: wait for approval.
    Paused(usize),
    /// An inconclusive analysis at this step: wait for a person.
    Inconclusive(usize),
    /// The background analysis was inconclusive during this step: wait
    /// for a person, then run this step again.
    BackgroundInconclusive(usize),
}

/// Where the steps got to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Why they stopped.
    pub decision: Decision,
    /// The candidate's weight after the last `set-weight`.
    pub weight: u32,
    /// Steps that ran to completion (including those before `start`).
    pub steps_completed: usize,
    /// Every analysis that ran (a background analysis that ended the
    /// canary is the last).
    pub analyses: Vec<StepAnalysis>,
    /// The background analysis, when configured and it measured.
    pub background: Option<StepAnalysis>,
}

/// Runs `steps[start..]`. `weight` is the candidate's weight before.
pub fn run(
    steps: &[Step],
    start: usize,
    mut weight: u32,
    driver: &mut dyn Driver,
) -> Result<Outcome, StageError> {
    let mut analyses = Vec::new();
    for (i, step) in steps.iter().enumerate().skip(start) {
        let stop = |decision, weight, analyses, driver: &mut dyn Driver| Outcome {
            decision,
            weight,
            steps_completed: i,
            analyses,
            background: driver.background(i),
        };
        // The background analysis ends the canary as soon as it fails.
        let by_background = |mut analyses: Vec<StepAnalysis>, b: StepAnalysis, weight| {
            let decision = match b.phase {
                Phase::Inconclusive => Decision::BackgroundInconclusive(i),
                _ => Decision::Aborted(i),
            };
            analyses.push(b.clone());
            Outcome {
                decision,
                weight,
                steps_completed: i,
                analyses,
                background: Some(b),
            }
        };
        if let Some(b) = driver.between(i)? {
            return Ok(by_background(analyses, b, weight));
        }
        match step {
            Step::SetWeight(w) => {
                sluice_sdk::info!("step {i}: set-weight {w}");
                driver.set_weight(*w)?;
                weight = *w;
            }
            Step::Pause(Some(d)) => {
                sluice_sdk::info!("step {i}: pause {}", humantime::format_duration(*d));
                if let Some(b) = driver.pause(i, *d)? {
                    return Ok(by_background(analyses, b, weight));
                }
            }
            Step::Pause(None) => {
                sluice_sdk::info!("step {i}: pause until approved");
                return Ok(stop(Decision::Paused(i), weight, analyses, driver));
            }
            Step::Analysis(a) => {
                if a.initial_delay.is_zero() {
                    sluice_sdk::info!("step {i}: analysis");
                } else {
                    sluice_sdk::info!(
                        "step {i}: analysis after an initial delay of {}",
                        humantime::format_duration(a.initial_delay)
                    );
                    if let Some(b) = driver.pause(i, a.initial_delay)? {
                        return Ok(by_background(analyses, b, weight));
                    }
                }
                let result = driver.analyse(i, a)?;
                let phase = result.phase;
                analyses.push(result);
                match phase {
                    Phase::Successful => {}
                    Phase::Inconclusive => {
                        return Ok(stop(Decision::Inconclusive(i), weight, analyses, driver))
                    }
                    Phase::Failed | Phase::Error => {
                        return Ok(stop(Decision::Aborted(i), weight, analyses, driver))
                    }
                }
            }
        }
        driver.completed(i, weight)?;
    }
    Ok(Outcome {
        decision: Decision::Completed,
        weight,
        steps_completed: steps.len(),
        analyses,
        background: driver.background(steps.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        phases: Vec<Phase>,
        /// The background fails during the pause of this step.
        background_fails_at: Option<usize>,
    }

    fn result(step: usize, phase: Phase, background: bool) -> StepAnalysis {
        StepAnalysis {
            step,
            phase,
            score: None,
            observed: None,
            threshold: None,
            lines: Vec::new(),
            why: String::new(),
            metrics: Vec::new(),
            background,
            details: serde_json::Value::Null,
        }
    }

    impl Driver for Recorder {
        fn set_weight(&mut self, weight: u32) -> Result<(), StageError> {
            self.log.push(format!("weight {weight}"));
            Ok(())
        }
        fn pause(&mut self, index: usize, d: Duration) -> Result<Option<StepAnalysis>, StageError> {
            self.log.push(format!("sleep {}", d.as_secs()));
            Ok((self.background_fails_at == Some(index))
                .then(|| result(index, Phase::Failed, true)))
        }
        fn between(&mut self, _: usize) -> Result<Option<StepAnalysis>, StageError> {
            Ok(None)
        }
        fn background(&mut self, index: usize) -> Option<StepAnalysis> {
            self.background_fails_at
                .map(|_| result(index, Phase::Successful, true))
        }
        fn analyse(&mut self, index: usize, _: &Analysis) -> Result<StepAnalysis, StageError> {
            self.log.push(format!("analysis {index}"));
            let phase = if self.phases.is_empty() {
                Phase::Successful
            } else {
                self.phases.remove(0)
            };
            Ok(result(index, phase, false))
        }
        fn completed(&mut self, index: usize, weight: u32) -> Result<(), StageError> {
            self.log.push(format!("done {index} at {weight}"));
            Ok(())
        }
    }

    fn analysis() -> Step {
        Step::Analysis(Analysis::default())
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::SetWeight(10),
            Step::Pause(Some(Duration::from_secs(2))),
            analysis(),
            Step::Pause(None),
            Step::SetWeight(50),
            analysis(),
        ]
    }

    #[test]
    fn pauses_then_continues_after_the_pause() {
        let mut d = Recorder::default();
        let o = run(&steps(), 0, 0, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Paused(3));
        assert_eq!(o.weight, 10);
        assert_eq!(o.steps_completed, 3);
        assert_eq!(
            d.log,
            [
                "weight 10",
                "done 0 at 10",
                "sleep 2",
                "done 1 at 10",
                "analysis 2",
                "done 2 at 10"
            ]
        );

        let mut d = Recorder::default();
        let o = run(&steps(), 4, 10, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Completed);
        assert_eq!(o.weight, 50);
        assert_eq!(o.steps_completed, 6);
        assert_eq!(
            d.log,
            ["weight 50", "done 4 at 50", "analysis 5", "done 5 at 50"]
        );
    }

    #[test]
    fn failed_analysis_aborts_and_inconclusive_pauses() {
        let mut d = Recorder {
            phases: vec![Phase::Failed],
            ..Recorder::default()
        };
        let o = run(&steps(), 0, 0, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Aborted(2));
        assert_eq!(o.analyses.len(), 1);
        // A failed analysis is not a completed step: nothing to resume at.
        assert_eq!(d.log.last().map(String::as_str), Some("analysis 2"));

        let mut d = Recorder {
            phases: vec![Phase::Inconclusive],
            ..Recorder::default()
        };
        let o = run(&steps(), 4, 10, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Inconclusive(5));
        let mut d = Recorder {
            phases: vec![Phase::Error],
            ..Recorder::default()
        };
        assert_eq!(
            run(&steps(), 5, 50, &mut d).expect("run").decision,
            Decision::Aborted(5)
        );
    }

    /// A background failure in a pause aborts there; an analysis's initial
    /// delay is a pause before it.
    #[test]
    fn background_failure_aborts_in_the_pause() {
        let mut d = Recorder {
            background_fails_at: Some(1),
            ..Recorder::default()
        };
        let o = run(&steps(), 0, 0, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Aborted(1));
        assert_eq!(o.steps_completed, 1);
        assert_eq!(o.analyses.len(), 1);
        assert!(o.analyses[0].background);
        assert_eq!(o.background.map(|b| b.phase), Some(Phase::Failed));
        assert_eq!(d.log, ["weight 10", "done 0 at 10", "sleep 2"]);

        let delayed = Step::Analysis(Analysis {
            initial_delay: Duration::from_secs(3),
            ..Analysis::default()
        });
        let mut d = Recorder::default();
        let o = run(&[delayed], 0, 0, &mut d).expect("run");
        assert_eq!(o.decision, Decision::Completed);
        assert_eq!(d.log, ["sleep 3", "analysis 0", "done 0 at 0"]);
    }
}
