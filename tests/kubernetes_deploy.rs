//! The Kubernetes platform end to end on the sandbox's emulated API server
//! and mesh, both strategies:
//!
//! - **blue-green**: a good build gets its own Deployment, is checked
//!   through the pod proxy and the Service's `version` selector switches;
//!   pods that never become ready leave the selector alone with a clear
//!   error;
//! - **Istio canary**: a good build steps 10/50 % and is promoted; a build
//!   failing 5 % of requests at a 10 % weight trips within seconds and
//!   100 % goes back to stable; an outage hitting both versions does not
//!   trip; with a real Prometheus scraping the mesh's
//!   `istio_requests_total`, the platform's default queries trip a bad
//!   build on user traffic alone.
//!
//! Driven through the library as `deploy` drives it (the registry's
//! platform, its target and its probe), so each test reads the journal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
#[path = "common/prometheus.rs"]
mod prom;

use common::kube::{
    APP, NEW_IMAGE, NS, deploy, kube_writes, mesh_host, place, plan, recorded_previous, sandbox,
    selector_version, weights,
};
use prom::{Prometheus, Target};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use expedite::breaker;
use expedite::probe::Probe;
use expedite::probe::evidence::probes::{ProbeSettings, parse_requests};
use expedite::rollout::Outcome;
use expedite::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceSpec};
use expedite_sandbox::Behaviour;
use expedite_sandbox::kube::PodBehaviour;

fn canary() -> CanaryPlan {
    CanaryPlan {
        steps: vec![10, 50],
        window: Duration::from_millis(1500),
        interval: Duration::from_millis(200),
        breaker: breaker::Settings {
            min_requests: 30,
            max_silence: 2.0,
            ..breaker::Settings::default()
        },
        sources: vec![SourceSpec::Probes(ProbeSettings {
            rate: 50.0,
            requests: parse_requests(
                "POST /api/payments {\"amount\": 25, \"currency\": \"USD\"} => GET /api/payments/{id}",
            )
            .unwrap(),
            slow_threshold: None,
            timeout: Duration::from_secs(5),
        })],
        on_inconclusive: InconclusivePolicy::Fail,
        inconclusive_wait: Duration::from_secs(1),
    }
}

/// What users get through the mesh: versions of `n` requests.
async fn through_mesh(sb: &expedite_sandbox::Sandbox, n: usize) -> BTreeMap<String, usize> {
    let http = common::azure::clients(sb).http;
    Probe::new(http)
        .sample_versions(&mesh_host(), "/api/version", n)
        .await
}

#[tokio::test]
async fn blue_green_promotes_a_good_build_by_the_services_selector() {
    let sb = sandbox(false).await;
    let j = deploy(&sb, &place("blue-green"), plan(None)).await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert_eq!(selector_version(&sb), "2.4.2");
    let new = sb
        .kube_object("deployments", NS, "payments-v2.4.2")
        .unwrap();
    assert_eq!(
        new["spec"]["template"]["spec"]["containers"][0]["image"],
        NEW_IMAGE
    );
    assert_eq!(new["spec"]["replicas"], 3, "the stable one's size");
    assert_eq!(new["metadata"]["annotations"]["expedite/version"], "2.4.2");
    // The previous version stays running for a rollback, and is recorded.
    let old = sb.kube_object("deployments", NS, APP).unwrap();
    assert_eq!(old["status"]["availableReplicas"], 3);
    assert_eq!(recorded_previous(&sb), ("2.4.1".to_owned(), APP.to_owned()));
    assert_eq!(j.facts.production_sample.get("2.4.2"), Some(&40));
    // A second run of the same deploy changes nothing.
    let before = kube_writes(&sb).len();
    let again = deploy(&sb, &place("blue-green"), plan(None)).await;
    assert_eq!(again.outcome(), Some(Outcome::Unchanged));
    assert_eq!(kube_writes(&sb).len(), before, "{:?}", kube_writes(&sb));
}

