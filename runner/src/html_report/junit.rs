//! Test results from JUnit XML, as the `test` stage keeps them (pytest,
//! jest, go-junit-report, surefire, nextest all write this shape):
//! `<testsuites>` or a bare `<testsuite>`, `<testcase>` elements with a
//! `<failure>`, `<error>` or `<skipped>` child when they did not pass.

/// How one test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// `<failure>`: an assertion did not hold.
    Failed,
    /// `<error>`: the test could not run to its end.
    Error,
    /// `<skipped>`.
    Skipped,
    /// No such child.
    Passed,
}

impl Outcome {
    /// Lowercase word shown in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::Passed => "passed",
        }
    }
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// Its `classname` (may be empty).
    pub class: String,
    /// Its `name`.
    pub name: String,
    /// Seconds, when given.
    pub time: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The `message` attribute of the failure/error/skipped element.
    pub message: String,
    /// Its text (a traceback, usually).
    pub detail: String,
}

/// What an XML artifact turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// A JUnit report and its test cases, in document order.
    Junit(Vec<TestCase>),
    /// Well-formed XML of another kind (a Cobertura coverage report).
    NotJunit,
}

/// Reads `text` as JUnit XML. A document that is not well-formed XML is an
/// error whose message says where (the report shows it as a note).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Ok(Parsed::NotJunit);
    }
    let mut cases = Vec::new();
    for case in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "testcase")
    {
        let mut outcome = Outcome::Passed;
        let mut message = String::new();
        let mut detail = String::new();
        for child in case.children().filter(|n| n.is_element()) {
            let this = match child.tag_name().name() {
                "failure" => Outcome::Failed,
                "error" => Outcome::Error,
                "skipped" => Outcome::Skipped,
                _ => continue,
            };
            // The worst one counts, should a case have several.
            if this < outcome {
                outcome = this;
                message = child.attribute("message").unwrap_or_default().to_string();
                detail = child.text().unwrap_or_default().trim().to_string();
            }
        }
        cases.push(TestCase {
            class: case.attribute("classname").unwrap_or_default().to_string(),
            name: case.attribute("name").unwrap_or_default().to_string(),
            time: case.attribute("time").and_then(|t| t.parse().ok()),
            outcome,
            message,
            detail,
        });
    }
    // Failures first (then errors, skipped, passed), each in file order.
    cases.sort_by_key(|c| c.outcome);
    Ok(Parsed::Junit(cases))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/test-stage")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn pytest_report_failures_first_with_messages() {
        let Parsed::Junit(cases) = parse(&fixture("pytest.xml")).expect("parses") else {
            panic!("is JUnit");
        };
        assert_eq!(cases.len(), 9);
        assert_eq!(cases[0].outcome, Outcome::Failed);
        assert_eq!(cases[0].name, "test_bulk_discount_rounds_half_up");
        assert!(cases[0]
            .message
            .starts_with("AssertionError: assert Decimal('17.99') == Decimal('18.00')"));
        assert!(cases[0].detail.contains("tests/test_pricing.py:27"));
        assert_eq!(
            cases.iter().filter(|c| c.outcome == Outcome::Error).count(),
            2
        );
        assert_eq!(
            cases
                .iter()
                .filter(|c| c.outcome == Outcome::Skipped)
                .count(),
            2
        );
        assert_eq!(cases.last().map(|c| c.outcome), Some(Outcome::Passed));
    }

    #[test]
    fn other_xml_and_bare_testsuite() {
        assert!(matches!(
            parse(&fixture("cobertura.xml")),
            Ok(Parsed::NotJunit)
        ));
        let Ok(Parsed::Junit(cases)) =
            parse(r#"<testsuite><testcase name="a" time="x"/></testsuite>"#)
        else {
            panic!("bare testsuite");
        };
        assert_eq!(cases[0].outcome, Outcome::Passed);
        assert_eq!(cases[0].time, None, "a bad time is left out");
    }

    #[test]
    fn malformed_xml_is_an_error_naming_the_place() {
        let err = parse("<testsuite><testcase name='a'></testsuite>").expect_err("malformed");
        assert!(err.starts_with("not well-formed XML:"), "{err}");
        assert!(err.contains("1:"), "says where: {err}");
    }
}
