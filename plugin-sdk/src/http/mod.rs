//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host allows only the `host:port`s in the stage's `grants.network`;
//! anything else fails with [`HttpError::Denied`], which `?` turns into
//! [`StageError::Denied`]. The whole response body is read into memory (at
//! most [`DEFAULT_MAX_RESPONSE_BYTES`] unless raised with
//! [`Request::max_response_bytes`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_sdk::http::{self, Method, Request};
//!
//! # fn f() -> Result<(), sluice_sdk::StageError> {
//! let resp = http::get("http://prometheus:9090/api/v1/query?query=up")?;
//! sluice_sdk::info!("status {}: {}", resp.status, resp.text());
//!
//! let resp = Request::new(Method::Post, "https://deploy.example.com/api/releases")
//!     .header("content-type", "application/json")
//!     .body(br#"{"version":"1.2.3"}"#.to_vec())
//!     .timeout(Duration::from_secs(30))
//!     .send()?;
//! #[derive(serde::Deserialize)]
//! struct Release { id: String }
//! let release: Release = resp.json()?;
//! # let _ = release.id;
//! # Ok(()) }
//! ```

mod transport;
mod url;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::StageError;

/// Response bodies larger than this fail with [`HttpError::TooLarge`] unless
/// the limit is changed with [`Request::max_response_bytes`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// An HTTP request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other method token, e.g. `PURGE`.
    Other(String),
}

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL.
    InvalidUrl(String),
    /// The host refused a header, the method or another part of the request.
    InvalidRequest(String),
    /// The host does not allow this destination (`host:port`, named here;
    /// see `grants.network`).
    Denied(String),
    /// The request failed: DNS, connection, TLS, timeout, protocol.
    Request(String),
    /// Reading or writing a body failed.
    Body(String),
    /// The response body exceeded the limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The response body could not be decoded (see [`Response::json`]).
    Decode(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(m) => write!(f, "invalid URL {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid HTTP request: {m}"),
            Self::Denied(a) => write!(
                f,
                "HTTP request denied: the runner refused {a} (is it in the stage's grants.network?)"
            ),
            Self::Request(m) => write!(f, "HTTP request failed: {m}"),
            Self::Body(m) => write!(f, "HTTP body error: {m}"),
            Self::TooLarge { limit } => write!(f, "HTTP response body larger than {limit} bytes"),
            Self::Decode(m) => write!(f, "could not decode HTTP response: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for StageError {
    /// [`HttpError::Denied`] becomes [`StageError::Denied`] with
    /// [`Capability::Network`](crate::Capability::Network) of the
    /// destination; the rest [`StageError::Failed`].
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(authority) => {
                StageError::denied(crate::Capability::Network(authority))
            }
            _ => StageError::failed(e.to_string()),
        }
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Headers in the order received; values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// True for a 2xx status.
    ///
    /// ```
    /// # let r = sluice_sdk::http::Response { status: 204, headers: vec![], body: vec![] };
    /// assert!(r.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// # let r = sluice_sdk::http::Response { status: 200, headers: vec![("Content-Type".into(), "text/plain".into())], body: vec![] };
    /// assert_eq!(r.header("content-type"), Some("text/plain"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced by `U+FFFD`).
    ///
    /// ```
    /// # let r = sluice_sdk::http::Response { status: 200, headers: vec![], body: b"ok".to_vec() };
    /// assert_eq!(r.text(), "ok");
    /// ```
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON.
    ///
    /// ```
    /// # let r = sluice_sdk::http::Response { status: 200, headers: vec![], body: br#"{"n":1}"#.to_vec() };
    /// #[derive(serde::Deserialize)]
    /// struct N { n: u32 }
    /// let n: N = r.json()?;
    /// assert_eq!(n.n, 1);
    /// # Ok::<(), sluice_sdk::http::HttpError>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode(e.to_string()))
    }
}

/// Sends a `GET` request with no extra headers.
///
/// ```no_run
/// let resp = sluice_sdk::http::get("http://localhost:8080/healthz")?;
/// # Ok::<(), sluice_sdk::http::HttpError>(())
/// ```
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new(Method::Get, url).send()
}

/// An HTTP request, built step by step and sent with [`send`](Self::send).
///
/// ```no_run
/// use sluice_sdk::http::{Method, Request};
/// let resp = Request::new(Method::Put, "http://localhost:8080/weights")
///     .header("content-type", "text/plain")
///     .body(b"canary=10".to_vec())
///     .send()?;
/// # Ok::<(), sluice_sdk::http::HttpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    max_response_bytes: usize,
}

impl Request {
    /// A request with `method` to an absolute `http://` or `https://` URL.
    ///
    /// ```
    /// let req = sluice_sdk::http::Request::new(sluice_sdk::http::Method::Get, "http://example.com/");
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Adds a header (repeat a name to send several values). `Host`,
    /// `Connection` and similar hop-by-hop headers are the host's to set
    /// and may be refused.
    ///
    /// ```
    /// # use sluice_sdk::http::{Method, Request};
    /// let req = Request::new(Method::Get, "http://h/").header("accept", "application/json");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into().into_bytes()));
        self
    }

    /// Sets the body. `content-length` is sent unless set explicitly.
    ///
    /// ```
    /// # use sluice_sdk::http::{Method, Request};
    /// let req = Request::new(Method::Post, "http://h/").body(b"{}".to_vec());
    /// ```
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Limits the time to connect, to the first response byte and between
    /// body bytes (each separately; there is no overall deadline beyond the
    /// stage's own timeout). Without it the host's defaults apply.
    ///
    /// ```
    /// # use sluice_sdk::http::{Method, Request};
    /// let req = Request::new(Method::Get, "http://h/").timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Changes the response body limit ([`DEFAULT_MAX_RESPONSE_BYTES`]).
    ///
    /// ```
    /// # use sluice_sdk::http::{Method, Request};
    /// let req = Request::new(Method::Get, "http://h/").max_response_bytes(1024);
    /// ```
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Sends the request and blocks until the whole response body arrived.
    /// Any status, 4xx and 5xx included, is `Ok`; check
    /// [`Response::is_success`].
    ///
    /// ```no_run
    /// # use sluice_sdk::http::{Method, Request};
    /// let resp = Request::new(Method::Get, "http://h/").send()?;
    /// # Ok::<(), sluice_sdk::http::HttpError>(())
    /// ```
    pub fn send(&self) -> Result<Response, HttpError> {
        let target = url::parse(&self.url)?;
        let mut headers = self.headers.clone();
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let user_agent = !has("user-agent");
        let content_length = self.body.is_some() && !has("content-length");
        if user_agent {
            let ua = concat!("sluice-sdk/", env!("CARGO_PKG_VERSION"));
            headers.push(("user-agent".into(), ua.as_bytes().to_vec()));
        }
        if let (true, Some(body)) = (content_length, &self.body) {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        transport::send(transport::Outgoing {
            method: &self.method,
            target,
            headers,
            body: self.body.as_deref(),
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
        })
    }
}
