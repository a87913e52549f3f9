use super::*;
use indexmap::IndexMap;
use sluice_pipeline::gates::{GateResult, GateSource, Verdict};
use sluice_record::{PluginRecord, StageRecord, StageState};

const XSS: &str = "<script>alert(1)</script>";

fn stage(state: StageState, start: &str, end: &str) -> StageRecord {
    let mut s = StageRecord::pending("x");
    s.state = state;
    s.started_at = Some(start.into());
    s.finished_at = Some(end.into());
    s
}

fn finding(rule: &str, i: usize, message: &str) -> sarif::Finding {
    sarif::Finding {
        tool: "lint".into(),
        rule: rule.into(),
        level: if i.is_multiple_of(3) {
            "error"
        } else {
            "warning"
        }
        .into(),
        message: message.into(),
        uri: Some(format!("src/file_{}.py", i % 50)),
        line: Some((i % 400) as u64 + 1),
        column: Some(1),
    }
}

/// A run with a failed `test`, a `lint` that found things and a `build`
/// whose artifact and plugin carry hostile text.
fn data(workspace: &Path, findings: Vec<sarif::Finding>) -> Data {
    let mut stages = IndexMap::new();
    let mut build = stage(
        StageState::Passed,
        "2026-01-01T10:00:00.000Z",
        "2026-01-01T10:00:02.000Z",
    );
    build.artifacts.push(ArtifactRecord {
        name: r#"dist/we"ird 'name'<b>.txt"#.into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 12,
        media_type: "text/plain".into(),
        role: None,
        annotations: Default::default(),
    });
    build.plugin = Some(PluginRecord {
        reference: "plugins/build.wasm".into(),
        digest: format!("sha256:{}", "cd".repeat(32)),
        name: Some("build".into()),
        version: Some("0.1.0".into()),
        kind: None,
        wit: None,
        signer: Some("<img src=x onerror=alert(1)>".into()),
        policy_rules: vec!["trusted[0] \"ci\"".into()],
        oci: None,
    });
    build.gates.push(GateResult {
        name: "size".into(),
        source: GateSource::Pipeline,
        verdict: Verdict::Fail,
        observed: Some(12.0),
        condition: Some("<= 10".into()),
        message: XSS.into(),
    });
    stages.insert("build".to_string(), build);
    stages.insert(
        "test".to_string(),
        stage(
            StageState::Failed,
            "2026-01-01T10:00:02.000Z",
            "2026-01-01T10:00:05.500Z",
        ),
    );
    stages.insert(
        "lint".to_string(),
        stage(
            StageState::Warned,
            "2026-01-01T10:00:00.500Z",
            "2026-01-01T10:00:01.000Z",
        ),
    );
    stages.insert("deploy".to_string(), StageRecord::pending("deploy"));
    let record = RunRecord::new("r1", "demo", "/x/sluice.yaml", "sha256:00", stages);
    let mut logs = HashMap::new();
    logs.insert(
        "test".to_string(),
        Ok(LogTail {
            text: format!("running\n</pre>{XSS}"),
            cut: false,
        }),
    );
    let mut links = HashMap::new();
    links.insert(
        r#"build/dist/we"ird 'name'<b>.txt"#.to_string(),
        escape::url_path(r#"r.files/build/dist/we"ird 'name'<b>.txt"#),
    );
    Data {
        record,
        status: "failed",
        generated_at: "2026-01-01T10:00:06Z".into(),
        logs,
        links,
        sarif: vec![
            Doc {
                stage: "lint".into(),
                name: "lint.sarif".into(),
                parsed: Ok(sarif::Log {
                    findings,
                    rules: vec![("R1".into(), "first rule".into())],
                }),
            },
            Doc {
                stage: "scan".into(),
                name: "scan.sarif".into(),
                parsed: sarif::parse("{\"runs\": ["),
            },
        ],
        junit: vec![Doc {
            stage: "test".into(),
            name: "junit.xml".into(),
            parsed: Ok(vec![junit::TestCase {
                class: "t".into(),
                name: "test_price".into(),
                time: Some(0.5),
                outcome: junit::Outcome::Failed,
                message: format!("assert 1 == 2 {XSS}"),
                detail: "trace".into(),
            }]),
        }],
        provenance: vec![],
        snippets: Snippets::new(workspace),
    }
}

/// Every `<script` opening tag in `page`.
fn script_tags(page: &str) -> Vec<&str> {
    page.match_indices("<script")
        .map(|(i, _)| {
            let end = page[i..].find('>').map_or(page.len(), |e| i + e + 1);
            &page[i..end]
        })
        .collect()
}

#[test]
fn everything_plugin_provided_is_escaped() {
    let ws = tempfile::tempdir().expect("tempdir");
    let page = render::page(data(ws.path(), vec![finding("R1", 0, XSS)]));
    assert!(!page.contains("<script>alert"), "raw script from data");
    assert!(!page.contains("<img src=x"), "raw markup from the signer");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The only script elements: the page's own one.
    assert_eq!(script_tags(&page), vec!["<script>"], "{page}");
    // The artifact link: quotes and markup percent-encoded, name escaped.
    assert!(
        page.contains(
            r#"<a href="r.files/build/dist/we%22ird%20%27name%27%3Cb%3E.txt">dist/we&quot;ird &#39;name&#39;&lt;b&gt;.txt</a>"#
        ),
        "{page}"
    );
    // The log cannot close its <pre>.
    assert!(page.contains("&lt;/pre&gt;&lt;script&gt;"));
}

#[test]
fn the_page_loads_nothing_and_is_accessible() {
    let ws = tempfile::tempdir().expect("tempdir");
    let page = render::page(data(ws.path(), vec![finding("R1", 0, "m")]));
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.contains("<title>sluice run r1 · demo · failed</title>"));
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
        assert!(!page.contains(remote), "{remote} in the page");
    }
    // Headings never skip a level.
    let mut last = 0;
    for (i, _) in page.match_indices("<h") {
        let Some(level) = page[i + 2..].chars().next().and_then(|c| c.to_digit(10)) else {
            continue;
        };
        assert!(level <= last + 1, "h{level} after h{last}");
        last = level;
    }
    // Timeline: state in words and an accessible label, not colour only.
    assert!(
        page.contains("role=\"img\" aria-label=\"test: failed, from +2.00 s to +5.50 s (3.50 s)\"")
    );
    assert!(page.contains("<span class=\"badge s-pending\">pending</span> not run"));
    // The failing test, with its message; the malformed SARIF as a note.
    assert!(page.contains("test_price"));
    assert!(page.contains("assert 1 == 2"));
    assert!(page.contains("<code>scan.sarif</code> could not be read: not JSON:"));
    // Tables have header cells.
    assert_eq!(
        page.matches("<table").count(),
        page.matches("<thead>").count()
    );
}

