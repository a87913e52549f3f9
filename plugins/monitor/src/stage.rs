//! One run of the stage: watch through the SDK's HTTP client and the
//! guest's clocks, write `monitor.json`, and build the report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sluice_sdk::http::{HttpError, Method, Request};
use sluice_sdk::{Context, Report, StageError, Verdict};

use crate::config::{Settings, Severity};
use crate::slo::{self, Measured};
use crate::watch::{self, Env, FetchError, Outcome};

/// Responses larger than this fail the request.
const MAX_BODY: usize = 32 * 1024 * 1024;

struct SdkEnv;

impl Env for SdkEnv {
    fn get(&mut self, url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), FetchError> {
        let resp = Request::new(Method::Get, url)
            .header(
                "accept",
                "application/json, text/plain;version=0.0.4;q=0.9, */*;q=0.1",
            )
            .timeout(timeout)
            .max_response_bytes(MAX_BODY)
            .send();
        match resp {
            Ok(r) => Ok((r.status, r.body)),
            Err(HttpError::Denied(m)) => Err(FetchError::Denied(m)),
            Err(e) => Err(FetchError::Failed(format!("GET {url}: {e}"))),
        }
    }

    fn now(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default()
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

#[derive(Serialize)]
struct Document<'a> {
    source: &'a str,
    window_s: f64,
    interval_s: f64,
    watched_s: f64,
    failure_limit: u32,
    exposure: &'a Exposure,
    #[serde(flatten)]
    outcome: &'a Outcome,
    gates: Vec<GateDoc>,
}

#[derive(Serialize)]
struct GateDoc {
    name: String,
    verdict: &'static str,
    observed: Option<f64>,
    threshold: Option<f64>,
    message: String,
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// How long and to what share of the traffic the release was exposed
/// while watched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// Seconds from the release's first traffic in this run (or, when the
    /// target's history does not show it, the watch's start) to the decision.
    pub seconds: f64,
    /// Share (0–1) of the traffic on the release.
    pub share: f64,
    /// Where the share and the start come from.
    pub basis: String,
    /// When the release first got traffic in this run, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_at: Option<String>,
}

/// What the target says about the watched release's traffic.
struct Traffic {
    share: f64,
    basis: String,
    /// The history entry that first routed traffic to it in this run:
    /// (Unix seconds, its time, what it was).
    first: Option<(f64, String, String)>,
    /// Whether a history was read (there is a target).
    looked: bool,
}

/// The release's share of the traffic (its routes' weights in the
/// target's `weights.json`; the release is `with.version`, else the
/// state's candidate, else its stable release; 1.0 without a target) and
/// when this run first routed traffic to it (`history.jsonl`).
fn traffic(ctx: &Context, s: &Settings) -> Traffic {
    let all = |basis: String| Traffic {
        share: 1.0,
        basis,
        first: None,
        looked: false,
    };
    let Some(cfg) = &s.target else {
        return all("no target configured: all traffic assumed".into());
    };
    let read = || -> Result<Traffic, StageError> {
        let t = sluice_delivery::Target::from_context(ctx, cfg)?;
        let st = t.read_state()?;
        let version = match &s.version {
            Some(v) => v.clone(),
            None => match st.candidate.clone().or(st.stable.clone()) {
                Some(sv) => sv.version,
                None => {
                    return Ok(all(
                        "state.json names no release: all traffic assumed".into()
                    ))
                }
            },
        };
        let (share, basis) = share_of(&t.read_weights()?, &version);
        let slots: std::collections::BTreeSet<String> = [&st.candidate, &st.stable]
            .into_iter()
            .flatten()
            .chain(&st.instances)
            .filter(|sv| sv.version == version)
            .map(|sv| sv.slot.clone())
            .collect();
        let history = t.read_history()?;
        let first = crate::exposure::first_traffic(&history, &version, &slots, ctx.run_id())
            .and_then(|h| {
                let at = crate::exposure::unix_seconds(&h.at)?;
                let mut what = h.action.clone();
                if let Some(d) = h.detail.as_ref().or(h.version.as_ref()) {
                    what.push_str(&format!(" {d}"));
                }
                Some((at, h.at.clone(), what))
            });
        Ok(Traffic {
            share,
            basis,
            first,
            looked: true,
        })
    };
    read().unwrap_or_else(|e| {
        sluice_sdk::warn!("exposure: could not read the traffic split ({e}); all traffic assumed");
        all(format!(
            "traffic split unreadable ({e}): all traffic assumed"
        ))
    })
}

/// The exposure: from the first traffic (when known and not after the
/// decision) to the decision at `decided` (Unix seconds), else the watch.
fn exposure(t: Traffic, decided: f64, watched_s: f64) -> Exposure {
    match t.first {
        Some((at, text, what)) if at <= decided => Exposure {
            seconds: decided - at,
            share: t.share,
            basis: format!(
                "{}; from its first traffic in this run ({what} at {text}) to the decision",
                t.basis
            ),
            exposed_at: Some(text),
        },
        _ => Exposure {
            seconds: watched_s,
            share: t.share,
            basis: format!(
                "{}; from the watch's start to the decision{}",
                t.basis,
                if t.looked {
                    " (no history entry of this run routed traffic to the release)"
                } else {
                    ""
                }
            ),
            exposed_at: None,
        },
    }
}

/// `version`'s share of `w` and how it was found.
pub fn share_of(w: &sluice_delivery::Weights, version: &str) -> (f64, String) {
    let total: u64 = w.routes.iter().map(|r| u64::from(r.weight)).sum();
    if total == 0 {
        return (
            1.0,
            "weights.json has no traffic: all traffic assumed".into(),
        );
    }
    let mine: u64 = w
        .routes
        .iter()
        .filter(|r| r.version == version)
        .map(|r| u64::from(r.weight))
        .sum();
    (
        mine as f64 / total as f64,
        format!("weights.json: {version} has weight {mine} of {total}"),
    )
}

/// The `failure-limit` gate: fails once more than `failure-limit` samples
/// breached. Placed first so the stage's reason names the breach.
fn failure_limit_gate(o: &Outcome, s: &Settings) -> sluice_sdk::Gate {
    let limit = s.failure_limit;
    let g = match &o.failed_at {
        Some(f) => {
            let when = if o.stopped_early {
                format!(
                    "stopped the watch at t+{:.1}s of {}",
                    f.t,
                    humantime::format_duration(s.window())
                )
            } else {
                format!("reached at t+{:.1}s", f.t)
            };
            sluice_sdk::Gate::fail(
                "failure-limit",
                format!(
                    "{} ({} breaching sample(s), more than failure-limit {limit}) {when}",
                    f.breaches.join(", "),
                    o.breaching_samples
                ),
            )
        }
        None => sluice_sdk::Gate::pass(
            "failure-limit",
            format!(
                "{} of {} sample(s) breached an SLO (failure-limit {limit} tolerated)",
                o.breaching_samples,
                o.samples.len()
            ),
        ),
    };
    g.observed(f64::from(o.breaching_samples))
        .threshold(f64::from(limit))
}

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let s = Settings::from_context(ctx)?;
    let window_text = humantime::format_duration(s.window()).to_string();
    let source = match &s.source {
        crate::config::Source::Prometheus { address, .. } => format!("Prometheus at {address}"),
        crate::config::Source::Scrape(sc) => format!("scrape of {}", sc.url),
    };
    sluice_sdk::info!(
        "watching {source} for {window_text} ({} sample(s) every {})",
        s.samples,
        humantime::format_duration(s.interval)
    );
    let outcome = watch::run(&mut SdkEnv, &s)?;
    for n in &outcome.notes {
        sluice_sdk::warn!("{n}");
    }
    let watched = format!("{:.0}s", outcome.watched_s);
    let mut gates = slo::gates(&outcome.measured, &s.slo, &watched, s.period);
    if s.slo.error_rate.is_some() || s.slo.p95_ms.is_some() || s.slo.availability.is_some() {
        gates.insert(0, failure_limit_gate(&outcome, &s));
    }
    let decided = SdkEnv.now();
    let exposure = exposure(traffic(ctx, &s), decided, outcome.watched_s);
    for g in &gates {
        sluice_sdk::info!("gate {} {}: {}", g.name, verdict(g.verdict), g.message);
    }
    let doc = Document {
        source: &source,
        window_s: s.window().as_secs_f64(),
        interval_s: s.interval.as_secs_f64(),
        watched_s: outcome.watched_s,
        failure_limit: s.failure_limit,
        exposure: &exposure,
        outcome: &outcome,
        gates: gates
            .iter()
            .map(|g| GateDoc {
                name: g.name.clone(),
                verdict: verdict(g.verdict),
                observed: g.observed,
                threshold: g.threshold,
                message: g.message.clone(),
            })
            .collect(),
    };
    let json = serde_json::to_string_pretty(&doc)
        .map_err(|e| StageError::failed(format!("writing monitor.json: {e}")))?;
    ctx.write_artifact("monitor.json", json, "application/json")?;

