//! When the watched release first got traffic in this run: the first entry
//! of the target's `history.jsonl` written by this run after which a slot
//! serving the release has traffic (a `weights` split giving it weight, or
//! the deciding flag sending users to it), found by replaying the history
//! as `remediate` does ([`sluice_delivery::history`]).

use std::collections::BTreeSet;
use std::time::SystemTime;

use sluice_delivery::history::{first_exposure, parse_time, HistoryRouting};
use sluice_delivery::HistoryEntry;

/// The first entry of `history` written by `run_id` after which `version`
/// has traffic ([`HistoryRouting::routes_to`] a slot serving it). A slot
/// serves `version` when the history last put it there or, for slots no
/// history entry names, when it is one of `known_slots` (the slots the
/// target's state says serve `version`).
pub fn first_traffic<'a>(
    history: &'a [HistoryEntry],
    version: &str,
    known_slots: &BTreeSet<String>,
    run_id: &str,
) -> Option<&'a HistoryEntry> {
    first_exposure(
        history,
        |_, h| h.run_id.as_deref() == Some(run_id),
        |routing: &HistoryRouting| {
            routing.routes_to(|slot| match routing.version_on(slot) {
                Some(v) => v == version,
                None => known_slots.contains(slot),
            })
        },
    )
}

/// A history time (milliseconds or whole seconds) as Unix seconds.
pub fn unix_seconds(at: &str) -> Option<f64> {
    parse_time(at)?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(
        at: &str,
        action: &str,
        slot: &str,
        version: &str,
        detail: &str,
        run: &str,
    ) -> HistoryEntry {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        HistoryEntry {
            at: at.into(),
            action: action.into(),
            slot: opt(slot),
            version: opt(version),
            detail: opt(detail),
            run_id: opt(run),
            ..HistoryEntry::default()
        }
    }

    #[test]
    fn the_first_entry_of_this_run_routing_traffic_to_the_release() {
        let history = [
            // An earlier run put 2.0.0 on green and gave it traffic.
            h(
                "2026-11-22T05:00:00.000Z",
                "deploy",
                "green",
                "2.0.0",
                "",
                "old",
            ),
            h(
                "2026-11-22T05:00:01.000Z",
                "weights",
                "",
                "",
                "blue=50 green=50",
                "old",
            ),
            h(
                "2026-11-22T05:00:02.000Z",
                "weights",
                "",
                "",
                "blue=100 green=0",
                "old",
            ),
            // This run: install (no traffic), then a 10% canary step.
            h(
                "2026-11-22T06:00:00.000Z",
                "deploy",
                "green",
                "2.1.0",
                "",
                "r1",
            ),
            h(
                "2026-11-22T06:00:01.500Z",
                "weights",
                "",
                "",
                "blue=90 green=10",
                "r1",
            ),
            h(
                "2026-11-22T06:00:03.000Z",
                "weights",
                "",
                "",
                "blue=50 green=50",
                "r1",
            ),
        ];
        let none = BTreeSet::new();
        let e = first_traffic(&history, "2.1.0", &none, "r1");
        assert_eq!(e.map(|e| e.at.as_str()), Some("2026-11-22T06:00:01.500Z"));
        // 2.0.0 was exposed by another run only.
        assert!(first_traffic(&history, "2.0.0", &none, "r1").is_none());
        assert!(first_traffic(&history, "2.1.0", &none, "r2").is_none());
    }

    #[test]
    fn flags_and_slots_known_from_the_state_count() {
        let history = [h(
            "2026-11-22T06:00:00Z",
            "flag",
            "",
            "",
            "new-pricing 5% on=green off=blue",
            "r1",
        )];
        let green: BTreeSet<String> = ["green".to_string()].into();
        assert_eq!(
            first_traffic(&history, "2.1.0", &green, "r1").map(|e| e.action.as_str()),
            Some("flag")
        );
        assert!(first_traffic(&history, "2.1.0", &BTreeSet::new(), "r1").is_none());
        let removed = [h("t", "flag", "", "", "new-pricing removed", "r1")];
        assert!(first_traffic(&removed, "2.1.0", &green, "r1").is_none());
    }

    #[test]
    fn history_times_parse_with_and_without_milliseconds() {
        let a = unix_seconds("2026-11-22T06:00:01.500Z").unwrap_or_default();
        let b = unix_seconds("2026-11-22T06:00:00Z").unwrap_or_default();
        assert!((a - b - 1.5).abs() < 1e-9, "{a} {b}");
        assert!(unix_seconds("yesterday").is_none());
    }
}
