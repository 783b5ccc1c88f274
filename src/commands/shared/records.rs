//! What deploy, rollback, cherry-pick and incident record besides their own
//! work: the incident's timeline (comments on its GitHub issue), GitHub
//! deployments with statuses, and notifications (Slack, Teams, PagerDuty).
//!
//! None of it can fail the command: the Azure deploy or the pick is what
//! matters, so every failure here becomes a warning (logged, and listed in
//! the summary's "Records" section). Untrusted text (titles, messages, root
//! causes, rollback reasons) goes into issues as code (`crate::report`):
//! no link, image, HTML or mention in it renders.

use secrecy::SecretString;
use serde_json::json;

use crate::commands::Ctx;
use crate::config::github::{GithubAccess, RecordsConfig};
use crate::github::{Api, GithubError, Issue, auth};
use crate::notify::{Event, EventKind, Notifier, NotifyPolicy};
use crate::report::{md_block, md_cell, md_code};

/// The label every incident issue carries.
pub const INCIDENT_LABEL: &str = "incident";

/// The run's page, when the run is a workflow run.
pub fn run_url(ctx: &Ctx) -> Option<String> {
    ctx.env.runner().run_url()
}

/// Who ran it: the workflow's actor, or `(terminal)`.
pub fn actor(ctx: &Ctx) -> String {
    ctx.env.runner().actor().to_string()
}

/// `owner/repo#run.attempt` (or `local`), for notifications.
fn run_name(ctx: &Ctx) -> String {
    ctx.env.runner().run_name()
}

/// The `[ID] ` prefix of an incident issue's title.
pub fn title_prefix(id: &str) -> String {
    format!("[{id}] ")
}

/// The incident issue for `id`, open ones first, or `None`.
pub async fn find_incident(api: &Api, id: &str) -> Result<Option<Issue>, GithubError> {
    let prefix = title_prefix(id);
    let mut found: Vec<Issue> = api
        .issues_labelled(INCIDENT_LABEL, 1000)
        .await?
        .into_iter()
        .filter(|i| i.title.starts_with(&prefix))
        .collect();
    // Newest first from the API; an open record wins over a closed one.
    found.sort_by_key(|i| i.state != "open");
    Ok(found.into_iter().next())
}

/// A signed-in client for `access`.
pub async fn api_for(ctx: &Ctx, access: &GithubAccess) -> Result<Api, String> {
    let http = crate::http::client(&access.http).map_err(|e| e.to_string())?;
    let token: SecretString = auth::token(&http, access, &ctx.console, &ctx.cancel)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Api::new(http, access, token, ctx.cancel.clone()))
}

/// The records of one run.
pub struct Records {
    /// The GitHub client, when a repository and token are known.
    pub api: Option<Api>,
    notifier: Option<Notifier>,
    /// The incident id whose timeline gets comments.
    pub incident: Option<String>,
    /// The deployment environment.
    pub environment: String,
    /// What went wrong, one line each (warnings, never failures).
    pub warnings: Vec<String>,
    /// What was recorded, one line each (for the summary).
    pub done: Vec<String>,
}

impl Records {
    /// Signs in and builds the notifier; failures become warnings.
    pub async fn connect(ctx: &Ctx, config: Option<&RecordsConfig>) -> Records {
        let mut r = Records {
            api: None,
            notifier: None,
            incident: None,
            environment: "production".into(),
            warnings: Vec::new(),
            done: Vec::new(),
        };
        let Some(config) = config else {
            return r;
        };
        r.incident = config.incident.clone();
        r.environment = config.environment.clone();
        if let Some(access) = &config.github {
            match api_for(ctx, access).await {
                Ok(api) => r.api = Some(api),
                Err(e) => r.warn(format!("cannot sign in to GitHub to record this run: {e}")),
            }
        }
        let notifier_http = crate::http::client(&config.http);
        match notifier_http {
            Ok(http) => {
                let n = Notifier::new(http, config.targets.clone(), NotifyPolicy::default());
                if !n.is_empty() {
                    r.notifier = Some(n);
                }
            }
            Err(e) => r.warn(format!("cannot build the notification client: {e}")),
        }
        r
    }

