//! `sluice plugin inspect <file.wasm>`.

use std::path::Path;

use sluice_engine::admission::read_plugin;
use sluice_host::bindings::wit::Capability;
use sluice_host::{sandbox, Host, PoolSizing};

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
pub async fn inspect(cache_dir: &Path, file: &Path, json: bool) -> anyhow::Result<String> {
    let (bytes, digest) = read_plugin(file).map_err(anyhow::Error::msg)?;
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
        .map_err(|e| anyhow::anyhow!("{}: `describe` failed: {e}", file.display()))?;
    let caps: Vec<String> = info.capabilities.iter().map(capability).collect();
    if json {
        let schema: Option<serde_json::Value> = info
            .config_schema
            .as_deref()
            .map(|s| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.to_string())));
        let v = serde_json::json!({
            "file": file.display().to_string(), "digest": digest, "size": bytes.len(),
            "name": info.name, "version": info.version, "kind": info.kind,
            "description": info.description, "capabilities": caps, "config_schema": schema,
            "imports": shape.imports, "exports": shape.exports,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "{} {} ({})\n  {}\n  file: {} ({} bytes)\n  digest: {digest}\n",
        info.name,
        info.version,
        info.kind,
        info.description,
        file.display(),
        bytes.len()
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
