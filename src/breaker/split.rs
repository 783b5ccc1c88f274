//! Two-sample building blocks: canary against the concurrent baseline.
//!
//! * [`FailureSplit`]: the conditional ("failure-split") test. Given a batch's
//!   request counts, under `p_c = p_b` each failure lands in the canary with
//!   probability `π0 = n_c/(n_c+n_b)`; under the rate ratio `ρ1`,
//!   `π1 = ρ1·π0/(ρ1·π0 + 1 − π0)`. Valid for ANY common error rate, even
//!   one that changes inside the batch, as long as routing does not depend on
//!   the outcome (hypergeometric given the totals; the binomial likelihood
//!   ratio is convex in the count, so its hypergeometric mean is ≤ 1).
//! * [`Grow2x2`]: the 2×2-table e-value (Turner, Ly & Grünwald, "Safe tests
//!   for 2×2 contingency tables"): alternative `(q_c, q_b)` against the null
//!   point `p* = (n_c·q_c + n_b·q_b)/(n_c+n_b)` (the reverse information
//!   projection). `E_p[e] ≤ 1` for EVERY common rate `p` within the batch, so
//!   drift between batches does not matter; unlike the split it also learns
//!   from the baseline's successes, so a canary outage against a clean
//!   baseline earns up to `ln(e·(1+n_b/n_c))` per failure instead of
//!   `ln(1+n_b/n_c)`.
//! * [`TwoSample`]: a mixture of failure splits and 2×2 components (a grid
//!   of canary rates, and one betting on the rates estimated so far),
//!   trip-only.
//! * [`Counted`], [`ClumpCount`], [`Clumping`]: how many pieces of evidence
//!   a batch's counts are when failures come in clumps.
use super::sprt::{log_sum_exp, mulf};

/// One batch of both arms (counts within the batch; failures ≤ requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub n_c: u64,
    pub x_c: u64,
    pub n_b: u64,
    pub x_b: u64,
}

/// How many pieces of evidence each count of a [`Pair`] is worth.
///
/// Every likelihood ratio here treats failures as independent. When they
/// come in clumps (a request and its retries, one sick instance), the
/// tests count clumps instead: the canary's failures as *at least* how many
/// clumps they must be ([`ClumpCount`]), the baseline's as *at most* (every
/// failure its own clump), successes as they are. The ratios grow with
/// the canary's failures and shrink with the baseline's, so counting
/// that way never overstates the evidence against a canary whose clumps
/// land like production's: for the failure split, `e(Y_c, x_b) ≤ e(C_c,
/// C_b)`, the split of the clumps themselves, which is an e-value (each
/// clump lands on the canary with its exposure share). The 2×2 components
/// so counted are the 2×2 e-values of the clump-level table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub x_c: f64,
    pub s_c: f64,
    pub x_b: f64,
    pub s_b: f64,
}

impl Counted {
    /// Every failure its own piece of evidence (independent failures).
    pub fn plain(p: Pair) -> Counted {
        Counted {
            x_c: p.x_c as f64,
            s_c: (p.n_c - p.x_c) as f64,
            x_b: p.x_b as f64,
            s_b: (p.n_b - p.x_b) as f64,
        }
    }
}

/// The failure-split test's per-batch constants and increment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureSplit {
    pub rho1: f64,
}

impl FailureSplit {
    /// `π1` for exposure share `π0`.
    pub fn pi1(&self, pi0: f64) -> f64 {
        self.rho1 * pi0 / (self.rho1 * pi0 + 1.0 - pi0)
    }

    /// Log-likelihood-ratio increment of one batch; 0 when either arm had no
    /// requests (no evidence) or there was no failure.
    pub fn increment(&self, p: Pair) -> f64 {
        self.increment_counted(p, Counted::plain(p))
    }

    /// [`Self::increment`] with the failures counted as `c` says (the
    /// exposure share still comes from the requests).
    pub fn increment_counted(&self, p: Pair, c: Counted) -> f64 {
        if p.n_c == 0 || p.n_b == 0 || (p.x_c == 0 && p.x_b == 0) {
            return 0.0;
        }
        let pi0 = p.n_c as f64 / (p.n_c + p.n_b) as f64;
        let pi1 = self.pi1(pi0);
        mulf(c.x_c, (pi1 / pi0).ln()) + mulf(c.x_b, ((1.0 - pi1) / (1.0 - pi0)).ln())
    }
}

