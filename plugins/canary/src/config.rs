//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::time::Duration;

use serde::Deserialize;
use sluice_delivery::TargetConfig;
use sluice_sdk::values::ConfigDuration;
use sluice_sdk::{Context, StageError};

use crate::analysis::{fmt_num, MetricSpec};
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
    /// Argo's `strategy.canary.analysis`: metrics measured while the steps
    /// run.
    #[serde(default)]
    pub background_analysis: Option<BackgroundWire>,
}

/// `background-analysis:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackgroundWire {
    /// The step at which measuring starts (default 0).
    #[serde(default)]
    pub starting_step: Option<u32>,
    /// Default time between measurements of a metric.
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Wait before the first measurement.
    #[serde(default)]
    pub initial_delay: Option<ConfigDuration>,
    /// Metrics (without `count` they measure until the steps end).
    #[serde(default)]
    pub metrics: Vec<MetricWire>,
    /// A workspace file holding the metrics instead.
    #[serde(default)]
    pub template: Option<String>,
    /// Values for the template's `{{args.<name>}}`.
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
}

/// One step: exactly one of `set-weight`, `pause`, `analysis`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum StepWire {
    /// Canary traffic percentage.
    SetWeight(i64),
    /// Wait.
    Pause(PauseWire),
    /// Analyse (boxed: far larger than the other steps).
    Analysis(Box<AnalysisWire>),
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
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnalysisWire {
    /// Argo-style metrics.
    #[serde(default)]
    pub metrics: Vec<MetricWire>,
    /// Kayenta-style baseline-vs-canary judge.
    #[serde(default)]
    pub judge: Option<JudgeWire>,
    /// Argo's `initialDelay`: wait before the first measurement.
    #[serde(default)]
    pub initial_delay: Option<ConfigDuration>,
    /// A workspace file holding the analysis instead (Argo's
    /// `templateName`).
    #[serde(default)]
    pub template: Option<String>,
    /// Values for the template's `{{args.<name>}}` (Argo's `args`).
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
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
    /// Measured and reported, never decides (Argo's `dryRun`).
    #[serde(default)]
    pub dry_run: Option<bool>,
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
    /// Kayenta's `scoreThresholds`: `pass` and `marginal` (instead of the
    /// two keys above).
    #[serde(default)]
    pub score: Option<ScoreWire>,
    /// Kayenta's weighted metric groups: group → weight (summing to 100).
    #[serde(default)]
    pub groups: Option<BTreeMap<String, f64>>,
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

/// `judge.score`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScoreWire {
    /// Passing score.
    #[serde(default)]
    pub pass: Option<f64>,
    /// Marginal score.
    #[serde(default)]
    pub marginal: Option<f64>,
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
    /// The weighted group (`judge.groups`) it counts in.
    #[serde(default)]
    pub group: Option<String>,
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
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Metrics with their providers.
    pub metrics: Vec<(MetricSpec, Provider)>,
    /// The judge.
    pub judge: Option<JudgeSpec>,
    /// Wait before the first measurement.
    pub initial_delay: Duration,
    /// The template file it came from, if any.
    pub template: Option<String>,
}

/// A validated `background-analysis`.
#[derive(Debug, Clone)]
pub struct BackgroundSpec {
    /// First step during which it measures.
    pub starting_step: usize,
    /// Wait before the first measurement.
    pub initial_delay: Duration,
    /// Metrics (`count` `u32::MAX` when not given: until the steps end).
    pub metrics: Vec<(MetricSpec, Provider)>,
    /// The template file it came from, if any.
    pub template: Option<String>,
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
    /// Weighted groups (empty: every metric counts the same).
    pub groups: Vec<(String, f64)>,
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
    /// Metrics measured while the steps run.
    pub background: Option<BackgroundSpec>,
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
    /// Reads and validates the stage's `with:`; analysis templates are read
    /// from the workspace.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate_in(ctx.config()?, Some(&ctx.workspace()))
    }

    /// Checks what serde cannot (templates are refused: no workspace).
    pub fn validate(c: Config) -> Result<Self, StageError> {
        Self::validate_in(c, None)
    }

    /// Checks what serde cannot; `workspace` is where templates are read.
    pub fn validate_in(c: Config, workspace: Option<&Path>) -> Result<Self, StageError> {
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
            .map(|(i, s)| step(&format!("with.steps[{i}]"), s, workspace))
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
        let background = c
            .background_analysis
            .map(|b| background("with.background-analysis", b, steps.len(), workspace))
            .transpose()?;
        Ok(Self {
            target: c.target,
            steps,
            promote: c.promote.unwrap_or(true),
            background,
        })
    }
}

