//! `sluice plugin inspect <file.wasm>`.

use std::path::{Path, PathBuf};

use sluice_engine::admission::{read_plugin, PluginFileError};
use sluice_host::bindings::wit::Capability;
use sluice_host::{sandbox, Host, HostError, PoolSizing};

/// Why `sluice plugin inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The plugin file cannot be read.
    #[error(transparent)]
    File(#[from] PluginFileError),
    /// The engine cannot start, or the file is not a component it can load.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The plugin's `describe` failed.
    #[error("{}: `describe` failed: {reason}", file.display())]
    Describe {
        /// The plugin file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The JSON description cannot be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

fn capability(c: &Capability) -> String {
    match c {
        Capability::WorkspaceRead => "workspace: read".into(),
        Capability::WorkspaceWrite => "workspace: write".into(),
        Capability::Env(n) => format!("env: {n}"),
        Capability::Network(n) => format!("network: {n}"),
        Capability::Exec(p) => format!("exec: {p}"),
        Capability::Secret(s) => format!("secrets: {s}"),
    }
}

/// Describe a plugin: `describe` output, digest, imports and exports.
pub async fn inspect(cache_dir: &Path, file: &Path, json: bool) -> Result<String, InspectError> {
    let (bytes, digest) = read_plugin(file)?;
    let host = Host::new(
        Some(cache_dir),
        &PoolSizing {
            concurrent_instances: 2,
        },
    )?;
    let shape = host.shape(&bytes)?;
    let plugin = host.load(&bytes, &digest)?;
    let info = sandbox::describe(&plugin)
        .await
        .map_err(|e| InspectError::Describe {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
    let caps: Vec<String> = info.capabilities.iter().map(capability).collect();
    let kind = sandbox::kind_name(&info.kind);
    if json {
        let schema: Option<serde_json::Value> = info
            .config_schema
            .as_deref()
            .map(|s| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.to_string())));
        let v = serde_json::json!({
            "file": file.display().to_string(), "digest": digest, "size": bytes.len(),
            "name": info.name, "version": info.version, "kind": kind,
            "wit": plugin.wit,
            "description": info.description, "capabilities": caps, "config_schema": schema,
            "imports": shape.imports, "exports": shape.exports,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "{} {} ({kind})\n  {}\n  file: {} ({} bytes)\n  digest: {digest}\n  wit: sluice:stage@{}\n",
        info.name,
        info.version,
        info.description,
        file.display(),
        bytes.len(),
        plugin.wit,
    );
    out.push_str("  capabilities:\n");
    if caps.is_empty() {
        out.push_str("    (none)\n");
    }
    for c in caps {
        out.push_str(&format!("    {c}\n"));
    }
    out.push_str(&format!(
        "  config schema: {}\n",
        if info.config_schema.is_some() {
            "yes (--json shows it)"
        } else {
            "none"
        }
    ));
    out.push_str("  imports:\n");
    for i in &shape.imports {
        out.push_str(&format!("    {i}\n"));
    }
    out.push_str("  exports:\n");
    for e in &shape.exports {
        out.push_str(&format!("    {e}\n"));
    }
    Ok(out)
}
