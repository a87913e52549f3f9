//! `sluice validate`: the pipeline file, then every stage's `with:` against
//! the config schema its plugin publishes (`describe`, in a sandbox with no
//! grants, as `plugin inspect` runs it; compiled plugins come from the
//! compile cache), so a typo such as `junitxml:` or `fromat:` is reported
//! before a run, with the closest key the plugin knows.
//!
//! Values that are `${{ }}` templates are only known at run time; a schema
//! violation that involves one is left to `run` (which checks the expanded
//! `with:` before the stage starts) and counted in the output.
//!
//! `oci://` plugins: the references parse with the pipeline; the lock file
//! is read and compared with them (a reference it lacks, an entry no stage
//! uses); a pinned plugin already in the pull cache is described like a
//! file. Nothing is pulled unless `--pull` asks for it (then as `run` pulls:
//! tags resolved, lock and `--locked` applied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_engine::admission::{read_plugin, PluginFileError};
use sluice_host::{sandbox, Host, HostError, PoolSizing};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::{self as pipeline, Pipeline, PipelineError, PluginRef};
use sluice_types::OciReference;

use crate::oci_plugins::{self as oci, LockFile, OciRunError, RegistryAccess};

/// Why `sluice validate` refused a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The pipeline file itself is invalid.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// `with:` blocks break their plugins' config schemas: every problem,
    /// each located in the file.
    #[error("{}", render_all(.0))]
    Config(Vec<PipelineError>),
    /// A stage's plugin cannot be read, loaded or described.
    #[error("stage `{stage}`: plugin {}: {message}", plugin.display())]
    Plugin {
        /// The stages using it.
        stage: String,
        /// Its file.
        plugin: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The WebAssembly engine cannot start.
    #[error(transparent)]
    Host(#[from] HostError),
    /// An OCI plugin or the lock file is unusable.
    #[error(transparent)]
    Oci(#[from] OciRunError),
}

/// How `validate` treats `oci://` plugins.
#[derive(Debug, Clone, Default)]
pub struct ValidateOci {
    /// How to reach registries (only with `pull`).
    pub registry: RegistryAccess,
    /// `--pull`: resolve and pull every reference (as `run` would).
    pub pull: bool,
    /// `--locked`: every reference must be in the lock file.
    pub locked: bool,
}

/// Where a plugin's bytes come from.
enum Source {
    File(PathBuf),
    Bytes {
        bytes: Vec<u8>,
        digest: String,
    },
    /// Not available without pulling: why.
    Unavailable(String),
}

/// The OCI references of `p`: what the lock says of them, and each one's
/// bytes when they can be had (pulled with `--pull`, else from the cache).
async fn oci_sources(
    p: &Pipeline,
    cache_dir: &Path,
    opts: &ValidateOci,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<OciReference, Source>, ValidateError> {
    let stages: Vec<String> = p.topo_order().iter().map(|s| s.to_string()).collect();
    let references = oci::references(p, &stages);
    let mut out = BTreeMap::new();
    if references.is_empty() {
        return Ok(out);
    }
    let lock_file = oci::lock_path(&p.path);
    let lock = LockFile::read(&lock_file).map_err(OciRunError::from)?;
    let lock_name = lock_file.display();
    let unlocked: Vec<&OciReference> = references
        .iter()
        .filter(|r| lock.as_ref().and_then(|l| l.get(r)).is_none())
        .collect();
    if opts.locked {
        if let Some(r) = unlocked.first() {
            return Err(OciRunError::NotLocked {
                reference: r.to_string(),
                lock: lock_file.clone(),
            }
            .into());
        }
    }
    match &lock {
        None => notes.push(format!(
            "  lock: no {lock_name}; tags are resolved when the pipeline runs (`sluice lock` pins them)"
        )),
        Some(l) => {
            notes.push(format!(
                "  lock: {lock_name} pins {} of {} OCI reference{}",
                references.len() - unlocked.len(),
                references.len(),
                if references.len() == 1 { "" } else { "s" }
            ));
            for r in &unlocked {
                notes.push(format!(
                    "  lock: {r} is not in {lock_name}: its tag is resolved when the pipeline \
                     runs, and `run --locked` refuses it; run `sluice lock`"
                ));
            }
            for stale in l
                .plugins
                .keys()
                .filter(|k| !references.iter().any(|r| r.to_string() == **k))
            {
                notes.push(format!(
                    "  lock: {stale} is locked but no stage uses it; `sluice lock` removes it"
                ));
            }
        }
    }
    if opts.pull {
        let settings = oci::Settings {
            registry: opts.registry.options().map_err(OciRunError::Options)?,
            cache_dir: cache_dir.to_path_buf(),
            locked: opts.locked,
            pins: Default::default(),
        };
        let pulled = oci::pull_all(&references, &settings, lock.as_ref(), &lock_file).await?;
        for w in pulled.warnings {
            notes.push(format!("  warning: {w}"));
        }
        for (r, plugin) in pulled.plugins {
            notes.push(format!("  pulled {}", plugin.origin.pinned()));
            out.insert(
                r,
                Source::Bytes {
                    bytes: plugin.file.bytes.as_ref().clone(),
                    digest: plugin.file.digest.clone(),
                },
            );
        }
        return Ok(out);
    }
    // Without --pull: what is pinned and cached is described; nothing is
    // fetched.
    let cache = sluice_oci::PullCache::open(cache_dir).map_err(|source| OciRunError::Registry {
        reference: references[0].to_string(),
        source,
    })?;
    for r in references {
        let locked = lock.as_ref().and_then(|l| l.get(&r));
        let manifest = r
            .digest()
            .map(str::to_owned)
            .or_else(|| locked.map(|e| e.manifest.clone()));
        let source = match manifest {
            None => Source::Unavailable("its tag is not pinned".into()),
            Some(manifest) => match cache.get(&manifest) {
                Ok(Some(cached)) => {
                    if let Some(entry) = locked.filter(|e| e.manifest == manifest) {
                        if entry.component != cached.component_digest {
                            return Err(OciRunError::ComponentMismatch {
                                reference: r.to_string(),
                                lock: lock_file.clone(),
                                manifest,
                                locked: entry.component.clone(),
                                actual: cached.component_digest,
                            }
                            .into());
                        }
                    }
                    Source::File(cached.component_path)
                }
                Ok(None) => Source::Unavailable(format!("{manifest} is not in the pull cache")),
                Err(source) => {
                    return Err(OciRunError::Registry {
                        reference: r.to_string(),
                        source,
                    }
                    .into())
                }
            },
        };
        out.insert(r, source);
    }
    Ok(out)
}

fn render_all(errors: &[PipelineError]) -> String {
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let mut out = text.join("\n");
    if errors.len() > 1 {
        out.push_str(&format!("\n{} problems in `with:` blocks", errors.len()));
    }
    out
}

/// Check a pipeline (and its stages' `with:` against their plugins'
/// schemas) and describe it in one paragraph; `oci://` plugins are not
/// pulled.
pub async fn validate(path: &Path, cache_dir: &Path) -> Result<String, ValidateError> {
    validate_with(path, cache_dir, &ValidateOci::default()).await
}

/// [`validate`], with `oci://` plugins treated as `opts` says.
pub async fn validate_with(
    path: &Path,
    cache_dir: &Path,
    opts: &ValidateOci,
) -> Result<String, ValidateError> {
    let p = pipeline::load(path)?;
    let mut oci_notes = Vec::new();
    let mut oci_sources = oci_sources(&p, cache_dir, opts, &mut oci_notes).await?;
    let host = Host::new(
        Some(cache_dir),
        &PoolSizing {
            concurrent_instances: 2,
        },
    )?;
    // Each plugin is described once, whatever number of stages use it.
    let mut by_plugin: BTreeMap<String, (Vec<String>, PathBuf)> = BTreeMap::new();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for name in p.topo_order() {
        let Some(uses) = p.stages.get(name).map(|s| &s.uses) else {
            continue;
        };
        let key = uses.to_string();
        if !sources.contains_key(&key) {
            let source = match uses {
                PluginRef::Path(file) => Source::File(file.clone()),
                PluginRef::Oci(r) => oci_sources
                    .remove(r)
                    .unwrap_or_else(|| Source::Unavailable("it was not resolved".into())),
            };
            sources.insert(key.clone(), source);
        }
        by_plugin
            .entry(key.clone())
            .or_insert_with(|| (Vec::new(), PathBuf::from(&key)))
            .0
            .push(name.to_string());
    }
    // Describe each plugin once.
    let mut schemas: BTreeMap<String, Option<(ConfigSchema, String)>> = BTreeMap::new();
    let mut unavailable: Vec<String> = Vec::new();
    for (key, (stages, shown)) in &by_plugin {
        let plugin_error = |message: String| ValidateError::Plugin {
            stage: stages.join("`, `"),
            plugin: shown.clone(),
            message,
        };
        let (bytes, digest) = match sources.remove(key) {
            Some(Source::File(file)) => {
                read_plugin(&file).map_err(|e: PluginFileError| plugin_error(e.to_string()))?
            }
            Some(Source::Bytes { bytes, digest }) => (bytes, digest),
            Some(Source::Unavailable(why)) => {
                unavailable.push(format!(
                    "  with: not checked for {} ({key}: {why}; `sluice validate --pull` pulls it)",
                    stages.join(", ")
                ));
                continue;
            }
            None => continue,
        };
        let plugin = host
            .load(&bytes, &digest)
            .map_err(|e| plugin_error(e.to_string()))?;
        let info = sandbox::describe(&plugin)
            .await
            .map_err(|e| plugin_error(format!("`describe` failed: {e}")))?;
        let schema = match info.config_schema.as_deref() {
            Some(text) => Some((
                ConfigSchema::compile(text).map_err(|why| {
                    plugin_error(format!("its config schema cannot be used: {why}"))
                })?,
                format!("{} {}", info.name, info.version),
            )),
            None => None,
        };
        schemas.insert(key.clone(), schema);
    }
    // Then every stage, in pipeline order.
    let mut errors = Vec::new();
    let mut checked = 0usize;
    let mut templated = 0usize;
    let mut without_schema: Vec<String> = Vec::new();
    for stage in p.topo_order() {
        let Some(s) = p.stages.get(stage) else {
            continue;
        };
        let key = s.uses.to_string();
        let Some(described) = schemas.get(&key) else {
            // Not available without pulling: said above.
            continue;
        };
        let Some((schema, plugin)) = described.as_ref() else {
            without_schema.push(stage.to_string());
            continue;
        };
        checked += 1;
        for v in schema.check(&s.with) {
            if v.templated {
                templated += 1;
                continue;
            }
            let unknown_key = v.message.starts_with("unknown key");
            let message = format!(
                "stages.{stage}.{}: {} (plugin {plugin})",
                v.dotted(),
                v.message
            );
            let hint = v.hint.clone().unwrap_or_else(|| {
                format!("see the plugin's config schema: `sluice plugin inspect --json {key}`")
            });
            errors.push(pipeline::with_error(
                &p,
                stage,
                &v.path,
                unknown_key,
                &message,
                &hint,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ValidateError::Config(errors));
    }
    let mut out = format!(
        "{}: pipeline `{}` is valid: {} stage{}\n",
        path.display(),
        p.name,
        p.stages.len(),
        if p.stages.len() == 1 { "" } else { "s" }
    );
    for name in p.topo_order() {
        if let Some(s) = p.stages.get(name) {
            let needs = if s.needs.is_empty() {
                String::new()
            } else {
                format!(" (needs {})", s.needs.join(", "))
            };
            // Only stages that name agent labels say where they run.
            let runs_on = if s.runs_on.is_empty() {
                String::new()
            } else {
                format!(" (runs on {})", s.runs_on)
            };
            out.push_str(&format!("  {name}: {}{needs}{runs_on}\n", s.uses));
        }
    }
    out.push_str(&format!(
        "  with: checked against the plugin's config schema for {checked} stage{}",
        if checked == 1 { "" } else { "s" }
    ));
    if templated > 0 {
        out.push_str(&format!(
            "; {templated} value{} with `${{{{ }}}}` templates checked when the run expands them",
            if templated == 1 { "" } else { "s" }
        ));
    }
    out.push('\n');
    if !without_schema.is_empty() {
        out.push_str(&format!(
            "  with: not checked for {} (the plugin publishes no config schema)\n",
            without_schema.join(", ")
        ));
    }
    for line in unavailable.iter().chain(&oci_notes) {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
