//! The OSV API client, as osv-scanner uses it: `POST /v1/querybatch` with
//! at most [`BATCH_SIZE`] `{package: {name, ecosystem}, version}` queries
//! per request, repeating the queries whose result carries a
//! `next_page_token` with that `page_token` until none does, then
//! `GET /v1/vulns/{id}` once per distinct id for the full records (the
//! batch answer holds only `id` and `modified`).
//!
//! Answers are cached per query and per advisory ([`super::cache`]), so a
//! second run over the same lockfiles sends no request at all. The network
//! itself is behind [`Transport`], so paging and batching are tested
//! without one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::cache::Cache;
use super::model::Advisory;

/// Default API base URL.
pub const DEFAULT_BASE: &str = "https://api.osv.dev";

/// Most queries in one `querybatch` request (the API's limit, and what
/// osv-scanner sends).
pub const BATCH_SIZE: usize = 1000;

/// Most pages followed for one batch before the answer is called broken
/// (a server that always returns a token would otherwise loop forever).
pub const MAX_PAGES: usize = 100;

/// Why a request produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The runner refused the destination: it is not in `grants.network`.
    #[error("the stage may not connect to {authority}")]
    Denied {
        /// `host:port` to add to `grants.network`.
        authority: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer: DNS, connection, TLS, timeout, body too large.
    #[error("request to {url} failed: {message}")]
    Failed {
        /// The URL requested.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
}

/// Why the API could not be queried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A request failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An answer was not the shape the OSV API documents.
    #[error("{url} answered something that is not an OSV API response: {message}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// Sends requests; the stage's implementation uses the SDK's HTTP client.
pub trait Transport {
    /// `POST url` with a JSON body; the response body on a 2xx status.
    fn post_json(&mut self, url: &str, body: &[u8]) -> Result<Vec<u8>, FetchError>;
    /// `GET url`; the response body on a 2xx status.
    fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// One package version to look up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Query {
    /// OSV ecosystem name (`npm`, `PyPI`, `crates.io`).
    pub ecosystem: String,
    /// Package name as the lockfile writes it.
    pub name: String,
    /// Exact version.
    pub version: String,
}

/// What a lookup did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Distinct queries.
    pub queries: usize,
    /// Queries answered from the cache.
    pub cached_queries: usize,
    /// `querybatch` requests sent (pages included).
    pub batch_requests: usize,
    /// Distinct advisory ids found.
    pub vulns: usize,
    /// Advisory records read from the cache.
    pub cached_vulns: usize,
    /// `vulns/{id}` requests sent.
    pub vuln_requests: usize,
}

/// The outcome of [`lookup`].
#[derive(Debug, Default)]
pub struct Lookup {
    /// The full advisory records.
    pub advisories: Vec<Advisory>,
    /// What was done.
    pub stats: Stats,
    /// Problems that did not stop the lookup (cache writes, odd ids).
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
struct WirePackage<'a> {
    name: &'a str,
    ecosystem: &'a str,
}

#[derive(Serialize)]
struct WireQuery<'a> {
    package: WirePackage<'a>,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<&'a str>,
}

#[derive(Serialize)]
struct WireBatch<'a> {
    queries: Vec<WireQuery<'a>>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    results: Vec<BatchResult>,
}

#[derive(Deserialize, Default)]
struct BatchResult {
    #[serde(default)]
    vulns: Option<Vec<VulnRef>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// `results[].vulns[]`: what the batch answer says of one advisory, and
/// what the cache keeps per query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct VulnRef {
    id: String,
    #[serde(default)]
    modified: Option<String>,
}

fn query_key(base: &str, q: &Query) -> String {
    format!(
        "osv-api querybatch\n{base}\n{}\n{}\n{}",
        q.ecosystem, q.name, q.version
    )
}

fn vuln_key(base: &str, v: &VulnRef) -> String {
    // The modification time is part of the key: an advisory changed
    // upstream is fetched again even while the old record is fresh.
    format!(
        "osv-api vuln\n{base}\n{}\n{}",
        v.id,
        v.modified.as_deref().unwrap_or("")
    )
}