fn background(
    key: &str,
    b: BackgroundWire,
    n_steps: usize,
    workspace: Option<&Path>,
) -> Result<BackgroundSpec, StageError> {
    let starting_step = b.starting_step.unwrap_or(0) as usize;
    if starting_step >= n_steps {
        return Err(bad(
            &format!("{key}.starting-step"),
            format!(
                "{starting_step} is past the last step ({}); steps count from 0",
                n_steps - 1
            ),
        ));
    }
    let (metrics, template, mkey) = match b.template {
        Some(path) => {
            if !b.metrics.is_empty() {
                return Err(bad(
                    &format!("{key}.template"),
                    "given together with `metrics`; use one: the template holds the metrics",
                ));
            }
            let wire = load_template(key, &path, &b.args, workspace)?;
            if wire.judge.is_some() {
                return Err(bad(
                    &format!("{key}.template"),
                    format!(
                        "`{path}` has a `judge`, which a background analysis cannot run (it \
                        measures metrics between steps); use a template with metrics only"
                    ),
                ));
            }
            let mkey = format!("{key}.template({path})");
            (wire.metrics, Some(path), mkey)
        }
        None => {
            no_args(key, &b.args)?;
            (b.metrics, None, key.to_string())
        }
    };
    if metrics.is_empty() {
        return Err(bad(
            &format!("{mkey}.metrics"),
            "empty; list the metrics to measure while the steps run",
        ));
    }
    let default_interval = b.interval;
    let mut names = Vec::new();
    let mut specs = Vec::new();
    for (i, mut m) in metrics.into_iter().enumerate() {
        let k = format!("{mkey}.metrics[{i}]");
        check_name(&format!("{k}.name"), &m.name)?;
        if names.contains(&m.name) {
            return Err(bad(
                &format!("{k}.name"),
                format!("`{}` is used twice; names must be unique", m.name),
            ));
        }
        names.push(m.name.clone());
        m.interval = m.interval.or(default_interval);
        match m.interval {
            Some(d) if !d.get().is_zero() => {}
            _ => {
                return Err(bad(
                    &format!("{k}.interval"),
                    "a background metric needs a non-zero interval (here or \
                    `with.background-analysis.interval`), e.g. `5s`",
                ))
            }
        }
        let unlimited = m.count.is_none();
        let (mut spec, provider) = metric(&k, m)?;
        if unlimited {
            spec.count = u32::MAX;
        }
        specs.push((spec, provider));
    }
    Ok(BackgroundSpec {
        starting_step,
        initial_delay: b.initial_delay.map_or(Duration::ZERO, ConfigDuration::get),
        metrics: specs,
        template,
    })
}

fn no_args(key: &str, args: &BTreeMap<String, serde_json::Value>) -> Result<(), StageError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(bad(
            &format!("{key}.args"),
            "given without `template`; args fill a template's `{{args.<name>}}`, so add \
            `template: <file>` or remove `args`",
        ))
    }
}

/// The `{{args.<name>}}` placeholders of `text`, in order.
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let Some(close) = text[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        let inner = text[open + 2..close].trim();
        if let Some(name) = inner.strip_prefix("args.") {
            out.push((open..close + 2, name.trim().to_string()));
        }
        from = close + 2;
    }
    out
}

fn collect_names(v: &serde_json::Value, names: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            for (_, n) in placeholders(s) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_names(x, names)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_names(x, names)),
        _ => {}
    }
}

/// Replaces `{{args.<name>}}` in every string of `v`. A string that is one
/// placeholder and nothing else takes the argument's type when it is a
/// number or a boolean, so that `count: "{{args.count}}"` is a number.
pub fn substitute(v: &mut serde_json::Value, args: &BTreeMap<String, String>) {
    match v {
        serde_json::Value::String(s) => {
            let found = placeholders(s);
            if found.is_empty() {
                return;
            }
            if let [(range, name)] = found.as_slice() {
                if range.start == 0 && range.end == s.len() {
                    if let Some(a) = args.get(name) {
                        *v = match serde_json::from_str::<serde_json::Value>(a) {
                            Ok(t @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                                t
                            }
                            _ => serde_json::Value::String(a.clone()),
                        };
                        return;
                    }
                }
            }
            let mut out = String::new();
            let mut last = 0;
            for (range, name) in found {
                out.push_str(&s[last..range.start]);
                match args.get(&name) {
                    Some(a) => out.push_str(a),
                    None => out.push_str(&s[range.clone()]),
                }
                last = range.end;
            }
            out.push_str(&s[last..]);
            *s = out;
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, args)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| substitute(x, args)),
        _ => {}
    }
}

