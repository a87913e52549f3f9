//! The `nginx` target's protocol: the weighted `upstream` block written to
//! `<root>/nginx/upstreams.conf`, the granted reload command, and the JSON
//! access log (`log_format sluice`, docs/delivery.md) read back into
//! per-upstream counts, status codes and latencies.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_sdk::StageError;

use crate::state::{FlagRule, Weights};

/// Feature flags on the `nginx` target: nginx routes by the weighted
/// `upstream` block only, and nothing reads `flags.json` there, so a flag
/// that would send users anywhere (percent above 0) is refused instead of
/// being written and silently ignored. Setting a flag to 0% (turning it
/// off, as a rollback does) is allowed: it routes nobody.
///
/// ```
/// use sluice_delivery::{nginx::check_flag, FlagRule};
/// let rule = |percent| FlagRule { on: "green".into(), off: "blue".into(), percent };
/// assert!(check_flag("release-2.0.0", &rule(0.0)).is_ok());
/// let e = check_flag("release-2.0.0", &rule(10.0)).unwrap_err();
/// assert!(e.message().contains("not supported on the nginx target"));
/// ```
pub fn check_flag(flag: &str, rule: &FlagRule) -> Result<(), StageError> {
    if rule.percent > 0.0 {
        return Err(StageError::invalid_config(format!(
            "feature flags are not supported on the nginx target; use weights (flag {flag} at \
             {}% to slot {}: nginx routes by the weighted upstream only and would ignore it)",
            rule.percent, rule.on
        )));
    }
    Ok(())
}

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
    use crate::state::{Route, SlotVersion};

    fn slots() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("blue".into(), "http://127.0.0.1:18101".into()),
            ("green".into(), "http://localhost:18102/".into()),
        ])
    }

    #[test]
    fn flags_are_refused_unless_off() {
        let rule = |percent| FlagRule {
            on: "green".into(),
            off: "blue".into(),
            percent,
        };
        let e = check_flag("f", &rule(30.0)).expect_err("refused");
        assert!(
            e.message()
                .starts_with("feature flags are not supported on the nginx target; use weights"),
            "{}",
            e.message()
        );
        assert!(check_flag("f", &rule(0.0)).is_ok());
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
