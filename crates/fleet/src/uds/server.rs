//! The agent's half of the unix socket: listens, checks each peer, and
//! hands the jobs of every connection to the agent's worker loop.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use sluice_engine::executor::{LogReport, StageFailure, StageOutcome};
use sluice_types::LabelSet;

use super::{codec, encode, write_frames, Outgoing};
use crate::error::FleetError;
use crate::proto::{
    AgentEvent, Frame, Heartbeat, JobEnvelope, JobId, OutcomeEnvelope, PluginDescription, PROTOCOL,
};
use crate::transport::{BlobStore, IncomingJob, JobLease, JobSource, SharedRun};

/// How long a new connection may take to say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Describes plugins for a coordinator (`Describe` frames): the agent
/// reads the file, checks its digest, admits it under its own policy,
/// compiles it (or takes it from its warm cache) and runs `describe`.
pub trait Describer: Send + Sync {
    /// The description of the component at `path`, which the coordinator
    /// hashed to `digest`; `Err` says why there is none, in words for the
    /// user (refused by the agent's policy, not a component, changed file).
    fn describe<'a>(
        &'a self,
        digest: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<PluginDescription, String>>;
}

/// Who the agent is, as `Welcome` says.
#[derive(Debug, Clone)]
struct Identity {
    name: String,
    version: String,
    labels: LabelSet,
}

/// The agent's side of the unix socket: a listening socket whose
/// connections' jobs come out of [`JobSource::next`] in arrival order.
///
/// The socket is created `0600` (in a `0700` directory when the directory
/// is new) and every connection is refused unless its peer runs as the
/// agent's own user (`SO_PEERCRED`): a coordinator hands the agent its CAS
/// and run directory to write into, which only that user may.
pub struct UdsJobSource {
    socket: PathBuf,
    jobs: tokio::sync::Mutex<mpsc::Receiver<IncomingJob>>,
    shutdown: CancellationToken,
    blobs: Unshared,
    accept: tokio::task::JoinHandle<()>,
}

