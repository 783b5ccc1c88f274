//! `deploy` through the built binary, started as the runner starts the
//! container, against a sandbox: outputs, summary, audit log, bad input,
//! OIDC federation, throttling storms, cancellation and the post stage.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use common::{Job, StepResult, processed_lines};
use expedite_sandbox::{FaultKind, FaultSpec, SandboxConfig, Settings};

const APP: &str = "app-contoso-payments";

async fn sandbox() -> expedite_sandbox::Sandbox {
    expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(600),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// A job set up to deploy 2.4.1 from a package, signing in with a secret.
fn job(sb: &expedite_sandbox::Sandbox) -> Job {
    let s = &sb.settings();
    let job = Job::new().github_of(sb);
    let package = job.workspace().join("app.zip");
    std::fs::write(&package, expedite_sandbox::demo_package("2.4.1").unwrap()).unwrap();
    job.input("command", "deploy")
        .input("app-name", APP)
        .azure_of(s)
        .input("package", "app.zip")
        .input("expected-version", "2.4.1")
        .input("check-interval", "200ms")
        .input("verify-window", "1s")
        .input("verify-interval", "250ms")
        .input("verify-requests", "200")
}

async fn run(job: Job) -> (Job, StepResult) {
    tokio::task::spawn_blocking(move || {
        let r = job.run_main();
        (job, r)
    })
    .await
    .unwrap()
}

/// Changes to Azure (the lock and the records live on GitHub).
fn mutating(sb: &expedite_sandbox::Sandbox) -> Vec<String> {
    sb.handle()
        .request_log()
        .into_iter()
        .filter(|r| {
            r.method != "GET"
                && !r.path.contains("/oauth2/")
                && !r.path.contains("_apis/oidc")
                && r.host != "api.github.test"
        })
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect()
}

fn swaps(sb: &expedite_sandbox::Sandbox) -> usize {
    sb.handle()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("slotsswap"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotes_2_4_1_with_outputs_summary_and_audit_log() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (job, r) = run(job(&sb)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(r.output("previous-version"), Some("2.4.0"));
    assert_eq!(r.output("deployed-version"), Some("2.4.1"));
    assert_eq!(r.output("rolled-back"), Some("false"));
    assert_eq!(
        r.output("production-url"),
        Some("https://app-contoso-payments.azurewebsites.test")
    );
    assert!(
        r.summary.contains("✅ Deployed")
            && r.summary.contains("200 × 2.4.1")
            && r.summary.contains("```mermaid"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("| staging answered | health 200, version 2.4.1"),
        "{}",
        r.summary
    );
    let audit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.output("audit-log").unwrap()).unwrap())
            .unwrap();
    assert_eq!(audit["result"], "promoted");
    // The swap, the routing clear, the rollback target's tag.
    assert!(audit["arm_calls"]["writes"].as_u64().unwrap() >= 3);
    assert_eq!(
        sb.handle().slot_version(APP, "production").as_deref(),
        Some("2.4.1")
    );
    assert!(sb.handle().routing_rules(APP).is_empty());
    assert_eq!(swaps(&sb), 1);
    // The client secret and the tokens never reach the log.
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        assert!(
            !line.contains(&s.client_secret) || line.starts_with("::add-mask::"),
            "{line}"
        );
    }
    drop(job);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_one_error_each_and_change_nothing() {
    let sb = sandbox().await;
    let cases: Vec<(Job, &str)> = vec![
        (
            job(&sb)
                .input("azure-credentials", "{\"clientId\": \"x\"")
                .input("client-id", "")
                .input("tenant-id", "")
                .input("subscription-id", "")
                .input("client-secret", ""),
            "input 'azure-credentials': is not valid JSON",
        ),
        (
            job(&sb).input("expected-version", ""),
            "input 'expected-version': is required by `deploy`",
        ),
        (
            job(&sb).input("timeout", "-5m"),
            "input 'timeout': '-5m' is negative",
        ),
        (job(&sb).input("resolve", "not a rule"), "input 'resolve'"),
    ];
    for (job, expected) in cases {
        let (_job, r) = run(job).await;
        assert_eq!(r.code, 1, "{}", r.all_text());
        let errors = r.error_lines();
        assert_eq!(errors.len(), 1, "{expected}: {errors:?}");
        assert!(errors[0].contains(expected), "{expected}: {}", errors[0]);
    }
    // An unknown slot is found in preflight, with the slots that exist.
    let (_job, r) = run(job(&sb).input("slot", "stagign")).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.output("result"), Some("failed-before-change"));
    assert!(
        r.output("error")
            .unwrap()
            .contains("'stagign' does not exist on 'app-contoso-payments' (slots: staging)"),
        "{:?}",
        r.output("error")
    );
    assert!(mutating(&sb).is_empty(), "{:?}", mutating(&sb));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_federation_end_to_end() {
    let sb = sandbox().await;
    let s = sb.settings();
    let j = job(&sb)
        .input("client-secret", "")
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", &s.oidc_request_url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &s.oidc_request_token);
    let (_job, r) = run(j).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    let log = sb.handle().request_log();
    assert!(
        log.iter().any(|r| r.path.contains("_apis/oidc")),
        "a GitHub ID token was requested"
    );
    // A job without `id-token: write` is told so, before anything changes.
    let (_job, r) = run(job(&sb).input("client-secret", "")).await;
    assert_eq!(r.code, 1);
    assert!(
        r.error_lines()[0].contains("id-token: write"),
        "{:?}",
        r.error_lines()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_and_a_swap_that_times_out_converge_with_one_swap() {
    let sb = sandbox().await;
    let h = sb.handle();
    let mut throttle = FaultSpec::new(FaultKind::Throttle {
        retry_after_secs: 1,
    });
    throttle.host = Some("management.azure.test".into());
    throttle.method = Some("GET".into());
    throttle.times = Some(3);
    h.add_fault(throttle).unwrap();
    let mut unavailable = FaultSpec::new(FaultKind::Status { status: 503 });
    unavailable.host = Some("management.azure.test".into());
    unavailable.method = Some("PATCH".into());
    unavailable.times = Some(2);
    h.add_fault(unavailable).unwrap();
    let mut swap = FaultSpec::new(FaultKind::SwapTimeout { hold_ms: 2_000 });
    swap.times = Some(1);
    h.add_fault(swap).unwrap();
    let (_job, r) = run(job(&sb)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(swaps(&sb), 1, "the swap is never repeated");
    assert!(
        r.summary
            .contains("find out whether the promotion happened"),
        "{}",
        r.summary
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_between_swap_and_verification_then_the_post_stage_restores_safety() {
    let sb = sandbox().await;
    let job = job(&sb)
        .input("verify-window", "20s")
        .input("verify-interval", "500ms");
    let running = job.start_main();
    // Wait until the swap has completed and verification is running.
    let h = sb.handle();
    let mut swapped = false;
    for _ in 0..300 {
        if h.slot_version(APP, "production").as_deref() == Some("2.4.1") {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(swapped, "the swap did not happen");
    tokio::time::sleep(Duration::from_millis(400)).await;
    running.signal("TERM");
    let main = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    // The main stage restores in-process: it swaps back and verifies, and
    // says so in its outputs.
    assert_eq!(main.code, 1, "{}", main.all_text());
    assert_eq!(
        main.output("result"),
        Some("interrupted"),
        "{}",
        main.all_text()
    );
    assert_eq!(main.output("deployed-version"), Some("2.4.0"));
    assert!(
        main.output("error").unwrap_or_default().contains(
            "was interrupted (SIGTERM received); production was restored to 2.4.0 and verified"
        ),
        "{:?}",
        main.outputs
    );
    assert_eq!(h.slot_version(APP, "production").as_deref(), Some("2.4.0"));
    // The post stage finds nothing left to finish.
    let state = main.state.clone();
    let (job, post) = tokio::task::spawn_blocking(move || {
        let r = job.run_post(&state);
        (job, r)
    })
    .await
    .unwrap();
    drop(job);
    assert_eq!(post.code, 0, "{}", post.all_text());
    // Invariant 1: exactly one version at 100 % (the previous one), no rules.
    assert_eq!(h.slot_version(APP, "production").as_deref(), Some("2.4.0"));
    assert!(h.routing_rules(APP).is_empty());
    assert_eq!(swaps(&sb), 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_twice_stays_on_the_good_version_and_the_reason_is_inert() {
    let sb = sandbox().await;
    let s = sb.settings();
    let (_job, deployed) = run(job(&sb)).await;
    assert_eq!(
        deployed.output("result"),
        Some("promoted"),
        "{}",
        deployed.all_text()
    );
    let reason = "payments down $(touch pwned) `touch pwned2`\n::set-output name=x::1\n::error::fake | <b>x</b>";
    let rollback = |s: &Settings| {
        Job::new()
            .github_of(&sb)
            .input("command", "rollback")
            .input("services", APP)
            .azure_of(s)
            .input("verify-requests", "200")
            .input("reason", reason)
    };
    for (click, expected) in [(1, "rolled-back"), (2, "unchanged")] {
        let (job, r) = run(rollback(&s)).await;
        assert_eq!(r.code, 0, "click {click}: {}", r.all_text());
        assert_eq!(r.output("result"), Some(expected), "click {click}");
        assert_eq!(r.output("deployed-version"), Some("2.4.0"));
        assert_eq!(
            sb.handle().slot_version(APP, "production").as_deref(),
            Some("2.4.0"),
            "click {click}"
        );
        // The reason is data: no file created, no extra output, no command.
        for f in ["pwned", "pwned2"] {
            assert!(
                !job.workspace().join(f).exists() && !job.path(f).exists(),
                "{f} was created"
            );
        }
        assert!(r.outputs.iter().all(|(k, _)| k != "x"));
        for line in processed_lines(&r.stdout) {
            assert!(
                !line.contains("::error::fake") && !line.starts_with("::set-output"),
                "unfenced: {line}"
            );
        }
        assert!(
            // Shown as written, inside code spans (ADR 9).
            r.summary
                .contains("`` payments down $(touch pwned) `touch pwned2` ``")
                && r.summary.contains("`::error::fake \\| <b>x</b>`"),
            "{}",
            r.summary
        );
        let audit: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(r.output("audit-log").unwrap()).unwrap())
                .unwrap();
        assert_eq!(audit["reason"], reason);
    }
    assert_eq!(
        swaps(&sb),
        2,
        "one for the deploy, one for the first rollback; none for the second click"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_canary_exits_1_with_the_evidence_in_the_summary() {
    let sb = sandbox().await;
    sb.handle()
        .set_behaviour(
            "2.4.1",
            expedite_sandbox::Behaviour {
                error_rate: 0.3,
                ..Default::default()
            },
        )
        .unwrap();
    let job = job(&sb)
        .input("canary", "10,50")
        .input("canary-window", "20s")
        .input("evidence-interval", "200ms")
        .input("probe-rate", "30")
        .input(
            "probe-requests",
            "GET /health\nPOST /api/payments {\"amount\": 25, \"currency\": \"USD\"} => GET /api/payments/{id}",
        )
        .input("min-requests", "20");
    let (_job, r) = run(job).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("rolled-back"));
    assert_eq!(r.output("canary-decision"), Some("trip"));
    assert_eq!(r.output("deployed-version"), Some("2.4.0"));
    assert!(
        r.summary.contains("### Canary")
            && r.summary.contains("| 10 % | probes | canary |")
            && r.summary.contains("**trip**")
            && r.summary.contains("flowchart LR")
            && r.summary.contains("withdrawn: production restored"),
        "{}",
        r.summary
    );
    // The verdict comes first, in one plain sentence, before any table.
    let verdict = r.summary.lines().nth(2).unwrap_or_default();
    assert!(
        verdict.starts_with("**canary 10 %: ")
            && verdict.contains(" requests failed vs ")
            && verdict.contains(" on production → rolled back in "),
        "{}",
        r.summary
    );
    assert!(
        r.summary.find(verdict) < r.summary.find("| result |"),
        "{}",
        r.summary
    );
    assert!(
        r.stdout.contains("::error") && r.stdout.contains("the canary was rolled back"),
        "{}",
        r.all_text()
    );
    assert!(sb.handle().routing_rules(APP).is_empty());
    assert_eq!(swaps(&sb), 0, "never promoted");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_settings_are_validated_before_anything_changes() {
    let sb = sandbox().await;
    let cases: Vec<(Job, &str)> = vec![
        (
            job(&sb).input("canary", "50,10"),
            "input 'canary': 10 does not increase",
        ),
        (job(&sb).input("canary", "0"), "input 'canary'"),
        (
            job(&sb).input("canary-window", "1m"),
            "input 'canary-window': is set, but there is no canary",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("evidence", "probes,grafana"),
            "input 'evidence': 'grafana' is not an evidence source",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("evidence", "prometheus"),
            "input 'prometheus-url': is required by `evidence: prometheus`",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("max-error-rate", "0.05%"),
            "input 'max-error-rate': 0.0005 is not above baseline-error-rate 0.001",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("probe-requests", "POST /api/payments {amount: 1}"),
            "input 'probe-requests': line 1: the body is not JSON",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("failure-clumping", "sometimes"),
            "input 'failure-clumping': 'sometimes' is not a way of counting failures",
        ),
        (
            job(&sb)
                .input("canary", "10")
                .input("on-inconclusive", "retry"),
            "input 'on-inconclusive'",
        ),
        (
            job(&sb).input("platform", "container-apps"),
            "input 'image': is required by `platform: container-apps`",
        ),
    ];
    for (job, want) in cases {
        let (_job, r) = run(job).await;
        assert_eq!(r.code, 1, "{want}: {}", r.all_text());
        assert!(
            r.all_text().contains(want),
            "want {want:?} in:\n{}",
            r.all_text()
        );
    }
    assert!(
        mutating(&sb).is_empty(),
        "bad input changes nothing: {:?}",
        mutating(&sb)
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_container_apps_canary_then_the_post_stage_restores_the_stable_revision() {
    let sb = sandbox().await;
    let s = sb.settings();
    let mut job = job(&sb);
    job.inputs.remove("package");
    let job = job
        .input("app-name", "ca-contoso-payments")
        .input("platform", "container-apps")
        .input("image", "contosoacr.azurecr.io/payments:2.4.1")
        .input("canary", "20")
        .input("canary-window", "5m")
        .input("evidence-interval", "200ms")
        .input("probe-rate", "5");
    let running = job.start_main();
    // Wait until the canary's weight is live.
    let clients = common::azure::clients(&sb);
    let app = expedite::platform::container_apps::ContainerApps::new(
        clients.arm(),
        expedite::platform::container_apps::ContainerAppRef {
            subscription: s.subscription_id.clone(),
            resource_group: s.resource_group.clone(),
            app: "ca-contoso-payments".into(),
        },
    );
    let c = expedite::cancel::Cancel::new();
    let mut live = false;
    for _ in 0..300 {
        if let Ok(info) = app.get(&c).await
            && info.traffic.iter().any(|t| t.weight == 20)
        {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(live, "the canary weight was never set");
    running.signal("TERM");
    let main = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(main.code, 1, "{}", main.all_text());
    assert_eq!(
        main.output("result"),
        Some("interrupted"),
        "{}",
        main.all_text()
    );
    assert_eq!(main.output("canary-decision"), Some("cancelled"));
    assert_eq!(main.output("deployed-version"), Some("2.4.0"));
    let state = main.state.clone();
    let (_job, post) = tokio::task::spawn_blocking(move || {
        let r = job.run_post(&state);
        (job, r)
    })
    .await
    .unwrap();
    assert_eq!(post.code, 0, "{}", post.all_text());
    let info = app.get(&c).await.unwrap();
    let serving: Vec<_> = info.traffic.iter().filter(|t| t.weight > 0).collect();
    assert_eq!(serving.len(), 1, "{:?}\n{}", info.traffic, post.all_text());
    assert_eq!(
        (serving[0].revision.as_str(), serving[0].weight),
        ("ca-contoso-payments--v240", 100)
    );
    let revisions = app.revisions(&c).await.unwrap();
    let new = revisions
        .iter()
        .find(|r| r.name != "ca-contoso-payments--v240")
        .unwrap();
    assert!(!new.active, "the unverified revision is deactivated");
    assert!(
        !info.tags.contains_key("expedite-deploy-lease"),
        "{:?}",
        info.tags
    );
    sb.shutdown().await;
}

/// `--dry-run` reads what a deploy reads first and says what it would
/// change, in order — and changes nothing: no ARM or Kudu write, no GitHub
/// write (no lock, no deployment), production and the slot as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_would_change_and_changes_nothing() {
    let sb = sandbox().await;
    let slot_before = sb.handle().slot_version(APP, "staging");
    let (_job, r) = run(job(&sb).input("dry-run", "true").input("canary", "10,50")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("dry-run"));
    assert_eq!(r.output("previous-version"), Some("2.4.0"));
    for said in [
        "Dry run",
        "stage the package",
        "send 10 % of production's traffic",
        "send 50 % of production's traffic",
        "promote it: production, serving 2.4.0 now, would serve 2.4.1",
    ] {
        assert!(r.summary.contains(said), "{said}: {}", r.summary);
    }
    assert_eq!(mutating(&sb), Vec::<String>::new());
    let github_writes: Vec<_> = sb
        .handle()
        .request_log()
        .into_iter()
        .filter(|r| r.host == "api.github.test" && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(github_writes, Vec::<String>::new());
    assert_eq!(
        sb.handle().slot_version(APP, "production").as_deref(),
        Some("2.4.0")
    );
    assert_eq!(sb.handle().slot_version(APP, "staging"), slot_before);

    // Every platform: the container app's dry run writes nothing either.
    let mut ca = job(&sb);
    ca.inputs.remove("package");
    let (_job, r) = run(ca
        .input("dry-run", "true")
        .input("app-name", "ca-contoso-payments")
        .input("platform", "container-apps")
        .input("image", "contosoacr.azurecr.io/payments:2.4.1"))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("dry-run"));
    assert!(r.summary.contains("a new revision"), "{}", r.summary);
    assert_eq!(mutating(&sb), Vec::<String>::new());

    // An app that does not exist: the deploy would stop, and says why.
    let (_job, r) = run(job(&sb)
        .input("dry-run", "true")
        .input("app-name", "app-nope"))
    .await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        r.all_text().contains("would stop at preflight") && r.all_text().contains("app-nope"),
        "{}",
        r.all_text()
    );
    assert_eq!(mutating(&sb), Vec::<String>::new());
    sb.shutdown().await;
}

/// Deploys 2.4.1 with a 5-s canary step on a fresh sandbox, the binary's
/// stderr on a pseudo-terminal; returns the exit code and what the
/// terminal received.
async fn deploy_under_a_pty(no_color: bool) -> (Option<i32>, String) {
    pty_deploy(
        &[
            "--package",
            "app.zip",
            "--canary",
            "20",
            "--canary-window",
            "5s",
            "--evidence-interval",
            "250ms",
            "--probe-rate",
            "20",
            "--min-requests",
            "20",
            "--verify-window",
            "1s",
            "--verify-interval",
            "250ms",
        ],
        no_color,
    )
    .await
}

/// Runs `deploy` of 2.4.1 to the demo app with `args` on a fresh sandbox,
/// stderr on a pseudo-terminal.
async fn pty_deploy(args: &[&str], no_color: bool) -> (Option<i32>, String) {
    let sb = sandbox().await;
    let env = sb.settings().env();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.zip"),
        expedite_sandbox::demo_package("2.4.1").unwrap(),
    )
    .unwrap();
    let python = std::env::var("EXPEDITE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pty_run.py");
    let exe = common::exe();
    let cwd = dir.path().to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(&script)
            .arg(exe)
            .args([
                "deploy",
                "--app-name",
                APP,
                "--expected-version",
                "2.4.1",
                "--lock",
                "none",
                "--check-interval",
                "200ms",
                "--summary=false",
            ])
            .args(&args)
            .env_clear()
            .envs(env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .current_dir(cwd);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.output().expect("python runs the pty helper")
    })
    .await
    .unwrap();
    sb.shutdown().await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// On a terminal a canary step shows one status line rewritten in place
/// (carriage return, erase line) with the step's time and each arm's
/// requests and failures, at least every 2 s, and so does the verify
/// window; with `NO_COLOR` the same figures are plain lines (as in a job's
/// log, at most every 15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_sees_the_canary_move_and_no_color_gets_plain_lines() {
    let (code, tty) = deploy_under_a_pty(false).await;
    assert_eq!(code, Some(0), "{tty}");
    let updates: Vec<&str> = tty
        .split("\r\x1b[2K")
        .filter(|t| t.starts_with("canary 20 %:"))
        .collect();
    assert!(
        updates.len() >= 2,
        "fewer than two status updates:\n{tty:?}"
    );
    assert!(
        updates
            .iter()
            .any(|u| u.contains("new build") && u.contains("requests") && u.contains("production")),
        "{updates:#?}"
    );
    // It moves: two updates differ.
    assert!(updates.windows(2).any(|w| w[0] != w[1]), "{updates:#?}");
    // The verify window after the promotion shows its progress the same way.
    assert!(
        tty.contains("\r\x1b[2Kverify production: "),
        "no verify progress:\n{tty:?}"
    );

    let (code, plain) = deploy_under_a_pty(true).await;
    assert_eq!(code, Some(0), "{plain}");
    assert!(
        !plain.contains("\x1b[2K"),
        "NO_COLOR got a status line:\n{plain:?}"
    );
    assert!(
        plain
            .lines()
            .any(|l| l.trim_start_matches('\r').starts_with("canary 20 %:")
                && l.contains("requests")),
        "{plain}"
    );
}

/// The staging checks show the same status line: which check, the time
/// spent and left, and the answer; a change of answer is a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_sees_the_staging_checks_count() {
    // No package: the slot keeps what it serves, never 2.4.1.
    let (code, tty) = pty_deploy(&["--check-attempts", "6"], false).await;
    assert_eq!(code, Some(1), "{tty}");
    let updates: Vec<&str> = tty
        .split("\r\x1b[2K")
        .filter(|t| t.contains(": check ") && t.contains(" s left · "))
        .collect();
    assert!(
        updates.len() >= 2,
        "fewer than two status updates:\n{tty:?}"
    );
    assert!(
        updates.iter().any(|u| u.contains("check 6 of 6")),
        "{updates:#?}"
    );
    // The answer itself is logged once, not once per check.
    let logged = tty
        .lines()
        .filter(|l| l.contains(": check ") && !l.contains(" s left · "))
        .count();
    assert_eq!(logged, 1, "{tty:?}");
}
