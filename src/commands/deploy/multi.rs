//! `deploy` with a manifest: every service through its own verified
//! rollout (App Service, Container Apps) or its commands (`command`
//! platform), in dependency order by [`crate::rollout::multi`], with one
//! outcome per service in the summary and the `services` output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::commands::shared::platforms;
use crate::commands::shared::service::{
    self, Clients, Keeper, LockAsk, RollbackSettings, manifest_command, rollback_one, write_audit,
};
use crate::commands::{CommandError, Ctx, Report};
use crate::config::{DeployConfig, MultiConfig};
use crate::manifest::{Platform, Service};
use crate::probe::Endpoints;
use crate::report::{md_cell, md_code};
use crate::rollout::driver::{DeployPlan, Journal, Place};
use crate::rollout::multi::{self, ServiceRecord, ServiceRunner, Step};

/// Deploys and rolls back the manifest's services for real.
struct Runner {
    ctx: Ctx,
    config: DeployConfig,
    multi: MultiConfig,
    /// The run's clients (Azure's only when a service is on Azure).
    clients: Clients,
    keeper: Keeper,
    journals: Mutex<BTreeMap<String, Journal>>,
}

fn step_of(j: &Journal) -> Step {
    let outcome = j
        .outcome()
        .unwrap_or(crate::rollout::Outcome::NeedsAttention);
    Step {
        // A rollout restores itself when it fails.
        undo: false,
        result: outcome.as_str().to_string(),
        verified: outcome.success(),
        detail: j.state.failure.clone().unwrap_or_else(|| {
            format!(
                "{} → {}",
                j.facts.previous_version.as_deref().unwrap_or("unknown"),
                match outcome {
                    crate::rollout::Outcome::Promoted | crate::rollout::Outcome::Unchanged => {
                        "the new version, verified"
                    }
                    _ => "unchanged",
                }
            )
        }),
    }
}

/// The journal file of a manifest service (next to the single deploy's).
fn journal_path(config: &DeployConfig, name: &str) -> Option<std::path::PathBuf> {
    config
        .plan
        .journal
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| d.join(format!("expedite-journal-{name}.json")))
}

/// The version a manifest service deploys (its own, else the deploy's).
pub(super) fn service_version(config: &DeployConfig, s: &Service) -> String {
    s.version
        .clone()
        .unwrap_or_else(|| config.plan.expected_version.clone())
}

/// The single-service plan for `s`, from the deploy's settings (the real
/// deploy and `--dry-run` build it here, so they cannot disagree).
pub(super) fn service_plan(
    config: &DeployConfig,
    s: &Service,
    journal_name: &str,
) -> Result<DeployPlan, String> {
    let mut plan = config.plan.clone();
    plan.expected_version = service_version(config, s);
    plan.endpoints = Endpoints {
        health_path: s.health_path.clone(),
        health_status: plan.endpoints.health_status,
        version_path: Some(s.version_path.clone()),
    };
    plan.journal = journal_path(config, journal_name);
    plan.run_id = format!("{}/{}", plan.run_id, s.name);
    if let Some(steps) = &s.canary {
        let Some(canary) = plan.canary.as_mut() else {
            return Err(format!(
                "service '{}' has canary steps, but the deploy has no canary settings (set `canary` for the defaults)",
                s.name
            ));
        };
        canary.steps = steps.clone();
    }
    Ok(plan)
}

/// A service's journal name: its app (unique per resource), else its name.
pub(super) fn journal_name(s: &Service) -> String {
    s.resource_name().to_string()
}

fn failed(detail: impl Into<String>) -> Step {
    Step {
        result: "failed".into(),
        verified: false,
        detail: detail.into(),
        undo: false,
    }
}

impl Runner {
    fn subscription(&self) -> String {
        self.config
            .azure
            .as_ref()
            .map(|a| a.subscription_id.clone())
            .unwrap_or_default()
    }

    fn version(&self, s: &Service) -> String {
        service_version(&self.config, s)
    }

    /// The single-service plan for `s`, from the deploy's settings.
    fn plan(&self, s: &Service, journal_name: &str) -> Result<DeployPlan, String> {
        service_plan(&self.config, s, journal_name)
    }

    /// A service on a platform with a target: its plan, its build (the
    /// package or the image), then the same verified rollout as a single
    /// deploy.
    async fn deploy_on(&self, s: &Service, place: Place) -> Step {
        let mut plan = match self.plan(s, &journal_name(s)) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        if let Err(e) = platforms::stage_service(s, &self.version(s), &mut plan).await {
            return failed(e);
        }
        self.rollout(s, place, plan).await
    }

