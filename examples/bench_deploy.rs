//! Deploy benchmark (issue 4): expedite's own overhead and ARM calls per
//! deploy, side by side with the seed's hotfix steps as a sequential `curl`
//! script, against the same sandbox in the same run.
//!
//! ```sh
//! cargo run --example bench_deploy -- [RUNS]   # default 5
//! ```
//!
//! Each run deploys a package to the staging slot, checks staging, swaps and
//! verifies. The sandbox's own durations are fixed (Kudu build, swap), and
//! expedite's configured waits are set to zero where the plan allows, so
//! `overhead = wall − build − swap − verify window` is what expedite itself
//! costs. The baseline does what the seed's workflow does, with curl:
//! token, zipdeploy and its polling, staging `/health` polled every 5 s (as
//! the seed's loop), `slotsswap` and its polling, one production `/health`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

#[path = "../tests/common/azure.rs"]
mod azure;

use std::process::Command;
use std::time::{Duration, Instant};

use expedite::azure::arm::Arm;
use expedite::cancel::Cancel;
use expedite::platform::app_service::{AppService, SiteRef};
use expedite::probe::{Endpoints, Probe, Schedule};
use expedite::rollout::Outcome;
use expedite::rollout::app_service::AppServiceTarget;
use expedite::rollout::driver::{DeployPlan, Rollout, StalePolicy};
use expedite_sandbox::SandboxConfig;

const BUILD: Duration = Duration::from_millis(1000);
const SWAP: Duration = Duration::from_millis(2000);

