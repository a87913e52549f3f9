//! The postmortem part of the incident report, derived only from the
//! evidence: the share of the traffic the failed release had
//! ([`exposure`]), root-cause hints ranked most specific first
//! ([`hints`]), the severity by the rules of docs/delivery.md
//! ([`severity`]) and follow-up action items ([`action_items`]). Pure:
//! everything is passed in.

use serde::Serialize;
use sluice_delivery::{HistoryEntry, SlotVersion};

use crate::evidence::{Analysis, Canary, Monitor};
use sluice_delivery::history::{parse_time, HistoryRouting};

use crate::incident::format_time;
use crate::upstream::{GateResult, StageResult};

/// Owner of a generated action item until someone takes it.
pub const UNASSIGNED: &str = "unassigned";

/// Share of the traffic at or above which exposure is "wide".
pub const WIDE_SHARE: f64 = 0.5;
/// Share of the traffic at or above which exposure is "partial" (below:
/// "narrow"); also the largest share a failure should be found at.
pub const PARTIAL_SHARE: f64 = 0.05;
/// Observed ÷ threshold at or above which a failure is "severe".
pub const SEVERE_MAGNITUDE: f64 = 2.0;
/// Exposure window (seconds) at or above which exposure is "long".
pub const LONG_EXPOSURE_S: f64 = 30.0 * 60.0;

/// One root-cause hint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hint {
    /// The stage whose evidence this is.
    pub stage: String,
    /// The canary step of the analysis, if any.
    pub step: Option<u32>,
    /// The candidate's traffic (percent) at that step, from this run's
    /// history.
    pub weight: Option<f64>,
    /// The metric, gate or probe that failed; `None` when unknown.
    pub metric: Option<String>,
    /// Observed value (for a judge metric: the canary's).
    pub observed: Option<f64>,
    /// What it was compared with (for a judge metric: the baseline's).
    pub threshold: Option<f64>,
    /// The judge's p-value, when the judge decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The judge's score, when the judge decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// When the first failing sample was taken (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failing_at: Option<String>,
    /// The stage log to read when the cause is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The request path the failing measurement sent (the judge's load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// One sentence.
    pub detail: String,
    /// How far the observed value is beyond its threshold (observed ÷
    /// threshold, for a lower bound the shortfall ratio); infinite when the
    /// comparison was against 0. Not serialized (JSON has no infinity).
    #[serde(skip)]
    pub magnitude: Option<f64>,
}

impl Hint {
    fn unknown(stage: &str, detail: String, log: Option<String>) -> Self {
        Hint {
            stage: stage.to_string(),
            step: None,
            weight: None,
            metric: None,
            observed: None,
            threshold: None,
            p_value: None,
            score: None,
            first_failing_at: None,
            log,
            path: None,
            detail,
            magnitude: None,
        }
    }

    /// Whether the hint names no cause.
    pub fn is_unknown(&self) -> bool {
        self.metric.is_none()
    }

    /// How specific the hint is: a named metric of a canary step with its
    /// numbers and statistics ranks above a gate, which ranks above a
    /// stage that said nothing.
    pub fn specificity(&self) -> u32 {
        let mut s = 0;
        if self.metric.is_some() {
            s += 4;
        }
        if self.step.is_some() {
            s += 2;
        }
        if self.observed.is_some() && self.threshold.is_some() {
            s += 2;
        }
        if self.p_value.is_some() || self.first_failing_at.is_some() {
            s += 1;
        }
        s
    }
}

/// What kind of follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Stops the failure from reaching users again.
    Prevent,
    /// Finds it sooner or for fewer users.
    Detect,
    /// Limits or ends its effect.
    Mitigate,
}

impl Kind {
    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Prevent => "prevent",
            Kind::Detect => "detect",
            Kind::Mitigate => "mitigate",
        }
    }
}

/// One follow-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionItem {
    /// `prevent`, `detect` or `mitigate`.
    pub kind: Kind,
    /// What to do.
    pub title: String,
    /// [`UNASSIGNED`] until someone takes it.
    pub owner: String,
    /// The evidence it follows from.
    pub because: String,
}

fn item(kind: Kind, title: String, because: String) -> ActionItem {
    ActionItem {
        kind,
        title,
        owner: UNASSIGNED.into(),
        because,
    }
}

