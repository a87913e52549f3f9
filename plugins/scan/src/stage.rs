//! The SDK glue: `describe` and `run` for the sluice runner. Everything
//! else in the crate is plain Rust that also runs natively.

use std::path::PathBuf;

use sluice_sdk::prelude::*;

use crate::config::{Options, Roots, Settings};
use crate::osv::cache::Cache;
use crate::osv::http::{SdkTransport, MAX_ANSWER_BYTES, MAX_DUMP_BYTES};
use crate::osv::source::{self, Loaded, Source, SourceError};
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
             yarn.lock, pnpm-lock.yaml, requirements*.txt, poetry.lock, Pipfile.lock, uv.lock, \
             go.mod, go.sum) against OSV advisories",
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

        let cache = if settings.dependencies && settings.advisories.iter().any(Source::is_network) {
            open_cache(&settings.cache)
        } else {
            None
        };
        let now = std::time::SystemTime::now();
        let mut loaded = if settings.dependencies && !settings.advisories.is_empty() {
            Some(load_sources(&settings.advisories, cache.as_ref(), now)?)
        } else {
            None
        };
        // The API is asked about the packages found, so after the scan.
        let api = settings
            .advisories
            .iter()
            .any(|s| matches!(s, Source::Api(_)));
        if settings.dependencies && loaded.is_none() {
            sluice_sdk::warn(
                "no advisory database (`with.advisories`): lockfiles are read but not checked, \
                 and no vulns.* metric is reported",
            );
        }
        let mut skip: Vec<PathBuf> = settings
            .advisories
            .iter()
            .filter_map(|s| match s {
                Source::Dir(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        skip.extend(settings.cache.dir.iter().cloned());
        let started = std::time::Instant::now();
        let offline_db = loaded.as_ref().filter(|_| !api).map(|l| &l.db);
        let mut outcome =
            scan::run(&roots.workspace, &settings, offline_db, &skip).map_err(|e| match e {
                scan::ScanError::Root { .. } => {
                    sluice_sdk::error(&e);
                    StageError::denied(Capability::WorkspaceRead)
                }
                scan::ScanError::Rules(_) => StageError::failed(e.to_string()),
            })?;
        if let (true, Some(l)) = (api, loaded.as_mut()) {
            let notes = l.notes.len();
            let warnings = l.db.warnings.len();
            let mut transport = SdkTransport {
                max_bytes: MAX_ANSWER_BYTES,
            };
            source::query_apis(
                &settings.advisories,
                &outcome.dependencies,
                &mut transport,
                cache.as_ref(),
                now,
                l,
            )
            .map_err(source_error)?;
            for n in l.notes.iter().skip(notes) {
                sluice_sdk::info(n);
            }
            for w in l.db.warnings.iter().skip(warnings) {
                sluice_sdk::warn(w);
            }
            scan::check_dependencies(&mut outcome, &l.db, &settings);
        }

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
             skipped {} binary and {} over max-file-size; suppressed {} inline, {} allowlisted and {} documentation examples or placeholders",
            outcome.files,
            outcome.bytes,
            if secs > 0.0 {
                outcome.bytes as f64 / 1e6 / secs
            } else {
                0.0
            },
            outcome.lockfiles.len(),
            outcome.package_count(),
            outcome.skipped_binary,
            outcome.skipped_large,
            outcome.ignored_inline,
            outcome.allowlisted,
            outcome.placeholders
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
            r = r.output("vulns", outcome.vuln_total().to_string());
        }
        Ok(r)
    }
}

/// Opens the cache for network sources; without a writable directory
/// (a `workspace: read` grant) every answer is fetched, and the log says so.
fn open_cache(settings: &source::CacheSettings) -> Option<Cache> {
    let dir = settings.dir.as_ref()?;
    match Cache::open(dir, settings.max_age) {
        Ok(c) => Some(c),
        Err(e) => {
            sluice_sdk::info!(
                "not caching OSV answers: cannot write `{}` ({e}); grant `workspace: write` to \
                 cache them, or set `cache: false` to silence this",
                settings.shown
            );
            None
        }
    }
}

/// Loads the directory, zip and dump-URL sources, logging what was read
/// and skipped.
fn load_sources(
    sources: &[Source],
    cache: Option<&Cache>,
    now: std::time::SystemTime,
) -> Result<Loaded, StageError> {
    let mut download = SdkTransport {
        max_bytes: MAX_DUMP_BYTES,
    };
    let loaded = source::load_offline(sources, &mut download, cache, now).map_err(source_error)?;
    for w in &loaded.db.warnings {
        sluice_sdk::warn(w);
    }
    for n in &loaded.notes {
        sluice_sdk::info(n);
    }
    Ok(loaded)
}

/// A source that failed: the grant to add, a configuration error, or a
/// failed download.
fn source_error(e: SourceError) -> StageError {
    sluice_sdk::error(&e);
    if let Some(authority) = e.denied() {
        return StageError::denied(Capability::Network(authority.to_string()));
    }
    match e {
        SourceError::Fetch { .. } => StageError::failed(e.to_string()),
        _ => StageError::invalid_config(e.to_string()),
    }
}

sluice_sdk::export_stage!(ScanStage);
