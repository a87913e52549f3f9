//! The page itself. Markup is written here only; every value that comes
//! from a plugin, the workspace or the run record's free text goes through
//! [`e`] (HTML) or [`escape::script_json`] (inline data).

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::escape::{self, html as e};
use super::junit::{Outcome, TestCase};
use super::sarif::{Finding, Log};
use super::{Data, Doc};

/// Finding rows per rule written as HTML; the rest are inline data that
/// "show more" turns into rows, this many at a time.
pub(crate) const PAGE: usize = 200;
/// Rule groups shown open; the rest start collapsed.
const OPEN_GROUPS: usize = 3;
/// Passed test cases listed (failed, errored and skipped ones all are).
const PASSED_SHOWN: usize = 500;

const STYLE: &str = r#"
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}h4{display:inline;font-size:14px;margin:0}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
th{background:var(--alt)}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--alt);padding:6px;overflow:auto;margin:4px 0;white-space:pre-wrap;word-break:break-all}
pre.log{max-height:420px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;border:1px solid}
.s-passed,.v-pass,.o-passed{color:#116329;border-color:#4ac26b;background:#dafbe1}
.s-warned,.v-warn,.o-skipped,.l-warning{color:#7d4e00;border-color:#d4a72c;background:#fff8c5}
.s-failed,.s-blocked,.v-fail,.o-failed,.o-error,.l-error{color:#82071e;border-color:#ff8182;background:#ffebe9}
.s-skipped,.s-cancelled,.s-pending,.v-inconclusive,.l-note,.l-none{color:#424a53;border-color:#afb8c1;background:#f6f8fa}
.s-running,.s-awaiting-approval{color:#0550ae;border-color:#54aeff;background:#ddf4ff}
.muted{color:var(--muted)}.note{border-left:4px solid #d4a72c;background:#fff8c5;padding:4px 8px;margin:6px 0}
.tl{border:1px solid var(--line);padding:8px}.tl-row{display:grid;grid-template-columns:160px 1fr 200px;gap:8px;align-items:center;margin:3px 0}
.tl-track{position:relative;height:18px;background:var(--alt)}
.tl-bar{position:absolute;top:0;bottom:0;min-width:2px;border:1px solid}
.tl-bar.s-failed,.tl-bar.s-blocked{background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(130,7,30,.35) 4px 8px)}
.tl-bar.s-cancelled,.tl-bar.s-skipped{border-style:dashed}
.tl-axis{display:flex;justify-content:space-between;margin-left:168px;margin-right:208px}
details>summary{cursor:pointer;margin:4px 0}
dl.hdr{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}dl.hdr dt{color:var(--muted)}dl.hdr dd{margin:0}
button{font:inherit;margin:4px 0;padding:2px 10px}
"#;

/// Pagination ("show more" from inline data, rows built with
/// `textContent`, never markup) and the findings filter; it marks the
/// page `data-js="on"`, so a test can see that the CSP let it run.
const SCRIPT: &str = r#"
document.addEventListener('click',function(ev){
var b=ev.target.closest('button[data-more]');if(!b)return;
var src=document.getElementById(b.dataset.more),tb=document.getElementById(b.dataset.table);if(!src||!tb)return;
var rows=b._rows||(b._rows=JSON.parse(src.textContent));var n=+b.dataset.shown,end=Math.min(rows.length,n+200);
for(var i=n;i<end;i++){var tr=document.createElement('tr');rows[i].forEach(function(c,j){var td=document.createElement('td');td.textContent=c;if(j===0)td.className='l-'+c;tr.appendChild(td);});tb.appendChild(tr);}
b.dataset.shown=end;var left=rows.length-end;if(left<=0){b.remove();}else{b.textContent='Show '+Math.min(200,left)+' more ('+left+' not shown)';}
});
var f=document.getElementById('filter');
if(f)f.addEventListener('input',function(){var q=f.value.toLowerCase();
document.querySelectorAll('table.findings tbody tr').forEach(function(tr){tr.hidden=!!q&&tr.textContent.toLowerCase().indexOf(q)<0;});
document.querySelectorAll('details.rule').forEach(function(d){if(q)d.open=true;});});
document.documentElement.setAttribute('data-js','on');
"#;

/// The page for `data`.
pub(crate) fn page(mut data: Data) -> String {
    let r = &data.record;
    let script_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT));
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; \
         base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"sluice {}\">\n\
         <title>sluice run {} · {} · {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        e(&r.run_id),
        e(&r.pipeline),
        data.status
    );
    header(&mut o, &data);
    timeline(&mut o, &data);
    gates(&mut o, &data);
    artifacts(&mut o, &data);
    tests(&mut o, &data);
    let sarif = std::mem::take(&mut data.sarif);
    findings(&mut o, &sarif, &mut data);
    logs(&mut o, &data);
    plugins(&mut o, &data);
    provenance(&mut o, &data);
    let _ = write!(
        o,
        "<footer class=\"muted\"><p>Generated by sluice {} at {}. This page loads nothing \
         from the network.</p></footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        e(&data.generated_at)
    );
    o
}

fn header(o: &mut String, d: &Data) {
    let r = &d.record;
    let passed = r.stages.values().filter(|s| s.state.succeeded()).count();
    let _ = write!(
        o,
        "<header>\n<h1>Run <code>{}</code> of pipeline <code>{}</code>: \
         <span class=\"badge s-{st}\">{st}</span></h1>\n<dl class=\"hdr\">\
         <dt>Stages</dt><dd>{passed} of {} passed</dd>\
         <dt>Created</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd>\
         <dt>Pipeline file</dt><dd><code>{}</code></dd><dt>Pipeline digest</dt><dd><code>{}</code></dd>",
        e(&r.run_id),
        e(&r.pipeline),
        r.stages.len(),
        e(&r.created_at),
        e(&r.updated_at),
        e(&r.pipeline_path.display().to_string()),
        e(&r.pipeline_digest),
        st = d.status,
    );
    if let Some(p) = &r.policy {
        let _ = write!(
            o,
            "<dt>Trust policy</dt><dd><code>{}</code></dd>",
            e(&p.display().to_string())
        );
    }
    if let Some(p) = &r.operator_policy {
        let _ = write!(
            o,
            "<dt>Operator policy</dt><dd><code>{}</code></dd>",
            e(&p.display().to_string())
        );
    }
    o.push_str("</dl>\n");
    if r.unsigned_plugins_allowed {
        o.push_str(
            "<p class=\"note\" role=\"note\">Unsigned plugins were allowed in this run \
             (<code>--allow-unsigned</code>): its plugins were not verified.</p>\n",
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "<p class=\"note\" role=\"note\">{}</p>", e(w));
    }
    o.push_str(
        "<nav aria-label=\"Sections\"><a href=\"#timeline\">Timeline</a> · <a href=\"#gates\">Gates</a> · \
         <a href=\"#artifacts\">Artifacts</a> · <a href=\"#tests\">Tests</a> · <a href=\"#findings\">Findings</a> · \
         <a href=\"#logs\">Logs</a> · <a href=\"#plugins\">Plugins</a> · <a href=\"#provenance\">Provenance</a></nav>\n</header>\n",
    );
}

fn time_ms(t: &str) -> Option<u128> {
    humantime::parse_rfc3339_weak(t)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis())
}

fn secs(ms: u128) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

fn timeline(o: &mut String, d: &Data) {
    let r = &d.record;
    let spans: Vec<(Option<u128>, Option<u128>)> = r
        .stages
        .values()
        .map(|s| {
            let start = s.started_at.as_deref().and_then(time_ms);
            let end = s
                .finished_at
                .as_deref()
                .and_then(time_ms)
                .or_else(|| start.map(|st| st + u128::from(s.duration_ms.unwrap_or(0))));
            (start, end)
        })
        .collect();
    let t0 = spans.iter().filter_map(|s| s.0).min();
    let t1 = spans.iter().filter_map(|s| s.1.or(s.0)).max();
    o.push_str("<section id=\"timeline\">\n<h2>Stage timeline</h2>\n");
    let (Some(t0), Some(t1)) = (t0, t1) else {
        o.push_str("<p>No stage has started.</p>\n</section>\n");
        return;
    };
    let total = (t1.saturating_sub(t0)).max(1);
    let _ = write!(
        o,
        "<figure class=\"tl\" role=\"group\" aria-labelledby=\"tl-cap\">\n\
         <figcaption id=\"tl-cap\">Stages on a common time axis ({} in all); bars are hatched when a \
         stage failed and dashed when it was cancelled, and each row says its state in words.</figcaption>\n\
         <div role=\"list\">\n",
        secs(total)
    );
    for ((name, s), (start, end)) in r.stages.iter().zip(&spans) {
        let state = s.state.as_str();
        let (bar, words) = match start {
            Some(st) => {
                let end = end.unwrap_or(*st).max(*st);
                let left = (st - t0) as f64 * 100.0 / total as f64;
                let width = ((end - st) as f64 * 100.0 / total as f64).max(0.2);
                let words = format!(
                    "{state}, from +{} to +{} ({})",
                    secs(st - t0),
                    secs(end - t0),
                    secs(end - st)
                );
                (
                    format!(
                        "<div class=\"tl-bar s-{state}\" style=\"left:{left:.3}%;width:{width:.3}%\" \
                         role=\"img\" aria-label=\"{}: {}\"></div>",
                        e(name),
                        e(&words)
                    ),
                    words,
                )
            }
            None => (
                String::new(),
                format!(
                    "{state}, not run{}",
                    s.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ),
        };
        let _ = writeln!(
            o,
            "<div class=\"tl-row\" role=\"listitem\"><span><code>{}</code></span>\
             <div class=\"tl-track\">{bar}</div><span><span class=\"badge s-{state}\">{state}</span> {}</span></div>",
            e(name),
            e(words.strip_prefix(state).unwrap_or(&words).trim_start_matches(", "))
        );
    }
    let _ = write!(
        o,
        "</div>\n<div class=\"tl-axis muted\" aria-hidden=\"true\"><span>0 s</span><span>{}</span></div>\n</figure>\n",
        secs(total)
    );
    // The same facts as a table, for reading and for screen readers.
    o.push_str(
        "<details><summary>Stages as a table</summary>\n<table>\n<thead><tr><th scope=\"col\">Stage</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Started</th><th scope=\"col\">Finished</th>\
         <th scope=\"col\">Duration</th><th scope=\"col\">Attempts</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n",
    );
    for (name, s) in &r.stages {
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td><span class=\"badge s-{st}\">{st}</span></td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            e(name),
            e(s.started_at.as_deref().unwrap_or("")),
            e(s.finished_at.as_deref().unwrap_or("")),
            s.duration_ms.map(|ms| secs(u128::from(ms))).unwrap_or_default(),
            s.attempts,
            e(s.reason.as_deref().or(s.summary.as_deref()).unwrap_or("")),
            st = s.state.as_str(),
        );
    }
    o.push_str("</tbody>\n</table>\n</details>\n</section>\n");
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn gates(o: &mut String, d: &Data) {
    o.push_str("<section id=\"gates\">\n<h2>Gates and metrics</h2>\n");
    let all: Vec<_> = d
        .record
        .stages
        .iter()
        .flat_map(|(n, s)| s.gates.iter().map(move |g| (n, g)))
        .collect();
    if all.is_empty() {
        o.push_str("<p>No gates were evaluated.</p>\n");
    } else {
        o.push_str(
            "<table>\n<caption>Gates</caption>\n<thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Gate</th>\
             <th scope=\"col\">Source</th><th scope=\"col\">Observed</th><th scope=\"col\">Threshold</th>\
             <th scope=\"col\">Verdict</th><th scope=\"col\">Message</th></tr></thead>\n<tbody>\n",
        );
        for (stage, g) in all {
            let source = match g.source {
                sluice_pipeline::gates::GateSource::Pipeline => "pipeline",
                sluice_pipeline::gates::GateSource::Plugin => "plugin",
            };
            let v = g.verdict.as_str();
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{source}</td><td class=\"num\">{}</td>\
                 <td><code>{}</code></td><td><span class=\"badge v-{v}\">{v}</span></td><td>{}</td></tr>",
                e(stage),
                e(&g.name),
                g.observed.map(num).unwrap_or_else(|| "—".into()),
                e(g.condition.as_deref().unwrap_or("—")),
                e(&g.message)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    let metrics: Vec<_> = d
        .record
        .stages
        .iter()
        .flat_map(|(n, s)| s.metrics.iter().map(move |m| (n, m)))
        .collect();
    if !metrics.is_empty() {
        o.push_str(
            "<details><summary>Metrics</summary>\n<table>\n<thead><tr><th scope=\"col\">Stage</th>\
             <th scope=\"col\">Metric</th><th scope=\"col\">Value</th><th scope=\"col\">Unit</th></tr></thead>\n<tbody>\n",
        );
        for (stage, m) in metrics {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
                e(stage),
                e(&m.name),
                num(m.value),
                e(m.unit.as_deref().unwrap_or(""))
            );
        }
        o.push_str("</tbody>\n</table>\n</details>\n");
    }
    o.push_str("</section>\n");
}

fn artifacts(o: &mut String, d: &Data) {
    o.push_str("<section id=\"artifacts\">\n<h2>Artifacts</h2>\n");
    let all: Vec<_> = d
        .record
        .stages
        .iter()
        .flat_map(|(n, s)| s.artifacts.iter().map(move |a| (n, a)))
        .collect();
    if all.is_empty() {
        o.push_str("<p>No stage left artifacts.</p>\n</section>\n");
        return;
    }
    if d.links.is_empty() {
        let _ = writeln!(
            o,
            "<p>Not copied beside this page; get one with <code>sluice artifacts get {} STAGE/NAME</code> \
             (digest verified).</p>",
            e(&d.record.run_id)
        );
    } else {
        o.push_str(
            "<p>Links open the copies written beside this page; each was checked against its digest when \
             it was copied.</p>\n",
        );
    }
    o.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Name</th><th scope=\"col\">Size</th>\
         <th scope=\"col\">Media type</th><th scope=\"col\">Digest</th></tr></thead>\n<tbody>\n",
    );
    for (stage, a) in all {
        let name = match d.links.get(&format!("{stage}/{}", a.name)) {
            Some(href) => format!("<a href=\"{}\">{}</a>", e(href), e(&a.name)),
            None => format!("<code>{}</code>", e(&a.name)),
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{name}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
            e(stage),
            sluice_files::fsutil::human_size(a.size),
            e(&a.media_type),
            e(&a.digest)
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}

fn tests(o: &mut String, d: &Data) {
    o.push_str("<section id=\"tests\">\n<h2>Test results</h2>\n");
    if d.junit.is_empty() {
        o.push_str("<p>No JUnit report among the artifacts.</p>\n");
    }
    for doc in &d.junit {
        let _ = writeln!(
            o,
            "<h3>{} · <code>{}</code></h3>",
            e(&doc.stage),
            e(&doc.name)
        );
        let cases = match &doc.parsed {
            Ok(c) => c,
            Err(why) => {
                note(o, &doc.name, why);
                continue;
            }
        };
        let count = |k: Outcome| cases.iter().filter(|c| c.outcome == k).count();
        let _ = writeln!(
            o,
            "<p>{} test(s): {} failed, {} errors, {} skipped, {} passed.</p>",
            cases.len(),
            count(Outcome::Failed),
            count(Outcome::Error),
            count(Outcome::Skipped),
            count(Outcome::Passed)
        );
        o.push_str(
            "<table>\n<thead><tr><th scope=\"col\">Outcome</th><th scope=\"col\">Test</th>\
             <th scope=\"col\">Time</th><th scope=\"col\">Message</th></tr></thead>\n<tbody>\n",
        );
        let mut passed = 0usize;
        for c in cases {
            if c.outcome == Outcome::Passed {
                passed += 1;
                if passed > PASSED_SHOWN {
                    continue;
                }
            }
            test_row(o, c);
        }
        o.push_str("</tbody>\n</table>\n");
        if passed > PASSED_SHOWN {
            let _ = writeln!(
                o,
                "<p class=\"muted\">… and {} more passed test(s), not listed.</p>",
                passed - PASSED_SHOWN
            );
        }
    }
    o.push_str("</section>\n");
}

fn test_row(o: &mut String, c: &TestCase) {
    let k = c.outcome.as_str();
    let name = if c.class.is_empty() {
        e(&c.name).into_owned()
    } else {
        format!("{}::{}", e(&c.class), e(&c.name))
    };
    let message = if c.detail.is_empty() {
        e(&c.message).into_owned()
    } else {
        format!(
            "{}<details><summary>details</summary><pre>{}</pre></details>",
            e(&c.message),
            e(&c.detail)
        )
    };
    let _ = writeln!(
        o,
        "<tr><td><span class=\"badge o-{k}\">{k}</span></td><td><code>{name}</code></td>\
         <td class=\"num\">{}</td><td>{message}</td></tr>",
        c.time.map(|t| format!("{t:.3} s")).unwrap_or_default()
    );
}

fn note(o: &mut String, name: &str, why: &str) {
    let _ = writeln!(
        o,
        "<p class=\"note\" role=\"note\"><code>{}</code> could not be read: {}</p>",
        e(name),
        e(why)
    );
}

fn location(f: &Finding) -> String {
    match (&f.uri, f.line, f.column) {
        (Some(u), Some(l), Some(c)) => format!("{u}:{l}:{c}"),
        (Some(u), Some(l), None) => format!("{u}:{l}"),
        (Some(u), None, _) => u.clone(),
        (None, _, _) => String::new(),
    }
}

fn findings(o: &mut String, docs: &[Doc<Log>], d: &mut Data) {
    o.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if docs.is_empty() {
        o.push_str("<p>No SARIF report among the artifacts.</p>\n</section>\n");
        return;
    }
    o.push_str(
        "<p><label for=\"filter\">Filter findings shown</label> <input id=\"filter\" type=\"search\" \
         placeholder=\"rule, file or message\"></p>\n",
    );
    for (di, doc) in docs.iter().enumerate() {
        let _ = writeln!(
            o,
            "<h3>{} · <code>{}</code></h3>",
            e(&doc.stage),
            e(&doc.name)
        );
        let log = match &doc.parsed {
            Ok(l) => l,
            Err(why) => {
                note(o, &doc.name, why);
                continue;
            }
        };
        if log.findings.is_empty() {
            o.push_str("<p>No findings.</p>\n");
            continue;
        }
        let mut levels: Vec<(&str, usize)> = Vec::new();
        for f in &log.findings {
            match levels.iter_mut().find(|(l, _)| *l == f.level) {
                Some((_, n)) => *n += 1,
                None => levels.push((&f.level, 1)),
            }
        }
        let _ = writeln!(
            o,
            "<p>{} finding(s): {}.</p>",
            log.findings.len(),
            levels
                .iter()
                .map(|(l, n)| format!("{n} {}", e(l)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let descriptions: HashMap<&str, &str> = log
            .rules
            .iter()
            .map(|(id, t)| (id.as_str(), t.as_str()))
            .collect();
        // Grouped by (tool, rule), the largest group first.
        let mut groups: Vec<((&str, &str), Vec<&Finding>)> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for f in &log.findings {
            let key = (f.tool.as_str(), f.rule.as_str());
            let i = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(f);
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
        for (gi, ((tool, rule), items)) in groups.iter().enumerate() {
            let desc = descriptions
                .get(rule)
                .filter(|t| !t.is_empty())
                .map(|t| format!(" — {}", e(t)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "<details class=\"rule\"{}><summary><h4><code>{}</code>{desc}</h4> <span class=\"muted\">({} · {} finding(s))</span></summary>",
                if gi < OPEN_GROUPS { " open" } else { "" },
                e(rule),
                e(tool),
                items.len()
            );
            let table_id = format!("t-{di}-{gi}");
            let _ = writeln!(
                o,
                "<table class=\"findings\">\n<thead><tr><th scope=\"col\">Level</th><th scope=\"col\">Location</th>\
                 <th scope=\"col\">Message</th></tr></thead>\n<tbody id=\"{table_id}\">"
            );
            for f in items.iter().take(PAGE) {
                let snippet = match (&f.uri, f.line) {
                    (Some(u), Some(l)) => d.snippets.around(u, l),
                    _ => None,
                };
                let mut msg = e(&f.message).into_owned();
                if let Some((first, lines)) = snippet {
                    msg.push_str("<pre aria-label=\"code at the location\">");
                    for (i, line) in lines.iter().enumerate() {
                        let n = first + i as u64;
                        let mark = if Some(n) == f.line { "&gt;" } else { " " };
                        let _ = writeln!(msg, "{mark}{n:>5} | {}", e(line));
                    }
                    msg.push_str("</pre>");
                }
                let _ = writeln!(
                    o,
                    "<tr><td class=\"l-{lv}\">{lv}</td><td><code>{}</code></td><td>{msg}</td></tr>",
                    e(&location(f)),
                    lv = e(&f.level),
                );
            }
            o.push_str("</tbody>\n</table>\n");
            if items.len() > PAGE {
                let rest: Vec<serde_json::Value> = items[PAGE..]
                    .iter()
                    .map(|f| serde_json::json!([f.level, location(f), f.message]))
                    .collect();
                let data_id = format!("d-{di}-{gi}");
                let _ = writeln!(
                    o,
                    "<script type=\"application/json\" id=\"{data_id}\">{}</script>\n\
                     <button type=\"button\" data-more=\"{data_id}\" data-table=\"{table_id}\" data-shown=\"0\">\
                     Show {} more ({} not shown)</button>",
                    escape::script_json(&serde_json::Value::Array(rest)),
                    (items.len() - PAGE).min(PAGE),
                    items.len() - PAGE
                );
            }
            o.push_str("</details>\n");
        }
    }
    o.push_str("</section>\n");
}

fn logs(o: &mut String, d: &Data) {
    o.push_str("<section id=\"logs\">\n<h2>Stage logs</h2>\n");
    for (name, s) in &d.record.stages {
        let tail = d.logs.get(name);
        match tail {
            Some(Ok(t)) if t.text.is_empty() => {
                let _ = writeln!(
                    o,
                    "<h3><code>{}</code></h3>\n<p class=\"muted\">No log lines.</p>",
                    e(name)
                );
            }
            Some(Ok(t)) => {
                let open = if s.state.is_failure() { " open" } else { "" };
                let _ = writeln!(
                    o,
                    "<h3><code>{}</code></h3>\n<details{open}><summary>{} of the log</summary>\n<pre class=\"log\">{}</pre>\n</details>",
                    e(name),
                    if t.cut { "the end" } else { "all" },
                    e(&t.text)
                );
            }
            Some(Err(why)) => {
                let _ = writeln!(o, "<h3><code>{}</code></h3>", e(name));
                note(o, &s.log, why);
            }
            None => {}
        }
    }
    o.push_str("</section>\n");
}

fn plugins(o: &mut String, d: &Data) {
    o.push_str(
        "<section id=\"plugins\">\n<h2>Plugins</h2>\n<table>\n<thead><tr><th scope=\"col\">Stage</th>\
         <th scope=\"col\">Plugin</th><th scope=\"col\">Digest</th><th scope=\"col\">Signer</th>\
         <th scope=\"col\">Policy rule</th></tr></thead>\n<tbody>\n",
    );
    for (name, s) in &d.record.stages {
        let Some(p) = &s.plugin else {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td colspan=\"4\" class=\"muted\">not loaded ({})</td></tr>",
                e(name),
                s.state.as_str()
            );
            continue;
        };
        let about = [p.name.as_deref(), p.version.as_deref(), p.kind.as_deref()]
            .into_iter()
            .flatten()
            .map(|x| e(x).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td><code>{}</code>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            e(name),
            e(&p.reference),
            if about.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"muted\">{about}</span>")
            },
            e(&p.digest),
            p.signer
                .as_deref()
                .map(|s| e(s).into_owned())
                .unwrap_or_else(|| "<strong>no verified signature</strong>".into()),
            if p.policy_rules.is_empty() {
                "—".into()
            } else {
                p.policy_rules
                    .iter()
                    .map(|r| format!("<code>{}</code>", e(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}

fn provenance(o: &mut String, d: &Data) {
    o.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n");
    if d.provenance.is_empty() {
        o.push_str("<p>No stage left a provenance statement.</p>\n");
    }
    for p in &d.provenance {
        let _ = writeln!(o, "<h3>{} · <code>{}</code></h3>", e(&p.stage), e(&p.name));
        let st = match &p.statement {
            Ok(v) => v,
            Err(why) => {
                note(o, &p.name, why);
                continue;
            }
        };
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("—").to_string();
        let _ = writeln!(
            o,
            "<dl class=\"hdr\"><dt>Statement type</dt><dd><code>{}</code></dd><dt>Predicate type</dt>\
             <dd><code>{}</code></dd><dt>Builder</dt><dd><code>{}</code></dd><dt>Build type</dt>\
             <dd><code>{}</code></dd><dt>Signed</dt><dd>{}</dd></dl>",
            e(&s(&st["_type"])),
            e(&s(&st["predicateType"])),
            e(&s(&st["predicate"]["runDetails"]["builder"]["id"])),
            e(&s(&st["predicate"]["buildDefinition"]["buildType"])),
            if p.signed {
                "yes: <code>provenance.sigstore.json</code> beside it (check it with <code>sluice verify-artifact</code>)"
            } else {
                "no signed bundle (the run had no <code>--provenance-key</code>)"
            }
        );
        let subjects = st["subject"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        o.push_str(
            "<table>\n<thead><tr><th scope=\"col\">Subject</th><th scope=\"col\">sha256</th></tr></thead>\n<tbody>\n",
        );
        for sub in subjects {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                e(&s(&sub["name"])),
                e(&s(&sub["digest"]["sha256"]))
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    o.push_str("</section>\n");
}
