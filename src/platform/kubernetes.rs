//! Kubernetes as a deploy target: one app's Deployments, its Service and
//! (for an Istio canary) its VirtualService and DestinationRule, read and
//! changed through [`crate::kube`].
//!
//! The model, shared with the seed's scripts: **each version is its own
//! Deployment** whose pods carry a `version` label; the Service's
//! `version` selector (blue-green) or the VirtualService's weights over
//! `DestinationRule` subsets by `version` (Istio) say which one users
//! reach. A new build is a new Deployment next to the stable one (same pod
//! template, new image and `version`), checked through the API server's
//! pod proxy before any user reaches it. The previous version's Deployment
//! stays, so a rollback is a switch back — the semantics of `kubectl
//! rollout undo`, but idempotent by version.
//!
//! Readiness is `kubectl rollout status`'s: the controller has seen the
//! latest spec (`observedGeneration`), every replica is updated and
//! available, and `ProgressDeadlineExceeded` is a failure.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cancel::Cancel;
use crate::kube::{Kube, KubeError};

/// The pod label that tells versions apart.
pub const VERSION_LABEL: &str = "version";

/// The annotation on an expedite-made Deployment that keeps the exact
/// version (a label value cannot hold every version string).
pub const VERSION_ANNOTATION: &str = "expedite/version";

/// The annotation prefix for what expedite records on the Service (the
/// version to roll back to): `expedite/{tag}`.
pub const RECORD_PREFIX: &str = "expedite/";

/// `version` as a label value: letters, digits, `-`, `_`, `.`; starting
/// and ending with a letter or digit; at most 63 characters.
pub fn label_value(version: &str) -> String {
    let mapped: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "unknown".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The name of the Deployment expedite makes for `version` of `family`:
/// `{family}-v{version}` lower-cased, other characters as `-`, at most 63.
pub fn deployment_name(family: &str, version: &str) -> String {
    let v: String = label_value(version)
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .collect();
    let mut name = format!("{family}-v{v}");
    name.truncate(63);
    name.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// A DestinationRule subset's name for a `version` label value: `v` and
/// the value, lower-cased, `.` and `_` as `-` (the seed's `v2-1-1`).
pub fn subset_name(label: &str) -> String {
    let s: String = label
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '.' || c == '_' { '-' } else { c })
        .collect();
    format!("v{s}")
}

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica updated and available; the names of its ready pods.
    Ready(Vec<String>),
    /// Still going; what it waits for.
    Progressing(String),
    /// It will not finish by itself (`ProgressDeadlineExceeded`).
    Failed(String),
}

/// One app on a cluster: its namespace, the Deployment named by the
/// inputs (the family's name and, on first use, the stable one), and the
/// Service users reach.
#[derive(Debug, Clone)]
pub struct KubeApp {
    /// The connection.
    pub kube: Kube,
    /// The namespace.
    pub namespace: String,
    /// The Deployment named by the inputs.
    pub deployment: String,
    /// The Service.
    pub service: String,
}

impl KubeApp {
    /// The collection path of Deployments in the namespace.
    pub fn deployments_path(&self) -> String {
        format!("/apis/apps/v1/namespaces/{}/deployments", self.namespace)
    }

    /// A Deployment's path.
    pub fn deployment_path(&self, name: &str) -> String {
        format!("{}/{name}", self.deployments_path())
    }

