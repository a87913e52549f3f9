//! Names of stages and pipelines.
//!
//! # Grammar
//!
//! ```text
//! stage-name    = [a-z0-9] [a-z0-9_-]*     at most 63 characters
//! pipeline-name = [a-z0-9] [a-z0-9._-]*
//! ```
//!
//! A stage name fits a DNS label, so it can name a host, a directory or a
//! metric label. Both are already canonical: `Display` writes them as they
//! were parsed.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// Which kind of name an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A [`StageName`].
    Stage,
    /// A [`PipelineName`].
    Pipeline,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Stage => "stage",
            NameKind::Pipeline => "pipeline",
        })
    }
}

/// What is wrong with a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// No characters.
    #[error("it is empty")]
    Empty,
    /// Longer than the limit (63 for a stage name).
    #[error("it has {length} characters, more than {limit}")]
    TooLong {
        /// Its length in characters.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// An uppercase ASCII letter.
    #[error("it contains the uppercase letter `{found}`")]
    Uppercase {
        /// The letter.
        found: char,
    },
    /// The first character is not a lowercase letter or a digit.
    #[error("it starts with `{found}`")]
    BadStart {
        /// The character.
        found: char,
    },
    /// A character that names may not contain.
    #[error("it contains `{found}`")]
    BadCharacter {
        /// The character.
        found: char,
    },
}

/// A value that is not a valid [`StageName`] or [`PipelineName`].
///
/// Its `Display` is the message (naming the value); [`hint`](Self::hint)
/// says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} name: {problem}")]
pub struct NameError {
    /// The name as written.
    pub value: String,
    /// Stage or pipeline.
    pub kind: NameKind,
    /// What is wrong.
    pub problem: NameProblem,
    /// How to write it instead.
    pub hint: String,
}

impl Hinted for NameError {
    fn hint_text(&self) -> &str {
        &self.hint
    }
}

const STAGE_HINT: &str = "stage names use lowercase letters, digits, `-` and `_`, start with a \
     letter or digit, and are at most 63 characters";
const PIPELINE_HINT: &str =
    "use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit";

/// `[a-z0-9][a-z0-9<extra>]*`, at most `limit` characters.
fn check(name: &str, extra: &[char], limit: Option<usize>) -> Result<(), NameProblem> {
    let lower_or_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameProblem::Empty);
    };
    let problem = |found: char, start: bool| {
        if found.is_ascii_uppercase() {
            NameProblem::Uppercase { found }
        } else if start {
            NameProblem::BadStart { found }
        } else {
            NameProblem::BadCharacter { found }
        }
    };
    if !lower_or_digit(first) {
        return Err(problem(first, true));
    }
    if let Some(found) = chars.find(|&c| !(lower_or_digit(c) || extra.contains(&c))) {
        return Err(problem(found, false));
    }
    let length = name.chars().count();
    match limit {
        Some(limit) if length > limit => Err(NameProblem::TooLong { length, limit }),
        _ => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr, $extra:expr, $limit:expr, $hint:expr, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Checks `name` against the grammar.
            pub fn new(name: impl Into<String>) -> Result<$ty, NameError> {
                let name = name.into();
                match check(&name, $extra, $limit) {
                    Ok(()) => Ok($ty(name)),
                    Err(problem) => Err(NameError {
                        value: name,
                        kind: $kind,
                        problem,
                        hint: $hint.to_owned(),
                    }),
                }
            }

            /// Whether `name` follows the grammar.
            pub fn is_valid(name: &str) -> bool {
                check(name, $extra, $limit).is_ok()
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name, as a `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;

            fn from_str(name: &str) -> Result<$ty, NameError> {
                $ty::new(name)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;

            fn try_from(name: String) -> Result<$ty, NameError> {
                $ty::new(name)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        string_serde!($ty, $expecting, numbers: false);
    };
}

name_type!(
    /// A stage name: `[a-z0-9][a-z0-9_-]*`, at most 63 characters.
    ///
    /// ```
    /// use sluice_types::StageName;
    ///
    /// assert_eq!(StageName::new("build-2_x").unwrap().as_str(), "build-2_x");
    /// let e = StageName::new("Deploy_Prod").unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "`Deploy_Prod` is not a valid stage name: it contains the uppercase letter `D`"
    /// );
    /// assert!(e.hint.contains("lowercase letters"));
    /// ```
    StageName,
    NameKind::Stage,
    &['_', '-'],
    Some(63),
    STAGE_HINT,
    "a stage name such as \"build\""
);

name_type!(
    /// A pipeline name: `[a-z0-9][a-z0-9._-]*`.
    ///
    /// ```
    /// use sluice_types::PipelineName;
    ///
    /// assert!(PipelineName::is_valid("shop-api.v2"));
    /// assert!(PipelineName::new("Demo App").is_err());
    /// ```
    PipelineName,
    NameKind::Pipeline,
    &['.', '_', '-'],
    None,
    PIPELINE_HINT,
    "a pipeline name such as \"shop-api\""
);

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_problem(name: &str) -> Option<NameProblem> {
        StageName::new(name).err().map(|e| e.problem)
    }

    #[test]
    fn stage_names() {
        assert!(StageName::is_valid("build-2_x"));
        assert!(StageName::is_valid("2fa"));
        assert!(StageName::is_valid(&"a".repeat(63)));
        assert_eq!(
            stage_problem("Build"),
            Some(NameProblem::Uppercase { found: 'B' })
        );
        assert_eq!(
            stage_problem("-x"),
            Some(NameProblem::BadStart { found: '-' })
        );
        assert_eq!(
            stage_problem("a.b"),
            Some(NameProblem::BadCharacter { found: '.' })
        );
        assert_eq!(
            stage_problem("aé"),
            Some(NameProblem::BadCharacter { found: 'é' })
        );
        assert_eq!(stage_problem(""), Some(NameProblem::Empty));
        assert_eq!(
            stage_problem(&"a".repeat(64)),
            Some(NameProblem::TooLong {
                length: 64,
                limit: 63
            })
        );
    }

    #[test]
    fn pipeline_names() {
        assert!(PipelineName::is_valid("shop-api.v2"));
        assert!(PipelineName::is_valid(&"a".repeat(200)));
        assert!(!PipelineName::is_valid(""));
        assert!(!PipelineName::is_valid(".x"));
        let e = PipelineName::new("Demo App").err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("`Demo App` is not a valid pipeline name: it contains the uppercase letter `D`")
        );
        assert!(e.is_some_and(|e| e.hint.contains("lowercase")));
    }

    #[test]
    fn serde_goes_through_the_text() {
        let from = |json: &str| serde_json::from_str::<StageName>(json).map_err(|e| e.to_string());
        assert_eq!(from("\"lint\"").map(String::from), Ok("lint".to_owned()));
        assert!(from("\"Lint\"").is_err_and(|e| e.contains("stage names use lowercase")));
        assert!(from("3").is_err_and(|e| e.contains("a stage name")));
        let name = StageName::new("lint").ok();
        assert_eq!(
            name.as_ref()
                .and_then(|n| serde_json::to_string(n).ok())
                .as_deref(),
            Some("\"lint\"")
        );
        assert!(name.is_some_and(|n| n == "lint"));
    }
}