#[tokio::test]
async fn blue_green_never_switches_to_pods_that_never_become_ready() {
    let sb = sandbox(false).await;
    sb.kube_set_pod_behaviour(
        NEW_IMAGE,
        PodBehaviour {
            never_ready: true,
            ..PodBehaviour::default()
        },
    );
    let started = Instant::now();
    let j = deploy(&sb, &place("blue-green"), plan(None)).await;
    assert_eq!(
        j.outcome(),
        Some(Outcome::FailedBeforeChange),
        "{:#?}",
        j.phases
    );
    let why = j.state.failure.clone().unwrap_or_default();
    assert!(
        why.contains("payments-v2.4.2")
            && why.contains("not ready")
            && why.contains("CrashLoopBackOff"),
        "{why}"
    );
    assert!(why.contains("production was not switched"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(selector_version(&sb), "2.4.1");
    let served = through_mesh(&sb, 30).await;
    assert_eq!(served.get("2.4.1"), Some(&30), "{served:?}");
    // No write ever touched the Service.
    assert!(
        !kube_writes(&sb).iter().any(|w| w.contains("/services/")),
        "{:?}",
        kube_writes(&sb)
    );
}

#[tokio::test]
async fn an_istio_canary_steps_a_good_build_to_everyone() {
    let sb = sandbox(true).await;
    let j = deploy(&sb, &place("canary"), plan(Some(canary()))).await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert_eq!(
        j.facts
            .canary_steps
            .iter()
            .map(|s| (s.percent, s.decision.as_str()))
            .collect::<Vec<_>>(),
        vec![(10, "pass"), (50, "pass")],
    );
    assert_eq!(weights(&sb), BTreeMap::from([("v2-4-2".to_string(), 100)]));
    let served = through_mesh(&sb, 40).await;
    assert_eq!(served.get("2.4.2"), Some(&40), "{served:?}");
    let dr = sb.kube_object("destinationrules", NS, APP).unwrap();
    let subsets: Vec<&str> = dr["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subsets, ["v2-4-1", "v2-4-2"]);
}

#[tokio::test]
async fn an_istio_canary_failing_five_percent_trips_in_seconds_and_all_goes_back() {
    let sb = sandbox(true).await;
    sb.set_behaviour(
        "2.4.2",
        Behaviour {
            error_rate: 0.05,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let mut plan = plan(Some(canary()));
    if let Some(c) = plan.canary.as_mut() {
        // Long enough that only the breaker can end the first step.
        c.window = Duration::from_secs(60);
    }
    let started = Instant::now();
    let j = deploy(&sb, &place("canary"), plan).await;
    assert_eq!(j.outcome(), Some(Outcome::RolledBack), "{:#?}", j.phases);
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
    let first = &j.facts.canary_steps[0];
    assert_eq!((first.percent, first.decision.as_str()), (10, "trip"));
    assert_eq!(weights(&sb), BTreeMap::from([("v2-4-1".to_string(), 100)]));
    let served = through_mesh(&sb, 40).await;
    assert_eq!(served.get("2.4.1"), Some(&40), "{served:?}");
    // The rejected build no longer runs.
    let rejected = sb
        .kube_object("deployments", NS, "payments-v2.4.2")
        .unwrap();
    assert_eq!(rejected["spec"]["replicas"], 0);
}

#[tokio::test]
async fn an_outage_hitting_both_versions_does_not_trip_the_canary() {
    let sb = sandbox(true).await;
    for v in ["2.4.1", "2.4.2"] {
        sb.set_behaviour(
            v,
            Behaviour {
                error_rate: 0.2,
                ..Behaviour::default()
            },
        )
        .unwrap();
    }
    let j = deploy(&sb, &place("canary"), plan(Some(canary()))).await;
    assert!(
        j.facts.canary_steps.iter().all(|s| s.decision != "trip"),
        "{:#?}",
        j.facts.canary_steps
    );
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    let first = &j.facts.canary_steps[0].sources[0];
    assert!(first.canary.failures > 0 && first.baseline.unwrap().failures > 0);
}

#[tokio::test]
async fn a_canary_needs_the_service_to_leave_versions_to_istio() {
    // A Service that selects a version itself would give the canary's
    // subset no endpoints: refused before any write.
    let sb = sandbox(false).await;
    let j = deploy(&sb, &place("canary"), plan(Some(canary()))).await;
    assert_eq!(j.outcome(), Some(Outcome::FailedBeforeChange));
    let why = j.state.failure.clone().unwrap_or_default();
    assert!(why.contains("selects `version` itself"), "{why}");
    assert!(kube_writes(&sb).is_empty(), "{:?}", kube_writes(&sb));
}

#[tokio::test]
async fn prometheus_on_istio_metrics_trips_a_bad_canary_on_user_traffic() {
    let sb = sandbox(true).await;
    let control = format!("http://{}", sb.http_addr());
    let Some(prometheus) = Prometheus::start(
        &control,
        &[Target {
            slot: "mesh".into(),
            host: "metrics.mesh.test".into(),
            params: vec![],
        }],
    )
    .await
    else {
        return;
    };
    sb.set_behaviour(
        "2.4.2",
        Behaviour {
            error_rate: 0.5,
            ..Behaviour::default()
        },
    )
    .unwrap();
    // Users, through the mesh: every request places an order.
    sb.generate_traffic(expedite_sandbox::TrafficSpec {
        host: mesh_host(),
        rps: 100.0,
        duration_ms: 120_000,
        order_ratio: 1.0,
        large_order_ratio: 0.0,
    })
    .unwrap();
    let place = place("canary");
    let (requests, failures) = place.platform.prometheus_defaults(&place).unwrap();
    assert!(
        requests.contains("istio_requests_total")
            && requests.contains("destination_version=\"$arm\"")
    );
    let mut spec =
        expedite::probe::evidence::prometheus::PrometheusSpec::new(prometheus.url.clone());
    spec.queries.requests = requests;
    spec.queries.failures = failures;
    let mut c = canary();
    c.sources = vec![SourceSpec::Prometheus(Box::new(spec))];
    c.window = Duration::from_secs(60);
    c.breaker.max_silence = 5.0;
    let started = Instant::now();
    let j = deploy(&sb, &place, plan(Some(c))).await;
    sb.stop_traffic();
    assert_eq!(
        j.outcome(),
        Some(Outcome::RolledBack),
        "{:#?}\n{:#?}\n{}",
        j.phases,
        j.facts.canary_steps,
        prometheus.log()
    );
    assert_eq!(j.facts.canary_steps[0].decision, "trip");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(weights(&sb), BTreeMap::from([("v2-4-1".to_string(), 100)]));
    // The evidence was Istio's counts of user requests, by version label.
    let f = &j.facts.canary_steps[0].sources[0];
    assert!(f.canary.requests > 0 && f.canary.failures > 0, "{f:?}");
    assert!(f.baseline.unwrap().requests > f.canary.requests, "{f:?}");
}

#[tokio::test]
async fn an_api_server_that_throttles_conflicts_fails_and_loses_answers_is_waited_out() {
    use expedite_sandbox::{FaultKind, FaultSpec};
    let sb = sandbox(false).await;
    let fault = |kind: FaultKind, method: &str, path: &str, times: u32| FaultSpec {
        host: Some("kubernetes.test".into()),
        method: Some(method.into()),
        path_prefix: Some(path.into()),
        times: Some(times),
        ..FaultSpec::new(kind)
    };
    // The green Deployment is made, but the answer never comes back.
    sb.add_fault(fault(
        FaultKind::AnswerLost,
        "POST",
        "/apis/apps/v1/namespaces/shop/deployments",
        1,
    ))
    .unwrap();
    // Reading Deployments fails for a while; the switch is throttled.
    sb.add_fault(fault(
        FaultKind::Status { status: 503 },
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments",
        4,
    ))
    .unwrap();
    sb.add_fault(fault(
        FaultKind::Throttle {
            retry_after_secs: 1,
        },
        "PATCH",
        "/api/v1/namespaces/shop/services/payments",
        3,
    ))
    .unwrap();
    // Another writer got there first: the switch is read again, not forced.
    sb.add_fault(fault(
        FaultKind::Error {
            status: 409,
            message: "Operation cannot be fulfilled on services \"payments\": the object has been modified".into(),
        },
        "PATCH",
        "/api/v1/namespaces/shop/services/payments",
        1,
    ))
    .unwrap();
    let j = deploy(&sb, &place("blue-green"), plan(None)).await;
    assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
    assert_eq!(selector_version(&sb), "2.4.2");
    assert!(
        sb.faults().is_empty(),
        "every fault fired: {:?}",
        sb.faults()
    );
    // One Deployment was created, once: the lost answer was read back,
    // not repeated.
    let creates = sb
        .request_log()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path
                    .starts_with("/apis/apps/v1/namespaces/shop/deployments")
        })
        .count();
    assert_eq!(creates, 1);
    assert!(
        sb.kube_object("deployments", NS, "payments-v2.4.2")
            .is_some()
    );
}