    /// Records a warning (logged now, listed in the summary).
    pub fn warn(&mut self, text: String) {
        tracing::warn!(title = "Not recorded", "{text}");
        self.warnings.push(text);
    }

    /// An event for this run, with the run link and the incident id.
    pub fn event(
        &self,
        ctx: &Ctx,
        kind: EventKind,
        service: &str,
        title: impl Into<String>,
    ) -> Event {
        let mut e = Event::new(kind, service, title, run_name(ctx));
        e.incident = self.incident.clone();
        e.url = run_url(ctx).and_then(|u| url::Url::parse(&u).ok());
        e
    }

    /// Sends `event` to every configured channel; failed deliveries are
    /// warnings.
    pub async fn notify(&mut self, ctx: &Ctx, event: &Event) {
        let Some(n) = &self.notifier else {
            return;
        };
        let deliveries = n.send(event, &ctx.cancel).await;
        for d in deliveries {
            if d.ok {
                self.done
                    .push(format!("{} notified ({})", d.channel, event.kind.label()));
            } else {
                // The notifier already logged it; the summary lists it.
                self.warnings.push(format!(
                    "{} was not notified ({}): {}",
                    d.channel,
                    event.kind.label(),
                    d.error.unwrap_or_else(|| "no reason given".into())
                ));
            }
        }
    }

    /// Appends `body` to the incident's timeline, when there is one.
    pub async fn timeline(&mut self, body: &str) {
        let (Some(api), Some(id)) = (&self.api, self.incident.clone()) else {
            return;
        };
        let issue = match find_incident(api, &id).await {
            Ok(Some(i)) => i,
            Ok(None) => {
                self.warn(format!(
                    "no incident issue for {id} in {} (labelled `{INCIDENT_LABEL}`, titled `[{id}] …`); open it with `incident` first",
                    api.repo
                ));
                return;
            }
            Err(e) => {
                self.warn(format!("cannot find the incident issue for {id}: {e}"));
                return;
            }
        };
        match api.comment(issue.number, body).await {
            Ok(c) => self
                .done
                .push(format!("timeline comment on {id}: {}", c.html_url)),
            Err(e) => self.warn(format!("cannot comment on the incident {id}: {e}")),
        }
    }

    /// A timeline entry: UTC time, run link, actor, then `lines`.
    pub fn entry(ctx: &Ctx, heading: &str, lines: &[String]) -> String {
        let mut body = format!(
            "### {heading}\n\n| time | {} |\n|---|---|\n| run | {} |\n| actor | {} |\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
            run_url(ctx).unwrap_or_else(|| "(terminal)".into()),
            md_cell(&actor(ctx)),
        );
        for l in lines {
            body.push_str(l);
            body.push('\n');
        }
        body
    }

