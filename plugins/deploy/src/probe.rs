//! Health probes of a slot through its URL in `target.slots`.

use sluice_delivery::{HealthOutcome, Target};
use sluice_sdk::StageError;

use crate::config::Health;

/// Probes `slot` (expecting `version` on `/version` when configured).
/// A slot without a URL is a configuration error naming the key.
pub fn probe(
    target: &Target,
    health: &Health,
    slot: &str,
    version: &str,
) -> Result<HealthOutcome, StageError> {
    let url = target.slot_url(slot).ok_or_else(|| {
        StageError::invalid_config(format!(
            "with.target.slots.{slot}: the health check needs the URL slot `{slot}` serves on, \
             e.g. `{slot}: http://127.0.0.1:18101`; or set `health-check: false`"
        ))
    })?;
    let expected = health.check_version.then_some(version);
    let outcome = health.check.check(url, expected)?;
    if outcome.healthy {
        sluice_sdk::info!("{slot} ({url}) is healthy: {}", outcome.message);
    } else {
        sluice_sdk::warn!(
            "{slot} ({url}) is unhealthy after {} attempt(s): {}",
            outcome.attempts,
            outcome.message
        );
    }
    Ok(outcome)
}
