//! Azure Resource Manager: authenticated JSON calls and long-running
//! operations.
//!
//! - Reads and whole-state writes (GET, PATCH of `config/web`) are
//!   idempotent and retried through 429/5xx/connection failures.
//! - Actions (a swap, a restart) are sent **once**. When their outcome is
//!   unknown (timeout, reset after sending) the error is
//!   [`ArmError::Ambiguous`]: the caller reads state before doing anything
//!   else — a retried swap swaps back.
//! - Long-running operations are polled through `Azure-AsyncOperation`
//!   (its `status`), else `Location` (202 while running), honouring
//!   `Retry-After`, bounded by a deadline and cancellation.
//! - Error bodies come in ARM's `{"error":{"code","message"}}` and App
//!   Service's unwrapped PascalCase `{"Code","Message"}`; both are read,
//!   case-insensitively, and kept with the status and request id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::auth::{AuthError, TokenProvider};
use crate::cancel::{Cancel, Cancelled};
use crate::http::{self, HttpError, Idempotency, Redacted, RetryPolicy};

/// An ARM failure, by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// No token: abort with the auth error's advice.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The resource does not exist (abort: check names).
    #[error("not found: {what} ({code}: {message})")]
    NotFound {
        /// What was asked for.
        what: String,
        /// ARM error code.
        code: String,
        /// ARM message.
        message: String,
    },
    /// Another operation holds the resource (wait and read state again).
    #[error("conflict on {what}: {code}: {message}")]
    Conflict {
        /// What was asked for.
        what: String,
        /// ARM error code.
        code: String,
        /// ARM message.
        message: String,
    },
    /// ARM refused the request (abort; the message says why).
    #[error("{method} {what} was refused: HTTP {status} {code}: {message}{}", .request_id.as_ref().map(|r| format!(" (x-ms-request-id {r})")).unwrap_or_default())]
    Refused {
        /// Method.
        method: String,
        /// What was asked for.
        what: String,
        /// Status.
        status: u16,
        /// ARM error code.
        code: String,
        /// ARM message.
        message: String,
        /// For support cases.
        request_id: Option<String>,
    },
    /// Azure kept failing after retries (roll back if a change is in flight).
    #[error("Azure is unavailable for {what}: {detail}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// The last failure.
        detail: String,
    },
    /// A request sent once may or may not have been applied: read state
    /// before anything else.
    #[error(
        "the outcome of {what} is unknown ({detail}); expedite reads the state before doing anything else"
    )]
    Ambiguous {
        /// What was asked for.
        what: String,
        /// Why it is unknown.
        detail: String,
    },
    /// ARM answered with something unusable (not JSON, or larger than any
    /// ARM document): abort; the message names the endpoint.
    #[error("ARM's answer to {what} cannot be used: {detail}")]
    BadAnswer {
        /// What was asked for.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A long-running operation failed.
    #[error("{what} failed: {code}: {message}")]
    OperationFailed {
        /// What was running.
        what: String,
        /// Error code.
        code: String,
        /// Message.
        message: String,
    },
    /// Stopped by cancellation.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// Not sent: the request would be refused or unsafe (abort; the message
    /// says how to fix it).
    #[error("{what}: {message}")]
    Invalid {
        /// What was asked for.
        what: String,
        /// Why, and how to fix it.
        message: String,
    },
}

/// Most pages [`Arm::list`] follows (a slot or revision list is one or
/// two pages in practice).
pub const MAX_PAGES: usize = 100;

/// The Microsoft.Resources api-version for the Tags API.
pub const TAGS_API_VERSION: &str = "2021-04-01";

/// Reads `code` and `message` from either ARM error shape.
pub fn parse_error_body(body: &str) -> (String, String) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        let text = body.trim();
        return (
            "Unknown".into(),
            if text.is_empty() {
                "(empty body)".into()
            } else {
                text.chars().take(500).collect()
            },
        );
    };
    let field = |o: &Value, name: &str| -> Option<String> {
        o.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    let obj = v
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("error"))
                .map(|(_, e)| e.clone())
        })
        .filter(Value::is_object)
        .unwrap_or(v.clone());
    let code = field(&obj, "code").unwrap_or_else(|| "Unknown".into());
    let mut message = field(&obj, "message").unwrap_or_default();
    if message.is_empty() {
        // App Service's details are heterogeneous: each carries one field.
        let details = obj.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("details"))
                .map(|(_, d)| d.clone())
        });
        if let Some(Value::Array(items)) = details {
            message = items
                .iter()
                .filter_map(|d| field(d, "message"))
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    (code, message)
}

