//! What was measured over the window and how it compares with the SLOs:
//! one gate per configured SLO (observed vs threshold; inconclusive when
//! the value could not be measured), the multiwindow, multi-burn-rate
//! alerts of the Google SRE workbook (burn = error ratio / (1 - target); an
//! alert fires when both its long and its short window burn faster than its
//! factor; a fired `page` alert fails, a fired `ticket` alert warns) and the
//! error budget left over the SLO period.

use serde::Serialize;
use sluice_sdk::Gate;

use crate::config::{Alert, Severity, Slo};

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
    /// Each burn-rate alert, in configuration order.
    pub alerts: Vec<AlertMeasure>,
    /// The error budget (with `slo.target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// One burn-rate alert as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertMeasure {
    /// Its gate's name.
    pub name: String,
    /// `page` or `ticket`.
    pub severity: Severity,
    /// Burn rate both windows must exceed.
    pub factor: f64,
    /// Seconds of the long window measured.
    pub long_s: f64,
    /// Seconds of the short window measured.
    pub short_s: f64,
    /// The configured long window, seconds.
    pub configured_long_s: f64,
    /// The configured short window, seconds.
    pub configured_short_s: f64,
    /// Burn rate over the long window.
    pub burn_long: Measure,
    /// Burn rate over the short window.
    pub burn_short: Measure,
    /// Whether it fired; `None` when a window could not be measured.
    pub fired: Option<bool>,
}

impl AlertMeasure {
    /// `a` measured as `long` and `short` over `used` seconds (`None`: the
    /// configured windows).
    pub fn new(a: &Alert, used: Option<(f64, f64)>, long: Measure, short: Measure) -> Self {
        let (cl, cs) = (a.long.as_secs_f64(), a.short.as_secs_f64());
        let (long_s, short_s) = used.unwrap_or((cl, cs));
        let fired = match (long.value, short.value) {
            (Some(l), Some(s)) => Some(fires(l, s, a.factor)),
            _ => None,
        };
        Self {
            name: a.name.clone(),
            severity: a.severity,
            factor: a.factor,
            long_s,
            short_s,
            configured_long_s: cl,
            configured_short_s: cs,
            burn_long: long,
            burn_short: short,
            fired,
        }
    }

    /// The alert's burn: the smaller of the two windows' (what is compared
    /// with the factor).
    pub fn burn(&self) -> Option<f64> {
        Some(self.burn_long.value?.min(self.burn_short.value?))
    }
}

/// The error budget over the SLO period (or, with the scrape source, over
/// what was watched).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// Failed requests / requests over `over`, 0–1.
    pub bad_ratio: Measure,
    /// What it covers: `30d`, or `the 6s watched`.
    pub over: String,
    /// Percent of the budget spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_pct: Option<f64>,
    /// Percent of the budget left (negative when overspent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_pct: Option<f64>,
}

impl Budget {
    /// The budget for an error ratio measured over `over`, against a target.
    pub fn new(bad_ratio: Measure, target_pct: f64, over: impl Into<String>) -> Self {
        let consumed_pct = bad_ratio.value.map(|r| budget_consumed_pct(r, target_pct));
        Self {
            bad_ratio,
            over: over.into(),
            consumed_pct,
            remaining_pct: consumed_pct.map(|c| 100.0 - c),
        }
    }
}

/// Burn rate of an error ratio (0–1) against a target (percent).
pub fn burn_rate(error_ratio: f64, target_pct: f64) -> f64 {
    error_ratio / (1.0 - target_pct / 100.0)
}

/// Whether an alert with `factor` fires: both windows burn faster.
pub fn fires(long: f64, short: f64, factor: f64) -> bool {
    long > factor && short > factor
}

/// Percent of the error budget `1 - target` that an error ratio over the
/// whole period spends: 100 × ratio / (1 − target). Above 100 when
/// overspent.
pub fn budget_consumed_pct(error_ratio: f64, target_pct: f64) -> f64 {
    100.0 * burn_rate(error_ratio, target_pct)
}

/// The error ratio of counted requests; no requests spent no budget.
pub fn counted_ratio(errors: f64, requests: f64) -> f64 {
    if requests > 0.0 {
        errors / requests
    } else {
        0.0
    }
}

