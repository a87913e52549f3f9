//! The stage itself: reads the state, runs the steps through the target,
//! and promotes, aborts or pauses, then builds the report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_delivery::{FlagRule, SlotVersion, State, Target, Verdict as ReleaseVerdict, Weights};
use sluice_sdk::prelude::*;

use crate::analysis::{fmt_num, Clock, Phase, RealClock};
use crate::assess::{assess, Sources};
use crate::background::Background;
use crate::config::{Analysis, Settings};
use crate::progress::{self, Progress};
use crate::providers::{measure, Placeholders};
use crate::steps::{self, Decision, Driver, Outcome, StepAnalysis};

/// The [`Driver`] that acts on a real target with the wall clock.
struct TargetDriver<'a> {
    target: &'a Target,
    stable: &'a SlotVersion,
    candidate: &'a SlotVersion,
    sources: &'a Sources,
    clock: RealClock,
    /// `canary.json`, saved after every completed step.
    progress_file: &'a Path,
    run_id: &'a str,
    stage: &'a str,
    /// The flags that put users on the candidate's slot (a feature-flag
    /// release): every `set-weight` sets their percentage too.
    flags: &'a [(String, FlagRule)],
    /// `with.background-analysis`, measured between steps and in pauses.
    background: Option<Background>,
}

impl TargetDriver<'_> {
    /// The background's result once it ended the canary.
    fn background_ended(&mut self, index: usize, ended: Option<Phase>) -> Option<StepAnalysis> {
        ended.and_then(|_| self.background.as_ref().map(|b| b.report(index)))
    }
}

/// The runner cancelled the stage (fail-fast, an interrupt, its timeout):
/// stop before the next change of traffic or decision. `run` then puts all
/// traffic back on the stable release within the grace period.
fn stop_if_cancelled() -> Result<(), StageError> {
    if sluice_sdk::cancel::is_cancelled() {
        Err(StageError::failed(CANCELLED))
    } else {
        Ok(())
    }
}

/// The failure a cancelled canary ends with.
const CANCELLED: &str = "cancelled by the runner";

impl Driver for TargetDriver<'_> {
    fn set_weight(&mut self, weight: u32) -> Result<(), StageError> {
        stop_if_cancelled()?;
        self.target
            .set_weights(&Weights::split(self.stable, self.candidate, weight))
            .context("setting the canary weight")?;
        step_flags(self.target, self.flags, weight)
    }

    fn pause(&mut self, index: usize, d: Duration) -> Result<Option<StepAnalysis>, StageError> {
        let ph = &self.sources.ph;
        let ended = match &mut self.background {
            Some(b) => b.sleep(index, d, &mut self.clock, &mut |p| measure(p, ph))?,
            None => {
                self.clock.sleep(d);
                None
            }
        };
        stop_if_cancelled()?;
        Ok(self.background_ended(index, ended))
    }

    fn between(&mut self, index: usize) -> Result<Option<StepAnalysis>, StageError> {
        let ph = &self.sources.ph;
        let ended = match &mut self.background {
            Some(b) => b.poll(index, &self.clock, &mut |p| measure(p, ph))?,
            None => None,
        };
        stop_if_cancelled()?;
        Ok(self.background_ended(index, ended))
    }

    fn background(&mut self, index: usize) -> Option<StepAnalysis> {
        self.background
            .as_ref()
            .filter(|b| b.measured())
            .map(|b| b.report(index))
    }

    fn analyse(&mut self, index: usize, analysis: &Analysis) -> Result<StepAnalysis, StageError> {
        let r = assess(index, analysis, self.sources, &mut self.clock)?;
        // An analysis cut short by the cancellation measured too little:
        // it must not decide anything (least of all that the release is
        // bad).
        stop_if_cancelled()?;
        for line in &r.lines {
            sluice_sdk::info!("step {index}: {line}");
        }
        Ok(r)
    }

    fn completed(&mut self, index: usize, weight: u32) -> Result<(), StageError> {
        let p = Progress {
            run_id: self.run_id.to_string(),
            stage: self.stage.to_string(),
            candidate: self.candidate.version.clone(),
            next_step: index + 1,
            weight,
            reason: format!("step {index} completed"),
        };
        // Not fatal: without the file a killed runner restarts the canary
        // at step 0, which is what it did before the file was kept.
        if let Err(e) = progress::save(self.progress_file, &p) {
            sluice_sdk::warn!(
                "could not save canary progress to {}: {e}; if the runner dies now, \
                 `sluice run --resume` restarts the canary at step 0",
                self.progress_file.display()
            );
        }
        Ok(())
    }
}

