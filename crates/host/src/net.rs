//! Outbound HTTP policy: a stage reaches only the `host:port` patterns in
//! its `grants.network`, and the address a name resolves to is checked too.
//!
//! Rules, checked for every request:
//! 1. The request's `host:port` (port defaulted from the scheme) must match a
//!    granted pattern: `host:port`, `*.suffix:port`, `*:port`, `host:*`, or an
//!    IP literal (`127.0.0.1:8080`, `[::1]:*`).
//! 2. The name is resolved and every address is checked. A name granted
//!    exactly may resolve to loopback or private addresses (it was named on
//!    purpose) but never to link-local ones (cloud metadata endpoints). A name
//!    matched by a wildcard must resolve to public addresses only. Either
//!    restriction is lifted for an address granted explicitly as an IP.
//! 3. Plain `http` connects to the address that was checked (the `Host`
//!    header keeps the name), so a second DNS answer cannot redirect it.
//!    `https` reconnects by name for certificate checks; the window between
//!    check and connect is the remaining exposure there.

use std::net::{IpAddr, SocketAddr};

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::logpipe::StageLog;
use super::state::Denials;

/// One parsed `grants.network` entry.
#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    Suffix(String),
    Exact(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    host: HostPattern,
    /// `None` = any port.
    port: Option<u16>,
}

impl Pattern {
    fn parse(s: &str) -> Option<Pattern> {
        let (host, port) = s.rsplit_once(':')?;
        let port = if port == "*" {
            None
        } else {
            Some(port.parse().ok()?)
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(suffix.to_ascii_lowercase())
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        Some(Pattern { host, port })
    }

    fn port_matches(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }
}

/// How a request's host matched the grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Exact,
    Wildcard,
}

/// The network grants of one stage.
#[derive(Clone)]
pub struct NetPolicy {
    patterns: Vec<Pattern>,
    raw: Vec<String>,
    log: StageLog,
    denials: Denials,
}

impl NetPolicy {
    /// Policy for `grants` (already validated by the pipeline loader;
    /// unparsable entries grant nothing).
    pub fn new(grants: &[String], log: StageLog, denials: Denials) -> NetPolicy {
        NetPolicy {
            patterns: grants.iter().filter_map(|g| Pattern::parse(g)).collect(),
            raw: grants.to_vec(),
            log,
            denials,
        }
    }

    fn match_name(&self, host: &str, port: u16) -> Option<Match> {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        let mut best = None;
        for p in self.patterns.iter().filter(|p| p.port_matches(port)) {
            match &p.host {
                HostPattern::Exact(h) if *h == host => return Some(Match::Exact),
                HostPattern::Ip(granted) if Some(*granted) == ip => return Some(Match::Exact),
                HostPattern::Suffix(s)
                    if host.len() > s.len()
                        && host.ends_with(s.as_str())
                        && host.as_bytes()[host.len() - s.len() - 1] == b'.' =>
                {
                    best = Some(Match::Wildcard)
                }
                HostPattern::Any => best = Some(Match::Wildcard),
                _ => {}
            }
        }
        best
    }

    fn ip_granted(&self, addr: &SocketAddr) -> bool {
        self.patterns
            .iter()
            .any(|p| p.host == HostPattern::Ip(addr.ip()) && p.port_matches(addr.port()))
    }

    /// Check one resolved address for a host matched as `how`.
    fn address_allowed(&self, how: Match, addr: &SocketAddr) -> Result<(), String> {
        if self.ip_granted(addr) {
            return Ok(());
        }
        let ip = addr.ip();
        match how {
            Match::Exact if is_link_local(&ip) => Err(format!(
                "it resolves to the link-local address {ip}, which is only reachable when granted as an IP (`{addr}`)"
            )),
            Match::Wildcard if !is_public(&ip) => Err(format!(
                "it matched a wildcard grant but resolves to the non-public address {ip}; grant the host by its exact name or `{addr}`"
            )),
            _ => Ok(()),
        }
    }

    fn deny(&self, message: String) -> HttpError {
        self.denials.push(&self.log, message);
        HttpError::HttpRequestDenied
    }

