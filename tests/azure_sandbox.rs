//! The product's Azure client (auth, ARM, App Service, Kudu, probes)
//! against the sandbox, through the same code path as against Azure: only
//! the endpoints, host resolution and trusted CA differ.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use expedite::action::console::{Console, Secrets, Style};
use expedite::azure::arm::{Arm, ArmError};
use expedite::azure::auth::{ClientProof, Identity, TokenProvider};
use expedite::cancel::Cancel;
use expedite::http::{self, HttpSettings, ResolveRule};
use expedite::platform::app_service::{self, AppService, PRODUCTION, RoutingRule, SiteRef};
use expedite::probe::{Endpoints, Probe};
use expedite_sandbox::{SandboxConfig, Settings};
use secrecy::SecretString;

struct Env {
    sandbox: expedite_sandbox::Sandbox,
    settings: Settings,
    http: reqwest::Client,
    console: Console,
    tokens: Arc<TokenProvider>,
}

async fn env(config: SandboxConfig) -> Env {
    let sandbox = expedite_sandbox::start(config).await.unwrap();
    let settings = sandbox.settings();
    let http = http::client(&HttpSettings {
        resolve: settings
            .resolve
            .iter()
            .map(|e| ResolveRule {
                host: e.host.clone(),
                addr: e.addr,
            })
            .collect(),
        extra_ca_pem: vec![sandbox.ca_pem().to_string()],
        system_roots: false,
        ..HttpSettings::default()
    })
    .unwrap();
    let console = Console::with_sinks(
        Style::Cli,
        false,
        Secrets::default(),
        Box::new(std::io::sink()),
        Box::new(std::io::sink()),
    );
    let tokens = Arc::new(TokenProvider::new(
        http.clone(),
        url::Url::parse(&settings.authority_host).unwrap(),
        &url::Url::parse(&settings.arm_endpoint).unwrap(),
        Identity {
            tenant_id: settings.tenant_id.clone(),
            client_id: settings.client_id.clone(),
            proof: ClientProof::Secret(SecretString::from(settings.client_secret.clone())),
        },
        console.clone(),
    ));
    Env {
        sandbox,
        settings,
        http,
        console,
        tokens,
    }
}

impl Env {
    fn app(&self, name: &str) -> AppService {
        let arm = Arm::new(
            self.http.clone(),
            url::Url::parse(&self.settings.arm_endpoint).unwrap(),
            self.tokens.clone(),
        );
        AppService::new(
            arm,
            SiteRef {
                subscription: self.settings.subscription_id.clone(),
                resource_group: self.settings.resource_group.clone(),
                app: name.into(),
            },
        )
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
    let package = zip_with_version("2.4.1");
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

/// A minimal zip (stored, no compression) holding `expedite-demo.json`.
fn zip_with_version(version: &str) -> Vec<u8> {
    let name = b"expedite-demo.json";
    let data = format!("{{\"version\":\"{version}\"}}").into_bytes();
    let crc = crc32(&data);
    let mut z = Vec::new();
    let local = z.len() as u32;
    z.extend_from_slice(&0x04034b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name);
    z.extend_from_slice(&data);
    let central = z.len() as u32;
    z.extend_from_slice(&0x02014b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&local.to_le_bytes());
    z.extend_from_slice(name);
    let size = z.len() as u32 - central;
    z.extend_from_slice(&0x06054b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
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
