//! One run of the stage: read what failed and what is deployed, decide,
//! act, verify, and write the incident report.

use std::time::SystemTime;

use sluice_delivery::history::{first_exposure, parse_time, HistoryRouting};
use sluice_delivery::{HistoryEntry, ReleaseRecord, SlotVersion, State, Target, Verdict};
use sluice_sdk::{Context, Gate, Report, StageError};

use crate::act;
use crate::config::Settings;
use crate::evidence;
use crate::incident::{self, format_time, Incident, Remediation};
use crate::plan::{self, Snapshot};
use crate::postmortem;
use crate::upstream::{self, StageResult};
use crate::verify::{self, Verification};

/// Environment name when neither `with.environment`, the stage's
/// `environment:` nor `state.json` names one.
const DEFAULT_ENVIRONMENT: &str = "production";

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let settings = Settings::from_context(ctx)?;
    let (mut stages, mut warnings) = upstream::collect(ctx.upstream_outputs());
    let runner_said_nothing = stages.iter().all(|s| s.state.is_none());
    let (canaries, unreadable) = evidence::read(ctx);
    warnings.extend(unreadable);
    let (monitors, unreadable) = evidence::read_monitors(ctx);
    warnings.extend(unreadable);
    warnings.extend(evidence::complete(&mut stages, &canaries));
    if runner_said_nothing {
        warnings.push(
            "the runner reported no upstream stage results (`sluice.state`); what failed is unknown"
                .into(),
        );
    }

    let probe = Target::open(&settings.target, &ctx.workspace(), DEFAULT_ENVIRONMENT)?;
    let state_before = probe.read_state()?;
    let environment = settings
        .environment
        .clone()
        .or_else(|| ctx.environment().map(str::to_string))
        .or_else(|| Some(state_before.environment.clone()).filter(|e| !e.is_empty()))
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string());
    let target = Target::open(&settings.target, &ctx.workspace(), &environment)?
        .with_stage(ctx.stage())
        .with_run_id(ctx.run_id());
    let snapshot = Snapshot {
        state: state_before.clone(),
        weights: target.read_weights()?,
        flags: target.read_flags()?,
    };

    let failed: Vec<StageResult> = stages.iter().filter(|s| s.failed()).cloned().collect();
    let opened_at = failed
        .iter()
        .filter_map(|s| s.finished_at.as_deref())
        .filter_map(|t| parse_time(t).map(|p| (p, t)))
        .min_by_key(|(p, _)| *p)
        .map(|(_, t)| t.to_string());

    let mut incident = Incident {
        schema: incident::SCHEMA.into(),
        status: "unresolved".into(),
        title: String::new(),
        severity: String::new(),
        severity_reason: String::new(),
        run_id: ctx.run_id().into(),
        pipeline: ctx.pipeline().into(),
        environment: environment.clone(),
        opened_at,
        exposed_at: None,
        exposure: None,
        exposure_share: None,
        exposure_share_basis: None,
        resolved_at: None,
        detection_time_s: None,
        exposure_window_s: None,
        time_to_recover_s: None,
        failed_stages: failed,
        stages,
        canaries,
        state_before,
        state_after: None,
        remediation: None,
        verification: None,
        root_cause_hints: Vec::new(),
        action_items: Vec::new(),
        timeline: Vec::new(),
        warnings,
    };

    let history = target.read_history().unwrap_or_default();
    let scope = RunScope::of(ctx.run_id(), ctx.stage(), &snapshot.state, &history);
    if scope == RunScope::Unknown {
        incident.warnings.push(
            "state.json and history.jsonl do not say which run changed the environment \
             (written by an older sluice); acting on the current state"
                .into(),
        );
    }
    let nothing = match scope {
        RunScope::Nothing => Some(format!(
            "nothing to remediate: this run changed nothing in {environment}"
        )),
        _ => None,
    };
    let gates = match &nothing {
        Some(msg) => {
            sluice_sdk::info!("{msg}");
            vec![Gate::pass("remediation", msg.clone())]
        }
        None => remediate_and_verify(&settings, &target, &snapshot, &mut incident, |plan| {
            already_undone(ctx.run_id(), scope, &snapshot.state, &history, plan).or_else(|| {
                plan.and_then(|plan| {
                    stable_not_changed_by_run(ctx.run_id(), scope, &snapshot.state, &history, plan)
                })
            })
        }),
    };
    let nothing = nothing.or_else(|| {
        incident
            .remediation
            .is_none()
            .then(|| incident.title.clone())
            .filter(|t| t.starts_with("nothing to remediate"))
    });
    if let Some(msg) = &nothing {
        incident.status = NO_ACTION.into();
        incident.title = msg.clone();
    }
    complete_timeline(ctx, &target, &snapshot, &monitors, &mut incident);
    if let Some(msg) = nothing {
        incident.title = msg;
    }

    write_report(ctx, &settings, &incident, gates)
}

