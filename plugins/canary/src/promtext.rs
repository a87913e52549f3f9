//! A small reader of the Prometheus text exposition format (version 0.0.4):
//! enough to pick samples by name and labels out of a `/metrics` page.
//!
//! Comment (`#`) and blank lines are skipped; a sample line is
//! `name{label="value",...} value [timestamp]`. Label values may use the
//! escapes `\"`, `\\` and `\n`. Values are floats, `NaN`, `+Inf`, `-Inf`.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses a page; the error names the line that is not a sample.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|e| format!("line {}: {e}: `{line}`", n + 1))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value after the metric name")?;
    let name = line[..name_end].to_string();
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or("no value after the labels")?;
    let value = parse_value(value_text).ok_or_else(|| format!("`{value_text}` is not a number"))?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("a label without `=`")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key, value);
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Values of the samples named `name` whose labels include every pair of
/// `labels`, in page order.
pub fn select(samples: &[Sample], name: &str, labels: &BTreeMap<String, String>) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| s.value)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",version="1.0.0"} 1027 1395066363000
http_requests_total{code="500",version="1.0.0"} 3
http_requests_total{code="500", path="a \"b\"\\c"} 1.5e1

process_up 1
latency_seconds{quantile="0.95"} NaN
"#;

    #[test]
    fn parses_and_selects() {
        let s = parse(PAGE).expect("page");
        assert_eq!(s.len(), 5);
        let by = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            select(&s, "http_requests_total", &by(&[("code", "500")])),
            vec![3.0, 15.0]
        );
        assert_eq!(select(&s, "process_up", &BTreeMap::new()), vec![1.0]);
        assert_eq!(s[2].labels["path"], "a \"b\"\\c");
        assert!(s[4].value.is_nan());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("metric").is_err());
        assert!(parse("metric{a=\"x} 1").is_err());
        assert!(parse("metric abc").expect_err("value").contains("line 1"));
    }
}
