//! Attacks through files: `forge-git-head`, `state-probe`, `open-file`,
//! `open-many`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_sdk::prelude::*;

use crate::config::With;

/// `forge-git-head`: the runner reads `/workspace/.git/HEAD` (after the
/// stage, on the host) to put the source commit into the provenance of a
/// `build` stage. With `with.target`, creates `/workspace/.git/` and writes
/// `HEAD` as `ref: <target>\n` (e.g. `/proc/self/environ`, an absolute path
/// outside the workspace, or `../../../../<path>`), so a runner that
/// follows the ref reads that file into the signed provenance. With
/// `with.head_raw`, writes `HEAD` as `head_raw` repeated `with.head_repeat`
/// times (default 1) instead: a detached "commit id" that is any text, of
/// any size. With neither, leaves `.git` alone (the test plants it). Then
/// writes the artifact `app.bin` (so there is provenance) and passes.
pub fn forge_git_head(ctx: &Context, c: &With<'_>) -> Result<Report, StageError> {
    let head = match (c.text("target"), c.text("head_raw")) {
        (Some(target), _) => Some(format!("ref: {target}\n")),
        (None, Some(raw)) => Some(raw.repeat(c.count("head_repeat", 1) as usize)),
        (None, None) => None,
    };
    if let Some(head) = head {
        let git = ctx.workspace().join(".git");
        std::fs::create_dir_all(&git).with_context(|| format!("creating {}", git.display()))?;
        std::fs::write(git.join("HEAD"), head.as_bytes()).context("writing .git/HEAD")?;
        sluice_sdk::info!("wrote .git/HEAD ({} bytes)", head.len());
    }
    ctx.write_artifact(
        "app.bin",
        b"\x7fELF not really\n",
        "application/octet-stream",
    )?;
    Ok(Report::new("built app.bin (and forged .git/HEAD)"))
}

/// Names that give the runner's state away.
const STATE_NAMES: [&str; 3] = ["run.json", "journal.jsonl", "cas"];

/// `state-probe`: walks `/workspace` (depth 12, at most 100000 entries) and
/// tries `/workspace/.sluice` and `/workspace/../state`, looking for the
/// runner's own state: files or directories named `run.json`,
/// `journal.jsonl` or `cas`. Logs each path found; metric `probe.found` =
/// how many. Never fails.
pub fn state_probe() -> Result<Report, StageError> {
    let mut found = BTreeSet::new();
    let mut budget = 100_000usize;
    for root in ["/workspace", "/workspace/.sluice", "/workspace/../state"] {
        match std::fs::read_dir(root) {
            Ok(_) => {
                sluice_sdk::info!("probe: {root} is readable");
                walk(Path::new(root), 12, &mut budget, &mut found);
            }
            Err(e) => sluice_sdk::info!("probe: {root}: {e}"),
        }
    }
    for path in &found {
        sluice_sdk::warn!("probe found {}", path.display());
    }
    Ok(
        Report::new(format!("probe found {} state entries", found.len()))
            .metric("probe.found", found.len() as f64),
    )
}

fn walk(dir: &Path, depth: u32, budget: &mut usize, found: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = entry.path();
        if STATE_NAMES.iter().any(|n| entry.file_name() == *n) {
            found.insert(path.clone());
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && depth > 0 {
            walk(&path, depth - 1, budget, found);
        }
    }
}

/// `open-file`: opens `/workspace/<with.path>` for reading and reads it to
/// the end (in the tests, a FIFO nobody writes to: a host that opens it
/// blocks forever). Metric `open.ok` = 1 when that worked, else 0 and the
/// error is logged. Never fails.
pub fn open_file(c: &With<'_>) -> Result<Report, StageError> {
    let rel = c.text("path").unwrap_or_else(|| "pipe".into());
    let path = Path::new("/workspace").join(&rel);
    let result = std::fs::File::open(&path).and_then(|mut f| {
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map(|_| bytes.len())
    });
    let ok = match result {
        Ok(n) => {
            sluice_sdk::info!("read {} ({n} bytes)", path.display());
            true
        }
        Err(e) => {
            sluice_sdk::warn!("open {}: {e}", path.display());
            false
        }
    };
    Ok(
        Report::new(format!("open {rel}: {}", if ok { "ok" } else { "refused" }))
            .metric("open.ok", if ok { 1.0 } else { 0.0 }),
    )
}

/// `open-many`: opens `/workspace/<with.path>` again and again, keeping
/// every handle, until `with.max` handles (default 100000) or the first
/// error (logged), then holds them for `with.hold` seconds (default 0) so
/// other stages run while the runner's descriptors are taken. Metric
/// `open.count`. Never fails (the runner may trap it instead).
pub fn open_many(c: &With<'_>) -> Result<Report, StageError> {
    let rel = c.text("path").unwrap_or_else(|| "file.txt".into());
    let path = Path::new("/workspace").join(&rel);
    let max = c.count("max", 100_000);
    let mut handles = Vec::new();
    while (handles.len() as u64) < max {
        match std::fs::File::open(&path) {
            Ok(f) => handles.push(f),
            Err(e) => {
                sluice_sdk::warn!("open #{} of {}: {e}", handles.len() + 1, path.display());
                break;
            }
        }
    }
    let count = handles.len();
    sluice_sdk::info!("holding {count} handles");
    std::thread::sleep(Duration::from_secs(c.count("hold", 0)));
    drop(handles);
    Ok(Report::new(format!("opened {rel} {count} times")).metric("open.count", count as f64))
}
