//! The I/O half of the rollout: performs each [`Phase`] on a [`Target`]
//! and reports a [`Result`](super::Result) to [`step`](super::step),
//! writing the journal before every phase.
//!
//! - Every outcome that is not certain is found out by reading state (slot
//!   swap status, what production serves), never by repeating an action.
//! - A control plane that throttles or fails ([`R::Unavailable`]) is waited
//!   out, honouring `Retry-After`, up to the run's deadline; only then does
//!   the phase end [`R::Unknown`] (`needs-attention`, nothing blind).
//! - A stop (a signal, the deadline, an emergency rollback asking for the
//!   lock) turns the run into a restore, performed with a cancellation of
//!   its own so the first Ctrl-C cannot cut it short; a second Ctrl-C ends
//!   the process, printing what is left and the command that fixes it.
//! - The run holds the service's lock (taken by the command before the
//!   rollout starts, so nothing read here is stale); before every change
//!   the journal is written locally and, as the lock's intent, where
//!   whoever comes after a crash can read it.
//!
//! The probes and the canary watch are the same on every platform; the
//! [`Target`] does the platform's part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::canary::{CanaryPlan, SourceClients, StepRecord, Watch};
use super::target::{Side, Target};
use super::{Outcome, Phase, Result as R, State, Stop, StopKind, step};
use crate::cancel::{Cancel, CancelReason};
use crate::lock::{Alarm, Guard, LockHandle};
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
    /// How long to wait for another run holding the service's lock.
    pub lock_wait: Duration,
    /// This run's identity (lock holder, names that must differ per run).
    pub run_id: String,
    /// Where the journal goes (for the post stage).
    pub journal: Option<PathBuf>,
    /// The container image to deploy (Container Apps).
    pub image: Option<String>,
    /// Canary steps and breaker, if any.
    pub canary: Option<CanaryPlan>,
    /// A rollback to a known-good version: the stage step makes sure the
    /// target is staged (re-staging it from the archive, or reactivating
    /// its revision), and a failure after the swap is not swapped back.
    pub rollback: bool,
    /// Container Apps rollback: the revision that serves the target.
    pub revision: Option<String>,
    /// How long one phase waits out an unavailable control plane when the
    /// run has no deadline.
    pub patience: Duration,
}

/// How long a restore (after a stop) waits out an unavailable control
/// plane before it gives up and says what is left. After the `timeout`
/// deadline there is no more waiting: the deadline was the bound.
pub const RESTORE_PATIENCE: Duration = Duration::from_secs(600);

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
    /// Container Apps: the revision this deploy created (or, for a
    /// rollback, reactivated).
    #[serde(default)]
    pub new_revision: Option<String>,
    /// Each canary step's evidence and decision.
    #[serde(default)]
    pub canary_steps: Vec<StepRecord>,
    /// What the run did to keep a rollback possible (archived packages).
    #[serde(default)]
    pub kept: Vec<String>,
    /// What production serves at the end, as read then (version →
    /// requests); empty when it could not be read.
    #[serde(default)]
    pub serving_at_end: BTreeMap<String, usize>,
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

pub use super::platforms::Place;

/// What a restore needs from the plan, kept in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSettings {
    /// Where.
    pub place: Place,
    /// Health and version endpoints.
    pub endpoints: Endpoints,
    /// Requests that must all reach the restored version.
    pub verify_samples: usize,
    /// Bound on a swap, in seconds.
    pub swap_timeout_secs: u64,
}

/// The journal: written before every phase, read by the post stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The state machine's state.
    pub state: State,
    /// Facts.
    pub facts: Facts,
    /// Phase records.
    pub phases: Vec<PhaseRecord>,
    /// The lock this run holds, to continue as its holder.
    #[serde(default)]
    pub lock: Option<LockHandle>,
    /// The version being deployed (or rolled back to).
    #[serde(default)]
    pub expected_version: String,
    /// Where, and what a restore needs.
    #[serde(default)]
    pub restore: Option<RestoreSettings>,
}

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
    /// Cancellation: signals, the deadline, and the lock's alarms.
    pub cancel: Cancel,
    /// The service's lock, held for the whole rollout (intents go there).
    pub lock: Option<Guard>,
    /// Where it runs (kept in the journal for a restore).
    pub place: Option<Place>,
}

