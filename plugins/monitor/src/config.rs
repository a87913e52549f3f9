//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_sdk::{Context, StageError};

use crate::values::{Millis, Percent};
use sluice_sdk::values::ConfigDuration;

/// Default watch window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `failure-limit`: breaching samples tolerated; one more ends the
/// watch with a failure (Argo Rollouts' `failureLimit` semantics).
pub const DEFAULT_FAILURE_LIMIT: u32 = 2;
/// At most this many samples in one watch.
pub const MAX_SAMPLES: u32 = 10_000;
/// The placeholder replaced in PromQL queries by a window length.
pub const WINDOW_PLACEHOLDER: &str = "{{window}}";
/// Default SLO period: the error budget is spent over this long.
pub const DEFAULT_SLO_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
/// At most this many burn-rate alerts.
pub const MAX_ALERTS: usize = 16;

const HOUR: u64 = 3600;
/// The multiwindow, multi-burn-rate alerts of the Google SRE workbook
/// ("Alerting on SLOs", table 5-8): `(long, short, factor, severity)`.
/// With a 30-day period they fire after 2%, 5%, 10% and 10% of the budget.
pub const WORKBOOK_ALERTS: [(u64, u64, f64, Severity); 4] = [
    (HOUR, 300, 14.4, Severity::Page),
    (6 * HOUR, 1800, 6.0, Severity::Page),
    (24 * HOUR, 2 * HOUR, 3.0, Severity::Ticket),
    (72 * HOUR, 6 * HOUR, 1.0, Severity::Ticket),
];

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// How long to watch.
    #[serde(default)]
    pub window: Option<ConfigDuration>,
    /// Time between samples.
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Number of intervals to watch (instead of `window`).
    #[serde(default)]
    pub samples: Option<u32>,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: Option<SourceConfig>,
    /// Thresholds.
    #[serde(default)]
    pub slo: Option<SloConfig>,
    /// Multiwindow burn-rate alert (one; `alerts` is the list form).
    #[serde(default)]
    pub burn_rate: Option<BurnConfig>,
    /// Multiwindow, multi-burn-rate alerts: a list, or `workbook`.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
    /// The period the error budget is spent over (default 30d).
    #[serde(default)]
    pub slo_period: Option<ConfigDuration>,
    /// Per-request timeout.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Samples breaching an SLO tolerated; one more fails the watch at once.
    #[serde(default)]
    pub failure_limit: Option<u32>,
    /// Where the release's traffic share is read (for the exposure).
    #[serde(default)]
    pub target: Option<sluice_delivery::config::TargetConfig>,
    /// The watched release's version (its routes in `weights.json`).
    #[serde(default)]
    pub version: Option<String>,
}

/// `with.source`: exactly one of `prometheus` or `scrape`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum SourceConfig {
    /// A Prometheus server's HTTP API.
    Prometheus(PrometheusConfig),
    /// A `/metrics` endpoint scraped directly.
    Scrape(ScrapeConfig),
}

/// `with.source.prometheus`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrometheusConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:9090`.
    pub address: String,
    /// The PromQL of each measured value.
    pub queries: QueriesConfig,
}

/// `with.source.prometheus.queries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QueriesConfig {
    /// Ratio of failed requests (0–1).
    #[serde(default)]
    pub error_rate: Option<String>,
    /// 95th percentile latency in seconds.
    #[serde(default)]
    pub p95_latency: Option<String>,
    /// Ratio of successful requests or up targets (0–1).
    #[serde(default)]
    pub availability: Option<String>,
    /// Ratio (0–1) of failed requests over the SLO period (`{{window}}`).
    #[serde(default)]
    pub budget: Option<String>,
}

