//! Where analysis measurements come from: the Prometheus HTTP API, a
//! scraped `/metrics` page, or the stage's own synthetic requests. Each
//! returns `result`, a list of numbers, or an error message (an `Error`
//! measurement); only a denied destination stops the stage.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_sdk::http::{HttpError, Method, Request};
use sluice_sdk::StageError;

use crate::config::{Provider, Side};
use crate::load::{generate, http_get, join, Measure};
use crate::promtext;

/// Values for `{{placeholders}}` in queries and URLs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placeholders {
    /// Candidate version.
    pub canary_version: String,
    /// Candidate slot.
    pub canary_slot: String,
    /// Candidate slot URL (empty if unknown).
    pub canary_url: String,
    /// Stable version.
    pub stable_version: String,
    /// Stable slot.
    pub stable_slot: String,
    /// Stable slot URL (empty if unknown).
    pub stable_url: String,
}

impl Placeholders {
    /// Replaces `{{version}}` / `{{canary_version}}`, `{{slot}}` /
    /// `{{canary_slot}}`, `{{canary_url}}`, `{{stable_version}}`,
    /// `{{stable_slot}}` and `{{stable_url}}` (spaces inside the braces
    /// are allowed).
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start..].find("}}") else {
                break;
            };
            let name = rest[start + 2..start + len].trim();
            let value = match name {
                "version" | "canary_version" => Some(&self.canary_version),
                "slot" | "canary_slot" => Some(&self.canary_slot),
                "canary_url" => Some(&self.canary_url),
                "stable_version" => Some(&self.stable_version),
                "stable_slot" => Some(&self.stable_slot),
                "stable_url" => Some(&self.stable_url),
                _ => None,
            };
            out.push_str(&rest[..start]);
            match value {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[start..start + len + 2]),
            }
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Percent-encodes a query-string value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct PromResponse {
    status: String,
    #[serde(default)]
    data: Option<PromData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromData {
    result_type: String,
    result: serde_json::Value,
}

fn prom_number(v: &serde_json::Value) -> Option<f64> {
    // A sample is [timestamp, "value"].
    let s = v.as_array()?.get(1)?.as_str()?;
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Reads the values out of a `/api/v1/query` response body: every sample
/// of a vector (in order), or the scalar.
pub fn parse_prometheus(body: &str) -> Result<Vec<f64>, String> {
    let r: PromResponse =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus API response: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "Prometheus answered {}: {}",
            r.status,
            r.error.unwrap_or_default()
        ));
    }
    let data = r.data.ok_or("Prometheus response without data")?;
    match data.result_type.as_str() {
        "vector" => data
            .result
            .as_array()
            .ok_or("vector result is not a list")?
            .iter()
            .map(|s| {
                s.get("value")
                    .and_then(prom_number)
                    .ok_or("a sample without a number value".to_string())
            })
            .collect(),
        "scalar" => prom_number(&data.result)
            .map(|v| vec![v])
            .ok_or_else(|| "scalar result without a number".to_string()),
        other => Err(format!(
            "the query returned a {other}; use an instant query that returns a vector or scalar"
        )),
    }
}

fn get(url: &str, timeout: Duration) -> Result<Result<String, String>, StageError> {
    match Request::new(Method::Get, url).timeout(timeout).send() {
        Ok(r) if r.is_success() => Ok(Ok(r.text().into_owned())),
        Ok(r) => {
            let text = r.text();
            let head: String = text.chars().take(200).collect();
            Ok(Err(format!("{url}: HTTP {}: {head}", r.status)))
        }
        Err(e @ HttpError::Denied(_)) => Err(e.into()),
        Err(e) => Ok(Err(format!("{url}: {e}"))),
    }
}

/// Takes one measurement with `provider`.
pub fn measure(
    provider: &Provider,
    ph: &Placeholders,
) -> Result<Result<Vec<f64>, String>, StageError> {
    match provider {
        Provider::Prometheus {
            address,
            query,
            timeout,
        } => {
            let q = ph.apply(query);
            let url = format!(
                "{}/api/v1/query?query={}",
                address.trim_end_matches('/'),
                encode_query(&q)
            );
            Ok(get(&url, *timeout)?
                .and_then(|body| parse_prometheus(&body).map_err(|e| format!("query `{q}`: {e}"))))
        }
        Provider::Scrape {
            url,
            metric,
            labels,
            timeout,
        } => {
            let url = ph.apply(url);
            Ok(get(&url, *timeout)?.and_then(|body| scrape(&body, metric, labels)))
        }
        Provider::Synthetic {
            measure,
            requests,
            path,
            side,
            timeout,
        } => {
            let base = match side {
                Side::Canary => &ph.canary_url,
                Side::Baseline => &ph.stable_url,
            };
            if base.is_empty() {
                return Err(StageError::invalid_config(format!(
                    "a synthetic measurement needs the URL of slot `{}`: add it under \
                     with.target.slots",
                    match side {
                        Side::Canary => &ph.canary_slot,
                        Side::Baseline => &ph.stable_slot,
                    }
                )));
            }
            let load = generate(*requests, &join(base, path), None, http_get(*timeout))?;
            Ok(Ok(vec![synthetic_value(*measure, &load.baseline)]))
        }
    }
}

fn synthetic_value(m: Measure, samples: &[crate::load::Sample]) -> f64 {
    m.of(samples)
}

fn scrape(body: &str, metric: &str, labels: &BTreeMap<String, String>) -> Result<Vec<f64>, String> {
    let page = promtext::parse(body).map_err(|e| e.to_string())?;
    let values = page.select(metric, labels);
    if values.is_empty() {
        return Err(format!(
            "no sample `{metric}` with labels {labels:?} on the page"
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let ph = Placeholders {
            canary_version: "2.0.0".into(),
            canary_slot: "green".into(),
            canary_url: "http://c".into(),
            stable_version: "1.0.0".into(),
            stable_slot: "blue".into(),
            stable_url: "http://s".into(),
        };
        assert_eq!(
            ph.apply(r#"rate(x{version="{{version}}",slot="{{ slot }}"}[1m]) / {{stable_version}} {{other}} {{"#),
            r#"rate(x{version="2.0.0",slot="green"}[1m]) / 1.0.0 {{other}} {{"#
        );
        assert_eq!(ph.apply("{{canary_url}}/metrics"), "http://c/metrics");
    }

    #[test]
    fn prometheus_responses() {
        let v = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1700000000.1,"0.25"]},
            {"metric":{"a":"2"},"value":[1700000000.1,"NaN"]}]}}"#;
        let r = parse_prometheus(v).expect("vector");
        assert_eq!(r[0], 0.25);
        assert!(r[1].is_nan());
        let s = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        assert_eq!(parse_prometheus(s), Ok(vec![3.0]));
        let e = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse_prometheus(e)
            .expect_err("error")
            .contains("parse error"));
        let m = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_prometheus(m).is_err());
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_prometheus(empty), Ok(vec![]));
    }

    #[test]
    fn scrapes() {
        let page = "# TYPE up gauge\nup{job=\"a\"} 1\nup{job=\"b\"} 0\n";
        let mut l = BTreeMap::new();
        l.insert("job".to_string(), "b".to_string());
        assert_eq!(scrape(page, "up", &l), Ok(vec![0.0]));
        assert!(scrape(page, "down", &BTreeMap::new()).is_err());
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("a{b=\"c\"} > 1"),
            "a%7Bb%3D%22c%22%7D%20%3E%201"
        );
    }
}
