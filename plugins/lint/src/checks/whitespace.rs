//! `trailing-whitespace`, `final-newline` and `line-endings`.

use super::{column, lines, Ending, Hit};
use crate::config::LineEndings;
use crate::rules::Rule;

/// Lines that end in spaces or tabs, one hit per line at the first
/// trailing blank. In Markdown (`markdown`), exactly two trailing spaces
/// after text are a hard line break and allowed.
pub fn trailing(bytes: &[u8], markdown: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    for line in lines(bytes) {
        let text = line.text;
        let kept = text
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map(|i| i + 1)
            .unwrap_or(0);
        let blanks = &text[kept..];
        if blanks.is_empty() {
            continue;
        }
        if markdown && kept > 0 && blanks == b"  " {
            continue;
        }
        hits.push(Hit::at(
            Rule::TrailingWhitespace,
            line.number,
            column(text, kept),
            format!(
                "trailing whitespace ({} character{})",
                blanks.len(),
                if blanks.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    hits
}

/// A hit when a non-empty file does not end with `\n`, placed just after
/// the last character.
pub fn final_newline(bytes: &[u8]) -> Option<Hit> {
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return None;
    }
    let last = lines(bytes).last()?;
    Some(Hit::at(
        Rule::FinalNewline,
        last.number,
        column(last.text, last.text.len()),
        "file does not end with a newline",
    ))
}

/// Lines whose ending `mode` does not allow (nothing for `any`). The last
/// line without a newline is `final-newline`'s business, not this rule's.
pub fn line_endings(bytes: &[u8], mode: LineEndings) -> Vec<Hit> {
    let (bad, want) = match mode {
        LineEndings::Any => return Vec::new(),
        LineEndings::Lf => (Ending::Crlf, "LF (\\n)"),
        LineEndings::Crlf => (Ending::Lf, "CRLF (\\r\\n)"),
    };
    let found = if bad == Ending::Crlf { "CRLF" } else { "LF" };
    let mut hits = Vec::new();
    for line in lines(bytes) {
        if line.ending == bad {
            hits.push(Hit::at(
                Rule::LineEndings,
                line.number,
                column(line.text, line.text.len()),
                format!("{found} line ending; line-endings asks for {want}"),
            ));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(hits: &[Hit]) -> Vec<(u32, u32)> {
        hits.iter()
            .map(|h| (h.line.unwrap_or(0), h.column.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn trailing_blanks_are_found_per_line() {
        let hits = trailing(b"ok\nspace \ntab\t\n  \nclean\n", false);
        assert_eq!(pos(&hits), [(2, 6), (3, 4), (4, 1)]);
        assert_eq!(hits[0].message, "trailing whitespace (1 character)");
        assert_eq!(hits[2].message, "trailing whitespace (2 characters)");
        assert_eq!(hits[0].rule, Rule::TrailingWhitespace);
    }

    #[test]
    fn trailing_ignores_crlf_and_clean_text() {
        assert!(trailing(b"a\r\nb\r\n", false).is_empty());
        assert_eq!(pos(&trailing(b"a \r\n", false)), [(1, 2)]);
        assert!(trailing(b"", false).is_empty());
        // Columns count characters, not bytes.
        assert_eq!(pos(&trailing("héllo \n".as_bytes(), false)), [(1, 6)]);
    }

    #[test]
    fn markdown_hard_breaks_are_allowed() {
        assert!(trailing(b"line one  \nline two\n", true).is_empty());
        assert_eq!(trailing(b"three   \n", true).len(), 1);
        assert_eq!(trailing(b"  \n", true).len(), 1, "blank line of spaces");
        assert_eq!(trailing(b"line one  \n", false).len(), 1, "not markdown");
    }

    #[test]
    fn final_newline_is_required_for_non_empty_files() {
        assert!(final_newline(b"").is_none());
        assert!(final_newline(b"a\n").is_none());
        assert!(final_newline(b"a\r\n").is_none());
        let h = final_newline(b"a\nlast").expect("missing newline");
        assert_eq!((h.line, h.column), (Some(2), Some(5)));
        assert_eq!(h.rule, Rule::FinalNewline);
    }

    #[test]
    fn line_endings_follow_the_mode() {
        let mixed = b"a\r\nb\nc\r\nd";
        assert!(line_endings(mixed, LineEndings::Any).is_empty());
        let lf = line_endings(mixed, LineEndings::Lf);
        assert_eq!(pos(&lf), [(1, 2), (3, 2)]);
        assert_eq!(
            lf[0].message,
            "CRLF line ending; line-endings asks for LF (\\n)"
        );
        let crlf = line_endings(mixed, LineEndings::Crlf);
        assert_eq!(pos(&crlf), [(2, 2)]);
        assert!(line_endings(b"a\nb\n", LineEndings::Lf).is_empty());
    }
}
