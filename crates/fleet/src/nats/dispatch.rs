//! The coordinator's half of the NATS transport.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::{DeleteMessageErrorKind, LastRawMessageErrorKind};
use async_nats::jetstream::ErrorCode;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt as _;

use sluice_types::LabelSet;

use crate::blobs::ObjectStoreBlobs;
use crate::error::{nats, FleetError};
use crate::proto::{
    AgentEvent, BlobRef, Heartbeat, JobBody, JobEnvelope, JobId, OutcomeEnvelope, MAX_INLINE_JOB,
};
use crate::transport::{Adopted, BlobStore, Cancelled, Dispatch, Submitted};

use super::layout::Layout;
use super::{decode, encode, next_while_connected, publish_durable, AbortOnDrop};

/// How often a follower checks whether the client reconnected (and how
/// long it waits before trying to follow again after an error).
const REFOLLOW: std::time::Duration = std::time::Duration::from_millis(250);

/// What this dispatch knows about one job.
#[derive(Default)]
struct JobState {
    /// Durable events seen (`Started`, `Finished`, `Exhausted`), replayed to
    /// late subscribers.
    history: Vec<AgentEvent>,
    subscribers: Vec<mpsc::UnboundedSender<AgentEvent>>,
    /// Its stream sequence in `N_JOBS`, once published or adopted.
    sequence: Option<u64>,
    started: bool,
    /// Live lines that arrived before the first `Started`.
    held: Vec<AgentEvent>,
    /// `Finished` or `Exhausted` was delivered: later outcomes are dropped.
    done: bool,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, JobState>,
    /// Runs whose outcomes and logs are followed.
    runs: HashSet<String>,
    /// Label sets whose consumer exists and whose advisories are followed.
    consumers: HashSet<LabelSet>,
    /// Job stream sequence → job, for advisories.
    by_sequence: HashMap<u64, JobId>,
}

impl State {
    /// Hands `event` to the job's subscribers (and keeps the durable ones).
    ///
    /// Live lines travel on core NATS and `Started` through the stream, so
    /// a line can overtake the `Started` of its own execution: lines are
    /// held until the job's first `Started` (or its outcome), so that
    /// subscribers see who runs the job before what it prints.
    fn deliver(&mut self, event: AgentEvent) {
        let job = self.jobs.entry(event.id().clone()).or_default();
        if job.done {
            tracing::debug!(job = %event.id(), "dropping an event after the job's outcome");
            return;
        }
        let mut flush = false;
        match &event {
            AgentEvent::Started { execution, .. } => {
                // A replay (after a reconnect) repeats a Started we saw.
                let seen = job.history.iter().any(
                    |e| matches!(e, AgentEvent::Started { execution: x, .. } if x == execution),
                );
                if seen {
                    return;
                }
                flush = !job.started;
                job.started = true;
            }
            AgentEvent::Finished(_) | AgentEvent::Exhausted { .. } => {
                job.done = true;
                job.send_held();
            }
            AgentEvent::Log { .. } | AgentEvent::Progress { .. } => {
                if !job.started {
                    if job.held.len() < MAX_HELD_LINES {
                        job.held.push(event);
                    }
                    return;
                }
            }
        }
        job.send(&event);
        if flush {
            job.send_held();
        }
        if !matches!(event, AgentEvent::Log { .. } | AgentEvent::Progress { .. }) {
            job.history.push(event);
        }
        if job.done {
            // Ends the subscribers' streams.
            job.subscribers.clear();
        }
    }
}

/// Live lines kept per job while its `Started` is on its way.
const MAX_HELD_LINES: usize = 10_000;

