#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The notification receivers: Slack, Teams Workflows and PagerDuty Events
//! API v2 validate like the real services, record every body, answer the
//! fault table's 429s, and are exported in the settings.

mod common;

use common::*;
use expedite_sandbox::{FaultKind, FaultSpec};
use serde_json::{Value, json};

async fn post(env: &Env, url: &str, body: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = env
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn hook_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn slack_answers_like_an_incoming_webhook() {
    let env = start().await;
    let url = env.sb.slack_webhook_url();
    assert_eq!(url, env.settings.slack_webhook_url);
    assert!(url.starts_with("https://hooks.slack.test/services/T"));

    let good = json!({"text": "fallback", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy failed"}},
        {"type": "section", "text": {"type": "plain_text", "text": "details"},
         "fields": [{"type": "plain_text", "text": "Service: payments"}]},
        {"type": "context", "elements": [{"type": "plain_text", "text": "run"}]},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://github.test/x"}]}
    ]});
    let (s, h, b) = post(&env, &url, &good.to_string()).await;
    assert_eq!((s, b.as_str()), (200, "ok"));
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));

    let (s, _, b) = post(&env, &url, "not json").await;
    assert_eq!((s, b.as_str()), (400, "invalid_payload"));
    let (s, _, b) = post(&env, &url, "{}").await;
    assert_eq!((s, b.as_str()), (400, "no_text"));
    let bad_header =
        json!({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}]});
    let (s, _, b) = post(&env, &url, &bad_header.to_string()).await;
    assert_eq!((s, b.as_str()), (400, "invalid_blocks"));
    let long = json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]});
    let (s, _, _) = post(&env, &url, &long.to_string()).await;
    assert_eq!(s, 400);

    let (prefix, _) = url.rsplit_once('/').unwrap();
    let (s, _, b) = post(&env, &format!("{prefix}/wrongtoken"), &good.to_string()).await;
    assert_eq!((s, b.as_str()), (403, "invalid_token"));
    let (s, _, b) = post(
        &env,
        "https://hooks.slack.test/services/T1/B1/x",
        &good.to_string(),
    )
    .await;
    assert_eq!((s, b.as_str()), (404, "no_service"));

    let m = env.sb.hook_messages();
    assert_eq!(m.len(), 7, "every body is recorded, accepted or not");
    assert!(m.iter().all(|m| m.service == "slack"));
    assert_eq!(m[0].body, good);
    assert_eq!(m[0].status, 200);
    assert_eq!(m[1].body, Value::String("not json".into()));
    let seqs: Vec<u64> = m.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
}

#[tokio::test]
async fn teams_takes_adaptive_cards_only() {
    let env = start().await;
    let url = env.sb.teams_webhook_url();
    assert_eq!(url, env.settings.teams_webhook_url);
    let card = json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": "Deploy failed"}],
            "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://github.test/x"}]}
    }]});
    let (s, h, b) = post(&env, &url, &card.to_string()).await;
    assert_eq!((s, b.as_str()), (202, ""));
    assert!(h.contains_key("x-ms-workflow-run-id"));

    let message_card =
        json!({"@type": "MessageCard", "@context": "http://schema.org/extensions", "text": "hi"});
    let (s, _, b) = post(&env, &url, &message_card.to_string()).await;
    assert_eq!(s, 400);
    let e = hook_body(&b);
    assert_eq!(e["error"]["code"], "InvalidRequestContent");
    assert!(e["error"]["message"].as_str().unwrap().contains("retired"));

    let mut wrong_type = card.clone();
    wrong_type["attachments"][0]["contentType"] = json!("application/vnd.microsoft.card.hero");
    let (s, _, _) = post(&env, &url, &wrong_type.to_string()).await;
    assert_eq!(s, 400);

    let bad_sig = format!("{}x", url);
    let (s, _, b) = post(&env, &bad_sig, &card.to_string()).await;
    assert_eq!(s, 401);
    assert_eq!(
        hook_body(&b)["error"]["code"],
        "DirectApiInvalidAuthorizationSignature"
    );
    let (no_sig, _) = url.split_once("&sig=").unwrap();
    let (s, _, b) = post(&env, no_sig, &card.to_string()).await;
    assert_eq!(s, 401);
    assert_eq!(
        hook_body(&b)["error"]["code"],
        "DirectApiAuthorizationRequired"
    );

    let m = env.sb.hook_messages();
    assert_eq!(m.len(), 5);
    assert_eq!(m[0].body, card);
    assert!(
        !m[0].path.contains("sig"),
        "the query (sig) is not recorded"
    );
}

