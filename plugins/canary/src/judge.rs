//! The Kayenta-style judge: compares canary samples with baseline samples,
//! metric by metric, and scores the canary.
//!
//! For each metric:
//! 1. a test gives a p-value; the difference is *significant* when
//!    `p < alpha`. Samples that are all 0 or 1 (the `errors` sample: 1 per
//!    failed request) are two proportions and get Fisher's exact test
//!    ([`crate::stats::fisher_exact`]), one-sided in the bad `direction`
//!    (`either`: twice the smaller tail) — exact at every count, so one
//!    failure in 6 canary requests against none in 113 baseline ones is
//!    p = 6/119 = 0.0504, not significant at 0.05. Other samples (latency)
//!    get the two-sided Mann-Whitney U test (exact below 8 values a side
//!    without ties, else the normal approximation, see [`crate::stats`]);
//! 2. the *effect* is `center(canary) / center(baseline)` with `center` the
//!    mean (default) or the median (1 when both are 0, infinite when only
//!    the baseline is 0);
//! 3. the metric **fails** when the difference is significant, goes in a bad
//!    `direction` (`increase`: the canary is higher — latency, errors;
//!    `decrease`: lower — throughput; `either`), and the effect is beyond
//!    `max-effect` (canary/baseline above `max-effect` for increase, below
//!    `1/max-effect` for decrease; without `max-effect`, any significant
//!    change in the bad direction fails). Otherwise it passes.
//!
//! `p95` metrics are compared by their 95th percentiles instead of a test:
//! the effect is `p95(canary) / p95(baseline)` and the metric fails when it
//! is beyond `max-effect` (default [`P95_MAX_EFFECT`], +10%) in the bad
//! direction. With fewer than [`P95_MIN_SAMPLES`] samples on a side the
//! p95 is little more than the maximum, so the metric is *inconclusive*:
//! it counts as passed in the score, but the judge is at best marginal.
//! (The U test's p-value is still reported, for information.)
//!
//! Score = 100 × passed / total, or 0 when a `critical` metric failed.
//! With weighted groups (Kayenta's scorer: every metric names a `group`,
//! `groups` gives each a weight, the weights sum to 100), each group's
//! score is 100 × the share of its metrics that passed and the score is the
//! weighted mean of the group scores; a failed `critical` metric still
//! makes it 0. Each metric is also classified as Kayenta does: `pass`,
//! `high` / `low` (failed with the canary above / below the baseline) or
//! `nodata` (no samples, or too few for a `p95` comparison).
//! Classification: score ≥ `pass` → pass (promote); `marginal` ≤ score <
//! `pass` → marginal (inconclusive, pause); below `marginal` → fail (abort).
//! An inconclusive metric turns a pass into marginal.

use crate::analysis::fmt_num;
use crate::stats::{fisher_exact, mann_whitney_u, mean, median, quantile, Alternative};

/// Fewest samples per side for a `p95` comparison; below it the metric is
/// inconclusive (with 20 samples the p95 interpolates between the two
/// largest values).
pub const P95_MIN_SAMPLES: usize = 20;

/// Default `max-effect` of a `p95` metric: fail above +10%.
pub const P95_MAX_EFFECT: f64 = 1.1;

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Higher is worse (latency, errors).
    Increase,
    /// Lower is worse (throughput, success rate).
    Decrease,
    /// Any change is bad.
    Either,
}

/// How the effect size is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Center {
    /// Ratio of means.
    #[default]
    Mean,
    /// Ratio of medians.
    Median,
    /// Ratio of 95th percentiles, compared against `max-effect` without a
    /// significance test (see the module documentation).
    P95,
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRule {
    /// Name (used in metrics `canary.<name>.p_value` / `.effect`).
    pub name: String,
    /// Which change is bad.
    pub direction: Direction,
    /// Mean or median.
    pub center: Center,
    /// Largest tolerated canary/baseline ratio in the bad direction.
    pub max_effect: Option<f64>,
    /// A failing critical metric makes the score 0.
    pub critical: bool,
    /// The weighted group it counts in (`judge.groups`).
    pub group: Option<String>,
}

