//! Container Apps state: apps, revisions, traffic weights and provisioning
//! operations (reference §5). Each revision runs the demo app at the version
//! named by its container image tag.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::world::{Build, OpStatus, OrderBook, Process};

/// The Contoso environment's default domain.
pub const CONTOSO_ENV_DOMAIN: &str = "happyhill-1a2b3c4d.westeurope.azurecontainerapps.test";

/// `configuration.ingress.traffic[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeight {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    pub weight: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub latest_revision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One revision.
#[derive(Debug, Clone)]
pub struct Revision {
    pub name: String,
    pub suffix: String,
    pub created: DateTime<Utc>,
    pub active: bool,
    pub template: Value,
    pub build: Build,
    /// Provisioned (and ready to serve) from this instant.
    pub ready_at: Instant,
    pub process: Process,
}

impl Revision {
    pub fn ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }
}

/// A container app.
#[derive(Debug, Clone)]
pub struct ContainerApp {
    pub name: String,
    pub env_name: String,
    pub env_domain: String,
    /// `properties.configuration` without `ingress.traffic` / `ingress.fqdn`.
    pub configuration: Map<String, Value>,
    pub traffic: Vec<TrafficWeight>,
    pub template: Value,
    pub revisions: BTreeMap<String, Revision>,
    /// Names in creation order.
    pub revision_order: Vec<String>,
    /// Id of the operation in progress, if any.
    pub busy: Option<String>,
    pub orders: OrderBook,
    /// Unix minute → (revision, status category) → requests.
    pub monitor: BTreeMap<i64, BTreeMap<(String, String), u64>>,
}

/// A container app provisioning LRO.
#[derive(Debug, Clone)]
pub struct AppOperation {
    pub id: String,
    pub app: String,
    pub started_utc: DateTime<Utc>,
    pub completes_at: Instant,
    pub status: OpStatus,
}

/// The version the demo app reports for an image: its tag.
pub fn version_of_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let without_digest = last.split('@').next().unwrap_or(last);
    match without_digest.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_owned(),
        _ => "latest".to_owned(),
    }
}

/// The image of the first container of a template.
pub fn first_image(template: &Value) -> Option<&str> {
    template.get("containers")?.get(0)?.get("image")?.as_str()
}

