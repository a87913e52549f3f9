//! The pipeline file exactly as written: serde types that mirror the YAML.
//!
//! Every struct denies unknown fields, so a misspelt key is an error (with
//! the list of allowed keys) instead of a silently ignored setting. Values
//! that need more than a type check (durations, sizes, names, paths) are kept
//! as written here and validated in `resolve`, where errors get a location.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{OnFail, OnInconclusive, When, WorkspaceAccess};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WirePipeline {
    pub version: u64,
    pub name: String,
    pub policy: Option<String>,
    #[serde(default)]
    pub defaults: WireDefaults,
    pub workspace: Option<String>,
    pub stages: IndexMap<String, WireStage>,
}

/// `defaults:`, applied to every stage that does not set its own value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WireDefaults {
    pub timeout: Option<Quantity>,
    pub memory: Option<Quantity>,
    pub output: Option<Quantity>,
    pub artifacts: Option<Quantity>,
    pub retries: Option<u32>,
}

/// One entry under `stages:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WireStage {
    pub uses: String,
    #[serde(default)]
    pub needs: Needs,
    /// Any YAML value; `resolve` insists on a mapping so that the error can
    /// say what `with:` is for.
    pub with: Option<serde_json::Value>,
    #[serde(default)]
    pub grants: WireGrants,
    #[serde(default)]
    pub gates: Vec<WireGate>,
    pub when: Option<When>,
    pub timeout: Option<Quantity>,
    pub grace_period: Option<Quantity>,
    pub retries: Option<u32>,
    pub environment: Option<String>,
    pub approval: Option<Approval>,
    pub on_inconclusive: Option<OnInconclusive>,
    /// `runs-on:` labels an agent must have (one label or a list);
    /// resolved into a `LabelSet`.
    pub runs_on: Option<sluice_types::OneOrMany>,
}

/// `grants:`; everything absent is denied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WireGrants {
    pub workspace: Option<WorkspaceAccess>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub network: Vec<String>,
    #[serde(default)]
    pub exec: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub tls_ca: Vec<String>,
    pub memory: Option<Quantity>,
    pub output: Option<Quantity>,
    pub artifacts: Option<Quantity>,
}

/// One entry under `gates:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WireGate {
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
    #[serde(default)]
    pub on_fail: OnFail,
}

/// `needs:` as a list, or a single name for the common one-dependency case.
#[derive(Debug, Default)]
pub struct Needs(pub Vec<String>);

impl<'de> Deserialize<'de> for Needs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NeedsVisitor;
        impl<'de> Visitor<'de> for NeedsVisitor {
            type Value = Needs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stage name or a list of stage names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Needs, E> {
                Ok(Needs(vec![v.to_owned()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Needs, E> {
                Ok(Needs(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Needs, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Needs(names))
            }
        }
        deserializer.deserialize_any(NeedsVisitor)
    }
}

/// `approval: required | none`, or a boolean.
#[derive(Debug, Clone, Copy)]
pub struct Approval(pub bool);

impl<'de> Deserialize<'de> for Approval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ApprovalVisitor;
        impl Visitor<'_> for ApprovalVisitor {
            type Value = Approval;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`required`, `none`, `true` or `false`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Approval, E> {
                Ok(Approval(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Approval, E> {
                match v {
                    "required" => Ok(Approval(true)),
                    "none" => Ok(Approval(false)),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(ApprovalVisitor)
    }
}

/// A duration or size exactly as written. Numbers are accepted here (and
/// turned back into text) so that `memory: 1048576` works and
/// `timeout: 600` gets a helpful "has no unit" error rather than a type error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity with a unit such as `10m` or `256MiB`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_accepts_a_name_or_a_list() {
        let one: WireStage = serde_yaml_ng::from_str("uses: x\nneeds: build\n").expect("valid");
        assert_eq!(one.needs.0, ["build"]);
        let many: WireStage = serde_yaml_ng::from_str("uses: x\nneeds: [a, b]\n").expect("valid");
        assert_eq!(many.needs.0, ["a", "b"]);
        let bad = serde_yaml_ng::from_str::<WireStage>("uses: x\nneeds: {a: 1}\n");
        assert!(bad.is_err());
    }

    #[test]
    fn approval_accepts_words_and_booleans() {
        let parse = |s: &str| {
            serde_yaml_ng::from_str::<WireStage>(&format!("uses: x\napproval: {s}\n"))
                .map(|stage| stage.approval.map(|a| a.0))
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("required"), Ok(Some(true)));
        assert_eq!(parse("none"), Ok(Some(false)));
        assert_eq!(parse("true"), Ok(Some(true)));
        assert_eq!(parse("false"), Ok(Some(false)));
        let err = parse("maybe").err().unwrap_or_default();
        assert!(
            err.contains("expected `required`, `none`, `true` or `false`"),
            "{err}"
        );
    }

    #[test]
    fn quantities_keep_their_text() {
        let d: WireDefaults =
            serde_yaml_ng::from_str("timeout: 10m\nmemory: 1048576\noutput: 1.5\n").expect("valid");
        assert_eq!(d.timeout, Some(Quantity("10m".into())));
        assert_eq!(d.memory, Some(Quantity("1048576".into())));
        assert_eq!(d.output, Some(Quantity("1.5".into())));
    }
}
