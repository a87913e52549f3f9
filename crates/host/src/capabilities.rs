//! Compare what a plugin says it may use (`describe`) with what the
//! pipeline grants, so a missing grant is reported before the stage runs
//! rather than as a denied call halfway through.

use crate::bindings::wit::Capability;
use sluice_pipeline::{Grants, WorkspaceAccess};
use sluice_types::NetPattern;

/// Declared capabilities the grants do not cover, described for people.
pub fn not_granted(declared: &[Capability], grants: &Grants) -> Vec<String> {
    declared
        .iter()
        .filter_map(|c| match c {
            Capability::WorkspaceRead if grants.workspace == WorkspaceAccess::None => {
                Some("`workspace: read`".to_string())
            }
            Capability::WorkspaceWrite if grants.workspace != WorkspaceAccess::Write => {
                Some("`workspace: write`".to_string())
            }
            Capability::Env(name) if !grants.env.contains(name) => Some(format!("env `{name}`")),
            Capability::Exec(p) if !grants.exec.contains(p) => Some(format!("exec `{p}`")),
            Capability::Secret(s) if !grants.secrets.contains(s) => Some(format!("secret `{s}`")),
            Capability::Network(n) if !covers(&grants.network, n) => Some(format!("network `{n}`")),
            _ => None,
        })
        .collect()
}

/// Whether one of `grants` covers the declared `host:port` pattern, by
/// the rule the host applies to requests and the trust policy to grants
/// ([`NetPattern::covers`]). A declaration that is not a pattern is never
/// covered: the stage is told it is missing rather than sent on.
fn covers(grants: &[NetPattern], declared: &str) -> bool {
    declared
        .parse::<NetPattern>()
        .is_ok_and(|declared| grants.iter().any(|g| g.covers(&declared)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grants with these network patterns and nothing else.
    fn network(patterns: &[&str]) -> Grants {
        Grants {
            workspace: WorkspaceAccess::None,
            env: Vec::new(),
            network: patterns
                .iter()
                .map(|p| p.parse().expect("a network pattern"))
                .collect(),
            exec: Vec::new(),
            secrets: Vec::new(),
            tls_ca: Vec::new(),
            memory: 0,
            output: 0,
            artifacts: 0,
        }
    }

    /// The declared network capabilities `grants` do not cover.
    fn missing(declared: &[&str], grants: &[&str]) -> Vec<String> {
        let declared: Vec<Capability> = declared
            .iter()
            .map(|d| Capability::Network((*d).to_owned()))
            .collect();
        not_granted(&declared, &network(grants))
    }

    #[test]
    fn grant_patterns_cover_declared_ones() {
        assert!(missing(&["api.example.com:443"], &["*:443"]).is_empty());
        assert!(missing(&["api.example.com:443"], &["*.example.com:*"]).is_empty());
        assert!(missing(&["localhost:8080"], &["localhost:8000-8100"]).is_empty());
        assert_eq!(
            missing(&["api.example.com:443"], &["*.example.com:80"]),
            ["network `api.example.com:443`"]
        );
        assert_eq!(
            missing(&["api.example.com:443"], &["example.com:443"]),
            ["network `api.example.com:443`"]
        );
        // A declaration that is not a pattern is never covered.
        assert_eq!(
            missing(&["example.com"], &["*:*"]),
            ["network `example.com`"]
        );
    }

    /// Issue 16: the host matched `EXAMPLE.com:443` case-insensitively, but
    /// this check compared the text, so a declared `EXAMPLE.com:443` was
    /// reported as not granted by `grants.network: [example.com:443]`.
    #[test]
    fn host_names_compare_case_insensitively() {
        assert!(missing(&["EXAMPLE.com:443"], &["example.com:443"]).is_empty());
        assert!(missing(&["example.com:443"], &["EXAMPLE.com:443"]).is_empty());
        assert!(missing(&["API.Example.com:443"], &["*.example.COM:443"]).is_empty());
    }
}
