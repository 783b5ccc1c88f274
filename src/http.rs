//! The one place that builds HTTP clients and sends requests with retries.
//!
//! - TLS: rustls with the ring provider (ADR 0002), the system's roots plus
//!   any extra CA (`ca-cert`: the sandbox's CA, or a corporate proxy's).
//! - Host resolution: curl-style overrides (`host=addr:port`, and
//!   `*.suffix=addr:port` because App Service slot hosts come from ARM and
//!   are not known in advance). The URL keeps its host name, so TLS checks
//!   the certificate against it exactly as it would in Azure.
//! - Timeouts on connect and on each request.
//! - [`send`]: retries with exponential backoff and jitter, honouring
//!   `Retry-After` (seconds or HTTP date) and Azure's `retry-after-ms`, on
//!   429, 5xx and connection failures — **only for idempotent requests**.
//!   A non-idempotent request (a swap) is sent once — again only after a
//!   429, which is refused before any work; when its outcome is unknown the
//!   error says so, and the caller reads state before deciding.
//! - Bounded bodies: every answer is read in chunks up to a cap suited to
//!   its kind ([`API_BODY_LIMIT`], [`PROBE_BODY_LIMIT`], …); past the cap the
//!   read stops with [`HttpError::TooLarge`] naming the endpoint, so a
//!   hostile or broken server cannot grow the process (invariant 7).
//! - [`Redacted`]: URLs in logs and errors without credentials or signed
//!   query parameters.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::cancel::{Cancel, Cancelled};

/// A curl-style resolution override: requests to a matching host go to
/// `addr` instead of what DNS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// An exact host (`management.azure.test`) or a wildcard
    /// (`*.azurewebsites.test`, matching any name below that suffix).
    pub host: String,
    /// Where to connect. Port 0 means the URL's port.
    pub addr: SocketAddr,
}

impl ResolveRule {
    /// True when `host` is matched by this rule.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        }
    }
}

impl FromStr for ResolveRule {
    type Err = String;

    /// Accepts `host=addr:port`, `*.suffix=addr:port`, and curl's own
    /// `host:port:addr` (in which case the port is the one connected to).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ACCEPTED: &str =
            "host=ADDR:PORT (e.g. *.azurewebsites.test=127.0.0.1:8443) or curl's HOST:PORT:ADDR";
        let s = s.trim();
        let (host, addr) = if let Some((h, a)) = s.split_once('=') {
            let addr: SocketAddr = a
                .trim()
                .parse()
                .map_err(|_| format!("'{a}' is not an address with a port; use {ACCEPTED}"))?;
            (h.trim().to_string(), addr)
        } else {
            let mut parts = s.splitn(3, ':');
            let (Some(h), Some(p), Some(a)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("'{s}' is not a resolve rule; use {ACCEPTED}"));
            };
            let port: u16 = p
                .parse()
                .map_err(|_| format!("'{p}' is not a port; use {ACCEPTED}"))?;
            let ip: std::net::IpAddr = a
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| format!("'{a}' is not an IP address; use {ACCEPTED}"))?;
            (h.to_string(), SocketAddr::new(ip, port))
        };
        let host = host.to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        if bare.is_empty()
            || bare.contains('*')
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!(
                "'{host}' is not a host name or *.suffix; use {ACCEPTED}"
            ));
        }
        Ok(ResolveRule { host, addr })
    }
}

