//! `sluice key generate`, `plugin sign`, `plugin verify`, `policy check`
//! and `verify-artifact`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use sluice_engine::admission::{
    self, canonical_reference, read_bundle, read_plugin, read_plugin_file, requested,
    validate_component, ComponentError, PluginFileError,
};
use sluice_files::fsutil::{
    read_input_file, InputError, MAX_KEY_BYTES, MAX_PROVENANCE_BUNDLE_BYTES,
};
use sluice_pipeline::PipelineError;
use sluice_trust::{self as trust, Policies, Policy, PolicyError, RequestedGrants, VerifyOptions};

/// Why a `key`, `plugin sign|attest|verify`, `policy check` or
/// `verify-artifact` command failed. [`crate::error::CliError`] maps each
/// kind to its exit code (invalid input, or refused) and prints it.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Invalid input: arguments, a file, a key, a password.
    #[error("{0}")]
    Invalid(String),
    /// An input file (key, predicate, artifact, bundle) cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A key cannot be made or read, or a bundle cannot be made.
    #[error(transparent)]
    Key(#[from] trust::TrustError),
    /// The plugin file or its bundle cannot be read.
    #[error(transparent)]
    PluginFile(#[from] PluginFileError),
    /// The plugin is not a valid component.
    #[error("{}: {reason}", file.display())]
    Component {
        /// The plugin file, as given.
        file: PathBuf,
        /// What is wrong with it.
        reason: ComponentError,
    },
    /// The pipeline given with `--pipeline` is invalid (renders itself).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A policy file is invalid (renders itself).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A signature or provenance does not verify.
    #[error("{0}")]
    Refused(String),
    /// An `oci://` plugin cannot be resolved, pulled or matched to the lock.
    #[error(transparent)]
    Oci(#[from] crate::oci_plugins::OciRunError),
    /// `plugin verify`'s report of a plugin a policy refuses, printed as
    /// it is.
    #[error("{0}")]
    RefusedReport(String),
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::Invalid(message.into())
}

fn refused(message: impl Into<String>) -> Failure {
    Failure::Refused(message.into())
}

/// `file` is not a valid component.
fn component(file: &Path) -> impl FnOnce(ComponentError) -> Failure + '_ {
    move |reason| Failure::Component {
        file: file.to_path_buf(),
        reason,
    }
}

/// The key password: `SLUICE_KEY_PASSWORD`, else a prompt on the terminal.
fn password(confirm: bool) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("SLUICE_KEY_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(invalid(
            "no key password: set SLUICE_KEY_PASSWORD (stdin is not a terminal, so sluice cannot prompt)",
        ));
    }
    let first = rpassword::prompt_password("Key password: ")
        .map_err(|e| invalid(format!("reading the password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Repeat password: ")
            .map_err(|e| invalid(format!("reading the password: {e}")))?;
        if again != first {
            return Err(invalid("the passwords do not match"));
        }
    }
    Ok(first)
}

/// A text input file: a regular file of at most `limit` bytes, UTF-8.
fn read_text(path: &Path, what: &'static str, limit: u64) -> Result<String, Failure> {
    let bytes = read_input_file(path, limit, what)?;
    String::from_utf8(bytes)
        .map_err(|_| invalid(format!("{what} `{}` is not UTF-8 text", path.display())))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `sluice key generate --out NAME`.
pub fn key_generate(out: &Path, force: bool) -> Result<String, Failure> {
    let private = with_suffix(out, ".key");
    let public = with_suffix(out, ".pub");
    for p in [&private, &public] {
        if p.exists() && !force {
            return Err(invalid(format!(
                "{} exists; pass --force to overwrite it",
                p.display()
            )));
        }
    }
    let password = password(true)?;
    let pair = trust::generate(password.as_bytes())?;
    if let Some(parent) = private.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| invalid(format!("{}: {e}", parent.display())))?;
    }
    sluice_files::fsutil::write_atomic(&private, pair.private_pem.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", private.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600));
    }
    sluice_files::fsutil::write_atomic(&public, pair.public_pem.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", public.display())))?;
    let fp = trust::load_public(&pair.public_pem)
        .map(|k| k.fingerprint())
        .unwrap_or_default();
    Ok(format!(
        "wrote {} (encrypted private key) and {} (public key, fingerprint sha256:{fp})\n",
        private.display(),
        public.display()
    ))
}

