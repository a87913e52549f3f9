//! The pipeline file (`sluice.yaml`): loading, validation, resolved model.
//!
//! [`load`] reads the file and returns a [`Pipeline`] in which every default
//! is applied, every path is absolute and every reference has been checked,
//! or a [`PipelineError`] that points at the exact line and column and says
//! how to fix it.
//!
//! How it fits together:
//! - `wire`: serde types mirroring the YAML, unknown keys rejected;
//! - `locate`: a second, marker-aware parse that maps YAML paths
//!   (`stages.test.needs[1]`) to positions, for semantic errors;
//! - `resolve`: wire types to model types, one check at a time; durations,
//!   sizes, network patterns and stage and pipeline names are read with
//!   `sluice_types` (one grammar for the whole of sluice, see
//!   `docs/values.md`), variable names and OCI references with `shapes`;
//! - `dag`: `needs` references, cycles, order;
//! - `template`: `${{ … }}` checks at load time and expansion at run time;
//! - `yaml_limits`: nesting depth and alias expansion, checked before serde
//!   parses the file (shared with the policy file).
//!
//! Decisions beyond the file format itself:
//! - The file is parsed with `serde_yaml_ng`, a maintained fork of the
//!   archived `serde_yaml` with the same API and error locations.
//! - A key repeated in one mapping is an error (YAML forbids it; serde would
//!   keep the last one silently).
//! - `needs` may not name a stage twice.
//! - `uses: oci://…` needs a tag or a digest; sluice never assumes `latest`.
//! - `workspace:` and `policy:` must exist when the file is loaded, as must
//!   plugin files named by path.
//! - Durations need a unit (`600` is refused: seconds or minutes?), and
//!   months/years are refused because `10M` is a likely typo for `10m`.
//! - Timeouts, memory limits and output caps must be greater than zero.
//! - Only the first problem is reported, the one nearest the top of the file.
//! - The file is read only if it is a regular file of at most 1 MiB
//!   ([`sluice_files::fsutil::MAX_PIPELINE_BYTES`]), and its YAML may nest at most
//!   64 levels deep, with aliases adding at most 100 000 nodes: a pipe, a
//!   device or a crafted file must not hang or exhaust the runner.
//! - A UTF-8 byte order mark at the start is ignored (the digest still
//!   covers the file byte for byte).
//! - Timeouts are at most 7 days ([`MAX_TIMEOUT`]).
//!
//! Also owns [`gates`] (metric thresholds and plugin verdicts into one
//! verdict) and [`config_schema`] (`with:` checked against a plugin's JSON
//! Schema): pure functions of the pipeline's declarations.
//!
//! Must not depend on wasmtime, tokio, the trust policy or the run record:
//! `sluice validate` and every crate above build on this one alone.

pub mod config_schema;
mod dag;
mod error;
pub mod gates;
mod model;
mod resolve;
mod shapes;
mod template;
pub mod tls_ca;
mod wire;

#[cfg(test)]
mod tests;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use crate::error::PipelineError;
pub use crate::model::{
    GateSpec, Grants, OnFail, OnInconclusive, Pipeline, PluginRef, Stage, TlsCa, When,
    WorkspaceAccess,
};
pub use crate::resolve::{
    DEFAULT_ARTIFACTS, DEFAULT_GRACE_PERIOD, DEFAULT_MEMORY, DEFAULT_OUTPUT, DEFAULT_TIMEOUT,
    MAX_GRACE_PERIOD, MAX_MEMORY, MAX_RETRIES, MAX_TIMEOUT,
};
pub use crate::template::{
    expand, referenced_stages, TemplateContext, TemplateError, TemplateProblem,
};
pub use sluice_files::locate::Location;

use crate::error::Reporter;
use crate::resolve::Origin;
use sluice_files::locate::SourceMap;

