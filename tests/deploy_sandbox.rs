//! The deploy rollout (state machine + App Service driver) against the
//! sandbox: outcomes, and what the sandbox's request log proves was and was
//! not done.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use expedite::cancel::Cancel;
use expedite::platform::app_service::RoutingRule;
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::app_service::AppServiceTarget;
use expedite::rollout::driver::{DeployPlan, Rollout, StalePolicy};
use expedite::rollout::{Outcome, Phase};
use expedite_sandbox::{Behaviour, FaultKind, FaultSpec, SandboxConfig};

const APP: &str = "app-contoso-payments";

struct Rig {
    sandbox: expedite_sandbox::Sandbox,
    rollout: Rollout<AppServiceTarget>,
}

async fn rig(package_version: Option<&str>) -> Rig {
    let sandbox = expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(500),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let clients = common::azure::clients(&sandbox);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let app = clients.app(arm, APP);
    let (http, tokens) = (clients.http.clone(), clients.tokens.clone());
    let plan = DeployPlan {
        slot: "staging".into(),
        package: package_version.map(|v| expedite_sandbox::demo_package(v).unwrap()),
        endpoints: Endpoints {
            health_path: "/health".into(),
            health_status: 200,
            version_path: Some("/api/version".into()),
        },
        expected_version: "2.4.1".into(),
        staging: Schedule {
            attempts: 5,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
        },
        verify_window: Duration::from_millis(300),
        verify_interval: Duration::from_millis(100),
        verify_samples: 200,
        swap_timeout: Duration::from_secs(20),
        stale: StalePolicy::Clear,
        lock_wait: Duration::from_secs(2),
        run_id: "contoso/payments#4242.1".into(),
        journal: None,
        image: None,
        canary: None,
        rollback: false,
        revision: None,
        patience: Duration::from_secs(900),
    };
    let rollout = Rollout {
        target: AppServiceTarget {
            app,
            tokens,
            http: http.clone(),
            slot: plan.slot.clone(),
            archive: None,
        },
        probe: Probe::new(http),
        plan,
        sources: None,
        cancel: Cancel::new(),
        lock: None,
        place: None,
    };
    Rig { sandbox, rollout }
}

fn swaps(sandbox: &expedite_sandbox::Sandbox) -> usize {
    sandbox
        .handle()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("slotsswap"))
        .count()
}

