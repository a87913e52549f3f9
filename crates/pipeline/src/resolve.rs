//! From wire types to the validated model: defaults, paths, names, limits.
//!
//! Checks run in file order and stop at the first problem, so the error a
//! user sees is the one nearest the top of the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use crate::dag::{self, DagError};
use crate::error::{PipelineError, Reporter};
use crate::model::{GateSpec, Grants, Pipeline, PluginRef, Stage, TlsCa, When};
use crate::shapes::is_identifier;
use crate::template;
use crate::tls_ca::{load_tls_ca, TlsCaError};
use crate::wire::{Quantity, WireDefaults, WireGate, WireGrants, WirePipeline, WireStage};
use sluice_files::locate::YamlPath;
use sluice_types::{ByteSize, Label, LabelSet, NetPattern, PipelineName, StageName};

/// The highest memory limit a stage may ask for: a 32-bit Wasm memory cannot
/// address more.
pub const MAX_MEMORY: u64 = 4 << 30;
/// Memory limit when neither the stage nor `defaults` sets one.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Output cap when neither the stage nor `defaults` sets one.
pub const DEFAULT_OUTPUT: u64 = 1 << 20;
/// Artifact size cap when neither the stage nor `defaults` sets one.
pub const DEFAULT_ARTIFACTS: u64 = 10 << 30;
/// Timeout when neither the stage nor `defaults` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Grace period when the stage sets none: enough to reload a proxy or
/// write a note, short enough that fail-fast still feels fast.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The longest grace period a stage may ask for.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(10 * 60);
/// The most retries a stage may ask for.
pub const MAX_RETRIES: u32 = 10;
/// The longest timeout a stage (or `defaults`) may set: 7 days. Long enough
/// for any stage that watches something (a monitor window, a soak test, a
/// slow canary), short enough that a forgotten stage does not hold a runner
/// for months, and far from the durations that overflow the clock
/// arithmetic (`200000000000000d` used to pass validation and then panic).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

type Result<T> = std::result::Result<T, PipelineError>;

/// Defaults after validation.
struct Defaults {
    timeout: Duration,
    memory: u64,
    output: u64,
    artifacts: u64,
    retries: u32,
}

/// Everything `resolve` needs to know about where the file is.
pub(crate) struct Origin {
    /// The path as given.
    pub path: PathBuf,
    /// Absolute directory of the file.
    pub dir: PathBuf,
    /// `sha256:<hex>` of the file.
    pub digest: String,
}

/// Validates `wire` and builds the model.
pub(crate) fn resolve(wire: WirePipeline, origin: Origin, r: &Reporter<'_>) -> Result<Pipeline> {
    let root = YamlPath::root();
    if wire.version != 1 {
        return Err(r.value(
            &root.key("version"),
            format!("unsupported pipeline file version `{}`", wire.version),
            "this sluice reads `version: 1`".to_owned(),
        ));
    }
    if let Err(e) = PipelineName::new(wire.name.as_str()) {
        return Err(r.value(&root.key("name"), e.to_string(), e.hint));
    }
    let workspace = match &wire.workspace {
        None => origin.dir.clone(),
        Some(ws) => {
            let path = join(&origin.dir, ws);
            if !path.is_dir() {
                return Err(r.value(
                    &root.key("workspace"),
                    format!("workspace `{ws}` is not a directory (looked for `{}`)", path.display()),
                    "create the directory, or fix the path: it is relative to the pipeline file's directory"
                        .to_owned(),
                ));
            }
            path
        }
    };
    let policy = match &wire.policy {
        None => None,
        Some(p) => {
            let path = join(&origin.dir, p);
            if !path.is_file() {
                // `is_file` follows links: a link to a regular file is fine.
                let problem = if path.exists() {
                    "is not a regular file"
                } else {
                    "not found"
                };
                return Err(r.value(
                    &root.key("policy"),
                    format!("policy file `{p}` {problem} (looked for `{}`)", path.display()),
                    "fix the path (it is relative to the pipeline file's directory), or remove `policy:`"
                        .to_owned(),
                ));
            }
            Some(path)
        }
    };
    let defaults = resolve_defaults(&wire.defaults, r)?;
    if wire.stages.is_empty() {
        return Err(r.value(
            &root.key("stages"),
            "the pipeline has no stages",
            "add at least one stage under `stages:`, e.g. `lint: { uses: plugins/lint.wasm }`"
                .to_owned(),
        ));
    }
    let mut stages = IndexMap::with_capacity(wire.stages.len());
    for (name, stage) in &wire.stages {
        let resolved = resolve_stage(name, stage, &defaults, &origin.dir, r)?;
        stages.insert(name.clone(), resolved);
    }
    dag::check(&stages).map_err(|e| dag_error(e, &stages, r))?;
    check_templates(&stages, r)?;
    Ok(Pipeline {
        path: origin.path,
        dir: origin.dir,
        workspace,
        name: wire.name,
        policy,
        digest: origin.digest,
        stages,
    })
}

