//! The `scan` stage with OSV data as users get it: per-ecosystem `all.zip`
//! dumps read in place, and the OSV API over the network grant.
//!
//! The reference is the directory form (`advisories: osv`, as in
//! `stage_scan.rs`): each other form must find exactly the same
//! vulnerabilities in `tests/fixtures/scan/workspace`.
//!
//! The API tests talk to `tests/fixtures/scan/osv-api/server.py`, a
//! loopback **stand-in** for the OSV API, not the real service (tests have
//! no internet access). It serves the response shapes of the public OSV
//! API schema (`/v1/querybatch` answers with `results[].vulns[].{id,
//! modified}` and `next_page_token`, `/v1/vulns/{id}` full records) from
//! the fixture records in `tests/fixtures/scan/osv`; it answers a query
//! with every advisory naming the package, without evaluating version
//! ranges, and pages one advisory per result so paging is exercised. It
//! counts the requests it gets (`GET /stats`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sluice_tests::{copy_tree, plugin, repo_root, Project, PyServer, Run};

/// A project holding the fixture workspace, the directory database under
/// `osv/`, and a pipeline whose stage `scan` has the given lines.
fn project(stage_body: &str) -> Project {
    let p = Project::new();
    let fixtures = repo_root().join("tests/fixtures/scan");
    copy_tree(&fixtures.join("workspace"), p.path());
    copy_tree(&fixtures.join("osv"), &p.path().join("osv"));
    write_pipeline(&p, stage_body);
    p
}

fn write_pipeline(p: &Project, stage_body: &str) {
    let pipeline = format!(
        "version: 1\nname: scan-osv\nstages:\n  scan:\n    uses: {}\n{stage_body}",
        plugin("scan").display()
    );
    p.write("sluice.yaml", &pipeline);
}

