//! The deploy as an explicit state machine.
//!
//! [`step`] is pure: given where the rollout is and what the last phase's
//! work found, it says where to go next. A driver performs each phase's I/O
//! and feeds the result back. Keeping the decisions here means every path —
//! including the unhappy ones — is a unit test, and the journal the driver
//! writes before each phase is enough for the post stage (or a later run) to
//! finish the job.
//!
//! The rules that make it safe:
//! - nothing changes production before [`Phase::Swap`] (or a canary shift);
//!   any failure before it ends with production untouched
//!   (`failed-before-change`);
//! - a swap whose outcome is unknown goes to [`Phase::ResolveSwap`] (read
//!   the state), never straight to another swap; when the state cannot be
//!   read (Azure throttles or fails) the driver waits it out, and if the
//!   deadline comes first the run ends `needs-attention` with no blind
//!   action ([`Result::Unknown`]);
//! - any failure after the swap goes to [`Phase::SwapBack`] and then
//!   verifies that the previous version serves (a rollback, whose "new"
//!   version *is* the known-good one, never swaps back: `swap_back: false`);
//! - a stop — a signal, the deadline, an emergency rollback asking for the
//!   lock, or the post stage resuming a journal — restores: the phase that
//!   was running is assumed to have taken effect ([`restore_from`]), so a
//!   swap in flight is resolved by reading state and then swapped back, and
//!   a canary share is withdrawn;
//! - a canary (a share of production traffic on the new build, before the
//!   swap) that trips the breaker, fails to shift, or stays inconclusive
//!   under `on-inconclusive: fail` is withdrawn ([`Phase::CanaryAbort`]) and
//!   production is verified to serve only the previous build.

use serde::{Deserialize, Serialize};

pub mod app_service;
pub mod canary;
pub mod container_apps;
pub mod driver;
pub mod kubernetes;
pub mod multi;
pub mod platforms;
pub mod static_web_apps;
pub mod target;

/// Where the rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Read-only checks: app, slot, versions, leftovers, other operations.
    /// Runs once the run holds the lock, so nothing it reads is stale.
    Preflight,
    /// Remove routing rules an earlier canary left behind.
    ClearStaleRouting,
    /// Put the new build where it can be checked without users: upload the
    /// package to the staging slot, or create (or reactivate) a revision.
    Upload,
    /// Staging health and identity (the expected version).
    CheckStaging,
    /// Send the current canary step's share of production traffic to the
    /// new build, and read it back.
    CanaryShift,
    /// Watch the canary with the breaker for the step's window.
    CanaryWatch,
    /// Withdraw the canary: all production traffic to the previous build.
    CanaryAbort,
    /// Production serves only the previous build again.
    VerifyCanaryAbort,
    /// Swap staging into production (sent once).
    Swap,
    /// The swap's outcome is unknown: read state to learn it.
    ResolveSwap,
    /// Remove routing rules (they survive a swap and would send traffic to
    /// the old build).
    ClearRouting,
    /// Production serves the new version, healthy, with no rules, for the
    /// whole verify window.
    VerifyProduction,
    /// Swap back: the previous build is in staging after the swap.
    SwapBack,
    /// The swap back's outcome is unknown: read state.
    ResolveSwapBack,
    /// Rules cleared after rolling back.
    ClearRoutingAfterRollback,
    /// Production serves the previous version again.
    VerifyRollback,
    /// Record the result on the resource (the version to roll back to) and
    /// retire a rejected build. Earlier journals call it `release-lease`.
    #[serde(alias = "release-lease")]
    Finish,
    /// The end.
    Done,
}

/// How the rollout ended (the `result` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The new version serves production, verified.
    Promoted,
    /// A failure after the swap (or a tripped canary); the previous version
    /// serves again, verified.
    RolledBack,
    /// Nothing to do (production already on the target).
    Unchanged,
    /// Failed before production was changed; production untouched.
    FailedBeforeChange,
    /// Production's state could not be restored or verified, or could not
    /// be read before the deadline: a human must look (the summary says
    /// what is known and what to run).
    NeedsAttention,
    /// Stopped by a signal or the deadline; production was restored to (or
    /// never left) the previous version, verified.
    Interrupted,
    /// An emergency rollback asked for the lock; this run stopped at its
    /// next checkpoint and restored the previous version, verified.
    Preempted,
    /// The canary's evidence stayed inconclusive (no or too little traffic)
    /// and the policy was to stop: the canary was withdrawn; production
    /// serves the previous version, verified.
    Inconclusive,
}