fn stop_of(reason: Option<CancelReason>) -> R {
    match reason {
        Some(CancelReason::Signal(s)) => R::Stopped(Stop {
            kind: StopKind::Signal,
            detail: format!("{s} received"),
        }),
        Some(CancelReason::Timeout(d)) => R::Stopped(Stop {
            kind: StopKind::Deadline,
            detail: format!("the timeout of {}s passed", d.as_secs()),
        }),
        Some(CancelReason::Preempted(by)) => R::Stopped(Stop {
            kind: StopKind::Preempted,
            detail: format!("an emergency rollback asked for the lock: {by}"),
        }),
        Some(CancelReason::LockLost(who)) => R::LockLost(format!(
            "the lock lapsed and is held by {who}; nothing more was changed"
        )),
        None => R::Stopped(Stop {
            kind: StopKind::Signal,
            detail: "cancelled".into(),
        }),
    }
}

impl<T: Target> Rollout<T> {
    fn name(&self) -> &str {
        self.place.as_ref().map_or("the service", Place::name)
    }

    /// Runs to the end and returns the journal.
    pub async fn run(&self) -> Journal {
        let steps = self
            .plan
            .canary
            .as_ref()
            .map(|c| c.steps.clone())
            .unwrap_or_default();
        let state = if self.plan.rollback {
            State::rollback()
        } else {
            State::with_canary(
                self.plan.package.is_some()
                    || self.plan.image.is_some()
                    || self.target.finds_build(),
                steps,
            )
        };
        self.run_from(Journal {
            state,
            facts: Facts::default(),
            phases: Vec::new(),
            lock: None,
            expected_version: self.plan.expected_version.clone(),
            restore: None,
        })
        .await
    }

