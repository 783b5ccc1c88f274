//! Microsoft.App (Container Apps) under ARM: get / JSON-merge-PATCH of a
//! container app (a new revision per template change, suffix rules,
//! traffic validation), revisions list/get/activate/deactivate/restart,
//! replicas, and the subscription-scoped LRO status and result URLs
//! (reference §5).

use std::time::Instant;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{invalid_resource_type, method_not_emulated};
use rand::Rng;

use crate::containerapps::{
    AppOperation, TrafficWeight, check_suffix, merge_patch, normalise_template,
};
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::world::{OpStatus, World};

/// api-versions of `Microsoft.App/containerApps` the sandbox accepts: every
/// version of `ContainerApps.json` in azure-rest-api-specs
/// (`specification/app/resource-manager/Microsoft.App/ContainerApps`),
/// stable and preview. The sandbox answers every one with the same shapes.
pub const APP_API_VERSIONS: [&str; 18] = [
    "2022-01-01-preview",
    "2022-03-01",
    "2022-06-01-preview",
    "2022-10-01",
    "2022-11-01-preview",
    "2023-04-01-preview",
    "2023-05-01",
    "2023-05-02-preview",
    "2023-08-01-preview",
    "2023-11-02-preview",
    "2024-02-02-preview",
    "2024-03-01",
    "2024-08-02-preview",
    "2024-10-02-preview",
    "2025-01-01",
    "2025-02-02-preview",
    "2025-07-01",
    "2025-10-02-preview",
];

fn bad(code: &str, message: impl Into<String>) -> Resp {
    respond::arm_error(StatusCode::BAD_REQUEST, code, message)
}

fn template_error(field: &str, details: &str) -> Resp {
    bad(
        "InvalidParameterValueInContainerTemplate",
        format!(
            "The following field(s) are either invalid or missing. Field '{field}' is invalid with details: '{details}';."
        ),
    )
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn not_found(world: &World, name: &str) -> Resp {
    respond::arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.App/containerApps/{name}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            world.ids.resource_group
        ),
    )
}

pub(crate) fn handle(shared: &Shared, req: &Req, version: &str, rest: &[String]) -> Outcome {
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let now = Instant::now();
    let m = &req.method;
    let world = shared.world();
    let (sub, rg, loc) = (
        world.ids.subscription_id.clone(),
        world.ids.resource_group.clone(),
        world.ids.location_display.clone(),
    );
    if segs.is_empty() {
        if *m != Method::GET {
            return method_not_emulated(req).into();
        }
        let value: Vec<Value> = world
            .container_apps
            .values()
            .map(|a| with_tags(&world, a.json(&sub, &rg, &loc, now)))
            .collect();
        return super::page(req, shared.config.list_page_size, value).into();
    }
    let name = segs[0].to_ascii_lowercase();
    let Some(app) = world.container_apps.get(&name) else {
        return not_found(&world, segs[0]).into();
    };
    match (&segs[1..], m) {
        ([], &Method::GET) => respond::json(
            StatusCode::OK,
            &with_tags(&world, app.json(&sub, &rg, &loc, now)),
        )
        .into(),
        ([], &Method::PATCH) => {
            drop(world);
            patch(shared, req, version, &name).into()
        }
        ([], _) => method_not_emulated(req).into(),
        ([r], &Method::GET) if eq(r, "revisions") => {
            let value: Vec<Value> = app
                .revision_order
                .iter()
                .filter_map(|n| app.revisions.get(n))
                .map(|rev| app.revision_json(rev, &sub, &rg, now, healthy(&world, rev, now)))
                .collect();
            super::page(req, shared.config.list_page_size, value).into()
        }
        ([r, rev], &Method::GET) if eq(r, "revisions") => match app.revisions.get(*rev) {
            Some(revision) => respond::json(
                StatusCode::OK,
                &app.revision_json(revision, &sub, &rg, now, healthy(&world, revision, now)),
            )
            .into(),
            None => respond::arm_error(
                StatusCode::NOT_FOUND,
                "ContainerAppRevisionNotFound",
                format!(
                    "Revision '{rev}' of container app '{}' was not found.",
                    app.name
                ),
            )
            .into(),
        },
        ([r, rev, action], &Method::POST)
            if eq(r, "revisions")
                && ["activate", "deactivate", "restart"]
                    .iter()
                    .any(|a| eq(a, action)) =>
        {
            if !app.revisions.contains_key(*rev) {
                return respond::arm_error(
                    StatusCode::NOT_FOUND,
                    "ContainerAppRevisionNotFound",
                    format!(
                        "Revision '{rev}' of container app '{}' was not found.",
                        app.name
                    ),
                )
                .into();
            }
            let action = action.to_ascii_lowercase();
            let rev = (*rev).to_owned();
            drop(world);
            let mut world = shared.world();
            if let Some(r) = world
                .container_apps
                .get_mut(&name)
                .and_then(|a| a.revisions.get_mut(&rev))
            {
                // Service-side validation is weak (reference §5.3): even the
                // only active revision, or one with traffic, can be deactivated.
                match action.as_str() {
                    "activate" => r.active = true,
                    "deactivate" => r.active = false,
                    _ => r.process.restart(now),
                }
            }
            respond::empty(StatusCode::OK).into()
        }
        ([r, rev, rp], &Method::GET) if eq(r, "revisions") && eq(rp, "replicas") => {
            match app.revisions.get(*rev) {
                Some(revision) => {
                    let value = replicas_json(&world, app, revision, &sub, &rg, now);
                    super::page(req, shared.config.list_page_size, value).into()
                }
                None => respond::arm_error(
                    StatusCode::NOT_FOUND,
                    "ContainerAppRevisionNotFound",
                    format!(
                        "Revision '{rev}' of container app '{}' was not found.",
                        app.name
                    ),
                )
                .into(),
            }
        }
        ([l], &Method::POST) if eq(l, "listSecrets") => {
            respond::json(StatusCode::OK, &json!({"value": []})).into()
        }
        ([first, ..], _) => {
            invalid_resource_type(&format!("containerApps/{first}"), "Microsoft.App", version)
                .into()
        }
    }
}

