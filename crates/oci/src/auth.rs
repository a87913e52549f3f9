//! Registry credentials: the Docker config format, from
//! `SLUICE_REGISTRY_AUTH`, `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`, and Docker credential helpers.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::OciError;

/// The environment variable holding a Docker config JSON, or `@PATH` to one.
pub const AUTH_ENV: &str = "SLUICE_REGISTRY_AUTH";

/// The largest credentials file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where registry credentials come from: one Docker config (inline or a
/// file) with its `auths`, `credHelpers` and `credsStore`, or nothing
/// (anonymous).
///
/// For a registry, in order: its `credHelpers` entry, its `auths` entry,
/// the `credsStore` helper, else anonymous access.
#[derive(Clone, Default)]
pub struct Auth {
    /// Where the config came from, for messages (`SLUICE_REGISTRY_AUTH`, a
    /// path).
    source: Option<String>,
    auths: BTreeMap<String, (String, String)>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
    /// `PATH` for credential helpers (tests); `None` inherits it.
    helper_path: Option<OsString>,
}

impl fmt::Debug for Auth {
    // Never prints passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("source", &self.source)
            .field("registries", &self.auths.keys().collect::<Vec<_>>())
            .field("cred_helpers", &self.cred_helpers)
            .field("creds_store", &self.creds_store)
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl Auth {
    /// No credentials: anonymous access everywhere.
    pub fn anonymous() -> Auth {
        Auth::default()
    }

    /// The credentials of this environment: `SLUICE_REGISTRY_AUTH` (a Docker
    /// config JSON inline, or `@PATH` to one), else
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing
    /// file means anonymous access, a broken one is an error naming it.
    pub fn from_environment() -> Result<Auth, OciError> {
        Auth::from_sources(
            std::env::var_os(AUTH_ENV),
            std::env::var_os("DOCKER_CONFIG").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// [`Auth::from_environment`] with the variables given.
    fn from_sources(
        inline: Option<OsString>,
        docker_config: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Result<Auth, OciError> {
        if let Some(value) = inline.filter(|v| !v.is_empty()) {
            let value = value.into_string().map_err(|_| OciError::AuthConfig {
                file: AUTH_ENV.to_owned(),
                reason: "it is not UTF-8".to_owned(),
            })?;
            return match value.strip_prefix('@') {
                Some(path) => Auth::from_file(Path::new(path), true),
                None => Auth::from_json(&value, AUTH_ENV),
            };
        }
        let file = match (docker_config, home) {
            (Some(dir), _) => dir.join("config.json"),
            (None, Some(home)) => home.join(".docker").join("config.json"),
            (None, None) => return Ok(Auth::anonymous()),
        };
        Auth::from_file(&file, false)
    }

    /// Reads a Docker config file; a missing file is anonymous access unless
    /// `required`.
    pub(crate) fn from_file(path: &Path, required: bool) -> Result<Auth, OciError> {
        if !required && !path.exists() {
            return Ok(Auth::anonymous());
        }
        let shown = path.display().to_string();
        let bytes =
            sluice_files::fsutil::read_input_file(path, MAX_CONFIG_BYTES, "registry credentials")
                .map_err(|e| OciError::AuthConfig {
                file: shown.clone(),
                reason: e.to_string(),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| OciError::AuthConfig {
            file: shown.clone(),
            reason: "it is not UTF-8 text".to_owned(),
        })?;
        Auth::from_json(&text, &shown)
    }

    /// Parses a Docker config JSON; `source` names it in errors.
    pub(crate) fn from_json(text: &str, source: &str) -> Result<Auth, OciError> {
        let fail = |reason: String| OciError::AuthConfig {
            file: source.to_owned(),
            reason,
        };
        let config: DockerConfig = serde_json::from_str(sluice_files::fsutil::strip_bom(text))
            .map_err(|e| {
                fail(format!(
                    "not a Docker config JSON ({e}); expected {{\"auths\": {{\"REGISTRY\": {{\"auth\": \"BASE64(user:password)\"}}}}}}"
                ))
            })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in config.auths {
            let registry = normalize_key(&key);
            if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let decoded = lenient_base64()
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        fail(format!(
                            "auths.\"{key}\".auth is not base64 of `user:password`"
                        ))
                    })?;
                let (user, password) = decoded.split_once(':').ok_or_else(|| {
                    fail(format!(
                        "auths.\"{key}\".auth decodes to no `user:password` pair"
                    ))
                })?;
                auths.insert(registry, (user.to_owned(), password.to_owned()));
            } else if let (Some(user), Some(password)) = (entry.username, entry.password) {
                auths.insert(registry, (user, password));
            } else if entry.identity_token.is_some() {
                return Err(fail(format!(
                    "auths.\"{key}\" holds an identity token, which sluice does not support; \
                     log in with a username and password or token"
                )));
            }
            // An empty entry (`{}`) is what `docker login` leaves beside a
            // credsStore: the store answers for it.
        }
        let cred_helpers = config
            .cred_helpers
            .into_iter()
            .map(|(key, helper)| (normalize_key(&key), helper))
            .collect();
        Ok(Auth {
            source: Some(source.to_owned()),
            auths,
            cred_helpers,
            creds_store: config.creds_store.filter(|s| !s.is_empty()),
            helper_path: None,
        })
    }

    /// Credential helpers are looked up on `path` instead of `PATH`.
    #[cfg(test)]
    pub(crate) fn with_helper_path(mut self, path: OsString) -> Auth {
        self.helper_path = Some(path);
        self
    }

    /// The credentials for `registry` (`host[:port]`).
    pub(crate) async fn credentials(&self, registry: &str) -> Result<RegistryAuth, OciError> {
        let key = normalize_key(registry);
        if let Some(helper) = self.cred_helpers.get(&key) {
            return match self.run_helper(helper, registry).await? {
                Some((user, secret)) => Ok(RegistryAuth::Basic(user, secret)),
                None => Err(OciError::AuthConfig {
                    file: format!("docker-credential-{helper}"),
                    reason: format!(
                        "it has no credentials for {registry} (credHelpers in {} names it)",
                        self.source.as_deref().unwrap_or("the Docker config")
                    ),
                }),
            };
        }
        if let Some((user, password)) = self.auths.get(&key) {
            return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
        }
        if let Some(store) = &self.creds_store {
            if let Some((user, secret)) = self.run_helper(store, registry).await? {
                return Ok(RegistryAuth::Basic(user, secret));
            }
        }
        Ok(RegistryAuth::Anonymous)
    }

    /// Runs `docker-credential-<helper> get` for `registry`: `Some` with the
    /// credentials, `None` when it has none (it exits non-zero, as the
    /// protocol says for "credentials not found").
    async fn run_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<(String, String)>, OciError> {
        use tokio::io::AsyncWriteExt as _;
        let program = format!("docker-credential-{helper}");
        let fail = |reason: String| OciError::AuthConfig {
            file: program.clone(),
            reason,
        };
        if helper.is_empty() || helper.contains(['/', '\\']) {
            return Err(fail(format!("`{helper}` is not a credential helper name")));
        }
        let mut command = tokio::process::Command::new(&program);
        command
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.helper_path {
            command.env("PATH", path);
        }
        let mut child = command.spawn().map_err(|e| {
            fail(format!(
                "cannot run it ({}); install it on PATH or remove it from the Docker config",
                sluice_files::fsutil::io_reason(&e)
            ))
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(registry.as_bytes())
                .await
                .map_err(|e| fail(format!("cannot write to it: {e}")))?;
        }
        let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| fail(format!("it did not answer within {HELPER_TIMEOUT:?}")))?
            .map_err(|e| fail(format!("it failed: {e}")))?;
        if !output.status.success() {
            tracing::debug!(helper = %program, %registry, status = %output.status, "credential helper has no credentials");
            return Ok(None);
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("its answer is not the credential helper JSON: {e}")))?;
        if answer.username == "<token>" {
            return Err(fail(format!(
                "it answers an identity token for {registry}, which sluice does not support"
            )));
        }
        Ok(Some((answer.username, answer.secret)))
    }
}

/// `https://host:port/v1/` → `host:port`; Docker Hub's aliases → one name.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_owned(),
        _ => host,
    }
}

