//! `deploy`: the verified deploy of one service (or, with a manifest, of
//! several), wired to the runner contract. The decisions live in
//! [`crate::rollout`]; the lock and the restore of a dead holder in
//! [`crate::commands::shared::service`]; this module runs them and writes outputs, the
//! summary (phases table and a mermaid timeline) and the JSON audit log.
//! The post stage ([`post`]) finishes whatever the main stage's journals
//! say is left.

mod dry_run;
mod multi;
mod summary;

use summary::summary;

use std::time::Instant;

use serde_json::json;

use crate::commands::shared::platforms;
use crate::commands::shared::service::{
    self, Clients, Keeper, LockAsk, save_journal_paths, serving_one, write_audit,
};
use crate::commands::{CommandError, Ctx, Report};
use crate::config::DeployConfig;

use crate::rollout::driver::{Journal, Place, show_sample};
use crate::rollout::{Outcome, Phase, StopKind};

/// Where the single-service deploy runs.
pub fn place_of(config: &DeployConfig) -> Place {
    let r = &config.resource;
    platforms::place(
        config.platform,
        &r.subscription,
        &r.resource_group,
        &r.app,
        config.settings.clone(),
    )
}

/// Runs a deploy.
pub async fn run(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    if config.dry_run {
        return dry_run::run(ctx, config).await;
    }
    let mut rec =
        crate::commands::shared::records::Records::connect(ctx, ctx.config.records.as_deref())
            .await;
    let keeper = Keeper::connect(ctx).await?;
    if let Some(multi) = &config.multi {
        let mut report = multi::run(ctx, config, multi, &keeper).await?;
        let services = multi.manifest.order().join(", ");
        let version = config.plan.expected_version.clone();
        crate::commands::shared::records::after_deploy(
            ctx,
            &mut rec,
            None,
            &services,
            &version,
            &mut report,
        )
        .await;
        return Ok(report);
    }
    let started = Instant::now();
    let clients = service::clients(
        &ctx.console,
        config.azure.as_ref(),
        &config.http,
        config.kube.as_ref(),
    )?;
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
        config.plan.expected_version, config.resource.app
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
                    let previous = platforms::live_version(
                        ctx,
                        &clients,
                        &place,
                        &config.plan.endpoints,
                        &ctx.cancel,
                    )
                    .await;
                    rec.deployment_start(
                        ctx,
                        &config.resource.app,
                        &config.plan.expected_version,
                        previous.as_deref(),
                    )
                    .await
                } else {
                    None
                };
                let notes = held.notes.clone();
                let journal = platforms::drive(
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
    crate::commands::shared::records::after_deploy(
        ctx,
        &mut rec,
        deployment,
        &config.resource.app,
        &config.plan.expected_version,
        &mut report,
    )
    .await;
    Ok(report)
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
            if promoted_once || summary::touched_production(j) {
                format!("production was restored to {previous} and verified")
            } else {
                "production was not changed".to_string()
            }
        ),
        Outcome::Preempted => format!(
            "{what} was stopped for an emergency rollback ({stop}); {}, and the lock was handed over",
            if promoted_once || summary::touched_production(j) {
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
    clients: &Clients,
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
    let (reads, writes) = clients.arm_counts();
    let audit = json!({
        "command": "deploy",
        "app": config.resource,
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
            "to put production back on {previous}: {}",
            platforms::rollback_command(&place_of(config), previous)
        ));
    }
    for note in &j.state.notes {
        tracing::warn!("{note}");
    }
    ctx.console.info(&format!(
        "deploy: {} in {:.1}s{}",
        outcome.as_str(),
        elapsed.as_secs_f64(),
        if clients.azure.is_some() {
            format!(" ({reads} ARM reads, {writes} writes)")
        } else {
            String::new()
        }
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
        outputs_shown: false,
    }
}
