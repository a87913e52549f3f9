//! The `monitor` delivery stage of [sluice]: watches a release for a window
//! after promotion and checks its SLOs — error rate, p95 latency,
//! availability — the multiwindow, multi-burn-rate alerts of the Google SRE
//! workbook (a fired page alert fails, a fired ticket alert warns) and the
//! error budget left over the SLO period (a `window: 0s` look can gate a
//! deploy on it). The numbers
//! come from a Prometheus server's HTTP API or from scraping a `/metrics`
//! endpoint in Prometheus text format directly.
//!
//! ```yaml
//! monitor:
//!   uses: ../../dist/plugins/monitor.wasm
//!   needs: [canary]
//!   with:
//!     window: 60s
//!     interval: 5s
//!     source:
//!       prometheus:
//!         address: http://127.0.0.1:9090
//!         queries:
//!           error-rate: sum(rate(http_requests_total{status=~"5.."}[{{window}}])) / sum(rate(http_requests_total[{{window}}]))
//!           p95-latency: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[{{window}}])))
//!           availability: avg_over_time(up{job="quote"}[{{window}}])
//!     slo: { error-rate: 1%, p95-latency: 300ms, availability: 99%, target: 99.9% }
//!     burn-rate: { long-window: 1h, short-window: 5m, threshold: 14.4 }
//!   grants: { network: ["127.0.0.1:*"] }
//! ```
//!
//! or, with no Prometheus server:
//!
//! ```yaml
//!     source:
//!       scrape:
//!         url: http://127.0.0.1:18100/metrics
//!         exclude: { path: [/metrics] }
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `source` | map (**required**) | Exactly one of `prometheus` or `scrape` (below). |
//! | `window` | duration | How long to watch (default `60s`). `0s` takes one look (Prometheus) or one interval (scrape: rates need two scrapes). |
//! | `interval` | duration | Time between samples (default `5s`). |
//! | `samples` | integer | Watch this many intervals instead of a `window` (not both). |
//! | `timeout` | duration | Per HTTP request (default `10s`). |
//! | `failure-limit` | integer | Samples breaching an SLO tolerated (Argo Rollouts' `failureLimit`): one more fails the stage at once, without waiting out the window (default `2`; `0`: the first breach). |
//! | `target` | map | The deployment target (see `docs/delivery.md`): its `weights.json` gives the exposure share. |
//! | `version` | string | The watched release (default: the target state's candidate, else stable). |
//! | `slo.error-rate` | percent | Highest acceptable share of failed requests (`1`, `"1%"`). |
//! | `slo.p95-latency` | latency | Highest acceptable 95th percentile (`300`, `"300ms"`, `"0.3s"`). |
//! | `slo.availability` | percent | Lowest acceptable share of successful requests (`99`, `"99.5%"`). |
//! | `slo.target` | percent | The SLO objective (`"99.9%"`): the budget is `1 - target`; needed by the alerts and the budget. |
//! | `slo-period` | duration | The budget's period (default `30d`). |
//! | `alerts` | `workbook` or list | Burn-rate alerts (default with `slo.target`: `workbook` = page 14.4× 1h/5m, page 6× 6h/30m, ticket 3× 1d/2h, ticket 1× 3d/6h); each `{long, short, factor, severity: page|ticket}`. Not with `burn-rate`. |
//! | `burn-rate.long-window` | duration | The one-alert form (gate `burn-rate`, page). Default `1h`. |
//! | `burn-rate.short-window` | duration | Default `5m`; not longer than the long window. |
//! | `burn-rate.threshold` | number | Burn rate that alerts (default `14.4`: 2% of a 30-day budget in an hour). |
//!
//! `source.prometheus`:
//!
//! | key | meaning |
//! |---|---|
//! | `address` | Base URL of the server (`http://127.0.0.1:9090`). |
//! | `queries.error-rate` | PromQL giving the ratio (0–1) of failed requests. |
//! | `queries.p95-latency` | PromQL giving the 95th percentile latency in **seconds** (as `histogram_quantile` over `_seconds` buckets does). |
//! | `queries.availability` | PromQL giving the ratio (0–1) of successful requests or up targets. |
//! | `queries.budget` | PromQL giving the ratio (0–1) of failed requests over `{{window}}` = `slo-period` (default: `error-rate` with that window). |
//!
//! At least one query. `{{window}}` in a query is replaced by a PromQL
//! duration: the watch window (at least one interval) for the SLO values,
//! and each burn-rate window for the burn rates. Every interval the queries
//! run as instant queries (`/api/v1/query`, logged as they come); at the end
//! each runs as a range query (`/api/v1/query_range` from the start to the
//! end of the watch, step = interval) and the window's value is the mean of
//! its points. With `0s`, the single instant value is the window's value.
//! A query must give one number (a scalar or a one-series vector; aggregate
//! with `sum()`); no data or `NaN` (0/0 without traffic) means "not
//! measured". A query Prometheus rejects fails the stage as invalid config
//! with Prometheus' `errorType` and message; an answer that is not the API's
//! JSON fails it naming the address.
//!
//! Burn rates with Prometheus: with `{{window}}` in the error-rate query,
//! one instant query per burn window; without it, a range query over the
//! long window (step = interval, or longer to stay under 10 000 points)
//! whose mean is the long window's ratio and whose points in the last
//! short window give the short one.
//!
//! `source.scrape`:
//!
//! | key | meaning |
//! |---|---|
//! | `url` | The `/metrics` URL. |
//! | `requests` | Counter of requests (default `http_requests_total`). |
//! | `status-label` | Label with the response status (default: `code`, `status` or `status_code`, whichever the series have). |
//! | `error-status` | Statuses counted as errors: codes or classes (default `[5xx]`). |
//! | `latency` | Latency histogram (default `http_request_duration_seconds`; a name ending `_milliseconds` or `_ms` is read as ms, anything else as seconds). |
//! | `labels` | Only series with these label values (`{path: /quote}`). |
//! | `exclude` | Leave out series whose label has one of these values (`{path: [/metrics, /health]}`). |
//!
//! The endpoint is scraped at the start and every interval. Rates come
//! from counter increases between consecutive scrapes, with Prometheus'
//! reset rule (a counter that drops restarted from zero; a new series
//! counts from zero). The error rate is Σerrors / Σrequests over the
//! window; p95 is `histogram_quantile(0.95, …)` over the window's bucket
//! increases summed across series, computed exactly as PromQL does;
//! availability is the share of successful requests times the share of
//! successful scrapes (a scrape that fails or answers non-2xx counts as
//! down). The burn windows are the last intervals that fit in each window
//! (the whole watch when a window is longer); the `burn-rate` message names
//! the time they covered and, when it differs, the configured windows ("…
//! over 6s and … over 1s (…; configured 1h and 5m, scaled to the watch)").
//! Alert windows longer than the watch are scaled to it first (long = the
//! watch, short keeping its ratio). The error budget is over the watch.
//! A malformed exposition fails
//! the stage naming the line.
//!
//! Every sample is judged as it comes: once more than `failure-limit`
//! samples breached `slo.error-rate`, `slo.p95-latency` or
//! `slo.availability`, the watch stops and the stage fails (gate
//! `failure-limit`), instead of keeping the release's traffic for the rest
//! of the window.
//!
//! Unknown keys are rejected; the same schema is published by `describe`.
//!
//! # Grants
//!
//! `network` for the Prometheus server or the scraped endpoint. `workspace: read` with a
//! `local` or `nginx` `target` (its `weights.json` and `state.json`).
//!
//! # What it reports
//!
//! Metrics (each only when measured): `monitor.error_rate` (%),
//! `monitor.p95_ms` (ms), `monitor.availability` (%),
//! `monitor.burn_rate_long`, `monitor.burn_rate_short` (the first alert's;
//! burn = error ratio / (1 − target)), `monitor.burn_rate_page` /
//! `monitor.burn_rate_ticket` (highest alert burn per severity),
//! `monitor.alerts_fired_page` / `monitor.alerts_fired_ticket`,
//! `monitor.error_budget_remaining` / `monitor.error_budget_consumed` (%),
//! `monitor.requests` (scrape), `monitor.samples`,
//! `monitor.breaching_samples`, and the exposure: `monitor.exposure_seconds`
//! (from the release's first traffic in this run, per the target's
//! `history.jsonl`, else the watch start, to the decision) and
//! `monitor.exposure_share` (the release's share of the target's
//! `weights.json`; 1.0 without a target).
//!
//! Gates: `failure-limit` (first, when an SLO is configured), then one per configured SLO: `error-rate` (max), `p95-latency` (max),
//! `availability` (min), each with observed vs threshold, and
//! one per burn-rate alert (`burn-rate`, or `burn-rate-<severity>-<long>-<short>`):
//! firing when both windows burn faster than the factor (observed = the
//! smaller of the two): fail for a page, warn for a ticket. A value that could not be measured
//! makes its gate *inconclusive*, which blocks like a failure unless the
//! pipeline says `on-fail: warn`.
//!
//! Artifact: `monitor.json` (`application/json`): source, window, every
//! sample, the window's values (or why each is missing), the gates and any
//! notes (Prometheus warnings, failed scrapes).
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | `with:` wire types, validation into `Settings`, the JSON Schema |
//! | [`values`] | durations, percentages, latencies, PromQL durations |
//! | [`promtext`] | the Prometheus text exposition parser (shared with `canary`, from `sluice-delivery`) |
//! | [`scrape`] | snapshots, counter increases with resets, `histogram_quantile` |
//! | [`promapi`] | Prometheus HTTP API URLs and answers (success, errors, shapes) |
//! | [`watch`] | the sampling loops for both sources (behind an `Env` trait) |
//! | [`slo`] | SLO gates, the multi-burn-rate alerts, the error budget |
//! | [`exposure`] | the release's first traffic in this run (`history.jsonl`) |
//! | `stage` | the SDK glue: HTTP client, clocks, `monitor.json`, report |
//!
//! [sluice]: https://example.invalid/sluice

pub mod config;
pub mod exposure;
pub mod promapi;
pub use sluice_delivery::promtext;
pub mod scrape;
pub mod slo;
mod stage;
pub mod values;
pub mod watch;

use sluice_sdk::prelude::*;

/// The `monitor` stage.
pub struct MonitorStage;

impl Stage for MonitorStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "monitor",
            env!("CARGO_PKG_VERSION"),
            "monitor",
            "Watches error rate, p95 latency, availability and error-budget burn rates after a promotion",
        )
        .config_schema(sluice_delivery::schema_with_target(config::SCHEMA))
        .capability(Capability::network("127.0.0.1:*"))
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(MonitorStage);
