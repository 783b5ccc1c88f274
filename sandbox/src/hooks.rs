//! Notification receivers: a Slack incoming webhook (`hooks.slack.test`), a
//! Microsoft Teams Workflows webhook (`teams.webhook.test`, the Power
//! Automate "Post to a channel when a webhook request is received" trigger)
//! and the PagerDuty Events API v2 (`events.pagerduty.test`: `/v2/enqueue`
//! and `/v2/change/enqueue`).
//!
//! Each validates the payload the way the real service does and answers in
//! its shape, and **records every body it received** (accepted or not), for
//! tests ([`crate::SandboxHandle::hook_messages`]) and for people
//! (`GET /_sandbox/hooks`, `DELETE /_sandbox/hooks` clears).
//!
//! - Slack: `POST /services/{team}/{bot}/{token}`; `200 ok` (text); `400
//!   invalid_payload` (not JSON, not an object), `400 no_text` (neither
//!   `text` nor `blocks`), `400 invalid_blocks` (a block breaks Block Kit's
//!   limits: header plain text ≤ 150, section text ≤ 3000 and ≤ 10 fields of
//!   ≤ 2000, button text plain ≤ 75 and url ≤ 3000, ≤ 50 blocks), `404
//!   no_service` (unknown team/bot), `403 invalid_token` (wrong token).
//! - Teams: `POST /workflows/{id}/triggers/manual/paths/invoke?…&sig=…`;
//!   `202` with an empty body and `x-ms-workflow-run-id`; `401`
//!   `DirectApiAuthorizationRequired` / `DirectApiInvalidAuthorizationSignature`
//!   (missing or wrong `sig`, unknown workflow); `400 InvalidRequestContent`
//!   when the body is not a `message` with Adaptive Card attachments. The
//!   real trigger accepts anything with 202 and the *flow run* fails later;
//!   the sandbox is stricter on purpose so a wrong card shape fails a test
//!   (a retired O365 `MessageCard` is refused with a message saying so).
//! - PagerDuty: `202 {"status":"success","message":"Event processed",
//!   "dedup_key":…}`; `400 {"status":"invalid event","message":"Event object
//!   is invalid","errors":[…]}` for a routing key that is not 32 characters
//!   or not the sandbox's, a bad `event_action`, a missing `dedup_key` on
//!   resolve/acknowledge, a trigger without `payload.summary` (≤ 1024),
//!   `payload.source` or a valid `payload.severity`. Change events need
//!   `routing_key` and `payload.summary` (≤ 1024), and a `timestamp`, when
//!   given, must be ISO 8601.
//!
//! 429 with `Retry-After`: the ordinary fault table targets these hosts
//! (`FaultSpec::new(FaultKind::Throttle{..}).host("hooks.slack.test")`);
//! a throttled request is answered before it reaches the receiver, so it is
//! not recorded here (the request log shows it as `fault:throttle`).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::{SandboxHandle, random_token};

/// Slack's incoming-webhook host.
pub const SLACK_HOST: &str = "hooks.slack.test";
/// The Teams (Power Automate Workflows) webhook host.
pub const TEAMS_HOST: &str = "teams.webhook.test";
/// PagerDuty's Events API v2 host.
pub const PAGERDUTY_HOST: &str = "events.pagerduty.test";
/// Every receiver host.
pub const HOSTS: [&str; 3] = [SLACK_HOST, TEAMS_HOST, PAGERDUTY_HOST];

const SLACK_TEAM: &str = "T0SANDBOX1";
const SLACK_BOT: &str = "B0SANDBOX1";

/// One body a receiver got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookMessage {
    /// 1, 2, … per sandbox.
    pub seq: u64,
    /// `slack`, `teams`, `pagerduty` (events) or `pagerduty-change`.
    pub service: String,
    /// The request path, without the query (Teams' `sig` lives there).
    pub path: String,
    /// The body as JSON (a string when it was not JSON).
    pub body: Value,
    /// The status the receiver answered.
    pub status: u16,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// The receivers' credentials and what they recorded.
