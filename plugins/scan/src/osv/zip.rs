//! OSV `all.zip` dumps, read in place (no unpacking to disk).
//!
//! OSV publishes one archive per ecosystem
//! (`https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip`)
//! holding one `<ID>.json` advisory per entry. [`load`] reads every `.json`
//! entry into an [`AdvisoryDb`]; entries that are not OSV JSON, too large
//! or unreadable are skipped and counted (the first few are named in the
//! warnings), like the directory reader does with files.

use std::io::{Read, Seek};

use super::{AdvisoryDb, MAX_ADVISORY_BYTES};

/// How many skipped entries are named individually in the warnings; the
/// rest are only counted, so a broken dump does not flood the log.
pub const NAMED_SKIPS: usize = 5;

/// Why a zip dump could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{source_name} is not a readable zip archive ({error})")]
pub struct ZipError {
    /// The archive as the user named it (path or URL).
    pub source_name: String,
    /// What the zip reader said.
    #[source]
    pub error: ::zip::result::ZipError,
}

/// Reads every `*.json` entry of the archive `reader` (named `name` in
/// messages). Directory entries and other files are ignored.
pub fn load<R: Read + Seek>(reader: R, name: &str) -> Result<AdvisoryDb, ZipError> {
    let mut archive = ::zip::ZipArchive::new(reader).map_err(|error| ZipError {
        source_name: name.to_string(),
        error,
    })?;
    let mut db = AdvisoryDb::default();
    let mut skipped = 0usize;
    let mut skip = |db: &mut AdvisoryDb, why: String| {
        skipped += 1;
        if skipped <= NAMED_SKIPS {
            db.warnings.push(format!("{name}: {why}; skipped"));
        }
    };
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                skip(&mut db, format!("entry #{i} cannot be read ({e})"));
                continue;
            }
        };
        // Names that are not UTF-8 are shown lossily; OSV ids are ASCII.
        let entry_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if entry.is_dir() || !entry_name.ends_with(".json") {
            continue;
        }
        db.files += 1;
        if entry.size() > MAX_ADVISORY_BYTES {
            skip(
                &mut db,
                format!("entry {entry_name} is larger than {MAX_ADVISORY_BYTES} bytes"),
            );
            continue;
        }
        // Bounded even if the header lies about the size.
        let mut bytes = Vec::new();
        if let Err(e) = (&mut entry)
            .take(MAX_ADVISORY_BYTES + 1)
            .read_to_end(&mut bytes)
        {
            skip(&mut db, format!("entry {entry_name} cannot be read ({e})"));
            continue;
        }
        if bytes.len() as u64 > MAX_ADVISORY_BYTES {
            skip(
                &mut db,
                format!("entry {entry_name} is larger than {MAX_ADVISORY_BYTES} bytes"),
            );
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = db.add_json(&text) {
            skip(&mut db, format!("entry {entry_name} is not OSV JSON ({e})"));
        }
    }
    if skipped > NAMED_SKIPS {
        db.warnings.push(format!(
            "{name}: {skipped} entries skipped in all ({} more not named above)",
            skipped - NAMED_SKIPS
        ));
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use ::zip::write::SimpleFileOptions;

    use super::*;
    use crate::version::Ecosystem;

    const LODASH: &str = r#"{"id": "GHSA-35jh-r3h4-6jhm", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]}"#;

    /// A zip with the given (name, content) entries, deflated.
    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts)
                    .unwrap_or_else(|e| panic!("{e}"));
                continue;
            }
            w.start_file(*name, opts).unwrap_or_else(|e| panic!("{e}"));
            w.write_all(content.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        w.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
    }

    #[test]
    fn reads_json_entries_of_a_deflated_dump() {
        let bytes = zip_of(&[
            ("GHSA-35jh-r3h4-6jhm.json", LODASH),
            ("nested/", ""),
            ("README.txt", "not an advisory"),
        ]);
        let db = load(Cursor::new(bytes), "npm.zip").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.len(), 1);
        assert_eq!(db.files, 1);
        assert!(db.warnings.is_empty(), "{:?}", db.warnings);
        let mut u = false;
        assert_eq!(
            db.matches(Ecosystem::Npm, "lodash", "4.17.15", &mut u)
                .len(),
            1
        );
        assert!(db
            .matches(Ecosystem::Npm, "lodash", "4.17.21", &mut u)
            .is_empty());
    }

    #[test]
    fn non_osv_entries_are_skipped_and_counted() {
        let mut entries = vec![("GHSA-35jh-r3h4-6jhm.json".to_string(), LODASH.to_string())];
        for i in 0..7 {
            entries.push((format!("bad-{i}.json"), "{\"not\": \"osv\"}".to_string()));
        }
        let refs: Vec<(&str, &str)> = entries
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let db = load(Cursor::new(zip_of(&refs)), "all.zip").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.len(), 1);
        assert_eq!(db.files, 8);
        assert_eq!(db.warnings.len(), NAMED_SKIPS + 1, "{:?}", db.warnings);
        assert!(db.warnings[0].starts_with("all.zip: entry bad-0.json is not OSV JSON ("));
        assert_eq!(
            db.warnings[NAMED_SKIPS],
            "all.zip: 7 entries skipped in all (2 more not named above)"
        );
    }

    #[test]
    fn a_corrupt_archive_names_the_source() {
        let e = match load(Cursor::new(b"PK\x03\x04 truncated".to_vec()), "osv/npm.zip") {
            Ok(_) => panic!("a corrupt zip must be rejected"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.starts_with("osv/npm.zip is not a readable zip archive ("),
            "{e}"
        );
        let mut bytes = zip_of(&[("a.json", LODASH)]);
        // Damage the end-of-central-directory record.
        let n = bytes.len();
        bytes.truncate(n - 10);
        assert!(load(Cursor::new(bytes), "x.zip").is_err());
    }

    #[test]
    fn oversized_entries_are_skipped() {
        let big = format!("[{}]", " ".repeat(MAX_ADVISORY_BYTES as usize + 1));
        let db = load(
            Cursor::new(zip_of(&[("big.json", &big), ("ok.json", LODASH)])),
            "all.zip",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.len(), 1);
        assert!(
            db.warnings[0].contains("big.json is larger than"),
            "{:?}",
            db.warnings
        );
    }
}
