//! Network patterns: the `host:port` entries of a stage's `grants.network`,
//! of a plugin's declared capabilities and of a trust policy's
//! `max-grants.network`.
//!
//! # Grammar
//!
//! ```text
//! pattern = host ":" port
//! host    = "*"                      any host, names and addresses
//!         | "*." name                any name strictly below `name`, at any depth
//!         | name                     exactly this DNS name
//!         | ipv4                     exactly this address: 127.0.0.1
//!         | "[" ipv6 "]"             exactly this address: [::1]
//! port    = "*"                      any port from 1 to 65535
//!         | number                   1 to 65535
//!         | number "-" number        an inclusive range: 8000-8100
//! name    = label { "." label }      labels of letters, digits and `-`, 1 to 63
//!                                    characters, not starting or ending with `-`;
//!                                    at most 253 characters in all
//! ```
//!
//! - Host names compare **case-insensitively**; a pattern keeps its host in
//!   lowercase, so `EXAMPLE.com:443` and `example.com:443` are the same
//!   pattern.
//! - `*.example.com` matches `api.example.com` and `a.b.example.com`, but
//!   **not** `example.com` itself (grant both to allow both). It never
//!   matches an IP address.
//! - A name whose last label is all digits must be a valid IPv4 address
//!   (`10.0.0.300:80` is refused rather than read as a name), so a name
//!   pattern never stands for an address.
//! - An IP pattern matches that address only, never a name that resolves to
//!   it (the host resolves names and checks the addresses separately).
//! - Ports are digits only (no sign); `1-65535` is the same as `*`.
//!
//! # Canonical form
//!
//! [`Display`](fmt::Display) writes the lowercase host, IPv6 addresses in
//! brackets in their shortest form, and the port as `*`, a number, or
//! `first-last`: `*.example.com:443`, `[::1]:8000-8100`. Parsing it gives
//! the same pattern back.
//!
//! # Matching and covering
//!
//! [`NetPattern::matches`] decides whether a concrete `host:port` (what the
//! host sees on an outbound request) is allowed by a pattern;
//! [`NetPattern::covers`] decides whether one pattern allows everything
//! another allows (a policy's `max-grants` over a stage's grants, a stage's
//! grants over a plugin's declared needs). They agree: if `g.covers(p)` and
//! `p.matches(h, port)`, then `g.matches(h, port)`; property tests check it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::serde_str::{string_serde, Hinted};

/// The host part of a [`NetPattern`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.suffix`: any name strictly below `suffix` (stored without `*.`,
    /// lowercase).
    Suffix(String),
    /// An exact DNS name (lowercase).
    Name(String),
    /// An exact IP address.
    Ip(IpAddr),
}

impl HostPattern {
    /// Whether `host` (a name, an IPv4 address, or an IPv6 address with
    /// or without brackets) is matched, and how.
    fn match_host(&self, host: &Host<'_>) -> Option<NetMatch> {
        match (self, host) {
            (HostPattern::Any, _) => Some(NetMatch::Wildcard),
            (HostPattern::Ip(ip), Host::Ip(addr)) if ip == addr => Some(NetMatch::Exact),
            (HostPattern::Name(name), Host::Name(host)) if name == host => Some(NetMatch::Exact),
            (HostPattern::Suffix(suffix), Host::Name(host)) if is_below(host, suffix) => {
                Some(NetMatch::Wildcard)
            }
            _ => None,
        }
    }

    /// Whether every host `other` matches, this matches.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (HostPattern::Suffix(s), HostPattern::Suffix(t)) => t == s || is_below(t, s),
            (HostPattern::Suffix(s), HostPattern::Name(n)) => is_below(n, s),
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Suffix(suffix) => write!(f, "*.{suffix}"),
            HostPattern::Name(name) => f.write_str(name),
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// `name` is strictly below `suffix`: `a.b.example.com` below `example.com`.
fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

/// The ports of a [`NetPattern`]: an inclusive range within 1..=65535
/// (`*` is the whole range, a single port a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Every port, `*`.
    pub const ANY: PortRange = PortRange {
        first: 1,
        last: u16::MAX,
    };

    /// One port; `None` for port 0.
    pub const fn single(port: u16) -> Option<PortRange> {
        PortRange::new(port, port)
    }

    /// `first-last`; `None` when `first` is 0 or after `last`.
    pub const fn new(first: u16, last: u16) -> Option<PortRange> {
        if first == 0 || first > last {
            None
        } else {
            Some(PortRange { first, last })
        }
    }

    /// The first port of the range.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// The last port of the range.
    pub const fn last(self) -> u16 {
        self.last
    }