/// Thresholds of the judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Significance level of the U test.
    pub alpha: f64,
    /// Lowest score that passes.
    pub pass: f64,
    /// Lowest score that is marginal rather than failing.
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// The judge's classification of the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Promote.
    Pass,
    /// Inconclusive: a person decides.
    Marginal,
    /// Abort.
    Fail,
}

/// What the judge found for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricVerdict {
    /// The rule applied.
    pub rule: MetricRule,
    /// Samples on each side.
    pub n_baseline: usize,
    /// Samples on the canary side.
    pub n_canary: usize,
    /// Center of the baseline samples.
    pub baseline: f64,
    /// Center of the canary samples.
    pub canary: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// canary / baseline centers.
    pub effect: f64,
    /// Whether the metric passed (an inconclusive metric counts as passed).
    pub passed: bool,
    /// Too few samples to decide (`p95` metrics); caps the judge at marginal.
    pub inconclusive: bool,
    /// Why, in one line.
    pub reason: String,
}

impl MetricVerdict {
    /// Kayenta's metric classification: `pass`, `high` or `low` (failed,
    /// canary above or below the baseline), `nodata`.
    pub fn class(&self) -> &'static str {
        if self.inconclusive || self.n_baseline == 0 || self.n_canary == 0 {
            "nodata"
        } else if self.passed {
            "pass"
        } else if self.effect >= 1.0 {
            "high"
        } else {
            "low"
        }
    }
}

/// One weighted group's share of the score.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupScore {
    /// Group name.
    pub name: String,
    /// Its weight (the weights sum to 100).
    pub weight: f64,
    /// 100 × passed / metrics of the group.
    pub score: f64,
    /// Metrics of the group that passed.
    pub passed: usize,
    /// Metrics of the group.
    pub total: usize,
}

/// The judge's overall result.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// 0..=100.
    pub score: f64,
    /// Per weighted group (empty without `judge.groups`).
    pub groups: Vec<GroupScore>,
    /// Pass, marginal or fail.
    pub classification: Classification,
    /// Per metric.
    pub metrics: Vec<MetricVerdict>,
    /// The thresholds used.
    pub thresholds: Thresholds,
}

impl Judgement {
    /// One line per failing metric, or the best summary when none failed.
    pub fn explain(&self) -> String {
        let failed: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| !m.passed || m.inconclusive)
            .map(|m| m.reason.as_str())
            .collect();
        let class = match self.classification {
            Classification::Pass => "pass",
            Classification::Marginal => "marginal",
            Classification::Fail => "fail",
        };
        let groups = if self.groups.is_empty() {
            String::new()
        } else {
            let g: Vec<String> = self
                .groups
                .iter()
                .map(|g| {
                    format!(
                        "{} {} ({}/{} passed, weight {})",
                        g.name,
                        fmt_num(g.score),
                        g.passed,
                        g.total,
                        fmt_num(g.weight)
                    )
                })
                .collect();
            format!("; groups: {}", g.join(", "))
        };
        let head = format!(
            "judge score {} ({class}; pass >= {}, marginal >= {}{groups})",
            fmt_num(self.score),
            fmt_num(self.thresholds.pass),
            fmt_num(self.thresholds.marginal)
        );
        if failed.is_empty() {
            format!("{head}: every metric passed")
        } else {
            format!("{head}: {}", failed.join("; "))
        }
    }
}

fn center(c: Center, v: &[f64]) -> f64 {
    match c {
        Center::Mean => mean(v),
        Center::Median => median(v),
        Center::P95 => quantile(v, 0.95),
    }
}

/// Whether every value is 0 or 1 (a sample of failures).
fn binary(v: &[f64]) -> bool {
    v.iter().all(|&x| x == 0.0 || x == 1.0)
}

