//! expedite's sandbox: a faithful local emulation of every remote API
//! expedite talks to, served on 127.0.0.1.
//!
//! One HTTPS listener serves every Azure surface, routed by `Host` (SNI when
//! the header is absent), with a CA generated at start:
//! `management.azure.test` (ARM: Microsoft.Web sites/slots/config/swap,
//! Microsoft.App container apps and revisions, Microsoft.Insights metrics),
//! `login.azure.test` (Entra v2.0 token endpoint), `token.actions.test`
//! (GitHub Actions OIDC tokens), `dev.azure.test` (an Azure Pipelines job's
//! OIDC tokens for its service connection), `*.azurewebsites.test` (the demo payments
//! app per slot), `*.scm.azurewebsites.test` (Kudu per slot) and
//! `*.{env}.azurecontainerapps.test` (the demo app per container app and
//! revision), `*.azurestaticapps.test` (the demo store per Static Web Apps
//! environment: production `{site}.azurestaticapps.test`, previews
//! `{site}-{env}.{location}.azurestaticapps.test`) and
//! `{account}.blob.core.test` (Blob Storage, where CI leaves the site zips
//! Static Web Apps' zip deploy fetches). One plain HTTP listener serves the
//! control API `/_sandbox/*`.
//! [`start`] returns a [`Sandbox`] whose [`Settings`] tell a client everything
//! it needs (endpoints, credentials, resolve overrides, CA file).
//!
//! Scenario `contoso` (the incident expedite is born from): subscription
//! `00000000-0000-4000-8000-00000000c0de`, resource group `rg-contoso-prod`,
//! `westeurope`; web apps `app-contoso-payments`, `app-contoso-notifications`
//! and the front end `app-contoso-web`, each with slot `staging`; production serves
//! the bad 2.4.0 (drops orders over 10,000), staging holds 2.3.1; container
//! app `ca-contoso-payments` (Multiple revision mode, one revision serving
//! 2.4.0, traffic `latestRevision: true` at 100 %, so a deploy that does not
//! pin traffic first sends everyone to the new revision); static web app
//! `swa-contoso-store` (Standard, production serving a healthy 2.4.0, no
//! preview environments) and storage account `stcontosobuilds` whose
//! container `store` holds `store-2.4.0.zip`, `store-2.4.1.zip` (healthy),
//! `store-2.4.2-bad.zip` (reports 2.4.2-bad, health checks answer 503) and
//! `store-2.4.3.zip` (mislabelled: reports 2.4.1).

#![recursion_limit = "256"]
// Internal validators return the ready Azure error response as their `Err`;
// those are built once per rejected request, so their size does not matter.
#![allow(clippy::result_large_err)]

mod arm;
pub mod blob;
pub mod containerapps;
mod control;
mod demo;
mod entra;
pub mod faults;
pub mod github;
pub mod hooks;
pub mod hosts;
pub mod kube;
mod kudu;
pub mod log;
pub mod pipelines;
mod proxy;
pub mod ratelimit;
mod respond;
mod server;
pub mod settings;
pub mod staticsites;
mod tls;
mod tokens;
pub mod traffic;
pub mod world;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{ActiveFault, FaultKind, FaultSpec};
pub use hooks::HookMessage;
pub use kudu::demo_package;
pub use log::RequestRecord;
pub use ratelimit::ArmLimits;
pub use settings::{ResolveEntry, Settings};
pub use tls::client_config;
pub use traffic::{TrafficRun, TrafficSpec};
pub use world::{Behaviour, DropoutMode, MetricsDropout, RampUpRule};

use server::{Federated, Kind, Shared};
use world::{Timing, World};

/// Errors starting or driving the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot bind {what} listener on 127.0.0.1:{port}: {source}")]
    Bind {
        what: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error("TLS or token key setup failed: {0}")]
    Tls(String),
    #[error("cannot write the CA certificate to {path}: {source}")]
    WriteCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid request to the sandbox: {0}")]
    Invalid(String),
}

/// Which estate the sandbox starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scenario {
    /// The Contoso payments incident (see the crate docs).
    #[default]
    Contoso,
}

