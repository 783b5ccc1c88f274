//! `deploy`: the verified slot deploy on App Service, wired to the runner
//! contract. The decisions live in [`crate::rollout`]; this module builds
//! the clients, runs the rollout, and writes outputs, the summary (phases
//! table and a mermaid timeline) and the JSON audit log.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{CommandError, Ctx, Report};
use crate::action::console::Console;
use crate::azure::arm::Arm;
use crate::azure::auth::TokenProvider;
use crate::config::{AzureConfig, DeployConfig};
use crate::platform::app_service::AppService;
use crate::probe::Probe;
use crate::report::md_cell;
use crate::rollout::driver::{AppServiceRollout, Journal};
use crate::rollout::{Outcome, Phase};

/// State entry pointing the post stage at the journal.
pub const STATE_JOURNAL: &str = "expedite-journal";

/// The HTTP client, token provider and ARM client for a run.
pub struct AzureClients {
    /// Shared HTTP client (TLS, resolution, timeouts).
    pub http: reqwest::Client,
    /// Entra tokens.
    pub tokens: Arc<TokenProvider>,
    /// ARM.
    pub arm: Arm,
}

/// Builds the clients for `azure`.
pub fn azure_clients(console: &Console, azure: &AzureConfig) -> Result<AzureClients, CommandError> {
    let http = crate::http::client(&azure.http).map_err(|e| CommandError::Failed(e.to_string()))?;
    let tokens = Arc::new(TokenProvider::new(
        http.clone(),
        azure.authority_host.clone(),
        &azure.arm_endpoint,
        azure.identity.clone(),
        console.clone(),
    ));
    let arm = Arm::new(http.clone(), azure.arm_endpoint.clone(), tokens.clone());
    Ok(AzureClients { http, tokens, arm })
}

/// Runs a deploy.
pub async fn run(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    let started = Instant::now();
    let clients = azure_clients(&ctx.console, &config.azure)?;
    let mut plan = config.plan.clone();
    if let Some(path) = &config.package {
        plan.package = Some(tokio::fs::read(path).await.map_err(|e| {
            CommandError::Failed(format!("cannot read the package {}: {e}", path.display()))
        })?);
    }
    if let Some(journal) = &plan.journal
        && let Err(e) = ctx
            .sinks
            .save_state(STATE_JOURNAL, &journal.to_string_lossy())
    {
        tracing::warn!("cannot record the journal for the post stage: {e}");
    }
    let app = AppService::new(clients.arm.clone(), config.site.clone());
    let rollout = AppServiceRollout {
        app,
        tokens: clients.tokens.clone(),
        http: clients.http.clone(),
        probe: Probe::new(clients.http.clone()),
        plan,
        cancel: ctx.cancel.clone(),
    };
    let journal = {
        let _group = ctx.console.group(&format!(
            "deploy {} to {}",
            config.plan.expected_version, config.site.app
        ));
        rollout.run().await
    };
    Ok(report(
        ctx,
        config,
        &journal,
        &clients.arm,
        started.elapsed(),
    ))
}

