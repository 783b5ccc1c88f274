//! The statistical canary circuit breaker: pure code (no I/O, no clock).
//!
//! The driver feeds [`Batch`]es of counter increments (canary, and the
//! concurrent baseline when it has one); [`Breaker::observe`] answers
//! [`Verdict::Trip`] as soon as the evidence allows, and [`Breaker::judge`]
//! decides PASS / INCONCLUSIVE for the current canary step. Measured
//! behaviour is in `docs/bench-breaker.md`; in brief:
//!
//! **Tests (all trip-only and always valid: Ville's inequality on a test
//! supermartingale, so the driver may look after every batch, forever).**
//!
//! 1. *Error rate*, an intersection–union test (IUT). It trips only when BOTH
//!    - the one-sample grid-mixture e-process of the canary against
//!      `p0 = baseline_error_rate` (alternatives `p1·{1, 3, 10, 30}` and 90 %,
//!      equal weights) has reached `ln(1/α_e)`, and
//!    - the two-sample e-process of the canary against the concurrent baseline
//!      (equal-weight mixture of the failure-split test with `ρ1 = rate_ratio`
//!      and 2×2 "safe" e-values with the same canary grid, see [`split`]) has
//!      reached `ln(1/α_e)`.
//!
//!    Each is level α_e under its own null, so the AND is level α_e under the
//!    union of the nulls ("canary no worse than p0" OR "canary no worse than
//!    the baseline"): a common-mode burst or drift that lifts both arms
//!    cannot trip it, and neither can a canary that is worse than an
//!    unusually clean baseline but still under p0. Each component is latched
//!    at its running maximum (the event "both ever crossed" is inside "this
//!    one ever crossed", so the AND stays level α_e). When no batch has
//!    carried a baseline (`baseline: None`), only the one-sample test
//!    applies: robustness to drift and bursts NEEDS a baseline.
//!    The trip is reported as [`TestKind::ErrorRate`] when the one-sample
//!    test crossed last (or there is no baseline), [`TestKind::FailureSplit`]
//!    when the comparison with the baseline was the binding one.
//! 2. *Latency* (when `latency_threshold` is set and the batches carry
//!    `slow` counts): the same IUT on "slow" indicators, one-sample against
//!    `q0 =` [`LATENCY_Q0`] (the threshold is meant to sit near the
//!    baseline's p99) and two-sample against the baseline's slow counts
//!    (which does not depend on where the threshold really sits).
//! 3. *Late onset*: CUSUM with paid-for restarts ([`cusum`]) of the SPRT
//!    increments (p0 → p1) AND of the failure-split increments; trips when
//!    both are currently above `ln(1/α_l)` (one-sample alone when there is no
//!    baseline). This removes the inertia a trip-only test accumulates on a
//!    long healthy stretch.
//!
//! **Clumped failures.** Every likelihood ratio above treats failures as
//! independent, so a clump (a request and its retries, one sick instance)
//! counts as several pieces of evidence and false-trips good canaries
//! (2–22 % against a 1 % budget, `examples/bench_clumping.rs`). The tests
//! count clumps instead ([`split::Counted`]): the canary's failures as at
//! least how many clumps they must be — a run of consecutive batches with
//! canary failures is `max(1, Σ x/φ̂)` clumps ([`split::ClumpCount`]) — and
//! the baseline's as at most (one each); `φ̂` is the clump index estimated
//! from both arms' earlier batches ([`split::Clumping`]). The failure split
//! so counted stays valid under "canary no worse than production" when
//! clumps hold at most `φ̂` failures and fall in consecutive batches; a
//! lone failure counts in full, so low traffic pays nothing for it.
//! `independent_failures` counts every failure (the `failure-clumping:
//! independent` input).
//!
//! **Production's history.** Until `φ̂` has seen failures it stays near its
//! prior (1.5), and a run of failures in the first batches counts a
//! little less than one each. Where the evidence source keeps history
//! (Prometheus, Azure Monitor), the driver feeds production's batches from before the
//! watch ([`Breaker::learn_production`]) at the watch's cadence: the
//! estimate then starts from hundreds of production failures. They feed
//! the estimate only, never a test's statistic; being fixed before the
//! first batch they keep it predictable. The canary's clients are
//! production's clients (the traffic is split, not chosen), so their
//! retries clump the same way; a clumping that starts during the watch
//! moves the estimate more slowly than it would without history.
//!
//! **Low traffic and spills.** A batch in which one arm had no request
//! teaches the two-sample tests nothing, so its counts wait, summed, until
//! both arms have had requests (`Grouping`: a rule on request counts only,
//! so still predictable). The two-sample mixture also bets on rate ratios
//! 2 and 4 (small prior weight, [`split::SPILL_WEIGHT`]), for a shared
//! dependency that drags the baseline up with the canary, and its estimate
//! of the baseline's rate forgets in a minute with a light prior (power
//! only, never validity); one more 2×2 component bets on the rates
//! estimated so far ([`split::PLUG_IN_WEIGHT`]), which follows a spill
//! and a canary rate between the grid's points.
//!
//! **α split (Bonferroni over active tests).** Latency on: error α/2,
//! latency α/4, late onset α/4. Latency off: error 3α/4, late onset α/4.
//! The error test gets the largest share because it is the one that must
//! stop outages in 2–4 requests; the late-onset guard is a backstop whose
//! threshold also carries the restart penalty.
//!
//! **Guards.** No minimum-sample guard on any TRIP (the thresholds hold at
//! every n). PASS needs the window to have elapsed AND `min_requests` canary
//! requests in the step. No canary request for `max_silence` seconds gives
//! INCONCLUSIVE, and so does a baseline series that, once seen, is missing
//! or counts no request (empty or stale) while the canary counts some, for
//! `max_silence`; empty batches add no evidence (they can never trip).
//! Batches that start inside the warm-up are ignored by the statistics.
//! Crossing uses a 1e-9 slack (`2·ln 10 = ln 100` must trip at α = 1 %).
/// Baseline requests the canary's requests must make expected before a
/// baseline that counts none is a hole (see [`Breaker::set_canary_share`]).
pub const HOLE_EXPECTED: f64 = 8.0;

