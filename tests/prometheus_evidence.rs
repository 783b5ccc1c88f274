//! The Prometheus evidence source against a real Prometheus scraping the
//! sandbox's demo app (per slot) through the sandbox's forward proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
#[path = "common/prometheus.rs"]
mod prom;

use std::time::{Duration, Instant};

use expedite::cancel::Cancel;
use expedite::http::RetryPolicy;
use expedite::probe::evidence::prometheus::{PromQueries, PrometheusSource, PrometheusSpec};
use expedite::probe::evidence::{ArmRef, Arms, EvidenceError, EvidenceSource, Reading};
use expedite_sandbox::{Behaviour, Sandbox, SandboxConfig, TrafficSpec};
use prom::{Prometheus, Target};

const APP: &str = "app-contoso-payments";
const STAGING_HOST: &str = "app-contoso-payments-staging.azurewebsites.test";
const PRODUCTION_HOST: &str = "app-contoso-payments.azurewebsites.test";

fn arms() -> Arms {
    Arms {
        canary: ArmRef {
            label: "staging".into(),
            host: STAGING_HOST.into(),
        },
        baseline: ArmRef {
            label: "production".into(),
            host: PRODUCTION_HOST.into(),
        },
    }
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            slot: "staging".into(),
            host: STAGING_HOST.into(),
            params: vec![],
        },
        // Production's host routes by ramp-up rules: pin the scrape.
        Target {
            slot: "production".into(),
            host: PRODUCTION_HOST.into(),
            params: vec![("x-ms-routing-name".into(), "self".into())],
        },
    ]
}

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(SandboxConfig {
        seed: 7,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        budget: Duration::from_secs(3),
    }
}

fn source(prom: &Prometheus, queries: PromQueries) -> PrometheusSource {
    let http = expedite::http::client(&expedite::http::HttpSettings::default()).unwrap();
    PrometheusSource::new(
        http,
        PrometheusSpec {
            queries,
            policy: quick(),
            ..PrometheusSpec::new(prom.url.clone())
        },
    )
}

/// Waits until Prometheus has a sample of `promql` (bounded).
async fn wait_for_series(prom: &Prometheus, promql: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let v = prom.query(promql).await;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no data for {promql}:\n{}", prom.log());
}