/// What an action call returned before any polling.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Status of the initial response.
    pub status: StatusCode,
    /// `Azure-AsyncOperation`, if any.
    pub async_operation: Option<url::Url>,
    /// `Location`, if any.
    pub location: Option<url::Url>,
    /// Suggested first wait.
    pub retry_after: Option<Duration>,
    /// Body of the initial response.
    pub body: Value,
}

impl Accepted {
    /// True when the operation finished with the initial response.
    pub fn done(&self) -> bool {
        self.status == StatusCode::OK && self.async_operation.is_none() && self.location.is_none()
    }
}

/// Counts of ARM calls, for the benchmark and the audit log.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// GETs (including LRO polls).
    pub reads: AtomicU64,
    /// PUT/PATCH/POST/DELETE.
    pub writes: AtomicU64,
}

/// An ARM client.
#[derive(Debug, Clone)]
pub struct Arm {
    http: reqwest::Client,
    endpoint: url::Url,
    tokens: Arc<TokenProvider>,
    policy: RetryPolicy,
    /// Default wait between LRO polls when ARM does not say.
    pub poll_interval: Duration,
    counts: Arc<CallCounts>,
}

impl Arm {
    /// A client for ARM at `endpoint`.
    pub fn new(http: reqwest::Client, endpoint: url::Url, tokens: Arc<TokenProvider>) -> Self {
        Arm {
            http,
            endpoint,
            tokens,
            policy: RetryPolicy::default(),
            poll_interval: Duration::from_secs(2),
            counts: Arc::new(CallCounts::default()),
        }
    }

