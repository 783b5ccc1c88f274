#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! `notify` against the sandbox's Slack, Teams and PagerDuty receivers,
//! through the product's HTTP layer: payload shapes, PagerDuty dedup keys,
//! retries (429 yes, 5xx only where deduplicated), secrets kept out of
//! errors and logs, untrusted text kept inert, bounded time on dead ends.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use expedite::cancel::Cancel;
use expedite::http::{self, HttpSettings, ResolveRule, RetryPolicy};
use expedite::notify::{
    Channel, Delivery, Event, EventKind, Notifier, NotifyPolicy, SecretUrl, Sev, Targets,
};
use expedite_sandbox::{FaultKind, FaultSpec, HookMessage, Sandbox, SandboxConfig, Settings};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

struct Env {
    sb: Sandbox,
    s: Settings,
    http: reqwest::Client,
}

async fn start() -> Env {
    let sb = expedite_sandbox::start(SandboxConfig {
        seed: 9,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let s = sb.settings();
    let http = http::client(&HttpSettings {
        resolve: s
            .resolve
            .iter()
            .map(|e| ResolveRule {
                host: e.host.clone(),
                addr: e.addr,
            })
            .collect(),
        extra_ca_pem: vec![sb.ca_pem().to_string()],
        system_roots: false,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    Env { sb, s, http }
}

fn policy() -> NotifyPolicy {
    NotifyPolicy {
        channel_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(8),
        },
    }
}

impl Env {
    fn slack(&self) -> Targets {
        Targets {
            slack: Some(self.s.slack_webhook_url.parse().unwrap()),
            ..Targets::default()
        }
    }
    fn teams(&self) -> Targets {
        Targets {
            teams: Some(self.s.teams_webhook_url.parse().unwrap()),
            ..Targets::default()
        }
    }
    fn pagerduty(&self) -> Targets {
        Targets {
            pagerduty: Some((
                SecretString::from(self.s.pagerduty_routing_key.clone()),
                Url::parse(&self.s.pagerduty_url).unwrap(),
            )),
            ..Targets::default()
        }
    }
    fn all(&self) -> Targets {
        Targets {
            slack: self.slack().slack,
            teams: self.teams().teams,
            pagerduty: self.pagerduty().pagerduty,
        }
    }
    fn notifier(&self, targets: Targets) -> Notifier {
        Notifier::new(self.http.clone(), targets, policy())
    }
    fn messages(&self, service: &str) -> Vec<HookMessage> {
        self.sb
            .hook_messages()
            .into_iter()
            .filter(|m| m.service == service)
            .collect()
    }
}

fn incident(kind: EventKind) -> Event {
    let mut e = Event::new(
        kind,
        "payments",
        "Orders over 10,000 are dropped",
        "contoso/payments#4521.1",
    );
    e.version = Some("2.4.1".into());
    e.text = "Hotfix for the order limit.".into();
    e.incident = Some("INC-4521".into());
    e.url = Some(Url::parse("https://github.test/contoso/payments/actions/runs/4521").unwrap());
    e
}

fn one(d: &[Delivery], channel: Channel) -> &Delivery {
    let found: Vec<&Delivery> = d.iter().filter(|d| d.channel == channel).collect();
    assert_eq!(found.len(), 1, "{d:?}");
    found[0]
}

/// Every `text` of every object below `v` whose `type` is `kind`.
fn texts_of(v: &Value, kind: &str, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| texts_of(x, kind, out)),
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some(kind)
                && let Some(t) = o.get("text").and_then(Value::as_str)
            {
                out.push(t.to_string());
            }
            o.values().for_each(|x| texts_of(x, kind, out));
        }
        _ => {}
    }
}

/// Every tracing event (all levels) of this test binary, from a global
/// subscriber: a thread-scoped one (`set_default`) misses events when tests
/// race on tracing's callsite-interest cache. Secrets are unique per test,
/// so checking the whole log for them is the stronger check anyway.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let me = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
        logs
    })
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn slack_gets_blocks_and_a_fallback_text() {
    let env = start().await;
    let d = env
        .notifier(env.slack())
        .send(
            &incident(EventKind::IncidentOpened { sev: Sev::Sev1 }),
            &Cancel::new(),
        )
        .await;
    let s = one(&d, Channel::Slack);
    assert!(s.ok && s.status == Some(200) && s.attempts == 1, "{s:?}");
    let m = env.messages("slack");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].status, 200);
    let body = &m[0].body;
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Incident opened (SEV1)") && text.contains("payments 2.4.1"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["header", "section", "context", "actions"]);
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Orders over 10,000 are dropped")
    );
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for want in [
        "Service: payments",
        "Version: 2.4.1",
        "Incident: INC-4521",
        "Run: contoso/payments#4521.1",
    ] {
        assert!(fields.contains(&want), "{want} in {fields:?}");
    }
    assert_eq!(
        blocks[3]["elements"][0]["url"],
        "https://github.test/contoso/payments/actions/runs/4521"
    );
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_not_a_message_card() {
    let env = start().await;
    let d = env
        .notifier(env.teams())
        .send(&incident(EventKind::DeployFailed), &Cancel::new())
        .await;
    let t = one(&d, Channel::Teams);
    assert!(t.ok && t.status == Some(202), "{t:?}");
    let m = env.messages("teams");
    assert_eq!((m.len(), m[0].status), (1, 202));
    let body = &m[0].body;
    assert_eq!(body["type"], "message");
    assert!(body.get("@type").is_none(), "no MessageCard");
    let att = &body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["contentUrl"], Value::Null);
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        card["actions"][0]["url"],
        "https://github.test/contoso/payments/actions/runs/4521"
    );
    let mut runs = Vec::new();
    texts_of(card, "TextRun", &mut runs);
    assert!(runs.iter().any(|r| r == "Orders over 10,000 are dropped"));
    assert!(runs.iter().any(|r| r == "Hotfix for the order limit."));
}

