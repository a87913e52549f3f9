//! `sluice plugin push|pull|sign oci://…` against a real registry: Debian's
//! docker-registry 2.8 on loopback with TLS (a CA made at test time) and
//! htpasswd auth (tests/src/registry.rs), and `wkg` 0.16 for interop.
//!
//! docker-registry 2.8 has no OCI referrers API: signatures go through
//! the tag-schema fallback (`sha256-<hex>` index tags) here; the referrers
//! API path itself is not exercised by a real registry in these tests.

use std::path::PathBuf;
use std::process::Command;

use sluice_tests::expect::Expect;
use sluice_tests::registry::{digest_of, pinned, require_wkg, run_ok, sha256_file, Registry};
use sluice_tests::{plugin, Project, Run};

use crate::trust::{generate_key, with_fixture, PASSWORD};

/// The fixture plugin in a [`project_with_key`].
const FIXTURE: &str = "plugins/fixture.wasm";
/// The signing key of a [`project_with_key`].
const RELEASE_KEY: &str = "keys/release.key";

/// `sluice args` with the registry's credentials and CA in the environment
/// (and the key password).
fn sluice(p: &Project, registry: &Registry, args: &[&str]) -> Run {
    registry.sluice(p, args, &[("SLUICE_KEY_PASSWORD", PASSWORD)])
}

/// `sluice plugin push FILE REFERENCE` (`--sign KEY` with a key), which
/// must succeed.
fn push(p: &Project, registry: &Registry, file: &str, reference: &str, sign: Option<&str>) -> Run {
    let mut args = vec!["plugin", "push", file, reference];
    if let Some(key) = sign {
        args.extend(["--sign", key]);
    }
    let run = sluice(p, registry, &args);
    run.expect_code(0);
    run
}

/// `sluice plugin pull REFERENCE -o OUT`.
fn pull(p: &Project, registry: &Registry, reference: &str, out: &str) -> Run {
    sluice(p, registry, &["plugin", "pull", reference, "-o", out])
}

/// `sluice plugin verify FILE --key keys/release.pub`.
fn verify_release(p: &Project, file: &str) -> Run {
    p.sluice(&["plugin", "verify", file, "--key", "keys/release.pub"])
}

/// A pull refused (exit 3) because the bytes under `digest` are not its.
#[track_caller]
fn expect_digest_mismatch(run: &Run, digest: &str) {
    run.expect_code(3)
        .expect_stderr("digest mismatch")
        .expect_stderr(digest);
}

/// A project with its own key pair (`keys/release.{key,pub}`) and a copy
/// of the fixture plugin at `plugins/fixture.wasm`.
fn project_with_key() -> Project {
    let p = with_fixture(Project::new());
    generate_key(&p, "keys/release");
    p
}

#[test]
fn a_plugin_pushed_with_sign_pulls_back_identical_and_verifies() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/signed-fixture:1.0");
    let pushed = push(&p, registry, FIXTURE, &reference, Some(RELEASE_KEY));
    let pinned = pinned(&pushed);
    assert!(
        pinned.starts_with(&format!("{reference}@sha256:")),
        "{pinned}"
    );
    pushed.expect_stdout("attached the signature");

    // By tag: the component and its bundle come back.
    let pulled_run = pull(&p, registry, &reference, "pulled/fixture.wasm");
    pulled_run.expect_code(0).expect_stdout(&pinned);
    let original = std::fs::read(p.path().join(FIXTURE)).expect("read");
    let pulled = std::fs::read(p.path().join("pulled/fixture.wasm")).expect("read pulled");
    assert_eq!(original, pulled, "the pulled component differs");
    let bundle = p.path().join("pulled/fixture.wasm.sigstore.json");
    assert!(bundle.is_file(), "{}", pulled_run.all());
    verify_release(&p, "pulled/fixture.wasm")
        .expect_code(0)
        .expect_stdout("VERIFIED");

    // The bundle is the one `plugin sign FILE` writes: it verifies the
    // local file too (same bytes, same kind of bundle).
    std::fs::copy(&bundle, p.path().join("plugins/fixture.wasm.sigstore.json")).expect("copy");
    verify_release(&p, FIXTURE).expect_code(0);

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
    pull(&p, registry, &pinned, "again.wasm").expect_code(0);
    assert_eq!(
        std::fs::read(p.path().join("again.wasm")).expect("read"),
        original
    );
}

