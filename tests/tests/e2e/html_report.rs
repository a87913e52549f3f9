//! Issue 18 (point 3): `sluice report RUN` writes one static HTML page
//! about a run. Here on a real run with a failing test, lint findings
//! (one with a hostile message), an artifact whose name has quotes and a
//! SARIF artifact that is not JSON; the page is checked as text, and
//! rendered by headless Chromium for a screenshot.

use std::path::Path;
use std::process::Command;

use sluice_tests::{copy_tree, plugin, repo_root, Project};

const HOSTILE: &str = "<script>alert(1)</script>";

/// A run of `lint` (the lint fixture tree plus an external SARIF with a
/// hostile message), `test` (pytest's JUnit with a failure; a gate blocks it) and
/// `build` (an artifact named `q"uote's.txt` and a `broken.sarif`), with
/// `--keep-going` so all three finish. Returns the run id.
fn failing_run(p: &Project) -> String {
    copy_tree(&repo_root().join("tests/fixtures/lint"), p.path());
    p.write(
        "expected.xml",
        &std::fs::read_to_string(repo_root().join("tests/fixtures/test-stage/pytest.xml"))
            .expect("pytest.xml"),
    );
    p.write(
        "hostile.sarif",
        &format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"evil","rules":[{{"id":"X1","shortDescription":{{"text":"\"quoted\" <b>rule</b>"}}}}]}}}},
