//! `yaml-syntax`, `json-syntax`, `toml-syntax`: the file must parse, and
//! the finding carries the parser's own line, column and message.
//!
//! - YAML (`.yaml`, `.yml`): every document of a multi-document stream is
//!   parsed with `serde_yaml_ng` (YAML 1.2; duplicate keys are errors;
//!   custom tags such as `!Ref` are accepted).
//! - JSON (`.json`): `serde_json`. Files matched by `jsonc` (by default
//!   `tsconfig*.json`, `.vscode/*.json`, `*.jsonc`, ...) may also contain
//!   `//`, `/* */` comments and trailing commas, as their tools allow.
//! - TOML (`.toml`): the `toml` crate (TOML 1.0/1.1).

use globset::GlobSet;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{line_col, Hit};
use crate::rules::Rule;

/// A structured format the stage parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2.
    Yaml,
    /// Strict JSON.
    Json,
    /// JSON with comments and trailing commas.
    Jsonc,
    /// TOML.
    Toml,
}

impl Format {
    /// The format of the file at `rel`, by extension (and `jsonc` globs).
    pub fn of(rel: &str, jsonc: &GlobSet) -> Option<Format> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" | "jsonc" if jsonc.is_match(rel) => Some(Format::Jsonc),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    /// The rule that reports this format's parse errors.
    pub fn rule(self) -> Rule {
        match self {
            Format::Yaml => Rule::YamlSyntax,
            Format::Json | Format::Jsonc => Rule::JsonSyntax,
            Format::Toml => Rule::TomlSyntax,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Jsonc => "JSONC",
            Format::Toml => "TOML",
        }
    }
}

/// Parses `bytes` as `format`; a hit when it does not parse.
pub fn check(format: Format, bytes: &[u8]) -> Option<Hit> {
    let rule = format.rule();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t),
        Err(e) => {
            let (line, col) = line_col(bytes, e.valid_up_to());
            return Some(Hit::at(
                rule,
                line,
                col,
                format!("invalid {}: not valid UTF-8", format.name()),
            ));
        }
    };
    let bom = bytes.len() - text.len();
    let error = match format {
        Format::Yaml => yaml(text),
        Format::Json => json(text),
        Format::Jsonc => jsonc(text),
        Format::Toml => toml(text),
    }?;
    let (line, col) = match error.position {
        Position::LineCol(l, c) => (l, c),
        Position::Offset(o) => line_col(bytes, o + bom),
    };
    Some(Hit::at(
        rule,
        line.max(1),
        col.max(1),
        format!("invalid {}: {}", format.name(), error.message),
    ))
}

/// Where a parser said the error is.
enum Position {
    /// 1-based line and column.
    LineCol(u32, u32),
    /// Byte offset into the text.
    Offset(usize),
}

struct ParseError {
    message: String,
    position: Position,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn yaml(text: &str) -> Option<ParseError> {
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        if let Err(e) = serde_yaml_ng::Value::deserialize(doc) {
            let position = match e.location() {
                Some(l) => Position::LineCol(to_u32(l.line()), to_u32(l.column())),
                None => Position::LineCol(1, 1),
            };
            // The message ends with " at line L column C"; the position is
            // reported separately.
            let full = e.to_string();
            let message = match full.find(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            };
            return Some(ParseError { message, position });
        }
    }
    None
}

fn json(text: &str) -> Option<ParseError> {
    let e = serde_json::from_str::<IgnoredAny>(text).err()?;
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    Some(ParseError {
        message,
        position: Position::LineCol(to_u32(e.line()), to_u32(e.column())),
    })
}

fn jsonc(text: &str) -> Option<ParseError> {
    use std::io::Read;
    // Comments become spaces (line breaks kept), so positions still match.
    // Only C-style comments: `#` does not start a JSONC comment.
    let mut stripped = Vec::with_capacity(text.len());
    if json_comments::CommentSettings::c_style()
        .strip_comments(text.as_bytes())
        .read_to_end(&mut stripped)
        .is_err()
    {
        return Some(ParseError {
            message: "unterminated comment".into(),
            position: Position::Offset(text.len()),
        });
    }
    blank_trailing_commas(&mut stripped);
    match std::str::from_utf8(&stripped) {
        Ok(t) => json(t),
        Err(e) => Some(ParseError {
            message: "not valid UTF-8".into(),
            position: Position::Offset(e.valid_up_to()),
        }),
    }
}

