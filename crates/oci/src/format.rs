//! The Wasm OCI artifact format (CNCF TAG Runtime), written the way `wkg
//! oci push` (wkg 0.16, `oci-wasm` 0.6) writes it, and the referrer
//! manifests that carry Sigstore bundles (cosign's `--new-bundle-format`
//! layout).
//!
//! A component manifest is an OCI image manifest with config
//! `application/vnd.wasm.config.v0+json` (JSON: `created`, `author`,
//! `architecture: "wasm"`, `os: "wasip2"`, `layerDigests`, `component:
//! {exports, imports, target}`) and exactly one `application/wasm` layer
//! titled `NAME.wasm`. sluice also sets the manifest's `artifactType` to
//! `application/wasm`; wkg does not, so pulls accept it missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{sha256_digest, OciError, MAX_COMPONENT_BYTES, MAX_REFERRER_BYTES};

/// The OCI image manifest media type.
pub const IMAGE_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const IMAGE_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's image manifest (refused, but named when found).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (refused, but named when found).
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The artifact type of a Wasm component manifest.
pub const WASM_ARTIFACT_TYPE: &str = "application/wasm";
/// The config media type of a Wasm artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// A Sigstore bundle (the referrer's artifact type and layer media type).
pub const SIGSTORE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The OCI empty descriptor's media type (the referrer's config).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty blob, `{}`.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// What a Sigstore bundle referrer holds: `message-signature` or
/// `dsse-envelope`.
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// The in-toto predicate type of an attestation bundle.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The layer's file name for tools that write it to disk.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// When a manifest was created.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// The content's size in bytes.
    pub size: i64,
    /// The artifact type (index entries of referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest (the parts sluice reads and writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What kind of artifact it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index (the referrers list of the tag-schema fallback).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The config JSON of a Wasm artifact, field for field what `oci-wasm`
/// writes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 creation time.
    pub created: String,
    /// The author, if known.
    pub author: Option<String>,
    /// `wasm`.
    pub architecture: String,
    /// `wasip2` for components.
    pub os: String,
    /// The layer digests.
    pub layer_digests: Vec<String>,
    /// The component's world.
    pub component: Option<ComponentInfo>,
}

/// A component's top-level imports and exports.
#[derive(Debug, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Exported names (`sluice:stage/stage@0.2.0`).
    pub exports: Vec<String>,
    /// Imported names (`wasi:cli/environment@0.2.0`).
    pub imports: Vec<String>,
    /// The target world, if known.
    pub target: Option<String>,
}

/// The top-level imports and exports of a component; an error when
/// `bytes` is not a Wasm component (a core module, not Wasm at all).
pub fn inspect_component(bytes: &[u8]) -> Result<ComponentInfo, OciError> {
    use wasmparser::{Encoding, Parser, Payload};
    let invalid = |reason: String| OciError::InvalidComponent { reason };
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(OciError::TooLarge {
            what: "the component".to_owned(),
            size: bytes.len() as u64,
            limit: MAX_COMPONENT_BYTES,
        });
    }
    let mut exports = Vec::new();
    let mut imports = Vec::new();
    let mut depth = 0usize;
    if bytes.is_empty() {
        return Err(invalid("it is empty, not a Wasm component".to_owned()));
    }
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| invalid(format!("it is not a valid Wasm binary: {e}")))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(invalid(
                        "it is a core Wasm module, not a component; build it for wasm32-wasip2 \
                         (or wrap it with `wasm-tools component new`)"
                            .to_owned(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| invalid(format!("bad import section: {e}")))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export = export.map_err(|e| invalid(format!("bad export section: {e}")))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(ComponentInfo {
        exports,
        imports,
        target: None,
    })
}

/// The JSON bytes of a manifest, as pushed (its digest is their sha256).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The config blob and the manifest of a component artifact.
pub fn component_manifest(
    component: &[u8],
    title: &str,
    created: &str,
) -> Result<(Vec<u8>, Vec<u8>), OciError> {
    let info = inspect_component(component)?;
    let layer_digest = sha256_digest(component);
    let config = to_json(&WasmConfig {
        created: created.to_owned(),
        author: None,
        architecture: "wasm".to_owned(),
        os: "wasip2".to_owned(),
        layer_digests: vec![layer_digest.clone()],
        component: Some(info),
    });
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST_MEDIA_TYPE.to_owned()),
        artifact_type: Some(WASM_ARTIFACT_TYPE.to_owned()),
        config: Descriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.to_owned(),
            digest: sha256_digest(&config),
            size: config.len() as i64,
            artifact_type: None,
            annotations: None,
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.to_owned(),
            digest: layer_digest,
            size: component.len() as i64,
            artifact_type: None,
            annotations: Some(BTreeMap::from([(
                TITLE_ANNOTATION.to_owned(),
                title.to_owned(),
            )])),
        }],
        subject: None,
        annotations: None,
    };
    Ok((config, to_json(&manifest)))
}

