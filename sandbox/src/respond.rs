//! Request and response helpers shared by every emulated surface, including
//! the three error-body shapes Azure uses (ARM wrapped, App Service PascalCase
//! unwrapped, Entra OAuth) — reference §1.3 and §2.1.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// A response as the sandbox builds it.
pub(crate) type Resp = http::Response<Full<Bytes>>;

/// What a handler decides: a response, or closing the connection without one
/// (used by fault injection to emulate a dropped connection).
pub(crate) enum Outcome {
    Respond(Resp),
    Drop,
}

impl From<Resp> for Outcome {
    fn from(r: Resp) -> Self {
        Outcome::Respond(r)
    }
}

/// An incoming request with its body already read.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    pub host: String,
    pub path: String,
    pub raw_query: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// HTTP/1.x framing said nothing about a body: neither Content-Length nor
    /// Transfer-Encoding was sent (what Azure front ends answer 411 for).
    pub no_length: bool,
}

impl Req {
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path_and_query(&self) -> String {
        match &self.raw_query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// The path split on `/`, empty segments dropped, percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// The request body parsed as JSON; an empty body is `None`.
    pub fn json_body(&self) -> Result<Option<Value>, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

pub(crate) fn build(status: StatusCode, content_type: Option<&str>, body: Bytes) -> Resp {
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub(crate) fn json(status: StatusCode, body: &Value) -> Resp {
    build(
        status,
        Some("application/json; charset=utf-8"),
        Bytes::from(body.to_string()),
    )
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    build(
        status,
        Some("text/plain; charset=utf-8"),
        Bytes::from(body.into()),
    )
}

pub(crate) fn html(status: StatusCode, body: impl Into<String>) -> Resp {
    build(status, Some("text/html"), Bytes::from(body.into()))
}

pub(crate) fn empty(status: StatusCode) -> Resp {
    build(status, None, Bytes::new())
}

pub(crate) fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

pub(crate) fn append_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(name, v);
    }
}

/// ARM's standard error body: `{"error":{"code","message"}}`.
pub(crate) fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Resp {
    json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// App Service's unwrapped PascalCase error body, with the heterogeneous
/// `Details` array seen in the wild (reference §1.3).
pub(crate) fn web_error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    extended_code: &str,
) -> Resp {
    let message = message.into();
    json(
        status,
        &json!({
            "Code": code,
            "Message": message,
            "Target": null,
            "Details": [
                {"Message": message},
                {"Code": code},
                {"ErrorEntity": {
                    "ExtendedCode": extended_code,
                    "MessageTemplate": message,
                    "Parameters": [],
                    "Code": code,
                    "Message": message
                }}
            ],
            "Innererror": null
        }),
    )
}

/// Entra's OAuth error body (reference §2.1). `description` is the text after
/// the `AADSTSnnnnn: ` prefix.
pub(crate) fn entra_error(
    status: StatusCode,
    error: &str,
    aadsts: u32,
    description: &str,
    authority: &str,
) -> Resp {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let full = format!(
        "AADSTS{aadsts}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
    );
    json(
        status,
        &json!({
            "error": error,
            "error_description": full,
            "error_codes": [aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{authority}/error?code={aadsts}")
        }),
    )
}

/// Marks a response whose (empty) body the HTTPS listener replaces with
/// [`Padding`] of `bytes` bytes (the `huge_body` faults); without
/// `chunked` the response carries `Content-Length`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LazyBody {
    pub bytes: u64,
    pub chunked: bool,
}

/// 200 with a JSON content type whose body is generated lazily.
pub(crate) fn lazy_json(bytes: u64, chunked: bool) -> Resp {
    let mut r = build(
        StatusCode::OK,
        Some("application/json; charset=utf-8"),
        Bytes::new(),
    );
    if !chunked {
        set_header(&mut r, "content-length", &bytes.to_string());
    }
    r.extensions_mut().insert(LazyBody { bytes, chunked });
    r
}

const PADDING_HEAD: &[u8] = b"{\"padding\":\"";
const PADDING_TAIL: &[u8] = b"\"}";
/// The filler every padding chunk is a slice of (no allocation per chunk).
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A body of exactly `total` bytes produced chunk by chunk, at most 64 KiB
/// at a time: `{"padding":"xxx…"}` when `total` fits the JSON frame, else
/// only `x`s. Nothing is generated before it is asked for, so a client that
/// goes away stops it.
#[derive(Debug)]
pub(crate) struct Padding {
    total: u64,
    pos: u64,
    /// Whether the size is announced (`Content-Length`).
    pub exact: bool,
}

impl Padding {
    pub fn new(total: u64, exact: bool) -> Self {
        Self {
            total,
            pos: 0,
            exact,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_done(&self) -> bool {
        self.pos >= self.total
    }

    /// The next chunk, or `None` once `total` bytes were produced.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        if self.is_done() {
            return None;
        }
        let frame = (PADDING_HEAD.len() + PADDING_TAIL.len()) as u64;
        let json = self.total >= frame;
        let remaining = self.total - self.pos;
        let tail = PADDING_TAIL.len() as u64;
        let chunk = if json && self.pos < PADDING_HEAD.len() as u64 {
            let start = usize::try_from(self.pos).unwrap_or(0);
            Bytes::from_static(&PADDING_HEAD[start..])
        } else if json && remaining <= tail {
            let start = PADDING_TAIL.len() - usize::try_from(remaining).unwrap_or(0);
            Bytes::from_static(&PADDING_TAIL[start..])
        } else {
            let room = if json { remaining - tail } else { remaining };
            let n = usize::try_from(room.min(FILLER.len() as u64)).unwrap_or(FILLER.len());
            Bytes::from_static(&FILLER[..n])
        };
        self.pos += chunk.len() as u64;
        Some(chunk)
    }
}

/// RFC 1123 time for cookie and Date-like fields.
pub(crate) fn utc_now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod padding_tests {
    use super::*;

    fn drain(total: u64) -> (Vec<u8>, usize) {
        let mut p = Padding::new(total, true);
        let (mut out, mut chunks) = (Vec::new(), 0);
        while let Some(c) = p.next_chunk() {
            assert!(!c.is_empty() && c.len() <= 64 * 1024);
            out.extend_from_slice(&c);
            chunks += 1;
        }
        assert!(p.is_done());
        (out, chunks)
    }

    #[test]
    fn padding_is_exactly_as_long_as_asked_and_json_when_it_fits() {
        for total in [
            0,
            1,
            5,
            13,
            14,
            15,
            64 * 1024,
            64 * 1024 + 14,
            3 * 64 * 1024 + 7,
        ] {
            let (bytes, _) = drain(total);
            assert_eq!(bytes.len() as u64, total, "{total}");
            if total >= 14 {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["padding"].as_str().unwrap().len() as u64, total - 14);
            }
        }
        let (_, chunks) = drain(10 * 64 * 1024);
        assert!(chunks <= 12, "{chunks}");
    }
}
