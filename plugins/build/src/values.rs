//! Config value types with readable errors: the version file, as a path or
//! as `{ path, regex }`. Durations are [`sluice_sdk::values::ConfigDuration`].

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// `with.version-file`: a file holding the version (`VERSION`), or a file
/// and a regular expression whose first capture group is the version
/// (`{ path: pyproject.toml, regex: '^version = "(.+)"' }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFile {
    /// File relative to the workspace.
    pub path: String,
    /// Regular expression (multi-line: `^`/`$` match at line ends).
    pub regex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFileMap {
    path: String,
    #[serde(default)]
    regex: Option<String>,
}

impl<'de> Deserialize<'de> for VersionFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VersionFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file name, or { path, regex }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VersionFile, E> {
                Ok(VersionFile {
                    path: v.to_string(),
                    regex: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VersionFile, A::Error> {
                let m = VersionFileMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(VersionFile {
                    path: m.path,
                    regex: m.regex,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_file_forms() -> Result<(), serde_json::Error> {
        let v: VersionFile = serde_json::from_str("\"VERSION\"")?;
        assert_eq!(
            v,
            VersionFile {
                path: "VERSION".into(),
                regex: None
            }
        );
        let v: VersionFile = serde_json::from_str(r#"{"path": "p.toml", "regex": "v=(.+)"}"#)?;
        assert_eq!(v.regex.as_deref(), Some("v=(.+)"));
        let e = serde_json::from_str::<VersionFile>(r#"{"path": "p", "regexp": "x"}"#);
        assert!(e.is_err_and(|e| e.to_string().contains("unknown field `regexp`")));
        let e = serde_json::from_str::<VersionFile>("7");
        assert!(e.is_err_and(|e| e.to_string().contains("a file name, or { path, regex }")));
        Ok(())
    }
}
