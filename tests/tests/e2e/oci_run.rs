//! Runs of pipelines whose stages come from an OCI registry (issue 20):
//! the real runner against a real registry (Debian's `docker-registry`
//! with TLS and htpasswd auth, started by `sluice_tests::registry`), the
//! plugins pushed with `sluice plugin push --sign`.
//!
//! One registry serves every test of the process and each plugin is pushed
//! once ([`quickstart_plugins`]); tests that change what a tag points to,
//! or tamper with blobs, push their own variant of the small `noop` plugin
//! ([`variant`]: the same component with a custom section naming the test,
//! so its digest, manifest and blobs are its own). Only the offline test
//! starts (and stops) a registry of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sluice_tests::expect::Expect;
use sluice_tests::registry::{digest_of, pinned, run_ok, sha256, Registry};
use sluice_tests::{plugin, repo_root, Project, Run};

use crate::stage_test_build::copy_example;

/// The demo key's password (scripts/build-plugins.sh).
const KEY_PASSWORD: &str = "sluice-demo";

fn demo_key() -> PathBuf {
    repo_root().join("dist/keys/demo.key")
}

fn demo_pub() -> PathBuf {
    repo_root().join("dist/keys/demo.pub")
}

/// `sluice args…` in `p`, reaching `registry` (its CA and credentials).
fn sluice(p: &Project, registry: &Registry, args: &[&str]) -> Run {
    registry.sluice(p, args, &[("SLUICE_KEY_PASSWORD", KEY_PASSWORD)])
}

/// The same, with the pull and compile caches in `cache` (a test that must
/// not see what other tests pulled).
fn sluice_cached(p: &Project, registry: &Registry, cache: &Path, args: &[&str]) -> Run {
    let cache = cache.display().to_string();
    registry.sluice(
        p,
        args,
        &[
            ("SLUICE_KEY_PASSWORD", KEY_PASSWORD),
            ("SLUICE_CACHE_DIR", &cache),
        ],
    )
}

/// Pushes `file` to `reference`, signed with the demo key when `sign`;
/// returns the manifest digest the push printed.
fn push(p: &Project, registry: &Registry, file: &Path, reference: &str, sign: bool) -> String {
    let file = file.display().to_string();
    let key = demo_key().display().to_string();
    let mut args = vec!["plugin", "push", file.as_str(), reference];
    if sign {
        args.extend(["--sign", key.as_str()]);
    }
    let run = sluice(p, registry, &args);
    assert_eq!(run.code, 0, "push {reference}: {}", run.all());
    digest_of(&pinned(&run))
}

/// The four reference stages of the quickstart, pushed once per test
/// process to `sluice/<name>:1.0` of the shared registry, signed by the
/// demo key: manifest digests by name.
fn quickstart_plugins() -> &'static HashMap<String, String> {
    static PUSHED: OnceLock<HashMap<String, String>> = OnceLock::new();
    PUSHED.get_or_init(|| {
        let registry = Registry::shared();
        let p = Project::new();
        let mut pushed = HashMap::new();
        for name in ["lint", "test", "scan", "build"] {
            // A copy without its `.sigstore.json`: the only signature is
            // the one `--sign` makes.
            let file = p.root().join(format!("{name}.wasm"));
            std::fs::copy(plugin(name), &file).expect("copy plugin");
            let reference = registry.reference(&format!("sluice/{name}:1.0"));
            pushed.insert(name.to_owned(), push(&p, registry, &file, &reference, true));
        }
        pushed
    })
}

