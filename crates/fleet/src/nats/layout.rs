//! Names and configurations of everything the fleet keeps in NATS, and
//! [`ensure_layout`], which creates (or repairs) them idempotently.
//!
//! Everything lives under a namespace `N` (default `sluice`):
//!
//! | kind | name | purpose |
//! | --- | --- | --- |
//! | stream | `N_JOBS` (`N.jobs.>`, work queue) | the job queue |
//! | subject | `N.jobs.<labelset>.<run>.<epoch>.<stage>.<attempt>` | one message per job |
//! | consumer | `ls-<labelset>` on `N_JOBS` | one per label set, shared by every agent that can serve it |
//! | stream | `N_OUTCOMES` (`N.run.>`, limits, 7 d) | outcomes and `Started` events, replayable |
//! | subject | `N.run.<run>.<epoch>.<stage>.<attempt>.outcome` | the one outcome of a job (message id = job id) |
//! | subject | `N.run.<run>.<epoch>.<stage>.<attempt>.started` | `Started` per execution (message id = `<job id>.<execution>`) |
//! | subject (core) | `N.log.<run>.<stage>` | live log lines and progress (at most once) |
//! | KV | `N-agents` (TTL 3 × heartbeat) | heartbeats, key = agent name |
//! | KV | `N-labelsets` | label sets in use (key: a hash of the set) |
//! | KV | `N-cancel` (1 d) | cancel flags, key = job id |
//! | object store | `N-cas` (7 d) | blobs named `sha256:<hex>` |
//!
//! nats-server 2.9 (Debian 12) cannot create KV buckets through
//! async-nats' `create_key_value` (it asks for account information in a
//! shape 2.9 does not send), so the buckets' streams are created here with
//! the configuration `create_key_value` would send and opened with
//! `get_key_value`.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::context::Context;
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::object_store::{self, ObjectStore};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use sha2::Digest as _;

use sluice_types::LabelSet;

use crate::error::{nats, FleetError};
use crate::proto::JobId;

/// The namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "sluice";

/// The names of one fleet namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    ns: String,
}

impl Names {
    /// The names under `namespace`: 1 to 32 of `[A-Za-z0-9_-]` (it prefixes
    /// subjects, stream and bucket names).
    pub fn new(namespace: &str) -> Result<Names, FleetError> {
        let ok = (1..=32).contains(&namespace.len())
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(FleetError::BadNamespace {
                namespace: namespace.to_owned(),
            });
        }
        Ok(Names {
            ns: namespace.to_owned(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// `N_JOBS`.
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.ns)
    }

    /// `N_OUTCOMES`.
    pub fn outcomes_stream(&self) -> String {
        format!("{}_OUTCOMES", self.ns)
    }

    /// `N.jobs.<labelset>.<job id>`.
    pub fn job_subject(&self, runs_on: &LabelSet, id: &JobId) -> String {
        format!("{}.jobs.{}.{id}", self.ns, runs_on.token())
    }

    /// `N.jobs.<labelset>.>`: what the consumer of a label set receives.
    pub fn jobs_filter(&self, labels: &LabelSet) -> String {
        format!("{}.jobs.{}.>", self.ns, labels.token())
    }

    /// `ls-<labelset>`, or `ls-h<hash>` when that would be too long for a
    /// file name on the server (consumers are directories in its store).
    pub fn consumer(&self, labels: &LabelSet) -> String {
        let name = format!("ls-{}", labels.token());
        if name.len() <= 200 {
            name
        } else {
            let hash = sha2::Sha256::digest(labels.token().as_bytes());
            format!("ls-h{}", &hex::encode(hash)[..32])
        }
    }

    /// The key of `labels` in `N-labelsets` (KV keys allow no `,`).
    pub fn labelset_key(&self, labels: &LabelSet) -> String {
        let hash = sha2::Sha256::digest(labels.token().as_bytes());
        format!("ls-{}", &hex::encode(hash)[..32])
    }

    /// `N.run.<job id>.outcome`: the one outcome of a job.
    pub fn outcome_subject(&self, id: &JobId) -> String {
        format!("{}.run.{id}.outcome", self.ns)
    }

    /// `N.run.<job id>.started`: a job's `Started` events.
    pub fn event_subject(&self, id: &JobId) -> String {
        format!("{}.run.{id}.started", self.ns)
    }

    /// `N.run.<run id>.>` on `N_OUTCOMES`: a run's outcomes and events.
    /// (One subject tree, because nats-server 2.9 refuses a consumer filter
    /// like `N.*.<run>.>` that spans two of a stream's subjects.)
    pub fn run_filter(&self, run_id: &str) -> String {
        format!("{}.run.{run_id}.>", self.ns)
    }

    /// `N.log.<run id>.<stage>` (core NATS, not stored).
    pub fn log_subject(&self, run_id: &str, stage: &str) -> String {
        format!("{}.log.{run_id}.{stage}", self.ns)
    }

    /// `N.log.<run id>.*`.
    pub fn run_logs(&self, run_id: &str) -> String {
        format!("{}.log.{run_id}.*", self.ns)
    }

    /// `N-agents`.
    pub fn agents_bucket(&self) -> String {
        format!("{}-agents", self.ns)
    }

    /// `N-labelsets`.
    pub fn labelsets_bucket(&self) -> String {
        format!("{}-labelsets", self.ns)
    }

    /// `N-cancel`.
    pub fn cancel_bucket(&self) -> String {
        format!("{}-cancel", self.ns)
    }

    /// `N-cas`.
    pub fn cas_bucket(&self) -> String {
        format!("{}-cas", self.ns)
    }

    /// JetStream's advisory subject for jobs of `consumer` that reached
    /// `max_deliver`.
    pub fn max_deliveries_advisory(&self, consumer: &str) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{consumer}",
            self.jobs_stream()
        )
    }
}

