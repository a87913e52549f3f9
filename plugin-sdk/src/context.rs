//! [`Context`]: what a stage is told about the run, with typed config access.

use std::cell::RefCell;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use sluice_types::ArtifactRole;

use crate::bindings::sluice::stage::types as wit;
use crate::error::{ResultExt, StageError};
use crate::report::{role_from_wit, ArtifactInfo};

/// Guest path of the workspace preopen.
pub const WORKSPACE_DIR: &str = "/workspace";
/// Guest path under which input artifacts are readable.
pub const INPUTS_DIR: &str = "/artifacts/in";
/// Guest path of the writable output directory.
pub const OUTPUTS_DIR: &str = "/artifacts/out";

/// An immutable artifact produced by an earlier stage and handed to this one.
///
/// Read it from [`Context::input_path`]:
///
/// ```no_run
/// # fn f(ctx: &sluice_sdk::Context) -> Result<(), sluice_sdk::StageError> {
/// for a in ctx.inputs() {
///     let bytes = std::fs::read(ctx.input_path(a))?;
///     sluice_sdk::info(format!("{}/{}: {} bytes ({})", a.stage, a.name, bytes.len(), a.media_type));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Artifact {
    /// The stage that produced it.
    pub stage: String,
    /// Path relative to the producer's `/artifacts/out`, `/`-separated.
    pub name: String,
    /// `sha256:<hex>`, verified by the runner before the stage started.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type declared by the producer (`application/octet-stream` if none).
    pub media_type: String,
    /// The role the producer declared, if any.
    pub role: Option<ArtifactRole>,
    /// The producer's annotations, in the order it reported them.
    pub annotations: Vec<(String, String)>,
}

impl Artifact {
    /// The value of annotation `key`, if the producer set it.
    ///
    /// ```
    /// let a = sluice_sdk::Artifact {
    ///     annotations: vec![("org.opencontainers.image.version".into(), "1.4.0".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(a.annotation("org.opencontainers.image.version"), Some("1.4.0"));
    /// assert_eq!(a.annotation("missing"), None);
    /// ```
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A small value reported by a stage this one `needs`.
///
/// ```no_run
/// # fn f(ctx: &sluice_sdk::Context) {
/// for o in ctx.upstream_outputs() {
///     sluice_sdk::info(format!("{}.{} = {}", o.stage, o.name, o.value));
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamOutput {
    /// The stage that produced the value.
    pub stage: String,
    /// The output's name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Everything a stage is told about the run it is part of.
///
/// Handed to [`Stage::run`](crate::Stage::run). Read the stage's `with:`
/// block with [`config`](Self::config), inputs with
/// [`input_path`](Self::input_path), and write outputs with
/// [`write_artifact`](Self::write_artifact).
///
/// ```no_run
/// use sluice_sdk::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Config { paths: Vec<String> }
///
/// fn run(ctx: Context) -> Result<Report, StageError> {
///     let cfg: Config = ctx.config()?;
///     let ws = ctx.workspace();
///     let n = cfg.paths.iter().filter(|p| ws.join(p).exists()).count();
///     Ok(Report::new(format!("{n} paths exist")).metric("paths.existing", n as f64))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    run_id: String,
    pipeline: String,
    stage: String,
    environment: Option<String>,
    config: String,
    inputs: Vec<Artifact>,
    outputs_dir: String,
    upstream: Vec<UpstreamOutput>,
    attempt: u32,
    deadline: SystemTime,
    grace_period: Duration,
    declared: Rc<RefCell<Vec<ArtifactInfo>>>,
}

impl Context {
    pub(crate) fn from_wit(c: wit::Context, declared: Rc<RefCell<Vec<ArtifactInfo>>>) -> Self {
        // Built without `Duration::new`, which panics on a carry overflow.
        let deadline = Duration::from_secs(c.deadline.seconds)
            .checked_add(Duration::from_nanos(u64::from(c.deadline.nanoseconds)))
            .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Self {
            run_id: c.run_id,
            pipeline: c.pipeline,
            stage: c.stage,
            environment: c.environment,
            config: c.config,
            inputs: c.inputs.into_iter().map(Artifact::from).collect(),
            outputs_dir: c.outputs_dir,
            upstream: c.upstream.into_iter().map(UpstreamOutput::from).collect(),
            attempt: c.attempt,
            deadline,
            grace_period: Duration::from_nanos(c.grace_period),
            declared,
        }
    }

