//! `deploy --dry-run`: everything a deploy checks before it changes
//! anything — the inputs, the sign-in, the platform's read-only preflight
//! (the hosts, what production serves, routing left behind) — and then, in
//! order, what the deploy would change; with a manifest, every service
//! stage by stage (a `command` service's commands are listed, never run).
//! Nothing that changes anything is sent: no lock, no GitHub deployment,
//! no journal, no upload.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use crate::commands::shared::platforms;
use crate::commands::shared::service::{Clients, clients};
use crate::commands::{CommandError, Ctx, Report};
use crate::config::{DeployConfig, MultiConfig};
use crate::manifest::Platform as ServicePlatform;
use crate::report::{md_cell, md_code};
use crate::rollout::Result as R;
use crate::rollout::driver::{DeployPlan, Place};

use super::place_of;

/// What one service's deploy would do, read without changing anything.
struct Preview {
    /// True when the deploy would go ahead (or change nothing).
    proceeds: bool,
    /// Production already serves the version: nothing would change.
    already: bool,
    /// Why the deploy would stop at preflight.
    stop: Option<String>,
    /// What production serves now, as read.
    previous: Option<String>,
    /// Production's host, when read.
    production_host: String,
    /// The changes, in order (markdown).
    steps: Vec<String>,
}

/// Runs the platform's read-only preflight for `place` and lists, in
/// order, what a deploy of `plan` would change; `what` names the build.
async fn preview(
    ctx: &Ctx,
    clients: &Clients,
    place: &Place,
    plan: &DeployPlan,
    what: String,
) -> Preview {
    let version = &plan.expected_version;
    let (result, facts) = platforms::preflight(ctx, clients, place, plan).await;
    let previous = facts
        .previous_version
        .clone()
        .unwrap_or_else(|| "an unknown version".into());
    let mut steps: Vec<String> = Vec::new();
    if ctx.config.lock.as_ref().is_some_and(|l| l.github) {
        steps.push(format!(
            "take the deploy lock of {} (a ref in the repository)",
            md_cell(place.name())
        ));
    }
    if !facts.stale_rules.is_empty() {
        steps.push(format!(
            "remove the routing left behind: {}",
            md_cell(&facts.stale_rules.join("; "))
        ));
    }
    let staged_in = platforms::staged_in(place, None);
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
                canary.window.as_secs_f64()
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
        plan.verify_window.as_secs_f64(),
        md_cell(version),
        md_cell(&previous)
    ));
    steps.push(format!(
        "record on the app that production served {} before (what `rollback` goes back to)",
        md_cell(&previous)
    ));
    let (proceeds, already, stop) = match &result {
        R::Ok | R::StaleRouting => (true, false, None),
        R::AlreadyDeployed => (true, true, None),
        other => (
            false,
            false,
            Some(format!(
                "the deploy would stop at preflight, before any change: {}",
                other.detail()
            )),
        ),
    };
    Preview {
        proceeds,
        already,
        stop,
        previous: facts.previous_version.clone(),
        production_host: facts.production_host.clone(),
        steps,
    }
}

/// Names the build a deploy stages: a package file, an image, a package
/// URL (its SAS token never shown), or nothing (the slot's own).
fn build_named(
    package: Option<&std::path::Path>,
    image: Option<&str>,
    url: Option<&String>,
    version: &str,
) -> String {
    match (package, image, url) {
        (Some(p), _, _) => format!("the package {}", md_cell(&p.display().to_string())),
        (None, Some(image), _) => format!("the image {}", md_cell(image)),
        (None, None, Some(url)) => format!(
            "the zip {}",
            md_cell(&crate::config::service::redacted_url(
                &url.replace("${version}", version)
            ))
        ),
        (None, None, None) => md_cell(version),
    }
}

/// Names a manifest service's build from its platform's settings.
fn service_build(s: &crate::manifest::Service, version: &str) -> String {
    use crate::rollout::platforms::Setting;
    let ServicePlatform::Target {
        platform, settings, ..
    } = &s.platform
    else {
        return md_cell(version);
    };
    let (mut package, mut image, mut url) = (None, None, None);
    for t in platform.takes() {
        let Some(v) = settings.get(t.setting.key()) else {
            continue;
        };
        match t.setting {
            Setting::Package => package = Some(std::path::Path::new(v)),
            Setting::Image => image = Some(v.replace("${version}", version)),
            Setting::PackageUrl => url = Some(v),
            _ => {}
        }
    }
    build_named(package, image.as_deref(), url, version)
}

