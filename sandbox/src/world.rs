//! The emulated Azure estate: web apps and their slots, what each slot
//! serves, routing rules, swap operations, Kudu deployments, container apps,
//! static web apps and their environments ([`crate::staticsites`]), blob
//! storage accounts ([`crate::blob`]), demo-app behaviour by version, and the
//! traffic each slot really served.
//!
//! Time-driven changes (a swap finishing, a build completing) are applied
//! lazily by [`World::advance`], which every reader calls first: the estate
//! only changes when somebody looks, so no background task can race a test.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::blob::{Blob, StorageAccount};
use crate::containerapps::{AppOperation, ContainerApp};
use crate::hosts;
use crate::staticsites::{
    CONTOSO_BUILDS_ACCOUNT, CONTOSO_BUILDS_CONTAINER, StaticSite, StaticSiteOperation,
};

/// Name of the production slot in ARM bodies (`targetSlot: "production"`).
pub const PRODUCTION: &str = "production";

/// How a build of the demo app behaves. Unset fields mean "healthy".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Orders with an amount above this are answered 200 but never recorded
    /// (the 2.4.0 bug).
    pub drops_orders_over: Option<f64>,
    /// Status `/health` answers with (default 200).
    pub health_status: Option<u16>,
    /// Every request answers App Service's 503 "Application Error" page, as
    /// when the process keeps crashing on start.
    pub crash_loop: bool,
    /// Fraction (0..=1) of `/api/*` requests answered 500.
    pub error_rate: f64,
    /// How the errors come: 1 (the default) makes each `/api/*` request
    /// fail on its own; k > 1 makes them come in runs of k consecutive
    /// failing `/api/*` requests of the same process (a slot's content or a
    /// revision; a restart ends a run), as a request and its retries or one
    /// sick instance do. A run starts on a request outside one with
    /// probability `q = r / (k·(1 − r) + r)` (about `r / k`), which keeps
    /// the long-run failing fraction at `error_rate` exactly. At most 1000.
    pub error_clump: u64,
    /// Fraction (0..=1) of requests delayed by `slow_ms`.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// The faults above start only this many seconds after the process
    /// started (a regression that appears under load, after a while).
    pub regression_after_secs: Option<u64>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            drops_orders_over: None,
            health_status: None,
            crash_loop: false,
            error_rate: 0.0,
            error_clump: 1,
            slow_rate: 0.0,
            slow_ms: 0,
            regression_after_secs: None,
        }
    }
}

/// Longest run of failing requests [`Behaviour::error_clump`] accepts.
pub const MAX_ERROR_CLUMP: u64 = 1000;

impl Behaviour {
    /// Probability that a request outside a run of failures starts one:
    /// `r / (k·(1 − r) + r)`, so that runs of `k` failures make up the
    /// fraction `r` of all requests (renewal argument: a cycle is a
    /// geometric number of good requests, mean `(1 − q)/q`, then `k` bad
    /// ones). `r` for `k = 1`.
    pub fn clump_start_probability(&self) -> f64 {
        let r = self.error_rate.clamp(0.0, 1.0);
        let k = self.error_clump.max(1) as f64;
        let d = k * (1.0 - r) + r;
        if d > 0.0 {
            (r / d).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("slow_rate", self.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be within 0..=1, got {v}"));
            }
        }
        if let Some(s) = self.health_status
            && !(100..=599).contains(&s)
        {
            return Err(format!("health_status must be an HTTP status, got {s}"));
        }
        if self.slow_ms > 120_000 {
            return Err("slow_ms must be at most 120000".into());
        }
        if !(1..=MAX_ERROR_CLUMP).contains(&self.error_clump) {
            return Err(format!(
                "error_clump must be within 1..={MAX_ERROR_CLUMP} (1: independent errors), got {}",
                self.error_clump
            ));
        }
        Ok(())
    }
}

/// How an Azure Monitor series goes missing ([`MetricsDropout`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropoutMode {
    /// Ingestion stops: requests served from now on are not counted, the
    /// minutes already counted stay, newer minutes carry no value (a
    /// stalled metrics pipeline, what a real dropped series mostly looks
    /// like from a query that started before it).
    #[default]
    Stale,
    /// The series is gone from every answer, past minutes included: App
    /// Service answers `"timeseries": []`, Container Apps leaves the
    /// revision out of the split (a query that no longer matches any
    /// series).
    Empty,
}

/// An Azure Monitor series that vanishes from now on: one App Service slot
/// (`slot`, `production` for the site itself) or one Container Apps
/// revision (`revision`) of `app`. Only the metrics API is affected: the
/// app keeps serving, and its Prometheus `/metrics` keeps counting
/// (`POST /_sandbox/metrics/dropouts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsDropout {
    /// A web app or a container app of the scenario.
    pub app: String,
    /// App Service: the slot whose series vanishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Container Apps: the revision whose series vanishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default)]
    pub mode: DropoutMode,
}

impl MetricsDropout {
    /// Lower-cases the names and checks them against the estate.
    pub(crate) fn checked(mut self, world: &World) -> Result<Self, String> {
        self.app = self.app.to_ascii_lowercase();
        self.slot = self.slot.map(|s| s.to_ascii_lowercase());
        self.revision = self.revision.map(|r| r.to_ascii_lowercase());
        match (&self.slot, &self.revision) {
            (Some(slot), None) => {
                let Some(site) = world.sites.get(&self.app) else {
                    return Err(format!("no web app '{}' in the scenario", self.app));
                };
                if !site.slots.contains_key(slot) {
                    return Err(format!("web app '{}' has no slot '{slot}'", self.app));
                }
            }
            (None, Some(rev)) => {
                let Some(app) = world.container_apps.get(&self.app) else {
                    return Err(format!("no container app '{}' in the scenario", self.app));
                };
                if !app.revisions.contains_key(rev) {
                    return Err(format!(
                        "container app '{}' has no revision '{rev}'",
                        self.app
                    ));
                }
            }
            _ => {
                return Err(
                    "name exactly one of slot (a web app's) or revision (a container app's)".into(),
                );
            }
        }
        Ok(self)
    }

