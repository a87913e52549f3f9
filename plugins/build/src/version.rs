//! The `version` output: a literal (`with.version`, templates allowed such
//! as `"1.4.${{ run.id }}"`), or read after the build commands ran from a
//! file (`with.version-file`), either the whole file (trimmed, one line) or
//! the first capture group of a regular expression (multi-line mode: `^`
//! and `$` match at line starts and ends; the whole match when the
//! expression has no group).

use std::path::Path;

use regex_lite::Regex;
use sluice_sdk::StageError;

use crate::files::check_pattern;
use crate::values::VersionFile;

/// Longest version accepted (outputs are small values).
const MAX_LEN: usize = 128;

/// Where the version comes from, validated.
#[derive(Debug, Clone)]
pub enum VersionSource {
    /// No version configured: no `version` output.
    None,
    /// `with.version`.
    Literal(String),
    /// `with.version-file`.
    File {
        /// Path relative to the workspace.
        path: String,
        /// Compiled expression, if any.
        regex: Option<Regex>,
    },
}

impl VersionSource {
    /// Validates `with.version` / `with.version-file` (at most one).
    pub fn new(literal: Option<String>, file: Option<VersionFile>) -> Result<Self, StageError> {
        match (literal, file) {
            (Some(_), Some(_)) => Err(StageError::invalid_config(
                "with.version-file: conflicts with with.version; keep one of the two",
            )),
            (Some(v), None) => {
                check(&v).map_err(|e| StageError::invalid_config(format!("with.version: {e}")))?;
                Ok(Self::Literal(v.trim().to_string()))
            }
            (None, Some(f)) => {
                check_pattern("with.version-file.path", &f.path)?;
                let regex = f
                    .regex
                    .map(|r| {
                        Regex::new(&format!("(?m){r}")).map_err(|e| {
                            StageError::invalid_config(format!(
                                "with.version-file.regex: `{r}` is not a valid regular expression: {e}"
                            ))
                        })
                    })
                    .transpose()?;
                Ok(Self::File {
                    path: f.path,
                    regex,
                })
            }
            (None, None) => Ok(Self::None),
        }
    }

    /// The version, reading the file under `root` when configured so.
    pub fn resolve(&self, root: &Path) -> Result<Option<String>, StageError> {
        let (path, regex) = match self {
            Self::None => return Ok(None),
            Self::Literal(v) => return Ok(Some(v.clone())),
            Self::File { path, regex } => (path, regex),
        };
        let text = std::fs::read_to_string(root.join(path)).map_err(|e| {
            StageError::failed(format!(
                "with.version-file: cannot read `{path}` from the workspace: {e}"
            ))
        })?;
        let version = match regex {
            None => text.trim().to_string(),
            Some(re) => {
                let caps = re.captures(&text).ok_or_else(|| {
                    StageError::failed(format!(
                        "with.version-file: `{}` does not match anything in `{path}`",
                        re.as_str().trim_start_matches("(?m)")
                    ))
                })?;
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().trim().to_string())
                    .unwrap_or_default()
            }
        };
        check(&version)
            .map_err(|e| StageError::failed(format!("with.version-file: `{path}`: {e}")))?;
        Ok(Some(version))
    }
}

/// A version is one short token: no whitespace or control characters.
fn check(v: &str) -> Result<(), String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("the version is empty".into());
    }
    if v.len() > MAX_LEN {
        return Err(format!("the version is longer than {MAX_LEN} characters"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let shown: String = v.chars().take(60).collect();
        return Err(format!(
            "`{shown}` is not a version: it contains spaces or line breaks (use a regex to pick the version out)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, regex: Option<&str>) -> Option<VersionFile> {
        Some(VersionFile {
            path: path.into(),
            regex: regex.map(str::to_string),
        })
    }

    #[test]
    fn literal_and_none() -> Result<(), StageError> {
        let root = Path::new("/nonexistent");
        assert_eq!(VersionSource::new(None, None)?.resolve(root)?, None);
        let v = VersionSource::new(Some(" 1.2.3 ".into()), None)?;
        assert_eq!(v.resolve(root)?.as_deref(), Some("1.2.3"));
        assert!(VersionSource::new(Some("1 2".into()), None)
            .is_err_and(|e| e.message().starts_with("with.version: ")));
        assert!(VersionSource::new(Some("1".into()), file("V", None))
            .is_err_and(|e| e.message().contains("conflicts")));
        Ok(())
    }

    #[test]
    fn from_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::write(root.join("VERSION"), "2.0.1\n")?;
        std::fs::write(
            root.join("pyproject.toml"),
            "[project]\nname = \"quickstart\"\nversion = \"0.3.0\"\n\n[tool.x]\nversion = \"9\"\n",
        )?;
        let v = VersionSource::new(None, file("VERSION", None))?;
        assert_eq!(v.resolve(root)?.as_deref(), Some("2.0.1"));
        let v = VersionSource::new(
            None,
            file("pyproject.toml", Some(r#"^version\s*=\s*"([^"]+)""#)),
        )?;
        assert_eq!(v.resolve(root)?.as_deref(), Some("0.3.0"));
        let v = VersionSource::new(None, file("pyproject.toml", Some(r"\d+\.\d+\.\d+")))?;
        assert_eq!(v.resolve(root)?.as_deref(), Some("0.3.0"));
        let v = VersionSource::new(None, file("pyproject.toml", None))?;
        assert!(v
            .resolve(root)
            .is_err_and(|e| e.message().contains("line breaks")));
        let v = VersionSource::new(None, file("pyproject.toml", Some("^release = (.*)")))?;
        assert!(v
            .resolve(root)
            .is_err_and(|e| e.message().contains("does not match")));
        let v = VersionSource::new(None, file("missing", None))?;
        assert!(v
            .resolve(root)
            .is_err_and(|e| e.message().contains("cannot read `missing`")));
        assert!(VersionSource::new(None, file("p", Some("(")))
            .is_err_and(|e| e.message().starts_with("with.version-file.regex: ")));
        assert!(VersionSource::new(None, file("../p", None))
            .is_err_and(|e| e.message().starts_with("with.version-file.path: ")));
        Ok(())
    }
}