impl Outcome {
    /// The `result` output's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled-back",
            Outcome::Unchanged => "unchanged",
            Outcome::FailedBeforeChange => "failed-before-change",
            Outcome::NeedsAttention => "needs-attention",
            Outcome::Interrupted => "interrupted",
            Outcome::Preempted => "preempted",
            Outcome::Inconclusive => "inconclusive",
        }
    }

    /// Whether the run succeeded (exit 0).
    pub fn success(self) -> bool {
        matches!(self, Outcome::Promoted | Outcome::Unchanged)
    }
}

/// What stopped a run before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopKind {
    /// SIGINT or SIGTERM (Ctrl-C, a cancelled workflow).
    Signal,
    /// The `timeout` deadline.
    Deadline,
    /// An emergency rollback of the same service asked this run to stop.
    Preempted,
    /// The post stage (or a later run) finishing a run that died.
    Resumed,
}

/// A stop and its words (who, why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// What kind.
    pub kind: StopKind,
    /// For people: the signal, who asked and why.
    pub detail: String,
}

/// What a phase's work found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Result {
    /// The phase did its job.
    Ok,
    /// Preflight found nothing to deploy: production already serves the
    /// expected version (and no leftovers need attention).
    AlreadyDeployed,
    /// Preflight found leftover routing rules and the policy is to clear
    /// them.
    StaleRouting,
    /// A swap phase learned (by reading state) that the swap happened.
    Swapped,
    /// A swap phase learned that the swap did not happen.
    NotSwapped,
    /// The outcome of a swap is unknown (timeout, connection lost).
    Ambiguous(String),
    /// The breaker tripped on the canary; the text is the evidence.
    Tripped(String),
    /// The canary's evidence is inconclusive and the policy is to stop.
    Inconclusive(String),
    /// The phase failed; the text says why.
    Failed(String),
    /// The control plane is throttling or failing (429, 5xx, no
    /// connection, another operation holding the resource): nothing is
    /// known to have happened. The driver waits and performs the phase
    /// again; [`step`] never sees it.
    Unavailable(String),
    /// The control plane stayed unavailable until the deadline: the state
    /// is unknown, so nothing more is changed.
    Unknown(String),
    /// Another run holds the lock now (ours lapsed): stop without touching
    /// anything.
    LockLost(String),
    /// A signal or the deadline stopped the phase (the driver turns it into
    /// [`Result::Stopped`] with the reason).
    Cancelled,
    /// Stopped, with the reason: restore.
    Stopped(Stop),
}

impl Result {
    /// What the result says, in words (for a warning or an error line).
    pub fn detail(&self) -> String {
        match self {
            Result::Ok => "ok".into(),
            Result::AlreadyDeployed => "production already serves it".into(),
            Result::StaleRouting => "routing rules were left behind".into(),
            Result::Swapped => "the swap happened".into(),
            Result::NotSwapped => "the swap did not happen".into(),
            Result::Cancelled => "stopped".into(),
            Result::Stopped(s) => format!("stopped: {}", s.detail),
            Result::Ambiguous(d)
            | Result::Tripped(d)
            | Result::Inconclusive(d)
            | Result::Failed(d)
            | Result::Unavailable(d)
            | Result::Unknown(d)
            | Result::LockLost(d) => d.clone(),
        }
    }
}

/// What the rollout knows, enough to resume or to restore safety.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Current phase: the one being performed (the journal is written
    /// before it starts, so a journal's phase may have taken effect).
    pub phase: Phase,
    /// Whether a stage step (upload, new revision) is part of this rollout.
    pub upload: bool,
    /// Preflight found routing rules left behind, to clear first.
    pub clear_stale: bool,
    /// True once production may serve the new build (after a swap that
    /// happened or may have).
    pub production_changed: bool,
    /// True once the new version was verified in production.
    pub verified: bool,
    /// Set when the rollout ended.
    pub outcome: Option<Outcome>,
    /// The first failure, which is what the run reports.
    pub failure: Option<String>,
    /// Failures during the rollback, if any.
    pub rollback_failure: Option<String>,
    /// Phases visited, in order.
    pub trail: Vec<Phase>,
    /// What happened along the way that the summary should say.
    pub notes: Vec<String>,
    /// Canary steps: percentages of production traffic, increasing. Empty:
    /// no canary, straight to the swap.
    #[serde(default)]
    pub canary: Vec<u8>,
    /// Index of the current (or last) canary step.
    #[serde(default)]
    pub canary_step: usize,
    /// True once a canary share may have been routed to the new build.
    #[serde(default)]
    pub canary_exposed: bool,
    /// What withdrawing the canary ends in (rolled back after a trip,
    /// inconclusive).
    #[serde(default)]
    pub abort_outcome: Option<Outcome>,
    /// Whether a failure after the swap swaps back (a deploy) or needs a
    /// human (a rollback: its new version is the known-good one).
    #[serde(default = "yes")]
    pub swap_back: bool,
    /// True once the run is restoring after a stop.
    #[serde(default)]
    pub restoring: bool,
    /// What stopped the run, if anything did.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Swap-back attempts (one more is made when reading state proved the
    /// first did not happen).
    #[serde(default)]
    pub swap_back_attempts: u8,
}