/// Incident status when the run changed nothing to remediate.
const NO_ACTION: &str = "no-action";

/// What the environment's records say about this run's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunScope {
    /// This run changed the environment (a history line or the state
    /// names its run id).
    Changed,
    /// The records name runs, but not this one: nothing to undo.
    Nothing,
    /// No record names any run (files from an older sluice).
    Unknown,
}

impl RunScope {
    fn of(run_id: &str, own_stage: &str, state: &State, history: &[HistoryEntry]) -> Self {
        let ours = |h: &&HistoryEntry| {
            h.run_id.as_deref() == Some(run_id) && h.stage.as_deref() != Some(own_stage)
        };
        if state.run_id.as_deref() == Some(run_id) || history.iter().any(|h| ours(&h)) {
            RunScope::Changed
        } else if state.run_id.is_some()
            || history.iter().any(|h| h.run_id.is_some())
            || state.releases.iter().any(|r| r.run_id.is_some())
        {
            RunScope::Nothing
        } else {
            RunScope::Unknown
        }
    }
}

/// The release this run deployed, that failed and that no longer serves
/// (marked `bad`, not stable, candidate nor on an instance): the deploy
/// already put the old version back, e.g. a rolling deploy failing in a
/// batch.
fn undone_release<'a>(run_id: &str, state: &'a State) -> Option<&'a ReleaseRecord> {
    if state.candidate.is_some() {
        return None;
    }
    state.releases.iter().rev().find(|r| {
        r.run_id.as_deref() == Some(run_id)
            && r.verdict == Verdict::Bad
            && state.stable.as_ref().is_none_or(|s| s.version != r.version)
            && !state.instances.iter().any(|i| i.version == r.version)
    })
}

/// `Some(reason)` when `plan` rolls back the stable release (or no plan
/// could be made, e.g. no earlier good release) although this run's failed
/// release was already taken out of service (by the deploy itself) and the
/// stable release is not one this run deployed: rolling it back would go
/// further back than the last good release.
fn already_undone(
    run_id: &str,
    scope: RunScope,
    state: &State,
    history: &[HistoryEntry],
    plan: Option<&plan::Plan>,
) -> Option<String> {
    if scope != RunScope::Changed
        || plan.is_some_and(|p| !matches!(p.step, plan::Step::Rollback { .. }))
    {
        return None;
    }
    let failed = undone_release(run_id, state)?;
    let stable = state.stable.as_ref()?;
    if state
        .release(&stable.version)
        .is_some_and(|r| r.run_id.as_deref() == Some(run_id) && r.verdict != Verdict::Good)
    {
        return None;
    }
    let by = history
        .iter()
        .rev()
        .find(|h| h.run_id.as_deref() == Some(run_id) && h.action == "rollback")
        .and_then(|h| h.stage.clone())
        .map(|s| format!("stage `{s}`"))
        .unwrap_or_else(|| "this run".to_string());
    let kind = if state.verdict(&stable.version) == Verdict::Good {
        "the last good release"
    } else {
        "the release that served before this run"
    };
    Some(format!(
        "nothing to remediate: release {} failed and {by} already rolled it back (marked bad); \
         {} already serves {kind} {} (slot {}), nothing left to roll back",
        failed.version,
        if state.environment.is_empty() {
            "production"
        } else {
            &state.environment
        },
        stable.version,
        stable.slot
    ))
}

