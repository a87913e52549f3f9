//! Provenance written by the runner (never by the plugin): an in-toto v1
//! statement with an SLSA v1 provenance predicate for the artifacts of every
//! stage that publishes any. Subjects are the artifact digests; resolved
//! dependencies are the plugin component's digest, the workspace's source
//! revision (with its dirty-tree state) and the stage's input artifacts.
//! `externalParameters.with` is the stage's `with:` as written in the
//! pipeline (templates unexpanded), so no expanded secret reaches it.
//! Plugins are untrusted; the control plane attests. The format is
//! documented in docs/provenance.md.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::redact::Redactor;
use sluice_record::artifacts::ArtifactRecord;
use sluice_record::PluginRecord;

mod worktree;
pub use worktree::{Changes, TreeState};

/// Name of the provenance artifact added to a stage.
pub const PROVENANCE_NAME: &str = "provenance.intoto.json";
/// Names under `/artifacts/out` reserved for the runner: a top-level file
/// whose name starts with this prefix fails the stage, for every stage.
pub const RESERVED_PREFIX: &str = "provenance.";
/// The same statement signed by the runner's key (DSSE in a Sigstore
/// bundle), when a provenance key is configured.
pub const SIGNED_PROVENANCE_NAME: &str = "provenance.sigstore.json";
/// Its media type.
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// `buildType` of statements sluice writes (defined in docs/provenance.md).
pub const BUILD_TYPE: &str = "https://sluice.dev/provenance/stage/v1";
/// Prefix of the default `builder.id`: `<prefix><hostname>@<version>`.
pub const DEFAULT_BUILDER_PREFIX: &str = "https://sluice.dev/runner/";

/// True for an artifact name reserved for the runner's provenance.
pub fn is_reserved(name: &str) -> bool {
    let name = name.trim_start_matches("./");
    !name.contains('/') && name.starts_with(RESERVED_PREFIX)
}

/// The git commit a workspace is at, read from `.git` without running git.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRevision {
    /// Repository directory.
    pub repo: String,
    /// Commit id (40 or 64 lowercase hex digits).
    pub commit: String,
    /// Branch, when HEAD is on one.
    pub branch: Option<String>,
}

/// Largest `HEAD` or loose ref file read (a real one is under 100 bytes).
const MAX_REF_FILE: u64 = 4 * 1024;
/// Largest `packed-refs` read (large monorepos have a few MiB).
const MAX_PACKED_REFS: u64 = 64 * 1024 * 1024;
/// Symbolic refs followed before giving up (git itself allows 5).
const MAX_SYMREF_DEPTH: usize = 5;

/// Find the repository containing `workspace` and its HEAD commit.
///
/// `.git` may sit inside the workspace, where stages with `workspace: write`
/// (and every program they exec) can rewrite it, so everything read from it
/// is hostile input (issue: a forged `ref: /proc/self/environ` put the
/// runner's environment into provenance):
///
/// - files are opened through a capability handle on the `.git` directory
///   (`cap-std`), so no path, `..` or symlink in a ref reaches outside it;
/// - only regular files are read, opened non-blocking (a FIFO or device
///   cannot stall the runner) and only up to a few KiB (MiB for
///   `packed-refs`);
/// - ref names must pass git's own ref-name rules, and the only thing ever
///   copied out is an object id of 40 or 64 hex digits. Anything else means
///   "no source revision" (with a warning in the runner's log), never an
///   error and never file content.
///
/// A `.git` *file* (linked worktree, submodule) points elsewhere with a
/// path the workspace controls; it is not followed.
pub fn source_revision(workspace: &Path) -> Option<SourceRevision> {
    let root = find_repo(workspace)?;
    let git = root.join(".git");
    let found = read_head(&git);
    if let Err(why) = &found {
        tracing::warn!(git = %git.display(), %why, "no source revision in provenance");
    }
    let (commit, branch) = found.ok()?;
    Some(SourceRevision {
        repo: root.display().to_string(),
        commit,
        branch,
    })
}

