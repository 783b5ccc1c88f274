//! The Kubernetes platform driven on a sandbox the way `deploy` drives it
//! (the registry's platform builds the target and the probe that reaches
//! pods through the API server), with the seeded app's names. Shared by
//! `tests/kubernetes_deploy.rs` and `examples/bench_kube.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::collections::BTreeMap;
use std::time::Duration;

use expedite::cancel::Cancel;
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::canary::{CanaryPlan, SourceClients};
use expedite::rollout::driver::{DeployPlan, Journal, Rollout, StalePolicy};
use expedite::rollout::platforms::{self, Place, Resource, TargetEnv};

pub const NS: &str = "shop";
pub const APP: &str = "payments";
pub const STABLE_IMAGE: &str = "registry.test/payments:2.4.1";
pub const NEW_IMAGE: &str = "registry.test/payments:2.4.2";

/// A sandbox with `payments` 2.4.1 (3 pods) in `shop`, ready; `istio`:
/// behind a VirtualService, else a Service selecting the version.
pub async fn sandbox(istio: bool) -> expedite_sandbox::Sandbox {
    seeded(istio, 0).await
}

/// [`sandbox`] whose demo errors and traffic split draw from `seed`
/// (independent runs for a benchmark).
pub async fn seeded(istio: bool, seed: u64) -> expedite_sandbox::Sandbox {
    let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig {
        seed,
        ..expedite_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let refused = sb.kube_seed_app(NS, APP, STABLE_IMAGE, 3, istio);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        sb.kube_wait_available(NS, APP, Duration::from_secs(20))
            .await
    );
    sb
}

/// The app's place with `strategy` (a canary checks production at the
/// mesh's address).
pub fn place(strategy: &str) -> Place {
    let platform = platforms::find("kubernetes").unwrap();
    let mut settings = BTreeMap::from([
        ("namespace".to_string(), NS.to_string()),
        ("strategy".to_string(), strategy.to_string()),
    ]);
    if strategy == "canary" {
        settings.insert("production-url".into(), format!("https://{}", mesh_host()));
    }
    Place {
        platform,
        resource: Resource {
            subscription: String::new(),
            resource_group: NS.into(),
            app: APP.into(),
        },
        settings,
    }
}

/// Where users reach the app through the mesh.
pub fn mesh_host() -> String {
    format!("{APP}--{NS}.mesh.test")
}

/// A deploy of 2.4.2 (`NEW_IMAGE`), with `canary` if given.
pub fn plan(canary: Option<CanaryPlan>) -> DeployPlan {
    DeployPlan {
        slot: String::new(),
        package: None,
        endpoints: Endpoints {
            health_path: "/health".into(),
            health_status: 200,
            version_path: Some("/api/version".into()),
        },
        expected_version: "2.4.2".into(),
        staging: Schedule {
            attempts: 20,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(6),
        },
        verify_window: Duration::from_millis(300),
        verify_interval: Duration::from_millis(100),
        verify_samples: 40,
        swap_timeout: Duration::from_secs(20),
        stale: StalePolicy::Clear,
        lock_wait: Duration::from_secs(2),
        run_id: "contoso/payments#77.1".into(),
        journal: None,
        image: Some(NEW_IMAGE.into()),
        canary,
        rollback: false,
        revision: None,
        patience: Duration::from_secs(120),
    }
}

/// Runs the rollout as `deploy` does.
pub async fn deploy(sb: &expedite_sandbox::Sandbox, place: &Place, plan: DeployPlan) -> Journal {
    let http = super::azure::clients(sb).http;
    let env = TargetEnv {
        http: http.clone(),
        azure: None,
        archive: None,
        run_tag: "77-abcd".into(),
        attempt: "1".into(),
        kube: Some(expedite::kube::Source::Path(sb.settings().kubeconfig_path)),
    };
    let target = place.platform.target(place, &plan, &env).unwrap();
    let dial = place.platform.dial(place, &env).unwrap();
    let sources = plan.canary.as_ref().map(|_| SourceClients {
        http: http.clone(),
        dial: Some(dial.clone()),
        monitor: None,
    });
    Rollout {
        target,
        probe: Probe::dialing(dial),
        plan,
        sources,
        cancel: Cancel::new(),
        lock: None,
        place: Some(place.clone()),
    }
    .run()
    .await
}

/// The VirtualService's weights by subset.
pub fn weights(sb: &expedite_sandbox::Sandbox) -> BTreeMap<String, u64> {
    let vs = sb.kube_object("virtualservices", NS, APP).unwrap();
    let routes = vs["spec"]["http"][0]["route"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let n = routes.len();
    routes
        .iter()
        .map(|r| {
            (
                r["destination"]["subset"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["weight"].as_u64().unwrap_or(if n == 1 { 100 } else { 0 }),
            )
        })
        .collect()
}

/// The Service's `version` selector now.
pub fn selector_version(sb: &expedite_sandbox::Sandbox) -> String {
    sb.kube_object("services", NS, APP).unwrap()["spec"]["selector"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What the Service records for the rollback button: the previous
/// version and the Deployment it runs in (its `expedite-previous-*`
/// annotations).
pub fn recorded_previous(sb: &expedite_sandbox::Sandbox) -> (String, String) {
    let svc = sb.kube_object("services", NS, APP).unwrap();
    let note = |key: &str| {
        svc["metadata"]["annotations"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (
        note("expedite-previous-version"),
        note("expedite-previous-revision"),
    )
}

/// Requests that changed something on the API server (the lock's Lease
/// included), as `METHOD path → status`.
pub fn kube_writes(sb: &expedite_sandbox::Sandbox) -> Vec<String> {
    sb.request_log()
        .into_iter()
        .filter(|r| r.target.starts_with("kube") && r.method != "GET")
        .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
        .collect()
}

/// Writes to the app's own objects: everything but the lock's Lease.
pub fn app_writes(sb: &expedite_sandbox::Sandbox) -> Vec<String> {
    kube_writes(sb)
        .into_iter()
        .filter(|w| !w.contains("/leases"))
        .collect()
}
