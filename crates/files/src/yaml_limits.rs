//! Bounds on the YAML of the files sluice reads (the pipeline file and the
//! trust policy), checked before `serde_yaml_ng` sees them.
//!
//! Two shapes of YAML cost far more to load than their size suggests:
//!
//! - **Deep nesting.** The libyaml scanner behind `serde_yaml_ng` keeps one
//!   "possible simple key" per open flow collection and walks them all for
//!   every token, so `[[[[…]]]]` takes time quadratic in its depth: 100 000
//!   levels (a 200 KB file) took 75 s. `serde_yaml_ng`'s own recursion limit
//!   (128) only applies once the whole document has been parsed.
//! - **Alias expansion.** serde expands every alias (`*a`) into a copy of
//!   its anchor. `serde_yaml_ng` bounds the number of alias jumps (100 per
//!   event), which stops the exponential "billion laughs", but not one
//!   large anchor repeated many times: an anchor of 100 000 items aliased
//!   100 000 times is 10^10 values from a 1 MiB file.
//!
//! [`check`] walks the document's events once with `yaml-rust2` (a port of
//! the same libyaml scanner, with no quadratic step and no expansion), in
//! linear time, and stops at the first node deeper than [`MAX_DEPTH`] or at
//! the alias that takes the expansion past [`MAX_ALIAS_NODES`].

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// How deeply mappings and sequences may nest (block and flow together).
/// A pipeline needs about 6 levels (`stages.<name>.with.<key>…`); 64 leaves
/// ample room for nested plugin configuration and keeps the quadratic
/// parser step negligible.
pub const MAX_DEPTH: usize = 64;

/// How many nodes aliases may add to a document once expanded. Reusing a
/// block of grants or settings with `*name` across a thousand stages adds
/// a few tens of thousands; 100 000 keeps the expanded document within a
/// few MiB of memory.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// Why a YAML document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlLimitError {
    /// A mapping or sequence nests deeper than [`MAX_DEPTH`].
    #[error("the YAML nests mappings and lists more than {limit} levels deep")]
    TooDeep {
        /// Line of the first node past the limit, 1-based.
        line: usize,
        /// Its column, in characters, 1-based.
        column: usize,
        /// [`MAX_DEPTH`].
        limit: usize,
    },
    /// Aliases would expand the document by more than [`MAX_ALIAS_NODES`].
    #[error("aliases would expand the YAML by more than {limit} nodes")]
    AliasExpansion {
        /// Line of the alias that crossed the limit, 1-based.
        line: usize,
        /// Its column, in characters, 1-based.
        column: usize,
        /// [`MAX_ALIAS_NODES`].
        limit: u64,
    },
    /// An alias inside the node its anchor names (`&a [*a]`): an infinite
    /// document.
    #[error("an alias refers to a node that contains it, which would make the YAML infinite")]
    RecursiveAlias {
        /// Line of the alias, 1-based.
        line: usize,
        /// Its column, in characters, 1-based.
        column: usize,
    },
    /// The document has a syntax error, and what follows it could not be
    /// checked for the limits above but holds brackets or aliases enough to
    /// break them; reported as the syntax error it is.
    #[error("invalid YAML: {message}")]
    Syntax {
        /// Line of the error, 1-based.
        line: usize,
        /// Its column, in characters, 1-based.
        column: usize,
        /// What the YAML scanner said.
        message: String,
    },
}

impl YamlLimitError {
    /// `(line, column)`, both 1-based.
    pub fn location(&self) -> (usize, usize) {
        match self {
            YamlLimitError::TooDeep { line, column, .. }
            | YamlLimitError::AliasExpansion { line, column, .. }
            | YamlLimitError::RecursiveAlias { line, column }
            | YamlLimitError::Syntax { line, column, .. } => (*line, *column),
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            YamlLimitError::TooDeep { limit, .. } => format!(
                "flatten the structure: sluice refuses YAML nested more than {limit} levels deep \
                 before parsing it, because such nesting makes the parser slow"
            ),
            YamlLimitError::AliasExpansion { limit, .. } => format!(
                "write the values out, or alias smaller nodes: expanded, the aliases may add at \
                 most {limit} nodes, so that a small file cannot expand into gigabytes"
            ),
            YamlLimitError::RecursiveAlias { .. } => {
                "an alias may only refer to an anchor whose node is complete before it".to_owned()
            }
            YamlLimitError::Syntax { .. } => {
                "fix the YAML here (check indentation, quotes and brackets)".to_owned()
            }
        }
    }
}

