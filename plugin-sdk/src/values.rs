//! Config value types with readable errors, for a stage's `with:` block.
//!
//! They are the runner's own types (crate `sluice-types`, also reachable as
//! [`sluice_sdk::types`](crate::types)), so a value means the same in a
//! stage's `with:` as in the pipeline file around it:
//!
//! - [`ConfigDuration`] (= [`sluice_types::Duration`]): `"90s"`, `"500ms"`,
//!   `"10m"`, `"1h30m"`, `"1h 30m"`. A bare number (`600` or `"600"`) is
//!   refused, because it could mean seconds or minutes, and so are months
//!   and years (`"10M"` is almost always a typo for `"10m"`); the message
//!   says how to write it instead. The grammar is in
//!   [`sluice_types::duration`] and in `docs/values.md`.
//! - [`ByteSize`]: `1048576` (bytes), `"512KB"`, `"256MiB"`, `"1.5GiB"`;
//!   grammar in [`sluice_types::size`].
//! - [`NetPattern`]: `"api.example.com:443"`, `"*.internal:*"`;
//!   grammar in [`sluice_types::net`].
//! - [`OneOrMany`]: one string or a list of strings
//!   (`junit: a.xml` or `junit: [a.xml, b.xml]`).
//!
//! All deserialize from any serde format; when the value is wrong, the
//! error says what was written, what is wrong and how to write it, and
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
//! assert_eq!(c.junit.unwrap().as_slice(), ["a.xml"]);
//!
//! let e = serde_json::from_str::<Config>(r#"{"timeout": 600}"#).err().unwrap();
//! assert!(e.to_string().starts_with("`600` has no unit; write `600s` for seconds"));
//! ```

pub use sluice_types::{ByteSize, NetPattern, OneOrMany};

/// A duration in config: `"90s"`, `"500ms"`, `"10m"`, `"1h 30m"`.
///
/// The same type as [`sluice_types::Duration`] (the runner's): read it with
/// [`get`](sluice_types::Duration::get) or through `Deref` to
/// [`std::time::Duration`].
///
/// ```
/// use sluice_sdk::values::ConfigDuration;
/// use std::time::Duration;
///
/// let d: ConfigDuration = serde_json::from_str("\"1m 30s\"").unwrap();
/// assert_eq!(d.get(), Duration::from_secs(90));
/// assert_eq!(d.as_millis(), 90_000); // through Deref
/// assert_eq!(ConfigDuration(Duration::from_secs(5)).to_string(), "5s");
///
/// let e = serde_json::from_str::<ConfigDuration>("\"soon\"").unwrap_err();
/// assert!(e.to_string().contains("`soon` is not a duration"));
/// ```
pub use sluice_types::Duration as ConfigDuration;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn duration(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<ConfigDuration>(json)
            .map(ConfigDuration::get)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(duration("\"0s\""), Ok(Duration::ZERO));
        assert_eq!(duration("\"200ms\""), Ok(Duration::from_millis(200)));
        assert_eq!(duration("\"10m\""), Ok(Duration::from_secs(600)));
        assert_eq!(duration("\" 5s \""), Ok(Duration::from_secs(5)));
        assert_eq!(duration("\"1h 30m\""), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("\"1.5s\""), Ok(Duration::from_millis(1500)));
        assert!(duration("\"soon\"").is_err_and(|e| e.contains("`soon` is not a duration")));
        assert!(duration("\"-1s\"").is_err_and(|e| e.contains("unexpected `-`")));
        assert!(duration("true").is_err_and(|e| e.contains("a duration such as")));
    }

    /// Issue 16: the SDK read `600` as 600 seconds and `10M` as ten months,
    /// where the runner refuses both. Now both refuse them the same way.
    #[test]
    fn bare_numbers_and_months_are_refused_like_the_runner_does() {
        let hint = "write `600s` for seconds or `600m` for minutes";
        assert!(
            duration("600").is_err_and(|e| e.starts_with("`600` has no unit") && e.contains(hint))
        );
        assert!(duration("\"600\"").is_err_and(|e| e.contains(hint)));
        assert!(duration("1.5").is_err_and(|e| e.contains("`1.5` has no unit")));
        assert!(duration("-1").is_err_and(|e| e.contains("`-1` is not a duration")));
        assert!(
            duration("\"10M\"").is_err_and(|e| e.contains("`10M` uses `M` (months or years)")
                && e.contains("write `m` for minutes"))
        );
        assert!(duration("\"1y\"").is_err());
    }

    #[test]
    fn config_names_the_key() {
        #[derive(Debug, serde::Deserialize)]
        struct Config {
            #[allow(dead_code)]
            timeout: ConfigDuration,
        }
        let ctx = crate::Context::for_test("s", r#"{"timeout": 600}"#);
        let e = ctx.config::<Config>().map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|e| e.contains(
                "with.timeout: `600` has no unit; write `600s` for seconds or `600m` for minutes"
            )),
            "{e:?}"
        );
    }

    #[test]
    fn duration_access() {
        let d = ConfigDuration::from(Duration::from_secs(3));
        assert_eq!(d.get(), Duration::from_secs(3));
        assert_eq!(d.as_secs(), 3);
        assert_eq!(Duration::from(d), Duration::from_secs(3));
        assert_eq!(ConfigDuration(Duration::from_secs(3)), d);
    }

    #[test]
    fn sizes_and_lists() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::from_str::<ByteSize>("\"1MiB\"")?,
            ByteSize(1 << 20)
        );
        assert_eq!(serde_json::from_str::<ByteSize>("100")?, ByteSize(100));
        assert_eq!(
            serde_json::from_str::<OneOrMany>("\"a\"")?.as_slice(),
            ["a"]
        );
        assert_eq!(
            serde_json::from_str::<OneOrMany>("[\"a\",\"b\"]")?.into_vec(),
            ["a", "b"]
        );
        let e = serde_json::from_str::<OneOrMany>("3").map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("a string or a list of strings")));
        Ok(())
    }
}
