//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_delivery::TargetConfig;
use sluice_sdk::values::ConfigDuration;
use sluice_sdk::{Context, StageError};

use crate::analysis::MetricSpec;
use crate::expr::Condition;
use crate::judge::{Center, Direction, MetricRule, Thresholds};
use crate::load::Measure;

/// The JSON schema of `with:` (without `target`, which
/// [`sluice_delivery::schema_with_target`] inserts).
pub const SCHEMA: &str = include_str!("schema.json");

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The environment (docs/delivery.md).
    pub target: TargetConfig,
    /// The steps, in order.
    #[serde(default)]
    pub steps: Vec<StepWire>,
    /// Promote the candidate when every step passed (default true).
    #[serde(default)]
    pub promote: Option<bool>,
}

/// One step: exactly one of `set-weight`, `pause`, `analysis`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum StepWire {
    /// Canary traffic percentage.
    SetWeight(i64),
    /// Wait.
    Pause(PauseWire),
    /// Analyse.
    Analysis(AnalysisWire),
}

/// `pause:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseWire {
    /// How long; absent = until approved.
    #[serde(default)]
    pub duration: Option<ConfigDuration>,
}

/// `analysis:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AnalysisWire {
    /// Argo-style metrics.
    #[serde(default)]
    pub metrics: Vec<MetricWire>,
    /// Kayenta-style baseline-vs-canary judge.
    #[serde(default)]
    pub judge: Option<JudgeWire>,
}

/// One analysis metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricWire {
    /// Name.
    pub name: String,
    /// Where the value comes from.
    pub provider: ProviderWire,
    /// Condition for a successful measurement.
    #[serde(default)]
    pub success_condition: Option<String>,
    /// Condition for a failed measurement.
    #[serde(default)]
    pub failure_condition: Option<String>,
    /// Time between measurements.
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Number of measurements (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// Failed measurements tolerated (default 0).
    #[serde(default)]
    pub failure_limit: Option<u32>,
    /// Inconclusive measurements tolerated (default 0).
    #[serde(default)]
    pub inconclusive_limit: Option<u32>,
    /// Consecutive errors tolerated (default 4).
    #[serde(default)]
    pub consecutive_error_limit: Option<u32>,
}

/// `provider:`: exactly one key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum ProviderWire {
    /// Prometheus HTTP API.
    Prometheus(PrometheusWire),
    /// Scrape a page in Prometheus text format.
    #[serde(alias = "web")]
    Metrics(ScrapeWire),
    /// Requests the stage sends itself.
    Synthetic(SyntheticWire),
}

/// `provider.prometheus`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusWire {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub address: String,
    /// PromQL with `{{...}}` placeholders.
    pub query: String,
    /// Request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// `provider.metrics` (alias `web`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeWire {
    /// Page URL, with `{{...}}` placeholders.
    pub url: String,
    /// Sample name.
    pub metric: String,
    /// Labels a sample must have.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// Which slot synthetic requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The candidate slot.
    #[default]
    Canary,
    /// The stable slot.
    Baseline,
}

/// `provider.synthetic`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticWire {
    /// `error-rate`, `latency-mean`, `latency-p50`, `latency-p95`, `latency-p99`.
    pub measure: Measure,
    /// Requests per measurement (default 20).
    #[serde(default)]
    pub requests: Option<u32>,
    /// Path requested (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// `canary` (default) or `baseline`.
    #[serde(default)]
    pub side: Side,
    /// Request timeout (default 5s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// `judge:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JudgeWire {
    /// Metrics to compare (default: latency by median with max-effect 1.5,
    /// and errors, both `increase`).
    #[serde(default)]
    pub metrics: Option<Vec<JudgeMetricWire>>,
    /// Significance level (default 0.05).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Passing score (default 95).
    #[serde(default)]
    pub pass: Option<f64>,
    /// Marginal score (default 75).
    #[serde(default)]
    pub marginal: Option<f64>,
    /// Synthetic load.
    #[serde(default)]
    pub load: Option<LoadWire>,
    /// Where samples come from (default `synthetic`).
    #[serde(default)]
    pub source: Option<JudgeSource>,
    /// `access-log`: how long to collect real traffic.
    #[serde(default)]
    pub window: Option<ConfigDuration>,
}