    /// Overrides the retry policy (tests, benchmarks).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls made so far: (reads, writes).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.reads.load(Ordering::Relaxed),
            self.counts.writes.load(Ordering::Relaxed),
        )
    }

    /// The URL of a resource path with its api-version.
    pub fn url(&self, path: &str, api_version: &str) -> Result<url::Url, ArmError> {
        let mut u = self
            .endpoint
            .join(path.trim_start_matches('/'))
            .map_err(|e| ArmError::Refused {
                method: "-".into(),
                what: path.into(),
                status: 0,
                code: "BadPath".into(),
                message: e.to_string(),
                request_id: None,
            })?;
        u.query_pairs_mut().append_pair("api-version", api_version);
        Ok(u)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        body: Option<&Value>,
        idempotency: Idempotency,
        cancel: &Cancel,
    ) -> Result<http::Response, ArmError> {
        let what = Redacted(url).to_string();
        let counter = if method == reqwest::Method::GET {
            &self.counts.reads
        } else {
            &self.counts.writes
        };
        // One retry with a fresh token after a 401 (revoked or expired early).
        for auth_attempt in 0..2 {
            let token = self.tokens.token(cancel).await?;
            counter.fetch_add(1, Ordering::Relaxed);
            let build = || {
                let mut rb = self
                    .http
                    .request(method.clone(), url.clone())
                    .bearer_auth(token.expose_secret())
                    .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
                    .header("accept", "application/json");
                rb = match body {
                    Some(b) => rb
                        .header(CONTENT_TYPE, "application/json")
                        .body(b.to_string()),
                    // ARM's front end answers 411 to a body-less POST without
                    // an explicit Content-Length: 0.
                    None if method != reqwest::Method::GET => {
                        rb.header(CONTENT_LENGTH, "0").body("")
                    }
                    None => rb,
                };
                rb
            };
            match http::send(build, idempotency, &self.policy, cancel).await {
                Ok(r) => return Ok(r),
                Err(HttpError::Status { status, .. })
                    if status == StatusCode::UNAUTHORIZED && auth_attempt == 0 =>
                {
                    self.tokens.invalidate().await;
                    continue;
                }
                Err(e) => return Err(self.classify(&method, &what, e)),
            }
        }
        Err(ArmError::Refused {
            method: method.to_string(),
            what,
            status: 401,
            code: "Unauthorized".into(),
            message: "ARM refused a freshly issued token; check the principal's role assignments"
                .into(),
            request_id: None,
        })
    }

    fn classify(&self, method: &reqwest::Method, what: &str, e: HttpError) -> ArmError {
        match e {
            HttpError::Status {
                status,
                body,
                request_id,
                ..
            } => {
                let (code, message) = parse_error_body(&body);
                match status {
                    StatusCode::NOT_FOUND => ArmError::NotFound {
                        what: what.into(),
                        code,
                        message,
                    },
                    StatusCode::CONFLICT => ArmError::Conflict {
                        what: what.into(),
                        code,
                        message,
                    },
                    s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                        ArmError::Unavailable {
                            what: what.into(),
                            detail: format!("HTTP {s} {code}: {message}"),
                        }
                    }
                    s => ArmError::Refused {
                        method: method.to_string(),
                        what: what.into(),
                        status: s.as_u16(),
                        code,
                        message,
                        request_id,
                    },
                }
            }
            HttpError::Transport {
                maybe_applied: true,
                message,
                ..
            } if *method != reqwest::Method::GET => ArmError::Ambiguous {
                what: what.into(),
                detail: message,
            },
            HttpError::Transport { message, .. } => ArmError::Unavailable {
                what: what.into(),
                detail: message,
            },
            HttpError::Cancelled(c) => ArmError::Cancelled(c),
            e @ HttpError::TooLarge { .. } => ArmError::BadAnswer {
                what: what.into(),
                detail: e.to_string(),
            },
            HttpError::Config(m) => ArmError::Unavailable {
                what: what.into(),
                detail: m,
            },
        }
    }

    /// GET a resource as JSON.
    pub async fn get(
        &self,
        path: &str,
        api_version: &str,
        cancel: &Cancel,
    ) -> Result<Value, ArmError> {
        let url = self.url(path, api_version)?;
        let r = self
            .call(
                reqwest::Method::GET,
                &url,
                None,
                Idempotency::Idempotent,
                cancel,
            )
            .await?;
        parse_json(&url, &r.text())
    }

    /// Every item of a list operation, following `nextLink` pages (at most
    /// [`MAX_PAGES`]). A `nextLink` is used as ARM gives it — its
    /// api-version and skip token included, never a second api-version —
    /// and one on another host is refused: the bearer token goes only to
    /// the configured endpoint. A list longer than that is an error, never
    /// a silently partial answer.
    pub async fn list(
        &self,
        path: &str,
        api_version: &str,
        cancel: &Cancel,
    ) -> Result<Vec<Value>, ArmError> {
        let mut url = self.url(path, api_version)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let r = self
                .call(
                    reqwest::Method::GET,
                    &url,
                    None,
                    Idempotency::Idempotent,
                    cancel,
                )
                .await?;
            let v = parse_json(&url, &r.text())?;
            if let Some(page) = v.get("value").and_then(Value::as_array) {
                items.extend(page.iter().cloned());
            }
            match v
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(next) => {
                    let next = next_url(&self.endpoint, next, api_version)?;
                    // A page that links to itself would loop to the bound.
                    if next == url {
                        return Err(ArmError::BadAnswer {
                            what: Redacted(&url).to_string(),
                            detail: "its nextLink points at the page itself".into(),
                        });
                    }
                    url = next;
                }
                None => return Ok(items),
            }
        }
        Err(ArmError::BadAnswer {
            what: Redacted(&url).to_string(),
            detail: format!("the list goes on past {MAX_PAGES} pages"),
        })
    }

    /// PATCH (or PUT) a whole-state body; idempotent, so retried.
    pub async fn write_idempotent(
        &self,
        method: reqwest::Method,
        path: &str,
        api_version: &str,
        body: &Value,
        cancel: &Cancel,
    ) -> Result<Accepted, ArmError> {
        let url = self.url(path, api_version)?;
        let r = self
            .call(method, &url, Some(body), Idempotency::Idempotent, cancel)
            .await?;
        accepted(&url, r)
    }

    /// POST an action once (a swap, a restart): never repeated here.
    pub async fn action(
        &self,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
        cancel: &Cancel,
    ) -> Result<Accepted, ArmError> {
        let url = self.url(path, api_version)?;
        let r = self
            .call(reqwest::Method::POST, &url, body, Idempotency::Once, cancel)
            .await?;
        accepted(&url, r)
    }

    /// Changes only the given tags of the resource `resource_id` through the
    /// ARM Tags API (`PATCH {id}/providers/Microsoft.Resources/tags/default`):
    /// `operation` `Merge` adds or updates them, `Delete` removes them where
    /// they still have the given values. Other tags, and concurrent edits to
    /// them, are untouched. Idempotent.
    pub async fn tags_operation(
        &self,
        resource_id: &str,
        operation: &str,
        tags: &std::collections::BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        let path = format!("{resource_id}/providers/Microsoft.Resources/tags/default");
        let body = serde_json::json!({"operation": operation, "properties": {"tags": tags}});
        self.write_idempotent(
            reqwest::Method::PATCH,
            &path,
            TAGS_API_VERSION,
            &body,
            cancel,
        )
        .await?;
        Ok(())
    }

    /// Waits for a long-running operation to end, up to `deadline`.
    /// On timeout the outcome is [`ArmError::Ambiguous`].
    pub async fn wait(
        &self,
        what: &str,
        op: &Accepted,
        deadline: Duration,
        cancel: &Cancel,
    ) -> Result<Value, ArmError> {
        if op.done() {
            return Ok(op.body.clone());
        }
        let started = Instant::now();
        let mut wait = op.retry_after.unwrap_or(self.poll_interval);
        loop {
            if started.elapsed() >= deadline {
                return Err(ArmError::Ambiguous {
                    what: what.into(),
                    detail: format!("still running after {}s", deadline.as_secs()),
                });
            }
            cancel
                .sleep(wait.min(deadline.saturating_sub(started.elapsed())))
                .await?;
            if let Some(url) = &op.async_operation {
                let r = self
                    .call(
                        reqwest::Method::GET,
                        url,
                        None,
                        Idempotency::Idempotent,
                        cancel,
                    )
                    .await?;
                let v = parse_json(url, &r.text())?;
                let status = v
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("InProgress");
                match status {
                    s if s.eq_ignore_ascii_case("Succeeded") => return Ok(v),
                    s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                        let (code, message) = parse_error_body(&v.to_string());
                        return Err(ArmError::OperationFailed {
                            what: what.into(),
                            code,
                            message: format!("{s}: {message}"),
                        });
                    }
                    _ => wait = http::retry_after(&r.headers).unwrap_or(self.poll_interval),
                }
            } else if let Some(url) = &op.location {
                let r = match self
                    .call(
                        reqwest::Method::GET,
                        url,
                        None,
                        Idempotency::Idempotent,
                        cancel,
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(
                        ArmError::Refused { code, message, .. }
                        | ArmError::Conflict { code, message, .. },
                    ) => {
                        return Err(ArmError::OperationFailed {
                            what: what.into(),
                            code,
                            message,
                        });
                    }
                    Err(e) => return Err(e),
                };
                if r.status == StatusCode::ACCEPTED {
                    wait = http::retry_after(&r.headers).unwrap_or(self.poll_interval);
                    continue;
                }
                return parse_json(url, &r.text());
            } else {
                // 201/202 without a URL to poll: the caller reads the resource.
                return Ok(op.body.clone());
            }
        }
    }
}

