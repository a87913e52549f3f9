//! The Prometheus HTTP API: request URLs for `/api/v1/query` and
//! `/api/v1/query_range`, and the JSON envelope of their answers
//! (`{"status": "success", "data": {"resultType", "result"}}` or
//! `{"status": "error", "errorType", "error"}`), with every way an answer
//! can be unusable said plainly.

use serde::Deserialize;
use serde_json::Value;

/// One series' points: `(unix seconds, value)`.
pub type Points = Vec<(f64, f64)>;

/// What a query returned, normalised.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An instant vector or scalar: one value per series.
    Instant(Vec<(String, f64)>),
    /// A range matrix: points per series.
    Range(Vec<(String, Points)>),
}

/// Why an answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Prometheus said `"status": "error"`.
    #[error("Prometheus rejected the query ({kind}): {message}")]
    Rejected {
        /// `errorType`, e.g. `bad_data`.
        kind: String,
        /// `error`.
        message: String,
    },
    /// Not the API's JSON (wrong address, proxy page...).
    #[error("not a Prometheus API answer (HTTP {status}): {detail}")]
    NotApi {
        /// HTTP status.
        status: u16,
        /// Parser error and body excerpt.
        detail: String,
    },
    /// JSON of the right envelope but an unexpected shape.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// `<address>/api/v1/query?query=…&time=…`.
pub fn query_url(address: &str, query: &str, time: f64) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("time", &format!("{time:.3}"))
        .finish();
    format!("{address}/api/v1/query?{q}")
}

/// `<address>/api/v1/query_range?query=…&start=…&end=…&step=…`.
pub fn query_range_url(address: &str, query: &str, start: f64, end: f64, step_s: f64) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("start", &format!("{start:.3}"))
        .append_pair("end", &format!("{end:.3}"))
        .append_pair("step", &format!("{step_s:.3}"))
        .finish();
    format!("{address}/api/v1/query_range?{q}")
}

/// Parses an answer; also returns Prometheus' warnings.
pub fn parse(status: u16, body: &[u8]) -> Result<(QueryResult, Vec<String>), ApiError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.trim().chars().take(200).collect();
        ApiError::NotApi {
            status,
            detail: format!("{e}: {excerpt:?}"),
        }
    })?;
    if env.status != "success" {
        return Err(ApiError::Rejected {
            kind: env.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            message: env.error.unwrap_or_else(|| "no message".into()),
        });
    }
    let data = env
        .data
        .ok_or_else(|| ApiError::Shape("status success without data".into()))?;
    let result = match data.result_type.as_str() {
        "scalar" => QueryResult::Instant(vec![(String::new(), point(&data.result)?.1)]),
        "vector" => {
            let items = data
                .result
                .as_array()
                .ok_or_else(|| ApiError::Shape("vector result is not a list".into()))?;
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push((labels(it), point(&it["value"])?.1));
            }
            QueryResult::Instant(out)
        }
        "matrix" => {
            let items = data
                .result
                .as_array()
                .ok_or_else(|| ApiError::Shape("matrix result is not a list".into()))?;
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let values = it["values"]
                    .as_array()
                    .ok_or_else(|| ApiError::Shape("matrix series without values".into()))?;
                let mut pts = Vec::with_capacity(values.len());
                for v in values {
                    pts.push(point(v)?);
                }
                out.push((labels(it), pts));
            }
            QueryResult::Range(out)
        }
        other => {
            return Err(ApiError::Shape(format!(
                "result type `{other}`; the query must give a number (scalar or vector)"
            )))
        }
    };
    Ok((result, env.warnings))
}

/// `[<unix time>, "<value>"]`.
fn point(v: &Value) -> Result<(f64, f64), ApiError> {
    let bad = || ApiError::Shape(format!("`{v}` is not a [time, \"value\"] pair"));
    let arr = v.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let t = arr[0].as_f64().ok_or_else(bad)?;
    let x = arr[1]
        .as_str()
        .and_then(crate::promtext::parse_value)
        .ok_or_else(bad)?;
    Ok((t, x))
}

fn labels(series: &Value) -> String {
    match series["metric"].as_object() {
        Some(m) if !m.is_empty() => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        _ => "{}".into(),
    }
}

/// The one value of an instant result: `None` for no series or `NaN`
/// (e.g. 0/0 with no traffic); an error for several series.
pub fn single(result: &QueryResult) -> Result<Option<f64>, String> {
    match result {
        QueryResult::Instant(v) if v.len() > 1 => Err(several(v.iter().map(|s| &s.0))),
        QueryResult::Instant(v) => Ok(v.first().map(|s| s.1).filter(|x| !x.is_nan())),
        QueryResult::Range(_) => Err("an instant query returned a range".into()),
    }
}

/// The points of a range result's one series (NaN points dropped).
pub fn single_series(result: &QueryResult) -> Result<Points, String> {
    match result {
        QueryResult::Range(v) if v.len() > 1 => Err(several(v.iter().map(|s| &s.0))),
        QueryResult::Range(v) => Ok(v
            .first()
            .map(|s| s.1.iter().copied().filter(|p| !p.1.is_nan()).collect())
            .unwrap_or_default()),
        QueryResult::Instant(v) => Ok(v
            .iter()
            .map(|s| (0.0, s.1))
            .filter(|p| !p.1.is_nan())
            .collect()),
    }
}

fn several<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.take(3).map(String::as_str).collect();
    format!(
        "the query returned several series ({}…); aggregate it to one number, e.g. with sum() or max()",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded() {
        let u = query_url(
            "http://p:9090",
            "sum(rate(x{code=~\"5..\"}[1m]))",
            1700000000.5,
        );
        assert_eq!(
            u,
            "http://p:9090/api/v1/query?query=sum%28rate%28x%7Bcode%3D%7E%225..%22%7D%5B1m%5D%29%29&time=1700000000.500"
        );
        let r = query_range_url("http://p", "up", 10.0, 20.0, 5.0);
        assert_eq!(
            r,
            "http://p/api/v1/query_range?query=up&start=10.000&end=20.000&step=5.000"
        );
    }

    #[test]
    fn parses_vectors_matrices_and_scalars() -> Result<(), ApiError> {
        let (r, w) = parse(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.25"]}]},"warnings":["w"]}"#)?;
        assert_eq!(single(&r), Ok(Some(0.25)));
        assert_eq!(w, ["w"]);
        let (r, _) = parse(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )?;
        assert_eq!(single(&r), Ok(None));
        let (r, _) = parse(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#)?;
        assert_eq!(single(&r), Ok(None));
        let (r, _) = parse(
            200,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
        )?;
        assert_eq!(single(&r), Ok(Some(3.0)));
        let (r, _) = parse(200, br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1,"1"],[2,"NaN"],[3,"+Inf"]]}]}}"#)?;
        assert_eq!(
            single_series(&r),
            Ok(vec![(1.0, 1.0), (3.0, f64::INFINITY)])
        );
        let (r, _) = parse(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#)?;
        assert!(single(&r).is_err_and(|e| e.contains("{a=1}, {a=2}") && e.contains("sum()")));
        Ok(())
    }

    #[test]
    fn errors_are_explained() {
        let e = parse(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.to_string()),
            Err("Prometheus rejected the query (bad_data): 1:5: parse error: unexpected".into())
        );
        let e = parse(404, b"404 page not found")
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.is_err_and(|e| e.starts_with("not a Prometheus API answer (HTTP 404)")
                && e.contains("404 page not found"))
        );
        let e = parse(
            200,
            br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
        );
        assert!(matches!(e, Err(ApiError::Shape(_))));
    }
}
