//! Listeners and dispatch: the HTTPS listener routes every Azure surface by
//! `Host` (SNI when the header is absent), records each request in the
//! request log and applies front-door faults; the plain HTTP listener serves
//! the control API. Both shut down gracefully, bounded in time.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Version, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::faults::{FaultKind, FaultTable};
use crate::log::{RequestLog, RequestRecord};
use crate::respond::{self, Outcome, Req, Resp};
use crate::tokens::Signer;
use crate::world::World;
use crate::{SandboxConfig, hosts};

/// Largest request body accepted (Kudu packages included).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest shutdown waits for in-flight requests before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The GitHub-side federated identity credential Entra is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Federated {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub started: Instant,
    pub world: Mutex<World>,
    pub faults: Mutex<FaultTable>,
    pub log: Mutex<RequestLog>,
    pub entra: Signer,
    pub oidc: Signer,
    pub client_secret: String,
    pub oidc_request_token: String,
    pub federated: Federated,
    /// The Azure Pipelines job and its service connection's credential.
    pub pipelines: crate::pipelines::PipelineJob,
    /// Externally visible authority (`https://login.azure.test`).
    pub authority: String,
    /// `https://management.azure.test`.
    pub arm_base: String,
    /// Set once the listeners are bound and the CA is written.
    pub settings: std::sync::OnceLock<crate::Settings>,
    /// Traffic generator runs.
    pub traffic: Mutex<Vec<crate::traffic::TrafficRun>>,
    /// Bumped to stop every running generator.
    pub traffic_epoch: std::sync::atomic::AtomicU64,
    /// Flips to true at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// ARM's read/write token buckets.
    pub arm_limits: Mutex<crate::ratelimit::ArmBuckets>,
    /// The sandbox GitHub (REST, git smart-HTTP, repositories).
    pub github: Arc<crate::github::GitHub>,
    /// Slack, Teams and PagerDuty receivers and what they recorded.
    pub hooks: crate::hooks::Hooks,
    /// The emulated Kubernetes cluster.
    pub kube: Mutex<crate::kube::Cluster>,
}

impl Shared {
    /// The Kubernetes cluster.
    pub fn kube(&self) -> MutexGuard<'_, crate::kube::Cluster> {
        self.kube.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The estate, with every due change applied.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        w.advance(Instant::now());
        w
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultTable> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Returned by a service to make hyper close the connection unanswered.
#[derive(Debug)]
pub(crate) struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Which listener a connection arrived on.
#[derive(Clone)]
pub(crate) enum Kind {
    Https(TlsAcceptor),
    Control,
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // EMFILE and friends: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, kind.clone(), shared.clone(), shutdown.clone()));
            }
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        conns.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    kind: Kind,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    match kind {
        Kind::Https(acceptor) => {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                _ => return,
            };
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                let sni = sni.clone();
                async move {
                    // GitHub's git smart-HTTP streams both ways: it is served
                    // before the body is read (github/git_http.rs).
                    if crate::github::is_git_request(&req, sni.as_deref()) {
                        return crate::github::serve_git(shared, req).await;
                    }
                    handle_https(shared, req, sni)
                        .await
                        .map(crate::github::full_body)
                }
            });
            drive(
                http1::Builder::new().serve_connection(TokioIo::new(tls), svc),
                shutdown,
            )
            .await;
        }
        Kind::Control => {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    Ok::<_, Infallible>(crate::github::full_body(handle_control(shared, req).await))
                }
            });
            drive(
                http1::Builder::new().serve_connection(TokioIo::new(stream), svc),
                shutdown,
            )
            .await;
        }
    }
}

/// Runs a connection until it ends or shutdown asks it to finish its
/// current request and close.
async fn drive<C>(conn: C, mut shutdown: watch::Receiver<bool>)
where
    C: std::future::Future + GracefulConn,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.changed() => {}
    }
    conn.as_mut().start_graceful();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

