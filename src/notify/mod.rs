//! Incident and deploy notifications: Slack (incoming webhook), Microsoft
//! Teams (Workflows webhook, Adaptive Card) and PagerDuty (Events API v2:
//! alert events for incidents, change events for deploys).
//!
//! A notification never fails a deploy: [`Notifier::send`] returns one
//! [`Delivery`] per channel it tried, logs a warning for each failure, and
//! bounds each channel's time ([`NotifyPolicy::channel_timeout`]). Channels
//! are sent concurrently.
//!
//! # What goes where
//!
//! | event | Slack, Teams | PagerDuty |
//! |---|---|---|
//! | `IncidentOpened{sev}` | message | `trigger` (severity from sev) |
//! | `IncidentUpdated` | message | — (the page is already open) |
//! | `IncidentResolved` | message | `resolve` |
//! | `DeployStarted` … `CanaryTripped` | message | change event |
//! | `CherryPickConflict` | message | — |
//!
//! PagerDuty's `dedup_key` is [`pagerduty::dedup_key`]: `expedite:{service}:
//! {incident}` (or `expedite:{service}` without an incident id). It does not
//! depend on the run, so a re-run's trigger lands on the alert already open
//! instead of paging again, and the resolve closes the alert the trigger
//! opened.
//!
//! # Retries (see [`crate::http`])
//!
//! A webhook POST is not idempotent: repeating one after a 5xx or a timeout
//! can post the message twice. But two failures mean "not processed": a
//! **429** (the service refused it; `Retry-After` says when to come back) and
//! a **failed connect** (nothing was sent). So Slack, Teams and PagerDuty
//! *change events* (which have no dedup key) go through [`post_safely`]:
//! retried on 429 (honouring `Retry-After`, capped by
//! [`RetryPolicy::max_delay`]) and on connect failures, sent once otherwise.
//! [`crate::http::send`] cannot express that (its `Once` never retries and its
//! error drops the headers `Retry-After` is in), so this module drives the
//! client itself with the same client, backoff shape and `Retry-After`
//! parser. PagerDuty *alert events* carry a `dedup_key`, which makes them
//! idempotent on PagerDuty's side: they use [`crate::http::send`] with
//! [`Idempotency::Idempotent`] (429, 5xx, timeouts all retried).
//!
//! # Secrets
//!
//! A Slack or Teams webhook URL *is* a credential (the token is the path,
//! the Teams `sig` the query), and so is a PagerDuty routing key. URLs are
//! held as [`SecretUrl`] (its `Debug` and `Display` show scheme and host
//! only) and keys as [`SecretString`]; errors name a webhook by scheme and
//! host only, reqwest's errors are stripped of their URL, and every error
//! text is scrubbed of the secret's parts before it is returned or logged.
//!
//! # Untrusted text
//!
//! `title` and `text` come from people (incident titles, commit messages).
//! Slack: `&`, `<`, `>` are escaped (so `<!channel>` and `<@U123>` are
//! inert), every text object carrying them is `plain_text` (no mrkdwn, so
//! `*bold*` stays literal) and the message sets `"mrkdwn": false`. Teams:
//! Adaptive Card `TextBlock`s render a Markdown subset, so untrusted text
//! goes only into `RichTextBlock` → `TextRun`s, which are plain text, and no
//! `msteams.entities` are sent (no mentions). PagerDuty renders plain text.
//! Links are only ever `http`/`https`. This module never logs `title` or
//! `text`, so a `::set-output`-style line cannot reach the runner's log.

pub mod pagerduty;
pub mod slack;
pub mod teams;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::cancel::Cancel;
use crate::http::{self, HttpError, Idempotency, RetryPolicy};

/// Incident severity, SEV0 (worst) to SEV3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sev {
    /// Critical: everything down, or data loss.
    Sev0,
    /// Major: a core feature broken for many.
    Sev1,
    /// Minor: degraded, with a workaround.
    Sev2,
    /// Low.
    Sev3,
}