/// The signing key `key` (cosign-style encrypted PEM), its password from
/// `SLUICE_KEY_PASSWORD` or a prompt. Shared by `plugin sign FILE` and the
/// registry commands (`plugin push --sign`, `plugin sign oci://…`).
pub fn load_signing_key(key: &Path) -> Result<trust::PrivateKey, Failure> {
    let pem = read_text(key, "private key", MAX_KEY_BYTES)?;
    let password = password(false)?;
    Ok(trust::load_private(&pem, password.as_bytes())?)
}

/// `sluice plugin sign FILE --key NAME.key`.
pub fn plugin_sign(file: &Path, key: &Path) -> Result<String, Failure> {
    let (bytes, digest) = read_plugin(file)?;
    validate_component(&bytes).map_err(component(file))?;
    let private = load_signing_key(key)?;
    let bundle = trust::sign_blob(&bytes, &private)?;
    let out = trust::bundle_path(file);
    sluice_files::fsutil::write_atomic(&out, bundle.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", out.display())))?;
    Ok(format!(
        "signed {} ({digest}) with key sha256:{}\nwrote {}\n",
        file.display(),
        private.public_key().fingerprint(),
        out.display()
    ))
}

/// `sluice plugin attest FILE --key NAME.key --predicate-type T --predicate P`.
///
/// Adds the signed attestation to `FILE.intoto.sigstore.json`, replacing an
/// earlier one of the same predicate type by the same key; the file holds
/// one bundle, or a JSON list when there are several.
pub fn plugin_attest(
    file: &Path,
    key: &Path,
    predicate_type: &str,
    predicate: &Path,
) -> Result<String, Failure> {
    if predicate_type.trim().is_empty() {
        return Err(invalid(
            "--predicate-type is empty; give a URI such as https://slsa.dev/provenance/v1",
        ));
    }
    let (bytes, digest) = read_plugin(file)?;
    validate_component(&bytes).map_err(component(file))?;
    let predicate_json: serde_json::Value = serde_json::from_str(&read_text(
        predicate,
        "predicate",
        MAX_PROVENANCE_BUNDLE_BYTES,
    )?)
    .map_err(|e| {
        invalid(format!(
            "predicate `{}` is not JSON: {e}",
            predicate.display()
        ))
    })?;
    let private = load_signing_key(key)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": name,
            "digest": { "sha256": digest.trim_start_matches("sha256:") }
        }],
        "predicateType": predicate_type,
        "predicate": predicate_json,
    });
    let bundle = trust::sign_statement(statement.to_string().as_bytes(), &private)?;
    let new: serde_json::Value =
        serde_json::from_str(&bundle).map_err(|e| invalid(e.to_string()))?;

    let out = trust::policy_rules::attestation_path(file);
    let hint = private.public_key().hint();
    let mut list: Vec<serde_json::Value> = match read_bundle(&out)? {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(one) => vec![one],
            Err(e) => {
                return Err(invalid(format!(
                    "{} is not JSON ({e}); remove it or fix it before adding an attestation",
                    out.display()
                )))
            }
        },
    };
    // Drop an earlier attestation of this type by this key.
    list.retain(|b| {
        let same_key = b["verificationMaterial"]["publicKey"]["hint"].as_str() == Some(&hint);
        let same_type = trust::bundle::parse_bundle(&b.to_string())
            .ok()
            .and_then(|parsed| match parsed.content {
                sigstore_verify::types::SignatureContent::DsseEnvelope(envelope) => {
                    serde_json::from_slice::<serde_json::Value>(envelope.payload.as_bytes()).ok()
                }
                _ => None,
            })
            .is_some_and(|s| s["predicateType"] == predicate_type);
        !(same_key && same_type)
    });
    list.push(new);
    let mut text = if list.len() == 1 {
        serde_json::to_string_pretty(&list[0])
    } else {
        serde_json::to_string_pretty(&list)
    }
    .map_err(|e| invalid(e.to_string()))?;
    text.push('\n');
    sluice_files::fsutil::write_atomic(&out, text.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", out.display())))?;
    Ok(format!(
        "attested {} ({digest}): predicate type {predicate_type}, signed with key sha256:{}\nwrote {} ({} attestation{})\n",
        file.display(),
        private.public_key().fingerprint(),
        out.display(),
        list.len(),
        if list.len() == 1 { "" } else { "s" }
    ))
}

