#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! What `deploy` and `rollback` record besides the Azure work, through the
//! built binary against the sandbox: GitHub deployments with statuses (the
//! last known good version a later rollback finds), the incident's
//! timeline, Slack/Teams/PagerDuty messages, and no secret in any log.

mod common;
#[path = "common/github.rs"]
mod gh;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Job, StepResult};
use expedite_sandbox::{HookMessage, Sandbox, SandboxConfig};
use gh::{Fixture, api_get, run};
use serde_json::Value;

const APP: &str = "app-contoso-payments";

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(600),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Azure sign-in, GitHub access and every notification channel.
fn with_everything(sb: &Sandbox, job: Job, commit: &str) -> Job {
    let s = sb.settings();
    job.input("resource-group", &s.resource_group)
        .input("subscription-id", &s.subscription_id)
        .input("tenant-id", &s.tenant_id)
        .input("client-id", &s.client_id)
        .input("client-secret", &s.client_secret)
        .input("arm-endpoint", &s.arm_endpoint)
        .input("authority-host", &s.authority_host)
        .input("resolve", &s.resolve_string())
        .input("ca-cert", &s.ca_cert_path.to_string_lossy())
        .input("github-token", &s.github_token)
        .input("slack-webhook-url", &s.slack_webhook_url)
        .input("teams-webhook-url", &s.teams_webhook_url)
        .input("pagerduty-routing-key", &s.pagerduty_routing_key)
        .input("pagerduty-url", &s.pagerduty_url)
        .env("GITHUB_API_URL", &s.github_api_url)
        .env("GITHUB_SERVER_URL", &s.github_server_url)
        .env("GITHUB_SHA", commit)
}

fn deploy(sb: &Sandbox, commit: &str) -> Job {
    let job = Job::new();
    let package = job.workspace().join("app.zip");
    std::fs::write(&package, expedite_sandbox::demo_package("2.4.1").unwrap()).unwrap();
    with_everything(sb, job, commit)
        .input("command", "deploy")
        .input("app-name", APP)
        .input("package", "app.zip")
        .input("expected-version", "2.4.1")
        .input("check-interval", "200ms")
        .input("check-attempts", "3")
        .input("verify-window", "1s")
        .input("verify-interval", "250ms")
        .input("verify-requests", "50")
}

fn hooks(sb: &Sandbox, service: &str) -> Vec<HookMessage> {
    sb.handle()
        .hook_messages()
        .into_iter()
        .filter(|m| m.service == service)
        .collect()
}

fn no_secret_in_logs(sb: &Sandbox, r: &StepResult) {
    let s = sb.settings();
    let secrets = [
        s.slack_webhook_url.clone(),
        s.teams_webhook_url.clone(),
        s.pagerduty_routing_key.clone(),
        s.github_token.clone(),
        s.client_secret.clone(),
    ];
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()) || line.starts_with("::add-mask::"),
                "a secret in the log: {line}"
            );
        }
    }
    for secret in &secrets {
        assert!(!r.summary.contains(secret.as_str()));
    }
}

