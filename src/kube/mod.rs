//! The Kubernetes API connection, as `azure/` is Azure's: what a kubeconfig
//! (a file, its content, a context) or a pod's service account describes,
//! and the generic reads and writes (get, list, create, merge patch,
//! replace, delete) with errors that say what the caller does. A platform's
//! typed operations on Deployments, Services and Istio objects belong in its
//! own file under `platform/`, built on this.
//!
//! Built on the project's HTTP layer ([`crate::http`]: one place builds
//! clients, every read is bounded in time and size, ADR 14), not on `kube`.
//! The cluster's CA replaces the system roots; `tls-server-name` is honoured
//! by dialling the server's address under that name; client certificates
//! are presented by rustls (ring, ADR 2). Tokens and keys are
//! [`SecretString`]s and never printed; what is refused is said with the
//! kubeconfig's own words (`insecure-skip-tls-verify`, `exec`,
//! `auth-provider`) and what to use instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::cancel::{Cancel, Cancelled};
use crate::http::{self, HttpError, HttpSettings, Idempotency, RetryPolicy};

/// Where the connection comes from.
#[derive(Clone)]
pub enum Source {
    /// A kubeconfig file (relative paths in it are relative to its folder).
    Path(PathBuf),
    /// A kubeconfig's content (relative paths: to the working directory).
    Content(String),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST`, the token and
    /// CA under `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => f.debug_tuple("Path").field(p).finish(),
            // A kubeconfig's content may hold a token or a key.
            Source::Content(_) => f.write_str("Content(***)"),
            Source::InCluster => f.write_str("InCluster"),
        }
    }
}