/// 2×2 e-value with canary alternative `q_c` and a predictable baseline
/// alternative `q_b` (supplied per batch). Returns 0 (no bet) unless
/// `q_c > q_b` and both arms had requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grow2x2 {
    pub q_c: f64,
}

impl Grow2x2 {
    pub fn increment(&self, p: Pair, q_b: f64) -> f64 {
        self.increment_counted(p, q_b, Counted::plain(p))
    }

    /// [`Self::increment`] with the counts weighed as `c` says (`p*` still
    /// comes from the requests).
    pub fn increment_counted(&self, p: Pair, q_b: f64, c: Counted) -> f64 {
        let q_c = self.q_c;
        if p.n_c == 0
            || p.n_b == 0
            || q_c.partial_cmp(&q_b) != Some(std::cmp::Ordering::Greater)
            || q_b <= 0.0
        {
            return 0.0;
        }
        let n = (p.n_c + p.n_b) as f64;
        let ps = (p.n_c as f64 * q_c + p.n_b as f64 * q_b) / n;
        // Logs only for counts that are present (most batches have no failure).
        let term = |k: f64, ratio: f64| if k == 0.0 { 0.0 } else { k * ratio.ln() };
        term(c.x_c, q_c / ps)
            + term(c.s_c, (1.0 - q_c) / (1.0 - ps))
            + term(c.x_b, q_b / ps)
            + term(c.s_b, (1.0 - q_b) / (1.0 - ps))
    }
}

/// Predictable, forgetting estimate of an arm's error rate, used only as
/// an alternative of the 2×2 tests (the baseline's for every component,
/// the canary's for the one betting on the rates seen so far): it affects
/// power, never validity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateEstimate {
    /// The largest estimate used (the baseline's stays at most 50 %, so a
    /// canary can still be worse; the canary's may approach 100 %).
    cap: f64,
    prior_rate: f64,
    failures: f64,
    requests: f64,
    last: Option<f64>,
}

/// Forgetting time constant of [`RateEstimate`], seconds: short, so a
/// shared dependency that drags the baseline up (a spill) is followed
/// within a minute. Only power depends on it.
pub const RATE_MEMORY: f64 = 60.0;

/// Weight of [`RateEstimate`]'s prior, in pseudo-requests at the prior
/// rate: light, so an arm's own data speaks after its first requests (a
/// spill drags the baseline to 50 % from the first second, and an estimate
/// still at 0.1 % then makes every 2×2 component bet against the
/// baseline's failures and lose tens of nats it never wins back).
pub const RATE_PRIOR_REQUESTS: f64 = 3.0;

impl RateEstimate {
    /// An estimate starting at `prior_rate` that never exceeds `cap`.
    pub fn new(prior_rate: f64, cap: f64) -> RateEstimate {
        RateEstimate {
            cap,
            prior_rate,
            failures: 0.0,
            requests: 0.0,
            last: None,
        }
    }

    /// Estimate from data strictly before the current batch:
    /// [`RATE_PRIOR_REQUESTS`] pseudo-requests at the prior rate, plus
    /// the discounted counts.
    pub fn estimate(&self) -> f64 {
        let est = (self.failures + RATE_PRIOR_REQUESTS * self.prior_rate)
            / (self.requests + RATE_PRIOR_REQUESTS);
        est.clamp(1e-6, self.cap)
    }

    pub fn update(&mut self, end: f64, requests: u64, failures: u64) {
        if let Some(last) = self.last {
            let dt = end - last;
            if dt > 0.0 {
                let d = (-dt / RATE_MEMORY).exp();
                self.failures *= d;
                self.requests *= d;
            }
        }
        self.last = Some(end);
        self.failures += failures as f64;
        self.requests += requests as f64;
    }
}

