//! Secret detection over text files.
//!
//! [`SecretScanner::scan`] runs the [rule set](rules) over one file's text
//! and returns [`SecretFinding`]s that carry only a **redacted** preview of
//! the secret: the value itself is dropped as soon as the allowlist has
//! been checked, so no report, log line or artifact can contain it.

pub mod entropy;
pub mod examples;
pub mod rules;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use serde::Serialize;

use crate::allow::Allowlist;
use entropy::Charset;
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
    /// Matches suppressed as documentation examples or placeholders
    /// (AWS's example key pair, `ghp_XXXX…`, `password = "changeme"`).
    pub placeholders: usize,
}

/// What a rule's check decided about one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not a secret (wrong shape, code, low entropy): dropped silently.
    No,
    /// A documentation example or placeholder: dropped and counted.
    StandIn,
    /// A secret.
    Yes,
}

/// A compiled rule.
#[derive(Debug)]
struct Compiled {
    spec: &'static RuleSpec,
    regex: Regex,
}

/// The secret scanner: compiled rules, their keyword automaton, the
/// allowlist, and the entropy threshold of `generic-secret` (scaled to
/// each value's length and charset unless fixed by `entropy-threshold`).
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
    entropy_threshold: Option<f64>,
}

/// How far past its keyword's line a multi-line rule may match. The
/// largest PEM private keys (RSA-16384) are about 13 KiB; the bound keeps a
/// keyword with no closing `END` line from costing a scan to end of file.
pub const MULTILINE_WINDOW: usize = 64 * 1024;

/// The fixed threshold the scanner used before it scaled with length and
/// charset, in bits per character; kept for tests that compare the two.
pub const LEGACY_ENTROPY_THRESHOLD: f64 = 3.5;

/// Shortest password the `generic-secret` rule reports.
pub const MIN_SECRET_LEN: usize = 8;

