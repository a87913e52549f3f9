//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use serde::Deserialize;
use sluice_delivery::{HealthCheck, TargetConfig};
use sluice_sdk::values::ConfigDuration;
use sluice_sdk::StageError;

/// The JSON schema published by `describe` (with the `target` block of
/// `sluice-delivery` inserted).
pub const SCHEMA: &str = include_str!("schema.json");

/// The schema with `properties.target` filled in.
pub fn schema() -> String {
    sluice_delivery::schema_with_target(SCHEMA)
}

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Where to deploy.
    pub target: TargetConfig,
    /// Which input artifact: `stage/name` or a glob over them.
    #[serde(default)]
    pub artifact: Option<String>,
    /// The version being deployed.
    pub version: String,
    /// How.
    #[serde(default)]
    pub strategy: Strategy,
    /// blue-green: switch traffic after the checks (default true).
    #[serde(default)]
    pub auto_promote: Option<bool>,
    /// rolling: number of instances.
    #[serde(default)]
    pub instances: Option<u32>,
    /// rolling: instances per batch, a count or `"N%"` of `instances`.
    #[serde(default)]
    pub batch_size: Option<BatchSize>,
    /// rolling: alias of batch-size (instances out of service at once).
    #[serde(default)]
    pub max_unavailable: Option<BatchSize>,
    /// rolling: wait between successful batches (health re-checked after).
    #[serde(default)]
    pub pause: Option<ConfigDuration>,
    /// canary: initial candidate weight, 0–100.
    #[serde(default)]
    pub initial_weight: Option<u32>,
    /// feature-flag: flag name.
    #[serde(default)]
    pub flag: Option<String>,
    /// feature-flag: initial percent, 0–100.
    #[serde(default)]
    pub initial_percent: Option<f64>,
    /// Health probe of the new slot(s).
    #[serde(default)]
    pub health_check: Option<HealthWire>,
}

/// `with.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Replace the single slot `main`.
    #[default]
    Recreate,
    /// Deploy to the idle slot of blue/green, check, switch.
    BlueGreen,
    /// Instances `instance-0..n` in batches, health-checked.
    Rolling,
    /// Idle slot as candidate at an initial weight.
    Canary,
    /// Idle slot as candidate behind a feature flag.
    FeatureFlag,
}

impl Strategy {
    /// The name as written in `with.strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recreate => "recreate",
            Self::BlueGreen => "blue-green",
            Self::Rolling => "rolling",
            Self::Canary => "canary",
            Self::FeatureFlag => "feature-flag",
        }
    }
}

/// `with.batch-size` / `with.max-unavailable`: a count (`2`) or a
/// percentage of `instances` (`"25%"`). Kept as written; [`BatchSize::resolve`]
/// checks it and names the key.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchSize {
    /// A number or string as written.
    Raw(serde_json::Value),
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Self::Raw)
    }
}

impl BatchSize {
    /// Instances per batch for `instances` instances: a count (at least 1)
    /// or `"N%"` with N in 1–100, ceil(instances × N / 100), at least 1;
    /// capped at `instances`. Errors name `key`.
    pub fn resolve(&self, key: &str, instances: u32) -> Result<u32, StageError> {
        let hint = "write a count such as `2` or a percentage of `instances` such as `\"25%\"`";
        let Self::Raw(v) = self;
        let count = |n: u64| -> Result<u32, StageError> {
            if n == 0 {
                return Err(bad(key, format!("must be at least 1; {hint}")));
            }
            Ok(u32::try_from(n).unwrap_or(u32::MAX).min(instances))
        };
        match v {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(n) => count(n),
                None => Err(bad(
                    key,
                    format!("`{n}` is not a whole number of instances; {hint}"),
                )),
            },
            serde_json::Value::String(text) => {
                let t = text.trim();
                if let Some(pct) = t.strip_suffix('%') {
                    let pct: u64 = pct
                        .trim()
                        .parse()
                        .map_err(|_| bad(key, format!("`{text}` is not a percentage; {hint}")))?;
                    if !(1..=100).contains(&pct) {
                        return Err(bad(
                            key,
                            format!("`{text}`: the percentage must be between 1% and 100%"),
                        ));
                    }
                    let n = (u64::from(instances) * pct).div_ceil(100);
                    Ok(u32::try_from(n.max(1)).unwrap_or(u32::MAX).min(instances))
                } else {
                    match t.parse::<u64>() {
                        Ok(n) => count(n),
                        Err(_) => Err(bad(
                            key,
                            format!("`{text}` is neither a count nor a percentage; {hint}"),
                        )),
                    }
                }
            }
            other => Err(bad(
                key,
                format!("`{other}` is neither a count nor a percentage; {hint}"),
            )),
        }
    }
}

