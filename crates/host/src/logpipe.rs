//! A stage's log: redacting, truncating, streaming.
//!
//! A stage's stdout and stderr, and the runner's own notes about the stage,
//! go into one file, `runs/<id>/logs/<stage>.log`, as they are produced, and
//! optionally line by line to a console callback. On the way:
//!
//! - every secret value granted to the stage is replaced by `***`
//!   ([`Redactor`]), even when the program writes it in pieces;
//! - the stage's output is capped ([`StageLog::create`]'s `cap_bytes`), so
//!   a chatty or hostile plugin cannot fill the disk; one marker line says
//!   so and the rest is counted but dropped;
//! - errors writing the log never stop the stage or the runner: the first
//!   one is remembered and reported by [`StageLog::finish`].
//!
//! Nothing here panics on any input.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

pub use sluice_engine::redact::{Redactor, StreamRedactor, REDACTED};

/// A partial line longer than this is passed to the live callback without
/// waiting for its newline, so output without newlines cannot grow memory.
const LIVE_LINE_MAX: usize = 64 * 1024;

/// Prefix of every line the runner itself writes into a stage's log.
const RUNNER_PREFIX: &str = "[sluice] ";

/// Runner notes may add this much to the log beyond the output cap. Notes
/// often repeat what a stage asked for (an `exec` command line, a refused
/// program name), so without a bound a stage could grow its log without
/// limit through them.
pub const NOTES_RESERVE: u64 = 16 * 1024;

/// Longest single runner note; longer ones are cut with `…`.
const MAX_NOTE_BYTES: usize = 2 * 1024;

/// Which output stream of the stage bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The stage's standard output.
    Stdout,
    /// The stage's standard error.
    Stderr,
    /// Standard output of a program the stage runs with output mode `log`
    /// (WIT 0.2 `exec`).
    ProgramStdout,
    /// Standard error of such a program.
    ProgramStderr,
}

impl LogStream {
    fn index(self) -> usize {
        match self {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
            LogStream::ProgramStdout => 2,
            LogStream::ProgramStderr => 3,
        }
    }
}

/// What happened to a stage's output, returned by [`StageLog::finish`].
pub use sluice_engine::executor::LogStats;

/// Console callback: receives each complete, redacted line of the log,
/// without its line ending, invalid UTF-8 shown as U+FFFD.
pub type LiveFn = Arc<dyn Fn(LiveLine<'_>) + Send + Sync>;

/// One line of the log, as [`LiveFn`] gets it.
#[derive(Debug, Clone, Copy)]
pub struct LiveLine<'a> {
    /// The line (for a log record: its message).
    pub text: &'a str,
    /// The level of a log record (WIT 0.2 `log`); `None` for output and
    /// runner notes.
    pub level: Option<LogLevel>,
    /// The record's fields, redacted.
    pub fields: &'a [(String, String)],
}

impl<'a> LiveLine<'a> {
    /// A plain line.
    pub fn plain(text: &'a str) -> LiveLine<'a> {
        LiveLine {
            text,
            level: None,
            fields: &[],
        }
    }
}

pub use sluice_engine::report::LogLevel;

/// Per-stream state.
#[derive(Default)]
struct StreamState {
    redaction: StreamRedactor,
    /// Redacted bytes emitted but not yet passed to `live` (no newline yet).
    live_line: Vec<u8>,
    /// The last panic message the stream carried.
    panic: PanicWatch,
}

/// Longest line kept while looking for a panic message; the rest of a
/// longer line is not looked at.
const PANIC_LINE_MAX: usize = 4 * 1024;

/// Remembers the last panic message a stream carried, as it streams: a
/// Rust guest prints `thread '…' panicked at <file>:<line>:<col>:` and the
/// message on the next line, then traps. Sees the same redacted bytes as
/// the log file (so nothing past the output cap).
#[derive(Default)]
struct PanicWatch {
    /// The line being read (at most [`PANIC_LINE_MAX`] bytes of it).
    line: Vec<u8>,
    /// The last `panicked at` line, with the line after it once seen.
    found: Option<String>,
    /// `found` waits for the line after it.
    want_next: bool,
    /// When `found` was seen (the log's running count of panics), to tell
    /// which stream's is the latest.
    seq: u64,
}

impl PanicWatch {
    fn feed(&mut self, bytes: &[u8], seq: &mut u64) {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (content, complete) = match piece.strip_suffix(b"\n") {
                Some(content) => (content, true),
                None => (piece, false),
            };
            let room = PANIC_LINE_MAX.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(&content[..content.len().min(room)]);
            if complete {
                let line = std::mem::take(&mut self.line);
                self.line_done(&String::from_utf8_lossy(&line), seq);
            }
        }
    }