/// The component layer of a manifest, after checking that the manifest is
/// a Wasm component artifact (an image manifest, Wasm config, exactly one
/// `application/wasm` layer of an acceptable size). `reference` names it in
/// errors; `found` says what was found instead.
pub fn component_layer(manifest: &[u8], reference: &str) -> Result<Descriptor, OciError> {
    let refuse = |found: String| OciError::NotAComponent {
        reference: reference.to_owned(),
        found,
    };
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| refuse(format!("its manifest is not JSON ({e})")))?;
    let media_type = value.get("mediaType").and_then(|m| m.as_str());
    if value.get("manifests").is_some()
        || media_type.is_some_and(|m| m.contains("index") || m.contains("list"))
    {
        return Err(refuse(format!(
            "an image index ({}), e.g. a multi-platform container image",
            media_type.unwrap_or("no media type")
        )));
    }
    if let Some(m) = media_type.filter(|m| *m != IMAGE_MANIFEST_MEDIA_TYPE) {
        return Err(refuse(format!("a manifest of media type `{m}`")));
    }
    let parsed: Manifest = serde_json::from_value(value)
        .map_err(|e| refuse(format!("a manifest sluice cannot read ({e})")))?;
    if parsed.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(refuse(format!(
            "config media type `{}` (expected `{WASM_CONFIG_MEDIA_TYPE}`; a container image?)",
            parsed.config.media_type
        )));
    }
    if let Some(t) = parsed
        .artifact_type
        .as_deref()
        .filter(|t| *t != WASM_ARTIFACT_TYPE)
    {
        return Err(refuse(format!("artifact type `{t}`")));
    }
    let [layer] = parsed.layers.as_slice() else {
        let types: Vec<&str> = parsed
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        return Err(refuse(format!(
            "{} layers ({}), expected exactly one `{WASM_LAYER_MEDIA_TYPE}` layer",
            types.len(),
            types.join(", ")
        )));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(refuse(format!(
            "a layer of media type `{}`, expected `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        )));
    }
    if !sluice_types::oci::is_sha256_digest(&layer.digest) {
        return Err(refuse(format!(
            "a layer digest `{}` that is not sha256",
            layer.digest
        )));
    }
    if layer.size < 0 || layer.size as u64 > MAX_COMPONENT_BYTES {
        return Err(OciError::TooLarge {
            what: format!("the component layer of {reference}"),
            size: layer.size.max(0) as u64,
            limit: MAX_COMPONENT_BYTES,
        });
    }
    Ok(layer.clone())
}

/// A referrer manifest carrying a Sigstore bundle of `subject`.
pub fn referrer_manifest(
    subject: Descriptor,
    payload: &[u8],
    annotations: BTreeMap<String, String>,
) -> Vec<u8> {
    to_json(&Manifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST_MEDIA_TYPE.to_owned()),
        artifact_type: Some(SIGSTORE_BUNDLE_MEDIA_TYPE.to_owned()),
        config: empty_descriptor(),
        layers: vec![Descriptor {
            media_type: SIGSTORE_BUNDLE_MEDIA_TYPE.to_owned(),
            digest: sha256_digest(payload),
            size: payload.len() as i64,
            artifact_type: None,
            annotations: None,
        }],
        subject: Some(subject),
        annotations: Some(annotations),
    })
}

/// The OCI empty descriptor (`{}`).
pub fn empty_descriptor() -> Descriptor {
    Descriptor {
        media_type: EMPTY_MEDIA_TYPE.to_owned(),
        digest: sha256_digest(EMPTY_BLOB),
        size: EMPTY_BLOB.len() as i64,
        artifact_type: None,
        annotations: None,
    }
}