/// The `noop` component with a custom section holding `tag`: a valid,
/// distinct component (own digest, own registry blobs).
fn variant(tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(plugin("noop")).expect("noop plugin");
    let name = b"sluice-e2e";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    assert!(payload.len() < 128, "one-byte LEB128 length");
    bytes.push(0); // custom section
    bytes.push(payload.len() as u8);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Pushes [`variant`]`(tag)` (written to `<tmp>/<tag>.wasm`) to
/// `reference` like [`push`]; the manifest digest.
fn push_variant(
    p: &Project,
    registry: &Registry,
    reference: &str,
    tag: &str,
    sign: bool,
) -> String {
    let file = p.write_outside(&format!("{tag}.wasm"), &variant(tag));
    push(p, registry, &file, reference, sign)
}

/// [`variant`]`(tag)` pushed to `e2e/<repo>:1.0` of `registry` (signed
/// when `sign`) and a [`one_stage`] pipeline running it: the reference and
/// the manifest digest.
fn one_stage_pushed(
    p: &Project,
    registry: &Registry,
    repo: &str,
    tag: &str,
    sign: bool,
) -> (String, String) {
    let reference = registry.reference(&format!("e2e/{repo}:1.0"));
    let manifest = push_variant(p, registry, &reference, tag, sign);
    one_stage(p, &reference);
    (reference, manifest)
}

/// A one-stage pipeline running `reference`, under a policy that trusts the
/// demo key for every repository under `oci://127.0.0.1:*/e2e/`.
fn one_stage(p: &Project, reference: &str) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: oci\npolicy: policy.yaml\nstages:\n  noop:\n    uses: {reference}\n"
        ),
    );
    p.write(
        "policy.yaml",
        &format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: e2e\n    match: [\"oci://127.0.0.1:*/e2e/**\"]\n    authorities:\n      - key: {}\n",
            demo_pub().display()
        ),
    );
}

