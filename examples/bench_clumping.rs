//! Clumped failures: the breaker counting failures as clumps
//! (`failure-clumping: estimate`, this release) against the same breaker
//! treating failures as independent (`independent`), on the same seeded
//! traffic, 1-s batches, canary share 10 %, baseline error 0.1 %.
//!
//! ```sh
//! cargo run --release --example bench_clumping -- [--runs N] [--seed S] [--history SECS]
//! ```
//!
//! Good canaries (same mean rate and clumping as production) give the
//! false-trip rate, to compare with the configured α; bad ones (5 % and
//! 100 %, same clumping) the median time to trip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

use std::time::Instant;

use expedite::breaker::Settings;
use expedite::breaker::sim::{self, Clumped, wilson};

fn median(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "—".into();
    }
    v.sort_by(f64::total_cmp);
    format!("{:.0} s", v[v.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "bench_clumping [--runs N] [--seed S] [--history SECS]\n\nN seeded 30-minute watches per cell (default 1000), seed S (default 1);\nthe breaker first learns SECS seconds of production's (equally clumped) traffic,\nas it does from Prometheus (default 0: none)."
        );
        return;
    }
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<u64>().expect("a number"))
            .unwrap_or(default)
    };
    let runs = arg("--runs", 1000);
    let seed = arg("--seed", 1);
    let history = u32::try_from(arg("--history", 0)).expect("--history fits in 32 bits");
    let clumps = Settings::default();
    let independent = Settings {
        independent_failures: true,
        ..Settings::default()
    };
    let wall = Instant::now();
    println!("# Clumped failures\n");
    println!(
        "runs per cell: {runs}, seed: {seed}, α = {} (configured), 1-s batches, canary share 10 %, baseline error 0.1 %, production history learnt first: {history} s\n",
        clumps.alpha
    );
    println!(
        "| clump | canary req/s | good canary: false trips, counted as clumps (≤ α?) | independent | bad 5 %: median trip, as clumps | independent | bad 100 %: as clumps | independent |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // Clumps of 1–3 (the supported dependence) at three traffic levels,
    // and beyond it: clumps of 4–6 at 40 req/s.
    let cells = [1u64, 2, 3]
        .into_iter()
        .flat_map(|clump| [2.0, 20.0, 100.0].map(|rps| (clump, rps)))
        .chain([(4, 40.0), (5, 40.0), (6, 40.0)]);
    for (clump, rps) in cells {
        let cell = |error: f64| Clumped {
            canary_rps: rps,
            canary_error: error,
            baseline_error: 0.001,
            clump,
            seconds: 1800,
            history,
        };
        let trips = |s: &Settings, error: f64, salt: u64| -> Vec<f64> {
            (0..runs)
                .filter_map(|r| {
                    sim::clumped(
                        s,
                        &cell(error),
                        sim::run_seed(seed, &format!("clump{clump}-{rps}-{salt}"), r),
                    )
                })
                .collect()
        };
        let null = |s: &Settings| {
            let k = trips(s, 0.001, 0).len();
            format!(
                "{k}/{runs} ({:.2} %, Wilson ≤ {:.2} %)",
                100.0 * k as f64 / runs as f64,
                100.0 * wilson(k, runs as usize).1
            )
        };
        println!(
            "| {clump} | {rps} | {} | {} | {} | {} | {} | {} |",
            null(&clumps),
            null(&independent),
            median(trips(&clumps, 0.05, 1)),
            median(trips(&independent, 0.05, 1)),
            median(trips(&clumps, 1.0, 2)),
            median(trips(&independent, 1.0, 2)),
        );
    }
    println!("\nwall time: {:.1} s", wall.elapsed().as_secs_f64());
}
