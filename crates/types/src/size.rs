//! Sizes in bytes: `1048576`, `512KB`, `256MiB`, `1.5GiB`.
//!
//! # Grammar
//!
//! ```text
//! size   = number [blanks] [unit]      surrounding blanks are ignored
//! number = digits [ "." [digits] ] | "." digits
//! unit   = B                           bytes (a bare number is bytes too)
//!        | K | M | G | T | P | E       decimal: ×1000, ×1000², …
//!        | Ki | Mi | Gi | Ti | Pi | Ei  binary: ×1024, ×1024², …
//!          each optionally followed by B; case-insensitive (`512kb`, `256Mi`)
//! ```
//!
//! A fraction is rounded to the nearest byte (`1.5KiB` is 1536 bytes,
//! `0.5B` is 1). A value of `u64::MAX` bytes or more is an error.
//!
//! The unit table is `bytesize`'s ([`bytesize::Unit`]); the number is read
//! here, not by `bytesize`'s own parser, because that one saturates on
//! overflow (`99999999999TiB` would silently become `u64::MAX`) and
//! truncates fractions, where the pipeline file has always refused the
//! first and rounded the second.
//!
//! # Canonical form
//!
//! [`Display`](fmt::Display) writes the largest binary unit that divides
//! the size exactly, else bytes: `4GiB`, `256MiB`, `500KiB` (512000 bytes),
//! `1536B`, `0B`. Parsing the printed form gives back the same size.

use std::fmt;
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// A number of bytes, see the [module docs](self) for the grammar.
///
/// ```
/// use sluice_types::ByteSize;
///
/// let s: ByteSize = "256MiB".parse().unwrap();
/// assert_eq!(s.as_u64(), 256 << 20);
/// assert_eq!(s.to_string(), "256MiB");
/// assert_eq!("512KB".parse::<ByteSize>().unwrap().as_u64(), 512_000);
/// assert_eq!("1024".parse::<ByteSize>().unwrap().to_string(), "1KiB");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn b(n: u64) -> ByteSize {
        ByteSize(n)
    }

    /// `n` KiB (saturating).
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 10))
    }

    /// `n` MiB (saturating).
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 20))
    }

    /// `n` GiB (saturating).
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 30))
    }

    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// An approximate form for people, with one decimal: `1.5 KiB`,
    /// `300 B` (`bytesize`'s IEC display). The canonical
    /// [`Display`](fmt::Display) form is exact instead: `1536B`.
    pub fn approx(self) -> impl fmt::Display {
        bytesize::ByteSize::b(self.0).display().iec()
    }
}

impl From<u64> for ByteSize {
    fn from(n: u64) -> Self {
        ByteSize(n)
    }
}

impl From<ByteSize> for u64 {
    fn from(s: ByteSize) -> Self {
        s.0
    }
}

/// What is wrong with a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeProblem {
    /// It does not start with a digit or `.` (also: empty, negative).
    #[error("it must start with a number")]
    NoNumber,
    /// The number part does not read as a number (`1.2.3`).
    #[error("`{number}` is not a number")]
    BadNumber {
        /// The number as written.
        number: String,
    },
    /// The unit is not a size unit (`parsecs`).
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// `u64::MAX` bytes or more.
    #[error("it is too large")]
    TooLarge,
}

/// A value that is not a valid [`ByteSize`].
///
/// Its `Display` is the message (naming the value); [`hint`](Self::hint)
/// says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct SizeError {
    /// The value as written, without surrounding blanks.
    pub value: String,
    /// What is wrong.
    pub problem: SizeProblem,
    /// How to write it instead.
    pub hint: String,
}

const SIZE_HINT: &str = "write a number of bytes or a number followed by a unit, e.g. `512KB`, \
     `256MiB` or `1GiB` (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";

impl SizeError {
    fn new(value: &str, problem: SizeProblem) -> SizeError {
        SizeError {
            value: value.to_owned(),
            problem,
            hint: SIZE_HINT.to_owned(),
        }
    }

    /// What is wrong, naming the value: `` `12 parsecs` is not a size:
    /// unknown unit `parsecs` ``, `` `99999999999TiB` is too large ``.
    pub fn message(&self) -> String {
        let value = &self.value;
        match &self.problem {
            SizeProblem::TooLarge => format!("`{value}` is too large"),
            problem => format!("`{value}` is not a size: {problem}"),
        }
    }
}

impl Hinted for SizeError {
    fn hint_text(&self) -> &str {
        &self.hint
    }
}

/// Bytes per unit; `""` is bytes. The names are `bytesize`'s.
fn unit_factor(unit: &str) -> Option<u64> {
    use bytesize::Unit;
    if unit.is_empty() {
        return Some(1);
    }
    let factor = match unit.parse::<Unit>().ok()? {
        Unit::Byte => 1,
        Unit::KiloByte => bytesize::KB,
        Unit::MegaByte => bytesize::MB,
        Unit::GigaByte => bytesize::GB,
        Unit::TeraByte => bytesize::TB,
        Unit::PetaByte => bytesize::PB,
        Unit::ExaByte => bytesize::EB,
        Unit::KibiByte => bytesize::KIB,
        Unit::MebiByte => bytesize::MIB,
        Unit::GibiByte => bytesize::GIB,
        Unit::TebiByte => bytesize::TIB,
        Unit::PebiByte => bytesize::PIB,
        Unit::ExbiByte => bytesize::EIB,
        // `Unit` is non-exhaustive; a unit added later is refused until
        // it is listed here.
        _ => return None,
    };
    Some(factor)
}