#[test]
fn the_quickstart_runs_from_signed_references_under_a_reference_policy() {
    let registry = Registry::shared();
    let manifests = quickstart_plugins();
    let p = Project::trusted_only();
    copy_example(&repo_root().join("examples/quickstart"), p.path());
    let mut pipeline = p.read("sluice.yaml");
    for name in ["lint", "test", "scan", "build"] {
        pipeline = pipeline.replace(
            &format!("../../dist/plugins/{name}.wasm"),
            &registry.reference(&format!("sluice/{name}:1.0")),
        );
    }
    p.write("sluice.yaml", &pipeline);
    let policy = p
        .read("sluice-policy.yaml")
        .replace(
            "[\"**/dist/plugins/*.wasm\"]",
            "[\"oci://127.0.0.1:*/sluice/**\"]",
        )
        .replace(
            "../../dist/keys",
            &repo_root().join("dist/keys").display().to_string(),
        );
    assert!(policy.contains("oci://127.0.0.1:*/sluice/**"), "{policy}");
    p.write("sluice-policy.yaml", &policy);

    // The policy explains the reference rule.
    let check = p.sluice(&["policy", "check", "sluice-policy.yaml"]);
    check.expect_code(0).expect_stdout(
        "applies to plugins from registries whose reference (without tag or digest) \
             matches `oci://127.0.0.1:*/sluice/**`",
    );

    let run = sluice(&p, registry, &["run"]);
    run.expect_code(0);
    let record = p.record(&run.run_id());
    for name in ["lint", "test", "scan", "build"] {
        let stage = &record["stages"][name];
        assert!(
            stage["state"] == "passed" || stage["state"] == "warned",
            "{name}: {stage:#}"
        );
        let manifest = &manifests[name];
        let written = registry.reference(&format!("sluice/{name}:1.0"));
        // The record: matched by the policy name, pinned to the manifest.
        let plugin = &stage["plugin"];
        assert_eq!(
            plugin["reference"],
            registry.reference(&format!("sluice/{name}"))
        );
        assert_eq!(plugin["oci"]["reference"], written.as_str());
        assert_eq!(plugin["oci"]["manifest"], manifest.as_str());
        assert_eq!(plugin["policy_rules"][0], "reference-stages");
        assert!(
            plugin["signer"]
                .as_str()
                .is_some_and(|s| s.starts_with("key sha256:")),
            "{plugin:#}"
        );
        // The component is the file that was pushed.
        let component = sha256(&std::fs::read(sluice_tests::plugin(name)).expect("plugin"));
        assert_eq!(plugin["digest"], component.as_str());
        // The console shows the reference pinned to the manifest.
        assert!(
            run.stdout
                .contains(&format!("  plugin {written}@{manifest} sha256:")),
            "{}",
            run.stdout
        );
        // Provenance names the pinned reference; its digest is the
        // component's.
        let provenance: serde_json::Value =
            serde_json::from_str(&p.artifact(stage, "provenance.intoto.json")).expect("JSON");
        let dep = &provenance["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(dep["uri"], format!("{written}@{manifest}"), "{dep:#}");
        assert_eq!(
            dep["digest"]["sha256"],
            component.trim_start_matches("sha256:")
        );
    }

    // `plugin verify` pulls the referrers and decides as the run did.
    let verify = sluice(
        &p,
        registry,
        &[
            "plugin",
            "verify",
            &registry.reference("sluice/test:1.0"),
            "--pipeline",
            "sluice.yaml",
        ],
    );
    verify
        .expect_code(0)
        .expect_stdout("stage `test` (its grants checked)")
        .expect_stdout("result: ADMITTED");
}

#[test]
fn a_tag_moved_to_another_digest_is_refused_under_locked() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let (reference, first_manifest) = one_stage_pushed(&p, registry, "moved", "moved-1", true);

    // Without a lock, `--locked` refuses, naming the lock file and the fix.
    let unlocked = sluice(&p, registry, &["run", "--locked"]);
    unlocked.expect_code(2).expect_stderr(&format!(
        "--locked: plugin {reference} is not pinned in sluice.lock; run `sluice lock`"
    ));
    let validate = sluice(&p, registry, &["validate"]);
    validate
        .expect_code(0)
        .expect_stdout("lock: no sluice.lock");

    let lock = sluice(&p, registry, &["lock"]);
    lock.expect_code(0)
        .expect_stdout(&format!("manifest {first_manifest} (new)"));
    assert!(p.read("sluice.lock").contains(&first_manifest));
    let validate = sluice(&p, registry, &["validate", "--locked"]);
    validate
        .expect_code(0)
        .expect_stdout("lock: sluice.lock pins 1 of 1 OCI reference");
    let validate = sluice(&p, registry, &["validate", "--pull", "--locked"]);
    validate
        .expect_code(0)
        .expect_stdout(&format!("pulled {reference}@{first_manifest}"));

    // Someone pushes another build under the same tag.
    let second_manifest = push_variant(&p, registry, &reference, "moved-2", true);
    assert_ne!(first_manifest, second_manifest);

    let refused = sluice(&p, registry, &["run", "--locked"]);
    refused.expect_code(3);
    let stale = sluice(&p, registry, &["validate", "--pull", "--locked"]);
    stale.expect_code(3);
    refused.expect_stderr(&format!(
        "--locked: the tag of plugin {reference} moved: sluice.lock pins manifest \
             {first_manifest}, but the registry now resolves it to {second_manifest}; if the new \
             content is intended, run `sluice lock` to accept it"
    ));
    // Without --locked the lock still pins the tag: the locked build runs.
    let pinned = sluice(&p, registry, &["run"]);
    pinned
        .expect_code(0)
        .expect_stdout(&format!("plugin {reference}@{first_manifest} "));
    // `sluice lock` accepts the new build, and says so.
    let relock = sluice(&p, registry, &["lock"]);
    relock.expect_code(0).expect_stdout(&format!(
        "manifest {second_manifest} (changed from {first_manifest})"
    ));
    let accepted = sluice(&p, registry, &["run", "--locked"]);
    accepted.expect_code(0);
    let record = p.record(&accepted.run_id());
    assert_eq!(
        record["stages"]["noop"]["plugin"]["oci"]["manifest"],
        second_manifest.as_str()
    );
    assert_eq!(
        record["stages"]["noop"]["plugin"]["digest"],
        sha256(&variant("moved-2")).as_str()
    );

    // A lock whose component is not the one its manifest holds (an edited
    // lock, or a registry serving other content) is refused.
    let component = sha256(&variant("moved-2"));
    let other = sha256(&variant("moved-1"));
    let lock = p.read("sluice.lock").replace(&component, &other);
    p.write("sluice.lock", &lock);
    let mismatch = sluice(&p, registry, &["run"]);
    mismatch.expect_code(3).expect_stderr(&format!(
        "manifest {second_manifest} holds component {component}, but sluice.lock pins \
             component {other}"
    ));
}

#[test]
fn an_unsigned_pushed_plugin_is_refused() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let (reference, _) = one_stage_pushed(&p, registry, "unsigned", "unsigned", false);
    let run = sluice(&p, registry, &["run"]);
    run.expect_code(3);
    let policy_name = registry.reference("e2e/unsigned");
    run.expect_stderr(&format!("plugin {policy_name} refused by the trust policy"))
        .expect_stderr(&format!(
            "`{policy_name}` is not signed: the registry holds no Sigstore bundle referring to \
             this manifest; sign it in the registry with `sluice plugin sign {policy_name}:TAG"
        ));
    let public = demo_pub().display().to_string();
    let verify = sluice(
        &p,
        registry,
        &["plugin", "verify", &reference, "--key", &public],
    );
    verify
        .expect_code(3)
        .expect_stderr("unsigned: the registry holds no signature referring to this manifest");

    // Signing it in the registry makes it run.
    let key = demo_key().display().to_string();
    let sign = sluice(&p, registry, &["plugin", "sign", &reference, "--key", &key]);
    sign.expect_code(0);
    let verify = sluice(
        &p,
        registry,
        &["plugin", "verify", &reference, "--key", &public],
    );
    verify.expect_code(0).expect_stdout("result: VERIFIED");
    let run = sluice(&p, registry, &["run"]);
    run.expect_code(0);
}