/// `Some(reason)` when `plan` rolls back a stable release that this run
/// did not deploy or promote (it changed something else, e.g. a flag):
/// undoing an earlier run's release is not this run's remediation.
fn stable_not_changed_by_run(
    run_id: &str,
    scope: RunScope,
    state: &State,
    history: &[HistoryEntry],
    plan: &plan::Plan,
) -> Option<String> {
    if scope != RunScope::Changed {
        return None;
    }
    let plan::Step::Rollback {
        from: Some(from), ..
    } = &plan.step
    else {
        return None;
    };
    if state.candidate.is_some() || state.stable.as_ref() != Some(from) {
        return None;
    }
    let deployed_here = state
        .release(&from.version)
        .is_some_and(|r| r.run_id.as_deref() == Some(run_id))
        || history.iter().any(|h| {
            h.run_id.as_deref() == Some(run_id)
                && h.version.as_deref() == Some(from.version.as_str())
                && matches!(
                    h.action.as_str(),
                    "install" | "point" | "deploy" | "promote"
                )
        });
    (!deployed_here).then(|| {
        format!(
            "nothing to remediate: this run did not deploy {} (stable in {}), so it is not rolled back",
            from.version, state.environment
        )
    })
}

/// Decides, acts and verifies, filling in the incident; returns the
/// stage's gates. `veto` may refuse a plan with the reason (then nothing
/// is done and the gate passes with that reason); it is also asked with
/// `None` when no plan could be made, since "nothing to roll back to" is
/// no failure when the run's release was already undone.
fn remediate_and_verify(
    settings: &Settings,
    target: &Target,
    snapshot: &Snapshot,
    incident: &mut Incident,
    veto: impl Fn(Option<&plan::Plan>) -> Option<String>,
) -> Vec<Gate> {
    let started_at = format_time(SystemTime::now());
    let mut gates = Vec::new();
    let decided = plan::decide(settings.action, settings.flag.as_deref(), snapshot);
    if let Some(reason) = veto(decided.as_ref().ok()) {
        sluice_sdk::info!("{reason}");
        incident.title = reason.clone();
        gates.push(Gate::pass("remediation", reason));
        return gates;
    }
    let outcome = decided.and_then(|p| act::apply(target, &p).map(|d| (p, d)));
    let finished_at = format_time(SystemTime::now());
    match outcome {
        Err(e) => {
            sluice_sdk::error!("remediation failed: {}", e.message());
            gates.push(Gate::fail(
                "remediation",
                format!("remediation failed: {}", e.message()),
            ));
            incident.remediation = Some(Remediation {
                action: settings.action.as_str().into(),
                why: "see outcome".into(),
                from: None,
                to: sluice_delivery::SlotVersion::new("unknown", "unknown"),
                started_at: started_at.clone(),
                finished_at,
                duration_ms: 0,
                outcome: format!("error: {}", e.message()),
            });
        }
        Ok((plan, done)) => {
            sluice_sdk::info!("{}: {}", plan.action.as_str(), plan.why);
            for s in &done.steps {
                sluice_sdk::info!("  {s}");
            }
            gates.push(Gate::pass(
                "remediation",
                format!(
                    "{} done in {} ms: {}",
                    plan.action.as_str(),
                    done.duration_ms,
                    done.steps.join("; ")
                ),
            ));
            incident.remediation = Some(Remediation {
                action: plan.action.as_str().into(),
                why: plan.why.clone(),
                from: done.from.clone(),
                to: done.serving.clone(),
                started_at: started_at.clone(),
                finished_at: finished_at.clone(),
                duration_ms: done.duration_ms,
                outcome: format!("done ({})", done.steps.join("; ")),
            });
            // Always verify as users are routed (one request per user id):
            // a flag this run removed, one another actor left, or one set
            // while we verify all route by user, and without flags the
            // router ignores the header, so nothing is lost.
            let users = verify::user_sample_size(&settings.verify);
            let v = match verify::run(&settings.verify, &settings.target, &done.serving, users) {
                Ok(v) => v,
                Err(e) => Verification {
                    outcome: "failed".into(),
                    slot_url: settings.target.slots.get(&done.serving.slot).cloned(),
                    attempts: 0,
                    expected_version: done.serving.version.clone(),
                    message: e.to_string(),
                    router_url: settings.verify.url.clone(),
                    router_versions: Vec::new(),
                    duration_ms: 0,
                },
            };
            sluice_sdk::info!("verification {}: {}", v.outcome, v.message);
            gates.push(match v.outcome.as_str() {
                "passed" => Gate::pass("rollback-verified", v.message.clone()),
                "skipped" => Gate::warn("rollback-verified", v.message.clone()),
                _ => Gate::fail("rollback-verified", v.message.clone()),
            });
            incident.status = match v.outcome.as_str() {
                "passed" => "resolved",
                "skipped" => "mitigated",
                _ => "unresolved",
            }
            .into();
            if v.passed() {
                if let Err(e) = act::mark_good(target, &done.serving) {
                    incident.warnings.push(format!(
                        "could not mark {} good in state.json: {}",
                        done.serving.version,
                        e.message()
                    ));
                }
                // The time to recover is set with the exposure, once the
                // history is read (complete_timeline).
                incident.resolved_at = Some(format_time(SystemTime::now()));
            }
            incident.verification = Some(v);
        }
    }

    gates
}

