//! Writes [`Results`] as a JUnit XML document, for results that did not
//! come from a JUnit file (`format: cargo`), so that what reads the
//! stage's `junit.xml` artifact (the HTML report, CI annotations) sees them.
//!
//! Shape: a `<testsuites>` root with one `<testsuite>` per class name
//! (the test binary), `<failure message="...">` holding the captured
//! output, `<skipped/>` for ignored tests. Tests counted without a name
//! only appear in the counting attributes (`tests=`, `failures=`,
//! `skipped=`) of a last suite named `(unnamed)`, and never as invented
//! test cases.

use std::fmt::Write;

use crate::junit::{Outcome, Results, TestCase};

/// The JUnit XML text of `r`.
pub fn to_xml(r: &Results) -> String {
    let mut suites: Vec<(&str, Vec<&TestCase>)> = Vec::new();
    for c in &r.cases {
        match suites.iter_mut().find(|(n, _)| *n == c.classname) {
            Some((_, v)) => v.push(c),
            None => suites.push((c.classname.as_str(), vec![c])),
        }
    }
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"sluice\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        r.total(),
        r.failed(),
        r.skipped(),
        r.duration_s
    );
    for (name, cases) in suites {
        let count = |o: Outcome| cases.iter().filter(|c| c.outcome == o).count();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape(name),
            cases.len(),
            count(Outcome::Failed),
            count(Outcome::Error),
            count(Outcome::Skipped)
        );
        for c in cases {
            case(&mut s, c);
        }
        s.push_str("  </testsuite>\n");
    }
    let u = r.unnamed;
    let unnamed = u.passed + u.failed + u.skipped + u.not_run;
    if unnamed > 0 {
        let _ = writeln!(
            s,
            "  <testsuite name=\"(unnamed)\" tests=\"{unnamed}\" failures=\"{}\" errors=\"0\" skipped=\"{}\"/>",
            u.failed,
            u.skipped + u.not_run
        );
    }
    s.push_str("</testsuites>\n");
    s
}

fn case(s: &mut String, c: &TestCase) {
    let _ = write!(
        s,
        "    <testcase classname=\"{}\" name=\"{}\"",
        escape(&c.classname),
        escape(&c.name)
    );
    let message = escape(c.message.as_deref().unwrap_or(""));
    let body = escape(c.details.as_deref().unwrap_or(""));
    match c.outcome {
        Outcome::Passed => s.push_str("/>\n"),
        Outcome::Skipped => s.push_str("><skipped/></testcase>\n"),
        Outcome::Failed => {
            let _ = writeln!(
                s,
                "><failure message=\"{message}\">{body}</failure></testcase>"
            );
        }
        Outcome::Error => {
            let _ = writeln!(s, "><error message=\"{message}\">{body}</error></testcase>");
        }
    }
}

/// Escapes for both text and attribute values; drops the characters XML
/// 1.0 cannot hold (NUL, most C0 controls), which test output may contain.
fn escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for ch in t.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::{self, Unnamed};
    use crate::libtest;

    const STDOUT: &str = include_str!("../../../tests/fixtures/test-stage/cargo-test.stdout");
    const STDERR: &str = include_str!("../../../tests/fixtures/test-stage/cargo-test.stderr");

    #[test]
    fn round_trips_through_the_junit_reader() -> Result<(), String> {
        let r = libtest::parse(STDOUT, STDERR)?;
        let xml = to_xml(&r);
        let back = junit::parse(&xml)?;
        assert_eq!(
            (back.passed(), back.failed(), back.skipped(), back.total()),
            (4, 3, 2, 9)
        );
        let ids = |r: &Results| r.failures().map(TestCase::id).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&r));
        assert_eq!(
            back.failures().next().and_then(|c| c.message.clone()),
            r.failures().next().and_then(|c| c.message.clone())
        );
        assert!(xml.contains("checking the rounding of 7 + 3&#10;"), "{xml}");
        Ok(())
    }

    #[test]
    fn hostile_text_stays_well_formed() -> Result<(), String> {
        let r = Results {
            cases: vec![TestCase {
                classname: "a\"<b>".into(),
                name: "]]> & \u{0}\u{1b}[31m".into(),
                outcome: Outcome::Failed,
                message: Some("</failure><x>".into()),
                flaky: false,
                details: Some("<![CDATA[ ]]>\u{7}".into()),
            }],
            unnamed: Unnamed {
                passed: 2,
                failed: 0,
                skipped: 1,
                not_run: 1,
            },
            ..Results::default()
        };
        let back = junit::parse(&to_xml(&r))?;
        assert_eq!(back.cases.len(), 1);
        assert_eq!(back.cases[0].name, "]]> & [31m");
        assert_eq!(back.cases[0].message.as_deref(), Some("</failure><x>"));
        Ok(())
    }
}
