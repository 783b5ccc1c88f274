//! Kudu (SCM) per slot: ZipDeploy and OneDeploy uploads, deployment status
//! polling with Kudu's 0–4 statuses, 409 while a deployment runs (reference
//! §4), and the zip API's download of `site/wwwroot/`. The package's
//! `expedite-demo.json` decides what the slot serves.

use std::io::Read;
use std::time::Instant;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arm::{authenticate, length_required, unauthorized_kudu};
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::world::{Behaviour, Build, Deployment, HostTarget, World};

/// Manifest file at the zip root naming the demo build.
pub const MANIFEST: &str = "expedite-demo.json";
/// Deployments kept per slot.
const HISTORY: usize = 50;
/// Largest manifest read.
const MAX_MANIFEST: u64 = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: String,
    #[serde(default)]
    behaviour: Option<Behaviour>,
}

/// A package the demo app accepts: a zip holding `expedite-demo.json` with
/// the version (what tests, benchmarks and the drill upload to a slot).
pub fn demo_package(version: &str) -> Result<Vec<u8>, crate::SandboxError> {
    package_for(version, None)
}

/// A demo package whose manifest carries `version` and, when given, the
/// packaged behaviour.
pub(crate) fn package_for(
    version: &str,
    behaviour: Option<&Behaviour>,
) -> Result<Vec<u8>, crate::SandboxError> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| {
        crate::SandboxError::Invalid(format!("cannot build the demo package: {e}"))
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(MANIFEST, zip::write::SimpleFileOptions::default())
        .map_err(|e| fail(&e))?;
    let mut manifest = json!({ "version": version });
    if let Some(b) = behaviour {
        manifest["behaviour"] = json!(b);
    }
    zip.write_all(manifest.to_string().as_bytes())
        .map_err(|e| fail(&e))?;
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

/// Reads the demo build out of a package, or says what is wrong with it.
pub(crate) fn read_package(bytes: &[u8]) -> Result<Build, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("Failed to read the zip package: {e}."))?;
    let file = archive.by_name(MANIFEST).map_err(|_| {
        format!("The package does not contain '{MANIFEST}' at its root: the demo app cannot tell which version it is. Add {{\"version\": \"x.y.z\"}} as {MANIFEST}.")
    })?;
    let mut text = String::new();
    file.take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .map_err(|e| format!("Failed to read {MANIFEST}: {e}."))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} is not valid: {e}."))?;
    if manifest.version.trim().is_empty() {
        return Err(format!("{MANIFEST} has an empty version."));
    }
    if let Some(b) = &manifest.behaviour {
        b.validate()
            .map_err(|e| format!("{MANIFEST} behaviour is not valid: {e}."))?;
    }
    Ok(Build {
        version: manifest.version.trim().to_owned(),
        behaviour: manifest.behaviour,
        deployment_id: None,
        package: None,
    })
}

