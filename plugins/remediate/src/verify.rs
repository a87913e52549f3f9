//! Verifying the remediation: the restored slot must be healthy and report
//! the expected version ([`sluice_delivery::HealthCheck`]), and, when
//! `verify.url` names a router, every one of `samples` requests through it
//! must be answered by that version. The stage samples the router as users
//! are routed (feature flags bucket by the `X-User` header): one request
//! per user id `user-0` … `user-<n-1>` ([`user_sample_size`]), and every
//! user must get that version; the share of users reaching each release is
//! reported.

use std::time::{Duration, Instant};

use serde::Serialize;
use sluice_delivery::health::reported_version;
use sluice_delivery::{HealthCheck, SlotVersion, TargetConfig};
use sluice_sdk::http::{HttpError, Method, Request};
use sluice_sdk::StageError;

use crate::config::Verify;

/// What the verification found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// `passed`, `failed` or `skipped`.
    pub outcome: String,
    /// The slot URL probed, if any.
    pub slot_url: Option<String>,
    /// Attempts on the slot.
    pub attempts: u32,
    /// The version expected.
    pub expected_version: String,
    /// What the last probe saw.
    pub message: String,
    /// The router URL sampled, if any.
    pub router_url: Option<String>,
    /// Router answers by version (`version -> count`).
    pub router_versions: Vec<(String, u32)>,
    /// Time spent verifying.
    pub duration_ms: u64,
}

impl Verification {
    /// Whether the verification passed.
    pub fn passed(&self) -> bool {
        self.outcome == "passed"
    }
}

fn denied(e: HttpError) -> StageError {
    match e {
        HttpError::Denied(host_port) => {
            sluice_sdk::error!(
                "HTTP request to {host_port} refused: add the slot's and router's host:port to \
                 `grants.network` (e.g. `127.0.0.1:*`)"
            );
            StageError::denied(sluice_sdk::Capability::Network(host_port))
        }
        other => StageError::failed(other.to_string()),
    }
}

/// The header the example router (and `sluice_delivery::flags`) bucket
/// users by.
pub const USER_HEADER: &str = "X-User";

/// How many distinct user ids to sample when flags route by user: at least
/// 100 (so a flag at a few percent is seen), or `samples` when larger.
pub fn user_sample_size(v: &Verify) -> u32 {
    v.samples.max(100)
}