    /// Runs from a journal (the post stage resumes one to restore).
    pub async fn run_from(&self, mut journal: Journal) -> Journal {
        let started = Instant::now();
        if let Some(lock) = &self.lock {
            journal.lock = Some(lock.handle().await);
        }
        if let Some(place) = &self.place {
            journal.restore = Some(RestoreSettings {
                place: place.clone(),
                endpoints: self.plan.endpoints.clone(),
                verify_samples: self.plan.verify_samples,
                swap_timeout_secs: self.plan.swap_timeout.as_secs(),
            });
        }
        let mut watch: Option<Watch> = None;
        // Restoring has its own cancellation: the stop that started it
        // must not cut it short (a second signal ends the process).
        let restore = Cancel::new();
        // The state machine terminates on every path (tested exhaustively);
        // the bound is a second guard against a driver bug.
        for _ in 0..256 {
            if journal.state.finished() {
                break;
            }
            let phase = journal.state.phase;
            self.before(phase, &mut journal).await;
            let t = Instant::now();
            tracing::info!("{}", phase_line(phase, &journal.state));
            let lost = match self.lock.as_ref().and_then(Guard::alarm) {
                Some(Alarm::Lost(who)) => Some(R::LockLost(format!(
                    "the lock lapsed and is held by {who}; nothing more was changed"
                ))),
                _ => None,
            };
            let result = if let Some(lost) = lost {
                lost
            } else if journal.state.restoring {
                let patience = match &journal.state.stop {
                    Some(s) if s.kind == StopKind::Deadline => Duration::ZERO,
                    _ => RESTORE_PATIENCE,
                };
                self.patiently(phase, &mut journal, &mut watch, &restore, Some(patience))
                    .await
            } else if self.cancel.is_cancelled() && changes(phase) {
                stop_of(self.cancel.reason())
            } else {
                match self
                    .patiently(phase, &mut journal, &mut watch, &self.cancel, None)
                    .await
                {
                    R::Cancelled => stop_of(self.cancel.reason()),
                    other => other,
                }
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
                    R::Unknown(w) => format!("state unknown: {w}"),
                    R::LockLost(w) => format!("lock lost: {w}"),
                    R::Stopped(s) => format!("stopped: {}", s.detail),
                    other => other.detail(),
                },
            });
            match &result {
                R::Failed(why) => tracing::warn!("{}: {why}", phase_name(phase)),
                R::Stopped(s) => tracing::warn!(
                    "{}: stopped ({}); restoring production",
                    phase_name(phase),
                    s.detail
                ),
                _ => {}
            }
            journal.state = step(journal.state.clone(), result);
            self.write_journal(&journal);
        }
        // Probes stop with the watch.
        drop(watch);
        crate::cancel::set_last_words(self.name(), None);
        journal.facts.serving_at_end = self.serving(&journal).await;
        self.write_journal(&journal);
        journal
    }

    /// Before a phase: the journal (locally and, before a change, as the
    /// lock's intent) and what a sudden end would leave.
    async fn before(&self, phase: Phase, j: &mut Journal) {
        if let Some(lock) = &self.lock {
            j.lock = Some(lock.handle().await);
        }
        self.write_journal(j);
        let words = if j.state.at_risk() || matches!(phase, Phase::Swap | Phase::CanaryShift) {
            j.facts.previous_version.as_ref().map(|previous| {
                format!(
                    "{}: {} was interrupted during '{}', so production may serve the unverified {} (or part of its traffic may). Put it back on {previous}: {}",
                    self.name(),
                    if self.plan.rollback { "the rollback" } else { "the deploy" },
                    phase_name(phase),
                    self.plan.expected_version,
                    self.target.rollback_command(previous)
                )
            })
        } else {
            None
        };
        crate::cancel::set_last_words(self.name(), words);
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

    /// Performs `phase`, waiting out an unavailable control plane (honouring
    /// what the HTTP layer already waited) until the deadline — or, while
    /// restoring, for `restore_patience`.
    async fn patiently(
        &self,
        phase: Phase,
        j: &mut Journal,
        watch: &mut Option<Watch>,
        c: &Cancel,
        restore_patience: Option<Duration>,
    ) -> R {
        let started = Instant::now();
        let until = match restore_patience {
            Some(p) => started + p,
            None => self
                .cancel
                .deadline_at()
                .unwrap_or(started + self.plan.patience),
        };
        let mut wait = Duration::from_secs(2);
        let mut said = false;
        // Bounded by the deadline and by the attempt count.
        for _ in 0..10_000 {
            // Before a change, the intent goes to the lock — a renewal that
            // must succeed: a holder that cannot write it changes nothing.
            let recorded = match (&self.lock, writes_azure(phase)) {
                (Some(lock), true) => match lock.write_intent(intent(j)).await {
                    Ok(()) => {
                        j.lock = Some(lock.handle().await);
                        Ok(())
                    }
                    Err(crate::lock::LockError::Lost { holder, .. }) => {
                        return R::LockLost(format!(
                            "the lock is held by {holder}; nothing more was changed"
                        ));
                    }
                    Err(e) => Err(format!("cannot record the intent with the lock: {e}")),
                },
                _ => Ok(()),
            };
            let r = match recorded {
                Ok(()) => self.perform(phase, j, watch, c).await,
                Err(why) => R::Unavailable(why),
            };
            let R::Unavailable(why) = r else {
                return r;
            };
            let now = Instant::now();
            if now >= until {
                return R::Unknown(format!(
                    "{why} (still after {}s of waiting)",
                    (now - started).as_secs()
                ));
            }
            if !said {
                tracing::warn!(
                    "{}: {why}; waiting it out — trouble reaching Azure (or the lock) is not a reason to roll back",
                    phase_name(phase)
                );
                said = true;
            }
            if c.sleep(wait.min(until - now)).await.is_err() {
                return R::Cancelled;
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        R::Unknown("the control plane stayed unavailable".into())
    }

    async fn perform(
        &self,
        phase: Phase,
        j: &mut Journal,
        watch: &mut Option<Watch>,
        c: &Cancel,
    ) -> R {
        let t = &self.target;
        match phase {
            Phase::Preflight => {
                let r = t.preflight(&self.plan, &mut j.facts, &self.probe, c).await;
                if matches!(r, R::Ok | R::StaleRouting)
                    && let Err(why) = self.wait_for_other_operations(c).await
                {
                    return why;
                }
                r
            }
            Phase::ClearStaleRouting => t.route_all(Side::Previous, &j.facts, c).await,
            Phase::ClearRouting => t.route_all(Side::New, &j.facts, c).await,
            Phase::ClearRoutingAfterRollback => t.route_all(Side::Previous, &j.facts, c).await,
            Phase::Upload => t.stage(&self.plan, &mut j.facts, &self.probe, c).await,
            Phase::CheckStaging => self.check_staging(j, c).await,
            Phase::CanaryShift => t.shift(j.state.canary_percent(), &j.facts, c).await,
            Phase::CanaryWatch => self.canary_watch(j, watch, c).await,
            Phase::CanaryAbort => {
                // Stop the probes first: the canary is going away.
                drop(watch.take());
                t.route_all(Side::Previous, &j.facts, c).await
            }
            Phase::VerifyCanaryAbort => {
                let r = self.verify_previous(j, false).await;
                if r == R::Ok {
                    t.retire(&j.facts, c).await;
                }
                r
            }
            Phase::Swap => {
                drop(watch.take());
                t.swap(&self.plan, &j.facts, &self.probe, false, c).await
            }
            Phase::SwapBack => {
                drop(watch.take());
                t.swap(&self.plan, &j.facts, &self.probe, true, c).await
            }
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
            Phase::VerifyProduction => self.verify_production(j, c).await,
            Phase::VerifyRollback => {
                let r = self.verify_previous(j, true).await;
                if r == R::Ok {
                    t.retire(&j.facts, c).await;
                }
                r
            }
            Phase::Finish => self.finish(j, c).await,
            Phase::Done => R::Ok,
        }
    }

    async fn canary_watch(&self, j: &mut Journal, watch: &mut Option<Watch>, c: &Cancel) -> R {
        let (Some(plan), Some(clients)) = (&self.plan.canary, &self.sources) else {
            return R::Failed("a canary step without a canary plan".into());
        };
        if watch.is_none() {
            let arms = self.target.arms(&j.facts);
            match Watch::start(plan, clients, &arms, c).await {
                Ok(w) => *watch = Some(w),
                Err(why) => return R::Failed(why),
            }
        }
        let Some(w) = watch.as_mut() else {
            return R::Failed("the canary watch did not start".into());
        };
        let percent = j.state.canary_percent();
        let (result, record) = w.step(plan, percent, c).await;
        tracing::info!("canary {percent}%: {} — {}", record.decision, record.detail);
        j.facts.canary_steps.push(record);
        result
    }

    /// Waits (up to the lock bound) while a platform operation (a swap
    /// started elsewhere, a container app updating) is in progress.
    async fn wait_for_other_operations(&self, c: &Cancel) -> std::result::Result<(), R> {
        let started = Instant::now();
        let mut said = String::new();
        for _ in 0..10_000 {
            let busy = self.target.busy(c).await?;
            let Some(op) = busy else {
                return Ok(());
            };
            let what = format!("a platform operation ({op}) is in progress");
            let waited = started.elapsed();
            if waited >= self.plan.lock_wait {
                return Err(R::Failed(format!(
                    "{what}; waited {}s (lock-wait)",
                    self.plan.lock_wait.as_secs()
                )));
            }
            // Said once per operation; then a status update per poll.
            if what != said {
                tracing::info!("{what}; waiting");
                said = what;
            } else {
                tracing::info!(
                    progress = true,
                    done = (100 * waited.as_millis() / self.plan.lock_wait.as_millis().max(1))
                        .min(100) as u64,
                    "{what}; waiting · {} s, at most {} s left",
                    waited.as_secs(),
                    self.plan.lock_wait.saturating_sub(waited).as_secs()
                );
            }
            if c.sleep(Duration::from_secs(2).min(self.plan.lock_wait))
                .await
                .is_err()
            {
                return Err(R::Cancelled);
            }
        }
        Err(R::Failed("a platform operation stayed in progress".into()))
    }

    async fn finish(&self, j: &mut Journal, c: &Cancel) -> R {
        // After a promotion, record the version (and on Container Apps the
        // revision) to roll back to, and keep what that rollback needs. A
        // rollback records nothing: its target stays the target, so a second
        // click changes nothing.
        if j.state.outcome == Some(Outcome::Promoted) && !self.plan.rollback {
            if let Some(previous) = &j.facts.previous_version {
                let mut tag =
                    BTreeMap::from([(PREVIOUS_VERSION_TAG.to_string(), previous.clone())]);
                if let Some(revision) = &j.facts.stable_revision {
                    tag.insert(PREVIOUS_REVISION_TAG.to_string(), revision.clone());
                }
                if let Err(e) = self.target.merge_tags(&tag, c).await {
                    tracing::warn!(
                        "could not record the previous version {previous} for rollback ({}); rollback will need to-version",
                        e.detail()
                    );
                }
            }
            if let Some(kept) = self.target.keep(&self.plan, &j.facts, c).await {
                j.facts.kept.push(kept);
            }
        }
        R::Ok
    }

    async fn check_staging(&self, j: &mut Journal, c: &Cancel) -> R {
        if !j.state.upload && !self.plan.rollback {
            // Said before the wait, not after it: without a build to
            // upload, the slot must already hold this version.
            tracing::info!(
                "no package or image was given: checking that the slot already serves {} (up to {} checks, {} s apart); give `package` to upload the build",
                self.plan.expected_version,
                self.plan.staging.attempts,
                self.plan.staging.interval.as_secs()
            );
        }
        let seen = match self
            .probe
            .wait_until_good(
                &j.facts.slot_host,
                &self.plan.endpoints,
                Some(&self.plan.expected_version),
                None,
                self.plan.staging,
                c,
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
                "staging ({}) is not ready after {} checks: {} (expected health {} and version {}){}",
                if j.facts.new_revision.is_some() {
                    j.facts.new_revision.clone().unwrap_or_default()
                } else {
                    self.plan.slot.clone()
                },
                seen.len(),
                o.describe(),
                self.plan.endpoints.health_status,
                self.plan.expected_version,
                if !j.state.upload && o.version.is_some() {
                    " — no package or image was given, so the slot still holds what was there; give `package` to upload the build"
                } else {
                    ""
                }
            )),
            None => R::Failed("staging was not checked".into()),
        }
    }

    async fn verify_production(&self, j: &mut Journal, c: &Cancel) -> R {
        let started = Instant::now();
        let want = self.plan.expected_version.as_str();
        let mut checks = 0u32;
        let mut last_progress: Option<Instant> = None;
        loop {
            let o = self
                .probe
                .observe(&j.facts.production_host, &self.plan.endpoints, None)
                .await;
            checks += 1;
            // What a person watching sees move (see the canary's progress).
            if o.good(&self.plan.endpoints, Some(want))
                && last_progress.is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
            {
                last_progress = Some(Instant::now());
                tracing::info!(
                    progress = true,
                    done = (100 * started.elapsed().as_millis()
                        / self.plan.verify_window.as_millis().max(1))
                    .min(100) as u64,
                    "verify production: {:.0} s of {} s · {checks} check(s), each healthy on {want}",
                    started.elapsed().as_secs_f64(),
                    self.plan.verify_window.as_secs()
                );
            }
            if !o.good(&self.plan.endpoints, Some(want)) {
                return R::Failed(format!(
                    "production check failed: {} (expected version {want})",
                    o.describe()
                ));
            }
            if started.elapsed() + self.plan.verify_interval > self.plan.verify_window {
                break;
            }
            if c.sleep(self.plan.verify_interval).await.is_err() {
                return R::Cancelled;
            }
        }
        match self.target.check_routing(Side::New, &j.facts, c).await {
            R::Ok => {}
            R::Failed(why) => return R::Failed(format!("during verification: {why}")),
            other => return other,
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
                    "{good} of {} production requests reached {want}: {}",
                    self.plan.verify_samples,
                    show_sample(&sample)
                ));
            }
        }
        R::Ok
    }

    /// Production serves the previous version again, healthy, on every one
    /// of `verify-requests` requests.
    async fn verify_previous(&self, j: &mut Journal, after_swap: bool) -> R {
        let unknown = j.facts.previous_version.is_none();
        if unknown && !after_swap {
            // A withdrawn canary: production's own build never changed (the
            // routing was read back); its health is what is left to check.
            let o = self
                .probe
                .observe(&j.facts.production_host, &self.plan.endpoints, None)
                .await;
            return if o.good(&self.plan.endpoints, None) {
                R::Ok
            } else {
                R::Failed(format!(
                    "after withdrawing the canary, production answers {}",
                    o.describe()
                ))
            };
        }
        let Some(want) = j.facts.previous_version.clone() else {
            // Health alone cannot tell the previous build from the new one.
            let o = self
                .probe
                .observe(&j.facts.production_host, &self.plan.endpoints, None)
                .await;
            return R::Failed(format!(
                "the previous version is unknown (production's version could not be read before the deploy), so putting it back cannot be verified: production answers {}",
                o.describe()
            ));
        };
        let o = self
            .probe
            .observe(&j.facts.production_host, &self.plan.endpoints, None)
            .await;
        if !o.good(&self.plan.endpoints, Some(&want)) {
            return R::Failed(format!(
                "after rolling back, production answers {} (expected {want})",
                o.describe(),
            ));
        }
        if let Some(path) = &self.plan.endpoints.version_path {
            let sample = self
                .probe
                .sample_versions(&j.facts.production_host, path, self.plan.verify_samples)
                .await;
            j.facts.production_sample = sample.clone();
            if sample.get(&want).copied().unwrap_or(0) != self.plan.verify_samples {
                return R::Failed(format!(
                    "after rolling back, production serves {} (expected all {want})",
                    show_sample(&sample)
                ));
            }
        }
        R::Ok
    }

    /// What production serves now, read by requests (for the outputs).
    async fn serving(&self, j: &Journal) -> BTreeMap<String, usize> {
        let (Some(path), false) = (
            &self.plan.endpoints.version_path,
            j.facts.production_host.is_empty(),
        ) else {
            return BTreeMap::new();
        };
        // The final verification just sampled: reuse it when it is the end.
        if matches!(
            j.state.trail.iter().rev().nth(2),
            Some(Phase::VerifyProduction | Phase::VerifyRollback | Phase::VerifyCanaryAbort)
        ) && !j.facts.production_sample.is_empty()
        {
            return j.facts.production_sample.clone();
        }
        self.probe
            .sample_versions(&j.facts.production_host, path, 10)
            .await
    }
}