pub(crate) async fn handle(shared: &Shared, req: &Req, target: &HostTarget) -> Outcome {
    if let Some(r) = length_required(req) {
        return r.into();
    }
    if authenticate(shared, req).is_err() {
        let mut r = unauthorized_kudu();
        respond::set_header(&mut r, "www-authenticate", "Bearer");
        return r.into();
    }
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["api", "zipdeploy"]) => {
            let is_async = req
                .query_param("isAsync")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            deploy(shared, req, target, "ZipDeploy", is_async).await
        }
        (&Method::POST, ["api", "publish"]) => {
            match req.query_param("type") {
                None => {
                    return respond::text(
                        StatusCode::BAD_REQUEST,
                        "Deployment type is mandatory. Please specify the type query parameter (e.g. type=zip).",
                    )
                    .into();
                }
                Some(t) if !t.eq_ignore_ascii_case("zip") => {
                    return respond::text(
                        StatusCode::BAD_REQUEST,
                        format!("The sandbox emulates OneDeploy for type=zip only, got type={t}."),
                    )
                    .into();
                }
                Some(_) => {}
            }
            let is_async = req
                .query_param("async")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            deploy(shared, req, target, "OneDeploy", is_async).await
        }
        (&Method::GET, ["api", "zip", "site", "wwwroot"]) => zip_wwwroot(shared, target),
        (&Method::GET, ["api", "zip", ..]) => respond::text(
            StatusCode::NOT_FOUND,
            "The sandbox Kudu zips site/wwwroot/ only.",
        )
        .into(),
        (&Method::GET, ["api", "deployments"]) => {
            let world = shared.world();
            let list: Vec<Value> = deployments(&world, target)
                .iter()
                .rev()
                .map(|d| deploy_json(d, target))
                .collect();
            respond::json(StatusCode::OK, &json!(list)).into()
        }
        (&Method::GET, ["api", "deployments", id]) => {
            let world = shared.world();
            let found = if id.eq_ignore_ascii_case("latest") {
                deployments(&world, target).last()
            } else {
                deployments(&world, target).iter().find(|d| d.id == *id)
            };
            match found {
                Some(d) => {
                    let status = if d.complete {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    };
                    respond::json(status, &deploy_json(d, target)).into()
                }
                None => not_found(id).into(),
            }
        }
        (&Method::GET, ["api", "deployments", id, "log"]) => {
            let world = shared.world();
            match deployments(&world, target).iter().find(|d| d.id == *id) {
                Some(d) => {
                    let entries: Vec<Value> = d
                        .log
                        .iter()
                        .enumerate()
                        .map(|(i, (t, m))| {
                            json!({"log_time": t.to_rfc3339(), "id": format!("{}-{i}", d.id), "message": m, "type": if d.status == 3 && i + 1 == d.log.len() { 2 } else { 0 }, "details_url": null})
                        })
                        .collect();
                    respond::json(StatusCode::OK, &json!(entries)).into()
                }
                None => not_found(id).into(),
            }
        }
        _ => respond::text(StatusCode::NOT_FOUND, "Not Found").into(),
    }
}

/// Kudu's zip API for `site/wwwroot/`: the slot's content as a package
/// its own OneDeploy accepts back — the exact bytes last deployed to the
/// serving build, or (for the scenario's starting builds, which never came
/// through Kudu) a demo package of the version and packaged behaviour.
fn zip_wwwroot(shared: &Shared, target: &HostTarget) -> Outcome {
    let build = {
        let world = shared.world();
        world
            .sites
            .get(&target.site)
            .and_then(|s| s.slots.get(&target.slot))
            .map(|s| s.content.build.clone())
    };
    let Some(build) = build else {
        return respond::text(StatusCode::NOT_FOUND, "Not Found").into();
    };
    let bytes = match build.package {
        Some(p) => p,
        None => match package_for(&build.version, build.behaviour.as_ref()) {
            Ok(p) => bytes::Bytes::from(p),
            Err(e) => {
                return respond::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into();
            }
        },
    };
    let mut r = respond::build(StatusCode::OK, Some("application/zip"), bytes);
    respond::set_header(
        &mut r,
        "content-disposition",
        "attachment; filename=\"wwwroot.zip\"",
    );
    r.into()
}

fn not_found(id: &str) -> Resp {
    respond::json(
        StatusCode::NOT_FOUND,
        &json!({"Message": format!("Deployment '{id}' not found.")}),
    )
}

fn deployments<'w>(world: &'w World, target: &HostTarget) -> &'w [Deployment] {
    world
        .sites
        .get(&target.site)
        .and_then(|s| s.slots.get(&target.slot))
        .map(|s| s.content.deployments.as_slice())
        .unwrap_or(&[])
}

fn scm_host(target: &HostTarget) -> String {
    crate::world::slot_host(&target.site, &target.slot, true)
}