#[tokio::test]
async fn pagerduty_trigger_then_resolve_share_one_dedup_key() {
    let env = start().await;
    let n = env.notifier(env.pagerduty());
    let open = incident(EventKind::IncidentOpened { sev: Sev::Sev0 });
    let mut rerun = open.clone();
    rerun.run = "contoso/payments#4521.2".into();
    let resolved = incident(EventKind::IncidentResolved);
    let mut keys = Vec::new();
    for e in [&open, &rerun, &resolved] {
        let d = n.send(e, &Cancel::new()).await;
        let p = one(&d, Channel::PagerDuty);
        assert!(p.ok && p.status == Some(202), "{p:?}");
        keys.push(p.dedup_key.clone().unwrap());
    }
    assert_eq!(keys[0], "expedite:payments:INC-4521");
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");

    let m = env.messages("pagerduty");
    assert_eq!(m.len(), 3);
    assert!(m.iter().all(|m| m.path == "/v2/enqueue" && m.status == 202));
    let actions: Vec<&str> = m
        .iter()
        .map(|m| m.body["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "trigger", "resolve"]);
    let t = &m[0].body;
    assert_eq!(t["routing_key"], env.s.pagerduty_routing_key.as_str());
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "payments");
    assert_eq!(t["payload"]["component"], "payments");
    assert_eq!(t["payload"]["custom_details"]["incident"], "INC-4521");
    assert!(t["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
    assert_eq!(
        t["links"][0]["href"],
        "https://github.test/contoso/payments/actions/runs/4521"
    );
    assert_eq!(m[1].body["dedup_key"], m[2].body["dedup_key"]);

    // Severity mapping for the rest.
    for (sev, want) in [
        (Sev::Sev1, "error"),
        (Sev::Sev2, "warning"),
        (Sev::Sev3, "info"),
    ] {
        n.send(&incident(EventKind::IncidentOpened { sev }), &Cancel::new())
            .await;
        let last = env.messages("pagerduty").pop().unwrap();
        assert_eq!(last.body["payload"]["severity"], want);
    }
}

#[tokio::test]
async fn a_deploy_reaches_every_channel_and_is_a_pagerduty_change_event() {
    let env = start().await;
    let mut e = incident(EventKind::DeploySucceeded);
    e.title = "x".repeat(3000);
    let d = env.notifier(env.all()).send(&e, &Cancel::new()).await;
    assert_eq!(d.len(), 3);
    assert!(d.iter().all(|d| d.ok), "{d:?}");
    assert!(
        env.messages("pagerduty").is_empty(),
        "no alert for a deploy"
    );
    let c = env.messages("pagerduty-change");
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].path.as_str(), c[0].status),
        ("/v2/change/enqueue", 202)
    );
    let b = &c[0].body;
    assert!(b.get("event_action").is_none() && b.get("dedup_key").is_none());
    assert_eq!(b["routing_key"], env.s.pagerduty_routing_key.as_str());
    assert_eq!(b["payload"]["source"], "payments");
    assert!(
        chrono::DateTime::parse_from_rfc3339(b["payload"]["timestamp"].as_str().unwrap()).is_ok()
    );
    assert_eq!(b["payload"]["custom_details"]["version"], "2.4.1");
    assert_eq!(
        b["payload"]["summary"].as_str().unwrap().chars().count(),
        1024,
        "a long title is cut to PagerDuty's limit"
    );
    assert_eq!(env.messages("slack").len(), 1);
    assert_eq!(env.messages("teams").len(), 1);

    // Events PagerDuty does not take: no PagerDuty delivery at all.
    let d = env
        .notifier(env.all())
        .send(&incident(EventKind::CherryPickConflict), &Cancel::new())
        .await;
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.channel != Channel::PagerDuty));
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_delivered_once() {
    let env = start().await;
    for host in [
        "hooks.slack.test",
        "teams.webhook.test",
        "events.pagerduty.test",
    ] {
        env.sb
            .add_fault(
                FaultSpec::new(FaultKind::Throttle {
                    retry_after_secs: 1,
                })
                .host(host)
                .times(1),
            )
            .unwrap();
    }
    let t = Instant::now();
    let d = env
        .notifier(env.all())
        .send(
            &incident(EventKind::IncidentOpened { sev: Sev::Sev2 }),
            &Cancel::new(),
        )
        .await;
    let took = t.elapsed();
    for c in [Channel::Slack, Channel::Teams, Channel::PagerDuty] {
        let x = one(&d, c);
        assert!(x.ok && x.attempts == 2, "{x:?}");
    }
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After: 1 was honoured ({took:?})"
    );
    assert!(
        took < Duration::from_secs(5),
        "channels ran concurrently ({took:?})"
    );
    for s in ["slack", "teams", "pagerduty"] {
        assert_eq!(env.messages(s).len(), 1, "{s} delivered once");
    }
    let throttled = env
        .sb
        .request_log()
        .iter()
        .filter(|r| r.target == "fault:throttle")
        .count();
    assert_eq!(throttled, 3);
}

