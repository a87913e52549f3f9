//! The agent's half of the NATS transport.
//!
//! An agent serves every label set whose labels are a subset of its own:
//! each set has one durable consumer (`ls-<set>`) shared by all agents that
//! can serve it, registered in `N-labelsets` by the coordinator that first
//! needs it. With a free slot the agent sends one batch-1 pull request to
//! each of those consumers; the first job to arrive takes the slot and any
//! other that arrives for the same slot is handed back at once (`Nak`), so
//! another agent gets it within a millisecond. Nothing is prefetched: a
//! prefetched job is the one a server restart would deliver twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::kv::Operation;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{AckKind, Message};
use futures::future::BoxFuture;
use futures::StreamExt as _;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use sluice_types::LabelSet;

use crate::blobs::ObjectStoreBlobs;
use crate::error::{nats, FleetError};
use crate::proto::{AgentEvent, Heartbeat, JobBody, JobEnvelope, JobId, OutcomeEnvelope};
use crate::transport::{BlobStore, IncomingJob, JobLease, JobSource};

use super::layout::{LabelSetEntry, Layout};
use super::{decode, encode, next_while_connected, publish_durable, AbortOnDrop};

/// How long one pull request waits for a job before it is renewed (bounds
/// how long a surplus job can wait for its hand-back, and how quickly a
/// shut-down source stops pulling).
const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// The label sets served, with when they were last read from `N-labelsets`.
type Served = (Option<Instant>, Vec<(LabelSet, PullConsumer)>);

/// Cancel tokens of the jobs this agent holds, by job id.
type CancelMap = Arc<Mutex<HashMap<JobId, CancellationToken>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The agent's side of the NATS transport.
pub struct NatsJobSource {
    layout: Layout,
    client: async_nats::Client,
    agent: String,
    labels: LabelSet,
    slots: Arc<Semaphore>,
    blobs: ObjectStoreBlobs,
    consumers: tokio::sync::Mutex<Served>,
    cancels: CancelMap,
    closed: AtomicBool,
    shutdown: Notify,
    labelsets_changed: Arc<LabelSetsChanged>,
    _cancel_watch: AbortOnDrop,
    _labelset_watch: AbortOnDrop,
}

impl NatsJobSource {
    /// A source for agent `agent` with `labels` and `slots` concurrent jobs.
    /// Starts following the `N-cancel` bucket at once.
    pub async fn new(
        layout: Layout,
        agent: impl Into<String>,
        labels: LabelSet,
        slots: u32,
    ) -> Result<NatsJobSource, FleetError> {
        // The heartbeat TTL is the agents' to set.
        super::layout::ensure_kv(
            &layout.js,
            &layout.names.agents_bucket(),
            layout.config.heartbeat_ttl,
        )
        .await?;
        let cancels: CancelMap = Arc::default();
        let bucket = layout.names.cancel_bucket();
        // Fail now if the bucket cannot be watched at all.
        let first = layout
            .cancel
            .watch_all()
            .await
            .map_err(nats("watch", &bucket))?;
        let watcher = tokio::spawn(watch_cancels(
            layout.clone(),
            layout.js.client(),
            first,
            cancels.clone(),
        ));
        let labelsets_changed = Arc::new(LabelSetsChanged::default());
        let bucket = layout.names.labelsets_bucket();
        let first = layout
            .labelsets
            .watch_all()
            .await
            .map_err(nats("watch", &bucket))?;
        let labelset_watcher = tokio::spawn(watch_labelsets(
            layout.clone(),
            layout.js.client(),
            first,
            labels.clone(),
            labelsets_changed.clone(),
        ));
        Ok(NatsJobSource {
            client: layout.js.client(),
            blobs: ObjectStoreBlobs::new(layout.cas.clone(), layout.names.cas_bucket()),
            layout,
            agent: agent.into(),
            labels,
            slots: Arc::new(Semaphore::new(slots.max(1) as usize)),
            consumers: tokio::sync::Mutex::new((None, Vec::new())),
            cancels,
            closed: AtomicBool::new(false),
            shutdown: Notify::new(),
            labelsets_changed,
            _cancel_watch: AbortOnDrop(watcher),
            _labelset_watch: AbortOnDrop(labelset_watcher),
        })
    }

