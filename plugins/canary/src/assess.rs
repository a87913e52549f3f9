//! One `analysis` step: measures its metrics ([`crate::analysis`] with the
//! [`crate::providers`]), runs the judge on synthetic load
//! ([`crate::load`], [`crate::judge`]) and combines both into a
//! [`StepAnalysis`]: Failed/Error metrics or a failing judge abort, an
//! Inconclusive metric or a marginal judge pause, anything else passes.
//! When the metrics already failed, the judge is not run.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use sluice_delivery::nginx::{summarize_by_slot, UpstreamStats};
use sluice_sdk::{ResultExt, StageError};

use crate::analysis::{
    dry_run_failures, fmt_num, metric_json, run_metrics, Clock, MetricRun, Phase,
};
use crate::config::{Analysis, JudgeSource, JudgeSpec, SampleKind};
use crate::judge::{judge, Classification, Judgement};
use crate::load::{errors, generate, http_get, join, latencies, Load, Sample};
use crate::providers::{measure, Placeholders};

/// What an analysis can reach besides the providers' URLs.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Placeholder values (versions, slots, slot URLs).
    pub ph: Placeholders,
    /// The `nginx` target's access log, when configured.
    pub access_log: Option<PathBuf>,
    /// Slot name → URL, to map upstream addresses to slots.
    pub slots: BTreeMap<String, String>,
}
use crate::steps::StepAnalysis;

/// Runs the analysis of step `step`.
pub fn assess(
    step: usize,
    analysis: &Analysis,
    src: &Sources,
    clock: &mut dyn Clock,
) -> Result<StepAnalysis, StageError> {
    let ph = &src.ph;
    let specs = analysis.metrics.iter().map(|(s, _)| s.clone()).collect();
    let mut fatal: Option<StageError> = None;
    let (phase, runs) = run_metrics(specs, clock, |i| {
        if fatal.is_some() {
            return Err("stopped".into());
        }
        match measure(&analysis.metrics[i].1, ph) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().to_string();
                fatal = Some(e);
                Err(msg)
            }
        }
    });
    if let Some(e) = fatal {
        return Err(e);
    }
    let judgement = match (&analysis.judge, phase) {
        (Some(j), Phase::Successful | Phase::Inconclusive) => Some(match j.source {
            JudgeSource::Synthetic => run_judge(j, ph)?,
            JudgeSource::AccessLog => judge_access_log(j, src, clock)?,
        }),
        _ => None,
    };
    let mut r = combine(step, phase, &runs, judgement.as_ref());
    if let (Some(j), Some(judge)) = (&analysis.judge, r.details.get_mut("judge")) {
        // What the judge measured, for readers of canary-analysis.json
        // (remediate's action items name the path).
        judge["source"] = match j.source {
            JudgeSource::Synthetic => "synthetic",
            JudgeSource::AccessLog => "access-log",
        }
        .into();
        if j.source == JudgeSource::Synthetic {
            judge["path"] = j.load.path.clone().into();
        }
    }
    // The steps engine waited the initial delay before calling us.
    if !analysis.initial_delay.is_zero() || analysis.template.is_some() {
        let mut head = Vec::new();
        if !analysis.initial_delay.is_zero() {
            head.push(format!(
                "initial delay {}",
                humantime::format_duration(analysis.initial_delay)
            ));
        }
        if let Some(t) = &analysis.template {
            head.push(format!("template {t}"));
        }
        r.lines.insert(0, head.join(", "));
    }
    if let serde_json::Value::Object(o) = &mut r.details {
        o.insert(
            "initial_delay".into(),
            humantime::format_duration(analysis.initial_delay)
                .to_string()
                .into(),
        );
        o.insert("template".into(), serde_json::json!(analysis.template));
    }
    Ok(r)
}

/// Sends the judge's load and judges the samples.
pub fn run_judge(j: &JudgeSpec, ph: &Placeholders) -> Result<(Judgement, Load), StageError> {
    for (url, slot) in [
        (&ph.stable_url, &ph.stable_slot),
        (&ph.canary_url, &ph.canary_slot),
    ] {
        if url.is_empty() {
            return Err(StageError::invalid_config(format!(
                "with.target.slots.{slot}: missing; the judge sends synthetic load to the stable \
                 and candidate slots, so give their URLs, e.g. `{slot}: http://127.0.0.1:18101`"
            )));
        }
    }
    let base = join(&ph.stable_url, &j.load.path);
    let canary = join(&ph.canary_url, &j.load.path);
    sluice_sdk::info!(
        "judge: {} requests each to baseline {base} and canary {canary}",
        j.load.requests
    );
    let load = generate(
        j.load.requests,
        &base,
        Some(&canary),
        http_get(j.load.timeout),
    )?;
    if let Some(e) = &load.first_error {
        sluice_sdk::warn!("judge: some requests got no response, first: {e}");
    }
    Ok((judge_load(j, &load), load))
}

