//! What commands do with a platform, through the registry
//! ([`crate::rollout::platforms`]): name a service's [`Place`] from the
//! inputs or a manifest entry, build its target and evidence clients and
//! run the rollout, find what a rollback aims at, read what production
//! serves for a deployment record. Nothing here tells platforms apart:
//! each answers for itself through
//! [`Platform`](crate::rollout::platforms::Platform), and
//! `tests/architecture.rs` keeps it that way.

use std::collections::BTreeMap;

use crate::cancel::Cancel;
use crate::commands::Ctx;
use crate::manifest::{Platform as ServicePlatform, Service};
use crate::probe::Probe;
use crate::rollout::canary::SourceClients;
use crate::rollout::driver::{DeployPlan, Journal, PREVIOUS_VERSION_TAG, Place};
use crate::rollout::platforms::{self, Aim, Platform, Setting, TargetEnv};

use super::service::{Clients, Keeper, Start, roll};

/// Where a service named by the inputs runs (`settings`: the platform's
/// settings, checked by `config::service::platform_settings`).
pub fn place(
    platform: &'static dyn Platform,
    subscription: &str,
    resource_group: &str,
    app: &str,
    settings: BTreeMap<String, String>,
) -> Place {
    Place {
        platform,
        resource: platform.resource(subscription, resource_group, app, &settings),
        settings,
    }
}

/// Where a manifest's service runs; `None` for a `command` service (its own
/// commands deploy it: there is no target).
pub fn place_of_service(s: &Service, subscription: &str) -> Option<Place> {
    match &s.platform {
        ServicePlatform::Target {
            platform,
            app,
            resource_group,
            settings,
        } => Some(place(
            *platform,
            subscription,
            resource_group,
            app,
            settings.clone(),
        )),
        ServicePlatform::Command { .. } => None,
    }
}

/// A manifest service's build for the rollout: its slot, the package read
/// and checked (a zip file), or the image with its version.
pub async fn stage_service(
    s: &Service,
    version: &str,
    plan: &mut DeployPlan,
) -> Result<(), String> {
    let ServicePlatform::Target {
        platform, settings, ..
    } = &s.platform
    else {
        return Ok(());
    };
    for t in platform.takes() {
        let Some(value) = settings.get(t.setting.key()) else {
            continue;
        };
        match t.setting {
            Setting::Slot => plan.slot = value.clone(),
            Setting::Package => {
                plan.package = match tokio::fs::read(value).await {
                    Ok(bytes) if bytes.starts_with(b"PK\x03\x04") => Some(bytes),
                    Ok(_) => return Err(format!("the package {value} is not a zip file")),
                    Err(e) => return Err(format!("cannot read the package {value}: {e}")),
                }
            }
            Setting::Image => plan.image = Some(value.replace("${version}", version)),
            _ => {}
        }
    }
    Ok(())
}

/// Where the new build waits for its checks, in words for the summary.
pub fn staged_in(place: &Place, new_revision: Option<&str>) -> String {
    place.platform.staged_in(place, new_revision)
}

/// The `expedite rollback` command line that puts `place` back on
/// `version`: its resource group where its platform is on Azure, its
/// platform unless it is the default, and every setting it was deployed
/// with that `rollback` takes (a Kubernetes namespace, Service, strategy,
/// context) unless it is the default.
pub fn rollback_command(place: &Place, version: &str) -> String {
    use crate::config::{Command, spec};
    let quote = |v: &str| {
        if v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@=".contains(c))
        {
            v.to_string()
        } else {
            format!("'{}'", v.replace('\'', r"'\''"))
        }
    };
    let mut cmd = format!("expedite rollback --services {}", quote(place.name()));
    if place.platform.needs_azure() {
        cmd.push_str(&format!(
            " --resource-group {}",
            quote(&place.resource.resource_group)
        ));
    }
    if place.platform != platforms::default() {
        cmd.push_str(&format!(" --platform {}", place.platform.name()));
    }
    for (key, value) in &place.settings {
        let Some(input) = spec::input_spec(key) else {
            continue;
        };
        if input.scope.includes(Command::Rollback) && input.default != Some(value.as_str()) {
            cmd.push_str(&format!(" --{key} {}", quote(value)));
        }
    }
    cmd.push_str(&format!(" --to-version {} --reason \"…\"", quote(version)));
    cmd
}

