//! The registry options every command that talks to OCI registries takes
//! (`run`, `validate`, `lock`, `plugin push|pull|sign|verify`).

use std::path::PathBuf;

use clap::Args;
use sluice_oci::{Auth, OciError, RegistryOptions};

/// `--registry-ca` and `--insecure-registry`; credentials come from the
/// environment (`SLUICE_REGISTRY_AUTH`, else the Docker config).
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// A PEM file of CA certificates to trust for registry TLS, besides the
    /// system's (repeatable).
    #[arg(long = "registry-ca", value_name = "FILE", env = "SLUICE_REGISTRY_CA")]
    pub registry_ca: Vec<PathBuf>,
    /// Speak plain HTTP to this registry (`HOST[:PORT]`, repeatable).
    /// Loopback registries only (localhost, 127.0.0.0/8, `[::1]`); others are
    /// refused.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

impl RegistryArgs {
    /// The registry client's options: checks `--insecure-registry` first
    /// (a non-loopback host is refused before any credentials are read),
    /// then reads the credentials of the environment.
    pub fn options(&self) -> Result<RegistryOptions, OciError> {
        if let Some(registry) = self
            .insecure_registry
            .iter()
            .find(|r| !sluice_types::oci::is_loopback_registry(r))
        {
            return Err(OciError::InsecureNotLoopback {
                registry: registry.clone(),
            });
        }
        Ok(RegistryOptions {
            ca_files: self.registry_ca.clone(),
            insecure: self.insecure_registry.clone(),
            auth: Auth::from_environment()?,
        })
    }

    /// The options as a [`crate::oci_plugins::RegistryAccess`], built when
    /// a pipeline first needs a registry.
    pub fn access(&self) -> crate::oci_plugins::RegistryAccess {
        let args = self.clone();
        crate::oci_plugins::RegistryAccess::new(move || args.options())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_insecure_registries_are_refused_before_credentials() {
        let args = RegistryArgs {
            registry_ca: vec![],
            insecure_registry: vec!["localhost:5000".into(), "registry.example:5000".into()],
        };
        match args.options() {
            Err(OciError::InsecureNotLoopback { registry }) => {
                assert_eq!(registry, "registry.example:5000")
            }
            other => panic!("expected InsecureNotLoopback, got {other:?}"),
        }
    }
}