/// `graceful_shutdown` on hyper's connection types, behind one name.
pub(crate) trait GracefulConn {
    fn start_graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulConn for http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn start_graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Reads the request into a [`Req`], or answers 400/413 when it cannot.
async fn read_request(
    req: http::Request<Incoming>,
    fallback_host: Option<&str>,
) -> Result<Req, (Req, Resp)> {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.host().map(str::to_owned))
        .map(|h| hosts::normalise(&h))
        // A client that dials 127.0.0.1 and names the server in TLS
        // (kubectl's `tls-server-name`) is routed by that name.
        .filter(|h| h.parse::<std::net::IpAddr>().is_err() || fallback_host.is_none())
        .or_else(|| fallback_host.map(hosts::normalise))
        .unwrap_or_default();
    let no_length = matches!(parts.version, Version::HTTP_10 | Version::HTTP_11)
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING);
    let raw_query = parts.uri.query().map(str::to_owned);
    let query = raw_query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut out = Req {
        method: parts.method,
        host,
        path: parts.uri.path().to_owned(),
        raw_query,
        query,
        headers: parts.headers,
        body: Bytes::new(),
        no_length,
    };
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            out.body = collected.to_bytes();
            Ok(out)
        }
        Err(e) => {
            let resp = if e.is::<http_body_util::LengthLimitError>() {
                respond::text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.")
            } else {
                respond::text(StatusCode::BAD_REQUEST, "Could not read the request body.")
            };
            Err((out, resp))
        }
    }
}

async fn handle_https(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
    sni: Option<String>,
) -> Result<Resp, Dropped> {
    let (req, outcome, target) = match read_request(req, sni.as_deref()).await {
        Ok(req) => {
            let (outcome, target) = route(&shared, &req).await;
            (req, outcome, target)
        }
        Err((req, resp)) => (req, Outcome::Respond(resp), "unreadable".to_owned()),
    };
    let status = match &outcome {
        Outcome::Respond(r) => r.status().as_u16(),
        Outcome::Drop => 0,
    };
    let record = RequestRecord {
        seq: 0,
        ms: shared.elapsed_ms(),
        host: req.host.clone(),
        method: req.method.to_string(),
        path: req.path_and_query(),
        status,
        client_request_id: req.header("x-ms-client-request-id").map(str::to_owned),
        user_agent: req.header("user-agent").map(str::to_owned),
        target,
    };
    shared.log().push(record);
    match outcome {
        Outcome::Respond(r) => Ok(r),
        Outcome::Drop => Err(Dropped),
    }
}

/// Routes one HTTPS request; returns the outcome and what answered it.
pub(crate) async fn route(shared: &Shared, req: &Req) -> (Outcome, String) {
    let fault = shared.faults().take(
        &req.host,
        req.method.as_str(),
        &req.path,
        false,
        Instant::now(),
    );
    let mut lose_answer = false;
    if let Some(kind) = fault {
        let name = format!("fault:{}", kind.name());
        if kind == FaultKind::AnswerLost {
            lose_answer = true;
        // `None` is a delay: the request is then answered normally.
        } else if let Some(outcome) = front_fault(shared, req, &kind).await {
            return (outcome, name);
        }
    }
    let (outcome, name) = dispatch(shared, req).await;
    if lose_answer {
        // Handled, changes made; the caller never hears back.
        drop(outcome);
        return (Outcome::Drop, format!("fault:answer_lost ({name})"));
    }
    (outcome, name)
}

