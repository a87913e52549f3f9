//! LCOV tracefiles: one record per source file (`SF:` ... `end_of_record`)
//! with `LF:` (lines found) and `LH:` (lines hit). Coverage is the sum of
//! `LH` over the sum of `LF`. A record without `LF`/`LH` (some generators
//! leave them out) is counted from its `DA:<line>,<hits>[,<checksum>]`
//! lines instead.

use super::Lines;

#[derive(Default)]
struct Record {
    lf: Option<u64>,
    lh: Option<u64>,
    da_found: u64,
    da_hit: u64,
    any: bool,
}

impl Record {
    fn lines(&self) -> Lines {
        Lines {
            valid: self.lf.unwrap_or(self.da_found),
            covered: self.lh.unwrap_or(self.da_hit),
        }
    }
}

/// Sums the line counts of every record. Fails on a malformed number or
/// when the text holds no LCOV records at all.
pub fn parse(text: &str) -> Result<Lines, String> {
    let mut total = Lines::default();
    let mut records = 0usize;
    let mut rec = Record::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let number = |v: &str| -> Result<u64, String> {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("line {}: `{line}`: expected a whole number", i + 1))
        };
        if line == "end_of_record" {
            add(&mut total, &rec);
            records += 1;
            rec = Record::default();
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "SF" => rec.any = true,
            "LF" => {
                rec.lf = Some(number(value)?);
                rec.any = true;
            }
            "LH" => {
                rec.lh = Some(number(value)?);
                rec.any = true;
            }
            "DA" => {
                let mut fields = value.split(',');
                let _line_no = fields.next();
                let hits = fields.next().ok_or_else(|| {
                    format!("line {}: `{line}`: expected DA:<line>,<hits>", i + 1)
                })?;
                // Some generators write hit counts as signed or float values.
                let hits: f64 = hits
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {}: `{line}`: expected a hit count", i + 1))?;
                rec.da_found += 1;
                if hits > 0.0 {
                    rec.da_hit += 1;
                }
                rec.any = true;
            }
            _ => {}
        }
    }
    // A last record without `end_of_record` still counts.
    if rec.any {
        add(&mut total, &rec);
        records += 1;
    }
    if records == 0 {
        return Err(
            "no LCOV records found (expected SF:, DA:, LF:/LH: and end_of_record lines); \
                    is this an LCOV tracefile?"
                .to_string(),
        );
    }
    Ok(total)
}

fn add(total: &mut Lines, rec: &Record) {
    let l = rec.lines();
    total.valid = total.valid.saturating_add(l.valid);
    total.covered = total.covered.saturating_add(l.covered);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::LineCoverage;

    const FIXTURE: &str = include_str!("../../../../tests/fixtures/test-stage/coverage.lcov");

    #[test]
    fn sums_lf_lh_and_counts_da_when_missing() -> Result<(), String> {
        // 36/40 + 9/20 + (3 of 4 DA lines hit) = 48/64.
        let lines = parse(FIXTURE)?;
        assert_eq!(
            lines,
            Lines {
                valid: 64,
                covered: 48
            }
        );
        assert_eq!(LineCoverage::Counts(lines).percent(), Some(75.0));
        Ok(())
    }

    #[test]
    fn last_record_without_terminator_counts() -> Result<(), String> {
        assert_eq!(
            parse("SF:a.rs\nLF:10\nLH:5\n")?,
            Lines {
                valid: 10,
                covered: 5
            }
        );
        Ok(())
    }

    #[test]
    fn malformed_input_is_an_error() {
        let e = parse("SF:a\nLF:ten\nend_of_record\n").expect_err("bad LF");
        assert!(e.starts_with("line 2: `LF:ten`"), "{e}");
        assert!(parse("<coverage/>").is_err());
        assert!(parse("").is_err());
    }
}