/// `with.source.scrape`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScrapeConfig {
    /// The `/metrics` URL.
    pub url: String,
    /// Counter of requests (default `http_requests_total`).
    #[serde(default)]
    pub requests: Option<String>,
    /// Label carrying the status (default: `code`, `status` or `status_code`, whichever is there).
    #[serde(default)]
    pub status_label: Option<String>,
    /// Statuses counted as errors (default `["5xx"]`).
    #[serde(default)]
    pub error_status: Option<Vec<serde_json::Value>>,
    /// Latency histogram (default `http_request_duration_seconds`).
    #[serde(default)]
    pub latency: Option<String>,
    /// Only series with these label values.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Leave out series with these label values.
    #[serde(default)]
    pub exclude: Option<BTreeMap<String, Vec<String>>>,
}

/// `with.slo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SloConfig {
    /// Highest acceptable error rate, percent.
    #[serde(default)]
    pub error_rate: Option<Percent>,
    /// Highest acceptable p95 latency, ms.
    #[serde(default)]
    pub p95_latency: Option<Millis>,
    /// Lowest acceptable availability, percent.
    #[serde(default)]
    pub availability: Option<Percent>,
    /// The SLO target, percent, for the error budget.
    #[serde(default)]
    pub target: Option<Percent>,
}

/// `with.burn-rate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BurnConfig {
    /// Long window (default 1h).
    #[serde(default)]
    pub long_window: Option<ConfigDuration>,
    /// Short window (default 5m).
    #[serde(default)]
    pub short_window: Option<ConfigDuration>,
    /// Burn rate that alerts (default 14.4).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// `with.alerts`: the word `workbook` or a list of alerts.
#[derive(Debug)]
pub enum AlertsConfig {
    /// `workbook`: [`WORKBOOK_ALERTS`].
    Workbook,
    /// An explicit list.
    List(Vec<AlertConfig>),
}

impl<'de> Deserialize<'de> for AlertsConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AlertsConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`workbook` or a list of {long, short, factor, severity}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AlertsConfig, E> {
                if v.trim() == "workbook" {
                    Ok(AlertsConfig::Workbook)
                } else {
                    Err(E::custom(format!(
                        "`{v}` is not a preset; write `workbook` (the SRE workbook's table) or a \
                         list such as [{{long: 1h, short: 5m, factor: 14.4, severity: page}}]"
                    )))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AlertsConfig, A::Error> {
                let mut out = Vec::new();
                // Each element through the SeqAccess keeps its index in the error path.
                while let Some(a) = seq.next_element::<AlertConfig>()? {
                    out.push(a);
                }
                Ok(AlertsConfig::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of `with.alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertConfig {
    /// Long window, e.g. `1h`.
    pub long: ConfigDuration,
    /// Short window, e.g. `5m`.
    pub short: ConfigDuration,
    /// Burn rate both windows must exceed, e.g. 14.4.
    pub factor: f64,
    /// `page` (fails the stage) or `ticket` (warns); default `page`.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// What a fired alert does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Fails the stage.
    Page,
    /// Warns.
    Ticket,
}

impl Severity {
    /// `page` or `ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// Where values come from, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Prometheus HTTP API.
    Prometheus {
        /// Base URL without trailing `/`.
        address: String,
        /// Error ratio query.
        error_rate: Option<String>,
        /// p95 latency query (seconds).
        p95_latency: Option<String>,
        /// Availability ratio query.
        availability: Option<String>,
        /// Error ratio over the SLO period.
        budget: Option<String>,
    },
    /// Direct scrape.
    Scrape(Scrape),
}

/// A validated `scrape` source.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The `/metrics` URL.
    pub url: String,
    /// Request counter name.
    pub requests: String,
    /// Status label, or `None` to detect.
    pub status_label: Option<String>,
    /// Error status patterns (`5xx`, `429`).
    pub error_status: Vec<String>,
    /// Latency histogram base name.
    pub latency: String,
    /// Required label values.
    pub labels: BTreeMap<String, String>,
    /// Excluded label values.
    pub exclude: BTreeMap<String, Vec<String>>,
}

/// SLO thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Slo {
    /// Max error rate, percent.
    pub error_rate: Option<f64>,
    /// Max p95, ms.
    pub p95_ms: Option<f64>,
    /// Min availability, percent.
    pub availability: Option<f64>,
    /// Target, percent.
    pub target: Option<f64>,
}

/// One multiwindow burn-rate alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Its gate's name: `burn-rate` for `with.burn-rate`, else
    /// `burn-rate-<severity>-<long>-<short>`.
    pub name: String,
    /// Long window.
    pub long: Duration,
    /// Short window.
    pub short: Duration,
    /// Burn rate both windows must exceed.
    pub factor: f64,
    /// What firing does.
    pub severity: Severity,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Number of intervals watched (0: one instant look).
    pub samples: u32,
    /// Time between samples.
    pub interval: Duration,
    /// Where values come from.
    pub source: Source,
    /// Thresholds.
    pub slo: Slo,
    /// Burn-rate alerts (empty: none).
    pub alerts: Vec<Alert>,
    /// The SLO period (error budget).
    pub period: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Breaching samples tolerated: one more ends the watch with a failure.
    pub failure_limit: u32,
    /// The target whose `weights.json` gives the release's traffic share.
    pub target: Option<sluice_delivery::config::TargetConfig>,
    /// The watched release's version.
    pub version: Option<String>,
}

