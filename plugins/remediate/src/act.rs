//! Carrying out a [`Plan`] through the target library
//! ([`sluice_delivery::Target`]), timing it.

use std::time::Instant;

use sluice_delivery::{SlotVersion, Target, Verdict, Weights};
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
            // A flag routing users to or away from the candidate's slot
            // would keep them on it whatever the weights say: it goes.
            if let Some(c) = from.as_ref().filter(|c| c.slot != to.slot) {
                for (name, _) in target.read_flags()?.touching(&c.slot) {
                    if target.remove_flag(&name)?.is_some() {
                        steps.push(format!("flag {name} removed"));
                    }
                }
            }
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
            // Removed, not left at 0%: a flag left behind would route users
            // to whatever its slots serve next.
            target.remove_flag(flag)?;
            let mut steps = vec![format!(
                "flag {flag} removed (every user on slot {})",
                off.slot
            )];
            // Without the flag, users are routed by the weights: none may
            // still go to the flag's slot.
            if target.read_weights()?.weight_of(on) > 0 {
                target.set_weights(&Weights::all_to(off))?;
                steps.push(format!("weights 100% to {} ({})", off.slot, off.version));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Action;
    use sluice_delivery::{FlagRule, State, TargetConfig};

    fn target(ws: &std::path::Path) -> Target {
        let cfg: TargetConfig = serde_json::from_str(r#"{"root":"env"}"#).expect("cfg");
        Target::open(&cfg, ws, "production")
            .expect("open")
            .with_stage("remediate")
    }

    /// Issue 17: a flag left over from an earlier release (on the stable
    /// slot, off the candidate's) sends most users to the candidate; the
    /// weights remediation takes it away as well.
    #[test]
    fn weights_remove_flags_routing_users_to_the_candidate() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = target(ws.path());
        let stable = SlotVersion::new("green", "1.0.0");
        let cand = SlotVersion::new("blue", "2.0.0");
        let mut s = State {
            stable: Some(stable.clone()),
            candidate: Some(cand.clone()),
            ..State::default()
        };
        t.write_state(&mut s).expect("state");
        t.set_flag("release-1.0.0", &FlagRule::new("green", "blue", 5.0))
            .expect("flag");
        t.set_flag("other", &FlagRule::new("red", "yellow", 5.0))
            .expect("flag");
        let plan = Plan {
            action: Action::Weights,
            step: Step::Weights {
                to: stable.clone(),
                from: Some(cand),
            },
            expect: stable,
            why: String::new(),
        };
        let done = apply(&t, &plan).expect("apply");
        assert!(
            done.steps.iter().any(|s| s == "flag release-1.0.0 removed"),
            "{:?}",
            done.steps
        );
        let flags = t.read_flags().expect("flags");
        assert!(!flags.flags.contains_key("release-1.0.0"));
        assert!(flags.flags.contains_key("other"));
    }

    /// The flag action removes the flag (not 0%) and takes any weight
    /// away from its slot.
    #[test]
    fn the_flag_action_removes_the_flag() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = target(ws.path());
        let blue = SlotVersion::new("blue", "1.0.0");
        let green = SlotVersion::new("green", "2.0.0");
        t.set_weights(&Weights::split(&blue, &green, 10))
            .expect("weights");
        t.set_flag("release-2.0.0", &FlagRule::new("green", "blue", 30.0))
            .expect("flag");
        let plan = Plan {
            action: Action::Flag,
            step: Step::Flag {
                flag: "release-2.0.0".into(),
                percent: 30.0,
                off: blue.clone(),
                on: "green".into(),
            },
            expect: blue,
            why: String::new(),
        };
        apply(&t, &plan).expect("apply");
        assert!(t.read_flags().expect("flags").flags.is_empty());
        assert_eq!(t.read_weights().expect("w").weight_of("green"), 0);
    }
}