fn yes() -> bool {
    true
}

impl State {
    /// A rollout about to start.
    pub fn new(upload: bool) -> State {
        State::with_canary(upload, Vec::new())
    }

    /// A rollout with canary steps (percentages, increasing, 1–99).
    pub fn with_canary(upload: bool, canary: Vec<u8>) -> State {
        State {
            canary,
            canary_step: 0,
            canary_exposed: false,
            abort_outcome: None,
            phase: Phase::Preflight,
            upload,
            clear_stale: false,
            production_changed: false,
            verified: false,
            outcome: None,
            failure: None,
            rollback_failure: None,
            trail: vec![Phase::Preflight],
            notes: Vec::new(),
            swap_back: true,
            restoring: false,
            stop: None,
            swap_back_attempts: 0,
        }
    }

    /// A rollback to a known-good version: staged, swapped in, verified;
    /// a failure after the swap is not swapped back.
    pub fn rollback() -> State {
        State {
            swap_back: false,
            ..State::new(true)
        }
    }

    /// The current canary step's share of production traffic (0 without a
    /// canary).
    pub fn canary_percent(&self) -> u8 {
        self.canary.get(self.canary_step).copied().unwrap_or(0)
    }

    /// True when the rollout has ended.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True when production may serve a build that was not verified, or a
    /// canary share may be live: what a stop must restore.
    pub fn at_risk(&self) -> bool {
        if self.verified || self.finished() {
            return false;
        }
        self.production_changed
            || self.canary_exposed
            || matches!(
                self.phase,
                Phase::CanaryShift
                    | Phase::CanaryWatch
                    | Phase::CanaryAbort
                    | Phase::VerifyCanaryAbort
                    | Phase::Swap
                    | Phase::ResolveSwap
                    | Phase::SwapBack
                    | Phase::ResolveSwapBack
                    | Phase::ClearRoutingAfterRollback
                    | Phase::VerifyRollback
            )
    }

