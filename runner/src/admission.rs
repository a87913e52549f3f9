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

/// Read a plugin file once, with a size cap, and hash it.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, String), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(format!(
            "{} is {} bytes; plugins larger than {MAX_PLUGIN_BYTES} bytes are refused",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok((bytes, digest))
}

/// Validate a component and list its imports, without compiling it.
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    crate::host::check_component_header(bytes).map_err(|e| e.to_string())?;
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(bytes)
        .map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        match payload {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outermost component's imports are what the host
            // must provide.
            wasmparser::Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(|e| format!("bad import section: {e}"))?;
                    // Type imports (`use` in a world) grant nothing.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(imports)
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
        let bundle = match std::fs::read_to_string(&bundle_file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(unusable(format!(
                    "cannot read its bundle {}: {e}",
                    bundle_file.display()
                )))
            }
        };
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
    fn imports_of_a_non_component_are_refused() {
        assert!(component_imports(b"\0asm\x01\0\0\0").is_err());
        assert!(component_imports(b"hello").is_err());
    }
}
