//! Shannon entropy and placeholder detection: the two filters that keep the
//! generic `password = "…"` rule from flagging every config file.
//!
//! The entropy threshold is not one fixed number: a random 32-character hex
//! key has an expected entropy of about 3.6 bits per character and a random
//! 12-character password about 3.4, so a fixed 3.5 misses many of both.
//! [`scaled_threshold`] computes the expected entropy of a random string of
//! the value's length over the value's [`Charset`] and subtracts a margin
//! that shrinks with the length (about the 0.5% quantile of random values).

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

/// The alphabet a value appears to be drawn from, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `[0-9a-f]` or `[0-9A-F]`.
    Hex,
    /// `[A-Za-z0-9]`.
    Alnum,
    /// `[A-Za-z0-9+/=_-]` (standard or URL-safe base64).
    Base64,
    /// Any other printable ASCII (passwords with symbols).
    Printable,
}

impl Charset {
    /// The smallest charset that holds every character of `value`.
    ///
    /// ```
    /// use sluice_plugin_scan::secrets::entropy::Charset;
    /// assert_eq!(Charset::of("9f8a7b6c"), Charset::Hex);
    /// assert_eq!(Charset::of("x7Kp2Qm9"), Charset::Alnum);
    /// assert_eq!(Charset::of("x7K/p2+Q="), Charset::Base64);
    /// assert_eq!(Charset::of("p@ss!w0rd"), Charset::Printable);
    /// ```
    pub fn of(value: &str) -> Charset {
        let b = value.as_bytes();
        let lower_hex = b
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        let upper_hex = b
            .iter()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
        if lower_hex || upper_hex {
            Charset::Hex
        } else if b.iter().all(u8::is_ascii_alphanumeric) {
            Charset::Alnum
        } else if b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-'))
        {
            Charset::Base64
        } else {
            Charset::Printable
        }
    }

    /// Number of symbols in the alphabet.
    pub fn size(self) -> usize {
        match self {
            Charset::Hex => 16,
            Charset::Alnum => 62,
            Charset::Base64 => 64,
            Charset::Printable => 94,
        }
    }
}

/// Expected Shannon entropy (bits per character, as [`shannon`] measures
/// it) of a uniformly random string of `n` characters over `k` symbols.
///
/// Each symbol's count is Binomial(n, 1/k), so
/// `E[H] = -k · Σ_x P(X = x) · (x/n) · log2(x/n)`; summed exactly.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::expected_entropy;
/// let e = expected_entropy(32, 16);
/// assert!((e - 3.611).abs() < 0.01, "{e}");
/// ```
pub fn expected_entropy(n: usize, k: usize) -> f64 {
    if n == 0 || k == 0 {
        return 0.0;
    }
    let p = 1.0 / k as f64;
    let nf = n as f64;
    // P(X = 0), then P(X = x+1) = P(X = x) · (n-x)/(x+1) · p/(1-p).
    let mut pmf = (1.0 - p).powi(n as i32);
    let ratio = p / (1.0 - p);
    let mut sum = 0.0;
    for x in 0..n {
        pmf *= (n - x) as f64 / (x + 1) as f64 * ratio;
        let f = (x + 1) as f64 / nf;
        sum += pmf * f * f.log2();
    }
    -(k as f64) * sum
}

/// The entropy a value of this length and charset must reach to count as
/// random: [`expected_entropy`] minus `2.5 / sqrt(n)` bits. The margin is
/// about the 0.5% quantile of random strings for 8 to 88 characters, so
/// at least 99% of random keys pass while words and patterns do not.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::{scaled_threshold, shannon};
/// // A 32-hex key with entropy 3.45 is random enough (a fixed 3.5 missed it).
/// assert!(scaled_threshold("9f8a7b6c5d4e3f2a1b0c9f8a7b6c5d4e") < 3.45);
/// ```
pub fn scaled_threshold(value: &str) -> f64 {
    let n = value.chars().count();
    if n == 0 {
        return f64::INFINITY;
    }
    expected_entropy(n, Charset::of(value).size()) - 2.5 / (n as f64).sqrt()
}

