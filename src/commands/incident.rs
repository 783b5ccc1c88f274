//! `incident`: the incident record is a GitHub issue titled `[INC-2041]
//! <title>`, labelled `incident` and the severity; its comments are the
//! timeline (deploy, rollback and cherry-pick add theirs).
//!
//! - `create` opens the issue (a header table: severity, opened by, run,
//!   time) and pages (PagerDuty trigger, Slack, Teams). An open issue for
//!   the id is reported, never duplicated, and the notifications are sent
//!   again (PagerDuty's dedup key makes a repeated trigger land on the open
//!   alert).
//! - `update` adds a timeline comment (UTC time, run link, actor, message).
//! - `resolve` adds a comment with the root cause and the action items as a
//!   task list, closes the issue as completed and resolves the PagerDuty
//!   alert (same dedup key).
//!
//! The issue is found by listing issues labelled `incident` (open and
//! closed) and matching the `[ID] ` title prefix. Titles, messages and root
//! causes are untrusted: they go into the issue as code
//! ([`md_block`], [`md_code`]: no link, image, HTML or `@mention` in them
//! renders) and are printed through [`Console::untrusted`](crate::action::console::Console::untrusted).

use super::shared::records::{self, INCIDENT_LABEL, Records};
use super::{CommandError, Ctx, Report};
use crate::config::github::{IncidentAction, IncidentConfig};
use crate::github::{GithubError, Issue};
use crate::notify::EventKind;
use crate::report::{md_block, md_cell, md_code, md_link};

/// Why the incident could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// Signing in or building the client failed.
    #[error("cannot reach GitHub: {0}")]
    Client(String),
    /// A REST call failed (GitHub's status and message kept).
    #[error(transparent)]
    Api(#[from] GithubError),
    /// update or resolve for an id that has no issue.
    #[error(
        "no incident issue for {id} in {repo} (labelled `incident`, titled `[{id}] …`); create it first with incident-action: create"
    )]
    NotFound {
        /// The id.
        id: String,
        /// The repository.
        repo: String,
    },
}

