//! Durations: `90s`, `10m`, `1h30m`, `1h 30m`, `500ms`, `2d`.
//!
//! # Grammar
//!
//! ```text
//! duration  = component { [blanks] component }      surrounding blanks are ignored
//! component = number [blanks] unit
//! number    = digits [ "." digits ]                  1.5h = 1h30m; exact to the nanosecond
//! unit      = ns | us | µs | ms | s | m | h | d | w  (case-sensitive)
//! ```
//!
//! The long spellings humantime accepts are accepted too (`nsec`, `usec`,
//! `msec`, `millis`, `sec`, `secs`, `second(s)`, `min`, `mins`, `minute(s)`,
//! `hr`, `hrs`, `hour(s)`, `day(s)`, `wk`, `wks`, `week(s)`), so every
//! duration the runner has read before still reads the same. Refused:
//!
//! - **a bare number** (`600`, `1.5`, or the JSON/YAML number `600`): it
//!   could mean seconds or minutes, and a timeout off by a factor of 60 is a
//!   costly surprise. The hint says to write `600s` or `600m`.
//! - **months and years** (`M`, `month(s)`, `y`, `yr(s)`, `year(s)`): `10M`
//!   is almost always a typo for `10m`, and no timeout is that long.
//! - a number without its unit inside a sum (`1h30`), unknown units
//!   (`10x`, `10S`), signs (`-5s`), fractions finer than a nanosecond, and
//!   totals beyond `u64::MAX` seconds (an error, never a panic).
//!
//! There is no upper bound here; callers cap what they use (a stage's
//! timeout is at most 7 days).
//!
//! The units and their spellings are humantime's, but the text is read
//! here rather than by `humantime::parse_duration`: humantime 2.4 panics
//! (`overflow in Duration::new`) on `18446744073709551615s 500ms 500ms`,
//! reads `1 0s` as ten seconds, and reports errors as byte offsets
//! ("expected number at 11") where this parser names the word.
//!
//! # Canonical form
//!
//! [`Display`](fmt::Display) writes the non-zero parts from days down to
//! nanoseconds, largest first, with no spaces: `1d2h3m4s5ms6us7ns`; so `90s`
//! prints as `1m30s`, `1.5h` as `1h30m`, `1500ms` as `1s500ms`, and zero as
//! `0s`. Weeks are written as days (`1w` prints as `7d`). Parsing the
//! printed form gives back the same duration for every value.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// A duration written with units, see the [module docs](self) for the
/// grammar. Any [`std::time::Duration`] is a valid `Duration`; the field
/// is public.
///
/// ```
/// use sluice_types::Duration;
///
/// let d: Duration = "1h 30m".parse().unwrap();
/// assert_eq!(d.get(), std::time::Duration::from_secs(5400));
/// assert_eq!(d.to_string(), "1h30m");
/// assert_eq!("90s".parse::<Duration>().unwrap().to_string(), "1m30s");
///
/// let e = "600".parse::<Duration>().unwrap_err();
/// assert_eq!(e.to_string(), "`600` has no unit");
/// assert_eq!(e.hint, "write `600s` for seconds or `600m` for minutes");
/// assert!("10M".parse::<Duration>().is_err()); // months: a typo for `10m`
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration(std::time::Duration::from_millis(millis))
    }

    /// The [`std::time::Duration`].
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl Deref for Duration {
    type Target = std::time::Duration;

    fn deref(&self) -> &std::time::Duration {
        &self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// What is wrong with a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationProblem {
    /// Nothing but blanks.
    #[error("the duration is empty")]
    Empty,
    /// The whole value is a number (`600`).
    #[error("it has no unit")]
    NoUnit,
    /// A unit for months or years (`10M`).
    #[error("it uses `{unit}` (months or years)")]
    MonthsOrYears {
        /// The unit as written.
        unit: String,
    },
    /// A unit that is not one of the duration units (`10x`).
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// A number inside a sum has no unit (`30` in `1h30`).
    #[error("`{number}` has no unit")]
    MissingUnit {
        /// The number as written.
        number: String,
    },
    /// A word where a number must start (`please` in `10m please`).
    #[error("expected a number before `{word}`")]
    ExpectedNumber {
        /// The word found.
        word: String,
    },
    /// A character that belongs to neither a number nor a unit (`-`, `,`).
    #[error("unexpected `{found}`")]
    UnexpectedCharacter {
        /// The character found.
        found: char,
    },
    /// A fraction finer than a nanosecond (`1.0000000001s`).
    #[error("`{number}{unit}` is finer than a nanosecond")]
    TooPrecise {
        /// The number as written.
        number: String,
        /// The unit as written.
        unit: String,
    },
    /// More than `u64::MAX` seconds.
    #[error("the number is too large")]
    TooLarge,
}

/// A value that is not a valid [`Duration`].
///
/// Its `Display` is the message (naming the value); [`hint`](Self::hint)
/// says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct DurationError {
    /// The value as written, without surrounding blanks.
    pub value: String,
    /// What is wrong.
    pub problem: DurationProblem,
    /// How to write it instead.
    pub hint: String,
}