/// Routes one HTTPS request by host.
async fn dispatch(shared: &Shared, req: &Req) -> (Outcome, String) {
    let host = req.host.as_str();
    if host == hosts::ARM {
        (crate::arm::handle(shared, req).await, "arm".into())
    } else if host == hosts::LOGIN {
        (crate::entra::handle(shared, req).into(), "entra".into())
    } else if host == hosts::OIDC {
        (crate::entra::handle_oidc(shared, req).into(), "oidc".into())
    } else if host.ends_with(&format!(".{}", crate::kube::mesh::MESH_DOMAIN)) {
        (crate::kube::mesh::handle(shared, req).await, "mesh".into())
    } else if host == crate::kube::HOST {
        (crate::kube::handle(shared, req).await, "kubernetes".into())
    } else if host == hosts::PIPELINES {
        (
            crate::pipelines::handle(shared, req).into(),
            "pipelines".into(),
        )
    } else if host == crate::github::API_HOST || host == crate::github::GIT_HOST {
        (
            crate::github::handle_api(shared, req).await,
            "github".into(),
        )
    } else if crate::hooks::serves(host) {
        let (resp, name) = crate::hooks::handle(shared, req);
        (resp.into(), name)
    } else if host.ends_with(&format!(".{}", hosts::WEB_DOMAIN)) {
        let target = shared.world().resolve_host(host);
        match target {
            Some(t) if t.scm => {
                let name = format!("kudu:{}/{}", t.site, t.slot);
                (crate::kudu::handle(shared, req, &t).await, name)
            }
            Some(t) => crate::demo::handle_site(shared, req, &t).await,
            None => (
                respond::html(
                    StatusCode::NOT_FOUND,
                    "<html><head><title>404 Web Site not found</title></head><body><h1>Error 404 - Web app not found.</h1></body></html>",
                )
                .into(),
                "unknown".into(),
            ),
        }
    } else if host.ends_with(&format!(".{}", hosts::STATIC_APPS_DOMAIN)) {
        let target = crate::staticsites::resolve_host(&shared.world(), host);
        match target {
            Some((site, env)) => crate::demo::handle_static_site(shared, req, &site, &env).await,
            None => (
                respond::html(
                    StatusCode::NOT_FOUND,
                    "<!DOCTYPE html><html><head><title>Azure Static Web Apps - 404: Not found</title></head><body><h1>404: Not Found</h1><p>We couldn't find that page, please check the URL and try again.</p></body></html>",
                )
                .into(),
                "unknown".into(),
            ),
        }
    } else if host.ends_with(&format!(".{}", hosts::BLOB_DOMAIN)) {
        crate::blob::handle(shared, req)
    } else if host.ends_with(&format!(".{}", hosts::CONTAINER_APPS_DOMAIN)) {
        let target = shared.world().resolve_ca_host(host);
        match target {
            Some(t) => crate::demo::handle_container_app(shared, req, &t).await,
            None => (
                respond::html(
                    StatusCode::NOT_FOUND,
                    "<!DOCTYPE html><html><head><title>Azure Container App - Unavailable</title></head><body><h1>Error 404 - This Container App is stopped or does not exist.</h1></body></html>",
                )
                .into(),
                "unknown".into(),
            ),
        }
    } else {
        (
            respond::text(
                StatusCode::NOT_FOUND,
                format!("The sandbox does not serve host '{host}'."),
            )
            .into(),
            "unknown".into(),
        )
    }
}

/// The response a front-door fault gives, or `None` for a delay (after
/// which the request is answered normally).
async fn front_fault(shared: &Shared, req: &Req, kind: &FaultKind) -> Option<Outcome> {
    let host = req.host.as_str();
    let resp = match kind {
        FaultKind::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return None;
        }
        FaultKind::DropConnection => return Some(Outcome::Drop),
        // Handled in `route`: the request is answered, the answer dropped.
        FaultKind::AnswerLost => return None,
        FaultKind::Throttle { retry_after_secs } => {
            let mut r = if host == hosts::ARM {
                respond::arm_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    format!(
                        "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, see - https://aka.ms/armthrottling. Please retry after {retry_after_secs} seconds."
                    ),
                )
            } else if host == hosts::LOGIN {
                respond::entra_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "temporarily_unavailable",
                    50196,
                    "The server terminated an operation because it encountered a client request loop.",
                    &shared.authority,
                )
            } else {
                respond::text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
            };
            respond::set_header(&mut r, "retry-after", &retry_after_secs.to_string());
            r
        }
        FaultKind::Status { status } => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if host == hosts::ARM {
                let (c, m) = match code.as_u16() {
                    503 => (
                        "ServiceUnavailable",
                        "The service is temporarily unavailable. Please try again later.",
                    ),
                    502 => (
                        "BadGateway",
                        "The gateway did not receive a response from 'Microsoft.Web' within the specified time period.",
                    ),
                    504 => (
                        "GatewayTimeout",
                        "The gateway did not receive a response from 'Microsoft.Web' within the specified time period.",
                    ),
                    _ => (
                        "InternalServerError",
                        "Encountered internal server error. Diagnostic information: timestamp, subscription id, tracking id, request correlation id.",
                    ),
                };
                respond::arm_error(code, c, m)
            } else if host == hosts::LOGIN {
                respond::entra_error(
                    code,
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                    &shared.authority,
                )
            } else {
                respond::text(code, code.canonical_reason().unwrap_or("Server Error"))
            }
        }
        FaultKind::Error { status, message } => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            if host == hosts::ARM {
                let c = code.canonical_reason().unwrap_or("Error").replace(' ', "");
                respond::arm_error(code, &c, message.clone())
            } else if host == hosts::LOGIN {
                respond::entra_error(code, "invalid_request", 90014, message, &shared.authority)
            } else {
                respond::text(code, message.clone())
            }
        }
        FaultKind::TokenEndpointDown => respond::entra_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
            &shared.authority,
        ),
        FaultKind::KuduBusy => respond::text(
            StatusCode::CONFLICT,
            "There is a deployment currently in progress. Please try again when it completes.",
        ),
        FaultKind::FlappingHealth => respond::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"status": "unhealthy"}),
        ),
        FaultKind::HugeBody { bytes } => respond::lazy_json(*bytes, false),
        FaultKind::HugeBodyChunked { bytes } => respond::lazy_json(*bytes, true),
        // Swap faults never come from the front door (FaultTable::take).
        FaultKind::SwapWarmupFailure | FaultKind::SwapTimeout { .. } => return None,
    };
    Some(Outcome::Respond(resp))
}

