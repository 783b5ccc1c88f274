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
use crate::config::{AzureConfig, DeployConfig, PlatformKind};
use crate::platform::app_service::{AppService, SiteRef};
use crate::platform::container_apps::{ContainerAppRef, ContainerApps, revision_suffix};
use crate::probe::Probe;
use crate::probe::evidence::azure_monitor::{MonitorTarget, container_app_id, web_site_id};
use crate::report::md_cell;
use crate::rollout::app_service::AppServiceTarget;
use crate::rollout::canary::{SourceClients, StepRecord};
use crate::rollout::container_apps::ContainerAppsTarget;
use crate::rollout::driver::{Journal, Rollout};
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
    let mut rec = super::records::Records::connect(ctx, ctx.config.records.as_deref()).await;
    if let Some(multi) = &config.multi {
        let mut report = super::multi_deploy::run(ctx, config, multi).await?;
        let services = multi.manifest.order().join(", ");
        let version = config.plan.expected_version.clone();
        super::records::after_deploy(ctx, &mut rec, None, &services, &version, &mut report).await;
        return Ok(report);
    }
    let started = Instant::now();
    let clients = azure_clients(&ctx.console, &config.azure)?;
    // The GitHub deployment records the last known good version for a
    // later `rollback`; what production serves now is read first (App
    // Service; a container app records none).
    let deployment = if rec.api.is_some() {
        let previous = match config.platform {
            PlatformKind::AppService => live_version(ctx, &clients, config).await,
            PlatformKind::ContainerApps => None,
        };
        rec.deployment_start(
            ctx,
            &config.site.app,
            &config.plan.expected_version,
            previous.as_deref(),
        )
        .await
    } else {
        None
    };
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
    let journal = {
        let _group = ctx.console.group(&format!(
            "deploy {} to {}",
            config.plan.expected_version, config.site.app
        ));
        let place = match config.platform {
            PlatformKind::AppService => Where::AppService(config.site.clone()),
            PlatformKind::ContainerApps => Where::ContainerApps(
                ContainerAppRef {
                    subscription: config.site.subscription.clone(),
                    resource_group: config.site.resource_group.clone(),
                    app: config.site.app.clone(),
                },
                config.container.clone(),
            ),
        };
        run_rollout(ctx, &clients, place, plan).await
    };
    let mut report = report(ctx, config, &journal, &clients.arm, started.elapsed());
    super::records::after_deploy(
        ctx,
        &mut rec,
        deployment,
        &config.site.app,
        &config.plan.expected_version,
        &mut report,
    )
    .await;
    Ok(report)
}

/// The version production serves now, for the deployment record (`None`
/// when it cannot be read: the record then names no previous version).
async fn live_version(ctx: &Ctx, clients: &AzureClients, config: &DeployConfig) -> Option<String> {
    let app = AppService::new(clients.arm.clone(), config.site.clone());
    let prod = app
        .slot(crate::platform::app_service::PRODUCTION, &ctx.cancel)
        .await
        .ok()?;
    Probe::new(clients.http.clone())
        .observe(
            &prod.default_host_name,
            &config.plan.endpoints,
            Some("self"),
        )
        .await
        .version
}

/// Where a rollout runs.
pub(super) enum Where {
    /// An App Service app.
    AppService(SiteRef),
    /// A container app, and which of its containers gets the image.
    ContainerApps(ContainerAppRef, Option<String>),
}

