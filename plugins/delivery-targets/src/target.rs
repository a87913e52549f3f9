//! [`Target`]: the operations the delivery stages perform on an
//! environment, for every target kind (docs/delivery.md).
//!
//! | operation | `local` | `nginx` | `http` |
//! |---|---|---|---|
//! | [`Target::install`] | unpack into `releases/<v>` | same | — (part of `deploy`) |
//! | [`Target::point_slot`] | atomic `slots/<slot>` link switch | same | `POST /rollback` |
//! | [`Target::deploy`] | install + point | same | `POST /deploy` |
//! | [`Target::read_state`] / [`Target::write_state`] | `state.json` | same | `GET /state` / `POST /state` |
//! | [`Target::set_weights`] | `weights.json` | + `nginx/upstreams.conf` and reload | `POST /weights` |
//! | [`Target::set_flag`] / [`Target::remove_flag`] | `flags.json` | + `nginx/upstreams.conf` and reload | `POST /flags` |
//! | [`Target::rollback`] | slots, weights, flags, state | same | `POST /rollback` |
//! | [`Target::record`] | `history.jsonl` | same | `history.jsonl` when `root` is set |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;
use sluice_sdk::{Capability, ResultExt, StageError};

use crate::config::{TargetConfig, TargetKind};
use crate::release::{self, ArtifactFile};
use crate::state::{
    now_rfc3339, FlagRule, Flags, HistoryEntry, ReleaseInfo, SlotVersion, State, Verdict, Weights,
};
use crate::{fsutil, nginx, webhook};

/// Where an `nginx` target's upstreams file is, under its root.
const UPSTREAMS_CONF: &str = "nginx/upstreams.conf";

/// An environment reached through a target.
#[derive(Debug, Clone)]
pub struct Target {
    config: TargetConfig,
    workspace: PathBuf,
    root: Option<PathBuf>,
    environment: String,
    stage: Option<String>,
    run_id: Option<String>,
}

/// What [`Target::deploy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The slot that now serves `version`.
    pub slot: String,
    /// The version deployed.
    pub version: String,
    /// What the slot served before, if anything.
    pub previous_version: Option<String>,
    /// The installed release (`local`, `nginx`).
    pub release: Option<ReleaseInfo>,
}

/// What [`Target::rollback`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// What serves all traffic now.
    pub to: SlotVersion,
    /// What was taken out of service.
    pub from: Option<SlotVersion>,
    /// The steps taken, in order, for reports.
    pub actions: Vec<String>,
}

#[derive(Deserialize)]
struct DeployAnswer {
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    previous_version: Option<String>,
}

#[derive(Deserialize)]
struct RollbackAnswer {
    #[serde(default)]
    version: Option<String>,
}

impl Target {
    /// Validates `config` (as `with.target`) and opens the target.
    /// `workspace` is the workspace root (`ctx.workspace()`), `environment`
    /// the environment's name (recorded in state and history).
    pub fn open(
        config: &TargetConfig,
        workspace: &Path,
        environment: &str,
    ) -> Result<Self, StageError> {
        config.validate("with.target")?;
        Ok(Self {
            root: config.root.as_ref().map(|r| workspace.join(r)),
            workspace: workspace.to_path_buf(),
            config: config.clone(),
            environment: environment.to_string(),
            stage: None,
            run_id: None,
        })
    }

    /// [`open`](Self::open) for a stage: the workspace from `ctx`, the
    /// environment from [`environment_name`], the stage and the run named
    /// in history and state.
    pub fn from_context(
        ctx: &sluice_sdk::Context,
        config: &TargetConfig,
    ) -> Result<Self, StageError> {
        let env = environment_name(ctx.environment(), config);
        Ok(Self::open(config, &ctx.workspace(), &env)?
            .with_stage(ctx.stage())
            .with_run_id(ctx.run_id()))
    }

