//! The watch itself: sample the source every interval for the window, then
//! compute the window's values. HTTP and the clock are behind [`Env`], so
//! the loops run in unit tests with scripted answers.

use std::time::Duration;

use serde::Serialize;
use sluice_sdk::{Capability, StageError};

use crate::config::{Alert, Scrape, Settings, Source, WINDOW_PLACEHOLDER};
use crate::promapi::{self, QueryResult};
use crate::scrape::{self, Delta, Snapshot};
use crate::slo::{
    burn_rate, counted_ratio, scale_windows, AlertMeasure, Budget, Measure, Measured,
};
use crate::values::promql_duration;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// This `host:port` is not in `grants.network`.
    Denied(String),
    /// Connection refused, timeout…
    Failed(String),
}

/// HTTP and time, as the watch needs them.
pub trait Env {
    /// `GET url`: status and body.
    fn get(&mut self, url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), FetchError>;
    /// Seconds since the Unix epoch.
    fn now(&self) -> f64;
    /// Waits.
    fn sleep(&mut self, d: Duration);
}

/// One look at the source during the watch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the watch started.
    pub t: f64,
    /// Error rate, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate_pct: Option<f64>,
    /// p95 latency, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Availability, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_pct: Option<f64>,
    /// Requests in the interval (scrape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    /// Why the sample failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The SLOs this sample breached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breaches: Vec<String>,
}

/// What a watch found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The window's values.
    pub measured: Measured,
    /// Every look, in order.
    pub samples: Vec<Sample>,
    /// Seconds actually watched.
    pub watched_s: f64,
    /// Requests seen (scrape source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    /// Notes worth a warning (Prometheus warnings, failed scrapes…).
    pub notes: Vec<String>,
    /// Samples that breached an SLO.
    pub breaching_samples: u32,
    /// When more than `failure-limit` samples breached, the watch
    /// stopped: seconds into the watch, and what that sample breached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<FailedAt>,
    /// Whether the watch ended before its window because of it.
    pub stopped_early: bool,
}

/// The moment the verdict became certain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedAt {
    /// Seconds since the watch started.
    pub t: f64,
    /// What the sample that reached the limit breached.
    pub breaches: Vec<String>,
}

/// Counts `sample` against the SLOs; `Some` once more than `failure-limit`
/// samples breached (Argo Rollouts' `failureLimit`), i.e. once the watch's
/// failure is certain.
fn judge(sample: &mut Sample, s: &Settings, failures: &mut u32) -> Option<FailedAt> {
    sample.breaches = crate::slo::sample_breaches(
        sample.error_rate_pct,
        sample.p95_ms,
        sample.availability_pct,
        &s.slo,
    );
    if sample.breaches.is_empty() {
        return None;
    }
    *failures += 1;
    sluice_sdk::warn!(
        "t+{:.1}s: breaching sample {} (failure-limit {} tolerated): {}",
        sample.t,
        failures,
        s.failure_limit,
        sample.breaches.join(", ")
    );
    (*failures > s.failure_limit).then(|| FailedAt {
        t: sample.t,
        breaches: sample.breaches.clone(),
    })
}

/// Watches `s.source` for `s.samples` intervals.
pub fn run(env: &mut dyn Env, s: &Settings) -> Result<Outcome, StageError> {
    match &s.source {
        Source::Prometheus {
            address,
            error_rate,
            p95_latency,
            availability,
            ..
        } => prometheus(
            env,
            s,
            address,
            [
                error_rate.as_deref(),
                p95_latency.as_deref(),
                availability.as_deref(),
            ],
        ),
        Source::Scrape(sc) => scrape_watch(env, s, sc),
    }
}

/// Sleeps until `start + i * interval`.
fn wait_for(env: &mut dyn Env, start: f64, i: u32, interval: Duration) {
    let due = start + interval.as_secs_f64() * f64::from(i);
    let left = due - env.now();
    if left > 0.0 {
        env.sleep(Duration::from_secs_f64(left));
    }
}

const KEYS: [&str; 3] = ["error-rate", "p95-latency", "availability"];
/// Query unit → report unit: ratio → percent, seconds → ms, ratio → percent.
const SCALE: [f64; 3] = [100.0, 1000.0, 100.0];

fn get(env: &mut dyn Env, url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), StageError> {
    env.get(url, timeout).map_err(|e| match e {
        FetchError::Denied(host_port) => StageError::denied(Capability::Network(host_port)),
        FetchError::Failed(m) => StageError::failed(m),
    })
}