/// "2.4.1 × 48, 2.4.0 × 2".
pub fn show_sample(sample: &BTreeMap<String, usize>) -> String {
    if sample.is_empty() {
        return "no answer".into();
    }
    let mut v: Vec<_> = sample.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(k, n)| format!("{k} × {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a person reads for a phase as it starts.
fn phase_line(phase: Phase, s: &State) -> String {
    match phase {
        Phase::CanaryShift => format!(
            "sending {} % of production traffic to the new build",
            s.canary_percent()
        ),
        Phase::CanaryWatch => format!("watching the {} % canary", s.canary_percent()),
        other => phase_name(other).to_string(),
    }
}

/// Plain words for a phase (progress lines, summaries).
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Preflight => "preflight (read the app, its slots and what production serves)",
        Phase::ClearStaleRouting => "clear leftover routing",
        Phase::Upload => "stage the build",
        Phase::CheckStaging => "check staging (health + version)",
        Phase::CanaryShift => "shift canary traffic",
        Phase::CanaryWatch => "watch the canary",
        Phase::CanaryAbort => "withdraw the canary",
        Phase::VerifyCanaryAbort => "verify production after the withdrawal",
        Phase::Swap => "promote (swap into production)",
        Phase::ResolveSwap => "find out whether the promotion happened",
        Phase::ClearRouting => "clear routing",
        Phase::VerifyProduction => "verify production",
        Phase::SwapBack => "put the previous version back",
        Phase::ResolveSwapBack => "find out whether the previous version is back",
        Phase::ClearRoutingAfterRollback => "clear routing after rolling back",
        Phase::VerifyRollback => "verify the previous version serves",
        Phase::Finish => "record the result",
        Phase::Done => "done",
    }
}

