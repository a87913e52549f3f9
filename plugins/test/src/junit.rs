//! JUnit XML: the de-facto test report format written by pytest
//! (`--junitxml`), cargo-nextest, jest-junit, go-junit-report, Maven
//! Surefire and most other runners.
//!
//! Accepted shapes: a `<testsuites>` root holding `<testsuite>`s (nested
//! suites too), or a bare `<testsuite>` root. Every `<testcase>` anywhere in
//! the document is one test:
//!
//! | testcase child | outcome |
//! |---|---|
//! | `<failure>` | failed |
//! | `<error>` | error (counted as failed) |
//! | `<skipped>` | skipped (pytest's xfail too) |
//! | none of these | passed |
//!
//! nextest's `<flakyFailure>` / `<rerunFailure>` are earlier attempts; the
//! test's outcome is still decided by the elements above, and a passing
//! test with a `<flakyFailure>` is counted as flaky. A `<failure>` or
//! `<error>` directly inside a `<testsuite>` (a suite that failed to set
//! up) counts as one failed test named after the suite.
//!
//! Duration: the root's `time`, else the sum of the top-level suites'
//! `time`, else the sum of the test cases' `time`.

use roxmltree::{Document, Node, ParsingOptions};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No failure, error or skip recorded.
    Passed,
    /// An assertion failed (`<failure>`).
    Failed,
    /// The test could not run properly (`<error>`).
    Error,
    /// Skipped (`<skipped>`).
    Skipped,
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// `classname` attribute (may be empty).
    pub classname: String,
    /// `name` attribute.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// First line of the failure or error message, for failed tests.
    pub message: Option<String>,
    /// True when it passed after a failed attempt (nextest `<flakyFailure>`).
    pub flaky: bool,
}

impl TestCase {
    /// `classname::name`, or just `name` when there is no class name.
    pub fn id(&self) -> String {
        if self.classname.is_empty() {
            self.name.clone()
        } else {
            format!("{}::{}", self.classname, self.name)
        }
    }

    /// Failed or error.
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Failed | Outcome::Error)
    }
}

/// The tests of one or more JUnit files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// Every test case, in document order.
    pub cases: Vec<TestCase>,
    /// Wall time in seconds.
    pub duration_s: f64,
}

impl Results {
    fn count(&self, f: impl Fn(&TestCase) -> bool) -> usize {
        self.cases.iter().filter(|c| f(c)).count()
    }

    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.count(|c| c.outcome == Outcome::Passed)
    }

    /// Tests that failed or errored.
    pub fn failed(&self) -> usize {
        self.count(TestCase::is_failure)
    }

    /// Tests that were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|c| c.outcome == Outcome::Skipped)
    }

    /// Passing tests that needed a retry.
    pub fn flaky(&self) -> usize {
        self.count(|c| c.flaky && c.outcome == Outcome::Passed)
    }

    /// All tests.
    pub fn total(&self) -> usize {
        self.cases.len()
    }

    /// The failed and errored tests.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.cases.iter().filter(|c| c.is_failure())
    }

    /// Adds the tests of another file.
    pub fn merge(&mut self, other: Results) {
        self.cases.extend(other.cases);
        self.duration_s += other.duration_s;
    }
}

/// Parses one JUnit XML document. The error says what is wrong and where.
pub fn parse(text: &str) -> Result<Results, String> {
    // DTDs are allowed (some generators emit one); roxmltree never fetches
    // external entities and guards against entity expansion bombs.
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    match root.tag_name().name() {
        "testsuites" | "testsuite" => {}
        other => {
            return Err(format!(
                "the root element is <{other}>, expected <testsuites> or <testsuite>; is this a JUnit XML report?"
            ))
        }
    }
    let mut cases = Vec::new();
    for node in root.descendants().filter(Node::is_element) {
        match node.tag_name().name() {
            "testcase" => cases.push(test_case(node)),
            "failure" | "error" if is_suite(node.parent_element()) => {
                cases.push(suite_failure(node))
            }
            _ => {}
        }
    }
    Ok(Results {
        duration_s: duration(root, &cases_time(root)),
        cases,
    })
}

