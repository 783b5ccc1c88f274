//! The canary breaker fed by a real Prometheus (Debian's `prometheus`)
//! scraping the sandbox demo app's `/metrics`: users' traffic from the
//! sandbox's generator, a 5 % bad build at a 10 % canary, and the same trip
//! decision as from Azure Monitor or the probes — then production restored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
#[path = "common/prometheus.rs"]
mod prom;

use std::time::Duration;

use expedite::breaker;
use expedite::cancel::Cancel;
use expedite::http::RetryPolicy;
use expedite::probe::evidence::azure_monitor::{MonitorTarget, web_site_id};
use expedite::probe::evidence::prometheus::{PromQueries, PrometheusSpec};
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::app_service::AppServiceTarget;
use expedite::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceClients, SourceSpec};
use expedite::rollout::driver::{DeployPlan, Rollout, StalePolicy};
use expedite::rollout::{Outcome, Phase};
use expedite_sandbox::{Behaviour, SandboxConfig, TrafficSpec};
use prom::{Prometheus, Target};

const APP: &str = "app-contoso-payments";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_queries_trip_a_bad_canary_and_production_is_restored() {
    let sandbox = expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(200),
        seed: 11,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = format!("http://{}", sandbox.http_addr());
    let Some(prometheus) = Prometheus::start(
        &control,
        &[
            Target {
                slot: "staging".into(),
                host: format!("{APP}-staging.azurewebsites.test"),
                params: vec![],
            },
            Target {
                slot: "production".into(),
                host: format!("{APP}.azurewebsites.test"),
                params: vec![("x-ms-routing-name".into(), "self".into())],
            },
        ],
    )
    .await
    else {
        return;
    };
    let h = sandbox.handle();
    h.set_behaviour(
        "2.4.1",
        Behaviour {
            error_rate: 0.05,
            ..Behaviour::default()
        },
    )
    .unwrap();
    h.generate_traffic(TrafficSpec {
        host: format!("{APP}.azurewebsites.test"),
        rps: 400.0,
        duration_ms: 90_000,
        order_ratio: 1.0,
        large_order_ratio: 0.0,
    })
    .unwrap();
    let clients = common::azure::clients(&sandbox);
    let s = &clients.settings;
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let mut spec = PrometheusSpec::new(prometheus.url.clone());
    spec.queries = PromQueries::default();
    spec.policy = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        budget: Duration::from_secs(3),
    };
    let plan = DeployPlan {
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
        run_id: "contoso/payments#78.1".into(),
        journal: None,
        image: None,
        rollback: false,
        revision: None,
        patience: Duration::from_secs(900),
        canary: Some(CanaryPlan {
            steps: vec![10, 50],
            window: Duration::from_secs(30),
            interval: Duration::from_millis(500),
            breaker: breaker::Settings {
                min_requests: 30,
                // Scrapes come every second; allow for a missed one.
                max_silence: 10.0,
                ..breaker::Settings::default()
            },
            sources: vec![SourceSpec::Prometheus(Box::new(spec))],
            on_inconclusive: InconclusivePolicy::Fail,
            inconclusive_wait: Duration::from_secs(1),
        }),
    };
    let app = clients.app(arm.clone(), APP);
    let journal = Rollout {
        target: AppServiceTarget {
            app,
            tokens: clients.tokens.clone(),
            http: clients.http.clone(),
            slot: "staging".into(),
            archive: None,
        },
        probe: Probe::new(clients.http.clone()),
        plan,
        sources: Some(SourceClients {
            http: clients.http.clone(),
            dial: None,
            monitor: Some((
                arm,
                MonitorTarget::AppService {
                    site_id: web_site_id(&s.subscription_id, &s.resource_group, APP),
                },
            )),
        }),
        cancel: Cancel::new(),
        lock: None,
        place: None,
    }
    .run()
    .await;
    h.stop_traffic();
    assert_eq!(
        journal.outcome(),
        Some(Outcome::RolledBack),
        "{:#?}\n{}",
        journal.phases,
        prometheus.log()
    );
    let step = journal.facts.canary_steps.last().unwrap();
    assert_eq!(
        (step.percent, step.decision.as_str()),
        (10, "trip"),
        "{step:#?}"
    );
    assert_eq!(step.sources[0].source, "prometheus");
    assert!(step.sources[0].canary.failures > 0, "{step:#?}");
    assert!(!journal.state.trail.contains(&Phase::Swap));
    assert!(
        h.routing_rules(APP).is_empty(),
        "the canary rule is removed"
    );
    assert_eq!(h.slot_version(APP, "production").as_deref(), Some("2.4.0"));
}
