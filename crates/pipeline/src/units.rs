//! Durations (`10m`, `1h30m`, `500ms`) and sizes (`256MiB`, `512KB`, `1024`).
//!
//! Both parsers return a [`UnitError`] that says what was wrong and how to
//! write the value instead; the caller adds the location.

use std::time::Duration;

/// A value that is not a valid duration or size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    /// What is wrong, naming the value.
    pub message: String,
    /// How to write it instead.
    pub hint: String,
}

const DURATION_HINT: &str =
    "write a number followed by a unit, e.g. `90s`, `10m`, `1h30m` or `500ms` (units: ms, s, m, h, d)";

const SIZE_HINT: &str =
    "write a number of bytes or a number followed by a unit, e.g. `512KB`, `256MiB` or `1GiB` \
     (units: B, KB, MB, GB, KiB, MiB, GiB, TiB)";

/// Parses a duration such as `10m`, `90s`, `1h30m`, `1h 30m` or `500ms`.
///
/// A bare number is refused: `600` could mean seconds or minutes, and a
/// timeout off by a factor of 60 is a costly surprise. Months and years are
/// refused too, because `10M` (months, to `humantime`) is almost always a
/// typo for `10m`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    let error = |message: String| UnitError {
        message,
        hint: DURATION_HINT.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(error("the duration is empty".to_owned()));
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(UnitError {
            message: format!("`{trimmed}` has no unit"),
            hint: format!("write `{trimmed}s` for seconds or `{trimmed}m` for minutes"),
        });
    }
    for unit in trimmed
        .split(|c: char| !c.is_alphabetic())
        .filter(|unit| !unit.is_empty())
    {
        if matches!(
            unit,
            "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years"
        ) {
            return Err(UnitError {
                message: format!("`{trimmed}` uses `{unit}` (months or years)"),
                hint: "write `m` for minutes; timeouts longer than days are not supported"
                    .to_owned(),
            });
        }
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        let reason = match e {
            humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
                format!("unknown unit `{unit}`")
            }
            humantime::DurationError::NumberOverflow => "the number is too large".to_owned(),
            _ => e.to_string(),
        };
        error(format!("`{trimmed}` is not a duration: {reason}"))
    })
}

/// Parses a size in bytes: `1048576`, `512KB` (decimal, ×1000), `256MiB`
/// (binary, ×1024), `1.5GiB`. Units are case-insensitive and the trailing
/// `B` is optional (`256Mi`, `1G`), as in Kubernetes quantities.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let error = |message: String| UnitError {
        message,
        hint: SIZE_HINT.to_owned(),
    };
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(error(format!(
            "`{trimmed}` is not a size: it must start with a number"
        )));
    }
    let unit = unit.trim_start();
    let Some(factor) = unit_factor(unit) else {
        return Err(error(format!(
            "`{trimmed}` is not a size: unknown unit `{unit}`"
        )));
    };
    let too_large = || error(format!("`{trimmed}` is too large"));
    if let Ok(whole) = number.parse::<u64>() {
        // Integer arithmetic keeps exact byte counts exact.
        return whole.checked_mul(factor).ok_or_else(too_large);
    }
    let value: f64 = number.parse().map_err(|_| {
        error(format!(
            "`{trimmed}` is not a size: `{number}` is not a number"
        ))
    })?;
    // Precision loss only matters near u64::MAX, which is refused anyway.
    #[allow(clippy::cast_precision_loss)]
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(too_large());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

fn unit_factor(unit: &str) -> Option<u64> {
    const KI: u64 = 1024;
    let unit = unit.to_ascii_lowercase();
    let factor = match unit.strip_suffix('b').unwrap_or(&unit) {
        "" => 1,
        "k" => 1000,
        "m" => 1000_u64.pow(2),
        "g" => 1000_u64.pow(3),
        "t" => 1000_u64.pow(4),
        "ki" => KI,
        "mi" => KI.pow(2),
        "gi" => KI.pow(3),
        "ti" => KI.pow(4),
        _ => return None,
    };
    Some(factor)
}

/// Formats a byte count the way a person would write it in the pipeline
/// file (`4GiB`), for error messages.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, factor) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).ok();
        assert_eq!(ok("10m"), Some(Duration::from_secs(600)));
        assert_eq!(ok("90s"), Some(Duration::from_secs(90)));
        assert_eq!(ok("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(ok("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(ok("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(ok(" 2d "), Some(Duration::from_secs(2 * 86_400)));
    }

    #[test]
    fn duration_errors_explain_the_fix() {
        let err = |s: &str| parse_duration(s).err().map(|e| (e.message, e.hint));
        let (message, hint) = err("600").unwrap_or_default();
        assert_eq!(message, "`600` has no unit");
        assert!(hint.contains("`600s`"), "{hint}");
        let (message, _) = err("10x").unwrap_or_default();
        assert_eq!(message, "`10x` is not a duration: unknown unit `x`");
        let (message, hint) = err("10M").unwrap_or_default();
        assert!(message.contains("months"), "{message}");
        assert!(hint.contains("`m` for minutes"), "{hint}");
        assert!(err("").is_some());
        assert!(err("m").is_some());
        assert!(err("99999999999999999999h").is_some());
    }

    #[test]
    fn sizes() {
        let ok = |s: &str| parse_size(s).ok();
        assert_eq!(ok("1024"), Some(1024));
        assert_eq!(ok("256MiB"), Some(256 << 20));
        assert_eq!(ok("1GiB"), Some(1 << 30));
        assert_eq!(ok("512KB"), Some(512_000));
        assert_eq!(ok("512kb"), Some(512_000));
        assert_eq!(ok("256Mi"), Some(256 << 20));
        assert_eq!(ok("1.5 GiB"), Some(3 << 29));
        assert_eq!(ok("10B"), Some(10));
    }

    #[test]
    fn size_errors() {
        let message = |s: &str| parse_size(s).err().map(|e| e.message).unwrap_or_default();
        assert_eq!(
            message("12 parsecs"),
            "`12 parsecs` is not a size: unknown unit `parsecs`"
        );
        assert_eq!(
            message("MiB"),
            "`MiB` is not a size: it must start with a number"
        );
        assert_eq!(
            message("-1"),
            "`-1` is not a size: it must start with a number"
        );
        assert_eq!(
            message("1.2.3MiB"),
            "`1.2.3MiB` is not a size: `1.2.3` is not a number"
        );
        assert_eq!(message("99999999999TiB"), "`99999999999TiB` is too large");
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(4 << 30), "4GiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(256 << 20), "256MiB");
        assert_eq!(format_size(0), "0B");
    }
}
