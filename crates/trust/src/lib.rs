//! Trust: signed plugins, the trust policy, signed provenance.
//!
//! Nothing here touches the network: key-based signatures need only the
//! public key, and keyless (Fulcio) signatures are checked offline against a
//! `trusted_root.json`.
//!
//! - [`keys`]: ECDSA P-256 key pairs, the private key encrypted as cosign
//!   does (`ENCRYPTED SIGSTORE PRIVATE KEY`).
//! - [`bundle`]: detached signatures as Sigstore bundles v0.3
//!   (`FILE.sigstore.json`): [`sign_blob`] and [`verify_blob`].
//! - [`policy`]: the policy file security teams write: which plugins must be
//!   signed by whom, digest pins, allowed imports and grant caps;
//!   [`Policy::evaluate`] decides whether a plugin may run.
//! - [`operator`]: the operator policy, the floor a pipeline's own policy
//!   can only add to ([`Policies`]).
//! - [`provenance`]: in-toto statements signed as DSSE envelopes in Sigstore
//!   bundles, and [`verify_artifact`].
//! - [`error`]: [`TrustError`], for keys, signatures and bundles (policy
//!   files have [`PolicyError`]).
//!
//! Must not depend on wasmtime, tokio, the pipeline model or the run
//! record: a policy is checked against a plugin's digest, signature and
//! requested grants, given as plain values.

pub mod bundle;
pub mod error;
pub mod keys;
pub mod operator;
pub mod policy;
mod policy_file;
pub mod policy_rules;
pub mod provenance;

#[cfg(test)]
mod interop_tests;

pub use crate::bundle::{
    bundle_path, sign_blob, verify_blob, Signer, TrustedRoot, Verified, VerifyOptions,
    BUNDLE_MEDIA_TYPE, BUNDLE_SUFFIX,
};
pub use crate::error::TrustError;
pub use crate::keys::{
    fingerprint, generate, load_private, load_public, KeyPair, PrivateKey, PublicKey,
};
pub use crate::operator::{OperatorSource, Policies};
pub use crate::policy::{
    Decision, Mode, NoMatch, PluginInput, Policy, PolicyError, Refusal, RequestedGrants,
};
pub use crate::provenance::{
    pae, sign_statement, verify_artifact, StatementMatch, IN_TOTO_PAYLOAD_TYPE,
};
