//! What was measured over the window and how it compares with the SLOs:
//! one gate per configured SLO (observed vs threshold; inconclusive when
//! the value could not be measured) and the multiwindow burn-rate alert of
//! the Google SRE workbook (burn = error ratio / (1 - target); alert when
//! both the long and the short window burn faster than the threshold).

use serde::Serialize;
use sluice_sdk::Gate;

use crate::config::{Burn, Slo};

/// A measured value, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// The value.
    pub value: Option<f64>,
    /// Why it is missing (empty when measured).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub missing: String,
}

impl Measure {
    /// A measured value (NaN and infinities count as missing).
    pub fn of(value: f64) -> Self {
        if value.is_finite() {
            Self {
                value: Some(value),
                missing: String::new(),
            }
        } else {
            Self::missing(format!("the value was {value}"))
        }
    }

    /// No value, because `why`.
    pub fn missing(why: impl Into<String>) -> Self {
        Self {
            value: None,
            missing: why.into(),
        }
    }

    /// `Some` value or `why`.
    pub fn from_option(value: Option<f64>, why: impl Into<String>) -> Self {
        match value {
            Some(v) => Self::of(v),
            None => Self::missing(why),
        }
    }
}

/// Everything measured over the window, in report units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// Failed requests, percent.
    pub error_rate_pct: Measure,
    /// 95th percentile latency, ms.
    pub p95_ms: Measure,
    /// Successful requests, percent.
    pub availability_pct: Measure,
    /// Burn rate over the long window (when configured).
    pub burn_long: Option<Measure>,
    /// Burn rate over the short window (when configured).
    pub burn_short: Option<Measure>,
    /// Seconds the long and the short burn windows actually covered, when
    /// they differ from the configured ones (scrape: whole intervals, at
    /// most the watch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burn_windows_s: Option<(f64, f64)>,
}

/// Burn rate of an error ratio (0–1) against a target (percent).
pub fn burn_rate(error_ratio: f64, target_pct: f64) -> f64 {
    error_ratio / (1.0 - target_pct / 100.0)
}

/// The SLOs one sample breaches, as messages (`error rate 3.20% > max
/// 0.50%`); a value that was not measured breaches nothing.
pub fn sample_breaches(
    error_rate_pct: Option<f64>,
    p95_ms: Option<f64>,
    availability_pct: Option<f64>,
    slo: &Slo,
) -> Vec<String> {
    let mut out = Vec::new();
    let over = |what: &str, v: Option<f64>, max: Option<f64>, unit: &str| match (v, max) {
        (Some(v), Some(max)) if v > max => {
            Some(format!("{what} {v:.2}{unit} > max {max:.2}{unit}"))
        }
        _ => None,
    };
    out.extend(over("error rate", error_rate_pct, slo.error_rate, "%"));
    out.extend(over("p95 latency", p95_ms, slo.p95_ms, " ms"));
    if let (Some(v), Some(min)) = (availability_pct, slo.availability) {
        if v < min {
            out.push(format!("availability {v:.2}% < min {min:.2}%"));
        }
    }
    out
}

/// The gates for `m` against `slo` and `burn`; `window` is for messages.
pub fn gates(m: &Measured, slo: &Slo, burn: Option<&Burn>, window: &str) -> Vec<Gate> {
    let mut out = Vec::new();
    if let Some(max) = slo.error_rate {
        out.push(bound(
            "error-rate",
            "error rate",
            &m.error_rate_pct,
            max,
            Bound::Max,
            "%",
            window,
        ));
    }
    if let Some(max) = slo.p95_ms {
        out.push(bound(
            "p95-latency",
            "p95 latency",
            &m.p95_ms,
            max,
            Bound::Max,
            " ms",
            window,
        ));
    }
    if let Some(min) = slo.availability {
        out.push(bound(
            "availability",
            "availability",
            &m.availability_pct,
            min,
            Bound::Min,
            "%",
            window,
        ));
    }
    if let (Some(b), Some(long), Some(short)) = (burn, &m.burn_long, &m.burn_short) {
        out.push(burn_gate(b, long, short, m.burn_windows_s));
    }
    out
}

#[derive(Clone, Copy)]
enum Bound {
    Max,
    Min,
}

fn bound(
    name: &str,
    what: &str,
    m: &Measure,
    limit: f64,
    b: Bound,
    unit: &str,
    window: &str,
) -> Gate {
    let Some(v) = m.value else {
        return Gate::inconclusive(
            name,
            format!("{what} could not be measured over {window}: {}", m.missing),
        )
        .threshold(limit);
    };
    let (ok, op, side) = match b {
        Bound::Max => (v <= limit, if v <= limit { "<=" } else { ">" }, "max"),
        Bound::Min => (v >= limit, if v >= limit { ">=" } else { "<" }, "min"),
    };
    let msg = format!("{what} {v:.2}{unit} {op} {side} {limit:.2}{unit} over {window}");
    let g = if ok {
        Gate::pass(name, msg)
    } else {
        Gate::fail(name, msg)
    };
    g.observed(v).threshold(limit)
}

/// `1h`, `6s`, `1s 500ms`: a window length for messages, to 100 ms.
fn window_text(secs: f64) -> String {
    let tenths = (secs.max(0.0) * 10.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_millis(tenths * 100)).to_string()
}

