//! `sluice run --agent unix:PATH` and `sluice run --executor nats://…`:
//! the stages run on agents (docs/fleet.md) instead of in this process.
//!
//! Everything before the first stage is the same as for a local run —
//! the pipeline, the record, the coordinator's own admission of every
//! plugin under the pipeline and operator policies — except where the
//! plugins are described: a warm local agent describes them itself (so
//! this process builds no wasmtime engine at all), while a NATS
//! coordinator still loads them (`describe`, config schemas and capability
//! warnings need them, and agents come and go). The attempts then go to a
//! [`RemoteExecutor`] over the transport instead of the `LocalExecutor`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_engine::admission::PluginFile;
use sluice_engine::report::{Event, Reporter};
use sluice_fleet::nats::{NatsConfig, NatsDispatch};
use sluice_fleet::proto::{JobId, PluginBlobs};
use sluice_fleet::remote::RemoteOptions;
use sluice_fleet::transport::Dispatch;
use sluice_fleet::uds::UdsDispatch;
use sluice_fleet::FleetError;
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::Pipeline;
use sluice_record::artifacts::Cas;
use sluice_record::{PluginRecord, RunRecord, StageState};

use super::{AdmittedPlugins, RunError};

/// Where the stages of a run go.
#[derive(Debug, Clone)]
pub enum ExecutorTarget {
    /// A warm local agent listening on this unix socket (`--agent
    /// unix:PATH`).
    Agent(PathBuf),
    /// The agents of a NATS JetStream fleet (`--executor nats://…`);
    /// boxed, so the command line's arguments stay small.
    Nats(Box<NatsConfig>),
}

/// How a run reaches agents ([`super::run_on`]).
#[derive(Debug, Clone, Default)]
pub struct FleetRunOptions {
    /// `None`: every stage runs in this process, as always.
    pub target: Option<ExecutorTarget>,
    /// Set when an agent refused a stage's plugin or grants: the run then
    /// exits 3 ([`crate::error::run_exit_code_refused`]).
    pub refused: Arc<AtomicBool>,
}

/// `--agent`'s value: `unix:PATH`.
pub fn parse_agent(text: &str) -> Result<ExecutorTarget, String> {
    match text.strip_prefix("unix:") {
        Some(path) if !path.is_empty() => Ok(ExecutorTarget::Agent(PathBuf::from(path))),
        _ => Err(format!(
            "`{text}` is not an agent address: write it as unix:PATH, the socket of `sluice agent --listen unix:PATH`"
        )),
    }
}

/// `--executor`'s value (also `SLUICE_EXECUTOR`):
/// `nats://HOST:PORT[?namespace=NAME]`.
pub fn parse_executor(text: &str) -> Result<ExecutorTarget, FleetError> {
    NatsConfig::parse(text).map(|c| ExecutorTarget::Nats(Box::new(c)))
}

/// A connected transport.
pub(super) enum Connected {
    /// The warm local agent: shares this machine, the CAS and the run
    /// directory.
    Uds(Arc<UdsDispatch>),
    /// The NATS fleet.
    Nats {
        /// The transport.
        dispatch: Arc<NatsDispatch>,
        /// `workspace=snapshot` of `--executor`: workspaces travel as
        /// snapshots through the object store.
        snapshot_workspace: bool,
    },
}

impl Connected {
    /// Connect to `target`: `cas` and `run_dir` are this run's (the local
    /// agent reads and writes them directly).
    pub(super) async fn open(
        target: &ExecutorTarget,
        cas: &Cas,
        run_dir: &Path,
    ) -> Result<Connected, FleetError> {
        match target {
            ExecutorTarget::Agent(socket) => {
                let dispatch = UdsDispatch::connect(socket, &coordinator(), cas, run_dir).await?;
                tracing::info!(agent = %dispatch.agent().name, socket = %socket.display(), "connected to the local agent");
                Ok(Connected::Uds(Arc::new(dispatch)))
            }
            ExecutorTarget::Nats(config) => {
                let layout = config.connect().await?;
                Ok(Connected::Nats {
                    dispatch: Arc::new(NatsDispatch::new(layout)),
                    snapshot_workspace: config.snapshot_workspace,
                })
            }
        }
    }

    /// The transport as the remote executor uses it.
    pub(super) fn dispatch(&self) -> Arc<dyn Dispatch> {
        match self {
            Connected::Uds(d) => d.clone(),
            Connected::Nats { dispatch, .. } => dispatch.clone(),
        }
    }

    /// Whether the agent shares this run's CAS, run directory and
    /// workspace (the local agent).
    pub(super) fn shared(&self) -> bool {
        matches!(self, Connected::Uds(_))
    }
}