    fn go(&mut self, next: Phase) {
        self.phase = next;
        self.trail.push(next);
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    fn end(&mut self, outcome: Outcome) {
        // A stopped run that restored (or never changed) production says
        // it was stopped; a failed restore still needs a human.
        let outcome = match (&self.stop, outcome) {
            (
                Some(stop),
                Outcome::RolledBack | Outcome::FailedBeforeChange | Outcome::Inconclusive,
            ) => {
                if stop.kind == StopKind::Preempted {
                    Outcome::Preempted
                } else {
                    Outcome::Interrupted
                }
            }
            (_, o) => o,
        };
        self.outcome = Some(outcome);
        self.go(Phase::Finish);
    }

    fn attention(&mut self, why: String) {
        if self.production_changed || self.canary_exposed || self.restoring {
            self.rollback_failure.get_or_insert(why);
        } else {
            self.fail(why);
        }
        self.outcome = Some(Outcome::NeedsAttention);
        self.go(Phase::Finish);
    }
}

/// Where a stopped run goes to restore safety, assuming the phase it was in
/// may have taken effect (a swap in flight may have swapped; a shift may
/// have moved traffic).
pub fn restore_from(s: &State) -> Phase {
    use Phase as P;
    match s.phase {
        P::Preflight | P::ClearStaleRouting | P::Upload | P::CheckStaging => {
            if s.canary_exposed {
                P::CanaryAbort
            } else {
                P::Finish
            }
        }
        P::CanaryShift | P::CanaryWatch => P::CanaryAbort,
        P::Swap | P::ResolveSwap => P::ResolveSwap,
        P::ClearRouting | P::VerifyProduction => {
            if s.swap_back {
                P::SwapBack
            } else {
                // A rollback's new version is the safe one: finish making
                // production consistent.
                s.phase
            }
        }
        P::SwapBack | P::ResolveSwapBack => P::ResolveSwapBack,
        P::CanaryAbort
        | P::VerifyCanaryAbort
        | P::ClearRoutingAfterRollback
        | P::VerifyRollback
        | P::Finish
        | P::Done => s.phase,
    }
}

/// The state a journal's run resumes from to restore safety (the post
/// stage, or a run that took over a lock whose holder died): restoring,
/// from the phase that may have been in flight.
pub fn resume(mut s: State, stop: Stop) -> State {
    if s.finished() || s.outcome.is_some() {
        return s;
    }
    if s.stop.is_none() {
        s.stop = Some(stop);
    }
    s.restoring = true;
    let next = restore_from(&s);
    if next == Phase::Finish {
        s.end(Outcome::FailedBeforeChange);
    } else {
        s.go(next);
    }
    s
}

/// The transition function: pure, total, and the only place decisions are
/// made.
pub fn step(mut s: State, r: Result) -> State {
    use Phase as P;
    // A shift that failed or was interrupted may still have taken effect:
    // from here on, assume users may be on the canary.
    if s.phase == P::CanaryShift {
        s.canary_exposed = true;
    }
    let r = match r {
        Result::Cancelled => Result::Stopped(Stop {
            kind: StopKind::Signal,
            detail: "cancelled".into(),
        }),
        // The driver waits these out; one reaching here means it could not.
        Result::Unavailable(why) => Result::Unknown(why),
        other => other,
    };
    match (s.phase, r) {
        (P::Done, _) => {}
        (P::Finish, _) => s.go(P::Done),
        (_, Result::LockLost(why)) => {
            // Someone else may be changing the app now: touch nothing more.
            s.fail(why.clone());
            s.rollback_failure.get_or_insert(why);
            s.outcome = Some(Outcome::NeedsAttention);
            s.go(P::Done);
        }
        (_, Result::Unknown(why)) => {
            s.attention(format!(
                "the state is unknown: {why}; nothing more was changed"
            ));
        }
        (_, Result::Stopped(stop)) => {
            if s.restoring {
                // The restore itself was stopped: say so, change nothing more.
                s.attention(format!("the restore was stopped ({})", stop.detail));
            } else {
                s.fail(format!("stopped: {}", stop.detail));
                s.stop = Some(stop);
                s.restoring = true;
                let next = restore_from(&s);
                if next == P::Finish {
                    s.end(Outcome::FailedBeforeChange);
                } else {
                    s.go(next);
                }
            }
        }
        (P::Preflight, Result::Ok) => {
            let next = if s.clear_stale {
                P::ClearStaleRouting
            } else {
                after_cleanup(&s)
            };
            s.go(next);
        }
        (P::Preflight, Result::StaleRouting) => {
            s.clear_stale = true;
            s.go(P::ClearStaleRouting);
        }
        (P::Preflight, Result::AlreadyDeployed) => {
            s.outcome = Some(Outcome::Unchanged);
            s.go(P::Finish);
        }
        (P::ClearStaleRouting, Result::Ok) => s.go(after_cleanup(&s)),
        (P::Upload, Result::Ok) => s.go(P::CheckStaging),
        (P::CheckStaging, Result::Ok) => {
            let next = if s.canary.is_empty() {
                P::Swap
            } else {
                P::CanaryShift
            };
            s.go(next);
        }
        (P::CanaryShift, Result::Ok) => s.go(P::CanaryWatch),
        (P::CanaryWatch, Result::Ok) => {
            if s.canary_step + 1 < s.canary.len() {
                s.canary_step += 1;
                s.go(P::CanaryShift);
            } else {
                s.go(P::Swap);
            }
        }
        (P::CanaryWatch, Result::Tripped(why)) => {
            s.fail(why);
            s.abort_outcome = Some(Outcome::RolledBack);
            s.go(P::CanaryAbort);
        }
        (P::CanaryWatch, Result::Inconclusive(why)) => {
            s.fail(why);
            s.abort_outcome = Some(Outcome::Inconclusive);
            s.go(P::CanaryAbort);
        }
        (P::CanaryAbort, Result::Ok) => s.go(P::VerifyCanaryAbort),
        (P::VerifyCanaryAbort, Result::Ok) => {
            s.canary_exposed = false;
            let outcome = s.abort_outcome.unwrap_or(Outcome::RolledBack);
            s.end(outcome);
        }
        (P::Swap, Result::Ok | Result::Swapped) => {
            s.production_changed = true;
            s.canary_exposed = false;
            s.go(P::ClearRouting);
        }
        (P::Swap, Result::Ambiguous(why)) => {
            // Assume the worst until state says otherwise.
            s.production_changed = true;
            s.notes.push(format!(
                "the swap's outcome was unknown ({why}); state was read before going on"
            ));
            s.go(P::ResolveSwap);
        }
        (P::ResolveSwap, Result::Swapped) => {
            s.production_changed = true;
            s.canary_exposed = false;
            if s.restoring && s.swap_back {
                s.go(P::SwapBack);
            } else {
                s.go(P::ClearRouting);
            }
        }
        (P::ResolveSwap, Result::NotSwapped) => {
            s.production_changed = false;
            if !s.restoring {
                s.fail("the swap did not happen".into());
            }
            if s.canary_exposed {
                s.abort_outcome.get_or_insert(Outcome::RolledBack);
                s.go(P::CanaryAbort);
            } else {
                s.end(Outcome::FailedBeforeChange);
            }
        }
        (P::ClearRouting, Result::Ok) => s.go(P::VerifyProduction),
        (P::VerifyProduction, Result::Ok) => {
            s.verified = true;
            s.end(Outcome::Promoted);
        }
        (P::SwapBack, Result::Ok | Result::Swapped) => {
            s.production_changed = false;
            s.go(P::ClearRoutingAfterRollback);
        }
        (P::SwapBack, Result::Ambiguous(why)) => {
            s.swap_back_attempts += 1;
            s.notes.push(format!(
                "the swap back's outcome was unknown ({why}); state was read before going on"
            ));
            s.go(P::ResolveSwapBack);
        }
        (P::ResolveSwapBack, Result::Swapped) => {
            s.production_changed = false;
            s.go(P::ClearRoutingAfterRollback);
        }
        (P::ResolveSwapBack, Result::NotSwapped) => {
            // Reading state proved it did not happen: one more try is not
            // a blind repeat.
            if s.swap_back_attempts < 2 {
                s.go(P::SwapBack);
            } else {
                s.rollback_failure = Some("the swap back did not happen".into());
                s.outcome = Some(Outcome::NeedsAttention);
                s.go(P::Finish);
            }
        }
        (P::ClearRoutingAfterRollback, Result::Ok) => s.go(P::VerifyRollback),
        (P::VerifyRollback, Result::Ok) => s.end(Outcome::RolledBack),
        // Failures and anything unexpected.
        (phase, r) => {
            let why = match r {
                Result::Failed(w) | Result::Ambiguous(w) => w,
                other => format!("unexpected result {other:?} in {phase:?}"),
            };
            match phase {
                P::Preflight | P::ClearStaleRouting | P::Upload | P::CheckStaging => {
                    s.fail(why);
                    if s.canary_exposed {
                        s.abort_outcome.get_or_insert(Outcome::RolledBack);
                        s.go(P::CanaryAbort);
                    } else {
                        s.end(Outcome::FailedBeforeChange);
                    }
                }
                P::Swap if !s.canary_exposed => {
                    s.fail(why);
                    s.end(Outcome::FailedBeforeChange);
                }
                // A canary share is live: withdraw it before ending.
                P::CanaryShift | P::CanaryWatch | P::Swap => {
                    s.fail(why);
                    s.abort_outcome.get_or_insert(Outcome::RolledBack);
                    s.go(P::CanaryAbort);
                }
                P::CanaryAbort | P::VerifyCanaryAbort => {
                    s.rollback_failure = Some(why);
                    s.outcome = Some(Outcome::NeedsAttention);
                    s.go(P::Finish);
                }
                // Reading state failed for a reason other than throttling:
                // nothing blind follows.
                P::ResolveSwap | P::ResolveSwapBack => {
                    s.attention(format!("could not learn whether the swap happened: {why}"));
                }
                P::ClearRouting | P::VerifyProduction => {
                    s.fail(why);
                    if s.swap_back {
                        s.go(P::SwapBack);
                    } else {
                        s.outcome = Some(Outcome::NeedsAttention);
                        s.go(P::Finish);
                    }
                }
                P::SwapBack | P::ClearRoutingAfterRollback | P::VerifyRollback => {
                    s.rollback_failure = Some(why);
                    s.outcome = Some(Outcome::NeedsAttention);
                    s.go(P::Finish);
                }
                P::Finish | P::Done => s.go(P::Done),
            }
        }
    }
    s
}

fn after_cleanup(s: &State) -> Phase {
    if s.upload {
        Phase::Upload
    } else {
        Phase::CheckStaging
    }
}

#[cfg(test)]
mod tests {
    use super::Result as R;
    use super::*;