    /// Creates a deployment and its `in_progress` status; `None` (with a
    /// warning) when GitHub refuses.
    pub async fn deployment_start(
        &mut self,
        ctx: &Ctx,
        app: &str,
        version: &str,
        previous: Option<&str>,
    ) -> Option<u64> {
        let api = self.api.as_ref()?;
        let runner = ctx.env.runner();
        let git_ref = runner
            .sha
            .or(runner.git_ref)
            .unwrap_or_else(|| format!("release/{version}"));
        let mut description = format!("expedite: {app} {version}");
        if let Some(p) = previous {
            description.push_str(&format!(" (last known good {p})"));
        }
        let description: String = description.chars().take(140).collect();
        let body = json!({
            "ref": git_ref,
            "environment": self.environment,
            "auto_merge": false,
            "required_contexts": [],
            "task": "deploy",
            "payload": {"app": app, "version": version, "previous_version": previous, "tool": "expedite"},
            "description": description,
        });
        let d = match api.create_deployment(&body).await {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!("cannot create the GitHub deployment: {e}"));
                return None;
            }
        };
        let status = json!({
            "state": "in_progress",
            "log_url": run_url(ctx).unwrap_or_default(),
            "description": format!("deploying {version}").chars().take(140).collect::<String>(),
            "auto_inactive": false,
        });
        if let Err(e) = api.create_deployment_status(d.id, &status).await {
            self.warn(format!(
                "cannot mark the GitHub deployment in progress: {e}"
            ));
        }
        Some(d.id)
    }

    /// The deployment's final status.
    pub async fn deployment_finish(
        &mut self,
        ctx: &Ctx,
        id: u64,
        success: bool,
        description: &str,
        environment_url: &str,
    ) {
        let Some(api) = &self.api else {
            return;
        };
        let mut status = json!({
            "state": if success { "success" } else { "failure" },
            "log_url": run_url(ctx).unwrap_or_default(),
            "description": description.chars().take(140).collect::<String>(),
        });
        if success && !environment_url.is_empty() {
            status["environment_url"] = json!(environment_url);
        }
        match api.create_deployment_status(id, &status).await {
            Ok(_) => self.done.push(format!(
                "GitHub deployment {id} in `{}`: {}",
                self.environment,
                if success { "success" } else { "failure" }
            )),
            Err(e) => self.warn(format!("cannot record the GitHub deployment's result: {e}")),
        }
    }

    /// The last known good version of `app` from the newest *successful*
    /// expedite deployment of the environment (its `previous_version`).
    pub async fn recorded_previous(&mut self, app: &str) -> Option<String> {
        let api = self.api.as_ref()?;
        let deployments = match api.deployments(&self.environment, 100).await {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!("cannot read the GitHub deployments: {e}"));
                return None;
            }
        };
        for d in deployments {
            let payload = &d.payload;
            if payload.get("app").and_then(|a| a.as_str()) != Some(app) {
                continue;
            }
            let statuses = match api.deployment_statuses(d.id).await {
                Ok(s) => s,
                Err(e) => {
                    self.warn(format!("cannot read deployment {}'s statuses: {e}", d.id));
                    return None;
                }
            };
            // Newest status first: only a deploy that went live counts.
            if statuses.first().map(|s| s.state.as_str()) != Some("success") {
                continue;
            }
            return payload
                .get("previous_version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        None
    }

    /// The summary section (empty when nothing was configured).
    pub fn summary(&self) -> String {
        if self.done.is_empty() && self.warnings.is_empty() {
            return String::new();
        }
        let mut md = String::from("\n### Records\n\n");
        for d in &self.done {
            md.push_str(&format!("- {}\n", md_code(d)));
        }
        for w in &self.warnings {
            md.push_str(&format!(
                "- ⚠️ {} (a warning: the command's result stands)\n",
                md_code(w)
            ));
        }
        md
    }
}

/// An output's value from a report.
fn output<'a>(report: &'a crate::commands::Report, name: &str) -> &'a str {
    report
        .outputs
        .iter()
        .rev()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn error_lines(report: &crate::commands::Report) -> Vec<String> {
    if report.errors.is_empty() {
        return Vec::new();
    }
    let text = report.errors.join("\n");
    vec![
        String::new(),
        "**Errors**".into(),
        String::new(),
        md_block(&text),
    ]
}

/// After `deploy`: the deployment's final status, the timeline comment and
/// the notifications; the summary gains the "Records" section.
pub async fn after_deploy(
    ctx: &Ctx,
    rec: &mut Records,
    deployment: Option<u64>,
    app: &str,
    version: &str,
    report: &mut crate::commands::Report,
) {
    let result = output(report, "result").to_string();
    let previous = output(report, "previous-version").to_string();
    let deployed = output(report, "deployed-version").to_string();
    let url = output(report, "production-url").to_string();
    let tripped = output(report, "canary-decision") == "trip";
    if let Some(id) = deployment {
        let description = if report.success {
            format!("{version} live (last known good {previous})")
        } else {
            format!("{result}: production serves {deployed}")
        };
        rec.deployment_finish(ctx, id, report.success, &description, &url)
            .await;
    }
    let mut lines = vec![
        format!("| result | {} |", md_cell(&result)),
        format!("| app | {} |", md_cell(app)),
        format!("| version | {} |", md_cell(version)),
        format!("| previous version | {} |", md_cell(&previous)),
        format!("| production serves | {} |", md_cell(&deployed)),
    ];
    if !url.is_empty() {
        lines.push(format!("| production | {} |", md_cell(&url)));
    }
    lines.extend(error_lines(report));
    let body = Records::entry(
        ctx,
        &format!("Deploy of {}: {result}", md_code(version)),
        &lines,
    );
    rec.timeline(&body).await;
    let mut kinds = Vec::new();
    if report.success {
        kinds.push(EventKind::DeploySucceeded);
    } else if result == "interrupted" || result == "preempted" {
        kinds.push(EventKind::DeployInterrupted);
    } else if result == "rolled-back" {
        if tripped {
            kinds.push(EventKind::CanaryTripped);
        } else {
            kinds.push(EventKind::DeployFailed);
        }
        kinds.push(EventKind::RolledBack);
    } else {
        kinds.push(EventKind::DeployFailed);
    }
    for kind in kinds {
        let mut e = rec.event(ctx, kind, app, format!("{app} {version}: {result}"));
        e.version = Some(if kind == EventKind::RolledBack {
            deployed.clone()
        } else {
            version.to_string()
        });
        e.text = format!("production serves {deployed} (previous {previous})");
        rec.notify(ctx, &e).await;
    }
    report.summary.push_str(&rec.summary());
}

