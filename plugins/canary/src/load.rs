//! Synthetic load: when no router carries real traffic (plain `local`), the
//! stage sends its own requests to the baseline (stable slot) and canary
//! (candidate slot) URLs, interleaved so both see the same conditions, and
//! records each request's latency and whether it failed (status >= 500 or
//! a transport error such as a refused connection or a timeout).

use std::time::{Duration, Instant};

use sluice_sdk::StageError;

use crate::stats::{mean, quantile};

/// What one request did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Time to the whole response, in milliseconds.
    pub latency_ms: f64,
    /// Status >= 500 or no response.
    pub error: bool,
}

/// The response to one request as the sender saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status.
    Status(u16),
    /// No response (connection refused, timeout, protocol error).
    Transport(String),
}

/// Samples of both sides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Load {
    /// Requests to the stable slot.
    pub baseline: Vec<Sample>,
    /// Requests to the candidate slot.
    pub canary: Vec<Sample>,
    /// The first transport error seen, for messages.
    pub first_error: Option<String>,
}

/// A value computed from a side's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Share of failed requests, 0..=1.
    ErrorRate,
    /// Mean latency in ms.
    LatencyMean,
    /// Median latency in ms.
    LatencyP50,
    /// 95th percentile latency in ms.
    LatencyP95,
    /// 99th percentile latency in ms.
    LatencyP99,
}

impl Measure {
    /// The value over `samples` (NaN when there are none).
    pub fn of(self, samples: &[Sample]) -> f64 {
        let lat: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
        match self {
            Measure::ErrorRate => mean(&errors(samples)),
            Measure::LatencyMean => mean(&lat),
            Measure::LatencyP50 => quantile(&lat, 0.5),
            Measure::LatencyP95 => quantile(&lat, 0.95),
            Measure::LatencyP99 => quantile(&lat, 0.99),
        }
    }
}

/// Latencies in ms.
pub fn latencies(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.latency_ms).collect()
}

/// 1.0 per failed request, 0.0 per good one.
pub fn errors(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| f64::from(u8::from(s.error)))
        .collect()
}

/// `base` + `path`, with exactly one `/` between them.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Sends `requests` requests to each of `baseline_url` and `canary_url`,
/// alternating which side goes first. `send` returns `Err` only for errors
/// that must stop the stage (a denied destination); a failed request is an
/// `Outcome`.
pub fn generate(
    requests: u32,
    baseline_url: &str,
    canary_url: Option<&str>,
    mut send: impl FnMut(&str) -> Result<Outcome, StageError>,
) -> Result<Load, StageError> {
    let mut load = Load::default();
    let mut one = |url: &str, load: &mut Load| -> Result<Sample, StageError> {
        let start = Instant::now();
        let outcome = send(url)?;
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let error = match outcome {
            Outcome::Status(s) => s >= 500,
            Outcome::Transport(e) => {
                load.first_error.get_or_insert(format!("{url}: {e}"));
                true
            }
        };
        Ok(Sample { latency_ms, error })
    };
    for i in 0..requests {
        if i % 2 == 0 {
            let b = one(baseline_url, &mut load)?;
            load.baseline.push(b);
            if let Some(c) = canary_url {
                let c = one(c, &mut load)?;
                load.canary.push(c);
            }
        } else {
            if let Some(c) = canary_url {
                let c = one(c, &mut load)?;
                load.canary.push(c);
            }
            let b = one(baseline_url, &mut load)?;
            load.baseline.push(b);
        }
    }
    Ok(load)
}

/// The real sender: a `GET` through the host's HTTP with `timeout`.
pub fn http_get(timeout: Duration) -> impl FnMut(&str) -> Result<Outcome, StageError> {
    move |url: &str| {
        use sluice_sdk::http::{HttpError, Method, Request};
        match Request::new(Method::Get, url).timeout(timeout).send() {
            Ok(r) => Ok(Outcome::Status(r.status)),
            Err(e @ HttpError::Denied(_)) => Err(e.into()),
            Err(e) => Ok(Outcome::Transport(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_and_classifies() {
        let mut seen = Vec::new();
        let load = generate(3, "http://b", Some("http://c"), |u| {
            seen.push(u.to_string());
            Ok(match (u, seen.len()) {
                ("http://c", 2) => Outcome::Status(503),
                ("http://c", _) => Outcome::Transport("refused".into()),
                _ => Outcome::Status(200),
            })
        })
        .expect("load");
        assert_eq!(
            seen,
            ["http://b", "http://c", "http://c", "http://b", "http://b", "http://c"]
        );
        assert_eq!(load.baseline.len(), 3);
        assert_eq!(errors(&load.canary), vec![1.0, 1.0, 1.0]);
        assert_eq!(Measure::ErrorRate.of(&load.baseline), 0.0);
        assert_eq!(load.first_error.as_deref(), Some("http://c: refused"));
    }

    #[test]
    fn denied_stops() {
        let r = generate(2, "http://b", None, |_| {
            Err(StageError::denied(sluice_sdk::Capability::network("b:80")))
        });
        assert!(matches!(r, Err(StageError::Denied(_))));
    }

    #[test]
    fn measures() {
        let s: Vec<Sample> = (1..=100)
            .map(|i| Sample {
                latency_ms: f64::from(i),
                error: i % 4 == 0,
            })
            .collect();
        assert_eq!(Measure::ErrorRate.of(&s), 0.25);
        assert_eq!(Measure::LatencyMean.of(&s), 50.5);
        assert_eq!(Measure::LatencyP50.of(&s), 50.5);
        assert!((Measure::LatencyP95.of(&s) - 95.05).abs() < 1e-9);
        assert_eq!(join("http://h:1/", "/health"), "http://h:1/health");
    }
}
