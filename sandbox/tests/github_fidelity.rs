//! Fidelity against GitHub's official JavaScript client and API
//! description: runs `sandbox/fidelity/github.mjs` (unmodified
//! `@octokit/rest`, responses validated against `@octokit/openapi`) against
//! a sandbox. Skips when node or `npm ci` is missing, unless
//! `EXPEDITE_REQUIRE_FIDELITY=1`, where that is a failure.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn sh(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(["-c", "user.name=Test", "-c", "user.email=t@example.test"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octokit_sees_github_shapes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fidelity");
    let required = std::env::var("EXPEDITE_REQUIRE_FIDELITY").as_deref() == Ok("1");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let modules_ok = dir.join("node_modules/@octokit/rest").is_dir()
        && dir.join("node_modules/@octokit/openapi").is_dir()
        && dir.join("node_modules/ajv").is_dir();
    if !(node_ok && modules_ok) {
        assert!(
            !required,
            "EXPEDITE_REQUIRE_FIDELITY=1 but node (found: {node_ok}) or sandbox/fidelity/node_modules (found: {modules_ok}) is missing; run `npm ci` in sandbox/fidelity"
        );
        eprintln!(
            "skipping the octokit fidelity run: node or sandbox/fidelity/node_modules is missing"
        );
        return;
    }

    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let bare = env
        .sb
        .github_create_repo("contoso", "payments", "main")
        .unwrap();
    let w = work.path().join("seed");
    std::fs::create_dir_all(&w).unwrap();
    sh(&w, &["init", "-q", "-b", "main"]);
    std::fs::write(w.join("a.txt"), "one\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "c1"]);
    sh(&w, &["checkout", "-q", "-b", "side"]);
    std::fs::write(w.join("s.txt"), "side\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "s1"]);
    sh(&w, &["checkout", "-q", "main"]);
    std::fs::write(w.join("a.txt"), "one\ntwo\n").unwrap();
    sh(&w, &["commit", "-q", "-am", "c2"]);
    sh(&w, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(w.join("f.txt"), "feature\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "f1"]);
    sh(
        &w,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "main",
            "feature",
            "side",
        ],
    );

    env.sb
        .github_set_workflow_run("contoso", "payments", 4242, "completed", Some("success"))
        .unwrap();

    let settings_path = work.path().join("settings.json");
    std::fs::write(&settings_path, env.settings.to_json()).unwrap();
    let run = tokio::process::Command::new("node")
        .arg("github.mjs")
        .current_dir(&dir)
        .env("NODE_EXTRA_CA_CERTS", &env.settings.ca_cert_path)
        .env("SANDBOX_SETTINGS", &settings_path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("github.mjs took over 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "github.mjs failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let verdict: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(verdict["failed"], 0, "{verdict}");
    assert!(verdict["operations"].as_u64().unwrap() >= 30, "{verdict}");
    eprintln!("octokit fidelity: {verdict}");

    let log = env.sb.request_log();
    let api: Vec<_> = log.iter().filter(|r| r.host == "api.github.test").collect();
    assert!(api.len() >= 40, "{api:?}");
    assert!(api.iter().all(|r| r.target == "github"));
}