const DURATION_HINT: &str =
    "write a number followed by a unit, e.g. `90s`, `10m`, `1h30m` or `500ms` (units: ms, s, m, h, d)";

impl DurationError {
    fn new(value: &str, problem: DurationProblem) -> DurationError {
        let hint = match &problem {
            DurationProblem::NoUnit => {
                format!("write `{value}s` for seconds or `{value}m` for minutes")
            }
            DurationProblem::MonthsOrYears { .. } => {
                "write `m` for minutes; timeouts longer than days are not supported".to_owned()
            }
            _ => DURATION_HINT.to_owned(),
        };
        DurationError {
            value: value.to_owned(),
            problem,
            hint,
        }
    }

    /// What is wrong, naming the value: `` `600` has no unit ``,
    /// `` `10x` is not a duration: unknown unit `x` ``.
    pub fn message(&self) -> String {
        let value = &self.value;
        match &self.problem {
            DurationProblem::Empty => self.problem.to_string(),
            DurationProblem::NoUnit => format!("`{value}` has no unit"),
            DurationProblem::MonthsOrYears { unit } => {
                format!("`{value}` uses `{unit}` (months or years)")
            }
            problem => format!("`{value}` is not a duration: {problem}"),
        }
    }
}

impl Hinted for DurationError {
    fn hint_text(&self) -> &str {
        &self.hint
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Nanoseconds per unit, for every spelling the grammar accepts.
fn unit_nanos(unit: &str) -> Option<u128> {
    const S: u128 = NANOS_PER_SEC;
    Some(match unit {
        "ns" | "nsec" | "nanos" => 1,
        "us" | "µs" | "usec" => 1_000,
        "ms" | "msec" | "millis" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => S,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * S,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * S,
        "d" | "day" | "days" => 86_400 * S,
        "w" | "wk" | "wks" | "week" | "weeks" => 7 * 86_400 * S,
        _ => return None,
    })
}

fn is_months_or_years(unit: &str) -> bool {
    matches!(
        unit,
        "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years"
    )
}

fn is_unit_char(c: char) -> bool {
    c.is_ascii_alphabetic() || c == 'µ'
}

/// The text of a `digits [ "." digits ]` number at the start of `rest`.
fn take_number(rest: &str) -> &str {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let whole = digits(rest);
    match rest[whole..].strip_prefix('.') {
        Some(after) if digits(after) > 0 => &rest[..whole + 1 + digits(after)],
        _ => &rest[..whole],
    }
}

/// `number` (digits, an optional `.` and digits) times `per_unit`
/// nanoseconds, exactly.
fn component_nanos(number: &str, per_unit: u128) -> Result<u128, DurationProblem> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .ok_or(DurationProblem::TooLarge)?;
    }
    nanos = nanos
        .checked_mul(per_unit)
        .ok_or(DurationProblem::TooLarge)?;
    // Trailing zeros add nothing; without them, a fraction exact to the
    // nanosecond has at most 16 digits (for weeks), so u128 never overflows
    // on one that is exact.
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        let exact = (|| {
            let mut numerator: u128 = 0;
            let mut denominator: u128 = 1;
            for digit in fraction.bytes() {
                numerator = numerator
                    .checked_mul(10)?
                    .checked_add(u128::from(digit - b'0'))?;
                denominator = denominator.checked_mul(10)?;
            }
            let scaled = numerator.checked_mul(per_unit)?;
            scaled
                .is_multiple_of(denominator)
                .then_some(scaled / denominator)
        })();
        let part = exact.ok_or_else(|| DurationProblem::TooPrecise {
            number: number.to_owned(),
            unit: String::new(),
        })?;
        nanos = nanos.checked_add(part).ok_or(DurationProblem::TooLarge)?;
    }
    Ok(nanos)
}

