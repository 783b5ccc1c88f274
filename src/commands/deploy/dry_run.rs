//! `deploy --dry-run`: everything a deploy checks before it changes
//! anything — the inputs, the sign-in, the platform's read-only preflight
//! (the hosts, what production serves, routing left behind) — and then, in
//! order, what the deploy would change. Nothing that changes anything is
//! sent: no lock, no GitHub deployment, no journal, no upload.

use std::fmt::Write as _;

use crate::commands::shared::platforms;
use crate::commands::shared::service::azure_clients;
use crate::commands::{CommandError, Ctx, Report};
use crate::config::DeployConfig;
use crate::report::md_cell;
use crate::rollout::Result as R;

use super::place_of;

/// Runs the dry run of a single-service deploy.
pub async fn run(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    if config.multi.is_some() {
        return Err(CommandError::Failed(
            "--dry-run previews one service; for a manifest, `expedite plan` shows the order and checks every entry"
                .into(),
        ));
    }
    let azure = config.azure.as_ref().ok_or_else(|| {
        CommandError::Failed(
            "a dry run reads the app through Azure: give the Azure inputs (client-id, tenant-id, subscription-id)"
                .into(),
        )
    })?;
    let clients = azure_clients(&ctx.console, azure)?;
    let place = place_of(config);
    let plan = &config.plan;
    let version = &plan.expected_version;
    let app = &config.resource.app;
    let (result, facts) = platforms::preflight(ctx, &clients, &place, plan).await;

    let previous = facts
        .previous_version
        .clone()
        .unwrap_or_else(|| "an unknown version".into());
    let mut steps: Vec<String> = Vec::new();
    if ctx.config.lock.as_ref().is_some_and(|l| l.github) {
        steps.push(format!(
            "take the deploy lock of {} (a ref in the repository)",
            md_cell(app)
        ));
    }
    if !facts.stale_rules.is_empty() {
        steps.push(format!(
            "remove the routing left behind: {}",
            md_cell(&facts.stale_rules.join("; "))
        ));
    }
    let staged_in = platforms::staged_in(&place, None);
    let what = match (&config.package, &plan.image) {
        (Some(p), _) => format!("the package {}", md_cell(&p.display().to_string())),
        (None, Some(image)) => format!("the image {}", md_cell(image)),
        (None, None) => match config.settings.get("package") {
            // A URL the platform downloads (a SAS token in it never shown).
            Some(url) => format!(
                "the zip {}",
                md_cell(&crate::config::service::redacted_url(
                    &url.replace("${version}", version)
                ))
            ),
            None => md_cell(version),
        },
    };
    steps.push(format!("stage {what} in {staged_in}"));
    steps.push(format!(
        "check health and version {} there ({} attempts, {} s apart)",
        md_cell(version),
        plan.staging.attempts,
        plan.staging.interval.as_secs_f64()
    ));
    if let Some(canary) = &plan.canary {
        for p in &canary.steps {
            steps.push(format!(
                "send {p} % of production's traffic to it and watch for {} s (the breaker may withdraw it)",
                canary.window.as_secs()
            ));
        }
    }
    steps.push(format!(
        "promote it: production, serving {} now, would serve {}",
        md_cell(&previous),
        md_cell(version)
    ));
    steps.push(format!(
        "verify production: every one of {} requests within {} s must reach {}; otherwise put {} back",
        plan.verify_samples,
        plan.verify_window.as_secs(),
        md_cell(version),
        md_cell(&previous)
    ));
    steps.push(format!(
        "record on the app that production served {} before (what `rollback` goes back to)",
        md_cell(&previous)
    ));

    let (success, headline, errors) = match &result {
        R::Ok | R::StaleRouting => (
            true,
            format!(
                "🔍 Dry run — {} {}: the deploy would make these changes, in this order; none was made",
                md_cell(app),
                md_cell(version)
            ),
            Vec::new(),
        ),
        R::AlreadyDeployed => (
            true,
            format!(
                "🔍 Dry run — {} {}: production already serves it; the deploy would change nothing",
                md_cell(app),
                md_cell(version)
            ),
            Vec::new(),
        ),
        other => {
            let why = other.detail();
            (
                false,
                format!(
                    "🔍 Dry run — {} {}: the deploy would stop before any change",
                    md_cell(app),
                    md_cell(version)
                ),
                vec![format!(
                    "the deploy would stop at preflight, before any change: {why}"
                )],
            )
        }
    };
    let mut summary = format!("## {headline}\n\n");
    if !facts.production_host.is_empty() {
        let _ = writeln!(
            summary,
            "Production: `{}` serving {}.\n",
            facts.production_host,
            md_cell(&previous)
        );
    }
    if success && !matches!(result, R::AlreadyDeployed) {
        for (i, s) in steps.iter().enumerate() {
            let _ = writeln!(summary, "{}. {s}", i + 1);
        }
    } else if let Some(e) = errors.first() {
        let _ = writeln!(summary, "{}", md_cell(e));
    }
    ctx.console.info(&format!(
        "dry run: {} {} — {}",
        app,
        version,
        if success {
            "no change was made"
        } else {
            "the deploy would stop"
        }
    ));
    if success && !matches!(result, R::AlreadyDeployed) {
        for (i, s) in steps.iter().enumerate() {
            ctx.console
                .info(&format!("  {}. {}", i + 1, s.replace('`', "")));
        }
    }
    Ok(Report {
        success,
        outputs: vec![
            ("result", "dry-run".into()),
            (
                "previous-version",
                facts.previous_version.clone().unwrap_or_default(),
            ),
        ],
        summary,
        errors,
        errors_annotated: false,
        interrupted: false,
        outputs_shown: false,
    })
}