    /// Names the run (the stage context's `run_id`) in history entries and
    /// as `state.json`'s `run_id` when it writes the state, so that
    /// `remediate` knows what a run changed. Empty: not recorded.
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        let id = run_id.into();
        self.run_id = (!id.is_empty()).then_some(id);
        self
    }

    /// The run named in history and state, if any.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Names the stage in history entries.
    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TargetConfig {
        &self.config
    }

    /// `local`, `nginx` or `http`.
    pub fn kind(&self) -> TargetKind {
        self.config.kind
    }

    /// The environment's name.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// `<workspace>/<root>`, when configured.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn files_root(&self) -> Result<&Path, StageError> {
        match (&self.root, self.kind()) {
            (Some(r), TargetKind::Local | TargetKind::Nginx) => Ok(r),
            _ => Err(StageError::failed(format!(
                "this operation needs a local directory; the {} target has none",
                self.kind().as_str()
            ))),
        }
    }

    /// The webhook endpoint of an `http` target (URL and headers).
    fn http_url(&self) -> Option<webhook::Endpoint<'_>> {
        webhook::Endpoint::of(&self.config)
    }

    /// The base URL of `slot` from `target.slots`.
    pub fn slot_url(&self, slot: &str) -> Option<&str> {
        self.config.slots.get(slot).map(String::as_str)
    }

    /// Every slot and its URL.
    pub fn slots(&self) -> &BTreeMap<String, String> {
        &self.config.slots
    }

    /// `<root>/releases/<version>`.
    pub fn release_dir(&self, version: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("releases").join(version))
    }

    /// `<root>/slots/<slot>`.
    pub fn slot_path(&self, slot: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("slots").join(slot))
    }

    /// `<root>/state.json`.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("state.json"))
    }

    /// `<root>/weights.json`.
    pub fn weights_path(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("weights.json"))
    }

    /// `<root>/flags.json`.
    pub fn flags_path(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("flags.json"))
    }

    /// `<root>/history.jsonl`.
    pub fn history_path(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("history.jsonl"))
    }

    /// `<root>/nginx/upstreams.conf` (nginx).
    pub fn upstreams_path(&self) -> Option<PathBuf> {
        match self.kind() {
            TargetKind::Nginx => self.root.as_ref().map(|r| r.join(UPSTREAMS_CONF)),
            _ => None,
        }
    }

    /// The nginx access log in the workspace, when configured.
    pub fn access_log_path(&self) -> Option<PathBuf> {
        self.config
            .access_log
            .as_ref()
            .map(|l| self.workspace.join(l))
    }

    /// Checks that `root` can be written (creating it): a missing
    /// `workspace: write` grant becomes [`StageError::Denied`] naming it.
    /// Nothing to check for `http` without `root`.
    pub fn ensure_writable(&self) -> Result<(), StageError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let denied = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) {
                sluice_sdk::error!(
                    "cannot write {}: the {} target writes under the workspace ({e})",
                    root.display(),
                    self.kind().as_str()
                );
                StageError::denied(Capability::WorkspaceWrite)
            } else {
                StageError::from(e).with_context(format!("creating {}", root.display()))
            }
        };
        std::fs::create_dir_all(root).map_err(denied)?;
        let probe = root.join(format!(".write-check-{}", fsutil::unique()));
        std::fs::write(&probe, b"").map_err(denied)?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    /// The environment's state (an empty [`State`] before the first deploy).
    pub fn read_state(&self) -> Result<State, StageError> {
        if let Some(url) = self.http_url() {
            return webhook::get(url, "/state");
        }
        let path = self.files_root()?.join("state.json");
        let mut state: State = fsutil::read_json(&path)?.unwrap_or_default();
        if state.environment.is_empty() {
            state.environment = self.environment.clone();
        }
        Ok(state)
    }

    /// Writes the state (environment and `updated_at` are filled in).
    pub fn write_state(&self, state: &mut State) -> Result<(), StageError> {
        state.environment = self.environment.clone();
        state.updated_at = Some(now_rfc3339());
        if let Some(id) = &self.run_id {
            state.run_id = Some(id.clone());
        }
        if let Some(url) = self.http_url() {
            let _: serde_json::Value = webhook::post(url, "/state", state)?;
            return Ok(());
        }
        fsutil::write_json(&self.files_root()?.join("state.json"), state)
    }

    /// Installs `artifact` as release `version` (`local`, `nginx`).
    pub fn install(
        &self,
        artifact: &ArtifactFile,
        version: &str,
    ) -> Result<ReleaseInfo, StageError> {
        let info = release::install(&self.files_root()?.join("releases"), version, artifact)?;
        self.record("install", Some(version), None, Some(&artifact.name))?;
        Ok(info)
    }

    /// Whether release `version` is installed (`local`, `nginx`; always
    /// true for `http`, whose server keeps its releases).
    pub fn has_release(&self, version: &str) -> bool {
        match self.kind() {
            TargetKind::Http => true,
            _ => self
                .release_dir(version)
                .is_some_and(|d| d.join(".release.json").is_file()),
        }
    }

    /// The version `slot` serves, if any.
    pub fn slot_version(&self, slot: &str) -> Result<Option<String>, StageError> {
        if self.http_url().is_some() {
            let s = self.read_state()?;
            let all = [s.stable, s.candidate]
                .into_iter()
                .flatten()
                .chain(s.instances);
            return Ok(all
                .into_iter()
                .find(|sv| sv.slot == slot)
                .map(|sv| sv.version));
        }
        let link = self.files_root()?.join("slots").join(slot);
        Ok(fsutil::read_link(&link)?.and_then(|t| {
            Path::new(&t)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        }))
    }

    /// Points `slot` at release `version` (atomically), returning the
    /// version it served before. The release must be installed. For
    /// `http`: `POST /rollback` with `to_version` and `slot`.
    pub fn point_slot(&self, slot: &str, version: &str) -> Result<Option<String>, StageError> {
        crate::check_name(slot).map_err(|m| StageError::failed(format!("slot name {m}")))?;
        if let Some(url) = self.http_url() {
            let before = self.slot_version(slot)?;
            let _: RollbackAnswer = webhook::post(
                url,
                "/rollback",
                &json!({"environment": self.environment, "to_version": version, "slot": slot}),
            )?;
            self.record("point", Some(version), Some(slot), None)?;
            return Ok(before);
        }
        if !self.has_release(version) {
            return Err(StageError::failed(format!(
                "release {version} is not installed under {}",
                self.files_root()?.join("releases").display()
            )));
        }
        let before = self.slot_version(slot)?;
        let link = self.files_root()?.join("slots").join(slot);
        fsutil::replace_symlink(&link, &format!("../releases/{version}"))?;
        self.record(
            "point",
            Some(version),
            Some(slot),
            before.as_deref().map(|b| format!("was {b}")).as_deref(),
        )?;
        Ok(before)
    }

    /// Installs `artifact` as `version` and points `slot` at it
    /// (`http`: `POST /deploy`).
    pub fn deploy(
        &self,
        artifact: &ArtifactFile,
        version: &str,
        slot: &str,
    ) -> Result<Deployed, StageError> {
        if let Some(url) = self.http_url() {
            let answer: DeployAnswer = webhook::post(
                url,
                "/deploy",
                &json!({
                    "environment": self.environment,
                    "version": version,
                    "slot": slot,
                    "artifact": webhook::artifact_body(&self.config, artifact),
                }),
            )?;
            self.record("deploy", Some(version), Some(slot), Some(&artifact.name))?;
            return Ok(Deployed {
                slot: answer.slot.unwrap_or_else(|| slot.to_string()),
                version: version.to_string(),
                previous_version: answer.previous_version.filter(|v| !v.is_empty()),
                release: None,
            });
        }
        let release = self.install(artifact, version)?;
        let previous_version = self.point_slot(slot, version)?;
        Ok(Deployed {
            slot: slot.to_string(),
            version: version.to_string(),
            previous_version,
            release: Some(release),
        })
    }

    /// The current traffic split (`http`: from the state: all to stable).
    pub fn read_weights(&self) -> Result<Weights, StageError> {
        if self.http_url().is_some() {
            let s = self.read_state()?;
            return Ok(s.stable.as_ref().map(Weights::all_to).unwrap_or_default());
        }
        Ok(fsutil::read_json(&self.files_root()?.join("weights.json"))?.unwrap_or_default())
    }

    /// Applies a traffic split. Every weight 0 is refused. `nginx` also
    /// writes the upstream block and runs the reload command.
    pub fn set_weights(&self, weights: &Weights) -> Result<(), StageError> {
        if weights.total() == 0 {
            return Err(StageError::failed(
                "refusing a traffic split where every weight is 0: nothing would serve traffic",
            ));
        }
        let detail = weights
            .routes
            .iter()
            .map(|r| format!("{}={}", r.slot, r.weight))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(url) = self.http_url() {
            let _: serde_json::Value = webhook::post(url, "/weights", weights)?;
            return self.record("weights", None, None, Some(&detail));
        }
        let root = self.files_root()?;
        // Only nginx routes by flags from the generated file.
        let flags = if self.kind() == TargetKind::Nginx {
            self.read_flags()?
        } else {
            Flags::default()
        };
        let routing = self.routing(&flags);
        if self.kind() == TargetKind::Nginx {
            let conf = self.render_upstreams(weights, &routing)?;
            fsutil::write_atomic(&root.join(UPSTREAMS_CONF), conf.as_bytes())?;
        }
        self.write_routing(root, weights, &routing)?;
        fsutil::write_json(&root.join("weights.json"), weights)?;
        if self.kind() == TargetKind::Nginx {
            nginx::reload(&self.config.reload_command()).context("reloading nginx")?;
        }
        self.record("weights", None, None, Some(&detail))
    }

    /// The routing configured for this target, with `flags`.
    fn routing<'a>(&'a self, flags: &'a Flags) -> nginx::Routing<'a> {
        nginx::Routing {
            affinity: self.config.affinity.as_ref(),
            canary_header: self.config.canary_header.as_ref(),
            flags: Some(flags),
        }
    }

    /// The text of `<root>/nginx/upstreams.conf` for `weights` and `routing`.
    fn render_upstreams(
        &self,
        weights: &Weights,
        routing: &nginx::Routing<'_>,
    ) -> Result<String, StageError> {
        nginx::render_with(
            self.config.upstream_name(),
            weights,
            &self.config.slots,
            routing,
        )
    }

    /// Writes `flags` to `flags.json`; on `nginx` also the upstreams file
    /// (rendered first, so a flag nginx cannot take leaves both files as
    /// they were) and reloads. Without weights yet, nothing routes on
    /// nginx: a flag routing users is refused, removing one only writes
    /// `flags.json`.
    fn write_flags(&self, root: &Path, flags: &Flags, adds: bool) -> Result<(), StageError> {
        let path = root.join("flags.json");
        if self.kind() != TargetKind::Nginx {
            return fsutil::write_json(&path, flags);
        }
        let weights = self.read_weights()?;
        if weights.total() == 0 {
            if adds {
                return Err(StageError::failed(
                    "nginx has no traffic split yet (weights.json is empty): deploy a release \
                     before setting a flag",
                ));
            }
            return fsutil::write_json(&path, flags);
        }
        let conf = self.render_upstreams(&weights, &self.routing(flags))?;
        fsutil::write_json(&path, flags)?;
        fsutil::write_atomic(&root.join(UPSTREAMS_CONF), conf.as_bytes())?;
        nginx::reload(&self.config.reload_command()).context("reloading nginx")
    }

    /// `<root>/routing.json`, read by a router beside `weights.json`
    /// (docs/delivery.md, `affinity`, `canary-header`): written before the
    /// weights when either is configured, removed when neither is.
    fn write_routing(
        &self,
        root: &Path,
        weights: &Weights,
        routing: &nginx::Routing<'_>,
    ) -> Result<(), StageError> {
        let path = root.join("routing.json");
        if routing.affinity.is_none() && routing.canary_header.is_none() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StageError::from(e).with_context(format!("removing {}", path.display())))
                }
                _ => Ok(()),
            };
        }
        let pair = nginx::canary_pair(weights);
        let canary_header = routing.canary_header.map(|c| {
            json!({
                "name": c.name,
                "candidate": pair.map(|(_, c)| c.slot.clone()),
                "stable": pair.map(|(s, _)| s.slot.clone()),
            })
        });
        fsutil::write_json(
            &path,
            &json!({"affinity": routing.affinity, "canary_header": canary_header}),
        )
    }

    /// The feature flags (`http`: none are readable; empty).
    pub fn read_flags(&self) -> Result<Flags, StageError> {
        if self.http_url().is_some() {
            return Ok(Flags::default());
        }
        Ok(fsutil::read_json(&self.files_root()?.join("flags.json"))?.unwrap_or_default())
    }

    /// Sets flag `flag` (percent 0–100; on `nginx` at most two decimals,
    /// and the upstreams file is rewritten and nginx reloaded).
    pub fn set_flag(&self, flag: &str, rule: &FlagRule) -> Result<(), StageError> {
        if !(0.0..=100.0).contains(&rule.percent) {
            return Err(StageError::failed(format!(
                "flag {flag}: percent {} is not between 0 and 100",
                rule.percent
            )));
        }
        if self.kind() == TargetKind::Nginx {
            // nginx's split_clients takes two decimals at most.
            crate::flags::nginx_hundredths(rule.percent).map_err(|e| {
                StageError::invalid_config(format!("flag {flag} on the nginx target: percent {e}"))
            })?;
        }
        let detail = format!("{flag} {}% on={} off={}", rule.percent, rule.on, rule.off);
        if let Some(url) = self.http_url() {
            let _: serde_json::Value = webhook::post(
                url,
                "/flags",
                &json!({"flag": flag, "on": rule.on, "off": rule.off, "percent": rule.percent}),
            )?;
            return self.record("flag", None, None, Some(&detail));
        }
        let path = self.files_root()?.join("flags.json");
        let mut flags: Flags = fsutil::read_json(&path)?.unwrap_or_default();
        flags.flags.insert(flag.to_string(), rule.clone());
        self.write_flags(self.files_root()?, &flags, true)
            .with_context(|| format!("setting flag {flag}"))?;
        self.record("flag", None, None, Some(&detail))
    }

    /// Removes flag `flag` from `flags.json` (every user is then routed by
    /// `weights.json`), recording a `flag` history entry `"<flag> removed
    /// (was <p>% on=<on> off=<off>)"`. Returns the rule it had (`None`:
    /// there was no such flag; nothing is written). `http`: flags are not
    /// readable, so there is nothing to remove.
    pub fn remove_flag(&self, flag: &str) -> Result<Option<FlagRule>, StageError> {
        if self.http_url().is_some() {
            return Ok(None);
        }
        let path = self.files_root()?.join("flags.json");
        let mut flags: Flags = fsutil::read_json(&path)?.unwrap_or_default();
        let Some(rule) = flags.flags.remove(flag) else {
            return Ok(None);
        };
        self.write_flags(self.files_root()?, &flags, false)
            .with_context(|| format!("removing flag {flag}"))?;
        self.record(
            "flag",
            None,
            None,
            Some(&format!(
                "{flag} removed (was {}% on={} off={})",
                rule.percent, rule.on, rule.off
            )),
        )?;
        Ok(Some(rule))
    }

    /// Rolls back (docs/delivery.md, `previous`):
    /// - with a `candidate`: all traffic to `stable`, flags that turn the
    ///   candidate's slot on or off removed, the candidate dropped;
    /// - else to `previous` (unless `releases` marks it bad; then the
    ///   newest good release, [`State::rollback_target`]): its slot (or
    ///   every rolling instance) pointed back at its version, all traffic
    ///   to it, flags routing to or from the rolled-back slot removed; it becomes the
    ///   stable one and `previous` the newest good release besides it.
    ///
    /// What is rolled back is marked `bad` in `releases`, so a later
    /// rollback never returns to it.
    ///
    /// `http`: `POST /rollback` to the target version first, then the
    /// weights and the state as above.
    pub fn rollback(&self) -> Result<RolledBack, StageError> {
        let mut state = self.read_state()?;
        let mut actions = Vec::new();
        if state.environment.is_empty() {
            state.environment = self.environment.clone();
        }
        let (to, from) = state.rollback_target().map_err(StageError::failed)?;

        if let Some(url) = self.http_url() {
            let answer: RollbackAnswer = webhook::post(
                url,
                "/rollback",
                &json!({"environment": self.environment, "to_version": to.version, "slot": to.slot}),
            )?;
            actions.push(format!(
                "POST /rollback to {} on {} (now {})",
                to.version,
                to.slot,
                answer.version.as_deref().unwrap_or("?")
            ));
            // The platform repointed the slot; weights and the state
            // document follow as for every target, so no traffic stays on
            // the candidate and the release is marked bad (issue 17: the
            // http rollback used to stop here, leaving 50% on it).
        }

        let rolling = state.candidate.is_none() && !state.instances.is_empty();
        if rolling && self.kind() == TargetKind::Nginx {
            // One instance at a time, drained first: repointing them all
            // at once restarts every process while nginx still routes to
            // them (6 failed requests in issue 17).
            let mut layout = Weights::even(&state.instances).routes;
            let moves: Vec<(String, String)> = state
                .instances
                .iter()
                .filter(|i| i.version != to.version)
                .map(|i| (i.slot.clone(), to.version.clone()))
                .collect();
            actions.extend(self.repoint_drained(
                &mut layout,
                &moves,
                Some(&rollback_health()),
                true,
            )?);
            for inst in &mut state.instances {
                inst.version = to.version.clone();
            }
            self.set_weights(&Weights { routes: layout })?;
            actions.push("weights evenly over the instances".into());
        } else if rolling {
            for inst in &mut state.instances {
                if inst.version != to.version {
                    self.point_slot(&inst.slot, &to.version)?;
                    actions.push(format!("pointed {} back at {}", inst.slot, to.version));
                    inst.version = to.version.clone();
                }
            }
            self.set_weights(&Weights::even(&state.instances))?;
            actions.push("weights evenly over the instances".into());
        } else {
            if self.slot_version(&to.slot)?.as_deref() != Some(to.version.as_str()) {
                self.point_slot(&to.slot, &to.version)?;
                actions.push(format!("pointed {} back at {}", to.slot, to.version));
            }
            self.set_weights(&Weights::all_to(&to))?;
            actions.push(format!("weights 100% to {} ({})", to.slot, to.version));
        }
        if let Some(from) = &from {
            // A flag that routes users to or away from the slot taken out of
            // service would keep sending them to it: it goes, and every user
            // is routed by the weights above.
            if from.slot != to.slot {
                for (name, _) in self.read_flags()?.touching(&from.slot) {
                    if self.remove_flag(&name)?.is_some() {
                        actions.push(format!("flag {name} removed"));
                    }
                }
            }
        }
        // What was rolled back is known bad: it is never a rollback target
        // again. `previous` becomes the newest good release other than the
        // one now serving (none when there is no such release).
        if let Some(f) = &from {
            state.set_verdict(&f.version, Some(&f.slot), Verdict::Bad);
        }
        if state.candidate.take().is_none() {
            state.previous = state.last_good(&to.version, &to.slot);
            state.stable = Some(to.clone());
        }
        self.write_state(&mut state)?;
        self.record(
            "rollback",
            Some(&to.version),
            Some(&to.slot),
            Some(&actions.join("; ")),
        )?;
        Ok(RolledBack { to, from, actions })
    }

    /// Repoints instances of a rolling layout one at a time without
    /// sending a request to a restarting process (docs/delivery.md,
    /// "Switches without failed requests"). `layout` is what the upstream
    /// serves now (weight 1 = in rotation, 0 = `down`); for each
    /// `(slot, version)` of `moves`, in order: the slot is written `down`
    /// and nginx reloaded, then [`nginx::DRAIN_WAIT`] left for the old
    /// workers (skipped when no other instance is in rotation, or the slot
    /// is already down), the slot is pointed at `version`, `health` (when
    /// given and the slot has a URL) must find it healthy — and, with
    /// `check_version`, `/version` naming `version`, which is what tells
    /// that a process following the link has restarted — and it is put
    /// back (weight 1). `layout` is updated as it goes.
    ///
    /// An instance that does not become healthy stops the walk with an
    /// error naming it; it is left `down`, the others keep serving.
    /// Returns the steps taken, for reports.
    pub fn repoint_drained(
        &self,
        layout: &mut [crate::state::Route],
        moves: &[(String, String)],
        health: Option<&crate::HealthCheck>,
        check_version: bool,
    ) -> Result<Vec<String>, StageError> {
        let mut actions = Vec::new();
        for (slot, version) in moves {
            let Some(idx) = layout.iter().position(|r| &r.slot == slot) else {
                return Err(StageError::failed(format!(
                    "instance {slot} is not in the layout being repointed"
                )));
            };
            let others_serve = layout
                .iter()
                .enumerate()
                .any(|(i, r)| i != idx && r.weight > 0);
            if others_serve && layout[idx].weight > 0 {
                layout[idx].weight = 0;
                self.set_weights(&Weights {
                    routes: layout.to_vec(),
                })?;
                std::thread::sleep(nginx::DRAIN_WAIT);
            }
            self.point_slot(slot, version)?;
            layout[idx].version = version.clone();
            if let Some((health, url)) = health.zip(self.slot_url(slot)) {
                let expected = check_version.then_some(version.as_str());
                let o = health.check(url, expected).map_err(|e| {
                    StageError::from(e).with_context(format!(
                        "health check of {slot} ({url}) after repointing it"
                    ))
                })?;
                if !o.healthy {
                    return Err(StageError::failed(format!(
                        "{slot} did not become healthy at {version} after {} attempt(s): {}; it \
                         stays out of the upstream",
                        o.attempts, o.message
                    )));
                }
            }
            layout[idx].weight = 1;
            self.set_weights(&Weights {
                routes: layout.to_vec(),
            })?;
            actions.push(format!(
                "drained {slot}, pointed it back at {version}, healthy, back in"
            ));
        }
        Ok(actions)
    }

    /// Appends a line to `history.jsonl` (nothing when there is no
    /// `root`, e.g. an `http` target without one).
    pub fn record(
        &self,
        action: &str,
        version: Option<&str>,
        slot: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StageError> {
        let Some(path) = self.history_path() else {
            return Ok(());
        };
        let entry = HistoryEntry {
            at: now_rfc3339(),
            environment: self.environment.clone(),
            stage: self.stage.clone(),
            action: action.to_string(),
            version: version.map(str::to_string),
            slot: slot.map(str::to_string),
            detail: detail.map(str::to_string),
            run_id: self.run_id.clone(),
        };
        let line = serde_json::to_string(&entry)
            .map_err(|e| StageError::failed(format!("encoding a history entry: {e}")))?;
        fsutil::append_line(&path, &line)
    }

    /// Every entry of `history.jsonl` (lines that do not parse are skipped).
    pub fn read_history(&self) -> Result<Vec<HistoryEntry>, StageError> {
        let Some(path) = self.history_path() else {
            return Ok(Vec::new());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StageError::from(e).with_context(format!("reading {}", path.display()))),
        }
    }
}

