//! Side-by-side baseline for BENCHMARKS.md: the seed's
//! `emergency-rollback.sh` through the real Azure CLI, and expedite's
//! `rollback`, each clicked twice from the same state on the same kind of
//! sandbox (default timings: a swap takes 3 s, `Retry-After: 1`).
//!
//! The state both start from: the seed's hotfix workflow has just swapped
//! 2.4.1 into production (its swap step, through the CLI), so production
//! serves 2.4.1 and staging holds 2.4.0 — the moment someone reaches for the
//! rollback button. Each click is measured for wall time, the ARM requests
//! it made (from the sandbox's request log) and what production serves
//! after it. A third row runs the seed's script with its swap written the
//! way App Service accepts it (staging as the source), which is what the
//! README's "second click" claim assumes; that variant is not the seed's.
//!
//! ```text
//! bash .ci/install-az.sh            # the pinned Azure CLI in .ci/az-venv
//! cargo build --locked --bin expedite
//! cargo run --locked -p expedite-sandbox --example seed_baseline
//! ```
//!
//! `EXPEDITE_AZ` and `EXPEDITE_BIN` override where the CLI and the expedite
//! binary are found. Everything stays on 127.0.0.1.

#[path = "../tests/azcli/mod.rs"]
mod azcli;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use azcli::{Az, seed};
use expedite_sandbox::{RequestRecord, Sandbox, SandboxConfig};

const APP: &str = "app-contoso-payments";
const RG: &str = "rg-contoso-prod";
const ARM_HOST: &str = "management.azure.test";

/// One measured click.
struct Click {
    tool: &'static str,
    click: u32,
    exit: Option<i32>,
    wall: Duration,
    arm_reads: usize,
    arm_writes: usize,
    arm_failed: usize,
    tokens: usize,
    app: usize,
    production: String,
}

fn production(sb: &Sandbox) -> String {
    sb.slot_version(APP, "production").unwrap_or_default()
}

/// ARM reads, writes and failures, token requests and requests to the app
/// (its sites and slots, not Kudu) logged after `since`.
fn measure(sb: &Sandbox, since: u64) -> (usize, usize, usize, usize, usize) {
    let log: Vec<RequestRecord> = sb.request_log_since(since);
    let arm: Vec<&RequestRecord> = log.iter().filter(|r| r.host == ARM_HOST).collect();
    let writes = arm
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .count();
    let failed = arm.iter().filter(|r| r.status >= 400).count();
    let tokens = log
        .iter()
        .filter(|r| r.host == "login.azure.test" && r.method == "POST")
        .count();
    let app = log
        .iter()
        .filter(|r| r.host.starts_with(APP) && !r.host.contains(".scm."))
        .count();
    (arm.len() - writes, writes, failed, tokens, app)
}

/// A sandbox in the starting state, with the CLI signed in to it.
async fn prepared(az_bin: &std::path::Path) -> Result<(Sandbox, Az), Box<dyn std::error::Error>> {
    let sb = expedite_sandbox::start(SandboxConfig::default()).await?;
    let settings = sb.settings();
    // 2.4.1 into staging through Kudu (the seed's `azure/webapps-deploy`).
    let mut client = reqwest::Client::builder()
        .use_preconfigured_tls(sb.client_tls_config()?)
        .timeout(Duration::from_secs(60))
        .no_proxy();
    for host in sb.hosts() {
        client = client.resolve(&host, sb.https_addr());
    }
    let token = sb.issue_access_token(0, 3600)?;
    let r = client
        .build()?
        .post(format!(
            "https://{APP}-staging.scm.azurewebsites.test/api/zipdeploy"
        ))
        .bearer_auth(token)
        .body(expedite_sandbox::demo_package("2.4.1")?)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("staging 2.4.1: {}", r.status()).into());
    }
    let az = Az::new(az_bin, &settings);
    az.sign_in(&settings).await;
    // The seed's hotfix swap step.
    let workflow = seed::read("hotfix-deploy.yml");
    let (step, _) = seed::for_sandbox(
        &seed::step(&workflow, "Swap to production (immediate)"),
        &seed::workflow_env(&workflow),
    );
    let r = az.bash(&step, &[]).await;
    if !r.success() || production(&sb) != "2.4.1" {
        return Err(format!("the seed's swap step: {r:?}").into());
    }
    Ok((sb, az))
}

