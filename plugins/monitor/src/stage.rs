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
    let gates = slo::gates(&outcome.measured, &s.slo, s.burn.as_ref(), &watched);
    for g in &gates {
        sluice_sdk::info!("gate {} {}: {}", g.name, verdict(g.verdict), g.message);
    }
    let doc = Document {
        source: &source,
        window_s: s.window().as_secs_f64(),
        interval_s: s.interval.as_secs_f64(),
        watched_s: outcome.watched_s,
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
    let mut report = Report::new(summary(m, &gates, &watched));
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
    for g in gates {
        report = report.gate(g);
    }
    Ok(report)
}

fn summary(m: &Measured, gates: &[sluice_sdk::Gate], watched: &str) -> String {
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
    format!(
        "over {watched}: error rate {}, p95 {}, availability {}{verdict}",
        f(m.error_rate_pct.value, "%"),
        f(m.p95_ms.value, " ms"),
        f(m.availability_pct.value, "%")
    )
}
