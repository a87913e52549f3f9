//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::time::Duration;

use serde::Deserialize;
use sluice_delivery::TargetConfig;
use sluice_sdk::values::ConfigDuration;
use sluice_sdk::{Context, StageError};

/// The JSON schema published by `describe` (the `target` block is inserted
/// from `sluice_delivery`).
pub const SCHEMA: &str = include_str!("schema.json");

/// What the stage does to the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Derived from the environment's files (see [`crate::plan`]).
    #[default]
    Auto,
    /// Serve the previous release again.
    Rollback,
    /// All traffic to the stable slot.
    Weights,
    /// The release flag to 0%.
    Flag,
}

impl Action {
    /// The name used in `with:` and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Rollback => "rollback",
            Self::Weights => "weights",
            Self::Flag => "flag",
        }
    }
}

/// `with.verify` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VerifyConfig {
    /// Health path on the restored slot.
    pub health_path: Option<String>,
    /// Version path on the restored slot (`""`: no version check).
    pub version_path: Option<String>,
    /// A router URL that must answer the restored version too.
    pub url: Option<String>,
    /// Requests sent to `url`.
    pub samples: Option<u32>,
    /// Probe attempts.
    pub retries: Option<u32>,
    /// Pause between attempts.
    pub interval: Option<ConfigDuration>,
    /// Per-request timeout.
    pub timeout: Option<ConfigDuration>,
    /// `false`: no verification.
    pub enabled: Option<bool>,
}

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The environment.
    pub target: Option<TargetConfig>,
    /// What to do.
    #[serde(default)]
    pub action: Action,
    /// The flag for `action: flag`.
    pub flag: Option<String>,
    /// Environment name for the report.
    pub environment: Option<String>,
    /// Verification.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// Base name of the artifacts.
    pub report: Option<String>,
}

/// Validated verification settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    /// Whether to verify at all.
    pub enabled: bool,
    /// Health path (starts with `/`).
    pub health_path: String,
    /// Version path, or `None` for no version check.
    pub version_path: Option<String>,
    /// Router URL (no trailing `/`).
    pub url: Option<String>,
    /// Requests to the router.
    pub samples: u32,
    /// Attempts.
    pub retries: u32,
    /// Between attempts.
    pub interval: Duration,
    /// Per request.
    pub timeout: Duration,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The environment.
    pub target: TargetConfig,
    /// What to do.
    pub action: Action,
    /// The flag for `action: flag`.
    pub flag: Option<String>,
    /// Environment name for the report.
    pub environment: Option<String>,
    /// Verification.
    pub verify: Verify,
    /// Base name of the artifacts.
    pub report: String,
}