/// `with.health-check`: `true`/`false` or an object.
#[derive(Debug)]
pub enum HealthWire {
    /// `true` = defaults, `false` = off.
    On(bool),
    /// Options.
    Options(HealthOptions),
}

impl<'de> Deserialize<'de> for HealthWire {
    /// A bool or an object; an object's own errors (unknown keys, wrong
    /// types) are kept instead of serde's "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(Self::On(b)),
            v @ serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(Self::Options)
                .map_err(|e| D::Error::custom(e.to_string())),
            other => Err(D::Error::custom(format!(
                "must be true, false or an object with path, check-version, \
                 timeout, retries, interval; got {other}"
            ))),
        }
    }
}

/// `with.health-check` as an object.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthOptions {
    /// Health path (default `/health`).
    #[serde(default)]
    pub path: Option<String>,
    /// Also check `GET /version` names the version (default true).
    #[serde(default)]
    pub check_version: Option<bool>,
    /// Per-request timeout.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Retries after the first failed attempt.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Wait between attempts.
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
}

/// The health probe settings, when on.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// How to probe.
    pub check: HealthCheck,
    /// Whether `/version` must name the deployed version.
    pub check_version: bool,
}

/// Rolling-specific settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// Instances.
    pub instances: u32,
    /// Instances per batch.
    pub batch_size: u32,
    /// Wait between successful batches (none after the last).
    pub pause: Option<std::time::Duration>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Target.
    pub target: TargetConfig,
    /// Artifact selector.
    pub artifact: Option<String>,
    /// Version.
    pub version: String,
    /// Strategy.
    pub strategy: Strategy,
    /// blue-green: promote after the checks.
    pub auto_promote: bool,
    /// rolling.
    pub rolling: Option<Rolling>,
    /// canary: initial weight.
    pub initial_weight: u32,
    /// feature-flag: flag name.
    pub flag: String,
    /// feature-flag: initial percent.
    pub initial_percent: f64,
    /// Health probe (`None` = off).
    pub health: Option<Health>,
}

fn bad(key: &str, msg: impl std::fmt::Display) -> StageError {
    StageError::invalid_config(format!("with.{key}: {msg}"))
}

impl Settings {
    /// Validates `with:`.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        c.target.validate("with.target")?;
        let version = c.version.trim().to_string();
        sluice_delivery::check_name(&version).map_err(|m| {
            bad(
                "version",
                format!("{m} (usually `${{{{ stages.build.outputs.version }}}}`)"),
            )
        })?;
        let s = c.strategy;
        let only = |key: &str, set: bool, allowed: &[Strategy]| -> Result<(), StageError> {
            if set && !allowed.contains(&s) {
                let names: Vec<_> = allowed.iter().map(|a| a.as_str()).collect();
                return Err(bad(
                    key,
                    format!(
                        "only for strategy {}, not {}; remove it",
                        names.join(" or "),
                        s.as_str()
                    ),
                ));
            }
            Ok(())
        };
        only(
            "auto-promote",
            c.auto_promote.is_some(),
            &[Strategy::BlueGreen],
        )?;
        only("instances", c.instances.is_some(), &[Strategy::Rolling])?;
        only("batch-size", c.batch_size.is_some(), &[Strategy::Rolling])?;
        only(
            "max-unavailable",
            c.max_unavailable.is_some(),
            &[Strategy::Rolling],
        )?;
        only("pause", c.pause.is_some(), &[Strategy::Rolling])?;
        only(
            "initial-weight",
            c.initial_weight.is_some(),
            &[Strategy::Canary],
        )?;
        only("flag", c.flag.is_some(), &[Strategy::FeatureFlag])?;
        only(
            "initial-percent",
            c.initial_percent.is_some(),
            &[Strategy::FeatureFlag],
        )?;

