//! Azure App Service: sites, slots, traffic-routing rules, swap, and package
//! deployment through Kudu's OneDeploy API.
//!
//! Facts this module is built on (reference: azure-rest.md §3–4):
//! - host names are **read** from ARM (`defaultHostName`, the `Repository`
//!   entry of `hostNameSslStates`), never built from the app name — regional
//!   unique host names break string templates;
//! - routing rules live on the production site's `config/web` as
//!   `experiments.rampUpRules`, replaced whole on every PATCH, and survive a
//!   swap: after swapping they send traffic to the *old* build;
//! - a swap is not idempotent: it is sent once, then polled; if its outcome
//!   is unknown, [`AppService::slot_swap_status`] and the versions served
//!   tell what happened;
//! - Kudu takes the same ARM bearer token (basic auth is often disabled).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::azure::arm::{Arm, ArmError};
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::http::{self, HttpError, Idempotency, RetryPolicy};

/// The Microsoft.Web api-version (the SDKs' default, reference §0).
pub const API_VERSION: &str = "2025-05-01";

/// The Microsoft.Resources api-version for the Tags API.
pub use crate::azure::arm::TAGS_API_VERSION;

/// The name ARM gives the production slot in swap requests.
pub const PRODUCTION: &str = "production";

/// Where an App Service app lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRef {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Web app name.
    pub app: String,
}

impl SiteRef {
    /// `/subscriptions/…/sites/{app}`.
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
            self.subscription, self.resource_group, self.app
        )
    }

    /// The path of a slot; `production` is the site itself.
    pub fn slot_path(&self, slot: &str) -> String {
        if slot == PRODUCTION {
            self.path()
        } else {
            format!("{}/slots/{slot}", self.path())
        }
    }
}

/// The last swap ARM recorded on a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapStatus {
    /// When it completed.
    pub timestamp_utc: String,
    /// Source slot.
    pub source_slot: String,
    /// Destination slot.
    pub destination_slot: String,
}

/// What expedite needs to know about a site or slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// `production` or the slot's name.
    pub slot: String,
    /// `Running` / `Stopped`.
    pub state: String,
    /// The host that serves it.
    pub default_host_name: String,
    /// The Kudu (SCM) host.
    pub scm_host: Option<String>,
    /// The last completed swap.
    pub swap_status: Option<SwapStatus>,
    /// Set while a site operation (a swap) is in progress.
    pub in_progress_operation: Option<String>,
    /// A pending swap-with-preview's target.
    pub target_swap_slot: Option<String>,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
}