impl Sev {
    /// PagerDuty's `payload.severity`: sev0→critical, sev1→error,
    /// sev2→warning, sev3→info.
    pub fn pagerduty(self) -> &'static str {
        match self {
            Sev::Sev0 => "critical",
            Sev::Sev1 => "error",
            Sev::Sev2 => "warning",
            Sev::Sev3 => "info",
        }
    }

    /// `SEV0` … `SEV3`.
    pub fn label(self) -> &'static str {
        match self {
            Sev::Sev0 => "SEV0",
            Sev::Sev1 => "SEV1",
            Sev::Sev2 => "SEV2",
            Sev::Sev3 => "SEV3",
        }
    }
}

impl fmt::Display for Sev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Sev {
    type Err = String;

    /// `sev0`…`sev3` (any case) or `0`…`3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.strip_prefix("sev").unwrap_or(&t) {
            "0" => Ok(Sev::Sev0),
            "1" => Ok(Sev::Sev1),
            "2" => Ok(Sev::Sev2),
            "3" => Ok(Sev::Sev3),
            _ => Err(format!(
                "'{s}' is not a severity; use sev0, sev1, sev2 or sev3"
            )),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An incident was declared.
    IncidentOpened {
        /// How bad.
        sev: Sev,
    },
    /// News on an open incident.
    IncidentUpdated,
    /// The incident is over.
    IncidentResolved,
    /// A hotfix deploy began.
    DeployStarted,
    /// The hotfix is live.
    DeploySucceeded,
    /// The deploy failed (and was left or put back as it was).
    DeployFailed,
    /// The previous version was restored.
    RolledBack,
    /// A rollback did not complete (production needs a human).
    RollbackFailed,
    /// A deploy was stopped (a signal, the deadline, an emergency
    /// rollback) and production was put back.
    DeployInterrupted,
    /// The canary breaker tripped (rollback follows).
    CanaryTripped,
    /// The hotfix did not cherry-pick cleanly onto a release branch.
    CherryPickConflict,
}

/// How an event should look: colours and emoji.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something broke.
    Bad,
    /// Needs attention.
    Warning,
    /// Went well.
    Good,
    /// For information.
    Info,
}

impl EventKind {
    /// A short fixed label (`Incident opened (SEV1)`, `Deploy failed`).
    pub fn label(&self) -> String {
        match self {
            EventKind::IncidentOpened { sev } => format!("Incident opened ({sev})"),
            EventKind::IncidentUpdated => "Incident updated".into(),
            EventKind::IncidentResolved => "Incident resolved".into(),
            EventKind::DeployStarted => "Deploy started".into(),
            EventKind::DeploySucceeded => "Deploy succeeded".into(),
            EventKind::DeployFailed => "Deploy failed".into(),
            EventKind::RolledBack => "Rolled back".into(),
            EventKind::RollbackFailed => "Rollback failed".into(),
            EventKind::DeployInterrupted => "Deploy interrupted".into(),
            EventKind::CanaryTripped => "Canary tripped".into(),
            EventKind::CherryPickConflict => "Cherry-pick conflict".into(),
        }
    }