/// Size of `path` (0 when it does not exist yet).
fn log_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Reads `path` from byte `offset` on.
fn read_from(path: &std::path::Path, offset: u64) -> Result<String, StageError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    f.seek(SeekFrom::Start(offset))
        .with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Request samples of one upstream's statistics (error flags in no
/// particular order, which the rank test does not need).
pub fn samples_of(stats: Option<&UpstreamStats>) -> Vec<Sample> {
    let Some(s) = stats else { return Vec::new() };
    s.latencies_ms
        .iter()
        .enumerate()
        .map(|(i, &latency_ms)| Sample {
            latency_ms,
            error: (i as u64) < s.errors_5xx,
        })
        .collect()
}

/// Judges real traffic from the access log: the lines written during
/// `window` (the stage waits for it), or the whole log without one.
/// Fewer than 3 requests on a side makes the judge marginal (inconclusive),
/// not failing: no traffic is no evidence against the canary.
pub fn judge_access_log(
    j: &JudgeSpec,
    src: &Sources,
    clock: &mut dyn Clock,
) -> Result<(Judgement, Load), StageError> {
    let Some(path) = &src.access_log else {
        return Err(StageError::invalid_config(
            "with.target.access-log: missing; the judge's `source: access-log` reads it",
        ));
    };
    let offset = match j.window {
        Some(w) => {
            let at = log_len(path);
            sluice_sdk::info!(
                "judge: collecting traffic from {} for {}",
                path.display(),
                humantime::format_duration(w)
            );
            clock.sleep(w);
            at
        }
        None => 0,
    };
    let text = read_from(path, offset)?;
    let (stats, bad) = summarize_by_slot(&text, &src.slots);
    if bad > 0 {
        sluice_sdk::warn!(
            "judge: {bad} line(s) of {} are not JSON log lines",
            path.display()
        );
    }
    let load = Load {
        baseline: samples_of(stats.get(&src.ph.stable_slot)),
        canary: samples_of(stats.get(&src.ph.canary_slot)),
        first_error: None,
    };
    let mut judgement = judge_load(j, &load);
    let few = load.baseline.len().min(load.canary.len());
    if few < 3 {
        judgement.classification = Classification::Marginal;
        judgement.score = judgement.thresholds.marginal;
        for m in &mut judgement.metrics {
            m.reason = format!(
                "{} (only {} baseline and {} canary requests in the access log)",
                m.reason,
                load.baseline.len(),
                load.canary.len()
            );
        }
    }
    Ok((judgement, load))
}

/// Judges samples already collected.
pub fn judge_load(j: &JudgeSpec, load: &Load) -> Judgement {
    let samples: Vec<_> = j
        .rules
        .iter()
        .map(|(rule, kind)| {
            let pick = |s: &[crate::load::Sample]| match kind {
                SampleKind::Latency => latencies(s),
                SampleKind::Errors => errors(s),
            };
            (rule.clone(), pick(&load.baseline), pick(&load.canary))
        })
        .collect();
    judge(j.thresholds, &j.groups, &samples)
}

