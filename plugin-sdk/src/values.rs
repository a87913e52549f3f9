//! Config value types with readable errors, for a stage's `with:` block.
//!
//! - [`ConfigDuration`]: a duration written as `"90s"`, `"500ms"`,
//!   `"1h 30m"` (humantime syntax) or a number of seconds.
//! - [`OneOrMany`]: one string or a list of strings
//!   (`junit: a.xml` or `junit: [a.xml, b.xml]`).
//!
//! Both deserialize from any serde format; when the value is wrong, the
//! error says what was written and what is expected, and
//! [`Context::config`](crate::Context::config) prefixes it with the key
//! path (`with.timeout: …`).
//!
//! ```
//! use sluice_sdk::values::{ConfigDuration, OneOrMany};
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     timeout: Option<ConfigDuration>,
//!     junit: Option<OneOrMany>,
//! }
//!
//! let c: Config = serde_json::from_str(r#"{"timeout": "10m", "junit": "a.xml"}"#).unwrap();
//! assert_eq!(c.timeout.map(|t| t.get()), Some(Duration::from_secs(600)));
//! assert_eq!(c.junit.unwrap().0, ["a.xml"]);
//! ```

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A duration in config: `"90s"`, `"500ms"`, `"10m"`, `"1h 30m"`
/// (humantime syntax) or a number of seconds (`90`, `1.5`).
///
/// Negative numbers and unparseable text are refused with a message that
/// shows how to write one. Read it with [`get`](ConfigDuration::get) or
/// through [`Deref`] to [`Duration`].
///
/// ```
/// use sluice_sdk::values::ConfigDuration;
/// use std::time::Duration;
///
/// let d: ConfigDuration = serde_json::from_str("\"1m 30s\"").unwrap();
/// assert_eq!(d.get(), Duration::from_secs(90));
/// let d: ConfigDuration = serde_json::from_str("1.5").unwrap();
/// assert_eq!(d.as_millis(), 1500); // through Deref
///
/// let e = serde_json::from_str::<ConfigDuration>("\"soon\"").unwrap_err();
/// assert!(e.to_string().contains("`soon` is not a duration"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// The duration.
    ///
    /// ```
    /// # use sluice_sdk::values::ConfigDuration;
    /// # use std::time::Duration;
    /// assert_eq!(ConfigDuration(Duration::from_secs(5)).get(), Duration::from_secs(5));
    /// ```
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Deref for ConfigDuration {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        ConfigDuration(d)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\" or \"500ms\", or a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDuration, E> {
                Ok(ConfigDuration(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDuration, E> {
                u64::try_from(v)
                    .map(|s| ConfigDuration(Duration::from_secs(s)))
                    .map_err(|_| {
                        E::custom(format!("{v} is negative; give a duration such as \"10s\""))
                    })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigDuration, E> {
                Duration::try_from_secs_f64(v)
                    .map(ConfigDuration)
                    .map_err(|_| E::custom(format!("{v} is not a valid number of seconds")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDuration, E> {
                humantime::parse_duration(v.trim())
                    .map(ConfigDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "`{v}` is not a duration ({e}); write e.g. \"500ms\", \"90s\" or \"1h 30m\""
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// One string or a list of strings: `a.xml` or `[a.xml, b.xml]`.
///
/// A single string becomes a list of one; an empty list stays empty (the
/// stage decides whether that is allowed).
///
/// ```
/// use sluice_sdk::values::OneOrMany;
///
/// let one: OneOrMany = serde_json::from_str("\"a.xml\"").unwrap();
/// assert_eq!(one.0, ["a.xml"]);
/// let many: OneOrMany = serde_json::from_str(r#"["a.xml", "b.xml"]"#).unwrap();
/// assert_eq!(many.0, ["a.xml", "b.xml"]);
/// assert!(serde_json::from_str::<OneOrMany>("3").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<ConfigDuration>(json)
            .map(ConfigDuration::get)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("\"0s\""), Ok(Duration::ZERO));
        assert_eq!(duration("\"200ms\""), Ok(Duration::from_millis(200)));
        assert_eq!(duration("\"10m\""), Ok(Duration::from_secs(600)));
        assert_eq!(duration("\" 5s \""), Ok(Duration::from_secs(5)));
        assert_eq!(duration("\"1h 30m\""), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(duration("\"soon\"").is_err_and(|e| e.contains("`soon` is not a duration")));
        assert!(duration("-1").is_err_and(|e| e.contains("-1 is negative")));
        assert!(duration("-0.5").is_err_and(|e| e.contains("not a valid number of seconds")));
        assert!(duration("true").is_err_and(|e| e.contains("a duration such as")));
    }

    #[test]
    fn duration_access() {
        let d = ConfigDuration::from(Duration::from_secs(3));
        assert_eq!(d.get(), Duration::from_secs(3));
        assert_eq!(d.as_secs(), 3);
        assert_eq!(Duration::from(d), Duration::from_secs(3));
    }

    #[test]
    fn one_or_many() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<OneOrMany>("\"a\"")?.0, ["a"]);
        assert_eq!(
            serde_json::from_str::<OneOrMany>("[\"a\",\"b\"]")?.0,
            ["a", "b"]
        );
        assert!(serde_json::from_str::<OneOrMany>("[]")?.0.is_empty());
        let e = serde_json::from_str::<OneOrMany>("3").map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("a string or a list of strings")));
        assert!(serde_json::from_str::<OneOrMany>("[1]").is_err());
        Ok(())
    }
}
