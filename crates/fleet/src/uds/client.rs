//! The coordinator's half of the unix socket: one connection to a warm
//! local agent per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use sluice_record::artifacts::Cas;
use sluice_types::LabelSet;

use super::server::frame_kind;
use super::{codec, encode, write_frames, Outgoing};
use crate::blobs::SharedCas;
use crate::error::FleetError;
use crate::proto::{AgentEvent, Frame, Heartbeat, JobEnvelope, JobId, PluginDescription, PROTOCOL};
use crate::transport::{Adopted, BlobStore, Cancelled, Dispatch, Submitted};

/// How long the agent may take to answer `Hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// Who answered on the socket (its `Welcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's name.
    pub name: String,
    /// The sluice version it runs.
    pub version: String,
    /// Its labels.
    pub labels: LabelSet,
}

/// The events of one job: buffered until [`Dispatch::events`] takes them.
struct Slot {
    /// Where the reader puts events; `None` once the job finished (later
    /// outcomes are duplicates and dropped).
    tx: Option<mpsc::UnboundedSender<AgentEvent>>,
    /// The other end, until someone follows the job.
    rx: Option<mpsc::UnboundedReceiver<AgentEvent>>,
    /// Whether the job was sent.
    submitted: bool,
}

impl Slot {
    fn new() -> Slot {
        let (tx, rx) = mpsc::unbounded_channel();
        Slot {
            tx: Some(tx),
            rx: Some(rx),
            submitted: false,
        }
    }
}

/// Who waits for a `Described` answer.
type DescribeWaiter = oneshot::Sender<Result<PluginDescription, String>>;

/// State shared with the reader task.
struct Shared {
    jobs: Mutex<HashMap<JobId, Slot>>,
    /// `Describe` requests waiting for their answer, by digest.
    describes: Mutex<HashMap<String, Vec<DescribeWaiter>>>,
    /// Why the connection ended, once it did.
    closed_because: Mutex<Option<String>>,
    closed: CancellationToken,
}

/// Lock a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The coordinator's side of the unix socket: a [`Dispatch`] whose one
/// agent shares this machine, this user, the CAS and the run directory.
pub struct UdsDispatch {
    socket: PathBuf,
    agent: AgentInfo,
    out: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    blobs: SharedCas,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for UdsDispatch {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl UdsDispatch {
    /// Connect to the agent at `socket` and introduce this run: the
    /// coordinator `coordinator` (`host:pid`), its CAS (which the agent
    /// reads inputs from and stores outputs in) and the run's directory
    /// (where the agent writes stage logs).
    ///
    /// Fails when nobody listens there, when the agent refuses (another
    /// user, another protocol) or does not answer within 10 s.
    pub async fn connect(
        socket: &Path,
        coordinator: &str,
        cas: &Cas,
        run_dir: &Path,
    ) -> Result<UdsDispatch, FleetError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| FleetError::Io {
                action:
                    "connect to the agent socket (is `sluice agent --listen unix:PATH` running?)",
                path: socket.to_owned(),
                source,
            })?;
        let (read, write) = stream.into_split();
        let mut frames = FramedRead::new(read, codec());
        let (out, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_frames(FramedWrite::new(write, codec()), rx));
        let hello = Frame::Hello {
            protocol: PROTOCOL,
            coordinator: coordinator.to_owned(),
            cas: absolute(cas.root()),
            run_dir: absolute(run_dir),
        };
        let closed = |why: &str| FleetError::PeerRefused {
            socket: socket.to_owned(),
            why: why.to_owned(),
        };
        out.send(Outgoing {
            bytes: encode(&hello)?,
            done: None,
        })
        .map_err(|_| closed("the connection closed at once"))?;
        let first = tokio::time::timeout(WELCOME_TIMEOUT, frames.next())
            .await
            .map_err(|_| closed("the agent did not answer within 10 s"))?;
        let bytes = match first {
            None => return Err(closed("the agent closed the connection without a word")),
            Some(Err(e)) => return Err(closed(&format!("reading its answer failed: {e}"))),
            Some(Ok(bytes)) => bytes,
        };
        let agent = match serde_json::from_slice::<Frame>(&bytes) {
            Ok(Frame::Welcome {
                protocol,
                agent,
                version,
                labels,
            }) => {
                if protocol != PROTOCOL {
                    return Err(FleetError::Protocol {
                        peer: format!("agent {agent} on {}", socket.display()),
                        theirs: protocol,
                        ours: PROTOCOL,
                        older: if protocol < PROTOCOL {
                            "the agent".to_owned()
                        } else {
                            "this sluice".to_owned()
                        },
                    });
                }
                AgentInfo {
                    name: agent,
                    version,
                    labels,
                }
            }
            Ok(Frame::Refused { message }) => {
                return Err(closed(&format!("the agent says: {message}")))
            }
            Ok(other) => {
                return Err(closed(&format!(
                    "the agent answered {} instead of Welcome",
                    frame_kind(&other)
                )))
            }
            Err(e) => return Err(closed(&format!("its answer is not a sluice frame: {e}"))),
        };
        let shared = Arc::new(Shared {
            jobs: Mutex::default(),
            describes: Mutex::default(),
            closed_because: Mutex::default(),
            closed: CancellationToken::new(),
        });
        let reader = tokio::spawn(read_frames(frames, shared.clone(), agent.name.clone()));
        Ok(UdsDispatch {
            socket: socket.to_owned(),
            agent,
            out,
            shared,
            blobs: SharedCas::new(cas.clone()),
            reader,
        })
    }