/// OSV ids are `PREFIX-…` of letters, digits, `-`, `_`, `.` and `:`;
/// anything else (a `/`, `?`, `..`) would change the URL's path.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// Looks up every query (duplicates collapsed) at `base` (e.g.
/// `https://api.osv.dev`, without a trailing `/`), through `cache` when
/// given, and fetches the full record of every advisory found.
pub fn lookup(
    transport: &mut dyn Transport,
    base: &str,
    queries: &[Query],
    cache: Option<&Cache>,
    now: SystemTime,
) -> Result<Lookup, ApiError> {
    let mut out = Lookup::default();
    let distinct: BTreeSet<&Query> = queries.iter().collect();
    out.stats.queries = distinct.len();
    let mut found: BTreeMap<&Query, Vec<VulnRef>> = BTreeMap::new();
    let mut pending: Vec<&Query> = Vec::new();
    for q in distinct {
        let cached = cache
            .and_then(|c| c.get(&query_key(base, q), now))
            .and_then(|b| serde_json::from_slice::<Vec<VulnRef>>(&b).ok());
        match cached {
            Some(refs) => {
                out.stats.cached_queries += 1;
                found.insert(q, refs);
            }
            None => pending.push(q),
        }
    }

    let url = format!("{base}/v1/querybatch");
    for batch in pending.chunks(BATCH_SIZE) {
        let answers = query_batch(transport, &url, batch, &mut out.stats)?;
        for (q, refs) in batch.iter().zip(answers) {
            if let Some(c) = cache {
                let data = serde_json::to_vec(&refs).unwrap_or_default();
                if let Err(e) = c.put(&query_key(base, q), &data, now) {
                    out.warnings
                        .push(format!("cannot write the cache {}: {e}", c.dir().display()));
                }
            }
            found.insert(q, refs);
        }
    }

    let mut ids: BTreeMap<String, VulnRef> = BTreeMap::new();
    for refs in found.into_values() {
        for r in refs {
            ids.entry(r.id.clone()).or_insert(r);
        }
    }
    out.stats.vulns = ids.len();
    for r in ids.into_values() {
        if !valid_id(&r.id) {
            out.warnings.push(format!(
                "{url} named the advisory `{}`, which is not an OSV id; skipped",
                r.id.escape_debug()
            ));
            continue;
        }
        let key = vuln_key(base, &r);
        let cached = cache
            .and_then(|c| c.get(&key, now))
            .and_then(|b| serde_json::from_slice::<Advisory>(&b).ok().map(|a| (a, b)));
        let advisory = match cached {
            Some((a, _)) => {
                out.stats.cached_vulns += 1;
                a
            }
            None => {
                let vurl = format!("{base}/v1/vulns/{}", r.id);
                out.stats.vuln_requests += 1;
                let body = transport.get(&vurl)?;
                let a: Advisory = serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
                    url: vurl.clone(),
                    message: format!("not an OSV record ({e})"),
                })?;
                if let Some(c) = cache {
                    if let Err(e) = c.put(&key, &body, now) {
                        out.warnings
                            .push(format!("cannot write the cache {}: {e}", c.dir().display()));
                    }
                }
                a
            }
        };
        out.advisories.push(advisory);
    }
    Ok(out)
}