#[test]
fn a_resumed_run_keeps_the_manifests_it_started_with() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let (reference, first_manifest) = one_stage_pushed(&p, registry, "resumed", "resumed-1", true);
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: oci\npolicy: policy.yaml\nstages:\n  before: {{ uses: {reference} }}\n  after: {{ uses: {reference}, needs: [before], approval: required }}\n"
        ),
    );
    let paused = sluice(&p, registry, &["run"]);
    paused.expect_code(4);
    let id = paused.run_id();
    // The tag moves while the run waits for approval.
    let second_manifest = push_variant(&p, registry, &reference, "resumed-2", true);
    assert_ne!(first_manifest, second_manifest);
    let approve = p.sluice(&["approve", &id, "after"]);
    approve.expect_code(0);
    let resumed = sluice(&p, registry, &["run", "--resume", &id]);
    resumed.expect_code(0);
    let record = p.record(&id);
    for stage in ["before", "after"] {
        assert_eq!(
            record["stages"][stage]["plugin"]["oci"]["manifest"],
            first_manifest.as_str(),
            "{stage}: {record:#}"
        );
    }
}

#[test]
fn a_blob_tampered_in_the_registry_storage_is_detected() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let reference = registry.reference("e2e/tampered:1.0");
    let original = variant("tampered-aaaa");
    let file = p.write_outside("tampered.wasm", &original);
    push(&p, registry, &file, &reference, true);
    one_stage(&p, &reference);
    // The registry now serves other bytes (same length) for the layer.
    let blob = registry.blob_path(&sha256(&original));
    assert_eq!(std::fs::read(&blob).expect("blob"), original);
    std::fs::write(&blob, variant("tampered-bbbb")).expect("tamper");

    let run = sluice(&p, registry, &["run"]);
    run.expect_code(3)
        .expect_stderr(&format!("plugin {reference}: "))
        .expect_stderr("digest mismatch")
        .expect_stderr(&sha256(&original));
}

/// What an attacker with push access does after pushing a modified
/// component: attach a copy of the genuine signature bundle as a referrer
/// of the new manifest, through the registry's own API (an OCI referrer
/// manifest and the tag-schema index `sha256-<hex>`), so that every digest
/// in the registry is consistent. Python's standard library, not sluice:
/// `sluice plugin push` refuses to attach a bundle over other bytes.
const ATTACH_OLD_SIGNATURE: &str = r#"
import base64, hashlib, json, ssl, sys, urllib.request
registry, repo, user, password, ca, subject, bundle_file = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
def call(method, path, body=None, ctype=None, accept=None):
    req = urllib.request.Request(f"https://{registry}/v2/{repo}/{path}", data=body, method=method)
    req.add_header("Authorization", auth)
    if ctype: req.add_header("Content-Type", ctype)
    if accept: req.add_header("Accept", accept)
    with urllib.request.urlopen(req, context=ctx) as r:
        return r.read(), r.headers
