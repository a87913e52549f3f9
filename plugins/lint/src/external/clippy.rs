//! Reading cargo's `--message-format=json` stream (`cargo clippy`,
//! `cargo check`, `cargo build`).
//!
//! Each line is a JSON object; lines with `"reason": "compiler-message"`
//! carry a rustc diagnostic: `message.level`, `message.message`,
//! `message.code.code` (`clippy::needless_return`, `E0308`,
//! `unused_variables`) and `message.spans`, of which the one with
//! `is_primary` gives `file_name`, `line_start`, `column_start`. Other
//! reasons (`compiler-artifact`, `build-finished`, ...) are skipped, and so
//! are rustc's closing summaries ("aborting due to ...", "N warnings
//! emitted"). The same diagnostic reported for several targets (lib and
//! tests) is kept once.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Resolver, RuleDoc, ToolRun};
use crate::finding::{Finding, Level, Location};

/// One line of cargo's JSON output (only the fields used).
#[derive(Debug, Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    message: Option<Diagnostic>,
}

/// A rustc diagnostic.
#[derive(Debug, Deserialize)]
struct Diagnostic {
    message: String,
    #[serde(default)]
    code: Option<Code>,
    level: String,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Debug, Deserialize)]
struct Code {
    code: String,
}

#[derive(Debug, Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    column_start: u32,
    #[serde(default)]
    is_primary: bool,
}

/// What a cargo JSON stream held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The findings, as one run of tool `name`.
    pub run: ToolRun,
    /// How many `compiler-message` lines there were (including summaries
    /// and duplicates that were dropped).
    pub diagnostics: usize,
    /// Non-empty lines that were not JSON objects (cargo prints only JSON
    /// on stdout, so these mean something else wrote there).
    pub unreadable_lines: usize,
}

/// Parses `text` (cargo's stdout) into findings of tool `name`, mapping
/// file names with `resolver`.
pub fn parse(text: &str, name: &str, resolver: &Resolver) -> Parsed {
    let mut run = ToolRun::new(name);
    run.column_kind = Some("unicodeCodePoints".into());
    run.information_uri =
        (name == "clippy").then(|| "https://rust-lang.github.io/rust-clippy/".to_string());
    let mut diagnostics = 0;
    let mut unreadable_lines = 0;
    let mut seen = HashSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<CargoMessage>(line) else {
            unreadable_lines += 1;
            continue;
        };
        if msg.reason != "compiler-message" {
            continue;
        }
        let Some(d) = msg.message else {
            continue;
        };
        diagnostics += 1;
        if is_summary(&d) {
            continue;
        }
        let rule = d
            .code
            .as_ref()
            .map(|c| c.code.clone())
            .unwrap_or_else(|| format!("rustc-{}", d.level.replace(' ', "-").replace(':', "")));
        let location = d
            .spans
            .iter()
            .find(|s| s.is_primary)
            .or_else(|| d.spans.first())
            .map(|s| {
                Location::at(
                    resolver.path(&s.file_name),
                    Some(s.line_start),
                    Some(s.column_start),
                )
            });
        let finding = Finding {
            tool: name.to_string(),
            rule: rule.clone(),
            level: level(&d.level),
            message: d.message,
            location,
        };
        let key = finding.to_string();
        if !seen.insert(key) {
            continue;
        }
        run.rules.entry(rule.clone()).or_insert_with(|| RuleDoc {
            level: None,
            description: None,
            help_uri: help_uri(&rule),
        });
        run.findings.push(finding);
    }
    Parsed {
        run,
        diagnostics,
        unreadable_lines,
    }
}

/// rustc's level names to SARIF levels.
fn level(rustc: &str) -> Level {
    match rustc {
        "error" | "error: internal compiler error" => Level::Error,
        "warning" => Level::Warning,
        "note" | "help" | "failure-note" => Level::Note,
        _ => Level::Warning,
    }
}

/// rustc's closing lines, which repeat what the diagnostics said.
fn is_summary(d: &Diagnostic) -> bool {
    d.spans.is_empty()
        && (d.level == "failure-note"
            || d.message.starts_with("aborting due to")
            || d.message.ends_with("warning emitted")
            || d.message.ends_with("warnings emitted"))
}

