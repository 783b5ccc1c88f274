//! PagerDuty Events API v2: alert events (`POST {base}/v2/enqueue`, trigger
//! and resolve) for incidents and change events (`POST {base}/v2/change/
//! enqueue`) for deploys.

use serde_json::{Value, json};
use url::Url;

use super::{Event, EventKind};
use crate::text::clip;

/// PagerDuty's Events API (US service region). The EU region is
/// `https://events.eu.pagerduty.com`.
pub const DEFAULT_BASE: &str = "https://events.pagerduty.com";

/// The longest `payload.summary` PagerDuty accepts.
pub const SUMMARY_MAX: usize = 1024;

/// The longest `dedup_key` PagerDuty accepts.
pub const DEDUP_KEY_MAX: usize = 255;

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Message {
    /// The endpoint.
    pub url: Url,
    /// The JSON body (holds the routing key: never log it).
    pub body: Value,
    /// True for alert events (a `dedup_key` makes them safe to repeat).
    pub dedup: bool,
}

/// The alert's dedup key: `expedite:{service}:{incident}`, or
/// `expedite:{service}` without an incident id. Stable across runs and
/// attempts, so a re-run does not page twice and a resolve finds its
/// trigger. At most [`DEDUP_KEY_MAX`] characters.
pub fn dedup_key(event: &Event) -> String {
    let clean = |s: &str| -> String {
        s.trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let key = match &event.incident {
        Some(i) if !i.trim().is_empty() => {
            format!("expedite:{}:{}", clean(&event.service), clean(i))
        }
        _ => format!("expedite:{}", clean(&event.service)),
    };
    key.chars().take(DEDUP_KEY_MAX).collect()
}

fn summary(event: &Event) -> String {
    let version = event
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    clip(
        &format!(
            "{}: {}{version} — {}",
            event.kind.label(),
            event.service,
            event.title
        ),
        SUMMARY_MAX,
    )
}

fn details(event: &Event) -> Value {
    json!({
        "event": event.kind.name(),
        "service": event.service,
        "version": event.version,
        "incident": event.incident,
        "run": event.run,
        "text": clip(&event.text, 4000),
        "at": event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn links(event: &Event) -> Value {
    match event.link() {
        Some(u) => json!([{"href": u.as_str(), "text": "Open in GitHub"}]),
        None => json!([]),
    }
}

fn endpoint(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_string();
    u.set_path(&format!("{prefix}/{path}"));
    u.set_query(None);
    u
}

/// The request for `event`, or `None` when PagerDuty does not take it (see
/// the module docs of [`crate::notify`]).
pub fn message(event: &Event, routing_key: &str, base: &Url) -> Option<Message> {
    let alert = |action: &str, payload: Option<Value>| {
        let mut body = json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key(event),
            "client": "expedite",
            "links": links(event),
        });
        if let Some(link) = event.link() {
            body["client_url"] = json!(link.as_str());
        }
        if let Some(p) = payload {
            body["payload"] = p;
        }
        Message {
            url: endpoint(base, "v2/enqueue"),
            body,
            dedup: true,
        }
    };
    match event.kind {
        EventKind::IncidentOpened { sev } => Some(alert(
            "trigger",
            Some(json!({
                "summary": summary(event),
                "source": event.service,
                "severity": sev.pagerduty(),
                "component": event.service,
                "group": "expedite",
                "class": "incident",
                "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "custom_details": details(event),
            })),
        )),
        EventKind::IncidentResolved => Some(alert("resolve", None)),
        EventKind::DeployStarted
        | EventKind::DeploySucceeded
        | EventKind::DeployFailed
        | EventKind::RolledBack
        | EventKind::RollbackFailed
        | EventKind::DeployInterrupted
        | EventKind::CanaryTripped => Some(Message {
            url: endpoint(base, "v2/change/enqueue"),
            body: json!({
                "routing_key": routing_key,
                "payload": {
                    "summary": summary(event),
                    "source": event.service,
                    "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "custom_details": details(event),
                },
                "links": links(event),
            }),
            dedup: false,
        }),
        EventKind::IncidentUpdated | EventKind::CherryPickConflict => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Sev;

    fn base() -> Url {
        Url::parse(DEFAULT_BASE).unwrap()
    }

    #[test]
    fn trigger_and_resolve_share_a_run_independent_key() {
        let mut open = Event::new(
            EventKind::IncidentOpened { sev: Sev::Sev0 },
            "payments",
            "x".repeat(2000),
            "contoso/payments#7.1",
        );
        open.incident = Some("INC-4521".into());
        let mut rerun = open.clone();
        rerun.run = "contoso/payments#7.2".into();
        let mut resolved = open.clone();
        resolved.kind = EventKind::IncidentResolved;
        let t = message(&open, "k".repeat(32).as_str(), &base()).unwrap();
        let r = message(&resolved, "k".repeat(32).as_str(), &base()).unwrap();
        assert_eq!(t.url.as_str(), "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(t.body["dedup_key"], "expedite:payments:INC-4521");
        assert_eq!(t.body["dedup_key"], r.body["dedup_key"]);
        assert_eq!(dedup_key(&rerun), dedup_key(&open));
        assert_eq!(t.body["payload"]["severity"], "critical");
        assert!(
            t.body["payload"]["summary"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= SUMMARY_MAX
        );
        assert!(r.body.get("payload").is_none());
    }

    #[test]
    fn deploys_are_change_events_and_updates_are_not_sent() {
        let e = Event::new(
            EventKind::DeploySucceeded,
            "payments",
            "2.4.1 live",
            "r#1.1",
        );
        let m = message(&e, "k", &Url::parse("https://pd.test/base/").unwrap()).unwrap();
        assert_eq!(m.url.as_str(), "https://pd.test/base/v2/change/enqueue");
        assert!(!m.dedup && m.body.get("event_action").is_none());
        let u = Event::new(EventKind::IncidentUpdated, "payments", "t", "r#1.1");
        assert!(message(&u, "k", &base()).is_none());
    }
}