def digest(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def blob(b):
    call("POST", f"blobs/uploads/?digest={digest(b)}", b, "application/octet-stream")
    return digest(b)
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
subject_bytes, headers = call("GET", f"manifests/{subject}", accept=MANIFEST)
bundle = open(bundle_file, "rb").read()
empty = b"{}"
referrer = json.dumps({
    "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": BUNDLE,
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": blob(empty), "size": len(empty)},
    "layers": [{"mediaType": BUNDLE, "digest": blob(bundle), "size": len(bundle)}],
    "subject": {"mediaType": MANIFEST, "digest": subject, "size": len(subject_bytes)},
    "annotations": {"dev.sigstore.bundle.content": "message-signature"},
}).encode()
call("PUT", f"manifests/{digest(referrer)}", referrer, MANIFEST)
index = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": MANIFEST, "digest": digest(referrer), "size": len(referrer), "artifactType": BUNDLE}],
}).encode()
call("PUT", "manifests/sha256-" + subject.split(":")[1], index, "application/vnd.oci.image.index.v1+json")
"#;

#[test]
fn a_consistent_forgery_under_the_old_signature_is_refused() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let (reference, _) = one_stage_pushed(&p, registry, "forged", "genuine", true);
    let before = sluice(&p, registry, &["run"]);
    before.expect_code(0);
    // The attacker pulls the genuine plugin with its signature…
    let pulled = p.root().join("pulled.wasm");
    let pull = sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &reference,
            "-o",
            &pulled.display().to_string(),
        ],
    );
    pull.expect_code(0);
    let signature = p.root().join("pulled.wasm.sigstore.json");
    assert!(signature.exists(), "{}", pull.all());
    // …pushes a modified build under the same tag, and attaches the
    // genuine signature to it: every digest in the registry is consistent.
    let forged_manifest = push_variant(&p, registry, &reference, "forged!", false);
    run_ok(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(ATTACH_OLD_SIGNATURE)
            .arg(registry.registry())
            .arg("e2e/forged")
            .arg(registry.user())
            .arg(registry.password())
            .arg(registry.ca_file())
            .arg(&forged_manifest)
            .arg(&signature),
        "attaching the old signature",
    );

    let run = sluice(&p, registry, &["run"]);
    run.expect_code(3);
    let policy_name = registry.reference("e2e/forged");
    run.expect_stderr(&format!("plugin {policy_name} refused by the trust policy"));
    // A signature was found and checked: the refusal is the signature's,
    // not a missing bundle or a digest mismatch.
    run.expect_stderr("the bundle was made for a different file");
    assert!(!run.stderr.contains("is not signed"), "{}", run.all());
    assert!(
        !run.stderr.contains("digest mismatch"),
        "only the signature can catch this:\n{}",
        run.all()
    );
}

#[test]
fn offline_runs_use_the_pull_cache_and_say_what_is_missing() {
    let registry = Registry::start_private();
    let p = Project::trusted_only();
    let cache = p.root().join("cache");
    let reference = registry.reference("e2e/offline:1.0");
    let manifest = push_variant(&p, &registry, &reference, "offline", true);
    let other_reference = registry.reference("e2e/other:1.0");
    let other_manifest = push_variant(&p, &registry, &other_reference, "other", true);
    one_stage(&p, &reference);
    let lock = sluice_cached(&p, &registry, &cache, &["lock"]);
    lock.expect_code(0);
    let online = sluice_cached(&p, &registry, &cache, &["run", "--locked"]);
    online.expect_code(0);

    registry.stop();
    // Locked and cached: runs, and says the registry did not answer.
    let offline = sluice_cached(&p, &registry, &cache, &["run", "--locked"]);
    offline
        .expect_code(0)
        .expect_stdout(&format!(
            "registry {} is unreachable (",
            registry.registry()
        ))
        .expect_stdout(&format!(
            "{reference} runs from the pull cache, with the signatures cached when pulled; \
             --locked could not check that its tags still point to the locked manifests"
        ))
        .expect_stdout(&format!("plugin {reference}@{manifest} "));
    // `validate` needs no network either.
    let validate = sluice_cached(&p, &registry, &cache, &["validate"]);
    validate.expect_code(0);

    // A tag neither pinned nor locked cannot be resolved.
    one_stage(&p, &other_reference);
    let unpinned = sluice_cached(&p, &registry, &cache, &["run"]);
    unpinned
        .expect_code(1)
        .expect_stderr(&format!(
            "plugin {other_reference}: registry {} is unreachable (",
            registry.registry()
        ))
        .expect_stderr(
            "the tag `1.0` is pinned neither in `uses:` nor in sluice.lock; run `sluice lock` \
             while the registry is reachable",
        );
    // Pinned but never pulled: not in the cache.
    let pinned = format!("{other_reference}@{other_manifest}");
    one_stage(&p, &pinned);
    let uncached = sluice_cached(&p, &registry, &cache, &["run"]);
    uncached.expect_code(1).expect_stderr(&format!(
        "manifest {other_manifest} is not in the pull cache; run it once while the registry \
             is reachable, or `sluice lock`"
    ));

    // A corrupted cache entry is an integrity failure, and is removed.
    one_stage(&p, &reference);
    let hex = manifest.trim_start_matches("sha256:");
    let cached = cache.join("oci").join(hex).join("component.wasm");
    assert!(cached.exists(), "{}", cached.display());
    std::fs::write(&cached, variant("offline-corrupted")).expect("corrupt");
    let corrupted = sluice_cached(&p, &registry, &cache, &["run", "--locked"]);
    corrupted.expect_code(3).expect_stderr("corrupted");
}

