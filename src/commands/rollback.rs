//! `rollback`: one click back to a known version, safely even when clicked
//! twice, and right after a bad attempt.
//!
//! A rollback targets a **version**, never "swap again": production already
//! on the target changes nothing (a "swap again" script puts the bad build
//! back on a second click; the seed's own fails on every click, swapping
//! from a slot named `production` — BENCHMARKS.md). Each service's rollback is a rollout
//! of the known-good version under the service's lock:
//! - the lock is asked of a running deploy (it stops at its next
//!   checkpoint, restores and hands over), never waited out;
//! - the target is read once the lock is held: `to-version`, else the
//!   version production served before expedite's last promotion, else the
//!   last successful GitHub deployment;
//! - App Service: the slot must hold the target — when a later deploy used
//!   the slot, the target is re-staged from the package archive — and its
//!   identity is checked before the one swap; Container Apps: the target's
//!   revision is reactivated and checked, then takes 100 % of the traffic;
//! - every one of `verify-requests` requests to production must reach the
//!   target before it is reported.
//!
//! The reason is data: fenced in the log, escaped in the summary, kept in
//! the audit log; it never reaches a shell.

use std::time::Instant;

use serde_json::json;

use super::shared::service::{
    self, Clients, Keeper, RollbackSettings, ServiceResult, rollback_one, write_audit,
};
use super::{CommandError, Ctx, Report};
use crate::commands::shared::platforms;
use crate::config::RollbackConfig;
use crate::report::{md_cell, md_code};
use crate::rollout::driver::{Journal, show_sample};

/// Runs the rollback of every service, in order.
pub async fn run(ctx: &Ctx, config: &RollbackConfig) -> Result<Report, CommandError> {
    let started = Instant::now();
    ctx.console.untrusted("rollback reason", &config.reason);
    let mut rec =
        super::shared::records::Records::connect(ctx, ctx.config.records.as_deref()).await;
    // Services off Azure roll back without an Azure sign-in; config asks
    // for it whenever a service needs it.
    let clients = service::clients(
        &ctx.console,
        config.azure.as_ref(),
        &config.http,
        config.kube.as_ref(),
    )?;
    let subscription = config
        .azure
        .as_ref()
        .map(|a| a.subscription_id.clone())
        .unwrap_or_default();
    let keeper = Keeper::connect(ctx).await?;
    // The post stage finishes any rollback this run leaves half-done.
    if let Some(dir) = config.audit_log.parent() {
        let paths: Vec<_> = config
            .services
            .iter()
            .map(|name| {
                let app = match config.manifest.as_ref().and_then(|m| m.service(name)) {
                    Some(s) => s.resource_name().to_string(),
                    None => name.clone(),
                };
                dir.join(format!("expedite-journal-rollback-{app}.json"))
            })
            .collect();
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
        service::save_journal_paths(ctx, &paths);
    }
    let mut results = Vec::new();
    let mut journals = Vec::new();
    for app_name in &config.services {
        let _group = ctx.console.group(&format!("roll back {app_name}"));
        let r = match config.manifest.as_ref().and_then(|m| m.service(app_name)) {
            Some(service) => {
                from_manifest(
                    ctx,
                    config,
                    &clients,
                    &subscription,
                    &keeper,
                    service,
                    &mut journals,
                )
                .await
            }
            None => {
                let place = platforms::place(
                    config.platform,
                    &subscription,
                    &config.resource_group,
                    app_name,
                    config.settings.clone(),
                );
                // Only asked of GitHub when nothing closer names a target.
                let recorded = if config.to_version.is_none() {
                    rec.recorded_previous(app_name).await
                } else {
                    None
                };
                let (r, j) = rollback_one(
                    ctx,
                    &clients,
                    &keeper,
                    &place,
                    &RollbackSettings::of(config),
                    recorded,
                )
                .await;
                journals.extend(j);
                r
            }
        };
        match &r.error {
            Some(e) => tracing::error!(title = "Rollback failed", "{app_name}: {e}"),
            None => ctx.console.info(&format!(
                "{app_name}: {} — production serves {}",
                r.result,
                if r.serving.is_empty() {
                    show_sample(&r.sample)
                } else {
                    r.serving.clone()
                }
            )),
        }
        results.push(r);
        if ctx.cancel.is_cancelled() {
            break;
        }
    }
    let worst = ["needs-attention", "failed", "interrupted"]
        .into_iter()
        .find(|w| results.iter().any(|r| r.result == *w));
    let any_rolled = results.iter().any(|r| r.result == "rolled-back");
    let result = match worst {
        Some(w) => w,
        None if results.len() < config.services.len() => "interrupted",
        None if any_rolled => "rolled-back",
        None => "unchanged",
    };
    let failed = result != "rolled-back" && result != "unchanged";
    let elapsed = started.elapsed();
    let actor = ctx.env.runner().actor().to_string();
    let audit = json!({
        "command": "rollback",
        "reason": config.reason,
        "actor": actor,
        "run": ctx.identity,
        "at": chrono::Utc::now().to_rfc3339(),
        "result": result,
        "services": results,
        "duration_ms": elapsed.as_millis() as u64,
        "journals": journals,
    });
    let audit_written = write_audit(&config.audit_log, &audit);
    let first = results.first();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("rollback of {} {}: {e}", r.app, r.result))
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
                first.map(|r| r.serving.clone()).unwrap_or_default(),
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
        outputs_shown: false,
    };
    super::shared::records::after_rollback(
        ctx,
        &mut rec,
        &config.services,
        &config.reason,
        &mut report,
    )
    .await;
    Ok(report)
}