/// The directory holding the `.git` directory of the repository containing
/// `workspace`.
fn find_repo(workspace: &Path) -> Option<PathBuf> {
    let mut dir = Some(workspace);
    while let Some(d) = dir {
        let git = d.join(".git");
        match std::fs::symlink_metadata(&git) {
            Ok(m) if m.is_dir() => return Some(d.to_path_buf()),
            Ok(_) => {
                tracing::warn!(git = %git.display(), "`.git` is not a directory (worktree or submodule); no source revision in provenance");
                return None;
            }
            Err(_) => {}
        }
        dir = d.parent();
    }
    None
}

/// The source a run starts from: its commit, where it came from and
/// whether the tracked files still match the index.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// HEAD, when it could be read.
    pub revision: Option<SourceRevision>,
    /// `[remote "origin"] url`, as a credential-free absolute URI.
    pub remote: Option<String>,
    /// Clean, dirty or unknown.
    pub tree: TreeState,
}

impl SourceState {
    /// Why `--require-clean` refuses this source, if it does.
    pub fn unclean(&self) -> Option<String> {
        if self.revision.is_none() {
            return Some("its HEAD commit could not be read".into());
        }
        match &self.tree {
            TreeState::Clean => None,
            TreeState::Dirty(c) => Some(match &c.listed {
                Some(list) if list.len() <= 10 => format!(
                    "{} tracked file(s) differ from the index: {}",
                    c.count,
                    list.iter()
                        .map(|(kind, path)| format!("{path} ({kind})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => format!("{} tracked files differ from the index", c.count),
            }),
            TreeState::Unknown(why) => Some(format!("its state is unknown ({why})")),
        }
    }
}

/// Read HEAD, the origin remote and the tree state of the repository
/// containing `workspace` (`None` outside a repository), with the same
/// precautions as [`source_revision`]; see `provenance/worktree.rs` for
/// what "dirty" covers.
pub fn source_state(workspace: &Path) -> Option<SourceState> {
    let root = find_repo(workspace)?;
    let revision = source_revision(&root);
    let open = |p: &Path| cap_std::fs::Dir::open_ambient_dir(p, cap_std::ambient_authority());
    let (root_dir, git_dir) = match (open(&root), open(&root.join(".git"))) {
        (Ok(r), Ok(g)) => (r, g),
        (Err(e), _) | (_, Err(e)) => {
            return Some(SourceState {
                revision,
                remote: None,
                tree: TreeState::Unknown(format!("cannot open the repository: {e}")),
            })
        }
    };
    let oid_len = match &revision {
        Some(r) if r.commit.len() == 64 => 32,
        _ => 20,
    };
    let tree = worktree::tree_state(&root_dir, &git_dir, oid_len);
    let remote = read_small(&git_dir, "config", MAX_REF_FILE * 16)
        .ok()
        .and_then(|text| origin_url(&text))
        .and_then(|url| remote_uri(&url));
    Some(SourceState {
        revision,
        remote,
        tree,
    })
}

/// The first `url` of `[remote "origin"]` in a git config file.
fn origin_url(config: &str) -> Option<String> {
    let mut in_origin = false;
    for line in config.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default();
            let mut words = header.split_whitespace();
            let section = words.next().unwrap_or_default();
            let sub = words.collect::<Vec<_>>().join(" ");
            in_origin = section.eq_ignore_ascii_case("remote") && sub == "\"origin\"";
            continue;
        }
        if !in_origin {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("url") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            return Some(value.to_string());
        }
    }
    None
}

/// A git remote URL as an absolute URI without credentials, query or
/// fragment: `git+https://host/path`, `git+ssh://host/path` (also for the
/// scp-like `user@host:path`), `git://host/path`. Local paths and `file:`
/// remotes give `None` (they would name a path on the runner's machine).
pub fn remote_uri(url: &str) -> Option<String> {
    let url = url.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    if url.is_empty() || url.len() > 2048 || !url.chars().all(allowed) {
        return None;
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "https" | "git+https" => "git+https",
                "http" | "git+http" => "git+http",
                "ssh" | "git+ssh" | "ssh+git" => "git+ssh",
                "git" => "git",
                _ => return None,
            };
            (scheme, rest.to_string())
        }
        None => {
            // scp-like `[user@]host:path`; a `/` before the `:` makes it a
            // local path.
            let (host, path) = url.split_once(':')?;
            if host.contains('/') || host.is_empty() {
                return None;
            }
            (
                "git+ssh",
                format!("{host}/{}", path.trim_start_matches('/')),
            )
        }
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    host_ok.then(|| format!("{scheme}://{host}/{path}"))
}

