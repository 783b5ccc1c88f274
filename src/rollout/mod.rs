//! The deploy as an explicit state machine.
//!
//! [`step`] is pure: given where the rollout is and what the last phase's
//! work found, it says where to go next. A driver performs each phase's I/O
//! and feeds the result back. Keeping the decisions here means every path —
//! including the unhappy ones — is a unit test, and the journal the driver
//! writes after each step is enough for the post stage to finish the job.
//!
//! The rules that make it safe:
//! - nothing changes production before [`Phase::Swap`]; any failure before
//!   it ends with production untouched (`failed-before-change`);
//! - a swap whose outcome is unknown goes to [`Phase::ResolveSwap`] (read
//!   the state), never straight to another swap;
//! - any failure after the swap goes to [`Phase::SwapBack`] and then
//!   verifies that the previous version serves;
//! - cancellation stops where it is; the journal says whether production
//!   changed, and the post stage restores a safe state from there;
//! - a canary (a share of production traffic on the new build, before the
//!   swap) that trips the breaker, fails to shift, or stays inconclusive
//!   under `on-inconclusive: fail` is withdrawn ([`Phase::CanaryAbort`]) and
//!   production is verified to serve only the previous build.

use serde::{Deserialize, Serialize};

pub mod app_service;
pub mod canary;
pub mod container_apps;
pub mod driver;
pub mod multi;
pub mod target;

/// Where the rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Read-only checks: app, slot, versions, leftovers, other runs.
    Preflight,
    /// Take the per-app deploy lease.
    AcquireLease,
    /// Remove routing rules an earlier canary left behind.
    ClearStaleRouting,
    /// Upload the package to the staging slot.
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
    /// Give the lease back.
    ReleaseLease,
    /// The end.
    Done,
}

/// How the rollout ended (the `result` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The new version serves production, verified.
    Promoted,
    /// A failure after the swap; the previous version serves again, verified.
    RolledBack,
    /// Nothing to do (production already on the target).
    Unchanged,
    /// Failed before production was changed; production untouched.
    FailedBeforeChange,
    /// Production's state could not be restored or verified: a human must
    /// look (the summary says what is known).
    NeedsAttention,
    /// Stopped by cancellation; the journal and the post stage finish.
    Interrupted,
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
            Outcome::Inconclusive => "inconclusive",
        }
    }

    /// Whether the run succeeded (exit 0).
    pub fn success(self) -> bool {
        matches!(self, Outcome::Promoted | Outcome::Unchanged)
    }
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
    /// A signal or the deadline stopped the phase.
    Cancelled,
}

