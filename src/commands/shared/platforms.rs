//! The platforms expedite deploys to, registered in one place: how a
//! service's settings name its [`Place`], how a place becomes the rollout's
//! [`Target`](crate::rollout::target::Target) and its evidence clients, and
//! the few platform facts commands show or act on (what production serves
//! for a deployment record, where a build is staged, what a rollback aims
//! at). Outside this file, `rollout/driver.rs` (the journal's `Place`) and
//! the configuration that parses them, nothing tells platforms apart
//! (`tests/architecture.rs`). A new platform is its target under
//! `rollout/`, its client under `platform/`, a `Place` variant, and an arm
//! in each function here.

use crate::cancel::Cancel;
use crate::commands::Ctx;
use crate::config::PlatformKind;
use crate::manifest::{Platform, Service};
use crate::platform::app_service::{AppService, PRODUCTION, SiteRef};
use crate::platform::container_apps::{ContainerAppRef, ContainerApps, revision_suffix};
use crate::probe::Probe;
use crate::probe::evidence::azure_monitor::{MonitorTarget, container_app_id, web_site_id};
use crate::rollout::app_service::AppServiceTarget;
use crate::rollout::canary::SourceClients;
use crate::rollout::container_apps::ContainerAppsTarget;
use crate::rollout::driver::{
    DeployPlan, Journal, PREVIOUS_REVISION_TAG, PREVIOUS_VERSION_TAG, Place,
};

use super::service::{Aim, AzureClients, Keeper, Start, roll};

/// Where a service named by the inputs runs.
pub fn place(
    kind: PlatformKind,
    subscription: &str,
    resource_group: &str,
    app: &str,
    slot: &str,
    container: Option<String>,
) -> Place {
    match kind {
        PlatformKind::AppService => Place::AppService {
            site: SiteRef {
                subscription: subscription.to_string(),
                resource_group: resource_group.to_string(),
                app: app.to_string(),
            },
            slot: slot.to_string(),
        },
        PlatformKind::ContainerApps => Place::ContainerApps {
            app: ContainerAppRef {
                subscription: subscription.to_string(),
                resource_group: resource_group.to_string(),
                app: app.to_string(),
            },
            container,
        },
    }
}

/// Where a manifest's service runs; `None` for a `command` service (its own
/// commands deploy it: there is no target).
pub fn place_of_service(s: &Service, subscription: &str) -> Option<Place> {
    match &s.platform {
        Platform::AppService {
            app,
            resource_group,
            slot,
            ..
        } => Some(place(
            PlatformKind::AppService,
            subscription,
            resource_group,
            app,
            slot,
            None,
        )),
        Platform::ContainerApps {
            app,
            resource_group,
            container,
            ..
        } => Some(place(
            PlatformKind::ContainerApps,
            subscription,
            resource_group,
            app,
            "",
            container.clone(),
        )),
        Platform::Command { .. } => None,
    }
}

/// A manifest service's build for `plan`: the package read and checked
/// (App Service), or the image with its version (Container Apps).
pub async fn stage_service(
    s: &Service,
    version: &str,
    plan: &mut DeployPlan,
) -> Result<(), String> {
    match &s.platform {
        Platform::AppService { slot, package, .. } => {
            plan.slot = slot.clone();
            plan.package = match package {
                Some(p) => match tokio::fs::read(p).await {
                    Ok(bytes) if bytes.starts_with(b"PK\x03\x04") => Some(bytes),
                    Ok(_) => return Err(format!("the package {p} is not a zip file")),
                    Err(e) => return Err(format!("cannot read the package {p}: {e}")),
                },
                None => None,
            };
        }
        Platform::ContainerApps { image, .. } => {
            plan.image = Some(image.replace("${version}", version));
        }
        Platform::Command { .. } => {}
    }
    Ok(())
}

/// Where the new build waits for its checks, in words for the summary.
pub fn staged_in(place: &Place, new_revision: Option<&str>) -> String {
    use crate::report::md_cell;
    match (new_revision, place) {
        (Some(rev), _) => format!("revision {}", md_cell(rev)),
        (None, Place::ContainerApps { .. }) => "a new revision".into(),
        (None, Place::AppService { slot, .. }) => format!("slot {}", md_cell(slot)),
    }
}

/// The `rollback` flags that name `place`'s platform (none for the default).
pub fn rollback_flags(place: &Place) -> &'static str {
    match place {
        Place::AppService { .. } => "",
        Place::ContainerApps { .. } => " --platform container-apps",
    }
}

/// The version production serves now, for the deployment record (`None`
/// when it cannot be read, or the platform keeps no version there: the
/// record then names no previous version).
pub async fn live_version(
    clients: &AzureClients,
    place: &Place,
    endpoints: &crate::probe::Endpoints,
    c: &Cancel,
) -> Option<String> {
    let Place::AppService { site, .. } = place else {
        return None;
    };
    let app = AppService::new(clients.arm.clone(), site.clone());
    let prod = app.slot(PRODUCTION, c).await.ok()?;
    Probe::new(clients.http.clone())
        .observe(&prod.default_host_name, endpoints, Some("self"))
        .await
        .version
}