impl JobState {
    fn send(&mut self, event: &AgentEvent) {
        self.subscribers
            .retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    fn send_held(&mut self) {
        for event in std::mem::take(&mut self.held) {
            self.send(&event);
        }
    }
}

/// The coordinator's side of the NATS transport; one per `sluice run`.
pub struct NatsDispatch {
    layout: Layout,
    client: async_nats::Client,
    blobs: ObjectStoreBlobs,
    state: Arc<Mutex<State>>,
    /// Followers of runs' outcomes, logs and advisories; stopped on drop.
    tasks: Mutex<Vec<AbortOnDrop>>,
}

impl NatsDispatch {
    /// A dispatch over `layout` (see [`super::NatsConfig::connect`]).
    pub fn new(layout: Layout) -> NatsDispatch {
        let client = layout.js.client();
        let blobs = ObjectStoreBlobs::new(layout.cas.clone(), layout.names.cas_bucket());
        NatsDispatch {
            layout,
            client,
            blobs,
            state: Arc::new(Mutex::new(State::default())),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The layout it uses.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = AbortOnDrop(tokio::spawn(task));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }

    /// Follow run `run_id`: its outcomes and `Started` events (an ordered
    /// consumer replaying the run from the start, so nothing published
    /// before is missed) and its live logs.
    async fn follow_run(&self, run_id: &str) -> Result<(), FleetError> {
        if self.state().runs.contains(run_id) {
            return Ok(());
        }
        let names = &self.layout.names;
        let logs = self
            .client
            .subscribe(names.run_logs(run_id))
            .await
            .map_err(nats("subscribe to", names.run_logs(run_id)))?;
        {
            let mut state = self.state();
            if !state.runs.insert(run_id.to_owned()) {
                // Another stage of the run got here first.
                return Ok(());
            }
        }
        let follower = follow_outcomes(
            self.layout.clone(),
            self.client.clone(),
            run_id.to_owned(),
            self.state.clone(),
        );
        self.spawn(follower);
        let state = self.state.clone();
        let mut logs = logs;
        self.spawn(async move {
            while let Some(message) = logs.next().await {
                let subject = message.subject.as_str();
                // One event or a batch of them.
                let events = decode::<Vec<AgentEvent>>(subject, &message.payload)
                    .or_else(|_| decode::<AgentEvent>(subject, &message.payload).map(|e| vec![e]));
                match events {
                    Ok(events) => {
                        let mut state = state
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for event in events {
                            if matches!(event, AgentEvent::Log { .. } | AgentEvent::Progress { .. })
                            {
                                state.deliver(event);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "dropping an unreadable log message"),
                }
            }
        });
        Ok(())
    }

    /// Make sure the consumer of `labels` exists and its `MAX_DELIVERIES`
    /// advisories are followed.
    async fn ensure_labels(&self, labels: &LabelSet) -> Result<(), FleetError> {
        if self.state().consumers.contains(labels) {
            return Ok(());
        }
        self.layout.ensure_consumer(labels).await?;
        let consumer = self.layout.names.consumer(labels);
        let subject = self.layout.names.max_deliveries_advisory(&consumer);
        let mut advisories = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(nats("subscribe to", &subject))?;
        if !self.state().consumers.insert(labels.clone()) {
            return Ok(());
        }
        let state = self.state.clone();
        let jobs = self.layout.jobs.clone();
        self.spawn(async move {
            #[derive(serde::Deserialize)]
            struct MaxDeliveries {
                stream_seq: u64,
                deliveries: u64,
            }
            while let Some(message) = advisories.next().await {
                let Ok(advisory) = decode::<MaxDeliveries>(&subject, &message.payload) else {
                    continue;
                };
                // The dead job stays in the work queue: remove it.
                if let Err(e) = jobs.delete_message(advisory.stream_seq).await {
                    tracing::debug!(error = %e, seq = advisory.stream_seq, "deleting a dead job");
                }
                let mut state = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let Some(id) = state.by_sequence.get(&advisory.stream_seq).cloned() else {
                    continue;
                };
                state.deliver(AgentEvent::Exhausted {
                    id,
                    deliveries: advisory.deliveries,
                });
            }
        });
        Ok(())
    }

    /// The job's sequence in `N_JOBS`: known from the publish, or looked
    /// up (queued or in flight; none once acknowledged).
    async fn job_sequence(&self, id: &JobId) -> Result<Option<u64>, FleetError> {
        if let Some(seq) = self.state().jobs.get(id).and_then(|j| j.sequence) {
            return Ok(Some(seq));
        }
        let subject = format!("{}.jobs.*.{id}", self.layout.names.namespace());
        match self
            .layout
            .jobs
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(nats("look up job", subject)(e)),
        }
    }

    fn remember(&self, id: &JobId, sequence: u64) {
        let mut state = self.state();
        state.jobs.entry(id.clone()).or_default().sequence = Some(sequence);
        state.by_sequence.insert(sequence, id.clone());
    }

    async fn job_body(&self, job: &JobEnvelope) -> Result<bytes::Bytes, FleetError> {
        let body = encode("a job", &JobBody::Inline(Box::new(job.clone())))?;
        if body.len() <= MAX_INLINE_JOB {
            return Ok(body);
        }
        // Too big for a message: the job travels as a blob.
        let json = encode("a job", job)?;
        let digest = crate::blobs::sha256_digest(&json);
        let size = json.len() as u64;
        self.blobs
            .put(&digest, Box::new(std::io::Cursor::new(json)))
            .await?;
        encode("a job", &JobBody::Blob(BlobRef { digest, size }))
    }
}

impl Dispatch for NatsDispatch {
    fn submit(&self, job: JobEnvelope) -> BoxFuture<'_, Result<Submitted, FleetError>> {
        Box::pin(async move {
            self.follow_run(&job.id.run_id).await?;
            self.ensure_labels(&job.runs_on).await?;
            let body = self.job_body(&job).await?;
            let subject = self.layout.names.job_subject(&job.runs_on, &job.id);
            let ack = publish_durable(&self.layout.js, &subject, &job.id.to_string(), body).await?;
            self.remember(&job.id, ack.sequence);
            tracing::debug!(job = %job.id, seq = ack.sequence, duplicate = ack.duplicate, "job queued");
            Ok(Submitted {
                id: job.id,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        })
    }

    fn adopt<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Adopted, FleetError>> {
        Box::pin(async move {
            self.follow_run(&id.run_id).await?;
            let subject = self.layout.names.outcome_subject(id);
            match self
                .layout
                .outcomes
                .get_last_raw_message_by_subject(&subject)
                .await
            {
                Ok(message) => {
                    let outcome: OutcomeEnvelope = decode(&subject, &message.payload)?;
                    return Ok(Adopted::Finished(Box::new(outcome)));
                }
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(nats("look up outcome", subject)(e)),
            }
            match self.job_sequence(id).await? {
                Some(sequence) => {
                    self.remember(id, sequence);
                    Ok(Adopted::InFlight { sequence })
                }
                None => Ok(Adopted::Unknown),
            }
        })
    }

    fn events(&self, id: &JobId) -> BoxStream<'static, AgentEvent> {
        let (tx, rx) = mpsc::unbounded();
        let mut state = self.state();
        let job = state.jobs.entry(id.clone()).or_default();
        for event in &job.history {
            // The receiver is alive: it is in this function.
            let _ = tx.unbounded_send(event.clone());
        }
        if !job.done {
            job.subscribers.push(tx);
        }
        rx.boxed()
    }

    fn cancel<'a>(
        &'a self,
        id: &'a JobId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Cancelled, FleetError>> {
        Box::pin(async move {
            let key = id.to_string();
            // The flag first: an agent taking the job right now checks it.
            self.layout
                .cancel
                .put(&key, bytes::Bytes::from(reason.to_owned()))
                .await
                .map_err(nats("raise the cancel flag of", &key))?;
            let started = self.state().jobs.get(id).is_some_and(|j| j.started);
            if started {
                return Ok(Cancelled::Signalled);
            }
            if self.withdraw(id).await? {
                Ok(Cancelled::Withdrawn)
            } else {
                Ok(Cancelled::Signalled)
            }
        })
    }

    fn withdraw<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async move {
            let Some(sequence) = self.job_sequence(id).await? else {
                return Ok(false);
            };
            match self.layout.jobs.delete_message(sequence).await {
                Ok(deleted) => Ok(deleted),
                Err(e) => match e.kind() {
                    DeleteMessageErrorKind::JetStream(js)
                        if js.error_code() == ErrorCode::SEQUENCE_NOT_FOUND =>
                    {
                        Ok(false)
                    }
                    _ => Err(nats("withdraw job", id.to_string())(e)),
                },
            }
        })
    }

