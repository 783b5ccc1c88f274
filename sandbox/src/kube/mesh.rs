//! How the demo app is reached on the emulated cluster:
//!
//! - **through the API server's proxy** (`…/pods/{name}/proxy/…`,
//!   `…/services/{name}/proxy/…`): what a deploy uses to check the new pods
//!   before any user reaches them. A pod that is not ready, or a Service with
//!   no ready pod behind its selector, is the API server's `503`.
//! - **through the mesh's ingress** (`https://{service}--{namespace}.mesh.test`):
//!   user traffic. An Istio `VirtualService` naming the Service splits it by
//!   route weights over `DestinationRule` subsets (a subset's labels narrow
//!   the Service's pods); without one, the Service's selector decides. No
//!   ready pod is Envoy's `503 no healthy upstream`.
//! - **`https://metrics.mesh.test/metrics`**: what the mesh counted, as
//!   Istio's `istio_requests_total` (by `destination_service`,
//!   `destination_version` from the pod's `version` label, `response_code`),
//!   for a real Prometheus to scrape.
//!
//! A pod serves the demo app of its image's tag (`payments:2.4.2` serves
//! 2.4.2, with that version's behaviour from the sandbox's table).

use std::time::Instant;

use http::StatusCode;
use rand::Rng;
use serde_json::Value;

use super::store::kind_index;
use super::{Selector, status};
use crate::demo::{Workload, handle_pod};
use crate::respond::{self, Outcome, Req};
use crate::server::Shared;

/// Parent domain of the mesh's ingress hosts.
pub const MESH_DOMAIN: &str = "mesh.test";
/// Where the mesh's metrics are scraped.
pub const METRICS_HOST: &str = "metrics.mesh.test";

/// The ingress host for a Service: `{service}--{namespace}.mesh.test`.
pub fn ingress_host(service: &str, namespace: &str) -> String {
    format!("{service}--{namespace}.{MESH_DOMAIN}")
}

/// A ready pod that can take a request.
struct Ready {
    name: String,
    version_label: String,
    app_version: String,
    started: Instant,
}

/// The version a pod's image runs: the tag of its first container's image.
fn app_version(pod: &Value) -> String {
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.split('@').next().unwrap_or(tag).to_owned(),
        _ => "latest".to_owned(),
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The ready pods in `ns` carrying every label of `labels`.
fn ready_pods(shared: &Shared, ns: &str, labels: &serde_json::Map<String, Value>) -> Vec<Ready> {
    let mut cluster = shared.kube();
    super::controller::reconcile(&mut cluster);
    let pods = cluster.select(kind_index("pods"), ns, &Selector::default());
    pods.into_iter()
        .filter(|p| {
            labels
                .iter()
                .all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v))
                && is_ready(p)
        })
        .map(|p| {
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Ready {
                started: cluster
                    .pod_started
                    .get(&(ns.to_owned(), name.clone()))
                    .copied()
                    .unwrap_or(cluster.started),
                version_label: p["metadata"]["labels"]["version"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                app_version: app_version(&p),
                name,
            }
        })
        .collect()
}

fn workload(ns: &str, pod: &Ready) -> Workload {
    Workload::Pod {
        namespace: ns.to_owned(),
        pod: pod.name.clone(),
        version: pod.app_version.clone(),
        started: pod.started,
    }
}

/// `req` as the app sees it: the path after `proxy`, the same query.
fn inner(req: &Req, path: String) -> Req {
    let mut r = req.clone();
    r.path = path;
    r
}

/// The API server's proxy to a pod or to a Service's pods.
pub(crate) async fn proxy(
    shared: &Shared,
    req: &Req,
    plural: &str,
    ns: &str,
    name: &str,
    path: String,
) -> Outcome {
    // `{name}:{port}` names a port; the demo app listens on one.
    let name = name.split(':').next().unwrap_or(name);
    let inner = inner(req, path);
    if plural == "pods" {
        let pod = shared.kube().object(kind_index("pods"), ns, name).cloned();
        let Some(pod) = pod else {
            return super::not_found(&super::KINDS[kind_index("pods")], name);
        };
        let labels = pod["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let ready = ready_pods(shared, ns, &labels);
        return match ready.iter().find(|r| r.name == name) {
            Some(r) => handle_pod(shared, &inner, workload(ns, r)).await.into(),
            None => status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("error trying to reach service: pod {name} is not ready"),
            ),
        };
    }
    let service = shared
        .kube()
        .object(kind_index("services"), ns, name)
        .cloned();
    let Some(service) = service else {
        return super::not_found(&super::KINDS[kind_index("services")], name);
    };
    let selector = service["spec"]["selector"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ready = ready_pods(shared, ns, &selector);
    if ready.is_empty() {
        return status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{name}\""),
        );
    }
    let i = shared.world().rng.random_range(0..ready.len());
    handle_pod(shared, &inner, workload(ns, &ready[i]))
        .await
        .into()
}

