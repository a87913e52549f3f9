//! Which test runner a command runs, told from its program and first
//! arguments, for the advice the stage gives when no JUnit report appears
//! and to pick the console output it can read (`cargo test`, nextest).

/// A test runner the stage knows how to advise on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `pytest`, `py.test`, `python -m pytest`.
    Pytest,
    /// `cargo test`.
    CargoTest,
    /// `cargo nextest run`, `cargo-nextest nextest run`.
    Nextest,
    /// `jest`, `npx jest`, `npm test`, `yarn test`...
    Jest,
    /// `go test`.
    GoTest,
    /// `gotestsum`.
    Gotestsum,
    /// Anything else.
    Other,
}

impl Runner {
    /// Tells the runner from `program args...`.
    pub fn detect(program: &str, args: &[String]) -> Self {
        let words: Vec<&str> = args
            .iter()
            .map(String::as_str)
            // `cargo +nightly test`, `python3 -X dev -m pytest`: options
            // before the subcommand do not name it.
            .filter(|a| !a.starts_with('+'))
            .collect();
        let first = words.iter().find(|a| !a.starts_with('-')).copied();
        let base = program.rsplit('/').next().unwrap_or(program);
        match base {
            "pytest" | "py.test" => Self::Pytest,
            p if p.starts_with("python") && windows(&words, &["-m", "pytest"]) => Self::Pytest,
            "cargo" => match first {
                Some("test" | "t") => Self::CargoTest,
                Some("nextest") => Self::Nextest,
                _ => Self::Other,
            },
            "cargo-nextest" => Self::Nextest,
            "jest" => Self::Jest,
            "npx" | "pnpm" | "yarn" | "npm" | "bun" if words.contains(&"jest") => Self::Jest,
            "npm" | "yarn" | "pnpm" if first == Some("test") => Self::Jest,
            "go" if first == Some("test") => Self::GoTest,
            "gotestsum" => Self::Gotestsum,
            _ => Self::Other,
        }
    }

    /// How to make this runner write a JUnit report (or read its output).
    pub fn junit_hint(self) -> &'static str {
        match self {
            Self::Pytest => "pytest writes one with `--junitxml=PATH`",
            Self::CargoTest => {
                "`cargo test` writes no JUnit on stable Rust: set `format: cargo` (or leave \
                 `junit` out) and the stage reads its console output, or run `cargo nextest run` \
                 with a `[profile.default.junit]` path"
            }
            Self::Nextest => {
                "nextest writes one when `.config/nextest.toml` has `[profile.default.junit]` \
                 `path = \"junit.xml\"`, at `target/nextest/default/junit.xml`"
            }
            Self::Jest => {
                "jest writes one with the `jest-junit` reporter (`--reporters=default \
                 --reporters=jest-junit`, `JEST_JUNIT_OUTPUT_FILE=PATH` in the granted env)"
            }
            Self::GoTest => {
                "`go test` writes no JUnit: run it through `gotestsum --junitfile PATH`"
            }
            Self::Gotestsum => "gotestsum writes one with `--junitfile PATH`",
            Self::Other => {
                "pytest: `--junitxml=PATH`; cargo: `format: cargo`; nextest: \
                 `[profile.default.junit]`; jest: `jest-junit`; go: `gotestsum --junitfile PATH`"
            }
        }
    }
}

/// True when `pair` appears consecutively in `words`.
fn windows(words: &[&str], pair: &[&str]) -> bool {
    words.windows(pair.len()).any(|w| w == pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(cmd: &str) -> Runner {
        let mut it = cmd.split_whitespace().map(str::to_string);
        let program = it.next().unwrap_or_default();
        Runner::detect(&program, &it.collect::<Vec<_>>())
    }

    #[test]
    fn runners_are_told_from_the_command() {
        assert_eq!(detect("pytest -q"), Runner::Pytest);
        assert_eq!(detect("python3 -m pytest --junitxml=r.xml"), Runner::Pytest);
        assert_eq!(detect("python3 -m unittest"), Runner::Other);
        assert_eq!(detect("cargo test --workspace"), Runner::CargoTest);
        assert_eq!(detect("cargo +nightly test"), Runner::CargoTest);
        assert_eq!(detect("cargo --locked test"), Runner::CargoTest);
        assert_eq!(detect("cargo build"), Runner::Other);
        assert_eq!(detect("cargo nextest run"), Runner::Nextest);
        assert_eq!(detect("cargo-nextest nextest run"), Runner::Nextest);
        assert_eq!(detect("npx jest --ci"), Runner::Jest);
        assert_eq!(detect("npm test"), Runner::Jest);
        assert_eq!(detect("go test ./..."), Runner::GoTest);
        assert_eq!(detect("go vet"), Runner::Other);
        assert_eq!(detect("gotestsum --junitfile r.xml"), Runner::Gotestsum);
        assert_eq!(detect("sh -c pytest"), Runner::Other);
    }

    #[test]
    fn each_runner_has_its_own_hint() {
        assert!(Runner::Pytest.junit_hint().contains("--junitxml"));
        assert!(Runner::CargoTest.junit_hint().contains("format: cargo"));
        assert!(Runner::Nextest
            .junit_hint()
            .contains("[profile.default.junit]"));
        assert!(Runner::Jest.junit_hint().contains("jest-junit"));
        assert!(Runner::GoTest
            .junit_hint()
            .contains("gotestsum --junitfile"));
        assert!(Runner::Gotestsum.junit_hint().contains("--junitfile"));
    }
}
