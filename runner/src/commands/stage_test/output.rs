//! What `sluice stage test` prints: the result document (`--json`), its
//! rendering for people, and the `--expect` check.

use std::path::Path;

use serde_json::{json, Map, Value};
use sluice_files::diagnostic::render_located;
use sluice_record::artifacts::Cas;
use sluice_record::{RunRecord, RunStore, StageRecord};

use super::{expect, StageTestError};

/// The `--json` document: the stage's outcome, report and where its log
/// and state are.
pub(super) fn result_document(
    record: &RunRecord,
    stage: &str,
    plugin: &Path,
    state_dir: &Path,
    warnings: Vec<String>,
) -> Value {
    let fallback = StageRecord::pending(stage);
    let s = record.stages.get(stage).unwrap_or(&fallback);
    let metrics: Map<String, Value> = s
        .metrics
        .iter()
        .map(|m| (m.name.clone(), json!(m.value)))
        .collect();
    let units: Map<String, Value> = s
        .metrics
        .iter()
        .filter_map(|m| m.unit.as_ref().map(|u| (m.name.clone(), json!(u))))
        .collect();
    // Artifacts and gates by name, so that an expectation names the ones
    // it cares about (the runner adds artifacts of its own, such as
    // findings.sarif and provenance).
    let artifacts: Map<String, Value> = s
        .artifacts
        .iter()
        .map(|a| {
            let item = json!({
                "digest": a.digest,
                "size": a.size,
                "media_type": a.media_type,
                "role": a.role.as_ref().map(ToString::to_string),
                "annotations": a.annotations,
            });
            (a.name.clone(), item)
        })
        .collect();
    let mut gates = Map::new();
    for g in &s.gates {
        let mut key = g.name.clone();
        let mut n = 1;
        while gates.contains_key(&key) {
            n += 1;
            key = format!("{}#{n}", g.name);
        }
        let mut item = serde_json::to_value(g).unwrap_or_default();
        if let Value::Object(m) = &mut item {
            m.remove("name");
        }
        gates.insert(key, item);
    }
    let run_dir = RunStore::new(state_dir).run_dir(&record.run_id);
    let findings = s
        .artifacts
        .iter()
        .find(|a| a.name == "findings.sarif")
        .map(|a| findings_summary(state_dir, &a.digest));
    json!({
        "stage": stage,
        "state": s.state,
        "passed": s.state.succeeded(),
        "summary": s.summary,
        "reason": s.reason,
        "plugin": {
            "file": plugin.display().to_string(),
            "name": s.plugin.as_ref().and_then(|p| p.name.clone()),
            "version": s.plugin.as_ref().and_then(|p| p.version.clone()),
            "digest": s.plugin.as_ref().map(|p| p.digest.clone()),
            "signer": s.plugin.as_ref().and_then(|p| p.signer.clone()),
        },
        "duration_ms": s.duration_ms,
        "metrics": metrics,
        "units": units,
        "gates": gates,
        "outputs": s.outputs,
        "artifacts": artifacts,
        "findings": findings,
        "warnings": warnings,
        "run_id": record.run_id,
        "state_dir": state_dir.display().to_string(),
        "log": run_dir.join(&s.log).display().to_string(),
    })
}

/// Counts and the first findings, read back from the SARIF the runner
/// wrote into the artifact store.
fn findings_summary(state_dir: &Path, digest: &str) -> Value {
    const MAX_SARIF: u64 = 64 * 1024 * 1024;
    const SHOWN: usize = 50;
    let sarif = Cas::open(&state_dir.join("cas"))
        .ok()
        .and_then(|cas| cas.blob_path(digest).ok())
        .and_then(|p| sluice_files::fsutil::read_input_file(&p, MAX_SARIF, "findings.sarif").ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let results: Vec<Value> = sarif
        .as_ref()
        .and_then(|s| s["runs"][0]["results"].as_array().cloned())
        .unwrap_or_default();
    let mut by_level = Map::new();
    for r in &results {
        let level = r["level"].as_str().unwrap_or("warning").to_owned();
        let n = by_level.get(&level).and_then(Value::as_u64).unwrap_or(0);
        by_level.insert(level, json!(n + 1));
    }
    let items: Vec<Value> = results
        .iter()
        .take(SHOWN)
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            json!({
                "rule_id": r["ruleId"],
                "level": r["level"].as_str().unwrap_or("warning"),
                "message": r["message"]["text"],
                "path": loc["artifactLocation"]["uri"],
                "line": loc["region"]["startLine"],
            })
        })
        .collect();
    json!({ "count": results.len(), "by_level": by_level, "items": items })
}