impl From<IncidentError> for CommandError {
    fn from(e: IncidentError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

/// Runs `incident`.
pub async fn run(ctx: &Ctx, config: &IncidentConfig) -> Result<Report, CommandError> {
    let mut rec = Records::connect(ctx, ctx.config.records.as_deref()).await;
    rec.incident = Some(config.id.clone());
    let api = match rec.api.clone() {
        Some(api) => api,
        None => records::api_for(ctx, &config.github)
            .await
            .map_err(IncidentError::Client)?,
    };
    let id = &config.id;
    let existing = records::find_incident(&api, id)
        .await
        .map_err(IncidentError::from)?;
    let (result, issue, event) = match &config.action {
        IncidentAction::Create { severity, title } => {
            ctx.console.untrusted("incident title", title);
            let sev_label = severity.label().to_ascii_lowercase();
            let (result, issue) = match existing.filter(|i| i.state == "open") {
                Some(i) => {
                    ctx.console.info(&format!(
                        "{id} is already open as #{} ({}); not creating another",
                        i.number, i.html_url
                    ));
                    ("already-exists", i)
                }
                None => {
                    let full_title = format!("{}{}", records::title_prefix(id), title);
                    let body = format!(
                        "## Incident {id}\n\n| severity | {} |\n|---|---|\n| opened by | {} |\n| run | {} |\n| time | {} |\n\n### What is broken\n\n{}\n---\nThe timeline follows in the comments (expedite adds deploys, rollbacks and cherry-picks).\n",
                        severity.label(),
                        md_cell(&records::actor(ctx)),
                        records::run_url(ctx).unwrap_or_else(|| "(terminal)".into()),
                        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
                        md_block(title),
                    );
                    let i = api
                        .create_issue(
                            &full_title,
                            &body,
                            &[INCIDENT_LABEL.to_string(), sev_label.clone()],
                        )
                        .await
                        .map_err(IncidentError::from)?;
                    ctx.console
                        .info(&format!("opened {id} as #{} ({})", i.number, i.html_url));
                    ("created", i)
                }
            };
            let mut e = rec.event(
                ctx,
                EventKind::IncidentOpened { sev: *severity },
                service(ctx),
                format!("{id}: {title}"),
            );
            e.url = url::Url::parse(&issue.html_url).ok().or(e.url);
            e.text = format!("Severity {}. Record: {}", severity.label(), issue.html_url);
            (result, issue, e)
        }
        IncidentAction::Update { message } => {
            ctx.console.untrusted("incident update", message);
            let issue = must_exist(existing, id, &api.repo)?;
            let body = Records::entry(ctx, "Update", &[String::new(), md_block(message)]);
            api.comment(issue.number, &body)
                .await
                .map_err(IncidentError::from)?;
            ctx.console
                .info(&format!("added an update to {id} (#{})", issue.number));
            let mut e = rec.event(
                ctx,
                EventKind::IncidentUpdated,
                service(ctx),
                format!("{id} update"),
            );
            e.text = message.clone();
            e.url = url::Url::parse(&issue.html_url).ok().or(e.url);
            ("updated", issue, e)
        }
        IncidentAction::Resolve {
            root_cause,
            action_items,
        } => {
            if let Some(rc) = root_cause {
                ctx.console.untrusted("root cause", rc);
            }
            let issue = must_exist(existing, id, &api.repo)?;
            let mut lines = vec![String::new(), "**Root cause**".to_string(), String::new()];
            lines.push(match root_cause {
                Some(rc) => md_block(rc),
                None => "(not given)\n".into(),
            });
            lines.push("**Action items**\n".into());
            if action_items.is_empty() {
                lines.push("(none given)".into());
            }
            for item in action_items {
                lines.push(format!("- [ ] {}", md_code(item)));
            }
            let body = Records::entry(ctx, "Resolved", &lines);
            if issue.state == "open" {
                api.comment(issue.number, &body)
                    .await
                    .map_err(IncidentError::from)?;
                api.patch_issue(
                    issue.number,
                    &serde_json::json!({"state": "closed", "state_reason": "completed"}),
                )
                .await
                .map_err(IncidentError::from)?;
                ctx.console
                    .info(&format!("resolved {id} and closed #{}", issue.number));
            } else {
                // A re-run: the record is already closed; the resolve is
                // sent again so PagerDuty's alert is closed for sure.
                ctx.console.info(&format!(
                    "{id} (#{}) is already closed; left as it is",
                    issue.number
                ));
            }
            let mut e = rec.event(
                ctx,
                EventKind::IncidentResolved,
                service(ctx),
                format!("{id} resolved"),
            );
            e.text = root_cause.clone().unwrap_or_default();
            e.url = url::Url::parse(&issue.html_url).ok().or(e.url);
            ("resolved", issue, e)
        }
    };
    rec.notify(ctx, &event).await;
    // What this run recorded, as the engineer wrote it.
    let said = match &config.action {
        IncidentAction::Create { title, .. } => format!("| title | {} |\n", md_cell(title)),
        IncidentAction::Update { message } => format!("| update | {} |\n", md_cell(message)),
        IncidentAction::Resolve { root_cause, .. } => format!(
            "| root cause | {} |\n",
            md_cell(root_cause.as_deref().unwrap_or("(not given)"))
        ),
    };
    let summary = format!(
        "## Incident {} — {result}\n\n| issue | {} |\n|---|---|\n| state | {} |\n{said}{}",
        md_cell(id),
        md_link(&format!("#{}", issue.number), &issue.html_url),
        if result == "resolved" {
            "closed".to_string()
        } else {
            md_cell(&issue.state)
        },
        rec.summary()
    );
    Ok(Report {
        success: true,
        outputs: vec![
            ("result", result.to_string()),
            ("incident-url", issue.html_url.clone()),
            ("incident-number", issue.number.to_string()),
        ],
        summary,
        ..Report::default()
    })
}

fn must_exist(existing: Option<Issue>, id: &str, repo: &str) -> Result<Issue, IncidentError> {
    existing.ok_or_else(|| IncidentError::NotFound {
        id: id.to_string(),
        repo: repo.to_string(),
    })
}

/// The service named in notifications: the repository's name.
fn service(ctx: &Ctx) -> &str {
    ctx.config
        .records
        .as_ref()
        .and_then(|r| r.github.as_ref())
        .map(|g| g.repo.as_str())
        .unwrap_or("expedite")
}
