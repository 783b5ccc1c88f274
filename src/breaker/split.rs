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
//! * [`TwoSample`]: an equal-weight mixture of one split and several 2×2
//!   components (grid of canary rates), trip-only.
use super::sprt::{log_sum_exp, mul0};

/// One batch of both arms (counts within the batch; failures ≤ requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub n_c: u64,
    pub x_c: u64,
    pub n_b: u64,
    pub x_b: u64,
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
        if p.n_c == 0 || p.n_b == 0 || (p.x_c == 0 && p.x_b == 0) {
            return 0.0;
        }
        let pi0 = p.n_c as f64 / (p.n_c + p.n_b) as f64;
        let pi1 = self.pi1(pi0);
        mul0(p.x_c, (pi1 / pi0).ln()) + mul0(p.x_b, ((1.0 - pi1) / (1.0 - pi0)).ln())
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
        let term = |k: u64, ratio: f64| if k == 0 { 0.0 } else { k as f64 * ratio.ln() };
        term(p.x_c, q_c / ps)
            + term(p.n_c - p.x_c, (1.0 - q_c) / (1.0 - ps))
            + term(p.x_b, q_b / ps)
            + term(p.n_b - p.x_b, (1.0 - q_b) / (1.0 - ps))
    }
}

/// Predictable, slowly forgetting estimate of the baseline's rate, used only
/// as the 2×2 test's baseline alternative (it affects power, never validity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineRate {
    prior_rate: f64,
    failures: f64,
    requests: f64,
    last: Option<f64>,
}

/// Forgetting time constant of [`BaselineRate`], seconds: short, so a
/// shared dependency that drags the baseline up (a spill) is followed
/// within a minute. Only power depends on it.
pub const BASELINE_MEMORY: f64 = 60.0;

/// Weight of [`BaselineRate`]'s prior, in pseudo-requests at the prior
/// rate: light, so the baseline's own data speaks after a few seconds.
pub const BASELINE_PRIOR_REQUESTS: f64 = 50.0;

impl BaselineRate {
    pub fn new(prior_rate: f64) -> BaselineRate {
        BaselineRate {
            prior_rate,
            failures: 0.0,
            requests: 0.0,
            last: None,
        }
    }

    /// Estimate from data strictly before the current batch:
    /// [`BASELINE_PRIOR_REQUESTS`] pseudo-requests at the prior rate, plus
    /// the discounted counts.
    pub fn estimate(&self) -> f64 {
        let est = (self.failures + BASELINE_PRIOR_REQUESTS * self.prior_rate)
            / (self.requests + BASELINE_PRIOR_REQUESTS);
        est.clamp(1e-6, 0.5)
    }

    pub fn update(&mut self, end: f64, requests: u64, failures: u64) {
        if let Some(last) = self.last {
            let dt = end - last;
            if dt > 0.0 {
                let d = (-dt / BASELINE_MEMORY).exp();
                self.failures *= d;
                self.requests *= d;
            }
        }
        self.last = Some(end);
        self.failures += failures as f64;
        self.requests += requests as f64;
    }
}

/// How failures clump, estimated predictably from the baseline's batches:
/// the mean size of the clump a failure belongs to (`E[K²]/E[K]`, 1 when
/// failures are independent; 3 when each comes with two retries).
///
/// Why it matters: the likelihood ratios here treat failures as
/// independent, so a clump of `k` failures landing on one arm counts as `k`
/// pieces of evidence. Raising a batch's likelihood ratio to the power
/// `1/φ` (tempering) makes a clump of up to `φ` failures count as at most
/// one: for the split test, per clump `E[LR^{k/φ}] ≤ (E[LR])^{k/φ} = 1` by
/// Jensen when `k ≤ φ`, so the tempered test stays valid under "canary no
/// worse than production" when failures come in clumps of at most `φ`
/// (each clump on one arm, as retries pinned by affinity and a sick
/// instance are).
///
/// The estimate: for failures per batch `X` (compound Poisson, clump size
/// `K`), `E[X(X−1)]/E[X] = E[K²]/E[K] − 1 + E[X]`, so
/// `φ̂ = 1 + (Σ x(x−1) − p̂²·Σ n²) / Σ x` removes the part independent
/// failures explain (`p̂ = Σx/Σn`). A prior of [`Clumping::PRIOR_FAILURES`]
/// failures at index [`Clumping::PRIOR_INDEX`] keeps the first clumps from
/// counting in full before production has shown how its failures come;
/// independent failures wash it out. Only the baseline feeds it (it carries
/// most of the traffic, and a bad canary cannot slow its own trip by
/// clumping). Clamped to `[1, MAX_INDEX]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clumping {
    failures: f64,
    requests: f64,
    pairs: f64,
    requests_sq: f64,
}

