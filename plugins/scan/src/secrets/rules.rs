//! The secret rule set.
//!
//! Every rule is a regular expression (the `regex` crate: linear time, no
//! backtracking, so a hostile file cannot stall the scan) with a named
//! group that captures the secret itself, plus a [`Check`] applied to the
//! captured value. Rules are listed from most to least specific; when two
//! rules match overlapping text, only the first is reported (a GitHub token
//! in `token = "ghp_…"` is a `github-token`, not also a `generic-secret`).
//!
//! | id | finds |
//! |---|---|
//! | `private-key` | `-----BEGIN … PRIVATE KEY-----` blocks with a base64 body of ≥ 64 characters and an `END` line |
//! | `aws-access-key-id` | `AKIA…`/`ASIA…` + 16 upper-case alphanumerics |
//! | `aws-secret-access-key` | a 40-character key assigned to `aws_secret_access_key` (any case and separator) |
//! | `github-token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + exactly 36 alphanumerics |
//! | `github-fine-grained-token` | `github_pat_` + 22 + `_` + 59 alphanumerics |
//! | `gitlab-token` | `glpat-` + ≥ 20 of `[A-Za-z0-9_-]` |
//! | `slack-token` | `xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-` + numeric segments + a ≥ 8-character tail |
//! | `slack-webhook` | `https://hooks.slack.com/services/…` (also `workflows/`, `triggers/`) |
//! | `stripe-secret-key` | `sk_live_` / `rk_live_` + ≥ 24 alphanumerics |
//! | `google-api-key` | `AIza` + exactly 35 of `[A-Za-z0-9_-]` |
//! | `url-credentials` | `scheme://user:password@host`, unless the password is a placeholder, equals the user name, or the host is an `example.*` / `.invalid` domain |
//! | `generic-secret` | `password`, `passwd`, `secret`, `token`, `api_key`, `apikey`, `access_key`, `private_key`, `auth_key`, `credentials` (optionally followed by `_key` or `s`) assigned with `=`, `:`, `:=` or `=>` a value of 6–256 characters without whitespace whose Shannon entropy exceeds `entropy-threshold` and that is not a placeholder. An unquoted value must be a whole token of `[A-Za-z0-9+/=_.~-]` ending the line (or followed by `,`, `;`, `#`, `//`), contain a digit, and not look like an identifier (`SOME_CONSTANT`, `snake_case_2`, `self.field`) — this keeps type annotations and code out |
//!
//! Not reported: Stripe test keys (`sk_test_`), public keys and
//! certificates, tokens of the wrong length, anything on a line that
//! contains `sluice:ignore-secret`.

/// What a rule checks on the captured value after the regex matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// The match is enough.
    None,
    /// The value must have exactly this many characters.
    Length(usize),
    /// The value must not be a placeholder.
    NotPlaceholder,
    /// A private key body: ≥ 64 base64 characters once headers and
    /// whitespace are removed.
    PrivateKeyBody,
    /// `url-credentials`: see the table above.
    UrlPassword,
    /// `generic-secret`: entropy, placeholder and unquoted-value checks.
    Generic,
}

/// One rule of the set.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    /// Stable identifier, used as SARIF `ruleId` and in fingerprints.
    pub id: &'static str,
    /// Short human name.
    pub name: &'static str,
    /// One sentence for the SARIF rule's help text.
    pub help: &'static str,
    /// The regex; the secret is group `secret` (or `dq`/`sq`/`bare` for
    /// `generic-secret`).
    pub pattern: &'static str,
    /// The check on the captured value.
    pub check: Check,
    /// Lowercase literals of which at least one occurs (in any case) in
    /// every match. The scanner finds them in one Aho-Corasick pass and
    /// runs the rule's regex only on the lines that hold one.
    pub keywords: &'static [&'static str],
    /// Whether a match can span lines (then the regex runs from the
    /// keyword's line over at most `MULTILINE_WINDOW` bytes).
    pub multiline: bool,
}

