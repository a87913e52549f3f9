//! Rule tests: a true positive and near-misses for every rule. Fake
//! secrets are assembled at run time so that this source file does not
//! itself trip a secret scanner.

use super::*;

const ALNUM: &[u8] = b"aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC";

/// `n` mixed-case alphanumerics, deterministic and high-entropy.
fn fake(n: usize) -> String {
    (0..n)
        .map(|i| ALNUM[(i * 7 + i / ALNUM.len()) % ALNUM.len()] as char)
        .collect()
}

fn upper(n: usize) -> String {
    fake(n).to_ascii_uppercase()
}

fn scanner() -> SecretScanner {
    scanner_with(&[])
}

fn scanner_with(allow: &[&str]) -> SecretScanner {
    let entries: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let allow = Allowlist::new(&entries).unwrap_or_else(|e| panic!("{e}"));
    SecretScanner::new(allow, DEFAULT_ENTROPY_THRESHOLD).unwrap_or_else(|e| panic!("{e}"))
}

/// Rule ids found in `text`.
fn ids(text: &str) -> Vec<&'static str> {
    scanner()
        .scan("f.txt", text)
        .findings
        .iter()
        .map(|f| f.rule_id)
        .collect()
}

fn assert_found(text: &str, rule: &str) {
    let found = ids(text);
    assert_eq!(
        found,
        vec![rule],
        "expected exactly one `{rule}` in {text:?}"
    );
}

fn assert_clean(text: &str) {
    let found = ids(text);
    assert!(
        found.is_empty(),
        "expected no finding in {text:?}, got {found:?}"
    );
}

#[test]
fn all_patterns_compile() {
    assert_eq!(scanner().rules.len(), RULES.len());
}

#[test]
fn aws_access_key_ids() {
    assert_found(&format!("key = AKIA{}", upper(16)), "aws-access-key-id");
    assert_found(&format!("ASIA{}", upper(16)), "aws-access-key-id");
    assert_found(
        "aws_access_key_id=AKIAIOSFODNN7EXAMPLE", // sluice:ignore-secret
        "aws-access-key-id",
    );
    // Too short, too long, lower case, wrong prefix.
    assert_clean(&format!("AKIA{}", upper(8)));
    assert_clean(&format!("AKIA{}", upper(17)));
    assert_clean(&format!("akia{}", upper(16).to_ascii_lowercase()));
    assert_clean(&format!("AKIB{}", upper(16)));
}

#[test]
fn aws_secret_access_keys() {
    let key = format!("{}/{}+{}", fake(13), fake(13), fake(12));
    assert_eq!(key.len(), 40);
    assert_found(
        &format!("aws_secret_access_key = {key}"),
        "aws-secret-access-key",
    );
    assert_found(
        &format!("AWS_SECRET_KEY: \"{key}\""),
        "aws-secret-access-key",
    );
    // 39 and 41 characters are not AWS secret keys (and the generic rule
    // does not pick them up because the key name is AWS's).
    let short = &key[..39];
    assert!(!ids(&format!("aws_secret_access_key = {short}")).contains(&"aws-secret-access-key"));
    let long = format!("{key}A");
    assert!(!ids(&format!("aws_secret_access_key = {long}")).contains(&"aws-secret-access-key"));
}

#[test]
fn github_tokens() {
    for prefix in ["ghp", "gho", "ghu", "ghs", "ghr"] {
        assert_found(&format!("{prefix}_{}", fake(36)), "github-token");
    }
    assert_found(
        &format!("GH_TOKEN=github_pat_{}_{}", fake(22), fake(59)),
        "github-fine-grained-token",
    );
    // Wrong length either way, unknown prefix, fine-grained with a short tail.
    assert_clean(&format!("ghp_{}", fake(35)));
    assert_clean(&format!("ghp_{}", fake(37)));
    assert_clean(&format!("ghx_{}", fake(36)));
    assert_clean(&format!("github_pat_{}_{}", fake(22), fake(40)));
}

#[test]
fn gitlab_tokens() {
    assert_found(&format!("glpat-{}", fake(20)), "gitlab-token");
    assert_found(
        &format!("CI_TOKEN: glpat-{}-{}", fake(10), fake(12)),
        "gitlab-token",
    );
    assert_clean("glpat-short");
    assert_clean(&format!("xglpat-{}", fake(20)));
}

