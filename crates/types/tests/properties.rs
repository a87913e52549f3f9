//! Property tests: every printer agrees with its parser, and a network
//! grant's `covers` agrees with what its `matches` lets through.

use std::net::{IpAddr, Ipv6Addr};

use proptest::prelude::*;
use sluice_types::{ByteSize, Duration, HostPattern, NetPattern, PipelineName, StageName};

fn millis_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000_000).prop_map(Duration::from_millis),
        (0u64..=u64::MAX / 1000).prop_map(Duration::from_millis),
    ]
}

fn any_duration() -> impl Strategy<Value = Duration> {
    (any::<u64>(), 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Duration(std::time::Duration::new(secs, nanos)))
}

fn byte_size() -> impl Strategy<Value = ByteSize> {
    prop_oneof![
        any::<u64>().prop_map(ByteSize),
        (0u64..100_000, 0u32..7).prop_map(|(n, shift)| ByteSize(n << (10 * shift))),
        (0u64..100_000).prop_map(|n| ByteSize(n * 1000)),
    ]
}

/// Names from few labels, so that one is often below another.
fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", "ba", "api", "pi", "example", "ample", "com", "x-1", "internal",
        ]),
        1..4,
    )
    .prop_map(|labels| labels.join("."))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        prop::sample::select(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([93, 184, 216, 34]),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        ]),
        any::<IpAddr>(),
    ]
}

fn host_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        name().prop_map(|n| format!("*.{n}")),
        name(),
        ip().prop_map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }),
    ]
}

const PORTS: [u16; 6] = [1, 80, 443, 8000, 8080, 65535];

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![prop::sample::select(PORTS.to_vec()), 0u16..=u16::MAX]
}

fn port_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        prop::sample::select(PORTS.to_vec()).prop_map(|p| p.to_string()),
        (
            prop::sample::select(PORTS.to_vec()),
            prop::sample::select(PORTS.to_vec())
        )
            .prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
    ]
}

/// Patterns built as text (in mixed case), so parsing is exercised too.
fn net_pattern() -> impl Strategy<Value = NetPattern> {
    (host_text(), port_text(), any::<bool>()).prop_map(|(host, port, upper)| {
        let host = if upper { host.to_uppercase() } else { host };
        let text = format!("{host}:{port}");
        match text.parse::<NetPattern>() {
            Ok(p) => p,
            Err(e) => panic!("generated an invalid pattern: {e}"),
        }
    })
}

/// Concrete hosts as a request names them: names in any case, addresses,
/// IPv6 with and without brackets.
fn request_host() -> impl Strategy<Value = String> {
    prop_oneof![
        name(),
        name().prop_map(|n| n.to_uppercase()),
        ip().prop_map(|ip| ip.to_string()),
        ip().prop_map(|ip| format!("[{ip}]")),
    ]
}

fn stage_name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,62}"
}

