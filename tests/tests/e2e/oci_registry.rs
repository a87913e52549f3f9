//! `sluice plugin push|pull|sign oci://…` against a real registry: Debian's
//! docker-registry 2.8 on loopback with TLS (a CA made at test time) and
//! htpasswd auth (tests/src/registry.rs), and `wkg` 0.16 for interop.
//!
//! docker-registry 2.8 has no OCI referrers API: signatures go through
//! the tag-schema fallback (`sha256-<hex>` index tags) here; the referrers
//! API path itself is not exercised by a real registry in these tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_tests::registry::{require_wkg, Registry};
use sluice_tests::{plugin, Project, Run};

const PASSWORD: &str = "test-password";

/// `sluice args` with the registry's credentials and CA in the environment
/// (and the key password).
fn sluice(p: &Project, registry: &Registry, args: &[&str]) -> Run {
    let env = registry.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("SLUICE_KEY_PASSWORD", PASSWORD));
    p.sluice_env(args, &all)
}

/// A project with its own key pair (`keys/release.{key,pub}`) and a copy
/// of the fixture plugin at `plugins/fixture.wasm`.
fn project_with_key() -> Project {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy");
    let gen = p.sluice_env(
        &["key", "generate", "--out", "keys/release"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    p
}

/// The pinned reference `plugin push` prints on its last line.
fn pinned(run: &Run) -> String {
    let last = run.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("oci://") && last.contains("@sha256:"),
        "push did not end with the pinned reference:\n{}",
        run.all()
    );
    last
}

fn digest_of(pinned: &str) -> String {
    pinned
        .split_once('@')
        .map(|(_, d)| d.to_owned())
        .expect("a pinned reference")
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().unwrap_or_default()
    )
}

#[test]
fn a_plugin_pushed_with_sign_pulls_back_identical_and_verifies() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/signed-fixture:1.0");
    let push = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &reference,
            "--sign",
            "keys/release.key",
        ],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let pinned = pinned(&push);
    assert!(
        pinned.starts_with(&format!("{reference}@sha256:")),
        "{pinned}"
    );
    assert!(
        push.stdout.contains("attached the signature"),
        "{}",
        push.all()
    );

    // By tag: the component and its bundle come back.
    let pull = sluice(
        &p,
        registry,
        &["plugin", "pull", &reference, "-o", "pulled/fixture.wasm"],
    );
    assert_eq!(pull.code, 0, "{}", pull.all());
    assert!(pull.stdout.contains(&pinned), "{}", pull.all());
    let original = std::fs::read(p.path().join("plugins/fixture.wasm")).expect("read");
    let pulled = std::fs::read(p.path().join("pulled/fixture.wasm")).expect("read pulled");
    assert_eq!(original, pulled, "the pulled component differs");
    let bundle = p.path().join("pulled/fixture.wasm.sigstore.json");
    assert!(bundle.is_file(), "{}", pull.all());
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "pulled/fixture.wasm",
        "--key",
        "keys/release.pub",
    ]);
    assert_eq!(verify.code, 0, "{}", verify.all());
    assert!(verify.stdout.contains("VERIFIED"), "{}", verify.all());

    // The bundle is the one `plugin sign FILE` writes: it verifies the
    // local file too (same bytes, same kind of bundle).
    std::fs::copy(&bundle, p.path().join("plugins/fixture.wasm.sigstore.json")).expect("copy");
    let local = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--key",
        "keys/release.pub",
    ]);
    assert_eq!(local.code, 0, "{}", local.all());

    // docker-registry 2.8 has no referrers API: the signature is listed in
    // the tag-schema fallback index.
    let fallback_tag = digest_of(&pinned).replace(':', "-");
    assert!(
        registry
            .storage()
            .join("docker/registry/v2/repositories/e2e/signed-fixture/_manifests/tags")
            .join(&fallback_tag)
            .is_dir(),
        "no fallback tag {fallback_tag}"
    );

    // By digest, too.
    let by_digest = sluice(
        &p,
        registry,
        &["plugin", "pull", &pinned, "-o", "again.wasm"],
    );
    assert_eq!(by_digest.code, 0, "{}", by_digest.all());
    assert_eq!(
        std::fs::read(p.path().join("again.wasm")).expect("read"),
        original
    );
}