fn resolve_defaults(wire: &WireDefaults, r: &Reporter<'_>) -> Result<Defaults> {
    let path = YamlPath::root().key("defaults");
    Ok(Defaults {
        timeout: duration(
            wire.timeout.as_ref(),
            &path.key("timeout"),
            DEFAULT_TIMEOUT,
            r,
        )?,
        memory: memory(wire.memory.as_ref(), &path.key("memory"), DEFAULT_MEMORY, r)?,
        output: output(wire.output.as_ref(), &path.key("output"), DEFAULT_OUTPUT, r)?,
        artifacts: size(
            wire.artifacts.as_ref(),
            &path.key("artifacts"),
            DEFAULT_ARTIFACTS,
            r,
        )?,
        retries: retries(wire.retries, &path.key("retries"), 0, r)?,
    })
}

fn resolve_stage(
    name: &str,
    wire: &WireStage,
    defaults: &Defaults,
    dir: &Path,
    r: &Reporter<'_>,
) -> Result<Stage> {
    let path = YamlPath::root().key("stages").key(name);
    if let Err(e) = StageName::new(name) {
        return Err(r.key(&path, e.to_string(), e.hint));
    }
    let uses = resolve_uses(&wire.uses, &path.key("uses"), dir, r)?;
    let with = match &wire.with {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(serde_json::Map::new()),
        Some(value @ serde_json::Value::Object(_)) => value.clone(),
        Some(_) => return Err(r.value(
            &path.key("with"),
            format!("`with` of stage `{name}` must be a mapping"),
            "`with:` holds the plugin's settings as keys and values, e.g. `with: { paths: [src] }`"
                .to_owned(),
        )),
    };
    let when = wire.when.unwrap_or_default();
    if when == When::Failure && wire.needs.0.is_empty() {
        return Err(r.value(
            &path.key("when"),
            format!("stage `{name}` runs `when: failure` but needs no stage"),
            "a failure handler must name the stages it watches in `needs`, e.g. `needs: [deploy]`"
                .to_owned(),
        ));
    }
    if let Some(environment) = &wire.environment {
        if environment.trim().is_empty() {
            return Err(r.value(
                &path.key("environment"),
                "the environment name is empty",
                "name the environment the stage acts on (e.g. `production`), or remove `environment:`"
                    .to_owned(),
            ));
        }
    }
    Ok(Stage {
        name: name.to_owned(),
        uses,
        needs: wire.needs.0.clone(),
        with,
        grants: resolve_grants(name, &wire.grants, &path.key("grants"), defaults, dir, r)?,
        gates: wire
            .gates
            .iter()
            .enumerate()
            .map(|(i, gate)| resolve_gate(gate, &path.key("gates").index(i), r))
            .collect::<Result<_>>()?,
        when,
        timeout: duration(
            wire.timeout.as_ref(),
            &path.key("timeout"),
            defaults.timeout,
            r,
        )?,
        grace_period: grace_period(wire.grace_period.as_ref(), &path.key("grace-period"), r)?,
        retries: retries(wire.retries, &path.key("retries"), defaults.retries, r)?,
        environment: wire.environment.clone(),
        approval: wire.approval.is_some_and(|a| a.0),
        on_inconclusive: wire.on_inconclusive.unwrap_or_default(),
        runs_on: runs_on(wire.runs_on.as_ref(), &path.key("runs-on"), r)?,
        location: r.map.key(&path),
    })
}