    fn agents(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, FleetError>> {
        Box::pin(live_agents(&self.layout))
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }
}

/// Follows run `run_id`'s outcomes and `Started` events from the start,
/// with an ordered consumer. Ordered consumers are ephemeral: a server
/// that crashed has forgotten them, and the client only notices after
/// several missed heartbeats. So whenever the client has reconnected, the
/// consumer is made again from the next sequence not yet seen.
async fn follow_outcomes(
    layout: Layout,
    client: async_nats::Client,
    run_id: String,
    state: Arc<Mutex<State>>,
) {
    let names = layout.names.clone();
    let filter = names.run_filter(&run_id);
    let stats = client.statistics();
    let connects = || stats.connects.load(std::sync::atomic::Ordering::Relaxed);
    let mut next_sequence = 1;
    loop {
        let seen_connects = connects();
        let deliver_policy = if next_sequence <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: next_sequence,
            }
        };
        let created = layout
            .outcomes
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.clone(),
                deliver_policy,
                ..Default::default()
            })
            .await;
        let messages = match created {
            Ok(consumer) => consumer.messages().await.map_err(nats("follow", &filter)),
            Err(e) => Err(nats("follow", &filter)(e)),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "following outcomes; trying again");
                tokio::time::sleep(REFOLLOW).await;
                continue;
            }
        };
        while let Some(message) = next_while_connected(
            &mut messages,
            REFOLLOW,
            &connects,
            seen_connects,
            "following outcomes",
        )
        .await
        {
            if let Ok(info) = message.info() {
                next_sequence = info.stream_sequence + 1;
            }
            let subject = message.subject.as_str();
            let event = if subject.ends_with(".outcome") {
                decode::<OutcomeEnvelope>(subject, &message.payload).map(AgentEvent::Finished)
            } else {
                decode::<AgentEvent>(subject, &message.payload)
            };
            match event {
                // The subject's id is the server's word: a payload naming
                // another job, or anything but `Started` on an event
                // subject, is dropped.
                Ok(event)
                    if subject == names.outcome_subject(event.id())
                        || (subject == names.event_subject(event.id())
                            && matches!(event, AgentEvent::Started { .. })) =>
                {
                    state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .deliver(event)
                }
                Ok(event) => tracing::warn!(
                    subject,
                    job = %event.id(),
                    "dropping a message whose job is not its subject's"
                ),
                Err(e) => tracing::warn!(error = %e, "dropping an unreadable message"),
            }
        }
    }
}

