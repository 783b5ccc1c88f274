//! Kubernetes benchmark (issue 19): expedite beside the second seed's
//! scripts, on the same emulated cluster in the same run.
//!
//! - **blue-green**: from "green ready" (its pods rolled out and checked)
//!   to "100 % switched and verified" (the selector switched and read back,
//!   production sampled). The seed's script after `kubectl wait` runs its
//!   smoke tests and one `kubectl patch` of the selector, and verifies
//!   nothing after; its figure is that `kubectl patch` (smoke tests not
//!   counted).
//! - **canary time-to-trip**: a build failing 5 % of its requests at a 10 %
//!   Istio weight. expedite with probes (50/s on the canary's pods) and with
//!   Prometheus on the mesh's `istio_requests_total` from users' traffic
//!   alone (20 req/s through the mesh: 2 req/s reach the canary); the
//!   seed's loop — apply the weights with `kubectl`, sleep
//!   `CANARY_DURATION` (300 s), one Prometheus check of the 5xx rate
//!   (`> 0.01`/s), roll back — run for real with the same Prometheus.
//! - **shared outage**: both versions fail 5 % (a dependency both call).
//!   expedite on Prometheus should not trip; the seed's check, which has no
//!   version in it, trips at its first check.
//!
//! ```sh
//! cargo build --release --example bench_kube
//! target/release/examples/bench_kube --runs 10 --prom-runs 5 --stage 300
//! ```
//! Each run is its own sandbox with its own seed (the demo app's errors and
//! the mesh's split are drawn from it), so runs are independent.
//! `--stage 300` is the seed's `CANARY_DURATION`; the seed's cells take
//! that long each (a smaller value shortens a trial run, not the figure to
//! publish). Needs `prometheus` and `kubectl` on `PATH`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/prometheus.rs"]
mod prom;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kube::{APP, NS, deploy, mesh_host, place, plan, seeded, weights};
use expedite::breaker;
use expedite::probe::evidence::probes::{ProbeSettings, parse_requests};
use expedite::probe::evidence::prometheus::PrometheusSpec;
use expedite::rollout::Phase;
use expedite::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceSpec};
use expedite::rollout::driver::Journal;
use expedite_sandbox::{Behaviour, TrafficSpec};
use prom::{Prometheus, Target};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Milliseconds from the end of `from` to the end of `to` in the journal.
fn between(j: &Journal, from: Phase, to: Phase) -> Option<f64> {
    let end = |p: Phase| {
        j.phases
            .iter()
            .rev()
            .find(|r| r.phase == p)
            .map(|r| (r.started_ms + r.duration_ms) as f64)
    };
    Some(end(to)? - end(from)?)
}

/// From the first canary shift to the end of the watch that tripped.
fn time_to_trip(j: &Journal) -> Option<f64> {
    let shift = j.phases.iter().find(|r| r.phase == Phase::CanaryShift)?;
    let watch = j
        .phases
        .iter()
        .find(|r| r.phase == Phase::CanaryWatch && r.result.contains("trip"))
        .or_else(|| {
            j.phases
                .iter()
                .rev()
                .find(|r| r.phase == Phase::CanaryWatch)
        })?;
    Some((watch.started_ms + watch.duration_ms - shift.started_ms) as f64)
}

fn canary(sources: Vec<SourceSpec>, steps: Vec<u8>, window: Duration) -> CanaryPlan {
    CanaryPlan {
        steps,
        window,
        interval: Duration::from_millis(200),
        breaker: breaker::Settings {
            min_requests: 30,
            max_silence: 5.0,
            ..breaker::Settings::default()
        },
        sources,
        on_inconclusive: InconclusivePolicy::Fail,
        inconclusive_wait: Duration::from_secs(1),
    }
}

fn probes() -> SourceSpec {
    SourceSpec::Probes(ProbeSettings {
        rate: 50.0,
        requests: parse_requests(
            "POST /api/payments {\"amount\": 25, \"currency\": \"USD\"} => GET /api/payments/{id}",
        )
        .unwrap(),
        slow_threshold: None,
        timeout: Duration::from_secs(5),
    })
}

fn bad(sb: &expedite_sandbox::Sandbox, version: &str, rate: f64) {
    sb.set_behaviour(
        version,
        Behaviour {
            error_rate: rate,
            ..Behaviour::default()
        },
    )
    .unwrap();
}

