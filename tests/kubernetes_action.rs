//! `platform: kubernetes` the way a workflow runs it: the action's binary
//! in a clean environment, the kubeconfig the sandbox writes for other
//! clients, the lock a Lease. A blue-green deploy and an Istio canary are
//! promoted; the rollback button pressed twice restores the previous
//! version once and then changes nothing; each bad input (unknown context, unreadable
//! kubeconfig, missing Deployment, a Service that selects no `version`)
//! is one clear error and not one write to the API server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::kube::{
    APP, NEW_IMAGE, NS, STABLE_IMAGE, app_writes, kube_writes, recorded_previous, selector_version,
};
use common::{Job, StepResult};

async fn sandbox(istio: bool) -> expedite_sandbox::Sandbox {
    let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let refused = sb.kube_seed_app(NS, APP, STABLE_IMAGE, 2, istio);
    assert!(refused.is_empty(), "{refused:?}");
    let ready = sb
        .kube_wait_available(NS, APP, std::time::Duration::from_secs(20))
        .await;
    assert!(ready);
    sb
}

/// A step on `platform: kubernetes` with the sandbox's kubeconfig, trust
/// and resolution, and its GitHub for the lock.
fn job(sb: &expedite_sandbox::Sandbox, command: &str) -> Job {
    let s = sb.settings();
    Job::new()
        .github_of(sb)
        .input("command", command)
        .input("platform", "kubernetes")
        .input("namespace", NS)
        .input("kubeconfig", &s.kubeconfig_path.to_string_lossy())
        .input("resolve", &s.resolve_string())
        .input("ca-cert", &s.ca_cert_path.to_string_lossy())
        .input("verify-requests", "30")
}

fn deploy_job(sb: &expedite_sandbox::Sandbox) -> Job {
    job(sb, "deploy")
        .input("app-name", APP)
        .input("image", NEW_IMAGE)
        .input("expected-version", "2.4.2")
        .input("check-interval", "200ms")
        .input("check-timeout", "20s")
        .input("verify-window", "1s")
        .input("verify-interval", "250ms")
}

fn rollback_job(sb: &expedite_sandbox::Sandbox) -> Job {
    job(sb, "rollback")
        .input("services", APP)
        .input("reason", "INC-4521 payments failing")
}

