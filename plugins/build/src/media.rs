//! Media types of build outputs: `with.media-types` first, then a built-in
//! table of common package and archive formats, by file extension. The
//! longest matching extension wins (`tar.gz` over `gz`); names are compared
//! case-insensitively. Anything else is `application/octet-stream`.

use std::collections::BTreeMap;

use sluice_sdk::StageError;

/// Media type of files no rule matches.
pub const DEFAULT: &str = "application/octet-stream";

/// Extension → media type for common build outputs.
const BUILTIN: &[(&str, &str)] = &[
    ("tar.gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("tar.xz", "application/x-xz"),
    ("xz", "application/x-xz"),
    ("tar.zst", "application/zstd"),
    ("zst", "application/zstd"),
    ("bz2", "application/x-bzip2"),
    ("zip", "application/zip"),
    // A Python zipapp and a wheel are zip files.
    ("pyz", "application/zip"),
    ("whl", "application/zip"),
    ("jar", "application/java-archive"),
    ("war", "application/java-archive"),
    ("deb", "application/vnd.debian.binary-package"),
    ("rpm", "application/x-rpm"),
    ("apk", "application/vnd.android.package-archive"),
    ("wasm", "application/wasm"),
    ("spdx.json", "application/spdx+json"),
    ("cdx.json", "application/vnd.cyclonedx+json"),
    ("intoto.jsonl", "application/vnd.in-toto+json"),
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("html", "text/html"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("md", "text/markdown"),
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("sha256", "text/plain"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
];

/// The media types of one build: the pipeline's overrides plus the table.
#[derive(Debug, Clone, Default)]
pub struct MediaTypes {
    custom: Vec<(String, String)>,
}

impl MediaTypes {
    /// Validates `with.media-types` (extension → media type; a leading `.`
    /// on the extension is allowed).
    pub fn new(custom: BTreeMap<String, String>) -> Result<Self, StageError> {
        let mut out = Vec::new();
        for (ext, media_type) in custom {
            let key = ext.trim().trim_start_matches('.').to_ascii_lowercase();
            if key.is_empty() || key.contains('/') {
                return Err(StageError::invalid_config(format!(
                    "with.media-types: `{ext}` is not a file extension; write e.g. `pyz: application/zip`"
                )));
            }
            if !is_media_type(&media_type) {
                return Err(StageError::invalid_config(format!(
                    "with.media-types.{ext}: `{media_type}` is not a media type; write `type/subtype`, \
                     e.g. `application/zip`"
                )));
            }
            out.push((key, media_type));
        }
        Ok(Self { custom: out })
    }

    /// The media type of the file at `path` (`/`-separated).
    pub fn of(&self, path: &str) -> String {
        let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        let best = |table: &mut dyn Iterator<Item = (&str, &str)>| {
            table
                .filter(|(ext, _)| {
                    name.len() > ext.len() + 1
                        && name.ends_with(ext)
                        && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
                })
                .max_by_key(|(ext, _)| ext.len())
                .map(|(_, t)| t.to_string())
        };
        best(&mut self.custom.iter().map(|(e, t)| (e.as_str(), t.as_str())))
            .or_else(|| best(&mut BUILTIN.iter().copied()))
            .unwrap_or_else(|| DEFAULT.to_string())
    }
}

/// `type/subtype[+suffix][;params]` with RFC 6838 name characters.
fn is_media_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or_default().trim();
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    let name = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    name(ty) && name(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_longest_extension_wins() {
        let m = MediaTypes::default();
        assert_eq!(m.of("dist/app.tar.gz"), "application/gzip");
        assert_eq!(m.of("dist/app.tar"), "application/x-tar");
        assert_eq!(m.of("dist/QUICKSTART.PYZ"), "application/zip");
        assert_eq!(m.of("sbom.spdx.json"), "application/spdx+json");
        assert_eq!(m.of("meta.json"), "application/json");
        assert_eq!(m.of("bin/app"), DEFAULT);
        assert_eq!(m.of("dist/.gz"), DEFAULT);
        assert_eq!(m.of("dist/targz"), DEFAULT);
    }

    #[test]
    fn custom_types_override_the_table() -> Result<(), StageError> {
        let m = MediaTypes::new(BTreeMap::from([
            (
                ".pyz".to_string(),
                "application/vnd.python.zipapp".to_string(),
            ),
            ("gz".to_string(), "application/x-gzip".to_string()),
        ]))?;
        assert_eq!(m.of("dist/q.pyz"), "application/vnd.python.zipapp");
        assert_eq!(m.of("dist/a.tar.gz"), "application/x-gzip");
        Ok(())
    }

    #[test]
    fn bad_entries_name_the_key() {
        let e = MediaTypes::new(BTreeMap::from([("pyz".into(), "zip".into())]));
        assert!(e.is_err_and(|e| e.message().starts_with("with.media-types.pyz: `zip`")));
        let e = MediaTypes::new(BTreeMap::from([("".into(), "a/b".into())]));
        assert!(e.is_err_and(|e| e.message().starts_with("with.media-types: ")));
        assert!(is_media_type("application/vnd.in-toto+json; charset=utf-8"));
        assert!(!is_media_type("application/"));
    }
}