/// Whether `value` is a natural-language word or an identifier rather
/// than a random string: letters only (with `-`, `_`, `.` separators)
/// in lower case, upper case, `Capitalized` or `camelCase` form.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::is_wordlike;
/// assert!(is_wordlike("Passwort"));
/// assert!(is_wordlike("my-secret-name"));
/// assert!(is_wordlike("hashedPassword"));
/// assert!(!is_wordlike("xKpQmLwRtVzN"));
/// assert!(!is_wordlike("hunter22"));
/// ```
pub fn is_wordlike(value: &str) -> bool {
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.'))
    {
        return false;
    }
    value.split(['-', '_', '.']).all(|part| {
        let mut chars = part.chars();
        let Some(first) = chars.next() else {
            return true;
        };
        let rest: Vec<char> = chars.collect();
        let all_lower = rest.iter().all(char::is_ascii_lowercase);
        let all_upper = rest.iter().all(char::is_ascii_uppercase);
        if all_lower || (first.is_ascii_uppercase() && all_upper) {
            return true;
        }
        // camelCase / PascalCase: every capital starts a run of at least
        // two lower-case letters.
        let mut prev_upper = first.is_ascii_uppercase();
        let mut lower_run = 0usize;
        for &c in &rest {
            if c.is_ascii_uppercase() {
                if prev_upper || lower_run < 2 {
                    return false;
                }
                prev_upper = true;
                lower_run = 0;
            } else {
                prev_upper = false;
                lower_run += 1;
            }
        }
        lower_run >= 2
    })
}

