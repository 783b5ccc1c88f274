//! An emulated Kubernetes API server at [`HOST`] (issue 19's foundation):
//! the resources a blue-green or Istio-canary hotfix touches — `v1`
//! Namespaces, Pods and Services, `apps/v1` Deployments (with `scale` and
//! `status`) and ReplicaSets, `coordination.k8s.io/v1` Leases, and
//! `networking.istio.io/v1` VirtualServices and DestinationRules.
//!
//! What real clients rely on is what is emulated, and `kubectl` checks it
//! (`sandbox/tests/kubectl.rs`): discovery (`/version`, `/api`, `/apis`, the
//! resource lists), `resourceVersion` on every object and list with
//! optimistic concurrency (a stale `resourceVersion` on an update is
//! `409 Conflict`, as the API server answers), `generation` bumped by spec
//! changes, JSON merge, strategic merge (lists of named items merged by
//! name) and JSON patches, `labelSelector` and `fieldSelector` on lists,
//! watches (answered as long polls: the events since the given
//! `resourceVersion`, or `410 Gone` once they are no longer kept), and
//! errors as `Status` objects. A small controller ([`controller`]) turns a
//! Deployment into ReplicaSets and Pods by template, keeps the revision
//! annotations `kubectl rollout undo` reads, and reports readiness the way
//! `kubectl rollout status` judges it.
//!
//! Requests need the cluster's bearer token (`kubeconfig` in the sandbox's
//! settings); server-side apply and the OpenAPI documents are not emulated
//! (`415` and `404`, which `kubectl apply --validate=false` does without).

pub(crate) mod controller;
pub mod mesh;
mod patch;
mod store;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::respond::{self, Outcome, Req};
use crate::server::Shared;
pub use store::PodBehaviour;
pub(crate) use store::{Cluster, KINDS, Kind};

/// The API server's host name (the sandbox CA's certificate names it; a
/// client connecting to 127.0.0.1 sends it as the TLS server name).
pub const HOST: &str = "kubernetes.test";

/// How long a watch waits for the first event before ending its stream
/// (client-go then watches again from the same `resourceVersion`).
const WATCH_WAIT: Duration = Duration::from_secs(2);

/// A `Status` object, the body of every error (and of a delete's answer).
pub(crate) fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Outcome {
    let message = message.into();
    respond::json(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
    .into()
}

fn not_found(kind: &Kind, name: &str) -> Outcome {
    let mut o = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{}{} \"{name}\" not found", kind.plural, kind.group_suffix()),
        "reason": "NotFound",
        "details": {"name": name, "group": kind.group, "kind": kind.plural},
        "code": 404,
    });
    if kind.group.is_empty() {
        o["details"]["group"] = Value::Null;
    }
    respond::json(StatusCode::NOT_FOUND, &o).into()
}

/// Answers one request to [`HOST`].
pub(crate) async fn handle(shared: &Shared, req: &Req) -> Outcome {
    let token = shared.kube().token().to_owned();
    let authorised = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token);
    if !authorised {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => respond::json(
            StatusCode::OK,
            &json!({
                "major": "1", "minor": "32", "gitVersion": "v1.32.0-expedite-sandbox",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
                "compiler": "gc", "platform": "linux/amd64",
            }),
        )
        .into(),
        (Method::GET, ["healthz" | "readyz" | "livez"]) => {
            respond::text(StatusCode::OK, "ok").into()
        }
        (Method::GET, ["api"]) => respond::json(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("{HOST}:443")}],
            }),
        )
        .into(),
        (Method::GET, ["apis"]) => respond::json(StatusCode::OK, &store::group_list()).into(),
        (Method::GET, ["api", "v1"]) => resource_list("", "v1"),
        (Method::GET, ["apis", group, version]) => resource_list(group, version),
        (_, ["api", "v1", rest @ ..]) => resource(shared, req, "", "v1", rest).await,
        (_, ["apis", group, version, rest @ ..]) => {
            resource(shared, req, group, version, rest).await
        }
        (Method::GET, ["openapi", ..]) => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the sandbox serves no OpenAPI documents (use kubectl's --validate=false)",
        ),
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource ({})", req.path),
        ),
    }
}

