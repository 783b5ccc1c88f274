//! Canary rollouts with the circuit breaker, end to end on the sandbox, on
//! App Service (routing rules) and Container Apps (traffic weights): a bad
//! build trips within seconds and production is restored; a good build
//! passes every step and is promoted; a dependency outage hitting both
//! versions does not trip; no traffic is INCONCLUSIVE with the configured
//! outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::{Duration, Instant};

use expedite::breaker;
use expedite::cancel::Cancel;
use expedite::platform::container_apps::{ContainerAppRef, ContainerApps};
use expedite::probe::evidence::azure_monitor::{MonitorTarget, container_app_id, web_site_id};
use expedite::probe::evidence::probes::{ProbeSettings, parse_requests};
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::app_service::AppServiceTarget;
use expedite::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceClients, SourceSpec};
use expedite::rollout::container_apps::ContainerAppsTarget;
use expedite::rollout::driver::{DeployPlan, Journal, Rollout, StalePolicy};
use expedite::rollout::{Outcome, Phase};
use expedite_sandbox::{Behaviour, SandboxConfig, TrafficSpec};

const WEB: &str = "app-contoso-payments";
const CA: &str = "ca-contoso-payments";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Platform {
    AppService,
    ContainerApps,
}

async fn sandbox() -> expedite_sandbox::Sandbox {
    expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn probes() -> SourceSpec {
    SourceSpec::Probes(ProbeSettings {
        rate: 40.0,
        requests: parse_requests(
            "POST /api/payments {\"amount\": 25, \"currency\": \"USD\"} => GET /api/payments/{id}",
        )
        .unwrap(),
        slow_threshold: None,
        timeout: Duration::from_secs(5),
    })
}

fn canary(sources: Vec<SourceSpec>, on_inconclusive: InconclusivePolicy) -> CanaryPlan {
    CanaryPlan {
        steps: vec![10, 50],
        window: Duration::from_millis(1500),
        interval: Duration::from_millis(200),
        breaker: breaker::Settings {
            min_requests: 30,
            max_silence: 2.0,
            ..breaker::Settings::default()
        },
        sources,
        on_inconclusive,
        inconclusive_wait: Duration::from_secs(1),
    }
}

fn plan(platform: Platform, canary: CanaryPlan) -> DeployPlan {
    DeployPlan {
        slot: "staging".into(),
        package: (platform == Platform::AppService)
            .then(|| expedite_sandbox::demo_package("2.4.1").unwrap()),
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
        run_id: "contoso/payments#77.1".into(),
        journal: None,
        image: (platform == Platform::ContainerApps)
            .then(|| "contosoacr.azurecr.io/payments:2.4.1".to_string()),
        canary: Some(canary),
        rollback: false,
        revision: None,
        patience: Duration::from_secs(900),
    }
}

async fn deploy(
    sandbox: &expedite_sandbox::Sandbox,
    platform: Platform,
    plan: DeployPlan,
) -> Journal {
    let clients = common::azure::clients(sandbox);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let s = &clients.settings;
    match platform {
        Platform::AppService => {
            let app = clients.app(arm.clone(), WEB);
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
                    app,
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
        Platform::ContainerApps => {
            let app_ref = ContainerAppRef {
                subscription: s.subscription_id.clone(),
                resource_group: s.resource_group.clone(),
                app: CA.into(),
            };
            let sources = Some(SourceClients {
                http: clients.http.clone(),
                dial: None,
                monitor: Some((
                    arm.clone(),
                    MonitorTarget::ContainerApp {
                        app_id: container_app_id(&s.subscription_id, &s.resource_group, CA),
                    },
                )),
            });
            Rollout {
                target: ContainerAppsTarget {
                    app: ContainerApps::new(arm, app_ref),
                    container: None,
                    suffix: "v241-r77-a1".into(),
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
    }
}

/// Production's state at the end: what a new visitor gets, by version.
async fn production_versions(
    sandbox: &expedite_sandbox::Sandbox,
    platform: Platform,
) -> std::collections::BTreeMap<String, usize> {
    let clients = common::azure::clients(sandbox);
    let host = match platform {
        Platform::AppService => format!("{WEB}.azurewebsites.test"),
        Platform::ContainerApps => {
            let app = ContainerApps::new(
                clients.arm(),
                ContainerAppRef {
                    subscription: clients.settings.subscription_id.clone(),
                    resource_group: clients.settings.resource_group.clone(),
                    app: CA.into(),
                },
            );
            app.get(&Cancel::new()).await.unwrap().fqdn.unwrap()
        }
    };
    Probe::new(clients.http.clone())
        .sample_versions(&host, "/api/version", 40)
        .await
}

fn watch_time(j: &Journal) -> Duration {
    Duration::from_millis(
        j.phases
            .iter()
            .filter(|p| p.phase == Phase::CanaryWatch)
            .map(|p| p.duration_ms)
            .sum(),
    )
}

async fn bad_build_trips(platform: Platform) {
    let sandbox = sandbox().await;
    let h = sandbox.handle();
    h.set_behaviour(
        "2.4.1",
        Behaviour {
            error_rate: 0.05,
            ..Behaviour::default()
        },
    )
    .unwrap();
    // Probes load both arms equally, so each canary failure is weaker
    // evidence against the baseline than at a 10 % share: give the first
    // step room to decide.
    let mut watch = canary(vec![probes()], InconclusivePolicy::Fail);
    watch.window = Duration::from_secs(20);
    let journal = deploy(&sandbox, platform, plan(platform, watch)).await;
    assert_eq!(
        journal.outcome(),
        Some(Outcome::RolledBack),
        "{:#?}",
        journal.phases
    );
    let last = journal.facts.canary_steps.last().unwrap();
    assert_eq!(last.decision, "trip", "{last:#?}");
    assert_eq!(last.percent, 10, "it trips in the first step");
    assert!(
        watch_time(&journal) < Duration::from_secs(15),
        "{:?}",
        watch_time(&journal)
    );
    assert!(
        !journal.state.trail.contains(&Phase::Swap),
        "never promoted"
    );
    let versions = production_versions(&sandbox, platform).await;
    assert_eq!(
        versions.get("2.4.0"),
        Some(&40),
        "production restored: {versions:?}"
    );
    match platform {
        Platform::AppService => assert!(
            h.routing_rules(WEB).is_empty(),
            "the rule is removed, not set to 0 %"
        ),
        Platform::ContainerApps => {
            let clients = common::azure::clients(&sandbox);
            let app = ContainerApps::new(
                clients.arm(),
                ContainerAppRef {
                    subscription: clients.settings.subscription_id.clone(),
                    resource_group: clients.settings.resource_group.clone(),
                    app: CA.into(),
                },
            );
            let rev = app
                .revision(
                    journal.facts.new_revision.as_deref().unwrap(),
                    &Cancel::new(),
                )
                .await
                .unwrap();
            assert!(!rev.active, "the bad revision is deactivated");
        }
    }
}

async fn good_build_promotes(platform: Platform) {
    let sandbox = sandbox().await;
    let journal = deploy(
        &sandbox,
        platform,
        plan(platform, canary(vec![probes()], InconclusivePolicy::Fail)),
    )
    .await;
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Promoted),
        "{:#?}",
        journal.phases
    );
    let decisions: Vec<_> = journal
        .facts
        .canary_steps
        .iter()
        .map(|s| (s.percent, s.decision.as_str()))
        .collect();
    assert_eq!(decisions, [(10, "pass"), (50, "pass")]);
    for s in &journal.facts.canary_steps {
        assert!(s.sources[0].canary.requests >= 30, "{s:#?}");
        // A pass says what it passed on, in figures.
        let f = &s.sources[0];
        let seen = format!(
            "probes: canary {} of {} failed",
            f.canary.failures, f.canary.requests
        );
        assert!(s.detail.starts_with(&seen), "{}", s.detail);
    }
    let versions = production_versions(&sandbox, platform).await;
    assert_eq!(versions.get("2.4.1"), Some(&40), "{versions:?}");
}

async fn outage_on_both_does_not_trip(platform: Platform) {
    let sandbox = sandbox().await;
    let h = sandbox.handle();
    for v in ["2.4.0", "2.4.1"] {
        h.set_behaviour(
            v,
            Behaviour {
                error_rate: 0.2,
                ..Behaviour::default()
            },
        )
        .unwrap();
    }
    let journal = deploy(
        &sandbox,
        platform,
        plan(platform, canary(vec![probes()], InconclusivePolicy::Fail)),
    )
    .await;
    assert!(
        journal
            .facts
            .canary_steps
            .iter()
            .all(|s| s.decision != "trip"),
        "{:#?}",
        journal.facts.canary_steps
    );
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Promoted),
        "{:#?}",
        journal.phases
    );
    // The breaker saw the outage on both arms.
    let first = &journal.facts.canary_steps[0].sources[0];
    assert!(first.canary.failures > 0 && first.baseline.unwrap().failures > 0);
}

async fn no_traffic_is_inconclusive(platform: Platform) {
    // Azure Monitor sees only real traffic, and there is none.
    let sandbox = sandbox().await;
    let journal = deploy(
        &sandbox,
        platform,
        plan(
            platform,
            canary(vec![SourceSpec::AzureMonitor], InconclusivePolicy::Fail),
        ),
    )
    .await;
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Inconclusive),
        "{:#?}",
        journal.phases
    );
    assert_eq!(journal.facts.canary_steps[0].decision, "inconclusive");
    let versions = production_versions(&sandbox, platform).await;
    assert_eq!(versions.get("2.4.0"), Some(&40), "{versions:?}");
    // Under `promote`, the same silence goes on with a warning.
    let sandbox = sandbox_fresh().await;
    let journal = deploy(
        &sandbox,
        platform,
        plan(
            platform,
            canary(vec![SourceSpec::AzureMonitor], InconclusivePolicy::Promote),
        ),
    )
    .await;
    assert_eq!(
        journal.outcome(),
        Some(Outcome::Promoted),
        "{:#?}",
        journal.phases
    );
    assert!(
        journal
            .facts
            .canary_steps
            .iter()
            .all(|s| s.decision == "promoted-inconclusive")
    );
}