/// Rolls back one service of the manifest (`services: all`), by its
/// platform.
async fn from_manifest(
    ctx: &Ctx,
    config: &RollbackConfig,
    clients: &Clients,
    subscription: &str,
    keeper: &Keeper,
    service: &crate::manifest::Service,
    journals: &mut Vec<Journal>,
) -> ServiceResult {
    use crate::manifest::Platform;
    let mut settings = RollbackSettings::of(config);
    settings.endpoints.health_path = service.health_path.clone();
    settings.endpoints.version_path = Some(service.version_path.clone());
    if let Platform::Command { rollback, .. } = &service.platform {
        let mut r = ServiceResult::new(&service.name, service.version.clone());
        let Some(cmd) = rollback else {
            r.error = Some("the manifest gives no rollback command for it".into());
            return r;
        };
        match service::manifest_command(
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
        return r;
    }
    let Some(place) = platforms::place_of_service(service, subscription) else {
        let mut r = ServiceResult::new(&service.name, service.version.clone());
        r.error = Some("no platform to roll it back on".into());
        return r;
    };
    let (mut r, j) = rollback_one(ctx, clients, keeper, &place, &settings, None).await;
    journals.extend(j);
    r.app = format!("{} ({})", service.name, place.name());
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
        "interrupted" => "⏹️ Rollback interrupted",
        "needs-attention" => "⚠️ Rollback needs attention",
        _ => "❌ Rollback failed",
    };
    // The first row is the table's header: `| | |` would render an empty one.
    let mut md = format!("## {icon}\n\n");
    md.push_str(&format!(
        "| reason | {} |\n|---|---|\n",
        md_cell(&config.reason)
    ));
    md.push_str(&format!("| by | {} |\n", md_cell(actor)));
    md.push_str(&format!("| duration | {:.1} s |\n", elapsed.as_secs_f64()));
    md.push_str(
        "\n| service | before | target | result | production serves now |\n|---|---|---|---|---|\n",
    );
    for r in results {
        let result = match &r.error {
            Some(e) => format!("{}: {}", r.result, md_cell(e)),
            None => r.result.to_string(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            md_cell(&r.app),
            md_cell(r.before.as_deref().unwrap_or("unknown")),
            md_cell(r.target.as_deref().unwrap_or("unknown")),
            result,
            md_cell(&show_sample(&r.sample))
        ));
    }
    for r in results {
        for n in &r.notes {
            md.push_str(&format!("\n> {}: {}\n", md_code(&r.app), md_code(n)));
        }
    }
    md
}
