//! `expedite drill`, the README's first command, through the built binary on
//! a clean environment: every expectation holds, the summary file is
//! written, no secret reaches the output — and when one expectation is
//! broken on purpose, the drill fails loudly and says which.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::process::Command;
use std::time::{Duration, Instant};

fn drill(args: &[&str], summary: &std::path::Path) -> (i32, String, Duration) {
    let (code, _, text, took) = drill_out(args, summary);
    (code, text, took)
}

/// Also returns stdout alone.
fn drill_out(args: &[&str], summary: &std::path::Path) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_expedite"))
        .arg("drill")
        .args(args)
        .arg("--summary-file")
        .arg(summary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        // The drill keeps its logs for the engineer to read; here they go in
        // the test's own directory, removed with it.
        .env(
            "TMPDIR",
            summary.parent().expect("the summary is in a directory"),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        text,
        t.elapsed(),
    )
}

#[test]
fn the_drill_plays_the_contoso_incident_and_every_expectation_holds() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("drill.md");
    let (code, stdout, text, took) = drill_out(&["--output", "json"], &summary);
    assert_eq!(code, 0, "{text}");
    // `--output json`: one object on stdout, the drill's figures in it.
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{stdout}"));
    assert_eq!(v["outcome"], "success", "{stdout}");
    assert_eq!(v["broken"], "0", "{stdout}");
    assert!(
        v["steps"]
            .as_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 10),
        "{stdout}"
    );
    let file = v["summary-file"].as_str().unwrap_or_default();
    assert!(
        std::fs::read_to_string(file).is_ok_and(|md| md.contains("Incident drill")),
        "{stdout}"
    );
    assert!(
        text.contains("drill passed: every expectation held"),
        "{text}"
    );
    for step in [
        "smoke order over $10,000 on 2.4.0: accepted, then lost",
        "start: hotfix branch from release/2.4.0",
        "gate: critical tests and security scan: pass",
        "deploy 2.4.1: staging, canary 20 %, swap, verify: promoted",
        "smoke order over $10,000 on 2.4.1: recorded",
        "cherry-pick the fix onto main (file moved there): pull-request",
        "cherry-pick the limit change (conflicts on main): conflict",
        "deploy a bad 2.4.2: the breaker trips the canary: rolled-back",
        "rollback to 2.4.1, second click: unchanged",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(!text.contains('✗'), "{text}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("Incident drill") && md.contains("```mermaid") && md.contains("✓ held"),
        "{md}"
    );
    // The steps ran with the sandbox's secrets; none reached the output.
    for secret in ["sbx~", "ghp_sandbox", "ghs_"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    // The issue's bound; the drill takes about 12 s on two cores.
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn a_broken_expectation_fails_the_drill_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("drill.md");
    let (code, text, _) = drill(&["--sabotage", "breaker"], &summary);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "drill expectation broken at 'deploy a bad 2.4.2: the breaker trips the canary'"
        ),
        "{text}"
    );
    assert!(text.contains("EXPECTATION FAILED"), "{text}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("❌ Incident drill") && md.contains('✗'), "{md}");
}

#[test]
fn the_payment_gateway_scenario_plays_the_second_seeds_sev1_on_kubernetes() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("drill.md");
    let (code, text, took) = drill(&["--scenario", "payment-gateway"], &summary);
    assert_eq!(code, 0, "{text}");
    for step in [
        "a payment on 2.1.0: HTTP 500",
        "incident: declare SEV1, page on-call: created",
        "deploy 2.1.1: new Deployment, Istio canary 10/25/50/75 %, verify: promoted",
        "a payment on 2.1.1: HTTP 200",
        "deploy a bad 2.1.2: the breaker trips the 10 % canary: rolled-back",
        "rollback to 2.1.1, second click: unchanged",
        "production after the clicks: 0 writes to the app",
        "incident: resolve with root cause: resolved",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(!text.contains('✗'), "{text}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("Incident drill: Payment Gateway Down"), "{md}");
    for secret in ["ghp_sandbox", "ghs_"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(took < Duration::from_secs(90), "{took:?}");
    // Broken on purpose, it fails at the breaker and says so.
    let (code, text, _) = drill(
        &["--scenario", "payment-gateway", "--sabotage", "breaker"],
        &dir.path().join("broken.md"),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "drill expectation broken at 'deploy a bad 2.1.2: the breaker trips the 10 % canary'"
        ),
        "{text}"
    );
}