impl Settings {
    /// The watched duration.
    pub fn window(&self) -> Duration {
        self.interval.saturating_mul(self.samples)
    }

    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        let interval = c.interval.map(|d| d.0).unwrap_or(DEFAULT_INTERVAL);
        if interval.is_zero() {
            return Err(StageError::invalid_config(
                "with.interval: must be longer than zero, e.g. \"5s\"",
            ));
        }
        let samples = match (c.samples, c.window) {
            (Some(_), Some(_)) => {
                return Err(StageError::invalid_config(
                    "with.samples: also given `window`; give the watch as a `window` (e.g. 60s) or as a number of `samples`, not both",
                ))
            }
            (Some(n), None) => n,
            (None, w) => {
                let w = w.map(|d| d.0).unwrap_or(DEFAULT_WINDOW);
                let n = (w.as_secs_f64() / interval.as_secs_f64()).ceil();
                if n > f64::from(MAX_SAMPLES) {
                    return Err(StageError::invalid_config(format!(
                        "with.window: {} at an interval of {} is more than {MAX_SAMPLES} samples; raise with.interval",
                        humantime::format_duration(w),
                        humantime::format_duration(interval)
                    )));
                }
                n as u32
            }
        };
        if samples > MAX_SAMPLES {
            return Err(StageError::invalid_config(format!(
                "with.samples: {samples} is more than {MAX_SAMPLES}"
            )));
        }
        let source = match c.source {
            None => return Err(StageError::invalid_config(
                "with.source: missing; give `prometheus: {address, queries}` or `scrape: {url}`",
            )),
            Some(SourceConfig::Prometheus(p)) => prometheus(p)?,
            Some(SourceConfig::Scrape(s)) => scrape(s)?,
        };
        let slo = c
            .slo
            .map(|s| Slo {
                error_rate: s.error_rate.map(|p| p.0),
                p95_ms: s.p95_latency.map(|m| m.0),
                availability: s.availability.map(|p| p.0),
                target: s.target.map(|p| p.0),
            })
            .unwrap_or_default();
        if slo.target.is_some_and(|t| t >= 100.0) {
            return Err(StageError::invalid_config(
                "with.slo.target: 100% leaves no error budget; give a target below 100, e.g. \"99.9%\"",
            ));
        }
        if let Source::Prometheus {
            error_rate,
            p95_latency,
            availability,
            ..
        } = &source
        {
            for (slo_key, set, query_key) in [
                ("error-rate", slo.error_rate.is_some(), error_rate.is_some()),
                ("p95-latency", slo.p95_ms.is_some(), p95_latency.is_some()),
                (
                    "availability",
                    slo.availability.is_some(),
                    availability.is_some(),
                ),
            ] {
                if set && !query_key {
                    return Err(StageError::invalid_config(format!(
                        "with.slo.{slo_key}: there is no query to measure it; add \
                         with.source.prometheus.queries.{slo_key}"
                    )));
                }
            }
        }
        let period = c.slo_period.map(|d| d.0).unwrap_or(DEFAULT_SLO_PERIOD);
        if period.is_zero() {
            return Err(StageError::invalid_config(
                "with.slo-period: must be longer than zero, e.g. \"30d\"",
            ));
        }
        let alerts = alerts(c.burn_rate, c.alerts, &slo, &source)?;
        let timeout = c.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(StageError::invalid_config(
                "with.timeout: must be longer than zero, e.g. \"10s\"",
            ));
        }
        let failure_limit = c.failure_limit.unwrap_or(DEFAULT_FAILURE_LIMIT);
        let version = c.version.map(|v| v.trim().to_string());
        if version.as_deref().is_some_and(str::is_empty) {
            return Err(StageError::invalid_config(
                "with.version: empty; give the watched release's version, e.g. \"${{ stages.deploy.outputs.version }}\"",
            ));
        }
        Ok(Self {
            samples,
            interval,
            source,
            slo,
            alerts,
            period,
            timeout,
            failure_limit,
            target: c.target,
            version,
        })
    }
}