impl SlotInfo {
    fn from_json(slot: &str, v: &Value) -> Result<SlotInfo, String> {
        let p = v.get("properties").ok_or("no properties in the site")?;
        let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        let default_host_name = s("defaultHostName").ok_or("the site has no defaultHostName")?;
        let scm_host = p
            .get("hostNameSslStates")
            .and_then(Value::as_array)
            .and_then(|states| {
                states.iter().find_map(|st| {
                    let repo = st.get("hostType").and_then(Value::as_str) == Some("Repository");
                    repo.then(|| st.get("name").and_then(Value::as_str).map(str::to_string))
                        .flatten()
                })
            });
        let swap_status = p
            .get("slotSwapStatus")
            .filter(|x| x.is_object())
            .map(|x| SwapStatus {
                timestamp_utc: x
                    .get("timestampUtc")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                source_slot: x
                    .get("sourceSlotName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                destination_slot: x
                    .get("destinationSlotName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            });
        let tags = v
            .get("tags")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(SlotInfo {
            slot: slot.to_string(),
            state: s("state").unwrap_or_else(|| "Unknown".into()),
            default_host_name,
            scm_host,
            swap_status,
            in_progress_operation: s("inProgressOperationId").filter(|x| !x.is_empty()),
            target_swap_slot: s("targetSwapSlot").filter(|x| !x.is_empty()),
            tags,
        })
    }
}

/// A traffic-routing rule (`RampUpRule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingRule {
    /// Host of the slot receiving the traffic.
    pub action_host_name: String,
    /// Percentage of production traffic sent there.
    pub reroute_percentage: f64,
    /// Rule name (the slot name; the `x-ms-routing-name` cookie value).
    pub name: String,
}

/// App Service operations for one app.
#[derive(Debug, Clone)]
pub struct AppService {
    arm: Arm,
    site: SiteRef,
}

use crate::azure::arm::bad_shape;

impl AppService {
    /// Operations on `site` through `arm`.
    pub fn new(arm: Arm, site: SiteRef) -> Self {
        AppService { arm, site }
    }

    /// The site this acts on.
    pub fn site(&self) -> &SiteRef {
        &self.site
    }

    /// The ARM client.
    pub fn arm(&self) -> &Arm {
        &self.arm
    }

    /// Reads production (`production`) or a slot.
    pub async fn slot(&self, slot: &str, cancel: &Cancel) -> Result<SlotInfo, ArmError> {
        let v = self
            .arm
            .get(&self.site.slot_path(slot), API_VERSION, cancel)
            .await?;
        SlotInfo::from_json(slot, &v).map_err(|d| bad_shape(&self.site.slot_path(slot), d))
    }

    /// Names of the deployment slots (production excluded), following
    /// `nextLink` pages.
    pub async fn slot_names(&self, cancel: &Cancel) -> Result<Vec<String>, ArmError> {
        let slots = self
            .arm
            .list(&format!("{}/slots", self.site.path()), API_VERSION, cancel)
            .await?;
        // ARM names a slot "{app}/{slot}".
        Ok(slots
            .iter()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
            .collect())
    }

    /// The production site's routing rules.
    pub async fn routing_rules(&self, cancel: &Cancel) -> Result<Vec<RoutingRule>, ArmError> {
        let path = format!("{}/config/web", self.site.path());
        let v = self.arm.get(&path, API_VERSION, cancel).await?;
        let rules = v
            .pointer("/properties/experiments/rampUpRules")
            .cloned()
            .unwrap_or(Value::Array(vec![]));
        if rules.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(rules).map_err(|e| bad_shape(&path, e.to_string()))
    }

    /// Replaces the routing rules (an empty list clears them). Idempotent.
    pub async fn set_routing_rules(
        &self,
        rules: &[RoutingRule],
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        let path = format!("{}/config/web", self.site.path());
        let body = json!({"properties": {"experiments": {"rampUpRules": rules}}});
        self.arm
            .write_idempotent(reqwest::Method::PATCH, &path, API_VERSION, &body, cancel)
            .await?;
        Ok(())
    }

    /// Adds or updates only the given tags on the production site, through
    /// the ARM Tags API's `Merge` (other tags, and concurrent edits to them,
    /// are untouched). Idempotent.
    pub async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.tags_operation("Merge", tags, cancel).await
    }

    /// Removes the given tags where they still have the given values (the
    /// Tags API's `Delete`): giving back a lease never removes someone
    /// else's. Idempotent.
    pub async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.tags_operation("Delete", tags, cancel).await
    }

    async fn tags_operation(
        &self,
        operation: &str,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.arm
            .tags_operation(&self.site.path(), operation, tags, cancel)
            .await
    }

    /// Swaps `source` into production: sent once, then polled until done or
    /// `deadline`. Not idempotent — on [`ArmError::Ambiguous`] read
    /// [`Self::slot`]`("production")` and the served versions before acting.
    pub async fn swap_into_production(
        &self,
        source: &str,
        deadline: Duration,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        let path = format!("{}/slotsswap", self.site.slot_path(source));
        let body = json!({"targetSlot": PRODUCTION, "preserveVnet": true});
        let op = self
            .arm
            .action(&path, API_VERSION, Some(&body), cancel)
            .await?;
        let what = format!("swap of {source} into production");
        match self.arm.wait(&what, &op, deadline, cancel).await {
            Ok(_) => Ok(()),
            // The operation itself reported failure: nothing was exchanged.
            Err(e @ ArmError::OperationFailed { .. }) => Err(e),
            Err(e @ (ArmError::Ambiguous { .. } | ArmError::Cancelled(_))) => Err(e),
            // Accepted, then the polls went wrong (throttled, 409, a broken
            // answer): the swap may have happened. Only reading state tells.
            Err(other) => Err(ArmError::Ambiguous {
                what,
                detail: other.to_string(),
            }),
        }
    }

    /// Cancels a pending swap-with-preview on `slot`.
    pub async fn reset_slot_config(&self, slot: &str, cancel: &Cancel) -> Result<(), ArmError> {
        let path = format!("{}/resetSlotConfig", self.site.slot_path(slot));
        self.arm.action(&path, API_VERSION, None, cancel).await?;
        Ok(())
    }
}

/// Kudu deployment statuses (`DeployStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KuduStatus {
    /// 0
    Pending,
    /// 1
    Building,
    /// 2
    Deploying,
    /// 3
    Failed,
    /// 4 (and 5, "Complete", in newer Kudu)
    Success,
}