impl ContainerApp {
    pub fn contoso(now: Instant) -> Self {
        let template = json!({
            "revisionSuffix": "v240",
            "terminationGracePeriodSeconds": null,
            "initContainers": null,
            "containers": [{
                "image": "contosoacr.azurecr.io/payments:2.4.0",
                "name": "payments",
                "env": [{"name": "ASPNETCORE_URLS", "value": "http://+:8080"}],
                "resources": {"cpu": 0.5, "memory": "1Gi", "ephemeralStorage": "2Gi"},
                "probes": [{"type": "Readiness", "httpGet": {"path": "/health", "port": 8080}}]
            }],
            "scale": {"minReplicas": 1, "maxReplicas": 10, "cooldownPeriod": 300, "pollingInterval": 30, "rules": null},
            "volumes": null,
            "serviceBinds": null
        });
        let configuration = match json!({
            "secrets": null,
            "activeRevisionsMode": "Multiple",
            "targetLabel": "",
            "ingress": {
                "external": true,
                "targetPort": 8080,
                "exposedPort": 0,
                "transport": "Auto",
                "customDomains": null,
                "allowInsecure": false,
                "ipSecurityRestrictions": null,
                "corsPolicy": null,
                "clientCertificateMode": null,
                "stickySessions": null,
                "additionalPortMappings": null,
                "targetPortHttpScheme": null
            },
            "registries": [],
            "identitySettings": [],
            "dapr": null,
            "runtime": null,
            "maxInactiveRevisions": 100,
            "service": null
        }) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut app = ContainerApp {
            name: "ca-contoso-payments".into(),
            env_name: "cae-contoso-prod".into(),
            env_domain: CONTOSO_ENV_DOMAIN.into(),
            configuration,
            // Scenario decision: traffic follows the latest revision at 100 %,
            // so a hotfix PATCH would get all traffic the moment it is ready
            // unless the product pins traffic by name first (reference §5.4).
            traffic: vec![TrafficWeight {
                revision_name: None,
                weight: 100,
                latest_revision: true,
                label: None,
            }],
            template: template.clone(),
            revisions: BTreeMap::new(),
            revision_order: Vec::new(),
            busy: None,
            orders: OrderBook::default(),
            monitor: BTreeMap::new(),
        };
        app.add_revision("v240", template, now, now);
        app
    }

    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.name, self.env_domain)
    }

    pub fn revision_fqdn(&self, name: &str) -> String {
        format!("{name}.{}", self.env_domain)
    }

    pub fn add_revision(
        &mut self,
        suffix: &str,
        template: Value,
        now: Instant,
        ready_at: Instant,
    ) -> String {
        let name = format!("{}--{suffix}", self.name);
        let version = first_image(&template)
            .map(version_of_image)
            .unwrap_or_else(|| "latest".into());
        self.revisions.insert(
            name.clone(),
            Revision {
                name: name.clone(),
                suffix: suffix.to_owned(),
                created: Utc::now(),
                active: true,
                template,
                build: Build {
                    version,
                    behaviour: None,
                    deployment_id: None,
                    package: None,
                },
                ready_at,
                process: Process::started_at(ready_at.max(now)),
            },
        );
        self.revision_order.push(name.clone());
        name
    }

    pub fn latest_revision(&self) -> Option<&Revision> {
        self.revision_order
            .last()
            .and_then(|n| self.revisions.get(n))
    }

    pub fn latest_ready_revision(&self, now: Instant) -> Option<&Revision> {
        self.revision_order
            .iter()
            .rev()
            .filter_map(|n| self.revisions.get(n))
            .find(|r| r.ready(now))
    }

    /// Traffic with `latestRevision` resolved: (revision name, weight).
    pub fn effective_traffic(&self, now: Instant) -> Vec<(String, i64)> {
        let latest = self.latest_ready_revision(now).map(|r| r.name.clone());
        self.traffic
            .iter()
            .filter_map(|t| {
                let name = if t.latest_revision {
                    latest.clone()
                } else {
                    t.revision_name.clone()
                }?;
                Some((name, t.weight))
            })
            .collect()
    }

    /// The traffic weight each revision receives now.
    pub fn weight_of(&self, revision: &str, now: Instant) -> i64 {
        self.effective_traffic(now)
            .iter()
            .filter(|(n, _)| n == revision)
            .map(|(_, w)| w)
            .sum()
    }

    pub fn resource_id(&self, sub: &str, rg: &str) -> String {
        format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/containerApps/{}",
            self.name
        )
    }

    pub fn json(&self, sub: &str, rg: &str, location_display: &str, now: Instant) -> Value {
        let mut configuration = self.configuration.clone();
        if let Some(Value::Object(ingress)) = configuration.get_mut("ingress") {
            ingress.insert("fqdn".into(), json!(self.fqdn()));
            ingress.insert("traffic".into(), json!(self.traffic));
        }
        let latest = self.latest_revision();
        let ready = self.latest_ready_revision(now);
        json!({
            "id": self.resource_id(sub, rg),
            "name": self.name,
            "type": "Microsoft.App/containerApps",
            "location": location_display,
            "tags": {},
            "properties": {
                "provisioningState": if self.busy.is_some() { "InProgress" } else { "Succeeded" },
                "runningStatus": "Running",
                "managedEnvironmentId": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/{}", self.env_name),
                "environmentId": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/{}", self.env_name),
                "workloadProfileName": "Consumption",
                "outboundIpAddresses": ["20.0.0.1"],
                "latestRevisionName": latest.map(|r| r.name.clone()),
                "latestReadyRevisionName": ready.map(|r| r.name.clone()),
                "latestRevisionFqdn": latest.map(|r| self.revision_fqdn(&r.name)),
                "customDomainVerificationId": "C0DE",
                "configuration": configuration,
                "template": self.template,
                "eventStreamEndpoint": format!("https://westeurope.azurecontainerapps.dev/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{}/eventstream", self.name),
            }
        })
    }

    pub fn revision_json(
        &self,
        rev: &Revision,
        sub: &str,
        rg: &str,
        now: Instant,
        healthy: bool,
    ) -> Value {
        let ready = rev.ready(now);
        let (running, health) = match (rev.active, ready, healthy) {
            (false, _, _) => ("Stopped", "None"),
            (true, false, _) => ("Processing", "None"),
            (true, true, true) => ("Running", "Healthy"),
            (true, true, false) => ("Degraded", "Unhealthy"),
        };
        json!({
            "id": format!("{}/revisions/{}", self.resource_id(sub, rg), rev.name),
            "name": rev.name,
            "type": "Microsoft.App/containerApps/revisions",
            "properties": {
                "createdTime": rev.created.to_rfc3339(),
                "lastActiveTime": rev.created.to_rfc3339(),
                "fqdn": self.revision_fqdn(&rev.name),
                "template": rev.template,
                "active": rev.active,
                "replicas": if rev.active && ready { 1 } else { 0 },
                "trafficWeight": self.weight_of(&rev.name, now),
                "provisioningError": null,
                "healthState": health,
                "provisioningState": if ready { "Provisioned" } else { "Provisioning" },
                "runningState": running,
            }
        })
    }
}