/// One open mapping or sequence.
struct Open {
    /// Its anchor id (0: none).
    anchor: usize,
    /// Nodes in it so far, aliases expanded, itself included.
    size: u64,
}

/// Checks `src` against [`MAX_DEPTH`] and [`MAX_ALIAS_NODES`], every
/// document of the stream (serde parses them all, to refuse a second one).
pub fn check(src: &str) -> Result<(), YamlLimitError> {
    let mut parser = Parser::new_from_str(src);
    let mut open: Vec<Open> = Vec::new();
    // Expanded size of each complete anchored node, by anchor id.
    let mut anchored: HashMap<usize, u64> = HashMap::new();
    let mut added: u64 = 0;
    // Where the last event was, as (line, column), both 1-based.
    let mut last = (1, 1);
    // Whether that event opened a collection (which `open` then counts).
    let mut last_opened = false;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                let at = (e.marker().line(), e.marker().col() + 1);
                // yaml-rust2 refuses more than 255 flow levels itself, and
                // may do so before it has emitted the events of the first 64
                // (it reads ahead to tell keys from values).
                if e.info() == "recursion limit exceeded" {
                    let (line, column) =
                        too_deep_at(src, last, last_opened, open.len()).unwrap_or(at);
                    return Err(YamlLimitError::TooDeep {
                        line,
                        column,
                        limit: MAX_DEPTH,
                    });
                }
                return after_syntax_error(src, last, at, e.info());
            }
        };
        // yaml-rust2 lines are 1-based but columns 0-based.
        let (line, column) = (mark.line(), mark.col() + 1);
        last = (line, column);
        last_opened = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        let node_size = match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(YamlLimitError::TooDeep {
                        line,
                        column,
                        limit: MAX_DEPTH,
                    });
                }
                open.push(Open { anchor, size: 1 });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(done) = open.pop() else { continue };
                if done.anchor != 0 {
                    anchored.insert(done.anchor, done.size);
                }
                done.size
            }
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    anchored.insert(anchor, 1);
                }
                1
            }
            Event::Alias(anchor) => {
                if open.iter().any(|o| o.anchor == anchor) {
                    return Err(YamlLimitError::RecursiveAlias { line, column });
                }
                // An unknown anchor is a parse error yaml-rust2 reports
                // itself; count it as one node meanwhile.
                let size = anchored.get(&anchor).copied().unwrap_or(1);
                added = added.saturating_add(size);
                if added > MAX_ALIAS_NODES {
                    return Err(YamlLimitError::AliasExpansion {
                        line,
                        column,
                        limit: MAX_ALIAS_NODES,
                    });
                }
                size
            }
            _ => continue,
        };
        if let Some(parent) = open.last_mut() {
            parent.size = parent.size.saturating_add(node_size);
        }
    }
}

/// How many opening brackets the unchecked rest of a document (after a
/// syntax error) may hold: libyaml's nesting there is at most this much
/// more than where yaml-rust2 stopped, which keeps its quadratic step small
/// (a fraction of a second for 1 MiB).
const MAX_UNCHECKED_BRACKETS: usize = 256;

/// `yaml-rust2` stopped at a syntax error, so the rest of the document was
/// not checked. serde reports syntax errors better (and libyaml may even
/// accept what yaml-rust2 refuses), so the error is left to it, unless the
/// unchecked rest, from the last event seen, could break the limits: more
/// than [`MAX_UNCHECKED_BRACKETS`] opening brackets, or anything that may
/// be an alias.
fn after_syntax_error(
    src: &str,
    last: (usize, usize),
    at: (usize, usize),
    message: &str,
) -> Result<(), YamlLimitError> {
    let rest = &src[byte_offset(src, last)..];
    let brackets = rest.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if brackets <= MAX_UNCHECKED_BRACKETS && !may_hold_alias(rest) {
        return Ok(());
    }
    Err(YamlLimitError::Syntax {
        line: at.0,
        column: at.1,
        message: message.to_owned(),
    })
}

