//! Runs a sandbox by hand: prints `export` lines for the CLI, optionally
//! writes the settings JSON, and serves until Ctrl-C.
//!
//! `cargo run -p expedite-sandbox --example serve -- [--seed N] [--swap-ms MS] [--settings-out FILE]`

use std::time::Duration;

use expedite_sandbox::{SandboxConfig, start};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SandboxConfig::default();
    let mut settings_out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" => config.seed = value()?.parse()?,
            "--swap-ms" => config.swap_duration = Duration::from_millis(value()?.parse()?),
            "--build-ms" => config.build_duration = Duration::from_millis(value()?.parse()?),
            "--https-port" => config.https_port = value()?.parse()?,
            "--http-port" => config.http_port = value()?.parse()?,
            "--scenario" => config.scenario = value()?.parse()?,
            "--settings-out" => settings_out = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let sandbox = start(config).await?;
        let settings = sandbox.settings();
        if let Some(path) = settings_out {
            std::fs::write(path, settings.to_json())?;
        }
        print!("{}", settings.export_lines());
        eprintln!(
            "sandbox: HTTPS {} (Azure), HTTP {} (control); Ctrl-C stops",
            sandbox.https_addr(),
            sandbox.http_addr()
        );
        tokio::signal::ctrl_c().await?;
        sandbox.shutdown().await;
        Ok(())
    })
}
