//! Machine output: one JSON object per line on stdout, `"event"` naming the
//! kind. Each line is an [`Event`] serialised as it is (its `Serialize` is
//! the wire form) plus `ts`, the time the line was written; `run_started`
//! also carries `v`, the version of the event schema. The schema is
//! published in `docs/events.schema.json` and described in
//! `docs/events.md`: within a version, fields may be added, never renamed
//! or removed.

use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use super::{Event, Reporter};

/// The version of the event schema (`v` on `run_started`).
pub const SCHEMA_VERSION: u32 = 1;

/// Writes events as JSON lines.
pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
}

impl JsonLines {
    /// Write to stdout.
    pub fn stdout() -> JsonLines {
        JsonLines {
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }
}

/// One line of `--json` output: the event's own fields, then `ts` (and `v`
/// on `run_started`).
#[derive(Debug, Serialize)]
pub struct Line<'e, 'a> {
    /// The event (`"event"` and its fields).
    #[serde(flatten)]
    pub event: &'e Event<'a>,
    /// When the line was written: RFC 3339, UTC, with microseconds (a
    /// no-op stage starts and finishes within a millisecond, and tools that
    /// time stages from the events need to see it).
    pub ts: String,
    /// The schema version, on `run_started` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
}

impl<'e, 'a> Line<'e, 'a> {
    /// `event` stamped with `at`.
    pub fn new(event: &'e Event<'a>, at: SystemTime) -> Line<'e, 'a> {
        Line {
            event,
            ts: humantime::format_rfc3339_micros(at).to_string(),
            v: matches!(event, Event::RunStarted { .. }).then_some(SCHEMA_VERSION),
        }
    }
}

/// The JSON line of `event` written at `at`, without its newline.
pub fn to_line(event: &Event<'_>, at: SystemTime) -> String {
    // An event holds strings, numbers, booleans and maps with string keys
    // only, so serialising it cannot fail; should it ever, a warning says
    // so rather than the line vanishing.
    serde_json::to_string(&Line::new(event, at)).unwrap_or_else(|e| {
        let message = format!("an event could not be written: {e}");
        serde_json::to_string(&Line::new(&Event::Warning { message: &message }, at))
            .unwrap_or_default()
    })
}

impl Reporter for JsonLines {
    fn event(&self, event: &Event<'_>) {
        let line = to_line(event, SystemTime::now());
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use sluice_engine::report::LogLevel;
    use sluice_pipeline::gates::{GateResult, GateSource, Verdict};
    use sluice_record::artifacts::ArtifactRecord;
    use sluice_record::{MetricRecord, RunRecord, RunStatus, StageRecord, StageState};
    use std::time::{Duration, UNIX_EPOCH};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn schema() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
        let text = std::fs::read_to_string(path).expect("docs/events.schema.json");
        serde_json::from_str(&text).expect("the schema is JSON")
    }

    fn stage(state: StageState) -> StageRecord {
        let mut r = StageRecord::pending("build");
        r.state = state;
        r.attempts = 2;
        r.duration_ms = Some(1234);
        r.reason = Some("exit 1".into());
        r.summary = Some("3 passed".into());
        r.verdict = Some(Verdict::Warn);
        r.metrics.push(MetricRecord {
            name: "tests.failed".into(),
            value: 0.5,
            unit: Some("count".into()),
        });
        r.gates.push(GateResult {
            name: "tests.failed".into(),
            source: GateSource::Pipeline,
            verdict: Verdict::Warn,
            observed: Some(0.5),
            condition: Some("<= 0".into()),
            message: "tests.failed = 0.5 (<= 0)".into(),
        });
        r.outputs.insert("version".into(), "1.2.3".into());
        r.artifacts.push(ArtifactRecord {
            name: "dist/app.tar.gz".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 42,
            media_type: "application/octet-stream".into(),
            role: None,
            annotations: Default::default(),
        });
        r
    }

    fn run_record() -> RunRecord {
        let mut stages = IndexMap::new();
        stages.insert("build".to_owned(), stage(StageState::Warned));
        stages.insert("deploy".to_owned(), StageRecord::pending("deploy"));
        RunRecord {
            status: RunStatus::Paused,
            created_at: "2026-12-07T04:05:06Z".into(),
            updated_at: "2026-12-07T04:05:06Z".into(),
            ..RunRecord::new("r-1", "p", "/p/sluice.yaml", "sha256:00", stages)
        }
    }

