//! The `nginx` target's protocol: the weighted `upstream` block written to
//! `<root>/nginx/upstreams.conf` (with session affinity, header
//! routing and feature-flag routing, [`render_with`]), the granted reload command, and the JSON
//! access log (`log_format sluice`, docs/delivery.md) read back into
//! per-upstream counts, status codes and latencies.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_sdk::StageError;

use crate::config::{Affinity, CanaryHeader};
use crate::state::{FlagRule, Flags, Route, Weights};

/// `host:port` of a slot URL (`http://127.0.0.1:18101/x` → `127.0.0.1:18101`;
/// port 80 / 443 when left out).
pub fn host_port(url: &str) -> Result<String, StageError> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        (r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else {
        return Err(StageError::invalid_config(format!(
            "`{url}` is not an http:// URL"
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(StageError::invalid_config(format!("`{url}` has no host")));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i + 1..].is_empty() && !authority.ends_with(']'),
        None => false,
    };
    Ok(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    })
}

/// The stable and the candidate route of a canary split, as
/// [`Weights::split`] writes it: exactly two routes on different slots
/// whose weights add up to 100, stable first. `None` for any other
/// layout (one route after a promote, evenly weighted rolling
/// instances), where header routing has no candidate to send to.
///
/// ```
/// use sluice_delivery::{nginx::canary_pair, SlotVersion, Weights};
/// let (b, g) = (SlotVersion::new("blue", "1"), SlotVersion::new("green", "2"));
/// let w = Weights::split(&b, &g, 0);
/// let (stable, cand) = canary_pair(&w).unwrap();
/// assert_eq!((stable.slot.as_str(), cand.slot.as_str()), ("blue", "green"));
/// assert!(canary_pair(&Weights::all_to(&g)).is_none());
/// ```
pub fn canary_pair(weights: &Weights) -> Option<(&Route, &Route)> {
    match weights.routes.as_slice() {
        [a, b] if a.slot != b.slot && a.weight + b.weight == 100 => Some((a, b)),
        _ => None,
    }
}

/// The nginx variable of a request header (`X-User` → `$http_x_user`).
pub fn header_variable(header: &str) -> String {
    format!("$http_{}", header.to_ascii_lowercase().replace('-', "_"))
}

/// `name` as part of an nginx variable name (`-` is not allowed there).
fn var_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The variable the generated file sets to the upstream a request goes
/// to: `$<upstream>_upstream` (`$sluice_upstream`; `-` becomes `_`). An
/// nginx configuration that wants header routing proxies to
/// `http://$sluice_upstream`.
pub fn route_variable(name: &str) -> String {
    format!("${}_upstream", var_name(name))
}

/// How requests are routed besides the weights (`target.affinity`,
/// `target.canary-header`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Routing<'a> {
    /// Session affinity.
    pub affinity: Option<&'a Affinity>,
    /// Header routing.
    pub canary_header: Option<&'a CanaryHeader>,
    /// Feature flags (`flags.json`).
    pub flags: Option<&'a Flags>,
}

/// The header that carries the user key flags bucket by, as the example
/// router reads it.
pub const USER_HEADER: &str = "X-User";

/// The flag that decides for a request with a user key, as in the example
/// router (`choose_slot`): the first flag by name, whatever its percent
/// (at 0% it sends every user to its `off` slot). Only one flag decides.
pub fn deciding_flag(flags: &Flags) -> Option<(&String, &FlagRule)> {
    flags.flags.iter().next()
}

