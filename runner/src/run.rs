//! `sluice run`: load the pipeline, start or resume its record, load every
//! plugin once (compile cache, in parallel), then hand the DAG to the
//! scheduler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::report::{Event, Reporter};
use sluice_engine::admission::{self, AdmissionError, Admitted};
use sluice_engine::executor::ProcessEnv;
use sluice_engine::orchestrator::{self, Orchestrator};
use sluice_engine::scheduler::{self, Scheduler};
use sluice_host::stage_exec::LocalExecutor;
use sluice_host::{sandbox, Host, Plugin, PoolSizing};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::{self as pipeline, Pipeline, PipelineError, PluginRef};
use sluice_record::artifacts::Cas;
use sluice_record::{
    self as record, PluginRecord, RecordError, RunRecord, RunStatus, RunStore, StageRecord,
};
use sluice_trust::{operator, Policies, Policy};

mod remote;
pub use remote::{parse_agent, parse_executor, ExecutorTarget, FleetRunOptions};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The pipeline file (for a resume: taken from the record when `None`).
    pub pipeline: Option<PathBuf>,
    /// `.sluice` directory.
    pub state_dir: PathBuf,
    /// Compile cache directory.
    pub cache_dir: PathBuf,
    /// Stages at once.
    pub jobs: usize,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Continue this run instead of starting one.
    pub resume: Option<String>,
    /// Trust policy overriding the pipeline's `policy:`.
    pub policy: Option<PathBuf>,
    /// `--operator-policy`: the operator's policy, which the pipeline's can
    /// only add to (else `SLUICE_POLICY`, else `/etc/sluice/policy.yaml`;
    /// see [`operator`]).
    pub operator_policy: Option<PathBuf>,
    /// Run plugins unverified when there is no policy (development only).
    pub allow_unsigned: bool,
    /// Key that signs build provenance (password from `SLUICE_KEY_PASSWORD`).
    pub provenance_key: Option<PathBuf>,
    /// Refuse a workspace whose git tree is not clean (`--require-clean`).
    pub require_clean: bool,
    /// `builder.id` of provenance (`--builder-id`); default per host.
    pub builder_id: Option<String>,
    /// Stops the run when a reason is sent (a signal to the runner).
    pub interrupt: Option<scheduler::Interrupt>,
    /// Set once the stages start: how long an interrupted run may take to
    /// stop (its longest grace period plus the scheduler's backstop), in
    /// milliseconds. Zero while the run is still being set up.
    pub stop_wait_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// How a run gets its plugins from OCI registries ([`run_with`]).
#[derive(Debug, Clone, Default)]
pub struct OciRunOptions {
    /// How to reach registries (`--registry-ca`, `--insecure-registry`,
    /// credentials).
    pub registry: crate::oci_plugins::RegistryAccess,
    /// `--locked`: every OCI reference must be in the lock file, and a tag
    /// that moved is refused.
    pub locked: bool,
}