/// The URL of a `nextLink`: on `endpoint`'s host, with an
/// api-version (ARM's own, or `api_version` when it gave none).
fn next_url(endpoint: &url::Url, next: &str, api_version: &str) -> Result<url::Url, ArmError> {
    let bad = |detail: String| ArmError::BadAnswer {
        what: "nextLink".into(),
        detail,
    };
    let mut u = url::Url::parse(next)
        .or_else(|_| endpoint.join(next))
        .map_err(|e| bad(format!("it is not a URL ({e})")))?;
    if u.origin() != endpoint.origin() {
        return Err(bad(format!(
            "it points at {} instead of {}; expedite does not send its token there",
            u.origin().ascii_serialization(),
            endpoint.origin().ascii_serialization()
        )));
    }
    if !u.query_pairs().any(|(k, _)| k == "api-version") {
        u.query_pairs_mut().append_pair("api-version", api_version);
    }
    Ok(u)
}

fn parse_json(url: &url::Url, body: &str) -> Result<Value, ArmError> {
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(body).map_err(|e| ArmError::BadAnswer {
        what: Redacted(url).to_string(),
        detail: format!("it is not JSON ({e})"),
    })
}

fn accepted(url: &url::Url, r: http::Response) -> Result<Accepted, ArmError> {
    let header_url = |name: &str| r.header(name).and_then(|v| url::Url::parse(v).ok());
    Ok(Accepted {
        status: r.status,
        async_operation: header_url("azure-asyncoperation"),
        location: header_url("location"),
        retry_after: http::retry_after(&r.headers),
        body: parse_json(url, &r.text())?,
    })
}