    /// A context built by hand, for unit tests of a stage's logic on the
    /// host. `config` is the `with:` block as JSON; the deadline is an hour
    /// from now and the grace period 10 s.
    ///
    /// ```
    /// let ctx = sluice_sdk::Context::for_test("build", r#"{"release": true}"#);
    /// assert_eq!(ctx.stage(), "build");
    /// assert_eq!(ctx.attempt(), 1);
    /// ```
    pub fn for_test(stage: &str, config: &str) -> Self {
        Self {
            run_id: "test-run".into(),
            pipeline: "test".into(),
            stage: stage.into(),
            environment: None,
            config: config.into(),
            inputs: Vec::new(),
            outputs_dir: OUTPUTS_DIR.into(),
            upstream: Vec::new(),
            attempt: 1,
            deadline: SystemTime::now() + Duration::from_secs(3600),
            grace_period: Duration::from_secs(10),
            declared: Rc::default(),
        }
    }

    /// The stage's `with:` block, deserialized with serde.
    ///
    /// A mismatch becomes [`StageError::InvalidConfig`] naming the key path
    /// and the problem, e.g. `with.retries: invalid type: string "x",
    /// expected u32` or `with: missing field `paths``. Use
    /// `#[serde(deny_unknown_fields)]` to reject typos.
    ///
    /// ```
    /// #[derive(serde::Deserialize, Debug)]
    /// struct Config { retries: u32 }
    ///
    /// let ctx = sluice_sdk::Context::for_test("s", r#"{"retries": "x"}"#);
    /// let err = ctx.config::<Config>().unwrap_err();
    /// assert!(err.message().starts_with("with.retries: invalid type"), "{err}");
    ///
    /// let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let err = ctx.config::<Config>().unwrap_err();
    /// assert_eq!(err.message(), "with: missing field `retries`");
    /// ```
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, StageError> {
        let text = if self.config.trim().is_empty() {
            "{}"
        } else {
            &self.config
        };
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let full = inner.to_string();
            // The JSON was written by the runner: its line/column mean nothing
            // to the person editing the pipeline YAML.
            let position = format!(" at line {} column {}", inner.line(), inner.column());
            let problem = full.strip_suffix(&position).unwrap_or(&full);
            let key = if path == "." {
                "with".to_string()
            } else {
                format!("with.{path}")
            };
            StageError::invalid_config(format!("{key}: {problem}"))
        })
    }

    /// The `with:` block as raw JSON text.
    ///
    /// ```
    /// let ctx = sluice_sdk::Context::for_test("s", r#"{"a":1}"#);
    /// assert_eq!(ctx.config_json(), r#"{"a":1}"#);
    /// ```
    pub fn config_json(&self) -> &str {
        &self.config
    }

    /// Identifier of this run; stable across `--resume`.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert!(!ctx.run_id().is_empty());
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The pipeline's `name`.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert_eq!(ctx.pipeline(), "test");
    /// ```
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// This stage's key in the pipeline's `stages` map.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("lint", "{}");
    /// assert_eq!(ctx.stage(), "lint");
    /// ```
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The stage's `environment:`, if any (for example `production`).
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let env = ctx.environment().unwrap_or("none");
    /// # assert_eq!(env, "none");
    /// ```
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// 1 on the first attempt, 2 on the first retry, and so on.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let is_retry = ctx.attempt() > 1;
    /// # assert!(!is_retry);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the attempt's `timeout:` runs out (wall clock). At the deadline
    /// the runner cancels the stage (see [`cancel`](crate::cancel)) and
    /// drops it [`grace_period`](Self::grace_period) later.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert!(ctx.deadline() > std::time::SystemTime::now());
    /// ```
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }

    /// How long the stage has until its deadline (zero once it has passed),
    /// measured against the guest's wall clock.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let left = ctx.time_left();
    /// # assert!(left > std::time::Duration::from_secs(60));
    /// ```
    pub fn time_left(&self) -> Duration {
        self.deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// How long a cancelled stage may keep running to put things back
    /// before the runner drops it (the stage's `grace-period:`).
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert_eq!(ctx.grace_period(), std::time::Duration::from_secs(10));
    /// ```
    pub fn grace_period(&self) -> Duration {
        self.grace_period
    }

    /// Artifacts of the stages this one `needs`, in pipeline order.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let junit = ctx.inputs().iter().find(|a| a.name.ends_with("junit.xml"));
    /// # assert!(junit.is_none());
    /// ```
    pub fn inputs(&self) -> &[Artifact] {
        &self.inputs
    }

    /// Where `artifact` is readable: `/artifacts/in/<stage>/<name>`.
    ///
    /// ```
    /// # use sluice_sdk::Artifact;
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let a = Artifact {
    ///     stage: "test".into(), name: "reports/junit.xml".into(),
    ///     media_type: "application/xml".into(), ..Default::default()
    /// };
    /// assert_eq!(ctx.input_path(&a), std::path::Path::new("/artifacts/in/test/reports/junit.xml"));
    /// ```
    pub fn input_path(&self, artifact: &Artifact) -> PathBuf {
        Path::new(INPUTS_DIR)
            .join(&artifact.stage)
            .join(&artifact.name)
    }

    /// The value of output `name` reported by upstream stage `stage`.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let version = ctx.upstream("build", "version").unwrap_or("0.0.0");
    /// # assert_eq!(version, "0.0.0");
    /// ```
    pub fn upstream(&self, stage: &str, name: &str) -> Option<&str> {
        self.upstream
            .iter()
            .find(|o| o.stage == stage && o.name == name)
            .map(|o| o.value.as_str())
    }

    /// Every output reported by the stages this one `needs`.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert!(ctx.upstream_outputs().is_empty());
    /// ```
    pub fn upstream_outputs(&self) -> &[UpstreamOutput] {
        &self.upstream
    }

    /// The writable output directory (`/artifacts/out`). Every regular file
    /// left in it when `run` returns `Ok` becomes an artifact of this stage.
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// assert_eq!(ctx.outputs_dir(), std::path::Path::new("/artifacts/out"));
    /// ```
    pub fn outputs_dir(&self) -> PathBuf {
        PathBuf::from(&self.outputs_dir)
    }

    /// The workspace root, `/workspace` (readable or writable only as granted).
    ///
    /// ```
    /// # let ctx = sluice_sdk::Context::for_test("s", "{}");
    /// let manifest = ctx.workspace().join("Cargo.toml");
    /// # assert_eq!(manifest, std::path::Path::new("/workspace/Cargo.toml"));
    /// ```
    pub fn workspace(&self) -> PathBuf {
        PathBuf::from(WORKSPACE_DIR)
    }

    /// Writes `bytes` to `relative_path` under the output directory
    /// (creating parent directories) and declares it with `media_type` in
    /// the report `run` returns, so the call alone is enough.
    ///
    /// `relative_path` uses `/` as separator and must stay inside the output
    /// directory (no leading `/`, no `..`). Returns the full guest path.
    ///
    /// ```no_run
    /// # fn f(ctx: &sluice_sdk::Context) -> Result<(), sluice_sdk::StageError> {
    /// ctx.write_artifact("reports/summary.json", br#"{"ok":true}"#, "application/json")?;
    /// # Ok(()) }
    /// ```
    pub fn write_artifact(
        &self,
        relative_path: &str,
        bytes: impl AsRef<[u8]>,
        media_type: &str,
    ) -> Result<PathBuf, StageError> {
        self.write_artifact_as(
            ArtifactInfo::new(relative_path).media_type(media_type),
            bytes,
        )
    }

    /// Like [`write_artifact`](Self::write_artifact), with the whole
    /// description: `info.path` is the relative path, and its media type,
    /// role and annotations are declared in the report. The role and
    /// annotations are checked with the runner's rules here, so a mistake
    /// fails at the call that made it.
    ///
    /// ```no_run
    /// use sluice_sdk::{ArtifactInfo, ArtifactRole};
    /// # fn f(ctx: &sluice_sdk::Context) -> Result<(), sluice_sdk::StageError> {
    /// ctx.write_artifact_as(
    ///     ArtifactInfo::new("reports/lint.sarif")
    ///         .media_type("application/sarif+json")
    ///         .role(ArtifactRole::Report)
    ///         .annotation("tool", "ruff"),
    ///     b"{}",
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn write_artifact_as(
        &self,
        info: ArtifactInfo,
        bytes: impl AsRef<[u8]>,
    ) -> Result<PathBuf, StageError> {
        let rel = check_relative(&info.path)?;
        let info = ArtifactInfo { path: rel, ..info };
        info.check().map_err(StageError::failed)?;
        let path = self.outputs_dir().join(&info.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        let mut declared = self.declared.borrow_mut();
        declared.retain(|d| d.path != info.path);
        declared.push(info);
        Ok(path)
    }
}

/// Normalizes an artifact path to `a/b/c`, refusing anything that could
/// leave the output directory.
fn check_relative(relative_path: &str) -> Result<String, StageError> {
    let mut parts = Vec::new();
    for c in Path::new(relative_path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(StageError::failed(format!(
                    "artifact path `{relative_path}` must be relative to the output directory \
                     and must not contain `..`"
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(StageError::failed(format!(
            "artifact path `{relative_path}` names no file"
        )));
    }
    Ok(parts.join("/"))
}

impl From<wit::Artifact> for Artifact {
    fn from(a: wit::Artifact) -> Self {
        Self {
            stage: a.stage,
            name: a.name,
            digest: a.digest,
            size: a.size,
            media_type: a.media_type,
            role: a.role.map(role_from_wit),
            annotations: a.annotations,
        }
    }
}

impl From<wit::OutputValue> for UpstreamOutput {
    fn from(o: wit::OutputValue) -> Self {
        Self {
            stage: o.stage,
            name: o.name,
            value: o.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalized_and_checked() {
        assert_eq!(check_relative("a/./b.txt").ok().as_deref(), Some("a/b.txt"));
        assert!(check_relative("../x").is_err());
        assert!(check_relative("/etc/passwd").is_err());
        assert!(check_relative("a/../../x").is_err());
        assert!(check_relative("").is_err());
    }

    #[test]
    fn artifacts_are_written_and_declared_with_their_description() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = Context::for_test("s", "{}");
        ctx.outputs_dir = dir.path().display().to_string();
        let info = ArtifactInfo::new("./r/a.json")
            .media_type("application/json")
            .role(ArtifactRole::Report)
            .annotation("k", "v");
        let path = ctx.write_artifact_as(info, b"{}").expect("written");
        assert!(path.ends_with("r/a.json"));
        ctx.write_artifact("r/a.json", b"[]", "text/plain")
            .expect("rewritten");
        let declared = ctx.declared.borrow();
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].path, "r/a.json");
        assert_eq!(declared[0].role, None);

        let bad = ArtifactInfo::new("x").role(ArtifactRole::Other("Not OK".into()));
        let e = ctx.write_artifact_as(bad, b"").expect_err("bad role");
        assert!(e.message().contains("artifact `x`"), "{e}");
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn config_error_names_nested_key() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            port: u16,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Cfg {
            target: Inner,
        }
        let ctx = Context::for_test("s", r#"{"target": {"port": 70000}}"#);
        let e = ctx.config::<Cfg>().err().map(|e| e.message().to_string());
        assert_eq!(
            e.as_deref(),
            Some("with.target.port: invalid value: integer `70000`, expected u16")
        );
    }
}
