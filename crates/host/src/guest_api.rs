//! The host side of WIT 0.2's `log` and `cancel` interfaces, and of the
//! interfaces whose 0.1 and 0.2 versions differ only in name (`secrets`,
//! `types`).
//!
//! - `log.log`: a record in the stage log ([`StageLog::record`]), redacted,
//!   counted against the output cap, shown live with its level and fields.
//! - `log.progress`: a `stage_progress` event, at most one per
//!   [`PROGRESS_INTERVAL`] per stage; the latest one is held back, not
//!   lost, and sent when the next is due or when the stage ends.
//! - `cancel`: a pollable on the attempt's cancellation token.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

use super::bindings::{wit, wit_cancel, wit_log, wit_secrets, wit_secrets_v1, wit_v1};
use super::logpipe::{LogLevel, StageLog};
use super::state::StageState;

/// Shortest time between two progress events of one stage.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Longest progress message kept, in bytes (longer ones are cut).
const PROGRESS_MESSAGE_MAX: usize = 512;

/// Where a stage's progress goes: `(done, total, message)`, redacted.
pub type ProgressFn = Arc<dyn Fn(u64, Option<u64>, &str) + Send + Sync>;

/// Rate-limits one stage's progress reports.
#[derive(Clone)]
pub struct Progress {
    sink: Option<ProgressFn>,
    /// Redacts messages, only those actually sent: a stage may report
    /// progress for every file of a large tree, and most reports are
    /// replaced before they are due.
    log: StageLog,
    state: Arc<Mutex<ProgressState>>,
}

#[derive(Default)]
struct ProgressState {
    last_sent: Option<Instant>,
    pending: Option<(u64, Option<u64>, String)>,
}

impl Progress {
    /// Reports to `sink` (`None`: progress is dropped, as for `describe`),
    /// messages redacted by `log`'s redactor.
    pub fn new(sink: Option<ProgressFn>, log: StageLog) -> Progress {
        Progress {
            sink,
            log,
            state: Arc::default(),
        }
    }

    /// Report progress now, or hold it until [`PROGRESS_INTERVAL`] has
    /// passed since the last report.
    pub fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if self.sink.is_none() {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        let due = state
            .last_sent
            .is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL);
        if due {
            state.last_sent = Some(now);
            state.pending = None;
            drop(state);
            self.send(done, total, message);
        } else {
            state.pending = Some((done, total, message.to_owned()));
        }
    }

    /// Send what is held back (the stage ended).
    pub fn flush(&self) {
        let pending = self.state.lock().ok().and_then(|mut s| s.pending.take());
        if let Some((done, total, message)) = pending {
            self.send(done, total, &message);
        }
    }

    /// Redact, make one line, cut, and hand to the sink.
    fn send(&self, done: u64, total: Option<u64>, message: &str) {
        let Some(sink) = &self.sink else {
            return;
        };
        let mut message = self.log.redact(message).replace(['\n', '\r'], " ");
        if message.len() > PROGRESS_MESSAGE_MAX {
            let mut end = PROGRESS_MESSAGE_MAX;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        sink(done, total, &message);
    }
}

impl wit_log::Host for StageState {
    async fn log(
        &mut self,
        level: wit_log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let level = match level {
            wit_log::Level::Trace => LogLevel::Trace,
            wit_log::Level::Debug => LogLevel::Debug,
            wit_log::Level::Info => LogLevel::Info,
            wit_log::Level::Warn => LogLevel::Warn,
            wit_log::Level::Error => LogLevel::Error,
        };
        self.log.record(level, &message, &fields);
        Ok(())
    }

    async fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: String,
    ) -> wasmtime::Result<()> {
        self.progress.report(done, total, &message);
        Ok(())
    }
}

/// The pollable behind `cancel.subscribe`.
struct Cancelled(CancellationToken);

#[async_trait::async_trait]
impl Pollable for Cancelled {
    async fn ready(&mut self) {
        self.0.cancelled().await;
    }
}

impl wit_cancel::Host for StageState {
    async fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let token = self.cancel.clone();
        let resource = self.table.push(Cancelled(token))?;
        subscribe(&mut self.table, resource)
    }

    async fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.cancel.is_cancelled())
    }
}

impl wit_secrets::Host for StageState {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<String, wit_secrets::ErrorCode>> {
        Ok(wit_secrets_v1::Host::get(self, name)
            .await
            .map_err(|e| match e {
                wit_secrets_v1::ErrorCode::Denied(m) => wit_secrets::ErrorCode::Denied(m),
                wit_secrets_v1::ErrorCode::NotFound(m) => wit_secrets::ErrorCode::NotFound(m),
            }))
    }
}

impl wit::Host for StageState {}
impl wit_v1::Host for StageState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_rate_limited_and_the_latest_is_kept() -> Result<(), Box<dyn std::error::Error>> {
        let seen = Arc::new(Mutex::new(Vec::<(u64, Option<u64>, String)>::new()));
        let sink_seen = seen.clone();
        let sink: ProgressFn = Arc::new(move |d, t, m: &str| {
            if let Ok(mut v) = sink_seen.lock() {
                v.push((d, t, m.to_owned()));
            }
        });
        let progress = Progress::new(Some(sink), StageLog::discarding()?);
        for i in 0..50 {
            progress.report(i, Some(50), &format!("file {i}\nnext"));
        }
        progress.flush();
        let got = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got.first(), Some(&(0, Some(50), "file 0 next".to_owned())));
        assert_eq!(got.last(), Some(&(49, Some(50), "file 49 next".to_owned())));
        assert!(got.len() < 10, "rate-limited: {}", got.len());
        Ok(())
    }

    /// Held-back reports are redacted when they are sent, not when made.
    #[test]
    fn held_back_progress_is_redacted_when_sent() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let redactor = Arc::new(crate::logpipe::Redactor::new(vec!["hunter22".to_owned()]));
        let log = StageLog::create(&dir.path().join("s.log"), redactor, 1 << 20, None)?;
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink_seen = seen.clone();
        let sink: ProgressFn = Arc::new(move |_, _, m: &str| {
            if let Ok(mut v) = sink_seen.lock() {
                v.push(m.to_owned());
            }
        });
        let progress = Progress::new(Some(sink), log);
        progress.report(1, None, "first");
        progress.report(2, None, "token hunter22");
        progress.flush();
        let got = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got, ["first", "token ***"]);
        Ok(())
    }
}