pub(crate) struct Hooks {
    slack_token: String,
    teams_workflow: String,
    teams_sig: String,
    pagerduty_key: String,
    messages: Mutex<Vec<HookMessage>>,
}

impl Hooks {
    pub(crate) fn new() -> Self {
        Hooks {
            slack_token: random_token(24),
            teams_workflow: uuid::Uuid::new_v4().simple().to_string(),
            teams_sig: random_token(43),
            pagerduty_key: random_token(32),
            messages: Mutex::new(Vec::new()),
        }
    }

    /// `https://hooks.slack.test/services/T…/B…/{token}`.
    pub(crate) fn slack_url(&self) -> String {
        format!(
            "https://{SLACK_HOST}/services/{SLACK_TEAM}/{SLACK_BOT}/{}",
            self.slack_token
        )
    }

    /// The Workflows trigger URL, `sig` included.
    pub(crate) fn teams_url(&self) -> String {
        format!(
            "https://{TEAMS_HOST}/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            self.teams_workflow, self.teams_sig
        )
    }

    /// The Events API v2 integration (routing) key: 32 characters.
    pub(crate) fn pagerduty_key(&self) -> &str {
        &self.pagerduty_key
    }

    /// `https://events.pagerduty.test` (the API's base).
    pub(crate) fn pagerduty_url() -> String {
        format!("https://{PAGERDUTY_HOST}")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HookMessage>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, service: &str, req: &Req, status: StatusCode) {
        let body = serde_json::from_slice(&req.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned()));
        let mut m = self.lock();
        let seq = m.len() as u64 + 1;
        m.push(HookMessage {
            seq,
            service: service.to_owned(),
            path: req.path.clone(),
            body,
            status: status.as_u16(),
            at: Utc::now(),
        });
    }
}

/// True for the receivers' hosts.
pub(crate) fn serves(host: &str) -> bool {
    HOSTS.contains(&host)
}

/// Answers a request to one of [`HOSTS`]; returns the response and the
/// request log's target name.
pub(crate) fn handle(shared: &Shared, req: &Req) -> (Resp, String) {
    let hooks = &shared.hooks;
    let (service, resp) = match req.host.as_str() {
        SLACK_HOST => ("slack", slack(hooks, req)),
        TEAMS_HOST => ("teams", teams(hooks, req)),
        _ if req.path.eq_ignore_ascii_case("/v2/change/enqueue") => {
            ("pagerduty-change", pagerduty_change(hooks, req))
        }
        _ => ("pagerduty", pagerduty(hooks, req)),
    };
    hooks.record(service, req, resp.status());
    (resp, format!("hooks:{service}"))
}

// --- Slack -----------------------------------------------------------------

fn slack_error(status: StatusCode, code: &str) -> Resp {
    respond::build(
        status,
        Some("text/html"),
        bytes::Bytes::from(code.to_owned()),
    )
}