/// How failures clump, estimated predictably from both arms' batches: the
/// mean size of the clump a failure belongs to (`E[K²]/E[K]`, 1 when
/// failures are independent; 3 when each comes with two retries).
///
/// [`ClumpCount`] divides a run of canary failures by it: counting a clump
/// of up to `φ̂` failures as one keeps the failure split valid under
/// "canary no worse than production" when clumps hold at most `φ̂`.
///
/// The estimate: for failures per batch `X` (compound Poisson, clump size
/// `K`), `E[X(X−1)]/E[X] = E[K²]/E[K] − 1 + E[X]`, so per arm
/// `Σ x(x−1) − p̂²·Σ n²` is the excess independent failures do not explain
/// (`p̂ = Σx/Σn` of that arm), and `φ̂ = 1 + (excess + prior) / (Σ x +
/// prior failures)` over both arms. A light prior
/// ([`Clumping::PRIOR_FAILURES`] failures at index
/// [`Clumping::PRIOR_INDEX`]) keeps the very first clump from counting in
/// full; a clump that is seen moves the estimate at once (one clump of 3
/// gives 2.8), and independent failures wash the prior out within a few.
/// The canary feeds it too: under the null its failures clump like
/// production's, and a bad canary's many independent failures show that
/// they are independent within seconds (the baseline, at 0.1 %, takes
/// minutes). A bad canary whose failures clump slows its own trip — its
/// evidence really is weaker. Clamped to `[1, MAX_INDEX]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Clumping {
    canary: Moments,
    baseline: Moments,
}

/// One arm's sums for [`Clumping`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Moments {
    failures: f64,
    requests: f64,
    pairs: f64,
    requests_sq: f64,
}

impl Moments {
    fn add(&mut self, requests: u64, failures: u64) {
        let (n, x) = (requests as f64, failures.min(requests) as f64);
        self.failures += x;
        self.requests += n;
        self.pairs += x * (x - 1.0).max(0.0);
        self.requests_sq += n * n;
    }

    /// `Σ x(x−1)` beyond what independent failures at this arm's rate explain.
    fn excess(&self) -> f64 {
        let p = if self.requests > 0.0 {
            self.failures / self.requests
        } else {
            0.0
        };
        self.pairs - p * p * self.requests_sq
    }
}

impl Clumping {
    /// Pseudo-failures of the prior.
    pub const PRIOR_FAILURES: f64 = 0.5;
    /// The prior's clump index (the index before any failure is seen).
    pub const PRIOR_INDEX: f64 = 1.5;
    /// The largest index used (clumps larger than this count as several).
    pub const MAX_INDEX: f64 = 10.0;

    /// The index for the next batch (from past batches only).
    pub fn index(&self) -> f64 {
        let excess = (self.canary.excess() + self.baseline.excess()).max(0.0);
        let failures = self.canary.failures + self.baseline.failures;
        let prior = Self::PRIOR_FAILURES * (Self::PRIOR_INDEX - 1.0);
        (1.0 + (excess + prior) / (failures + Self::PRIOR_FAILURES)).clamp(1.0, Self::MAX_INDEX)
    }

    /// Adds one canary batch.
    pub fn add_canary(&mut self, requests: u64, failures: u64) {
        self.canary.add(requests, failures);
    }

    /// Adds one baseline batch.
    pub fn add_baseline(&mut self, requests: u64, failures: u64) {
        self.baseline.add(requests, failures);
    }
}

/// The canary's failures counted as at least how many clumps they must be.
///
/// A run is a stretch of consecutive batches that all had canary failures
/// (a clump that straddles a batch boundary stays in one run). Its `S`
/// failures, in clumps of at most `φ` each, are at least `max(1, S/φ)`
/// clumps: the first failure of a run always counts one, the rest count
/// `1/φ` each once the run's tempered total passes one. At low traffic a
/// canary failure is almost always alone in its run and counts in full
/// (tempering every failure by `1/φ̂` halved a 5 % canary's evidence while
/// production had shown too few failures to learn it was independent);
/// at high traffic, where a bad canary fails in every batch, the run is
/// long and its failures count `1/φ̂` each, with `φ̂` near 1 within seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClumpCount {
    /// The open run's failures, each divided by the index of its batch.
    run: f64,
}

impl ClumpCount {
    /// The clumps a batch's `failures` add, `temper` being `1/φ̂` (1 when
    /// failures are independent, which makes this the plain count).
    pub fn add(&mut self, failures: u64, temper: f64) -> f64 {
        if failures == 0 {
            self.run = 0.0;
            return 0.0;
        }
        let before = if self.run > 0.0 {
            self.run.max(1.0)
        } else {
            0.0
        };
        self.run += failures as f64 * temper;
        self.run.max(1.0) - before
    }
}

/// Rate ratios the failure-split components bet on besides the design's
/// `ρ1`: a shared dependency that also drags the baseline up (a spill)
/// leaves the canary only 2–4× worse, where a split at `ρ1 = 10` loses.
pub const SPLIT_RATIOS: [f64; 2] = [2.0, 4.0];