/// Windows `(long, short)` in seconds scaled to a watch of `watched`
/// seconds: unchanged when the long window fits, else the long window
/// becomes the watch and the short one keeps its ratio to it.
pub fn scale_windows(long_s: f64, short_s: f64, watched_s: f64) -> (f64, f64) {
    if long_s <= watched_s || long_s <= 0.0 {
        (long_s, short_s)
    } else {
        (watched_s, short_s * watched_s / long_s)
    }
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

/// The gates for `m` against `slo` and its alerts (one gate each, in
/// order); `window` and `period` are for messages.
pub fn gates(m: &Measured, slo: &Slo, window: &str, period: std::time::Duration) -> Vec<Gate> {
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
    for a in &m.alerts {
        out.push(alert_gate(a, period));
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
pub fn window_text(secs: f64) -> String {
    let tenths = (secs.max(0.0) * 10.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_millis(tenths * 100)).to_string()
}

fn alert_gate(a: &AlertMeasure, period: std::time::Duration) -> Gate {
    let (cl, cs) = (
        window_text(a.configured_long_s),
        window_text(a.configured_short_s),
    );
    let (lw, sw) = (window_text(a.long_s), window_text(a.short_s));
    // Name the configured windows when the measured ones differ from them.
    let scaled = if (&lw, &sw) == (&cl, &cs) {
        String::new()
    } else {
        format!("; configured {cl} and {cs}, scaled to the watch")
    };
    // How much of the period's budget the alert lets burn before firing.
    let spent = 100.0 * a.factor * a.configured_long_s / period.as_secs_f64().max(1e-9);
    let period = window_text(period.as_secs_f64());
    let severity = a.severity.as_str();
    let g = match (a.burn_long.value, a.burn_short.value) {
        (Some(l), Some(s)) => {
            let msg = format!(
                "{severity}: burn rate {l:.2}x over {lw} and {s:.2}x over {sw} (fires when both > \
                 {:.2}x, {spent:.1}% of the {period} budget in {cl}{scaled})",
                a.factor
            );
            match (fires(l, s, a.factor), a.severity) {
                (false, _) => Gate::pass(&a.name, msg),
                (true, Severity::Page) => Gate::fail(&a.name, format!("{msg}: paging alert fired")),
                (true, Severity::Ticket) => {
                    Gate::warn(&a.name, format!("{msg}: ticket alert fired"))
                }
            }
            .observed(l.min(s))
        }
        _ => {
            let why = if a.burn_long.value.is_none() {
                &a.burn_long.missing
            } else {
                &a.burn_short.missing
            };
            let msg = format!("{severity}: burn rate could not be measured: {why}");
            // A ticket never blocks, not even unmeasured.
            match a.severity {
                Severity::Page => Gate::inconclusive(&a.name, msg),
                Severity::Ticket => Gate::warn(&a.name, msg),
            }
        }
    };
    g.threshold(a.factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Verdict;
    use std::time::Duration;

    const DAY30: Duration = Duration::from_secs(30 * 24 * 3600);

    fn measured(err: Option<f64>, p95: Option<f64>, avail: Option<f64>) -> Measured {
        Measured {
            error_rate_pct: Measure::from_option(err, "no requests in the window"),
            p95_ms: Measure::from_option(p95, "no latency observations"),
            availability_pct: Measure::from_option(avail, "no data"),
            alerts: vec![],
            budget: None,
        }
    }

    const SLO: Slo = Slo {
        error_rate: Some(1.0),
        p95_ms: Some(300.0),
        availability: Some(99.0),
        target: Some(99.9),
    };

    fn alert(name: &str, long: u64, short: u64, factor: f64, severity: Severity) -> Alert {
        Alert {
            name: name.into(),
            long: Duration::from_secs(long),
            short: Duration::from_secs(short),
            factor,
            severity,
        }
    }

    fn with_alerts(alerts: Vec<AlertMeasure>) -> Measured {
        Measured {
            alerts,
            ..measured(None, None, None)
        }
    }

    #[test]
    fn each_slo_is_a_gate_with_observed_and_threshold() {
        let g = gates(
            &measured(Some(2.5), Some(120.0), Some(97.5)),
            &SLO,
            "60s",
            DAY30,
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
        let g = gates(&measured(None, Some(1.0), Some(100.0)), &SLO, "60s", DAY30);
        assert_eq!(g[0].verdict, Verdict::Inconclusive);
        assert_eq!(
            g[0].message,
            "error rate could not be measured over 60s: no requests in the window"
        );
        assert!(gates(&measured(None, None, None), &Slo::default(), "1s", DAY30).is_empty());
    }

    #[test]
    fn burn_math_follows_the_workbook() {
        // 99.9% target: 1.44% errors burns 14.4x the budget, which spends 2%
        // of a 30-day budget in an hour.
        assert!((burn_rate(0.0144, 99.9) - 14.4).abs() < 1e-9);
        assert!((burn_rate(0.001, 99.9) - 1.0).abs() < 1e-9);
        assert!(fires(14.5, 20.0, 14.4));
        assert!(!fires(14.4, 20.0, 14.4), "at the factor is not above it");
        assert!(!fires(20.0, 1.0, 14.4));
        let m = AlertMeasure::new(
            &alert("p", 3600, 300, 14.4, Severity::Page),
            None,
            Measure::of(20.0),
            Measure::of(30.0),
        );
        assert_eq!(m.fired, Some(true));
        assert_eq!(m.burn(), Some(20.0));
        let g = gates(&with_alerts(vec![m]), &Slo::default(), "60s", DAY30);
        assert_eq!(g[0].verdict, Verdict::Fail);
        assert_eq!(g[0].observed, Some(20.0));
        assert_eq!(
            g[0].message,
            "page: burn rate 20.00x over 1h and 30.00x over 5m (fires when both > 14.40x, \
             2.0% of the 30days budget in 1h): paging alert fired"
        );
    }

    #[test]
    fn a_fired_ticket_warns_and_a_page_fails() {
        let m =
            |a: &Alert, l: f64, s: f64| AlertMeasure::new(a, None, Measure::of(l), Measure::of(s));
        let page = alert("page-6h", 6 * 3600, 1800, 6.0, Severity::Page);
        let ticket = alert("ticket-1d", 24 * 3600, 7200, 3.0, Severity::Ticket);
        let g = gates(
            &with_alerts(vec![m(&page, 4.0, 8.0), m(&ticket, 4.0, 8.0)]),
            &Slo::default(),
            "60s",
            DAY30,
        );
        assert_eq!(g[0].verdict, Verdict::Pass, "{}", g[0].message);
        assert_eq!(g[1].verdict, Verdict::Warn, "{}", g[1].message);
        assert!(
            g[1].message.ends_with("ticket alert fired"),
            "{}",
            g[1].message
        );
        assert!(g[1].message.contains("10.0% of the 30days budget in 1day"));
        // Unmeasured: a page is inconclusive (blocks), a ticket only warns.
        let none = |a: &Alert| {
            AlertMeasure::new(a, None, Measure::missing("no requests"), Measure::of(1.0))
        };
        let g = gates(
            &with_alerts(vec![none(&page), none(&ticket)]),
            &Slo::default(),
            "60s",
            DAY30,
        );
        assert_eq!(g[0].verdict, Verdict::Inconclusive);
        assert_eq!(g[1].verdict, Verdict::Warn);
        assert_eq!(
            g[1].message,
            "ticket: burn rate could not be measured: no requests"
        );
    }

    #[test]
    fn scaled_windows_keep_their_ratio_and_are_named() {
        assert_eq!(scale_windows(3600.0, 300.0, 6.0), (6.0, 0.5));
        assert_eq!(
            scale_windows(72.0 * 3600.0, 6.0 * 3600.0, 12.0),
            (12.0, 1.0)
        );
        // A window that fits the watch is left alone.
        assert_eq!(scale_windows(10.0, 5.0, 30.0), (10.0, 5.0));
        let m = AlertMeasure::new(
            &alert("burn-rate", 3600, 300, 14.4, Severity::Page),
            Some((6.0, 1.0)),
            Measure::of(20.0),
            Measure::of(30.0),
        );
        assert_eq!(
            gates(&with_alerts(vec![m]), &Slo::default(), "6s", DAY30)[0].message,
            "page: burn rate 20.00x over 6s and 30.00x over 1s (fires when both > 14.40x, \
             2.0% of the 30days budget in 1h; configured 1h and 5m, scaled to the watch): \
             paging alert fired"
        );
    }

    #[test]
    fn budget_formula_can_go_negative_and_zero_traffic_spends_nothing() {
        // 99.9%: 0.05% errors over the period spent half the budget.
        let b = Budget::new(Measure::of(0.0005), 99.9, "30days");
        assert!((b.consumed_pct.unwrap_or_default() - 50.0).abs() < 1e-9);
        assert!((b.remaining_pct.unwrap_or_default() - 50.0).abs() < 1e-9);
        // 0.25% errors: 2.5 budgets, 150% overspent.
        let b = Budget::new(Measure::of(0.0025), 99.9, "30days");
        assert!((b.remaining_pct.unwrap_or_default() + 150.0).abs() < 1e-9);
        assert_eq!(counted_ratio(0.0, 0.0), 0.0);
        assert_eq!(
            Budget::new(Measure::of(counted_ratio(0.0, 0.0)), 99.0, "6s").remaining_pct,
            Some(100.0)
        );
        assert_eq!(counted_ratio(1.0, 4.0), 0.25);
        // Unmeasured (Prometheus: no data) gives no numbers, not 100%.
        let b = Budget::new(Measure::missing("no data"), 99.9, "30days");
        assert_eq!((b.consumed_pct, b.remaining_pct), (None, None));
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