pub mod cusum;
pub mod sim;
pub mod split;
pub mod sprt;

use cusum::RestartCusum;
use split::{ClumpCount, Clumping, Counted, FailureSplit, Pair, TwoSample};
use sprt::{GridMixture, Sprt};

/// Slack for "exactly on the boundary counts as crossing".
pub const SLACK: f64 = 1e-9;
/// Null slow fraction of the one-sample latency test.
pub const LATENCY_Q0: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Whole-rollout false-trip budget, split across the trip tests.
    pub alpha: f64,
    /// p0: acceptable absolute error rate.
    pub baseline_error_rate: f64,
    /// p1: error rate that must be caught (design alternative).
    pub max_error_rate: f64,
    /// ρ1 for the two-sample failure-split test.
    pub rate_ratio: f64,
    /// Seconds; `None` turns the latency test off.
    pub latency_threshold: Option<f64>,
    /// Minimum canary requests within a step before that step may PASS.
    pub min_requests: u64,
    /// Seconds after watch start whose data is ignored.
    pub warmup: f64,
    /// Seconds with no canary requests → INCONCLUSIVE; so is a baseline
    /// series, once seen, missing or counting no request while the canary
    /// counts some for this long.
    pub max_silence: f64,
    /// Treat failures as independent: no tempering by how they clump (the
    /// breaker before issue 16; the clumping benchmark's baseline).
    #[serde(default)]
    pub independent_failures: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let mut s = Settings {
            alpha: 0.01,
            baseline_error_rate: 0.001,
            max_error_rate: 0.01,
            rate_ratio: 10.0,
            latency_threshold: None,
            min_requests: 0,
            warmup: 0.0,
            max_silence: 120.0,
            independent_failures: false,
        };
        s.min_requests = s.suggested_min_requests();
        s
    }
}

