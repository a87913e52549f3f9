//! cargo-nextest's run summary, read from its console output.
//!
//! nextest's JUnit report lists the tests that ran, nothing else: tests it
//! skipped (`#[ignore]`d, or left out by a filter set) and tests it never
//! ran because it stopped at the first failure (fail-fast) are missing.
//! Its summary line on stderr has both numbers:
//!
//! ```text
//!      Summary [   0.036s] 2/5 tests run: 1 passed, 1 failed, 2 skipped
//! ```
//!
//! `2/5 tests run` means 3 of the 5 selected tests were not run; without
//! a `/` every selected test ran. When the stage ran `cargo nextest` (or
//! `cargo-nextest`) itself, it adds these as tests without a name
//! (skipped and not run), minus any the JUnit report already lists.

/// What nextest's summary line says beyond its JUnit report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests skipped (ignored or filtered out by a filter set).
    pub skipped: usize,
    /// Tests selected to run but never started (fail-fast).
    pub not_run: usize,
}

/// The last `Summary [...] N tests run: ...` line of nextest's stderr.
pub fn summary(stderr: &str) -> Option<Summary> {
    stderr.lines().rev().find_map(summary_line)
}

fn summary_line(line: &str) -> Option<Summary> {
    let line = strip_ansi(line);
    let rest = line.trim_start().strip_prefix("Summary [")?;
    let (_, rest) = rest.split_once(']')?;
    let (run, counts) = rest.trim().split_once(" run:")?;
    let run = run
        .strip_suffix(" tests")
        .or_else(|| run.strip_suffix(" test"))?;
    let not_run = match run.split_once('/') {
        Some((ran, of)) => {
            let ran: usize = ran.trim().parse().ok()?;
            let of: usize = of.trim().parse().ok()?;
            of.checked_sub(ran)?
        }
        None => {
            run.trim().parse::<usize>().ok()?;
            0
        }
    };
    let skipped = counts
        .split(',')
        .filter_map(|c| c.trim().split_once(' '))
        .find(|(_, what)| *what == "skipped")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    Some(Summary { skipped, not_run })
}

/// nextest colours its output on a terminal; the stage's pipe usually
/// gets none, but `--color always` may be set.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDERR: &str =
        include_str!("../../../tests/fixtures/test-stage/nextest-fail-fast.stderr");

    #[test]
    fn fail_fast_summary() {
        assert_eq!(
            summary(STDERR),
            Some(Summary {
                skipped: 2,
                not_run: 3
            })
        );
    }

    #[test]
    fn complete_runs_and_variants() {
        let s = |l: &str| summary(l);
        assert_eq!(
            s("     Summary [   0.467s] 5 tests run: 3 passed, 2 failed, 2 skipped"),
            Some(Summary {
                skipped: 2,
                not_run: 0
            })
        );
        assert_eq!(
            s("Summary [   0.1s] 1 test run: 1 passed"),
            Some(Summary {
                skipped: 0,
                not_run: 0
            })
        );
        assert_eq!(
            s("\u{1b}[1;32m     Summary\u{1b}[0m [   0.2s] 92/96 tests run: 92 passed, 1 skipped"),
            Some(Summary {
                skipped: 1,
                not_run: 4
            })
        );
        assert_eq!(s("Summary [ 0.1s] 3/2 tests run: 3 passed"), None);
        assert_eq!(s("test result: ok. 1 passed"), None);
        assert_eq!(s(""), None);
    }
}