/// Runs a generator to the end; returns its id.
async fn drive(sb: &Sandbox, host: &str, rps: f64, ms: u64) -> u64 {
    let id = sb
        .generate_traffic(TrafficSpec {
            host: host.into(),
            rps,
            duration_ms: ms,
            order_ratio: 1.0,
            large_order_ratio: 0.0,
        })
        .unwrap();
    let t = Instant::now();
    loop {
        let run = sb.traffic_runs().into_iter().find(|r| r.id == id).unwrap();
        if run.done {
            return id;
        }
        assert!(
            t.elapsed() < Duration::from_millis(ms + 30_000),
            "traffic stuck"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_counts(sb: &Sandbox, ids: &[u64]) -> (u64, u64) {
    sb.traffic_runs()
        .into_iter()
        .filter(|r| ids.contains(&r.id))
        .fold((0, 0), |(s, f), r| {
            (s + r.sent, f + r.by_status.get(&500).copied().unwrap_or(0))
        })
}

/// Reads until `done` holds (Prometheus scrapes every second), checking
/// every reading is monotone; bounded.
async fn read_until(
    src: &mut PrometheusSource,
    previous: &mut Option<Reading>,
    done: impl Fn(&Reading) -> bool,
) -> Reading {
    let cancel = Cancel::new();
    let t = Instant::now();
    loop {
        let r = src.read(&cancel).await.unwrap();
        if let Some(p) = previous.as_ref() {
            let b = r.baseline.unwrap();
            let pb = p.baseline.unwrap();
            assert!(
                r.canary.requests >= p.canary.requests
                    && r.canary.failures >= p.canary.failures
                    && b.requests >= pb.requests
                    && b.failures >= pb.failures,
                "readings went down: {p:?} then {r:?}"
            );
        }
        *previous = Some(r.clone());
        if done(&r) {
            return r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "readings never settled; last {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_tell_a_failing_canary_from_a_healthy_baseline_across_a_restart() {
    let sb = sandbox().await;
    let settings = sb.settings();
    // Staging runs 2.3.1: a bad build (20 % of payments fail, 5 % slow);
    // production runs 2.4.0, healthy for small orders.
    sb.set_behaviour(
        "2.3.1",
        Behaviour {
            error_rate: 0.2,
            slow_rate: 0.05,
            slow_ms: 300,
            ..Behaviour::default()
        },
    )
    .unwrap();
    sb.set_behaviour("2.4.0", Behaviour::default()).unwrap();
    let Some(prom) = Prometheus::start(&settings.control_url, &targets()).await else {
        return;
    };
    for slot in ["staging", "production"] {
        wait_for_series(&prom, &format!(r#"http_requests_total{{slot="{slot}"}}"#)).await;
    }
    let queries = PromQueries::standard(Some(Duration::from_millis(250))).with_latency();
    let mut src = source(&prom, queries);
    let cancel = Cancel::new();
    src.start(&arms(), &cancel).await.unwrap();

    let (a, b) = tokio::join!(
        drive(&sb, STAGING_HOST, 40.0, 5000),
        drive(&sb, PRODUCTION_HOST, 40.0, 5000)
    );
    let (sent, errors) = run_counts(&sb, &[a]);
    let (prod_sent, prod_errors) = run_counts(&sb, &[b]);
    assert!(sent >= 60 && prod_sent >= 60, "{sent} {prod_sent}");
    assert_eq!(prod_errors, 0);
    let mut last = None;
    let r = read_until(&mut src, &mut last, |r| {
        r.canary.failures == errors
            && r.canary.requests >= sent
            && r.baseline.is_some_and(|b| b.requests >= prod_sent)
    })
    .await;
    let base = r.baseline.unwrap();
    // The /metrics scrapes are requests too: at most a few per second.
    let slack = 2 * 30;
    assert!(r.canary.requests <= sent + slack, "{r:?} sent {sent}");
    assert!(base.requests <= prod_sent + slack, "{r:?} sent {prod_sent}");
    let rate = r.canary.failures as f64 / r.canary.requests as f64;
    assert!(
        (0.08..=0.32).contains(&rate),
        "canary error rate {rate}: {r:?}"
    );
    assert_eq!(base.failures, 0, "{r:?}");
    // Slow requests (> 250 ms) and quantiles.
    let slow = r.canary.slow.expect("slow counted");
    assert!(slow >= 1 && slow <= r.canary.requests, "{r:?}");
    assert!(base.slow.unwrap() <= 2, "{r:?}");
    let q = r.canary.latency.expect("quantiles");
    assert!(q.p50.is_some_and(|v| v < 0.25), "{q:?}");
    assert!(q.p99.is_some_and(|v| v > 0.1), "{q:?}");

    // The staging process restarts (counters back to 0): the readings keep
    // counting from there instead of going down or stalling.
    let before = r.clone();
    restart_staging(&sb, &prom).await;
    let after_reset = src.read(&cancel).await.unwrap();
    assert!(after_reset.canary.requests >= before.canary.requests);
    let c = drive(&sb, STAGING_HOST, 40.0, 2000).await;
    let (sent2, errors2) = run_counts(&sb, &[c]);
    let r = read_until(&mut src, &mut last, |r| {
        r.canary.failures == errors + errors2 && r.canary.requests >= sent + sent2
    })
    .await;
    assert!(r.canary.requests <= sent + sent2 + 2 * slack, "{r:?}");
    drop(prom);
}

#[tokio::test]
async fn bad_queries_are_misconfigured_and_missing_data_is_not_zero() {
    let sb = sandbox().await;
    let Some(prom) = Prometheus::start(&sb.settings().control_url, &targets()).await else {
        return;
    };
    wait_for_series(&prom, r#"http_requests_total{slot="production"}"#).await;
    let cancel = Cancel::new();
    let with = |requests: &str| PromQueries {
        requests: requests.into(),
        ..PromQueries::default()
    };
    for (requests, expect) in [
        (r#"sum(http_requests_total{slot="$arm"}"#, "parse error"),
        (r#"sum by (job) (up{slot=~"$arm|production"})"#, "sum()"),
        (r#"sum(up{slot="$arm"}) * NaN"#, "finite"),
        (r#"rate(up{slot="$arm"}[1m])[5m:1m]"#, "matrix"),
    ] {
        let mut src = source(&prom, with(requests));
        let t = Instant::now();
        match src.start(&arms(), &cancel).await {
            Err(EvidenceError::Misconfigured { detail, .. }) => {
                assert!(detail.contains(expect), "{requests}: {detail}");
            }
            other => panic!("{requests}: {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{requests}: retried?");
    }
    // A template without $arm is refused before any query.
    let mut src = source(&prom, with("sum(http_requests_total)"));
    assert!(matches!(
        src.start(&arms(), &cancel).await,
        Err(EvidenceError::Misconfigured { .. })
    ));

    // A canary nothing is known about: no evidence, not zero requests.
    let mut src = source(&prom, PromQueries::default());
    let ghost = Arms {
        canary: ArmRef {
            label: "no-such-slot".into(),
            host: "x".into(),
        },
        ..arms()
    };
    src.start(&ghost, &cancel).await.unwrap();
    match src.read(&cancel).await {
        Err(EvidenceError::Unavailable { detail, .. }) => {
            assert!(detail.contains("no data"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // A baseline nothing is known about: the canary still reads.
    let mut src = source(&prom, PromQueries::default());
    let swapped = Arms {
        canary: arms().baseline,
        baseline: ghost.canary.clone(),
    };
    src.start(&swapped, &cancel).await.unwrap();
    let r = src.read(&cancel).await.unwrap();
    assert_eq!(r.baseline, None);
}

#[tokio::test]
async fn prometheus_down_is_unavailable_in_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = expedite::http::client(&expedite::http::HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap();
    let mut src = PrometheusSource::new(
        http,
        PrometheusSpec {
            policy: quick(),
            ..PrometheusSpec::new(url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap())
        },
    );
    let t = Instant::now();
    match src.start(&arms(), &Cancel::new()).await {
        Err(EvidenceError::Unavailable {
            source_name,
            detail,
        }) => {
            assert_eq!(source_name, "prometheus");
            assert!(detail.contains(&port.to_string()), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Cancellation is reported as such.
    let cancel = Cancel::new();
    cancel.cancel(expedite::cancel::CancelReason::Signal("SIGTERM"));
    assert!(matches!(
        src.start(&arms(), &cancel).await,
        Err(EvidenceError::Cancelled)
    ));
}

/// Production's history before the watch, read with range queries at the
/// watch's cadence: every request and failure production served since
/// Prometheus began scraping, per step, none counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_history_counts_what_production_served_per_step() {
    let sb = sandbox().await;
    // Production (2.4.0) fails 10 % of payments.
    sb.set_behaviour(
        "2.4.0",
        Behaviour {
            error_rate: 0.1,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let Some(prom) = Prometheus::start(&sb.settings().control_url, &targets()).await else {
        return;
    };
    for slot in ["staging", "production"] {
        wait_for_series(&prom, &format!(r#"http_requests_total{{slot="{slot}"}}"#)).await;
    }
    let before: f64 = scalar(&prom, r#"sum(http_requests_total{slot="production"})"#).await;
    let id = drive(&sb, PRODUCTION_HOST, 40.0, 4000).await;
    let (sent, errors) = run_counts(&sb, &[id]);
    assert!(sent >= 60 && errors >= 1, "{sent} sent, {errors} failed");
    // Until Prometheus has scraped all of it (bounded).
    let t = Instant::now();
    loop {
        let r = scalar(&prom, r#"sum(http_requests_total{slot="production"})"#).await;
        let f = scalar(
            &prom,
            r#"sum(http_requests_total{slot="production",code=~"5.."})"#,
        )
        .await;
        if r >= before + sent as f64 && f >= errors as f64 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "scrapes lag: {r} {f}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cancel = Cancel::new();
    let mut src = source(&prom, PromQueries::default());
    src.start(&arms(), &cancel).await.unwrap();
    let history = src
        .production_history(Duration::from_secs(120), Duration::from_secs(1), &cancel)
        .await
        .unwrap();
    let requests: u64 = history.iter().map(|t| t.requests).sum();
    let failures: u64 = history.iter().map(|t| t.failures).sum();
    // Every driven request, plus the scrapes of /metrics (a few a second).
    assert!(
        requests >= sent && requests <= sent + 2 * 60,
        "{requests} counted, {sent} sent: {history:?}"
    );
    assert_eq!(failures, errors, "{history:?}");
    // Per step: the 4 s of traffic fall in several 1-s steps, never all in one.
    assert!(history.len() >= 4, "{history:?}");
    let busiest = history.iter().map(|t| t.requests).max().unwrap_or(0);
    assert!(busiest < sent, "{history:?}");
    // A source without history (before start) says so.
    let mut fresh = source(&prom, PromQueries::default());
    assert!(matches!(
        fresh
            .production_history(Duration::from_secs(60), Duration::from_secs(1), &cancel)
            .await,
        Err(EvidenceError::Misconfigured { .. })
    ));
    drop(prom);
}

async fn scalar(prom: &Prometheus, promql: &str) -> f64 {
    prom.query(promql).await["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0)
}

/// A `sum()` whose one series resets (one of the pods it adds up restarts)
/// goes down by that series only: the reading counts nothing for the drop,
/// never the surviving series' whole history again, and counts what comes
/// after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sum_whose_one_series_resets_does_not_count_the_others_again() {
    let sb = sandbox().await;
    let settings = sb.settings();
    let Some(prom) = Prometheus::start(&settings.control_url, &targets()).await else {
        return;
    };
    for slot in ["staging", "production"] {
        wait_for_series(&prom, &format!(r#"http_requests_total{{slot="{slot}"}}"#)).await;
    }
    // The canary's "pods": the staging process and the production one.
    let queries = PromQueries {
        requests: r#"sum(http_requests_total{slot=~"$arm|production"})"#.into(),
        failures: r#"sum(http_requests_total{slot=~"$arm|production",code=~"5.."})"#.into(),
        ..PromQueries::default()
    };
    // Production has served a history the reset must not bring back.
    let base = before_sum(&prom).await;
    let old = drive(&sb, PRODUCTION_HOST, 50.0, 6000).await;
    let (history, _) = run_counts(&sb, &[old]);
    assert!(history >= 200, "{history}");
    let target = base + history as f64;
    let t = Instant::now();
    while before_sum(&prom).await < target {
        assert!(t.elapsed() < Duration::from_secs(20), "scrapes lag");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cancel = Cancel::new();
    let mut src = source(&prom, queries);
    src.start(&arms(), &cancel).await.unwrap();
    let a = drive(&sb, STAGING_HOST, 40.0, 2000).await;
    let (sent, _) = run_counts(&sb, &[a]);
    let mut last = None;
    let r1 = read_until(&mut src, &mut last, |r| r.canary.requests >= sent).await;

    // The staging process restarts; wait until Prometheus has seen it.
    restart_staging(&sb, &prom).await;
    let r2 = src.read(&cancel).await.unwrap();
    // Only scrapes of /metrics happened meanwhile (two targets, about one a
    // second each); production's history is more than 200.
    let slack = 2 * 30;
    assert!(
        r2.canary.requests <= r1.canary.requests + slack,
        "the reset counted {} requests again (production's history {history})",
        r2.canary.requests - r1.canary.requests
    );
    // What comes after is counted.
    let b = drive(&sb, STAGING_HOST, 40.0, 2000).await;
    let (sent2, _) = run_counts(&sb, &[b]);
    let r3 = read_until(&mut src, &mut last, |r| {
        r.canary.requests >= r2.canary.requests + sent2
    })
    .await;
    assert!(
        r3.canary.requests <= r2.canary.requests + sent2 + slack,
        "{r3:?}"
    );
    drop(prom);
}

/// Everything both slots counted, as Prometheus has it now.
async fn before_sum(prom: &Prometheus) -> f64 {
    scalar(
        prom,
        r#"sum(http_requests_total{slot=~"staging|production"})"#,
    )
    .await
}

/// Restarts the staging process (its counters back to 0) and waits until
/// Prometheus has seen the reset, before the new counter grows back
/// (bounded).
async fn restart_staging(sb: &Sandbox, prom: &Prometheus) {
    let settings = sb.settings();
    let clients = common::azure::clients(sb);
    let site = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{APP}/slots/staging/restart",
        settings.subscription_id, settings.resource_group
    );
    clients
        .arm()
        .action(&site, "2025-05-01", None, &Cancel::new())
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        let v = prom
            .query(r#"sum(http_requests_total{slot="staging"})"#)
            .await;
        let n: f64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("1e9")
            .parse()
            .unwrap();
        if n < 20.0 {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "no reset seen: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
