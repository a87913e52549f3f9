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
//! 3. Both `http` and `https` connect to the address that was checked (the
//!    `Host` header keeps the name), so a second DNS answer cannot redirect
//!    them. `https` verifies the server's certificate against the *name*
//!    (or the IP literal) of the request, with the public (webpki) roots
//!    plus the stage's `grants.tls-ca` roots; this is why sluice does the
//!    TLS handshake itself instead of `default_send_request`, which takes
//!    only webpki roots and reconnects by name.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use sluice_types::{HostPattern, NetMatch, NetPattern};

use super::logpipe::StageLog;
use super::state::{Denials, DeniedCall};

/// The network grants of one stage.
#[derive(Clone)]
pub struct NetPolicy {
    patterns: Vec<NetPattern>,
    tls: Arc<rustls::ClientConfig>,
    log: StageLog,
    denials: Denials,
}

/// Why a stage's TLS settings cannot be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsSetupError {
    /// A `grants.tls-ca` certificate rustls would not take as a root.
    #[error("certificate {index} of the stage's grants.tls-ca roots cannot be used: {source}")]
    Root {
        /// 1-based position among the stage's extra roots.
        index: usize,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The TLS client settings themselves were refused.
    #[error("cannot set up TLS: {0}")]
    Config(#[source] rustls::Error),
}

/// The TLS client settings for the public roots alone, built once: most
/// stages have no `grants.tls-ca`.
fn public_tls() -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    static PUBLIC: OnceLock<Result<Arc<rustls::ClientConfig>, TlsSetupError>> = OnceLock::new();
    PUBLIC
        .get_or_init(|| client_config(public_roots()).map(Arc::new))
        .clone()
}

fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, TlsSetupError> {
    // The ring provider by name: the process may link more than one
    // provider, and then rustls has no process default.
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsSetupError::Config)?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

