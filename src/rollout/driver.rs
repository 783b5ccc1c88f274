//! The I/O half of the rollout: performs each [`Phase`] on a [`Target`]
//! and reports a [`Result`](super::Result) to [`step`](super::step),
//! writing the journal after every step.
//!
//! Every phase that changes something checks cancellation first, and every
//! outcome that is not certain is found out by reading state (slot swap
//! status, what production serves), never by repeating an action. The
//! lease, the probes and the canary watch are the same on every platform;
//! the [`Target`] does the platform's part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::canary::{CanaryPlan, SourceClients, StepRecord, Watch};
use super::target::{Side, Target};
use super::{Outcome, Phase, Result as R, State, step};
use crate::cancel::Cancel;
use crate::platform::app_service::SwapStatus;
use crate::probe::{Endpoints, Probe, Schedule};

/// What to do about routing rules left behind by an earlier canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StalePolicy {
    /// Remove them (with a warning): after the swap they would send users
    /// to the old build.
    Clear,
    /// Stop before changing anything.
    Fail,
}

/// Everything a deploy needs to know, validated.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    /// The deployment slot to stage in.
    pub slot: String,
    /// The package to upload to the slot, if any.
    pub package: Option<Vec<u8>>,
    /// Health and version endpoints.
    pub endpoints: Endpoints,
    /// The version the new build must report.
    pub expected_version: String,
    /// Staging checks.
    pub staging: Schedule,
    /// How long production must stay good after the swap.
    pub verify_window: Duration,
    /// Time between production checks during the window.
    pub verify_interval: Duration,
    /// Independent requests at the end of the window, all of which must
    /// reach the new version.
    pub verify_samples: usize,
    /// Bound on the swap (and the swap back).
    pub swap_timeout: Duration,
    /// Stale routing rules policy.
    pub stale: StalePolicy,
    /// How long to wait for another deploy of the same app to finish.
    pub lock_wait: Duration,
    /// This run's identity in the lease (e.g. `owner/repo#run_id.attempt`).
    pub run_id: String,
    /// Where the journal goes (for the post stage).
    pub journal: Option<PathBuf>,
    /// The container image to deploy (Container Apps).
    pub image: Option<String>,
    /// Canary steps and breaker, if any.
    pub canary: Option<CanaryPlan>,
}

/// Facts gathered along the way, kept in the journal and the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Production's host.
    pub production_host: String,
    /// The slot's host.
    pub slot_host: String,
    /// The slot's Kudu host.
    pub scm_host: Option<String>,
    /// What production served before (the last known good version).
    pub previous_version: Option<String>,
    /// Rules found in preflight.
    pub stale_rules: Vec<String>,
    /// The swap status before our swap, to recognise our own swap later.
    pub swap_status_before: Option<SwapStatus>,
    /// What sampling production found at the end (version → requests).
    pub production_sample: BTreeMap<String, usize>,
    /// What the staging slot answered to the last check.
    #[serde(default)]
    pub staging_answer: Option<String>,
    /// Container Apps: the revision production served before.
    #[serde(default)]
    pub stable_revision: Option<String>,
    /// Container Apps: the stable revision's own host (the baseline arm).
    #[serde(default)]
    pub stable_host: Option<String>,
    /// Container Apps: the revision this deploy created.
    #[serde(default)]
    pub new_revision: Option<String>,
    /// Each canary step's evidence and decision.
    #[serde(default)]
    pub canary_steps: Vec<StepRecord>,
}

/// One phase's record, for the summary's table and timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// Milliseconds since the rollout started.
    pub started_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// What it found.
    pub result: String,
}

/// The journal: written after every step, read by the post stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The state machine's state.
    pub state: State,
    /// Facts.
    pub facts: Facts,
    /// Phase records.
    pub phases: Vec<PhaseRecord>,
    /// The lease value we hold, if any.
    pub lease: Option<String>,
}