/// Sends one batch, following page tokens; the advisories of each query,
/// in the batch's order.
fn query_batch(
    transport: &mut dyn Transport,
    url: &str,
    batch: &[&Query],
    stats: &mut Stats,
) -> Result<Vec<Vec<VulnRef>>, ApiError> {
    let mut refs: Vec<Vec<VulnRef>> = vec![Vec::new(); batch.len()];
    // (index in batch, page token): the queries still to (re)send.
    let mut todo: Vec<(usize, Option<String>)> = (0..batch.len()).map(|i| (i, None)).collect();
    let mut pages = 0;
    while !todo.is_empty() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ApiError::Decode {
                url: url.to_string(),
                message: format!("still returning next_page_token after {MAX_PAGES} pages"),
            });
        }
        let wire = WireBatch {
            queries: todo
                .iter()
                .filter_map(|(i, token)| {
                    let q = batch.get(*i)?;
                    Some(WireQuery {
                        package: WirePackage {
                            name: &q.name,
                            ecosystem: &q.ecosystem,
                        },
                        version: &q.version,
                        page_token: token.as_deref(),
                    })
                })
                .collect(),
        };
        let body = serde_json::to_vec(&wire).map_err(|e| ApiError::Decode {
            url: url.to_string(),
            message: format!("cannot encode the query: {e}"),
        })?;
        stats.batch_requests += 1;
        let answer = transport.post_json(url, &body)?;
        let answer: BatchAnswer =
            serde_json::from_slice(&answer).map_err(|e| ApiError::Decode {
                url: url.to_string(),
                message: format!("not a querybatch answer ({e})"),
            })?;
        if answer.results.len() != todo.len() {
            return Err(ApiError::Decode {
                url: url.to_string(),
                message: format!(
                    "{} results for {} queries",
                    answer.results.len(),
                    todo.len()
                ),
            });
        }
        let mut next = Vec::new();
        for ((i, _), result) in todo.iter().zip(answer.results) {
            if let Some(slot) = refs.get_mut(*i) {
                slot.extend(result.vulns.unwrap_or_default());
            }
            if let Some(token) = result.next_page_token.filter(|t| !t.is_empty()) {
                next.push((*i, Some(token)));
            }
        }
        todo = next;
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A fake OSV API: `vulns` maps `name@version` to advisory ids; each
    /// query result holds at most `page` ids, with a page token for more.
    struct Fake {
        vulns: BTreeMap<String, Vec<String>>,
        page: usize,
        posts: Vec<serde_json::Value>,
        gets: Vec<String>,
        fail_get: Option<FetchError>,
    }

    impl Fake {
        fn new(page: usize) -> Fake {
            Fake {
                vulns: BTreeMap::new(),
                page,
                posts: Vec::new(),
                gets: Vec::new(),
                fail_get: None,
            }
        }
    }

    fn record(id: &str, name: &str) -> String {
        format!(
            r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"npm","name":"{name}"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{{"fixed":"9.9.9"}}]}}]}}]}}"#
        )
    }

    impl Transport for Fake {
        fn post_json(&mut self, _url: &str, body: &[u8]) -> Result<Vec<u8>, FetchError> {
            let v: serde_json::Value =
                serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}"));
            let mut results = Vec::new();
            for q in v["queries"].as_array().cloned().unwrap_or_default() {
                let key = format!(
                    "{}@{}",
                    q["package"]["name"].as_str().unwrap_or(""),
                    q["version"].as_str().unwrap_or("")
                );
                let all = self.vulns.get(&key).cloned().unwrap_or_default();
                let start: usize = q["page_token"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let end = (start + self.page).min(all.len());
                let vulns: Vec<serde_json::Value> = all[start..end]
                    .iter()
                    .map(|id| serde_json::json!({"id": id, "modified": "2024-01-01T00:00:00Z"}))
                    .collect();
                let mut r = serde_json::json!({});
                if !vulns.is_empty() {
                    r["vulns"] = serde_json::Value::Array(vulns);
                }
                if end < all.len() {
                    r["next_page_token"] = serde_json::Value::String(end.to_string());
                }
                results.push(r);
            }
            self.posts.push(v);
            Ok(serde_json::to_vec(&serde_json::json!({ "results": results })).unwrap_or_default())
        }

        fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
            self.gets.push(url.to_string());
            if let Some(e) = &self.fail_get {
                return Err(e.clone());
            }
            let id = url.rsplit('/').next().unwrap_or("");
            Ok(record(id, "pkg").into_bytes())
        }
    }

    fn q(name: &str, version: &str) -> Query {
        Query {
            ecosystem: "npm".into(),
            name: name.into(),
            version: version.into(),
        }
    }

    fn now() -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn batches_hold_at_most_1000_queries_and_duplicates_collapse() {
        let mut t = Fake::new(10);
        t.vulns
            .insert("p1500@1.0.0".into(), vec!["GHSA-aaaa".into()]);
        let mut queries: Vec<Query> = (0..2500).map(|i| q(&format!("p{i}"), "1.0.0")).collect();
        queries.push(q("p1500", "1.0.0"));
        let l =
            lookup(&mut t, "http://osv", &queries, None, now()).unwrap_or_else(|e| panic!("{e}"));
        let sizes: Vec<usize> = t
            .posts
            .iter()
            .map(|p| p["queries"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(l.stats.queries, 2500);
        assert_eq!(l.stats.batch_requests, 3);
        assert_eq!(t.gets, ["http://osv/v1/vulns/GHSA-aaaa"]);
        assert_eq!(l.advisories.len(), 1);
        // The wire shape of one query, as the OSV API documents it.
        assert_eq!(
            t.posts[0]["queries"][0],
            serde_json::json!({"package": {"name": "p0", "ecosystem": "npm"}, "version": "1.0.0"})
        );
    }

    #[test]
    fn page_tokens_are_followed_for_the_queries_that_have_them() {
        let mut t = Fake::new(2);
        t.vulns.insert(
            "a@1".into(),
            vec![
                "GHSA-1".into(),
                "GHSA-2".into(),
                "GHSA-3".into(),
                "GHSA-4".into(),
                "GHSA-5".into(),
            ],
        );
        t.vulns.insert("b@1".into(), vec!["GHSA-2".into()]);
        let l = lookup(
            &mut t,
            "http://osv",
            &[q("a", "1"), q("b", "1"), q("c", "1")],
            None,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sent: Vec<Vec<(String, Option<String>)>> = t
            .posts
            .iter()
            .map(|p| {
                p["queries"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|q| {
                        (
                            q["package"]["name"].as_str().unwrap_or("").to_string(),
                            q["page_token"].as_str().map(str::to_string),
                        )
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            sent,
            vec![
                vec![("a".into(), None), ("b".into(), None), ("c".into(), None)],
                vec![("a".into(), Some("2".into()))],
                vec![("a".into(), Some("4".into()))],
            ]
        );
        let mut ids: Vec<&str> = l.advisories.iter().map(|a| a.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["GHSA-1", "GHSA-2", "GHSA-3", "GHSA-4", "GHSA-5"]);
        assert_eq!(t.gets.len(), 5, "one GET per distinct id");
    }

    #[test]
    fn a_second_lookup_is_served_from_the_cache() {
        let dir = std::env::temp_dir().join(format!("sluice-osv-api-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = Cache::open(&dir, Duration::from_secs(3600)).unwrap_or_else(|e| panic!("{e}"));
        let mut t = Fake::new(10);
        t.vulns.insert("a@1".into(), vec!["GHSA-1".into()]);
        let queries = [q("a", "1"), q("b", "2")];
        let first = lookup(&mut t, "http://osv", &queries, Some(&cache), now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.posts.len(), t.gets.len()), (1, 1));
        let second = lookup(&mut t, "http://osv", &queries, Some(&cache), now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.posts.len(), t.gets.len()),
            (1, 1),
            "no request the second time"
        );
        assert_eq!(second.stats.cached_queries, 2);
        assert_eq!(second.stats.cached_vulns, 1);
        assert_eq!(first.advisories.len(), second.advisories.len());
        // A new package is queried alone; an expired cache is asked again.
        let _ = lookup(
            &mut t,
            "http://osv",
            &[q("a", "1"), q("c", "3")],
            Some(&cache),
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.posts.len(), 2);
        assert_eq!(t.posts[1]["queries"].as_array().map(Vec::len), Some(1));
        let later = now() + Duration::from_secs(3601);
        let _ = lookup(&mut t, "http://osv", &queries, Some(&cache), later)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.posts.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn http_errors_and_bad_answers_name_the_url() {
        let mut t = Fake::new(10);
        t.vulns.insert("a@1".into(), vec!["GHSA-1".into()]);
        t.fail_get = Some(FetchError::Status {
            url: "http://osv/v1/vulns/GHSA-1".into(),
            status: 503,
            body: "unavailable".into(),
        });
        let e = lookup(&mut t, "http://osv", &[q("a", "1")], None, now())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("http://osv/v1/vulns/GHSA-1 answered HTTP 503: unavailable")
        );

        struct Broken(&'static [u8]);
        impl Transport for Broken {
            fn post_json(&mut self, _: &str, _: &[u8]) -> Result<Vec<u8>, FetchError> {
                Ok(self.0.to_vec())
            }
            fn get(&mut self, _: &str) -> Result<Vec<u8>, FetchError> {
                Ok(b"{}".to_vec())
            }
        }
        let e = lookup(
            &mut Broken(b"<html>"),
            "http://osv",
            &[q("a", "1")],
            None,
            now(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.starts_with("http://osv/v1/querybatch answered something that is not an OSV API response: not a querybatch answer"),
            "{e}"
        );
        let e = lookup(
            &mut Broken(br#"{"results":[]}"#),
            "http://osv",
            &[q("a", "1")],
            None,
            now(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.ends_with("0 results for 1 queries"), "{e}");
    }

    #[test]
    fn endless_paging_and_hostile_ids_are_refused() {
        struct Endless;
        impl Transport for Endless {
            fn post_json(&mut self, _: &str, _: &[u8]) -> Result<Vec<u8>, FetchError> {
                Ok(
                    br#"{"results":[{"vulns":[{"id":"../../admin"}],"next_page_token":"x"}]}"#
                        .to_vec(),
                )
            }
            fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
                panic!("no GET expected, got {url}")
            }
        }
        let e = lookup(&mut Endless, "http://osv", &[q("a", "1")], None, now())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("after 100 pages"), "{e}");

        struct OnePage;
        impl Transport for OnePage {
            fn post_json(&mut self, _: &str, _: &[u8]) -> Result<Vec<u8>, FetchError> {
                Ok(br#"{"results":[{"vulns":[{"id":"../../admin"}]}]}"#.to_vec())
            }
            fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
                panic!("no GET expected, got {url}")
            }
        }
        let l = lookup(&mut OnePage, "http://osv", &[q("a", "1")], None, now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(l.advisories.is_empty());
        assert!(
            l.warnings[0].contains("is not an OSV id"),
            "{:?}",
            l.warnings
        );
    }
}