/// The state after, the relevant history, the timeline and the
/// postmortem (exposure share, hints, severity, action items).
fn complete_timeline(
    ctx: &Context,
    target: &Target,
    snapshot: &Snapshot,
    monitors: &[evidence::Monitor],
    incident: &mut Incident,
) {
    incident.state_after = target.read_state().ok();
    // This stage's own history lines repeat the remediation events.
    let history: Vec<HistoryEntry> = match target.read_history() {
        Ok(h) => h
            .into_iter()
            .filter(|e| e.stage.as_deref() != Some(ctx.stage()))
            .collect(),
        Err(e) => {
            incident
                .warnings
                .push(format!("history unreadable: {}", e.message()));
            Vec::new()
        }
    };
    incident.title = title(incident);
    let undone = undone_release(ctx.run_id(), &incident.state_before).map(|r| r.version.clone());
    let bad = incident
        .remediation
        .as_ref()
        .and_then(|r| r.from.as_ref())
        .map(|s| s.version.clone())
        .or(undone)
        .or_else(|| {
            incident
                .state_before
                .candidate
                .as_ref()
                .or(incident.state_before.stable.as_ref())
                .map(|s| s.version.clone())
        });
    let (relevant, skipped) = incident::relevant_history(&history, bad.as_deref());
    recovery_times(ctx.run_id(), &history, skipped, incident);
    assess(
        ctx.run_id(),
        &history,
        skipped,
        snapshot,
        monitors,
        incident,
    );
    let history = relevant;
    if skipped > 0 {
        incident.warnings.push(format!(
            "the timeline starts at the install of the failed release; {skipped} earlier entries are in history.jsonl"
        ));
    }
    incident.timeline = incident::timeline(
        history,
        &incident.stages,
        incident.remediation.as_ref(),
        incident.verification.as_ref(),
    );
}