impl Settings {
    /// Clean canary requests after which Wald's two-sided SPRT (p0 vs p1,
    /// α = β = `alpha`) would accept: `⌈ln(β/(1−α)) / ln((1−p1)/(1−p0))⌉`
    /// (508 for the defaults). A sensible `min_requests`.
    pub fn suggested_min_requests(&self) -> u64 {
        let s = Sprt::new(
            self.baseline_error_rate,
            self.max_error_rate,
            self.alpha,
            self.alpha,
        );
        let n = (s.lower / s.b).ceil();
        if n.is_finite() && n > 0.0 {
            n as u64
        } else {
            0
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let ok = |x: f64, lo: f64, hi: f64| x.is_finite() && x > lo && x < hi;
        if !ok(self.alpha, 0.0, 0.5) {
            return Err(SettingsError::Alpha(self.alpha));
        }
        if !ok(self.baseline_error_rate, 0.0, 1.0) {
            return Err(SettingsError::BaselineErrorRate(self.baseline_error_rate));
        }
        if !ok(self.max_error_rate, self.baseline_error_rate, 1.0) {
            return Err(SettingsError::MaxErrorRate {
                max: self.max_error_rate,
                baseline: self.baseline_error_rate,
            });
        }
        if !ok(self.rate_ratio, 1.0, f64::INFINITY) {
            return Err(SettingsError::RateRatio(self.rate_ratio));
        }
        if let Some(t) = self.latency_threshold
            && !ok(t, 0.0, f64::INFINITY)
        {
            return Err(SettingsError::LatencyThreshold(t));
        }
        if !(self.warmup.is_finite() && self.warmup >= 0.0) {
            return Err(SettingsError::Warmup(self.warmup));
        }
        if !ok(self.max_silence, 0.0, f64::INFINITY) {
            return Err(SettingsError::MaxSilence(self.max_silence));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("breaker alpha must be a number in (0, 0.5), got {0}")]
    Alpha(f64),
    #[error("baseline error rate must be in (0, 1), got {0}")]
    BaselineErrorRate(f64),
    #[error(
        "max error rate must be above the baseline error rate ({baseline}) and below 1, got {max}"
    )]
    MaxErrorRate { max: f64, baseline: f64 },
    #[error("rate ratio must be a finite number above 1, got {0}")]
    RateRatio(f64),
    #[error("latency threshold must be a positive number of seconds, got {0}")]
    LatencyThreshold(f64),
    #[error("warm-up must be a non-negative number of seconds, got {0}")]
    Warmup(f64),
    #[error("max silence must be a positive number of seconds, got {0}")]
    MaxSilence(f64),
}

/// Counter increments of one arm within one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Arm {
    pub requests: u64,
    pub failures: u64,
    pub slow: Option<u64>,
}

/// One batch; times are seconds since watch start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch {
    pub start: f64,
    pub end: f64,
    pub canary: Arm,
    pub baseline: Option<Arm>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Verdict {
    Continue,
    Trip(Trip),
}

/// Statistic and threshold in nats (log e-value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trip {
    pub test: TestKind,
    pub statistic: f64,
    pub threshold: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    ErrorRate,
    FailureSplit,
    Latency,
    LateOnset,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Judgement {
    Continue,
    Pass,
    Inconclusive(String),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    pub canary: Totals,
    pub baseline: Option<Totals>,
    pub tests: Vec<TestState>,
    pub tripped: Option<Trip>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub failures: u64,
    pub slow: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestState {
    pub test: TestKind,
    pub statistic: f64,
    pub threshold: f64,
    pub description: String,
}

/// Constants derived from [`Settings`] (reported in summaries and tests).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Design {
    pub alpha_error: f64,
    pub alpha_latency: f64,
    pub alpha_late: f64,
    /// `ln(1/α_e)`, nats.
    pub error_threshold: f64,
    /// `ln(1/α_latency)`, nats (∞ when the latency test is off).
    pub latency_threshold: f64,
    /// `ln(1/α_l)`, nats (before the restart penalty).
    pub late_threshold: f64,
    /// Canary error-rate alternatives of the mixtures.
    pub error_grid: Vec<f64>,
    /// Slow-fraction alternatives of the latency mixtures.
    pub latency_grid: Vec<f64>,
    /// Canary requests between late-onset restart points.
    pub restart_spacing: u64,
}

fn grid(p0: f64, p1: f64) -> Vec<f64> {
    let mut g: Vec<f64> = [1.0, 3.0, 10.0, 30.0]
        .iter()
        .map(|m| p1 * m)
        .filter(|&p| p > p0 && p < 0.9)
        .collect();
    g.push(0.9f64.max((p1 + 1.0) / 2.0).min(0.999));
    if !g.iter().any(|&p| p > p0) {
        g.push((p0 + 1.0) / 2.0);
    }
    g.retain(|&p| p > p0);
    g
}

