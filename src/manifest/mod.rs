//! The multi-service manifest (`.github/expedite.yml`): services, where
//! each runs, and what it depends on — validated into a [`Manifest`] whose
//! services are known to form a graph without cycles, then cut into
//! [`stages`](Manifest::stages) for a deploy in dependency order.
//!
//! Every problem is reported, each once and with what to do: an unknown
//! field, a duplicate name, a missing setting, a dependency that names no
//! service (with the nearest name), a cycle (with its path). A manifest with
//! any problem deploys nothing.
//!
//! ```yaml
//! version: 1
//! defaults:
//!   resource-group: rg-contoso-prod
//! services:
//!   - name: core-package
//!     platform: command
//!     deploy: ./scripts/publish-core.sh
//!     verify: ./scripts/verify-core.sh
//!   - name: payment-api
//!     app: app-contoso-payments
//!     depends_on: [core-package]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::service;
use crate::config::values::ValueError;

/// Where the manifest is read from when no path is given.
pub const DEFAULT_PATH: &str = ".github/expedite.yml";

/// Bound on the manifest's size: it is configuration, not data.
const MAX_BYTES: usize = 256 * 1024;
/// Bound on the number of services (and so on the graph work).
const MAX_SERVICES: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    version: Option<u32>,
    #[serde(default)]
    defaults: RawDefaults,
    services: Option<Vec<RawService>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDefaults {
    resource_group: Option<String>,
    health_path: Option<String>,
    version_path: Option<String>,
    slot: Option<String>,
    namespace: Option<String>,
    kube_context: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawService {
    name: Option<String>,
    platform: Option<String>,
    app: Option<String>,
    resource_group: Option<String>,
    slot: Option<String>,
    package: Option<String>,
    image: Option<String>,
    container: Option<String>,
    namespace: Option<String>,
    service: Option<String>,
    strategy: Option<String>,
    kube_context: Option<String>,
    production_url: Option<String>,
    version: Option<String>,
    health_path: Option<String>,
    version_path: Option<String>,
    canary: Option<String>,
    deploy: Option<String>,
    verify: Option<String>,
    rollback: Option<String>,
    #[serde(default, rename = "depends_on", alias = "depends-on")]
    depends_on: Vec<String>,
}

/// How a service is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// A registered platform ([`crate::rollout::platforms`]): an Azure
    /// resource and the platform's settings.
    Target {
        /// The platform.
        platform: &'static dyn crate::rollout::platforms::Platform,
        /// The resource's name.
        app: String,
        /// Its resource group.
        resource_group: String,
        /// The platform's settings by key (`slot`, `package`, `image`,
        /// `container`), checked, defaults filled in.
        settings: BTreeMap<String, String>,
    },
    /// Anything else (a package publish, a front end hosted elsewhere):
    /// shell commands the manifest's author wrote, run with `sh -c` and
    /// the service's name and version in the environment.
    Command {
        /// Deploys the service.
        deploy: String,
        /// Exits 0 when the deployed service is healthy in production.
        verify: String,
        /// Puts the previous version back, if the service can.
        rollback: Option<String>,
    },
}

impl Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("platform", self.name())?;
        match self {
            Platform::Target {
                app,
                resource_group,
                settings,
                ..
            } => {
                m.serialize_entry("app", app)?;
                m.serialize_entry("resource_group", resource_group)?;
                for (k, v) in settings {
                    m.serialize_entry(k, v)?;
                }
            }
            Platform::Command {
                deploy,
                verify,
                rollback,
            } => {
                m.serialize_entry("deploy", deploy)?;
                m.serialize_entry("verify", verify)?;
                m.serialize_entry("rollback", rollback)?;
            }
        }
        m.end()
    }
}

impl Service {
    /// What names the service's resource: its app, or (a `command`
    /// service) its own name — unique per resource, so journals and locks
    /// can be named after it.
    pub fn resource_name(&self) -> &str {
        match &self.platform {
            Platform::Target { app, .. } => app,
            Platform::Command { .. } => &self.name,
        }
    }
}