/// Whether `effect` is beyond `max` in the bad direction.
fn beyond(direction: Direction, effect: f64, max: f64) -> bool {
    let up = effect > max;
    let down = effect < 1.0 / max;
    match direction {
        Direction::Increase => up,
        Direction::Decrease => down,
        Direction::Either => up || down,
    }
}

/// Judges one metric.
pub fn judge_metric(
    rule: &MetricRule,
    baseline: &[f64],
    canary: &[f64],
    alpha: f64,
) -> MetricVerdict {
    let b: Vec<f64> = baseline.iter().copied().filter(|v| !v.is_nan()).collect();
    let c: Vec<f64> = canary.iter().copied().filter(|v| !v.is_nan()).collect();
    let (bc, cc) = (center(rule.center, &b), center(rule.center, &c));
    let mut v = MetricVerdict {
        rule: rule.clone(),
        n_baseline: b.len(),
        n_canary: c.len(),
        baseline: bc,
        canary: cc,
        p_value: 1.0,
        effect: 1.0,
        passed: false,
        inconclusive: false,
        reason: String::new(),
    };
    if b.is_empty() || c.is_empty() {
        v.reason = format!(
            "`{}`: no samples to compare ({} baseline, {} canary)",
            rule.name,
            b.len(),
            c.len()
        );
        return v;
    }
    v.effect = if bc == cc {
        1.0
    } else if bc == 0.0 {
        f64::INFINITY * cc.signum()
    } else {
        cc / bc
    };
    let effect = if v.effect.is_finite() {
        format!("{}x", fmt_num(v.effect))
    } else {
        "from 0".to_string()
    };
    let crit = if rule.critical { " (critical)" } else { "" };
    if rule.center == Center::P95 {
        // For information only: p95 is judged by its ratio.
        v.p_value = mann_whitney_u(&b, &c).p_value;
        let max = rule.max_effect.unwrap_or(P95_MAX_EFFECT);
        let few = b.len().min(c.len()) < P95_MIN_SAMPLES;
        v.inconclusive = few;
        v.passed = few || !beyond(rule.direction, v.effect, max);
        let verdict = if few {
            "inconclusive"
        } else if v.passed {
            "passed"
        } else {
            "failed"
        };
        v.reason = format!(
            "`{}`{crit} {verdict}: canary p95 {} vs baseline p95 {} (effect {effect}, max {}x){}",
            rule.name,
            fmt_num(cc),
            fmt_num(bc),
            fmt_num(max),
            if few {
                format!(
                    ", only {} baseline and {} canary samples (p95 needs {P95_MIN_SAMPLES} each)",
                    b.len(),
                    c.len()
                )
            } else {
                String::new()
            },
        );
        return v;
    }
    let (p_value, canary_higher) = if binary(&b) && binary(&c) {
        // Two proportions: Fisher's exact test in the bad direction.
        let hits = |s: &[f64]| s.iter().filter(|&&x| x == 1.0).count() as u64;
        let (hb, hc) = (hits(&b), hits(&c));
        let alternative = match rule.direction {
            Direction::Increase => Alternative::Greater,
            Direction::Decrease => Alternative::Less,
            Direction::Either => Alternative::TwoSided,
        };
        let p = fisher_exact(hb, b.len() as u64, hc, c.len() as u64, alternative);
        (p, mean(&c) > mean(&b))
    } else {
        // The U statistics tell which side tends to be larger.
        let test = mann_whitney_u(&b, &c);
        (test.p_value, test.u_y > test.u_x)
    };
    v.p_value = p_value;
    let significant = p_value < alpha;
    let bad_direction = match rule.direction {
        Direction::Increase => canary_higher,
        Direction::Decrease => !canary_higher,
        Direction::Either => true,
    };
    let beyond = rule
        .max_effect
        .is_none_or(|m| beyond(rule.direction, v.effect, m));
    v.passed = !(significant && bad_direction && beyond);
    v.reason = format!(
        "`{}`{crit} {}: canary {} vs baseline {} (effect {effect}{}), p = {} {} alpha {}",
        rule.name,
        if v.passed { "passed" } else { "failed" },
        fmt_num(cc),
        fmt_num(bc),
        rule.max_effect
            .map(|m| format!(", max {}x", fmt_num(m)))
            .unwrap_or_default(),
        fmt_num(p_value),
        if significant { "<" } else { ">=" },
        fmt_num(alpha),
    );
    v
}