/// Where the bracket that opens level `MAX_DEPTH + 1` is, counting brackets
/// from `from` (the last event seen, at nesting `depth`; `counted`: that
/// event opened a collection already in `depth`). Only used to point at the
/// problem once yaml-rust2 has found it; quoted brackets are rare enough
/// there not to matter.
fn too_deep_at(
    src: &str,
    from: (usize, usize),
    counted: bool,
    mut depth: usize,
) -> Option<(usize, usize)> {
    let (mut line, mut column) = from;
    let mut chars = src[byte_offset(src, from)..].chars();
    if counted && chars.next().is_some() {
        column += 1;
    }
    for c in chars {
        match c {
            '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some((line, column));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '\n' => {
                line += 1;
                column = 0;
            }
            _ => {}
        }
        column += 1;
    }
    None
}

/// True if `text` has a `*` where an alias could start: at the start of a
/// line or after a blank or a flow indicator, followed by a character that
/// is not a blank.
fn may_hold_alias(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'*'
            && (i == 0
                || matches!(
                    bytes[i - 1],
                    b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b','
                ))
            && bytes
                .get(i + 1)
                .is_some_and(|n| !matches!(n, b' ' | b'\t' | b'\n' | b'\r'))
    })
}

/// Byte offset in `src` of `(line, column)` (both 1-based, the column in
/// characters). A position that does not fit gives 0: the whole text is
/// then considered unchecked, which is the safe side.
fn byte_offset(src: &str, (line, column): (usize, usize)) -> usize {
    let mut line_start = 0;
    for _ in 1..line {
        match src[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return 0,
        }
    }
    let text = &src[line_start..];
    let skip = column.saturating_sub(1);
    match text.char_indices().nth(skip) {
        Some((i, _)) => line_start + i,
        None if text.chars().count() == skip => src.len(),
        None => 0,
    }
}

