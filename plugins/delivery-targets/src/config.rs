//! The `target:` block of a delivery stage's `with:` (see
//! `docs/delivery.md`): wire type, validation and its JSON schema.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use sluice_sdk::StageError;

/// Which kind of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Files under `root` in the workspace (the default).
    #[default]
    Local,
    /// `local` plus weighted nginx upstreams and a granted reload.
    Nginx,
    /// A webhook API at `url`.
    Http,
}

impl TargetKind {
    /// `local`, `nginx` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Nginx => "nginx",
            Self::Http => "http",
        }
    }
}

/// `with.target` as written in the pipeline.
///
/// ```
/// let t: sluice_delivery::TargetConfig = serde_json::from_str(
///     r#"{"kind": "local", "root": "deploy/prod", "slots": {"blue": "http://127.0.0.1:18101"}}"#,
/// ).unwrap();
/// t.validate("with.target").unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetConfig {
    /// `local` (default), `nginx` or `http`.
    #[serde(default)]
    pub kind: TargetKind,
    /// Directory inside the workspace holding releases, slots and state
    /// (required for `local` and `nginx`; optional for `http`, where it
    /// only keeps `history.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Base URL each slot serves on (`blue: http://127.0.0.1:18101`), for
    /// probes, synthetic load and nginx upstream addresses.
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
    /// `http`: the webhook API's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http`: extra headers sent with every webhook request (literal
    /// values; see `headers_from_secrets` for tokens).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `http`: headers whose value is a granted secret, e.g.
    /// `Authorization: {secret: DEPLOY_TOKEN, prefix: "Bearer "}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_secrets: BTreeMap<String, crate::webhook::SecretHeader>,
    /// `http`: where the platform gets the release, sent as
    /// `artifact.ref` in `POST /deploy`: an `http(s)://` URL or an OCI
    /// image reference pinned by digest (`registry/app@sha256:<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_ref: Option<String>,
    /// `nginx`: the reload command (program must be in `grants.exec`);
    /// default `[nginx, -s, reload]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Vec<String>>,
    /// `nginx`: the JSON access log (`log_format sluice`), relative to the
    /// workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<String>,
    /// `nginx`: the name of the `upstream` block (default `sluice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// `local`, `nginx`: session affinity over the weights (a user key
    /// from a header or a cookie always lands on the same route while
    /// the weights hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// `local`, `nginx`: header routing during a canary (`always` → the
    /// candidate, `never` → stable, anything else → the weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_header: Option<CanaryHeader>,
}

/// `target.affinity`: where the user key comes from (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    /// A request header, e.g. `X-User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A cookie name, e.g. `session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// `target.canary-header`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryHeader {
    /// The header, e.g. `X-Canary`.
    pub name: String,
}

/// An HTTP header name nginx can read as `$http_<name>` (letters,
/// digits, `-`; nginx maps `-` to `_` and ignores case).
fn check_header(h: &str) -> Result<(), String> {
    if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "`{h}` must be a header name of letters, digits and `-`, e.g. X-User"
        ));
    }
    Ok(())
}

/// Default nginx upstream name.
pub const DEFAULT_UPSTREAM: &str = "sluice";

impl TargetConfig {
    /// The reload command of an `nginx` target.
    pub fn reload_command(&self) -> Vec<String> {
        self.reload
            .clone()
            .unwrap_or_else(|| vec!["nginx".into(), "-s".into(), "reload".into()])
    }

    /// The nginx upstream name.
    pub fn upstream_name(&self) -> &str {
        self.upstream.as_deref().unwrap_or(DEFAULT_UPSTREAM)
    }