fn report(
    ctx: &Ctx,
    config: &DeployConfig,
    j: &Journal,
    arm: &Arm,
    elapsed: std::time::Duration,
) -> Report {
    let outcome = j.outcome().unwrap_or(Outcome::NeedsAttention);
    let previous = j.facts.previous_version.clone().unwrap_or_default();
    let deployed = match outcome {
        Outcome::Promoted | Outcome::Unchanged => config.plan.expected_version.clone(),
        _ => previous.clone(),
    };
    let url = if j.facts.production_host.is_empty() {
        String::new()
    } else {
        format!("https://{}", j.facts.production_host)
    };
    let (reads, writes) = arm.counts();
    let audit = json!({
        "command": "deploy",
        "app": config.site,
        "slot": config.plan.slot,
        "expected_version": config.plan.expected_version,
        "run": config.plan.run_id,
        "result": outcome.as_str(),
        "duration_ms": elapsed.as_millis() as u64,
        "arm_calls": {"reads": reads, "writes": writes},
        "journal": j,
    });
    let audit_written = write_audit(&config.audit_log, &audit);
    let mut errors = Vec::new();
    if outcome == Outcome::Interrupted {
        errors.push(format!(
            "deploy was cancelled after production changed ({}); the post stage restores the previous version",
            ctx.cancel.reason().map(|r| r.to_string()).unwrap_or_else(|| "cancelled".into())
        ));
    } else if let Some(f) = &j.state.failure {
        errors.push(match outcome {
            Outcome::RolledBack => {
                format!("deploy failed after the swap and was rolled back to {previous}: {f}")
            }
            Outcome::FailedBeforeChange => format!("deploy failed before changing production: {f}"),
            _ => format!("deploy failed: {f}"),
        });
    }
    if let Some(f) = &j.state.rollback_failure {
        errors.push(format!(
            "the rollback did not complete; production needs a human: {f}"
        ));
    }
    for note in &j.state.notes {
        tracing::warn!("{note}");
    }
    ctx.console.info(&format!(
        "deploy: {} in {:.1}s ({reads} ARM reads, {writes} writes)",
        outcome.as_str(),
        elapsed.as_secs_f64()
    ));
    Report {
        success: outcome.success(),
        outputs: vec![
            ("result", outcome.as_str().to_string()),
            ("previous-version", previous),
            ("deployed-version", deployed.clone()),
            ("rolled-back", (outcome == Outcome::RolledBack).to_string()),
            ("duration-seconds", format!("{:.1}", elapsed.as_secs_f64())),
            ("production-url", url.clone()),
            (
                "audit-log",
                if audit_written {
                    config.audit_log.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
            ),
        ],
        summary: summary(config, j, outcome, &deployed, &url, elapsed),
        errors,
        errors_annotated: false,
        interrupted: ctx.cancel.is_cancelled()
            && (outcome == Outcome::Interrupted || j.lease.is_some()),
    }
}

/// Writes a JSON audit log (creating its directory); warns and returns false
/// when it cannot, so a full disk never turns a good deploy into a failure.
pub(super) fn write_audit(path: &std::path::Path, audit: &serde_json::Value) -> bool {
    let text = match serde_json::to_string_pretty(audit) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot encode the audit log: {e}");
            return false;
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        tracing::warn!("cannot create {}: {e}", dir.display());
        return false;
    }
    match std::fs::write(path, text) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot write the audit log {}: {e}", path.display());
            false
        }
    }
}

fn title(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Promoted => "✅ Deployed",
        Outcome::Unchanged => "✅ Already deployed",
        Outcome::RolledBack => "↩️ Rolled back",
        Outcome::FailedBeforeChange => "❌ Failed before any change to production",
        Outcome::NeedsAttention => "⚠️ Needs attention",
        Outcome::Interrupted => "⏹️ Interrupted",
    }
}

