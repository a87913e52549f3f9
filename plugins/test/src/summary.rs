//! What a person reads: the one-paragraph report summary and the
//! `test-summary.md` artifact listing every failed test.

use std::fmt::Write;

use crate::junit::{Outcome, Results};
use crate::reports::CoverageReport;

/// How many failed tests the short summary lists (the artifact lists all).
const SHORT_LIST: usize = 5;

/// `4 passed, 3 failed, 2 skipped (9 tests in 0.41s); line coverage 75.0%`
/// (`, 2 not run` after `skipped` when a runner stopped early).
pub fn headline(r: &Results, coverage: Option<&CoverageReport>) -> String {
    let not_run = if r.not_run() > 0 {
        format!(", {} not run", r.not_run())
    } else {
        String::new()
    };
    let mut s = format!(
        "{} passed, {} failed, {} skipped{not_run} ({} tests in {:.2}s)",
        r.passed(),
        r.failed(),
        r.skipped(),
        r.total(),
        r.duration_s
    );
    if r.flaky() > 0 {
        let _ = write!(s, ", {} flaky", r.flaky());
    }
    if let Some(pct) = coverage.and_then(|c| c.percent) {
        let _ = write!(s, "; line coverage {pct:.1}%");
    }
    s
}

/// The report summary: the headline, then the first few failed tests with
/// the first line of their message.
pub fn short(r: &Results, coverage: Option<&CoverageReport>) -> String {
    let mut s = headline(r, coverage);
    if r.total() == 0 {
        s.push_str("\n\nNo tests ran: check the command and with.junit.");
    }
    let failures: Vec<_> = r.failures().collect();
    if !failures.is_empty() {
        s.push('\n');
        for f in failures.iter().take(SHORT_LIST) {
            let _ = write!(s, "\n- `{}`", f.id());
            if let Some(m) = &f.message {
                let _ = write!(s, ": {}", one_line(m));
            }
        }
        if failures.len() > SHORT_LIST {
            let _ = write!(
                s,
                "\n- … and {} more (see test-summary.md)",
                failures.len() - SHORT_LIST
            );
        }
    }
    s
}

/// The `test-summary.md` artifact.
pub fn markdown(r: &Results, coverage: Option<&CoverageReport>, sources: &[String]) -> String {
    let mut s = String::from("# Test summary\n\n");
    let _ = writeln!(
        s,
        "| passed | failed | skipped | not run | total | duration |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {:.2}s |\n",
        r.passed(),
        r.failed(),
        r.skipped(),
        r.not_run(),
        r.total(),
        r.duration_s
    );
    if r.flaky() > 0 {
        let _ = writeln!(s, "Flaky (passed on a retry): {}\n", r.flaky());
    }
    if let Some(c) = coverage {
        match c.percent {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "Line coverage: {p:.1}% ({}, {})\n",
                    c.format.name(),
                    c.rel
                );
            }
            None => {
                let _ = writeln!(s, "Line coverage: no lines measured ({})\n", c.rel);
            }
        }
    }
    let _ = writeln!(s, "Reports: {}\n", sources.join(", "));
    let failures: Vec<_> = r.failures().collect();
    if failures.is_empty() {
        s.push_str("## No failed tests\n");
        return s;
    }
    let _ = writeln!(s, "## Failed tests ({})\n", failures.len());
    for f in failures {
        let kind = if f.outcome == Outcome::Error {
            " (error)"
        } else {
            ""
        };
        let message = f.message.as_deref().unwrap_or("(no message)");
        let _ = writeln!(s, "- `{}`{kind}: {}", f.id(), one_line(message));
    }
    s
}

/// Keeps markdown intact: no line breaks, no stray backticks, bounded length.
fn one_line(m: &str) -> String {
    let flat: String = m
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut out: String = flat.chars().take(300).collect();
    if flat.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::parse;

    const PYTEST: &str = include_str!("../../../tests/fixtures/test-stage/pytest.xml");

    #[test]
    fn markdown_lists_every_failure_with_its_message() -> Result<(), String> {
        let r = parse(PYTEST)?;
        let md = markdown(&r, None, &["reports/junit.xml".into()]);
        assert!(md.contains("| 4 | 3 | 2 | 0 | 9 | 0.41s |"), "{md}");
        assert!(md.contains(
            "- `tests.test_pricing::test_bulk_discount_rounds_half_up`: AssertionError: assert Decimal('17.99') == Decimal('18.00')\n"
        ), "{md}");
        assert!(
            md.contains("- `tests.test_broken` (error): collection failure"),
            "{md}"
        );
        Ok(())
    }

    #[test]
    fn short_summary() -> Result<(), String> {
        let r = parse(PYTEST)?;
        let s = short(&r, None);
        assert!(
            s.starts_with("4 passed, 3 failed, 2 skipped (9 tests in 0.41s)"),
            "{s}"
        );
        assert_eq!(s.matches("\n- `").count(), 3);
        assert!(
            s.contains("\n- `tests.test_broken`: collection failure"),
            "{s}"
        );
        let none = short(&Results::default(), None);
        assert!(none.contains("No tests ran"));
        Ok(())
    }

    #[test]
    fn not_run_tests_are_named_in_the_headline() {
        let mut r = Results::default();
        r.unnamed.passed = 92;
        r.unnamed.failed = 1;
        r.unnamed.skipped = 1;
        r.unnamed.not_run = 2;
        assert_eq!(
            headline(&r, None),
            "92 passed, 1 failed, 1 skipped, 2 not run (96 tests in 0.00s)"
        );
        assert!(markdown(&r, None, &[]).contains("| 92 | 1 | 1 | 2 | 96 | 0.00s |"));
    }
}
