//! `deploy`: the verified deploy of one service (or, with a manifest, of
//! several), wired to the runner contract. The decisions live in
//! [`crate::rollout`]; the lock and the restore of a dead holder in
//! [`super::service`]; this module runs them and writes outputs, the
//! summary (phases table and a mermaid timeline) and the JSON audit log.
//! The post stage ([`post`]) finishes whatever the main stage's journals
//! say is left.

use std::time::Instant;

use serde_json::json;

use super::service::{
    self, AzureClients, Keeper, LockAsk, azure_clients, save_journal_paths, serving_one,
    write_audit,
};
use super::{CommandError, Ctx, Report};
use crate::config::{DeployConfig, PlatformKind};
use crate::platform::app_service::AppService;
use crate::platform::container_apps::ContainerAppRef;
use crate::probe::Probe;
use crate::report::{md_cell, md_code};
use crate::rollout::canary::StepRecord;
use crate::rollout::driver::{Journal, Place, phase_name, show_sample};
use crate::rollout::{Outcome, Phase, StopKind};

/// Where the single-service deploy runs.
pub fn place_of(config: &DeployConfig) -> Place {
    match config.platform {
        PlatformKind::AppService => Place::AppService {
            site: config.site.clone(),
            slot: config.plan.slot.clone(),
        },
        PlatformKind::ContainerApps => Place::ContainerApps {
            app: ContainerAppRef {
                subscription: config.site.subscription.clone(),
                resource_group: config.site.resource_group.clone(),
                app: config.site.app.clone(),
            },
            container: config.container.clone(),
        },
    }
}

