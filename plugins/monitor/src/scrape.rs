//! The `scrape` source's arithmetic: what one `/metrics` exposition says
//! about requests, errors and latency buckets ([`Snapshot`]), the counter
//! increases between two scrapes ([`Delta`], with Prometheus' reset
//! handling), and the quantile of a bucket histogram exactly as PromQL's
//! `histogram_quantile` computes it.

use std::collections::BTreeMap;

use crate::config::Scrape;
use crate::promtext::{Exposition, Sample};

/// Labels tried, in order, when `status-label` is not given.
pub const STATUS_LABELS: [&str; 3] = ["code", "status", "status_code"];

/// The counters of one scrape that the monitor uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// When it was taken (seconds, any fixed origin).
    pub at: f64,
    /// Request counter series → (value, counts as an error).
    pub requests: BTreeMap<String, (f64, bool)>,
    /// Bucket series (labels include `le`) → (upper bound, cumulative count).
    pub buckets: BTreeMap<String, (f64, f64)>,
    /// Whether the exposition had the request counter at all.
    pub has_requests: bool,
    /// Whether it had the latency histogram at all.
    pub has_latency: bool,
}

/// Whether `p` is an exact status (`500`) or a class (`5xx`).
pub fn valid_status_pattern(p: &str) -> bool {
    let p = p.trim().to_ascii_lowercase();
    if let Some(class) = p.strip_suffix("xx") {
        return matches!(class, "1" | "2" | "3" | "4" | "5");
    }
    p.len() == 3 && p.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c))
}

fn status_matches(patterns: &[String], status: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        match p.strip_suffix("xx") {
            Some(class) => status.len() == 3 && status.starts_with(class),
            None => p == status,
        }
    })
}

fn selected(cfg: &Scrape, s: &Sample) -> bool {
    cfg.labels
        .iter()
        .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == v))
        && !cfg
            .exclude
            .iter()
            .any(|(k, vs)| s.labels.get(k).is_some_and(|x| vs.contains(x)))
}

fn key(s: &Sample) -> String {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", s.name, labels.join(","))
}

/// Reads what the monitor needs from one exposition.
pub fn snapshot(exp: &Exposition, cfg: &Scrape, at: f64) -> Result<Snapshot, String> {
    let mut snap = Snapshot {
        at,
        ..Snapshot::default()
    };
    let requests: Vec<&Sample> = exp.named(&cfg.requests).collect();
    snap.has_requests = !requests.is_empty();
    let label = match &cfg.status_label {
        Some(l) => Some(l.clone()),
        None => STATUS_LABELS
            .iter()
            .find(|l| requests.iter().any(|s| s.labels.contains_key(**l)))
            .map(|l| l.to_string()),
    };
    if snap.has_requests && label.is_none() {
        return Err(format!(
            "the series of `{}` have none of the labels {}; set with.source.scrape.status-label \
             to the label that holds the response status",
            cfg.requests,
            STATUS_LABELS.join(", ")
        ));
    }
    for s in requests.into_iter().filter(|s| selected(cfg, s)) {
        let label = label.as_deref().unwrap_or("code");
        let Some(status) = s.labels.get(label) else {
            return Err(format!(
                "series {} has no `{label}` label (with.source.scrape.status-label)",
                key(s)
            ));
        };
        let is_error = status_matches(&cfg.error_status, status);
        snap.requests.insert(key(s), (s.value, is_error));
    }
    let bucket_name = format!("{}_bucket", cfg.latency);
    for s in exp.named(&bucket_name) {
        snap.has_latency = true;
        if !selected(cfg, s) {
            continue;
        }
        let Some(le) = s
            .labels
            .get("le")
            .and_then(|v| crate::promtext::parse_value(v))
        else {
            return Err(format!("bucket {} has no numeric `le` label", key(s)));
        };
        snap.buckets.insert(key(s), (le, s.value));
    }
    Ok(snap)
}

/// What happened between two scrapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    /// End of the interval (the later scrape's time).
    pub at: f64,
    /// Requests counted.
    pub requests: f64,
    /// Of which errors.
    pub errors: f64,
    /// Latency observations per bucket upper bound (cumulative), summed over series.
    pub buckets: Vec<(f64, f64)>,
}