#[tokio::test]
async fn a_5xx_is_retried_only_where_pagerduty_deduplicates() {
    let env = start().await;
    for host in ["hooks.slack.test", "events.pagerduty.test"] {
        env.sb
            .add_fault(
                FaultSpec::new(FaultKind::Status { status: 503 })
                    .host(host)
                    .times(1),
            )
            .unwrap();
    }
    let n = env.notifier(Targets {
        slack: env.slack().slack,
        pagerduty: env.pagerduty().pagerduty,
        ..Targets::default()
    });
    let d = n
        .send(
            &incident(EventKind::IncidentOpened { sev: Sev::Sev1 }),
            &Cancel::new(),
        )
        .await;
    let s = one(&d, Channel::Slack);
    assert!(
        !s.ok && s.status == Some(503) && s.attempts == 1,
        "a webhook is not repeated after a 5xx: {s:?}"
    );
    assert!(s.error.as_deref().unwrap().contains("503"));
    let p = one(&d, Channel::PagerDuty);
    assert!(p.ok && p.attempts == 2, "{p:?}");
    assert!(env.messages("slack").is_empty());
    assert_eq!(env.messages("pagerduty").len(), 1);
}

#[tokio::test]
async fn bad_credentials_fail_without_leaking_secrets() {
    let env = start().await;
    let slack_token = env
        .s
        .slack_webhook_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let wrong_slack = env
        .s
        .slack_webhook_url
        .replace(&slack_token, "WRONGwrongWRONGwrong0001");
    let sig = env
        .s
        .teams_webhook_url
        .split("sig=")
        .nth(1)
        .unwrap()
        .to_string();
    let wrong_teams = env
        .s
        .teams_webhook_url
        .replace(&sig, "BADSIGNATUREbadsignature0002");
    let wrong_key = "ZZZZzzzzZZZZzzzzZZZZzzzzZZZZzzzz".to_string();
    let secrets = [
        wrong_slack.clone(),
        "WRONGwrongWRONGwrong0001".into(),
        "BADSIGNATUREbadsignature0002".into(),
        wrong_key.clone(),
        "T0SANDBOX1/B0SANDBOX1".into(),
    ];
    let n = env.notifier(Targets {
        slack: Some(wrong_slack.parse().unwrap()),
        teams: Some(wrong_teams.parse().unwrap()),
        pagerduty: Some((
            SecretString::from(wrong_key.clone()),
            Url::parse(&env.s.pagerduty_url).unwrap(),
        )),
    });
    let logs = logs();
    let d = n
        .send(
            &incident(EventKind::IncidentOpened { sev: Sev::Sev1 }),
            &Cancel::new(),
        )
        .await;
    let want = [
        (Channel::Slack, 403, "invalid_token"),
        (
            Channel::Teams,
            401,
            "DirectApiInvalidAuthorizationSignature",
        ),
        (Channel::PagerDuty, 400, "Invalid routing key"),
    ];
    for (c, status, text) in want {
        let x = one(&d, c);
        let e = x.error.as_deref().unwrap();
        assert!(
            !x.ok && x.status == Some(status) && e.contains(text),
            "{x:?}"
        );
        assert_eq!(x.attempts.max(1), 1, "a refusal is not retried: {x:?}");
    }
    let slack_err = one(&d, Channel::Slack).error.clone().unwrap();
    assert!(
        slack_err.contains("https://hooks.slack.test"),
        "{slack_err}"
    );
    let logged = logs.text();
    assert!(
        logged.lines().any(|l| l.contains("WARN")
            && l.contains("Slack notification")
            && l.contains("invalid_token")),
        "failures are logged as warnings"
    );
    let debug = format!("{d:?} {:?}", n);
    for s in &secrets {
        for d in &d {
            assert!(
                !d.error.as_deref().unwrap().contains(s.as_str()),
                "{s} in {d:?}"
            );
        }
        assert!(!logged.contains(s.as_str()), "{s} in the logs:\n{logged}");
        assert!(!debug.contains(s.as_str()), "{s} in Debug output");
    }
}

