//! Where advisories come from (`with.advisories`) and the cache options
//! (`with.cache`, `with.cache-max-age`).
//!
//! `advisories` is one source or a list of them; their advisories are
//! merged (a record two sources both hold is kept once):
//!
//! | written as | source |
//! |---|---|
//! | `security/osv` | a directory of OSV `.json` files (any nesting) |
//! | `security/npm-all.zip` | an OSV `all.zip` dump, read in place |
//! | `https://mirror.example.com/osv/PyPI/all.zip` | a dump downloaded over `grants.network`, cached |
//! | `{ api: https://api.osv.dev }` or `{ api: true }` | the OSV API over `grants.network`, cached |
//!
//! Paths are relative to the workspace, or absolute under
//! `/artifacts/in/<stage>/` when an earlier stage produced them. The
//! directory and zip forms are read before the scan (a missing or empty one
//! is a configuration error); the API is asked after the lockfiles are
//! read, for exactly the package versions found.

use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::api::{self, ApiError, FetchError, Query, Stats, Transport};
use super::cache::{self, Cache};
use super::zip::{self as osvzip, ZipError};
use super::{AdvisoryDb, OsvError};
use crate::config::{ConfigError, Roots};
use crate::deps::Dependency;

/// Where OSV publishes the per-ecosystem dumps (named in fixes).
pub const DUMPS_URL: &str =
    "https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip";

const KEY: &str = "with.advisories";

/// One entry of `with.advisories` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory, a `.zip` file or an `http(s)://` URL of a dump.
    Location(String),
    /// `{api: <base URL>}`; `None` for `{api: true}` (the public API).
    Api(Option<String>),
}

/// `with.advisories` as written: one entry or a list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdvisoriesOption {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Whether they were written as a list (for `with.advisories[i]` keys).
    pub list: bool,
}

impl From<String> for AdvisoriesOption {
    fn from(s: String) -> Self {
        AdvisoriesOption {
            entries: vec![Entry::Location(s)],
            list: false,
        }
    }
}

const SHAPES: &str = "write a directory, a .zip dump, an https:// URL of a dump, \
                      `{api: https://api.osv.dev}`, or a list of these";

fn entry(v: &serde_json::Value) -> Result<Entry, String> {
    match v {
        serde_json::Value::String(s) => Ok(Entry::Location(s.clone())),
        serde_json::Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| *k != "api") {
                return Err(format!("`{k}` is not a source option; {SHAPES}"));
            }
            match m.get("api") {
                Some(serde_json::Value::String(u)) => Ok(Entry::Api(Some(u.clone()))),
                Some(serde_json::Value::Bool(true)) | Some(serde_json::Value::Null) => {
                    Ok(Entry::Api(None))
                }
                _ => Err(format!(
                    "`api` takes the API's base URL (e.g. `{}`) or `true`",
                    api::DEFAULT_BASE
                )),
            }
        }
        other => Err(format!("`{other}` is not a source; {SHAPES}")),
    }
}

impl<'de> Deserialize<'de> for AdvisoriesOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Array(items) => {
                if items.is_empty() {
                    return Err(D::Error::custom(format!("is an empty list; {SHAPES}")));
                }
                let entries = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| entry(v).map_err(|e| D::Error::custom(format!("[{i}]: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(AdvisoriesOption {
                    entries,
                    list: true,
                })
            }
            other => Ok(AdvisoriesOption {
                entries: vec![entry(other).map_err(D::Error::custom)?],
                list: false,
            }),
        }
    }
}

/// `with.cache` as written: a directory, or `false` for no cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOption {
    /// `true` (the default directory) or `false` (no cache).
    Enabled(bool),
    /// A directory relative to the workspace.
    Dir(String),
}

impl<'de> Deserialize<'de> for CacheOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(CacheOption::Enabled(b)),
            serde_json::Value::String(s) => Ok(CacheOption::Dir(s)),
            other => Err(D::Error::custom(format!(
                "`{other}` is not a cache setting; give a directory relative to the workspace \
                 (default `{}`) or `false` for no cache",
                cache::DEFAULT_DIR
            ))),
        }
    }
}

/// One resolved advisory source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory of OSV `.json` files (resolved path).
    Dir(PathBuf),
    /// An OSV zip dump (resolved path).
    Zip(PathBuf),
    /// The URL of a zip dump.
    Url(String),
    /// The base URL of an OSV API (no trailing `/`).
    Api(String),
}