    /// The agent that answered.
    pub fn agent(&self) -> &AgentInfo {
        &self.agent
    }

    /// Why the connection ended, once it has.
    pub fn closed_because(&self) -> Option<String> {
        lock(&self.shared.closed_because).clone()
    }

    /// Ask the agent to describe the plugin at `path` (hashed here to
    /// `digest`): it checks the digest, admits the plugin under its own
    /// policy and compiles it (or finds it in its warm cache). The inner
    /// `Err` is the agent's refusal, in words for the user; the outer one
    /// a broken connection.
    pub async fn describe(
        &self,
        digest: &str,
        path: &Path,
    ) -> Result<Result<PluginDescription, String>, FleetError> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut describes = lock(&self.shared.describes);
            let waiting = describes.entry(digest.to_owned()).or_default();
            waiting.push(tx);
            waiting.len() == 1
        };
        if first {
            self.send(&Frame::Describe {
                digest: digest.to_owned(),
                path: absolute(path),
            })?;
        }
        tokio::select! {
            answer = rx => answer.map_err(|_| self.closed()),
            _ = self.shared.closed.cancelled() => Err(self.closed()),
        }
    }

    fn closed(&self) -> FleetError {
        let why = self
            .closed_because()
            .unwrap_or_else(|| "the connection closed".to_owned());
        FleetError::PeerRefused {
            socket: self.socket.clone(),
            why: format!("agent {}: {why}", self.agent.name),
        }
    }

    fn send(&self, frame: &Frame) -> Result<(), FleetError> {
        if self.shared.closed.is_cancelled() {
            return Err(self.closed());
        }
        self.out
            .send(Outgoing {
                bytes: encode(frame)?,
                done: None,
            })
            .map_err(|_| self.closed())
    }
}

/// `path` made absolute against the current directory (the agent's may
/// differ).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Route the agent's frames to the jobs and describes waiting for them;
/// when the connection ends, end every job's events (the executor then
/// reports the stage failed with [`UdsDispatch::closed_because`]).
async fn read_frames(
    mut frames: FramedRead<
        tokio::net::unix::OwnedReadHalf,
        tokio_util::codec::LengthDelimitedCodec,
    >,
    shared: Arc<Shared>,
    agent: String,
) {
    let why = loop {
        let bytes = match frames.next().await {
            None => break format!("agent {agent} closed the connection"),
            Some(Err(e)) => break format!("reading from agent {agent} failed: {e}"),
            Some(Ok(bytes)) => bytes,
        };
        let frame = match serde_json::from_slice::<Frame>(&bytes) {
            Ok(frame) => frame,
            Err(e) => break format!("agent {agent} sent a frame that is not a sluice frame: {e}"),
        };
        match frame {
            Frame::Event(event) => route(&shared, *event),
            Frame::Described { digest, result } => {
                let waiting = lock(&shared.describes).remove(&digest).unwrap_or_default();
                for tx in waiting {
                    let _ = tx.send(result.clone());
                }
            }
            Frame::Refused { message } => {
                break format!("agent {agent} closed the connection: {message}")
            }
            other => {
                tracing::warn!(
                    agent,
                    frame = frame_kind(&other),
                    "ignored an unexpected frame from the agent"
                );
            }
        }
    };
    tracing::debug!("{why}");
    *lock(&shared.closed_because) = Some(why);
    shared.closed.cancel();
    // Ending the senders ends every job's event stream.
    for slot in lock(&shared.jobs).values_mut() {
        slot.tx = None;
    }
    lock(&shared.describes).clear();
}