fn parse(text: &str) -> Result<std::time::Duration, DurationProblem> {
    if text.is_empty() {
        return Err(DurationProblem::Empty);
    }
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationProblem::NoUnit);
    }
    // Months and years are refused wherever they appear, before anything
    // else, so `10M` says "months" even when something else is wrong too.
    if let Some(unit) = text
        .split(|c: char| !c.is_alphabetic())
        .find(|unit| is_months_or_years(unit))
    {
        return Err(DurationProblem::MonthsOrYears {
            unit: unit.to_owned(),
        });
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number = take_number(rest);
        if number.is_empty() {
            let found = rest.chars().next().unwrap_or(' ');
            return Err(if is_unit_char(found) {
                let word_len = rest.find(|c: char| !is_unit_char(c)).unwrap_or(rest.len());
                DurationProblem::ExpectedNumber {
                    word: rest[..word_len].to_owned(),
                }
            } else {
                DurationProblem::UnexpectedCharacter { found }
            });
        }
        rest = rest[number.len()..].trim_start();
        let unit_len = rest.find(|c: char| !is_unit_char(c)).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(match rest.chars().next() {
                None => DurationProblem::MissingUnit {
                    number: number.to_owned(),
                },
                Some(c) if c.is_ascii_digit() => DurationProblem::MissingUnit {
                    number: number.to_owned(),
                },
                Some(found) => DurationProblem::UnexpectedCharacter { found },
            });
        }
        let per_unit = unit_nanos(unit).ok_or_else(|| DurationProblem::UnknownUnit {
            unit: unit.to_owned(),
        })?;
        let nanos = component_nanos(number, per_unit).map_err(|problem| match problem {
            DurationProblem::TooPrecise { number, .. } => DurationProblem::TooPrecise {
                number,
                unit: unit.to_owned(),
            },
            other => other,
        })?;
        total = total.checked_add(nanos).ok_or(DurationProblem::TooLarge)?;
        rest = rest[unit_len..].trim_start();
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| DurationProblem::TooLarge)?;
    // The remainder is below 10^9, so it fits a u32.
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| DurationProblem::TooLarge)?;
    Ok(std::time::Duration::new(secs, nanos))
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        let trimmed = text.trim();
        parse(trimmed)
            .map(Duration)
            .map_err(|problem| DurationError::new(trimmed, problem))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs % 86_400 / 3_600, "h"),
            (secs % 3_600 / 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        for (count, unit) in parts {
            if count > 0 {
                write!(f, "{count}{unit}")?;
            }
        }
        Ok(())
    }
}

