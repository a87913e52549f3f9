//! Deciding what to do: `with.action` and the environment's state become a
//! [`Plan`] (pure; the effects are in [`crate::act`]).
//!
//! `auto` picks, in order:
//! 1. **flag** when a flag of `flags.json` has a percentage above 0 and
//!    sends its keys to the candidate slot (a feature-flag release);
//! 2. **weights** when `state.json` has a candidate (a canary or a
//!    blue-green deploy that did not switch yet): all traffic back to the
//!    stable slot;
//! 3. **rollback** when `state.json` has a previous release (a release that
//!    was promoted and then failed, for example in `monitor`);
//!
//! An explicit `rollback` is `sluice_delivery::Target::rollback`: a
//! candidate gives way to the stable release, else the previous release
//! serves again.
//! 4. otherwise there is nothing to undo, which fails the stage.

use sluice_delivery::state::{Flags, SlotVersion, State, Weights};
use sluice_sdk::StageError;

use crate::config::Action;

/// One remediation step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// All traffic to `to` (the stable slot); `from` was the candidate.
    Weights {
        /// The slot that gets all traffic.
        to: SlotVersion,
        /// The candidate that loses its share, if known.
        from: Option<SlotVersion>,
    },
    /// Flag `flag` to 0%, so every key goes to its `off` slot.
    Flag {
        /// The flag.
        flag: String,
        /// Its percentage before.
        percent: f64,
        /// The slot serving keys outside the flag, and its version.
        off: SlotVersion,
        /// The slot serving keys in the flag.
        on: String,
    },
    /// Serve `to` (the previous release) again instead of `from`.
    Rollback {
        /// The release to return to.
        to: SlotVersion,
        /// The release being replaced, if known.
        from: Option<SlotVersion>,
    },
}

/// What the stage will do, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The action taken (never `Auto`).
    pub action: Action,
    /// The step.
    pub step: Step,
    /// The slot and version that must serve afterwards (verified).
    pub expect: SlotVersion,
    /// One sentence: why this action.
    pub why: String,
}

/// The environment as the target reports it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `state.json`.
    pub state: State,
    /// `weights.json`.
    pub weights: Weights,
    /// `flags.json`.
    pub flags: Flags,
}

impl Snapshot {
    /// The version a slot serves, from the state, then the routes.
    fn version_of(&self, slot: &str) -> Option<String> {
        let s = &self.state;
        [&s.stable, &s.candidate, &s.previous]
            .into_iter()
            .flatten()
            .chain(s.instances.iter())
            .find(|sv| sv.slot == slot)
            .map(|sv| sv.version.clone())
            .or_else(|| {
                self.weights
                    .routes
                    .iter()
                    .find(|r| r.slot == slot && !r.version.is_empty())
                    .map(|r| r.version.clone())
            })
    }
}

/// Decides the plan for `action` (and `flag` for flag actions).
pub fn decide(action: Action, flag: Option<&str>, env: &Snapshot) -> Result<Plan, StageError> {
    match action {
        Action::Flag => flag_plan(flag, env)?.ok_or_else(|| {
            StageError::failed(match flag {
                Some(f) => {
                    format!("with.flag: flag `{f}` is not in flags.json; nothing to turn off")
                }
                None => "action flag: no flag in flags.json has a percentage above 0; \
                         name one with `with.flag`"
                    .to_string(),
            })
        }),
        Action::Weights => weights_plan(env).ok_or_else(|| {
            StageError::failed(
                "action weights: state.json names no stable slot to send the traffic to",
            )
        }),
        Action::Rollback => {
            rollback_plan(env).map_err(|why| StageError::failed(format!("action rollback: {why}")))
        }
        Action::Auto => {
            if let Some(p) = flag_plan(flag, env)?.filter(|p| match &p.step {
                Step::Flag { percent, on, .. } => {
                    *percent > 0.0
                        && (flag.is_some()
                            || env.state.candidate.as_ref().is_none_or(|c| &c.slot == on))
                }
                _ => false,
            }) {
                return Ok(p);
            }
            if env.state.candidate.is_some() {
                if let Some(p) = weights_plan(env) {
                    return Ok(p);
                }
            }
            rollback_plan(env).map_err(|why| {
                StageError::failed(format!(
                    "nothing to remediate: state.json has no candidate, no flag above 0% and \
                     nothing to roll back to ({why})"
                ))
            })
        }
    }
}

fn flag_plan(flag: Option<&str>, env: &Snapshot) -> Result<Option<Plan>, StageError> {
    let chosen = match flag {
        Some(name) => env.flags.flags.get_key_value(name),
        None => {
            let live: Vec<_> = env
                .flags
                .flags
                .iter()
                .filter(|(_, r)| r.percent > 0.0)
                .collect();
            if live.len() > 1 {
                let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
                return Err(StageError::invalid_config(format!(
                    "with.flag: flags.json has {} flags above 0% ({}); name the one to turn off",
                    live.len(),
                    names.join(", ")
                )));
            }
            live.into_iter().next()
        }
    };
    let Some((name, rule)) = chosen else {
        return Ok(None);
    };
    let version = env
        .version_of(&rule.off)
        .or_else(|| env.state.stable.as_ref().map(|s| s.version.clone()))
        .unwrap_or_default();
    let off = SlotVersion::new(rule.off.clone(), version);
    Ok(Some(Plan {
        action: Action::Flag,
        why: format!(
            "flag `{name}` sent {}% of users to slot {}; it goes to 0% so every user is served by {} {}",
            rule.percent, rule.on, off.slot, off.version
        ),
        expect: off.clone(),
        step: Step::Flag {
            flag: name.clone(),
            percent: rule.percent,
            off,
            on: rule.on.clone(),
        },
    }))
}