    /// A stable machine name (`incident_opened`, `deploy_failed`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::IncidentOpened { .. } => "incident_opened",
            EventKind::IncidentUpdated => "incident_updated",
            EventKind::IncidentResolved => "incident_resolved",
            EventKind::DeployStarted => "deploy_started",
            EventKind::DeploySucceeded => "deploy_succeeded",
            EventKind::DeployFailed => "deploy_failed",
            EventKind::RolledBack => "rolled_back",
            EventKind::RollbackFailed => "rollback_failed",
            EventKind::DeployInterrupted => "deploy_interrupted",
            EventKind::CanaryTripped => "canary_tripped",
            EventKind::CherryPickConflict => "cherry_pick_conflict",
        }
    }

    /// How it should look.
    pub fn tone(&self) -> Tone {
        match self {
            EventKind::IncidentOpened { .. }
            | EventKind::DeployFailed
            | EventKind::RollbackFailed
            | EventKind::CanaryTripped => Tone::Bad,
            EventKind::RolledBack
            | EventKind::DeployInterrupted
            | EventKind::CherryPickConflict => Tone::Warning,
            EventKind::IncidentResolved | EventKind::DeploySucceeded => Tone::Good,
            EventKind::IncidentUpdated | EventKind::DeployStarted => Tone::Info,
        }
    }

    /// An emoji for chat titles.
    pub fn emoji(&self) -> &'static str {
        match self {
            EventKind::IncidentOpened { .. } => "🚨",
            EventKind::IncidentUpdated => "📝",
            EventKind::IncidentResolved => "✅",
            EventKind::DeployStarted => "🚀",
            EventKind::DeploySucceeded => "✅",
            EventKind::DeployFailed => "❌",
            EventKind::RolledBack => "↩️",
            EventKind::RollbackFailed => "🆘",
            EventKind::DeployInterrupted => "⏹️",
            EventKind::CanaryTripped => "🛑",
            EventKind::CherryPickConflict => "⚠️",
        }
    }
}

/// One notification.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The service (`payments`); PagerDuty's `source` and `component`.
    pub service: String,
    /// The version deployed or affected.
    pub version: Option<String>,
    /// One line. Untrusted: escaped per channel.
    pub title: String,
    /// Details. Untrusted: may hold markdown or mentions; escaped per channel.
    pub text: String,
    /// The run, pull request or incident to open.
    pub url: Option<Url>,
    /// Incident id (`INC-4521`): part of PagerDuty's dedup key.
    pub incident: Option<String>,
    /// `owner/repo#run.attempt`.
    pub run: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl Event {
    /// An event happening now, without version, text, link or incident.
    pub fn new(
        kind: EventKind,
        service: impl Into<String>,
        title: impl Into<String>,
        run: impl Into<String>,
    ) -> Self {
        Event {
            kind,
            service: service.into(),
            version: None,
            title: title.into(),
            text: String::new(),
            url: None,
            incident: None,
            run: run.into(),
            at: Utc::now(),
        }
    }

    /// The link, when it is `http` or `https` (nothing else is ever sent).
    pub fn link(&self) -> Option<&Url> {
        self.url
            .as_ref()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
    }
}

/// A URL that is a credential (a webhook URL): shown as scheme and host only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: Url) -> Self {
        SecretUrl(url)
    }

    /// The full URL, to send to. Never log it.
    pub fn expose_secret(&self) -> &Url {
        &self.0
    }

    /// `https://hooks.slack.com` — safe for logs and errors.
    pub fn redacted(&self) -> String {
        redact_to_origin(&self.0)
    }

    /// Substrings an error text must not contain: the URL, its path and
    /// query, and each path segment or query value long enough to be a token.
    fn secret_parts(&self) -> Vec<String> {
        let u = &self.0;
        let mut parts = vec![u.as_str().to_string(), u.path().to_string()];
        if let Some(q) = u.query() {
            parts.push(q.to_string());
        }
        parts.extend(
            u.path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 8)
                .map(str::to_string),
        );
        parts.extend(
            u.query_pairs()
                .map(|(_, v)| v.into_owned())
                .filter(|v| v.len() >= 8),
        );
        parts
    }
}

impl FromStr for SecretUrl {
    type Err = String;