fn is_suite(node: Option<Node<'_, '_>>) -> bool {
    node.is_some_and(|n| n.has_tag_name("testsuite"))
}

fn test_case(node: Node<'_, '_>) -> TestCase {
    let child = |name: &str| node.children().find(|c| c.has_tag_name(name));
    let (outcome, message) = if let Some(f) = child("failure") {
        (Outcome::Failed, Some(message(f)))
    } else if let Some(e) = child("error") {
        (Outcome::Error, Some(message(e)))
    } else if child("skipped").is_some() {
        (Outcome::Skipped, None)
    } else {
        (Outcome::Passed, None)
    };
    TestCase {
        classname: node.attribute("classname").unwrap_or_default().to_string(),
        name: node.attribute("name").unwrap_or_default().to_string(),
        outcome,
        message,
        flaky: child("flakyFailure").is_some() || child("flakyError").is_some(),
    }
}

/// A `<failure>`/`<error>` directly in a `<testsuite>`: the suite itself
/// failed (for example, it could not be set up).
fn suite_failure(node: Node<'_, '_>) -> TestCase {
    let suite = node.parent_element();
    TestCase {
        classname: String::new(),
        name: suite
            .and_then(|s| s.attribute("name"))
            .unwrap_or("<testsuite>")
            .to_string(),
        outcome: if node.has_tag_name("failure") {
            Outcome::Failed
        } else {
            Outcome::Error
        },
        message: Some(message(node)),
        flaky: false,
    }
}