async fn sandbox_fresh() -> expedite_sandbox::Sandbox {
    sandbox().await
}

/// Real users' traffic from the sandbox's generator, read from Azure
/// Monitor: a 5 % bad build trips at a 10 % canary.
async fn user_traffic_trips(platform: Platform) {
    let sandbox = sandbox().await;
    let h = sandbox.handle();
    h.set_behaviour(
        "2.4.1",
        Behaviour {
            error_rate: 0.05,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let host = match platform {
        Platform::AppService => format!("{WEB}.azurewebsites.test"),
        Platform::ContainerApps => production_fqdn(&sandbox).await,
    };
    h.generate_traffic(TrafficSpec {
        host,
        rps: 400.0,
        duration_ms: 60_000,
        order_ratio: 1.0,
        large_order_ratio: 0.0,
    })
    .unwrap();
    let started = Instant::now();
    // This test is about reading Azure Monitor; the generator's errors are
    // independent, so the breaker is told so (tempering for clumps would
    // let this 1.5-s step pass and trip on the next: `bench_clumping`).
    let mut watch = canary(vec![SourceSpec::AzureMonitor], InconclusivePolicy::Fail);
    watch.breaker.independent_failures = true;
    let journal = deploy(&sandbox, platform, plan(platform, watch)).await;
    h.stop_traffic();
    assert_eq!(
        journal.outcome(),
        Some(Outcome::RolledBack),
        "{:#?}",
        journal.phases
    );
    let last = journal.facts.canary_steps.last().unwrap();
    assert_eq!(
        (last.percent, last.decision.as_str()),
        (10, "trip"),
        "{last:#?}"
    );
    assert!(watch_time(&journal) < Duration::from_secs(15));
    assert!(started.elapsed() < Duration::from_secs(60));
}

async fn production_fqdn(sandbox: &expedite_sandbox::Sandbox) -> String {
    let clients = common::azure::clients(sandbox);
    ContainerApps::new(
        clients.arm(),
        ContainerAppRef {
            subscription: clients.settings.subscription_id.clone(),
            resource_group: clients.settings.resource_group.clone(),
            app: CA.into(),
        },
    )
    .get(&Cancel::new())
    .await
    .unwrap()
    .fqdn
    .unwrap()
}

macro_rules! both {
    ($name:ident, $f:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn app_service() {
                $f(Platform::AppService).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn container_apps() {
                $f(Platform::ContainerApps).await;
            }
        }
    };
}

both!(a_bad_build_trips_within_seconds, bad_build_trips);
both!(a_good_build_passes_every_step, good_build_promotes);
both!(
    a_dependency_outage_on_both_does_not_trip,
    outage_on_both_does_not_trip
);
both!(
    no_traffic_is_inconclusive_with_the_policy,
    no_traffic_is_inconclusive
);
both!(
    user_traffic_read_from_azure_monitor_trips,
    user_traffic_trips
);