/// The severity and the rule that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Severity {
    /// `SEV1` (worst) … `SEV4`.
    pub level: &'static str,
    /// The rule's name, as in docs/delivery.md.
    pub rule: &'static str,
    /// Why, with the numbers.
    pub reason: String,
}

/// What the exposure share is and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// 0–1.
    pub share: f64,
    /// Where the share comes from.
    pub basis: String,
}

/// The largest share of the traffic `bad` had after any history entry
/// `eligible(index, entry)` accepts (this run's), replaying the whole
/// history ([`HistoryRouting`]). `None` when no such entry exists.
pub fn exposure(
    history: &[HistoryEntry],
    bad: &SlotVersion,
    eligible: impl Fn(usize, &HistoryEntry) -> bool,
) -> Option<f64> {
    let mut routing = HistoryRouting::default();
    let mut max: Option<f64> = None;
    for (i, h) in history.iter().enumerate() {
        routing.apply(h);
        if eligible(i, h) {
            let share = routing.share(bad);
            max = Some(max.map_or(share, |m| m.max(share)));
        }
    }
    max
}

/// The candidate's traffic (percent) when canary stage `stage` failed:
/// the last share above 0 its own history entries of this run gave the
/// bad release before it aborted (the abort itself sets 0 first).
pub fn weight_at_failure(
    history: &[HistoryEntry],
    bad: &SlotVersion,
    stage: &str,
    eligible: impl Fn(usize, &HistoryEntry) -> bool,
) -> Option<f64> {
    let mut routing = HistoryRouting::default();
    let mut last = None;
    for (i, h) in history.iter().enumerate() {
        routing.apply(h);
        if !eligible(i, h) || h.stage.as_deref() != Some(stage) {
            continue;
        }
        if h.action == "abort" {
            break;
        }
        let share = routing.share(bad);
        if share > 0.0 {
            last = Some((share * 1000.0).round() / 10.0);
        }
    }
    last
}

fn ratio(observed: f64, threshold: f64, lower_bound: bool) -> Option<f64> {
    if !observed.is_finite() || !threshold.is_finite() {
        return None;
    }
    if lower_bound {
        // Availability-like (percent or ratio): compare the shortfalls.
        let full = if threshold > 1.0 { 100.0 } else { 1.0 };
        let (o, t) = (full - observed, full - threshold);
        return Some(if t > 0.0 { o / t } else { f64::INFINITY });
    }
    if observed >= threshold {
        Some(if threshold > 0.0 {
            observed / threshold
        } else if observed > 0.0 {
            f64::INFINITY
        } else {
            1.0
        })
    } else {
        // A minimum: how far below it.
        Some(if observed > 0.0 {
            threshold / observed
        } else {
            f64::INFINITY
        })
    }
}

fn gate_magnitude(g: &GateResult) -> Option<f64> {
    let lower =
        g.name.contains("availability") || g.condition.as_deref().is_some_and(|c| c.contains(">="));
    ratio(g.observed?, g.threshold?, lower)
}

/// Where the runner keeps a stage's log, relative to its state directory
/// (`--state-dir`, `.sluice/` by default).
pub fn log_path(run_id: &str, stage: &str) -> String {
    format!("runs/{run_id}/logs/{stage}.log")
}