/// The file for `weights` with `routing`: the weighted upstream `name`
/// ([`render_upstreams`], with `hash <key> consistent;` under affinity),
/// and a `map` setting [`route_variable`] — `name` by default; with a
/// canary header during a canary split ([`canary_pair`]) `always` goes
/// to upstream `<name>__<candidate slot>` and `never` to
/// `<name>__<stable slot>`, each a single-server upstream. Everything
/// here is valid in nginx's `http` context, where the file is included.
///
/// Under affinity, requests without the key (no header or cookie) are
/// hashed by `$request_id`, i.e. spread by the weights, rather than all
/// landing on the server of the empty key.
///
/// With flags, requests carrying [`USER_HEADER`] are routed by the
/// [`deciding_flag`]: `split_clients "<flag>:$http_x_user" $<name>_flag
/// { <p>% <name>__<on>; * <name>__<off>; }` (nginx's MurmurHash2
/// bucketing, [`crate::flags::nginx_bucket`]); the canary header still
/// wins over it, requests without the user header go by the weights — the
/// example router's order. A flag's percent must have at most two
/// decimals ([`crate::flags::nginx_hundredths`]).
///
/// ```
/// use std::collections::BTreeMap;
/// use sluice_delivery::{nginx::{render_with, Routing}, config::{Affinity, CanaryHeader}, SlotVersion, Weights};
/// let slots = BTreeMap::from([
///     ("blue".to_string(), "http://127.0.0.1:18101".to_string()),
///     ("green".to_string(), "http://127.0.0.1:18102".to_string()),
/// ]);
/// let w = Weights::split(&SlotVersion::new("blue", "1"), &SlotVersion::new("green", "2"), 20);
/// let a = Affinity { header: Some("X-User".into()), cookie: None };
/// let c = CanaryHeader { name: "X-Canary".into() };
/// let r = Routing { affinity: Some(&a), canary_header: Some(&c), flags: None };
/// let conf = render_with("sluice", &w, &slots, &r).unwrap();
/// assert!(conf.contains("hash $sluice_affinity_key consistent;"));
/// assert!(conf.contains("map $http_x_canary $sluice_upstream {"));
/// assert!(conf.contains("always sluice__green;"));
/// ```
pub fn render_with(
    name: &str,
    weights: &Weights,
    slots: &BTreeMap<String, String>,
    routing: &Routing<'_>,
) -> Result<String, StageError> {
    // The weighted upstream (with its "written by sluice" first line),
    // under affinity with `hash` as its first directive and the map of the
    // key after it (a map may follow its use in nginx's configuration).
    let mut out = render_upstreams(name, weights, slots)?;
    if let Some(a) = routing.affinity {
        let source = match (&a.header, &a.cookie) {
            (Some(h), _) => header_variable(h),
            (None, Some(c)) => format!("$cookie_{c}"),
            (None, None) => {
                return Err(StageError::invalid_config(
                    "with.target.affinity: needs exactly one of `header` or `cookie`",
                ))
            }
        };
        let key = format!("${}_affinity_key", var_name(name));
        out = out.replacen(
            &format!("upstream {name} {{\n"),
            &format!("upstream {name} {{\n    hash {key} consistent;\n"),
            1,
        );
        // Requests without the key are hashed by their id: spread by the
        // weights instead of all on the server of the empty key.
        out.push_str(&format!(
            "map {source} {key} {{\n    \"\" $request_id;\n    default {source};\n}}\n"
        ));
    }
    let var = route_variable(name);
    let pair = routing.canary_header.zip(canary_pair(weights));
    // Single-server upstreams: the canary pair's slots and the deciding
    // flag's, each once, with the version the weights know for it.
    let mut singles: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    if let Some((_, (stable, candidate))) = pair {
        for route in [stable, candidate] {
            singles.insert(&route.slot, Some(&route.version));
        }
    }
    let flag = routing.flags.and_then(deciding_flag);
    if let Some((_, rule)) = flag {
        for slot in [&rule.on, &rule.off] {
            let version = weights
                .routes
                .iter()
                .find(|r| &r.slot == slot)
                .map(|r| r.version.as_str());
            let known = singles.entry(slot).or_insert(version);
            if known.is_none() {
                *known = version;
            }
        }
    }
    for (slot, version) in &singles {
        let url = slots.get(*slot).ok_or_else(|| {
            StageError::invalid_config(format!(
                "with.target.slots: slot `{slot}` has no URL; nginx needs its address, e.g. \
                 `{slot}: http://127.0.0.1:18101`"
            ))
        })?;
        let comment = version.map(|v| format!(" # {v}")).unwrap_or_default();
        out.push_str(&format!(
            "upstream {name}__{slot} {{\n    server {};{comment}\n}}\n",
            host_port(url)?
        ));
    }
    // What decides after the canary header: the flag for requests with a
    // user key, the weights for the rest.
    let fallback = match flag {
        Some((flag, rule)) => {
            crate::check_name(flag).map_err(|m| {
                StageError::invalid_config(format!(
                    "flag name {m}: nginx needs it inside its configuration"
                ))
            })?;
            let hundredths = crate::flags::nginx_hundredths(rule.percent)
                .map_err(|e| StageError::invalid_config(format!("flag {flag}: percent {e}")))?;
            let split = format!("${}_flag", var_name(name));
            let by_flag = format!("${}_by_flag", var_name(name));
            let user = header_variable(USER_HEADER);
            let on = if hundredths > 0 {
                format!(
                    " {}.{:02}% {name}__{};",
                    hundredths / 100,
                    hundredths % 100,
                    rule.on
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "split_clients \"{flag}:{user}\" {split} {{{on} * {name}__{}; }}\n\
                 map {user} {by_flag} {{\n    \"\" {name};\n    default {split};\n}}\n",
                rule.off
            ));
            by_flag
        }
        None => name.to_string(),
    };
    match pair {
        Some((header, (stable, candidate))) => {
            out.push_str(&format!(
                "map {} {var} {{\n    default {fallback};\n    always {name}__{};\n    never {name}__{};\n}}\n",
                header_variable(&header.name),
                candidate.slot,
                stable.slot
            ));
        }
        None => out.push_str(&format!("map \"\" {var} {{\n    default {fallback};\n}}\n")),
    }
    Ok(out)
}