/// Prior weight of each [`SPLIT_RATIOS`] component: small, so the
/// components an outage needs lose almost nothing to them (a spill is
/// slower to show, and pays the extra nats from its steady evidence).
pub const SPILL_WEIGHT: f64 = 0.05;

/// Prior weight of the 2×2 component that bets on the rates seen so far
/// (the canary's and the baseline's [`RateEstimate`] estimates, each from
/// earlier batches only, so every batch's bet is predictable): it follows
/// a canary whose rate is between the grid's points, and a spill, where
/// the baseline's rate is far from its prior.
pub const PLUG_IN_WEIGHT: f64 = 0.3;

/// Trip-only two-sample mixture: failure-split components (the design's
/// `ρ1` and [`SPLIT_RATIOS`] below it), one 2×2 component per canary rate
/// in `grid`, and one 2×2 component betting on the estimated rates
/// ([`PLUG_IN_WEIGHT`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSample {
    splits: Vec<FailureSplit>,
    grow: Vec<Grow2x2>,
    log_e: Vec<f64>, // [splits..., grow..., plug-in], the design's split first
    ln_w: Vec<f64>,
    baseline: RateEstimate,
    canary: RateEstimate,
    current: f64,
    max: f64,
    seen: bool,
}

impl TwoSample {
    pub fn new(rho1: f64, grid: &[f64], prior_rate: f64) -> TwoSample {
        let splits: Vec<FailureSplit> = std::iter::once(rho1)
            .chain(SPLIT_RATIOS.into_iter().filter(|&r| r < rho1 - 1e-9))
            .map(|rho1| FailureSplit { rho1 })
            .collect();
        // The design's split and the grid's 2×2 components share what the
        // spill and plug-in components leave; weights sum to 1 (a mixture
        // of e-processes).
        let extra = splits.len() - 1;
        let main = (1.0 - PLUG_IN_WEIGHT - SPILL_WEIGHT * extra as f64) / (1 + grid.len()) as f64;
        let ln_w = (0..splits.len() + grid.len())
            .map(|i| {
                if (1..=extra).contains(&i) {
                    SPILL_WEIGHT.ln()
                } else {
                    main.ln()
                }
            })
            .chain(std::iter::once(PLUG_IN_WEIGHT.ln()))
            .collect();
        TwoSample {
            log_e: vec![0.0; grid.len() + splits.len() + 1],
            ln_w,
            splits,
            grow: grid.iter().map(|&q_c| Grow2x2 { q_c }).collect(),
            baseline: RateEstimate::new(prior_rate, 0.5),
            canary: RateEstimate::new(prior_rate, 0.99),
            current: 0.0,
            max: 0.0,
            seen: false,
        }
    }

    /// Adds one batch, its counts weighed as `c` says ([`Counted`]).
    pub fn update(&mut self, end: f64, p: Pair, c: Counted) {
        self.seen = true;
        if p.n_c == 0 && p.n_b == 0 {
            return;
        }
        let q_b = self.baseline.estimate();
        let k = self.splits.len();
        let plug_in = self.log_e.len() - 1;
        for (l, split) in self.log_e[..k].iter_mut().zip(&self.splits) {
            *l += split.increment_counted(p, c);
        }
        for (l, g) in self.log_e[k..plug_in].iter_mut().zip(&self.grow) {
            *l += g.increment_counted(p, q_b, c);
        }
        // Bets only once the canary looks worse (no bet is no loss).
        let q_c = self.canary.estimate();
        self.log_e[plug_in] += Grow2x2 { q_c }.increment_counted(p, q_b, c);
        self.baseline.update(end, p.n_b, p.x_b);
        self.canary.update(end, p.n_c, p.x_c);
        self.current = log_sum_exp(self.log_e.iter().zip(&self.ln_w).map(|(l, w)| l + w));
        self.max = self.max.max(self.current);
    }

    /// Notes that a batch carried the baseline's series (its counts may
    /// wait to be grouped with the next batch's).
    pub fn note_seen(&mut self) {
        self.seen = true;
    }

    /// Whether any batch carried a baseline.
    pub fn seen(&self) -> bool {
        self.seen
    }

    pub fn current(&self) -> f64 {
        self.current
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    /// The split component alone (for reporting).
    pub fn split_log_e(&self) -> f64 {
        self.log_e[0]
    }
}
