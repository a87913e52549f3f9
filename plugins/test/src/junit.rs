//! JUnit XML: the de-facto test report format written by pytest
//! (`--junitxml`), cargo-nextest, jest-junit, go-junit-report, Maven
//! Surefire, libtest's unstable `--format junit` and most other runners.
//!
//! Accepted shapes: a `<testsuites>` root holding `<testsuite>`s (nested
//! suites too), or a bare `<testsuite>` root. A file may hold several such
//! documents one after the other (libtest writes one per test binary, so
//! `cargo test -- --format junit > junit.xml` concatenates them): each is
//! parsed on its own and their tests are merged. Every `<testcase>`
//! anywhere in a document is one test:
//!
//! | testcase child | outcome |
//! |---|---|
//! | `<failure>` | failed |
//! | `<error>` | error (counted as failed) |
//! | `<skipped>` | skipped (pytest's xfail, `#[ignore]`d Rust tests) |
//! | none of these | passed |
//!
//! nextest's `<flakyFailure>` / `<rerunFailure>` are earlier attempts; the
//! test's outcome is still decided by the elements above, and a passing
//! test with a `<flakyFailure>` is counted as flaky. A `<failure>` or
//! `<error>` directly inside a `<testsuite>` (a suite that failed to set
//! up) counts as one failed test named after the suite.
//!
//! **Counting rule.** Tests are the `<testcase>` elements; the `tests=`
//! attributes are not used for the counts, because runners disagree on
//! what they count: pytest counts every report, so with `pytest-subtests`
//! one test function with 30 subtests is `tests="31"` but one
//! `<testcase>` (holding a `<failure>` per failed subtest), and an error
//! in a teardown counts a second time. A subtest is an assertion inside
//! one test, so it is not a test of its own here: the stage reports the
//! test functions (and logs the attribute's number when it differs). One
//! exception, because otherwise skips vanish: libtest's JUnit leaves
//! `#[ignore]`d tests out of the `<testcase>`s but counts them in the
//! suite's `skipped=`. When a suite's `tests=` minus its test cases is
//! exactly its `skipped=` minus its `<skipped>` cases, that difference is
//! counted as skipped tests without a name. Tests that never ran (nextest
//! stopping at the first failure) are not in any JUnit report; the stage
//! reads their number from nextest's own summary line instead
//! ([`crate::nextest`]).
//!
//! Duration: the root's `time`, else the sum of the top-level suites'
//! `time`, else the sum of the test cases' `time` (summed over documents).

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
    /// The full failure text (captured output, panic message), when the
    /// results come from a runner's console output rather than a JUnit
    /// file; it goes into the JUnit file the stage writes for them.
    pub details: Option<String>,
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

/// Tests known only by their number: a runner reported how many, not
/// which (libtest's JUnit leaves ignored tests out, nextest's leaves out
/// skipped and not-run tests, `cargo test -q` prints dots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unnamed {
    /// Passed tests.
    pub passed: usize,
    /// Failed tests.
    pub failed: usize,
    /// Skipped (ignored) tests.
    pub skipped: usize,
    /// Tests that were selected but never ran (the runner stopped early).
    pub not_run: usize,
}

impl Unnamed {
    fn add(&mut self, o: Unnamed) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.not_run += o.not_run;
    }
}

/// The tests of one or more JUnit files (or of a runner's output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// Every named test case, in document order.
    pub cases: Vec<TestCase>,
    /// Tests counted without a name.
    pub unnamed: Unnamed,
    /// Wall time in seconds.
    pub duration_s: f64,
    /// The sum of the reports' `tests=` attributes where they declare a
    /// different number than the stage counts (pytest subtests), to log.
    pub declared: Option<usize>,
}

