//! The Container Apps platform module against the sandbox's emulation of
//! Microsoft.App: reading the app, the `latestRevision` trap, revisions that
//! keep every other container and field, fresh suffixes on re-runs,
//! readiness, traffic splits read back, deactivation, Single mode, tags.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use expedite::azure::arm::ArmError;
use expedite::cancel::Cancel;
use expedite::platform::container_apps::{
    self, API_VERSION, ContainerAppRef, ContainerApps, ReadyError, TrafficWeight, revision_suffix,
    stable_revision,
};
use expedite_sandbox::{Behaviour, SandboxConfig};
use serde_json::{Value, json};

const APP: &str = "ca-contoso-payments";
const STABLE: &str = "ca-contoso-payments--v240";
const IMAGE: &str = "contosoacr.azurecr.io/payments";

struct Rig {
    sandbox: expedite_sandbox::Sandbox,
    ca: ContainerApps,
    cancel: Cancel,
}

async fn rig() -> Rig {
    let sandbox = expedite_sandbox::start(SandboxConfig {
        build_duration: Duration::from_millis(400),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let clients = common::azure::clients(&sandbox);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let ca = ContainerApps::new(
        arm,
        ContainerAppRef {
            subscription: clients.settings.subscription_id.clone(),
            resource_group: clients.settings.resource_group.clone(),
            app: APP.into(),
        },
    );
    Rig {
        sandbox,
        ca,
        cancel: Cancel::new(),
    }
}

fn weight(revision: &str, weight: u32, label: Option<&str>) -> TrafficWeight {
    TrafficWeight {
        revision: revision.into(),
        weight,
        label: label.map(str::to_string),
    }
}

impl Rig {
    /// A raw merge PATCH of the app, as another tool (or a person) would send.
    async fn patch_app(&self, body: Value) {
        let arm = self.ca.arm();
        let op = arm
            .write_idempotent(
                reqwest::Method::PATCH,
                &self.ca.app_ref().id(),
                API_VERSION,
                &body,
                &self.cancel,
            )
            .await
            .unwrap();
        arm.wait("patch", &op, Duration::from_secs(30), &self.cancel)
            .await
            .unwrap();
    }

    /// Traffic pinned to the stable revision by name.
    async fn pin(&self) {
        self.ca
            .set_traffic(&[weight(STABLE, 100, None)], &self.cancel)
            .await
            .unwrap();
    }

    /// A new, ready revision running `version`.
    async fn ready_revision(&self, version: &str, attempt: &str) -> String {
        let name = self
            .ca
            .create_revision(
                &format!("{IMAGE}:{version}"),
                None,
                &revision_suffix(version, "4711", attempt),
                &self.cancel,
            )
            .await
            .unwrap();
        self.ca
            .wait_revision_ready(&name, Duration::from_secs(20), &self.cancel)
            .await
            .unwrap();
        name
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_revision_trap_is_pinned_by_name_before_a_revision_is_created() {
    let rig = rig().await;
    let c = &rig.cancel;

    let info = rig.ca.get(c).await.unwrap();
    assert_eq!(info.name, APP);
    assert!(info.multiple_revisions());
    assert!(
        info.fqdn.as_deref().unwrap().starts_with(APP),
        "{:?}",
        info.fqdn
    );
    assert_eq!(info.latest_ready_revision_name.as_deref(), Some(STABLE));
    assert_eq!(info.provisioning_state, "Succeeded");
    // The scenario starts with traffic following the latest revision.
    assert!(info.traffic_follows_latest);
    let stable = stable_revision(&info).unwrap();
    assert_eq!(stable.name, STABLE);
    assert!(stable.via_latest_revision);

    // Creating a revision now would hand it all traffic: refused, unsent.
    let before = rig.sandbox.last_seq();
    let e = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.1"),
            None,
            &revision_suffix("2.4.1", "4711", "1"),
            c,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ArmError::Invalid { message, .. } if message.contains("latestRevision") && message.contains("by name")),
        "{e}"
    );
    let writes = rig
        .sandbox
        .request_log_since(before)
        .into_iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0);

    rig.pin().await;
    let info = rig.ca.get(c).await.unwrap();
    assert!(!info.traffic_follows_latest);
    assert_eq!(info.traffic, [weight(STABLE, 100, None)]);
    let stable = stable_revision(&info).unwrap();
    assert!(!stable.via_latest_revision);

    let canary = rig.ready_revision("2.4.1", "1").await;
    assert_eq!(canary, format!("{APP}--v2-4-1-4711-1"));
    let info = rig.ca.get(c).await.unwrap();
    assert_eq!(info.latest_ready_revision_name.as_deref(), Some(&*canary));
    // Traffic did not move to the new revision.
    assert_eq!(info.traffic, [weight(STABLE, 100, None)]);
    assert_eq!(stable_revision(&info).unwrap().name, STABLE);
    let revisions = rig.ca.revisions(c).await.unwrap();
    let by_name: BTreeMap<_, _> = revisions.iter().map(|r| (r.name.as_str(), r)).collect();
    assert_eq!(by_name[STABLE].traffic_weight, 100);
    assert_eq!(by_name[&*canary].traffic_weight, 0);
    assert_eq!(by_name[&*canary].images, [format!("{IMAGE}:2.4.1")]);
    assert!(by_name[&*canary].active);
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_revision_keeps_every_other_container_and_field() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.pin().await;
    // Give the app a sidecar (as its owners would have).
    let mut containers = rig.ca.get(c).await.unwrap().template["containers"].clone();
    containers.as_array_mut().unwrap().push(json!({
        "name": "otel",
        "image": "otel/opentelemetry-collector:0.98.0",
        "args": ["--config", "/etc/otel.yaml"],
        "env": [{"name": "OTEL_EXPORTER", "secretRef": "otel-key"}],
        "resources": {"cpu": 0.25, "memory": "0.5Gi"},
        "volumeMounts": [{"volumeName": "cfg", "mountPath": "/etc"}]
    }));
    rig.patch_app(json!({"properties": {"template": {"revisionSuffix": "sidecar", "containers": containers}}}))
        .await;
    let before = rig.ca.get(c).await.unwrap().template;

    // Two containers: which one gets the image must be said.
    let suffix = revision_suffix("2.4.1", "4711", "1");
    for (container, needle) in [(None, "payments, otel"), (Some("nope"), "payments, otel")] {
        let e = rig
            .ca
            .create_revision(&format!("{IMAGE}:2.4.1"), container, &suffix, c)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ArmError::Invalid { message, .. } if message.contains(needle)),
            "{e}"
        );
    }

    let name = rig
        .ca
        .create_revision(&format!("{IMAGE}:2.4.1"), Some("payments"), &suffix, c)
        .await
        .unwrap();
    let after = rig.ca.get(c).await.unwrap().template;
    let mut expected = before.clone();
    expected["revisionSuffix"] = json!(suffix);
    expected["containers"][0]["image"] = json!(format!("{IMAGE}:2.4.1"));
    assert_eq!(after, expected, "only the image and the suffix changed");
    assert_eq!(after["containers"][1], before["containers"][1]);
    assert_eq!(
        after["containers"][0]["probes"],
        json!([{"type": "Readiness", "httpGet": {"path": "/health", "port": 8080}}])
    );
    let rev = rig
        .ca
        .wait_revision_ready(&name, Duration::from_secs(20), c)
        .await
        .unwrap();
    assert_eq!(
        rev.images,
        [
            format!("{IMAGE}:2.4.1"),
            "otel/opentelemetry-collector:0.98.0".to_string()
        ]
    );
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_does_not_collide_with_the_first_attempts_suffix() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.pin().await;
    let first = rig.ready_revision("2.4.1", "1").await;

    // The re-run's attempt makes the suffix fresh.
    let second = rig.ready_revision("2.4.1", "2").await;
    assert_ne!(second, first);
    assert_eq!(second, format!("{APP}--v2-4-1-4711-2"));
    let names: Vec<String> = rig
        .ca
        .revisions(c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, [STABLE.to_string(), first.clone(), second.clone()]);

    // The first attempt's suffix again, with another image: Azure refuses it.
    let e = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.2"),
            None,
            &revision_suffix("2.4.1", "4711", "1"),
            c,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ArmError::Refused { status: 400, message, .. } if message.contains("already exists")),
        "{e}"
    );
    // With the same image (a PATCH retried after it was applied): that revision.
    let again = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.1"),
            None,
            &revision_suffix("2.4.1", "4711", "1"),
            c,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(rig.ca.revisions(c).await.unwrap().len(), 3);

    // Invalid suffixes are refused before sending.
    let e = rig
        .ca
        .create_revision(&format!("{IMAGE}:2.4.1"), None, "Hotfix.1", c)
        .await
        .unwrap_err();
    assert!(matches!(e, ArmError::Invalid { .. }), "{e}");
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_a_ready_replica_and_reports_what_was_missing() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.pin().await;

    // Straight after the PATCH the revision is still provisioning.
    let name = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.1"),
            None,
            &revision_suffix("2.4.1", "4711", "1"),
            c,
        )
        .await
        .unwrap();
    let rev = rig
        .ca
        .wait_revision_ready(&name, Duration::from_secs(20), c)
        .await
        .unwrap();
    assert_eq!(
        (
            rev.provisioning_state.as_str(),
            rev.running_state.as_str(),
            rev.active
        ),
        ("Provisioned", "Running", true)
    );
    assert!(rev.replicas >= 1);
    assert_eq!(rig.ca.ready_replicas(&name, c).await.unwrap(), 1);

    // A build that crashes on start never gets a ready replica.
    rig.sandbox
        .set_behaviour(
            "2.4.2",
            Behaviour {
                crash_loop: true,
                ..Behaviour::default()
            },
        )
        .unwrap();
    let bad = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.2"),
            None,
            &revision_suffix("2.4.2", "4711", "1"),
            c,
        )
        .await
        .unwrap();
    let e = rig
        .ca
        .wait_revision_ready(&bad, Duration::from_secs(2), c)
        .await
        .unwrap_err();
    match &e {
        ReadyError::Timeout {
            unmet, state, last, ..
        } => {
            assert!(unmet.contains("Degraded"), "{e}");
            assert!(state.contains("Unhealthy"), "{e}");
            assert_eq!(last.as_ref().unwrap().name, bad);
        }
        other => panic!("{other}"),
    }
    assert_eq!(rig.ca.ready_replicas(&bad, c).await.unwrap(), 0);

    // A failing readiness probe: running, but no replica is ready.
    rig.sandbox
        .set_behaviour(
            "2.4.3",
            Behaviour {
                health_status: Some(500),
                ..Behaviour::default()
            },
        )
        .unwrap();
    let unready = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.3"),
            None,
            &revision_suffix("2.4.3", "4711", "1"),
            c,
        )
        .await
        .unwrap();
    let e = rig
        .ca
        .wait_revision_ready(&unready, Duration::from_secs(2), c)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ReadyError::Timeout { .. }) && e.to_string().contains("not ready after 2s"),
        "{e}"
    );

    // A revision that never appears.
    let e = rig
        .ca
        .wait_revision_ready(
            &format!("{APP}--nothing-here"),
            Duration::from_millis(300),
            c,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("never seen"), "{e}");
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_is_split_by_name_read_back_and_refused_when_invalid() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.pin().await;
    let canary = rig.ready_revision("2.4.1", "1").await;

    let split = [
        weight(STABLE, 90, None),
        weight(&canary, 10, Some("canary")),
    ];
    rig.ca.set_traffic(&split, c).await.unwrap();
    let info = rig.ca.get(c).await.unwrap();
    assert_eq!(info.traffic, split);
    assert!(!info.traffic_follows_latest);
    let e = stable_revision(&info).unwrap_err();
    assert!(
        e.contains(&format!("{canary} 10%")) && e.contains("90%"),
        "{e}"
    );
    let weights: BTreeMap<String, u32> = rig
        .ca
        .revisions(c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.traffic_weight))
        .collect();
    assert_eq!(weights[STABLE], 90);
    assert_eq!(weights[&canary], 10);

    // Invalid splits are refused before any request.
    let before = rig.sandbox.last_seq();
    for bad in [
        vec![weight(STABLE, 90, None), weight(&canary, 20, None)],
        vec![weight(STABLE, 50, None), weight(STABLE, 50, None)],
        vec![weight(STABLE, 90, None)],
        vec![],
    ] {
        let e = rig.ca.set_traffic(&bad, c).await.unwrap_err();
        assert!(matches!(e, ArmError::Invalid { .. }), "{e}");
    }
    let e = rig
        .ca
        .set_traffic(&[weight(STABLE, 90, None), weight(&canary, 20, None)], c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("sum to 110"), "{e}");
    assert!(rig.sandbox.request_log_since(before).is_empty());

    // A revision Azure does not know: its refusal, with its words.
    let e = rig
        .ca
        .set_traffic(&[weight(&format!("{APP}--ghost"), 100, None)], c)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ArmError::Refused { status: 400, code, .. } if code == "ContainerAppInvalidIngressTraffic"),
        "{e}"
    );
    // Unchanged after the refusal.
    assert_eq!(rig.ca.get(c).await.unwrap().traffic, split);
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_revision_is_deactivated_only_once_it_has_no_traffic() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.pin().await;
    let canary = rig.ready_revision("2.4.1", "1").await;
    rig.ca
        .set_traffic(&[weight(STABLE, 90, None), weight(&canary, 10, None)], c)
        .await
        .unwrap();

    let e = rig.ca.deactivate(&canary, c).await.unwrap_err();
    assert!(
        matches!(&e, ArmError::Invalid { message, .. } if message.contains("10%")),
        "{e}"
    );
    assert!(rig.ca.revision(&canary, c).await.unwrap().active);

    // Roll back: all traffic to the stable revision, then deactivate.
    rig.pin().await;
    rig.ca.deactivate(&canary, c).await.unwrap();
    let rev = rig.ca.revision(&canary, c).await.unwrap();
    assert!(!rev.active);
    assert_eq!(rev.traffic_weight, 0);
    // Safe to repeat.
    rig.ca.deactivate(&canary, c).await.unwrap();
    let info = rig.ca.get(c).await.unwrap();
    assert_eq!(stable_revision(&info).unwrap().name, STABLE);
    assert!(rig.ca.revision(STABLE, c).await.unwrap().active);

    let e = rig
        .ca
        .deactivate(&format!("{APP}--ghost"), c)
        .await
        .unwrap_err();
    assert!(matches!(e, ArmError::NotFound { .. }), "{e}");
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_revision_mode_is_refused_with_how_to_switch() {
    let rig = rig().await;
    let c = &rig.cancel;
    rig.patch_app(json!({"properties": {"configuration": {"activeRevisionsMode": "Single"}}}))
        .await;
    let info = rig.ca.get(c).await.unwrap();
    assert!(!info.multiple_revisions());
    let before = rig.sandbox.last_seq();
    let e = rig
        .ca
        .create_revision(
            &format!("{IMAGE}:2.4.1"),
            None,
            &revision_suffix("2.4.1", "4711", "1"),
            c,
        )
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, ArmError::Invalid { .. }), "{message}");
    assert!(
        message.contains("Single revision mode")
            && message.contains("needs Multiple")
            && message.contains(
                "az containerapp revision set-mode --name ca-contoso-payments --resource-group"
            ),
        "{message}"
    );
    assert!(
        rig.sandbox
            .request_log_since(before)
            .iter()
            .all(|r| r.method == "GET")
    );
    assert_eq!(rig.ca.revisions(c).await.unwrap().len(), 1);
    rig.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_merged_and_deleted_through_the_tags_api() {
    let rig = rig().await;
    let c = &rig.cancel;
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    rig.ca
        .merge_tags(&tags(&[("owner", "payments")]), c)
        .await
        .unwrap();
    rig.ca
        .merge_tags(&tags(&[("expedite-lease", "run-1")]), c)
        .await
        .unwrap();
    assert_eq!(
        rig.ca.get(c).await.unwrap().tags,
        tags(&[("expedite-lease", "run-1"), ("owner", "payments")])
    );
    // Someone else's lease is not removed.
    rig.ca
        .delete_tags(&tags(&[("expedite-lease", "run-2")]), c)
        .await
        .unwrap();
    assert_eq!(rig.ca.get(c).await.unwrap().tags.len(), 2);
    rig.ca
        .delete_tags(&tags(&[("expedite-lease", "run-1")]), c)
        .await
        .unwrap();
    assert_eq!(
        rig.ca.get(c).await.unwrap().tags,
        tags(&[("owner", "payments")])
    );
    rig.sandbox.shutdown().await;
}

