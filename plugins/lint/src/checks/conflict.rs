//! `merge-conflict-marker`: lines git leaves behind in a conflicted merge.
//!
//! `<<<<<<< ` and `>>>>>>> ` (seven characters and a space, then the
//! branch), `<<<<<<<` / `>>>>>>>` alone and the diff3 base marker `|||||||`
//! are always reported. A line of exactly `=======` is reported only when the
//! file also has an opening or closing marker: on its own it is a Markdown or
//! reStructuredText heading underline.

use super::{lines, Hit};
use crate::rules::Rule;

/// Every conflict marker line in `bytes`, one hit each.
pub fn check(bytes: &[u8]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut separators = Vec::new();
    for line in lines(bytes) {
        let text = line.text;
        if let Some(kind) = marker(text) {
            hits.push(Hit::at(
                Rule::MergeConflictMarker,
                line.number,
                1,
                format!("merge conflict marker `{}` left in the file", kind),
            ));
        } else if text == b"=======" {
            separators.push(line.number);
        }
    }
    if !hits.is_empty() {
        hits.extend(separators.into_iter().map(|n| {
            Hit::at(
                Rule::MergeConflictMarker,
                n,
                1,
                "merge conflict marker `=======` left in the file",
            )
        }));
        hits.sort_by_key(|h| h.line);
    }
    hits
}

/// The marker a line starts with, if it is an opening, base or closing one.
fn marker(text: &[u8]) -> Option<&'static str> {
    for m in ["<<<<<<<", "|||||||", ">>>>>>>"] {
        if let Some(rest) = text.strip_prefix(m.as_bytes()) {
            if rest.is_empty() || rest[0] == b' ' {
                return Some(m);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(bytes: &[u8]) -> Vec<u32> {
        check(bytes).iter().filter_map(|h| h.line).collect()
    }

    #[test]
    fn finds_a_conflict_block() {
        let text = b"a = 1\n<<<<<<< HEAD\nb = 2\n=======\nb = 3\n>>>>>>> feature/x\n";
        assert_eq!(lines_of(text), [2, 4, 6]);
        let h = &check(text)[0];
        assert_eq!(h.column, Some(1));
        assert_eq!(
            h.message,
            "merge conflict marker `<<<<<<<` left in the file"
        );
    }

    #[test]
    fn finds_diff3_and_crlf_markers() {
        let text = b"<<<<<<< ours\r\nx\r\n||||||| base\r\ny\r\n=======\r\nz\r\n>>>>>>> theirs\r\n";
        assert_eq!(lines_of(text), [1, 3, 5, 7]);
        assert_eq!(lines_of(b"<<<<<<<\n"), [1]);
    }

    #[test]
    fn ignores_look_alikes() {
        // A heading underline alone is not a conflict.
        assert!(check(b"Title\n=======\n\ntext\n").is_empty());
        // Markers must start the line and be exactly seven characters.
        assert!(check(b"  <<<<<<< HEAD\n").is_empty());
        assert!(check(b"<<<<<<<< eight\n").is_empty());
        assert!(check(b"x = '>>>>>>> y'\n").is_empty());
        assert!(check(b"<<<<<<<HEAD\n").is_empty());
        assert!(check(b"========\n").is_empty());
    }
}
