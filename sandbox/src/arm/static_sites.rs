//! Microsoft.Web/staticSites (Azure Static Web Apps) under ARM: get and
//! list sites, list / get / delete environments (`builds`), zip deployment
//! to production (`zipdeploy`) or to a named preview environment
//! (`builds/{env}/zipdeploy`), `listSecrets`, and the subscription-scoped
//! `locations/{location}/operationResults/{id}` the two LROs are polled at.
//!
//! Zip deployment takes URLs, not bytes: the app zip is read from the
//! sandbox's blob storage ([`crate::blob`]) when the request arrives, and
//! its `expedite-demo.json` decides what the environment serves once the
//! operation completes (as a Kudu package does for a slot). The operation
//! answers `Failed` with `DeploymentFailed` when the zip cannot be fetched or
//! is not a demo package; nothing changes then.

use std::time::Instant;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{invalid_resource_type, method_not_emulated};
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::staticsites::{
    BuildStatus, Environment, MAX_PREVIEW_ENVIRONMENTS, PRODUCTION_ENVIRONMENT, StaticOpKind,
    StaticSite, StaticSiteOperation, operation_duration, valid_environment_name,
};
use crate::world::{OpStatus, World};

/// api-versions of `Microsoft.Web/staticSites` the sandbox accepts: those
/// of Microsoft.Web whose azure-rest-api-specs folder has `StaticSites.json`
/// (the type first appears in 2019-08-01, the fifth of sites' versions).
pub const STATIC_SITES_API_VERSIONS: &[&str] = super::WEB_API_VERSIONS.as_slice().split_at(4).1;

/// Fields of `StaticSiteZipDeployment` (the envelope's `properties`).
const ZIP_DEPLOY_FIELDS: [&str; 5] = [
    "appZipUrl",
    "apiZipUrl",
    "deploymentTitle",
    "provider",
    "functionLanguage",
];

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn bad(message: impl Into<String>) -> Resp {
    respond::arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn site_not_found(world: &World, name: &str) -> Resp {
    respond::arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.Web/staticSites/{name}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            world.ids.resource_group
        ),
    )
}

fn build_not_found(site: &str, env: &str) -> Resp {
    // (guessed) code and wording.
    respond::arm_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Cannot find the build '{env}' of static site '{site}'."),
    )
}

fn busy_conflict(site: &str, env: &Environment) -> Option<Resp> {
    let op = env.busy.as_ref()?;
    // (guessed) one operation per environment at a time.
    Some(respond::arm_error(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Another operation ({op}) is in progress on environment '{}' of static site '{site}'. Please wait for it to complete and try again.",
            env.name
        ),
    ))
}

fn site_id(world: &World, site: &StaticSite) -> String {
    site.resource_id(&world.ids.subscription_id, &world.ids.resource_group)
}

fn location_display(world: &World, site: &StaticSite) -> String {
    if site.location == world.ids.location {
        world.ids.location_display.clone()
    } else {
        site.location.clone()
    }
}

/// `StaticSiteARMResource`.
pub(crate) fn site_json(world: &World, site: &StaticSite) -> Value {
    let id = site_id(world, site);
    json!({
        "id": id,
        "name": site.name,
        "type": "Microsoft.Web/staticSites",
        "location": location_display(world, site),
        "tags": world.tags.get(&id.to_ascii_lowercase()).cloned().unwrap_or_default(),
        "sku": {"name": "Standard", "tier": "Standard"},
        "properties": {
            "defaultHostname": site.default_hostname,
            "repositoryUrl": null,
            "branch": null,
            "customDomains": [],
            "privateEndpointConnections": [],
            "stagingEnvironmentPolicy": "Enabled",
            "allowConfigFileUpdates": true,
            "contentDistributionEndpoint": "",
            "keyVaultReferenceIdentity": "SystemAssigned",
            "userProvidedFunctionApps": null,
            "linkedBackends": [],
            "provider": site.provider,
            "enterpriseGradeCdnStatus": "Disabled",
            "publicNetworkAccess": null,
            "databaseConnections": []
        }
    })
}

fn utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `StaticSiteBuildARMResource`.
fn build_json(world: &World, site: &StaticSite, env: &Environment) -> Value {
    json!({
        "id": format!("{}/builds/{}", site_id(world, site), env.name),
        "name": env.name,
        "type": "Microsoft.Web/staticSites/builds",
        "properties": {
            "buildId": env.name,
            "sourceBranch": env.source_branch,
            "pullRequestTitle": env.pull_request_title,
            "hostname": env.hostname,
            "createdTimeUtc": utc(env.created_utc),
            "lastUpdatedOn": utc(env.last_updated_utc),
            "status": env.status,
            "userProvidedFunctionApps": null,
            "linkedBackends": [],
            "databaseConnections": []
        }
    })
}

