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
use super::driver::{DeployPlan, Facts};
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

    /// The command a person runs to put production back on `version`
    /// (printed when a run is stopped before it could restore).
    fn rollback_command(&self, version: &str) -> String;
}