    fn line_done(&mut self, line: &str, seq: &mut u64) {
        if line.contains("panicked at") {
            self.found = Some(line.trim().to_string());
            self.want_next = true;
            *seq += 1;
            self.seq = *seq;
        } else if self.want_next {
            self.want_next = false;
            if let Some(found) = &mut self.found {
                Self::add_next(found, line);
            }
        }
    }

    /// `found` followed by the message line (a runner note or rustc's
    /// `note:` line is not one).
    fn add_next(found: &mut String, next: &str) {
        if !next.starts_with("[sluice]") && !next.starts_with("note:") {
            found.push(' ');
            found.push_str(next.trim());
        }
    }

    /// The message so far, with a line still being written.
    fn message(&self) -> Option<String> {
        let partial = String::from_utf8_lossy(&self.line);
        if partial.contains("panicked at") {
            return Some(partial.trim().to_string());
        }
        let mut found = self.found.clone()?;
        if self.want_next && !self.line.is_empty() {
            Self::add_next(&mut found, &partial);
        }
        Some(found)
    }
}

struct Inner {
    file: File,
    path: PathBuf,
    redactor: Arc<Redactor>,
    cap: u64,
    live: Option<LiveFn>,
    streams: [StreamState; 4],
    /// Raw stage bytes admitted under the cap.
    accepted: u64,
    bytes_seen: u64,
    bytes_written: u64,
    truncated: bool,
    finished: bool,
    /// The file ends with a newline (or is empty).
    at_line_start: bool,
    /// Bytes of runner notes written (see [`NOTES_RESERVE`]).
    notes_bytes: u64,
    /// Notes were dropped for lack of room (the marker is out).
    notes_dropped: bool,
    io_error: Option<String>,
    /// Panic lines seen so far, over both streams (see [`PanicWatch`]).
    panics: u64,
}

/// The live log of one stage.
///
/// Cheap to clone (all clones share one log) and usable from any thread.
/// Writes go to the file synchronously, in the order they are made, so the
/// file is always up to date for `tail -f`; stdout and stderr share the file
/// (like `2>&1`).
///
/// The `live` callback is called with the log's lock held, which keeps lines
/// in order; it must be quick and must not call back into this log.
#[derive(Clone)]
pub struct StageLog {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for StageLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        f.debug_struct("StageLog")
            .field("path", &g.path)
            .field("cap", &g.cap)
            .field("bytes_seen", &g.bytes_seen)
            .field("truncated", &g.truncated)
            .finish_non_exhaustive()
    }
}