#[test]
fn plugin_sign_oci_adds_a_second_signature_and_pull_writes_both() {
    let registry = Registry::shared();
    let p = project_with_key();
    generate_key(&p, "keys/second");
    let reference = registry.reference("e2e/two-signers:1");
    // Unsigned push: nothing attached.
    push(&p, registry, FIXTURE, &reference, None);
    pull(&p, registry, &reference, "u.wasm")
        .expect_code(0)
        .expect_stdout("no signatures");
    assert!(!p.path().join("u.wasm.sigstore.json").exists());

    for key in [RELEASE_KEY, "keys/second.key"] {
        sluice(&p, registry, &["plugin", "sign", &reference, "--key", key])
            .expect_code(0)
            .expect_stdout("attached the signature");
    }
    pull(&p, registry, &reference, "s.wasm")
        .expect_code(0)
        .expect_stdout("(2 signatures)");
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
    push(&p, registry, FIXTURE, &other, None);
    pull(&p, registry, &other, "u.wasm").expect_code(0);
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
    p.sluice_env(
        &["plugin", "push", FIXTURE, &reference, "--registry-ca", &ca],
        &[("SLUICE_REGISTRY_AUTH", &auth)],
    )
    .expect_code(2)
    .expect_stderr(&format!("registry {} refused access", registry.registry()))
    .expect_stderr("SLUICE_REGISTRY_AUTH");

    // No credentials at all: the same refusal.
    let empty = p.write_outside("empty-docker/config.json", b"{}");
    let empty_dir = empty.parent().expect("dir").display().to_string();
    p.sluice_env(
        &["plugin", "pull", &reference, "--registry-ca", &ca],
        &[("DOCKER_CONFIG", &empty_dir)],
    )
    .expect_code(2)
    .expect_stderr("refused access");

    // A broken credentials file names itself.
    p.sluice_env(
        &["plugin", "pull", &reference, "--registry-ca", &ca],
        &[("SLUICE_REGISTRY_AUTH", "{not json")],
    )
    .expect_code(2)
    .expect_stderr("SLUICE_REGISTRY_AUTH");
}

#[test]
fn without_the_ca_tls_fails_and_names_registry_ca() {
    let registry = Registry::shared();
    let p = Project::new();
    let docker = registry.docker_config().display().to_string();
    let reference = registry.reference("e2e/tls:1");
    let pull = p.sluice_env(
        &["plugin", "pull", &reference],
        &[("DOCKER_CONFIG", &docker)],
    );
    pull.expect_code(2)
        .expect_stderr(&format!("TLS with registry {} failed", registry.registry()))
        .expect_stderr("--registry-ca");
    // One error line, not a log line of the TLS library before it.
    assert_eq!(pull.stderr.trim().lines().count(), 1, "{}", pull.all());

    // A CA file that holds no certificate is named.
    let key_file = p.write_outside("not-a-ca.pem", b"-----BEGIN PRIVATE KEY-----\n");
    let key_arg = key_file.display().to_string();
    p.sluice_env(
        &["plugin", "pull", &reference, "--registry-ca", &key_arg],
        &[("DOCKER_CONFIG", &docker)],
    )
    .expect_code(2)
    .expect_stderr("not-a-ca.pem");
}

#[test]
fn insecure_registry_is_refused_for_a_host_that_is_not_loopback() {
    let p = with_fixture(Project::new());
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
            FIXTURE,
            "oci://10.1.2.3:5000/team/x:1",
            "--insecure-registry",
            "10.1.2.3:5000",
        ],
    ] {
        p.sluice(&args)
            .expect_code(2)
            .expect_stderr("--insecure-registry")
            .expect_stderr("loopback");
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
    let tls = p.sluice(&["plugin", "push", FIXTURE, &reference]);
    assert_ne!(tls.code, 0, "{}", tls.all());
    let insecure = ["--insecure-registry", host.as_str()];
    p.sluice(&[&["plugin", "push", FIXTURE, &reference][..], &insecure].concat())
        .expect_code(0);
    p.sluice(
        &[
            &["plugin", "pull", &reference, "-o", "plain.wasm"][..],
            &insecure,
        ]
        .concat(),
    )
    .expect_code(0);
    assert_eq!(
        std::fs::read(p.path().join("plain.wasm")).expect("read"),
        std::fs::read(plugin("fixture")).expect("read")
    );
}