    /// The layout it uses.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn check_open(&self) -> Result<(), FleetError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(FleetError::Closed {
                what: format!("the job source of agent {}", self.agent),
            });
        }
        Ok(())
    }

    /// The consumers of the label sets this agent can serve (re-read from
    /// `N-labelsets` when the watch saw a new one, else at most every
    /// [`LayoutConfig::labelsets_refresh`](super::layout::LayoutConfig::labelsets_refresh)).
    async fn consumers(&self) -> Result<Vec<PullConsumer>, FleetError> {
        let refresh = self.layout.config.labelsets_refresh;
        let mut cached = self.consumers.lock().await;
        let changed = self.labelsets_changed.stale.swap(false, Ordering::SeqCst);
        let fresh = !changed
            && cached
                .0
                .is_some_and(|at| at.elapsed() < refresh && !cached.1.is_empty());
        if !fresh {
            let bucket = self.layout.names.labelsets_bucket();
            let mut keys = self
                .layout
                .labelsets
                .keys()
                .await
                .map_err(nats("list", &bucket))?;
            let mut entries = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(nats("list", &bucket))?;
                let Some(value) = self
                    .layout
                    .labelsets
                    .get(&key)
                    .await
                    .map_err(nats("read", format!("{bucket}/{key}")))?
                else {
                    continue;
                };
                match decode::<LabelSetEntry>(&format!("{bucket}/{key}"), &value) {
                    Ok(entry) if entry.labels.is_subset_of(&self.labels) => entries.push(entry),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable label set"),
                }
            }
            let known: Vec<LabelSet> = cached.1.iter().map(|(l, _)| l.clone()).collect();
            let mut fresh = Vec::new();
            for entry in entries {
                match self
                    .layout
                    .jobs
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&entry.consumer)
                    .await
                {
                    Ok(consumer) => {
                        if !known.contains(&entry.labels) {
                            tracing::info!(agent = %self.agent, labels = %entry.labels, "serving label set");
                        }
                        fresh.push((entry.labels, consumer));
                    }
                    Err(e) => {
                        tracing::warn!(consumer = %entry.consumer, error = %e, "cannot open consumer")
                    }
                }
            }
            // A consumer that could not be read this time is kept as it was.
            for (labels, consumer) in std::mem::take(&mut cached.1) {
                if !fresh.iter().any(|(l, _)| *l == labels) {
                    fresh.push((labels, consumer));
                }
            }
            *lock(&self.labelsets_changed.served) = fresh.iter().map(|(l, _)| l.clone()).collect();
            cached.1 = fresh;
            cached.0 = Some(Instant::now());
        }
        Ok(cached.1.iter().map(|(_, c)| c.clone()).collect())
    }

    /// One round of pull requests (one per consumer): the first job, or
    /// none when every request expired. Jobs arriving after the first are
    /// handed back.
    async fn pull_once(&self, consumers: Vec<PullConsumer>) -> Option<Message> {
        let (tx, mut rx) = mpsc::channel::<Message>(1);
        let claimed = Arc::new(AtomicBool::new(false));
        for consumer in consumers {
            let (tx, claimed) = (tx.clone(), claimed.clone());
            // Each request runs to its end even after another won: a job
            // the server already sent to it must be handed back, not lost
            // until its ack wait runs out.
            tokio::spawn(async move {
                let batch = consumer
                    .batch()
                    .max_messages(1)
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await;
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::debug!(error = %e, "pull request failed");
                        return;
                    }
                };
                while let Some(message) = batch.next().await {
                    let Ok(message) = message else { continue };
                    if claimed.swap(true, Ordering::SeqCst) {
                        if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                            tracing::debug!(error = %e, "handing back a surplus job");
                        }
                    } else if let Err(tokio::sync::mpsc::error::SendError(message)) =
                        tx.send(message).await
                    {
                        // The agent stopped waiting: hand it back.
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                    }
                }
            });
        }
        drop(tx);
        rx.recv().await
    }

    /// The envelope of a delivered job.
    async fn envelope(&self, message: &Message) -> Result<JobEnvelope, FleetError> {
        let subject = message.subject.as_str();
        match decode::<JobBody>(subject, &message.payload)? {
            JobBody::Inline(job) => Ok(*job),
            JobBody::Blob(blob) => {
                let dir = tempfile::tempdir().map_err(|source| FleetError::Io {
                    action: "create a temporary directory in",
                    path: std::env::temp_dir(),
                    source,
                })?;
                let cas = sluice_record::artifacts::Cas::open(dir.path())?;
                self.blobs.get_into(&cas, &blob.digest).await?;
                let path = cas.blob_path(&blob.digest)?;
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|source| FleetError::Io {
                        action: "read",
                        path,
                        source,
                    })?;
                decode(subject, &bytes)
            }
        }
    }

    /// The ack wait of the consumer that delivered `message` (a coordinator
    /// may have set it shorter than this agent's), as last read.
    async fn ack_wait_of(&self, message: &Message) -> Duration {
        let ours = self.layout.config.ack_wait;
        let Ok(info) = message.info() else {
            return ours;
        };
        let cached = self.consumers.lock().await;
        cached
            .1
            .iter()
            .find(|(_, c)| c.cached_info().name == info.consumer)
            .map_or(ours, |(_, c)| ours.min(c.cached_info().config.ack_wait))
    }

    /// Whether an outcome of `id` is already recorded.
    async fn has_outcome(&self, id: &JobId) -> Result<bool, FleetError> {
        let subject = self.layout.names.outcome_subject(id);
        match self
            .layout
            .outcomes
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(nats("look up outcome", subject)(e)),
        }
    }

    /// Turn a delivered message into a job, or settle it and say `None`.
    async fn accept(
        &self,
        message: Message,
        permit: OwnedSemaphorePermit,
    ) -> Result<Option<IncomingJob>, FleetError> {
        let envelope = match self.envelope(&message).await {
            Ok(envelope) => envelope,
            Err(e) => {
                // Unreadable (or its blob is gone): no agent can run it.
                tracing::error!(subject = %message.subject, error = %e, "dropping a job that cannot be read");
                if let Err(e) = message.ack_with(AckKind::Term).await {
                    tracing::warn!(error = %e, "could not drop the job");
                }
                return Ok(None);
            }
        };
        let id = envelope.id.clone();
        if self.has_outcome(&id).await? {
            // An earlier execution finished; only its acknowledgement was lost.
            tracing::info!(job = %id, "outcome already recorded; acknowledging the job");
            message
                .double_ack()
                .await
                .map_err(|source| FleetError::Ack {
                    action: "acknowledge",
                    id,
                    source,
                })?;
            return Ok(None);
        }
        let delivery = message
            .info()
            .map(|i| u64::try_from(i.delivered).unwrap_or(0))
            .unwrap_or(0);
        let token = CancellationToken::new();
        // Register before reading the flag: a flag raised in between is
        // seen by the watch.
        lock(&self.cancels).insert(id.clone(), token.clone());
        let flag = self
            .layout
            .cancel
            .get(id.to_string())
            .await
            .map_err(nats("read the cancel flag of", id.to_string()))?;
        if flag.is_some() {
            token.cancel();
        }
        let ack_wait = self.ack_wait_of(&message).await;
        let message = Arc::new(message);
        let ticker = {
            let (message, every) = (message.clone(), ack_wait / 3);
            AbortOnDrop(tokio::spawn(async move {
                let mut interval = tokio::time::interval(every.max(Duration::from_millis(100)));
                interval.tick().await;
                loop {
                    interval.tick().await;
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(error = %e, "extending a job's lease");
                    }
                }
            }))
        };
        let lease = NatsLease {
            layout: self.layout.clone(),
            client: self.client.clone(),
            id: id.clone(),
            message,
            cancel: token,
            cancels: self.cancels.clone(),
            held: Mutex::new(Some((ticker, permit))),
        };
        Ok(Some(IncomingJob {
            envelope,
            lease: Box::new(lease),
            delivery,
        }))
    }

    async fn next_job(&self) -> Result<IncomingJob, FleetError> {
        loop {
            self.check_open()?;
            let permit = tokio::select! {
                permit = self.slots.clone().acquire_owned() => permit.map_err(|_| self.closed_error())?,
                () = self.shutdown.notified() => return Err(self.closed_error()),
            };
            let message = loop {
                self.check_open()?;
                let consumers = match self.consumers().await {
                    Ok(c) => c,
                    Err(e) => {
                        // NATS is down or restarting: the client reconnects
                        // by itself; an agent keeps waiting for jobs.
                        tracing::warn!(agent = %self.agent, error = %e, "cannot list label sets; retrying");
                        Vec::new()
                    }
                };
                if consumers.is_empty() {
                    // No label set this agent serves yet: wait for a coordinator.
                    tokio::select! {
                        () = tokio::time::sleep(self.layout.config.labelsets_refresh) => continue,
                        () = self.labelsets_changed.notify.notified() => continue,
                        () = self.shutdown.notified() => return Err(self.closed_error()),
                    }
                }
                let round = Instant::now();
                let pulled = tokio::select! {
                    pulled = self.pull_once(consumers) => pulled,
                    // A new label set: pull again, from it too (a job this
                    // round's requests still receive is handed back).
                    () = self.labelsets_changed.notify.notified() => continue,
                };
                if let Some(message) = pulled {
                    break message;
                }
                if round.elapsed() < PULL_EXPIRES / 2 {
                    // The requests failed rather than expired (server down,
                    // consumer gone): do not spin.
                    tokio::select! {
                        () = tokio::time::sleep(PULL_EXPIRES / 2) => {}
                        () = self.shutdown.notified() => return Err(self.closed_error()),
                    }
                }
            };
            if self.closed.load(Ordering::SeqCst) {
                let _ = message.ack_with(AckKind::Nak(None)).await;
                return Err(self.closed_error());
            }
            match self.accept(message, permit).await {
                Ok(Some(job)) => return Ok(job),
                // Settled without running: pull again.
                Ok(None) => {}
                // The job stays unacknowledged and comes back after its ack
                // wait (here or elsewhere).
                Err(e) => {
                    tracing::warn!(agent = %self.agent, error = %e, "could not take a job; retrying");
                    tokio::time::sleep(PULL_EXPIRES / 2).await;
                }
            }
        }
    }

    fn closed_error(&self) -> FleetError {
        FleetError::Closed {
            what: format!("the job source of agent {}", self.agent),
        }
    }
}