pub(crate) fn handle(shared: &Shared, req: &Req, version: &str, rest: &[String]) -> Outcome {
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let m = &req.method;
    let Some((name, below)) = segs.split_first() else {
        if *m != Method::GET {
            return method_not_emulated(req).into();
        }
        let world = shared.world();
        let value: Vec<Value> = world
            .static_sites
            .values()
            .map(|s| site_json(&world, s))
            .collect();
        return respond::json(StatusCode::OK, &json!({"value": value, "nextLink": null})).into();
    };
    let key = name.to_ascii_lowercase();
    {
        let world = shared.world();
        if !world.static_sites.contains_key(&key) {
            return site_not_found(&world, name).into();
        }
    }
    let resp = match below {
        [] if *m == Method::GET => get_site(shared, &key),
        [b] if eq(b, "builds") && *m == Method::GET => list_builds(shared, &key),
        [b, env] if eq(b, "builds") && *m == Method::GET => get_build(shared, &key, env),
        [b, env] if eq(b, "builds") && *m == Method::DELETE => {
            delete_build(shared, version, &key, env)
        }
        [b, env, z] if eq(b, "builds") && eq(z, "zipdeploy") && *m == Method::POST => {
            zip_deploy(shared, req, version, &key, env)
        }
        [z] if eq(z, "zipdeploy") && *m == Method::POST => {
            zip_deploy(shared, req, version, &key, PRODUCTION_ENVIRONMENT)
        }
        [l] if eq(l, "listSecrets") && *m == Method::POST => list_secrets(shared, &key),
        [] => method_not_emulated(req),
        [b, ..] if eq(b, "builds") && below.len() <= 2 => method_not_emulated(req),
        [z] if eq(z, "zipdeploy") || eq(z, "listSecrets") => method_not_emulated(req),
        [b, _, z] if eq(b, "builds") && eq(z, "zipdeploy") => method_not_emulated(req),
        [b, _, sub, ..] if eq(b, "builds") => invalid_resource_type(
            &format!("staticSites/builds/{sub}"),
            "Microsoft.Web",
            version,
        ),
        [first, ..] => {
            invalid_resource_type(&format!("staticSites/{first}"), "Microsoft.Web", version)
        }
    };
    resp.into()
}

fn get_site(shared: &Shared, key: &str) -> Resp {
    let world = shared.world();
    match world.static_sites.get(key) {
        Some(site) => respond::json(StatusCode::OK, &site_json(&world, site)),
        None => site_not_found(&world, key),
    }
}

fn list_builds(shared: &Shared, key: &str) -> Resp {
    let world = shared.world();
    let Some(site) = world.static_sites.get(key) else {
        return site_not_found(&world, key);
    };
    let value: Vec<Value> = site
        .environments
        .values()
        .map(|e| build_json(&world, site, e))
        .collect();
    respond::json(StatusCode::OK, &json!({"value": value, "nextLink": null}))
}

fn get_build(shared: &Shared, key: &str, env: &str) -> Resp {
    let world = shared.world();
    let Some(site) = world.static_sites.get(key) else {
        return site_not_found(&world, key);
    };
    match site.environments.get(&env.to_ascii_lowercase()) {
        Some(e) => respond::json(StatusCode::OK, &build_json(&world, site, e)),
        None => build_not_found(&site.name, env),
    }
}

fn list_secrets(shared: &Shared, key: &str) -> Resp {
    let world = shared.world();
    let Some(site) = world.static_sites.get(key) else {
        return site_not_found(&world, key);
    };
    respond::json(
        StatusCode::OK,
        &json!({
            "id": format!("{}/secrets", site_id(&world, site)),
            "name": "secrets",
            "type": "Microsoft.Web/staticSites/secrets",
            "properties": {
                "apiKey": site.api_key,
                "dnsOwnershipKey": site.dns_ownership_key
            }
        }),
    )
}

/// The status URL of an operation (both `Azure-AsyncOperation` and
/// `Location` point at it, as in the spec's examples).
fn operation_url(
    shared: &Shared,
    world: &World,
    location: &str,
    id: &str,
    version: &str,
) -> String {
    format!(
        "{}/subscriptions/{}/providers/Microsoft.Web/locations/{location}/operationResults/{id}?api-version={version}",
        shared.arm_base, world.ids.subscription_id
    )
}

