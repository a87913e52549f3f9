//! `sluice report RUN_ID [--out FILE] [--open]`: one static HTML file that
//! shows a run: header, stage timeline, gates, metrics, artifacts, test
//! results (JUnit), findings (SARIF) with code snippets, stage logs,
//! plugins with their signer and policy rule, and provenance.
//!
//! The page loads nothing: CSS and the small script (pagination of long
//! finding lists, a filter box) are inline, and its Content-Security-Policy
//! allows no remote load and only that script (by its hash). Every string
//! a plugin or the workspace provides is escaped by [`escape`]. Artifacts
//! are copied beside the page (`<name>.files/<stage>/<artifact>`) by the
//! same digest-verified [`Cas::materialize`] as `sluice artifacts export`,
//! and linked by relative path; `--no-files` leaves them out.

pub mod escape;
pub mod junit;
mod render;
pub mod sarif;

use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Component, Path, PathBuf};

use sluice_files::fsutil::read_input_file;
use sluice_record::artifacts::{ArtifactError, ArtifactRecord, Cas};
use sluice_record::{RecordError, RunRecord, RunStore};

/// Largest SARIF or JUnit file the report reads (bigger ones get a note).
const REPORT_FILE_LIMIT: u64 = 64 * 1024 * 1024;
/// Largest workspace file a snippet is taken from.
const SNIPPET_FILE_LIMIT: u64 = 2 * 1024 * 1024;
/// Snippets in one report at most; later findings show their location only.
const SNIPPET_BUDGET: usize = 1_000;
/// Bytes of a stage log's end that the report shows.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// Lines of a stage log's end that the report shows.
const LOG_TAIL_LINES: usize = 200;

/// Why `sluice report` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run cannot be read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An artifact's blob is missing or does not hash to its digest.
    #[error(transparent)]
    Store(#[from] ArtifactError),
    /// The page or a temporary directory cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What `sluice report` was asked for.
#[derive(Debug, Clone)]
pub struct ReportArgs<'a> {
    /// The state directory.
    pub state_dir: &'a Path,
    /// The run.
    pub run_id: &'a str,
    /// Where to write the page (default `sluice-report-<RUN>.html`).
    pub out: Option<&'a Path>,
    /// Copy artifacts beside the page and link them.
    pub files: bool,
    /// Open the page with the desktop's opener afterwards.
    pub open: bool,
}

/// A parsed SARIF or JUnit artifact, or why it could not be read.
pub(crate) struct Doc<T> {
    pub stage: String,
    pub name: String,
    pub parsed: Result<T, String>,
}

/// A provenance statement a stage left.
pub(crate) struct Provenance {
    pub stage: String,
    pub name: String,
    /// Whether the stage also left the signed bundle.
    pub signed: bool,
    pub statement: Result<serde_json::Value, String>,
}

/// The end of a stage's log.
pub(crate) struct LogTail {
    pub text: String,
    /// Whether earlier lines were left out.
    pub cut: bool,
}

/// Everything the page shows, gathered before rendering.
pub(crate) struct Data {
    pub record: RunRecord,
    pub status: &'static str,
    pub generated_at: String,
    pub logs: HashMap<String, Result<LogTail, String>>,
    /// `stage/name` → href of the copied artifact.
    pub links: HashMap<String, String>,
    pub sarif: Vec<Doc<sarif::Log>>,
    pub junit: Vec<Doc<Vec<junit::TestCase>>>,
    pub provenance: Vec<Provenance>,
    pub snippets: Snippets,
}

