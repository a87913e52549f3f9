//! The `http` target's webhook API (docs/delivery.md, the contract in
//! docs/delivery-http.schema.json): JSON requests to `<url>/deploy`,
//! `/weights`, `/flags`, `/rollback`, `/state`. Any non-2xx answer fails
//! with the response body in the message.
//!
//! Every request carries `target.headers` and `target.headers-from-secrets`;
//! a secret's value is read through the secrets interface when the request
//! is sent and never written into a message (the runner also redacts it
//! from everything the stage prints or reports).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_sdk::http::{Method, Request};
use sluice_sdk::StageError;

use crate::config::{TargetConfig, TargetKind};
use crate::release::ArtifactFile;

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// `target.headers-from-secrets.<Header>`: the header's value is
/// `prefix` followed by the value of the granted secret `secret`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    /// The secret's name (it must be in the stage's `grants.secrets`).
    pub secret: String,
    /// Text before the value, e.g. `"Bearer "`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// Where the webhook requests of an `http` target go, and with which
/// headers. Cheap to copy: it borrows the target's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    url: &'a str,
    config: &'a TargetConfig,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of an `http` target (`None` for other kinds or
    /// without `url`).
    pub fn of(config: &'a TargetConfig) -> Option<Self> {
        match (config.kind, config.url.as_deref()) {
            (TargetKind::Http, Some(url)) => Some(Self { url, config }),
            _ => None,
        }
    }

    /// The base URL.
    pub fn url(&self) -> &'a str {
        self.url
    }
}

/// `POST <base><path>` with `body` as JSON; the answer parsed as JSON
/// (an empty body reads as `{}` / `null`).
pub fn post<B: Serialize, T: DeserializeOwned>(
    endpoint: Endpoint<'_>,
    path: &str,
    body: &B,
) -> Result<T, StageError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| StageError::failed(format!("encoding the request to {path}: {e}")))?;
    send(
        endpoint,
        Request::new(Method::Post, url(endpoint.url, path))
            .header("content-type", "application/json")
            .body(bytes),
        path,
    )
}

/// `GET <base><path>`, parsed as JSON.
pub fn get<T: DeserializeOwned>(endpoint: Endpoint<'_>, path: &str) -> Result<T, StageError> {
    send(
        endpoint,
        Request::new(Method::Get, url(endpoint.url, path)),
        path,
    )
}

/// The `artifact` object of `POST /deploy`: name, digest and size of the
/// artifact, and `ref` (where the platform gets it) when
/// `target.artifact-ref` is set.
pub fn artifact_body(config: &TargetConfig, artifact: &ArtifactFile) -> serde_json::Value {
    let mut body = json!({"name": artifact.name, "digest": artifact.digest, "size": artifact.size});
    if let (Some(r), Some(obj)) = (&config.artifact_ref, body.as_object_mut()) {
        obj.insert("ref".into(), json!(r));
    }
    body
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// The configured headers, secret values read now.
fn with_headers(endpoint: Endpoint<'_>, mut req: Request) -> Result<Request, StageError> {
    for (name, value) in &endpoint.config.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    for (name, from) in &endpoint.config.headers_from_secrets {
        let value = sluice_sdk::secrets::get(&from.secret).map_err(|e| {
            StageError::from(e).with_context(format!(
                "target.headers-from-secrets.{name}: reading secret {}",
                from.secret
            ))
        })?;
        // Said without the value: a header cannot carry a line break, and
        // the host would refuse the request with a less helpful message.
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(StageError::failed(format!(
                "target.headers-from-secrets.{name}: secret {} holds a line break or another control character, which a header value cannot carry; store the token alone",
                from.secret
            )));
        }
        req = req.header(name.as_str(), format!("{}{value}", from.prefix));
    }
    Ok(req)
}

