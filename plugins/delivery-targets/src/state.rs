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
    /// The run (`run_id` of the stage context) that wrote the state last,
    /// when the writer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The releases deployed to the environment with their verdicts, oldest
    /// first, at most [`MAX_RELEASES`] (older files without it load as
    /// empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseRecord>,
}

/// How many entries [`State::releases`] keeps.
pub const MAX_RELEASES: usize = 20;

/// What is known about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It served production until a deploy replaced it, or a verified
    /// remediation restored it.
    Good,
    /// It was rolled back (or its traffic taken away) by a remediation.
    Bad,
    /// Not judged yet.
    #[default]
    Unknown,
}

impl Verdict {
    /// `good`, `bad` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One entry of [`State::releases`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Release version.
    pub version: String,
    /// The slot it was deployed to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Its verdict.
    #[serde(default)]
    pub verdict: Verdict,
    /// RFC 3339 time of the last change of this entry.
    #[serde(default)]
    pub at: String,
    /// The run that deployed it, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl State {
    /// The record of `version`, if any.
    pub fn release(&self, version: &str) -> Option<&ReleaseRecord> {
        self.releases.iter().find(|r| r.version == version)
    }

    /// The verdict of `version` (`Unknown` when it has no record).
    pub fn verdict(&self, version: &str) -> Verdict {
        self.release(version).map(|r| r.verdict).unwrap_or_default()
    }

    /// Records that `version` was deployed to `slot` by `run_id`: a new
    /// entry (verdict `unknown`) at the end, replacing an older entry of
    /// the same version; at most [`MAX_RELEASES`] are kept.
    pub fn note_release(&mut self, version: &str, slot: Option<&str>, run_id: Option<&str>) {
        self.releases.retain(|r| r.version != version);
        self.releases.push(ReleaseRecord {
            version: version.to_string(),
            slot: slot.map(str::to_string),
            verdict: Verdict::Unknown,
            at: now_rfc3339(),
            run_id: run_id.map(str::to_string),
        });
        let extra = self.releases.len().saturating_sub(MAX_RELEASES);
        self.releases.drain(..extra);
    }

    /// Sets the verdict of `version` (adding a record when there is none).
    pub fn set_verdict(&mut self, version: &str, slot: Option<&str>, verdict: Verdict) {
        match self.releases.iter_mut().find(|r| r.version == version) {
            Some(r) => {
                r.verdict = verdict;
                r.at = now_rfc3339();
            }
            None => {
                self.note_release(version, slot, None);
                if let Some(r) = self.releases.last_mut() {
                    r.verdict = verdict;
                }
            }
        }
    }