/// An answer whose JSON does not have the shape the caller needs: treated
/// like an unavailable service (retry later), with what was wrong.
pub fn bad_shape(what: &str, detail: String) -> ArmError {
    ArmError::Unavailable {
        what: what.to_string(),
        detail: format!("unexpected response shape: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_link_keeps_its_api_version_and_stays_on_the_endpoint() {
        let endpoint = url::Url::parse("https://management.azure.test").unwrap();
        let paged = "https://management.azure.test/subscriptions/s/slots?api-version=2024-11-01&%24skiptoken=abc";
        let u = next_url(&endpoint, paged, "2025-05-01").unwrap();
        let versions: Vec<_> = u
            .query_pairs()
            .filter(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(versions, ["2024-11-01"], "{u}");
        assert!(
            u.query_pairs()
                .any(|(k, v)| k == "$skiptoken" && v == "abc")
        );
        // Without an api-version, ours is added; a relative link is ARM's.
        let u = next_url(
            &endpoint,
            "/subscriptions/s/slots?%24skiptoken=1",
            "2025-05-01",
        )
        .unwrap();
        assert_eq!(
            u.query_pairs().filter(|(k, _)| k == "api-version").count(),
            1
        );
        // Another host (or scheme, or port) never gets the token.
        for elsewhere in [
            "https://evil.example/subscriptions/s/slots?api-version=1",
            "http://management.azure.test/subscriptions/s/slots",
            "https://management.azure.test:8443/subscriptions/s/slots",
        ] {
            let e = next_url(&endpoint, elsewhere, "2025-05-01").unwrap_err();
            assert!(
                e.to_string().contains("does not send its token there"),
                "{e}"
            );
        }
    }

    #[test]
    fn both_error_shapes_are_read() {
        assert_eq!(
            parse_error_body(
                r#"{"error":{"code":"ResourceNotFound","message":"The Resource was not found."}}"#
            ),
            (
                "ResourceNotFound".into(),
                "The Resource was not found.".into()
            )
        );
        assert_eq!(
            parse_error_body(
                r#"{"Code":"Conflict","Message":"Cannot modify this site because another operation is in progress.","Target":null,"Details":[{"Message":"x"},{"Code":"Conflict"}],"Innererror":null}"#
            ),
            (
                "Conflict".into(),
                "Cannot modify this site because another operation is in progress.".into()
            )
        );
        assert_eq!(
            parse_error_body(
                r#"{"Code":"BadRequest","Message":null,"Details":[{"Message":"a"},{"Code":"c"},{"ErrorEntity":{}},{"Message":"b"}]}"#
            ),
            ("BadRequest".into(), "a; b".into())
        );
        assert_eq!(
            parse_error_body("The request must be chunked or have a content length").0,
            "Unknown"
        );
        assert_eq!(parse_error_body("").1, "(empty body)");
    }
}