impl Results {
    /// (passed, failed, skipped, total), for the tests' assertions.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        (self.passed(), self.failed(), self.skipped(), self.total())
    }

    fn count(&self, f: impl Fn(&TestCase) -> bool) -> usize {
        self.cases.iter().filter(|c| f(c)).count()
    }

    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.count(|c| c.outcome == Outcome::Passed) + self.unnamed.passed
    }

    /// Tests that failed or errored.
    pub fn failed(&self) -> usize {
        self.count(TestCase::is_failure) + self.unnamed.failed
    }

    /// Tests that were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|c| c.outcome == Outcome::Skipped) + self.unnamed.skipped
    }

    /// Tests that were selected but never ran.
    pub fn not_run(&self) -> usize {
        self.unnamed.not_run
    }

    /// Passing tests that needed a retry.
    pub fn flaky(&self) -> usize {
        self.count(|c| c.flaky && c.outcome == Outcome::Passed)
    }

    /// All tests: passed + failed + skipped + not run.
    pub fn total(&self) -> usize {
        self.cases.len()
            + self.unnamed.passed
            + self.unnamed.failed
            + self.unnamed.skipped
            + self.unnamed.not_run
    }

    /// The failed and errored tests.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.cases.iter().filter(|c| c.is_failure())
    }

    /// Each failure's id and message (for tests' assertions).
    #[cfg(test)]
    pub(crate) fn failed_with_messages(&self) -> Vec<(String, String)> {
        self.failures()
            .map(|c| (c.id(), c.message.clone().unwrap_or_default()))
            .collect()
    }

    /// Adds the tests of another file.
    pub fn merge(&mut self, other: Results) {
        self.cases.extend(other.cases);
        self.unnamed.add(other.unnamed);
        self.duration_s += other.duration_s;
        self.declared = match (self.declared, other.declared) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

/// Parses a JUnit XML file: one document, or several concatenated. The
/// error says what is wrong and where (line:column in the file).
pub fn parse(text: &str) -> Result<Results, String> {
    let docs = split_documents(text);
    if docs.len() <= 1 {
        return parse_document(text);
    }
    let mut all = Results::default();
    for (i, (start, doc)) in docs.iter().enumerate() {
        let parsed = parse_document(doc).map_err(|e| {
            let line = text[..*start].matches('\n').count() + 1;
            format!(
                "document {} of {} (from line {line}): {e}",
                i + 1,
                docs.len()
            )
        })?;
        all.merge(parsed);
    }
    Ok(all)
}

/// Splits concatenated XML documents: each ends where its root element
/// closes. A light scan that knows comments, CDATA, processing
/// instructions, DOCTYPE and quoted attribute values (where `>` may
/// appear); it does not validate — roxmltree parses each piece. Returns
/// the byte offset and text of each document.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut docs = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    let mut seen_root = false;
    let find = |from: usize, pat: &str| text[from..].find(pat).map(|p| from + p + pat.len());
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &text[i..];
        let end = if rest.starts_with("<?") {
            find(i, "?>")
        } else if rest.starts_with("<!--") {
            find(i, "-->")
        } else if rest.starts_with("<![CDATA[") {
            find(i, "]]>")
        } else if rest.starts_with("<!") {
            doctype_end(text, i)
        } else {
            let end = tag_end(b, i);
            if let Some(e) = end {
                if rest.starts_with("</") {
                    depth = depth.saturating_sub(1);
                } else if b[e - 2] != b'/' {
                    depth += 1;
                }
                seen_root = true;
            }
            end
        };
        let Some(end) = end else {
            break; // unterminated: the parser reports it
        };
        i = end;
        if seen_root && depth == 0 {
            docs.push((start, &text[start..i]));
            seen_root = false;
            // The next document starts after the whitespace that follows.
            let skip = text[i..].len() - text[i..].trim_start().len();
            i += skip;
            start = i;
        }
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        docs.push((start, &text[start..]));
    }
    docs
}

/// The end of a start or end tag at `i` (after its `>`), skipping `>`
/// inside quoted attribute values.
fn tag_end(b: &[u8], i: usize) -> Option<usize> {
    let mut quote = None;
    for (j, &c) in b.iter().enumerate().skip(i + 1) {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return Some(j + 1),
            _ => {}
        }
    }
    None
}

/// The end of `<!DOCTYPE ...>`, which may hold an internal subset `[...]`.
fn doctype_end(text: &str, i: usize) -> Option<usize> {
    let mut in_subset = false;
    for (j, c) in text[i..].char_indices() {
        match c {
            '[' => in_subset = true,
            ']' => in_subset = false,
            '>' if !in_subset => return Some(i + j + 1),
            _ => {}
        }
    }
    None
}

/// Parses one JUnit XML document.
fn parse_document(text: &str) -> Result<Results, String> {
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
    let mut unnamed = Unnamed::default();
    for node in root.descendants().filter(Node::is_element) {
        match node.tag_name().name() {
            "testcase" => cases.push(test_case(node)),
            "failure" | "error" if is_suite(node.parent_element()) => {
                cases.push(suite_failure(node))
            }
            "testsuite" => unnamed.skipped += unlisted_skips(node),
            _ => {}
        }
    }
    let declared = declared_tests(root);
    let counted = cases.len() + unnamed.skipped;
    Ok(Results {
        duration_s: duration(root, &cases_time(root)),
        cases,
        unnamed,
        declared: declared.filter(|d| *d != counted),
    })
}