/// RFC 7396 JSON merge patch: objects merge, `null` deletes, everything
/// else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A template as the service compares it: `null` members are absent and
/// read-only members (`resources.ephemeralStorage`, derived from `cpu`) do
/// not count, so a GET→PATCH round trip through an SDK that drops them is
/// not a change.
pub fn normalise_template(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !v.is_null() && k.as_str() != "ephemeralStorage")
                .map(|(k, v)| (k.clone(), normalise_template(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalise_template).collect()),
        other => other.clone(),
    }
}

/// Checks a revision suffix (reference §5.2).
pub fn check_suffix(app: &str, suffix: &str) -> Result<(), String> {
    let ok_chars = suffix
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
    if suffix.is_empty()
        || !ok_chars
        || !starts
        || !ends
        || suffix.contains("--")
        || suffix.len() > 64
    {
        return Err(format!(
            "Invalid value: \"{suffix}\": a revision suffix must consist of lower case alphanumeric characters or '-', start with a letter, end with an alphanumeric character, contain no '--' and be at most 64 characters"
        ));
    }
    // (guessed limit from field reports) revision names beyond 54 chars fail.
    let full = app.len() + 2 + suffix.len();
    if full > 54 {
        return Err(format!(
            "Invalid value: \"{app}--{suffix}\": the revision name must be at most 54 characters, got {full}"
        ));
    }
    Ok(())
}

impl Process {
    /// A process that starts (or started) at `at`.
    pub fn started_at(at: Instant) -> Self {
        Process {
            started: at,
            restarts: 0,
            metrics: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_name_versions() {
        assert_eq!(
            version_of_image("contosoacr.azurecr.io/payments:2.4.1"),
            "2.4.1"
        );
        assert_eq!(version_of_image("localhost:5000/payments"), "latest");
        assert_eq!(version_of_image("payments:2.4.1@sha256:abc"), "2.4.1");
    }

    #[test]
    fn merge_patch_replaces_arrays_and_deletes_nulls() {
        let mut t = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge_patch(&mut t, &json!({"a": {"c": [3]}, "d": null}));
        assert_eq!(t, json!({"a": {"b": 1, "c": [3]}}));
    }

    #[test]
    fn nulls_and_read_only_fields_are_no_template_change() {
        let stored = json!({"containers": [{"image": "a:1", "resources": {"cpu": 0.5, "ephemeralStorage": "2Gi"}}], "volumes": null});
        let echoed = json!({"containers": [{"image": "a:1", "resources": {"cpu": 0.5}}]});
        assert_eq!(normalise_template(&stored), normalise_template(&echoed));
        let changed = json!({"containers": [{"image": "a:2", "resources": {"cpu": 0.5}}]});
        assert_ne!(normalise_template(&stored), normalise_template(&changed));
    }

    #[test]
    fn suffix_rules() {
        assert!(check_suffix("ca-contoso-payments", "hotfix-2-4-1").is_ok());
        for bad in ["Hotfix", "1abc", "a--b", "abc-", ""] {
            assert!(check_suffix("ca-contoso-payments", bad).is_err(), "{bad}");
        }
        assert!(check_suffix("ca-contoso-payments", &"a".repeat(40)).is_err());
    }
}