/// A counter's increase: a drop means the process restarted (counted from
/// zero again), and a series that is new counts from zero.
fn increase(prev: Option<f64>, cur: f64) -> f64 {
    match prev {
        Some(p) if cur >= p => cur - p,
        _ => cur,
    }
}

/// The increases from `prev` to `cur`.
pub fn delta(prev: &Snapshot, cur: &Snapshot) -> Delta {
    let mut d = Delta {
        at: cur.at,
        ..Delta::default()
    };
    for (k, (v, is_error)) in &cur.requests {
        let inc = increase(prev.requests.get(k).map(|p| p.0), *v);
        d.requests += inc;
        if *is_error {
            d.errors += inc;
        }
    }
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for (k, (le, v)) in &cur.buckets {
        let inc = increase(prev.buckets.get(k).map(|p| p.1), *v);
        add_bucket(&mut by_le, *le, inc);
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.buckets = by_le;
    d
}

fn add_bucket(buckets: &mut Vec<(f64, f64)>, le: f64, count: f64) {
    match buckets.iter_mut().find(|(l, _)| *l == le) {
        Some((_, c)) => *c += count,
        None => buckets.push((le, count)),
    }
}

/// The sum of the intervals that ended after `since`.
pub fn sum(deltas: &[Delta], since: f64) -> Delta {
    let mut out = Delta::default();
    for d in deltas.iter().filter(|d| d.at > since) {
        out.at = out.at.max(d.at);
        out.requests += d.requests;
        out.errors += d.errors;
        for (le, c) in &d.buckets {
            add_bucket(&mut out.buckets, *le, *c);
        }
    }
    out.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// `histogram_quantile(q, buckets)` as PromQL computes it, for cumulative
/// `(upper bound, count)` buckets: linear interpolation inside the bucket
/// holding the rank; the lower bound of the first bucket is 0 (or its upper
/// bound when that is not positive); a rank in the `+Inf` bucket gives the
/// highest finite upper bound. `None` without a `+Inf` bucket, with fewer
/// than two buckets, or with no observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.len() < 2 || b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return None;
    }
    // Counts are cumulative and must not decrease (scrape skew can break
    // that); PromQL makes them monotonic the same way.
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let n = b.len();
    let observations = b[n - 1].1;
    if observations <= 0.0 {
        return None;
    }
    let mut rank = q * observations;
    let i = b.iter().position(|x| x.1 >= rank).unwrap_or(n - 1);
    if i == n - 1 {
        return Some(b[n - 2].0);
    }
    if i == 0 && b[0].0 <= 0.0 {
        return Some(b[0].0);
    }
    let (mut start, end, mut count) = (0.0, b[i].0, b[i].1);
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    if count <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank / count))
}