impl StageLog {
    /// Opens the log file at `path` for appending (creating it and its
    /// parent directories), so that every attempt of a stage, including
    /// retries and resumed runs, stays in one log.
    ///
    /// - `redactor`: the stage's secret values; applied to everything
    ///   written, notes included.
    /// - `cap_bytes`: how many bytes of stage output (stdout and stderr
    ///   together, counted before redaction) are kept. Past it, one marker
    ///   line is written and the rest is dropped. Runner notes count too,
    ///   with [`NOTES_RESERVE`] bytes of room beyond the cap so that the
    ///   runner can still say why a chatty stage failed.
    /// - `live`: optional console callback, see [`LiveFn`].
    pub fn create(
        path: &Path,
        redactor: Arc<Redactor>,
        cap_bytes: u64,
        live: Option<LiveFn>,
    ) -> io::Result<StageLog> {
        let named = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("could not {what} {}: {e}", path.display()),
            )
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| named(e, "create the directory for"))?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| named(e, "open log file"))?;
        // Earlier writers of the file (another attempt, or the runner's
        // notes after one) may have left a partial line.
        let at_line_start = ends_with_newline(path);
        Ok(StageLog {
            inner: Arc::new(Mutex::new(Inner {
                file,
                path: path.to_path_buf(),
                redactor,
                cap: cap_bytes,
                live,
                streams: Default::default(),
                accepted: 0,
                bytes_seen: 0,
                bytes_written: 0,
                truncated: false,
                finished: false,
                at_line_start,
                notes_bytes: 0,
                notes_dropped: false,
                io_error: None,
                panics: 0,
            })),
        })
    }

    /// A log that keeps nothing (the null device): for sandboxes whose output
    /// nobody reads, such as `describe`.
    pub fn discarding() -> io::Result<StageLog> {
        let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
        StageLog::create(
            Path::new(null),
            Arc::new(Redactor::new(Vec::<String>::new())),
            0,
            None,
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a `live` callback poisons the lock; the log state is
        // still consistent, so keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends stage output from `stream`.
    ///
    /// Everything that cannot be the beginning of a secret split across
    /// writes is redacted and written at once. Only the longest trailing
    /// piece that is a proper prefix of some secret (at most `max_len - 1`
    /// bytes; nothing for ordinary output) is held until the next write on
    /// the same stream or [`finish`](Self::finish). The longest, not the
    /// shortest: holding back less could emit the start of a secret whose
    /// rest arrives in the next write. The result is byte for byte what
    /// redacting the whole stream at once would give.
    /// Bytes past the cap are counted and dropped. Writes after `finish`
    /// are counted and dropped.
    pub fn write(&self, stream: LogStream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut g = self.lock();
        g.bytes_seen = g.bytes_seen.saturating_add(bytes.len() as u64);
        if g.finished || g.truncated {
            return;
        }
        let room = g.cap.saturating_sub(g.accepted);
        let take = usize::try_from(room).map_or(bytes.len(), |r| r.min(bytes.len()));
        g.accepted = g.accepted.saturating_add(take as u64);
        if take > 0 {
            g.process(stream.index(), &bytes[..take]);
        }
        if take < bytes.len() {
            g.truncate();
        }
    }

    /// Writes a runner line, `[sluice] <msg>`, redacted, to the file and to
    /// `live`. Each line of a multi-line message gets the prefix. If a
    /// stream had written a partial line, the note starts on a new line.
    /// A note is cut at 2 KiB; notes stop (with one marker line) once the
    /// stage's output and notes fill the cap plus [`NOTES_RESERVE`]; notes
    /// after `finish` are dropped.
    pub fn note(&self, msg: &str) {
        self.note_inner(msg, false);
    }

    /// [`note`](Self::note) for the runner's last word on an attempt (why it
    /// failed): written even when other notes no longer fit.
    pub fn final_note(&self, msg: &str) {
        self.note_inner(msg, true);
    }

    /// Writes a log record (WIT 0.2 `log`): one line `<level> <message>
    /// key=value …` in the file, and the message with its level and fields
    /// to `live`. Newlines in the message are shown as `\n`. Redacted, and
    /// counted against the output cap like the stage's own output (past
    /// it, the record is counted and dropped).
    pub fn record(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        let mut g = self.lock();
        let size = message.len()
            + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        g.bytes_seen = g.bytes_seen.saturating_add(size as u64);
        if g.finished || g.truncated {
            return;
        }
        if g.accepted.saturating_add(size as u64) > g.cap {
            g.truncate();
            return;
        }
        g.accepted = g.accepted.saturating_add(size as u64);
        let one_line = |s: &str| s.replace('\r', "\\r").replace('\n', "\\n");
        let message = one_line(&g.redactor.redact_str(message));
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| {
                (
                    one_line(&g.redactor.redact_str(k)),
                    one_line(&g.redactor.redact_str(v)),
                )
            })
            .collect();
        let mut line = format!("{:<5} {message}", level.as_str());
        for (k, v) in &fields {
            if v.is_empty() || v.contains([' ', '"', '=']) {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        let mut buf = Vec::with_capacity(line.len() + 2);
        if !g.at_line_start {
            buf.push(b'\n');
        }
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        g.write_file(&buf);
        if let Some(live) = &g.live {
            live(LiveLine {
                text: &message,
                level: Some(level),
                fields: &fields,
            });
        }
    }

    /// `text` with every secret value of the run replaced.
    pub fn redact(&self, text: &str) -> String {
        self.lock().redactor.redact_str(text)
    }

    fn note_inner(&self, msg: &str, always: bool) {
        let mut g = self.lock();
        if g.finished {
            return;
        }
        let redacted = g.redactor.redact_str(msg);
        let mut body = redacted.strip_suffix('\n').unwrap_or(&redacted);
        let mut cut = false;
        if body.len() > MAX_NOTE_BYTES {
            let mut end = MAX_NOTE_BYTES;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body = &body[..end];
            cut = true;
        }
        let size = (body.len() + RUNNER_PREFIX.len() + 1) as u64;
        let budget = g.cap.saturating_add(NOTES_RESERVE);
        if !always
            && g.accepted
                .saturating_add(g.notes_bytes)
                .saturating_add(size)
                > budget
        {
            if !g.notes_dropped {
                g.notes_dropped = true;
                g.runner_line(
                    "further runner notes about this stage are not logged (the log is full)",
                );
            }
            return;
        }
        g.notes_bytes = g.notes_bytes.saturating_add(size);
        let lines: Vec<String> = body.split('\n').map(str::to_string).collect();
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            if cut && i == last {
                g.runner_line(&format!("{line}…"));
            } else {
                g.runner_line(line);
            }
        }
    }

    /// Ends the log: flushes what each stream held back (redacted; a held
    /// tail of 4+ bytes that could be a cut-off secret becomes `***`),
    /// passes pending partial lines to `live`, and flushes the file.
    ///
    /// Safe to call more than once; later calls only return the stats.
    pub fn finish(&self) -> LogStats {
        let mut g = self.lock();
        if !g.finished {
            if !g.truncated {
                for idx in 0..g.streams.len() {
                    g.end_stream(idx);
                }
            }
            g.finished = true;
            // No fsync: a log survives a killed runner through the page
            // cache; only a power cut can lose its tail, and syncing every
            // stage's log cost more than the rest of a no-op stage together.
            if g.io_error.is_none() {
                if let Err(e) = g.file.flush() {
                    g.io_error = Some(format!(
                        "could not write {}: {}",
                        g.path.display(),
                        sluice_files::fsutil::io_reason(&e)
                    ));
                }
            }
        }
        LogStats {
            bytes_seen: g.bytes_seen,
            bytes_written: g.bytes_written,
            truncated: g.truncated,
            io_error: g.io_error.clone(),
        }
    }

    /// An [`AsyncWrite`](tokio::io::AsyncWrite) handle that feeds `stream` of this log, for
    /// `wasmtime_wasi::cli::AsyncStdoutStream::new(budget, writer)`. It is
    /// always ready and accepts every byte (dropping past the cap), so a
    /// stage can never block on its own output.
    pub fn writer(&self, stream: LogStream) -> LogWriter {
        LogWriter {
            log: self.clone(),
            stream,
        }
    }

    /// The last panic message the stage printed (`thread '…' panicked at
    /// …:` and the line after it), redacted, on either stream; watched as
    /// the output streams, never read back from the file.
    pub fn panic_message(&self) -> Option<String> {
        let g = self.lock();
        g.streams
            .iter()
            .filter_map(|s| s.panic.message().map(|m| (s.panic.seq, m)))
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, m)| m)
    }
}

