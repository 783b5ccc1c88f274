//! The cluster's objects: the kinds served and their discovery documents,
//! and every object with its `resourceVersion`, `uid` and `generation`. A
//! change is one step of a single counter, as etcd's revision is, and is
//! kept as a watch event; updates carrying a `resourceVersion` other than
//! the stored one are refused with `409 Conflict`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};

use super::patch;
use super::{Selector, not_found, status};
use crate::respond::{self, Outcome};

/// One kind of object the server knows.
#[derive(Debug)]
pub(crate) struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short: &'static [&'static str],
    pub subresources: &'static [&'static str],
}

impl Kind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `.apps` (empty for the core group), as API errors name a resource.
    pub fn group_suffix(&self) -> String {
        if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        }
    }

    /// Whether a change to `spec` bumps `metadata.generation`.
    fn has_generation(&self) -> bool {
        matches!(self.plural, "deployments" | "replicasets")
    }

    /// Whether `status` is only written through the `status` subresource.
    fn has_status_subresource(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every kind served, in discovery order.
pub(crate) static KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        subresources: &[],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        subresources: &["status"],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        subresources: &["status"],
    },
    Kind {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        subresources: &["scale", "status"],
    },
    Kind {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short: &["rs"],
        subresources: &["scale", "status"],
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short: &[],
        subresources: &[],
    },
    Kind {
        group: "networking.istio.io",
        version: "v1",
        plural: "virtualservices",
        singular: "virtualservice",
        kind: "VirtualService",
        namespaced: true,
        short: &["vs"],
        subresources: &[],
    },
    Kind {
        group: "networking.istio.io",
        version: "v1",
        plural: "destinationrules",
        singular: "destinationrule",
        kind: "DestinationRule",
        namespaced: true,
        short: &["dr"],
        subresources: &[],
    },
];

/// The index of a kind in [`KINDS`], by plural.
pub(crate) fn kind_index(plural: &str) -> usize {
    KINDS.iter().position(|k| k.plural == plural).unwrap_or(0)
}

pub(crate) fn find_kind(group: &str, version: &str, plural: &str) -> Option<usize> {
    KINDS
        .iter()
        .position(|k| k.group == group && k.version == version && k.plural == plural)
}

/// `/apis`: every named group.
pub(crate) fn group_list() -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !groups.contains(&k.group) {
            groups.push(k.group);
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let gv = format!("{g}/v1");
            json!({
                "name": g,
                "versions": [{"groupVersion": gv, "version": "v1"}],
                "preferredVersion": {"groupVersion": gv, "version": "v1"},
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for k in KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        resources.push(json!({
            "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
            "kind": k.kind, "verbs": VERBS, "shortNames": k.short,
        }));
        for sub in k.subresources {
            let (kind, group_version) = if *sub == "scale" {
                ("Scale", Some(("autoscaling", "v1")))
            } else {
                (k.kind, None)
            };
            let mut r = json!({
                "name": format!("{}/{sub}", k.plural), "singularName": "",
                "namespaced": k.namespaced, "kind": kind, "verbs": ["get", "patch", "update"],
            });
            if let Some((g, v)) = group_version {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources,
    }))
}

/// How a pod of one image behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodBehaviour {
    /// From creation until it reports Ready.
    pub ready_after: Duration,
    /// Never reports Ready (its container restarts: `CrashLoopBackOff`).
    pub never_ready: bool,
}

impl Default for PodBehaviour {
    fn default() -> Self {
        PodBehaviour {
            ready_after: Duration::from_millis(300),
            never_ready: false,
        }
    }
}

type Key = (usize, String, String);

/// Watch events kept for clients that watch from an older version.
const EVENTS_KEPT: usize = 4000;

/// The cluster's state.
pub(crate) struct Cluster {
    token: String,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    next_uid: u64,
    events: VecDeque<(u64, usize, Value)>,
    /// Per image (exact, or a prefix ending in `:`): how its pods behave.
    pub behaviours: BTreeMap<String, PodBehaviour>,
    /// When each pod was created (sandbox time, for readiness).
    pub pod_started: BTreeMap<(String, String), Instant>,
    pub(crate) started: Instant,
    /// Requests through the mesh's ingress: (namespace, service, the pod's
    /// `version` label, response code) → count.
    mesh_requests: BTreeMap<(String, String, String, u16), u64>,
}

impl Cluster {
    /// An empty cluster with the `default` and `kube-system` namespaces.
    pub(crate) fn new(token: String) -> Self {
        let mut c = Cluster {
            token,
            objects: BTreeMap::new(),
            revision: 1,
            next_uid: 1,
            events: VecDeque::new(),
            behaviours: BTreeMap::new(),
            pod_started: BTreeMap::new(),
            started: Instant::now(),
            mesh_requests: BTreeMap::new(),
        };
        for ns in ["default", "kube-system"] {
            let _ = c.insert_new(
                kind_index("namespaces"),
                "",
                json!({"metadata": {"name": ns}}),
            );
        }
        c
    }