/// Reads the template `path` (relative to the workspace), fills in `args`
/// and parses it as an analysis. `key` is the `with.` path of the step.
fn load_template(
    key: &str,
    path: &str,
    args: &BTreeMap<String, serde_json::Value>,
    workspace: Option<&Path>,
) -> Result<AnalysisWire, StageError> {
    let tkey = format!("{key}.template");
    let rel = Path::new(path);
    if path.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(
            &tkey,
            format!(
                "`{path}` must be a relative path inside the workspace (no leading `/`, no \
                `..`), e.g. `analysis/error-rate.yaml`"
            ),
        ));
    }
    let Some(ws) = workspace else {
        return Err(bad(
            &tkey,
            "templates are read from the workspace, which is not available here",
        ));
    };
    let text = match std::fs::read_to_string(ws.join(rel)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(
                &tkey,
                format!(
                    "`{path}` does not exist in the workspace; create it (it holds the keys of an \
                    inline analysis: metrics, judge, initial-delay) or fix the path"
                ),
            ))
        }
        Err(e) => {
            return Err(bad(
                &tkey,
                format!(
                    "cannot read `{path}`: {e}; the stage needs `grants.workspace: read` (or \
                    write) and the file must be a readable text file"
                ),
            ))
        }
    };
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        bad(
            &tkey,
            format!("`{path}` is not valid YAML: {e}; fix the file"),
        )
    })?;
    let mut used = Vec::new();
    collect_names(&doc, &mut used);
    used.sort();
    let mut values = BTreeMap::new();
    for (name, v) in args {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(bad(
                    &format!("{key}.args.{name}"),
                    "must be a string, number or boolean (it replaces text in the template)",
                ))
            }
        };
        if !used.contains(name) {
            let uses = if used.is_empty() {
                "none".to_string()
            } else {
                used.join(", ")
            };
            return Err(bad(
                &format!("{key}.args.{name}"),
                format!(
                    "`{path}` has no `{{{{args.{name}}}}}`, so this argument would be ignored; \
                    remove it or fix the name (the template uses: {uses})"
                ),
            ));
        }
        values.insert(name.clone(), text);
    }
    if let Some(missing) = used.iter().find(|n| !values.contains_key(*n)) {
        return Err(bad(
            &format!("{key}.args"),
            format!(
                "`{path}` uses `{{{{args.{missing}}}}}` but this step gives no `{missing}`; add \
                it, e.g. `args: {{ {missing}: <value> }}`"
            ),
        ));
    }
    substitute(&mut doc, &values);
    let wire: AnalysisWire = serde_json::from_value(doc).map_err(|e| {
        bad(
            &tkey,
            format!(
                "`{path}` is not a valid analysis: {e}; a template holds the keys of an inline \
                analysis (metrics, judge, initial-delay)"
            ),
        )
    })?;
    if wire.template.is_some() || !wire.args.is_empty() {
        return Err(bad(
            &tkey,
            format!(
                "`{path}` has `template` or `args` itself; templates do not nest, so copy the \
                other template's metrics into it"
            ),
        ));
    }
    Ok(wire)
}