    /// Decide on `host:port`, resolving it; returns the address to connect to.
    async fn admit(&self, host: &str, port: u16) -> Result<SocketAddr, HttpError> {
        let Some(how) = self.match_name(host, port) else {
            let granted = if self.raw.is_empty() {
                "none".to_string()
            } else {
                self.raw.join(", ")
            };
            return Err(self.deny(format!(
                "HTTP request to {host}:{port} is not allowed: grants.network is [{granted}]; add \"{host}:{port}\" to the stage's grants.network to allow it"
            )));
        };
        let lookup = tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await;
        let addrs: Vec<SocketAddr> = match lookup {
            Ok(a) => a.collect(),
            Err(e) => {
                return Err(HttpError::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                })
            }
        };
        if addrs.is_empty() {
            return Err(HttpError::DestinationNotFound);
        }
        for addr in &addrs {
            if let Err(why) = self.address_allowed(how, addr) {
                return Err(self.deny(format!("HTTP request to {host}:{port} refused: {why}")));
            }
        }
        Ok(addrs[0])
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        // `::ffff:169.254.169.254` reaches the IPv4 link-local address
        // (cloud metadata) on a dual-stack socket: unmap it first.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let s0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80)
        }
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for NetPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let policy = self.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            let uri = request.uri().clone();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let Some(authority) = uri.authority() else {
                return Err(HttpError::HttpRequestUriInvalid);
            };
            let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
            let host = authority.host().to_string();
            let addr = policy.admit(&host, port).await?;
            tracing::debug!(%host, port, %addr, "outbound HTTP admitted");
            if !https {
                // Connect to exactly the address that was checked.
                let mut parts = uri.into_parts();
                parts.authority = addr.to_string().parse().ok();
                if let Ok(pinned) = http::Uri::from_parts(parts) {
                    *request.uri_mut() = pinned;
                }
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &[&str]) -> NetPolicy {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = StageLog::create(
            &dir.path().join("x.log"),
            std::sync::Arc::new(super::super::logpipe::Redactor::new(Vec::<String>::new())),
            1 << 20,
            None,
        )
        .expect("log");
        NetPolicy::new(
            &grants.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            log,
            Denials::default(),
        )
    }

    #[test]
    fn names_match_patterns() {
        let p = policy(&["api.example.com:443", "*.internal:8080", "127.0.0.1:*"]);
        assert_eq!(p.match_name("api.example.com", 443), Some(Match::Exact));
        assert_eq!(p.match_name("API.example.com", 443), Some(Match::Exact));
        assert_eq!(p.match_name("api.example.com", 80), None);
        assert_eq!(p.match_name("db.internal", 8080), Some(Match::Wildcard));
        assert_eq!(p.match_name("evilinternal", 8080), None);
        assert_eq!(p.match_name("internal", 8080), None);
        assert_eq!(p.match_name("127.0.0.1", 9), Some(Match::Exact));
        assert_eq!(p.match_name("example.org", 443), None);
    }

    #[test]
    fn resolved_addresses_are_checked() {
        let p = policy(&["metadata.example:80", "*:443", "169.254.169.254:80"]);
        let link_local: SocketAddr = "169.254.169.254:80".parse().expect("addr");
        // Explicit IP grant lifts the restriction.
        assert!(p.address_allowed(Match::Exact, &link_local).is_ok());
        let other_ll: SocketAddr = "169.254.1.1:80".parse().expect("addr");
        assert!(p.address_allowed(Match::Exact, &other_ll).is_err());
        let loopback: SocketAddr = "127.0.0.1:443".parse().expect("addr");
        assert!(p.address_allowed(Match::Wildcard, &loopback).is_err());
        assert!(p.address_allowed(Match::Exact, &loopback).is_ok());
        let mapped_ll: SocketAddr = "[::ffff:169.254.1.1]:80".parse().expect("addr");
        assert!(p.address_allowed(Match::Exact, &mapped_ll).is_err());
        let public: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        assert!(p.address_allowed(Match::Wildcard, &public).is_ok());
    }

    #[test]
    fn ipv6_literals() {
        let p = policy(&["[::1]:8080"]);
        assert_eq!(p.match_name("[::1]", 8080), Some(Match::Exact));
        assert_eq!(p.match_name("::1", 8080), Some(Match::Exact));
    }
}