/// Runs a deploy.
pub async fn run(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    let mut rec = super::records::Records::connect(ctx, ctx.config.records.as_deref()).await;
    let keeper = Keeper::connect(ctx).await?;
    if let Some(multi) = &config.multi {
        let mut report = super::multi_deploy::run(ctx, config, multi, &keeper).await?;
        let services = multi.manifest.order().join(", ");
        let version = config.plan.expected_version.clone();
        super::records::after_deploy(ctx, &mut rec, None, &services, &version, &mut report).await;
        return Ok(report);
    }
    let started = Instant::now();
    let azure = config.azure.as_ref().ok_or_else(|| {
        CommandError::Failed(
            "deploying an app needs the Azure inputs (client-id, tenant-id, subscription-id)"
                .into(),
        )
    })?;
    let clients = azure_clients(&ctx.console, azure)?;
    let mut plan = config.plan.clone();
    if let Some(path) = &config.package {
        plan.package = Some(tokio::fs::read(path).await.map_err(|e| {
            CommandError::Failed(format!("cannot read the package {}: {e}", path.display()))
        })?);
    }
    if let Some(journal) = &plan.journal {
        // A journal from an earlier run of this job must not be mistaken
        // for this one's.
        let _ = std::fs::remove_file(journal);
        save_journal_paths(ctx, std::slice::from_ref(journal));
    }
    let place = place_of(config);
    let cancel = ctx.cancel.child();
    let group = ctx.console.group(&format!(
        "deploy {} to {}",
        config.plan.expected_version, config.site.app
    ));
    let ask = LockAsk {
        command: format!("deploy {}", config.plan.expected_version),
        preemptible: true,
        preempt: None,
        preempt_grace: std::time::Duration::ZERO,
        wait: config.plan.lock_wait,
        journal: config.plan.journal.clone(),
    };
    let (journal, deployment, notes) =
        match service::take(ctx, &clients, &keeper, &place, &ask, &cancel).await {
            Err(why) => (
                service::refused(&config.plan.expected_version, why),
                None,
                Vec::new(),
            ),
            Ok(held) => {
                // Read under the lock: the GitHub deployment names the
                // version production serves now as the last known good.
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
                let notes = held.notes.clone();
                let journal = service::drive(
                    ctx,
                    &clients,
                    &keeper,
                    &place,
                    plan,
                    service::Start {
                        lock: held.guard(),
                        cancel: cancel.clone(),
                        from: None,
                    },
                )
                .await;
                held.release(Some(&journal)).await;
                (journal, deployment, notes)
            }
        };
    drop(group);
    for n in &notes {
        ctx.console.info(n);
    }
    let mut report = report(ctx, config, &journal, &clients, started.elapsed(), &notes);
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

/// The first line a person reads about a deploy that did not promote.
pub fn failure_line(j: &Journal, what: &str) -> Option<String> {
    let outcome = j.outcome().unwrap_or(Outcome::NeedsAttention);
    let previous = j
        .facts
        .previous_version
        .clone()
        .unwrap_or_else(|| "the previous version".into());
    let serving = serving_one(j);
    let serving = if serving.is_empty() {
        format!("production serves {}", show_sample(&j.facts.serving_at_end))
    } else {
        format!("production serves {serving}")
    };
    let f = j.state.failure.clone().unwrap_or_default();
    let promoted_once = j.state.trail.contains(&Phase::Swap);
    let stop = j
        .state
        .stop
        .as_ref()
        .map(|s| s.detail.clone())
        .unwrap_or_default();
    Some(match outcome {
        Outcome::Promoted | Outcome::Unchanged => return None,
        Outcome::Interrupted => format!(
            "{what} was interrupted ({stop}); {} ({serving})",
            if promoted_once || j.state.trail.contains(&Phase::CanaryShift) {
                format!("production was restored to {previous} and verified")
            } else {
                "production was not changed".to_string()
            }
        ),
        Outcome::Preempted => format!(
            "{what} was stopped for an emergency rollback ({stop}); {}, and the lock was handed over",
            if promoted_once || j.state.trail.contains(&Phase::CanaryShift) {
                format!("production was restored to {previous} and verified")
            } else {
                "production was not changed".to_string()
            }
        ),
        Outcome::RolledBack if !promoted_once => {
            format!("the canary was rolled back, {serving}: {f}")
        }
        Outcome::RolledBack => {
            format!(
                "{what} failed after promotion and was rolled back to {previous} ({serving}): {f}"
            )
        }
        Outcome::Inconclusive => {
            format!("the canary's evidence was inconclusive; it was withdrawn and {serving}: {f}")
        }
        Outcome::FailedBeforeChange => format!("{what} failed before changing production: {f}"),
        Outcome::NeedsAttention => format!(
            "{what} needs a human: {}{}; {serving}",
            j.state
                .rollback_failure
                .clone()
                .unwrap_or_else(|| f.clone()),
            if j.state.rollback_failure.is_some() && !f.is_empty() {
                format!(" (after: {f})")
            } else {
                String::new()
            }
        ),
    })
}

fn report(
    ctx: &Ctx,
    config: &DeployConfig,
    j: &Journal,
    clients: &AzureClients,
    elapsed: std::time::Duration,
    notes: &[String],
) -> Report {
    let outcome = j.outcome().unwrap_or(Outcome::NeedsAttention);
    let previous = j.facts.previous_version.clone().unwrap_or_default();
    // What production serves, as read at the end: never a guess.
    let deployed = serving_one(j);
    let url = if j.facts.production_host.is_empty() {
        String::new()
    } else {
        format!("https://{}", j.facts.production_host)
    };
    let (reads, writes) = clients.arm.counts();
    let audit = json!({
        "command": "deploy",
        "app": config.site,
        "slot": config.plan.slot,
        "expected_version": config.plan.expected_version,
        "run": ctx.identity,
        "result": outcome.as_str(),
        "serving_at_end": j.facts.serving_at_end,
        "duration_ms": elapsed.as_millis() as u64,
        "arm_calls": {"reads": reads, "writes": writes},
        "notes": notes,
        "journal": j,
    });
    let audit_written = write_audit(&config.audit_log, &audit);
    let mut errors = Vec::new();
    if let Some(line) = failure_line(j, "the deploy") {
        errors.push(line);
    }
    if outcome == Outcome::NeedsAttention
        && let Some(previous) = &j.facts.previous_version
    {
        errors.push(format!(
            "to put production back on {previous}: expedite rollback --services {} --resource-group {} --to-version {previous} --reason \"…\"{}",
            config.site.app,
            config.site.resource_group,
            if config.platform == PlatformKind::ContainerApps {
                " --platform container-apps"
            } else {
                ""
            }
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
                match (j.facts.canary_steps.last(), &j.state.stop) {
                    (Some(s), _) if s.decision != "cancelled" => s.decision.clone(),
                    (_, Some(stop))
                        if !j.facts.canary_steps.is_empty() || !j.state.canary.is_empty() =>
                    {
                        match stop.kind {
                            StopKind::Preempted => "preempted".into(),
                            _ => "cancelled".into(),
                        }
                    }
                    (Some(s), None) => s.decision.clone(),
                    _ => "none".to_string(),
                },
            ),
            ("previous-version", previous),
            ("deployed-version", deployed.clone()),
            (
                "rolled-back",
                (outcome == Outcome::RolledBack
                    || (matches!(outcome, Outcome::Interrupted | Outcome::Preempted)
                        && (j.state.trail.contains(&Phase::Swap)
                            || j.state.trail.contains(&Phase::CanaryShift))))
                .to_string(),
            ),
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
        summary: summary(config, j, outcome, &deployed, &url, elapsed, notes),
        errors,
        errors_annotated: false,
        // Work left for the post stage only when production may still
        // serve an unverified build (the restore did not finish).
        interrupted: j.state.at_risk(),
    }
}

/// The summary's title for an outcome.
pub fn title(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Promoted => "✅ Deployed",
        Outcome::Unchanged => "✅ Already deployed",
        Outcome::RolledBack => "↩️ Rolled back",
        Outcome::FailedBeforeChange => "❌ Failed before any change to production",
        Outcome::NeedsAttention => "⚠️ Needs attention",
        Outcome::Interrupted => "⏹️ Interrupted, production restored",
        Outcome::Preempted => "⏹️ Stopped for an emergency rollback, production restored",
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
    notes: &[String],
) -> String {
    let mut md = format!(
        "## {} — {} {}\n\n",
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
        (
            "production serves now",
            if deployed.is_empty() {
                format!(
                    "unknown or mixed ({})",
                    md_cell(&show_sample(&j.facts.serving_at_end))
                )
            } else {
                md_cell(deployed)
            },
        ),
        ("production", md_cell(url)),
        (
            "staged in",
            match (&j.facts.new_revision, config.platform) {
                (Some(rev), _) => format!("revision {}", md_cell(rev)),
                (None, PlatformKind::ContainerApps) => "a new revision".into(),
                (None, PlatformKind::AppService) => {
                    format!("slot {}", md_cell(&config.plan.slot))
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
    for kept in &j.facts.kept {
        md.push_str(&format!("| kept for rollback | {} |\n", md_cell(kept)));
    }
    for note in notes {
        md.push_str(&format!("| lock | {} |\n", md_cell(note)));
    }
    if !j.facts.canary_steps.is_empty() {
        md.push_str(&canary_summary(&j.facts.canary_steps));
    }
    md.push_str(&phases_md(j));
    for note in &j.state.notes {
        md.push_str(&format!("\n> {}\n", md_code(note)));
    }
    md
}

/// The phases as a table and a mermaid timeline.
pub fn phases_md(j: &Journal) -> String {
    if j.phases.is_empty() {
        return String::new();
    }
    let mut md =
        String::from("\n### Phases\n\n| phase | start | duration | result |\n|---|---|---|---|\n");
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
            phase_name(p.phase).replace(':', " "),
            p.started_ms,
            end
        ));
    }
    md.push_str("```\n");
    md
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
                md_code(&s.decision),
                md_code(&s.detail)
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