/// Combines the metrics' phase and the judge into the step's result.
pub fn combine(
    step: usize,
    metrics_phase: Phase,
    runs: &[MetricRun],
    judgement: Option<&(Judgement, Load)>,
) -> StepAnalysis {
    let mut lines: Vec<String> = runs.iter().map(MetricRun::describe).collect();
    let mut metrics = Vec::new();
    for r in runs {
        if let Some(v) = r.last_value().filter(|v| v.is_finite()) {
            metrics.push((format!("canary.{}.value", r.spec.name), v));
        }
    }
    let dry = dry_run_failures(runs);
    if runs.iter().any(|r| r.spec.dry_run) {
        metrics.push(("canary.dry_run_failures".to_string(), dry as f64));
    }
    for r in runs.iter().filter(|r| r.spec.dry_run) {
        if matches!(
            r.phase(),
            Some(Phase::Failed | Phase::Error | Phase::Inconclusive)
        ) {
            sluice_sdk::warn!("step {step}: dry-run {} (not deciding)", r.describe());
        }
    }
    let mut details = serde_json::json!({
        "metrics": runs.iter().map(metric_json).collect::<Vec<_>>(),
        "dry_run_failures": dry,
    });
    let mut phase = metrics_phase;
    let mut observed = None;
    let mut threshold = None;
    let mut why = String::new();
    // The metric that decided, if one ended badly.
    if let Some(bad) = runs.iter().find(|r| {
        !r.spec.dry_run
            && matches!(r.phase(), Some(p) if p == metrics_phase && p != Phase::Successful)
    }) {
        why = bad.describe();
        observed = bad.last_value().filter(|v| v.is_finite());
        threshold = bad.threshold();
        details["decided_by"] = bad.spec.name.clone().into();
    }
    let mut score = None;
    if let Some((j, load)) = judgement {
        score = Some(j.score);
        metrics.push(("canary.score".to_string(), j.score));
        for g in &j.groups {
            metrics.push((format!("canary.group.{}.score", g.name), g.score));
        }
        details["judge"] = serde_json::json!({
            "score": j.score,
            "classification": match j.classification {
                Classification::Pass => "pass",
                Classification::Marginal => "marginal",
                Classification::Fail => "fail",
            },
            "pass": j.thresholds.pass,
            "marginal": j.thresholds.marginal,
            "groups": j.groups.iter().map(|g| serde_json::json!({
                "name": g.name, "weight": g.weight, "score": g.score,
                "passed": g.passed, "metrics": g.total,
            })).collect::<Vec<_>>(),
            "metrics": j.metrics.iter().map(|m| serde_json::json!({
                "name": m.rule.name,
                "group": m.rule.group,
                "critical": m.rule.critical,
                "classification": m.class(),
                "baseline": finite(m.baseline),
                "canary": finite(m.canary),
                "effect": finite(m.effect),
                "p_value": finite(m.p_value),
            })).collect::<Vec<_>>(),
        });
        for m in &j.metrics {
            metrics.push((format!("canary.{}.p_value", m.rule.name), m.p_value));
            if m.effect.is_finite() {
                metrics.push((format!("canary.{}.effect", m.rule.name), m.effect));
            }
        }
        lines.push(format!(
            "judge: {} baseline and {} canary requests ({} and {} failed)",
            load.baseline.len(),
            load.canary.len(),
            load.baseline.iter().filter(|s| s.error).count(),
            load.canary.iter().filter(|s| s.error).count()
        ));
        lines.extend(j.metrics.iter().map(|m| m.reason.clone()));
        let judge_phase = match j.classification {
            Classification::Pass => Phase::Successful,
            Classification::Marginal => Phase::Inconclusive,
            Classification::Fail => Phase::Failed,
        };
        if judge_phase > phase || (why.is_empty() && judge_phase == phase) {
            why = j.explain();
            observed = Some(j.score);
            threshold = Some(match j.classification {
                Classification::Fail => j.thresholds.marginal,
                _ => j.thresholds.pass,
            });
        }
        phase = phase.max(judge_phase);
    }
    if why.is_empty() {
        why = if runs.is_empty() {
            "no metric".to_string()
        } else {
            format!("{} metric(s) successful", runs.len())
        };
    }
    if let Some(s) = score {
        sluice_sdk::info!("step {step}: judge score {}", fmt_num(s));
    }
    StepAnalysis {
        step,
        phase,
        score,
        observed,
        threshold,
        lines,
        why,
        metrics,
        background: false,
        details,
    }
}

