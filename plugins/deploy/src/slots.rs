//! Recreate, blue-green, canary and feature-flag: one new version into
//! one slot (`main`, or the idle one of `blue`/`green`), then traffic.

use sluice_delivery::{
    ArtifactFile, FlagRule, Flags, SlotVersion, State, Target, Verdict, Weights,
};
use sluice_sdk::{Gate, StageError};

use crate::config::{Settings, Strategy};
use crate::outcome::Outcome;
use crate::probe::probe;

/// The slot a recreate deploy replaces.
pub const MAIN: &str = "main";
/// The first of the two blue-green slots.
pub const BLUE: &str = "blue";
/// The second.
pub const GREEN: &str = "green";

/// The idle slot next to `stable`.
pub fn idle_slot(stable: &str) -> &'static str {
    if stable == BLUE {
        GREEN
    } else {
        BLUE
    }
}

/// `old` stops serving production because `new_version` replaces it. A
/// different version becomes `previous` (the rollback target) and, when
/// it was not judged yet, `good`: it served production until a deploy
/// replaced it. A redeploy of the same version keeps `previous` as it is
/// (the rollback target must not be erased); its slot becomes
/// `previous_slot`, the slot that is idle afterwards, when given.
pub fn supersede(
    state: &mut State,
    old: &SlotVersion,
    new_version: &str,
    previous_slot: Option<&str>,
) {
    if old.version != new_version {
        if state.verdict(&old.version) == Verdict::Unknown {
            state.set_verdict(&old.version, Some(&old.slot), Verdict::Good);
        }
        state.previous = Some(old.clone());
    } else if let (Some(p), Some(slot)) = (state.previous.as_mut(), previous_slot) {
        p.slot = slot.to_string();
    }
}

/// Records the deployed release in `state.releases` (verdict `unknown`,
/// with this run's id).
pub fn note(t: &Target, state: &mut State, version: &str, slot: &str) {
    state.note_release(version, Some(slot), t.run_id());
}

/// Health-checks `slot` when configured; `Some(gate)` failing when it is
/// unhealthy.
fn check(
    target: &Target,
    s: &Settings,
    slot: &str,
    gate: &str,
    out: &mut Vec<(String, f64)>,
) -> Result<Option<Gate>, StageError> {
    let Some(health) = &s.health else {
        return Ok(None);
    };
    let o = probe(target, health, slot, &s.version)?;
    out.push(("deploy.health_attempts".into(), f64::from(o.attempts)));
    out.push(("deploy.health_ms".into(), o.latency_ms));
    Ok((!o.healthy).then(|| {
        Gate::fail(
            gate,
            format!(
                "{slot} is unhealthy after {} attempt(s): {}",
                o.attempts, o.message
            ),
        )
    }))
}

/// `recreate`: `main` points at the new version and takes all traffic.
pub fn recreate(t: &Target, s: &Settings, a: &ArtifactFile) -> Result<Outcome, StageError> {
    let mut state = t.read_state()?;
    let old = match state.stable.clone() {
        Some(sv) => Some(sv),
        None => t.slot_version(MAIN)?.map(|v| SlotVersion::new(MAIN, v)),
    };
    let d = t.deploy(a, &s.version, MAIN)?;
    let new = SlotVersion::new(MAIN, &s.version);
    t.set_weights(&Weights::all_to(&new))?;
    let mut metrics = Vec::new();
    let gate = check(t, s, MAIN, "deploy.health", &mut metrics)?;
    let previous_version = old
        .as_ref()
        .map(|o| o.version.clone())
        .or(d.previous_version);
    if let Some(o) = &old {
        supersede(&mut state, o, &s.version, None);
    }
    note(t, &mut state, &s.version, MAIN);
    state.strategy = Some(Strategy::Recreate.as_str().into());
    state.stable = Some(new);
    state.candidate = None;
    state.instances.clear();
    t.write_state(&mut state)?;
    let summary = format!(
        "recreate: {MAIN} now serves {}{}{}",
        s.version,
        previous_version
            .as_deref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default(),
        if gate.is_some() {
            "; health check FAILED"
        } else {
            ""
        }
    );
    let mut out = Outcome {
        slot: MAIN.into(),
        stable_slot: MAIN.into(),
        previous_version,
        url: t.slot_url(MAIN).map(str::to_string),
        summary,
        metrics,
        ..Outcome::default()
    };
    out.gates.extend(gate);
    Ok(out)
}