/// The agents whose heartbeat has not expired, by name.
pub async fn live_agents(layout: &Layout) -> Result<Vec<Heartbeat>, FleetError> {
    let bucket = layout.names.agents_bucket();
    let mut keys = layout.agents.keys().await.map_err(nats("list", &bucket))?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        names.push(key.map_err(nats("list", &bucket))?);
    }
    let mut agents = Vec::new();
    for name in names {
        // Expired between the listing and now: skip it.
        let Some(value) = layout
            .agents
            .get(&name)
            .await
            .map_err(nats("read heartbeat of", &name))?
        else {
            continue;
        };
        match decode::<Heartbeat>(&format!("{bucket}/{name}"), &value) {
            Ok(beat) => agents.push(beat),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable heartbeat"),
        }
    }
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::executor::{LogReport, StageFailure, StageOutcome};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn started(id: &JobId, execution: &str) -> AgentEvent {
        AgentEvent::Started {
            id: id.clone(),
            agent: "a1".into(),
            execution: execution.into(),
            delivery: 1,
        }
    }

    fn finished(id: &JobId, execution: &str) -> AgentEvent {
        AgentEvent::Finished(OutcomeEnvelope {
            protocol: crate::proto::PROTOCOL,
            id: id.clone(),
            agent: "a1".into(),
            execution: execution.into(),
            outcome: StageOutcome {
                result: Err(StageFailure::Cancelled { in_grace: true }),
                log: LogReport::default(),
                agent: None,
                lost: vec![],
            },
            log: None,
            workspace_delta: None,
        })
    }

    fn executions(events: &[AgentEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                AgentEvent::Started { execution, .. } => format!("started {execution}"),
                AgentEvent::Finished(o) => format!("finished {}", o.execution),
                AgentEvent::Log { line, .. } => format!("log {line}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn replays_are_deduplicated_and_nothing_follows_the_outcome() -> TestResult {
        let id: JobId = "run.1.build.1".parse()?;
        let mut state = State::default();
        let (tx, rx) = mpsc::unbounded();
        state
            .jobs
            .entry(id.clone())
            .or_default()
            .subscribers
            .push(tx);
        // A live line overtakes its execution's Started: it waits.
        state.deliver(AgentEvent::Log {
            id: id.clone(),
            line: "hi".into(),
            level: None,
            fields: vec![],
        });
        state.deliver(started(&id, "e1"));
        // The ordered consumer replays after a reconnect.
        state.deliver(started(&id, "e1"));
        state.deliver(started(&id, "e2"));
        state.deliver(finished(&id, "e2"));
        state.deliver(finished(&id, "e1"));
        state.deliver(started(&id, "e3"));
        // Ends: the outcome dropped the sender.
        let seen: Vec<AgentEvent> = futures::executor::block_on(rx.collect());
        assert_eq!(
            executions(&seen),
            ["started e1", "log hi", "started e2", "finished e2"]
        );
        // What a late subscriber is replayed: the durable events only.
        let job = state.jobs.get(&id).ok_or("job state")?;
        assert_eq!(
            executions(&job.history),
            ["started e1", "started e2", "finished e2"]
        );
        Ok(())
    }
}
