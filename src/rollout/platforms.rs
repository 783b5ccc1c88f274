//! The platforms expedite deploys to, as one trait and one registry.
//!
//! A platform is a [`Platform`]: its name as the inputs and the manifest
//! spell it, the settings it takes ([`Takes`]), whether it can run a
//! canary, and factories for what commands need from it — the rollout's
//! [`Target`](super::target::Target) for a [`Place`], its Azure Monitor
//! resource, what production serves, what a rollback aims at. Commands
//! hold a `&'static dyn Platform` and never tell platforms apart.
//!
//! Adding a platform is its client under `platform/`, its target and its
//! `Platform` implementation in its own file under `rollout/`, and **one
//! line** in [`PLATFORMS`] (ADR 10 has the checklist).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::driver::DeployPlan;
use super::target::{AnyTarget, Fut};
use crate::archive::Archive;
use crate::azure::arm::Arm;
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::lock::LockKey;
use crate::probe::Endpoints;
use crate::probe::evidence::azure_monitor::MonitorTarget;

/// Every platform, in the order `--help` and error messages list them.
/// **The registration line**: a new platform adds itself here.
pub static PLATFORMS: &[&dyn Platform] = &[
    &super::app_service::PLATFORM,
    &super::container_apps::PLATFORM,
    &super::static_web_apps::PLATFORM,
    &super::kubernetes::PLATFORM,
];

/// The platform called `name`, as the inputs and the manifest spell it.
pub fn find(name: &str) -> Option<&'static dyn Platform> {
    PLATFORMS.iter().copied().find(|p| p.name() == name)
}

/// The platforms' names for a message: `a, b or c`.
pub fn names() -> String {
    names_with(&[])
}

/// The platforms' names and `extra` ones (`command`) for a message.
pub fn names_with(extra: &[&str]) -> String {
    let all: Vec<&str> = PLATFORMS
        .iter()
        .map(|p| p.name())
        .chain(extra.iter().copied())
        .collect();
    match all.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}

/// The platform a service uses when none is named.
pub fn default() -> &'static dyn Platform {
    PLATFORMS[0]
}

/// A service setting a platform may take. Each is validated by one
/// function in `config/service.rs`, whether it comes from an input or a
/// manifest entry; its key is the input's name and the manifest's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Where a new build waits for its checks (an App Service slot, a
    /// Static Web Apps preview environment). Never production.
    Slot,
    /// The build as a zip file on the runner.
    Package,
    /// The build as an `https://` URL of a zip the platform downloads;
    /// `${version}` in it is replaced by the version.
    PackageUrl,
    /// A container image; `${version}` is replaced by the version.
    Image,
    /// Which container of the app gets the image.
    Container,
    /// The Kubernetes namespace.
    Namespace,
    /// The Kubernetes Service users reach.
    Service,
    /// How a Kubernetes service changes: `blue-green` or `canary`.
    Strategy,
    /// The kubeconfig context (its cluster and user).
    KubeContext,
    /// Where users reach the service (`https://…`), when production is
    /// checked there rather than through the platform's own view.
    ProductionUrl,
}

impl Setting {
    /// Every setting, for checks that a service gave none it does not take.
    pub const ALL: [Setting; 10] = [
        Setting::Slot,
        Setting::Package,
        Setting::PackageUrl,
        Setting::Image,
        Setting::Container,
        Setting::Namespace,
        Setting::Service,
        Setting::Strategy,
        Setting::KubeContext,
        Setting::ProductionUrl,
    ];

    /// The input's name and the manifest's field.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Slot => "slot",
            Setting::Package | Setting::PackageUrl => "package",
            Setting::Image => "image",
            Setting::Container => "container",
            Setting::Namespace => "namespace",
            Setting::Service => "service",
            Setting::Strategy => "strategy",
            Setting::KubeContext => "kube-context",
            Setting::ProductionUrl => "production-url",
        }
    }
}

/// Whether a platform needs a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It may be left out.
    Optional,
    /// It must be given; the text is an example for the error.
    Required(&'static str),
    /// A deploy must give it (a rollback goes back to what the platform
    /// kept); the text is an example for the error.
    ForDeploy(&'static str),
    /// Left out, it is this.
    Default(&'static str),
}

/// One setting a platform takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takes {
    /// Which.
    pub setting: Setting,
    /// Whether it must be given.
    pub need: Need,
}

/// The resource a service runs as. On Azure: the subscription, resource
/// group and resource name. On Kubernetes: the kubeconfig context (empty:
/// the current one), the namespace and the Deployment named by the inputs
/// (ADR 15) — the same three parts name the lock and the journal's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Subscription id (Kubernetes: the context).
    pub subscription: String,
    /// Resource group (Kubernetes: the namespace).
    pub resource_group: String,
    /// The resource's name (Kubernetes: the Deployment).
    pub app: String,
}