/// Why a configured `builder.id` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuilderIdError {
    /// Not `scheme:rest` with URI characters only, or over 2048 bytes.
    #[error(
        "builder id `{}` is not an absolute URI (scheme:rest, no spaces), e.g. https://ci.example.org/sluice/runner-1",
        crate::report::escape_controls(id)
    )]
    NotAbsoluteUri {
        /// The id as given (trimmed).
        id: String,
    },
    /// A `file:` URI.
    #[error("builder id must not be a `file:` URI: it would name a path on this machine")]
    FileUri {
        /// The id as given (trimmed).
        id: String,
    },
}

/// The `builder.id`: `configured` (from `--builder-id` /
/// `SLUICE_BUILDER_ID`, operator-controlled) if given — it must be an
/// absolute URI and not a `file:` one — else
/// `https://sluice.dev/runner/<hostname>@<version>`.
pub fn builder_id(configured: Option<&str>) -> Result<String, BuilderIdError> {
    match configured {
        Some(id) => {
            let id = id.trim();
            let scheme = id.split(':').next().unwrap_or_default();
            let scheme_ok = !scheme.is_empty()
                && scheme.len() < id.len() - 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
            let chars_ok = id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c));
            if !scheme_ok || !chars_ok || id.len() > 2048 {
                return Err(BuilderIdError::NotAbsoluteUri { id: id.to_owned() });
            }
            if scheme.eq_ignore_ascii_case("file") {
                return Err(BuilderIdError::FileUri { id: id.to_owned() });
            }
            Ok(id.to_string())
        }
        None => Ok(format!(
            "{DEFAULT_BUILDER_PREFIX}{}@{}",
            hostname(),
            env!("CARGO_PKG_VERSION")
        )),
    }
}

/// This machine's host name, restricted to `[A-Za-z0-9.-]`.
fn hostname() -> String {
    // The kernel's name (Linux), else /etc/hostname; never the
    // environment (HOSTNAME is whatever the caller exported).
    let raw = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .take(253)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown-host".into()
    } else {
        name
    }
}

/// HEAD's commit id and branch, read as described on [`source_revision`].
fn read_head(git: &Path) -> Result<(String, Option<String>), String> {
    let dir = cap_std::fs::Dir::open_ambient_dir(git, cap_std::ambient_authority())
        .map_err(|e| format!("cannot open: {e}"))?;
    let mut name = "HEAD".to_string();
    let mut branch = None;
    for _ in 0..=MAX_SYMREF_DEPTH {
        let text = match read_small(&dir, &name, MAX_REF_FILE) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "HEAD" => None,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let value = match text {
            Some(text) => text.trim().to_string(),
            None => packed_ref(&dir, &name)?.ok_or_else(|| format!("ref {name} not found"))?,
        };
        match value.strip_prefix("ref:") {
            Some(target) => {
                let target = target.trim();
                if !valid_ref_name(target) {
                    return Err(format!("{name} points at an invalid ref name"));
                }
                if branch.is_none() {
                    branch = Some(target.trim_start_matches("refs/heads/").to_string());
                }
                name = target.to_string();
            }
            None if is_object_id(&value) => return Ok((value, branch)),
            None => return Err(format!("{name} does not hold an object id")),
        }
    }
    Err("too many levels of symbolic refs".into())
}

/// Read a regular file under `dir`, refusing FIFOs, devices, sockets and
/// anything larger than `limit`.
fn read_small(dir: &cap_std::fs::Dir, name: &str, limit: u64) -> std::io::Result<String> {
    use cap_std::fs::OpenOptionsExt;
    use std::io::Read;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true);
    // Non-blocking so that opening a FIFO returns at once; the type check
    // below then refuses it.
    #[cfg(unix)]
    opts.custom_flags(libc::O_NONBLOCK);
    let file = dir.open_with(name, &opts)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if meta.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}