    /// The same verified rollout as a single deploy; the journal is kept
    /// for a later rollback.
    async fn rollout(&self, s: &Service, place: Place, plan: DeployPlan) -> Step {
        let clients = &self.clients;
        let cancel = self.ctx.cancel.child();
        let ask = LockAsk {
            command: format!(
                "deploy {} (manifest service {})",
                plan.expected_version, s.name
            ),
            preemptible: true,
            preempt: None,
            preempt_grace: Duration::ZERO,
            wait: plan.lock_wait,
            journal: plan.journal.clone(),
        };
        let journal =
            match service::take(&self.ctx, clients, &self.keeper, &place, &ask, &cancel).await {
                Err(why) => service::refused(&plan.expected_version, why),
                Ok(held) => {
                    for n in &held.notes {
                        self.ctx.console.info(&format!("{}: {n}", s.name));
                    }
                    let j = platforms::drive(
                        &self.ctx,
                        clients,
                        &self.keeper,
                        &place,
                        plan,
                        service::Start {
                            lock: held.guard(),
                            cancel,
                            from: None,
                        },
                    )
                    .await;
                    held.release(Some(&j)).await;
                    j
                }
            };
        let step = step_of(&journal);
        self.remember(s, journal);
        step
    }

    fn remember(&self, s: &Service, j: Journal) {
        if let Ok(mut all) = self.journals.lock() {
            all.insert(s.name.clone(), j);
        }
    }

    fn journal(&self, name: &str) -> Option<Journal> {
        self.journals.lock().ok().and_then(|j| j.get(name).cloned())
    }

    async fn command(&self, s: &Service, what: &str, command: &str) -> Result<(), String> {
        manifest_command(
            &self.ctx,
            s,
            &self.version(s),
            what,
            command,
            self.config.plan.staging.timeout,
        )
        .await
    }
}

impl Runner {
    async fn deploy_command(&self, s: &Service, deploy: &str, verify: &str) -> Step {
        if let Err(e) = self.command(s, "deploy", deploy).await {
            return Step {
                result: "failed".into(),
                verified: false,
                // A deploy command that ran may have changed things half-way
                // (a migration): its rollback undoes them. One that never
                // started changed nothing.
                undo: !e.starts_with("cannot run"),
                detail: e,
            };
        }
        // Verified like a slot: retried on the staging schedule.
        let schedule = self.config.plan.staging;
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 1..=schedule.attempts.max(1) {
            match self.command(s, "verify", verify).await {
                Ok(()) => {
                    return Step {
                        result: "promoted".into(),
                        verified: true,
                        detail: format!("deployed {}; verify passed", self.version(s)),
                        undo: false,
                    };
                }
                Err(e) => last = e,
            }
            if attempt == schedule.attempts
                || started.elapsed() + schedule.interval > schedule.timeout
            {
                break;
            }
            if self.ctx.cancel.sleep(schedule.interval).await.is_err() {
                break;
            }
        }
        Step {
            result: "needs-attention".into(),
            verified: false,
            detail: format!("deployed, but verify kept failing: {last}"),
            undo: true,
        }
    }

    /// Puts a service this run promoted back on the version it served
    /// before, as the `rollback` command would (its lock, a verified
    /// rollout of the known-good version).
    async fn rollback_to_previous(&self, s: &Service, place: Place) -> Step {
        let Some(j) = self.journal(&s.name) else {
            return failed("no journal of this run's deploy");
        };
        let Some(previous) = j.facts.previous_version.clone() else {
            return failed("the version before this run's deploy is unknown");
        };
        let settings = RollbackSettings {
            reason: "a service it deploys with failed (on-failure)".into(),
            to_version: Some(previous),
            endpoints: Endpoints {
                health_path: s.health_path.clone(),
                health_status: self.config.plan.endpoints.health_status,
                version_path: Some(s.version_path.clone()),
            },
            verify_samples: self.config.plan.verify_samples,
            swap_timeout: self.config.plan.swap_timeout,
            lock_wait: self.config.plan.lock_wait,
            journal_dir: self
                .config
                .plan
                .journal
                .as_ref()
                .and_then(|p| p.parent())
                .map(std::path::Path::to_path_buf),
            preempt: false,
        };
        let clients = &self.clients;
        let (r, _) = rollback_one(&self.ctx, clients, &self.keeper, &place, &settings, None).await;
        Step {
            undo: false,
            verified: r.error.is_none(),
            result: r.result.to_string(),
            detail: r.error.unwrap_or_else(|| {
                format!(
                    "back on {}",
                    r.target.as_deref().unwrap_or("the previous version")
                )
            }),
        }
    }
}