fn pipeline_name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._-]{0,80}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn durations_print_what_they_parse(d in millis_duration()) {
        let text = d.to_string();
        prop_assert_eq!(text.parse::<Duration>().ok(), Some(d), "{}", text);
    }

    #[test]
    fn any_duration_prints_what_it_parses(d in any_duration()) {
        let text = d.to_string();
        prop_assert_eq!(text.parse::<Duration>().ok(), Some(d), "{}", text);
    }

    #[test]
    fn duration_parsing_never_panics(text in "[0-9. a-zµ]{0,24}") {
        let _ = text.parse::<Duration>();
    }

    #[test]
    fn sizes_print_what_they_parse(s in byte_size()) {
        let text = s.to_string();
        prop_assert_eq!(text.parse::<ByteSize>().ok(), Some(s), "{}", text);
    }

    #[test]
    fn size_parsing_never_panics(text in "[0-9. a-zA-Z]{0,24}") {
        let _ = text.parse::<ByteSize>();
    }

    #[test]
    fn net_patterns_print_what_they_parse(p in net_pattern()) {
        let text = p.to_string();
        prop_assert_eq!(text.parse::<NetPattern>().ok(), Some(p), "{}", text);
    }

    #[test]
    fn net_pattern_parsing_never_panics(text in "[\\[\\]0-9a-fA-F.:*-]{0,24}") {
        let _ = text.parse::<NetPattern>();
    }

    #[test]
    fn a_pattern_covers_itself(p in net_pattern()) {
        prop_assert!(p.covers(&p), "{}", p);
    }

    /// What a grant covers, it lets through: `covers` never claims more
    /// than `matches` allows. Besides a random host, the test tries one the
    /// pattern surely matches (a name below its suffix, its name, its
    /// address), so the implication is not vacuous.
    #[test]
    fn covers_agrees_with_matches(
        grant in net_pattern(),
        pattern in net_pattern(),
        host in request_host(),
        label in prop::sample::select(vec!["a", "b", "ba", "x-1"]),
        port in port(),
    ) {
        let inside = match pattern.host() {
            HostPattern::Any => host.clone(),
            HostPattern::Suffix(suffix) => format!("{label}.{suffix}"),
            HostPattern::Name(name) => name.to_uppercase(),
            HostPattern::Ip(ip) => format!("[{ip}]"),
        };
        let ports = [port, pattern.ports().first(), pattern.ports().last()];
        for host in [&host, &inside] {
            for port in ports {
                if grant.covers(&pattern) && pattern.matches(host, port) {
                    prop_assert!(
                        grant.matches(host, port),
                        "{} covers {} which matches {}:{}, but the grant does not",
                        grant, pattern, host, port
                    );
                }
            }
        }
    }

    /// The same, focused on the wildcard hosts, where the random patterns
    /// above rarely meet (`*.a` against `*.ba`).
    #[test]
    fn suffix_covers_agree_with_matches(
        grant in name(),
        grant_wildcard in any::<bool>(),
        pattern in name(),
        pattern_wildcard in any::<bool>(),
        label in prop::sample::select(vec!["a", "b", "ba", "x-1"]),
    ) {
        let text = |name: &str, wildcard: bool| {
            let host = if wildcard { format!("*.{name}") } else { name.to_owned() };
            format!("{host}:443").parse::<NetPattern>()
        };
        let (Ok(grant), Ok(pattern)) = (text(&grant, grant_wildcard), text(&pattern, pattern_wildcard))
        else {
            return Err(TestCaseError::fail("generated an invalid pattern"));
        };
        let host = match pattern.host() {
            HostPattern::Suffix(suffix) => format!("{label}.{suffix}"),
            other => other.to_string(),
        };
        if grant.covers(&pattern) {
            prop_assert!(pattern.matches(&host, 443));
            prop_assert!(grant.matches(&host, 443), "{} covers {} but not {}", grant, pattern, host);
        }
    }

    /// The other way round, for the patterns that name one host and port:
    /// a grant that lets that host and port through covers the pattern.
    #[test]
    fn matches_agrees_with_covers_for_exact_patterns(
        grant in net_pattern(),
        host in name(),
        port in prop::sample::select(PORTS.to_vec()),
    ) {
        let Ok(exact) = format!("{host}:{port}").parse::<NetPattern>() else {
            return Err(TestCaseError::fail("exact pattern did not parse"));
        };
        prop_assert_eq!(grant.matches(&host, port), grant.covers(&exact), "{} vs {}", grant, exact);
    }

    #[test]
    fn upper_case_is_the_same_pattern(p in net_pattern()) {
        let upper = p.to_string().to_uppercase();
        prop_assert_eq!(upper.parse::<NetPattern>().ok(), Some(p.clone()));
        if let HostPattern::Name(name) = p.host() {
            prop_assert!(p.matches(&name.to_uppercase(), p.ports().first()));
        }
    }

    #[test]
    fn stage_names_print_what_they_parse(text in stage_name()) {
        let name = StageName::new(text.clone());
        prop_assert!(name.is_ok(), "{}", text);
        let name = name.ok();
        let again = name.as_ref().map(|n| n.to_string()).and_then(|t| t.parse::<StageName>().ok());
        prop_assert_eq!(again, name);
    }

    #[test]
    fn pipeline_names_print_what_they_parse(text in pipeline_name()) {
        let name = PipelineName::new(text.clone());
        prop_assert!(name.is_ok(), "{}", text);
        let name = name.ok();
        let again = name.as_ref().map(|n| n.to_string()).and_then(|t| t.parse::<PipelineName>().ok());
        prop_assert_eq!(again, name);
    }

    #[test]
    fn stage_names_agree_with_the_predicate(text in "[a-zA-Z0-9._ -]{0,70}") {
        prop_assert_eq!(StageName::new(text.as_str()).is_ok(), StageName::is_valid(&text));
    }
}