/// `<id> <ref>` lines of `packed-refs`.
fn packed_ref(dir: &cap_std::fs::Dir, name: &str) -> Result<Option<String>, String> {
    let text = match read_small(dir, "packed-refs", MAX_PACKED_REFS) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("packed-refs: {e}")),
    };
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (id, n) = l.split_once(' ')?;
            (n == name && is_object_id(id)).then(|| id.to_string())
        }))
}

/// A SHA-1 or SHA-256 object id in git's lowercase hex.
fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// git's ref-name rules (`git check-ref-format`), restricted to `refs/…`:
/// no `..`, no component starting with `.` or ending in `.lock`, no control
/// characters, spaces or `~^:?*[\\`, no `@{`, no empty component.
fn valid_ref_name(name: &str) -> bool {
    name.starts_with("refs/")
        && name.len() <= 1024
        && !name.contains("..")
        && !name.contains("@{")
        && !name.ends_with('/')
        && !name.ends_with('.')
        && name.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && !c.ends_with(".lock")
                && c.bytes()
                    .all(|b| b > 0x20 && b != 0x7f && !b"~^:?*[\\".contains(&b))
        })
}

/// An input artifact of the stage: the upstream stage and its record.
pub struct Input<'a> {
    /// The stage that produced it.
    pub stage: &'a str,
    /// Its record (name, digest).
    pub artifact: &'a ArtifactRecord,
}

/// What a provenance statement is made from.
pub struct BuildFacts<'a> {
    /// Run id (the invocation id).
    pub run_id: &'a str,
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Pipeline file digest.
    pub pipeline_digest: &'a str,
    /// Stage name.
    pub stage: &'a str,
    /// The stage's `with:` as written in the pipeline (templates
    /// unexpanded): what was asked for, never the expanded values.
    pub with_template: &'a Value,
    /// The plugin that ran.
    pub plugin: &'a PluginRecord,
    /// The source the run started from, if the workspace is a git checkout.
    pub source: Option<&'a SourceState>,
    /// The stage's input artifacts.
    pub inputs: &'a [Input<'a>],
    /// `builder.id` (see [`builder_id`]).
    pub builder_id: &'a str,
    /// Start (RFC 3339).
    pub started_on: &'a str,
    /// End (RFC 3339).
    pub finished_on: &'a str,
}

fn sha256_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `name` percent-encoded to URI-unreserved characters.
fn uri_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The digest-addressed URI of a plugin: `sluice:plugin/<name>@sha256:<hex>`
/// (never its local path); for a plugin pulled from a registry, its
/// reference pinned to the manifest that ran,
/// `oci://registry/repository:tag@sha256:<manifest>`.
pub fn plugin_uri(plugin: &PluginRecord) -> String {
    if let Some(oci) = &plugin.oci {
        return oci.pinned();
    }
    let name = plugin.name.as_deref().unwrap_or("plugin");
    format!(
        "sluice:plugin/{}@sha256:{}",
        uri_segment(name),
        sha256_of(&plugin.digest)
    )
}

/// The git dependency: the origin's URI (when known) and the commit, with
/// the branch and the tree state as annotations.
fn source_dependency(src: &SourceState) -> Option<Value> {
    let mut dep = serde_json::Map::new();
    if let Some(uri) = &src.remote {
        dep.insert("uri".into(), json!(uri));
    }
    if let Some(rev) = &src.revision {
        dep.insert("digest".into(), json!({ "gitCommit": rev.commit }));
    }
    if dep.is_empty() {
        return None;
    }
    let mut notes = serde_json::Map::new();
    if let Some(branch) = src.revision.as_ref().and_then(|r| r.branch.as_ref()) {
        notes.insert("branch".into(), json!(branch));
    }
    match &src.tree {
        TreeState::Clean => {
            notes.insert("dirty".into(), json!(false));
        }
        TreeState::Dirty(c) => {
            notes.insert("dirty".into(), json!(true));
            notes.insert("changedFilesCount".into(), json!(c.count));
            notes.insert("changedFilesDigest".into(), json!(c.digest));
            if let Some(list) = &c.listed {
                let files: Vec<Value> = list
                    .iter()
                    .map(|(kind, path)| json!({ "path": path, "change": kind }))
                    .collect();
                notes.insert("changedFiles".into(), Value::Array(files));
            }
        }
        TreeState::Unknown(why) => {
            notes.insert("dirty".into(), Value::Null);
            notes.insert("dirtyUnknown".into(), json!(why));
        }
    }
    dep.insert("annotations".into(), Value::Object(notes));
    Some(Value::Object(dep))
}

