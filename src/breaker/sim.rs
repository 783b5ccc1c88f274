//! Seeded virtual-time simulator for the breaker benchmark
//! (`examples/bench_breaker.rs`, `docs/bench-breaker.md`).
//!
//! World: canary and baseline requests are Poisson processes (rates `λ_c`,
//! `λ_b`), failures independent Bernoulli with piecewise-constant rates that
//! change only on whole seconds (drift, bursts, late onset, traffic gaps).
//! Event-driven: failure events of both arms are drawn as a Poisson process
//! of rate `λ_c·p_c + λ_b·p_b`; the successes between events are drawn in bulk
//! (Poisson thinning makes them independent of the failures).
//!
//! Fed to the rules in the same run, from the same traffic:
//! * the breaker per event (one batch ending at every failure event, and
//!   one at every 5-s look with the successes since the last batch),
//! * the breaker per 1-second batch (what a counter-polling driver sees),
//! * the seed's health poll (every 15 s; each poll fails with the canary's
//!   current error rate; trips at 5 failed polls within 120 s),
//! * a Flagger-like rule (every 60 s: success rate over the last 60 s ≥ 99 %,
//!   an empty window counts as failed, cumulative counter, trips at 5).
//!
//! Same seed ⇒ bit-identical [`RunResult`].
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Arm, Batch, Breaker, Judgement, Settings, TestKind, Verdict};

/// A piece of the world: from `start` (whole seconds) until the next piece.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub start: f64,
    pub canary_error: f64,
    pub baseline_error: f64,
    /// Traffic multiplier (0 = no requests at all).
    pub traffic: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Canary requests per second.
    pub canary_rate: f64,
    /// Canary share of all traffic (the baseline gets the rest).
    pub share: f64,
    /// Sorted by start; the first must start at 0.
    pub phases: Vec<Phase>,
    /// Watch length, seconds (whole).
    pub horizon: f64,
    /// Window passed to `judge`.
    pub window: f64,
    /// Seconds between `judge` calls.
    pub judge_every: f64,
    /// From this time on the baseline's series is gone (an empty or stale
    /// metrics result): batches carry no baseline at all.
    pub baseline_missing_from: Option<f64>,
    /// Seconds of production's history (1-s batches of the first phase's
    /// baseline traffic) the breakers learn from before the watch, as the
    /// driver does with a source that keeps history (Prometheus); 0: none.
    pub history: u32,
}

impl Scenario {
    /// Constant rates for the whole watch.
    pub fn constant(canary_rate: f64, canary_error: f64, baseline_error: f64) -> Scenario {
        Scenario {
            canary_rate,
            share: 0.1,
            phases: vec![Phase {
                start: 0.0,
                canary_error,
                baseline_error,
                traffic: 1.0,
            }],
            horizon: 1800.0,
            window: 1800.0,
            judge_every: 5.0,
            baseline_missing_from: None,
            history: 0,
        }
    }

    fn phase_at(&self, t: f64) -> Phase {
        let mut p = self.phases[0];
        for q in &self.phases {
            if q.start <= t {
                p = *q;
            }
        }
        p
    }
}

/// What one rule did in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Time of the trip (seconds since watch start).
    pub trip: Option<f64>,
    pub test: Option<TestKind>,
    /// The trip came on a batch without any request, or a rule's
    /// "no data" check was among the failures counted for the trip.
    pub trip_on_no_data: bool,
    /// `judge` answered INCONCLUSIVE at least once before any trip.
    pub inconclusive: bool,
    /// `judge` answered PASS (at the end of the window) before any trip.
    pub pass: bool,
}