/// How [`Target::rollback`] waits for a repointed instance: `/health`
/// and `/version` naming the release, up to 10 s.
fn rollback_health() -> crate::HealthCheck {
    crate::HealthCheck {
        retries: 40,
        interval: std::time::Duration::from_millis(250),
        timeout: std::time::Duration::from_secs(2),
        ..crate::HealthCheck::default()
    }
}

/// The environment's name: the stage's `environment:`, else the last part
/// of `target.root`, else `default`.
///
/// ```
/// let t: sluice_delivery::TargetConfig =
///     serde_json::from_str(r#"{"root": "deploy/production"}"#).unwrap();
/// assert_eq!(sluice_delivery::target::environment_name(None, &t), "production");
/// assert_eq!(sluice_delivery::target::environment_name(Some("prod"), &t), "prod");
/// ```
pub fn environment_name(stage_env: Option<&str>, config: &TargetConfig) -> String {
    stage_env
        .map(str::to_string)
        .or_else(|| {
            config
                .root
                .as_deref()
                .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
                .filter(|n| !n.is_empty() && *n != ".")
                .map(str::to_string)
        })
        .unwrap_or_else(|| "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(ws: &Path) -> Target {
        let cfg: TargetConfig = serde_json::from_str(
            r#"{"root":"env","slots":{"blue":"http://127.0.0.1:1","green":"http://127.0.0.1:2"}}"#,
        )
        .expect("cfg");
        Target::open(&cfg, ws, "production")
            .expect("open")
            .with_stage("deploy")
    }

    fn artifact(ws: &Path, name: &str, text: &str) -> ArtifactFile {
        let p = ws.join(name);
        std::fs::write(&p, text).expect("write");
        ArtifactFile::from_path(p).expect("artifact")
    }

    #[test]
    fn deploy_point_weights_flags_rollback() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local(ws.path());
        let a1 = artifact(ws.path(), "v1.txt", "one");
        let d = t.deploy(&a1, "1.0.0", "blue").expect("deploy 1");
        assert_eq!(d.previous_version, None);
        assert_eq!(t.slot_version("blue").expect("v").as_deref(), Some("1.0.0"));
        let blue = SlotVersion::new("blue", "1.0.0");
        t.set_weights(&Weights::all_to(&blue)).expect("weights");
        let mut s = t.read_state().expect("state");
        s.stable = Some(blue.clone());
        t.write_state(&mut s).expect("write state");

        let a2 = artifact(ws.path(), "v2.txt", "two");
        t.deploy(&a2, "2.0.0", "green").expect("deploy 2");
        let green = SlotVersion::new("green", "2.0.0");
        t.set_weights(&Weights::split(&blue, &green, 10))
            .expect("split");
        t.set_flag("release-2.0.0", &FlagRule::new("green", "blue", 10.0))
            .expect("flag");
        let mut s = t.read_state().expect("state");
        s.candidate = Some(green.clone());
        t.write_state(&mut s).expect("write");

        let rb = t.rollback().expect("rollback");
        assert_eq!(rb.to, blue);
        assert_eq!(t.read_weights().expect("w").weight_of("green"), 0);
        assert_eq!(t.read_weights().expect("w").weight_of("blue"), 100);
        assert!(t.read_flags().expect("f").flags.is_empty());
        assert!(rb.actions.iter().any(|a| a == "flag release-2.0.0 removed"));
        let s = t.read_state().expect("state");
        assert_eq!(s.candidate, None);
        assert_eq!(s.stable, Some(blue));
        let h = t.read_history().expect("h");
        assert!(
            h.iter().any(|h| h.action == "flag"
                && h.detail.as_deref()
                    == Some("release-2.0.0 removed (was 10% on=green off=blue)")),
            "{h:?}"
        );
        assert_eq!(t.remove_flag("release-2.0.0").expect("again"), None);
        assert!(t
            .read_history()
            .expect("h")
            .iter()
            .any(|h| h.action == "rollback"));
    }

    /// On nginx a flag's percent must fit `split_clients` (two decimals),
    /// and a flag needs a traffic split to route against; either refusal
    /// leaves `flags.json` unwritten. (Writing and reloading runs the
    /// granted `exec`: the e2e tests cover it with real nginx.)
    #[test]
    fn nginx_flags_are_checked_before_anything_is_written() {
        let ws = tempfile::tempdir().expect("tempdir");
        let cfg: TargetConfig = serde_json::from_str(
            r#"{"kind":"nginx","root":"env","slots":{"blue":"http://127.0.0.1:1","green":"http://127.0.0.1:2"}}"#,
        )
        .expect("cfg");
        let t = Target::open(&cfg, ws.path(), "production").expect("open");
        let rule = |percent| FlagRule::new("green", "blue", percent);
        let e = t.set_flag("f", &rule(12.345)).expect_err("decimals");
        assert!(
            e.message().contains(
                "flag f on the nginx target: percent 12.345 has more than two decimals; nginx's \
                 split_clients takes at most two (e.g. 12.35)"
            ),
            "{e}"
        );
        let e = t.set_flag("f", &rule(12.34)).expect_err("no weights");
        assert!(e.message().contains("no traffic split yet"), "{e}");
        assert!(!ws.path().join("env/flags.json").exists());
    }

    #[test]
    fn rollback_recreate_repoints_the_slot() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local(ws.path());
        t.deploy(&artifact(ws.path(), "a", "1"), "1", "main")
            .expect("1");
        t.deploy(&artifact(ws.path(), "b", "2"), "2", "main")
            .expect("2");
        let mut s = State {
            stable: Some(SlotVersion::new("main", "2")),
            previous: Some(SlotVersion::new("main", "1")),
            ..State::default()
        };
        t.write_state(&mut s).expect("state");
        let rb = t.rollback().expect("rollback");
        assert_eq!(rb.to.version, "1");
        assert_eq!(t.slot_version("main").expect("v").as_deref(), Some("1"));
        assert!(t.point_slot("main", "9").is_err());
        let e = local(ws.path());
        let mut empty = State::default();
        e.write_state(&mut empty).expect("w");
        assert!(e.rollback().is_err());
    }

    #[test]
    fn routing_json_follows_the_config() {
        let ws = tempfile::tempdir().expect("tempdir");
        let cfg: TargetConfig = serde_json::from_str(
            r#"{"root":"env","affinity":{"cookie":"sid"},"canary-header":{"name":"X-Canary"}}"#,
        )
        .expect("cfg");
        let t = Target::open(&cfg, ws.path(), "production").expect("open");
        let (b, g) = (
            SlotVersion::new("blue", "1"),
            SlotVersion::new("green", "2"),
        );
        t.set_weights(&Weights::split(&b, &g, 0)).expect("split");
        let path = ws.path().join("env/routing.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("routing.json"))
                .expect("json");
        assert_eq!(v["affinity"]["cookie"], "sid");
        assert_eq!(v["canary_header"]["name"], "X-Canary");
        assert_eq!(v["canary_header"]["candidate"], "green");
        assert_eq!(v["canary_header"]["stable"], "blue");
        t.set_weights(&Weights::all_to(&g)).expect("promote");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("routing.json"))
                .expect("json");
        assert!(v["canary_header"]["candidate"].is_null(), "{v}");
        // Without the options the file goes: the router routes by weights.
        local(ws.path())
            .set_weights(&Weights::all_to(&g))
            .expect("w");
        assert!(!path.exists());
    }

    #[test]
    fn repoint_drained_moves_one_instance_at_a_time() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local(ws.path());
        for (i, v) in ["1", "2"].iter().enumerate() {
            t.deploy(&artifact(ws.path(), v, v), v, &format!("instance-{i}"))
                .expect("deploy");
        }
        t.point_slot("instance-0", "2").expect("point");
        let route = |slot: &str, version: &str, weight| crate::state::Route {
            slot: slot.into(),
            version: version.into(),
            weight,
        };
        let mut layout = vec![route("instance-0", "2", 1), route("instance-1", "2", 1)];
        let moves = vec![
            ("instance-0".to_string(), "1".to_string()),
            ("instance-1".to_string(), "1".to_string()),
        ];
        let actions = t
            .repoint_drained(&mut layout, &moves, None, true)
            .expect("repoint");
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert_eq!(
            layout,
            vec![route("instance-0", "1", 1), route("instance-1", "1", 1)]
        );
        // Each instance was out of the split while it moved, and only one
        // at a time: drain 0, back 0, drain 1, back 1.
        let weights: Vec<String> = t
            .read_history()
            .expect("h")
            .into_iter()
            .filter(|h| h.action == "weights")
            .filter_map(|h| h.detail)
            .collect();
        assert_eq!(
            weights,
            [
                "instance-0=0 instance-1=1",
                "instance-0=1 instance-1=1",
                "instance-0=1 instance-1=0",
                "instance-0=1 instance-1=1"
            ]
        );
        assert_eq!(
            t.slot_version("instance-1").expect("v").as_deref(),
            Some("1")
        );
        let e = t
            .repoint_drained(
                &mut layout,
                &[("instance-9".into(), "1".into())],
                None,
                true,
            )
            .expect_err("unknown instance");
        assert!(e.message().contains("instance-9"), "{e}");
    }

    #[test]
    fn a_rolled_back_release_is_bad_and_never_a_target_again() {
        let ws = tempfile::tempdir().expect("tempdir");
        let t = local(ws.path()).with_run_id("run-1");
        t.deploy(&artifact(ws.path(), "a", "1"), "1.0.0", "blue")
            .expect("1");
        t.deploy(&artifact(ws.path(), "b", "2"), "2.0.0", "green")
            .expect("2");
        let mut s = State {
            stable: Some(SlotVersion::new("green", "2.0.0")),
            previous: Some(SlotVersion::new("blue", "1.0.0")),
            ..State::default()
        };
        t.write_state(&mut s).expect("state");
        let rb = t.rollback().expect("rollback");
        assert_eq!(rb.to, SlotVersion::new("blue", "1.0.0"));
        let s = t.read_state().expect("state");
        assert_eq!(s.run_id.as_deref(), Some("run-1"));
        assert_eq!(s.verdict("2.0.0"), Verdict::Bad);
        assert_eq!(s.previous, None, "{s:?}");
        let e = t.rollback().expect_err("no good release left");
        assert!(e.message().contains("no known-good release"), "{e}");
        assert!(t
            .read_history()
            .expect("h")
            .iter()
            .all(|h| h.run_id.as_deref() == Some("run-1")));
    }
}