/// Builds the per-ecosystem `all.zip` dumps from the directory database
/// into `dir` (see `tests/fixtures/scan/osv-zip/make_zips.py`).
fn make_zips(dir: &Path) {
    let fixtures = repo_root().join("tests/fixtures/scan");
    let out = Command::new("python3")
        .arg(fixtures.join("osv-zip/make_zips.py"))
        .arg(fixtures.join("osv"))
        .arg(dir)
        .output()
        .expect("python3 builds the zip fixtures");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stage(p: &Project, run: &Run) -> Value {
    p.record(&run.run_id())["stages"]["scan"].clone()
}

fn metric(stage: &Value, name: &str) -> Option<f64> {
    stage["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_f64())
}

/// The vulnerability findings of a passed run, as comparable tuples
/// (package, version, id, aliases, severity, fixed, file, line), and the
/// `vulns.*` metrics.
fn vulns(p: &Project, run: &Run) -> (Vec<String>, Vec<(String, Option<f64>)>) {
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(p, run);
    assert_eq!(s["state"], "passed", "{s:#}");
    let report: Value = serde_json::from_str(&p.artifact(&s, "scan.json")).expect("scan.json");
    let mut found: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .map(|f| {
            let mut aliases: Vec<String> = f["aliases"]
                .as_array()
                .map(|a| a.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            aliases.sort();
            format!(
                "{} {} {} {:?} {} {} {}:{}",
                f["package"],
                f["version"],
                f["id"],
                aliases,
                f["severity"],
                f["fixed"],
                f["file"],
                f["line"]
            )
        })
        .collect();
    found.sort();
    let metrics = [
        "vulns.critical",
        "vulns.high",
        "vulns.medium",
        "vulns.low",
        "vulns.unknown",
        "vulns.total",
    ]
    .iter()
    .map(|m| (m.to_string(), metric(&s, m)))
    .collect();
    (found, metrics)
}

const DIR_WITH: &str = "    grants: { workspace: read }
    with:
      advisories: osv
      secrets: false
";

/// The findings of the directory form, the reference.
fn reference() -> (Vec<String>, Vec<(String, Option<f64>)>) {
    let p = project(DIR_WITH);
    let run = p.sluice(&["run"]);
    let r = vulns(&p, &run);
    assert!(
        r.0.len() >= 9,
        "the fixture holds at least 9 vulnerable packages: {r:?}"
    );
    r
}

#[test]
fn zip_dumps_find_what_the_directory_finds() {
    let expected = reference();
    let p = project(
        "    grants: { workspace: read }
    with:
      advisories: [dumps/PyPI-all.zip, dumps/npm-all.zip, dumps/crates.io-all.zip]
      secrets: false
",
    );
    make_zips(&p.path().join("dumps"));
    let run = p.sluice(&["run"]);
    assert_eq!(vulns(&p, &run), expected);
    let log = p.log(&run.run_id(), "scan");
    // The entry that is not OSV JSON is skipped, named and counted.
    assert!(
        log.contains("npm-all.zip: entry NOT-OSV-0001.json is not OSV JSON ("),
        "{log}"
    );
    assert!(
        log.contains("loaded 4 advisories from /workspace/dumps/npm-all.zip"),
        "{log}"
    );

    // A corrupt dump is a configuration error naming the file and the fix.
    std::fs::write(p.path().join("dumps/npm-all.zip"), b"PK\x03\x04 cut short").expect("write");
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0);
    let s = stage(&p, &run);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("npm-all.zip is not a readable zip archive")
            && reason.contains("download the dump again"),
        "{reason}"
    );
}

/// Starts the OSV API stand-in on the fixture records.
fn osv_api() -> PyServer {
    let script = std::fs::read_to_string(repo_root().join("tests/fixtures/scan/osv-api/server.py"))
        .expect("read server.py");
    let osv = repo_root().join("tests/fixtures/scan/osv");
    PyServer::start(&script, &[osv.to_str().expect("utf-8 path")])
}

fn stats(server: &PyServer) -> Value {
    let (code, body) = sluice_tests::http_get(server.port, "/stats").expect("GET /stats");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("stats JSON")
}

#[test]
fn the_osv_api_finds_what_the_directory_finds_in_batches_and_caches() {
    let expected = reference();
    let server = osv_api();
    let with = format!(
        "    grants:
      workspace: write
      network: [\"127.0.0.1:{port}\"]
    with:
      advisories: {{ api: \"{url}\" }}
      secrets: false
      cache-max-age: 1h
",
        port = server.port,
        url = server.url()
    );
    let p = Project::new();
    copy_tree(&repo_root().join("tests/fixtures/scan/workspace"), p.path());
    write_pipeline(&p, &with);

    let run = p.sluice(&["run"]);
    assert_eq!(vulns(&p, &run), expected);
    let first = stats(&server);
    let batches: Vec<u64> = first["queries_per_batch"]
        .as_array()
        .expect("queries_per_batch")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let log = p.log(&run.run_id(), "scan");
    // "OSV API <url>: <n> package versions (…": the distinct queries.
    let packages: u64 = log
        .split("package versions")
        .next()
        .and_then(|head| head.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no query count in the log: {log}"));
    assert!(packages >= 9, "{log}");
    // Every package version went out in the first request (one batch, not
    // one request per package); the later requests are pages of the
    // packages with more than one advisory.
    assert_eq!(batches.first().copied(), Some(packages), "{first:#}");
    assert!(
        batches.len() > 1 && first["page_tokens"].as_u64() > Some(0),
        "{first:#}"
    );
    assert_eq!(first["not_found"], 0, "{first:#}");
    let fetched = first["vulns"].as_u64().unwrap_or_default();
    assert!(fetched >= 9, "one GET per advisory: {first:#}");
    assert!(
        log.contains(&format!(
            "{packages} package versions (0 from the cache) in {} querybatch requests",
            batches.len()
        )),
        "{log}"
    );
    assert!(p.path().join(".sluice-osv-cache").is_dir());

    // The second run is answered from the cache: no request at all.
    let run = p.sluice(&["run"]);
    assert_eq!(vulns(&p, &run), expected);
    let second = stats(&server);
    assert_eq!(second["querybatch"], first["querybatch"], "{second:#}");
    assert_eq!(second["vulns"], first["vulns"], "{second:#}");
    let log = p.log(&run.run_id(), "scan");
    assert!(
        log.contains(&format!(
            "{packages} package versions ({packages} from the cache) in 0 querybatch requests"
        )),
        "{log}"
    );

    // With a read-only workspace nothing is cached, and the log says why.
    let p2 = Project::new();
    copy_tree(
        &repo_root().join("tests/fixtures/scan/workspace"),
        p2.path(),
    );
    write_pipeline(&p2, &with.replace("workspace: write", "workspace: read"));
    let run = p2.sluice(&["run"]);
    assert_eq!(vulns(&p2, &run), expected);
    let log = p2.log(&run.run_id(), "scan");
    assert!(
        log.contains("not caching OSV answers: cannot write `.sluice-osv-cache`"),
        "{log}"
    );
    let third = stats(&server);
    assert!(
        third["querybatch"].as_u64() > first["querybatch"].as_u64(),
        "{third:#}"
    );
}

#[test]
fn the_osv_api_without_the_network_grant_names_the_grant_to_add() {
    let server = osv_api();
    let p = Project::new();
    copy_tree(&repo_root().join("tests/fixtures/scan/workspace"), p.path());
    write_pipeline(
        &p,
        &format!(
            "    grants: {{ workspace: write }}
    with:
      advisories: {{ api: \"{}\" }}
      secrets: false
",
            server.url()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "failed", "{s:#}");
    let reason = s["reason"].as_str().unwrap_or_default();
    let authority = format!("127.0.0.1:{}", server.port);
    assert!(
        reason.contains("denied")
            && reason.contains("grants.network")
            && reason.contains(&authority),
        "{reason}"
    );
    let log = p.log(&run.run_id(), "scan");
    assert!(
        log.contains(&format!("add `{authority}` to the stage's grants.network")),
        "{log}"
    );
    assert_eq!(stats(&server)["querybatch"], 0);
}

#[test]
fn mirrored_dumps_are_downloaded_once_and_http_errors_name_the_url() {
    let expected = reference();
    let server = osv_api();
    let base = server.url();
    let with = |ecosystems: &[&str]| {
        let urls: Vec<String> = ecosystems
            .iter()
            .map(|e| format!("\"{base}/mirror/{e}/all.zip\""))
            .collect();
        format!(
            "    grants:
      workspace: write
      network: [\"127.0.0.1:{port}\"]
    with:
      advisories: [{}]
      secrets: false
",
            urls.join(", "),
            port = server.port
        )
    };
    let p = Project::new();
    copy_tree(&repo_root().join("tests/fixtures/scan/workspace"), p.path());
    write_pipeline(&p, &with(&["PyPI", "npm", "crates.io"]));
    let run = p.sluice(&["run"]);
    assert_eq!(vulns(&p, &run), expected);
    assert_eq!(stats(&server)["dumps"], 3);
    let log = p.log(&run.run_id(), "scan");
    assert!(
        log.contains(&format!("{base}/mirror/npm/all.zip: downloaded ")),
        "{log}"
    );

    // Within cache-max-age the dumps come from the cache.
    let run = p.sluice(&["run"]);
    assert_eq!(vulns(&p, &run), expected);
    assert_eq!(stats(&server)["dumps"], 3);
    let log = p.log(&run.run_id(), "scan");
    assert!(
        log.contains(&format!("{base}/mirror/npm/all.zip: served from the cache")),
        "{log}"
    );

    // A dump the mirror does not have: the URL, the status and the fix.
    write_pipeline(&p, &with(&["Go"]));
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "failed", "{s:#}");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("{base}/mirror/Go/all.zip answered HTTP 404"))
            && reason.contains("check the URL"),
        "{reason}"
    );
}
