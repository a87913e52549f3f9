//! Agent labels and the label sets of `runs-on:`.
//!
//! # Grammar
//!
//! ```text
//! label     = key "=" value
//! key       = [a-z0-9] [a-z0-9_-]*     at most 63 characters
//! value     = [a-z0-9] [a-z0-9_-]*     at most 63 characters
//! label-set = label ("," label)*       at most 8 labels, or "any" for none
//! ```
//!
//! Labels travel to agents and into NATS subjects, so neither side may
//! contain `.`, `*`, `>` or a space (subject token separators and
//! wildcards). A [`LabelSet`] is kept sorted and without repeats; its
//! [`token`](LabelSet::token) (also its `Display`) joins the labels with
//! `,` (`net=egress,os=linux`) and is `any` for the empty set. A set holds
//! one value per key: `os=linux,os=mac` can never be satisfied by an agent
//! and is refused.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// The most labels a set may hold (keeps subject tokens short and agents'
/// subscriptions few).
pub const MAX_LABELS: usize = 8;

/// The longest key or value.
pub const MAX_LABEL_PART: usize = 63;

/// The token of the empty set.
pub const ANY: &str = "any";

/// What is wrong with a label or a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelProblem {
    /// No characters.
    #[error("it is empty")]
    Empty,
    /// No `=` between key and value.
    #[error("it has no `=` between key and value")]
    NoEquals,
    /// The key is empty or breaks the grammar.
    #[error("its key `{key}` {why}")]
    BadKey {
        /// The key as written.
        key: String,
        /// What is wrong with it.
        why: LabelPartProblem,
    },
    /// The value is empty or breaks the grammar.
    #[error("its value `{value}` {why}")]
    BadValue {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        why: LabelPartProblem,
    },
    /// More than [`MAX_LABELS`] labels.
    #[error("it has {count} labels, more than {MAX_LABELS}")]
    TooMany {
        /// How many.
        count: usize,
    },
    /// Two labels with the same key and different values.
    #[error("it gives key `{key}` two values ({values}); a label set holds one value per key")]
    ConflictingKey {
        /// The key.
        key: String,
        /// The values, `a, b`.
        values: String,
    },
}

/// What is wrong with a key or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelPartProblem {
    /// No characters.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_LABEL_PART`].
    #[error("has {length} characters, more than {MAX_LABEL_PART}")]
    TooLong {
        /// Its length.
        length: usize,
    },
    /// The first character is not a lowercase letter or a digit.
    #[error("starts with `{found}`")]
    BadStart {
        /// The character.
        found: char,
    },
    /// A character outside `[a-z0-9_-]`.
    #[error("contains `{found}`")]
    BadCharacter {
        /// The character.
        found: char,
    },
}

/// Which grammar a [`LabelError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// A [`Label`].
    Label,
    /// A [`LabelSet`].
    Set,
}

impl fmt::Display for LabelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelKind::Label => "label",
            LabelKind::Set => "label set",
        })
    }
}

/// A value that is not a valid [`Label`] or [`LabelSet`].
///
/// Its `Display` is the message (naming the value); [`hint`](Self::hint)
/// says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {problem}")]
pub struct LabelError {
    /// The text as written.
    pub value: String,
    /// A label or a label set.
    pub what: LabelKind,
    /// What is wrong.
    pub problem: LabelProblem,
    /// How to write it instead.
    pub hint: String,
}

impl Hinted for LabelError {
    fn hint_text(&self) -> &str {
        &self.hint
    }
}

const LABEL_HINT: &str = "write a label as `key=value`, for example `os=linux`; keys and values \
     use lowercase letters, digits, `-` and `_`, start with a letter or digit, and are at most \
     63 characters";
const SET_HINT: &str = "write labels as `key=value` separated by `,` (at most 8, one value per \
     key), for example `net=egress,os=linux`, or `any` for none";

fn check_part(part: &str) -> Result<(), LabelPartProblem> {
    let lower_or_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = part.chars();
    let Some(first) = chars.next() else {
        return Err(LabelPartProblem::Empty);
    };
    if !lower_or_digit(first) {
        return Err(LabelPartProblem::BadStart { found: first });
    }
    if let Some(found) = chars.find(|&c| !(lower_or_digit(c) || c == '-' || c == '_')) {
        return Err(LabelPartProblem::BadCharacter { found });
    }
    let length = part.chars().count();
    if length > MAX_LABEL_PART {
        return Err(LabelPartProblem::TooLong { length });
    }
    Ok(())
}

