//! `sluice-delivery`: the targets shared by the sluice delivery stages
//! (`deploy`, `smoke`, `canary`, `monitor`, `remediate`). A library, not a
//! stage. The contract it implements is `docs/delivery.md`.
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | the `target:` block ([`TargetConfig`]), its validation and JSON schema |
//! | [`target`] | [`Target`]: install, point slots, state, weights, flags, rollback, history |
//! | [`state`] | the data files: [`State`], [`Weights`], [`Flags`], [`HistoryEntry`], [`ReleaseInfo`] |
//! | [`history`] | reading `history.jsonl` back: times, the routing it describes, a release's first exposure |
//! | [`release`] | unpacking / copying an artifact into `releases/<version>` ([`ArtifactFile`]) |
//! | [`fsutil`] | atomic writes, atomic symlink switch (WASI `symlink-at` inside the component) |
//! | [`nginx`] | upstream blocks (weights, affinity, header and flag routing), reload, JSON access-log parsing |
//! | [`webhook`] | the `http` target's JSON API |
//! | [`health`] | health / version probes of a slot URL ([`HealthCheck`]) |
//! | [`promtext`] | Prometheus text exposition parser (`/metrics` pages), for `monitor` and `canary` |
//! | [`flags`] | consistent percentage bucketing ([`flags::in_rollout`]; nginx's `split_clients` bucket, [`flags::nginx_bucket`]) |
//!
//! ```no_run
//! use sluice_delivery::{ArtifactFile, SlotVersion, Target, TargetConfig, Weights};
//! # fn f(ctx: &sluice_sdk::Context, cfg: &TargetConfig) -> Result<(), sluice_sdk::StageError> {
//! let target = Target::open(cfg, &ctx.workspace(), "production")?.with_stage(ctx.stage());
//! let art = ArtifactFile::from_input(ctx, &ctx.inputs()[0]);
//! target.deploy(&art, "2.0.0", "green")?;
//! let mut state = target.read_state()?;
//! let stable = state.stable.clone().unwrap_or_else(|| SlotVersion::new("blue", "1.0.0"));
//! let candidate = SlotVersion::new("green", "2.0.0");
//! target.set_weights(&Weights::split(&stable, &candidate, 10))?;
//! state.candidate = Some(candidate);
//! target.write_state(&mut state)?;
//! # Ok(()) }
//! ```
//!
//! Errors are [`sluice_sdk::StageError`]: bad configuration is
//! `invalid config` naming the key, a missing grant `denied`, the rest
//! `failed` with the file, URL or command concerned.

pub mod config;
pub mod flags;
pub mod fsutil;
pub mod health;
pub mod history;
pub mod nginx;
pub mod promtext;
pub mod release;
pub mod state;
pub mod target;
pub mod webhook;

pub use config::{schema_with_target, TargetConfig, TargetKind, TARGET_SCHEMA};
pub use health::{HealthCheck, HealthOutcome};
pub use release::ArtifactFile;
pub use state::{
    FlagRule, Flags, HistoryEntry, ReleaseInfo, ReleaseRecord, Route, SlotVersion, State, Verdict,
    Weights,
};
pub use target::{environment_name, Deployed, RolledBack, Target};

/// Checks a version or slot name: it becomes a single path component, so
/// only letters, digits, `.`, `_`, `+` and `-`, not starting with `.`.
///
/// ```
/// assert!(sluice_delivery::check_name("2.0.0-rc.1+build5").is_ok());
/// assert!(sluice_delivery::check_name("../x").is_err());
/// ```
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.starts_with('.') {
        return Err(format!("`{name}` must not start with `.`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        return Err(format!(
            "`{name}` contains `{c}`; use letters, digits, `.`, `_`, `+` and `-` only"
        ));
    }
    Ok(())
}
