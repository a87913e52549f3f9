//! The `deploy` delivery stage of [sluice]: installs a build artifact as a
//! release on a target (`local`, `nginx`, `http`; see `docs/delivery.md`)
//! and moves traffic to it with a strategy: `recreate`, `blue-green`,
//! `rolling`, `canary` or `feature-flag`.
//!
//! ```yaml
//! deploy:
//!   uses: ../../dist/plugins/deploy.wasm
//!   needs: [build]
//!   environment: production
//!   with:
//!     target:
//!       kind: local
//!       root: deploy/production
//!       slots: { blue: "http://127.0.0.1:18101", green: "http://127.0.0.1:18102" }
//!     artifact: build/out/app.tgz
//!     version: ${{ stages.build.outputs.version }}
//!     strategy: blue-green
//!     health-check: { path: /health, retries: 10, interval: 500ms }
//!   grants: { workspace: write, network: ["127.0.0.1:18101", "127.0.0.1:18102"] }
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `target` | object (**required**) | `kind` (`local` default, `nginx`, `http`), `root`, `slots`, `url`, `reload`, `access-log`, `upstream`: see `docs/delivery.md` |
//! | `version` | string (**required**) | the version deployed, usually `${{ stages.build.outputs.version }}`; letters, digits, `.`, `_`, `+`, `-` |
//! | `artifact` | string | the input artifact: `stage/name` or a glob over them. Default: the only input, or the only `.tar.gz`/`.tgz` input |
//! | `strategy` | `recreate` (default) \| `blue-green` \| `rolling` \| `canary` \| `feature-flag` | see below |
//! | `auto-promote` | bool | blue-green: switch traffic after the pre-promotion checks (default `true`); `false` leaves the new slot as `candidate` for later stages |
//! | `instances` | integer | rolling (**required**): number of instances, slots `instance-0` … `instance-<n-1>` |
//! | `batch-size` / `max-unavailable` | integer or `"N%"` | rolling: instances per batch, a count or a percentage of `instances` (ceil, at least 1; default 1; give one of the two) |
//! | `pause` | duration | rolling: wait between successful batches (not after the last); the batch is health-checked again after it |
//! | `initial-weight` | 0–100 | canary: the candidate's first traffic weight (default 0) |
//! | `flag` | string | feature-flag: flag name (default `release-<version>`) |
//! | `initial-percent` | 0–100 | feature-flag: share of user keys in the flag (default 0) |
//! | `health-check` | bool or object | probe of the new slot: `GET <slot url><path>` must answer 200 and, with `check-version` (default true), `GET /version` must name the version. Object keys: `path` (`/health`), `check-version`, `timeout` (`5s`), `retries` (5), `interval` (`1s`). Off by default except for rolling |
//!
//! Unknown keys, and keys of another strategy, are rejected. The same
//! schema is published by `describe` (`sluice plugin inspect --json`).
//!
//! # Strategies
//!
//! - `recreate`: slot `main` points at the new release and takes all
//!   traffic; the old version is kept as `previous`.
//! - `blue-green`: the new release goes to the idle slot (`green` when
//!   `blue` is stable, else `blue`); `health-check` is the pre-promotion
//!   check; then traffic switches and the old slot stays as `previous` for
//!   instant rollback. With `auto-promote: false`, or when the check
//!   fails, the new slot stays `candidate` at weight 0.
//! - `rolling`: the release is installed once; batch after batch the
//!   instance slots are pointed at it and health-checked (their URLs come
//!   from `target.slots`). When a batch fails, every instance moved so far
//!   goes back to its old version, the failing gate `deploy.rolling` names
//!   the batch, and the output `failed-batch` gives its number (1-based);
//!   the state then names the old version as `stable` (on `instance-0`)
//!   and records the failed release as `bad`, so `remediate` has nothing
//!   left to roll back.
//! - `canary`: the release goes to the idle slot as `candidate` with
//!   weight `initial-weight`; the `canary` stage moves it on.
//! - `feature-flag`: the release goes to the idle slot as `candidate`
//!   behind flag `flag` at `initial-percent` (consistent bucketing, see
//!   `sluice_delivery::flags`).
//!
//! The very first deploy of blue-green, canary or feature-flag (no stable
//! version yet) goes to `blue` and takes all traffic.
//!
//! A deploy of the version that is already stable keeps `previous` (the
//! rollback target). Every deploy records the release in `state.json`'s
//! `releases` (verdict `unknown`, with the run id); a stable release that a
//! new version replaces becomes `good` when it was not judged yet.
//!
//! # Grants
//!
//! - `workspace: write` for `local` and `nginx` (everything is under `root`).
//! - `network: [<host:port>]` for every slot URL probed and the `http`
//!   target's `url`.
//! - `exec: [nginx]` (the reload program) for `nginx`.
//!
//! # What it reports
//!
//! Outputs: `environment` (the stage's `environment:`, else the last part
//! of `target.root`), `version`, `previous-version` (empty if none),
//! `slot` (where the new version went), `url` (that slot's URL, if
//! known), `stable-slot` (what serves production traffic afterwards),
//! `strategy`; `flag` for feature-flag, `failed-batch` for a failed
//! rolling deploy.
//!
//! Metrics: `deploy.duration_s`; `deploy.health_attempts`,
//! `deploy.health_ms` with a health check; `deploy.weight` (canary,
//! blue-green not promoted); `deploy.flag_percent`; rolling:
//! `deploy.instances`, `deploy.batches`, `deploy.batches_completed`,
//! `deploy.rolled_back` (0/1).
//!
//! Gates: `deploy.health` / `deploy.pre-promotion` / `deploy.rolling` fail
//! when the new version is unhealthy (the state then says exactly what
//! serves, so `remediate` can act).
//!
//! # Outcomes
//!
//! | situation | result |
//! |---|---|
//! | deployed (and healthy, when checked) | passed, with the outputs above |
//! | health check failed | a report with a failing gate; traffic is not moved to an unhealthy blue-green / canary slot; rolling rolls back |
//! | no matching input artifact | `invalid config` listing the inputs |
//! | archive entry escaping the release dir | `failed`, nothing installed |
//! | missing grant | `denied`, naming the grant |
//! | webhook answered non-2xx / nginx reload failed | `failed` with the body / nginx's stderr |
//! | bad `with:` | `invalid config`, naming the key and the fix |
//!
//! [sluice]: https://example.invalid/sluice

pub mod config;
pub mod outcome;
pub mod probe;
pub mod rolling;
pub mod select;
pub mod slots;
mod stage;

use sluice_sdk::prelude::*;

/// The `deploy` stage.
pub struct DeployStage;

impl Stage for DeployStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "deploy",
            env!("CARGO_PKG_VERSION"),
            "deploy",
            "Deploys a build artifact to a local, nginx or http target: recreate, blue-green, rolling, canary or feature-flag",
        )
        .config_schema(config::schema())
        .capability(Capability::WorkspaceWrite)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(DeployStage);