/// The result for people.
pub(super) fn render(r: &Value) -> String {
    let str_of = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let mut out = String::new();
    let state = str_of(&r["state"]);
    let headline = match (r["summary"].as_str(), r["reason"].as_str()) {
        (_, Some(reason)) if !r["passed"].as_bool().unwrap_or(false) => reason.to_owned(),
        (Some(summary), _) => summary.to_owned(),
        _ => String::new(),
    };
    out.push_str(&format!("stage `{}` {state}", str_of(&r["stage"])));
    if !headline.is_empty() {
        out.push_str(&format!(": {headline}"));
    }
    out.push('\n');
    for w in r["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  note: {}\n", str_of(w)));
    }
    let p = &r["plugin"];
    let digest = str_of(&p["digest"]);
    let short = digest.get(..19).unwrap_or(&digest);
    let signed = match p["signer"].as_str() {
        Some(s) => format!("signed by {s}"),
        None => "not verified".into(),
    };
    if p["name"].is_string() {
        out.push_str(&format!(
            "  plugin    {} {} ({}, {short}…, {signed})\n",
            str_of(&p["name"]),
            str_of(&p["version"]),
            str_of(&p["file"])
        ));
    } else {
        // A stage that never got to run has no plugin record.
        out.push_str(&format!("  plugin    {}\n", str_of(&p["file"])));
    }
    let section = |out: &mut String, title: &str, lines: Vec<String>| {
        if lines.is_empty() {
            out.push_str(&format!("  {title:<9} none\n"));
        }
        for (i, line) in lines.iter().enumerate() {
            let label = if i == 0 { title } else { "" };
            out.push_str(&format!("  {label:<9} {line}\n"));
        }
    };
    let metrics: Vec<String> = r["metrics"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let unit = r["units"][k]
                .as_str()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            format!("{k} = {}{unit}", number(v))
        })
        .collect();
    section(&mut out, "metrics", metrics);
    let gates: Vec<String> = r["gates"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, g)| {
            let cond = g["condition"]
                .as_str()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            format!(
                "{:<5} {name}{cond}: {}",
                str_of(&g["verdict"]),
                str_of(&g["message"])
            )
        })
        .collect();
    section(&mut out, "gates", gates);
    let outputs: Vec<String> = r["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} = {}", str_of(v)))
        .collect();
    section(&mut out, "outputs", outputs);
    let artifacts: Vec<String> = r["artifacts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, a)| {
            let role = a["role"]
                .as_str()
                .map(|r| format!(", role {r}"))
                .unwrap_or_default();
            format!(
                "{name} ({} B, {}{role}) {}",
                a["size"],
                str_of(&a["media_type"]),
                str_of(&a["digest"])
            )
        })
        .collect();
    section(&mut out, "artifacts", artifacts);
    match r["findings"].as_object() {
        None => out.push_str("  findings  none reported\n"),
        Some(f) => {
            let counts: Vec<String> = f
                .get("by_level")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(level, n)| format!("{n} {level}"))
                .collect();
            let count = f.get("count").and_then(Value::as_u64).unwrap_or(0);
            let mut lines = vec![if counts.is_empty() {
                format!("{count}")
            } else {
                format!("{count} ({})", counts.join(", "))
            }];
            for item in f
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let place = match (item["path"].as_str(), item["line"].as_u64()) {
                    (Some(p), Some(l)) if l > 0 => format!(" {p}:{l}"),
                    (Some(p), _) => format!(" {p}"),
                    _ => String::new(),
                };
                lines.push(format!(
                    "{:<8} {}{place}: {}",
                    str_of(&item["level"]),
                    str_of(&item["rule_id"]),
                    str_of(&item["message"])
                ));
            }
            section(&mut out, "findings", lines);
        }
    }
    match r["log"].as_str() {
        Some(log) => out.push_str(&format!("  log       {log}\n")),
        None => {
            out.push_str("  log       not kept: the stage passed (--state-dir DIR keeps runs)\n")
        }
    }
    out
}

/// A metric value as people write it: `2`, not `2.0`.
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.to_string(),
    }
}

/// The outcome of `--expect`.
pub(super) struct ExpectCheck {
    pub(super) checks: usize,
    pub(super) mismatches: Vec<expect::Mismatch>,
    pub(super) updated: bool,
}

/// Compares `result` with the expectation file, or (with `update`) writes
/// the file from it.
pub(super) fn check_expectation(
    path: &Path,
    result: &Value,
    update: bool,
) -> Result<ExpectCheck, StageTestError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(serde_json::from_str::<Value>(&text).map_err(|e| {
            StageTestError::Expect(render_located(
                path,
                e.line(),
                e.column(),
                &format!("the expectation file is not valid JSON: {e}"),
                Some("fix it, or write it anew with --update"),
                text.lines().nth(e.line().saturating_sub(1)),
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && update => None,
        Err(source) => {
            return Err(StageTestError::Io {
                what: "expectation file",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if update {
        let new = match &existing {
            Some(old) if old.is_object() => expect::reshape(old, result),
            _ => expect::default_expectation(result),
        };
        let mut text = serde_json::to_string_pretty(&new).unwrap_or_default();
        text.push('\n');
        std::fs::write(path, text).map_err(|source| StageTestError::Io {
            what: "expectation file",
            path: path.to_path_buf(),
            source,
        })?;
        return Ok(ExpectCheck {
            checks: expect::checks(&new),
            mismatches: Vec::new(),
            updated: true,
        });
    }
    let expected = existing.unwrap_or(Value::Null);
    Ok(ExpectCheck {
        checks: expect::checks(&expected),
        mismatches: expect::compare(&expected, result),
        updated: false,
    })
}

pub(super) fn render_expectation(path: &Path, check: &ExpectCheck) -> String {
    if check.updated {
        return format!(
            "  expect    {}: written ({} checks)\n",
            path.display(),
            check.checks
        );
    }
    if check.mismatches.is_empty() {
        return format!(
            "  expect    {}: all {} checks hold\n",
            path.display(),
            check.checks
        );
    }
    let mut out = format!(
        "  expect    {}: {} of {} checks do not hold:\n",
        path.display(),
        check.mismatches.len(),
        check.checks
    );
    for m in &check.mismatches {
        out.push_str(&format!("    - {m}\n"));
    }
    out.push_str("            (rerun with --update to accept the new result)\n");
    out
}
