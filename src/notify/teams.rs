//! The Microsoft Teams Workflows webhook body: a `message` with one
//! Adaptive Card (1.4) attachment — what Power Automate's "Post to a channel
//! when a webhook request is received" template posts. Office 365 connector
//! `MessageCard`s are retired and never sent.
//!
//! `TextBlock` renders a Markdown subset, so only fixed labels go into
//! `TextBlock`s; every untrusted or variable value is a `TextRun` inside a
//! `RichTextBlock`, which Teams shows as plain text. No `msteams.entities`
//! are sent, so `<at>…</at>` in the text mentions nobody.

use serde_json::{Value, json};

use super::{Event, Tone};
use crate::text::clip;

/// The `contentType` of an Adaptive Card attachment.
pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

fn run(text: String) -> Value {
    json!({"type": "TextRun", "text": text})
}

fn fact(label: &str, value: &str) -> Value {
    json!({
        "type": "RichTextBlock",
        "spacing": "None",
        "inlines": [
            {"type": "TextRun", "text": format!("{label}: "), "weight": "Bolder"},
            run(clip(value, 500)),
        ]
    })
}

/// The webhook body for `event`.
pub fn payload(event: &Event) -> Value {
    let color = match event.kind.tone() {
        Tone::Bad => "Attention",
        Tone::Warning => "Warning",
        Tone::Good => "Good",
        Tone::Info => "Accent",
    };
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": format!("{} {}", event.kind.emoji(), event.kind.label()),
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
            "wrap": true,
        }),
        json!({
            "type": "RichTextBlock",
            "inlines": [{
                "type": "TextRun",
                "text": clip(&event.title, 300),
                "weight": "Bolder",
                "size": "Large",
            }]
        }),
    ];
    if !event.text.trim().is_empty() {
        body.push(json!({
            "type": "RichTextBlock",
            "inlines": [run(clip(&event.text, 4000))],
        }));
    }
    body.push(fact("Service", &event.service));
    if let Some(v) = &event.version {
        body.push(fact("Version", v));
    }
    if let Some(i) = &event.incident {
        body.push(fact("Incident", i));
    }
    body.push(fact("Run", &event.run));
    body.push(fact(
        "At",
        &event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if let Some(link) = event.link() {
        card["actions"] = json!([{
            "type": "Action.OpenUrl",
            "title": "Open",
            "url": link.as_str(),
        }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": ADAPTIVE_CARD,
            "contentUrl": null,
            "content": card,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::EventKind;

    #[test]
    fn untrusted_text_only_in_text_runs() {
        let mut e = Event::new(
            EventKind::DeployFailed,
            "payments",
            "**x** <at>all</at>",
            "r#1.1",
        );
        e.text = "[click](https://evil.test) *bold*".into();
        e.url =
            Some(url::Url::parse("https://github.test/contoso/payments/actions/runs/7").unwrap());
        let p = payload(&e);
        let card = &p["attachments"][0]["content"];
        assert_eq!(p["attachments"][0]["contentType"], ADAPTIVE_CARD);
        assert_eq!(card["version"], "1.4");
        for block in card["body"].as_array().unwrap() {
            if block["type"] == "TextBlock" {
                let t = block["text"].as_str().unwrap();
                assert!(!t.contains("bold") && !t.contains("**x**"), "{t}");
            }
        }
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert!(p.get("@type").is_none() && card.get("msteams").unwrap().get("entities").is_none());
    }
}
