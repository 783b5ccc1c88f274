//! `rollback`: one click back to a known version, safely even when clicked
//! twice.
//!
//! A rollback targets a **version**, never "swap again": production already
//! on the target changes nothing (the seed's swap-back script would put the
//! bad build back on a second click). Otherwise the slot must hold the target
//! — checked by asking it — before the single swap, and afterwards every one
//! of `verify-requests` independent requests must reach the target. The
//! reason is data: fenced in the log, escaped in the summary, kept in the
//! audit log; it never reaches a shell.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::deploy::azure_clients;
use super::{CommandError, Ctx, Report};
use crate::azure::arm::ArmError;
use crate::config::RollbackConfig;
use crate::platform::app_service::{AppService, PRODUCTION, SiteRef};
use crate::probe::Probe;
use crate::report::md_cell;
use crate::rollout::driver::PREVIOUS_VERSION_TAG;

/// What happened to one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceResult {
    /// The app.
    pub app: String,
    /// What production served before.
    pub before: Option<String>,
    /// The version rolled back to.
    pub target: Option<String>,
    /// `rolled-back`, `unchanged` or `failed`.
    pub result: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// Production's version sample at the end.
    pub sample: BTreeMap<String, usize>,
    /// Production's URL.
    pub url: String,
}

/// Runs the rollback of every service, in order.
pub async fn run(ctx: &Ctx, config: &RollbackConfig) -> Result<Report, CommandError> {
    let started = Instant::now();
    ctx.console.untrusted("rollback reason", &config.reason);
    let mut rec = super::records::Records::connect(ctx, ctx.config.records.as_deref()).await;
    let clients = azure_clients(&ctx.console, &config.azure)?;
    let probe = Probe::new(clients.http.clone());
    let mut results = Vec::new();
    for app_name in &config.services {
        let _group = ctx.console.group(&format!("roll back {app_name}"));
        let r = match config.manifest.as_ref().and_then(|m| m.service(app_name)) {
            Some(service) => from_manifest(ctx, config, &clients, &probe, service).await,
            None => {
                let app = AppService::new(
                    clients.arm.clone(),
                    SiteRef {
                        subscription: config.azure.subscription_id.clone(),
                        resource_group: config.resource_group.clone(),
                        app: app_name.clone(),
                    },
                );
                // Only asked of GitHub when nothing closer names a target.
                let recorded = if config.to_version.is_none() {
                    rec.recorded_previous(app_name).await
                } else {
                    None
                };
                one(ctx, config, &app, &probe, recorded).await
            }
        };
        match &r.error {
            Some(e) => tracing::error!(title = "Rollback failed", "{app_name}: {e}"),
            None => ctx.console.info(&format!(
                "{app_name}: {} — production serves {}",
                r.result,
                r.target.as_deref().unwrap_or("?")
            )),
        }
        results.push(r);
        if ctx.cancel.is_cancelled() {
            break;
        }
    }
    let failed =
        results.iter().any(|r| r.result == "failed") || results.len() < config.services.len();
    let any_rolled = results.iter().any(|r| r.result == "rolled-back");
    let result = if failed {
        "failed"
    } else if any_rolled {
        "rolled-back"
    } else {
        "unchanged"
    };
    let elapsed = started.elapsed();
    let actor = ctx
        .env
        .get("GITHUB_ACTOR")
        .unwrap_or("(terminal)")
        .to_string();
    let audit = json!({
        "command": "rollback",
        "reason": config.reason,
        "actor": actor,
        "run": format!("{}#{}", ctx.env.get("GITHUB_REPOSITORY").unwrap_or("local"), ctx.env.get("GITHUB_RUN_ID").unwrap_or("0")),
        "at": chrono::Utc::now().to_rfc3339(),
        "result": result,
        "services": results,
        "duration_ms": elapsed.as_millis() as u64,
    });
    let audit_written = super::deploy::write_audit(&config.audit_log, &audit);
    let first = results.first();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("rollback of {} failed: {e}", r.app))
        })
        .collect();
    let mut report = Report {
        success: !failed,
        outputs: vec![
            ("result", result.to_string()),
            (
                "previous-version",
                first.and_then(|r| r.before.clone()).unwrap_or_default(),
            ),
            (
                "deployed-version",
                first.and_then(|r| r.target.clone()).unwrap_or_default(),
            ),
            ("rolled-back", any_rolled.to_string()),
            ("duration-seconds", format!("{:.1}", elapsed.as_secs_f64())),
            (
                "production-url",
                first.map(|r| r.url.clone()).unwrap_or_default(),
            ),
            (
                "audit-log",
                if audit_written {
                    config.audit_log.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
            ),
        ],
        summary: summary(config, &results, result, &actor, elapsed),
        errors_annotated: true,
        errors,
        interrupted: false,
    };
    super::records::after_rollback(ctx, &mut rec, &config.services, &config.reason, &mut report)
        .await;
    Ok(report)
}

