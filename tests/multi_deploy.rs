//! Dependency-ordered multi-service deploys from a manifest, through the
//! built binary against the sandbox: the Contoso graph (core package →
//! payment and notification services → front end) deploys in order, a
//! failure stops what has not started and rolls back by policy, bad
//! manifests change nothing, `plan` prints stages and a matrix, and
//! `rollback --services all` goes in reverse order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use common::{Job, StepResult};
use expedite_sandbox::{RequestRecord, SandboxConfig, Settings};

const MANIFEST: &str = r#"
version: 1
services:
  - name: core-package
    platform: command
    deploy: 'echo "$EXPEDITE_VERSION" > core-published.txt'
    verify: 'test -s core-published.txt'
    rollback: 'rm -f core-published.txt && echo unpublished'
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

async fn sandbox() -> expedite_sandbox::Sandbox {
    let sb = expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    common::seed_repo(&sb, "contoso", "payments");
    sb
}

/// A job with Azure settings for the sandbox, the manifest and packages.
fn job(s: &Settings, command: &str, notifications_version: &str) -> Job {
    let job = Job::new();
    let ws = job.workspace();
    std::fs::create_dir_all(ws.join(".github")).unwrap();
    std::fs::write(ws.join(".github/expedite.yml"), MANIFEST).unwrap();
    for (file, version) in [
        ("payments.zip", "2.4.1"),
        ("notifications.zip", notifications_version),
        ("web.zip", "2.4.1"),
    ] {
        std::fs::write(
            ws.join(file),
            expedite_sandbox::demo_package(version).unwrap(),
        )
        .unwrap();
    }
    job.input("command", command)
        .azure_of(s)
        .input("verify-window", "300ms")
        .input("verify-interval", "100ms")
        .input("verify-requests", "30")
        // The deploy lock and package archive live in the repository.
        .input("github-token", &s.github_token)
        .env("GITHUB_API_URL", &s.github_api_url)
        .env("GITHUB_SERVER_URL", &s.github_server_url)
}

/// A `plan` job: the manifest and the resource group, nothing of Azure.
fn plan_job(s: &Settings) -> Job {
    let mut j = job(s, "plan", "2.4.1");
    j.inputs
        .retain(|k, _| k == "command" || k == "resource-group");
    j
}

fn deploy_job(s: &Settings, notifications_version: &str) -> Job {
    job(s, "deploy", notifications_version)
        .input("manifest", ".github/expedite.yml")
        .input("expected-version", "2.4.1")
        .input("check-interval", "200ms")
        .input("check-attempts", "4")
}

async fn run(job: Job) -> (Job, StepResult) {
    tokio::task::spawn_blocking(move || {
        let r = job.run_main();
        (job, r)
    })
    .await
    .unwrap()
}

fn changes_to(log: &[RequestRecord], app: &str) -> Vec<u64> {
    log.iter()
        .filter(|r| {
            r.method != "GET"
                && (r.path.contains(&format!("/sites/{app}/"))
                    || r.path.ends_with(&format!("/sites/{app}"))
                    || r.target.starts_with(&format!("kudu:{app}/")))
        })
        .map(|r| r.seq)
        .collect()
}