/// Whether `source` can measure the error ratio the burn rate needs.
fn measures_errors(source: &Source) -> bool {
    !matches!(
        source,
        Source::Prometheus {
            error_rate: None,
            ..
        }
    )
}

/// The burn-rate alerts: `with.burn-rate` (one page alert named
/// `burn-rate`, as before), `with.alerts`, or — with `slo.target` and an
/// error ratio to measure — the workbook's table.
fn alerts(
    single: Option<BurnConfig>,
    list: Option<AlertsConfig>,
    slo: &Slo,
    source: &Source,
) -> Result<Vec<Alert>, StageError> {
    let key = match (&single, &list) {
        (Some(_), Some(_)) => {
            return Err(StageError::invalid_config(
                "with.alerts: also given with.burn-rate; list every alert under `alerts` \
                 (burn-rate is the one-alert form) and remove burn-rate",
            ))
        }
        (Some(_), None) => "with.burn-rate",
        (None, Some(_)) => "with.alerts",
        (None, None) => {
            // The default: the workbook's alerts whenever they can be judged.
            if slo.target.is_none() || !measures_errors(source) {
                return Ok(vec![]);
            }
            return Ok(workbook());
        }
    };
    if slo.target.is_none() {
        return Err(StageError::invalid_config(format!(
            "{key}: needs with.slo.target (e.g. \"99.9%\"): the burn rate is the error \
             ratio divided by the error budget 1 - target"
        )));
    }
    if !measures_errors(source) {
        return Err(StageError::invalid_config(format!(
            "{key}: needs with.source.prometheus.queries.error-rate"
        )));
    }
    if let Some(b) = single {
        let long = b
            .long_window
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(3600));
        let short = b
            .short_window
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(300));
        if short.is_zero() || long.is_zero() {
            return Err(StageError::invalid_config(
                "with.burn-rate: windows must be longer than zero, e.g. long-window: 1h, short-window: 5m",
            ));
        }
        if short > long {
            return Err(StageError::invalid_config(format!(
                "with.burn-rate.short-window: {} is longer than long-window {}; the short window is \
                 the fast check, e.g. 1/12 of the long one",
                humantime::format_duration(short),
                humantime::format_duration(long)
            )));
        }
        let threshold = b.threshold.unwrap_or(14.4);
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(StageError::invalid_config(format!(
                "with.burn-rate.threshold: {threshold} must be above zero, e.g. 14.4 (2% of a 30-day budget in 1h)"
            )));
        }
        return Ok(vec![Alert {
            name: "burn-rate".into(),
            long,
            short,
            factor: threshold,
            severity: Severity::Page,
        }]);
    }
    let list = match list {
        Some(AlertsConfig::List(l)) => l,
        _ => return Ok(workbook()),
    };
    if list.is_empty() {
        return Err(StageError::invalid_config(
            "with.alerts: empty; list at least one alert, e.g. [{long: 1h, short: 5m, factor: 14.4, \
             severity: page}], or write `workbook` for the SRE workbook's four",
        ));
    }
    if list.len() > MAX_ALERTS {
        return Err(StageError::invalid_config(format!(
            "with.alerts: {} alerts, more than {MAX_ALERTS}",
            list.len()
        )));
    }
    let mut out: Vec<Alert> = Vec::with_capacity(list.len());
    for (i, a) in list.into_iter().enumerate() {
        let (long, short) = (a.long.0, a.short.0);
        if long.is_zero() || short.is_zero() {
            return Err(StageError::invalid_config(format!(
                "with.alerts[{i}]: windows must be longer than zero, e.g. long: 1h, short: 5m"
            )));
        }
        if short > long {
            return Err(StageError::invalid_config(format!(
                "with.alerts[{i}].short: {} is longer than long {}; the short window is the fast \
                 check that the burn is still going on, e.g. 1/12 of the long one",
                humantime::format_duration(short),
                humantime::format_duration(long)
            )));
        }
        if !(a.factor.is_finite() && a.factor > 0.0) {
            return Err(StageError::invalid_config(format!(
                "with.alerts[{i}].factor: {} must be above zero, e.g. 14.4 (2% of a 30-day budget in 1h)",
                a.factor
            )));
        }
        let severity = a.severity.unwrap_or(Severity::Page);
        let mut alert = Alert {
            name: alert_name(severity, long, short),
            long,
            short,
            factor: a.factor,
            severity,
        };
        // Two alerts on the same windows and severity still get a gate each.
        if out.iter().any(|o| o.name == alert.name) {
            alert.name = format!("{}-{}", alert.name, i + 1);
        }
        out.push(alert);
    }
    Ok(out)
}