impl Design {
    pub fn new(s: &Settings) -> Design {
        let latency_on = s.latency_threshold.is_some();
        let (alpha_error, alpha_latency) = if latency_on {
            (s.alpha / 2.0, s.alpha / 4.0)
        } else {
            (s.alpha * 0.75, 0.0)
        };
        let alpha_late = s.alpha / 4.0;
        let late = Sprt::new(
            s.baseline_error_rate,
            s.max_error_rate,
            alpha_late,
            alpha_late,
        );
        Design {
            alpha_error,
            alpha_latency,
            alpha_late,
            error_threshold: (1.0 / alpha_error).ln(),
            latency_threshold: if latency_on {
                (1.0 / alpha_latency).ln()
            } else {
                f64::INFINITY
            },
            late_threshold: (1.0 / alpha_late).ln(),
            error_grid: grid(s.baseline_error_rate, s.max_error_rate),
            latency_grid: grid(LATENCY_Q0, 3.0 * LATENCY_Q0),
            restart_spacing: ((1.0 / -late.b).ceil() as u64).max(10),
        }
    }
}

/// IUT of a one-sample mixture and a two-sample mixture on one binary
/// indicator (failure, or slow).
#[derive(Debug, Clone, PartialEq)]
struct Iut {
    one: GridMixture,
    two: TwoSample,
    threshold: f64,
    /// Which component crossed first (0 = one-sample, 1 = two-sample).
    first_cross: [Option<u64>; 2],
    batches: u64,
}

impl Iut {
    fn new(p0: f64, grid: &[f64], rho1: f64, threshold: f64) -> Iut {
        Iut {
            one: GridMixture::new(p0, grid),
            two: TwoSample::new(rho1, grid, p0),
            threshold,
            first_cross: [None, None],
            batches: 0,
        }
    }

    /// One batch: the canary's (failures, successes) for the one-sample
    /// test, failures counted as clumps; for the two-sample test, whether
    /// the baseline's series was there and the pair to add when both arms
    /// have had requests (see `Grouping`).
    fn update(&mut self, end: f64, one: (f64, f64), base: Base) {
        self.batches += 1;
        self.one.update_counted(one.0, one.1);
        if base.present {
            self.two.note_seen();
        }
        if let Some((pair, counted)) = base.ready {
            self.two.update(end, pair, counted);
        }
        let t = self.threshold - SLACK;
        if self.first_cross[0].is_none() && self.one.max() >= t {
            self.first_cross[0] = Some(self.batches);
        }
        if self.first_cross[1].is_none() && self.two.max() >= t {
            self.first_cross[1] = Some(self.batches);
        }
    }

