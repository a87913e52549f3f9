//! `yaml-tab-indent`: YAML forbids tabs in indentation, and most parsers
//! answer one with a puzzling error; this rule points at the tab itself.
//!
//! Content lines of block scalars (`key: |`, `- >-`, ...) may contain tabs
//! after their indentation (a Makefile embedded in a ConfigMap, say), so
//! lines more indented than the line that opened the scalar are skipped.
//! Lines holding only whitespace are left to `trailing-whitespace`.

use super::{column, lines, Hit};
use crate::rules::Rule;

/// A hit for every line whose indentation contains a tab.
pub fn check(bytes: &[u8]) -> Vec<Hit> {
    let mut hits = Vec::new();
    // Indentation (in spaces) of the line that opened the current block scalar.
    let mut block: Option<usize> = None;
    for line in lines(bytes) {
        let text = line.text;
        let indent_len = text
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(text.len());
        let blank = indent_len == text.len();
        let spaces = text.iter().take_while(|&&b| b == b' ').count();
        if let Some(parent) = block {
            if blank || spaces > parent {
                continue;
            }
            block = None;
        }
        if blank {
            continue;
        }
        if let Some(tab) = text[..indent_len].iter().position(|&b| b == b'\t') {
            hits.push(Hit::at(
                Rule::YamlTabIndent,
                line.number,
                column(text, tab),
                "tab used for indentation; YAML allows only spaces",
            ));
        }
        if opens_block_scalar(&text[indent_len..]) {
            block = Some(spaces);
        }
    }
    hits
}

/// True when `text` (a line without its indentation) ends with a block
/// scalar header such as `key: |`, `- >-`, `key: !!str |2`, or `--- |`.
fn opens_block_scalar(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let code = match text.find(" #") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut tokens = code.split_whitespace().rev();
    let Some(last) = tokens.next() else {
        return false;
    };
    let mut chars = last.chars();
    if !matches!(chars.next(), Some('|') | Some('>')) {
        return false;
    }
    if !chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit()) {
        return false;
    }
    for prev in tokens {
        // Tags and anchors may stand between the key and the indicator.
        if prev.starts_with('!') || prev.starts_with('&') {
            continue;
        }
        return prev.ends_with(':') || prev == "-" || prev == "---";
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<(u32, u32)> {
        check(text.as_bytes())
            .iter()
            .map(|h| (h.line.unwrap_or(0), h.column.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn tabs_in_indentation_are_found() {
        assert_eq!(lines_of("a:\n\tb: 1\n"), [(2, 1)]);
        assert_eq!(lines_of("a:\n  \tb: 1\n  c:\n\t\td: 2\n"), [(2, 3), (4, 1)]);
        let h = &check(b"a:\n\tb: 1\n")[0];
        assert_eq!(h.rule, Rule::YamlTabIndent);
        assert_eq!(
            h.message,
            "tab used for indentation; YAML allows only spaces"
        );
    }

    #[test]
    fn tabs_elsewhere_are_fine() {
        assert!(lines_of("a: 1\t# comment\nb:\t2\n").is_empty());
        assert!(lines_of("a:\n  b: 1\n").is_empty());
        assert!(
            lines_of("a:\n\t\n  b: 1\n").is_empty(),
            "whitespace-only line"
        );
    }

    #[test]
    fn block_scalar_content_may_hold_tabs() {
        let text = "make: |\n  all:\n  \techo hi\n\n  \t\tdone\nnext:\n\tbad: 1\n";
        assert_eq!(lines_of(text), [(7, 1)]);
        let text = "steps:\n  - >-\n    x\n    \ty\n  - run: a\n";
        assert!(lines_of(text).is_empty());
        let text = "k: !!str |2 # note\n   \tz\n";
        assert!(lines_of(text).is_empty());
    }

    #[test]
    fn block_scalar_headers() {
        assert!(opens_block_scalar(b"key: |"));
        assert!(opens_block_scalar(b"- >-"));
        assert!(opens_block_scalar(b"key: &anchor |+"));
        assert!(opens_block_scalar(b"--- |"));
        assert!(!opens_block_scalar(b"cmd: a |"));
        assert!(!opens_block_scalar(b"key: value"));
        assert!(!opens_block_scalar(b"key: '|'"));
    }
}
