//! The unix-socket transport of a warm local agent:
//! `sluice agent --listen unix:PATH` on one side ([`UdsJobSource`]) and
//! `sluice run --agent unix:PATH` on the other ([`UdsDispatch`]).
//!
//! One connection per run. Each frame is a u32 big-endian length and one
//! JSON [`Frame`] ([`MAX_FRAME`] bytes at most), so a frame is parsed only
//! once it is complete and a peer cannot make the other side buffer more
//! than that. The coordinator opens with `Hello` (its protocol, CAS and run
//! directory); the agent answers `Welcome` or `Refused` (another uid, another
//! protocol) and closes. Jobs and their events are multiplexed by job id.
//!
//! Both sides are on one machine and run as one user (the agent checks the
//! peer's uid with `SO_PEERCRED`), so nothing is copied: the agent reads
//! the plugin file and the inputs from the coordinator's CAS, works in the
//! coordinator's workspace, and writes the stage's log and outputs straight
//! into the coordinator's run directory and CAS
//! ([`crate::transport::JobLease::shared_run`]).

mod client;
mod server;

pub use client::{AgentInfo, UdsDispatch};
pub use server::{Describer, UdsJobSource};

use bytes::Bytes;
use tokio_util::codec::LengthDelimitedCodec;

use crate::error::FleetError;
use crate::proto::{Frame, MAX_FRAME};

/// The frame codec of both sides: u32 big-endian length, [`MAX_FRAME`] at
/// most (a longer frame is an error, not a buffer).
pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// A frame as bytes to send.
pub(crate) fn encode(frame: &Frame) -> Result<Bytes, FleetError> {
    serde_json::to_vec(frame)
        .map(Bytes::from)
        .map_err(|source| FleetError::Encode {
            what: "a unix-socket frame",
            source,
        })
}

/// Frames a writer task sends in order; `done` learns whether the frame
/// reached the socket.
pub(crate) struct Outgoing {
    pub(crate) bytes: Bytes,
    pub(crate) done: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// Sends the frames of `rx` on `sink` until either ends; a failed write
/// ends the task (the reader half notices the closed connection).
pub(crate) async fn write_frames<S>(
    mut sink: S,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Outgoing>,
) where
    S: futures::Sink<Bytes, Error = std::io::Error> + Unpin,
{
    use futures::SinkExt;
    while let Some(out) = rx.recv().await {
        let ok = sink.send(out.bytes).await.is_ok();
        if let Some(done) = out.done {
            let _ = done.send(ok);
        }
        if !ok {
            break;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
pub(crate) mod tests;