/// The first deploy of blue-green, canary or feature-flag: nothing is
/// stable yet, so the version goes to `blue` and takes all traffic.
fn first(
    t: &Target,
    s: &Settings,
    a: &ArtifactFile,
    mut state: State,
) -> Result<Outcome, StageError> {
    t.deploy(a, &s.version, BLUE)?;
    let new = SlotVersion::new(BLUE, &s.version);
    let mut metrics = Vec::new();
    let gate = check(t, s, BLUE, "deploy.health", &mut metrics)?;
    t.set_weights(&Weights::all_to(&new))?;
    state.strategy = Some(s.strategy.as_str().into());
    state.stable = Some(new);
    state.candidate = None;
    state.instances.clear();
    note(t, &mut state, &s.version, BLUE);
    t.write_state(&mut state)?;
    let mut out = Outcome {
        slot: BLUE.into(),
        stable_slot: BLUE.into(),
        url: t.slot_url(BLUE).map(str::to_string),
        summary: format!(
            "{}: no stable version yet, so {} went to {BLUE} and takes all traffic{}",
            s.strategy.as_str(),
            s.version,
            if gate.is_some() {
                "; health check FAILED"
            } else {
                ""
            }
        ),
        metrics,
        ..Outcome::default()
    };
    out.gates.extend(gate);
    Ok(out)
}

/// The flags routing users to `slot` (its `on` or its `off` slot: the
/// router sends every user with an id one way or the other), which the
/// slot's new release would get at once. Removed (each removal recorded
/// in `history.jsonl`) before the slot is re-pointed, except, with
/// `strategy: feature-flag`, the flag this deploy sets itself
/// (`with.flag`). Returns one log line per flag removed.
pub fn clear_stale_flags(t: &Target, s: &Settings, slot: &str) -> Result<Vec<String>, StageError> {
    let stale = stale_flags(&t.read_flags()?, s, slot);
    let mut lines = Vec::new();
    for (name, rule) in stale {
        if t.remove_flag(&name)?.is_some() {
            lines.push(format!(
                "removed stale flag {name} ({}% on={} off={}): it routes users to slot {slot}, \
                 which is about to serve {}",
                rule.percent, rule.on, rule.off, s.version
            ));
        }
    }
    Ok(lines)
}

/// The flags [`clear_stale_flags`] removes.
pub fn stale_flags(flags: &Flags, s: &Settings, slot: &str) -> Vec<(String, FlagRule)> {
    flags
        .touching(slot)
        .into_iter()
        .filter(|(name, _)| !(s.strategy == Strategy::FeatureFlag && *name == s.flag))
        .collect()
}

