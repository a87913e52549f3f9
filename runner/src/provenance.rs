//! Build provenance written by the runner (never by the plugin): an in-toto
//! v1 statement with an SLSA v1 provenance predicate for the artifacts of a
//! `build` stage. Subjects are the artifact digests; resolved dependencies
//! are the plugin component's digest and the workspace's source revision.
//! Plugins are untrusted; the control plane attests.

use std::path::Path;

use serde_json::{json, Value};

use crate::artifacts::ArtifactRecord;
use crate::record::PluginRecord;

/// Name of the provenance artifact added to a build stage.
pub const PROVENANCE_NAME: &str = "provenance.intoto.json";
/// The same statement signed by the runner's key (DSSE in a Sigstore
/// bundle), when a provenance key is configured.
pub const SIGNED_PROVENANCE_NAME: &str = "provenance.sigstore.json";
/// Its media type.
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// `buildType` of statements sluice writes.
pub const BUILD_TYPE: &str = "https://sluice.example/buildtypes/pipeline-stage/v1";

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
    let mut dir = Some(workspace);
    while let Some(d) = dir {
        let git = d.join(".git");
        match std::fs::symlink_metadata(&git) {
            Ok(m) if m.is_dir() => {
                let found = read_head(&git);
                if let Err(why) = &found {
                    tracing::warn!(git = %git.display(), %why, "no source revision in provenance");
                }
                let (commit, branch) = found.ok()?;
                return Some(SourceRevision {
                    repo: d.display().to_string(),
                    commit,
                    branch,
                });
            }
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
    /// The stage's expanded `with:`.
    pub config: &'a Value,
    /// The plugin that built.
    pub plugin: &'a PluginRecord,
    /// Source revision, if the workspace is a git checkout.
    pub source: Option<&'a SourceRevision>,
    /// Start and end (RFC 3339).
    pub started_on: &'a str,
    /// End (RFC 3339).
    pub finished_on: &'a str,
}

fn sha256_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The in-toto v1 statement for `subjects`.
pub fn statement(facts: &BuildFacts<'_>, subjects: &[ArtifactRecord]) -> Value {
    let subject: Vec<Value> = subjects
        .iter()
        .map(|a| json!({ "name": a.name, "digest": { "sha256": sha256_of(&a.digest) } }))
        .collect();
    let mut deps = vec![json!({
        "uri": format!("file:{}", facts.plugin.reference),
        "name": facts.plugin.name.clone().unwrap_or_else(|| "plugin".into()),
        "digest": { "sha256": sha256_of(&facts.plugin.digest) },
    })];
    if let Some(src) = facts.source {
        let mut dep = json!({
            "uri": format!("git+file://{}", src.repo),
            "digest": { "gitCommit": src.commit },
        });
        if let Some(branch) = &src.branch {
            dep["annotations"] = json!({ "branch": branch });
        }
        deps.push(dep);
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
                    "with": facts.config,
                },
                "internalParameters": {
                    "pipelineDigest": facts.pipeline_digest,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": format!("https://sluice.example/runner@{}", env!("CARGO_PKG_VERSION")),
                },
                "metadata": {
                    "invocationId": facts.run_id,
                    "startedOn": facts.started_on,
                    "finishedOn": facts.finished_on,
                },
            },
        },
    })
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
            signer: None,
            policy_rules: Vec::new(),
        };
        let src = SourceRevision {
            repo: "/src".into(),
            commit: "0123abcd".into(),
            branch: Some("main".into()),
        };
        let facts = BuildFacts {
            run_id: "r1",
            pipeline: "p",
            pipeline_digest: "sha256:bb",
            stage: "build",
            config: &json!({"a": 1}),
            plugin: &plugin,
            source: Some(&src),
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
            }],
        );
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["subject"][0]["digest"]["sha256"], "cc");
        let deps = &s["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["sha256"], "aa");
        assert_eq!(deps[1]["digest"]["gitCommit"], "0123abcd");
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
