//! `sluice stage test --expect FILE`: the stage's result (the `--json`
//! document) must contain the expectation file, a JSON *subset*:
//! - an object matches when every key it has is in the result and matches
//!   (keys it leaves out are not checked);
//! - an array matches an array of the same length, element by element;
//! - numbers match by value (`2` matches `2.0`), everything else exactly.
//!
//! `--update` writes the file from the result, keeping its shape: the keys
//! it already has get the result's values (so an author who only cares
//! about `metrics` and `gates` keeps only those); a new file gets
//! [`default_expectation`].

use serde_json::{Map, Value};

/// One place where the result does not match the expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Where, as `metrics."demo.files"` or `gates[0].verdict`.
    pub path: String,
    /// The expected value.
    pub expected: Value,
    /// The value found, or `None` when the key or element is missing.
    pub actual: Option<Value>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.actual {
            Some(actual) => write!(
                f,
                "{}: expected {}, got {}",
                self.path,
                compact(&self.expected),
                compact(actual)
            ),
            None => write!(
                f,
                "{}: missing (expected {})",
                self.path,
                compact(&self.expected)
            ),
        }
    }
}

/// A value on one line (whole numbers without `.0`), shortened past 200
/// characters.
fn compact(v: &Value) -> String {
    let text = match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    };
    if text.chars().count() > 200 {
        let cut: String = text.chars().take(200).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// How many leaf values `expected` checks (for "7 checks matched").
pub fn checks(expected: &Value) -> usize {
    match expected {
        Value::Object(m) => m.values().map(checks).sum(),
        Value::Array(a) => a.iter().map(checks).sum::<usize>().max(1),
        _ => 1,
    }
}

/// Every place where `actual` does not contain `expected`, in key order.
pub fn compare(expected: &Value, actual: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    walk(expected, Some(actual), String::new(), &mut out);
    out
}

fn key_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if simple {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

fn walk(expected: &Value, actual: Option<&Value>, path: String, out: &mut Vec<Mismatch>) {
    let Some(actual) = actual else {
        out.push(Mismatch {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path
            },
            expected: expected.clone(),
            actual: None,
        });
        return;
    };
    let mismatch = |out: &mut Vec<Mismatch>, path: String| {
        out.push(Mismatch {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path
            },
            expected: expected.clone(),
            actual: Some(actual.clone()),
        })
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                walk(v, a.get(k), key_path(&path, k), out);
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(ev, Some(av), format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            if e.as_f64() != a.as_f64() {
                mismatch(out, path);
            }
        }
        (e, a) => {
            if e != a {
                mismatch(out, path);
            }
        }
    }
}

/// `expected`'s shape filled with `actual`'s values: keys of `expected`
/// that `actual` has are kept (recursively), the others dropped; arrays of
/// the same length are reshaped element by element, else taken whole.
pub fn reshape(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut out = Map::new();
            for (k, v) in e {
                if let Some(av) = a.get(k) {
                    out.insert(k.clone(), reshape(v, av));
                }
            }
            Value::Object(out)
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            Value::Array(e.iter().zip(a).map(|(ev, av)| reshape(ev, av)).collect())
        }
        (_, a) => a.clone(),
    }
}

/// What `--update` writes into a new expectation file: what a stage's
/// own CI usually pins (its state, summary, metrics, gate verdicts,
/// outputs, artifact names and roles, finding counts), and nothing that
/// changes between builds or runs (digests, paths, the run id).
pub fn default_expectation(result: &Value) -> Value {
    let mut out = Map::new();
    for key in ["state", "summary", "metrics", "outputs"] {
        if let Some(v) = result.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let pick = |item: &Value, keys: &[&str]| {
        let mut m = Map::new();
        for k in keys {
            if let Some(v) = item.get(*k).filter(|v| !v.is_null()) {
                m.insert((*k).into(), v.clone());
            }
        }
        Value::Object(m)
    };
    let by_name = |key: &str, fields: &[&str]| -> Option<Value> {
        let items = result.get(key)?.as_object()?;
        Some(Value::Object(
            items
                .iter()
                .map(|(name, item)| (name.clone(), pick(item, fields)))
                .collect(),
        ))
    };
    if let Some(gates) = by_name("gates", &["verdict"]) {
        out.insert("gates".into(), gates);
    }
    if let Some(artifacts) = by_name("artifacts", &["media_type", "role"]) {
        out.insert("artifacts".into(), artifacts);
    }
    if let Some(findings) = result.get("findings").filter(|f| f.is_object()) {
        out.insert("findings".into(), pick(findings, &["count", "by_level"]));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subset_matches_and_numbers_match_by_value() {
        let actual = json!({"state": "passed", "metrics": {"a.b": 2.0, "c": 1}, "gates": [{"name": "g", "verdict": "pass", "message": "x"}]});
        let expected = json!({"metrics": {"a.b": 2}, "gates": [{"name": "g", "verdict": "pass"}]});
        assert!(compare(&expected, &actual).is_empty());
        assert_eq!(checks(&expected), 3);
    }

    #[test]
    fn mismatches_name_the_path_and_both_values() {
        let actual = json!({"state": "failed", "metrics": {"demo.files": 3}, "gates": [{"verdict": "fail"}]});
        let expected = json!({"state": "passed", "metrics": {"demo.files": 2, "other": 1}, "gates": [], "outputs": {"x": "1"}});
        let lines: Vec<String> = compare(&expected, &actual)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                r#"gates: expected [], got [{"verdict":"fail"}]"#,
                r#"metrics."demo.files": expected 2, got 3"#,
                "metrics.other: missing (expected 1)",
                r#"outputs: missing (expected {"x":"1"})"#,
                r#"state: expected "passed", got "failed""#,
            ]
        );
    }

    #[test]
    fn reshape_keeps_the_authors_keys_only() {
        let actual = json!({"state": "passed", "metrics": {"a": 1, "b": 2}, "summary": "s"});
        let expected = json!({"metrics": {"a": 0}, "gone": 1});
        assert_eq!(reshape(&expected, &actual), json!({"metrics": {"a": 1}}));
    }

    #[test]
    fn the_default_expectation_leaves_out_what_changes_between_runs() {
        let result = json!({
            "state": "passed", "summary": "ok", "metrics": {"m": 1}, "outputs": {},
            "run_id": "r", "log": "/tmp/x",
            "gates": {"g": {"verdict": "pass", "message": "m", "observed": 1}},
            "artifacts": {"a.json": {"digest": "sha256:00", "size": 3, "media_type": "application/json", "role": "report"}},
            "findings": {"count": 1, "by_level": {"warning": 1}, "items": []}
        });
        let d = default_expectation(&result);
        assert_eq!(
            d,
            json!({
                "state": "passed", "summary": "ok", "metrics": {"m": 1}, "outputs": {},
                "gates": {"g": {"verdict": "pass"}},
                "artifacts": {"a.json": {"media_type": "application/json", "role": "report"}},
                "findings": {"count": 1, "by_level": {"warning": 1}}
            })
        );
        assert!(compare(&d, &result).is_empty());
    }
}