/// Users through the mesh: `rps` payments a second.
fn users(sb: &expedite_sandbox::Sandbox, rps: f64) {
    sb.generate_traffic(TrafficSpec {
        host: mesh_host(),
        rps,
        duration_ms: 600_000,
        order_ratio: 1.0,
        large_order_ratio: 0.0,
    })
    .unwrap();
}

/// A Prometheus scraping the mesh, or `None` (said) without the binary.
async fn prometheus(sb: &expedite_sandbox::Sandbox) -> Option<Prometheus> {
    Prometheus::start(
        &format!("http://{}", sb.http_addr()),
        &[Target {
            slot: "mesh".into(),
            host: "metrics.mesh.test".into(),
            params: vec![],
        }],
    )
    .await
}

fn prometheus_source(p: &Prometheus) -> SourceSpec {
    let place = place("canary");
    let (requests, failures) = place.platform.prometheus_defaults(&place).unwrap();
    let mut spec = PrometheusSpec::new(p.url.clone());
    spec.queries.requests = requests;
    spec.queries.failures = failures;
    SourceSpec::Prometheus(Box::new(spec))
}

fn kubectl(sb: &expedite_sandbox::Sandbox, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let home = std::env::temp_dir().join("expedite-bench-kube-home");
    let _ = std::fs::create_dir_all(&home);
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", sb.settings().kubeconfig_path)
        .env("HOME", &home)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH");
    if let Some(text) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The seed's VirtualService, with the weights of one stage (Istio's v1
/// API: the sandbox serves v1, the seed wrote v1beta1).
fn seed_virtual_service(canary_weight: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {APP}\n  namespace: {NS}\nspec:\n  hosts:\n  - {APP}\n  http:\n  - route:\n    - destination:\n        host: {APP}\n        subset: v2-4-1\n      weight: {}\n    - destination:\n        host: {APP}\n        subset: v2-4-2\n      weight: {canary_weight}\n",
        100 - canary_weight
    )
}

/// The seed's canary loop at its first stage (10 %): apply the weights,
/// sleep the stage, one check of the 5xx rate, roll back if above 0.01/s.
/// Returns (tripped, seconds from the apply to the decision).
async fn seed_first_stage(
    sb: &expedite_sandbox::Sandbox,
    p: &Prometheus,
    stage: Duration,
) -> (bool, f64) {
    // The green Deployment and its subset exist (the seed's manifests).
    let started = Instant::now();
    let (ok, out) = kubectl(
        sb,
        &["apply", "--validate=false", "-f", "-"],
        Some(&seed_virtual_service(10)),
    );
    assert!(ok, "kubectl apply: {out}");
    tokio::time::sleep(stage).await;
    // `rate(http_requests_total{status=~'5..'}[5m])` in Istio's names.
    let v = p
        .query(
            r#"sum(rate(istio_requests_total{reporter="destination",response_code=~"5.."}[5m]))"#,
        )
        .await;
    let rate: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let tripped = rate > 0.01;
    if tripped {
        let (ok, out) = kubectl(
            sb,
            &["apply", "--validate=false", "-f", "-"],
            Some(&seed_virtual_service(0)),
        );
        assert!(ok, "kubectl apply (rollback): {out}");
    }
    (tripped, started.elapsed().as_secs_f64())
}

/// A sandbox where the green Deployment (2.4.2) exists and is ready, with
/// its DestinationRule subset, as the seed's manifests leave it.
async fn seed_green(sb: &expedite_sandbox::Sandbox) {
    let green = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments-green\n  namespace: shop\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: payments, version: 2.4.2}\n  template:\n    metadata:\n      labels: {app: payments, version: 2.4.2}\n    spec:\n      containers:\n      - name: app\n        image: registry.test/payments:2.4.2\n        ports: [{containerPort: 8080}]\n";
    let (ok, out) = kubectl(sb, &["apply", "--validate=false", "-f", "-"], Some(green));
    assert!(ok, "{out}");
    let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: payments\n  namespace: shop\nspec:\n  host: payments\n  subsets:\n  - name: v2-4-1\n    labels: {version: 2.4.1}\n  - name: v2-4-2\n    labels: {version: 2.4.2}\n";
    let (ok, out) = kubectl(sb, &["apply", "--validate=false", "-f", "-"], Some(dr));
    assert!(ok, "{out}");
    assert!(
        sb.kube_wait_available(NS, "payments-green", Duration::from_secs(30))
            .await
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(10);
    let prom_runs: usize = arg("--prom-runs").and_then(|v| v.parse().ok()).unwrap_or(5);
    let stage = Duration::from_secs(arg("--stage").and_then(|v| v.parse().ok()).unwrap_or(300));
    let only = arg("--only");
    let want = |c: &str| only.as_deref().is_none_or(|o| o == c);
    if want("bluegreen") {
        blue_green(runs).await;
    }
    if want("trip") {
        trip(runs, prom_runs, stage).await;
    }
    if want("outage") {
        outage(prom_runs, stage).await;
    }
}

