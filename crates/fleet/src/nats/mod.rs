//! The NATS JetStream transport.
//!
//! - [`layout`]: names and configurations of streams, consumers, buckets
//!   and the object store, and [`layout::ensure_layout`].
//! - [`NatsDispatch`] (coordinator): uploads nothing itself (the caller puts
//!   blobs through [`crate::transport::Dispatch::blobs`]), publishes jobs
//!   with their id as `Nats-Msg-Id`, follows each run's outcomes and events
//!   with one ordered consumer, cancels through the `N-cancel` bucket and
//!   turns `MAX_DELIVERIES` advisories into `Exhausted` events.
//! - [`NatsJobSource`] (agent): pulls batch-1 only with a free slot from
//!   every label set's consumer its labels cover, hands surplus jobs back at
//!   once, extends the lease while the job runs, skips jobs whose outcome is
//!   already recorded, and acknowledges a job only after its outcome is
//!   durable.
//!
//! Works with nats-server 2.9 (Debian 12) and later; see `layout` for the
//! one workaround (KV buckets) that 2.9 needs.

pub mod dispatch;
pub mod intake;
pub mod layout;

use std::future::IntoFuture as _;
use std::time::Duration;

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;

pub use dispatch::NatsDispatch;
pub use intake::{NatsJobSource, NatsLease};
pub use layout::{ensure_layout, Layout, LayoutConfig, Names, DEFAULT_NAMESPACE};

use crate::error::FleetError;

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port` (several separated by `,`).
    pub url: String,
    /// The fleet namespace.
    pub namespace: String,
    /// The layout's tunables (ack wait, TTLs).
    pub layout: LayoutConfig,
    /// The client's name as the server shows it.
    pub client_name: String,
    /// Keep trying when the server is down at start (agents), instead of
    /// failing at once (coordinators).
    pub retry_on_initial_connect: bool,
    /// A NATS `.creds` file (JWT and nkey seed) to authenticate with.
    pub creds: Option<std::path::PathBuf>,
    /// How long a JetStream request (a publish's acknowledgement, a
    /// lookup) may take before it counts as timed out. 5 s.
    pub request_timeout: Duration,
    /// `workspace=snapshot`: stages with a workspace grant get a snapshot
    /// of it through the object store ([`crate::snapshot`]) instead of its
    /// path (`workspace=shared`, the default: agents configured
    /// `workspace: shared` see it on a shared file system).
    pub snapshot_workspace: bool,
}

impl NatsConfig {
    /// Parse `nats://host:port[?namespace=NAME][&ack-wait=15s][&workspace=shared|snapshot]`
    /// (the form of `sluice run --executor`): the namespace, the ack wait
    /// of the label sets' consumers this coordinator creates, and how
    /// workspaces reach agents.
    ///
    /// ```
    /// use sluice_fleet::nats::NatsConfig;
    ///
    /// let c = NatsConfig::parse("nats://127.0.0.1:4222?namespace=ci").unwrap();
    /// assert_eq!((c.url.as_str(), c.namespace.as_str()), ("nats://127.0.0.1:4222", "ci"));
    /// assert_eq!(NatsConfig::parse("nats://h:1").unwrap().namespace, "sluice");
    /// let c = NatsConfig::parse("nats://h:1?ack-wait=2s").unwrap();
    /// assert_eq!(c.layout.ack_wait, std::time::Duration::from_secs(2));
    /// assert!(NatsConfig::parse("nats://h:1?ack-wait=2").is_err());
    /// assert!(NatsConfig::parse("nats://h:1?namespace=a.b").is_err());
    /// assert!(NatsConfig::parse("nats://h:1?color=red").is_err());
    /// assert!(NatsConfig::parse("nats://h:1?workspace=snapshot").unwrap().snapshot_workspace);
    /// assert!(NatsConfig::parse("nats://h:1?workspace=nfs").is_err());
    /// assert!(NatsConfig::parse("http://h:1").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<NatsConfig, FleetError> {
        let bad = |why: &str| FleetError::BadUrl {
            url: text.to_owned(),
            why: why.to_owned(),
        };
        let (url, query) = match text.split_once('?') {
            Some((url, query)) => (url, Some(query)),
            None => (text, None),
        };
        let rest = ["nats://", "tls://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| bad("it does not start with nats:// or tls://"))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(bad("it needs a host:port and no path"));
        }
        let mut namespace = DEFAULT_NAMESPACE.to_owned();
        let mut ack_wait = None;
        let mut snapshot_workspace = false;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("namespace", value)) => namespace = value.to_owned(),
                Some(("workspace", "shared")) => snapshot_workspace = false,
                Some(("workspace", "snapshot")) => snapshot_workspace = true,
                Some(("workspace", other)) => {
                    return Err(bad(&format!(
                        "workspace={other}: write workspace=shared (agents see the workspace's path) or workspace=snapshot (it is sent to them)"
                    )))
                }
                Some(("ack-wait", value)) => {
                    let wait = value
                        .parse::<sluice_types::Duration>()
                        .map_err(|e| bad(&format!("ack-wait: {}", e.message())))?;
                    ack_wait = Some(Duration::from(wait));
                }
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter `{pair}` (known: namespace=NAME, ack-wait=DURATION, workspace=shared|snapshot)"
                    )))
                }
            }
        }
        Names::new(&namespace)?;
        let mut layout = LayoutConfig::default();
        if let Some(wait) = ack_wait {
            if wait < Duration::from_millis(300) {
                return Err(bad("ack-wait must be at least 300ms"));
            }
            layout.ack_wait = wait;
        }
        Ok(NatsConfig {
            url: url.to_owned(),
            namespace,
            layout,
            client_name: format!("sluice {}", std::process::id()),
            retry_on_initial_connect: false,
            creds: None,
            request_timeout: Duration::from_secs(5),
            snapshot_workspace,
        })
    }

    /// Connect and make sure the layout exists.
    pub async fn connect(&self) -> Result<Layout, FleetError> {
        let names = Names::new(&self.namespace)?;
        let name = self.client_name.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(&self.client_name)
            .event_callback(move |event| {
                let name = name.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(client = %name, "connected to NATS")
                        }
                        // The end of a connection we closed ourselves.
                        async_nats::Event::Closed | async_nats::Event::Draining => {
                            tracing::debug!(client = %name, event = %event, "NATS")
                        }
                        other => tracing::warn!(client = %name, event = %other, "NATS"),
                    }
                }
            })
            // Reconnect quickly (100 ms steps up to 1 s) and notice a dead
            // server within ~10 s instead of the default 2 min.
            .reconnect_delay_callback(|n| Duration::from_millis((n as u64 * 100).min(1000)))
            .ping_interval(Duration::from_secs(5));
        if self.retry_on_initial_connect {
            options = options.retry_on_initial_connect();
        }
        if let Some(creds) = &self.creds {
            options = options.credentials_file(creds).await.map_err(|source| {
                FleetError::Credentials {
                    path: creds.clone(),
                    source,
                }
            })?;
        }
        let client =
            options
                .connect(self.url.as_str())
                .await
                .map_err(|source| FleetError::Connect {
                    url: self.url.clone(),
                    source,
                })?;
        let mut js = async_nats::jetstream::new(client);
        js.set_timeout(self.request_timeout);
        ensure_layout(&js, &names, &self.layout).await
    }
}

