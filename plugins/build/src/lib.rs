//! The `build` reference stage of [sluice]: runs granted build commands in
//! order, then publishes the files they produced as artifacts, with their
//! sha256 digests, and hands the version and the main digest to later
//! stages.
//!
//! ```yaml
//! build:
//!   uses: ../../dist/plugins/build.wasm
//!   needs: [test]
//!   with:
//!     commands:
//!       - [python3, -c, "import os; os.makedirs('dist', exist_ok=True)"]
//!       - [python3, -m, zipapp, src, -m, "quickstart.cli:main", -o, dist/quickstart.pyz]
//!     outputs: [dist/quickstart.pyz]
//!     version-file: { path: pyproject.toml, regex: '^version\s*=\s*"([^"]+)"' }
//!   grants: { workspace: write, exec: [python3] }
//! deploy:
//!   needs: [build]
//!   with: { version: "${{ stages.build.outputs.version }}" }
//! ```
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `outputs` | list of paths/globs (**required**) | Files to publish, relative to the workspace. `*`/`?` stay within one directory, `**` crosses directories. Every pattern must match at least one regular file. Each file is copied to `/artifacts/out/<its path in the workspace>`. |
//! | `commands` | list of `[program, args...]` | Run in order through the host's `exec`; every program is a bare name that must be in `grants.exec`. The first command that exits non-zero (or times out) fails the stage with the end of its stderr. Without commands, the stage only publishes files that already exist. |
//! | `cwd` | string | Directory for the commands, relative to the workspace (default: its root). |
//! | `timeout` | `"90s"`, `"10m"`, `"1h30m"` (a unit is required) | Per command (default, and cap: the time the stage has left). |
//! | `media-types` | map extension → media type | Overrides the built-in table ([`media`]: archives, packages, wasm, SBOMs, text formats; else `application/octet-stream`). Keys may start with a dot: `.pyz: application/zip`. |
//! | `version` | string | The version, literally (templates such as `${{ env.VERSION }}` are expanded by the runner). |
//! | `version-file` | path, or `{ path, regex }` | Read the version *after* the commands ran: the whole file (trimmed; must be one token), or the first capture group of `regex` (multi-line: `^`/`$` match at line boundaries; the whole match when it has no group). |
//!
//! `version` and `version-file` exclude each other; with neither, the stage
//! reports no `version` output. Unknown keys are rejected; `describe`
//! publishes the same schema.
//!
//! # Grants
//!
//! `workspace: write` when the commands write their outputs into the
//! workspace (the usual case; `workspace: read` suffices to publish files
//! that already exist), and `exec: [<program>, ...]` for every program the
//! commands run. Programs get a cleared environment (`PATH`, `HOME` and the
//! stage's granted `env`).
//!
//! # What it reports
//!
//! - Artifacts: every output under its workspace-relative path, with its
//!   media type; `build.json` (`schema`, `version`, `digest`, `artifacts`
//!   with name, `sha256:` digest, size and media type, and the `commands`
//!   with exit status and duration). The runner adds
//!   `provenance.intoto.json` (in-toto/SLSA) for this stage because its
//!   kind is `build`; an output may not use that name or `build.json` at
//!   the top level.
//! - Outputs: `digest` (`sha256:<hex>` of the main artifact: the first file
//!   of the first `outputs` pattern, so list the main one first),
//!   `artifact` (its path), and `version` when configured.
//! - Metrics: `build.artifacts`, `build.bytes` (unit `bytes`),
//!   `build.duration_s` (time spent in the commands, unit `s`).
//!
//! Digests are computed by the stage while it copies each file, and the
//! runner re-hashes every artifact into its content-addressed store, so the
//! recorded digest is that of the published bytes. An output the commands
//! did not rewrite (left from an earlier build) is published with a warning
//! in the log.
//!
//! [sluice]: https://example.invalid/sluice

pub mod commands;
pub mod config;
pub mod files;
pub mod manifest;
pub mod media;
pub mod outputs;
mod stage;
pub mod values;
pub mod version;

use sluice_sdk::prelude::*;

/// The `build` stage.
pub struct BuildStage;

impl Stage for BuildStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "build",
            env!("CARGO_PKG_VERSION"),
            "build",
            "Runs build commands and publishes the declared outputs with their sha256 digests",
        )
        .config_schema(config::SCHEMA)
        .capability(Capability::WorkspaceRead)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(BuildStage);