"results":[{{"ruleId":"X1","level":"error","message":{{"text":"{HOSTILE}"}},
"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"src/util.py"}},"region":{{"startLine":1,"startColumn":1}}}}}}]}}]}}]}}"#
        ),
    );
    let pipeline = r#"version: 1
name: report-e2e
stages:
  lint:
    uses: {lint}
    grants: { workspace: read, exec: [cat] }
    with:
      external:
        - { command: [cat, hostile.sarif], format: sarif }
  test:
    uses: {test}
    with:
      command: [sh, -c, "echo running tests; mkdir -p reports; cp expected.xml reports/junit.xml; exit 1"]
      junit: reports/junit.xml
    grants: { workspace: write, exec: [sh] }
    gates:
      - { metric: tests.failed, max: 0 }
  build:
    uses: {build}
    with:
      commands:
        - [sh, -c, "mkdir -p out && echo hi > out/q\\\"uote\\'s.txt && echo '{not json' > out/broken.sarif"]
      outputs: ["out/*"]
    grants: { workspace: write, exec: [sh] }
"#
    .replace("{lint}", &plugin("lint").display().to_string())
    .replace("{test}", &plugin("test").display().to_string())
    .replace("{build}", &plugin("build").display().to_string());
    p.write("sluice.yaml", &pipeline);
    let run = p.sluice(&["run", "--keep-going"]);
    assert_eq!(run.code, 1, "the test stage fails: {}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    assert_eq!(record["stages"]["test"]["state"], "blocked", "{record:#}");
    assert!(record["stages"]["build"]["state"] == "passed", "{record:#}");
    id
}

/// Every value of attribute `attr` (`src="…"`) in `page`.
fn attr_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &page[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn the_report_shows_the_run_and_escapes_what_plugins_wrote() {
    let p = Project::new();
    let id = failing_run(&p);
    let out = p.sluice(&["report", &id, "--out", "site/run.html"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("artifact(s) copied to site/run.files (every digest verified)"),
        "{}",
        out.all()
    );
    let page = p.read("site/run.html");

    // Header and timeline, with the state in words.
    assert!(page.contains("<html lang=\"en\">"));
    assert!(page.contains("<span class=\"badge s-failed\">failed</span></h1>"));
    assert!(page.contains("<section id=\"timeline\">"));
    for stage in ["lint", "test", "build"] {
        assert!(
            page.contains(&format!("role=\"img\" aria-label=\"{stage}: ")),
            "timeline bar of {stage}"
        );
    }
    // The failing test first, with its message.
    let tests = &page[page.find("<section id=\"tests\">").expect("tests section")..];
    let first_row = &tests[tests.find("<tbody>").expect("rows")..];
    assert!(
        first_row.starts_with(
            "<tbody>\n<tr><td><span class=\"badge o-failed\">failed</span></td><td><code>tests.test_pricing::test_bulk_discount_rounds_half_up</code>"
        ),
        "{}",
        &first_row[..400.min(first_row.len())]
    );
    assert!(page
        .contains("AssertionError: assert Decimal(&#39;17.99&#39;) == Decimal(&#39;18.00&#39;)"));
    // Findings grouped by rule, the hostile one escaped, with its snippet.
    assert!(
        page.matches("<details class=\"rule\"").count() >= 3,
        "groups"
    );
    assert!(page.contains("<h4><code>X1</code> — &quot;quoted&quot; &lt;b&gt;rule&lt;/b&gt;</h4>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains(HOSTILE), "raw script from a plugin");
    assert!(page.contains("&gt;    1 | "), "snippet of src/util.py");
    // The page's own script is the only one; nothing is loaded from afar.
    assert_eq!(page.matches("<script").count(), 1, "one script element");
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    for attr in ["src", "href", "action", "srcset", "poster", "data"] {
        for v in attr_values(&page, attr) {
            assert!(
                !v.starts_with("http:") && !v.starts_with("https:") && !v.starts_with("//"),
                "remote {attr}={v}"
            );
        }
    }
    // The artifact with quotes: escaped name, encoded link to a verified copy.
    assert!(
        page.contains(
            "<a href=\"run.files/build/out/q%22uote%27s.txt\">out/q&quot;uote&#39;s.txt</a>"
        ),
        "{}",
        &page[page.find("id=\"artifacts\"").unwrap_or(0)..][..1500]
    );
    assert_eq!(p.read("site/run.files/build/out/q\"uote's.txt"), "hi\n");
    // A SARIF artifact that is not JSON is a note, not a failure.
    assert!(
        page.contains("<code>out/broken.sarif</code> could not be read: not JSON:"),
        "note for broken.sarif"
    );
    // The test stage's log, escaped.
    assert!(page.contains("running tests"));
    // The plugins, with digests.
    let plugins = &page[page.find("<section id=\"plugins\">").expect("plugins")..];
    assert_eq!(plugins.matches("<code>sha256:").count(), 3, "{plugins}");
}

#[test]
fn an_unknown_run_or_a_tampered_artifact_writes_no_page() {
    let p = Project::new();
    let bad = p.sluice(&["report", "no-such-run", "--out", "r.html"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.starts_with("error: "), "{}", bad.all());
    assert!(!p.path().join("r.html").exists());

    let id = failing_run(&p);
    let record = p.record(&id);
    let junit = record["stages"]["test"]["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "junit.xml"))
        .cloned()
        .expect("junit.xml");
    let digest = junit["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    let blob = p
        .state_dir()
        .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]));
    let mut perms = std::fs::metadata(&blob).expect("blob").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).expect("chmod");
    std::fs::write(&blob, "<testsuite><testcase name=\"forged\"/></testsuite>").expect("tamper");
    let tampered = p.sluice(&["report", &id, "--out", "r.html"]);
    assert_eq!(tampered.code, 1, "{}", tampered.all());
    assert!(tampered.stderr.contains("junit.xml"), "{}", tampered.all());
    assert!(
        !p.path().join("r.html").exists(),
        "no page from a forged blob"
    );
}

#[test]
fn no_files_names_the_artifacts_and_open_runs_the_desktop_opener() {
    let p = Project::new();
    let id = failing_run(&p);
    // A stand-in `xdg-open` that records what it was asked to open. It
    // writes a side file and renames it into place, so the test never reads
    // the record between the shell's `>` creating it and `printf` filling it.
    let bin = p.path().join("fake-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let opener = bin.join("xdg-open");
    let record = p.path().join("opened.txt");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > {tmp} && mv {tmp} {record}\n",
            tmp = p.path().join("opened.txt.tmp").display(),
            record = record.display()
        ),
    )
    .expect("write opener");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = p.sluice_env(
        &["report", &id, "--no-files", "--open"],
        &[("PATH", path.as_str())],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let name = format!("sluice-report-{id}.html");
    assert!(
        out.stdout.contains(&format!("written to {name}")),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("opened with xdg-open"), "{}", out.all());
    let page = p.read(&name);
    assert!(page.contains(&format!(
        "get one with <code>sluice artifacts get {id} STAGE/NAME</code>"
    )));
    assert!(!page.contains("<a href=\"sluice-report-"), "no links");
    assert!(!p.path().join(format!("sluice-report-{id}.files")).exists());
    // The opener runs detached; give it a moment to write.
    for _ in 0..100 {
        if record.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(p.read("opened.txt"), name);
}

/// What a screen reader and a keyboard user need at the least: a language,
/// a title, headings that never skip a level, header cells in every table,
/// and a text alternative for every timeline bar.
fn accessibility_sanity(page: &str) {
    assert!(page.contains("<html lang=\"en\">"), "lang");
    assert!(page.contains("<title>sluice run "), "title");
    assert_eq!(page.matches("<h1>").count(), 1, "one h1");
    let mut last = 0;
    for (i, _) in page.match_indices("<h") {
        let Some(level) = page[i + 2..].chars().next().and_then(|c| c.to_digit(10)) else {
            continue;
        };
        assert!(level <= last + 1, "h{level} after h{last}");
        last = level;
    }
    assert_eq!(
        page.matches("<table").count(),
        page.matches("<thead><tr><th scope=\"col\">").count(),
        "every table has column headers"
    );
    let bars = page.matches("class=\"tl-bar ").count();
    assert!(bars > 0, "timeline bars");
    assert_eq!(
        bars,
        page.matches("role=\"img\" aria-label=\"").count(),
        "every bar has a text alternative"
    );
    assert!(
        page.contains("<label for=\"filter\">"),
        "the filter is labelled"
    );
}

/// Width and height from a PNG's IHDR chunk, and its pixel data inflated.
fn png_pixels(bytes: &[u8]) -> (u32, u32, u8, Vec<u8>) {
    use std::io::Read as _;
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (w, h, color) = (be(&bytes[16..20]), be(&bytes[20..24]), bytes[25]);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = be(&bytes[at..at + 4]) as usize;
        let kind = &bytes[at + 4..at + 8];
        if kind == b"IDAT" {
            idat.extend_from_slice(&bytes[at + 8..at + 8 + len]);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("inflate IDAT");
    (w, h, color, raw)
}

#[test]
fn headless_chromium_renders_the_report() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: this test renders the report in headless Chromium. \
                 Install it with `bash scripts/setup-delivery-services.sh` (apt-get install chromium)"
            )
        });
    let p = Project::new();
    let id = failing_run(&p);
    let out = p.sluice(&["report", &id, "--out", "run.html"]);
    assert_eq!(out.code, 0, "{}", out.all());
    accessibility_sanity(&p.read("run.html"));
    let shot = p.path().join("shot.png");
    let profile = p.path().join("chromium-profile");
    let page = p.path().join("run.html");
    let ran = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", page.display()))
        .env("HOME", p.path())
        .output()
        .expect("run chromium");
    assert!(
        ran.status.success() && shot.exists(),
        "chromium: {}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let bytes = std::fs::read(&shot).expect("screenshot");
    let (w, h, color, raw) = png_pixels(&bytes);
    assert_eq!((w, h), (1280, 2000), "window size");
    let channels = match color {
        2 => 3,
        6 => 4,
        other => panic!("unexpected PNG colour type {other}"),
    };
    assert_eq!(raw.len(), h as usize * (1 + w as usize * channels));
    // Not blank: a white page filters to a handful of byte values; text,
    // badges and the timeline give many.
    let mut seen = [false; 256];
    for b in &raw {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    assert!(distinct > 64, "only {distinct} byte values: a blank page?");
    // The page's own script runs under its CSP (allowed by its hash).
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .env("HOME", p.path())
        .output()
        .expect("run chromium --dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-js=\"on\""),
        "the inline script did not run: {}",
        &dom[..300.min(dom.len())]
    );
    // Kept for people to look at (docs/report.md shows one).
    if let Some(dir) = std::env::var_os("SLUICE_REPORT_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("report.png"));
    }
}