/// Where a rollout runs: the platform, the resource and the settings the
/// platform took — enough to build its target again from a journal (the
/// post stage, a run taking over after a crash).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "PlaceWire")]
pub struct Place {
    /// The platform, by name.
    #[serde(serialize_with = "platform_name")]
    pub platform: &'static dyn Platform,
    /// The resource.
    pub resource: Resource,
    /// The platform's settings by key (`slot`, `container`, `package`…),
    /// defaults filled in.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

fn platform_name<S: serde::Serializer>(p: &&'static dyn Platform, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// A journal's place as written, including the form before the registry
/// (`site`/`app` for the resource, `slot`/`container` beside it), so a run
/// can take over from an older binary's journal.
#[derive(Deserialize)]
struct PlaceWire {
    platform: String,
    #[serde(alias = "site", alias = "app")]
    resource: Resource,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    container: Option<String>,
}

impl TryFrom<PlaceWire> for Place {
    type Error = String;
    fn try_from(w: PlaceWire) -> Result<Self, String> {
        let platform = find(&w.platform).ok_or_else(|| {
            format!(
                "the journal names platform '{}', which this expedite does not know ({})",
                w.platform,
                names()
            )
        })?;
        let mut settings = w.settings;
        for (key, value) in [("slot", w.slot), ("container", w.container)] {
            if let Some(v) = value {
                settings.entry(key.into()).or_insert(v);
            }
        }
        Ok(Place {
            platform,
            resource: w.resource,
            settings,
        })
    }
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place")
            .field("platform", &self.platform.name())
            .field("resource", &self.resource)
            .field("settings", &self.settings)
            .finish()
    }
}

impl PartialEq for Place {
    fn eq(&self, other: &Self) -> bool {
        self.platform.name() == other.platform.name()
            && self.resource == other.resource
            && self.settings == other.settings
    }
}

impl Eq for Place {}

impl Place {
    /// The service's lock key.
    pub fn key(&self) -> LockKey {
        let r = &self.resource;
        LockKey::azure(&r.subscription, &r.resource_group, &r.app)
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.resource.app
    }

    /// A setting the platform took, by key.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// The slot builds are staged in, where the platform has one.
    pub fn staging_slot(&self) -> Option<&str> {
        self.setting(Setting::Slot.key())
    }
}

/// ARM and Entra tokens: what a platform on Azure needs.
#[derive(Clone)]
pub struct AzureAccess {
    /// ARM.
    pub arm: Arm,
    /// Entra tokens (for data planes such as Kudu).
    pub tokens: Arc<TokenProvider>,
}

/// What a platform's factory needs to build its target.
#[derive(Clone)]
pub struct TargetEnv {
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// Azure, when the run signed in (config asks for the sign-in whenever
    /// a service is on a platform that [`Platform::needs_azure`]).
    pub azure: Option<AzureAccess>,
    /// Where packages are kept for rollbacks, if anywhere.
    pub archive: Option<Archive>,
    /// Unique per run and per process (`{run}-{nonce}`): two runs never
    /// name the same new resource.
    pub run_tag: String,
    /// The run's attempt.
    pub attempt: String,
    /// Where a Kubernetes connection comes from (`kubeconfig`, or the
    /// defaults `kubectl` uses); `None` when no service needs one.
    pub kube: Option<crate::kube::Source>,
}

impl TargetEnv {
    /// Azure, or what to give to have it.
    pub fn azure(&self, platform: &str) -> Result<&AzureAccess, String> {
        self.azure.as_ref().ok_or_else(|| {
            format!(
                "platform {platform} needs an Azure sign-in: give client-id, tenant-id and subscription-id (or azure-credentials)"
            )
        })
    }
}

/// Where a rollback goes.
#[derive(Debug, Clone)]
pub struct Aim {
    /// The version.
    pub version: String,
    /// Container Apps: the revision that serves it.
    pub revision: Option<String>,
    /// Where the version came from (for people).
    pub from: String,
}

/// A platform expedite deploys to. Object-safe: commands hold
/// `&'static dyn Platform`.
pub trait Platform: Send + Sync {
    /// As the inputs and the manifest spell it (`app-service`).
    fn name(&self) -> &'static str;

    /// What its resource is, for messages (`the App Service web app`).
    fn noun(&self) -> &'static str;

    /// The settings it takes; any other is refused.
    fn takes(&self) -> &'static [Takes];

    /// Whether a share of production's traffic can go to the new build
    /// (a canary); without it, `canary` is refused.
    fn canary(&self) -> bool {
        true
    }

    /// The resource a service named `app` is, from the run's Azure
    /// subscription and resource group and the service's settings.
    fn resource(
        &self,
        subscription: &str,
        resource_group: &str,
        app: &str,
        _settings: &BTreeMap<String, String>,
    ) -> Resource {
        Resource {
            subscription: subscription.to_string(),
            resource_group: resource_group.to_string(),
            app: app.to_string(),
        }
    }

    /// Whether its services need an Azure sign-in.
    fn needs_azure(&self) -> bool {
        true
    }