/// Whether the file at `path` is empty or ends with a newline.
fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return true;
    };
    if file.seek(SeekFrom::End(-1)).is_err() {
        // Empty (or not seekable, like the null device).
        return true;
    }
    let mut last = [0u8; 1];
    !matches!(file.read(&mut last), Ok(1) if last[0] != b'\n')
}

impl Inner {
    /// Admits raw bytes of a stream, emitting all that is safe to emit.
    fn process(&mut self, idx: usize, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + REDACTED.len());
        self.streams[idx]
            .redaction
            .push(&self.redactor, bytes, &mut out);
        self.emit(idx, &out);
    }

    /// Flushes everything a stream holds; the stream is over.
    fn end_stream(&mut self, idx: usize) {
        let mut out = Vec::new();
        self.streams[idx].redaction.finish(&self.redactor, &mut out);
        self.emit(idx, &out);
        let line = std::mem::take(&mut self.streams[idx].live_line);
        if !line.is_empty() {
            self.call_live(&line);
        }
    }

    /// Stops admitting output: ends both streams and writes the marker once.
    fn truncate(&mut self) {
        if self.truncated {
            return;
        }
        for idx in 0..self.streams.len() {
            self.end_stream(idx);
        }
        self.truncated = true;
        let marker = format!(
            "output truncated: the stage wrote more than {} to stdout/stderr; the rest was dropped",
            bytesize::ByteSize(self.cap)
        );
        self.runner_line(&marker);
    }

    /// Writes redacted stage output to the file and feeds `live`.
    fn emit(&mut self, idx: usize, out: &[u8]) {
        if out.is_empty() {
            return;
        }
        self.write_file(out);
        let mut panics = self.panics;
        self.streams[idx].panic.feed(out, &mut panics);
        self.panics = panics;
        if self.live.is_none() {
            return;
        }
        let mut line_buf = std::mem::take(&mut self.streams[idx].live_line);
        line_buf.extend_from_slice(out);
        let mut start = 0;
        while let Some(pos) = line_buf[start..].iter().position(|&b| b == b'\n') {
            self.call_live(&line_buf[start..start + pos]);
            start += pos + 1;
        }
        line_buf.drain(..start);
        if line_buf.len() > LIVE_LINE_MAX {
            self.call_live(&line_buf);
            line_buf.clear();
        }
        self.streams[idx].live_line = line_buf;
    }

    /// Writes `[sluice] <line>` (already redacted) on a line of its own.
    fn runner_line(&mut self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + RUNNER_PREFIX.len() + 2);
        if !self.at_line_start {
            buf.push(b'\n');
        }
        buf.extend_from_slice(RUNNER_PREFIX.as_bytes());
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.write_file(&buf);
        if let Some(live) = &self.live {
            live(LiveLine::plain(&format!("{RUNNER_PREFIX}{line}")));
        }
    }

    /// Passes one line (without `\n`; a trailing `\r` is dropped) to `live`.
    fn call_live(&self, line: &[u8]) {
        if let Some(live) = &self.live {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            live(LiveLine::plain(&String::from_utf8_lossy(line)));
        }
    }

    /// Appends to the file, remembering the first error instead of failing.
    fn write_file(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        } else {
            return;
        }
        if self.io_error.is_some() {
            return;
        }
        match self.file.write_all(bytes) {
            Ok(()) => self.bytes_written = self.bytes_written.saturating_add(bytes.len() as u64),
            Err(e) => {
                self.io_error = Some(format!(
                    "could not write {}: {}",
                    self.path.display(),
                    sluice_files::fsutil::io_reason(&e)
                ));
            }
        }
    }
}

