//! One run of the stage: run every probe through the SDK's HTTP client,
//! write `smoke.json` and `smoke-summary.md`, and build the report.

use std::time::{Duration, Instant};

use sluice_sdk::http::{HttpError, Method, Request};
use sluice_sdk::{Capability, Context, Report, StageError};

use crate::check::Observed;
use crate::config::{Probe, Settings};
use crate::probe::{self, Backoff, SendError, Transport};
use crate::results::Results;

/// Response bodies larger than this fail the probe.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The SDK's blocking client and the guest's clock.
struct SdkTransport;

impl Transport for SdkTransport {
    fn send(&mut self, p: &Probe, timeout: Duration) -> Result<Observed, SendError> {
        let mut req = Request::new(method(&p.method), p.url.clone())
            .timeout(timeout)
            .max_response_bytes(MAX_BODY);
        for (k, v) in &p.headers {
            req = req.header(k.clone(), v.clone());
        }
        if let Some(body) = &p.body {
            req = req.body(body.clone());
        }
        let started = Instant::now();
        match req.send() {
            Ok(resp) => Ok(Observed {
                status: resp.status,
                body: resp.body,
                latency: started.elapsed(),
            }),
            Err(HttpError::Denied(m)) => Err(SendError::Denied(m)),
            Err(e) => Err(SendError::Failed(e.to_string())),
        }
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let s = Settings::from_context(ctx)?;
    let backoff = Backoff {
        first: s.backoff,
        max: s.max_backoff,
    };
    let mut transport = SdkTransport;
    let mut done = Vec::with_capacity(s.probes.len());
    for p in &s.probes {
        sluice_sdk::info!("probe {}: {} {}", p.name, p.method, p.url);
        let r = probe::run(&mut transport, p, s.timeout, backoff).map_err(|d| {
            sluice_sdk::error!("probe {}: {} {}: refused", p.name, p.method, p.url);
            StageError::denied(Capability::Network(d.0))
        })?;
        done.push(r);
    }
    let results = Results::new(s.base_url.clone(), done);
    ctx.write_artifact("smoke.json", results.to_json(), "application/json")?;
    ctx.write_artifact("smoke-summary.md", results.markdown(), "text/markdown")?;
    for line in results.table().lines() {
        sluice_sdk::info!("{line}");
    }
    sluice_sdk::info!("{}", results.headline());

    let mut report = Report::new(results.headline())
        .metric("smoke.passed", results.passed as f64)
        .metric("smoke.failed", results.failed as f64)
        .metric("smoke.total", (results.passed + results.failed) as f64);
    if let Some(p95) = results.p95_ms {
        report = report.metric_with_unit("smoke.p95_ms", p95, "ms");
    }
    for g in results.gates() {
        report = report.gate(g);
    }
    if let Some(base) = &s.base_url {
        report = report.output("url", base.clone());
    }
    Ok(report
        .output("passed", results.passed.to_string())
        .output("failed", results.failed.to_string()))
}
