//! What the rollout driver needs from a platform: one small trait, one
//! implementation per traffic/slot provider ([`super::app_service`],
//! [`super::container_apps`]).
//!
//! The driver owns the decisions, the probes, the canary watch and the
//! journal; a target only knows how to read and change *its* platform:
//! where the new build is staged, how a share of production traffic is sent
//! to it, what "swap" means, and how to read back that a change took
//! effect. Failures come back as a [`R`] that says what the driver does:
//! [`R::Unavailable`] (throttled, 5xx, busy: wait and perform the phase
//! again — never a reason to roll back), [`R::Failed`] (the app or the
//! request is wrong), [`R::Ambiguous`] (a change may have happened: read
//! state).

use std::collections::BTreeMap;
use std::future::Future;

use super::Result as R;
use super::driver::{DeployPlan, Facts, StalePolicy};
use crate::azure::arm::ArmError;
use crate::azure::auth::AuthError;
use crate::cancel::Cancel;
use crate::probe::Probe;
use crate::probe::evidence::Arms;

/// Which build all of production's traffic should go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The build production served before this deploy.
    Previous,
    /// The build this deploy brings.
    New,
}

/// What an ARM failure means for the rollout: throttling, server errors,
/// lost connections and "another operation is in progress" are the control
/// plane's trouble — wait and try the phase again; cancellation is a stop;
/// anything else is a failure the caller reports.
pub fn arm_result(e: ArmError) -> R {
    match e {
        ArmError::Unavailable { .. } | ArmError::Conflict { .. } => R::Unavailable(e.to_string()),
        ArmError::Auth(AuthError::Http(ref h))
            if h.status().is_none_or(|s| {
                s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS
            }) && !matches!(h, crate::http::HttpError::TooLarge { .. }) =>
        {
            R::Unavailable(e.to_string())
        }
        ArmError::Cancelled(_) => R::Cancelled,
        other => R::Failed(other.to_string()),
    }
}