/// The in-toto v1 statement for `subjects`.
pub fn statement(facts: &BuildFacts<'_>, subjects: &[ArtifactRecord]) -> Value {
    let subject: Vec<Value> = subjects
        .iter()
        .map(|a| json!({ "name": a.name, "digest": { "sha256": sha256_of(&a.digest) } }))
        .collect();
    let mut plugin_dep = json!({
        "uri": plugin_uri(facts.plugin),
        "name": facts.plugin.name.clone().unwrap_or_else(|| "plugin".into()),
        "digest": { "sha256": sha256_of(&facts.plugin.digest) },
    });
    // A plugin pulled from a registry: the manifest it was resolved to
    // names where it came from; the digest stays the component's.
    if let Some(oci) = &facts.plugin.oci {
        plugin_dep["annotations"] = json!({
            "ociReference": oci.reference,
            "ociManifestDigest": oci.manifest,
        });
    }
    let mut deps = vec![plugin_dep];
    if let Some(dep) = facts.source.and_then(source_dependency) {
        deps.push(dep);
    }
    for input in facts.inputs {
        deps.push(json!({
            "name": format!("{}/{}", input.stage, input.artifact.name),
            "digest": { "sha256": sha256_of(&input.artifact.digest) },
            "mediaType": input.artifact.media_type,
            "annotations": { "stage": input.stage, "artifact": input.artifact.name },
        }));
    }
    let mut plugin = serde_json::Map::new();
    for (k, v) in [
        ("version", &facts.plugin.version),
        ("kind", &facts.plugin.kind),
    ] {
        if let Some(v) = v {
            plugin.insert(k.into(), json!(v));
        }
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "pipeline": facts.pipeline,
                    "stage": facts.stage,
                    "with": facts.with_template,
                },
                "internalParameters": {
                    "pipelineDigest": facts.pipeline_digest,
                    "plugin": plugin,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": facts.builder_id,
                    "version": { "sluice": env!("CARGO_PKG_VERSION") },
                },
                "metadata": {
                    "invocationId": format!("{}/{}", facts.run_id, facts.stage),
                    "startedOn": facts.started_on,
                    "finishedOn": facts.finished_on,
                },
            },
        },
    })
}