/// The first non-empty line of the `message` attribute, else of the
/// element's text, else its `type`, else a placeholder.
fn message(node: Node<'_, '_>) -> String {
    let first_line = |s: &str| {
        s.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    node.attribute("message")
        .and_then(first_line)
        .or_else(|| {
            let text: String = node
                .descendants()
                .filter(Node::is_text)
                .filter_map(|t| t.text())
                .collect();
            first_line(&text)
        })
        .or_else(|| node.attribute("type").and_then(first_line))
        .unwrap_or_else(|| "(no message)".to_string())
}

/// A `time` attribute in seconds; tolerates `1,234.5` (old Surefire).
fn time(node: Node<'_, '_>) -> Option<f64> {
    let raw = node.attribute("time")?.replace(',', "");
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
}

fn cases_time(root: Node<'_, '_>) -> f64 {
    root.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(time)
        .sum()
}

fn duration(root: Node<'_, '_>, cases_time: &f64) -> f64 {
    if let Some(t) = time(root) {
        return t;
    }
    let suites: Vec<f64> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .filter_map(time)
        .collect();
    if suites.is_empty() {
        *cases_time
    } else {
        suites.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = include_str!("../../../tests/fixtures/test-stage/pytest.xml");
    const NEXTEST: &str = include_str!("../../../tests/fixtures/test-stage/nextest.xml");
    const JEST: &str = include_str!("../../../tests/fixtures/test-stage/jest.xml");
    const GO: &str = include_str!("../../../tests/fixtures/test-stage/go-junit-report.xml");
    const BARE: &str = include_str!("../../../tests/fixtures/test-stage/surefire-bare.xml");

    fn counts(r: &Results) -> (usize, usize, usize, usize) {
        (r.passed(), r.failed(), r.skipped(), r.total())
    }

    #[test]
    fn pytest_report() -> Result<(), String> {
        let r = parse(PYTEST)?;
        assert_eq!(counts(&r), (4, 3, 2, 9));
        assert!((r.duration_s - 0.412).abs() < 1e-9, "{}", r.duration_s);
        let failed: Vec<(String, String)> = r
            .failures()
            .map(|c| (c.id(), c.message.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            failed,
            [
                (
                    "tests.test_pricing::test_bulk_discount_rounds_half_up".to_string(),
                    "AssertionError: assert Decimal('17.99') == Decimal('18.00')".to_string()
                ),
                (
                    "tests.test_inventory::test_restock_writes_log".to_string(),
                    "failed on setup with \"PermissionError: [Errno 13] Permission denied: '/var/log/inv'\"".to_string()
                ),
                (
                    "tests.test_broken".to_string(),
                    "collection failure".to_string()
                ),
            ]
        );
        assert_eq!(r.cases[2].outcome, Outcome::Failed);
        assert_eq!(r.cases[6].outcome, Outcome::Error);
        Ok(())
    }

    #[test]
    fn nextest_report_with_flaky_and_timeout() -> Result<(), String> {
        let r = parse(NEXTEST)?;
        assert_eq!(counts(&r), (5, 2, 0, 7));
        assert_eq!(r.flaky(), 1);
        assert!((r.duration_s - 1.843).abs() < 1e-9);
        let ids: Vec<String> = r.failures().map(TestCase::id).collect();
        assert_eq!(
            ids,
            [
                "inventory-core::parse::tests::rejects_negative_quantity",
                "inventory-core::tests/integration::slow_sync",
            ]
        );
        assert_eq!(
            r.failures()
                .next()
                .and_then(|c| c.message.clone())
                .as_deref(),
            Some("thread 'parse::tests::rejects_negative_quantity' panicked at src/parse.rs:88:9")
        );
        Ok(())
    }

    #[test]
    fn jest_report() -> Result<(), String> {
        let r = parse(JEST)?;
        assert_eq!(counts(&r), (3, 1, 1, 5));
        assert!((r.duration_s - 2.318).abs() < 1e-9);
        // jest-junit puts the message in the text, not an attribute.
        assert_eq!(
            r.failures()
                .next()
                .and_then(|c| c.message.clone())
                .as_deref(),
            Some("Error: expect(received).toBe(expected) // Object.is equality")
        );
        Ok(())
    }

    #[test]
    fn go_junit_report_with_build_failure() -> Result<(), String> {
        let r = parse(GO)?;
        assert_eq!(counts(&r), (3, 2, 1, 6));
        // No time on <testsuites>: the suites' times are summed.
        assert!((r.duration_s - 0.517).abs() < 1e-9, "{}", r.duration_s);
        let ids: Vec<String> = r.failures().map(TestCase::id).collect();
        assert_eq!(
            ids,
            [
                "example.com/shop/pricing::TestBulkDiscount",
                "example.com/shop/cmd::[build failed]"
            ]
        );
        Ok(())
    }

    #[test]
    fn bare_testsuite_with_suite_level_error() -> Result<(), String> {
        let r = parse(BARE)?;
        assert_eq!(counts(&r), (2, 1, 1, 4));
        assert!((r.duration_s - 1234.5).abs() < 1e-9);
        let f = r.failures().next().ok_or("one failure")?;
        assert_eq!(f.id(), "com.example.InventoryIT");
        assert_eq!(f.message.as_deref(), Some("Could not start container"));
        Ok(())
    }

    #[test]
    fn rejects_what_is_not_junit() {
        let e = parse("<coverage line-rate=\"1\"/>").expect_err("not junit");
        assert!(e.contains("root element is <coverage>"), "{e}");
        let e = parse("<testsuites>\n<testcase name=\"a\">").expect_err("truncated");
        assert!(!e.is_empty());
        let e = parse("<testsuites>\n<testcase name=a/>").expect_err("bad attribute");
        assert!(e.contains("2:"), "{e}");
        assert!(parse("").is_err());
    }

    #[test]
    fn entity_bombs_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<testsuite><testcase name="x"><failure message="&lol5;"/></testcase></testsuite>"#;
        assert!(parse(bomb).is_err());
    }

    #[test]
    fn empty_suite_has_no_tests() -> Result<(), String> {
        let r =
            parse(r#"<testsuites time="0.01"><testsuite name="none" tests="0"/></testsuites>"#)?;
        assert_eq!(counts(&r), (0, 0, 0, 0));
        Ok(())
    }
}
