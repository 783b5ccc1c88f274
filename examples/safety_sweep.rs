//! The safety sweep behind BENCHMARKS.md's "Safety under faults" figures:
//!
//! - **concurrency**: `--trials` trials per platform (App Service,
//!   Container Apps, Kubernetes with an Istio canary) of 2–4 runs of one app
//!   (deploy+deploy, deploy+rollback, rollback+rollback) started at random
//!   0–300 ms offsets, through the built binary against the sandbox; each
//!   trial checks that no two runs' changes to the platform interleave, that every
//!   loser waited or stopped with a message, and that production ends on
//!   one version a run verified;
//! - **preemption**: an emergency rollback clicked during a two-minute
//!   canary, against waiting the canary out (what a rollback without
//!   preemption does);
//! - **memory**: peak RSS of a normal deploy beside deploys that meet a
//!   1 GiB answer from the token endpoint, ARM and the app;
//! - **lock cost**: the same deploy with the lock (and the package archive)
//!   and with `lock: none`, alternating, wall time and GitHub requests.
//!
//! ```sh
//! cargo build --release --bin expedite --example safety_sweep
//! target/release/examples/safety_sweep --trials 100
//! # one part, one platform:
//! target/release/examples/safety_sweep --only concurrency --platform kubernetes
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::safety::{APP, Kind, Platform, Rig, concurrency_trial, preemption};
use expedite_sandbox::{FaultKind, FaultSpec};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: u64 = arg("--trials").and_then(|v| v.parse().ok()).unwrap_or(100);
    let seed: u64 = arg("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
    let only = arg("--only");
    assert!(
        common::exe().exists(),
        "build the binary first: cargo build --release --bin expedite ({} is missing)",
        common::exe().display()
    );
    if only.as_deref().is_none_or(|o| o == "concurrency") {
        let wanted = arg("--platform");
        for platform in [
            Platform::AppService,
            Platform::ContainerApps,
            Platform::Kubernetes,
        ] {
            if wanted
                .as_deref()
                .is_some_and(|w| !format!("{platform:?}").eq_ignore_ascii_case(w))
            {
                continue;
            }
            concurrency(platform, trials, seed).await;
        }
    }
    if only.as_deref().is_none_or(|o| o == "preemption") {
        preempt(
            arg("--preempt-trials")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
        )
        .await;
    }
    if only.as_deref().is_none_or(|o| o == "memory") {
        memory().await;
    }
    if only.as_deref().is_none_or(|o| o == "lockcost") {
        lock_cost(
            arg("--lock-runs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
        )
        .await;
    }
}

async fn concurrency(platform: Platform, trials: u64, seed: u64) {
    let started = Instant::now();
    let mut passed = 0;
    let mut runs = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut walls = Vec::new();
    let mut failures = Vec::new();
    for i in 0..trials {
        let t = concurrency_trial(
            platform,
            seed + i
                + match platform {
                    Platform::AppService => 0,
                    Platform::ContainerApps => 100_000,
                    Platform::Kubernetes => 200_000,
                },
        )
        .await;
        walls.push(t.wall.as_secs_f64());
        runs += t.runs.len();
        for (k, _, r) in &t.runs {
            let kind = match k {
                Kind::Deploy(_) => "deploy",
                Kind::Rollback(_) => "rollback",
            };
            *outcomes
                .entry(format!("{kind} {}", r.output("result").unwrap_or("(none)")))
                .or_default() += 1;
            if r.code != 0 {
                // The first words of why, numbers and names dropped.
                let why: String = r
                    .output("error")
                    .unwrap_or("(no message)")
                    .split(':')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(":")
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(110)
                    .collect();
                *reasons.entry(format!("{kind}: {why}")).or_default() += 1;
            }
        }
        match t.check() {
            Ok(()) => passed += 1,
            Err(e) => {
                eprintln!("{platform:?} trial {i}: {e}");
                failures.push(e);
            }
        }
        if (i + 1) % 10 == 0 {
            eprintln!("{platform:?}: {}/{trials} trials, {passed} passed", i + 1);
        }
    }
    println!(
        "\n### Concurrency, {platform:?}: {passed}/{trials} trials kept every promise ({runs} runs, {:.0} s in all)\n",
        started.elapsed().as_secs_f64()
    );
    println!(
        "trial wall time: median {:.1} s, p95 {:.1} s, max {:.1} s\n",
        quantile(&mut walls.clone(), 0.5),
        quantile(&mut walls.clone(), 0.95),
        quantile(&mut walls, 1.0)
    );
    println!("| run | result | count |\n|---|---|---|");
    for (k, n) in &outcomes {
        let (kind, result) = k.split_once(' ').unwrap_or((k, ""));
        println!("| {kind} | {result} | {n} |");
    }
    println!("\n| why a run exited non-zero | count |\n|---|---|");
    for (why, n) in &reasons {
        println!("| {} | {n} |", why.replace('|', "/"));
    }
    for f in failures.iter().take(5) {
        println!("\nfailure: {f}");
    }
}

async fn preempt(n: u32) {
    let mut took = Vec::new();
    let mut baseline = Vec::new();
    let mut bad = 0;
    for i in 0..n {
        // Clicked 0.5–10 s into a 120 s canary.
        let after = Duration::from_millis(500 + u64::from(i) * 9_500 / u64::from(n.max(1)));
        match preemption(after).await {
            Ok((t, d, _)) if d.output("result") == Some("preempted") => {
                took.push(t.as_secs_f64());
                // Without preemption the rollback waits for the canary's end.
                baseline.push(120.0 - after.as_secs_f64());
            }
            Ok((_, d, _)) => {
                bad += 1;
                eprintln!("trial {i}: the deploy ended {:?}", d.output("result"));
            }
            Err(e) => {
                bad += 1;
                eprintln!("trial {i}: {e}");
            }
        }
    }
    println!(
        "\n### Emergency rollback during a 120 s canary ({n} trials, {bad} broken)\n\n| | median | max |\n|---|---|---|\n| click → production verified on 2.4.0 (preempting) | {:.1} s | {:.1} s |\n| waiting the canary out (no preemption) | {:.1} s | {:.1} s |",
        quantile(&mut took.clone(), 0.5),
        quantile(&mut took, 1.0),
        quantile(&mut baseline.clone(), 0.5),
        quantile(&mut baseline, 1.0)
    );
}

async fn memory() {
    const GIB: u64 = 1 << 30;
    println!(
        "\n### Peak RSS of one deploy (the binary, measured by getrusage)\n\n| answer | result | peak RSS |\n|---|---|---|"
    );
    type Case = (
        &'static str,
        Option<fn(&expedite_sandbox::Settings) -> FaultSpec>,
    );
    let cases: [Case; 4] = [
        ("normal (baseline)", None),
        (
            "1 GiB from the token endpoint",
            Some(|_| FaultSpec::new(FaultKind::HugeBody { bytes: GIB }).host("login.azure.test")),
        ),
        (
            "1 GiB from ARM (the site)",
            Some(|s| {
                FaultSpec::new(FaultKind::HugeBody { bytes: GIB })
                    .host("management.azure.test")
                    .method("GET")
                    .path_prefix(format!(
                        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{APP}",
                        s.subscription_id, s.resource_group
                    ))
            }),
        ),
        (
            "1 GiB chunked from the app's /api/version",
            Some(|_| {
                FaultSpec::new(FaultKind::HugeBodyChunked { bytes: GIB })
                    .host("app-contoso-payments-staging.azurewebsites.test")
                    .path_prefix("/api/version")
            }),
        ),
    ];
    for (name, fault) in cases {
        let rig = Rig::new().await;
        if let Some(f) = fault {
            rig.sb.handle().add_fault(f(&rig.sb.settings())).unwrap();
        }
        let job = rig.deploy("2.4.1").input("check-attempts", "2");
        let (r, kib) = tokio::task::spawn_blocking(move || job.run_main_measured())
            .await
            .unwrap();
        println!(
            "| {name} | {} | {:.1} MiB |",
            r.output("result").unwrap_or("?"),
            kib as f64 / 1024.0
        );
        rig.shutdown().await;
    }
}

async fn lock_cost(n: usize) {
    let rig = Rig::new().await;
    let mut with: Vec<f64> = Vec::new();
    let mut without: Vec<f64> = Vec::new();
    let mut github_with = Vec::new();
    let mut github_without = Vec::new();
    for i in 0..n * 2 {
        let version = if i % 2 == 0 { "2.4.1" } else { "2.4.2" };
        let locked = (i / 2) % 2 == 0;
        let mut job = rig.deploy(version);
        if !locked {
            job = job.input("lock", "none");
        }
        let before = rig.sb.handle().last_seq();
        let started = Instant::now();
        let r = tokio::task::spawn_blocking(move || job.run_main())
            .await
            .unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
        let github = rig
            .sb
            .handle()
            .request_log_since(before)
            .iter()
            .filter(|x| x.host == "api.github.test" && x.path.contains("/git/"))
            .count();
        if locked {
            with.push(wall);
            github_with.push(github as f64);
        } else {
            without.push(wall);
            github_without.push(github as f64);
        }
    }
    rig.shutdown().await;
    let med_with = quantile(&mut with.clone(), 0.5);
    let med_without = quantile(&mut without.clone(), 0.5);
    println!(
        "\n### What the lock costs one deploy ({n} deploys each, alternating)\n\n| | median wall | git-database requests to GitHub |\n|---|---|---|\n| `lock: auto` (the lock; the package archive) | {med_with:.2} s | {:.0} |\n| `lock: none` (the package archive only) | {med_without:.2} s | {:.0} |\n| difference | {:+.2} s ({:.2}×) | |",
        quantile(&mut github_with, 0.5),
        quantile(&mut github_without, 0.5),
        med_with - med_without,
        med_with / med_without
    );
}