#[test]
fn plugin_sign_oci_adds_a_second_signature_and_pull_writes_both() {
    let registry = Registry::shared();
    let p = project_with_key();
    let gen = p.sluice_env(
        &["key", "generate", "--out", "keys/second"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    let reference = registry.reference("e2e/two-signers:1");
    // Unsigned push: nothing attached.
    let push = sluice(
        &p,
        registry,
        &["plugin", "push", "plugins/fixture.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let unsigned = sluice(
        &p,
        registry,
        &["plugin", "pull", &reference, "-o", "u.wasm"],
    );
    assert_eq!(unsigned.code, 0, "{}", unsigned.all());
    assert!(
        unsigned.stdout.contains("no signatures"),
        "{}",
        unsigned.all()
    );
    assert!(!p.path().join("u.wasm.sigstore.json").exists());

    for key in ["keys/release.key", "keys/second.key"] {
        let sign = sluice(&p, registry, &["plugin", "sign", &reference, "--key", key]);
        assert_eq!(sign.code, 0, "{}", sign.all());
        assert!(
            sign.stdout.contains("attached the signature"),
            "{}",
            sign.all()
        );
    }
    let pull = sluice(
        &p,
        registry,
        &["plugin", "pull", &reference, "-o", "s.wasm"],
    );
    assert_eq!(pull.code, 0, "{}", pull.all());
    assert!(pull.stdout.contains("(2 signatures)"), "{}", pull.all());
    let list: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join("s.wasm.sigstore.json")).expect("read bundle"),
    )
    .expect("a JSON list of bundles");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    // A list of bundles is what a policy reads from FILE.sigstore.json:
    // each key's rule is met by its own bundle.
    for public in ["keys/release.pub", "keys/second.pub"] {
        p.write(
            "policy.yaml",
            &format!(
                "rules:\n  - name: signed\n    match: [\"s.wasm\"]\n    authorities:\n      - key: {public}\n"
            ),
        );
        let verify = p.sluice(&["plugin", "verify", "s.wasm", "--policy", "policy.yaml"]);
        assert_eq!(verify.code, 0, "{public}: {}", verify.all());
    }
    // A stale bundle from an earlier pull is not left beside an unsigned one.
    std::fs::copy(
        p.path().join("s.wasm.sigstore.json"),
        p.path().join("u.wasm.sigstore.json"),
    )
    .expect("copy");
    let other = registry.reference("e2e/two-signers-unsigned:1");
    let push = sluice(
        &p,
        registry,
        &["plugin", "push", "plugins/fixture.wasm", &other],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let again = sluice(&p, registry, &["plugin", "pull", &other, "-o", "u.wasm"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(!p.path().join("u.wasm.sigstore.json").exists());
}

#[test]
fn a_wrong_password_is_refused_naming_the_registry() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/auth:1");
    let auth = format!(
        r#"{{"auths": {{"{}": {{"username": "{}", "password": "not-the-password"}}}}}}"#,
        registry.registry(),
        registry.user()
    );
    let ca = registry.ca_file().display().to_string();
    let push = p.sluice_env(
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &reference,
            "--registry-ca",
            &ca,
        ],
        &[("SLUICE_REGISTRY_AUTH", &auth)],
    );
    assert_eq!(push.code, 2, "{}", push.all());
    assert!(
        push.stderr
            .contains(&format!("registry {} refused access", registry.registry())),
        "{}",
        push.all()
    );
    assert!(
        push.stderr.contains("SLUICE_REGISTRY_AUTH"),
        "{}",
        push.all()
    );

    // No credentials at all: the same refusal.
    let empty = p.write_outside("empty-docker/config.json", b"{}");
    let empty_dir = empty.parent().expect("dir").display().to_string();
    let pull = p.sluice_env(
        &["plugin", "pull", &reference, "--registry-ca", &ca],
        &[("DOCKER_CONFIG", &empty_dir)],
    );
    assert_eq!(pull.code, 2, "{}", pull.all());
    assert!(pull.stderr.contains("refused access"), "{}", pull.all());

    // A broken credentials file names itself.
    let broken = p.sluice_env(
        &["plugin", "pull", &reference, "--registry-ca", &ca],
        &[("SLUICE_REGISTRY_AUTH", "{not json")],
    );
    assert_eq!(broken.code, 2, "{}", broken.all());
    assert!(
        broken.stderr.contains("SLUICE_REGISTRY_AUTH"),
        "{}",
        broken.all()
    );
}

#[test]
fn without_the_ca_tls_fails_and_names_registry_ca() {
    let registry = Registry::shared();
    let p = Project::new();
    let docker = registry.docker_config().display().to_string();
    let pull = p.sluice_env(
        &["plugin", "pull", &registry.reference("e2e/tls:1")],
        &[("DOCKER_CONFIG", &docker)],
    );
    assert_eq!(pull.code, 2, "{}", pull.all());
    assert!(
        pull.stderr
            .contains(&format!("TLS with registry {} failed", registry.registry())),
        "{}",
        pull.all()
    );
    assert!(pull.stderr.contains("--registry-ca"), "{}", pull.all());
    // One error line, not a log line of the TLS library before it.
    assert_eq!(pull.stderr.trim().lines().count(), 1, "{}", pull.all());

    // A CA file that holds no certificate is named.
    let key_file = p.write_outside("not-a-ca.pem", b"-----BEGIN PRIVATE KEY-----\n");
    let key_arg = key_file.display().to_string();
    let bad_ca = p.sluice_env(
        &[
            "plugin",
            "pull",
            &registry.reference("e2e/tls:1"),
            "--registry-ca",
            &key_arg,
        ],
        &[("DOCKER_CONFIG", &docker)],
    );
    assert_eq!(bad_ca.code, 2, "{}", bad_ca.all());
    assert!(bad_ca.stderr.contains("not-a-ca.pem"), "{}", bad_ca.all());
}

#[test]
fn insecure_registry_is_refused_for_a_host_that_is_not_loopback() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy");
    for args in [
        vec![
            "plugin",
            "pull",
            "oci://registry.example:5000/team/x:1",
            "--insecure-registry",
            "registry.example:5000",
        ],
        vec![
            "plugin",
            "push",
            "plugins/fixture.wasm",
            "oci://10.1.2.3:5000/team/x:1",
            "--insecure-registry",
            "10.1.2.3:5000",
        ],
    ] {
        let run = p.sluice(&args);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(run.stderr.contains("--insecure-registry"), "{}", run.all());
        assert!(run.stderr.contains("loopback"), "{}", run.all());
    }
}

#[test]
fn plain_http_works_for_a_loopback_registry_named_insecure() {
    let registry = Registry::start_plain();
    let p = project_with_key();
    let reference = registry.reference("e2e/plain:1");
    let host = registry.registry();
    // Without --insecure-registry sluice speaks TLS, which a plain registry
    // does not: refused, not silently downgraded.
    let tls = p.sluice(&["plugin", "push", "plugins/fixture.wasm", &reference]);
    assert_ne!(tls.code, 0, "{}", tls.all());
    let push = p.sluice(&[
        "plugin",
        "push",
        "plugins/fixture.wasm",
        &reference,
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(push.code, 0, "{}", push.all());
    let pull = p.sluice(&[
        "plugin",
        "pull",
        &reference,
        "-o",
        "plain.wasm",
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(pull.code, 0, "{}", pull.all());
    assert_eq!(
        std::fs::read(p.path().join("plain.wasm")).expect("read"),
        std::fs::read(plugin("fixture")).expect("read")
    );
}

/// `wkg` with the registry's CA (`SSL_CERT_FILE`: wkg's TLS reads the
/// system roots from there) and credentials.
fn wkg(registry: &Registry, args: &[&str]) -> std::process::Output {
    require_wkg();
    Command::new("wkg")
        .args(args)
        .env("SSL_CERT_FILE", registry.ca_file())
        .env("WKG_OCI_USERNAME", registry.user())
        .env("WKG_OCI_PASSWORD", registry.password())
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("run wkg")
}

#[test]
fn wkg_pushes_and_sluice_pulls_identical_bytes() {
    let registry = Registry::shared();
    let p = Project::new();
    let component = plugin("lint");
    let target = format!("{}/e2e/from-wkg:0.1.0", registry.registry());
    let out = wkg(
        registry,
        &["oci", "push", &target, &component.display().to_string()],
    );
    assert!(
        out.status.success(),
        "wkg oci push failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pull = sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &format!("oci://{target}"),
            "-o",
            "lint.wasm",
        ],
    );
    assert_eq!(pull.code, 0, "{}", pull.all());
    assert_eq!(
        std::fs::read(p.path().join("lint.wasm")).expect("read"),
        std::fs::read(&component).expect("read"),
        "sluice pulled other bytes than wkg pushed"
    );
    assert!(
        pull.stdout
            .contains(&format!("component {}", sha256_file(&component))),
        "{}",
        pull.all()
    );
}

#[test]
fn sluice_pushes_and_wkg_pulls_identical_bytes() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/to-wkg:0.2.0");
    let push = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &reference,
            "--sign",
            "keys/release.key",
        ],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let out_file: PathBuf = p.path().join("from-wkg.wasm");
    let out = wkg(
        registry,
        &[
            "oci",
            "pull",
            reference.trim_start_matches("oci://"),
            "-o",
            &out_file.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "wkg oci pull failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&out_file).expect("read"),
        std::fs::read(plugin("fixture")).expect("read"),
        "wkg pulled other bytes than sluice pushed"
    );
}

#[test]
fn a_blob_tampered_in_the_registry_storage_is_refused_with_exit_3() {
    // A registry of this test's own: blobs are shared between repositories,
    // so tampering with the shared registry would break other tests.
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/tampered:1");
    let push = sluice(
        &p,
        &registry,
        &["plugin", "push", "plugins/fixture.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let component_digest = sha256_file(&plugin("fixture"));
    let blob = registry.blob_path(&component_digest);
    let mut bytes = std::fs::read(&blob).expect("the component blob in the registry storage");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("tamper");

    let pull = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "t.wasm"],
    );
    assert_eq!(pull.code, 3, "{}", pull.all());
    assert!(pull.stderr.contains("digest mismatch"), "{}", pull.all());
    assert!(pull.stderr.contains(&component_digest), "{}", pull.all());
    assert!(
        !p.path().join("t.wasm").exists(),
        "a tampered component was written"
    );

    // A manifest changed on the registry's disk (the layer title) is
    // caught the same way: its bytes are not its digest.
    std::fs::copy(plugin("lint"), p.path().join("plugins/lint.wasm")).expect("copy");
    let reference = registry.reference("e2e/tampered-manifest:1");
    let push = sluice(
        &p,
        &registry,
        &["plugin", "push", "plugins/lint.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let manifest_digest = digest_of(&pinned(&push));
    let blob = registry.blob_path(&manifest_digest);
    let text = std::fs::read_to_string(&blob).expect("manifest blob");
    assert!(text.contains("tampered-manifest.wasm"), "{text}");
    std::fs::write(
        &blob,
        text.replace("tampered-manifest.wasm", "tampered-manifest.wasX"),
    )
    .expect("tamper");
    let pull = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "m.wasm"],
    );
    assert_eq!(pull.code, 3, "{}", pull.all());
    assert!(pull.stderr.contains("digest mismatch"), "{}", pull.all());
    assert!(pull.stderr.contains(&manifest_digest), "{}", pull.all());
}

#[test]
fn a_manifest_that_is_not_a_wasm_component_is_refused_naming_what_it_holds() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/not-wasm:1");
    let push = sluice(
        &p,
        registry,
        &["plugin", "push", "plugins/fixture.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    // A manifest over the same blobs, but with a container image's layer
    // media type, put there by hand.
    let component = std::fs::read(plugin("fixture")).expect("read");
    let config = std::fs::read(registry.blob_path(&wasm_config_digest(registry, &push)))
        .expect("config blob");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": wasm_config_digest(registry, &push),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256_file(&plugin("fixture")),
            "size": component.len(),
        }],
    });
    let file = p.write_outside("manifest.json", manifest.to_string().as_bytes());
    let put = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "--cacert"])
        .arg(registry.ca_file())
        .arg("-u")
        .arg(format!("{}:{}", registry.user(), registry.password()))
        .args([
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!(
            "https://{}/v2/e2e/not-wasm/manifests/container",
            registry.registry()
        ))
        .output()
        .expect("run curl");
    assert!(
        put.status.success(),
        "curl PUT failed: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let pull = sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &registry.reference("e2e/not-wasm:container"),
        ],
    );
    assert_eq!(pull.code, 2, "{}", pull.all());
    assert!(
        pull.stderr.contains("is not a Wasm component artifact"),
        "{}",
        pull.all()
    );
    assert!(
        pull.stderr
            .contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{}",
        pull.all()
    );
}

