//! References to plugins in OCI registries.
//!
//! # Grammar
//!
//! ```text
//! oci-reference = "oci://" registry "/" repository [ ":" tag ] [ "@" digest ]
//! registry      = host [ ":" port ]          host: letters, digits, `.`, `-`
//! repository    = component *( "/" component )
//! component     = [a-z0-9] [a-z0-9._-]*
//! tag           = [A-Za-z0-9_] [A-Za-z0-9._-]{0,127}
//! digest        = "sha256:" 64 lowercase hex digits
//! ```
//!
//! A reference names a tag, a digest or both (`:1.2.0@sha256:…`: the tag is
//! kept for people, the digest decides). sluice never assumes `latest`.
//! The registry host is compared case-insensitively and printed in
//! lowercase; everything else is case-sensitive as written.
//!
//! Trust policies match a reference by its [`OciReference::policy_name`],
//! `oci://registry/repository` without tag or digest: tags move, so they
//! are no identity; a rule pins content with its `digest:` instead.

use std::fmt;
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// The scheme every OCI reference starts with.
pub const OCI_SCHEME: &str = "oci://";

/// A parsed `oci://registry/repository[:tag][@sha256:…]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OciReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What is wrong with an OCI reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OciProblem {
    /// It does not start with `oci://`.
    #[error("it does not start with `oci://`")]
    NoScheme,
    /// No `/` after the registry.
    #[error("it names no registry (`oci://registry/repository:tag`)")]
    NoRegistry,
    /// The registry is not `host[:port]`.
    #[error("`{0}` is not a registry host (`host` or `host:port`)")]
    Registry(String),
    /// A repository path component breaks the grammar.
    #[error(
        "`{0}` is not a repository name (lowercase letters, digits, `.`, `_`, `-`, separated by `/`)"
    )]
    Repository(String),
    /// The tag breaks the grammar.
    #[error("`{0}` is not a valid tag")]
    Tag(String),
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error("digest `{0}` must be `sha256:` and 64 lowercase hex digits")]
    Digest(String),
    /// Neither a tag nor a digest.
    #[error("it has neither a tag nor a digest")]
    Unversioned,
}

/// An OCI reference that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid OCI reference: {problem}")]
pub struct OciReferenceError {
    /// The text as written.
    pub value: String,
    /// What is wrong.
    pub problem: OciProblem,
}

impl OciReferenceError {
    /// How to write it instead.
    pub fn hint(&self) -> &'static str {
        "write `oci://registry/repository:tag`, optionally pinned with `@sha256:<64 hex digits>` \
         (e.g. `oci://ghcr.io/acme/lint:1.2.0`)"
    }
}

impl Hinted for OciReferenceError {
    fn hint_text(&self) -> &str {
        OciReferenceError::hint(self)
    }
}

/// Whether `digest` is `sha256:` followed by 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

impl OciReference {
    /// The registry, `host[:port]`, lowercase.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The registry host without its port.
    pub fn host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// The repository path (`team/lint`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same reference pinned to `digest` (the tag is kept for people).
    /// `digest` must be a valid sha256 digest.
    pub fn with_digest(&self, digest: &str) -> Result<OciReference, OciReferenceError> {
        if !is_sha256_digest(digest) {
            return Err(OciReferenceError {
                value: format!("{self}@{digest}"),
                problem: OciProblem::Digest(digest.to_owned()),
            });
        }
        Ok(OciReference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        })
    }

    /// The same reference without its digest (for resolving the tag again).
    pub fn without_digest(&self) -> OciReference {
        OciReference {
            digest: None,
            ..self.clone()
        }
    }

    /// What trust policies match: `oci://registry/repository`.
    pub fn policy_name(&self) -> String {
        format!("{OCI_SCHEME}{}/{}", self.registry, self.repository)
    }

    /// Whether the registry is this machine's loopback (`localhost`,
    /// `127.0.0.0/8`, `[::1]`): the only hosts `--insecure-registry` may name.
    pub fn is_loopback(&self) -> bool {
        is_loopback_registry(&self.registry)
    }
}