/// The rules, most specific first.
pub const RULES: &[RuleSpec] = &[
    RuleSpec {
        id: "private-key",
        name: "Private key",
        help: "A PEM/OpenSSH/PGP private key block is committed. Remove it, rotate the key, and load it from a secret store at run time.",
        pattern: r"-----BEGIN (?P<kind>[A-Z0-9 ]{0,32}?)PRIVATE KEY(?: BLOCK)?-----(?s:\s*(?P<secret>.*?)\s*)-----END [A-Z0-9 ]{0,32}?PRIVATE KEY(?: BLOCK)?-----",
        check: Check::PrivateKeyBody,
        keywords: &["private key-----", "private key block-----"],
        multiline: true,
    },
    RuleSpec {
        id: "aws-access-key-id",
        name: "AWS access key ID",
        help: "An AWS access key ID (AKIA/ASIA) is committed. Deactivate the key in IAM and use role credentials or a secret store.",
        pattern: r"\b(?P<secret>(?:AKIA|ASIA)[A-Z0-9]{16})\b",
        check: Check::None,
        keywords: &["akia", "asia"],
        multiline: false,
    },
    RuleSpec {
        id: "aws-secret-access-key",
        name: "AWS secret access key",
        help: "An AWS secret access key is assigned in a file. Rotate it and use role credentials or a secret store.",
        pattern: r#"(?i)aws[_.\-]?secret[_.\-]?(?:access[_.\-]?)?key["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[A-Za-z0-9/+=]{40,})"#,
        check: Check::Length(40),
        keywords: &["aws"],
        multiline: false,
    },
    RuleSpec {
        id: "github-token",
        name: "GitHub token",
        help: "A GitHub personal, OAuth, user-to-server, server-to-server or refresh token is committed. Revoke it in GitHub settings.",
        pattern: r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{36})\b",
        check: Check::None,
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        multiline: false,
    },
    RuleSpec {
        id: "github-fine-grained-token",
        name: "GitHub fine-grained token",
        help: "A GitHub fine-grained personal access token is committed. Revoke it in GitHub settings.",
        pattern: r"\b(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        check: Check::None,
        keywords: &["github_pat_"],
        multiline: false,
    },
    RuleSpec {
        id: "gitlab-token",
        name: "GitLab personal access token",
        help: "A GitLab personal access token is committed. Revoke it in GitLab settings.",
        pattern: r"\b(?P<secret>glpat-[A-Za-z0-9_\-]{20,})",
        check: Check::None,
        keywords: &["glpat-"],
        multiline: false,
    },
    RuleSpec {
        id: "slack-token",
        name: "Slack token",
        help: "A Slack bot, user, app or refresh token is committed. Revoke it in the Slack app settings.",
        pattern: r"\b(?P<secret>xox[baprs]-(?:[0-9]+-)+[0-9A-Za-z][0-9A-Za-z\-]{7,})",
        check: Check::None,
        keywords: &["xox"],
        multiline: false,
    },
    RuleSpec {
        id: "slack-webhook",
        name: "Slack webhook URL",
        help: "A Slack incoming webhook URL is committed; anyone holding it can post to the channel. Regenerate it.",
        pattern: r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9+/_\-]{20,})",
        check: Check::None,
        keywords: &["hooks.slack.com"],
        multiline: false,
    },
    RuleSpec {
        id: "stripe-secret-key",
        name: "Stripe live secret key",
        help: "A Stripe live secret or restricted key is committed. Roll it in the Stripe dashboard.",
        pattern: r"\b(?P<secret>(?:sk|rk)_live_[0-9A-Za-z]{24,})",
        check: Check::None,
        keywords: &["_live_"],
        multiline: false,
    },
    RuleSpec {
        id: "google-api-key",
        name: "Google API key",
        help: "A Google API key is committed. Restrict or regenerate it in the Google Cloud console.",
        pattern: r"\b(?P<secret>AIza[0-9A-Za-z_\-]{35,})",
        check: Check::Length(39),
        keywords: &["aiza"],
        multiline: false,
    },
    RuleSpec {
        id: "url-credentials",
        name: "Credentials in URL",
        help: "A URL carries a user name and password. Move the password to a secret and build the URL at run time.",
        pattern: r#"(?i)\b[a-z][a-z0-9+.\-]{1,30}://(?P<user>[^:/?#\s@"'<>\[\]{}]{1,128}):(?P<secret>[^@/?#\s"'<>]{1,256})@(?P<host>[a-z0-9][a-z0-9.\-_]*)"#,
        check: Check::UrlPassword,
        keywords: &["://"],
        multiline: false,
    },
    RuleSpec {
        id: "generic-secret",
        name: "High-entropy secret assignment",
        help: "A password, token or key with high entropy is assigned in a file. Move it to a secret store; if it is not a secret, add `sluice:ignore-secret` to the line or its fingerprint to `with.allow`.",
        pattern: r#"(?im)(?:password|passwd|secret|token|api[_.\-]?key|apikey|access[_.\-]?key|private[_.\-]?key|auth[_.\-]?key|credentials?)(?:[_.\-]?key)?s?["']?[ \t]*(?::=|=>|=|:)[ \t]*(?:"(?P<dq>[^"\s]{6,256})"|'(?P<sq>[^'\s]{6,256})'|(?P<bare>[A-Za-z0-9+/=_\-.~]{6,256})[ \t]*(?:[,;#]|//|\r?$))"#,
        check: Check::Generic,
        keywords: &["passw", "secret", "token", "key", "credential"],
        multiline: false,
    },
];

/// The rule with `id`, if any.
///
/// ```
/// use sluice_plugin_scan::secrets::rules::rule;
/// assert_eq!(rule("github-token").map(|r| r.name), Some("GitHub token"));
/// ```
pub fn rule(id: &str) -> Option<&'static RuleSpec> {
    RULES.iter().find(|r| r.id == id)
}

/// Whether a private key body (the text between the `BEGIN` and `END`
/// lines) looks like real key material: headers such as `Proc-Type:` are
/// dropped, and what is left must be ≥ 64 base64 characters.
pub fn private_key_body_ok(body: &str) -> bool {
    let mut n = 0usize;
    for line in body.lines() {
        let line = line.trim();
        if line.contains(':') {
            continue;
        }
        for b in line.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') {
                n += 1;
            } else if !b.is_ascii_whitespace() {
                return false;
            }
        }
    }
    n >= 64
}

/// Hosts whose URLs are documentation, never real endpoints.
pub fn is_example_host(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    let h = h.trim_end_matches('.');
    ["example.com", "example.org", "example.net"]
        .iter()
        .any(|d| h == *d || h.ends_with(&format!(".{d}")))
        || h.ends_with(".invalid")
        || h.ends_with(".example")
        || h == "example"
}