impl ServiceRunner for Runner {
    async fn deploy(&self, service: String) -> Step {
        let Some(s) = self.multi.manifest.service(&service).cloned() else {
            return failed("not in the manifest");
        };
        let _group = self.ctx.console.group(&format!("deploy {service}"));
        if let Platform::Command { deploy, verify, .. } = &s.platform {
            return self.deploy_command(&s, deploy, verify).await;
        }
        match platforms::place_of_service(&s, &self.subscription()) {
            Some(place) => self.deploy_on(&s, place).await,
            None => failed("no platform to deploy it to"),
        }
    }

    async fn rollback(&self, service: String) -> Step {
        let Some(s) = self.multi.manifest.service(&service).cloned() else {
            return failed("not in the manifest");
        };
        let _group = self.ctx.console.group(&format!("roll back {service}"));
        if let Platform::Command { rollback, .. } = &s.platform {
            return match rollback {
                Some(cmd) => match self.command(&s, "rollback", cmd).await {
                    Ok(()) => Step {
                        result: "rolled-back".into(),
                        verified: true,
                        detail: "rollback command succeeded".into(),
                        undo: false,
                    },
                    Err(e) => failed(e),
                },
                None => failed("the manifest gives no rollback command for it"),
            };
        }
        match platforms::place_of_service(&s, &self.subscription()) {
            Some(place) => self.rollback_to_previous(&s, place).await,
            None => failed("no platform to roll it back on"),
        }
    }
}

/// Runs the deploy of the manifest's services.
pub async fn run(
    ctx: &Ctx,
    config: &DeployConfig,
    multi: &MultiConfig,
    keeper: &Keeper,
) -> Result<Report, CommandError> {
    let started = Instant::now();
    let clients = service::clients(
        &ctx.console,
        config.azure.as_ref(),
        &config.http,
        config.kube.as_ref(),
    )?;
    // The post stage finishes every service's journal.
    let paths: Vec<std::path::PathBuf> = multi
        .manifest
        .services
        .iter()
        .flat_map(|s| {
            let name = journal_name(s);
            // Its deploy, and the rollback `on-failure` may run.
            [
                journal_path(config, &name),
                journal_path(config, &format!("rollback-{name}")),
            ]
        })
        .flatten()
        .collect();
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    crate::commands::shared::service::save_journal_paths(ctx, &paths);
    let stages = multi.manifest.stages();
    ctx.console.info(&format!(
        "deploying {} services in {} stages from {}",
        multi.manifest.services.len(),
        stages.len(),
        multi.path.display()
    ));
    let runner = Arc::new(Runner {
        ctx: ctx.clone(),
        config: config.clone(),
        multi: multi.clone(),
        clients,
        keeper: keeper.clone(),
        journals: Mutex::new(BTreeMap::new()),
    });
    let report = multi::run(
        &multi.manifest,
        runner.clone(),
        multi.max_parallel,
        multi.on_failure,
        &ctx.cancel,
    )
    .await;
    let elapsed = started.elapsed();
    let outcomes: BTreeMap<String, String> = report
        .services
        .iter()
        .map(|r| (r.service.clone(), r.outcome()))
        .collect();
    let journals = runner
        .journals
        .lock()
        .map(|j| j.clone())
        .unwrap_or_default();
    let audit = json!({
        "command": "deploy",
        "manifest": multi.path,
        "on_failure": multi.on_failure,
        "max_parallel": multi.max_parallel,
        "run": config.plan.run_id,
        "success": report.success,
        "duration_ms": elapsed.as_millis() as u64,
        "services": report.services,
        "rollback_order": report.rollback_order,
        "journals": journals,
    });
    let audit_written = write_audit(&config.audit_log, &audit);
    let result = if report.success {
        "promoted"
    } else if !report.rollback_order.is_empty() {
        "rolled-back"
    } else {
        "failed"
    };
    let mut errors = Vec::new();
    if let Some(f) = &report.failure {
        errors.push(format!(
            "multi-service deploy failed ({}): {f}",
            multi_policy(multi)
        ));
    }
    for r in &report.services {
        if let Some(rb) = &r.rollback
            && !rb.verified
        {
            errors.push(format!(
                "{}: the rollback did not complete; it needs a human: {}",
                r.service, rb.detail
            ));
        }
    }
    Ok(Report {
        success: report.success,
        outputs: vec![
            ("result", result.to_string()),
            (
                "services",
                serde_json::to_string(&outcomes).unwrap_or_else(|_| "{}".into()),
            ),
            (
                "rolled-back",
                (!report.rollback_order.is_empty()).to_string(),
            ),
            ("duration-seconds", format!("{:.1}", elapsed.as_secs_f64())),
            (
                "audit-log",
                if audit_written {
                    config.audit_log.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
            ),
        ],
        summary: summary(
            multi,
            &report.services,
            &report.rollback_order,
            &stages,
            elapsed,
            &journals,
        ),
        errors,
        errors_annotated: false,
        interrupted: false,
        outputs_shown: false,
    })
}

pub(super) fn multi_policy(multi: &MultiConfig) -> &'static str {
    match multi.on_failure {
        multi::OnFailure::RollbackAll => "on-failure: rollback-all",
        multi::OnFailure::RollbackFailed => "on-failure: rollback-failed",
        multi::OnFailure::Stop => "on-failure: stop",
    }
}