/// The `upstream` block for `weights`: one `server host:port weight=N;`
/// per route (a weight of 0 becomes `down`), addresses from `slots`.
///
/// Errors when every weight is 0 (nginx would have nothing to send
/// traffic to) or a route's slot has no URL.
///
/// ```
/// use std::collections::BTreeMap;
/// use sluice_delivery::{nginx::render_upstreams, SlotVersion, Weights};
/// let slots = BTreeMap::from([
///     ("blue".to_string(), "http://127.0.0.1:18101".to_string()),
///     ("green".to_string(), "http://127.0.0.1:18102".to_string()),
/// ]);
/// let w = Weights::split(&SlotVersion::new("blue", "1"), &SlotVersion::new("green", "2"), 0);
/// let conf = render_upstreams("sluice", &w, &slots).unwrap();
/// assert!(conf.contains("server 127.0.0.1:18101 weight=100;"));
/// assert!(conf.contains("server 127.0.0.1:18102 down;"));
/// ```
pub fn render_upstreams(
    name: &str,
    weights: &Weights,
    slots: &BTreeMap<String, String>,
) -> Result<String, StageError> {
    if weights.total() == 0 {
        return Err(StageError::failed(format!(
            "refusing to write nginx upstream `{name}` with every weight 0: nothing would serve \
             traffic"
        )));
    }
    let mut out = format!("# written by sluice; do not edit\nupstream {name} {{\n");
    for route in &weights.routes {
        let url = slots.get(&route.slot).ok_or_else(|| {
            StageError::invalid_config(format!(
                "with.target.slots: slot `{}` has no URL; nginx needs its address, e.g. \
                 `{}: http://127.0.0.1:18101`",
                route.slot, route.slot
            ))
        })?;
        let addr = host_port(url)?;
        if route.weight == 0 {
            out.push_str(&format!(
                "    server {addr} down; # {} {}\n",
                route.slot, route.version
            ));
        } else {
            out.push_str(&format!(
                "    server {addr} weight={}; # {} {}\n",
                route.weight, route.slot, route.version
            ));
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// How long a drained instance is left before it moves: `nginx -s
/// reload` only signals the master, which starts new workers and lets
/// the old ones finish their requests (and stop accepting) on its own.
pub const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the reload command through the granted `exec`; a non-zero exit
/// fails with nginx's stderr.
pub fn reload(command: &[String]) -> Result<(), StageError> {
    let Some((program, args)) = command.split_first() else {
        return Err(StageError::invalid_config(
            "with.target.reload: empty command",
        ));
    };
    let out = sluice_sdk::exec::run(program, args.iter().cloned())?;
    if !out.success() {
        return Err(StageError::failed(format!(
            "`{}` exited {}: {}",
            command.join(" "),
            out.status,
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// One line of the JSON access log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccessLogEntry {
    /// `$upstream_addr`: the upstream(s) tried, `"a, b"` after a retry,
    /// empty or `-` when none was.
    #[serde(default)]
    pub upstream: String,
    /// `$status` returned to the client.
    pub status: u16,
    /// `$request_time` in seconds.
    #[serde(default)]
    pub request_time: f64,
    /// `$upstream_response_time` (string; `"0.003, 0.001"` after a retry).
    #[serde(default)]
    pub upstream_response_time: String,
}

impl AccessLogEntry {
    /// The upstream that answered (the last one tried), if any.
    pub fn final_upstream(&self) -> Option<&str> {
        let last = self.upstream.rsplit(',').next().unwrap_or_default().trim();
        (!last.is_empty() && last != "-").then_some(last)
    }

    /// Latency in milliseconds: the last upstream's response time, else
    /// the request time.
    pub fn latency_ms(&self) -> f64 {
        let last = self
            .upstream_response_time
            .rsplit(',')
            .next()
            .unwrap_or_default()
            .trim();
        last.parse::<f64>().unwrap_or(self.request_time) * 1000.0
    }
}

/// Parses one access-log line.
pub fn parse_line(line: &str) -> Result<AccessLogEntry, String> {
    serde_json::from_str(line).map_err(|e| e.to_string())
}

/// Counts, status codes and latencies of one upstream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpstreamStats {
    /// Requests answered through it.
    pub requests: u64,
    /// Of which with a 5xx status.
    pub errors_5xx: u64,
    /// Requests by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Latency of every request, in ms.
    pub latencies_ms: Vec<f64>,
}

impl UpstreamStats {
    /// Share of 5xx answers (0 when there was no request).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors_5xx as f64 / self.requests as f64
        }
    }
}

/// The access log, summarised per upstream address (`host:port`; `-` for
/// requests nginx answered without an upstream), and the number of lines
/// that were not valid JSON log lines (blank lines are ignored).
///
/// ```
/// let log = r#"{"upstream":"127.0.0.1:1","status":200,"request_time":0.002,"upstream_response_time":"0.001"}
/// {"upstream":"127.0.0.1:2","status":502,"request_time":0.004,"upstream_response_time":"0.004"}
/// "#;
/// let (stats, bad) = sluice_delivery::nginx::summarize(log);
/// assert_eq!(bad, 0);
/// assert_eq!(stats["127.0.0.1:2"].errors_5xx, 1);
/// ```
pub fn summarize(log: &str) -> (BTreeMap<String, UpstreamStats>, usize) {
    let mut stats: BTreeMap<String, UpstreamStats> = BTreeMap::new();
    let mut bad = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(e) = parse_line(line) else {
            bad += 1;
            continue;
        };
        let key = e.final_upstream().unwrap_or("-").to_string();
        let s = stats.entry(key).or_default();
        s.requests += 1;
        if e.status >= 500 {
            s.errors_5xx += 1;
        }
        *s.statuses.entry(e.status).or_default() += 1;
        s.latencies_ms.push(e.latency_ms());
    }
    (stats, bad)
}

/// [`summarize`] keyed by slot name instead of address (addresses from
/// `slots`; an address no slot has keeps its address as key).
pub fn summarize_by_slot(
    log: &str,
    slots: &BTreeMap<String, String>,
) -> (BTreeMap<String, UpstreamStats>, usize) {
    let by_addr: BTreeMap<String, String> = slots
        .iter()
        .filter_map(|(slot, url)| host_port(url).ok().map(|a| (a, slot.clone())))
        .collect();
    let (stats, bad) = summarize(log);
    let mut out: BTreeMap<String, UpstreamStats> = BTreeMap::new();
    for (addr, s) in stats {
        let key = by_addr.get(&addr).cloned().unwrap_or(addr);
        let e = out.entry(key).or_default();
        e.requests += s.requests;
        e.errors_5xx += s.errors_5xx;
        for (k, v) in s.statuses {
            *e.statuses.entry(k).or_default() += v;
        }
        e.latencies_ms.extend(s.latencies_ms);
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SlotVersion;

    fn slots() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("blue".into(), "http://127.0.0.1:18101".into()),
            ("green".into(), "http://localhost:18102/".into()),
        ])
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_port("http://a:1/x").expect("ok"), "a:1");
        assert_eq!(host_port("http://a").expect("ok"), "a:80");
        assert_eq!(host_port("https://a/").expect("ok"), "a:443");
        assert!(host_port("ftp://a").is_err());
    }

    #[test]
    fn upstreams() {
        let w = Weights::split(
            &SlotVersion::new("blue", "1"),
            &SlotVersion::new("green", "2"),
            25,
        );
        let c = render_upstreams("app", &w, &slots()).expect("render");
        assert!(c.contains("upstream app {\n"), "{c}");
        assert!(c.contains("server 127.0.0.1:18101 weight=75;"), "{c}");
        assert!(c.contains("server localhost:18102 weight=25;"), "{c}");
        let zero = Weights {
            routes: vec![Route {
                slot: "blue".into(),
                version: "1".into(),
                weight: 0,
            }],
        };
        assert!(render_upstreams("app", &zero, &slots()).is_err());
        let unknown = Weights::all_to(&SlotVersion::new("red", "1"));
        assert!(render_upstreams("app", &unknown, &slots()).is_err());
    }

    #[test]
    fn affinity_hashes_the_key_consistently_over_the_weights() {
        let w = Weights::split(
            &SlotVersion::new("blue", "1"),
            &SlotVersion::new("green", "2"),
            20,
        );
        let header = Affinity {
            header: Some("X-User".into()),
            cookie: None,
        };
        let r = Routing {
            affinity: Some(&header),
            canary_header: None,
            flags: None,
        };
        let c = render_with("sluice", &w, &slots(), &r).expect("render");
        assert!(
            c.contains(
                "map $http_x_user $sluice_affinity_key {\n    \"\" $request_id;\n    default \
                 $http_x_user;\n}\n"
            ),
            "{c}"
        );
        assert!(
            c.contains("upstream sluice {\n    hash $sluice_affinity_key consistent;\n"),
            "{c}"
        );
        assert!(c.contains("server 127.0.0.1:18101 weight=80;"), "{c}");
        assert!(
            c.contains("map \"\" $sluice_upstream {\n    default sluice;\n}"),
            "{c}"
        );
        let cookie = Affinity {
            header: None,
            cookie: Some("session".into()),
        };
        let r = Routing {
            affinity: Some(&cookie),
            canary_header: None,
            flags: None,
        };
        let c = render_with("my-app", &w, &slots(), &r).expect("render");
        assert!(
            c.contains("map $cookie_session $my_app_affinity_key {"),
            "{c}"
        );
        assert!(c.contains("map \"\" $my_app_upstream {"), "{c}");
        // Without routing options: the plain upstream plus the default map.
        let plain = render_with("sluice", &w, &slots(), &Routing::default()).expect("render");
        assert!(plain.starts_with(&render_upstreams("sluice", &w, &slots()).expect("r")));
        assert!(!plain.contains("hash"), "{plain}");
    }

    #[test]
    fn canary_header_routes_to_single_server_upstreams_during_a_split() {
        let (b, g) = (
            SlotVersion::new("blue", "1"),
            SlotVersion::new("green", "2"),
        );
        let header = CanaryHeader {
            name: "X-Canary".into(),
        };
        let r = Routing {
            affinity: None,
            canary_header: Some(&header),
            flags: None,
        };
        // At weight 0 the candidate is `down` in the weighted upstream but
        // still reachable with `X-Canary: always`.
        let c = render_with("sluice", &Weights::split(&b, &g, 0), &slots(), &r).expect("render");
        assert!(c.contains("server localhost:18102 down;"), "{c}");
        assert!(
            c.contains("upstream sluice__green {\n    server localhost:18102; # 2\n}"),
            "{c}"
        );
        assert!(
            c.contains("upstream sluice__blue {\n    server 127.0.0.1:18101; # 1\n}"),
            "{c}"
        );
        assert!(
            c.contains(
                "map $http_x_canary $sluice_upstream {\n    default sluice;\n    always \
                 sluice__green;\n    never sluice__blue;\n}\n"
            ),
            "{c}"
        );
        // Promoted (one route) or a rolling layout: no candidate, the
        // header changes nothing.
        for w in [
            Weights::all_to(&g),
            Weights {
                routes: vec![
                    Route {
                        slot: "blue".into(),
                        version: "1".into(),
                        weight: 1,
                    },
                    Route {
                        slot: "green".into(),
                        version: "2".into(),
                        weight: 1,
                    },
                ],
            },
        ] {
            let c = render_with("sluice", &w, &slots(), &r).expect("render");
            assert!(!c.contains("__"), "{c}");
            assert!(c.contains("map \"\" $sluice_upstream {"), "{c}");
        }
        assert_eq!(header_variable("X-Canary"), "$http_x_canary");
        assert_eq!(route_variable("a-b"), "$a_b_upstream");
    }

    #[test]
    fn the_first_flag_routes_users_after_the_canary_header() {
        let (b, g) = (
            SlotVersion::new("blue", "1"),
            SlotVersion::new("green", "2"),
        );
        let w = Weights::split(&b, &g, 5);
        let flags = Flags {
            flags: BTreeMap::from([
                ("release-2".to_string(), FlagRule::new("green", "blue", 5.5)),
                ("zzz".to_string(), FlagRule::new("blue", "green", 50.0)),
            ]),
        };
        let r = Routing {
            flags: Some(&flags),
            ..Routing::default()
        };
        let c = render_with("sluice", &w, &slots(), &r).expect("render");
        // Only the first flag by name decides; `zzz` routes nobody.
        assert!(
            c.contains(
                "split_clients \"release-2:$http_x_user\" $sluice_flag { 5.50% sluice__green; * \
                 sluice__blue; }\n"
            ),
            "{c}"
        );
        assert!(!c.contains("zzz"), "{c}");
        assert!(
            c.contains(
                "map $http_x_user $sluice_by_flag {\n    \"\" sluice;\n    default \
                 $sluice_flag;\n}\n"
            ),
            "{c}"
        );
        assert!(
            c.contains("map \"\" $sluice_upstream {\n    default $sluice_by_flag;\n}"),
            "{c}"
        );
        assert!(
            c.contains("upstream sluice__green {\n    server localhost:18102; # 2\n}"),
            "{c}"
        );
        assert_eq!(c.matches("upstream sluice__blue {").count(), 1, "{c}");
        // With a canary header: always/never first, then the flag.
        let header = CanaryHeader {
            name: "X-Canary".into(),
        };
        let r = Routing {
            canary_header: Some(&header),
            flags: Some(&flags),
            ..Routing::default()
        };
        let c = render_with("sluice", &w, &slots(), &r).expect("render");
        assert!(
            c.contains(
                "map $http_x_canary $sluice_upstream {\n    default $sluice_by_flag;\n    always \
                 sluice__green;\n    never sluice__blue;\n}\n"
            ),
            "{c}"
        );
        assert_eq!(c.matches("upstream sluice__green {").count(), 1, "{c}");
        // 0%: every user with a key to `off` (the example router does the
        // same); 100%: all to `on`.
        for (percent, body) in [
            (0.0, "{ * sluice__blue; }"),
            (100.0, "{ 100.00% sluice__green; * sluice__blue; }"),
        ] {
            let f = Flags {
                flags: BTreeMap::from([("f".to_string(), FlagRule::new("green", "blue", percent))]),
            };
            let r = Routing {
                flags: Some(&f),
                ..Routing::default()
            };
            let c = render_with("sluice", &w, &slots(), &r).expect("render");
            assert!(c.contains(body), "{c}");
        }
        // After a promote the flag's slots still get their upstreams.
        let c = render_with("sluice", &Weights::all_to(&g), &slots(), &r).expect("render");
        assert!(
            c.contains("upstream sluice__blue {\n    server 127.0.0.1:18101;\n}"),
            "{c}"
        );
    }

    #[test]
    fn bad_flags_are_refused_naming_the_problem() {
        let w = Weights::split(
            &SlotVersion::new("blue", "1"),
            &SlotVersion::new("green", "2"),
            5,
        );
        let render = |name: &str, rule: FlagRule| {
            let f = Flags {
                flags: BTreeMap::from([(name.to_string(), rule)]),
            };
            let r = Routing {
                flags: Some(&f),
                ..Routing::default()
            };
            render_with("sluice", &w, &slots(), &r).map(|_| ())
        };
        let e = render("f", FlagRule::new("green", "blue", 12.345)).expect_err("decimals");
        assert!(
            e.message()
                .contains("flag f: percent 12.345 has more than two decimals"),
            "{e}"
        );
        let e = render("a\"b", FlagRule::new("green", "blue", 5.0)).expect_err("name");
        assert!(e.message().contains("flag name"), "{e}");
        let e = render("f", FlagRule::new("red", "blue", 5.0)).expect_err("slot");
        assert!(e.message().contains("slot `red` has no URL"), "{e}");
    }

    #[test]
    fn access_log() {
        let log = concat!(
            r#"{"upstream":"127.0.0.1:18101","status":200,"request_time":0.010,"upstream_response_time":"0.008"}"#,
            "\n",
            r#"{"upstream":"127.0.0.1:18101, localhost:18102","status":500,"request_time":0.020,"upstream_response_time":"0.005, 0.012"}"#,
            "\n",
            r#"{"upstream":"","status":404,"request_time":0.000,"upstream_response_time":""}"#,
            "\nnot json\n\n"
        );
        let (s, bad) = summarize_by_slot(log, &slots());
        assert_eq!(bad, 1);
        assert_eq!(s["blue"].requests, 1);
        assert!((s["blue"].latencies_ms[0] - 8.0).abs() < 1e-9);
        assert_eq!(s["green"].errors_5xx, 1);
        assert!((s["green"].latencies_ms[0] - 12.0).abs() < 1e-9);
        assert_eq!(s["-"].statuses[&404], 1);
        assert!((s["green"].error_rate() - 1.0).abs() < 1e-9);
    }
}