/// `GET …/revisions/{rev}/replicas` (`ContainerAppsRevisionReplicas_ListReplicas`):
/// one replica while the revision is active and provisioned, none otherwise.
/// A crash loop shows as a container waiting in `CrashLoopBackOff`, a failing
/// readiness probe as a running container that is not ready.
fn replicas_json(
    world: &World,
    app: &crate::containerapps::ContainerApp,
    rev: &crate::containerapps::Revision,
    sub: &str,
    rg: &str,
    now: Instant,
) -> Vec<Value> {
    if !rev.active || !rev.ready(now) {
        return Vec::new();
    }
    let b = world.effective_behaviour(&rev.build, rev.process.started, now);
    let ready = !b.crash_loop && b.health_status.is_none_or(|s| (200..300).contains(&s));
    // Azure: `{revision}-{pod template hash}-{random}`.
    let replica = format!("{}-7d9f8c6b5-x2k4q", rev.name);
    let containers: Vec<Value> = rev
        .template
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let (state, details) = if b.crash_loop {
                ("Waiting", "CrashLoopBackOff: back-off restarting failed container")
            } else {
                ("Running", "")
            };
            json!({
                "name": name,
                "containerId": format!("containerd://{}-{name}", rev.name),
                "ready": ready,
                "started": !b.crash_loop,
                "restartCount": if b.crash_loop { rev.process.restarts.max(3) } else { rev.process.restarts },
                "runningState": state,
                "runningStateDetails": details,
                "logStreamEndpoint": format!("https://westeurope.azurecontainerapps.dev/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{}/revisions/{}/replicas/{replica}/logstream", app.name, rev.name),
                "execEndpoint": format!("wss://westeurope.azurecontainerapps.dev/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{}/revisions/{}/replicas/{replica}/exec", app.name, rev.name),
            })
        })
        .collect();
    vec![json!({
        "id": format!("{}/revisions/{}/replicas/{replica}", app.resource_id(sub, rg), rev.name),
        "name": replica,
        "type": "Microsoft.App/containerApps/revisions/replicas",
        "properties": {
            "createdTime": rev.created.to_rfc3339(),
            "runningState": if b.crash_loop { "NotRunning" } else { "Running" },
            "runningStateDetails": if b.crash_loop { "Container crashing" } else { "" },
            "containers": containers,
            "initContainers": [],
        }
    })]
}