fn workbook() -> Vec<Alert> {
    WORKBOOK_ALERTS
        .iter()
        .map(|&(long, short, factor, severity)| {
            let (long, short) = (Duration::from_secs(long), Duration::from_secs(short));
            Alert {
                name: alert_name(severity, long, short),
                long,
                short,
                factor,
                severity,
            }
        })
        .collect()
}

/// `burn-rate-page-1h-5m`.
fn alert_name(severity: Severity, long: Duration, short: Duration) -> String {
    let w = |d: Duration| humantime::format_duration(d).to_string().replace(' ', "");
    format!("burn-rate-{}-{}-{}", severity.as_str(), w(long), w(short))
}

fn prometheus(p: PrometheusConfig) -> Result<Source, StageError> {
    let address = check_url("with.source.prometheus.address", p.address.trim())?
        .trim_end_matches('/')
        .to_string();
    let q = p.queries;
    for (key, v) in [
        ("error-rate", &q.error_rate),
        ("p95-latency", &q.p95_latency),
        ("availability", &q.availability),
        ("budget", &q.budget),
    ] {
        if v.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(StageError::invalid_config(format!(
                "with.source.prometheus.queries.{key}: empty; give a PromQL expression or leave the key out"
            )));
        }
    }
    if q.error_rate.is_none()
        && q.p95_latency.is_none()
        && q.availability.is_none()
        && q.budget.is_none()
    {
        return Err(StageError::invalid_config(
            "with.source.prometheus.queries: empty; give at least one of error-rate, p95-latency, availability, budget",
        ));
    }
    Ok(Source::Prometheus {
        address,
        error_rate: q.error_rate,
        p95_latency: q.p95_latency,
        availability: q.availability,
        budget: q.budget,
    })
}