/// Hand `event` to its job; the first outcome ends the job's stream and
/// later ones are dropped.
fn route(shared: &Shared, event: AgentEvent) {
    let mut jobs = lock(&shared.jobs);
    let Some(slot) = jobs.get_mut(event.id()) else {
        tracing::debug!(job = %event.id(), "an event for a job this run did not send; dropped");
        return;
    };
    let Some(tx) = &slot.tx else {
        tracing::debug!(job = %event.id(), "an event after the job's outcome; dropped");
        return;
    };
    let last = matches!(
        event,
        AgentEvent::Finished(_) | AgentEvent::Exhausted { .. }
    );
    let _ = tx.send(event);
    if last {
        slot.tx = None;
    }
}

impl Dispatch for UdsDispatch {
    fn submit(&self, job: JobEnvelope) -> BoxFuture<'_, Result<Submitted, FleetError>> {
        Box::pin(async move {
            if !job.runs_on.is_subset_of(&self.agent.labels) {
                return Err(FleetError::LabelsNotServed {
                    stage: job.job.stage.clone(),
                    needs: job.runs_on.clone(),
                    agent: self.agent.name.clone(),
                    has: self.agent.labels.clone(),
                });
            }
            let id = job.id.clone();
            let duplicate = {
                let mut jobs = lock(&self.shared.jobs);
                let slot = jobs.entry(id.clone()).or_insert_with(Slot::new);
                std::mem::replace(&mut slot.submitted, true)
            };
            if !duplicate {
                self.send(&Frame::Job(Box::new(job)))?;
            }
            Ok(Submitted {
                id,
                sequence: 0,
                duplicate,
            })
        })
    }

    fn adopt<'a>(&'a self, _id: &'a JobId) -> BoxFuture<'a, Result<Adopted, FleetError>> {
        // A socket keeps nothing once its coordinator is gone.
        Box::pin(async { Ok(Adopted::Unknown) })
    }

    fn events(&self, id: &JobId) -> BoxStream<'static, AgentEvent> {
        let rx = {
            let mut jobs = lock(&self.shared.jobs);
            let slot = jobs.entry(id.clone()).or_insert_with(Slot::new);
            if self.shared.closed.is_cancelled() {
                slot.tx = None;
            }
            slot.rx.take()
        };
        match rx {
            Some(rx) => tokio_stream_of(rx),
            None => futures::stream::empty().boxed(),
        }
    }

    fn cancel<'a>(
        &'a self,
        id: &'a JobId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Cancelled, FleetError>> {
        Box::pin(async move {
            self.send(&Frame::Cancel {
                id: id.clone(),
                reason: reason.to_owned(),
            })?;
            Ok(Cancelled::Signalled)
        })
    }

    fn withdraw<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<bool, FleetError>> {
        // There is no queue outside the agent: withdrawing is cancelling.
        Box::pin(async move {
            self.send(&Frame::Cancel {
                id: id.clone(),
                reason: "withdrawn".to_owned(),
            })?;
            Ok(false)
        })
    }

    fn agents(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, FleetError>> {
        Box::pin(async move {
            Ok(vec![Heartbeat {
                name: self.agent.name.clone(),
                version: self.agent.version.clone(),
                labels: self.agent.labels.clone(),
                slots: 0,
                running: Vec::new(),
                secrets: Vec::new(),
                host: String::new(),
                started_at: String::new(),
                shared_workspace: true,
                allow_unsigned: false,
            }])
        })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }
}

/// An unbounded receiver as a stream.
fn tokio_stream_of(mut rx: mpsc::UnboundedReceiver<AgentEvent>) -> BoxStream<'static, AgentEvent> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
