//! Compare what a plugin says it may use (`describe`) with what the
//! pipeline grants, so a missing grant is reported before the stage runs
//! rather than as a denied call halfway through.

use crate::bindings::wit::Capability;
use sluice_pipeline::{Grants, WorkspaceAccess};

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
            Capability::Network(n) if !grants.network.iter().any(|g| covers(g, n)) => {
                Some(format!("network `{n}`"))
            }
            _ => None,
        })
        .collect()
}

/// Whether grant pattern `grant` covers the declared `host:port` pattern.
fn covers(grant: &str, declared: &str) -> bool {
    if grant == declared {
        return true;
    }
    let (Some((gh, gp)), Some((dh, dp))) = (grant.rsplit_once(':'), declared.rsplit_once(':'))
    else {
        return false;
    };
    let port_ok = gp == "*" || gp == dp;
    let host_ok = gh == "*"
        || gh == dh
        || gh
            .strip_prefix("*.")
            .is_some_and(|suffix| dh.ends_with(&format!(".{suffix}")));
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn grant_patterns_cover_declared_ones() {
        assert!(covers("*:443", "api.example.com:443"));
        assert!(covers("*.example.com:*", "api.example.com:443"));
        assert!(!covers("*.example.com:80", "api.example.com:443"));
        assert!(!covers("example.com:443", "api.example.com:443"));
    }
}
