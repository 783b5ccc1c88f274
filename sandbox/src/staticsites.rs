//! Azure Static Web Apps state (`Microsoft.Web/staticSites`): sites, their
//! environments (ARM "builds": `default` is production, any other name a
//! preview environment), what each environment serves, and the zip-deploy
//! and delete operations that change them.
//!
//! An environment serves the demo app like an App Service slot: the build is
//! read from the deployed zip's `expedite-demo.json` exactly as Kudu reads a
//! package ([`crate::kudu`]), so `/api/version`, `/health` and `/api/health`
//! on its host answer with that build's version and behaviour. Operations
//! complete lazily in [`World::advance`], over the world's build duration.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::hosts;
use crate::world::{Behaviour, Build, OpStatus, OrderBook, Process, World};

/// Name of the production environment in ARM paths and bodies.
pub const PRODUCTION_ENVIRONMENT: &str = "default";
/// Preview (staging) environments a Standard plan allows (quotas.md).
pub const MAX_PREVIEW_ENVIRONMENTS: usize = 10;
/// The scenario's static web app.
pub const CONTOSO_STATIC_SITE: &str = "swa-contoso-store";
/// The scenario's storage account holding CI-built site zips.
pub const CONTOSO_BUILDS_ACCOUNT: &str = "stcontosobuilds";
/// The container of the scenario's site zips.
pub const CONTOSO_BUILDS_CONTAINER: &str = "store";

/// `StaticSiteBuildARMResource.properties.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BuildStatus {
    WaitingForDeployment,
    Uploading,
    Deploying,
    Ready,
    Failed,
    Deleting,
}

/// One environment of a static site (ARM calls it a build).
#[derive(Debug, Clone)]
pub struct Environment {
    /// Lower-case name; `default` is production.
    pub name: String,
    pub hostname: String,
    pub status: BuildStatus,
    pub created_utc: DateTime<Utc>,
    pub last_updated_utc: DateTime<Utc>,
    /// What the host serves; `None` until a first deployment succeeds.
    pub build: Option<Build>,
    pub process: Process,
    pub source_branch: Option<String>,
    pub pull_request_title: Option<String>,
    /// `deploymentTitle` of the last zip deployment.
    pub deployment_title: Option<String>,
    /// Id of the operation deploying or deleting it.
    pub busy: Option<String>,
}

/// A static web app.
#[derive(Debug, Clone)]
pub struct StaticSite {
    pub name: String,
    /// Short region name (`westeurope`): preview host names carry it.
    pub location: String,
    pub default_hostname: String,
    /// Environment name → environment; `default` is always there.
    pub environments: BTreeMap<String, Environment>,
    /// The deployment token (`listSecrets` → `properties.apiKey`).
    pub api_key: String,
    pub dns_ownership_key: String,
    /// "The provider that submitted the last deployment to the primary
    /// environment of the static site."
    pub provider: Option<String>,
    /// The store's database, shared by its environments like a real one.
    pub orders: OrderBook,
}

/// What a static-site operation does when it completes.
#[derive(Debug, Clone)]
pub enum StaticOpKind {
    /// Serve this build (read from the zip when the request came in), or
    /// fail with this message.
    ZipDeploy {
        outcome: Result<Build, String>,
        provider: Option<String>,
    },
    DeleteBuild,
}

/// A zip deployment or build deletion (an `Azure-AsyncOperation` LRO).
#[derive(Debug, Clone)]
pub struct StaticSiteOperation {
    pub id: String,
    pub site: String,
    pub environment: String,
    pub kind: StaticOpKind,
    pub started_utc: DateTime<Utc>,
    pub started_at: Instant,
    pub completes_at: Instant,
    pub status: OpStatus,
}

/// `{name}.azurestaticapps.test`: the site's `defaultHostname`.
pub fn default_hostname(name: &str) -> String {
    format!("{name}.{}", hosts::STATIC_APPS_DOMAIN)
}

/// An environment's host name: production's is the default host name; a
/// preview environment's is `{first label}-{env}.{location}.{domain}`, the
/// documented `<host>-<env>.<location>.azurestaticapps.net` form.
pub fn environment_hostname(default_hostname: &str, env: &str, location: &str) -> String {
    if env == PRODUCTION_ENVIRONMENT {
        return default_hostname.to_owned();
    }
    let first = default_hostname
        .split('.')
        .next()
        .unwrap_or(default_hostname);
    format!("{first}-{env}.{location}.{}", hosts::STATIC_APPS_DOMAIN)
}