fn resource_list(group: &str, version: &str) -> Outcome {
    match store::resource_list(group, version) {
        Some(list) => respond::json(StatusCode::OK, &list).into(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

/// `…/namespaces/{ns}/{plural}[/{name}[/{sub}]]` or `…/{plural}[/{name}[/{sub}]]`.
async fn resource(
    shared: &Shared,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Outcome {
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (
            Some(*ns),
            *plural,
            tail.first().copied(),
            tail.get(1).copied(),
        ),
        [plural, tail @ ..] => (None, *plural, tail.first().copied(), tail.get(1).copied()),
        [] => return resource_list(group, version),
    };
    let Some(kind_index) = store::find_kind(group, version, plural) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let kind = &KINDS[kind_index];
    // The API server's proxy: `…/{pods|services}/{name}/proxy/{path…}`.
    if sub == Some("proxy")
        && let (Some(ns), Some(name)) = (ns, name)
        && matches!(plural, "pods" | "services")
    {
        let skip = 5; // namespaces, {ns}, {plural}, {name}, proxy
        let path = format!("/{}", rest.get(skip..).unwrap_or_default().join("/"));
        return mesh::proxy(shared, req, plural, ns, name, path).await;
    }
    if kind.namespaced != ns.is_some() && !(kind.namespaced && ns.is_none() && name.is_none()) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    if let Some(s) = sub
        && !kind.subresources.contains(&s)
    {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let dry_run = req.query_param("dryRun").is_some_and(|d| d == "All");
    let ns = ns.unwrap_or("");
    match (&req.method, name) {
        (&Method::GET, None) => {
            let watch = req
                .query_param("watch")
                .is_some_and(|w| w == "true" || w == "1");
            if watch {
                return watch_events(shared, req, kind_index, ns).await;
            }
            let selector = match Selector::parse(req) {
                Ok(s) => s,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e),
            };
            let list = shared.kube().list(kind_index, ns, &selector);
            respond::json(StatusCode::OK, &list).into()
        }
        (&Method::POST, None) => {
            let body = match body_object(req) {
                Ok(b) => b,
                Err(o) => return o,
            };
            shared.kube().create(kind_index, ns, body, dry_run)
        }
        (&Method::GET, Some(name)) => shared.kube().get(kind_index, ns, name, sub),
        (&Method::PUT, Some(name)) => {
            let body = match body_object(req) {
                Ok(b) => b,
                Err(o) => return o,
            };
            shared
                .kube()
                .replace(kind_index, ns, name, sub, body, dry_run)
        }
        (&Method::PATCH, Some(name)) => {
            let ct = req.header("content-type").unwrap_or_default();
            let ct = ct.split(';').next().unwrap_or_default().trim().to_owned();
            let kind_of_patch = match ct.as_str() {
                "application/merge-patch+json" => patch::Kind::Merge,
                "application/strategic-merge-patch+json" => patch::Kind::Strategic,
                "application/json-patch+json" => patch::Kind::Json,
                "application/apply-patch+yaml" => {
                    return status(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        "the sandbox does not emulate server-side apply; use client-side apply",
                    );
                }
                other => {
                    return status(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got '{other}')"
                        ),
                    );
                }
            };
            let p: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    return status(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("the patch is not JSON: {e}"),
                    );
                }
            };
            shared
                .kube()
                .patch(kind_index, ns, name, sub, kind_of_patch, &p, dry_run)
        }
        (&Method::DELETE, Some(name)) => shared.kube().delete(kind_index, ns, name, dry_run),
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{} is not supported here", req.method),
        ),
    }
}

fn body_object(req: &Req) -> Result<Value, Outcome> {
    match req.json_body() {
        Ok(Some(v)) if v.is_object() => Ok(v),
        Ok(_) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("the request body is not JSON: {e}"),
        )),
    }
}