impl UdsJobSource {
    /// Listen on `socket` as agent `name` (version `version`, labels
    /// `labels`); `describer` answers `Describe` frames.
    ///
    /// A socket file left by an agent that is gone is replaced; one that
    /// another process still listens on is an error, and so is any other
    /// kind of file at that path.
    pub async fn bind(
        socket: &Path,
        name: &str,
        version: &str,
        labels: LabelSet,
        describer: Arc<dyn Describer>,
    ) -> Result<UdsJobSource, FleetError> {
        let listener = listen(socket).await?;
        // The socket file was made by this process just now: its owner is
        // the uid peers must have.
        let uid = std::fs::metadata(socket)
            .map_err(|source| FleetError::Io {
                action: "read the owner of",
                path: socket.to_owned(),
                source,
            })?
            .uid();
        let (tx, rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        let identity = Arc::new(Identity {
            name: name.to_owned(),
            version: version.to_owned(),
            labels,
        });
        let accept = tokio::spawn(accept_loop(
            listener,
            socket.to_owned(),
            uid,
            identity,
            describer,
            tx,
            shutdown.clone(),
        ));
        Ok(UdsJobSource {
            socket: socket.to_owned(),
            jobs: tokio::sync::Mutex::new(rx),
            shutdown,
            blobs: Unshared,
            accept,
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for UdsJobSource {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.accept.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Bind `socket`: create its directory (`0700`) if needed, replace a stale
/// socket file, refuse a live one, and make the socket `0600`.
async fn listen(socket: &Path) -> Result<UnixListener, FleetError> {
    let io = |action: &'static str| {
        let path = socket.to_owned();
        move |source| FleetError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io("restrict the directory of"))?;
        }
    }
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(socket).await.is_ok() {
                return Err(FleetError::PeerRefused {
                    socket: socket.to_owned(),
                    why: "another agent is listening on it; stop it or choose another path"
                        .to_owned(),
                });
            }
            std::fs::remove_file(socket).map_err(io("remove the stale socket"))?;
        }
        Ok(_) => {
            return Err(FleetError::PeerRefused {
                socket: socket.to_owned(),
                why: "the path exists and is not a socket; choose another path".to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io("inspect")(source)),
    }
    let listener = UnixListener::bind(socket).map_err(io("listen on"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io("restrict"))?;
    Ok(listener)
}

async fn accept_loop(
    listener: UnixListener,
    socket: PathBuf,
    uid: u32,
    identity: Arc<Identity>,
    describer: Arc<dyn Describer>,
    jobs: mpsc::Sender<IncomingJob>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(socket = %socket.display(), error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let conn = Connection {
            socket: socket.clone(),
            uid,
            identity: identity.clone(),
            describer: describer.clone(),
            jobs: jobs.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(conn.serve(stream));
    }
}

/// One coordinator's connection.
struct Connection {
    socket: PathBuf,
    uid: u32,
    identity: Arc<Identity>,
    describer: Arc<dyn Describer>,
    jobs: mpsc::Sender<IncomingJob>,
    shutdown: CancellationToken,
}

/// Sends frames on a connection.
#[derive(Clone)]
struct Writer(mpsc::UnboundedSender<Outgoing>);

impl Writer {
    /// Queue `frame`; false when the connection is gone.
    fn send(&self, frame: &Frame) -> bool {
        match encode(frame) {
            Ok(bytes) => self.0.send(Outgoing { bytes, done: None }).is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "a frame could not be encoded");
                false
            }
        }
    }

    /// Send `frame` and wait until it is on the socket.
    async fn send_flushed(&self, frame: &Frame) -> Result<(), FleetError> {
        let bytes = encode(frame)?;
        let (done, written) = oneshot::channel();
        let closed = || FleetError::Closed {
            what: "the coordinator's connection".to_owned(),
        };
        self.0
            .send(Outgoing {
                bytes,
                done: Some(done),
            })
            .map_err(|_| closed())?;
        match written.await {
            Ok(true) => Ok(()),
            _ => Err(closed()),
        }
    }
}

impl Connection {
    async fn serve(self, stream: UnixStream) {
        let peer_uid = stream.peer_cred().map(|c| c.uid());
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer(tx);
        let sink = tokio_util::codec::FramedWrite::new(write, codec());
        let write_task = tokio::spawn(write_frames(sink, rx));
        let mut frames = FramedRead::new(read, codec());
        if let Some(message) = peer_refusal(self.uid, peer_uid) {
            tracing::warn!(socket = %self.socket.display(), "{message}");
            writer.send(&Frame::Refused { message });
        } else if let Some(shared) = self.hello(&mut frames, &writer).await {
            self.jobs_of(&mut frames, &writer, shared).await;
        }
        drop(writer);
        let _ = write_task.await;
    }

    /// Read `Hello` and answer it; the coordinator's CAS and run directory
    /// when the connection may go on.
    async fn hello(
        &self,
        frames: &mut FramedRead<
            tokio::net::unix::OwnedReadHalf,
            tokio_util::codec::LengthDelimitedCodec,
        >,
        writer: &Writer,
    ) -> Option<SharedRun> {
        let refuse = |message: String| {
            tracing::warn!(socket = %self.socket.display(), "refused a coordinator: {message}");
            writer.send(&Frame::Refused { message });
            None
        };
        let first = match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
            Err(_) => {
                return refuse(format!(
                    "no Hello within {}s of connecting",
                    HELLO_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => return refuse(frame_error(&e)),
            Ok(Some(Ok(bytes))) => bytes,
        };
        match serde_json::from_slice::<Frame>(&first) {
            Ok(Frame::Hello {
                protocol,
                coordinator,
                cas,
                run_dir,
            }) => {
                if protocol != PROTOCOL {
                    let older = if protocol < PROTOCOL {
                        "sluice on the coordinator's side"
                    } else {
                        "this agent"
                    };
                    return refuse(format!(
                        "coordinator {coordinator} speaks fleet protocol {protocol}, agent {} speaks {PROTOCOL}: upgrade {older}",
                        self.identity.name
                    ));
                }
                if !cas.is_absolute() || !run_dir.is_absolute() {
                    return refuse(format!(
                        "the CAS ({}) and run directory ({}) must be absolute paths",
                        cas.display(),
                        run_dir.display()
                    ));
                }
                tracing::info!(coordinator, run_dir = %run_dir.display(), "coordinator connected");
                writer.send(&Frame::Welcome {
                    protocol: PROTOCOL,
                    agent: self.identity.name.clone(),
                    version: self.identity.version.clone(),
                    labels: self.identity.labels.clone(),
                });
                Some(SharedRun { cas, run_dir })
            }
            Ok(other) => refuse(format!(
                "the first frame must be Hello, not {}",
                frame_kind(&other)
            )),
            Err(e) => refuse(format!("the first frame is not a sluice frame: {e}")),
        }
    }

    /// Serve `Describe`, `Job` and `Cancel` frames until the coordinator
    /// leaves (or breaks the protocol); then cancel its running jobs.
    async fn jobs_of(
        &self,
        frames: &mut FramedRead<
            tokio::net::unix::OwnedReadHalf,
            tokio_util::codec::LengthDelimitedCodec,
        >,
        writer: &Writer,
        shared: SharedRun,
    ) {
        let cancels: Arc<Mutex<HashMap<JobId, CancellationToken>>> = Arc::default();
        loop {
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                next = frames.next() => next,
            };
            let bytes = match next {
                None => break,
                Some(Ok(bytes)) => bytes,
                Some(Err(e)) => {
                    let message = frame_error(&e);
                    tracing::warn!(socket = %self.socket.display(), "closing a connection: {message}");
                    writer.send(&Frame::Refused { message });
                    break;
                }
            };
            let frame = match serde_json::from_slice::<Frame>(&bytes) {
                Ok(frame) => frame,
                Err(e) => {
                    let message =
                        format!("a frame is not a sluice frame ({e}); closing the connection");
                    tracing::warn!(socket = %self.socket.display(), "{message}");
                    writer.send(&Frame::Refused { message });
                    break;
                }
            };
            match frame {
                Frame::Describe { digest, path } => {
                    let (describer, writer) = (self.describer.clone(), writer.clone());
                    tokio::spawn(async move {
                        let result = describer.describe(&digest, &path).await;
                        writer.send(&Frame::Described { digest, result });
                    });
                }
                Frame::Job(envelope) => {
                    self.take_job(*envelope, writer, &shared, &cancels).await;
                }
                Frame::Cancel { id, reason } => {
                    let token = lock(&cancels).get(&id).cloned();
                    match token {
                        Some(token) => {
                            tracing::info!(job = %id, reason, "job cancelled by the coordinator");
                            token.cancel();
                        }
                        None => tracing::debug!(job = %id, "cancel for a job that is not running"),
                    }
                }
                other => {
                    let message = format!(
                        "a coordinator may not send {} frames; closing the connection",
                        frame_kind(&other)
                    );
                    tracing::warn!(socket = %self.socket.display(), "{message}");
                    writer.send(&Frame::Refused { message });
                    break;
                }
            }
        }
        // The coordinator is gone (or broke the protocol): nobody will take
        // these jobs' outcomes, so they stop.
        for token in lock(&cancels).values() {
            token.cancel();
        }
    }

    /// Hand `envelope` to the worker loop, or answer it at once when it
    /// cannot run here.
    async fn take_job(
        &self,
        envelope: JobEnvelope,
        writer: &Writer,
        shared: &SharedRun,
        cancels: &Arc<Mutex<HashMap<JobId, CancellationToken>>>,
    ) {
        let id = envelope.id.clone();
        let log = envelope.job.log.clone();
        let refuse = |message: String| {
            let outcome = OutcomeEnvelope {
                protocol: PROTOCOL,
                id: id.clone(),
                agent: self.identity.name.clone(),
                execution: String::new(),
                outcome: StageOutcome::local(
                    Err(StageFailure::Setup { message }),
                    LogReport {
                        path: log.clone(),
                        stats: Default::default(),
                    },
                ),
                log: None,
                workspace_delta: None,
            };
            writer.send(&Frame::Event(Box::new(AgentEvent::Finished(outcome))));
        };
        if envelope.protocol != PROTOCOL {
            return refuse(format!(
                "agent {} speaks fleet protocol {PROTOCOL}, the job is {}: upgrade the older side",
                self.identity.name, envelope.protocol
            ));
        }
        let token = CancellationToken::new();
        if lock(cancels).insert(id.clone(), token.clone()).is_some() {
            tracing::debug!(job = %id, "the coordinator sent a job twice; the second copy is dropped");
            return;
        }
        let lease = UdsLease {
            id: id.clone(),
            writer: writer.clone(),
            token,
            shared: shared.clone(),
            cancels: cancels.clone(),
        };
        let job = IncomingJob {
            envelope,
            lease: Box::new(lease),
            delivery: 1,
        };
        if self.jobs.send(job).await.is_err() {
            lock(cancels).remove(&id);
            refuse(format!(
                "agent {} is shutting down and takes no more jobs",
                self.identity.name
            ));
        }
    }
}

/// Why a peer is refused, if it is: only the agent's own user (`uid`) may
/// connect.
pub(crate) fn peer_refusal(uid: u32, peer_uid: std::io::Result<u32>) -> Option<String> {
    match peer_uid {
        Ok(peer) if peer == uid => None,
        Ok(peer) => Some(format!(
            "a process of uid {peer} connected, but this agent (uid {uid}) serves only its own \
             user: run `sluice run --agent` as that user"
        )),
        Err(e) => Some(format!("the peer's credentials could not be read: {e}")),
    }
}

/// Lock a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Words for a framing error (a frame over the limit, a broken socket).
fn frame_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::InvalidData {
        format!(
            "a frame is over the {} MiB limit ({e}); closing the connection",
            crate::proto::MAX_FRAME >> 20
        )
    } else {
        format!("reading from the connection failed: {e}")
    }
}

/// The kind of a frame, for messages.
pub(crate) fn frame_kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "Hello",
        Frame::Welcome { .. } => "Welcome",
        Frame::Refused { .. } => "Refused",
        Frame::Describe { .. } => "Describe",
        Frame::Described { .. } => "Described",
        Frame::Job(_) => "Job",
        Frame::Cancel { .. } => "Cancel",
        Frame::Event(_) => "Event",
    }
}

/// A job taken from a connection.
struct UdsLease {
    id: JobId,
    writer: Writer,
    token: CancellationToken,
    shared: SharedRun,
    cancels: Arc<Mutex<HashMap<JobId, CancellationToken>>>,
}

impl Drop for UdsLease {
    fn drop(&mut self) {
        lock(&self.cancels).remove(&self.id);
    }
}

impl JobLease for UdsLease {
    fn progress(&self) -> BoxFuture<'_, ()> {
        // The connection itself says the agent is alive.
        Box::pin(async {})
    }

