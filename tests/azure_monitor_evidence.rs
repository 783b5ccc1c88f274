//! The Azure Monitor evidence source against the sandbox's metrics API,
//! which answers from the traffic the demo app really served: App Service
//! per slot, Container Apps per revision.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::{Duration, Instant};

use expedite::azure::arm::Arm;
use expedite::cancel::Cancel;
use expedite::probe::evidence::azure_monitor::{
    AzureMonitorSource, MonitorTarget, container_app_id, web_site_id,
};
use expedite::probe::evidence::{ArmRef, Arms, EvidenceError, EvidenceSource};
use expedite_sandbox::{Behaviour, Sandbox, SandboxConfig, TrafficSpec};
use serde_json::json;

const APP: &str = "app-contoso-payments";
const STAGING_HOST: &str = "app-contoso-payments-staging.azurewebsites.test";
const PRODUCTION_HOST: &str = "app-contoso-payments.azurewebsites.test";
const CA: &str = "ca-contoso-payments";
const DOMAIN: &str = "happyhill-1a2b3c4d.westeurope.azurecontainerapps.test";

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(SandboxConfig {
        seed: 11,
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Runs generators to the end; returns (sent, 500s) per host.
async fn drive(sb: &Sandbox, hosts: &[&str], rps: f64, ms: u64) -> Vec<(u64, u64)> {
    let ids: Vec<u64> = hosts
        .iter()
        .map(|h| {
            sb.generate_traffic(TrafficSpec {
                host: (*h).into(),
                rps,
                duration_ms: ms,
                order_ratio: 1.0,
                large_order_ratio: 0.0,
            })
            .unwrap()
        })
        .collect();
    let t = Instant::now();
    loop {
        let runs: Vec<_> = sb
            .traffic_runs()
            .into_iter()
            .filter(|r| ids.contains(&r.id))
            .collect();
        if runs.iter().all(|r| r.done) {
            return ids
                .iter()
                .map(|id| {
                    let r = runs.iter().find(|r| r.id == *id).unwrap();
                    (r.sent, r.by_status.get(&500).copied().unwrap_or(0))
                })
                .collect();
        }
        assert!(
            t.elapsed() < Duration::from_millis(ms + 30_000),
            "traffic stuck"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn arm_client(sb: &Sandbox) -> (common::azure::Clients, Arm) {
    let clients = common::azure::clients(sb);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    (clients, arm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_service_slots_are_counted_from_the_start_only() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (_clients, arm) = arm_client(&sb);
    sb.set_behaviour(
        "2.3.1",
        Behaviour {
            error_rate: 0.25,
            ..Behaviour::default()
        },
    )
    .unwrap();
    // Traffic before the start, most likely in the start's own minute: it
    // must not count.
    drive(&sb, &[STAGING_HOST, PRODUCTION_HOST], 100.0, 300).await;

    let site = web_site_id(&s.subscription_id, &s.resource_group, APP);
    let mut src = AzureMonitorSource::app_service(arm, &site).unwrap();
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
    let cancel = Cancel::new();
    src.start(&arms, &cancel).await.unwrap();
    assert_eq!(src.name(), "azure-monitor");
    let r0 = src.read(&cancel).await.unwrap();
    assert_eq!(
        (r0.canary.requests, r0.baseline.unwrap().requests),
        (0, 0),
        "{r0:?}"
    );

    let counts = drive(&sb, &[STAGING_HOST, PRODUCTION_HOST], 40.0, 3000).await;
    let (sent, errors) = counts[0];
    let (prod_sent, prod_errors) = counts[1];
    let r1 = src.read(&cancel).await.unwrap();
    let b1 = r1.baseline.unwrap();
    assert_eq!((r1.canary.requests, r1.canary.failures), (sent, errors));
    assert_eq!((b1.requests, b1.failures), (prod_sent, prod_errors));
    assert_eq!(prod_errors, 0);
    assert!(errors > 0 && sent >= 60, "{counts:?}");
    assert_eq!((r1.canary.slow, r1.canary.latency), (None, None));

    // More traffic: cumulative, whatever minute it lands in.
    let more = drive(&sb, &[STAGING_HOST], 40.0, 1500).await;
    let r2 = src.read(&cancel).await.unwrap();
    assert_eq!(r2.canary.requests, sent + more[0].0);
    assert_eq!(r2.canary.failures, errors + more[0].1);
    assert_eq!(r2.baseline.unwrap().requests, prod_sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_app_revisions_are_counted_apart() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (clients, arm) = arm_client(&sb);
    let cancel = Cancel::new();
    let app_id = container_app_id(&s.subscription_id, &s.resource_group, CA);
    let stable = format!("{CA}--v240");
    let canary = format!("{CA}--canary");
    // Pin users to the stable revision, then add the canary revision.
    let patch = |body: serde_json::Value| {
        let arm = arm.clone();
        let app_id = app_id.clone();
        let cancel = cancel.clone();
        async move {
            let op = arm
                .write_idempotent(
                    reqwest::Method::PATCH,
                    &app_id,
                    "2025-07-01",
                    &body,
                    &cancel,
                )
                .await
                .unwrap();
            arm.wait("patch", &op, Duration::from_secs(30), &cancel)
                .await
                .unwrap();
        }
    };
    patch(json!({"properties": {"configuration": {"ingress": {"traffic": [{"revisionName": stable, "weight": 100}]}}}})).await;
    patch(json!({"properties": {"template": {
        "revisionSuffix": "canary",
        "containers": [{"name": "payments", "image": "contosoacr.azurecr.io/payments:2.4.1",
                        "resources": {"cpu": 0.5, "memory": "1Gi"}}]
    }}}))
    .await;
    let canary_host = format!("{canary}.{DOMAIN}");
    let app_host = format!("{CA}.{DOMAIN}");
    let t = Instant::now();
    loop {
        let r = clients
            .http
            .get(format!("https://{canary_host}/api/version"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "canary never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sb.set_behaviour(
        "2.4.1",
        Behaviour {
            error_rate: 0.3,
            ..Behaviour::default()
        },
    )
    .unwrap();
    sb.set_behaviour("2.4.0", Behaviour::default()).unwrap();

    let mut src = AzureMonitorSource::new(arm.clone(), MonitorTarget::ContainerApp { app_id });
    let arms = Arms {
        canary: ArmRef {
            label: canary.clone(),
            host: canary_host.clone(),
        },
        baseline: ArmRef {
            label: stable.clone(),
            host: app_host.clone(),
        },
    };
    src.start(&arms, &cancel).await.unwrap();
    let counts = drive(&sb, &[&canary_host, &app_host], 40.0, 3000).await;
    let r = src.read(&cancel).await.unwrap();
    let b = r.baseline.unwrap();
    assert_eq!((r.canary.requests, r.canary.failures), counts[0], "{r:?}");
    assert_eq!((b.requests, b.failures), counts[1], "{r:?}");
    assert_eq!(b.failures, 0);
    assert!(r.canary.failures > 0, "{r:?}");
}

#[tokio::test]
async fn wrong_resources_and_names_are_misconfigured() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (_clients, arm) = arm_client(&sb);
    let cancel = Cancel::new();
    let arms = |canary: &str| Arms {
        canary: ArmRef {
            label: canary.into(),
            host: "x".into(),
        },
        baseline: ArmRef {
            label: "production".into(),
            host: "y".into(),
        },
    };
    assert!(matches!(
        AzureMonitorSource::app_service(arm.clone(), "/subscriptions/x/sites/app"),
        Err(EvidenceError::Misconfigured { .. })
    ));
    let site = web_site_id(&s.subscription_id, &s.resource_group, APP);
    for label in ["no-such-slot", "bad'label"] {
        let mut src = AzureMonitorSource::app_service(arm.clone(), &site).unwrap();
        match src.start(&arms(label), &cancel).await {
            Err(EvidenceError::Misconfigured { detail, .. }) => {
                assert!(detail.contains(label), "{detail}")
            }
            other => panic!("{label}: {other:?}"),
        }
    }
    // An invalid target given to `new` is reported at start.
    let mut src = AzureMonitorSource::new(
        arm,
        MonitorTarget::ContainerApp {
            app_id: site.clone(),
        },
    );
    assert!(matches!(
        src.start(&arms("staging"), &cancel).await,
        Err(EvidenceError::Misconfigured { .. })
    ));
}
