//! Secret redaction: every granted secret value, wherever it appears in a
//! stage's output, a report field or a provenance statement, becomes `***`.
//!
//! [`Redactor`] redacts a whole buffer; [`StreamRedactor`] redacts a stream
//! written in arbitrary pieces with the same result. The stage log (in the
//! host crate) streams through it; the engine redacts reasons, report
//! fields and provenance with it.

use std::collections::BTreeSet;
use std::fmt;

/// What a secret is replaced with.
pub const REDACTED: &[u8] = b"***";

/// Lines of a multi-line secret shorter than this (in characters, after
/// trimming whitespace) are not redacted on their own: they would match too
/// much ordinary text (`-----`, `}`, blank lines).
const MIN_LINE_CHARS: usize = 4;

/// A stream that ends with this many bytes (or more) of what could be the
/// start of a secret has that tail shown as `***`: the program was most
/// likely cut off while printing the secret. Shorter tails are shown as is.
const HELD_TAIL_REDACT_MIN: usize = 4;

/// Replaces secret values with `***`.
///
/// Built from the values of the secrets granted to a stage. Every
/// occurrence of every value is redacted; where occurrences overlap, the
/// whole overlapping region becomes a single `***`, so no byte of any
/// secret survives. Empty values are ignored. A value that ends in a
/// newline is also redacted without it. For a multi-line value (a PEM key,
/// a JSON credential file), each line of at least 4 characters (after
/// trimming surrounding whitespace) is also redacted on its own, because a
/// program may print a single line of it.
///
/// Matching is plain byte comparison (no regex), longest pattern first.
/// Cost is roughly the output size times the number of patterns that start
/// with the same byte, plus up to `max_len` bytes re-examined per write,
/// which is fine for the handful of secrets (up to a few KiB each) a stage
/// is granted; very large secret values make every write slower.
///
/// `Debug` shows only counts, never a value.
#[derive(Clone)]
pub struct Redactor {
    /// Distinct patterns, longest first.
    patterns: Vec<Vec<u8>>,
    /// For each first byte, indices into `patterns` (longest first).
    by_first: Vec<Vec<usize>>,
    max_len: usize,
}

/// Where a streaming redaction stopped, relative to the next unscanned byte.
#[derive(Debug, Default, Clone, Copy)]
struct ScanState {
    /// This many upcoming bytes are already known to be part of a secret.
    covered: usize,
    /// The last byte emitted was inside a redaction (so `***` is out already).
    in_redaction: bool,
}