    let m = &outcome.measured;
    let mut report = Report::new(summary(m, &gates, &watched, &outcome, &exposure, &s));
    let mut add = |name: &str, v: Option<f64>, unit: Option<&str>| {
        if let Some(v) = v {
            let r = std::mem::take(&mut report);
            report = match unit {
                Some(u) => r.metric_with_unit(name, v, u),
                None => r.metric(name, v),
            };
        }
    };
    add("monitor.error_rate", m.error_rate_pct.value, Some("%"));
    add("monitor.p95_ms", m.p95_ms.value, Some("ms"));
    add("monitor.availability", m.availability_pct.value, Some("%"));
    // The first alert's windows (the only one with `burn-rate`).
    let first = m.alerts.first();
    add(
        "monitor.burn_rate_long",
        first.and_then(|a| a.burn_long.value),
        None,
    );
    add(
        "monitor.burn_rate_short",
        first.and_then(|a| a.burn_short.value),
        None,
    );
    for sev in [Severity::Page, Severity::Ticket] {
        let of = || m.alerts.iter().filter(|a| a.severity == sev);
        if of().next().is_none() {
            continue;
        }
        let highest = of().filter_map(|a| a.burn()).reduce(f64::max);
        let fired = of().filter(|a| a.fired == Some(true)).count();
        add(
            &format!("monitor.burn_rate_{}", sev.as_str()),
            highest,
            None,
        );
        add(
            &format!("monitor.alerts_fired_{}", sev.as_str()),
            Some(fired as f64),
            None,
        );
    }
    if let Some(b) = &m.budget {
        add("monitor.error_budget_remaining", b.remaining_pct, Some("%"));
        add("monitor.error_budget_consumed", b.consumed_pct, Some("%"));
    }
    add("monitor.requests", outcome.requests, None);
    add("monitor.samples", Some(outcome.samples.len() as f64), None);
    add(
        "monitor.breaching_samples",
        Some(f64::from(outcome.breaching_samples)),
        None,
    );
    add(
        "monitor.exposure_seconds",
        Some(exposure.seconds),
        Some("s"),
    );
    add("monitor.exposure_share", Some(exposure.share), None);
    for g in gates {
        report = report.gate(g);
    }
    Ok(report)
}

