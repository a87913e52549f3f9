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
    /// Commit id (hex).
    pub commit: String,
    /// Branch, when HEAD is on one.
    pub branch: Option<String>,
}

/// Find the repository containing `workspace` and its HEAD commit.
pub fn source_revision(workspace: &Path) -> Option<SourceRevision> {
    let mut dir = Some(workspace);
    while let Some(d) = dir {
        let git = d.join(".git");
        if git.is_dir() {
            let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
            let head = head.trim();
            let (commit, branch) = match head.strip_prefix("ref: ") {
                Some(reference) => (
                    resolve_ref(&git, reference)?,
                    Some(reference.trim_start_matches("refs/heads/").to_string()),
                ),
                None => (head.to_string(), None),
            };
            return Some(SourceRevision {
                repo: d.display().to_string(),
                commit,
                branch,
            });
        }
        dir = d.parent();
    }
    None
}

fn resolve_ref(git: &Path, reference: &str) -> Option<String> {
    if let Ok(id) = std::fs::read_to_string(git.join(reference)) {
        return Some(id.trim().to_string());
    }
    // Packed refs: "<id> <ref>" lines.
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (id, name) = l.split_once(' ')?;
            (name == reference).then(|| id.to_string())
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

    #[test]
    fn reads_head_from_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("write");
        std::fs::write(git.join("refs/heads/main"), "abc123\n").expect("write");
        let sub = dir.path().join("sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let rev = source_revision(&sub).expect("found");
        assert_eq!(rev.commit, "abc123");
        assert_eq!(rev.branch.as_deref(), Some("main"));
        std::fs::remove_file(git.join("refs/heads/main")).expect("rm");
        std::fs::write(git.join("packed-refs"), "# pack\nfff000 refs/heads/main\n").expect("write");
        assert_eq!(source_revision(&sub).expect("found").commit, "fff000");
    }
}
