//! The Slack incoming-webhook message: `text` (the notification fallback)
//! and Block Kit `blocks` — a header, a section with the details and the
//! fields, a context line, and a link button to the run.
//!
//! Untrusted text is `&<>`-escaped (so `<!channel>`, `<@U123>` and
//! `<https://x|label>` are shown, not expanded) and only ever placed in
//! `plain_text` objects (so `*bold*` stays literal); `"mrkdwn": false` keeps
//! the fallback plain too. Block Kit limits are respected by truncation:
//! header 150, section text 3000, field 2000, button text 75, url 3000.

use serde_json::{Value, json};

use super::Event;
use crate::text::clip;

/// Escapes the three characters Slack treats as control characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped and cut to at most `max` characters, never inside an entity.
fn fit(s: &str, max: usize) -> String {
    let escaped = escape(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    // Cut the raw text until its escaped form fits (with the ellipsis).
    let mut raw: String = s.chars().take(max).collect();
    while escape(&raw).chars().count() > max.saturating_sub(1) && !raw.is_empty() {
        raw.pop();
    }
    format!("{}…", escape(&raw))
}

fn plain(text: String) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": false})
}

/// The webhook body for `event`.
pub fn payload(event: &Event) -> Value {
    let label = event.kind.label();
    let header = fit(
        &format!("{} {label}: {}", event.kind.emoji(), event.title),
        150,
    );
    let version = event
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let fallback = fit(
        &format!("{label}: {}{version} — {}", event.service, event.title),
        3000,
    );

    let mut fields = vec![
        plain(fit(&format!("Service: {}", event.service), 2000)),
        plain(fit(&format!("Event: {label}"), 2000)),
    ];
    if let Some(v) = &event.version {
        fields.push(plain(fit(&format!("Version: {v}"), 2000)));
    }
    if let Some(i) = &event.incident {
        fields.push(plain(fit(&format!("Incident: {i}"), 2000)));
    }
    fields.push(plain(fit(&format!("Run: {}", event.run), 2000)));

    let mut section = json!({"type": "section", "fields": fields});
    if !event.text.trim().is_empty() {
        section["text"] = plain(fit(&event.text, 3000));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": plain(header)}),
        section,
        json!({"type": "context", "elements": [plain(fit(
            &format!("expedite · {} · {}", event.run, event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            3000,
        ))]}),
    ];
    if let Some(link) = event.link()
        && link.as_str().len() <= 3000
    {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "action_id": "expedite-open",
                "text": plain(clip("Open", 75)),
                "url": link.as_str(),
            }]
        }));
    }
    json!({
        "text": fallback,
        "mrkdwn": false,
        "unfurl_links": false,
        "unfurl_media": false,
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{EventKind, Sev};

    #[test]
    fn mentions_and_markup_are_inert() {
        let mut e = Event::new(
            EventKind::IncidentOpened { sev: Sev::Sev1 },
            "payments",
            "<!channel> orders & <@U123>",
            "contoso/payments#7.1",
        );
        e.text = "*bold* <https://evil.test|click> ::set-output name=x::y".into();
        let p = payload(&e);
        let s = p.to_string();
        assert!(!s.contains("<!channel>") && !s.contains("<@U123>") && !s.contains("<https"));
        assert!(s.contains("&lt;!channel&gt;") && s.contains("&amp;"));
        assert_eq!(p["mrkdwn"], false);
        // Every text object is plain text.
        fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
            f(v);
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
                Value::Object(o) => o.values().for_each(|x| walk(x, f)),
                _ => {}
            }
        }
        walk(&p["blocks"], &mut |v| {
            if let Some(t) = v.get("type").and_then(Value::as_str) {
                assert_ne!(t, "mrkdwn");
            }
        });
    }

    #[test]
    fn long_text_fits_the_limits_without_cutting_entities() {
        let mut e = Event::new(
            EventKind::DeployFailed,
            "payments",
            "<".repeat(400),
            "r#1.1",
        );
        e.text = "&".repeat(5000);
        let p = payload(&e);
        let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= 150, "{}", header.len());
        assert!(header.ends_with("&lt;…"), "{header}");
        let text = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= 3000 && text.ends_with("&amp;…"));
    }
}
