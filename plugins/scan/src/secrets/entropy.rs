//! Shannon entropy and placeholder detection: the two filters that keep the
//! generic `password = "…"` rule from flagging every config file.

use std::collections::HashMap;

/// Shannon entropy of `s` in bits per character:
/// `H = -Σ p(c) · log2 p(c)` over the distinct characters `c` of `s`.
/// A string of one repeated character has 0; `n` distinct characters have
/// at most `log2(n)`.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::shannon;
/// assert_eq!(shannon("aaaa"), 0.0);
/// assert_eq!(shannon("abcd"), 2.0);
/// ```
pub fn shannon(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut total = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Words that mark a value as a stand-in rather than a credential.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "example",
    "placeholder",
    "xxxx",
    "your_",
    "your-",
    "yourtoken",
    "yourpassword",
    "yoursecret",
    "dummy",
    "redacted",
    "replace",
    "insert",
    "sample",
    "foobar",
    "notasecret",
    "not-a-secret",
];

/// Values that, whole, are not secrets.
const PLACEHOLDER_VALUES: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "secret",
    "token",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "empty",
    "test",
    "testing",
    "admin",
    "root",
    "default",
    "string",
    "foo",
    "bar",
    "baz",
    "qux",
    "opensesame",
];

/// Fragments that show the value is a reference to a secret kept elsewhere
/// (environment, templating, a secrets manager), not the secret itself.
const REFERENCE_MARKERS: &[&str] = &[
    "${",
    "$(",
    "{{",
    "}}",
    "#{",
    "%(",
    "<%",
    "process.env",
    "os.environ",
    "getenv",
    "env(",
    "env[",
    "env.",
    "secrets.",
    "vault:",
    "arn:aws:secretsmanager",
];

/// Whether `value` is an obvious placeholder: `changeme`, `xxx…`, `****`,
/// `${VAR}`, `$VAR`, `<your-token>`, `{{ secret }}`, `process.env.X`, a
/// value made of one repeated character, and the like.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::is_placeholder;
/// assert!(is_placeholder("${TOKEN}"));
/// assert!(is_placeholder("<your-api-key>"));
/// assert!(!is_placeholder("x7Kp2Qm9Lw4Rt8Vz"));
/// ```
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDER_VALUES.contains(&lower.as_str()) {
        return true;
    }
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    if REFERENCE_MARKERS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    // `$NAME`: a shell or compose variable.
    if let Some(rest) = v.strip_prefix('$') {
        if rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return true;
        }
    }
    // `<...>`, `[...]`, `{...}`, `%s`: a slot to fill in.
    if (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('{') && v.ends_with('}'))
        || v == "%s"
    {
        return true;
    }
    // `********`, `xxxxxxxx`, `XXXX-XXXX`, `00000000`.
    let mut distinct = v
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| c.to_ascii_lowercase());
    match distinct.next() {
        None => true,
        Some(first) => distinct.all(|c| c == first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon(""), 0.0);
        assert_eq!(shannon("ab"), 1.0);
        assert!((shannon("aab") - 0.918_295_834).abs() < 1e-6);
        // 16 distinct characters: log2(16) = 4.
        assert_eq!(shannon("x7Kp2Qm9Lw4Rt8Vz"), 4.0);
        assert!(shannon("changeme") < 3.0);
    }

    #[test]
    fn placeholders_are_recognized() {
        for p in [
            "changeme",
            "CHANGE_ME",
            "xxx",
            "xxxxxxxxxxxx",
            "********",
            "XXXX-XXXX-XXXX",
            "${TOKEN}",
            "${{ secrets.DEPLOY_TOKEN }}",
            "$DB_PASSWORD",
            "<your-token-here>",
            "[password]",
            "{}",
            "{password}",
            "%s",
            "{{ vault_token }}",
            "process.env.API_KEY",
            "os.environ['SECRET']",
            "your_api_key_here",
            "password",
            "example-secret-123",
            "",
        ] {
            assert!(is_placeholder(p), "{p:?} should be a placeholder");
        }
    }

    #[test]
    fn real_looking_values_are_not_placeholders() {
        for v in [
            "x7Kp2Qm9Lw4Rt8Vz",
            "hunter2hunter2",
            "9f8a7b6c5d4e3f2a1b0c",
            "P4ssw0rd!2024",
            "s3cr3t$Value9",
        ] {
            assert!(!is_placeholder(v), "{v:?} should not be a placeholder");
        }
    }
}
