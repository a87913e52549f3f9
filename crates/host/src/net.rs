//! Outbound HTTP policy: a stage reaches only the `host:port` patterns in
//! its `grants.network`, and the address a name resolves to is checked too.
//!
//! Rules, checked for every request:
//! 1. The request's `host:port` (port defaulted from the scheme) must match a
//!    granted pattern: `host:port`, `*.suffix:port`, `*:port`, `host:*`,
//!    `host:8000-8100`, or an IP literal (`127.0.0.1:8080`, `[::1]:*`). The
//!    patterns are [`NetPattern`]s, read and matched as the pipeline file
//!    and the trust policy read them (names in any case).
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

use sluice_types::{HostPattern, NetMatch, NetPattern};

use super::logpipe::StageLog;
use super::state::Denials;

/// The network grants of one stage.
#[derive(Clone)]
pub struct NetPolicy {
    patterns: Vec<NetPattern>,
    log: StageLog,
    denials: Denials,
}

impl NetPolicy {
    /// Policy for `grants`.
    pub fn new(grants: &[NetPattern], log: StageLog, denials: Denials) -> NetPolicy {
        NetPolicy {
            patterns: grants.to_vec(),
            log,
            denials,
        }
    }

    /// How `host:port` matches the grants: exactly if any pattern names it,
    /// else through a wildcard, else not at all.
    fn match_name(&self, host: &str, port: u16) -> Option<NetMatch> {
        let mut best = None;
        for p in &self.patterns {
            match p.match_kind(host, port) {
                Some(NetMatch::Exact) => return Some(NetMatch::Exact),
                Some(NetMatch::Wildcard) => best = Some(NetMatch::Wildcard),
                None => {}
            }
        }
        best
    }

    fn ip_granted(&self, addr: &SocketAddr) -> bool {
        self.patterns
            .iter()
            .any(|p| *p.host() == HostPattern::Ip(addr.ip()) && p.ports().contains(addr.port()))
    }

    /// Check one resolved address for a host matched as `how`.
    fn address_allowed(&self, how: NetMatch, addr: &SocketAddr) -> Result<(), String> {
        if self.ip_granted(addr) {
            return Ok(());
        }
        let ip = addr.ip();
        match how {
            NetMatch::Exact if is_link_local(&ip) => Err(format!(
                "it resolves to the link-local address {ip}, which is only reachable when granted as an IP (`{addr}`)"
            )),
            NetMatch::Wildcard if !is_public(&ip) => Err(format!(
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
            let granted = if self.patterns.is_empty() {
                "none".to_string()
            } else {
                let shown: Vec<String> = self.patterns.iter().map(ToString::to_string).collect();
                shown.join(", ")
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
            &grants
                .iter()
                .map(|s| s.parse().expect("pattern"))
                .collect::<Vec<_>>(),
            log,
            Denials::default(),
        )
    }

    #[test]
    fn names_match_patterns() {
        let p = policy(&["api.example.com:443", "*.internal:8080", "127.0.0.1:*"]);
        assert_eq!(p.match_name("api.example.com", 443), Some(NetMatch::Exact));
        assert_eq!(p.match_name("API.example.com", 443), Some(NetMatch::Exact));
        assert_eq!(p.match_name("api.example.com", 80), None);
        assert_eq!(p.match_name("db.internal", 8080), Some(NetMatch::Wildcard));
        assert_eq!(p.match_name("evilinternal", 8080), None);
        assert_eq!(p.match_name("internal", 8080), None);
        assert_eq!(p.match_name("127.0.0.1", 9), Some(NetMatch::Exact));
        assert_eq!(p.match_name("example.org", 443), None);
    }

    #[test]
    fn resolved_addresses_are_checked() {
        let p = policy(&["metadata.example:80", "*:443", "169.254.169.254:80"]);
        let link_local: SocketAddr = "169.254.169.254:80".parse().expect("addr");
        // Explicit IP grant lifts the restriction.
        assert!(p.address_allowed(NetMatch::Exact, &link_local).is_ok());
        let other_ll: SocketAddr = "169.254.1.1:80".parse().expect("addr");
        assert!(p.address_allowed(NetMatch::Exact, &other_ll).is_err());
        let loopback: SocketAddr = "127.0.0.1:443".parse().expect("addr");
        assert!(p.address_allowed(NetMatch::Wildcard, &loopback).is_err());
        assert!(p.address_allowed(NetMatch::Exact, &loopback).is_ok());
        let mapped_ll: SocketAddr = "[::ffff:169.254.1.1]:80".parse().expect("addr");
        assert!(p.address_allowed(NetMatch::Exact, &mapped_ll).is_err());
        let public: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        assert!(p.address_allowed(NetMatch::Wildcard, &public).is_ok());
    }

    /// Issue 16: the host matched network patterns its own way while the
    /// trust policy and the capability check used `covers` on the text. A
    /// request is admitted exactly when the grant covers its `host:port`.
    #[test]
    fn matching_agrees_with_covers() {
        let grants = [
            "EXAMPLE.com:443",
            "*.Internal:8080",
            "localhost:8000-8100",
            "[::1]:*",
            "127.0.0.1:80",
            "*:8443",
            "*.example.org:*",
        ];
        let requests = [
            ("example.com", 443),
            ("Example.COM", 443),
            ("example.com", 80),
            ("db.internal", 8080),
            ("a.b.INTERNAL", 8080),
            ("internal", 8080),
            ("localhost", 8000),
            ("localhost", 8050),
            ("localhost", 8101),
            ("::1", 9),
            ("[::1]", 9),
            ("127.0.0.1", 80),
            ("127.0.0.1", 81),
            ("anything.net", 8443),
            ("10.0.0.1", 8443),
            ("a.b.example.org", 1),
            ("example.org", 1),
        ];
        for grant in grants {
            let p = policy(&[grant]);
            let granted: NetPattern = grant.parse().expect("grant");
            for (host, port) in requests {
                let bracketed = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                let request: NetPattern = format!("{bracketed}:{port}").parse().expect("request");
                assert_eq!(
                    p.match_name(host, port).is_some(),
                    granted.covers(&request),
                    "grant {grant}, request {host}:{port}"
                );
            }
        }
    }

    #[test]
    fn ipv6_literals() {
        let p = policy(&["[::1]:8080"]);
        assert_eq!(p.match_name("[::1]", 8080), Some(NetMatch::Exact));
        assert_eq!(p.match_name("::1", 8080), Some(NetMatch::Exact));
    }
}