/// The site tag that serialises deploys of one app.
pub const LEASE_TAG: &str = "expedite-deploy-lease";

/// The site tag recording what production served before expedite's last
/// promotion: `rollback`'s default target.
pub const PREVIOUS_VERSION_TAG: &str = "expedite-previous-version";

/// Container Apps: the revision that served before expedite's last
/// promotion (traffic goes back to it by name).
pub const PREVIOUS_REVISION_TAG: &str = "expedite-previous-revision";

/// Runs a rollout on a [`Target`].
pub struct Rollout<T: Target> {
    /// The platform.
    pub target: T,
    /// Probes.
    pub probe: Probe,
    /// The plan.
    pub plan: DeployPlan,
    /// Clients the canary's evidence sources use.
    pub sources: Option<SourceClients>,
    /// Cancellation.
    pub cancel: Cancel,
}

impl<T: Target> Rollout<T> {
    /// Runs to the end and returns the journal.
    pub async fn run(&self) -> Journal {
        let started = Instant::now();
        let steps = self
            .plan
            .canary
            .as_ref()
            .map(|c| c.steps.clone())
            .unwrap_or_default();
        let mut journal = Journal {
            state: State::with_canary(
                self.plan.package.is_some() || self.plan.image.is_some(),
                steps,
            ),
            facts: Facts::default(),
            phases: Vec::new(),
            lease: None,
        };
        let mut watch: Option<Watch> = None;
        // The state machine terminates on every path (tested exhaustively);
        // the bound is a second guard against a driver bug.
        for _ in 0..128 {
            if journal.state.finished() {
                break;
            }
            let phase = journal.state.phase;
            let t = Instant::now();
            tracing::info!("phase {phase:?}");
            let result = if self.cancel.is_cancelled() && changes(phase) {
                R::Cancelled
            } else {
                self.perform(phase, &mut journal, &mut watch).await
            };
            journal.phases.push(PhaseRecord {
                phase,
                started_ms: (t - started).as_millis() as u64,
                duration_ms: t.elapsed().as_millis() as u64,
                result: match &result {
                    R::Failed(w) => format!("failed: {w}"),
                    R::Ambiguous(w) => format!("unknown: {w}"),
                    R::Tripped(w) => format!("tripped: {w}"),
                    R::Inconclusive(w) => format!("inconclusive: {w}"),
                    other => format!("{other:?}").to_lowercase(),
                },
            });
            if let R::Failed(why) = &result {
                tracing::warn!("{phase:?}: {why}");
            }
            journal.state = step(journal.state.clone(), result);
            self.write_journal(&journal);
        }
        // Probes stop with the watch.
        drop(watch);
        journal
    }