/// The hints of one failed canary analysis: each judge metric that
/// failed (with canary vs baseline and the p-value), else the Argo-style
/// metric that decided, else the analysis as a whole.
fn analysis_hints(c: &Canary, a: &Analysis, weight: Option<f64>) -> Vec<Hint> {
    let named = |suffix: &str, name: &str| {
        a.metrics
            .iter()
            .find(|m| m.name == format!("canary.{name}.{suffix}"))
            .and_then(|m| m.value)
    };
    let mut out = Vec::new();
    let judged = a.details.as_ref().and_then(|d| d.judge.as_ref());
    for j in judged
        .iter()
        .flat_map(|j| &j.metrics)
        .filter(|j| j.failed())
    {
        let p_value = j.p_value.or_else(|| named("p_value", &j.name));
        let magnitude = match (j.canary, j.baseline) {
            (Some(c), Some(b)) => ratio(c, b, false),
            _ => None,
        };
        out.push(Hint {
            stage: c.stage.clone(),
            step: Some(a.step),
            weight,
            metric: Some(j.name.clone()),
            observed: j.canary,
            threshold: j.baseline,
            p_value,
            score: a.score,
            first_failing_at: None,
            log: None,
            path: judged.and_then(|j| j.path.clone()),
            detail: format!(
                "canary analysis at step {}{}: the judge's `{}` failed ({}: canary {} vs baseline {}{}{})",
                a.step,
                weight
                    .map(|w| format!(" ({w}% of the traffic)"))
                    .unwrap_or_default(),
                j.name,
                j.classification,
                num(j.canary),
                num(j.baseline),
                p_value
                    .map(|p| format!(", p = {}", num(Some(p))))
                    .unwrap_or_default(),
                a.score
                    .map(|s| format!(", judge score {}", num(Some(s))))
                    .unwrap_or_default(),
            ),
            magnitude,
        });
    }
    if !out.is_empty() {
        return out;
    }
    // An Argo-style metric decided (or nothing says which did).
    let metric = a.details.as_ref().and_then(|d| d.decided_by.clone());
    let magnitude = match (a.observed, a.threshold) {
        (Some(o), Some(t)) if metric.is_some() => ratio(o, t, false),
        _ => None,
    };
    vec![Hint {
        stage: c.stage.clone(),
        step: Some(a.step),
        weight,
        metric: metric.or_else(|| Some("canary.analysis".into())),
        observed: a.observed,
        threshold: a.threshold,
        p_value: None,
        score: a.score,
        first_failing_at: None,
        log: None,
        path: None,
        detail: format!(
            "canary analysis at step {}{} {}: {}",
            a.step,
            weight
                .map(|w| format!(" ({w}% of the traffic)"))
                .unwrap_or_default(),
            a.phase,
            a.why
        ),
        magnitude,
    }]
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

/// Everything [`hints`] reads.
pub struct Evidence<'a> {
    /// This run.
    pub run_id: &'a str,
    /// The upstream stages that failed.
    pub failed: &'a [StageResult],
    /// The canaries' analyses.
    pub canaries: &'a [Canary],
    /// The monitors' watches.
    pub monitors: &'a [Monitor],
    /// The environment's history.
    pub history: &'a [HistoryEntry],
    /// The failed release, when known.
    pub bad: Option<&'a SlotVersion>,
}

/// Root-cause hints, most specific first. Never invents a cause: a
/// failed stage without a gate or analysis saying why gives an "unknown"
/// hint pointing at its log.
pub fn hints(e: &Evidence, eligible: &dyn Fn(usize, &HistoryEntry) -> bool) -> Vec<Hint> {
    let mut out: Vec<Hint> = Vec::new();
    for s in e.failed {
        let canary = e
            .canaries
            .iter()
            .find(|c| c.stage == s.stage && c.analyses.iter().any(Analysis::failed));
        if let Some(c) = canary {
            let weight = e
                .bad
                .and_then(|bad| weight_at_failure(e.history, bad, &c.stage, eligible));
            for a in c.analyses.iter().filter(|a| a.failed()) {
                out.extend(analysis_hints(c, a, weight));
            }
        }
        let monitor = e.monitors.iter().find(|m| m.stage == s.stage);
        let burn = s
            .gates
            .iter()
            .flatten()
            .find(|g| g.name == "burn-rate")
            .filter(|g| g.observed.is_some());
        for g in s.failed_gates() {
            // The canary's gate repeats the analysis above; the
            // failure-limit gate repeats the SLO gates.
            if (canary.is_some() && g.name == "canary.analysis") || g.name == "failure-limit" {
                continue;
            }
            let mut detail = format!("stage `{}` gate `{}` {}", s.stage, g.name, g.verdict);
            detail.push_str(&format!(
                ": observed {}, threshold {}",
                num(g.observed),
                g.threshold_text(num)
            ));
            if !g.message.is_empty() {
                detail.push_str(&format!(" ({})", g.message));
            }
            let mut first = None;
            if let Some(m) = monitor {
                if let Some(b) = burn.filter(|b| b.name != g.name) {
                    detail.push_str(&format!(
                        "; burn rate {} (threshold {})",
                        num(b.observed),
                        b.threshold_text(num)
                    ));
                }
                if let (Some(sample), Some(start)) = (
                    m.first_breach(),
                    s.started_at.as_deref().and_then(parse_time),
                ) {
                    let at = start + std::time::Duration::from_secs_f64(sample.t.max(0.0));
                    first = Some(format_time(at));
                    detail.push_str(&format!(
                        "; first breaching sample about {:.1} s into the watch ({})",
                        sample.t,
                        sample.breaches.join(", ")
                    ));
                }
            }
            let metric = g
                .name
                .strip_prefix("probe ")
                .map(|p| format!("probe {p}"))
                .unwrap_or_else(|| g.name.clone());
            out.push(Hint {
                stage: s.stage.clone(),
                step: None,
                weight: None,
                metric: Some(metric),
                observed: g.observed,
                threshold: g.threshold,
                p_value: None,
                score: None,
                first_failing_at: first,
                log: None,
                path: None,
                detail,
                magnitude: gate_magnitude(g),
            });
        }
        if !out.iter().any(|h| h.stage == s.stage) {
            let log = log_path(e.run_id, &s.stage);
            out.push(Hint::unknown(
                &s.stage,
                format!(
                    "unknown: stage `{}` {} ({}) with no failed gate or analysis saying why; see its log {log} in the state directory (`.sluice/` by default)",
                    s.stage,
                    s.state.as_deref().unwrap_or("failed"),
                    s.reason.as_deref().unwrap_or("no reason given"),
                ),
                Some(log),
            ));
        }
    }
    if out.is_empty() {
        out.push(Hint::unknown(
            "unknown",
            "unknown: no upstream stage reported a failure".into(),
            None,
        ));
    }
    // Stable: equally specific hints keep the stages' order.
    out.sort_by_key(|h| std::cmp::Reverse(h.specificity()));
    out
}