/// The first exposure of the failed release and the times measured from
/// it: detection time (to `opened_at`), exposure window and time to
/// recover (to `resolved_at`). Entries of this run count; when no history
/// entry names a run (an older sluice), those from the bad release's
/// install on (`from`).
fn recovery_times(run_id: &str, history: &[HistoryEntry], from: usize, incident: &mut Incident) {
    let bad = failed_release(incident);
    let ours = of_this_run(run_id, history, from);
    let exposure = bad
        .as_ref()
        .and_then(|bad| first_exposure(history, &ours, |r| r.share(bad) > 0.0));
    incident.exposed_at = exposure.map(|h| h.at.clone());
    incident.exposure = exposure.map(incident::describe);
    let since = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => incident::seconds_between(a, b),
        _ => None,
    };
    incident.detection_time_s = since(&incident.exposed_at, &incident.opened_at);
    incident.exposure_window_s = since(&incident.exposed_at, &incident.resolved_at);
    incident.time_to_recover_s = incident.exposure_window_s;
    if incident.resolved_at.is_some() && incident.exposed_at.is_none() {
        incident.time_to_recover_s = since(&incident.opened_at, &incident.resolved_at);
        incident.warnings.push(
            "history.jsonl does not show when this run first sent traffic to the failed \
             release; the time to recover is counted from the failure's detection"
                .into(),
        );
    }
}

/// The failed release: what the remediation took out of service, else the
/// candidate, else the stable release before it.
fn failed_release(incident: &Incident) -> Option<SlotVersion> {
    incident
        .remediation
        .as_ref()
        .and_then(|r| r.from.clone())
        .or_else(|| incident.state_before.candidate.clone())
        .or_else(|| incident.state_before.stable.clone())
}

/// Whether history entry `i` counts as this run's: entries naming this run,
/// or (no entry names a run: an older sluice) those from the failed
/// release's install on (`from`).
fn of_this_run<'a>(
    run_id: &'a str,
    history: &[HistoryEntry],
    from: usize,
) -> impl Fn(usize, &HistoryEntry) -> bool + 'a {
    let names_runs = history.iter().any(|h| h.run_id.is_some());
    move |i, h| {
        if names_runs {
            h.run_id.as_deref() == Some(run_id)
        } else {
            i >= from
        }
    }
}

/// The postmortem: exposure share (this run's history, else the routing
/// when the remediation started), root-cause hints, severity and action
/// items.
fn assess(
    run_id: &str,
    history: &[HistoryEntry],
    from: usize,
    snapshot: &Snapshot,
    monitors: &[evidence::Monitor],
    incident: &mut Incident,
) {
    let bad = failed_release(incident);
    let ours = of_this_run(run_id, history, from);
    let from_history = bad
        .as_ref()
        .and_then(|b| postmortem::exposure(history, b, &ours))
        .filter(|s| *s > 0.0 || incident.exposed_at.is_none());
    // A run whose history names runs but holds no entry of this one routed
    // nobody anywhere (e.g. its build or a gate before deploy failed): its
    // exposure is none, whatever the files say about earlier runs.
    let changed_nothing = history.iter().any(|h| h.run_id.is_some())
        && !history.iter().enumerate().any(|(i, h)| ours(i, h));
    let (share, basis) = match (from_history, &bad) {
        _ if changed_nothing => (
            Some(0.0),
            "history.jsonl: this run routed no traffic (no entry of this run)",
        ),
        (Some(s), _) if s > 0.0 => (Some(s), "history.jsonl of this run"),
        (_, Some(b)) => {
            let now = HistoryRouting::from_files(&snapshot.weights, &snapshot.flags);
            let s = now.share(b);
            match from_history {
                // The history shows no traffic for it in this run, nor do
                // the files: none.
                Some(h) => (Some(h.max(s)), "history.jsonl of this run and weights.json/flags.json when remediate started"),
                None => (Some(s), "weights.json/flags.json when remediate started (history.jsonl shows no entry of this run)"),
            }
        }
        (_, None) => (None, "unknown: no failed release is known"),
    };
    incident.exposure_share = share;
    incident.exposure_share_basis = Some(basis.to_string());

    let failed = incident.failed_stages.clone();
    let hints = postmortem::hints(
        &postmortem::Evidence {
            run_id,
            failed: &failed,
            canaries: &incident.canaries,
            monitors,
            history,
            bad: bad.as_ref(),
        },
        &ours,
    );
    let resolved = incident.status != "unresolved";
    // Unresolved: users still see it, as of this report.
    let window = incident.exposure_window_s.or_else(|| {
        let at = incident.exposed_at.as_deref()?;
        incident::seconds_between(at, &format_time(SystemTime::now()))
    });
    let sev = postmortem::severity(&postmortem::Facts {
        share,
        window_s: window,
        magnitude: hints.iter().find_map(|h| h.magnitude),
        resolved,
    });
    incident.severity = sev.level.to_string();
    incident.severity_reason = sev.reason;
    let unresolved_because = incident
        .verification
        .as_ref()
        .filter(|v| !v.passed())
        .map(|v| v.message.clone())
        .or_else(|| {
            incident
                .remediation
                .as_ref()
                .filter(|r| r.outcome.starts_with("error"))
                .map(|r| r.outcome.clone())
        });
    incident.action_items = postmortem::action_items(&postmortem::Outcome {
        hints: &hints,
        stages: &incident.stages,
        status: &incident.status,
        share,
        environment: &incident.environment,
        unresolved_because,
    });
    incident.root_cause_hints = hints;
}

