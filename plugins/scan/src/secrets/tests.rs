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
    SecretScanner::new(allow, None).unwrap_or_else(|e| panic!("{e}"))
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
    // AWS's documentation example is suppressed and counted (issue 19).
    let r = scanner().scan("f", "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"); // sluice:ignore-secret
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.placeholders, 1);
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
    // An empty user name still carries a password.
    assert_found(
        &format!("REDIS_URL=redis://:{}@cache.internal:6379/0", fake(16)),
        "url-credentials",
    );
    for placeholder in ["${REDIS_PASSWORD}", "$REDIS_PASSWORD", "<password>", "***"] {
        assert_clean(&format!("redis://:{placeholder}@cache.internal:6379"));
        assert_clean(&format!("redis://app:{placeholder}@cache.internal:6379"));
    }
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
    assert_clean("password = \"Passwort\"");
    assert_clean("password = request.POST");
    assert_clean("password = hashedPassword");
    assert_clean("secret: my-tls-secret");
    assert_clean("token: v1.2.3-beta4");
    assert_clean("password = \"12345678\"");
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
    // Changed on purpose (issue 19): this used `password = "hunter2hunter2"`,
    // which is now found as a password whatever its entropy; the threshold
    // applies to tokens and keys.
    let text = "api_token = \"a1b1a1b1c2c2d2d2\"";
    assert_clean(text);
    let lax = SecretScanner::new(Allowlist::default(), Some(2.0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lax.scan("f", text).findings.len(), 1);
    let strict =
        SecretScanner::new(Allowlist::default(), Some(7.0)).unwrap_or_else(|e| panic!("{e}"));
    let key = format!("api_key = \"{}\"", fake(32));
    assert_eq!(strict.scan("f", &key).findings.len(), 0);
    assert_eq!(scanner().scan("f", &key).findings.len(), 1);
}

#[test]
fn passwords_of_any_length_from_eight_are_found() {
    for (line, value) in [
        ("DB_PASSWORD = \"{}\"", "k9#Lm2!q"),
        ("password: {}", "Tr0ub4dor&3"),
        ("\"passwd\": \"{}\"", "s3cr3t$Value9"),
        ("DB_PASS={}", "hunter2hunter2"),
        ("pwd = '{}'", "Zq7-mK2p"),
        ("spring.datasource.password={}", "aB3dE5gH7j"),
        ("$password = \"{}\";", "r4nd0m!Pw"),
    ] {
        assert_found(&line.replace("{}", value), "generic-secret");
    }
    // Seven characters, placeholders, words, code.
    for line in [
        "password = \"k9#Lm2!\"",
        "password: changeme",
        "password: \"<password>\"",
        "password = getpass()",
        "bypass = abcd1234efgh",
        "compass: \"N45E12x9\"",
        "password_hash = \"k9#Lm2!qzz\"",
        "PWD=/home/user/project",
    ] {
        assert_clean(line);
    }
}

#[test]
fn a_32_hex_key_under_the_old_threshold_is_found() {
    // Entropy 3.44 (drawn at random, like about a fifth of random 32-hex
    // keys): under the old fixed 3.5, above the scaled threshold.
    let key = "80e1ed511b327f2f171fc118de91165c";
    let h = entropy::shannon(key);
    assert!(h < LEGACY_ENTROPY_THRESHOLD, "{key} has {h}");
    assert!(h >= entropy::scaled_threshold(key));
    assert_found(&format!("api_key = \"{key}\""), "generic-secret");
}

