//! The incident report: [`Incident`] (written as `incident.json`) and its
//! markdown rendering (`incident.md`), with a timeline merged from the
//! environment's `history.jsonl`, the upstream stages' results and what
//! this stage did. Pure: everything is passed in.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use sluice_delivery::history::parse_time;
use sluice_delivery::{HistoryEntry, SlotVersion, State};

use crate::evidence::Canary;
use crate::postmortem::{ActionItem, Hint};
use crate::upstream::StageResult;
use crate::verify::Verification;

/// Schema id of `incident.json`.
pub const SCHEMA: &str = "sluice.incident/v1";

/// What the remediation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remediation {
    /// `rollback`, `weights` or `flag`.
    pub action: String,
    /// Why this action.
    pub why: String,
    /// What was serving (or taking traffic) before, if known.
    pub from: Option<SlotVersion>,
    /// What serves now.
    pub to: SlotVersion,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// How long the action took.
    pub duration_ms: u64,
    /// `done`, or `error: …`.
    pub outcome: String,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// RFC 3339, or `unknown`.
    pub at: String,
    /// `history`, `stage <name>` or `remediate`.
    pub source: String,
    /// What happened.
    pub what: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// [`SCHEMA`].
    pub schema: String,
    /// `resolved`, `mitigated` (done but not verified) or `unresolved`.
    pub status: String,
    /// One line.
    pub title: String,
    /// `SEV1` (worst) … `SEV4`, by the rules of docs/delivery.md
    /// ([`crate::postmortem::severity`]).
    pub severity: String,
    /// The rule that gave it and its numbers (`partial: 20% of the
    /// traffic …`).
    pub severity_reason: String,
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Environment.
    pub environment: String,
    /// When the first failure was recorded (the first failed stage's end,
    /// RFC 3339): when the failure was detected, if known.
    pub opened_at: Option<String>,
    /// When the failed release first got traffic in this run (RFC 3339):
    /// the history entry ([`sluice_delivery::history::first_exposure`]) that
    /// first routed users to it, if known.
    pub exposed_at: Option<String>,
    /// That history entry, as in the timeline.
    pub exposure: Option<String>,
    /// The largest share (0–1) of the traffic the failed release had
    /// during this run, if known.
    pub exposure_share: Option<f64>,
    /// Where [`exposure_share`](Self::exposure_share) comes from.
    pub exposure_share_basis: Option<String>,
    /// When the verified rollback completed, if it did.
    pub resolved_at: Option<String>,
    /// `opened_at - exposed_at`, in seconds: how long users saw the bad
    /// release before the failure was detected.
    pub detection_time_s: Option<f64>,
    /// `resolved_at - exposed_at`, in seconds: how long users saw the bad
    /// release in all.
    pub exposure_window_s: Option<f64>,
    /// The exposure window when the first exposure is known, else
    /// `resolved_at - opened_at` (and a warning says so).
    pub time_to_recover_s: Option<f64>,
    /// Upstream stages that failed or were blocked.
    pub failed_stages: Vec<StageResult>,
    /// Every upstream stage this one saw.
    pub stages: Vec<StageResult>,
    /// The canary analyses among the inputs (`canary-analysis.json`).
    pub canaries: Vec<Canary>,
    /// `state.json` before the remediation.
    pub state_before: State,
    /// `state.json` after it.
    pub state_after: Option<State>,
    /// What was done.
    pub remediation: Option<Remediation>,
    /// How it was checked.
    pub verification: Option<Verification>,
    /// Likely causes, most specific first; "unknown" ones point at the
    /// stage log.
    pub root_cause_hints: Vec<Hint>,
    /// Follow-ups that follow from the evidence.
    pub action_items: Vec<ActionItem>,
    /// Everything in time order.
    pub timeline: Vec<Event>,
    /// Things the report could not know.
    pub warnings: Vec<String>,
}

/// RFC 3339 with milliseconds.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Seconds from `a` to `b`, when both parse and `b` is not earlier.
pub fn seconds_between(a: &str, b: &str) -> Option<f64> {
    let (a, b) = (parse_time(a)?, parse_time(b)?);
    b.duration_since(a).ok().map(|d| d.as_secs_f64())
}