impl Platform {
    /// The platform's name as the manifest spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Platform::Target { platform, .. } => platform.name(),
            Platform::Command { .. } => "command",
        }
    }
}

/// One validated service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its unique name.
    pub name: String,
    /// How it is deployed.
    #[serde(flatten)]
    pub platform: Platform,
    /// The version it must report after the deploy (default: the
    /// `expected-version` input).
    pub version: Option<String>,
    /// Health endpoint path.
    pub health_path: String,
    /// Version endpoint path.
    pub version_path: String,
    /// Canary steps (percentages, increasing), if any.
    pub canary: Option<Vec<u8>>,
    /// Services that must be verified in production first.
    pub depends_on: Vec<String>,
}

/// A validated manifest: unique names, known dependencies, no cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Services in the order the file lists them.
    pub services: Vec<Service>,
}

/// Everything wrong with a manifest, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ManifestError {
    /// The problems, in file order.
    pub problems: Vec<String>,
}

impl ManifestError {
    fn one(p: impl Into<String>) -> ManifestError {
        ManifestError {
            problems: vec![p.into()],
        }
    }
}

fn safe_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A setting checked by the validator the inputs use too, so a value is
/// refused in the same words either way; the problem is recorded with
/// where it is (`service 'web': slot: …`).
fn checked<T>(
    problems: &mut Vec<String>,
    here: &str,
    field: &str,
    value: Option<&str>,
    check: impl FnOnce(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, ()> {
    match value.map(check) {
        None => Ok(None),
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(e)) => {
            problems.push(format!("{here}: {field}: {}; {}", e.problem, e.accepted));
            Err(())
        }
    }
}

/// Where the manifest is, for messages.
fn at(i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("service '{n}'"),
        None => format!("services[{i}]"),
    }
}

