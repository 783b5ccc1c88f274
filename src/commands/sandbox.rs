//! `sandbox` (CLI only): runs the local emulation of every remote API
//! expedite talks to, prints the settings that point the CLI at it, and
//! serves until Ctrl-C.

use super::{CommandError, Ctx, Report};
use crate::config::SandboxCliConfig;

/// Runs the sandbox until the run is cancelled (Ctrl-C, SIGTERM).
#[cfg(feature = "sandbox")]
pub async fn run(ctx: &Ctx, config: &SandboxCliConfig) -> Result<Report, CommandError> {
    use expedite_sandbox::{SandboxConfig, Scenario};

    let scenario: Scenario = config
        .scenario
        .parse()
        .map_err(|e: expedite_sandbox::SandboxError| CommandError::Failed(e.to_string()))?;
    let sandbox = expedite_sandbox::start(SandboxConfig {
        scenario,
        seed: config.seed,
        https_port: config.https_port,
        http_port: config.http_port,
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| CommandError::Failed(format!("the sandbox could not start: {e}")))?;
    if let Some(scenario) = &config.scenario_file {
        apply_scenario(&sandbox, scenario).map_err(CommandError::Failed)?;
    }
    // The repository deploys and rollbacks keep their lock and package
    // archive in, as a workflow's own would be.
    sandbox
        .handle()
        .github_create_repo_with_readme(
            "contoso",
            "payments",
            "main",
            "# payments\n\nThe sandbox's repository: expedite's deploy locks and package archive live here.\n",
        )
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    let settings = sandbox.settings();
    if ctx.sinks.json {
        // `--output json`: the one object is printed when the sandbox is
        // ready (a program reads it while the sandbox serves), not at stop.
        let mut object = serde_json::to_value(&settings)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        object.insert("outcome".into(), "running".into());
        ctx.console
            .data(&format!("{}\n", serde_json::Value::Object(object)));
    } else if config.json {
        ctx.console.data(&format!("{}\n", settings.to_json()));
    } else {
        ctx.console.data(&settings.export_lines());
        // The shell pointed at the sandbox is the sandbox's GitHub too.
        ctx.console.data(&format!(
            "export GITHUB_TOKEN='{}'\nexport GITHUB_REPOSITORY='contoso/payments'\n",
            settings.github_token
        ));
    }
    let how = if ctx.sinks.json || config.json {
        "The settings are the JSON object on stdout."
    } else {
        "Paste the export lines above into another shell to point expedite at it (or use --output json for programs)."
    };
    ctx.console.info(&format!(
        "sandbox running: Azure surfaces on https://{} (CA {}), control API on {}. {how} Ctrl-C stops it.",
        settings.https_addr,
        settings.ca_cert_path.display(),
        settings.control_url
    ));
    ctx.cancel.cancelled().await;
    ctx.console.info("stopping the sandbox");
    sandbox.shutdown().await;
    Ok(Report {
        success: true,
        outputs_shown: ctx.sinks.json,
        ..Report::default()
    })
}

/// Applies a scenario file (already validated by the config layer).
#[cfg(feature = "sandbox")]
fn apply_scenario(
    sandbox: &expedite_sandbox::Sandbox,
    scenario: &serde_json::Value,
) -> Result<(), String> {
    let handle = sandbox.handle();
    let faults: Vec<expedite_sandbox::FaultSpec> = match scenario.get("faults") {
        Some(f) => serde_json::from_value(f.clone()).map_err(|e| format!("faults: {e}"))?,
        None => Vec::new(),
    };
    let behaviours: std::collections::BTreeMap<String, expedite_sandbox::Behaviour> =
        match scenario.get("behaviours") {
            Some(b) => serde_json::from_value(b.clone()).map_err(|e| format!("behaviours: {e}"))?,
            None => Default::default(),
        };
    for (version, behaviour) in behaviours {
        handle
            .set_behaviour(&version, behaviour)
            .map_err(|e| e.to_string())?;
    }
    for fault in faults {
        handle.add_fault(fault).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Without the `sandbox` feature the command is not in this build.
#[cfg(not(feature = "sandbox"))]
pub async fn run(_ctx: &Ctx, _config: &SandboxCliConfig) -> Result<Report, CommandError> {
    Err(CommandError::NotAvailable(crate::config::Command::Sandbox))
}