#[tokio::test]
async fn untrusted_text_stays_inert() {
    let env = start().await;
    let mut e = incident(EventKind::IncidentOpened { sev: Sev::Sev1 });
    e.title = "<!channel> *bold* <@U123>".into();
    e.text = "::set-output name=pwned::1\n<!here> _x_ <https://evil.test|click> & more".into();
    let logs = logs();
    let d = env.notifier(env.all()).send(&e, &Cancel::new()).await;
    assert!(d.iter().all(|d| d.ok), "{d:?}");

    let slack = &env.messages("slack")[0].body;
    let raw = slack.to_string();
    for bad in ["<!channel>", "<@U123>", "<!here>", "<https://evil.test"] {
        assert!(!raw.contains(bad), "{bad} reached Slack unescaped: {raw}");
    }
    assert!(raw.contains("&lt;!channel&gt;") && raw.contains("&lt;@U123&gt;"));
    assert!(raw.contains("&amp; more"));
    assert_eq!(slack["mrkdwn"], false);
    let mut mrkdwn = Vec::new();
    texts_of(slack, "mrkdwn", &mut mrkdwn);
    assert!(mrkdwn.is_empty(), "no mrkdwn text objects: {mrkdwn:?}");
    let mut plain = Vec::new();
    texts_of(slack, "plain_text", &mut plain);
    assert!(plain.iter().any(|t| t.contains("*bold*")));

    let card = &env.messages("teams")[0].body["attachments"][0]["content"];
    let mut blocks = Vec::new();
    texts_of(card, "TextBlock", &mut blocks);
    for t in &blocks {
        assert!(
            !t.contains("bold") && !t.contains("set-output") && !t.contains("channel"),
            "untrusted text in a Markdown TextBlock: {t}"
        );
    }
    let mut runs = Vec::new();
    texts_of(card, "TextRun", &mut runs);
    assert!(runs.iter().any(|r| r.contains("::set-output")));
    assert!(card.get("msteams").unwrap().get("entities").is_none());

    let logged = logs.text();
    assert!(
        !logged.contains("set-output") && !logged.lines().any(|l| l.trim_start().starts_with("::")),
        "untrusted text reached the log:\n{logged}"
    );
}

#[tokio::test]
async fn a_down_endpoint_fails_within_bounded_time() {
    let env = start().await;
    // A closed port: refused at once, retried (nothing was sent), then given up.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let token = "closedPORTsecretTOKEN0003";
    let url: SecretUrl = format!("http://127.0.0.1:{closed}/services/T1/B1/{token}")
        .parse()
        .unwrap();
    let n = env.notifier(Targets {
        slack: Some(url),
        pagerduty: Some((
            SecretString::from("k".repeat(32)),
            Url::parse(&format!("http://127.0.0.1:{closed}")).unwrap(),
        )),
        ..Targets::default()
    });
    let t = Instant::now();
    let d = n
        .send(&incident(EventKind::DeployFailed), &Cancel::new())
        .await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let s = one(&d, Channel::Slack);
    assert!(!s.ok && s.status.is_none() && s.attempts == 3, "{s:?}");
    let e = s.error.as_deref().unwrap();
    assert!(!e.contains(token) && !e.contains("/services"), "{e}");
    assert!(e.contains(&format!("http://127.0.0.1:{closed}")), "{e}");
    let p = one(&d, Channel::PagerDuty);
    assert!(!p.ok, "{p:?}");

    // A black hole (accepts, never answers): the channel timeout ends it.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            conns.push(c);
        }
    });
    let n = Notifier::new(
        env.http.clone(),
        Targets {
            teams: Some(
                format!("http://{addr}/workflows/x?sig=HOLEsecret0004")
                    .parse()
                    .unwrap(),
            ),
            ..Targets::default()
        },
        NotifyPolicy {
            channel_timeout: Duration::from_millis(800),
            ..policy()
        },
    );
    let t = Instant::now();
    let d = n
        .send(&incident(EventKind::DeployFailed), &Cancel::new())
        .await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let x = one(&d, Channel::Teams);
    let e = x.error.as_deref().unwrap();
    assert!(!x.ok && e.contains("no answer within"), "{x:?}");
    assert!(!e.contains("HOLEsecret"), "{e}");
    held.abort();
}