#[tokio::test]
async fn pagerduty_validates_events_like_events_api_v2() {
    let env = start().await;
    let key = env.sb.pagerduty_routing_key();
    assert_eq!(key.len(), 32);
    assert_eq!(env.settings.pagerduty_url, "https://events.pagerduty.test");
    let enqueue = format!("{}/v2/enqueue", env.settings.pagerduty_url);
    let trigger = json!({"routing_key": key, "event_action": "trigger", "dedup_key": "expedite:payments:INC-1",
        "payload": {"summary": "Incident opened", "source": "payments", "severity": "critical"},
        "links": [{"href": "https://github.test/x", "text": "run"}]});
    let (s, _, b) = post(&env, &enqueue, &trigger.to_string()).await;
    assert_eq!(s, 202);
    assert_eq!(
        hook_body(&b),
        json!({"status": "success", "message": "Event processed", "dedup_key": "expedite:payments:INC-1"})
    );

    let no_key = json!({"routing_key": key, "event_action": "trigger",
        "payload": {"summary": "s", "source": "payments", "severity": "info"}});
    let (s, _, b) = post(&env, &enqueue, &no_key.to_string()).await;
    assert_eq!(s, 202);
    assert_eq!(
        hook_body(&b)["dedup_key"].as_str().unwrap().len(),
        32,
        "PagerDuty makes up a key"
    );

    let cases = [
        (
            json!({"routing_key": "short", "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}),
            "Length of 'routing_key' is incorrect",
        ),
        (
            json!({"routing_key": "a".repeat(32), "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}),
            "Invalid routing key",
        ),
        (
            json!({"routing_key": key, "event_action": "resolve"}),
            "'dedup_key' is missing",
        ),
        (
            json!({"routing_key": key, "event_action": "page", "dedup_key": "k"}),
            "'event_action' is invalid",
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "sev1"}}),
            "'payload.severity' is invalid",
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s".repeat(1025), "source": "x", "severity": "info"}}),
            "'payload.summary' is incorrect",
        ),
    ];
    for (body, want) in &cases {
        let (s, _, b) = post(&env, &enqueue, &body.to_string()).await;
        let v = hook_body(&b);
        assert_eq!(s, 400, "{body}");
        assert_eq!(v["status"], "invalid event");
        assert_eq!(v["message"], "Event object is invalid");
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains(want)),
            "{want}: {v}"
        );
    }

    let change = format!("{}/v2/change/enqueue", env.settings.pagerduty_url);
    let ev = json!({"routing_key": key, "payload": {"summary": "Deploy succeeded", "source": "payments",
        "timestamp": "2025-06-01T10:00:00Z", "custom_details": {"version": "2.4.1"}}, "links": []});
    let (s, _, b) = post(&env, &change, &ev.to_string()).await;
    assert_eq!(s, 202);
    assert_eq!(hook_body(&b)["status"], "success");
    let bad_ts = json!({"routing_key": key, "payload": {"summary": "x", "timestamp": "yesterday"}});
    let (s, _, _) = post(&env, &change, &bad_ts.to_string()).await;
    assert_eq!(s, 400);

    let m = env.sb.hook_messages();
    let services: Vec<&str> = m.iter().map(|m| m.service.as_str()).collect();
    assert_eq!(services.iter().filter(|s| **s == "pagerduty").count(), 8);
    assert_eq!(
        services
            .iter()
            .filter(|s| **s == "pagerduty-change")
            .count(),
        2
    );
}

#[tokio::test]
async fn throttle_faults_reach_the_receivers_and_are_not_recorded() {
    let env = start().await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Throttle {
                retry_after_secs: 3,
            })
            .host("hooks.slack.test")
            .times(1),
        )
        .unwrap();
    let url = env.sb.slack_webhook_url();
    let (s, h, _) = post(&env, &url, r#"{"text":"hi"}"#).await;
    assert_eq!((s, h["retry-after"].to_str().unwrap()), (429, "3"));
    let (s, _, _) = post(&env, &url, r#"{"text":"hi"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(env.sb.hook_messages().len(), 1, "the 429 never reached it");
    let log = env.sb.request_log();
    let targets: Vec<&str> = log
        .iter()
        .filter(|r| r.host == "hooks.slack.test")
        .map(|r| r.target.as_str())
        .collect();
    assert_eq!(targets, ["fault:throttle", "hooks:slack"]);
}

#[tokio::test]
async fn control_api_lists_and_clears_and_settings_export_the_receivers() {
    let env = start().await;
    let url = env.sb.slack_webhook_url();
    post(&env, &url, r#"{"text":"one"}"#).await;
    post(&env, &env.sb.teams_webhook_url(), "{}").await;
    let control = &env.settings.control_url;
    let v: Value = env
        .client
        .get(format!("{control}/_sandbox/hooks?service=slack"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["body"]["text"], "one");
    assert_eq!(msgs[0]["service"], "slack");
    let all: Value = env
        .client
        .get(format!("{control}/_sandbox/hooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["messages"].as_array().unwrap().len(), 2);
    let r = env
        .client
        .delete(format!("{control}/_sandbox/hooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(env.sb.hook_messages().is_empty());

    let exports = env.settings.export_lines();
    for (name, value) in [
        ("EXPEDITE_SLACK_WEBHOOK_URL", env.sb.slack_webhook_url()),
        ("EXPEDITE_TEAMS_WEBHOOK_URL", env.sb.teams_webhook_url()),
        (
            "EXPEDITE_PAGERDUTY_ROUTING_KEY",
            env.sb.pagerduty_routing_key(),
        ),
        ("EXPEDITE_PAGERDUTY_URL", env.sb.pagerduty_url()),
    ] {
        assert!(
            exports.contains(&format!("export {name}='{value}'")),
            "{name} in {exports}"
        );
    }
    let resolved: Vec<&str> = env
        .settings
        .resolve
        .iter()
        .map(|e| e.host.as_str())
        .collect();
    for host in [
        "hooks.slack.test",
        "teams.webhook.test",
        "events.pagerduty.test",
    ] {
        assert!(resolved.contains(&host), "{host} in {resolved:?}");
        assert!(env.sb.hosts().contains(&host.to_owned()));
    }
}
