//! Documentation examples and placeholder tokens: values that match a
//! rule's shape but are published, well-known stand-ins. They are
//! suppressed by default and counted (`FileResult::placeholders`), so a
//! README that quotes AWS's example key pair does not fail a gate.

use super::entropy;

/// Public documentation values, verbatim. Each is printed in its vendor's
/// documentation as an example and is not a live credential.
const KNOWN_EXAMPLES: &[&str] = &[
    // AWS IAM documentation ("Managing access keys"), both pairs.
    "AKIAIOSFODNN7EXAMPLE",                     // sluice:ignore-secret
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", // sluice:ignore-secret
    "AKIAI44QH8DHBEXAMPLE",                     // sluice:ignore-secret
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", // sluice:ignore-secret
    // The Azurite / Azure Storage Emulator development account key.
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", // sluice:ignore-secret
    // RFC 2617 / RFC 7616 HTTP digest authentication example password.
    "CircleOfLife",
    // The jwt.io debugger's default token (HS256, "John Doe").
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", // sluice:ignore-secret
];

/// Prefixes that name a token's kind; what follows is its random part.
const TOKEN_PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "sk_live_",
    "rk_live_",
    "xoxb-",
    "xoxa-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "AKIA",
    "ASIA",
    "AIza",
];

/// Longest random part that the placeholder word test is applied to. On
/// longer values (JWTs, account keys, PEM bodies) a word such as `fake`
/// can occur by chance, so only the known examples and near-constant
/// values are suppressed there.
const WORD_TEST_MAX: usize = 64;

/// Whether `value` is one of the published documentation examples.
///
/// ```
/// use sluice_plugin_scan::secrets::examples::is_known_example;
/// assert!(is_known_example("AKIAIOSFODNN7EXAMPLE")); // sluice:ignore-secret
/// assert!(!is_known_example("AKIAIOSFODNN7EXAMPLF")); // sluice:ignore-secret
/// ```
pub fn is_known_example(value: &str) -> bool {
    KNOWN_EXAMPLES.contains(&value)
}

/// Whether a value matched by a rule is a documentation example or a
/// placeholder: a known example, a token whose random part is a
/// placeholder (`ghp_` + 36 × `X`, `sk_live_xxxx…`, `AKIA…EXAMPLE`), or a
/// value of at most three distinct characters.
///
/// ```
/// use sluice_plugin_scan::secrets::examples::is_stand_in;
/// assert!(is_stand_in(&format!("ghp_{}", "X".repeat(36))));
/// assert!(!is_stand_in("ghp_x7Kp2Qm9Lw4Rt8Vzx7Kp2Qm9Lw4Rt8Vz1234"));
/// ```
pub fn is_stand_in(value: &str) -> bool {
    if is_known_example(value) {
        return true;
    }
    let mut body = value;
    // Two rounds: `xoxb-` then nothing, `github_pat_` then nothing; the
    // loop ends as soon as no prefix matches.
    for _ in 0..2 {
        match TOKEN_PREFIXES.iter().find(|p| body.starts_with(**p)) {
            Some(p) => body = &body[p.len()..],
            None => break,
        }
    }
    let mut distinct: Vec<char> = body
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | '/' | '+' | '='))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 3 {
        return true;
    }
    body.len() <= WORD_TEST_MAX && entropy::is_placeholder(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_examples_and_placeholder_tokens() {
        for v in KNOWN_EXAMPLES {
            assert!(is_stand_in(v), "{v}");
        }
        let x36 = "X".repeat(36);
        for v in [
            format!("ghp_{x36}"),
            format!("sk_live_{}", "x".repeat(24)),
            format!("AKIA{}", "X".repeat(16)),
            format!("AKIA{}EXAMPLE", "ABCDEFGHI"),
            format!(
                "xoxb-{}-{}-{}",
                "0".repeat(12),
                "0".repeat(13),
                "x".repeat(24)
            ),
            format!("github_pat_{}_{}", "X".repeat(22), "X".repeat(59)),
            format!("glpat-{}", "your-token-here-0000"),
            format!("{}==", "A".repeat(86)),
        ] {
            assert!(is_stand_in(&v), "{v}");
        }
    }

    #[test]
    fn random_tokens_are_not_stand_ins() {
        for v in [
            "ghp_x7Kp2Qm9Lw4Rt8Vzx7Kp2Qm9Lw4Rt8Vz1234",
            "AKIAQ3XK7P2M9L4W8RTV",
            "x7Kp2Qm9Lw4Rt8Vz",
            "",
        ] {
            assert_eq!(is_stand_in(v), v.is_empty(), "{v}");
        }
    }
}