fn slack(hooks: &Hooks, req: &Req) -> Resp {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["services", team, bot, token] if *team == SLACK_TEAM && *bot == SLACK_BOT => {
            if *token != hooks.slack_token {
                return slack_error(StatusCode::FORBIDDEN, "invalid_token");
            }
        }
        _ => return slack_error(StatusCode::NOT_FOUND, "no_service"),
    }
    if req.method != Method::POST {
        return slack_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_method");
    }
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(&req.body) else {
        return slack_error(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let text = msg.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = msg.get("blocks");
    let has_blocks = blocks
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    if text.trim().is_empty() && !has_blocks && msg.get("attachments").is_none() {
        return slack_error(StatusCode::BAD_REQUEST, "no_text");
    }
    if let Some(b) = blocks
        && let Err(why) = slack_blocks(b)
    {
        let mut r = slack_error(StatusCode::BAD_REQUEST, "invalid_blocks");
        respond::set_header(&mut r, "x-sandbox-reason", &why);
        return r;
    }
    respond::build(StatusCode::OK, Some("text/html"), bytes::Bytes::from("ok"))
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// A Block Kit text object: `plain_text` or `mrkdwn`, 1..=max characters.
fn text_object(v: Option<&Value>, max: usize, plain_only: bool) -> Result<(), String> {
    let v = v.ok_or("missing text object")?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "plain_text" && (plain_only || kind != "mrkdwn") {
        return Err(format!("text type '{kind}' not allowed here"));
    }
    let n = chars(v.get("text").unwrap_or(&Value::Null));
    if n == 0 || n > max {
        return Err(format!("text must be 1..={max} characters, got {n}"));
    }
    Ok(())
}

fn slack_blocks(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks must be an array")?;
    if blocks.len() > 50 {
        return Err("at most 50 blocks".into());
    }
    for b in blocks {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "header" => text_object(b.get("text"), 150, true)?,
            "section" => {
                let fields = b.get("fields").and_then(Value::as_array);
                if b.get("text").is_none() && fields.is_none() {
                    return Err("a section needs text or fields".into());
                }
                if b.get("text").is_some() {
                    text_object(b.get("text"), 3000, false)?;
                }
                if let Some(f) = fields {
                    if f.is_empty() || f.len() > 10 {
                        return Err("a section has 1..=10 fields".into());
                    }
                    for x in f {
                        text_object(Some(x), 2000, false)?;
                    }
                }
            }
            "context" => {
                let e = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .ok_or("context needs elements")?;
                if e.is_empty() || e.len() > 10 {
                    return Err("context has 1..=10 elements".into());
                }
                for x in e {
                    if x.get("type").and_then(Value::as_str) != Some("image") {
                        text_object(Some(x), 3000, false)?;
                    }
                }
            }
            "actions" => {
                let e = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .ok_or("actions needs elements")?;
                if e.is_empty() || e.len() > 25 {
                    return Err("actions has 1..=25 elements".into());
                }
                for x in e {
                    if x.get("type").and_then(Value::as_str) == Some("button") {
                        text_object(x.get("text"), 75, true)?;
                        if let Some(u) = x.get("url") {
                            let n = chars(u);
                            if n == 0 || n > 3000 {
                                return Err("button url must be 1..=3000 characters".into());
                            }
                        }
                    }
                }
            }
            "divider" | "image" | "rich_text" | "input" | "file" | "video" => {}
            other => return Err(format!("unknown block type '{other}'")),
        }
    }
    Ok(())
}

// --- Teams -----------------------------------------------------------------

fn logic_error(status: StatusCode, code: &str, message: &str) -> Resp {
    respond::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn teams(hooks: &Hooks, req: &Req) -> Resp {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let id = match segs.as_slice() {
        ["workflows", id, "triggers", "manual", "paths", "invoke"] => *id,
        _ => {
            return logic_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested resource was not found.",
            );
        }
    };
    let Some(sig) = req.query_param("sig") else {
        return logic_error(
            StatusCode::UNAUTHORIZED,
            "DirectApiAuthorizationRequired",
            "The request must be authenticated only by Shared Access scheme.",
        );
    };
    if sig != hooks.teams_sig || id != hooks.teams_workflow {
        return logic_error(
            StatusCode::UNAUTHORIZED,
            "DirectApiInvalidAuthorizationSignature",
            "The provided callback url signature is not valid.",
        );
    }
    if req.method != Method::POST {
        return logic_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "TriggerRequestMethodNotValid",
            "The HTTP method for this request is not valid: expected 'Post'.",
        );
    }
    if let Err(why) = adaptive_card_message(&req.body) {
        return logic_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &why);
    }
    let mut r = respond::empty(StatusCode::ACCEPTED);
    respond::set_header(
        &mut r,
        "x-ms-workflow-run-id",
        &format!("08584{}", random_token(20).to_ascii_uppercase()),
    );
    r
}