impl FromStr for Scenario {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "contoso" => Ok(Scenario::Contoso),
            other => Err(SandboxError::Invalid(format!(
                "unknown scenario '{other}' (known: contoso)"
            ))),
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub scenario: Scenario,
    /// Seeds traffic splitting, demo error draws and probabilistic faults.
    pub seed: u64,
    /// 0 picks a free port.
    pub https_port: u16,
    /// 0 picks a free port.
    pub http_port: u16,
    /// How long a slot swap takes.
    pub swap_duration: Duration,
    /// How long a Kudu deployment takes from upload to Success/Failed.
    pub build_duration: Duration,
    /// Lifetime of Entra access tokens.
    pub token_lifetime: Duration,
    /// `Retry-After` seconds on swap LRO responses.
    pub retry_after_secs: u32,
    /// Directory for `ca.pem`; `None` makes (and later removes) a temp dir.
    pub ca_dir: Option<PathBuf>,
    /// `sub` of GitHub OIDC tokens and of the federated credential.
    pub oidc_subject: String,
    /// Request-log records kept.
    pub log_capacity: usize,
    /// ARM throttling buckets.
    pub arm_limits: ArmLimits,
    /// Azure Monitor ingestion delay: a minute bucket becomes visible this
    /// long after it starts (Azure takes one to three minutes; 0 shows the
    /// current, partial minute at once).
    pub metrics_latency: Duration,
    /// Items per page of an ARM list (sites, slots, revisions, replicas);
    /// more come through `nextLink` with a `$skiptoken`, as ARM pages
    /// them. `None`: one page.
    pub list_page_size: Option<usize>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            scenario: Scenario::Contoso,
            seed: 0,
            https_port: 0,
            http_port: 0,
            swap_duration: Duration::from_secs(3),
            build_duration: Duration::from_secs(2),
            token_lifetime: Duration::from_secs(3599),
            retry_after_secs: 1,
            ca_dir: None,
            oidc_subject: "repo:contoso/payments:environment:production".into(),
            log_capacity: 100_000,
            arm_limits: ArmLimits::default(),
            metrics_latency: Duration::ZERO,
            list_page_size: None,
        }
    }
}

/// The federated credential audience `azure/login` uses.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A running sandbox. Dropping it stops the listeners; prefer
/// [`Sandbox::shutdown`] to wait for them.
pub struct Sandbox {
    handle: SandboxHandle,
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    settings: Settings,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    temp_dir: Option<PathBuf>,
}

fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn new_world(config: &SandboxConfig) -> World {
    let timing = Timing {
        swap_duration: config.swap_duration,
        build_duration: config.build_duration,
        retry_after_secs: config.retry_after_secs,
        metrics_latency: config.metrics_latency,
    };
    match config.scenario {
        Scenario::Contoso => World::contoso(config.seed, timing, Instant::now()),
    }
}

/// Puts the estate, faults and behaviour table back to the scenario's start
/// (credentials, keys and the request log are kept).
pub(crate) fn reset_world(shared: &Shared) {
    let fresh = new_world(&shared.config);
    *shared.world.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    *shared.arm_limits.lock().unwrap_or_else(|e| e.into_inner()) =
        ratelimit::ArmBuckets::new(shared.config.arm_limits, Instant::now());
    shared.faults().clear();
    // A GitHub rule that drops answers is a fault too.
    shared.github.state().drop_answers.clear();
}

async fn bind(what: &'static str, port: u16) -> Result<TcpListener, SandboxError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|source| SandboxError::Bind { what, port, source })
}