    /// Whether this is `*`.
    pub fn is_any(self) -> bool {
        self == PortRange::ANY
    }

    /// Whether `port` is in the range.
    pub const fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// Whether every port of `other` is in this range.
    pub const fn covers(self, other: PortRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            f.write_str("*")
        } else if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// How a host matched a pattern: the host uses it to decide which
/// addresses a name may resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMatch {
    /// The pattern names this host or address exactly.
    Exact,
    /// The pattern is `*` or `*.suffix`.
    Wildcard,
}

/// One `host:port` network pattern, see the [module docs](self).
///
/// ```
/// use sluice_types::NetPattern;
///
/// let grant: NetPattern = "*.Example.com:443".parse().unwrap();
/// assert_eq!(grant.to_string(), "*.example.com:443");
/// assert!(grant.matches("API.example.com", 443));
/// assert!(!grant.matches("example.com", 443));
/// assert!(grant.covers(&"api.example.com:443".parse().unwrap()));
///
/// let range: NetPattern = "localhost:8000-8100".parse().unwrap();
/// assert!(range.matches("localhost", 8080));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetPattern {
    host: HostPattern,
    ports: PortRange,
}

/// A concrete host as a request names it.
enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

impl NetPattern {
    /// The host part.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The port part.
    pub fn ports(&self) -> PortRange {
        self.ports
    }

    /// Whether a request to `host:port` is allowed by this pattern. `host`
    /// is a name (any case), an IPv4 address, or an IPv6 address with or
    /// without brackets (`[::1]`, `::1`).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.match_kind(host, port).is_some()
    }

    /// How `host:port` matches this pattern, if it does: exactly (a name
    /// or address the pattern names) or through a wildcard.
    pub fn match_kind(&self, host: &str, port: u16) -> Option<NetMatch> {
        if !self.ports.contains(port) {
            return None;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.host.match_host(&Host::Ip(ip)),
            Err(_) => self
                .host
                .match_host(&Host::Name(&bare.to_ascii_lowercase())),
        }
    }

    /// Whether this pattern allows every `host:port` that `other` allows:
    /// a grant covers a declared or requested pattern.
    pub fn covers(&self, other: &NetPattern) -> bool {
        self.ports.covers(other.ports) && self.host.covers(&other.host)
    }
}

impl fmt::Display for NetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.ports)
    }
}

/// What is wrong with a network pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetProblem {
    /// No `:port`.
    #[error("it has no port (use `*` for any port)")]
    NoPort,
    /// Nothing before `:`.
    #[error("it has no host (use `*` for any host)")]
    NoHost,
    /// The port is not `*`, 1 to 65535, or a range.
    #[error("`{port}` is not a port number from 1 to 65535, `*` or a range such as `8000-8100`")]
    BadPort {
        /// The port as written.
        port: String,
    },
    /// A range whose end is before its start (`9000-8000`).
    #[error("the port range `{first}-{last}` ends before it starts")]
    BackwardsRange {
        /// The first port.
        first: u16,
        /// The last port.
        last: u16,
    },
    /// Brackets around something that is not an IPv6 address.
    #[error("`{inner}` is not an IPv6 address")]
    NotIpv6 {
        /// The text inside the brackets.
        inner: String,
    },
    /// An IPv6 address without brackets (`::1:80`).
    #[error("IPv6 addresses must be written in brackets, e.g. `[::1]:443`")]
    UnbracketedIpv6,
    /// Digits in the last label, but not an IPv4 address (`10.0.0.300`).
    #[error("`{host}` is not an IPv4 address")]
    NotIpv4 {
        /// The host as written.
        host: String,
    },
    /// Not a DNS name (empty labels, `_`, `*` inside, too long).
    #[error("`{host}` is not a host name")]
    BadHost {
        /// The host as written.
        host: String,
    },
}

/// A value that is not a valid [`NetPattern`].
///
/// Its `Display` is the message (naming the value); [`hint`](Self::hint)
/// says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid network pattern: {problem}")]
pub struct NetPatternError {
    /// The value as written, without surrounding blanks.
    pub value: String,
    /// What is wrong.
    pub problem: NetProblem,
    /// How to write it instead.
    pub hint: String,
}

const NET_HINT: &str = "write `host:port`; the host may be a name, `*.domain`, `*`, an IPv4 \
     address or `[IPv6]`, and the port a number, a range or `*` (e.g. `api.example.com:443`, \
     `127.0.0.1:*`, `localhost:8000-8100`)";

impl Hinted for NetPatternError {
    fn hint_text(&self) -> &str {
        &self.hint
    }
}