/// The next item of an ordered consumer's `stream`, or `None` when the
/// stream ended or the client reconnected since `seen_connects` (ordered
/// consumers are ephemeral: a server that crashed has forgotten them, and
/// the caller makes the consumer again from its last position). Errors of
/// single items are logged (`what` says whose) and skipped; `check` is how
/// often the reconnect count is looked at while nothing arrives.
pub(crate) async fn next_while_connected<S, T, E>(
    stream: &mut S,
    check: Duration,
    connects: &(dyn Fn() -> u64 + Sync),
    seen_connects: u64,
    what: &'static str,
) -> Option<T>
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt as _;
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = tokio::time::sleep(check) => {
                if connects() != seen_connects {
                    return None;
                }
                continue;
            }
        };
        match item {
            Some(Ok(item)) => return Some(item),
            Some(Err(e)) => tracing::debug!(error = %e, "{what}"),
            None => return None,
        }
    }
}

/// How often a JetStream publish is sent (with the same message id) when
/// its acknowledgement times out: the server deduplicates, so a retry after
/// a timeout is harmless (a publish made while the server was down is sent
/// after the reconnect).
const PUBLISH_ATTEMPTS: u32 = 5;

/// Publish `body` to `subject` with message id `msg_id` and wait for the
/// server's acknowledgement, retrying on a timeout.
pub(crate) async fn publish_durable(
    js: &Context,
    subject: &str,
    msg_id: &str,
    body: bytes::Bytes,
) -> Result<PublishAck, FleetError> {
    let mut attempt = 1;
    loop {
        let message = PublishMessage::build()
            .payload(body.clone())
            .message_id(msg_id);
        let sent = match js.send_publish(subject.to_owned(), message).await {
            Ok(ack) => ack.into_future().await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(ack) => return Ok(ack),
            Err(e) if e.kind() == PublishErrorKind::TimedOut && attempt < PUBLISH_ATTEMPTS => {
                tracing::warn!(
                    subject,
                    attempt,
                    "no acknowledgement from NATS yet; publishing again"
                );
                attempt += 1;
            }
            Err(e) if e.kind() == PublishErrorKind::TimedOut => {
                return Err(FleetError::PublishUnacknowledged {
                    subject: subject.to_owned(),
                    attempts: attempt,
                    source: e,
                })
            }
            Err(e) => return Err(crate::error::nats("publish to", subject)(e)),
        }
    }
}

/// JSON for a message.
pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<bytes::Bytes, FleetError> {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .map_err(|source| FleetError::Encode { what, source })
}

/// A message's JSON.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    subject: &str,
    payload: &[u8],
) -> Result<T, FleetError> {
    serde_json::from_slice(payload).map_err(|source| FleetError::Decode {
        subject: subject.to_owned(),
        source,
    })
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
