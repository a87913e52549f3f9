//! The shape of variable names and OCI references. Pure predicates;
//! `resolve` turns a failure into a located error.
//!
//! Stage and pipeline names, durations, sizes and network patterns have one
//! grammar for the whole of sluice and are read with `sluice_types`.

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validates the part after `oci://`: `registry/repository[:tag][@sha256:hex]`,
/// with a tag or a digest (sluice never assumes `latest`).
pub fn check_oci(reference: &str) -> Result<(), String> {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("digest `{digest}` must start with `sha256:`"))?;
        if hex.len() != 64
            || !hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            return Err(format!(
                "digest `{digest}` must be `sha256:` and 64 lowercase hex digits"
            ));
        }
    }
    let Some((registry, rest)) = name_tag.split_once('/') else {
        return Err("it names no registry (`oci://registry/repository:tag`)".to_owned());
    };
    let registry_ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !registry_ok {
        return Err(format!("`{registry}` is not a registry host"));
    }
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (rest, None),
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if !repository.split('/').all(component_ok) {
        return Err(format!(
            "`{repository}` is not a repository name (lowercase letters, digits, `.`, `_`, `-`, separated by `/`)"
        ));
    }
    match tag {
        Some(tag)
            if tag.is_empty()
                || tag.len() > 128
                || tag.starts_with(['.', '-'])
                || !tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Err(format!("`{tag}` is not a valid tag"))
        }
        None if digest.is_none() => Err("it has neither a tag nor a digest".to_owned()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for ok in [
            "ghcr.io/acme/lint:1.2.0".to_owned(),
            format!("ghcr.io/acme/lint:1.2.0@{digest}"),
            format!("localhost:5000/lint@{digest}"),
        ] {
            assert_eq!(check_oci(&ok), Ok(()), "{ok}");
        }
        for bad in [
            "ghcr.io/acme/lint".to_owned(),
            "lint:1.0".to_owned(),
            "ghcr.io/Acme/lint:1".to_owned(),
            "ghcr.io/acme/lint:1@sha256:abc".to_owned(),
            format!("ghcr.io/acme/lint@md5:{}", "ab".repeat(32)),
        ] {
            assert!(check_oci(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_identifier("NPM_TOKEN"));
        assert!(!is_identifier("1X"));
    }
}
