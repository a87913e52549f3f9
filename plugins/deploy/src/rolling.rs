//! `rolling`: instances `instance-0` … `instance-<n-1>` move to the new
//! version batch by batch; each batch is health-checked (and, with
//! `pause`, waited for and checked again before the next batch). When a batch
//! fails, every instance moved so far (the completed batches and the
//! failed one) goes back to its old version and the stage fails, naming
//! the batch; the state then names the old version as `stable` and the
//! failed release as `bad`, so `remediate` has nothing left to roll back.

use sluice_delivery::{
    ArtifactFile, Route, SlotVersion, State, Target, TargetKind, Verdict, Weights,
};
use sluice_sdk::values::ConfigDuration;
use sluice_sdk::{Gate, StageError};

use crate::config::{Rolling, Settings, Strategy};
use crate::outcome::Outcome;
use crate::probe::probe;

/// Slot name of instance `i`.
pub fn instance(i: u32) -> String {
    format!("instance-{i}")
}

/// The batches: `instances` split in chunks of `batch_size`.
pub fn batches(r: Rolling) -> Vec<Vec<String>> {
    let all: Vec<String> = (0..r.instances).map(instance).collect();
    all.chunks(r.batch_size.max(1) as usize)
        .map(<[String]>::to_vec)
        .collect()
}

/// Points `slot` at `version` (http: the webhook deploys it).
fn update(t: &Target, a: &ArtifactFile, slot: &str, version: &str) -> Result<(), StageError> {
    if t.kind() == TargetKind::Http {
        t.deploy(a, version, slot)?;
    } else {
        t.point_slot(slot, version)?;
    }
    Ok(())
}

/// nginx: writes and reloads the upstream with every instance that has a
/// version (moved ones at `version`) at weight 1, and those of `batch` at
/// 0 (`down`), then waits [`DRAIN_WAIT`](sluice_delivery::nginx::DRAIN_WAIT) when a batch was drained. Does
/// nothing when no other instance could serve.
fn drain_batch(
    t: &Target,
    slots: &[String],
    old: &[Option<String>],
    moved: &[(usize, String)],
    version: &str,
    batch: Option<&Vec<String>>,
) -> Result<(), StageError> {
    let mut routes = Vec::new();
    for (slot, before) in slots.iter().zip(old) {
        let v = if moved.iter().any(|(_, m)| m == slot) {
            Some(version.to_string())
        } else {
            before.clone()
        };
        let Some(v) = v else { continue };
        let drained = batch.is_some_and(|b| b.contains(slot));
        routes.push(Route {
            slot: slot.clone(),
            version: v,
            weight: u32::from(!drained),
        });
    }
    let w = Weights { routes };
    if w.total() == 0 {
        return Ok(());
    }
    t.set_weights(&w)?;
    if batch.is_some() {
        std::thread::sleep(sluice_delivery::nginx::DRAIN_WAIT);
    }
    Ok(())
}