impl Settings {
    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        let Some(target) = c.target else {
            return Err(StageError::invalid_config(
                "with.target: missing; give the same `target:` block as the deploy stage, e.g. \
                 `target: { kind: local, root: deploy/production, slots: { blue: http://127.0.0.1:18101 } }`",
            ));
        };
        target.validate("with.target")?;
        if c.flag.is_some() && !matches!(c.action, Action::Flag | Action::Auto) {
            return Err(StageError::invalid_config(format!(
                "with.flag: only used with `action: flag` (or auto), but action is `{}`; remove `flag`",
                c.action.as_str()
            )));
        }
        let v = c.verify;
        let path = |key: &str, p: Option<String>, default: &str| -> Result<String, StageError> {
            let p = p.unwrap_or_else(|| default.to_string());
            if !p.is_empty() && !p.starts_with('/') {
                return Err(StageError::invalid_config(format!(
                    "with.verify.{key}: `{p}` must start with `/`, e.g. `{default}`"
                )));
            }
            Ok(p)
        };
        let health_path = path("health-path", v.health_path, "/health")?;
        if health_path.is_empty() {
            return Err(StageError::invalid_config(
                "with.verify.health-path: must not be empty; use `verify: { enabled: false }` to skip verification",
            ));
        }
        let version_path = path("version-path", v.version_path, "/version")?;
        let url = match v.url {
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                return Err(StageError::invalid_config(format!(
                    "with.verify.url: `{u}` is not an http(s) URL; write e.g. `http://127.0.0.1:18100`"
                )))
            }
            Some(u) => Some(u.trim_end_matches('/').to_string()),
            None => None,
        };
        let bounded = |key: &str, n: Option<u32>, default: u32| -> Result<u32, StageError> {
            match n.unwrap_or(default) {
                0 => Err(StageError::invalid_config(format!(
                    "with.verify.{key}: must be at least 1"
                ))),
                n if n > 1000 => Err(StageError::invalid_config(format!(
                    "with.verify.{key}: {n} is more than 1000"
                ))),
                n => Ok(n),
            }
        };
        let verify = Verify {
            enabled: v.enabled.unwrap_or(true),
            health_path,
            version_path: (!version_path.is_empty()).then_some(version_path),
            url,
            samples: bounded("samples", v.samples, 10)?,
            retries: bounded("retries", v.retries, 20)?,
            interval: v
                .interval
                .map_or(Duration::from_millis(500), ConfigDuration::get),
            timeout: v
                .timeout
                .map_or(Duration::from_secs(2), ConfigDuration::get),
        };
        let report = c.report.unwrap_or_else(|| "incident".to_string());
        if report.is_empty()
            || !report
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
            || report.starts_with('.')
        {
            return Err(StageError::invalid_config(format!(
                "with.report: `{report}` must be a plain file name (letters, digits, `.`, `_`, `-`), e.g. `incident`"
            )));
        }
        Ok(Settings {
            target,
            action: c.action,
            flag: c.flag,
            environment: c.environment,
            verify,
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, String> {
        let ctx = Context::for_test("remediate", json);
        Settings::from_context(&ctx).map_err(|e| e.message().to_string())
    }

    const TARGET: &str = r#""target": {"kind": "local", "root": "deploy/prod", "slots": {"blue": "http://127.0.0.1:18101"}}"#;

    #[test]
    fn defaults() {
        let s = settings(&format!("{{{TARGET}}}")).expect("valid");
        assert_eq!(s.action, Action::Auto);
        assert_eq!(s.verify.health_path, "/health");
        assert_eq!(s.verify.version_path.as_deref(), Some("/version"));
        assert_eq!(s.verify.retries, 20);
        assert_eq!(s.verify.interval, Duration::from_millis(500));
        assert_eq!(s.report, "incident");
    }

    #[test]
    fn errors_name_the_key() {
        let e = settings("{}").err().unwrap_or_default();
        assert!(e.starts_with("with.target: missing"), "{e}");
        let e = settings(&format!(r#"{{{TARGET}, "action": "undo"}}"#))
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("with.action: unknown variant `undo`"), "{e}");
        let e = settings(&format!(
            r#"{{{TARGET}, "verify": {{"interval": "soon"}}}}"#
        ))
        .err()
        .unwrap_or_default();
        assert!(
            e.starts_with("with.verify.interval: `soon` is not a duration"),
            "{e}"
        );
        let e = settings(&format!(r#"{{{TARGET}, "verify": {{"interval": 500}}}}"#))
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("with.verify.interval: `500` has no unit; write `500s`"),
            "{e}"
        );
        let e = settings(&format!(
            r#"{{{TARGET}, "verify": {{"url": "127.0.0.1:1"}}}}"#
        ))
        .err()
        .unwrap_or_default();
        assert!(e.starts_with("with.verify.url:"), "{e}");
        let e = settings(&format!(r#"{{{TARGET}, "report": "../x"}}"#))
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("with.report:"), "{e}");
        let e = settings(&format!(
            r#"{{{TARGET}, "action": "weights", "flag": "f"}}"#
        ))
        .err()
        .unwrap_or_default();
        assert!(e.starts_with("with.flag:"), "{e}");
        let e = settings(&format!(r#"{{{TARGET}, "verfy": {{}}}}"#))
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown field `verfy`"), "{e}");
    }

    #[test]
    fn the_schema_is_json_and_lists_every_key() {
        let v: serde_json::Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        for key in [
            "action",
            "flag",
            "environment",
            "verify",
            "report",
            "target",
        ] {
            assert!(
                v["properties"].get(key).is_some() || key == "target",
                "{key}"
            );
        }
    }
}