fn accepted(shared: &Shared, world: &World, location: &str, id: &str, version: &str) -> Resp {
    let url = operation_url(shared, world, location, id, version);
    let mut r = respond::empty(StatusCode::ACCEPTED);
    respond::set_header(&mut r, "azure-asyncoperation", &url);
    respond::set_header(&mut r, "location", &url);
    respond::set_header(
        &mut r,
        "retry-after",
        &world.timing.retry_after_secs.to_string(),
    );
    r
}

/// The envelope `{"kind"?, "properties": {appZipUrl, …}}`, checked.
struct ZipDeployment {
    app_zip_url: String,
    api_zip_url: Option<String>,
    title: Option<String>,
    provider: Option<String>,
}

/// A URL without its query (a SAS token must not end up in messages).
fn shown(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

fn parse_zip_deployment(req: &Req) -> Result<ZipDeployment, Resp> {
    let body = match req.json_body() {
        Ok(Some(Value::Object(b))) => b,
        Ok(None) => {
            return Err(bad(
                "The request body is required: a StaticSiteZipDeploymentARMResource {\"properties\":{\"appZipUrl\":\"https://…\"}}.",
            ));
        }
        Ok(Some(_)) => {
            return Err(bad(
                "The parameter staticSiteZipDeploymentEnvelope has an invalid value.",
            ));
        }
        Err(e) => {
            return Err(bad(format!(
                "The request content was invalid and could not be deserialized: {e}"
            )));
        }
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["kind", "properties"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "The parameter {unknown} is not a member of StaticSiteZipDeploymentARMResource."
        )));
    }
    let empty = Map::new();
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(bad("The parameter properties has an invalid value.")),
    };
    if let Some(unknown) = props
        .keys()
        .find(|k| !ZIP_DEPLOY_FIELDS.contains(&k.as_str()))
    {
        return Err(bad(format!(
            "The parameter properties.{unknown} is not a member of StaticSiteZipDeployment."
        )));
    }
    let text = |name: &str| -> Result<Option<String>, Resp> {
        match props.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(bad(format!(
                "The parameter properties.{name} has an invalid value."
            ))),
        }
    };
    let https_url = |name: &str, v: Option<String>| -> Result<Option<String>, Resp> {
        let Some(v) = v else { return Ok(None) };
        match url::Url::parse(&v) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(Some(v))
            }
            _ => Err(bad(format!(
                "The parameter properties.{name} has an invalid value: '{}' is not an absolute https URL.",
                shown(&v)
            ))),
        }
    };
    let Some(app_zip_url) = https_url("appZipUrl", text("appZipUrl")?)? else {
        return Err(bad(
            "The parameter properties.appZipUrl is required: the URL of the zipped app content.",
        ));
    };
    Ok(ZipDeployment {
        app_zip_url,
        api_zip_url: https_url("apiZipUrl", text("apiZipUrl")?)?,
        title: text("deploymentTitle")?,
        provider: text("provider")?,
    })
}

fn zip_deploy(shared: &Shared, req: &Req, version: &str, key: &str, env_raw: &str) -> Resp {
    let deployment = match parse_zip_deployment(req) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let env_name = env_raw.to_ascii_lowercase();
    if env_name != PRODUCTION_ENVIRONMENT && !valid_environment_name(&env_name) {
        return bad(format!(
            "The environment name '{env_raw}' is invalid: use 1 to 40 letters, digits or hyphens, not starting or ending with a hyphen."
        ));
    }
    let mut world = shared.world();
    let world = &mut *world;
    // The service downloads the artifacts itself; the sandbox reads them
    // from its own blob storage now and reports a failure through the
    // operation, as the service does.
    let app = crate::blob::fetch(world, &deployment.app_zip_url).and_then(|bytes| {
        crate::kudu::read_package(&bytes)
            .map(|mut b| {
                b.package = Some(bytes);
                b
            })
            .map_err(|e| {
                format!(
                    "The app artifact '{}' is not a deployable package: {e}",
                    shown(&deployment.app_zip_url)
                )
            })
    });
    let outcome = match (&deployment.api_zip_url, app) {
        (Some(api), Ok(build)) => crate::blob::fetch(world, api).map(|_| build),
        (_, app) => app,
    };
    let Some(site) = world.static_sites.get(key) else {
        return site_not_found(world, key);
    };
    let location = site.location.clone();
    let env = match site.environments.get(&env_name) {
        Some(e) => {
            if let Some(r) = busy_conflict(&site.name, e) {
                return r;
            }
            None
        }
        None => {
            if site.preview_count() >= MAX_PREVIEW_ENVIRONMENTS {
                return bad(format!(
                    "This Static Web App already has the maximum number of staging environments ({MAX_PREVIEW_ENVIRONMENTS}). Please remove one and try again."
                ));
            }
            Some(Environment::new(site, &env_name, Instant::now()))
        }
    };
    let now = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let outcome = outcome.map(|mut b| {
        b.deployment_id = Some(id.clone());
        b
    });
    let duration = operation_duration(world);
    let Some(site) = world.static_sites.get_mut(key) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(new_env) = env {
        site.environments.insert(env_name.clone(), new_env);
    }
    if let Some(e) = site.environments.get_mut(&env_name) {
        e.busy = Some(id.clone());
        e.status = BuildStatus::Uploading;
        e.deployment_title = deployment.title.clone();
        e.last_updated_utc = chrono::Utc::now();
    }
    world.prune_operations();
    world.static_operations.insert(
        id.clone(),
        StaticSiteOperation {
            id: id.clone(),
            site: key.to_owned(),
            environment: env_name,
            kind: StaticOpKind::ZipDeploy {
                outcome,
                provider: deployment.provider,
            },
            started_utc: chrono::Utc::now(),
            started_at: now,
            completes_at: now + duration,
            status: OpStatus::Running,
        },
    );
    accepted(shared, world, &location, &id, version)
}

