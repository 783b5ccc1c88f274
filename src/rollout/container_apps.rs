//! The rollout on Azure Container Apps: the new image becomes a new
//! revision with no traffic, a canary share is a traffic weight, promotion
//! is 100 % to the new revision, and a rejected revision is deactivated.
//!
//! Traffic is always set **by revision name**. An entry with
//! `latestRevision: true` follows every new revision, so creating the
//! canary's revision would send it all of production's traffic at once:
//! preflight reports such an entry as leftover routing, and the driver pins
//! the stable revision by name before anything is created.

use std::collections::BTreeMap;

use super::Result as R;
use super::driver::{DeployPlan, Facts};
use super::target::{Side, Target, arm_result, stale_routing};
use crate::azure::arm::ArmError;
use crate::cancel::Cancel;
use crate::platform::container_apps::{self, ContainerApps, ReadyError, TrafficWeight};
use crate::probe::Probe;
use crate::probe::evidence::{ArmRef, Arms};

/// A container app as a rollout target.
pub struct ContainerAppsTarget {
    /// The app.
    pub app: ContainerApps,
    /// The container whose image changes (None: the only one).
    pub container: Option<String>,
    /// Revision suffix for the new revision (fresh per run).
    pub suffix: String,
}

impl ContainerAppsTarget {
    fn stable<'a>(&self, f: &'a Facts) -> Result<&'a str, String> {
        f.stable_revision
            .as_deref()
            .ok_or_else(|| "the stable revision is not known".to_string())
    }

    fn new_rev<'a>(&self, f: &'a Facts) -> Result<&'a str, String> {
        f.new_revision
            .as_deref()
            .ok_or_else(|| "the new revision is not known".to_string())
    }

    async fn set(&self, weights: Vec<TrafficWeight>, c: &Cancel) -> R {
        match self.app.set_traffic(&weights, c).await {
            Ok(()) => R::Ok,
            // The whole traffic block is set and read back, so an unknown
            // outcome is settled by setting it again.
            Err(e @ ArmError::Ambiguous { .. }) => R::Unavailable(e.to_string()),
            Err(e) => arm_result(e),
        }
    }

    fn weights(pairs: &[(&str, u32)]) -> Vec<TrafficWeight> {
        pairs
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(r, w)| TrafficWeight {
                revision: (*r).to_string(),
                weight: *w,
                label: None,
            })
            .collect()
    }

    fn ready_result(e: ReadyError) -> R {
        match e {
            ReadyError::Arm(a) => arm_result(a),
            other => R::Failed(other.to_string()),
        }
    }
}

impl Target for ContainerAppsTarget {
    async fn preflight(&self, plan: &DeployPlan, f: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        let info = match self.app.get(c).await {
            Ok(i) => i,
            Err(ArmError::NotFound { .. }) => {
                return R::Failed(format!(
                    "the container app '{}' was not found in resource group '{}'",
                    self.app.app_ref().app,
                    self.app.app_ref().resource_group
                ));
            }
            Err(e) => return arm_result(e),
        };
        let Some(fqdn) = info.fqdn.clone() else {
            return R::Failed(format!(
                "the container app '{}' has no ingress FQDN: a canary needs HTTP ingress",
                self.app.app_ref().app
            ));
        };
        if !info.active_revisions_mode.eq_ignore_ascii_case("multiple") {
            return R::Failed(format!(
                "the container app '{}' is in '{}' revision mode: a canary needs two active revisions; set `activeRevisionsMode: Multiple` (az containerapp revision set-mode --mode multiple)",
                self.app.app_ref().app,
                info.active_revisions_mode
            ));
        }
        let (stable, split) = match container_apps::stable_revision(&info) {
            Ok(s) => (s.name.clone(), s.via_latest_revision.then_some(s.name)),
            Err(split) if plan.rollback => {
                // A rollback is the way out of a split: it sends 100 % to
                // its target, whatever the split was.
                let heaviest = info
                    .traffic
                    .iter()
                    .filter(|t| t.weight > 0)
                    .max_by_key(|t| t.weight)
                    .map(|t| t.revision.clone());
                let Some(h) = heaviest else {
                    return R::Failed(split);
                };
                // Noted, not cleared first: routing everything to the
                // heaviest revision could be routing it to the bad build.
                f.stale_rules = vec![split];
                (h, None)
            }
            Err(split) => {
                // Traffic split across revisions: a canary left behind.
                f.stale_rules = vec![split];
                return R::Failed(format!(
                    "production traffic is split across revisions ({}); pin it to one revision before deploying (or roll back, which does)",
                    f.stale_rules.join("; ")
                ));
            }
        };
        f.production_host = fqdn;
        f.stable_revision = Some(stable.clone());
        let revision = match self.app.revision(&stable, c).await {
            Ok(r) => r,
            Err(e) => return arm_result(e),
        };
        let observed_host = revision
            .fqdn
            .clone()
            .unwrap_or_else(|| f.production_host.clone());
        f.stable_host = revision.fqdn.clone();
        let now = probe.observe(&observed_host, &plan.endpoints, None).await;
        f.previous_version = now.version.clone();
        if now.version.is_none() {
            tracing::warn!(
                "the stable revision's version could not be read ({}); the previous version is unknown",
                now.describe()
            );
        }
        let pinned = split.is_none() && f.stale_rules.is_empty();
        if now.version.as_deref() == Some(plan.expected_version.as_str())
            && pinned
            && now.good(&plan.endpoints, None)
        {
            return R::AlreadyDeployed;
        }
        if let Some(name) = split {
            // Not optional: creating a revision would move all traffic.
            tracing::info!(
                "traffic follows latestRevision; pinning it to {name} by name before creating a revision"
            );
            f.stale_rules = vec![format!("latestRevision → {name}")];
            return R::StaleRouting;
        }
        if plan.rollback {
            // The rollback's own traffic change (100 % to the target) ends
            // any split.
            return R::Ok;
        }
        stale_routing(plan.stale, &f.stale_rules)
    }