/// Runs one Prometheus API request; a rejected query is a config error
/// naming the query's key.
fn api(
    env: &mut dyn Env,
    url: &str,
    key: &str,
    timeout: Duration,
    notes: &mut Vec<String>,
) -> Result<QueryResult, StageError> {
    sluice_sdk::debug!("{key}: GET {url}");
    let (status, body) =
        get(env, url, timeout).map_err(|e| e.with_context(format!("Prometheus query {key}")))?;
    match promapi::parse(status, &body) {
        Ok((r, warnings)) => {
            for w in warnings {
                let note = format!("Prometheus warning for {key}: {w}");
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            Ok(r)
        }
        Err(e @ promapi::ApiError::Rejected { .. }) => Err(unusable(key, e)),
        Err(e) => Err(StageError::failed(format!(
            "Prometheus query {key} at {url}: {e}; check with.source.prometheus.address"
        ))),
    }
}

/// The single value of the instant query `q` at `time` (`None`: no data).
fn instant_value(
    env: &mut dyn Env,
    s: &Settings,
    address: &str,
    (key, q): (&str, &str),
    time: f64,
    notes: &mut Vec<String>,
) -> Result<Option<f64>, StageError> {
    let r = api(
        env,
        &promapi::query_url(address, q, time),
        key,
        s.timeout,
        notes,
    )?;
    promapi::single(&r).map_err(|e| unusable(key, e))
}

/// The single series of the range query `q` from `start` to `end`, a
/// point every `step` seconds.
fn range_series(
    env: &mut dyn Env,
    s: &Settings,
    address: &str,
    (key, q): (&str, &str),
    (start, end, step): (f64, f64, f64),
    notes: &mut Vec<String>,
) -> Result<promapi::Points, StageError> {
    let url = promapi::query_range_url(address, q, start, end, step);
    let r = api(env, &url, key, s.timeout, notes)?;
    promapi::single_series(&r).map_err(|e| unusable(key, e))
}

/// Prometheus refused query `key`, or its answer is not one series: the
/// query is wrong for the stage.
fn unusable(key: &str, e: impl std::fmt::Display) -> StageError {
    StageError::invalid_config(format!("with.source.prometheus.queries.{key}: {e}"))
}

fn prometheus(
    env: &mut dyn Env,
    s: &Settings,
    address: &str,
    queries: [Option<&str>; 3],
) -> Result<Outcome, StageError> {
    let window = promql_duration(s.window().max(s.interval));
    let queries: Vec<Option<String>> = queries
        .iter()
        .map(|q| q.map(|q| q.replace(WINDOW_PLACEHOLDER, &window)))
        .collect();
    let mut notes = Vec::new();
    let mut samples = Vec::new();
    let start = env.now();
    let mut last = [None, None, None];
    let (mut failures, mut failed_at) = (0u32, None);
    for i in 0..=s.samples {
        if i > 0 {
            wait_for(env, start, i, s.interval);
        }
        let t = env.now();
        for (k, q) in queries.iter().enumerate() {
            let Some(q) = q else { continue };
            last[k] =
                instant_value(env, s, address, (KEYS[k], q), t, &mut notes)?.map(|v| v * SCALE[k]);
        }
        let mut sample = Sample {
            t: t - start,
            error_rate_pct: last[0],
            p95_ms: last[1],
            availability_pct: last[2],
            requests: None,
            error: None,
            breaches: vec![],
        };
        sluice_sdk::info!("{}", sample_line(&sample));
        failed_at = judge(&mut sample, s, &mut failures);
        samples.push(sample);
        if failed_at.is_some() {
            break;
        }
    }
    let stopped_early = failed_at.is_some() && samples.len() <= s.samples as usize;
    let end = env.now();
    let mut values: Vec<Measure> = Vec::with_capacity(3);
    for (k, q) in queries.iter().enumerate() {
        let Some(q) = q else {
            values.push(Measure::missing(format!(
                "no {} query is configured",
                KEYS[k]
            )));
            continue;
        };
        if samples.len() <= 1 {
            values.push(Measure::from_option(last[k], "the query returned no data"));
            continue;
        }
        let step = s.interval.as_secs_f64().max(0.001);
        let pts = range_series(
            env,
            s,
            address,
            (KEYS[k], q),
            (start, end, step),
            &mut notes,
        )?;
        values.push(Measure::from_option(
            mean(pts.iter().map(|p| p.1)).map(|v| v * SCALE[k]),
            "the query returned no data over the window",
        ));
    }
    let [error_rate_pct, p95_ms, availability_pct]: [Measure; 3] = values
        .try_into()
        .map_err(|_| StageError::failed("internal: three measures expected"))?;
    let mut alerts = Vec::with_capacity(s.alerts.len());
    let mut budget = None;
    if let Some(target) = s.slo.target {
        for a in &s.alerts {
            let (l, sh) = prometheus_burn(env, s, address, a, target, end, &mut notes)?;
            alerts.push(AlertMeasure::new(a, None, l, sh));
        }
        budget = prometheus_budget(env, s, address, target, end, &mut notes)?;
    }
    Ok(Outcome {
        measured: Measured {
            error_rate_pct,
            p95_ms,
            availability_pct,
            alerts,
            budget,
        },
        samples,
        watched_s: end - start,
        requests: None,
        notes,
        breaching_samples: failures,
        failed_at,
        stopped_early,
    })
}

/// Burn rates from the error-rate query: with `{{window}}` in it, one
/// instant query per window; without, the mean of a range query over the
/// long window and over its last short window.
fn prometheus_burn(
    env: &mut dyn Env,
    s: &Settings,
    address: &str,
    b: &Alert,
    target: f64,
    end: f64,
    notes: &mut Vec<String>,
) -> Result<(Measure, Measure), StageError> {
    let raw = match &s.source {
        Source::Prometheus {
            error_rate: Some(q),
            ..
        } => q.clone(),
        _ => {
            return Err(StageError::failed(
                "internal: burn rate without an error-rate query",
            ))
        }
    };
    let key = "error-rate";
    if raw.contains(WINDOW_PLACEHOLDER) {
        let mut out = Vec::with_capacity(2);
        for w in [b.long, b.short] {
            let q = raw.replace(WINDOW_PLACEHOLDER, &promql_duration(w));
            let v = instant_value(env, s, address, (key, &q), end, notes)?;
            out.push(Measure::from_option(
                v.map(|ratio| burn_rate(ratio, target)),
                format!(
                    "the error-rate query returned no data over {}",
                    humantime::format_duration(w)
                ),
            ));
        }
        let short = out.pop().unwrap_or_else(|| Measure::missing("no value"));
        let long = out.pop().unwrap_or_else(|| Measure::missing("no value"));
        return Ok((long, short));
    }
    let long_s = b.long.as_secs_f64();
    let step = s.interval.as_secs_f64().max(long_s / 10_000.0).max(0.001);
    let q = raw.replace(
        WINDOW_PLACEHOLDER,
        &promql_duration(s.window().max(s.interval)),
    );
    let pts = range_series(env, s, address, (key, &q), (end - long_s, end, step), notes)?;
    let short_from = end - b.short.as_secs_f64();
    let long = mean(pts.iter().map(|p| p.1));
    let mut short = mean(pts.iter().filter(|p| p.0 >= short_from).map(|p| p.1));
    if short.is_none() {
        short = pts.last().map(|p| p.1);
    }
    Ok((
        Measure::from_option(
            long.map(|r| burn_rate(r, target)),
            "the error-rate query returned no data over the long window",
        ),
        Measure::from_option(
            short.map(|r| burn_rate(r, target)),
            "the error-rate query returned no data over the short window",
        ),
    ))
}

/// The error ratio over the SLO period: `queries.budget`, else the
/// error-rate query, with `{{window}}` = the period, as one instant query.
/// `None` (and a note) when neither can be asked for the period.
fn prometheus_budget(
    env: &mut dyn Env,
    s: &Settings,
    address: &str,
    target: f64,
    end: f64,
    notes: &mut Vec<String>,
) -> Result<Option<Budget>, StageError> {
    let Source::Prometheus {
        error_rate, budget, ..
    } = &s.source
    else {
        return Ok(None);
    };
    let (key, raw) = match (budget, error_rate) {
        (Some(q), _) => ("budget", q),
        (None, Some(q)) if q.contains(WINDOW_PLACEHOLDER) => ("error-rate", q),
        _ => {
            notes.push(
                "no error budget: the error-rate query has no {{window}} to set to the SLO \
                 period; add with.source.prometheus.queries.budget"
                    .to_string(),
            );
            return Ok(None);
        }
    };
    let period = promql_duration(s.period);
    let q = raw.replace(WINDOW_PLACEHOLDER, &period);
    let v = instant_value(env, s, address, (key, &q), end, notes)?;
    let over = crate::slo::window_text(s.period.as_secs_f64());
    Ok(Some(Budget::new(
        Measure::from_option(
            v,
            format!(
                "the {key} query returned no data over {over} (no traffic, or it matches no series)"
            ),
        ),
        target,
        over,
    )))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum) = (0u32, 0.0);
    for v in values.filter(|v| v.is_finite()) {
        n += 1;
        sum += v;
    }
    (n > 0).then(|| sum / f64::from(n))
}