/// The tunable parts of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutConfig {
    /// How long a delivered job may go without progress before JetStream
    /// redelivers it (agents send progress every third of it, or of the
    /// consumer's own ack wait if that is shorter). 15 s. Set by whoever
    /// creates or updates a label set's consumer (the coordinator).
    pub ack_wait: Duration,
    /// Deliveries before JetStream gives a job up (surplus pulls that are
    /// handed back count too; lost executions are capped by the
    /// coordinator). 20.
    pub max_deliver: i64,
    /// How long a heartbeat keeps an agent listed (3 × its interval). 15 s.
    /// Applied to an existing bucket only by agents.
    pub heartbeat_ttl: Duration,
    /// How long outcomes and events are kept. 7 days.
    pub outcome_max_age: Duration,
    /// How long blobs are kept. 7 days.
    pub blob_max_age: Duration,
    /// How long cancel flags are kept. 1 day.
    pub cancel_max_age: Duration,
    /// How long a message id is remembered for deduplication. 10 min.
    pub duplicate_window: Duration,
    /// The largest job message (larger jobs go through the blob store). 1 MiB.
    pub max_job_bytes: i32,
    /// How often an agent re-reads `N-labelsets` besides watching it (the
    /// watch wakes it at once for a new label set; this only repairs a
    /// change the watch missed). 2 s.
    pub labelsets_refresh: Duration,
}

impl Default for LayoutConfig {
    fn default() -> LayoutConfig {
        const DAY: u64 = 24 * 3600;
        LayoutConfig {
            ack_wait: Duration::from_secs(15),
            max_deliver: 20,
            heartbeat_ttl: Duration::from_secs(15),
            outcome_max_age: Duration::from_secs(7 * DAY),
            blob_max_age: Duration::from_secs(7 * DAY),
            cancel_max_age: Duration::from_secs(DAY),
            duplicate_window: Duration::from_secs(600),
            max_job_bytes: 1 << 20,
            labelsets_refresh: Duration::from_secs(2),
        }
    }
}

/// Handles on everything of one namespace, as [`ensure_layout`] left it.
#[derive(Clone)]
pub struct Layout {
    /// The names.
    pub names: Names,
    /// The configuration it was made with.
    pub config: LayoutConfig,
    /// The JetStream context.
    pub js: Context,
    /// `N_JOBS`.
    pub jobs: Stream,
    /// `N_OUTCOMES`.
    pub outcomes: Stream,
    /// `N-agents`.
    pub agents: Store,
    /// `N-labelsets`.
    pub labelsets: Store,
    /// `N-cancel`.
    pub cancel: Store,
    /// `N-cas`.
    pub cas: ObjectStore,
}