/// The bundle layer of a referrer manifest of `subject_digest`, or `None`
/// when the manifest is not a Sigstore bundle referrer of it with content
/// `content` (`message-signature`, `dsse-envelope`).
pub fn bundle_layer(manifest: &[u8], subject_digest: &str, content: &str) -> Option<Descriptor> {
    let parsed: Manifest = serde_json::from_slice(manifest).ok()?;
    if parsed.artifact_type.as_deref() != Some(SIGSTORE_BUNDLE_MEDIA_TYPE)
        || parsed.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject_digest)
    {
        return None;
    }
    let annotated = parsed
        .annotations
        .as_ref()
        .and_then(|a| a.get(BUNDLE_CONTENT_ANNOTATION))
        .map(String::as_str);
    // cosign always annotates; an unannotated bundle is a signature.
    if annotated.unwrap_or("message-signature") != content {
        return None;
    }
    let [layer] = parsed.layers.as_slice() else {
        return None;
    };
    (layer.media_type == SIGSTORE_BUNDLE_MEDIA_TYPE
        && sluice_types::oci::is_sha256_digest(&layer.digest)
        && layer.size >= 0
        && layer.size as u64 <= MAX_REFERRER_BYTES)
        .then(|| layer.clone())
}

/// The tag of the referrers tag-schema fallback for `digest`
/// (`sha256:abc…` → `sha256-abc…`).
pub fn fallback_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

