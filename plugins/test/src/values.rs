//! Config value types with readable errors: a duration written as `90s`,
//! `10m` or a number of seconds, and "one string or a list of strings".

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
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

/// One string or a list of strings (`junit: a.xml` or `junit: [a.xml, b.xml]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path or glob, or a list of them")
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
    fn one_or_many() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<OneOrMany>("\"a\"")?.0, ["a"]);
        assert_eq!(
            serde_json::from_str::<OneOrMany>("[\"a\",\"b\"]")?.0,
            ["a", "b"]
        );
        let e = serde_json::from_str::<OneOrMany>("3").map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("a path or glob, or a list of them")));
        Ok(())
    }
}