fn scrape_watch(env: &mut dyn Env, s: &Settings, sc: &Scrape) -> Result<Outcome, StageError> {
    // Rates need two scrapes: a zero window still waits one interval.
    let intervals = s.samples.max(1);
    let mut notes = Vec::new();
    let mut samples = Vec::new();
    let mut deltas: Vec<Delta> = Vec::new();
    let mut prev: Option<Snapshot> = None;
    let (mut ok, mut failed) = (0u32, 0u32);
    let (mut seen_requests, mut seen_latency) = (false, false);
    let (mut failures, mut failed_at) = (0u32, None);
    let mut first_ok_at = None;
    let start = env.now();
    for i in 0..=intervals {
        if failed_at.is_some() {
            break;
        }
        if i > 0 {
            wait_for(env, start, i, s.interval);
        }
        let t = env.now();
        let snap = match scrape_once(env, sc, s.timeout, t) {
            Ok(snap) => snap,
            Err(ScrapeError::Stage(e)) => return Err(e),
            Err(ScrapeError::Down(why)) => {
                failed += 1;
                sluice_sdk::warn!("t+{:.1}s: scrape failed: {why}", t - start);
                let mut sample = Sample {
                    t: t - start,
                    error_rate_pct: None,
                    p95_ms: None,
                    availability_pct: Some(0.0),
                    requests: None,
                    error: Some(why),
                    breaches: vec![],
                };
                failed_at = judge(&mut sample, s, &mut failures);
                samples.push(sample);
                continue;
            }
        };
        ok += 1;
        first_ok_at.get_or_insert(t);
        seen_requests |= snap.has_requests;
        seen_latency |= snap.has_latency;
        if let Some(p) = &prev {
            let d = scrape::delta(p, &snap);
            let mut sample = Sample {
                t: t - start,
                error_rate_pct: (d.requests > 0.0).then(|| 100.0 * d.errors / d.requests),
                p95_ms: scrape::histogram_quantile(0.95, &d.buckets)
                    .map(|v| v * scrape::ms_per_unit(&sc.latency)),
                availability_pct: Some(if d.requests > 0.0 {
                    100.0 * (1.0 - d.errors / d.requests)
                } else {
                    100.0
                }),
                requests: Some(d.requests),
                error: None,
                breaches: vec![],
            };
            sluice_sdk::info!("{}", sample_line(&sample));
            failed_at = judge(&mut sample, s, &mut failures);
            samples.push(sample);
            deltas.push(d);
        }
        prev = Some(snap);
    }
    // Scrapes taken: the first plus one per interval; fewer means the
    // failure-limit ended the watch.
    let stopped_early = failed_at.is_some() && ok + failed <= intervals;
    let end = env.now();
    if ok == 0 {
        return Err(StageError::failed(format!(
            "every scrape of {} failed; is the service running and with.source.scrape.url right?",
            sc.url
        )));
    }
    if failed > 0 {
        notes.push(format!(
            "{failed} of {} scrapes of {} failed",
            ok + failed,
            sc.url
        ));
    }
    let total = scrape::sum(&deltas, f64::NEG_INFINITY);
    let no_requests = if seen_requests {
        "no requests were counted in the window".to_string()
    } else {
        format!("{} has no series named `{}`", sc.url, sc.requests)
    };
    let error_ratio = (total.requests > 0.0).then(|| total.errors / total.requests);
    let up = f64::from(ok) / f64::from(ok + failed);
    let error_rate_pct = Measure::from_option(error_ratio.map(|r| 100.0 * r), &no_requests);
    let p95_ms = Measure::from_option(
        scrape::histogram_quantile(0.95, &total.buckets)
            .map(|v| v * scrape::ms_per_unit(&sc.latency)),
        if seen_latency {
            "no latency observations in the window".to_string()
        } else {
            format!("{} has no histogram `{}_bucket`", sc.url, sc.latency)
        },
    );
    // Successful requests, and a failed scrape counts as down.
    let availability_pct = if deltas.is_empty() {
        Measure::missing("fewer than two successful scrapes")
    } else {
        Measure::of(100.0 * up * (1.0 - error_ratio.unwrap_or(0.0)))
    };
    let watched = end - start;
    let mut alerts = Vec::with_capacity(s.alerts.len());
    let mut budget = None;
    if let Some(target) = s.slo.target {
        for a in &s.alerts {
            // The last whole intervals (at least one) covering `secs`, and
            // the time they span (what the message names).
            let one = |secs: f64, name: &str| -> (Measure, f64) {
                let k = ((secs / s.interval.as_secs_f64()).round() as usize).max(1);
                let from = deltas.len().saturating_sub(k);
                let begin = match from {
                    0 => first_ok_at.unwrap_or(start),
                    i => deltas[i - 1].at,
                };
                let d = scrape::sum(&deltas[from..], f64::NEG_INFINITY);
                (
                    Measure::from_option(
                        (d.requests > 0.0).then(|| burn_rate(d.errors / d.requests, target)),
                        format!("no requests in the {name} window"),
                    ),
                    deltas.last().map_or(0.0, |d| d.at - begin),
                )
            };
            // Windows longer than the watch shrink to it, keeping their ratio.
            let (ls, ss) = scale_windows(a.long.as_secs_f64(), a.short.as_secs_f64(), watched);
            let (l, lc) = one(ls, "long");
            let (sh, sc) = one(ss, "short");
            alerts.push(AlertMeasure::new(a, Some((lc, sc)), l, sh));
        }
        if alerts.iter().any(|a| a.long_s < a.configured_long_s) {
            notes.push(format!(
                "burn-rate windows scaled to the {watched:.0}s watched (long:short ratio kept)"
            ));
        }
        // Over the watch only: a scrape has no history of the SLO period.
        let over = format!(
            "the {} watched (not the {} SLO period: the scrape source sees only the watch)",
            crate::slo::window_text(watched),
            crate::slo::window_text(s.period.as_secs_f64())
        );
        budget = Some(Budget::new(
            Measure::of(counted_ratio(total.errors, total.requests)),
            target,
            over,
        ));
    }
    Ok(Outcome {
        measured: Measured {
            error_rate_pct,
            p95_ms,
            availability_pct,
            alerts,
            budget,
        },
        samples,
        watched_s: end - start,
        requests: Some(total.requests),
        notes,
        breaching_samples: failures,
        failed_at,
        stopped_early,
    })
}

