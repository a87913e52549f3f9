//! Running one probe: send, check, and retry with exponential back-off
//! until the checks hold or the attempts are used up. The HTTP client and
//! the clock are behind [`Transport`], so this logic runs in unit tests.

use std::time::Duration;

use serde::Serialize;

use crate::check::{self, Failure, Observed};
use crate::config::Probe;

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The host refused the destination (`host:port`, missing from
    /// `grants.network`): never retried.
    #[error("{0}")]
    Denied(String),
    /// Connection refused, timeout, DNS, body error…: retried.
    #[error("{0}")]
    Failed(String),
}

/// Sends requests and sleeps; the stage uses the SDK's HTTP client.
pub trait Transport {
    /// Sends one probe's request and returns the response.
    fn send(&mut self, probe: &Probe, timeout: Duration) -> Result<Observed, SendError>;
    /// Waits `d` before the next attempt.
    fn sleep(&mut self, d: Duration);
}

/// How attempts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the second attempt.
    pub first: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Wait before attempt `n + 1` (after `n` failed attempts, `n >= 1`):
    /// `first * 2^(n-1)`, capped at `max`.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << exp).min(self.max)
    }
}

/// The outcome of one probe (its last attempt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    /// Probe name.
    pub name: String,
    /// Method.
    pub method: String,
    /// URL probed.
    pub url: String,
    /// Whether every check held on the last attempt.
    pub passed: bool,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// Status of the last response, if any.
    pub status: Option<u16>,
    /// Latency of the last response in milliseconds, if any.
    pub latency_ms: Option<f64>,
    /// The checks that failed on the last attempt.
    pub failures: Vec<Failure>,
    /// Waits between attempts, in milliseconds.
    pub backoff_ms: Vec<f64>,
}

/// A denied request (to this `host:port`) stops the stage: retrying cannot
/// help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

/// Runs `probe`, retrying failed attempts with `backoff`.
pub fn run(
    t: &mut dyn Transport,
    probe: &Probe,
    timeout: Duration,
    backoff: Backoff,
) -> Result<ProbeResult, Denied> {
    let mut waits = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (status, latency, failures) = match t.send(probe, timeout) {
            Ok(resp) => (
                Some(resp.status),
                Some(check::millis(resp.latency)),
                check::check(probe, &resp),
            ),
            Err(SendError::Denied(m)) => return Err(Denied(m)),
            Err(SendError::Failed(m)) => (None, None, vec![Failure::request(m)]),
        };
        let passed = failures.is_empty();
        if passed || attempt > probe.retries {
            if !passed {
                sluice_sdk::warn!(
                    "probe {}: failed after {attempt} attempt(s): {}",
                    probe.name,
                    failures
                        .iter()
                        .map(Failure::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
            return Ok(ProbeResult {
                name: probe.name.clone(),
                method: probe.method.clone(),
                url: probe.url.clone(),
                passed,
                attempts: attempt,
                status,
                latency_ms: latency,
                failures,
                backoff_ms: waits,
            });
        }
        let wait = backoff.delay(attempt);
        sluice_sdk::info!(
            "probe {}: attempt {attempt} failed ({}); retrying in {}",
            probe.name,
            failures
                .iter()
                .map(Failure::describe)
                .collect::<Vec<_>>()
                .join("; "),
            check::ms(wait)
        );
        waits.push(check::millis(wait));
        t.sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::StatusSpec;

    struct Scripted {
        responses: Vec<Result<Observed, SendError>>,
        slept: Vec<Duration>,
    }

    impl Transport for Scripted {
        fn send(&mut self, _: &Probe, _: Duration) -> Result<Observed, SendError> {
            if self.responses.is_empty() {
                return Err(SendError::Failed("no more responses".into()));
            }
            self.responses.remove(0)
        }
        fn sleep(&mut self, d: Duration) {
            self.slept.push(d);
        }
    }

    fn probe(retries: u32) -> Probe {
        Probe {
            name: "p".into(),
            method: "GET".into(),
            url: "http://h/".into(),
            headers: vec![],
            body: None,
            expect_status: StatusSpec::default(),
            body_contains: vec![],
            json: vec![],
            max_latency: None,
            retries,
        }
    }

    fn ok(status: u16) -> Result<Observed, SendError> {
        Ok(Observed {
            status,
            body: vec![],
            latency: Duration::from_millis(3),
        })
    }

    const B: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_millis(300),
    };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d: Vec<u128> = (1..=4).map(|n| B.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 300, 300]);
    }

    #[test]
    fn retries_until_the_checks_hold() -> Result<(), Denied> {
        let mut t = Scripted {
            responses: vec![
                Err(SendError::Failed("connection refused".into())),
                ok(503),
                ok(200),
            ],
            slept: vec![],
        };
        let r = run(&mut t, &probe(3), Duration::from_secs(1), B)?;
        assert!(r.passed);
        assert_eq!(r.attempts, 3);
        assert_eq!(r.status, Some(200));
        assert_eq!(
            t.slept,
            [Duration::from_millis(100), Duration::from_millis(200)]
        );
        assert_eq!(r.backoff_ms, [100.0, 200.0]);
        Ok(())
    }

    #[test]
    fn gives_up_after_the_last_retry() -> Result<(), Denied> {
        let mut t = Scripted {
            responses: vec![ok(500), ok(500)],
            slept: vec![],
        };
        let r = run(&mut t, &probe(1), Duration::from_secs(1), B)?;
        assert!(!r.passed);
        assert_eq!(r.attempts, 2);
        assert_eq!(r.failures[0].check, "status");
        Ok(())
    }

    #[test]
    fn no_response_is_a_request_failure() -> Result<(), Denied> {
        let mut t = Scripted {
            responses: vec![Err(SendError::Failed("connection refused".into()))],
            slept: vec![],
        };
        let r = run(&mut t, &probe(0), Duration::from_secs(1), B)?;
        assert_eq!(
            r.failures[0].describe(),
            "request: observed connection refused, expected a response"
        );
        assert_eq!(r.status, None);
        Ok(())
    }

    #[test]
    fn denied_stops_at_once() {
        let mut t = Scripted {
            responses: vec![Err(SendError::Denied("grants.network".into()))],
            slept: vec![],
        };
        assert_eq!(
            run(&mut t, &probe(5), Duration::from_secs(1), B),
            Err(Denied("grants.network".into()))
        );
        assert!(t.slept.is_empty());
    }
}
