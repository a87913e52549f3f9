//! Config value types with readable errors: expected statuses (`200`,
//! `"2xx"`, or a list of them) and `retries` (a count, or a count with its
//! back-off). Durations and "one string or a list" are
//! [`sluice_sdk::values`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use sluice_sdk::values::ConfigDuration;

/// One accepted status: an exact code or a class such as `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// Exactly this code.
    Code(u16),
    /// Any code of this hundred (`2` for `2xx`).
    Class(u16),
}

impl StatusPattern {
    /// Whether `status` is accepted.
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(c) => c == status,
            Self::Class(c) => status / 100 == c,
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if let Some(class) = t.strip_suffix("xx") {
            if let Ok(c @ 1..=5) = class.parse::<u16>() {
                return Ok(Self::Class(c));
            }
        }
        match t.parse::<u16>() {
            Ok(c) => Self::code(u64::from(c)),
            Err(_) => Err(format!(
                "`{s}` is not a status; write a code such as 200 or a class such as \"2xx\""
            )),
        }
    }

    fn code(c: u64) -> Result<Self, String> {
        match u16::try_from(c) {
            Ok(c @ 100..=599) => Ok(Self::Code(c)),
            _ => Err(format!("{c} is not an HTTP status (100-599)")),
        }
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// `expect-status`: one status or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec(pub Vec<StatusPattern>);

impl StatusSpec {
    /// Whether `status` is accepted.
    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|p| p.matches(status))
    }

    /// The first exact code, for a numeric gate threshold.
    pub fn first_code(&self) -> Option<u16> {
        self.0.iter().find_map(|p| match p {
            StatusPattern::Code(c) => Some(*c),
            StatusPattern::Class(_) => None,
        })
    }
}

impl Default for StatusSpec {
    fn default() -> Self {
        Self(vec![StatusPattern::Code(200)])
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(" or "))
    }
}

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status (200, \"2xx\") or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusSpec, E> {
                StatusPattern::code(v)
                    .map(|p| StatusSpec(vec![p]))
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusSpec, E> {
                Err(E::custom(format!("{v} is not an HTTP status (100-599)")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusSpec, E> {
                StatusPattern::parse(v)
                    .map(|p| StatusSpec(vec![p]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusSpec, A::Error> {
                let mut out = Vec::new();
                while let Some(one) = seq.next_element::<StatusSpec>()? {
                    out.extend(one.0);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "empty list; give at least one status, e.g. [200, 204]",
                    ));
                }
                Ok(StatusSpec(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `retries`: a number of extra attempts, or
/// `{attempts, backoff, max}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retries {
    /// Extra attempts after the first.
    pub attempts: u32,
    /// First back-off, doubled after each attempt.
    pub backoff: Option<Duration>,
    /// Longest back-off.
    pub max: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetriesObject {
    attempts: u32,
    #[serde(default)]
    backoff: Option<ConfigDuration>,
    #[serde(default)]
    max: Option<ConfigDuration>,
}

impl<'de> Deserialize<'de> for Retries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Retries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of retries, or {attempts, backoff, max}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Retries, E> {
                let attempts =
                    u32::try_from(v).map_err(|_| E::custom(format!("{v} retries is too many")))?;
                Ok(Retries {
                    attempts,
                    ..Retries::default()
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Retries, E> {
                Err(E::custom(format!(
                    "{v} is negative; give 0 or more retries"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Retries, A::Error> {
                let o = RetriesObject::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Retries {
                    attempts: o.attempts,
                    backoff: o.backoff.map(|d| d.0),
                    max: o.max.map(|d| d.0),
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
    fn statuses() -> Result<(), serde_json::Error> {
        let s: StatusSpec = serde_json::from_str("[200, \"3xx\", \"404\"]")?;
        assert!(s.matches(200) && s.matches(302) && s.matches(404));
        assert!(!s.matches(201) && !s.matches(500));
        assert_eq!(s.to_string(), "200 or 3xx or 404");
        assert_eq!(s.first_code(), Some(200));
        assert!(serde_json::from_str::<StatusSpec>("700").is_err());
        assert!(serde_json::from_str::<StatusSpec>("\"ok\"").is_err());
        assert!(serde_json::from_str::<StatusSpec>("[]").is_err());
        assert!(StatusSpec::default().matches(200));
        Ok(())
    }

    #[test]
    fn retries() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<Retries>("3")?.attempts, 3);
        let r: Retries =
            serde_json::from_str(r#"{"attempts": 2, "backoff": "100ms", "max": "1s"}"#)?;
        assert_eq!(r.backoff, Some(Duration::from_millis(100)));
        assert_eq!(r.max, Some(Duration::from_secs(1)));
        assert!(serde_json::from_str::<Retries>(r#"{"attempts": 2, "delay": "1s"}"#).is_err());
        assert!(serde_json::from_str::<Retries>("-1").is_err());
        Ok(())
    }
}