/// How clients are built.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Resolution overrides, first match wins.
    pub resolve: Vec<ResolveRule>,
    /// Extra trusted CA certificates (PEM).
    pub extra_ca_pem: Vec<String>,
    /// Whether to trust the system's roots too.
    pub system_roots: bool,
    /// Bound on connecting.
    pub connect_timeout: Duration,
    /// Bound on one request, from sending to the end of the body.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            resolve: Vec::new(),
            extra_ca_pem: Vec::new(),
            system_roots: true,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Errors building a client or sending a request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TLS or client configuration is unusable (abort: fix the input).
    #[error("HTTP client configuration: {0}")]
    Config(String),
    /// The request never got an answer. `maybe_applied` is true when it may
    /// have reached the server (sent, then the connection failed or timed
    /// out): the caller must read state before doing anything again.
    #[error("{method} {url}: {message}{}", if *.maybe_applied { " (the request may have been applied)" } else { "" })]
    Transport {
        /// The method.
        method: Method,
        /// The URL, redacted.
        url: String,
        /// What happened, with the cause chain.
        message: String,
        /// Whether the server may have acted on it.
        maybe_applied: bool,
        /// Whether it was a timeout.
        timeout: bool,
    },
    /// The server answered with an error status (after any retries).
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        /// The method.
        method: Method,
        /// The URL, redacted.
        url: String,
        /// The status.
        status: StatusCode,
        /// The body (truncated), which carries the server's reason.
        body: String,
        /// Interesting headers (request ids) for support cases.
        request_id: Option<String>,
    },
    /// The answer was larger than the caller accepts for its kind; reading
    /// stopped at the cap (abort: the server is broken or hostile).
    #[error("{method} {url}: the answer is larger than {limit} bytes{}; expedite stopped reading it (a broken or hostile server)", .declared.map(|d| format!(" (it declared {d})")).unwrap_or_default())]
    TooLarge {
        /// The method.
        method: Method,
        /// The URL, redacted.
        url: String,
        /// The cap.
        limit: usize,
        /// What `Content-Length` announced, if anything.
        declared: Option<u64>,
    },
    /// Cancelled while waiting to retry.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl HttpError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A URL for logs and errors: no user info, and signed or secret query
/// parameters replaced by `***`.
pub struct Redacted<'a>(pub &'a url::Url);

const SECRET_QUERY_KEYS: &[&str] = &[
    "sig",
    "signature",
    "token",
    "code",
    "client_secret",
    "access_token",
    "key",
    "password",
    "secret",
];

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut u = self.0.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        if u.query().is_some() {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let secret = SECRET_QUERY_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s));
                    (
                        k.into_owned(),
                        if secret {
                            "***".to_string()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        write!(f, "{u}")
    }
}

struct OverrideResolver {
    rules: Vec<ResolveRule>,
}

impl reqwest::dns::Resolve for OverrideResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let hit = self.rules.iter().find(|r| r.matches(&host)).map(|r| r.addr);
        Box::pin(async move {
            if let Some(addr) = hit {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Makes ring the process's rustls provider. reqwest (built without a
/// provider, ADR 0002) panics when a client is built before one is
/// installed, so every entry point calls this; repeating it is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses PEM certificates (one or several in a string).
pub fn parse_pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// This process's run, named in every request's `User-Agent` (as the Azure
/// CLI names itself there): support cases and the sandbox's request log can
/// tell two runs apart.
static RUN_TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the run named in `User-Agent` (once per process; later calls are
/// ignored).
pub fn set_run_tag(run: &str) {
    let tag: String = run
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '(' && *c != ')')
        .take(200)
        .collect();
    let _ = RUN_TAG.set(tag);
}

fn user_agent() -> String {
    match RUN_TAG.get() {
        Some(run) => format!("expedite/{} (run {run})", env!("CARGO_PKG_VERSION")),
        None => format!("expedite/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// A client certificate and its key, presented in the TLS handshake (a
/// Kubernetes user's `client-certificate` and `client-key`).
pub struct ClientIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// From PEM text: the certificate chain and one private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject as _;
        let certs = parse_pem_certs(cert_pem)?;
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("no usable private key in the PEM text ({e})"))?;
        Ok(ClientIdentity { certs, key })
    }
}

/// Builds a client from the settings.
pub fn client(settings: &HttpSettings) -> Result<reqwest::Client, HttpError> {
    client_with_identity(settings, None)
}

/// [`client`], presenting `identity` to servers that ask for one.
pub fn client_with_identity(
    settings: &HttpSettings,
    identity: Option<ClientIdentity>,
) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    if settings.system_roots {
        // A missing or partly unreadable system store is not fatal: the
        // extra CA may be all that is needed (the sandbox), and a real TLS
        // failure later names the host it could not verify.
        let found = rustls_native_certs::load_native_certs();
        let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    }
    for pem in &settings.extra_ca_pem {
        for cert in parse_pem_certs(pem).map_err(HttpError::Config)? {
            roots
                .add(cert)
                .map_err(|e| HttpError::Config(format!("CA certificate rejected: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(HttpError::Config(
            "no trusted CA certificates: install ca-certificates or pass a CA file".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match identity {
        Some(id) => tls
            .with_client_auth_cert(id.certs, id.key)
            .map_err(|e| HttpError::Config(format!("the client certificate or its key: {e}")))?,
        None => tls.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(OverrideResolver {
            rules: settings.resolve.clone(),
        }))
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        // Redirects are never needed by the APIs we call, and following
        // one could carry a token to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent())
        .build()
        .map_err(|e| HttpError::Config(error_chain(&e)))
}

/// Which client, and which credential, a request to a URL goes through:
/// the shared client, except under one Kubernetes API server's base, where
/// that connection's client (its CA, its client certificate) and bearer
/// token are used — a deploy probes new pods through the API server's
/// proxy. The token is attached only to URLs under the base's
/// `https://host:port/path/`, so a probe of a user-facing host never
/// carries it.
#[derive(Clone)]
pub struct Dial {
    shared: reqwest::Client,
    api: Option<ApiDial>,
}

#[derive(Clone)]
struct ApiDial {
    prefix: String,
    http: reqwest::Client,
    token: Option<secrecy::SecretString>,
}

impl fmt::Debug for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dial")
            .field("api", &self.api.as_ref().map(|a| a.prefix.as_str()))
            .finish_non_exhaustive()
    }
}

impl Dial {
    /// Every request through `shared`.
    pub fn new(shared: reqwest::Client) -> Dial {
        Dial { shared, api: None }
    }

    /// Requests under `base` (`https://host:port[/path]`, no trailing
    /// slash) through `http`, with `token` as their bearer.
    pub fn with_api(
        mut self,
        base: &str,
        http: reqwest::Client,
        token: Option<secrecy::SecretString>,
    ) -> Dial {
        self.api = Some(ApiDial {
            prefix: format!("{}/", base.trim_end_matches('/')),
            http,
            token,
        });
        self
    }

    /// A request to `url` through the client that serves it.
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        use secrecy::ExposeSecret as _;
        match &self.api {
            Some(api) if url.starts_with(&api.prefix) => {
                let rb = api.http.request(method, url);
                match &api.token {
                    Some(t) => rb.bearer_auth(t.expose_secret()),
                    None => rb,
                }
            }
            _ => self.shared.request(method, url),
        }
    }

    /// A GET of `url`.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(Method::GET, url)
    }
}

/// Whether a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it cannot change the outcome (GET, a full-state PUT/PATCH).
    Idempotent,
    /// Repeating it could act twice (a swap, a deploy): sent exactly once.
    Once,
}

/// Retry policy for idempotent requests.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Most attempts, including the first.
    pub max_attempts: u32,
    /// First backoff; doubles each time, with jitter.
    pub base_delay: Duration,
    /// Longest single wait (also caps a server's `Retry-After`).
    pub max_delay: Duration,
    /// Give up retrying once this much time has passed since the first try.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            budget: Duration::from_secs(120),
        }
    }
}