fn resolve_uses(text: &str, path: &YamlPath, dir: &Path, r: &Reporter<'_>) -> Result<PluginRef> {
    if text.starts_with(sluice_types::oci::OCI_SCHEME) {
        return match text.parse::<sluice_types::OciReference>() {
            Ok(reference) => Ok(PluginRef::Oci(reference)),
            Err(e) => Err(r.value(path, e.to_string(), e.hint().to_owned())),
        };
    }
    if text.contains("://") || text.trim().is_empty() {
        return Err(r.value(
            path,
            format!("`{text}` is neither a plugin path nor an `oci://` reference"),
            "give the path of a `.wasm` component relative to the pipeline file, or write \
             `oci://registry/repository:tag`, optionally pinned with `@sha256:<64 hex digits>`"
                .to_owned(),
        ));
    }
    let file = join(dir, text);
    let problem = match std::fs::metadata(&file) {
        Ok(meta) if meta.is_file() => return Ok(PluginRef::Path(file)),
        Ok(_) => "is not a file",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
        Err(_) => "cannot be read",
    };
    Err(r.value(
        path,
        format!(
            "plugin `{text}` {problem} (looked for `{}`)",
            file.display()
        ),
        "paths in `uses` are relative to the pipeline file's directory; build the plugin \
         (e.g. `cargo build --target wasm32-wasip2 --release`) or fix the path"
            .to_owned(),
    ))
}

fn resolve_grants(
    stage: &str,
    wire: &WireGrants,
    path: &YamlPath,
    defaults: &Defaults,
    dir: &Path,
    r: &Reporter<'_>,
) -> Result<Grants> {
    check_each(&wire.env, &path.key("env"), r, |name| {
        (!is_identifier(name)).then(|| {
            (
                format!("`{name}` is not an environment variable name"),
                "names use letters, digits and `_`, and do not start with a digit".to_owned(),
            )
        })
    })?;
    check_each(&wire.secrets, &path.key("secrets"), r, |name| {
        (!is_identifier(name)).then(|| {
            (
                format!("`{name}` is not a valid secret name"),
                "secret names use letters, digits and `_` (`[A-Za-z_][A-Za-z0-9_]*`)".to_owned(),
            )
        })
    })?;
    check_each(&wire.exec, &path.key("exec"), r, |program| {
        let bare = program.rsplit(['/', '\\']).next().unwrap_or(program);
        if program.contains(['/', '\\']) {
            Some((
                format!("`{program}` must be a bare program name, not a path"),
                format!("write `{bare}`; sluice looks granted programs up in `PATH`"),
            ))
        } else if program.trim().is_empty() || program.contains(char::is_whitespace) {
            Some((
                format!("`{program}` is not a program name"),
                "name one program per entry, without arguments (e.g. `cargo`)".to_owned(),
            ))
        } else {
            None
        }
    })?;
    let network = wire
        .network
        .iter()
        .enumerate()
        .map(|(i, pattern)| {
            pattern
                .parse::<NetPattern>()
                .map_err(|e| r.value(&path.key("network").index(i), e.to_string(), e.hint))
        })
        .collect::<Result<Vec<_>>>()?;
    let tls_ca = wire
        .tls_ca
        .iter()
        .enumerate()
        .map(|(i, file)| resolve_tls_ca(stage, file, &path.key("tls-ca").index(i), dir, r))
        .collect::<Result<Vec<_>>>()?;
    Ok(Grants {
        workspace: wire.workspace.unwrap_or_default(),
        env: wire.env.clone(),
        network,
        exec: wire.exec.clone(),
        secrets: wire.secrets.clone(),
        tls_ca,
        memory: memory(
            wire.memory.as_ref(),
            &path.key("memory"),
            defaults.memory,
            r,
        )?,
        output: output(
            wire.output.as_ref(),
            &path.key("output"),
            defaults.output,
            r,
        )?,
        artifacts: size(
            wire.artifacts.as_ref(),
            &path.key("artifacts"),
            defaults.artifacts,
            r,
        )?,
    })
}