    /// `Some(true)` when tripped with the two-sample test binding, `Some(false)`
    /// when the one-sample test was binding (or there is no baseline).
    fn tripped(&self) -> Option<bool> {
        let one = self.first_cross[0]?;
        if !self.two.seen() {
            return Some(false);
        }
        let two = self.first_cross[1]?;
        Some(two >= one)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct LateOnset {
    sprt: Sprt,
    split: FailureSplit,
    one: RestartCusum,
    two: RestartCusum,
    baseline_seen: bool,
    since_restart: u64,
    spacing: u64,
    threshold: f64,
}

impl LateOnset {
    fn update(&mut self, n_c: u64, one: (f64, f64), base: Base) {
        self.one.add(self.sprt.increment_counted(one.0, one.1));
        if base.present {
            self.baseline_seen = true;
        }
        if let Some((pair, counted)) = base.ready {
            self.two.add(self.split.increment_counted(pair, counted));
        }
        self.since_restart += n_c;
        if self.since_restart >= self.spacing {
            self.since_restart = 0;
            self.one.restart_here();
            self.two.restart_here();
        }
    }

    fn tripped(&self) -> bool {
        let t = self.threshold - SLACK;
        self.one.statistic() >= t && (!self.baseline_seen || self.two.statistic() >= t)
    }
}

/// What a batch gives the two-sample tests.
#[derive(Debug, Clone, Copy)]
struct Base {
    /// The baseline's series was in the batch.
    present: bool,
    /// Counts to add now (both arms have had requests since the last
    /// pair), and how much evidence each is.
    ready: Option<(Pair, Counted)>,
}

/// Low traffic: a batch in which one arm had no request teaches a
/// two-sample test nothing (a canary failure with no baseline request
/// beside it counted for nothing), so the counts wait, summed, until both
/// arms have had requests. The rule looks at request counts only, never
/// at failures, so the grouped pairs stay predictable and every test keeps
/// its level.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Grouping {
    pending: Option<Pair>,
}

impl Grouping {
    fn add(&mut self, n_c: u64, x_c: u64, n_b: u64, x_b: u64) -> Option<Pair> {
        let p = self.pending.get_or_insert(Pair {
            n_c: 0,
            x_c: 0,
            n_b: 0,
            x_b: 0,
        });
        p.n_c += n_c;
        p.x_c += x_c;
        p.n_b += n_b;
        p.x_b += x_b;
        if p.n_c > 0 && p.n_b > 0 {
            self.pending.take()
        } else {
            None
        }
    }
}

/// The breaker. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    settings: Settings,
    design: Design,
    error: Iut,
    latency: Option<Iut>,
    late: LateOnset,
    canary: Totals,
    baseline: Option<Totals>,
    tripped: Option<Trip>,
    step_start: f64,
    step_requests: u64,
    last_canary: f64,
    /// A batch has carried the baseline's series.
    baseline_seen: bool,
    /// Since when (seconds) the canary's requests have had no baseline to
    /// be compared with — its series missing, or there but counting no
    /// request (an empty or stale series reads as a zero increment) —
    /// once the series had been seen; `None` while the baseline counts.
    unheard_since: Option<f64>,
    /// Canary requests counted since `unheard_since`.
    unheard_canary: u64,
    /// The canary's share of the traffic in this step (`set_canary_share`):
    /// how many baseline requests its requests make expected.
    canary_share: f64,
    /// The longest such stretch in this step.
    step_baseline_gap: f64,
    /// How failures clump (how many clumps a run of canary failures is).
    clumping: Clumping,
    /// The canary's failures per batch as clumps (one-sample tests).
    clumps_one: ClumpCount,
    /// The canary's failures per grouped pair as clumps (two-sample tests).
    clumps_two: ClumpCount,
    /// Counts waiting for both arms to have had requests.
    grouping: Grouping,
}

