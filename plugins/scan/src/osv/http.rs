//! The [`Transport`] the stage uses: the SDK's HTTP client, which reaches
//! only the `host:port`s in the stage's `grants.network` (the one module of
//! [`crate::osv`] that needs the sandbox; the rest is tested natively with
//! fake transports).

use std::time::Duration;

use sluice_sdk::http::{HttpError, Method, Request};

use super::api::{FetchError, Transport};

/// Per-request timeout (to connect, to the first byte, between bytes).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Largest API answer read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Largest dump downloaded: OSV's biggest per-ecosystem `all.zip` files
/// are a few hundred MiB; the whole body is held in memory.
pub const MAX_DUMP_BYTES: usize = 1024 * 1024 * 1024;

/// How much of an error body is quoted in a message.
const QUOTED_BODY: usize = 200;

/// The SDK's blocking client with a body limit.
#[derive(Debug, Clone)]
pub struct SdkTransport {
    /// Largest response body accepted.
    pub max_bytes: usize,
}

impl SdkTransport {
    fn send(&self, req: Request, url: &str) -> Result<Vec<u8>, FetchError> {
        let resp = req
            .timeout(TIMEOUT)
            .max_response_bytes(self.max_bytes)
            .send()
            .map_err(|e| match e {
                HttpError::Denied(authority) => FetchError::Denied { authority },
                other => FetchError::Failed {
                    url: url.to_string(),
                    message: other.to_string(),
                },
            })?;
        if !resp.is_success() {
            let text = resp.text();
            let body: String = text.trim().chars().take(QUOTED_BODY).collect();
            return Err(FetchError::Status {
                url: url.to_string(),
                status: resp.status,
                body,
            });
        }
        Ok(resp.body)
    }
}

impl Transport for SdkTransport {
    fn post_json(&mut self, url: &str, body: &[u8]) -> Result<Vec<u8>, FetchError> {
        let req = Request::new(Method::Post, url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_vec());
        self.send(req, url)
    }

    fn get(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.send(Request::new(Method::Get, url), url)
    }
}
