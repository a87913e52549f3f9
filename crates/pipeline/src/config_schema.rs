//! Validate a stage's `with:` against the JSON Schema its plugin publishes
//! in `describe`, so a typo fails before the plugin runs, with the path of
//! the offending value and, for an unknown key, the closest key the plugin
//! knows ("did you mean").

use std::sync::Arc;

/// A compiled schema (and its JSON, to name the keys a mapping allows).
#[derive(Clone)]
pub struct ConfigSchema {
    validator: Arc<jsonschema::Validator>,
    schema: Arc<serde_json::Value>,
}

/// One way `with:` breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, below `with:` (`["junit", "0"]` is `with.junit.0`); for an
    /// unknown key, the key itself.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it (the closest known key, or the keys allowed).
    pub hint: Option<String>,
    /// The offending value is (or contains) a `${{ }}` template: its type
    /// is only known once expanded, at run time.
    pub templated: bool,
}

impl Violation {
    /// `with.a.b` (or `with`).
    pub fn dotted(&self) -> String {
        std::iter::once("with")
            .chain(self.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl ConfigSchema {
    /// Compile `schema` (JSON text). `Err` says why it is unusable.
    pub fn compile(schema: &str) -> Result<ConfigSchema, String> {
        let value: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| format!("the schema is not JSON: {e}"))?;
        let validator =
            jsonschema::validator_for(&value).map_err(|e| format!("the schema is invalid: {e}"))?;
        Ok(ConfigSchema {
            validator: Arc::new(validator),
            schema: Arc::new(value),
        })
    }

    /// Every violation in `config`. An unknown key is one violation per key,
    /// with the closest key the schema allows at that place as the hint.
    pub fn check(&self, config: &serde_json::Value) -> Vec<Violation> {
        let mut out = Vec::new();
        for e in self.validator.iter_errors(config) {
            let path: Vec<String> = e
                .instance_path()
                .to_string()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect();
            let templated = contains_template(e.instance());
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                e.kind()
            {
                let schema_path = e.schema_path().to_string();
                let allowed = self.allowed_keys(&schema_path);
                for key in unexpected {
                    let mut at = path.clone();
                    at.push(key.clone());
                    // A few edits away, or one is the start of the other
                    // (`junitxml` for `junit`).
                    let close =
                        sluice_types::text::closest(key, allowed.iter().map(String::as_str))
                            .or_else(|| {
                                allowed
                                    .iter()
                                    .map(String::as_str)
                                    .filter(|k| k.len() >= 4 && key.len() >= 4)
                                    .find(|k| key.starts_with(k) || k.starts_with(key.as_str()))
                            });
                    let hint = match close {
                        Some(close) => Some(format!("did you mean `{close}`?")),
                        None if !allowed.is_empty() => {
                            Some(format!("the keys allowed here are: {}", allowed.join(", ")))
                        }
                        None => None,
                    };
                    out.push(Violation {
                        path: at,
                        message: format!("unknown key `{key}`"),
                        hint,
                        templated: false,
                    });
                }
                continue;
            }
            out.push(Violation {
                path,
                message: e.to_string(),
                hint: None,
                templated,
            });
        }
        out
    }

    /// Every violation in `config`, as `with.path: problem` lines (with the
    /// hint in parentheses).
    pub fn violations(&self, config: &serde_json::Value) -> Vec<String> {
        self.check(config)
            .into_iter()
            .map(|v| match &v.hint {
                Some(hint) => format!("{}: {} ({hint})", v.dotted(), v.message),
                None => format!("{}: {}", v.dotted(), v.message),
            })
            .collect()
    }

    /// The property names of the schema object whose `additionalProperties`
    /// failed (`…/additionalProperties` in the schema path), sorted; empty
    /// when the path cannot be followed (through a `$ref`, say).
    fn allowed_keys(&self, schema_path: &str) -> Vec<String> {
        let object = schema_path
            .strip_suffix("/additionalProperties")
            .unwrap_or(schema_path);
        let mut keys: Vec<String> = self
            .schema
            .pointer(object)
            .and_then(|o| o.get("properties"))
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

/// Whether a value is or holds a `${{ }}` template.
fn contains_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains("${{"),
        serde_json::Value::Array(a) => a.iter().any(contains_template),
        serde_json::Value::Object(o) => o.values().any(contains_template),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_paths() {
        let s = ConfigSchema::compile(
            r#"{"type":"object","required":["paths"],"additionalProperties":false,
               "properties":{"paths":{"type":"array","items":{"type":"string"}}}}"#,
        )
        .expect("schema");
        assert!(s
            .violations(&serde_json::json!({"paths": ["a"]}))
            .is_empty());
        let v = s.violations(&serde_json::json!({"paths": [1], "extra": true}));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|m| m.starts_with("with.paths.0:")), "{v:?}");
        assert!(ConfigSchema::compile("{").is_err());
    }

    #[test]
    fn unknown_keys_get_the_closest_known_key_and_templates_are_marked() {
        let s = ConfigSchema::compile(
            r#"{"type":"object","additionalProperties":false,
               "properties":{"junit":{"type":"array"},"format":{"type":"string"},
                 "coverage":{"type":"object","additionalProperties":false,
                   "properties":{"path":{"type":"string"}}},
                 "entropy-threshold":{"type":"number"}}}"#,
        )
        .expect("schema");
        let v = s.check(&serde_json::json!({
            "junitxml": ["a.xml"], "fromat": "cargo", "coverage": {"paht": "x"},
            "entropy-threshold": "${{ env.T }}", "zzz": 1
        }));
        let found = |path: &str| v.iter().find(|x| x.dotted() == path).cloned();
        let junit = found("with.junitxml").expect("junitxml");
        assert_eq!(junit.message, "unknown key `junitxml`");
        assert_eq!(junit.hint.as_deref(), Some("did you mean `junit`?"));
        assert_eq!(
            found("with.fromat").and_then(|x| x.hint),
            Some("did you mean `format`?".into())
        );
        assert_eq!(
            found("with.coverage.paht").and_then(|x| x.hint),
            Some("did you mean `path`?".into())
        );
        let zzz = found("with.zzz").expect("zzz");
        assert!(
            zzz.hint
                .as_deref()
                .is_some_and(|h| h.contains("coverage, entropy-threshold, format, junit")),
            "{zzz:?}"
        );
        let templated = found("with.entropy-threshold").expect("type error");
        assert!(templated.templated, "{templated:?}");
    }
}
