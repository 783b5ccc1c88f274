//! Azure Container Apps: the app, its revisions, traffic weights and tags —
//! the ARM operations a canary rollout needs.
//!
//! Facts this module is built on (reference: azure-rest.md §5):
//! - a new image is a JSON-merge PATCH of `properties.template`; merge patch
//!   replaces arrays whole, so `containers` is sent **complete** (every
//!   container, every field), only the target container's image changed;
//! - every template change needs a **fresh** `revisionSuffix` (a reused one
//!   is refused); the revision is then named `{app}--{suffix}`;
//! - a `latestRevision: true` traffic entry follows every new revision: a
//!   canary pins traffic to revisions **by name** before creating one, and
//!   this module never sends `latestRevision`;
//! - traffic splitting needs `activeRevisionsMode: Multiple`;
//! - the PATCH is a long-running operation whose status URL is
//!   subscription-scoped: a principal scoped to the resource group can get a
//!   403 there, so the app's `provisioningState` is polled instead;
//! - service-side validation is weak (a revision that still has traffic can
//!   be deactivated): the checks are made here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::azure::arm::{Accepted, Arm, ArmError};
use crate::cancel::Cancel;

/// The Microsoft.App api-version (reference §0).
pub const API_VERSION: &str = "2025-07-01";

/// The longest suffix [`revision_suffix`] makes: revision names have been
/// reported to fail beyond 54 characters (reference §5.2), and an app name
/// has at most 32, so `{app}--{suffix}` always fits.
pub const MAX_SUFFIX_LEN: usize = 54 - 32 - 2;

/// How long a revision-creating or traffic PATCH may run.
const OPERATION_DEADLINE: Duration = Duration::from_secs(600);

/// The longest wait between two readiness polls.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Where a container app lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAppRef {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Container app name.
    pub app: String,
}

impl ContainerAppRef {
    /// `/subscriptions/…/providers/Microsoft.App/containerApps/{app}`.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.App/containerApps/{}",
            self.subscription, self.resource_group, self.app
        )
    }

    /// The path of one revision.
    pub fn revision_path(&self, revision: &str) -> String {
        format!("{}/revisions/{revision}", self.id())
    }
}

/// One entry of the traffic split, by revision name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficWeight {
    /// Revision name (`{app}--{suffix}`).
    pub revision: String,
    /// Percentage of the app's traffic.
    pub weight: u32,
    /// A label giving the revision a stable URL `{app}---{label}.{domain}`.
    pub label: Option<String>,
}

/// What expedite needs to know about a container app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppInfo {
    /// The app's name.
    pub name: String,
    /// The app's ingress host (`configuration.ingress.fqdn`); `None` without ingress.
    pub fqdn: Option<String>,
    /// `Single` or `Multiple`.
    pub active_revisions_mode: String,
    /// The newest revision (possibly not ready yet).
    pub latest_revision_name: Option<String>,
    /// The newest revision that is ready.
    pub latest_ready_revision_name: Option<String>,
    /// The traffic split as ARM reports it, by name: a `latestRevision: true`
    /// entry is resolved to the revision it routes to now
    /// (`latestReadyRevisionName`, else `latestRevisionName`).
    pub traffic: Vec<TrafficWeight>,
    /// True when some traffic entry is `latestRevision: true`: that traffic
    /// would move to the next revision by itself.
    pub traffic_follows_latest: bool,
    /// `properties.template`, whole.
    pub template: Value,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// `InProgress|Succeeded|Failed|Canceled|Deleting`.
    pub provisioning_state: String,
    /// `runningStatus`, when reported.
    pub running_status: Option<String>,
}

fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl AppInfo {
    fn from_json(v: &Value) -> Result<AppInfo, String> {
        let p = v
            .get("properties")
            .ok_or("no properties in the container app")?;
        let latest_revision_name = str_at(p, "/latestRevisionName");
        let latest_ready_revision_name = str_at(p, "/latestReadyRevisionName");
        let mut traffic = Vec::new();
        let mut traffic_follows_latest = false;
        let entries = p
            .pointer("/configuration/ingress/traffic")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, t) in entries.iter().enumerate() {
            let weight = t.get("weight").and_then(Value::as_u64).unwrap_or(0);
            let weight = u32::try_from(weight)
                .map_err(|_| format!("traffic[{i}] has the weight {weight}"))?;
            let latest = t.get("latestRevision").and_then(Value::as_bool) == Some(true);
            let revision = if latest {
                traffic_follows_latest = true;
                latest_ready_revision_name
                    .clone()
                    .or_else(|| latest_revision_name.clone())
                    .ok_or_else(|| {
                        format!("traffic[{i}] follows the latest revision, but the app names none")
                    })?
            } else {
                str_at(t, "/revisionName")
                    .ok_or_else(|| format!("traffic[{i}] names no revision"))?
            };
            traffic.push(TrafficWeight {
                revision,
                weight,
                label: str_at(t, "/label"),
            });
        }
        let tags = v
            .get("tags")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(AppInfo {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            fqdn: str_at(p, "/configuration/ingress/fqdn"),
            // ARM's default when the field is absent.
            active_revisions_mode: str_at(p, "/configuration/activeRevisionsMode")
                .unwrap_or_else(|| "Single".into()),
            latest_revision_name,
            latest_ready_revision_name,
            traffic,
            traffic_follows_latest,
            template: p.get("template").cloned().unwrap_or(Value::Null),
            tags,
            provisioning_state: str_at(p, "/provisioningState").unwrap_or_else(|| "Unknown".into()),
            running_status: str_at(p, "/runningStatus"),
        })
    }

    /// True in `Multiple` revision mode (needed to split traffic).
    pub fn multiple_revisions(&self) -> bool {
        self.active_revisions_mode.eq_ignore_ascii_case("Multiple")
    }
}

/// What expedite needs to know about a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionInfo {
    /// `{app}--{suffix}`.
    pub name: String,
    /// The revision's own host.
    pub fqdn: Option<String>,
    /// Active revisions run and can take traffic.
    pub active: bool,
    /// Its share of the app's traffic now.
    pub traffic_weight: u32,
    /// `Provisioning|Provisioned|Failed|Deprovisioning|Deprovisioned`.
    pub provisioning_state: String,
    /// Why provisioning failed, when it did.
    pub provisioning_error: Option<String>,
    /// `Running|Processing|Stopped|Degraded|Failed|Unknown`.
    pub running_state: String,
    /// Azure's words on the running state, when given.
    pub running_state_details: Option<String>,
    /// Replicas running (not necessarily ready).
    pub replicas: u32,
    /// `Healthy|Unhealthy|None`.
    pub health_state: String,
    /// The containers' images, in template order.
    pub images: Vec<String>,
    /// When it was created (RFC 3339).
    pub created_time: Option<String>,
}