/// `sluice report`: gathers the run, writes the page, says where.
pub fn report(args: &ReportArgs<'_>) -> Result<String, ReportError> {
    let store = RunStore::new(args.state_dir);
    let record = store.load(args.run_id)?;
    let status = status_word(&store, &record);
    let out = match args.out {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(format!("sluice-report-{}.html", file_safe(args.run_id))),
    };
    let out_dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let cas = Cas::open(&args.state_dir.join("cas"))?;
    std::fs::create_dir_all(&out_dir).map_err(|source| ReportError::Write {
        path: out_dir.clone(),
        source,
    })?;

    // The artifacts the page reads itself, verified into a temporary
    // directory that goes away with this function.
    let tmp = tempfile::Builder::new()
        .prefix(".sluice-report-")
        .tempdir_in(&out_dir)
        .map_err(|source| ReportError::Write {
            path: out_dir.clone(),
            source,
        })?;
    let mut sarif_docs = Vec::new();
    let mut junit_docs = Vec::new();
    let mut provenance = Vec::new();
    for (stage, s) in &record.stages {
        let wanted: Vec<ArtifactRecord> = s
            .artifacts
            .iter()
            .filter(|a| is_sarif(a) || is_xml(a) || is_provenance(a))
            .cloned()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let dir = tmp.path().join(stage);
        cas.materialize(&wanted, &dir)?;
        for a in &wanted {
            let text = read_text(&dir.join(&a.name), &a.name);
            if is_sarif(a) {
                sarif_docs.push(Doc {
                    stage: stage.clone(),
                    name: a.name.clone(),
                    parsed: text.and_then(|t| sarif::parse(&t)),
                });
            } else if is_provenance(a) {
                provenance.push(Provenance {
                    stage: stage.clone(),
                    name: a.name.clone(),
                    signed: s
                        .artifacts
                        .iter()
                        .any(|b| b.name == sluice_engine::provenance::SIGNED_PROVENANCE_NAME),
                    statement: text.and_then(|t| {
                        serde_json::from_str(&t).map_err(|e| format!("not JSON: {e}"))
                    }),
                });
            } else {
                let parsed = match text.and_then(|t| junit::parse(&t)) {
                    Ok(junit::Parsed::Junit(cases)) => Ok(cases),
                    Ok(junit::Parsed::NotJunit) => continue,
                    Err(e) => Err(e),
                };
                junit_docs.push(Doc {
                    stage: stage.clone(),
                    name: a.name.clone(),
                    parsed,
                });
            }
        }
    }
    drop(tmp);

    // Every artifact, verified, beside the page.
    let mut links = HashMap::new();
    let files_dir = out.with_extension("files");
    let files_name = files_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut copied = 0usize;
    if args.files {
        for (stage, s) in &record.stages {
            if s.artifacts.is_empty() {
                continue;
            }
            cas.materialize(&s.artifacts, &files_dir.join(stage))?;
            for a in &s.artifacts {
                copied += 1;
                links.insert(
                    format!("{stage}/{}", a.name),
                    escape::url_path(&format!("{files_name}/{stage}/{}", a.name)),
                );
            }
        }
    }

    let run_dir = store.run_dir(&record.run_id);
    let logs = record
        .stages
        .iter()
        .map(|(name, s)| (name.clone(), log_tail(&run_dir.join(&s.log))))
        .collect();
    let workspace = sluice_pipeline::load(&record.pipeline_path)
        .map(|p| p.workspace)
        .unwrap_or_else(|_| {
            record
                .pipeline_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
    let data = Data {
        status,
        generated_at: sluice_record::now(),
        logs,
        links,
        sarif: sarif_docs,
        junit: junit_docs,
        provenance,
        snippets: Snippets::new(&workspace),
        record,
    };
    let findings: usize = data
        .sarif
        .iter()
        .filter_map(|d| d.parsed.as_ref().ok())
        .map(|l| l.findings.len())
        .sum();
    let tests: usize = data
        .junit
        .iter()
        .filter_map(|d| d.parsed.as_ref().ok())
        .map(Vec::len)
        .sum();
    let page = render::page(data);
    sluice_files::fsutil::write_atomic(&out, page.as_bytes()).map_err(|source| {
        ReportError::Write {
            path: out.clone(),
            source,
        }
    })?;
    let mut said = format!(
        "report of run {} written to {} ({}; {findings} finding(s), {tests} test(s))\n",
        args.run_id,
        out.display(),
        sluice_files::fsutil::human_size(page.len() as u64),
    );
    if args.files {
        said.push_str(&format!(
            "  {copied} artifact(s) copied to {} (every digest verified)\n",
            files_dir.display()
        ));
    }
    if args.open {
        said.push_str(&open(&out));
    }
    Ok(said)
}

/// Opens the page with the desktop's opener, without waiting for it; a
/// missing opener is a note, not a failure (the page is written).
fn open(page: &Path) -> String {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => format!("  opened with {opener}\n"),
        Err(e) => format!(
            "  could not run {opener} ({e}); open {} in a browser\n",
            page.display()
        ),
    }
}

fn status_word(store: &RunStore, r: &RunRecord) -> &'static str {
    use sluice_record::RunStatus;
    match r.status {
        RunStatus::Running if !store.is_locked(&r.run_id) => "interrupted",
        RunStatus::Running => "running",
        RunStatus::Passed => "passed",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Interrupted => "interrupted",
    }
}

