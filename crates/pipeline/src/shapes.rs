//! The shape of names and references: stage and pipeline names, variable
//! names, network patterns, OCI references. Pure predicates; `resolve`
//! turns a failure into a located error.

/// `[a-z0-9][a-z0-9_-]*`, at most 63 characters (fits a DNS label, so a
/// stage name can name a host, a directory or a metric label).
pub fn is_stage_name(name: &str) -> bool {
    name.len() <= 63 && is_name(name, &['_', '-'])
}

/// `[a-z0-9][a-z0-9._-]*`
pub fn is_pipeline_name(name: &str) -> bool {
    is_name(name, &['.', '_', '-'])
}

/// `[a-z0-9][a-z0-9<extra>]*`
fn is_name(name: &str, extra: &[char]) -> bool {
    let lower_or_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = name.chars();
    chars.next().is_some_and(lower_or_digit)
        && chars.all(|c| lower_or_digit(c) || extra.contains(&c))
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validates `host:port` with `*` allowed as the port, as the whole host, or
/// as the first label (`*.internal`).
pub fn check_network(pattern: &str) -> Result<(), String> {
    let Some((host, port)) = pattern.rsplit_once(':') else {
        return Err("it has no port (use `*` for any port)".to_owned());
    };
    if port != "*" && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!(
            "`{port}` is not a port number from 1 to 65535 or `*`"
        ));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("`{inner}` is not an IPv6 address"));
    }
    if host.contains(':') {
        return Err("IPv6 addresses must be written in brackets, e.g. `[::1]:443`".to_owned());
    }
    if host == "*" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(())
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
    fn network_patterns() {
        for ok in [
            "api.example.com:443",
            "127.0.0.1:*",
            "*.internal:8080",
            "[::1]:80",
            "*:443",
            "localhost:1",
        ] {
            assert_eq!(check_network(ok), Ok(()), "{ok}");
        }
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:http",
            "::1:80",
            "a..b:1",
            "-a.com:1",
            "*.:1",
            ":80",
            "[zz]:1",
        ] {
            assert!(check_network(bad).is_err(), "{bad}");
        }
    }

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
        assert!(is_stage_name("build-2_x"));
        assert!(!is_stage_name("Build"));
        assert!(!is_stage_name("-x"));
        assert!(!is_stage_name("a.b"));
        assert!(!is_stage_name(&"a".repeat(64)));
        assert!(is_pipeline_name("shop-api.v2"));
        assert!(!is_pipeline_name(""));
        assert!(is_identifier("NPM_TOKEN"));
        assert!(!is_identifier("1X"));
    }
}