fn adaptive_card_message(body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("@type").and_then(Value::as_str) == Some("MessageCard") {
        return Err("MessageCard (Office 365 connector) payloads are retired: send a message with an Adaptive Card attachment".into());
    }
    if v.get("type").and_then(Value::as_str) != Some("message") {
        return Err("'type' must be 'message'".into());
    }
    let atts = v
        .get("attachments")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("'attachments' must be a non-empty array")?;
    for a in atts {
        if a.get("contentType").and_then(Value::as_str)
            != Some("application/vnd.microsoft.card.adaptive")
        {
            return Err(
                "attachment 'contentType' must be 'application/vnd.microsoft.card.adaptive'".into(),
            );
        }
        let c = a.get("content").ok_or("attachment 'content' is missing")?;
        if c.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
            return Err("content 'type' must be 'AdaptiveCard'".into());
        }
        let version = c.get("version").and_then(Value::as_str).unwrap_or("");
        if !matches!(version, "1.0" | "1.1" | "1.2" | "1.3" | "1.4" | "1.5") {
            return Err(format!(
                "content 'version' must be 1.0..1.5 (Teams), got '{version}'"
            ));
        }
        let body = c
            .get("body")
            .and_then(Value::as_array)
            .ok_or("content 'body' must be an array")?;
        for el in body {
            if el.get("type").and_then(Value::as_str).is_none() {
                return Err("every body element needs a 'type'".into());
            }
        }
        if let Some(actions) = c.get("actions") {
            for act in actions.as_array().ok_or("'actions' must be an array")? {
                if act.get("type").and_then(Value::as_str) == Some("Action.OpenUrl")
                    && act.get("url").and_then(Value::as_str).is_none()
                {
                    return Err("Action.OpenUrl needs a 'url'".into());
                }
            }
        }
    }
    Ok(())
}

// --- PagerDuty -------------------------------------------------------------

fn pd_invalid(errors: Vec<String>) -> Resp {
    respond::json(
        StatusCode::BAD_REQUEST,
        &json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

fn pd_routing_key(hooks: &Hooks, v: &Value, errors: &mut Vec<String>) {
    match v.get("routing_key").and_then(Value::as_str) {
        None | Some("") => errors.push("'routing_key' is missing or blank".into()),
        Some(k) if k.chars().count() != 32 => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into())
        }
        Some(k) if k != hooks.pagerduty_key => errors.push("Invalid routing key".into()),
        Some(_) => {}
    }
}

fn pd_body(req: &Req) -> Result<Value, Resp> {
    if req.method != Method::POST {
        return Err(respond::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"status": "invalid request", "message": "Method not allowed"}),
        ));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(respond::json(
            StatusCode::BAD_REQUEST,
            &json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["Could not parse the request body as a JSON object"]}),
        )),
    }
}

fn pd_summary(payload: Option<&Value>, errors: &mut Vec<String>) {
    match payload
        .and_then(|p| p.get("summary"))
        .and_then(Value::as_str)
    {
        None | Some("") => errors.push("'payload.summary' is missing or blank".into()),
        Some(s) if s.chars().count() > 1024 => errors.push(
            "Length of 'payload.summary' is incorrect (should be at most 1024 characters)".into(),
        ),
        Some(_) => {}
    }
}

fn pd_links(v: &Value, errors: &mut Vec<String>) {
    if let Some(links) = v.get("links") {
        match links.as_array() {
            Some(ls) => {
                for l in ls {
                    if l.get("href").and_then(Value::as_str).is_none() {
                        errors.push("'links[].href' is missing".into());
                    }
                }
            }
            None => errors.push("'links' must be an array".into()),
        }
    }
}