    fn matches_slot(&self, site: &str, slot: &str) -> bool {
        self.app == site && self.slot.as_deref() == Some(slot)
    }

    fn matches_revision(&self, app: &str, revision: &str) -> bool {
        self.app == app && self.revision.as_deref() == Some(revision)
    }
}

/// The default behaviour table: 2.3.1 good, 2.4.0 drops large orders,
/// 2.4.1 fixed. Versions not in the table behave well.
pub fn default_behaviours() -> BTreeMap<String, Behaviour> {
    let mut t = BTreeMap::new();
    t.insert("2.3.1".to_owned(), Behaviour::default());
    t.insert(
        "2.4.0".to_owned(),
        Behaviour {
            drops_orders_over: Some(10_000.0),
            ..Behaviour::default()
        },
    );
    t.insert("2.4.1".to_owned(), Behaviour::default());
    t
}

/// What a slot's content runs.
#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub version: String,
    /// Behaviour shipped inside the package, overriding the table.
    pub behaviour: Option<Behaviour>,
    pub deployment_id: Option<String>,
    /// The exact package Kudu received for this build, if it came through
    /// Kudu (what `GET /api/zip/site/wwwroot/` hands back). Only the serving
    /// build keeps it: the deployment record drops its copy when it
    /// completes.
    #[serde(skip)]
    pub package: Option<bytes::Bytes>,
}

/// One Kudu deployment (reference §4.4 `DeployResult`).
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub status: u8,
    pub deployer: String,
    pub message: String,
    pub received_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub received_at: Instant,
    pub done_at: Instant,
    /// What completion does: serve this build, or fail with this message.
    pub outcome: Result<Build, String>,
    pub log: Vec<(DateTime<Utc>, String)>,
    pub complete: bool,
    pub active: bool,
}

impl Deployment {
    pub fn status_text(&self) -> &'static str {
        match self.status {
            0 => "Pending",
            1 => "Building",
            2 => "Deploying",
            3 => "Failed",
            _ => "Success",
        }
    }

    fn refresh(&mut self, now: Instant) {
        if self.complete {
            return;
        }
        let total = self.done_at.saturating_duration_since(self.received_at);
        let elapsed = now.saturating_duration_since(self.received_at);
        self.status = if elapsed < total.mul_f64(0.2) {
            0
        } else if elapsed < total.mul_f64(0.7) {
            1
        } else {
            2
        };
    }
}

/// A slot's deployable content: code, non-sticky settings travel with it on
/// a swap, and so does its deployment history (it lives in the slot's files).
#[derive(Debug, Clone)]
pub struct Content {
    pub build: Build,
    pub app_settings: BTreeMap<String, String>,
    pub deployments: Vec<Deployment>,
}

/// A running process: restarts reset its Prometheus counters, as a real
/// process restart would.
#[derive(Debug, Clone)]
pub struct Process {
    pub started: Instant,
    pub restarts: u32,
    pub metrics: PromMetrics,
}

impl Process {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            restarts: 0,
            metrics: PromMetrics::default(),
        }
    }

    pub(crate) fn restart(&mut self, now: Instant) {
        self.started = now;
        self.restarts += 1;
        self.metrics = PromMetrics::default();
    }
}

/// Histogram bucket bounds in seconds for `http_request_duration_seconds`.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters the demo app exposes on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct PromMetrics {
    /// (code, method, path) → count.
    pub requests: BTreeMap<(u16, String, String), u64>,
    /// path → (bucket counts, sum, count).
    pub durations: BTreeMap<String, (Vec<u64>, f64, u64)>,
}

impl PromMetrics {
    pub fn record(&mut self, code: u16, method: &str, path: &str, secs: f64) {
        *self
            .requests
            .entry((code, method.to_owned(), path.to_owned()))
            .or_insert(0) += 1;
        let entry = self
            .durations
            .entry(path.to_owned())
            .or_insert_with(|| (vec![0; DURATION_BUCKETS.len()], 0.0, 0));
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound
                && let Some(b) = entry.0.get_mut(i)
            {
                *b += 1;
            }
        }
        entry.1 += secs;
        entry.2 += 1;
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total Requests served, by status code, method and path.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for ((code, method, path), n) in &self.requests {
            out.push_str(&format!(
                "http_requests_total{{code=\"{code}\",method=\"{method}\",path=\"{path}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (path, (buckets, sum, count)) in &self.durations {
            for (bound, n) in DURATION_BUCKETS.iter().zip(buckets) {
                out.push_str(&format!(
                    "http_request_duration_seconds_bucket{{path=\"{path}\",le=\"{bound}\"}} {n}\n"
                ));
            }
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{path=\"{path}\",le=\"+Inf\"}} {count}\n"
            ));
            out.push_str(&format!(
                "http_request_duration_seconds_sum{{path=\"{path}\"}} {sum}\n"
            ));
            out.push_str(&format!(
                "http_request_duration_seconds_count{{path=\"{path}\"}} {count}\n"
            ));
        }
        out
    }
}

/// Per-minute traffic a slot (an ARM resource id) served: the raw material
/// for Azure Monitor metrics, which stay with the slot, not the code.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MinuteStats {
    pub requests: u64,
    pub http2xx: u64,
    pub http3xx: u64,
    pub http4xx: u64,
    pub http5xx: u64,
    pub response_time_sum_secs: f64,
}