    /// Counts one request through the mesh.
    pub(crate) fn count_mesh(&mut self, ns: &str, service: &str, version: &str, code: u16) {
        *self
            .mesh_requests
            .entry((ns.to_owned(), service.to_owned(), version.to_owned(), code))
            .or_insert(0) += 1;
    }

    /// `istio_requests_total` in Prometheus' text format.
    pub(crate) fn mesh_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP istio_requests_total Total requests.\n# TYPE istio_requests_total counter\n",
        );
        for ((ns, service, version, code), n) in &self.mesh_requests {
            out.push_str(&format!(
                "istio_requests_total{{reporter=\"destination\",source_workload=\"istio-ingressgateway\",destination_service=\"{service}.{ns}.svc.cluster.local\",destination_service_name=\"{service}\",destination_service_namespace=\"{ns}\",destination_version=\"{version}\",response_code=\"{code}\"}} {n}\n"
            ));
        }
        out
    }

    /// The bearer token every request must carry.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The latest change's number.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    fn bump(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn record(&mut self, kind: usize, event: &str, obj: &Value) {
        self.events
            .push_back((self.revision, kind, json!({"type": event, "object": obj})));
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    /// An object by kind, namespace and name.
    pub(crate) fn object(&self, kind: usize, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, ns.to_owned(), name.to_owned()))
    }

    /// Every object of a kind in a namespace (`""`: all), selected.
    pub(crate) fn select(&self, kind: usize, ns: &str, selector: &Selector) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, n, _), v)| {
                *k == kind && (ns.is_empty() || n == ns) && selector.matches(v)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn list(&mut self, kind: usize, ns: &str, selector: &Selector) -> Value {
        super::controller::reconcile(self);
        let k = &KINDS[kind];
        json!({
            "kind": format!("{}List", k.kind),
            "apiVersion": k.api_version(),
            "metadata": {"resourceVersion": self.revision.to_string()},
            "items": self.select(kind, ns, selector),
        })
    }

    /// The watch events after `from` (every selected object as `ADDED`
    /// when `None`), or the `410 Gone` status once they are not kept.
    pub(crate) fn events_since(
        &mut self,
        kind: usize,
        ns: &str,
        selector: &Selector,
        from: Option<u64>,
    ) -> Result<Vec<Value>, Value> {
        super::controller::reconcile(self);
        let Some(from) = from else {
            return Ok(self
                .select(kind, ns, selector)
                .into_iter()
                .map(|o| json!({"type": "ADDED", "object": o}))
                .collect());
        };
        if from < self.revision && self.events.front().is_some_and(|(rv, _, _)| *rv > from + 1) {
            return Err(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", self.revision),
                "reason": "Expired", "code": 410,
            }));
        }
        Ok(self
            .events
            .iter()
            .filter(|(rv, k, e)| {
                *rv > from
                    && *k == kind
                    && (ns.is_empty() || e["object"]["metadata"]["namespace"] == ns)
                    && selector.matches(&e["object"])
            })
            .map(|(_, _, e)| e.clone())
            .collect())
    }

    /// Stores a new object: fills in the metadata the server owns. The
    /// caller has checked it does not exist.
    pub(crate) fn insert_new(&mut self, kind: usize, ns: &str, mut obj: Value) -> Value {
        let k = &KINDS[kind];
        let rv = self.bump();
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        self.next_uid += 1;
        obj["apiVersion"] = json!(k.api_version());
        obj["kind"] = json!(k.kind);
        let meta = &mut obj["metadata"];
        if k.namespaced {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(respond::utc_now_rfc3339());
        if k.has_generation() {
            meta["generation"] = json!(1);
        }
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
        }
        if k.plural == "namespaces" {
            obj["status"] = json!({"phase": "Active"});
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.objects
            .insert((kind, ns.to_owned(), name), obj.clone());
        self.record(kind, "ADDED", &obj);
        obj
    }

    /// Stores a changed object under a new `resourceVersion`, bumping
    /// `generation` when its spec changed. Returns it as stored.
    pub(crate) fn store(&mut self, kind: usize, ns: &str, name: &str, mut obj: Value) -> Value {
        let key = (kind, ns.to_owned(), name.to_owned());
        let Some(old) = self.objects.get(&key) else {
            return obj;
        };
        if *old == obj {
            return obj;
        }
        let k = &KINDS[kind];
        let old_generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = old.get("spec") != obj.get("spec");
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if k.has_generation() {
            obj["metadata"]["generation"] = json!(old_generation + i64::from(spec_changed));
        }
        self.objects.insert(key, obj.clone());
        self.record(kind, "MODIFIED", &obj);
        obj
    }

    /// Removes an object, and (as the garbage collector would) every
    /// object it owns.
    pub(crate) fn remove(&mut self, kind: usize, ns: &str, name: &str) -> Option<Value> {
        let obj = self
            .objects
            .remove(&(kind, ns.to_owned(), name.to_owned()))?;
        self.bump();
        self.record(kind, "DELETED", &obj);
        if KINDS[kind].plural == "pods" {
            self.pod_started.remove(&(ns.to_owned(), name.to_owned()));
        }
        let uid = obj["metadata"]["uid"].clone();
        let owned: Vec<Key> = self
            .objects
            .iter()
            .filter(|((_, n, _), v)| {
                n == ns
                    && v["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (k, n, name) in owned {
            self.remove(k, &n, &name);
        }
        Some(obj)
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.object(kind_index("namespaces"), "", ns).is_some()
    }

    pub(crate) fn create(
        &mut self,
        kind: usize,
        ns: &str,
        mut body: Value,
        dry_run: bool,
    ) -> Outcome {
        let k = &KINDS[kind];
        if let Err(o) = check_type(k, &body) {
            return o;
        }
        if k.namespaced && !self.namespace_exists(ns) {
            return not_found(&KINDS[kind_index("namespaces")], ns);
        }
        if let Some(body_ns) = body["metadata"]["namespace"].as_str()
            && k.namespaced
            && body_ns != ns
        {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                ),
            );
        }
        if body["metadata"].is_null() {
            body["metadata"] = json!({});
        }
        let mut name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty()
            && let Some(prefix) = body["metadata"]["generateName"].as_str()
        {
            name = format!("{prefix}{}", crate::random_token(5).to_ascii_lowercase());
            body["metadata"]["name"] = json!(name);
        }
        if let Err(e) = valid_name(&name) {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{} \"{name}\" is invalid: metadata.name: {e}", k.kind),
            );
        }
        if self.object(kind, ns, &name).is_some() {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{}{} \"{name}\" already exists", k.plural, k.group_suffix()),
            );
        }
        if let Err(e) = validate(k, &body) {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{} \"{name}\" is invalid: {e}", k.kind),
            );
        }
        if k.has_status_subresource()
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        if dry_run {
            return respond::json(StatusCode::CREATED, &body).into();
        }
        let stored = self.insert_new(kind, ns, body);
        super::controller::reconcile(self);
        respond::json(StatusCode::CREATED, &stored).into()
    }

    pub(crate) fn get(&mut self, kind: usize, ns: &str, name: &str, sub: Option<&str>) -> Outcome {
        super::controller::reconcile(self);
        let Some(obj) = self.object(kind, ns, name).cloned() else {
            return not_found(&KINDS[kind], name);
        };
        match sub {
            Some("scale") => respond::json(StatusCode::OK, &scale_of(&obj)).into(),
            _ => respond::json(StatusCode::OK, &obj).into(),
        }
    }

    /// `PUT`: the body replaces the object (or its status, or its scale).
    pub(crate) fn replace(
        &mut self,
        kind: usize,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        body: Value,
        dry_run: bool,
    ) -> Outcome {
        let Some(current) = self.object(kind, ns, name).cloned() else {
            return not_found(&KINDS[kind], name);
        };
        self.update(kind, ns, name, sub, &current, body, dry_run)
    }

    /// `PATCH`: the patch applied to the object (or its status or scale).
    #[allow(clippy::too_many_arguments)] // the request's parts
    pub(crate) fn patch(
        &mut self,
        kind: usize,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        how: patch::Kind,
        p: &Value,
        dry_run: bool,
    ) -> Outcome {
        let Some(current) = self.object(kind, ns, name).cloned() else {
            return not_found(&KINDS[kind], name);
        };
        let base = if sub == Some("scale") {
            scale_of(&current)
        } else {
            current.clone()
        };
        let patched = match patch::apply(how, &base, p) {
            Ok(v) => v,
            Err(e) => {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e);
            }
        };
        self.update(kind, ns, name, sub, &current, patched, dry_run)
    }

    /// The common end of `PUT` and `PATCH`: the optimistic-concurrency
    /// check, the fields the server owns, the store.
    #[allow(clippy::too_many_arguments)] // the request's parts
    fn update(
        &mut self,
        kind: usize,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        current: &Value,
        mut body: Value,
        dry_run: bool,
    ) -> Outcome {
        let k = &KINDS[kind];
        if !body.is_object() {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "the patched or replaced object is not a JSON object",
            );
        }
        let current_rv = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != current_rv
        {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {}{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    k.plural,
                    k.group_suffix()
                ),
            );
        }
        if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    body["metadata"]["name"].as_str().unwrap_or_default()
                ),
            );
        }
        let new = match sub {
            Some("scale") => {
                let Some(replicas) = body["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        "Scale is invalid: spec.replicas: must be a non-negative integer",
                    );
                };
                let mut n = current.clone();
                n["spec"]["replicas"] = json!(replicas);
                n
            }
            Some("status") => {
                let mut n = current.clone();
                n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
                n
            }
            _ => {
                if let Err(o) = check_type(k, &body) {
                    return o;
                }
                if let Err(e) = validate(k, &body) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("{} \"{name}\" is invalid: {e}", k.kind),
                    );
                }
                // The server owns these; a client's copy is ignored.
                for field in ["uid", "creationTimestamp", "generation", "namespace"] {
                    let v = current["metadata"].get(field).cloned();
                    match v {
                        Some(v) => body["metadata"][field] = v,
                        None => {
                            if let Some(m) = body["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
                body["apiVersion"] = current["apiVersion"].clone();
                body["kind"] = current["kind"].clone();
                body["metadata"]["resourceVersion"] = json!(current_rv);
                if k.has_status_subresource() {
                    match current.get("status") {
                        Some(s) => body["status"] = s.clone(),
                        None => {
                            if let Some(m) = body.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                body
            }
        };
        if dry_run {
            return respond::json(StatusCode::OK, &new).into();
        }
        let stored = self.store(kind, ns, name, new);
        super::controller::reconcile(self);
        let stored = self.object(kind, ns, name).cloned().unwrap_or(stored);
        let answer = if sub == Some("scale") {
            scale_of(&stored)
        } else {
            stored
        };
        respond::json(StatusCode::OK, &answer).into()
    }

    pub(crate) fn delete(&mut self, kind: usize, ns: &str, name: &str, dry_run: bool) -> Outcome {
        let Some(obj) = self.object(kind, ns, name).cloned() else {
            return not_found(&KINDS[kind], name);
        };
        if !dry_run {
            self.remove(kind, ns, name);
            super::controller::reconcile(self);
        }
        respond::json(StatusCode::OK, &obj).into()
    }
}

/// An autoscaling/v1 `Scale` for a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// The body's `apiVersion` and `kind`, where given, are the URL's, and its
/// metadata has the shape the server writes into (an object; labels and
/// annotations maps of strings) — a malformed object is a 400, never a
/// panic in the controller.
fn check_type(k: &Kind, body: &Value) -> Result<(), Outcome> {
    let bad = |what: &str| {
        Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("the object's {what}"),
        ))
    };
    let meta = &body["metadata"];
    if !(meta.is_object() || meta.is_null()) {
        return bad("metadata must be an object");
    }
    for field in ["labels", "annotations"] {
        let m = &meta[field];
        if !(m.is_null()
            || m.as_object()
                .is_some_and(|m| m.values().all(Value::is_string)))
        {
            return bad(&format!("metadata.{field} must map strings to strings"));
        }
    }
    for field in ["spec", "status"] {
        let v = &body[field];
        if !(v.is_null() || v.is_object()) {
            return bad(&format!("{field} must be an object"));
        }
    }
    if k.plural == "deployments" || k.plural == "replicasets" {
        let t = &body["spec"]["template"];
        if !(t.is_null()
            || (t.is_object() && (t["metadata"].is_null() || t["metadata"].is_object())))
        {
            return bad("spec.template must be an object with object metadata");
        }
    }
    let api_version = body["apiVersion"].as_str();
    let kind = body["kind"].as_str();
    if api_version.is_some_and(|a| a != k.api_version()) || kind.is_some_and(|x| x != k.kind) {
        return Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the object is {} {}, but the URL is for {} {}",
                api_version.unwrap_or("?"),
                kind.unwrap_or("?"),
                k.api_version(),
                k.kind
            ),
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain, as object names are.
fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("Required value: name or generateName is required");
    }
    let ok = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(
            "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    }
}

/// The checks the API server makes that a rollout depends on.
fn validate(k: &Kind, body: &Value) -> Result<(), String> {
    if k.plural != "deployments" && k.plural != "replicasets" {
        return Ok(());
    }
    let spec = &body["spec"];
    let Some(selector) = spec["selector"]["matchLabels"]
        .as_object()
        .filter(|m| !m.is_empty())
    else {
        return Err("spec.selector: Required value".into());
    };
    let labels = &spec["template"]["metadata"]["labels"];
    for (key, value) in selector {
        if labels.get(key) != Some(value) {
            return Err(format!(
                "spec.template.metadata.labels: Invalid value: {labels}: `selector` does not match template `labels` ({key})"
            ));
        }
    }
    if spec["template"]["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err("spec.template.spec.containers: Required value".into());
    }
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    Ok(())
}