/// The expected configuration of `N_JOBS`.
pub fn jobs_stream_config(names: &Names, config: &LayoutConfig) -> stream::Config {
    stream::Config {
        name: names.jobs_stream(),
        subjects: vec![format!("{}.jobs.>", names.namespace())],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        duplicate_window: config.duplicate_window,
        max_message_size: config.max_job_bytes,
        discard: DiscardPolicy::Old,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The expected configuration of `N_OUTCOMES`.
pub fn outcomes_stream_config(names: &Names, config: &LayoutConfig) -> stream::Config {
    let ns = names.namespace();
    stream::Config {
        name: names.outcomes_stream(),
        subjects: vec![format!("{ns}.run.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: config.outcome_max_age,
        duplicate_window: config.duplicate_window,
        allow_direct: true,
        discard: DiscardPolicy::Old,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The stream behind KV bucket `bucket`, as `create_key_value` would make
/// it (history 1).
pub fn kv_stream_config(bucket: &str, max_age: Duration) -> stream::Config {
    // What the server would default it to (and `create_key_value` sends).
    let two_minutes = Duration::from_secs(120);
    let duplicate_window = if max_age > Duration::ZERO && max_age < two_minutes {
        max_age
    } else {
        two_minutes
    };
    stream::Config {
        duplicate_window,
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The configuration of the consumer of label set `labels`.
pub fn consumer_config(names: &Names, labels: &LabelSet, config: &LayoutConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(names.consumer(labels)),
        filter_subject: names.jobs_filter(labels),
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// Creates the stream `want` or brings an existing one in line: the fields
/// we own are updated; another retention policy or storage type (which
/// the server cannot change in place) is [`FleetError::IncompatibleStream`].
pub async fn ensure_stream(js: &Context, want: stream::Config) -> Result<Stream, FleetError> {
    ensure_stream_as(js, want, true).await
}

/// [`ensure_stream`], leaving an existing stream's configuration alone
/// unless `update`.
async fn ensure_stream_as(
    js: &Context,
    want: stream::Config,
    update: bool,
) -> Result<Stream, FleetError> {
    let name = want.name.clone();
    let stream = js
        .get_or_create_stream(want.clone())
        .await
        .map_err(nats("create stream", &name))?;
    let have = &stream.cached_info().config;
    if have.retention != want.retention {
        return Err(FleetError::IncompatibleStream {
            stream: name,
            problem: format!(
                "has retention {:?}, the fleet needs {:?}",
                have.retention, want.retention
            ),
        });
    }
    if have.storage != want.storage {
        return Err(FleetError::IncompatibleStream {
            stream: name,
            problem: format!(
                "has storage {:?}, the fleet needs {:?}",
                have.storage, want.storage
            ),
        });
    }
    // The server reports unset limits as -1 where we send 0.
    let limit = |n: i64| if n <= 0 { -1 } else { n };
    let differs = have.subjects != want.subjects
        || have.max_age != want.max_age
        || have.duplicate_window != want.duplicate_window
        || limit(have.max_message_size.into()) != limit(want.max_message_size.into())
        || limit(have.max_messages_per_subject) != limit(want.max_messages_per_subject)
        || have.allow_direct != want.allow_direct
        || have.allow_rollup != want.allow_rollup
        || have.deny_delete != want.deny_delete;
    if !differs || !update {
        return Ok(stream);
    }
    tracing::info!(stream = %name, "updating the stream's configuration to the fleet's");
    js.update_stream(want)
        .await
        .map_err(nats("update stream", &name))?;
    js.get_stream(&name)
        .await
        .map_err(nats("open stream", &name))
}

/// Creates (or repairs) a KV bucket on any server version; see the module
/// documentation.
pub async fn ensure_kv(js: &Context, bucket: &str, max_age: Duration) -> Result<Store, FleetError> {
    ensure_kv_as(js, bucket, max_age, true).await
}

async fn ensure_kv_as(
    js: &Context,
    bucket: &str,
    max_age: Duration,
    update: bool,
) -> Result<Store, FleetError> {
    ensure_stream_as(js, kv_stream_config(bucket, max_age), update).await?;
    js.get_key_value(bucket)
        .await
        .map_err(nats("open key-value bucket", bucket))
}

/// Creates (or repairs) everything of `names`' namespace. Idempotent and
/// safe to run from every coordinator and agent at once.
pub async fn ensure_layout(
    js: &Context,
    names: &Names,
    config: &LayoutConfig,
) -> Result<Layout, FleetError> {
    let jobs = ensure_stream(js, jobs_stream_config(names, config)).await?;
    let outcomes = ensure_stream(js, outcomes_stream_config(names, config)).await?;
    // The heartbeat TTL belongs to the agents (it follows their heartbeat
    // interval): a coordinator creates the bucket if needed but never
    // changes it; `NatsJobSource::new` does.
    let agents = ensure_kv_as(js, &names.agents_bucket(), config.heartbeat_ttl, false).await?;
    let labelsets = ensure_kv(js, &names.labelsets_bucket(), Duration::ZERO).await?;
    let cancel = ensure_kv(js, &names.cancel_bucket(), config.cancel_max_age).await?;
    let bucket = names.cas_bucket();
    // The object store's own creation does not query the account, so it
    // works on 2.9; it is get-or-create.
    let cas = match js.get_object_store(&bucket).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                storage: StorageType::File,
                max_age: config.blob_max_age,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(nats("create object store", &bucket))?,
    };
    Ok(Layout {
        names: names.clone(),
        config: config.clone(),
        js: js.clone(),
        jobs,
        outcomes,
        agents,
        labelsets,
        cancel,
        cas,
    })
}

/// What `N-labelsets` holds per label set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelSetEntry {
    /// The label set.
    pub labels: LabelSet,
    /// Its consumer on `N_JOBS`.
    pub consumer: String,
}

impl Layout {
    /// Creates (or repairs: ack wait, max deliver) the consumer of label
    /// set `labels` and registers the set in `N-labelsets`, so agents
    /// whose labels cover it start pulling from it.
    pub async fn ensure_consumer(&self, labels: &LabelSet) -> Result<PullConsumer, FleetError> {
        let want = consumer_config(&self.names, labels, &self.config);
        let name = self.names.consumer(labels);
        let consumer: PullConsumer = self
            .jobs
            .get_or_create_consumer(&name, want.clone())
            .await
            .map_err(nats("create consumer", &name))?;
        let have = &consumer.cached_info().config;
        let consumer = if have.ack_wait != want.ack_wait
            || have.max_deliver != want.max_deliver
            || have.filter_subject != want.filter_subject
        {
            tracing::info!(consumer = %name, "updating the consumer's configuration");
            // 2.9 has no separate update call: a create with the same
            // durable name updates the editable fields.
            self.jobs
                .create_consumer(want)
                .await
                .map_err(nats("update consumer", &name))?
        } else {
            consumer
        };
        let entry = LabelSetEntry {
            labels: labels.clone(),
            consumer: name.clone(),
        };
        let body = serde_json::to_vec(&entry).map_err(|source| FleetError::Encode {
            what: "a label set entry",
            source,
        })?;
        self.labelsets
            .put(self.names.labelset_key(labels), body.into())
            .await
            .map_err(nats("register label set", &name))?;
        Ok(consumer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn names_are_subject_tokens_and_short_enough_for_the_server() -> TestResult {
        let names = Names::new("ci")?;
        let id: JobId = "20261207-101943-5b3f59.2.build.1".parse()?;
        let set: LabelSet = "os=linux,net=egress".parse()?;
        assert_eq!(
            names.job_subject(&set, &id),
            "ci.jobs.net=egress,os=linux.20261207-101943-5b3f59.2.build.1"
        );
        assert_eq!(names.consumer(&set), "ls-net=egress,os=linux");
        assert_eq!(names.consumer(&LabelSet::any()), "ls-any");
        assert_eq!(
            names.outcome_subject(&id),
            "ci.run.20261207-101943-5b3f59.2.build.1.outcome"
        );
        assert!(names
            .event_subject(&id)
            .starts_with(&names.run_filter(&id.run_id).replace('>', "")));
        // Eight labels of 63+63 characters: the consumer name (a directory
        // on the server) is a hash instead.
        let long = (0..8)
            .map(|i| format!("k{i}{}={}", "k".repeat(61), "v".repeat(63)))
            .collect::<Vec<_>>()
            .join(",");
        let long: LabelSet = long.parse()?;
        let consumer = names.consumer(&long);
        assert!(
            consumer.starts_with("ls-h") && consumer.len() < 64,
            "{consumer}"
        );
        // KV keys allow no `,`.
        let key = names.labelset_key(&set);
        assert!(
            key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{key}"
        );
        for bad in ["", "a.b", "a b", "x".repeat(33).as_str(), "a>"] {
            assert!(
                matches!(Names::new(bad), Err(FleetError::BadNamespace { .. })),
                "{bad}"
            );
        }
        Ok(())
    }
}