fn summary(
    multi: &MultiConfig,
    services: &[ServiceRecord],
    rollback_order: &[String],
    stages: &[Vec<String>],
    elapsed: Duration,
    journals: &BTreeMap<String, Journal>,
) -> String {
    let ok = services
        .iter()
        .all(|s| s.deploy.as_ref().is_some_and(|d| d.verified));
    let mut md = format!(
        "## {} — {} services from {}\n\n{} · {:.1} s\n\n| stage | service | platform | before | result | duration | detail |\n|---|---|---|---|---|---|---|\n",
        if ok {
            "✅ Deployed"
        } else {
            "❌ Multi-service deploy failed"
        },
        services.len(),
        md_cell(&multi.path.to_string_lossy()),
        multi_policy(multi),
        elapsed.as_secs_f64()
    );
    let stage_of = |n: &str| {
        stages
            .iter()
            .position(|s| s.iter().any(|x| x == n))
            .map_or(0, |i| i + 1)
    };
    for r in services {
        let platform = multi
            .manifest
            .service(&r.service)
            .map_or("", |s| s.platform.name());
        let before = journals
            .get(&r.service)
            .and_then(|j| j.facts.previous_version.clone())
            .unwrap_or_else(|| "–".into());
        let duration = match (r.started_ms, r.finished_ms) {
            (Some(a), Some(b)) => format!("{:.1} s", b.saturating_sub(a) as f64 / 1000.0),
            _ => "–".into(),
        };
        let mut detail = r
            .deploy
            .as_ref()
            .map(|d| d.detail.clone())
            .unwrap_or_else(|| {
                "not started: a service it depends on did not finish verified".into()
            });
        if let Some(rb) = &r.rollback {
            detail.push_str(&format!("; rollback: {} ({})", rb.result, rb.detail));
        }
        md.push_str(&format!(
            "| {} | {} | {platform} | {} | **{}** | {duration} | {} |\n",
            stage_of(&r.service),
            md_cell(&r.service),
            md_cell(&before),
            md_cell(&r.outcome()),
            md_cell(&detail)
        ));
    }
    if !rollback_order.is_empty() {
        md.push_str(&format!(
            "\nRolled back in reverse dependency order: {}\n",
            md_code(&rollback_order.join(" → "))
        ));
    }
    let span = services
        .iter()
        .filter_map(|r| r.started_ms.zip(r.finished_ms))
        .map(|(a, b)| b.max(a + 1))
        .max()
        .unwrap_or(0);
    md.push_str(&format!(
        "\n```mermaid\ngantt\n  dateFormat x\n{}",
        crate::report::gantt_axis(span)
    ));
    for (i, stage) in stages.iter().enumerate() {
        md.push_str(&format!("  section stage {}\n", i + 1));
        for name in stage {
            let Some(r) = services.iter().find(|r| &r.service == name) else {
                continue;
            };
            if let (Some(a), Some(b)) = (r.started_ms, r.finished_ms) {
                let state = if r.deploy.as_ref().is_some_and(|d| d.verified) {
                    "done"
                } else {
                    "crit"
                };
                md.push_str(&format!(
                    "  {} :{state}, {}, {a}, {}\n",
                    name.replace(':', " "),
                    name.replace(['-', '.'], "_"),
                    b.max(a + 1)
                ));
            }
        }
    }
    md.push_str("```\n");
    md
}
