//! The `wasi:http` / `wasi:io` calls behind [`Request::send`](super::Request::send):
//! build the request, write the body respecting `check-write`, wait on the
//! response future's pollable, and read the body until the stream closes.

use std::time::Duration;

use super::url::{Target, UrlScheme};
use super::{HttpError, Method, Response};
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types as wasi;
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// How much to ask for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// Everything needed to send one request.
pub(crate) struct Outgoing<'a> {
    pub method: &'a Method,
    pub target: Target,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<&'a [u8]>,
    pub timeout: Option<Duration>,
    pub max_response_bytes: usize,
}

pub(crate) fn send(out: Outgoing<'_>) -> Result<Response, HttpError> {
    let authority = out.target.host_port();
    let code_error = |code: wasi::ErrorCode| code_error(code, &authority);
    let fields = wasi::Fields::from_list(&out.headers)
        .map_err(|e| HttpError::InvalidRequest(format!("header refused by the host: {e:?}")))?;
    let request = wasi::OutgoingRequest::new(fields);
    let refused = |what: &str| HttpError::InvalidRequest(format!("{what} refused by the host"));
    request
        .set_method(&wasi_method(out.method))
        .map_err(|()| refused("method"))?;
    let scheme = match out.target.scheme {
        UrlScheme::Http => wasi::Scheme::Http,
        UrlScheme::Https => wasi::Scheme::Https,
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(&out.target.authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(&out.target.path_with_query))
        .map_err(|()| refused("path"))?;

    // Take the body handle before `handle` consumes the request; write it
    // afterwards, when the host is reading it (writing first could block on
    // a full pipe with nobody draining it).
    let body = match out.body {
        Some(_) => Some(request.body().map_err(|()| refused("request body"))?),
        None => None,
    };
    let future = outgoing_handler::handle(request, options(out.timeout)).map_err(code_error)?;
    if let (Some(body), Some(bytes)) = (body, out.body) {
        {
            let stream = body
                .write()
                .map_err(|()| HttpError::Body("request body stream already taken".into()))?;
            write_all(&stream, bytes, &code_error)?;
        }
        wasi::OutgoingBody::finish(body, None).map_err(code_error)?;
    }

    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(code_error(code)),
            Some(Err(())) => return Err(HttpError::Body("response already taken".into())),
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Body("response body already taken".into()))?;
    let body = {
        let stream = incoming
            .stream()
            .map_err(|()| HttpError::Body("response body stream already taken".into()))?;
        read_all(&stream, out.max_response_bytes, &code_error)?
    };
    // Trailers are not exposed; finishing the body releases it.
    drop(wasi::IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn options(timeout: Option<Duration>) -> Option<wasi::RequestOptions> {
    let timeout = timeout?;
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let opts = wasi::RequestOptions::new();
    // A host that does not support one of these keeps its own default.
    let _ = opts.set_connect_timeout(Some(ns));
    let _ = opts.set_first_byte_timeout(Some(ns));
    let _ = opts.set_between_bytes_timeout(Some(ns));
    Some(opts)
}

fn wasi_method(m: &Method) -> wasi::Method {
    match m {
        Method::Get => wasi::Method::Get,
        Method::Head => wasi::Method::Head,
        Method::Post => wasi::Method::Post,
        Method::Put => wasi::Method::Put,
        Method::Delete => wasi::Method::Delete,
        Method::Patch => wasi::Method::Patch,
        Method::Options => wasi::Method::Options,
        Method::Other(s) => wasi::Method::Other(s.clone()),
    }
}

/// Writes `data` in pieces no larger than `check-write` allows, blocking on
/// the stream's pollable while the host's buffer is full, then flushes.
fn write_all(
    stream: &OutputStream,
    mut data: &[u8],
    code_error: &dyn Fn(wasi::ErrorCode) -> HttpError,
) -> Result<(), HttpError> {
    let stream_error = |e| stream_error(e, code_error);
    let pollable = stream.subscribe();
    while !data.is_empty() {
        let permitted = stream.check_write().map_err(stream_error)?;
        if permitted == 0 {
            pollable.block();
            continue;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let (chunk, rest) = data.split_at(n);
        stream.write(chunk).map_err(stream_error)?;
        data = rest;
    }
    drop(pollable);
    stream.blocking_flush().map_err(stream_error)
}

/// Reads until the stream reports `closed` (the end of the body).
fn read_all(
    stream: &InputStream,
    limit: usize,
    code_error: &dyn Fn(wasi::ErrorCode) -> HttpError,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if body.len().saturating_add(chunk.len()) > limit {
                    return Err(HttpError::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(stream_error(e, code_error)),
        }
    }
}

fn stream_error(e: StreamError, code_error: &dyn Fn(wasi::ErrorCode) -> HttpError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Body("stream closed early".into()),
        StreamError::LastOperationFailed(err) => match wasi::http_error_code(&err) {
            Some(code) => code_error(code),
            None => HttpError::Body(err.to_debug_string()),
        },
    }
}

/// A readable error for a `wasi:http` error code on a request to `authority`
/// (`host:port`).
fn code_error(code: wasi::ErrorCode, authority: &str) -> HttpError {
    use wasi::ErrorCode as E;
    let msg = match &code {
        E::HttpRequestDenied => return HttpError::Denied(authority.to_string()),
        E::DnsError(p) => format!(
            "DNS lookup failed{}",
            p.rcode
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        E::DestinationNotFound => "destination not found".into(),
        E::DestinationUnavailable => "destination unavailable".into(),
        E::DestinationIpProhibited => "destination IP address prohibited".into(),
        E::DestinationIpUnroutable => "destination IP address unroutable".into(),
        E::ConnectionRefused => "connection refused".into(),
        E::ConnectionTerminated => "connection terminated".into(),
        E::ConnectionTimeout => "connection timed out".into(),
        E::ConnectionReadTimeout => "timed out reading the response".into(),
        E::ConnectionWriteTimeout => "timed out writing the request".into(),
        E::TlsProtocolError => "TLS protocol error".into(),
        E::TlsCertificateError => "TLS certificate error".into(),
        E::HttpRequestUriInvalid => "invalid request URI".into(),
        E::HttpResponseTimeout => "timed out waiting for the response".into(),
        E::InternalError(Some(m)) => format!("internal error: {m}"),
        other => format!("{other:?}"),
    };
    HttpError::Request(msg)
}