fn pagerduty(hooks: &Hooks, req: &Req) -> Resp {
    if !req.path.eq_ignore_ascii_case("/v2/enqueue") {
        return respond::json(
            StatusCode::NOT_FOUND,
            &json!({"status": "not found", "message": "Not found"}),
        );
    }
    let v = match pd_body(req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    pd_routing_key(hooks, &v, &mut errors);
    let action = v.get("event_action").and_then(Value::as_str).unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')".into());
    }
    let dedup = v.get("dedup_key").and_then(Value::as_str);
    if dedup.is_some_and(|d| d.chars().count() > 255) {
        errors.push("Length of 'dedup_key' is incorrect (should be at most 255 characters)".into());
    }
    if matches!(action, "acknowledge" | "resolve") && dedup.is_none_or(str::is_empty) {
        errors.push("'dedup_key' is missing or blank".into());
    }
    if action == "trigger" {
        let payload = v.get("payload");
        if payload.is_none_or(|p| !p.is_object()) {
            errors.push("'payload' is missing or not an object".into());
        }
        pd_summary(payload, &mut errors);
        if payload
            .and_then(|p| p.get("source"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push("'payload.source' is missing or blank".into());
        }
        let sev = payload
            .and_then(|p| p.get("severity"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(sev, "critical" | "error" | "warning" | "info") {
            errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')".into());
        }
    }
    pd_links(&v, &mut errors);
    if !errors.is_empty() {
        return pd_invalid(errors);
    }
    let key = dedup
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    respond::json(
        StatusCode::ACCEPTED,
        &json!({"status": "success", "message": "Event processed", "dedup_key": key}),
    )
}

fn pagerduty_change(hooks: &Hooks, req: &Req) -> Resp {
    let v = match pd_body(req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    pd_routing_key(hooks, &v, &mut errors);
    let payload = v.get("payload");
    if payload.is_none_or(|p| !p.is_object()) {
        errors.push("'payload' is missing or not an object".into());
    }
    pd_summary(payload, &mut errors);
    if let Some(ts) = payload.and_then(|p| p.get("timestamp"))
        && ts
            .as_str()
            .is_none_or(|t| DateTime::parse_from_rfc3339(t).is_err())
    {
        errors.push("'payload.timestamp' must be an ISO 8601 date-time".into());
    }
    pd_links(&v, &mut errors);
    if !errors.is_empty() {
        return pd_invalid(errors);
    }
    respond::json(
        StatusCode::ACCEPTED,
        &json!({"status": "success", "message": "Change event processed"}),
    )
}

// --- control and handle ----------------------------------------------------

/// `GET /_sandbox/hooks[?service=slack]` lists the recorded messages;
/// `DELETE /_sandbox/hooks` clears them.
pub(crate) fn handle_control(shared: &Shared, req: &Req) -> Resp {
    match req.method {
        Method::GET => {
            let service = req.query_param("service");
            let messages: Vec<HookMessage> = shared
                .hooks
                .lock()
                .iter()
                .filter(|m| service.is_none_or(|s| m.service == s))
                .cloned()
                .collect();
            respond::json(StatusCode::OK, &json!({"messages": messages}))
        }
        Method::DELETE => {
            shared.hooks.lock().clear();
            respond::empty(StatusCode::NO_CONTENT)
        }
        _ => respond::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "use GET or DELETE"}),
        ),
    }
}

/// The notification receivers.
impl SandboxHandle {
    /// Every body the Slack, Teams and PagerDuty receivers got, in order.
    pub fn hook_messages(&self) -> Vec<HookMessage> {
        self.shared.hooks.lock().clone()
    }

    /// Forgets the recorded bodies.
    pub fn clear_hook_messages(&self) {
        self.shared.hooks.lock().clear();
    }

    /// The Slack incoming-webhook URL (secret token in the path).
    pub fn slack_webhook_url(&self) -> String {
        self.shared.hooks.slack_url()
    }

    /// The Teams Workflows webhook URL (`sig` in the query).
    pub fn teams_webhook_url(&self) -> String {
        self.shared.hooks.teams_url()
    }

    /// The PagerDuty Events API v2 routing key (32 characters).
    pub fn pagerduty_routing_key(&self) -> String {
        self.shared.hooks.pagerduty_key().to_owned()
    }

    /// The PagerDuty Events API base URL (`https://events.pagerduty.test`).
    pub fn pagerduty_url(&self) -> String {
        Hooks::pagerduty_url()
    }
}