fn scrape(s: ScrapeConfig) -> Result<Source, StageError> {
    let url = check_url("with.source.scrape.url", s.url.trim())?;
    let error_status: Vec<String> = match s.error_status {
        None => vec!["5xx".into()],
        Some(list) => list
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
    };
    if error_status.is_empty() {
        return Err(StageError::invalid_config(
            "with.source.scrape.error-status: empty; list the statuses that count as errors, e.g. [5xx, 429]",
        ));
    }
    for (i, p) in error_status.iter().enumerate() {
        if !crate::scrape::valid_status_pattern(p) {
            return Err(StageError::invalid_config(format!(
                "with.source.scrape.error-status[{i}]: `{p}` is not a status or class; write e.g. 500 or \"5xx\""
            )));
        }
    }
    let name = |key: &str, v: Option<String>, default: &str| -> Result<String, StageError> {
        let v = v.unwrap_or_else(|| default.to_string());
        let ok = v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if ok {
            Ok(v)
        } else {
            Err(StageError::invalid_config(format!(
                "with.source.scrape.{key}: `{v}` is not a metric name"
            )))
        }
    };
    Ok(Source::Scrape(Scrape {
        url,
        requests: name("requests", s.requests, "http_requests_total")?,
        status_label: s.status_label,
        error_status,
        latency: name("latency", s.latency, "http_request_duration_seconds")?,
        labels: s.labels.unwrap_or_default(),
        exclude: s.exclude.unwrap_or_default(),
    }))
}