string_serde!(
    Duration,
    "a duration such as \"90s\", \"10m\" or \"1h30m\"",
    numbers: true
);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Option<std::time::Duration> {
        text.parse::<Duration>().ok().map(Duration::get)
    }

    fn err(text: &str) -> (String, String) {
        match text.parse::<Duration>() {
            Ok(d) => (format!("parsed as {d}"), String::new()),
            Err(e) => (e.to_string(), e.hint),
        }
    }

    const fn secs(s: u64) -> std::time::Duration {
        std::time::Duration::from_secs(s)
    }

    #[test]
    fn durations() {
        assert_eq!(ok("10m"), Some(secs(600)));
        assert_eq!(ok("90s"), Some(secs(90)));
        assert_eq!(ok("1h30m"), Some(secs(5400)));
        assert_eq!(ok("1h 30m"), Some(secs(5400)));
        assert_eq!(ok("1.5h"), Some(secs(5400)));
        assert_eq!(ok("500ms"), Some(std::time::Duration::from_millis(500)));
        assert_eq!(ok(" 2d "), Some(secs(2 * 86_400)));
        assert_eq!(ok("10 m"), Some(secs(600)));
        assert_eq!(ok("2 hours 5 minutes"), Some(secs(7500)));
        assert_eq!(ok("1w"), Some(secs(7 * 86_400)));
        assert_eq!(ok("0s"), Some(secs(0)));
        assert_eq!(ok("3us"), Some(std::time::Duration::from_micros(3)));
        assert_eq!(ok("3µs"), Some(std::time::Duration::from_micros(3)));
        assert_eq!(ok("0.5s"), Some(std::time::Duration::from_millis(500)));
        assert_eq!(ok("1.50s"), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(ok("18446744073709551615s"), Some(secs(u64::MAX)));
    }

    /// Issue 16: the SDK read `600` as seconds and `10M` as ten months.
    #[test]
    fn bare_numbers_and_months_are_refused() {
        let (message, hint) = err("600");
        assert_eq!(message, "`600` has no unit");
        assert_eq!(hint, "write `600s` for seconds or `600m` for minutes");
        let (message, hint) = err("10M");
        assert_eq!(message, "`10M` uses `M` (months or years)");
        assert!(hint.contains("`m` for minutes"), "{hint}");
        assert!(err("1 year").0.contains("(months or years)"));
        assert!(err("2y").0.contains("(months or years)"));
        assert_eq!(
            err("1.5").1,
            "write `1.5s` for seconds or `1.5m` for minutes"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let message = |text: &str| err(text).0;
        assert_eq!(message("10x"), "`10x` is not a duration: unknown unit `x`");
        assert_eq!(message("10S"), "`10S` is not a duration: unknown unit `S`");
        assert_eq!(message(""), "the duration is empty");
        assert_eq!(message("   "), "the duration is empty");
        assert_eq!(
            message("m"),
            "`m` is not a duration: expected a number before `m`"
        );
        assert_eq!(message("-5s"), "`-5s` is not a duration: unexpected `-`");
        assert_eq!(
            message("10 minutes please"),
            "`10 minutes please` is not a duration: expected a number before `please`"
        );
        assert_eq!(message("5s,"), "`5s,` is not a duration: unexpected `,`");
        assert_eq!(
            message("1h30"),
            "`1h30` is not a duration: `30` has no unit"
        );
        assert_eq!(message("1 0s"), "`1 0s` is not a duration: `1` has no unit");
        assert_eq!(message("1.s"), "`1.s` is not a duration: unexpected `.`");
        assert_eq!(
            message("1.0000000001s"),
            "`1.0000000001s` is not a duration: `1.0000000001s` is finer than a nanosecond"
        );
        assert_eq!(
            message("1.5ns"),
            "`1.5ns` is not a duration: `1.5ns` is finer than a nanosecond"
        );
        assert_eq!(
            ok("1.000000000000000000000000000000000000000000s"),
            Some(secs(1))
        );
        assert!(err("1x").1.contains("units: ms, s, m, h, d"));
    }

    #[test]
    fn overflow_is_an_error() {
        let too_large = "`{}` is not a duration: the number is too large";
        for text in [
            "99999999999999999999h",
            "18446744073709551616s",
            "18446744073709551615s 500ms 500ms",
            "9999999999999999999999999999999999999999999s",
            "213503982334602d",
        ] {
            assert_eq!(err(text).0, too_large.replace("{}", text), "{text}");
        }
        assert_eq!(
            ok("18446744073709551615s 999ms 999us 999ns"),
            Some(std::time::Duration::MAX)
        );
    }

    #[test]
    fn canonical_form() {
        let show = |text: &str| text.parse::<Duration>().map(|d| d.to_string()).ok();
        assert_eq!(show("90s").as_deref(), Some("1m30s"));
        assert_eq!(show("1h 30m").as_deref(), Some("1h30m"));
        assert_eq!(show("500ms").as_deref(), Some("500ms"));
        assert_eq!(show("1500ms").as_deref(), Some("1s500ms"));
        assert_eq!(show("0ms").as_deref(), Some("0s"));
        assert_eq!(show("1w").as_deref(), Some("7d"));
        assert_eq!(show("25h").as_deref(), Some("1d1h"));
        assert_eq!(
            Duration(std::time::Duration::MAX).to_string(),
            "213503982334601d7h15s999ms999us999ns"
        );
    }

    #[test]
    fn serde_goes_through_the_text() {
        let from = |json: &str| serde_json::from_str::<Duration>(json).map_err(|e| e.to_string());
        assert_eq!(from("\"10m\""), Ok(Duration::from_secs(600)));
        assert!(from("600")
            .is_err_and(|e| e
                .starts_with("`600` has no unit; write `600s` for seconds or `600m` for minutes")));
        assert!(from("1.5").is_err_and(|e| e.starts_with("`1.5` has no unit")));
        assert!(from("\"10M\"").is_err_and(|e| e.contains("months")));
        assert!(from("true").is_err_and(|e| e.contains("a duration such as")));
        assert_eq!(
            serde_json::to_string(&Duration::from_secs(5400))
                .ok()
                .as_deref(),
            Some("\"1h30m\"")
        );
    }
}