impl Source {
    /// Whether reading it needs `grants.network`.
    pub fn is_network(&self) -> bool {
        matches!(self, Source::Url(_) | Source::Api(_))
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Source::Dir(p) | Source::Zip(p) => p.display().to_string(),
            Source::Url(u) => u.clone(),
            Source::Api(b) => format!("the OSV API at {b}"),
        }
    }
}

/// Resolves `with.advisories`, checking that paths exist.
pub fn resolve(option: &AdvisoriesOption, roots: &Roots) -> Result<Vec<Source>, ConfigError> {
    option
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = if option.list {
                format!("{KEY}[{i}]")
            } else {
                KEY.to_string()
            };
            match e {
                Entry::Location(raw) => {
                    resolve_location(raw, roots).map_err(|message| ConfigError { key, message })
                }
                Entry::Api(base) => {
                    let base = base.as_deref().unwrap_or(api::DEFAULT_BASE).trim();
                    if !is_http_url(base) {
                        return Err(ConfigError {
                            key,
                            message: format!(
                                "`api: {base}` is not an http:// or https:// URL; use the API's \
                                 base URL, e.g. `{}`",
                                api::DEFAULT_BASE
                            ),
                        });
                    }
                    Ok(Source::Api(base.trim_end_matches('/').to_string()))
                }
            }
        })
        .collect()
}

fn is_http_url(s: &str) -> bool {
    ["https://", "http://"].iter().any(|scheme| {
        s.get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
            && s.len() > scheme.len()
            && !s[scheme.len()..].starts_with('/')
    })
}

fn resolve_location(raw: &str, roots: &Roots) -> Result<Source, String> {
    let fix = "give a directory of OSV .json files or an OSV .zip dump relative to the \
               workspace (e.g. `security/osv`, `security/PyPI-all.zip`), a path under \
               /artifacts/in/<stage>/ when an earlier stage produced it, or an https:// URL of a dump";
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(format!("is empty; {fix}"));
    }
    if is_http_url(trimmed) {
        return Ok(Source::Url(trimmed.to_string()));
    }
    let p = Path::new(trimmed);
    let resolved = if p.is_absolute() {
        let allowed = [&roots.workspace, &roots.inputs];
        if !allowed.iter().any(|r| p.starts_with(r)) || has_parent(p) {
            return Err(format!(
                "`{raw}` is outside the workspace and /artifacts/in; {fix}"
            ));
        }
        p.to_path_buf()
    } else {
        if has_parent(p) {
            return Err(format!("`{raw}` must not contain `..`; {fix}"));
        }
        roots.workspace.join(p)
    };
    if resolved.is_dir() {
        return Ok(Source::Dir(resolved));
    }
    if resolved.is_file() {
        if resolved
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            return Ok(Source::Zip(resolved));
        }
        return Err(format!("`{raw}` is a file but not a .zip dump; {fix}"));
    }
    let what = if resolved
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        "zip dump"
    } else {
        "directory"
    };
    Err(format!(
        "{what} `{raw}` not found (looked at {}); {fix}",
        resolved.display()
    ))
}

fn has_parent(p: &Path) -> bool {
    p.components().any(|c| matches!(c, Component::ParentDir))
}

/// The validated cache options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// The resolved directory; `None` when caching is off.
    pub dir: Option<PathBuf>,
    /// The directory as written (for messages).
    pub shown: String,
    /// How long an answer stays fresh.
    pub max_age: Duration,
}

impl CacheSettings {
    /// Validates `with.cache` and `with.cache-max-age`.
    pub fn resolve(
        cache: Option<&CacheOption>,
        max_age: Option<Duration>,
        roots: &Roots,
    ) -> Result<CacheSettings, ConfigError> {
        let raw = match cache {
            None | Some(CacheOption::Enabled(true)) => Some(cache::DEFAULT_DIR.to_string()),
            Some(CacheOption::Enabled(false)) => None,
            Some(CacheOption::Dir(d)) => Some(d.trim().to_string()),
        };
        let dir = match &raw {
            None => None,
            Some(d) => {
                let p = Path::new(d);
                if d.is_empty() || p.is_absolute() || has_parent(p) {
                    return Err(ConfigError {
                        key: "with.cache".into(),
                        message: format!(
                            "`{d}` must be a directory inside the workspace, relative to it \
                             (e.g. `{}`), or `false` for no cache",
                            cache::DEFAULT_DIR
                        ),
                    });
                }
                Some(roots.workspace.join(p))
            }
        };
        Ok(CacheSettings {
            dir,
            shown: raw.unwrap_or_default(),
            max_age: max_age.unwrap_or(cache::DEFAULT_MAX_AGE),
        })
    }
}

