//! Multi-service deploy benchmark (issue 8): the Contoso graph (core
//! package → payment and notification services → front end) deployed from
//! the manifest with independent services in parallel, against the same
//! services deployed one after another (`max-parallel: 1`), same sandbox
//! build times, same run. Wall time should approach the critical path.
//!
//! ```sh
//! cargo build --release --bin expedite --example bench_multi
//! target/release/examples/bench_multi [RUNS]   # default 3
//! ```
//!
//! It runs the built `expedite` binary next to it (as a user would), with
//! the sandbox's settings in the environment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

use std::process::Command;
use std::time::{Duration, Instant};

use expedite_sandbox::SandboxConfig;

const MANIFEST: &str = r#"
version: 1
services:
  - name: core-package
    platform: command
    deploy: 'sleep 1 && echo "$EXPEDITE_VERSION" > core-published.txt'
    verify: 'test -s core-published.txt'
  - name: payment-api
    app: app-contoso-payments
    package: payments.zip
    depends_on: [core-package]
  - name: notification-service
    app: app-contoso-notifications
    package: notifications.zip
    depends_on: [core-package]
  - name: frontend
    app: app-contoso-web
    package: web.zip
    depends_on: [payment-api, notification-service]
"#;

fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/bench_multi → target/<profile>/expedite
    exe.parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("expedite")
}

fn deploy(
    sb: &expedite_sandbox::Sandbox,
    dir: &std::path::Path,
    parallel: usize,
    version: &str,
) -> Duration {
    let s = sb.settings();
    let t = Instant::now();
    let out = Command::new(binary())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(s.env())
        .args([
            "deploy",
            "--manifest",
            ".github/expedite.yml",
            "--expected-version",
            version,
            "--max-parallel",
            &parallel.to_string(),
            "--check-interval",
            "200ms",
            "--verify-window",
            "1s",
            "--verify-interval",
            "250ms",
            "--verify-requests",
            "50",
        ])
        .output()
        .unwrap();
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3)
        .clamp(1, 20);
    let build = Duration::from_millis(1500);
    let swap = Duration::from_millis(2000);
    let sb = expedite_sandbox::start(SandboxConfig {
        swap_duration: swap,
        build_duration: build,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github")).unwrap();
    std::fs::write(dir.path().join(".github/expedite.yml"), MANIFEST).unwrap();
    println!("| run | mode | wall |\n|---|---|---|");
    let (mut par, mut seq) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // A new version each time, so every run really deploys.
        for (mode, parallel, bucket) in [
            ("parallel (max-parallel 4)", 4, &mut par),
            ("one after another (max-parallel 1)", 1, &mut seq),
        ] {
            let version = format!("2.5.{}", bucket.len() + if parallel == 1 { 100 } else { 0 });
            for f in ["payments.zip", "notifications.zip", "web.zip"] {
                std::fs::write(
                    dir.path().join(f),
                    expedite_sandbox::demo_package(&version).unwrap(),
                )
                .unwrap();
            }
            let wall = tokio::task::block_in_place(|| deploy(&sb, dir.path(), parallel, &version));
            println!("| {} | {mode} | {:.2} s |", i + 1, wall.as_secs_f64());
            bucket.push(wall);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (p, s) = (median(&mut par), median(&mut seq));
    println!(
        "\nmedian: parallel {:.2} s, one after another {:.2} s, ratio {:.2}",
        p.as_secs_f64(),
        s.as_secs_f64(),
        p.as_secs_f64() / s.as_secs_f64()
    );
    println!(
        "critical path: 3 stages (core → payment ∥ notification → frontend); each app deploy includes a {:.1} s build and a {:.1} s swap in the sandbox",
        build.as_secs_f64(),
        swap.as_secs_f64()
    );
    sb.shutdown().await;
}