impl JobSource for NatsJobSource {
    fn next(&self) -> BoxFuture<'_, Result<IncomingJob, FleetError>> {
        Box::pin(self.next_job())
    }

    fn heartbeat<'a>(&'a self, beat: &'a Heartbeat) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let body = encode("a heartbeat", beat)?;
            self.layout
                .agents
                .put(&beat.name, body)
                .await
                .map_err(nats("publish heartbeat", &beat.name))?;
            Ok(())
        })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }
}

/// Follows KV bucket `store` (`what` names it in logs), calling `on_put`
/// with every value put. The watch is an ordered consumer, which a crashed
/// server forgets: whenever the client has reconnected it is made again
/// from the next revision not yet seen.
async fn watch_kv(
    store: async_nats::jetstream::kv::Store,
    client: async_nats::Client,
    first: async_nats::jetstream::kv::Watch,
    what: &'static str,
    mut on_put: impl FnMut(async_nats::jetstream::kv::Entry),
) {
    let stats = client.statistics();
    let connects = || stats.connects.load(Ordering::Relaxed);
    let mut watch = Some(first);
    let mut next_revision = 0;
    loop {
        let seen_connects = connects();
        let current = match watch.take() {
            Some(w) => Ok(w),
            // From the first revision not seen (all, when none was seen).
            None => store.watch_all_from_revision(next_revision.max(1)).await,
        };
        let mut current = match current {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "{what}; trying again");
                tokio::time::sleep(REWATCH).await;
                continue;
            }
        };
        while let Some(entry) =
            next_while_connected(&mut current, REWATCH, &connects, seen_connects, what).await
        {
            next_revision = entry.revision + 1;
            if entry.operation == Operation::Put {
                on_put(entry);
            }
        }
    }
}