/// What `plugin verify` checks a plugin against.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyWith<'a> {
    /// `--policy P`: the pipeline-level policy (default: the `policy:` of
    /// `--pipeline`).
    pub policy: Option<&'a Path>,
    /// `--key PUB`: only check the signature against this key.
    pub key: Option<&'a Path>,
    /// `--operator-policy` (else `SLUICE_POLICY`, else the system file).
    pub operator_policy: Option<&'a Path>,
    /// `--pipeline P`: evaluate as `run` would for this pipeline.
    pub pipeline: Option<&'a Path>,
    /// `--stage S`: the stage whose grants are checked.
    pub stage: Option<&'a str>,
}

/// `sluice plugin verify FILE [--policy P] [--pipeline PIPE [--stage S]] | --key PUB`.
///
/// Evaluates exactly as `run` does ([`admission::evaluate`]): the operator
/// policy and the pipeline's, the canonical reference (relative to the
/// pipeline's directory with `--pipeline`, else to the policy file's), the
/// digest and signature before any parse of the component, then the
/// imports and (with `--pipeline`) the stage's grants. Only an admitted
/// plugin is then fully validated.
pub fn plugin_verify(file: &Path, with: VerifyWith<'_>) -> Result<String, Failure> {
    if let Some(key) = with.key {
        return verify_with_key(file, key);
    }
    let (pipeline, policies) = verify_policies(&with)?;
    // The directory references are relative to: the pipeline's, as in
    // `run`; else the policy file's.
    let base = match (&pipeline, policies.pipeline().or(policies.operator())) {
        (Some(p), _) => p.dir.clone(),
        (None, Some(policy)) => policy
            .file()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        (None, None) => PathBuf::from("."),
    };
    let (real, reference) = canonical_reference(&base, file)?;
    let plugin = read_plugin_file(&real, reference.clone())?;
    let header = format!(
        "plugin {}\n  reference: {reference} (relative to {})\n  digest: {}\n",
        file.display(),
        if pipeline.is_some() {
            "the pipeline's directory"
        } else {
            "the policy file's directory"
        },
        plugin.digest
    );
    let uses = |stage: &sluice_pipeline::Stage| match &stage.uses {
        sluice_pipeline::PluginRef::Path(path) => {
            std::fs::canonicalize(path).is_ok_and(|r| r == real)
        }
        sluice_pipeline::PluginRef::Oci(_) => false,
    };
    verdict(
        file,
        &plugin,
        header,
        pipeline.as_ref(),
        &policies,
        with.stage,
        uses,
    )
}

/// `plugin verify oci://…`: the reference resolved and pulled as `run`
/// does it (with `--pipeline`, under the pipeline's lock file), its
/// signatures taken from the registry's referrers, then evaluated exactly
/// as [`plugin_verify`] evaluates a file, matched by the reference's policy
/// name.
pub async fn plugin_verify_oci(
    reference: &sluice_types::OciReference,
    with: VerifyWith<'_>,
    registry: &crate::oci_plugins::RegistryAccess,
    cache_dir: &Path,
) -> Result<String, Failure> {
    use crate::oci_plugins::{self as oci, LockFile, OciRunError};
    let pipeline = with.pipeline.map(sluice_pipeline::load).transpose()?;
    let lock_file = pipeline
        .as_ref()
        .map_or_else(|| PathBuf::from("sluice.lock"), |p| oci::lock_path(&p.path));
    // Only a pipeline's own lock pins its references.
    let lock = match &pipeline {
        Some(_) => LockFile::read(&lock_file).map_err(OciRunError::from)?,
        None => None,
    };
    let settings = oci::Settings {
        registry: registry.options().map_err(OciRunError::Options)?,
        cache_dir: cache_dir.to_path_buf(),
        locked: false,
        pins: Default::default(),
    };
    let mut pulled = oci::pull_all(
        std::slice::from_ref(reference),
        &settings,
        lock.as_ref(),
        &lock_file,
    )
    .await?;
    let Some(found) = pulled.plugins.remove(reference) else {
        return Err(invalid(format!("{reference} was not pulled")));
    };
    let shown = PathBuf::from(reference.to_string());
    let mut header = format!(
        "plugin {reference}\n  pinned: {}\n  reference: {} (policies match this name)\n  digest: {}\n",
        found.origin.pinned(),
        found.file.reference,
        found.file.digest
    );
    for w in &pulled.warnings {
        header.push_str(&format!("  warning: {w}\n"));
    }
    if let Some(key) = with.key {
        return verify_bundles_with_key(&shown, &found.file, key, header);
    }
    let (_, policies) = verify_policies(&with)?;
    let uses = |stage: &sluice_pipeline::Stage| match &stage.uses {
        sluice_pipeline::PluginRef::Oci(r) => {
            r.policy_name() == reference.policy_name() && r.tag() == reference.tag()
        }
        sluice_pipeline::PluginRef::Path(_) => false,
    };
    verdict(
        &shown,
        &found.file,
        header,
        pipeline.as_ref(),
        &policies,
        with.stage,
        uses,
    )
}