/// Prints the numbered steps on the console (plain text).
fn say_steps(ctx: &Ctx, indent: &str, steps: &[String]) {
    for (i, s) in steps.iter().enumerate() {
        ctx.console
            .info(&format!("{indent}{}. {}", i + 1, s.replace('`', "")));
    }
}

/// Runs the dry run of a deploy: one service, or every service of a
/// manifest.
pub async fn run(ctx: &Ctx, config: &DeployConfig) -> Result<Report, CommandError> {
    if let Some(multi) = &config.multi {
        return run_manifest(ctx, config, multi).await;
    }
    let clients = clients(
        &ctx.console,
        config.azure.as_ref(),
        &config.http,
        config.kube.as_ref(),
    )?;
    let place = place_of(config);
    let plan = &config.plan;
    let version = &plan.expected_version;
    let app = &config.resource.app;
    let what = build_named(
        config.package.as_deref(),
        plan.image.as_deref(),
        config.settings.get("package"),
        version,
    );
    let p = preview(ctx, &clients, &place, plan, what).await;
    let previous = p
        .previous
        .clone()
        .unwrap_or_else(|| "an unknown version".into());
    let headline = match (&p.stop, p.already) {
        (Some(_), _) => format!(
            "🔍 Dry run — {} {}: the deploy would stop before any change",
            md_cell(app),
            md_cell(version)
        ),
        (None, true) => format!(
            "🔍 Dry run — {} {}: production already serves it; the deploy would change nothing",
            md_cell(app),
            md_cell(version)
        ),
        (None, false) => format!(
            "🔍 Dry run — {} {}: the deploy would make these changes, in this order; none was made",
            md_cell(app),
            md_cell(version)
        ),
    };
    let errors: Vec<String> = p.stop.iter().cloned().collect();
    let mut summary = format!("## {headline}\n\n");
    if !p.production_host.is_empty() {
        let _ = writeln!(
            summary,
            "Production: `{}` serving {}.\n",
            p.production_host,
            md_cell(&previous)
        );
    }
    if p.proceeds && !p.already {
        for (i, s) in p.steps.iter().enumerate() {
            let _ = writeln!(summary, "{}. {s}", i + 1);
        }
    } else if let Some(e) = errors.first() {
        let _ = writeln!(summary, "{}", md_cell(e));
    }
    ctx.console.info(&format!(
        "dry run: {} {} — {}",
        app,
        version,
        if p.proceeds {
            "no change was made"
        } else {
            "the deploy would stop"
        }
    ));
    if p.proceeds && !p.already {
        say_steps(ctx, "  ", &p.steps);
    }
    Ok(Report {
        success: p.proceeds,
        outputs: vec![
            ("result", "dry-run".into()),
            ("previous-version", p.previous.clone().unwrap_or_default()),
        ],
        summary,
        errors,
        ..Report::default()
    })
}