impl NetPolicy {
    /// Policy for `grants`, trusting the public roots plus `extra_roots`
    /// (the certificates of `grants.tls-ca`) for HTTPS.
    pub fn new(
        grants: &[NetPattern],
        extra_roots: &[CertificateDer<'static>],
        log: StageLog,
        denials: Denials,
    ) -> Result<NetPolicy, TlsSetupError> {
        let tls = if extra_roots.is_empty() {
            public_tls()?
        } else {
            let mut roots = public_roots();
            for (i, cert) in extra_roots.iter().enumerate() {
                roots
                    .add(cert.clone())
                    .map_err(|source| TlsSetupError::Root {
                        index: i + 1,
                        source,
                    })?;
            }
            Arc::new(client_config(roots)?)
        };
        Ok(NetPolicy {
            patterns: grants.to_vec(),
            tls,
            log,
            denials,
        })
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
        self.denials.push(&self.log, DeniedCall::Network, message);
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
            if https {
                let (response, io) = policy.send_tls(request, options, &host, addr).await?;
                return Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
                ));
            }
            // Connect to exactly the address that was checked.
            let mut parts = uri.into_parts();
            parts.authority = addr.to_string().parse().ok();
            if let Ok(pinned) = http::Uri::from_parts(parts) {
                *request.uri_mut() = pinned;
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// wasi-http's default for every timeout the guest does not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The TLS name to verify the certificate against: the IP for an IP
/// literal (`127.0.0.1`, `[::1]`), else the DNS name.
fn server_name(host: &str) -> Result<ServerName<'static>, HttpError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(bare.to_owned()).map_err(HttpError::InvalidDnsNameError)
}

/// A response body that fails when no bytes come for `between_bytes`
/// (wasi-http's `between-bytes-timeout`), as `default_send_request`'s does.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(if err.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::from(err)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match self.timeout.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

type ConnFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>>;

impl NetPolicy {
    /// `https`: TCP to the admitted `addr`, TLS verified against `host`
    /// with this stage's roots, then HTTP/1.1 (the logic of wasi-http's
    /// `default_send_request`, with the same timeouts; the TLS handshake
    /// counts against the connect timeout so a silent server cannot hang
    /// the stage).
    async fn send_tls(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        host: &str,
        addr: SocketAddr,
    ) -> Result<(http::Response<TimedBody>, ConnFuture), HttpError> {
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let first_byte_timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        // Tokio panics on a zero interval; 1 ns is as good as zero.
        let between_bytes_timeout = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
            .max(Duration::from_nanos(1));
        let name = server_name(host)?;
        let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Connect)?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let tls = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(|e| self.tls_error(host, addr, e))?;
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::Builder::new()
                .handshake(wasmtime_wasi_http::io::TokioIo::new(tls)),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
        // The request line carries only the path: scheme and authority are
        // for proxies (the `Host` header keeps the name).
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let mut conn: Option<ConnFuture> = Some(Box::pin(async move {
            conn.await.map_err(|err| {
                if err.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::from(err)
                }
            })
        }));
        let send = async move {
            let res = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)?
                .map_err(HttpError::from)?;
            let mut timeout = tokio::time::interval(between_bytes_timeout);
            timeout.reset();
            Ok::<_, HttpError>(res.map(|incoming| TimedBody { incoming, timeout }))
        };
        let mut send = std::pin::pin!(send);
        // Drive the connection while waiting for the response head.
        let res = std::future::poll_fn(|cx| {
            use std::task::Poll;
            if let Poll::Ready(r) = send.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            let Some(fut) = conn.as_mut() else {
                return Poll::Pending;
            };
            match fut.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(done) => {
                    conn = None;
                    match done {
                        Ok(()) => send.as_mut().poll(cx),
                        Err(e) => Poll::Ready(Err(e)),
                    }
                }
            }
        })
        .await?;
        let rest: ConnFuture = match conn {
            Some(fut) => fut,
            None => Box::pin(async { Ok(()) }),
        };
        Ok((res, rest))
    }

    /// A failed handshake: a certificate problem is said in the stage log
    /// with the fix, and reaches the guest as a certificate error.
    fn tls_error(&self, host: &str, addr: SocketAddr, error: std::io::Error) -> HttpError {
        let rustls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(rustls::Error::InvalidCertificate(why)) => {
                self.log.note(&format!(
                    "HTTPS to {host} ({addr}): the server's certificate is not trusted ({why:?}); if it is signed by a private CA, grant that CA's PEM file in the stage's grants.tls-ca"
                ));
                HttpError::TlsCertificateError
            }
            _ => {
                self.log.note(&format!(
                    "HTTPS to {host} ({addr}): TLS handshake failed: {error}"
                ));
                HttpError::Tls(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage log in `dir`, redacting nothing.
    fn scratch_log(dir: &tempfile::TempDir) -> StageLog {
        StageLog::create(
            &dir.path().join("x.log"),
            std::sync::Arc::new(super::super::logpipe::Redactor::new(Vec::<String>::new())),
            1 << 20,
            None,
        )
        .expect("log")
    }

    fn policy(grants: &[&str]) -> NetPolicy {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = scratch_log(&dir);
        NetPolicy::new(
            &grants
                .iter()
                .map(|s| s.parse().expect("pattern"))
                .collect::<Vec<_>>(),
            &[],
            log,
            Denials::default(),
        )
        .expect("public roots")
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
    fn tls_names_and_roots() {
        assert_eq!(
            server_name("127.0.0.1").expect("ip"),
            ServerName::from("127.0.0.1".parse::<IpAddr>().expect("ip"))
        );
        assert_eq!(
            server_name("[::1]").expect("ipv6"),
            ServerName::from("::1".parse::<IpAddr>().expect("ip"))
        );
        assert_eq!(
            server_name("deploy.internal").expect("dns"),
            ServerName::try_from("deploy.internal").expect("dns")
        );
        assert!(server_name("not a name").is_err());
        // rustls refuses a root that is not a certificate, naming which.
        let dir = tempfile::tempdir().expect("tempdir");
        let log = scratch_log(&dir);
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        match NetPolicy::new(&[], &[garbage], log, Denials::default()) {
            Err(TlsSetupError::Root { index: 1, .. }) => {}
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a garbage root was accepted"),
        }
    }

    #[test]
    fn ipv6_literals() {
        let p = policy(&["[::1]:8080"]);
        assert_eq!(p.match_name("[::1]", 8080), Some(NetMatch::Exact));
        assert_eq!(p.match_name("::1", 8080), Some(NetMatch::Exact));
    }
}