async fn deployments(sb: &Sandbox) -> Vec<Value> {
    api_get(
        sb,
        "/repos/contoso/payments/deployments?environment=production",
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn statuses(sb: &Sandbox, id: &Value) -> Vec<Value> {
    api_get(
        sb,
        &format!("/repos/contoso/payments/deployments/{id}/statuses"),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn open_incident(sb: &Sandbox) -> String {
    let (_, r) = run(gh::job(sb, "incident")
        .input("incident-action", "create")
        .input("incident", "INC-2041")
        .input("severity", "sev1")
        .input("title", "Large orders dropped"))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    r.output("incident-number").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_records_a_deployment_the_timeline_and_notifies_then_rollback_finds_the_target() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let commit = gh::git(f.dir(), &["rev-parse", "HEAD"]);
    let number = open_incident(&sb).await;

    let (_, r) = run(deploy(&sb, &commit).input("incident", "INC-2041")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    no_secret_in_logs(&sb, &r);
    assert!(r.summary.contains("### Records"), "{}", r.summary);

    // A GitHub deployment: payload with the last known good version, then
    // statuses in_progress → success with the production URL.
    let ds = deployments(&sb).await;
    assert_eq!(ds.len(), 1, "{ds:?}");
    let d = &ds[0];
    assert_eq!(d["sha"], commit.as_str());
    assert_eq!(d["payload"]["app"], APP);
    assert_eq!(d["payload"]["version"], "2.4.1");
    assert_eq!(d["payload"]["previous_version"], "2.4.0");
    let st = statuses(&sb, &d["id"]).await;
    let states: Vec<&str> = st.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["success", "in_progress"], "newest first");
    assert_eq!(
        st[0]["environment_url"],
        "https://app-contoso-payments.azurewebsites.test"
    );
    assert!(
        st[0]["log_url"]
            .as_str()
            .unwrap()
            .ends_with("/contoso/payments/actions/runs/4242")
    );

    // The incident's timeline.
    let comments = api_get(
        &sb,
        &format!("/repos/contoso/payments/issues/{number}/comments"),
    )
    .await;
    let c = comments.as_array().unwrap().last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(c.contains("Deploy of 2.4.1: promoted"), "{c}");
    assert!(c.contains("| previous version | 2.4.0 |"), "{c}");
    assert!(c.contains("/actions/runs/4242"), "{c}");

    // Notifications: a change event on PagerDuty, messages in Slack, Teams.
    let change = hooks(&sb, "pagerduty-change");
    assert_eq!(change.len(), 1, "{change:?}");
    assert!(change[0].body.to_string().contains("2.4.1"));
    let slack = hooks(&sb, "slack");
    assert_eq!(
        slack.len(),
        1,
        "only the deploy (the incident job had no hooks)"
    );
    assert!(slack[0].body.to_string().contains("promoted"));
    assert_eq!(hooks(&sb, "teams").len(), 1);

    // A later run: the site's tag is gone, no to-version; the deployment
    // record names the target.
    let c = common::azure::clients(&sb);
    c.app(c.arm(), APP)
        .delete_tags(
            &BTreeMap::from([(
                expedite::rollout::driver::PREVIOUS_VERSION_TAG.to_string(),
                "2.4.0".to_string(),
            )]),
            &expedite::cancel::Cancel::new(),
        )
        .await
        .unwrap();
    let rollback = with_everything(&sb, Job::new(), &commit)
        .input("command", "rollback")
        .input("services", APP)
        .input("verify-requests", "50")
        .input("incident", "INC-2041")
        .input(
            "reason",
            "still dropping @org/team <!channel>\n::set-output name=x::1",
        );
    let (_, rb) = run(rollback).await;
    assert_eq!(rb.code, 0, "{}", rb.all_text());
    assert_eq!(rb.output("result"), Some("rolled-back"));
    assert_eq!(rb.output("deployed-version"), Some("2.4.0"));
    assert!(
        rb.stdout
            .contains("the last successful GitHub deployment names 2.4.0"),
        "{}",
        rb.all_text()
    );
    assert!(rb.outputs.iter().all(|(k, _)| k != "x"));
    no_secret_in_logs(&sb, &rb);
    let comments = api_get(
        &sb,
        &format!("/repos/contoso/payments/issues/{number}/comments"),
    )
    .await;
    let c = comments.as_array().unwrap().last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(c.contains("Rollback: rolled-back"), "{c}");
    assert!(
        c.contains("```text\nstill dropping @org/team <!channel>\n::set-output name=x::1\n```"),
        "{c}"
    );
    assert!(
        hooks(&sb, "slack")
            .last()
            .unwrap()
            .body
            .to_string()
            .contains("Rolled back")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deploy_marks_the_deployment_failed() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let commit = gh::git(f.dir(), &["rev-parse", "HEAD"]);
    sb.handle()
        .set_behaviour(
            "2.4.1",
            expedite_sandbox::Behaviour {
                health_status: Some(500),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, r) = run(deploy(&sb, &commit)).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("failed-before-change"));
    no_secret_in_logs(&sb, &r);
    let ds = deployments(&sb).await;
    assert_eq!(ds.len(), 1);
    let st = statuses(&sb, &ds[0]["id"]).await;
    let states: Vec<&str> = st.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["failure", "in_progress"]);
    let failed = hooks(&sb, "slack");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].body.to_string().contains("Deploy failed"));
    sb.shutdown().await;
}