/// The app's envelope with its tags from the Tags API (`arm::tags`), as
/// Azure shows them on the resource.
fn with_tags(world: &World, mut v: Value) -> Value {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let tags = world.tags.get(&id).cloned().unwrap_or_default();
    if let Value::Object(o) = &mut v {
        o.insert("tags".into(), json!(tags));
    }
    v
}

fn healthy(world: &World, rev: &crate::containerapps::Revision, now: Instant) -> bool {
    let b = world.effective_behaviour(&rev.build, rev.process.started, now);
    !b.crash_loop && b.health_status.is_none_or(|s| (200..300).contains(&s))
}

const TOP_KEYS: [&str; 5] = ["location", "tags", "identity", "properties", "kind"];
const PROPERTY_KEYS: [&str; 5] = [
    "configuration",
    "template",
    "environmentId",
    "managedEnvironmentId",
    "workloadProfileName",
];
/// Read-only properties a GET returns; a client echoing them back is fine.
const READ_ONLY: [&str; 9] = [
    "provisioningState",
    "runningStatus",
    "latestRevisionName",
    "latestReadyRevisionName",
    "latestRevisionFqdn",
    "customDomainVerificationId",
    "outboundIpAddresses",
    "eventStreamEndpoint",
    "deploymentErrors",
];
const CONFIG_KEYS: [&str; 10] = [
    "secrets",
    "activeRevisionsMode",
    "ingress",
    "registries",
    "dapr",
    "maxInactiveRevisions",
    "service",
    "identitySettings",
    "runtime",
    "targetLabel",
];
const TRAFFIC_KEYS: [&str; 4] = ["revisionName", "weight", "latestRevision", "label"];

fn parse_traffic(v: &Value) -> Result<Vec<TrafficWeight>, Resp> {
    let invalid = |m: String| bad("ContainerAppInvalidIngressTraffic", m);
    let Value::Array(items) = v else {
        return Err(invalid(
            "configuration.ingress.traffic must be an array.".into(),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(invalid(format!(
                "configuration.ingress.traffic[{i}] must be an object."
            )));
        };
        if let Some(k) = o.keys().find(|k| !TRAFFIC_KEYS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "configuration.ingress.traffic[{i}].{k} is not a valid field."
            )));
        }
        let weight = match o.get("weight") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(w) if (0..=100).contains(&w) => w,
                _ => {
                    return Err(invalid(format!(
                        "configuration.ingress.traffic[{i}].weight must be an integer between 0 and 100."
                    )));
                }
            },
            Some(_) => {
                return Err(invalid(format!(
                    "configuration.ingress.traffic[{i}].weight must be an integer."
                )));
            }
        };
        let latest = matches!(o.get("latestRevision"), Some(Value::Bool(true)));
        let name = o
            .get("revisionName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if latest == name.is_some() {
            return Err(invalid(format!(
                "configuration.ingress.traffic[{i}] must name exactly one of revisionName or latestRevision=true."
            )));
        }
        let label = o.get("label").and_then(Value::as_str).map(str::to_owned);
        out.push(TrafficWeight {
            revision_name: name,
            weight,
            latest_revision: latest,
            label,
        });
    }
    Ok(out)
}