/// Runs the rolling deploy.
pub fn rolling(t: &Target, s: &Settings, a: &ArtifactFile) -> Result<Outcome, StageError> {
    let r = s.rolling.ok_or_else(|| {
        StageError::invalid_config("with.instances: required for strategy rolling")
    })?;
    let mut state = t.read_state()?;
    let slots: Vec<String> = (0..r.instances).map(instance).collect();
    let mut old: Vec<Option<String>> = Vec::new();
    for slot in &slots {
        let known = state
            .instances
            .iter()
            .find(|i| &i.slot == slot)
            .map(|i| i.version.clone());
        old.push(match known {
            Some(v) => Some(v),
            None => t.slot_version(slot)?,
        });
    }
    if t.kind() != TargetKind::Http {
        t.install(a, &s.version)?;
    }
    let plan = batches(r);
    let total = plan.len();
    let mut moved: Vec<(usize, String)> = Vec::new();
    let mut failure: Option<(usize, String, String)> = None;
    let mut health_attempts = 0u32;
    'batches: for (k, batch) in plan.iter().enumerate() {
        sluice_sdk::info!("batch {} of {total}: {}", k + 1, batch.join(", "));
        // nginx: the batch is drained (`down` in the upstream) before its
        // instances move, so no request reaches a process that restarts.
        let drain = t.kind() == TargetKind::Nginx;
        if drain {
            drain_batch(t, &slots, &old, &moved, &s.version, Some(batch))?;
        }
        for slot in batch {
            update(t, a, slot, &s.version)?;
            moved.push((k, slot.clone()));
        }
        if let Some(health) = &s.health {
            for slot in batch {
                let o = probe(t, health, slot, &s.version)?;
                health_attempts += o.attempts;
                if !o.healthy {
                    failure = Some((k, slot.clone(), o.message));
                    break 'batches;
                }
            }
        }
        if drain {
            // Healthy: back in the upstream.
            drain_batch(t, &slots, &old, &moved, &s.version, None)?;
        }
        let last = k + 1 == total;
        let pause = r.pause.filter(|_| !last);
        let detail = format!(
            "batch {} of {total} {}: {}{}",
            k + 1,
            if s.health.is_some() {
                "healthy"
            } else {
                "updated"
            },
            batch.join(", "),
            pause
                .map(|p| format!("; pausing {}", ConfigDuration::from(p)))
                .unwrap_or_default()
        );
        t.record(
            "batch",
            Some(&s.version),
            batch.first().map(String::as_str),
            Some(&detail),
        )?;
        let Some(pause) = pause else {
            continue;
        };
        sluice_sdk::info!(
            "pausing {} before batch {} of {total}",
            ConfigDuration::from(pause),
            k + 2
        );
        std::thread::sleep(pause);
        // The batch must still be healthy after the pause: one that turned
        // unhealthy meanwhile fails the rollout like a failed check.
        if let Some(health) = &s.health {
            for slot in batch {
                let o = probe(t, health, slot, &s.version)?;
                health_attempts += o.attempts;
                if !o.healthy {
                    let message = format!(
                        "unhealthy after the {} pause: {}",
                        ConfigDuration::from(pause),
                        o.message
                    );
                    failure = Some((k, slot.clone(), message));
                    break 'batches;
                }
            }
        }
    }
    let previous_version = most_common(&old);
    let first = slots.first().cloned().unwrap_or_else(|| instance(0));
    let mut out = Outcome {
        slot: first.clone(),
        url: t.slot_url(&first).map(str::to_string),
        previous_version: previous_version.clone(),
        stable_slot: first.clone(),
        ..Outcome::default()
    }
    .metric("deploy.instances", f64::from(r.instances))
    .metric("deploy.batches", total as f64)
    .metric("deploy.health_attempts", f64::from(health_attempts));

    state.strategy = Some(Strategy::Rolling.as_str().into());
    state.candidate = None;
    if let Some((k, slot, message)) = failure {
        let mut restored = Vec::new();
        if t.kind() == TargetKind::Nginx {
            restore_drained(t, s, &slots, &old, &moved, k, &plan, &mut restored)?;
        }
        for (_, moved_slot) in moved.iter().rev().filter(|_| t.kind() != TargetKind::Nginx) {
            let idx = slots.iter().position(|x| x == moved_slot).unwrap_or(0);
            match old.get(idx).cloned().flatten() {
                Some(v) => {
                    update(t, a, moved_slot, &v)?;
                    restored.push(format!("{moved_slot}→{v}"));
                }
                None => {
                    if let Some(path) = t.slot_path(moved_slot) {
                        sluice_delivery::fsutil::remove_tree(&path)?;
                    }
                    restored.push(format!("{moved_slot} removed (it had no version before)"));
                }
            }
        }
        restored.reverse();
        state.instances = slots
            .iter()
            .zip(&old)
            .filter_map(|(slot, v)| v.as_ref().map(|v| SlotVersion::new(slot, v)))
            .collect();
        if !state.instances.is_empty() {
            t.set_weights(&Weights::even(&state.instances))?;
        }
        restored_state(
            t,
            &mut state,
            previous_version.as_deref(),
            &first,
            &s.version,
        );
        t.write_state(&mut state)?;
        let batches_done: Vec<String> = (1..=k + 1).map(|b| b.to_string()).collect();
        t.record(
            "rollback",
            previous_version.as_deref(),
            None,
            Some(&format!(
                "rolling deploy of {} failed in batch {}: {message}",
                s.version,
                k + 1
            )),
        )?;
        let msg = format!(
            "rolling deploy of {} failed in batch {} of {total} ({slot}: {message}); rolled back \
             batch{} {}: {}",
            s.version,
            k + 1,
            if k == 0 { "" } else { "es" },
            batches_done.join(", "),
            restored.join(", ")
        );
        out.summary = msg.clone();
        return Ok(out
            .output("failed-batch", (k + 1).to_string())
            .metric("deploy.batches_completed", k as f64)
            .metric("deploy.rolled_back", 1.0)
            .gate(Gate::fail("deploy.rolling", msg)));
    }
    state.instances = slots
        .iter()
        .map(|slot| SlotVersion::new(slot, &s.version))
        .collect();
    t.set_weights(&Weights::even(&state.instances))?;
    if let Some(p) = &previous_version {
        crate::slots::supersede(&mut state, &SlotVersion::new(&first, p), &s.version, None);
    }
    crate::slots::note(t, &mut state, &s.version, &first);
    state.stable = Some(SlotVersion::new(&first, &s.version));
    t.write_state(&mut state)?;
    out.summary = format!(
        "rolling: {} instance(s) now serve {} after {total} healthy batch(es){}",
        r.instances,
        s.version,
        previous_version
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default()
    );
    Ok(out
        .metric("deploy.batches_completed", total as f64)
        .metric("deploy.rolled_back", 0.0))
}

