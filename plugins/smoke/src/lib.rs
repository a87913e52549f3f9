//! The `smoke` delivery stage of [sluice]: HTTP probes against a new
//! release (usually the idle slot that `deploy` just filled) before it takes
//! traffic. Each probe checks the status, the body, values at JSON pointers
//! and the latency, and is retried with exponential back-off while the
//! service warms up.
//!
//! ```yaml
//! smoke:
//!   uses: ../../dist/plugins/smoke.wasm
//!   needs: [deploy]
//!   with:
//!     base-url: ${{ stages.deploy.outputs.url }}
//!     timeout: 2s
//!     retries: { attempts: 5, backoff: 200ms, max: 2s }
//!     probes:
//!       - { name: health, path: /health, json: { /status: ok }, max-latency: 300ms }
//!       - { name: version, path: /version, json: { /version: "${{ stages.deploy.outputs.version }}" } }
//!       - name: quote
//!         path: /quote?sku=A-100&qty=3
//!         expect-status: [200]
//!         body-contains: total
//!   grants: { network: ["127.0.0.1:*"] }
//!   gates:
//!     - { metric: smoke.failed, max: 0 }
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `probes` | list (**required**, non-empty) | The probes, run in order (keys below). |
//! | `base-url` | URL | What probe `path`s are relative to, usually `${{ stages.deploy.outputs.url }}`. A path is appended to it (`http://h/app` + `/health` = `http://h/app/health`). |
//! | `timeout` | duration | Per request: connect, first byte and between bytes (default `10s`). |
//! | `retries` | number, or `{attempts, backoff, max}` | Extra attempts for a probe whose checks fail or that gets no response (default 0, at most 20). |
//! | `backoff` | duration | Wait before the first retry, doubled after each (default `200ms`); or `retries.backoff`. |
//! | `max-backoff` | duration | Longest wait between attempts (default `5s`); or `retries.max`. |
//! | `headers` | map | Headers sent with every probe. |
//!
//! Each probe:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `name` | string | Name in gates, logs and results (default `METHOD path`); unique. |
//! | `method` | string | HTTP method (default `GET`). |
//! | `url` / `path` | string | An absolute `http(s)` URL, or a path relative to `base-url`: exactly one. |
//! | `headers` | map | Request headers (override `with.headers` of the same name). |
//! | `body` | any | Request body: a string is sent as is; anything else as JSON with `content-type: application/json`. |
//! | `expect-status` | status or list | Accepted statuses: codes (`200`) or classes (`"2xx"`) (default `200`). |
//! | `body-contains` | string or list | Text(s) the body must contain. |
//! | `json` | map | JSON pointer (RFC 6901) → expected value, compared as JSON (`1` equals `1.0`), e.g. `{/status: ok, /items/0/id: 7}`. |
//! | `max-latency` | duration | Slowest acceptable response (request sent → body read), e.g. `300ms`. |
//! | `retries` | number | This probe's retries (overrides the count of `with.retries`). |
//!
//! Durations are `"200ms"`, `"5s"`, `"1m"`: a unit is required (the
//! grammar is the runner's, see `docs/values.md`). Unknown keys are
//! rejected; the same schema is published by `describe` (`sluice plugin
//! inspect --json dist/plugins/smoke.wasm`).
//!
//! # Grants
//!
//! `network` for every `host:port` probed (`127.0.0.1:*` for a local
//! environment). Nothing else.
//!
//! # What it reports
//!
//! Metrics: `smoke.passed`, `smoke.failed`, `smoke.total`, `smoke.p95_ms`
//! (nearest-rank 95th percentile of the probes' last response times; not
//! reported when no probe got a response).
//!
//! Gates: `probe <name>` fails for each failing probe, its message listing
//! every failed check as `check: observed …, expected …` (status with a body
//! excerpt, body text, each JSON pointer, latency, or the request error),
//! with the first numeric pair (status or latency) as observed/threshold.
//!
//! Outputs: `passed`, `failed`, and `url` (the base URL).
//!
//! Artifacts: `smoke.json` (`application/json`: base URL, counts, p95 and,
//! per probe, method, URL, result, attempts, status, latency, back-off waits
//! and failed checks) and `smoke-summary.md` (the same as a table, also
//! printed to the log).
//!
//! # Outcomes
//!
//! | situation | result |
//! |---|---|
//! | every probe passes | passed |
//! | a probe still fails after its retries | a failing gate `probe <name>`: the stage is blocked |
//! | no response (refused, timeout) | a failed check `request` (retried like any failure) |
//! | destination not in `grants.network` | `denied`, naming the probe and the grant |
//! | bad `with:` (unknown key, bad URL, path without base-url…) | `invalid config`, naming the key and the fix |
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | `with:` wire types, validation into `Settings`, the JSON Schema |
//! | [`values`] | durations, expected statuses, `retries` forms |
//! | [`check`] | one response against a probe's checks (observed vs expected) |
//! | [`probe`] | sending with retries and exponential back-off (behind a `Transport` trait) |
//! | [`results`] | counts, nearest-rank p95, gates, `smoke.json` and the summary table |
//! | `stage` | the SDK glue: HTTP client, artifacts, report |
//!
//! [sluice]: https://example.invalid/sluice

pub mod check;
pub mod config;
pub mod probe;
pub mod results;
mod stage;
pub mod values;

use sluice_sdk::prelude::*;

/// The `smoke` stage.
pub struct SmokeStage;

impl Stage for SmokeStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "smoke",
            env!("CARGO_PKG_VERSION"),
            "smoke",
            "HTTP probes (status, body, JSON pointers, latency) with retries against a new release",
        )
        .config_schema(config::SCHEMA)
        .capability(Capability::network("127.0.0.1:*"))
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(SmokeStage);
