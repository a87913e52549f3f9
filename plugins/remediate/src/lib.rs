//! The `remediate` delivery stage of [sluice]: runs `when: failure` after a
//! delivery went wrong, puts the environment back on a known-good release
//! through the shared target library (`sluice-delivery`), verifies that with
//! health probes, and writes an incident report.
//!
//! ```yaml
//! remediate:
//!   uses: ../../dist/plugins/remediate.wasm
//!   needs: [canary, monitor]
//!   when: failure
//!   with:
//!     target: { kind: local, root: deploy/production,
//!               slots: { blue: http://127.0.0.1:18101, green: http://127.0.0.1:18102 } }
//!     action: auto
//!     verify: { url: http://127.0.0.1:18100, samples: 20 }
//!   grants: { workspace: write, network: ["127.0.0.1:*"] }
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `target` | object (**required**) | The environment, the same block as `deploy`'s (docs/delivery.md). |
//! | `action` | `auto` \| `rollback` \| `weights` \| `flag` | `rollback`: [`Target::rollback`](sluice_delivery::Target::rollback) (a candidate gives way to stable, else the previous release serves again); `weights`: all traffic to the stable slot and the candidate dropped; `flag`: the release flag to 0%; `auto` (default): flag when a flag above 0% points at the candidate, weights when there is a candidate, else rollback ([`plan`]). |
//! | `flag` | string | The flag for `action: flag` (default: the only flag above 0%). |
//! | `environment` | string | Name in the report (default: the stage's `environment:`, else `state.json`'s, else `production`). |
//! | `verify.health-path` | string | Probed on the restored slot's URL (`target.slots`), must answer 200 (default `/health`). |
//! | `verify.version-path` | string | Must answer the restored version, JSON `{"version": …}` or plain text (default `/version`; `""` skips the version check). |
//! | `verify.url` | URL | A router that must answer the restored version too, for `verify.samples` requests in a row (with no slot URL in `target.slots`, as for an `http` target, the only check). |
//! | `verify.samples` | 1–1000 | Requests through `verify.url` (default 10). |
//! | `verify.retries` | 1–1000 | Attempts before the verification fails (default 20). |
//! | `verify.interval` | duration | Between attempts (default `500ms`). |
//! | `verify.timeout` | duration | Per request (default `2s`). |
//! | `verify.enabled` | bool | `false` skips verification (status `mitigated`). |
//! | `report` | file name | Base name of the artifacts (default `incident`). |
//!
//! Unknown keys are rejected; `describe` publishes the same schema.
//!
//! # Only this run's changes
//!
//! The stage undoes what **its own run** changed, nothing else: history
//! lines and `state.json` name the run that wrote them (`run_id`). When
//! neither names this run (its build failed, say), it changes nothing and
//! passes with `nothing to remediate: this run changed nothing in
//! <environment>` (incident status `no-action`); nor does it roll back a
//! stable release this run did not deploy. When this run's release failed
//! and was already taken out of service by the deploy itself (a rolling
//! deploy that put every instance back and marked it `bad`), it passes with
//! `nothing to remediate: release <v> failed and stage deploy already
//! rolled it back …`: production already serves the last good release,
//! and a rollback never goes further back. Files without any `run_id`
//! (an older sluice) are acted on as before, with a note.
//!
//! `state.json`'s `releases` keeps each release's verdict: what is rolled
//! back (or loses its traffic or flag) becomes `bad`, what is restored and
//! verified `good`, and a rollback never returns to a bad release: it
//! goes to `previous` unless that is bad, else to the newest good release,
//! else fails saying there is none.
//!
//! # Grants
//!
//! `workspace: write` (`local`, `nginx`: the environment's files), `network`
//! for the slot URLs, `verify.url` and an `http` target, and `exec: [nginx]`
//! for an `nginx` target's reload.
//!
//! # Upstream results
//!
//! For each stage in `needs`, the runner provides the reserved outputs
//! `sluice.state`, `sluice.reason`, `sluice.gates` (JSON array of `{name,
//! verdict, observed, threshold, message}`), `sluice.started_at` and
//! `sluice.finished_at` ([`upstream`]). The `canary` stage's
//! `canary-analysis.json` (and a `monitor` stage's `monitor.json`: when
//! the first sample breached an SLO) among the inputs ([`evidence`]) adds its analyses
//! to the report and fills in the gates (and the state of an aborted
//! canary) when the runner did not provide them, saying so in the notes.
//! What is still missing is reported as "unknown".
//!
//! # What it reports
//!
//! - Artifacts `incident.md` (`text/markdown`) and `incident.json`
//!   (`application/json`, schema `sluice.incident/v1`, [`incident::Incident`]):
//!   status (`resolved`, `mitigated`, `unresolved`), what failed (stage,
//!   reason, every gate with observed vs threshold), what was deployed
//!   (`state.json` before and after), what was done and how long it took,
//!   the verification, and a timeline merged from `history.jsonl`, the
//!   upstream stages and this stage; and the postmortem ([`postmortem`]):
//!   `severity` / `severity_reason` by the rules of docs/delivery.md,
//!   `exposure_share` (the largest share of the traffic the failed release
//!   had in this run), `root_cause_hints` (most specific first; "unknown"
//!   with the stage's log when the evidence names no cause) and
//!   `action_items` (`prevent` / `detect` / `mitigate`, owner
//!   `unassigned`).
//! - Gates `remediation` (the action succeeded) and `rollback-verified`
//!   (fail when the probes did not see the restored version; warn when
//!   verification is disabled).
//! - Outputs `status`, `action`, `version`, `slot`; metrics
//!   `remediate.duration_ms`, `remediate.verify_attempts`,
//!   `remediate.time_to_recover_s` (first exposure of the failed release to
//!   verified recovery; from the first failure when the exposure is unknown).
//!
//! The report is written even when the action fails, so the incident is
//! always documented; the failing gate then blocks the stage.
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | `with:` and its validation |
//! | [`upstream`] | the upstream stages' reserved outputs |
//! | [`evidence`] | upstream artifacts: the canary's `canary-analysis.json` |
//! | [`plan`] | choosing the action from the environment's state |
//! | [`act`] | applying it through `sluice_delivery::Target` |
//! | [`verify`] | health, version and router probes |
//! | [`incident`] | the report model, timeline and markdown |
//! | [`postmortem`] | severity, exposure share, root-cause hints, action items |
//!
//! [sluice]: https://example.invalid/sluice

pub mod act;
pub mod config;
pub mod evidence;
pub mod incident;
pub mod plan;
pub mod postmortem;
mod stage;
pub mod upstream;
pub mod verify;

use sluice_sdk::prelude::*;

/// The `remediate` stage.
pub struct RemediateStage;

impl Stage for RemediateStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "remediate",
            env!("CARGO_PKG_VERSION"),
            "remediate",
            "Rolls a failed release back, verifies it with health probes, and writes an incident report",
        )
        .config_schema(sluice_delivery::schema_with_target(config::SCHEMA))
        .capability(Capability::WorkspaceWrite)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(RemediateStage);