    fn run(upload: bool, results: &[R]) -> State {
        drive(State::new(upload), results)
    }

    fn drive(mut s: State, results: &[R]) -> State {
        for r in results {
            assert!(!s.finished(), "finished early at {:?}", s.trail);
            s = step(s, r.clone());
        }
        s
    }

    fn ok(n: usize) -> Vec<R> {
        vec![R::Ok; n]
    }

    fn signal() -> R {
        R::Stopped(Stop {
            kind: StopKind::Signal,
            detail: "SIGINT".into(),
        })
    }

    fn swaps(s: &State) -> usize {
        s.trail
            .iter()
            .filter(|p| matches!(p, Phase::Swap | Phase::SwapBack))
            .count()
    }

    #[test]
    fn happy_path_promotes() {
        let s = run(true, &ok(7));
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert!(s.finished() && s.verified);
        assert_eq!(
            s.trail,
            [
                Phase::Preflight,
                Phase::Upload,
                Phase::CheckStaging,
                Phase::Swap,
                Phase::ClearRouting,
                Phase::VerifyProduction,
                Phase::Finish,
                Phase::Done
            ]
        );
    }

    #[test]
    fn stale_routing_is_cleared_first() {
        let mut results = vec![R::StaleRouting];
        results.extend(ok(6));
        let s = run(false, &results);
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert_eq!(s.trail[1], Phase::ClearStaleRouting);
    }