/// `id` with anything but `[A-Za-z0-9._-]` replaced, for a file name.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_sarif(a: &ArtifactRecord) -> bool {
    a.media_type == "application/sarif+json"
        || a.name.ends_with(".sarif")
        || a.name.ends_with(".sarif.json")
}

fn is_xml(a: &ArtifactRecord) -> bool {
    a.name.ends_with(".xml")
}

fn is_provenance(a: &ArtifactRecord) -> bool {
    a.name == sluice_engine::provenance::PROVENANCE_NAME
}

/// A verified copy as text, bounded; the error is the note the page shows.
fn read_text(path: &Path, name: &str) -> Result<String, String> {
    let bytes = read_input_file(path, REPORT_FILE_LIMIT, "report file").map_err(|e| match e {
        sluice_files::fsutil::InputError::TooLarge { .. } => format!(
            "{name} is larger than the {} the report reads; use `sluice artifacts get`",
            sluice_files::fsutil::human_size(REPORT_FILE_LIMIT)
        ),
        other => other.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// The last [`LOG_TAIL_LINES`] lines (within [`LOG_TAIL_BYTES`]) of a log.
fn log_tail(path: &Path) -> Result<LogTail, String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogTail {
                text: String::new(),
                cut: false,
            })
        }
        Err(e) => return Err(format!("cannot read the log: {e}")),
    };
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read the log: {e}"))?
        .len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| format!("cannot read the log: {e}"))?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the log: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    let mut cut = start > 0;
    if start > 0 && !lines.is_empty() {
        // The first line was cut in the middle.
        lines.remove(0);
    }
    if lines.len() > LOG_TAIL_LINES {
        lines.drain(..lines.len() - LOG_TAIL_LINES);
        cut = true;
    }
    Ok(LogTail {
        text: lines.join("\n"),
        cut,
    })
}

/// Lines of workspace files around a finding, read at most once per file,
/// bounded in size and count, and only from inside the workspace: a
/// finding's URI is plugin-provided, so `..`, absolute paths outside it
/// and symbolic links that leave it get no snippet.
pub(crate) struct Snippets {
    root: Option<PathBuf>,
    files: HashMap<String, Option<Vec<String>>>,
    budget: usize,
}

impl Snippets {
    pub(crate) fn new(workspace: &Path) -> Snippets {
        Snippets {
            root: workspace.canonicalize().ok(),
            files: HashMap::new(),
            budget: SNIPPET_BUDGET,
        }
    }

    /// Up to two lines either side of `line` (1-based) of `uri`: the
    /// first line's number and the lines.
    pub(crate) fn around(&mut self, uri: &str, line: u64) -> Option<(u64, Vec<String>)> {
        if self.budget == 0 || line == 0 {
            return None;
        }
        let root = self.root.clone()?;
        if !self.files.contains_key(uri) {
            let lines = Self::read(&root, uri);
            self.files.insert(uri.to_string(), lines);
        }
        let lines = self.files.get(uri)?.as_ref()?;
        let idx = usize::try_from(line).ok()?.checked_sub(1)?;
        if idx >= lines.len() {
            return None;
        }
        self.budget -= 1;
        let from = idx.saturating_sub(2);
        let to = (idx + 3).min(lines.len());
        Some((from as u64 + 1, lines[from..to].to_vec()))
    }

    fn read(root: &Path, uri: &str) -> Option<Vec<String>> {
        let rel = uri.strip_prefix("file://").unwrap_or(uri);
        let path = Path::new(rel);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return None;
            }
            root.join(path)
        };
        let real = joined.canonicalize().ok()?;
        if !real.starts_with(root) {
            return None;
        }
        let bytes = read_input_file(&real, SNIPPET_FILE_LIMIT, "source file").ok()?;
        let text = String::from_utf8_lossy(&bytes);
        Some(
            text.lines()
                .map(|l| l.chars().take(300).collect())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