/// What a platform's factory needs, from the command's clients.
fn target_env(ctx: &Ctx, clients: &Clients, keeper: Option<&Keeper>) -> TargetEnv {
    let (run, attempt) = ctx.identity.run_and_attempt();
    let nonce: String = ctx.identity.nonce().chars().take(4).collect();
    TargetEnv {
        http: clients.http.clone(),
        azure: clients.azure.clone(),
        archive: keeper.and_then(|k| k.archive.clone()),
        run_tag: format!("{run}-{nonce}"),
        attempt,
        kube: clients.kube.clone(),
    }
}

/// The version production serves now, for the deployment record (`None`
/// when it cannot be read, or the platform keeps no version there: the
/// record then names no previous version).
pub async fn live_version(
    ctx: &Ctx,
    clients: &Clients,
    place: &Place,
    endpoints: &crate::probe::Endpoints,
    c: &Cancel,
) -> Option<String> {
    let env = target_env(ctx, clients, None);
    place.platform.live_version(place, &env, endpoints, c).await
}

/// The platform's read-only checks of `place`, before its lock is taken
/// (`Err`: what is wrong; nothing was written).
pub async fn precheck(
    ctx: &Ctx,
    clients: &Clients,
    place: &Place,
    c: &Cancel,
) -> Result<(), String> {
    let env = target_env(ctx, clients, None);
    place.platform.precheck(place, &env, c).await
}

/// Only the platform's read-only preflight (for `deploy --dry-run`): what
/// it found, and the facts it read (hosts, what production serves,
/// leftovers). No lock, nothing changed.
pub async fn preflight(
    ctx: &Ctx,
    clients: &Clients,
    place: &Place,
    plan: &DeployPlan,
) -> (crate::rollout::Result, crate::rollout::driver::Facts) {
    use crate::rollout::target::Target as _;
    let env = target_env(ctx, clients, None);
    let (target, probe) = target_and_probe(place, plan, &env);
    let mut facts = crate::rollout::driver::Facts::default();
    let r = target
        .preflight(plan, &mut facts, &probe, &ctx.cancel)
        .await;
    (r, facts)
}

/// Builds the platform's target and evidence clients and runs the rollout.
pub async fn drive(
    ctx: &Ctx,
    clients: &Clients,
    keeper: &Keeper,
    place: &Place,
    plan: DeployPlan,
    start: Start,
) -> Journal {
    let env = target_env(ctx, clients, Some(keeper));
    let (target, probe) = target_and_probe(place, &plan, &env);
    let sources = plan.canary.as_ref().map(|_| SourceClients {
        http: clients.http.clone(),
        dial: Some(probe.dial().clone()),
        monitor: clients
            .azure
            .as_ref()
            .zip(place.platform.monitor(place))
            .map(|(az, monitor)| (az.arm.clone(), monitor)),
    });
    Box::pin(roll(target, probe, plan, sources, place, start)).await
}

/// The platform's target for `place` (one that fails at preflight with
/// the reason when it cannot be built) and a probe that reaches its hosts.
fn target_and_probe(
    place: &Place,
    plan: &DeployPlan,
    env: &TargetEnv,
) -> (Box<dyn crate::rollout::target::AnyTarget>, Probe) {
    let target = place
        .platform
        .target(place, plan, env)
        .unwrap_or_else(|why| Box::new(crate::rollout::target::Unbuildable(why)));
    let dial = place
        .platform
        .dial(place, env)
        .unwrap_or_else(|_| crate::http::Dial::new(env.http.clone()));
    (target, Probe::dialing(dial))
}

/// Finds the version (and the platform's handle on it) a rollback of
/// `place` goes to: `to_version`, else the version production served
/// before expedite's last promotion (the resource's tag), else `recorded`
/// (the last successful GitHub deployment).
pub async fn aim(
    ctx: &Ctx,
    clients: &Clients,
    place: &Place,
    to_version: Option<&str>,
    recorded: Option<String>,
    c: &Cancel,
) -> Result<Aim, String> {
    let env = target_env(ctx, clients, None);
    let tags = place.platform.tags(place, &env, c).await?;
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
    let revision = place
        .platform
        .rollback_handle(place, &env, &version, &tags, c)
        .await?;
    Ok(Aim {
        version,
        revision,
        from,
    })
}