/// `wkg args…` with the registry's CA (`SSL_CERT_FILE`: wkg's TLS reads the
/// system roots from there) and credentials, which must succeed.
fn wkg(registry: &Registry, args: &[&str]) {
    require_wkg();
    run_ok(
        Command::new("wkg")
            .args(args)
            .env("SSL_CERT_FILE", registry.ca_file())
            .env("WKG_OCI_USERNAME", registry.user())
            .env("WKG_OCI_PASSWORD", registry.password())
            .env_remove("DOCKER_CONFIG"),
        &format!("wkg {}", args.join(" ")),
    );
}

#[test]
fn wkg_pushes_and_sluice_pulls_identical_bytes() {
    let registry = Registry::shared();
    let p = Project::new();
    let component = plugin("lint");
    let target = format!("{}/e2e/from-wkg:0.1.0", registry.registry());
    wkg(
        registry,
        &["oci", "push", &target, &component.display().to_string()],
    );
    let pulled = pull(&p, registry, &format!("oci://{target}"), "lint.wasm");
    pulled.expect_code(0);
    assert_eq!(
        std::fs::read(p.path().join("lint.wasm")).expect("read"),
        std::fs::read(&component).expect("read"),
        "sluice pulled other bytes than wkg pushed"
    );
    pulled.expect_stdout(&format!("component {}", sha256_file(&component)));
}

#[test]
fn sluice_pushes_and_wkg_pulls_identical_bytes() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/to-wkg:0.2.0");
    push(&p, registry, FIXTURE, &reference, Some(RELEASE_KEY));
    let out_file: PathBuf = p.path().join("from-wkg.wasm");
    wkg(
        registry,
        &[
            "oci",
            "pull",
            reference.trim_start_matches("oci://"),
            "-o",
            &out_file.display().to_string(),
        ],
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
    push(&p, &registry, FIXTURE, &reference, None);
    let component_digest = sha256_file(&plugin("fixture"));
    let blob = registry.blob_path(&component_digest);
    let mut bytes = std::fs::read(&blob).expect("the component blob in the registry storage");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("tamper");

    expect_digest_mismatch(
        &pull(&p, &registry, &reference, "t.wasm"),
        &component_digest,
    );
    assert!(
        !p.path().join("t.wasm").exists(),
        "a tampered component was written"
    );

    // A manifest changed on the registry's disk (the layer title) is
    // caught the same way: its bytes are not its digest.
    std::fs::copy(plugin("lint"), p.path().join("plugins/lint.wasm")).expect("copy");
    let reference = registry.reference("e2e/tampered-manifest:1");
    let pushed = push(&p, &registry, "plugins/lint.wasm", &reference, None);
    let manifest_digest = digest_of(&pinned(&pushed));
    let blob = registry.blob_path(&manifest_digest);
    let text = std::fs::read_to_string(&blob).expect("manifest blob");
    assert!(text.contains("tampered-manifest.wasm"), "{text}");
    std::fs::write(
        &blob,
        text.replace("tampered-manifest.wasm", "tampered-manifest.wasX"),
    )
    .expect("tamper");
    expect_digest_mismatch(&pull(&p, &registry, &reference, "m.wasm"), &manifest_digest);
}

#[test]
fn a_manifest_that_is_not_a_wasm_component_is_refused_naming_what_it_holds() {
    let registry = Registry::shared();
    let p = project_with_key();
    let reference = registry.reference("e2e/not-wasm:1");
    let pushed = push(&p, registry, FIXTURE, &reference, None);
    // A manifest over the same blobs, but with a container image's layer
    // media type, put there by hand.
    let component = std::fs::read(plugin("fixture")).expect("read");
    let config_digest = wasm_config_digest(registry, &pushed);
    let config = std::fs::read(registry.blob_path(&config_digest)).expect("config blob");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256_file(&plugin("fixture")),
            "size": component.len(),
        }],
    });
    put_manifest(
        registry,
        &p,
        "e2e/not-wasm/manifests/container",
        "application/vnd.oci.image.manifest.v1+json",
        &manifest.to_string(),
    );
    sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &registry.reference("e2e/not-wasm:container"),
        ],
    )
    .expect_code(2)
    .expect_stderr("is not a Wasm component artifact")
    .expect_stderr("application/vnd.oci.image.layer.v1.tar+gzip");
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
    push(&p, &registry, FIXTURE, &reference, None);
    registry.stop();
    pull(&p, &registry, &reference, "d.wasm")
        .expect_code(1)
        .expect_stderr(&format!("registry {} is unreachable", registry.registry()));
    // Back up with the same storage: the plugin is still there.
    registry.restart();
    pull(&p, &registry, &reference, "d.wasm").expect_code(0);
}

