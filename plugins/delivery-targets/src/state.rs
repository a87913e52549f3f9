//! The data files of an environment (docs/delivery.md): `state.json`,
//! `weights.json`, `flags.json`, `history.jsonl` and a release's
//! `.release.json`. Readers tolerate unknown fields so that newer writers
//! do not break older stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A slot and the version it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotVersion {
    /// Slot name (`blue`, `green`, `main`, `instance-0`, …).
    pub slot: String,
    /// Release version.
    pub version: String,
}

impl SlotVersion {
    /// `SlotVersion { slot, version }`.
    pub fn new(slot: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            slot: slot.into(),
            version: version.into(),
        }
    }
}

/// `state.json`: what serves where.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    /// Environment name.
    #[serde(default)]
    pub environment: String,
    /// Strategy of the last deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// What serves production traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<SlotVersion>,
    /// Deployed but without all the traffic yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<SlotVersion>,
    /// What a rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SlotVersion>,
    /// Rolling deploys: every instance slot and its version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<SlotVersion>,
    /// RFC 3339 time of the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// One route of `weights.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Slot name.
    pub slot: String,
    /// Version the slot serves.
    #[serde(default)]
    pub version: String,
    /// Relative weight (a request goes to a route with probability
    /// weight / sum of weights); 0 = no traffic.
    pub weight: u32,
}

/// `weights.json`: the traffic split a router applies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Weights {
    /// Routes in order.
    #[serde(default)]
    pub routes: Vec<Route>,
}

impl Weights {
    /// All traffic to one slot.
    pub fn all_to(slot: &SlotVersion) -> Self {
        Self {
            routes: vec![Route {
                slot: slot.slot.clone(),
                version: slot.version.clone(),
                weight: 100,
            }],
        }
    }

    /// `100 - candidate_weight` to `stable`, `candidate_weight` (capped at
    /// 100) to `candidate`. The candidate route is kept at weight 0 so a
    /// router knows the slot.
    pub fn split(stable: &SlotVersion, candidate: &SlotVersion, candidate_weight: u32) -> Self {
        let w = candidate_weight.min(100);
        Self {
            routes: vec![
                Route {
                    slot: stable.slot.clone(),
                    version: stable.version.clone(),
                    weight: 100 - w,
                },
                Route {
                    slot: candidate.slot.clone(),
                    version: candidate.version.clone(),
                    weight: w,
                },
            ],
        }
    }

    /// The weight of `slot` (0 when it has no route).
    pub fn weight_of(&self, slot: &str) -> u32 {
        self.routes
            .iter()
            .filter(|r| r.slot == slot)
            .map(|r| r.weight)
            .sum()
    }

    /// Sum of all weights.
    pub fn total(&self) -> u32 {
        self.routes.iter().map(|r| r.weight).sum()
    }
}

/// One flag of `flags.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRule {
    /// Slot that serves keys in the flag.
    pub on: String,
    /// Slot that serves the others.
    pub off: String,
    /// Share of keys in the flag, 0–100 (see [`crate::flags::in_rollout`]).
    pub percent: f64,
}

/// `flags.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Flags {
    /// Flags by name.
    #[serde(default)]
    pub flags: BTreeMap<String, FlagRule>,
}

/// `releases/<version>/.release.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Release version.
    pub version: String,
    /// The artifact it came from (`stage/name` or a file name).
    pub artifact: String,
    /// `sha256:<hex>` of the artifact.
    pub digest: String,
    /// RFC 3339 time of the install.
    pub deployed_at: String,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// RFC 3339 time.
    pub at: String,
    /// Environment name.
    #[serde(default)]
    pub environment: String,
    /// Who wrote it (the stage name), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// What happened: `install`, `point`, `weights`, `flag`, `promote`,
    /// `rollback`, `deploy`, …
    pub action: String,
    /// Version concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Slot concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_matches_the_documented_shape() {
        let s: State = serde_json::from_str(
            r#"{"environment":"production","strategy":"blue-green",
                "stable":{"slot":"blue","version":"1.0.0"},
                "candidate":{"slot":"green","version":"2.0.0"},
                "previous":{"slot":"green","version":"0.9.0"},
                "instances":[{"slot":"instance-0","version":"1.0.0"}],
                "updated_at":"2026-11-22T10:00:00Z","future":1}"#,
        )
        .expect("parse");
        assert_eq!(s.stable, Some(SlotVersion::new("blue", "1.0.0")));
        assert_eq!(s.instances.len(), 1);
    }

    #[test]
    fn split_weights() {
        let w = Weights::split(
            &SlotVersion::new("blue", "1"),
            &SlotVersion::new("green", "2"),
            10,
        );
        assert_eq!(w.weight_of("blue"), 90);
        assert_eq!(w.weight_of("green"), 10);
        assert_eq!(w.total(), 100);
        assert!(now_rfc3339().ends_with('Z'));
    }
}