/// Cap on a JSON API answer (ARM, Entra, GitHub, Prometheus, Azure
/// Monitor): the largest documents read here (a page of revisions, a range
/// query) are far below it.
pub const API_BODY_LIMIT: usize = 4 << 20;

/// Cap on an app's own answers (`/health`, `/api/version`, a probe's
/// read-back): a version is a few bytes; anything near this is not one.
pub const PROBE_BODY_LIMIT: usize = 64 << 10;

/// Cap on a package read back from an archive or from Kudu (GitHub's blob
/// API takes at most 100 MB).
pub const PACKAGE_BODY_LIMIT: usize = 100 << 20;

/// A response read whole, up to the caller's cap.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub bytes: Vec<u8>,
    /// Attempts it took.
    pub attempts: u32,
}

impl Response {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

/// Reads `resp`'s body in chunks, refusing more than `limit` bytes (and a
/// `Content-Length` announcing more, before reading anything).
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge { declared });
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge { declared });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(ReadError::Transport(e)),
        }
    }
}

/// Reads `resp`'s body as text (invalid UTF-8 replaced), up to `limit`.
pub async fn read_text(resp: reqwest::Response, limit: usize) -> Result<String, ReadError> {
    read_body(resp, limit)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Over the cap.
    #[error("the answer is larger than expedite accepts{}", .declared.map(|d| format!(" (it declared {d} bytes)")).unwrap_or_default())]
    TooLarge {
        /// What `Content-Length` announced.
        declared: Option<u64>,
    },
    /// The connection failed while reading.
    #[error("reading the answer failed: {}", error_chain(.0))]
    Transport(reqwest::Error),
}

fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error()
}