async fn blue_green(runs: usize) {
    let mut ours = Vec::new();
    let mut switch = Vec::new();
    let mut seed = Vec::new();
    for i in 0..runs {
        let sb = seeded(false, i as u64 + 1).await;
        let j = deploy(&sb, &place("blue-green"), plan(None)).await;
        assert_eq!(
            j.outcome(),
            Some(expedite::rollout::Outcome::Promoted),
            "{:#?}",
            j.phases
        );
        ours.push(between(&j, Phase::CheckStaging, Phase::VerifyProduction).unwrap());
        switch.push(between(&j, Phase::CheckStaging, Phase::Swap).unwrap());
        sb.shutdown().await;
        // The seed: green ready, then one `kubectl patch` of the selector.
        let sb = seeded(false, i as u64 + 1).await;
        let (ok, out) = kubectl(
            &sb,
            &["apply", "--validate=false", "-f", "-"],
            Some(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments-green\n  namespace: shop\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: payments, version: 2.4.2}\n  template:\n    metadata:\n      labels: {app: payments, version: 2.4.2}\n    spec:\n      containers:\n      - name: app\n        image: registry.test/payments:2.4.2\n",
            ),
        );
        assert!(ok, "{out}");
        assert!(
            sb.kube_wait_available(NS, "payments-green", Duration::from_secs(30))
                .await
        );
        let t = Instant::now();
        let (ok, out) = kubectl(
            &sb,
            &[
                "patch",
                "service",
                APP,
                "-n",
                NS,
                "-p",
                r#"{"spec":{"selector":{"version":"2.4.2"}}}"#,
            ],
            None,
        );
        assert!(ok, "{out}");
        seed.push(t.elapsed().as_secs_f64() * 1000.0);
        sb.shutdown().await;
    }
    let p = plan(None);
    println!("\n### Blue-green: green ready → 100 % switched ({runs} runs each)\n");
    println!("| | median | max | verified |\n|---|---|---|---|");
    println!(
        "| expedite: the switch, read back | {:.0} ms | {:.0} ms | — |",
        median(&mut switch.clone()),
        max(&switch)
    );
    println!(
        "| expedite: switched and verified (checks for `verify-window` {} ms, then {} production requests sampled) | {:.0} ms | {:.0} ms | yes |",
        p.verify_window.as_millis(),
        p.verify_samples,
        median(&mut ours.clone()),
        max(&ours)
    );
    println!(
        "| seed script (`kubectl patch` of the selector) | {:.0} ms | {:.0} ms | no |",
        median(&mut seed.clone()),
        max(&seed)
    );
}