impl RevisionInfo {
    fn from_json(v: &Value) -> Result<RevisionInfo, String> {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("the revision has no name")?
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let p = v.get("properties").ok_or("no properties in the revision")?;
        let count = |k: &str| {
            p.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        let images = p
            .pointer("/template/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("image").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let provisioning_error = match p.get("provisioningError") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(o @ Value::Object(_)) => Some(o.to_string()),
            _ => None,
        };
        Ok(RevisionInfo {
            name,
            fqdn: str_at(p, "/fqdn"),
            active: p.get("active").and_then(Value::as_bool) == Some(true),
            traffic_weight: count("trafficWeight"),
            provisioning_state: str_at(p, "/provisioningState").unwrap_or_else(|| "Unknown".into()),
            provisioning_error,
            running_state: str_at(p, "/runningState").unwrap_or_else(|| "Unknown".into()),
            running_state_details: str_at(p, "/runningStateDetails"),
            replicas: count("replicas"),
            health_state: str_at(p, "/healthState").unwrap_or_else(|| "None".into()),
            images,
            created_time: str_at(p, "/createdTime"),
        })
    }

    fn describe(&self, ready_replicas: Option<u32>) -> String {
        let mut s = format!(
            "provisioningState {}, runningState {}, healthState {}, active {}, {} replica(s)",
            self.provisioning_state,
            self.running_state,
            self.health_state,
            self.active,
            self.replicas
        );
        if let Some(n) = ready_replicas {
            s.push_str(&format!(", {n} ready"));
        }
        if let Some(d) = &self.running_state_details {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(e) = &self.provisioning_error {
            s.push_str(&format!("; provisioning error: {e}"));
        }
        s
    }
}

/// A revision that did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// Provisioning failed: it will not become ready (roll back).
    #[error("revision {revision} failed to provision: {state}")]
    Failed {
        /// The revision.
        revision: String,
        /// The last state seen, in words.
        state: String,
        /// The last state seen.
        last: Box<RevisionInfo>,
    },
    /// Not ready in time.
    #[error("revision {revision} was not ready after {secs}s: {unmet}; last seen: {state}")]
    Timeout {
        /// The revision.
        revision: String,
        /// The bound.
        secs: u64,
        /// The condition not met.
        unmet: String,
        /// The last state seen, in words.
        state: String,
        /// The last state seen (`None` if it never appeared).
        last: Option<Box<RevisionInfo>>,
    },
    /// Reading the revision failed.
    #[error(transparent)]
    Arm(#[from] ArmError),
}

/// A revision's readiness, from one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Readiness {
    Ready,
    /// Not yet: which condition is not met.
    Waiting(String),
    /// Never will be.
    Failed,
}

/// Provisioned, active, running, not unhealthy, and (when the replicas were
/// read) at least one ready replica.
fn readiness(r: &RevisionInfo, ready_replicas: Option<u32>) -> Readiness {
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if is(&r.provisioning_state, "Failed") {
        return Readiness::Failed;
    }
    if !is(&r.provisioning_state, "Provisioned") {
        return Readiness::Waiting(format!(
            "not provisioned (provisioningState {})",
            r.provisioning_state
        ));
    }
    if !r.active {
        return Readiness::Waiting("the revision is not active".into());
    }
    if !is(&r.running_state, "Running") {
        return Readiness::Waiting(format!("not running (runningState {})", r.running_state));
    }
    if is(&r.health_state, "Unhealthy") {
        return Readiness::Waiting("not healthy (healthState Unhealthy)".into());
    }
    match ready_replicas {
        Some(n) if n >= 1 => Readiness::Ready,
        Some(_) => Readiness::Waiting(format!("no ready replica (0 of {})", r.replicas)),
        None => Readiness::Waiting("no ready replica yet".into()),
    }
}

/// The revision serving production traffic now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableRevision {
    /// Its name.
    pub name: String,
    /// Traffic reaches it through a `latestRevision: true` entry: pin it by
    /// name ([`ContainerApps::set_traffic`]) before creating a revision, or
    /// the new revision takes that traffic the moment it is ready.
    pub via_latest_revision: bool,
    /// Its label, if its traffic entry has one.
    pub label: Option<String>,
}