/// The journal as the lock's intent: what a run taking over after a crash
/// needs to restore (the state and the facts, without the evidence).
pub fn intent(j: &Journal) -> serde_json::Value {
    let mut state = j.state.clone();
    let keep = state.trail.len().saturating_sub(4);
    state.trail.drain(..keep);
    state.notes.clear();
    let mut facts = j.facts.clone();
    facts.canary_steps.clear();
    facts.production_sample.clear();
    facts.serving_at_end.clear();
    serde_json::json!({
        "state": state,
        "facts": facts,
        "expected_version": j.expected_version,
        "restore": j.restore,
    })
}

/// A journal from a lock's intent (a run that died), if it is one.
pub fn journal_from_intent(v: &serde_json::Value) -> Option<Journal> {
    Some(Journal {
        state: serde_json::from_value(v.get("state")?.clone()).ok()?,
        facts: serde_json::from_value(v.get("facts")?.clone()).ok()?,
        phases: Vec::new(),
        lock: None,
        expected_version: v.get("expected_version")?.as_str()?.to_string(),
        restore: v
            .get("restore")
            .and_then(|r| serde_json::from_value(r.clone()).ok()),
    })
}

/// True for phases that write to the platform: the lock gets the intent
/// before each (the watch and the verifications only read; a run killed in
/// one resumes from the write before it, to the same effect).
fn writes_azure(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::ClearStaleRouting
            | Phase::Upload
            | Phase::CanaryShift
            | Phase::CanaryAbort
            | Phase::Swap
            | Phase::ClearRouting
            | Phase::SwapBack
            | Phase::ClearRoutingAfterRollback
    )
}