/// App Service `slotSwapStatus`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotSwapStatus {
    pub timestamp_utc: String,
    pub source_slot_name: String,
    pub destination_slot_name: String,
}

/// `Running` / `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunState {
    Running,
    Stopped,
}

/// One slot (production included).
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub host: String,
    pub scm_host: String,
    pub state: RunState,
    /// SiteConfig fields other than `experiments` (not swapped).
    pub config: Map<String, Value>,
    pub content: Content,
    pub process: Process,
    pub slot_swap_status: Option<SlotSwapStatus>,
    /// Unix minute → stats.
    pub monitor: BTreeMap<i64, MinuteStats>,
    /// App settings saved by `applySlotConfig`, restored by `resetSlotConfig`.
    pub preview_saved_settings: Option<BTreeMap<String, String>>,
}

/// `experiments.rampUpRules[]` entry (reference §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RampUpRule {
    pub action_host_name: String,
    pub reroute_percentage: f64,
    pub change_step: Option<f64>,
    pub change_interval_in_minutes: Option<i64>,
    pub min_reroute_percentage: Option<f64>,
    pub max_reroute_percentage: Option<f64>,
    pub change_decision_callback_url: Option<String>,
    pub name: String,
}

/// `config/slotConfigNames`: the sticky setting names.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotConfigNames {
    pub app_setting_names: Vec<String>,
    pub connection_string_names: Vec<String>,
    pub azure_storage_config_names: Vec<String>,
}

/// A pending swap-with-preview (phase 1 done).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub source: String,
    pub target: String,
}

/// An order recorded by the payments demo app (the app's database, shared by
/// every slot of the site, as a real database would be).
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: String,
    pub amount: f64,
    pub currency: String,
    pub status: String,
    pub created: String,
    pub version: String,
}

/// The payments app's database: one per app, shared by its slots or
/// revisions as a real database would be; bounded, oldest evicted first.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: BTreeMap<String, Order>,
    fifo: VecDeque<String>,
}

const MAX_ORDERS: usize = 200_000;

impl OrderBook {
    pub fn insert(&mut self, order: Order) {
        if self.fifo.len() >= MAX_ORDERS
            && let Some(old) = self.fifo.pop_front()
        {
            self.orders.remove(&old);
        }
        self.fifo.push_back(order.id.clone());
        self.orders.insert(order.id.clone(), order);
    }

    pub fn get(&self, id: &str) -> Option<&Order> {
        self.orders.get(id)
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// A web app.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    /// Slot name → slot; `production` is one of them.
    pub slots: BTreeMap<String, Slot>,
    /// Production's routing rules; slots cannot have any (reference §3.3).
    pub ramp_up_rules: Vec<RampUpRule>,
    pub slot_config_names: SlotConfigNames,
    /// Id of the operation holding the site's lock (a swap in progress).
    pub busy: Option<String>,
    pub preview: Option<Preview>,
    pub orders: OrderBook,
}

/// How a swap operation ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status")]
pub enum OpStatus {
    Running,
    Succeeded,
    Failed {
        http_status: u16,
        code: String,
        message: String,
    },
}

/// A swap LRO.
#[derive(Debug, Clone)]
pub struct SwapOperation {
    pub id: String,
    pub site: String,
    pub source: String,
    pub target: String,
    pub started_utc: DateTime<Utc>,
    pub completes_at: Instant,
    pub status: OpStatus,
    pub fail_warmup: bool,
}

/// Fixed identities of the scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ids {
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub location_display: String,
    pub tenant_id: String,
    pub client_id: String,
    pub server_farm: String,
}

/// Durations that shape the emulation's pace.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub swap_duration: Duration,
    pub build_duration: Duration,
    pub retry_after_secs: u32,
    pub metrics_latency: Duration,
}

/// The whole emulated estate.
pub struct World {
    pub ids: Ids,
    pub timing: Timing,
    pub sites: BTreeMap<String, Site>,
    pub operations: BTreeMap<String, SwapOperation>,
    pub behaviours: BTreeMap<String, Behaviour>,
    pub container_apps: BTreeMap<String, ContainerApp>,
    pub app_operations: BTreeMap<String, AppOperation>,
    /// Resource tags by lower-case resource id (`arm::tags`).
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Static web apps by name.
    pub static_sites: BTreeMap<String, StaticSite>,
    /// Static-site zip deployments and build deletions by id.
    pub static_operations: BTreeMap<String, StaticSiteOperation>,
    /// Blob storage accounts by name.
    pub storage_accounts: BTreeMap<String, StorageAccount>,
    /// Azure Monitor series that vanished, in the order they did.
    pub metrics_dropouts: Vec<MetricsDropout>,
    /// Failures still due in the current run of each process
    /// ([`Behaviour::error_clump`]), by workload label, with the start of
    /// the process they belong to (a restart ends the run).
    pub(crate) clumps: BTreeMap<String, (Instant, u64)>,
    /// The orders the Kubernetes-hosted demo app took (one database for
    /// all its pods, as in production).
    pub kube_orders: OrderBook,
    pub rng: StdRng,
}

/// Where a Container Apps host name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaTarget {
    /// `{app}.{domain}`: split by traffic weights.
    App(String),
    /// `{app}--{suffix}.{domain}`: one revision.
    Revision(String, String),
    /// `{app}---{label}.{domain}`: the revision a label points at.
    Label(String, String),
}

/// Where an App Service host name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTarget {
    pub site: String,
    pub slot: String,
    pub scm: bool,
}