/// nginx: puts the instances moved by a failed rolling deploy back one
/// at a time, newest first, each drained before it moves and
/// health-checked at its old version before it is back in the upstream
/// ([`Target::repoint_drained`]); an instance that had no version before
/// is taken out of the upstream and its link removed. `restored` gets
/// `slot→version` per instance, in instance order.
#[allow(clippy::too_many_arguments)]
fn restore_drained(
    t: &Target,
    s: &Settings,
    slots: &[String],
    old: &[Option<String>],
    moved: &[(usize, String)],
    failed_batch: usize,
    plan: &[Vec<String>],
    restored: &mut Vec<String>,
) -> Result<(), StageError> {
    // What the upstream serves now: moved instances at the new version,
    // the failed batch `down` (drained before it moved), the rest as they were.
    let mut layout: Vec<Route> = Vec::new();
    for (slot, before) in slots.iter().zip(old) {
        let moved_here = moved.iter().any(|(_, m)| m == slot);
        let version = if moved_here {
            Some(s.version.clone())
        } else {
            before.clone()
        };
        let Some(version) = version else { continue };
        let down = plan.get(failed_batch).is_some_and(|b| b.contains(slot));
        layout.push(Route {
            slot: slot.clone(),
            version,
            weight: u32::from(!down),
        });
    }
    for (_, moved_slot) in moved.iter().rev() {
        let idx = slots.iter().position(|x| x == moved_slot).unwrap_or(0);
        match old.get(idx).cloned().flatten() {
            Some(v) => {
                t.repoint_drained(
                    &mut layout,
                    &[(moved_slot.clone(), v.clone())],
                    s.health.as_ref().map(|h| &h.check),
                    s.health.as_ref().is_some_and(|h| h.check_version),
                )?;
                restored.push(format!("{moved_slot}→{v}"));
            }
            None => {
                layout.retain(|r| &r.slot != moved_slot);
                let w = Weights {
                    routes: layout.clone(),
                };
                if w.total() > 0 {
                    t.set_weights(&w)?;
                }
                if let Some(path) = t.slot_path(moved_slot) {
                    sluice_delivery::fsutil::remove_tree(&path)?;
                }
                restored.push(format!("{moved_slot} removed (it had no version before)"));
            }
        }
    }
    Ok(())
}

