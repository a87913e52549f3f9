//! Attacks on the runner's limits: `recurse`, `huge-report`, `exec-spam`,
//! `exit-zero`.

use std::sync::atomic::{AtomicU64, Ordering};

use sluice_sdk::prelude::*;

use crate::config::With;

static DEPTH: AtomicU64 = AtomicU64::new(0);

/// One small wasm frame per call: no locals whose address is taken (so
/// nothing on the shadow stack in linear memory), and work after the call
/// (so it is not turned into a loop).
#[inline(never)]
fn dive() -> u64 {
    let depth = DEPTH.fetch_add(1, Ordering::Relaxed);
    if depth == u64::MAX {
        return depth;
    }
    let below = dive();
    DEPTH.fetch_sub(1, Ordering::Relaxed);
    below.wrapping_add(1)
}

/// `recurse`: unbounded recursion with small frames; only the wasm stack
/// limit stops it (with a trap). Never returns normally.
pub fn recurse() -> Result<Report, StageError> {
    let n = dive();
    Ok(Report::new(format!("recursion ended at {n}?")))
}

/// `huge-report`: an oversized report. `with.metrics: N` reports N distinct
/// metrics (`m.0`, `m.1`, ...); `with.summary_bytes: N` a summary of N bytes;
/// `with.gates: N` N passing gates (`g.0`, ...); `with.duplicate_gates:
/// true` two gates both named `dup-gate`. Passes (as far as the plugin is
/// concerned).
pub fn huge_report(c: &With<'_>) -> Result<Report, StageError> {
    let summary_bytes = c.count("summary_bytes", 0) as usize;
    let mut report = Report::new(if summary_bytes > 0 {
        "s".repeat(summary_bytes)
    } else {
        "huge report".to_string()
    });
    let metrics = c.count("metrics", 0);
    report.metrics.reserve(metrics as usize);
    for i in 0..metrics {
        report = report.metric(format!("m.{i}"), i as f64);
    }
    for i in 0..c.count("gates", 0) {
        report = report.gate(Gate::pass(format!("g.{i}"), "fine"));
    }
    if c.flag("duplicate_gates") {
        report = report
            .gate(Gate::pass("dup-gate", "first"))
            .gate(Gate::fail("dup-gate", "second"));
    }
    Ok(report)
}

/// `exec-spam`: `with.calls` (default 20000) exec calls of a program whose
/// name is `with.name_len` (default 1000) bytes of `z` — never granted.
/// Errors are ignored; then passes. Each denial the runner logs or prints
/// is a line an attacker controls.
pub fn exec_spam(c: &With<'_>) -> Result<Report, StageError> {
    let calls = c.count("calls", 20_000);
    let name = "z".repeat(c.count("name_len", 1000) as usize);
    let mut denied = 0u64;
    for _ in 0..calls {
        if sluice_sdk::exec::run(&name, std::iter::empty::<&str>()).is_err() {
            denied += 1;
        }
    }
    Ok(
        Report::new(format!("{denied} of {calls} exec calls refused"))
            .metric("exec.denied", denied as f64),
    )
}

/// `exit-zero`: `std::process::exit(0)` from inside `run` (WASI
/// `exit(ok)`): the guest never returns a report.
pub fn exit_zero() -> Result<Report, StageError> {
    sluice_sdk::info!("exiting with status 0 instead of returning a report");
    std::process::exit(0);
}
