//! What the rollout driver needs from a platform: one small trait, one
//! implementation per traffic/slot provider ([`super::app_service`],
//! [`super::container_apps`]).
//!
//! The driver owns the decisions, the lease, the probes, the canary watch
//! and the journal; a target only knows how to read and change *its*
//! platform: where the new build is staged, how a share of production
//! traffic is sent to it, what "swap" means, and how to read back that a
//! change took effect.

use std::collections::BTreeMap;
use std::future::Future;

use super::Result as R;
use super::driver::{DeployPlan, Facts};
use crate::azure::arm::ArmError;
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
    /// swap), if any.
    fn busy(&self, c: &Cancel) -> impl Future<Output = Result<Option<String>, ArmError>> + Send;

    /// The resource's tags (the lease lives there).
    fn tags(
        &self,
        c: &Cancel,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, ArmError>> + Send;

    /// Adds or replaces the given tags, leaving the others.
    fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        c: &Cancel,
    ) -> impl Future<Output = Result<(), ArmError>> + Send;

    /// Deletes the given tags where name and value match.
    fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        c: &Cancel,
    ) -> impl Future<Output = Result<(), ArmError>> + Send;

    /// Sends all of production's traffic to one side, by name, and reads it
    /// back (App Service: no routing rule; Container Apps: 100 % to one
    /// revision).
    fn route_all(&self, to: Side, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Checks, without changing anything, that all traffic goes to `to`.
    fn check_routing(&self, to: Side, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Puts the new build where it can be checked without users: upload
    /// to the slot, or a new revision with no traffic, ready.
    fn stage(
        &self,
        plan: &DeployPlan,
        facts: &mut Facts,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// Sends `percent` of production's traffic to the new build and reads
    /// it back.
    fn shift(&self, percent: u8, facts: &Facts, c: &Cancel) -> impl Future<Output = R> + Send;

    /// Makes the new build production (`back`: makes the previous one
    /// production again). Sent once; an unknown outcome is
    /// [`R::Ambiguous`].
    fn swap(
        &self,
        plan: &DeployPlan,
        facts: &Facts,
        back: bool,
        c: &Cancel,
    ) -> impl Future<Output = R> + Send;

    /// After an unknown outcome: reads state to learn whether production
    /// now serves `expected` ([`R::Swapped`]) or not ([`R::NotSwapped`]).
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

    /// The canary and the baseline, for evidence sources.
    fn arms(&self, facts: &Facts) -> Arms;
}