fn delete_build(shared: &Shared, version: &str, key: &str, env_raw: &str) -> Resp {
    let env_name = env_raw.to_ascii_lowercase();
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.static_sites.get(key) else {
        return site_not_found(world, key);
    };
    if env_name == PRODUCTION_ENVIRONMENT {
        // (guessed) wording.
        return bad(format!(
            "The production environment '{PRODUCTION_ENVIRONMENT}' of static site '{}' cannot be deleted. Delete the static site instead.",
            site.name
        ));
    }
    let Some(env) = site.environments.get(&env_name) else {
        return respond::empty(StatusCode::NO_CONTENT);
    };
    let location = site.location.clone();
    if let Some(op) = &env.busy {
        // A repeated DELETE joins the deletion already running.
        let deleting = world
            .static_operations
            .get(op)
            .is_some_and(|o| matches!(o.kind, StaticOpKind::DeleteBuild));
        if deleting {
            return accepted(shared, world, &location, op, version);
        }
        if let Some(r) = busy_conflict(&site.name, env) {
            return r;
        }
    }
    let now = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let duration = operation_duration(world);
    if let Some(e) = world
        .static_sites
        .get_mut(key)
        .and_then(|s| s.environments.get_mut(&env_name))
    {
        e.busy = Some(id.clone());
        e.status = BuildStatus::Deleting;
    }
    world.prune_operations();
    world.static_operations.insert(
        id.clone(),
        StaticSiteOperation {
            id: id.clone(),
            site: key.to_owned(),
            environment: env_name,
            kind: StaticOpKind::DeleteBuild,
            started_utc: chrono::Utc::now(),
            started_at: now,
            completes_at: now + duration,
            status: OpStatus::Running,
        },
    );
    accepted(shared, world, &location, &id, version)
}

/// `GET /subscriptions/{sub}/providers/Microsoft.Web/locations/{location}/operationResults/{id}`:
/// always 200 (the SDK accepts only 200/201/202 on a poll), the state in
/// `status`, ARM's `error` when it failed.
pub(crate) fn operation(shared: &Shared, location: &str, id: &str) -> Resp {
    let world = shared.world();
    let op = world.static_operations.get(id).filter(|op| {
        world
            .static_sites
            .get(&op.site)
            .is_none_or(|s| eq(&s.location, location))
    });
    let Some(op) = op else {
        return respond::arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        );
    };
    let status = match &op.status {
        OpStatus::Running => "InProgress",
        OpStatus::Succeeded => "Succeeded",
        OpStatus::Failed { .. } => "Failed",
    };
    let mut body = json!({
        "id": format!(
            "/subscriptions/{}/providers/Microsoft.Web/locations/{location}/operationResults/{id}",
            world.ids.subscription_id
        ),
        "name": id,
        "status": status,
        "startTime": utc(op.started_utc),
    });
    if let Value::Object(o) = &mut body {
        if !matches!(op.status, OpStatus::Running) {
            let took = op.completes_at.saturating_duration_since(op.started_at);
            let end = op.started_utc + chrono::Duration::from_std(took).unwrap_or_default();
            o.insert("endTime".into(), json!(utc(end)));
        }
        if let OpStatus::Failed { code, message, .. } = &op.status {
            o.insert("error".into(), json!({"code": code, "message": message}));
        }
    }
    let mut r = respond::json(StatusCode::OK, &body);
    if matches!(op.status, OpStatus::Running) {
        respond::set_header(
            &mut r,
            "retry-after",
            &world.timing.retry_after_secs.to_string(),
        );
    }
    r
}