impl KuduStatus {
    fn from_code(n: i64) -> Option<KuduStatus> {
        Some(match n {
            0 => KuduStatus::Pending,
            1 => KuduStatus::Building,
            2 => KuduStatus::Deploying,
            3 => KuduStatus::Failed,
            4 | 5 => KuduStatus::Success,
            _ => return None,
        })
    }
}

/// A failed package deployment.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Kudu reports a deployment already running (409): wait or fail.
    #[error(
        "another deployment is running on {host} (Kudu answered 409); wait for it or cancel it"
    )]
    Busy {
        /// The SCM host.
        host: String,
    },
    /// The deployment failed; `log` is Kudu's message.
    #[error("the package deployment to {host} failed: {message}")]
    Failed {
        /// The SCM host.
        host: String,
        /// Kudu's status text.
        message: String,
    },
    /// Not finished in time.
    #[error("the package deployment to {host} did not finish within {secs}s")]
    Timeout {
        /// The SCM host.
        host: String,
        /// The bound.
        secs: u64,
    },
    /// Transport, auth or protocol failure.
    #[error(transparent)]
    Arm(#[from] ArmError),
    /// HTTP failure talking to Kudu.
    #[error("Kudu: {0}")]
    Http(#[from] HttpError),
}

/// Deploys a zip package to a slot through Kudu's OneDeploy API
/// (`/api/publish?type=zip`), then polls `/api/deployments/latest`.
pub async fn deploy_package(
    http_client: &reqwest::Client,
    tokens: &TokenProvider,
    scm_host: &str,
    package: Vec<u8>,
    deadline: Duration,
    cancel: &Cancel,
) -> Result<(), DeployError> {
    let token = tokens.token(cancel).await.map_err(ArmError::from)?;
    let publish = format!("https://{scm_host}/api/publish?type=zip&async=true");
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let result = http::send(
        || {
            http_client
                .post(&publish)
                .bearer_auth(token.expose_secret())
                .header("content-type", "application/octet-stream")
                .body(package.clone())
        },
        Idempotency::Once,
        &once,
        cancel,
    )
    .await;
    match result {
        Ok(_) => {}
        Err(HttpError::Status { status, .. }) if status.as_u16() == 409 => {
            return Err(DeployError::Busy {
                host: scm_host.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    let latest = format!("https://{scm_host}/api/deployments/latest");
    let started = Instant::now();
    loop {
        cancel.check().map_err(ArmError::from)?;
        if started.elapsed() > deadline {
            return Err(DeployError::Timeout {
                host: scm_host.to_string(),
                secs: deadline.as_secs(),
            });
        }
        let token = tokens.token(cancel).await.map_err(ArmError::from)?;
        let r = http::send(
            || http_client.get(&latest).bearer_auth(token.expose_secret()),
            Idempotency::Idempotent,
            &RetryPolicy::default(),
            cancel,
        )
        .await?;
        let v: Value = serde_json::from_slice(&r.bytes).unwrap_or(Value::Null);
        let status = v
            .get("status")
            .and_then(Value::as_i64)
            .and_then(KuduStatus::from_code);
        match status {
            Some(KuduStatus::Success) => return Ok(()),
            Some(KuduStatus::Failed) => {
                let message = v
                    .get("status_text")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("no reason given")
                    .to_string();
                return Err(DeployError::Failed {
                    host: scm_host.to_string(),
                    message,
                });
            }
            _ => cancel
                .sleep(Duration::from_secs(1))
                .await
                .map_err(ArmError::from)?,
        }
    }
}

/// Downloads a slot's content as a zip (Kudu's zip API on
/// `site/wwwroot`), read up to the archive's limit: what a rollback
/// re-stages when no slot holds the version any more.
pub async fn download_site_zip(
    http_client: &reqwest::Client,
    tokens: &TokenProvider,
    scm_host: &str,
    cancel: &Cancel,
) -> Result<Vec<u8>, DeployError> {
    let token = tokens.token(cancel).await.map_err(ArmError::from)?;
    let url = format!("https://{scm_host}/api/zip/site/wwwroot/");
    let r = http::send_limited(
        || http_client.get(&url).bearer_auth(token.expose_secret()),
        Idempotency::Idempotent,
        &RetryPolicy::default(),
        http::PACKAGE_BODY_LIMIT,
        cancel,
    )
    .await?;
    if !r.bytes.starts_with(b"PK") {
        return Err(DeployError::Failed {
            host: scm_host.to_string(),
            message: "the zip API answered something that is not a zip".into(),
        });
    }
    Ok(r.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_info_reads_host_names_from_arm() {
        let v = json!({
            "name": "app/staging",
            "tags": {"owner": "payments", "n": 1},
            "properties": {
                "state": "Running",
                "defaultHostName": "app-abc123-staging.westeurope-01.azurewebsites.net",
                "hostNameSslStates": [
                    {"name": "app-staging.azurewebsites.net", "hostType": "Standard"},
                    {"name": "app-abc123-staging.scm.westeurope-01.azurewebsites.net", "hostType": "Repository"}
                ],
                "slotSwapStatus": {"timestampUtc": "2026-11-21T10:00:00Z", "sourceSlotName": "staging", "destinationSlotName": "production"},
                "inProgressOperationId": null
            }
        });
        let s = SlotInfo::from_json("staging", &v).unwrap();
        assert_eq!(
            s.scm_host.as_deref(),
            Some("app-abc123-staging.scm.westeurope-01.azurewebsites.net")
        );
        assert_eq!(s.swap_status.unwrap().source_slot, "staging");
        assert_eq!(s.in_progress_operation, None);
        assert_eq!(s.tags.get("owner").map(String::as_str), Some("payments"));
        assert!(!s.tags.contains_key("n"));
        assert!(SlotInfo::from_json("x", &json!({"properties": {}})).is_err());
    }

    #[test]
    fn routing_rules_serialize_as_azure_names_them() {
        let r = RoutingRule {
            action_host_name: "h".into(),
            reroute_percentage: 10.0,
            name: "staging".into(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"actionHostName": "h", "reroutePercentage": 10.0, "name": "staging"})
        );
    }

    #[test]
    fn production_is_the_site_itself() {
        let s = SiteRef {
            subscription: "s".into(),
            resource_group: "rg".into(),
            app: "a".into(),
        };
        assert_eq!(s.slot_path(PRODUCTION), s.path());
        assert!(s.slot_path("staging").ends_with("/sites/a/slots/staging"));
    }
}
