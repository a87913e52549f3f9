//! The `canary` delivery stage of [sluice]: shifts traffic to a candidate
//! in steps, analyses it with Argo Rollouts semantics and a Kayenta-style
//! judge, and promotes it, aborts it (traffic back to stable) or pauses for
//! a person. The environment is a target from `docs/delivery.md`
//! (`local`, `nginx`, `http`), shared with the other delivery stages
//! through the `sluice-delivery` crate.
//!
//! ```yaml
//! canary:
//!   uses: ../../dist/plugins/canary.wasm
//!   needs: [deploy]
//!   with:
//!     target:
//!       kind: local
//!       root: deploy/production
//!       slots: { blue: "http://127.0.0.1:18101", green: "http://127.0.0.1:18102" }
//!     steps:
//!       - set-weight: 20
//!       - pause: { duration: 2s }
//!       - analysis:
//!           metrics:
//!             - name: error-rate
//!               provider: { synthetic: { measure: error-rate, requests: 20 } }
//!               success-condition: result < 0.05
//!               failure-condition: result >= 0.2
//!               interval: 1s
//!               count: 3
//!               failure-limit: 1
//!           judge:
//!             load: { requests: 50, path: / }
//!             metrics:
//!               - { name: latency, sample: latency, direction: increase, max-effect: 1.5, effect: median }
//!               - { name: errors, sample: errors, direction: increase, critical: true }
//!       - set-weight: 50
//!       - pause: {}              # wait for `sluice approve`
//!   on-inconclusive: pause       # inconclusive analysis / pause: {} waits for approval
//!   grants:
//!     workspace: write
//!     network: ["127.0.0.1:18101", "127.0.0.1:18102"]
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `target` | object (**required**) | The environment: `kind` (`local` \| `nginx` \| `http`), `root`, `slots`, … as in `docs/delivery.md`. `state.json` must have a `stable` and a `candidate`. |
//! | `steps` | list (**required**) | Each item is exactly one of `set-weight`, `pause`, `analysis`. |
//! | `steps[].set-weight` | 0–100 | Percentage of traffic to the candidate (the rest to stable), written through the target (`weights.json`, nginx upstreams, or `POST /weights`). |
//! | `steps[].pause.duration` | duration (`"30s"`, `"2m"`; a unit is required, see docs/values.md) | Sleep this long. |
//! | `steps[].pause: {}` | | Wait for approval: the stage saves its place in `<root>/canary.json` (`<workspace>/.canary-<stage>.json` for an `http` target without `root`), reports the inconclusive gate `canary.paused` and stops; re-run in the same run (after `sluice approve`), it continues with the next step. The same file is written after every completed step, so a runner killed mid-canary and resumed (`sluice run --resume`) continues at the next step with the weight it had instead of starting over. |
//! | `steps[].analysis.metrics[]` | list | Argo-style metrics (below). |
//! | `steps[].analysis.judge` | object | Kayenta-style judge (below); `judge: {}` uses every default. |
//! | `steps[].analysis.initial-delay` | duration | Argo `initialDelay`: wait before the first measurement (a pause: the background analysis keeps measuring). |
//! | `steps[].analysis.template`, `.args` | path, map | Argo `AnalysisTemplate` + `args`: a YAML file in the workspace (relative, inside it) with the keys of an inline analysis; `{{args.<name>}}` in its strings is replaced. Missing file, invalid analysis, missing or unused argument: invalid config naming the step. |
//! | `background-analysis` | object | Argo `strategy.canary.analysis`: `starting-step` (default 0), `interval` (default for its metrics), `initial-delay`, `metrics` (without `count`: until the steps end) or `template` + `args`. Measured before every step and during timed pauses; a metric (not `dry-run`) that ends Failed/Error aborts at once, even mid-pause; Inconclusive pauses and re-runs the interrupted step. See [`background`]. |
//! | `promote` | bool | Promote when every step passed (default `true`): 100% to the candidate, `state.json` stable = candidate, previous = old stable. With `false` the weights stay as the last step left them (decision `passed`). |
//!
//! ## Analysis metrics (Argo Rollouts semantics, see [`analysis`])
//!
//! | key | meaning |
//! |---|---|
//! | `name` | unique, lowercase letters, digits, `-`, `_` |
//! | `provider.prometheus` | `address` (base URL), `query` (PromQL for `/api/v1/query`), `timeout` (default 10s). `result` = the sample values of the returned vector (or the scalar). |
//! | `provider.metrics` (alias `web`) | `url` of a page in Prometheus text format, `metric` (sample name), `labels` (map the sample must carry), `timeout`. `result` = the matching sample values. |
//! | `provider.synthetic` | `measure`: `error-rate` (0–1), `latency-mean`, `latency-p50`, `latency-p95`, `latency-p99` (ms) over `requests` (default 20) `GET`s of `path` (default `/`) on `side` `canary` (default) or `baseline`; `timeout` (default 5s). |
//! | `success-condition`, `failure-condition` | conditions over `result` ([`expr`]): `result < 0.05`, `result[0] >= 0.95 && result[0] <= 1`; `result`, `result[N]`, numbers, `< <= > >= == !=`, `&& \|\| !` (or `and or not`), parentheses |
//! | `interval` | time between measurements (required when `count` > 1) |
//! | `count` | measurements (default 1) |
//! | `failure-limit` | failed measurements tolerated (default 0); one more → Failed → abort |
//! | `inconclusive-limit` | inconclusive measurements tolerated (default 0); one more → Inconclusive → pause |
//! | `consecutive-error-limit` | errors in a row tolerated (default 4); one more → Error → abort |
//! | `dry-run` | Argo `dryRun`: measured and reported (`canary.dry_run_failures`), never decides |
//!
//! Placeholders in `query` and `url`: `{{version}}` / `{{canary_version}}`,
//! `{{slot}}` / `{{canary_slot}}`, `{{canary_url}}`, `{{stable_version}}`,
//! `{{stable_slot}}`, `{{stable_url}}` (slot URLs from `target.slots`).
//!
//! ## Judge (see [`judge`] and [`stats`])
//!
//! The stage sends `load.requests` (default 100) `GET`s of `load.path`
//! (default `/`, timeout `load.timeout`, default 5s) to each of the stable
//! and candidate slot URLs, interleaved ([`load`]; this is the synthetic
//! load that makes the sample large enough when no router carries real
//! traffic), and records per request the latency (ms) and an error flag
//! (status ≥ 500 or no response). Each judge metric (`name`, `sample`:
//! `latency` \| `errors`, `direction`: `increase` (default) \| `decrease` \|
//! `either`, `effect`: `mean` (default) \| `median` \| `p95`, `max-effect`
//! ≥ 1, `critical`; `errors` always use the mean: the median of 0/1 samples
//! would hide a 30% error rate) is tested at significance `alpha` (default
//! 0.05): `errors` (any all-0/1 samples) with Fisher's exact test of the two
//! proportions, one-sided in the bad direction (`either`: twice the smaller
//! tail), exact at every count ([`stats::fisher_exact`]); `latency` with a
//! two-sided Mann-Whitney U test (exact when a side has fewer than 8 values
//! and nothing is tied, else the normal approximation with tie and
//! continuity correction, as scipy's `method="auto"`). `effect: p95` compares the 95th percentiles
//! without a test: it fails when canary p95 > baseline p95 × `max-effect`
//! (default 1.1) in the bad direction, and is inconclusive (the judge at
//! best marginal) with fewer than 20 samples on a side. Score = 100 × passed / total (0 if
//! a critical metric failed); score ≥ `pass` (default 95) passes, ≥
//! `marginal` (default 75) is inconclusive, below fails. Default metrics:
//! `latency` (`effect: median`, `max-effect: 1.5`: loopback jitter between
//! identical servers is often significant, a 50% slowdown is not jitter)
//! and `errors`, both `increase`.
//!
//! Kayenta's weighted groups: `groups: {errors: 60, latency: 40}` (weights
//! summing to 100) and a `group` on every judge metric; a group scores 100 ×
//! the share of its metrics that passed, the score is the weighted mean (0
//! if a critical metric failed). `score: {pass, marginal}` is the Kayenta
//! spelling of `pass` / `marginal`.
//!
//! With `source: access-log` (an `nginx` target with `access-log:`), the
//! samples are real traffic instead: every line of the JSON access log
//! (or, with `window: 30s`, the lines written while the stage waits that
//! long), mapped to the stable and candidate slots by upstream address.
//! Fewer than 3 requests on a side makes the judge marginal
//! (inconclusive) rather than failing.
//!
//! An analysis is Failed when a metric is Failed or Error or the judge
//! fails; Inconclusive when a metric is Inconclusive or the judge is
//! marginal; else Successful. The judge is skipped when the metrics
//! already failed.
//!
//! # Grants
//!
//! - `workspace: write`: the target's files under `root` and `canary.json`.
//! - `network`: the slot URLs' `host:port` (synthetic load and the judge),
//!   the Prometheus address, scraped pages, and an `http` target's URL.
//! - `exec: [nginx]` for an `nginx` target's reload.
//!
//! # What it reports
//!
//! Metrics: `canary.weight` (%, 100 after promotion, 0 after abort),
//! `canary.steps_completed`, `canary.score` (the last judge score),
//! `canary.<metric>.p_value` and `canary.<metric>.effect` for judge metrics
//! (`effect` left out when the baseline is 0 and the canary is not), and
//! `canary.<metric>.value` (last measurement) for analysis metrics,
//! `canary.dry_run_failures` (dry-run metrics that ended Failed/Error),
//! `canary.group.<group>.score`, and `canary.background.<metric>.value` /
//! `canary.background.dry_run_failures` for the background analysis.
//!
//! Gates: `canary.analysis` (the last analysis: pass, fail with the score
//! or the measurement as observed and the threshold it missed, or
//! inconclusive), `canary.paused` (inconclusive, at a `pause: {}`).
//!
//! Outputs: `decision` (`promoted` \| `aborted` \| `paused` \| `passed`),
//! `score` (when a judge ran), `version`, `stable_version`.
//!
//! Artifact: `canary-analysis.json` (decision, versions, and every
//! analysis with its lines, metrics, observed value and threshold, and in
//! `details` every metric's measurements and dry-run flag, the initial
//! delay, the template, and the judge's groups and per-metric Kayenta
//! classification; `background` for the background analysis) for the
//! incident report of `remediate`.
//!
//! # Outcomes
//!
//! | situation | result |
//! |---|---|
//! | every step passed | promoted (or `passed` with `promote: false`); gate `canary.analysis` pass |
//! | an analysis failed | weight back to 0 (stable 100%), `history.jsonl` action `abort`; gate `canary.analysis` fail naming the metric, scores and why; the candidate stays in `state.json` for `remediate` |
//! | an analysis was inconclusive | progress saved; gate `canary.analysis` inconclusive: with the stage's `on-inconclusive: pause` the run waits for `sluice approve` and, resumed, continues with the next step (without it the stage is blocked) |
//! | `pause: {}` | the same, with the gate `canary.paused` |
//! | no `candidate` / `stable` in `state.json` | `failed` |
//! | a destination not in `grants.network` | `denied` |
//! | bad `with:` | `invalid config`, naming the key and the fix |
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | `with:`, validation, schema |
//! | [`expr`] | the condition language |
//! | [`analysis`] | Argo measurement / metric / analysis phases, scheduling |
//! | [`stats`] | Mann-Whitney U, Fisher's exact test, normal tail, mean / median / quantile |
//! | [`judge`] | Kayenta-style per-metric verdicts and score |
//! | [`load`] | synthetic load and its samples |
//! | [`promtext`] | Prometheus text format reader (shared with `monitor`, from `sluice-delivery`) |
//! | [`providers`] | Prometheus API, scraping, synthetic measurements, placeholders |
//! | [`assess`] | one analysis step: metrics + judge → result |
//! | [`steps`] | the steps engine |
//! | [`background`] | background analysis between steps and in pauses |
//! | [`progress`] | `canary.json` |
//! | `stage` | glue: target, decision, report |
//!
//! [sluice]: https://example.invalid/sluice

pub mod analysis;
pub mod assess;
pub mod background;
pub mod config;
pub mod expr;
pub mod judge;
pub mod load;
pub mod progress;
pub use sluice_delivery::promtext;
pub mod providers;
mod stage;
pub mod stats;
pub mod steps;

use sluice_sdk::prelude::*;

/// The `canary` stage.
pub struct CanaryStage;

impl Stage for CanaryStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "canary",
            env!("CARGO_PKG_VERSION"),
            "canary",
            "Shifts traffic to a candidate in steps, analyses it (Argo semantics, Mann-Whitney judge) and promotes or aborts",
        )
        .config_schema(sluice_delivery::schema_with_target(config::SCHEMA))
        .capability(Capability::WorkspaceWrite)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(CanaryStage);