/// Where the judge's samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeSource {
    /// The stage's own requests to both slots.
    #[default]
    Synthetic,
    /// Real traffic from an `nginx` target's JSON access log.
    AccessLog,
}

/// Which samples a judge metric uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SampleKind {
    /// Latency of each request, ms.
    Latency,
    /// 1 per failed request, 0 per good one.
    Errors,
}

/// One judge metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JudgeMetricWire {
    /// Name.
    pub name: String,
    /// `latency` or `errors`.
    pub sample: SampleKind,
    /// Which change is bad (default `increase`).
    #[serde(default)]
    pub direction: Option<Direction>,
    /// `mean` (default), `median`, or `p95` (latency only: ratio of 95th
    /// percentiles against `max-effect`, default 1.1, with no test).
    #[serde(default)]
    pub effect: Option<Center>,
    /// Largest tolerated ratio.
    #[serde(default)]
    pub max_effect: Option<f64>,
    /// A failure makes the score 0.
    #[serde(default)]
    pub critical: Option<bool>,
}

/// `judge.load`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadWire {
    /// Requests per side (default 100).
    #[serde(default)]
    pub requests: Option<u32>,
    /// Path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Request timeout (default 5s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Canary gets this percentage.
    SetWeight(u32),
    /// Sleep this long, or wait for approval.
    Pause(Option<Duration>),
    /// Analyse.
    Analysis(Analysis),
}

/// A validated analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Metrics with their providers.
    pub metrics: Vec<(MetricSpec, Provider)>,
    /// The judge.
    pub judge: Option<JudgeSpec>,
}

/// A validated provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// Prometheus `/api/v1/query`.
    Prometheus {
        /// Base URL.
        address: String,
        /// Query template.
        query: String,
        /// Timeout.
        timeout: Duration,
    },
    /// Scrape a text-format page.
    Scrape {
        /// URL template.
        url: String,
        /// Sample name.
        metric: String,
        /// Label matchers.
        labels: BTreeMap<String, String>,
        /// Timeout.
        timeout: Duration,
    },
    /// Synthetic requests.
    Synthetic {
        /// What to compute.
        measure: Measure,
        /// Requests per measurement.
        requests: u32,
        /// Path.
        path: String,
        /// Which slot.
        side: Side,
        /// Timeout.
        timeout: Duration,
    },
}

/// Synthetic load of the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Requests per side.
    pub requests: u32,
    /// Path.
    pub path: String,
    /// Timeout.
    pub timeout: Duration,
}

/// A validated judge.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeSpec {
    /// alpha, pass, marginal.
    pub thresholds: Thresholds,
    /// Per metric: rule and sample kind.
    pub rules: Vec<(MetricRule, SampleKind)>,
    /// The load.
    pub load: LoadSpec,
    /// Where samples come from.
    pub source: JudgeSource,
    /// `access-log`: wait this long and read only the lines written
    /// meanwhile; `None` reads the whole log.
    pub window: Option<Duration>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The environment.
    pub target: TargetConfig,
    /// Steps.
    pub steps: Vec<Step>,
    /// Promote at the end.
    pub promote: bool,
}

fn bad(key: &str, msg: impl std::fmt::Display) -> StageError {
    StageError::invalid_config(format!("{key}: {msg}"))
}

fn check_name(key: &str, name: &str) -> Result<(), StageError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(bad(
            key,
            format!(
                "`{name}` must be lowercase letters, digits, `-` or `_` (it becomes part of the \
                 metric name canary.<name>...)"
            ),
        ));
    }
    Ok(())
}

fn check_url(key: &str, url: &str) -> Result<(), StageError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad(
            key,
            format!("`{url}` is not an http:// or https:// URL"),
        ));
    }
    Ok(())
}

fn check_path(key: &str, path: Option<String>) -> Result<String, StageError> {
    let p = path.unwrap_or_else(|| "/".into());
    if !p.starts_with('/') {
        return Err(bad(
            key,
            format!("`{p}` must start with `/`, e.g. `/health`"),
        ));
    }
    Ok(p)
}