/// An attribute as a count.
fn count_attr(node: Node<'_, '_>, name: &str) -> Option<usize> {
    node.attribute(name)?.trim().parse().ok()
}

/// Skipped tests a suite counts in `skipped=` but does not list (libtest's
/// JUnit omits ignored tests): only when the tests it does not list are
/// exactly those skips, so pytest's subtest-inflated `tests=` adds none.
fn unlisted_skips(suite: Node<'_, '_>) -> usize {
    let own: Vec<Node<'_, '_>> = suite
        .children()
        .filter(|c| c.has_tag_name("testcase"))
        .collect();
    if suite.children().any(|c| c.has_tag_name("testsuite")) {
        return 0;
    }
    let (Some(tests), Some(skipped)) = (count_attr(suite, "tests"), count_attr(suite, "skipped"))
    else {
        return 0;
    };
    let listed_skips = own
        .iter()
        .filter(|c| c.children().any(|e| e.has_tag_name("skipped")))
        .count();
    match (
        tests.checked_sub(own.len()),
        skipped.checked_sub(listed_skips),
    ) {
        (Some(missing), Some(unlisted)) if missing == unlisted => unlisted,
        _ => 0,
    }
}

/// What the report says its test count is: the root's `tests=`, else the
/// sum over its top-level suites.
fn declared_tests(root: Node<'_, '_>) -> Option<usize> {
    if let Some(n) = count_attr(root, "tests") {
        return Some(n);
    }
    let suites: Vec<usize> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .filter_map(|n| count_attr(n, "tests"))
        .collect();
    (!suites.is_empty()).then(|| suites.iter().sum())
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
        details: None,
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
        details: None,
    }
}

/// The first non-empty line of the `message` attribute, else of the
/// element's text, else the panic in the test case's captured output
/// (libtest's JUnit writes a bare `<failure type="assert"/>` and the panic
/// in `<system-out>`), else its `type`, else a placeholder.
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
        .or_else(|| captured_panic(node))
        .or_else(|| node.attribute("type").and_then(first_line))
        .unwrap_or_else(|| "(no message)".to_string())
}