/// Replaces each `,` that is followed (after whitespace) by `]` or `}` with
/// a space, outside strings.
fn blank_trailing_commas(json: &mut [u8]) {
    let mut in_string = false;
    let mut escaped = false;
    for i in 0..json.len() {
        let b = json[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' => {
                let next = json[i + 1..]
                    .iter()
                    .find(|c| !c.is_ascii_whitespace())
                    .copied();
                if matches!(next, Some(b']') | Some(b'}')) {
                    json[i] = b' ';
                }
            }
            _ => {}
        }
    }
}

fn toml(text: &str) -> Option<ParseError> {
    let e = ::toml::from_str::<::toml::Table>(text).err()?;
    let offset = e.span().map(|s| s.start).unwrap_or(0);
    Some(ParseError {
        message: e.message().trim().to_string(),
        position: Position::Offset(offset),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{glob_set, DEFAULT_JSONC};

    fn at(h: Option<Hit>) -> Option<(u32, u32, String)> {
        h.map(|h| (h.line.unwrap_or(0), h.column.unwrap_or(0), h.message))
    }

    #[test]
    fn formats_by_extension() {
        let jsonc = glob_set("k", &DEFAULT_JSONC.map(String::from)).expect("globs");
        assert_eq!(Format::of("a/b.YML", &jsonc), Some(Format::Yaml));
        assert_eq!(Format::of("package.json", &jsonc), Some(Format::Json));
        assert_eq!(Format::of("web/tsconfig.json", &jsonc), Some(Format::Jsonc));
        assert_eq!(
            Format::of(".vscode/settings.json", &jsonc),
            Some(Format::Jsonc)
        );
        assert_eq!(Format::of("Cargo.toml", &jsonc), Some(Format::Toml));
        assert_eq!(Format::of("Makefile", &jsonc), None);
        assert_eq!(Format::of("x.py", &jsonc), None);
    }

    #[test]
    fn valid_files_pass() {
        assert!(check(Format::Yaml, b"a: 1\nb: [x, y]\n").is_none());
        assert!(check(Format::Yaml, b"---\nkind: A\n---\nkind: B\n").is_none());
        assert!(check(Format::Yaml, b"x: !Ref Thing\ny: !GetAtt [a, b]\n").is_none());
        assert!(check(Format::Yaml, b"").is_none());
        assert!(check(Format::Json, b"{\"a\": [1, 2]}\n").is_none());
        assert!(check(Format::Json, "\u{feff}{}".as_bytes()).is_none());
        assert!(check(Format::Jsonc, b"{\n  // c\n  \"a\": 1, /* d */\n}\n").is_none());
        assert!(check(Format::Jsonc, b"{\"a\": [1, 2,], \"s\": \",]\\\",}\",}").is_none());
        assert!(check(Format::Toml, b"[package]\nname = \"x\"\n").is_none());
    }

    #[test]
    fn yaml_errors_carry_the_parser_position() {
        let got = at(check(Format::Yaml, b"a: 1\nb: [1, 2\nc: 3\n"));
        let (line, _, msg) = got.expect("error");
        assert!(line >= 2, "line {line}");
        assert!(msg.starts_with("invalid YAML: "), "{msg}");
        assert!(!msg.contains(" at line "), "{msg}");
        // An error in the second document is found too.
        let got = at(check(Format::Yaml, b"a: 1\n---\nb: : :\n  - x\n"));
        assert!(got.expect("error").0 >= 3);
        // Duplicate keys are an error in YAML 1.2.
        assert!(check(Format::Yaml, b"a: 1\na: 2\n").is_some());
    }

    #[test]
    fn json_errors_carry_the_parser_position() {
        let got = at(check(Format::Json, b"{\n  \"a\": 1,\n}\n"));
        assert_eq!(
            got,
            Some((3, 1, "invalid JSON: key must be a string".to_string()))
        );
        // Comments are not JSON...
        assert!(check(Format::Json, b"{ // no\n}").is_some());
        // ...but JSONC still rejects what is broken, at the right place.
        let got = at(check(Format::Jsonc, b"// header\n{\n  \"a\" 1\n}\n"));
        assert_eq!(got.map(|g| (g.0, g.1)), Some((3, 7)));
    }

    #[test]
    fn toml_errors_carry_the_parser_position() {
        let got = at(check(Format::Toml, b"[a]\nx = 1\ny = \n"));
        let (line, col, msg) = got.expect("error");
        assert_eq!(line, 3, "{msg}");
        assert!(col >= 4, "{col}");
        assert!(msg.starts_with("invalid TOML: "), "{msg}");
        assert!(
            check(Format::Toml, b"a = 1\na = 2\n").is_some(),
            "duplicate key"
        );
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error() {
        let got = at(check(Format::Json, b"{\"a\":\n\"\xff\"}"));
        assert_eq!(
            got,
            Some((2, 2, "invalid JSON: not valid UTF-8".to_string()))
        );
    }
}