impl Outcome {
    fn none() -> Outcome {
        Outcome {
            trip: None,
            test: None,
            trip_on_no_data: false,
            inconclusive: false,
            pass: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    pub per_event: Outcome,
    pub per_second: Outcome,
    pub health_poll: Outcome,
    pub flagger: Outcome,
    /// Canary requests seen by the per-event breaker until its trip (or the end).
    pub requests_to_trip: u64,
}

/// Seed of run `run` of cell `cell`: FNV-1a of the cell id, mixed with the
/// run index and a global seed by splitmix64.
pub fn run_seed(global: u64, cell: &str, run: u64) -> u64 {
    let h = crate::text::fnv1a64(cell.bytes());
    splitmix(splitmix(h ^ global) ^ run)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

fn exponential(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    -(1.0 - uniform(rng)).ln() / rate
}

/// `ln k!`.
fn ln_factorial(k: f64) -> f64 {
    if k < 10.0 {
        let mut s = 0.0;
        let mut i = 2.0;
        while i <= k {
            s += f64::ln(i);
            i += 1.0;
        }
        return s;
    }
    let n = k + 1.0;
    (n - 0.5) * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n * n * n)
}

/// Poisson variate: inversion below mean 10, PTRS (Hörmann 1993) above.
pub fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 10.0 {
        let mut k = 0u64;
        let mut p = (-mean).exp();
        let mut s = p;
        let u = uniform(rng);
        while u > s {
            k += 1;
            p *= mean / k as f64;
            s += p;
            if p < 1e-300 && s >= 1.0 - 1e-15 {
                break;
            }
        }
        return k;
    }
    let slam = mean.sqrt();
    let loglam = mean.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
            <= -mean + k * loglam - ln_factorial(k)
        {
            return k as u64;
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    c: Arm,
    b: Arm,
}

impl Acc {
    fn add(&mut self, cs: u64, cf: u64, bs: u64, bf: u64) {
        self.c.requests += cs + cf;
        self.c.failures += cf;
        self.b.requests += bs + bf;
        self.b.failures += bf;
    }
    fn empty(&self) -> bool {
        self.c.requests == 0 && self.b.requests == 0
    }
}

struct Driven {
    breaker: Breaker,
    out: Outcome,
    /// See [`Scenario::baseline_missing_from`].
    baseline_missing_from: Option<f64>,
}

impl Driven {
    fn feed(&mut self, start: f64, end: f64, acc: &Acc) {
        if self.out.trip.is_some() {
            return;
        }
        let missing = self.baseline_missing_from.is_some_and(|t| end > t);
        let batch = Batch {
            start,
            end,
            canary: acc.c,
            baseline: (!missing).then_some(acc.b),
        };
        if let Verdict::Trip(t) = self.breaker.observe(&batch) {
            self.out.trip = Some(end);
            self.out.test = Some(t.test);
            self.out.trip_on_no_data = acc.empty();
        }
    }
    fn judge(&mut self, now: f64, window: f64) {
        if self.out.trip.is_some() {
            return;
        }
        match self.breaker.judge(now, window) {
            Judgement::Inconclusive(_) => self.out.inconclusive = true,
            Judgement::Pass => self.out.pass = true,
            Judgement::Continue => {}
        }
    }
}

/// Simulate one run.
pub fn run(scenario: &Scenario, settings: &Settings, seed: u64) -> RunResult {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut poll_rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ 0x5e_ed0f_9011));
    let mk = || -> Driven {
        // Settings are validated by the caller (the benchmark); a bad one panics loudly there.
        let mut breaker = Breaker::new(settings.clone()).unwrap_or_else(|e| panic!("{e}"));
        breaker.begin_step(0.0);
        Driven {
            breaker,
            out: Outcome::none(),
            baseline_missing_from: scenario.baseline_missing_from,
        }
    };
    let mut ev = mk();
    let mut sec = mk();
    let lc = scenario.canary_rate;
    let lb = lc * (1.0 - scenario.share) / scenario.share;
    let horizon = scenario.horizon;
    // History from its own stream, so the watch's draws are the same with
    // and without it.
    let mut history_rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ HISTORY_SALT));
    for _ in 0..scenario.history {
        let n = poisson(&mut history_rng, lb);
        let x = poisson(
            &mut history_rng,
            n as f64 * scenario.phases[0].baseline_error,
        );
        ev.breaker.learn_production(n, x);
        sec.breaker.learn_production(n, x);
    }

    let mut ev_acc = Acc::default();
    let mut ev_start = 0.0;
    let mut minute = Acc::default();
    let mut flagger = Outcome::none();
    let mut flagger_failed = 0u32;
    let mut flagger_no_data = false;
    let mut requests_seen = 0u64;
    let mut requests_to_trip = None;

    let mut flagger_check = |minute: &Acc, now: f64, flagger: &mut Outcome| {
        if flagger.trip.is_some() {
            return;
        }
        let n = minute.c.requests;
        let k = minute.c.failures;
        let empty = n == 0;
        if empty || k * 100 > n {
            flagger_failed += 1;
            flagger_no_data |= empty;
            if flagger_failed >= 5 {
                flagger.trip = Some(now);
                flagger.trip_on_no_data = flagger_no_data;
            }
        }
    };

    let mut second = 0.0;
    while second < horizon {
        let ph = scenario.phase_at(second);
        let fine = ev.out.trip.is_none() || sec.out.trip.is_none();
        let (rc, rb) = (lc * ph.traffic, lb * ph.traffic);
        let (fc, fb) = (rc * ph.canary_error, rb * ph.baseline_error);
        let (sc, sb) = (rc - fc, rb - fb);
        let end = second + 1.0;
        if fine {
            let mut sec_acc = Acc::default();
            let mut t = second;
            let total_f = fc + fb;
            loop {
                let next = if total_f > 0.0 {
                    t + exponential(&mut rng, total_f)
                } else {
                    f64::INFINITY
                };
                let upto = next.min(end);
                let dt = upto - t;
                let cs = poisson(&mut rng, sc * dt);
                let bs = poisson(&mut rng, sb * dt);
                ev_acc.add(cs, 0, bs, 0);
                sec_acc.add(cs, 0, bs, 0);
                minute.add(cs, 0, bs, 0);
                if next >= end {
                    break;
                }
                let canary = uniform(&mut rng) * total_f < fc;
                let (cf, bf) = if canary { (1, 0) } else { (0, 1) };
                ev_acc.add(0, cf, 0, bf);
                sec_acc.add(0, cf, 0, bf);
                minute.add(0, cf, 0, bf);
                let was = ev.out.trip.is_some();
                requests_seen += ev_acc.c.requests;
                ev.feed(ev_start, next, &ev_acc);
                if !was && ev.out.trip.is_some() {
                    requests_to_trip = Some(requests_seen);
                }
                ev_acc = Acc::default();
                ev_start = next;
                t = next;
            }
            sec.feed(second, end, &sec_acc);
        } else {
            // Both breakers decided: only the Flagger rule still needs traffic.
            let cs = poisson(&mut rng, sc);
            let cf = poisson(&mut rng, fc);
            minute.add(cs, cf, 0, 0);
        }
        // Health poll at 15, 30, …: fails with the canary's current error rate.
        second = end;
        if (second as u64).is_multiple_of(5) {
            // The per-event column also hands over its successes at every
            // 5-s look (a driver reads its counters at least that often).
            if fine && ev.out.trip.is_none() {
                requests_seen += ev_acc.c.requests;
                ev.feed(ev_start, second, &ev_acc);
                if ev.out.trip.is_some() {
                    requests_to_trip = Some(requests_seen);
                }
                ev_acc = Acc::default();
                ev_start = second;
            }
            ev.judge(second, scenario.window);
            sec.judge(second, scenario.window);
        }
        if (second as u64).is_multiple_of(60) {
            flagger_check(&minute, second, &mut flagger);
            minute = Acc::default();
        }
        if ev.out.trip.is_some() && sec.out.trip.is_some() && flagger.trip.is_some() {
            break;
        }
    }
    // Flush the per-event accumulator at the end of the watch.
    if ev.out.trip.is_none() && second >= horizon {
        requests_seen += ev_acc.c.requests;
        ev.feed(ev_start, horizon, &ev_acc);
        if ev.out.trip.is_some() {
            requests_to_trip = Some(requests_seen);
        }
    }

    // Health poll: independent stream, so it never perturbs the breakers' draws.
    let mut health = Outcome::none();
    let mut fails: Vec<f64> = Vec::new();
    let mut t = 15.0;
    while t <= horizon {
        let p = scenario.phase_at(t - 1e-9).canary_error;
        if uniform(&mut poll_rng) < p {
            fails.push(t);
            fails.retain(|&f| f > t - 120.0);
            if fails.len() >= 5 {
                health.trip = Some(t);
                break;
            }
        }
        t += 15.0;
    }

    RunResult {
        per_event: ev.out,
        per_second: sec.out,
        health_poll: health,
        flagger,
        requests_to_trip: requests_to_trip.unwrap_or(requests_seen),
    }
}