/// Rolls back one service of the manifest (`services: all`), by its
/// platform.
async fn from_manifest(
    ctx: &Ctx,
    config: &RollbackConfig,
    clients: &super::deploy::AzureClients,
    probe: &Probe,
    service: &crate::manifest::Service,
) -> ServiceResult {
    use crate::manifest::Platform;
    let mut r = ServiceResult {
        app: service.name.clone(),
        before: None,
        target: None,
        result: "failed",
        error: None,
        sample: BTreeMap::new(),
        url: String::new(),
    };
    match &service.platform {
        Platform::AppService {
            app,
            resource_group,
            slot,
            ..
        } => {
            let mut one_config = config.clone();
            one_config.resource_group = resource_group.clone();
            one_config.slot = slot.clone();
            one_config.endpoints.health_path = service.health_path.clone();
            one_config.endpoints.version_path = Some(service.version_path.clone());
            let site = AppService::new(
                clients.arm.clone(),
                SiteRef {
                    subscription: config.azure.subscription_id.clone(),
                    resource_group: resource_group.clone(),
                    app: app.clone(),
                },
            );
            let mut res = one(ctx, &one_config, &site, probe, None).await;
            res.app = format!("{} ({app})", service.name);
            res
        }
        Platform::ContainerApps {
            app,
            resource_group,
            ..
        } => {
            let ca = crate::platform::container_apps::ContainerApps::new(
                clients.arm.clone(),
                crate::platform::container_apps::ContainerAppRef {
                    subscription: config.azure.subscription_id.clone(),
                    resource_group: resource_group.clone(),
                    app: app.clone(),
                },
            );
            let c = &ctx.cancel;
            let info = match ca.get(c).await {
                Ok(i) => i,
                Err(e) => {
                    r.error = Some(e.to_string());
                    return r;
                }
            };
            r.url = info
                .fqdn
                .clone()
                .map(|f| format!("https://{f}"))
                .unwrap_or_default();
            let Some(previous) = info
                .tags
                .get(crate::rollout::driver::PREVIOUS_REVISION_TAG)
                .cloned()
            else {
                r.error = Some(
                    "no previous revision is recorded on this app (expedite records one when it promotes a deploy)"
                        .into(),
                );
                return r;
            };
            r.target = info.tags.get(PREVIOUS_VERSION_TAG).cloned();
            let serving: Vec<_> = info.traffic.iter().filter(|t| t.weight > 0).collect();
            r.before = serving.first().map(|t| t.revision.clone());
            if serving.len() == 1 && serving[0].revision == previous && serving[0].weight == 100 {
                r.result = "unchanged";
                return r;
            }
            let current = (serving.len() == 1).then(|| serving[0].revision.clone());
            let step = super::multi_deploy::rollback_container_app_to(
                ctx,
                &ca,
                &previous,
                current.as_deref(),
            )
            .await;
            if step.verified {
                r.result = "rolled-back";
            } else {
                r.error = Some(step.detail);
            }
            r
        }
        Platform::Command { rollback, .. } => {
            let Some(cmd) = rollback else {
                r.error = Some("the manifest gives no rollback command for it".into());
                return r;
            };
            match super::multi_deploy::manifest_command(
                ctx,
                service,
                service.version.as_deref().unwrap_or(""),
                "rollback",
                cmd,
                config.swap_timeout,
            )
            .await
            {
                Ok(()) => r.result = "rolled-back",
                Err(e) => r.error = Some(e),
            }
            r
        }
    }
}

