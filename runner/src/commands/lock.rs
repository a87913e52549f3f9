//! `sluice lock`: resolve every `oci://` plugin reference of a pipeline
//! (each tag to the manifest it points to now), pull each into the pull
//! cache with its signature referrers, and write the pipeline's lock file
//! (`sluice.lock` beside `sluice.yaml`). `sluice run` then pins tags to the
//! locked manifests; `sluice run --locked` refuses a tag that moved.
//!
//! Nothing is judged here: signatures are checked by the trust policy when
//! the plugins run (or with `sluice plugin verify`).

use std::path::Path;

use sluice_pipeline as pipeline;

use crate::oci_plugins::{self as oci, LockEntry, LockFile, RegistryAccess};
use crate::run::RunError;

/// Locks the OCI plugins of the pipeline at `path`; returns what to print.
pub async fn lock(
    path: &Path,
    cache_dir: &Path,
    registry: &RegistryAccess,
) -> Result<String, RunError> {
    let p = pipeline::load(path)?;
    let stages: Vec<String> = p.topo_order().iter().map(|s| s.to_string()).collect();
    let references = oci::references(&p, &stages);
    let lock_file = oci::lock_path(&p.path);
    if references.is_empty() {
        return Ok(format!(
            "{}: no stage uses an `oci://` plugin; nothing to lock ({} not written)\n",
            path.display(),
            lock_file.display()
        ));
    }
    // The old lock is only compared with: every tag is resolved again. An
    // unreadable one is replaced (that is how it is repaired).
    let old = match LockFile::read(&lock_file) {
        Ok(old) => old,
        Err(e) => {
            tracing::warn!("replacing the unreadable lock file: {e}");
            None
        }
    };
    let settings = oci::Settings {
        registry: registry.options().map_err(oci::OciRunError::Options)?,
        cache_dir: cache_dir.to_path_buf(),
        locked: false,
        pins: Default::default(),
    };
    let pulled = oci::pull_all(&references, &settings, None, &lock_file).await?;
    let mut lock = LockFile::empty(lock_file.clone());
    let mut lines = Vec::new();
    for reference in &references {
        let Some(plugin) = pulled.plugins.get(reference) else {
            continue;
        };
        let entry = LockEntry {
            manifest: plugin.origin.manifest.clone(),
            component: plugin.component.clone(),
        };
        let change = match old.as_ref().and_then(|o| o.get(reference)) {
            None => "new".to_owned(),
            Some(before) if *before == entry => "unchanged".to_owned(),
            Some(before) => format!("changed from {}", before.manifest),
        };
        lines.push(format!(
            "  {reference}\n    manifest {} ({change})\n    component {}",
            entry.manifest, entry.component
        ));
        lock.plugins.insert(reference.to_string(), entry);
    }
    let dropped: Vec<&String> = old
        .iter()
        .flat_map(|o| o.plugins.keys())
        .filter(|k| !lock.plugins.contains_key(*k))
        .collect();
    lock.write().map_err(oci::OciRunError::from)?;
    let mut out = format!(
        "{}: {} OCI plugin reference{} locked (pulled into the cache; signatures are checked \
         when they run)\n",
        lock_file.display(),
        references.len(),
        if references.len() == 1 { "" } else { "s" }
    );
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    for reference in dropped {
        out.push_str(&format!("  {reference}: removed (no stage uses it)\n"));
    }
    for warning in pulled.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    Ok(out)
}