/// The one revision that serves the app's traffic now, by name. An error
/// (with the split, for the message) when traffic is split across several
/// revisions — a canary left behind — or there is none.
pub fn stable_revision(info: &AppInfo) -> Result<StableRevision, String> {
    let mut by_revision: BTreeMap<&str, u32> = BTreeMap::new();
    for t in info.traffic.iter().filter(|t| t.weight > 0) {
        *by_revision.entry(t.revision.as_str()).or_default() += t.weight;
    }
    match by_revision.len() {
        0 => Err(format!(
            "container app {} routes no traffic to any revision (no ingress traffic weights)",
            info.name
        )),
        1 => {
            let name = by_revision.keys().next().copied().unwrap_or_default();
            let entries = || info.traffic.iter().filter(|t| t.revision == name);
            Ok(StableRevision {
                name: name.to_string(),
                via_latest_revision: info.traffic_follows_latest,
                label: entries().find_map(|t| t.label.clone()),
            })
        }
        _ => Err(format!(
            "traffic of container app {} is split across revisions ({}): a canary may have been left behind; set 100% on one revision first",
            info.name,
            by_revision
                .iter()
                .map(|(r, w)| format!("{r} {w}%"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Lower-case alphanumerics, other runs as one `-`, no `-` at either end.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// [`crate::text::fnv1a64`] of the parts, each ended by a NUL so that
/// `("ab", "c")` and `("a", "bc")` differ.
fn fnv1a(parts: &[&str]) -> u64 {
    crate::text::fnv1a64(
        parts
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0))),
    )
}

fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(char::from(DIGITS[(n % 36) as usize]));
        n /= 36;
    }
    out.into_iter().rev().collect()
}

/// A fresh revision suffix for deploying `version` in a workflow run and
/// attempt, e.g. `v2-4-1-123456-2`: valid for Container Apps (lower-case
/// alphanumerics and `-`, starts with a letter, ends alphanumeric, no `--`),
/// at most [`MAX_SUFFIX_LEN`] characters, deterministic, and different for
/// each attempt of a run (a re-run keeps the run id). When too long it keeps
/// the start of the version and a hash of all three inputs.
pub fn revision_suffix(version: &str, run_id: &str, attempt: &str) -> String {
    let v = slug(version);
    let v = match v.chars().next() {
        Some(c) if c.is_ascii_lowercase() => v,
        Some(_) => format!("v{v}"),
        None => "rev".to_string(),
    };
    let run = slug(run_id);
    let try_no = slug(attempt);
    let mut full = v.clone();
    for part in [&run, &try_no] {
        if !part.is_empty() {
            full.push('-');
            full.push_str(part);
        }
    }
    if full.len() <= MAX_SUFFIX_LEN {
        return full;
    }
    // `{version start}-{hash}`: the hash keeps re-runs apart.
    const HASH_LEN: usize = 8;
    let hash = base36(fnv1a(&[version, run_id, attempt]), HASH_LEN);
    let head: String = v.chars().take(MAX_SUFFIX_LEN - HASH_LEN - 1).collect();
    format!("{}-{hash}", head.trim_end_matches('-'))
}

/// Container Apps operations for one app.
#[derive(Debug, Clone)]
pub struct ContainerApps {
    arm: Arm,
    app: ContainerAppRef,
}

use crate::azure::arm::bad_shape;

impl ContainerApps {
    /// Operations on `app` through `arm`.
    pub fn new(arm: Arm, app: ContainerAppRef) -> Self {
        ContainerApps { arm, app }
    }

    /// The app this acts on.
    pub fn app_ref(&self) -> &ContainerAppRef {
        &self.app
    }

    /// The ARM client.
    pub fn arm(&self) -> &Arm {
        &self.arm
    }

    /// Reads the app.
    pub async fn get(&self, cancel: &Cancel) -> Result<AppInfo, ArmError> {
        let id = self.app.id();
        let v = self.arm.get(&id, API_VERSION, cancel).await?;
        AppInfo::from_json(&v).map_err(|d| bad_shape(&id, d))
    }

    /// The app's revisions (active and inactive), following `nextLink` pages.
    pub async fn revisions(&self, cancel: &Cancel) -> Result<Vec<RevisionInfo>, ArmError> {
        let path = format!("{}/revisions", self.app.id());
        self.arm
            .list(&path, API_VERSION, cancel)
            .await?
            .iter()
            .map(|r| RevisionInfo::from_json(r).map_err(|d| bad_shape(&path, d)))
            .collect()
    }

    /// Reads one revision.
    pub async fn revision(&self, name: &str, cancel: &Cancel) -> Result<RevisionInfo, ArmError> {
        let path = self.app.revision_path(name);
        let v = self.arm.get(&path, API_VERSION, cancel).await?;
        RevisionInfo::from_json(&v).map_err(|d| bad_shape(&path, d))
    }

    /// How many of a revision's replicas have all their containers ready
    /// (`GET …/revisions/{name}/replicas`).
    pub async fn ready_replicas(&self, name: &str, cancel: &Cancel) -> Result<u32, ArmError> {
        let path = format!("{}/replicas", self.app.revision_path(name));
        let replicas = self.arm.list(&path, API_VERSION, cancel).await?;
        let ready = replicas
            .iter()
            .filter(|replica| {
                let containers = replica
                    .pointer("/properties/containers")
                    .and_then(Value::as_array);
                containers.is_some_and(|cs| {
                    !cs.is_empty()
                        && cs
                            .iter()
                            .all(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                })
            })
            .count();
        Ok(u32::try_from(ready).unwrap_or(u32::MAX))
    }

    /// Deploys `image` as a new revision named `{app}--{suffix}` and returns
    /// that name once the operation has ended (the revision may still be
    /// starting: see [`Self::wait_revision_ready`]).
    ///
    /// `container` names the container that gets the image (`None`: the
    /// app's only container). The PATCH carries the app's **whole**
    /// container list, every other field unchanged. Refused before sending
    /// when the app is in Single revision mode or its traffic follows the
    /// latest revision (either would hand the new revision all traffic).
    pub async fn create_revision(
        &self,
        image: &str,
        container: Option<&str>,
        suffix: &str,
        cancel: &Cancel,
    ) -> Result<String, ArmError> {
        let what = format!("a new revision of container app {}", self.app.app);
        let invalid = |message: String| ArmError::Invalid {
            what: what.clone(),
            message,
        };
        if image.trim().is_empty() {
            return Err(invalid("the image is empty".into()));
        }
        check_suffix(suffix).map_err(invalid)?;
        let info = self.get(cancel).await?;
        if !info.multiple_revisions() {
            return Err(invalid(format!(
                "the app is in {} revision mode, where a new revision replaces the current one and takes all its traffic; a canary needs Multiple. Switch with `az containerapp revision set-mode --name {} --resource-group {} --mode multiple` (or PATCH properties.configuration.activeRevisionsMode to \"Multiple\"), then run again",
                info.active_revisions_mode, self.app.app, self.app.resource_group
            )));
        }
        if info.traffic_follows_latest {
            return Err(invalid(
                "the app's traffic follows the latest revision (latestRevision: true), so the new revision would take that traffic as soon as it is ready; pin the traffic to the current revision by name first".into(),
            ));
        }
        let mut template = info.template.clone();
        let containers = template
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .filter(|cs| !cs.is_empty())
            .ok_or_else(|| invalid("the app's template has no containers".into()))?;
        let names: Vec<String> = containers
            .iter()
            .map(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let index = match container {
            Some(wanted) => names.iter().position(|n| n == wanted).ok_or_else(|| {
                invalid(format!(
                    "the app has no container named '{wanted}' (its containers: {})",
                    names.join(", ")
                ))
            })?,
            None if containers.len() == 1 => 0,
            None => {
                return Err(invalid(format!(
                    "the app has {} containers ({}); name the one that gets the image",
                    names.len(),
                    names.join(", ")
                )));
            }
        };
        match containers.get_mut(index) {
            Some(Value::Object(c)) => {
                c.insert("image".into(), json!(image));
            }
            _ => return Err(invalid(format!("container {index} is not an object"))),
        }
        let containers = containers.clone();
        let body = json!({"properties": {"template": {
            "revisionSuffix": suffix,
            "containers": containers,
        }}});
        let name = format!("{}--{suffix}", self.app.app);
        let op = match self
            .arm
            .write_idempotent(
                reqwest::Method::PATCH,
                &self.app.id(),
                API_VERSION,
                &body,
                cancel,
            )
            .await
        {
            Ok(op) => op,
            // A retried PATCH whose first attempt was applied, or a re-run
            // of the same attempt: the revision is there with this image.
            Err(e @ ArmError::Refused { .. }) if e.to_string().contains("already exists") => {
                return match self.revision(&name, cancel).await {
                    Ok(r) if r.images.get(index).map(String::as_str) == Some(image) => Ok(name),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        self.wait_operation(&format!("creating revision {name}"), &op, cancel)
            .await?;
        Ok(name)
    }

    /// Waits for a PATCH's operation. Its status URL is subscription-scoped;
    /// when it is forbidden (403), the app's `provisioningState` tells.
    async fn wait_operation(
        &self,
        what: &str,
        op: &Accepted,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        match self.arm.wait(what, op, OPERATION_DEADLINE, cancel).await {
            Ok(_) => Ok(()),
            Err(ArmError::Refused { status: 403, .. }) => {
                let started = Instant::now();
                let mut wait = self.arm.poll_interval;
                loop {
                    let info = self.get(cancel).await?;
                    let state = info.provisioning_state.as_str();
                    if state.eq_ignore_ascii_case("Succeeded") {
                        return Ok(());
                    }
                    if state.eq_ignore_ascii_case("Failed")
                        || state.eq_ignore_ascii_case("Canceled")
                    {
                        return Err(ArmError::OperationFailed {
                            what: what.into(),
                            code: state.into(),
                            message: "the container app's provisioningState".into(),
                        });
                    }
                    if started.elapsed() >= OPERATION_DEADLINE {
                        return Err(ArmError::Ambiguous {
                            what: what.into(),
                            detail: format!(
                                "provisioningState still {state} after {}s",
                                OPERATION_DEADLINE.as_secs()
                            ),
                        });
                    }
                    cancel.sleep(wait).await?;
                    wait = (wait * 2).min(MAX_POLL_INTERVAL);
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Polls `name` (with backoff, up to `timeout`) until it is provisioned,
    /// active, running, not unhealthy and has at least one ready replica.
    /// Stops at once when provisioning failed.
    pub async fn wait_revision_ready(
        &self,
        name: &str,
        timeout: Duration,
        cancel: &Cancel,
    ) -> Result<RevisionInfo, ReadyError> {
        let started = Instant::now();
        let mut wait = self.arm.poll_interval.max(Duration::from_millis(50));
        let mut last: Option<(RevisionInfo, Option<u32>)> = None;
        let mut unmet = "the revision does not exist yet".to_string();
        loop {
            match self.revision(name, cancel).await {
                Ok(r) => {
                    let mut ready_replicas = None;
                    let mut state = readiness(&r, None);
                    // The replicas are worth a call only when all else holds.
                    if readiness(&r, Some(1)) == Readiness::Ready {
                        let n = if r.replicas == 0 {
                            0
                        } else {
                            self.ready_replicas(name, cancel).await?
                        };
                        ready_replicas = Some(n);
                        state = readiness(&r, Some(n));
                    }
                    match state {
                        Readiness::Ready => return Ok(r),
                        Readiness::Failed => {
                            return Err(ReadyError::Failed {
                                revision: name.into(),
                                state: r.describe(ready_replicas),
                                last: Box::new(r),
                            });
                        }
                        Readiness::Waiting(why) => {
                            unmet = why;
                            last = Some((r, ready_replicas));
                        }
                    }
                }
                // Just created: the revision can appear a moment later.
                Err(ArmError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ReadyError::Timeout {
                    revision: name.into(),
                    secs: timeout.as_secs(),
                    unmet,
                    state: last
                        .as_ref()
                        .map(|(r, n)| r.describe(*n))
                        .unwrap_or_else(|| "never seen".into()),
                    last: last.map(|(r, _)| Box::new(r)),
                });
            }
            cancel.sleep(wait.min(left)).await.map_err(ArmError::from)?;
            wait = (wait * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Sets the whole traffic split, by revision name (never
    /// `latestRevision`), then reads it back: an error if Azure reports
    /// something else. Weights must sum to 100 and name each revision once
    /// (checked before sending). Idempotent.
    pub async fn set_traffic(
        &self,
        weights: &[TrafficWeight],
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        let what = format!("the traffic split of container app {}", self.app.app);
        check_weights(weights).map_err(|message| ArmError::Invalid {
            what: what.clone(),
            message,
        })?;
        let traffic: Vec<Value> = weights
            .iter()
            .map(|w| {
                let mut t = json!({"revisionName": w.revision, "weight": w.weight});
                if let (Some(label), Value::Object(o)) = (&w.label, &mut t) {
                    o.insert("label".into(), json!(label));
                }
                t
            })
            .collect();
        let body = json!({"properties": {"configuration": {"ingress": {"traffic": traffic}}}});
        let op = self
            .arm
            .write_idempotent(
                reqwest::Method::PATCH,
                &self.app.id(),
                API_VERSION,
                &body,
                cancel,
            )
            .await?;
        self.wait_operation(&format!("setting {what}"), &op, cancel)
            .await?;
        let info = self.get(cancel).await?;
        if info.traffic_follows_latest || split(&info.traffic) != split(weights) {
            return Err(ArmError::OperationFailed {
                what: format!("setting {what}"),
                code: "TrafficNotApplied".into(),
                message: format!(
                    "expedite set {} but Azure reports {}{}",
                    show(weights),
                    show(&info.traffic),
                    if info.traffic_follows_latest {
                        " (with a latestRevision entry)"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(())
    }

    /// Deactivates a revision (`POST …/revisions/{name}/deactivate`).
    /// Refused while it still receives traffic (Azure would accept it and
    /// the traffic would fail): move its traffic first. Safe to repeat.
    pub async fn deactivate(&self, revision: &str, cancel: &Cancel) -> Result<(), ArmError> {
        let info = self.get(cancel).await?;
        let weight: u32 = info
            .traffic
            .iter()
            .filter(|t| t.revision == revision)
            .map(|t| t.weight)
            .sum();
        if weight > 0 {
            return Err(ArmError::Invalid {
                what: format!("deactivating revision {revision}"),
                message: format!(
                    "it still receives {weight}% of the traffic of container app {}; move that traffic to another revision first",
                    self.app.app
                ),
            });
        }
        let path = format!("{}/deactivate", self.app.revision_path(revision));
        // Deactivation is safe to repeat: resend once when the outcome is unknown.
        match self.arm.action(&path, API_VERSION, None, cancel).await {
            Err(ArmError::Ambiguous { .. }) => {
                self.arm.action(&path, API_VERSION, None, cancel).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Activates a revision (`POST …/revisions/{name}/activate`): an
    /// inactive revision runs again (a rollback to it). Safe to repeat.
    pub async fn activate(&self, revision: &str, cancel: &Cancel) -> Result<(), ArmError> {
        let path = format!("{}/activate", self.app.revision_path(revision));
        match self.arm.action(&path, API_VERSION, None, cancel).await {
            // Activation is safe to repeat: resend once when unknown.
            Err(ArmError::Ambiguous { .. }) => {
                self.arm.action(&path, API_VERSION, None, cancel).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Adds or updates only the given tags on the app (Tags API `Merge`).
    /// Idempotent.
    pub async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.arm
            .tags_operation(&self.app.id(), "Merge", tags, cancel)
            .await
    }

    /// Removes the given tags where they still have the given values (Tags
    /// API `Delete`). Idempotent.
    pub async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.arm
            .tags_operation(&self.app.id(), "Delete", tags, cancel)
            .await
    }
}

/// Checks a suffix against Container Apps' rules (reference §5.2).
fn check_suffix(suffix: &str) -> Result<(), String> {
    let chars_ok = suffix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = suffix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase());
    let ends = suffix
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !chars_ok || !starts || !ends || suffix.contains("--") || suffix.len() > 64 {
        return Err(format!(
            "the revision suffix '{suffix}' is invalid: use lower-case letters, digits and single '-', start with a letter and end with a letter or digit (revision_suffix makes one)"
        ));
    }
    Ok(())
}

fn check_weights(weights: &[TrafficWeight]) -> Result<(), String> {
    if weights.is_empty() {
        return Err("no traffic weights given".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for w in weights {
        if w.revision.trim().is_empty() {
            return Err("a traffic weight names no revision".into());
        }
        if !seen.insert(w.revision.as_str()) {
            return Err(format!("revision {} is named twice", w.revision));
        }
    }
    let total: u64 = weights.iter().map(|w| u64::from(w.weight)).sum();
    if total != 100 {
        return Err(format!(
            "the weights sum to {total}, not 100 ({})",
            show(weights)
        ));
    }
    Ok(())
}

/// Revision → (weight, labels), zero weights without labels dropped (Azure
/// keeps stale zero entries for deactivated revisions).
fn split(weights: &[TrafficWeight]) -> BTreeMap<String, (u32, Vec<String>)> {
    let mut out: BTreeMap<String, (u32, Vec<String>)> = BTreeMap::new();
    for w in weights {
        if w.weight == 0 && w.label.is_none() {
            continue;
        }
        let e = out.entry(w.revision.clone()).or_default();
        e.0 += w.weight;
        e.1.extend(w.label.clone());
        e.1.sort();
    }
    out
}

fn show(weights: &[TrafficWeight]) -> String {
    let parts: Vec<String> = weights
        .iter()
        .map(|w| match &w.label {
            Some(l) => format!("{} {}% (label {l})", w.revision, w.weight),
            None => format!("{} {}%", w.revision, w.weight),
        })
        .collect();
    if parts.is_empty() {
        "no traffic".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suffix_ok(s: &str) -> bool {
        check_suffix(s).is_ok() && s.len() <= MAX_SUFFIX_LEN
    }

    #[test]
    fn suffixes_are_valid_fresh_and_deterministic() {
        assert_eq!(revision_suffix("2.4.1", "123456", "2"), "v2-4-1-123456-2");
        assert_eq!(revision_suffix("Hotfix_A", "9", "1"), "hotfix-a-9-1");
        assert_ne!(
            revision_suffix("2.4.1", "123456", "1"),
            revision_suffix("2.4.1", "123456", "2")
        );
        let nasty = [
            ("2.4.1", "12345678901", "1"),
            ("2.4.10", "12345678901", "12"),
            ("V2.4.1-RC.1+Build.5", "987654321098", "3"),
            ("..--..", "", ""),
            ("", "1", "1"),
            ("9", "-", "-"),
            ("ünïcode-ß", "1", "1"),
            (&"x".repeat(300), &"7".repeat(40), "1"),
            ("-leading-dash", "1", "1"),
            ("ends-with-dash-", "1", "1"),
        ];
        for (v, run, attempt) in nasty {
            let s = revision_suffix(v, run, attempt);
            assert!(suffix_ok(&s), "{v:?} {run:?} {attempt:?} → {s:?}");
            assert_eq!(s, revision_suffix(v, run, attempt), "deterministic");
            assert!(
                check_suffix(&s).is_ok()
                    && ("ca-".to_string() + &"a".repeat(29) + "--" + &s).len() <= 54
            );
        }
        // Long inputs: attempts still differ (hashed).
        let a = revision_suffix("2.4.10", "12345678901", "1");
        let b = revision_suffix("2.4.10", "12345678901", "2");
        assert_ne!(a, b);
        assert!(a.starts_with("v2-4-10-"), "{a}");
    }

    #[test]
    fn the_suffix_check_matches_azure_rules() {
        assert!(check_suffix("hotfix-2-4-1").is_ok());
        for bad in ["Hotfix", "1abc", "a--b", "abc-", "", "a.b", "a_b"] {
            assert!(check_suffix(bad).is_err(), "{bad}");
        }
    }

    fn app(traffic: Value) -> AppInfo {
        AppInfo::from_json(&json!({
            "name": "ca",
            "tags": {"owner": "payments", "n": 1},
            "properties": {
                "provisioningState": "Succeeded",
                "latestRevisionName": "ca--new",
                "latestReadyRevisionName": "ca--old",
                "configuration": {"activeRevisionsMode": "Multiple", "ingress": {"fqdn": "ca.env.test", "traffic": traffic}},
                "template": {"containers": [{"name": "a", "image": "i:1"}]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn latest_revision_traffic_resolves_to_the_latest_ready_revision() {
        let info = app(json!([{"latestRevision": true, "weight": 100}]));
        assert!(info.traffic_follows_latest);
        assert_eq!(info.fqdn.as_deref(), Some("ca.env.test"));
        assert_eq!(info.tags.len(), 1);
        let s = stable_revision(&info).unwrap();
        assert_eq!(s.name, "ca--old");
        assert!(s.via_latest_revision);
    }

    #[test]
    fn a_split_is_not_a_stable_revision() {
        let info = app(json!([
            {"revisionName": "ca--old", "weight": 90},
            {"revisionName": "ca--new", "weight": 10, "label": "canary"},
            {"revisionName": "ca--gone", "weight": 0}
        ]));
        let e = stable_revision(&info).unwrap_err();
        assert!(
            e.contains("ca--old 90%") && e.contains("ca--new 10%"),
            "{e}"
        );
        let info = app(json!([
            {"revisionName": "ca--old", "weight": 100, "label": "stable"},
            {"revisionName": "ca--gone", "weight": 0}
        ]));
        let s = stable_revision(&info).unwrap();
        assert_eq!((s.name.as_str(), s.via_latest_revision), ("ca--old", false));
        assert_eq!(s.label.as_deref(), Some("stable"));
        assert!(stable_revision(&app(json!([]))).is_err());
    }

    #[test]
    fn weights_are_checked_before_sending() {
        let w = |r: &str, weight| TrafficWeight {
            revision: r.into(),
            weight,
            label: None,
        };
        assert!(check_weights(&[w("a", 90), w("b", 10)]).is_ok());
        assert!(check_weights(&[w("a", 90), w("b", 20)]).is_err());
        assert!(check_weights(&[w("a", 50), w("a", 50)]).is_err());
        assert!(check_weights(&[w("", 100)]).is_err());
        assert!(check_weights(&[]).is_err());
        // A stale zero entry does not count as a difference.
        assert_eq!(split(&[w("a", 100), w("b", 0)]), split(&[w("a", 100)]));
    }

    fn rev(prov: &str, running: &str, health: &str, active: bool) -> RevisionInfo {
        RevisionInfo {
            name: "ca--x".into(),
            fqdn: None,
            active,
            traffic_weight: 0,
            provisioning_state: prov.into(),
            provisioning_error: None,
            running_state: running.into(),
            running_state_details: None,
            replicas: 1,
            health_state: health.into(),
            images: vec![],
            created_time: None,
        }
    }

    #[test]
    fn readiness_needs_every_condition() {
        let ok = rev("Provisioned", "Running", "Healthy", true);
        assert_eq!(readiness(&ok, Some(1)), Readiness::Ready);
        assert!(
            matches!(readiness(&ok, Some(0)), Readiness::Waiting(w) if w.contains("ready replica"))
        );
        assert!(matches!(readiness(&ok, None), Readiness::Waiting(_)));
        assert_eq!(
            readiness(&rev("Failed", "Failed", "None", true), Some(0)),
            Readiness::Failed
        );
        assert!(matches!(
            readiness(&rev("Provisioning", "Processing", "None", true), Some(1)),
            Readiness::Waiting(w) if w.contains("Provisioning")
        ));
        assert!(matches!(
            readiness(&rev("Provisioned", "Degraded", "Unhealthy", true), Some(1)),
            Readiness::Waiting(w) if w.contains("Degraded")
        ));
        assert!(matches!(
            readiness(&rev("Provisioned", "Running", "Healthy", false), Some(1)),
            Readiness::Waiting(w) if w.contains("active")
        ));
    }
}
