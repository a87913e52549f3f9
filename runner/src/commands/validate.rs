//! `sluice validate`: the pipeline file, then every stage's `with:` against
//! the config schema its plugin publishes (`describe`, in a sandbox with no
//! grants, as `plugin inspect` runs it; compiled plugins come from the
//! compile cache), so a typo such as `junitxml:` or `fromat:` is reported
//! before a run, with the closest key the plugin knows.
//!
//! Values that are `${{ }}` templates are only known at run time; a schema
//! violation that involves one is left to `run` (which checks the expanded
//! `with:` before the stage starts) and counted in the output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_engine::admission::{read_plugin, PluginFileError};
use sluice_host::{sandbox, Host, HostError, PoolSizing};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::{self as pipeline, PipelineError, PluginRef};

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
/// schemas) and describe it in one paragraph.
pub async fn validate(path: &Path, cache_dir: &Path) -> Result<String, ValidateError> {
    let p = pipeline::load(path)?;
    let host = Host::new(
        Some(cache_dir),
        &PoolSizing {
            concurrent_instances: 2,
        },
    )?;
    // Each plugin file is described once, whatever number of stages use it.
    let mut by_plugin: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for name in p.topo_order() {
        if let Some(PluginRef::Path(file)) = p.stages.get(name).map(|s| &s.uses) {
            by_plugin
                .entry(file.clone())
                .or_default()
                .push(name.to_string());
        }
    }
    // Describe each plugin once.
    let mut schemas: BTreeMap<PathBuf, Option<(ConfigSchema, String)>> = BTreeMap::new();
    for (file, stages) in &by_plugin {
        let plugin_error = |message: String| ValidateError::Plugin {
            stage: stages.join("`, `"),
            plugin: file.clone(),
            message,
        };
        let (bytes, digest) =
            read_plugin(file).map_err(|e: PluginFileError| plugin_error(e.to_string()))?;
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
        schemas.insert(file.clone(), schema);
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
        let PluginRef::Path(file) = &s.uses else {
            continue;
        };
        let Some((schema, plugin)) = schemas.get(file).and_then(Option::as_ref) else {
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
                format!(
                    "see the plugin's config schema: `sluice plugin inspect --json {}`",
                    file.display()
                )
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
            out.push_str(&format!("  {name}: {}{needs}\n", s.uses));
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
    Ok(out)
}
