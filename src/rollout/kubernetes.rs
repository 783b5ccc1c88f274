//! The rollout on Kubernetes (ADR 15): the new build is a Deployment of
//! its own next to the stable one, checked through the API server's pod
//! proxy, then reached by users either all at once — the Service's
//! `version` selector switched (`strategy: blue-green`) — or step by step
//! through an Istio `VirtualService`'s weights over `DestinationRule`
//! subsets by `version` (`strategy: canary`), under the same breaker as
//! every other platform. A rejected build's Deployment is scaled to zero;
//! the previous one stays running, so a rollback is a switch back.
//!
//! Every routing write carries the `resourceVersion` it was computed from:
//! another writer in between is a conflict, read again, never
//! overwritten.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::Result as R;
use super::driver::{DeployPlan, Facts};
use super::platforms::{Need, Place, Setting, Takes, TargetEnv};
use super::target::{AnyTarget, Fut, Side, Target};
use crate::cancel::Cancel;
use crate::kube::{Kube, KubeError};
use crate::platform::kubernetes::{
    self as k8s, KubeApp, Rollout, VERSION_ANNOTATION, VERSION_LABEL, labels_match, subset_name,
};
use crate::probe::Probe;
use crate::probe::evidence::{ArmRef, Arms};

/// How production's traffic moves to the new build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// All at once: the Service's `version` selector.
    BlueGreen,
    /// Step by step: an Istio VirtualService's weights.
    Canary,
}

impl Strategy {
    /// From the `strategy` setting.
    pub fn parse(v: &str) -> Option<Strategy> {
        match v {
            "blue-green" => Some(Strategy::BlueGreen),
            "canary" => Some(Strategy::Canary),
            _ => None,
        }
    }
}

/// What a [`KubeError`] means for the rollout: the API server's trouble
/// (and a write that lost a race: read again) is waited out; a refusal is
/// a failure.
pub fn kube_result(e: KubeError) -> R {
    match e {
        KubeError::Unavailable { .. } | KubeError::Conflict { .. } => R::Unavailable(e.to_string()),
        KubeError::Cancelled(_) => R::Cancelled,
        other => R::Failed(other.to_string()),
    }
}

/// A Kubernetes app as a rollout target.
pub struct KubernetesTarget {
    app: KubeApp,
    strategy: Strategy,
    container: Option<String>,
    /// Where users reach production (host and path, no scheme), when given.
    production: Option<String>,
    /// How often readiness is read.
    poll: Duration,
    /// The `version` labels of the stable and the new Deployment, once
    /// read (the canary's arms are known by them).
    labels: Mutex<(Option<String>, Option<String>)>,
}

/// The Service's port for the API server's service proxy, and the pods'
/// port for the pod proxy.
fn ports(service: &Value) -> (String, String) {
    let port = &service["spec"]["ports"][0];
    let svc = port["port"]
        .as_u64()
        .map_or_else(|| "80".to_owned(), |p| p.to_string());
    let pod = match &port["targetPort"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => svc.clone(),
    };
    (svc, pod)
}

/// The named Deployment is not there.
fn missing_deployment(app: &KubeApp) -> String {
    format!(
        "the Deployment {} was not found in namespace {} (kubectl get deployments -n {})",
        app.deployment, app.namespace, app.namespace
    )
}

/// The Service is not there.
fn missing_service(app: &KubeApp) -> String {
    format!(
        "the Service {} was not found in namespace {} (kubectl get services -n {})",
        app.service, app.namespace, app.namespace
    )
}

/// What is wrong with the Service's selector for `strategy`: blue-green
/// switches its `version`; a canary leaves versions to Istio's subsets.
fn selector_problem(app: &KubeApp, strategy: Strategy, service: &Value) -> Option<String> {
    let selector = &service["spec"]["selector"];
    let has_version = selector.get(VERSION_LABEL).is_some();
    match strategy {
        Strategy::BlueGreen if !has_version => Some(format!(
            "the Service {} selects no `{VERSION_LABEL}` label ({}); blue-green switches that label: add `{VERSION_LABEL}: <the stable pods' label>` to its selector, or use strategy: canary with Istio",
            app.service,
            k8s::selector_string(selector)
        )),
        Strategy::Canary if has_version => Some(format!(
            "the Service {} selects `{VERSION_LABEL}` itself ({}), so an Istio subset of another version would have no endpoints; remove `{VERSION_LABEL}` from its selector (the VirtualService chooses versions), or use strategy: blue-green",
            app.service,
            k8s::selector_string(selector)
        )),
        _ => None,
    }
}

impl KubernetesTarget {
    fn pod_host(app: &KubeApp, pod: &str, port: &str) -> String {
        app.kube.proxy_host(&format!(
            "/api/v1/namespaces/{}/pods/{pod}:{port}/proxy",
            app.namespace
        ))
    }