/// Why advisories could not be loaded from a source; each says which
/// source and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A directory could not be read.
    #[error("{KEY}: {error}; point it at a directory of OSV .json files")]
    Dir {
        /// What went wrong.
        error: OsvError,
    },
    /// A zip dump (file or download) is not a readable archive.
    #[error(
        "{KEY}: {error}; download the dump again (from {DUMPS_URL}) or unpack it into a directory"
    )]
    Zip {
        /// What went wrong.
        error: ZipError,
    },
    /// A zip file could not be opened.
    #[error("{KEY}: cannot open {}: {error}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A local source holds no advisory.
    #[error(
        "{KEY}: `{source_name}` holds no OSV advisories ({files} .json files read); an empty \
         database would pass every vulnerability gate, so point it at the directory or dump \
         that holds the advisory .json files"
    )]
    Empty {
        /// The source.
        source_name: String,
        /// `.json` files or entries read.
        files: usize,
    },
    /// The runner refused the destination.
    #[error(
        "{KEY}: reading {source_name} needs network access to `{authority}`; add \
         `{authority}` to the stage's grants.network (or use a local directory or .zip dump)"
    )]
    Denied {
        /// The source.
        source_name: String,
        /// `host:port` to add.
        authority: String,
    },
    /// A download or API request failed.
    #[error(
        "{KEY}: {source_name}: {error}; check the URL and that the stage can reach it \
         (each request times out after {} s)", super::http::TIMEOUT.as_secs()
    )]
    Fetch {
        /// The source.
        source_name: String,
        /// What went wrong.
        error: ApiError,
    },
}

impl SourceError {
    /// The `host:port` the stage was refused, if that is the problem.
    pub fn denied(&self) -> Option<&str> {
        match self {
            SourceError::Denied { authority, .. } => Some(authority),
            _ => None,
        }
    }

    fn fetch(source_name: String, error: ApiError) -> SourceError {
        match error {
            ApiError::Fetch(FetchError::Denied { authority }) => SourceError::Denied {
                source_name,
                authority,
            },
            error => SourceError::Fetch { source_name, error },
        }
    }
}

/// Advisories and what loading them did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The merged advisories (warnings included).
    pub db: AdvisoryDb,
    /// Lines for the log: what came from where.
    pub notes: Vec<String>,
}

/// Cache key of a downloaded dump.
fn dump_key(url: &str) -> String {
    format!("osv dump\n{url}")
}

/// Loads the directory, zip and dump-URL sources (not the API), each of
/// which must hold at least one advisory. `download` fetches dump URLs;
/// `cache` keeps them.
pub fn load_offline(
    sources: &[Source],
    download: &mut dyn Transport,
    cache: Option<&Cache>,
    now: SystemTime,
) -> Result<Loaded, SourceError> {
    let mut out = Loaded::default();
    for s in sources {
        let name = s.name();
        let db = match s {
            Source::Api(_) => continue,
            Source::Dir(dir) => {
                AdvisoryDb::load(dir).map_err(|error| SourceError::Dir { error })?
            }
            Source::Zip(path) => {
                let file = std::fs::File::open(path).map_err(|error| SourceError::Open {
                    path: path.clone(),
                    error,
                })?;
                osvzip::load(std::io::BufReader::new(file), &name)
                    .map_err(|error| SourceError::Zip { error })?
            }
            Source::Url(url) => {
                let key = dump_key(url);
                let cached = cache.and_then(|c| c.get(&key, now)).and_then(|bytes| {
                    // A cached dump that no longer reads is fetched again.
                    osvzip::load(Cursor::new(bytes), &name).ok()
                });
                match cached {
                    Some(db) => {
                        out.notes.push(format!("{url}: served from the cache"));
                        db
                    }
                    None => {
                        let bytes = download
                            .get(url)
                            .map_err(|e| SourceError::fetch(name.clone(), ApiError::Fetch(e)))?;
                        let size = bytes.len();
                        let db = osvzip::load(Cursor::new(&bytes), &name)
                            .map_err(|error| SourceError::Zip { error })?;
                        out.notes.push(format!("{url}: downloaded {size} bytes"));
                        if let Some(c) = cache {
                            if let Err(e) = c.put(&key, &bytes, now) {
                                out.db.warnings.push(format!(
                                    "cannot write the cache {}: {e}",
                                    c.dir().display()
                                ));
                            }
                        }
                        db
                    }
                }
            }
        };
        if db.is_empty() {
            return Err(SourceError::Empty {
                source_name: name,
                files: db.files,
            });
        }
        out.notes
            .push(format!("loaded {} advisories from {name}", db.len()));
        out.db.merge(db);
    }
    Ok(out)
}

