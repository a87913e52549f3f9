//! The catalogue of the stage's own checks: names, default levels and
//! descriptions (shown in `describe`'s schema and in the SARIF rules).

use sluice_sdk::types::text::closest_within;

use crate::finding::Level;

/// One of the stage's own checks. `with.rules` switches each off or
/// changes its level by [`name`](Rule::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A `.yaml`/`.yml` file that does not parse.
    YamlSyntax,
    /// A `.json` file that does not parse.
    JsonSyntax,
    /// A `.toml` file that does not parse.
    TomlSyntax,
    /// A leftover `<<<<<<<`, `|||||||`, `=======` or `>>>>>>>` line.
    MergeConflictMarker,
    /// Spaces or tabs at the end of a line.
    TrailingWhitespace,
    /// A non-empty file whose last byte is not `\n`.
    FinalNewline,
    /// A YAML line indented with a tab.
    YamlTabIndent,
    /// A file larger than `max-file-size` (its content is not checked).
    LargeFile,
    /// A line ending that `line-endings` does not allow.
    LineEndings,
}

impl Rule {
    /// Every rule, in the order they are documented.
    pub const ALL: [Rule; 9] = [
        Rule::YamlSyntax,
        Rule::JsonSyntax,
        Rule::TomlSyntax,
        Rule::MergeConflictMarker,
        Rule::TrailingWhitespace,
        Rule::FinalNewline,
        Rule::YamlTabIndent,
        Rule::LargeFile,
        Rule::LineEndings,
    ];

    /// The rule id used in `with.rules`, findings and SARIF.
    pub fn name(self) -> &'static str {
        match self {
            Rule::YamlSyntax => "yaml-syntax",
            Rule::JsonSyntax => "json-syntax",
            Rule::TomlSyntax => "toml-syntax",
            Rule::MergeConflictMarker => "merge-conflict-marker",
            Rule::TrailingWhitespace => "trailing-whitespace",
            Rule::FinalNewline => "final-newline",
            Rule::YamlTabIndent => "yaml-tab-indent",
            Rule::LargeFile => "large-file",
            Rule::LineEndings => "line-endings",
        }
    }

    /// The level a finding of this rule has unless `with.rules` says otherwise.
    pub fn default_level(self) -> Level {
        match self {
            Rule::YamlSyntax
            | Rule::JsonSyntax
            | Rule::TomlSyntax
            | Rule::MergeConflictMarker
            | Rule::YamlTabIndent => Level::Error,
            Rule::TrailingWhitespace | Rule::FinalNewline | Rule::LargeFile | Rule::LineEndings => {
                Level::Warning
            }
        }
    }

    /// One sentence on what the rule finds.
    pub fn description(self) -> &'static str {
        match self {
            Rule::YamlSyntax => "YAML file does not parse (every document of a multi-document file is checked)",
            Rule::JsonSyntax => "JSON file does not parse (JSONC files may have comments and trailing commas)",
            Rule::TomlSyntax => "TOML file does not parse",
            Rule::MergeConflictMarker => "leftover merge-conflict marker line",
            Rule::TrailingWhitespace => "spaces or tabs at the end of a line (a Markdown hard break of exactly two spaces is allowed)",
            Rule::FinalNewline => "file does not end with a newline",
            Rule::YamlTabIndent => "YAML line indented with a tab; YAML allows only spaces",
            Rule::LargeFile => "file is larger than max-file-size; its content was not checked",
            Rule::LineEndings => "line ending other than the one line-endings asks for",
        }
    }

    /// The rule named `name`, if any.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The rule name closest to `name`, for "did you mean" hints.
    pub fn closest(name: &str) -> Option<Rule> {
        let names = Rule::ALL.map(Rule::name);
        closest_within(name, names, 3).and_then(Rule::from_name)
    }

    /// Every rule name, comma-separated.
    pub fn names() -> String {
        Rule::ALL
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
        }
        assert_eq!(Rule::from_name("nope"), None);
    }

    #[test]
    fn closest_suggests_typos_only() {
        assert_eq!(
            Rule::closest("trailing-whitespac"),
            Some(Rule::TrailingWhitespace)
        );
        assert_eq!(Rule::closest("final_newline"), Some(Rule::FinalNewline));
        assert_eq!(Rule::closest("completely-different"), None);
    }
}