    /// Checks the block; `key` is where it sits (`with.target`), used in
    /// messages. Errors are [`StageError::InvalidConfig`] naming the key
    /// and the fix.
    pub fn validate(&self, key: &str) -> Result<(), StageError> {
        let kind = self.kind.as_str();
        let bad = |k: &str, msg: String| StageError::invalid_config(format!("{key}.{k}: {msg}"));
        match self.kind {
            TargetKind::Local | TargetKind::Nginx => {
                if self.root.is_none() {
                    return Err(bad(
                        "root",
                        format!(
                            "required for kind {kind}: a directory inside the workspace, e.g. \
                             `root: deploy/production`"
                        ),
                    ));
                }
                if self.url.is_some() {
                    return Err(bad(
                        "url",
                        format!("only for kind http, not {kind}; remove it"),
                    ));
                }
            }
            TargetKind::Http => match self.url.as_deref() {
                None => {
                    return Err(bad(
                        "url",
                        "required for kind http: the webhook API's base URL, e.g. \
                             `url: http://127.0.0.1:18200`"
                            .into(),
                    ))
                }
                Some(u) if !is_http_url(u) => {
                    return Err(bad(
                        "url",
                        format!("`{u}` is not an http:// or https:// URL"),
                    ))
                }
                Some(_) => {}
            },
        }
        crate::webhook::check_http_keys(self, key)?;
        if self.kind != TargetKind::Nginx {
            for (k, set) in [
                ("reload", self.reload.is_some()),
                ("access-log", self.access_log.is_some()),
                ("upstream", self.upstream.is_some()),
            ] {
                if set {
                    return Err(bad(
                        k,
                        format!("only for kind nginx, not {kind}; remove it"),
                    ));
                }
            }
        }
        if self.kind == TargetKind::Http {
            for (k, set) in [
                ("affinity", self.affinity.is_some()),
                ("canary-header", self.canary_header.is_some()),
            ] {
                if set {
                    return Err(bad(
                        k,
                        "only for kind local or nginx, not http (the platform behind the \
                         webhook routes); remove it"
                            .into(),
                    ));
                }
            }
        }
        if let Some(a) = &self.affinity {
            match (&a.header, &a.cookie) {
                (Some(h), None) => check_header(h).map_err(|m| bad("affinity.header", m))?,
                (None, Some(c)) => {
                    if c.is_empty() || !c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(bad(
                            "affinity.cookie",
                            format!("`{c}` must be letters, digits or `_` (nginx reads it as $cookie_<name>)"),
                        ));
                    }
                }
                _ => {
                    return Err(bad(
                        "affinity",
                        "needs exactly one of `header` or `cookie`, e.g. `affinity: { header: X-User }`"
                            .into(),
                    ))
                }
            }
        }
        if let Some(c) = &self.canary_header {
            check_header(&c.name).map_err(|m| bad("canary-header.name", m))?;
        }
        if let Some(root) = &self.root {
            check_relative(root).map_err(|m| bad("root", m))?;
        }
        if let Some(log) = &self.access_log {
            check_relative(log).map_err(|m| bad("access-log", m))?;
        }
        if let Some(cmd) = &self.reload {
            match cmd.first() {
                None => {
                    return Err(bad(
                        "reload",
                        "must name a program, e.g. [nginx, -s, reload]".into(),
                    ))
                }
                Some(p) if p.contains('/') => {
                    return Err(bad(
                        "reload",
                        format!(
                        "the program `{p}` must be a bare name listed in grants.exec, not a path"
                    ),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(u) = &self.upstream {
            if u.is_empty()
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(
                    "upstream",
                    format!("`{u}` must be letters, digits, `_` or `-`"),
                ));
            }
        }
        for (slot, url) in &self.slots {
            crate::check_name(slot).map_err(|m| bad("slots", format!("slot name {m}")))?;
            if !is_http_url(url) {
                return Err(bad(
                    &format!("slots.{slot}"),
                    format!("`{url}` is not an http:// URL, e.g. http://127.0.0.1:18101"),
                ));
            }
        }
        Ok(())
    }
}

fn is_http_url(u: &str) -> bool {
    (u.starts_with("http://") && u.len() > 7) || (u.starts_with("https://") && u.len() > 8)
}

/// A path relative to the workspace that stays inside it.
fn check_relative(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("must not be empty".into());
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(format!(
                "`{p}` must be a relative path inside the workspace (no `/` at the start, no `..`)"
            ))
            }
        }
    }
    Ok(())
}

