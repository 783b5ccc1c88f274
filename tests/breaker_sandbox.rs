//! Issue 16 end to end on the sandbox, through the real driver and the
//! Azure Monitor evidence source, with users' traffic from the sandbox's
//! generator (App Service: routing rules, per-slot metrics):
//!
//! - a good build whose errors come in clumps, as production's do, is
//!   promoted with the default `failure-clumping: estimate`;
//! - a bad build whose baseline series vanishes (mid-watch, or from the
//!   start) is never promoted, and the step says why.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::{Duration, Instant};

use expedite::breaker;
use expedite::cancel::Cancel;
use expedite::probe::evidence::azure_monitor::{
    AzureMonitorSource, METRICS_API_VERSION, MonitorTarget, web_site_id,
};
use expedite::probe::evidence::{ArmRef, Arms, EvidenceSource};
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::app_service::AppServiceTarget;
use expedite::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceClients, SourceSpec};
use expedite::rollout::driver::{DeployPlan, Journal, Rollout, StalePolicy};
use expedite::rollout::{Outcome, Phase};
use expedite_sandbox::{
    Behaviour, DropoutMode, MetricsDropout, Sandbox, SandboxConfig, SandboxHandle, TrafficSpec,
};
use serde_json::Value;

const WEB: &str = "app-contoso-payments";
const PRODUCTION_HOST: &str = "app-contoso-payments.azurewebsites.test";
const STAGING_HOST: &str = "app-contoso-payments-staging.azurewebsites.test";

/// Users' orders per second on production's host (split by the routing
/// rule: 40 a second on the canary at 10 %, 200 at 50 %).
const RPS: f64 = 400.0;

/// The clumped scenario: both builds fail 5 % of orders, in runs of 6
/// consecutive failing orders of the same process.
const RATE: f64 = 0.05;
const CLUMP: u64 = 6;
/// The canary's errors start this long after its first step began, once
/// production's clumps have been seen (see `clumped_good_build`).
const ONSET: Duration = Duration::from_secs(2);
/// The breaker's whole false-trip budget in the clumped scenario.
const CLUMPED_ALPHA: f64 = 0.001;

