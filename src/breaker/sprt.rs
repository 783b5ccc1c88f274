//! One-sample building blocks: Wald's SPRT increments and the trip-only
//! grid-mixture e-process (Robbins' mixture over a grid of alternatives).
//!
//! Everything is in log space (nats). Counts enter in bulk: `k` failures and
//! `s` successes add `k·a + s·b`, which is exact (the likelihood ratio of
//! i.i.d. Bernoulli data depends only on the counts).

/// `k·x` with the convention `0·x = 0` even when `x` is infinite; `k` is a
/// count, or a weighed count (failures counted as clumps).
pub(crate) fn mulf(k: f64, x: f64) -> f64 {
    if k == 0.0 { 0.0 } else { k * x }
}

/// `ln Σ exp(x_i)`, stable.
pub(crate) fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Kullback–Leibler divergence of Bernoulli(p) from Bernoulli(q), in nats.
pub fn kl_bernoulli(p: f64, q: f64) -> f64 {
    let t = |x: f64, y: f64| if x <= 0.0 { 0.0 } else { x * (x / y).ln() };
    t(p, q) + t(1.0 - p, 1.0 - q)
}

/// Wald's SPRT for a Bernoulli rate, `p0` against `p1 > p0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sprt {
    /// Added per failure: `ln(p1/p0)` (> 0).
    pub a: f64,
    /// Added per success: `ln((1−p1)/(1−p0))` (< 0).
    pub b: f64,
    /// Upper (trip) boundary `ln((1−β)/α)`.
    pub upper: f64,
    /// Lower (pass) boundary `ln(β/(1−α))`.
    pub lower: f64,
}

impl Sprt {
    pub fn new(p0: f64, p1: f64, alpha: f64, beta: f64) -> Sprt {
        Sprt {
            a: (p1 / p0).ln(),
            b: ((1.0 - p1) / (1.0 - p0)).ln(),
            upper: ((1.0 - beta) / alpha).ln(),
            lower: (beta / (1.0 - alpha)).ln(),
        }
    }

    /// Log-likelihood-ratio increment of `failures` and `successes` (bulk, exact).
    pub fn increment(&self, failures: u64, successes: u64) -> f64 {
        self.increment_counted(failures as f64, successes as f64)
    }

    /// [`Self::increment`] of weighed counts (failures counted as clumps).
    pub fn increment_counted(&self, failures: f64, successes: f64) -> f64 {
        mulf(failures, self.a) + mulf(successes, self.b)
    }
}

/// Trip-only grid mixture: `E_n = Σ_j w_j Π_i LR_j(X_i)` against a point null
/// `p0` (valid for the composite null `p ≤ p0`, every component being a
/// supermartingale there). Trip when `ln E_n ≥ ln(1/α)` (Ville).
#[derive(Debug, Clone, PartialEq)]
pub struct GridMixture {
    ln_w: Vec<f64>,
    inc: Vec<Sprt>,
    log_e: Vec<f64>,
    current: f64,
    max: f64,
}

impl GridMixture {
    /// Equal weights over `alternatives` (each must exceed `p0` and be < 1).
    pub fn new(p0: f64, alternatives: &[f64]) -> GridMixture {
        let m = alternatives.len().max(1) as f64;
        GridMixture {
            ln_w: alternatives.iter().map(|_| -m.ln()).collect(),
            // α, β are irrelevant to the increments; only a and b are used.
            inc: alternatives
                .iter()
                .map(|&p| Sprt::new(p0, p, 0.5, 0.5))
                .collect(),
            log_e: vec![0.0; alternatives.len()],
            current: 0.0,
            max: 0.0,
        }
    }

    pub fn update(&mut self, failures: u64, successes: u64) {
        self.update_counted(failures as f64, successes as f64);
    }

    /// [`Self::update`] with the failures counted as clumps (see
    /// [`super::split::ClumpCount`]); successes as they are.
    pub fn update_counted(&mut self, failures: f64, successes: f64) {
        if failures == 0.0 && successes == 0.0 {
            return;
        }
        for (l, s) in self.log_e.iter_mut().zip(&self.inc) {
            *l += s.increment_counted(failures, successes);
        }
        self.current = log_sum_exp(self.ln_w.iter().zip(&self.log_e).map(|(w, l)| w + l));
        self.max = self.max.max(self.current);
    }

    /// Current `ln E_n`.
    pub fn current(&self) -> f64 {
        self.current
    }

    /// `max_{m≤n} ln E_m` (the always-valid p-value is `exp(−max)`).
    pub fn max(&self) -> f64 {
        self.max
    }
}