/// Reads and validates the pipeline file at `path`.
///
/// Relative paths inside the file are resolved against the file's directory.
pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
    let bytes = sluice_files::fsutil::read_input_file(
        path,
        sluice_files::fsutil::MAX_PIPELINE_BYTES,
        "pipeline file",
    )
    .map_err(PipelineError::input)?;
    match String::from_utf8(bytes) {
        Ok(src) => parse_str(&src, path),
        Err(e) => {
            // Point at the first byte that is not UTF-8.
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let before = String::from_utf8_lossy(valid);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let map = SourceMap::default();
            let reporter = Reporter {
                file: path,
                src: "",
                map: &map,
            };
            Err(reporter.at(
                Location { line, column },
                "the pipeline file is not valid UTF-8",
                "save the file as UTF-8".to_owned(),
            ))
        }
    }
}

/// Validates pipeline source `src` as if it had been read from `path`
/// (which names the file in errors and anchors relative paths; it need not
/// exist, but the plugins, workspace and policy it refers to must).
pub fn parse_str(raw: &str, path: &Path) -> Result<Pipeline, PipelineError> {
    let src = sluice_files::fsutil::strip_bom(raw);
    // Before either YAML parser builds anything: see `yaml_limits`.
    if let Err(e) = sluice_files::yaml_limits::check(src) {
        let (line, column) = e.location();
        let map = SourceMap::default();
        let reporter = Reporter {
            file: path,
            src,
            map: &map,
        };
        return Err(reporter.at(Location { line, column }, &e, e.hint()));
    }
    let map = SourceMap::build(src);
    let reporter = Reporter {
        file: path,
        src,
        map: &map,
    };
    let wire: wire::WirePipeline = serde_yaml_ng::from_str(src).map_err(|e| reporter.serde(&e))?;
    if let Some(duplicate) = map.duplicate() {
        let place = if duplicate.mapping == sluice_files::locate::YamlPath::root() {
            "at the top level".to_owned()
        } else {
            format!("in `{}`", duplicate.mapping)
        };
        return Err(reporter.at(
            duplicate.location,
            format!("`{}` appears twice {place}", duplicate.key),
            format!(
                "the first one is at line {}; YAML keeps only the last, which would hide it, so rename or remove one",
                duplicate.first.line
            ),
        ));
    }
    let absolute = std::path::absolute(path).map_err(|e| PipelineError::io(path, e))?;
    let dir = absolute
        .parent()
        .map_or_else(|| absolute.clone(), Path::to_path_buf);
    let origin = Origin {
        path: path.to_path_buf(),
        dir,
        // Of the file as read, byte order mark included: `--resume` wants
        // the very same bytes.
        digest: format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes()))),
    };
    resolve::resolve(wire, origin, &reporter)
}

/// A located error about stage `stage`'s `with:` at `path` (the segments
/// below `with:`; numbers are list indices), pointing at the key when
/// `at_key` (an unknown key) and at the value otherwise. For problems found
/// after loading, such as `with:` against the plugin's config schema
/// (`sluice validate`). The file is read again for the positions; if that
/// fails, the error points at its start.
pub fn with_error(
    pipeline: &Pipeline,
    stage: &str,
    path: &[String],
    at_key: bool,
    message: &str,
    hint: &str,
) -> PipelineError {
    let src = sluice_files::fsutil::read_input_file(
        &pipeline.path,
        sluice_files::fsutil::MAX_PIPELINE_BYTES,
        "pipeline file",
    )
    .ok()
    .and_then(|bytes| String::from_utf8(bytes).ok())
    .unwrap_or_default();
    let map = SourceMap::build(&src);
    let mut yaml = sluice_files::locate::YamlPath::root()
        .key("stages")
        .key(stage)
        .key("with");
    for segment in path {
        yaml = match segment.parse::<usize>() {
            Ok(i) => yaml.index(i),
            Err(_) => yaml.key(segment),
        };
    }
    let reporter = Reporter {
        file: &pipeline.path,
        src: &src,
        map: &map,
    };
    let location = if at_key {
        map.key(&yaml)
    } else {
        map.value(&yaml)
    };
    reporter.at(location, message, hint)
}
