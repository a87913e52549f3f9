//! Escaping for the HTML report. Everything a plugin or the workspace
//! provides (names, messages, logs, file contents) goes through one of
//! these before it reaches the page; nothing else in the report builds
//! markup from such text.

use std::borrow::Cow;

/// `text` safe in HTML text and in a double- or single-quoted attribute
/// value: `& < > " '` become character references. Control characters
/// other than tab, newline and carriage return (ANSI colour codes, NUL)
/// are dropped: they mean nothing in a page and can confuse a reader.
pub fn html(text: &str) -> Cow<'_, str> {
    let needs = text
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || is_dropped(c));
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_dropped(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// `value` as JSON that can sit inside `<script type="application/json">`:
/// `<`, `>` and `&` are written as `\u003c`, `\u003e`, `\u0026`, so the
/// text can neither close the element (`</script>`) nor open a comment
/// (`<!--`); U+2028/U+2029 are escaped too. JSON.parse reads it back
/// unchanged.
pub fn script_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path (segments separated by `/`) as a URL path: every byte
/// outside the unreserved set (`A-Z a-z 0-9 - . _ ~`) of each segment is
/// percent-encoded, so a name with quotes, `#`, `?` or spaces links to
/// the file of that name. The result is also safe in an attribute.
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(html(r#"a "b" & 'c'"#), "a &quot;b&quot; &amp; &#39;c&#39;");
        assert_eq!(html("&amp;"), "&amp;amp;", "escaped again, not trusted");
        assert!(matches!(html("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn html_drops_control_characters_but_keeps_layout() {
        assert_eq!(html("\u{1b}[31mred\u{1b}[0m\0"), "[31mred[0m");
        assert_eq!(html("a\tb\r\nc"), "a\tb\r\nc");
        assert_eq!(html("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = serde_json::json!([
            "</script><script>alert(1)</script>",
            "<!--",
            "a&b",
            "\u{2028}"
        ]);
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert!(!s.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, v);
    }

    #[test]
    fn url_path_encodes_each_segment() {
        assert_eq!(url_path("lint/lint.sarif"), "lint/lint.sarif");
        assert_eq!(
            url_path(r#"build/a "quoted" name#1?.txt"#),
            "build/a%20%22quoted%22%20name%231%3F.txt"
        );
        assert_eq!(url_path("t/ü"), "t/%C3%BC");
        assert_eq!(url_path("x/<b>'"), "x/%3Cb%3E%27");
    }
}