/// The dry run of a manifest: every service, stage by stage, as the deploy
/// would take them — an Azure service through its platform's read-only
/// preflight, a `command` service by the commands it would run (none is
/// run). Nothing is changed and no command runs.
async fn run_manifest(
    ctx: &Ctx,
    config: &DeployConfig,
    multi: &MultiConfig,
) -> Result<Report, CommandError> {
    let m = &multi.manifest;
    let clients = clients(
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
    let stages = m.stages();
    let mut md = String::new();
    let mut errors: Vec<String> = Vec::new();
    let mut outcomes: BTreeMap<String, &'static str> = BTreeMap::new();
    for (i, stage) in stages.iter().enumerate() {
        let _ = writeln!(md, "### Stage {}\n", i + 1);
        for name in stage {
            let Some(s) = m.service(name) else { continue };
            let version = super::multi::service_version(config, s);
            // What depends on a service that would stop never starts.
            if let Some(dep) = s.depends_on.iter().find(|d| {
                matches!(
                    outcomes.get(d.as_str()).copied(),
                    Some("would-stop" | "would-skip")
                )
            }) {
                outcomes.insert(s.name.clone(), "would-skip");
                let _ = writeln!(
                    md,
                    "**{}** {} — would not start: {} would not be verified\n",
                    md_cell(&s.name),
                    md_cell(&version),
                    md_cell(dep)
                );
                ctx.console.info(&format!(
                    "dry run, stage {}: {} {} — would not start: {dep} would not be verified",
                    i + 1,
                    s.name,
                    version
                ));
                continue;
            }
            let (heading, body, outcome) = match platforms::place_of_service(s, &subscription) {
                None => {
                    let ServicePlatform::Command {
                        deploy,
                        verify,
                        rollback,
                    } = &s.platform
                    else {
                        continue;
                    };
                    let mut steps = vec![
                        format!("run its deploy command {}", md_code(deploy)),
                        format!(
                            "run its verify command {} until it passes ({} attempts, {} s apart)",
                            md_code(verify),
                            config.plan.staging.attempts,
                            config.plan.staging.interval.as_secs_f64()
                        ),
                    ];
                    if let Some(rb) = rollback {
                        steps.push(format!(
                            "on failure ({}): its rollback command {}",
                            super::multi::multi_policy(multi),
                            md_code(rb)
                        ));
                    }
                    ("commands, none run".to_string(), steps, "would-deploy")
                }
                Some(place) => {
                    let p =
                        match super::multi::service_plan(config, s, &super::multi::journal_name(s))
                        {
                            Err(e) => Preview {
                                proceeds: false,
                                already: false,
                                stop: Some(e),
                                previous: None,
                                production_host: String::new(),
                                steps: Vec::new(),
                            },
                            Ok(mut plan) => {
                                // The build is staged into the plan first, as the
                                // real deploy does: a package that is not there
                                // stops it, and preflight sees what it will upload.
                                match platforms::stage_service(s, &version, &mut plan).await {
                                    Err(e) => Preview {
                                        proceeds: false,
                                        already: false,
                                        stop: Some(format!(
                                            "the deploy would stop before any change: {e}"
                                        )),
                                        previous: None,
                                        production_host: String::new(),
                                        steps: Vec::new(),
                                    },
                                    Ok(()) => {
                                        let what = service_build(s, &version);
                                        preview(ctx, &clients, &place, &plan, what).await
                                    }
                                }
                            }
                        };
                    let previous = p.previous.as_deref().unwrap_or("an unknown version");
                    match (&p.stop, p.already) {
                        (Some(why), _) => {
                            errors.push(format!("{}: {why}", s.name));
                            (
                                format!("{}: would stop", place.name()),
                                vec![md_cell(why)],
                                "would-stop",
                            )
                        }
                        (None, true) => (
                            format!("{}: production already serves it", place.name()),
                            Vec::new(),
                            "unchanged",
                        ),
                        (None, false) => (
                            format!("{}, serving {previous} now", place.name()),
                            p.steps,
                            "would-deploy",
                        ),
                    }
                }
            };
            outcomes.insert(s.name.clone(), outcome);
            let _ = writeln!(
                md,
                "**{}** {} — {}\n",
                md_cell(&s.name),
                md_cell(&version),
                md_cell(&heading)
            );
            for (n, step) in body.iter().enumerate() {
                let _ = writeln!(md, "{}. {step}", n + 1);
            }
            md.push('\n');
            ctx.console.info(&format!(
                "dry run, stage {}: {} {} — {}",
                i + 1,
                s.name,
                version,
                heading
            ));
            say_steps(ctx, "  ", &body);
        }
    }
    let success = errors.is_empty();
    let summary = format!(
        "## 🔍 Dry run — {}: {}\n\n{} services in {} stages; a service starts only after every service it depends on is verified healthy in production. Nothing was changed and no command was run.\n\n{md}",
        md_cell(&multi.path.to_string_lossy()),
        if success {
            "the deploy would make these changes, in this order"
        } else {
            "the deploy would stop"
        },
        m.services.len(),
        stages.len()
    );
    Ok(Report {
        success,
        outputs: vec![
            ("result", "dry-run".into()),
            (
                "services",
                serde_json::to_string(&outcomes).unwrap_or_else(|_| "{}".into()),
            ),
        ],
        summary,
        errors,
        ..Report::default()
    })
}
