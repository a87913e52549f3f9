//! Machine output: one JSON object per line on stdout, `"event"` naming the
//! kind. Field names are stable; new fields may be added.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::{Event, Reporter};

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

/// The JSON form of an event.
pub fn to_json(event: &Event<'_>) -> Value {
    // Microseconds: a no-op stage starts and finishes within a millisecond,
    // and tools that time stages from the events need to see it.
    let ts = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    match event {
        Event::RunStarted {
            run_id,
            pipeline,
            stages,
            jobs,
            resumed,
        } => json!({
            "event": "run_started", "ts": ts, "run_id": run_id, "pipeline": pipeline,
            "stages": stages, "jobs": jobs, "resumed": resumed }),
        Event::PluginLoaded {
            reference,
            digest,
            cached,
            millis,
        } => json!({
            "event": "plugin_loaded", "ts": ts, "plugin": reference, "digest": digest,
            "cached": cached, "millis": millis }),
        Event::Warning { message } => json!({ "event": "warning", "ts": ts, "message": message }),
        Event::StageStarted { stage, attempt } => json!({
            "event": "stage_started", "ts": ts, "stage": stage, "attempt": attempt }),
        Event::StageLog { stage, line } => json!({
            "event": "stage_log", "ts": ts, "stage": stage, "line": line }),
        Event::StageRetrying {
            stage,
            attempt,
            of,
            reason,
        } => json!({
            "event": "stage_retrying", "ts": ts, "stage": stage, "attempt": attempt,
            "attempts": of, "reason": reason }),
        Event::StageFinished { stage, record } => json!({
            "event": "stage_finished", "ts": ts, "stage": stage, "state": record.state,
            "duration_ms": record.duration_ms, "reason": record.reason, "verdict": record.verdict,
            "gates": record.gates, "metrics": record.metrics, "outputs": record.outputs,
            "artifacts": record.artifacts, "attempts": record.attempts }),
        Event::StageSkipped { stage, reason } => json!({
            "event": "stage_skipped", "ts": ts, "stage": stage, "reason": reason }),
        Event::StageCancelled { stage, reason } => json!({
            "event": "stage_cancelled", "ts": ts, "stage": stage, "reason": reason }),
        Event::StageAwaitingApproval { stage, run_id } => json!({
            "event": "stage_awaiting_approval", "ts": ts, "stage": stage, "run_id": run_id }),
        Event::RunFinished { record } => json!({
            "event": "run_finished", "ts": ts, "run_id": record.run_id, "status": record.status,
            "stages": record.stages.iter().map(|(n, r)| (n.clone(), json!(r.state))).collect::<serde_json::Map<String, Value>>() }),
    }
}

impl Reporter for JsonLines {
    fn event(&self, event: &Event<'_>) {
        let value = to_json(event);
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }
}