#[test]
fn slack_tokens_and_webhooks() {
    assert_found(
        &format!("xoxb-123456789012-1234567890123-{}", fake(24)), // sluice:ignore-secret
        "slack-token",
    );
    assert_found(
        &format!(
            "xoxp-1234567890-1234567890-1234567890-{}", // sluice:ignore-secret
            fake(32).to_ascii_lowercase()
        ),
        "slack-token",
    );
    assert_found(
        &format!(
            "url = \"https://hooks.slack.com/services/T{}/B{}/{}\"",
            upper(8),
            upper(8),
            fake(24)
        ),
        "slack-webhook",
    );
    assert_clean("xoxb-not-a-real-token");
    assert_clean("xoxq-123456789012-abcdefghijkl");
    assert_clean("see https://hooks.slack.com/services/ for setup");
    assert_clean("https://hooks.slack.com/services/T000/B000/XXXX");
}

#[test]
fn stripe_keys() {
    assert_found(
        &format!("STRIPE_KEY={}", format_args!("sk_live_{}", fake(24))),
        "stripe-secret-key",
    );
    assert_found(&format!("rk_live_{}", fake(30)), "stripe-secret-key");
    assert_clean(&format!("sk_test_{}", fake(24)));
    assert_clean("sk_live_short1234");
}

#[test]
fn google_api_keys() {
    assert_found(
        &format!("const key = \"AIza{}\";", fake(35)),
        "google-api-key",
    );
    assert_clean(&format!("AIza{}", fake(34)));
    assert_clean(&format!("AIza{}", fake(36)));
}

#[test]
fn private_key_blocks() {
    let body = format!("{}\n{}\n{}", fake(64), fake(64), fake(20));
    let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n");
    assert_found(&pem, "private-key");
    let r = scanner().scan("id_rsa", &pem);
    assert_eq!((r.findings[0].line, r.findings[0].column), (2, 1));
    assert_eq!(r.findings[0].preview, format!("{}…", &body[..4]));
    let openssh =
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----");
    assert_found(&openssh, "private-key");
    let pkcs8 = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
    assert_found(&pkcs8, "private-key");
    let encrypted = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\n{body}\n-----END RSA PRIVATE KEY-----"
    );
    assert_found(&encrypted, "private-key");
    // A public key, an elided example, and a block with no END.
    assert_clean(&format!(
        "-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----"
    ));
    assert_clean("-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----");
    assert_clean(&format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n"));
}

#[test]
fn credentials_in_urls() {
    assert_found(
        &format!(
            "DATABASE_URL=postgres://app:{}@db.internal:5432/app",
            fake(14)
        ),
        "url-credentials",
    );
    assert_found(
        "amqp://worker:Tr4ck-9xQ!z@mq.prod.corp/vhost", // sluice:ignore-secret
        "url-credentials",
    );
    assert_clean("https://user:password@example.com/path");
    assert_clean("postgres://user:${DB_PASSWORD}@db:5432/app");
    assert_clean("postgres://postgres:postgres@localhost:5432/app");
    assert_clean("https://github.com/org/repo.git");
    assert_clean("redis://:@cache:6379");
    assert_clean("redis://foo:bar@somehost:6379/0");
    assert_clean("Proxy::all(\"https://Aladdin:opensesame@localhost:8887\")");
}

#[test]
fn generic_high_entropy_assignments() {
    let value = "x7Kp2Qm9Lw4Rt8Vz";
    assert_found(&format!("db_password = \"{value}\""), "generic-secret");
    assert_found(&format!("\"client_secret\": \"{value}\""), "generic-secret");
    assert_found(&format!("API_KEY={value}"), "generic-secret");
    assert_found(&format!("auth_token := '{value}'"), "generic-secret");
    assert_found(&format!("secret_key: {value}"), "generic-secret");
    // Placeholders, references, low entropy, prose, URLs, code.
    assert_clean("password = \"changeme\"");
    assert_clean("DB_PASSWORD=changeme");
    assert_clean("api_token = \"${TOKEN}\"");
    assert_clean("token: ${{ secrets.DEPLOY_TOKEN }}");
    assert_clean("password: \"xxxxxxxxxxxx\"");
    assert_clean("secret = \"<your-secret-here>\"");
    assert_clean("password = \"aaaaaaaaaaaaaaaa\"");
    assert_clean("password: \"Please enter your password\"");
    assert_clean("token_url = \"https://oauth2.example.com/token\"");
    assert_clean("token: process.env.TOKEN");
    assert_clean("password = os.environ[\"DB_PASSWORD\"]");
    assert_clean("tokenizer = \"bert-base-uncased-v2\"");
    assert_clean("max_tokens = 4096");
    assert_clean("token = generateTokenForUser");
    assert_clean("password = \"hunter2\"");
    // Code: type annotations, paths, constants, field access.
    assert_clean("    secret: Arc<Key2>,");
    assert_clean("let tokens = proc_macro2::TokenStream::new();");
    assert_clean("    ResourceReturnTypeToken: D3D10_SB_RESOURCE_RETURN_TYPE,");
    assert_clean("            or1_token: self.or1_token.clone(),");
    assert_clean("    password: Zeroizing<Vec<u8>>,");
    assert_clean("let secret_key = p256::SecretKey::from_pkcs8_der(DER).unwrap();");
    assert_clean("token = self.token2");
    assert_clean("    Handshake => \"CLIENT_HANDSHAKE_TRAFFIC_SECRET_0\",");
    // ...but a bare token followed by a comment is still a value.
    assert_found(
        &format!("API_KEY={value}  # rotate monthly"),
        "generic-secret",
    );
    assert_found(&format!("  api_key: {value},"), "generic-secret");
}

