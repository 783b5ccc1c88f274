//! The Azure Pipelines runner contract, through the built binary run the
//! way an agent runs a script step (a clean environment with `TF_BUILD=True`
//! and the agent's directories, flags on the command line): outputs become
//! output variables a later step reads, a bad input is exactly one error
//! issue, a secret is registered with the agent and never shown, text from
//! outside can start no logging command, and the summary file is attached.
//!
//! The agent's parse (microsoft/azure-pipelines-agent `Command.cs`) is
//! re-done here: every line of stdout and stderr — split on `\n` and on a
//! bare `\r` — with `##vso[` anywhere in it is a logging command, and one
//! starting with `##[` a formatting command.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::Path;

struct Step {
    code: Option<i32>,
    /// stdout then stderr, as the agent reads both.
    text: String,
    temp: tempfile::TempDir,
}

fn step(args: &[&str], extra_env: &[(&str, &str)]) -> Step {
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("s");
    std::fs::create_dir_all(&work).unwrap();
    let name = "trx-xunitv3-passed-blame-warning.trx";
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/test-results")
            .join(name),
        work.join(name),
    )
    .unwrap();
    let out = std::process::Command::new(common::exe())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TF_BUILD", "True")
        .env("AGENT_TEMPDIRECTORY", temp.path())
        .env("BUILD_SOURCESDIRECTORY", &work)
        .envs(extra_env.iter().copied())
        .current_dir(&work)
        .output()
        .unwrap();
    Step {
        code: out.status.code(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        temp,
    }
}

/// The agent's unescaping, in its order.
fn unescape(s: &str) -> String {
    s.replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%AZP25", "%")
}

#[derive(Debug)]
struct Command {
    name: String,
    props: Vec<(String, String)>,
    data: String,
}

impl Command {
    fn prop(&self, k: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

/// Every logging command the agent would act on, and every formatting
/// command line.
fn agent_reads(text: &str) -> (Vec<Command>, Vec<String>) {
    let mut commands = Vec::new();
    let mut formatting = Vec::new();
    for line in text.split(['\n', '\r']) {
        if let Some(at) = line.find("##vso[") {
            let rest = &line[at + 6..];
            let Some(end) = rest.find(']') else { continue };
            let head = &rest[..end];
            let (name, props) = head.split_once(' ').unwrap_or((head, ""));
            commands.push(Command {
                name: name.to_string(),
                props: props
                    .split(';')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), unescape(v)))
                    .collect(),
                data: unescape(&rest[end + 1..]),
            });
        } else if line.trim_start().starts_with("##[") {
            formatting.push(line.trim_start().to_string());
        }
    }
    (commands, formatting)
}

fn outputs(commands: &[Command]) -> Vec<(String, String)> {
    commands
        .iter()
        .filter(|c| c.name == "task.setvariable" && c.prop("isoutput") == Some("true"))
        .map(|c| (c.prop("variable").unwrap().to_string(), c.data.clone()))
        .collect()
}

#[test]
fn outputs_are_output_variables_and_the_summary_is_attached() {
    let s = step(
        &[
            "gate",
            "--results",
            "trx-*.trx",
            "--security-waiver",
            "scan runs nightly",
        ],
        &[],
    );
    assert_eq!(s.code, Some(0), "{}", s.text);
    let (commands, _) = agent_reads(&s.text);
    let outs = outputs(&commands);
    for (name, value) in [
        ("outcome", "success"),
        ("verdict", "pass"),
        ("critical_total", "2"),
        ("critical_failed", "0"),
    ] {
        assert!(
            outs.iter().any(|(k, v)| k == name && v == value),
            "{name}={value} not in {outs:?}\n{}",
            s.text
        );
    }
    // The summary: one file in the agent's temporary directory, attached once.
    let uploads: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.uploadsummary")
        .collect();
    assert_eq!(uploads.len(), 1, "{}", s.text);
    let path = Path::new(&uploads[0].data);
    assert!(path.starts_with(s.temp.path()), "{path:?}");
    let md = std::fs::read_to_string(path).unwrap();
    assert!(md.contains("Gate passed"), "{md}");
    // No name=value lines and no GitHub workflow commands in a pipeline.
    assert!(!s.text.contains("::set-output") && !s.text.contains("::error"));
    assert!(
        !s.text.lines().any(|l| l.starts_with("outcome=")),
        "{}",
        s.text
    );
}