/// True for a name a preview environment may have: 1 to 40 letters, digits
/// or hyphens, not starting or ending with a hyphen (it becomes part of a
/// DNS label).
pub fn valid_environment_name(env: &str) -> bool {
    (1..=40).contains(&env.len())
        && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !env.starts_with('-')
        && !env.ends_with('-')
}

impl Environment {
    pub fn new(site: &StaticSite, name: &str, now: Instant) -> Self {
        let utc = Utc::now();
        Environment {
            name: name.to_owned(),
            hostname: environment_hostname(&site.default_hostname, name, &site.location),
            status: BuildStatus::WaitingForDeployment,
            created_utc: utc,
            last_updated_utc: utc,
            build: None,
            process: Process::started_at(now),
            source_branch: None,
            pull_request_title: None,
            deployment_title: None,
            busy: None,
        }
    }
}

impl StaticSite {
    /// The Contoso store: production serves 2.4.0 (healthy), no previews.
    pub fn contoso(location: &str, now: Instant) -> Self {
        let mut site = StaticSite {
            name: CONTOSO_STATIC_SITE.into(),
            location: location.to_owned(),
            default_hostname: default_hostname(CONTOSO_STATIC_SITE),
            environments: BTreeMap::new(),
            api_key: crate::random_token(56),
            dns_ownership_key: crate::random_token(32),
            provider: Some("GitHub".into()),
            orders: OrderBook::default(),
        };
        let mut prod = Environment::new(&site, PRODUCTION_ENVIRONMENT, now);
        let yesterday = Utc::now() - chrono::Duration::days(1);
        prod.created_utc = yesterday - chrono::Duration::days(30);
        prod.last_updated_utc = yesterday;
        prod.status = BuildStatus::Ready;
        prod.source_branch = Some("main".into());
        prod.build = Some(contoso_build("store-2.4.0.zip"));
        site.environments
            .insert(PRODUCTION_ENVIRONMENT.to_owned(), prod);
        site
    }

    /// Preview environments (every one but `default`).
    pub fn preview_count(&self) -> usize {
        self.environments
            .keys()
            .filter(|k| *k != PRODUCTION_ENVIRONMENT)
            .count()
    }

    pub fn resource_id(&self, sub: &str, rg: &str) -> String {
        format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/staticSites/{}",
            self.name
        )
    }
}

/// The store's builds as the scenario seeds them in `stcontosobuilds/store`,
/// as (blob name, version in its `expedite-demo.json`, packaged behaviour):
/// - `store-2.4.0.zip`: 2.4.0, what production serves; it carries its
///   (healthy) behaviour, so the shared table's 2.4.0 entry — the payments
///   bug — does not apply to the store;
/// - `store-2.4.1.zip`: 2.4.1, the good new version;
/// - `store-2.4.2-bad.zip`: 2.4.2-bad, whose health checks answer 503;
/// - `store-2.4.3.zip`: a mislabelled build that reports 2.4.1 (CI zipped
///   the wrong output), healthy: only a version check catches it.
pub(crate) fn contoso_store_packages() -> Vec<(&'static str, &'static str, Option<Behaviour>)> {
    vec![
        ("store-2.4.0.zip", "2.4.0", Some(Behaviour::default())),
        ("store-2.4.1.zip", "2.4.1", None),
        (
            "store-2.4.2-bad.zip",
            "2.4.2-bad",
            Some(Behaviour {
                health_status: Some(503),
                ..Behaviour::default()
            }),
        ),
        ("store-2.4.3.zip", "2.4.1", None),
    ]
}

/// The build of one of [`contoso_store_packages`], as if deployed from it.
fn contoso_build(blob: &str) -> Build {
    let (version, behaviour) = contoso_store_packages()
        .into_iter()
        .find(|(name, _, _)| *name == blob)
        .map(|(_, v, b)| (v, b))
        .unwrap_or(("0.0.0", None));
    let package = crate::kudu::package_for(version, behaviour.as_ref())
        .ok()
        .map(bytes::Bytes::from);
    Build {
        version: version.to_owned(),
        behaviour,
        deployment_id: None,
        package,
    }
}

/// Where a static-site host name points: (site, environment).
pub fn resolve_host(world: &World, host: &str) -> Option<(String, String)> {
    world.static_sites.values().find_map(|site| {
        site.environments
            .values()
            .find(|e| e.hostname == host)
            .map(|e| (site.name.clone(), e.name.clone()))
    })
}