/// Builds the platform's target and evidence clients and runs the rollout.
pub async fn drive(
    ctx: &Ctx,
    clients: &AzureClients,
    keeper: &Keeper,
    place: &Place,
    plan: DeployPlan,
    start: Start,
) -> Journal {
    let probe = Probe::new(clients.http.clone());
    let sources = |monitor: MonitorTarget| {
        plan.canary.as_ref().map(|_| SourceClients {
            http: clients.http.clone(),
            arm: clients.arm.clone(),
            monitor,
        })
    };
    match place {
        Place::AppService { site, slot } => {
            let sources = sources(MonitorTarget::AppService {
                site_id: web_site_id(&site.subscription, &site.resource_group, &site.app),
            });
            let target = AppServiceTarget {
                app: AppService::new(clients.arm.clone(), site.clone()),
                tokens: clients.tokens.clone(),
                http: clients.http.clone(),
                slot: slot.clone(),
                archive: keeper.archive.clone(),
            };
            Box::pin(roll(target, probe, plan, sources, place, start)).await
        }
        Place::ContainerApps { app, container } => {
            let sources = sources(MonitorTarget::ContainerApp {
                app_id: container_app_id(&app.subscription, &app.resource_group, &app.app),
            });
            // Unique per run and per process: two runs never name the same
            // revision.
            let (run, attempt) = ctx.identity.run_and_attempt();
            let nonce: String = ctx.identity.nonce().chars().take(4).collect();
            let suffix =
                revision_suffix(&plan.expected_version, &format!("{run}-{nonce}"), &attempt);
            let target = ContainerAppsTarget {
                app: ContainerApps::new(clients.arm.clone(), app.clone()),
                container: container.clone(),
                suffix,
            };
            Box::pin(roll(target, probe, plan, sources, place, start)).await
        }
    }
}

/// Finds the version (and revision) a rollback of `place` goes to:
/// `to_version`, else the version production served before expedite's last
/// promotion (the app's tag), else `recorded` (the last successful GitHub
/// deployment).
pub async fn aim(
    clients: &AzureClients,
    place: &Place,
    to_version: Option<&str>,
    recorded: Option<String>,
    c: &Cancel,
) -> Result<Aim, String> {
    let (tags, revisions) = match place {
        Place::AppService { site, .. } => {
            let app = AppService::new(clients.arm.clone(), site.clone());
            match app.slot(PRODUCTION, c).await {
                Ok(p) => (p.tags, Vec::new()),
                Err(crate::azure::arm::ArmError::NotFound { .. }) => {
                    return Err(format!(
                        "the web app '{}' was not found in resource group '{}' (a container app? give platform: container-apps)",
                        site.app, site.resource_group
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Place::ContainerApps { app, .. } => {
            let ca = ContainerApps::new(clients.arm.clone(), app.clone());
            let info = match ca.get(c).await {
                Ok(i) => i,
                Err(crate::azure::arm::ArmError::NotFound { .. }) => {
                    return Err(format!(
                        "the container app '{}' was not found in resource group '{}'",
                        app.app, app.resource_group
                    ));
                }
                Err(e) => return Err(e.to_string()),
            };
            let revisions = ca.revisions(c).await.map_err(|e| e.to_string())?;
            (info.tags, revisions)
        }
    };
    let tagged = tags.get(PREVIOUS_VERSION_TAG).cloned();
    let (version, from) = match (to_version, &tagged, recorded) {
        (Some(v), _, _) => (v.to_string(), "to-version".to_string()),
        (None, Some(v), _) => (
            v.clone(),
            format!(
                "the version production served before expedite's last promotion ({PREVIOUS_VERSION_TAG})"
            ),
        ),
        (None, None, Some(v)) => {
            let from = format!(
                "the app carries no {PREVIOUS_VERSION_TAG} tag; the last successful GitHub deployment names {v} as the last known good version"
            );
            (v, from)
        }
        (None, None, None) => {
            return Err(format!(
                "no previous version is recorded on '{}' (expedite records one when it promotes a deploy) nor in a successful GitHub deployment; give to-version",
                place.name()
            ));
        }
    };
    let revision = match place {
        Place::AppService { .. } => None,
        Place::ContainerApps { app, .. } => {
            let tagged_revision = tags.get(PREVIOUS_REVISION_TAG).cloned();
            if tagged.as_deref() == Some(version.as_str()) && tagged_revision.is_some() {
                tagged_revision
            } else {
                // A revision expedite created for that version carries it in
                // its name; the newest one wins. Its identity is checked
                // before any traffic moves.
                let slug = revision_suffix(&version, "", "");
                let bare = slug.replace('-', "");
                let mut found: Vec<_> = revisions
                    .iter()
                    .filter(|r| {
                        r.name
                            .strip_prefix(&format!("{}--", app.app))
                            .is_some_and(|s| {
                                s == slug
                                    || s.starts_with(&format!("{slug}-"))
                                    || s.replace('-', "") == bare
                            })
                    })
                    .collect();
                found.sort_by(|a, b| b.created_time.cmp(&a.created_time));
                // None: production may already serve it (nothing to do);
                // otherwise staging says no revision is known to serve it.
                found.first().map(|r| r.name.clone())
            }
        }
    };
    Ok(Aim {
        version,
        revision,
        from,
    })
}
