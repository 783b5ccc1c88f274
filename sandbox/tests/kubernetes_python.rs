//! The official Python Kubernetes client (PyPI `kubernetes`, pinned in
//! `.ci/requirements.txt`) against the sandbox's API server, with only the
//! kubeconfig the sandbox writes: typed create, read and patch of a
//! Deployment and Service, ReplicaSets by label, a stale replace refused
//! (409), a Lease moved by compare-and-set only, a watch, and an Istio
//! VirtualService through the custom objects API. What the script reports
//! is checked against what the sandbox holds.
//!
//! Needs `EXPEDITE_PYTHON` (default `python3`) with `kubernetes`; skipped
//! without it unless `EXPEDITE_REQUIRE_TOOLS=1` (CI), where that fails.
#![cfg(test)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_reads_patches_and_locks_as_on_a_cluster() {
    let python = std::env::var("EXPEDITE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_client = std::process::Command::new(&python)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_client {
        assert!(
            std::env::var_os("EXPEDITE_REQUIRE_TOOLS").is_none(),
            "EXPEDITE_REQUIRE_TOOLS is set but {python} has no `kubernetes` module (.ci/requirements.txt)"
        );
        eprintln!("skipped: {python} has no kubernetes module");
        return;
    }
    let env = start().await;
    let s = env.sb.settings().clone();
    let home = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fidelity/python/kubernetes_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("KUBECONFIG", &s.kubeconfig_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        r["server"].as_str().is_some_and(|v| v.contains("sandbox")),
        "{r}"
    );
    assert_eq!(r["image"], "shop:2");
    assert_eq!(r["generation"], 2);
    assert_eq!(r["observed_generation"], 2);
    assert_eq!(r["replicasets"], json!([["shop:1", 0], ["shop:2", 2]]));
    assert_eq!(r["selector"], json!({"app": "web", "version": "green"}));
    assert_eq!(r["stale_replace"], json!([409, "Conflict"]));
    assert_eq!(r["lease_again"], json!([409, "AlreadyExists"]));
    assert_eq!(r["lease_stale_take"], json!([409, "Conflict"]));
    assert_eq!(r["lease_holder"], "run-2");
    assert_eq!(r["watched_pods"], 2);
    assert_eq!(r["weights"], json!([90, 10]));
    assert_eq!(r["missing"], json!([404, "NotFound"]));

    // What the client saw is what the server holds.
    let d = env.sb.kube_object("deployments", "shop", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop:2"
    );
    let lease = env
        .sb
        .kube_object("leases", "shop", "expedite-web")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "run-2");
    let vs = env
        .sb
        .kube_object("virtualservices", "shop", "web")
        .unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 10);
}