/// What preflight makes of routing left behind by an earlier run.
pub fn stale_routing(policy: StalePolicy, stale: &[String]) -> R {
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

/// A platform the rollout can drive.
pub trait Target: Send + Sync {
    /// Reads everything before a change: hosts, what production serves
    /// (`facts.previous_version`), leftovers (→ [`R::StaleRouting`]),
    /// nothing to do (→ [`R::AlreadyDeployed`]). Changes nothing.
    fn preflight(
        &self,
        plan: &DeployPlan,
        facts: &mut Facts,
        probe: &Probe,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// A platform operation in progress that a deploy must wait for (a
    /// swap started elsewhere), if any. Errors are [`R`]s like every other
    /// answer here ([`R::Unavailable`]: ask again; [`R::Failed`]: stop).
    fn busy(&self, c: &Cancel) -> impl Future<Output = Result<Option<String>, R>> + Send;

    /// Records small facts on the resource for a later rollback (the
    /// version, the revision to go back to), adding or replacing those
    /// given and leaving the others (Azure: the resource's tags).
    fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        c: &Cancel,
    ) -> impl Future<Output = Result<(), R>> + Send;

    /// Sends all of production's traffic to one side, by name, and reads it
    /// back (App Service: no routing rule; Container Apps: 100 % to one
    /// revision).
    fn route_all(&self, to: Side, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Checks, without changing anything, that all traffic goes to `to`.
    fn check_routing(&self, to: Side, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Puts the new build where it can be checked without users: upload
    /// to the slot (or, for a rollback, make sure the slot holds the target
    /// version, re-staging it from the archive), or a new revision with no
    /// traffic (or the target revision, reactivated), ready.
    fn stage(
        &self,
        plan: &DeployPlan,
        facts: &mut Facts,
        probe: &Probe,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// Sends `percent` of production's traffic to the new build and reads
    /// it back.
    fn shift(&self, percent: u8, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Makes the new build production (`back`: makes the previous one
    /// production again, after checking it is where the swap takes it
    /// from). Sent once; an unknown outcome is [`R::Ambiguous`].
    fn swap(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        probe: &Probe,
        back: bool,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// After an unknown outcome: reads state to learn whether production
    /// now serves `expected` ([`R::Swapped`]) or not ([`R::NotSwapped`]);
    /// [`R::Unavailable`] while it cannot tell.
    fn resolve_swap(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        expected: Option<&str>,
        probe: &Probe,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// After a withdrawal or a rollback: takes the rejected build out of
    /// service where the platform allows (Container Apps deactivates the
    /// revision). Best effort; failures are warnings.
    fn retire(&self, facts: &Facts, c: &Cancel) -> impl Future<Output = ()> + Send;

    /// After a promotion: keeps what a later rollback to this version needs
    /// (App Service archives the package) and says what it kept. Best
    /// effort; failures are warnings.
    fn keep(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        c: &Cancel,
    ) -> impl Future<Output = Option<String>> + Send;

    /// The canary and the baseline, for evidence sources.
    fn arms(&self, facts: &Facts) -> Arms;

    /// Whether the target finds the new build itself (Static Web Apps: a
    /// zip URL naming the version), so the build is staged even when the
    /// plan carries no package or image.
    fn finds_build(&self) -> bool {
        false
    }

    /// The command a person runs to put production back on `version`
    /// (printed when a run is stopped before it could restore).
    fn rollback_command(&self, version: &str) -> String;
}

/// A target that could not be built (no Azure sign-in, an unusable
/// kubeconfig): every phase fails with the reason, so the rollout stops at
/// preflight — before anything is changed — and says why, through the same
/// journal and summary as any other failure.
pub struct Unbuildable(pub String);

impl Target for Unbuildable {
    async fn preflight(&self, _: &DeployPlan, _: &mut Facts, _: &Probe, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn busy(&self, _: &Cancel) -> Result<Option<String>, R> {
        Err(R::Failed(self.0.clone()))
    }
    async fn merge_tags(&self, _: &BTreeMap<String, String>, _: &Cancel) -> Result<(), R> {
        Err(R::Failed(self.0.clone()))
    }
    async fn route_all(&self, _: Side, _: &Facts, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn check_routing(&self, _: Side, _: &Facts, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn stage(&self, _: &DeployPlan, _: &mut Facts, _: &Probe, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn shift(&self, _: u8, _: &Facts, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn swap(&self, _: &DeployPlan, _: &Facts, _: &Probe, _: bool, _: &Cancel) -> R {
        R::Failed(self.0.clone())
    }
    async fn resolve_swap(
        &self,
        _: &DeployPlan,
        _: &Facts,
        _: Option<&str>,
        _: &Probe,
        _: &Cancel,
    ) -> R {
        R::Failed(self.0.clone())
    }
    async fn retire(&self, _: &Facts, _: &Cancel) {}
    async fn keep(&self, _: &DeployPlan, _: &Facts, _: &Cancel) -> Option<String> {
        None
    }
    fn arms(&self, _: &Facts) -> Arms {
        let none = || crate::probe::evidence::ArmRef {
            label: String::new(),
            host: String::new(),
        };
        Arms {
            canary: none(),
            baseline: none(),
        }
    }
    fn rollback_command(&self, version: &str) -> String {
        format!(
            "expedite rollback --to-version {version} (after fixing: {})",
            self.0
        )
    }
}

/// A boxed future, the shape [`AnyTarget`]'s methods return.
pub type Fut<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Target`] behind a pointer: what a platform's factory returns, so
/// commands drive every platform through one `Box<dyn AnyTarget>` instead
/// of telling platforms apart. Every `Target` is one (the blanket impl
/// below), and a boxed one is a `Target` again.
pub trait AnyTarget: Send + Sync {
    /// [`Target::preflight`].
    fn preflight_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a mut Facts,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R>;
    /// [`Target::busy`].
    fn busy_any<'a>(&'a self, c: &'a Cancel) -> Fut<'a, Result<Option<String>, R>>;
    /// [`Target::merge_tags`].
    fn merge_tags_any<'a>(
        &'a self,
        tags: &'a BTreeMap<String, String>,
        c: &'a Cancel,
    ) -> Fut<'a, Result<(), R>>;
    /// [`Target::route_all`].
    fn route_all_any<'a>(&'a self, to: Side, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R>;
    /// [`Target::check_routing`].
    fn check_routing_any<'a>(&'a self, to: Side, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R>;
    /// [`Target::stage`].
    fn stage_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a mut Facts,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R>;
    /// [`Target::shift`].
    fn shift_any<'a>(&'a self, percent: u8, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R>;
    /// [`Target::swap`].
    fn swap_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        probe: &'a Probe,
        back: bool,
        c: &'a Cancel,
    ) -> Fut<'a, R>;
    /// [`Target::resolve_swap`].
    fn resolve_swap_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        expected: Option<&'a str>,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R>;
    /// [`Target::retire`].
    fn retire_any<'a>(&'a self, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, ()>;
    /// [`Target::keep`].
    fn keep_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        c: &'a Cancel,
    ) -> Fut<'a, Option<String>>;
    /// [`Target::arms`].
    fn arms_any(&self, facts: &Facts) -> Arms;
    /// [`Target::finds_build`].
    fn finds_build_any(&self) -> bool;
    /// [`Target::rollback_command`].
    fn rollback_command_any(&self, version: &str) -> String;
}

impl<T: Target> AnyTarget for T {
    fn preflight_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a mut Facts,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R> {
        Box::pin(self.preflight(plan, facts, probe, c))
    }
    fn busy_any<'a>(&'a self, c: &'a Cancel) -> Fut<'a, Result<Option<String>, R>> {
        Box::pin(self.busy(c))
    }
    fn merge_tags_any<'a>(
        &'a self,
        tags: &'a BTreeMap<String, String>,
        c: &'a Cancel,
    ) -> Fut<'a, Result<(), R>> {
        Box::pin(self.merge_tags(tags, c))
    }
    fn route_all_any<'a>(&'a self, to: Side, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R> {
        Box::pin(self.route_all(to, facts, c))
    }
    fn check_routing_any<'a>(&'a self, to: Side, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R> {
        Box::pin(self.check_routing(to, facts, c))
    }
    fn stage_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a mut Facts,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R> {
        Box::pin(self.stage(plan, facts, probe, c))
    }
    fn shift_any<'a>(&'a self, percent: u8, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, R> {
        Box::pin(self.shift(percent, facts, c))
    }
    fn swap_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        probe: &'a Probe,
        back: bool,
        c: &'a Cancel,
    ) -> Fut<'a, R> {
        Box::pin(self.swap(plan, facts, probe, back, c))
    }
    fn resolve_swap_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        expected: Option<&'a str>,
        probe: &'a Probe,
        c: &'a Cancel,
    ) -> Fut<'a, R> {
        Box::pin(self.resolve_swap(plan, facts, expected, probe, c))
    }
    fn retire_any<'a>(&'a self, facts: &'a Facts, c: &'a Cancel) -> Fut<'a, ()> {
        Box::pin(self.retire(facts, c))
    }
    fn keep_any<'a>(
        &'a self,
        plan: &'a DeployPlan,
        facts: &'a Facts,
        c: &'a Cancel,
    ) -> Fut<'a, Option<String>> {
        Box::pin(self.keep(plan, facts, c))
    }
    fn arms_any(&self, facts: &Facts) -> Arms {
        self.arms(facts)
    }
    fn finds_build_any(&self) -> bool {
        self.finds_build()
    }
    fn rollback_command_any(&self, version: &str) -> String {
        self.rollback_command(version)
    }
}

impl<'t> Target for Box<dyn AnyTarget + 't> {
    async fn preflight(
        &self,
        plan: &DeployPlan,
        facts: &mut Facts,
        probe: &Probe,
        c: &Cancel,
    ) -> R {
        (**self).preflight_any(plan, facts, probe, c).await
    }
    async fn busy(&self, c: &Cancel) -> Result<Option<String>, R> {
        (**self).busy_any(c).await
    }
    async fn merge_tags(&self, tags: &BTreeMap<String, String>, c: &Cancel) -> Result<(), R> {
        (**self).merge_tags_any(tags, c).await
    }
    async fn route_all(&self, to: Side, facts: &Facts, c: &Cancel) -> R {
        (**self).route_all_any(to, facts, c).await
    }
    async fn check_routing(&self, to: Side, facts: &Facts, c: &Cancel) -> R {
        (**self).check_routing_any(to, facts, c).await
    }
    async fn stage(&self, plan: &DeployPlan, facts: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        (**self).stage_any(plan, facts, probe, c).await
    }
    async fn shift(&self, percent: u8, facts: &Facts, c: &Cancel) -> R {
        (**self).shift_any(percent, facts, c).await
    }
    async fn swap(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        probe: &Probe,
        back: bool,
        c: &Cancel,
    ) -> R {
        (**self).swap_any(plan, facts, probe, back, c).await
    }
    async fn resolve_swap(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        expected: Option<&str>,
        probe: &Probe,
        c: &Cancel,
    ) -> R {
        (**self)
            .resolve_swap_any(plan, facts, expected, probe, c)
            .await
    }
    async fn retire(&self, facts: &Facts, c: &Cancel) -> () {
        (**self).retire_any(facts, c).await
    }
    async fn keep(&self, plan: &DeployPlan, facts: &Facts, c: &Cancel) -> Option<String> {
        (**self).keep_any(plan, facts, c).await
    }
    fn arms(&self, facts: &Facts) -> Arms {
        (**self).arms_any(facts)
    }
    fn finds_build(&self) -> bool {
        (**self).finds_build_any()
    }
    fn rollback_command(&self, version: &str) -> String {
        (**self).rollback_command_any(version)
    }
}