fn zip(version: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join(format!("app-{version}.zip"));
    std::fs::write(&path, expedite_sandbox::demo_package(version).unwrap()).unwrap();
    path
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 50);
    let sb = expedite_sandbox::start(SandboxConfig {
        swap_duration: SWAP,
        build_duration: BUILD,
        retry_after_secs: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let s = sb.settings();
    let dir = tempfile::tempdir().unwrap();
    let clients = azure::clients(&sb);
    let (http, tokens) = (clients.http.clone(), clients.tokens.clone());
    let site = SiteRef {
        subscription: s.subscription_id.clone(),
        resource_group: s.resource_group.clone(),
        app: "app-contoso-payments".into(),
    };
    // The versions alternate so every run really swaps.
    let versions = ["2.4.1", "2.4.0"];

    println!(
        "expedite: package → staging check (health + version) → swap → clear routing → verify (50 requests)"
    );
    let mut overheads = Vec::new();
    let mut walls = Vec::new();
    let mut calls = Vec::new();
    for i in 0..runs {
        let version = versions[i % 2];
        let mut arm = Arm::new(
            http.clone(),
            url::Url::parse(&s.arm_endpoint).unwrap(),
            tokens.clone(),
        );
        arm.poll_interval = Duration::from_millis(1000);
        let rollout = Rollout {
            target: AppServiceTarget {
                app: AppService::new(arm.clone(), site.clone()),
                tokens: tokens.clone(),
                http: http.clone(),
                slot: "staging".into(),
                archive: None,
            },
            sources: None,
            probe: Probe::new(http.clone()),
            plan: DeployPlan {
                slot: "staging".into(),
                package: Some(std::fs::read(zip(version, dir.path())).unwrap()),
                endpoints: Endpoints {
                    health_path: "/health".into(),
                    health_status: 200,
                    version_path: Some("/api/version".into()),
                },
                expected_version: version.into(),
                staging: Schedule {
                    attempts: 30,
                    interval: Duration::from_millis(100),
                    timeout: Duration::from_secs(60),
                },
                verify_window: Duration::ZERO,
                verify_interval: Duration::from_millis(100),
                verify_samples: 50,
                swap_timeout: Duration::from_secs(60),
                stale: StalePolicy::Clear,
                lock_wait: Duration::from_secs(5),
                run_id: format!("bench#{i}"),
                journal: None,
                image: None,
                canary: None,
                rollback: false,
                revision: None,
                patience: Duration::from_secs(900),
            },
            cancel: Cancel::new(),
            lock: None,
            place: None,
        };
        let t = Instant::now();
        let j = rollout.run().await;
        let wall = t.elapsed();
        assert_eq!(j.outcome(), Some(Outcome::Promoted), "{:#?}", j.phases);
        let (reads, writes) = arm.counts();
        // Kudu's build and the swap are the sandbox's fixed costs; the Kudu
        // poll and the swap's LRO poll each add up to one poll interval.
        let overhead = wall.saturating_sub(BUILD + SWAP);
        println!(
            "  run {i}: {version} in {:.2}s, overhead {:.2}s, ARM {reads} reads + {writes} writes",
            wall.as_secs_f64(),
            overhead.as_secs_f64()
        );
        overheads.push(overhead.as_secs_f64());
        walls.push(wall.as_secs_f64());
        calls.push(reads + writes);
    }

    println!("baseline: the seed's steps as a sequential curl script");
    let script = dir.path().join("seed-hotfix.sh");
    std::fs::write(&script, SEED_SCRIPT).unwrap();
    let mut base = Vec::new();
    let mut base_calls = Vec::new();
    for i in 0..runs {
        let seq = sb.handle().last_seq();
        let version = versions[(i + runs) % 2];
        let pkg = zip(version, dir.path());
        let resolve: Vec<String> = [
            "login.azure.test",
            "management.azure.test",
            "app-contoso-payments-staging.scm.azurewebsites.test",
            "app-contoso-payments-staging.azurewebsites.test",
            "app-contoso-payments.azurewebsites.test",
        ]
        .iter()
        .map(|h| {
            format!(
                "--resolve {h}:{}:{}",
                s.https_addr.port(),
                s.https_addr.ip()
            )
        })
        .collect();
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .env("CACERT", &s.ca_cert_path)
            .env("PORT", s.https_addr.port().to_string())
            .env(
                "RESOLVE",
                resolve
                    .join(" ")
                    .replace(":443:", &format!(":{}:", s.https_addr.port())),
            )
            .env("TENANT", &s.tenant_id)
            .env("CLIENT_ID", &s.client_id)
            .env("CLIENT_SECRET", &s.client_secret)
            .env("SUB", &s.subscription_id)
            .env("RG", &s.resource_group)
            .env("PKG", &pkg)
            .output()
            .unwrap();
        let wall = t.elapsed();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let arm = sb
            .handle()
            .request_log_since(seq)
            .iter()
            .filter(|r| r.host.starts_with("management."))
            .count();
        println!(
            "  run {i}: {version} in {:.2}s, ARM {arm} calls",
            wall.as_secs_f64()
        );
        base.push(wall.as_secs_f64());
        base_calls.push(arm);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (mo, mw, mb) = (
        median(&mut overheads),
        median(&mut walls),
        median(&mut base),
    );
    calls.sort_unstable();
    println!();
    println!("| | expedite | seed's curl steps |");
    println!("|---|---|---|");
    println!("| median wall time ({runs} runs) | {mw:.2} s | {mb:.2} s |");
    println!(
        "| median own overhead (wall − build {:.1} s − swap {:.1} s) | {mo:.2} s | {:.2} s |",
        BUILD.as_secs_f64(),
        SWAP.as_secs_f64(),
        (mb - BUILD.as_secs_f64() - SWAP.as_secs_f64()).max(0.0)
    );
    base_calls.sort_unstable();
    println!(
        "| ARM calls per deploy (median) | {} | {} |",
        calls[calls.len() / 2],
        base_calls[base_calls.len() / 2]
    );
    println!("| wall-time ratio expedite / seed | {:.2} | 1 |", mw / mb);
    println!(
        "| checks | staging health + version, routing cleared, production health + version + 50 requests | staging health, one production health probe |"
    );
    sb.shutdown().await;
}

/// The seed's hotfix steps (webapps-deploy to staging, the 5-second health
/// loop, `az webapp deployment slot swap`, one production health probe) as
/// plain curl, the way a team without expedite would script them.
const SEED_SCRIPT: &str = r#"set -euo pipefail
c() { curl -sS --fail-with-body --cacert "$CACERT" $RESOLVE "$@"; }
TOKEN=$(c -X POST "https://login.azure.test:$PORT/$TENANT/oauth2/v2.0/token" \
  -d "client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET&grant_type=client_credentials&scope=https://management.azure.com/.default" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
SITE="https://management.azure.test:$PORT/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.Web/sites/app-contoso-payments"
# azure/webapps-deploy: zip deploy to the staging slot, then poll the deployment.
c -X POST -H "Authorization: Bearer $TOKEN" --data-binary @"$PKG" \
  "https://app-contoso-payments-staging.scm.azurewebsites.test:$PORT/api/zipdeploy?isAsync=true" > /dev/null
for i in $(seq 1 120); do
  STATUS=$(c -H "Authorization: Bearer $TOKEN" "https://app-contoso-payments-staging.scm.azurewebsites.test:$PORT/api/deployments/latest" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status"))')
  [ "$STATUS" = "4" ] && break
  [ "$STATUS" = "3" ] && exit 1
  sleep 1
done
# The seed's quick health validation: 6 tries, 5 seconds apart.
ok=0
for i in 1 2 3 4 5 6; do
  CODE=$(curl -s -o /dev/null -w "%{http_code}" --cacert "$CACERT" $RESOLVE "https://app-contoso-payments-staging.azurewebsites.test:$PORT/health")
  if [ "$CODE" = "200" ]; then ok=1; break; fi
  sleep 5
done
[ "$ok" = 1 ]
# az webapp deployment slot swap: POST, then poll the Location until 200.
LOC=$(c -X POST -D - -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"targetSlot":"production","preserveVnet":true}' "$SITE/slots/staging/slotsswap?api-version=2025-05-01" \
  | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
LOC=$(echo "$LOC" | sed "s#management.azure.test/#management.azure.test:$PORT/#")
for i in $(seq 1 120); do
  CODE=$(curl -s -o /dev/null -w "%{http_code}" --cacert "$CACERT" $RESOLVE -H "Authorization: Bearer $TOKEN" "$LOC")
  [ "$CODE" = "200" ] && break
  sleep 1
done
# Verify: one production health probe.
CODE=$(curl -s -o /dev/null -w "%{http_code}" --cacert "$CACERT" $RESOLVE "https://app-contoso-payments.azurewebsites.test:$PORT/health")
[ "$CODE" = "200" ]
"#;