/// A long-poll watch: the events after `resourceVersion` (all objects as
/// `ADDED` when it is absent or `0`), waiting up to [`WATCH_WAIT`] for the
/// first; then the stream ends and the client watches again.
async fn watch_events(shared: &Shared, req: &Req, kind_index: usize, ns: &str) -> Outcome {
    let selector = match Selector::parse(req) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e),
    };
    let from = req
        .query_param("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0);
    let wait = req
        .query_param("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(WATCH_WAIT, |s| Duration::from_secs(s).min(WATCH_WAIT));
    let deadline = Instant::now() + wait;
    loop {
        let answer = shared.kube().events_since(kind_index, ns, &selector, from);
        match answer {
            Err(gone) => {
                let line = json!({"type": "ERROR", "object": gone});
                return watch_body(&[line]);
            }
            Ok(events) if !events.is_empty() || Instant::now() >= deadline => {
                return watch_body(&events);
            }
            Ok(_) => {}
        }
        if *shared.shutdown.borrow() {
            return watch_body(&[]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn watch_body(events: &[Value]) -> Outcome {
    let mut body = String::new();
    for e in events {
        body.push_str(&e.to_string());
        body.push('\n');
    }
    respond::build(
        StatusCode::OK,
        Some("application/json"),
        bytes::Bytes::from(body),
    )
    .into()
}

/// `labelSelector` (equality, inequality, `in`, `notin`, existence) and
/// `fieldSelector` (`metadata.name`, `metadata.namespace`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, String, bool)>,
}

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(req: &Req) -> Result<Self, String> {
        let mut s = Selector::default();
        if let Some(l) = req.query_param("labelSelector") {
            s.labels = parse_labels(l)?;
        }
        if let Some(f) = req.query_param("fieldSelector") {
            for part in f.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v, eq) = if let Some((k, v)) = part.split_once("!=") {
                    (k, v, false)
                } else if let Some((k, v)) = part.split_once("==") {
                    (k, v, true)
                } else if let Some((k, v)) = part.split_once('=') {
                    (k, v, true)
                } else {
                    return Err(format!("invalid field selector: '{part}'"));
                };
                let k = k.trim();
                if k != "metadata.name" && k != "metadata.namespace" {
                    return Err(format!(
                        "field label not supported: {k} (the sandbox knows metadata.name and metadata.namespace)"
                    ));
                }
                s.fields.push((k.to_owned(), v.trim().to_owned(), eq));
            }
        }
        Ok(s)
    }

    /// Whether `obj` is selected.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        let fields_ok = self.fields.iter().all(|(k, v, eq)| {
            let actual = match k.as_str() {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                _ => obj["metadata"]["namespace"].as_str(),
            }
            .unwrap_or_default();
            (actual == v) == *eq
        });
        labels_ok && fields_ok
    }
}

/// Splits on commas outside parentheses, then reads each requirement.
fn parse_labels(text: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let set = |s: &str| -> Result<Vec<String>, String> {
        let inner = s
            .trim()
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("invalid label selector: '{text}'"))?;
        Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
    };
    let mut out = Vec::new();
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let r = if let Some((k, v)) = p.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once("==") {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once('=') {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(v)?)
        } else if let Some((k, v)) = p.split_once(" in ") {
            Requirement::In(k.trim().into(), set(v)?)
        } else if let Some(k) = p.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            Requirement::Exists(p.into())
        } else {
            return Err(format!("invalid label selector: '{text}'"));
        };
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": labels}})
    }

    #[test]
    fn label_selectors_read_as_the_api_server_reads_them() {
        let o = obj(json!({"app": "web", "version": "blue"}));
        let sel = |t: &str| Selector {
            labels: parse_labels(t).expect(t),
            fields: vec![],
        };
        assert!(sel("app=web,version=blue").matches(&o));
        assert!(sel("app==web").matches(&o));
        assert!(!sel("version!=blue").matches(&o));
        assert!(sel("version in (blue, green)").matches(&o));
        assert!(!sel("version notin (blue,green)").matches(&o));
        assert!(sel("app,!tier").matches(&o));
        assert!(!sel("tier").matches(&o));
        assert!(parse_labels("version in blue").is_err());
        assert!(parse_labels("a b c").is_err());
    }
}
