#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! `incident` through the built binary against the sandbox GitHub and its
//! Slack, Teams and PagerDuty receivers: create (idempotent), update,
//! resolve; secrets never in the log; untrusted text inert.

mod common;
#[path = "common/github.rs"]
mod gh;

use common::{Job, StepResult, processed_lines};
use expedite_sandbox::{HookMessage, Sandbox};
use gh::{Fixture, api_get, run};
use serde_json::Value;

const TITLE: &str = "Orders over $10,000 dropped @org/team <!channel>\n::set-output name=x::1";

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap()
}

/// An `incident` job with every notification channel configured.
fn job(sb: &Sandbox, action: &str) -> Job {
    let s = sb.settings();
    gh::job(sb, "incident")
        .input("incident-action", action)
        .input("incident", "INC-2041")
        .input("slack-webhook-url", &s.slack_webhook_url)
        .input("teams-webhook-url", &s.teams_webhook_url)
        .input("pagerduty-routing-key", &s.pagerduty_routing_key)
        .input("pagerduty-url", &s.pagerduty_url)
}

fn hooks(sb: &Sandbox, service: &str) -> Vec<HookMessage> {
    sb.handle()
        .hook_messages()
        .into_iter()
        .filter(|m| m.service == service)
        .collect()
}

/// No secret in stdout or stderr outside `::add-mask::` lines, nor in the
/// summary or outputs.
fn no_secret_in_logs(sb: &Sandbox, r: &StepResult) {
    let s = sb.settings();
    let routing_key = s.pagerduty_routing_key.clone();
    let secrets = [
        s.slack_webhook_url.as_str(),
        s.teams_webhook_url.as_str(),
        routing_key.as_str(),
        s.github_token.as_str(),
    ];
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        for secret in secrets {
            assert!(
                !line.contains(secret) || line.starts_with("::add-mask::"),
                "a secret in the log: {line}"
            );
        }
    }
    for secret in secrets {
        assert!(!r.summary.contains(secret));
        assert!(r.outputs.iter().all(|(_, v)| !v.contains(secret)));
    }
}