/// `blue-green`, `canary` and `feature-flag`: the new version goes to the
/// idle slot; then it is promoted (blue-green with auto-promote), given
/// its initial weight (canary) or put behind its flag (feature-flag).
pub fn idle(t: &Target, s: &Settings, a: &ArtifactFile) -> Result<Outcome, StageError> {
    let mut state = t.read_state()?;
    let Some(stable) = state.stable.clone() else {
        return first(t, s, a, state);
    };
    let slot = idle_slot(&stable.slot);
    // Before the slot serves the new release: a flag left by an earlier
    // (crashed) run would hand its users to it at once.
    for line in clear_stale_flags(t, s, slot)? {
        sluice_sdk::warn!("{line}");
    }
    let d = t.deploy(a, &s.version, slot)?;
    let cand = SlotVersion::new(slot, &s.version);
    let mut metrics = Vec::new();
    let gate_name = if s.strategy == Strategy::BlueGreen {
        "deploy.pre-promotion"
    } else {
        "deploy.health"
    };
    let gate = check(t, s, slot, gate_name, &mut metrics)?;
    state.strategy = Some(s.strategy.as_str().into());
    state.instances.clear();
    let mut out = Outcome {
        slot: slot.into(),
        previous_version: Some(stable.version.clone()),
        url: t.slot_url(slot).map(str::to_string),
        metrics,
        ..Outcome::default()
    };
    if let Some(old) = d.previous_version {
        sluice_sdk::debug!("{slot} served {old} before");
    }
    let unhealthy = gate.is_some();
    out.gates.extend(gate);
    note(t, &mut state, &s.version, slot);
    let promote = s.strategy == Strategy::BlueGreen && s.auto_promote && !unhealthy;
    if promote {
        t.set_weights(&Weights::all_to(&cand))?;
        t.record(
            "promote",
            Some(&s.version),
            Some(slot),
            Some(&format!("from {} {}", stable.slot, stable.version)),
        )?;
        supersede(&mut state, &stable, &s.version, Some(&stable.slot));
        state.stable = Some(cand);
        state.candidate = None;
        out.stable_slot = slot.into();
        out.summary = format!(
            "blue-green: {} on {slot} now takes all traffic; {} stays on {} for instant rollback",
            s.version, stable.version, stable.slot
        );
    } else {
        let weight = if s.strategy == Strategy::Canary && !unhealthy {
            s.initial_weight
        } else {
            0
        };
        t.set_weights(&Weights::split(&stable, &cand, weight))?;
        out.metrics
            .push(("deploy.weight".into(), f64::from(weight)));
        state.candidate = Some(cand);
        out.stable_slot = stable.slot.clone();
        out.summary = match s.strategy {
            Strategy::FeatureFlag => {
                let percent = if unhealthy { 0.0 } else { s.initial_percent };
                t.set_flag(
                    &s.flag,
                    &FlagRule::new(slot, stable.slot.clone(), percent),
                )?;
                out.metrics.push(("deploy.flag_percent".into(), percent));
                out.outputs.push(("flag".into(), s.flag.clone()));
                format!(
                    "feature-flag: {} on {slot} behind flag {} at {percent}%; {} on {} serves the rest",
                    s.version, s.flag, stable.version, stable.slot
                )
            }
            Strategy::Canary => format!(
                "canary: {} on {slot} at weight {weight}; {} on {} at {}",
                s.version,
                stable.version,
                stable.slot,
                100 - weight
            ),
            _ => format!(
                "blue-green: {} on {slot} is the candidate (not promoted{}); {} on {} keeps all traffic",
                s.version,
                if unhealthy { ": pre-promotion check failed" } else { ": auto-promote is false" },
                stable.version,
                stable.slot
            ),
        };
        if unhealthy {
            out.summary.push_str("; health check FAILED");
        }
    }
    t.write_state(&mut state)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings(strategy: &str) -> Settings {
        let c: Config = serde_json::from_str(&format!(
            r#"{{"target":{{"root":"env"}},"version":"2.0.0","strategy":"{strategy}"}}"#
        ))
        .expect("config");
        Settings::validate(c).expect("valid")
    }

    #[test]
    fn flags_routing_users_to_the_idle_slot_are_stale() {
        let rule = FlagRule::new;
        let flags = Flags {
            flags: [
                ("left-over".to_string(), rule("green", "blue", 30.0)),
                ("old-release".to_string(), rule("blue", "green", 5.0)),
                ("elsewhere".to_string(), rule("main", "blue", 50.0)),
                ("release-2.0.0".to_string(), rule("green", "blue", 10.0)),
            ]
            .into_iter()
            .collect(),
        };
        let names = |s: &Settings| -> Vec<String> {
            stale_flags(&flags, s, "green")
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        // `on` or `off` the slot: both send users there.
        assert_eq!(
            names(&settings("canary")),
            ["left-over", "old-release", "release-2.0.0"]
        );
        assert_eq!(
            names(&settings("blue-green")),
            ["left-over", "old-release", "release-2.0.0"]
        );
        // A feature-flag deploy sets its own flag (release-2.0.0) itself.
        assert_eq!(
            names(&settings("feature-flag")),
            ["left-over", "old-release"]
        );
        assert!(stale_flags(&Flags::default(), &settings("canary"), "green").is_empty());
    }

    #[test]
    fn a_redeploy_of_the_stable_version_keeps_previous() {
        let mut state = State {
            stable: Some(SlotVersion::new("blue", "2.1.0")),
            previous: Some(SlotVersion::new("green", "2.0.0")),
            ..State::default()
        };
        supersede(
            &mut state,
            &SlotVersion::new("blue", "2.1.0"),
            "2.1.0",
            Some("blue"),
        );
        assert_eq!(state.previous, Some(SlotVersion::new("blue", "2.0.0")));
        assert_eq!(state.verdict("2.1.0"), Verdict::Unknown);
        supersede(
            &mut state,
            &SlotVersion::new("green", "2.1.0"),
            "2.2.0",
            Some("green"),
        );
        assert_eq!(state.previous, Some(SlotVersion::new("green", "2.1.0")));
        assert_eq!(state.verdict("2.1.0"), Verdict::Good);
    }
}