/// The fallback index after adding `entry`: `existing` (the tag's current
/// manifest, `None` when the tag does not exist) with `entry` appended
/// unless it is already listed. An existing tag that is not an image index
/// is an error (something else uses the tag).
pub fn add_to_fallback_index(
    existing: Option<&[u8]>,
    entry: Descriptor,
    tag: &str,
) -> Result<Vec<u8>, String> {
    let mut index = match existing {
        None => Index {
            schema_version: 2,
            media_type: Some(IMAGE_INDEX_MEDIA_TYPE.to_owned()),
            manifests: Vec::new(),
        },
        Some(bytes) => {
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("tag `{tag}` holds something that is not JSON ({e})"))?;
            if value.get("manifests").is_none() {
                return Err(format!(
                    "tag `{tag}` holds a manifest, not the image index of the referrers tag schema"
                ));
            }
            serde_json::from_value(value)
                .map_err(|e| format!("tag `{tag}` holds an image index sluice cannot read ({e})"))?
        }
    };
    index.media_type = Some(IMAGE_INDEX_MEDIA_TYPE.to_owned());
    if !index.manifests.iter().any(|m| m.digest == entry.digest) {
        index.manifests.push(entry);
    }
    Ok(to_json(&index))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble of the component encoding.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn component_manifests_have_the_wkg_layout() {
        let (config, manifest) =
            component_manifest(EMPTY_COMPONENT, "lint.wasm", "2026-01-01T00:00:00Z")
                .expect("it must succeed");
        let config: serde_json::Value = serde_json::from_slice(&config).expect("it must succeed");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], sha256_digest(EMPTY_COMPONENT));
        assert!(config["component"]["exports"].is_array());
        let m: serde_json::Value = serde_json::from_slice(&manifest).expect("it must succeed");
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], IMAGE_MANIFEST_MEDIA_TYPE);
        assert_eq!(m["artifactType"], WASM_ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["mediaType"], WASM_LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["annotations"][TITLE_ANNOTATION], "lint.wasm");
        let layer = component_layer(&manifest, "oci://r/x:1").expect("it must succeed");
        assert_eq!(layer.digest, sha256_digest(EMPTY_COMPONENT));
    }

    #[test]
    fn core_modules_and_garbage_are_not_pushed() {
        let err = component_manifest(CORE_MODULE, "x.wasm", "t").expect_err("it must fail");
        assert!(err.to_string().contains("core Wasm module"), "{err}");
        let err = component_manifest(b"#!/bin/sh\n", "x.wasm", "t").expect_err("it must fail");
        assert!(err.to_string().contains("not a valid Wasm binary"), "{err}");
    }

    fn manifest_with(config_type: &str, layers: &[(&str, i64)]) -> Vec<u8> {
        to_json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": config_type, "digest": sha256_digest(b"{}"), "size": 2},
            "layers": layers.iter().map(|(t, size)| serde_json::json!({
                "mediaType": t, "digest": sha256_digest(t.as_bytes()), "size": size})).collect::<Vec<_>>(),
        }))
    }

    #[test]
    fn manifests_that_are_not_components_are_refused_naming_what_was_found() {
        let found = |bytes: &[u8]| match component_layer(bytes, "oci://r/x:1") {
            Err(OciError::NotAComponent { found, .. }) => found,
            other => panic!("expected NotAComponent, got {other:?}"),
        };
        // A container image.
        let f = found(&manifest_with(
            "application/vnd.oci.image.config.v1+json",
            &[("application/vnd.oci.image.layer.v1.tar+gzip", 10)],
        ));
        assert!(
            f.contains("application/vnd.oci.image.config.v1+json"),
            "{f}"
        );
        // A Wasm config but a tar layer.
        let f = found(&manifest_with(
            WASM_CONFIG_MEDIA_TYPE,
            &[("application/vnd.oci.image.layer.v1.tar", 10)],
        ));
        assert!(f.contains("application/vnd.oci.image.layer.v1.tar"), "{f}");
        // Two layers.
        let f = found(&manifest_with(
            WASM_CONFIG_MEDIA_TYPE,
            &[(WASM_LAYER_MEDIA_TYPE, 10), ("text/plain", 3)],
        ));
        assert!(f.contains("2 layers"), "{f}");
        // An index.
        let f = found(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#);
        assert!(f.contains("image index"), "{f}");
        // Not JSON.
        assert!(found(b"<html>").contains("not JSON"));
        // Too large a layer is refused before it is downloaded.
        let err = component_layer(
            &manifest_with(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, 1 << 40)]),
            "oci://r/x:1",
        )
        .expect_err("it must fail");
        assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
        // wkg's manifests have no artifactType: accepted.
        assert!(component_layer(
            &manifest_with(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, 10)]),
            "oci://r/x:1"
        )
        .is_ok());
    }

    fn subject() -> Descriptor {
        Descriptor {
            media_type: IMAGE_MANIFEST_MEDIA_TYPE.to_owned(),
            digest: sha256_digest(b"subject"),
            size: 7,
            artifact_type: None,
            annotations: None,
        }
    }

    #[test]
    fn referrer_manifests_carry_the_bundle_of_their_subject_only() {
        let annotations = BTreeMap::from([(
            BUNDLE_CONTENT_ANNOTATION.to_owned(),
            "message-signature".to_owned(),
        )]);
        let m = referrer_manifest(subject(), b"{\"bundle\":1}", annotations);
        let v: serde_json::Value = serde_json::from_slice(&m).expect("it must succeed");
        assert_eq!(v["artifactType"], SIGSTORE_BUNDLE_MEDIA_TYPE);
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["subject"]["digest"], sha256_digest(b"subject"));
        let layer = bundle_layer(&m, &sha256_digest(b"subject"), "message-signature")
            .expect("it must succeed");
        assert_eq!(layer.digest, sha256_digest(b"{\"bundle\":1}"));
        // Not an attestation, and not a referrer of another subject.
        assert!(bundle_layer(&m, &sha256_digest(b"subject"), "dsse-envelope").is_none());
        assert!(bundle_layer(&m, &sha256_digest(b"other"), "message-signature").is_none());
    }

    #[test]
    fn fallback_index_is_created_appended_and_kept_free_of_duplicates() {
        let entry = |d: &[u8]| Descriptor {
            media_type: IMAGE_MANIFEST_MEDIA_TYPE.to_owned(),
            digest: sha256_digest(d),
            size: 1,
            artifact_type: Some(SIGSTORE_BUNDLE_MEDIA_TYPE.to_owned()),
            annotations: None,
        };
        let tag = fallback_tag(&sha256_digest(b"subject"));
        assert!(tag.starts_with("sha256-") && !tag.contains(':'));
        let first = add_to_fallback_index(None, entry(b"a"), &tag).expect("it must succeed");
        let second =
            add_to_fallback_index(Some(&first), entry(b"b"), &tag).expect("it must succeed");
        let again =
            add_to_fallback_index(Some(&second), entry(b"a"), &tag).expect("it must succeed");
        let index: Index = serde_json::from_slice(&again).expect("it must succeed");
        assert_eq!(index.media_type.as_deref(), Some(IMAGE_INDEX_MEDIA_TYPE));
        let digests: Vec<_> = index.manifests.iter().map(|m| m.digest.clone()).collect();
        assert_eq!(digests, vec![sha256_digest(b"a"), sha256_digest(b"b")]);
        // Another index's entries (e.g. cosign's) are kept as they are.
        let foreign = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":5,"artifactType":"application/vnd.example"}]}"#;
        let merged: Index = serde_json::from_slice(
            &add_to_fallback_index(Some(foreign), entry(b"a"), &tag).expect("it must succeed"),
        )
        .expect("it must succeed");
        assert_eq!(merged.manifests.len(), 2);
        assert_eq!(
            merged.manifests[0].artifact_type.as_deref(),
            Some("application/vnd.example")
        );
        // A tag that holds something else is not overwritten.
        let err = add_to_fallback_index(
            Some(&manifest_with(WASM_CONFIG_MEDIA_TYPE, &[])),
            entry(b"a"),
            &tag,
        )
        .expect_err("it must fail");
        assert!(err.contains(&tag), "{err}");
    }
}