/// Parses and validates manifest text. `default_resource_group` comes from
/// the `resource-group` input.
pub fn parse(text: &str, default_resource_group: Option<&str>) -> Result<Manifest, ManifestError> {
    if text.len() > MAX_BYTES {
        return Err(ManifestError::one(format!(
            "the manifest is {} bytes; at most {MAX_BYTES} are read",
            text.len()
        )));
    }
    let raw: RawManifest = serde_saphyr::from_str(text)
        .map_err(|e| ManifestError::one(format!("the manifest is not valid: {e}")))?;
    let mut problems = Vec::new();
    if let Some(v) = raw.version
        && v != 1
    {
        problems.push(format!(
            "version {v} is not supported (this expedite reads version 1)"
        ));
    }
    let raw_services = raw.services.unwrap_or_default();
    if raw_services.is_empty() {
        return Err(ManifestError::one(
            "the manifest lists no services (`services:` with at least one `- name: …`)",
        ));
    }
    if raw_services.len() > MAX_SERVICES {
        return Err(ManifestError::one(format!(
            "the manifest lists {} services; at most {MAX_SERVICES}",
            raw_services.len()
        )));
    }
    let d = &raw.defaults;
    let mut services = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, s) in raw_services.into_iter().enumerate() {
        let Some(name) = s.name.clone() else {
            problems.push(format!("{}: has no `name`", at(i, None)));
            continue;
        };
        let here = at(i, Some(&name));
        if !safe_name(&name) {
            problems.push(format!(
                "{here}: the name must be letters, digits, - _ . (up to 64, starting with a letter or digit)"
            ));
            continue;
        }
        if !seen.insert(name.clone()) {
            problems.push(format!(
                "{here}: the name is used twice; names must be unique"
            ));
            continue;
        }
        // Every setting is checked, each problem recorded; `bad` remembers
        // that one was, so the service is left out of the plan.
        let mut bad = false;
        let mut check = |field: &str,
                         v: Option<&str>,
                         f: fn(&str) -> Result<String, ValueError>|
         -> Option<String> {
            checked(&mut problems, &here, field, v, f).unwrap_or_else(|()| {
                bad = true;
                None
            })
        };
        let rg = check(
            "resource-group",
            s.resource_group
                .as_deref()
                .or(d.resource_group.as_deref())
                .or(default_resource_group),
            service::resource_name,
        );
        // A Deployment's name on Kubernetes, an Azure resource name elsewhere.
        let app_check = service::app_name_check(
            s.platform
                .as_deref()
                .and_then(crate::rollout::platforms::find),
        );
        let app = check("app", s.app.as_deref(), app_check);
        let health_path = check(
            "health-path",
            s.health_path.as_deref().or(d.health_path.as_deref()),
            |v| service::url_path("health-path", v),
        );
        let version_path = check(
            "version-path",
            s.version_path.as_deref().or(d.version_path.as_deref()),
            |v| service::url_path("version-path", v),
        );
        let version = check("version", s.version.as_deref(), service::version);
        let canary = checked(
            &mut problems,
            &here,
            "canary",
            s.canary.as_deref(),
            service::canary_steps,
        )
        .unwrap_or_else(|()| {
            bad = true;
            None
        });
        let mut missing = |what: &str, why: &str| {
            problems.push(format!("{here}: {what} {why}"));
            bad = true;
        };
        // Settings of another platform are refused, not ignored: a `slot`
        // on a container app would otherwise look honoured.
        let not_for =
            |platform: &str, fields: &[(&str, bool)], missing: &mut dyn FnMut(&str, &str)| {
                for (field, given) in fields {
                    if *given {
                        missing(
                            &format!("`{field}`"),
                            &format!("is not a setting of {platform}"),
                        );
                    }
                }
            };
        let no_group = s.resource_group.is_none()
            && d.resource_group.is_none()
            && default_resource_group.is_none();
        let named = s
            .platform
            .as_deref()
            .unwrap_or(crate::rollout::platforms::default().name());
        let platform = if named == "command" {
            not_for(
                &format!(
                    "platform command (its commands deploy it; use platform: {})",
                    crate::rollout::platforms::names()
                ),
                &[
                    ("app", s.app.is_some()),
                    ("slot", s.slot.is_some()),
                    ("package", s.package.is_some()),
                    ("image", s.image.is_some()),
                    ("container", s.container.is_some()),
                    ("namespace", s.namespace.is_some()),
                    ("service", s.service.is_some()),
                    ("strategy", s.strategy.is_some()),
                    ("kube-context", s.kube_context.is_some()),
                    ("production-url", s.production_url.is_some()),
                    ("canary", s.canary.is_some()),
                ],
                &mut missing,
            );
            match (&s.deploy, &s.verify) {
                (Some(deploy), Some(verify)) => Some(Platform::Command {
                    deploy: deploy.clone(),
                    verify: verify.clone(),
                    rollback: s.rollback.clone(),
                }),
                (None, _) => {
                    missing("`deploy`", "is missing (the command that deploys it)");
                    None
                }
                (_, None) => {
                    missing(
                        "`verify`",
                        "is missing (a command that exits 0 when it is healthy in production)",
                    );
                    None
                }
            }
        } else if let Some(p) = crate::rollout::platforms::find(named) {
            not_for(
                &format!(
                    "platform {} (use platform: command for a service its own commands deploy)",
                    p.name()
                ),
                &[
                    ("deploy", s.deploy.is_some()),
                    ("verify", s.verify.is_some()),
                    ("rollback", s.rollback.is_some()),
                ],
                &mut missing,
            );
            if s.canary.is_some() && !p.canary() {
                missing(
                    "`canary`",
                    &format!(
                        "cannot run on platform {}: it has no way to send a share of production's traffic to the new build",
                        p.name()
                    ),
                );
            }
            // The platform's settings, checked as the inputs' are.
            let given = |key: &str| match key {
                "slot" => s.slot.as_deref().or(d.slot.as_deref()),
                "package" => s.package.as_deref(),
                "image" => s.image.as_deref(),
                "container" => s.container.as_deref(),
                "namespace" => s.namespace.as_deref().or(d.namespace.as_deref()),
                "service" => s.service.as_deref(),
                "strategy" => s.strategy.as_deref(),
                "kube-context" => s.kube_context.as_deref().or(d.kube_context.as_deref()),
                "production-url" => s.production_url.as_deref(),
                _ => None,
            };
            let (settings, refusals) = service::platform_settings(p, false, given);
            for f in refusals {
                if f.bad_value {
                    missing(
                        &format!("{}:", f.key),
                        &format!("{}; {}", f.problem, f.accepted),
                    );
                } else {
                    missing(
                        &format!("`{}`", f.key),
                        &format!("{} ({})", f.problem, f.accepted),
                    );
                }
            }
            if s.app.is_none() {
                missing("`app`", &format!("is missing ({}'s name)", p.noun()));
            }
            if let Err((key, problem, accepted)) = p.check(&settings, s.canary.is_some()) {
                missing(&format!("`{key}`"), &format!("{problem} ({accepted})"));
            }
            if no_group && p.needs_azure() {
                missing(
                    "`resource-group`",
                    "is missing (here, in `defaults`, or the resource-group input)",
                );
            }
            // Off Azure, a resource group means nothing (the platform names
            // its own place: a Kubernetes namespace).
            let rg = if p.needs_azure() {
                rg
            } else {
                Some(String::new())
            };
            match (app, rg) {
                (Some(app), Some(resource_group)) => Some(Platform::Target {
                    platform: p,
                    app,
                    resource_group,
                    settings,
                }),
                _ => None,
            }
        } else {
            missing(
                &format!("platform '{named}'"),
                &format!(
                    "is not known ({})",
                    crate::rollout::platforms::names_with(&["command"])
                ),
            );
            None
        };
        let mut deps = Vec::new();
        for dep in &s.depends_on {
            if deps.contains(dep) {
                problems.push(format!("{here}: depends on '{dep}' twice"));
            } else {
                deps.push(dep.clone());
            }
        }
        if let Some(platform) = platform
            && !bad
        {
            services.push(Service {
                name,
                platform,
                version,
                health_path: health_path.unwrap_or_else(|| crate::probe::HEALTH_PATH.into()),
                version_path: version_path.unwrap_or_else(|| crate::probe::VERSION_PATH.into()),
                canary,
                depends_on: deps,
            });
        }
    }
    // Dependencies name services.
    let names: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    for s in &services {
        for dep in &s.depends_on {
            if dep == &s.name {
                problems.push(format!("service '{}': depends on itself", s.name));
            } else if !names.contains(dep.as_str()) {
                let near = names
                    .iter()
                    .min_by_key(|n| strsim::levenshtein(n, dep))
                    .filter(|n| strsim::levenshtein(n, dep) <= 3)
                    .map(|n| format!(" (did you mean '{n}'?)"))
                    .unwrap_or_default();
                problems.push(format!(
                    "service '{}': depends on '{dep}', which is not a service{near}",
                    s.name
                ));
            }
        }
    }
    if problems.is_empty()
        && let Some(cycle) = find_cycle(&services)
    {
        problems.push(format!(
            "the dependencies form a cycle: {} (a service cannot wait for itself)",
            cycle.join(" → ")
        ));
    }
    if problems.is_empty() {
        Ok(Manifest { services })
    } else {
        Err(ManifestError { problems })
    }
}