#[test]
fn the_api_version_is_the_one_the_reference_names() {
    assert_eq!(container_apps::API_VERSION, "2025-07-01");
}

/// ARM pages its lists: with one item per page the revisions (and a
/// revision's replicas) still all arrive, each page asked for by ARM's own
/// `nextLink` (a client that adds a second api-version gets ARM's 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_lists_are_followed_to_the_last_page() {
    let sandbox = expedite_sandbox::start(SandboxConfig {
        build_duration: Duration::from_millis(400),
        list_page_size: Some(1),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let clients = common::azure::clients(&sandbox);
    let mut arm = clients.arm();
    arm.poll_interval = Duration::from_millis(100);
    let rig = Rig {
        ca: ContainerApps::new(
            arm,
            ContainerAppRef {
                subscription: clients.settings.subscription_id.clone(),
                resource_group: clients.settings.resource_group.clone(),
                app: APP.into(),
            },
        ),
        sandbox,
        cancel: Cancel::new(),
    };
    let c = &rig.cancel;
    rig.pin().await;
    let first = rig.ready_revision("2.4.1", "1").await;
    let second = rig.ready_revision("2.4.1", "2").await;
    let before = rig.sandbox.handle().request_log().len();
    let names: Vec<String> = rig
        .ca
        .revisions(c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, [STABLE.to_string(), first, second]);
    let pages: Vec<String> = rig.sandbox.handle().request_log()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/revisions?"))
        .map(|r| format!("{} {}", r.status, r.path))
        .collect();
    assert_eq!(pages.len(), 3, "one request per page: {pages:#?}");
    for p in &pages {
        assert!(
            p.starts_with("200 ") && p.matches("api-version=").count() == 1,
            "{pages:#?}"
        );
    }
    assert!(pages[2].contains("%24skiptoken=sbx-2"), "{pages:#?}");
    rig.sandbox.shutdown().await;
}