fn deploy_json(d: &Deployment, target: &HostTarget) -> Value {
    let scm = scm_host(target);
    let provisioning = match d.status {
        3 => "Failed",
        4 => "Succeeded",
        _ => "InProgress",
    };
    json!({
        "id": d.id,
        "status": d.status,
        "status_text": if d.complete { "" } else { d.status_text() },
        "author_email": "N/A",
        "author": "N/A",
        "deployer": d.deployer,
        "message": d.message,
        "progress": if d.complete { "" } else { d.status_text() },
        "received_time": d.received_time.to_rfc3339(),
        "start_time": d.received_time.to_rfc3339(),
        "end_time": d.end_time.map(|t| t.to_rfc3339()),
        "last_success_end_time": if d.status == 4 { d.end_time.map(|t| t.to_rfc3339()) } else { None },
        "complete": d.complete,
        "active": d.active,
        "is_temp": false,
        "is_readonly": true,
        "url": format!("https://{scm}/api/deployments/{}", d.id),
        "log_url": format!("https://{scm}/api/deployments/{}/log", d.id),
        "site_name": target.site,
        "provisioningState": provisioning,
    })
}

async fn deploy(
    shared: &Shared,
    req: &Req,
    target: &HostTarget,
    default_deployer: &str,
    is_async: bool,
) -> Outcome {
    if req.body.is_empty() {
        return respond::text(
            StatusCode::BAD_REQUEST,
            "The request body is empty: send the zip package.",
        )
        .into();
    }
    let outcome = read_package(&req.body);
    let deployer = req
        .query_param("deployer")
        .unwrap_or(default_deployer)
        .to_owned();
    let message = req
        .query_param("message")
        .unwrap_or("Created via a push deployment")
        .to_owned();
    let (id, done_at) = {
        let mut world = shared.world();
        let build_duration = world.timing.build_duration;
        let Some(slot) = world
            .sites
            .get_mut(&target.site)
            .and_then(|s| s.slots.get_mut(&target.slot))
        else {
            return respond::text(StatusCode::NOT_FOUND, "Not Found").into();
        };
        if slot.content.deployments.iter().any(|d| !d.complete) {
            return respond::text(
                StatusCode::CONFLICT,
                "There is a deployment currently in progress. Please try again when it completes.",
            )
            .into();
        }
        let now = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let received = chrono::Utc::now();
        let outcome = outcome.map(|mut b| {
            b.deployment_id = Some(id.clone());
            b.package = Some(req.body.clone());
            b
        });
        let mut log = vec![(received, "Updating submodules.".to_owned())];
        log.push((
            received,
            "Preparing deployment for commit id '".to_owned() + &id[..10] + "'.",
        ));
        slot.content.deployments.push(Deployment {
            id: id.clone(),
            status: 0,
            deployer,
            message,
            received_time: received,
            end_time: None,
            received_at: now,
            done_at: now + build_duration,
            outcome,
            log,
            complete: false,
            active: false,
        });
        let excess = slot.content.deployments.len().saturating_sub(HISTORY);
        slot.content.deployments.drain(..excess);
        (id, now + build_duration)
    };
    let scm = scm_host(target);
    if is_async {
        let mut r = respond::empty(StatusCode::ACCEPTED);
        let location = format!(
            "https://{scm}/api/deployments/latest?deployer={}&time={}",
            url::form_urlencoded::byte_serialize(default_deployer.as_bytes()).collect::<String>(),
            chrono::Utc::now().format("%Y-%m-%d_%H-%M-%SZ")
        );
        respond::set_header(&mut r, "location", &location);
        respond::set_header(&mut r, "scm-deployment-id", &id);
        return r.into();
    }
    // Synchronous: hold the request until the build finishes (bounded by
    // the configured build time).
    tokio::time::sleep_until(tokio::time::Instant::from_std(done_at)).await;
    let world = shared.world();
    match deployments(&world, target).iter().find(|d| d.id == id) {
        Some(d) if d.status == 4 => respond::empty(StatusCode::OK).into(),
        Some(d) => {
            let msg = d.log.last().map(|(_, m)| m.clone()).unwrap_or_default();
            respond::text(StatusCode::BAD_REQUEST, msg).into()
        }
        None => respond::empty(StatusCode::OK).into(),
    }
}

#[cfg(test)]
mod package_tests {
    use super::*;

    #[test]
    fn demo_packages_round_trip() {
        let bytes = demo_package("2.4.1").unwrap();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(read_package(&bytes).unwrap().version, "2.4.1");
    }
}
