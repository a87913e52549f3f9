//! Config value types with readable errors: a duration written as `90s`,
//! `10m` or a number of seconds; the version file, as a path or as
//! `{ path, regex }`.

use std::fmt;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A timeout: `"90s"`, `"10m"`, `"1h 30m"` (humantime syntax) or a number
/// of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timeout;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\" or \"10m\", or a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timeout, E> {
                Ok(Timeout(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timeout, E> {
                u64::try_from(v)
                    .map(|s| Timeout(Duration::from_secs(s)))
                    .map_err(|_| {
                        E::custom(format!("{v} is negative; give a duration such as \"10m\""))
                    })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timeout, E> {
                Duration::try_from_secs_f64(v)
                    .map(Timeout)
                    .map_err(|_| E::custom(format!("{v} is not a valid number of seconds")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timeout, E> {
                humantime::parse_duration(v.trim())
                    .map(Timeout)
                    .map_err(|e| {
                        E::custom(format!(
                        "`{v}` is not a duration ({e}); write e.g. \"90s\", \"10m\" or \"1h 30m\""
                    ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

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

    fn timeout(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<Timeout>(json)
            .map(|t| t.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("\"10m\""), Ok(Duration::from_secs(600)));
        assert_eq!(timeout("\"1h 30m\""), Ok(Duration::from_secs(5400)));
        assert_eq!(timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert!(timeout("\"soon\"").is_err_and(|e| e.contains("not a duration")));
        assert!(timeout("-1").is_err());
        assert!(timeout("true").is_err_and(|e| e.contains("a duration such as")));
    }

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