    /// The newest release with verdict `good` other than `except`, with
    /// its slot (`default_slot` when its record has none).
    pub fn last_good(&self, except: &str, default_slot: &str) -> Option<SlotVersion> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.verdict == Verdict::Good && r.version != except)
            .map(|r| {
                SlotVersion::new(
                    r.slot.clone().unwrap_or_else(|| default_slot.to_string()),
                    r.version.clone(),
                )
            })
    }

    /// What a rollback returns to and what it takes out of service:
    /// with a candidate, the stable release (the candidate goes); else
    /// `previous` unless it is marked bad, else the newest good release
    /// other than the stable one. The error says why there is none.
    pub fn rollback_target(&self) -> Result<(SlotVersion, Option<SlotVersion>), String> {
        if let Some(candidate) = &self.candidate {
            return match &self.stable {
                Some(stable) => Ok((stable.clone(), Some(candidate.clone()))),
                None => Err(format!(
                    "cannot roll back candidate {} {}: there is no stable version",
                    candidate.slot, candidate.version
                )),
            };
        }
        let stable_version = self.stable.as_ref().map(|s| s.version.as_str());
        let default_slot = self
            .stable
            .as_ref()
            .map(|s| s.slot.as_str())
            .unwrap_or("main");
        let usable_previous = self.previous.clone().filter(|p| {
            self.verdict(&p.version) != Verdict::Bad && Some(p.version.as_str()) != stable_version
        });
        if let Some(p) = usable_previous {
            return Ok((p, self.stable.clone()));
        }
        if let Some(good) = self.last_good(stable_version.unwrap_or(""), default_slot) {
            return Ok((good, self.stable.clone()));
        }
        let bad: Vec<&str> = self
            .releases
            .iter()
            .filter(|r| r.verdict == Verdict::Bad)
            .map(|r| r.version.as_str())
            .collect();
        Err(format!(
            "nothing to roll back to: the state of {} has no candidate and no known-good release \
             other than the stable one{}{}",
            if self.environment.is_empty() {
                "the environment"
            } else {
                &self.environment
            },
            stable_version
                .map(|v| format!(" ({v})"))
                .unwrap_or_default(),
            if bad.is_empty() {
                String::new()
            } else {
                format!("; known bad: {}", bad.join(", "))
            }
        ))
    }
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

    /// Weight 1 to each of `instances` (a rolling deploy's instances share
    /// the traffic evenly).
    pub fn even(instances: &[SlotVersion]) -> Self {
        Self {
            routes: instances
                .iter()
                .map(|i| Route {
                    slot: i.slot.clone(),
                    version: i.version.clone(),
                    weight: 1,
                })
                .collect(),
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

impl FlagRule {
    /// `FlagRule { on, off, percent }`.
    pub fn new(on: impl Into<String>, off: impl Into<String>, percent: f64) -> Self {
        Self {
            on: on.into(),
            off: off.into(),
            percent,
        }
    }
}

/// `flags.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Flags {
    /// Flags by name.
    #[serde(default)]
    pub flags: BTreeMap<String, FlagRule>,
}

impl Flags {
    /// The flags that route users to or away from `slot` (its `on` or
    /// `off` slot is `slot`), by name.
    pub fn touching(&self, slot: &str) -> Vec<(String, FlagRule)> {
        self.flags
            .iter()
            .filter(|(_, r)| r.on == slot || r.off == slot)
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect()
    }

    /// The flags that turn `slot` on (a feature-flag candidate), by name.
    pub fn turning_on(&self, slot: &str) -> Vec<(String, FlagRule)> {
        self.flags
            .iter()
            .filter(|(_, r)| r.on == slot)
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect()
    }
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
    /// The run that made the change, when the writer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The current time as RFC 3339 (UTC, milliseconds, e.g.
/// `2026-11-22T05:00:00.123Z`). Files written before carry whole seconds;
/// readers parse both.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
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
    fn old_state_files_load_and_releases_are_bounded() {
        let mut s: State =
            serde_json::from_str(r#"{"environment":"p","stable":{"slot":"blue","version":"1"}}"#)
                .expect("old file");
        assert!(s.releases.is_empty() && s.run_id.is_none());
        for i in 0..(MAX_RELEASES + 5) {
            s.note_release(&i.to_string(), Some("blue"), Some("r"));
        }
        assert_eq!(s.releases.len(), MAX_RELEASES);
        assert_eq!(s.releases[0].version, "5");
        s.set_verdict("7", None, Verdict::Bad);
        let text = serde_json::to_string(&s).expect("json");
        assert!(text.contains(r#""verdict":"bad""#), "{text}");
        let back: State = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.verdict("7"), Verdict::Bad);
        assert_eq!(back.verdict("8"), Verdict::Unknown);
    }

    #[test]
    fn rollback_target_skips_bad_releases() {
        let mut s = State {
            environment: "production".into(),
            stable: Some(SlotVersion::new("blue", "1.0.0")),
            previous: Some(SlotVersion::new("green", "2.0.0")),
            ..State::default()
        };
        // Old files: previous is the target.
        assert_eq!(s.rollback_target().expect("t").0.version, "2.0.0");
        s.set_verdict("2.0.0", Some("green"), Verdict::Bad);
        let e = s.rollback_target().expect_err("no good release");
        assert!(e.contains("no known-good release"), "{e}");
        assert!(e.contains("known bad: 2.0.0"), "{e}");
        s.set_verdict("0.9.0", Some("green"), Verdict::Good);
        assert_eq!(
            s.rollback_target().expect("t").0,
            SlotVersion::new("green", "0.9.0")
        );
        s.candidate = Some(SlotVersion::new("green", "3.0.0"));
        assert_eq!(s.rollback_target().expect("t").0.version, "1.0.0");
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
        let now = now_rfc3339();
        assert!(now.ends_with('Z'), "{now}");
        assert_eq!(now.len(), "2026-11-22T05:00:00.123Z".len(), "{now}");
        assert!(humantime::parse_rfc3339(&now).is_ok(), "{now}");
    }
}