/// True for phases that change production (and so are not started after a
/// stop). Reading state is always done, and so is recording the result.
fn changes(phase: Phase) -> bool {
    !matches!(
        phase,
        Phase::Preflight
            | Phase::ResolveSwap
            | Phase::ResolveSwapBack
            | Phase::Finish
            | Phase::Done
    )
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
    fn only_read_phases_run_after_a_stop() {
        assert!(!changes(Phase::Preflight));
        assert!(!changes(Phase::ResolveSwap));
        assert!(!changes(Phase::Finish));
        assert!(changes(Phase::Swap));
        assert!(changes(Phase::SwapBack));
    }

    #[test]
    fn an_intent_round_trips_into_a_journal() {
        let mut j = Journal {
            state: State::with_canary(true, vec![10]),
            facts: Facts {
                previous_version: Some("2.4.0".into()),
                ..Facts::default()
            },
            phases: Vec::new(),
            lock: None,
            expected_version: "2.4.1".into(),
            restore: None,
        };
        j.state = step(j.state, R::Ok);
        let back = journal_from_intent(&intent(&j)).unwrap();
        assert_eq!(back.state.phase, j.state.phase);
        assert_eq!(back.facts.previous_version.as_deref(), Some("2.4.0"));
        assert_eq!(back.expected_version, "2.4.1");
        assert!(journal_from_intent(&serde_json::json!({"x": 1})).is_none());
    }
}