/// Documentation for clippy lints and rustc error codes.
fn help_uri(rule: &str) -> Option<String> {
    if let Some(lint) = rule.strip_prefix("clippy::") {
        return Some(format!(
            "https://rust-lang.github.io/rust-clippy/master/index.html#{lint}"
        ));
    }
    let is_error_code =
        rule.len() == 5 && rule.starts_with('E') && rule[1..].chars().all(|c| c.is_ascii_digit());
    is_error_code.then(|| format!("https://doc.rust-lang.org/error_codes/{rule}.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `cargo clippy --message-format=json` (cargo 1.95) on
    /// a crate with an unused variable and a needless `return`.
    const WARNINGS: &str = include_str!("testdata/clippy-warnings.jsonl");
    /// The same crate with `-- -D warnings`: the lints become errors.
    const DENY: &str = include_str!("testdata/clippy-deny.jsonl");

    fn resolver() -> Resolver {
        Resolver::new(std::path::Path::new("/nonexistent-workspace"), None)
    }

    #[test]
    fn real_clippy_output_is_read() {
        let p = parse(WARNINGS, "clippy", &resolver());
        assert_eq!(p.diagnostics, 2);
        assert_eq!(p.unreadable_lines, 0);
        let lines: Vec<String> = p.run.findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "src/main.rs:6:9 warning unused_variables unused variable: `unused` [clippy]",
                "src/main.rs:2:5 warning clippy::needless_return unneeded `return` statement [clippy]",
            ]
        );
        assert_eq!(
            p.run.rules["clippy::needless_return"].help_uri.as_deref(),
            Some("https://rust-lang.github.io/rust-clippy/master/index.html#needless_return")
        );
        assert_eq!(p.run.rules["unused_variables"].help_uri, None);
    }

    #[test]
    fn denied_lints_are_errors() {
        let p = parse(DENY, "clippy", &resolver());
        assert!(p.run.findings.iter().all(|f| f.level == Level::Error));
        assert_eq!(p.run.findings.len(), 2);
    }

    #[test]
    fn summaries_duplicates_and_noise_are_dropped() {
        let diag = r#"{"reason":"compiler-message","message":{"message":"mismatched types","code":{"code":"E0308"},"level":"error","spans":[{"file_name":"src/lib.rs","line_start":1,"column_start":1,"is_primary":false},{"file_name":"src/lib.rs","line_start":4,"column_start":9,"is_primary":true}]}}"#;
        let abort = r#"{"reason":"compiler-message","message":{"message":"aborting due to 1 previous error","code":null,"level":"error","spans":[]}}"#;
        let emitted = r#"{"reason":"compiler-message","message":{"message":"2 warnings emitted","code":null,"level":"warning","spans":[]}}"#;
        let explain = r#"{"reason":"compiler-message","message":{"message":"For more information about this error, try `rustc --explain E0308`.","code":null,"level":"failure-note","spans":[]}}"#;
        let link = r#"{"reason":"compiler-message","message":{"message":"linking with `cc` failed","code":null,"level":"error","spans":[]}}"#;
        let text = [
            diag,
            diag,
            abort,
            emitted,
            explain,
            link,
            "Compiling x",
            r#"{"reason":"build-finished","success":false}"#,
        ]
        .join("\n");
        let p = parse(&text, "cargo", &resolver());
        assert_eq!(p.diagnostics, 6);
        assert_eq!(p.unreadable_lines, 1);
        let lines: Vec<String> = p.run.findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "src/lib.rs:4:9 error E0308 mismatched types [cargo]",
                "- error rustc-error linking with `cc` failed [cargo]",
            ]
        );
        assert_eq!(
            p.run.rules["E0308"].help_uri.as_deref(),
            Some("https://doc.rust-lang.org/error_codes/E0308.html")
        );
    }

    #[test]
    fn levels_map_to_sarif() {
        assert_eq!(level("error: internal compiler error"), Level::Error);
        assert_eq!(level("help"), Level::Note);
        assert_eq!(level("something-new"), Level::Warning);
    }
}