#[test]
fn ten_thousand_findings_stay_small_and_are_all_there() {
    let ws = tempfile::tempdir().expect("tempdir");
    let rules = ["R1", "R2", "R3", "R4", "R5"];
    let findings: Vec<_> = (0..10_000)
        .map(|i| {
            finding(
                rules[i % rules.len()],
                i,
                &format!("finding number {i}: something is wrong here <{i}>"),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let page = render::page(data(ws.path(), findings));
    let took = started.elapsed();
    // Stated in docs/report.md; not a timing assertion.
    eprintln!("10,000 findings: {} bytes rendered in {took:?}", page.len());
    assert!(page.len() < 4 * 1024 * 1024, "{} bytes", page.len());
    // PAGE rows per rule as HTML, the rest as inline data, every one there.
    assert_eq!(
        page.matches("<tr><td class=\"l-").count(),
        rules.len() * render::PAGE
    );
    assert_eq!(page.matches("data-more=").count(), rules.len());
    for i in [0, 999, 5_000, 9_999] {
        assert!(
            page.contains(&format!("finding number {i}: something is wrong here")),
            "finding {i} missing"
        );
    }
    assert!(page.contains("\\u003c9999\\u003e"), "data escaped as JSON");
}

#[test]
fn snippets_come_from_inside_the_workspace_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).expect("mkdir");
    std::fs::write(
        ws.join("src/a.py"),
        "one\ntwo\nthree <b>\nfour\nfive\nsix\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("secret.txt"), "secret\n").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), ws.join("link.txt"))
        .expect("symlink");
    let mut s = Snippets::new(&ws);
    let (first, lines) = s.around("src/a.py", 3).expect("snippet");
    assert_eq!(first, 1);
    assert_eq!(lines, ["one", "two", "three <b>", "four", "five"]);
    assert!(s.around("src/a.py", 99).is_none(), "past the end");
    assert!(s.around("../secret.txt", 1).is_none(), "..");
    let abs = dir.path().join("secret.txt").display().to_string();
    assert!(s.around(&abs, 1).is_none(), "absolute, outside");
    assert!(s.around(&format!("file://{abs}"), 1).is_none());
    assert!(s.around("link.txt", 1).is_none(), "symlink leaving it");

    let mut d = data(&ws, vec![]);
    d.sarif[0].parsed = Ok(sarif::Log {
        findings: vec![sarif::Finding {
            uri: Some("src/a.py".into()),
            line: Some(3),
            ..finding("R1", 0, "here")
        }],
        rules: vec![],
    });
    let page = render::page(d);
    assert!(page.contains("&gt;    3 | three &lt;b&gt;"), "{page}");
}

#[test]
fn log_tail_keeps_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&path, text).expect("write");
    let tail = log_tail(&path).expect("tail");
    assert!(tail.cut);
    assert_eq!(tail.text.lines().count(), LOG_TAIL_LINES);
    assert!(tail.text.ends_with("line 999"));
    let none = log_tail(&dir.path().join("missing")).expect("no log");
    assert!(none.text.is_empty() && !none.cut);
}