/// A watch whose failures come in clumps (a request and its retries, one
/// sick instance): per 1-s batch, each arm's requests are Poisson (the
/// baseline gets nine times the canary's), and its failures arrive as
/// Poisson clumps of `clump` failures, `error` per request on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clumped {
    pub canary_rps: f64,
    pub canary_error: f64,
    pub baseline_error: f64,
    pub clump: u64,
    pub seconds: usize,
    /// Seconds of production's history learnt before the watch (its
    /// failures clumped the same way); 0: none.
    pub history: u32,
}

/// Mixed into a run's seed for the history's own random stream.
const HISTORY_SALT: u64 = 0x4157_0a11_5eed;

/// Runs one seeded [`Clumped`] watch with 1-s batches; the trip's time in
/// seconds from the start, if the breaker tripped.
pub fn clumped(settings: &Settings, cell: &Clumped, seed: u64) -> Option<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Breaker::new(settings.clone()).ok()?;
    b.begin_step(0.0);
    let arm = |rng: &mut ChaCha8Rng, rps: f64, error: f64| {
        let n = poisson(rng, rps);
        let clumps = poisson(rng, n as f64 * error / cell.clump.max(1) as f64);
        Arm {
            requests: n,
            failures: (clumps * cell.clump.max(1)).min(n),
            slow: None,
        }
    };
    let mut history_rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ HISTORY_SALT));
    for _ in 0..cell.history {
        let a = arm(&mut history_rng, cell.canary_rps * 9.0, cell.baseline_error);
        b.learn_production(a.requests, a.failures);
    }
    for s in 0..cell.seconds {
        let t = s as f64;
        let canary = arm(&mut rng, cell.canary_rps, cell.canary_error);
        let baseline = arm(&mut rng, cell.canary_rps * 9.0, cell.baseline_error);
        let batch = Batch {
            start: t,
            end: t + 1.0,
            canary,
            baseline: Some(baseline),
        };
        if let Verdict::Trip(_) = b.observe(&batch) {
            return Some(t + 1.0);
        }
    }
    None
}

/// The 95 % Wilson score interval of `k` successes in `n` trials, for the
/// benchmarks' rates.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    let z = 1.959_963_985;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    ((c - h).max(0.0), (c + h).min(1.0))
}