impl Settings {
    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        c.target.validate("with.target")?;
        let has_log = c.target.access_log.is_some();
        if c.steps.is_empty() {
            return Err(bad(
                "with.steps",
                "empty; list at least one step, e.g. `- set-weight: 20`, `- analysis: {judge: {}}`",
            ));
        }
        let steps = c
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| step(&format!("with.steps[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, s) in steps.iter().enumerate() {
            if let Step::Analysis(Analysis { judge: Some(j), .. }) = s {
                if j.source == JudgeSource::AccessLog && !has_log {
                    return Err(bad(
                        &format!("with.steps[{i}].analysis.judge.source"),
                        "`access-log` needs a target with an access log: `kind: nginx` and \
                         `access-log: <path in the workspace>`; or use `source: synthetic`",
                    ));
                }
            }
        }
        Ok(Self {
            target: c.target,
            steps,
            promote: c.promote.unwrap_or(true),
        })
    }
}

fn step(key: &str, s: StepWire) -> Result<Step, StageError> {
    match s {
        StepWire::SetWeight(w) => match u32::try_from(w) {
            Ok(w) if w <= 100 => Ok(Step::SetWeight(w)),
            _ => Err(bad(
                &format!("{key}.set-weight"),
                format!("{w} is not a percentage; use 0 to 100"),
            )),
        },
        StepWire::Pause(p) => Ok(Step::Pause(p.duration.map(ConfigDuration::get))),
        StepWire::Analysis(a) => analysis(&format!("{key}.analysis"), a).map(Step::Analysis),
    }
}

fn analysis(key: &str, a: AnalysisWire) -> Result<Analysis, StageError> {
    if a.metrics.is_empty() && a.judge.is_none() {
        return Err(bad(
            key,
            "has neither `metrics` nor `judge`; add one, e.g. `judge: {}` to compare canary \
             with baseline under synthetic load",
        ));
    }
    let mut names = Vec::new();
    let mut metrics = Vec::new();
    for (i, m) in a.metrics.into_iter().enumerate() {
        let k = format!("{key}.metrics[{i}]");
        check_name(&format!("{k}.name"), &m.name)?;
        if names.contains(&m.name) {
            return Err(bad(
                &format!("{k}.name"),
                format!("`{}` is used twice; names must be unique", m.name),
            ));
        }
        names.push(m.name.clone());
        metrics.push(metric(&k, m)?);
    }
    let judge = a
        .judge
        .map(|j| judge(&format!("{key}.judge"), j, &names))
        .transpose()?;
    Ok(Analysis { metrics, judge })
}

fn metric(k: &str, m: MetricWire) -> Result<(MetricSpec, Provider), StageError> {
    let cond = |name: &str, text: &Option<String>| -> Result<Option<Condition>, StageError> {
        text.as_deref()
            .map(|t| {
                Condition::parse(t).map_err(|e| {
                    bad(
                        &format!("{k}.{name}"),
                        format!(
                            "`{t}`: {e}; write e.g. `result < 0.05` or `result[0] >= 0.95 && \
                             result[0] <= 1` (result, numbers, < <= > >= == !=, && || !, ())"
                        ),
                    )
                })
            })
            .transpose()
    };
    let success = cond("success-condition", &m.success_condition)?;
    let failure = cond("failure-condition", &m.failure_condition)?;
    let count = m.count.unwrap_or(1);
    if count == 0 {
        return Err(bad(&format!("{k}.count"), "must be at least 1"));
    }
    let interval = m.interval.map_or(Duration::ZERO, ConfigDuration::get);
    if count > 1 && m.interval.is_none() {
        return Err(bad(
            &format!("{k}.interval"),
            format!("required with `count: {count}`: the time between measurements, e.g. `10s`"),
        ));
    }
    let provider = match m.provider {
        ProviderWire::Prometheus(p) => {
            check_url(&format!("{k}.provider.prometheus.address"), &p.address)?;
            if p.query.trim().is_empty() {
                return Err(bad(&format!("{k}.provider.prometheus.query"), "is empty"));
            }
            Provider::Prometheus {
                address: p.address,
                query: p.query,
                timeout: p
                    .timeout
                    .map_or(Duration::from_secs(10), ConfigDuration::get),
            }
        }
        ProviderWire::Metrics(s) => {
            if !s.url.starts_with("{{") {
                check_url(&format!("{k}.provider.metrics.url"), &s.url)?;
            }
            Provider::Scrape {
                url: s.url,
                metric: s.metric,
                labels: s.labels,
                timeout: s
                    .timeout
                    .map_or(Duration::from_secs(10), ConfigDuration::get),
            }
        }
        ProviderWire::Synthetic(s) => Provider::Synthetic {
            measure: s.measure,
            requests: match s.requests.unwrap_or(20) {
                0 => {
                    return Err(bad(
                        &format!("{k}.provider.synthetic.requests"),
                        "must be at least 1",
                    ))
                }
                n => n,
            },
            path: check_path(&format!("{k}.provider.synthetic.path"), s.path)?,
            side: s.side,
            timeout: s
                .timeout
                .map_or(Duration::from_secs(5), ConfigDuration::get),
        },
    };
    let spec = MetricSpec {
        name: m.name,
        success,
        success_text: m.success_condition,
        failure,
        failure_text: m.failure_condition,
        interval,
        count,
        failure_limit: m.failure_limit.unwrap_or(0),
        inconclusive_limit: m.inconclusive_limit.unwrap_or(0),
        consecutive_error_limit: m.consecutive_error_limit.unwrap_or(4),
    };
    Ok((spec, provider))
}