    fn write_journal(&self, journal: &Journal) {
        let Some(path) = &self.plan.journal else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(journal).map_err(std::io::Error::other)?,
            )?;
            // Atomic replace: the post stage never reads half a journal.
            std::fs::rename(tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot write the journal {}: {e}", path.display());
        }
    }

    async fn perform(&self, phase: Phase, j: &mut Journal, watch: &mut Option<Watch>) -> R {
        let c = &self.cancel;
        let t = &self.target;
        match phase {
            Phase::Preflight => {
                let r = t.preflight(&self.plan, &mut j.facts, &self.probe, c).await;
                if matches!(r, R::Ok | R::StaleRouting)
                    && let Err(why) = self.wait_for_other_operations().await
                {
                    return R::Failed(why);
                }
                r
            }
            Phase::AcquireLease => self.acquire_lease(j).await,
            Phase::ClearStaleRouting => t.route_all(Side::Previous, &j.facts, c).await,
            Phase::ClearRouting => t.route_all(Side::New, &j.facts, c).await,
            Phase::ClearRoutingAfterRollback => t.route_all(Side::Previous, &j.facts, c).await,
            Phase::Upload => t.stage(&self.plan, &mut j.facts, c).await,
            Phase::CheckStaging => self.check_staging(j).await,
            Phase::CanaryShift => t.shift(j.state.canary_percent(), &j.facts, c).await,
            Phase::CanaryWatch => self.canary_watch(j, watch).await,
            Phase::CanaryAbort => {
                // Stop the probes first: the canary is going away.
                drop(watch.take());
                t.route_all(Side::Previous, &j.facts, c).await
            }
            Phase::VerifyCanaryAbort => {
                let r = self.verify_rollback(j).await;
                if r == R::Ok {
                    t.retire(&j.facts, c).await;
                }
                r
            }
            Phase::Swap => {
                drop(watch.take());
                t.swap(&self.plan, &j.facts, false, c).await
            }
            Phase::SwapBack => t.swap(&self.plan, &j.facts, true, c).await,
            Phase::ResolveSwap => {
                t.resolve_swap(
                    &self.plan,
                    &j.facts,
                    Some(self.plan.expected_version.as_str()),
                    &self.probe,
                    c,
                )
                .await
            }
            Phase::ResolveSwapBack => {
                let previous = j.facts.previous_version.clone();
                t.resolve_swap(&self.plan, &j.facts, previous.as_deref(), &self.probe, c)
                    .await
            }
            Phase::VerifyProduction => self.verify_production(j).await,
            Phase::VerifyRollback => {
                let r = self.verify_rollback(j).await;
                if r == R::Ok {
                    t.retire(&j.facts, c).await;
                }
                r
            }
            Phase::ReleaseLease => self.release_lease(j).await,
            Phase::Done => R::Ok,
        }
    }

    async fn canary_watch(&self, j: &mut Journal, watch: &mut Option<Watch>) -> R {
        let (Some(plan), Some(clients)) = (&self.plan.canary, &self.sources) else {
            return R::Failed("a canary step without a canary plan".into());
        };
        if watch.is_none() {
            let arms = self.target.arms(&j.facts);
            match Watch::start(plan, clients, &arms, &self.cancel).await {
                Ok(w) => *watch = Some(w),
                Err(why) => return R::Failed(why),
            }
        }
        let Some(w) = watch.as_mut() else {
            return R::Failed("the canary watch did not start".into());
        };
        let percent = j.state.canary_percent();
        let (result, record) = w.step(plan, percent, &self.cancel).await;
        tracing::info!("canary {percent}%: {} — {}", record.decision, record.detail);
        j.facts.canary_steps.push(record);
        result
    }

    /// Waits (up to the lock bound) while another run holds the lease or a
    /// platform operation (a swap) is in progress.
    async fn wait_for_other_operations(&self) -> std::result::Result<(), String> {
        let started = Instant::now();
        loop {
            let tags = self
                .target
                .tags(&self.cancel)
                .await
                .map_err(|e| e.to_string())?;
            let lease = tags
                .get(LEASE_TAG)
                .and_then(|v| Lease::parse(v))
                .filter(|l| l.live() && l.run != self.plan.run_id);
            let busy = if lease.is_none() {
                self.target
                    .busy(&self.cancel)
                    .await
                    .map_err(|e| e.to_string())?
            } else {
                None
            };
            let what = match (&lease, &busy) {
                (Some(l), _) => format!(
                    "another deploy ({}) holds the lease until {}",
                    l.run, l.expires
                ),
                (None, Some(op)) => format!("a site operation ({op}) is in progress"),
                (None, None) => return Ok(()),
            };
            if started.elapsed() >= self.plan.lock_wait {
                return Err(format!(
                    "{what}; waited {}s (lock-wait)",
                    self.plan.lock_wait.as_secs()
                ));
            }
            tracing::info!("{what}; waiting");
            self.cancel
                .sleep(Duration::from_secs(2).min(self.plan.lock_wait))
                .await
                .map_err(|e| e.to_string())?;
        }
    }

    async fn acquire_lease(&self, j: &mut Journal) -> R {
        let c = &self.cancel;
        let canary = self.plan.canary.as_ref().map_or(Duration::ZERO, |p| {
            (p.window + p.inconclusive_wait) * p.steps.len() as u32
        });
        let lease = Lease::new(
            &self.plan.run_id,
            self.plan.swap_timeout
                + self.plan.verify_window
                + self.plan.staging.timeout
                + canary
                + Duration::from_secs(600),
        );
        let ours = BTreeMap::from([(LEASE_TAG.to_string(), lease.render())]);
        if let Err(e) = self.target.merge_tags(&ours, c).await {
            return R::Failed(e.to_string());
        }
        // Last writer wins on tags: read back to learn whether we do.
        match self.target.tags(c).await {
            Ok(tags) if tags.get(LEASE_TAG) == Some(&lease.render()) => {
                j.lease = Some(lease.render());
                R::Ok
            }
            Ok(tags) => R::Failed(format!(
                "another deploy took the lease first ({})",
                tags.get(LEASE_TAG).cloned().unwrap_or_default()
            )),
            Err(e) => R::Failed(e.to_string()),
        }
    }

    async fn release_lease(&self, j: &mut Journal) -> R {
        // After a promotion, record the version (and on Container Apps the
        // revision) to roll back to.
        if j.state.outcome == Some(Outcome::Promoted)
            && let Some(previous) = &j.facts.previous_version
        {
            let mut tag = BTreeMap::from([(PREVIOUS_VERSION_TAG.to_string(), previous.clone())]);
            if let Some(revision) = &j.facts.stable_revision {
                tag.insert(PREVIOUS_REVISION_TAG.to_string(), revision.clone());
            }
            if let Err(e) = self.target.merge_tags(&tag, &self.cancel).await {
                tracing::warn!(
                    "could not record the previous version {previous} for rollback ({e}); rollback will need to-version"
                );
            }
        }
        let Some(ours) = j.lease.clone() else {
            return R::Ok;
        };
        // Delete matches the value too: a lease someone else took after ours
        // expired is left alone.
        let tag = BTreeMap::from([(LEASE_TAG.to_string(), ours)]);
        match self.target.delete_tags(&tag, &self.cancel).await {
            Ok(()) => j.lease = None,
            Err(e) => {
                tracing::warn!("could not release the deploy lease ({e}); it expires by itself")
            }
        }
        R::Ok
    }

    async fn check_staging(&self, j: &mut Journal) -> R {
        let seen = match self
            .probe
            .wait_until_good(
                &j.facts.slot_host,
                &self.plan.endpoints,
                Some(&self.plan.expected_version),
                None,
                self.plan.staging,
                &self.cancel,
            )
            .await
        {
            Ok(s) => s,
            Err(_) => return R::Cancelled,
        };
        if let Some(last) = seen.last() {
            j.facts.staging_answer =
                Some(format!("{} after {} check(s)", last.describe(), seen.len()));
        }
        match seen.last() {
            Some(o) if o.good(&self.plan.endpoints, Some(&self.plan.expected_version)) => R::Ok,
            Some(o) => R::Failed(format!(
                "staging ({}) is not ready after {} checks: {} (expected health {} and version {})",
                self.plan.slot,
                seen.len(),
                o.describe(),
                self.plan.endpoints.health_status,
                self.plan.expected_version
            )),
            None => R::Failed("staging was not checked".into()),
        }
    }

    async fn verify_production(&self, j: &mut Journal) -> R {
        let started = Instant::now();
        let want = self.plan.expected_version.as_str();
        loop {
            let o = self
                .probe
                .observe(&j.facts.production_host, &self.plan.endpoints, None)
                .await;
            if !o.good(&self.plan.endpoints, Some(want)) {
                return R::Failed(format!(
                    "production check failed: {} (expected version {want})",
                    o.describe()
                ));
            }
            if started.elapsed() + self.plan.verify_interval > self.plan.verify_window {
                break;
            }
            if self.cancel.sleep(self.plan.verify_interval).await.is_err() {
                return R::Cancelled;
            }
        }
        if let R::Failed(why) = self
            .target
            .check_routing(Side::New, &j.facts, &self.cancel)
            .await
        {
            return R::Failed(format!("during verification: {why}"));
        }
        if let Some(path) = &self.plan.endpoints.version_path {
            let sample = self
                .probe
                .sample_versions(&j.facts.production_host, path, self.plan.verify_samples)
                .await;
            j.facts.production_sample = sample.clone();
            let good = sample.get(want).copied().unwrap_or(0);
            if good != self.plan.verify_samples {
                return R::Failed(format!(
                    "{good} of {} production requests reached {want}: {sample:?}",
                    self.plan.verify_samples
                ));
            }
        }
        R::Ok
    }

    async fn verify_rollback(&self, j: &mut Journal) -> R {
        let want = j.facts.previous_version.clone();
        let o = self
            .probe
            .observe(&j.facts.production_host, &self.plan.endpoints, None)
            .await;
        if !o.good(&self.plan.endpoints, want.as_deref()) {
            return R::Failed(format!(
                "after rolling back, production answers {} (expected {})",
                o.describe(),
                want.unwrap_or_else(|| "healthy".into())
            ));
        }
        if let (Some(path), Some(want)) = (&self.plan.endpoints.version_path, &want) {
            let sample = self
                .probe
                .sample_versions(&j.facts.production_host, path, self.plan.verify_samples)
                .await;
            j.facts.production_sample = sample.clone();
            if sample.get(want).copied().unwrap_or(0) != self.plan.verify_samples {
                return R::Failed(format!(
                    "after rolling back, production serves {sample:?} (expected all {want})"
                ));
            }
        }
        R::Ok
    }
}

