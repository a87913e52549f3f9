//! The shape of variable names. Pure predicates; `resolve` turns a failure
//! into a located error.
//!
//! Stage and pipeline names, durations, sizes and network patterns have one
//! grammar for the whole of sluice and are read with `sluice_types` (OCI
//! references too: `sluice_types::OciReference`).

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_identifier("NPM_TOKEN"));
        assert!(!is_identifier("1X"));
    }
}