fn weights_plan(env: &Snapshot) -> Option<Plan> {
    let stable = env.state.stable.clone()?;
    let from = env
        .state
        .candidate
        .clone()
        .filter(|c| c.slot != stable.slot);
    let share = from
        .as_ref()
        .map(|c| env.weights.weight_of(&c.slot))
        .unwrap_or(0);
    let total = env.weights.total();
    let why = match &from {
        Some(c) if share == 0 => format!(
            "candidate {} on slot {} has no traffic left (its canary already backed out); \
             stable {} on slot {} keeps all traffic and the candidate is dropped",
            c.version, c.slot, stable.version, stable.slot
        ),
        Some(c) => format!(
            "candidate {} on slot {} had {:.0}% of the traffic; all traffic goes back to stable {} on slot {}",
            c.version,
            c.slot,
            f64::from(share) * 100.0 / f64::from(total.max(1)),
            stable.version,
            stable.slot
        ),
        None => format!(
            "all traffic to stable {} on slot {}",
            stable.version, stable.slot
        ),
    };
    Some(Plan {
        action: Action::Weights,
        expect: stable.clone(),
        step: Step::Weights { to: stable, from },
        why,
    })
}

fn rollback_plan(env: &Snapshot) -> Result<Plan, String> {
    // The same choice as `sluice_delivery::Target::rollback`
    // (`State::rollback_target`): a candidate gives way to the stable
    // release, else the previous release returns unless it is known bad,
    // else the newest good release.
    let (to, from) = env.state.rollback_target()?;
    if let (Some(candidate), Some(stable)) = (&env.state.candidate, &env.state.stable) {
        return Ok(Plan {
            action: Action::Rollback,
            why: format!(
                "candidate {} on slot {} is rolled back; stable {} on slot {} keeps all traffic",
                candidate.version, candidate.slot, stable.version, stable.slot
            ),
            expect: stable.clone(),
            step: Step::Rollback {
                to: stable.clone(),
                from: Some(candidate.clone()),
            },
        });
    }
    let kind = if env.state.previous.as_ref() == Some(&to) {
        "the previous release"
    } else {
        "the last good release"
    };
    let why = match &from {
        Some(f) => format!(
            "{} on slot {} was promoted and failed; {kind} {} on slot {} serves again",
            f.version, f.slot, to.version, to.slot
        ),
        None => format!("{kind} {} on slot {} serves again", to.version, to.slot),
    };
    Ok(Plan {
        action: Action::Rollback,
        expect: to.clone(),
        step: Step::Rollback { to, from },
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_delivery::state::FlagRule;

    fn sv(slot: &str, version: &str) -> Option<SlotVersion> {
        Some(SlotVersion::new(slot, version))
    }

    fn canary_aborted() -> Snapshot {
        let mut s = Snapshot::default();
        s.state.stable = sv("blue", "1.0.0");
        s.state.candidate = sv("green", "2.0.0");
        s.weights = Weights::split(
            &SlotVersion::new("blue", "1.0.0"),
            &SlotVersion::new("green", "2.0.0"),
            20,
        );
        s
    }

    #[test]
    fn auto_sends_traffic_back_to_stable_during_a_canary() {
        let p = decide(Action::Auto, None, &canary_aborted()).expect("plan");
        assert_eq!(p.action, Action::Weights);
        assert_eq!(p.expect, SlotVersion::new("blue", "1.0.0"));
        assert!(p.why.contains("had 20% of the traffic"), "{}", p.why);
    }

    #[test]
    fn auto_rolls_back_a_promoted_release() {
        let mut s = Snapshot::default();
        s.state.stable = sv("green", "2.0.0");
        s.state.previous = sv("blue", "1.0.0");
        let p = decide(Action::Auto, None, &s).expect("plan");
        assert_eq!(p.action, Action::Rollback);
        assert_eq!(p.expect, SlotVersion::new("blue", "1.0.0"));
    }

    #[test]
    fn rollback_never_returns_to_a_bad_release() {
        let mut s = Snapshot::default();
        s.state.stable = sv("blue", "1.0.0");
        s.state.previous = sv("green", "2.0.0");
        s.state
            .set_verdict("2.0.0", Some("green"), sluice_delivery::Verdict::Bad);
        let e = decide(Action::Rollback, None, &s).expect_err("bad previous");
        assert!(e.message().contains("known bad: 2.0.0"), "{e}");
        s.state
            .set_verdict("0.9.0", Some("green"), sluice_delivery::Verdict::Good);
        let p = decide(Action::Rollback, None, &s).expect("plan");
        assert_eq!(p.expect, SlotVersion::new("green", "0.9.0"));
        assert!(p.why.contains("last good release"), "{}", p.why);
    }

    #[test]
    fn auto_turns_a_live_flag_off() {
        let mut s = canary_aborted();
        s.flags
            .flags
            .insert("release-2.0.0".into(), FlagRule::new("green", "blue", 10.0));
        let p = decide(Action::Auto, None, &s).expect("plan");
        assert_eq!(p.action, Action::Flag);
        assert_eq!(p.expect, SlotVersion::new("blue", "1.0.0"));
    }

    #[test]
    fn nothing_to_do_is_an_error() {
        let e = decide(Action::Auto, None, &Snapshot::default()).expect_err("nothing");
        assert!(e.message().starts_with("nothing to remediate"), "{e}");
        let mut only_stable = canary_aborted();
        only_stable.state.candidate = None;
        let e = decide(Action::Rollback, None, &only_stable).expect_err("no previous");
        assert!(e.message().contains("no known-good release"), "{e}");
        let e = decide(Action::Flag, Some("nope"), &canary_aborted()).expect_err("no flag");
        assert!(e.message().contains("`nope`"), "{e}");
    }
}
