//! rustc-style rendering of errors in the files sluice reads (the pipeline
//! file, the trust policy file): the message, `--> file:line:col`, the
//! source line with a caret under the column, and a `= help:` line.
//!
//! ```text
//! error: stage `deploy` needs `biuld`, which is not a stage in this pipeline
//!   --> examples/demo/sluice.yaml:14:13
//!    |
//! 14 |     needs: [biuld]
//!    |             ^
//!    = help: did you mean `build`? Stages are: lint, test, build, deploy
//! ```
//!
//! Each file's error type keeps its own fields and hints and renders itself
//! through these functions.

use std::fmt::Write as _;
use std::path::Path;

/// Renders an error at `line`:`column` (both 1-based, the column in
/// characters) of `file`. `source_line` is the text of that line, shown with
/// a caret under the column (tabs before the column are kept so that the
/// caret lines up).
pub fn render_located(
    file: &Path,
    line: usize,
    column: usize,
    message: &str,
    hint: Option<&str>,
    source_line: Option<&str>,
) -> String {
    let width = line.to_string().len();
    let pad = " ".repeat(width);
    let mut out = format!(
        "error: {message}\n{pad}--> {}:{line}:{column}",
        file.display()
    );
    if let Some(text) = source_line {
        // Keep tabs in the caret's indentation so it lines up under the text.
        let indent: String = text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = write!(out, "\n{pad} |\n{line} | {text}\n{pad} | {indent}^");
    }
    if let Some(hint) = hint {
        let _ = write!(out, "\n{pad} = help: {hint}");
    }
    out
}

/// Renders a failure to read `file`: `error: cannot read <what> `file`:
/// <os error>`, then the hint if there is one. `what` names the kind of file
/// (`pipeline file`, `policy file`).
pub fn render_io(what: &str, file: &Path, error: &std::io::Error, hint: Option<&str>) -> String {
    let mut out = format!("error: cannot read {what} `{}`: {error}", file.display());
    if let Some(hint) = hint {
        let _ = write!(out, "\n  = help: {hint}");
    }
    out
}

/// True for a YAML file with nothing but blank lines, comments and document
/// markers (`---`, `...`).
pub fn is_blank_yaml(src: &str) -> bool {
    src.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_with_source_line_and_hint() {
        let text = render_located(
            Path::new("p.yaml"),
            9,
            3,
            "bad",
            Some("fix it"),
            Some("\tx: 1"),
        );
        assert_eq!(
            text,
            "error: bad\n --> p.yaml:9:3\n  |\n9 | \tx: 1\n  | \t ^\n  = help: fix it"
        );
    }

    #[test]
    fn located_without_source_line_or_hint() {
        let text = render_located(Path::new("p.yaml"), 120, 1, "bad", None, None);
        assert_eq!(text, "error: bad\n   --> p.yaml:120:1");
    }

    #[test]
    fn io_names_the_kind_of_file() {
        let error = std::io::Error::other("gone");
        assert_eq!(
            render_io("policy file", Path::new("a.yaml"), &error, Some("h")),
            "error: cannot read policy file `a.yaml`: gone\n  = help: h"
        );
        assert_eq!(
            render_io("pipeline file", Path::new("a.yaml"), &error, None),
            "error: cannot read pipeline file `a.yaml`: gone"
        );
    }

    #[test]
    fn blank_yaml() {
        assert!(is_blank_yaml(""));
        assert!(is_blank_yaml("# c\n---\n  \n...\n"));
        assert!(!is_blank_yaml("# c\nmode: enforce\n"));
    }
}
