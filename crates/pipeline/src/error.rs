//! Errors in a pipeline file, rendered like rustc diagnostics.

use std::fmt;
use std::path::{Path, PathBuf};

use sluice_files::diagnostic;
use sluice_files::fsutil::{FileKind, InputError};
use sluice_files::locate::{Location, SourceMap, YamlPath};
use sluice_files::yaml_limits::excerpt;

/// Why a pipeline file could not be loaded.
///
/// `Display` renders the full diagnostic (message, `--> file:line:col`, the
/// source line with a caret, and a `help:` line), ready to print.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file was read but is not a valid pipeline.
    #[error("{}", diagnostic::render_located(file, *line, *column, message, hint.as_deref(), source_line.as_deref()))]
    Invalid {
        /// The pipeline file, as given.
        file: PathBuf,
        /// Line of the problem, 1-based.
        line: usize,
        /// Column of the problem (in characters), 1-based.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The text of line `line`, for showing it under the message.
        source_line: Option<String>,
    },
    /// The file could not be read.
    // The OS error is part of the message rather than a `#[source]`, so that
    // printing the error chain does not repeat it.
    #[error("{}", diagnostic::render_io("pipeline file", file, error, hint.as_deref()))]
    Io {
        /// The file that could not be read.
        file: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
        /// How to fix it, when we can tell.
        hint: Option<String>,
    },
    /// The path is not a regular file, or the file is over the size cap.
    #[error("error: {problem}\n  = help: {hint}")]
    Input {
        /// What is wrong with the file, naming it.
        problem: InputError,
        /// How to fix it.
        hint: String,
    },
}

impl PipelineError {
    /// The pipeline file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            PipelineError::Invalid { file, .. } | PipelineError::Io { file, .. } => file,
            PipelineError::Input { problem, .. } => problem.path(),
        }
    }

    /// Where in the file the problem is (`None` if the file was not read).
    pub fn location(&self) -> Option<Location> {
        match self {
            PipelineError::Invalid { line, column, .. } => Some(Location {
                line: *line,
                column: *column,
            }),
            PipelineError::Io { .. } | PipelineError::Input { .. } => None,
        }
    }

    /// The one-line description, without location or hint.
    pub fn message(&self) -> String {
        match self {
            PipelineError::Invalid { message, .. } => message.clone(),
            PipelineError::Io { file, error, .. } => {
                format!("cannot read pipeline file `{}`: {error}", file.display())
            }
            PipelineError::Input { problem, .. } => problem.to_string(),
        }
    }

    /// How to fix the problem, if known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            PipelineError::Invalid { hint, .. } | PipelineError::Io { hint, .. } => hint.as_deref(),
            PipelineError::Input { hint, .. } => Some(hint),
        }
    }

    /// The pipeline file could not be read: an OS error (with the hints of
    /// [`PipelineError::io`]), or not a regular file, or too large.
    pub(crate) fn input(problem: InputError) -> Self {
        match problem {
            InputError::Io { path, error, .. } => Self::io(&path, error),
            InputError::NotRegular {
                kind: FileKind::Directory,
                ref path,
                ..
            } => PipelineError::Input {
                hint: format!(
                    "give the path of the pipeline file itself, e.g. `{}`",
                    path.join("sluice.yaml").display()
                ),
                problem,
            },
            other => PipelineError::Input {
                hint: other.hint(),
                problem: other,
            },
        }
    }

    /// An I/O error on `file`, with a hint for the common cases.
    pub(crate) fn io(file: &Path, error: std::io::Error) -> Self {
        let hint = match error.kind() {
            std::io::ErrorKind::NotFound => Some(
                "check the path (relative paths start from the current directory), \
                 or create the pipeline file"
                    .to_owned(),
            ),
            std::io::ErrorKind::IsADirectory => Some(format!(
                "give the path of the pipeline file itself, e.g. `{}`",
                file.join("sluice.yaml").display()
            )),
            std::io::ErrorKind::PermissionDenied => {
                Some("make the file readable by the user running sluice".to_owned())
            }
            _ => None,
        };
        PipelineError::Io {
            file: file.to_path_buf(),
            error,
            hint,
        }
    }
}

/// Builds located errors for one pipeline file.
pub(crate) struct Reporter<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub map: &'a SourceMap,
}

