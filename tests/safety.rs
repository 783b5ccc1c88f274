//! The promises that matter when things go wrong, each tried through the
//! built binary started as the runner starts it (or as a terminal does)
//! against the sandbox: several runs of one app at once, a SIGKILL at every
//! change, a throttled control plane, Ctrl-C, the rollback button right
//! after a bad attempt, an emergency rollback during a canary, a run that
//! died, and hostile answers. The 100-trial concurrency sweep is
//! `examples/safety_sweep.rs` (figures in BENCHMARKS.md); here a few trials
//! keep CI fast (`EXPEDITE_SAFETY_TRIALS` raises it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::safety::{APP, CA, Platform, Rig, canary, concurrency_trial, preemption, until};
use common::{Job, StepResult};
use expedite_sandbox::{Behaviour, FaultKind, FaultSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn trials() -> u64 {
    std::env::var("EXPEDITE_SAFETY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

async fn run(job: Job) -> (Job, StepResult) {
    tokio::task::spawn_blocking(move || {
        let r = job.run_main();
        (job, r)
    })
    .await
    .unwrap()
}

async fn post(job: Job, main: &StepResult) -> (Job, StepResult) {
    let state = main.state.clone();
    tokio::task::spawn_blocking(move || {
        let r = job.run_post(&state);
        (job, r)
    })
    .await
    .unwrap()
}

/// True once a swap has started in the sandbox (its operation exists; the
/// caller may not have its answer yet).
fn swap_started(rig: &Rig) -> bool {
    rig.sb.handle().snapshot()["swapOperations"]
        .as_array()
        .is_some_and(|ops| !ops.is_empty())
}

fn swaps(rig: &Rig) -> usize {
    rig.sb
        .handle()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("slotsswap"))
        .count()
}

/// The PATCHes of the container app itself (traffic, template).
fn ca_patches(rig: &Rig) -> usize {
    rig.sb
        .handle()
        .request_log()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains(&format!("/containerApps/{CA}?")))
        .count()
}

/// `trials()` concurrency trials on `platform`, seeds from `base` + 1; the
/// first broken promise fails the test with every run's result.
async fn concurrency(platform: Platform, base: u64) {
    for seed in 1..=trials() {
        let t = concurrency_trial(platform, base + seed).await;
        if let Err(e) = t.check() {
            panic!(
                "trial {seed}: {e}\n{:#?}",
                t.runs
                    .iter()
                    .map(|(k, o, r)| (k, o, r.output("result"), r.output("error")))
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_app_service_app_never_interleave() {
    concurrency(Platform::AppService, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_container_app_never_interleave() {
    concurrency(Platform::ContainerApps, 1000).await;
}

/// Where to SIGKILL the main stage.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// Just after the k-th change to Azure.
    AfterChange(usize),
    /// This long after the start (inside whatever is running then).
    At(Duration),
}

fn kill_job(rig: &Rig, platform: Platform) -> Job {
    canary(rig.deploy_on(platform, "2.4.1"), "1s")
}

async fn kill_sweep(platform: Platform) {
    // A reference run: how many changes a whole deploy makes, how long.
    let rig = Rig::new().await;
    let started = Instant::now();
    let (_job, r) = run(kill_job(&rig, platform)).await;
    let wall = started.elapsed();
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    let changes = rig.mutations().len();
    rig.shutdown().await;
    assert!(changes >= 4, "{changes}");
    let mut points: Vec<Point> = (1..=changes).map(Point::AfterChange).collect();
    eprintln!(
        "{platform:?}: {changes} changes to the platform, {} kill points",
        changes + 4
    );
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..4 {
        points.push(Point::At(Duration::from_millis(
            rng.random_range(0..wall.as_millis() as u64),
        )));
    }
    let app = platform.app();
    for point in points {
        let rig = Rig::new().await;
        let job = kill_job(&rig, platform);
        let running = job.start_main();
        let started = Instant::now();
        match point {
            Point::AfterChange(k) => {
                assert!(until(|| rig.mutations().len() >= k).await, "{point:?}");
            }
            Point::At(d) => tokio::time::sleep(d.saturating_sub(started.elapsed())).await,
        }
        running.signal("KILL");
        let main = tokio::task::spawn_blocking(move || running.wait())
            .await
            .unwrap();
        let journal: Option<serde_json::Value> =
            std::fs::read(job.path(&format!("github/runner_temp/expedite-journal-{app}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
        let verified = journal
            .as_ref()
            .is_some_and(|j| j["state"]["verified"] == serde_json::json!(true));
        let (_job, p) = post(job, &main).await;
        assert_eq!(p.code, 0, "{point:?}: post stage:\n{}", p.all_text());
        let want = if verified { "2.4.1" } else { "2.4.0" };
        match rig.one_version(platform).await {
            Ok(v) => assert_eq!(
                v,
                want,
                "{point:?}: production serves {v}, expected {want}\npost:\n{}",
                p.all_text()
            ),
            Err(e) => panic!("{point:?}: {e}\npost:\n{}", p.all_text()),
        }
        // The lock is given back: the next run does not wait.
        let lock = rig.lock_record(platform);
        if let Some(l) = &lock {
            assert_eq!(l["state"], "released", "{point:?}: {l}");
        }
        rig.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kill_point_on_app_service_ends_on_one_version() {
    kill_sweep(Platform::AppService).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kill_point_on_container_apps_ends_on_one_version() {
    kill_sweep(Platform::ContainerApps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kill_point_on_kubernetes_ends_on_one_version() {
    kill_sweep(Platform::Kubernetes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_kubernetes_app_never_interleave() {
    concurrency(Platform::Kubernetes, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_waited_starts_from_what_the_other_left() {
    let rig = Rig::new().await;
    let a = canary(rig.deploy_ca("2.4.1"), "3s").input("probe-rate", "10");
    let b = canary(rig.deploy_ca("2.4.2"), "1s").input("probe-rate", "10");
    let run_a = a.start_main();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run_b = b.start_main();
    // Watch the traffic for the whole time.
    let mut seen: Vec<BTreeMap<String, u32>> = Vec::new();
    let both = tokio::task::spawn_blocking(move || (run_a.wait(), run_b.wait()));
    while !both.is_finished() {
        seen.push(rig.ca_traffic().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ra, rb) = both.await.unwrap();
    assert_eq!(ra.output("result"), Some("promoted"), "{}", ra.all_text());
    assert_eq!(rb.output("result"), Some("promoted"), "{}", rb.all_text());
    // B waited, then read what A left: its previous version is 2.4.1.
    assert_eq!(
        rb.output("previous-version"),
        Some("2.4.1"),
        "{}",
        rb.all_text()
    );
    assert!(
        rb.stdout.contains("waiting for deploy 2.4.1"),
        "{}",
        rb.all_text()
    );
    // Once 2.4.1 took all traffic, 2.4.0's revision never got any back.
    let first_full = seen
        .iter()
        .position(|t| t.len() == 1 && t.keys().all(|r| r != "ca-contoso-payments--v240"))
        .expect("2.4.1 took the traffic");
    for t in &seen[first_full..] {
        assert!(
            !t.contains_key("ca-contoso-payments--v240"),
            "traffic went back to the version A replaced: {t:?}"
        );
    }
    let audit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rb.output("audit-log").unwrap()).unwrap())
            .unwrap();
    let stable = audit["journal"]["facts"]["stable_revision"]
        .as_str()
        .unwrap();
    assert_ne!(stable, "ca-contoso-payments--v240");
    assert_eq!(
        rig.one_version(Platform::ContainerApps).await.unwrap(),
        "2.4.2"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_after_a_swap_that_timed_out_is_waited_out_with_one_swap() {
    let rig = Rig::new().await;
    let h = rig.sb.handle();
    h.add_fault(FaultSpec::new(FaultKind::SwapTimeout { hold_ms: 2_000 }).times(1))
        .unwrap();
    let job = rig.deploy("2.4.1").input("swap-timeout", "15s");
    let running = job.start_main();
    // While the swap's answer is still held back.
    assert!(until(|| swap_started(&rig)).await);
    // Then ARM throttles most reads for 25 s.
    h.add_fault(
        FaultSpec::new(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .host("management.azure.test")
        .method("GET")
        .probability(0.8)
        .for_ms(25_000),
    )
    .unwrap();
    let r = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(r.output("deployed-version"), Some("2.4.1"));
    assert_eq!(swaps(&rig), 1, "exactly one swap: the good hotfix stays");
    assert!(
        r.all_text().contains("not a reason to roll back"),
        "{}",
        r.all_text()
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.1"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_operation_status_after_traffic_changes_keeps_the_good_build() {
    let rig = Rig::new().await;
    let h = rig.sb.handle();
    let s = rig.sb.settings();
    let ops = format!(
        "/subscriptions/{}/providers/Microsoft.App/locations/",
        s.subscription_id
    );
    let throttle = || {
        FaultSpec::new(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .host("management.azure.test")
        .path_prefix(ops.clone())
        .times(13)
    };
    let job = canary(rig.deploy_ca("2.4.1"), "2s");
    let running = job.start_main();
    // Pin (1), new revision (2), canary shift (3), promotion (4).
    assert!(until(|| ca_patches(&rig) >= 3).await);
    h.add_fault(throttle()).unwrap();
    assert!(until(|| ca_patches(&rig) >= 4).await);
    h.add_fault(throttle()).unwrap();
    let r = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(
        rig.one_version(Platform::ContainerApps).await.unwrap(),
        "2.4.1"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_button_works_right_after_a_bad_attempt_on_app_service() {
    let rig = Rig::new().await;
    let (_j, r) = run(rig.deploy("2.4.1")).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    // A bad 2.4.3: its canary trips and is withdrawn; staging holds 2.4.3.
    rig.sb
        .handle()
        .set_behaviour(
            "2.4.3",
            Behaviour {
                error_rate: 0.5,
                ..Behaviour::default()
            },
        )
        .unwrap();
    let (_j, r) = run(canary(rig.deploy("2.4.3"), "20s")).await;
    assert_eq!(r.output("result"), Some("rolled-back"), "{}", r.all_text());
    assert_eq!(
        rig.sb.handle().slot_version(APP, "staging").as_deref(),
        Some("2.4.3")
    );
    // The button: back to the version before 2.4.1.
    for (click, want) in [("first", "rolled-back"), ("second", "unchanged")] {
        let (_j, r) = run(rig.rollback(Platform::AppService, None)).await;
        assert_eq!(r.code, 0, "{click}: {}", r.all_text());
        assert_eq!(r.output("result"), Some(want), "{click}: {}", r.all_text());
        assert_eq!(r.output("deployed-version"), Some("2.4.0"), "{click}");
        if click == "first" {
            assert!(
                r.summary
                    .contains("re-staged in slot 'staging' from the package archive"),
                "{}",
                r.summary
            );
        }
    }
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.0"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_button_works_right_after_a_bad_attempt_on_container_apps() {
    let rig = Rig::new().await;
    let (_j, r) = run(rig.deploy_ca("2.4.1")).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    rig.sb
        .handle()
        .set_behaviour(
            "2.4.3",
            Behaviour {
                error_rate: 0.5,
                ..Behaviour::default()
            },
        )
        .unwrap();
    let (_j, r) = run(canary(rig.deploy_ca("2.4.3"), "20s")).await;
    assert_eq!(r.output("result"), Some("rolled-back"), "{}", r.all_text());
    for (click, want) in [("first", "rolled-back"), ("second", "unchanged")] {
        let (_j, r) = run(rig.rollback(Platform::ContainerApps, None)).await;
        assert_eq!(r.code, 0, "{click}: {}", r.all_text());
        assert_eq!(r.output("result"), Some(want), "{click}: {}", r.all_text());
        assert_eq!(r.output("deployed-version"), Some("2.4.0"), "{click}");
    }
    assert_eq!(
        rig.ca_traffic().await,
        BTreeMap::from([("ca-contoso-payments--v240".to_string(), 100)])
    );
    assert_eq!(
        rig.one_version(Platform::ContainerApps).await.unwrap(),
        "2.4.0"
    );
    // A rollback to a version no revision is known to serve says so.
    let (_j, r) = run(rig.rollback(Platform::ContainerApps, Some("1.9.9"))).await;
    assert_eq!(r.code, 1);
    assert!(
        r.output("error")
            .unwrap()
            .contains("no revision of container app 'ca-contoso-payments' is known to serve 1.9.9"),
        "{}",
        r.all_text()
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_rollback_stops_a_running_canary_and_takes_over() {
    let (took, d, rb) = preemption(Duration::from_millis(500)).await.unwrap();
    assert_eq!(d.output("result"), Some("preempted"), "{}", d.all_text());
    assert!(
        d.output("error")
            .unwrap()
            .contains("stopped for an emergency rollback"),
        "{}",
        d.all_text()
    );
    assert_eq!(rb.code, 0, "{}", rb.all_text());
    assert_eq!(rb.output("deployed-version"), Some("2.4.0"));
    assert!(rb.summary.contains("asked deploy 2.4.1"), "{}", rb.summary);
    // It did not wait out the two-minute canary.
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_died_is_taken_over_and_production_restored_first() {
    let rig = Rig::new().await;
    let dead_job = canary(rig.deploy("2.4.1"), "60s");
    let dead = dead_job.start_main();
    assert!(until(|| !rig.sb.handle().routing_rules(APP).is_empty()).await);
    // The runner is lost: no post stage. Its workflow run then completes.
    dead.signal("KILL");
    let _ = tokio::task::spawn_blocking(move || dead.wait()).await;
    rig.sb
        .handle()
        .github_set_workflow_run("contoso", "payments", 4242, "completed", Some("failure"))
        .unwrap();
    let (_j, r) = run(rig.deploy("2.4.2")).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    assert_eq!(
        r.output("previous-version"),
        Some("2.4.0"),
        "{}",
        r.all_text()
    );
    assert!(
        r.summary.contains("took the deploy lock over")
            && r.summary.contains("has finished")
            && r.summary.contains("restored after"),
        "{}",
        r.summary
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.2"
    );
    rig.shutdown().await;
}

/// A run from an engineer's terminal: flags, secrets in the environment,
/// no workflow.
fn terminal(rig: &Rig, args: &[&str]) -> (Vec<String>, Vec<(String, String)>) {
    let s = rig.sb.settings();
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    argv.extend(
        [
            "--resource-group",
            &s.resource_group,
            "--arm-endpoint",
            &s.arm_endpoint,
            "--authority-host",
            &s.authority_host,
            "--resolve",
            &s.resolve_string(),
            "--ca-cert",
            &s.ca_cert_path.to_string_lossy(),
            "--lock-ttl",
            "6s",
            "--verify-requests",
            "30",
        ]
        .iter()
        .map(|a| (*a).to_string()),
    );
    let env = vec![
        (
            "AZURE_SUBSCRIPTION_ID".to_string(),
            s.subscription_id.clone(),
        ),
        ("AZURE_TENANT_ID".to_string(), s.tenant_id.clone()),
        ("AZURE_CLIENT_ID".to_string(), s.client_id.clone()),
        ("AZURE_CLIENT_SECRET".to_string(), s.client_secret.clone()),
        ("GITHUB_TOKEN".to_string(), s.github_token.clone()),
        (
            "GITHUB_REPOSITORY".to_string(),
            "contoso/payments".to_string(),
        ),
        ("GITHUB_API_URL".to_string(), s.github_api_url.clone()),
        ("GITHUB_SERVER_URL".to_string(), s.github_server_url.clone()),
        ("USER".to_string(), "dana".to_string()),
        (
            "HOME".to_string(),
            std::env::temp_dir().to_string_lossy().into_owned(),
        ),
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        ),
    ];
    (argv, env)
}

/// Runs expedite in a pseudo-terminal through Python's `pty`, pressing
/// Ctrl-C once `first` appears in its output and again (if given) once
/// `second` appears. Returns the exit code and everything printed.
fn in_a_terminal(
    argv: &[String],
    env: &[(String, String)],
    first: &str,
    second: Option<&str>,
) -> (i32, String) {
    let python = std::env::var("EXPEDITE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import json, os, pty, select, sys, time
cfg = json.load(sys.stdin)
pid, fd = pty.fork()
if pid == 0:
    os.execve(cfg["exe"], [cfg["exe"]] + cfg["argv"], dict(cfg["env"]))
out = b""
marks = [m.encode() for m in cfg["marks"]]
deadline = time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if marks and marks[0] in out:
        marks.pop(0)
        os.write(fd, b"\x03")
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.stdout.write(json.dumps({"code": code, "out": out.decode("utf-8", "replace")}))
"#;
    let mut marks = vec![first.to_string()];
    marks.extend(second.map(str::to_string));
    let cfg = serde_json::json!({
        "exe": env!("CARGO_BIN_EXE_expedite"),
        "argv": argv,
        "env": env,
        "marks": marks,
    });
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with pty");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cfg.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pty result");
    (
        v["code"].as_i64().unwrap_or(-1) as i32,
        v["out"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_on_a_terminal_withdraws_the_canary_and_says_so() {
    let rig = Rig::new().await;
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("app.zip");
    std::fs::write(&package, expedite_sandbox::demo_package("2.4.1").unwrap()).unwrap();
    let (argv, env) = terminal(
        &rig,
        &[
            "deploy",
            "--app-name",
            APP,
            "--package",
            &package.to_string_lossy(),
            "--expected-version",
            "2.4.1",
            "--check-interval",
            "200ms",
            "--canary",
            "10",
            "--canary-window",
            "60s",
            "--evidence-interval",
            "200ms",
            "--probe-rate",
            "10",
        ],
    );
    let (code, out) = tokio::task::spawn_blocking(move || {
        in_a_terminal(&argv, &env, "watching the 10 % canary", None)
    })
    .await
    .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "was interrupted (SIGINT received); production was restored to 2.4.0 and verified"
        ),
        "{out}"
    );
    assert!(rig.sb.handle().routing_rules(APP).is_empty());
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.0"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_stops_at_once_and_prints_the_command_that_fixes_it() {
    let rig = Rig::new().await;
    // Slow routing writes: the withdrawal is still running at the second
    // Ctrl-C.
    rig.sb
        .handle()
        .add_fault(
            FaultSpec::new(FaultKind::Delay { ms: 3_000 })
                .host("management.azure.test")
                .method("PATCH")
                .path_prefix(format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{APP}/config/web",
                    rig.sb.settings().subscription_id,
                    rig.sb.settings().resource_group
                )),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("app.zip");
    std::fs::write(&package, expedite_sandbox::demo_package("2.4.1").unwrap()).unwrap();
    let (argv, env) = terminal(
        &rig,
        &[
            "deploy",
            "--app-name",
            APP,
            "--package",
            &package.to_string_lossy(),
            "--expected-version",
            "2.4.1",
            "--check-interval",
            "200ms",
            "--canary",
            "10",
            "--canary-window",
            "60s",
            "--evidence-interval",
            "200ms",
            "--probe-rate",
            "10",
        ],
    );
    let (code, out) = tokio::task::spawn_blocking(move || {
        in_a_terminal(
            &argv,
            &env,
            "watching the 10 % canary",
            Some("withdraw the canary"),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 130, "{out}");
    let fix = "expedite rollback --services app-contoso-payments --resource-group rg-contoso-prod --slot staging --to-version 2.4.0";
    assert!(out.contains(fix), "{out}");
    // The printed command does what it says.
    let (argv, env) = terminal(
        &rig,
        &[
            "rollback",
            "--services",
            APP,
            "--slot",
            "staging",
            "--to-version",
            "2.4.0",
            "--reason",
            "interrupted deploy",
        ],
    );
    rig.sb.handle().clear_faults();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_expedite"))
            .args(&argv)
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.0"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terminal_runs_are_two_holders() {
    let rig = Rig::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmds = Vec::new();
    for v in ["2.4.1", "2.4.2"] {
        let package = dir.path().join(format!("{v}.zip"));
        std::fs::write(&package, expedite_sandbox::demo_package(v).unwrap()).unwrap();
        let (argv, env) = terminal(
            &rig,
            &[
                "deploy",
                "--app-name",
                APP,
                "--package",
                &package.to_string_lossy(),
                "--expected-version",
                v,
                "--check-interval",
                "200ms",
                "--verify-window",
                "1s",
            ],
        );
        let child = Command::new(env!("CARGO_BIN_EXE_expedite"))
            .args(&argv)
            .env_clear()
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        cmds.push(child);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outs = tokio::task::spawn_blocking(move || {
        cmds.into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let second = format!(
        "{}{}",
        String::from_utf8_lossy(&outs[1].stdout),
        String::from_utf8_lossy(&outs[1].stderr)
    );
    assert!(
        second.contains("waiting for deploy 2.4.1 by dana@") && second.contains("(terminal, pid"),
        "{second}"
    );
    assert!(common::safety::interleaving(&rig.mutations()).is_none());
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.2"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_clear_errors_in_little_memory() {
    const GIB: u64 = 1 << 30;
    type Case = (
        &'static str,
        fn(&expedite_sandbox::Settings) -> FaultSpec,
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            "token endpoint",
            |_| FaultSpec::new(FaultKind::HugeBody { bytes: GIB }).host("login.azure.test"),
            "larger than",
        ),
        (
            "ARM",
            |s| {
                FaultSpec::new(FaultKind::HugeBody { bytes: GIB })
                    .host("management.azure.test")
                    .method("GET")
                    .path_prefix(format!(
                        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{APP}",
                        s.subscription_id, s.resource_group
                    ))
            },
            "ARM's answer to",
        ),
        (
            "the app's version endpoint",
            |_| {
                FaultSpec::new(FaultKind::HugeBodyChunked { bytes: GIB })
                    .host("app-contoso-payments-staging.azurewebsites.test")
                    .path_prefix("/api/version")
            },
            "/api/version: the answer is larger than expedite accepts",
        ),
    ];
    for (name, fault, words) in cases {
        let rig = Rig::new().await;
        rig.sb
            .handle()
            .add_fault(fault(&rig.sb.settings()))
            .unwrap();
        let job = rig.deploy("2.4.1").input("check-attempts", "2");
        let (r, kib) = tokio::task::spawn_blocking(move || job.run_main_measured())
            .await
            .unwrap();
        assert_eq!(r.code, 1, "{name}: {}", r.all_text());
        assert!(r.all_text().contains(words), "{name}: {}", r.all_text());
        assert!(kib < 64 * 1024, "{name}: peak RSS {kib} KiB");
        eprintln!("hostile {name}: peak RSS {kib} KiB");
        assert_eq!(
            rig.one_version(Platform::AppService).await.unwrap(),
            "2.4.0"
        );
        rig.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lock_is_taken_over_without_the_run_finishing() {
    let rig = Rig::new().await;
    let dead_job = canary(rig.deploy("2.4.1"), "60s");
    let dead = dead_job.start_main();
    assert!(until(|| !rig.sb.handle().routing_rules(APP).is_empty()).await);
    // Killed, and its run still "in progress": only the lock's expiry
    // (lock-ttl 6 s here) frees it.
    dead.signal("KILL");
    let _ = tokio::task::spawn_blocking(move || dead.wait()).await;
    let (_j, r) = run(rig.deploy("2.4.2")).await;
    assert_eq!(r.output("result"), Some("promoted"), "{}", r.all_text());
    assert!(
        r.summary.contains("took the deploy lock over") && r.summary.contains("expired"),
        "{}",
        r.summary
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.2"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_during_a_canary_withdraws_it() {
    let rig = Rig::new().await;
    let (_j, r) = run(canary(rig.deploy("2.4.1"), "60s").input("timeout", "8s")).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("interrupted"), "{}", r.all_text());
    assert_eq!(r.output("deployed-version"), Some("2.4.0"));
    assert!(
        r.output("error")
            .unwrap()
            .contains("the timeout of 8s passed"),
        "{}",
        r.all_text()
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.0"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_unreadable_past_the_deadline_needs_a_human_and_no_blind_swap() {
    let rig = Rig::new().await;
    let h = rig.sb.handle();
    h.add_fault(FaultSpec::new(FaultKind::SwapTimeout { hold_ms: 2_000 }).times(1))
        .unwrap();
    let job = rig
        .deploy("2.4.1")
        .input("swap-timeout", "10s")
        .input("timeout", "25s");
    let running = job.start_main();
    // While the swap's answer is still held back.
    assert!(until(|| swap_started(&rig)).await);
    // Every ARM read throttled until well after the deadline.
    h.add_fault(
        FaultSpec::new(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .host("management.azure.test")
        .method("GET")
        .for_ms(60_000),
    )
    .unwrap();
    let r = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(
        r.output("result"),
        Some("needs-attention"),
        "{}",
        r.all_text()
    );
    let error = r.output("error").unwrap();
    assert!(
        error.contains("the state is unknown")
            && error.contains("expedite rollback --services app-contoso-payments"),
        "{error}"
    );
    assert_eq!(swaps(&rig), 1, "no blind swap back: {}", r.all_text());
    drop(job);
    // Until a rollback puts production on a known version, deploys refuse:
    // they would record whatever serves as the last known good.
    h.clear_faults();
    let (_j, d) = run(rig.deploy("2.4.2")).await;
    assert_eq!(d.code, 1, "{}", d.all_text());
    assert!(
        d.output("error").unwrap().contains("ended needs-attention")
            && d.output("error").unwrap().contains("rollback"),
        "{}",
        d.all_text()
    );
    let (_j, rb) = run(rig.rollback(Platform::AppService, Some("2.4.0"))).await;
    assert_eq!(rb.code, 0, "{}", rb.all_text());
    let (_j, d) = run(rig.deploy("2.4.2")).await;
    assert_eq!(d.output("result"), Some("promoted"), "{}", d.all_text());
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_job_the_runners_later_signals_do_not_cut_the_restore_short() {
    let rig = Rig::new().await;
    // Slow routing writes: the canary's withdrawal takes 3 s.
    let s = rig.sb.settings();
    rig.sb
        .handle()
        .add_fault(
            FaultSpec::new(FaultKind::Delay { ms: 3_000 })
                .host("management.azure.test")
                .method("PATCH")
                .path_prefix(format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{APP}/config/web",
                    s.subscription_id, s.resource_group
                )),
        )
        .unwrap();
    let job = canary(rig.deploy("2.4.1"), "60s");
    let running = job.start_main();
    assert!(until(|| !rig.sb.handle().routing_rules(APP).is_empty()).await);
    // The runner's escalation: SIGINT, then SIGTERM (7.5 s later on a real
    // runner; here while the withdrawal is still running).
    running.signal("INT");
    tokio::time::sleep(Duration::from_millis(800)).await;
    running.signal("TERM");
    let r = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(r.code, 1, "not 130: {}", r.all_text());
    assert_eq!(r.output("result"), Some("interrupted"), "{}", r.all_text());
    assert!(
        r.all_text().contains("still restoring production"),
        "{}",
        r.all_text()
    );
    assert_eq!(
        rig.one_version(Platform::AppService).await.unwrap(),
        "2.4.0"
    );
    drop(job);
    rig.shutdown().await;
}