/// Builds the platform's target and evidence clients and runs the rollout
/// (one service; the multi-service deploy calls this per service).
pub(super) async fn run_rollout(
    ctx: &Ctx,
    clients: &AzureClients,
    place: Where,
    plan: crate::rollout::driver::DeployPlan,
) -> Journal {
    let probe = Probe::new(clients.http.clone());
    let cancel = ctx.cancel.clone();
    let sources = |monitor: MonitorTarget| {
        plan.canary.as_ref().map(|_| SourceClients {
            http: clients.http.clone(),
            arm: clients.arm.clone(),
            monitor,
        })
    };
    match place {
        Where::AppService(site) => {
            let sources = sources(MonitorTarget::AppService {
                site_id: web_site_id(&site.subscription, &site.resource_group, &site.app),
            });
            let target = AppServiceTarget {
                app: AppService::new(clients.arm.clone(), site),
                tokens: clients.tokens.clone(),
                http: clients.http.clone(),
                slot: plan.slot.clone(),
            };
            Rollout {
                target,
                probe,
                plan,
                sources,
                cancel,
            }
            .run()
            .await
        }
        Where::ContainerApps(app_ref, container) => {
            let sources = sources(MonitorTarget::ContainerApp {
                app_id: container_app_id(
                    &app_ref.subscription,
                    &app_ref.resource_group,
                    &app_ref.app,
                ),
            });
            let suffix = revision_suffix(
                &plan.expected_version,
                ctx.env.get("GITHUB_RUN_ID").unwrap_or("local"),
                ctx.env.get("GITHUB_RUN_ATTEMPT").unwrap_or("1"),
            );
            let target = ContainerAppsTarget {
                app: ContainerApps::new(clients.arm.clone(), app_ref),
                container,
                suffix,
            };
            Rollout {
                target,
                probe,
                plan,
                sources,
                cancel,
            }
            .run()
            .await
        }
    }
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
            Outcome::RolledBack if !j.facts.canary_steps.is_empty() && !j.state.trail.contains(&Phase::SwapBack) => {
                format!("the canary was rolled back, production serves {previous}: {f}")
            }
            Outcome::RolledBack => {
                format!("deploy failed after the swap and was rolled back to {previous}: {f}")
            }
            Outcome::Inconclusive => format!(
                "the canary's evidence was inconclusive; it was withdrawn and production serves {previous}: {f}"
            ),
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
            (
                "canary-decision",
                j.facts
                    .canary_steps
                    .last()
                    .map_or_else(|| "none".to_string(), |s| s.decision.clone()),
            ),
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
        Outcome::Inconclusive => "❔ Canary inconclusive, withdrawn",
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
            match (&j.facts.new_revision, config.platform) {
                (Some(rev), _) => format!("revision `{}`", md_cell(rev)),
                (None, PlatformKind::ContainerApps) => "a new revision".into(),
                (None, PlatformKind::AppService) => {
                    format!("slot `{}`", md_cell(&config.plan.slot))
                }
            },
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
    if !j.facts.canary_steps.is_empty() {
        md.push_str(&canary_summary(&j.facts.canary_steps));
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
        Phase::CanaryShift => "shift canary traffic",
        Phase::CanaryWatch => "watch the canary",
        Phase::CanaryAbort => "withdraw the canary",
        Phase::VerifyCanaryAbort => "verify production after the withdrawal",
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

fn fmt_latency(c: &crate::probe::evidence::Counters) -> String {
    let Some(q) = c.latency else {
        return "–".into();
    };
    let ms = |v: Option<f64>| v.map_or_else(|| "–".into(), |s| format!("{:.0}", s * 1000.0));
    format!("{} / {} / {}", ms(q.p50), ms(q.p95), ms(q.p99))
}

fn rate(c: &crate::probe::evidence::Counters) -> String {
    if c.requests == 0 {
        return "–".into();
    }
    format!("{:.2} %", 100.0 * c.failures as f64 / c.requests as f64)
}

/// The canary section: per step and source, the traffic each arm saw, the
/// test statistics against their thresholds, and the decision; then a
/// mermaid chart of the steps.
fn canary_summary(steps: &[StepRecord]) -> String {
    let mut md = String::from(
        "\n### Canary\n\n| step | source | arm | requests | failures | error rate | slow | latency p50/p95/p99 (ms) | tests (statistic / threshold, nats) | decision |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in steps {
        for f in &s.sources {
            let tests = f
                .tests
                .iter()
                .map(|t| format!("{} {:.2} / {:.2}", t.test, t.statistic, t.threshold))
                .collect::<Vec<_>>()
                .join("; ");
            let arms = std::iter::once(("canary", Some(&f.canary)))
                .chain(std::iter::once(("baseline", f.baseline.as_ref())));
            for (i, (arm, c)) in arms.enumerate() {
                let Some(c) = c else { continue };
                md.push_str(&format!(
                    "| {} | {} | {arm} | {} | {} | {} | {} | {} | {} | {} |\n",
                    if i == 0 {
                        format!("{} %", s.percent)
                    } else {
                        String::new()
                    },
                    if i == 0 {
                        md_cell(&f.source)
                    } else {
                        String::new()
                    },
                    c.requests,
                    c.failures,
                    rate(c),
                    c.slow.map_or_else(|| "–".into(), |n| n.to_string()),
                    fmt_latency(c),
                    if i == 0 {
                        md_cell(&tests)
                    } else {
                        String::new()
                    },
                    if i == 0 {
                        format!("**{}**", md_cell(&s.decision))
                    } else {
                        String::new()
                    },
                ));
            }
        }
    }
    for s in steps {
        if s.decision != "pass" {
            md.push_str(&format!(
                "\n> {} % step: {} — {}\n",
                s.percent,
                md_cell(&s.decision),
                md_cell(&s.detail)
            ));
        }
    }
    md.push_str("\n```mermaid\nflowchart LR\n  start([staged])");
    for (i, s) in steps.iter().enumerate() {
        let requests: u64 = s.sources.first().map_or(0, |f| f.canary.requests);
        let failures: u64 = s.sources.first().map_or(0, |f| f.canary.failures);
        // Mermaid labels: quotes and brackets would end the node.
        let label = format!(
            "{} %: {} req, {} failed, {:.0} s: {}",
            s.percent,
            requests,
            failures,
            s.duration_ms as f64 / 1000.0,
            s.decision
        )
        .replace(['"', '[', ']', '(', ')'], "");
        md.push_str(&format!(" --> s{i}[\"{label}\"]"));
    }
    let last = steps.last().map(|s| s.decision.as_str()).unwrap_or("");
    let end = match last {
        "pass" | "promoted-inconclusive" => "promote([promote])",
        "trip" => "back([withdrawn: production restored])",
        _ => "stop([withdrawn])",
    };
    md.push_str(&format!(" --> {end}\n"));
    for (i, s) in steps.iter().enumerate() {
        let class = match s.decision.as_str() {
            "pass" => "pass",
            "promoted-inconclusive" | "inconclusive" => "warn",
            _ => "fail",
        };
        md.push_str(&format!("  class s{i} {class}\n"));
    }
    md.push_str("  classDef pass fill:#d4f7d4\n  classDef warn fill:#fff3c4\n  classDef fail fill:#ffd6d6\n```\n");
    md
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
    let at_risk = (journal.state.production_changed || journal.state.canary_exposed)
        && !journal.state.verified;
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
    if config.platform == PlatformKind::ContainerApps {
        return Ok(post_container_apps(ctx, config, &clients, &journal, at_risk).await);
    }
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
    if let Some(tag) = lease_tag(&journal)
        && app.delete_tags(&tag, c).await.is_ok()
    {
        done.push("deploy lease released".into());
    }
    Ok(post_report(ctx, &done))
}

/// The lease tag to delete (name and value), if the journal holds one.
fn lease_tag(journal: &Journal) -> Option<std::collections::BTreeMap<String, String>> {
    journal.lease.as_ref().map(|lease| {
        std::collections::BTreeMap::from([(
            crate::rollout::driver::LEASE_TAG.to_string(),
            lease.clone(),
        )])
    })
}

/// The post stage's warning and summary after it restored a safe state.
fn post_report(ctx: &Ctx, done: &[String]) -> Report {
    let message = format!(
        "post stage restored a safe state after the interrupted deploy: {}",
        done.join("; ")
    );
    ctx.console.annotate(
        crate::action::escape::Level::Warning,
        &crate::action::escape::Annotation::message(message),
    );
    Report {
        success: true,
        summary: format!(
            "### ⏹️ Interrupted deploy finished by the post stage\n\n{}\n",
            md_cell(&done.join("\n"))
        ),
        ..Report::default()
    }
}

/// The post stage on Container Apps: all traffic back to the stable
/// revision by name, the unverified revision deactivated, the lease given
/// back.
async fn post_container_apps(
    ctx: &Ctx,
    config: &DeployConfig,
    clients: &AzureClients,
    journal: &Journal,
    at_risk: bool,
) -> Report {
    let c = &ctx.cancel;
    let app = ContainerApps::new(
        clients.arm.clone(),
        ContainerAppRef {
            subscription: config.site.subscription.clone(),
            resource_group: config.site.resource_group.clone(),
            app: config.site.app.clone(),
        },
    );
    let fail = |why: String| Report {
        success: false,
        errors: vec![format!("post stage: {why}; production needs a human")],
        ..Report::default()
    };
    let mut done = Vec::new();
    if at_risk {
        let Some(stable) = journal.facts.stable_revision.clone() else {
            return fail("the stable revision is not in the journal".into());
        };
        let weights = [crate::platform::container_apps::TrafficWeight {
            revision: stable.clone(),
            weight: 100,
            label: None,
        }];
        if let Err(e) = app.set_traffic(&weights, c).await {
            return fail(format!("could not send all traffic back to {stable}: {e}"));
        }
        done.push(format!("all traffic back on revision {stable}"));
        if let Some(new) = &journal.facts.new_revision {
            match app.deactivate(new, c).await {
                Ok(()) => done.push(format!("revision {new} deactivated")),
                Err(e) => tracing::warn!("could not deactivate {new}: {e}"),
            }
        }
    }
    if let Some(tag) = lease_tag(journal)
        && app.delete_tags(&tag, c).await.is_ok()
    {
        done.push("deploy lease released".into());
    }
    post_report(ctx, &done)
}