impl Reporter<'_> {
    /// An error at `location`.
    pub fn at(
        &self,
        location: Location,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PipelineError {
        PipelineError::Invalid {
            file: self.file.to_path_buf(),
            line: location.line,
            column: location.column,
            message: message.to_string(),
            hint: Some(hint.into()),
            source_line: self
                .src
                .lines()
                .nth(location.line.saturating_sub(1))
                .and_then(|line| excerpt(line, location.column)),
        }
    }

    /// Like [`Reporter::at`], but a location past the last line (parsers
    /// report the end of input there) moves to the end of the last line, so
    /// that the source line can still be shown.
    fn at_clamped(
        &self,
        location: Location,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PipelineError {
        let lines = self.src.lines().count();
        let location = match self.src.lines().last() {
            Some(last) if location.line > lines => Location {
                line: lines,
                column: last.chars().count() + 1,
            },
            _ => location,
        };
        self.at(location, message, hint)
    }

    /// An error pointing at the value at `path`.
    pub fn value(
        &self,
        path: &YamlPath,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PipelineError {
        self.at(self.map.value(path), message, hint)
    }

    /// An error pointing at the key that names `path` (e.g. a stage's name).
    pub fn key(
        &self,
        path: &YamlPath,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PipelineError {
        self.at(self.map.key(path), message, hint)
    }

    /// An error pointing at `needle` inside the string value at `path`, or
    /// at the start of the value when the text cannot be found verbatim
    /// (escapes in quoted strings, for instance).
    pub fn within(
        &self,
        path: &YamlPath,
        needle: &str,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PipelineError {
        let start = self.map.value(path);
        let location = self.find_after(start, needle).unwrap_or(start);
        self.at(location, message, hint)
    }

    /// A deserialization error from serde, at the location serde reports,
    /// with a hint chosen from the kind of error.
    pub fn serde(&self, error: &serde_yaml_ng::Error) -> PipelineError {
        let location = error.location().map_or(Location::START, |l| Location {
            line: l.line(),
            column: l.column(),
        });
        // The location is shown in the `-->` line; drop serde's own copy.
        let suffix = format!(" at line {} column {}", location.line, location.column);
        let message = readable(&error.to_string().replacen(&suffix, "", 1));
        if diagnostic::is_blank_yaml(self.src) {
            return self.at(
                Location::START,
                "the pipeline file is empty",
                "start with `version: 1`, `name: <pipeline name>` and a `stages:` mapping"
                    .to_owned(),
            );
        }
        let at_tab = self
            .src
            .lines()
            .nth(location.line.saturating_sub(1))
            .and_then(|line| line.chars().nth(location.column.saturating_sub(1)))
            == Some('\t');
        let hint = if at_tab {
            "YAML does not allow tabs for indentation; indent with spaces".to_owned()
        } else {
            serde_hint(&message)
        };
        self.at_clamped(location, message, hint)
    }

    /// First occurrence of `needle` at or after `start`, looking a few lines
    /// ahead for block scalars (`|`) whose text begins on the next line.
    fn find_after(&self, start: Location, needle: &str) -> Option<Location> {
        const LOOKAHEAD: usize = 50;
        if needle.is_empty() || needle.contains('\n') {
            return None;
        }
        for (offset, text) in self
            .src
            .lines()
            .skip(start.line.saturating_sub(1))
            .take(LOOKAHEAD)
            .enumerate()
        {
            let skip = if offset == 0 {
                start.column.saturating_sub(1)
            } else {
                0
            };
            let byte_start = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
            if let Some(found) = text[byte_start..].find(needle) {
                let column = text[..byte_start + found].chars().count() + 1;
                return Some(Location {
                    line: start.line + offset,
                    column,
                });
            }
        }
        None
    }
}

/// Replaces our Rust type names in serde messages with what they mean in
/// the file, and shortens long quoted values (a whole mis-indented file can
/// end up as one string).
fn readable(message: &str) -> String {
    const NAMES: [(&str, &str); 5] = [
        (
            "struct WirePipeline",
            "a mapping with `version`, `name` and `stages`",
        ),
        ("struct WireStage", "a stage mapping with `uses`"),
        ("struct WireGrants", "a mapping of grants"),
        ("struct WireDefaults", "a mapping of defaults"),
        ("struct WireGate", "a gate mapping with `metric`"),
    ];
    let mut message = message.to_owned();
    for (name, meaning) in NAMES {
        message = message.replace(name, meaning);
    }
    if let (Some(start), Some(end)) = (message.find("string \""), message.rfind("\", expected")) {
        let start = start + "string \"".len();
        if end > start && message[start..end].chars().count() > 60 {
            let short: String = message[start..end].chars().take(40).collect();
            message.replace_range(start..end, &format!("{short}…"));
        }
    }
    message
}

/// Chooses a hint for a serde error from its message, which is the only
/// structured information serde gives us.
fn serde_hint(message: &str) -> String {
    let backticked =
        |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    if let Some((_, rest)) = message.split_once("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let allowed = rest
            .split_once("expected")
            .map(|(_, a)| backticked(a))
            .unwrap_or_default();
        if field == "<<" {
            return "YAML merge keys (`<<`) are not supported in the pipeline file; write the keys out"
                .to_owned();
        }
        if field == "timeout" && message.contains("grants") {
            return "`timeout` is set on the stage itself, not under `grants`".to_owned();
        }
        return match sluice_types::text::closest(field, allowed.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "remove `{field}` or fix its spelling; the keys allowed here are listed above"
            ),
        };
    }
    if let Some((_, rest)) = message.split_once("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return match field {
            "version" => "add `version: 1` at the top of the file".to_owned(),
            "name" => {
                "add `name: <pipeline name>` (lowercase letters, digits, `.`, `_`, `-`)".to_owned()
            }
            "stages" => "add a `stages:` mapping with at least one stage".to_owned(),
            "uses" => {
                "add `uses:` with the path of the stage's `.wasm` component (relative to this \
                       file) or an `oci://` reference"
                    .to_owned()
            }
            "metric" => "name the metric the gate checks, e.g. `metric: tests.failed`".to_owned(),
            other => format!("add `{other}`"),
        };
    }
    if message.contains("unknown variant") {
        return "use one of the values listed above".to_owned();
    }
    if message.contains("duplicate field") {
        return "a key may appear only once in a mapping; remove one of them".to_owned();
    }
    if message.contains("invalid type") || message.contains("invalid value") {
        return "change the value to what the message expects".to_owned();
    }
    if message.contains("EOF while parsing") {
        return "the file is empty: start with `version: 1`, `name:` and `stages:`".to_owned();
    }
    "fix the YAML here (check indentation, quotes and brackets)".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let err = PipelineError::Invalid {
            file: PathBuf::from("examples/demo/sluice.yaml"),
            line: 14,
            column: 13,
            message: "stage `deploy` needs `biuld`, which is not a stage in this pipeline".into(),
            hint: Some("did you mean `build`? Stages are: lint, test, build, deploy".into()),
            source_line: Some("    needs: [biuld]".into()),
        };
        let expected = "\
error: stage `deploy` needs `biuld`, which is not a stage in this pipeline
  --> examples/demo/sluice.yaml:14:13
   |
14 |     needs: [biuld]
   |             ^
   = help: did you mean `build`? Stages are: lint, test, build, deploy";
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn renders_io_errors_with_the_file_and_os_error() {
        let error = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = PipelineError::io(Path::new("nope/sluice.yaml"), error);
        let text = err.to_string();
        assert!(
            text.starts_with("error: cannot read pipeline file `nope/sluice.yaml`: "),
            "{text}"
        );
        assert!(text.contains("= help: check the path"), "{text}");
        assert_eq!(err.location(), None);
    }

    #[test]
    fn serde_messages_speak_of_the_file() {
        let long = "x".repeat(100);
        let message = format!("invalid type: string \"{long}\", expected struct WirePipeline");
        let expected = format!(
            "invalid type: string \"{}…\", expected a mapping with `version`, `name` and `stages`",
            "x".repeat(40)
        );
        assert_eq!(readable(&message), expected);
    }

    #[test]
    fn finds_text_inside_values() {
        let src = "with:\n  a: \"x ${{ bad }}\"\n  b: |\n    line ${{ bad }}\n";
        let map = SourceMap::build(src);
        let reporter = Reporter {
            file: Path::new("p.yaml"),
            src,
            map: &map,
        };
        let with = YamlPath::root().key("with");
        let err = reporter.within(&with.key("a"), "${{ bad }}", "m", "h");
        assert_eq!(err.location(), Some(Location { line: 2, column: 9 }));
        let err = reporter.within(&with.key("b"), "${{ bad }}", "m", "h");
        assert_eq!(
            err.location(),
            Some(Location {
                line: 4,
                column: 10
            })
        );
    }
}