    #[test]
    fn staging_failure_never_touches_production() {
        let s = run(false, &[R::Ok, R::Failed("health 500".into()), R::Ok]);
        assert_eq!(s.outcome, Some(Outcome::FailedBeforeChange));
        assert!(!s.trail.contains(&Phase::Swap));
        assert_eq!(s.failure.as_deref(), Some("health 500"));
        assert!(s.finished());
    }

    #[test]
    fn production_verification_failure_swaps_back_and_verifies() {
        let mut results = ok(4);
        results.push(R::Failed("version 2.4.0 != 2.4.1".into()));
        results.extend(ok(4));
        let s = run(false, &results);
        assert_eq!(s.outcome, Some(Outcome::RolledBack));
        assert!(!s.production_changed);
        let i = s.trail.iter().position(|p| *p == Phase::SwapBack).unwrap();
        assert_eq!(
            &s.trail[i..i + 3],
            &[
                Phase::SwapBack,
                Phase::ClearRoutingAfterRollback,
                Phase::VerifyRollback
            ]
        );
        assert!(!s.outcome.unwrap().success());
    }

    #[test]
    fn a_rollback_never_swaps_back_into_the_build_it_replaced() {
        // Preflight, stage, check, swap, clear, verify fails → a human.
        let s = drive(
            State::rollback(),
            &[
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Failed("health 500".into()),
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert!(!s.trail.contains(&Phase::SwapBack));
        // Interrupted after its swap, it finishes making production
        // consistent instead of swapping back.
        let s = drive(State::rollback(), &[R::Ok, R::Ok, R::Ok, R::Ok, signal()]);
        assert_eq!(s.phase, Phase::ClearRouting);
        let s = drive(s, &[R::Ok, R::Ok, R::Ok]);
        assert_eq!(s.outcome, Some(Outcome::Promoted));
    }

    #[test]
    fn an_ambiguous_swap_reads_state_and_never_swaps_twice_blindly() {
        // Timed out for us, but completed: resolve says Swapped → continue.
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ambiguous("timeout".into()),
                R::Swapped,
                R::Ok,
                R::Ok,
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert_eq!(swaps(&s), 1);
        // Did not happen: production untouched.
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ambiguous("timeout".into()),
                R::NotSwapped,
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::FailedBeforeChange));
        assert!(!s.production_changed);
    }

    #[test]
    fn an_unknown_state_needs_a_human_and_changes_nothing_more() {
        // The swap timed out, then Azure stayed unavailable past the
        // deadline: no swap back, needs attention.
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ambiguous("timeout".into()),
                R::Unknown("HTTP 429 for 30m".into()),
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert_eq!(swaps(&s), 1, "{:?}", s.trail);
        assert!(s.finished());
        // The driver never passes Unavailable on, but if it did it would be
        // read as unknown, never as an app failure.
        let s = run(
            false,
            &[R::Ok, R::Ok, R::Ok, R::Unavailable("503".into()), R::Ok],
        );
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert_eq!(swaps(&s), 1);
    }

    #[test]
    fn a_failed_rollback_needs_attention() {
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ok,
                R::Failed("clear".into()),
                R::Failed("409".into()),
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert_eq!(s.rollback_failure.as_deref(), Some("409"));
        assert_eq!(s.failure.as_deref(), Some("clear"));
    }