impl Redactor {
    /// Builds a redactor for the given secret values (see the type docs for
    /// which patterns are derived from each value).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut set: BTreeSet<Vec<u8>> = BTreeSet::new();
        for value in secrets {
            if value.is_empty() {
                continue;
            }
            let trimmed = value.trim_end_matches(['\r', '\n']);
            if !trimmed.is_empty() && trimmed.len() != value.len() {
                set.insert(trimmed.as_bytes().to_vec());
            }
            if trimmed.contains('\n') {
                for line in trimmed.split('\n') {
                    let line = line.trim();
                    if line.chars().count() >= MIN_LINE_CHARS {
                        set.insert(line.as_bytes().to_vec());
                    }
                }
            }
            set.insert(value.into_bytes());
        }
        let mut patterns: Vec<Vec<u8>> = set.into_iter().collect();
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); 256];
        for (i, p) in patterns.iter().enumerate() {
            if let Some(&b) = p.first() {
                by_first[usize::from(b)].push(i);
            }
        }
        let max_len = patterns.first().map_or(0, Vec::len);
        Redactor {
            patterns,
            by_first,
            max_len,
        }
    }

    /// Returns `input` with every secret replaced by `***`.
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        self.scan(input, input.len(), &mut ScanState::default(), &mut out);
        out
    }

    /// [`redact`](Self::redact) for text.
    pub fn redact_str(&self, s: &str) -> String {
        if self.is_empty() {
            return s.to_owned();
        }
        // Patterns are whole UTF-8 strings, so replacing them keeps the text
        // valid UTF-8; the lossy path is only a safety net.
        match String::from_utf8(self.redact(s.as_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Length in bytes of the longest pattern (0 if there are none). A
    /// streaming writer never holds back more than this minus one byte.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Length of the longest pattern that occurs at `buf[i..]`, or 0.
    fn match_len_at(&self, buf: &[u8], i: usize) -> usize {
        let (Some(&first), Some(rest)) = (buf.get(i), buf.get(i..)) else {
            return 0;
        };
        for &pi in &self.by_first[usize::from(first)] {
            let p = &self.patterns[pi];
            if rest.starts_with(p) {
                return p.len();
            }
        }
        0
    }

    /// Length of the longest suffix of `buf` that is a proper prefix of some
    /// pattern: the bytes that must wait for more input before anything can
    /// be said about them. 0 for ordinary output.
    fn holdback(&self, buf: &[u8]) -> usize {
        let max_k = buf.len().min(self.max_len.saturating_sub(1));
        for k in (1..=max_k).rev() {
            let suffix = &buf[buf.len() - k..];
            for &pi in &self.by_first[usize::from(suffix[0])] {
                let p = &self.patterns[pi];
                if p.len() <= k {
                    break; // longest first: no later pattern is longer
                }
                if p.starts_with(suffix) {
                    return k;
                }
            }
        }
        0
    }

    /// Redacts `buf[..cut]` into `out`, continuing from `state` and leaving
    /// `state` relative to `buf[cut..]`.
    ///
    /// Only matches that start before `cut` are looked for; they may extend
    /// past it (then `state.covered` carries the rest). The caller chooses
    /// `cut` so that no match starting before it could still grow with more
    /// input, which makes streaming output identical to redacting the whole
    /// stream at once.
    fn scan(&self, buf: &[u8], cut: usize, state: &mut ScanState, out: &mut Vec<u8>) {
        let cut = cut.min(buf.len());
        if self.is_empty() {
            out.extend_from_slice(&buf[..cut]);
            return;
        }
        let mut covered_until = state.covered;
        let mut in_redaction = state.in_redaction;
        for (i, &byte) in buf[..cut].iter().enumerate() {
            let m = self.match_len_at(buf, i);
            if m > 0 {
                covered_until = covered_until.max(i + m);
            }
            if i < covered_until {
                if !in_redaction {
                    out.extend_from_slice(REDACTED);
                    in_redaction = true;
                }
            } else {
                in_redaction = false;
                out.push(byte);
            }
        }
        state.covered = covered_until.saturating_sub(cut);
        state.in_redaction = in_redaction;
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns.len())
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

/// Streaming redaction of one stream: output is identical to redacting
/// the whole stream at once, whatever the write boundaries.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    /// Raw bytes not yet emitted (a possible start of a secret; fewer than
    /// `max_len` bytes).
    pending: Vec<u8>,
    scan: ScanState,
}

impl StreamRedactor {
    /// Bytes held back because they could be the start of a secret (always
    /// fewer than the longest secret).
    pub fn held_back(&self) -> usize {
        self.pending.len()
    }

    /// Admits `bytes`; appends to `out` everything that is now decided.
    pub fn push(&mut self, redactor: &Redactor, bytes: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(bytes);
        let cut = self.pending.len() - redactor.holdback(&self.pending);
        redactor.scan(&self.pending, cut, &mut self.scan, out);
        self.pending.drain(..cut);
    }

    /// Ends the stream: appends the rest to `out` and resets. A held tail
    /// of `HELD_TAIL_REDACT_MIN` (4)+ bytes that could be a cut-off secret
    /// becomes `***`.
    pub fn finish(&mut self, redactor: &Redactor, out: &mut Vec<u8>) {
        let pending = std::mem::take(&mut self.pending);
        let mut state = std::mem::take(&mut self.scan);
        let cut = pending.len() - redactor.holdback(&pending);
        redactor.scan(&pending, cut, &mut state, out);
        let tail = &pending[cut..];
        if tail.len() >= HELD_TAIL_REDACT_MIN {
            if !(state.in_redaction && state.covered > 0) {
                out.extend_from_slice(REDACTED);
            }
        } else {
            redactor.scan(tail, tail.len(), &mut state, out);
        }
    }
}
