//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sluice_sdk::{Context, StageError};

use crate::values::{Retries, StatusSpec};
use sluice_sdk::values::{ConfigDuration, OneOrMany};

/// Per-request timeout when `with.timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First back-off between attempts when none is given.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);
/// Longest back-off when none is given.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most this many retries per probe.
pub const MAX_RETRIES: u32 = 20;

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Base URL that probe `path`s are relative to.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The probes, run in order.
    #[serde(default)]
    pub probes: Option<Vec<ProbeConfig>>,
    /// Extra attempts for a failing probe: a number or `{attempts, backoff, max}`.
    #[serde(default)]
    pub retries: Option<Retries>,
    /// First back-off between attempts (doubled each time).
    #[serde(default)]
    pub backoff: Option<ConfigDuration>,
    /// Longest back-off.
    #[serde(default)]
    pub max_backoff: Option<ConfigDuration>,
    /// Per-request timeout.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Headers sent with every probe.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// One entry of `with.probes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeConfig {
    /// Name in gates and results (default: `METHOD path`).
    #[serde(default)]
    pub name: Option<String>,
    /// HTTP method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// An absolute URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A path relative to `base-url`.
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers (added to `with.headers`).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Request body: a string as is, anything else as JSON.
    #[serde(default)]
    pub body: Option<Value>,
    /// Accepted statuses (default 200).
    #[serde(default)]
    pub expect_status: Option<StatusSpec>,
    /// Text(s) the body must contain.
    #[serde(default)]
    pub body_contains: Option<OneOrMany>,
    /// JSON pointer → expected value.
    #[serde(default)]
    pub json: Option<BTreeMap<String, Value>>,
    /// Slowest acceptable response.
    #[serde(default)]
    pub max_latency: Option<ConfigDuration>,
    /// Retries for this probe (overrides `with.retries`' count).
    #[serde(default)]
    pub retries: Option<u32>,
}

/// A validated probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Unique name.
    pub name: String,
    /// Upper-case method token.
    pub method: String,
    /// Absolute, checked URL.
    pub url: String,
    /// Headers (common ones first, the probe's own override them).
    pub headers: Vec<(String, String)>,
    /// Body bytes, if any.
    pub body: Option<Vec<u8>>,
    /// Accepted statuses.
    pub expect_status: StatusSpec,
    /// Texts the body must contain.
    pub body_contains: Vec<String>,
    /// JSON pointer → expected value.
    pub json: Vec<(String, Value)>,
    /// Slowest acceptable response.
    pub max_latency: Option<Duration>,
    /// Extra attempts.
    pub retries: u32,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `with.base-url`, normalised (no trailing `/`).
    pub base_url: Option<String>,
    /// The probes, in order.
    pub probes: Vec<Probe>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// First back-off.
    pub backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
}