        let rolling = if s == Strategy::Rolling {
            let instances = c.instances.ok_or_else(|| {
                bad(
                    "instances",
                    "required for strategy rolling: the number of instances, e.g. `instances: 4`",
                )
            })?;
            if instances == 0 {
                return Err(bad("instances", "must be at least 1"));
            }
            let batch_size = match (&c.batch_size, &c.max_unavailable) {
                (Some(a), Some(b)) => {
                    let (x, y) = (
                        a.resolve("batch-size", instances)?,
                        b.resolve("max-unavailable", instances)?,
                    );
                    if x != y {
                        return Err(bad(
                            "batch-size",
                            format!(
                                "and max-unavailable disagree ({x} vs {y} instances); give only one"
                            ),
                        ));
                    }
                    x
                }
                (Some(a), None) => a.resolve("batch-size", instances)?,
                (None, Some(b)) => b.resolve("max-unavailable", instances)?,
                (None, None) => 1,
            };
            Some(Rolling {
                instances,
                batch_size,
                pause: c.pause.map(ConfigDuration::get),
            })
        } else {
            None
        };
        let initial_weight = c.initial_weight.unwrap_or(0);
        if initial_weight > 100 {
            return Err(bad(
                "initial-weight",
                format!("{initial_weight} is above 100"),
            ));
        }
        let initial_percent = c.initial_percent.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&initial_percent) {
            return Err(bad(
                "initial-percent",
                format!("{initial_percent} is not between 0 and 100"),
            ));
        }
        let flag = c.flag.unwrap_or_else(|| format!("release-{version}"));
        if flag.is_empty() {
            return Err(bad("flag", "must not be empty"));
        }
        if s == Strategy::FeatureFlag && c.target.kind == sluice_delivery::TargetKind::Nginx {
            // nginx routes by the flag with `split_clients`, which takes
            // the flag's name into its configuration and a percentage with
            // two decimals at most.
            sluice_delivery::check_name(&flag).map_err(|m| {
                bad(
                    "flag",
                    format!("{m}: on the nginx target the name goes into nginx's configuration"),
                )
            })?;
            sluice_delivery::flags::nginx_hundredths(initial_percent).map_err(|e| {
                bad(
                    "initial-percent",
                    format!("{e} (the nginx target routes flags with split_clients)"),
                )
            })?;
        }
        let health = match c.health_check {
            Some(HealthWire::On(false)) => None,
            Some(HealthWire::On(true)) => Some(HealthOptions::default()),
            Some(HealthWire::Options(o)) => Some(o),
            // Rolling checks each batch unless told not to.
            None if s == Strategy::Rolling => Some(HealthOptions::default()),
            None => None,
        };
        let health = health.map(health_settings).transpose()?;
        if let Some(sel) = &c.artifact {
            if sel.is_empty() {
                return Err(bad(
                    "artifact",
                    "must not be empty; write `stage/name` or a glob",
                ));
            }
            glob::Pattern::new(sel)
                .map_err(|e| bad("artifact", format!("`{sel}` is not a valid glob: {e}")))?;
        }
        Ok(Self {
            target: c.target,
            artifact: c.artifact,
            version,
            strategy: s,
            auto_promote: c.auto_promote.unwrap_or(true),
            rolling,
            initial_weight,
            flag,
            initial_percent,
            health,
        })
    }
}