fn patch(shared: &Shared, req: &Req, version: &str, name: &str) -> Resp {
    let body = match req.json_body() {
        Ok(Some(Value::Object(b))) => b,
        Ok(_) => {
            return bad(
                "InvalidRequestContent",
                "The request content must be a JSON object.",
            );
        }
        Err(e) => {
            return bad(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {e}"),
            );
        }
    };
    if let Some(k) = body.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return bad(
            "InvalidRequestContent",
            format!("Could not find member '{k}' on object of type 'ContainerApp'."),
        );
    }
    let mut props = match body.get("properties") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return bad("InvalidRequestContent", "properties must be an object."),
    };
    if let Some(k) = props
        .keys()
        .find(|k| !PROPERTY_KEYS.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()))
    {
        return bad(
            "InvalidRequestContent",
            format!("Could not find member '{k}' on object of type 'ContainerAppProperties'."),
        );
    }
    props.retain(|k, _| k == "configuration" || k == "template");
    if let Some(Value::Object(c)) = props.get("configuration")
        && let Some(k) = c.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str()))
    {
        return bad(
            "InvalidRequestContent",
            format!("Could not find member '{k}' on object of type 'Configuration'."),
        );
    }

    let mut world = shared.world();
    let world = &mut *world;
    let now = Instant::now();
    let provision = world.timing.build_duration;
    let (sub, rg, loc) = (
        world.ids.subscription_id.clone(),
        world.ids.resource_group.clone(),
        world.ids.location.clone(),
    );
    // Drawn before borrowing the app: a suffix for a template change that
    // names none (Azure generates one).
    let generated_suffix = format!("{:07x}", world.rng.random::<u32>() & 0x0fff_ffff);
    let Some(app) = world.container_apps.get(name) else {
        return not_found(world, name);
    };
    if let Some(op) = &app.busy {
        return respond::arm_error(
            StatusCode::CONFLICT,
            "ContainerAppOperationInProgress",
            format!(
                "Cannot modify container app '{name}' because there is an ongoing operation '{op}'. Please retry once it completes."
            ),
        );
    }
    // The current state as a document, merge-patched (arrays replace whole).
    let mut configuration = Value::Object(app.configuration.clone());
    if let Some(Value::Object(ingress)) = configuration.get_mut("ingress") {
        ingress.insert("traffic".into(), json!(app.traffic));
    }
    let mut doc = json!({"configuration": configuration, "template": app.template});
    merge_patch(&mut doc, &Value::Object(props));
    if let Some(Value::Object(ingress)) = doc.pointer_mut("/configuration/ingress") {
        ingress.remove("fqdn");
    }
    let traffic = match doc.pointer("/configuration/ingress/traffic") {
        Some(v) => match parse_traffic(v) {
            Ok(t) => t,
            Err(r) => return r,
        },
        None => Vec::new(),
    };
    let mode = match doc
        .pointer("/configuration/activeRevisionsMode")
        .and_then(Value::as_str)
    {
        Some(m) if eq(m, "single") => "Single",
        Some(m) if eq(m, "multiple") => "Multiple",
        Some(m) => {
            return bad(
                "InvalidParameterValueInContainerAppConfiguration",
                format!("activeRevisionsMode '{m}' is invalid; use Single or Multiple."),
            );
        }
        None => "Single",
    };
    let template = doc.get("template").cloned().unwrap_or(Value::Null);
    let template_changed = normalise_template(&template) != normalise_template(&app.template);
    let mut new_suffix = None;
    if template_changed {
        let containers = template.get("containers").and_then(Value::as_array);
        let containers_ok = containers.is_some_and(|cs| {
            !cs.is_empty()
                && cs.iter().all(|c| {
                    c.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty())
                        && c.get("image")
                            .and_then(Value::as_str)
                            .is_some_and(|n| !n.is_empty())
                })
        });
        if !containers_ok {
            return template_error(
                "template.containers",
                "every container needs a name and an image",
            );
        }
        let suffix = match template.get("revisionSuffix").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_owned(),
            // Suffixes start with a letter.
            _ => format!("r{generated_suffix}"),
        };
        if let Err(e) = check_suffix(&app.name, &suffix) {
            return template_error("template.revisionsuffix", &e);
        }
        if app.revisions.values().any(|r| r.suffix == suffix) {
            return template_error(
                "template.revisionsuffix",
                &format!(
                    "Invalid value: \"{suffix}\": revision with suffix {suffix} already exists"
                ),
            );
        }
        new_suffix = Some(suffix);
    }
    let new_revision = new_suffix.as_ref().map(|s| format!("{}--{s}", app.name));
    for t in &traffic {
        if let Some(n) = &t.revision_name
            && !app.revisions.contains_key(n)
            && new_revision.as_deref() != Some(n.as_str())
        {
            return bad(
                "ContainerAppInvalidIngressTraffic",
                format!(
                    "Revision '{n}' does not exist in container app '{}'.",
                    app.name
                ),
            );
        }
    }
    let total: i64 = traffic.iter().map(|t| t.weight).sum();
    if !traffic.is_empty() && total != 100 {
        return bad(
            "ContainerAppInvalidIngressTraffic",
            format!("The sum of traffic weights must be 100, got {total}."),
        );
    }
    if mode == "Single" && traffic.len() > 1 {
        return bad(
            "ContainerAppInvalidIngressTraffic",
            "Traffic can only be split across revisions when activeRevisionsMode is Multiple.",
        );
    }

    let Some(app) = world.container_apps.get_mut(name) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let mut configuration = match doc.get("configuration") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(ingress)) = configuration.get_mut("ingress") {
        ingress.remove("traffic");
    }
    configuration.insert("activeRevisionsMode".into(), json!(mode));
    app.configuration = configuration;
    app.traffic = traffic;
    let id = uuid::Uuid::new_v4().to_string();
    let completes_at = if let Some(suffix) = &new_suffix {
        let mut template = template;
        if let Value::Object(t) = &mut template {
            t.insert("revisionSuffix".into(), json!(suffix));
        }
        app.template = template.clone();
        app.add_revision(suffix, template, now, now + provision);
        app.busy = Some(id.clone());
        now + provision
    } else {
        now
    };
    let body = app.json(&sub, &rg, &world.ids.location_display, now);
    let body = with_tags(world, body);
    world.prune_operations();
    world.app_operations.insert(
        id.clone(),
        AppOperation {
            id: id.clone(),
            app: name.to_owned(),
            started_utc: chrono::Utc::now(),
            completes_at,
            status: OpStatus::Running,
        },
    );
    let base = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.App/locations/{loc}",
        shared.arm_base
    );
    let mut r = respond::json(StatusCode::ACCEPTED, &body);
    respond::set_header(
        &mut r,
        "azure-asyncoperation",
        &format!("{base}/containerappOperationStatuses/{id}?api-version={version}"),
    );
    respond::set_header(
        &mut r,
        "location",
        &format!("{base}/containerappOperationResults/{id}?api-version={version}"),
    );
    respond::set_header(
        &mut r,
        "retry-after",
        &world.timing.retry_after_secs.to_string(),
    );
    r
}

