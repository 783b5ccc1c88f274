//! Breaker benchmark: the statistical breaker (`expedite::breaker`) against the
//! seed's health-poll rule and a Flagger-like rule, on the same simulated
//! traffic, in virtual time (see `src/breaker/sim.rs` and docs/bench-breaker.md).
//!
//! ```sh
//! cargo run --release --example bench_breaker -- [--runs N] [--seed S] [--cells A,B] [--history SECS]
//! ```
//!
//! `--cells` runs only the cells whose name contains one of the given
//! texts (e.g. `--cells spill,low` or `--cells "bad 1@2"`); `--help` says so.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

use std::collections::HashMap;
use std::time::Instant;

use expedite::breaker::sim::{self, Outcome, Phase, RunResult, Scenario, wilson};
use expedite::breaker::sprt::kl_bernoulli;
use expedite::breaker::{Breaker, Settings};

const P0: f64 = 0.001;
const RATES: [f64; 4] = [2.0, 10.0, 20.0, 100.0];

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn d_bern(x: f64, y: f64) -> f64 {
    kl_bernoulli(x, y)
}

#[derive(Clone, Default)]
struct Stat {
    n: usize,
    trips: Vec<f64>,
    no_data: usize,
    inconclusive: usize,
    pass: usize,
    by_test: HashMap<String, usize>,
}