fn parse(text: &str) -> Result<u64, SizeProblem> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(SizeProblem::NoNumber);
    }
    let unit = unit.trim_start();
    let factor = unit_factor(unit).ok_or_else(|| SizeProblem::UnknownUnit {
        unit: unit.to_owned(),
    })?;
    if let Ok(whole) = number.parse::<u64>() {
        // Integer arithmetic keeps exact byte counts exact.
        return whole.checked_mul(factor).ok_or(SizeProblem::TooLarge);
    }
    let value: f64 = number.parse().map_err(|_| SizeProblem::BadNumber {
        number: number.to_owned(),
    })?;
    // Precision loss only matters near u64::MAX, which is refused anyway.
    #[allow(clippy::cast_precision_loss)]
    let bytes = (value * factor as f64).round();
    #[allow(clippy::cast_precision_loss)]
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(SizeProblem::TooLarge);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, SizeError> {
        let trimmed = text.trim();
        parse(trimmed)
            .map(ByteSize)
            .map_err(|problem| SizeError::new(trimmed, problem))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 6] = [
            ("EiB", bytesize::EIB),
            ("PiB", bytesize::PIB),
            ("TiB", bytesize::TIB),
            ("GiB", bytesize::GIB),
            ("MiB", bytesize::MIB),
            ("KiB", bytesize::KIB),
        ];
        let bytes = self.0;
        for (unit, factor) in UNITS {
            if bytes >= factor && bytes.is_multiple_of(factor) {
                return write!(f, "{}{unit}", bytes / factor);
            }
        }
        write!(f, "{bytes}B")
    }
}

string_serde!(
    ByteSize,
    "a size in bytes (1048576) or with a unit (\"256MiB\", \"512KB\")",
    numbers: true
);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Option<u64> {
        text.parse::<ByteSize>().ok().map(ByteSize::as_u64)
    }

    fn message(text: &str) -> String {
        text.parse::<ByteSize>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn sizes() {
        assert_eq!(ok("1024"), Some(1024));
        assert_eq!(ok("256MiB"), Some(256 << 20));
        assert_eq!(ok("1GiB"), Some(1 << 30));
        assert_eq!(ok("512KB"), Some(512_000));
        assert_eq!(ok("512kb"), Some(512_000));
        assert_eq!(ok("256Mi"), Some(256 << 20));
        assert_eq!(ok("1.5 GiB"), Some(3 << 29));
        assert_eq!(ok("10B"), Some(10));
        assert_eq!(ok(" 2g "), Some(2_000_000_000));
        assert_eq!(ok("0.5B"), Some(1));
        assert_eq!(ok(".5KiB"), Some(512));
        assert_eq!(ok("1PiB"), Some(1 << 50));
        assert_eq!(ok("15EiB"), Some(15 << 60));
    }

    #[test]
    fn errors() {
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
        assert_eq!(message(""), "`` is not a size: it must start with a number");
        assert_eq!(
            message("1.2.3MiB"),
            "`1.2.3MiB` is not a size: `1.2.3` is not a number"
        );
        assert_eq!(message("99999999999TiB"), "`99999999999TiB` is too large");
        assert_eq!(message("16EiB"), "`16EiB` is too large");
        assert_eq!(message("1e3"), "`1e3` is not a size: unknown unit `e3`");
        let hint = "x"
            .parse::<ByteSize>()
            .err()
            .map(|e| e.hint)
            .unwrap_or_default();
        assert!(hint.contains("`256MiB`"), "{hint}");
    }

    #[test]
    fn canonical_form() {
        let show = |n: u64| ByteSize(n).to_string();
        assert_eq!(show(4 << 30), "4GiB");
        assert_eq!(show(1536), "1536B");
        assert_eq!(show(1024), "1KiB");
        assert_eq!(show(256 << 20), "256MiB");
        assert_eq!(show(512_000), "500KiB");
        assert_eq!(show(0), "0B");
        assert_eq!(show(u64::MAX), format!("{}B", u64::MAX));
        assert_eq!(ByteSize(1536).approx().to_string(), "1.5 KiB");
    }

    #[test]
    fn serde_goes_through_the_text() {
        let from = |json: &str| serde_json::from_str::<ByteSize>(json).map_err(|e| e.to_string());
        assert_eq!(from("\"1MiB\""), Ok(ByteSize(1 << 20)));
        assert_eq!(from("100"), Ok(ByteSize(100)));
        assert!(from("-1").is_err_and(|e| e.contains("it must start with a number")));
        assert!(from("\"lots\"").is_err_and(|e| e.contains("`lots` is not a size")));
        assert!(from("[]").is_err_and(|e| e.contains("a size in bytes")));
        assert_eq!(
            serde_json::to_string(&ByteSize(3 << 20)).ok().as_deref(),
            Some("\"3MiB\"")
        );
    }
}