/// Whether `value` is a version string such as `1.2.3`, `v2.0.0-rc.1` or
/// `2024.2.2`.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::is_version;
/// assert!(is_version("v1.2.3-beta4"));
/// assert!(!is_version("x7Kp2Qm9"));
/// ```
pub fn is_version(value: &str) -> bool {
    let v = value.strip_prefix(['v', 'V']).unwrap_or(value);
    let (core, _suffix) = v.split_once(['-', '+']).unwrap_or((v, ""));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether most of `value` (all but at most a quarter of it) is made of
/// runs of at least four consecutive characters, ascending or descending:
/// `12345678`, `abcdefgh`, `0123456789abcdef0123456789abcdef`, `98765432`,
/// or holds a keyboard row such as `qwerty`.
///
/// ```
/// use sluice_plugin_scan::secrets::entropy::is_sequential;
/// assert!(is_sequential("12345678"));
/// assert!(is_sequential("abcdefghij"));
/// assert!(is_sequential("qwerty123"));
/// assert!(!is_sequential("x7Kp2Qm9"));
/// ```
pub fn is_sequential(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if ["qwerty", "asdfgh", "zxcvbn", "qwertz", "azerty"]
        .iter()
        .any(|row| lower.contains(row))
    {
        return true;
    }
    let b = lower.as_bytes();
    if b.len() < 4 {
        return false;
    }
    // Longest run where each byte is the previous ± 1 (same direction),
    // also across `9` → `a` (hex digits in order).
    let step = |a: u8, c: u8| -> i32 {
        if a == b'9' && c == b'a' {
            1
        } else if a == b'a' && c == b'9' {
            -1
        } else {
            i32::from(c) - i32::from(a)
        }
    };
    // Sum of the lengths of maximal runs of ≥ 4 characters.
    let mut covered = 0usize;
    let mut run = 1usize;
    let mut dir = 0i32;
    for w in b.windows(2) {
        let d = step(w[0], w[1]);
        if (d == 1 || d == -1) && (run == 1 || d == dir) {
            run += 1;
            dir = d;
            continue;
        }
        if run >= 4 {
            covered += run;
        }
        if d == 1 || d == -1 {
            run = 2;
            dir = d;
        } else {
            run = 1;
        }
    }
    if run >= 4 {
        covered += run;
    }
    covered * 4 >= b.len() * 3
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
    "not_a_secret",
    "fake",
    "mock",
    "fixme",
    "todo",
    "<password>",
    "<token>",
    "<secret>",
    "***",
    "...",
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
/// value made of one repeated character, a short unit repeated three
/// times or more (`abcabcabc`), a sequential run (`12345678`), and the
/// like.
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
    if is_sequential(v) || is_repeated_unit(v) || is_keyword_word(&lower) {
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

/// Words that, with at most three more letters or digits, make a value
/// a stand-in: `test_password`, `password1`, `mysecret`, `devtoken`.
const STAND_IN_WORDS: &[&str] = &[
    "password", "passwd", "secret", "token", "test", "pass", "admin", "user", "demo", "local",
    "default", "dev", "key", "api", "my",
];

/// Whether a lower-case value is made of [`STAND_IN_WORDS`] plus at most
/// three other letters or digits.
fn is_keyword_word(lower: &str) -> bool {
    let mut rest = lower.to_string();
    let mut removed = false;
    for w in STAND_IN_WORDS {
        if rest.contains(w) {
            rest = rest.replace(w, " ");
            removed = true;
        }
    }
    removed && rest.bytes().filter(u8::is_ascii_alphanumeric).count() <= 3
}

/// Whether `value` is a unit of at most a third of its length repeated
/// (`abcabcabc`, `12121212`).
fn is_repeated_unit(value: &str) -> bool {
    let b = value.as_bytes();
    let n = b.len();
    (1..=n / 3).any(|u| n.is_multiple_of(u) && b.chunks(u).all(|c| c == &b[..u]))
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

    /// A tiny seeded generator, so the test is deterministic.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn expected_entropy_matches_the_limits() {
        // One character: no uncertainty; long strings approach log2(k).
        assert_eq!(expected_entropy(1, 16), 0.0);
        assert!((expected_entropy(4096, 16) - 4.0).abs() < 0.01);
        assert!(expected_entropy(12, 62) < 12f64.log2());
        assert_eq!(expected_entropy(0, 16), 0.0);
        assert_eq!(expected_entropy(8, 0), 0.0);
    }

    #[test]
    fn scaled_threshold_passes_at_least_99_percent_of_random_values() {
        let alphabets: [&[u8]; 4] = [
            b"0123456789abcdef",
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/",
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&()*+,-./:;<=>?@[]^_{|}~",
        ];
        let mut state = 19u64;
        for alphabet in alphabets {
            for n in [8usize, 12, 16, 20, 32, 40, 64, 88] {
                let trials = 1000;
                let mut pass = 0;
                for _ in 0..trials {
                    let v: String = (0..n)
                        .map(|_| {
                            alphabet[(next(&mut state) % alphabet.len() as u64) as usize] as char
                        })
                        .collect();
                    if shannon(&v) >= scaled_threshold(&v) {
                        pass += 1;
                    }
                }
                assert!(pass * 100 >= trials * 99, "{n} chars: {pass}/{trials}");
            }
        }
        // Structured values stay under it.
        for v in ["aaaaaaaabbbbbbbb", "abababababababab", "0000111100001111"] {
            assert!(shannon(v) < scaled_threshold(v), "{v}");
        }
        assert_eq!(scaled_threshold(""), f64::INFINITY);
    }

    #[test]
    fn charsets_words_versions_and_sequences() {
        assert_eq!(Charset::of("DEADBEEF01"), Charset::Hex);
        assert_eq!(Charset::of("deadBEEF01"), Charset::Alnum);
        assert_eq!(Charset::Printable.size(), 94);
        for w in [
            "Contraseña",
            "bert-base-uncased",
            "SOME_WORD",
            "Password",
            "camelCaseName",
        ] {
            let ascii = w.is_ascii();
            assert_eq!(is_wordlike(w), ascii, "{w}");
        }
        for w in ["aBcDeFgH", "xKp", "hunter2", "AbCdefgh"] {
            assert!(!is_wordlike(w), "{w}");
        }
        for v in ["1.2.3", "2024.2.2", "v0.10.1+build5"] {
            assert!(is_version(v), "{v}");
        }
        for v in ["1", "1..2", "a.b.c", "v1.x"] {
            assert!(!is_version(v), "{v}");
        }
        for v in [
            "9876543210",
            "0123456789abcdef",
            "zyxwvuts",
            "0123456789abcdef0123456789abcdef",
            "abcd1234",
        ] {
            assert!(is_sequential(v), "{v}");
        }
        for v in ["abc", "a1b2c3d4", "hunter2hunter2"] {
            assert!(!is_sequential(v), "{v}");
        }
        assert!(!is_repeated_unit("hunter2hunter2"));
        assert!(is_repeated_unit("121212"));
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
            "12345678",
            "abcdefgh",
            "qwerty123",
            "abcabcabc",
            "fake-token-value",
            "p***word",
            "test_password",
            "password123",
            "mysecret1",
            "DevToken",
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
            "9f8a7b6c5d4e3f2a1b0c",
            "MyPassword2024!",
            "Admin2024!x",
        ] {
            assert!(!is_placeholder(v), "{v:?} should not be a placeholder");
        }
    }
}
