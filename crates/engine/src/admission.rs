//! Admission: the checks a plugin passes before a single byte of it is
//! compiled, in this order: read once with a size cap → sha256 → (policy:)
//! digest pin → bundle verification → identity rules → component
//! validation and import check → grant caps. Only admitted plugins reach
//! the compiler (and the compile cache, keyed by the verified digest).
//!
//! Nothing parses a plugin's bytes before its digest and signature passed
//! the policies ([`evaluate`]): a file with a damaged code section is a
//! refused signature (exit 3) in `run` and in `plugin verify` alike.
//!
//! Plugins are matched by their canonical reference: `uses:` resolved
//! (`..` and symbolic links) to the real file, relative to the pipeline's
//! (canonical) directory, so `plugins/../evil/x.wasm` and a link
//! `plugins/x.wasm -> ../evil/x.wasm` are both matched as `evil/x.wasm`.
//!
//! Plugins from OCI registries are pulled by the caller (into the pull
//! cache, digests checked) and arrive as [`pulled_plugin_file`]s: matched by
//! the reference's policy name `oci://registry/repository`, their bundles
//! the registry's signature referrers; from there on, the same order.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use sluice_files::fsutil::InputError;
use sluice_pipeline::{Pipeline, PluginRef, Stage, WorkspaceAccess};
use sluice_trust::{self as trust, Decision, PluginInput, Policies, RequestedGrants};
use sluice_types::OciReference;

/// Largest plugin file the runner reads.
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

/// A plugin file read and hashed once.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// Absolute, canonical path (symbolic links resolved).
    pub path: PathBuf,
    /// The reference as policies see it: the canonical path relative to
    /// the pipeline's canonical directory, `/`-separated.
    pub reference: String,
    /// The bytes.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Imported interface names (with versions), parsed on first use: only
    /// after the policies checked the digest and signature.
    pub imports: std::sync::OnceLock<Result<Vec<String>, ComponentError>>,
    /// `FILE.sigstore.json`, when present.
    pub bundle: Option<String>,
    /// `FILE.intoto.sigstore.json` (signed attestations), when present.
    pub attestations: Option<String>,
}

/// What admission decided for one stage.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Who signed it, if a signature was verified.
    pub signer: Option<String>,
    /// Policy rules that matched.
    pub rules: Vec<String>,
    /// Warnings (`mode: warn`, `no-match: warn`, `--allow-unsigned`).
    pub warnings: Vec<String>,
}

/// Why a plugin may not run.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The file cannot be used at all (exit 2).
    #[error("stage `{stage}`: plugin {reference}: {reason}")]
    Unusable {
        /// Stage.
        stage: String,
        /// Reference.
        reference: String,
        /// Why.
        reason: Unusable,
    },
    /// The trust policy refuses it (exit 3).
    #[error("stage `{stage}`: plugin {reference} refused by the trust policy:\n{}", reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Refused {
        /// Stage.
        stage: String,
        /// Reference.
        reference: String,
        /// One line per refusal, each naming the rule and the fix.
        reasons: Vec<String>,
    },
}

/// Why a stage's plugin cannot be used at all (before any policy).
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// `uses:` names an OCI reference that was not pulled before
    /// admission (the caller resolves and pulls every reference first).
    #[error("OCI plugin references are pulled before admission, and this one was not; run `sluice lock` or pull it with `sluice plugin pull`")]
    Oci,
    /// The file (or a bundle beside it) cannot be read.
    #[error(transparent)]
    File(#[from] PluginFileError),
    /// The file is not a usable component.
    #[error(transparent)]
    Component(#[from] ComponentError),
}

/// Why a plugin file, or a Sigstore bundle beside it, cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PluginFileError {
    /// Missing, unreadable, not a regular file, or over its cap (the
    /// [`InputError`] names the path).
    #[error(transparent)]
    Input(#[from] InputError),
    /// A Sigstore bundle that is not UTF-8 text.
    #[error("Sigstore bundle `{}` is not UTF-8 text; a bundle is JSON", path.display())]
    BundleNotText {
        /// The bundle file.
        path: PathBuf,
    },
    /// The path does not resolve to a file (`..`, symbolic links).
    // The OS error is part of the message rather than a `#[source]`, so that
    // printing the error chain does not repeat it.
    #[error("cannot resolve `{}`: {reason}", path.display())]
    Unresolvable {
        /// The path, as given.
        path: PathBuf,
        /// What the operating system said.
        reason: std::io::Error,
    },
}

impl PluginFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PluginFileError::Input(e) => e.path(),
            PluginFileError::BundleNotText { path }
            | PluginFileError::Unresolvable { path, .. } => path,
        }
    }
}

