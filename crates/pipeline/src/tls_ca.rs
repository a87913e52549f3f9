//! `grants.tls-ca`: PEM files of extra TLS roots a stage's HTTPS
//! connections trust besides the public (webpki) roots, for platform APIs
//! behind a private CA. Read at load time (so a missing or malformed file is
//! a load error naming the stage) and again by the executor, which refuses
//! the file if its digest changed since.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use sluice_files::fsutil::{read_input_file, InputError};

/// The most bytes read from a CA file. A bundle of every public root is
/// about 250 KiB.
pub const MAX_TLS_CA_BYTES: u64 = 1 << 20;

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsCaError {
    /// Missing, unreadable, not a regular file or too large.
    #[error(transparent)]
    Read(#[from] InputError),
    /// Not PEM, or a PEM section that does not decode.
    #[error("`{file}` is not a PEM file of certificates: {reason}")]
    NotPem {
        /// The path as given.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// PEM without a `CERTIFICATE` section.
    #[error("`{file}` holds no `-----BEGIN CERTIFICATE-----` section")]
    NoCertificate {
        /// The path as given.
        file: String,
    },
    /// A `CERTIFICATE` section that is not an X.509 certificate usable as
    /// a trust anchor.
    #[error("certificate {index} in `{file}` cannot be used as a TLS root: {reason}")]
    BadCertificate {
        /// The path as given.
        file: String,
        /// 1-based position in the file.
        index: usize,
        /// webpki's reason.
        reason: String,
    },
}

/// The certificates of a CA file and the digest of its bytes.
#[derive(Debug, Clone)]
pub struct LoadedCa {
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    /// The certificates, DER-encoded, in file order.
    pub certificates: Vec<CertificateDer<'static>>,
}

/// Reads and checks the CA file at `path` (`file` is how it was written,
/// for messages): a regular file of at most [`MAX_TLS_CA_BYTES`] with at
/// least one PEM `CERTIFICATE`, each a parseable X.509 certificate. Other
/// PEM sections (a key by mistake) are skipped.
pub fn load_tls_ca(path: &Path, file: &str) -> Result<LoadedCa, TlsCaError> {
    let bytes = read_input_file(path, MAX_TLS_CA_BYTES, "TLS CA file")?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let mut certificates = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let cert = item.map_err(|e| TlsCaError::NotPem {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        if let Err(e) = webpki::anchor_from_trusted_cert(&cert) {
            return Err(TlsCaError::BadCertificate {
                file: file.to_owned(),
                index: certificates.len() + 1,
                reason: format!("{e:?}"),
            });
        }
        certificates.push(cert);
    }
    if certificates.is_empty() {
        return Err(TlsCaError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(LoadedCa {
        digest,
        certificates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed P-256 CA made with `openssl req -x509 -newkey ec
    // -pkeyopt ec_paramgen_curve:P-256 -subj /CN=sluice-unit-test-ca`.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBkjCCATmgAwIBAgIUdBLP6XniaqST0XQl7BjDg55heZMwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTc2x1aWNlLXVuaXQtdGVzdC1jYTAgFw0yNjEyMDcwNjQyMjVa
GA8yMTI2MTExMzA2NDIyNVowHjEcMBoGA1UEAwwTc2x1aWNlLXVuaXQtdGVzdC1j
YTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKIYPBru7t3Q7FPB+kOSZ+B+Xmku
ozRLfzkh82BBvyBDE6jPUS3uS6oJiXEIm2mcRXNeJmLIw18N5NS/13UwN0OjUzBR
MB0GA1UdDgQWBBTdF7nQiOL61nR3qMrvjnynohC5AjAfBgNVHSMEGDAWgBTdF7nQ
iOL61nR3qMrvjnynohC5AjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA
MEQCIEnPcDUI5mjCbq2BmDp622LYp33Xbecl/7XpJMGCxDVIAiB/wDfD3rcZcLOy
9J2OuLdUQIE3oon5zM9ksAr5f1BNXw==
-----END CERTIFICATE-----
";

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn refuses_missing_and_non_pem_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = load_tls_ca(&dir.path().join("nope.pem"), "nope.pem").expect_err("missing");
        assert!(matches!(missing, TlsCaError::Read(_)), "{missing}");
        let text = write(dir.path(), "notes.txt", "just some text\n");
        let e = load_tls_ca(&text, "notes.txt").expect_err("not pem");
        assert!(matches!(e, TlsCaError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        let key = write(
            dir.path(),
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(
            load_tls_ca(&key, "key.pem"),
            Err(TlsCaError::NoCertificate { .. })
        ));
        let garbage = write(
            dir.path(),
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        assert!(matches!(
            load_tls_ca(&garbage, "bad.pem"),
            Err(TlsCaError::BadCertificate { index: 1, .. })
        ));
        let torn = write(
            dir.path(),
            "torn.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
        );
        assert!(load_tls_ca(&torn, "torn.pem").is_err());
    }

    #[test]
    fn reads_certificates_and_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = write(dir.path(), "ca.pem", CA);
        let loaded = load_tls_ca(&one, "ca.pem").expect("a real CA");
        assert_eq!(loaded.certificates.len(), 1);
        assert_eq!(
            loaded.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(CA.as_bytes())))
        );
        // A bundle with a key in it (a common mistake) still reads its
        // certificates, and a second certificate counts.
        let bundle = write(
            dir.path(),
            "bundle.pem",
            &format!("{CA}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{CA}"),
        );
        assert_eq!(
            load_tls_ca(&bundle, "bundle.pem")
                .expect("bundle")
                .certificates
                .len(),
            2
        );
    }
}
