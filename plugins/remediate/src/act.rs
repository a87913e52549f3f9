//! Carrying out a [`Plan`] through the target library
//! ([`sluice_delivery::Target`]), timing it.

use std::time::Instant;

use sluice_delivery::{FlagRule, SlotVersion, Target, Verdict, Weights};
use sluice_sdk::StageError;

use crate::plan::{Plan, Step};

/// What was done.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    /// What serves now (verified next).
    pub serving: SlotVersion,
    /// What lost its traffic, if known.
    pub from: Option<SlotVersion>,
    /// The individual steps, for the report.
    pub steps: Vec<String>,
    /// Time the action took.
    pub duration_ms: u64,
}

/// Applies `plan` to `target`.
pub fn apply(target: &Target, plan: &Plan) -> Result<Done, StageError> {
    let started = Instant::now();
    let (serving, from, steps) = match &plan.step {
        Step::Weights { to, from } => {
            target.set_weights(&Weights::all_to(to))?;
            let mut state = target.read_state()?;
            let mut steps = vec![format!("weights 100% to {} ({})", to.slot, to.version)];
            if let Some(c) = state.candidate.take() {
                // The candidate lost its traffic: known bad.
                state.set_verdict(&c.version, Some(&c.slot), Verdict::Bad);
                target.write_state(&mut state)?;
                steps.push(format!(
                    "candidate {} dropped from state.json and marked bad",
                    c.version
                ));
            }
            target.record(
                "remediate",
                Some(&to.version),
                Some(&to.slot),
                Some(&steps.join("; ")),
            )?;
            (to.clone(), from.clone(), steps)
        }
        Step::Flag { flag, off, on, .. } => {
            target.set_flag(
                flag,
                &FlagRule {
                    on: on.clone(),
                    off: off.slot.clone(),
                    percent: 0.0,
                },
            )?;
            let mut steps = vec![format!(
                "flag {flag} to 0% (every user on slot {})",
                off.slot
            )];
            let mut state = target.read_state()?;
            if let Some(c) = state.candidate.clone().filter(|c| &c.slot == on) {
                state.set_verdict(&c.version, Some(&c.slot), Verdict::Bad);
                target.write_state(&mut state)?;
                steps.push(format!("candidate {} marked bad", c.version));
            }
            target.record(
                "remediate",
                Some(&off.version),
                Some(&off.slot),
                Some(&steps.join("; ")),
            )?;
            (off.clone(), None, steps)
        }
        Step::Rollback { .. } => {
            let r = target.rollback()?;
            (r.to, r.from, r.actions)
        }
    };
    Ok(Done {
        serving,
        from,
        steps,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// After a verified remediation: what serves again is known good.
pub fn mark_good(target: &Target, serving: &SlotVersion) -> Result<(), StageError> {
    let mut state = target.read_state()?;
    if state.verdict(&serving.version) == Verdict::Good {
        return Ok(());
    }
    state.set_verdict(&serving.version, Some(&serving.slot), Verdict::Good);
    target.write_state(&mut state)
}