/// Why bytes are not a usable WebAssembly component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComponentError {
    /// No `\0asm` magic: text, an archive, anything else.
    #[error("the file is not a WebAssembly binary (it does not start with `\\0asm`)")]
    NotWasm,
    /// A core module rather than a component.
    #[error("this is a core WebAssembly module, not a component; build for `wasm32-wasip2` (or wrap it with `wasm-tools component new`)")]
    CoreModule,
    /// A binary version this runner does not know.
    #[error("unknown WebAssembly binary version")]
    UnknownVersion,
    /// The component does not parse or validate.
    #[error("not a valid WebAssembly component: {reason}")]
    Invalid {
        /// What the parser or validator said.
        reason: String,
    },
    /// An entry of the import section does not parse.
    #[error("bad import section: {reason}")]
    BadImports {
        /// What the parser said.
        reason: String,
    },
}

/// Read a plugin file once, with a size cap, and hash it. Only a regular
/// file is read: a FIFO or device is refused without blocking.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, String), PluginFileError> {
    let bytes = sluice_files::fsutil::read_input_file(path, MAX_PLUGIN_BYTES, "plugin")?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok((bytes, digest))
}

/// Read the Sigstore bundle of a plugin (`FILE.sigstore.json`): `None` when
/// there is none, an error when it is not a regular file of at most
/// [`sluice_files::fsutil::MAX_BUNDLE_BYTES`] or not UTF-8.
pub fn read_bundle(bundle_file: &Path) -> Result<Option<String>, PluginFileError> {
    use sluice_files::fsutil::{read_input_file, MAX_BUNDLE_BYTES};
    match read_input_file(bundle_file, MAX_BUNDLE_BYTES, "Sigstore bundle") {
        Ok(bytes) => {
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| PluginFileError::BundleNotText {
                    path: bundle_file.to_path_buf(),
                })
        }
        Err(InputError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fully validate a component (every function body), without compiling it:
/// for `plugin sign` and `plugin verify`, which should refuse a broken file
/// before they vouch for it.
pub fn validate_component(bytes: &[u8]) -> Result<(), ComponentError> {
    check_component_header(bytes)?;
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| ComponentError::Invalid {
            reason: e.to_string(),
        })
}

/// List a component's imports (those of the outermost component: what the
/// host must provide), reading only its top-level sections.
///
/// This does not validate the component: a run admits plugins before it
/// compiles them, and the compiler validates on a cache miss, while a cache
/// hit means these exact bytes (same sha256) were compiled before. Skipping
/// a second validation keeps a warm run from re-reading every function body
/// of every plugin.
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, ComponentError> {
    use wasmparser::{Chunk, Payload};
    check_component_header(bytes)?;
    let bad = |e: wasmparser::BinaryReaderError| ComponentError::Invalid {
        reason: e.to_string(),
    };
    let truncated = || ComponentError::Invalid {
        reason: "it ends inside a section".to_owned(),
    };
    let mut parser = wasmparser::Parser::new(0);
    let mut data = bytes;
    let mut imports = Vec::new();
    loop {
        let (consumed, payload) = match parser.parse(data, true).map_err(bad)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return Err(truncated()),
        };
        data = data.get(consumed..).ok_or_else(truncated)?;
        match payload {
            // Nested modules and components follow their header in the
            // stream; their imports are satisfied inside the component.
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                data = data.get(unchecked_range.len()..).ok_or_else(truncated)?;
            }
            Payload::ComponentImportSection(section) => {
                for import in section {
                    let import = import.map_err(|e| ComponentError::BadImports {
                        reason: e.to_string(),
                    })?;
                    // Type imports (`use` in a world) grant nothing.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::End(_) => return Ok(imports),
            _ => {}
        }
    }
}

/// `path` relative to `base`, lexically (with `..` where needed).
pub fn relative_reference(base: &Path, path: &Path) -> String {
    let base: Vec<Component> = base.components().collect();
    let target: Vec<Component> = path.components().collect();
    let common = base
        .iter()
        .zip(target.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..base.len() {
        parts.push("..".into());
    }
    for c in &target[common..] {
        parts.push(c.as_os_str().to_string_lossy().into_owned());
    }
    parts.join("/")
}

/// What the pipeline grants `stage`, as policies see it.
pub fn requested(stage: &Stage) -> RequestedGrants {
    RequestedGrants {
        workspace: workspace_word(stage.grants.workspace).to_string(),
        env: stage.grants.env.clone(),
        network: stage.grants.network.clone(),
        exec: stage.grants.exec.clone(),
        secrets: stage.grants.secrets.clone(),
    }
}

/// What a job is granted, as policies see it: [`requested`] for a job that
/// travelled without its pipeline (an agent admits the plugin of a job it
/// received under its own operator policy).
pub fn requested_from(grants: &crate::executor::JobGrants) -> RequestedGrants {
    RequestedGrants {
        workspace: workspace_word(grants.workspace).to_string(),
        env: grants.env.clone(),
        network: grants.network.clone(),
        exec: grants.exec.clone(),
        secrets: grants.secrets.clone(),
    }
}

/// `none`, `read` or `write`: the workspace grant as policies name it.
fn workspace_word(access: WorkspaceAccess) -> &'static str {
    match access {
        WorkspaceAccess::None => "none",
        WorkspaceAccess::Read => "read",
        WorkspaceAccess::Write => "write",
    }
}

/// The key of a stage's plugin in [`read_plugins`]'s map: `uses:` as
/// resolved (the absolute path, or the OCI reference as written).
pub fn plugin_key(uses: &PluginRef) -> String {
    uses.to_string()
}

/// Read (once per file) the plugins of `stages`, keyed by [`plugin_key`].
/// OCI references come already pulled, in `pulled` (by reference as
/// written; see [`pulled_plugin_file`]); one missing there is unusable.
pub fn read_plugins(
    pipeline: &Pipeline,
    stages: &[String],
    pulled: &HashMap<OciReference, PluginFile>,
) -> Result<HashMap<String, PluginFile>, AdmissionError> {
    let mut files: HashMap<String, PluginFile> = HashMap::new();
    for name in stages {
        let Some(stage) = pipeline.stages.get(name) else {
            continue;
        };
        let key = plugin_key(&stage.uses);
        if files.contains_key(&key) {
            continue;
        }
        let path = match &stage.uses {
            PluginRef::Path(p) => p.clone(),
            PluginRef::Oci(r) => {
                let file = pulled.get(r).ok_or_else(|| AdmissionError::Unusable {
                    stage: name.clone(),
                    reference: r.to_string(),
                    reason: Unusable::Oci,
                })?;
                files.insert(key, file.clone());
                continue;
            }
        };
        let unusable = |reference: String| {
            let stage = name.clone();
            move |e: PluginFileError| AdmissionError::Unusable {
                stage,
                reference,
                reason: e.into(),
            }
        };
        let written = relative_reference(&pipeline.dir, &path);
        let (real, reference) =
            canonical_reference(&pipeline.dir, &path).map_err(unusable(written))?;
        let file = read_plugin_file(&real, reference.clone()).map_err(unusable(reference))?;
        files.insert(key, file);
    }
    Ok(files)
}

/// A plugin pulled from a registry, as admission sees it: read from the
/// pull cache (`path`, whose sha256 must be `component_digest`, else it is
/// refused like any tampered file), matched by the reference's policy name
/// (`oci://registry/repository`), with the signatures and attestations the
/// registry holds as referrers of its manifest. Nothing is parsed.
pub fn pulled_plugin_file(
    reference: &OciReference,
    path: &Path,
    signatures: Option<String>,
    attestations: Option<String>,
) -> Result<PluginFile, PluginFileError> {
    let (bytes, digest) = read_plugin(path)?;
    Ok(PluginFile {
        path: path.to_path_buf(),
        reference: reference.policy_name(),
        bytes: std::sync::Arc::new(bytes),
        digest,
        imports: std::sync::OnceLock::new(),
        bundle: signatures,
        attestations,
    })
}

/// `file` resolved to its real path (`..` and symbolic links), and that
/// path relative to `base` (itself resolved): the one form policies match.
pub fn canonical_reference(base: &Path, file: &Path) -> Result<(PathBuf, String), PluginFileError> {
    let real = std::fs::canonicalize(file).map_err(|reason| PluginFileError::Unresolvable {
        path: file.to_path_buf(),
        reason,
    })?;
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let reference = relative_reference(&base, &real);
    Ok((real, reference))
}

/// Read a plugin (at its canonical path), its Sigstore bundle and its
/// attestations; nothing of it is parsed.
pub fn read_plugin_file(path: &Path, reference: String) -> Result<PluginFile, PluginFileError> {
    let (bytes, digest) = read_plugin(path)?;
    let bundle = read_bundle(&trust::bundle_path(path))?;
    let attestations = read_bundle(&trust::policy_rules::attestation_path(path))?;
    Ok(PluginFile {
        path: path.to_path_buf(),
        reference,
        bytes: std::sync::Arc::new(bytes),
        digest,
        imports: std::sync::OnceLock::new(),
        bundle,
        attestations,
    })
}

impl PluginFile {
    /// The component's imports ([`component_imports`]), parsed once.
    pub fn imports(&self) -> Result<Vec<String>, ComponentError> {
        self.imports
            .get_or_init(|| component_imports(&self.bytes))
            .clone()
    }
}

/// Evaluate `file` under `policies` for `grants`: first with no imports, so
/// that the digest pin and the signature are checked before the component
/// is parsed at all (a refusal there is final); then, once admitted, its
/// imports are parsed (an error is returned: the file is not a component)
/// and, if some rule checks imports, it is evaluated again with them.
/// `run` and `plugin verify` both decide through this.
pub fn evaluate(
    policies: &Policies,
    file: &PluginFile,
    grants: RequestedGrants,
) -> Result<Decision, ComponentError> {
    let input = |imports: Vec<String>| PluginInput {
        reference: file.reference.clone(),
        digest: file.digest.clone(),
        bytes: &file.bytes,
        bundle: file.bundle.clone(),
        attestations: file.attestations.clone(),
        imports,
        grants: grants.clone(),
    };
    let first = policies.evaluate(&input(Vec::new()));
    if !first.admitted {
        return Ok(first);
    }
    let imports = file.imports()?;
    if !policies.needs_imports() {
        return Ok(first);
    }
    Ok(policies.evaluate(&input(imports)))
}

/// Decide whether `stage` may run `file` under `policies` (or, without any
/// policy, only when unsigned plugins are explicitly allowed).
pub fn admit(
    stage_name: &str,
    stage: &Stage,
    file: &PluginFile,
    policies: &Policies,
    allow_unsigned: bool,
) -> Result<Admitted, AdmissionError> {
    let unusable = |e: ComponentError| AdmissionError::Unusable {
        stage: stage_name.to_string(),
        reference: file.reference.clone(),
        reason: e.into(),
    };
    if policies.is_empty() {
        if allow_unsigned {
            file.imports().map_err(unusable)?;
            return Ok(Admitted {
                signer: None,
                rules: Vec::new(),
                warnings: vec![format!(
                    "plugin {} runs unverified (--allow-unsigned, no trust policy)",
                    file.reference
                )],
            });
        }
        return Err(AdmissionError::Refused {
            stage: stage_name.to_string(),
            reference: file.reference.clone(),
            reasons: vec![
                format!("there is no trust policy: no operator policy (looked for {}) and the pipeline has none: add `policy: <file>` to the pipeline or pass --policy; to run unverified plugins anyway (development only) pass --allow-unsigned", trust::operator::lookup_order()),
            ],
        });
    }
    let decision: Decision = evaluate(policies, file, requested(stage)).map_err(unusable)?;
    if !decision.admitted {
        return Err(AdmissionError::Refused {
            stage: stage_name.to_string(),
            reference: file.reference.clone(),
            reasons: decision.refusals.iter().map(|r| r.reason.clone()).collect(),
        });
    }
    Ok(Admitted {
        signer: decision.signer.as_ref().map(|s| s.to_string()),
        rules: decision.matched_rules.clone(),
        warnings: decision.warnings.clone(),
    })
}

/// Tell the common wrong inputs apart before wasmtime sees them (it would
/// otherwise try to parse text and report a confusing WAT error).
pub fn check_component_header(bytes: &[u8]) -> Result<(), ComponentError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(ComponentError::NotWasm);
    }
    match bytes[4..8] {
        // Component-model layer 1 (any encoding version).
        [_, _, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(ComponentError::CoreModule),
        _ => Err(ComponentError::UnknownVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_asks_for_what_its_stage_asks_for() {
        let grants = crate::executor::JobGrants {
            workspace: WorkspaceAccess::Write,
            env: vec!["CI".into()],
            network: vec!["*.internal:443".parse().expect("pattern")],
            exec: vec!["sleep".into()],
            secrets: vec!["NPM_TOKEN".into()],
            tls_ca: vec![],
            memory: 1 << 20,
            output: 1 << 20,
            artifacts: 1 << 20,
        };
        let asked = requested_from(&grants);
        assert_eq!(asked.workspace, "write");
        assert_eq!(asked.env, ["CI"]);
        assert_eq!(asked.network, grants.network);
        assert_eq!(asked.exec, ["sleep"]);
        assert_eq!(asked.secrets, ["NPM_TOKEN"]);
        // The same words as for the stage the job came from.
        let pipeline = sluice_pipeline::parse_str(
            "version: 1\nname: p\nstages:\n  s:\n    uses: ./p.wasm\n    grants: { workspace: write, env: [CI], exec: [sleep], secrets: [NPM_TOKEN], network: [\"*.internal:443\"] }\n",
            Path::new("/nonexistent/sluice.yaml"),
        );
        if let Ok(p) = pipeline {
            assert_eq!(requested(&p.stages["s"]), asked);
        }
    }

    #[test]
    fn references_are_relative_to_the_pipeline() {
        assert_eq!(
            relative_reference(
                Path::new("/a/b/examples/hello"),
                Path::new("/a/b/dist/plugins/x.wasm")
            ),
            "../../dist/plugins/x.wasm"
        );
        assert_eq!(
            relative_reference(Path::new("/p"), Path::new("/p/plugins/lint.wasm")),
            "plugins/lint.wasm"
        );
    }

    #[test]
    fn imports_are_those_of_the_outer_component_only() {
        let bytes = wat::parse_str(
            r#"(component
                (type $t (record (field "a" u32)))
                (import "t" (type (eq $t)))
                (import "wasi:cli/environment@0.2.0" (instance))
                (core module $m
                    (import "inner" "f" (func))
                )
                (component $c
                    (import "nested:pkg/iface" (instance))
                )
                (import "log" (func))
            )"#,
        )
        .expect("wat");
        assert_eq!(
            component_imports(&bytes).expect("imports"),
            ["wasi:cli/environment@0.2.0", "log"]
        );
        // Cut inside the nested component: refused, not misread.
        let cut = &bytes[..bytes.len() - 12];
        assert!(component_imports(cut).is_err());
        assert!(validate_component(&bytes).is_ok());
    }

    #[test]
    fn canonical_references_resolve_dot_dot_and_symlinks() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("plugins/sub")).expect("mkdir");
        std::fs::create_dir_all(root.join("evil")).expect("mkdir");
        std::fs::write(root.join("evil/x.wasm"), b"x").expect("write");
        std::fs::write(root.join("plugins/ok.wasm"), b"x").expect("write");
        std::os::unix::fs::symlink("../evil/x.wasm", root.join("plugins/l.wasm")).expect("symlink");
        let reference = |rel: &str| {
            canonical_reference(root, &root.join(rel))
                .expect("resolves")
                .1
        };
        assert_eq!(reference("plugins/../evil/x.wasm"), "evil/x.wasm");
        assert_eq!(reference("plugins/l.wasm"), "evil/x.wasm");
        assert_eq!(reference("plugins/./sub/../ok.wasm"), "plugins/ok.wasm");
        // The base directory is resolved too.
        std::os::unix::fs::symlink(root, root.join("plugins/sub/up")).expect("symlink");
        assert_eq!(
            canonical_reference(&root.join("plugins/sub/up"), &root.join("plugins/ok.wasm"))
                .expect("resolves")
                .1,
            "plugins/ok.wasm"
        );
        assert!(canonical_reference(root, &root.join("missing.wasm")).is_err());
    }

    #[test]
    fn a_refused_signature_is_decided_before_the_component_is_parsed() {
        let pair = trust::generate(b"pw").expect("key");
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("k.pub");
        std::fs::write(&key, &pair.public_pem).expect("write");
        let src = format!(
            "rules:\n  - name: signed\n    match: [\"**\"]\n    authorities:\n      - key: {}\n",
            key.display()
        );
        let policy = trust::Policy::parse(&src, Path::new("p.yaml")).expect("policy");
        let policies = Policies::new(None, Some(policy));
        let file = PluginFile {
            path: PathBuf::from("/x.wasm"),
            reference: "x.wasm".into(),
            bytes: std::sync::Arc::new(b"not a component".to_vec()),
            digest: String::new(),
            imports: std::sync::OnceLock::new(),
            bundle: None,
            attestations: None,
        };
        let decision = evaluate(&policies, &file, RequestedGrants::default()).expect("decided");
        assert!(!decision.admitted);
        assert!(file.imports.get().is_none(), "nothing was parsed");
    }

    #[test]
    fn component_errors_say_what_is_wrong() {
        assert_eq!(
            check_component_header(b"hello world").map_err(|e| e.to_string()),
            Err("the file is not a WebAssembly binary (it does not start with `\\0asm`)".into())
        );
        assert_eq!(
            check_component_header(b"\0asm\x01\0\0\0"),
            Err(ComponentError::CoreModule)
        );
        let err = component_imports(b"\0asm\x0d\0\x01\0\x07").expect_err("cut");
        assert!(
            err.to_string()
                .starts_with("not a valid WebAssembly component: "),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("missing.wasm");
        let err = canonical_reference(dir.path(), &missing).expect_err("missing");
        assert_eq!(err.path(), missing);
        assert!(err
            .to_string()
            .starts_with(&format!("cannot resolve `{}`: ", missing.display())));
        std::fs::write(dir.path().join("b.sigstore.json"), [0xff, 0xfe]).expect("write");
        let err = read_bundle(&dir.path().join("b.sigstore.json")).expect_err("not text");
        assert_eq!(
            err.to_string(),
            format!(
                "Sigstore bundle `{}` is not UTF-8 text; a bundle is JSON",
                dir.path().join("b.sigstore.json").display()
            )
        );
        assert!(matches!(read_bundle(&missing), Ok(None)));
    }

    #[test]
    fn pulled_plugins_are_matched_by_their_policy_name_and_never_read_as_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let cached = dir.path().join("component.wasm");
        std::fs::write(&cached, b"\0asm\x0d\0\x01\0").expect("write");
        let reference: OciReference = format!(
            "oci://Registry.Example:5000/team/lint:1.0@sha256:{}",
            "ab".repeat(32)
        )
        .parse()
        .expect("reference");
        let file =
            pulled_plugin_file(&reference, &cached, Some("{}".into()), None).expect("pulled file");
        // Policies match `oci://registry/repository`: no tag, no digest.
        assert_eq!(file.reference, "oci://registry.example:5000/team/lint");
        assert_eq!(file.bundle.as_deref(), Some("{}"));
        assert_eq!(
            file.digest,
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(b"\0asm\x0d\0\x01\0"))
            )
        );
        // A missing cache file is an error naming it, not an empty plugin.
        let err = pulled_plugin_file(&reference, &dir.path().join("gone.wasm"), None, None)
            .expect_err("missing");
        assert_eq!(err.path(), dir.path().join("gone.wasm"));

        let pipeline_file = dir.path().join("sluice.yaml");
        std::fs::write(
            &pipeline_file,
            format!("version: 1\nname: p\nstages:\n  a: {{ uses: \"{reference}\" }}\n  b: {{ uses: \"{reference}\" }}\n"),
        )
        .expect("write pipeline");
        let pipeline = sluice_pipeline::load(&pipeline_file).expect("pipeline");
        let stages = vec!["a".to_owned(), "b".to_owned()];
        // Not pulled: unusable, never looked up as a path.
        let err = read_plugins(&pipeline, &stages, &HashMap::new()).expect_err("not pulled");
        assert!(matches!(
            err,
            AdmissionError::Unusable {
                reason: Unusable::Oci,
                ..
            }
        ));
        let pulled = HashMap::from([(reference.clone(), file)]);
        let files = read_plugins(&pipeline, &stages, &pulled).expect("read");
        assert_eq!(files.len(), 1, "one plugin for both stages");
        let key = plugin_key(&PluginRef::Oci(reference));
        assert_eq!(
            files.get(&key).map(|f| f.reference.as_str()),
            Some("oci://registry.example:5000/team/lint")
        );
    }

    #[test]
    fn imports_of_a_non_component_are_refused() {
        assert!(component_imports(b"\0asm\x01\0\0\0").is_err());
        assert!(component_imports(b"hello").is_err());
    }
}