/// `host:pid` of this coordinator, for the agents' logs.
pub(super) fn coordinator() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Stages the record shows `running`: a coordinator died while their jobs
/// were out. Taken before the record is reset for the resume; the remote
/// executor looks each job up (under the epoch it was sent with) before
/// sending the stage again.
pub(super) fn adopt_map(record: &RunRecord) -> HashMap<String, JobId> {
    record
        .stages
        .iter()
        .filter(|(_, r)| r.state == StageState::Running && r.attempts > 0)
        .filter_map(|(stage, r)| {
            JobId::new(record.run_id.clone(), record.fleet_epoch, stage, r.attempts).ok()
        })
        .map(|id| (id.stage.clone(), id))
        .collect()
}

/// The plugins by component digest, and the files to upload for them.
pub(super) type PluginBlobMaps = (HashMap<String, PluginBlobs>, HashMap<String, PathBuf>);

/// The plugins as jobs name them: by component digest, with the digests of
/// their sidecars (stored in `cas`, from where they are uploaded or, for
/// the local agent, read), and the component files to upload.
pub(super) fn plugin_blobs(
    files: &HashMap<String, PluginFile>,
    cas: &Cas,
) -> Result<PluginBlobMaps, RunError> {
    let mut blobs = HashMap::new();
    let mut paths = HashMap::new();
    for file in files.values() {
        let sidecar = |text: &Option<String>, suffix: &str| -> Result<Option<String>, RunError> {
            let Some(text) = text else {
                return Ok(None);
            };
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
            let from = PathBuf::from(format!("{}{suffix}", file.path.display()));
            cas.ingest_verified(&mut text.as_bytes(), &digest, &from)?;
            Ok(Some(digest))
        };
        let entry = PluginBlobs {
            digest: file.digest.clone(),
            bundle: sidecar(&file.bundle, ".sigstore.json")?,
            attestations: sidecar(&file.attestations, ".intoto.sigstore.json")?,
            path: Some(file.path.clone()),
        };
        paths.insert(file.digest.clone(), file.path.clone());
        blobs.insert(file.digest.clone(), entry);
    }
    Ok((blobs, paths))
}

/// The remote executor's options for this run.
pub(super) fn remote_options(
    pipeline: &Pipeline,
    record: &RunRecord,
    connected: &Connected,
    plugins: HashMap<String, PluginBlobs>,
    plugin_files: HashMap<String, PathBuf>,
    adopt: HashMap<String, JobId>,
    state_dir: &Path,
) -> RemoteOptions {
    let shared = connected.shared();
    let snapshots = matches!(
        connected,
        Connected::Nats {
            snapshot_workspace: true,
            ..
        }
    );
    RemoteOptions {
        epoch: record.fleet_epoch,
        coordinator: coordinator(),
        shared_cas: shared,
        // By path (an agent configured `workspace: shared` sees it there,
        // one that does not refuses the stage), or as a snapshot through
        // the object store (`--executor …?workspace=snapshot`).
        shared_workspace: !snapshots,
        snapshot_workspace: snapshots,
        snapshot_digests: snapshots.then(|| snapshot_digests(state_dir, &pipeline.workspace)),
        plugins,
        plugin_files,
        runs_on: pipeline
            .stages
            .iter()
            .filter(|(_, s)| !s.runs_on.is_empty())
            .map(|(name, s)| (name.clone(), s.runs_on.clone()))
            .collect(),
        adopt,
        ..RemoteOptions::default()
    }
}

/// Where the digests of `workspace`'s files are kept between the runs of
/// `state_dir`: `snapshots/<hash of the workspace path>.json` (one state
/// directory may serve several checkouts).
fn snapshot_digests(state_dir: &Path, workspace: &Path) -> PathBuf {
    use sha2::Digest as _;
    let absolute = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf());
    let hash = hex::encode(sha2::Sha256::digest(
        absolute.as_os_str().as_encoded_bytes(),
    ));
    state_dir
        .join("snapshots")
        .join(format!("{}.json", &hash[..16]))
}

/// What the local agent said about each plugin: the record of each
/// stage's plugin, the config schemas, and warnings.
pub(super) type Described = (
    HashMap<String, PluginRecord>,
    HashMap<String, ConfigSchema>,
    Vec<String>,
);

/// Have the local agent describe every admitted plugin (it checks the
/// digest, admits the plugin under its own policy and compiles it, or
/// finds it warm). A plugin it cannot describe is not fatal here: the
/// stage still goes to the agent, which decides again with a typed answer
/// (a refusal fails the run with exit 3); its `with:` is then not checked
/// against a schema.
pub(super) async fn describe_on_agent(
    agent: &UdsDispatch,
    pipeline: &Pipeline,
    admitted: AdmittedPlugins,
    reporter: &dyn Reporter,
) -> Result<Described, RunError> {
    let AdmittedPlugins {
        files,
        admitted,
        by_path,
        mut origins,
        warnings,
    } = admitted;
    let mut records = HashMap::new();
    let mut schemas = HashMap::new();
    for (key, users) in by_path {
        let Some(file) = files.get(&key) else {
            continue;
        };
        let origin = origins.remove(&key);
        let mut rec = PluginRecord {
            reference: file.reference.clone(),
            digest: file.digest.clone(),
            name: None,
            version: None,
            kind: None,
            wit: None,
            signer: None,
            policy_rules: Vec::new(),
            oci: origin,
        };
        let mut schema = None;
        match agent.describe(&file.digest, &file.path).await? {
            Ok(info) => {
                super::warn_ungranted(pipeline, &users, &info.name, reporter, |grants| {
                    not_granted(&info.capabilities, grants)
                });
                schema =
                    super::config_schema(&file.reference, info.config_schema.as_deref(), reporter);
                rec.name = Some(info.name);
                rec.version = Some(info.version);
                rec.kind = Some(info.kind);
                rec.wit = Some(info.wit);
            }
            Err(why) => {
                let msg = format!(
                    "agent {} could not describe plugin {} for {}: {why}; it decides again when the stage runs",
                    agent.agent().name,
                    file.reference,
                    super::stage_list(&users)
                );
                reporter.event(&Event::Warning { message: &msg });
            }
        }
        records.extend(super::stage_records(
            users,
            &rec,
            schema.as_ref(),
            &admitted,
            &mut schemas,
        ));
    }
    Ok((records, schemas, warnings))
}