/// An absolute `http(s)` URL with a host, or an error naming `key`.
pub fn check_url(key: &str, raw: &str) -> Result<String, StageError> {
    let bad = |why: String| StageError::invalid_config(format!("{key}: `{raw}` {why}"));
    if raw.is_empty() {
        return Err(StageError::invalid_config(format!(
            "{key}: empty; give an absolute URL such as http://127.0.0.1:9090"
        )));
    }
    let u = url::Url::parse(raw).map_err(|e| bad(format!("is not a valid URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!(
            "uses `{}`; only http:// and https:// work",
            u.scheme()
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".into()));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("carries user info, which is not supported".into()));
    }
    Ok(raw.to_string())
}

/// JSON Schema (draft 2020-12) of `with:`, returned by `describe`.
pub const SCHEMA: &str = include_str!("schema.json");

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, StageError> {
        Settings::from_context(&Context::for_test("monitor", json))
    }

    fn config_error(json: &str) -> String {
        match settings(json) {
            Err(StageError::InvalidConfig(m)) => m,
            other => panic!("expected invalid config for {json}, got {other:?}"),
        }
    }

    const PROM: &str = r#""source": {"prometheus": {"address": "http://127.0.0.1:9090/",
        "queries": {"error-rate": "sum(rate(e[1m]))/sum(rate(r[1m]))", "p95-latency": "x"}}}"#;
    const PROM_OBJ: &str = r#"{"source": {"prometheus": {"address": "http://127.0.0.1:9090/",
        "queries": {"error-rate": "sum(rate(e[1m]))/sum(rate(r[1m]))", "p95-latency": "x"}}}}"#;

    #[test]
    fn prometheus_config() -> Result<(), StageError> {
        let s = settings(&format!(
            r#"{{"window": "60s", "interval": "5s", {PROM},
                "slo": {{"error-rate": "1%", "p95-latency": "300ms", "target": "99.9%"}},
                "burn-rate": {{"long-window": "1h", "short-window": "5m", "threshold": 14.4}}}}"#
        ))?;
        assert_eq!(s.samples, 12);
        assert_eq!(s.window(), Duration::from_secs(60));
        assert!(
            matches!(&s.source, Source::Prometheus { address, .. } if address == "http://127.0.0.1:9090")
        );
        assert_eq!(s.slo.error_rate, Some(1.0));
        assert_eq!(s.slo.p95_ms, Some(300.0));
        assert_eq!(s.slo.target, Some(99.9));
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.alerts[0].name, "burn-rate");
        assert_eq!(s.alerts[0].factor, 14.4);
        assert_eq!(s.alerts[0].severity, Severity::Page);
        assert_eq!(s.period, DEFAULT_SLO_PERIOD);
        Ok(())
    }

    #[test]
    fn scrape_config_and_short_windows() -> Result<(), StageError> {
        let s = settings(
            r#"{"window": "0s", "interval": "1s", "source": {"scrape": {"url": "http://h:1/metrics"}}}"#,
        )?;
        assert_eq!(s.samples, 0);
        let Source::Scrape(sc) = &s.source else {
            return Err(StageError::failed("not scrape"));
        };
        assert_eq!(sc.requests, "http_requests_total");
        assert_eq!(sc.latency, "http_request_duration_seconds");
        assert_eq!(sc.error_status, ["5xx"]);
        let s = settings(
            r#"{"samples": 3, "interval": "1s", "source": {"scrape": {"url": "http://h:1/metrics"}}}"#,
        )?;
        assert_eq!(s.samples, 3);
        Ok(())
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        assert!(config_error("{}").starts_with("with.source: missing"));
        let e = config_error(r#"{"source": {"graphite": {}}}"#);
        assert!(
            e.starts_with("with.source: unknown variant `graphite`"),
            "{e}"
        );
        let e = config_error(r#"{"source": {"scrape": {"url": "http://h/", "uri": 1}}}"#);
        assert!(
            e.starts_with("with.source.scrape.uri: unknown field"),
            "{e}"
        );
        assert!(
            config_error(r#"{"source": {"scrape": {"url": "h:9/metrics"}}}"#)
                .starts_with("with.source.scrape.url: ")
        );
        assert!(config_error(
            r#"{"source": {"prometheus": {"address": "nope", "queries": {"error-rate": "x"}}}}"#
        )
        .starts_with("with.source.prometheus.address: `nope` is not a valid URL"));
        assert!(config_error(
            r#"{"source": {"prometheus": {"address": "http://p", "queries": {}}}}"#
        )
        .starts_with("with.source.prometheus.queries: empty"));
        assert!(
            config_error(&format!(r#"{{{PROM}, "slo": {{"availability": 99}}}}"#))
                .starts_with("with.slo.availability: there is no query")
        );
        assert!(config_error(&format!(r#"{{{PROM}, "burn-rate": {{}}}}"#))
            .starts_with("with.burn-rate: needs with.slo.target"));
        assert!(config_error(&format!(
            r#"{{{PROM}, "slo": {{"target": 99}}, "burn-rate": {{"long-window": "5m", "short-window": "1h"}}}}"#
        ))
        .starts_with("with.burn-rate.short-window: "));
        assert!(
            config_error(&format!(r#"{{{PROM}, "slo": {{"target": 100}}}}"#))
                .starts_with("with.slo.target: 100%")
        );
        assert!(
            config_error(&format!(r#"{{{PROM}, "slo": {{"error-rate": "lots"}}}}"#))
                .starts_with("with.slo.error-rate: ")
        );
        assert!(config_error(&format!(r#"{{{PROM}, "interval": "0s"}}"#))
            .starts_with("with.interval: "));
        assert!(
            config_error(&format!(r#"{{{PROM}, "window": "1s", "samples": 2}}"#))
                .starts_with("with.samples: also given `window`")
        );
        assert!(config_error(
            r#"{"source": {"scrape": {"url": "http://h/", "error-status": ["5x"]}}}"#
        )
        .starts_with("with.source.scrape.error-status[0]: "));
        assert!(
            config_error(r#"{"source": {"scrape": {"url": "http://h/", "requests": "a-b"}}}"#)
                .starts_with("with.source.scrape.requests: ")
        );
    }

    #[test]
    fn alerts_default_to_the_workbook_table() -> Result<(), StageError> {
        let s = settings(&format!(r#"{{{PROM}, "slo": {{"target": "99.9%"}}}}"#))?;
        let got: Vec<(&str, u64, u64, f64, Severity)> = s
            .alerts
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.long.as_secs(),
                    a.short.as_secs(),
                    a.factor,
                    a.severity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("burn-rate-page-1h-5m", 3600, 300, 14.4, Severity::Page),
                ("burn-rate-page-6h-30m", 21600, 1800, 6.0, Severity::Page),
                (
                    "burn-rate-ticket-1day-2h",
                    86400,
                    7200,
                    3.0,
                    Severity::Ticket
                ),
                (
                    "burn-rate-ticket-3days-6h",
                    259200,
                    21600,
                    1.0,
                    Severity::Ticket
                ),
            ]
        );
        assert_eq!(
            settings(&format!(
                r#"{{{PROM}, "slo": {{"target": 99}}, "alerts": "workbook"}}"#
            ))?
            .alerts
            .len(),
            4
        );
        // Without a target, or with nothing measuring errors, no alerts.
        assert!(settings(PROM_OBJ)?.alerts.is_empty());
        let s = settings(
            r#"{"source": {"prometheus": {"address": "http://p", "queries": {"budget": "b"}}},
                "slo": {"target": 99}, "slo-period": "7d"}"#,
        )?;
        assert!(s.alerts.is_empty());
        assert_eq!(s.period, Duration::from_secs(7 * 86400));
        Ok(())
    }

    #[test]
    fn a_list_of_alerts() -> Result<(), StageError> {
        let s = settings(&format!(
            r#"{{{PROM}, "slo": {{"target": 99}}, "alerts": [
                {{"long": "10s", "short": "2s", "factor": 5, "severity": "page"}},
                {{"long": "10s", "short": "2s", "factor": 2, "severity": "ticket"}},
                {{"long": "10s", "short": "2s", "factor": 3}}]}}"#
        ))?;
        let names: Vec<&str> = s.alerts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "burn-rate-page-10s-2s",
                "burn-rate-ticket-10s-2s",
                "burn-rate-page-10s-2s-3"
            ]
        );
        assert_eq!(s.alerts[2].severity, Severity::Page);
        Ok(())
    }

    #[test]
    fn bad_alerts_name_the_key() {
        let t = r#""slo": {"target": 99}"#;
        let e = config_error(&format!(
            r#"{{{PROM}, {t}, "alerts": [{{"long": "1h", "short": "5m", "factor": 2, "severity": "sms"}}]}}"#
        ));
        assert!(
            e.starts_with("with.alerts[0].severity: unknown variant `sms`"),
            "{e}"
        );
        let e = config_error(&format!(
            r#"{{{PROM}, {t}, "alerts": [{{"long": "1h", "short": "5m"}}]}}"#
        ));
        assert!(
            e.starts_with("with.alerts[0]: missing field `factor`"),
            "{e}"
        );
        let e = config_error(&format!(
            r#"{{{PROM}, {t}, "alerts": [{{"long": "1h", "short": "5m", "factor": 1}}, {{"long": "5m", "short": "1h", "factor": 1}}]}}"#
        ));
        assert!(
            e.starts_with("with.alerts[1].short: 1h is longer than long 5m"),
            "{e}"
        );
        let e = config_error(&format!(
            r#"{{{PROM}, {t}, "alerts": [{{"long": "1h", "short": "5m", "factor": 0}}]}}"#
        ));
        assert!(
            e.starts_with("with.alerts[0].factor: 0 must be above zero"),
            "{e}"
        );
        let e = config_error(&format!(r#"{{{PROM}, {t}, "alerts": []}}"#));
        assert!(e.starts_with("with.alerts: empty"), "{e}");
        let e = config_error(&format!(r#"{{{PROM}, {t}, "alerts": "google"}}"#));
        assert!(
            e.starts_with("with.alerts: `google` is not a preset"),
            "{e}"
        );
        let e = config_error(&format!(
            r#"{{{PROM}, {t}, "alerts": "workbook", "burn-rate": {{}}}}"#
        ));
        assert!(
            e.starts_with("with.alerts: also given with.burn-rate"),
            "{e}"
        );
        let e = config_error(&format!(r#"{{{PROM}, "alerts": "workbook"}}"#));
        assert!(e.starts_with("with.alerts: needs with.slo.target"), "{e}");
        let e = config_error(&format!(r#"{{{PROM}, {t}, "slo-period": "0s"}}"#));
        assert!(
            e.starts_with("with.slo-period: must be longer than zero"),
            "{e}"
        );
        let e = config_error(
            r#"{"source": {"prometheus": {"address": "http://p", "queries": {"budget": ""}}}}"#,
        );
        assert!(
            e.starts_with("with.source.prometheus.queries.budget: empty"),
            "{e}"
        );
    }

    #[test]
    fn schema_is_json() -> Result<(), serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(SCHEMA)?;
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(v["required"][0], "source");
        Ok(())
    }
}
