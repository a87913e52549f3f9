//! The checks of one probe against one response: status, body text, JSON
//! pointers and latency. Each failed check says what was expected and what
//! was observed.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::Probe;

/// A response as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Time from sending the request to the end of the body.
    pub latency: Duration,
}

/// One check that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// `status`, `body-contains`, `json <pointer>`, `max-latency` or `request`.
    pub check: String,
    /// What the probe expected.
    pub expected: String,
    /// What came back.
    pub observed: String,
    /// Numeric observed value, for the gate.
    #[serde(skip)]
    pub observed_value: Option<f64>,
    /// Numeric expected value, for the gate.
    #[serde(skip)]
    pub expected_value: Option<f64>,
}

impl Failure {
    fn text(
        check: impl Into<String>,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            expected: expected.into(),
            observed: observed.into(),
            observed_value: None,
            expected_value: None,
        }
    }

    /// A request that got no response at all.
    pub fn request(error: impl Into<String>) -> Self {
        Self::text("request", "a response", error)
    }

    /// `check: observed …, expected …` for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}: observed {}, expected {}",
            self.check, self.observed, self.expected
        )
    }
}

/// Longest body excerpt quoted in a failure.
const EXCERPT: usize = 120;

/// Runs every check of `probe` on `resp`; empty when all held.
pub fn check(probe: &Probe, resp: &Observed) -> Vec<Failure> {
    let mut out = Vec::new();
    if !probe.expect_status.matches(resp.status) {
        let mut f = Failure::text(
            "status",
            probe.expect_status.to_string(),
            format!("{}{}", resp.status, excerpt_suffix(&resp.body)),
        );
        f.observed_value = Some(f64::from(resp.status));
        f.expected_value = probe.expect_status.first_code().map(f64::from);
        out.push(f);
    }
    let text = String::from_utf8_lossy(&resp.body);
    for needle in &probe.body_contains {
        if !text.contains(needle.as_str()) {
            out.push(Failure::text(
                "body-contains",
                format!("body containing {needle:?}"),
                format!("body {:?}", excerpt(&resp.body)),
            ));
        }
    }
    if !probe.json.is_empty() {
        match serde_json::from_slice::<Value>(&resp.body) {
            Err(e) => out.push(Failure::text(
                "json",
                "a JSON body",
                format!("not JSON ({e}): {:?}", excerpt(&resp.body)),
            )),
            Ok(doc) => {
                for (pointer, expected) in &probe.json {
                    let check = format!("json {pointer}");
                    match doc.pointer(pointer) {
                        None => out.push(Failure::text(check, expected.to_string(), "missing")),
                        Some(v) if !json_equal(v, expected) => {
                            let mut f = Failure::text(check, expected.to_string(), v.to_string());
                            f.observed_value = v.as_f64();
                            f.expected_value = expected.as_f64();
                            out.push(f);
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    if let Some(max) = probe.max_latency {
        if resp.latency > max {
            let mut f = Failure::text("max-latency", format!("<= {}", ms(max)), ms(resp.latency));
            f.observed_value = Some(millis(resp.latency));
            f.expected_value = Some(millis(max));
            out.push(f);
        }
    }
    out
}

/// JSON equality where `1` equals `1.0`.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Milliseconds as a float.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", millis(d))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn excerpt_suffix(body: &[u8]) -> String {
    let e = excerpt(body);
    if e.is_empty() {
        String::new()
    } else {
        format!(" ({e:?})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::StatusSpec;
    use serde_json::json;

    fn probe() -> Probe {
        Probe {
            name: "health".into(),
            method: "GET".into(),
            url: "http://h/health".into(),
            headers: vec![],
            body: None,
            expect_status: StatusSpec::default(),
            body_contains: vec!["ok".into()],
            json: vec![("/status".into(), json!("ok")), ("/n".into(), json!(1))],
            max_latency: Some(Duration::from_millis(300)),
            retries: 0,
        }
    }

    fn resp(status: u16, body: &str, ms: u64) -> Observed {
        Observed {
            status,
            body: body.as_bytes().to_vec(),
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn all_checks_hold() {
        assert!(check(&probe(), &resp(200, r#"{"status":"ok","n":1.0}"#, 5)).is_empty());
    }

    #[test]
    fn each_failure_says_expected_and_observed() {
        let f = check(&probe(), &resp(500, r#"{"status":"down","n":2}"#, 450));
        let checks: Vec<&str> = f.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            checks,
            [
                "status",
                "body-contains",
                "json /status",
                "json /n",
                "max-latency"
            ]
        );
        assert_eq!(f[0].observed_value, Some(500.0));
        assert_eq!(f[0].expected_value, Some(200.0));
        assert!(f[0].observed.starts_with("500 ("), "{}", f[0].observed);
        assert_eq!(
            f[2].describe(),
            "json /status: observed \"down\", expected \"ok\""
        );
        assert_eq!(
            f[4].describe(),
            "max-latency: observed 450.0 ms, expected <= 300.0 ms"
        );
        assert_eq!(f[4].observed_value, Some(450.0));
    }

    #[test]
    fn non_json_and_missing_pointers() {
        let f = check(&probe(), &resp(200, "ok but not json", 1));
        assert_eq!(f.len(), 1);
        assert!(f[0].observed.starts_with("not JSON"));
        let f = check(&probe(), &resp(200, r#"{"status":"ok"}"#, 1));
        assert_eq!(f[0].describe(), "json /n: observed missing, expected 1");
    }

    #[test]
    fn json_numbers_compare_by_value() {
        assert!(json_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!("1"), &json!(1)));
    }
}