/// Shortest token or key (non-password keyword) the `generic-secret` rule
/// reports: issued tokens and keys are longer, while short values under
/// `token`/`key` names are mostly code (`Token: PULONG64`, `"tuple.0.0"`).
pub const MIN_TOKEN_LEN: usize = 12;

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
    /// Compiles the rule set. `entropy_threshold` fixes the `generic-secret`
    /// entropy threshold (bits per character); `None` scales it with each
    /// value's length and charset ([`entropy::scaled_threshold`]). Fails
    /// only if a built-in pattern is invalid, which the unit tests rule out.
    pub fn new(
        allow: Allowlist,
        entropy_threshold: Option<f64>,
    ) -> Result<SecretScanner, RuleError> {
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
                let mut verdict = self.check(rule.spec.check, &caps, secret.as_str(), bare);
                if verdict == Verdict::Yes && examples::is_stand_in(secret.as_str()) {
                    verdict = Verdict::StandIn;
                }
                if verdict == Verdict::No {
                    continue;
                }
                if claimed.iter().any(|&(s, e)| start < e && s < end) {
                    continue;
                }
                // A stand-in claims its span too, so that a less specific
                // rule does not report the same example again.
                claimed.push((start, end));
                if verdict == Verdict::StandIn {
                    result.placeholders += 1;
                    continue;
                }
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

    fn check(&self, check: Check, caps: &regex::Captures<'_>, secret: &str, bare: bool) -> Verdict {
        let yes = |ok: bool| if ok { Verdict::Yes } else { Verdict::No };
        match check {
            Check::None => Verdict::Yes,
            Check::Length(n) => yes(secret.chars().count() == n),
            Check::NotPlaceholder => {
                if entropy::is_placeholder(secret) {
                    Verdict::StandIn
                } else {
                    Verdict::Yes
                }
            }
            Check::PrivateKeyBody => yes(rules::private_key_body_ok(secret)),
            Check::Jwt => yes(rules::jwt_ok(secret)),
            Check::SasQuery => yes(rules::sas_query_ok(
                caps.name("ctx").map_or("", |m| m.as_str()),
                caps.name("tail").map_or("", |m| m.as_str()),
            )),
            Check::UrlPassword => {
                let user = caps.name("user").map_or("", |m| m.as_str());
                let host = caps.name("host").map_or("", |m| m.as_str());
                // `http://:x@d/`: one-letter hosts are URL-parser test data.
                if host.len() < 2 {
                    return Verdict::No;
                }
                if entropy::is_placeholder(secret) || rules::is_example_host(host) {
                    Verdict::StandIn
                } else {
                    yes(secret != user)
                }
            }
            Check::Generic => {
                let keyword = caps.name("kw").map_or("", |m| m.as_str());
                let name = caps.name("name").map_or("", |m| m.as_str());
                if !key_name_ok(name, keyword) {
                    return Verdict::No;
                }
                self.generic(keyword, secret, bare)
            }
        }
    }

    /// The `generic-secret` decision for `secret` assigned to `keyword`.
    fn generic(&self, keyword: &str, secret: &str, bare: bool) -> Verdict {
        // `"test_password\n"` in C: the escape is not part of the value.
        let mut secret = secret;
        while let Some(rest) = ["\\n", "\\r", "\\t", "\\0"]
            .iter()
            .find_map(|e| secret.strip_suffix(e))
        {
            secret = rest;
        }
        if secret.chars().count() < MIN_SECRET_LEN {
            return Verdict::No;
        }
        if entropy::is_placeholder(secret) {
            return Verdict::StandIn;
        }
        if secret.contains("://")
            || screaming_case(secret)
            || entropy::is_version(secret)
            || entropy::is_wordlike(secret)
            || absolute_path(secret)
            || (bare && looks_like_code(secret))
            // `&rsa2048Key`, `*default_pw`: a reference in C, Go or Rust.
            || (bare && secret.starts_with(['&', '*']))
            // `CFStringRef`, `PasswordType`: an unquoted word is a type or
            // a variable, whatever the keyword.
            || (bare && secret.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_'))
            || (bare && identifier_like(secret))
            || path_like(secret)
            || secret.starts_with("arn:")
        {
            return Verdict::No;
        }
        let keyword = keyword.to_ascii_lowercase();
        // A password is a secret whatever its entropy: short human
        // passwords can never reach an entropy threshold (12 distinct
        // characters are at most log2(12) = 3.58 bits).
        if keyword.contains("pass") || keyword.contains("pwd") {
            return Verdict::Yes;
        }
        if secret.chars().count() < MIN_TOKEN_LEN
            || (bare && !secret.bytes().any(|b| b.is_ascii_digit()))
            || (Charset::of(secret) != Charset::Hex && mostly_words(secret))
            // `x25519.X25519PrivateKey`; a password may hold dots, so this
            // is for tokens and keys only.
            || (bare && dotted_identifier(secret))
        {
            return Verdict::No;
        }
        let h = entropy::shannon(secret);
        let pass = match self.entropy_threshold {
            Some(fixed) => h > fixed,
            None => h >= entropy::scaled_threshold(secret),
        };
        if pass {
            Verdict::Yes
        } else {
            Verdict::No
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

/// Words that, before `token` in a key name, make the value a cursor or
/// a request id rather than a credential: `NextToken`, `nextPageToken`,
/// `ClientToken`, `output_token`, `ExportToken`.
const NOT_CREDENTIAL_TOKENS: &[&str] = &[
    "next",
    "page",
    "continuation",
    "pagination",
    "client",
    "input",
    "output",
    "update",
    "idempotency",
    "cancel",
    "resume",
    "sync",
    "marker",
    "export",
    "copy",
    "cursor",
    "max",
    "num",
    "count",
    "limit",
    "type",
    "kind",
    "length",
    "size",
    "ttl",
    "expir",
    "stream",
    "start",
    "parse",
    "lex",
    "split",
    "last",
    "first",
    "prev",
    "continue",
    "more",
    "skip",
];

/// Whether the key a value is assigned to can hold a credential:
/// `AWS::IAM::AccessKey` is a type name, `NextToken` a page cursor.
fn key_name_ok(name: &str, keyword: &str) -> bool {
    if name.contains("::") {
        return false;
    }
    let keyword = keyword.to_ascii_lowercase();
    if !keyword.ends_with("token") {
        return true;
    }
    let name = name.to_ascii_lowercase();
    !NOT_CREDENTIAL_TOKENS.iter().any(|w| name.contains(w))
}

/// `x25519.X25519PrivateKey`, `rust_openssl.hpke.Key`: a dotted path of
/// identifiers (module, attribute or type), in any case.
fn dotted_identifier(value: &str) -> bool {
    value.contains('.')
        && value.split('.').all(|seg| {
            seg.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Whether `value` reads as words run together (`PKCS7PrivateKeyTypes`,
/// `AWSAccessKeyId`, `ExclusiveStartShardId`): only letters, digits and
/// `_`, and at least 60% of it is two or more words — a capital and two or
/// more lower-case letters, or a lower-case run of three or more after a
/// non-letter, each with a vowel — whose lower-case letters are at least
/// 30% vowels (English has about 40%, random letters 23%). Random keys
/// rarely pass all of these.
fn mostly_words(value: &str) -> bool {
    let b = value.as_bytes();
    // Identifiers have no `+`, `/`, `=` or `-`; base64 keys often do.
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return false;
    }
    let (mut covered, mut lower_total, mut vowels, mut runs) = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0usize;
    while i < b.len() {
        let start = i;
        let capital = b[i].is_ascii_uppercase();
        if capital {
            i += 1;
        }
        let lower_start = i;
        while i < b.len() && b[i].is_ascii_lowercase() {
            i += 1;
        }
        let lower = i - lower_start;
        let after_non_letter = start == 0 || !b[start - 1].is_ascii_alphabetic();
        let run_vowels = b[lower_start..i]
            .iter()
            .filter(|c| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y'))
            .count();
        if run_vowels > 0
            && ((capital && lower >= 2) || (!capital && after_non_letter && lower >= 3))
        {
            covered += i - start;
            lower_total += lower;
            vowels += run_vowels;
            runs += 1;
        }
        if i == start {
            i += 1;
        }
    }
    runs >= 2 && covered * 10 >= b.len() * 6 && vowels * 10 >= lower_total * 3
}

/// `MI_UserCredentials_0`, `Key_Type2`: an identifier whose `_`-separated
/// parts are each a word or a number.
fn identifier_like(value: &str) -> bool {
    value.contains('_')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && value.split('_').all(|part| {
            part.is_empty()
                || part.bytes().all(|b| b.is_ascii_digit())
                || entropy::is_wordlike(part)
        })
}

/// `/etc/app/key.pem`, `./secrets/db`, `~/.ssh/id`: a file path. A base64
/// key may start with `/` too, but has no second `/` or `.` without a `+`
/// or `=` somewhere.
fn absolute_path(value: &str) -> bool {
    if let Some(rest) = value
        .strip_prefix("./")
        .or_else(|| value.strip_prefix("~/"))
    {
        return !rest.is_empty();
    }
    value.strip_prefix('/').is_some_and(|rest| {
        (rest.contains('/') || rest.contains('.')) && !value.contains(['+', '='])
    })
}

/// `org/repo#file`, `projects/p/secrets/db/versions/latest`, `true/false`:
/// a lower-case path, not a credential (base64 keys with `/` have upper
/// case letters).
fn path_like(value: &str) -> bool {
    value.contains('/')
        && value.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'/' | b'.' | b'_' | b'-' | b'#')
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
