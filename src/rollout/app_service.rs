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
use super::target::{Side, Target};
use crate::azure::arm::ArmError;
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::platform::app_service::{self, AppService, PRODUCTION, RoutingRule};
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
            Err(e) => return R::Failed(e.to_string()),
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
            Err(e) => return R::Failed(e.to_string()),
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
        if plan.package.is_some() && slot.scm_host.is_none() {
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
            Err(e) => return R::Failed(e.to_string()),
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
        stale_routing(plan.stale, &f.stale_rules)
    }

    async fn busy(&self, c: &Cancel) -> Result<Option<String>, ArmError> {
        Ok(self.app.slot(PRODUCTION, c).await?.in_progress_operation)
    }

    async fn tags(&self, c: &Cancel) -> Result<BTreeMap<String, String>, ArmError> {
        Ok(self.app.slot(PRODUCTION, c).await?.tags)
    }

    async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        c: &Cancel,
    ) -> Result<(), ArmError> {
        self.app.merge_tags(tags, c).await
    }

    async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        c: &Cancel,
    ) -> Result<(), ArmError> {
        self.app.delete_tags(tags, c).await
    }

    async fn route_all(&self, _to: Side, _f: &Facts, c: &Cancel) -> R {
        // With no rule, production's host serves the production slot, which
        // holds whichever build is production at this point.
        if let Err(e) = self.app.set_routing_rules(&[], c).await {
            return R::Failed(e.to_string());
        }
        self.check_routing(Side::Previous, _f, c).await
    }

    async fn check_routing(&self, _to: Side, _f: &Facts, c: &Cancel) -> R {
        match self.app.routing_rules(c).await {
            Ok(r) if r.is_empty() => R::Ok,
            Ok(r) => R::Failed(format!("routing rules are set: {}", rules_text(&r))),
            Err(e) => R::Failed(e.to_string()),
        }
    }

    async fn stage(&self, plan: &DeployPlan, f: &mut Facts, c: &Cancel) -> R {
        let (Some(package), Some(scm)) = (&plan.package, &f.scm_host) else {
            return R::Failed("no package or no Kudu host".into());
        };
        match app_service::deploy_package(
            &self.http,
            &self.tokens,
            scm,
            package.clone(),
            plan.staging.timeout,
            c,
        )
        .await
        {
            Ok(()) => R::Ok,
            Err(e) => R::Failed(e.to_string()),
        }
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
            return R::Failed(e.to_string());
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
            Err(e) => R::Failed(e.to_string()),
        }
    }

    async fn swap(&self, plan: &DeployPlan, _f: &Facts, back: bool, c: &Cancel) -> R {
        match self
            .app
            .swap_into_production(&self.slot, plan.swap_timeout, c)
            .await
        {
            Ok(()) => R::Ok,
            Err(ArmError::Ambiguous { detail, .. }) => R::Ambiguous(detail),
            // A 5xx or dropped answer to the POST itself: the swap may
            // have started. Find out; never repeat it blindly.
            Err(ArmError::Unavailable { detail, .. }) => R::Ambiguous(detail),
            Err(ArmError::Cancelled(_)) => R::Ambiguous(format!(
                "{} interrupted by cancellation",
                if back { "the swap back" } else { "the swap" }
            )),
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
                        return R::Ambiguous("cancelled while a swap was in progress".into());
                    }
                }
                Ok(_) => return R::Ambiguous("a swap is still in progress".into()),
                Err(e) => return R::Ambiguous(e.to_string()),
            }
        };
        let now = probe
            .observe(&f.production_host, &plan.endpoints, Some("self"))
            .await;
        match (expected, now.version.as_deref()) {
            (Some(want), Some(got)) if want == got => R::Swapped,
            (Some(_), Some(_)) => R::NotSwapped,
            _ => {
                // No version to compare: the swap status tells.
                if info.swap_status != f.swap_status_before {
                    R::Swapped
                } else {
                    R::NotSwapped
                }
            }
        }
    }

    async fn retire(&self, _f: &Facts, _c: &Cancel) {
        // The slot keeps the rejected build for inspection; it serves no
        // production traffic once the rule is gone.
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
}

/// What preflight makes of routing left behind by an earlier run.
pub(super) fn stale_routing(policy: StalePolicy, stale: &[String]) -> R {
    if stale.is_empty() {
        return R::Ok;
    }
    match policy {
        StalePolicy::Clear => {
            tracing::warn!(
                title = "Leftover traffic routing",
                "production still routes traffic by old rules ({}); they will be removed",
                stale.join("; ")
            );
            R::StaleRouting
        }
        StalePolicy::Fail => R::Failed(format!(
            "production has leftover routing rules ({}); clear them or set on-stale-routing: clear",
            stale.join("; ")
        )),
    }
}