/// What the rollout knows, enough to resume or to restore safety.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Current phase.
    pub phase: Phase,
    /// Whether a package upload is part of this rollout.
    pub upload: bool,
    /// Preflight found routing rules left behind, to clear after the lease.
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
        self.outcome = Some(outcome);
        self.go(Phase::ReleaseLease);
    }
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
    if r == Result::Cancelled {
        // Stop starting changes. The journal (this state) tells the post
        // stage whether production changed; it restores from there.
        if s.outcome.is_none() {
            s.outcome = Some(
                if (s.production_changed || s.canary_exposed) && !s.verified {
                    Outcome::Interrupted
                } else if s.verified {
                    Outcome::Promoted
                } else {
                    Outcome::FailedBeforeChange
                },
            );
        }
        s.fail("cancelled".into());
        s.go(P::Done);
        return s;
    }
    match (s.phase, r) {
        (P::Preflight, Result::Ok) => s.go(P::AcquireLease),
        (P::Preflight, Result::StaleRouting) => {
            s.clear_stale = true;
            s.go(P::AcquireLease);
        }
        (P::Preflight, Result::AlreadyDeployed) => {
            s.outcome = Some(Outcome::Unchanged);
            s.go(P::Done);
        }
        (P::AcquireLease, Result::Ok) => {
            let next = if s.clear_stale {
                P::ClearStaleRouting
            } else {
                after_cleanup(&s)
            };
            s.go(next);
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
            s.canary_exposed = false;
            s.go(P::ClearRouting);
        }
        (P::ResolveSwap, Result::NotSwapped) => {
            s.production_changed = false;
            s.fail("the swap did not happen".into());
            if s.canary_exposed {
                s.abort_outcome = Some(Outcome::RolledBack);
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
            s.rollback_failure = Some("the swap back did not happen".into());
            s.end(Outcome::NeedsAttention);
        }
        (P::ClearRoutingAfterRollback, Result::Ok) => s.go(P::VerifyRollback),
        (P::VerifyRollback, Result::Ok) => s.end(Outcome::RolledBack),
        (P::ReleaseLease, _) => s.go(P::Done),
        (P::Done, _) => {}
        // Failures and anything unexpected.
        (phase, r) => {
            let why = match r {
                Result::Failed(w) | Result::Ambiguous(w) => w,
                other => format!("unexpected result {other:?} in {phase:?}"),
            };
            match phase {
                P::Preflight | P::AcquireLease => {
                    s.fail(why);
                    s.outcome = Some(Outcome::FailedBeforeChange);
                    // No lease was taken (or taking it failed): nothing to release.
                    s.go(P::Done);
                }
                P::ClearStaleRouting | P::Upload | P::CheckStaging => {
                    s.fail(why);
                    s.end(Outcome::FailedBeforeChange);
                }
                P::Swap if !s.canary_exposed => {
                    s.fail(why);
                    s.end(Outcome::FailedBeforeChange);
                }
                // A canary share is live: withdraw it before ending.
                P::CanaryShift | P::CanaryWatch | P::Swap => {
                    s.fail(why);
                    s.abort_outcome = Some(Outcome::RolledBack);
                    s.go(P::CanaryAbort);
                }
                P::CanaryAbort | P::VerifyCanaryAbort => {
                    s.rollback_failure = Some(why);
                    s.end(Outcome::NeedsAttention);
                }
                P::ResolveSwap | P::ClearRouting | P::VerifyProduction => {
                    s.fail(why);
                    s.go(P::SwapBack);
                }
                P::SwapBack
                | P::ResolveSwapBack
                | P::ClearRoutingAfterRollback
                | P::VerifyRollback => {
                    s.rollback_failure = Some(why);
                    s.end(Outcome::NeedsAttention);
                }
                P::ReleaseLease | P::Done => s.go(P::Done),
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
        let mut s = State::new(upload);
        for r in results {
            assert!(!s.finished(), "finished early at {:?}", s.trail);
            s = step(s, r.clone());
        }
        s
    }

    fn ok(n: usize) -> Vec<R> {
        vec![R::Ok; n]
    }

    #[test]
    fn happy_path_promotes() {
        let s = run(true, &ok(8));
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert!(s.finished() && s.verified);
        assert_eq!(
            s.trail,
            [
                Phase::Preflight,
                Phase::AcquireLease,
                Phase::Upload,
                Phase::CheckStaging,
                Phase::Swap,
                Phase::ClearRouting,
                Phase::VerifyProduction,
                Phase::ReleaseLease,
                Phase::Done
            ]
        );
    }

    #[test]
    fn stale_routing_is_cleared_after_the_lease() {
        // No upload: lease, clear stale, staging, swap, clear, verify, release.
        let mut results = vec![R::StaleRouting];
        results.extend(ok(7));
        let s = run(false, &results);
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        let lease = s
            .trail
            .iter()
            .position(|p| *p == Phase::AcquireLease)
            .unwrap();
        assert_eq!(s.trail[lease + 1], Phase::ClearStaleRouting);
    }

    #[test]
    fn staging_failure_never_touches_production() {
        let s = run(
            false,
            &[R::Ok, R::Ok, R::Failed("health 500".into()), R::Ok],
        );
        assert_eq!(s.outcome, Some(Outcome::FailedBeforeChange));
        assert!(!s.trail.contains(&Phase::Swap));
        assert!(
            s.trail.contains(&Phase::ReleaseLease),
            "the lease is given back"
        );
        assert_eq!(s.failure.as_deref(), Some("health 500"));
    }

    #[test]
    fn production_verification_failure_swaps_back_and_verifies() {
        let s = run(
            false,
            &[
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
                R::Failed("version 2.4.0 != 2.4.1".into()),
                R::Ok,
                R::Ok,
                R::Ok,
                R::Ok,
            ],
        );
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
    fn an_ambiguous_swap_reads_state_and_never_swaps_twice_blindly() {
        // Timed out for us, but completed: resolve says Swapped → continue.
        let s = run(
            false,
            &[
                R::Ok,
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
        assert_eq!(s.trail.iter().filter(|p| **p == Phase::Swap).count(), 1);
        // Did not happen: production untouched.
        let s = run(
            false,
            &[
                R::Ok,
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
    fn a_failed_rollback_needs_attention() {
        let s = run(
            false,
            &[
                R::Ok,
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
    fn cancellation_records_whether_production_changed() {
        let s = run(false, &[R::Ok, R::Ok, R::Cancelled]);
        assert_eq!(
            (s.outcome, s.production_changed),
            (Some(Outcome::FailedBeforeChange), false)
        );
        let s = run(false, &[R::Ok, R::Ok, R::Ok, R::Ok, R::Cancelled]);
        assert_eq!(
            (s.outcome, s.production_changed),
            (Some(Outcome::Interrupted), true)
        );
        assert!(s.finished());
    }

    #[test]
    fn already_deployed_is_unchanged() {
        let s = run(false, &[R::AlreadyDeployed]);
        assert_eq!(s.outcome, Some(Outcome::Unchanged));
        assert!(s.outcome.unwrap().success());
    }

    fn run_canary(results: &[R]) -> State {
        let mut s = State::with_canary(false, vec![10, 50]);
        for r in results {
            assert!(!s.finished(), "finished early at {:?}", s.trail);
            s = step(s, r.clone());
        }
        s
    }

    #[test]
    fn canary_steps_run_in_order_then_swap() {
        let s = run_canary(&ok(11));
        assert_eq!(s.outcome, Some(Outcome::Promoted));
        assert_eq!(
            s.trail,
            [
                Phase::Preflight,
                Phase::AcquireLease,
                Phase::CheckStaging,
                Phase::CanaryShift,
                Phase::CanaryWatch,
                Phase::CanaryShift,
                Phase::CanaryWatch,
                Phase::Swap,
                Phase::ClearRouting,
                Phase::VerifyProduction,
                Phase::ReleaseLease,
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
        let s = run_canary(&[
            R::Ok,
            R::Ok,
            R::Ok,
            R::Failed("409".into()),
            R::Ok,
            R::Ok,
            R::Ok,
        ]);
        assert_eq!(s.outcome, Some(Outcome::RolledBack));
        // Withdrawal failed: a human must look.
        let s = run_canary(&[
            R::Ok,
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
    fn cancelling_a_live_canary_is_an_interruption() {
        let s = run_canary(&[R::Ok, R::Ok, R::Ok, R::Ok, R::Cancelled]);
        assert_eq!(s.outcome, Some(Outcome::Interrupted));
        assert!(s.canary_exposed && !s.production_changed);
        // Cancelled during the shift itself: the weight may be set.
        let s = run_canary(&[R::Ok, R::Ok, R::Ok, R::Cancelled]);
        assert_eq!(s.outcome, Some(Outcome::Interrupted));
        assert!(s.canary_exposed);
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
            R::Cancelled,
        ];
        let mut stack = vec![State::new(true), State::with_canary(true, vec![5, 50])];
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