/// A request to the mesh's ingress or its metrics host.
pub(crate) async fn handle(shared: &Shared, req: &Req) -> Outcome {
    if req.host == METRICS_HOST {
        let mut r = respond::text(StatusCode::OK, shared.kube().mesh_metrics());
        respond::set_header(
            &mut r,
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
        );
        return r.into();
    }
    let Some((service, ns)) = req
        .host
        .strip_suffix(&format!(".{MESH_DOMAIN}"))
        .and_then(|h| h.split_once("--"))
    else {
        return respond::text(StatusCode::NOT_FOUND, "no route\n").into();
    };
    let (service, ns) = (service.to_owned(), ns.to_owned());
    let svc = shared
        .kube()
        .object(kind_index("services"), &ns, &service)
        .cloned();
    let Some(svc) = svc else {
        return respond::text(StatusCode::NOT_FOUND, "no route\n").into();
    };
    let mut labels = svc["spec"]["selector"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // A subset narrows the Service's endpoints: a subset label that
    // contradicts the Service's selector leaves none (Envoy's "no healthy
    // upstream"), as in Istio.
    let mut contradicts = false;
    if let Some(subset) = routed_subset(shared, &ns, &service)
        && let Some(subset_labels) = subset_labels(shared, &ns, &service, &subset)
    {
        for (k, v) in subset_labels {
            match labels.get(&k) {
                Some(have) if *have != v => contradicts = true,
                _ => {
                    labels.insert(k, v);
                }
            }
        }
    }
    let ready = if contradicts {
        Vec::new()
    } else {
        ready_pods(shared, &ns, &labels)
    };
    if ready.is_empty() {
        shared.kube().count_mesh(&ns, &service, "unknown", 503);
        return respond::text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream").into();
    }
    let i = shared.world().rng.random_range(0..ready.len());
    let pod = &ready[i];
    let resp = handle_pod(shared, req, workload(&ns, pod)).await;
    shared
        .kube()
        .count_mesh(&ns, &service, &pod.version_label, resp.status().as_u16());
    resp.into()
}

/// The subset the VirtualService for `service` routes this request to, by
/// its first HTTP route's weights (`None`: no VirtualService, or a
/// destination without a subset).
fn routed_subset(shared: &Shared, ns: &str, service: &str) -> Option<String> {
    let vss = shared
        .kube()
        .select(kind_index("virtualservices"), ns, &Selector::default());
    let names = [
        service.to_owned(),
        format!("{service}.{ns}"),
        format!("{service}.{ns}.svc.cluster.local"),
    ];
    // The VirtualService that names the Service as a host, or (bound to a
    // gateway under a public host) routes to it.
    let names_it = |h: &Value| names.iter().any(|n| h == n.as_str());
    let vs = vss.into_iter().find(|vs| {
        vs["spec"]["hosts"]
            .as_array()
            .is_some_and(|hs| hs.iter().any(names_it))
            || vs["spec"]["http"][0]["route"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| names_it(&r["destination"]["host"])))
    })?;
    let routes = vs["spec"]["http"][0]["route"].as_array()?.clone();
    let weights: Vec<u64> = routes
        .iter()
        .map(|r| {
            r["weight"]
                .as_u64()
                .unwrap_or(if routes.len() == 1 { 100 } else { 0 })
        })
        .collect();
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut draw = shared.world().rng.random_range(0..total);
    for (r, w) in routes.iter().zip(weights) {
        if draw < w {
            return r["destination"]["subset"].as_str().map(str::to_owned);
        }
        draw -= w;
    }
    None
}

fn subset_labels(
    shared: &Shared,
    ns: &str,
    service: &str,
    subset: &str,
) -> Option<serde_json::Map<String, Value>> {
    let drs = shared
        .kube()
        .select(kind_index("destinationrules"), ns, &Selector::default());
    drs.iter()
        .filter(|dr| {
            dr["spec"]["host"]
                .as_str()
                .is_some_and(|h| h == service || h.starts_with(&format!("{service}.")))
        })
        .flat_map(|dr| {
            dr["spec"]["subsets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|s| s["name"] == subset)
        .and_then(|s| s["labels"].as_object().cloned())
}