/// Starts a sandbox: binds both listeners, generates the CA and keys, writes
/// `ca.pem`, and serves until [`Sandbox::shutdown`] or drop.
pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
    let https = bind("HTTPS", config.https_port).await?;
    let http = bind("HTTP", config.http_port).await?;
    let proxy_listener = bind("proxy", 0).await?;
    let local = |l: &TcpListener, what: &'static str, port: u16| {
        l.local_addr()
            .map_err(|source| SandboxError::Bind { what, port, source })
    };
    let https_addr = local(&https, "HTTPS", config.https_port)?;
    let http_addr = local(&http, "HTTP", config.http_port)?;
    let proxy_addr = local(&proxy_listener, "proxy", 0)?;

    let world = new_world(&config);
    let mut dns_names = vec![
        hosts::ARM.to_owned(),
        hosts::LOGIN.to_owned(),
        hosts::OIDC.to_owned(),
        hosts::PIPELINES.to_owned(),
        format!("*.{}", hosts::WEB_DOMAIN),
        format!("*.scm.{}", hosts::WEB_DOMAIN),
        github::API_HOST.to_owned(),
        github::GIT_HOST.to_owned(),
    ];
    dns_names.extend(hooks::HOSTS.iter().map(|h| (*h).to_owned()));
    dns_names.push(kube::HOST.to_owned());
    dns_names.push(format!("*.{}", kube::mesh::MESH_DOMAIN));
    let mut concrete_hosts = vec![
        hosts::ARM.to_owned(),
        hosts::LOGIN.to_owned(),
        hosts::OIDC.to_owned(),
    ];
    for site in world.sites.values() {
        for slot in site.slots.values() {
            concrete_hosts.push(slot.host.clone());
            concrete_hosts.push(slot.scm_host.clone());
        }
    }
    dns_names.extend(concrete_hosts.iter().skip(3).cloned());
    for app in world.container_apps.values() {
        dns_names.push(app.fqdn());
        dns_names.push(format!("*.{}", app.env_domain));
    }
    // A wildcard covers one label: previews live one level below the region.
    dns_names.push(format!("*.{}", hosts::STATIC_APPS_DOMAIN));
    let locations: std::collections::BTreeSet<&str> = world
        .static_sites
        .values()
        .map(|s| s.location.as_str())
        .collect();
    for location in locations {
        dns_names.push(format!("*.{location}.{}", hosts::STATIC_APPS_DOMAIN));
    }
    for site in world.static_sites.values() {
        dns_names.extend(site.environments.values().map(|e| e.hostname.clone()));
    }
    dns_names.push(format!("*.{}", hosts::BLOB_DOMAIN));
    dns_names.extend(world.storage_accounts.keys().map(|a| blob::account_host(a)));
    let tls = tls::build(&dns_names)?;

    let (ca_dir, temp_dir) = match &config.ca_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!(
                "expedite-sandbox-{}-{}",
                std::process::id(),
                https_addr.port()
            ));
            (d.clone(), Some(d))
        }
    };
    let ca_path = ca_dir.join("ca.pem");
    std::fs::create_dir_all(&ca_dir)
        .and_then(|()| std::fs::write(&ca_path, &tls.ca_pem))
        .map_err(|source| SandboxError::WriteCa {
            path: ca_path.clone(),
            source,
        })?;

    // Other clients' variables (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, …)
    // replace their trust store, so they get the system's roots and the
    // sandbox CA together: nothing else in that shell stops working.
    let bundle_path = ca_dir.join("ca-bundle.pem");
    let system_roots = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .unwrap_or_default();
    std::fs::write(&bundle_path, format!("{system_roots}\n{}", tls.ca_pem)).map_err(|source| {
        SandboxError::WriteCa {
            path: bundle_path.clone(),
            source,
        }
    })?;

    let arm_base = format!("https://{}", hosts::ARM);
    let authority = format!("https://{}", hosts::LOGIN);
    let federated = Federated {
        issuer: format!("https://{}", hosts::OIDC),
        subject: config.oidc_subject.clone(),
        audience: FEDERATED_AUDIENCE.to_owned(),
    };
    let github = Arc::new(github::GitHub::new(https_addr.port())?);
    let client_secret = format!("sbx~{}", random_token(36));
    let oidc_request_token = random_token(48);
    let pipeline_job = pipelines::PipelineJob::new(random_token(52))?;
    let hook_receivers = hooks::Hooks::new();
    // kubectl and the Kubernetes clients connect to 127.0.0.1 and name the
    // API server in TLS (`tls-server-name`), so no proxy or hosts entry is needed.
    let kube_token = random_token(40);
    let kubeconfig_path = ca_dir.join("kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: https://{https_addr}\n    tls-server-name: {host}\n    certificate-authority: {ca}\nusers:\n- name: expedite\n  user:\n    token: {kube_token}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: expedite\n    namespace: default\ncurrent-context: sandbox\n",
        host = kube::HOST,
        ca = ca_path.display(),
    );
    std::fs::write(&kubeconfig_path, kubeconfig).map_err(|source| SandboxError::WriteCa {
        path: kubeconfig_path.clone(),
        source,
    })?;
    let settings = Settings {
        arm_endpoint: arm_base.clone(),
        authority_host: authority.clone(),
        tenant_id: world.ids.tenant_id.clone(),
        client_id: world.ids.client_id.clone(),
        client_secret: client_secret.clone(),
        subscription_id: world.ids.subscription_id.clone(),
        resource_group: world.ids.resource_group.clone(),
        location: world.ids.location.clone(),
        federated_issuer: federated.issuer.clone(),
        federated_subject: federated.subject.clone(),
        federated_audience: federated.audience.clone(),
        oidc_request_url: format!("https://{}/_apis/oidc/token?api-version=2.0", hosts::OIDC),
        oidc_request_token: oidc_request_token.clone(),
        pipelines_oidc_request_uri: pipeline_job.request_uri(),
        pipelines_access_token: pipeline_job.access_token.clone(),
        pipelines_service_connection_id: pipeline_job.service_connection_id.clone(),
        pipelines_federated_issuer: pipeline_job.issuer.clone(),
        pipelines_federated_subject: pipeline_job.subject.clone(),
        resolve: [
            "*.azure.test".to_owned(),
            "*.actions.test".to_owned(),
            format!("*.{}", hosts::WEB_DOMAIN),
            format!("*.{}", hosts::CONTAINER_APPS_DOMAIN),
            format!("*.{}", hosts::STATIC_APPS_DOMAIN),
            format!("*.{}", kube::mesh::MESH_DOMAIN),
        ]
        .into_iter()
        .chain(world.storage_accounts.keys().map(|a| blob::account_host(a)))
        .chain([github::API_HOST.to_owned(), github::GIT_HOST.to_owned()])
        .chain(hooks::HOSTS.iter().map(|h| (*h).to_owned()))
        .map(|host| ResolveEntry {
            host,
            addr: https_addr,
        })
        .collect(),
        ca_cert_path: ca_path,
        ca_bundle_path: bundle_path,
        https_addr,
        proxy_url: format!("http://{proxy_addr}"),
        control_url: format!("http://{http_addr}"),
        web_apps: world.sites.values().map(|s| s.name.clone()).collect(),
        container_apps: world.container_apps.keys().cloned().collect(),
        static_sites: world.static_sites.keys().cloned().collect(),
        blob_endpoint: world
            .storage_accounts
            .keys()
            .next()
            .map(|a| format!("https://{}", blob::account_host(a)))
            .unwrap_or_default(),
        github_api_url: github.api_url.clone(),
        github_server_url: github.server_url.clone(),
        github_token: github.personal_token.clone(),
        github_app_id: github::APP_ID,
        github_app_private_key_path: github.key_path.clone(),
        slack_webhook_url: hook_receivers.slack_url(),
        teams_webhook_url: hook_receivers.teams_url(),
        pagerduty_routing_key: hook_receivers.pagerduty_key().to_owned(),
        pagerduty_url: hooks::Hooks::pagerduty_url(),
        kubeconfig_path,
        kube_server: format!("https://{https_addr}"),
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        started: Instant::now(),
        world: Mutex::new(world),
        faults: Mutex::new(faults::FaultTable::new(config.seed)),
        log: Mutex::new(log::RequestLog::new(config.log_capacity)),
        entra: tokens::Signer::generate("sandbox-entra-1")?,
        oidc: tokens::Signer::generate("sandbox-oidc-1")?,
        client_secret,
        oidc_request_token,
        federated,
        pipelines: pipeline_job,
        authority,
        arm_base,
        settings: std::sync::OnceLock::new(),
        traffic: Mutex::new(Vec::new()),
        traffic_epoch: std::sync::atomic::AtomicU64::new(0),
        shutdown: shutdown_rx.clone(),
        arm_limits: Mutex::new(ratelimit::ArmBuckets::new(
            config.arm_limits,
            Instant::now(),
        )),
        github,
        hooks: hook_receivers,
        kube: Mutex::new(kube::Cluster::new(kube_token)),
        config,
    });
    let _ = shared.settings.set(settings.clone());

    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
    let tasks = vec![
        tokio::spawn(server::accept_loop(
            https,
            Kind::Https(acceptor),
            shared.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(server::accept_loop(
            http,
            Kind::Control,
            shared.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(proxy::accept_loop(
            proxy_listener,
            https_addr,
            Arc::new(proxy::Allowed(
                settings.resolve.iter().map(|e| e.host.clone()).collect(),
            )),
            shutdown_rx,
        )),
    ];
    Ok(Sandbox {
        handle: SandboxHandle { shared },
        https_addr,
        http_addr,
        ca_pem: tls.ca_pem,
        ca_der: tls.ca_der,
        settings,
        shutdown_tx,
        tasks,
        temp_dir,
    })
}

impl Sandbox {
    /// Address of the HTTPS listener (every Azure surface).
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// Address of the plain HTTP listener (control API).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The sandbox CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The sandbox CA certificate, DER.
    pub fn ca_der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// A ring-provider rustls client configuration trusting only the CA.
    pub fn client_tls_config(&self) -> Result<rustls::ClientConfig, SandboxError> {
        tls::client_config(&self.ca_der)
    }

    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// A clonable handle on this sandbox's state, log and controls.
    pub fn handle(&self) -> SandboxHandle {
        self.handle.clone()
    }

    /// Stops both listeners, letting in-flight requests finish (bounded).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

/// A cheap, clonable view of a running sandbox for tests and tools: state,
/// request log, faults, behaviours, tokens, traffic. [`Sandbox`] derefs to
/// it; [`Sandbox::handle`] hands out clones for other tasks.
#[derive(Clone)]
pub struct SandboxHandle {
    shared: Arc<Shared>,
}

impl SandboxHandle {
    /// How pods of `image` behave in the emulated cluster (an exact image,
    /// or a prefix such as `shop:` for every tag).
    pub fn kube_set_pod_behaviour(&self, image: &str, behaviour: kube::PodBehaviour) {
        self.shared
            .kube()
            .behaviours
            .insert(image.to_owned(), behaviour);
    }

    /// The bearer token the emulated API server accepts (the one in the
    /// kubeconfig it writes).
    pub fn kube_token(&self) -> String {
        self.shared.kube().token().to_owned()
    }

    /// Waits until the Deployment `name` has every replica available
    /// (polling every 50 ms, at most `timeout`); false when it did not.
    pub async fn kube_wait_available(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> bool {
        let started = Instant::now();
        loop {
            if let Some(d) = self.kube_object("deployments", namespace, name) {
                let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
                if d["status"]["availableReplicas"].as_u64().unwrap_or(0) >= want {
                    return true;
                }
            }
            if started.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Puts a demo app on the emulated cluster, as a team's manifests
    /// would: namespace `namespace`, a Deployment `name` of `replicas` pods
    /// running `image` (its tag is the version the pods serve) labelled
    /// `app: name` and `version: {tag}`, and a Service `name` on port 80.
    /// `istio`: the Service selects `app` only, and a VirtualService and a
    /// DestinationRule (both `name`) send all traffic to the tag's subset
    /// (`v` and the tag with `.` as `-`); otherwise the Service selects
    /// the version too (blue-green). Returns every refusal the API server
    /// gave (none when it was applied).
    pub fn kube_seed_app(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        replicas: u32,
        istio: bool,
    ) -> Vec<String> {
        use serde_json::json;
        let tag = image.rsplit_once(':').map_or("latest", |(_, t)| t);
        let subset = format!("v{}", tag.replace('.', "-"));
        let mut selector = json!({"app": name, "version": tag});
        if istio && let Some(m) = selector.as_object_mut() {
            m.remove("version");
        }
        let objects = [
            ("namespaces", "", json!({"metadata": {"name": namespace}})),
            (
                "deployments",
                namespace,
                json!({
                    "metadata": {"name": name, "labels": {"app": name}},
                    "spec": {
                        "replicas": replicas,
                        "selector": {"matchLabels": {"app": name, "version": tag}},
                        "template": {
                            "metadata": {"labels": {"app": name, "version": tag}},
                            "spec": {"containers": [{
                                "name": "app",
                                "image": image,
                                "ports": [{"containerPort": 8080}]
                            }]}
                        }
                    }
                }),
            ),
            (
                "services",
                namespace,
                json!({
                    "metadata": {"name": name},
                    "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}
                }),
            ),
        ];
        let istio_objects = [
            (
                "destinationrules",
                namespace,
                json!({
                    "metadata": {"name": name},
                    "spec": {"host": name, "subsets": [{"name": subset, "labels": {"version": tag}}]}
                }),
            ),
            (
                "virtualservices",
                namespace,
                json!({
                    "metadata": {"name": name},
                    "spec": {"hosts": [name], "http": [{"route": [
                        {"destination": {"host": name, "subset": subset}, "weight": 100}
                    ]}]}
                }),
            ),
        ];
        let mut refused = Vec::new();
        let mut cluster = self.shared.kube();
        let wanted = objects
            .into_iter()
            .chain(istio_objects.into_iter().filter(|_| istio));
        for (plural, ns, body) in wanted {
            let Some(kind) = kube::KINDS.iter().position(|k| k.plural == plural) else {
                refused.push(format!("{plural}: not a kind the sandbox knows"));
                continue;
            };
            if plural == "namespaces" && cluster.object(kind, "", namespace).is_some() {
                continue;
            }
            match cluster.create(kind, ns, body, false) {
                respond::Outcome::Respond(r) if r.status().is_success() => {}
                respond::Outcome::Respond(r) => refused.push(format!("{plural}: {}", r.status())),
                respond::Outcome::Drop => refused.push(format!("{plural}: dropped")),
            }
        }
        kube::controller::reconcile(&mut cluster);
        refused
    }

    /// A Kubernetes object as the API server holds it now (`plural`:
    /// `deployments`, `services`, …; `namespace` empty for cluster-scoped).
    pub fn kube_object(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let kind = kube::KINDS.iter().position(|k| k.plural == plural)?;
        let mut cluster = self.shared.kube();
        kube::controller::reconcile(&mut cluster);
        cluster.object(kind, namespace, name).cloned()
    }

    /// Every concrete host name the scenario serves (for clients that can
    /// only resolve exact names, such as reqwest's `resolve`).
    pub fn hosts(&self) -> Vec<String> {
        let world = self.shared.world();
        let mut v = vec![
            kube::HOST.to_owned(),
            kube::mesh::METRICS_HOST.to_owned(),
            hosts::ARM.to_owned(),
            hosts::LOGIN.to_owned(),
            hosts::OIDC.to_owned(),
            hosts::PIPELINES.to_owned(),
            github::API_HOST.to_owned(),
            github::GIT_HOST.to_owned(),
        ];
        v.extend(hooks::HOSTS.iter().map(|h| (*h).to_owned()));
        for site in world.sites.values() {
            for slot in site.slots.values() {
                v.push(slot.host.clone());
                v.push(slot.scm_host.clone());
            }
        }
        for app in world.container_apps.values() {
            v.push(app.fqdn());
            v.extend(app.revision_order.iter().map(|r| app.revision_fqdn(r)));
        }
        // Preview environments appear with their first deployment: ask again
        // after one to get its host name.
        for site in world.static_sites.values() {
            v.extend(site.environments.values().map(|e| e.hostname.clone()));
        }
        v.extend(world.storage_accounts.keys().map(|a| blob::account_host(a)));
        v
    }

    /// Starts the built-in traffic generator; returns its id.
    pub fn generate_traffic(&self, spec: TrafficSpec) -> Result<u64, SandboxError> {
        traffic::start(&self.shared, spec).map_err(SandboxError::Invalid)
    }

    /// Every traffic generator run so far, with its progress.
    pub fn traffic_runs(&self) -> Vec<TrafficRun> {
        self.shared
            .traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops every running traffic generator.
    pub fn stop_traffic(&self) {
        self.shared
            .traffic_epoch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The whole estate as JSON (what `GET /_sandbox/state` shows as `world`).
    pub fn snapshot(&self) -> serde_json::Value {
        self.shared.world().snapshot(Instant::now())
    }

    /// The version a slot serves now (`production` for the production slot).
    pub fn slot_version(&self, app: &str, slot: &str) -> Option<String> {
        self.shared
            .world()
            .sites
            .get(app)
            .and_then(|s| s.slots.get(slot))
            .map(|s| s.content.build.version.clone())
    }

    /// The version a Static Web Apps environment serves now (`default` for
    /// production); `None` when the site or environment does not exist or
    /// nothing was deployed to it yet.
    pub fn static_site_version(&self, site: &str, env: &str) -> Option<String> {
        self.shared
            .world()
            .static_sites
            .get(site)
            .and_then(|s| s.environments.get(&env.to_ascii_lowercase()))
            .and_then(|e| e.build.as_ref())
            .map(|b| b.version.clone())
    }

    /// The host name of a Static Web Apps environment (`default` for
    /// production), as ARM reports it in `builds/{env}.properties.hostname`.
    pub fn static_site_hostname(&self, site: &str, env: &str) -> Option<String> {
        self.shared
            .world()
            .static_sites
            .get(site)
            .and_then(|s| s.environments.get(&env.to_ascii_lowercase()))
            .map(|e| e.hostname.clone())
    }

    /// Stores a block blob directly (creating the container if needed), as
    /// a CI job's upload would; returns its URL
    /// (`https://{account}.blob.core.test/{container}/{name}`), which Static
    /// Web Apps' zip deploy accepts as `appZipUrl`. The account must exist
    /// (the scenario's is [`staticsites::CONTOSO_BUILDS_ACCOUNT`]).
    pub fn put_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, SandboxError> {
        if container.is_empty() || name.is_empty() || container.contains('/') {
            return Err(SandboxError::Invalid(
                "a blob needs a container (without '/') and a name".into(),
            ));
        }
        let mut world = self.shared.world();
        let Some(acct) = world.storage_accounts.get_mut(account) else {
            return Err(SandboxError::Invalid(format!(
                "no storage account '{account}' in the scenario"
            )));
        };
        acct.containers
            .entry(container.to_owned())
            .or_default()
            .insert(
                name.to_owned(),
                blob::Blob::new(bytes::Bytes::from(bytes), "application/zip"),
            );
        Ok(format!(
            "https://{}/{container}/{name}",
            blob::account_host(account)
        ))
    }

    /// Production's routing rules.
    pub fn routing_rules(&self, app: &str) -> Vec<RampUpRule> {
        self.shared
            .world()
            .sites
            .get(app)
            .map(|s| s.ramp_up_rules.clone())
            .unwrap_or_default()
    }

    /// Every logged HTTPS request.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.log().since(0)
    }

    /// Logged HTTPS requests with `seq > since`.
    pub fn request_log_since(&self, since: u64) -> Vec<RequestRecord> {
        self.shared.log().since(since)
    }

    /// Sequence number of the last logged request (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.shared.log().last_seq()
    }

    pub fn add_fault(&self, spec: FaultSpec) -> Result<u64, SandboxError> {
        self.shared
            .faults()
            .add(spec, Instant::now())
            .map_err(SandboxError::Invalid)
    }

    pub fn faults(&self) -> Vec<ActiveFault> {
        self.shared.faults().list(Instant::now())
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Sets how a version of the demo app behaves.
    pub fn set_behaviour(&self, version: &str, behaviour: Behaviour) -> Result<(), SandboxError> {
        behaviour.validate().map_err(SandboxError::Invalid)?;
        self.shared
            .world()
            .behaviours
            .insert(version.to_owned(), behaviour);
        Ok(())
    }

    /// Makes an Azure Monitor series vanish from now on (the app keeps
    /// serving; only the metrics API stops showing it): see
    /// [`MetricsDropout`]. Replaces an earlier dropout of the same series.
    pub fn drop_metrics(&self, dropout: MetricsDropout) -> Result<(), SandboxError> {
        self.shared
            .world()
            .add_dropout(dropout)
            .map(|_| ())
            .map_err(SandboxError::Invalid)
    }

    /// The series that vanished so far.
    pub fn metrics_dropouts(&self) -> Vec<MetricsDropout> {
        self.shared.world().metrics_dropouts.clone()
    }

    /// Every vanished series comes back (`stale` ones without the requests
    /// served while they were gone).
    pub fn restore_metrics(&self) {
        self.shared.world().metrics_dropouts.clear();
    }

    /// Back to the scenario's starting estate; faults cleared.
    pub fn reset(&self) {
        reset_world(&self.shared);
    }

    /// An ARM access token as the Entra endpoint would issue, valid from
    /// `offset_secs` (negative = in the past) for `lifetime_secs`: lets tests
    /// present expired tokens without waiting.
    pub fn issue_access_token(
        &self,
        offset_secs: i64,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        entra::issue_access_token(
            &self.shared,
            tokens::ARM_AUDIENCE,
            lifetime_secs,
            offset_secs,
        )
    }

    /// An access token for another audience (signed by the sandbox Entra).
    pub fn issue_access_token_for(
        &self,
        audience: &str,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        entra::issue_access_token(&self.shared, audience, lifetime_secs, 0)
    }

    /// An Azure Pipelines OIDC token for the sandbox's service connection
    /// (what its `SYSTEM_OIDCREQUESTURI` mints), valid from `offset_secs`
    /// (negative = in the past) for `lifetime_secs`: lets tests present an
    /// expired one without waiting.
    pub fn issue_pipeline_token(
        &self,
        offset_secs: i64,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        pipelines::issue_token(&self.shared, lifetime_secs, offset_secs)
    }

    /// A GitHub OIDC ID token with the given audience and subject.
    pub fn issue_id_token(
        &self,
        audience: &str,
        subject: &str,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        entra::issue_id_token(&self.shared, audience, subject, lifetime_secs)
    }
}

/// The sandbox GitHub (`api.github.test`, `github.test`).
impl SandboxHandle {
    /// Creates a bare repository `owner/name` (private, like every sandbox
    /// repository) and, with the owner's first repository, the App's
    /// installation for that owner. Returns the bare repository's path so
    /// tests can push fixtures into it with plain git (local pushes skip
    /// protection and permission checks).
    pub fn github_create_repo(
        &self,
        owner: &str,
        name: &str,
        default_branch: &str,
    ) -> Result<PathBuf, SandboxError> {
        self.shared
            .github
            .create_repo(owner, name, default_branch)
            .map_err(SandboxError::Invalid)
    }

    /// Creates a repository whose default branch holds one commit with a
    /// README (refs, the deploy lock among them, cannot be created in an
    /// empty repository).
    pub fn github_create_repo_with_readme(
        &self,
        owner: &str,
        name: &str,
        default_branch: &str,
        readme: &str,
    ) -> Result<PathBuf, SandboxError> {
        let path = self.github_create_repo(owner, name, default_branch)?;
        let fail = |e: String| SandboxError::Invalid(format!("seeding {owner}/{name}: {e}"));
        let blob = github::git_stdin(&path, &["hash-object", "-w", "--stdin"], readme.as_bytes())
            .map_err(fail)?;
        let tree = github::git_stdin(
            &path,
            &["mktree"],
            format!("100644 blob {}\tREADME.md\n", blob.trim()).as_bytes(),
        )
        .map_err(fail)?;
        let commit = github::git_cmd(&path)
            .args(["commit-tree", tree.trim(), "-m", "initial commit"])
            .env("GIT_AUTHOR_NAME", "Contoso")
            .env("GIT_AUTHOR_EMAIL", "dev@contoso.test")
            .env("GIT_COMMITTER_NAME", "Contoso")
            .env("GIT_COMMITTER_EMAIL", "dev@contoso.test")
            .output()
            .map_err(|e| fail(e.to_string()))?;
        if !commit.status.success() {
            return Err(fail(String::from_utf8_lossy(&commit.stderr).into_owned()));
        }
        let sha = String::from_utf8_lossy(&commit.stdout).trim().to_string();
        github::git(
            &path,
            &["update-ref", &format!("refs/heads/{default_branch}"), &sha],
        )
        .map_err(fail)?;
        Ok(path)
    }

    /// Protects a branch: pushes to it are refused (`GH006`), and so are
    /// REST ref updates and deletions.
    pub fn github_protect_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<(), SandboxError> {
        self.shared
            .github
            .protect_branch(owner, repo, branch, true)
            .map_err(SandboxError::Invalid)
    }

    pub fn github_unprotect_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<(), SandboxError> {
        self.shared
            .github
            .protect_branch(owner, repo, branch, false)
            .map_err(SandboxError::Invalid)
    }

    /// Replaces the permissions of `owner`'s installation (e.g. everything
    /// but `workflows`); tokens minted afterwards get them. Returns the
    /// installation id.
    pub fn github_set_installation_permissions(
        &self,
        owner: &str,
        permissions: &[(&str, &str)],
    ) -> Result<u64, SandboxError> {
        let map = permissions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.shared
            .github
            .set_installation_permissions(owner, map)
            .map_err(SandboxError::Invalid)
    }

    /// Creates or updates workflow run `id` of `owner/repo` (what
    /// `GET /repos/{owner}/{repo}/actions/runs/{id}` answers): `status` is
    /// one of GitHub's (`queued`, `in_progress`, `completed`, …) and
    /// `conclusion` is `None` until the run is `completed`, then one of
    /// GitHub's (`success`, `failure`, `cancelled`, …). A new run is named
    /// `deploy`, runs `.github/workflows/deploy.yml` on `workflow_dispatch`
    /// at the default branch's head; the control API
    /// (`PUT /_sandbox/github/repos/{owner}/{repo}/runs/{id}`) can set those
    /// too.
    pub fn github_set_workflow_run(
        &self,
        owner: &str,
        repo: &str,
        id: u64,
        status: &str,
        conclusion: Option<&str>,
    ) -> Result<(), SandboxError> {
        let update = github::RunUpdate {
            status: status.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            ..Default::default()
        };
        self.shared
            .github
            .set_workflow_run(owner, repo, id, update)
            .map_err(SandboxError::Invalid)
    }

    /// The App installation for `owner` (exists once `owner` has a repository).
    pub fn github_installation_id(&self, owner: &str) -> Option<u64> {
        self.shared.github.installation_id(owner)
    }

    /// The bare repository of `owner/repo`.
    pub fn github_repo_path(&self, owner: &str, repo: &str) -> Option<PathBuf> {
        self.shared.github.repo_path(owner, repo)
    }

    /// The personal token (`ghp_sandbox…`, random per start, every
    /// permission; exported as `EXPEDITE_SANDBOX_GITHUB_TOKEN`).
    pub fn github_token(&self) -> String {
        self.shared.github.personal_token.clone()
    }

    /// The sandbox App's id ([`github::APP_ID`]).
    pub fn github_app_id(&self) -> u64 {
        github::APP_ID
    }

    /// The sandbox App's private key: a fixed TEST key, PEM.
    pub fn github_app_private_key_pem(&self) -> &'static str {
        github::APP_PRIVATE_KEY_PEM
    }

    /// An App JWT signed with the App key, `iat = now + iat_offset_secs`,
    /// `exp = iat + lifetime_secs` (lets tests present expired or
    /// too-long-lived JWTs).
    pub fn github_app_jwt(
        &self,
        iat_offset_secs: i64,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        self.shared.github.app_jwt(iat_offset_secs, lifetime_secs)
    }

    /// `https://github.test/{owner}/{repo}.git`.
    pub fn github_clone_url(&self, owner: &str, repo: &str) -> String {
        format!("{}/{owner}/{repo}.git", self.shared.github.server_url)
    }

    /// Git configuration that reaches the sandbox's `github.test`, as
    /// `(key, value)` pairs: trust the CA (`http.sslCAInfo`), resolve
    /// `github.test:{port}` to 127.0.0.1 (`http.curloptResolve`), and
    /// rewrite `https://github.test/` to `https://github.test:{port}/`
    /// (`url.<base>.insteadOf`, since curl's resolve cannot change ports).
    /// Needs git ≥ 2.37 for `http.curloptResolve`.
    pub fn git_config(&self) -> Vec<(String, String)> {
        let ca = self
            .shared
            .settings
            .get()
            .map(|s| s.ca_cert_path.clone())
            .unwrap_or_default();
        self.shared.github.git_config(&ca)
    }

    /// [`Self::git_config`] as `git` arguments: `-c key=value` pairs.
    pub fn git_config_args(&self) -> Vec<String> {
        self.git_config()
            .into_iter()
            .flat_map(|(k, v)| ["-c".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// [`Self::git_config`] as `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
    /// `GIT_CONFIG_VALUE_n` environment variables (for git run by a program).
    pub fn git_config_env(&self) -> Vec<(String, String)> {
        let cfg = self.git_config();
        let mut env = vec![("GIT_CONFIG_COUNT".to_owned(), cfg.len().to_string())];
        for (i, (k, v)) in cfg.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), k));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), v));
        }
        env
    }
}

impl std::ops::Deref for Sandbox {
    type Target = SandboxHandle;

    fn deref(&self) -> &SandboxHandle {
        &self.handle
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        self.handle.shared.github.cleanup();
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