fn judge(k: &str, j: JudgeWire, taken: &[String]) -> Result<JudgeSpec, StageError> {
    let d = Thresholds::default();
    let thresholds = Thresholds {
        alpha: j.alpha.unwrap_or(d.alpha),
        pass: j.pass.unwrap_or(d.pass),
        marginal: j.marginal.unwrap_or(d.marginal),
    };
    if !(thresholds.alpha > 0.0 && thresholds.alpha < 1.0) {
        return Err(bad(
            &format!("{k}.alpha"),
            "must be between 0 and 1 (exclusive), e.g. 0.05",
        ));
    }
    for (name, v) in [("pass", thresholds.pass), ("marginal", thresholds.marginal)] {
        if !(0.0..=100.0).contains(&v) {
            return Err(bad(&format!("{k}.{name}"), "must be a score from 0 to 100"));
        }
    }
    if thresholds.marginal > thresholds.pass {
        return Err(bad(
            &format!("{k}.marginal"),
            format!(
                "{} is above pass ({}); marginal must not exceed pass",
                thresholds.marginal, thresholds.pass
            ),
        ));
    }
    let wires = j.metrics.unwrap_or_else(|| {
        vec![
            // Loopback jitter between two identical servers is often
            // "significant"; only a real slowdown should fail by default.
            JudgeMetricWire {
                name: "latency".into(),
                sample: SampleKind::Latency,
                direction: None,
                effect: Some(Center::Median),
                max_effect: Some(1.5),
                critical: None,
            },
            JudgeMetricWire {
                name: "errors".into(),
                sample: SampleKind::Errors,
                direction: None,
                effect: None,
                max_effect: None,
                critical: None,
            },
        ]
    });
    if wires.is_empty() {
        return Err(bad(
            &format!("{k}.metrics"),
            "empty; leave it out for the default (latency and errors) or list metrics",
        ));
    }
    let mut names: Vec<String> = taken.to_vec();
    let mut rules = Vec::new();
    for (i, m) in wires.into_iter().enumerate() {
        let mk = format!("{k}.metrics[{i}]");
        check_name(&format!("{mk}.name"), &m.name)?;
        if names.contains(&m.name) {
            return Err(bad(
                &format!("{mk}.name"),
                format!(
                    "`{}` is used twice in this analysis; names must be unique",
                    m.name
                ),
            ));
        }
        names.push(m.name.clone());
        if m.sample == SampleKind::Errors && m.effect == Some(Center::Median) {
            return Err(bad(
                &format!("{mk}.effect"),
                "`median` of 0/1 error samples is 0 until half the requests fail, so it would \
                 hide a 30% error rate; remove `effect` (errors use the mean)",
            ));
        }
        if m.sample == SampleKind::Errors && m.effect == Some(Center::P95) {
            return Err(bad(
                &format!("{mk}.effect"),
                "`p95` of 0/1 error samples is 0 or 1, not a tail latency; remove `effect` \
                 (errors are compared as proportions with Fisher's exact test)",
            ));
        }
        if let Some(e) = m.max_effect {
            if !(e.is_finite() && e >= 1.0) {
                return Err(bad(
                    &format!("{mk}.max-effect"),
                    format!("{e} must be a ratio of at least 1, e.g. 1.2 for +20%"),
                ));
            }
        }
        rules.push((
            MetricRule {
                name: m.name,
                direction: m.direction.unwrap_or(Direction::Increase),
                center: m.effect.unwrap_or_default(),
                max_effect: m.max_effect,
                critical: m.critical.unwrap_or(false),
            },
            m.sample,
        ));
    }
    let lw = j.load.unwrap_or_default();
    let load = LoadSpec {
        requests: match lw.requests.unwrap_or(100) {
            n if n < 3 => {
                return Err(bad(
                    &format!("{k}.load.requests"),
                    format!("{n} is too few to compare; use at least 3 (20 or more is better)"),
                ))
            }
            n => n,
        },
        path: check_path(&format!("{k}.load.path"), lw.path)?,
        timeout: lw
            .timeout
            .map_or(Duration::from_secs(5), ConfigDuration::get),
    };
    let source = j.source.unwrap_or_default();
    let window = j.window.map(ConfigDuration::get);
    if window.is_some() && source != JudgeSource::AccessLog {
        return Err(bad(
            &format!("{k}.window"),
            "only applies to `source: access-log`; remove it or set the source",
        ));
    }
    Ok(JudgeSpec {
        thresholds,
        rules,
        load,
        source,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, String> {
        let ctx = Context::for_test("canary", json);
        Settings::from_context(&ctx).map_err(|e| e.message().to_string())
    }

    const TARGET: &str = r#""target": {"root": "env", "slots": {"blue": "http://127.0.0.1:1"}}"#;

    #[test]
    fn full_config_validates() {
        let s = settings(&format!(
            r#"{{{TARGET}, "steps": [
                {{"set-weight": 20}},
                {{"pause": {{"duration": "1s"}}}},
                {{"pause": {{}}}},
                {{"analysis": {{
                    "metrics": [{{"name": "err", "provider": {{"prometheus": {{"address": "http://p:9090", "query": "x{{v=\"{{{{version}}}}\"}}"}}}},
                                  "success-condition": "result < 0.05", "interval": "1s", "count": 3, "failure-limit": 1}},
                                {{"name": "up", "provider": {{"web": {{"url": "{{{{canary_url}}}}/metrics", "metric": "up"}}}}}},
                                {{"name": "syn", "provider": {{"synthetic": {{"measure": "latency-p95", "requests": 5}}}},
                                  "failure-condition": "result > 500"}}],
                    "judge": {{"alpha": 0.01, "load": {{"requests": 30, "path": "/work"}},
                               "metrics": [{{"name": "latency", "sample": "latency", "max-effect": 1.5, "effect": "median"}},
                                           {{"name": "tail", "sample": "latency", "effect": "p95"}}]}}
                }}}}
            ], "promote": false}}"#
        ))
        .expect("valid");
        assert_eq!(s.steps.len(), 4);
        assert!(!s.promote);
        assert!(matches!(s.steps[1], Step::Pause(Some(d)) if d == Duration::from_secs(1)));
        assert!(matches!(s.steps[2], Step::Pause(None)));
        let Step::Analysis(a) = &s.steps[3] else {
            panic!("analysis")
        };
        assert_eq!(a.metrics.len(), 3);
        assert_eq!(a.metrics[0].0.failure_limit, 1);
        let j = a.judge.as_ref().expect("judge");
        assert_eq!(j.thresholds.alpha, 0.01);
        assert_eq!(j.load.requests, 30);
        assert_eq!(j.rules[0].0.center, Center::Median);
        assert_eq!(j.rules[1].0.center, Center::P95);
        assert_eq!(j.rules[1].0.max_effect, None);
    }

    #[test]
    fn judge_defaults() {
        let s = settings(&format!(
            r#"{{{TARGET}, "steps": [{{"analysis": {{"judge": {{}}}}}}]}}"#
        ))
        .expect("valid");
        let Step::Analysis(a) = &s.steps[0] else {
            panic!("analysis")
        };
        let j = a.judge.as_ref().expect("judge");
        assert_eq!(j.thresholds, Thresholds::default());
        assert_eq!(j.load.requests, 100);
        assert_eq!(j.source, JudgeSource::Synthetic);
        let names: Vec<_> = j.rules.iter().map(|(r, k)| (r.name.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("latency", SampleKind::Latency),
                ("errors", SampleKind::Errors)
            ]
        );
        assert_eq!(j.rules[0].0.max_effect, Some(1.5));
        assert_eq!(j.rules[0].0.center, Center::Median);
        assert_eq!(j.rules[1].0.center, Center::Mean);
        assert!(s.promote);
    }

    #[test]
    fn errors_name_the_key() {
        let e = |steps: &str| {
            settings(&format!(r#"{{{TARGET}, "steps": {steps}}}"#)).expect_err("invalid")
        };
        assert!(e(r#"[]"#).starts_with("with.steps: empty"));
        assert!(e(r#"[{"set-weight": 120}]"#).starts_with("with.steps[0].set-weight: 120"));
        assert!(e(r#"[{"set-wieght": 1}]"#).contains("unknown variant"));
        assert!(e(r#"[{"analysis": {}}]"#).starts_with("with.steps[0].analysis: has neither"));
        let m = e(
            r#"[{"analysis": {"metrics": [{"name": "a", "provider": {"synthetic": {"measure": "error-rate"}}, "success-condition": "result <"}]}}]"#,
        );
        assert!(
            m.starts_with("with.steps[0].analysis.metrics[0].success-condition: `result <`"),
            "{m}"
        );
        let m = e(
            r#"[{"analysis": {"metrics": [{"name": "a", "provider": {"synthetic": {"measure": "error-rate"}}, "count": 3}]}}]"#,
        );
        assert!(m.contains(".interval: required"), "{m}");
        let m = e(r#"[{"analysis": {"judge": {"pass": 50, "marginal": 60}}}]"#);
        assert!(
            m.starts_with("with.steps[0].analysis.judge.marginal"),
            "{m}"
        );
        let m =
            e(r#"[{"analysis": {"judge": {"metrics": [{"name": "L", "sample": "latency"}]}}}]"#);
        assert!(m.contains("must be lowercase"), "{m}");
        let m = e(r#"[{"analysis": {"judge": {"source": "access-log"}}}]"#);
        assert!(m.starts_with("with.steps[0].analysis.judge.source"), "{m}");
        let m = e(r#"[{"analysis": {"judge": {"window": "5s"}}}]"#);
        assert!(m.starts_with("with.steps[0].analysis.judge.window"), "{m}");
        let m = e(
            r#"[{"analysis": {"judge": {"metrics": [{"name": "e", "sample": "errors", "effect": "median"}]}}}]"#,
        );
        assert!(m.contains("metrics[0].effect: `median` of 0/1"), "{m}");
        let m = e(
            r#"[{"analysis": {"judge": {"metrics": [{"name": "e", "sample": "errors", "effect": "p95"}]}}}]"#,
        );
        assert!(m.contains("metrics[0].effect: `p95` of 0/1"), "{m}");
        let m = e(r#"[{"pause": {"duration": "soon"}}]"#);
        assert!(m.starts_with("with.steps[0].pause.duration"), "{m}");
    }

    #[test]
    fn target_is_checked() {
        let e = settings(r#"{"target": {"kind": "local"}, "steps": [{"set-weight": 1}]}"#)
            .expect_err("no root");
        assert!(e.starts_with("with.target.root"), "{e}");
    }

    #[test]
    fn schema_is_json() {
        let v: serde_json::Value = serde_json::from_str(SCHEMA).expect("schema");
        assert_eq!(v["additionalProperties"], false);
    }
}
