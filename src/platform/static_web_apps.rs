//! Azure Static Web Apps (`Microsoft.Web/staticSites`) through ARM: the
//! site, its environments (`builds/{name}`, production is `default`), zip
//! deployments from a URL into a named environment or into production,
//! and removing an environment.
//!
//! Facts from azure-rest-api-specs (`StaticSites.json`, 2025-05-01), which
//! shape what the target can promise:
//! - a deployment takes a **URL** of the build's zip (`appZipUrl`), not the
//!   bytes, and is a long-running operation (`202` + `Azure-AsyncOperation`);
//! - there is no swap and no traffic split: promotion deploys the same zip
//!   to production, and a rollback deploys the previous version's zip;
//! - an environment's host name is read from `builds/{name}`, never built
//!   (Azure's form has changed over time);
//! - a site has a few preview environments at most (3 on Free, 10 on
//!   Standard), so expedite reuses one by name.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::azure::arm::{Arm, ArmError, bad_shape};
use crate::cancel::Cancel;

/// api-version of `Microsoft.Web/staticSites` (the SDK's default too).
pub const API_VERSION: &str = "2025-05-01";

/// The environment that is production.
pub const PRODUCTION: &str = "default";

/// Where a static web app lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSiteRef {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// The static web app's name.
    pub name: String,
}

impl StaticSiteRef {
    /// `/subscriptions/…/providers/Microsoft.Web/staticSites/{name}`.
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

/// What the site says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// Production's host name.
    pub default_hostname: String,
    /// The resource's tags.
    pub tags: BTreeMap<String, String>,
}

/// One environment (`builds/{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Its name (`default` for production).
    pub name: String,
    /// Its host name, as Azure gives it.
    pub hostname: String,
    /// `WaitingForDeployment`, `Uploading`, `Deploying`, `Ready`,
    /// `Failed`, `Deleting` or `Detached`.
    pub status: String,
}

/// A static web app's ARM operations.
#[derive(Clone)]
pub struct StaticWebApps {
    arm: Arm,
    site: StaticSiteRef,
}

impl StaticWebApps {
    /// A client for `site`.
    pub fn new(arm: Arm, site: StaticSiteRef) -> Self {
        StaticWebApps { arm, site }
    }

    /// The site.
    pub fn site(&self) -> &StaticSiteRef {
        &self.site
    }

    /// Reads the site.
    pub async fn get(&self, cancel: &Cancel) -> Result<SiteInfo, ArmError> {
        let path = self.site.path();
        let v = self.arm.get(&path, API_VERSION, cancel).await?;
        let host = v
            .pointer("/properties/defaultHostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad_shape(&path, "it has no properties.defaultHostname".into()))?;
        let tags = v
            .get("tags")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(SiteInfo {
            default_hostname: host.to_string(),
            tags,
        })
    }

    /// Reads one environment; `None` when it does not exist.
    pub async fn environment(
        &self,
        name: &str,
        cancel: &Cancel,
    ) -> Result<Option<Environment>, ArmError> {
        let path = format!("{}/builds/{name}", self.site.path());
        match self.arm.get(&path, API_VERSION, cancel).await {
            Ok(v) => {
                let field = |f: &str| {
                    v.pointer(&format!("/properties/{f}"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                Ok(Some(Environment {
                    name: name.to_string(),
                    hostname: field("hostname"),
                    status: field("status"),
                }))
            }
            Err(ArmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deploys the zip at `zip_url` into environment `name` (production
    /// for [`PRODUCTION`]) and waits up to `deadline` for the operation to
    /// end. Sent once: a deployment is not safe to repeat blindly, so a
    /// lost answer or an operation still running at the deadline is
    /// [`ArmError::Ambiguous`] — read what the environment serves.
    pub async fn deploy_zip(
        &self,
        name: &str,
        zip_url: &str,
        title: &str,
        deadline: Duration,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        let path = if name == PRODUCTION {
            format!("{}/zipdeploy", self.site.path())
        } else {
            format!("{}/builds/{name}/zipdeploy", self.site.path())
        };
        let body = json!({"properties": {
            "appZipUrl": zip_url,
            "deploymentTitle": title,
            "provider": "expedite",
        }});
        let op = self
            .arm
            .action(&path, API_VERSION, Some(&body), cancel)
            .await?;
        let what = format!(
            "zip deployment to the {name} environment of {}",
            self.site.name
        );
        match self.arm.wait(&what, &op, deadline, cancel).await {
            Ok(_) => Ok(()),
            Err(e @ (ArmError::OperationFailed { .. } | ArmError::Cancelled(_))) => Err(e),
            Err(e @ ArmError::Ambiguous { .. }) => Err(e),
            Err(other) => Err(ArmError::Ambiguous {
                what,
                detail: other.to_string(),
            }),
        }
    }

    /// Adds or replaces the given tags on the site, leaving the others.
    pub async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<(), ArmError> {
        self.arm
            .tags_operation(&self.site.path(), "Merge", tags, cancel)
            .await
    }
}
