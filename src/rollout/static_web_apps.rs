//! The rollout on Azure Static Web Apps: the new build is deployed to a
//! named preview environment (the `slot` setting, `staging` by default),
//! checked there, and promoted by deploying the **same zip** to production;
//! a swap back, or a rollback, deploys the previous version's zip.
//!
//! Static Web Apps has no swap and no traffic split, so:
//! - the build is named by a URL pattern (`package`, with `${version}`):
//!   the zip of any version, the previous one included, is found by
//!   replacing `${version}` — that is what makes a rollback possible;
//! - no canary (the platform says so, and `canary` is refused);
//! - promotion is a deployment, not an atomic exchange: it is sent once,
//!   and an unknown outcome is settled by reading the version production
//!   serves.
//!
//! The URL may carry a SAS token in its query: it is never printed
//! (`config::service::redacted_url`).

use std::collections::BTreeMap;

use super::Result as R;
use super::driver::{DeployPlan, Facts};
use super::platforms::{Need, Place, Platform, Setting, Takes, TargetEnv};
use super::target::{AnyTarget, Fut, Side, Target, arm_result};
use crate::azure::arm::ArmError;
use crate::cancel::Cancel;
use crate::config::service::redacted_url;
use crate::platform::static_web_apps::{PRODUCTION, StaticSiteRef, StaticWebApps};
use crate::probe::evidence::azure_monitor::MonitorTarget;
use crate::probe::evidence::{ArmRef, Arms};
use crate::probe::{Endpoints, Probe};

/// A static web app as a rollout target.
pub struct StaticWebAppsTarget {
    /// The site.
    pub app: StaticWebApps,
    /// The preview environment builds are checked in.
    pub environment: String,
    /// The build's zip, `${version}` standing for the version.
    pub package: String,
}

impl StaticWebAppsTarget {
    fn zip_of(&self, version: &str) -> String {
        self.package.replace("${version}", version)
    }

    /// Deploys `version`'s zip to `environment`, mapping what went wrong
    /// to what the driver does.
    async fn deploy(&self, environment: &str, version: &str, plan: &DeployPlan, c: &Cancel) -> R {
        let url = self.zip_of(version);
        let deadline = if environment == PRODUCTION {
            plan.swap_timeout
        } else {
            plan.staging.timeout
        };
        let title = format!("expedite {version} ({})", plan.run_id);
        match self
            .app
            .deploy_zip(environment, &url, &title, deadline, c)
            .await
        {
            Ok(()) => R::Ok,
            // The request may have been applied: the caller reads state.
            Err(ArmError::Ambiguous { detail, .. }) => R::Ambiguous(detail),
            Err(ArmError::OperationFailed { message, .. }) => R::Failed(format!(
                "Azure could not deploy {} to the {environment} environment: {message} (is the zip there, and readable by Azure?)",
                redacted_url(&url)
            )),
            Err(e) => arm_result(e),
        }
    }
}

impl Target for StaticWebAppsTarget {
    async fn preflight(&self, plan: &DeployPlan, f: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        let site = match self.app.get(c).await {
            Ok(s) => s,
            Err(ArmError::NotFound { .. }) => {
                let s = self.app.site();
                return R::Failed(format!(
                    "the static web app '{}' was not found in resource group '{}'",
                    s.name, s.resource_group
                ));
            }
            Err(e) => return arm_result(e),
        };
        f.production_host = site.default_hostname.clone();
        match self.app.environment(&self.environment, c).await {
            Ok(Some(env)) => f.slot_host = env.hostname,
            Ok(None) => {}
            Err(e) => return arm_result(e),
        }
        let now = probe
            .observe(&site.default_hostname, &plan.endpoints, Some("self"))
            .await;
        f.previous_version = now.version.clone();
        if now.version.is_none() {
            tracing::warn!(
                "production's version could not be read ({}); the previous version is unknown",
                now.describe()
            );
        }
        if now.version.as_deref() == Some(plan.expected_version.as_str())
            && now.good(&plan.endpoints, None)
        {
            return R::AlreadyDeployed;
        }
        R::Ok
    }

