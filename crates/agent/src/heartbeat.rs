//! Heartbeats: every `heartbeat:` interval the agent publishes what it is
//! and what it runs through its job source (NATS: the `<namespace>-agents`
//! key-value bucket, whose entries expire after three intervals, so a dead
//! agent drops out of `sluice agents list` by itself; the unix socket has
//! no readers and ignores them).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use sluice_fleet::transport::JobSource;

use crate::worker::Agent;

/// Publish `agent`'s heartbeat through `source` now and every `every`
/// until `stop` fires. A failed publish is logged and retried at the next
/// beat: heartbeats are for people and dispatch warnings, never for
/// correctness (a dead agent is noticed by its job's ack wait).
pub async fn beat(
    agent: Arc<Agent>,
    source: Arc<dyn JobSource>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let heartbeat = agent.heartbeat();
        if let Err(e) = source.heartbeat(&heartbeat).await {
            tracing::warn!(error = %e, "could not publish the agent's heartbeat");
        }
    }
}