/// Writer for one stream of a [`StageLog`]; see [`StageLog::writer`].
///
/// Every write succeeds at once with the full length (output past the cap
/// is dropped by the log, not refused), flush and shutdown are no-ops.
#[derive(Debug, Clone)]
pub struct LogWriter {
    log: StageLog,
    stream: LogStream,
}

impl tokio::io::AsyncWrite for LogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    type TestResult = Result<(), Box<dyn Error>>;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        log: StageLog,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Fixture {
        fn content(&self) -> Vec<u8> {
            std::fs::read(&self.path).expect("read log")
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.content()).into_owned()
        }

        fn lines(&self) -> Vec<String> {
            self.lines.lock().expect("lines").clone()
        }
    }

    fn fixture(secrets: &[&str], cap: u64) -> Result<Fixture, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("runs/r1/logs/build.log");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let live: LiveFn = Arc::new(move |l: LiveLine<'_>| {
            let mut line = match l.level {
                Some(level) => format!("{}: {}", level.as_str(), l.text),
                None => l.text.to_owned(),
            };
            for (k, v) in l.fields {
                line.push_str(&format!(" {k}={v}"));
            }
            sink.lock().expect("lines").push(line);
        });
        let redactor = Arc::new(Redactor::new(secrets.iter().map(|s| (*s).to_owned())));
        let log = StageLog::create(&path, redactor, cap, Some(live))?;
        Ok(Fixture {
            _dir: dir,
            path,
            log,
            lines,
        })
    }

    #[test]
    fn the_last_panic_message_is_remembered_as_it_streams() -> TestResult {
        let f = fixture(&["hunter22"], u64::MAX)?;
        assert_eq!(f.log.panic_message(), None);
        f.log.write(LogStream::Stdout, b"working\n");
        f.log.write(
            LogStream::Stderr,
            b"thread 'main' panicked at src/a.rs:1:1:\nfirst\n",
        );
        f.log.note("a runner note between the streams");
        // Written in pieces, with a secret in the message.
        f.log.write(LogStream::Stderr, b"thread 'main' pani");
        f.log
            .write(LogStream::Stderr, b"cked at src/lib.rs:9:5:\nbad token hun");
        assert_eq!(
            f.log.panic_message().as_deref(),
            Some("thread 'main' panicked at src/lib.rs:9:5: bad token"),
            "the line being written counts (without what may start a secret)"
        );
        f.log.write(
            LogStream::Stderr,
            b"ter22 refused\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(
            f.log.panic_message().as_deref(),
            Some("thread 'main' panicked at src/lib.rs:9:5: bad token *** refused")
        );
        f.log.finish();
        assert!(f.text().contains("bad token *** refused"));

        // rustc's `note:` line is not the message.
        let f = fixture(&[], u64::MAX)?;
        f.log.write(
            LogStream::Stderr,
            b"thread 'main' panicked at x.rs:1:1\nnote: run with\n",
        );
        assert_eq!(
            f.log.panic_message().as_deref(),
            Some("thread 'main' panicked at x.rs:1:1")
        );
        Ok(())
    }

    #[test]
    fn a_second_writer_starts_on_a_new_line() -> TestResult {
        let f = fixture(&[], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"no newline at the end");
        f.log.finish();
        let again = StageLog::create(&f.path, Arc::new(Redactor::new(Vec::new())), 0, None)?;
        again.final_note("stage failed: later");
        again.finish();
        assert_eq!(
            f.text(),
            "no newline at the end\n[sluice] stage failed: later\n"
        );
        Ok(())
    }

    /// Feeds `chunks` to a fresh log and returns the file after `finish`.
    fn streamed(secrets: &[&str], chunks: &[&[u8]]) -> Result<Vec<u8>, Box<dyn Error>> {
        let f = fixture(secrets, u64::MAX)?;
        for c in chunks {
            f.log.write(LogStream::Stdout, c);
        }
        let stats = f.log.finish();
        assert_eq!(stats.io_error, None);
        Ok(f.content())
    }

    #[test]
    fn redactor_basics() {
        let r = Redactor::new(["".to_owned(), "hunter22".to_owned(), "tok3n\n".to_owned()]);
        assert!(!r.is_empty());
        assert_eq!(r.max_len(), 8);
        assert_eq!(r.redact_str("a hunter22 b tok3n c"), "a *** b *** c");
        assert!(!format!("{r:?}").contains("hunter"));
        let empty = Redactor::new(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.max_len(), 0);
        assert_eq!(empty.redact(b"plain"), b"plain");
    }

    #[test]
    fn secret_in_one_write() -> TestResult {
        let out = streamed(&["hunter22"], &[b"password=hunter22; again hunter22\n"])?;
        assert_eq!(out, b"password=***; again ***\n");
        Ok(())
    }

    #[test]
    fn secret_split_across_two_writes() -> TestResult {
        let f = fixture(&["hunter22"], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"pw: hun");
        // Only the possible start of the secret is held back.
        assert_eq!(f.content(), b"pw: ");
        f.log.write(LogStream::Stdout, b"ter22 ok\n");
        f.log.finish();
        assert_eq!(f.content(), b"pw: *** ok\n");
        Ok(())
    }

    #[test]
    fn secret_split_across_three_writes() -> TestResult {
        let out = streamed(&["hunter22"], &[b"x h", b"unte", b"r22 y\n"])?;
        assert_eq!(out, b"x *** y\n");
        Ok(())
    }

    const SPLIT_SECRETS: [&str; 4] = ["abcdef", "defghi", "aab", PEM];
    const SPLIT_INPUTS: [&[u8]; 4] = [
        b"xxabcdefghiyy aaab abcdefghi defg abcde\n",
        b"aaaaaaabaab abcdefabcdef\n",
        b"key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\ndone\n",
        b"line MIIEvQIBADANBgkq only\n",
    ];

    /// Streams `chunks` through a [`StreamRedactor`] (no file involved).
    fn stream_redact(redactor: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = StreamRedactor::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(redactor, c, &mut out);
            assert!(s.held_back() < redactor.max_len().max(1));
        }
        s.finish(redactor, &mut out);
        out
    }

    #[test]
    fn every_split_matches_whole_redaction() {
        let redactor = Redactor::new(SPLIT_SECRETS.iter().map(|s| (*s).to_owned()));
        for input in SPLIT_INPUTS {
            let whole = redactor.redact(input);
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let out = stream_redact(&redactor, &[&input[..i], &input[i..j], &input[j..]]);
                    assert_eq!(out, whole, "split at {i},{j}");
                }
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(stream_redact(&redactor, &bytes), whole);
        }
    }

    #[test]
    fn stage_log_splits_match_whole_redaction() -> TestResult {
        let redactor = Redactor::new(SPLIT_SECRETS.iter().map(|s| (*s).to_owned()));
        for input in SPLIT_INPUTS {
            let whole = redactor.redact(input);
            for i in (0..=input.len()).step_by(7) {
                let out = streamed(&SPLIT_SECRETS, &[&input[..i], &input[i..]])?;
                assert_eq!(out, whole, "split at {i}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(streamed(&SPLIT_SECRETS, &bytes)?, whole);
        }
        Ok(())
    }

    #[test]
    fn multi_line_secret_and_its_lines() -> TestResult {
        let out = streamed(&[PEM], &[b"key=", PEM.as_bytes(), b"end\n"])?;
        assert_eq!(out, b"key=***end\n");
        // One line of the key on its own, and lines of it in other text.
        let out = streamed(
            &[PEM],
            &[
                b"leak: hkiG9w0BAQEFAASC\n",
                b"  -----END PRIVATE KEY-----  \n",
            ],
        )?;
        assert_eq!(out, b"leak: ***\n  ***  \n");
        // Short lines (< 4 chars) of a multi-line secret are not patterns.
        let out = streamed(&["ab\nlongline"], &[b"ab cd longline\n"])?;
        assert_eq!(out, b"ab cd ***\n");
        Ok(())
    }

    #[test]
    fn overlapping_secrets_leave_nothing_behind() -> TestResult {
        let out = streamed(&["abcdef", "defghi"], &[b"<abcdefghi>\n"])?;
        assert_eq!(out, b"<***>\n");
        let out = streamed(&["abcdef", "defghi"], &[b"<abcd", b"efgh", b"i>\n"])?;
        assert_eq!(out, b"<***>\n");
        // A secret inside a longer one.
        let out = streamed(&["cde", "abcdefg"], &[b"abcdefg cde\n"])?;
        assert_eq!(out, b"*** ***\n");
        Ok(())
    }

    #[test]
    fn ordinary_output_is_not_held_back() -> TestResult {
        let f = fixture(&["hunter22"], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"compiling sluice v0.1.0");
        assert_eq!(f.content(), b"compiling sluice v0.1.0");
        f.log.write(LogStream::Stderr, b"warning: x");
        assert_eq!(f.content(), b"compiling sluice v0.1.0warning: x");
        let f = fixture(&[], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"no secrets at all, hun");
        assert_eq!(f.content(), b"no secrets at all, hun");
        Ok(())
    }

    #[test]
    fn stream_ending_mid_secret() -> TestResult {
        // 4+ bytes of a possible secret at the very end: shown as ***.
        assert_eq!(streamed(&["hunter22"], &[b"pw: hunt"])?, b"pw: ***");
        // A short tail is shown as is.
        assert_eq!(streamed(&["hunter22"], &[b"ls -h"])?, b"ls -h");
        Ok(())
    }

    #[test]
    fn cap_truncates_with_one_marker() -> TestResult {
        let f = fixture(&["hunter22"], 10)?;
        f.log.write(LogStream::Stdout, b"12345678");
        f.log.write(LogStream::Stderr, b"abcdefgh");
        f.log.write(LogStream::Stdout, b"more");
        f.log.write(LogStream::Stderr, b"and more\n");
        f.log.note("stage ended");
        let stats = f.log.finish();
        let text = f.text();
        assert_eq!(
            text,
            "12345678ab\n[sluice] output truncated: the stage wrote more than 10 B to \
             stdout/stderr; the rest was dropped\n[sluice] stage ended\n"
        );
        assert_eq!(text.matches("output truncated").count(), 1);
        assert!(stats.truncated);
        assert_eq!(stats.bytes_seen, 8 + 8 + 4 + 9);
        assert_eq!(stats.bytes_written, text.len() as u64);
        assert_eq!(stats.io_error, None);
        Ok(())
    }

    #[test]
    fn exactly_at_cap_is_not_truncated() -> TestResult {
        let f = fixture(&[], 6)?;
        f.log.write(LogStream::Stdout, b"12345\n");
        let stats = f.log.finish();
        assert!(!stats.truncated);
        assert_eq!(f.content(), b"12345\n");
        Ok(())
    }

    #[test]
    fn secret_cut_by_the_cap_is_not_leaked() -> TestResult {
        let f = fixture(&["hunter22"], 9)?;
        f.log.write(LogStream::Stdout, b"pw: hunter22\n");
        f.log.finish();
        assert!(
            f.text().starts_with("pw: ***\n[sluice] output truncated"),
            "{}",
            f.text()
        );
        Ok(())
    }

    #[test]
    fn notes_are_bounded_but_the_final_note_is_kept() -> TestResult {
        let f = fixture(&[], 1024)?;
        for i in 0..10_000 {
            f.log
                .note(&format!("denied: exec of `{}` #{i}", "x".repeat(1000)));
        }
        f.log.final_note("stage failed: because");
        f.log.finish();
        let text = f.text();
        assert!(
            (text.len() as u64) < 1024 + NOTES_RESERVE + 4096,
            "{} bytes",
            text.len()
        );
        assert_eq!(text.matches("further runner notes").count(), 1);
        assert!(
            text.ends_with("[sluice] stage failed: because\n"),
            "{}",
            &text[text.len() - 200..]
        );
        let f = fixture(&[], 1024)?;
        f.log.note(&"y".repeat(10_000));
        f.log.finish();
        assert!(f.text().len() < 2200 && f.text().ends_with("…\n"));
        Ok(())
    }

    #[test]
    fn notes_are_redacted_and_not_capped() -> TestResult {
        let f = fixture(&["hunter22"], 4)?;
        f.log.note("using token hunter22");
        f.log.note("two\nlines\n");
        f.log.write(LogStream::Stdout, b"abc");
        f.log.note("after partial");
        let stats = f.log.finish();
        assert!(!stats.truncated);
        assert_eq!(
            f.text(),
            "[sluice] using token ***\n[sluice] two\n[sluice] lines\nabc\n[sluice] after partial\n"
        );
        Ok(())
    }

    #[test]
    fn live_gets_complete_redacted_lines() -> TestResult {
        let f = fixture(&["hunter22"], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"one hun");
        f.log.write(LogStream::Stderr, b"err part");
        assert!(f.lines().is_empty());
        f.log.write(LogStream::Stdout, b"ter22 two\r\nthree\npart");
        f.log.note("note hunter22");
        f.log.write(LogStream::Stderr, b"ial\n");
        f.log.write(LogStream::Stdout, b"ial4");
        f.log.finish();
        assert_eq!(
            f.lines(),
            [
                "one *** two",
                "three",
                "[sluice] note ***",
                "err partial",
                "partial4"
            ]
        );
        Ok(())
    }

    #[test]
    fn non_utf8_bytes() -> TestResult {
        let f = fixture(&["hunter22"], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"\xff\xfehunter22\xc3\n");
        f.log.write(LogStream::Stdout, &[0x80; 3]);
        f.log.finish();
        assert_eq!(f.content(), b"\xff\xfe***\xc3\n\x80\x80\x80");
        assert_eq!(
            f.lines(),
            ["\u{fffd}\u{fffd}***\u{fffd}", "\u{fffd}\u{fffd}\u{fffd}"]
        );
        Ok(())
    }

    #[test]
    fn finish_is_idempotent_and_later_writes_are_dropped() -> TestResult {
        let f = fixture(&[], u64::MAX)?;
        f.log.write(LogStream::Stdout, b"x\n");
        let first = f.log.finish();
        f.log.write(LogStream::Stdout, b"late\n");
        f.log.note("late");
        let second = f.log.finish();
        assert_eq!(f.content(), b"x\n");
        assert_eq!(first.bytes_written, 2);
        assert_eq!(second.bytes_seen, 7);
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn io_errors_are_reported_not_raised() -> TestResult {
        let log = StageLog::create(
            Path::new("/dev/full"),
            Arc::new(Redactor::new(Vec::new())),
            u64::MAX,
            None,
        )?;
        log.write(LogStream::Stdout, b"hello\n");
        log.note("n");
        let stats = log.finish();
        assert_eq!(stats.bytes_written, 0);
        assert!(
            stats
                .io_error
                .as_deref()
                .is_some_and(|e| e.contains("/dev/full")),
            "{stats:?}"
        );
        Ok(())
    }

    #[test]
    fn types_are_shareable() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        fn assert_writer<T: tokio::io::AsyncWrite + Send + Sync + Unpin + 'static>() {}
        assert_traits::<StageLog>();
        assert_traits::<LogWriter>();
        assert_writer::<LogWriter>();
    }

    #[tokio::test]
    async fn async_writer_feeds_the_log() -> TestResult {
        use tokio::io::AsyncWriteExt;
        let f = fixture(&["hunter22"], u64::MAX)?;
        let mut out = f.log.writer(LogStream::Stdout);
        let mut err = f.log.writer(LogStream::Stderr);
        out.write_all(b"out hunt").await?;
        err.write_all(b"err\n").await?;
        out.write_all(b"er22\n").await?;
        out.flush().await?;
        out.shutdown().await?;
        f.log.finish();
        assert_eq!(f.text(), "out err\n***\n");
        assert_eq!(f.lines(), ["err", "out ***"]);
        Ok(())
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn records_are_redacted_one_line_counted_and_interleave_on_line_boundaries() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.log");
        let lines = Arc::new(Mutex::new(Vec::<(
            Option<LogLevel>,
            String,
            Vec<(String, String)>,
        )>::new()));
        let sink = lines.clone();
        let live: LiveFn = Arc::new(move |l: LiveLine<'_>| {
            if let Ok(mut v) = sink.lock() {
                v.push((l.level, l.text.to_owned(), l.fields.to_vec()));
            }
        });
        let redactor = Arc::new(Redactor::new(vec!["hunter22".to_owned()]));
        let log = StageLog::create(&path, redactor, 1 << 20, Some(live))?;
        log.write(LogStream::Stdout, b"partial");
        log.record(
            LogLevel::Warn,
            "token hunter22\nsecond line",
            &[("file".into(), "a b.py".into()), ("n".into(), "3".into())],
        );
        log.write(LogStream::ProgramStderr, b"from a program\n");
        log.write(LogStream::Stdout, b" rest\n");
        let stats = log.finish();
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(
            text,
            "partial\nwarn  token ***\\nsecond line file=\"a b.py\" n=3\nfrom a program\n rest\n"
        );
        let got = lines.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got[0].0, Some(LogLevel::Warn));
        assert_eq!(got[0].1, "token ***\\nsecond line");
        assert_eq!(got[0].2[0], ("file".to_owned(), "a b.py".to_owned()));
        assert_eq!(got[1], (None, "from a program".to_owned(), vec![]));
        assert!(stats.bytes_seen > 0);
        Ok(())
    }

    #[test]
    fn records_past_the_cap_are_dropped_with_the_marker() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.log");
        let log = StageLog::create(
            &path,
            Arc::new(Redactor::new(Vec::<String>::new())),
            20,
            None,
        )?;
        log.record(LogLevel::Info, "short", &[]);
        log.record(LogLevel::Info, "this one is far too long for the cap", &[]);
        let stats = log.finish();
        assert!(stats.truncated);
        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("info  short\n"), "{text}");
        assert!(text.contains("output truncated"), "{text}");
        assert!(!text.contains("far too long"), "{text}");
        Ok(())
    }
}