async fn handle_control(shared: Arc<Shared>, req: http::Request<Incoming>) -> Resp {
    if req.method() == Method::CONNECT || req.uri().authority().is_some() {
        return forward_proxy(shared, req).await;
    }
    match read_request(req, None).await {
        Ok(req) if req.path.starts_with("/_sandbox/github/") => {
            crate::github::handle_control(&shared, &req)
        }
        Ok(req) if req.path == "/_sandbox/hooks" => crate::hooks::handle_control(&shared, &req),
        Ok(req) => crate::control::handle(&shared, &req),
        Err((_, resp)) => resp,
    }
}

/// True for the demo app's hosts: App Service sites and slots (not Kudu),
/// Container Apps and Static Web Apps environments, and the emulated
/// mesh's ingress and metrics (`*.mesh.test`; never the API server).
fn is_app_host(host: &str) -> bool {
    (host.ends_with(&format!(".{}", hosts::WEB_DOMAIN))
        && !host.ends_with(&format!(".scm.{}", hosts::WEB_DOMAIN)))
        || host.ends_with(&format!(".{}", hosts::CONTAINER_APPS_DOMAIN))
        || host.ends_with(&format!(".{}", hosts::STATIC_APPS_DOMAIN))
        || host.ends_with(&format!(".{}", crate::kube::mesh::MESH_DOMAIN))
}

/// The control listener as a minimal HTTP forward proxy **for the demo
/// app's hosts only**, so a tool that cannot resolve sandbox names (a real
/// Prometheus with `proxy_url`) can scrape them: a request in absolute form
/// (`GET http://app-contoso-payments-staging.azurewebsites.test/metrics`)
/// is answered by the same routing as the HTTPS listener — faults,
/// behaviours, metrics, request log — as if it had come over TLS. Any other
/// host, `https://` targets and `CONNECT` are refused; nothing is ever
/// connected to.
async fn forward_proxy(shared: Arc<Shared>, req: http::Request<Incoming>) -> Resp {
    const ONLY: &str = "The sandbox proxy forwards plain-HTTP requests in absolute form (GET http://HOST/path) to the demo app's hosts only (*.azurewebsites.test except Kudu, *.azurecontainerapps.test, *.azurestaticapps.test, *.mesh.test); it never connects anywhere else.";
    if req.method() == Method::CONNECT {
        return respond::text(
            StatusCode::FORBIDDEN,
            format!("CONNECT is not supported. {ONLY}\n"),
        );
    }
    if req.uri().scheme_str() != Some("http") {
        return respond::text(
            StatusCode::BAD_REQUEST,
            format!("Refused {}: only http:// targets. {ONLY}\n", req.uri()),
        );
    }
    let host = req.uri().host().map(hosts::normalise).unwrap_or_default();
    if !is_app_host(&host) {
        return respond::text(
            StatusCode::FORBIDDEN,
            format!("Refused host '{host}'. {ONLY}\n"),
        );
    }
    let mut req = match read_request(req, None).await {
        Ok(req) => req,
        Err((_, resp)) => return resp,
    };
    // RFC 9112 §3.2.2: with an absolute-form target, the target's host wins.
    req.host = host;
    let (outcome, target) = route(&shared, &req).await;
    let status = match &outcome {
        Outcome::Respond(r) => r.status().as_u16(),
        Outcome::Drop => 0,
    };
    shared.log().push(RequestRecord {
        seq: 0,
        ms: shared.elapsed_ms(),
        host: req.host.clone(),
        method: req.method.to_string(),
        path: req.path_and_query(),
        status,
        client_request_id: req.header("x-ms-client-request-id").map(str::to_owned),
        user_agent: req.header("user-agent").map(str::to_owned),
        target,
    });
    match outcome {
        Outcome::Respond(r) => r,
        Outcome::Drop => respond::text(
            StatusCode::BAD_GATEWAY,
            "The upstream dropped the connection (fault injection).\n",
        ),
    }
}

/// True for methods that carry (or must declare) a body.
pub(crate) fn is_post_like(m: &Method) -> bool {
    *m == Method::POST || *m == Method::PUT || *m == Method::PATCH
}
