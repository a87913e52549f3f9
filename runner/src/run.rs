//! `sluice run`: load the pipeline, start or resume its record, load every
//! plugin once (compile cache, in parallel), then hand the DAG to the
//! scheduler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::artifacts::Cas;
use crate::config_schema::ConfigSchema;
use crate::host::logpipe::Redactor;
use crate::host::{sandbox, Host, Plugin, PoolSizing};
use crate::pipeline::{self, Pipeline, PipelineError, PluginRef};
use crate::record::{self, PluginRecord, RecordError, RunRecord, RunStatus, RunStore, StageRecord};
use crate::report::{Event, Reporter};
use crate::scheduler::{self, Scheduler};
use crate::stage_exec::WasmExecutor;

/// Largest plugin file the runner reads.
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

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
}

/// Why a run could not be carried out (as opposed to a run that failed).
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
    /// The host could not start.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// The artifact store is unusable.
    #[error(transparent)]
    Artifacts(#[from] crate::artifacts::ArtifactError),
}

impl RunError {
    /// Exit code: 2 for invalid input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Pipeline(_) | RunError::Plugin { .. } | RunError::Resume { .. } => 2,
            RunError::Record(RecordError::NotFound { .. }) => 2,
            RunError::Record(RecordError::Busy(_)) => 2,
            _ => 1,
        }
    }
}

fn new_record(pipeline: &Pipeline) -> RunRecord {
    let stages: IndexMap<String, StageRecord> = pipeline
        .stages
        .keys()
        .map(|k| (k.clone(), StageRecord::pending(k)))
        .collect();
    RunRecord {
        schema: record::SCHEMA,
        run_id: record::new_run_id(),
        pipeline: pipeline.name.clone(),
        pipeline_path: pipeline.path.clone(),
        pipeline_digest: pipeline.digest.clone(),
        status: RunStatus::Running,
        created_at: record::now(),
        updated_at: record::now(),
        unsigned_plugins_allowed: false,
        stages,
    }
}

/// Read a plugin file once, with a size cap, and hash it.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, String), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(format!(
            "{} is {} bytes; plugins larger than {MAX_PLUGIN_BYTES} bytes are refused",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok((bytes, digest))
}

/// Load the plugins of the stages that will run, each file once, compiling
/// in parallel.
/// Plugins by stage, and the config schema each publishes.
type LoadedPlugins = (
    HashMap<String, (Plugin, PluginRecord)>,
    HashMap<String, ConfigSchema>,
);