fn health_settings(o: HealthOptions) -> Result<Health, StageError> {
    let mut check = HealthCheck::default();
    if let Some(p) = o.path {
        if !p.starts_with('/') {
            return Err(bad(
                "health-check.path",
                format!("`{p}` must start with `/`"),
            ));
        }
        check.path = p;
    }
    if let Some(t) = o.timeout {
        check.timeout = t.get();
    }
    if let Some(i) = o.interval {
        check.interval = i.get();
    }
    if let Some(r) = o.retries {
        check.retries = r;
    }
    Ok(Health {
        check,
        check_version: o.check_version.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(json: &str) -> Result<Settings, String> {
        let c: Config = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::validate(c).map_err(|e| e.to_string())
    }

    const T: &str = r#""target":{"root":"env"}"#;

    #[test]
    fn defaults() {
        let s = settings(&format!(r#"{{{T},"version":"1.0.0"}}"#)).expect("ok");
        assert_eq!(s.strategy, Strategy::Recreate);
        assert!(s.health.is_none());
        assert_eq!(s.flag, "release-1.0.0");
    }

    #[test]
    fn strategy_specific_keys() {
        let e = settings(&format!(r#"{{{T},"version":"1","instances":3}}"#)).expect_err("x");
        assert!(
            e.contains("with.instances: only for strategy rolling"),
            "{e}"
        );
        let e = settings(&format!(r#"{{{T},"version":"1","strategy":"rolling"}}"#)).expect_err("x");
        assert!(e.contains("with.instances: required"), "{e}");
        let s = settings(&format!(
            r#"{{{T},"version":"1","strategy":"rolling","instances":4,"max-unavailable":2}}"#
        ))
        .expect("ok");
        assert_eq!(
            s.rolling,
            Some(Rolling {
                instances: 4,
                batch_size: 2,
                pause: None
            })
        );
        assert!(s.health.is_some());
        let e = settings(&format!(
            r#"{{{T},"version":"1","strategy":"canary","initial-weight":101}}"#
        ))
        .expect_err("x");
        assert!(e.contains("initial-weight"), "{e}");
    }

    #[test]
    fn feature_flags_on_nginx_need_a_two_decimal_percent_and_a_plain_name() {
        const N: &str =
            r#""target":{"kind":"nginx","root":"env"},"version":"1","strategy":"feature-flag""#;
        let s = settings(&format!(r#"{{{N},"initial-percent":12.5}}"#)).expect("nginx flags");
        assert_eq!(s.flag, "release-1");
        assert_eq!(s.initial_percent, 12.5);
        let e = settings(&format!(r#"{{{N},"initial-percent":12.345}}"#)).expect_err("decimals");
        assert!(
            e.contains("with.initial-percent")
                && e.contains("12.345 has more than two decimals; nginx's split_clients takes at most two (e.g. 12.35)"),
            "{e}"
        );
        let e = settings(&format!(r#"{{{N},"flag":"a b"}}"#)).expect_err("name");
        assert!(e.contains("with.flag") && e.contains("contains ` `"), "{e}");
        // The local router takes any precision.
        assert!(settings(&format!(
            r#"{{{T},"version":"1","strategy":"feature-flag","initial-percent":12.345}}"#
        ))
        .is_ok());
    }

    #[test]
    fn bad_values() {
        assert!(settings(&format!(r#"{{{T},"version":"../x"}}"#)).is_err());
        assert!(settings(&format!(r#"{{{T},"version":"1","strategy":"big-bang"}}"#)).is_err());
        assert!(settings(&format!(r#"{{{T},"version":"1","typo":1}}"#)).is_err());
        let e = settings(&format!(
            r#"{{{T},"version":"1","health-check":{{"retry":1}}}}"#
        ))
        .expect_err("typo");
        assert!(e.contains("unknown field `retry`"), "{e}");
        let e = settings(&format!(
            r#"{{{T},"version":"1","health-check":{{"timeout":"soon"}}}}"#
        ))
        .expect_err("x");
        assert!(e.contains("`soon` is not a duration"), "{e}");
        for (bare, hint) in [
            ("5", "`5s`"),
            ("\"5\"", "`5s`"),
            ("\"10M\"", "`m` for minutes"),
        ] {
            let e = settings(&format!(
                r#"{{{T},"version":"1","health-check":{{"interval":{bare}}}}}"#
            ))
            .expect_err("no unit");
            assert!(e.contains(hint), "{e}");
        }
        let s = settings(&format!(
            r#"{{{T},"version":"1","health-check":{{"timeout":"2s","retries":0,"path":"/healthz"}}}}"#
        ))
        .expect("ok");
        let h = s.health.expect("health");
        assert_eq!(h.check.timeout, Duration::from_secs(2));
        assert_eq!(h.check.path, "/healthz");
    }

    fn rolling(extra: &str) -> Result<Rolling, String> {
        settings(&format!(
            r#"{{{T},"version":"1","strategy":"rolling",{extra}}}"#
        ))
        .map(|s| s.rolling.expect("rolling"))
    }

    #[test]
    fn batch_size_as_count_or_percentage() {
        for (extra, want) in [
            (r#""instances":5,"batch-size":"20%""#, 1),
            (r#""instances":3,"batch-size":"50%""#, 2),
            (r#""instances":3,"batch-size":"34%""#, 2),
            (r#""instances":3,"batch-size":"33%""#, 1),
            (r#""instances":3,"batch-size":"1%""#, 1),
            (r#""instances":4,"batch-size":"100%""#, 4),
            (r#""instances":10,"batch-size":"25%""#, 3),
            (r#""instances":4,"batch-size":3"#, 3),
            (r#""instances":4,"batch-size":9"#, 4),
            (r#""instances":4,"batch-size":"2""#, 2),
            (r#""instances":4,"max-unavailable":"50%""#, 2),
            (r#""instances":4,"batch-size":"50%","max-unavailable":2"#, 2),
            (r#""instances":4"#, 1),
        ] {
            assert_eq!(rolling(extra).expect(extra).batch_size, want, "{extra}");
        }
        for (extra, want) in [
            (
                r#""instances":4,"batch-size":"0%""#,
                "with.batch-size: `0%`: the percentage must be between 1% and 100%",
            ),
            (
                r#""instances":4,"batch-size":"101%""#,
                "with.batch-size: `101%`: the percentage must be between 1% and 100%",
            ),
            (
                r#""instances":4,"batch-size":"abc""#,
                "with.batch-size: `abc` is neither a count nor a percentage; write a count",
            ),
            (
                r#""instances":4,"batch-size":"x%""#,
                "with.batch-size: `x%` is not a percentage",
            ),
            (
                r#""instances":4,"batch-size":0"#,
                "with.batch-size: must be at least 1",
            ),
            (
                r#""instances":4,"batch-size":-1"#,
                "with.batch-size: `-1` is not a whole number",
            ),
            (
                r#""instances":4,"max-unavailable":"0%""#,
                "with.max-unavailable: `0%`",
            ),
            (
                r#""instances":4,"batch-size":"50%","max-unavailable":1"#,
                "with.batch-size: and max-unavailable disagree (2 vs 1 instances)",
            ),
        ] {
            let e = rolling(extra).expect_err(extra);
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn pause_between_batches() {
        let r = rolling(r#""instances":3,"pause":"1s""#).expect("ok");
        assert_eq!(r.pause, Some(Duration::from_secs(1)));
        assert_eq!(rolling(r#""instances":3"#).expect("ok").pause, None);
        let e = rolling(r#""instances":3,"pause":"soon""#).expect_err("x");
        assert!(e.contains("`soon` is not a duration"), "{e}");
        let e = settings(&format!(r#"{{{T},"version":"1","pause":"1s"}}"#)).expect_err("x");
        assert!(e.contains("with.pause: only for strategy rolling"), "{e}");
    }
}
