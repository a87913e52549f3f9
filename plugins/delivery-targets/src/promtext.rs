//! A parser for the Prometheus text exposition format (0.0.4): `# TYPE`
//! lines and samples `name{label="value",...} value [timestamp]`, with the
//! format's escapes (`\\`, `\"`, `\n`) in label values and `NaN`, `+Inf`,
//! `-Inf` values. A malformed line fails the whole scrape, naming the line,
//! as Prometheus does. Used by `monitor` (scrape sources) and `canary`
//! (`/metrics` providers).
//!
//! ```
//! use std::collections::BTreeMap;
//! use sluice_delivery::promtext;
//!
//! let page = promtext::parse("# TYPE up gauge\nup{job=\"web\"} 1\nup{job=\"db\"} 0\n").unwrap();
//! assert_eq!(page.types["up"], "gauge");
//! let web = BTreeMap::from([("job".to_string(), "web".to_string())]);
//! assert_eq!(page.select("up", &web), vec![1.0]);
//! assert_eq!(page.named("up").count(), 2);
//! ```
//!
//! Why not the `prometheus-parse` crate: it splits label lists on `,` and
//! `=` without honouring quotes or escapes (a label value containing `,`,
//! `=` or `}` is misread) and silently drops lines it cannot read, which
//! would turn a broken endpoint into quietly wrong rates.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as written (`http_requests_total`, `x_bucket`).
    pub name: String,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// `# TYPE` declarations: metric family → type (`counter`, `histogram`…).
    pub types: BTreeMap<String, String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Samples named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Values of the samples named `name` whose labels include every pair
    /// of `labels` (other labels may be present), in page order.
    pub fn select(&self, name: &str, labels: &BTreeMap<String, String>) -> Vec<f64> {
        self.named(name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value)
            .collect()
    }
}

/// A line that is not valid exposition format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}: `{text}`")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub why: String,
    /// The line (shortened).
    pub text: String,
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err = |why: &str| ParseError {
            line: i + 1,
            why: why.to_string(),
            text: line.chars().take(120).collect(),
        };
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                match (words.next(), words.next()) {
                    (Some(name), Some(kind)) => {
                        out.types
                            .insert(name.to_string(), kind.to_ascii_lowercase());
                    }
                    _ => return Err(err("a TYPE line needs a metric name and a type")),
                }
            }
            continue;
        }
        out.samples.push(sample(line).map_err(|why| err(&why))?);
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn sample(line: &str) -> Result<Sample, String> {
    let mut chars = line.char_indices().peekable();
    let end = match chars.peek() {
        Some((_, c)) if is_name_start(*c) => {
            let mut end = line.len();
            for (i, c) in line.char_indices() {
                if !is_name_char(c) {
                    end = i;
                    break;
                }
            }
            end
        }
        _ => return Err("a sample must start with a metric name".into()),
    };
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| "no value after the metric name".to_string())?;
    let value = parse_value(value).ok_or_else(|| format!("`{value}` is not a number"))?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("`{ts}` is not a timestamp in milliseconds"))?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Reads `name="value",...}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let end = s
            .find(|c: char| !is_name_char(c))
            .ok_or_else(|| "unterminated label list".to_string())?;
        let name = &s[..end];
        if name.is_empty() || !name.starts_with(is_name_start) {
            return Err("expected a label name".into());
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label `{name}`"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label `{name}` must be quoted"))?;
        let mut value = String::new();
        let mut it = s.char_indices();
        let close = loop {
            match it.next() {
                None => return Err(format!("unterminated value of label `{name}`")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match it.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("unterminated value of label `{name}`")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(name.to_string(), value);
        s = s[close + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

/// A sample value: a float, `NaN`, `+Inf`, `-Inf`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/a,b=c}",status="200"} 1027 1395066363000
http_requests_total{ method = "GET" , status="500", } 3
msdos{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
plain 12.47
weird{problem="division by zero"} +Inf -3982045
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.05"} 24054
lat_seconds_bucket{le="+Inf"} 144320
lat_seconds_sum 53423
"#;

    #[test]
    fn parses_the_reference_example() -> Result<(), ParseError> {
        let e = parse(TEXT)?;
        assert_eq!(e.types["http_requests_total"], "counter");
        assert_eq!(e.types["lat_seconds"], "histogram");
        let r: Vec<&Sample> = e.named("http_requests_total").collect();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].labels["path"], "/a,b=c}");
        assert_eq!(r[0].value, 1027.0);
        assert_eq!(r[1].labels["status"], "500");
        let m = e
            .named("msdos")
            .next()
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        assert_eq!(m["path"], r"C:\DIR\FILE.TXT");
        assert_eq!(m["error"], "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!(
            e.named("weird").next().map(|s| s.value),
            Some(f64::INFINITY)
        );
        assert_eq!(e.named("lat_seconds_bucket").count(), 2);
        assert_eq!(e.samples.len(), 8);
        Ok(())
    }

    #[test]
    fn malformed_lines_fail_with_their_number() {
        for (text, why) in [
            (
                "ok 1\nbad{x=1} 2",
                "line 2: the value of label `x` must be quoted",
            ),
            ("m{a=\"1\" 2", "line 1: expected `,` or `}` after a label"),
            ("m 1 2 3", "line 1: unexpected text after the timestamp"),
            ("m abc", "line 1: `abc` is not a number"),
            ("9m 1", "line 1: a sample must start with a metric name"),
            ("m{a=\"x", "line 1: unterminated value of label `a`"),
            ("m", "line 1: no value after the metric name"),
        ] {
            match parse(text) {
                Err(e) => assert!(e.to_string().starts_with(why), "{text:?}: {e}"),
                Ok(x) => panic!("{text:?} parsed: {x:?}"),
            }
        }
    }

    #[test]
    fn selects_by_name_and_label_subset() -> Result<(), ParseError> {
        let page = parse(
            r#"http_requests_total{code="200",version="1.0.0"} 1027 1395066363000
http_requests_total{code="500",version="1.0.0"} 3
http_requests_total{code="500", path="a \"b\"\\c"} 1.5e1
process_up 1
latency_seconds{quantile="0.95"} NaN
"#,
        )?;
        let by = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            page.select("http_requests_total", &by(&[("code", "500")])),
            vec![3.0, 15.0]
        );
        assert_eq!(page.select("process_up", &BTreeMap::new()), vec![1.0]);
        assert!(page.select("process_up", &by(&[("job", "x")])).is_empty());
        assert_eq!(page.samples[2].labels["path"], "a \"b\"\\c");
        assert!(page.samples[4].value.is_nan());
        Ok(())
    }

    #[test]
    fn values() {
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("1e3"), Some(1000.0));
        assert_eq!(parse_value("x"), None);
    }
}