/// The wait a server asked for: `retry-after-ms` / `x-ms-retry-after-ms`
/// (Azure), else `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = text(name).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_delay.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(policy.max_delay);
    // Full jitter in [capped/2, capped]: spreads retries of parallel runs.
    let half = capped / 2;
    half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis().max(1) as u64))
}

/// The full cause chain of an error, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Sends a request built by `build` (called again for each attempt), with
/// retries when `idempotency` allows, reading at most [`API_BODY_LIMIT`]
/// bytes of the answer. Error statuses that are not retried (or still fail
/// at the end) come back as [`HttpError::Status`]; callers that expect some
/// error statuses (404, 409) read them from there.
pub async fn send(
    build: impl Fn() -> reqwest::RequestBuilder,
    idempotency: Idempotency,
    policy: &RetryPolicy,
    cancel: &Cancel,
) -> Result<Response, HttpError> {
    send_limited(build, idempotency, policy, API_BODY_LIMIT, cancel).await
}

/// [`send`], reading at most `limit` bytes of the answer.
pub async fn send_limited(
    build: impl Fn() -> reqwest::RequestBuilder,
    idempotency: Idempotency,
    policy: &RetryPolicy,
    limit: usize,
    cancel: &Cancel,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let (client, request) = build().build_split();
        let request = request.map_err(|e| HttpError::Config(error_chain(&e)))?;
        let method = request.method().clone();
        let url = Redacted(request.url()).to_string();
        let result = client.execute(request).await;
        let may_retry = idempotency == Idempotency::Idempotent
            && attempt < policy.max_attempts
            && started.elapsed() < policy.budget;
        match result {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = match read_body(resp, limit).await {
                    Ok(b) => b,
                    // Too large is an answer, not a glitch: never retried.
                    Err(ReadError::TooLarge { declared }) => {
                        return Err(HttpError::TooLarge {
                            method,
                            url,
                            limit,
                            declared,
                        });
                    }
                    Err(ReadError::Transport(e)) if may_retry => {
                        tracing::debug!(
                            "{method} {url}: body failed ({}); retrying",
                            error_chain(&e)
                        );
                        cancel.sleep(backoff(policy, attempt)).await?;
                        continue;
                    }
                    Err(ReadError::Transport(e)) => {
                        return Err(HttpError::Transport {
                            method,
                            url,
                            message: format!("reading the body failed: {}", error_chain(&e)),
                            maybe_applied: true,
                            timeout: e.is_timeout(),
                        });
                    }
                };
                if status.is_success()
                    || status.is_redirection()
                    || status == StatusCode::NOT_MODIFIED
                {
                    return Ok(Response {
                        status,
                        headers,
                        bytes: body,
                        attempts: attempt,
                    });
                }
                // A 429 is refused at the front door, before any work (ARM
                // and GitHub throttle there), so even a request sent once —
                // a swap, a deployment — is sent again once the server says.
                let throttled = status == StatusCode::TOO_MANY_REQUESTS
                    && attempt < policy.max_attempts
                    && started.elapsed() < policy.budget;
                if retryable_status(status) && (may_retry || throttled) {
                    let wait = retry_after(&headers)
                        .unwrap_or_else(|| backoff(policy, attempt))
                        .min(policy.max_delay);
                    tracing::debug!("{method} {url}: HTTP {status}; retry {attempt} in {wait:?}");
                    cancel.sleep(wait).await?;
                    continue;
                }
                let request_id = ["x-ms-request-id", "x-github-request-id", "x-request-id"]
                    .iter()
                    .find_map(|h| {
                        headers
                            .get(*h)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    });
                return Err(HttpError::Status {
                    method,
                    url,
                    status,
                    body: truncate(&String::from_utf8_lossy(&body), 4096),
                    request_id,
                });
            }
            Err(e) => {
                // A connect failure means nothing was sent; anything later
                // (timeout, reset) may have reached the server.
                let sent = !e.is_connect();
                if may_retry {
                    tracing::debug!("{method} {url}: {}; retrying", error_chain(&e));
                    cancel.sleep(backoff(policy, attempt)).await?;
                    continue;
                }
                return Err(HttpError::Transport {
                    method,
                    url,
                    message: error_chain(&e),
                    maybe_applied: sent,
                    timeout: e.is_timeout(),
                });
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}… ({} bytes)", &s[..s.floor_char_boundary(max)], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_api_servers_token_goes_only_under_its_base() {
        let plain = client(&HttpSettings::default()).expect("a client");
        let dial = Dial::new(plain.clone()).with_api(
            "https://kubernetes.test:6443",
            plain,
            Some(secrecy::SecretString::from("tok".to_string())),
        );
        let auth = |url: &str| {
            dial.get(url)
                .build()
                .expect("a request")
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap_or_default().to_string())
        };
        assert_eq!(
            auth("https://kubernetes.test:6443/api/v1/namespaces/shop/pods/p:8080/proxy/health")
                .as_deref(),
            Some("Bearer tok")
        );
        for elsewhere in [
            "https://payments--shop.mesh.test/api/version",
            "https://kubernetes.test:6443@evil.test/api",
            "https://kubernetes.test/api/v1",
            "http://kubernetes.test:6443/api/v1",
            "https://kubernetes.test:64430/api",
        ] {
            // (reqwest turns a URL's user into Basic auth of its own.)
            assert_ne!(
                auth(elsewhere).as_deref(),
                Some("Bearer tok"),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn resolve_rules_parse_and_match() {
        let r: ResolveRule = "*.azurewebsites.test=127.0.0.1:8443".parse().unwrap();
        assert!(r.matches("app-contoso-payments-staging.azurewebsites.test"));
        assert!(r.matches("APP.AZUREWEBSITES.TEST."));
        assert!(!r.matches("azurewebsites.test"));
        assert!(!r.matches("evil-azurewebsites.test"));
        let c: ResolveRule = "management.azure.test:443:127.0.0.1".parse().unwrap();
        assert_eq!(c.addr, "127.0.0.1:443".parse().unwrap());
        assert!(c.matches("management.azure.test"));
        for bad in [
            "nohost",
            "a=b",
            "*.=1.2.3.4:1",
            "a*b.test=1.2.3.4:1",
            "h:notaport:1.2.3.4",
            "h b=1.2.3.4:1",
        ] {
            assert!(bad.parse::<ResolveRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        let u = url::Url::parse("https://user:pw@h.test/p?sig=abc&x=1&client_secret=s").unwrap();
        let shown = Redacted(&u).to_string();
        assert!(
            !shown.contains("pw") && !shown.contains("abc") && !shown.contains("=s"),
            "{shown}"
        );
        assert!(shown.contains("x=1"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    /// A tiny HTTP/1.1 server answering each connection with the next canned
    /// response; counts requests.
    async fn serve(responses: Vec<&'static str>) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            for r in responses {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                c.fetch_add(1, Ordering::SeqCst);
                if r == "DROP" {
                    continue;
                }
                let _ = sock.write_all(r.as_bytes()).await;
            }
        });
        (addr, count)
    }

    fn plain_client() -> reqwest::Client {
        client(&HttpSettings {
            request_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        })
        .unwrap()
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
    const BUSY: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after-ms: 10\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const DOWN: &str =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown";
    const GONE: &str = "HTTP/1.1 404 Not Found\r\nx-ms-request-id: r-1\r\ncontent-length: 7\r\nconnection: close\r\n\r\nmissing";

    #[tokio::test]
    async fn idempotent_requests_retry_through_429_and_503() {
        let (addr, count) = serve(vec![BUSY, DOWN, OK]).await;
        let c = plain_client();
        let url = format!("http://{addr}/x");
        let r = send(
            || c.get(&url),
            Idempotency::Idempotent,
            &fast(),
            &Cancel::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            (r.status, r.text().as_ref(), r.attempts),
            (StatusCode::OK, "ok", 3)
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn once_requests_are_never_repeated() {
        let (addr, count) = serve(vec![DOWN, OK]).await;
        let c = plain_client();
        let url = format!("http://{addr}/swap");
        let e = send(|| c.post(&url), Idempotency::Once, &fast(), &Cancel::new())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_once_request_refused_with_429_is_sent_again_and_only_then() {
        // Throttled: refused before any work, so sent again …
        let (addr, count) = serve(vec![BUSY, OK]).await;
        let c = plain_client();
        let url = format!("http://{addr}/swap");
        let r = send(|| c.post(&url), Idempotency::Once, &fast(), &Cancel::new())
            .await
            .unwrap();
        assert_eq!((r.status, r.attempts), (StatusCode::OK, 2));
        assert_eq!(count.load(Ordering::SeqCst), 2);
        // … but a 503 after it may have been applied: never repeated.
        let (addr, count) = serve(vec![BUSY, DOWN, OK]).await;
        let url = format!("http://{addr}/swap");
        let e = send(|| c.post(&url), Idempotency::Once, &fast(), &Cancel::new())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_dropped_connection_after_sending_may_have_applied() {
        let (addr, _) = serve(vec!["DROP"]).await;
        let c = plain_client();
        let url = format!("http://{addr}/swap");
        match send(|| c.post(&url), Idempotency::Once, &fast(), &Cancel::new()).await {
            Err(HttpError::Transport { maybe_applied, .. }) => assert!(maybe_applied),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn client_errors_keep_status_body_and_request_id() {
        let (addr, count) = serve(vec![GONE, OK]).await;
        let c = plain_client();
        let url = format!("http://{addr}/x");
        match send(
            || c.get(&url),
            Idempotency::Idempotent,
            &fast(),
            &Cancel::new(),
        )
        .await
        {
            Err(HttpError::Status {
                status,
                body,
                request_id,
                ..
            }) => {
                assert_eq!(
                    (status.as_u16(), body.as_str(), request_id.as_deref()),
                    (404, "missing", Some("r-1"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "a 404 is an answer, not a reason to retry"
        );
    }

    #[tokio::test]
    async fn retries_stop_at_max_attempts() {
        let (addr, count) = serve(vec![DOWN, DOWN, DOWN, OK]).await;
        let c = plain_client();
        let url = format!("http://{addr}/x");
        let p = RetryPolicy {
            max_attempts: 3,
            ..fast()
        };
        let e = send(|| c.get(&url), Idempotency::Idempotent, &p, &Cancel::new())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn cancellation_interrupts_a_retry_wait() {
        let (addr, _) = serve(vec!["HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"]).await;
        let c = plain_client();
        let url = format!("http://{addr}/x");
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel(crate::cancel::CancelReason::Signal("SIGTERM"));
        });
        let p = RetryPolicy {
            max_delay: Duration::from_secs(30),
            ..fast()
        };
        let t = Instant::now();
        let e = send(|| c.get(&url), Idempotency::Idempotent, &p, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Cancelled(_)), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// A server that answers every connection with a 200 whose body is
    /// `total` bytes, streamed in 64 KiB writes (declared, or chunked);
    /// returns how many bytes it managed to write before the client left.
    async fn flood(total: u64, declared: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let w = written.clone();
        tokio::spawn(async move {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = if declared {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
            };
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 << 10];
            let mut sent: u64 = 0;
            while sent < total {
                let frame = if declared {
                    chunk.clone()
                } else {
                    let mut f = format!("{:x}\r\n", chunk.len()).into_bytes();
                    f.extend_from_slice(&chunk);
                    f.extend_from_slice(b"\r\n");
                    f
                };
                if sock.write_all(&frame).await.is_err() {
                    return;
                }
                sent += chunk.len() as u64;
                w.store(sent as usize, Ordering::SeqCst);
            }
        });
        (addr, written)
    }

    #[tokio::test]
    async fn a_huge_answer_stops_at_the_cap_without_retrying() {
        for declared in [true, false] {
            let (addr, written) = flood(1 << 30, declared).await;
            let c = plain_client();
            let url = format!("http://{addr}/health");
            let e = send_limited(
                || c.get(&url),
                Idempotency::Idempotent,
                &fast(),
                PROBE_BODY_LIMIT,
                &Cancel::new(),
            )
            .await
            .unwrap_err();
            match &e {
                HttpError::TooLarge {
                    limit, declared: d, ..
                } => {
                    assert_eq!(*limit, PROBE_BODY_LIMIT);
                    assert_eq!(d.is_some(), declared);
                }
                other => panic!("{other:?}"),
            }
            let text = e.to_string();
            assert!(
                text.contains("/health") && text.contains("larger than 65536 bytes"),
                "{text}"
            );
            // Reading stopped near the cap: the server could not push the
            // gigabyte through (socket buffers hold a few MiB at most).
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                written.load(Ordering::SeqCst) < 64 << 20,
                "declared={declared}"
            );
        }
    }

    #[test]
    fn a_client_builds_with_an_extra_ca_only() {
        let s = HttpSettings {
            system_roots: false,
            ..HttpSettings::default()
        };
        assert!(matches!(client(&s), Err(HttpError::Config(_))));
        let s = HttpSettings {
            extra_ca_pem: vec!["not a pem".into()],
            ..HttpSettings::default()
        };
        assert!(matches!(client(&s), Err(HttpError::Config(_))));
    }
}