/// How many history entries the timeline keeps when the bad release's
/// install cannot be found.
pub const HISTORY_TAIL: usize = 30;

/// The part of the environment's history that concerns this incident: from
/// the last install (or deploy) of `bad_version` on, else the last
/// [`HISTORY_TAIL`] entries. Returns the entries and how many were left out.
pub fn relevant_history<'a>(
    history: &'a [HistoryEntry],
    bad_version: Option<&str>,
) -> (&'a [HistoryEntry], usize) {
    let start = bad_version
        .and_then(|v| {
            history.iter().rposition(|h| {
                h.version.as_deref() == Some(v) && matches!(h.action.as_str(), "install" | "deploy")
            })
        })
        .unwrap_or_else(|| history.len().saturating_sub(HISTORY_TAIL));
    (&history[start..], start)
}

/// How a history entry reads in the timeline.
pub fn describe(h: &HistoryEntry) -> String {
    let mut what = h.action.clone();
    if let Some(v) = &h.version {
        what.push_str(&format!(" {v}"));
    }
    if let Some(s) = &h.slot {
        what.push_str(&format!(" on slot {s}"));
    }
    if let Some(d) = &h.detail {
        what.push_str(&format!(" — {d}"));
    }
    what
}

/// The timeline: history entries, upstream stage starts and ends, and the
/// remediation, sorted by time at full precision (unknown times last).
/// History entries keep their file order (an older whole-second time sorts
/// no earlier than the entry before it), and equal times keep causal
/// order: history, then stages, then the remediation.
pub fn timeline(
    history: &[HistoryEntry],
    stages: &[StageResult],
    remediation: Option<&Remediation>,
    verification: Option<&Verification>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut keys: Vec<Option<SystemTime>> = Vec::new();
    let mut last_history: Option<SystemTime> = None;
    for h in history {
        let key = parse_time(&h.at).map(|t| last_history.map_or(t, |l| l.max(t)));
        last_history = key.or(last_history);
        keys.push(key);
        events.push(Event {
            at: h.at.clone(),
            source: match &h.stage {
                Some(s) => format!("history ({s})"),
                None => "history".into(),
            },
            what: describe(h),
        });
    }
    for s in stages {
        if let Some(at) = &s.started_at {
            events.push(Event {
                at: at.clone(),
                source: format!("stage {}", s.stage),
                what: "started".into(),
            });
        }
        let mut what = s.state.clone().unwrap_or_else(|| "state unknown".into());
        if let Some(r) = &s.reason {
            what.push_str(&format!(": {r}"));
        }
        for g in s.failed_gates() {
            what.push_str(&format!("; gate {} {}", g.name, gate_numbers(g)));
        }
        events.push(Event {
            at: s.finished_at.clone().unwrap_or_else(|| "unknown".into()),
            source: format!("stage {}", s.stage),
            what,
        });
    }
    if let Some(r) = remediation {
        events.push(Event {
            at: r.started_at.clone(),
            source: "remediate".into(),
            what: format!("{} started: {}", r.action, r.why),
        });
        events.push(Event {
            at: r.finished_at.clone(),
            source: "remediate".into(),
            what: format!("{} {} in {} ms", r.action, r.outcome, r.duration_ms),
        });
    }
    if let (Some(v), Some(r)) = (verification, remediation) {
        let at = parse_time(&r.finished_at)
            .map(|t| format_time(t + Duration::from_millis(v.duration_ms)))
            .unwrap_or_else(|| "unknown".into());
        events.push(Event {
            at,
            source: "remediate".into(),
            what: format!("verification {}: {}", v.outcome, v.message),
        });
    }
    keys.extend(events[keys.len()..].iter().map(|e| parse_time(&e.at)));
    let mut keyed: Vec<(Option<SystemTime>, Event)> = keys.into_iter().zip(events).collect();
    // Stable: equal keys keep the order they were pushed in.
    keyed.sort_by_key(|(k, _)| match k {
        Some(t) => (0, *t),
        None => (1, SystemTime::UNIX_EPOCH),
    });
    keyed.into_iter().map(|(_, e)| e).collect()
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => {
            let s = format!("{x:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        None => "unknown".into(),
    }
}

fn gate_numbers(g: &crate::upstream::GateResult) -> String {
    format!(
        "{}: observed {}, threshold {}",
        g.verdict,
        num(g.observed),
        g.threshold_text(num)
    )
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn sv(s: Option<&SlotVersion>) -> (String, String) {
    match s {
        Some(s) => (s.slot.clone(), s.version.clone()),
        None => ("–".into(), "–".into()),
    }
}

/// Renders the markdown report.
pub fn markdown(i: &Incident) -> String {
    let mut md = String::new();
    md.push_str(&format!("# Incident: {}\n\n", i.title));
    md.push_str(&format!(
        "- **Status:** {}\n- **Severity:** {} ({})\n- **Pipeline:** {} · **run** `{}` · **environment** {}\n",
        i.status, i.severity, i.severity_reason, i.pipeline, i.run_id, i.environment
    ));
    let secs = |s: Option<f64>| {
        s.map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "unknown".into())
    };
    md.push_str(&format!(
        "- **First exposure:** {}{} · **Failure detected:** {} · **Resolved:** {}\n",
        i.exposed_at.as_deref().unwrap_or("unknown"),
        i.exposure
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        i.opened_at.as_deref().unwrap_or("unknown"),
        i.resolved_at.as_deref().unwrap_or("not resolved"),
    ));
    md.push_str(&format!(
        "- **Detection time:** {} · **Exposure window:** {} · **Time to recover:** {}\n",
        secs(i.detection_time_s),
        secs(i.exposure_window_s),
        secs(i.time_to_recover_s),
    ));
    md.push_str(&format!(
        "- **Exposure:** {}{}\n\n",
        i.exposure_share
            .map(|s| format!(
                "{}% of the traffic at most",
                num(Some((s * 1000.0).round() / 10.0))
            ))
            .unwrap_or_else(|| "unknown share of the traffic".into()),
        i.exposure_share_basis
            .as_deref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default()
    ));

    md.push_str("## Likely cause\n\n");
    if i.root_cause_hints.is_empty() {
        md.push_str("unknown\n");
    }
    for (n, h) in i.root_cause_hints.iter().enumerate() {
        md.push_str(&format!("{}. {}\n", n + 1, h.detail));
    }
    md.push('\n');

    md.push_str("## What failed\n\n");
    if i.failed_stages.is_empty() {
        md.push_str("unknown: no upstream stage reported a failure (the runner gave no `sluice.state`).\n\n");
    }
    for s in &i.failed_stages {
        md.push_str(&format!(
            "**{}** {} at {}: {}\n\n",
            s.stage,
            s.state.as_deref().unwrap_or("unknown"),
            s.finished_at.as_deref().unwrap_or("unknown"),
            s.reason.as_deref().unwrap_or("reason unknown")
        ));
        match &s.gates {
            None => md.push_str("Gates: unknown.\n\n"),
            Some(gates) if gates.is_empty() => md.push_str("Gates: none reported.\n\n"),
            Some(gates) => {
                md.push_str(
                    "| gate | verdict | observed | threshold | message |\n|---|---|---|---|---|\n",
                );
                for g in gates {
                    md.push_str(&format!(
                        "| {} | {} | {} | {} | {} |\n",
                        cell(&g.name),
                        if g.failed() {
                            format!("**{}**", g.verdict)
                        } else {
                            g.verdict.clone()
                        },
                        num(g.observed),
                        cell(&g.threshold_text(num)),
                        cell(&g.message)
                    ));
                }
                md.push('\n');
            }
        }
    }

    for c in &i.canaries {
        md.push_str(&format!(
            "Canary `{}` decision **{}** (from `canary-analysis.json`):\n\n",
            c.stage, c.decision
        ));
        for a in &c.analyses {
            md.push_str(&format!(
                "- step {} **{}** (observed {}, threshold {}): {}\n",
                a.step,
                a.phase,
                num(a.observed),
                num(a.threshold),
                a.why
            ));
            for l in &a.lines {
                md.push_str(&format!("  - {l}\n"));
            }
        }
        md.push('\n');
    }

    md.push_str("## What was deployed\n\n| role | slot | version |\n|---|---|---|\n");
    for (role, s) in [
        ("stable", i.state_before.stable.as_ref()),
        ("candidate", i.state_before.candidate.as_ref()),
        ("previous", i.state_before.previous.as_ref()),
    ] {
        let (slot, version) = sv(s);
        md.push_str(&format!("| {role} | {slot} | {version} |\n"));
    }
    md.push('\n');

    md.push_str("## What was done\n\n");
    match &i.remediation {
        None => md.push_str("Nothing: the remediation could not start.\n\n"),
        Some(r) => md.push_str(&format!(
            "**{}** — {}.\n\nStarted {}, finished {} ({} ms): {}.\n\n",
            r.action, r.why, r.started_at, r.finished_at, r.duration_ms, r.outcome
        )),
    }
    if let Some(v) = &i.verification {
        md.push_str(&format!(
            "Verification **{}** (expected version {}, {} attempt(s), {} ms): {}\n\n",
            v.outcome, v.expected_version, v.attempts, v.duration_ms, v.message
        ));
    }
    if let Some(after) = &i.state_after {
        let (slot, version) = sv(after.stable.as_ref());
        md.push_str(&format!("Now serving: **{version}** on slot {slot}.\n\n"));
    }

    if !i.action_items.is_empty() {
        md.push_str("## Action items\n\n| kind | action | owner | because |\n|---|---|---|---|\n");
        for a in &i.action_items {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                a.kind.as_str(),
                cell(&a.title),
                cell(&a.owner),
                cell(&a.because)
            ));
        }
        md.push('\n');
    }

    md.push_str("## Timeline (UTC)\n\n| time | source | event |\n|---|---|---|\n");
    for e in &i.timeline {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&e.at),
            cell(&e.source),
            cell(&e.what)
        ));
    }
    if !i.warnings.is_empty() {
        md.push_str("\n## Notes\n\n");
        for w in &i.warnings {
            md.push_str(&format!("- {w}\n"));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::GateResult;
    use sluice_delivery::history::{first_exposure, HistoryRouting};

    fn canary_failed() -> StageResult {
        StageResult {
            stage: "canary".into(),
            state: Some("failed".into()),
            reason: Some("analysis failed at step 2".into()),
            gates: Some(vec![GateResult {
                name: "error-rate".into(),
                verdict: "fail".into(),
                observed: Some(0.3412),
                threshold: Some(0.05),
                condition: None,
                source: None,
                message: "canary error rate 34.1% > 5%".into(),
            }]),
            started_at: Some("2026-11-22T05:00:01Z".into()),
            finished_at: Some("2026-11-22T05:00:09Z".into()),
            outputs: vec![],
        }
    }

    #[test]
    fn timeline_is_in_time_order() {
        let history = vec![HistoryEntry {
            at: "2026-11-22T05:00:00Z".into(),
            environment: "production".into(),
            stage: Some("deploy".into()),
            action: "deploy".into(),
            version: Some("2.0.0".into()),
            slot: Some("green".into()),
            detail: None,
            run_id: None,
        }];
        let r = Remediation {
            action: "weights".into(),
            why: "back to stable".into(),
            from: None,
            to: SlotVersion::new("blue", "1.0.0"),
            started_at: "2026-11-22T05:00:10.000Z".into(),
            finished_at: "2026-11-22T05:00:10.020Z".into(),
            duration_ms: 20,
            outcome: "done".into(),
        };
        let t = timeline(&history, &[canary_failed()], Some(&r), None);
        let sources: Vec<&str> = t.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "history (deploy)",
                "stage canary",
                "stage canary",
                "remediate",
                "remediate"
            ]
        );
        assert!(
            t[2].what
                .contains("gate error-rate fail: observed 0.3412, threshold 0.05"),
            "{:?}",
            t[2]
        );
        assert_eq!(
            seconds_between("2026-11-22T05:00:09Z", "2026-11-22T05:00:10.020Z"),
            Some(1.02)
        );
    }

    fn entry(at: &str, run: &str, action: &str, slot: &str, detail: &str) -> HistoryEntry {
        HistoryEntry {
            at: at.into(),
            stage: Some("s".into()),
            action: action.into(),
            version: (action == "point").then(|| "2.0.0".to_string()),
            slot: Some(slot.to_string()).filter(|s| !s.is_empty()),
            detail: Some(detail.to_string()).filter(|d| !d.is_empty()),
            run_id: Some(run.into()),
            ..HistoryEntry::default()
        }
    }

    #[test]
    fn mixed_precisions_sort_by_time_and_keep_causal_order() {
        let history = vec![
            // Written by an older sluice: whole seconds (really 05:00:00.9).
            entry("2026-11-22T05:00:00Z", "r", "point", "green", ""),
            entry(
                "2026-11-22T05:00:00.950Z",
                "r",
                "weights",
                "",
                "blue=90 green=10",
            ),
            // Clock step back: still after the entry before it.
            entry(
                "2026-11-22T05:00:00.940Z",
                "r",
                "weights",
                "",
                "blue=80 green=20",
            ),
            entry(
                "2026-11-22T05:00:02.500Z",
                "r",
                "weights",
                "",
                "blue=100 green=0",
            ),
        ];
        let stage = StageResult {
            stage: "canary".into(),
            state: Some("failed".into()),
            started_at: Some("2026-11-22T05:00:00.950Z".into()),
            finished_at: Some("2026-11-22T05:00:02.100Z".into()),
            ..StageResult::default()
        };
        let t = timeline(&history, &[stage], None, None);
        let order: Vec<String> = t
            .iter()
            .map(|e| format!("{} {}", e.at, e.what.split(' ').next().unwrap_or("")))
            .collect();
        assert_eq!(
            order,
            [
                "2026-11-22T05:00:00Z point",
                "2026-11-22T05:00:00.950Z weights",
                "2026-11-22T05:00:00.940Z weights",
                // Equal time: the history entries come first.
                "2026-11-22T05:00:00.950Z started",
                "2026-11-22T05:00:02.100Z failed",
                "2026-11-22T05:00:02.500Z weights",
            ]
        );
    }

    #[test]
    fn exposure_starts_when_the_bad_release_first_gets_traffic() {
        let bad = SlotVersion::new("green", "2.0.0");
        let history = vec![
            entry("2026-11-22T04:00:00Z", "old", "weights", "", "blue=100"),
            entry("2026-11-22T05:00:00.000Z", "r", "point", "green", ""),
            entry(
                "2026-11-22T05:00:00.100Z",
                "r",
                "weights",
                "",
                "blue=100 green=0",
            ),
            entry(
                "2026-11-22T05:00:01.000Z",
                "r",
                "weights",
                "",
                "blue=90 green=10",
            ),
            entry(
                "2026-11-22T05:00:05.000Z",
                "r",
                "weights",
                "",
                "blue=50 green=50",
            ),
        ];
        let ours = |_: usize, h: &HistoryEntry| h.run_id.as_deref() == Some("r");
        let exposed = |r: &HistoryRouting| r.share(&bad) > 0.0;
        let e = first_exposure(&history, ours, exposed).expect("exposed");
        assert_eq!(e.at, "2026-11-22T05:00:01.000Z");
        // Behind a flag: exposed when the flag turns the slot on.
        let flagged = vec![
            entry("2026-11-22T05:00:00.000Z", "r", "point", "green", ""),
            entry(
                "2026-11-22T05:00:00.500Z",
                "r",
                "flag",
                "",
                "release-2 0% on=green off=blue",
            ),
            entry(
                "2026-11-22T05:00:00.700Z",
                "r",
                "flag",
                "",
                "release-2 30% on=green off=blue",
            ),
        ];
        let e = first_exposure(&flagged, ours, exposed).expect("exposed");
        assert_eq!(e.at, "2026-11-22T05:00:00.700Z");
        // A removed flag routes nobody.
        let removed = vec![
            entry(
                "2026-11-22T05:00:00Z",
                "old",
                "flag",
                "",
                "f 30% on=green off=blue",
            ),
            entry(
                "2026-11-22T05:00:01Z",
                "old",
                "flag",
                "",
                "f removed (was 30% on=green off=blue)",
            ),
            entry("2026-11-22T05:00:02Z", "r", "point", "green", ""),
        ];
        assert!(first_exposure(&removed, ours, exposed).is_none());
        // Traffic from an earlier run is not this run's exposure.
        let earlier = vec![entry(
            "2026-11-22T05:00:00Z",
            "old",
            "weights",
            "",
            "green=100",
        )];
        assert!(first_exposure(&earlier, ours, exposed).is_none());
        assert_eq!(
            seconds_between("2026-11-22T05:00:01.000Z", "2026-11-22T05:00:16.000Z"),
            Some(15.0)
        );
    }

    #[test]
    fn history_starts_at_the_bad_release() {
        let h = |action: &str, v: &str| HistoryEntry {
            at: "2026-11-22T05:00:00Z".into(),
            action: action.into(),
            version: Some(v.into()),
            ..HistoryEntry::default()
        };
        let all = vec![
            h("install", "1.0.0"),
            h("promote", "1.0.0"),
            h("install", "2.0.0"),
            h("point", "2.0.0"),
        ];
        let (kept, skipped) = relevant_history(&all, Some("2.0.0"));
        assert_eq!((kept.len(), skipped), (2, 2));
        let (kept, skipped) = relevant_history(&all, Some("9.9.9"));
        assert_eq!((kept.len(), skipped), (4, 0));
    }

    #[test]
    fn markdown_names_the_failed_gate_and_unknowns() {
        let mut i = Incident {
            schema: SCHEMA.into(),
            status: "resolved".into(),
            title: "2.0.0 rolled back".into(),
            severity: "SEV3".into(),
            severity_reason: "partial: 20% of the traffic".into(),
            run_id: "r1".into(),
            pipeline: "delivery".into(),
            environment: "production".into(),
            opened_at: None,
            exposed_at: None,
            exposure: None,
            exposure_share: Some(0.2),
            exposure_share_basis: Some("history.jsonl of this run".into()),
            resolved_at: None,
            detection_time_s: None,
            exposure_window_s: None,
            time_to_recover_s: None,
            failed_stages: vec![canary_failed()],
            stages: vec![],
            canaries: vec![],
            state_before: State::default(),
            state_after: None,
            remediation: None,
            verification: None,
            root_cause_hints: vec![],
            action_items: vec![],
            timeline: vec![],
            warnings: vec![],
        };
        let md = markdown(&i);
        assert!(
            md.contains("- **Severity:** SEV3 (partial: 20% of the traffic)"),
            "{md}"
        );
        assert!(
            md.contains("- **Exposure:** 20% of the traffic at most (history.jsonl of this run)\n\n## Likely cause"),
            "{md}"
        );
        assert!(
            md.contains("| error-rate | **fail** | 0.3412 | 0.05 | canary error rate 34.1% > 5% |"),
            "{md}"
        );
        i.failed_stages.clear();
        assert!(markdown(&i).contains("## What failed\n\nunknown"));
        i.exposed_at = Some("2026-11-22T05:00:01.000Z".into());
        i.exposure = Some("weights — blue=90 green=10".into());
        i.opened_at = Some("2026-11-22T05:00:15.900Z".into());
        i.detection_time_s = Some(14.9);
        i.exposure_window_s = Some(15.0);
        i.time_to_recover_s = Some(15.0);
        let md = markdown(&i);
        assert!(
            md.contains(
                "- **First exposure:** 2026-11-22T05:00:01.000Z (weights — blue=90 green=10) · \
                 **Failure detected:** 2026-11-22T05:00:15.900Z"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "**Detection time:** 14.9 s · **Exposure window:** 15.0 s · **Time to recover:** 15.0 s"
            ),
            "{md}"
        );
    }
}
