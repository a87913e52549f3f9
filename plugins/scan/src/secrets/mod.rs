//! Secret detection over text files.
//!
//! [`SecretScanner::scan`] runs the [rule set](rules) over one file's text
//! and returns [`SecretFinding`]s that carry only a **redacted** preview of
//! the secret: the value itself is dropped as soon as the allowlist has
//! been checked, so no report, log line or artifact can contain it.

pub mod entropy;
pub mod rules;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use serde::Serialize;

use crate::allow::Allowlist;
use rules::{Check, RuleSpec, RULES};

/// The marker that suppresses every secret finding on its line.
pub const IGNORE_MARKER: &str = "sluice:ignore-secret";

/// One secret found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretFinding {
    /// Rule id, e.g. `github-token`.
    pub rule_id: &'static str,
    /// Human rule name, e.g. `GitHub token`.
    pub rule_name: &'static str,
    /// Path relative to the scanned root, `/`-separated.
    pub file: String,
    /// 1-based line of the secret's first character.
    pub line: usize,
    /// 1-based column (in Unicode code points) of the secret's first character.
    pub column: usize,
    /// The redacted preview, see [`redact`].
    pub preview: String,
    /// `file:rule-id:line`, the form `with.allow` accepts.
    pub fingerprint: String,
}

/// What scanning one file produced.
#[derive(Debug, Default)]
pub struct FileResult {
    /// Findings, in order of position.
    pub findings: Vec<SecretFinding>,
    /// Matches suppressed by a `sluice:ignore-secret` comment.
    pub ignored_inline: usize,
    /// Matches suppressed by `with.allow`.
    pub allowlisted: usize,
}

/// A compiled rule.
#[derive(Debug)]
struct Compiled {
    spec: &'static RuleSpec,
    regex: Regex,
}

/// The secret scanner: compiled rules, their keyword automaton, the
/// allowlist, and the entropy threshold of `generic-secret`.
///
/// Scanning is two-phase, as in gitleaks: one case-insensitive
/// Aho-Corasick pass finds every rule keyword in the file, then each rule's
/// regex runs only on the lines holding one of its keywords. Most text has
/// no keyword at all, so the regexes see a small fraction of the bytes.
#[derive(Debug)]
pub struct SecretScanner {
    rules: Vec<Compiled>,
    keywords: AhoCorasick,
    /// Keyword pattern id → rule index.
    keyword_rule: Vec<usize>,
    allow: Allowlist,
    entropy_threshold: f64,
}

/// How far past its keyword's line a multi-line rule may match. The
/// largest PEM private keys (RSA-16384) are about 13 KiB; the bound keeps a
/// keyword with no closing `END` line from costing a scan to end of file.
pub const MULTILINE_WINDOW: usize = 64 * 1024;

/// Default `entropy-threshold` in bits per character.
pub const DEFAULT_ENTROPY_THRESHOLD: f64 = 3.5;

/// Why the scanner could not be built (a bug in the built-in rules).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule's regex does not compile.
    #[error("rule regex: {0}")]
    Regex(#[from] regex::Error),
    /// The keyword automaton could not be built.
    #[error("rule keywords: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
}

