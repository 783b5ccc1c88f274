//! The rollout on App Service: the new build is staged in a deployment slot
//! (Kudu OneDeploy), a canary share is a production routing rule
//! (`rampUpRules`) pointing at the slot, promotion is a slot swap.
//!
//! A withdrawn canary *removes* the rule rather than setting it to 0 %: the
//! `x-ms-routing-name` cookie keeps pinning users to a slot a 0 % rule still
//! names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Result as R;
use super::driver::{DeployPlan, Facts, StalePolicy};
use super::target::{Side, Target, arm_result, stale_routing};
use crate::archive::{Archive, Source};
use crate::azure::arm::ArmError;
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::lock::LockKey;
use crate::platform::app_service::{self, AppService, DeployError, PRODUCTION, RoutingRule};
use crate::probe::Probe;
use crate::probe::evidence::{ArmRef, Arms};

/// An App Service app as a rollout target.
pub struct AppServiceTarget {
    /// The app.
    pub app: AppService,
    /// Token source (for Kudu).
    pub tokens: Arc<TokenProvider>,
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// The slot the new build is staged in.
    pub slot: String,
    /// Where packages are kept for rollbacks, if anywhere.
    pub archive: Option<Archive>,
}

fn rules_text(rules: &[RoutingRule]) -> String {
    rules
        .iter()
        .map(|r| {
            format!(
                "{} {}% → {}",
                r.name, r.reroute_percentage, r.action_host_name
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn deploy_result(e: DeployError) -> R {
    match e {
        DeployError::Arm(a) => arm_result(a),
        // Kudu busy: another deployment to the slot; wait for it.
        DeployError::Busy { .. } => R::Unavailable(e.to_string()),
        DeployError::Http(ref h)
            if h.status()
                .is_some_and(|s| s.is_server_error() || s.as_u16() == 429) =>
        {
            R::Unavailable(e.to_string())
        }
        other => R::Failed(other.to_string()),
    }
}

impl AppServiceTarget {
    fn key(&self) -> LockKey {
        let s = self.app.site();
        LockKey::azure(&s.subscription, &s.resource_group, &s.app)
    }

    /// Before a slot holding `version` is overwritten: archive its content
    /// when the archive lacks it (best effort — a warning says what a later
    /// rollback to it will need).
    async fn keep_slot(&self, version: &str, scm: &str, f: &mut Facts, c: &Cancel) {
        let Some(archive) = &self.archive else {
            return;
        };
        let key = self.key();
        match archive.has(&key, version).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cannot look up {version} in the package archive ({e})");
                return;
            }
        }
        let kept = match app_service::download_site_zip(&self.http, &self.tokens, scm, c).await {
            Ok(zip) => archive
                .put(&key, version, &zip, Source::SlotContent)
                .await
                .map(|()| zip.len())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match kept {
            Ok(n) => f.kept.push(format!(
                "{version} (what slot '{}' held, {n} bytes) archived in {} before the upload",
                self.slot,
                archive.describe(&key)
            )),
            Err(e) => tracing::warn!(
                "could not archive {version} from slot '{}' before overwriting it ({e}); a rollback to {version} will need its package",
                self.slot
            ),
        }
    }

    async fn upload(&self, plan: &DeployPlan, package: Vec<u8>, scm: &str, c: &Cancel) -> R {
        match app_service::deploy_package(
            &self.http,
            &self.tokens,
            scm,
            package,
            plan.staging.timeout,
            c,
        )
        .await
        {
            Ok(()) => R::Ok,
            Err(e) => deploy_result(e),
        }
    }
}

impl Target for AppServiceTarget {
    async fn preflight(&self, plan: &DeployPlan, f: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        let prod = match self.app.slot(PRODUCTION, c).await {
            Ok(p) => p,
            Err(ArmError::NotFound { .. }) => {
                return R::Failed(format!(
                    "the web app '{}' was not found in resource group '{}'",
                    self.app.site().app,
                    self.app.site().resource_group
                ));
            }
            Err(e) => return arm_result(e),
        };
        let slot = match self.app.slot(&self.slot, c).await {
            Ok(s) => s,
            Err(ArmError::NotFound { .. }) => {
                let known = self.app.slot_names(c).await.unwrap_or_default();
                return R::Failed(format!(
                    "the slot '{}' does not exist on '{}' (slots: {})",
                    self.slot,
                    self.app.site().app,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            Err(e) => return arm_result(e),
        };
        for s in [&prod, &slot] {
            if s.state != "Running" {
                return R::Failed(format!(
                    "{} is {}, not Running; start it first",
                    s.slot, s.state
                ));
            }
        }
        if let Some(target) = prod
            .target_swap_slot
            .as_ref()
            .or(slot.target_swap_slot.as_ref())
        {
            return R::Failed(format!(
                "a swap with preview is pending (target '{target}'): complete it or reset it (POST …/resetSlotConfig) before deploying"
            ));
        }
        f.production_host = prod.default_host_name.clone();
        f.slot_host = slot.default_host_name.clone();
        f.scm_host = slot.scm_host.clone();
        f.swap_status_before = prod.swap_status.clone();
        if (plan.package.is_some() || plan.rollback) && slot.scm_host.is_none() {
            return R::Failed(format!(
                "the slot '{}' has no Kudu (SCM) host to deploy the package to",
                self.slot
            ));
        }
        let now = probe
            .observe(&prod.default_host_name, &plan.endpoints, Some("self"))
            .await;
        f.previous_version = now.version.clone();
        if now.version.is_none() {
            tracing::warn!(
                "production's version could not be read ({}); the previous version is unknown",
                now.describe()
            );
        }
        let rules = match self.app.routing_rules(c).await {
            Ok(r) => r,
            Err(e) => return arm_result(e),
        };
        f.stale_rules = rules
            .iter()
            .map(|r| {
                format!(
                    "{} {}% → {}",
                    r.name, r.reroute_percentage, r.action_host_name
                )
            })
            .collect();
        if now.version.as_deref() == Some(plan.expected_version.as_str())
            && rules.is_empty()
            && now.good(&plan.endpoints, None)
        {
            return R::AlreadyDeployed;
        }
        // A rollback clears leftovers whatever the policy: it is the way
        // back to one version at 100 %.
        let policy = if plan.rollback {
            StalePolicy::Clear
        } else {
            plan.stale
        };
        stale_routing(policy, &f.stale_rules)
    }

    async fn busy(&self, c: &Cancel) -> Result<Option<String>, R> {
        let prod = self.app.slot(PRODUCTION, c).await.map_err(arm_result)?;
        Ok(prod.in_progress_operation)
    }

    async fn merge_tags(&self, tags: &BTreeMap<String, String>, c: &Cancel) -> Result<(), R> {
        self.app.merge_tags(tags, c).await.map_err(arm_result)
    }

    async fn route_all(&self, _to: Side, f: &Facts, c: &Cancel) -> R {
        // With no rule, production's host serves the production slot, which
        // holds whichever build is production at this point.
        if let Err(e) = self.app.set_routing_rules(&[], c).await {
            return arm_result(e);
        }
        self.check_routing(Side::Previous, f, c).await
    }

    async fn check_routing(&self, _to: Side, _f: &Facts, c: &Cancel) -> R {
        match self.app.routing_rules(c).await {
            Ok(r) if r.is_empty() => R::Ok,
            Ok(r) => R::Failed(format!("routing rules are set: {}", rules_text(&r))),
            Err(e) => arm_result(e),
        }
    }

    async fn stage(&self, plan: &DeployPlan, f: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        let Some(scm) = f.scm_host.clone() else {
            return R::Failed(format!("the slot '{}' has no Kudu host", self.slot));
        };
        let held = probe.observe(&f.slot_host, &plan.endpoints, None).await;
        if plan.rollback {
            let target = plan.expected_version.as_str();
            if held.good(&plan.endpoints, Some(target)) {
                tracing::info!("slot '{}' holds {target}: nothing to re-stage", self.slot);
                return R::Ok;
            }
            let key = self.key();
            let archived = match &self.archive {
                Some(a) => a.get(&key, target).await,
                None => Ok(None),
            };
            return match archived {
                Ok(Some((entry, bytes))) => {
                    tracing::info!(
                        "slot '{}' holds {}; re-staging {target} from the package archive ({} bytes, archived {})",
                        self.slot,
                        held.version.as_deref().unwrap_or("an unknown version"),
                        entry.bytes,
                        entry.at
                    );
                    f.kept.push(format!(
                        "{target} re-staged in slot '{}' from the package archive",
                        self.slot
                    ));
                    self.upload(plan, bytes, &scm, c).await
                }
                Ok(None) => R::Failed(format!(
                    "production serves {} and slot '{}' holds {}, and no package of {target} is archived{}; deploy {target} with its package instead",
                    f.previous_version
                        .as_deref()
                        .unwrap_or("an unknown version"),
                    self.slot,
                    held.version.as_deref().unwrap_or("an unknown version"),
                    match &self.archive {
                        Some(a) => format!(" in {}", a.describe(&key)),
                        None =>
                            " (there is no archive without a GitHub token and repository)".into(),
                    }
                )),
                // GitHub down or throttling: wait; anything else is final.
                Err(e) if e.retryable() => R::Unavailable(e.to_string()),
                Err(e) => R::Failed(e.to_string()),
            };
        }
        let Some(package) = &plan.package else {
            return R::Failed("no package to upload".into());
        };
        // Nothing lost: the version the upload replaces stays reachable.
        if let Some(v) = held.version.as_deref()
            && v != plan.expected_version
        {
            self.keep_slot(v, &scm, f, c).await;
        }
        self.upload(plan, package.clone(), &scm, c).await
    }

    async fn shift(&self, percent: u8, f: &Facts, c: &Cancel) -> R {
        let rule = RoutingRule {
            action_host_name: f.slot_host.clone(),
            reroute_percentage: f64::from(percent),
            name: self.slot.clone(),
        };
        if let Err(e) = self
            .app
            .set_routing_rules(std::slice::from_ref(&rule), c)
            .await
        {
            return arm_result(e);
        }
        match self.app.routing_rules(c).await {
            Ok(r)
                if r.len() == 1
                    && r[0]
                        .action_host_name
                        .eq_ignore_ascii_case(&rule.action_host_name)
                    && (r[0].reroute_percentage - rule.reroute_percentage).abs() < 1e-9 =>
            {
                R::Ok
            }
            Ok(r) => R::Failed(format!(
                "after setting {percent}% to {}, production routes: {}",
                self.slot,
                if r.is_empty() {
                    "no rule".into()
                } else {
                    rules_text(&r)
                }
            )),
            Err(e) => arm_result(e),
        }
    }

    async fn swap(&self, plan: &DeployPlan, f: &Facts, probe: &Probe, back: bool, c: &Cancel) -> R {
        if back && let Some(previous) = &f.previous_version {
            // A swap back only helps when the slot holds the previous build.
            let held = probe.observe(&f.slot_host, &plan.endpoints, None).await;
            if let Some(v) = held.version.as_deref()
                && v != previous
            {
                return R::Failed(format!(
                    "slot '{}' holds {v}, not the previous {previous}, so swapping would not restore it: {}",
                    self.slot,
                    self.rollback_command(previous)
                ));
            }
        }
        match self
            .app
            .swap_into_production(&self.slot, plan.swap_timeout, c)
            .await
        {
            Ok(()) => R::Ok,
            Err(ArmError::Ambiguous { detail, .. }) => R::Ambiguous(detail),
            // A 5xx or dropped answer to the POST itself, or to the polls:
            // the swap may have started. Find out; never repeat it blindly.
            Err(ArmError::Unavailable { detail, .. }) => R::Ambiguous(detail),
            Err(ArmError::Cancelled(_)) => R::Ambiguous(format!(
                "{} interrupted by cancellation",
                if back { "the swap back" } else { "the swap" }
            )),
            // Another operation holds the site: nothing was swapped.
            Err(e @ ArmError::Conflict { .. }) => R::Unavailable(e.to_string()),
            Err(e) => R::Failed(e.to_string()),
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
        let deadline = Instant::now() + plan.swap_timeout;
        let info = loop {
            match self.app.slot(PRODUCTION, c).await {
                Ok(p) if p.in_progress_operation.is_none() => break p,
                Ok(_) if Instant::now() < deadline => {
                    if c.sleep(Duration::from_secs(2)).await.is_err() {
                        return R::Cancelled;
                    }
                }
                // Still swapping: the driver waits longer, never acts.
                Ok(_) => return R::Unavailable("a swap is still in progress".into()),
                Err(e) => {
                    return match arm_result(e) {
                        R::Failed(why) => R::Unavailable(why),
                        other => other,
                    };
                }
            }
        };
        let now = probe
            .observe(&f.production_host, &plan.endpoints, Some("self"))
            .await;
        match (expected, now.version.as_deref()) {
            (Some(want), Some(got)) if want == got => R::Swapped,
            (Some(_), Some(_)) => R::NotSwapped,
            // The forward swap, with production's version unreadable: the
            // swap status tells (it changes with every completed swap).
            (Some(want), None) if want == plan.expected_version => {
                if info.swap_status != f.swap_status_before {
                    R::Swapped
                } else {
                    R::NotSwapped
                }
            }
            // A swap back to a version nobody could read: the status cannot
            // tell one swap from two, and guessing could leave the new
            // build serving. A human looks.
            _ => R::Failed(format!(
                "cannot tell whether the swap back happened: production answers {} and the version it served before is unknown",
                now.describe()
            )),
        }
    }

    async fn retire(&self, _f: &Facts, _c: &Cancel) {
        // The slot keeps the rejected build for inspection; it serves no
        // production traffic once the rule is gone.
    }

    async fn keep(&self, plan: &DeployPlan, _f: &Facts, _c: &Cancel) -> Option<String> {
        let (Some(archive), Some(package)) = (&self.archive, &plan.package) else {
            return None;
        };
        let key = self.key();
        match archive
            .put(&key, &plan.expected_version, package, Source::Deployed)
            .await
        {
            Ok(()) => Some(format!(
                "{} ({} bytes) archived in {}",
                plan.expected_version,
                package.len(),
                archive.describe(&key)
            )),
            Err(e) => {
                tracing::warn!(
                    "could not archive the package of {} ({e}); a rollback to it needs a slot that holds it",
                    plan.expected_version
                );
                None
            }
        }
    }

    fn arms(&self, f: &Facts) -> Arms {
        Arms {
            canary: ArmRef {
                label: self.slot.clone(),
                host: f.slot_host.clone(),
            },
            baseline: ArmRef {
                label: PRODUCTION.into(),
                host: f.production_host.clone(),
            },
        }
    }

    fn rollback_command(&self, version: &str) -> String {
        let s = self.app.site();
        format!(
            "expedite rollback --services {} --resource-group {} --slot {} --to-version {version} --reason \"interrupted deploy\"",
            s.app, s.resource_group, self.slot
        )
    }
}

/// App Service in the registry ([`super::platforms::PLATFORMS`]).
pub struct AppServicePlatform;

/// The registered App Service platform.
pub static PLATFORM: AppServicePlatform = AppServicePlatform;

impl AppServicePlatform {
    fn site(place: &super::platforms::Place) -> app_service::SiteRef {
        let r = &place.resource;
        app_service::SiteRef {
            subscription: r.subscription.clone(),
            resource_group: r.resource_group.clone(),
            app: r.app.clone(),
        }
    }
}

impl super::platforms::Platform for AppServicePlatform {
    fn name(&self) -> &'static str {
        "app-service"
    }

    fn noun(&self) -> &'static str {
        "the App Service web app"
    }

    fn takes(&self) -> &'static [super::platforms::Takes] {
        use super::platforms::{Need, Setting, Takes};
        &[
            Takes {
                setting: Setting::Slot,
                need: Need::Default("staging"),
            },
            Takes {
                setting: Setting::Package,
                need: Need::Optional,
            },
        ]
    }

    fn target(
        &self,
        place: &super::platforms::Place,
        _plan: &DeployPlan,
        env: &super::platforms::TargetEnv,
    ) -> Result<Box<dyn super::target::AnyTarget>, String> {
        let az = env.azure(self.name())?;
        Ok(Box::new(AppServiceTarget {
            app: AppService::new(az.arm.clone(), Self::site(place)),
            tokens: az.tokens.clone(),
            http: env.http.clone(),
            slot: place.staging_slot().unwrap_or("staging").to_string(),
            archive: env.archive.clone(),
        }))
    }

    fn monitor(
        &self,
        place: &super::platforms::Place,
    ) -> Option<crate::probe::evidence::azure_monitor::MonitorTarget> {
        let r = &place.resource;
        Some(
            crate::probe::evidence::azure_monitor::MonitorTarget::AppService {
                site_id: crate::probe::evidence::azure_monitor::web_site_id(
                    &r.subscription,
                    &r.resource_group,
                    &r.app,
                ),
            },
        )
    }

    fn staged_in(&self, place: &super::platforms::Place, new_revision: Option<&str>) -> String {
        use crate::report::md_cell;
        match new_revision {
            Some(rev) => format!("revision {}", md_cell(rev)),
            None => format!(
                "slot {}",
                md_cell(place.staging_slot().unwrap_or("staging"))
            ),
        }
    }

    fn live_version<'a>(
        &'a self,
        place: &'a super::platforms::Place,
        env: &'a super::platforms::TargetEnv,
        endpoints: &'a crate::probe::Endpoints,
        c: &'a Cancel,
    ) -> super::target::Fut<'a, Option<String>> {
        Box::pin(async move {
            let app = AppService::new(env.azure.as_ref()?.arm.clone(), Self::site(place));
            let prod = app.slot(PRODUCTION, c).await.ok()?;
            Probe::new(env.http.clone())
                .observe(&prod.default_host_name, endpoints, Some("self"))
                .await
                .version
        })
    }

    fn tags<'a>(
        &'a self,
        place: &'a super::platforms::Place,
        env: &'a super::platforms::TargetEnv,
        c: &'a Cancel,
    ) -> super::target::Fut<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move {
            let app = AppService::new(env.azure(self.name())?.arm.clone(), Self::site(place));
            match app.slot(PRODUCTION, c).await {
                Ok(p) => Ok(p.tags),
                Err(ArmError::NotFound { .. }) => Err(format!(
                    "the web app '{}' was not found in resource group '{}' (a container app? give platform: container-apps)",
                    place.resource.app, place.resource.resource_group
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