/// The JSON schema of the `target:` block, for a stage's `describe()`
/// schema. Use [`schema_with_target`] to insert it.
pub const TARGET_SCHEMA: &str = include_str!("target.schema.json");

/// Inserts [`TARGET_SCHEMA`] as `properties.target` of a stage's schema
/// (a JSON object with `properties`). Returns the schema unchanged if it
/// is not valid JSON.
pub fn schema_with_target(stage_schema: &str) -> String {
    let (Ok(mut schema), Ok(target)) = (
        serde_json::from_str::<serde_json::Value>(stage_schema),
        serde_json::from_str::<serde_json::Value>(TARGET_SCHEMA),
    ) else {
        return stage_schema.to_string();
    };
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.insert("target".into(), target);
    }
    schema.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TargetConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn local_needs_root_and_rejects_http_keys() {
        let t = parse(r#"{"kind":"local"}"#).expect("parse");
        let e = t.validate("with.target").expect_err("no root");
        assert!(e.message().starts_with("with.target.root: required"), "{e}");
        let t = parse(r#"{"root":"d","url":"http://x:1"}"#).expect("parse");
        let e = t.validate("with.target").expect_err("url");
        assert!(
            e.message()
                .starts_with("with.target.url: only for kind http"),
            "{e}"
        );
        let t = parse(r#"{"root":"../x"}"#).expect("parse");
        assert!(t.validate("with.target").is_err());
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected() {
        assert!(parse(r#"{"root":"d","rooot":"x"}"#)
            .expect_err("unknown field")
            .contains("unknown field"));
        assert!(parse(r#"{"kind":"k8s"}"#)
            .expect_err("unknown kind")
            .contains("unknown variant"));
    }

    #[test]
    fn http_and_nginx() {
        let t = parse(r#"{"kind":"http","url":"http://127.0.0.1:9"}"#).expect("parse");
        t.validate("t").expect("valid");
        let t =
            parse(r#"{"kind":"nginx","root":"d","reload":["/usr/sbin/nginx"]}"#).expect("parse");
        assert!(t
            .validate("t")
            .expect_err("path")
            .message()
            .contains("bare name"));
        let t = parse(r#"{"kind":"local","root":"d","slots":{"a":"ftp://x"}}"#).expect("parse");
        assert!(t.validate("t").is_err());
    }

    #[test]
    fn affinity_and_canary_header() {
        let ok = parse(r#"{"kind":"nginx","root":"d","affinity":{"header":"X-User"},"canary-header":{"name":"X-Canary"}}"#)
            .expect("parse");
        ok.validate("with.target").expect("valid");
        let ok = parse(r#"{"root":"d","affinity":{"cookie":"session_id"}}"#).expect("parse");
        ok.validate("with.target").expect("valid");
        for (json, starts) in [
            (
                r#"{"root":"d","affinity":{}}"#,
                "with.target.affinity: needs exactly one",
            ),
            (
                r#"{"root":"d","affinity":{"header":"A","cookie":"b"}}"#,
                "with.target.affinity: needs exactly one",
            ),
            (
                r#"{"root":"d","affinity":{"header":"X User"}}"#,
                "with.target.affinity.header: `X User`",
            ),
            (
                r#"{"root":"d","affinity":{"cookie":"a-b"}}"#,
                "with.target.affinity.cookie: `a-b`",
            ),
            (
                r#"{"root":"d","canary-header":{"name":""}}"#,
                "with.target.canary-header.name:",
            ),
            (
                r#"{"kind":"http","url":"http://x:1","affinity":{"header":"X-User"}}"#,
                "with.target.affinity: only for kind local or nginx",
            ),
        ] {
            let e = parse(json)
                .expect("parse")
                .validate("with.target")
                .expect_err(json);
            assert!(e.message().starts_with(starts), "{json}: {e}");
        }
        assert!(parse(r#"{"root":"d","affinity":{"hdr":"x"}}"#).is_err());
    }

    #[test]
    fn schema_is_inserted() {
        let s = schema_with_target(r#"{"type":"object","properties":{"a":{}}}"#);
        let v: serde_json::Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["properties"]["target"]["type"], "object");
    }
}
