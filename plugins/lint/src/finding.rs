//! [`Finding`]: one problem a tool found in one place, and its [`Level`].

use std::fmt;

/// The tool name of the stage's own checks, used as the SARIF driver name.
pub const SELF_TOOL: &str = "sluice-lint";

/// How serious a finding is; the names are SARIF's `result.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Informational (SARIF `note`, also used for SARIF `none`).
    Note,
    /// Should be fixed; counted in `lint.warnings`.
    Warning,
    /// Must be fixed; counted in `lint.errors`.
    Error,
}

impl Level {
    /// `note`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    /// Parses a SARIF level (`none` counts as `note`); `None` for anything else.
    pub fn from_sarif(s: &str) -> Option<Self> {
        match s {
            "none" | "note" => Some(Self::Note),
            "warning" => Some(Self::Warning),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding is: a file relative to the workspace (`/`-separated) and,
/// when known, a 1-based line and column.
///
/// A file outside the workspace (an external tool may report one) keeps its
/// absolute path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Path relative to the workspace root, e.g. `src/app.py`.
    pub path: String,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column (Unicode code points for the stage's own checks).
    pub column: Option<u32>,
}

impl Location {
    /// A location in `path` at `line`:`column`.
    pub fn at(path: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Self {
        Self {
            path: path.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// One problem found by one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The tool that reported it: [`SELF_TOOL`] or an external linter's name.
    pub tool: String,
    /// The rule id, e.g. `trailing-whitespace` or `clippy::needless_return`.
    pub rule: String,
    /// How serious it is.
    pub level: Level,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, when the tool said.
    pub location: Option<Location>,
}

impl fmt::Display for Finding {
    /// One line: `src/app.py:3:1 error merge-conflict-marker message`, with
    /// ` [tool]` appended for external tools. Line breaks in the message
    /// become spaces so that one finding is always one log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc} ")?,
            None => write!(f, "- ")?,
        }
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        write!(f, "{} {} {message}", self.level, self.rule)?;
        if self.tool != SELF_TOOL {
            write!(f, " [{}]", self.tool)?;
        }
        Ok(())
    }
}

/// Counts of findings by level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Findings at [`Level::Error`].
    pub errors: usize,
    /// Findings at [`Level::Warning`].
    pub warnings: usize,
    /// Findings at [`Level::Note`].
    pub notes: usize,
}

impl Counts {
    /// Counts `findings` by level.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut c = Self::default();
        for f in findings {
            match f.level {
                Level::Error => c.errors += 1,
                Level::Warning => c.warnings += 1,
                Level::Note => c.notes += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(tool: &str, loc: Option<Location>) -> Finding {
        Finding {
            tool: tool.into(),
            rule: "merge-conflict-marker".into(),
            level: Level::Error,
            message: "leftover conflict\nmarker".into(),
            location: loc,
        }
    }

    #[test]
    fn displays_as_one_line() {
        let f = finding(
            SELF_TOOL,
            Some(Location::at("src/app.py", Some(3), Some(1))),
        );
        assert_eq!(
            f.to_string(),
            "src/app.py:3:1 error merge-conflict-marker leftover conflict marker"
        );
        let f = finding("ruff", Some(Location::at("a.py", Some(2), None)));
        assert_eq!(
            f.to_string(),
            "a.py:2 error merge-conflict-marker leftover conflict marker [ruff]"
        );
        let f = finding("ruff", None);
        assert!(f.to_string().starts_with("- error "));
    }

    #[test]
    fn levels_parse_from_sarif_and_count() {
        assert_eq!(Level::from_sarif("none"), Some(Level::Note));
        assert_eq!(Level::from_sarif("error"), Some(Level::Error));
        assert_eq!(Level::from_sarif("fatal"), None);
        let mut w = finding(SELF_TOOL, None);
        w.level = Level::Warning;
        let c = Counts::of(&[finding(SELF_TOOL, None), w.clone(), w]);
        assert_eq!((c.errors, c.warnings, c.notes), (1, 2, 0));
    }
}
