//! The product's Azure clients pointed at a sandbox, the way a user's
//! settings point them: the sandbox's endpoints, its resolve rules and CA,
//! a client secret. Shared by the integration tests and `bench_deploy`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::sync::Arc;

use expedite::action::console::{Console, Secrets, Style};
use expedite::azure::arm::Arm;
use expedite::azure::auth::{ClientProof, Identity, TokenProvider};
use expedite::http::{self, HttpSettings, ResolveRule};
use expedite::platform::app_service::{AppService, SiteRef};
use expedite_sandbox::{Sandbox, Settings};

/// Clients for one sandbox.
pub struct Clients {
    /// The sandbox's settings.
    pub settings: Settings,
    /// HTTP client trusting the sandbox CA and resolving its hosts.
    pub http: reqwest::Client,
    /// Entra tokens from the sandbox.
    pub tokens: Arc<TokenProvider>,
    /// Where masks are registered (output discarded).
    pub console: Console,
}

/// Builds the clients for `sandbox`.
pub fn clients(sandbox: &Sandbox) -> Clients {
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
            proof: ClientProof::Secret(settings.client_secret.clone().into()),
        },
        console.clone(),
    ));
    Clients {
        settings,
        http,
        tokens,
        console,
    }
}

impl Clients {
    /// An ARM client (its own call counters).
    pub fn arm(&self) -> Arm {
        Arm::new(
            self.http.clone(),
            url::Url::parse(&self.settings.arm_endpoint).unwrap(),
            self.tokens.clone(),
        )
    }

    /// App Service operations on `app` in the sandbox's resource group.
    pub fn app(&self, arm: Arm, app: &str) -> AppService {
        AppService::new(
            arm,
            SiteRef {
                subscription: self.settings.subscription_id.clone(),
                resource_group: self.settings.resource_group.clone(),
                app: app.into(),
            },
        )
    }
}