#[test]
fn pushing_a_file_that_is_not_a_component_fails_before_any_upload() {
    let registry = Registry::shared();
    let p = Project::new();
    p.write("not-a-plugin.wasm", "#!/bin/sh\necho hi\n");
    let reference = registry.reference("e2e/garbage:1");
    sluice(
        &p,
        registry,
        &["plugin", "push", "not-a-plugin.wasm", &reference],
    )
    .expect_code(2)
    .expect_stderr("not-a-plugin.wasm");
    // A digest in a push target is refused: the registry computes it.
    let p2 = project_with_key();
    let pinned = format!("{reference}@sha256:{}", "a".repeat(64));
    sluice(&p2, registry, &["plugin", "push", FIXTURE, &pinned])
        .expect_code(2)
        .expect_stderr("without a digest");
}

/// `curl` PUT of a manifest (or index) to the registry, with its CA and
/// credentials.
fn put_manifest(registry: &Registry, p: &Project, path: &str, media_type: &str, body: &str) {
    let file = p.write_outside("put-manifest.json", body.as_bytes());
    run_ok(
        Command::new("curl")
            .args(["-sS", "-f", "-X", "PUT", "--cacert"])
            .arg(registry.ca_file())
            .arg("-u")
            .arg(format!("{}:{}", registry.user(), registry.password()))
            .args(["-H", &format!("Content-Type: {media_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("https://{}/v2/{path}", registry.registry())),
        &format!("curl PUT {path}"),
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
    let signed = registry.reference("e2e/smuggle:signed");
    let referrer = attached_digest(&push(&p, registry, FIXTURE, &signed, Some(RELEASE_KEY)));
    let unsigned = registry.reference("e2e/smuggle:unsigned");
    let target = digest_of(&pinned(&push(
        &p,
        registry,
        "plugins/lint.wasm",
        &unsigned,
        None,
    )));
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
    let pulled = sluice(
        &p,
        registry,
        &[
            "plugin",
            "pull",
            &unsigned,
            "-o",
            "l.wasm",
            "--log",
            "sluice_oci=debug",
        ],
    );
    pulled.expect_code(0);
    // The smuggled entry was read, and refused for its subject.
    assert!(
        pulled.stderr.contains("ignoring referrer") && pulled.stderr.contains(&referrer),
        "{}",
        pulled.all()
    );
    pulled.expect_stdout("no signatures");
    assert!(!p.path().join("l.wasm.sigstore.json").exists());
}

#[test]
fn a_signature_bundle_tampered_in_the_registry_storage_is_refused_with_exit_3() {
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/tampered-bundle:1");
    let pushed = push(&p, &registry, FIXTURE, &reference, Some(RELEASE_KEY));
    let referrer: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.blob_path(&attached_digest(&pushed))).expect("referrer manifest"),
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
    expect_digest_mismatch(&pull(&p, &registry, &reference, "b.wasm"), &bundle_digest);
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
    sluice(
        &p,
        registry,
        &[
            "plugin",
            "push",
            FIXTURE,
            &registry.reference("e2e/stale:1"),
        ],
    )
    .expect_code(2)
    .expect_stderr("signs other bytes")
    .expect_stderr("fixture.wasm.sigstore.json");
}

#[test]
fn a_registry_sending_more_bytes_than_the_descriptor_says_is_cut_off() {
    let registry = Registry::start_private();
    let p = project_with_key();
    let reference = registry.reference("e2e/oversized:1");
    push(&p, &registry, FIXTURE, &reference, None);
    let blob = registry.blob_path(&sha256_file(&plugin("fixture")));
    let mut bytes = std::fs::read(&blob).expect("component blob");
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&blob, &bytes).expect("grow the blob");
    pull(&p, &registry, &reference, "o.wasm")
        .expect_code(2)
        .expect_stderr("the manifest says");
    assert!(!p.path().join("o.wasm").exists());
}
