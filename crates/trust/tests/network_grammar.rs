//! Issue 16: the pipeline file (`grants.network`) and the trust policy
//! (`max-grants.network`) read network patterns with one grammar, so a
//! pattern one accepts the other accepts too, and a pattern both refuse is
//! refused in the same words.

use std::path::Path;

/// How the pipeline file takes `pattern` in `grants.network`: `Ok` or
/// `(message, hint)`.
fn in_pipeline(pattern: &str) -> Result<(), (String, String)> {
    let src = format!(
        "version: 1\nname: demo\nstages:\n  s:\n    uses: oci://ghcr.io/acme/s:1\n    grants: {{ network: [{pattern:?}] }}\n"
    );
    match sluice_pipeline::parse_str(&src, Path::new("sluice.yaml")) {
        Ok(_) => Ok(()),
        Err(e) => Err((e.message(), e.hint().unwrap_or_default().to_owned())),
    }
}

/// How the policy file takes `pattern` in a rule's `max-grants.network`.
fn in_policy(pattern: &str) -> Result<(), (String, String)> {
    let src = format!(
        "rules:\n  - name: capped\n    match: \"plugins/*.wasm\"\n    max-grants: {{ network: [{pattern:?}] }}\n"
    );
    match sluice_trust::Policy::parse(&src, Path::new("policy.yaml")) {
        Ok(_) => Ok(()),
        Err(e) => Err((e.message(), e.hint().unwrap_or_default().to_owned())),
    }
}

#[test]
fn both_files_accept_the_same_patterns() {
    for pattern in [
        "api.example.com:443",
        "EXAMPLE.com:443",
        "*.acme.internal:443",
        "*:*",
        "*:443",
        "127.0.0.1:*",
        "[::1]:8080",
        "localhost:8000-8100",
        "1password.com:443",
    ] {
        assert_eq!(in_pipeline(pattern), Ok(()), "pipeline: {pattern}");
        assert_eq!(in_policy(pattern), Ok(()), "policy: {pattern}");
    }
}

#[test]
fn both_files_refuse_the_same_patterns_in_the_same_words() {
    for pattern in [
        "api.example.com",
        "api.example.com:https",
        "example.com:0",
        "example.com:99999",
        "example.com:9000-8000",
        ":443",
        "a..b:443",
        "a*b:443",
        "*.*.com:443",
        "-a.com:443",
        "10.0.0.300:80",
        "::1:80",
        "[zz]:80",
    ] {
        let Err((message, hint)) = in_pipeline(pattern) else {
            panic!("the pipeline file accepts {pattern}");
        };
        let Err((policy_message, policy_hint)) = in_policy(pattern) else {
            panic!("the policy file accepts {pattern}");
        };
        assert!(
            message.starts_with(&format!("`{pattern}` is not a valid network pattern: ")),
            "{message}"
        );
        // The policy names the rule first, as all its messages do.
        assert_eq!(policy_message, format!("rule `capped`: {message}"));
        assert_eq!(policy_hint, hint, "{pattern}");
    }
}