/// Runs `problem` on each entry of a list; the first `Some((message, hint))`
/// becomes an error pointing at that entry.
/// One `grants.tls-ca` entry: a PEM file relative to the pipeline file's
/// directory (or absolute), read and checked now so that a bad file fails
/// the load, not the stage.
fn resolve_tls_ca(
    stage: &str,
    file: &str,
    path: &YamlPath,
    dir: &Path,
    r: &Reporter<'_>,
) -> Result<TlsCa> {
    let full = join(dir, file);
    match load_tls_ca(&full, file) {
        Ok(loaded) => Ok(TlsCa {
            file: file.to_owned(),
            path: full,
            digest: loaded.digest,
            certificates: loaded.certificates.len(),
        }),
        Err(e) => {
            let hint = match &e {
                TlsCaError::Read(read) => format!(
                    "{}; paths in `grants.tls-ca` are relative to the pipeline file's directory",
                    read.hint()
                ),
                _ => "give the PEM file of the CA that signed the server's certificate \
                      (`-----BEGIN CERTIFICATE-----` …), e.g. `certs/platform-ca.pem`"
                    .to_owned(),
            };
            Err(r.value(
                path,
                format!("stage `{stage}`: grants.tls-ca `{file}`: {e}"),
                hint,
            ))
        }
    }
}

fn check_each(
    items: &[String],
    path: &YamlPath,
    r: &Reporter<'_>,
    problem: impl Fn(&str) -> Option<(String, String)>,
) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        if let Some((message, hint)) = problem(item) {
            return Err(r.value(&path.index(i), message, hint));
        }
    }
    Ok(())
}

fn resolve_gate(wire: &WireGate, path: &YamlPath, r: &Reporter<'_>) -> Result<GateSpec> {
    if wire.metric.trim().is_empty() || wire.metric.contains(char::is_whitespace) {
        return Err(r.value(
            &path.key("metric"),
            format!("`{}` is not a metric name", wire.metric),
            "use the name the plugin reports, e.g. `tests.failed` or `coverage.line`".to_owned(),
        ));
    }
    for (key, bound) in [
        ("min", wire.min),
        ("max", wire.max),
        ("equals", wire.equals),
    ] {
        if bound.is_some_and(|b| !b.is_finite()) {
            return Err(r.value(
                &path.key(key),
                format!("gate `{}`: `{key}` must be a finite number", wire.metric),
                "write a plain number such as `0` or `80.5`".to_owned(),
            ));
        }
    }
    if wire.min.is_none() && wire.max.is_none() && wire.equals.is_none() {
        return Err(r.value(
            path,
            format!("gate `{}` has no threshold", wire.metric),
            "give it at least one of `min`, `max` or `equals`, e.g. `{ metric: tests.failed, max: 0 }`"
                .to_owned(),
        ));
    }
    if let (Some(min), Some(max)) = (wire.min, wire.max) {
        if min > max {
            return Err(r.value(
                &path.key("min"),
                format!(
                    "gate `{}`: `min` ({min}) is greater than `max` ({max})",
                    wire.metric
                ),
                "no value could pass this gate; swap or correct the bounds".to_owned(),
            ));
        }
    }
    Ok(GateSpec {
        metric: wire.metric.clone(),
        min: wire.min,
        max: wire.max,
        equals: wire.equals,
        on_fail: wire.on_fail,
    })
}