fn burn_gate(b: &Burn, long: &Measure, short: &Measure, used: Option<(f64, f64)>) -> Gate {
    let (cl, cs) = (
        window_text(b.long.as_secs_f64()),
        window_text(b.short.as_secs_f64()),
    );
    let (lw, sw) = match used {
        Some((l, s)) => (window_text(l), window_text(s)),
        None => (cl.clone(), cs.clone()),
    };
    // Name the configured windows when the measured ones differ from them.
    let scaled = if (&lw, &sw) == (&cl, &cs) {
        String::new()
    } else {
        format!("; configured {cl} and {cs}, scaled to the watch")
    };
    match (long.value, short.value) {
        (Some(l), Some(s)) => {
            let msg = format!(
                "burn rate {l:.2}x over {lw} and {s:.2}x over {sw} (alert when both > {:.2}x{scaled})",
                b.threshold
            );
            // The alert condition holds when the smaller of the two is above.
            let g = if l > b.threshold && s > b.threshold {
                Gate::fail("burn-rate", msg)
            } else {
                Gate::pass("burn-rate", msg)
            };
            g.observed(l.min(s)).threshold(b.threshold)
        }
        _ => {
            let why = if long.value.is_none() {
                &long.missing
            } else {
                &short.missing
            };
            Gate::inconclusive(
                "burn-rate",
                format!("burn rate could not be measured: {why}"),
            )
            .threshold(b.threshold)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Verdict;
    use std::time::Duration;

    fn measured(err: Option<f64>, p95: Option<f64>, avail: Option<f64>) -> Measured {
        Measured {
            error_rate_pct: Measure::from_option(err, "no requests in the window"),
            p95_ms: Measure::from_option(p95, "no latency observations"),
            availability_pct: Measure::from_option(avail, "no data"),
            burn_long: None,
            burn_short: None,
            burn_windows_s: None,
        }
    }

    const SLO: Slo = Slo {
        error_rate: Some(1.0),
        p95_ms: Some(300.0),
        availability: Some(99.0),
        target: Some(99.9),
    };

    #[test]
    fn each_slo_is_a_gate_with_observed_and_threshold() {
        let g = gates(
            &measured(Some(2.5), Some(120.0), Some(97.5)),
            &SLO,
            None,
            "60s",
        );
        let v: Vec<(&str, Verdict)> = g.iter().map(|g| (g.name.as_str(), g.verdict)).collect();
        assert_eq!(
            v,
            [
                ("error-rate", Verdict::Fail),
                ("p95-latency", Verdict::Pass),
                ("availability", Verdict::Fail)
            ]
        );
        assert_eq!(g[0].message, "error rate 2.50% > max 1.00% over 60s");
        assert_eq!((g[0].observed, g[0].threshold), (Some(2.5), Some(1.0)));
        assert_eq!(g[2].message, "availability 97.50% < min 99.00% over 60s");
    }

    #[test]
    fn unmeasured_values_are_inconclusive() {
        let g = gates(&measured(None, Some(1.0), Some(100.0)), &SLO, None, "60s");
        assert_eq!(g[0].verdict, Verdict::Inconclusive);
        assert_eq!(
            g[0].message,
            "error rate could not be measured over 60s: no requests in the window"
        );
        assert!(gates(&measured(None, None, None), &Slo::default(), None, "1s").is_empty());
    }

    #[test]
    fn burn_rate_alerts_only_when_both_windows_burn() {
        // SRE workbook: 99.9% target, 1.44% errors burns 14.4x the budget.
        assert!((burn_rate(0.0144, 99.9) - 14.4).abs() < 1e-9);
        let b = Burn {
            long: Duration::from_secs(3600),
            short: Duration::from_secs(300),
            threshold: 14.4,
        };
        let with = |l: f64, s: f64| Measured {
            burn_long: Some(Measure::of(l)),
            burn_short: Some(Measure::of(s)),
            ..measured(None, None, None)
        };
        let g = gates(&with(20.0, 30.0), &Slo::default(), Some(&b), "60s");
        assert_eq!(g[0].verdict, Verdict::Fail);
        assert_eq!(g[0].observed, Some(20.0));
        assert_eq!(
            g[0].message,
            "burn rate 20.00x over 1h and 30.00x over 5m (alert when both > 14.40x)"
        );
        // A short spike alone (or a long burn that already stopped) does not alert.
        assert_eq!(
            gates(&with(2.0, 30.0), &Slo::default(), Some(&b), "60s")[0].verdict,
            Verdict::Pass
        );
        assert_eq!(
            gates(&with(20.0, 1.0), &Slo::default(), Some(&b), "60s")[0].verdict,
            Verdict::Pass
        );
        let none = Measured {
            burn_long: Some(Measure::missing("no requests")),
            burn_short: Some(Measure::of(1.0)),
            ..measured(None, None, None)
        };
        assert_eq!(
            gates(&none, &Slo::default(), Some(&b), "60s")[0].verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn burn_message_names_the_windows_actually_measured() {
        let b = Burn {
            long: Duration::from_secs(3600),
            short: Duration::from_secs(300),
            threshold: 14.4,
        };
        let m = Measured {
            burn_long: Some(Measure::of(20.0)),
            burn_short: Some(Measure::of(30.0)),
            burn_windows_s: Some((6.0, 1.0)),
            ..measured(None, None, None)
        };
        assert_eq!(
            gates(&m, &Slo::default(), Some(&b), "6s")[0].message,
            "burn rate 20.00x over 6s and 30.00x over 1s (alert when both > 14.40x; \
             configured 1h and 5m, scaled to the watch)"
        );
    }

    #[test]
    fn a_sample_breaches_each_slo_it_misses() {
        assert_eq!(
            sample_breaches(Some(3.2), Some(100.0), Some(96.8), &SLO),
            [
                "error rate 3.20% > max 1.00%",
                "availability 96.80% < min 99.00%"
            ]
        );
        assert!(sample_breaches(Some(1.0), Some(300.0), Some(99.0), &SLO).is_empty());
        assert!(sample_breaches(None, None, None, &SLO).is_empty());
        assert!(sample_breaches(Some(50.0), None, None, &Slo::default()).is_empty());
    }
}
