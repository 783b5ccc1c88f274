//! Fidelity against Azure's official JavaScript SDK: runs
//! `sandbox/fidelity/fidelity.mjs` (unmodified `@azure/arm-appservice`)
//! against a sandbox and checks both the script's verdict and what the
//! sandbox saw. Skips when node or `npm ci` is missing, unless
//! `EXPEDITE_REQUIRE_FIDELITY=1`, where that is a failure.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn official_js_sdk_sees_azure_behaviour() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fidelity");
    let required = std::env::var("EXPEDITE_REQUIRE_FIDELITY").as_deref() == Ok("1");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let modules_ok = dir.join("node_modules/@azure/arm-appservice").is_dir();
    if !(node_ok && modules_ok) {
        assert!(
            !required,
            "EXPEDITE_REQUIRE_FIDELITY=1 but node (found: {node_ok}) or sandbox/fidelity/node_modules (found: {modules_ok}) is missing; run `npm ci` in sandbox/fidelity"
        );
        eprintln!(
            "skipping the SDK fidelity run: node or sandbox/fidelity/node_modules is missing"
        );
        return;
    }

    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let settings_path = work.path().join("settings.json");
    std::fs::write(&settings_path, env.settings.to_json()).unwrap();
    let run = tokio::process::Command::new("node")
        .arg("fidelity.mjs")
        .current_dir(&dir)
        .env("NODE_EXTRA_CA_CERTS", &env.settings.ca_cert_path)
        .env("SANDBOX_SETTINGS", &settings_path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("fidelity.mjs took over 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fidelity.mjs failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let verdict: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(verdict["failed"], 0, "{verdict}");
    assert!(verdict["passed"].as_u64().unwrap() >= 20, "{verdict}");

    // What the SDK sent, as the sandbox saw it.
    let log = env.sb.request_log();
    let arm: Vec<_> = log
        .iter()
        .filter(|r| r.host == "management.azure.test")
        .collect();
    assert!(arm.len() >= 25, "{arm:?}");
    assert!(
        arm.iter().all(|r| r.client_request_id.is_some()),
        "the SDK sends x-ms-client-request-id"
    );
    assert!(
        arm.iter().all(|r| r.status != 411 && r.status != 401),
        "{arm:?}"
    );
    let swaps = arm
        .iter()
        .filter(|r| r.path.contains("/slotsswap") && r.status == 202)
        .count();
    assert_eq!(swaps, 3);
    assert!(
        arm.iter()
            .any(|r| r.path.contains("/operationresults/") && r.status == 202)
    );
    assert!(
        arm.iter()
            .any(|r| r.path.contains("/operationresults/") && r.status == 200)
    );
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.3.1")
    );
    assert!(env.sb.routing_rules(PAYMENTS).is_empty());

    // Static Web Apps: three zip deployments accepted (preview, the failed
    // one, production), polled at the Microsoft.Web operationResults URL
    // that always answers 200, never 204.
    let zipdeploys = arm
        .iter()
        .filter(|r| r.path.contains("/staticSites/") && r.path.contains("/zipdeploy"))
        .filter(|r| r.status == 202)
        .count();
    assert_eq!(zipdeploys, 3, "{arm:?}");
    let polls: Vec<_> = arm
        .iter()
        .filter(|r| {
            r.path
                .contains("/providers/Microsoft.Web/locations/westeurope/operationResults/")
        })
        .collect();
    assert!(!polls.is_empty());
    assert!(polls.iter().all(|r| r.status == 200), "{polls:?}");
    assert_eq!(
        env.sb
            .static_site_version("swa-contoso-store", "default")
            .as_deref(),
        Some("2.4.1")
    );
    assert_eq!(
        env.sb.static_site_version("swa-contoso-store", "pr-42"),
        None
    );
}