/// `host` of `host[:port]` (and of `[v6]:port`).
pub fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `registry` (`host[:port]`) is a loopback address or `localhost`.
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = registry_host(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn check_registry(registry: &str) -> bool {
    if let Some(rest) = registry.strip_prefix('[') {
        // `[::1]:5000`
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (port.is_empty() || port.strip_prefix(':').is_some_and(check_port));
    }
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        && !host.starts_with(['.', '-'])
        && port.is_none_or(check_port)
}

fn check_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn check_component(c: &str) -> bool {
    !c.is_empty()
        && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && c.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
        })
}

fn check_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl FromStr for OciReference {
    type Err = OciReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem| OciReferenceError {
            value: text.to_owned(),
            problem,
        };
        let rest = text
            .strip_prefix(OCI_SCHEME)
            .ok_or(fail(OciProblem::NoScheme))?;
        let (name_tag, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest, None),
        };
        if let Some(digest) = digest {
            if !is_sha256_digest(digest) {
                return Err(fail(OciProblem::Digest(digest.to_owned())));
            }
        }
        let (registry, path) = name_tag
            .split_once('/')
            .filter(|(r, p)| !r.is_empty() && !p.is_empty())
            .ok_or(fail(OciProblem::NoRegistry))?;
        if !check_registry(registry) {
            return Err(fail(OciProblem::Registry(registry.to_owned())));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        if !repository.split('/').all(check_component) {
            return Err(fail(OciProblem::Repository(repository.to_owned())));
        }
        if let Some(tag) = tag {
            if !check_tag(tag) {
                return Err(fail(OciProblem::Tag(tag.to_owned())));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(fail(OciProblem::Unversioned));
        }
        Ok(OciReference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

string_serde!(
    OciReference,
    "an OCI reference such as `oci://ghcr.io/acme/lint:1.2.0`",
    numbers: false
);

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn valid_references_parse_and_print_back() {
        for ok in [
            "oci://ghcr.io/acme/lint:1.2.0".to_owned(),
            format!("oci://ghcr.io/acme/lint:1.2.0@{}", digest()),
            format!("oci://localhost:5000/lint@{}", digest()),
            "oci://127.0.0.1:5000/team/sub/lint:v1_2".to_owned(),
            "oci://[::1]:5000/lint:1".to_owned(),
        ] {
            let parsed: OciReference = ok.parse().expect(&ok);
            assert_eq!(parsed.to_string(), ok);
        }
    }

    #[test]
    fn parts_and_policy_name() {
        let r: OciReference = format!("oci://Registry.Example:5000/team/lint:1.0@{}", digest())
            .parse()
            .expect("valid");
        assert_eq!(r.registry(), "registry.example:5000");
        assert_eq!(r.host(), "registry.example");
        assert_eq!(r.repository(), "team/lint");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.digest(), Some(digest().as_str()));
        assert_eq!(r.policy_name(), "oci://registry.example:5000/team/lint");
        assert_eq!(
            r.without_digest().to_string(),
            "oci://registry.example:5000/team/lint:1.0"
        );
    }

    #[test]
    fn invalid_references_say_what_is_wrong() {
        let cases = [
            ("ghcr.io/acme/lint:1", OciProblem::NoScheme),
            ("oci://lint:1", OciProblem::NoRegistry),
            ("oci://ghcr.io/acme/lint", OciProblem::Unversioned),
            (
                "oci://ghcr.io/Acme/lint:1",
                OciProblem::Repository("Acme/lint".into()),
            ),
            ("oci://ghcr.io/acme/lint:-x", OciProblem::Tag("-x".into())),
            (
                "oci://ghcr.io/acme/lint@sha256:ab",
                OciProblem::Digest("sha256:ab".into()),
            ),
            (
                "oci://gh cr.io/acme/lint:1",
                OciProblem::Registry("gh cr.io".into()),
            ),
            (
                "oci://ghcr.io:99999/acme/lint:1",
                OciProblem::Registry("ghcr.io:99999".into()),
            ),
        ];
        for (text, problem) in cases {
            let err = text.parse::<OciReference>().expect_err(text);
            assert_eq!(err.problem, problem, "{text}");
        }
    }

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback_registry(r), "{r}");
        }
        for r in [
            "registry.example",
            "10.0.0.1:5000",
            "localhost.example:5000",
            "[::2]:1",
        ] {
            assert!(!is_loopback_registry(r), "{r}");
        }
    }
}
