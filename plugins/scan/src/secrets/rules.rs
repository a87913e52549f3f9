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
//! | `gcp-service-account` | the `private_key` of a Google Cloud service-account JSON key (`"type": "service_account"`), a PEM block with `\n` escapes |
//! | `private-key` | `-----BEGIN … PRIVATE KEY-----` blocks with a base64 body of ≥ 64 characters and an `END` line (also with `\n` escapes, as in JSON) |
//! | `aws-access-key-id` | `AKIA…`/`ASIA…` + 16 upper-case alphanumerics |
//! | `aws-secret-access-key` | a 40-character key assigned to `aws_secret_access_key` (any case and separator) |
//! | `github-token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + exactly 36 alphanumerics |
//! | `github-fine-grained-token` | `github_pat_` + 22 + `_` + 59 alphanumerics |
//! | `gitlab-token` | `glpat-` + ≥ 20 of `[A-Za-z0-9_-]` |
//! | `slack-token` | `xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-` + numeric segments + a ≥ 8-character tail |
//! | `slack-webhook` | `https://hooks.slack.com/services/…` (also `workflows/`, `triggers/`) |
//! | `stripe-secret-key` | `sk_live_` / `rk_live_` + ≥ 24 alphanumerics |
//! | `google-api-key` | `AIza` + exactly 35 of `[A-Za-z0-9_-]` |
//! | `jwt` | a JSON Web Token: three base64url parts, the header decoding to a JSON object with `alg` and the payload to a JSON object |
//! | `azure-storage-key` | `AccountKey=` + 86 base64 characters + `==` (a storage connection string) |
//! | `azure-sas-token` | the `sig=` of a shared access signature URL whose query also has `sv=` and `se=` (or `si=`) |
//! | `url-credentials` | `scheme://user:password@host` or `scheme://:password@host`, unless the password is a placeholder (`${VAR}`, `$VAR`, `<password>`, `***`, …), equals the user name, or the host is an `example.*` / `.invalid` domain |
//! | `generic-secret` | `password`, `passwd`, `pass`, `pwd`, `secret`, `token`, `api_key`, `apikey`, `access_key`, `private_key`, `auth_key`, `credentials` (optionally followed by `_key` or `s`) assigned with `=`, `:`, `:=` or `=>` (code, YAML, JSON, `.env`, INI) a value of 8–256 characters without whitespace that is not a placeholder, a version, a path, a URL or a word. For the password keywords that is enough; for the others the value must have ≥ 12 characters, not read as words run together (`AWSAccessKeyId`), and reach the [scaled entropy threshold](super::entropy::scaled_threshold) for its length and charset (or `entropy-threshold` when set). Key names that are types (`AWS::IAM::AccessKey`) or cursors and request ids (`NextToken`, `nextPageToken`, `ClientToken`) are skipped. An unquoted value must be a whole token ending the line (or followed by `,`, `;`, `#`, `//`) and not look like an identifier (`SOME_CONSTANT`, `snake_case_2`, `self.field`) — this keeps type annotations and code out |
//!
//! Not reported: Stripe test keys (`sk_test_`), public keys and
//! certificates, tokens of the wrong length, anything on a line that
//! contains `sluice:ignore-secret`, and — counted as suppressed
//! placeholders — published documentation examples (AWS's example key
//! pair, the Azurite key, jwt.io's token) and placeholder tokens such as
//! `ghp_XXXX…` ([`super::examples`]).

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
    /// `generic-secret`: entropy, placeholder and unquoted-value checks;
    /// groups `name` (what precedes the keyword in the key) and `kw`.
    Generic,
    /// `jwt`: header and payload decode to JSON objects, header has `alg`.
    Jwt,
    /// `azure-sas-token`: the query (groups `ctx` and `tail`) has `sv=`
    /// and `se=` or `si=`.
    SasQuery,
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
        id: "gcp-service-account",
        name: "Google Cloud service-account key",
        help: "A Google Cloud service-account JSON key with its private key is committed. Delete the key in IAM, and use workload identity or a secret store.",
        pattern: r#"(?s)"type"\s*:\s*"service_account".*?"private_key"\s*:\s*"-----BEGIN [A-Z ]{0,16}PRIVATE KEY-----(?:\\n)?(?P<secret>[^"]{64,}?)-----END [A-Z ]{0,16}PRIVATE KEY-----"#,
        check: Check::PrivateKeyBody,
        keywords: &["\"service_account\""],
        multiline: true,
    },
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
        id: "jwt",
        name: "JSON Web Token",
        help: "A signed JSON Web Token is committed; whoever holds it can act as its subject until it expires. Revoke the session or rotate the signing key.",
        pattern: r"\b(?P<secret>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,})",
        check: Check::Jwt,
        keywords: &["eyj"],
        multiline: false,
    },
    RuleSpec {
        id: "azure-storage-key",
        name: "Azure storage account key",
        help: "An Azure storage account key (a connection string's AccountKey) is committed. Rotate the key and use a managed identity or Key Vault.",
        pattern: r#"(?i)AccountKey[ \t]*=[ \t]*["']?(?P<secret>[A-Za-z0-9+/]{86}==)"#,
        check: Check::None,
        keywords: &["accountkey"],
        multiline: false,
    },
    RuleSpec {
        id: "azure-sas-token",
        name: "Azure shared access signature",
        help: "An Azure shared access signature (a URL with sv=, se= and sig=) is committed. Revoke it (rotate the key or its access policy) and issue SAS tokens at run time.",
        pattern: r#"(?i)(?P<ctx>[?&;](?:[a-z]{2,6}=[^&;\s"'<>]*[&;])*)sig=(?P<secret>[A-Za-z0-9%+/]{30,}(?:=|%3d){0,2})(?P<tail>(?:[&;][a-z]{2,6}=[^&;\s"'<>]*)*)"#,
        check: Check::SasQuery,
        keywords: &["sig="],
        multiline: false,
    },
    RuleSpec {
        id: "url-credentials",
        name: "Credentials in URL",
        help: "A URL carries a password (with or without a user name). Move the password to a secret and build the URL at run time.",
        pattern: r#"(?i)\b[a-z][a-z0-9+.\-]{1,30}://(?P<user>[^:/?#\s@"'<>\[\]{}]{0,128}):(?P<secret>[^@/?#\s"'<>]{1,256})@(?P<host>[a-z0-9][a-z0-9.\-_]*)"#,
        check: Check::UrlPassword,
        keywords: &["://"],
        multiline: false,
    },
    RuleSpec {
        id: "generic-secret",
        name: "Secret assignment",
        help: "A password, or a token or key with high entropy, is assigned in a file. Move it to a secret store; if it is not a secret, add `sluice:ignore-secret` to the line or its fingerprint to `with.allow`.",
        pattern: r#"(?im)(?P<name>[A-Za-z0-9_.:\-]{0,40})(?P<kw>password|passwd|(?:^|[^a-z:])(?:pass|pwd)|secret|token|api[_.\-]?key|apikey|access[_.\-]?key|private[_.\-]?key|auth[_.\-]?key|credentials?)(?:[_.\-]?key)?s?["']?[ \t]*(?::=|=>|=|:)[ \t]*(?:"(?P<dq>[^"\s]{6,256})"|'(?P<sq>[^'\s]{6,256})'|(?P<bare>[A-Za-z0-9+/_\-.~!@%^&*?]{6,256}={0,2})[ \t]*(?:[,;#]|//|\r?$))"#,
        check: Check::Generic,
        keywords: &["pass", "pwd", "secret", "token", "key", "credential"],
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
/// dropped, and what is left must be ≥ 64 base64 characters. `\n` and
/// `\r` escapes (a PEM inside a JSON or `.env` string) count as line
/// breaks.
pub fn private_key_body_ok(body: &str) -> bool {
    let body = body.replace("\\n", "\n").replace("\\r", "");
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

/// Decodes base64url or standard base64, with or without `=` padding.
/// `None` for any other character or an impossible length.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether `token` is a JWT: three `.`-separated base64url parts whose
/// header is a JSON object with a string `alg` and whose payload is a
/// JSON object.
///
/// ```
/// use sluice_plugin_scan::secrets::rules::jwt_ok;
/// // {"alg":"HS256"} . {"sub":"1"} . signature
/// assert!(jwt_ok("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXBhcnQtb2stMTIz"));
/// assert!(!jwt_ok("eyJub3BlIjoxfQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXBhcnQtb2stMTIz"));
/// ```
pub fn jwt_ok(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let json = |part: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
        let bytes = base64_decode(part)?;
        match serde_json::from_slice(&bytes).ok()? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let header_ok = json(header).is_some_and(|h| h.get("alg").is_some_and(|a| a.is_string()));
    header_ok && json(payload).is_some()
}

/// Whether the query around a `sig=` (`ctx` before it, `tail` after it)
/// is a shared access signature's: it has `sv=` (service version) and
/// `se=` (expiry) or `si=` (stored access policy).
pub fn sas_query_ok(ctx: &str, tail: &str) -> bool {
    let names: Vec<String> = ctx
        .split(['?', '&', ';'])
        .chain(tail.split(['&', ';']))
        .filter_map(|p| p.split_once('=').map(|(k, _)| k.to_ascii_lowercase()))
        .collect();
    let has = |n: &str| names.iter().any(|k| k == n);
    has("sv") && (has("se") || has("si"))
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