fn step(key: &str, s: StepWire, workspace: Option<&Path>) -> Result<Step, StageError> {
    match s {
        StepWire::SetWeight(w) => match u32::try_from(w) {
            Ok(w) if w <= 100 => Ok(Step::SetWeight(w)),
            _ => Err(bad(
                &format!("{key}.set-weight"),
                format!("{w} is not a percentage; use 0 to 100"),
            )),
        },
        StepWire::Pause(p) => Ok(Step::Pause(p.duration.map(ConfigDuration::get))),
        StepWire::Analysis(a) => {
            let a = *a;
            let key = format!("{key}.analysis");
            match a.template.clone() {
                Some(path) => {
                    if !a.metrics.is_empty() || a.judge.is_some() {
                        return Err(bad(
                            &format!("{key}.template"),
                            "given together with `metrics` or `judge`; use one: the template \
                            holds the analysis",
                        ));
                    }
                    let wire = load_template(&key, &path, &a.args, workspace)?;
                    let mut an = analysis(&format!("{key}.template({path})"), wire)?;
                    // The step's own initial-delay wins over the template's.
                    if let Some(d) = a.initial_delay {
                        an.initial_delay = d.get();
                    }
                    an.template = Some(path);
                    Ok(Step::Analysis(an))
                }
                None => {
                    no_args(&key, &a.args)?;
                    analysis(&key, a).map(Step::Analysis)
                }
            }
        }
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
    Ok(Analysis {
        metrics,
        judge,
        initial_delay: a.initial_delay.map_or(Duration::ZERO, ConfigDuration::get),
        template: None,
    })
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
        dry_run: m.dry_run.unwrap_or(false),
    };
    Ok((spec, provider))
}

