//! The SDK glue: `describe` and `run` for the sluice runner. Everything
//! else in the crate is plain Rust that also runs natively.

use std::path::PathBuf;

use sluice_sdk::prelude::*;

use crate::config::{Options, Roots, Settings};
use crate::osv::AdvisoryDb;
use crate::{report, sarif, scan};

/// The JSON Schema of `with:`, published through `describe`.
pub const CONFIG_SCHEMA: &str = include_str!("schema.json");

/// The `scan` stage.
pub struct ScanStage;

impl Stage for ScanStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "scan",
            env!("CARGO_PKG_VERSION"),
            "scan",
            "Finds committed secrets and vulnerable dependencies (Cargo.lock, package-lock.json, \
             requirements.txt, poetry.lock) against an offline OSV advisory database",
        )
        .config_schema(CONFIG_SCHEMA)
        .capability(Capability::WorkspaceRead)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        let options: Options = ctx.config()?;
        let roots = Roots::sandbox();
        // Without the grant there is no /workspace at all; say so before a
        // relative `advisories` path is reported missing.
        if let Err(e) = std::fs::read_dir(&roots.workspace) {
            sluice_sdk::error!("cannot read {}: {e}", roots.workspace.display());
            return Err(StageError::denied(Capability::WorkspaceRead));
        }
        let settings = Settings::from_options(options, &roots)
            .map_err(|e| StageError::invalid_config(e.to_string()))?;

        let db = match (&settings.advisories, settings.dependencies) {
            (Some(dir), true) => Some(load_db(dir)?),
            _ => None,
        };
        if settings.dependencies && db.is_none() {
            sluice_sdk::warn(
                "no advisory database (`with.advisories`): lockfiles are read but not checked, \
                 and no vulns.* metric is reported",
            );
        }
        let skip: Vec<PathBuf> = settings.advisories.iter().cloned().collect();
        let started = std::time::Instant::now();
        let outcome =
            scan::run(&roots.workspace, &settings, db.as_ref(), &skip).map_err(|e| match e {
                scan::ScanError::Root { .. } => {
                    sluice_sdk::error(&e);
                    StageError::denied(Capability::WorkspaceRead)
                }
                scan::ScanError::Rules(_) => StageError::failed(e.to_string()),
            })?;

        for w in &outcome.warnings {
            sluice_sdk::warn(w);
        }
        for s in &outcome.secrets {
            sluice_sdk::warn!(
                "secret {} (fingerprint {})",
                report::secret_line(s),
                s.fingerprint
            );
        }
        for v in &outcome.vulns {
            sluice_sdk::warn!("vulnerable {}", report::vuln_line(v));
        }
        let secs = started.elapsed().as_secs_f64();
        sluice_sdk::info!(
            "scanned {} files ({} bytes) in {secs:.3} s ({:.1} MB/s), {} lockfiles, {} packages; \
             skipped {} binary and {} over max-file-size; suppressed {} inline and {} allowlisted",
            outcome.files,
            outcome.bytes,
            if secs > 0.0 {
                outcome.bytes as f64 / 1e6 / secs
            } else {
                0.0
            },
            outcome.lockfiles.len(),
            outcome.dependencies.len(),
            outcome.skipped_binary,
            outcome.skipped_large,
            outcome.ignored_inline,
            outcome.allowlisted
        );

        let version = env!("CARGO_PKG_VERSION");
        let sarif_text = serde_json::to_string_pretty(&sarif::to_sarif(&outcome, version))
            .map_err(|e| StageError::failed(format!("serializing SARIF: {e}")))?;
        ctx.write_artifact("scan.sarif", sarif_text, "application/sarif+json")?;
        let json_text = serde_json::to_string_pretty(&report::json_report(&outcome, version))
            .map_err(|e| StageError::failed(format!("serializing scan.json: {e}")))?;
        ctx.write_artifact("scan.json", json_text, "application/json")?;

        let mut r = Report::new(report::summary(&outcome));
        for (name, value, unit) in report::metrics(&outcome) {
            r = match unit {
                Some(u) => r.metric_with_unit(name, value, u),
                None => r.metric(name, value),
            };
        }
        if outcome.secrets_scanned {
            r = r.output("secrets", outcome.secrets.len().to_string());
        }
        if outcome.vulns_checked {
            r = r.output("vulns", outcome.vulns.len().to_string());
        }
        Ok(r)
    }
}

/// Loads the advisory database, logging what was skipped.
fn load_db(dir: &std::path::Path) -> Result<AdvisoryDb, StageError> {
    let db = AdvisoryDb::load(dir).map_err(|e| {
        StageError::invalid_config(format!(
            "with.advisories: {e}; point it at a directory of OSV .json files"
        ))
    })?;
    for w in &db.warnings {
        sluice_sdk::warn(w);
    }
    if db.is_empty() {
        return Err(StageError::invalid_config(format!(
            "with.advisories: `{}` holds no OSV advisories ({} .json files read); an empty \
             database would pass every vulnerability gate, so point it at the directory that \
             holds the advisory .json files",
            dir.display(),
            db.files
        )));
    }
    sluice_sdk::info!("loaded {} advisories from {}", db.len(), dir.display());
    Ok(db)
}

sluice_sdk::export_stage!(ScanStage);
