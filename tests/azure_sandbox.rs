//! The product's Azure client (auth, ARM, App Service, Kudu, probes)
//! against the sandbox, through the same code path as against Azure: only
//! the endpoints, host resolution and trusted CA differ.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use expedite::azure::arm::ArmError;
use expedite::cancel::Cancel;
use expedite::platform::app_service::{self, AppService, PRODUCTION, RoutingRule};
use expedite::probe::{Endpoints, Probe};
use expedite_sandbox::SandboxConfig;

struct Env {
    sandbox: expedite_sandbox::Sandbox,
    http: reqwest::Client,
    console: expedite::action::console::Console,
    tokens: std::sync::Arc<expedite::azure::auth::TokenProvider>,
    clients: common::azure::Clients,
}

async fn env(config: SandboxConfig) -> Env {
    let sandbox = expedite_sandbox::start(config).await.unwrap();
    let clients = common::azure::clients(&sandbox);
    Env {
        http: clients.http.clone(),
        console: clients.console.clone(),
        tokens: clients.tokens.clone(),
        sandbox,
        clients,
    }
}

impl Env {
    fn app(&self, name: &str) -> AppService {
        self.clients.app(self.clients.arm(), name)
    }
}

fn endpoints() -> Endpoints {
    Endpoints {
        health_path: "/health".into(),
        health_status: 200,
        version_path: Some("/api/version".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_slots_routes_and_swaps_through_the_product_client() {
    let env = env(SandboxConfig {
        swap_duration: Duration::from_millis(600),
        ..SandboxConfig::default()
    })
    .await;
    let cancel = Cancel::new();
    let app = env.app("app-contoso-payments");
    let mut arm = app.arm().clone();
    arm.poll_interval = Duration::from_millis(100);
    let app = AppService::new(arm, app.site().clone());

    let prod = app.slot(PRODUCTION, &cancel).await.unwrap();
    let staging = app.slot("staging", &cancel).await.unwrap();
    assert_eq!(prod.state, "Running");
    assert!(
        staging.scm_host.is_some(),
        "the SCM host comes from hostNameSslStates"
    );
    assert_eq!(app.slot_names(&cancel).await.unwrap(), ["staging"]);

    // The token exists and is registered as a secret.
    let token = env.tokens.token(&cancel).await.unwrap();
    assert!(
        env.console
            .secrets()
            .contains_secret(secrecy::ExposeSecret::expose_secret(&token))
    );

    let probe = Probe::new(env.http.clone());
    let before = probe
        .observe(&prod.default_host_name, &endpoints(), None)
        .await;
    assert_eq!(before.version.as_deref(), Some("2.4.0"), "{before:?}");

    // Routing rules: set, read back, clear.
    let rule = RoutingRule {
        action_host_name: staging.default_host_name.clone(),
        reroute_percentage: 10.0,
        name: "staging".into(),
    };
    app.set_routing_rules(std::slice::from_ref(&rule), &cancel)
        .await
        .unwrap();
    assert_eq!(app.routing_rules(&cancel).await.unwrap(), vec![rule]);
    app.set_routing_rules(&[], &cancel).await.unwrap();
    assert!(app.routing_rules(&cancel).await.unwrap().is_empty());

    // Swap: one POST, polled; production now serves what staging held.
    let seq = env.sandbox.handle().last_seq();
    app.swap_into_production("staging", Duration::from_secs(30), &cancel)
        .await
        .unwrap();
    let after = probe
        .observe(&prod.default_host_name, &endpoints(), None)
        .await;
    assert_eq!(after.version.as_deref(), Some("2.3.1"));
    let swaps = env
        .sandbox
        .handle()
        .request_log_since(seq)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("slotsswap"))
        .count();
    assert_eq!(swaps, 1);
    let status = app
        .slot(PRODUCTION, &cancel)
        .await
        .unwrap()
        .swap_status
        .unwrap();
    assert_eq!(
        (
            status.source_slot.as_str(),
            status.destination_slot.as_str()
        ),
        ("staging", "production")
    );

    // Unknown slot: a clear NotFound, not a crash.
    assert!(matches!(
        app.slot("nope", &cancel).await,
        Err(ArmError::NotFound { .. })
    ));
    let (reads, writes) = app.arm().counts();
    assert!(reads > 0 && writes == 3, "reads {reads}, writes {writes}");
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kudu_deploys_a_package_to_one_slot() {
    let env = env(SandboxConfig {
        build_duration: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await;
    let cancel = Cancel::new();
    let app = env.app("app-contoso-payments");
    let staging = app.slot("staging", &cancel).await.unwrap();
    let package = expedite_sandbox::demo_package("2.4.1").unwrap();
    app_service::deploy_package(
        &env.http,
        &env.tokens,
        staging.scm_host.as_deref().unwrap(),
        package,
        Duration::from_secs(30),
        &cancel,
    )
    .await
    .unwrap();
    let probe = Probe::new(env.http.clone());
    let o = probe
        .observe(&staging.default_host_name, &endpoints(), None)
        .await;
    assert_eq!(o.version.as_deref(), Some("2.4.1"));
    let prod = app.slot(PRODUCTION, &cancel).await.unwrap();
    assert_eq!(
        probe
            .observe(&prod.default_host_name, &endpoints(), None)
            .await
            .version
            .as_deref(),
        Some("2.4.0")
    );
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_merge_and_value_matched_delete_leave_other_tags_alone() {
    use std::collections::BTreeMap;
    let env = env(SandboxConfig::default()).await;
    let cancel = Cancel::new();
    let app = env.app("app-contoso-payments");
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    app.merge_tags(&tags(&[("owner", "payments")]), &cancel)
        .await
        .unwrap();
    app.merge_tags(&tags(&[("lease", "run-1")]), &cancel)
        .await
        .unwrap();
    let seen = app.slot(PRODUCTION, &cancel).await.unwrap().tags;
    assert_eq!(
        seen,
        tags(&[("lease", "run-1"), ("owner", "payments")]),
        "merge keeps the others"
    );
    // Deleting with another run's value leaves the tag: a lease is only
    // given back by its holder.
    app.delete_tags(&tags(&[("lease", "run-2")]), &cancel)
        .await
        .unwrap();
    assert!(
        app.slot(PRODUCTION, &cancel)
            .await
            .unwrap()
            .tags
            .contains_key("lease")
    );
    app.delete_tags(&tags(&[("lease", "run-1")]), &cancel)
        .await
        .unwrap();
    assert_eq!(
        app.slot(PRODUCTION, &cancel).await.unwrap().tags,
        tags(&[("owner", "payments")])
    );
    // Tags live on the resource they were set on: the slot has none.
    assert!(app.slot("staging", &cancel).await.unwrap().tags.is_empty());
    // Invalid names are refused as Azure refuses them.
    let bad = app
        .merge_tags(&tags(&[("a/b", "x")]), &cancel)
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("InvalidTagNameCharacters"),
        "{bad}"
    );
    env.sandbox.shutdown().await;
}