/// JSON has no infinity or NaN.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::MetricSpec;
    use crate::config::LoadSpec;
    use crate::expr::Condition;
    use crate::judge::{Center, Direction, MetricRule, Thresholds};
    use crate::load::Sample;
    use std::time::Duration;

    fn judge_spec() -> JudgeSpec {
        let rule = |name: &str| MetricRule {
            name: name.into(),
            direction: Direction::Increase,
            center: Center::Mean,
            max_effect: None,
            critical: false,
            group: None,
        };
        JudgeSpec {
            thresholds: Thresholds::default(),
            groups: Vec::new(),
            rules: vec![
                (rule("latency"), SampleKind::Latency),
                (rule("errors"), SampleKind::Errors),
            ],
            load: LoadSpec {
                requests: 40,
                path: "/".into(),
                timeout: Duration::from_secs(1),
            },
            source: JudgeSource::AccessLog,
            window: None,
        }
    }

    fn side(base_ms: f64, every_nth_error: Option<usize>) -> Vec<Sample> {
        (0..40)
            .map(|i| Sample {
                latency_ms: base_ms + (i % 7) as f64,
                error: every_nth_error.is_some_and(|n| i % n == 0),
            })
            .collect()
    }

    #[test]
    fn bad_canary_is_failed_by_the_judge() {
        let load = Load {
            baseline: side(10.0, None),
            canary: side(210.0, Some(3)),
            first_error: None,
        };
        let j = judge_load(&judge_spec(), &load);
        let r = combine(2, Phase::Successful, &[], Some(&(j, load)));
        assert_eq!(r.phase, Phase::Failed);
        assert_eq!(r.score, Some(0.0));
        assert_eq!(r.observed, Some(0.0));
        assert_eq!(r.threshold, Some(75.0));
        assert!(r.why.contains("`latency` failed"), "{}", r.why);
        assert!(r.metrics.iter().any(|(n, _)| n == "canary.errors.p_value"));
        assert!(!r.metrics.iter().any(|(n, _)| n == "canary.errors.effect"));
        // Each judge metric as data, with Kayenta's classification.
        let latency = r.details["judge"]["metrics"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == "latency"))
            .cloned()
            .expect("latency in details.judge.metrics");
        assert_eq!(latency["classification"], "high");
        assert!(latency["effect"].as_f64().is_some_and(|e| e > 10.0));
        assert!(latency["p_value"].as_f64().is_some_and(|p| p < 0.05));
    }

    #[test]
    fn good_canary_passes() {
        let load = Load {
            baseline: side(10.0, None),
            canary: side(10.0, None),
            first_error: None,
        };
        let j = judge_load(&judge_spec(), &load);
        let r = combine(0, Phase::Successful, &[], Some(&(j, load)));
        assert_eq!(r.phase, Phase::Successful);
        assert_eq!(r.score, Some(100.0));
    }

    fn sources(log: PathBuf) -> Sources {
        let mut slots = BTreeMap::new();
        slots.insert("blue".to_string(), "http://127.0.0.1:18101".to_string());
        slots.insert("green".to_string(), "http://127.0.0.1:18102".to_string());
        Sources {
            ph: Placeholders {
                stable_slot: "blue".into(),
                canary_slot: "green".into(),
                ..Placeholders::default()
            },
            access_log: Some(log),
            slots,
        }
    }

    #[test]
    fn access_log_feeds_the_judge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("access.log");
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!(
                "{{\"upstream\":\"127.0.0.1:18101\",\"status\":200,\"request_time\":0.01,\"upstream_response_time\":\"0.00{}\"}}\n",
                i % 5 + 1
            ));
            let status = if i % 10 < 3 { 500 } else { 200 };
            text.push_str(&format!(
                "{{\"upstream\":\"127.0.0.1:18102\",\"status\":{status},\"request_time\":0.3,\"upstream_response_time\":\"0.2{}\"}}\n",
                i % 5
            ));
        }
        std::fs::write(&log, &text).expect("write");
        let mut clock = crate::analysis::tests::FakeClock::default();
        let (j, load) =
            judge_access_log(&judge_spec(), &sources(log.clone()), &mut clock).expect("judge");
        assert_eq!((load.baseline.len(), load.canary.len()), (30, 30));
        assert_eq!(load.canary.iter().filter(|s| s.error).count(), 9);
        assert_eq!(j.classification, Classification::Fail);

        // With a window, only lines written meanwhile count: none here.
        let mut spec = judge_spec();
        spec.window = Some(Duration::from_secs(30));
        let (j, load) = judge_access_log(&spec, &sources(log), &mut clock).expect("judge");
        assert!(load.canary.is_empty());
        assert_eq!(j.classification, Classification::Marginal);
        assert_eq!(clock.0, Duration::from_secs(30));
        assert!(j.explain().contains("only 0 baseline"), "{}", j.explain());
    }

    #[test]
    fn failing_metric_decides() {
        let spec = MetricSpec {
            name: "err".into(),
            success: Condition::parse("result < 0.05").ok(),
            success_text: Some("result < 0.05".into()),
            failure: None,
            failure_text: None,
            interval: Duration::ZERO,
            count: 1,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: 4,
            dry_run: false,
        };
        let mut run = MetricRun::new(spec);
        run.record(Ok(vec![0.3]));
        let r = combine(1, Phase::Failed, &[run], None);
        assert_eq!(r.phase, Phase::Failed);
        assert_eq!(r.observed, Some(0.3));
        assert_eq!(r.threshold, Some(0.05));
        assert!(r.why.starts_with("metric `err` failed"), "{}", r.why);
        assert_eq!(r.metrics, vec![("canary.err.value".to_string(), 0.3)]);
        // Readers of canary-analysis.json get the deciding metric as data.
        assert_eq!(r.details["decided_by"], "err");
    }
}
