//! Reading `history.jsonl` back: its times ([`parse_time`]), the routing
//! it describes entry by entry ([`HistoryRouting`]) and the entry after
//! which a release first got traffic ([`first_exposure`]). `monitor`
//! (exposure of the watched release) and `remediate` (the incident's
//! `exposed_at` and exposure share) read the history the same way.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::state::{Flags, HistoryEntry, SlotVersion, Weights};

/// Parses a history time: RFC 3339 with milliseconds (written now) or
/// whole seconds (older files), any offset handled by humantime's weak
/// parser as UTC.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .ok()
        .or_else(|| humantime::parse_rfc3339(s).ok())
}

/// The environment's routing as the history says, replayed entry by entry
/// ([`HistoryRouting::apply`]): `point` and `deploy` set a slot's version,
/// `weights` (`slot=N …`) the split, `flag` (`name P% on=S off=T`, or
/// `name removed …`) a flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryRouting {
    versions: BTreeMap<String, String>,
    weights: BTreeMap<String, u32>,
    /// name → (on slot, off slot, percent); sorted by name, as the
    /// router reads them.
    flags: BTreeMap<String, (String, String, f64)>,
}

impl HistoryRouting {
    /// The routing `weights.json` and `flags.json` describe (slot
    /// versions from the routes).
    pub fn from_files(weights: &Weights, flags: &Flags) -> Self {
        HistoryRouting {
            versions: weights
                .routes
                .iter()
                .map(|r| (r.slot.clone(), r.version.clone()))
                .collect(),
            weights: weights
                .routes
                .iter()
                .map(|r| (r.slot.clone(), r.weight))
                .collect(),
            flags: flags
                .flags
                .iter()
                .map(|(n, f)| (n.clone(), (f.on.clone(), f.off.clone(), f.percent)))
                .collect(),
        }
    }