/// What [`severity`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Largest share (0–1) of the traffic the failed release had, if known.
    pub share: Option<f64>,
    /// How long users saw it (seconds), if known.
    pub window_s: Option<f64>,
    /// How far beyond its threshold the most specific measured failure
    /// was (observed ÷ threshold), if known.
    pub magnitude: Option<f64>,
    /// Whether it is over: `resolved`, `mitigated` or `no-action`.
    pub resolved: bool,
}

/// The severity by the first rule of docs/delivery.md's table that
/// applies.
pub fn severity(f: &Facts) -> Severity {
    let pct = |s: f64| format!("{}%", num(Some((s * 1000.0).round() / 10.0)));
    let share = f.share.map(pct).unwrap_or_else(|| "unknown".into());
    let mag = match f.magnitude {
        Some(m) if m.is_infinite() => "against a baseline of 0".to_string(),
        Some(m) => format!("{}× its threshold", num(Some((m * 100.0).round() / 100.0))),
        None => "of unknown magnitude".into(),
    };
    let wide = f.share.is_some_and(|s| s >= WIDE_SHARE);
    let severe = f.magnitude.is_some_and(|m| m >= SEVERE_MAGNITUDE);
    let long = f.window_s.is_some_and(|w| w >= LONG_EXPOSURE_S);
    let partial = f.share.is_some_and(|s| s >= PARTIAL_SHARE);
    let window = f
        .window_s
        .map(|w| format!("{w:.1} s"))
        .unwrap_or_else(|| "an unknown time".into());
    let (level, rule, reason) = if f.resolved && f.share == Some(0.0) {
        (
            "none",
            "no-exposure",
            "no traffic reached a failed release in this run".to_string(),
        )
    } else if !f.resolved && (wide || f.share.is_none()) {
        (
            "SEV1",
            "unresolved-wide",
            format!("not resolved, and the failed release had {share} of the traffic"),
        )
    } else if wide && severe {
        (
            "SEV1",
            "wide-severe",
            format!("{share} of the traffic saw a failure {mag} for {window}"),
        )
    } else if !f.resolved {
        (
            "SEV2",
            "unresolved",
            format!("not resolved; the failed release had {share} of the traffic"),
        )
    } else if wide {
        (
            "SEV2",
            "wide",
            format!("{share} of the traffic saw a failure {mag} for {window}"),
        )
    } else if partial && long {
        (
            "SEV2",
            "partial-long",
            format!("{share} of the traffic saw the failed release for {window}"),
        )
    } else if partial {
        (
            "SEV3",
            "partial",
            format!("{share} of the traffic saw a failure {mag} for {window}; resolved"),
        )
    } else {
        (
            "SEV4",
            "narrow",
            format!("at most {share} of the traffic saw the failed release; resolved"),
        )
    };
    Severity {
        level,
        rule,
        reason: format!("{rule}: {reason}"),
    }
}