fn send<T: DeserializeOwned>(
    endpoint: Endpoint<'_>,
    req: Request,
    path: &str,
) -> Result<T, StageError> {
    let resp = with_headers(endpoint, req.header("accept", "application/json"))?
        .timeout(TIMEOUT)
        .send()
        .map_err(|e| StageError::from(e).with_context(format!("webhook {path}")))?;
    if !resp.is_success() {
        let hint = if matches!(resp.status, 401 | 403) {
            credentials_hint(endpoint.config)
        } else {
            String::new()
        };
        return Err(StageError::failed(format!(
            "webhook {path} answered {}: {}{hint}",
            resp.status,
            resp.text().trim()
        )));
    }
    let body: &[u8] = if resp.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &resp.body
    };
    serde_json::from_slice(body).map_err(|e| {
        StageError::failed(format!(
            "webhook {path} answered something that is not the documented JSON: {e}: {}",
            resp.text().trim()
        ))
    })
}

/// What to check when the platform refuses the credentials.
fn credentials_hint(config: &TargetConfig) -> String {
    if config.headers_from_secrets.is_empty() {
        return " (the platform wants credentials: send a token with \
                target.headers-from-secrets, e.g. `Authorization: {secret: DEPLOY_TOKEN, \
                prefix: \"Bearer \"}`, and grant the secret in grants.secrets)"
            .to_string();
    }
    let sent: Vec<String> = config
        .headers_from_secrets
        .iter()
        .map(|(h, s)| format!("{h} from secret {}", s.secret))
        .collect();
    format!(
        " (the platform refused the credentials sent as {}; check the secret's value and that the token may deploy to this environment)",
        sent.join(", ")
    )
}

/// Headers the webhook client sets itself or that describe the
/// connection; a target may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "accept",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// Headers that carry credentials: never as literal values, which would
/// sit in the pipeline file and the run record.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Checks `headers`, `headers-from-secrets` and `artifact-ref` of `config`
/// (at `key`, e.g. `with.target`).
pub fn check_http_keys(config: &TargetConfig, key: &str) -> Result<(), StageError> {
    let bad = |k: &str, msg: String| StageError::invalid_config(format!("{key}.{k}: {msg}"));
    if config.kind != TargetKind::Http {
        for (k, set) in [
            ("headers", !config.headers.is_empty()),
            (
                "headers-from-secrets",
                !config.headers_from_secrets.is_empty(),
            ),
            ("artifact-ref", config.artifact_ref.is_some()),
        ] {
            if set {
                return Err(bad(
                    k,
                    format!(
                        "only for kind http, not {}; remove it",
                        config.kind.as_str()
                    ),
                ));
            }
        }
        return Ok(());
    }
    let names = config.headers.keys().map(|n| ("headers", n)).chain(
        config
            .headers_from_secrets
            .keys()
            .map(|n| ("headers-from-secrets", n)),
    );
    let mut seen = BTreeMap::new();
    for (map, name) in names {
        let at = format!("{map}.{name}");
        check_header_name(name).map_err(|m| bad(&at, m))?;
        let lower = name.to_ascii_lowercase();
        if let Some(first) = seen.insert(lower, map) {
            return Err(bad(
                &at,
                format!("the header `{name}` is also set under {key}.{first}; set it once"),
            ));
        }
    }
    for (name, value) in &config.headers {
        let at = format!("headers.{name}");
        if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(bad(
                &at,
                format!(
                    "a literal `{name}` value would be stored in the pipeline file and the run record; take it from a secret: `headers-from-secrets: {{{name}: {{secret: DEPLOY_TOKEN, prefix: \"Bearer \"}}}}` with the secret in grants.secrets"
                ),
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad(
                &at,
                "the value has a line break or another control character; a header value is one line".into(),
            ));
        }
    }
    for (name, from) in &config.headers_from_secrets {
        let at = format!("headers-from-secrets.{name}");
        if !is_identifier(&from.secret) {
            return Err(bad(
                &format!("{at}.secret"),
                format!(
                    "`{}` is not a secret name: letters, digits and `_`, not starting with a digit (e.g. DEPLOY_TOKEN)",
                    from.secret
                ),
            ));
        }
        if from.prefix.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad(
                &format!("{at}.prefix"),
                "has a line break or another control character; a header value is one line".into(),
            ));
        }
    }
    if let Some(r) = &config.artifact_ref {
        check_artifact_ref(r).map_err(|m| bad("artifact-ref", m))?;
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An HTTP header name (RFC 9110 token) the client does not set itself.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "`{name}` is not a header name (letters, digits and `-`, e.g. X-Deploy-Env)"
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "`{name}` is set by sluice or by the connection and cannot be configured; remove it"
        ));
    }
    Ok(())
}