async fn trip(runs: usize, prom_runs: usize, stage: Duration) {
    // expedite, probes on the canary's pods.
    let mut with_probes = Vec::new();
    for i in 0..runs {
        let sb = seeded(true, 100 + i as u64).await;
        bad(&sb, "2.4.2", 0.05);
        let j = deploy(
            &sb,
            &place("canary"),
            plan(Some(canary(
                vec![probes()],
                vec![10],
                Duration::from_secs(120),
            ))),
        )
        .await;
        assert_eq!(j.facts.canary_steps[0].decision, "trip", "{:#?}", j.phases);
        assert_eq!(weights(&sb).get("v2-4-1"), Some(&100));
        with_probes.push(time_to_trip(&j).unwrap() / 1000.0);
        sb.shutdown().await;
    }
    // expedite, Prometheus on users' traffic alone.
    let mut with_prom = Vec::new();
    let mut prom_tripped = 0;
    for i in 0..prom_runs {
        let sb = seeded(true, 200 + i as u64).await;
        let Some(p) = prometheus(&sb).await else {
            return;
        };
        users(&sb, 20.0);
        bad(&sb, "2.4.2", 0.05);
        let j = deploy(
            &sb,
            &place("canary"),
            plan(Some(canary(
                vec![prometheus_source(&p)],
                vec![10],
                Duration::from_secs(600),
            ))),
        )
        .await;
        if j.facts
            .canary_steps
            .first()
            .is_some_and(|s| s.decision == "trip")
        {
            prom_tripped += 1;
            with_prom.push(time_to_trip(&j).unwrap() / 1000.0);
        }
        sb.stop_traffic();
        sb.shutdown().await;
    }
    // The seed's loop, once: its figure is its schedule.
    let sb = seeded(true, 300).await;
    let Some(p) = prometheus(&sb).await else {
        return;
    };
    seed_green(&sb).await;
    users(&sb, 20.0);
    bad(&sb, "2.4.2", 0.05);
    let (seed_tripped, seed_secs) = seed_first_stage(&sb, &p, stage).await;
    sb.stop_traffic();
    sb.shutdown().await;
    println!("\n### Canary: 5 % errors at a 10 % weight, time to trip\n");
    println!("| | runs | tripped | median | max |\n|---|---|---|---|---|");
    println!(
        "| expedite, probes (50/s on each version's pods) | {runs} | {runs} | {:.1} s | {:.1} s |",
        median(&mut with_probes.clone()),
        max(&with_probes)
    );
    println!(
        "| expedite, Prometheus `istio_requests_total` (users: 20 req/s, 2 req/s to the canary) | {prom_runs} | {prom_tripped} | {:.1} s | {:.1} s |",
        median(&mut with_prom.clone()),
        max(&with_prom)
    );
    println!(
        "| seed script (`CANARY_DURATION={}`, one check of the 5xx rate) | 1 | {} | {:.1} s | |",
        stage.as_secs(),
        u8::from(seed_tripped),
        seed_secs
    );
}

async fn outage(prom_runs: usize, stage: Duration) {
    let mut ours_tripped = 0;
    let mut promoted = 0;
    let mut walls = Vec::new();
    for i in 0..prom_runs {
        let sb = seeded(true, 400 + i as u64).await;
        let Some(p) = prometheus(&sb).await else {
            return;
        };
        users(&sb, 20.0);
        bad(&sb, "2.4.1", 0.05);
        bad(&sb, "2.4.2", 0.05);
        let t = Instant::now();
        let j = deploy(
            &sb,
            &place("canary"),
            plan(Some(canary(
                vec![prometheus_source(&p)],
                vec![10, 25, 50, 75],
                Duration::from_secs(20),
            ))),
        )
        .await;
        walls.push(t.elapsed().as_secs_f64());
        if j.facts.canary_steps.iter().any(|s| s.decision == "trip") {
            ours_tripped += 1;
        }
        if j.outcome() == Some(expedite::rollout::Outcome::Promoted) {
            promoted += 1;
        }
        sb.stop_traffic();
        sb.shutdown().await;
    }
    let sb = seeded(true, 500).await;
    let Some(p) = prometheus(&sb).await else {
        return;
    };
    seed_green(&sb).await;
    users(&sb, 20.0);
    bad(&sb, "2.4.1", 0.05);
    bad(&sb, "2.4.2", 0.05);
    let (seed_tripped, seed_secs) = seed_first_stage(&sb, &p, stage).await;
    sb.stop_traffic();
    sb.shutdown().await;
    println!("\n### Shared outage: both versions fail 5 % (a good canary)\n");
    println!("| | runs | tripped (false) | promoted | wall |\n|---|---|---|---|---|");
    println!(
        "| expedite, Prometheus, steps 10/25/50/75 % of 20 s | {prom_runs} | {ours_tripped} | {promoted} | median {:.0} s |",
        median(&mut walls.clone())
    );
    println!(
        "| seed script (`CANARY_DURATION={}`), first stage | 1 | {} | — | {:.0} s to its decision |",
        stage.as_secs(),
        u8::from(seed_tripped),
        seed_secs
    );
}