fn parse_port(port: &str) -> Result<PortRange, NetProblem> {
    if port == "*" {
        return Ok(PortRange::ANY);
    }
    let bad = || NetProblem::BadPort {
        port: port.to_owned(),
    };
    let number = |text: &str| {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u16>().ok().filter(|&p| p > 0)
    };
    match port.split_once('-') {
        None => number(port).and_then(PortRange::single).ok_or_else(bad),
        Some((first, last)) => {
            let (first, last) = number(first).zip(number(last)).ok_or_else(bad)?;
            PortRange::new(first, last).ok_or(NetProblem::BackwardsRange { first, last })
        }
    }
}

fn parse_host(host: &str) -> Result<HostPattern, NetProblem> {
    if host.is_empty() {
        return Err(NetProblem::NoHost);
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| HostPattern::Ip(IpAddr::V6(ip)))
            .map_err(|_| NetProblem::NotIpv6 {
                inner: inner.to_owned(),
            });
    }
    if host.contains(':') {
        return Err(NetProblem::UnbracketedIpv6);
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Ip(IpAddr::V4(ip)));
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(NetProblem::BadHost {
            host: host.to_owned(),
        });
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NetProblem::NotIpv4 {
            host: host.to_owned(),
        });
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        HostPattern::Suffix(name)
    } else {
        HostPattern::Name(name)
    })
}

impl FromStr for NetPattern {
    type Err = NetPatternError;

    fn from_str(text: &str) -> Result<Self, NetPatternError> {
        let trimmed = text.trim();
        let parsed = match trimmed.rsplit_once(':') {
            None => Err(NetProblem::NoPort),
            Some((host, port)) => parse_port(port)
                .and_then(|ports| parse_host(host).map(|host| NetPattern { host, ports })),
        };
        parsed.map_err(|problem| NetPatternError {
            value: trimmed.to_owned(),
            problem,
            hint: NET_HINT.to_owned(),
        })
    }
}