fn summary(
    config: &DeployConfig,
    j: &Journal,
    outcome: Outcome,
    deployed: &str,
    url: &str,
    elapsed: std::time::Duration,
) -> String {
    let mut md = format!(
        "## {} — `{}` {}\n\n",
        title(outcome),
        md_cell(&config.site.app),
        md_cell(&config.plan.expected_version)
    );
    md.push_str("| | |\n|---|---|\n");
    let rows = [
        ("result", format!("`{}`", outcome.as_str())),
        (
            "previous version (last known good)",
            md_cell(j.facts.previous_version.as_deref().unwrap_or("unknown")),
        ),
        ("serving now", md_cell(deployed)),
        ("production", md_cell(url)),
        (
            "staged in",
            format!("slot `{}`", md_cell(&config.plan.slot)),
        ),
        ("duration", format!("{:.1} s", elapsed.as_secs_f64())),
    ];
    for (k, v) in rows {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    if let Some(f) = &j.state.failure {
        md.push_str(&format!("| why | {} |\n", md_cell(f)));
    }
    if let Some(f) = &j.state.rollback_failure {
        md.push_str(&format!("| rollback problem | {} |\n", md_cell(f)));
    }
    if !j.facts.stale_rules.is_empty() {
        md.push_str(&format!(
            "| leftover routing cleared | {} |\n",
            md_cell(&j.facts.stale_rules.join("; "))
        ));
    }
    if let Some(answer) = &j.facts.staging_answer {
        md.push_str(&format!("| staging answered | {} |\n", md_cell(answer)));
    }
    if !j.facts.production_sample.is_empty() {
        let sample: Vec<String> = j
            .facts
            .production_sample
            .iter()
            .map(|(v, n)| format!("{n} × {v}"))
            .collect();
        md.push_str(&format!(
            "| production sample | {} |\n",
            md_cell(&sample.join(", "))
        ));
    }
    md.push_str("\n### Phases\n\n| phase | start | duration | result |\n|---|---|---|---|\n");
    for p in &j.phases {
        md.push_str(&format!(
            "| {} | +{:.1} s | {:.1} s | {} |\n",
            phase_name(p.phase),
            p.started_ms as f64 / 1000.0,
            p.duration_ms as f64 / 1000.0,
            md_cell(&p.result)
        ));
    }
    md.push_str("\n```mermaid\ngantt\n  dateFormat x\n  axisFormat %M:%S\n  section deploy\n");
    for (i, p) in j.phases.iter().enumerate() {
        let state = if p.result.starts_with("failed") {
            "crit"
        } else {
            "done"
        };
        let end = p.started_ms + p.duration_ms.max(1);
        md.push_str(&format!(
            "  {} :{state}, p{i}, {}, {}\n",
            phase_name(p.phase),
            p.started_ms,
            end
        ));
    }
    md.push_str("```\n");
    for note in &j.state.notes {
        md.push_str(&format!("\n> {}\n", md_cell(note)));
    }
    md
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Preflight => "preflight",
        Phase::AcquireLease => "take the deploy lease",
        Phase::ClearStaleRouting => "clear leftover routing",
        Phase::Upload => "upload the package",
        Phase::CheckStaging => "check staging (health + version)",
        Phase::Swap => "swap into production",
        Phase::ResolveSwap => "find out whether the swap happened",
        Phase::ClearRouting => "clear routing rules",
        Phase::VerifyProduction => "verify production",
        Phase::SwapBack => "swap back",
        Phase::ResolveSwapBack => "find out whether the swap back happened",
        Phase::ClearRoutingAfterRollback => "clear routing rules",
        Phase::VerifyRollback => "verify the rollback",
        Phase::ReleaseLease => "give the lease back",
        Phase::Done => "done",
    }
}