    async fn busy(&self, c: &Cancel) -> Result<Option<String>, R> {
        let info = self.app.get(c).await.map_err(arm_result)?;
        Ok(match info.provisioning_state.as_str() {
            "InProgress" | "Updating" | "Creating" | "Deleting" => {
                Some(format!("provisioning {}", info.provisioning_state))
            }
            _ => None,
        })
    }

    async fn merge_tags(&self, tags: &BTreeMap<String, String>, c: &Cancel) -> Result<(), R> {
        self.app.merge_tags(tags, c).await.map_err(arm_result)
    }

    async fn route_all(&self, to: Side, f: &Facts, c: &Cancel) -> R {
        let revision = match to {
            Side::Previous => self.stable(f),
            Side::New => self.new_rev(f),
        };
        match revision {
            Ok(r) => self.set(Self::weights(&[(r, 100)]), c).await,
            Err(why) => R::Failed(why),
        }
    }

    async fn check_routing(&self, to: Side, f: &Facts, c: &Cancel) -> R {
        let want = match to {
            Side::Previous => self.stable(f),
            Side::New => self.new_rev(f),
        };
        let want = match want {
            Ok(w) => w,
            Err(why) => return R::Failed(why),
        };
        match self.app.get(c).await {
            Ok(info) => {
                let serving: Vec<_> = info.traffic.iter().filter(|t| t.weight > 0).collect();
                if serving.len() == 1 && serving[0].revision == want && serving[0].weight == 100 {
                    R::Ok
                } else {
                    R::Failed(format!(
                        "traffic is {} (expected 100% to {want})",
                        serving
                            .iter()
                            .map(|t| format!("{} {}%", t.revision, t.weight))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            Err(e) => arm_result(e),
        }
    }

    async fn stage(&self, plan: &DeployPlan, f: &mut Facts, _probe: &Probe, c: &Cancel) -> R {
        let name = if let Some(revision) = &plan.revision {
            // A rollback: the revision that served the target, running again.
            match self.app.revision(revision, c).await {
                Ok(r) if r.active => {}
                Ok(_) => {
                    tracing::info!("reactivating revision {revision}");
                    if let Err(e) = self.app.activate(revision, c).await {
                        return arm_result(e);
                    }
                }
                Err(ArmError::NotFound { .. }) => {
                    return R::Failed(format!(
                        "revision {revision} of container app '{}' no longer exists; deploy {} with its image instead",
                        self.app.app_ref().app,
                        plan.expected_version
                    ));
                }
                Err(e) => return arm_result(e),
            }
            revision.clone()
        } else if plan.rollback {
            return R::Failed(format!(
                "no revision of container app '{}' is known to serve {} (expedite names its revisions after the version, and records the one before its last promotion); deploy {} with its image instead",
                self.app.app_ref().app,
                plan.expected_version,
                plan.expected_version
            ));
        } else {
            let Some(image) = &plan.image else {
                return R::Failed("no image to deploy".into());
            };
            match f.new_revision.clone() {
                // Performed again after a throttled attempt: the revision
                // may exist already; creating it again would be refused.
                Some(existing) => existing,
                None => match self
                    .app
                    .create_revision(image, self.container.as_deref(), &self.suffix, c)
                    .await
                {
                    Ok(n) => n,
                    Err(e) => return arm_result(e),
                },
            }
        };
        f.new_revision = Some(name.clone());
        match self
            .app
            .wait_revision_ready(&name, plan.staging.timeout, c)
            .await
        {
            Ok(rev) => {
                match rev.fqdn {
                    Some(h) => f.slot_host = h,
                    None => {
                        return R::Failed(format!("revision {name} has no FQDN to check it on"));
                    }
                }
                R::Ok
            }
            Err(e) => Self::ready_result(e),
        }
    }

    async fn shift(&self, percent: u8, f: &Facts, c: &Cancel) -> R {
        let (stable, new) = match (self.stable(f), self.new_rev(f)) {
            (Ok(s), Ok(n)) => (s, n),
            (Err(why), _) | (_, Err(why)) => return R::Failed(why),
        };
        let p = u32::from(percent.min(100));
        self.set(Self::weights(&[(stable, 100 - p), (new, p)]), c)
            .await
    }

    async fn swap(
        &self,
        _plan: &DeployPlan,
        f: &Facts,
        _probe: &Probe,
        back: bool,
        c: &Cancel,
    ) -> R {
        // Setting the whole traffic block is idempotent: a throttled
        // attempt is simply made again; an unknown one is read.
        let to = if back { Side::Previous } else { Side::New };
        self.route_all(to, f, c).await
    }

    async fn resolve_swap(
        &self,
        _plan: &DeployPlan,
        f: &Facts,
        expected: Option<&str>,
        _probe: &Probe,
        c: &Cancel,
    ) -> R {
        // The traffic block says which revision is production.
        let want = if expected.is_some() && expected == f.previous_version.as_deref() {
            self.stable(f)
        } else {
            self.new_rev(f)
        };
        let Ok(want) = want else {
            return R::Failed("the revisions are not known".into());
        };
        match self.app.get(c).await {
            Ok(info) => {
                let full = info
                    .traffic
                    .iter()
                    .any(|t| t.revision == want && t.weight == 100);
                if full { R::Swapped } else { R::NotSwapped }
            }
            Err(e) => match arm_result(e) {
                R::Failed(why) => R::Unavailable(why),
                other => other,
            },
        }
    }

    async fn retire(&self, f: &Facts, c: &Cancel) {
        let Some(new) = &f.new_revision else {
            return;
        };
        match self.app.deactivate(new, c).await {
            Ok(()) => tracing::info!("revision {new} deactivated"),
            Err(e) => tracing::warn!("could not deactivate the rejected revision {new}: {e}"),
        }
    }

    async fn keep(&self, _plan: &DeployPlan, _f: &Facts, _c: &Cancel) -> Option<String> {
        // Revisions stay (inactive): the image and its settings are there.
        None
    }

    fn arms(&self, f: &Facts) -> Arms {
        Arms {
            canary: ArmRef {
                label: f.new_revision.clone().unwrap_or_default(),
                host: f.slot_host.clone(),
            },
            baseline: ArmRef {
                label: f.stable_revision.clone().unwrap_or_default(),
                host: f
                    .stable_host
                    .clone()
                    .unwrap_or_else(|| f.production_host.clone()),
            },
        }
    }

    fn rollback_command(&self, version: &str) -> String {
        let a = self.app.app_ref();
        format!(
            "expedite rollback --platform container-apps --services {} --resource-group {} --to-version {version} --reason \"interrupted deploy\"",
            a.app, a.resource_group
        )
    }
}

/// Container Apps in the registry ([`super::platforms::PLATFORMS`]).
pub struct ContainerAppsPlatform;

/// The registered Container Apps platform.
pub static PLATFORM: ContainerAppsPlatform = ContainerAppsPlatform;

impl ContainerAppsPlatform {
    fn app(place: &super::platforms::Place) -> container_apps::ContainerAppRef {
        let r = &place.resource;
        container_apps::ContainerAppRef {
            subscription: r.subscription.clone(),
            resource_group: r.resource_group.clone(),
            app: r.app.clone(),
        }
    }
}

impl super::platforms::Platform for ContainerAppsPlatform {
    fn name(&self) -> &'static str {
        "container-apps"
    }

    fn noun(&self) -> &'static str {
        "the container app"
    }

    fn takes(&self) -> &'static [super::platforms::Takes] {
        use super::platforms::{Need, Setting, Takes};
        &[
            Takes {
                setting: Setting::Image,
                need: Need::ForDeploy(
                    "the image of the new build, e.g. contoso.azurecr.io/payments:2.4.1",
                ),
            },
            Takes {
                setting: Setting::Container,
                need: Need::Optional,
            },
        ]
    }

    fn target(
        &self,
        place: &super::platforms::Place,
        plan: &DeployPlan,
        env: &super::platforms::TargetEnv,
    ) -> Result<Box<dyn super::target::AnyTarget>, String> {
        let az = env.azure(self.name())?;
        Ok(Box::new(ContainerAppsTarget {
            app: ContainerApps::new(az.arm.clone(), Self::app(place)),
            container: place.setting("container").map(str::to_string),
            suffix: container_apps::revision_suffix(
                &plan.expected_version,
                &env.run_tag,
                &env.attempt,
            ),
        }))
    }

    fn monitor(
        &self,
        place: &super::platforms::Place,
    ) -> Option<crate::probe::evidence::azure_monitor::MonitorTarget> {
        let r = &place.resource;
        Some(
            crate::probe::evidence::azure_monitor::MonitorTarget::ContainerApp {
                app_id: crate::probe::evidence::azure_monitor::container_app_id(
                    &r.subscription,
                    &r.resource_group,
                    &r.app,
                ),
            },
        )
    }

    fn staged_in(&self, _place: &super::platforms::Place, new_revision: Option<&str>) -> String {
        match new_revision {
            Some(rev) => format!("revision {}", crate::report::md_cell(rev)),
            None => "a new revision".into(),
        }
    }

    fn live_version<'a>(
        &'a self,
        _place: &'a super::platforms::Place,
        _env: &'a super::platforms::TargetEnv,
        _endpoints: &'a crate::probe::Endpoints,
        _c: &'a Cancel,
    ) -> super::target::Fut<'a, Option<String>> {
        // Production may be several revisions: the record names none.
        Box::pin(async { None })
    }

    fn tags<'a>(
        &'a self,
        place: &'a super::platforms::Place,
        env: &'a super::platforms::TargetEnv,
        c: &'a Cancel,
    ) -> super::target::Fut<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move {
            match ContainerApps::new(env.azure(self.name())?.arm.clone(), Self::app(place))
                .get(c)
                .await
            {
                Ok(i) => Ok(i.tags),
                Err(ArmError::NotFound { .. }) => Err(format!(
                    "the container app '{}' was not found in resource group '{}'",
                    place.resource.app, place.resource.resource_group
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn rollback_handle<'a>(
        &'a self,
        place: &'a super::platforms::Place,
        env: &'a super::platforms::TargetEnv,
        version: &'a str,
        tags: &'a BTreeMap<String, String>,
        c: &'a Cancel,
    ) -> super::target::Fut<'a, Result<Option<String>, String>> {
        use super::driver::{PREVIOUS_REVISION_TAG, PREVIOUS_VERSION_TAG};
        Box::pin(async move {
            let tagged_revision = tags.get(PREVIOUS_REVISION_TAG).cloned();
            if tags.get(PREVIOUS_VERSION_TAG).map(String::as_str) == Some(version)
                && tagged_revision.is_some()
            {
                return Ok(tagged_revision);
            }
            let app = place.resource.app.as_str();
            let revisions =
                ContainerApps::new(env.azure(self.name())?.arm.clone(), Self::app(place))
                    .revisions(c)
                    .await
                    .map_err(|e| e.to_string())?;
            // A revision expedite created for that version carries it in
            // its name; the newest one wins. Its identity is checked
            // before any traffic moves.
            let slug = container_apps::revision_suffix(version, "", "");
            let bare = slug.replace('-', "");
            let mut found: Vec<_> = revisions
                .iter()
                .filter(|r| {
                    r.name.strip_prefix(&format!("{app}--")).is_some_and(|s| {
                        s == slug
                            || s.starts_with(&format!("{slug}-"))
                            || s.replace('-', "") == bare
                    })
                })
                .collect();
            found.sort_by(|a, b| b.created_time.cmp(&a.created_time));
            // None: production may already serve it (nothing to do);
            // otherwise staging says no revision is known to serve it.
            Ok(found.first().map(|r| r.name.clone()))
        })
    }
}