    /// The Service's path.
    pub fn service_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}",
            self.namespace, self.service
        )
    }

    fn istio_path(&self, plural: &str) -> String {
        format!(
            "/apis/networking.istio.io/v1/namespaces/{}/{plural}",
            self.namespace
        )
    }

    /// A Deployment, `None` when it does not exist.
    pub async fn deployment(&self, name: &str, c: &Cancel) -> Result<Option<Value>, KubeError> {
        self.kube.get(&self.deployment_path(name), c).await
    }

    /// Every Deployment in the namespace.
    pub async fn deployments(&self, c: &Cancel) -> Result<Vec<Value>, KubeError> {
        self.kube.list(&self.deployments_path(), None, c).await
    }

    /// The Service, `None` when it does not exist.
    pub async fn service(&self, c: &Cancel) -> Result<Option<Value>, KubeError> {
        self.kube.get(&self.service_path(), c).await
    }

    /// Creates a Deployment.
    pub async fn create_deployment(&self, d: &Value, c: &Cancel) -> Result<Value, KubeError> {
        self.kube.create(&self.deployments_path(), d, c).await
    }

    /// A merge patch of a Deployment.
    pub async fn patch_deployment(
        &self,
        name: &str,
        patch: &Value,
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        self.kube
            .merge_patch(&self.deployment_path(name), patch, c)
            .await
    }

    /// Sets the Service selector's `version` to `label`, only if the
    /// Service is still at `resource_version` when one is given (another
    /// writer in between is a conflict, never overwritten).
    pub async fn select_version(
        &self,
        label: &str,
        resource_version: Option<&str>,
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        let mut patch = json!({"spec": {"selector": {VERSION_LABEL: label}}});
        if let Some(rv) = resource_version {
            patch["metadata"] = json!({"resourceVersion": rv});
        }
        self.kube.merge_patch(&self.service_path(), &patch, c).await
    }

    /// Adds or replaces annotations on the Service.
    pub async fn annotate_service(
        &self,
        annotations: &serde_json::Map<String, Value>,
        c: &Cancel,
    ) -> Result<(), KubeError> {
        let patch = json!({"metadata": {"annotations": annotations}});
        self.kube
            .merge_patch(&self.service_path(), &patch, c)
            .await
            .map(|_| ())
    }

    /// The pods that match `labels` (a `k=v,k=v` selector).
    pub async fn pods(&self, labels: &str, c: &Cancel) -> Result<Vec<Value>, KubeError> {
        self.kube
            .list(
                &format!("/api/v1/namespaces/{}/pods", self.namespace),
                Some(labels),
                c,
            )
            .await
    }

    /// Where the Deployment `name`'s rollout stands now.
    pub async fn rollout(&self, name: &str, c: &Cancel) -> Result<Rollout, KubeError> {
        let Some(d) = self.deployment(name, c).await? else {
            return Ok(Rollout::Failed(format!(
                "Deployment {name} no longer exists in namespace {}",
                self.namespace
            )));
        };
        let st = &d["status"];
        let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
        let generation = d["metadata"]["generation"].as_u64().unwrap_or(0);
        let observed = st["observedGeneration"].as_u64().unwrap_or(0);
        if let Some(cond) = st["conditions"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        }) {
            let why = self.pod_trouble(&d, c).await;
            return Ok(Rollout::Failed(format!(
                "Deployment {name} exceeded its progress deadline ({}){why}",
                cond["message"].as_str().unwrap_or("no message")
            )));
        }
        let n = |k: &str| st[k].as_u64().unwrap_or(0);
        let (updated, available, total) =
            (n("updatedReplicas"), n("availableReplicas"), n("replicas"));
        if observed < generation {
            return Ok(Rollout::Progressing(
                "waiting for the controller to see the new spec".into(),
            ));
        }
        if updated < want {
            return Ok(Rollout::Progressing(format!(
                "{updated} of {want} new replicas updated"
            )));
        }
        if total > updated {
            return Ok(Rollout::Progressing(format!(
                "{} old replicas pending termination",
                total - updated
            )));
        }
        if available < want {
            let why = self.pod_trouble(&d, c).await;
            return Ok(Rollout::Progressing(format!(
                "{available} of {want} updated replicas available{why}"
            )));
        }
        let labels = selector_string(&d["spec"]["selector"]["matchLabels"]);
        let ready = self
            .pods(&labels, c)
            .await?
            .iter()
            .filter(|p| pod_ready(p))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        Ok(Rollout::Ready(ready))
    }

    /// Waits until `name` is rolled out, at most `timeout`, polling every
    /// `poll`. Transient read failures are retried inside the wait.
    pub async fn wait_rolled_out(
        &self,
        name: &str,
        timeout: Duration,
        poll: Duration,
        c: &Cancel,
    ) -> Result<Rollout, KubeError> {
        let started = Instant::now();
        let mut last = Rollout::Progressing("not read yet".into());
        loop {
            match self.rollout(name, c).await {
                Ok(r @ (Rollout::Ready(_) | Rollout::Failed(_))) => return Ok(r),
                Ok(p) => {
                    if p != last
                        && let Rollout::Progressing(why) = &p
                    {
                        tracing::info!("Deployment {name}: {why}");
                    }
                    last = p;
                }
                Err(e @ KubeError::Unavailable { .. }) => {
                    last = Rollout::Progressing(e.to_string());
                }
                Err(e) => return Err(e),
            }
            if started.elapsed() + poll > timeout {
                return Ok(match last {
                    Rollout::Progressing(why) => Rollout::Failed(format!(
                        "Deployment {name} is not ready after {} s: {why}",
                        timeout.as_secs()
                    )),
                    other => other,
                });
            }
            c.sleep(poll).await?;
        }
    }

    /// Why a Deployment's pods are not ready, from their container
    /// states (`CrashLoopBackOff`, `ImagePullBackOff`…), as a clause.
    async fn pod_trouble(&self, d: &Value, c: &Cancel) -> String {
        let labels = selector_string(&d["spec"]["selector"]["matchLabels"]);
        let Ok(pods) = self.pods(&labels, c).await else {
            return String::new();
        };
        let mut reasons: Vec<String> = pods
            .iter()
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|cs| {
                cs["state"]["waiting"]["reason"]
                    .as_str()
                    .map(|r| crate::text::clip(r, 60))
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        if reasons.is_empty() {
            String::new()
        } else {
            format!("; pods: {}", reasons.join(", "))
        }
    }

    /// The VirtualService that routes to the Service: named `name` if
    /// given, else the one whose HTTP routes have the Service as a
    /// destination. `Ok(None)` when there is none.
    pub async fn virtual_service(
        &self,
        name: Option<&str>,
        c: &Cancel,
    ) -> Result<Option<Value>, KubeError> {
        let path = self.istio_path("virtualservices");
        if let Some(n) = name {
            return self.kube.get(&format!("{path}/{n}"), c).await;
        }
        let all = self.kube.list(&path, None, c).await?;
        Ok(all
            .into_iter()
            .find(|vs| !self.routes_to_service(vs).is_empty()))
    }

    /// Whether a destination host names the Service.
    pub fn is_service_host(&self, host: &str) -> bool {
        let (s, ns) = (&self.service, &self.namespace);
        host == s
            || host == format!("{s}.{ns}")
            || host == format!("{s}.{ns}.svc")
            || host == format!("{s}.{ns}.svc.cluster.local")
    }

    /// The indexes of the VirtualService's HTTP routes whose destinations
    /// are all the Service.
    pub fn routes_to_service(&self, vs: &Value) -> Vec<usize> {
        vs["spec"]["http"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r["route"].as_array().is_some_and(|ds| {
                            !ds.is_empty()
                                && ds.iter().all(|d| {
                                    d["destination"]["host"]
                                        .as_str()
                                        .is_some_and(|h| self.is_service_host(h))
                                })
                        })
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the VirtualService `name`'s routes to the Service with
    /// `weights` (subset → percent), only at `resource_version`.
    pub async fn set_weights(
        &self,
        vs: &Value,
        weights: &[(String, u32)],
        c: &Cancel,
    ) -> Result<Value, KubeError> {
        let name = vs["metadata"]["name"].as_str().unwrap_or_default();
        let host = self.service.clone();
        let route: Vec<Value> = weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(
                |(subset, w)| json!({"destination": {"host": host, "subset": subset}, "weight": w}),
            )
            .collect();
        let mut http = vs["spec"]["http"].as_array().cloned().unwrap_or_default();
        for i in self.routes_to_service(vs) {
            if let Some(r) = http.get_mut(i) {
                r["route"] = Value::Array(route.clone());
            }
        }
        let patch = json!({
            "metadata": {"resourceVersion": vs["metadata"]["resourceVersion"]},
            "spec": {"http": http}
        });
        self.kube
            .merge_patch(
                &format!("{}/{name}", self.istio_path("virtualservices")),
                &patch,
                c,
            )
            .await
    }

    /// Makes sure a DestinationRule for the Service has a subset for each
    /// `version` label in `labels` (creating the rule, named after the
    /// Service, when there is none). Other subsets and fields are kept.
    pub async fn ensure_subsets(&self, labels: &[&str], c: &Cancel) -> Result<(), KubeError> {
        let path = self.istio_path("destinationrules");
        let all = self.kube.list(&path, None, c).await?;
        let found = all.into_iter().find(|dr| {
            dr["spec"]["host"]
                .as_str()
                .is_some_and(|h| self.is_service_host(h))
        });
        let subset = |l: &str| json!({"name": subset_name(l), "labels": {VERSION_LABEL: l}});
        match found {
            None => {
                let subsets: Vec<Value> = labels.iter().map(|l| subset(l)).collect();
                let dr = json!({
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "DestinationRule",
                    "metadata": {"name": self.service},
                    "spec": {"host": self.service, "subsets": subsets}
                });
                self.kube.create(&path, &dr, c).await.map(|_| ())
            }
            Some(dr) => {
                let mut subsets = dr["spec"]["subsets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut changed = false;
                for l in labels {
                    let name = subset_name(l);
                    if !subsets.iter().any(|s| s["name"] == name.as_str()) {
                        subsets.push(subset(l));
                        changed = true;
                    }
                }
                if !changed {
                    return Ok(());
                }
                let name = dr["metadata"]["name"].as_str().unwrap_or_default();
                let patch = json!({
                    "metadata": {"resourceVersion": dr["metadata"]["resourceVersion"]},
                    "spec": {"subsets": subsets}
                });
                self.kube
                    .merge_patch(&format!("{path}/{name}"), &patch, c)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A label map as a `k=v,k=v` selector.
pub fn selector_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Whether a pod reports the `Ready` condition.
pub fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    }) && p["metadata"]["deletionTimestamp"].is_null()
}

/// Whether `labels` (a pod template's) has every pair of `selector`.
pub fn labels_match(labels: &Value, selector: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_from_versions() {
        assert_eq!(label_value("2.4.1"), "2.4.1");
        assert_eq!(label_value("v2.4.1+build.7"), "v2.4.1-build.7");
        assert_eq!(label_value("--"), "unknown");
        assert!(label_value(&"9".repeat(100)).len() <= 63);
        assert_eq!(deployment_name("payments", "2.4.1"), "payments-v2.4.1");
        assert_eq!(deployment_name("payments", "RC_1"), "payments-vrc-1");
        assert!(deployment_name(&"p".repeat(70), "1").len() <= 63);
        assert_eq!(subset_name("2.1.1"), "v2-1-1");
    }

    #[test]
    fn selectors_match_templates() {
        let t = json!({"app": "web", "version": "1"});
        assert!(labels_match(&t, &json!({"app": "web"})));
        assert!(!labels_match(&t, &json!({"app": "web", "version": "2"})));
        assert!(
            !labels_match(&t, &json!({})),
            "an empty selector picks nothing here"
        );
        assert_eq!(selector_string(&t), "app=web,version=1");
    }
}
