//! The JSON Schema (draft 2020-12) of the stage's `with:` block, returned by
//! `describe`. It mirrors [`Config`](crate::config::Config); the stage
//! validates again itself, with messages that name the key.

use serde_json::{json, Value};

use crate::config::{DEFAULT_EXCLUDES, DEFAULT_JSONC};
use crate::rules::Rule;

/// The schema as a JSON value.
pub fn schema() -> Value {
    let globs = json!({ "type": "array", "items": { "type": "string" } });
    let severity = json!({
        "oneOf": [
            { "enum": ["off", "note", "warning", "warn", "error"] },
            { "type": "boolean" }
        ]
    });
    let rules: serde_json::Map<String, Value> = Rule::ALL
        .iter()
        .map(|r| {
            let mut s = severity.clone();
            if let Some(o) = s.as_object_mut() {
                o.insert(
                    "description".into(),
                    json!(format!(
                        "{} (default: {})",
                        r.description(),
                        r.default_level()
                    )),
                );
            }
            (r.name().to_string(), s)
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sluice lint stage",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "paths": {
                "description": "Directories or files to check, relative to the workspace (default: the whole workspace).",
                "type": "array", "items": { "type": "string" }, "minItems": 1
            },
            "include": {
                "description": "Globs a file must match to be checked (default [\"**\"]). `*` stays within a directory, `**` crosses directories.",
                "allOf": [globs]
            },
            "exclude": {
                "description": format!("Globs of files or directories to skip, in addition to {}.", DEFAULT_EXCLUDES.join(", ")),
                "allOf": [globs]
            },
            "default-excludes": {
                "description": "Whether the built-in excludes apply (default true).",
                "type": "boolean"
            },
            "gitignore": {
                "description": "Whether files ignored by the workspace's .gitignore, .ignore and .git/info/exclude files are skipped (default true).",
                "type": "boolean"
            },
            "jsonc": {
                "description": format!("Globs of JSON files that may contain comments and trailing commas (default {}).", DEFAULT_JSONC.join(", ")),
                "allOf": [globs]
            },
            "max-file-size": {
                "description": "Files above this size get a large-file finding and are not read (default 1MiB).",
                "oneOf": [
                    { "type": "integer", "minimum": 0 },
                    { "type": "string", "pattern": "^\\s*[0-9.]+\\s*[A-Za-z]*\\s*$" }
                ]
            },
            "line-endings": {
                "description": "Allowed line endings; `any` switches the line-endings rule off (default any).",
                "enum": ["lf", "crlf", "any"]
            },
            "rules": {
                "description": "Per-rule level: off, note, warning or error (true: the default level, false: off). \
                    The stage itself rejects unknown rule names, suggesting the closest one.",
                "type": "object",
                "properties": rules,
                // Not `false`: the stage's own message for a typo is better
                // than a generic schema error.
                "additionalProperties": severity
            },
            "builtin": {
                "description": "Whether to run the stage's own checks (default true).",
                "type": "boolean"
            },
            "external": {
                "description": "External linters run through exec; each program must be in grants.exec.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["command", "format"],
                    "properties": {
                        "command": {
                            "description": "Program (a bare name from grants.exec) and arguments.",
                            "type": "array", "items": { "type": "string" }, "minItems": 1
                        },
                        "format": {
                            "description": "clippy-json: cargo's --message-format=json stream; sarif: a SARIF 2.1.0 log.",
                            "enum": ["clippy-json", "sarif"]
                        },
                        "cwd": { "description": "Working directory relative to the workspace.", "type": "string" },
                        "output": { "description": "Read the report from this file (relative to the workspace) instead of stdout.", "type": "string" },
                        "name": { "description": "Tool name in findings and SARIF.", "type": "string" },
                        "timeout": { "description": "Kill the program after this long, e.g. 90s or 10m.", "type": "string" }
                    }
                }
            },
            "fail-on": {
                "description": "When the stage fails its own `lint` gate: error, warning or never (default never: gate on lint.errors in the pipeline).",
                "enum": ["error", "warning", "never"]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_every_key_and_rule() {
        let s = schema();
        let props = s["properties"].as_object().expect("properties");
        for key in [
            "paths",
            "include",
            "exclude",
            "default-excludes",
            "gitignore",
            "jsonc",
            "max-file-size",
            "line-endings",
            "rules",
            "builtin",
            "external",
            "fail-on",
        ] {
            assert!(props.contains_key(key), "{key}");
        }
        for r in Rule::ALL {
            assert!(s["properties"]["rules"]["properties"]
                .get(r.name())
                .is_some());
        }
        assert_eq!(s["additionalProperties"], false);
    }

    #[test]
    fn schema_keys_match_the_config_type() {
        // Every key the schema documents is accepted by the config type.
        let all = r#"{"paths": ["."], "include": ["**"], "exclude": [], "default-excludes": true,
            "gitignore": true, "jsonc": [], "max-file-size": "1MiB", "line-endings": "lf", "rules": {},
            "builtin": true, "external": [{"command": ["cat"], "format": "sarif", "cwd": ".",
            "output": "x.sarif", "name": "n", "timeout": "1m"}], "fail-on": "error"}"#;
        let ctx = sluice_sdk::Context::for_test("lint", all);
        assert!(ctx.config::<crate::config::Config>().is_ok());
    }
}
