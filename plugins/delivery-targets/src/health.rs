//! Health probes of a slot: `GET <url><path>` (default `/health`) must
//! answer 200 within the timeout, and optionally `GET <url>/version` must
//! name the expected version (plain text, or JSON with a `version` field).
//! Retried with a fixed interval.

use std::time::{Duration, Instant};

use sluice_sdk::http::{HttpError, Method, Request};

/// How to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path of the health endpoint.
    pub path: String,
    /// Path of the version endpoint, checked when a version is expected.
    pub version_path: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts after the first failure.
    pub retries: u32,
    /// Wait between attempts.
    pub interval: Duration,
}

impl Default for HealthCheck {
    /// `/health`, `/version`, 5 s timeout, 5 retries 1 s apart.
    fn default() -> Self {
        Self {
            path: "/health".into(),
            version_path: "/version".into(),
            timeout: Duration::from_secs(5),
            retries: 5,
            interval: Duration::from_secs(1),
        }
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthOutcome {
    /// Healthy (and the right version when one was expected).
    pub healthy: bool,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt saw.
    pub message: String,
    /// Latency of the last health request in ms.
    pub latency_ms: f64,
}

impl HealthCheck {
    /// Probes `base_url` until healthy or out of retries. A denied request
    /// (no `grants.network` for the host) is returned at once as `Err`.
    pub fn check(&self, base_url: &str, version: Option<&str>) -> Result<HealthOutcome, HttpError> {
        let base = base_url.trim_end_matches('/');
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (healthy, message, latency_ms) = self.once(base, version)?;
            if healthy || attempts > self.retries {
                return Ok(HealthOutcome {
                    healthy,
                    attempts,
                    message,
                    latency_ms,
                });
            }
            std::thread::sleep(self.interval);
        }
    }

    fn once(&self, base: &str, version: Option<&str>) -> Result<(bool, String, f64), HttpError> {
        let url = format!("{base}{}", self.path);
        let start = Instant::now();
        let resp = Request::new(Method::Get, &url).timeout(self.timeout).send();
        let latency = start.elapsed().as_secs_f64() * 1000.0;
        let resp = match resp {
            Ok(r) => r,
            Err(HttpError::Denied(m)) => return Err(HttpError::Denied(m)),
            Err(e) => return Ok((false, format!("GET {url}: {e}"), latency)),
        };
        if resp.status != 200 {
            return Ok((
                false,
                format!("GET {url} answered {} (expected 200)", resp.status),
                latency,
            ));
        }
        let Some(expected) = version else {
            return Ok((true, format!("GET {url} answered 200"), latency));
        };
        let vurl = format!("{base}{}", self.version_path);
        match Request::new(Method::Get, &vurl)
            .timeout(self.timeout)
            .send()
        {
            Ok(r) if r.status == 200 => {
                let got = reported_version(&r.text());
                if got == expected {
                    Ok((true, format!("healthy, version {got}"), latency))
                } else {
                    Ok((
                        false,
                        format!("GET {vurl} reports version `{got}`, expected `{expected}`"),
                        latency,
                    ))
                }
            }
            Ok(r) => Ok((false, format!("GET {vurl} answered {}", r.status), latency)),
            Err(HttpError::Denied(m)) => Err(HttpError::Denied(m)),
            Err(e) => Ok((false, format!("GET {vurl}: {e}"), latency)),
        }
    }
}

/// The version in a `/version` body: JSON `{"version": …}` or plain text.
///
/// ```
/// use sluice_delivery::health::reported_version;
/// assert_eq!(reported_version("{\"version\": \"2.0.0\"}"), "2.0.0");
/// assert_eq!(reported_version("2.0.0\n"), "2.0.0");
/// ```
pub fn reported_version(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(s) = v.get("version").and_then(|v| v.as_str()) {
            return s.to_string();
        }
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
    }
    body.trim().to_string()
}