/// `GET /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/containerappOperation{Statuses|Results}/{id}`.
pub(crate) fn operation(shared: &Shared, version: &str, kind: &str, id: &str) -> Resp {
    let world = shared.world();
    let Some(op) = world.app_operations.get(id) else {
        return respond::arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        );
    };
    let running = matches!(op.status, OpStatus::Running);
    if eq(kind, "containerappOperationStatuses") {
        let status = match &op.status {
            OpStatus::Running => "InProgress",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed { .. } => "Failed",
        };
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.App/locations/{}/containerappOperationStatuses/{id}",
            world.ids.subscription_id, world.ids.location
        );
        let mut body = json!({"id": path, "name": id, "status": status, "startTime": op.started_utc.to_rfc3339()});
        if !running && let Value::Object(o) = &mut body {
            o.insert("endTime".into(), json!(respond::utc_now_rfc3339()));
        }
        let mut r = respond::json(StatusCode::OK, &body);
        if running {
            respond::set_header(
                &mut r,
                "retry-after",
                &world.timing.retry_after_secs.to_string(),
            );
        }
        return r;
    }
    if running {
        let mut r = respond::empty(StatusCode::ACCEPTED);
        respond::set_header(
            &mut r,
            "retry-after",
            &world.timing.retry_after_secs.to_string(),
        );
        let loc = format!(
            "{}/subscriptions/{}/providers/Microsoft.App/locations/{}/containerappOperationResults/{id}?api-version={version}",
            shared.arm_base, world.ids.subscription_id, world.ids.location
        );
        respond::set_header(&mut r, "location", &loc);
        return r;
    }
    match world.container_apps.get(&op.app) {
        Some(app) => respond::json(
            StatusCode::OK,
            &with_tags(
                &world,
                app.json(
                    &world.ids.subscription_id,
                    &world.ids.resource_group,
                    &world.ids.location_display,
                    Instant::now(),
                ),
            ),
        ),
        None => respond::empty(StatusCode::NO_CONTENT),
    }
}