/// `target.artifact-ref`: an `http://`/`https://` URL, or an OCI image
/// reference pinned by digest, `registry[:port]/repository[:tag]@sha256:<64
/// hex>`. A tag alone is refused: a tag can be moved to another image after
/// the release was analysed, so the platform might run something else (the
/// rule cosign and policy-controller apply to signed images).
pub fn check_artifact_ref(r: &str) -> Result<(), String> {
    if r.trim().is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{r}` must be a URL or an OCI reference without spaces"
        ));
    }
    if let Some(rest) = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
    {
        return if rest.is_empty() || rest.starts_with('/') {
            Err(format!("`{r}` has no host"))
        } else {
            Ok(())
        };
    }
    if r.contains("://") {
        return Err(format!(
            "`{r}`: only http:// and https:// URLs or OCI image references (registry/app@sha256:<64 hex>) are understood"
        ));
    }
    let Some((name, digest)) = r.split_once('@') else {
        return Err(format!(
            "`{r}` is an OCI reference without a digest: a tag can be moved to another image after the release was analysed; pin it as `{}@sha256:<64 hex digits>` (e.g. from `crane digest {r}`)",
            r
        ));
    };
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!(
            "the digest `{digest}` of `{r}` must be `sha256:` followed by 64 lowercase hex digits"
        ));
    };
    if hex.len() != 64
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(format!(
            "the digest `{digest}` of `{r}` must be `sha256:` followed by 64 lowercase hex digits (it has {} characters)",
            hex.len()
        ));
    }
    let Some((registry, repository)) = name.split_once('/') else {
        return Err(format!(
            "`{name}` must name a registry and a repository, e.g. registry.example.com/app@sha256:…"
        ));
    };
    let registry_ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    // The last path component may carry a tag (`app:1.2.0@sha256:…`).
    let (path, tag) = match repository.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (repository, None),
    };
    let path_ok = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    if !(registry_ok && path_ok && tag_ok) {
        return Err(format!(
            "`{name}` is not an OCI image name: `registry[:port]/repository[:tag]`, the repository in lowercase letters, digits and `._-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn http(extra: &str) -> TargetConfig {
        serde_json::from_str(&format!(
            r#"{{"kind":"http","url":"https://deploy.internal:8443"{extra}}}"#
        ))
        .expect("parse")
    }

    #[test]
    fn artifact_refs() {
        for ok in [
            format!("registry.example.com/app@sha256:{HEX}"),
            format!("registry.example.com:5000/team/app:1.2.0@sha256:{HEX}"),
            format!("localhost:5000/app@sha256:{HEX}"),
            "https://artifacts.example.com/app-2.0.0.tar.gz".to_string(),
            "http://127.0.0.1:8080/app.tar.gz".to_string(),
        ] {
            check_artifact_ref(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let tag_only = check_artifact_ref("registry.example.com/app:1.2.0").expect_err("tag");
        assert!(tag_only.contains("without a digest"), "{tag_only}");
        assert!(tag_only.contains("@sha256:<64 hex digits>"), "{tag_only}");
        let short = check_artifact_ref("registry.example.com/app@sha256:abc").expect_err("short");
        assert!(short.contains("64 lowercase hex"), "{short}");
        let upper = format!("registry.example.com/app@sha256:{}", HEX.to_uppercase());
        assert!(check_artifact_ref(&upper).is_err());
        let md5 = format!("registry.example.com/app@md5:{HEX}");
        assert!(check_artifact_ref(&md5)
            .expect_err("md5")
            .contains("sha256:"));
        assert!(check_artifact_ref(&format!("app@sha256:{HEX}")).is_err());
        assert!(check_artifact_ref(&format!("reg.io/App@sha256:{HEX}")).is_err());
        assert!(check_artifact_ref("ftp://x/y").is_err());
        assert!(check_artifact_ref("https://").is_err());
        assert!(check_artifact_ref("a b").is_err());
    }

    #[test]
    fn headers_are_checked() {
        let ok = http(
            r#","headers":{"X-Deploy-Env":"prod"},"headers-from-secrets":{"Authorization":{"secret":"DEPLOY_TOKEN","prefix":"Bearer "}}"#,
        );
        ok.validate("with.target").expect("valid");
        let literal = http(r#","headers":{"authorization":"Bearer abc"}"#);
        let e = literal.validate("with.target").expect_err("literal token");
        assert!(
            e.message()
                .starts_with("with.target.headers.authorization: a literal"),
            "{e}"
        );
        assert!(
            !e.message().contains("abc"),
            "the value is not repeated: {e}"
        );
        let twice =
            http(r#","headers":{"X-Key":"a"},"headers-from-secrets":{"x-key":{"secret":"K"}}"#);
        assert!(twice
            .validate("t")
            .expect_err("twice")
            .message()
            .contains("also set"));
        let reserved = http(r#","headers":{"Content-Type":"text/plain"}"#);
        assert!(reserved
            .validate("t")
            .expect_err("reserved")
            .message()
            .contains("set by sluice"));
        let bad_name = http(r#","headers":{"X Key":"a"}"#);
        assert!(bad_name.validate("t").is_err());
        let newline = http(r#","headers":{"X-Key":"a\nb"}"#);
        assert!(newline.validate("t").is_err());
        let bad_secret = http(r#","headers-from-secrets":{"Authorization":{"secret":"1TOKEN"}}"#);
        assert!(bad_secret
            .validate("t")
            .expect_err("secret name")
            .message()
            .starts_with("t.headers-from-secrets.Authorization.secret:"));
        let unknown: Result<TargetConfig, _> = serde_json::from_str(
            r#"{"kind":"http","url":"http://x:1","headers-from-secrets":{"A":{"secret":"S","value":"v"}}}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn http_keys_only_for_http() {
        let t: TargetConfig = serde_json::from_str(&format!(
            r#"{{"root":"d","artifact-ref":"reg.io/app@sha256:{HEX}"}}"#
        ))
        .expect("parse");
        let e = t.validate("with.target").expect_err("local");
        assert!(
            e.message()
                .starts_with("with.target.artifact-ref: only for kind http"),
            "{e}"
        );
        let tag = http(r#","artifact-ref":"reg.io/app:latest""#);
        let e = tag.validate("with.target").expect_err("tag only");
        assert!(
            e.message().starts_with("with.target.artifact-ref: `reg.io/app:latest` is an OCI reference without a digest"),
            "{e}"
        );
    }

    #[test]
    fn deploy_body_carries_the_ref() {
        let artifact = ArtifactFile {
            name: "build/app.tar.gz".into(),
            digest: format!("sha256:{HEX}"),
            size: 12,
            path: std::path::PathBuf::from("/artifacts/in/build/app.tar.gz"),
        };
        let plain = artifact_body(&http(""), &artifact);
        assert!(plain.get("ref").is_none());
        let r = format!("reg.io/app@sha256:{HEX}");
        let with_ref = artifact_body(&http(&format!(r#","artifact-ref":"{r}""#)), &artifact);
        assert_eq!(with_ref["ref"], r.as_str());
        assert_eq!(with_ref["size"], 12);
    }
}