#[test]
fn a_bad_input_is_exactly_one_error_issue() {
    let s = step(
        &["gate", "--results", "x.trx", "--min-critical-tests", "lots"],
        &[],
    );
    assert_eq!(s.code, Some(1), "{}", s.text);
    let (commands, _) = agent_reads(&s.text);
    let errors: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.logissue" && c.prop("type") == Some("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", s.text);
    assert!(
        errors[0].data.contains("--min-critical-tests"),
        "{:?}",
        errors[0]
    );
    // Still attached, and the outcome still set for a later step.
    assert!(commands.iter().any(|c| c.name == "task.uploadsummary"));
    assert!(
        outputs(&commands)
            .iter()
            .any(|(k, v)| k == "outcome" && v == "failure")
    );
}

#[test]
fn a_secret_is_registered_with_the_agent_and_never_shown() {
    let secret = "ghp_pipelineSecret0123456789abcdefABCDEF";
    let s = step(
        &[
            "tag",
            "--version",
            "2.4.1",
            "--repository",
            "contoso/payments",
        ],
        &[
            ("GITHUB_TOKEN", secret),
            ("GITHUB_API_URL", "https://127.0.0.1:9/api"),
        ],
    );
    let (commands, _) = agent_reads(&s.text);
    let declared: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.setsecret")
        .collect();
    assert!(
        declared.iter().any(|c| c.data == secret),
        "not declared secret: {}",
        s.text
    );
    // The only line that carries it is the agent's own command; no job
    // variable holds it (a later step could read one).
    assert!(
        !commands
            .iter()
            .any(|c| c.name == "task.setvariable" && c.data == secret),
        "{}",
        s.text
    );
    for line in s.text.lines() {
        if line.contains(secret) {
            assert!(line.starts_with("##vso[task.setsecret]"), "leaked: {line}");
        }
    }
}

#[test]
fn text_from_outside_starts_no_logging_command() {
    // A test command's output is text from outside: it prints commands of
    // both kinds, after a bare carriage return and mid-line too.
    let hostile = "printf '##vso[task.setvariable variable=injected;isoutput=true]1\\nok\\r##[error]injected\\nsee ##vso[task.complete result=Failed]injected\\n'; exit 3";
    let s = step(
        &[
            "gate",
            "--results",
            "trx-*.trx",
            "--security-waiver",
            "test",
            "--test-command",
            hostile,
        ],
        &[],
    );
    assert_eq!(s.code, Some(0), "{}", s.text);
    // The output is shown…
    assert!(s.text.contains("injected"), "{}", s.text);
    // …and the agent acts on none of it.
    let (commands, formatting) = agent_reads(&s.text);
    for c in &commands {
        assert!(
            !c.data.contains("injected") && c.props.iter().all(|(_, v)| v != "injected"),
            "acted on: {c:?}"
        );
        assert!(
            matches!(
                c.name.as_str(),
                "task.setvariable" | "task.logissue" | "task.uploadsummary" | "task.complete"
            ),
            "{c:?}"
        );
    }
    for f in &formatting {
        assert!(!f.contains("injected"), "formatting: {f}");
    }
}