impl SecretScanner {
    /// Compiles the rule set. Fails only if a built-in pattern is invalid,
    /// which the unit tests rule out.
    pub fn new(allow: Allowlist, entropy_threshold: f64) -> Result<SecretScanner, RuleError> {
        let rules = RULES
            .iter()
            .map(|spec| {
                Ok(Compiled {
                    spec,
                    regex: Regex::new(spec.pattern)?,
                })
            })
            .collect::<Result<Vec<_>, regex::Error>>()?;
        let mut words = Vec::new();
        let mut keyword_rule = Vec::new();
        for (i, spec) in RULES.iter().enumerate() {
            for k in spec.keywords {
                words.push(*k);
                keyword_rule.push(i);
            }
        }
        // A full DFA: a few KB for these keywords, and one table lookup per
        // byte. Natively the SIMD prefilter hides the difference, but Wasm
        // has no SIMD prefilter, and the default NFA made the Wasm build
        // three times slower than native.
        let keywords = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)?;
        Ok(SecretScanner {
            rules,
            keywords,
            keyword_rule,
            allow,
            entropy_threshold,
        })
    }

    /// Scans `text`, the content of the file at `path` (relative,
    /// `/`-separated; used in findings and fingerprints).
    pub fn scan(&self, path: &str, text: &str) -> FileResult {
        let mut result = FileResult::default();
        // (rule, window start, window end): the lines to run each rule on.
        let mut windows: Vec<(usize, usize, usize)> = Vec::new();
        for hit in self.keywords.find_overlapping_iter(text) {
            let Some(&rule) = self.keyword_rule.get(hit.pattern().as_usize()) else {
                continue;
            };
            let start = text[..hit.start()].rfind('\n').map_or(0, |i| i + 1);
            let multiline = self.rules.get(rule).is_some_and(|r| r.spec.multiline);
            let end = if multiline {
                let mut end = text.len().min(start + MULTILINE_WINDOW);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                end
            } else {
                text[hit.end()..]
                    .find('\n')
                    .map_or(text.len(), |i| hit.end() + i)
            };
            windows.push((rule, start, end));
        }
        if windows.is_empty() {
            return result;
        }
        // Rule order is priority order: specific rules claim text first.
        windows.sort_unstable();
        windows.dedup();

        // Byte spans of secrets already claimed by a more specific rule.
        let mut claimed: Vec<(usize, usize)> = Vec::new();
        let mut lines: Option<LineIndex> = None;
        for (rule_index, win_start, win_end) in windows {
            let Some(rule) = self.rules.get(rule_index) else {
                continue;
            };
            let window = &text[win_start..win_end];
            let matches: Vec<regex::Captures<'_>> = if rule.spec.multiline {
                rule.regex.captures(window).into_iter().collect()
            } else {
                rule.regex.captures_iter(window).collect()
            };
            for caps in matches {
                let Some((secret, bare)) = secret_group(&caps) else {
                    continue;
                };
                let (start, end) = (win_start + secret.start(), win_start + secret.end());
                if !self.passes_check(rule.spec.check, &caps, secret.as_str(), bare) {
                    continue;
                }
                if claimed.iter().any(|&(s, e)| start < e && s < end) {
                    continue;
                }
                claimed.push((start, end));
                let index = lines.get_or_insert_with(|| LineIndex::new(text));
                let (line, column, line_text) = index.locate(text, start);
                if line_text.contains(IGNORE_MARKER) {
                    result.ignored_inline += 1;
                    continue;
                }
                let fingerprint = format!("{path}:{}:{line}", rule.spec.id);
                if self.allow.allows_secret(&fingerprint, secret.as_str()) {
                    result.allowlisted += 1;
                    continue;
                }
                result.findings.push(SecretFinding {
                    rule_id: rule.spec.id,
                    rule_name: rule.spec.name,
                    file: path.to_string(),
                    line,
                    column,
                    preview: redact(secret.as_str()),
                    fingerprint,
                });
            }
        }
        result.findings.sort_by_key(|f| (f.line, f.column));
        result
    }

    fn passes_check(
        &self,
        check: Check,
        caps: &regex::Captures<'_>,
        secret: &str,
        bare: bool,
    ) -> bool {
        match check {
            Check::None => true,
            Check::Length(n) => secret.chars().count() == n,
            Check::NotPlaceholder => !entropy::is_placeholder(secret),
            Check::PrivateKeyBody => rules::private_key_body_ok(secret),
            Check::UrlPassword => {
                let user = caps.name("user").map_or("", |m| m.as_str());
                let host = caps.name("host").map_or("", |m| m.as_str());
                !entropy::is_placeholder(secret) && secret != user && !rules::is_example_host(host)
            }
            Check::Generic => {
                if entropy::is_placeholder(secret)
                    || secret.contains("://")
                    || screaming_case(secret)
                {
                    return false;
                }
                if bare && (!secret.bytes().any(|b| b.is_ascii_digit()) || looks_like_code(secret))
                {
                    return false;
                }
                if secret.starts_with('/') || secret.starts_with("./") || secret.starts_with("~/") {
                    return false;
                }
                entropy::shannon(secret) > self.entropy_threshold
            }
        }
    }
}

/// `SOME_CONSTANT_NAME`: a constant's name, quoted or not, is not a secret.
fn screaming_case(value: &str) -> bool {
    value.contains('_')
        && value
            .bytes()
            .all(|b| b == b'_' || b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Whether an unquoted value is an identifier rather than a secret:
/// `SCREAMING_CASE_2`, `snake_case_2` (with an underscore), or a dotted
/// path of lowercase identifiers (`self.token2`).
fn looks_like_code(value: &str) -> bool {
    let ident_chars = |s: &str, upper: bool| {
        s.bytes().all(|b| {
            b == b'_'
                || b.is_ascii_digit()
                || if upper {
                    b.is_ascii_uppercase()
                } else {
                    b.is_ascii_lowercase()
                }
        })
    };
    if value.contains('_') && (ident_chars(value, true) || ident_chars(value, false)) {
        return true;
    }
    value.contains('.')
        && value.split('.').all(|seg| {
            seg.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && ident_chars(seg, false)
        })
}

/// The captured secret and whether it was an unquoted (`bare`) value.
fn secret_group<'t>(caps: &regex::Captures<'t>) -> Option<(regex::Match<'t>, bool)> {
    if let Some(m) = caps.name("secret") {
        return Some((m, false));
    }
    if let Some(m) = caps.name("dq").or_else(|| caps.name("sq")) {
        return Some((m, false));
    }
    caps.name("bare").map(|m| (m, true))
}

/// The redacted preview of a secret: its first characters and `…`. Four
/// characters are shown for secrets of 12 characters or more; shorter ones
/// show a third of their length (rounded down), so a short password is
/// never mostly revealed.
///
/// ```
/// use sluice_plugin_scan::secrets::redact;
/// assert_eq!(redact("AKIAIOSFODNN7EXAMPLE"), "AKIA…"); // sluice:ignore-secret
/// assert_eq!(redact("hunter2"), "hu…");
/// assert_eq!(redact("ab"), "…");
/// ```
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let shown = (n / 3).min(4);
    // Never carry a line break or control character into a log line.
    let mut out: String = secret
        .chars()
        .take(shown)
        .take_while(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    out.push('…');
    out
}

/// Byte offsets of line starts, to turn a match offset into line and column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (code points) of byte `offset`, and the
    /// text of that line.
    fn locate<'t>(&self, text: &'t str, offset: usize) -> (usize, usize, &'t str) {
        let idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(idx).copied().unwrap_or(0);
        let end = self
            .starts
            .get(idx + 1)
            .map_or(text.len(), |&next| next.saturating_sub(1));
        let column = text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (idx + 1, column, text.get(start..end).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests;