/// The Rust panic message in the `<system-out>`/`<system-err>` beside a
/// `<failure>`, if there is one.
fn captured_panic(failure: Node<'_, '_>) -> Option<String> {
    let case = failure.parent_element()?;
    case.children()
        .filter(|c| c.has_tag_name("system-out") || c.has_tag_name("system-err"))
        .find_map(|c| {
            let text: String = c
                .descendants()
                .filter(Node::is_text)
                .filter_map(|t| t.text())
                .collect();
            crate::libtest::panic_message(&text)
        })
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

    #[test]
    fn pytest_report() -> Result<(), String> {
        let r = parse(PYTEST)?;
        assert_eq!(r.counts(), (4, 3, 2, 9));
        assert!((r.duration_s - 0.412).abs() < 1e-9, "{}", r.duration_s);
        let failed = r.failed_with_messages();
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
        assert_eq!(r.counts(), (5, 2, 0, 7));
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
        assert_eq!(r.counts(), (3, 1, 1, 5));
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
        assert_eq!(r.counts(), (3, 2, 1, 6));
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
        assert_eq!(r.counts(), (2, 1, 1, 4));
        assert!((r.duration_s - 1234.5).abs() < 1e-9);
        let f = r.failures().next().ok_or("one failure")?;
        assert_eq!(f.id(), "com.example.InventoryIT");
        assert_eq!(f.message.as_deref(), Some("Could not start container"));
        Ok(())
    }

    const LIBTEST: &str = include_str!("../../../tests/fixtures/test-stage/libtest-junit.xml");
    const NEXTEST_FAIL_FAST: &str =
        include_str!("../../../tests/fixtures/test-stage/nextest-fail-fast.xml");

    #[test]
    fn libtest_junit_is_one_document_per_test_binary() -> Result<(), String> {
        // Recorded from `cargo test -- -Z unstable-options --format junit`
        // (nightly libtest): three documents (unit, integration, doc-tests),
        // with the ignored tests left out of the <testcase>s.
        let r = parse(LIBTEST)?;
        assert_eq!(r.counts(), (4, 3, 2, 9));
        assert_eq!(r.unnamed.skipped, 2);
        assert_eq!(r.declared, None);
        let failed = r.failed_with_messages();
        assert_eq!(
            failed,
            [
                (
                    "tests::rounds_totals".to_string(),
                    "assertion `left == right` failed: totals must round up (at src/lib.rs:28:9)"
                        .to_string()
                ),
                (
                    "integration::api_fails".to_string(),
                    "called `Result::unwrap()` on an `Err` value: \"boom\" (at tests/api.rs:4:68)"
                        .to_string()
                ),
                (
                    "src/lib.rs::add (line 9)".to_string(),
                    "assertion `left == right` failed (at src/lib.rs:5:1)".to_string()
                ),
            ]
        );
        Ok(())
    }

    #[test]
    fn concatenated_documents_of_every_shape() -> Result<(), String> {
        // With and without declarations, a DOCTYPE, comments, CDATA and
        // attribute values holding `>` and `<?xml`, no whitespace between.
        let text = concat!(
            "<?xml version=\"1.0\"?>\n<!-- <testsuite> in a comment -->\n",
            "<testsuite name=\"a>b\"><testcase name=\"x\"><system-out><![CDATA[</testsuite><?xml ?>]]></system-out></testcase></testsuite>",
            "<?xml version=\"1.0\"?><!DOCTYPE testsuites [<!ENTITY e \">\">]><testsuites><testsuite><testcase name=\"y&e;\"><skipped/></testcase></testsuite></testsuites>\n",
            "<testsuite><testcase name='z' classname=\"?>\"><failure message=\"m\"/></testcase><testcase name=\"self\"/></testsuite>\n\n",
        );
        let r = parse(text)?;
        assert_eq!(r.counts(), (2, 1, 1, 4));
        let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x", "y>", "z", "self"]);
        Ok(())
    }

    #[test]
    fn a_bad_document_among_several_is_named() {
        let text = "<testsuite><testcase name=\"a\"/></testsuite>\n<testsuite>\n<testcase name=b/></testsuite>";
        let e = parse(text).expect_err("bad second document");
        assert!(e.starts_with("document 2 of 2 (from line 2): "), "{e}");
        let e = parse("<testsuite/>\n<coverage/>").expect_err("not junit");
        assert!(e.contains("root element is <coverage>"), "{e}");
        // Text after the root that is not a document stays an error.
        assert!(parse("<testsuite/>\ntrailing words").is_err());
        assert!(parse("<testsuite/><testsuite>").is_err());
    }

    #[test]
    fn nextest_fail_fast_report_lists_only_what_ran() -> Result<(), String> {
        // Recorded from `cargo nextest run` (0.9.143) stopping at the first
        // failure: 5 selected, 2 ran, 2 skipped. The report names the 2 that
        // ran; the skipped and not-run numbers come from its stderr
        // (crate::nextest).
        let r = parse(NEXTEST_FAIL_FAST)?;
        assert_eq!(r.counts(), (1, 1, 0, 2));
        assert_eq!(
            r.failures()
                .next()
                .and_then(|c| c.message.clone())
                .as_deref(),
            Some("thread 'tests::rounds_totals' (20292) panicked at src/lib.rs:28:9")
        );
        Ok(())
    }

    #[test]
    fn subtests_are_not_tests_of_their_own() -> Result<(), String> {
        // pytest-subtests: one test function with 3 subtests (one failed),
        // reported as one <testcase>; `tests=` counts every report.
        let text = r#"<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="5">
<testcase classname="t" name="test_many"><failure message="subtest i=2 failed"/></testcase>
</testsuite></testsuites>"#;
        let r = parse(text)?;
        assert_eq!(r.counts(), (0, 1, 0, 1));
        assert_eq!(r.declared, Some(5));
        // A suite whose missing tests are not all skips adds no skips.
        let text = r#"<testsuite tests="4" skipped="1"><testcase name="a"/></testsuite>"#;
        assert_eq!(parse(text)?.counts(), (1, 0, 0, 1));
        // Nonsense counts are ignored.
        let text = r#"<testsuite tests="1" skipped="9"><testcase name="a"/></testsuite>"#;
        assert_eq!(parse(text)?.counts(), (1, 0, 0, 1));
        let text = r#"<testsuite tests="x" skipped="-1"><testcase name="a"/></testsuite>"#;
        assert_eq!(parse(text)?.counts(), (1, 0, 0, 1));
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
        assert_eq!(r.counts(), (0, 0, 0, 0));
        Ok(())
    }
}