    /// Applies one history entry.
    pub fn apply(&mut self, h: &HistoryEntry) {
        match h.action.as_str() {
            "point" | "deploy" => {
                if let (Some(slot), Some(v)) = (&h.slot, &h.version) {
                    self.versions.insert(slot.clone(), v.clone());
                }
            }
            "weights" => {
                self.weights = h
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|kv| {
                        let (slot, w) = kv.split_once('=')?;
                        Some((slot.to_string(), w.parse().ok()?))
                    })
                    .collect();
            }
            "flag" => {
                let words: Vec<&str> = h
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                match words.as_slice() {
                    [name, "removed", ..] => {
                        self.flags.remove(*name);
                    }
                    [name, pct, on, rest @ ..] => {
                        let off = rest
                            .first()
                            .and_then(|o| o.strip_prefix("off="))
                            .unwrap_or_default();
                        if let (Some(p), Some(on)) = (
                            pct.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()),
                            on.strip_prefix("on="),
                        ) {
                            self.flags
                                .insert(name.to_string(), (on.to_string(), off.to_string(), p));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The version the history last put on `slot`, if it named one.
    pub fn version_on(&self, slot: &str) -> Option<&str> {
        self.versions.get(slot).map(String::as_str)
    }

    /// Whether `bad`'s slot serves its version (a slot whose version no
    /// entry named is taken to serve it).
    pub fn serves(&self, bad: &SlotVersion) -> bool {
        self.version_on(&bad.slot).is_none_or(|v| v == bad.version)
    }

    /// The share (0–1) of the traffic `bad`'s slot gets: the larger of
    /// its share of the weights and the share of the users the router's
    /// first flag (by name: it decides for every user with an id) sends
    /// to it (`percent` through `on`, the rest through `off`). 0 when the
    /// slot does not serve `bad`.
    pub fn share(&self, bad: &SlotVersion) -> f64 {
        if !self.serves(bad) {
            return 0.0;
        }
        let total: u32 = self.weights.values().sum();
        let by_weight = match self.weights.get(&bad.slot) {
            Some(w) if total > 0 => f64::from(*w) / f64::from(total),
            _ => 0.0,
        };
        let by_flag = self.flags.values().next().map_or(0.0, |(on, off, p)| {
            let p = (p / 100.0).clamp(0.0, 1.0);
            let mut share = 0.0;
            if *on == bad.slot {
                share += p;
            }
            if *off == bad.slot {
                share += 1.0 - p;
            }
            share
        });
        by_weight.max(by_flag)
    }

    /// Whether a slot `serves` accepts gets requests: it has weight in the
    /// split, or the flag that decides (the first by name, as the routers
    /// pick it; see [`HistoryRouting::share`]) sends users to it — its `on`
    /// slot above 0%, its `off` slot below 100%.
    pub fn routes_to(&self, serves: impl Fn(&str) -> bool) -> bool {
        self.weights.iter().any(|(slot, w)| *w > 0 && serves(slot))
            || self
                .flags
                .values()
                .next()
                .is_some_and(|(on, off, p)| (*p > 0.0 && serves(on)) || (*p < 100.0 && serves(off)))
    }
}

/// The first entry of `history`, among those `eligible(index, entry)`
/// accepts (this run's), after which the replayed routing
/// ([`HistoryRouting`], over the whole history) satisfies `exposed`.
pub fn first_exposure(
    history: &[HistoryEntry],
    eligible: impl Fn(usize, &HistoryEntry) -> bool,
    exposed: impl Fn(&HistoryRouting) -> bool,
) -> Option<&HistoryEntry> {
    let mut routing = HistoryRouting::default();
    for (i, h) in history.iter().enumerate() {
        routing.apply(h);
        if eligible(i, h) && exposed(&routing) {
            return Some(h);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(action: &str, slot: &str, version: &str, detail: &str) -> HistoryEntry {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        HistoryEntry {
            at: "2026-11-22T06:00:00Z".into(),
            action: action.into(),
            slot: opt(slot),
            version: opt(version),
            detail: opt(detail),
            ..HistoryEntry::default()
        }
    }

    #[test]
    fn replay_follows_points_weights_and_the_first_flag() {
        let green = SlotVersion::new("green", "2");
        let mut r = HistoryRouting::default();
        // No entry named green's version yet: taken to serve it.
        assert!(r.serves(&green));
        r.apply(&h("deploy", "green", "2", ""));
        r.apply(&h("weights", "", "", "blue=75 green=25"));
        assert_eq!(r.version_on("green"), Some("2"));
        assert!((r.share(&green) - 0.25).abs() < 1e-9);
        assert!(r.routes_to(|s| s == "green"));
        // The first flag by name decides: 5% on green, the rest off blue.
        r.apply(&h("weights", "", "", "blue=100 green=0"));
        r.apply(&h("flag", "", "", "a 5% on=green off=blue"));
        r.apply(&h("flag", "", "", "b 90% on=green off=blue"));
        assert!((r.share(&green) - 0.05).abs() < 1e-9);
        r.apply(&h("flag", "", "", "a removed (was 5% on=green off=blue)"));
        assert!((r.share(&green) - 0.9).abs() < 1e-9);
        r.apply(&h("flag", "", "", "b removed"));
        assert_eq!(r.share(&green), 0.0);
        assert!(!r.routes_to(|s| s == "green"));
        // Pointing green elsewhere: it no longer serves 2.
        r.apply(&h("weights", "", "", "blue=0 green=100"));
        r.apply(&h("point", "green", "1", ""));
        assert_eq!(r.share(&green), 0.0);
    }

    /// `routes_to` asks what the routers do: only the first flag decides,
    /// and its `off` slot gets the users it does not turn on.
    #[test]
    fn routes_to_follows_the_deciding_flag_both_ways() {
        let mut r = HistoryRouting::default();
        r.apply(&h("weights", "", "", "blue=100 green=0"));
        // A second flag turning green on does nothing: `a` decides.
        r.apply(&h("flag", "", "", "a 0% on=blue off=red"));
        r.apply(&h("flag", "", "", "b 50% on=green off=blue"));
        assert!(!r.routes_to(|s| s == "green"));
        // Users outside `a` go to its off slot.
        assert!(r.routes_to(|s| s == "red"));
        r.apply(&h("flag", "", "", "a 100% on=blue off=red"));
        assert!(!r.routes_to(|s| s == "red"));
    }

    #[test]
    fn routing_from_the_files() {
        let (b, g) = (
            SlotVersion::new("blue", "1"),
            SlotVersion::new("green", "2"),
        );
        let r = HistoryRouting::from_files(&Weights::split(&b, &g, 10), &Flags::default());
        assert!((r.share(&g) - 0.1).abs() < 1e-9);
        assert!(!r.serves(&SlotVersion::new("green", "3")));
    }

    #[test]
    fn first_exposure_counts_eligible_entries_only() {
        let history = [
            h("deploy", "green", "2", ""),
            h("weights", "", "", "blue=90 green=10"),
            h("weights", "", "", "blue=50 green=50"),
        ];
        let bad = SlotVersion::new("green", "2");
        let exposed = |r: &HistoryRouting| r.share(&bad) > 0.0;
        let first = first_exposure(&history, |_, _| true, exposed);
        assert_eq!(
            first.and_then(|e| e.detail.as_deref()),
            Some("blue=90 green=10")
        );
        let later = first_exposure(&history, |i, _| i >= 2, exposed);
        assert_eq!(
            later.and_then(|e| e.detail.as_deref()),
            Some("blue=50 green=50")
        );
        assert!(first_exposure(&history[..1], |_, _| true, exposed).is_none());
    }

    #[test]
    fn history_times_with_and_without_milliseconds() {
        let secs = |s: &str| {
            parse_time(s)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        };
        let a = secs("2026-11-22T06:00:01.500Z").unwrap_or_default();
        let b = secs("2026-11-22T06:00:00Z").unwrap_or_default();
        assert!((a - b - 1.5).abs() < 1e-9, "{a} {b}");
        assert!(parse_time("yesterday").is_none());
    }
}