/// The config digest of the manifest `push` wrote, read from the
/// registry's storage (the manifest is a blob there too).
fn wasm_config_digest(registry: &Registry, push: &Run) -> String {
    let manifest_digest = digest_of(&pinned(push));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.blob_path(&manifest_digest)).expect("manifest blob"),
    )
    .expect("manifest JSON");
    manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_owned()
}

#[test]
fn a_registry_that_is_down_fails_with_exit_1_and_names_it() {
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/down:1");
    let push = sluice(
        &p,
        &registry,
        &["plugin", "push", "plugins/fixture.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    registry.stop();
    let pull = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "d.wasm"],
    );
    assert_eq!(pull.code, 1, "{}", pull.all());
    assert!(
        pull.stderr
            .contains(&format!("registry {} is unreachable", registry.registry())),
        "{}",
        pull.all()
    );
    // Back up with the same storage: the plugin is still there.
    registry.restart();
    let again = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "d.wasm"],
    );
    assert_eq!(again.code, 0, "{}", again.all());
}

#[test]
fn pushing_a_file_that_is_not_a_component_fails_before_any_upload() {
    let registry = Registry::shared();
    let p = Project::new();
    p.write("not-a-plugin.wasm", "#!/bin/sh\necho hi\n");
    let push = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "not-a-plugin.wasm",
            &registry.reference("e2e/garbage:1"),
        ],
    );
    assert_eq!(push.code, 2, "{}", push.all());
    assert!(push.stderr.contains("not-a-plugin.wasm"), "{}", push.all());
    // A digest in a push target is refused: the registry computes it.
    let p2 = project_with_key();
    let pinned = format!(
        "{}@sha256:{}",
        registry.reference("e2e/garbage:1"),
        "a".repeat(64)
    );
    let push = sluice(
        &p2,
        registry,
        &["plugin", "push", "plugins/fixture.wasm", &pinned],
    );
    assert_eq!(push.code, 2, "{}", push.all());
    assert!(push.stderr.contains("without a digest"), "{}", push.all());
}