/// A cycle's path (first node repeated at the end), if any.
fn find_cycle(services: &[Service]) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, &[String]> = services
        .iter()
        .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
        .collect();
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    for s in services {
        let mut stack: Vec<(&str, usize)> = vec![(s.name.as_str(), 0)];
        if mark.get(s.name.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        mark.insert(s.name.as_str(), 1);
        while let Some((node, next)) = stack.last().copied() {
            let children = deps.get(node).copied().unwrap_or(&[]);
            if let Some(child) = children.get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match mark.get(child.as_str()).copied().unwrap_or(0) {
                    0 => {
                        mark.insert(child.as_str(), 1);
                        stack.push((child.as_str(), 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == child.as_str())?;
                        let mut path: Vec<String> = stack[from..]
                            .iter()
                            .map(|(n, _)| (*n).to_string())
                            .collect();
                        path.push(child.clone());
                        return Some(path);
                    }
                    _ => {}
                }
            } else {
                mark.insert(node, 2);
                stack.pop();
            }
        }
    }
    None
}

impl Manifest {
    /// True when a service runs on Azure (and so needs an Azure sign-in);
    /// a manifest of `command` services only does not.
    pub fn needs_azure(&self) -> bool {
        self.services.iter().any(
            |s| matches!(&s.platform, Platform::Target { platform, .. } if platform.needs_azure()),
        )
    }