#[test]
fn a_pipeline_mixes_plugin_files_and_references() {
    let registry = Registry::shared();
    let p = Project::trusted_only();
    let reference = registry.reference("e2e/mixed:1.0");
    let manifest = push_variant(&p, registry, &reference, "mixed", true);
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("noop"), p.path().join("plugins/noop.wasm")).expect("copy");
    std::fs::copy(
        repo_root().join("dist/plugins/noop.wasm.sigstore.json"),
        p.path().join("plugins/noop.wasm.sigstore.json"),
    )
    .expect("copy bundle");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: mixed\npolicy: policy.yaml\nstages:\n  local: {{ uses: plugins/noop.wasm }}\n  pulled: {{ uses: {reference}, needs: [local] }}\n"
        ),
    );
    // Each rule covers one kind: the file rule's `**` does not reach the
    // reference, and the reference rule does not reach files.
    p.write(
        "policy.yaml",
        &format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: files\n    match: [\"**\"]\n    authorities: [{{ key: {key} }}]\n  - name: registry\n    match: [\"oci://127.0.0.1:*/e2e/**\"]\n    authorities: [{{ key: {key} }}]\n",
            key = demo_pub().display()
        ),
    );
    let run = sluice(&p, registry, &["run", "--jobs", "1"]);
    run.expect_code(0);
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["local"]["plugin"]["policy_rules"][0],
        "files"
    );
    assert_eq!(
        record["stages"]["local"]["plugin"]["oci"],
        serde_json::Value::Null
    );
    assert_eq!(
        record["stages"]["pulled"]["plugin"]["policy_rules"][0],
        "registry"
    );
    assert_eq!(
        record["stages"]["pulled"]["plugin"]["oci"]["manifest"],
        manifest.as_str()
    );
    // What the user reads: the file by its path, the reference pinned.
    let lines: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("plugin "))
        .map(|l| {
            let l = l
                .replace(&registry.registry(), "127.0.0.1:[port]")
                .replace(&manifest, "sha256:[manifest]");
            // The component digest (of a rebuilt plugin) and the load time
            // vary; the reference is what this is about.
            let words: Vec<&str> = l.split_whitespace().take(2).collect();
            format!("  {}", words.join(" "))
        })
        .collect();
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("oci_run_console_plugin_lines", lines.join("\n"));
    });
}

#[test]
fn a_broken_lock_file_or_an_insecure_remote_registry_is_invalid_input() {
    // No registry is needed: both are refused before any is contacted.
    let p = Project::trusted_only();
    let reference = "oci://127.0.0.1:9/e2e/never:1.0";
    one_stage(&p, reference);
    p.write(
        "sluice.lock",
        "version: 1\nplugins:\n  oci://127.0.0.1:9/e2e/never:1.0: { manifest: sha256:00 }\n",
    );
    let run = p.sluice(&["run"]);
    run.expect_code(2)
        .expect_stderr("sluice.lock: it is not a sluice lock file")
        .expect_stderr("delete it and run `sluice lock` to write it again");
    let validate = p.sluice(&["validate"]);
    validate.expect_code(2);

    std::fs::remove_file(p.path().join("sluice.lock")).expect("rm");
    let run = p.sluice(&["run", "--insecure-registry", "registry.example:5000"]);
    run.expect_code(2)
        .expect_stderr("--insecure-registry registry.example:5000 refused: plain HTTP is only allowed for loopback registries");
}
