//! Read secrets granted to the stage (`grants.secrets`) through
//! `sluice:stage/secrets`.
//!
//! The runner redacts every secret value it knows from all logs, including
//! values printed across several writes and multi-line values; still, print
//! secrets only when you must.
//!
//! ```no_run
//! # fn f() -> Result<(), sluice_sdk::StageError> {
//! let token = sluice_sdk::secrets::get("DEPLOY_TOKEN")?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::fmt;

use crate::bindings::sluice::stage::secrets as wit;
use crate::error::StageError;

/// Why a secret could not be read. The message comes from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The secret is not in the stage's `grants.secrets`.
    Denied(String),
    /// The secret is granted but the runner has no value for it.
    NotFound(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "secret denied: {m}"),
            Self::NotFound(m) => write!(f, "secret not found: {m}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<SecretError> for StageError {
    /// [`SecretError::Denied`] becomes [`StageError::Denied`] with the
    /// host's message (which names the grant to add);
    /// [`SecretError::NotFound`] becomes [`StageError::Failed`].
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Denied(m) => StageError::denied(m),
            SecretError::NotFound(_) => StageError::failed(e.to_string()),
        }
    }
}

/// The value of secret `name`.
///
/// ```no_run
/// match sluice_sdk::secrets::get("REGISTRY_PASSWORD") {
///     Ok(_password) => { /* use it */ }
///     Err(e) => sluice_sdk::warn(format!("no registry login: {e}")),
/// }
/// ```
pub fn get(name: &str) -> Result<String, SecretError> {
    wit::get(name).map_err(|e| match e {
        wit::ErrorCode::Denied(m) => SecretError::Denied(m),
        wit::ErrorCode::NotFound(m) => SecretError::NotFound(m),
    })
}