    /// One of each variant; the `match` makes a new variant a compile
    /// error here until it is added to the list (and so to the schema).
    fn every_event<'a>(
        finished: &'a StageRecord,
        run: &'a RunRecord,
        fields: &'a [(String, String)],
    ) -> Vec<Event<'a>> {
        let events = vec![
            Event::RunStarted {
                run_id: "r-1",
                pipeline: "p",
                stages: 2,
                jobs: 4,
                resumed: false,
            },
            Event::PluginLoaded {
                reference: "plugins/a.wasm",
                digest: DIGEST,
                cached: true,
                millis: 3,
            },
            Event::Warning { message: "careful" },
            Event::StageStarted {
                stage: "build",
                attempt: 1,
            },
            Event::StageLog {
                stage: "build",
                line: "compiling\u{1b}[2J",
                level: None,
                fields: &[],
            },
            Event::StageRetrying {
                stage: "build",
                attempt: 2,
                of: 3,
                reason: "trap",
            },
            Event::StageFinished {
                stage: "build",
                record: finished,
            },
            Event::StageSkipped {
                stage: "deploy",
                reason: "`when:` did not hold",
            },
            Event::StageCancelled {
                stage: "deploy",
                reason: "cancelled: another stage failed",
            },
            Event::StageAwaitingApproval {
                stage: "deploy",
                run_id: "r-1",
            },
            Event::RunFinished { record: run },
            // Added in v1 without breaking it: appended, so the indices
            // above stay those of `lines_keep_the_field_names…`.
            Event::StageLog {
                stage: "build",
                line: "cache miss",
                level: Some(LogLevel::Warn),
                fields,
            },
            Event::StageProgress {
                stage: "build",
                done: 3,
                total: Some(10),
                message: "compiling",
            },
            Event::StageProgress {
                stage: "build",
                done: 7,
                total: None,
                message: "",
            },
            Event::StageAssigned {
                stage: "build",
                agent: "a1",
            },
        ];
        for e in &events {
            match e {
                Event::RunStarted { .. }
                | Event::PluginLoaded { .. }
                | Event::Warning { .. }
                | Event::StageStarted { .. }
                | Event::StageLog { .. }
                | Event::StageProgress { .. }
                | Event::StageAssigned { .. }
                | Event::StageRetrying { .. }
                | Event::StageFinished { .. }
                | Event::StageSkipped { .. }
                | Event::StageCancelled { .. }
                | Event::StageAwaitingApproval { .. }
                | Event::RunFinished { .. } => {}
            }
        }
        events
    }

    fn fields() -> Vec<(String, String)> {
        vec![
            ("key".to_string(), "sha256:ab".to_string()),
            ("dir".to_string(), "target".to_string()),
        ]
    }

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_796_616_306_123_456)
    }

    #[test]
    fn every_event_validates_against_the_published_schema() {
        let schema = schema();
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        let finished = stage(StageState::Warned);
        let run = run_record();
        let fields = fields();
        let events = every_event(&finished, &run, &fields);
        let mut names = Vec::new();
        for event in &events {
            let line = to_line(event, at());
            let value: serde_json::Value = serde_json::from_str(&line).expect("a line is JSON");
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{line}:\n{}", errors.join("\n"));
            let name = value["event"].as_str().expect("event").to_owned();
            // Every field printed is documented: the schema is open for
            // consumers (fields may be added), so this is checked here.
            let documented = &schema["$defs"][&name]["properties"];
            assert!(documented.is_object(), "no $defs/{name} in the schema");
            for key in value.as_object().expect("object").keys() {
                assert!(
                    documented.get(key).is_some() || schema["properties"].get(key).is_some(),
                    "{name}: field `{key}` is not in docs/events.schema.json"
                );
            }
            names.push(name);
        }
        // The schema does check: a field missing, a wrong value, an
        // unknown kind and a bad time are all refused.
        for bad in [
            serde_json::json!({ "event": "run_started", "ts": "2026-12-07T04:05:06.123456Z",
                "pipeline": "p", "stages": 1, "jobs": 1, "resumed": false, "v": 1 }),
            serde_json::json!({ "event": "run_finished", "ts": "2026-12-07T04:05:06.123456Z",
                "run_id": "r", "status": "passed", "stages": { "a": "bogus" } }),
            serde_json::json!({ "event": "stage_exploded", "ts": "2026-12-07T04:05:06.123456Z" }),
            serde_json::json!({ "event": "warning", "ts": "yesterday", "message": "m" }),
        ] {
            assert!(!validator.is_valid(&bad), "accepted {bad}");
        }
        // Every kind the schema lists is one the runner emits.
        let listed: Vec<String> = schema["properties"]["event"]["enum"]
            .as_array()
            .expect("event enum")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort();
        assert_eq!(sorted, listed_sorted);
    }

    #[test]
    fn a_stage_run_on_an_agent_names_it_and_its_lost_executions() {
        let schema = schema();
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        let mut remote = stage(StageState::Passed);
        remote.agent = Some("a2".into());
        remote.lost.push(sluice_record::LostExecution {
            agent: "a1".into(),
            at: "2026-12-07T13:00:00Z".into(),
        });
        let line = to_line(
            &Event::StageFinished {
                stage: "build",
                record: &remote,
            },
            at(),
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert!(validator.is_valid(&value), "{line}");
        assert_eq!(value["agent"], "a2");
        assert_eq!(
            value["lost"],
            serde_json::json!([{ "agent": "a1", "at": "2026-12-07T13:00:00Z" }])
        );
        // A local stage's line has neither field.
        let local = stage(StageState::Passed);
        let line = to_line(
            &Event::StageFinished {
                stage: "build",
                record: &local,
            },
            at(),
        );
        assert!(
            !line.contains("\"agent\"") && !line.contains("\"lost\""),
            "{line}"
        );
    }

    #[test]
    fn lines_keep_the_field_names_and_values_of_before() {
        let finished = stage(StageState::Warned);
        let run = run_record();
        let json = |e: &Event<'_>| -> serde_json::Value {
            serde_json::from_str(&to_line(e, at())).expect("json")
        };
        let fields = fields();
        let events = every_event(&finished, &run, &fields);
        let ts = "2026-12-07T04:05:06.123456Z";
        assert_eq!(
            json(&events[0]),
            serde_json::json!({
                "event": "run_started", "ts": ts, "v": 1, "run_id": "r-1", "pipeline": "p",
                "stages": 2, "jobs": 4, "resumed": false })
        );
        assert_eq!(
            json(&events[1]),
            serde_json::json!({
                "event": "plugin_loaded", "ts": ts, "plugin": "plugins/a.wasm",
                "digest": DIGEST, "cached": true, "millis": 3 })
        );
        assert_eq!(
            json(&events[2]),
            serde_json::json!({ "event": "warning", "ts": ts, "message": "careful" })
        );
        assert_eq!(
            json(&events[3]),
            serde_json::json!({ "event": "stage_started", "ts": ts, "stage": "build", "attempt": 1 })
        );
        // Log lines are data here: not escaped as for a terminal.
        assert_eq!(
            json(&events[4]),
            serde_json::json!({ "event": "stage_log", "ts": ts, "stage": "build", "line": "compiling\u{1b}[2J" })
        );
        assert_eq!(
            json(&events[5]),
            serde_json::json!({
                "event": "stage_retrying", "ts": ts, "stage": "build", "attempt": 2,
                "attempts": 3, "reason": "trap" })
        );
        assert_eq!(
            json(&events[6]),
            serde_json::json!({
                "event": "stage_finished", "ts": ts, "stage": "build", "state": finished.state,
                "duration_ms": finished.duration_ms, "reason": finished.reason,
                "verdict": finished.verdict, "gates": finished.gates, "metrics": finished.metrics,
                "outputs": finished.outputs, "artifacts": finished.artifacts,
                "attempts": finished.attempts })
        );
        let pending = StageRecord::pending("x");
        let unset = json(&Event::StageFinished {
            stage: "x",
            record: &pending,
        });
        for field in ["duration_ms", "reason", "verdict"] {
            assert!(unset[field].is_null(), "{field}: {unset}");
        }
        assert_eq!(
            json(&events[7]),
            serde_json::json!({ "event": "stage_skipped", "ts": ts, "stage": "deploy", "reason": "`when:` did not hold" })
        );
        assert_eq!(
            json(&events[8]),
            serde_json::json!({ "event": "stage_cancelled", "ts": ts, "stage": "deploy", "reason": "cancelled: another stage failed" })
        );
        assert_eq!(
            json(&events[9]),
            serde_json::json!({ "event": "stage_awaiting_approval", "ts": ts, "stage": "deploy", "run_id": "r-1" })
        );
        assert_eq!(
            json(&events[10]),
            serde_json::json!({
                "event": "run_finished", "ts": ts, "run_id": "r-1", "status": "paused",
                "stages": { "build": "warned", "deploy": "pending" } })
        );
        assert_eq!(
            json(&events[11]),
            serde_json::json!({
                "event": "stage_log", "ts": ts, "stage": "build", "line": "cache miss",
                "level": "warn", "fields": { "key": "sha256:ab", "dir": "target" } })
        );
        assert_eq!(
            json(&events[12]),
            serde_json::json!({
                "event": "stage_progress", "ts": ts, "stage": "build", "done": 3,
                "total": 10, "message": "compiling" })
        );
        assert_eq!(
            json(&events[13]),
            serde_json::json!({
                "event": "stage_progress", "ts": ts, "stage": "build", "done": 7,
                "total": null, "message": "" })
        );
        assert_eq!(
            json(&events[14]),
            serde_json::json!({
                "event": "stage_assigned", "ts": ts, "stage": "build", "agent": "a1" })
        );
        // `event` comes first, so a reader can dispatch before parsing on.
        assert!(to_line(&events[3], at()).starts_with(r#"{"event":"stage_started","#));
    }
}