    /// Whether its services need a Kubernetes connection.
    fn needs_kube(&self) -> bool {
        false
    }

    /// What is wrong with a service's settings taken together (each one
    /// alone is checked by `config::service`): the setting's key, the
    /// problem and what is accepted. `canary`: whether canary steps were
    /// given.
    fn check(
        &self,
        _settings: &BTreeMap<String, String>,
        _canary: bool,
    ) -> Result<(), (&'static str, String, String)> {
        Ok(())
    }

    /// Read-only checks of `place` made before its lock is taken, so a
    /// mistake in the inputs (a resource that is not there, a shape the
    /// platform cannot deploy to) is refused without writing anything —
    /// not even the lock. `Err` says what is wrong; a server that cannot
    /// answer is not a refusal (the rollout waits it out under the lock).
    /// Preflight checks the same again under the lock.
    fn precheck<'a>(
        &'a self,
        _place: &'a Place,
        _env: &'a TargetEnv,
        _c: &'a Cancel,
    ) -> Fut<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// The PromQL templates for requests and failures per arm (`$arm`: the
    /// arm's label) when the inputs give none, for a platform whose
    /// metrics are not `http_requests_total` by `slot`.
    fn prometheus_defaults(&self, _place: &Place) -> Option<(String, String)> {
        None
    }

    /// How probes reach its hosts (a Kubernetes target's go through the
    /// API server's proxy with the cluster's credentials); the shared
    /// client by default.
    fn dial(&self, _place: &Place, env: &TargetEnv) -> Result<crate::http::Dial, String> {
        Ok(crate::http::Dial::new(env.http.clone()))
    }

    /// The rollout's target for `place`; `Err` says what is missing (an
    /// Azure sign-in, a usable kubeconfig) before anything is read.
    fn target(
        &self,
        place: &Place,
        plan: &DeployPlan,
        env: &TargetEnv,
    ) -> Result<Box<dyn AnyTarget>, String>;

    /// The resource whose metrics Azure Monitor keeps, for that evidence
    /// source (`None`: the platform has none).
    fn monitor(&self, place: &Place) -> Option<MonitorTarget>;

    /// Where the new build waits for its checks, in words for the summary
    /// (`new_revision`: what the run created, if it named one).
    fn staged_in(&self, place: &Place, new_revision: Option<&str>) -> String;

    /// The version production serves now, for the deployment record
    /// (`None`: unknown, or the platform keeps none there).
    fn live_version<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        endpoints: &'a Endpoints,
        c: &'a Cancel,
    ) -> Fut<'a, Option<String>>;

    /// The tags on the resource (where expedite records what production
    /// served before its last promotion); `Err` says what failed, in
    /// words (the resource not found: which, and what to check).
    fn tags<'a>(
        &'a self,
        place: &'a Place,
        env: &'a TargetEnv,
        c: &'a Cancel,
    ) -> Fut<'a, Result<BTreeMap<String, String>, String>>;

    /// For a rollback to `version`: the platform's own handle on the build
    /// that serves it (Container Apps: a revision), if it has one.
    fn rollback_handle<'a>(
        &'a self,
        _place: &'a Place,
        _env: &'a TargetEnv,
        _version: &'a str,
        _tags: &'a BTreeMap<String, String>,
        _c: &'a Cancel,
    ) -> Fut<'a, Result<Option<String>, String>> {
        Box::pin(async { Ok(None) })
    }
}

impl std::fmt::Debug for dyn Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for dyn Platform {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for dyn Platform {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for p in PLATFORMS {
            assert_eq!(find(p.name()).map(|f| f.name()), Some(p.name()));
            assert_eq!(PLATFORMS.iter().filter(|q| q.name() == p.name()).count(), 1);
        }
        assert!(find("k8s").is_none());
    }

    #[test]
    fn a_journal_written_before_the_registry_is_read() {
        let old = r#"{"platform":"app-service","site":{"subscription":"s","resource_group":"rg","app":"web"},"slot":"staging"}"#;
        let p: Place = serde_json::from_str(old).expect("old app-service place");
        assert_eq!(p.platform.name(), "app-service");
        assert_eq!(p.name(), "web");
        assert_eq!(p.staging_slot(), Some("staging"));
        let old = r#"{"platform":"container-apps","app":{"subscription":"s","resource_group":"rg","app":"ca"},"container":null}"#;
        let p: Place = serde_json::from_str(old).expect("old container-apps place");
        assert_eq!(p.platform.name(), "container-apps");
        assert_eq!(p.setting("container"), None);
        let again: Place =
            serde_json::from_str(&serde_json::to_string(&p).expect("writes")).expect("reads");
        assert_eq!(again, p);
        let unknown =
            r#"{"platform":"k8s","resource":{"subscription":"s","resource_group":"rg","app":"x"}}"#;
        let e = serde_json::from_str::<Place>(unknown).expect_err("unknown platform");
        assert!(e.to_string().contains("does not know"), "{e}");
    }
}