    /// An `https` URL (or `http` to a loopback host, for local receivers).
    /// The error never repeats the input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let u = Url::parse(s.trim()).map_err(|e| format!("not a URL ({e})"))?;
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
            return Err(format!(
                "a webhook URL must be https, got {}",
                redact_to_origin(&u)
            ));
        }
        Ok(SecretUrl(u))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({}/***)", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/***", self.redacted())
    }
}

fn redact_to_origin(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        _ => format!("{}://", u.scheme()),
    }
}

/// Where notifications go. Every target is optional.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Slack incoming-webhook URL.
    pub slack: Option<SecretUrl>,
    /// Teams Workflows ("Post to a channel when a webhook request is
    /// received") URL.
    pub teams: Option<SecretUrl>,
    /// PagerDuty Events API v2 routing (integration) key and the API's base
    /// URL ([`pagerduty::DEFAULT_BASE`], or the EU one, or a sandbox).
    pub pagerduty: Option<(SecretString, Url)>,
}

/// Time bounds.
#[derive(Debug, Clone, Copy)]
pub struct NotifyPolicy {
    /// Longest one channel may take, retries included.
    pub channel_timeout: Duration,
    /// Attempts, backoff, the cap on `Retry-After`, the retry budget.
    pub retry: RetryPolicy,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            channel_timeout: Duration::from_secs(30),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(10),
                budget: Duration::from_secs(25),
            },
        }
    }
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Slack incoming webhook.
    Slack,
    /// Teams Workflows webhook.
    Teams,
    /// PagerDuty Events API v2.
    PagerDuty,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Slack => "Slack",
            Channel::Teams => "Teams",
            Channel::PagerDuty => "PagerDuty",
        })
    }
}

/// The outcome on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which channel.
    pub channel: Channel,
    /// Accepted by the service.
    pub ok: bool,
    /// The last HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Why it failed (no secrets in it).
    pub error: Option<String>,
    /// Requests sent (or tried); 0 when not known (the channel timed out,
    /// or a PagerDuty alert event failed after `http::send`'s retries).
    pub attempts: u32,
    /// PagerDuty alert events: the dedup key PagerDuty confirmed (or sent).
    pub dedup_key: Option<String>,
}

/// Sends [`Event`]s to the configured [`Targets`].
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    targets: Targets,
    policy: NotifyPolicy,
}

impl Notifier {
    /// A notifier using `http` (built by [`crate::http::client`]).
    pub fn new(http: reqwest::Client, targets: Targets, policy: NotifyPolicy) -> Self {
        Notifier {
            http,
            targets,
            policy,
        }
    }

    /// True when no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.slack.is_none()
            && self.targets.teams.is_none()
            && self.targets.pagerduty.is_none()
    }

    /// Sends `event` to every configured channel that takes it (see the
    /// module docs), concurrently, each bounded by
    /// [`NotifyPolicy::channel_timeout`]. Failures are logged as warnings and
    /// returned; they are never errors. `cancel` only cuts retry waits
    /// short: the first attempt is made even when already cancelled (a
    /// cancelled deploy is worth a message).
    pub async fn send(&self, event: &Event, cancel: &Cancel) -> Vec<Delivery> {
        let slack = async {
            match &self.targets.slack {
                Some(url) => Some(
                    self.bounded(Channel::Slack, url.secret_parts(), async {
                        self.post_safely(
                            Channel::Slack,
                            url.expose_secret(),
                            &url.redacted(),
                            &slack::payload(event),
                            cancel,
                        )
                        .await
                    })
                    .await,
                ),
                None => None,
            }
        };
        let teams = async {
            match &self.targets.teams {
                Some(url) => Some(
                    self.bounded(Channel::Teams, url.secret_parts(), async {
                        self.post_safely(
                            Channel::Teams,
                            url.expose_secret(),
                            &url.redacted(),
                            &teams::payload(event),
                            cancel,
                        )
                        .await
                    })
                    .await,
                ),
                None => None,
            }
        };
        let pd = async {
            match &self.targets.pagerduty {
                Some((key, base)) => {
                    let secrets = vec![key.expose_secret().to_string()];
                    match pagerduty::message(event, key.expose_secret(), base) {
                        Some(m) => Some(
                            self.bounded(Channel::PagerDuty, secrets, self.pagerduty(m, cancel))
                                .await,
                        ),
                        None => None,
                    }
                }
                None => None,
            }
        };
        let (a, b, c) = tokio::join!(slack, teams, pd);
        let out: Vec<Delivery> = [a, b, c].into_iter().flatten().collect();
        for d in &out {
            match &d.error {
                Some(e) => tracing::warn!(
                    "{} notification ({}) failed: {e}",
                    d.channel,
                    event.kind.name()
                ),
                None => tracing::debug!(
                    "{} notification ({}) delivered in {} attempt(s)",
                    d.channel,
                    event.kind.name(),
                    d.attempts
                ),
            }
        }
        out
    }

    /// Runs one channel's delivery within the channel timeout and scrubs
    /// `secrets` out of its error.
    async fn bounded(
        &self,
        channel: Channel,
        secrets: Vec<String>,
        work: impl Future<Output = Delivery>,
    ) -> Delivery {
        let limit = self.policy.channel_timeout;
        let mut d = match tokio::time::timeout(limit, work).await {
            Ok(d) => d,
            Err(_) => Delivery {
                channel,
                ok: false,
                status: None,
                error: Some(format!(
                    "no answer within {}s (the notification may have been delivered)",
                    limit.as_secs_f64()
                )),
                attempts: 0,
                dedup_key: None,
            },
        };
        d.error = d.error.map(|e| scrub(&e, &secrets));
        d
    }

    async fn pagerduty(&self, m: pagerduty::Message, cancel: &Cancel) -> Delivery {
        let shown = http::Redacted(&m.url).to_string();
        if !m.dedup {
            // Change events have no dedup key: repeating one after a 5xx
            // could record the change twice.
            let mut d = self
                .post_safely(Channel::PagerDuty, &m.url, &shown, &m.body, cancel)
                .await;
            d.dedup_key = None;
            return d;
        }
        let sent_key = m.body["dedup_key"].as_str().map(str::to_string);
        let result = http::send(
            || self.http.post(m.url.clone()).json(&m.body),
            Idempotency::Idempotent,
            &self.policy.retry,
            cancel,
        )
        .await;
        match result {
            Ok(r) => {
                let confirmed = serde_json::from_slice::<serde_json::Value>(&r.bytes)
                    .ok()
                    .and_then(|v| v["dedup_key"].as_str().map(str::to_string));
                Delivery {
                    channel: Channel::PagerDuty,
                    ok: true,
                    status: Some(r.status.as_u16()),
                    error: None,
                    attempts: r.attempts,
                    dedup_key: confirmed.or(sent_key),
                }
            }
            Err(e) => Delivery {
                channel: Channel::PagerDuty,
                ok: false,
                status: e.status().map(|s| s.as_u16()),
                error: Some(match &e {
                    HttpError::Transport { .. } | HttpError::Status { .. } => e.to_string(),
                    other => format!("POST {shown}: {other}"),
                }),
                attempts: 0,
                dedup_key: sent_key,
            },
        }
    }

    /// POSTs `body` as JSON, retrying only what cannot have been processed:
    /// a 429 (after `Retry-After`, capped) and a failed connect. Anything
    /// else — 2xx, another status, a timeout, a reset — ends it. `shown` is
    /// what errors call the URL.
    async fn post_safely(
        &self,
        channel: Channel,
        url: &Url,
        shown: &str,
        body: &serde_json::Value,
        cancel: &Cancel,
    ) -> Delivery {
        let p = &self.policy.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let fail = |attempts: u32, status: Option<u16>, error: String| Delivery {
            channel,
            ok: false,
            status,
            error: Some(error),
            attempts,
            dedup_key: None,
        };
        loop {
            attempt += 1;
            let may_retry = attempt < p.max_attempts && started.elapsed() < p.budget;
            let wait = match self.http.post(url.clone()).json(body).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    // A webhook's answer is a word or a small JSON document.
                    let text = crate::http::read_text(resp, crate::http::PROBE_BODY_LIMIT)
                        .await
                        .unwrap_or_else(|e| e.to_string());
                    if status.is_success() {
                        return Delivery {
                            channel,
                            ok: true,
                            status: Some(status.as_u16()),
                            error: None,
                            attempts: attempt,
                            dedup_key: None,
                        };
                    }
                    if status != StatusCode::TOO_MANY_REQUESTS || !may_retry {
                        return fail(
                            attempt,
                            Some(status.as_u16()),
                            format!(
                                "POST {shown}: HTTP {status}: {}",
                                crate::text::clip(text.trim(), 300)
                            ),
                        );
                    }
                    http::retry_after(&headers)
                        .unwrap_or_else(|| backoff(p, attempt))
                        .min(p.max_delay)
                }
                Err(e) => {
                    let connect = e.is_connect();
                    if !connect || !may_retry {
                        let maybe = if connect {
                            ""
                        } else {
                            " (the notification may have been delivered)"
                        };
                        return fail(
                            attempt,
                            None,
                            format!(
                                "POST {shown}: {}{maybe}",
                                http::error_chain(&e.without_url())
                            ),
                        );
                    }
                    backoff(p, attempt)
                }
            };
            tracing::debug!("{channel} notification: retry {attempt} in {wait:?}");
            if let Err(c) = cancel.sleep(wait).await {
                return fail(attempt, None, format!("POST {shown}: {c} before a retry"));
            }
        }
    }
}

/// Exponential backoff with jitter, as [`crate::http::send`] does.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(policy.max_delay);
    let half = capped / 2;
    half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis().max(1) as u64))
}

/// `text` with every secret (longest first) replaced by `***`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        out = out.replace(s.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_and_map() {
        for (s, sev, pd) in [
            ("sev0", Sev::Sev0, "critical"),
            ("SEV1", Sev::Sev1, "error"),
            ("2", Sev::Sev2, "warning"),
            ("Sev3", Sev::Sev3, "info"),
        ] {
            let parsed: Sev = s.parse().unwrap();
            assert_eq!((parsed, parsed.pagerduty()), (sev, pd));
        }
        assert!("sev4".parse::<Sev>().is_err());
    }

    #[test]
    fn secret_urls_show_only_their_origin() {
        let u: SecretUrl = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
            .parse()
            .unwrap();
        for shown in [format!("{u:?}"), u.to_string(), u.redacted()] {
            assert!(
                !shown.contains("XXXX") && !shown.contains("B000"),
                "{shown}"
            );
            assert!(shown.contains("hooks.slack.com"));
        }
        let e = "http://hooks.slack.com/services/T/B/secret-token-123"
            .parse::<SecretUrl>()
            .unwrap_err();
        assert!(!e.contains("secret-token"), "{e}");
        assert!("http://127.0.0.1:9/x".parse::<SecretUrl>().is_ok());
    }

    #[test]
    fn scrub_removes_every_part() {
        let u: SecretUrl =
            "https://t.test/workflows/abcdef0123456789/triggers/manual/paths/invoke?sv=1.0&sig=SIGNATURE-VALUE"
                .parse()
                .unwrap();
        let text = "failed at https://t.test/workflows/abcdef0123456789/triggers/manual/paths/invoke?sv=1.0&sig=SIGNATURE-VALUE; sig=SIGNATURE-VALUE id abcdef0123456789";
        let s = scrub(text, &u.secret_parts());
        assert!(
            !s.contains("SIGNATURE") && !s.contains("abcdef0123456789"),
            "{s}"
        );
    }

    #[test]
    fn links_are_http_only() {
        let mut e = Event::new(EventKind::DeployStarted, "payments", "t", "r#1.1");
        e.url = Some(Url::parse("javascript:alert(1)").unwrap());
        assert!(e.link().is_none());
        e.url = Some(Url::parse("https://github.test/x").unwrap());
        assert!(e.link().is_some());
    }
}