/// Judges every metric and scores the canary. `samples` holds, per rule,
/// the baseline and canary samples; `groups` the weight of each group
/// (empty: every metric counts the same).
pub fn judge(
    thresholds: Thresholds,
    groups: &[(String, f64)],
    samples: &[(MetricRule, Vec<f64>, Vec<f64>)],
) -> Judgement {
    let metrics: Vec<MetricVerdict> = samples
        .iter()
        .map(|(rule, b, c)| judge_metric(rule, b, c, thresholds.alpha))
        .collect();
    let (score, groups) = score(&metrics, groups);
    let score = if metrics.iter().any(|m| m.rule.critical && !m.passed) {
        0.0
    } else {
        score
    };
    let inconclusive = metrics.iter().any(|m| m.inconclusive);
    let classification = if score >= thresholds.pass && !inconclusive {
        Classification::Pass
    } else if score >= thresholds.marginal {
        Classification::Marginal
    } else {
        Classification::Fail
    };
    Judgement {
        score,
        groups,
        classification,
        metrics,
        thresholds,
    }
}

/// The score before the critical rule: 100 × passed / total, or with
/// `weights` the weighted mean of the group scores (Kayenta's scorer).
/// No metric scores 100; a group without metrics is left out.
pub fn score(metrics: &[MetricVerdict], weights: &[(String, f64)]) -> (f64, Vec<GroupScore>) {
    let share = |ms: &[&MetricVerdict]| {
        if ms.is_empty() {
            100.0
        } else {
            100.0 * ms.iter().filter(|m| m.passed).count() as f64 / ms.len() as f64
        }
    };
    if weights.is_empty() {
        return (share(&metrics.iter().collect::<Vec<_>>()), Vec::new());
    }
    let mut groups = Vec::new();
    for (name, weight) in weights {
        let ms: Vec<&MetricVerdict> = metrics
            .iter()
            .filter(|m| m.rule.group.as_deref() == Some(name.as_str()))
            .collect();
        if ms.is_empty() {
            continue;
        }
        groups.push(GroupScore {
            name: name.clone(),
            weight: *weight,
            score: share(&ms),
            passed: ms.iter().filter(|m| m.passed).count(),
            total: ms.len(),
        });
    }
    let total_weight: f64 = groups.iter().map(|g| g.weight).sum();
    let score = if total_weight > 0.0 {
        groups.iter().map(|g| g.weight * g.score).sum::<f64>() / total_weight
    } else {
        100.0
    };
    (score, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, direction: Direction) -> MetricRule {
        MetricRule {
            name: name.into(),
            direction,
            center: Center::Mean,
            max_effect: None,
            critical: false,
            group: None,
        }
    }

    /// Deterministic noise in [0, 1) (a 64-bit LCG).
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn clearly_worse_canary_fails() {
        let base_lat: Vec<f64> = noise(1, 100).iter().map(|x| 20.0 + 5.0 * x).collect();
        let can_lat: Vec<f64> = noise(2, 100).iter().map(|x| 220.0 + 5.0 * x).collect();
        let base_err = vec![0.0; 100];
        let can_err: Vec<f64> = (0..100).map(|i| f64::from(i % 10 < 3)).collect();
        let j = judge(
            Thresholds::default(),
            &[],
            &[
                (rule("latency", Direction::Increase), base_lat, can_lat),
                (rule("errors", Direction::Increase), base_err, can_err),
            ],
        );
        assert_eq!(j.score, 0.0);
        assert_eq!(j.classification, Classification::Fail);
        assert!(j.metrics.iter().all(|m| m.p_value < 1e-6), "{j:#?}");
        assert!(!j.metrics[1].effect.is_finite());
        assert!(j.explain().contains("`latency` failed"), "{}", j.explain());
    }

    #[test]
    fn identical_samples_pass() {
        let s: Vec<f64> = noise(3, 50).iter().map(|x| 10.0 + x).collect();
        let j = judge(
            Thresholds::default(),
            &[],
            &[(rule("latency", Direction::Increase), s.clone(), s)],
        );
        assert_eq!(j.score, 100.0);
        assert_eq!(j.classification, Classification::Pass);
        assert_eq!(j.metrics[0].effect, 1.0);
        assert!(j.metrics[0].p_value > 0.99);
    }

    #[test]
    fn noisy_but_equal_samples_pass() {
        let b: Vec<f64> = noise(11, 200).iter().map(|x| 50.0 + 30.0 * x).collect();
        let c: Vec<f64> = noise(12, 200).iter().map(|x| 50.0 + 30.0 * x).collect();
        let j = judge(
            Thresholds::default(),
            &[],
            &[(rule("latency", Direction::Either), b, c)],
        );
        assert!(j.metrics[0].p_value > 0.05, "{j:#?}");
        assert_eq!(j.classification, Classification::Pass);
    }

    #[test]
    fn direction_and_effect_decide() {
        let b: Vec<f64> = noise(5, 100).iter().map(|x| 100.0 + x).collect();
        let faster: Vec<f64> = noise(6, 100).iter().map(|x| 50.0 + x).collect();
        // Faster canary: significant, but not in the bad direction.
        let v = judge_metric(&rule("lat", Direction::Increase), &b, &faster, 0.05);
        assert!(v.passed && v.p_value < 0.001);
        let v = judge_metric(&rule("lat", Direction::Decrease), &b, &faster, 0.05);
        assert!(!v.passed);
        // Slightly slower (1.005x): significant but within max-effect 1.2.
        let slower: Vec<f64> = noise(7, 100).iter().map(|x| 100.5 + x).collect();
        let mut r = rule("lat", Direction::Increase);
        r.max_effect = Some(1.2);
        let v = judge_metric(&r, &b, &slower, 0.05);
        assert!(v.passed && v.p_value < 0.05, "{v:#?}");
        r.center = Center::Median;
        assert!(judge_metric(&r, &b, &slower, 0.05).passed);
    }

    #[test]
    fn score_and_classification() {
        let same = vec![1.0; 20];
        let worse = vec![2.0; 20];
        let mut samples: Vec<(MetricRule, Vec<f64>, Vec<f64>)> = (0..4)
            .map(|i| {
                (
                    rule(&format!("m{i}"), Direction::Increase),
                    same.clone(),
                    same.clone(),
                )
            })
            .collect();
        samples.push((rule("bad", Direction::Increase), same.clone(), worse));
        let j = judge(Thresholds::default(), &[], &samples);
        assert_eq!(j.score, 80.0);
        assert_eq!(j.classification, Classification::Marginal);
        samples[4].0.critical = true;
        let j = judge(Thresholds::default(), &[], &samples);
        assert_eq!(j.score, 0.0);
        assert_eq!(j.classification, Classification::Fail);
        let j = judge(Thresholds::default(), &[], &samples[..4]);
        assert_eq!(j.classification, Classification::Pass);
    }

    /// Issue 17: 1 failure in 6 canary requests vs 0 in 113 was p = 1.7e-5
    /// with the U test's normal approximation; Fisher's exact p is 6/119.
    #[test]
    fn one_failure_in_few_requests_is_not_significant() {
        let base = vec![0.0; 113];
        let mut can = vec![0.0; 6];
        can[0] = 1.0;
        let v = judge_metric(&rule("errors", Direction::Increase), &base, &can, 0.05);
        assert!((v.p_value - 6.0 / 119.0).abs() < 1e-12, "{v:#?}");
        assert!(v.passed, "{v:#?}");
        // What the judge used before: the U test's normal approximation.
        let old = mann_whitney_u(&base, &can).p_value;
        assert!(old > 1.5e-5 && old < 2e-5, "{old}");
        assert!(!v.effect.is_finite());
        // The same single failure against a failing baseline is no worse.
        let mut base2 = base.clone();
        base2[0] = 1.0;
        // 1 - C(117,6)/C(119,6) = 1 - (113*112)/(119*118) = 0.0987.
        let p = judge_metric(&rule("e", Direction::Increase), &base2, &can, 0.05).p_value;
        assert!(
            (p - (1.0 - 113.0 * 112.0 / (119.0 * 118.0))).abs() < 1e-12,
            "{p}"
        );
        // 6 of 20 against 0 of 20 is C(20,6)/C(40,6) = 0.0101 exactly.
        let can: Vec<f64> = (0..20).map(|i| f64::from(i < 6)).collect();
        let v = judge_metric(&rule("e", Direction::Increase), &[0.0; 20], &can, 0.05);
        assert!(
            (v.p_value - 0.010_098_010_098_010_098).abs() < 1e-12,
            "{v:#?}"
        );
        assert!(!v.passed);
        // Direction `decrease` asks the opposite question.
        let v = judge_metric(&rule("e", Direction::Decrease), &[0.0; 20], &can, 0.05);
        assert!(v.passed && v.p_value > 0.99, "{v:#?}");
        // Two-sided: twice the smaller tail.
        let v = judge_metric(&rule("e", Direction::Either), &[0.0; 20], &can, 0.05);
        assert!(
            (v.p_value - 0.020_196_020_196_020_196).abs() < 1e-12,
            "{v:#?}"
        );
    }

    fn p95_rule() -> MetricRule {
        let mut r = rule("latency-p95", Direction::Increase);
        r.center = Center::P95;
        r
    }

    #[test]
    fn p95_compares_the_tail() {
        // Same medians, but the canary's slowest 10% take 3x as long: the
        // median effect is 1, the p95 effect is about 3.
        let b: Vec<f64> = noise(21, 100).iter().map(|x| 20.0 + x).collect();
        let c: Vec<f64> = noise(22, 100)
            .iter()
            .enumerate()
            .map(|(i, x)| if i % 10 == 0 { 60.0 + x } else { 20.0 + x })
            .collect();
        let v = judge_metric(&p95_rule(), &b, &c, 0.05);
        assert!(!v.passed && !v.inconclusive, "{v:#?}");
        assert!(v.effect > 2.5, "{v:#?}");
        assert!(
            v.reason.contains("canary p95") && v.reason.contains("max 1.1x"),
            "{}",
            v.reason
        );
        let mut by_median = rule("latency", Direction::Increase);
        by_median.center = Center::Median;
        by_median.max_effect = Some(1.5);
        assert!(judge_metric(&by_median, &b, &c, 0.05).passed);
        // Within +10%: passes; a generous max-effect passes the slow tail.
        let close: Vec<f64> = b.iter().map(|x| x * 1.05).collect();
        assert!(judge_metric(&p95_rule(), &b, &close, 0.05).passed);
        let mut lax = p95_rule();
        lax.max_effect = Some(4.0);
        assert!(judge_metric(&lax, &b, &c, 0.05).passed);
        // A faster tail is fine for `increase`, bad for `decrease`.
        let mut dec = p95_rule();
        dec.direction = Direction::Decrease;
        assert!(judge_metric(&p95_rule(), &c, &b, 0.05).passed);
        assert!(!judge_metric(&dec, &c, &b, 0.05).passed);
    }

    #[test]
    fn p95_with_few_samples_is_inconclusive() {
        let b: Vec<f64> = noise(23, 100).iter().map(|x| 20.0 + x).collect();
        let c: Vec<f64> = noise(24, P95_MIN_SAMPLES - 1)
            .iter()
            .map(|x| 200.0 + x)
            .collect();
        let v = judge_metric(&p95_rule(), &b, &c, 0.05);
        assert!(v.inconclusive && v.passed, "{v:#?}");
        assert!(v.reason.contains("inconclusive"), "{}", v.reason);
        let j = judge(Thresholds::default(), &[], &[(p95_rule(), b.clone(), c)]);
        assert_eq!(j.score, 100.0);
        assert_eq!(j.classification, Classification::Marginal);
        assert!(j.explain().contains("inconclusive"), "{}", j.explain());
        // Enough samples: decided.
        let c: Vec<f64> = noise(24, P95_MIN_SAMPLES)
            .iter()
            .map(|x| 200.0 + x)
            .collect();
        let j = judge(Thresholds::default(), &[], &[(p95_rule(), b, c)]);
        assert_eq!(j.classification, Classification::Fail);
    }

    fn grouped(name: &str, group: &str) -> MetricRule {
        let mut r = rule(name, Direction::Increase);
        r.group = Some(group.into());
        r
    }

    /// Kayenta's scorer: groups errors (weight 60: one metric) and latency
    /// (weight 40: two metrics). Identical samples pass, doubled ones fail
    /// ("high").
    #[test]
    fn weighted_groups_score_like_kayenta() {
        let same = vec![1.0; 20];
        let worse = vec![2.0; 20];
        let weights = vec![("errors".to_string(), 60.0), ("latency".to_string(), 40.0)];
        let run = |err_ok: bool, lat_ok: usize, critical: bool| {
            let pick = |ok: bool| if ok { same.clone() } else { worse.clone() };
            let mut errors = grouped("errors", "errors");
            errors.critical = critical;
            judge(
                Thresholds::default(),
                &weights,
                &[
                    (errors, same.clone(), pick(err_ok)),
                    (grouped("p50", "latency"), same.clone(), pick(lat_ok > 0)),
                    (grouped("p95", "latency"), same.clone(), pick(lat_ok > 1)),
                ],
            )
        };
        let j = run(true, 2, false);
        assert_eq!((j.score, j.classification), (100.0, Classification::Pass));
        // 60 × 100% + 40 × 50% = 80: marginal.
        let j = run(true, 1, false);
        assert_eq!(
            (j.score, j.classification),
            (80.0, Classification::Marginal)
        );
        assert_eq!(j.groups[1].score, 50.0);
        assert_eq!((j.groups[1].passed, j.groups[1].total), (1, 2));
        assert_eq!(j.metrics[2].class(), "high");
        assert_eq!(j.metrics[1].class(), "pass");
        assert!(
            j.explain()
                .contains("groups: errors 100 (1/1 passed, weight 60), latency 50"),
            "{}",
            j.explain()
        );
        // 60 × 0% + 40 × 100% = 40: fail; unweighted it would be 66.7.
        let j = run(false, 2, false);
        assert_eq!((j.score, j.classification), (40.0, Classification::Fail));
        // Losing all latency: 60, fail below marginal 75.
        assert_eq!(run(true, 0, false).score, 60.0);
        // A critical failure is 0 whatever the groups say.
        let j = run(false, 2, true);
        assert_eq!((j.score, j.classification), (0.0, Classification::Fail));
        // A faster canary failing a `decrease` rule is "low".
        let mut dec = rule("rps", Direction::Decrease);
        dec.group = Some("errors".into());
        let v = judge_metric(&dec, &worse, &same, 0.05);
        assert_eq!(v.class(), "low");
        assert_eq!(judge_metric(&dec, &[], &same, 0.05).class(), "nodata");
    }

    #[test]
    fn empty_side_fails_the_metric() {
        let v = judge_metric(&rule("m", Direction::Increase), &[], &[1.0], 0.05);
        assert!(!v.passed);
        assert!(v.reason.contains("no samples"));
    }
}