async fn sandbox(seed: u64) -> Sandbox {
    expedite_sandbox::start(SandboxConfig {
        seed,
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn canary(window: Duration, breaker: breaker::Settings) -> CanaryPlan {
    CanaryPlan {
        steps: vec![10, 50],
        window,
        interval: Duration::from_millis(200),
        breaker,
        sources: vec![SourceSpec::AzureMonitor],
        on_inconclusive: InconclusivePolicy::Fail,
        inconclusive_wait: Duration::from_secs(1),
    }
}

fn plan(canary: CanaryPlan) -> DeployPlan {
    DeployPlan {
        slot: "staging".into(),
        package: Some(expedite_sandbox::demo_package("2.4.1").unwrap()),
        endpoints: Endpoints {
            health_path: "/health".into(),
            health_status: 200,
            version_path: Some("/api/version".into()),
        },
        expected_version: "2.4.1".into(),
        staging: Schedule {
            attempts: 20,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(20),
        },
        verify_window: Duration::from_millis(300),
        verify_interval: Duration::from_millis(100),
        verify_samples: 50,
        swap_timeout: Duration::from_secs(20),
        stale: StalePolicy::Clear,
        lock_wait: Duration::from_secs(2),
        run_id: "contoso/payments#16.1".into(),
        journal: None,
        image: None,
        canary: Some(canary),
        rollback: false,
        revision: None,
        patience: Duration::from_secs(900),
    }
}

/// The real driver on App Service, Azure Monitor as the evidence.
async fn deploy(sb: &Sandbox, plan: DeployPlan) -> Journal {
    let clients = common::azure::clients(sb);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let s = &clients.settings;
    let sources = Some(SourceClients {
        http: clients.http.clone(),
        dial: None,
        monitor: Some((
            arm.clone(),
            MonitorTarget::AppService {
                site_id: web_site_id(&s.subscription_id, &s.resource_group, WEB),
            },
        )),
    });
    Rollout {
        target: AppServiceTarget {
            app: clients.app(arm, WEB),
            tokens: clients.tokens.clone(),
            http: clients.http.clone(),
            slot: "staging".into(),
            archive: None,
        },
        probe: Probe::new(clients.http.clone()),
        plan,
        sources,
        cancel: Cancel::new(),
        lock: None,
        place: None,
    }
    .run()
    .await
}

/// Users on production's host for at most `ms`.
fn users(sb: &Sandbox, ms: u64) {
    sb.generate_traffic(TrafficSpec {
        host: PRODUCTION_HOST.into(),
        rps: RPS,
        duration_ms: ms,
        order_ratio: 1.0,
        large_order_ratio: 0.0,
    })
    .unwrap();
}

/// Stops the generators and waits (bounded) until they have.
async fn stop_users(sb: &Sandbox) {
    sb.stop_traffic();
    for _ in 0..100 {
        if sb.traffic_runs().iter().all(|r| r.done) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the traffic generators did not stop");
}

/// Runs `then` once the first canary step has started (production has a
/// routing rule) and `after` has passed; gives up after 60 s. Returns
/// whether it ran.
fn when_canary_starts(
    h: SandboxHandle,
    after: Duration,
    then: impl FnOnce(&SandboxHandle) + Send + 'static,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        let t = Instant::now();
        for _ in 0..1200 {
            if !h.routing_rules(WEB).is_empty() {
                tokio::time::sleep(after).await;
                then(&h);
                return true;
            }
            if t.elapsed() > Duration::from_secs(60) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    })
}

fn decisions(j: &Journal) -> Vec<(u8, String)> {
    j.facts
        .canary_steps
        .iter()
        .map(|s| (s.percent, s.decision.clone()))
        .collect()
}

/// What a new visitor of production gets, by version.
async fn production_versions(sb: &Sandbox) -> std::collections::BTreeMap<String, usize> {
    let clients = common::azure::clients(sb);
    Probe::new(clients.http.clone())
        .sample_versions(PRODUCTION_HOST, "/api/version", 40)
        .await
}

fn clumped() -> Behaviour {
    Behaviour {
        error_rate: RATE,
        error_clump: CLUMP,
        ..Behaviour::default()
    }
}

/// The clumped scenario on seed `seed`: production (2.4.0) fails 5 % of
/// orders in runs of 6 from the start; the canary (2.4.1) too, from
/// [`ONSET`] into its first step; 400 orders a second on production's
/// host; steps 10 % and 50 %, 10 s each; α = [`CLUMPED_ALPHA`].
///
/// Why the onset: the clump index is learnt from production's failures in
/// the watch only, from a prior of 2. A canary clump that lands in the
/// first second, before production has shown one, counts as three
/// failures' worth of evidence: a throwaway seeded simulation of this
/// schedule on `expedite::breaker` (400 req/s, runs of 6, 200-ms batches,
/// 10,000 runs) gives 1.6 % false trips at α = 0.001 (6.6 % at α = 0.01)
/// with the canary failing from its first request, against 0.03 % (3 runs)
/// with the two-second onset, by which production has shown about 15
/// clumps and the index is near 6. (With 1-s batches the same simulation
/// still gives 2.8 % at α = 0.01 after the onset: a run of 6 split across
/// two 200-ms readings counts as less than one clump, which keeps this
/// schedule on the safe side.)
async fn clumped_good_build(seed: u64, independent: bool) -> (Sandbox, Journal) {
    let sb = sandbox(seed).await;
    sb.set_behaviour("2.4.0", clumped()).unwrap();
    sb.set_behaviour("2.4.1", Behaviour::default()).unwrap();
    users(&sb, 90_000);
    let onset = when_canary_starts(sb.handle(), ONSET, |h| {
        h.set_behaviour("2.4.1", clumped()).unwrap();
    });
    let watch = canary(
        Duration::from_secs(10),
        breaker::Settings {
            alpha: CLUMPED_ALPHA,
            min_requests: 100,
            max_silence: 5.0,
            independent_failures: independent,
            ..breaker::Settings::default()
        },
    );
    let journal = deploy(&sb, plan(watch)).await;
    stop_users(&sb).await;
    assert!(onset.await.unwrap(), "the canary step never started");
    (sb, journal)
}

/// Lengths of the complete runs of `true` in `v`: a run cut by the start
/// or the end of `v` is left out.
fn complete_runs(v: &[bool]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut seen_ok = false;
    for &failed in v {
        if failed {
            n += 1;
        } else {
            if n > 0 && seen_ok {
                out.push(n);
            }
            n = 0;
            seen_ok = true;
        }
    }
    out
}

// Measured on this machine (2 shared cores), this schedule, seeds 1..=20
// (`measure_the_clumped_scenario`): `failure-clumping: estimate` promoted
// 20 of 20 (22.7 s a deploy); `independent` rolled back 12 of 20 (8 trips
// in the 50 % step, 4 in the 10 % one) and promoted 8. The simulation of
// the same schedule (see `clumped_good_build`; 10,000 runs): estimate 3
// false trips; independent 4,590 (46 %). Counting each failure of a
// clump as evidence rolls this good build back about half the time — not
// near-certain, so only the promotion is asserted, with proof that the
// failures did come in clumps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_build_whose_errors_clump_is_promoted() {
    let started = Instant::now();
    let (sb, journal) = clumped_good_build(16, false).await;
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Promoted),
        "{:#?}",
        journal.facts.canary_steps
    );
    let steps = &journal.facts.canary_steps;
    assert_eq!(
        decisions(&journal),
        [(10, "pass".to_string()), (50, "pass".to_string())]
    );
    // The breaker saw failures on both arms, as Azure Monitor counted them.
    let canary_failures: u64 = steps.iter().map(|s| s.sources[0].canary.failures).sum();
    let production_failures: u64 = steps
        .iter()
        .map(|s| s.sources[0].baseline.unwrap().failures)
        .sum();
    assert!(
        canary_failures >= 30 && production_failures >= 100,
        "{steps:#?}"
    );
    // And they came in clumps: production now serves 2.4.1; sequential
    // orders fail in runs of exactly 6 (two clumps back to back make 12).
    let clients = common::azure::clients(&sb);
    let mut failed = Vec::new();
    for _ in 0..2000 {
        let r = clients
            .http
            .post(format!("https://{PRODUCTION_HOST}/api/payments"))
            .json(&serde_json::json!({"amount": 25, "currency": "USD"}))
            .send()
            .await
            .unwrap();
        failed.push(r.status().as_u16() == 500);
    }
    let runs = complete_runs(&failed);
    assert!(runs.len() >= 3, "{runs:?}");
    assert!(
        runs.iter().all(|n| n % CLUMP as usize == 0),
        "runs of failing orders: {runs:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}

/// By hand: `cargo test --test breaker_sandbox -- --ignored --nocapture`
/// (`BREAKER_SANDBOX_RUNS`, default 10, seeds 1..=N): how often each
/// `failure-clumping` goes its way on the clumped scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, minutes long"]
async fn measure_the_clumped_scenario() {
    let runs: u64 = std::env::var("BREAKER_SANDBOX_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 200);
    for independent in [false, true] {
        let mut tally = std::collections::BTreeMap::<String, u64>::new();
        let t = Instant::now();
        for seed in 1..=runs {
            let (_sb, j) = clumped_good_build(seed, independent).await;
            let outcome = format!("{:?}", j.outcome());
            let last = j.facts.canary_steps.last().map(|s| {
                let f = &s.sources[0];
                format!(
                    "{} % {}: canary {}/{}, production {:?}",
                    s.percent, s.decision, f.canary.failures, f.canary.requests, f.baseline
                )
            });
            println!("independent={independent} seed={seed}: {outcome} {last:?}");
            *tally.entry(outcome).or_default() += 1;
        }
        println!(
            "independent={independent}: {tally:?} in {:.0} s",
            t.elapsed().as_secs_f64()
        );
    }
}

/// The vanishing-baseline scenario: production (2.4.0) healthy; the canary
/// (2.4.1) healthy until `bad_after` into its first step, then failing
/// 60 % of orders (a regression that appears under load); steps 10 % and
/// 50 %, 8 s each; `max-silence` 3 s; `on-inconclusive: fail`.
async fn vanishing_baseline(
    seed: u64,
    dropout: Option<(Duration, DropoutMode)>,
    bad_after: Duration,
) -> (Sandbox, Journal) {
    let sb = sandbox(seed).await;
    sb.set_behaviour("2.4.0", Behaviour::default()).unwrap();
    sb.set_behaviour("2.4.1", Behaviour::default()).unwrap();
    let production = MetricsDropout {
        app: WEB.into(),
        slot: Some("production".into()),
        revision: None,
        mode: DropoutMode::Stale,
    };
    let mid_watch = match dropout {
        Some((at, mode)) => {
            let d = MetricsDropout {
                mode,
                ..production.clone()
            };
            Some(when_canary_starts(sb.handle(), at, move |h| {
                h.drop_metrics(d).unwrap();
            }))
        }
        None => {
            // Gone before the deploy starts.
            sb.drop_metrics(MetricsDropout {
                mode: DropoutMode::Empty,
                ..production
            })
            .unwrap();
            None
        }
    };
    let bad = when_canary_starts(sb.handle(), bad_after, |h| {
        h.set_behaviour(
            "2.4.1",
            Behaviour {
                error_rate: 0.6,
                ..Behaviour::default()
            },
        )
        .unwrap();
    });
    users(&sb, 60_000);
    let watch = canary(
        Duration::from_secs(8),
        breaker::Settings {
            min_requests: 100,
            max_silence: 3.0,
            ..breaker::Settings::default()
        },
    );
    let journal = deploy(&sb, plan(watch)).await;
    stop_users(&sb).await;
    if let Some(task) = mid_watch {
        assert!(task.await.unwrap(), "the dropout never happened");
    }
    assert!(bad.await.unwrap(), "the canary never went bad");
    (sb, journal)
}

async fn never_promoted(sb: &Sandbox, journal: &Journal) {
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Inconclusive),
        "{:#?}",
        journal.facts.canary_steps
    );
    assert!(
        !journal.state.trail.contains(&Phase::Swap),
        "never promoted"
    );
    let last = journal.facts.canary_steps.last().unwrap();
    println!("{} % {}: {}", last.percent, last.decision, last.detail);
    assert_eq!(
        (last.percent, last.decision.as_str()),
        (10, "inconclusive"),
        "{last:#?}"
    );
    assert!(
        last.detail.contains("baseline's series was missing"),
        "the step says why: {}",
        last.detail
    );
    // The canary was failing when the step ended, and Azure Monitor saw it.
    assert!(last.sources[0].canary.failures >= 10, "{last:#?}");
    let versions = production_versions(sb).await;
    assert_eq!(versions.get("2.4.0"), Some(&40), "{versions:?}");
    assert!(sb.routing_rules(WEB).is_empty(), "the canary is withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_build_whose_baseline_goes_stale_mid_watch_is_not_promoted() {
    let started = Instant::now();
    let (sb, journal) = vanishing_baseline(
        21,
        Some((Duration::from_millis(1500), DropoutMode::Stale)),
        Duration::from_millis(2000),
    )
    .await;
    never_promoted(&sb, &journal).await;
    // Production was compared before it vanished.
    let first = &journal.facts.canary_steps[0].sources[0];
    assert!(first.baseline.unwrap().requests > 100, "{first:#?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_build_whose_baseline_is_missing_from_the_start_is_not_promoted() {
    let started = Instant::now();
    let (sb, journal) = vanishing_baseline(22, None, Duration::from_millis(500)).await;
    never_promoted(&sb, &journal).await;
    let first = &journal.facts.canary_steps[0].sources[0];
    assert_eq!(first.baseline.map(|b| b.requests), Some(0), "{first:#?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// What the product's Azure Monitor source and the raw metrics API see of
/// a series that vanishes: `stale` stops counting (what was counted
/// stays), `empty` answers no time series at all; the app keeps serving;
/// the control API sets and clears both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_series_is_what_azure_monitor_shows() {
    let sb = sandbox(5).await;
    let clients = common::azure::clients(&sb);
    let arm = clients.arm();
    let s = &clients.settings;
    let site = web_site_id(&s.subscription_id, &s.resource_group, WEB);
    let cancel = Cancel::new();
    let mut src = AzureMonitorSource::app_service(arm.clone(), &site).unwrap();
    let arms = Arms {
        canary: ArmRef {
            label: "staging".into(),
            host: STAGING_HOST.into(),
        },
        baseline: ArmRef {
            label: "production".into(),
            host: PRODUCTION_HOST.into(),
        },
    };
    src.start(&arms, &cancel).await.unwrap();
    let order = |host: &'static str| {
        let http = clients.http.clone();
        async move {
            let r = http
                .post(format!("https://{host}/api/payments"))
                .json(&serde_json::json!({"amount": 25, "currency": "USD"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for _ in 0..5 {
        order(PRODUCTION_HOST).await;
        order(STAGING_HOST).await;
    }
    let before = src.read(&cancel).await.unwrap();
    assert_eq!(before.baseline.unwrap().requests, 5);

    // Through the control API, as a scenario script would.
    let control = |method: reqwest::Method, body: Option<Value>| {
        let http = clients.http.clone();
        let url = format!("{}/_sandbox/metrics/dropouts", s.control_url);
        async move {
            let mut r = http.request(method, url);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    let stale = serde_json::json!({"app": WEB, "slot": "production"});
    assert_eq!(control(reqwest::Method::POST, Some(stale)).await, 201);
    assert_eq!(sb.metrics_dropouts()[0].mode, DropoutMode::Stale);
    for _ in 0..5 {
        order(PRODUCTION_HOST).await;
        order(STAGING_HOST).await;
    }
    let after = src.read(&cancel).await.unwrap();
    assert_eq!(after.canary.requests, 10);
    assert_eq!(after.baseline.unwrap().requests, 5, "stale: no new counts");

    let empty = serde_json::json!({"app": WEB, "slot": "production", "mode": "empty"});
    assert_eq!(control(reqwest::Method::POST, Some(empty)).await, 201);
    let path = format!(
        "{site}/providers/Microsoft.Insights/metrics?metricnames=Requests,Http5xx&aggregation=Total&interval=PT1M"
    );
    let body = arm.get(&path, METRICS_API_VERSION, &cancel).await.unwrap();
    for m in body["value"].as_array().unwrap() {
        assert_eq!(m["timeseries"], serde_json::json!([]), "{m}");
    }
    let bad = serde_json::json!({"app": WEB, "slot": "nope"});
    assert_eq!(control(reqwest::Method::POST, Some(bad)).await, 400);

    assert_eq!(control(reqwest::Method::DELETE, None).await, 204);
    assert!(sb.metrics_dropouts().is_empty());
    let back = src.read(&cancel).await.unwrap();
    assert_eq!(
        back.baseline.unwrap().requests,
        5,
        "the requests served while stale are lost"
    );
}