/// Milliseconds per unit of the histogram named `name` (`_seconds` → 1000,
/// `_milliseconds`/`_ms` → 1).
pub fn ms_per_unit(name: &str) -> f64 {
    if name.ends_with("_milliseconds") || name.ends_with("_ms") {
        1.0
    } else {
        1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promtext::parse;

    fn cfg() -> Scrape {
        Scrape {
            url: "http://h/metrics".into(),
            requests: "http_requests_total".into(),
            status_label: None,
            error_status: vec!["5xx".into()],
            latency: "http_request_duration_seconds".into(),
            labels: BTreeMap::new(),
            exclude: BTreeMap::from([("path".to_string(), vec!["/metrics".to_string()])]),
        }
    }

    fn snap(text: &str, at: f64) -> Snapshot {
        let exp = parse(text).unwrap_or_default();
        snapshot(&exp, &cfg(), at).unwrap_or_default()
    }

    const T0: &str = r#"
http_requests_total{path="/",status="200"} 10
http_requests_total{path="/metrics",status="200"} 4
http_request_duration_seconds_bucket{path="/",le="0.1"} 8
http_request_duration_seconds_bucket{path="/",le="1"} 10
http_request_duration_seconds_bucket{path="/",le="+Inf"} 10
"#;
    const T1: &str = r#"
http_requests_total{path="/",status="200"} 100
http_requests_total{path="/",status="500"} 10
http_requests_total{path="/metrics",status="200"} 5
http_request_duration_seconds_bucket{path="/",le="0.1"} 80
http_request_duration_seconds_bucket{path="/",le="1"} 110
http_request_duration_seconds_bucket{path="/",le="+Inf"} 110
"#;

    #[test]
    fn deltas_count_new_series_and_skip_excluded_ones() {
        let d = delta(&snap(T0, 0.0), &snap(T1, 5.0));
        assert_eq!(d.requests, 100.0);
        assert_eq!(d.errors, 10.0);
        assert_eq!(
            d.buckets,
            vec![(0.1, 72.0), (1.0, 100.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(d.at, 5.0);
    }

    #[test]
    fn a_counter_that_drops_was_reset() {
        let reset = "http_requests_total{path=\"/\",status=\"200\"} 3\n";
        let d = delta(&snap(T1, 5.0), &snap(reset, 10.0));
        assert_eq!(d.requests, 3.0);
    }

    #[test]
    fn sums_over_a_trailing_window() {
        let a = Delta {
            at: 1.0,
            requests: 10.0,
            errors: 1.0,
            buckets: vec![(1.0, 5.0), (f64::INFINITY, 10.0)],
        };
        let b = Delta {
            at: 2.0,
            requests: 20.0,
            errors: 0.0,
            buckets: vec![(1.0, 20.0), (f64::INFINITY, 20.0)],
        };
        let all = sum(&[a.clone(), b.clone()], f64::NEG_INFINITY);
        assert_eq!((all.requests, all.errors), (30.0, 1.0));
        assert_eq!(all.buckets, vec![(1.0, 25.0), (f64::INFINITY, 30.0)]);
        let last = sum(&[a, b], 1.5);
        assert_eq!(last.requests, 20.0);
    }

    #[test]
    fn status_label_is_found_or_explained() {
        let exp = parse("http_requests_total{path=\"/\",code=\"503\"} 2").unwrap_or_default();
        let s = snapshot(&exp, &cfg(), 0.0).unwrap_or_default();
        assert_eq!(s.requests.values().next(), Some(&(2.0, true)));
        let exp = parse("http_requests_total{path=\"/\",result=\"503\"} 2").unwrap_or_default();
        let e = snapshot(&exp, &cfg(), 0.0).err().unwrap_or_default();
        assert!(e.contains("status-label"), "{e}");
    }

    #[test]
    fn quantiles_match_promql() {
        // Worked through by hand with PromQL's bucketQuantile.
        let b = [(0.1, 72.0), (1.0, 100.0), (f64::INFINITY, 100.0)];
        // rank 95 lies in (0.1, 1]: 0.1 + 0.9 * (95 - 72) / 28
        let q = histogram_quantile(0.95, &b).unwrap_or_default();
        assert!((q - (0.1 + 0.9 * 23.0 / 28.0)).abs() < 1e-12, "{q}");
        // rank 50 lies in the first bucket: 0 + 0.1 * 50 / 72
        assert_eq!(histogram_quantile(0.5, &b), Some(0.1 * 50.0 / 72.0));
        // a rank in +Inf gives the highest finite bound
        let tail = [(0.1, 10.0), (1.0, 50.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.95, &tail), Some(1.0));
        assert_eq!(
            histogram_quantile(0.95, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.95, &[(1.0, 3.0), (2.0, 4.0)]), None);
        assert_eq!(histogram_quantile(0.95, &[(f64::INFINITY, 4.0)]), None);
        // non-monotonic counts are fixed as PromQL does
        let skew = [(0.1, 10.0), (0.5, 9.0), (f64::INFINITY, 10.0)];
        assert_eq!(histogram_quantile(0.5, &skew), Some(0.05));
    }

    #[test]
    fn status_patterns() {
        assert!(valid_status_pattern("5xx") && valid_status_pattern("429"));
        assert!(!valid_status_pattern("5x") && !valid_status_pattern("700"));
        let p = vec!["5xx".to_string(), "429".to_string()];
        assert!(status_matches(&p, "503") && status_matches(&p, "429"));
        assert!(!status_matches(&p, "404") && !status_matches(&p, "5000"));
    }
}
