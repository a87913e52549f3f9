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
//!
//! # Macro expansions
//!
//! A lint that fires inside a macro's expansion (`assert_eq!(a, 0.5)` and
//! `clippy::float_cmp`) has its primary span in the macro's definition —
//! for the standard library's macros a file outside the workspace,
//! `/rustc/<hash>/library/core/src/macros/mod.rs:46` — with an
//! `expansion` whose `span` is the call site (and, for a macro called from
//! a macro, that span has an `expansion` of its own). The finding is put at
//! the outermost span of that chain whose file is inside the workspace: the
//! line a user wrote. When no span of the chain is inside the workspace the
//! finding keeps no location rather than a path outside it. Each call site
//! stays its own finding (duplicates are only the same chain reported
//! twice).

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
    /// Set when the span is inside a macro's expansion.
    #[serde(default)]
    expansion: Option<Box<Expansion>>,
}

/// Where a macro was expanded: `span` is its call site.
#[derive(Debug, Deserialize)]
struct Expansion {
    span: Span,
}

impl Span {
    /// This span, then each call site it was expanded from, innermost first.
    fn chain(&self) -> impl Iterator<Item = &Span> {
        std::iter::successors(Some(self), |s| s.expansion.as_ref().map(|e| &e.span))
    }

    /// `file:line:col` of every span of the chain, to tell call sites apart.
    fn chain_key(&self) -> String {
        self.chain()
            .map(|s| format!("{}:{}:{}", s.file_name, s.line_start, s.column_start))
            .collect::<Vec<_>>()
            .join(" <- ")
    }
}

/// The location of `span`: the outermost span of its expansion chain in a
/// workspace file, or `None` when all of it is outside the workspace.
fn locate(span: &Span, resolver: &Resolver) -> Option<Location> {
    let chain: Vec<&Span> = span.chain().collect();
    chain.iter().rev().find_map(|s| {
        resolver
            .inside(&s.file_name)
            .map(|path| Location::at(path, Some(s.line_start), Some(s.column_start)))
    })
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
        let primary = d
            .spans
            .iter()
            .find(|s| s.is_primary)
            .or_else(|| d.spans.first());
        let location = primary.and_then(|s| locate(s, resolver));
        // The key holds the whole expansion chain: one macro definition
        // called from 13 places is 13 findings, while the same diagnostic
        // reported for the lib and the test target is one.
        let key = format!(
            "{rule}\u{0}{}\u{0}{}\u{0}{}",
            d.level,
            d.message,
            primary.map(Span::chain_key).unwrap_or_default()
        );
        let finding = Finding {
            tool: name.to_string(),
            rule: rule.clone(),
            level: level(&d.level),
            message: d.message,
            location,
        };
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
    /// Real output of `cargo clippy --all-targets --message-format=json --
    /// -W clippy::float_cmp` (clippy 0.1.95) on the crate in
    /// `tests/fixtures/lint-project/macros/`: `assert_eq!` on floats at
    /// `src/lib.rs:20` and `:21`, and once more through a local macro
    /// `same!` (defined at line 14, called at line 22). Each primary span
    /// is `/rustc/<hash>/library/core/src/macros/mod.rs:46:21`.
    const MACROS: &str = include_str!("testdata/clippy-macros.jsonl");

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
    fn macro_findings_land_on_the_call_site() {
        let p = parse(MACROS, "clippy", &resolver());
        assert_eq!(p.diagnostics, 3);
        let lines: Vec<String> = p.run.findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "src/lib.rs:20:9 warning clippy::float_cmp strict comparison of `f32` or `f64` [clippy]",
                "src/lib.rs:21:9 warning clippy::float_cmp strict comparison of `f32` or `f64` [clippy]",
                // Through `same!`: the outermost span in the workspace is
                // the call of `same!`, not the `assert_eq!` in its body.
                "src/lib.rs:22:9 warning clippy::float_cmp strict comparison of `f32` or `f64` [clippy]",
            ]
        );
        // The lib and the test target reporting the same chain: kept once.
        let twice = format!("{MACROS}\n{MACROS}");
        assert_eq!(parse(&twice, "clippy", &resolver()).run.findings.len(), 3);
    }

    #[test]
    fn a_chain_entirely_outside_the_workspace_keeps_no_path() {
        let line = r#"{"reason":"compiler-message","message":{"message":"m","code":{"code":"clippy::x"},"level":"warning","spans":[{"file_name":"/rustc/abc/library/core/src/macros/mod.rs","line_start":46,"column_start":21,"is_primary":true,"expansion":{"span":{"file_name":"/root/.cargo/registry/src/index.crates.io-1/dep-1.0.0/src/lib.rs","line_start":3,"column_start":1,"is_primary":false,"expansion":null},"macro_decl_name":"assert!","def_site_span":{"file_name":"/rustc/abc/library/core/src/macros/mod.rs","line_start":40,"column_start":1,"is_primary":false,"expansion":null}}}]}}"#;
        let p = parse(line, "clippy", &resolver());
        assert_eq!(p.run.findings.len(), 1);
        assert_eq!(p.run.findings[0].location, None);
        assert_eq!(
            p.run.findings[0].to_string(),
            "- warning clippy::x m [clippy]"
        );
    }

    #[test]
    fn levels_map_to_sarif() {
        assert_eq!(level("error: internal compiler error"), Level::Error);
        assert_eq!(level("help"), Level::Note);
        assert_eq!(level("something-new"), Level::Warning);
    }
}