fn summary(
    m: &Measured,
    gates: &[sluice_sdk::Gate],
    watched: &str,
    o: &Outcome,
    exposure: &Exposure,
    s: &Settings,
) -> String {
    let f = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
    let failed: Vec<&str> = gates
        .iter()
        .filter(|g| g.verdict != Verdict::Pass)
        .map(|g| g.name.as_str())
        .collect();
    let verdict = if failed.is_empty() {
        String::new()
    } else {
        format!(" — not met: {}", failed.join(", "))
    };
    let stopped = if o.stopped_early {
        format!(
            " — stopped early: failure-limit {} exceeded at t+{:.1}s of {}",
            s.failure_limit,
            o.failed_at.as_ref().map_or(o.watched_s, |f| f.t),
            humantime::format_duration(s.window())
        )
    } else {
        String::new()
    };
    let fired: Vec<String> = m
        .alerts
        .iter()
        .filter(|a| a.fired == Some(true))
        .map(|a| format!("{} {}", a.severity.as_str(), a.name))
        .collect();
    let alerts = if fired.is_empty() {
        String::new()
    } else {
        format!("; alerts fired: {}", fired.join(", "))
    };
    let budget = match &m.budget {
        Some(crate::slo::Budget {
            remaining_pct: Some(r),
            over,
            ..
        }) => format!("; error budget {r:.1}% left over {over}"),
        _ => String::new(),
    };
    format!(
        "over {watched}: error rate {}, p95 {}, availability {}{verdict}{stopped}{alerts}{budget}; \
         exposure {:.1}s at {:.0}% of traffic",
        f(m.error_rate_pct.value, "%"),
        f(m.p95_ms.value, " ms"),
        f(m.availability_pct.value, "%"),
        exposure.seconds,
        100.0 * exposure.share
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_counts_from_the_first_traffic_of_this_run() {
        let first = Traffic {
            share: 0.25,
            basis: "weights.json: 2.0.0 has weight 25 of 100".into(),
            first: Some((1000.0, "t0".into(), "weights blue=75 green=25".into())),
            looked: true,
        };
        let e = exposure(first, 1012.5, 2.0);
        assert_eq!(e.seconds, 12.5);
        assert_eq!(e.exposed_at.as_deref(), Some("t0"));
        assert!(
            e.basis
                .ends_with("from its first traffic in this run (weights blue=75 green=25 at t0) to the decision"),
            "{}",
            e.basis
        );
        // No traffic found in this run's history: the watch.
        let none = Traffic {
            share: 1.0,
            basis: "b".into(),
            first: None,
            looked: true,
        };
        let e = exposure(none, 1012.5, 2.0);
        assert_eq!((e.seconds, e.exposed_at), (2.0, None));
        assert!(
            e.basis.contains("no history entry of this run"),
            "{}",
            e.basis
        );
        // A clock step that puts the first traffic after the decision.
        let later = Traffic {
            share: 1.0,
            basis: "b".into(),
            first: Some((2000.0, "t1".into(), "x".into())),
            looked: true,
        };
        assert_eq!(exposure(later, 1012.5, 2.0).seconds, 2.0);
    }
}