/// Why a run could not be carried out (as opposed to a run that failed).
/// [`crate::error::CliError`] maps each to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline file is invalid.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A plugin cannot be used.
    #[error("stage `{stage}`: plugin {reference}: {message}")]
    Plugin {
        /// Stage using it.
        stage: String,
        /// `uses:`.
        reference: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The run cannot be resumed.
    #[error("cannot resume run `{id}`: {message}")]
    Resume {
        /// Run id.
        id: String,
        /// Why.
        message: String,
    },
    /// Reading or writing the run record failed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A plugin was refused or cannot be used.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The trust policy file is invalid.
    #[error(transparent)]
    Policy(#[from] sluice_trust::PolicyError),
    /// The host could not start.
    #[error(transparent)]
    Host(#[from] sluice_host::HostError),
    /// The artifact store is unusable.
    #[error(transparent)]
    Artifacts(#[from] sluice_record::artifacts::ArtifactError),
    /// The state directory lies where a stage could read or write it.
    #[error(
        "the state directory {} is inside the workspace {} that stage `{stage}` may {access}; \
         a stage could then read other stages' records, logs and artifacts, or forge them. \
         Drop --state-dir / SLUICE_STATE_DIR to use the default (outside the project), \
         or point it at a directory outside {}",
        state_dir.display(),
        workspace.display(),
        workspace.display()
    )]
    StateInWorkspace {
        /// The state directory.
        state_dir: PathBuf,
        /// The pipeline's workspace.
        workspace: PathBuf,
        /// A stage granted access to it.
        stage: String,
        /// `read` or `write`.
        access: &'static str,
    },
    /// The provenance signing key cannot be used.
    #[error(transparent)]
    SigningKey(#[from] sluice_engine::orchestrator::SigningKeyError),
    /// `--require-clean` and the workspace is not a clean git checkout.
    #[error("--require-clean: the workspace {} is not a clean git checkout: {why}", workspace.display())]
    NotClean {
        /// The pipeline's workspace.
        workspace: PathBuf,
        /// What is not clean (or that it is not a git repository).
        why: String,
    },
    /// The task reading the git source for provenance did not finish.
    #[error("reading the git source failed: {0}")]
    SourceRead(#[from] tokio::task::JoinError),
    /// An OCI plugin cannot be resolved, pulled or matched to the lock.
    #[error(transparent)]
    Oci(#[from] crate::oci_plugins::OciRunError),
    /// `--builder-id` (`SLUICE_BUILDER_ID`) is not a usable URI.
    #[error(transparent)]
    BuilderId(#[from] sluice_engine::provenance::BuilderIdError),
    /// The agents cannot be reached (`--agent`, `--executor`).
    #[error(transparent)]
    Fleet(#[from] sluice_fleet::FleetError),
    /// `--executor …?workspace=snapshot` and the workspace's
    /// `.sluiceignore` cannot be used.
    #[error("the workspace {} cannot be sent to agents as a snapshot: {source}", workspace.display())]
    SnapshotIgnore {
        /// The pipeline's workspace.
        workspace: PathBuf,
        /// What is wrong with its `.sluiceignore` (boxed: it is rare, and
        /// would make every `RunError` larger).
        #[source]
        source: Box<sluice_fleet::snapshot::SnapshotError>,
    },
}

fn new_record(pipeline: &Pipeline) -> RunRecord {
    let stages: IndexMap<String, StageRecord> = pipeline
        .stages
        .keys()
        .map(|k| (k.clone(), StageRecord::pending(k)))
        .collect();
    // Absolute, so that `--resume` finds the file from any directory. Not
    // canonical: the pipeline's directory anchors its relative paths, and
    // resolving a symbolic link to the file would move that anchor to
    // wherever the link points.
    let path = std::path::absolute(&pipeline.path).unwrap_or_else(|_| {
        pipeline
            .dir
            .join(pipeline.path.file_name().unwrap_or_default())
    });
    RunRecord::new(
        record::new_run_id(),
        pipeline.name.clone(),
        path,
        pipeline.digest.clone(),
        stages,
    )
}

/// Plugins by stage, and the config schema each publishes.
type LoadedPlugins = (
    HashMap<String, (Plugin, PluginRecord)>,
    HashMap<String, ConfigSchema>,
    Vec<String>,
);

/// The plugins of the stages that will run, read, hashed and admitted under
/// the policy; nothing compiled yet.
struct AdmittedPlugins {
    /// By [`admission::plugin_key`].
    files: HashMap<String, admission::PluginFile>,
    admitted: HashMap<String, Admitted>,
    /// Stages by plugin key, in pipeline order: each plugin loads once.
    by_path: IndexMap<String, Vec<String>>,
    /// The registry origin of OCI plugins, by plugin key.
    origins: HashMap<String, sluice_record::OciPluginRecord>,
    warnings: Vec<String>,
}

/// Every stage's plugin passes admission (policy) before anything is
/// compiled.
fn admit_plugins(
    pipeline: &Pipeline,
    stages: &[String],
    reporter: &dyn Reporter,
    policies: &Policies,
    allow_unsigned: bool,
    pulled: crate::oci_plugins::OciPlugins,
) -> Result<AdmittedPlugins, RunError> {
    let mut origins = HashMap::new();
    let mut oci_files = HashMap::new();
    for (reference, plugin) in pulled.plugins {
        origins.insert(
            admission::plugin_key(&PluginRef::Oci(reference.clone())),
            plugin.origin,
        );
        oci_files.insert(reference, plugin.file);
    }
    let files = admission::read_plugins(pipeline, stages, &oci_files)?;
    let mut admitted: HashMap<String, Admitted> = HashMap::new();
    let mut warnings = Vec::new();
    for w in pulled.warnings {
        reporter.event(&Event::Warning { message: &w });
        warnings.push(w);
    }
    let mut by_path: IndexMap<String, Vec<String>> = IndexMap::new();
    // One line per warning, not per stage: 100 stages of one unsigned
    // plugin are one fact.
    let mut stages_by_warning: IndexMap<String, Vec<String>> = IndexMap::new();
    for name in stages {
        let Some(stage) = pipeline.stages.get(name) else {
            continue;
        };
        let key = admission::plugin_key(&stage.uses);
        let Some(file) = files.get(&key) else {
            continue;
        };
        let decision = admission::admit(name, stage, file, policies, allow_unsigned)?;
        for w in &decision.warnings {
            stages_by_warning
                .entry(w.clone())
                .or_default()
                .push(name.clone());
        }
        admitted.insert(name.clone(), decision);
        by_path.entry(key).or_default().push(name.clone());
    }
    for (warning, names) in stages_by_warning {
        let w = format!("{}: {warning}", stage_list(&names));
        reporter.event(&Event::Warning { message: &w });
        warnings.push(w);
    }
    Ok(AdmittedPlugins {
        files,
        admitted,
        by_path,
        origins,
        warnings,
    })
}

/// Load the admitted plugins: each file is compiled (or loaded from the
/// cache) once, in parallel, then described.
async fn load_plugins(
    host: &Arc<Host>,
    pipeline: &Pipeline,
    admitted: AdmittedPlugins,
    reporter: &dyn Reporter,
) -> Result<LoadedPlugins, RunError> {
    let AdmittedPlugins {
        files,
        admitted,
        by_path,
        mut origins,
        warnings,
    } = admitted;
    let mut jobs = Vec::new();
    for (key, users) in by_path {
        let Some(file) = files.get(&key).cloned() else {
            continue;
        };
        let origin = origins.remove(&key);
        let host = host.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            let loaded = host
                .load(&file.bytes, &file.digest)
                .map_err(|e| e.to_string());
            (file, origin, users, loaded)
        }));
    }
    let mut plugins = HashMap::new();
    let mut schemas = HashMap::new();
    for job in jobs {
        let (file, origin, users, loaded) = job.await.map_err(|e| RunError::Plugin {
            stage: String::new(),
            reference: String::new(),
            message: format!("loading task failed: {e}"),
        })?;
        let reference = file.reference.clone();
        let plugin = loaded.map_err(|message| RunError::Plugin {
            stage: users.join(", "),
            reference: reference.clone(),
            message,
        })?;
        // A plugin from a registry is shown pinned to the manifest that
        // runs: `oci://registry/repository:tag@sha256:<manifest>`.
        let shown = origin
            .as_ref()
            .map_or_else(|| reference.clone(), |o| o.pinned());
        reporter.event(&Event::PluginLoaded {
            reference: &shown,
            digest: &plugin.digest,
            cached: plugin.cache == sluice_host::CacheOutcome::Hit,
            millis: plugin.load_time.as_millis() as u64,
        });
        let info = sandbox::describe(&plugin)
            .await
            .map_err(|e| RunError::Plugin {
                stage: users.join(", "),
                reference: reference.clone(),
                message: format!("`describe` failed: {e}"),
            })?;
        warn_ungranted(pipeline, &users, &info.name, reporter, |grants| {
            sluice_host::capabilities::not_granted(&info.capabilities, grants)
        });
        let rec = PluginRecord {
            reference: reference.clone(),
            digest: plugin.digest.clone(),
            name: Some(info.name.clone()),
            version: Some(info.version.clone()),
            kind: Some(sluice_host::sandbox::kind_name(&info.kind).to_owned()),
            wit: Some(plugin.wit.to_string()),
            signer: None,
            policy_rules: Vec::new(),
            oci: origin,
        };
        let schema = config_schema(&reference, info.config_schema.as_deref(), reporter);
        for (user, rec) in stage_records(users, &rec, schema.as_ref(), &admitted, &mut schemas) {
            plugins.insert(user, (plugin.clone(), rec));
        }
    }
    Ok((plugins, schemas, warnings))
}

/// Warn, for each stage in `users`, about what plugin `plugin` declares it
/// may use and the stage's grants do not cover (`not_granted`, by the
/// host's rule): those calls will be denied.
fn warn_ungranted(
    pipeline: &Pipeline,
    users: &[String],
    plugin: &str,
    reporter: &dyn Reporter,
    not_granted: impl Fn(&sluice_pipeline::Grants) -> Vec<String>,
) {
    for user in users {
        let Some(stage) = pipeline.stages.get(user) else {
            continue;
        };
        let missing = not_granted(&stage.grants);
        if !missing.is_empty() {
            let msg = format!(
                "stage `{user}`: plugin {plugin} declares it may use {}, which the pipeline does not grant; calls needing it will be denied",
                missing.join(", ")
            );
            reporter.event(&Event::Warning { message: &msg });
        }
    }
}

/// A plugin's config schema, compiled; one that does not compile is a
/// warning, and `with:` then goes to the plugin unchecked.
fn config_schema(
    reference: &str,
    schema: Option<&str>,
    reporter: &dyn Reporter,
) -> Option<ConfigSchema> {
    match schema.map(ConfigSchema::compile)? {
        Ok(schema) => Some(schema),
        Err(why) => {
            let msg = format!(
                "plugin {reference}: its config schema is not used ({why}); `with:` is passed unchecked"
            );
            reporter.event(&Event::Warning { message: &msg });
            None
        }
    }
}

/// The record of one plugin for each stage in `users`, with the signer and
/// policy rules the stage's admission found; the schema is noted per stage
/// in `schemas`.
fn stage_records(
    users: Vec<String>,
    rec: &PluginRecord,
    schema: Option<&ConfigSchema>,
    admitted: &HashMap<String, Admitted>,
    schemas: &mut HashMap<String, ConfigSchema>,
) -> Vec<(String, PluginRecord)> {
    users
        .into_iter()
        .map(|user| {
            if let Some(schema) = schema {
                schemas.insert(user.clone(), schema.clone());
            }
            let mut rec = rec.clone();
            if let Some(a) = admitted.get(&user) {
                rec.signer = a.signer.clone();
                rec.policy_rules = a.rules.clone();
            }
            (user, rec)
        })
        .collect()
}

/// Resolves and pulls the OCI plugins of the stages that will run (none:
/// no registry is contacted and no lock file read). A resumed run keeps the
/// manifests it started with.
async fn pull_oci_plugins(
    pipeline: &Pipeline,
    record: &RunRecord,
    stages: &[String],
    opts: &OciRunOptions,
    cache_dir: PathBuf,
) -> Result<crate::oci_plugins::OciPlugins, RunError> {
    use crate::oci_plugins::{self as oci, LockFile, OciRunError};
    let references = oci::references(pipeline, stages);
    if references.is_empty() {
        return Ok(oci::OciPlugins::default());
    }
    let lock_file = oci::lock_path(&pipeline.path);
    let lock = LockFile::read(&lock_file).map_err(OciRunError::from)?;
    let pins = record
        .stages
        .values()
        .filter_map(|s| s.plugin.as_ref()?.oci.as_ref())
        .map(|o| (o.reference.clone(), o.manifest.clone()))
        .collect();
    let settings = oci::Settings {
        registry: opts.registry.options().map_err(OciRunError::Options)?,
        cache_dir,
        locked: opts.locked,
        pins,
    };
    Ok(oci::pull_all(&references, &settings, lock.as_ref(), &lock_file).await?)
}

/// The runner's provenance signing key; its password comes from
/// `SLUICE_KEY_PASSWORD` (a run never prompts).
fn load_provenance_key(path: &Path) -> Result<sluice_trust::PrivateKey, RunError> {
    let password = std::env::var("SLUICE_KEY_PASSWORD").unwrap_or_default();
    Ok(orchestrator::load_signing_key(path, password.as_bytes())?)
}

/// Start (or resume) a run and drive it to its end or a pause, with the
/// default registry settings (no `--locked`).
pub async fn run(opts: &RunOptions, reporter: Arc<dyn Reporter>) -> Result<RunRecord, RunError> {
    run_with(opts, &OciRunOptions::default(), reporter).await
}

/// Start (or resume) a run and drive it to its end or a pause, every
/// stage in this process.
pub async fn run_with(
    opts: &RunOptions,
    oci: &OciRunOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<RunRecord, RunError> {
    run_on(opts, oci, &FleetRunOptions::default(), reporter).await
}

/// Start (or resume) a run and drive it to its end or a pause; with
/// `fleet.target`, its stages run on agents (docs/fleet.md).
pub async fn run_on(
    opts: &RunOptions,
    oci: &OciRunOptions,
    fleet: &FleetRunOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<RunRecord, RunError> {
    let clock = PhaseClock::start();
    let store = RunStore::new(&opts.state_dir);
    // A resumed run is locked before anything else; a new run gets a record
    // only once its plugins loaded, so invalid input leaves no run behind.
    let (pipeline, mut record, lock) = match &opts.resume {
        Some(id) => {
            let record = store.load(id)?;
            let lock = store.lock(id)?;
            let path = opts
                .pipeline
                .clone()
                .unwrap_or_else(|| record.pipeline_path.clone());
            let pipeline = pipeline::load(&path)?;
            if pipeline.digest != record.pipeline_digest {
                return Err(RunError::Resume {
                    id: id.clone(),
                    message: format!(
                        "{} changed since the run started; a resumed run must run the same pipeline — start a new run instead",
                        path.display()
                    ),
                });
            }
            if record.status == RunStatus::Passed {
                return Err(RunError::Resume {
                    id: id.clone(),
                    message: "it already passed; there is nothing left to run".into(),
                });
            }
            (pipeline, record, Some(lock))
        }
        None => {
            let path = opts
                .pipeline
                .clone()
                .unwrap_or_else(|| PathBuf::from("sluice.yaml"));
            let pipeline = pipeline::load(&path)?;
            (pipeline.clone(), new_record(&pipeline), None)
        }
    };
    check_state_outside_workspace(&opts.state_dir, &pipeline)?;
    // The source is read once, before any stage can change it: on a
    // blocking thread while the plugins load (the dirty check costs a stat
    // per tracked file, ~2 ms for a few hundred), awaited before the first
    // stage; at once with --require-clean, which must refuse before
    // anything else happens.
    let builder_id = sluice_engine::provenance::builder_id(opts.builder_id.as_deref())?;
    let workspace = pipeline.workspace.clone();
    let reading =
        tokio::task::spawn_blocking(move || sluice_engine::provenance::source_state(&workspace));
    let source_read = if opts.require_clean {
        let source = reading.await?;
        let why = match &source {
            None => Some("it is not in a git repository".to_string()),
            Some(s) => s.unclean(),
        };
        if let Some(why) = why {
            return Err(RunError::NotClean {
                workspace: pipeline.workspace.clone(),
                why,
            });
        }
        SourceRead::Done(source)
    } else {
        SourceRead::Reading(reading)
    };
    let resumed = lock.is_some();
    // Stages a killed coordinator had sent to agents, looked up there
    // before they are sent again; then a new dispatch epoch, so that no
    // new job shares an id with one of an earlier dispatch.
    let adopt = match &fleet.target {
        Some(_) if resumed => remote::adopt_map(&record),
        _ => HashMap::new(),
    };
    if fleet.target.is_some() {
        record.fleet_epoch += 1;
    }
    let on_agent = matches!(fleet.target, Some(ExecutorTarget::Agent(_)));
    let mut lost_artifacts = Vec::new();
    if resumed {
        scheduler::reset_for_resume(&mut record);
        (record, lost_artifacts) = reset_lost_producers(&pipeline, record, &opts.state_dir).await?;
    }
    let jobs = opts.jobs.max(1);
    let to_run: Vec<String> = record
        .stages
        .iter()
        .filter(|(_, r)| !r.state.succeeded())
        .map(|(n, _)| n.clone())
        .collect();
    clock.mark("pipeline and record ready");
    reporter.event(&Event::RunStarted {
        run_id: &record.run_id,
        pipeline: &pipeline.name,
        stages: pipeline.stages.len(),
        jobs,
        resumed,
    });
    for warning in &lost_artifacts {
        reporter.event(&Event::Warning { message: warning });
    }
    let pool = PoolSizing {
        concurrent_instances: (jobs + 4) as u32,
    };
    // The engine is built on another thread while this one reads, hashes
    // and admits the plugins: neither needs the other.
    let cache_dir = usable_cache_dir(&opts.cache_dir, &pipeline.workspace).map(Path::to_path_buf);
    // The pull cache lives beside the compile cache, under its rules: when
    // the compile cache is not usable (inside the workspace), pulls go to a
    // directory of this run only.
    let (pull_cache, _pull_cache_tmp) = match &cache_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| RunError::Plugin {
                stage: String::new(),
                reference: String::new(),
                message: format!("cannot create a temporary pull cache: {e}"),
            })?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let sweep = start_sweep(&opts.state_dir, cache_dir.clone());
    // The warm local agent describes the plugins itself: this process then
    // builds no engine at all.
    let engine = (!on_agent)
        .then(|| tokio::task::spawn_blocking(move || Host::new(cache_dir.as_deref(), &pool)));
    let policy_path = opts.policy.clone().or_else(|| pipeline.policy.clone());
    let policy = policy_path.as_deref().map(Policy::load).transpose()?;
    let operator = operator::load_operator(opts.operator_policy.as_deref())?;
    let policies = Policies::new(operator, policy);
    let allow_unsigned = opts.allow_unsigned && policies.is_empty();
    if opts.allow_unsigned && !allow_unsigned {
        let message = match policies.operator() {
            Some(op) => format!(
                "--allow-unsigned has no effect: the operator policy {} applies",
                op.file().display()
            ),
            None => "--allow-unsigned has no effect: the pipeline has a trust policy".to_owned(),
        };
        reporter.event(&Event::Warning { message: &message });
    }
    record.policy = policy_path.clone();
    record.operator_policy = policies.operator().map(|p| p.file().to_path_buf());
    record.unsigned_plugins_allowed = allow_unsigned;
    let pulled = pull_oci_plugins(&pipeline, &record, &to_run, oci, pull_cache).await?;
    clock.mark("OCI plugins resolved");
    let admitted = admit_plugins(
        &pipeline,
        &to_run,
        reporter.as_ref(),
        &policies,
        allow_unsigned,
        pulled,
    )?;
    clock.mark("plugins read and admitted");
    let cas = Arc::new(Cas::open(&opts.state_dir.join("cas"))?);
    let run_dir = store.run_dir(&record.run_id);
    // Agents are reached before the run exists: one that is not there
    // leaves no run behind, like any other setup failure.
    let connected = match &fleet.target {
        Some(target) => Some(remote::Connected::open(target, &cas, &run_dir).await?),
        None => None,
    };
    if connected.is_some() {
        clock.mark("agents reached");
    }
    // A `.sluiceignore` that cannot be used would fail every stage that
    // gets the workspace: say so now, before there is a run.
    if let Some(remote::Connected::Nats {
        snapshot_workspace: true,
        ..
    }) = &connected
    {
        sluice_fleet::snapshot::check_ignore_file(&pipeline.workspace).map_err(|source| {
            RunError::SnapshotIgnore {
                workspace: pipeline.workspace.clone(),
                source: Box::new(source),
            }
        })?;
    }
    let plugin_blobs = match &connected {
        Some(_) => Some(remote::plugin_blobs(&admitted.files, &cas)?),
        None => None,
    };
    // The host lives as long as the run: its epoch ticker is what lets a
    // cancelled or timed-out stage that never yields be interrupted (with
    // the host dropped here, fail-fast could not stop a busy loop).
    let (records, schemas, warnings, by_digest, _host) = match (&connected, engine) {
        (Some(remote::Connected::Uds(agent)), _) => {
            let (records, schemas, warnings) =
                remote::describe_on_agent(agent, &pipeline, admitted, reporter.as_ref()).await?;
            (records, schemas, warnings, HashMap::new(), None)
        }
        (_, Some(engine)) => {
            let host = Arc::new(engine.await.map_err(|e| {
                RunError::Host(sluice_host::HostError::Engine(format!(
                    "the engine thread failed: {e}"
                )))
            })??);
            clock.mark("engine ready");
            let (plugins, schemas, warnings) =
                load_plugins(&host, &pipeline, admitted, reporter.as_ref()).await?;
            let records: HashMap<String, PluginRecord> = plugins
                .iter()
                .map(|(stage, (_, record))| (stage.clone(), record.clone()))
                .collect();
            let by_digest: HashMap<String, Plugin> = plugins
                .into_values()
                .map(|(plugin, _)| (plugin.digest.clone(), plugin))
                .collect();
            (records, schemas, warnings, by_digest, Some(host))
        }
        (_, None) => {
            // `engine` is only skipped for the local agent, handled above.
            return Err(RunError::Host(sluice_host::HostError::Engine(
                "no engine was started for a run without an agent".to_owned(),
            )));
        }
    };
    clock.mark("plugins loaded and described");
    record.warnings = warnings;
    record.warnings.extend(lost_artifacts);
    // The only place that reads env and secret values: the runner's own
    // environment, handed to the orchestrator and the executor.
    let process_env = Arc::new(ProcessEnv);
    let redactor = Arc::new(orchestrator::run_redactor(&pipeline, process_env.as_ref()));
    let provenance_key = match &opts.provenance_key {
        Some(path) => Some(Arc::new(load_provenance_key(path)?)),
        None => None,
    };
    // Everything that can refuse the run has run: only now does a new run
    // get its directory (and, when the scheduler starts, its record).
    let _lock = match lock {
        Some(lock) => lock,
        None => {
            store.create(&record)?;
            store.lock(&record.run_id)?
        }
    };
    let source = match source_read {
        SourceRead::Done(source) => source,
        SourceRead::Reading(task) => task.await?,
    };
    let executor: Arc<dyn sluice_engine::executor::Executor> = match (connected, plugin_blobs) {
        (Some(connected), Some((plugins, plugin_files))) => {
            let options = remote::remote_options(
                &pipeline,
                &record,
                &connected,
                plugins,
                plugin_files,
                adopt,
                &opts.state_dir,
            );
            Arc::new(sluice_fleet::remote::RemoteExecutor::new(
                connected.dispatch(),
                cas.clone(),
                run_dir.clone(),
                reporter.clone(),
                redactor.clone(),
                options,
            ))
        }
        _ => Arc::new(LocalExecutor {
            plugins: by_digest,
            cas: cas.clone(),
            work: sluice_record::workdir::WorkDirs::new(&run_dir),
            run_dir: run_dir.clone(),
            redactor: redactor.clone(),
            reporter: reporter.clone(),
            env: process_env.clone(),
            secrets: process_env.clone(),
            max_handles: sluice_host::engine::handles_per_stage(
                sluice_host::engine::raise_open_files_limit(),
                jobs,
            ),
        }),
    };
    let orchestrator = Arc::new(Orchestrator {
        pipeline: Arc::new(pipeline.clone()),
        plugins: records,
        schemas,
        executor,
        env: process_env,
        redactor,
        cas,
        work: sluice_record::workdir::WorkDirs::new(&run_dir),
        provenance_key,
        source: source.map(Arc::new),
        builder_id,
        refused: fleet.refused.clone(),
    });
    let options = scheduler::Options {
        jobs,
        fail_fast: opts.fail_fast,
        retry_backoff: Duration::from_millis(250),
        interrupt: opts.interrupt.clone(),
    };
    let longest_grace = pipeline
        .stages
        .values()
        .map(|s| s.grace_period)
        .max()
        .unwrap_or_default();
    opts.stop_wait_ms.store(
        u64::try_from((longest_grace + scheduler::CANCEL_BACKSTOP).as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    let scheduler = Scheduler::new(&pipeline, record, &store, reporter.as_ref(), options);
    clock.mark("run created");
    let record = scheduler.run(orchestrator).await?;
    clock.mark("stages finished");
    // Normally long done; a panic in it is no reason to fail the run.
    let _ = sweep.await;
    Ok(record)
}

/// Removes what killed runners left behind, on a blocking thread beside the
/// run (it never delays a stage): temporary files older than
/// [`workdir::STALE_TEMP_AGE`](sluice_record::workdir::STALE_TEMP_AGE) in the CAS,
/// the run directories, the compile cache and the pull cache's entries
/// (younger ones may be written by a concurrent runner right now), and the
/// `work/` directories of runs no
/// runner holds. This run's own directory is either locked already (resume)
/// or has no `work/` yet, so the sweep never touches it.
fn start_sweep(
    state_dir: &Path,
    cache_dir: Option<PathBuf>,
) -> tokio::task::JoinHandle<sluice_record::workdir::Swept> {
    let state_dir = state_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let sweep = sluice_record::workdir::Sweep::default();
        let mut swept = sluice_record::workdir::sweep_runs(&state_dir, &sweep);
        if let Ok(cas) = Cas::open(&state_dir.join("cas")) {
            swept += cas.sweep_temp(&sweep);
        }
        if let Some(cache) = cache_dir {
            swept += crate::commands::gc::sweep_cache_dir(&cache, &sweep);
        }
        tracing::debug!(
            target: "sluice::timing",
            elapsed_us = started.elapsed().as_micros() as u64,
            files = swept.files,
            bytes = swept.bytes,
            work_dirs = swept.work_dirs,
            "swept what earlier runners left"
        );
        swept
    })
}

/// On resume, after [`scheduler::reset_for_resume`]: every passed stage whose
/// artifacts a stage that runs now needs has them checked in the CAS (each
/// blob exists and hashes to its digest); one whose blobs are gone or
/// damaged runs again, with the passed stages downstream of it
/// ([`scheduler::reset_lost_producers`]). Hashing happens on a blocking
/// thread. Returns the record and one warning per producer that runs again.
async fn reset_lost_producers(
    pipeline: &Pipeline,
    mut record: RunRecord,
    state_dir: &Path,
) -> Result<(RunRecord, Vec<String>), RunError> {
    let cas = Cas::open(&state_dir.join("cas"))?;
    let pipeline = pipeline.clone();
    let id = record.run_id.clone();
    tokio::task::spawn_blocking(move || {
        let lost = scheduler::reset_lost_producers(&pipeline, &mut record, |_, artifacts| {
            artifacts
                .iter()
                .try_for_each(|a| cas.verify(a).map_err(|e| lost_reason(&e)))
        });
        let warnings = lost
            .iter()
            .map(|l| {
                let mut w = format!("stage `{}` runs again: {}", l.stage, l.reason);
                if !l.downstream.is_empty() {
                    let verb = if l.downstream.len() == 1 {
                        "does"
                    } else {
                        "do"
                    };
                    w.push_str(&format!(
                        "; so {verb} {}, which had used its results",
                        stage_list(&l.downstream)
                    ));
                }
                w
            })
            .collect();
        (record, warnings)
    })
    .await
    .map_err(|e| RunError::Resume {
        id,
        message: format!("checking the artifacts of finished stages failed: {e}"),
    })
}

/// What is wrong with a producer's artifacts, for the warning that it runs
/// again.
fn lost_reason(e: &sluice_record::artifacts::ArtifactError) -> String {
    use sluice_record::artifacts::ArtifactError;
    match e {
        ArtifactError::Missing { name, path, .. } => format!(
            "its artifact `{name}` is missing from the artifact store ({})",
            path.display()
        ),
        ArtifactError::DigestMismatch {
            name, path, actual, ..
        } => format!(
            "its artifact `{name}` is corrupt in the artifact store ({}: the content hashes to {actual})",
            path.display()
        ),
        other => format!("its artifacts cannot be used: {other}"),
    }
}

/// The state directory holds every run's records, logs and artifacts; a
/// stage that can read it sees other stages' outputs, and one that can write
/// it could forge them. wasmtime-wasi cannot hide a subdirectory of a
/// preopen, so a state directory inside a workspace that any stage may
/// reach is refused outright.
fn check_state_outside_workspace(state_dir: &Path, pipeline: &Pipeline) -> Result<(), RunError> {
    let Some((stage, access)) =
        pipeline
            .stages
            .iter()
            .find_map(|(name, s)| match s.grants.workspace {
                pipeline::WorkspaceAccess::None => None,
                pipeline::WorkspaceAccess::Read => Some((name, "read")),
                pipeline::WorkspaceAccess::Write => Some((name, "write")),
            })
    else {
        return Ok(());
    };
    let absolute = |p: &Path| {
        p.canonicalize().unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    // The state directory may not exist yet: resolve its nearest existing
    // ancestor so that a symlink on the way is followed.
    let mut existing = absolute(state_dir);
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut state = absolute(&existing);
    for name in rest.into_iter().rev() {
        state.push(name);
    }
    let workspace = absolute(&pipeline.workspace);
    if state.starts_with(&workspace) {
        return Err(RunError::StateInWorkspace {
            state_dir: state_dir.to_path_buf(),
            workspace: pipeline.workspace.clone(),
            stage: stage.clone(),
            access,
        });
    }
    Ok(())
}

/// The workspace's git source: read, or being read on a blocking thread.
enum SourceRead {
    Done(Option<sluice_engine::provenance::SourceState>),
    Reading(tokio::task::JoinHandle<Option<sluice_engine::provenance::SourceState>>),
}

/// Where a run's fixed cost goes: `--log sluice::timing=debug` prints the
/// time since the run began at each step of the setup.
struct PhaseClock(std::time::Instant);

impl PhaseClock {
    fn start() -> PhaseClock {
        PhaseClock(std::time::Instant::now())
    }

    fn mark(&self, phase: &str) {
        tracing::debug!(
            target: "sluice::timing",
            elapsed_us = self.0.elapsed().as_micros() as u64,
            "{phase}"
        );
    }
}

/// The compile cache holds native code that the runner loads without
/// checking it again, so it must never lie where a stage can write: a
/// stage granted `workspace: write` could plant code there for the next
/// run. A cache inside the pipeline's workspace is therefore not used at
/// all (plugins are compiled in memory) and the user is told how to move it.
fn usable_cache_dir<'a>(cache_dir: &'a Path, workspace: &Path) -> Option<&'a Path> {
    let absolute = |p: &Path| {
        std::fs::create_dir_all(p).ok();
        p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
    };
    if absolute(cache_dir).starts_with(absolute(workspace)) {
        tracing::warn!(
            cache = %cache_dir.display(),
            workspace = %workspace.display(),
            "the compile cache is inside the workspace, where stages may write; \
             compiling in memory instead (set --cache-dir or SLUICE_CACHE_DIR to a directory outside it)"
        );
        eprintln!(
            "warning: compile cache {} is inside the pipeline's workspace {}, where stages may write; \
             plugins are compiled in memory this run. Point --cache-dir (or SLUICE_CACHE_DIR) outside the workspace.",
            cache_dir.display(),
            workspace.display()
        );
        None
    } else {
        Some(cache_dir)
    }
}

/// "stage `a`", "stages `a`, `b` and `c`", "stages `a`, `b`, `c` and 7 more".
fn stage_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "no stage".into(),
        1 => format!("stage {}", quoted[0]),
        n if n <= SHOWN => format!(
            "stages {} and {}",
            quoted[..n - 1].join(", "),
            quoted[n - 1]
        ),
        n => format!("stages {} and {} more", quoted.join(", "), n - SHOWN),
    }
}

#[cfg(test)]
mod stage_list_tests {
    use super::stage_list;

    #[test]
    fn lists_a_few_and_counts_the_rest() {
        let names = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
        assert_eq!(stage_list(&names(1)), "stage `s0`");
        assert_eq!(stage_list(&names(2)), "stages `s0` and `s1`");
        assert_eq!(stage_list(&names(3)), "stages `s0`, `s1` and `s2`");
        assert_eq!(
            stage_list(&names(100)),
            "stages `s0`, `s1`, `s2` and 97 more"
        );
    }
}