/// The sandbox's settings for a pipeline step signed in through its
/// service connection.
fn sandbox_step_env(s: &expedite_sandbox::Settings) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("EXPEDITE_ARM_ENDPOINT".into(), s.arm_endpoint.clone()),
        ("AZURE_AUTHORITY_HOST".into(), s.authority_host.clone()),
        ("EXPEDITE_RESOLVE".into(), s.resolve_string()),
        (
            "EXPEDITE_CA_CERT".into(),
            s.ca_cert_path.display().to_string(),
        ),
        ("AZURE_SUBSCRIPTION_ID".into(), s.subscription_id.clone()),
    ];
    env.extend(
        s.pipelines_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// A reason is text from outside: a hostile one is shown, and acted on
/// never — not as a logging command, not in the summary's file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_rollback_reason_is_shown_and_inert() {
    let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let env = sandbox_step_env(&sb.settings());
    let reason = "##vso[task.setvariable variable=injected;isoutput=true]1 ok\r##[error]injected ##vso[task.complete result=Failed]injected";
    let reason = reason.replace("\\r", "\r");
    let out = tokio::task::spawn_blocking(move || {
        let temp = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::exe())
            .args([
                "rollback",
                "--services",
                "app-contoso-payments",
                "--resource-group",
                "rg-contoso-prod",
                "--to-version",
                "2.4.0",
                "--lock",
                "none",
                "--reason",
                &reason,
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TF_BUILD", "True")
            .env("AGENT_TEMPDIRECTORY", temp.path())
            .envs(env)
            .current_dir(temp.path())
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap();
    sb.shutdown().await;
    assert!(out.contains("injected"), "the reason is shown:\n{out}");
    let (commands, formatting) = agent_reads(&out);
    for c in &commands {
        assert!(
            !c.data.contains("injected") && c.props.iter().all(|(_, v)| v != "injected"),
            "acted on: {c:?}"
        );
    }
    assert!(
        formatting.iter().all(|f| !f.contains("injected")),
        "{formatting:?}"
    );
    assert!(
        outputs(&commands)
            .iter()
            .any(|(k, v)| k == "result" && v == "unchanged"),
        "{out}"
    );
}

/// A whole canary deploy as a pipeline step (signed in through the
/// sandbox's service connection): the step's progress bar moves during the
/// canary, `result` is an output variable a later job reads, and the
/// summary attached is the deploy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_deploy_in_a_pipeline_moves_the_steps_progress_and_sets_its_outputs() {
    let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig {
        swap_duration: std::time::Duration::from_millis(300),
        build_duration: std::time::Duration::from_millis(200),
        ..expedite_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let env = sandbox_step_env(&sb.settings());
    let s2 = tokio::task::spawn_blocking(move || {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(
            temp.path().join("app.zip"),
            expedite_sandbox::demo_package("2.4.1").unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new(common::exe())
            .args([
                "deploy",
                "--app-name",
                "app-contoso-payments",
                "--resource-group",
                "rg-contoso-prod",
                "--package",
                "app.zip",
                "--expected-version",
                "2.4.1",
                "--lock",
                "none",
                "--check-interval",
                "200ms",
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
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TF_BUILD", "True")
            .env("AGENT_TEMPDIRECTORY", temp.path())
            .envs(env)
            .current_dir(temp.path())
            .output()
            .unwrap();
        Step {
            code: out.status.code(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            temp,
        }
    })
    .await
    .unwrap();
    sb.shutdown().await;
    assert_eq!(s2.code, Some(0), "{}", s2.text);
    let (commands, formatting) = agent_reads(&s2.text);
    assert!(
        outputs(&commands)
            .iter()
            .any(|(k, v)| k == "result" && v == "promoted"),
        "{}",
        s2.text
    );
    let bars: Vec<u32> = commands
        .iter()
        .filter(|c| c.name == "task.setprogress")
        .filter_map(|c| c.prop("value").and_then(|v| v.parse().ok()))
        .collect();
    assert!(bars.len() >= 2, "{}", s2.text);
    assert!(bars.iter().all(|v| *v <= 100), "{bars:?}");
    assert!(
        formatting.iter().any(|f| f.starts_with("##[group]")),
        "{formatting:?}"
    );
    let summary = commands
        .iter()
        .find(|c| c.name == "task.uploadsummary")
        .map(|c| std::fs::read_to_string(&c.data).unwrap())
        .unwrap_or_default();
    assert!(summary.contains("Deployed"), "{summary}");
    // No GitHub workflow command slipped through.
    assert!(!s2.text.lines().any(|l| l.starts_with("::")), "{}", s2.text);
}

/// The manifest the ordered-deploy example writes out in its header is one
/// `expedite plan` accepts, in the stages the example describes.
#[test]
fn the_ordered_deploy_examples_manifest_plans() {
    let yml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/azure-pipelines/ordered-deploy.yml"),
    )
    .unwrap();
    let manifest: String = yml
        .lines()
        .skip_while(|l| *l != "#   version: 1")
        .take_while(|l| l.starts_with('#') && *l != "#")
        .map(|l| format!("{}\n", l.trim_start_matches('#').get(3..).unwrap_or("")))
        .collect();
    assert!(manifest.contains("static-web-apps"), "{manifest}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.yml"), &manifest).unwrap();
    let out = std::process::Command::new(common::exe())
        .args(["plan", "--manifest", "m.yml"])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{manifest}");
    assert!(
        stdout.contains(r#"stages=[["payment-api","notification-service"],["frontend"]]"#),
        "{stdout}"
    );
}
