//! `rollback`: which services, back to what, verified how.

use std::time::Duration;

use super::values::{self, ValueError, shown};
use super::*;
use crate::action::Env;

/// Settings of `rollback`.
#[derive(Debug, Clone)]
pub struct RollbackConfig {
    /// The platform of the apps named in `services` (a manifest names each
    /// service's own).
    pub platform: &'static dyn crate::rollout::platforms::Platform,
    /// `services: all`: the manifest, whose services are rolled back in
    /// reverse dependency order (`services` holds that order).
    pub manifest: Option<crate::manifest::Manifest>,
    /// Azure access; `None` when no service is on Azure.
    pub azure: Option<AzureConfig>,
    /// How HTTP clients are built: Azure's when it is there, else from the
    /// same inputs.
    pub http: crate::http::HttpSettings,
    /// Where the Kubernetes connection comes from, when a service needs one.
    pub kube: Option<crate::kube::Source>,
    /// Resource group of the apps.
    pub resource_group: String,
    /// Apps to roll back, in order.
    pub services: Vec<String>,
    /// The platform's settings for the apps in `services` (the slot
    /// holding the previous build…), checked, defaults filled in.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Why (data, never interpreted).
    pub reason: String,
    /// Explicit target version.
    pub to_version: Option<String>,
    /// Health and version endpoints.
    pub endpoints: crate::probe::Endpoints,
    /// Requests that must all reach the target afterwards.
    pub verify_samples: usize,
    /// Bound on the swap.
    pub swap_timeout: Duration,
    /// How long to wait for a site operation in progress.
    pub lock_wait: Duration,
    /// Where the audit log goes.
    pub audit_log: std::path::PathBuf,
}

pub(super) fn rollback_config(r: &mut Resolver<'_>, env: &Env) -> Option<RollbackConfig> {
    let raw = r.raw;
    // The platform first: it says how the services' names are checked.
    let platform = r.parse("platform", parse_platform);
    let name_check = service::app_name_check(platform);
    let services = r.parse("services", |v| {
        let list = values::parse_list(v);
        if list.iter().any(|s| s.eq_ignore_ascii_case("all")) {
            if list.len() > 1 {
                return Err(ValueError {
                    problem: "`all` cannot be combined with names".into(),
                    accepted: "`all`, or app names, comma-separated".into(),
                });
            }
            return Ok(list);
        }
        match list.iter().find(|s| name_check(s).is_err()) {
            Some(bad) => Err(ValueError {
                problem: format!("{} is not an app name", shown(bad)),
                accepted: "app names, comma-separated".into(),
            }),
            None if list.is_empty() => Err(ValueError {
                problem: "names no app".into(),
                accepted: "app names, comma-separated".into(),
            }),
            None => Ok(list),
        }
    });
    let reason = raw.get("reason").map(str::to_string);
    let to_version = r.parse("to-version", values::parse_version);
    let health_path = r.parse("health-path", |v| service::url_path("health-path", v));
    let version_path = r.parse("version-path", |v| service::url_path("version-path", v));
    let health_status = r.parse("health-status", |v| {
        values::parse_uint(v, 100, 599).map(|n| n as u16)
    });
    let samples = r.parse("verify-requests", |v| {
        values::parse_uint(v, 1, 10_000).map(|n| n as usize)
    });
    let swap_timeout = duration_at_least(r, "swap-timeout", Duration::from_secs(10));
    let lock_wait = r.parse("lock-wait", values::parse_duration);
    let settings = platform.map(|p| {
        let given = |key: &str| raw.given(key).then(|| raw.get(key)).flatten();
        let (settings, refusals) = service::platform_settings(p, true, given);
        for f in refusals {
            r.error(f.key, &f.problem, &f.accepted);
        }
        settings
    });
    r.parse("resource-group", service::resource_name);
    let dir = env.runner().temp;
    let audit_log = raw
        .get("audit-log")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("expedite-rollback.json"));
    let all = services
        .as_ref()
        .is_some_and(|s| s.len() == 1 && s[0].eq_ignore_ascii_case("all"));
    let platform_needs_azure = platform.is_none_or(|p| p.needs_azure());
    if !all && raw.get("resource-group").is_none() && platform_needs_azure {
        r.error(
            "resource-group",
            "is required by `rollback` (unless `services: all` reads the manifest)",
            "the Azure resource group of the apps, e.g. rg-contoso-prod",
        );
    }
    // Read before the Azure inputs: a manifest of `command` services only
    // needs no Azure sign-in.
    let loaded = if all { load_manifest(r) } else { None };
    let (azure_needed, kube_needed) = match &loaded {
        Some((_, m)) => (m.needs_azure(), m.needs_kube()),
        None => (
            platform_needs_azure,
            platform.is_some_and(|p| p.needs_kube()),
        ),
    };
    let azure = if azure_needed {
        azure_config(r, env).map(Some)
    } else {
        Some(None)
    };
    let http = http_settings(r, &azure);
    let kube = if kube_needed {
        let source = super::kube::kube_source(r, env);
        if let (Some(source), Some(settings)) = (&source, &settings)
            && !all
        {
            super::kube::check_connection(
                r,
                source,
                settings.get("kube-context").map(String::as_str),
            );
        }
        source
    } else {
        None
    };
    let mut services = services?;
    let mut manifest = None;
    if all {
        let (_, m) = loaded?;
        // Dependents first: the reverse of the deploy order.
        services = m.order().into_iter().rev().collect();
        if to_version.is_some() {
            r.error(
                "to-version",
                "cannot apply to every service of the manifest",
                "leave it out: each service goes back to what it served before expedite's last deploy",
            );
            return None;
        }
        manifest = Some(m);
    } else if raw.given("manifest") {
        r.error(
            "manifest",
            "is read by `rollback` only with `services: all`",
            "set services: all, or leave manifest out",
        );
    }
    Some(RollbackConfig {
        platform: platform?,
        manifest,
        azure: azure?,
        http: http?,
        kube,
        resource_group: raw.get("resource-group").unwrap_or_default().to_string(),
        services,
        settings: settings?,
        reason: reason?,
        to_version,
        endpoints: crate::probe::Endpoints {
            health_path: health_path?,
            health_status: health_status?,
            version_path: Some(version_path?),
        },
        verify_samples: samples?,
        swap_timeout: swap_timeout?,
        lock_wait: lock_wait?,
        audit_log,
    })
}
