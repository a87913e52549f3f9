//! Checks on what one `sluice` invocation did, each failing with everything
//! the run printed (and the caller's line, through `#[track_caller]`).

use crate::Run;

/// Assertions on a finished [`Run`]; each returns the run, so checks chain:
/// `run.expect_code(2).expect_stderr("--registry-ca");`.
pub trait Expect {
    /// The run exited with `code`.
    fn expect_code(&self, code: i32) -> &Self;
    /// Standard output contains `text`.
    fn expect_stdout(&self, text: &str) -> &Self;
    /// Standard error contains `text`.
    fn expect_stderr(&self, text: &str) -> &Self;
}

impl Expect for Run {
    #[track_caller]
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{}", self.all());
        self
    }

    #[track_caller]
    fn expect_stdout(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "no {text:?} in\n{}", self.all());
        self
    }

    #[track_caller]
    fn expect_stderr(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "no {text:?} in\n{}", self.all());
        self
    }
}
