//! Why a fleet operation failed.
//!
//! Decisions are taken on the variants (and, inside the NATS code, on
//! async-nats' error *kinds* and JetStream error codes), never on message
//! text. Errors of the NATS client that nobody branches on are kept as
//! their source in [`FleetError::Nats`], with what was being done and to
//! what.

use std::path::PathBuf;

use crate::proto::JobId;

/// A fleet error. Every message names what was being done, the place (URL,
/// stream, subject, digest, path) and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The NATS server cannot be reached at start.
    #[error(
        "cannot reach NATS at {url}: {source}; is nats-server running with JetStream (`nats-server -js`)? \
         (scripts/setup-nats.sh installs it)"
    )]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A URL that is not a usable NATS address.
    #[error("`{url}` is not a NATS address: {why}; write it as nats://host:port[?namespace=NAME]")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A job needs labels the agent behind a unix socket does not have:
    /// over a socket there is no other agent to route it to.
    #[error(
        "stage `{stage}` needs an agent with the labels `{needs}`; the local agent `{agent}` has `{has}`: \
         add the labels to the agent's config (`labels:`), or run the stage on a fleet (`--executor nats://…`)"
    )]
    LabelsNotServed {
        /// The stage.
        stage: String,
        /// Its `runs-on:`.
        needs: sluice_types::LabelSet,
        /// The agent's name.
        agent: String,
        /// The agent's labels.
        has: sluice_types::LabelSet,
    },
    /// The NATS credentials file cannot be read or parsed.
    #[error(
        "cannot use the NATS credentials file {}: {source}; give the path of a `.creds` file (from `nsc generate creds`)",
        path.display()
    )]
    Credentials {
        /// The file named by the config.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A namespace that cannot prefix subjects and stream names.
    #[error(
        "`{namespace}` is not a usable fleet namespace: use 1 to 32 letters, digits, `-` or `_`"
    )]
    BadNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// A request to the NATS server failed.
    #[error("NATS: could not {action} {target}: {source}")]
    Nats {
        /// What was being done ("create stream", "publish to" …).
        action: &'static str,
        /// The stream, consumer, subject, bucket or key concerned.
        target: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A stream exists under our name with a configuration we cannot use
    /// and must not change on our own (another retention policy, say).
    #[error(
        "NATS stream {stream} exists but {problem}; remove it (`nats stream rm {stream}`) or use \
         another fleet namespace"
    )]
    IncompatibleStream {
        /// The stream.
        stream: String,
        /// What differs.
        problem: String,
    },
    /// A JetStream publish got no acknowledgement after its retries.
    #[error("NATS: no acknowledgement for {subject} after {attempts} attempts: {source}")]
    PublishUnacknowledged {
        /// The subject.
        subject: String,
        /// How often it was sent (with the same message id).
        attempts: u32,
        /// The last error.
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
    /// Acknowledging a message (progress, nak, ack) failed. The client's
    /// error is untyped; it is never branched on.
    #[error("NATS: could not {action} job {id}: {source}")]
    Ack {
        /// `acknowledge`, `extend`, `return` …
        action: &'static str,
        /// The job.
        id: JobId,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A message that is not what its subject promises.
    #[error("a message on {subject} could not be read: {source}")]
    Decode {
        /// Where it came from.
        subject: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A message could not be written as JSON (never happens for our own
    /// types; kept typed rather than unwrapped).
    #[error("could not encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The peer speaks another protocol version.
    #[error("{peer} speaks fleet protocol {theirs}, this sluice speaks {ours}: upgrade {older}")]
    Protocol {
        /// Who the peer is (an agent's name, a coordinator's host:pid).
        peer: String,
        /// Its version.
        theirs: u32,
        /// Ours.
        ours: u32,
        /// Which side to upgrade.
        older: String,
    },
    /// A blob that the store does not hold.
    #[error("blob {digest} is not in the {store}; it may have expired: run the stage again")]
    BlobNotFound {
        /// The digest asked for.
        digest: String,
        /// Which store.
        store: String,
    },
    /// A blob whose bytes do not hash to its name.
    #[error("blob {digest} in the {store} holds other content ({actual}); it was refused")]
    BlobDigestMismatch {
        /// The name (expected digest).
        digest: String,
        /// What the bytes hash to (or the store's own digest, when it
        /// disagrees).
        actual: String,
        /// Which store.
        store: String,
    },
    /// Not a `sha256:<64 lowercase hex>` digest.
    #[error("`{digest}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)")]
    BadDigest {
        /// The text.
        digest: String,
    },
    /// The local CAS refused or failed.
    #[error(transparent)]
    Cas(#[from] sluice_record::artifacts::ArtifactError),
    /// A local file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file, directory or socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A unix-socket peer was refused (another user, a bad first frame).
    #[error("refused the connection on {}: {why}", socket.display())]
    PeerRefused {
        /// The socket.
        socket: PathBuf,
        /// Why.
        why: String,
    },
    /// The connection or subscription ended (the server or the peer went
    /// away for good, or the agent is shutting down).
    #[error("{what} closed")]
    Closed {
        /// What ended.
        what: String,
    },
}

impl FleetError {
    /// Whether the error is in what the user gave (an address, a
    /// namespace, a credentials file) rather than in a server, an agent or
    /// the machine: the CLI exits 2 for these.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            FleetError::BadUrl { .. }
                | FleetError::BadNamespace { .. }
                | FleetError::Credentials { .. }
        )
    }
}

/// `map_err` helper: [`FleetError::Nats`] from any client error.
pub(crate) fn nats<E: Into<async_nats::Error>>(
    action: &'static str,
    target: impl Into<String>,
) -> impl FnOnce(E) -> FleetError {
    let target = target.into();
    move |source| FleetError::Nats {
        action,
        target,
        source: source.into(),
    }
}