fn duration(
    value: Option<&Quantity>,
    path: &YamlPath,
    fallback: Duration,
    r: &Reporter<'_>,
) -> Result<Duration> {
    let Some(Quantity(text)) = value else {
        return Ok(fallback);
    };
    // The grammar is `sluice_types`'; the limits (above zero, at most
    // `MAX_TIMEOUT`) are the runner's.
    let parsed = text
        .parse::<sluice_types::Duration>()
        .map_err(|e| r.value(path, e.message(), e.hint))?
        .get();
    if parsed.is_zero() {
        return Err(r.value(
            path,
            "a timeout of zero would stop the stage before it starts",
            "give a positive duration such as `5m`".to_owned(),
        ));
    }
    if parsed > MAX_TIMEOUT {
        return Err(r.value(
            path,
            format!(
                "timeout `{}` is longer than the 7 days a stage may run",
                text.trim()
            ),
            "use at most `7d`; a stage that must watch longer can run again in a later pipeline"
                .to_owned(),
        ));
    }
    Ok(parsed)
}

/// `grace-period:`: zero is allowed (drop at once), at most
/// [`MAX_GRACE_PERIOD`].
fn grace_period(value: Option<&Quantity>, path: &YamlPath, r: &Reporter<'_>) -> Result<Duration> {
    let Some(Quantity(text)) = value else {
        return Ok(DEFAULT_GRACE_PERIOD);
    };
    let parsed = text
        .parse::<sluice_types::Duration>()
        .map_err(|e| r.value(path, e.message(), e.hint))?
        .get();
    if parsed > MAX_GRACE_PERIOD {
        return Err(r.value(
            path,
            format!(
                "grace period `{}` is longer than the 10 minutes a cancelled stage may take to stop",
                text.trim()
            ),
            "use at most `10m`".to_owned(),
        ));
    }
    Ok(parsed)
}

fn size(value: Option<&Quantity>, path: &YamlPath, fallback: u64, r: &Reporter<'_>) -> Result<u64> {
    let Some(Quantity(text)) = value else {
        return Ok(fallback);
    };
    // The grammar is `sluice_types`'; "above zero" is the runner's rule.
    let bytes = text
        .parse::<ByteSize>()
        .map_err(|e| r.value(path, e.message(), e.hint))?
        .as_u64();
    if bytes == 0 {
        return Err(r.value(
            path,
            format!("`{text}` is zero"),
            "give a positive size such as `256MiB`".to_owned(),
        ));
    }
    Ok(bytes)
}

fn memory(
    value: Option<&Quantity>,
    path: &YamlPath,
    fallback: u64,
    r: &Reporter<'_>,
) -> Result<u64> {
    let bytes = size(value, path, fallback, r)?;
    if bytes > MAX_MEMORY {
        return Err(r.value(
            path,
            format!(
                "memory limit `{}` is more than the {} a stage may use",
                value.map_or_else(|| ByteSize(bytes).to_string(), |q| q.0.clone()),
                ByteSize(MAX_MEMORY)
            ),
            format!(
                "a 32-bit Wasm component cannot address more; use at most `{}`",
                ByteSize(MAX_MEMORY)
            ),
        ));
    }
    Ok(bytes)
}

fn output(
    value: Option<&Quantity>,
    path: &YamlPath,
    fallback: u64,
    r: &Reporter<'_>,
) -> Result<u64> {
    size(value, path, fallback, r)
}

fn retries(value: Option<u32>, path: &YamlPath, fallback: u32, r: &Reporter<'_>) -> Result<u32> {
    let retries = value.unwrap_or(fallback);
    if retries > MAX_RETRIES {
        return Err(r.value(
            path,
            format!("`retries: {retries}` is more than the {MAX_RETRIES} allowed"),
            format!("use a number from 0 to {MAX_RETRIES}; a stage that fails that often needs fixing, not retrying"),
        ));
    }
    Ok(retries)
}