impl Settings {
    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        let base_url = c
            .base_url
            .map(|b| {
                check_url("with.base-url", b.trim()).map(|u| u.trim_end_matches('/').to_string())
            })
            .transpose()?;
        let retries = c.retries.unwrap_or_default();
        if retries.backoff.is_some() && c.backoff.is_some() {
            return Err(StageError::invalid_config(
                "with.backoff: also given as with.retries.backoff; keep one of them",
            ));
        }
        if retries.max.is_some() && c.max_backoff.is_some() {
            return Err(StageError::invalid_config(
                "with.max-backoff: also given as with.retries.max; keep one of them",
            ));
        }
        check_retries("with.retries", retries.attempts)?;
        let backoff = retries
            .backoff
            .or(c.backoff.map(|d| d.0))
            .unwrap_or(DEFAULT_BACKOFF);
        let max_backoff = retries
            .max
            .or(c.max_backoff.map(|d| d.0))
            .unwrap_or(DEFAULT_MAX_BACKOFF.max(backoff));
        if max_backoff < backoff {
            return Err(StageError::invalid_config(format!(
                "with.max-backoff: {} is shorter than the first back-off {}; raise it or lower the back-off",
                humantime::format_duration(max_backoff),
                humantime::format_duration(backoff)
            )));
        }
        let timeout = c.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(StageError::invalid_config(
                "with.timeout: must be longer than zero, e.g. \"5s\"",
            ));
        }
        let common: Vec<(String, String)> = c.headers.unwrap_or_default().into_iter().collect();
        for (k, _) in &common {
            check_header("with.headers", k)?;
        }
        let list = match c.probes {
            None => {
                return Err(StageError::invalid_config(
                    "with.probes: missing; list at least one probe, e.g. \
                     `probes: [{name: health, path: /health}]`",
                ))
            }
            Some(l) if l.is_empty() => {
                return Err(StageError::invalid_config(
                    "with.probes: empty list; give at least one probe, e.g. `{name: health, path: /health}`",
                ))
            }
            Some(l) => l,
        };
        let mut probes = Vec::with_capacity(list.len());
        let mut names = BTreeSet::new();
        for (i, p) in list.into_iter().enumerate() {
            let probe = probe(i, p, base_url.as_deref(), &common, retries.attempts)?;
            if !names.insert(probe.name.clone()) {
                return Err(StageError::invalid_config(format!(
                    "with.probes[{i}].name: `{}` is used by an earlier probe; give each probe its own name",
                    probe.name
                )));
            }
            probes.push(probe);
        }
        Ok(Self {
            base_url,
            probes,
            timeout,
            backoff,
            max_backoff,
        })
    }
}

fn probe(
    i: usize,
    p: ProbeConfig,
    base: Option<&str>,
    common: &[(String, String)],
    default_retries: u32,
) -> Result<Probe, StageError> {
    let key = format!("with.probes[{i}]");
    let url = match (p.url, p.path) {
        (Some(_), Some(_)) => {
            return Err(StageError::invalid_config(format!(
                "{key}: has both `url` and `path`; give an absolute `url` or a `path` relative to with.base-url"
            )))
        }
        (None, None) => {
            return Err(StageError::invalid_config(format!(
                "{key}: needs `url` (absolute) or `path` (relative to with.base-url), e.g. `path: /health`"
            )))
        }
        (Some(u), None) => check_url(&format!("{key}.url"), u.trim())?,
        (None, Some(path)) => {
            let Some(base) = base else {
                return Err(StageError::invalid_config(format!(
                    "{key}.path: `{path}` is relative but with.base-url is not set; set base-url \
                     (e.g. `${{{{ stages.deploy.outputs.url }}}}`) or give an absolute `url`"
                )));
            };
            if path.contains("://") {
                return Err(StageError::invalid_config(format!(
                    "{key}.path: `{path}` is an absolute URL; write it as `url:` instead"
                )));
            }
            let joined = format!("{base}/{}", path.trim().trim_start_matches('/'));
            check_url(&format!("{key}.path"), &joined)?
        }
    };
    let method = p
        .method
        .unwrap_or_else(|| "GET".into())
        .trim()
        .to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(StageError::invalid_config(format!(
            "{key}.method: `{method}` is not an HTTP method; write e.g. GET, POST or HEAD"
        )));
    }
    let path_part = url::Url::parse(&url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.clone());
    let name = p
        .name
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| format!("{method} {path_part}"));
    if name.is_empty() {
        return Err(StageError::invalid_config(format!(
            "{key}.name: empty; give the probe a short name such as `health`"
        )));
    }
    let mut headers: Vec<(String, String)> = common.to_vec();
    for (k, v) in p.headers.unwrap_or_default() {
        check_header(&format!("{key}.headers"), &k)?;
        headers.retain(|(h, _)| !h.eq_ignore_ascii_case(&k));
        headers.push((k, v));
    }
    let body = match p.body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.into_bytes()),
        Some(v) => {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".into(), "application/json".into()));
            }
            Some(v.to_string().into_bytes())
        }
    };
    let body_contains = p.body_contains.map(OneOrMany::into_vec).unwrap_or_default();
    if body_contains.iter().any(String::is_empty) {
        return Err(StageError::invalid_config(format!(
            "{key}.body-contains: an empty string matches every body; remove it or give the text to look for"
        )));
    }
    let mut json = Vec::new();
    for (pointer, expected) in p.json.unwrap_or_default() {
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(StageError::invalid_config(format!(
                "{key}.json: `{pointer}` is not a JSON pointer; pointers start with `/`, e.g. `/status` or `/items/0/id`"
            )));
        }
        json.push((pointer, expected));
    }
    let retries = p.retries.unwrap_or(default_retries);
    check_retries(&format!("{key}.retries"), retries)?;
    Ok(Probe {
        name,
        method,
        url,
        headers,
        body,
        expect_status: p.expect_status.unwrap_or_default(),
        body_contains,
        json,
        max_latency: p.max_latency.map(|d| d.0),
        retries,
    })
}

