//! The resolved pipeline: every default applied, every path absolute, every
//! reference checked. The rest of the runner only ever sees these types.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sluice_types::NetPattern;

use crate::dag;
use sluice_files::locate::Location;

/// A validated pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The path the pipeline was loaded from, as given.
    pub path: PathBuf,
    /// Absolute directory of the pipeline file; relative paths in it are
    /// resolved against this.
    pub dir: PathBuf,
    /// Absolute directory mounted as `/workspace` (default: `dir`).
    pub workspace: PathBuf,
    /// Pipeline name (`[a-z0-9][a-z0-9._-]*`).
    pub name: String,
    /// Absolute path of the trust policy named by `policy:`, if any.
    pub policy: Option<PathBuf>,
    /// `sha256:<hex>` of the file's bytes, recorded in every run.
    pub digest: String,
    /// The stages, in file order.
    pub stages: IndexMap<String, Stage>,
}

impl Pipeline {
    /// Stage names in an order where every stage comes after all of its
    /// `needs`; among stages that could go in either order, file order wins,
    /// so the result is stable.
    pub fn topo_order(&self) -> Vec<&str> {
        dag::topo_order(&self.stages)
    }

    /// Every stage `stage` depends on, directly or transitively through
    /// `needs`. Empty for an unknown stage.
    pub fn ancestors(&self, stage: &str) -> BTreeSet<String> {
        dag::ancestors(&self.stages, stage)
    }
}

/// One stage of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The stage's name (its key under `stages:`).
    pub name: String,
    /// The plugin component that implements the stage.
    pub uses: PluginRef,
    /// Stages that must finish before this one starts (no duplicates).
    pub needs: Vec<String>,
    /// Plugin configuration: always a JSON object, templates not yet expanded.
    pub with: serde_json::Value,
    /// What the stage may touch; anything not granted is denied.
    pub grants: Grants,
    /// Thresholds on the metrics the stage reports.
    pub gates: Vec<GateSpec>,
    /// When the stage runs, given the outcome of its `needs`.
    pub when: When,
    /// Wall-clock limit for one attempt.
    pub timeout: Duration,
    /// How long a cancelled attempt (fail-fast, an interrupt, its timeout)
    /// may run on to put things back before it is dropped
    /// (`grace-period:`; WIT 0.2 stages only, 0.1 ones cannot tell).
    pub grace_period: Duration,
    /// Extra attempts after a failure (0..=10).
    pub retries: u32,
    /// The environment the stage acts on (e.g. `production`), if any.
    pub environment: Option<String>,
    /// Whether the run pauses for `sluice approve` before this stage.
    pub approval: bool,
    /// What an inconclusive verdict does (`on-inconclusive:`).
    pub on_inconclusive: OnInconclusive,
    /// The labels an agent needs to run the stage (`runs-on:`); empty
    /// (`any`) when the stage does not say. Only remote executors look at
    /// it: a local run runs every stage itself.
    pub runs_on: sluice_types::LabelSet,
    /// Where the stage is defined (its name key) in the pipeline file.
    pub location: Location,
}

/// Where a stage's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A component file on disk (absolute path; it existed at load time).
    Path(PathBuf),
    /// An OCI reference (`oci://registry/repo:tag@sha256:…`), parsed.
    Oci(sluice_types::OciReference),
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Path(path) => write!(f, "{}", path.display()),
            PluginRef::Oci(reference) => write!(f, "{reference}"),
        }
    }
}

/// Capabilities granted to a stage. The default grants nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// Access to `/workspace`.
    pub workspace: WorkspaceAccess,
    /// Host environment variables the stage may read.
    pub env: Vec<String>,
    /// `host:port` patterns the stage may connect to (`*.internal:8080`,
    /// `127.0.0.1:*`, `localhost:8000-8100`), in the grammar of
    /// [`sluice_types::net`].
    pub network: Vec<NetPattern>,
    /// Host programs (bare names, looked up in `PATH`) the stage may run.
    pub exec: Vec<String>,
    /// Secrets the stage may read.
    pub secrets: Vec<String>,
    /// Extra TLS roots (`grants.tls-ca`): PEM files whose certificates the
    /// stage's HTTPS connections trust besides the public (webpki) roots.
    pub tls_ca: Vec<TlsCa>,
    /// Memory limit in bytes (from `grants.memory`, else `defaults.memory`, else 256 MiB; at most 4 GiB).
    pub memory: u64,
    /// Cap on log/output bytes (from `grants.output`, else `defaults.output`, else 1 MiB).
    pub output: u64,
    /// Cap on the total size of the artifacts one attempt leaves in
    /// `/artifacts/out` (from `grants.artifacts`, else `defaults.artifacts`,
    /// else 10 GiB).
    pub artifacts: u64,
}

/// One `grants.tls-ca` file, checked at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsCa {
    /// The path as written in the pipeline file, for messages.
    pub file: String,
    /// The absolute path it was read from.
    pub path: PathBuf,
    /// `sha256:<hex>` of the bytes read at load time; the executor refuses
    /// a file that changed since, so the roots used are the ones recorded.
    pub digest: String,
    /// How many certificates it holds (at least one).
    pub certificates: usize,
}

/// Access to the workspace directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkspaceAccess {
    /// Not mounted at all.
    #[default]
    None,
    /// Mounted read-only.
    Read,
    /// Mounted read-write.
    Write,
}

/// A threshold on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// Metric name as the plugin reports it (`tests.failed`).
    pub metric: String,
    /// Lowest acceptable value (inclusive).
    pub min: Option<f64>,
    /// Highest acceptable value (inclusive).
    pub max: Option<f64>,
    /// The only acceptable value.
    pub equals: Option<f64>,
    /// What a violated gate does.
    pub on_fail: OnFail,
}

/// What a violated gate does to the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFail {
    /// Fail the stage, which stops the stages that need it.
    #[default]
    Block,
    /// Record a warning and go on.
    Warn,
}

/// What an inconclusive verdict of a stage does to the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInconclusive {
    /// The stage is blocked and the run fails (the safe default).
    #[default]
    Block,
    /// The run pauses for `sluice approve <run> <stage>`; after approval
    /// the stage runs again (Argo Rollouts: an inconclusive analysis pauses
    /// the rollout for a human). The stage keeps its own progress, e.g. in
    /// the target's state, so the next attempt continues where it stopped.
    Pause,
}

/// When a stage runs, given how the stages it needs ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// Only if every stage it needs succeeded.
    #[default]
    Success,
    /// Only if a stage it needs (transitively) failed or was blocked by a gate.
    Failure,
    /// Whatever happened upstream, once its needs have ended.
    Always,
}
