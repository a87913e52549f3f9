//! The secrets corpus: planted secrets and near misses, generated at test
//! time, scanned by sluice's detector (and by `detect-secrets` when it is
//! on `PATH`), with precision and recall printed and sluice's asserted.
//!
//! The shapes follow the public rule sets' own test fixtures (gitleaks'
//! `cmd/generate/config/rules/*` true/false positives, detect-secrets'
//! `test_data/` and plugin tests): AWS key pairs, GitHub, GitLab, Slack,
//! Stripe and Google keys, PEM and GCP service-account keys, JWTs, Azure
//! storage keys and SAS URLs, credentials in URLs, keyword-anchored
//! passwords and hex/base64 API keys. Every value is drawn from a seeded
//! generator when the test runs, so no live-looking token is committed;
//! the only literal values are the vendors' published documentation
//! examples, which are near misses.
//!
//! Scoring is per planted secret: a finding on one of its lines is a true
//! positive (several findings on the same secret count once); a finding on
//! any other line is a false positive.
//!
//! Run with `cargo test -p sluice-plugin-scan --test secrets_corpus --
//! --nocapture` to see the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_plugin_scan::allow::Allowlist;
use sluice_plugin_scan::secrets::SecretScanner;

/// splitmix64: small, seeded, good enough to draw test values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        self.from(ALNUM, n)
    }

    fn upper(&mut self, n: usize) -> String {
        self.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
    }

    fn hex(&mut self, n: usize) -> String {
        self.from(b"0123456789abcdef", n)
    }

    fn b64(&mut self, n: usize) -> String {
        self.from(B64, n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A password as a password policy would make one: 8–16 characters
    /// of letters, digits and symbols, with at least one digit.
    fn password(&mut self) -> String {
        let n = self.range(8, 16);
        let mut p = self.from(PASSWORD, n - 1);
        let at = self.below(n);
        p.insert(at, (b'0' + self.below(10) as u8) as char);
        p
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        )
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PASSWORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%^&*-_.~+";

fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        B64
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// One corpus file being built: its lines, the planted secrets (kind and
/// 1-based line range) and the near misses (kind and line).
struct File {
    path: String,
    lines: Vec<String>,
    planted: Vec<(&'static str, usize, usize)>,
    near: Vec<(&'static str, usize)>,
}

impl File {
    fn new(path: &str) -> File {
        File {
            path: path.to_string(),
            lines: Vec::new(),
            planted: Vec::new(),
            near: Vec::new(),
        }
    }

    fn text(&mut self, line: impl Into<String>) -> &mut File {
        for l in line.into().split('\n') {
            self.lines.push(l.to_string());
        }
        self
    }

    /// Adds `block` (one or more lines) holding one secret of `kind`.
    fn secret(&mut self, kind: &'static str, block: impl Into<String>) -> &mut File {
        let first = self.lines.len() + 1;
        self.text(block);
        self.planted.push((kind, first, self.lines.len()));
        self
    }

    /// Adds one line that looks like a secret but is not.
    fn near(&mut self, kind: &'static str, line: impl Into<String>) -> &mut File {
        self.text(line);
        self.near.push((kind, self.lines.len()));
        self
    }
}

fn pem_body(rng: &mut Rng, lines: usize) -> Vec<String> {
    (0..lines).map(|_| rng.b64(64)).collect()
}

fn jwt(rng: &mut Rng) -> String {
    let alg = ["HS256", "RS256", "ES256"][rng.below(3)];
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
    let payload = format!(
        r#"{{"sub":"{}","iss":"https://auth.{}.internal","iat":{},"exp":{}}}"#,
        rng.range(1000, 999_999),
        rng.alnum(6).to_ascii_lowercase(),
        1_700_000_000 + rng.below(1_000_000),
        1_800_000_000 + rng.below(1_000_000)
    );
    let sig_len = if alg == "RS256" { 256 } else { 32 };
    let sig = rng.bytes(sig_len);
    format!(
        "{}.{}.{}",
        base64(header.as_bytes(), true),
        base64(payload.as_bytes(), true),
        base64(&sig, true)
    )
}

fn sas_sig(rng: &mut Rng) -> String {
    base64(&rng.bytes(32), false)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// Builds the corpus.
fn corpus(seed: u64) -> Vec<File> {
    let mut rng = Rng(seed);
    let r = &mut rng;
    let mut files = Vec::new();
    let aws_doc_id = ["AKIA", "IOSFODNN7", "EXAMPLE"].concat();
    let aws_doc_secret = ["wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY"].concat();

    // Cloud credentials in env files and INI.
    for i in 0..3 {
        let mut f = File::new(&format!("deploy/env/prod-{i}.env"));
        f.text("# production environment")
            .secret(
                "aws-key-id",
                format!("AWS_ACCESS_KEY_ID=AKIA{}", r.upper(16)),
            )
            .secret("aws-secret", format!("AWS_SECRET_ACCESS_KEY={}", r.b64(40)))
            .near("placeholder", "API_TOKEN=${API_TOKEN}")
            .secret("password", format!("DB_PASSWORD={}", r.password()))
            .near(
                "version",
                format!("APP_VERSION={}.{}.{}", r.below(9), r.below(30), r.below(30)),
            )
            .text("LOG_LEVEL=info");
        files.push(f);
    }
    let mut f = File::new("home/.aws/credentials");
    f.text("[default]")
        .secret(
            "aws-key-id",
            format!("aws_access_key_id = ASIA{}", r.upper(16)),
        )
        .secret(
            "aws-secret",
            format!("aws_secret_access_key = {}", r.b64(40)),
        )
        .text("region = eu-west-1");
    files.push(f);

    // Source code with vendor tokens.
    let mut f = File::new("src/clients.py");
    f.text("import os\n")
        .secret("github", format!("GITHUB_TOKEN = \"ghp_{}\"", r.alnum(36)))
        .secret("github", format!("bot = Github(\"gho_{}\")", r.alnum(36)))
        .secret(
            "gitlab",
            format!(
                "GITLAB = 'glpat-{}'",
                r.from(
                    b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789_-",
                    20
                )
            ),
        )
        .secret(
            "slack",
            format!(
                "slack = WebClient(token=\"xoxb-{}-{}-{}\")",
                r.range(100_000_000_000, 999_999_999_999),
                r.range(1_000_000_000_000, 9_999_999_999_999),
                r.alnum(24)
            ),
        )
        .secret(
            "stripe",
            format!("stripe.api_key = \"sk_live_{}\"", r.alnum(24)),
        )
        .near("reference", "SECRET_KEY = os.environ[\"SECRET_KEY\"]")
        .near("code", "password = request.form[\"password\"]")
        .near(
            "stripe-test",
            format!("TEST_KEY = \"sk_test_{}\"", r.alnum(24)),
        )
        .near("uuid", format!("REQUEST_ID = \"{}\"", r.uuid()));
    files.push(f);
    let mut f = File::new("web/src/config.js");
    f.text("// runtime configuration")
        .secret(
            "google",
            format!(
                "const mapsKey = \"AIza{}\";",
                r.from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                    35
                )
            ),
        )
        .secret(
            "slack-webhook",
            format!(
                "const hook = \"https://hooks.slack.com/services/T{}/B{}/{}\";",
                r.upper(8),
                r.upper(10),
                r.alnum(24)
            ),
        )
        .secret("github", format!("const ci = \"ghs_{}\";", r.alnum(36)))
        .secret(
            "github-fine",
            format!(
                "const pat = \"github_pat_{}_{}\";",
                r.alnum(22),
                r.alnum(59)
            ),
        )
        .near("reference", "const token = process.env.API_TOKEN;")
        .near(
            "placeholder",
            format!("const example = \"ghp_{}\";", "X".repeat(36)),
        )
        .near("placeholder", "const apiKey = \"<your-api-key>\";")
        .near("uuid", format!("const sessionId = \"{}\";", r.uuid()))
        .near("git-sha", format!("const commit = \"{}\";", r.hex(40)));
    files.push(f);
    let mut f = File::new("scripts/ci.sh");
    f.text("#!/bin/sh\nset -eu")
        .secret("github", format!("export GH_TOKEN=ghr_{}", r.alnum(36)))
        .secret("slack", format!("curl -H 'Authorization: Bearer xoxp-{}-{}-{}-{}' https://slack.com/api/chat.postMessage", r.range(1_000_000_000, 9_999_999_999u64 as usize), r.range(1_000_000_000, 9_999_999_999u64 as usize), r.range(1_000_000_000, 9_999_999_999u64 as usize), r.hex(32)))
        .secret("gitlab", format!("git push https://oauth2:glpat-{}@gitlab.com/g/p.git", r.alnum(20)))
        .near("placeholder", "export SLACK_TOKEN=\"$SLACK_TOKEN\"")
        .near("git-sha", format!("git checkout {}", r.hex(40)));
    files.push(f);

    // Private keys and GCP service accounts.
    for (i, kind) in ["RSA ", "OPENSSH ", "EC ", ""].iter().enumerate() {
        let mut f = File::new(&format!("keys/key-{i}.pem"));
        let n = if kind == &"EC " { 3 } else { 25 };
        let block = format!(
            "-----BEGIN {kind}PRIVATE KEY-----\n{}\n{}\n-----END {kind}PRIVATE KEY-----",
            pem_body(r, n).join("\n"),
            r.b64(20)
        );
        f.secret("private-key", block);
        files.push(f);
    }
    let mut f = File::new("keys/public.pem");
    f.text("-----BEGIN PUBLIC KEY-----");
    for l in pem_body(r, 6) {
        f.near("public-key", l);
    }
    f.text("-----END PUBLIC KEY-----");
    files.push(f);
    for i in 0..3 {
        let project = format!("shop-{}", r.alnum(6).to_ascii_lowercase());
        let body: String = pem_body(r, 25).iter().map(|l| format!("{l}\\n")).collect();
        let json = format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"{project}\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}{}==\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"ci@{project}.iam.gserviceaccount.com\",\n  \"client_id\": \"{}\",\n  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n  \"token_uri\": \"https://oauth2.googleapis.com/token\"\n}}",
            r.hex(40),
            r.b64(18),
            r.range(100_000_000_000, 999_999_999_999)
        );
        let mut f = File::new(&format!("gcp/sa-{i}.json"));
        f.secret("gcp-service-account", json);
        files.push(f);
    }

    // JWTs: bearer tokens in HTTP files, tests, shell.
    let mut f = File::new("api/requests.http");
    for _ in 0..3 {
        let t = jwt(r);
        f.text("GET https://api.shop.internal/v1/orders")
            .secret("jwt", format!("Authorization: Bearer {t}"))
            .text("");
    }
    files.push(f);
    let mut f = File::new("tests/auth_test.go");
    f.text("package auth\n")
        .secret("jwt", format!("const adminToken = \"{}\"", jwt(r)))
        .secret("jwt", format!("var refresh = `{}`", jwt(r)))
        .near("uuid", format!("const tenant = \"{}\"", r.uuid()));
    files.push(f);

    // Azure.
    let mut f = File::new("infra/appsettings.json");
    f.text("{").text("  \"ConnectionStrings\": {");
    for i in 0..3 {
        f.secret(
            "azure-storage",
            format!(
                "    \"Blob{i}\": \"DefaultEndpointsProtocol=https;AccountName=shop{};AccountKey={}==;EndpointSuffix=core.windows.net\",",
                r.alnum(6).to_ascii_lowercase(),
                r.b64(86)
            ),
        );
    }
    f.near("docs-example", "    \"Dev\": \"UseDevelopmentStorage=true;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==\"")
        .text("  },");
    for i in 0..3 {
        f.secret(
            "azure-sas",
            format!(
                "  \"Export{i}\": \"https://shop.blob.core.windows.net/exports/{}.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2031-0{}-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig={}\",",
                r.alnum(8),
                r.range(1, 9),
                sas_sig(r)
            ),
        );
    }
    f.near(
        "url",
        "  \"Cdn\": \"https://cdn.shop.internal/app.js?v=3&sig=none\"",
    )
    .text("  \"Logging\": { \"LogLevel\": { \"Default\": \"Information\" } }")
    .text("}");
    files.push(f);

    // Credentials in URLs, with and without a user.
    let url_pw = |r: &mut Rng| {
        r.from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~",
            16,
        )
    };
    let mut f = File::new("deploy/docker-compose.yml");
    f.text("services:\n  app:\n    image: shop:latest\n    environment:")
        .secret(
            "url-credentials",
            format!(
                "      DATABASE_URL: postgres://shop:{}@db.internal:5432/shop",
                url_pw(r)
            ),
        )
        .secret(
            "url-credentials",
            format!(
                "      REDIS_URL: redis://:{}@cache.internal:6379/0",
                url_pw(r)
            ),
        )
        .secret(
            "url-credentials",
            format!(
                "      AMQP_URL: amqp://worker:{}@mq.internal/vhost",
                url_pw(r)
            ),
        )
        .near(
            "placeholder",
            "      CACHE_URL: redis://:${REDIS_PASSWORD}@cache:6379",
        )
        .near(
            "placeholder",
            "      DB2_URL: postgres://app:<password>@db:5432/app",
        )
        .near("placeholder", "      MQ_URL: amqp://guest:***@mq:5672")
        .near(
            "docs-example",
            "      DOCS_URL: https://user:password@example.com/path",
        )
        .near(
            "placeholder",
            "      LOCAL_URL: postgres://postgres:postgres@localhost:5432/dev",
        )
        .near(
            "placeholder",
            "      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
        );
    files.push(f);
    let mut f = File::new("app/settings.ini");
    f.text("[cache]")
        .secret(
            "url-credentials",
            format!("url = rediss://:{}@redis.prod.internal:6380", url_pw(r)),
        )
        .secret(
            "url-credentials",
            format!(
                "broker = mongodb+srv://svc:{}@cluster0.mongo.internal/app",
                url_pw(r)
            ),
        );
    files.push(f);

    // Keyword-anchored passwords in every syntax: the issue's 21 random
    // `DB_PASSWORD = "…"` and friends. `{P}`/`{p}` is a service name, so
    // that no file repeats a key (a YAML or INI reader keeps only the
    // last of duplicate keys).
    let forms: &[(&str, &str)] = &[
        ("app/db.py", "{P}_PASSWORD = \"{}\""),
        ("app/config.yml", "{p}_password: \"{}\""),
        ("app/config2.yml", "{p}:\n  password: {}"),
        ("app/settings.json", "  \"{p}Password\": \"{}\","),
        ("app/.env", "{P}_PASSWORD={}"),
        ("app/db.ini", "[{p}]\npasswd = {}"),
        (
            "app/Main.java",
            "    private static final String {P}_PASSWORD = \"{}\";",
        ),
        ("app/main.go", "\t{p}Password := \"{}\""),
        ("app/app.properties", "{p}.datasource.password={}"),
        ("app/config.php", "    '{p}_password' => '{}',"),
        ("app/db.rb", "{p}:\n  password: '{}'"),
        ("app/pg.env", "{P}_PGPASSWORD={}"),
        ("app/smtp.toml", "[{p}]\nsmtp_pass = \"{}\""),
        ("app/ftp.cfg", "{p}_pwd={}"),
    ];
    let services = ["db", "smtp"];
    let mut by_file: BTreeMap<&str, File> = BTreeMap::new();
    for i in 0..28 {
        let (path, form) = forms[i % forms.len()];
        let svc = services[i / forms.len()];
        let f = by_file.entry(path).or_insert_with(|| File::new(path));
        let line = form
            .replace("{P}", &svc.to_ascii_uppercase())
            .replace("{p}", svc)
            .replace("{}", &r.password());
        f.secret("password", line);
    }
    // Password near misses in the same files.
    let near_pw: &[(&str, &str)] = &[
        ("app/db.py", "DB_PASSWORD = os.environ.get(\"DB_PASSWORD\")"),
        (
            "app/config.yml",
            "  password: \"{{ .Values.db.password }}\"",
        ),
        ("app/config2.yml", "  admin_password: changeme"),
        ("app/settings.json", "  \"password\": \"xxxxxxxx\","),
        ("app/.env", "SMTP_PASSWORD="),
        ("app/db.ini", "password = ********"),
        ("app/Main.java", "    String password = user.getPassword();"),
        ("app/main.go", "\tpassword := os.Getenv(\"DB_PASSWORD\")"),
        ("app/db.rb", "  password: <%= ENV['DB_PASSWORD'] %>"),
        ("app/config.php", "    'password' => env('DB_PASSWORD'),"),
        ("app/smtp.toml", "smtp_pass = \"your-password-here\""),
        ("app/i18n.json", "  \"password\": \"Passwort\","),
        (
            "app/i18n.json",
            "  \"password_hint\": \"Mindestens 8 Zeichen\",",
        ),
        (
            "app/forms.py",
            "    password = forms.CharField(widget=forms.PasswordInput)",
        ),
        ("app/forms.py", "    password_confirm = \"12345678\""),
    ];
    for (path, line) in near_pw {
        let f = by_file.entry(path).or_insert_with(|| File::new(path));
        f.near("password-placeholder", *line);
    }
    files.extend(by_file.into_values());

    // API keys, tokens and secrets by keyword: hex and base64.
    let mut f = File::new("services/keys.yaml");
    for i in 0..8 {
        let svc = ["billing", "search"][i / 4];
        let line = match i % 4 {
            0 => format!("{svc}_api_key: \"{}\"", r.hex(32)),
            1 => format!("{svc}_client_secret: {}", r.hex(40)),
            2 => format!("{svc}_auth_token: \"{}\"", r.b64(32)),
            _ => format!("{svc}_secret_key: '{}'", r.alnum(40)),
        };
        f.secret("keyword-key", line);
    }
    f.near("placeholder", "api_key: YOUR_API_KEY")
        .near("placeholder", "other_api_token: \"<your-token>\"")
        .near("placeholder", format!("secret: \"{}\"", "x".repeat(32)))
        .near("version", "token_version: \"2.1.0\"")
        .near("word", "tls_secret: my-tls-secret")
        .near("uuid", format!("tenant_id: {}", r.uuid()))
        .near("uuid", format!("subscription_id: \"{}\"", r.uuid()))
        .near(
            "placeholder",
            "demo_api_key: \"0123456789abcdef0123456789abcdef\"",
        )
        .near("word", "grant_token: \"refresh_token\"")
        .near(
            "reference",
            "db_secret: \"projects/shop-prod/secrets/db-password/versions/latest\"",
        )
        .near("placeholder", "ci_token: \"${{ secrets.GITHUB_TOKEN }}\"")
        .near("reference", "mail_api_key: !ENV ${MAIL_API_KEY}")
        .near("code", "sms_api_key = get_secret(\"sms/api-key\")")
        .near("code", "deploy_token: Optional[str] = None")
        .near("code", "signing_secret = settings.SIGNING_SECRET")
        .near("version", "token_schema: v2.3.1")
        .near("word", "auth_token_header: \"X-Auth-Token\"");
    files.push(f);
    let mut f = File::new("services/keys.env");
    for svc in ["PAYMENT", "MAPS", "MAIL", "SMS"] {
        f.secret("keyword-key", format!("{svc}_API_KEY={}", r.hex(32)));
    }
    for svc in ["SESSION", "COOKIE"] {
        f.secret("keyword-key", format!("{svc}_SECRET={}", r.b64(44)));
    }
    files.push(f);

    // Documentation that quotes examples.
    let mut f = File::new("docs/setup.md");
    f.text("# Setup\n\nConfigure the CLI with AWS's documentation example:\n\n```")
        .near("docs-example", format!("aws_access_key_id = {aws_doc_id}"))
        .near("docs-example", format!("aws_secret_access_key = {aws_doc_secret}"))
        .text("```\n\nA token looks like this:\n")
        .near("docs-example", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
        .near("placeholder", format!("export GITHUB_TOKEN=ghp_{}", "x".repeat(36)))
        .near("placeholder", format!("export STRIPE_KEY=sk_live_{}", "X".repeat(24)))
        .near("placeholder", "password: changeme")
        .near("placeholder", "DATABASE_URL=postgres://user:${DB_PASSWORD}@db:5432/app")
        .near("version", "Requires sluice 0.12.3 or later.");
    files.push(f);

    // Lockfiles: hashes everywhere.
    let mut f = File::new("web/package-lock.json");
    f.text("{\n  \"name\": \"shop\",\n  \"lockfileVersion\": 3,\n  \"packages\": {");
    for name in [
        "js-tokens",
        "lodash",
        "secret-handshake",
        "debug",
        "ms",
        "token-types",
    ] {
        f.text(format!("    \"node_modules/{name}\": {{"))
            .text(format!(
                "      \"version\": \"{}.{}.{}\",",
                r.below(9),
                r.below(20),
                r.below(20)
            ))
            .text(format!(
                "      \"resolved\": \"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz\","
            ))
            .near(
                "lockfile-hash",
                format!(
                    "      \"integrity\": \"sha512-{}\"",
                    base64(&r.bytes(64), false)
                ),
            )
            .text("    },");
    }
    f.text("  }\n}");
    files.push(f);
    let mut f = File::new("Cargo.lock");
    for name in ["secrecy", "tokio", "zeroize", "aes-gcm"] {
        f.text("[[package]]")
            .text(format!("name = \"{name}\""))
            .text(format!(
                "version = \"{}.{}.{}\"",
                r.below(3),
                r.below(40),
                r.below(20)
            ))
            .text("source = \"registry+https://github.com/rust-lang/crates.io-index\"")
            .near("lockfile-hash", format!("checksum = \"{}\"", r.hex(64)))
            .text("");
    }
    f.text("[[package]]\nname = \"vendored\"\nversion = \"0.1.0\"")
        .near(
            "git-sha",
            format!(
                "source = \"git+https://github.com/org/vendored?rev={}#{}\"",
                &r.hex(40)[..7],
                r.hex(40)
            ),
        );
    files.push(f);
    let mut f = File::new("poetry.lock");
    for name in ["pyjwt", "keyring", "cryptography"] {
        f.text("[[package]]")
            .text(format!("name = \"{name}\""))
            .text("files = [")
            .near(
                "lockfile-hash",
                format!(
                    "    {{file = \"{name}-2.8.0-py3-none-any.whl\", hash = \"sha256:{}\"}},",
                    r.hex(64)
                ),
            )
            .near(
                "lockfile-hash",
                format!(
                    "    {{file = \"{name}-2.8.0.tar.gz\", hash = \"sha256:{}\"}},",
                    r.hex(64)
                ),
            )
            .text("]");
    }
    f.text("\n[metadata]")
        .near("lockfile-hash", format!("content-hash = \"{}\"", r.hex(64)));
    files.push(f);
    let mut f = File::new("go.sum");
    for m in [
        "golang.org/x/crypto v0.17.0",
        "github.com/golang-jwt/jwt/v5 v5.2.0",
    ] {
        f.near(
            "lockfile-hash",
            format!("{m} h1:{}", base64(&r.bytes(32), false)),
        )
        .near(
            "lockfile-hash",
            format!("{m}/go.mod h1:{}", base64(&r.bytes(32), false)),
        );
    }
    files.push(f);

    // Base64 images and git metadata.
    let mut f = File::new("web/src/styles.css");
    for _ in 0..3 {
        f.near(
            "base64-image",
            format!(
                ".icon {{ background: url(data:image/png;base64,iVBORw0KGgo{}); }}",
                base64(&r.bytes(300), false)
            ),
        );
    }
    files.push(f);
    let mut f = File::new("web/index.html");
    f.near(
        "base64-image",
        format!(
            "<img alt=\"logo\" src=\"data:image/svg+xml;base64,{}\">",
            base64(&r.bytes(200), false)
        ),
    );
    files.push(f);
    let mut f = File::new(".gitmodules-state");
    for _ in 0..3 {
        f.near("git-sha", format!("{} refs/heads/main", r.hex(40)));
    }
    f.near("git-sha", format!("\"sha\": \"{}\",", r.hex(40)));
    files.push(f);
    files
}

/// Per-tool result on the corpus.
#[derive(Debug, Default)]
struct Score {
    tp: usize,
    fp: usize,
    planted: usize,
    misses: Vec<String>,
    false_positives: Vec<String>,
}

impl Score {
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            return 0.0;
        }
        self.tp as f64 / (self.tp + self.fp) as f64
    }

    fn recall(&self) -> f64 {
        if self.planted == 0 {
            return 0.0;
        }
        self.tp as f64 / self.planted as f64
    }
}

/// Scores `found` (file → lines reported) against the corpus.
fn score(files: &[File], found: &BTreeMap<String, Vec<usize>>) -> Score {
    let mut s = Score::default();
    for f in files {
        let lines = found.get(&f.path).cloned().unwrap_or_default();
        s.planted += f.planted.len();
        for &(kind, a, b) in &f.planted {
            if lines.iter().any(|l| (a..=b).contains(l)) {
                s.tp += 1;
            } else {
                s.misses.push(format!("{kind} {}:{a}", f.path));
            }
        }
        let mut fp_lines: Vec<usize> = lines
            .iter()
            .copied()
            .filter(|l| !f.planted.iter().any(|&(_, a, b)| (a..=b).contains(l)))
            .collect();
        fp_lines.sort_unstable();
        fp_lines.dedup();
        for l in fp_lines {
            let kind = f.near.iter().find(|n| n.1 == l).map_or("other", |n| n.0);
            s.false_positives.push(format!("{kind} {}:{l}", f.path));
            s.fp += 1;
        }
    }
    s
}

fn sluice(files: &[File]) -> BTreeMap<String, Vec<usize>> {
    let scanner = SecretScanner::new(Allowlist::default(), None)
        .unwrap_or_else(|e| panic!("building the scanner: {e}"));
    let mut found = BTreeMap::new();
    for f in files {
        let text = f.lines.join("\n") + "\n";
        let r = scanner.scan(&f.path, &text);
        found.insert(
            f.path.clone(),
            r.findings.iter().map(|x| x.line).collect::<Vec<_>>(),
        );
    }
    found
}

/// Runs `detect-secrets scan --all-files` on the corpus written to `dir`.
/// `None` when the tool is not on `PATH`.
fn detect_secrets(dir: &Path) -> Option<Result<BTreeMap<String, Vec<usize>>, String>> {
    let out = match Command::new("detect-secrets")
        .args(["scan", "--all-files", "."])
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("running detect-secrets: {e}"))),
    };
    if !out.status.success() {
        return Some(Err(format!(
            "detect-secrets failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let json: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => return Some(Err(format!("detect-secrets output: {e}"))),
    };
    let mut found: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    if let Some(results) = json["results"].as_object() {
        for (path, list) in results {
            let lines = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["line_number"].as_u64())
                        .map(|l| l as usize)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            found.insert(path.trim_start_matches("./").to_string(), lines);
        }
    }
    Some(Ok(found))
}

/// Writes the corpus to a fresh temporary directory, or to
/// `$SLUICE_SECRETS_CORPUS_DIR` (kept afterwards, to run other tools on).
fn write_corpus(files: &[File]) -> (PathBuf, bool) {
    let keep = std::env::var_os("SLUICE_SECRETS_CORPUS_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sluice-secrets-corpus-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&path, f.lines.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    (dir, keep.is_some())
}

fn print(name: &str, s: &Score) {
    println!(
        "{name:<16} precision {:.3}  recall {:.3}  (tp {}, fp {}, missed {})",
        s.precision(),
        s.recall(),
        s.tp,
        s.fp,
        s.planted - s.tp
    );
    for m in &s.misses {
        println!("  {name} missed {m}");
    }
    for m in &s.false_positives {
        println!("  {name} false positive {m}");
    }
}

#[test]
fn sluice_beats_the_bar_on_the_secrets_corpus() {
    let files = corpus(19);
    let planted: usize = files.iter().map(|f| f.planted.len()).sum();
    let near: usize = files.iter().map(|f| f.near.len()).sum();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &files {
        for p in &f.planted {
            *kinds.entry(p.0).or_default() += 1;
        }
    }
    println!(
        "secrets corpus: {} files, {planted} planted secrets, {near} near misses",
        files.len()
    );
    println!("planted kinds: {kinds:?}");
    assert!(planted >= 60 && near >= 40);

    let ours = score(&files, &sluice(&files));
    print("sluice", &ours);

    let (dir, keep) = write_corpus(&files);
    match detect_secrets(&dir) {
        None => println!("detect-secrets: not on PATH, not compared"),
        Some(Err(e)) => println!("detect-secrets: {e}"),
        Some(Ok(found)) => {
            let theirs = score(&files, &found);
            print("detect-secrets", &theirs);
            // The issue's goal: ahead of detect-secrets on the same corpus.
            assert!(
                ours.precision() >= theirs.precision() && ours.recall() >= theirs.recall(),
                "sluice is not ahead of detect-secrets"
            );
        }
    }
    if keep {
        println!("corpus kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    assert!(
        ours.precision() >= 0.95,
        "precision {:.3} < 0.95",
        ours.precision()
    );
    assert!(ours.recall() >= 0.90, "recall {:.3} < 0.90", ours.recall());
}

#[test]
fn the_corpus_is_deterministic_and_varies_with_the_seed() {
    let text = |seed| {
        corpus(seed)
            .iter()
            .map(|f| f.lines.join("\n"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(text(19), text(19));
    assert_ne!(text(19), text(20));
}

#[test]
fn other_seeds_also_meet_the_bar() {
    // The bar must not depend on one lucky draw of values.
    for seed in [1u64, 2, 3, 4, 5] {
        let files = corpus(seed);
        let s = score(&files, &sluice(&files));
        assert!(
            s.precision() >= 0.95 && s.recall() >= 0.90,
            "seed {seed}: precision {:.3} recall {:.3}\nmissed {:?}\nfalse positives {:?}",
            s.precision(),
            s.recall(),
            s.misses,
            s.false_positives
        );
    }
}