pub(crate) fn slot_host(app: &str, slot: &str, scm: bool) -> String {
    let base = if slot == PRODUCTION {
        app.to_owned()
    } else {
        format!("{app}-{slot}")
    };
    if scm {
        format!("{base}.scm.{}", hosts::WEB_DOMAIN)
    } else {
        format!("{base}.{}", hosts::WEB_DOMAIN)
    }
}

fn base_site_config() -> Map<String, Value> {
    let v = json!({
        "numberOfWorkers": 1,
        "defaultDocuments": ["index.html", "default.html"],
        "netFrameworkVersion": "v4.0",
        "linuxFxVersion": "DOTNETCORE|8.0",
        "requestTracingEnabled": false,
        "remoteDebuggingEnabled": false,
        "httpLoggingEnabled": false,
        "acrUseManagedIdentityCreds": false,
        "logsDirectorySizeLimit": 35,
        "detailedErrorLoggingEnabled": false,
        "publishingUsername": null,
        "scmType": "None",
        "use32BitWorkerProcess": false,
        "webSocketsEnabled": false,
        "alwaysOn": true,
        "managedPipelineMode": "Integrated",
        "loadBalancing": "LeastRequests",
        "autoHealEnabled": false,
        "vnetRouteAllEnabled": false,
        "vnetPrivatePortsCount": 0,
        "localMySqlEnabled": false,
        "ipSecurityRestrictionsDefaultAction": "Allow",
        "scmIpSecurityRestrictionsDefaultAction": "Allow",
        "scmIpSecurityRestrictionsUseMain": false,
        "http20Enabled": true,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "Disabled",
        "preWarmedInstanceCount": 0,
        "functionsRuntimeScaleMonitoringEnabled": false,
        "minimumElasticInstanceCount": 1,
        "healthCheckPath": "/health",
        "autoSwapSlotName": null,
        "cors": null,
        "azureStorageAccounts": {}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn seeded_deployment(version: &str, now: Instant) -> Deployment {
    let when = Utc::now() - chrono::Duration::days(1);
    Deployment {
        id: uuid::Uuid::new_v4().simple().to_string(),
        status: 4,
        deployer: "OneDeploy".into(),
        message: format!("Release {version}"),
        received_time: when,
        end_time: Some(when),
        received_at: now,
        done_at: now,
        outcome: Ok(Build {
            version: version.to_owned(),
            behaviour: None,
            deployment_id: None,
            package: None,
        }),
        log: vec![(when, format!("Deployment of {version} successful."))],
        complete: true,
        active: true,
    }
}

fn new_slot(app: &str, slot: &str, version: &str, now: Instant) -> Slot {
    let deployment = seeded_deployment(version, now);
    let mut settings = BTreeMap::new();
    settings.insert("SLOT_NAME".to_owned(), slot.to_owned());
    settings.insert("BUILD_VERSION".to_owned(), version.to_owned());
    settings.insert(
        "ASPNETCORE_ENVIRONMENT".to_owned(),
        if slot == PRODUCTION {
            "Production"
        } else {
            "Staging"
        }
        .to_owned(),
    );
    Slot {
        name: slot.to_owned(),
        host: slot_host(app, slot, false),
        scm_host: slot_host(app, slot, true),
        state: RunState::Running,
        config: base_site_config(),
        content: Content {
            build: Build {
                version: version.to_owned(),
                behaviour: None,
                deployment_id: Some(deployment.id.clone()),
                package: None,
            },
            app_settings: settings,
            deployments: vec![deployment],
        },
        process: Process::new(now),
        slot_swap_status: None,
        monitor: BTreeMap::new(),
        preview_saved_settings: None,
    }
}

fn new_site(name: &str, slots: &[(&str, &str)], now: Instant) -> Site {
    Site {
        name: name.to_owned(),
        slots: slots
            .iter()
            .map(|(slot, version)| ((*slot).to_owned(), new_slot(name, slot, version, now)))
            .collect(),
        ramp_up_rules: Vec::new(),
        slot_config_names: SlotConfigNames {
            // SLOT_NAME and the environment stay with the slot on a swap;
            // BUILD_VERSION travels with the code.
            app_setting_names: vec!["SLOT_NAME".into(), "ASPNETCORE_ENVIRONMENT".into()],
            connection_string_names: Vec::new(),
            azure_storage_config_names: Vec::new(),
        },
        busy: None,
        preview: None,
        orders: OrderBook::default(),
    }
}

/// `stcontosobuilds`: container `store` holds the store's CI-built zips
/// (see [`crate::staticsites::contoso_store_packages`]).
fn contoso_builds_account() -> StorageAccount {
    let blobs = crate::staticsites::contoso_store_packages()
        .into_iter()
        .filter_map(|(name, version, behaviour)| {
            let bytes = crate::kudu::package_for(version, behaviour.as_ref()).ok()?;
            Some((
                name.to_owned(),
                Blob::new(bytes::Bytes::from(bytes), "application/zip"),
            ))
        })
        .collect();
    StorageAccount {
        name: CONTOSO_BUILDS_ACCOUNT.to_owned(),
        containers: [(CONTOSO_BUILDS_CONTAINER.to_owned(), blobs)]
            .into_iter()
            .collect(),
    }
}

impl World {
    /// The Contoso incident: production of every web app serves the bad
    /// 2.4.0, staging holds the previous production build 2.3.1 (left there
    /// by yesterday's swap). The store static web app serves a healthy
    /// 2.4.0 in production, and `stcontosobuilds` holds its CI-built zips.
    pub fn contoso(seed: u64, timing: Timing, now: Instant) -> Self {
        let mut sites = BTreeMap::new();
        // The web front end depends on both services (the seed's second
        // break-fix exercise: it went live before the payment API was ready).
        for app in [
            "app-contoso-payments",
            "app-contoso-notifications",
            "app-contoso-web",
        ] {
            sites.insert(
                app.to_owned(),
                new_site(app, &[(PRODUCTION, "2.4.0"), ("staging", "2.3.1")], now),
            );
        }
        let ids = Ids {
            subscription_id: "00000000-0000-4000-8000-00000000c0de".into(),
            resource_group: "rg-contoso-prod".into(),
            location: "westeurope".into(),
            location_display: "West Europe".into(),
            tenant_id: "c0de0000-7e7a-4000-8000-00000000a11d".into(),
            client_id: "c0de0000-c11e-4000-8000-00000000e4de".into(),
            server_farm: "asp-contoso-prod".into(),
        };
        World {
            static_sites: [StaticSite::contoso(&ids.location, now)]
                .into_iter()
                .map(|s| (s.name.clone(), s))
                .collect(),
            ids,
            timing,
            sites,
            operations: BTreeMap::new(),
            behaviours: default_behaviours(),
            container_apps: [ContainerApp::contoso(now)]
                .into_iter()
                .map(|a| (a.name.clone(), a))
                .collect(),
            app_operations: BTreeMap::new(),
            tags: BTreeMap::new(),
            static_operations: BTreeMap::new(),
            storage_accounts: [contoso_builds_account()]
                .into_iter()
                .map(|a| (a.name.clone(), a))
                .collect(),
            metrics_dropouts: Vec::new(),
            clumps: BTreeMap::new(),
            kube_orders: OrderBook::default(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Applies every change whose time has come.
    pub fn advance(&mut self, now: Instant) {
        let due: Vec<String> = self
            .operations
            .values()
            .filter(|op| matches!(op.status, OpStatus::Running) && op.completes_at <= now)
            .map(|op| op.id.clone())
            .collect();
        for id in due {
            self.complete_swap(&id, now);
        }
        for op in self.app_operations.values_mut() {
            if matches!(op.status, OpStatus::Running) && op.completes_at <= now {
                op.status = OpStatus::Succeeded;
                if let Some(app) = self.container_apps.get_mut(&op.app)
                    && app.busy.as_deref() == Some(op.id.as_str())
                {
                    app.busy = None;
                    // Single mode: the new revision replaces the others once ready.
                    let single = app
                        .configuration
                        .get("activeRevisionsMode")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.eq_ignore_ascii_case("single"));
                    let latest = app.latest_ready_revision(now).map(|r| r.name.clone());
                    if single && let Some(latest) = latest {
                        for rev in app.revisions.values_mut() {
                            rev.active = rev.name == latest;
                        }
                    }
                }
            }
        }
        self.advance_static_sites(now);
        for site in self.sites.values_mut() {
            for slot in site.slots.values_mut() {
                let mut new_build = None;
                for d in &mut slot.content.deployments {
                    d.refresh(now);
                    if !d.complete && d.done_at <= now {
                        d.complete = true;
                        d.end_time = Some(Utc::now());
                        match &mut d.outcome {
                            Ok(build) => {
                                d.status = 4;
                                d.log.push((Utc::now(), "Deployment successful.".into()));
                                let mut serving = build.clone();
                                serving.package = build.package.take();
                                new_build = Some((d.id.clone(), serving));
                            }
                            Err(msg) => {
                                d.status = 3;
                                d.log.push((Utc::now(), msg.clone()));
                            }
                        }
                    }
                }
                if let Some((id, build)) = new_build {
                    for d in &mut slot.content.deployments {
                        d.active = d.id == id;
                    }
                    slot.content.build = build;
                    slot.content
                        .app_settings
                        .insert("BUILD_VERSION".into(), slot.content.build.version.clone());
                    slot.process.restart(now);
                }
            }
        }
    }

    /// Keeps the operation tables bounded: finished operations beyond the
    /// newest 1000 are forgotten (their result URLs then answer 404).
    pub(crate) fn prune_operations(&mut self) {
        const KEEP: usize = 1000;
        self.prune_static_operations();
        if self.operations.len() > KEEP {
            let mut done: Vec<(DateTime<Utc>, String)> = self
                .operations
                .values()
                .filter(|o| !matches!(o.status, OpStatus::Running))
                .map(|o| (o.started_utc, o.id.clone()))
                .collect();
            done.sort();
            for (_, id) in done.iter().take(self.operations.len() - KEEP) {
                self.operations.remove(id);
            }
        }
        if self.app_operations.len() > KEEP {
            let mut done: Vec<(DateTime<Utc>, String)> = self
                .app_operations
                .values()
                .filter(|o| !matches!(o.status, OpStatus::Running))
                .map(|o| (o.started_utc, o.id.clone()))
                .collect();
            done.sort();
            for (_, id) in done.iter().take(self.app_operations.len() - KEEP) {
                self.app_operations.remove(id);
            }
        }
    }

    fn complete_swap(&mut self, id: &str, now: Instant) {
        let Some(op) = self.operations.get(id).cloned() else {
            return;
        };
        let mut result = OpStatus::Succeeded;
        if let Some(site) = self.sites.get_mut(&op.site) {
            site.busy = None;
            let stopped = [&op.source, &op.target].into_iter().find(|s| {
                site.slots
                    .get(*s)
                    .is_none_or(|slot| slot.state == RunState::Stopped)
            });
            if op.fail_warmup {
                result = OpStatus::Failed {
                    http_status: 400,
                    code: "BadRequest".into(),
                    message: format!(
                        "Cannot swap slots for site '{}' because the application initialization in '{}' slot either took too long or failed. Please check application initialization configuration and try again.",
                        site.name, op.source
                    ),
                };
            } else if let Some(s) = stopped {
                result = OpStatus::Failed {
                    http_status: 400,
                    code: "BadRequest".into(),
                    message: format!(
                        "Cannot swap slots for site '{}' because the worker process for '{}' slot could not be started.",
                        site.name, s
                    ),
                };
            } else {
                swap_slots(site, &op.source, &op.target, now);
            }
        }
        if let Some(op) = self.operations.get_mut(id) {
            op.status = result;
        }
    }

    /// The container app (and revision or label) a host name belongs to.
    pub fn resolve_ca_host(&self, host: &str) -> Option<CaTarget> {
        for app in self.container_apps.values() {
            let Some(first) = host.strip_suffix(&format!(".{}", app.env_domain)) else {
                continue;
            };
            if first == app.name {
                return Some(CaTarget::App(app.name.clone()));
            }
            if let Some(label) = first.strip_prefix(&format!("{}---", app.name)) {
                return Some(CaTarget::Label(app.name.clone(), label.to_owned()));
            }
            if app.revisions.contains_key(first) {
                return Some(CaTarget::Revision(app.name.clone(), first.to_owned()));
            }
        }
        None
    }

    /// The site and slot an App Service host name belongs to.
    pub fn resolve_host(&self, host: &str) -> Option<HostTarget> {
        for site in self.sites.values() {
            for slot in site.slots.values() {
                if slot.host == host || slot.scm_host == host {
                    return Some(HostTarget {
                        site: site.name.clone(),
                        slot: slot.name.clone(),
                        scm: slot.scm_host == host,
                    });
                }
            }
        }
        None
    }

    /// The behaviour a build shows right now in a process started at
    /// `started`.
    pub fn effective_behaviour(&self, build: &Build, started: Instant, now: Instant) -> Behaviour {
        let configured = build
            .behaviour
            .clone()
            .or_else(|| self.behaviours.get(&build.version).cloned())
            .unwrap_or_default();
        match configured.regression_after_secs {
            Some(after) if now.saturating_duration_since(started) < Duration::from_secs(after) => {
                Behaviour::default()
            }
            _ => configured,
        }
    }

    /// Whether the next `/api/*` request of the process `process` (a
    /// workload label) started at `started` fails under `behaviour`: one
    /// seeded draw per request outside a run of failures, none inside one.
    /// With `error_clump` 1 this is exactly one `random_bool(error_rate)`,
    /// as before clumps existed.
    pub(crate) fn draw_error(
        &mut self,
        process: &str,
        started: Instant,
        behaviour: &Behaviour,
    ) -> bool {
        if behaviour.error_rate <= 0.0 {
            self.clumps.remove(process);
            return false;
        }
        if behaviour.error_clump <= 1 {
            if !self.clumps.is_empty() {
                self.clumps.remove(process);
            }
            return self.rng.random_bool(behaviour.error_rate.min(1.0));
        }
        if let Some((at, left)) = self.clumps.get_mut(process)
            && *at == started
            && *left > 0
        {
            *left -= 1;
            return true;
        }
        if self.rng.random_bool(behaviour.clump_start_probability()) {
            self.clumps.insert(
                process.to_owned(),
                (started, behaviour.error_clump.min(MAX_ERROR_CLUMP) - 1),
            );
            true
        } else {
            self.clumps.remove(process);
            false
        }
    }

    /// The dropout that hides an App Service slot's series, if any.
    pub(crate) fn slot_dropout(&self, site: &str, slot: &str) -> Option<DropoutMode> {
        self.metrics_dropouts
            .iter()
            .find(|d| d.matches_slot(site, slot))
            .map(|d| d.mode)
    }

    /// The dropout that hides a Container Apps revision's series, if any.
    pub(crate) fn revision_dropout(&self, app: &str, revision: &str) -> Option<DropoutMode> {
        self.metrics_dropouts
            .iter()
            .find(|d| d.matches_revision(app, revision))
            .map(|d| d.mode)
    }

    /// Adds a dropout (replacing one for the same series).
    pub(crate) fn add_dropout(&mut self, d: MetricsDropout) -> Result<MetricsDropout, String> {
        let d = d.checked(self)?;
        self.metrics_dropouts
            .retain(|x| !(x.app == d.app && x.slot == d.slot && x.revision == d.revision));
        self.metrics_dropouts.push(d.clone());
        Ok(d)
    }

    /// Everything, as JSON, for the control API and tests.
    pub fn snapshot(&self, now: Instant) -> Value {
        let sites: Map<String, Value> = self
            .sites
            .values()
            .map(|site| {
                let slots: Map<String, Value> = site
                    .slots
                    .values()
                    .map(|slot| {
                        (
                            slot.name.clone(),
                            json!({
                                "host": slot.host,
                                "scmHost": slot.scm_host,
                                "state": slot.state,
                                "version": slot.content.build.version,
                                "deploymentId": slot.content.build.deployment_id,
                                "behaviour": self.effective_behaviour(&slot.content.build, slot.process.started, now),
                                "appSettings": slot.content.app_settings,
                                "slotSwapStatus": slot.slot_swap_status,
                                "processRestarts": slot.process.restarts,
                                "deployments": slot.content.deployments.iter().map(|d| json!({
                                    "id": d.id,
                                    "status": d.status,
                                    "statusText": d.status_text(),
                                    "complete": d.complete,
                                    "active": d.active,
                                    "message": d.message,
                                })).collect::<Vec<_>>(),
                            }),
                        )
                    })
                    .collect();
                (
                    site.name.clone(),
                    json!({
                        "slots": slots,
                        "rampUpRules": site.ramp_up_rules,
                        "slotConfigNames": site.slot_config_names,
                        "busyOperationId": site.busy,
                        "pendingPreview": site.preview,
                        "orders": site.orders.len(),
                    }),
                )
            })
            .collect();
        let operations: Vec<Value> = self
            .operations
            .values()
            .map(|op| {
                json!({
                    "id": op.id,
                    "site": op.site,
                    "source": op.source,
                    "target": op.target,
                    "startedUtc": op.started_utc.to_rfc3339(),
                    "result": op.status,
                })
            })
            .collect();
        let container_apps: Map<String, Value> = self
            .container_apps
            .values()
            .map(|app| {
                let revisions: Map<String, Value> = app
                    .revision_order
                    .iter()
                    .filter_map(|n| app.revisions.get(n))
                    .map(|r| {
                        (
                            r.name.clone(),
                            json!({
                                "version": r.build.version,
                                "active": r.active,
                                "ready": r.ready(now),
                                "fqdn": app.revision_fqdn(&r.name),
                                "trafficWeight": app.weight_of(&r.name, now),
                                "behaviour": self.effective_behaviour(&r.build, r.process.started, now),
                            }),
                        )
                    })
                    .collect();
                (
                    app.name.clone(),
                    json!({
                        "fqdn": app.fqdn(),
                        "activeRevisionsMode": app.configuration.get("activeRevisionsMode"),
                        "traffic": app.traffic,
                        "revisions": revisions,
                        "busyOperationId": app.busy,
                        "orders": app.orders.len(),
                    }),
                )
            })
            .collect();
        let static_operations: Vec<Value> = self
            .static_operations
            .values()
            .map(|op| {
                json!({
                    "id": op.id,
                    "site": op.site,
                    "environment": op.environment,
                    "kind": match op.kind {
                        crate::staticsites::StaticOpKind::ZipDeploy { .. } => "ZipDeploy",
                        crate::staticsites::StaticOpKind::DeleteBuild => "DeleteBuild",
                    },
                    "startedUtc": op.started_utc.to_rfc3339(),
                    "result": op.status,
                })
            })
            .collect();
        let storage_accounts: Map<String, Value> = self
            .storage_accounts
            .values()
            .map(|a| {
                let containers: Map<String, Value> = a
                    .containers
                    .iter()
                    .map(|(c, blobs)| {
                        let sizes: Map<String, Value> = blobs
                            .iter()
                            .map(|(n, b)| (n.clone(), json!(b.bytes.len())))
                            .collect();
                        (c.clone(), Value::Object(sizes))
                    })
                    .collect();
                (
                    a.name.clone(),
                    json!({"host": crate::blob::account_host(&a.name), "containers": containers}),
                )
            })
            .collect();
        json!({
            "ids": self.ids,
            "sites": sites,
            "containerApps": container_apps,
            "swapOperations": operations,
            "staticSites": self.static_sites_snapshot(now),
            "staticSiteOperations": static_operations,
            "storageAccounts": storage_accounts,
            "behaviours": self.behaviours,
            "metricsDropouts": self.metrics_dropouts,
        })
    }
}

/// Exchanges what two slots serve: content (code, non-sticky settings,
/// deployment history) moves, sticky settings and production's routing
/// rules stay; both processes restart (reference §3.4).
pub(crate) fn swap_slots(site: &mut Site, source: &str, target: &str, now: Instant) {
    let sticky = site.slot_config_names.app_setting_names.clone();
    let (Some(mut a), Some(mut b)) = (site.slots.remove(source), site.slots.remove(target)) else {
        return;
    };
    // If phase 1 of a preview changed the source's sticky settings, the
    // source gets its own sticky values back once it is the target's.
    if let Some(saved) = a.preview_saved_settings.take() {
        for name in &sticky {
            match saved.get(name) {
                Some(v) => a.content.app_settings.insert(name.clone(), v.clone()),
                None => a.content.app_settings.remove(name),
            };
        }
    }
    std::mem::swap(&mut a.content, &mut b.content);
    for name in &sticky {
        let av = b.content.app_settings.remove(name);
        let bv = a.content.app_settings.remove(name);
        if let Some(v) = av {
            a.content.app_settings.insert(name.clone(), v);
        }
        if let Some(v) = bv {
            b.content.app_settings.insert(name.clone(), v);
        }
    }
    let status = SlotSwapStatus {
        timestamp_utc: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        source_slot_name: source.to_owned(),
        destination_slot_name: target.to_owned(),
    };
    a.slot_swap_status = Some(status.clone());
    b.slot_swap_status = Some(status);
    a.process.restart(now);
    b.process.restart(now);
    site.slots.insert(source.to_owned(), a);
    site.slots.insert(target.to_owned(), b);
    site.preview = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(seed: u64) -> World {
        let timing = Timing {
            swap_duration: Duration::from_millis(10),
            build_duration: Duration::from_millis(10),
            retry_after_secs: 1,
            metrics_latency: Duration::ZERO,
        };
        World::contoso(seed, timing, Instant::now())
    }

    fn clumped(rate: f64, k: u64) -> Behaviour {
        Behaviour {
            error_rate: rate,
            error_clump: k,
            ..Behaviour::default()
        }
    }

    /// Lengths of the maximal runs of failures in `draws` (a run still
    /// going at the end is left out: it may be cut short).
    fn runs(draws: &[bool]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut n = 0;
        for &d in draws {
            if d {
                n += 1;
            } else if n > 0 {
                out.push(n);
                n = 0;
            }
        }
        out
    }

    #[test]
    fn clumped_errors_keep_the_mean_rate_and_come_in_runs_of_k() {
        let started = Instant::now();
        for (rate, k) in [(0.05, 5u64), (0.05, 4), (0.3, 6), (0.01, 3)] {
            let mut w = world(7);
            let b = clumped(rate, k);
            let n = 400_000;
            let draws: Vec<bool> = (0..n)
                .map(|_| w.draw_error("app:a/production", started, &b))
                .collect();
            let failed = draws.iter().filter(|d| **d).count() as f64;
            let mean = failed / n as f64;
            // Runs of k make the count's variance about k·(1 + …) times a
            // binomial's: 6 standard deviations of that.
            let sd = (k as f64 * rate * (1.0 - rate) / n as f64).sqrt() * 2.0;
            assert!(
                (mean - rate).abs() < 6.0 * sd,
                "rate {rate}, clump {k}: mean {mean}"
            );
            let lengths = runs(&draws);
            assert!(
                lengths.iter().all(|l| l % k as usize == 0),
                "rate {rate}, clump {k}: a run that is not a multiple of {k}"
            );
            // Most runs are exactly one clump (two back to back happen
            // with probability about q).
            let single = lengths.iter().filter(|l| **l == k as usize).count() as f64;
            assert!(
                single / lengths.len() as f64 > 1.0 - 3.0 * b.clump_start_probability() - 0.01,
                "rate {rate}, clump {k}: {single} of {} runs are single clumps",
                lengths.len()
            );
        }
    }

    #[test]
    fn clumps_are_per_process_and_deterministic() {
        let started = Instant::now();
        let b = clumped(0.2, 5);
        let draw = |seed: u64| {
            let mut w = world(seed);
            (0..2_000)
                .map(|i| {
                    let p = if i % 2 == 0 {
                        "app:a/production"
                    } else {
                        "app:a/staging"
                    };
                    w.draw_error(p, started, &b)
                })
                .collect::<Vec<bool>>()
        };
        let (a, again, other) = (draw(3), draw(3), draw(4));
        assert_eq!(a, again, "same seed, same errors");
        assert_ne!(a, other);
        // Interleaved processes each keep their own runs of 5.
        for offset in [0, 1] {
            let mine: Vec<bool> = a.iter().skip(offset).step_by(2).copied().collect();
            assert!(runs(&mine).iter().all(|l| l % 5 == 0), "{mine:?}");
        }
        // A run, once started, is served out (even if the rate drops); a
        // restart of the process ends it.
        let always = clumped(1.0, 3);
        let quiet = clumped(0.000_001, 3);
        let mut w = world(5);
        assert!(w.draw_error("p", started, &always));
        assert_eq!(w.clumps.get("p"), Some(&(started, 2)));
        assert!(w.draw_error("p", started, &quiet));
        assert!(w.draw_error("p", started, &quiet));
        assert!(!w.draw_error("p", started, &quiet));
        let mut w = world(5);
        assert!(w.draw_error("p", started, &always));
        let restarted = started + Duration::from_secs(1);
        assert!(!w.draw_error("p", restarted, &quiet));
    }

    #[test]
    fn one_is_independent_errors_as_before() {
        let started = Instant::now();
        let b = Behaviour {
            error_rate: 0.1,
            ..Behaviour::default()
        };
        assert_eq!(b.error_clump, 1);
        assert!((b.clump_start_probability() - 0.1).abs() < 1e-12);
        let mut w = world(9);
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..5_000 {
            assert_eq!(w.draw_error("p", started, &b), rng.random_bool(0.1));
        }
        // Unset in JSON means 1; 0 and more than the maximum are refused.
        let parsed: Behaviour = serde_json::from_str(r#"{"error_rate": 0.05}"#).unwrap();
        assert_eq!(parsed.error_clump, 1);
        assert!(parsed.validate().is_ok());
        for bad in [0, MAX_ERROR_CLUMP + 1] {
            assert!(clumped(0.05, bad).validate().is_err(), "{bad}");
        }
        assert!(clumped(1.0, 4).clump_start_probability() >= 1.0 - 1e-12);
    }

    #[test]
    fn dropouts_name_one_existing_series() {
        let mut w = world(1);
        let slot = |app: &str, slot: &str, mode| MetricsDropout {
            app: app.into(),
            slot: Some(slot.into()),
            revision: None,
            mode,
        };
        assert!(
            w.add_dropout(slot("app-contoso-payments", "nope", DropoutMode::Stale))
                .is_err()
        );
        assert!(
            w.add_dropout(slot(
                "ca-contoso-payments",
                "production",
                DropoutMode::Stale
            ))
            .is_err()
        );
        let both = MetricsDropout {
            revision: Some("x".into()),
            ..slot("app-contoso-payments", "production", DropoutMode::Stale)
        };
        assert!(w.add_dropout(both).is_err());
        w.add_dropout(slot(
            "App-Contoso-Payments",
            "Production",
            DropoutMode::Stale,
        ))
        .unwrap();
        w.add_dropout(slot(
            "app-contoso-payments",
            "production",
            DropoutMode::Empty,
        ))
        .unwrap();
        assert_eq!(w.metrics_dropouts.len(), 1, "the later one replaces it");
        assert_eq!(
            w.slot_dropout("app-contoso-payments", "production"),
            Some(DropoutMode::Empty)
        );
        assert_eq!(w.slot_dropout("app-contoso-payments", "staging"), None);
        let rev = w.container_apps["ca-contoso-payments"]
            .revisions
            .keys()
            .next()
            .unwrap()
            .clone();
        w.add_dropout(MetricsDropout {
            app: "ca-contoso-payments".into(),
            slot: None,
            revision: Some(rev.clone()),
            mode: DropoutMode::default(),
        })
        .unwrap();
        assert_eq!(
            w.revision_dropout("ca-contoso-payments", &rev),
            Some(DropoutMode::Stale)
        );
        let json: MetricsDropout =
            serde_json::from_str(r#"{"app": "a", "slot": "production"}"#).unwrap();
        assert_eq!(json.mode, DropoutMode::Stale);
        assert!(serde_json::from_str::<MetricsDropout>(r#"{"app": "a", "slots": "x"}"#).is_err());
    }
}