    fn set_labels(&self, stable: Option<String>, new: Option<String>) {
        if let Ok(mut l) = self.labels.lock() {
            if stable.is_some() {
                l.0 = stable;
            }
            if new.is_some() {
                l.1 = new;
            }
        }
    }

    /// The `version` label of a Deployment's pods.
    async fn label_of(&self, app: &KubeApp, name: &str, c: &Cancel) -> Result<String, R> {
        match app.deployment(name, c).await {
            Ok(Some(d)) => d["spec"]["template"]["metadata"]["labels"][VERSION_LABEL]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    R::Failed(format!(
                        "the pods of Deployment {name} carry no `{VERSION_LABEL}` label"
                    ))
                }),
            Ok(None) => Err(R::Failed(format!(
                "Deployment {name} is not in namespace {}",
                app.namespace
            ))),
            Err(e) => Err(kube_result(e)),
        }
    }

    async fn side_label(&self, to: Side, f: &Facts, c: &Cancel) -> Result<String, R> {
        let app = &self.app;
        let name = match to {
            Side::Previous => f.stable_revision.as_deref(),
            Side::New => f.new_revision.as_deref(),
        };
        let Some(name) = name else {
            return Err(R::Failed(format!(
                "the {} Deployment is not known",
                if to == Side::Previous {
                    "stable"
                } else {
                    "new"
                }
            )));
        };
        let label = self.label_of(app, name, c).await?;
        match to {
            Side::Previous => self.set_labels(Some(label.clone()), None),
            Side::New => self.set_labels(None, Some(label.clone())),
        }
        Ok(label)
    }

    async fn service(&self, app: &KubeApp, c: &Cancel) -> Result<Value, R> {
        match app.service(c).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(R::Failed(missing_service(app))),
            Err(e) => Err(kube_result(e)),
        }
    }

    async fn virtual_service(&self, app: &KubeApp, c: &Cancel) -> Result<Value, R> {
        match app.virtual_service(None, c).await {
            Ok(Some(vs)) => Ok(vs),
            Ok(None) => Err(R::Failed(format!(
                "no Istio VirtualService in namespace {} routes to the Service {}; strategy: canary steps its weights (create one with a route to the stable version's subset, or use strategy: blue-green)",
                app.namespace, app.service
            ))),
            Err(e) => Err(kube_result(e)),
        }
    }

    /// The weights the VirtualService's routes to the Service give now:
    /// `(subset, weight)` of the first such route (`None` subset: the
    /// Service as a whole).
    fn weights(app: &KubeApp, vs: &Value) -> Vec<(Option<String>, u64)> {
        let Some(i) = app.routes_to_service(vs).first().copied() else {
            return Vec::new();
        };
        let route = vs["spec"]["http"][i]["route"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let n = route.len();
        route
            .iter()
            .map(|d| {
                (
                    d["destination"]["subset"].as_str().map(str::to_owned),
                    d["weight"].as_u64().unwrap_or(if n == 1 { 100 } else { 0 }),
                )
            })
            .collect()
    }

    /// Which subset's labels the DestinationRules give `subset`.
    async fn subset_labels(&self, app: &KubeApp, subset: &str, c: &Cancel) -> Result<Value, R> {
        let path = format!(
            "/apis/networking.istio.io/v1/namespaces/{}/destinationrules",
            app.namespace
        );
        let drs = app.kube.list(&path, None, c).await.map_err(kube_result)?;
        drs.iter()
            .filter(|dr| {
                dr["spec"]["host"]
                    .as_str()
                    .is_some_and(|h| app.is_service_host(h))
            })
            .flat_map(|dr| {
                dr["spec"]["subsets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|s| s["name"] == subset)
            .map(|s| s["labels"].clone())
            .ok_or_else(|| {
                R::Failed(format!(
                    "the VirtualService routes to subset {subset}, which no DestinationRule for {} defines",
                    app.service
                ))
            })
    }

    /// The one Deployment whose pods `selector` picks.
    async fn serving_deployment(
        &self,
        app: &KubeApp,
        selector: &Value,
        c: &Cancel,
    ) -> Result<Value, R> {
        let all = app.deployments(c).await.map_err(kube_result)?;
        let found: Vec<Value> = all
            .into_iter()
            .filter(|d| labels_match(&d["spec"]["template"]["metadata"]["labels"], selector))
            .collect();
        match found.len() {
            1 => Ok(found.into_iter().next().unwrap_or_default()),
            0 => Err(R::Failed(format!(
                "no Deployment in namespace {} has pods that production's routing selects ({}); production has nothing to serve it",
                app.namespace,
                k8s::selector_string(selector)
            ))),
            _ => Err(R::Failed(format!(
                "several Deployments have pods that production's routing selects ({}): {}; expedite needs one Deployment per version",
                k8s::selector_string(selector),
                found
                    .iter()
                    .filter_map(|d| d["metadata"]["name"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The routing's selector for production's pods, and routing left
    /// split (a canary left behind) if any.
    async fn production_selector(
        &self,
        app: &KubeApp,
        service: &Value,
        rollback: bool,
        c: &Cancel,
    ) -> Result<(Value, Option<String>), R> {
        let selector = service["spec"]["selector"].clone();
        if let Some(why) = selector_problem(app, self.strategy, service) {
            return Err(R::Failed(why));
        }
        match self.strategy {
            Strategy::BlueGreen => Ok((selector, None)),
            Strategy::Canary => {
                let vs = self.virtual_service(app, c).await?;
                let weights = Self::weights(app, &vs);
                let serving: Vec<_> = weights.iter().filter(|(_, w)| *w > 0).collect();
                let split = (serving.len() > 1).then(|| {
                    serving
                        .iter()
                        .map(|(s, w)| format!("{} {w}%", s.as_deref().unwrap_or("(no subset)")))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                if split.is_some() && !rollback {
                    return Err(R::Failed(format!(
                        "production traffic is split by the VirtualService {} ({}); pin it to one version before deploying (or roll back, which does)",
                        vs["metadata"]["name"].as_str().unwrap_or_default(),
                        split.unwrap_or_default()
                    )));
                }
                let heaviest = serving
                    .iter()
                    .max_by_key(|(_, w)| *w)
                    .map(|(s, _)| s.clone());
                let Some(Some(subset)) = heaviest else {
                    return Err(R::Failed(format!(
                        "the VirtualService {} sends the Service's traffic without a subset; strategy: canary needs routes to DestinationRule subsets by `{VERSION_LABEL}`",
                        vs["metadata"]["name"].as_str().unwrap_or_default()
                    )));
                };
                let subset_labels = self.subset_labels(app, &subset, c).await?;
                let mut sel = selector.as_object().cloned().unwrap_or_default();
                if let Some(m) = subset_labels.as_object() {
                    sel.extend(m.clone());
                }
                Ok((Value::Object(sel), split))
            }
        }
    }

    async fn route(&self, label: &str, rv_from: Option<&Value>, c: &Cancel) -> R {
        let app = &self.app;
        match self.strategy {
            Strategy::BlueGreen => {
                let rv = rv_from.and_then(|s| s["metadata"]["resourceVersion"].as_str());
                match app.select_version(label, rv, c).await {
                    Ok(s) if s["spec"]["selector"][VERSION_LABEL] == label => R::Ok,
                    Ok(s) => R::Failed(format!(
                        "the Service {} selects {} after the switch (expected {VERSION_LABEL}={label})",
                        app.service,
                        k8s::selector_string(&s["spec"]["selector"])
                    )),
                    Err(e) => kube_result(e),
                }
            }
            Strategy::Canary => self.weigh(&[(label, 100)], c).await,
        }
    }

    async fn weigh(&self, weights: &[(&str, u32)], c: &Cancel) -> R {
        let app = &self.app;
        let labels: Vec<&str> = weights.iter().map(|(l, _)| *l).collect();
        if let Err(e) = app.ensure_subsets(&labels, c).await {
            return kube_result(e);
        }
        let vs = match self.virtual_service(app, c).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let by_subset: Vec<(String, u32)> =
            weights.iter().map(|(l, w)| (subset_name(l), *w)).collect();
        match app.set_weights(&vs, &by_subset, c).await {
            Ok(_) => R::Ok,
            Err(e) => kube_result(e),
        }
    }

    async fn routed_to(&self, label: &str, c: &Cancel) -> Result<bool, R> {
        let app = &self.app;
        match self.strategy {
            Strategy::BlueGreen => {
                let s = self.service(app, c).await?;
                Ok(s["spec"]["selector"][VERSION_LABEL] == label)
            }
            Strategy::Canary => {
                let vs = self.virtual_service(app, c).await?;
                let want = subset_name(label);
                let w = Self::weights(app, &vs);
                let serving: Vec<_> = w.iter().filter(|(_, w)| *w > 0).collect();
                Ok(serving.len() == 1 && serving[0].0.as_deref() == Some(want.as_str()))
            }
        }
    }

    /// The Deployment for the new build: the stable one's, with the new
    /// image and `version` label (selector included, so the two never
    /// share pods).
    fn new_deployment(
        &self,
        stable: &Value,
        name: &str,
        label: &str,
        version: &str,
        image: &str,
    ) -> Result<Value, String> {
        let mut d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "labels": stable["metadata"]["labels"].clone(),
                "annotations": {VERSION_ANNOTATION: version},
            },
            "spec": stable["spec"].clone(),
        });
        if d["metadata"]["labels"].is_null() {
            d["metadata"]["labels"] = json!({});
        }
        d["metadata"]["labels"][VERSION_LABEL] = json!(label);
        d["spec"]["selector"]["matchLabels"][VERSION_LABEL] = json!(label);
        d["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] = json!(label);
        if let Some(a) = d["spec"]["template"]["metadata"]["annotations"].as_object_mut() {
            a.remove("kubectl.kubernetes.io/restartedAt");
        }
        if let Some(spec) = d["spec"].as_object_mut() {
            spec.remove("paused");
        }
        let containers = d["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .ok_or_else(|| {
                format!("Deployment {name}: the stable pod template has no containers")
            })?;
        let i = match &self.container {
            Some(want) => containers
                .iter()
                .position(|c| c["name"] == want.as_str())
                .ok_or_else(|| {
                    format!("the stable Deployment's pods have no container named {want}")
                })?,
            None if containers.len() == 1 => 0,
            None => {
                return Err(format!(
                    "the stable Deployment's pods have {} containers; give `container` to say which gets the image",
                    containers.len()
                ));
            }
        };
        containers[i]["image"] = json!(image);
        Ok(d)
    }

    async fn stage_deploy(
        &self,
        plan: &DeployPlan,
        f: &mut Facts,
        c: &Cancel,
    ) -> Result<String, R> {
        let app = &self.app;
        let Some(image) = &plan.image else {
            return Err(R::Failed("no image to deploy".into()));
        };
        let Some(stable_name) = f.stable_revision.clone() else {
            return Err(R::Failed("the stable Deployment is not known".into()));
        };
        let stable = match app.deployment(&stable_name, c).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(R::Failed(format!(
                    "the stable Deployment {stable_name} disappeared"
                )));
            }
            Err(e) => return Err(kube_result(e)),
        };
        let label = k8s::label_value(&plan.expected_version);
        let stable_label = stable["spec"]["template"]["metadata"]["labels"][VERSION_LABEL]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if stable_label == label {
            return Err(R::Failed(format!(
                "the stable Deployment {stable_name} already carries {VERSION_LABEL}={label} but production does not report {}; relabel it, or deploy under another version",
                plan.expected_version
            )));
        }
        let name = k8s::deployment_name(&app.service, &plan.expected_version);
        let wanted = self
            .new_deployment(&stable, &name, &label, &plan.expected_version, image)
            .map_err(R::Failed)?;
        match app.deployment(&name, c).await {
            Ok(None) => {
                tracing::info!("creating Deployment {name} ({image}) next to {stable_name}");
                match app.create_deployment(&wanted, c).await {
                    Ok(_) => {}
                    // Made by our own earlier attempt whose answer was lost:
                    // brought to what is wanted below, on the next pass.
                    Err(KubeError::Conflict { .. }) => {
                        return Err(R::Unavailable(format!(
                            "Deployment {name} appeared while it was being created"
                        )));
                    }
                    Err(e) => return Err(kube_result(e)),
                }
            }
            Ok(Some(existing)) => {
                // An earlier attempt's (or a withdrawn canary's, scaled to
                // zero): brought to this run's template and size.
                let existing_label = existing["spec"]["selector"]["matchLabels"][VERSION_LABEL]
                    .as_str()
                    .unwrap_or_default();
                if existing_label != label {
                    return Err(R::Failed(format!(
                        "Deployment {name} exists with another selector ({VERSION_LABEL}={existing_label}); delete it or deploy under another version"
                    )));
                }
                tracing::info!("updating the existing Deployment {name} to {image}");
                let patch = json!({
                    "metadata": {"annotations": {VERSION_ANNOTATION: plan.expected_version}},
                    "spec": {
                        "replicas": wanted["spec"]["replicas"],
                        "template": wanted["spec"]["template"],
                    }
                });
                if let Err(e) = app.patch_deployment(&name, &patch, c).await {
                    return Err(kube_result(e));
                }
            }
            Err(e) => return Err(kube_result(e)),
        }
        self.set_labels(Some(stable_label), Some(label));
        Ok(name)
    }

    async fn stage_rollback(&self, plan: &DeployPlan, f: &Facts, c: &Cancel) -> Result<String, R> {
        let app = &self.app;
        let Some(name) = plan.revision.clone() else {
            return Err(R::Failed(format!(
                "no Deployment in namespace {} is known to serve {} (expedite names its Deployments after the version and records the one before its last promotion); deploy {} with its image instead",
                app.namespace, plan.expected_version, plan.expected_version
            )));
        };
        let d = match app.deployment(&name, c).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(R::Failed(format!(
                    "Deployment {name} no longer exists in namespace {}; deploy {} with its image instead",
                    app.namespace, plan.expected_version
                )));
            }
            Err(e) => return Err(kube_result(e)),
        };
        if d["spec"]["replicas"].as_u64() == Some(0) {
            let replicas = match &f.stable_revision {
                Some(s) => match app.deployment(s, c).await {
                    Ok(Some(sd)) => sd["spec"]["replicas"].as_u64().unwrap_or(1).max(1),
                    _ => 1,
                },
                None => 1,
            };
            tracing::info!("scaling Deployment {name} back to {replicas} replicas");
            if let Err(e) = app
                .patch_deployment(&name, &json!({"spec": {"replicas": replicas}}), c)
                .await
            {
                return Err(kube_result(e));
            }
        }
        Ok(name)
    }
}

impl Target for KubernetesTarget {
    async fn preflight(&self, plan: &DeployPlan, f: &mut Facts, probe: &Probe, c: &Cancel) -> R {
        let app = &self.app;
        if plan.canary.is_some() && self.strategy == Strategy::BlueGreen {
            return R::Failed(
                "canary steps need strategy: canary (an Istio VirtualService); blue-green switches all traffic at once".into(),
            );
        }
        match app.deployment(&app.deployment, c).await {
            Ok(Some(_)) => {}
            Ok(None) => return R::Failed(missing_deployment(app)),
            Err(e) => return kube_result(e),
        }
        let service = match self.service(app, c).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let (selector, split) = match self
            .production_selector(app, &service, plan.rollback, c)
            .await
        {
            Ok(s) => s,
            Err(r) => return r,
        };
        let stable = match self.serving_deployment(app, &selector, c).await {
            Ok(d) => d,
            Err(r) => return r,
        };
        let stable_name = stable["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stable_label = stable["spec"]["template"]["metadata"]["labels"][VERSION_LABEL]
            .as_str()
            .map(str::to_owned);
        if stable_label.is_none() {
            return R::Failed(format!(
                "the pods of the stable Deployment {stable_name} carry no `{VERSION_LABEL}` label; expedite tells versions apart by it"
            ));
        }
        self.set_labels(stable_label, None);
        f.stable_revision = Some(stable_name.clone());
        let (svc_port, pod_port) = ports(&service);
        f.production_host = match &self.production {
            Some(p) => p.clone(),
            None => app.kube.proxy_host(&format!(
                "/api/v1/namespaces/{}/services/{}:{svc_port}/proxy",
                app.namespace, app.service
            )),
        };
        match app.rollout(&stable_name, c).await {
            Ok(Rollout::Ready(pods)) if !pods.is_empty() => {
                f.stable_host = Some(Self::pod_host(app, &pods[0], &pod_port));
            }
            Ok(other) => {
                tracing::warn!("the stable Deployment {stable_name} is not fully ready: {other:?}");
            }
            Err(e) => return kube_result(e),
        }
        let observed_host = f
            .stable_host
            .clone()
            .unwrap_or_else(|| f.production_host.clone());
        let now = probe.observe(&observed_host, &plan.endpoints, None).await;
        f.previous_version = now.version.clone();
        if now.version.is_none() {
            // Production may be down (the reason for a hotfix): a Deployment
            // expedite made says which version it runs, so the rollback
            // button still has a target afterwards.
            match stable["metadata"]["annotations"][VERSION_ANNOTATION].as_str() {
                Some(v) => {
                    tracing::info!(
                        "production did not report its version ({}); its Deployment {stable_name} runs {v} ({VERSION_ANNOTATION})",
                        now.describe()
                    );
                    f.previous_version = Some(v.to_owned());
                }
                None => tracing::warn!(
                    "the stable Deployment's version could not be read ({}); the previous version is unknown",
                    now.describe()
                ),
            }
        }
        if let Some(s) = split {
            f.stale_rules = vec![s];
        }
        if now.version.as_deref() == Some(plan.expected_version.as_str())
            && f.stale_rules.is_empty()
            && now.good(&plan.endpoints, None)
        {
            return R::AlreadyDeployed;
        }
        R::Ok
    }

    async fn busy(&self, _c: &Cancel) -> Result<Option<String>, R> {
        // Kubernetes has no operation that holds a Service or a
        // VirtualService; concurrent writers are caught by resourceVersion.
        Ok(None)
    }

    async fn merge_tags(&self, tags: &BTreeMap<String, String>, c: &Cancel) -> Result<(), R> {
        let app = &self.app;
        let map: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        app.annotate_service(&map, c).await.map_err(kube_result)
    }

    async fn route_all(&self, to: Side, f: &Facts, c: &Cancel) -> R {
        let label = match self.side_label(to, f, c).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        let app = &self.app;
        let service = match self.strategy {
            Strategy::BlueGreen => match self.service(app, c).await {
                Ok(s) => Some(s),
                Err(r) => return r,
            },
            Strategy::Canary => None,
        };
        self.route(&label, service.as_ref(), c).await
    }

    async fn check_routing(&self, to: Side, f: &Facts, c: &Cancel) -> R {
        let label = match self.side_label(to, f, c).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        match self.routed_to(&label, c).await {
            Ok(true) => R::Ok,
            Ok(false) => R::Failed(format!(
                "production's routing does not send all traffic to {VERSION_LABEL}={label}"
            )),
            Err(r) => r,
        }
    }

    async fn stage(&self, plan: &DeployPlan, f: &mut Facts, _probe: &Probe, c: &Cancel) -> R {
        let app = &self.app;
        let name = if plan.rollback {
            self.stage_rollback(plan, f, c).await
        } else {
            self.stage_deploy(plan, f, c).await
        };
        let name = match name {
            Ok(n) => n,
            Err(r) => return r,
        };
        f.new_revision = Some(name.clone());
        let service = match self.service(app, c).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let (_, pod_port) = ports(&service);
        match app
            .wait_rolled_out(&name, plan.staging.timeout, self.poll, c)
            .await
        {
            Ok(Rollout::Ready(pods)) => match pods.first() {
                Some(p) => {
                    f.slot_host = Self::pod_host(app, p, &pod_port);
                    if let Ok(label) = self.label_of(app, &name, c).await {
                        self.set_labels(None, Some(label));
                    }
                    R::Ok
                }
                None => R::Failed(format!(
                    "Deployment {name} is rolled out but has no ready pod"
                )),
            },
            Ok(Rollout::Failed(why) | Rollout::Progressing(why)) => {
                R::Failed(format!("{why}; production was not switched"))
            }
            Err(e) => kube_result(e),
        }
    }

    async fn shift(&self, percent: u8, f: &Facts, c: &Cancel) -> R {
        if self.strategy == Strategy::BlueGreen {
            return R::Failed("strategy blue-green cannot send a share of traffic".into());
        }
        let (stable, new) = match (
            self.side_label(Side::Previous, f, c).await,
            self.side_label(Side::New, f, c).await,
        ) {
            (Ok(s), Ok(n)) => (s, n),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let p = u32::from(percent.min(100));
        self.weigh(&[(&stable, 100 - p), (&new, p)], c).await
    }

    async fn swap(
        &self,
        _plan: &DeployPlan,
        f: &Facts,
        _probe: &Probe,
        back: bool,
        c: &Cancel,
    ) -> R {
        // Each switch is a whole-field write read back: an attempt that
        // lost its answer is simply made again.
        let to = if back { Side::Previous } else { Side::New };
        self.route_all(to, f, c).await
    }

    async fn resolve_swap(
        &self,
        _plan: &DeployPlan,
        f: &Facts,
        expected: Option<&str>,
        _probe: &Probe,
        c: &Cancel,
    ) -> R {
        let side = if expected.is_some() && expected == f.previous_version.as_deref() {
            Side::Previous
        } else {
            Side::New
        };
        let label = match self.side_label(side, f, c).await {
            Ok(l) => l,
            Err(R::Failed(why)) => return R::Unavailable(why),
            Err(r) => return r,
        };
        match self.routed_to(&label, c).await {
            Ok(true) => R::Swapped,
            Ok(false) => R::NotSwapped,
            Err(R::Failed(why)) => R::Unavailable(why),
            Err(r) => r,
        }
    }

    async fn retire(&self, f: &Facts, c: &Cancel) {
        let app = &self.app;
        let Some(new) = &f.new_revision else {
            return;
        };
        if f.stable_revision.as_deref() == Some(new.as_str()) {
            return;
        }
        match app
            .patch_deployment(new, &json!({"spec": {"replicas": 0}}), c)
            .await
        {
            Ok(_) => tracing::info!("Deployment {new} scaled to 0"),
            Err(e) => tracing::warn!("could not scale the rejected Deployment {new} to 0: {e}"),
        }
    }

    async fn keep(&self, _plan: &DeployPlan, f: &Facts, _c: &Cancel) -> Option<String> {
        f.stable_revision
            .as_ref()
            .map(|s| format!("Deployment {s} (the previous version) stays running for a rollback"))
    }

    fn arms(&self, f: &Facts) -> Arms {
        let (stable, new) = self
            .labels
            .lock()
            .map(|l| l.clone())
            .unwrap_or((None, None));
        Arms {
            canary: ArmRef {
                label: new.unwrap_or_else(|| f.new_revision.clone().unwrap_or_default()),
                host: f.slot_host.clone(),
            },
            baseline: ArmRef {
                label: stable.unwrap_or_else(|| f.stable_revision.clone().unwrap_or_default()),
                host: f
                    .stable_host
                    .clone()
                    .unwrap_or_else(|| f.production_host.clone()),
            },
        }
    }

    fn rollback_command(&self, version: &str) -> String {
        let a = &self.app;
        format!(
            "expedite rollback --platform kubernetes --services {} --namespace {} --service {} --strategy {} --to-version {version} --reason \"interrupted deploy\"",
            a.deployment,
            a.namespace,
            a.service,
            match self.strategy {
                Strategy::BlueGreen => "blue-green",
                Strategy::Canary => "canary",
            }
        )
    }
}

/// Kubernetes in the registry ([`super::platforms::PLATFORMS`]).
pub struct KubernetesPlatform;

/// The registered Kubernetes platform.
pub static PLATFORM: KubernetesPlatform = KubernetesPlatform;

impl KubernetesPlatform {
    /// The app `place` names, connected as `env` says.
    fn connect(place: &Place, env: &TargetEnv) -> Result<KubeApp, String> {
        let source = env.kube.as_ref().ok_or_else(|| {
            "no Kubernetes connection: give kubeconfig (or set KUBECONFIG, or run in a pod)"
                .to_owned()
        })?;
        let context = place.setting(Setting::KubeContext.key());
        let kube = Kube::connect(source, context).map_err(|e| e.to_string())?;
        let namespace = place
            .setting(Setting::Namespace.key())
            .map_or_else(|| kube.namespace.clone(), str::to_owned);
        Ok(KubeApp {
            namespace,
            deployment: place.resource.app.clone(),
            service: place
                .setting(Setting::Service.key())
                .map_or_else(|| place.resource.app.clone(), str::to_owned),
            kube,
        })
    }

    fn strategy(place: &Place) -> Strategy {
        place
            .setting(Setting::Strategy.key())
            .and_then(Strategy::parse)
            .unwrap_or(Strategy::BlueGreen)
    }
}

impl super::platforms::Platform for KubernetesPlatform {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn noun(&self) -> &'static str {
        "the Kubernetes Deployment"
    }

    fn takes(&self) -> &'static [Takes] {
        &[
            Takes {
                setting: Setting::Image,
                need: Need::ForDeploy(
                    "the image of the new build, e.g. registry.example.com/payments:2.4.1",
                ),
            },
            Takes {
                setting: Setting::Container,
                need: Need::Optional,
            },
            Takes {
                setting: Setting::Namespace,
                need: Need::Optional,
            },
            Takes {
                setting: Setting::Service,
                need: Need::Optional,
            },
            Takes {
                setting: Setting::Strategy,
                need: Need::Default("blue-green"),
            },
            Takes {
                setting: Setting::KubeContext,
                need: Need::Optional,
            },
            Takes {
                setting: Setting::ProductionUrl,
                need: Need::Optional,
            },
        ]
    }

    fn resource(
        &self,
        _subscription: &str,
        _resource_group: &str,
        app: &str,
        settings: &BTreeMap<String, String>,
    ) -> super::platforms::Resource {
        // Context, namespace and Deployment name the lock and the journal's
        // place (an empty part: the kubeconfig's current one).
        let get = |s: Setting| settings.get(s.key()).cloned().unwrap_or_default();
        super::platforms::Resource {
            subscription: get(Setting::KubeContext),
            resource_group: get(Setting::Namespace),
            app: app.to_string(),
        }
    }

    fn needs_azure(&self) -> bool {
        false
    }

    fn needs_kube(&self) -> bool {
        true
    }

    fn check(
        &self,
        settings: &BTreeMap<String, String>,
        canary: bool,
    ) -> Result<(), (&'static str, String, String)> {
        let strategy = settings
            .get(Setting::Strategy.key())
            .and_then(|s| Strategy::parse(s))
            .unwrap_or(Strategy::BlueGreen);
        if canary && strategy == Strategy::BlueGreen {
            return Err((
                "canary",
                "needs strategy: canary on Kubernetes (blue-green switches all traffic at once)".into(),
                "set strategy: canary (an Istio VirtualService routes to the Service), or leave canary out".into(),
            ));
        }
        if strategy == Strategy::Canary && !settings.contains_key(Setting::ProductionUrl.key()) {
            return Err((
                "production-url",
                "is required by strategy: canary (the API server's service proxy bypasses the mesh, so only the mesh's own address shows what users get)".into(),
                "the https:// address users reach through the Istio ingress, e.g. https://payments.example.com".into(),
            ));
        }
        Ok(())
    }

    fn precheck<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        c: &'a Cancel,
    ) -> Fut<'a, Result<(), String>> {
        Box::pin(async move {
            let app = Self::connect(place, env)?;
            // Only a definite answer refuses; a server that cannot answer
            // now is the rollout's to wait out.
            match app.deployment(&app.deployment, c).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(missing_deployment(&app)),
                Err(e @ (KubeError::Config(_) | KubeError::Denied { .. })) => {
                    return Err(e.to_string());
                }
                Err(_) => return Ok(()),
            }
            match app.service(c).await {
                Ok(Some(svc)) => match selector_problem(&app, Self::strategy(place), &svc) {
                    Some(why) => Err(why),
                    None => Ok(()),
                },
                Ok(None) => Err(missing_service(&app)),
                Err(_) => Ok(()),
            }
        })
    }

    fn prometheus_defaults(&self, place: &Place) -> Option<(String, String)> {
        // The namespace as given; without one, any namespace (the label
        // pair of Service and version is specific enough).
        let ns_match = place
            .setting(Setting::Namespace.key())
            .map(|ns| format!(r#",destination_service_namespace="{ns}""#))
            .unwrap_or_default();
        let svc = place
            .setting(Setting::Service.key())
            .unwrap_or(&place.resource.app);
        let base = format!(
            r#"reporter="destination"{ns_match},destination_service_name="{svc}",destination_version="$arm""#
        );
        Some((
            format!("sum(istio_requests_total{{{base}}})"),
            format!(r#"sum(istio_requests_total{{{base},response_code=~"5.."}})"#),
        ))
    }

    fn dial(&self, place: &Place, env: &TargetEnv) -> Result<crate::http::Dial, String> {
        Self::connect(place, env).map(|a| a.kube.dial(env.http.clone()))
    }

    fn target(
        &self,
        place: &Place,
        _plan: &DeployPlan,
        env: &TargetEnv,
    ) -> Result<Box<dyn AnyTarget>, String> {
        let production = place.setting(Setting::ProductionUrl.key()).map(|u| {
            u.trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned()
        });
        Ok(Box::new(KubernetesTarget {
            app: Self::connect(place, env)?,
            strategy: Self::strategy(place),
            container: place.setting(Setting::Container.key()).map(str::to_owned),
            production,
            poll: Duration::from_millis(500),
            labels: Mutex::new((None, None)),
        }))
    }

    fn monitor(
        &self,
        _place: &Place,
    ) -> Option<crate::probe::evidence::azure_monitor::MonitorTarget> {
        None
    }

    fn staged_in(&self, _place: &Place, new_revision: Option<&str>) -> String {
        match new_revision {
            Some(d) => format!("Deployment {}", crate::report::md_cell(d)),
            None => "a new Deployment".into(),
        }
    }

    fn live_version<'a>(
        &'a self,
        _place: &'a Place,
        _env: &'a TargetEnv,
        _endpoints: &'a crate::probe::Endpoints,
        _c: &'a Cancel,
    ) -> Fut<'a, Option<String>> {
        // Read by the deploy's own preflight; the record names none here.
        Box::pin(async { None })
    }

    fn tags<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        c: &'a Cancel,
    ) -> Fut<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move {
            let app = Self::connect(place, env)?;
            match app.service(c).await {
                Ok(Some(s)) => Ok(s["metadata"]["annotations"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default()),
                Ok(None) => Err(format!(
                    "the Service {} was not found in namespace {}",
                    app.service, app.namespace
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn rollback_handle<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        version: &'a str,
        tags: &'a BTreeMap<String, String>,
        c: &'a Cancel,
    ) -> Fut<'a, Result<Option<String>, String>> {
        use super::driver::{PREVIOUS_REVISION_TAG, PREVIOUS_VERSION_TAG};
        Box::pin(async move {
            let app = Self::connect(place, env)?;
            let all = app.deployments(c).await.map_err(|e| e.to_string())?;
            let exists = |n: &str| all.iter().any(|d| d["metadata"]["name"] == n);
            if tags.get(PREVIOUS_VERSION_TAG).map(String::as_str) == Some(version)
                && let Some(d) = tags.get(PREVIOUS_REVISION_TAG)
                && exists(d)
            {
                return Ok(Some(d.clone()));
            }
            // The Deployment that says it runs `version`: expedite's
            // annotation, else the `version` label of its pods.
            let label = k8s::label_value(version);
            let by_annotation = all
                .iter()
                .find(|d| d["metadata"]["annotations"][VERSION_ANNOTATION] == version);
            let by_label = all.iter().find(|d| {
                d["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] == label.as_str()
            });
            Ok(by_annotation
                .or(by_label)
                .and_then(|d| d["metadata"]["name"].as_str().map(str::to_owned)))
        })
    }
}
