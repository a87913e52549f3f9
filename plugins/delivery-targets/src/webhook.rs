//! The `http` target's webhook API (docs/delivery.md): JSON requests to
//! `<url>/deploy`, `/weights`, `/flags`, `/rollback`, `/state`. Any
//! non-2xx answer fails with the response body in the message.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_sdk::http::{Method, Request};
use sluice_sdk::StageError;

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// `POST <base><path>` with `body` as JSON; the answer parsed as JSON
/// (an empty body reads as `{}` / `null`).
pub fn post<B: Serialize, T: DeserializeOwned>(
    base: &str,
    path: &str,
    body: &B,
) -> Result<T, StageError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| StageError::failed(format!("encoding the request to {path}: {e}")))?;
    send(
        Request::new(Method::Post, url(base, path))
            .header("content-type", "application/json")
            .body(bytes),
        path,
    )
}

/// `GET <base><path>`, parsed as JSON.
pub fn get<T: DeserializeOwned>(base: &str, path: &str) -> Result<T, StageError> {
    send(Request::new(Method::Get, url(base, path)), path)
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn send<T: DeserializeOwned>(req: Request, path: &str) -> Result<T, StageError> {
    let resp = req
        .header("accept", "application/json")
        .timeout(TIMEOUT)
        .send()
        .map_err(|e| StageError::from(e).with_context(format!("webhook {path}")))?;
    if !resp.is_success() {
        return Err(StageError::failed(format!(
            "webhook {path} answered {}: {}",
            resp.status,
            resp.text().trim()
        )));
    }
    let body: &[u8] = if resp.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &resp.body
    };
    serde_json::from_slice(body).map_err(|e| {
        StageError::failed(format!(
            "webhook {path} answered something that is not the documented JSON: {e}: {}",
            resp.text().trim()
        ))
    })
}