async fn seed_clicks(
    az_bin: &std::path::Path,
    tool: &'static str,
    mirrored: bool,
) -> Result<Vec<Click>, Box<dyn std::error::Error>> {
    let (sb, az) = prepared(az_bin).await?;
    let (mut script, _) =
        seed::for_sandbox(&seed::read("emergency-rollback.sh"), &Default::default());
    if mirrored {
        script = script
            .replace("--slot production \\", "--slot staging \\")
            .replace("--target-slot staging", "--target-slot production");
    }
    let path = az.dir.path().join("emergency-rollback.sh");
    std::fs::write(&path, script)?;
    let mut clicks = Vec::new();
    for click in 1..=2 {
        let since = sb.last_seq();
        let r = az.bash_file(&[], &path, &[]).await;
        let (arm_reads, arm_writes, arm_failed, tokens, app) = measure(&sb, since);
        clicks.push(Click {
            tool,
            click,
            exit: r.code,
            wall: r.elapsed,
            arm_reads,
            arm_writes,
            arm_failed,
            tokens,
            app,
            production: production(&sb),
        });
    }
    sb.shutdown().await;
    Ok(clicks)
}

async fn expedite_clicks(
    az_bin: &std::path::Path,
    bin: &std::path::Path,
) -> Result<Vec<Click>, Box<dyn std::error::Error>> {
    let (sb, az) = prepared(az_bin).await?;
    // As `expedite sandbox` sets it up: the repository the deploy lock and
    // package archive live in, and the shell's GitHub variables.
    sb.github_create_repo_with_readme("contoso", "payments", "main", "# payments\n")?;
    let settings = sb.settings();
    let home = tempfile::tempdir()?;
    let mut clicks = Vec::new();
    for click in 1..=2 {
        let since = sb.last_seq();
        let start = Instant::now();
        let out = tokio::process::Command::new(bin)
            .args([
                "rollback",
                "--services",
                APP,
                "--resource-group",
                RG,
                "--to-version",
                "2.4.0",
                "--reason",
                &format!("baseline: click {click}"),
                "--summary=false",
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .envs(settings.env())
            .env("GITHUB_TOKEN", &settings.github_token)
            .env("GITHUB_REPOSITORY", "contoso/payments")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        let wall = start.elapsed();
        if !out.status.success() {
            eprintln!(
                "expedite rollback click {click} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (arm_reads, arm_writes, arm_failed, tokens, app) = measure(&sb, since);
        clicks.push(Click {
            tool: "expedite rollback --to-version 2.4.0",
            click,
            exit: out.status.code(),
            wall,
            arm_reads,
            arm_writes,
            arm_failed,
            tokens,
            app,
            production: production(&sb),
        });
    }
    drop(az);
    sb.shutdown().await;
    Ok(clicks)
}

fn expedite_bin() -> PathBuf {
    std::env::var_os("EXPEDITE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| azcli::workspace().join("target/debug/expedite"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(az_bin) = azcli::find_az() else {
        return Err("no Azure CLI: run .ci/install-az.sh (or set EXPEDITE_AZ)".into());
    };
    let bin = expedite_bin();
    if !bin.exists() {
        return Err(format!(
            "no expedite binary at {}: run `cargo build --locked --bin expedite` (or set EXPEDITE_BIN)",
            bin.display()
        )
        .into());
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let az_version = azcli::version_of(&az_bin).unwrap_or_else(|| "?".into());
        let mut rows = seed_clicks(&az_bin, "seed emergency-rollback.sh (verbatim)", false).await?;
        rows.extend(
            seed_clicks(
                &az_bin,
                "same script, swap mirrored (not the seed)",
                true,
            )
            .await?,
        );
        rows.extend(expedite_clicks(&az_bin, &bin).await?);
        println!(
            "Start: production 2.4.1, staging 2.4.0 (the seed's hotfix swap just ran). Sandbox defaults (swap 3 s). azure-cli {az_version}; {}.",
            bin.display()
        );
        println!();
        println!(
            "| rollback | click | exit | wall time | ARM requests (reads / writes, failed) | token requests | app requests | production serves after |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for c in &rows {
            println!(
                "| {} | {} | {} | {:.1} s | {} ({} / {}, {} failed) | {} | {} | {} |",
                c.tool,
                c.click,
                c.exit.map_or_else(|| "signal".to_owned(), |e| e.to_string()),
                c.wall.as_secs_f64(),
                c.arm_reads + c.arm_writes,
                c.arm_reads,
                c.arm_writes,
                c.arm_failed,
                c.tokens,
                c.app,
                c.production
            );
        }
        Ok(())
    })
}