async fn run(job: Job) -> StepResult {
    tokio::task::spawn_blocking(move || job.run_main())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_blue_green_deploy_then_the_rollback_button_twice() {
    let sb = sandbox(false).await;
    let r = run(deploy_job(&sb)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    assert_eq!(
        r.output("previous-version"),
        Some("2.4.1"),
        "{}",
        r.all_text()
    );
    assert_eq!(selector_version(&sb), "2.4.2");
    assert!(r.summary.contains("payments-v2.4.2"), "{}", r.summary);

    // The first press restores the previous version, verified.
    let first = run(rollback_job(&sb)).await;
    assert_eq!(first.code, 0, "{}", first.all_text());
    assert_eq!(selector_version(&sb), "2.4.1", "{}", first.all_text());
    assert!(first.all_text().contains("2.4.1"), "{}", first.all_text());

    // The second press finds production there already: it takes and gives
    // back the lock, and writes nothing else.
    let before = app_writes(&sb);
    let second = run(rollback_job(&sb)).await;
    assert_eq!(second.code, 0, "{}", second.all_text());
    assert!(
        second.all_text().contains("unchanged"),
        "{}",
        second.all_text()
    );
    assert_eq!(selector_version(&sb), "2.4.1");
    assert_eq!(app_writes(&sb), before, "{}", second.all_text());
    // Both presses and the deploy held the Lease, and gave it back.
    let leases = kube_writes(&sb)
        .into_iter()
        .filter(|w| w.contains("/leases"))
        .count();
    assert!(leases >= 3 * 2, "{:?}", kube_writes(&sb));
}

/// Each bad input: a non-zero exit, the problem named in the first error
/// line, and the API server never written to (not even the lock's Lease).
async fn refused(sb: &expedite_sandbox::Sandbox, job: Job, says: &[&str]) {
    let r = run(job).await;
    assert_ne!(r.code, 0, "{}", r.all_text());
    let errors = r.error_lines();
    let first = errors.first().copied().unwrap_or_default();
    for s in says {
        assert!(
            first.contains(s),
            "wanted {s:?} in {first:?}\n{}",
            r.all_text()
        );
    }
    assert!(kube_writes(sb).is_empty(), "{:?}", kube_writes(sb));
}

#[tokio::test]
async fn bad_kubernetes_inputs_are_one_clear_error_and_no_write() {
    let sb = sandbox(false).await;
    refused(
        &sb,
        deploy_job(&sb).input("kube-context", "prod-eu"),
        &["kube-context", "prod-eu"],
    )
    .await;
    refused(
        &sb,
        deploy_job(&sb).input("kubeconfig", "/nonexistent/kubeconfig"),
        &["kubeconfig", "/nonexistent/kubeconfig"],
    )
    .await;
    refused(
        &sb,
        deploy_job(&sb).input("app-name", "orders"),
        &["Deployment orders was not found in namespace shop"],
    )
    .await;
    refused(
        &sb,
        deploy_job(&sb).input("namespace", "Shop_1"),
        &["namespace", "Shop_1"],
    )
    .await;
    refused(
        &sb,
        deploy_job(&sb).input("canary", "10,50"),
        &["canary", "strategy: canary"],
    )
    .await;
    refused(
        &sb,
        deploy_job(&sb).input("strategy", "canary"),
        &["production-url"],
    )
    .await;
}

#[tokio::test]
async fn blue_green_refuses_a_service_that_selects_no_version() {
    // Seeded for Istio: the Service selects `app` only.
    let sb = sandbox(true).await;
    refused(
        &sb,
        deploy_job(&sb),
        &["the Service payments selects no `version` label"],
    )
    .await;
}

#[tokio::test]
async fn a_kubeconfig_given_as_content_never_shows_its_token() {
    let sb = sandbox(false).await;
    let s = sb.settings();
    let content = std::fs::read_to_string(&s.kubeconfig_path).unwrap();
    let token = sb.kube_token();
    assert!(content.contains(&token));
    // Refused (a context it lacks): the error names the context only.
    let r = run(deploy_job(&sb)
        .input("kubeconfig", &content)
        .input("kube-context", "prod-eu"))
    .await;
    assert_ne!(r.code, 0);
    assert!(r.error_lines()[0].contains("prod-eu"), "{}", r.all_text());
    let shown: String = r
        .all_text()
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    assert!(!shown.contains(&token), "{shown}");
    // And the same content deploys.
    let r = run(deploy_job(&sb).input("kubeconfig", &content)).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    assert!(r.all_text().contains(&format!("::add-mask::{token}")));
}

#[tokio::test]
async fn an_istio_canary_then_the_rollback_button_twice() {
    let sb = sandbox(true).await;
    let mesh = format!("https://{APP}--{NS}.mesh.test");
    let canary = |job: Job| {
        job.input("strategy", "canary")
            .input("production-url", &mesh)
    };
    let r = run(canary(deploy_job(&sb))
        .input("canary", "10,50")
        .input("canary-window", "1s")
        .input("evidence-interval", "200ms")
        .input("probe-rate", "20")
        .input("min-requests", "10"))
    .await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    let vs =
        || sb.kube_object("virtualservices", NS, APP).unwrap()["spec"]["http"][0]["route"].clone();
    assert_eq!(vs()[0]["destination"]["subset"], "v2-4-2", "{}", vs());
    assert_eq!(vs().as_array().unwrap().len(), 1, "{}", vs());

    let first = run(canary(rollback_job(&sb))).await;
    assert_eq!(
        first.output("result"),
        Some("rolled-back"),
        "{}",
        first.all_text()
    );
    assert_eq!(vs()[0]["destination"]["subset"], "v2-4-1", "{}", vs());
    assert_eq!(vs().as_array().unwrap().len(), 1, "{}", vs());
    // The previous Deployment kept running: the switch back is instant.
    assert_eq!(
        sb.kube_object("deployments", NS, APP).unwrap()["status"]["availableReplicas"],
        2
    );

    let before = app_writes(&sb);
    let second = run(canary(rollback_job(&sb))).await;
    assert_eq!(
        second.output("result"),
        Some("unchanged"),
        "{}",
        second.all_text()
    );
    assert_eq!(app_writes(&sb), before, "{}", second.all_text());
}

/// kubectl with the sandbox's kubeconfig: its stdout, or `None` when it is
/// not installed here and CI does not require it.
fn kubectl(
    sb: &expedite_sandbox::Sandbox,
    home: &std::path::Path,
    args: &[&str],
) -> Option<String> {
    let out = match std::process::Command::new("kubectl")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", sb.settings().kubeconfig_path)
        .output()
    {
        Ok(o) => o,
        Err(_) if std::env::var("EXPEDITE_REQUIRE_KUBECTL").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: kubectl is not installed");
            return None;
        }
        Err(e) => panic!("kubectl is required (EXPEDITE_REQUIRE_KUBECTL=1): {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

// Two workers: kubectl blocks one while the sandbox answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_expedite_leaves_on_the_cluster_is_what_kubectl_reads() {
    let sb = sandbox(false).await;
    let r = run(deploy_job(&sb)).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    let home = tempfile::tempdir().unwrap();
    let k = |args: &[&str]| kubectl(&sb, home.path(), args);
    // The new Deployment is rolled out by kubectl's own reading.
    let Some(status) = k(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/payments-v2.4.2",
        "--timeout=20s",
    ]) else {
        return;
    };
    assert!(status.contains("successfully rolled out"), "{status}");
    let selector = k(&[
        "-n",
        NS,
        "get",
        "service",
        APP,
        "-o",
        "jsonpath={.spec.selector.version} {.metadata.annotations.expedite-previous-version}",
    ])
    .unwrap();
    assert_eq!(selector, "2.4.2 2.4.1");
    let images = k(&[
        "-n",
        NS,
        "get",
        "deployments",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.template.spec.containers[0].image} {end}",
    ])
    .unwrap();
    assert!(
        images.contains(&format!("payments={STABLE_IMAGE}"))
            && images.contains(&format!("payments-v2.4.2={NEW_IMAGE}")),
        "{images}"
    );
}

#[tokio::test]
async fn a_dry_run_reads_the_cluster_and_writes_nothing() {
    let sb = sandbox(false).await;
    let r = run(deploy_job(&sb).input("dry-run", "true")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    for says in [
        "none was made",
        "serving 2.4.1",
        "in a new Deployment",
        "would serve 2.4.2",
    ] {
        assert!(r.summary.contains(says), "{says:?} in {}", r.summary);
    }
    assert!(kube_writes(&sb).is_empty(), "{:?}", kube_writes(&sb));
    assert_eq!(selector_version(&sb), "2.4.1");
}

#[tokio::test]
async fn a_rollback_to_a_scaled_down_version_scales_it_up_checks_it_and_switches() {
    let sb = sandbox(false).await;
    // 2.4.2, then 2.4.3: 2.4.1's Deployment is two versions back.
    for version in ["2.4.2", "2.4.3"] {
        let r = run(deploy_job(&sb)
            .input("image", &format!("registry.test/payments:{version}"))
            .input("expected-version", version))
        .await;
        assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    }
    assert_eq!(selector_version(&sb), "2.4.3");
    // Someone scaled the old one down since.
    let token = sb.kube_token();
    let http = expedite::http::client(&expedite::http::HttpSettings {
        extra_ca_pem: vec![sb.ca_pem().to_string()],
        system_roots: false,
        resolve: vec![expedite::http::ResolveRule {
            host: "kubernetes.test".into(),
            addr: sb.https_addr(),
        }],
        ..Default::default()
    })
    .unwrap();
    let scaled = http
        .patch(format!(
            "https://kubernetes.test/apis/apps/v1/namespaces/{NS}/deployments/{APP}"
        ))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":0}}"#)
        .send()
        .await
        .unwrap();
    assert!(scaled.status().is_success());

    let r = run(rollback_job(&sb).input("to-version", "2.4.1")).await;
    assert_eq!(r.output("result"), Some("rolled-back"), "{}", r.all_text());
    assert_eq!(selector_version(&sb), "2.4.1");
    let back = sb.kube_object("deployments", NS, APP).unwrap();
    assert_eq!(
        back["spec"]["replicas"], 2,
        "the size of the one it replaces"
    );
    assert_eq!(back["status"]["availableReplicas"], 2);
}

#[tokio::test]
async fn a_hotfix_over_a_production_that_is_down_still_records_what_to_roll_back_to() {
    let sb = sandbox(false).await;
    let r = run(deploy_job(&sb)).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    // 2.4.2 goes down: every request is an error page, no version read.
    sb.set_behaviour(
        "2.4.2",
        expedite_sandbox::Behaviour {
            crash_loop: true,
            ..expedite_sandbox::Behaviour::default()
        },
    )
    .unwrap();
    let r = run(deploy_job(&sb)
        .input("image", "registry.test/payments:2.4.3")
        .input("expected-version", "2.4.3"))
    .await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    assert_eq!(
        r.output("previous-version"),
        Some("2.4.2"),
        "{}",
        r.all_text()
    );
    // What the rollback button reads.
    assert_eq!(
        recorded_previous(&sb),
        ("2.4.2".to_owned(), "payments-v2.4.2".to_owned())
    );
}