fn judge(k: &str, j: JudgeWire, taken: &[String]) -> Result<JudgeSpec, StageError> {
    let d = Thresholds::default();
    let sw = j.score.unwrap_or_default();
    for (name, a, b) in [
        ("pass", j.pass, sw.pass),
        ("marginal", j.marginal, sw.marginal),
    ] {
        if a.is_some() && b.is_some() {
            return Err(bad(
                &format!("{k}.score.{name}"),
                format!("given twice (also `{k}.{name}`); keep one"),
            ));
        }
    }
    let thresholds = Thresholds {
        alpha: j.alpha.unwrap_or(d.alpha),
        pass: j.pass.or(sw.pass).unwrap_or(d.pass),
        marginal: j.marginal.or(sw.marginal).unwrap_or(d.marginal),
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
                group: None,
            },
            JudgeMetricWire {
                name: "errors".into(),
                sample: SampleKind::Errors,
                direction: None,
                effect: None,
                max_effect: None,
                critical: None,
                group: None,
            },
        ]
    });
    let groups: Vec<(String, f64)> = j.groups.unwrap_or_default().into_iter().collect();
    for (g, w) in &groups {
        check_name(&format!("{k}.groups.{g}"), g)?;
        if !(w.is_finite() && *w > 0.0) {
            return Err(bad(
                &format!("{k}.groups.{g}"),
                format!("{w} is not a weight; use a positive number (weights sum to 100)"),
            ));
        }
    }
    let sum: f64 = groups.iter().map(|(_, w)| w).sum();
    if !groups.is_empty() && (sum - 100.0).abs() > 1e-6 {
        return Err(bad(
            &format!("{k}.groups"),
            format!(
                "the weights sum to {}, not 100; they are each group's share of the score, e.g.                  `{{errors: 60, latency: 40}}`",
                fmt_num(sum)
            ),
        ));
    }
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
        match (&m.group, groups.is_empty()) {
            (Some(g), true) => {
                return Err(bad(
                    &format!("{mk}.group"),
                    format!(
                        "`{g}` but `{k}.groups` is not set; give the groups' weights, e.g.                          `groups: {{{g}: 100}}`, or remove `group`"
                    ),
                ))
            }
            (Some(g), false) if !groups.iter().any(|(n, _)| n == g) => {
                let known: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
                return Err(bad(
                    &format!("{mk}.group"),
                    format!(
                        "`{g}` is not in `{k}.groups` ({}); add it there with a weight or fix \
                        the name",
                        known.join(", ")
                    ),
                ));
            }
            (None, false) => {
                return Err(bad(
                    &format!("{mk}.group"),
                    format!(
                        "missing: with `{k}.groups` every judge metric names its group (one of                          {})",
                        groups
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            _ => {}
        }
        rules.push((
            MetricRule {
                name: m.name,
                direction: m.direction.unwrap_or(Direction::Increase),
                center: m.effect.unwrap_or_default(),
                max_effect: m.max_effect,
                critical: m.critical.unwrap_or(false),
                group: m.group,
            },
            m.sample,
        ));
    }
    for (g, _) in &groups {
        if !rules
            .iter()
            .any(|(r, _)| r.group.as_deref() == Some(g.as_str()))
        {
            return Err(bad(
                &format!("{k}.groups.{g}"),
                "no judge metric is in this group; give one `group: <name>` or remove the group",
            ));
        }
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
        groups,
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

    fn in_ws(ws: &Path, json: &str) -> Result<Settings, String> {
        let c: Config = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::validate_in(c, Some(ws)).map_err(|e| e.message().to_string())
    }

    const TEMPLATE: &str = r#"
initial-delay: 1s
metrics:
  - name: error-rate
    provider: { synthetic: { measure: error-rate, requests: "{{args.requests}}", path: "{{ args.path }}" } }
    success-condition: "result <= {{args.max-error}}"
    failure-limit: "{{args.limit}}"
"#;

    #[test]
    fn template_args_are_substituted() {
        let ws = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(ws.path().join("analysis")).expect("dir");
        std::fs::write(ws.path().join("analysis/err.yaml"), TEMPLATE).expect("write");
        let step = |args: &str| {
            format!(
                r#"{{{TARGET}, "steps": [{{"analysis": {{"template": "analysis/err.yaml", "args": {args}}}}}]}}"#
            )
        };
        let s = in_ws(
            ws.path(),
            &step(r#"{"path": "/quote", "max-error": "0.005", "requests": 40, "limit": 2}"#),
        )
        .expect("valid");
        let Step::Analysis(a) = &s.steps[0] else {
            panic!("analysis")
        };
        assert_eq!(a.template.as_deref(), Some("analysis/err.yaml"));
        assert_eq!(a.initial_delay, Duration::from_secs(1));
        let (m, p) = &a.metrics[0];
        assert_eq!(m.success_text.as_deref(), Some("result <= 0.005"));
        assert_eq!(m.failure_limit, 2);
        assert!(
            matches!(p, Provider::Synthetic { path, requests: 40, .. } if path == "/quote"),
            "{p:?}"
        );

        let e = |args: &str| in_ws(ws.path(), &step(args)).expect_err("invalid");
        let m = e(r#"{"path": "/quote", "max-error": "0.005", "requests": 40}"#);
        assert!(
            m.starts_with("with.steps[0].analysis.args: `analysis/err.yaml` uses `{{args.limit}}`"),
            "{m}"
        );
        let m = e(r#"{"path": "/q", "max-error": 1, "requests": 4, "limit": 1, "typo": 1}"#);
        assert!(
            m.starts_with(
                "with.steps[0].analysis.args.typo: `analysis/err.yaml` has no `{{args.typo}}`"
            ) && m.contains("uses: limit, max-error, path, requests"),
            "{m}"
        );
        // A bad value shows where in the template it went.
        let m = e(r#"{"path": "quote", "max-error": 1, "requests": 4, "limit": 1}"#);
        assert!(
            m.starts_with("with.steps[0].analysis.template(analysis/err.yaml).metrics[0].provider.synthetic.path"),
            "{m}"
        );
    }

    #[test]
    fn template_errors_name_the_step_file_and_fix() {
        let ws = tempfile::tempdir().expect("tempdir");
        std::fs::write(ws.path().join("bad.yaml"), "metrics: [{name: x}]\n").expect("write");
        std::fs::write(ws.path().join("judge.yaml"), "judge: {}\n").expect("write");
        let e = |analysis: &str| {
            in_ws(
                ws.path(),
                &format!(
                    r#"{{{TARGET}, "steps": [{{"set-weight": 5}}, {{"analysis": {analysis}}}]}}"#
                ),
            )
            .expect_err("invalid")
        };
        let m = e(r#"{"template": "missing.yaml"}"#);
        assert!(
            m.starts_with("with.steps[1].analysis.template: `missing.yaml` does not exist")
                && m.contains("create it"),
            "{m}"
        );
        let m = e(r#"{"template": "bad.yaml"}"#);
        assert!(
            m.starts_with("with.steps[1].analysis.template: `bad.yaml` is not a valid analysis")
                && m.contains("provider"),
            "{m}"
        );
        for path in ["../x.yaml", "/etc/passwd", ""] {
            let m = e(&format!(r#"{{"template": "{path}"}}"#));
            assert!(
                m.contains("must be a relative path inside the workspace"),
                "{m}"
            );
        }
        let m = e(r#"{"template": "judge.yaml", "judge": {}}"#);
        assert!(m.contains("given together with"), "{m}");
        let m = e(r#"{"judge": {}, "args": {"a": 1}}"#);
        assert!(
            m.starts_with("with.steps[1].analysis.args: given without `template`"),
            "{m}"
        );
        // Without a workspace (validate), templates cannot be read.
        let c: Config = serde_json::from_str(&format!(
            r#"{{{TARGET}, "steps": [{{"analysis": {{"template": "judge.yaml"}}}}]}}"#
        ))
        .expect("config");
        assert!(Settings::validate(c).is_err());
        let s = in_ws(
            ws.path(),
            &format!(
                r#"{{{TARGET}, "steps": [{{"analysis": {{"template": "judge.yaml", "initial-delay": "3s"}}}}]}}"#
            ),
        )
        .expect("valid");
        let Step::Analysis(a) = &s.steps[0] else {
            panic!("analysis")
        };
        assert_eq!(a.initial_delay, Duration::from_secs(3));
        assert!(a.judge.is_some());
    }

    #[test]
    fn substitution_keeps_other_placeholders() {
        let mut v = serde_json::json!({"q": "x{v=\"{{version}}\"} > {{args.t}}", "n": "{{args.n}}", "b": "{{args.b}}", "s": "{{args.s}}"});
        let args: BTreeMap<String, String> = [("t", "0.5"), ("n", "3"), ("b", "true"), ("s", "/p")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        substitute(&mut v, &args);
        assert_eq!(
            v,
            serde_json::json!({"q": "x{v=\"{{version}}\"} > 0.5", "n": 3, "b": true, "s": "/p"})
        );
    }

    const SYN: &str = r#""provider": {"synthetic": {"measure": "error-rate"}}"#;

    #[test]
    fn background_dry_run_and_initial_delay() {
        let s = settings(&format!(
            r#"{{{TARGET}, "steps": [{{"set-weight": 5}}, {{"pause": {{"duration": "1m"}}}},
                {{"analysis": {{"initial-delay": "2s", "metrics": [{{"name": "a", {SYN}, "dry-run": true}}]}}}}],
              "background-analysis": {{"starting-step": 1, "interval": "5s", "initial-delay": "1s",
                "metrics": [{{"name": "err", {SYN}, "failure-limit": 2}},
                            {{"name": "lat", {SYN}, "interval": "2s", "count": 3, "dry-run": true}}]}}}}"#
        ))
        .expect("valid");
        let b = s.background.as_ref().expect("background");
        assert_eq!(b.starting_step, 1);
        assert_eq!(b.initial_delay, Duration::from_secs(1));
        assert_eq!(b.metrics[0].0.interval, Duration::from_secs(5));
        assert_eq!(b.metrics[0].0.count, u32::MAX);
        assert_eq!(b.metrics[0].0.failure_limit, 2);
        assert_eq!(b.metrics[1].0.interval, Duration::from_secs(2));
        assert_eq!(b.metrics[1].0.count, 3);
        assert!(b.metrics[1].0.dry_run);
        let Step::Analysis(a) = &s.steps[2] else {
            panic!("analysis")
        };
        assert_eq!(a.initial_delay, Duration::from_secs(2));
        assert!(a.metrics[0].0.dry_run);

        let e = |bg: &str| {
            settings(&format!(
                r#"{{{TARGET}, "steps": [{{"set-weight": 5}}], "background-analysis": {bg}}}"#
            ))
            .expect_err("invalid")
        };
        let m = e(&format!(r#"{{"metrics": [{{"name": "a", {SYN}}}]}}"#));
        assert!(
            m.starts_with(
                "with.background-analysis.metrics[0].interval: a background metric needs"
            ),
            "{m}"
        );
        let m = e(&format!(
            r#"{{"starting-step": 1, "interval": "1s", "metrics": [{{"name": "a", {SYN}}}]}}"#
        ));
        assert!(
            m.starts_with("with.background-analysis.starting-step: 1 is past"),
            "{m}"
        );
        let m = e(r#"{"interval": "1s"}"#);
        assert!(
            m.starts_with("with.background-analysis.metrics: empty"),
            "{m}"
        );
        let m = e(r#"{"interval": "soon", "metrics": []}"#);
        assert!(m.contains("interval"), "{m}");
        let m = e(r#"{"interval": "1s", "args": {"a": 1}}"#);
        assert!(
            m.starts_with("with.background-analysis.args: given without `template`"),
            "{m}"
        );
    }

    #[test]
    fn background_from_a_template() {
        let ws = tempfile::tempdir().expect("tempdir");
        std::fs::write(ws.path().join("bg.yaml"), TEMPLATE).expect("write");
        std::fs::write(ws.path().join("judge.yaml"), "judge: {}\n").expect("write");
        let bg = |b: &str| {
            in_ws(
                ws.path(),
                &format!(
                    r#"{{{TARGET}, "steps": [{{"set-weight": 5}}], "background-analysis": {b}}}"#
                ),
            )
        };
        let s = bg(r#"{"interval": "2s", "template": "bg.yaml",
                       "args": {"path": "/", "max-error": 0.01, "requests": 5, "limit": 3}}"#)
        .expect("valid");
        let b = s.background.expect("background");
        assert_eq!(b.template.as_deref(), Some("bg.yaml"));
        assert_eq!(b.metrics[0].0.failure_limit, 3);
        assert_eq!(b.metrics[0].0.interval, Duration::from_secs(2));
        let m = bg(r#"{"interval": "2s", "template": "judge.yaml"}"#).expect_err("judge");
        assert!(
            m.starts_with("with.background-analysis.template: `judge.yaml` has a `judge`"),
            "{m}"
        );
    }

    #[test]
    fn groups_and_score_thresholds() {
        let judge = |j: &str| {
            settings(&format!(
                r#"{{{TARGET}, "steps": [{{"analysis": {{"judge": {j}}}}}]}}"#
            ))
        };
        let metrics = r#""metrics": [{"name": "errors", "sample": "errors", "group": "errors"},
                                     {"name": "p50", "sample": "latency", "effect": "median", "group": "latency"},
                                     {"name": "p95", "sample": "latency", "effect": "p95", "group": "latency"}]"#;
        let s = judge(&format!(
            r#"{{"groups": {{"errors": 60, "latency": 40}}, "score": {{"pass": 90, "marginal": 50}}, {metrics}}}"#
        ))
        .expect("valid");
        let Step::Analysis(a) = &s.steps[0] else {
            panic!("analysis")
        };
        let j = a.judge.as_ref().expect("judge");
        assert_eq!(
            j.groups,
            vec![("errors".to_string(), 60.0), ("latency".to_string(), 40.0)]
        );
        assert_eq!((j.thresholds.pass, j.thresholds.marginal), (90.0, 50.0));
        assert_eq!(j.rules[2].0.group.as_deref(), Some("latency"));
        // Without groups nothing changes.
        let j0 = judge("{}").expect("valid");
        let Step::Analysis(a) = &j0.steps[0] else {
            panic!("analysis")
        };
        assert!(a.judge.as_ref().expect("judge").groups.is_empty());

        let e = |j: &str| judge(j).expect_err("invalid");
        let m = e(&format!(
            r#"{{"groups": {{"errors": 50, "latency": 40}}, {metrics}}}"#
        ));
        assert!(
            m.starts_with("with.steps[0].analysis.judge.groups: the weights sum to 90"),
            "{m}"
        );
        let m = e(&format!(
            r#"{{"groups": {{"errors": 60, "latency": 40, "cpu": 0}}, {metrics}}}"#
        ));
        assert!(
            m.starts_with("with.steps[0].analysis.judge.groups.cpu: 0 is not a weight"),
            "{m}"
        );
        let m = e(r#"{"groups": {"errors": 100}}"#);
        assert!(m.contains("judge.metrics[0].group: missing"), "{m}");
        let m = e(r#"{"metrics": [{"name": "e", "sample": "errors", "group": "errors"}]}"#);
        assert!(
            m.contains("judge.metrics[0].group: `errors` but") && m.contains("groups"),
            "{m}"
        );
        let m = e(
            r#"{"groups": {"errors": 100}, "metrics": [{"name": "e", "sample": "errors", "group": "eror"}]}"#,
        );
        assert!(m.contains("`eror` is not in"), "{m}");
        let m = e(
            r#"{"groups": {"errors": 50, "latency": 50}, "metrics": [{"name": "e", "sample": "errors", "group": "errors"}]}"#,
        );
        assert!(
            m.starts_with("with.steps[0].analysis.judge.groups.latency: no judge metric"),
            "{m}"
        );
        let m = e(r#"{"pass": 90, "score": {"pass": 80}}"#);
        assert!(
            m.starts_with("with.steps[0].analysis.judge.score.pass: given twice"),
            "{m}"
        );
        let m = e(r#"{"score": {"pass": 50, "marginal": 60}}"#);
        assert!(
            m.starts_with("with.steps[0].analysis.judge.marginal"),
            "{m}"
        );
    }
}