/// Declared capabilities (as the agent writes them: `workspace-read`,
/// `workspace-write`, `env:NAME`, `network:PATTERN`, `exec:PROGRAM`,
/// `secret:NAME`) that `grants` do not cover, by the host's own rule.
fn not_granted(declared: &[String], grants: &sluice_pipeline::Grants) -> Vec<String> {
    use sluice_host::bindings::wit::Capability as C;
    let parsed: Vec<C> = declared
        .iter()
        .filter_map(|c| match c.split_once(':') {
            None if c == "workspace-read" => Some(C::WorkspaceRead),
            None if c == "workspace-write" => Some(C::WorkspaceWrite),
            Some(("env", n)) => Some(C::Env(n.to_owned())),
            Some(("network", n)) => Some(C::Network(n.to_owned())),
            Some(("exec", n)) => Some(C::Exec(n.to_owned())),
            Some(("secret", n)) => Some(C::Secret(n.to_owned())),
            _ => None,
        })
        .collect();
    sluice_host::capabilities::not_granted(&parsed, grants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use sluice_record::StageRecord;

    #[test]
    fn agent_addresses_are_unix_paths() {
        match parse_agent("unix:/run/sluice/agent.sock") {
            Ok(ExecutorTarget::Agent(p)) => assert_eq!(p, Path::new("/run/sluice/agent.sock")),
            other => panic!("{other:?}"),
        }
        for bad in ["unix:", "/run/a.sock", "tcp://h:1", ""] {
            let err = parse_agent(bad).err().unwrap_or_default();
            assert!(err.contains("write it as unix:PATH"), "{bad}: {err}");
        }
    }

    #[test]
    fn executors_are_nats_urls_with_an_optional_namespace() {
        match parse_executor("nats://127.0.0.1:4222?namespace=ci") {
            Ok(ExecutorTarget::Nats(c)) => {
                assert_eq!(c.url, "nats://127.0.0.1:4222");
                assert_eq!(c.namespace, "ci");
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "http://h:1",
            "nats://",
            "nats://h:1?ns=x",
            "nats://h:1?namespace=a.b",
        ] {
            assert!(parse_executor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_running_stages_are_adopted_under_their_old_epoch() {
        let mut stages = IndexMap::new();
        for (name, state, attempts) in [
            ("build", StageState::Passed, 1),
            ("test", StageState::Running, 2),
            ("lint", StageState::Failed, 1),
            ("deploy", StageState::Pending, 0),
        ] {
            let mut r = StageRecord::pending(name);
            r.state = state;
            r.attempts = attempts;
            stages.insert(name.to_owned(), r);
        }
        let mut record = RunRecord::new(
            "20261207-101943-5b3f59",
            "p",
            "/p/sluice.yaml",
            "sha256:00",
            stages,
        );
        record.fleet_epoch = 3;
        let adopt = adopt_map(&record);
        assert_eq!(adopt.len(), 1, "{adopt:?}");
        assert_eq!(adopt["test"].to_string(), "20261207-101943-5b3f59.3.test.2");
    }

    #[test]
    fn declared_capabilities_are_checked_as_the_host_checks_them() {
        let grants = sluice_pipeline::Grants {
            workspace: sluice_pipeline::WorkspaceAccess::Read,
            env: vec!["CI".into()],
            network: vec!["*.internal:443".parse().expect("pattern")],
            exec: vec![],
            secrets: vec![],
            tls_ca: vec![],
            memory: 1 << 20,
            output: 1 << 20,
            artifacts: 1 << 20,
        };
        let declared: Vec<String> = [
            "workspace-read",
            "workspace-write",
            "env:CI",
            "env:HOME",
            "network:api.internal:443",
            "network:example.com:443",
            "exec:git",
            "secret:TOKEN",
            "something-new",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            not_granted(&declared, &grants),
            [
                "`workspace: write`",
                "env `HOME`",
                "network `example.com:443`",
                "exec `git`",
                "secret `TOKEN`"
            ]
        );
    }
}
