//! A deliberately hostile stage for sluice's security tests
//! (`tests/tests/e2e/hostile.rs`). Every mode, chosen by `with: { mode: ...
//! }`, is one attack a malicious plugin could make on the runner; the tests
//! assert the runner's *secure* behaviour against it.
//!
//! `describe` cannot read the config, so the plugin always says it is of kind
//! `build`: the runner then writes provenance for its artifacts (which the
//! `forge-git-head` attack targets). It declares workspace read and write;
//! what it really gets is what the pipeline grants.
//!
//! | mode | attack | keys |
//! |---|---|---|
//! | `forge-git-head` | plants `/workspace/.git/HEAD` so that the runner's provenance reads a file of its choosing (`ref: <target>`) or a huge "commit id"; then writes artifact `app.bin` | `target`, `head_raw`, `head_repeat` |
//! | `recurse` | unbounded recursion with small frames: must hit the wasm stack limit | — |
//! | `state-probe` | looks for the runner's state (`run.json`, `journal.jsonl`, `cas`) from inside the workspace; metric `probe.found` | — |
//! | `leak-report` | puts secret `with.secret` into every report field, an artifact name, or an error message | `secret`, `into` |
//! | `huge-report` | oversized reports: many metrics, a huge summary, many or duplicate gates | `metrics`, `summary_bytes`, `gates`, `duplicate_gates` |
//! | `exec-spam` | many denied exec calls with long program names (log and event flood) | `calls`, `name_len` |
//! | `open-file` | opens and reads `/workspace/<path>` (a FIFO in the tests); metric `open.ok` | `path` |
//! | `open-many` | opens `/workspace/<path>` again and again, keeping every handle; metric `open.count` | `path`, `max`, `hold` |
//! | `ansi` | terminal escapes, bare `\r` and a forged status line in logs, summary and an artifact name | — |
//! | `exit-zero` | `std::process::exit(0)` from inside `run` | — |
//!
//! Numbers may be given as numbers or numeric strings. Every run first logs
//! ``hostile mode `<mode>` `` at info level.

mod config;
mod files;
mod leaks;
mod limits;

use sluice_sdk::prelude::*;

struct Hostile;

impl Stage for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            "build",
            "Test plugin: attacks the runner as `with.mode` says (forge-git-head, recurse, leak-report, ...)",
        )
        .capabilities([Capability::WorkspaceRead, Capability::WorkspaceWrite])
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        let with: serde_json::Value = ctx.config()?;
        let c = config::With(&with);
        let mode = c.text("mode").unwrap_or_default();
        sluice_sdk::info!("hostile mode `{mode}`");
        match mode.as_str() {
            "forge-git-head" => files::forge_git_head(&ctx, &c),
            "state-probe" => files::state_probe(),
            "open-file" => files::open_file(&c),
            "open-many" => files::open_many(&c),
            "recurse" => limits::recurse(),
            "huge-report" => limits::huge_report(&c),
            "exec-spam" => limits::exec_spam(&c),
            "exit-zero" => limits::exit_zero(),
            "leak-report" => leaks::leak_report(&ctx, &c),
            "ansi" => leaks::ansi(&ctx),
            other => Err(StageError::invalid_config(format!(
                "with.mode: unknown mode `{other}`"
            ))),
        }
    }
}

sluice_sdk::export_stage!(Hostile);