/// A JWT with the given header and payload JSON.
fn jwt(header: &str, payload: &str) -> String {
    let enc = |s: &str| base64url(s.as_bytes());
    format!("{}.{}.{}", enc(header), enc(payload), fake(43))
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn jwts() {
    let t = jwt(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"sub":"42","exp":1700000000}"#,
    );
    assert_found(&format!("Authorization: Bearer {t}"), "jwt");
    assert_found(&format!("token = \"{t}\""), "jwt");
    assert!(rules::jwt_ok(&t));
    // No `alg`, a payload that is not JSON, a header that is not base64.
    assert_clean(&jwt(r#"{"typ":"JWT"}"#, r#"{"sub":"42"}"#));
    assert_clean(&format!(
        "{}.{}.{}",
        base64url(br#"{"alg":"HS256"}"#),
        base64url(b"eyJ not json at all"),
        fake(43)
    ));
    assert_clean(&format!("eyJ{}.eyJ{}.{}", fake(20), fake(20), fake(43)));
    assert!(rules::base64_decode("a").is_none());
    assert!(rules::base64_decode("ab$d").is_none());
    assert_eq!(rules::base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
    // jwt.io's documentation token is suppressed.
    let r = scanner().scan(
        "f",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", // sluice:ignore-secret
    );
    assert!(r.findings.is_empty());
    assert_eq!(r.placeholders, 1);
}

#[test]
fn gcp_service_account_keys() {
    let body: String = (0..20).map(|_| format!("{}\\n", fake(64))).collect();
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo-123\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"ci@demo-123.iam.gserviceaccount.com\"\n}}\n",
        fake(40).to_ascii_lowercase()
    );
    let found = ids(&json);
    assert_eq!(found, vec!["gcp-service-account"], "{json}");
    // The same escaped PEM outside a service-account file is a private key.
    let env = format!("KEY=\"-----BEGIN PRIVATE KEY-----\\n{body}-----END PRIVATE KEY-----\\n\"");
    assert_found(&env, "private-key");
    // An elided key in a service-account file is not.
    assert_clean("{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n\"}");
}

#[test]
fn azure_storage_keys_and_sas_tokens() {
    let key = format!("{}==", fake(86));
    assert_found(
        &format!("DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={key};EndpointSuffix=core.windows.net"),
        "azure-storage-key",
    );
    // Too short, and the Azurite development key (documented, public).
    assert_clean(&format!("AccountKey={}==", fake(40)));
    assert_clean("UseDevelopmentStorage=true;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="); // sluice:ignore-secret
    let sig = format!("{}%2B{}%3D", fake(20), fake(22));
    assert_found(
        &format!("https://shop.blob.core.windows.net/c/f.zip?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig={sig}"),
        "azure-sas-token",
    );
    assert_found(
        &format!("?sig={sig}&sv=2022-11-02&si=readonly"),
        "azure-sas-token",
    );
    // A `sig=` without the SAS parameters, or too short.
    assert_clean(&format!("https://cdn.internal/a.js?sig={sig}&v=3"));
    assert_clean("https://x.blob.core.windows.net/c?sv=2022-11-02&se=2030-01-01&sig=short");
}

#[test]
fn documentation_examples_and_placeholder_tokens_are_counted() {
    let text = format!(
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nGITHUB_TOKEN=ghp_{}\npassword = \"changeme\"\n", // sluice:ignore-secret
        "X".repeat(36)
    );
    let r = scanner().scan("README.md", &text);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.placeholders, 4);
    // The allow.rs suggestion matches exactly the example key's shape.
    let s = scanner_with(&["^AKIA[0-9A-Z]{9}EXAMPLE$"]);
    assert!(s.scan("f", &format!("AKIA{}", upper(16))).findings.len() == 1);
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
    // Changed on purpose (issue 19): line 2 held AWS's documentation key,
    // which is now suppressed before the allowlist is consulted.
    let key = format!("AKIA{}", upper(16));
    let other: String = format!("AKIA{}", upper(16)).chars().rev().collect();
    let other = format!("AKIA{}", &other[..16]);
    let text = format!("a = {key}\nb = {other}\n");
    let pattern = format!("{}$", &other[12..]);
    let s = scanner_with(&["conf/x.env:aws-access-key-id:1", &pattern]);
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

#[test]
fn hostile_and_malformed_inputs_are_not_findings() {
    // JWT look-alikes: four parts, a header that is a JSON array, bytes
    // that are not UTF-8, a header whose `alg` is not a string.
    let sig = fake(43);
    assert!(!rules::jwt_ok(&format!("a.b.c.{sig}")));
    assert!(!rules::jwt_ok(&format!(
        "{}.{}.{sig}",
        base64url(b"[\"alg\"]"),
        base64url(b"{}")
    )));
    assert!(!rules::jwt_ok(&format!(
        "{}.{}.{sig}",
        base64url(&[0xff, 0xfe, 0x7b, 0x7d]),
        base64url(b"{}")
    )));
    assert!(!rules::jwt_ok(&format!(
        "{}.{}.{sig}",
        base64url(br#"{"alg":7}"#),
        base64url(b"{}")
    )));
    // Terraform names the resource type, not a key file.
    let tf = "resource \"google_service_account\" \"ci\" {\n  account_id = \"ci\"\n}\n".repeat(500);
    assert_clean(&tf);
    // Many keywords on one long line, and a `sig=` flood.
    let flood = "password=&".repeat(10_000);
    assert_clean(&flood);
    assert_clean(&format!("?sv=1&{}", "sig=&".repeat(10_000)));
    // A keyword-anchored value of 300 characters is over the limit.
    assert_clean(&format!("password = \"{}\"", fake(300)));
    // Sixty-four KiB of `"service_account"` without a private key.
    let many = "{\"type\": \"service_account\"}\n".repeat(2_500);
    assert_clean(&many);
}

#[test]
fn code_and_stand_in_words_seen_in_real_crates_are_not_findings() {
    // Each line was a false positive on a crates.io source mirror.
    assert_clean("const char* test_password = \"test_password\\n\";");
    assert_clean("    PrivateKey:                     &rsa2048Key,");
    assert_clean("pub static kCFStreamPropertySOCKSPassword: CFStringRef;");
    // ...while a real value followed by an escape is still found.
    assert_found(
        "const char* db_password = \"k9#Lm2!qzz\\n\";",
        "generic-secret",
    );
    assert_clean("let mut tokens = \"tuple.0.0\".parse::<TokenStream>().unwrap();");
    assert_clean("credentials: yegor256/home#assets/crates-credentials");
    assert_clean("    pub credentials: MI_UserCredentials_0,");
    assert_clean("    Token: PULONG64,");
    assert_clean("//!   force_pass: true/false");
    assert_clean("\"href\": \"javascript://:bowser@x/\",");
    assert_clean("        password: \"CircleOfLife\",");
    // A base64 key with `/` is not a path; a short token is code.
    let v = fake(39);
    assert_found(
        &format!("secret_key = \"{}/{}\"", &v[..20], &v[20..]),
        "generic-secret",
    );
    assert_clean("api_token = \"a1b2c3d4e5\"");
}

#[test]
fn key_names_that_are_cursors_or_types_are_not_credentials() {
    let v = "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC";
    for line in [
        format!("\"NextToken\": \"{v}\","),
        format!("\"nextPageToken\": \"{v}\","),
        format!("\"ClientToken\": \"{v}\","),
        format!("output_token = \"{v}\""),
        format!("\"AWS::IAM::AccessKey\": \"{v}\","),
        "private_key: x25519.X25519PrivateKey".to_string(),
        "    private_key: PKCS7PrivateKeyTypes,".to_string(),
        "ACCESS_KEY = 'AWSAccessKeyId'".to_string(),
        "\"input_token\": \"ExclusiveStartShardId\",".to_string(),
        "\"IAMUserChangePassword\": \"arn:aws:iam::aws:policy/IAMUserChangePassword\",".to_string(),
        "report({ type: this.passed ? \"test:pass\" : \"test:fail\" });".to_string(),
        "\"token\": \"ACEGmnoq#1rstu2...BDFH3vxwy!4hlm!#5\",".to_string(),
    ] {
        assert_clean(&line);
    }
    // Credential tokens keep being found.
    assert_found(&format!("\"SessionToken\": \"{v}\","), "generic-secret");
    assert_found(&format!("refresh_token = \"{v}\""), "generic-secret");
    assert_found("DB_PASSWORD=Winter2024", "generic-secret");
    // A password may hold dots; a dotted identifier is code only for keys.
    assert_found("smtp_pwd=Sf6wST.DHE8v", "generic-secret");
}

#[test]
fn random_keys_under_token_names_are_found_at_least_99_percent() {
    // The word and identifier filters must not eat random keys.
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let alphabets: [&[u8]; 3] = [
        b"0123456789abcdef",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    ];
    let s = scanner();
    for alphabet in alphabets {
        let (mut found, trials) = (0, 500);
        for i in 0..trials {
            let n = 16 + i % 49;
            let v: String = (0..n)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            if !s
                .scan("f", &format!("api_key = \"{v}\""))
                .findings
                .is_empty()
            {
                found += 1;
            }
        }
        assert!(found * 100 >= trials * 99, "{found}/{trials}");
    }
}

#[test]
fn paths_are_not_secrets_but_keys_starting_with_a_slash_are() {
    assert_clean("secret: /run/secrets/db_password");
    assert_clean("password = ./secrets/db.txt");
    assert_clean("api_key: ~/.config/api.key");
    assert_clean("secret = \"/etc/app/secret.key\"");
    assert_found(
        &format!("api_key = \"/{}+{}=\"", fake(20), fake(21)),
        "generic-secret",
    );
    assert_found(&format!("api_key = \"/{}\"", fake(31)), "generic-secret");
}