/// True for phases that change something (and so are not started after
/// cancellation). Reading state and giving back the lease are always done.
fn changes(phase: Phase) -> bool {
    !matches!(
        phase,
        Phase::Preflight
            | Phase::ResolveSwap
            | Phase::ResolveSwapBack
            | Phase::ReleaseLease
            | Phase::Done
    )
}

/// A lease value: `run;expires-rfc3339`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub run: String,
    /// When it lapses.
    pub expires: String,
}

impl Lease {
    fn new(run: &str, ttl: Duration) -> Lease {
        let expires = chrono::Utc::now()
            + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        Lease {
            run: run.replace(';', ","),
            expires: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Parses a tag value; `None` if it is not one of ours.
    pub fn parse(v: &str) -> Option<Lease> {
        let (run, expires) = v.rsplit_once(';')?;
        chrono::DateTime::parse_from_rfc3339(expires).ok()?;
        Some(Lease {
            run: run.into(),
            expires: expires.into(),
        })
    }

    /// Whether it has not lapsed.
    pub fn live(&self) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.expires).is_ok_and(|e| e > chrono::Utc::now())
    }

    fn render(&self) -> String {
        format!("{};{}", self.run, self.expires)
    }
}

impl Journal {
    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<Outcome> {
        self.state.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_trip_and_expire() {
        let l = Lease::new("contoso/payments#42.1", Duration::from_secs(60));
        let back = Lease::parse(&l.render()).unwrap();
        assert_eq!(back, l);
        assert!(back.live());
        assert!(!Lease::parse("x;2000-01-01T00:00:00Z").unwrap().live());
        assert_eq!(Lease::parse("not a lease"), None);
        assert!(Lease::new("a;b", Duration::from_secs(1)).run.contains(','));
    }

    #[test]
    fn only_read_phases_run_after_cancellation() {
        assert!(!changes(Phase::ReleaseLease));
        assert!(changes(Phase::Swap));
        assert!(changes(Phase::SwapBack));
    }
}