/// Sets every flag of `flags` (those turning the candidate's slot on) to
/// `weight` percent, so that users routed by the flag get the candidate in
/// the same share as the weighted traffic.
fn step_flags(
    target: &Target,
    flags: &[(String, FlagRule)],
    weight: u32,
) -> Result<(), StageError> {
    for (name, rule) in flags {
        let rule = FlagRule {
            percent: f64::from(weight.min(100)),
            ..rule.clone()
        };
        target
            .set_flag(name, &rule)
            .with_context(|| format!("setting flag {name} to {weight}%"))?;
    }
    Ok(())
}

/// A resumed canary continues at the weight it had: whatever changed the
/// environment meanwhile (a restarted router, a person), the weights and
/// the candidate's flags are set back to it before the next step. Nothing
/// is written when they already hold it.
fn reapply(
    target: &Target,
    stable: &SlotVersion,
    candidate: &SlotVersion,
    flags: &[(String, FlagRule)],
    weight: u32,
) -> Result<(), StageError> {
    let weight = weight.min(100);
    let now = target.read_weights()?;
    let want = Weights::split(stable, candidate, weight);
    if now.weight_of(&candidate.slot) != weight || now.weight_of(&stable.slot) != 100 - weight {
        sluice_sdk::info!(
            "re-applying the saved weight: candidate {} at {weight}% (the target had {}%)",
            candidate.version,
            now.weight_of(&candidate.slot)
        );
        target
            .set_weights(&want)
            .context("re-applying the saved canary weight")?;
    }
    let stale: Vec<(String, FlagRule)> = flags
        .iter()
        .filter(|(_, r)| r.percent != f64::from(weight))
        .cloned()
        .collect();
    if !stale.is_empty() {
        sluice_sdk::info!(
            "re-applying the saved weight to flag(s) {}: {weight}%",
            stale
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        step_flags(target, &stale, weight)?;
    }
    Ok(())
}

/// Removes every flag that routes users to or away from the candidate's
/// slot (promote: all users on the new stable release; abort: none on the
/// candidate). Returns the names removed.
fn remove_flags(target: &Target, candidate: &SlotVersion) -> Result<Vec<String>, StageError> {
    let mut removed = Vec::new();
    for (name, _) in target.read_flags()?.touching(&candidate.slot) {
        if target
            .remove_flag(&name)
            .with_context(|| format!("removing flag {name}"))?
            .is_some()
        {
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Opens the target under the environment's name: the stage's
/// `environment:`, else the one in `state.json`, else `production`.
fn open_target(ctx: &Context, settings: &Settings) -> Result<(Target, State), StageError> {
    let probe = Target::open(
        &settings.target,
        &ctx.workspace(),
        ctx.environment().unwrap_or(""),
    )?;
    let state = probe.read_state()?;
    let env = ctx
        .environment()
        .map(str::to_string)
        .or_else(|| Some(state.environment.clone()).filter(|e| !e.is_empty()))
        .unwrap_or_else(|| "production".to_string());
    // The run id goes into history and state, so `remediate` can tell what
    // this run changed.
    let target = Target::open(&settings.target, &ctx.workspace(), &env)?
        .with_stage(ctx.stage())
        .with_run_id(ctx.run_id());
    Ok((target, state))
}

fn progress_path(ctx: &Context, target: &Target) -> PathBuf {
    match target.root() {
        Some(root) => root.join("canary.json"),
        None => ctx
            .workspace()
            .join(format!(".canary-{}.json", ctx.stage())),
    }
}

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let settings = Settings::from_context(ctx)?;
    let (target, mut state) = open_target(ctx, &settings)?;
    let Some(candidate) = state.candidate.clone() else {
        // The environment's first release (deploy gave it all traffic at
        // once) or one already promoted: like Argo Rollouts, there is
        // nothing to compare, so the stage passes without steps.
        if let Some(stable) = &state.stable {
            return Ok(Report::new(format!(
                "no candidate to analyse: {} serves all traffic on slot `{}` (a first release, \
                 or one already promoted); nothing to do",
                stable.version, stable.slot
            ))
            .metric("canary.steps_completed", 0.0)
            .output("decision", "nothing-to-analyse")
            .output("version", stable.version.clone())
            .output("stable_version", stable.version.clone()));
        }
        return Err(StageError::failed(
            "state.json has no candidate and no stable release: deploy the new version first \
             (deploy with `strategy: canary` sets it), then run canary",
        ));
    };
    let stable = state.stable.clone().ok_or_else(|| {
        StageError::failed("state.json has no stable version to compare the candidate with")
    })?;
    let url = |slot: &str| target.slot_url(slot).unwrap_or_default().to_string();
    let placeholders = Placeholders {
        canary_version: candidate.version.clone(),
        canary_slot: candidate.slot.clone(),
        canary_url: url(&candidate.slot),
        stable_version: stable.version.clone(),
        stable_slot: stable.slot.clone(),
        stable_url: url(&stable.slot),
    };

    let sources = Sources {
        ph: placeholders,
        access_log: target.access_log_path(),
        slots: target.slots().clone(),
    };

    let progress_file = progress_path(ctx, &target);
    let saved = progress::load(&progress_file);
    let (start, weight) = match progress::start(
        saved.as_ref(),
        ctx.run_id(),
        ctx.stage(),
        &candidate.version,
    ) {
        progress::Start::Resume { next_step, weight } => {
            let why = saved.as_ref().map(|p| p.reason.as_str()).unwrap_or("");
            sluice_sdk::info!(
                "resuming canary {} at step {next_step} with weight {weight}% \
                 ({}: {why})",
                candidate.version,
                progress_file.display()
            );
            (next_step, weight)
        }
        progress::Start::Ignored(why) => {
            sluice_sdk::info!("ignoring {}: {why}", progress_file.display());
            (0, target.read_weights()?.weight_of(&candidate.slot))
        }
        progress::Start::Fresh => (0, target.read_weights()?.weight_of(&candidate.slot)),
    };

    // A feature-flag candidate: its flags step with the weights.
    let flags = if candidate.slot == stable.slot {
        Vec::new()
    } else {
        target.read_flags()?.turning_on(&candidate.slot)
    };
    if start > 0 {
        reapply(&target, &stable, &candidate, &flags, weight)?;
    }
    let mut driver = TargetDriver {
        target: &target,
        stable: &stable,
        candidate: &candidate,
        sources: &sources,
        clock: RealClock::new(),
        progress_file: &progress_file,
        run_id: ctx.run_id(),
        stage: ctx.stage(),
        flags: &flags,
        background: settings.background.clone().map(Background::new),
    };
    let outcome = match steps::run(&settings.steps, start, weight, &mut driver) {
        Ok(outcome) if !sluice_sdk::cancel::is_cancelled() => outcome,
        Err(e) if !sluice_sdk::cancel::is_cancelled() => return Err(e),
        _ => return Err(restore_when_cancelled(&target, &stable, &candidate)),
    };

    let decided = Decided::from(&outcome, settings.promote);
    match decided {
        Decided::Promoted => {
            target
                .set_weights(&Weights::all_to(&candidate))
                .context("promoting the candidate")?;
            remove_flags(&target, &candidate)?;
            // The release it replaces served until now: it is the rollback
            // target, and good unless something said otherwise. Promoting
            // the version that is already stable keeps `previous`.
            if stable.version != candidate.version {
                if state.verdict(&stable.version) == ReleaseVerdict::Unknown {
                    state.set_verdict(&stable.version, Some(&stable.slot), ReleaseVerdict::Good);
                }
                state.previous = Some(stable.clone());
            }
            state.stable = Some(candidate.clone());
            state.candidate = None;
            target.write_state(&mut state)?;
            target.record(
                "promote",
                Some(&candidate.version),
                Some(&candidate.slot),
                Some("canary analysis passed"),
            )?;
            progress::clear(&progress_file)?;
        }
        Decided::Passed => progress::clear(&progress_file)?,
        Decided::Aborted => {
            target
                .set_weights(&Weights::split(&stable, &candidate, 0))
                .context("aborting: setting the canary weight back to 0")?;
            remove_flags(&target, &candidate)?;
            // A release the analysis failed is never a rollback target.
            state.set_verdict(
                &candidate.version,
                Some(&candidate.slot),
                ReleaseVerdict::Bad,
            );
            target.write_state(&mut state)?;
            target.record(
                "abort",
                Some(&candidate.version),
                Some(&candidate.slot),
                Some("canary analysis failed; all traffic to stable"),
            )?;
            progress::clear(&progress_file)?;
        }
        Decided::Paused(next, ref reason) => {
            progress::save(
                &progress_file,
                &Progress {
                    run_id: ctx.run_id().to_string(),
                    stage: ctx.stage().to_string(),
                    candidate: candidate.version.clone(),
                    next_step: next,
                    weight: outcome.weight,
                    reason: reason.clone(),
                },
            )?;
        }
    }
    let mut report = build_report(&decided, &outcome, &stable, &candidate);
    if let Decided::Paused(..) = decided {
        let how = format!(
            "`sluice approve {} {}`, then `sluice run --resume {}`",
            ctx.run_id(),
            ctx.stage(),
            ctx.run_id()
        );
        for g in &mut report.gates {
            g.message = g.message.replace(HOW_TO_CONTINUE, &how);
        }
    }
    ctx.write_artifact(
        "canary-analysis.json",
        analysis_json(&decided, &outcome, &stable, &candidate),
        "application/json",
    )?;
    Ok(report)
}

/// Put all traffic back on `stable` (weights and flags) because the runner
/// cancelled the stage, and say so in the history. The candidate keeps its
/// verdict (it was not judged), and the saved progress stays, so that
/// `sluice run --resume` re-applies the last completed step's weight.
fn restore_when_cancelled(
    target: &Target,
    stable: &SlotVersion,
    candidate: &SlotVersion,
) -> StageError {
    sluice_sdk::warn!(
        "cancelled by the runner: putting all traffic back on {} (slot {})",
        stable.version,
        stable.slot
    );
    let restored = target
        .set_weights(&Weights::split(stable, candidate, 0))
        .context("cancelled: setting the canary weight back to 0")
        .and_then(|()| remove_flags(target, candidate).map(|_| ()))
        .and_then(|()| {
            target.record(
                "cancel",
                Some(&candidate.version),
                Some(&candidate.slot),
                Some("canary cancelled by the runner; all traffic to stable"),
            )
        });
    match restored {
        Ok(()) => StageError::failed(format!(
            "{CANCELLED}: all traffic is back on {} (slot {})",
            stable.version, stable.slot
        )),
        Err(e) => StageError::failed(format!(
            "{CANCELLED}, and putting the traffic back on {} failed: {}",
            stable.version,
            e.message()
        )),
    }
}

/// The decision, with what a pause needs.
#[derive(Debug, Clone, PartialEq)]
enum Decided {
    Promoted,
    /// Every step passed, `promote: false`.
    Passed,
    Aborted,
    /// Continue at this step after approval.
    Paused(usize, String),
}

impl Decided {
    fn from(o: &Outcome, promote: bool) -> Self {
        match o.decision {
            Decision::Completed if promote => Decided::Promoted,
            Decision::Completed => Decided::Passed,
            Decision::Aborted(_) => Decided::Aborted,
            Decision::Paused(i) => {
                Decided::Paused(i + 1, format!("pause at step {i} until approved"))
            }
            Decision::Inconclusive(i) => {
                Decided::Paused(i + 1, format!("analysis at step {i} was inconclusive"))
            }
            // The step it interrupted runs again after approval.
            Decision::BackgroundInconclusive(i) => Decided::Paused(
                i,
                format!("background analysis was inconclusive during step {i}"),
            ),
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Decided::Promoted => "promoted",
            Decided::Passed => "passed",
            Decided::Aborted => "aborted",
            Decided::Paused(..) => "paused",
        }
    }
}

/// Replaced by the real commands once the run id is known.
const HOW_TO_CONTINUE: &str = "`sluice approve <run> <stage>`, then `sluice run --resume <run>`";

fn final_weight(d: &Decided, o: &Outcome) -> u32 {
    match d {
        Decided::Promoted => 100,
        Decided::Aborted => 0,
        _ => o.weight,
    }
}

fn build_report(d: &Decided, o: &Outcome, stable: &SlotVersion, candidate: &SlotVersion) -> Report {
    let last = o.analyses.last();
    let weight = final_weight(d, o);
    let mut summary = match d {
        Decided::Promoted => format!(
            "**promoted** {} (slot {}) after {} step(s); {} is now previous",
            candidate.version, candidate.slot, o.steps_completed, stable.version
        ),
        Decided::Passed => format!(
            "**passed** {} at {weight}% after {} step(s); not promoted (`promote: false`)",
            candidate.version, o.steps_completed
        ),
        Decided::Aborted => format!(
            "**aborted** {} at step {}: traffic back to stable {} (100%)",
            candidate.version,
            last.map(|a| a.step).unwrap_or(o.steps_completed),
            stable.version
        ),
        Decided::Paused(_, reason) => format!(
            "**paused** {} at {weight}%: {reason}; approve the stage and resume the run to continue",
            candidate.version
        ),
    };
    if let Some(a) = last {
        summary.push_str(&format!("\n\n{}", a.why));
    }
    let bg = o
        .background
        .iter()
        .filter(|b| !o.analyses.iter().any(|a| a.background && a.step == b.step));
    for a in o.analyses.iter().chain(bg) {
        if a.background {
            summary.push_str(&format!(
                "\n\nbackground analysis ({}, at step {}):",
                a.phase.as_str(),
                a.step
            ));
        } else {
            summary.push_str(&format!(
                "\n\nanalysis at step {} ({}):",
                a.step,
                a.phase.as_str()
            ));
        }
        for l in &a.lines {
            summary.push_str(&format!("\n- {l}"));
        }
    }
    let mut r = Report::new(summary)
        .metric_with_unit("canary.weight", f64::from(weight), "%")
        .metric("canary.steps_completed", o.steps_completed as f64)
        .output("decision", d.word())
        .output("version", candidate.version.clone())
        .output("stable_version", stable.version.clone());
    // Later analyses overwrite earlier values of the same metric.
    let mut metrics: Vec<(String, f64)> = Vec::new();
    for (name, v) in o
        .analyses
        .iter()
        .chain(o.background.iter())
        .flat_map(|a| a.metrics.iter())
    {
        metrics.retain(|(n, _)| n != name);
        metrics.push((name.clone(), *v));
    }
    for (name, v) in metrics {
        r = r.metric(name, v);
    }
    if let Some(score) = o.analyses.iter().rev().find_map(|a| a.score) {
        r = r.output("score", fmt_num(score));
    }
    if let Some(a) = last {
        let verdict = match a.phase {
            Phase::Successful => Verdict::Pass,
            Phase::Inconclusive => Verdict::Inconclusive,
            Phase::Failed | Phase::Error => Verdict::Fail,
        };
        let mut g = Gate::new("canary.analysis", verdict, a.why.clone());
        if let Some(v) = a.observed {
            g = g.observed(v);
        }
        if let Some(t) = a.threshold {
            g = g.threshold(t);
        }
        r = r.gate(g);
    }
    if let (Decided::Paused(_, reason), Decision::Paused(_)) = (d, &o.decision) {
        r = r.gate(Gate::new(
            "canary.paused",
            Verdict::Inconclusive,
            format!("{reason}: {HOW_TO_CONTINUE}"),
        ));
    }
    r
}

fn analysis_json(
    d: &Decided,
    o: &Outcome,
    stable: &SlotVersion,
    candidate: &SlotVersion,
) -> String {
    let one = |a: &StepAnalysis| {
        serde_json::json!({
            "step": a.step,
            "background": a.background,
            "phase": a.phase.as_str(),
            "score": a.score,
            "observed": a.observed,
            "threshold": a.threshold,
            "why": a.why,
            "lines": a.lines,
            "metrics": a.metrics.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "details": a.details,
        })
    };
    let analyses: Vec<serde_json::Value> = o.analyses.iter().map(one).collect();
    let doc = serde_json::json!({
        "decision": d.word(),
        "stable": {"slot": stable.slot, "version": stable.version},
        "candidate": {"slot": candidate.slot, "version": candidate.version},
        "weight": final_weight(d, o),
        "steps_completed": o.steps_completed,
        "analyses": analyses,
        "background": o.background.as_ref().map(one),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(phase: Phase) -> StepAnalysis {
        StepAnalysis {
            step: 1,
            phase,
            score: Some(0.0),
            observed: Some(0.0),
            threshold: Some(75.0),
            lines: vec!["`latency` failed".into()],
            why: "judge score 0 (fail)".into(),
            metrics: vec![
                ("canary.score".into(), 0.0),
                ("canary.latency.p_value".into(), 0.001),
            ],
            background: false,
            details: serde_json::Value::Null,
        }
    }

    fn sv(slot: &str, version: &str) -> SlotVersion {
        SlotVersion::new(slot, version)
    }

    /// A `local` target under `ws`, written to as the canary stage.
    fn local_target(ws: &std::path::Path) -> Target {
        let cfg: sluice_delivery::TargetConfig =
            serde_json::from_str(r#"{"root":"env"}"#).expect("cfg");
        Target::open(&cfg, ws, "production")
            .expect("open")
            .with_stage("canary")
    }

    #[test]
    fn aborted_report() {
        let o = Outcome {
            decision: Decision::Aborted(1),
            weight: 25,
            steps_completed: 1,
            analyses: vec![analysis(Phase::Failed)],
            background: None,
        };
        let d = Decided::from(&o, true);
        assert_eq!(d, Decided::Aborted);
        let r = build_report(&d, &o, &sv("blue", "1"), &sv("green", "2"));
        let g = &r.gates[0];
        assert_eq!(
            (g.name.as_str(), g.verdict, g.observed, g.threshold),
            ("canary.analysis", Verdict::Fail, Some(0.0), Some(75.0))
        );
        assert!(
            r.summary.starts_with("**aborted** 2 at step 1"),
            "{}",
            r.summary
        );
        assert!(r.outputs.contains(&("decision".into(), "aborted".into())));
        assert!(r.outputs.contains(&("score".into(), "0".into())));
        let weight = r.metrics.iter().find(|m| m.name == "canary.weight");
        assert_eq!(weight.map(|m| m.value), Some(0.0));
        let json = analysis_json(&d, &o, &sv("blue", "1"), &sv("green", "2"));
        assert!(json.contains("\"decision\": \"aborted\""), "{json}");
    }

    /// A feature-flag candidate: `set-weight` steps its flag, promote and
    /// abort remove it (and only the flags touching the candidate's slot).
    #[test]
    fn flags_step_with_the_weights_and_go_at_the_end() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local_target(ws.path());
        t.set_flag("release-2", &FlagRule::new("green", "blue", 5.0))
            .expect("flag");
        t.set_flag("other", &FlagRule::new("red", "blue", 30.0))
            .expect("other");
        let candidate = sv("green", "2");
        let flags = t.read_flags().expect("flags").turning_on(&candidate.slot);
        assert_eq!(flags.len(), 1);
        for w in [25, 50, 100] {
            step_flags(&t, &flags, w).expect("step");
            let now = t.read_flags().expect("flags");
            assert_eq!(
                now.flags["release-2"],
                FlagRule::new("green", "blue", f64::from(w))
            );
            assert_eq!(now.flags["other"].percent, 30.0);
        }
        assert_eq!(
            remove_flags(&t, &candidate).expect("remove"),
            vec!["release-2".to_string()]
        );
        let now = t.read_flags().expect("flags");
        assert!(!now.flags.contains_key("release-2"), "{now:?}");
        assert!(now.flags.contains_key("other"));
        let details: Vec<String> = t
            .read_history()
            .expect("history")
            .into_iter()
            .filter(|h| h.action == "flag")
            .filter_map(|h| h.detail)
            .collect();
        for want in [
            "release-2 25% on=green off=blue",
            "release-2 50% on=green off=blue",
            "release-2 100% on=green off=blue",
            "release-2 removed (was 100% on=green off=blue)",
        ] {
            assert!(details.iter().any(|d| d == want), "{want}: {details:?}");
        }
        assert!(remove_flags(&t, &candidate).expect("again").is_empty());
    }

    /// A resumed canary puts back the saved weight and flag percentage,
    /// and writes nothing when the target still has them.
    #[test]
    fn resume_reapplies_the_saved_weight_and_flag() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local_target(ws.path());
        let (stable, candidate) = (sv("blue", "1"), sv("green", "2"));
        t.set_weights(&Weights::all_to(&stable)).expect("weights");
        let rule = FlagRule::new("green", "blue", 5.0);
        t.set_flag("release-2", &rule).expect("flag");
        let flags = t.read_flags().expect("flags").turning_on("green");
        reapply(&t, &stable, &candidate, &flags, 30).expect("reapply");
        assert_eq!(t.read_weights().expect("w").weight_of("green"), 30);
        assert_eq!(t.read_flags().expect("f").flags["release-2"].percent, 30.0);
        let lines = t.read_history().expect("history").len();
        let flags = t.read_flags().expect("flags").turning_on("green");
        reapply(&t, &stable, &candidate, &flags, 30).expect("again");
        assert_eq!(t.read_history().expect("history").len(), lines);
    }

    #[test]
    fn paused_report() {
        let o = Outcome {
            decision: Decision::Paused(2),
            weight: 10,
            steps_completed: 2,
            analyses: Vec::new(),
            background: None,
        };
        let d = Decided::from(&o, true);
        assert_eq!(
            d,
            Decided::Paused(3, "pause at step 2 until approved".into())
        );
        let r = build_report(&d, &o, &sv("blue", "1"), &sv("green", "2"));
        assert_eq!(r.gates.len(), 1);
        assert_eq!(r.gates[0].name, "canary.paused");
        assert_eq!(r.gates[0].verdict, Verdict::Inconclusive);
        let o = Outcome {
            decision: Decision::Inconclusive(1),
            analyses: vec![analysis(Phase::Inconclusive)],
            ..o
        };
        let d = Decided::from(&o, true);
        let r = build_report(&d, &o, &sv("blue", "1"), &sv("green", "2"));
        assert_eq!(r.gates.len(), 1);
        assert_eq!(r.gates[0].verdict, Verdict::Inconclusive);
        assert_eq!(
            Decided::from(
                &Outcome {
                    decision: Decision::Completed,
                    ..o
                },
                false
            ),
            Decided::Passed
        );
    }
}