/// `curl` PUT of a manifest (or index) to the registry, with its CA and
/// credentials.
fn put_manifest(registry: &Registry, p: &Project, path: &str, media_type: &str, body: &str) {
    let file = p.write_outside("put-manifest.json", body.as_bytes());
    let put = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "--cacert"])
        .arg(registry.ca_file())
        .arg("-u")
        .arg(format!("{}:{}", registry.user(), registry.password()))
        .args(["-H", &format!("Content-Type: {media_type}")])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("https://{}/v2/{path}", registry.registry()))
        .output()
        .expect("run curl");
    assert!(
        put.status.success(),
        "curl PUT {path} failed: {}",
        String::from_utf8_lossy(&put.stderr)
    );
}

/// The referrer digest in `attached the signature (sha256:…)`.
fn attached_digest(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.contains("attached the signature"))
        .and_then(|l| {
            l.rsplit_once('(')
                .map(|(_, d)| d.trim_end_matches(')').to_owned())
        })
        .unwrap_or_else(|| panic!("no attached signature in:\n{}", run.all()))
}

#[test]
fn a_signature_of_another_component_smuggled_into_the_fallback_index_is_ignored() {
    let registry = Registry::shared();
    let p = project_with_key();
    std::fs::copy(plugin("lint"), p.path().join("plugins/lint.wasm")).expect("copy");
    let signed = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &registry.reference("e2e/smuggle:signed"),
            "--sign",
            "keys/release.key",
        ],
    );
    assert_eq!(signed.code, 0, "{}", signed.all());
    let referrer = attached_digest(&signed);
    let unsigned = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "plugins/lint.wasm",
            &registry.reference("e2e/smuggle:unsigned"),
        ],
    );
    assert_eq!(unsigned.code, 0, "{}", unsigned.all());
    let target = digest_of(&pinned(&unsigned));
    // Someone with push access lists the fixture's signature as a referrer
    // of the lint component (the tag schema cannot stop that).
    let size = std::fs::metadata(registry.blob_path(&referrer))
        .expect("referrer manifest blob")
        .len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": referrer,
            "size": size,
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        }],
    });
    put_manifest(
        registry,
        &p,
        &format!("e2e/smuggle/manifests/{}", target.replace(':', "-")),
        "application/vnd.oci.image.index.v1+json",
        &index.to_string(),
    );
    let pull = sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &registry.reference("e2e/smuggle:unsigned"),
            "-o",
            "l.wasm",
            "--log",
            "sluice_oci=debug",
        ],
    );
    assert_eq!(pull.code, 0, "{}", pull.all());
    // The smuggled entry was read, and refused for its subject.
    assert!(
        pull.stderr.contains("ignoring referrer") && pull.stderr.contains(&referrer),
        "{}",
        pull.all()
    );
    assert!(pull.stdout.contains("no signatures"), "{}", pull.all());
    assert!(!p.path().join("l.wasm.sigstore.json").exists());
}