/// The text of a source line to show under a diagnostic: whole when short;
/// cut after 120 characters when the column is within them (a 200 KB line
/// of brackets would otherwise be printed in full); `None` when the column
/// is further right than that.
pub fn excerpt(line: &str, column: usize) -> Option<String> {
    const SHOWN: usize = 120;
    if line.chars().count() <= SHOWN {
        return Some(line.to_owned());
    }
    if column > SHOWN {
        return None;
    }
    let mut cut: String = line.chars().take(SHOWN).collect();
    cut.push('…');
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("x: {}{}\n", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn accepts_ordinary_documents() {
        let src = "version: 1\nname: a\nstages:\n  a:\n    uses: p.wasm\n    with: {x: [1, {y: [2]}], z: '[[[[', w: \"{{{\"}\n    # [[[[[[[[\n";
        assert_eq!(check(src), Ok(()));
        assert_eq!(check(""), Ok(()));
        assert_eq!(check(&nested("[", "]", MAX_DEPTH - 1)), Ok(()));
    }

    #[test]
    fn refuses_deep_flow_nesting_at_the_first_node_too_deep() {
        // The root mapping is level 1, so `[` number 64 (column 67) is
        // level 65.
        let err = check(&nested("[", "]", MAX_DEPTH));
        assert_eq!(
            err,
            Err(YamlLimitError::TooDeep {
                line: 1,
                column: 3 + MAX_DEPTH,
                limit: MAX_DEPTH
            })
        );
        assert!(matches!(
            check(&nested("{a: ", "}", 1000)),
            Err(YamlLimitError::TooDeep { line: 1, .. })
        ));
    }

    #[test]
    fn checks_every_document_of_the_stream() {
        // serde parses a second document too, only to refuse it.
        let src = format!("a: 1\n---\n{}", nested("[", "]", MAX_DEPTH));
        assert!(matches!(
            check(&src),
            Err(YamlLimitError::TooDeep { line: 3, .. })
        ));
    }

    #[test]
    fn refuses_deep_block_nesting() {
        let mut src = String::new();
        for level in 0..=MAX_DEPTH {
            src.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
        }
        src.push_str(&format!("{}end: 1\n", "  ".repeat(MAX_DEPTH + 1)));
        assert!(matches!(
            check(&src),
            Err(YamlLimitError::TooDeep { line, .. }) if line == MAX_DEPTH + 1
        ));
    }

    #[test]
    fn deep_nesting_is_checked_in_linear_time() {
        // 100 000 levels: the parser behind serde needs over a minute.
        let started = std::time::Instant::now();
        let err = check(&nested("[", "]", 100_000));
        // The caret is on the bracket past the limit even when yaml-rust2
        // only stops further on.
        assert_eq!(
            err,
            Err(YamlLimitError::TooDeep {
                line: 1,
                column: 3 + MAX_DEPTH,
                limit: MAX_DEPTH
            })
        );
        let inside = format!(
            "version: 1\nstages:\n  a:\n    with: {{x: {}}}\n",
            "[".repeat(100_000)
        );
        assert!(matches!(
            check(&inside),
            Err(YamlLimitError::TooDeep { line: 4, .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn counts_aliases_by_their_expanded_size() {
        let ok = "common: &c {workspace: read, env: [A, B]}\na: *c\nb: *c\n";
        assert_eq!(check(ok), Ok(()));
        // One anchor of 1 000 items aliased 200 times: 200 000 nodes.
        let items = vec!["1"; 1000].join(", ");
        let aliases = vec!["*a"; 200].join(", ");
        let wide = format!("a: &a [{items}]\nb: [{aliases}]\n");
        assert!(matches!(
            check(&wide),
            Err(YamlLimitError::AliasExpansion { line: 2, .. })
        ));
    }

    #[test]
    fn refuses_a_billion_laughs() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = format!("*a{}", level - 1);
            let row = [prev.as_str(); 10].join(", ");
            src.push_str(&format!("a{level}: &a{level} [{row}]\n"));
        }
        let err = check(&src);
        assert!(
            matches!(err, Err(YamlLimitError::AliasExpansion { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_recursive_aliases() {
        assert!(matches!(
            check("a: &a [1, *a]\n"),
            Err(YamlLimitError::RecursiveAlias {
                line: 1,
                column: 11
            })
        ));
    }

    #[test]
    fn leaves_ordinary_syntax_errors_to_serde() {
        assert_eq!(check("a: [1, 2\nb: 3\n"), Ok(()));
        assert_eq!(check("a: b: c\n"), Ok(()));
    }

    #[test]
    fn a_syntax_error_before_deep_or_aliased_text_is_reported() {
        let deep = format!("a: b: c\nd: {}\n", "[".repeat(MAX_UNCHECKED_BRACKETS + 1));
        assert!(matches!(
            check(&deep),
            Err(YamlLimitError::Syntax { line: 1, .. })
        ));
        let aliased = "a: b: c\nd: *x\n";
        assert!(matches!(check(aliased), Err(YamlLimitError::Syntax { .. })));
    }

    #[test]
    fn offsets_from_markers() {
        let src = "ab\ncdé\nf";
        assert_eq!(byte_offset(src, (1, 1)), 0);
        assert_eq!(byte_offset(src, (2, 3)), 5);
        assert_eq!(byte_offset(src, (3, 2)), src.len());
        assert_eq!(byte_offset(src, (9, 1)), 0);
    }

    #[test]
    fn excerpts_of_long_lines() {
        assert_eq!(excerpt("short", 3).as_deref(), Some("short"));
        let long = "[".repeat(1000);
        let cut = excerpt(&long, 65).unwrap_or_default();
        assert_eq!(cut.chars().count(), 121);
        assert_eq!(excerpt(&long, 500), None);
    }
}