/// Runs the verification for `expect` on `target`. `users`: 0 samples the
/// router without a user; otherwise one request for each of `users`
/// user ids (`X-User: user-<i>`), for when flags route by user.
pub fn run(
    v: &Verify,
    target: &TargetConfig,
    expect: &SlotVersion,
    users: u32,
) -> Result<Verification, StageError> {
    let started = Instant::now();
    let mut out = Verification {
        outcome: "skipped".into(),
        slot_url: target.slots.get(&expect.slot).cloned(),
        attempts: 0,
        expected_version: expect.version.clone(),
        message: String::new(),
        router_url: v.url.clone(),
        router_versions: Vec::new(),
        duration_ms: 0,
    };
    if !v.enabled {
        out.message = "verification disabled (with.verify.enabled: false)".into();
        return Ok(out);
    }
    match out.slot_url.clone() {
        None if v.url.is_none() => {
            out.outcome = "failed".into();
            out.message = format!(
                "no URL for slot `{}` in with.target.slots and no with.verify.url, so the \
                 rollback cannot be verified; add one of them",
                expect.slot
            );
            return Ok(out);
        }
        None => {
            out.message = format!("slot {}: no URL in with.target.slots", expect.slot);
        }
        Some(slot_url) => {
            let check = HealthCheck {
                path: v.health_path.clone(),
                version_path: v.version_path.clone().unwrap_or_else(|| "/version".into()),
                timeout: v.timeout,
                retries: v.retries.saturating_sub(1),
                interval: v.interval,
            };
            let expected = v.version_path.as_ref().map(|_| expect.version.as_str());
            let health = check.check(&slot_url, expected).map_err(denied)?;
            out.attempts = health.attempts;
            out.message = format!("slot {} ({slot_url}): {}", expect.slot, health.message);
            if !health.healthy {
                out.outcome = "failed".into();
                out.duration_ms = elapsed_ms(started);
                return Ok(out);
            }
        }
    }
    if let Some(url) = &v.url {
        let path = v.version_path.as_deref().unwrap_or("/version");
        let (ok, versions, msg) = sample_router(url, path, &expect.version, v, users)?;
        out.router_versions = versions;
        out.message = format!("{}; router {url}: {msg}", out.message);
        if !ok {
            out.outcome = "failed".into();
            out.duration_ms = elapsed_ms(started);
            return Ok(out);
        }
    }
    out.outcome = "passed".into();
    out.duration_ms = elapsed_ms(started);
    Ok(out)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether every router answer named the version, the answers by version,
/// and a sentence.
type RouterSample = (bool, Vec<(String, u32)>, String);

/// Sends `samples` requests to the router (with `users` > 0: one per user
/// id `user-0` … `user-<users-1>` in `X-User`), retrying the whole batch (a
/// router may take a moment to pick up the new files) until every answer
/// names `expected` or the attempts run out.
fn sample_router(
    url: &str,
    path: &str,
    expected: &str,
    v: &Verify,
    users: u32,
) -> Result<RouterSample, StageError> {
    let full = format!("{url}{path}");
    let n = if users > 0 { users } else { v.samples };
    let who = if users > 0 {
        format!(
            "users (one request per {USER_HEADER} user-0..user-{})",
            users - 1
        )
    } else {
        "requests".to_string()
    };
    let mut last = (Vec::new(), String::new());
    for attempt in 1..=v.retries {
        let mut answers = Vec::new();
        for i in 0..n {
            let mut req = Request::new(Method::Get, &full).timeout(v.timeout);
            if users > 0 {
                req = req.header(USER_HEADER, format!("user-{i}"));
            }
            let answer = match req.send() {
                Ok(r) if r.is_success() => reported_version(&r.text()),
                Ok(r) => format!("HTTP {}", r.status),
                Err(HttpError::Denied(m)) => return Err(denied(HttpError::Denied(m))),
                Err(e) => format!("error: {e}"),
            };
            answers.push(answer);
        }
        let counts = tally(&answers);
        if counts.len() == 1 && counts[0].0 == expected {
            return Ok((
                true,
                counts,
                format!("{n} of {n} {who} answered {expected}"),
            ));
        }
        last = (
            counts.clone(),
            format!(
                "after {attempt} attempt(s), {} of {n} {who} did not get {expected}: {}",
                n - counts
                    .iter()
                    .find(|(v, _)| v == expected)
                    .map(|(_, c)| *c)
                    .unwrap_or(0),
                shares(&counts, n)
            ),
        );
        if attempt < v.retries {
            std::thread::sleep(v.interval.max(Duration::from_millis(10)));
        }
    }
    Ok((false, last.0, last.1))
}

/// `2.0.0 ×95 (95%), 1.0.0 ×5 (5%)`.
pub fn shares(counts: &[(String, u32)], total: u32) -> String {
    counts
        .iter()
        .map(|(v, c)| {
            format!(
                "{v} ×{c} ({:.0}%)",
                f64::from(*c) * 100.0 / f64::from(total.max(1))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts equal answers, most frequent first (ties by name).
pub fn tally(answers: &[String]) -> Vec<(String, u32)> {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(v, _)| v == a) {
            Some((_, n)) => *n += 1,
            None => counts.push((a.clone(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_sampled_a_hundred_at_least_and_shares_reported() {
        let v = |samples| Verify {
            enabled: true,
            health_path: "/health".into(),
            version_path: None,
            url: None,
            samples,
            retries: 1,
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(user_sample_size(&v(10)), 100);
        assert_eq!(user_sample_size(&v(500)), 500);
        let counts = vec![("2.0.0".to_string(), 95), ("1.0.0".to_string(), 5)];
        assert_eq!(shares(&counts, 100), "2.0.0 ×95 (95%), 1.0.0 ×5 (5%)");
    }

    #[test]
    fn tally_orders_by_count() {
        let a: Vec<String> = ["1.0.0", "2.0.0", "1.0.0", "HTTP 500"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            tally(&a),
            vec![
                ("1.0.0".to_string(), 2),
                ("2.0.0".to_string(), 1),
                ("HTTP 500".to_string(), 1)
            ]
        );
    }
}
