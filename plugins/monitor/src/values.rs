//! Config value types with readable errors (durations are
//! [`sluice_sdk::values::ConfigDuration`]): percentages (`1%`, `"99.9%"` or a number of
//! percent) and latencies (`300ms`, `"0.3s"` or a number of milliseconds: a
//! latency threshold is in milliseconds, so a bare number is not ambiguous
//! here the way it is for a duration).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use sluice_sdk::values::ConfigDuration;

/// A percentage between 0 and 100: `1`, `99.9`, `"1%"`, `"99.9%"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl Percent {
    /// As a ratio between 0 and 1.
    pub fn ratio(self) -> f64 {
        self.0 / 100.0
    }
}

fn percent<E: de::Error>(v: f64) -> Result<Percent, E> {
    if v.is_finite() && (0.0..=100.0).contains(&v) {
        Ok(Percent(v))
    } else {
        Err(E::custom(format!(
            "{v} is not a percentage between 0 and 100 (write 1% as `1` or \"1%\")"
        )))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as 1, 99.9 or \"99.9%\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                percent(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                percent(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                percent(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
                let t = v.trim();
                let t = t.strip_suffix('%').unwrap_or(t).trim();
                match t.parse::<f64>() {
                    Ok(x) => percent(x),
                    Err(_) => Err(E::custom(format!(
                        "`{v}` is not a percentage; write e.g. \"1%\" or \"99.9%\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A latency in milliseconds: `300` (ms), `"300ms"`, `"0.3s"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Millis(pub f64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a latency such as \"300ms\" or a number of milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                Ok(Millis(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Err(E::custom(format!(
                    "{v} is negative; give a latency such as \"300ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Millis(v))
                } else {
                    Err(E::custom(format!("{v} is not a latency in milliseconds")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                if let Ok(n) = v.trim().parse::<f64>() {
                    return self.visit_f64(n);
                }
                // With a unit: the duration grammar shared with the runner.
                v.parse::<ConfigDuration>()
                    .map(|d| Millis(d.as_secs_f64() * 1000.0))
                    .map_err(|e| {
                        E::custom(format!(
                            "`{}` is not a latency: {}; write e.g. \"300ms\" or \"1.5s\", \
                             or a number of milliseconds",
                            e.value, e.problem
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration the way PromQL writes it in a range selector (`90s`, `1500ms`).
pub fn promql_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<Percent>("1")?.0, 1.0);
        assert_eq!(serde_json::from_str::<Percent>("\"99.9%\"")?.0, 99.9);
        assert!((serde_json::from_str::<Percent>("\"99.9 %\"")?.ratio() - 0.999).abs() < 1e-12);
        assert!(serde_json::from_str::<Percent>("101").is_err());
        assert!(serde_json::from_str::<Percent>("\"lots\"").is_err());
        Ok(())
    }

    #[test]
    fn latencies() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<Millis>("300")?.0, 300.0);
        assert_eq!(serde_json::from_str::<Millis>("\"300ms\"")?.0, 300.0);
        assert_eq!(serde_json::from_str::<Millis>("\"1s 500ms\"")?.0, 1500.0);
        assert_eq!(serde_json::from_str::<Millis>("\"250\"")?.0, 250.0);
        assert_eq!(serde_json::from_str::<Millis>("\"1.5s\"")?.0, 1500.0);
        let e = serde_json::from_str::<Millis>("\"fast\"").map_err(|e| e.to_string());
        assert!(
            e.is_err_and(|e| e.starts_with("`fast` is not a latency: expected a number before"))
        );
        assert!(serde_json::from_str::<Millis>("\"10M\"").is_err());
        Ok(())
    }

    #[test]
    fn durations() -> Result<(), serde_json::Error> {
        assert_eq!(promql_duration(Duration::from_secs(90)), "90s");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
        Ok(())
    }
}