impl Default for Clumping {
    fn default() -> Self {
        Clumping {
            failures: 0.0,
            requests: 0.0,
            pairs: 0.0,
            requests_sq: 0.0,
        }
    }
}

impl Clumping {
    /// Pseudo-failures of the prior.
    pub const PRIOR_FAILURES: f64 = 4.0;
    /// The prior's clump index.
    pub const PRIOR_INDEX: f64 = 2.0;
    /// The largest index used (clumps larger than this count as several).
    pub const MAX_INDEX: f64 = 10.0;

    /// The index to temper the next batch with (from past batches only).
    pub fn index(&self) -> f64 {
        let p = if self.requests > 0.0 {
            self.failures / self.requests
        } else {
            0.0
        };
        let excess = (self.pairs - p * p * self.requests_sq).max(0.0);
        let prior = Self::PRIOR_FAILURES * (Self::PRIOR_INDEX - 1.0);
        (1.0 + (excess + prior) / (self.failures + Self::PRIOR_FAILURES))
            .clamp(1.0, Self::MAX_INDEX)
    }

    /// Adds one baseline batch.
    pub fn update(&mut self, requests: u64, failures: u64) {
        let (n, x) = (requests as f64, failures as f64);
        self.failures += x;
        self.requests += n;
        self.pairs += x * (x - 1.0).max(0.0);
        self.requests_sq += n * n;
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

/// Trip-only two-sample mixture: failure-split components (the design's
/// `ρ1` and [`SPLIT_RATIOS`] below it) and one 2×2 component per canary
/// rate in `grid`, equal weights.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoSample {
    splits: Vec<FailureSplit>,
    grow: Vec<Grow2x2>,
    log_e: Vec<f64>, // [splits..., grow...], the design's split first
    ln_w: Vec<f64>,
    baseline: BaselineRate,
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
        // The design's split and the 2×2 components share what the spill
        // components leave; weights sum to 1 (a mixture of e-processes).
        let extra = splits.len() - 1;
        let main = (1.0 - SPILL_WEIGHT * extra as f64) / (1 + grid.len()) as f64;
        let ln_w = (0..splits.len() + grid.len())
            .map(|i| {
                if (1..=extra).contains(&i) {
                    SPILL_WEIGHT.ln()
                } else {
                    main.ln()
                }
            })
            .collect();
        TwoSample {
            log_e: vec![0.0; grid.len() + splits.len()],
            ln_w,
            splits,
            grow: grid.iter().map(|&q_c| Grow2x2 { q_c }).collect(),
            baseline: BaselineRate::new(prior_rate),
            current: 0.0,
            max: 0.0,
            seen: false,
        }
    }

    /// Adds one batch, its log-likelihood ratios multiplied by `temper`
    /// (`1/φ`, see [`Clumping`]; 1 for independent failures).
    pub fn update(&mut self, end: f64, p: Pair, temper: f64) {
        self.seen = true;
        if p.n_c == 0 && p.n_b == 0 {
            return;
        }
        let q_b = self.baseline.estimate();
        let k = self.splits.len();
        for (l, split) in self.log_e[..k].iter_mut().zip(&self.splits) {
            *l += temper * split.increment(p);
        }
        for (l, g) in self.log_e[k..].iter_mut().zip(&self.grow) {
            *l += temper * g.increment(p, q_b);
        }
        self.baseline.update(end, p.n_b, p.x_b);
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