/// Docker writes padded base64; some tools do not.
fn lenient_base64() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> (String, String) {
        match auth {
            RegistryAuth::Basic(u, p) => (u, p),
            other => panic!("expected basic credentials, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn auths_entries_decode_base64_and_plain_fields() {
        let auth = Auth::from_json(
            r#"{"auths": {
                "https://reg.example:5000/v1/": {"auth": "YWxpY2U6czNjcmV0"},
                "other.example": {"username": "bob", "password": "pw:with:colons"},
                "nopad.example": {"auth": "YWxpY2U6czNjcmV0MQ"}
            }}"#,
            "test",
        )
        .expect("it must succeed");
        assert_eq!(
            basic(
                auth.credentials("reg.example:5000")
                    .await
                    .expect("it must succeed")
            ),
            ("alice".into(), "s3cret".into())
        );
        assert_eq!(
            basic(
                auth.credentials("OTHER.example")
                    .await
                    .expect("it must succeed")
            ),
            ("bob".into(), "pw:with:colons".into())
        );
        assert_eq!(
            basic(
                auth.credentials("nopad.example")
                    .await
                    .expect("it must succeed")
            ),
            ("alice".into(), "s3cret1".into())
        );
        assert!(matches!(
            auth.credentials("unknown.example")
                .await
                .expect("it must succeed"),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn broken_configs_name_the_source_and_the_entry() {
        let err = Auth::from_json("{not json", "/x/config.json").expect_err("it must fail");
        assert!(matches!(&err, OciError::AuthConfig { file, .. } if file == "/x/config.json"));
        let err = Auth::from_json(r#"{"auths": {"r.example": {"auth": "%%%"}}}"#, "env")
            .expect_err("it must fail");
        assert!(
            err.to_string().contains("auths.\"r.example\".auth"),
            "{err}"
        );
        let err = Auth::from_json(
            r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#,
            "env",
        )
        .expect_err("it must fail");
        assert!(err.to_string().contains("user:password"), "{err}");
        let err = Auth::from_json(r#"{"auths": {"r.example": {"identitytoken": "t"}}}"#, "env")
            .expect_err("it must fail");
        assert!(err.to_string().contains("identity token"), "{err}");
    }

    #[test]
    fn sources_in_order_inline_then_docker_config_then_home() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let docker = dir.path().join("docker");
        std::fs::create_dir(&docker).expect("it must succeed");
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths": {"from-docker-config.example": {"username": "u", "password": "p"}}}"#,
        )
        .expect("it must succeed");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".docker")).expect("it must succeed");
        std::fs::write(
            home.join(".docker/config.json"),
            r#"{"auths": {"from-home.example": {"username": "u", "password": "p"}}}"#,
        )
        .expect("it must succeed");
        let inline = Auth::from_sources(
            Some(r#"{"auths": {"inline.example": {"username": "u", "password": "p"}}}"#.into()),
            Some(docker.clone()),
            Some(home.clone()),
        )
        .expect("it must succeed");
        assert!(inline.auths.contains_key("inline.example"));
        let at_file = Auth::from_sources(
            Some(format!("@{}", docker.join("config.json").display()).into()),
            None,
            None,
        )
        .expect("it must succeed");
        assert!(at_file.auths.contains_key("from-docker-config.example"));
        let from_docker =
            Auth::from_sources(None, Some(docker), Some(home.clone())).expect("it must succeed");
        assert!(from_docker.auths.contains_key("from-docker-config.example"));
        let from_home = Auth::from_sources(None, None, Some(home)).expect("it must succeed");
        assert!(from_home.auths.contains_key("from-home.example"));
        // A missing default file is anonymous access; a missing `@PATH` is an error.
        let none = Auth::from_sources(None, Some(dir.path().join("absent")), None)
            .expect("it must succeed");
        assert!(none.auths.is_empty());
        let err = Auth::from_sources(Some("@/nonexistent/config.json".into()), None, None)
            .expect_err("it must fail");
        assert!(
            err.to_string().contains("/nonexistent/config.json"),
            "{err}"
        );
    }

    #[cfg(unix)]
    fn write_helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).expect("it must succeed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("it must succeed");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn credential_helpers_are_run_with_the_registry_on_stdin() {
        let dir = tempfile::tempdir().expect("it must succeed");
        // Answers only for reg.example:5000, as the protocol says: JSON on
        // success, a non-zero exit for unknown servers.
        write_helper(
            dir.path(),
            "test",
            "#!/bin/sh\nread server\nif [ \"$server\" = reg.example:5000 ]; then\n\
             printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-secret\"}' \"$server\"\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        );
        write_helper(dir.path(), "broken", "#!/bin/sh\necho not-json\n");
        let path: OsString = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
        .into();
        let auth = Auth::from_json(
            r#"{"credHelpers": {"reg.example:5000": "test", "bad.example": "broken", "gone.example": "absent"},
                "credsStore": "test",
                "auths": {"plain.example": {"username": "u", "password": "p"}}}"#,
            "config.json",
        )
        .expect("it must succeed")
        .with_helper_path(path);
        assert_eq!(
            basic(
                auth.credentials("reg.example:5000")
                    .await
                    .expect("it must succeed")
            ),
            ("helper-user".into(), "helper-secret".into())
        );
        // auths before credsStore; credsStore without an answer is anonymous.
        assert_eq!(
            basic(
                auth.credentials("plain.example")
                    .await
                    .expect("it must succeed")
            ),
            ("u".into(), "p".into())
        );
        assert!(matches!(
            auth.credentials("elsewhere.example")
                .await
                .expect("it must succeed"),
            RegistryAuth::Anonymous
        ));
        let err = auth
            .credentials("bad.example")
            .await
            .expect_err("it must fail");
        assert!(
            err.to_string().contains("docker-credential-broken"),
            "{err}"
        );
        let err = auth
            .credentials("gone.example")
            .await
            .expect_err("it must fail");
        assert!(
            err.to_string().contains("docker-credential-absent"),
            "{err}"
        );
        assert!(err.to_string().contains("PATH"), "{err}");
    }

    #[test]
    fn debug_never_shows_passwords() {
        let auth = Auth::from_json(
            r#"{"auths": {"r.example": {"username": "u", "password": "hunter2"}}}"#,
            "env",
        )
        .expect("it must succeed");
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