/// `recorded`: the last known good version from the GitHub deployment
/// record, used when neither `to-version` nor the app's tag names one.
pub(super) async fn one(
    ctx: &Ctx,
    config: &RollbackConfig,
    app: &AppService,
    probe: &Probe,
    recorded: Option<String>,
) -> ServiceResult {
    let c = &ctx.cancel;
    let mut r = ServiceResult {
        app: app.site().app.clone(),
        before: None,
        target: config.to_version.clone(),
        result: "failed",
        error: None,
        sample: BTreeMap::new(),
        url: String::new(),
    };
    macro_rules! fail {
        ($($t:tt)*) => {{
            r.error = Some(format!($($t)*));
            return r;
        }};
    }
    let prod = match app.slot(PRODUCTION, c).await {
        Ok(p) => p,
        Err(ArmError::NotFound { .. }) => fail!(
            "the web app was not found in resource group '{}'",
            config.resource_group
        ),
        Err(e) => fail!("{e}"),
    };
    r.url = format!("https://{}", prod.default_host_name);
    // Another operation (a swap) in flight: wait for it, bounded.
    let waited = Instant::now();
    let mut prod = prod;
    while prod.in_progress_operation.is_some() {
        if waited.elapsed() >= config.lock_wait {
            fail!(
                "a site operation is still in progress after {}s (lock-wait)",
                config.lock_wait.as_secs()
            );
        }
        if c.sleep(std::time::Duration::from_secs(2)).await.is_err() {
            fail!("cancelled while waiting for a site operation");
        }
        prod = match app.slot(PRODUCTION, c).await {
            Ok(p) => p,
            Err(e) => fail!("{e}"),
        };
    }
    let now = probe
        .observe(&prod.default_host_name, &config.endpoints, Some("self"))
        .await;
    r.before = now.version.clone();
    let Some(target) = config
        .to_version
        .clone()
        .or_else(|| prod.tags.get(PREVIOUS_VERSION_TAG).cloned())
        .or_else(|| {
            let v = recorded?;
            ctx.console.info(&format!(
                "the app carries no {PREVIOUS_VERSION_TAG} tag; the last successful GitHub deployment names {v} as the last known good version"
            ));
            Some(v)
        })
    else {
        fail!(
            "no previous version is recorded on this app (expedite records one when it promotes a deploy) nor in a successful GitHub deployment; give to-version"
        );
    };
    r.target = Some(target.clone());
    let rules = match app.routing_rules(c).await {
        Ok(rules) => rules,
        Err(e) => fail!("{e}"),
    };
    let vpath = config
        .endpoints
        .version_path
        .clone()
        .unwrap_or_else(|| "/api/version".into());
    if now.version.as_deref() == Some(target.as_str()) && rules.is_empty() {
        r.sample = probe
            .sample_versions(&prod.default_host_name, &vpath, config.verify_samples)
            .await;
        if r.sample.get(&target).copied() == Some(config.verify_samples) {
            r.result = "unchanged";
            return r;
        }
        fail!(
            "production's own instances report {target}, but requests reached {:?}",
            r.sample
        );
    }
    if now.version.as_deref() != Some(target.as_str()) {
        let slot = match app.slot(&config.slot, c).await {
            Ok(s) => s,
            Err(ArmError::NotFound { .. }) => fail!("the slot '{}' does not exist", config.slot),
            Err(e) => fail!("{e}"),
        };
        let staged = probe
            .observe(&slot.default_host_name, &config.endpoints, None)
            .await;
        if staged.version.as_deref() != Some(target.as_str())
            || !staged.good(&config.endpoints, None)
        {
            fail!(
                "production serves {} and slot '{}' holds {} ({}), not {target}; deploy {target} instead",
                now.version.as_deref().unwrap_or("an unknown version"),
                config.slot,
                staged.version.as_deref().unwrap_or("an unknown version"),
                staged.describe()
            );
        }
        if let Err(e) = c.check() {
            fail!("{e}");
        }
        match app
            .swap_into_production(&config.slot, config.swap_timeout, c)
            .await
        {
            Ok(()) => {}
            Err(ArmError::Ambiguous { .. } | ArmError::Unavailable { .. }) => {
                // Never swap again blindly: ask production what it serves.
                let after = probe
                    .observe(&prod.default_host_name, &config.endpoints, Some("self"))
                    .await;
                if after.version.as_deref() != Some(target.as_str()) {
                    fail!(
                        "the swap's outcome was unknown and production still serves {}",
                        after.describe()
                    );
                }
            }
            Err(e) => fail!("swap failed: {e}"),
        }
    }
    // Rules survive a swap and would send users to the other slot.
    if let Err(e) = app.set_routing_rules(&[], c).await {
        fail!("could not clear routing rules: {e}");
    }
    r.sample = probe
        .sample_versions(&prod.default_host_name, &vpath, config.verify_samples)
        .await;
    if r.sample.get(&target).copied() != Some(config.verify_samples) {
        fail!(
            "after rolling back, production requests reached {:?}",
            r.sample
        );
    }
    let health = probe
        .observe(&prod.default_host_name, &config.endpoints, None)
        .await;
    if !health.good(&config.endpoints, Some(&target)) {
        fail!(
            "after rolling back, production answers {}",
            health.describe()
        );
    }
    r.result = "rolled-back";
    r
}

fn summary(
    config: &RollbackConfig,
    results: &[ServiceResult],
    result: &str,
    actor: &str,
    elapsed: std::time::Duration,
) -> String {
    let icon = match result {
        "rolled-back" => "↩️ Rolled back",
        "unchanged" => "✅ Already on the target version",
        _ => "❌ Rollback failed",
    };
    let mut md = format!("## {icon}\n\n| | |\n|---|---|\n");
    md.push_str(&format!("| reason | {} |\n", md_cell(&config.reason)));
    md.push_str(&format!("| by | {} |\n", md_cell(actor)));
    md.push_str(&format!("| duration | {:.1} s |\n", elapsed.as_secs_f64()));
    md.push_str(
        "\n| service | before | target | result | production sample |\n|---|---|---|---|---|\n",
    );
    for r in results {
        let sample: Vec<String> = r.sample.iter().map(|(v, n)| format!("{n} × {v}")).collect();
        let result = match &r.error {
            Some(e) => format!("failed: {}", md_cell(e)),
            None => r.result.to_string(),
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            md_cell(&r.app),
            md_cell(r.before.as_deref().unwrap_or("unknown")),
            md_cell(r.target.as_deref().unwrap_or("unknown")),
            result,
            md_cell(&sample.join(", "))
        ));
    }
    md
}
