//! [`StageError`]: why a stage could not produce a report.

use std::fmt;

/// Why a stage could not produce a [`Report`](crate::Report).
///
/// Return it from [`Stage::run`](crate::Stage::run); the runner records the
/// message and decides whether to retry from the variant:
///
/// | variant | meaning | retried |
/// |---|---|---|
/// | [`InvalidConfig`](Self::InvalidConfig) | the `with:` block is wrong | never |
/// | [`Denied`](Self::Denied) | a capability was not granted | never |
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
    /// The stage needed a capability the pipeline did not grant; the message
    /// names the grant to add.
    Denied(String),
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

    /// A missing grant. Name the grant to add in `msg`.
    ///
    /// ```
    /// let e = sluice_sdk::StageError::denied("add `exec: [cargo]` to grants");
    /// assert!(matches!(e, sluice_sdk::StageError::Denied(_)));
    /// ```
    pub fn denied(msg: impl Into<String>) -> Self {
        Self::Denied(msg.into())
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

    /// The message, without the variant.
    ///
    /// ```
    /// assert_eq!(sluice_sdk::StageError::denied("no").message(), "no");
    /// ```
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidConfig(m) | Self::Denied(m) | Self::Failed(m) => m,
        }
    }

    /// The same error with `context: ` put in front of its message; the
    /// variant is kept.
    ///
    /// ```
    /// use sluice_sdk::StageError;
    /// let e = StageError::failed("exit status 2").with_context("cargo test");
    /// assert_eq!(e, StageError::failed("cargo test: exit status 2"));
    /// ```
    pub fn with_context(self, context: impl fmt::Display) -> Self {
        match self {
            Self::InvalidConfig(m) => Self::InvalidConfig(format!("{context}: {m}")),
            Self::Denied(m) => Self::Denied(format!("{context}: {m}")),
            Self::Failed(m) => Self::Failed(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::Denied(m) => write!(f, "denied: {m}"),
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
