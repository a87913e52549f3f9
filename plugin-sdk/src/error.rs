//! [`StageError`]: why a stage could not produce a report.

use std::borrow::Cow;
use std::fmt;

use crate::info::Capability;

/// Why a stage could not produce a [`Report`](crate::Report).
///
/// Return it from [`Stage::run`](crate::Stage::run); the runner records the
/// message and decides whether to retry from the variant:
///
/// | variant | meaning | retried |
/// |---|---|---|
/// | [`InvalidConfig`](Self::InvalidConfig) | the `with:` block is wrong | never |
/// | [`Denied`](Self::Denied) | a capability was not granted (the runner names the grant to add) | never |
/// | [`Failed`](Self::Failed) | the stage tried and failed | when the stage has `retries:` |
///
/// `?` works on the SDK's own errors ([`ExecError`](crate::exec::ExecError),
/// [`SecretError`](crate::secrets::SecretError),
/// [`HttpError`](crate::http::HttpError)) and on [`std::io::Error`]. Add
/// context with [`ResultExt::context`].
///
/// ```
/// use sluice_sdk::StageError;
///
/// fn check(retries: u32) -> Result<(), StageError> {
///     if retries > 10 {
///         return Err(StageError::invalid_config("with.retries: at most 10"));
///     }
///     Ok(())
/// }
/// assert!(check(11).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageError {
    /// The stage's `with:` block is wrong; the message says which key and
    /// how to fix it.
    InvalidConfig(String),
    /// The stage needed a capability the pipeline did not grant. The runner
    /// tells the user which grant to add, so there is no message.
    Denied(Capability),
    /// The stage tried and failed.
    Failed(String),
}

impl StageError {
    /// A configuration error. Name the key path in `msg`.
    ///
    /// ```
    /// let e = sluice_sdk::StageError::invalid_config("with.paths: must not be empty");
    /// assert_eq!(e.to_string(), "invalid config: with.paths: must not be empty");
    /// ```
    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Self::InvalidConfig(msg.into())
    }

    /// A missing grant: the capability the stage needed.
    ///
    /// ```
    /// use sluice_sdk::{Capability, StageError};
    /// let e = StageError::denied(Capability::exec("cargo"));
    /// assert_eq!(e, StageError::Denied(Capability::exec("cargo")));
    /// ```
    pub fn denied(capability: Capability) -> Self {
        Self::Denied(capability)
    }

    /// A failure of the work itself.
    ///
    /// ```
    /// let e = sluice_sdk::StageError::failed("3 tests failed");
    /// assert_eq!(e.message(), "3 tests failed");
    /// ```
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }

    /// The message, without the variant; for [`Denied`](Self::Denied), the
    /// grant to add.
    ///
    /// ```
    /// use sluice_sdk::{Capability, StageError};
    /// assert_eq!(StageError::failed("no").message(), "no");
    /// assert_eq!(StageError::denied(Capability::exec("make")).message(), "grant `exec: [make]`");
    /// ```
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            Self::InvalidConfig(m) | Self::Failed(m) => Cow::Borrowed(m),
            Self::Denied(c) => Cow::Owned(format!("grant `{}`", c.grant())),
        }
    }

    /// The same error with `context: ` put in front of its message; the
    /// variant is kept. A [`Denied`](Self::Denied) error is returned as it
    /// is: it carries only the capability, which is what the runner reports.
    ///
    /// ```
    /// use sluice_sdk::StageError;
    /// let e = StageError::failed("exit status 2").with_context("cargo test");
    /// assert_eq!(e, StageError::failed("cargo test: exit status 2"));
    /// ```
    pub fn with_context(self, context: impl fmt::Display) -> Self {
        match self {
            Self::InvalidConfig(m) => Self::InvalidConfig(format!("{context}: {m}")),
            Self::Denied(c) => Self::Denied(c),
            Self::Failed(m) => Self::Failed(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::Denied(c) => write!(f, "denied: {c} (grant `{}`)", c.grant()),
            Self::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for StageError {}

impl From<std::io::Error> for StageError {
    /// An I/O error becomes [`StageError::Failed`] with the error kind and
    /// the operating system's message. Use [`ResultExt::context`] to name
    /// the file.
    fn from(e: std::io::Error) -> Self {
        Self::Failed(format!("I/O error ({}): {e}", e.kind()))
    }
}

/// Adds context to any error that converts into a [`StageError`].
///
/// ```
/// use sluice_sdk::{ResultExt, StageError};
///
/// fn read() -> Result<Vec<u8>, StageError> {
///     std::fs::read("/workspace/does-not-exist").context("reading the junit report")
/// }
/// let e = read().unwrap_err();
/// assert!(e.message().starts_with("reading the junit report: "));
/// ```
pub trait ResultExt<T> {
    /// Converts the error into a [`StageError`] and puts `context: ` in
    /// front of its message.
    fn context(self, context: impl fmt::Display) -> Result<T, StageError>;

    /// Like [`context`](Self::context), but builds the context only on error.
    ///
    /// ```
    /// use sluice_sdk::ResultExt;
    /// let path = "/workspace/missing";
    /// let r = std::fs::read(path).with_context(|| format!("reading {path}"));
    /// assert!(r.is_err());
    /// ```
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T, StageError>;
}

impl<T, E: Into<StageError>> ResultExt<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, StageError> {
        self.map_err(|e| e.into().with_context(context))
    }

    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T, StageError> {
        self.map_err(|e| e.into().with_context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_keeps_its_capability_through_context() {
        let e = StageError::denied(Capability::secret("TOKEN")).with_context("deploying");
        assert_eq!(e, StageError::Denied(Capability::secret("TOKEN")));
        assert_eq!(
            e.to_string(),
            "denied: secret TOKEN (grant `secrets: [TOKEN]`)"
        );
    }
}