impl Stat {
    fn add(&mut self, o: &Outcome, offset: f64) {
        self.n += 1;
        if let Some(t) = o.trip {
            self.trips.push(t - offset);
            if let Some(k) = o.test {
                *self.by_test.entry(format!("{k:?}")).or_default() += 1;
            }
        }
        self.no_data += usize::from(o.trip_on_no_data);
        self.inconclusive += usize::from(o.inconclusive);
        self.pass += usize::from(o.pass);
    }
    fn p(&self) -> f64 {
        self.trips.len() as f64 / self.n as f64
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.trips.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn median(&self) -> f64 {
        quantile(&self.sorted(), 0.5)
    }
    fn p95(&self) -> f64 {
        quantile(&self.sorted(), 0.95)
    }
    fn mean(&self) -> f64 {
        self.trips.iter().sum::<f64>() / self.trips.len().max(1) as f64
    }
}

struct Cell {
    event: Stat,
    second: Stat,
    health: Stat,
    flagger: Stat,
    pre_onset: [usize; 4],
    fingerprint: u64,
}

fn fmt_t(t: f64) -> String {
    if t.is_nan() {
        "–".into()
    } else if t < 1.0 {
        format!("{t:.2} s")
    } else if t < 600.0 {
        format!("{t:.1} s")
    } else {
        format!("{:.1} min", t / 60.0)
    }
}

fn fmt_rate(k: usize, n: usize) -> String {
    let (lo, hi) = wilson(k, n);
    format!(
        "{:.2} % [{:.2}, {:.2}]",
        100.0 * k as f64 / n as f64,
        100.0 * lo,
        100.0 * hi
    )
}

fn run_cell(
    id: &str,
    sc: &Scenario,
    s: &Settings,
    runs: usize,
    seed: u64,
    onset: Option<f64>,
) -> Cell {
    let mut c = Cell {
        event: Stat::default(),
        second: Stat::default(),
        health: Stat::default(),
        flagger: Stat::default(),
        pre_onset: [0; 4],
        fingerprint: 0xcbf2_9ce4_8422_2325,
    };
    let sc = &Scenario {
        history: HISTORY.get().copied().unwrap_or(0),
        ..sc.clone()
    };
    for r in 0..runs {
        let res: RunResult = sim::run(sc, s, sim::run_seed(seed, id, r as u64));
        let fp = format!("{res:?}");
        for b in fp.bytes() {
            c.fingerprint = (c.fingerprint ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let outs = [
            &res.per_event,
            &res.per_second,
            &res.health_poll,
            &res.flagger,
        ];
        let stats = [&mut c.event, &mut c.second, &mut c.health, &mut c.flagger];
        for (i, (o, st)) in outs.into_iter().zip(stats).enumerate() {
            match onset {
                Some(on) if o.trip.is_some_and(|t| t <= on) => {
                    c.pre_onset[i] += 1;
                    st.n += 1;
                }
                Some(on) => st.add(o, on),
                None => st.add(o, 0.0),
            }
        }
    }
    c
}

/// Seconds of production's history every cell's breakers learn from
/// before the watch (`--history`).
static HISTORY: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

const HELP: &str = "bench_breaker [--runs N] [--seed S] [--cells A,B] [--history SECS]

The breaker against the seed's health-poll rule and a Flagger-like rule on
the same seeded traffic (virtual time, 30-minute watches).
  --runs N     seeded runs per cell (default 10000; about 8 minutes on 2 cores)
  --seed S     global seed (default 1)
  --cells A,B  only cells whose name contains A or B (e.g. spill,low,dropout, \"bad 1@2\")
  --history S  the breakers first learn S seconds of production's traffic, as
               they do from Prometheus (default 0: none, as with probes)
Clumped failures have their own benchmark: --example bench_clumping.";

/// Canary share of every bench cell.
const SHARE: f64 = 0.1;

/// Growth per canary request of the oracle 2×2 e-value (both true rates
/// known) against the pooled rate: the fastest a valid comparison with
/// the baseline can gather evidence at this share.
fn two_sample_rate(p: f64, pb: f64, share: f64) -> f64 {
    let pooled = share * p + (1.0 - share) * pb;
    kl_bernoulli(p, pooled) + (1.0 - share) / share * kl_bernoulli(pb, pooled)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return;
    }
    let cells: Vec<String> = args
        .iter()
        .position(|a| a == "--cells")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let wanted = |id: &str| cells.is_empty() || cells.iter().any(|c| id.contains(c.as_str()));
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<u64>().expect("a number"))
            .unwrap_or(default)
    };
    let runs = arg("--runs", 10_000) as usize;
    let seed = arg("--seed", 1);
    let history = u32::try_from(arg("--history", 0)).expect("--history fits in 32 bits");
    HISTORY.set(history).expect("set once");
    let settings = Settings::default();
    let design = Breaker::new(settings.clone()).unwrap().design().clone();
    let wall = Instant::now();
    let mut verdicts: Vec<(String, bool)> = Vec::new();

    println!("# Breaker benchmark\n");
    println!(
        "runs per cell: {runs}, seed: {seed}, watch 30 min, canary share 10 %, baseline error 0.1 %, \
         production history learnt first: {history} s, settings: {settings:?}\n\ndesign: α_error {} (ln {:.3}), α_late {} (ln {:.3}), grid {:?}, restart every {} canary requests\n",
        design.alpha_error,
        design.error_threshold,
        design.alpha_late,
        design.late_threshold,
        design.error_grid,
        design.restart_spacing
    );

    // ---------------- null cells (achieved α per rate) ----------------
    println!("## Good canary (0.1 %, the null) and nuisances on a good canary\n");
    println!(
        "False-trip rate with 95 % Wilson interval; INCONCLUSIVE = `judge(window = 30 min, max_silence = 120 s)` \
         answered INCONCLUSIVE at some 5-s look before any trip; no-data = trips on a batch without any request \
         (breaker) or with an empty-window check among the counted failures (Flagger).\n"
    );
    println!(
        "| cell | canary req/s | breaker per event: false trips | INCONCL. | breaker 1-s batches: false trips | INCONCL. | health poll | Flagger-like (no-data trips) | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let good = |phases: Vec<Phase>, rate: f64| Scenario {
        phases,
        ..Scenario::constant(rate, P0, P0)
    };
    let ph = |start: f64, c: f64, b: f64, traffic: f64| Phase {
        start,
        canary_error: c,
        baseline_error: b,
        traffic,
    };
    let nuisances: Vec<(&str, Vec<Phase>)> = vec![
        ("null 0.1 %", vec![ph(0.0, P0, P0, 1.0)]),
        (
            "drift ×5, both arms 0.5 %",
            vec![ph(0.0, 0.005, 0.005, 1.0)],
        ),
        (
            "burst 60 s, both arms 20 % at t=120 s",
            vec![
                ph(0.0, P0, P0, 1.0),
                ph(120.0, 0.2, 0.2, 1.0),
                ph(180.0, P0, P0, 1.0),
            ],
        ),
        (
            "no traffic t=60..360 s",
            vec![
                ph(0.0, P0, P0, 1.0),
                ph(60.0, P0, P0, 0.0),
                ph(360.0, P0, P0, 1.0),
            ],
        ),
    ];
    let mut no_data_breaker = 0usize;
    let mut fingerprint_cell = None;
    for (name, phases) in &nuisances {
        for &rate in &RATES {
            let id = format!("{name}@{rate}");
            if !wanted(&id) {
                continue;
            }
            let c = run_cell(
                &id,
                &good(phases.clone(), rate),
                &settings,
                runs,
                seed,
                None,
            );
            no_data_breaker += c.event.no_data + c.second.no_data;
            let ok = |s: &Stat| wilson(s.trips.len(), s.n).1 <= 0.0125 && s.p() <= 0.01;
            let pass = ok(&c.event) && ok(&c.second);
            verdicts.push((format!("false trips ≤ 1 % (upper ≤ 1.25 %): {id}"), pass));
            println!(
                "| {name} | {rate} | {} | {:.2} % | {} | {:.2} % | {} | {} ({}) | {} |",
                fmt_rate(c.event.trips.len(), c.event.n),
                100.0 * c.event.inconclusive as f64 / c.event.n as f64,
                fmt_rate(c.second.trips.len(), c.second.n),
                100.0 * c.second.inconclusive as f64 / c.second.n as f64,
                fmt_rate(c.health.trips.len(), c.health.n),
                fmt_rate(c.flagger.trips.len(), c.flagger.n),
                c.flagger.no_data,
                if pass { "PASS" } else { "FAIL" }
            );
            if fingerprint_cell.is_none() && name.starts_with("burst") && rate == 20.0 {
                fingerprint_cell = Some((id.clone(), good(phases.clone(), rate), c.fingerprint));
            }
        }
    }
    verdicts.push((
        "zero breaker trips caused purely by missing data".into(),
        no_data_breaker == 0,
    ));

    // ---------------- bad canaries ----------------
    println!("\n## Bad canaries (bad from the deploy), and real-traffic cells\n");
    println!(
        "P(trip within 30 min) / median / p95 time-to-trip (tripped runs). bound = d(1−β‖α)/KL(p‖p_b)/λ_c at the \
         **configured** α = {} (not at the false-trip rate a run happened to achieve), at least one request \
         (1/λ_c); for p ≥ 50 % the **two-failure bound** 2/(λ_c·p) when larger (at a 10 % share one failure \
         carries at most ≈ 3.3 nats of the two-sample evidence a valid trip needs, ≈ 6.7). eff = bound / mean \
         time-to-trip; the 1-s column's bound is at least 1 s (the first batch ends then). *two-sample bound*: \
         the same with the growth of an oracle 2×2 e-value that knows both true rates, KL(p‖p*) + 9·KL(p_b‖p*) \
         per canary request with p* the pooled rate (at a 10 % share no valid comparison with the baseline \
         grows faster: the one-sample bound assumes the baseline's rate known exactly). Target (1-s column, \
         the production one): median ≤ 2×bound (the issue's), and ≤ 2× the two-sample bound. *spill*: the baseline is \
         dragged up too (a shared dependency); *low*: 0.1 canary req/s, P(trip within 30 min) ≥ 0.6 wanted.\n",
        settings.alpha
    );
    println!(
        "| cell | canary error | baseline error | req/s | bound | two-sample bound | breaker per event: P / median / p95 | med/bound | eff | breaker 1-s batches: P / median / p95 | med/bound | med/two-sample | health poll: P / median | Flagger-like: P / median | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut bad_cells: Vec<(String, f64, f64, f64)> = Vec::new();
    for &p in &[1.0, 0.5, 0.05, 0.01] {
        for &rate in &RATES {
            bad_cells.push((format!("bad {p}@{rate}"), p, P0, rate));
        }
    }
    for &rate in &[2.0, 20.0] {
        bad_cells.push((format!("spill 1/0.5@{rate}"), 1.0, 0.5, rate));
        bad_cells.push((format!("spill 0.5/0.1@{rate}"), 0.5, 0.1, rate));
    }
    bad_cells.push(("low 0.05@0.1".into(), 0.05, P0, 0.1));
    for (id, p, pb, rate) in &bad_cells {
        let (p, pb, rate) = (*p, *pb, *rate);
        if !wanted(id) {
            continue;
        }
        let c = run_cell(
            id,
            &Scenario::constant(rate, p, pb),
            &settings,
            runs,
            seed,
            None,
        );
        let bound = |s: &Stat| {
            let power = s.p().clamp(1.0 / runs as f64, 1.0 - 1e-12);
            let d = d_bern(power, settings.alpha);
            let one = (d / kl_bernoulli(p, pb)).max(1.0) / rate;
            if p >= 0.5 {
                one.max(2.0 / (rate * p))
            } else {
                one
            }
        };
        let b_ev = bound(&c.event);
        // 1-s batches: nothing is known before the first batch ends.
        let b_sec = bound(&c.second).max(1.0);
        // The two-sample bound: what an oracle 2×2 e-value (true rates
        // known) needs against the pooled rate a 10 % share allows.
        let two = {
            let power = c.second.p().clamp(1.0 / runs as f64, 1.0 - 1e-12);
            let d = d_bern(power, settings.alpha);
            let t = (d / two_sample_rate(p, pb, SHARE)).max(1.0) / rate;
            let t = if p >= 0.5 { t.max(2.0 / (rate * p)) } else { t };
            t.max(1.0)
        };
        let ratio = c.event.median() / b_ev;
        let ratio_sec = c.second.median() / b_sec;
        let ratio_two = c.second.median() / two;
        let pass = if id.starts_with("low") {
            c.second.p() >= 0.6
        } else {
            ratio_sec <= 2.0 && c.second.p() >= 0.99
        };
        verdicts.push((
            format!(
                "{id}: 1-s median ≤ 2× bound (ratio {ratio_sec:.2}, P {:.3})",
                c.second.p()
            ),
            pass,
        ));
        if !id.starts_with("low") {
            verdicts.push((
                format!("{id}: 1-s median ≤ 2× two-sample bound (ratio {ratio_two:.2})"),
                ratio_two <= 2.0 && c.second.p() >= 0.99,
            ));
        }
        println!(
            "| {id} | {} % | {} % | {rate} | {} | {} | {:.4} / {} / {} | {:.2} | {:.2} | {:.4} / {} / {} | {:.2} | {:.2} | {:.4} / {} | {:.4} / {} | {} |",
            p * 100.0,
            pb * 100.0,
            fmt_t(b_ev),
            fmt_t(two),
            c.event.p(),
            fmt_t(c.event.median()),
            fmt_t(c.event.p95()),
            ratio,
            b_ev / c.event.mean(),
            c.second.p(),
            fmt_t(c.second.median()),
            fmt_t(c.second.p95()),
            ratio_sec,
            ratio_two,
            c.health.p(),
            fmt_t(c.health.median()),
            c.flagger.p(),
            fmt_t(c.flagger.median()),
            if pass { "PASS" } else { "FAIL" }
        );
    }

    // ---------------- baseline dropout ----------------
    println!(
        "\n## Baseline dropout: production's series vanishes (a bad canary must never PASS)\n"
    );
    println!(
        "A 5-minute step (window 300 s, `judge` every 5 s), 10 % share; from the given time every batch \
         carries no baseline (an empty or stale metrics result). PASS = `judge` answered PASS before any \
         trip — the fail-open this cell exists to catch. A baseline seen and then gone: the step cannot \
         PASS once it has been missing for `max-silence` (120 s) and ends INCONCLUSIVE unless the canary \
         trips first. No baseline from the start: the one-sample test against `baseline-error-rate` \
         (0.1 %) alone decides, so a 1 % canary trips. The 0.1 % rows are good canaries: there the \
         target is false trips ≤ 1 %.\n\n\
         | cell | canary error | req/s | baseline gone from | per event: trips / PASS / INCONCL. | 1-s batches: trips / PASS / INCONCL. | median trip (1-s) | target |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &(p, rate, from) in &[
        (0.97, 2.0, 60.0),
        (0.97, 20.0, 0.0),
        (0.05, 2.0, 60.0),
        (0.05, 20.0, 60.0),
        (0.01, 2.0, 60.0),
        (0.01, 20.0, 0.0),
        (P0, 2.0, 0.0),
        (P0, 20.0, 0.0),
        (P0, 100.0, 60.0),
    ] {
        let id = format!("dropout {p}@{rate} from {from}");
        if !wanted(&id) {
            continue;
        }
        let sc = Scenario {
            window: 300.0,
            horizon: 300.0,
            baseline_missing_from: Some(from),
            ..Scenario::constant(rate, p, P0)
        };
        let c = run_cell(&id, &sc, &settings, runs, seed, None);
        let pass = if p > P0 {
            c.event.pass == 0 && c.second.pass == 0
        } else {
            // A good canary: without a baseline it must not be rolled back
            // more often than α either.
            let ok = |s: &Stat| wilson(s.trips.len(), s.n).1 <= 0.0125 && s.p() <= 0.01;
            ok(&c.event) && ok(&c.second)
        };
        verdicts.push((
            if p > P0 {
                format!("zero PASS verdicts: {id}")
            } else {
                format!("false trips ≤ 1 % (upper ≤ 1.25 %): {id}")
            },
            pass,
        ));
        println!(
            "| {id} | {} % | {rate} | {from} s | {} / {} / {} | {} / {} / {} | {} | {} |",
            p * 100.0,
            c.event.trips.len(),
            c.event.pass,
            c.event.inconclusive,
            c.second.trips.len(),
            c.second.pass,
            c.second.inconclusive,
            fmt_t(c.second.median()),
            if pass { "PASS" } else { "FAIL" }
        );
    }

    // ---------------- late onset ----------------
    println!(
        "\n## Late onset: canary goes from 0.1 % to 5 % at t = 10 min (control: the null rows above)\n"
    );
    println!(
        "Pre-onset trips are false trips; times are measured from the onset.\n\n\
         | req/s | breaker per event: pre-onset false trips | P(trip after onset) / median / p95 | breaker 1-s: pre-onset | P / median / p95 | health poll: P / median | Flagger-like: pre-onset | P / median |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &rate in &RATES {
        let id = format!("late 5%@{rate}");
        if !wanted(&id) {
            continue;
        }
        let sc = good(vec![ph(0.0, P0, P0, 1.0), ph(600.0, 0.05, P0, 1.0)], rate);
        let c = run_cell(&id, &sc, &settings, runs, seed, Some(600.0));
        let n = c.event.n;
        println!(
            "| {rate} | {} | {:.4} / {} / {} | {} | {:.4} / {} / {} | {:.4} / {} | {} | {:.4} / {} |",
            fmt_rate(c.pre_onset[0], n),
            c.event.trips.len() as f64 / n as f64,
            fmt_t(c.event.median()),
            fmt_t(c.event.p95()),
            fmt_rate(c.pre_onset[1], n),
            c.second.trips.len() as f64 / n as f64,
            fmt_t(c.second.median()),
            fmt_t(c.second.p95()),
            c.health.trips.len() as f64 / n as f64,
            fmt_t(c.health.median()),
            fmt_rate(c.pre_onset[3], n),
            c.flagger.trips.len() as f64 / n as f64,
            fmt_t(c.flagger.median()),
        );
        let by: Vec<_> = {
            let mut v: Vec<_> = c.event.by_test.iter().collect();
            v.sort();
            v
        };
        eprintln!("late onset @{rate}: per-event trips by test {by:?}");
        let ok = wilson(c.pre_onset[0], n).1 <= 0.0125 && wilson(c.pre_onset[1], n).1 <= 0.0125;
        verdicts.push((format!("pre-onset false trips ≤ 1 %: {id}"), ok));
    }

    // ---------------- determinism ----------------
    if let Some((id, sc, fp)) = fingerprint_cell {
        let again = run_cell(&id, &sc, &settings, runs, seed, None).fingerprint;
        verdicts.push((
            format!("identical seeds ⇒ identical results (cell {id}, {runs} runs rerun)"),
            again == fp,
        ));
    }

    println!("\n## Targets\n");
    println!("| check | result |\n|---|---|");
    for (name, ok) in &verdicts {
        println!("| {name} | {} |", if *ok { "PASS" } else { "FAIL" });
    }
    let failed = verdicts.iter().filter(|v| !v.1).count();
    println!(
        "\n{} of {} checks passed. Wall time {:.1} s (single thread).",
        verdicts.len() - failed,
        verdicts.len(),
        wall.elapsed().as_secs_f64()
    );
}