string_serde!(
    NetPattern,
    "a network pattern `host:port` such as \"api.example.com:443\"",
    numbers: false
);

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> NetPattern {
        match text.parse() {
            Ok(p) => p,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn problem(text: &str) -> Option<NetProblem> {
        text.parse::<NetPattern>().err().map(|e| e.problem)
    }

    #[test]
    fn valid_patterns_and_their_canonical_form() {
        for (text, canonical) in [
            ("api.example.com:443", "api.example.com:443"),
            ("127.0.0.1:*", "127.0.0.1:*"),
            ("*.internal:8080", "*.internal:8080"),
            ("[::1]:80", "[::1]:80"),
            ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
            ("*:443", "*:443"),
            ("localhost:1", "localhost:1"),
            ("EXAMPLE.com:443", "example.com:443"),
            ("*.Example.COM:*", "*.example.com:*"),
            ("localhost:8000-8100", "localhost:8000-8100"),
            ("localhost:1-65535", "localhost:*"),
            ("localhost:443-443", "localhost:443"),
            ("localhost:0443", "localhost:443"),
            (" a.b:1 ", "a.b:1"),
            ("xn--bcher-kva.example:443", "xn--bcher-kva.example:443"),
            ("1password.com:443", "1password.com:443"),
        ] {
            assert_eq!(pattern(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn invalid_patterns_say_why() {
        assert_eq!(problem("example.com"), Some(NetProblem::NoPort));
        assert_eq!(problem(":80"), Some(NetProblem::NoHost));
        for port in ["0", "http", "65536", "+443", "", "1-", "-5", "1-2-3", "**"] {
            assert_eq!(
                problem(&format!("example.com:{port}")),
                Some(NetProblem::BadPort { port: port.into() }),
                "{port}"
            );
        }
        assert_eq!(
            problem("a.com:9000-8000"),
            Some(NetProblem::BackwardsRange {
                first: 9000,
                last: 8000
            })
        );
        assert_eq!(problem("::1:80"), Some(NetProblem::UnbracketedIpv6));
        assert_eq!(
            problem("[zz]:1"),
            Some(NetProblem::NotIpv6 { inner: "zz".into() })
        );
        assert_eq!(
            problem("[1.2.3.4]:1"),
            Some(NetProblem::NotIpv6 {
                inner: "1.2.3.4".into()
            })
        );
        assert_eq!(
            problem("10.0.0.300:80"),
            Some(NetProblem::NotIpv4 {
                host: "10.0.0.300".into()
            })
        );
        assert!(matches!(
            problem("*.0.1:80"),
            Some(NetProblem::NotIpv4 { .. })
        ));
        for host in [
            "a..b", "-a.com", "*.", "a*b", "*.*.com", "a_b.com", "a.com.", "**",
        ] {
            assert_eq!(
                problem(&format!("{host}:1")),
                Some(NetProblem::BadHost { host: host.into() }),
                "{host}"
            );
        }
        assert!(problem(&format!("{}.com:1", "a".repeat(64))).is_some());
        let e = "api.example.com".parse::<NetPattern>().err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("`api.example.com` is not a valid network pattern: it has no port (use `*` for any port)")
        );
        assert!(e.is_some_and(|e| e.hint.contains("host:port")));
    }

    #[test]
    fn hosts_match_like_the_network_policy() {
        let exact = pattern("api.example.com:443");
        assert_eq!(
            exact.match_kind("api.example.com", 443),
            Some(NetMatch::Exact)
        );
        assert!(exact.matches("API.example.com", 443));
        assert!(!exact.matches("api.example.com", 80));
        let suffix = pattern("*.internal:8080");
        assert_eq!(
            suffix.match_kind("db.internal", 8080),
            Some(NetMatch::Wildcard)
        );
        assert!(suffix.matches("a.b.internal", 8080));
        assert!(!suffix.matches("evilinternal", 8080));
        assert!(!suffix.matches("internal", 8080));
        let ip = pattern("127.0.0.1:*");
        assert_eq!(ip.match_kind("127.0.0.1", 9), Some(NetMatch::Exact));
        assert!(!ip.matches("localhost", 9));
        assert!(!ip.matches("127.0.0.1", 0));
        let v6 = pattern("[::1]:8080");
        assert!(v6.matches("[::1]", 8080));
        assert!(v6.matches("::1", 8080));
        assert!(v6.matches("0::1", 8080));
        let any = pattern("*:443");
        assert_eq!(any.match_kind("example.org", 443), Some(NetMatch::Wildcard));
        assert!(any.matches("10.0.0.1", 443));
        assert!(!any.matches("example.org", 80));
        let range = pattern("localhost:8000-8100");
        assert!(range.matches("localhost", 8000));
        assert!(range.matches("localhost", 8100));
        assert!(!range.matches("localhost", 8101));
        // A suffix never matches an address.
        assert!(!pattern("*.com:1").matches("1.2.3.4", 1));
    }

    /// Issue 16: the host matched `EXAMPLE.com:443` case-insensitively but
    /// the policy's `covers` compared the text.
    #[test]
    fn upper_case_grants_match_and_cover() {
        let grant = pattern("EXAMPLE.com:443");
        assert!(grant.matches("example.com", 443));
        assert!(grant.covers(&pattern("example.com:443")));
        assert!(pattern("example.com:443").covers(&grant));
        assert!(pattern("*.Example.com:*").covers(&pattern("API.example.COM:443")));
    }

    #[test]
    fn grants_cover_narrower_patterns() {
        let covers = |g: &str, p: &str| pattern(g).covers(&pattern(p));
        assert!(covers("*:443", "api.example.com:443"));
        assert!(covers("*:*", "[::1]:1-10"));
        assert!(covers("*.example.com:*", "api.example.com:443"));
        assert!(covers("*.example.com:*", "*.api.example.com:443"));
        assert!(covers("*.example.com:443", "*.example.com:443"));
        assert!(covers("localhost:8000-8100", "localhost:8080"));
        assert!(covers("localhost:8000-8100", "localhost:8010-8020"));
        assert!(covers("localhost:1-65535", "localhost:*"));
        assert!(!covers("localhost:8000-8100", "localhost:8050-8200"));
        assert!(!covers("localhost:8080", "localhost:*"));
        assert!(!covers("*.example.com:80", "api.example.com:443"));
        assert!(!covers("example.com:443", "api.example.com:443"));
        assert!(!covers("*.example.com:443", "example.com:443"));
        assert!(!covers("*.api.example.com:443", "*.example.com:443"));
        assert!(!covers("*.example.com:443", "*:443"));
        assert!(!covers("*.example.com:443", "93.184.216.34:443"));
        assert!(!covers("localhost:443", "127.0.0.1:443"));
    }

    #[test]
    fn serde_goes_through_the_text() {
        let from = |json: &str| serde_json::from_str::<NetPattern>(json).map_err(|e| e.to_string());
        assert_eq!(from("\"a.com:443\""), Ok(pattern("a.com:443")));
        assert!(from("\"a.com\"").is_err_and(|e| e.contains("it has no port")));
        assert!(from("443").is_err_and(|e| e.contains("a network pattern")));
        assert_eq!(
            serde_json::to_string(&pattern("[::1]:*")).ok().as_deref(),
            Some("\"[::1]:*\"")
        );
    }
}