/// The post stage after an interrupted deploy: restores invariant 1 —
/// production serves exactly one version at 100 %, the new verified one or
/// the previous one, with no routing rule left — and gives the lease back.
pub async fn post(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    let Some(path) = ctx
        .env
        .get(&format!("STATE_{STATE_JOURNAL}"))
        .map(std::path::PathBuf::from)
        .or(config.plan.journal.clone())
    else {
        return Ok(Report {
            success: true,
            ..Report::default()
        });
    };
    let journal: Journal = match std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(j) => j,
        None => {
            ctx.console.info(&format!(
                "post stage: no deploy journal at {}; the deploy changed nothing",
                path.display()
            ));
            return Ok(Report {
                success: true,
                ..Report::default()
            });
        }
    };
    // Work remains when production may serve an unverified build, or when
    // the lease is still ours.
    let at_risk = journal.state.production_changed && !journal.state.verified;
    if !at_risk && journal.lease.is_none() {
        return Ok(Report {
            success: true,
            ..Report::default()
        });
    }
    let _group = ctx
        .console
        .group("post stage: finishing the interrupted deploy");
    let clients = azure_clients(&ctx.console, &config.azure)?;
    let app = AppService::new(clients.arm.clone(), config.site.clone());
    let probe = Probe::new(clients.http.clone());
    let c = &ctx.cancel;
    let mut done = Vec::new();
    let fail = |why: String| Report {
        success: false,
        errors: vec![format!("post stage: {why}; production needs a human")],
        ..Report::default()
    };
    // A swap the main stage started may still be running: let it end.
    let deadline = Instant::now() + config.plan.swap_timeout;
    loop {
        match app.slot(crate::platform::app_service::PRODUCTION, c).await {
            Ok(p) if p.in_progress_operation.is_none() => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await
            }
            Ok(_) => return Ok(fail("a swap is still in progress".into())),
            Err(e) => return Ok(fail(e.to_string())),
        }
    }
    if let Err(e) = app.set_routing_rules(&[], c).await {
        return Ok(fail(format!("could not clear routing rules: {e}")));
    }
    done.push("routing rules cleared".to_string());
    let host = if journal.facts.production_host.is_empty() {
        match app.slot(crate::platform::app_service::PRODUCTION, c).await {
            Ok(p) => p.default_host_name,
            Err(e) => return Ok(fail(e.to_string())),
        }
    } else {
        journal.facts.production_host.clone()
    };
    let vpath = config
        .plan
        .endpoints
        .version_path
        .clone()
        .unwrap_or_else(|| "/api/version".into());
    let sample = probe
        .sample_versions(&host, &vpath, config.plan.verify_samples)
        .await;
    let new = &config.plan.expected_version;
    let serves_new = sample.keys().any(|v| v == new);
    if serves_new && at_risk {
        match journal.facts.previous_version.as_deref() {
            Some(previous) => {
                let staging = probe
                    .observe(&journal.facts.slot_host, &config.plan.endpoints, None)
                    .await;
                if staging.version.as_deref() != Some(previous) {
                    return Ok(fail(format!(
                        "production serves the unverified {new}, but the slot holds {} rather than {previous}",
                        staging.version.unwrap_or_else(|| "unknown".into())
                    )));
                }
                if let Err(e) = app
                    .swap_into_production(&config.plan.slot, config.plan.swap_timeout, c)
                    .await
                {
                    return Ok(fail(format!("swapping back failed: {e}")));
                }
                let after = probe
                    .sample_versions(&host, &vpath, config.plan.verify_samples)
                    .await;
                if after.get(previous).copied() != Some(config.plan.verify_samples) {
                    return Ok(fail(format!(
                        "after swapping back, production serves {after:?}"
                    )));
                }
                done.push(format!(
                    "swapped back: production serves {previous} again ({} of {} requests)",
                    config.plan.verify_samples, config.plan.verify_samples
                ));
            }
            None => {
                return Ok(fail(format!(
                    "production serves the unverified {new} and the previous version is unknown"
                )));
            }
        }
    } else {
        done.push(format!("production serves {sample:?}"));
    }
    if let Some(lease) = &journal.lease {
        let tag = std::collections::BTreeMap::from([(
            crate::rollout::driver::LEASE_TAG.to_string(),
            lease.clone(),
        )]);
        if app.delete_tags(&tag, c).await.is_ok() {
            done.push("deploy lease released".into());
        }
    }
    let message = format!(
        "post stage restored a safe state after the interrupted deploy: {}",
        done.join("; ")
    );
    ctx.console.annotate(
        crate::action::escape::Level::Warning,
        &crate::action::escape::Annotation::message(message.clone()),
    );
    Ok(Report {
        success: true,
        summary: format!(
            "### ⏹️ Interrupted deploy finished by the post stage\n\n{}\n",
            md_cell(&done.join("\n"))
        ),
        ..Report::default()
    })
}