fn mutating_arm_calls(sandbox: &expedite_sandbox::Sandbox) -> Vec<String> {
    sandbox
        .handle()
        .request_log()
        .iter()
        .filter(|r| r.host.starts_with("management.") && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_is_promoted_and_every_production_request_gets_it() {
    let rig = rig(Some("2.4.1")).await;
    let j = rig.rollout.run().await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert_eq!(j.facts.previous_version.as_deref(), Some("2.4.0"));
    assert_eq!(
        j.facts.production_sample.get("2.4.1"),
        Some(&200),
        "{:?}",
        j.facts.production_sample
    );
    assert_eq!(
        rig.sandbox
            .handle()
            .slot_version(APP, "production")
            .as_deref(),
        Some("2.4.1")
    );
    assert!(rig.sandbox.handle().routing_rules(APP).is_empty());
    assert_eq!(swaps(&rig.sandbox), 1);
    let tags = rig
        .rollout
        .target
        .app
        .slot("production", &Cancel::new())
        .await
        .unwrap()
        .tags;
    // Exclusion is the lock's (a ref with compare-and-set), not a tag.
    assert!(
        !tags.contains_key("expedite-deploy-lease"),
        "no tag lease: {tags:?}"
    );
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_health_failure_never_swaps() {
    let rig = rig(Some("2.4.1")).await;
    rig.sandbox
        .handle()
        .set_behaviour(
            "2.4.1",
            Behaviour {
                health_status: Some(500),
                ..Behaviour::default()
            },
        )
        .unwrap();
    let j = rig.rollout.run().await;
    assert_eq!(j.outcome(), Some(Outcome::FailedBeforeChange));
    assert!(
        j.state.failure.as_deref().unwrap().contains("health 500"),
        "{:?}",
        j.state.failure
    );
    assert_eq!(swaps(&rig.sandbox), 0);
    assert_eq!(
        rig.sandbox
            .handle()
            .slot_version(APP, "production")
            .as_deref(),
        Some("2.4.0")
    );
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_failure_after_the_swap_is_rolled_back_and_verified() {
    let rig = rig(Some("2.4.1")).await;
    let prod_host = rig
        .rollout
        .target
        .app
        .slot("production", &Cancel::new())
        .await
        .unwrap()
        .default_host_name;
    // Production's /health fails twice right after the swap, as a bad
    // config that only production has would.
    let mut fault = FaultSpec::new(FaultKind::Status { status: 503 });
    fault.host = Some(prod_host);
    fault.path_prefix = Some("/health".into());
    fault.times = Some(1);
    fault.after_ms = Some(0);
    // Installed once staging is good: wait for the swap to begin.
    let handle = rig.sandbox.handle();
    let watcher = tokio::spawn(async move {
        for _ in 0..400 {
            if handle
                .request_log()
                .iter()
                .any(|r| r.path.contains("slotsswap"))
            {
                handle.add_fault(fault).unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let j = rig.rollout.run().await;
    watcher.await.unwrap();
    assert_eq!(j.outcome(), Some(Outcome::RolledBack), "{:#?}", j.phases);
    assert!(j.state.trail.contains(&Phase::SwapBack));
    assert_eq!(swaps(&rig.sandbox), 2, "one swap and one swap back");
    assert_eq!(
        rig.sandbox
            .handle()
            .slot_version(APP, "production")
            .as_deref(),
        Some("2.4.0")
    );
    assert_eq!(j.facts.production_sample.get("2.4.0"), Some(&200));
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_canary_rule_is_cleared_before_the_swap() {
    let rig = rig(Some("2.4.1")).await;
    let staging = rig
        .rollout
        .target
        .app
        .slot("staging", &Cancel::new())
        .await
        .unwrap();
    let rule = RoutingRule {
        action_host_name: staging.default_host_name,
        reroute_percentage: 10.0,
        name: "staging".into(),
    };
    rig.rollout
        .target
        .app
        .set_routing_rules(&[rule], &Cancel::new())
        .await
        .unwrap();
    let j = rig.rollout.run().await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert_eq!(j.facts.stale_rules.len(), 1);
    assert!(j.state.trail.contains(&Phase::ClearStaleRouting));
    assert_eq!(
        j.facts.production_sample.get("2.4.1"),
        Some(&200),
        "{:?}",
        j.facts.production_sample
    );
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_slot_changes_nothing() {
    let mut rig = rig(None).await;
    rig.rollout.plan.slot = "stagign".into();
    rig.rollout.target.slot = "stagign".into();
    let j = rig.rollout.run().await;
    assert_eq!(j.outcome(), Some(Outcome::FailedBeforeChange));
    let why = j.state.failure.unwrap();
    assert!(
        why.contains("'stagign' does not exist") && why.contains("staging"),
        "{why}"
    );
    assert!(
        mutating_arm_calls(&rig.sandbox).is_empty(),
        "{:?}",
        mutating_arm_calls(&rig.sandbox)
    );
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_that_times_out_for_us_but_completes_is_not_repeated() {
    let mut rig = rig(Some("2.4.1")).await;
    rig.rollout.plan.swap_timeout = Duration::from_secs(20);
    let mut fault = FaultSpec::new(FaultKind::SwapTimeout { hold_ms: 2_000 });
    fault.times = Some(1);
    rig.sandbox.handle().add_fault(fault).unwrap();
    let j = rig.rollout.run().await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert!(
        j.state.trail.contains(&Phase::ResolveSwap),
        "{:?}",
        j.state.trail
    );
    assert_eq!(swaps(&rig.sandbox), 1, "the swap is never sent twice");
    rig.sandbox.shutdown().await;
}