    fn event(&self, event: AgentEvent) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.writer.send(&Frame::Event(Box::new(event))) {
                tracing::debug!(job = %self.id, "the coordinator left; an event was dropped");
            }
        })
    }

    fn finish(&self, outcome: OutcomeEnvelope) -> BoxFuture<'_, Result<(), FleetError>> {
        Box::pin(async move {
            self.writer
                .send_flushed(&Frame::Event(Box::new(AgentEvent::Finished(outcome))))
                .await
        })
    }

    fn cancelled(&self) -> CancellationToken {
        self.token.clone()
    }

    fn shared_run(&self) -> Option<SharedRun> {
        Some(self.shared.clone())
    }
}

impl JobSource for UdsJobSource {
    fn next(&self) -> BoxFuture<'_, Result<IncomingJob, FleetError>> {
        Box::pin(async move {
            let closed = || FleetError::Closed {
                what: format!("the agent socket {}", self.socket.display()),
            };
            if self.shutdown.is_cancelled() {
                return Err(closed());
            }
            let mut jobs = self.jobs.lock().await;
            tokio::select! {
                _ = self.shutdown.cancelled() => Err(closed()),
                job = jobs.recv() => job.ok_or_else(closed),
            }
        })
    }

    fn heartbeat<'a>(&'a self, _beat: &'a Heartbeat) -> BoxFuture<'a, Result<(), FleetError>> {
        // The coordinator learns who the agent is from `Welcome`.
        Box::pin(async { Ok(()) })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// The unix-socket agent has no blob store of its own: it works in each
/// coordinator's CAS ([`JobLease::shared_run`]), opened with
/// [`crate::blobs::SharedCas`]. Every operation here fails, naming that.
struct Unshared;

impl Unshared {
    fn error(digest: &str) -> FleetError {
        FleetError::BlobNotFound {
            digest: digest.to_owned(),
            store:
                "unix-socket agent's store (it uses the coordinator's CAS: JobLease::shared_run)"
                    .to_owned(),
        }
    }
}

impl BlobStore for Unshared {
    fn put<'a>(
        &'a self,
        digest: &'a str,
        _reader: Box<dyn tokio::io::AsyncRead + Send + Unpin + 'a>,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move { Err(Unshared::error(digest)) })
    }

    fn put_file<'a>(
        &'a self,
        digest: &'a str,
        _path: &'a Path,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move { Err(Unshared::error(digest)) })
    }

    fn get_into<'a>(
        &'a self,
        _cas: &'a sluice_record::artifacts::Cas,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<u64, FleetError>> {
        Box::pin(async move { Err(Unshared::error(digest)) })
    }

    fn exists<'a>(&'a self, _digest: &'a str) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async { Ok(false) })
    }
}