/// Fires the tokens of cancelled jobs (a flag raised while the watch was
/// down is also read when a job is taken; flags of jobs this agent does
/// not hold are ignored).
async fn watch_cancels(
    layout: Layout,
    client: async_nats::Client,
    first: async_nats::jetstream::kv::Watch,
    cancels: CancelMap,
) {
    watch_kv(
        layout.cancel,
        client,
        first,
        "watching cancel flags",
        |entry| {
            let Ok(id) = entry.key.parse::<JobId>() else {
                return;
            };
            if let Some(token) = lock(&cancels).get(&id) {
                token.cancel();
            }
        },
    )
    .await
}

/// Wakes the job loop when a coordinator registers a label set this agent
/// can serve, so the first job of a new `runs-on:` is pulled at once
/// instead of at the next periodic re-read of `N-labelsets`.
async fn watch_labelsets(
    layout: Layout,
    client: async_nats::Client,
    first: async_nats::jetstream::kv::Watch,
    labels: LabelSet,
    changed: Arc<LabelSetsChanged>,
) {
    let bucket = layout.names.labelsets_bucket();
    // Every run puts its label sets again: only a set (or consumer) not
    // seen before wakes the job loop.
    let mut seen = HashMap::new();
    watch_kv(
        layout.labelsets,
        client,
        first,
        "watching label sets",
        |entry| {
            if seen.get(&entry.key) == Some(&entry.value) {
                return;
            }
            seen.insert(entry.key.clone(), entry.value.clone());
            match decode::<LabelSetEntry>(&format!("{bucket}/{}", entry.key), &entry.value) {
                Ok(set) if set.labels.is_subset_of(&labels) => changed.raise_if_new(&set.labels),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable label set"),
            }
        },
    )
    .await
}

