//! One run of the stage: watch through the SDK's HTTP client and the
//! guest's clocks, write `monitor.json`, and build the report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sluice_sdk::http::{HttpError, Method, Request};
use sluice_sdk::{Context, Report, StageError, Verdict};

use crate::config::Settings;
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
    /// Seconds from the watch's start to the decision.
    pub seconds: f64,
    /// Share (0–1) of the traffic on the release.
    pub share: f64,
    /// Where the share comes from.
    pub basis: String,
}

/// The release's share of the traffic: its routes' weights in the
/// target's `weights.json` (the release is `with.version`, else the
/// state's candidate, else its stable release); 1.0 without a target.
fn traffic_share(ctx: &Context, s: &Settings) -> (f64, String) {
    let Some(cfg) = &s.target else {
        return (1.0, "no target configured: all traffic assumed".into());
    };
    let read = || -> Result<(f64, String), StageError> {
        let t = sluice_delivery::Target::from_context(ctx, cfg)?;
        let version = match &s.version {
            Some(v) => v.clone(),
            None => {
                let st = t.read_state()?;
                match st.candidate.or(st.stable) {
                    Some(sv) => sv.version,
                    None => {
                        return Ok((
                            1.0,
                            "state.json names no release: all traffic assumed".into(),
                        ))
                    }
                }
            }
        };
        let w = t.read_weights()?;
        Ok(share_of(&w, &version))
    };
    read().unwrap_or_else(|e| {
        sluice_sdk::warn!("exposure: could not read the traffic split ({e}); all traffic assumed");
        (
            1.0,
            format!("traffic split unreadable ({e}): all traffic assumed"),
        )
    })
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
    let mut gates = slo::gates(&outcome.measured, &s.slo, s.burn.as_ref(), &watched);
    if s.slo.error_rate.is_some() || s.slo.p95_ms.is_some() || s.slo.availability.is_some() {
        gates.insert(0, failure_limit_gate(&outcome, &s));
    }
    let (share, basis) = traffic_share(ctx, &s);
    let exposure = Exposure {
        seconds: outcome.watched_s,
        share,
        basis,
    };
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
    add(
        "monitor.burn_rate_long",
        m.burn_long.as_ref().and_then(|b| b.value),
        None,
    );
    add(
        "monitor.burn_rate_short",
        m.burn_short.as_ref().and_then(|b| b.value),
        None,
    );
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
    format!(
        "over {watched}: error rate {}, p95 {}, availability {}{verdict}{stopped}; \
         exposure {:.1}s at {:.0}% of traffic",
        f(m.error_rate_pct.value, "%"),
        f(m.p95_ms.value, " ms"),
        f(m.availability_pct.value, "%"),
        exposure.seconds,
        100.0 * exposure.share
    )
}