/// What went wrong, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig or the chosen context is unusable (abort: fix it).
    #[error("{0}")]
    Config(String),
    /// The server refused the credentials (401) or the action (403):
    /// abort; the body says which permission is missing.
    #[error("the Kubernetes API server refused {what} ({status}): {message}")]
    Denied {
        /// What was asked.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The server's `Status.message`.
        message: String,
    },
    /// The object does not exist.
    #[error("{what} was not found")]
    NotFound {
        /// The object, in words.
        what: String,
    },
    /// Someone changed the object since it was read (409 `Conflict`), or it
    /// already exists (409 `AlreadyExists`): read again and decide.
    #[error("{what}: {message}")]
    Conflict {
        /// What was asked.
        what: String,
        /// `Conflict` or `AlreadyExists`.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The request is wrong (400, 415, 422), or the answer cannot be one
    /// (too large, not JSON): abort.
    #[error("the Kubernetes API server rejected {what}{}: {message}", if *.status == 0 { String::new() } else { format!(" ({status})") })]
    Rejected {
        /// What was asked.
        what: String,
        /// The status (0: no status applies).
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server is throttling or failing, or could not be reached: wait
    /// and ask again.
    #[error("the Kubernetes API server is unavailable for {what}: {detail}")]
    Unavailable {
        /// What was asked.
        what: String,
        /// Status and message, or the transport error.
        detail: String,
    },
    /// Cancelled.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// A kubeconfig, as far as expedite reads it.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct KubeConfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    #[serde(rename = "value")]
    #[serde(default)]
    value: Option<T>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    exec: Option<Value>,
    auth_provider: Option<Value>,
    username: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct Context {
    cluster: Option<String>,
    user: Option<String>,
    namespace: Option<String>,
}

/// A connection to one cluster as one user.
#[derive(Clone)]
pub struct Kube {
    http: reqwest::Client,
    /// `https://{server or tls-server-name}:{port}`, no trailing slash.
    base: String,
    token: Option<SecretString>,
    /// The context's namespace (`default` when it names none).
    pub namespace: String,
    /// The context's name (`in-cluster` for a service account), for the
    /// lock key and messages.
    pub context: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("base", &self.base)
            .field("context", &self.context)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The bound on reading a kubeconfig or a file it names.
const FILE_LIMIT: u64 = 4 * 1024 * 1024;

fn read_file(path: &Path, what: &str) -> Result<String, KubeError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        KubeError::Config(format!("cannot read the {what} {}: {e}", path.display()))
    })?;
    if meta.len() > FILE_LIMIT {
        return Err(KubeError::Config(format!(
            "the {what} {} is {} bytes, more than a {what} can be ({FILE_LIMIT})",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| KubeError::Config(format!("cannot read the {what} {}: {e}", path.display())))
}

fn decode_data(data: &str, what: &str) -> Result<String, KubeError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| KubeError::Config(format!("{what} is not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| KubeError::Config(format!("{what} is not PEM text")))
}

/// Inline data, or the file it names (relative to `dir`).
fn pem(
    data: Option<&str>,
    file: Option<&str>,
    dir: &Path,
    what: &str,
) -> Result<Option<String>, KubeError> {
    match (data, file) {
        (Some(d), _) => decode_data(d, &format!("{what} data")).map(Some),
        (None, Some(f)) => read_file(&dir.join(f), what).map(Some),
        (None, None) => Ok(None),
    }
}

/// Where a YAML error is, without the parser's excerpt of the text around
/// it or any value it quotes: the lines next to a mistake in a kubeconfig
/// are often its token or key.
fn yaml_error_place(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    match first.find("line ") {
        Some(at) => {
            let place = &first[at..];
            let end = place
                .find("column ")
                .map(|c| {
                    let digits = place[c + 7..]
                        .find(|ch: char| !ch.is_ascii_digit())
                        .unwrap_or(place.len() - c - 7);
                    c + 7 + digits
                })
                .unwrap_or(0);
            format!(
                "YAML error at {}",
                place[..end].replace(" column", ", column")
            )
        }
        None => "not YAML".to_owned(),
    }
}

fn names<T>(items: &[Named<T>]) -> String {
    let v: Vec<&str> = items.iter().map(|n| n.name.as_str()).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

impl Kube {
    /// Connects as `source` says, with `context` (the kubeconfig's current
    /// context when `None`). Reads files; sends nothing.
    pub fn connect(source: &Source, context: Option<&str>) -> Result<Kube, KubeError> {
        match source {
            Source::InCluster => Self::in_cluster(),
            Source::Path(p) => {
                let text = read_file(p, "kubeconfig")?;
                let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
                Self::from_kubeconfig(&text, &dir, context, &format!("kubeconfig {}", p.display()))
            }
            Source::Content(text) => {
                if text.len() as u64 > FILE_LIMIT {
                    return Err(KubeError::Config(format!(
                        "the kubeconfig content is {} bytes, more than a kubeconfig can be",
                        text.len()
                    )));
                }
                Self::from_kubeconfig(text, Path::new("."), context, "kubeconfig content")
            }
        }
    }

    fn in_cluster() -> Result<Kube, KubeError> {
        Self::in_cluster_at(
            Path::new("/var/run/secrets/kubernetes.io/serviceaccount"),
            std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok(),
        )
    }

    /// The service account in `dir`, the API server at `host:port`.
    fn in_cluster_at(
        dir: &Path,
        host: Option<String>,
        port: Option<String>,
    ) -> Result<Kube, KubeError> {
        let (Some(host), Some(port)) = (host, port) else {
            return Err(KubeError::Config(
                "not running in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set); give a kubeconfig".into(),
            ));
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let token = read_file(&dir.join("token"), "service account token")?;
        let ca = read_file(&dir.join("ca.crt"), "service account CA")?;
        let namespace = read_file(&dir.join("namespace"), "service account namespace")
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|_| "default".to_owned());
        Self::build(
            &format!("https://{host}:{port}"),
            Some(ca),
            None,
            None,
            Some(token.trim().to_owned()),
            namespace,
            "in-cluster".to_owned(),
        )
    }

    fn from_kubeconfig(
        text: &str,
        dir: &Path,
        context: Option<&str>,
        from: &str,
    ) -> Result<Kube, KubeError> {
        let cfg: KubeConfig = serde_saphyr::from_str(text).map_err(|e| {
            KubeError::Config(format!(
                "the {from} is not a kubeconfig ({}; its text is not repeated here, since a kubeconfig holds credentials)",
                yaml_error_place(&e.to_string())
            ))
        })?;
        let wanted = match context.or(cfg.current_context.as_deref()) {
            Some(c) if !c.is_empty() => c.to_owned(),
            _ => {
                return Err(KubeError::Config(format!(
                    "the {from} has no current-context; name one of its contexts ({})",
                    names(&cfg.contexts)
                )));
            }
        };
        let ctx = cfg
            .contexts
            .iter()
            .find(|c| c.name == wanted)
            .ok_or_else(|| {
                KubeError::Config(format!(
                    "the {from} has no context '{wanted}' (it has: {})",
                    names(&cfg.contexts)
                ))
            })?
            .value
            .as_ref()
            .ok_or_else(|| KubeError::Config(format!("context '{wanted}' is empty")))?;
        let cluster_name = ctx.cluster.as_deref().unwrap_or_default();
        let cluster = cfg
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| {
                KubeError::Config(format!(
                    "context '{wanted}' names cluster '{cluster_name}', which the {from} does not define (it has: {})",
                    names(&cfg.clusters)
                ))
            })?;
        if cluster.insecure_skip_tls_verify {
            return Err(KubeError::Config(format!(
                "cluster '{cluster_name}' sets insecure-skip-tls-verify; expedite always verifies the API server: give its CA (certificate-authority or certificate-authority-data)"
            )));
        }
        if cluster.proxy_url.is_some() {
            return Err(KubeError::Config(format!(
                "cluster '{cluster_name}' sets proxy-url, which expedite does not support; use HTTPS_PROXY"
            )));
        }
        let server = cluster
            .server
            .as_deref()
            .ok_or_else(|| KubeError::Config(format!("cluster '{cluster_name}' has no server")))?;
        let ca = pem(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            dir,
            "certificate authority",
        )?;
        let user_name = ctx.user.as_deref().unwrap_or_default();
        let user = match cfg.users.iter().find(|u| u.name == user_name) {
            Some(u) => u.value.as_ref(),
            None if user_name.is_empty() => None,
            None => {
                return Err(KubeError::Config(format!(
                    "context '{wanted}' names user '{user_name}', which the {from} does not define (it has: {})",
                    names(&cfg.users)
                )));
            }
        };
        let default_user = User::default();
        let user = user.unwrap_or(&default_user);
        if user.exec.is_some() {
            return Err(KubeError::Config(format!(
                "user '{user_name}' gets its token from an exec plugin, which expedite does not run; give a service account token (token or tokenFile) or a client certificate"
            )));
        }
        if user.auth_provider.is_some() {
            return Err(KubeError::Config(format!(
                "user '{user_name}' uses an auth-provider, which Kubernetes removed; give a token or a client certificate"
            )));
        }
        if user.username.is_some() {
            return Err(KubeError::Config(format!(
                "user '{user_name}' uses a username and password, which expedite does not send; give a token or a client certificate"
            )));
        }
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(read_file(&dir.join(f), "token file")?.trim().to_owned()),
            _ => None,
        };
        let cert = pem(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            dir,
            "client certificate",
        )?;
        let key = pem(
            user.client_key_data.as_deref(),
            user.client_key.as_deref(),
            dir,
            "client key",
        )?;
        if cert.is_some() != key.is_some() {
            return Err(KubeError::Config(format!(
                "user '{user_name}' has a client certificate without its key, or a key without its certificate"
            )));
        }
        Self::build(
            server,
            ca,
            cluster.tls_server_name.clone(),
            cert.zip(key),
            token,
            ctx.namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            wanted,
        )
    }

    #[allow(clippy::too_many_arguments)] // a connection's parts
    fn build(
        server: &str,
        ca: Option<String>,
        tls_server_name: Option<String>,
        identity: Option<(String, String)>,
        token: Option<String>,
        namespace: String,
        context: String,
    ) -> Result<Kube, KubeError> {
        let url = url::Url::parse(server)
            .map_err(|e| KubeError::Config(format!("the server '{server}' is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(KubeError::Config(format!(
                "the server '{server}' is not https; expedite talks to API servers over TLS only"
            )));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let mut settings = HttpSettings {
            system_roots: ca.is_none(),
            extra_ca_pem: ca.into_iter().collect(),
            request_timeout: Duration::from_secs(30),
            ..HttpSettings::default()
        };
        // `tls-server-name`: dial the server's address, verify and send SNI
        // for this name.
        let base_host = match tls_server_name {
            Some(name) if name != host => {
                let ip = host.trim_start_matches('[').trim_end_matches(']');
                let addr: std::net::IpAddr = ip.parse().map_err(|_| {
                    KubeError::Config(format!(
                        "tls-server-name is set but the server '{server}' is not an IP address; expedite supports tls-server-name with an IP server only"
                    ))
                })?;
                settings.resolve.push(http::ResolveRule {
                    host: name.to_ascii_lowercase(),
                    addr: std::net::SocketAddr::new(addr, port),
                });
                name
            }
            _ => url.host_str().unwrap_or_default().to_owned(),
        };
        let identity = match identity {
            Some((cert, key)) => {
                Some(http::ClientIdentity::from_pem(&cert, &key).map_err(|e| {
                    KubeError::Config(format!("the client certificate or its key: {e}"))
                })?)
            }
            None => None,
        };
        let client = http::client_with_identity(&settings, identity)
            .map_err(|e| KubeError::Config(e.to_string()))?;
        let path = url.path().trim_end_matches('/');
        Ok(Kube {
            http: client,
            base: format!("https://{base_host}:{port}{path}"),
            token: token.filter(|t| !t.is_empty()).map(SecretString::from),
            namespace,
            context,
            retry: RetryPolicy::default(),
        })
    }

    /// The API server's URL as expedite reaches it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A [`Dial`](http::Dial) that sends requests under the API server
    /// through this connection (its CA, client certificate and token), and
    /// every other request through `shared`.
    pub fn dial(&self, shared: reqwest::Client) -> http::Dial {
        http::Dial::new(shared).with_api(&self.base, self.http.clone(), self.token.clone())
    }

    /// A host for [`crate::probe::Probe`] that reaches `path` (an API
    /// server proxy path such as `/api/v1/namespaces/shop/pods/web-1:8080/proxy`)
    /// through this API server: its base without the scheme, then `path`.
    pub fn proxy_host(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.base.strip_prefix("https://").unwrap_or(&self.base)
        )
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/json");
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t.expose_secret());
        }
        rb
    }

    /// One request; `what` names it for errors. GETs and PATCHes by merge
    /// are retried on throttling and transport errors (the same answer
    /// either way); creates are sent once.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, &Value)>,
        what: &str,
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        let idempotency = if method == reqwest::Method::POST {
            Idempotency::Once
        } else {
            Idempotency::Idempotent
        };
        let build = || {
            let rb = self.request(method.clone(), path);
            match body {
                Some((ct, v)) => rb.header("content-type", ct).body(v.to_string()),
                None => rb,
            }
        };
        match http::send(build, idempotency, &self.retry, c).await {
            Ok(resp) => serde_json::from_slice(&resp.bytes).map_err(|e| KubeError::Rejected {
                what: what.to_owned(),
                status: resp.status.as_u16(),
                message: format!("the answer is not JSON: {e}"),
            }),
            Err(HttpError::Cancelled(c)) => Err(KubeError::Cancelled(c)),
            Err(e) => Err(classify(e, what)),
        }
    }

    /// An object by its API path (`/apis/apps/v1/namespaces/shop/deployments/web`);
    /// `None` when it does not exist.
    pub async fn get(&self, path: &str, c: &Cancel) -> Result<Option<Value>, KubeError> {
        match self
            .call(reqwest::Method::GET, path, None, &format!("GET {path}"), c)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(KubeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The items of a list, with a label selector.
    pub async fn list(
        &self,
        path: &str,
        labels: Option<&str>,
        c: &Cancel,
    ) -> Result<Vec<Value>, KubeError> {
        let full = match labels {
            Some(l) => format!(
                "{path}?labelSelector={}",
                url::form_urlencoded::byte_serialize(l.as_bytes()).collect::<String>()
            ),
            None => path.to_owned(),
        };
        let v = self
            .call(reqwest::Method::GET, &full, None, &format!("GET {path}"), c)
            .await?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// Creates an object in the collection at `path`.
    pub async fn create(&self, path: &str, object: &Value, c: &Cancel) -> Result<Value, KubeError> {
        self.call(
            reqwest::Method::POST,
            path,
            Some(("application/json", object)),
            &format!("creating {}", describe(path, object)),
            c,
        )
        .await
    }

    /// A JSON merge patch. With `metadata.resourceVersion` in the patch, it
    /// applies only to that version (409 otherwise).
    pub async fn merge_patch(
        &self,
        path: &str,
        patch: &Value,
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        self.call(
            reqwest::Method::PATCH,
            path,
            Some(("application/merge-patch+json", patch)),
            &format!("patching {path}"),
            c,
        )
        .await
    }

    /// Replaces an object; its `metadata.resourceVersion` makes it a
    /// compare-and-set.
    pub async fn replace(
        &self,
        path: &str,
        object: &Value,
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        self.call(
            reqwest::Method::PUT,
            path,
            Some(("application/json", object)),
            &format!("replacing {path}"),
            c,
        )
        .await
    }

    /// Deletes an object; `Ok(false)` when it was already gone.
    pub async fn delete(&self, path: &str, c: &Cancel) -> Result<bool, KubeError> {
        match self
            .call(
                reqwest::Method::DELETE,
                path,
                None,
                &format!("deleting {path}"),
                c,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(KubeError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn describe(path: &str, object: &Value) -> String {
    match object["metadata"]["name"].as_str() {
        Some(n) => format!("{n} in {path}"),
        None => path.to_owned(),
    }
}

/// The server's `Status` message, or the body's start.
fn message(body: &str) -> (String, String) {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v["kind"] == "Status" => (
            v["reason"].as_str().unwrap_or_default().to_owned(),
            v["message"].as_str().unwrap_or_default().to_owned(),
        ),
        _ => (String::new(), crate::text::clip(body.trim(), 300)),
    }
}

fn classify(e: HttpError, what: &str) -> KubeError {
    let Some(status) = e.status() else {
        return match e {
            // An answer too large to be one, or a request that cannot be
            // built, will not get better by asking again.
            HttpError::TooLarge { .. } | HttpError::Config(_) => KubeError::Rejected {
                what: what.to_owned(),
                status: 0,
                message: e.to_string(),
            },
            _ => KubeError::Unavailable {
                what: what.to_owned(),
                detail: e.to_string(),
            },
        };
    };
    let body = match &e {
        HttpError::Status { body, .. } => body.clone(),
        _ => String::new(),
    };
    let (reason, msg) = message(&body);
    let what = what.to_owned();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => KubeError::Denied {
            what,
            status: status.as_u16(),
            message: msg,
        },
        StatusCode::NOT_FOUND => KubeError::NotFound { what },
        StatusCode::CONFLICT => KubeError::Conflict {
            what,
            reason,
            message: msg,
        },
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => KubeError::Unavailable {
            what,
            detail: format!("{s}: {msg}"),
        },
        s => KubeError::Rejected {
            what,
            status: s.as_u16(),
            message: msg,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUQ2OT5cZ2p8WmbDQ8NS6JSeV5ps0wCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";

    fn kubeconfig(cluster: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context:\n    cluster: aks\n    user: deployer\n    namespace: payments\n- name: staging\n  context:\n    cluster: aks\n    user: deployer\nclusters:\n- name: aks\n  cluster:\n{cluster}users:\n- name: deployer\n  user:\n{user}"
        )
    }

    fn err(text: &str, context: Option<&str>) -> String {
        match Kube::connect(&Source::Content(text.to_owned()), context) {
            Ok(k) => panic!("connected: {k:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_kubeconfig_that_cannot_work_is_one_clear_error() {
        let good_cluster = "    server: https://10.0.0.1:6443\n";
        let token = "    token: abc\n";
        let e = err(&kubeconfig(good_cluster, token), Some("qa"));
        assert!(
            e.contains("no context 'qa'") && e.contains("prod, staging"),
            "{e}"
        );
        let e = err(
            &kubeconfig(
                &format!("{good_cluster}    insecure-skip-tls-verify: true\n"),
                token,
            ),
            None,
        );
        assert!(
            e.contains("insecure-skip-tls-verify") && e.contains("CA"),
            "{e}"
        );
        let e = err(
            &kubeconfig(
                good_cluster,
                "    exec:\n      command: aws\n      args: [eks, get-token]\n",
            ),
            None,
        );
        assert!(e.contains("exec plugin"), "{e}");
        let e = err(
            &kubeconfig("    server: http://10.0.0.1:8080\n", token),
            None,
        );
        assert!(e.contains("not https"), "{e}");
        let e = err(
            &kubeconfig(good_cluster, "    client-certificate-data: eA==\n"),
            None,
        );
        assert!(e.contains("without its key"), "{e}");
        let e = err(
            &kubeconfig(
                "    server: https://10.0.0.1\n    certificate-authority: /nonexistent/ca.crt\n",
                token,
            ),
            None,
        );
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
        let e = err("clusters: [", None);
        assert!(e.contains("not a kubeconfig"), "{e}");
        // A YAML mistake next to a credential: where it is, never the text.
        for (text, place) in [
            (
                "users:\n- name: u\n  user:\n    token: s3cr3t-T0KEN\n    token-file: [unclosed\n",
                "line 5, column 17",
            ),
            (
                "users:\n- name: u\n  user:\n    token: s3cr3t-T0KEN\n    client-key-data: {a: 1}\n",
                "line 5, column 22",
            ),
            (
                "users:\n- name: u\n  user:\n    token: [s3cr3t-T0KEN]\n",
                "line 4",
            ),
        ] {
            let e = err(text, None);
            assert!(e.contains("not a kubeconfig") && e.contains(place), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let e = err("apiVersion: v1\nkind: Config\n", None);
        assert!(e.contains("no current-context"), "{e}");
        let e = match Kube::connect(&Source::Path("/nonexistent/kubeconfig".into()), None) {
            Ok(_) => panic!("connected"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("cannot read the kubeconfig /nonexistent/kubeconfig"),
            "{e}"
        );
        // A token never shows in the connection's debug form.
        let k = Kube::connect(
            &Source::Content(kubeconfig(good_cluster, "    token: s3cr3t-t0ken\n")),
            None,
        )
        .expect("connects");
        assert!(!format!("{k:?}").contains("s3cr3t"), "{k:?}");
        assert_eq!(
            (k.namespace.as_str(), k.context.as_str()),
            ("payments", "prod")
        );
        let k = Kube::connect(
            &Source::Content(kubeconfig(good_cluster, token)),
            Some("staging"),
        )
        .expect("connects");
        assert_eq!(k.namespace, "default");
        // A CA that is not a certificate is refused when the client is built.
        let bad_ca = format!(
            "    server: https://10.0.0.1\n    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(CA)
        );
        let e = err(&kubeconfig(&bad_ca, token), None);
        assert!(e.to_lowercase().contains("certificate"), "{e}");
    }

    #[test]
    fn a_client_certificate_is_presented_and_a_broken_one_is_refused() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["deployer".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&cert.pem()),
            b64(&key.serialize_pem())
        );
        let k = Kube::connect(
            &Source::Content(kubeconfig("    server: https://10.0.0.1:6443\n", &user)),
            None,
        )
        .expect("a client with the identity");
        assert!(k.token.is_none());
        let broken = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&cert.pem()),
            b64("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        );
        let e = err(
            &kubeconfig("    server: https://10.0.0.1:6443\n", &broken),
            None,
        );
        assert!(e.contains("client certificate or its key"), "{e}");
    }

    #[test]
    fn a_pods_service_account_is_read_from_its_folder() {
        let dir = tempfile::tempdir().expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(vec!["kubernetes.default.svc".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(dir.path().join("token"), "sa-token\n").expect("token");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("ca");
        std::fs::write(dir.path().join("namespace"), "payments\n").expect("ns");
        let k = Kube::in_cluster_at(dir.path(), Some("10.96.0.1".into()), Some("443".into()))
            .expect("connects");
        assert_eq!(
            (k.base(), k.namespace.as_str(), k.context.as_str()),
            ("https://10.96.0.1:443", "payments", "in-cluster")
        );
        let e = Kube::in_cluster_at(dir.path(), None, None).expect_err("no env");
        assert!(e.to_string().contains("not running in a pod"), "{e}");
        std::fs::remove_file(dir.path().join("token")).expect("rm");
        let e = Kube::in_cluster_at(dir.path(), Some("10.96.0.1".into()), Some("443".into()))
            .expect_err("no token");
        assert!(e.to_string().contains("service account token"), "{e}");
    }

    #[test]
    fn tls_server_name_dials_the_address_under_that_name() {
        let k = Kube::connect(
            &Source::Content(kubeconfig(
                "    server: https://127.0.0.1:6443\n    tls-server-name: api.aks.test\n",
                "    token: t\n",
            )),
            None,
        )
        .expect("connects");
        assert_eq!(k.base(), "https://api.aks.test:6443");
        let e = err(
            &kubeconfig(
                "    server: https://aks.example:6443\n    tls-server-name: api.aks.test\n",
                "    token: t\n",
            ),
            None,
        );
        assert!(e.contains("tls-server-name"), "{e}");
    }
}