/// `value` with every known secret value replaced by `***` in every string
/// and key: a literal secret written into `with:`, a path or a remote
/// never reaches the statement.
pub fn redacted(value: Value, redactor: &Redactor) -> Value {
    if redactor.is_empty() {
        return value;
    }
    match value {
        Value::String(s) => Value::String(redactor.redact_str(&s)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| redacted(v, redactor)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redactor.redact_str(&k), redacted(v, redactor)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_shape() {
        let plugin = PluginRecord {
            reference: "/p/build.wasm".into(),
            digest: "sha256:aa".into(),
            name: Some("build".into()),
            version: Some("0.1.0".into()),
            kind: Some("build".into()),
            wit: None,
            signer: None,
            policy_rules: Vec::new(),
            oci: None,
        };
        let src = SourceState {
            revision: Some(SourceRevision {
                repo: "/src".into(),
                commit: "0123abcd".into(),
                branch: Some("main".into()),
            }),
            remote: remote_uri("https://user:tok@github.com/o/r.git?x=1"),
            tree: TreeState::Clean,
        };
        let upstream = ArtifactRecord {
            name: "greeting.txt".into(),
            digest: "sha256:dd".into(),
            size: 1,
            media_type: "text/plain".into(),
            role: None,
            annotations: Default::default(),
        };
        let inputs = [Input {
            stage: "hello",
            artifact: &upstream,
        }];
        let facts = BuildFacts {
            run_id: "r1",
            pipeline: "p",
            pipeline_digest: "sha256:bb",
            stage: "build",
            with_template: &json!({"a": 1}),
            plugin: &plugin,
            source: Some(&src),
            inputs: &inputs,
            builder_id: "https://ci.example.org/r1",
            started_on: "t0",
            finished_on: "t1",
        };
        let s = statement(
            &facts,
            &[ArtifactRecord {
                name: "dist/app.tar.gz".into(),
                digest: "sha256:cc".into(),
                size: 3,
                media_type: "application/gzip".into(),
                role: None,
                annotations: Default::default(),
            }],
        );
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["subject"][0]["digest"]["sha256"], "cc");
        let deps = &s["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["sha256"], "aa");
        assert_eq!(deps[0]["uri"], "sluice:plugin/build@sha256:aa");
        assert_eq!(deps[1]["digest"]["gitCommit"], "0123abcd");
        assert_eq!(deps[1]["uri"], "git+https://github.com/o/r.git");
        assert_eq!(deps[1]["annotations"]["dirty"], false);
        assert_eq!(deps[2]["name"], "hello/greeting.txt");
        assert_eq!(deps[2]["digest"]["sha256"], "dd");
    }

    #[test]
    fn a_plugin_from_a_registry_is_named_by_its_pinned_reference() {
        let manifest = format!("sha256:{}", "ab".repeat(32));
        let plugin = PluginRecord {
            reference: "oci://127.0.0.1:5000/sluice/lint".into(),
            digest: "sha256:aa".into(),
            name: Some("lint".into()),
            version: None,
            kind: None,
            wit: None,
            signer: None,
            policy_rules: Vec::new(),
            oci: Some(sluice_record::OciPluginRecord {
                reference: "oci://127.0.0.1:5000/sluice/lint:1.0".into(),
                manifest: manifest.clone(),
            }),
        };
        let facts = BuildFacts {
            run_id: "r1",
            pipeline: "p",
            pipeline_digest: "sha256:bb",
            stage: "lint",
            with_template: &json!({}),
            plugin: &plugin,
            source: None,
            inputs: &[],
            builder_id: "https://ci.example.org/r1",
            started_on: "t0",
            finished_on: "t1",
        };
        let s = statement(&facts, &[]);
        let dep = &s["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(
            dep["uri"],
            format!("oci://127.0.0.1:5000/sluice/lint:1.0@{manifest}")
        );
        // The digest is the component's: what the policy verified and ran.
        assert_eq!(dep["digest"]["sha256"], "aa");
        assert_eq!(dep["annotations"]["ociManifestDigest"], manifest);
    }

    #[test]
    fn remotes_become_credential_free_uris() {
        for (url, uri) in [
            (
                "https://github.com/o/r.git",
                Some("git+https://github.com/o/r.git"),
            ),
            (
                "https://x-access-token:ghp_SECRET@github.com/o/r",
                Some("git+https://github.com/o/r"),
            ),
            (
                "git@github.com:o/r.git",
                Some("git+ssh://github.com/o/r.git"),
            ),
            ("ssh://git@host:2222/o/r", Some("git+ssh://host:2222/o/r")),
            (
                "https://host/r?token=SECRET#frag",
                Some("git+https://host/r"),
            ),
            ("/srv/git/r.git", None),
            ("file:///srv/git/r.git", None),
            ("./r", None),
            ("https://host/a b", None),
        ] {
            assert_eq!(remote_uri(url).as_deref(), uri, "{url}");
        }
        let config = "[core]\n\turl = no\n[remote \"upstream\"]\n\turl = https://u/x\n[remote \"origin\"]\n\turl = git@h:o/r\n";
        assert_eq!(origin_url(config).as_deref(), Some("git@h:o/r"));
    }

    #[test]
    fn builder_ids_are_absolute_uris() {
        assert!(builder_id(None).is_ok_and(|id| id.starts_with(DEFAULT_BUILDER_PREFIX)));
        assert!(builder_id(Some("https://ci.example.org/r1")).is_ok());
        for bad in ["runner-1", "file:///home/x", "https://a b", ""] {
            assert!(builder_id(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            builder_id(Some("a\u{1b} b")).map_err(|e| e.to_string()),
            Err("builder id `a\\u{1b} b` is not an absolute URI (scheme:rest, no spaces), e.g. https://ci.example.org/sluice/runner-1".to_owned())
        );
        assert_eq!(
            builder_id(Some("file:///x")).map_err(|e| e.to_string()),
            Err(
                "builder id must not be a `file:` URI: it would name a path on this machine"
                    .to_owned()
            )
        );
    }

    #[test]
    fn reserved_names() {
        for name in [
            "provenance.intoto.json",
            "provenance.sigstore.json",
            "./provenance.x",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        for name in ["out/provenance.intoto.json", "build.json", "provenance"] {
            assert!(!is_reserved(name), "{name}");
        }
    }

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
        (dir, git)
    }

    #[test]
    fn reads_head_from_git() {
        let (dir, git) = repo();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("write");
        std::fs::write(git.join("refs/heads/main"), format!("{ID}\n")).expect("write");
        let sub = dir.path().join("sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let rev = source_revision(&sub).expect("found");
        assert_eq!(rev.commit, ID);
        assert_eq!(rev.branch.as_deref(), Some("main"));
        std::fs::remove_file(git.join("refs/heads/main")).expect("rm");
        let packed = ID.replace('0', "f");
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack\n{packed} refs/heads/main\n"),
        )
        .expect("write");
        assert_eq!(source_revision(&sub).expect("found").commit, packed);
        // Detached HEAD.
        std::fs::write(git.join("HEAD"), format!("{ID}\n")).expect("write");
        let rev = source_revision(&sub).expect("found");
        assert_eq!((rev.commit.as_str(), rev.branch), (ID, None));
    }

    #[test]
    fn hostile_heads_yield_no_revision_and_no_content() {
        let (dir, git) = repo();
        let outside = tempfile::tempdir().expect("tempdir");
        let canary = outside.path().join("canary");
        std::fs::write(&canary, ID).expect("write");
        for head in [
            "ref: /proc/self/environ".to_string(),
            format!("ref: {}", canary.display()),
            "ref: refs/../../../../../../proc/self/environ".into(),
            "ref: refs/heads/../../../canary".into(),
            "not an id".into(),
            "x".repeat(5 << 20),
        ] {
            std::fs::write(git.join("HEAD"), &head).expect("write");
            assert_eq!(
                source_revision(dir.path()),
                None,
                "{}",
                &head[..head.len().min(80)]
            );
        }
        #[cfg(unix)]
        {
            // A symlinked ref pointing out of `.git`, a FIFO and a device:
            // refused without blocking.
            std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("write");
            std::os::unix::fs::symlink(&canary, git.join("refs/heads/main")).expect("symlink");
            assert_eq!(source_revision(dir.path()), None);
            std::fs::remove_file(git.join("refs/heads/main")).expect("rm");
            let fifo = git.join("refs/heads/main");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                assert_eq!(source_revision(dir.path()), None);
            }
            std::fs::remove_file(git.join("HEAD")).expect("rm");
            std::os::unix::fs::symlink("/dev/zero", git.join("HEAD")).expect("symlink");
            assert_eq!(source_revision(dir.path()), None);
        }
    }

    #[test]
    fn ref_names_follow_git_rules() {
        assert!(valid_ref_name("refs/heads/main"));
        assert!(valid_ref_name("refs/heads/feature/x-1"));
        for bad in [
            "HEAD",
            "/proc/self/environ",
            "refs/../x",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs//x",
            "refs/heads/a b",
            "refs/heads/a\u{1b}b",
            "refs/heads/",
        ] {
            assert!(!valid_ref_name(bad), "{bad:?}");
        }
    }
}
