//! Splits an `http(s)://` URL into the parts `wasi:http` wants.

use super::HttpError;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlScheme {
    Http,
    Https,
}

/// A URL split into scheme, authority (`host[:port]`) and path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub scheme: UrlScheme,
    pub authority: String,
    pub path_with_query: String,
}

impl Target {
    /// `host:port`, with the scheme's default port when the URL names
    /// none: the form of a `grants.network` entry.
    pub fn host_port(&self) -> String {
        let has_port = match self.authority.rfind(']') {
            Some(end) => self.authority[end..].contains(':'),
            None => self.authority.contains(':'),
        };
        if has_port {
            self.authority.clone()
        } else {
            let port = match self.scheme {
                UrlScheme::Http => 80,
                UrlScheme::Https => 443,
            };
            format!("{}:{port}", self.authority)
        }
    }
}

/// Parses `scheme://host[:port][/path][?query][#fragment]`; the fragment is
/// dropped, user info (`user@host`) is refused.
pub(crate) fn parse(url: &str) -> Result<Target, HttpError> {
    let bad = |why: &str| HttpError::InvalidUrl(format!("`{url}`: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected `http://` or `https://`"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => UrlScheme::Http,
        "https" => UrlScheme::Https,
        _ => return Err(bad("only http and https are supported")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad(
            "user info in URLs is not supported; send an Authorization header",
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let path_with_query = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok(Target {
        scheme,
        authority: authority.to_string(),
        path_with_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> Target {
        match parse(url) {
            Ok(t) => t,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn splits_urls() {
        let t = ok("https://example.com:8443/api/v1/query?q=up#frag");
        assert_eq!(t.scheme, UrlScheme::Https);
        assert_eq!(t.authority, "example.com:8443");
        assert_eq!(t.path_with_query, "/api/v1/query?q=up");
        assert_eq!(ok("http://h").path_with_query, "/");
        assert_eq!(ok("HTTP://h?x=1").path_with_query, "/?x=1");
        assert_eq!(ok("http://[::1]:80/x").authority, "[::1]:80");
        assert_eq!(ok("http://[::1]/x").host_port(), "[::1]:80");
        assert_eq!(ok("https://example.com/x").host_port(), "example.com:443");
        assert_eq!(
            ok("https://example.com:8443").host_port(),
            "example.com:8443"
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for u in [
            "ftp://h/",
            "h/x",
            "http:///x",
            "http://u:p@h/",
            "http://h/a b",
        ] {
            assert!(parse(u).is_err(), "{u}");
        }
    }
}