/// After a failed rolling deploy put every instance back: the state says
/// what serves (`stable` = the old version on `first`, which served
/// production until this attempt and so is `good` when not judged yet),
/// and the failed release is recorded as `bad`, so that `remediate` sees
/// that nothing is left to roll back. `previous` is kept: it is still
/// the release before the one that serves.
fn restored_state(t: &Target, state: &mut State, serving: Option<&str>, first: &str, failed: &str) {
    if let Some(v) = serving {
        if state.verdict(v) == Verdict::Unknown {
            state.set_verdict(v, Some(first), Verdict::Good);
        }
        state.stable = Some(SlotVersion::new(first, v));
        if state.previous.as_ref().is_some_and(|p| p.version == v) {
            state.previous = None;
        }
    }
    if serving != Some(failed) && !state.instances.iter().any(|i| i.version == failed) {
        crate::slots::note(t, state, failed, first);
        state.set_verdict(failed, Some(first), Verdict::Bad);
    }
}

/// The most common known version (ties: the first).
fn most_common(versions: &[Option<String>]) -> Option<String> {
    let mut best: Option<(&String, usize)> = None;
    for v in versions.iter().flatten() {
        let n = versions.iter().flatten().filter(|x| *x == v).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((v, n));
        }
    }
    best.map(|(v, _)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rollout_is_restored_one_instance_at_a_time() {
        let ws = tempfile::tempdir().expect("tempdir");
        let cfg: sluice_delivery::TargetConfig =
            serde_json::from_str(r#"{"root":"env"}"#).expect("cfg");
        let t = Target::open(&cfg, ws.path(), "production").expect("open");
        for v in ["1", "2"] {
            let f = ws.path().join(v);
            std::fs::write(&f, v).expect("write");
            t.install(&ArtifactFile::from_path(f).expect("artifact"), v)
                .expect("install");
        }
        let slots: Vec<String> = (0..3).map(instance).collect();
        for slot in &slots {
            t.point_slot(slot, "2").expect("point");
        }
        let s = Settings {
            target: cfg.clone(),
            artifact: None,
            version: "2".into(),
            strategy: Strategy::Rolling,
            auto_promote: false,
            rolling: None,
            initial_weight: 0,
            flag: String::new(),
            initial_percent: 0.0,
            health: None,
        };
        // Batch 1 (instance-0) moved and healthy; batch 2 (instance-1, a
        // new instance-2) moved, failed, and is `down`.
        let old = [Some("1".to_string()), Some("1".to_string()), None];
        let moved = [
            (0, slots[0].clone()),
            (1, slots[1].clone()),
            (1, slots[2].clone()),
        ];
        let plan = vec![
            vec![slots[0].clone()],
            vec![slots[1].clone(), slots[2].clone()],
        ];
        let mut restored = Vec::new();
        restore_drained(&t, &s, &slots, &old, &moved, 1, &plan, &mut restored).expect("restore");
        assert_eq!(
            restored,
            [
                "instance-2 removed (it had no version before)",
                "instance-1→1",
                "instance-0→1"
            ]
        );
        let weights: Vec<String> = t
            .read_history()
            .expect("history")
            .into_iter()
            .filter(|h| h.action == "weights")
            .filter_map(|h| h.detail)
            .collect();
        // instance-2 leaves; instance-1 (already down) moves and comes back;
        // instance-0 is drained, moves and comes back: one at a time.
        assert_eq!(
            weights,
            [
                "instance-0=1 instance-1=0",
                "instance-0=1 instance-1=1",
                "instance-0=0 instance-1=1",
                "instance-0=1 instance-1=1"
            ]
        );
        for slot in &slots[..2] {
            assert_eq!(t.slot_version(slot).expect("v").as_deref(), Some("1"));
        }
        assert_eq!(t.slot_version(&slots[2]).expect("v"), None);
    }

    #[test]
    fn batching() {
        let b = batches(Rolling {
            instances: 5,
            batch_size: 2,
            pause: None,
        });
        assert_eq!(b.len(), 3);
        assert_eq!(b[2], vec!["instance-4".to_string()]);
        assert_eq!(
            most_common(&[Some("1".into()), None, Some("2".into()), Some("2".into())]),
            Some("2".into())
        );
        assert_eq!(most_common(&[None]), None);
    }
}