    /// True when a service runs on Kubernetes (and so needs a connection).
    pub fn needs_kube(&self) -> bool {
        self.services.iter().any(
            |s| matches!(&s.platform, Platform::Target { platform, .. } if platform.needs_kube()),
        )
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(
        path: &std::path::Path,
        default_resource_group: Option<&str>,
    ) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ManifestError::one(format!("cannot read the manifest {}: {e}", path.display()))
        })?;
        parse(&text, default_resource_group).map_err(|mut e| {
            for p in &mut e.problems {
                *p = format!("{}: {p}", path.display());
            }
            e
        })
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Keeps `names` and everything they depend on (transitively); an
    /// unknown name is an error.
    pub fn select(&self, names: &[String]) -> Result<Manifest, ManifestError> {
        let mut keep = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for n in names {
            if self.service(n).is_none() {
                let known: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
                return Err(ManifestError::one(format!(
                    "'{n}' is not a service of the manifest (services: {})",
                    known.join(", ")
                )));
            }
            todo.push(n.clone());
        }
        while let Some(n) = todo.pop() {
            if keep.insert(n.clone())
                && let Some(s) = self.service(&n)
            {
                todo.extend(s.depends_on.iter().cloned());
            }
        }
        Ok(Manifest {
            services: self
                .services
                .iter()
                .filter(|s| keep.contains(&s.name))
                .cloned()
                .collect(),
        })
    }

    /// Stages: each a set of services whose dependencies are all in
    /// earlier stages (longest-path layering), in file order within a
    /// stage. Valid because [`parse`] refused cycles.
    pub fn stages(&self) -> Vec<Vec<String>> {
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        // At most n passes: each pass fixes at least one more level.
        for _ in 0..=self.services.len() {
            let mut changed = false;
            for s in &self.services {
                let l = s
                    .depends_on
                    .iter()
                    .map(|d| level.get(d.as_str()).map_or(0, |l| l + 1))
                    .max()
                    .unwrap_or(0);
                if level.get(s.name.as_str()) != Some(&l) {
                    level.insert(s.name.as_str(), l);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let depth = level.values().copied().max().map_or(0, |m| m + 1);
        let mut stages = vec![Vec::new(); depth];
        for s in &self.services {
            if let Some(stage) = level.get(s.name.as_str()).and_then(|l| stages.get_mut(*l)) {
                stage.push(s.name.clone());
            }
        }
        stages
    }

    /// Services in an order where each comes after its dependencies.
    pub fn order(&self) -> Vec<String> {
        self.stages().into_iter().flatten().collect()
    }

    /// A mermaid graph of the services and their dependencies.
    pub fn mermaid(&self) -> String {
        let id = |n: &str| n.replace(['-', '.'], "_");
        let mut md = String::from("```mermaid\nflowchart LR\n");
        for (i, stage) in self.stages().iter().enumerate() {
            md.push_str(&format!("  subgraph stage{}[\"stage {}\"]\n", i + 1, i + 1));
            for n in stage {
                let platform = self.service(n).map_or("", |s| s.platform.name());
                md.push_str(&format!(
                    "    {}[\"{n}<br/><small>{platform}</small>\"]\n",
                    id(n)
                ));
            }
            md.push_str("  end\n");
        }
        for s in &self.services {
            for d in &s.depends_on {
                md.push_str(&format!("  {} --> {}\n", id(d), id(&s.name)));
            }
        }
        md.push_str("```\n");
        md
    }

    /// `strategy.matrix` JSON for one job per service with `needs:`.
    pub fn matrix(&self) -> serde_json::Value {
        let stages = self.stages();
        let stage_of = |n: &str| stages.iter().position(|s| s.iter().any(|x| x == n));
        let include: Vec<serde_json::Value> = self
            .order()
            .iter()
            .filter_map(|n| self.service(n))
            .map(|s| {
                serde_json::json!({
                    "service": s.name,
                    "platform": s.platform.name(),
                    "stage": stage_of(&s.name).map_or(0, |i| i + 1),
                    "needs": s.depends_on,
                })
            })
            .collect();
        serde_json::json!({ "include": include })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTOSO: &str = r#"
version: 1
defaults:
  resource-group: rg-contoso-prod
services:
  - name: core-package
    platform: command
    deploy: ./publish-core.sh
    verify: ./verify-core.sh
  - name: payment-api
    app: app-contoso-payments
    depends_on: [core-package]
  - name: notification-service
    app: app-contoso-notifications
    depends_on: [core-package]
  - name: frontend
    app: app-contoso-web
    depends_on: [payment-api, notification-service]
"#;

    #[test]
    fn the_contoso_graph_has_three_stages() {
        let m = parse(CONTOSO, None).unwrap();
        assert_eq!(
            m.stages(),
            vec![
                vec!["core-package".to_string()],
                vec!["payment-api".into(), "notification-service".into()],
                vec!["frontend".into()]
            ]
        );
        let matrix = m.matrix();
        assert_eq!(matrix["include"][3]["service"], "frontend");
        assert_eq!(matrix["include"][3]["stage"], 3);
        assert_eq!(matrix["include"][3]["needs"][1], "notification-service");
        assert!(m.mermaid().contains("payment_api --> frontend"));
        let only = m.select(&["payment-api".into()]).unwrap();
        assert_eq!(only.order(), ["core-package", "payment-api"]);
    }

    #[test]
    fn a_cycle_is_named_with_its_path() {
        let text = CONTOSO.replace(
            "    deploy: ./publish-core.sh",
            "    deploy: ./publish-core.sh\n    depends_on: [frontend]",
        );
        let e = parse(&text, None).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert!(
            e.problems[0].contains("core-package → frontend → payment-api → core-package"),
            "{e}"
        );
    }

    #[test]
    fn every_problem_is_reported_once_with_what_to_do() {
        let text = r#"
services:
  - name: a
    app: app-a
    resource-group: rg
    depends_on: [paymnt-api, a]
  - name: a
    app: app-b
    resource-group: rg
  - name: payment-api
    platform: container-apps
    app: ca-x
    resource-group: rg
  - name: c
    platform: command
    deploy: x
  - name: d
    platform: lambda
  - platform: command
"#;
        let e = parse(text, None).unwrap_err();
        let all = e.to_string();
        for want in [
            "service 'a': the name is used twice",
            "service 'payment-api': `image` is required by `platform: container-apps`",
            "service 'c': `verify` is missing",
            "service 'd': platform 'lambda' is not known",
            "services[5]: has no `name`",
            "service 'a': depends on itself",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        // The unknown dependency is reported with the nearest name once the
        // service itself is valid.
        let e = parse(
            "services:\n  - name: payment-api\n    app: x\n    resource-group: rg\n  - name: web\n    app: y\n    resource-group: rg\n    depends_on: [paymnt-api]\n",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "depends on 'paymnt-api', which is not a service (did you mean 'payment-api'?)"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_and_bad_yaml_are_refused() {
        let e = parse("services:\n  - name: a\n    ap: x\n", None).unwrap_err();
        assert!(e.to_string().contains("ap"), "{e}");
        assert!(parse("services: [", None).is_err());
        assert!(parse("", None).is_err());
        assert!(
            parse("services: []\n", None)
                .unwrap_err()
                .to_string()
                .contains("no services")
        );
    }

    #[test]
    fn the_resource_group_input_fills_in() {
        let m = parse("services:\n  - name: a\n    app: app-a\n", Some("rg-x")).unwrap();
        match &m.services[0].platform {
            Platform::Target {
                resource_group,
                settings,
                ..
            } => {
                assert_eq!(
                    (
                        resource_group.as_str(),
                        settings.get("slot").map(String::as_str)
                    ),
                    ("rg-x", Some("staging"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("services:\n  - name: a\n    app: app-a\n", None).is_err());
    }
}