    async fn busy(&self, c: &Cancel) -> Result<Option<String>, R> {
        // A deployment still running into either environment would race
        // ours: wait for it.
        for name in [PRODUCTION, self.environment.as_str()] {
            match self.app.environment(name, c).await.map_err(arm_result)? {
                Some(env) if matches!(env.status.as_str(), "Uploading" | "Deploying") => {
                    return Ok(Some(format!(
                        "a deployment to the {name} environment is {}",
                        env.status.to_lowercase()
                    )));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    async fn merge_tags(&self, tags: &BTreeMap<String, String>, c: &Cancel) -> Result<(), R> {
        self.app.merge_tags(tags, c).await.map_err(arm_result)
    }

    async fn route_all(&self, to: Side, f: &Facts, c: &Cancel) -> R {
        // Production serves one build: there is no routing to change.
        self.check_routing(to, f, c).await
    }

    async fn check_routing(&self, _to: Side, _f: &Facts, _c: &Cancel) -> R {
        R::Ok
    }

    async fn stage(&self, plan: &DeployPlan, f: &mut Facts, _probe: &Probe, c: &Cancel) -> R {
        // A deploy and a rollback alike put the version's zip in the
        // preview environment: checked there before production sees it.
        match self
            .deploy(&self.environment, &plan.expected_version, plan, c)
            .await
        {
            R::Ok => {}
            // Deploying a zip again is harmless: an unknown outcome means
            // the phase runs again.
            R::Ambiguous(why) => return R::Unavailable(why),
            other => return other,
        }
        match self.app.environment(&self.environment, c).await {
            Ok(Some(env)) if !env.hostname.is_empty() => {
                f.slot_host = env.hostname;
                R::Ok
            }
            Ok(_) => R::Unavailable(format!(
                "the {} environment has no host name yet",
                self.environment
            )),
            Err(e) => arm_result(e),
        }
    }

    async fn shift(&self, percent: u8, _f: &Facts, _c: &Cancel) -> R {
        R::Failed(format!(
            "Static Web Apps cannot send {percent}% of production's traffic to a preview environment; deploy without a canary"
        ))
    }

    async fn swap(
        &self,
        plan: &DeployPlan,
        f: &Facts,
        _probe: &Probe,
        back: bool,
        c: &Cancel,
    ) -> R {
        let version = if back {
            match &f.previous_version {
                Some(v) => v.clone(),
                None => {
                    return R::Failed(
                        "the version production served before is unknown, so its zip cannot be deployed again; roll back with to-version".into(),
                    );
                }
            }
        } else {
            plan.expected_version.clone()
        };
        match self.deploy(PRODUCTION, &version, plan, c).await {
            // The deployment may have started: find out, never repeat.
            R::Unavailable(why) => R::Ambiguous(why),
            R::Cancelled => R::Ambiguous(format!(
                "the deployment of {version} to production was interrupted"
            )),
            other => other,
        }
    }

    async fn resolve_swap(
        &self,
        plan: &DeployPlan,
        f: &Facts,
        expected: Option<&str>,
        probe: &Probe,
        c: &Cancel,
    ) -> R {
        match self.app.environment(PRODUCTION, c).await {
            Ok(Some(env)) if matches!(env.status.as_str(), "Uploading" | "Deploying") => {
                return R::Unavailable(format!(
                    "production is still {}",
                    env.status.to_lowercase()
                ));
            }
            Ok(_) => {}
            Err(e) => {
                return match arm_result(e) {
                    R::Failed(why) => R::Unavailable(why),
                    other => other,
                };
            }
        }
        let now = probe
            .observe(&f.production_host, &plan.endpoints, Some("self"))
            .await;
        match (expected, now.version.as_deref()) {
            (Some(want), Some(got)) if want == got => R::Swapped,
            (Some(_), Some(_)) => R::NotSwapped,
            _ => R::Unavailable(format!(
                "production's version cannot be read yet ({})",
                now.describe()
            )),
        }
    }

    async fn retire(&self, _f: &Facts, _c: &Cancel) {
        // The preview environment keeps the rejected build for inspection,
        // as an App Service slot does; it serves no production traffic, and
        // the next deploy reuses it (environments are few: 3 on Free, 10
        // on Standard), so none piles up.
    }

    async fn keep(&self, plan: &DeployPlan, _f: &Facts, _c: &Cancel) -> Option<String> {
        // The zips stay where the build put them; a rollback finds them
        // by version.
        Some(format!(
            "a rollback to {} deploys {} again",
            plan.expected_version,
            redacted_url(&self.zip_of(&plan.expected_version))
        ))
    }

    fn arms(&self, f: &Facts) -> Arms {
        Arms {
            canary: ArmRef {
                label: self.environment.clone(),
                host: f.slot_host.clone(),
            },
            baseline: ArmRef {
                label: PRODUCTION.into(),
                host: f.production_host.clone(),
            },
        }
    }

    fn finds_build(&self) -> bool {
        true
    }

    fn rollback_command(&self, version: &str) -> String {
        let s = self.app.site();
        format!(
            "expedite rollback --platform static-web-apps --services {} --resource-group {} --package '{}' --to-version {version} --reason \"interrupted deploy\"",
            s.name,
            s.resource_group,
            redacted_url(&self.package)
        )
    }
}

/// Static Web Apps in the registry ([`super::platforms::PLATFORMS`]).
pub struct StaticWebAppsPlatform;

/// The registered Static Web Apps platform.
pub static PLATFORM: StaticWebAppsPlatform = StaticWebAppsPlatform;

impl StaticWebAppsPlatform {
    fn client(place: &Place, env: &TargetEnv) -> Result<StaticWebApps, String> {
        let r = &place.resource;
        Ok(StaticWebApps::new(
            env.azure(PLATFORM.name())?.arm.clone(),
            StaticSiteRef {
                subscription: r.subscription.clone(),
                resource_group: r.resource_group.clone(),
                name: r.app.clone(),
            },
        ))
    }
}

impl Platform for StaticWebAppsPlatform {
    fn name(&self) -> &'static str {
        "static-web-apps"
    }

    fn noun(&self) -> &'static str {
        "the static web app"
    }

    fn takes(&self) -> &'static [Takes] {
        &[
            Takes {
                setting: Setting::Slot,
                need: Need::Default("staging"),
            },
            Takes {
                setting: Setting::PackageUrl,
                need: Need::Required(
                    "the URL of the built site's zip, e.g. https://stcontoso.blob.core.windows.net/store/store-${version}.zip",
                ),
            },
        ]
    }

    fn canary(&self) -> bool {
        false
    }

    fn target(
        &self,
        place: &Place,
        _plan: &DeployPlan,
        env: &TargetEnv,
    ) -> Result<Box<dyn AnyTarget>, String> {
        Ok(Box::new(StaticWebAppsTarget {
            app: Self::client(place, env)?,
            environment: place.staging_slot().unwrap_or("staging").to_string(),
            package: place.setting("package").unwrap_or_default().to_string(),
        }))
    }

    fn monitor(&self, _place: &Place) -> Option<MonitorTarget> {
        None
    }

    fn staged_in(&self, place: &Place, _new_revision: Option<&str>) -> String {
        format!(
            "preview environment {}",
            crate::report::md_cell(place.staging_slot().unwrap_or("staging"))
        )
    }

    fn live_version<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        endpoints: &'a Endpoints,
        c: &'a Cancel,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let site = Self::client(place, env).ok()?.get(c).await.ok()?;
            Probe::new(env.http.clone())
                .observe(&site.default_hostname, endpoints, Some("self"))
                .await
                .version
        })
    }

    fn tags<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        c: &'a Cancel,
    ) -> Fut<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move {
            match Self::client(place, env)?.get(c).await {
                Ok(s) => Ok(s.tags),
                Err(ArmError::NotFound { .. }) => Err(format!(
                    "the static web app '{}' was not found in resource group '{}'",
                    place.resource.app, place.resource.resource_group
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