#[test]
fn the_entropy_threshold_is_configurable() {
    let text = "password = \"hunter2hunter2\"";
    assert_clean(text);
    let lax = SecretScanner::new(Allowlist::default(), 2.0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lax.scan("f", text).findings.len(), 1);
}

#[test]
fn specific_rules_win_over_generic_ones() {
    let token = format!("ghp_{}", fake(36));
    assert_found(&format!("github_token = \"{token}\""), "github-token");
    let key = format!("AKIA{}", upper(16));
    assert_found(&format!("access_key = \"{key}\""), "aws-access-key-id");
}

#[test]
fn inline_ignore_comments_suppress_the_line_only() {
    let key = format!("AKIA{}", upper(16));
    let text = format!(
        "# example for the docs\nid = \"{key}\"  # sluice:ignore-secret\nother = \"{key}\"\n"
    );
    let r = scanner().scan("docs/x.py", &text);
    assert_eq!(r.ignored_inline, 1);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].line, 3);
}

#[test]
fn allowlist_by_fingerprint_and_by_pattern() {
    let key = format!("AKIA{}", upper(16));
    let text = format!("a = {key}\nb = AKIAIOSFODNN7EXAMPLE\n"); // sluice:ignore-secret
    let s = scanner_with(&["conf/x.env:aws-access-key-id:1", "EXAMPLE$"]);
    let r = s.scan("conf/x.env", &text);
    assert_eq!(r.findings.len(), 0, "{:?}", r.findings);
    assert_eq!(r.allowlisted, 2);
    let s = scanner_with(&["conf/x.env:aws-access-key-id:2"]);
    let r = s.scan("conf/x.env", &text);
    assert_eq!(r.findings.len(), 1);
    // Line 2 is allowed; line 1 is still reported.
    assert_eq!(r.findings[0].fingerprint, "conf/x.env:aws-access-key-id:1");
}

#[test]
fn positions_are_one_based_code_points() {
    let key = format!("AKIA{}", upper(16));
    let text = format!("first line\n  é = \"{key}\"\n");
    let r = scanner().scan("p", &text);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!((f.line, f.column), (2, 8));
    assert_eq!(f.preview, "AKIA…");
    assert_eq!(f.fingerprint, "p:aws-access-key-id:2");
}

#[test]
fn findings_never_hold_the_secret() {
    let secrets = [
        format!("ghp_{}", fake(36)),
        format!("sk_live_{}", fake(30)),
        "x7Kp2Qm9Lw4Rt8Vz".to_string(),
    ];
    let text = format!(
        "a = {}\nb = {}\npassword = \"{}\"\nurl = https://u:{}@db.prod.corp/x\n",
        secrets[0], secrets[1], secrets[2], secrets[2]
    );
    let r = scanner().scan("f", &text);
    assert_eq!(r.findings.len(), 4, "{:?}", r.findings);
    let dump = format!("{:?}", r.findings);
    for s in &secrets {
        assert!(!dump.contains(s.as_str()), "{dump} contains {s}");
        assert!(!dump.contains(&s[..8]), "{dump} contains 8 chars of {s}");
    }
}

#[test]
fn redaction_shows_at_most_four_characters() {
    assert_eq!(redact("ghp_abcdefghijklmnop"), "ghp_…");
    assert_eq!(redact("abcdefghijkl"), "abcd…");
    assert_eq!(redact("abcdefgh"), "ab…");
    assert_eq!(redact("a"), "…");
    assert_eq!(redact("ab\ncdefghijklmn"), "ab…");
}