async fn incident_issues(sb: &Sandbox) -> Vec<Value> {
    api_get(
        sb,
        "/repos/contoso/payments/issues?state=all&labels=incident",
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_resolve_with_notifications() {
    let sb = sandbox().await;
    let _f = Fixture::new(&sb);

    // create
    let (_, r) = run(job(&sb, "create")
        .input("severity", "sev1")
        .input("title", TITLE))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("created"));
    let number = r.output("incident-number").unwrap().to_string();
    assert!(
        r.output("incident-url")
            .unwrap()
            .ends_with(&format!("/issues/{number}"))
    );
    no_secret_in_logs(&sb, &r);
    // The untrusted title is printed fenced, never as a command.
    assert!(r.outputs.iter().all(|(k, _)| k != "x"));
    for line in processed_lines(&r.stdout) {
        assert!(!line.starts_with("::set-output"), "unfenced: {line}");
    }
    let issues = incident_issues(&sb).await;
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert!(
        issue["title"]
            .as_str()
            .unwrap()
            .starts_with("[INC-2041] Orders over $10,000 dropped"),
        "{issue}"
    );
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"incident") && labels.contains(&"sev1"),
        "{labels:?}"
    );
    let body = issue["body"].as_str().unwrap();
    assert!(body.contains("| severity | SEV1 |"), "{body}");
    assert!(body.contains("| opened by | oncall |"), "{body}");
    assert!(
        body.contains("/contoso/payments/actions/runs/4242"),
        "{body}"
    );
    // Mentions and Slack-style broadcasts are inert in the issue.
    assert!(
        body.contains("```text\nOrders over $10,000 dropped @org/team <!channel>\n```"),
        "{body}"
    );

    let pd = hooks(&sb, "pagerduty");
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(pd[0].body["event_action"], "trigger");
    assert_eq!(pd[0].body["payload"]["severity"], "error");
    let dedup = pd[0].body["dedup_key"].as_str().unwrap().to_string();
    assert!(dedup.ends_with(":INC-2041"), "{dedup}");
    let slack = hooks(&sb, "slack");
    assert_eq!(slack.len(), 1);
    let slack_text = slack[0].body.to_string();
    assert!(slack_text.contains("INC-2041"), "{slack_text}");
    assert!(!slack_text.contains("<!channel>"), "{slack_text}");
    let teams = hooks(&sb, "teams");
    assert_eq!(teams.len(), 1);
    assert!(teams[0].body.to_string().contains("INC-2041"));

    // create again: the open issue is reported, not duplicated.
    let (_, again) = run(job(&sb, "create")
        .input("severity", "sev1")
        .input("title", "Orders over $10,000 dropped"))
    .await;
    assert_eq!(again.code, 0, "{}", again.all_text());
    assert_eq!(again.output("result"), Some("already-exists"));
    assert_eq!(again.output("incident-number"), Some(number.as_str()));
    assert_eq!(incident_issues(&sb).await.len(), 1);

    // update: a timeline comment with the run, the actor and the message.
    let (_, u) = run(job(&sb, "update").input("message", "Rolled back to 2.4.0 @here")).await;
    assert_eq!(u.code, 0, "{}", u.all_text());
    assert_eq!(u.output("result"), Some("updated"));
    no_secret_in_logs(&sb, &u);
    let comments = api_get(
        &sb,
        &format!("/repos/contoso/payments/issues/{number}/comments"),
    )
    .await;
    let c = comments.as_array().unwrap().last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(c.contains("```text\nRolled back to 2.4.0 @here"), "{c}");
    assert!(c.contains("UTC") && c.contains("| actor | oncall |"), "{c}");
    assert!(c.contains("/contoso/payments/actions/runs/4242"), "{c}");
    assert_eq!(hooks(&sb, "pagerduty").len(), 2, "the re-run's trigger");

    // resolve: root cause, action items as a task list, issue closed.
    let (_, z) = run(job(&sb, "resolve")
        .input("root-cause", "The limit check used < instead of a bound")
        .input(
            "action-items",
            "Add a test for large orders\n- Alert on order drops\n",
        ))
    .await;
    assert_eq!(z.code, 0, "{}", z.all_text());
    assert_eq!(z.output("result"), Some("resolved"));
    no_secret_in_logs(&sb, &z);
    let comments = api_get(
        &sb,
        &format!("/repos/contoso/payments/issues/{number}/comments"),
    )
    .await;
    let c = comments.as_array().unwrap().last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        c.contains("**Root cause**") && c.contains("used < instead"),
        "{c}"
    );
    assert!(
        c.contains("- [ ] Add a test for large orders\n- [ ] Alert on order drops"),
        "{c}"
    );
    let issue = api_get(&sb, &format!("/repos/contoso/payments/issues/{number}")).await;
    assert_eq!(issue["state"], "closed");
    assert_eq!(issue["state_reason"], "completed");
    let pd = hooks(&sb, "pagerduty");
    let last = pd.last().unwrap();
    assert_eq!(last.body["event_action"], "resolve");
    assert_eq!(last.body["dedup_key"], dedup.as_str(), "same dedup key");
    assert_eq!(hooks(&sb, "slack").len(), 4, "create ×2, update, resolve");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_needs_a_severity_and_update_needs_the_issue() {
    let sb = sandbox().await;
    let _f = Fixture::new(&sb);
    let (_, r) = run(job(&sb, "create").input("title", "x")).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(r.all_text().contains("severity"), "{}", r.all_text());
    let (_, u) = run(job(&sb, "update").input("message", "news")).await;
    assert_eq!(u.code, 1, "{}", u.all_text());
    assert!(
        u.all_text().contains("no incident issue for INC-2041"),
        "{}",
        u.all_text()
    );
    assert!(sb.handle().hook_messages().is_empty());
    sb.shutdown().await;
}