enum ScrapeError {
    /// The target is down or answered badly: counts against availability.
    Down(String),
    /// Stop the stage (denied, malformed exposition, bad labels).
    Stage(StageError),
}

fn scrape_once(
    env: &mut dyn Env,
    sc: &Scrape,
    timeout: Duration,
    t: f64,
) -> Result<Snapshot, ScrapeError> {
    let (status, body) = match env.get(&sc.url, timeout) {
        Ok(x) => x,
        Err(FetchError::Denied(host_port)) => {
            return Err(ScrapeError::Stage(StageError::denied(Capability::Network(
                host_port,
            ))))
        }
        Err(FetchError::Failed(m)) => return Err(ScrapeError::Down(m)),
    };
    if !(200..300).contains(&status) {
        return Err(ScrapeError::Down(format!("HTTP {status} from {}", sc.url)));
    }
    let text = String::from_utf8_lossy(&body);
    let exp = crate::promtext::parse(&text).map_err(|e| {
        ScrapeError::Stage(StageError::failed(format!(
            "{} is not in Prometheus text format: {e}",
            sc.url
        )))
    })?;
    scrape::snapshot(&exp, sc, t).map_err(|e| ScrapeError::Stage(StageError::invalid_config(e)))
}

/// `t+5.0s: error rate 1.20%, p95 45.0 ms, availability 98.80% (120 requests)`.
pub fn sample_line(s: &Sample) -> String {
    let f = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
    let mut line = format!(
        "t+{:.1}s: error rate {}, p95 {}, availability {}",
        s.t,
        f(s.error_rate_pct, "%"),
        f(s.p95_ms, " ms"),
        f(s.availability_pct, "%")
    );
    if let Some(n) = s.requests {
        line.push_str(&format!(" ({n:.0} requests)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use sluice_sdk::Context;
    use std::collections::VecDeque;

    struct Scripted {
        now: f64,
        answers: VecDeque<Result<(u16, Vec<u8>), FetchError>>,
        urls: Vec<String>,
    }

    impl Env for Scripted {
        fn get(&mut self, url: &str, _: Duration) -> Result<(u16, Vec<u8>), FetchError> {
            self.urls.push(url.to_string());
            self.answers
                .pop_front()
                .unwrap_or(Err(FetchError::Failed("no more answers".into())))
        }
        fn now(&self) -> f64 {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d.as_secs_f64();
        }
    }

    fn env(answers: Vec<Result<(u16, &str), FetchError>>) -> Scripted {
        Scripted {
            now: 1_700_000_000.0,
            answers: answers
                .into_iter()
                .map(|a| a.map(|(s, b)| (s, b.as_bytes().to_vec())))
                .collect(),
            urls: vec![],
        }
    }

    fn settings(json: &str) -> Settings {
        match Settings::from_context(&Context::for_test("monitor", json)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn metrics(ok: u32, err: u32, fast: u32) -> String {
        format!(
            "http_requests_total{{status=\"200\"}} {ok}\nhttp_requests_total{{status=\"500\"}} {err}\n\
             http_request_duration_seconds_bucket{{le=\"0.1\"}} {fast}\n\
             http_request_duration_seconds_bucket{{le=\"1\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            ok + err,
            ok + err
        )
    }

    #[test]
    fn scrape_rates_come_from_counter_deltas() -> Result<(), StageError> {
        let s = settings(
            r#"{"samples": 2, "interval": "5s", "source": {"scrape": {"url": "http://h/metrics"}},
                "slo": {"target": 99}, "burn-rate": {"long-window": "10s", "short-window": "5s", "threshold": 2}}"#,
        );
        let (m0, m1, m2) = (
            metrics(100, 0, 100),
            metrics(190, 10, 150),
            metrics(280, 10, 230),
        );
        let mut e = env(vec![Ok((200, &m0)), Ok((200, &m1)), Ok((200, &m2))]);
        let o = run(&mut e, &s)?;
        assert_eq!(o.requests, Some(190.0));
        let err = o.measured.error_rate_pct.value.unwrap_or_default();
        assert!((err - 100.0 * 10.0 / 190.0).abs() < 1e-9, "{err}");
        assert!(
            (o.measured.availability_pct.value.unwrap_or_default() - (100.0 - err)).abs() < 1e-9
        );
        // buckets: 130 of 190 in le=0.1, the rest in le=1; rank 180.5
        let p95 = o.measured.p95_ms.value.unwrap_or_default();
        assert!(
            (p95 - 1000.0 * (0.1 + 0.9 * 50.5 / 60.0)).abs() < 1e-6,
            "{p95}"
        );
        // long window: 10/190 errors; short (last 5s): 0/90
        let a = &o.measured.alerts[0];
        let long = a.burn_long.value.unwrap_or_default();
        assert!((long - (10.0 / 190.0) / 0.01).abs() < 1e-9, "{long}");
        assert_eq!(a.burn_short.value, Some(0.0));
        assert_eq!(
            (a.long_s, a.short_s),
            (10.0, 5.0),
            "the windows fit the watch"
        );
        // The budget is over the watch: 10/190 errors against 1%.
        let b = o.measured.budget.clone().unwrap_or_else(|| panic!("{o:?}"));
        let consumed = b.consumed_pct.unwrap_or_default();
        assert!(
            (consumed - 100.0 * (10.0 / 190.0) / 0.01).abs() < 1e-9,
            "{consumed}"
        );
        assert!(
            b.over
                .starts_with("the 10s watched (not the 30days SLO period"),
            "{}",
            b.over
        );
        assert_eq!(o.samples.len(), 2);
        assert!((o.watched_s - 10.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn failed_scrapes_count_against_availability() -> Result<(), StageError> {
        let s = settings(
            r#"{"samples": 2, "interval": "1s", "source": {"scrape": {"url": "http://h/metrics"}}}"#,
        );
        let (m0, m2) = (metrics(10, 0, 10), metrics(20, 0, 20));
        let mut e = env(vec![
            Ok((200, &m0)),
            Err(FetchError::Failed("connection refused".into())),
            Ok((200, &m2)),
        ]);
        let o = run(&mut e, &s)?;
        let a = o.measured.availability_pct.value.unwrap_or_default();
        assert!((a - 100.0 * 2.0 / 3.0).abs() < 1e-9, "{a}");
        assert_eq!(o.notes, ["1 of 3 scrapes of http://h/metrics failed"]);
        Ok(())
    }

    #[test]
    fn scrape_errors_are_clear() {
        let s = settings(
            r#"{"window": "0s", "interval": "1s", "source": {"scrape": {"url": "http://h/metrics"}}}"#,
        );
        let mut e = env(vec![Ok((200, "bad{x=1} 2"))]);
        let err = run(&mut e, &s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("is not in Prometheus text format: line 1"),
            "{err}"
        );
        let mut e = env(vec![]);
        let err = run(&mut e, &s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("every scrape of http://h/metrics failed"),
            "{err}"
        );
        let mut e = env(vec![Err(FetchError::Denied("prometheus:9090".into()))]);
        assert!(matches!(run(&mut e, &s), Err(StageError::Denied(_))));
    }

    fn vector(v: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{v}"]}}]}}}}"#
        )
    }

    fn matrix(vs: &[(f64, &str)]) -> String {
        let pts: Vec<String> = vs.iter().map(|(t, v)| format!("[{t},\"{v}\"]")).collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
            pts.join(",")
        )
    }

    #[test]
    fn prometheus_uses_instant_samples_and_a_range_for_the_window() -> Result<(), StageError> {
        let s = settings(
            r#"{"samples": 1, "interval": "5s", "source": {"prometheus": {"address": "http://p:9090",
                "queries": {"error-rate": "sum(rate(e[{{window}}]))/sum(rate(r[{{window}}]))", "p95-latency": "q"}}},
                "slo": {"error-rate": 1, "target": 99}, "burn-rate": {"long-window": "1h", "short-window": "5m", "threshold": 10}}"#,
        );
        let answers = vec![
            Ok((200, vector("0.01"))),
            Ok((200, vector("0.2"))),
            Ok((200, vector("0.03"))),
            Ok((200, vector("0.4"))),
            Ok((200, matrix(&[(1.0, "0.01"), (2.0, "0.03")]))),
            Ok((200, matrix(&[(1.0, "0.2"), (2.0, "0.4")]))),
            Ok((200, vector("0.05"))),
            Ok((200, vector("0.5"))),
            Ok((200, vector("0.0025"))),
        ];
        let mut e = Scripted {
            now: 1_700_000_000.0,
            answers: answers
                .into_iter()
                .map(|a| a.map(|(s, b)| (s, b.into_bytes())))
                .collect(),
            urls: vec![],
        };
        let o = run(&mut e, &s)?;
        assert!((o.measured.error_rate_pct.value.unwrap_or_default() - 2.0).abs() < 1e-9);
        assert!((o.measured.p95_ms.value.unwrap_or_default() - 300.0).abs() < 1e-9);
        assert!(o.measured.availability_pct.value.is_none());
        let a = &o.measured.alerts[0];
        assert!((a.burn_long.value.unwrap_or_default() - 5.0).abs() < 1e-9);
        assert!((a.burn_short.value.unwrap_or_default() - 50.0).abs() < 1e-9);
        assert_eq!(a.fired, Some(false), "5x over the long window is below 10x");
        // The budget: the error-rate query over 30 days, 0.25% against 1%.
        let b = o.measured.budget.clone().unwrap_or_else(|| panic!("{o:?}"));
        assert!(
            (b.remaining_pct.unwrap_or_default() - 75.0).abs() < 1e-9,
            "{b:?}"
        );
        assert!(e.urls[8].contains("%5B2592000s%5D"), "{}", e.urls[8]);
        assert!(
            e.urls[0].starts_with("http://p:9090/api/v1/query?query=sum%28rate%28e%5B5s%5D"),
            "{}",
            e.urls[0]
        );
        assert!(e.urls[4].contains("/api/v1/query_range?"), "{}", e.urls[4]);
        assert!(e.urls[6].contains("%5B3600s%5D"), "{}", e.urls[6]);
        assert!(e.urls[7].contains("%5B300s%5D"), "{}", e.urls[7]);
        Ok(())
    }

    #[test]
    fn burn_rates_without_a_placeholder_come_from_one_range() -> Result<(), StageError> {
        let s = settings(
            r#"{"window": "0s", "interval": "10s", "source": {"prometheus": {"address": "http://p",
                "queries": {"error-rate": "job:errors:ratio"}}},
                "slo": {"target": "99%"}, "burn-rate": {"long-window": "60s", "short-window": "20s"}}"#,
        );
        let end = 1_700_000_000.0;
        let range = matrix(&[
            (end - 60.0, "0"),
            (end - 40.0, "0"),
            (end - 20.0, "0.03"),
            (end - 10.0, "0.05"),
            (end, "0.04"),
        ]);
        let mut e = env(vec![Ok((200, &vector("0.04"))), Ok((200, &range))]);
        e.now = end;
        let o = run(&mut e, &s)?;
        assert_eq!(o.measured.error_rate_pct.value, Some(4.0));
        // long: mean 0.024 -> 2.4x; short (last 20s): mean 0.04 -> 4x
        let long = o.measured.alerts[0].burn_long.value.unwrap_or_default();
        let short = o.measured.alerts[0].burn_short.value.unwrap_or_default();
        assert!(o.measured.budget.is_none());
        assert!(
            o.notes
                .iter()
                .any(|n| n.contains("add with.source.prometheus.queries.budget")),
            "{:?}",
            o.notes
        );
        assert!((long - 2.4).abs() < 1e-9, "{long}");
        assert!((short - 4.0).abs() < 1e-9, "{short}");
        assert!(
            e.urls[1].contains("query_range?query=job%3Aerrors%3Aratio&start=1699999940.000"),
            "{}",
            e.urls[1]
        );
        Ok(())
    }

    #[test]
    fn a_rejected_query_names_its_key() {
        let s = settings(
            r#"{"window": "0s", "source": {"prometheus": {"address": "http://p", "queries": {"availability": "up{"}}}}"#,
        );
        let mut e = env(vec![Ok((
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}"#,
        ))]);
        let err = run(&mut e, &s).err();
        assert_eq!(
            err,
            Some(StageError::invalid_config(
                "with.source.prometheus.queries.availability: Prometheus rejected the query (bad_data): 1:4: parse error: unexpected end of input"
            ))
        );
    }

    #[test]
    fn the_watch_stops_once_failure_limit_samples_breach() -> Result<(), StageError> {
        // 30 intervals of 1s; every interval 10% errors against a 1% SLO.
        let s = settings(
            r#"{"samples": 30, "interval": "1s", "failure-limit": 1,
                "source": {"scrape": {"url": "http://h/metrics"}}, "slo": {"error-rate": 1}}"#,
        );
        let m: Vec<String> = (0..=30).map(|i| metrics(90 * i, 10 * i, 100 * i)).collect();
        let mut e = env(m.iter().map(|m| Ok((200, m.as_str()))).collect());
        let o = run(&mut e, &s)?;
        assert_eq!(e.urls.len(), 3, "the first scrape and two intervals");
        assert_eq!(o.samples.len(), 2);
        assert!(o.stopped_early);
        assert_eq!(o.breaching_samples, 2);
        let f = o.failed_at.clone().unwrap_or_else(|| panic!("{o:?}"));
        assert!((f.t - 2.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f.breaches, ["error rate 10.00% > max 1.00%"]);
        assert!((o.watched_s - 2.0).abs() < 1e-9);
        // The window's values cover what was watched.
        assert_eq!(o.measured.error_rate_pct.value, Some(10.0));
        Ok(())
    }

    #[test]
    fn breaches_below_the_limit_do_not_stop_the_watch() -> Result<(), StageError> {
        // Default failure-limit 2: two breaching intervals of four are tolerated.
        let s = settings(
            r#"{"samples": 4, "interval": "1s", "source": {"scrape": {"url": "http://h/metrics"}},
                "slo": {"error-rate": 1}}"#,
        );
        assert_eq!(s.failure_limit, 2);
        let m = [
            metrics(0, 0, 0),
            metrics(90, 10, 100),
            metrics(190, 10, 200),
            metrics(280, 20, 300),
            metrics(380, 20, 400),
        ];
        let mut e = env(m.iter().map(|m| Ok((200, m.as_str()))).collect());
        let o = run(&mut e, &s)?;
        assert_eq!(o.samples.len(), 4);
        assert_eq!(o.breaching_samples, 2);
        assert!(o.failed_at.is_none() && !o.stopped_early);
        assert!(o.samples[1].breaches.is_empty());
        Ok(())
    }

    #[test]
    fn the_limit_reached_by_the_last_sample_fails_without_stopping_early() -> Result<(), StageError>
    {
        let s = settings(
            r#"{"samples": 2, "interval": "1s", "failure-limit": 1,
                "source": {"scrape": {"url": "http://h/metrics"}}, "slo": {"availability": 99}}"#,
        );
        let m = [metrics(0, 0, 0), metrics(90, 10, 100)];
        let mut e = env(vec![
            Ok((200, &m[0])),
            Ok((200, &m[1])),
            Err(FetchError::Failed("connection refused".into())),
        ]);
        let o = run(&mut e, &s)?;
        assert_eq!(o.breaching_samples, 2);
        assert!(o.failed_at.is_some());
        assert!(!o.stopped_early, "{o:?}");
        Ok(())
    }

    #[test]
    fn prometheus_stops_at_the_first_breaching_look_with_failure_limit_0() -> Result<(), StageError>
    {
        let s = settings(
            r#"{"samples": 30, "interval": "1s", "failure-limit": 0,
                "source": {"prometheus": {"address": "http://p", "queries": {"error-rate": "q"}}},
                "slo": {"error-rate": "0.5%"}}"#,
        );
        let mut e = env(vec![
            Ok((200, &vector("0.001"))),
            Ok((200, &vector("0.032"))),
            Ok((200, &matrix(&[(1.0, "0.001"), (2.0, "0.032")]))),
        ]);
        let o = run(&mut e, &s)?;
        assert_eq!(o.samples.len(), 2);
        assert!(o.stopped_early);
        assert_eq!(
            o.failed_at.map(|f| f.breaches),
            Some(vec!["error rate 3.20% > max 0.50%".to_string()])
        );
        assert!((o.watched_s - 1.0).abs() < 1e-9);
        assert!(e.urls[2].contains("/api/v1/query_range?"), "{:?}", e.urls);
        assert_eq!(e.urls.len(), 3);
        Ok(())
    }

    #[test]
    fn every_workbook_alert_is_queried_over_its_windows() -> Result<(), StageError> {
        let s = settings(
            r#"{"window": "0s", "source": {"prometheus": {"address": "http://p",
                "queries": {"error-rate": "sum(rate(e[{{window}}]))/sum(rate(r[{{window}}]))"}}},
                "slo": {"target": "99.9%"}}"#,
        );
        // 0s: one instant look, then long and short per alert, then the budget.
        let ratios = [
            "0.02", "0.02", "0.03", "0.02", "0.005", "0.004", "0.004", "0.004", "0.004", "0.0005",
        ];
        let bodies: Vec<String> = ratios.iter().map(|r| vector(r)).collect();
        let mut e = env(bodies.iter().map(|b| Ok((200, b.as_str()))).collect());
        let o = run(&mut e, &s)?;
        let fired: Vec<(String, Option<bool>)> = o
            .measured
            .alerts
            .iter()
            .map(|a| (a.name.clone(), a.fired))
            .collect();
        assert_eq!(
            fired,
            [
                ("burn-rate-page-1h-5m".to_string(), Some(true)),
                ("burn-rate-page-6h-30m".to_string(), Some(false)),
                ("burn-rate-ticket-1day-2h".to_string(), Some(true)),
                ("burn-rate-ticket-3days-6h".to_string(), Some(true)),
            ]
        );
        for (i, w) in [
            "3600s", "300s", "21600s", "1800s", "86400s", "7200s", "259200s", "21600s", "2592000s",
        ]
        .iter()
        .enumerate()
        {
            assert!(
                e.urls[i + 1].contains(&format!("%5B{w}%5D")),
                "{i}: {}",
                e.urls[i + 1]
            );
        }
        let b = o.measured.budget.clone().unwrap_or_else(|| panic!("{o:?}"));
        assert!(
            (b.remaining_pct.unwrap_or_default() - 50.0).abs() < 1e-9,
            "{b:?}"
        );
        assert_eq!(b.over, "30days");
        Ok(())
    }

    #[test]
    fn a_budget_query_alone_takes_one_look_at_the_period() -> Result<(), StageError> {
        let s = settings(
            r#"{"window": "0s", "slo-period": "7d", "slo": {"target": 99},
                "source": {"prometheus": {"address": "http://p", "queries": {"budget": "sum(increase(e[{{window}}]))/sum(increase(r[{{window}}]))"}}}}"#,
        );
        let mut e = env(vec![Ok((200, &vector("0.03")))]);
        let o = run(&mut e, &s)?;
        assert_eq!(e.urls.len(), 1);
        assert!(e.urls[0].contains("%5B604800s%5D"), "{}", e.urls[0]);
        let b = o.measured.budget.unwrap_or_else(|| panic!("no budget"));
        assert!(
            (b.remaining_pct.unwrap_or_default() + 200.0).abs() < 1e-9,
            "{b:?}"
        );
        // No data (no traffic, or a query matching nothing) is not a number.
        let mut e = env(vec![Ok((
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        ))]);
        let b = run(&mut e, &s)?
            .measured
            .budget
            .unwrap_or_else(|| panic!("no budget"));
        assert_eq!(b.remaining_pct, None);
        assert!(
            b.bad_ratio.missing.contains("returned no data over 7days"),
            "{b:?}"
        );
        Ok(())
    }

    #[test]
    fn scrape_windows_scale_to_the_watch() -> Result<(), StageError> {
        // A 4s watch at 1s: every workbook alert's long window becomes 4s and
        // its short one 1/12 of that, i.e. the last interval.
        let s = settings(
            r#"{"samples": 4, "interval": "1s", "source": {"scrape": {"url": "http://h/metrics"}},
                "slo": {"target": 99}}"#,
        );
        let m = [
            metrics(0, 0, 0),
            metrics(100, 0, 100),
            metrics(200, 0, 200),
            metrics(300, 0, 300),
            metrics(380, 20, 400),
        ];
        let mut e = env(m.iter().map(|m| Ok((200, m.as_str()))).collect());
        let o = run(&mut e, &s)?;
        assert_eq!(o.measured.alerts.len(), 4);
        for a in &o.measured.alerts {
            assert_eq!((a.long_s, a.short_s), (4.0, 1.0), "{a:?}");
            // long: 20/400 = 5x; short (last interval): 20/100 = 20x
            assert!((a.burn_long.value.unwrap_or_default() - 5.0).abs() < 1e-9);
            assert!((a.burn_short.value.unwrap_or_default() - 20.0).abs() < 1e-9);
        }
        let fired: Vec<Option<bool>> = o.measured.alerts.iter().map(|a| a.fired).collect();
        assert_eq!(fired, [Some(false), Some(false), Some(true), Some(true)]);
        assert!(
            o.notes
                .iter()
                .any(|n| n.contains("scaled to the 4s watched")),
            "{:?}",
            o.notes
        );
        let b = o.measured.budget.clone().unwrap_or_else(|| panic!("{o:?}"));
        assert!(
            (b.remaining_pct.unwrap_or_default() + 400.0).abs() < 1e-9,
            "{b:?}"
        );
        Ok(())
    }
}