/// An absolute `http(s)` URL with a host, or an error naming `key`.
pub fn check_url(key: &str, raw: &str) -> Result<String, StageError> {
    let bad = |why: String| StageError::invalid_config(format!("{key}: `{raw}` {why}"));
    if raw.is_empty() {
        return Err(StageError::invalid_config(format!(
            "{key}: empty; give an absolute URL such as http://127.0.0.1:8080 (an empty value \
             often means the upstream output it was templated from is missing)"
        )));
    }
    let u = url::Url::parse(raw).map_err(|e| bad(format!("is not a valid URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!(
            "uses `{}`; only http:// and https:// URLs can be probed",
            u.scheme()
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".into()));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "carries user info; send credentials in an `Authorization` header instead".into(),
        ));
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(bad("contains whitespace; percent-encode it (%20)".into()));
    }
    Ok(raw.to_string())
}

fn check_header(key: &str, name: &str) -> Result<(), StageError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StageError::invalid_config(format!(
            "{key}: `{name}` is not a valid header name"
        )))
    }
}

fn check_retries(key: &str, n: u32) -> Result<(), StageError> {
    if n > MAX_RETRIES {
        return Err(StageError::invalid_config(format!(
            "{key}: {n} is more than {MAX_RETRIES}; a probe that needs that many tries is not a smoke test"
        )));
    }
    Ok(())
}

