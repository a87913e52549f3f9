//! The stage's own checks, pure functions over a file's bytes.
//!
//! Each check module returns [`Hit`]s (rule, position, message);
//! [`check_file`] runs the checks whose rule is on and turns hits into
//! [`Finding`]s at the configured level.

pub mod conflict;
pub mod parse;
pub mod size;
pub mod whitespace;
pub mod yaml_tabs;

use crate::config::Settings;
use crate::finding::{Finding, Location, SELF_TOOL};
use crate::rules::Rule;

/// How many leading bytes decide whether a file is binary (git's heuristic).
pub const BINARY_SNIFF: usize = 8000;

/// One problem found by a check, before a level is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule that found it.
    pub rule: Rule,
    /// 1-based line, when the problem has one.
    pub line: Option<u32>,
    /// 1-based column in Unicode code points.
    pub column: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl Hit {
    /// A hit at `line`:`column`.
    pub fn at(rule: Rule, line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            rule,
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    /// A hit about the whole file.
    pub fn file(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// What checking one file's content gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is text; these are its findings (maybe none).
    Checked(Vec<Finding>),
    /// The file has a NUL byte in its first [`BINARY_SNIFF`] bytes and was skipped.
    Binary,
}

/// True when `bytes` look binary: a NUL byte near the start, as git decides.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0)
}

/// A line of a file: its 1-based number, its content without the line
/// ending, and whether it ended in `\r\n`, `\n`, or nothing (last line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u32,
    /// Content without `\n` / `\r\n`.
    pub text: &'a [u8],
    /// How the line ended.
    pub ending: Ending,
}

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `\n`.
    Lf,
    /// `\r\n`.
    Crlf,
    /// End of file without a newline.
    None,
}

/// The lines of `bytes`. A trailing `\n` does not start an empty last line.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = bytes;
    let mut number: u32 = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number = number.saturating_add(1);
        let (text, ending, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                match line.strip_suffix(b"\r") {
                    Some(t) => (t, Ending::Crlf, &rest[i + 1..]),
                    None => (line, Ending::Lf, &rest[i + 1..]),
                }
            }
            None => (rest, Ending::None, &rest[rest.len()..]),
        };
        rest = next;
        Some(Line {
            number,
            text,
            ending,
        })
    })
}

/// The 1-based column (in code points) of byte offset `at` within `line`.
pub fn column(line: &[u8], at: usize) -> u32 {
    let prefix = &line[..at.min(line.len())];
    let n = match std::str::from_utf8(prefix) {
        Ok(s) => s.chars().count(),
        Err(_) => String::from_utf8_lossy(prefix).chars().count(),
    };
    u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1)
}

/// The 1-based line and column of byte offset `at` in `text`.
pub fn line_col(text: &[u8], at: usize) -> (u32, u32) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        column(&text[start..], at - start),
    )
}

/// Runs every enabled content check on the file `rel` (relative to the
/// workspace) with content `bytes`.
///
/// `large-file` is decided by the caller before the file is read; see
/// [`size::check`].
pub fn check_file(rel: &str, bytes: &[u8], settings: &Settings) -> Outcome {
    if is_binary(bytes) {
        return Outcome::Binary;
    }
    let on = |rule: Rule| settings.level(rule).is_some();
    let format = parse::Format::of(rel, &settings.jsonc);
    let mut hits = Vec::new();
    if let Some(format) = format {
        if on(format.rule()) {
            hits.extend(parse::check(format, bytes));
        }
    }
    if on(Rule::MergeConflictMarker) {
        hits.extend(conflict::check(bytes));
    }
    if on(Rule::TrailingWhitespace) {
        hits.extend(whitespace::trailing(bytes, is_markdown(rel)));
    }
    if on(Rule::FinalNewline) {
        hits.extend(whitespace::final_newline(bytes));
    }
    if on(Rule::LineEndings) {
        hits.extend(whitespace::line_endings(bytes, settings.line_endings));
    }
    if on(Rule::YamlTabIndent) && format == Some(parse::Format::Yaml) {
        hits.extend(yaml_tabs::check(bytes));
    }
    Outcome::Checked(
        hits.into_iter()
            .filter_map(|h| to_finding(rel, h, settings))
            .collect(),
    )
}

/// Attaches the configured level and the path to `hit` (`None` if its rule is off).
pub fn to_finding(rel: &str, hit: Hit, settings: &Settings) -> Option<Finding> {
    let level = settings.level(hit.rule)?;
    Some(Finding {
        tool: SELF_TOOL.to_string(),
        rule: hit.rule.name().to_string(),
        level,
        message: hit.message,
        location: Some(Location::at(rel, hit.line, hit.column)),
    })
}

fn is_markdown(rel: &str) -> bool {
    let lower = rel.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::finding::Level;

    fn settings(json: &str) -> Settings {
        let ctx = sluice_sdk::Context::for_test("lint", json);
        let cfg: Config = ctx.config().expect("config");
        Settings::from_config(cfg).expect("settings")
    }

    #[test]
    fn lines_split_and_report_endings() {
        let l: Vec<_> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(l.len(), 4);
        assert_eq!((l[0].text, l[0].ending), (&b"a"[..], Ending::Crlf));
        assert_eq!((l[1].text, l[1].ending), (&b"b"[..], Ending::Lf));
        assert_eq!((l[2].text, l[2].ending), (&b""[..], Ending::Lf));
        assert_eq!((l[3].number, l[3].ending), (4, Ending::None));
        assert_eq!(lines(b"x\n").count(), 1);
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn columns_count_code_points() {
        assert_eq!(column(b"abc", 0), 1);
        assert_eq!(column("é x".as_bytes(), 3), 3);
        assert_eq!(line_col(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_col(b"ab", 99), (1, 3));
    }

    #[test]
    fn binary_files_are_skipped() {
        let s = settings("{}");
        assert_eq!(
            check_file("x.bin", b"PK\x03\x04\0\0junk \n", &s),
            Outcome::Binary
        );
        assert!(!is_binary(b"plain text  \n"));
    }

    #[test]
    fn check_file_applies_levels_and_switches() {
        let s = settings(r#"{"rules": {"final-newline": "error", "trailing-whitespace": "off"}}"#);
        let Outcome::Checked(f) = check_file("a.txt", b"x  \ny", &s) else {
            panic!("text file");
        };
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "final-newline");
        assert_eq!(f[0].level, Level::Error);
        assert_eq!(
            f[0].to_string(),
            "a.txt:2:2 error final-newline file does not end with a newline"
        );
    }

    #[test]
    fn yaml_gets_syntax_and_tab_checks_only_yaml() {
        let s = settings("{}");
        let Outcome::Checked(f) = check_file("ci.yml", b"a:\n\tb: 1\n", &s) else {
            panic!("text file");
        };
        let rules: Vec<_> = f.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules.contains(&"yaml-tab-indent"), "{rules:?}");
        assert!(rules.contains(&"yaml-syntax"), "{rules:?}");
        let Outcome::Checked(f) = check_file("Makefile", b"all:\n\techo hi\n", &s) else {
            panic!("text file");
        };
        assert!(f.is_empty(), "{f:?}");
    }
}