/// After `rollback`: the timeline comment and the notification.
pub async fn after_rollback(
    ctx: &Ctx,
    rec: &mut Records,
    services: &[String],
    reason: &str,
    report: &mut crate::commands::Report,
) {
    let result = output(report, "result").to_string();
    let previous = output(report, "previous-version").to_string();
    let deployed = output(report, "deployed-version").to_string();
    let apps = services.join(", ");
    let mut lines = vec![
        format!("| result | {} |", md_cell(&result)),
        format!("| services | {} |", md_cell(&apps)),
        format!("| before | {} |", md_cell(&previous)),
        format!("| production serves | {} |", md_cell(&deployed)),
        String::new(),
        "**Reason**".into(),
        String::new(),
        md_block(reason),
    ];
    lines.extend(error_lines(report));
    let body = Records::entry(ctx, &format!("Rollback: {result}"), &lines);
    rec.timeline(&body).await;
    let kind = match result.as_str() {
        "rolled-back" => Some(EventKind::RolledBack),
        "unchanged" => None,
        _ => Some(EventKind::RollbackFailed),
    };
    if let Some(kind) = kind {
        let mut e = rec.event(ctx, kind, &apps, format!("{apps}: rollback {result}"));
        e.version = Some(deployed.clone()).filter(|v| !v.is_empty());
        e.text = reason.to_string();
        rec.notify(ctx, &e).await;
    }
    report.summary.push_str(&rec.summary());
}

/// After `cherry-pick`: the timeline comment (with the pull request) and,
/// on a conflict, the notification.
pub async fn after_cherry_pick(ctx: &Ctx, rec: &mut Records, report: &mut crate::commands::Report) {
    let result = output(report, "result").to_string();
    let pr = output(report, "pull-request-url").to_string();
    let branch = output(report, "branch").to_string();
    let mut lines = vec![
        format!("| result | {} |", md_cell(&result)),
        format!("| branch | {} |", md_cell(&branch)),
        format!("| commits | {} |", md_cell(output(report, "commits"))),
    ];
    if !pr.is_empty() {
        lines.push(format!("| pull request | {} |", md_cell(&pr)));
    }
    let conflicts = output(report, "conflicted-files").to_string();
    if !conflicts.is_empty() {
        lines.push(format!("| conflicts | {} |", md_cell(&conflicts)));
    }
    lines.extend(error_lines(report));
    let body = Records::entry(ctx, &format!("Cherry-pick: {result}"), &lines);
    rec.timeline(&body).await;
    if result == "conflict" {
        let service = rec
            .api
            .as_ref()
            .map(|a| a.repo.clone())
            .unwrap_or_else(|| "expedite".into());
        let mut e = rec.event(
            ctx,
            EventKind::CherryPickConflict,
            &service,
            "the hotfix cherry-pick conflicts".to_string(),
        );
        e.text = format!("conflicts in: {}", conflicts.replace('\n', ", "));
        if let Ok(u) = url::Url::parse(&pr) {
            e.url = Some(u);
        }
        rec.notify(ctx, &e).await;
    }
    report.summary.push_str(&rec.summary());
}