/// JSON Schema (draft 2020-12) of `with:`, returned by `describe`.
pub const SCHEMA: &str = include_str!("schema.json");

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, StageError> {
        Settings::from_context(&Context::for_test("smoke", json))
    }

    fn config_error(json: &str) -> String {
        match settings(json) {
            Err(StageError::InvalidConfig(m)) => m,
            other => panic!("expected invalid config for {json}, got {other:?}"),
        }
    }

    #[test]
    fn full_config() -> Result<(), StageError> {
        let s = settings(
            r#"{"base-url": "http://127.0.0.1:8080/", "timeout": "2s",
                "retries": {"attempts": 3, "backoff": "100ms", "max": "1s"},
                "headers": {"X-Env": "prod"},
                "probes": [
                  {"name": "health", "path": "/health", "json": {"/status": "ok"},
                   "max-latency": "300ms", "headers": {"x-env": "smoke"}},
                  {"url": "http://other:9000/v", "method": "post", "body": {"a": 1},
                   "expect-status": [200, "2xx"], "body-contains": "ok", "retries": 0}
                ]}"#,
        )?;
        assert_eq!(s.base_url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert_eq!(s.backoff, Duration::from_millis(100));
        assert_eq!(s.max_backoff, Duration::from_secs(1));
        let h = &s.probes[0];
        assert_eq!(h.url, "http://127.0.0.1:8080/health");
        assert_eq!(h.headers, vec![("x-env".to_string(), "smoke".to_string())]);
        assert_eq!(h.retries, 3);
        assert_eq!(h.max_latency, Some(Duration::from_millis(300)));
        let v = &s.probes[1];
        assert_eq!(v.name, "POST /v");
        assert_eq!(v.body.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert!(v
            .headers
            .iter()
            .any(|(k, val)| k == "content-type" && val == "application/json"));
        assert_eq!(v.retries, 0);
        assert_eq!(v.body_contains, ["ok"]);
        Ok(())
    }

    #[test]
    fn defaults() -> Result<(), StageError> {
        let s = settings(r#"{"probes": [{"url": "http://h/x"}]}"#)?;
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.backoff, DEFAULT_BACKOFF);
        assert_eq!(s.max_backoff, DEFAULT_MAX_BACKOFF);
        assert_eq!(s.probes[0].name, "GET /x");
        assert_eq!(s.probes[0].expect_status, StatusSpec::default());
        Ok(())
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        assert!(config_error("{}").starts_with("with.probes: missing"));
        assert!(config_error(r#"{"probes": []}"#).starts_with("with.probes: empty"));
        let typo = config_error(r#"{"probes": [{"url": "http://h/", "expect": 200}]}"#);
        assert!(
            typo.starts_with("with.probes[0].expect: unknown field `expect`"),
            "{typo}"
        );
        let typo = config_error(r#"{"probe": []}"#);
        assert!(typo.starts_with("with.probe: unknown field"), "{typo}");
        assert!(config_error(r#"{"probes": [{"path": "/h"}]}"#)
            .starts_with("with.probes[0].path: `/h` is relative but with.base-url is not set"));
        assert!(config_error(r#"{"probes": [{"url": "ftp://h/"}]}"#)
            .starts_with("with.probes[0].url: `ftp://h/` uses `ftp`"));
        assert!(config_error(r#"{"probes": [{"url": "not a url"}]}"#)
            .starts_with("with.probes[0].url: `not a url` is not a valid URL"));
        assert!(
            config_error(r#"{"base-url": "", "probes": [{"path": "/"}]}"#)
                .starts_with("with.base-url: empty")
        );
        assert!(
            config_error(r#"{"base-url": "127.0.0.1:80", "probes": [{"path": "/"}]}"#)
                .starts_with("with.base-url: ")
        );
        assert!(
            config_error(r#"{"probes": [{"url": "http://h/", "path": "/x"}]}"#)
                .starts_with("with.probes[0]: has both")
        );
        assert!(config_error(r#"{"probes": [{}]}"#).starts_with("with.probes[0]: needs `url`"));
        assert!(
            config_error(r#"{"probes": [{"url": "http://h/", "expect-status": 999}]}"#)
                .starts_with("with.probes[0].expect-status: ")
        );
        assert!(
            config_error(r#"{"probes": [{"url": "http://h/", "json": {"status": 1}}]}"#)
                .starts_with("with.probes[0].json: `status` is not a JSON pointer")
        );
        assert!(
            config_error(r#"{"probes": [{"url": "http://h/", "max-latency": "fast"}]}"#)
                .starts_with("with.probes[0].max-latency: ")
        );
        assert!(config_error(r#"{"probes": [{"url": "http://h/a", "name": "x"}, {"url": "http://h/b", "name": "x"}]}"#)
            .starts_with("with.probes[1].name: `x` is used"));
        assert!(
            config_error(r#"{"retries": 100, "probes": [{"url": "http://h/"}]}"#)
                .starts_with("with.retries: 100 is more than")
        );
        assert!(
            config_error(r#"{"timeout": "0s", "probes": [{"url": "http://h/"}]}"#)
                .starts_with("with.timeout: ")
        );
        assert!(config_error(
            r#"{"backoff": "2s", "max-backoff": "1s", "probes": [{"url": "http://h/"}]}"#
        )
        .starts_with("with.max-backoff: "));
        assert!(
            config_error(r#"{"probes": [{"url": "http://h/", "method": "GE T"}]}"#)
                .starts_with("with.probes[0].method: ")
        );
    }

    #[test]
    fn schema_is_json() -> Result<(), serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(SCHEMA)?;
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(v["required"][0], "probes");
        Ok(())
    }
}
