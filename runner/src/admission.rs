//! Admission: the checks a plugin passes before a single byte of it is
//! compiled, in this order: read once with a size cap → sha256 → (policy:)
//! digest pin → bundle verification → identity rules → component
//! validation and import check → grant caps. Only admitted plugins reach
//! the compiler (and the compile cache, keyed by the verified digest).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::pipeline::{Pipeline, PluginRef, Stage, WorkspaceAccess};
use crate::trust::{self, Decision, PluginInput, Policy, RequestedGrants};

/// Largest plugin file the runner reads.
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

/// A plugin file read and hashed once.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// Absolute path.
    pub path: PathBuf,
    /// The reference as policies see it: the path relative to the pipeline
    /// directory, `/`-separated.
    pub reference: String,
    /// The bytes.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Imported interface names (with versions).
    pub imports: Vec<String>,
    /// `FILE.sigstore.json`, when present.
    pub bundle: Option<String>,
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
    #[error("stage `{stage}`: plugin {reference}: {message}")]
    Unusable {
        /// Stage.
        stage: String,
        /// Reference.
        reference: String,
        /// Why.
        message: String,
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

/// Read a plugin file once, with a size cap, and hash it. Only a regular
/// file is read: a FIFO or device is refused without blocking.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, String), String> {
    let bytes = crate::fsutil::read_input_file(path, MAX_PLUGIN_BYTES, "plugin")
        .map_err(|e| e.to_string())?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok((bytes, digest))
}

/// Read the Sigstore bundle of a plugin (`FILE.sigstore.json`): `None` when
/// there is none, an error when it is not a regular file of at most
/// [`crate::fsutil::MAX_BUNDLE_BYTES`] or not UTF-8.
pub fn read_bundle(bundle_file: &Path) -> Result<Option<String>, String> {
    use crate::fsutil::{read_input_file, InputError, MAX_BUNDLE_BYTES};
    match read_input_file(bundle_file, MAX_BUNDLE_BYTES, "Sigstore bundle") {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            format!(
                "Sigstore bundle `{}` is not UTF-8 text; a bundle is JSON",
                bundle_file.display()
            )
        }),
        Err(InputError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Fully validate a component (every function body), without compiling it:
/// for `plugin sign` and `plugin verify`, which should refuse a broken file
/// before they vouch for it.
pub fn validate_component(bytes: &[u8]) -> Result<(), String> {
    crate::host::check_component_header(bytes).map_err(|e| e.to_string())?;
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| format!("not a valid WebAssembly component: {e}"))
}

/// List a component's imports (those of the outermost component: what the
/// host must provide), reading only its top-level sections.
///
/// This does not validate the component: a run admits plugins before it
/// compiles them, and the compiler validates on a cache miss, while a cache
/// hit means these exact bytes (same sha256) were compiled before. Skipping
/// a second validation keeps a warm run from re-reading every function body
/// of every plugin.
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    use wasmparser::{Chunk, Payload};
    crate::host::check_component_header(bytes).map_err(|e| e.to_string())?;
    let bad = |e: wasmparser::BinaryReaderError| format!("not a valid WebAssembly component: {e}");
    let truncated = || "not a valid WebAssembly component: it ends inside a section".to_string();
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
                    let import = import.map_err(|e| format!("bad import section: {e}"))?;
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

fn requested(stage: &Stage) -> RequestedGrants {
    RequestedGrants {
        workspace: match stage.grants.workspace {
            WorkspaceAccess::None => "none",
            WorkspaceAccess::Read => "read",
            WorkspaceAccess::Write => "write",
        }
        .to_string(),
        env: stage.grants.env.clone(),
        network: stage.grants.network.clone(),
        exec: stage.grants.exec.clone(),
        secrets: stage.grants.secrets.clone(),
    }
}

/// Read (once per file) the plugins of `stages`.
pub fn read_plugins(
    pipeline: &Pipeline,
    stages: &[String],
) -> Result<HashMap<PathBuf, PluginFile>, AdmissionError> {
    let mut files: HashMap<PathBuf, PluginFile> = HashMap::new();
    for name in stages {
        let Some(stage) = pipeline.stages.get(name) else {
            continue;
        };
        let path = match &stage.uses {
            PluginRef::Path(p) => p.clone(),
            PluginRef::Oci(r) => {
                return Err(AdmissionError::Unusable {
                    stage: name.clone(),
                    reference: r.clone(),
                    message: "OCI plugin references are not supported by this runner yet; pull the component and use its file path".into(),
                })
            }
        };
        if files.contains_key(&path) {
            continue;
        }
        let reference = relative_reference(&pipeline.dir, &path);
        let unusable = |message: String| AdmissionError::Unusable {
            stage: name.clone(),
            reference: reference.clone(),
            message,
        };
        let (bytes, digest) = read_plugin(&path).map_err(unusable)?;
        let imports = component_imports(&bytes).map_err(unusable)?;
        let bundle_file = trust::bundle_path(&path);
        let bundle = read_bundle(&bundle_file).map_err(unusable)?;
        files.insert(
            path.clone(),
            PluginFile {
                path,
                reference,
                bytes: std::sync::Arc::new(bytes),
                digest,
                imports,
                bundle,
            },
        );
    }
    Ok(files)
}

/// Decide whether `stage` may run `file` under `policy` (or, without a
/// policy, only when unsigned plugins are explicitly allowed).
pub fn admit(
    stage_name: &str,
    stage: &Stage,
    file: &PluginFile,
    policy: Option<&Policy>,
    allow_unsigned: bool,
) -> Result<Admitted, AdmissionError> {
    let Some(policy) = policy else {
        if allow_unsigned {
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
                "the pipeline has no trust policy: add `policy: <file>` to the pipeline or pass --policy; to run unverified plugins anyway (development only) pass --allow-unsigned".into(),
            ],
        });
    };
    let decision: Decision = policy.evaluate(&PluginInput {
        reference: file.reference.clone(),
        digest: file.digest.clone(),
        bytes: &file.bytes,
        bundle: file.bundle.clone(),
        imports: file.imports.clone(),
        grants: requested(stage),
    });
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn imports_of_a_non_component_are_refused() {
        assert!(component_imports(b"\0asm\x01\0\0\0").is_err());
        assert!(component_imports(b"hello").is_err());
    }
}