impl Breaker {
    pub fn new(s: Settings) -> Result<Breaker, SettingsError> {
        s.validate()?;
        let d = Design::new(&s);
        let error = Iut::new(
            s.baseline_error_rate,
            &d.error_grid,
            s.rate_ratio,
            d.error_threshold,
        );
        let latency = s.latency_threshold.map(|_| {
            Iut::new(
                LATENCY_Q0,
                &d.latency_grid,
                s.rate_ratio,
                d.latency_threshold,
            )
        });
        let late = LateOnset {
            sprt: Sprt::new(
                s.baseline_error_rate,
                s.max_error_rate,
                d.alpha_late,
                d.alpha_late,
            ),
            split: FailureSplit { rho1: s.rate_ratio },
            one: RestartCusum::new(),
            two: RestartCusum::new(),
            baseline_seen: false,
            since_restart: 0,
            spacing: d.restart_spacing,
            threshold: d.late_threshold,
        };
        Ok(Breaker {
            settings: s,
            design: d,
            error,
            latency,
            late,
            canary: Totals::default(),
            baseline: None,
            tripped: None,
            step_start: 0.0,
            step_requests: 0,
            last_canary: 0.0,
            baseline_seen: false,
            unheard_since: None,
            unheard_canary: 0,
            canary_share: 0.1,
            step_baseline_gap: 0.0,
            clumping: Clumping::default(),
            clumps_one: ClumpCount::default(),
            clumps_two: ClumpCount::default(),
            grouping: Grouping::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn design(&self) -> &Design {
        &self.design
    }

    /// One batch of production's traffic from before the watch (requests
    /// and failures in one interval of the watch's cadence): it teaches
    /// the clump index how production's failures clump, and nothing else
    /// (see the module docs). Call before the first [`Breaker::observe`].
    pub fn learn_production(&mut self, requests: u64, failures: u64) {
        self.clumping.add_baseline(requests, failures.min(requests));
    }

    /// The clump index the next batch is counted with (1: failures are
    /// independent; 3: each comes with two retries).
    pub fn clump_index(&self) -> f64 {
        if self.settings.independent_failures {
            1.0
        } else {
            self.clumping.index()
        }
    }

    /// Feed one batch of counter increments. Once tripped, stays tripped.
    pub fn observe(&mut self, b: &Batch) -> Verdict {
        if let Some(t) = &self.tripped {
            return Verdict::Trip(t.clone());
        }
        let n_c = b.canary.requests;
        let x_c = b.canary.failures.min(n_c);
        if n_c > 0 {
            self.last_canary = self.last_canary.max(b.end);
        }
        if b.start < self.settings.warmup - SLACK {
            return Verdict::Continue;
        }
        let base = b.baseline.map(|a| (a.requests, a.failures.min(a.requests)));
        // A baseline that was there and went missing (an empty or stale
        // series) is a hole in the comparison the trip needs, not a quiet
        // baseline: `judge` never passes a step across a long one. A
        // source that cannot tell an empty or stale series from a quiet one
        // (Azure Monitor's minute buckets, a frozen counter) reports it as
        // a baseline with no new request: the hole is the same whenever the
        // canary counts requests and the baseline none, and it is timed
        // from the first batch in which it did (a quiet spell on both arms
        // is not one).
        // It counts only once the canary's requests since then make a
        // baseline request all but certain (at a high step and low traffic
        // the baseline is quiet for minutes and is not missing).
        self.baseline_seen |= b.baseline.is_some();
        if base.is_some_and(|(n_b, _)| n_b > 0) {
            self.unheard_since = None;
            self.unheard_canary = 0;
        } else if self.baseline_seen && n_c > 0 {
            self.unheard_since.get_or_insert(b.start);
            self.unheard_canary += n_c;
        }
        if let Some(since) = self.unheard_since
            && self.hole_is_real()
        {
            self.step_baseline_gap = self.step_baseline_gap.max(b.end - since);
        }
        add(&mut self.canary, &b.canary);
        if let Some(a) = &b.baseline {
            add(self.baseline.get_or_insert_with(Totals::default), a);
        }
        self.step_requests += n_c;
        if n_c == 0 && base.is_none_or(|(n_b, _)| n_b == 0) {
            return Verdict::Continue; // no data, no evidence
        }

        // Failures that clump count as clumps (`split::Counted`): the
        // canary's as at least how many clumps they must be, with the index
        // from earlier batches only, so the counting is predictable.
        let temper = 1.0 / self.clump_index();
        // A batch without canary requests neither adds to a run nor ends it
        // (a retry may still come).
        let one = if n_c > 0 {
            (self.clumps_one.add(x_c, temper), (n_c - x_c) as f64)
        } else {
            (0.0, 0.0)
        };
        let ready = base.and_then(|(n_b, x_b)| self.grouping.add(n_c, x_c, n_b, x_b));
        let grouped = Base {
            present: base.is_some(),
            ready: ready.map(|p| {
                let counted = Counted {
                    x_c: self.clumps_two.add(p.x_c, temper),
                    ..Counted::plain(p)
                };
                (p, counted)
            }),
        };
        self.error.update(b.end, one, grouped);
        if let Some(lat) = &mut self.latency
            && let Some(s_c) = b.canary.slow
        {
            // Slow requests are not failures: counted as they are.
            let s_c = s_c.min(n_c);
            let base_slow = b.baseline.and_then(|a| {
                a.slow.map(|s| Pair {
                    n_c,
                    x_c: s_c,
                    n_b: a.requests,
                    x_b: s.min(a.requests),
                })
            });
            let slow = Base {
                present: base_slow.is_some(),
                ready: base_slow
                    .filter(|p| p.n_c > 0 && p.n_b > 0)
                    .map(|p| (p, Counted::plain(p))),
            };
            lat.update(b.end, (s_c as f64, (n_c - s_c) as f64), slow);
        }
        self.late.update(n_c, one, grouped);
        self.clumping.add_canary(n_c, x_c);
        if let Some((n_b, x_b)) = base {
            self.clumping.add_baseline(n_b, x_b);
        }

        self.tripped = self.check();
        match &self.tripped {
            Some(t) => Verdict::Trip(t.clone()),
            None => Verdict::Continue,
        }
    }

    fn check(&self) -> Option<Trip> {
        let error = self.error.tripped();
        let latency = self.latency.as_ref().is_some_and(|l| l.tripped().is_some());
        if error.is_none() && !latency && !self.late.tripped() {
            return None;
        }
        let c = self.canary;
        let counts = match self.baseline {
            Some(b) => format!(
                "canary {}/{} failed, baseline {}/{}",
                c.failures, c.requests, b.failures, b.requests
            ),
            None => format!("canary {}/{} failed, no baseline", c.failures, c.requests),
        };
        if let Some(two_binding) = error {
            let e = &self.error;
            let (test, statistic) = if two_binding {
                (TestKind::FailureSplit, e.two.max())
            } else {
                (TestKind::ErrorRate, e.one.max())
            };
            let reason = if e.two.seen() {
                format!(
                    "canary error rate is above both {:.3} % and the concurrent baseline's: \
                     log e-values {:.2} (vs p0) and {:.2} (vs baseline) ≥ {:.2} (α = {}); {counts}",
                    self.settings.baseline_error_rate * 100.0,
                    e.one.max(),
                    e.two.max(),
                    e.threshold,
                    self.design.alpha_error
                )
            } else {
                format!(
                    "canary error rate is above {:.3} %: log e-value {:.2} ≥ {:.2} (α = {}); {counts}",
                    self.settings.baseline_error_rate * 100.0,
                    e.one.max(),
                    e.threshold,
                    self.design.alpha_error
                )
            };
            return Some(Trip {
                test,
                statistic,
                threshold: e.threshold,
                reason,
            });
        }
        if let Some(lat) = self.latency.as_ref().filter(|_| latency) {
            let tau = self.settings.latency_threshold.unwrap_or_default();
            return Some(Trip {
                test: TestKind::Latency,
                statistic: if lat.two.seen() {
                    lat.one.max().min(lat.two.max())
                } else {
                    lat.one.max()
                },
                threshold: lat.threshold,
                reason: format!(
                    "canary requests slower than {tau} s are more frequent than {:.1} % and than the \
                     baseline's: log e-values {:.2} (vs q0) and {:.2} (vs baseline) ≥ {:.2}",
                    LATENCY_Q0 * 100.0,
                    lat.one.max(),
                    lat.two.max(),
                    lat.threshold
                ),
            });
        }
        if self.late.tripped() {
            let l = &self.late;
            let statistic = if l.baseline_seen {
                l.one.statistic().min(l.two.statistic())
            } else {
                l.one.statistic()
            };
            return Some(Trip {
                test: TestKind::LateOnset,
                statistic,
                threshold: l.threshold,
                reason: format!(
                    "recent canary errors rose (late onset): CUSUM {:.2} (vs p0) and {:.2} (vs baseline) \
                     ≥ {:.2} (α = {}); {counts}",
                    l.one.statistic(),
                    l.two.statistic(),
                    l.threshold,
                    self.design.alpha_late
                ),
            });
        }
        None
    }

    /// A new canary step (weight change) starts at `at`.
    pub fn begin_step(&mut self, at: f64) {
        self.step_start = at;
        self.step_requests = 0;
        self.step_baseline_gap = match self.unheard_since {
            Some(since) if self.hole_is_real() => (at - since).max(0.0),
            _ => 0.0,
        };
    }

    /// The canary's share of the traffic from now on (a step's weight,
    /// 0–1): with it, how many baseline requests the canary's make
    /// expected. Default 0.1.
    pub fn set_canary_share(&mut self, share: f64) {
        if share.is_finite() {
            self.canary_share = share.clamp(0.001, 0.999);
        }
    }

    /// True when the canary counted so many requests since the baseline's
    /// last that the baseline, had it been counting, would all but surely
    /// have counted one: [`HOLE_EXPECTED`] expected (P(none) = e^-8 ≈ 0.03 %,
    /// small even summed over the many stretches of a long quiet step).
    fn hole_is_real(&self) -> bool {
        let ratio = (1.0 - self.canary_share) / self.canary_share;
        self.unheard_canary as f64 * ratio >= HOLE_EXPECTED
    }

    /// PASS iff not tripped, the window has elapsed since the step started and
    /// the step saw `min_requests` canary requests; INCONCLUSIVE after
    /// `max_silence` seconds without canary requests, or when the window
    /// elapsed with too few requests; INCONCLUSIVE too once a baseline that
    /// was seen has been missing, or has counted no request while the
    /// canary counted some, for `max_silence` in this step (the two-sample
    /// test the trip needs learns nothing from such batches, so a failing
    /// canary could otherwise pass on the one-sided evidence); else
    /// CONTINUE (also when tripped: the trip is `observe`'s answer).
    pub fn judge(&self, now: f64, window: f64) -> Judgement {
        if self.tripped.is_some() {
            return Judgement::Continue;
        }
        let open = match self.unheard_since {
            Some(since) if self.hole_is_real() => now - since,
            _ => 0.0,
        };
        let gap = self.step_baseline_gap.max(open);
        if gap >= self.settings.max_silence - SLACK {
            return Judgement::Inconclusive(format!(
                "the baseline's series was missing (absent, or counting no request while the \
                 canary's did) for {gap:.0} s (max silence {:.0} s): without it the canary \
                 cannot be compared, so this step cannot pass",
                self.settings.max_silence
            ));
        }
        let silent = now - self.last_canary;
        if silent >= self.settings.max_silence - SLACK {
            return Judgement::Inconclusive(format!(
                "no canary requests for {silent:.0} s (max silence {:.0} s): no data is not evidence",
                self.settings.max_silence
            ));
        }
        if now - self.step_start >= window - SLACK {
            if self.step_requests >= self.settings.min_requests {
                return Judgement::Pass;
            }
            return Judgement::Inconclusive(format!(
                "the {window:.0} s window elapsed with only {} canary requests in this step (minimum {})",
                self.step_requests, self.settings.min_requests
            ));
        }
        Judgement::Continue
    }

    pub fn evidence(&self) -> Evidence {
        let mut tests = vec![TestState {
            test: TestKind::ErrorRate,
            statistic: self.error.one.max(),
            threshold: self.error.threshold,
            description: format!(
                "canary error rate vs {:.3} %: grid-mixture e-process, max log e-value",
                self.settings.baseline_error_rate * 100.0
            ),
        }];
        if self.error.two.seen() {
            tests.push(TestState {
                test: TestKind::FailureSplit,
                statistic: self.error.two.max(),
                threshold: self.error.threshold,
                description: format!(
                    "canary vs concurrent baseline: failure split (ρ1 = {}) + 2×2 mixture, max log e-value \
                     (split alone {:.2})",
                    self.settings.rate_ratio,
                    self.error.two.split_log_e()
                ),
            });
        }
        if let Some(lat) = &self.latency {
            tests.push(TestState {
                test: TestKind::Latency,
                statistic: if lat.two.seen() { lat.one.max().min(lat.two.max()) } else { lat.one.max() },
                threshold: lat.threshold,
                description: format!(
                    "slow fraction (> {} s) vs {:.1} % and vs baseline, min of the two max log e-values",
                    self.settings.latency_threshold.unwrap_or_default(),
                    LATENCY_Q0 * 100.0
                ),
            });
        }
        let l = &self.late;
        tests.push(TestState {
            test: TestKind::LateOnset,
            statistic: if l.baseline_seen {
                l.one.statistic().min(l.two.statistic())
            } else {
                l.one.statistic()
            },
            threshold: l.threshold,
            description: format!(
                "late-onset CUSUM with {} paid restarts (every {} canary requests)",
                l.one.restarts(),
                l.spacing
            ),
        });
        Evidence {
            canary: self.canary,
            baseline: self.baseline,
            tests,
            tripped: self.tripped.clone(),
        }
    }
}

fn add(t: &mut Totals, a: &Arm) {
    t.requests += a.requests;
    t.failures += a.failures.min(a.requests);
    t.slow = match (t.slow, a.slow) {
        (Some(x), Some(y)) => Some(x + y),
        (None, Some(y)) if t.requests == a.requests => Some(y),
        (x, _) => x,
    };
}

#[cfg(test)]
mod tests;
