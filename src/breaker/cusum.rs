//! Late-onset guard: a CUSUM whose restarts are paid for with a weighted union
//! bound, so its false-trip probability is ≤ α over an UNBOUNDED watch.
//!
//! `L_t` is a cumulative log-likelihood ratio (a sum of per-batch increments,
//! each a valid conditional e-value under the null). Restart points `s_j`
//! (j = 0, 1, …) are batch ends, placed after every `spacing` canary requests
//! (a predictable rule). From each restart point, `exp(L_t − L_{s_j})` is a
//! test supermartingale, so by Ville and a union bound with weights
//! `γ_j = 1/((j+1)(j+2))` (Σ γ_j = 1):
//!
//! ```text
//! P0(∃ j, t: L_t − L_{s_j} ≥ ln(1/α) + ln((j+1)(j+2))) ≤ α
//! C_t = L_t − min_j (L_{s_j} + ln((j+1)(j+2)))     trip when C_t ≥ ln(1/α)
//! ```
//!
//! Spacing in canary requests (not seconds) keeps the pre-onset "inertia"
//! bounded (≈ spacing·|b| nats) at every traffic level, while the penalty
//! grows only like `2 ln j`, which high traffic pays back in a few requests.

#[derive(Debug, Clone, PartialEq)]
pub struct RestartCusum {
    level: f64,
    best_start: f64,
    restarts: u64,
}

impl Default for RestartCusum {
    fn default() -> Self {
        RestartCusum::new()
    }
}

impl RestartCusum {
    pub fn new() -> RestartCusum {
        // Restart 0 at the origin, penalty ln(1·2).
        RestartCusum {
            level: 0.0,
            best_start: 2f64.ln(),
            restarts: 1,
        }
    }

    pub fn add(&mut self, increment: f64) {
        self.level += increment;
    }

    /// Make the current point a restart point.
    pub fn restart_here(&mut self) {
        let j = self.restarts as f64;
        let pen = ((j + 1.0) * (j + 2.0)).ln();
        self.best_start = self.best_start.min(self.level + pen);
        self.restarts += 1;
    }

    /// `C_t` (may be negative).
    pub fn statistic(&self) -> f64 {
        self.level - self.best_start
    }

    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}