fn services(r: &StepResult) -> serde_json::Value {
    serde_json::from_str(r.output("services").unwrap_or("{}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contoso_graph_deploys_in_dependency_order() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (job, r) = run(deploy_job(&s, "2.4.1")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let outcome = services(&r);
    for svc in [
        "core-package",
        "payment-api",
        "notification-service",
        "frontend",
    ] {
        assert_eq!(outcome[svc], "promoted", "{svc}: {outcome}");
    }
    assert_eq!(
        std::fs::read_to_string(job.workspace().join("core-published.txt"))
            .unwrap()
            .trim(),
        "2.4.1"
    );
    let h = sb.handle();
    for app in [
        "app-contoso-payments",
        "app-contoso-notifications",
        "app-contoso-web",
    ] {
        assert_eq!(
            h.slot_version(app, "production").as_deref(),
            Some("2.4.1"),
            "{app}"
        );
    }
    // The request log proves the order: the front end's first change came
    // after the payment service's production verification.
    let log = h.request_log();
    let payment_verified = log
        .iter()
        .filter(|r| r.target == "app:app-contoso-payments/production")
        .map(|r| r.seq)
        .max()
        .unwrap();
    let web_first_change = *changes_to(&log, "app-contoso-web").first().unwrap();
    assert!(
        web_first_change > payment_verified,
        "frontend changed at #{web_first_change}, payment verified until #{payment_verified}"
    );
    let notifications_verified = log
        .iter()
        .filter(|r| r.target == "app:app-contoso-notifications/production")
        .map(|r| r.seq)
        .max()
        .unwrap();
    assert!(web_first_change > notifications_verified);
    assert!(
        r.summary.contains("| 3 | frontend | app-service |") && r.summary.contains("gantt"),
        "{}",
        r.summary
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_service_stops_its_dependents_and_the_policy_decides_the_rest() {
    for (policy, payment_after) in [("rollback-all", "2.4.0"), ("rollback-failed", "2.4.1")] {
        let sb = sandbox().await;
        let s = sb.settings();
        // The notification package is the wrong build: its staging check
        // fails. One at a time, so the payment service is promoted first.
        let (job, r) = run(deploy_job(&s, "2.3.9")
            .input("on-failure", policy)
            .input("max-parallel", "1"))
        .await;
        assert_eq!(r.code, 1, "{policy}: {}", r.all_text());
        let outcome = services(&r);
        assert_eq!(
            outcome["notification-service"], "failed-before-change",
            "{outcome}"
        );
        assert_eq!(outcome["frontend"], "not-started", "{outcome}");
        let log = sb.handle().request_log();
        assert!(
            changes_to(&log, "app-contoso-web").is_empty(),
            "the frontend never starts"
        );
        assert_eq!(
            sb.handle()
                .slot_version("app-contoso-payments", "production")
                .as_deref(),
            Some(payment_after),
            "{policy}"
        );
        if policy == "rollback-all" {
            assert_eq!(outcome["payment-api"], "rolled-back", "{outcome}");
            assert_eq!(outcome["core-package"], "rolled-back", "{outcome}");
            assert!(!job.workspace().join("core-published.txt").exists());
            assert!(
                r.summary.contains("payment-api → core-package"),
                "{}",
                r.summary
            );
        } else {
            assert_eq!(outcome["payment-api"], "promoted", "{outcome}");
        }
        assert!(
            r.all_text().contains("notification-service"),
            "{}",
            r.all_text()
        );
        sb.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_give_clear_errors_and_change_nothing() {
    let sb = sandbox().await;
    let s = sb.settings();
    let cycle = MANIFEST.replace(
        "    rollback: 'rm -f core-published.txt && echo unpublished'",
        "    rollback: 'rm -f core-published.txt'\n    depends_on: [frontend]",
    );
    let unknown = MANIFEST.replace(
        "depends_on: [core-package]\n  - name: notification",
        "depends_on: [core-pakage]\n  - name: notification",
    );
    for (text, want) in [
        (
            cycle.as_str(),
            "the dependencies form a cycle: core-package → frontend → payment-api → core-package",
        ),
        (
            unknown.as_str(),
            "depends on 'core-pakage', which is not a service (did you mean 'core-package'?)",
        ),
    ] {
        for command in ["plan", "deploy"] {
            let j = if command == "deploy" {
                deploy_job(&s, "2.4.1")
            } else {
                plan_job(&s)
            };
            std::fs::write(j.workspace().join(".github/expedite.yml"), text).unwrap();
            let (_j, r) = run(j).await;
            assert_eq!(r.code, 1, "{command}: {}", r.all_text());
            assert!(
                r.all_text().contains(want),
                "{command}: want {want:?} in\n{}",
                r.all_text()
            );
        }
    }
    let writes: Vec<_> = sb
        .handle()
        .request_log()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/oauth2/"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_stages_a_graph_and_a_matrix() {
    let sb = sandbox().await;
    let (_j, r) = run(plan_job(&sb.settings())).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let stages: Vec<Vec<String>> = serde_json::from_str(r.output("stages").unwrap()).unwrap();
    assert_eq!(
        stages,
        vec![
            vec!["core-package".to_string()],
            vec!["payment-api".into(), "notification-service".into()],
            vec!["frontend".into()]
        ]
    );
    let matrix: serde_json::Value = serde_json::from_str(r.output("matrix").unwrap()).unwrap();
    assert_eq!(
        matrix["include"][3]["needs"],
        serde_json::json!(["payment-api", "notification-service"])
    );
    assert!(r.summary.contains("```mermaid") && r.summary.contains("payment_api --> frontend"));
    assert!(
        r.stdout
            .contains("stage 2: payment-api, notification-service"),
        "{}",
        r.stdout
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_all_goes_in_reverse_dependency_order_and_is_idempotent() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (job, r) = run(deploy_job(&s, "2.4.1")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let ws = job.workspace();
    let (job, r) = run(as_rollback(job)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let h = sb.handle();
    for app in [
        "app-contoso-payments",
        "app-contoso-notifications",
        "app-contoso-web",
    ] {
        assert_eq!(
            h.slot_version(app, "production").as_deref(),
            Some("2.4.0"),
            "{app}"
        );
    }
    assert!(
        !ws.join("core-published.txt").exists(),
        "core's rollback command ran"
    );
    // Reverse order: the front end first, the core package last.
    let at = |name: &str| r.summary.find(name).unwrap_or(usize::MAX);
    assert!(
        at("frontend") < at("payment-api") && at("payment-api") < at("core-package"),
        "{}",
        r.summary
    );
    // A second click changes nothing on the apps.
    let swaps = || {
        h.request_log()
            .iter()
            .filter(|r| r.path.contains("slotsswap"))
            .count()
    };
    let before = swaps();
    let (_job, r2) = run(job).await;
    assert_eq!(before, swaps(), "{}", r2.all_text());
    assert!(r2.summary.contains("unchanged"), "{}", r2.summary);
    sb.shutdown().await;
}

/// The same job (workspace, manifest, the core package's state) turned
/// into `rollback --services all`.
fn as_rollback(mut job: Job) -> Job {
    for deploy_only in [
        "expected-version",
        "check-interval",
        "check-attempts",
        "verify-window",
        "verify-interval",
        "on-failure",
        "max-parallel",
    ] {
        job.inputs.remove(deploy_only);
    }
    job.input("command", "rollback")
        .input("services", "all")
        .input("reason", "payments regressed; $(rm -rf /) stays text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_apps_service_takes_its_place_in_the_graph() {
    let sb = sandbox().await;
    let s = sb.settings();
    let manifest = r#"
services:
  - name: core-package
    platform: command
    deploy: 'echo "$EXPEDITE_VERSION" > core-published.txt'
    verify: 'test -s core-published.txt'
  - name: payments
    platform: container-apps
    app: ca-contoso-payments
    image: contosoacr.azurecr.io/payments:${version}
    depends_on: [core-package]
  - name: frontend
    app: app-contoso-web
    package: web.zip
    depends_on: [payments]
"#;
    let job = deploy_job(&s, "2.4.1");
    std::fs::write(job.workspace().join(".github/expedite.yml"), manifest).unwrap();
    let (_job, r) = run(job).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let outcome = services(&r);
    assert_eq!(outcome["payments"], "promoted", "{outcome}");
    assert_eq!(outcome["frontend"], "promoted", "{outcome}");
    // All of the container app's traffic is on the new revision, by name.
    let clients = common::azure::clients(&sb);
    let app = expedite::platform::container_apps::ContainerApps::new(
        clients.arm(),
        expedite::platform::container_apps::ContainerAppRef {
            subscription: s.subscription_id.clone(),
            resource_group: s.resource_group.clone(),
            app: "ca-contoso-payments".into(),
        },
    );
    let info = app.get(&expedite::cancel::Cancel::new()).await.unwrap();
    let serving: Vec<_> = info.traffic.iter().filter(|t| t.weight > 0).collect();
    assert_eq!(serving.len(), 1, "{:?}", info.traffic);
    assert!(
        serving[0].revision != "ca-contoso-payments--v240" && serving[0].weight == 100,
        "{:?}",
        info.traffic
    );
    // The front end changed only after the container app was verified.
    let log = sb.handle().request_log();
    let payments_verified = log
        .iter()
        .filter(|r| r.target.starts_with("ca:ca-contoso-payments/"))
        .map(|r| r.seq)
        .max()
        .unwrap();
    let web_first_change = *changes_to(&log, "app-contoso-web").first().unwrap();
    assert!(web_first_change > payments_verified);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_service_takes_its_place_in_the_graph() {
    let sb = sandbox().await;
    let s = sb.settings();
    assert!(
        sb.kube_seed_app("shop", "payments", "registry.test/payments:2.4.0", 2, false)
            .is_empty()
    );
    assert!(
        sb.kube_wait_available("shop", "payments", Duration::from_secs(20))
            .await
    );
    let manifest = r#"
services:
  - name: payments
    platform: kubernetes
    app: payments
    namespace: shop
    image: registry.test/payments:${version}
  - name: frontend
    app: app-contoso-web
    package: web.zip
    depends_on: [payments]
"#;
    let job = deploy_job(&s, "2.4.1")
        .input("kubeconfig", &s.kubeconfig_path.to_string_lossy())
        .input("check-timeout", "20s");
    std::fs::write(job.workspace().join(".github/expedite.yml"), manifest).unwrap();
    let (_job, r) = run(job).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let outcome = services(&r);
    assert_eq!(outcome["payments"], "promoted", "{outcome}");
    assert_eq!(outcome["frontend"], "promoted", "{outcome}");
    let svc = sb.kube_object("services", "shop", "payments").unwrap();
    assert_eq!(svc["spec"]["selector"]["version"], "2.4.1");
    // The front end changed only after production was verified on the
    // cluster (through the API server's service proxy).
    let log = sb.handle().request_log();
    let payments_verified = log
        .iter()
        .filter(|r| r.path.contains("/services/payments:80/proxy"))
        .map(|r| r.seq)
        .max()
        .unwrap();
    let web_first_change = *changes_to(&log, "app-contoso-web").first().unwrap();
    assert!(web_first_change > payments_verified);
    sb.shutdown().await;
}

/// A manifest of `command` services only: no Azure sign-in, no resource
/// group. The second service's deploy runs and its verify fails; by policy
/// its `rollback:` undoes what the deploy did (it left a change), and
/// `stop` leaves it and says so.
const COMMANDS_ONLY: &str = r#"
version: 1
services:
  - name: schema
    platform: command
    deploy: 'echo "$EXPEDITE_VERSION" > schema.txt'
    verify: 'test -s schema.txt'
    rollback: 'rm -f schema.txt'
  - name: cache
    platform: command
    deploy: 'echo warm > cache.txt'
    verify: 'false'
    rollback: 'rm -f cache.txt'
    depends_on: [schema]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_of_commands_needs_no_azure_and_undoes_a_failed_deploy() {
    for (policy, schema_left, cache_left, cache_outcome) in [
        ("rollback-all", false, false, "rolled-back"),
        ("rollback-failed", true, false, "rolled-back"),
        ("stop", true, true, "needs-attention"),
    ] {
        let job = Job::new();
        let ws = job.workspace();
        std::fs::create_dir_all(ws.join(".github")).unwrap();
        std::fs::write(ws.join(".github/expedite.yml"), COMMANDS_ONLY).unwrap();
        let job = job
            .input("command", "deploy")
            .input("manifest", ".github/expedite.yml")
            .input("expected-version", "2.4.1")
            .input("check-interval", "50ms")
            .input("check-attempts", "2")
            .input("on-failure", policy);
        let (job, r) = run(job).await;
        assert_eq!(r.code, 1, "{policy}: {}", r.all_text());
        let text = r.all_text();
        assert!(!text.contains("resource-group"), "{policy}: {text}");
        assert!(!text.contains("azure-credentials"), "{policy}: {text}");
        let outcome = services(&r);
        assert_eq!(outcome["cache"], cache_outcome, "{policy}: {text}");
        let ws = job.workspace();
        assert_eq!(ws.join("schema.txt").exists(), schema_left, "{policy}");
        assert_eq!(ws.join("cache.txt").exists(), cache_left, "{policy}");

        if policy == "stop" {
            // The same job rolls everything back, still without Azure.
            let (job, r) = run(as_rollback(job)).await;
            assert_eq!(r.code, 0, "{}", r.all_text());
            assert!(!job.workspace().join("schema.txt").exists());
            assert!(!job.workspace().join("cache.txt").exists());
        }
    }
}

/// `deploy --dry-run` with a manifest: every service, stage by stage, read
/// through its platform's preflight; a `command` service's commands are
/// listed, never run; nothing is written to Azure or GitHub. A service
/// whose package is missing makes the dry run say the deploy would stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_of_the_manifest_previews_every_service_and_changes_nothing() {
    let sb = sandbox().await;
    let s = sb.settings();
    let before = sb.handle().request_log().len();
    let (job, r) = run(deploy_job(&s, "2.4.1").input("dry-run", "true")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("dry-run"));
    let outcome = services(&r);
    for svc in [
        "core-package",
        "payment-api",
        "notification-service",
        "frontend",
    ] {
        assert_eq!(outcome[svc], "would-deploy", "{svc}: {outcome}");
    }
    // In stage order, each with its steps.
    let at = |needle: &str| {
        r.summary
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{}", r.summary))
    };
    assert!(at("### Stage 1") < at("**core-package**"));
    assert!(at("**core-package**") < at("### Stage 2"));
    assert!(at("### Stage 2") < at("**payment-api**"));
    assert!(at("### Stage 3") < at("**frontend**"));
    assert!(
        r.summary
            .contains("promote it: production, serving 2.4.0 now, would serve 2.4.1"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("run its deploy command"),
        "{}",
        r.summary
    );
    // No command ran, nothing changed anywhere.
    assert!(!job.workspace().join("core-published.txt").exists());
    let writes: Vec<String> = sb.handle().request_log()[before..]
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD") && !r.path.contains("/oauth2/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new());

    // A missing package: the deploy would stop, and the dry run says which.
    let job = deploy_job(&s, "2.4.1").input("dry-run", "true");
    std::fs::remove_file(job.workspace().join("web.zip")).unwrap();
    let (_job, r) = run(job).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(services(&r)["frontend"], "would-stop");
    assert!(
        r.all_text().contains("frontend: the deploy would stop")
            && r.all_text().contains("web.zip"),
        "{}",
        r.all_text()
    );

    // The payment API's package missing: it would stop, and the front end,
    // which waits for it, would never start.
    let job = deploy_job(&s, "2.4.1").input("dry-run", "true");
    std::fs::remove_file(job.workspace().join("payments.zip")).unwrap();
    let (_job, r) = run(job).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    let outcome = services(&r);
    assert_eq!(outcome["payment-api"], "would-stop", "{outcome}");
    assert_eq!(outcome["frontend"], "would-skip", "{outcome}");
    assert_eq!(outcome["notification-service"], "would-deploy", "{outcome}");
    sb.shutdown().await;
}