/// Asks every API source about `deps` and merges the answers into `db`.
pub fn query_apis(
    sources: &[Source],
    deps: &[Dependency],
    transport: &mut dyn Transport,
    cache: Option<&Cache>,
    now: SystemTime,
    loaded: &mut Loaded,
) -> Result<(), SourceError> {
    let queries: Vec<Query> = deps
        .iter()
        .map(|d| Query {
            ecosystem: d.ecosystem.osv_name().to_string(),
            name: d.name.clone(),
            version: d.version.clone(),
        })
        .collect();
    for s in sources {
        let Source::Api(base) = s else {
            continue;
        };
        let l = api::lookup(transport, base, &queries, cache, now)
            .map_err(|e| SourceError::fetch(s.name(), e))?;
        loaded.notes.push(api_note(base, &l.stats));
        loaded.db.warnings.extend(l.warnings);
        loaded.db.merge(AdvisoryDb::from_advisories(l.advisories));
    }
    Ok(())
}

fn api_note(base: &str, s: &Stats) -> String {
    format!(
        "OSV API {base}: {} package versions ({} from the cache) in {} querybatch requests; \
         {} advisories ({} from the cache, {} fetched)",
        s.queries, s.cached_queries, s.batch_requests, s.vulns, s.cached_vulns, s.vuln_requests
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn roots(ws: &Path) -> Roots {
        Roots {
            workspace: ws.to_path_buf(),
            inputs: PathBuf::from("/artifacts/in"),
        }
    }

    fn option(json: &str) -> Result<AdvisoriesOption, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-osv-src-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    const LODASH: &str = r#"{"id": "GHSA-35jh-r3h4-6jhm",
        "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]}"#;

    fn zip_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, c) in entries {
            w.start_file(*n, ::zip::write::SimpleFileOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
            w.write_all(c.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
        w.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
    }

    #[test]
    fn every_shape_is_classified() {
        let ws = tmp("shapes");
        std::fs::create_dir_all(ws.join("osv")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(ws.join("npm.zip"), zip_bytes(&[("a.json", LODASH)]))
            .unwrap_or_else(|e| panic!("{e}"));
        let o = option(
            r#"["osv", "npm.zip", "https://mirror.example/PyPI/all.zip", {"api": true}, {"api": "http://127.0.0.1:9/"}]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = resolve(&o, &roots(&ws)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s,
            vec![
                Source::Dir(ws.join("osv")),
                Source::Zip(ws.join("npm.zip")),
                Source::Url("https://mirror.example/PyPI/all.zip".into()),
                Source::Api("https://api.osv.dev".into()),
                Source::Api("http://127.0.0.1:9".into()),
            ]
        );
        let single = option(r#""osv""#).unwrap_or_else(|e| panic!("{e}"));
        assert!(!single.list);
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn bad_shapes_name_the_entry_and_the_fix() {
        let ws = tmp("bad");
        std::fs::write(ws.join("notes.txt"), "x").unwrap_or_else(|e| panic!("{e}"));
        assert!(option("[]")
            .err()
            .unwrap_or_default()
            .contains("empty list"));
        let e = option(r#"["osv", {"url": "x"}]"#).err().unwrap_or_default();
        assert!(e.starts_with("[1]: `url` is not a source option"), "{e}");
        assert!(option(r#"{"api": 3}"#)
            .err()
            .unwrap_or_default()
            .contains("`api` takes"));
        assert!(option("7")
            .err()
            .unwrap_or_default()
            .contains("`7` is not a source"));
        let err = |json: &str| match resolve(&option(json).unwrap_or_default(), &roots(&ws)) {
            Ok(s) => panic!("{json} gave {s:?}"),
            Err(e) => e.to_string(),
        };
        let e = err(r#"["notes.txt"]"#);
        assert!(
            e.starts_with("with.advisories[0]: `notes.txt` is a file but not a .zip dump"),
            "{e}"
        );
        assert!(err(r#"{"api": "ftp://x"}"#).starts_with("with.advisories: `api: ftp://x` is not"));
        assert!(err(r#""missing.zip""#)
            .starts_with("with.advisories: zip dump `missing.zip` not found"));
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn cache_settings() {
        let ws = PathBuf::from("/workspace");
        let r = roots(&ws);
        let d = CacheSettings::resolve(None, None, &r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.dir, Some(ws.join(".sluice-osv-cache")));
        assert_eq!(d.max_age, Duration::from_secs(3600));
        let off = CacheSettings::resolve(Some(&CacheOption::Enabled(false)), None, &r)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(off.dir, None);
        for bad in ["../up", "/tmp/x", ""] {
            let e = CacheSettings::resolve(Some(&CacheOption::Dir(bad.into())), None, &r)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("with.cache: "), "{bad}: {e}");
        }
        let e = serde_json::from_str::<CacheOption>("3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a cache setting"), "{e}");
    }

    struct Dumps {
        body: Vec<u8>,
        gets: usize,
    }

    impl Transport for Dumps {
        fn post_json(&mut self, url: &str, _: &[u8]) -> Result<Vec<u8>, FetchError> {
            panic!("no POST expected, got {url}")
        }
        fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
            self.gets += 1;
            if url.contains("denied") {
                return Err(FetchError::Denied {
                    authority: "mirror.example:443".into(),
                });
            }
            if url.contains("slow") {
                return Err(FetchError::Failed {
                    url: url.into(),
                    message: "HTTP request failed: connection timeout".into(),
                });
            }
            if url.contains("missing") {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: 404,
                    body: "Not Found".into(),
                });
            }
            Ok(self.body.clone())
        }
    }

    #[test]
    fn zips_dirs_and_urls_merge_and_urls_are_cached() {
        let ws = tmp("load");
        std::fs::create_dir_all(ws.join("osv")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(ws.join("osv/lodash.json"), LODASH).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(ws.join("npm.zip"), zip_bytes(&[("a.json", LODASH)]))
            .unwrap_or_else(|e| panic!("{e}"));
        let cache = Cache::open(&ws.join(".cache"), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let other = LODASH.replace("GHSA-35jh-r3h4-6jhm", "GHSA-other");
        let mut t = Dumps {
            body: zip_bytes(&[("b.json", &other)]),
            gets: 0,
        };
        let sources = [
            Source::Dir(ws.join("osv")),
            Source::Zip(ws.join("npm.zip")),
            Source::Url("https://mirror.example/npm/all.zip".into()),
        ];
        let now = SystemTime::now();
        let l = load_offline(&sources, &mut t, Some(&cache), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            l.db.len(),
            2,
            "the same record from two sources is kept once"
        );
        let again =
            load_offline(&sources, &mut t, Some(&cache), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.db.len(), 2);
        assert_eq!(t.gets, 1, "the second load is served from the cache");
        assert!(again
            .notes
            .iter()
            .any(|n| n.ends_with("served from the cache")));
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn load_errors_name_the_source_and_the_fix() {
        let ws = tmp("errors");
        std::fs::write(ws.join("bad.zip"), b"not a zip").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(ws.join("empty.zip"), zip_bytes(&[("README", "x")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut t = Dumps {
            body: b"<html>".to_vec(),
            gets: 0,
        };
        let mut err = |s: Source| match load_offline(&[s], &mut t, None, SystemTime::now()) {
            Ok(_) => panic!("must fail"),
            Err(e) => e,
        };
        let e = err(Source::Zip(ws.join("bad.zip"))).to_string();
        assert!(e.contains("bad.zip is not a readable zip archive"), "{e}");
        assert!(e.contains("download the dump again"), "{e}");
        let e = err(Source::Zip(ws.join("empty.zip"))).to_string();
        assert!(
            e.contains("holds no OSV advisories (0 .json files read)"),
            "{e}"
        );
        let e = err(Source::Url("https://mirror.example/missing/all.zip".into())).to_string();
        assert!(
            e.starts_with("with.advisories: https://mirror.example/missing/all.zip: https://mirror.example/missing/all.zip answered HTTP 404: Not Found; check the URL"),
            "{e}"
        );
        let e = err(Source::Url("https://mirror.example/x/all.zip".into())).to_string();
        assert!(e.contains("is not a readable zip archive"), "{e}");
        let e = err(Source::Url("https://slow.example/all.zip".into())).to_string();
        assert_eq!(
            e,
            "with.advisories: https://slow.example/all.zip: request to https://slow.example/all.zip \
             failed: HTTP request failed: connection timeout; check the URL and that the stage can \
             reach it (each request times out after 60 s)"
        );
        let denied = err(Source::Url("https://denied.example/all.zip".into()));
        assert_eq!(denied.denied(), Some("mirror.example:443"));
        assert!(denied
            .to_string()
            .contains("add `mirror.example:443` to the stage's grants.network"));
        let _ = std::fs::remove_dir_all(&ws);
    }
}