/// "The label sets to pull from have changed": a flag the next
/// [`NatsJobSource::consumers`] reads (so a change between two waits is
/// not lost), and a wake-up for the loops waiting now. Only a set the
/// agent does not pull from yet raises it: waking a pull round abandons
/// its requests, and a job one of them still receives is handed back,
/// which counts as a delivery.
#[derive(Default)]
struct LabelSetsChanged {
    stale: AtomicBool,
    notify: Notify,
    /// The label sets the agent pulls from, as `consumers` last read them.
    served: Mutex<Vec<LabelSet>>,
}

impl LabelSetsChanged {
    fn raise_if_new(&self, labels: &LabelSet) {
        if lock(&self.served).contains(labels) {
            return;
        }
        self.stale.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// How often the cancel watch checks whether the client reconnected.
const REWATCH: Duration = Duration::from_millis(250);

/// One job delivered over NATS.
pub struct NatsLease {
    layout: Layout,
    client: async_nats::Client,
    id: JobId,
    message: Arc<Message>,
    cancel: CancellationToken,
    cancels: CancelMap,
    /// The progress ticker and the slot, until the job is settled.
    held: Mutex<Option<(AbortOnDrop, OwnedSemaphorePermit)>>,
}

impl NatsLease {
    /// The job.
    pub fn id(&self) -> &JobId {
        &self.id
    }
}

impl Drop for NatsLease {
    fn drop(&mut self) {
        lock(&self.cancels).remove(&self.id);
        // Dropped without an outcome (the agent is stopping, or gave up on
        // it): hand the job back at once instead of after its ack wait.
        if lock(&self.held).take().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (message, id) = (self.message.clone(), self.id.clone());
                runtime.spawn(async move {
                    if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                        tracing::debug!(job = %id, error = %e, "handing back a dropped job");
                    }
                });
            }
        }
    }
}

impl JobLease for NatsLease {
    fn progress(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.message.ack_with(AckKind::Progress).await {
                tracing::debug!(job = %self.id, error = %e, "extending a job's lease");
            }
        })
    }

    fn event(&self, event: AgentEvent) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let names = &self.layout.names;
            let result = match &event {
                AgentEvent::Started { execution, .. } => {
                    let subject = names.event_subject(&self.id);
                    match encode("an event", &event) {
                        Ok(body) => publish_durable(
                            &self.layout.js,
                            &subject,
                            &format!("{}.{execution}", self.id),
                            body,
                        )
                        .await
                        .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
                AgentEvent::Log { .. } | AgentEvent::Progress { .. } => {
                    let subject = names.log_subject(&self.id.run_id, &self.id.stage);
                    match encode("an event", &event) {
                        Ok(body) => self
                            .client
                            .publish(subject.clone(), body)
                            .await
                            .map_err(nats("publish to", subject)),
                        Err(e) => Err(e),
                    }
                }
                AgentEvent::Finished(_) | AgentEvent::Exhausted { .. } => {
                    tracing::warn!(job = %self.id, "outcomes go through finish(), not event()");
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::warn!(job = %self.id, error = %e, "could not report an event");
            }
        })
    }

    fn finish(&self, outcome: OutcomeEnvelope) -> BoxFuture<'_, Result<(), FleetError>> {
        Box::pin(async move {
            let subject = self.layout.names.outcome_subject(&self.id);
            let body = encode("an outcome", &outcome)?;
            let ack =
                publish_durable(&self.layout.js, &subject, &self.id.to_string(), body).await?;
            if ack.duplicate {
                tracing::info!(job = %self.id, "another execution already recorded an outcome");
            }
            // The outcome is durable: now the job may go.
            self.message
                .double_ack()
                .await
                .map_err(|source| FleetError::Ack {
                    action: "acknowledge",
                    id: self.id.clone(),
                    source,
                })?;
            // Stops the ticker and frees the slot.
            lock(&self.held).take();
            Ok(())
        })
    }

    fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }
}
