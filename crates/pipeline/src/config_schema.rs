//! Validate a stage's `with:` against the JSON Schema its plugin publishes
//! in `describe`, so a typo fails before the plugin runs, with the path of
//! the offending value.

use std::sync::Arc;

/// A compiled schema.
#[derive(Clone)]
pub struct ConfigSchema(Arc<jsonschema::Validator>);

impl ConfigSchema {
    /// Compile `schema` (JSON text). `Err` says why it is unusable.
    pub fn compile(schema: &str) -> Result<ConfigSchema, String> {
        let value: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| format!("the schema is not JSON: {e}"))?;
        let validator =
            jsonschema::validator_for(&value).map_err(|e| format!("the schema is invalid: {e}"))?;
        Ok(ConfigSchema(Arc::new(validator)))
    }

    /// Every violation in `config`, as `with.path: problem` lines.
    pub fn violations(&self, config: &serde_json::Value) -> Vec<String> {
        self.0
            .iter_errors(config)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "with".to_string()
                } else {
                    format!("with{}", path.replace('/', "."))
                };
                format!("{path}: {e}")
            })
            .collect()
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
}