#[test]
fn a_signature_bundle_tampered_in_the_registry_storage_is_refused_with_exit_3() {
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/tampered-bundle:1");
    let push = sluice(
        &p,
        &registry,
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &reference,
            "--sign",
            "keys/release.key",
        ],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let referrer: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.blob_path(&attached_digest(&push))).expect("referrer manifest"),
    )
    .expect("referrer JSON");
    let bundle_digest = referrer["layers"][0]["digest"]
        .as_str()
        .expect("bundle layer digest")
        .to_owned();
    let blob = registry.blob_path(&bundle_digest);
    let text = std::fs::read_to_string(&blob).expect("bundle blob");
    // Same length, other content.
    std::fs::write(&blob, text.replacen("\"mediaType\"", "\"mediaTypf\"", 1)).expect("tamper");
    let pull = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "b.wasm"],
    );
    assert_eq!(pull.code, 3, "{}", pull.all());
    assert!(pull.stderr.contains("digest mismatch"), "{}", pull.all());
    assert!(pull.stderr.contains(&bundle_digest), "{}", pull.all());
}

#[test]
fn a_stale_bundle_beside_the_file_is_not_pushed() {
    let registry = Registry::shared();
    let p = project_with_key();
    // The lint plugin's bundle beside the fixture: it signs other bytes.
    std::fs::copy(
        plugin("lint").with_extension("wasm.sigstore.json"),
        p.path().join("plugins/fixture.wasm.sigstore.json"),
    )
    .expect("copy bundle");
    let push = sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            "plugins/fixture.wasm",
            &registry.reference("e2e/stale:1"),
        ],
    );
    assert_eq!(push.code, 2, "{}", push.all());
    assert!(push.stderr.contains("signs other bytes"), "{}", push.all());
    assert!(
        push.stderr.contains("fixture.wasm.sigstore.json"),
        "{}",
        push.all()
    );
}

#[test]
fn a_registry_sending_more_bytes_than_the_descriptor_says_is_cut_off() {
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/oversized:1");
    let push = sluice(
        &p,
        &registry,
        &["plugin", "push", "plugins/fixture.wasm", &reference],
    );
    assert_eq!(push.code, 0, "{}", push.all());
    let blob = registry.blob_path(&sha256_file(&plugin("fixture")));
    let mut bytes = std::fs::read(&blob).expect("component blob");
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&blob, &bytes).expect("grow the blob");
    let pull = sluice(
        &p,
        &registry,
        &["plugin", "pull", &reference, "-o", "o.wasm"],
    );
    assert_eq!(pull.code, 2, "{}", pull.all());
    assert!(pull.stderr.contains("the manifest says"), "{}", pull.all());
    assert!(!p.path().join("o.wasm").exists());
}