/// The pipeline of `--pipeline` and the policies in effect: the operator's
/// and `--policy` (else the pipeline's `policy:`).
fn verify_policies(
    with: &VerifyWith<'_>,
) -> Result<(Option<sluice_pipeline::Pipeline>, Policies), Failure> {
    let pipeline = with.pipeline.map(sluice_pipeline::load).transpose()?;
    let policy_path = with
        .policy
        .map(Path::to_path_buf)
        .or_else(|| pipeline.as_ref().and_then(|p| p.policy.clone()));
    let policy = policy_path.as_deref().map(Policy::load).transpose()?;
    let operator = trust::operator::load_operator(with.operator_policy)?;
    let policies = Policies::new(operator, policy);
    if policies.is_empty() {
        return Err(invalid(format!(
            "give --policy P, --pipeline P (with a `policy:`) or --key PUB to verify against \
             (there is no operator policy: looked for {})",
            trust::operator::lookup_order()
        )));
    }
    Ok((pipeline, policies))
}

/// Evaluates `plugin` for every stage of `pipeline` that `uses` it (or
/// `stage`), or once without grants; the report, or the refusal.
fn verdict(
    file: &Path,
    plugin: &admission::PluginFile,
    header: String,
    pipeline: Option<&sluice_pipeline::Pipeline>,
    policies: &Policies,
    stage: Option<&str>,
    uses_file: impl Fn(&sluice_pipeline::Stage) -> bool,
) -> Result<String, Failure> {
    let mut checks: Vec<(Option<String>, RequestedGrants)> = Vec::new();
    if let Some(p) = pipeline {
        match stage {
            Some(name) => {
                let stage = p.stages.get(name).ok_or_else(|| {
                    invalid(format!(
                        "{} has no stage `{name}`; stages: {}",
                        p.path.display(),
                        p.stages.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if !uses_file(stage) {
                    return Err(invalid(format!(
                        "stage `{name}` of {} does not use {} (it uses {})",
                        p.path.display(),
                        file.display(),
                        stage.uses
                    )));
                }
                checks.push((Some(name.to_owned()), requested(stage)));
            }
            None => {
                for (name, stage) in &p.stages {
                    if uses_file(stage) {
                        checks.push((Some(name.clone()), requested(stage)));
                    }
                }
                if checks.is_empty() {
                    return Err(invalid(format!(
                        "no stage of {} uses {}; give the pipeline that runs it, or --stage",
                        p.path.display(),
                        file.display()
                    )));
                }
            }
        }
    } else {
        checks.push((None, RequestedGrants::default()));
    }

    let mut out = header;
    if let Some(op) = policies.operator() {
        out.push_str(&format!(
            "  operator policy: {} ({:?} mode)\n",
            op.file().display(),
            op.mode()
        ));
    }
    if let Some(p) = policies.pipeline() {
        out.push_str(&format!(
            "  policy: {} ({:?} mode)\n",
            p.file().display(),
            p.mode()
        ));
    }
    if pipeline.is_none() {
        out.push_str("  grants: not checked (give --pipeline to check a stage's grants)\n");
    }
    let mut all_admitted = true;
    let mut signer_shown = false;
    for (stage, grants) in checks {
        let decision = admission::evaluate(policies, plugin, grants).map_err(component(file))?;
        if !signer_shown {
            signer_shown = true;
            match &decision.signer {
                Some(signer) => out.push_str(&format!("  signed by: {signer}\n")),
                None => out.push_str("  signed by: (no verified signature)\n"),
            }
        }
        if let Some(stage) = &stage {
            out.push_str(&format!("  stage `{stage}` (its grants checked):\n"));
        }
        out.push_str(&format!(
            "  matching rules: {}\n",
            if decision.matched_rules.is_empty() {
                "none".to_string()
            } else {
                decision.matched_rules.join(", ")
            }
        ));
        for w in &decision.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        for r in &decision.refusals {
            out.push_str(&format!("  refused: {}\n", r.reason));
        }
        all_admitted &= decision.admitted;
    }
    if !all_admitted {
        out.push_str("  result: REFUSED\n");
        return Err(Failure::RefusedReport(out));
    }
    // Admitted: only now is every function body of it validated.
    validate_component(&plugin.bytes).map_err(component(file))?;
    out.push_str("  result: ADMITTED\n");
    Ok(out)
}

/// `plugin verify oci://… --key PUB`: any one of the registry's signatures
/// by that key, then the component.
fn verify_bundles_with_key(
    shown: &Path,
    plugin: &admission::PluginFile,
    key: &Path,
    mut out: String,
) -> Result<String, Failure> {
    let public = trust::load_public(&read_text(key, "public key", MAX_KEY_BYTES)?)?;
    let Some(text) = &plugin.bundle else {
        return Err(refused(format!(
            "{}: unsigned: the registry holds no signature referring to this manifest; sign it \
             with `sluice plugin sign {} --key KEY.key`",
            shown.display(),
            shown.display()
        )));
    };
    let bundles = sluice_oci::split_bundle_file(text, "the registry's signatures")
        .map_err(|e| refused(format!("{}: {e}", shown.display())))?;
    let opts = VerifyOptions {
        keys: vec![public],
        trusted_root: None,
    };
    let mut last = String::new();
    for bundle in bundles {
        let bundle = String::from_utf8_lossy(&bundle);
        match trust::verify_blob(&plugin.bytes, &bundle, &opts) {
            Ok(verified) => {
                validate_component(&plugin.bytes).map_err(component(shown))?;
                out.push_str(&format!(
                    "  signed by: {}\n  result: VERIFIED\n",
                    verified.signer
                ));
                return Ok(out);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(refused(format!("{}: {last}", shown.display())))
}

/// `plugin verify FILE --key PUB`: the signature first, then the component.
fn verify_with_key(file: &Path, key: &Path) -> Result<String, Failure> {
    let (bytes, digest) = read_plugin(file)?;
    let bundle_file = trust::bundle_path(file);
    let bundle = read_bundle(&bundle_file)?;
    let public = trust::load_public(&read_text(key, "public key", MAX_KEY_BYTES)?)?;
    let Some(bundle) = bundle else {
        return Err(refused(format!(
            "{}: unsigned: no bundle at {}; sign it with `sluice plugin sign`",
            file.display(),
            bundle_file.display()
        )));
    };
    let opts = VerifyOptions {
        keys: vec![public],
        trusted_root: None,
    };
    let verified = trust::verify_blob(&bytes, &bundle, &opts)
        .map_err(|e| refused(format!("{}: {e}", file.display())))?;
    validate_component(&bytes).map_err(component(file))?;
    Ok(format!(
        "plugin {}\n  digest: {digest}\n  signed by: {}\n  result: VERIFIED\n",
        file.display(),
        verified.signer
    ))
}

/// `sluice policy check P`: P checked, and the policy in effect explained:
/// the operator policy (if any) plus P, with each rule's origin.
pub fn policy_check(path: &Path, operator_policy: Option<&Path>) -> Result<String, Failure> {
    let policy = Policy::load(path)?;
    let operator = trust::operator::load_operator(operator_policy)?;
    let policies = Policies::new(operator, Some(policy));
    Ok(format!("{}: valid\n{}", path.display(), policies.explain()))
}

/// `sluice verify-artifact FILE --provenance BUNDLE --key PUB`.
pub fn verify_artifact(file: &Path, provenance: &Path, key: &Path) -> Result<String, Failure> {
    // An artifact may be as large as a stage's artifact grant allows, so it
    // has no cap of its own here; it must still be a regular file, so that
    // a FIFO cannot block the command.
    let bytes = read_input_file(file, u64::MAX, "artifact")?;
    let bundle = read_text(provenance, "provenance bundle", MAX_PROVENANCE_BUNDLE_BYTES)?;
    let public = trust::load_public(&read_text(key, "public key", MAX_KEY_BYTES)?)?;
    match trust::verify_artifact(&bytes, &bundle, &public) {
        Ok(m) => Ok(format!(
            "{}: VERIFIED\n  digest: {}\n  subject: {}\n  predicate: {}\n  signed by: {}\n",
            file.display(),
            m.digest,
            m.subject,
            m.predicate_type,
            m.signer
        )),
        Err(e) => Err(refused(format!("{}: {e}", file.display()))),
    }
}
