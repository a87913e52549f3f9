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
use crate::info::Capability;

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The secret (named here) is not in the stage's `grants.secrets`.
    Denied(String),
    /// The secret is granted but the runner has no value for it (the
    /// host's message).
    NotFound(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(n) => write!(
                f,
                "secret denied: `{n}` is not in the stage's grants.secrets"
            ),
            Self::NotFound(m) => write!(f, "secret not found: {m}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<SecretError> for StageError {
    /// [`SecretError::Denied`] becomes [`StageError::Denied`] with
    /// [`Capability::Secret`]; [`SecretError::NotFound`] becomes
    /// [`StageError::Failed`].
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Denied(name) => StageError::denied(Capability::Secret(name)),
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
        wit::ErrorCode::Denied(_) => SecretError::Denied(name.to_string()),
        wit::ErrorCode::NotFound(m) => SecretError::NotFound(m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_becomes_a_secret_capability() {
        let e: StageError = SecretError::Denied("TOKEN".into()).into();
        assert_eq!(e, StageError::Denied(Capability::secret("TOKEN")));
        let e: StageError = SecretError::NotFound("no value".into()).into();
        assert!(matches!(e, StageError::Failed(_)));
    }
}