/// One agent label, `key=value`.
///
/// ```
/// use sluice_types::Label;
///
/// let l: Label = "os=linux".parse().unwrap();
/// assert_eq!((l.key(), l.value()), ("os", "linux"));
/// assert!("os.linux".parse::<Label>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    key: String,
    value: String,
}

impl Label {
    /// Checks `key` and `value` against the grammar.
    pub fn new(key: &str, value: &str) -> Result<Label, LabelError> {
        let error = |problem| LabelError {
            value: format!("{key}={value}"),
            what: LabelKind::Label,
            problem,
            hint: LABEL_HINT.to_owned(),
        };
        check_part(key).map_err(|why| {
            error(LabelProblem::BadKey {
                key: key.to_owned(),
                why,
            })
        })?;
        check_part(value).map_err(|why| {
            error(LabelProblem::BadValue {
                value: value.to_owned(),
                why,
            })
        })?;
        Ok(Label {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The part before `=`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The part after `=`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for Label {
    type Err = LabelError;

    fn from_str(text: &str) -> Result<Label, LabelError> {
        let error = |problem| LabelError {
            value: text.to_owned(),
            what: LabelKind::Label,
            problem,
            hint: LABEL_HINT.to_owned(),
        };
        if text.is_empty() {
            return Err(error(LabelProblem::Empty));
        }
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| error(LabelProblem::NoEquals))?;
        Label::new(key, value).map_err(|e| error(e.problem))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

string_serde!(Label, "a label such as \"os=linux\"", numbers: false);

/// A set of labels: what a stage requires (`runs-on:`) or what an agent
/// offers. Sorted, without repeats, at most one value per key, at most
/// [`MAX_LABELS`] labels.
///
/// ```
/// use sluice_types::LabelSet;
///
/// let needs: LabelSet = "os=linux,net=egress".parse().unwrap();
/// assert_eq!(needs.token(), "net=egress,os=linux");
/// let agent: LabelSet = "os=linux,net=egress,gpu=a100".parse().unwrap();
/// assert!(needs.is_subset_of(&agent));
/// assert_eq!(LabelSet::default().token(), "any");
/// assert!(LabelSet::default().is_subset_of(&needs));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet(BTreeSet<Label>);

impl LabelSet {
    /// The empty set (`any`): every agent satisfies it.
    pub fn any() -> LabelSet {
        LabelSet::default()
    }

    /// A set of `labels`; fails on more than [`MAX_LABELS`] distinct labels
    /// or two values for one key.
    pub fn new(labels: impl IntoIterator<Item = Label>) -> Result<LabelSet, LabelError> {
        let set: BTreeSet<Label> = labels.into_iter().collect();
        let text = || {
            set.iter()
                .map(Label::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let error = |problem| LabelError {
            value: text(),
            what: LabelKind::Set,
            problem,
            hint: SET_HINT.to_owned(),
        };
        if set.len() > MAX_LABELS {
            return Err(error(LabelProblem::TooMany { count: set.len() }));
        }
        let mut previous: Option<&Label> = None;
        for label in &set {
            if let Some(p) = previous.filter(|p| p.key == label.key) {
                return Err(error(LabelProblem::ConflictingKey {
                    key: label.key.clone(),
                    values: format!("{}, {}", p.value, label.value),
                }));
            }
            previous = Some(label);
        }
        Ok(LabelSet(set))
    }

    /// The labels, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is `any`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`, if the set has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }

    /// The subject token: the labels joined by `,`, or `any`.
    pub fn token(&self) -> String {
        self.to_string()
    }

    /// Whether every label of `self` is in `other` (an agent labelled
    /// `other` can run a stage that requires `self`).
    pub fn is_subset_of(&self, other: &LabelSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromStr for LabelSet {
    type Err = LabelError;

    fn from_str(text: &str) -> Result<LabelSet, LabelError> {
        if text == ANY {
            return Ok(LabelSet::default());
        }
        let error = |problem| LabelError {
            value: text.to_owned(),
            what: LabelKind::Set,
            problem,
            hint: SET_HINT.to_owned(),
        };
        if text.is_empty() {
            return Err(error(LabelProblem::Empty));
        }
        let labels = text
            .split(',')
            .map(|part| part.parse::<Label>().map_err(|e| error(e.problem)))
            .collect::<Result<Vec<_>, _>>()?;
        LabelSet::new(labels).map_err(|e| error(e.problem))
    }
}

impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(ANY);
        }
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{label}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a LabelSet {
    type Item = &'a Label;
    type IntoIter = std::collections::btree_set::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

string_serde!(LabelSet, "a label set such as \"net=egress,os=linux\" or \"any\"", numbers: false);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn set(text: &str) -> LabelSet {
        match text.parse() {
            Ok(s) => s,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn error(text: &str) -> LabelError {
        match text.parse::<LabelSet>() {
            Ok(s) => panic!("{text} parsed as {s}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_set_is_sorted_and_its_token_joins_with_commas() {
        let s = set("os=linux,net=egress,os=linux");
        assert_eq!(s.token(), "net=egress,os=linux");
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("os"), Some("linux"));
        assert_eq!(set("any"), LabelSet::any());
        assert_eq!(LabelSet::any().to_string(), "any");
    }

    #[test]
    fn subject_characters_are_refused_with_a_hint() {
        for (text, problem) in [
            ("os=linux.x", "its value `linux.x` contains `.`"),
            ("os=*", "its value `*` starts with `*`"),
            ("o s=linux", "its key `o s` contains ` `"),
            ("os=>", "its value `>` starts with `>`"),
            ("OS=linux", "its key `OS` starts with `O`"),
            ("oslinux", "it has no `=` between key and value"),
            ("os=", "its value `` is empty"),
            ("=linux", "its key `` is empty"),
            ("os=linux,", "it is empty"),
            ("", "it is empty"),
        ] {
            let e = error(text);
            assert_eq!(e.value, text);
            assert_eq!(e.problem.to_string(), problem, "{text}");
            assert!(e.hint.contains("key=value"), "{e:?}");
            assert!(e
                .to_string()
                .starts_with(&format!("`{text}` is not a valid label set")));
        }
    }

    #[test]
    fn limits_and_conflicting_keys() {
        let nine = (0..9).map(|i| format!("k{i}=v")).collect::<Vec<_>>();
        assert_eq!(
            error(&nine.join(",")).problem,
            LabelProblem::TooMany { count: 9 }
        );
        assert_eq!(set(&nine[..8].join(",")).len(), 8);
        assert!(matches!(
            error("os=linux,os=mac").problem,
            LabelProblem::ConflictingKey { .. }
        ));
        let long = format!("k={}", "a".repeat(64));
        assert!(matches!(
            long.parse::<Label>().err().map(|e| e.problem),
            Some(LabelProblem::BadValue {
                why: LabelPartProblem::TooLong { length: 64 },
                ..
            })
        ));
    }

    #[test]
    fn subsets() {
        let (a, b) = (set("os=linux"), set("net=egress,os=linux"));
        assert!(a.is_subset_of(&b));
        assert!(!b.is_subset_of(&a));
        assert!(LabelSet::any().is_subset_of(&a));
        assert!(!set("os=mac").is_subset_of(&b));
    }

    #[test]
    fn serde_goes_through_the_string_form() -> TestResult {
        let s = set("os=linux,net=egress");
        let json = serde_json::to_string(&s)?;
        assert_eq!(json, "\"net=egress,os=linux\"");
        assert_eq!(serde_json::from_str::<LabelSet>(&json)?, s);
        let e = serde_json::from_str::<LabelSet>("\"os=a.b\"").err();
        assert!(e.is_some_and(|e| e.to_string().contains("key=value")));
        Ok(())
    }

    proptest! {
        #[test]
        fn display_parses_back(
            labels in proptest::collection::btree_map(
                "[a-z0-9][a-z0-9_-]{0,10}", "[a-z0-9][a-z0-9_-]{0,10}", 0..8)
        ) {
            let labels = labels.iter().map(|(k, v)| Label::new(k, v)).collect::<Result<Vec<_>, _>>();
            let set = labels.and_then(LabelSet::new);
            prop_assert!(set.is_ok());
            if let Ok(set) = set {
                prop_assert_eq!(set.to_string().parse::<LabelSet>().ok(), Some(set));
            }
        }
    }
}