/// Writes `incident.json` and `incident.md`, logs the markdown, and builds
/// the stage's report.
fn write_report(
    ctx: &Context,
    settings: &Settings,
    incident: &Incident,
    gates: Vec<Gate>,
) -> Result<Report, StageError> {
    let json = serde_json::to_string_pretty(incident)
        .map_err(|e| StageError::failed(format!("encoding incident.json: {e}")))?;
    let md = incident::markdown(incident);
    ctx.write_artifact(
        &format!("{}.json", settings.report),
        json,
        "application/json",
    )?;
    ctx.write_artifact(&format!("{}.md", settings.report), &md, "text/markdown")?;
    for line in md.lines() {
        sluice_sdk::info!("{line}");
    }

    let summary = if incident.status == NO_ACTION {
        incident.title.clone()
    } else {
        format!("{}: {}", incident.status, incident.title)
    };
    let mut report = Report::new(summary).output("status", incident.status.clone());
    if let Some(r) = incident
        .remediation
        .as_ref()
        .filter(|r| !r.outcome.starts_with("error"))
    {
        report = report
            .output("action", r.action.clone())
            .output("version", r.to.version.clone())
            .output("slot", r.to.slot.clone())
            .metric_with_unit("remediate.duration_ms", r.duration_ms as f64, "ms");
    }
    if let Some(v) = &incident.verification {
        report = report.metric("remediate.verify_attempts", f64::from(v.attempts));
    }
    if let Some(t) = incident.time_to_recover_s {
        report = report.metric_with_unit("remediate.time_to_recover_s", t, "s");
    }
    for g in gates {
        report = report.gate(g);
    }
    Ok(report)
}

/// One line for the report's title.
fn title(i: &Incident) -> String {
    let what_failed = match i.failed_stages.first() {
        Some(s) => {
            let gates: Vec<String> = s.failed_gates().iter().map(|g| g.name.clone()).collect();
            if gates.is_empty() {
                format!("{} {}", s.stage, s.state.as_deref().unwrap_or("failed"))
            } else {
                format!("{} failed gate {}", s.stage, gates.join(", "))
            }
        }
        None => "unknown failure".to_string(),
    };
    let bad = bad_version(&i.state_before, i.remediation.as_ref());
    match &i.remediation {
        Some(r) if !r.outcome.starts_with("error") => format!(
            "{bad} in {}: {what_failed}; {} to {} (slot {})",
            i.environment, r.action, r.to.version, r.to.slot
        ),
        _ => format!(
            "{bad} in {}: {what_failed}; remediation failed",
            i.environment
        ),
    }
}

fn bad_version(state: &State, r: Option<&Remediation>) -> String {
    r.and_then(|r| r.from.as_ref())
        .or(state.candidate.as_ref())
        .or(state.stable.as_ref())
        .map(|s| format!("release {}", s.version))
        .unwrap_or_else(|| "a release".into())
}