/// `runs-on:`: one label set, written as one label (`os=linux`), a list
/// of labels (`[net=egress, os=linux]`) or `any`.
fn runs_on(
    value: Option<&sluice_types::OneOrMany>,
    path: &YamlPath,
    r: &Reporter<'_>,
) -> Result<LabelSet> {
    let Some(value) = value else {
        return Ok(LabelSet::any());
    };
    let empty_hint = "name the labels an agent must have, e.g. `runs-on: [os=linux, net=egress]`, or remove `runs-on:` to let any agent run the stage";
    if !value.was_list() {
        let text = value.as_slice().first().map(String::as_str).unwrap_or("");
        return text
            .parse::<LabelSet>()
            .map_err(|e| r.value(path, e.to_string(), e.hint.clone()));
    }
    if value.as_slice().is_empty() {
        return Err(r.value(path, "`runs-on` is an empty list", empty_hint.to_owned()));
    }
    let mut labels = Vec::with_capacity(value.as_slice().len());
    for (i, text) in value.as_slice().iter().enumerate() {
        let label = text
            .parse::<Label>()
            .map_err(|e| r.value(&path.index(i), e.to_string(), e.hint.clone()))?;
        labels.push(label);
    }
    LabelSet::new(labels).map_err(|e| r.value(path, format!("`runs-on`: {e}"), e.hint.clone()))
}

fn dag_error(error: DagError, stages: &IndexMap<String, Stage>, r: &Reporter<'_>) -> PipelineError {
    let needs = |stage: &str, index: usize| {
        YamlPath::root()
            .key("stages")
            .key(stage)
            .key("needs")
            .index(index)
    };
    let names: Vec<&str> = stages.keys().map(String::as_str).collect();
    match error {
        DagError::UnknownNeed {
            stage,
            index,
            need,
            suggestion,
        } => {
            let list = names.join(", ");
            let hint = match suggestion {
                Some(close) => format!("did you mean `{close}`? Stages are: {list}"),
                None => format!("stages are: {list}"),
            };
            r.value(
                &needs(&stage, index),
                format!("stage `{stage}` needs `{need}`, which is not a stage in this pipeline"),
                hint,
            )
        }
        DagError::SelfNeed { stage, index } => r.value(
            &needs(&stage, index),
            format!("stage `{stage}` needs itself"),
            format!("remove `{stage}` from its own `needs`"),
        ),
        DagError::DuplicateNeed { stage, index, need } => r.value(
            &needs(&stage, index),
            format!("stage `{stage}` needs `{need}` twice"),
            "remove the repeated entry".to_owned(),
        ),
        DagError::Cycle {
            cycle,
            stage,
            index,
        } => r.value(
            &needs(&stage, index),
            format!("`needs` form a cycle: {}", cycle.join(" -> ")),
            "each stage in the cycle waits for the next, so none can start; remove one of these \
             `needs` entries"
                .to_owned(),
        ),
    }
}

fn check_templates(stages: &IndexMap<String, Stage>, r: &Reporter<'_>) -> Result<()> {
    let names: Vec<&str> = stages.keys().map(String::as_str).collect();
    for (name, stage) in stages {
        // Ancestors cost O(stages) each; only templated stages need them.
        if !template::has_templates(&stage.with) {
            continue;
        }
        let with_path = YamlPath::root().key("stages").key(name).key("with");
        let ancestors = dag::ancestors(stages, name);
        template::check(name, &stage.with, &with_path, &ancestors, &names)
            .map_err(|e| r.within(&e.path, &e.raw, e.message, e.hint))?;
    }
    Ok(())
}

/// `dir/rel` without `.` components; `rel` may also be absolute.
fn join(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel).components().collect()
}