async fn load_plugins(
    host: &Arc<Host>,
    pipeline: &Pipeline,
    stages: &[String],
    scratch: &Path,
    reporter: &dyn Reporter,
) -> Result<LoadedPlugins, RunError> {
    let mut by_path: IndexMap<PathBuf, Vec<String>> = IndexMap::new();
    for name in stages {
        let Some(stage) = pipeline.stages.get(name) else {
            continue;
        };
        match &stage.uses {
            PluginRef::Path(p) => by_path.entry(p.clone()).or_default().push(name.clone()),
            PluginRef::Oci(r) => {
                return Err(RunError::Plugin {
                    stage: name.clone(),
                    reference: r.clone(),
                    message: "OCI plugin references are not supported by this runner yet; use a file path (pull the component first)".into(),
                })
            }
        }
    }
    let mut jobs = Vec::new();
    for (path, users) in by_path {
        let host = host.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            let loaded = read_plugin(&path)
                .and_then(|(bytes, digest)| host.load(&bytes, &digest).map_err(|e| e.to_string()));
            (path, users, loaded)
        }));
    }
    let mut plugins = HashMap::new();
    let mut schemas = HashMap::new();
    for job in jobs {
        let (path, users, loaded) = job.await.map_err(|e| RunError::Plugin {
            stage: String::new(),
            reference: String::new(),
            message: format!("loading task failed: {e}"),
        })?;
        let reference = path.display().to_string();
        let plugin = loaded.map_err(|message| RunError::Plugin {
            stage: users.join(", "),
            reference: reference.clone(),
            message,
        })?;
        reporter.event(&Event::PluginLoaded {
            reference: &reference,
            digest: &plugin.digest,
            cached: plugin.cache == crate::host::CacheOutcome::Hit,
            millis: plugin.load_time.as_millis() as u64,
        });
        let info = sandbox::describe(&plugin, &scratch.join(plugin.digest.replace(':', "-")))
            .await
            .map_err(|e| RunError::Plugin {
                stage: users.join(", "),
                reference: reference.clone(),
                message: format!("`describe` failed: {e}"),
            })?;
        for user in &users {
            if let Some(stage) = pipeline.stages.get(user) {
                let missing = crate::capabilities::not_granted(&info.capabilities, &stage.grants);
                if !missing.is_empty() {
                    let msg = format!(
                        "stage `{user}`: plugin {} declares it may use {}, which the pipeline does not grant; calls needing it will be denied",
                        info.name,
                        missing.join(", ")
                    );
                    reporter.event(&Event::Warning { message: &msg });
                }
            }
        }
        let rec = PluginRecord {
            reference: reference.clone(),
            digest: plugin.digest.clone(),
            name: Some(info.name.clone()),
            version: Some(info.version.clone()),
            kind: Some(info.kind.clone()),
        };
        let schema = match info.config_schema.as_deref().map(ConfigSchema::compile) {
            Some(Ok(schema)) => Some(schema),
            Some(Err(why)) => {
                let msg = format!(
                    "plugin {reference}: its config schema is not used ({why}); `with:` is passed unchecked"
                );
                reporter.event(&Event::Warning { message: &msg });
                None
            }
            None => None,
        };
        for user in users {
            if let Some(schema) = &schema {
                schemas.insert(user.clone(), schema.clone());
            }
            plugins.insert(user, (plugin.clone(), rec.clone()));
        }
    }
    Ok((plugins, schemas))
}

/// Start (or resume) a run and drive it to its end or a pause.
pub async fn run(opts: &RunOptions, reporter: Arc<dyn Reporter>) -> Result<RunRecord, RunError> {
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
    let resumed = lock.is_some();
    if resumed {
        scheduler::reset_for_resume(&mut record);
    }
    let jobs = opts.jobs.max(1);
    let to_run: Vec<String> = record
        .stages
        .iter()
        .filter(|(_, r)| !r.state.succeeded())
        .map(|(n, _)| n.clone())
        .collect();
    reporter.event(&Event::RunStarted {
        run_id: &record.run_id,
        pipeline: &pipeline.name,
        stages: pipeline.stages.len(),
        jobs,
        resumed,
    });
    let pool = PoolSizing {
        concurrent_instances: (jobs + 4) as u32,
    };
    let host = Arc::new(Host::new(&opts.cache_dir, &pool)?);
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| {
        RunError::Record(RecordError::Io {
            path: opts.state_dir.clone(),
            source,
        })
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("describe-")
        .tempdir_in(&opts.state_dir)
        .map_err(|source| {
            RunError::Record(RecordError::Io {
                path: opts.state_dir.clone(),
                source,
            })
        })?;
    let (plugins, schemas) =
        load_plugins(&host, &pipeline, &to_run, scratch.path(), reporter.as_ref()).await?;
    drop(scratch);
    let _lock = match lock {
        Some(lock) => lock,
        None => {
            store.create(&record)?;
            store.lock(&record.run_id)?
        }
    };
    let secret_values: Vec<String> = pipeline
        .stages
        .values()
        .flat_map(|s| s.grants.secrets.iter())
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let cas = Arc::new(Cas::open(&opts.state_dir.join("cas"))?);
    let executor = Arc::new(WasmExecutor {
        pipeline: Arc::new(pipeline.clone()),
        plugins,
        schemas,
        cas,
        run_dir: store.run_dir(&record.run_id),
        redactor: Arc::new(Redactor::new(secret_values)),
        reporter: reporter.clone(),
    });
    let options = scheduler::Options {
        jobs,
        fail_fast: opts.fail_fast,
        retry_backoff: Duration::from_millis(250),
    };
    let scheduler = Scheduler::new(&pipeline, record, &store, reporter.as_ref(), options);
    Ok(scheduler.run(executor).await?)
}