    #[test]
    fn a_swap_back_proved_not_to_have_happened_is_tried_once_more() {
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Failed("verify".into()),
                R::Ambiguous("t".into()),
                R::NotSwapped,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::RolledBack), "{:?}", s.trail);
        // Twice proved not to happen: a human.
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Failed("verify".into()),
                R::Ambiguous("t".into()),
                R::NotSwapped,
                R::Ambiguous("t".into()),
                R::NotSwapped,
                R::Ok,
            ],
        );
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
    }

    #[test]
    fn a_stop_before_any_change_ends_interrupted() {
        let s = run(false, &[R::Ok, signal(), R::Ok]);
        assert_eq!(s.outcome, Some(Outcome::Interrupted));
        assert!(!s.production_changed && s.finished());
    }

    #[test]
    fn a_stop_during_or_after_the_swap_reads_state_then_swaps_back() {
        // Stopped while the swap was in flight: read state first.
        let s = run(false, &[R::Ok, R::Ok, signal()]);
        assert_eq!(s.phase, Phase::ResolveSwap);
        let s = step(s, R::Swapped);
        assert_eq!(s.phase, Phase::SwapBack);
        let s = drive(s, &ok(4));
        assert_eq!(s.outcome, Some(Outcome::Interrupted));
        assert_eq!(swaps(&s), 2);
        // Stopped during verification: swap back.
        let s = run(false, &[R::Ok, R::Ok, R::Ok, R::Ok, signal()]);
        assert_eq!(s.phase, Phase::SwapBack);
    }

    #[test]
    fn the_journal_resumes_into_a_restore_from_every_phase() {
        // Every prefix of every path, resumed as the post stage would:
        // the result is a restoring state that never promotes an
        // unverified build.
        let choices = [
            R::Ok,
            R::Failed("x".into()),
            R::Ambiguous("t".into()),
            R::Swapped,
            R::NotSwapped,
            R::Tripped("e".into()),
        ];
        let mut stack = vec![State::new(true), State::with_canary(true, vec![10, 50])];
        let mut resumed = 0;
        while let Some(s) = stack.pop() {
            if s.trail.len() > 14 || s.finished() {
                continue;
            }
            let r = resume(
                s.clone(),
                Stop {
                    kind: StopKind::Resumed,
                    detail: "post stage".into(),
                },
            );
            resumed += 1;
            if s.outcome.is_none() {
                assert!(r.restoring, "{:?}", s.trail);
                // Whatever the restore finds, it ends without promoting.
                let mut t = r.clone();
                for _ in 0..20 {
                    if t.finished() {
                        break;
                    }
                    let next = match t.phase {
                        Phase::ResolveSwap | Phase::ResolveSwapBack => R::Swapped,
                        _ => R::Ok,
                    };
                    t = step(t, next);
                }
                assert!(t.finished(), "{:?}", t.trail);
                assert_ne!(
                    t.outcome,
                    Some(Outcome::Promoted),
                    "{:?} → {:?}",
                    s.trail,
                    t.trail
                );
                if s.production_changed || s.phase == Phase::Swap {
                    assert!(
                        t.trail[s.trail.len()..].contains(&Phase::ResolveSwap)
                            || t.trail[s.trail.len()..].contains(&Phase::SwapBack)
                            || t.trail[s.trail.len()..].contains(&Phase::ResolveSwapBack)
                            || t.trail[s.trail.len()..].contains(&Phase::VerifyRollback),
                        "{:?} → {:?}",
                        s.trail,
                        t.trail
                    );
                }
            }
            for c in &choices {
                stack.push(step(s.clone(), c.clone()));
            }
        }
        assert!(resumed > 500, "{resumed}");
    }

    #[test]
    fn already_deployed_is_unchanged() {
        let s = run(false, &[R::AlreadyDeployed, R::Ok]);
        assert_eq!(s.outcome, Some(Outcome::Unchanged));
        assert!(s.outcome.unwrap().success());
        assert!(s.finished());
    }

    fn run_canary(results: &[R]) -> State {
        drive(State::with_canary(false, vec![10, 50]), results)
    }

    #[test]
    fn canary_steps_run_in_order_then_swap() {
        let s = run_canary(&ok(10));
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert_eq!(
            s.trail,
            [
                Phase::Preflight,
                Phase::CheckStaging,
                Phase::CanaryShift,
                Phase::CanaryWatch,
                Phase::CanaryShift,
                Phase::CanaryWatch,
                Phase::Swap,
                Phase::ClearRouting,
                Phase::VerifyProduction,
                Phase::Finish,
                Phase::Done
            ]
        );
        assert_eq!(s.canary_step, 1);
        assert!(!s.canary_exposed);
    }

    #[test]
    fn a_trip_withdraws_the_canary_and_verifies() {
        let s = run_canary(&[
            R::Ok,
            R::Ok,
            R::Ok,
            R::Tripped("error rate".into()),
            R::Ok,
            R::Ok,
            R::Ok,
        ]);
        assert_eq!(s.outcome, Some(Outcome::RolledBack));
        assert_eq!(s.failure.as_deref(), Some("error rate"));
        assert!(!s.trail.contains(&Phase::Swap));
        let i = s
            .trail
            .iter()
            .position(|p| *p == Phase::CanaryAbort)
            .unwrap();
        assert_eq!(s.trail[i + 1], Phase::VerifyCanaryAbort);
        assert!(!s.outcome.unwrap().success());
    }

    #[test]
    fn an_inconclusive_canary_under_fail_is_withdrawn() {
        let s = run_canary(&[
            R::Ok,
            R::Ok,
            R::Ok,
            R::Inconclusive("no traffic".into()),
            R::Ok,
            R::Ok,
            R::Ok,
        ]);
        assert_eq!(s.outcome, Some(Outcome::Inconclusive));
        assert!(!s.outcome.unwrap().success());
    }

    #[test]
    fn a_failed_shift_or_withdrawal_is_handled() {
        // The shift failed: the rule may be half set, so withdraw.
        let s = run_canary(&[R::Ok, R::Ok, R::Failed("409".into()), R::Ok, R::Ok, R::Ok]);
        assert_eq!(s.outcome, Some(Outcome::RolledBack));
        // Withdrawal failed: a human must look.
        let s = run_canary(&[
            R::Ok,
            R::Ok,
            R::Ok,
            R::Tripped("x".into()),
            R::Failed("rule still there".into()),
            R::Ok,
        ]);
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert_eq!(s.rollback_failure.as_deref(), Some("rule still there"));
    }

    #[test]
    fn stopping_a_live_canary_withdraws_it_and_says_why() {
        let s = run_canary(&[R::Ok, R::Ok, R::Ok, signal()]);
        assert_eq!(s.phase, Phase::CanaryAbort);
        let s = drive(s, &ok(3));
        assert_eq!(s.outcome, Some(Outcome::Interrupted));
        assert!(!s.canary_exposed && !s.production_changed);
        // Stopped during the shift itself: the weight may be set.
        let s = run_canary(&[R::Ok, R::Ok, signal()]);
        assert_eq!(s.phase, Phase::CanaryAbort);
        // Preempted by an emergency rollback: the outcome says so.
        let s = run_canary(&[
            R::Ok,
            R::Ok,
            R::Ok,
            R::Stopped(Stop {
                kind: StopKind::Preempted,
                detail: "rollback by octocat".into(),
            }),
            R::Ok,
            R::Ok,
            R::Ok,
        ]);
        assert_eq!(s.outcome, Some(Outcome::Preempted));
    }

    #[test]
    fn a_lost_lock_stops_without_another_change() {
        let s = run_canary(&[R::Ok, R::Ok, R::Ok, R::LockLost("taken by run 7".into())]);
        assert_eq!(s.outcome, Some(Outcome::NeedsAttention));
        assert!(s.finished());
        assert!(!s.trail.contains(&Phase::CanaryAbort));
    }

    #[test]
    fn every_path_terminates() {
        // Exhaustive over short sequences of results: the machine always
        // reaches Done within a bounded number of steps.
        let choices = [
            R::Ok,
            R::Failed("x".into()),
            R::Ambiguous("t".into()),
            R::Swapped,
            R::NotSwapped,
            R::Tripped("e".into()),
            R::Inconclusive("i".into()),
            R::Unknown("u".into()),
            signal(),
        ];
        let mut stack = vec![
            State::new(true),
            State::with_canary(true, vec![5, 50]),
            State::rollback(),
        ];
        let mut visited = 0;
        while let Some(s) = stack.pop() {
            visited += 1;
            assert!(s.trail.len() < 40, "loop: {:?}", s.trail);
            if s.finished() {
                assert!(s.outcome.is_some(), "{:?}", s.trail);
                continue;
            }
            for c in &choices {
                stack.push(step(s.clone(), c.clone()));
            }
        }
        assert!(visited > 1000);
    }
}