/// How far along a running deployment is: the first 30 % of the build time
/// is the upload, the rest the deployment.
fn progress(op: &StaticSiteOperation, now: Instant) -> BuildStatus {
    let total = op.completes_at.saturating_duration_since(op.started_at);
    let elapsed = now.saturating_duration_since(op.started_at);
    if elapsed < total.mul_f64(0.3) {
        BuildStatus::Uploading
    } else {
        BuildStatus::Deploying
    }
}

impl World {
    /// Applies due static-site operations and refreshes the status of the
    /// running ones (called from [`World::advance`]).
    pub(crate) fn advance_static_sites(&mut self, now: Instant) {
        let mut due = Vec::new();
        for op in self.static_operations.values() {
            if !matches!(op.status, OpStatus::Running) {
                continue;
            }
            if op.completes_at <= now {
                due.push(op.id.clone());
            } else if let StaticOpKind::ZipDeploy { .. } = op.kind
                && let Some(env) = self
                    .static_sites
                    .get_mut(&op.site)
                    .and_then(|s| s.environments.get_mut(&op.environment))
            {
                env.status = progress(op, now);
            }
        }
        for id in due {
            self.complete_static_op(&id, now);
        }
    }

    fn complete_static_op(&mut self, id: &str, now: Instant) {
        let Some(op) = self.static_operations.get(id).cloned() else {
            return;
        };
        let mut result = OpStatus::Succeeded;
        if let Some(site) = self.static_sites.get_mut(&op.site) {
            match op.kind {
                StaticOpKind::DeleteBuild => {
                    site.environments.remove(&op.environment);
                }
                StaticOpKind::ZipDeploy { outcome, provider } => {
                    let production = op.environment == PRODUCTION_ENVIRONMENT;
                    if let Some(env) = site.environments.get_mut(&op.environment) {
                        env.busy = None;
                        env.last_updated_utc = Utc::now();
                        match outcome {
                            Ok(build) => {
                                env.build = Some(build);
                                env.status = BuildStatus::Ready;
                                env.process.restart(now);
                            }
                            Err(message) => {
                                // The previous content (if any) keeps serving.
                                env.status = BuildStatus::Failed;
                                result = OpStatus::Failed {
                                    http_status: 200,
                                    code: "DeploymentFailed".into(),
                                    message,
                                };
                            }
                        }
                    }
                    if production && matches!(result, OpStatus::Succeeded) {
                        site.provider = provider;
                    }
                }
            }
        }
        if let Some(op) = self.static_operations.get_mut(id) {
            op.status = result;
        }
    }

    /// Keeps the static-site operation table bounded (like the swap table).
    pub(crate) fn prune_static_operations(&mut self) {
        const KEEP: usize = 1000;
        if self.static_operations.len() <= KEEP {
            return;
        }
        let mut done: Vec<(DateTime<Utc>, String)> = self
            .static_operations
            .values()
            .filter(|o| !matches!(o.status, OpStatus::Running))
            .map(|o| (o.started_utc, o.id.clone()))
            .collect();
        done.sort();
        for (_, id) in done.iter().take(self.static_operations.len() - KEEP) {
            self.static_operations.remove(id);
        }
    }

    /// The static sites as JSON for [`World::snapshot`].
    pub(crate) fn static_sites_snapshot(&self, now: Instant) -> Value {
        let sites: serde_json::Map<String, Value> = self
            .static_sites
            .values()
            .map(|site| {
                let envs: serde_json::Map<String, Value> = site
                    .environments
                    .values()
                    .map(|e| {
                        (
                            e.name.clone(),
                            json!({
                                "hostname": e.hostname,
                                "status": e.status,
                                "version": e.build.as_ref().map(|b| b.version.clone()),
                                "behaviour": e.build.as_ref().map(|b| self.effective_behaviour(b, e.process.started, now)),
                                "deploymentTitle": e.deployment_title,
                                "busyOperationId": e.busy,
                                "processRestarts": e.process.restarts,
                            }),
                        )
                    })
                    .collect();
                (
                    site.name.clone(),
                    json!({
                        "defaultHostname": site.default_hostname,
                        "location": site.location,
                        "provider": site.provider,
                        "environments": envs,
                        "orders": site.orders.len(),
                    }),
                )
            })
            .collect();
        Value::Object(sites)
    }
}

/// How long a zip deployment or a build deletion takes.
pub(crate) fn operation_duration(world: &World) -> Duration {
    world.timing.build_duration
}