/// What [`action_items`] reads.
pub struct Outcome<'a> {
    /// The hints, most specific first.
    pub hints: &'a [Hint],
    /// Every upstream stage.
    pub stages: &'a [StageResult],
    /// `resolved`, `mitigated`, `unresolved` or `no-action`.
    pub status: &'a str,
    /// Largest share of the traffic the failed release had.
    pub share: Option<f64>,
    /// The environment.
    pub environment: &'a str,
    /// Why it is unresolved: the verification's message or the action's
    /// error.
    pub unresolved_because: Option<String>,
}

/// Follow-ups that follow from the evidence, each with owner
/// [`UNASSIGNED`].
pub fn action_items(o: &Outcome) -> Vec<ActionItem> {
    let mut items = Vec::new();
    let passed = |name: &str| {
        o.stages
            .iter()
            .any(|s| s.stage == name && s.state.as_deref() == Some("passed"))
    };
    // A canary metric failed although smoke passed: the probe set misses
    // what the canary measured.
    if let Some(h) = o
        .hints
        .iter()
        .find(|h| h.step.is_some() && h.metric.is_some())
    {
        let metric = h.metric.as_deref().unwrap_or_default();
        let smoke = o
            .stages
            .iter()
            .find(|s| s.stage.contains("smoke") && passed(&s.stage));
        if let Some(smoke) = smoke {
            let on = h
                .path
                .as_deref()
                .map(|p| format!("on `{p}` (the path the canary's `{metric}` metric measured)"))
                .unwrap_or_else(|| format!("on the path the canary's `{metric}` metric measured"));
            items.push(item(
                Kind::Prevent,
                format!(
                    "add a `{}` probe {on}, so the release fails before it gets traffic",
                    smoke.stage
                ),
                format!(
                    "stage `{}` passed but stage `{}` failed on `{metric}` at step {}{}",
                    smoke.stage,
                    h.stage,
                    h.step.unwrap_or_default(),
                    h.weight
                        .map(|w| format!(" ({w}% of the traffic)"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    // The failure was found only once many users had the release.
    let detected_at = o
        .hints
        .iter()
        .find(|h| !h.is_unknown())
        .and_then(|h| h.weight.map(|w| (h, w / 100.0)).or(o.share.map(|s| (h, s))));
    if let Some((h, share)) = detected_at.filter(|(_, s)| *s > PARTIAL_SHARE) {
        let pct = num(Some((share * 1000.0).round() / 10.0));
        items.push(item(
            Kind::Detect,
            format!(
                "add an analysis{} at a lower weight (at most {}%), before the release reaches {pct}% of the traffic",
                h.metric
                    .as_deref()
                    .map(|m| format!(" of `{m}`"))
                    .unwrap_or_default(),
                num(Some(PARTIAL_SHARE * 100.0))
            ),
            format!(
                "exposure reached {pct}% of the traffic before stage `{}` detected the failure",
                h.stage
            ),
        ));
    }
    for h in o.hints.iter().filter(|h| h.is_unknown() && h.log.is_some()) {
        items.push(item(
            Kind::Detect,
            format!(
                "make stage `{}` report why it fails (a gate or a reason); meanwhile read {} in the state directory",
                h.stage,
                h.log.as_deref().unwrap_or_default()
            ),
            format!("stage `{}` failed and the evidence names no cause", h.stage),
        ));
    }
    match o.status {
        "mitigated" => items.push(item(
            Kind::Detect,
            "enable verification (`with.verify.enabled: true`) so that a remediation is confirmed on the slot and through the router".into(),
            "verification was disabled: the remediation is done but not verified".into(),
        )),
        "unresolved" => items.push(item(
            Kind::Mitigate,
            format!(
                "manual action needed on {}: put it back on a good release and verify as users are routed",
                o.environment
            ),
            format!(
                "remediation unresolved: {}",
                o.unresolved_because.as_deref().unwrap_or("see the verification")
            ),
        )),
        _ => {}
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{AnalysisDetails, JudgeDetails, JudgeMetric, NamedValue};

    fn h(at: &str, stage: &str, action: &str, slot: &str, detail: &str) -> HistoryEntry {
        HistoryEntry {
            at: at.into(),
            stage: Some(stage.into()),
            action: action.into(),
            version: (action == "deploy").then(|| "2.0.0".to_string()),
            slot: Some(slot.to_string()).filter(|s| !s.is_empty()),
            detail: Some(detail.to_string()).filter(|d| !d.is_empty()),
            run_id: Some("r".into()),
            ..HistoryEntry::default()
        }
    }

    fn canary_history() -> Vec<HistoryEntry> {
        vec![
            h("2026-11-22T05:00:00.000Z", "deploy", "deploy", "green", ""),
            h(
                "2026-11-22T05:00:00.100Z",
                "deploy",
                "weights",
                "",
                "blue=100 green=0",
            ),
            h(
                "2026-11-22T05:00:01.000Z",
                "canary",
                "weights",
                "",
                "blue=80 green=20",
            ),
            h(
                "2026-11-22T05:00:04.000Z",
                "canary",
                "weights",
                "",
                "blue=100 green=0",
            ),
            h("2026-11-22T05:00:04.010Z", "canary", "abort", "green", ""),
        ]
    }

    fn all(_: usize, _: &HistoryEntry) -> bool {
        true
    }

    #[test]
    fn exposure_share_is_the_largest_share_of_weights_and_flags() {
        let bad = SlotVersion::new("green", "2.0.0");
        assert_eq!(exposure(&canary_history(), &bad, all), Some(0.2));
        assert_eq!(
            weight_at_failure(&canary_history(), &bad, "canary", all),
            Some(20.0)
        );
        // A stale flag whose `off` side is the bad slot: 95% of the users.
        let mut flagged = canary_history();
        flagged.insert(
            1,
            h(
                "2026-11-22T05:00:00.050Z",
                "old",
                "flag",
                "",
                "release-1 5% on=blue off=green",
            ),
        );
        assert_eq!(exposure(&flagged, &bad, all), Some(0.95));
        // Entries of other runs do not count.
        assert_eq!(exposure(&canary_history(), &bad, |_, _| false), None);
    }

    fn failed_canary() -> (StageResult, Canary) {
        let s = StageResult {
            stage: "canary".into(),
            state: Some("failed".into()),
            gates: Some(vec![GateResult {
                name: "canary.analysis".into(),
                verdict: "fail".into(),
                observed: Some(0.0),
                threshold: Some(50.0),
                condition: None,
                source: None,
                message: "judge score 0".into(),
            }]),
            ..StageResult::default()
        };
        let c = Canary {
            stage: "canary".into(),
            decision: "aborted".into(),
            weight: Some(0.0),
            analyses: vec![Analysis {
                step: 1,
                phase: "Failed".into(),
                score: Some(0.0),
                observed: Some(0.0),
                threshold: Some(50.0),
                why: "judge score 0 (fail)".into(),
                lines: vec![
                    "judge: 60 baseline and 60 canary requests (0 and 20 failed)".into(),
                    "`errors` (critical) failed: canary 0.3333 vs baseline 0 (effect from 0), p = 0.0000012 < alpha 0.05".into(),
                    "`latency` passed: canary 3.1 vs baseline 3 (effect 1.03x, max 3x), p = 0.4 >= alpha 0.05".into(),
                ],
                metrics: vec![NamedValue {
                    name: "canary.errors.p_value".into(),
                    value: Some(0.0000012),
                }],
                details: Some(AnalysisDetails {
                    decided_by: None,
                    judge: Some(JudgeDetails {
                        path: Some("/quote".into()),
                        metrics: vec![
                            JudgeMetric {
                                name: "errors".into(),
                                classification: "high".into(),
                                baseline: Some(0.0),
                                canary: Some(0.3333),
                                p_value: Some(0.0000012),
                            },
                            JudgeMetric {
                                name: "latency".into(),
                                classification: "pass".into(),
                                baseline: Some(3.0),
                                canary: Some(3.1),
                                p_value: Some(0.4),
                            },
                        ],
                    }),
                }),
            }],
        };
        (s, c)
    }

    #[test]
    fn hints_rank_the_canary_metric_first_and_name_step_and_weight() {
        let (canary, c) = failed_canary();
        let monitor = StageResult {
            stage: "smoke".into(),
            state: Some("failed".into()),
            gates: Some(vec![GateResult {
                name: "probe catalog".into(),
                verdict: "fail".into(),
                observed: None,
                threshold: None,
                condition: None,
                source: None,
                message: "GET /products: status 500".into(),
            }]),
            ..StageResult::default()
        };
        let bad = SlotVersion::new("green", "2.0.0");
        let history = canary_history();
        let failed = vec![monitor, canary];
        let e = Evidence {
            run_id: "r",
            failed: &failed,
            canaries: &[c],
            monitors: &[],
            history: &history,
            bad: Some(&bad),
        };
        let hs = hints(&e, &all);
        assert_eq!(hs.len(), 2, "{hs:#?}");
        let top = &hs[0];
        assert_eq!(top.metric.as_deref(), Some("errors"));
        assert_eq!((top.step, top.weight), (Some(1), Some(20.0)));
        assert_eq!((top.observed, top.threshold), (Some(0.3333), Some(0.0)));
        assert_eq!(top.p_value, Some(0.0000012));
        assert!(top.magnitude.is_some_and(f64::is_infinite));
        assert!(
            top.detail.contains("step 1 (20% of the traffic)"),
            "{}",
            top.detail
        );
        // Less specific: a probe without numbers.
        assert_eq!(hs[1].metric.as_deref(), Some("probe catalog"));
    }

    #[test]
    fn a_stage_that_says_nothing_gives_an_unknown_cause_and_its_log() {
        let crashed = vec![StageResult {
            stage: "canary".into(),
            state: Some("failed".into()),
            reason: Some("plugin trapped".into()),
            gates: Some(vec![]),
            ..StageResult::default()
        }];
        let e = Evidence {
            run_id: "r9",
            failed: &crashed,
            canaries: &[],
            monitors: &[],
            history: &[],
            bad: None,
        };
        let hs = hints(&e, &all);
        assert_eq!(hs.len(), 1);
        assert!(hs[0].is_unknown());
        assert_eq!(hs[0].log.as_deref(), Some("runs/r9/logs/canary.log"));
        assert!(hs[0]
            .detail
            .starts_with("unknown: stage `canary` failed (plugin trapped)"));
        let items = action_items(&Outcome {
            hints: &hs,
            stages: &crashed,
            status: "resolved",
            share: None,
            environment: "production",
            unresolved_because: None,
        });
        assert_eq!(items.len(), 1, "{items:#?}");
        assert_eq!(items[0].kind, Kind::Detect);
        assert!(items[0].title.contains("runs/r9/logs/canary.log"));
    }

    #[test]
    fn monitor_hints_give_the_slo_the_burn_rate_and_the_first_breach() {
        let gate = |name: &str, verdict: &str, o: f64, t: f64| GateResult {
            name: name.into(),
            verdict: verdict.into(),
            observed: Some(o),
            threshold: Some(t),
            condition: None,
            source: None,
            message: String::new(),
        };
        let s = StageResult {
            stage: "monitor".into(),
            state: Some("failed".into()),
            started_at: Some("2026-11-22T05:00:00.000Z".into()),
            gates: Some(vec![
                gate("failure-limit", "fail", 3.0, 2.0),
                gate("error-rate", "fail", 33.0, 1.0),
                gate("availability", "fail", 67.0, 99.0),
                gate("burn-rate", "pass", 5.0, 14.4),
            ]),
            ..StageResult::default()
        };
        let m = Monitor {
            stage: "monitor".into(),
            samples: vec![
                crate::evidence::MonitorSample {
                    t: 1.0,
                    breaches: vec![],
                },
                crate::evidence::MonitorSample {
                    t: 2.5,
                    breaches: vec!["error-rate".into()],
                },
            ],
        };
        let failed = vec![s];
        let e = Evidence {
            run_id: "r",
            failed: &failed,
            canaries: &[],
            monitors: &[m],
            history: &[],
            bad: None,
        };
        let hs = hints(&e, &all);
        let names: Vec<_> = hs.iter().filter_map(|h| h.metric.as_deref()).collect();
        assert_eq!(names, ["error-rate", "availability"]);
        assert_eq!(
            hs[0].first_failing_at.as_deref(),
            Some("2026-11-22T05:00:02.500Z")
        );
        assert!(
            hs[0].detail.contains("burn rate 5 (threshold 14.4)"),
            "{}",
            hs[0].detail
        );
        assert_eq!(hs[0].magnitude, Some(33.0));
        // Availability 67% vs 99%: 33% unavailable against 1% allowed.
        assert!(hs[1].magnitude.is_some_and(|m| (m - 33.0).abs() < 1e-9));
    }

    #[test]
    fn severity_rules_apply_in_order() {
        let f = |share: Option<f64>, window: Option<f64>, mag: Option<f64>, resolved: bool| {
            severity(&Facts {
                share,
                window_s: window,
                magnitude: mag,
                resolved,
            })
        };
        let rule = |s: Severity| (s.level, s.rule);
        assert_eq!(
            rule(f(None, None, None, false)),
            ("SEV1", "unresolved-wide")
        );
        assert_eq!(
            rule(f(Some(0.6), None, None, false)),
            ("SEV1", "unresolved-wide")
        );
        assert_eq!(
            rule(f(Some(1.0), Some(5.0), Some(2.5), true)),
            ("SEV1", "wide-severe")
        );
        assert_eq!(
            rule(f(Some(0.2), Some(5.0), Some(9.0), false)),
            ("SEV2", "unresolved")
        );
        assert_eq!(
            rule(f(Some(1.0), Some(5.0), Some(1.2), true)),
            ("SEV2", "wide")
        );
        assert_eq!(rule(f(Some(1.0), Some(5.0), None, true)), ("SEV2", "wide"));
        assert_eq!(
            rule(f(Some(0.2), Some(LONG_EXPOSURE_S), Some(1.1), true)),
            ("SEV2", "partial-long")
        );
        assert_eq!(
            rule(f(Some(0.2), Some(6.0), Some(f64::INFINITY), true)),
            ("SEV3", "partial")
        );
        assert_eq!(
            rule(f(Some(0.05), Some(6.0), None, true)),
            ("SEV3", "partial")
        );
        assert_eq!(
            rule(f(Some(0.01), Some(6.0), Some(50.0), true)),
            ("SEV4", "narrow")
        );
        assert_eq!(rule(f(None, None, None, true)), ("SEV4", "narrow"));
        // A run that changed nothing exposed nobody.
        assert_eq!(
            rule(f(Some(0.0), None, None, true)),
            ("none", "no-exposure")
        );
        let s = f(Some(0.2), Some(6.0), Some(f64::INFINITY), true);
        assert_eq!(
            s.reason,
            "partial: 20% of the traffic saw a failure against a baseline of 0 for 6.0 s; resolved"
        );
    }

    #[test]
    fn action_items_follow_from_the_evidence_only() {
        let (canary, c) = failed_canary();
        let smoke = StageResult {
            stage: "smoke".into(),
            state: Some("passed".into()),
            ..StageResult::default()
        };
        let bad = SlotVersion::new("green", "2.0.0");
        let history = canary_history();
        let failed = vec![canary.clone()];
        let stages = vec![smoke, canary];
        let e = Evidence {
            run_id: "r",
            failed: &failed,
            canaries: &[c],
            monitors: &[],
            history: &history,
            bad: Some(&bad),
        };
        let hs = hints(&e, &all);
        let o = |status: &'static str, share: Option<f64>| Outcome {
            hints: &hs,
            stages: &stages,
            status,
            share,
            environment: "production",
            unresolved_because: Some("5 of 100 users did not get 1.0.0".into()),
        };
        let items = action_items(&o("resolved", Some(0.2)));
        let kinds: Vec<Kind> = items.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [Kind::Prevent, Kind::Detect], "{items:#?}");
        assert!(
            items[0].title.contains("`smoke` probe on `/quote`"),
            "{}",
            items[0].title
        );
        assert!(items[0]
            .because
            .contains("failed on `errors` at step 1 (20% of the traffic)"));
        assert!(items[1]
            .because
            .starts_with("exposure reached 20% of the traffic"));
        assert!(items.iter().all(|i| i.owner == UNASSIGNED));
        let items = action_items(&o("mitigated", Some(0.2)));
        assert!(items
            .iter()
            .any(|i| i.because.starts_with("verification was disabled")));
        let items = action_items(&o("unresolved", Some(0.2)));
        let last = items.last().expect("an item");
        assert_eq!(last.kind, Kind::Mitigate);
        assert!(last.because.contains("5 of 100 users"), "{last:?}");
        // Nothing about smoke or lower weights without that evidence.
        let none = action_items(&Outcome {
            hints: &[],
            stages: &[],
            status: "resolved",
            share: Some(0.01),
            environment: "production",
            unresolved_because: None,
        });
        assert!(none.is_empty(), "{none:#?}");
    }
}
