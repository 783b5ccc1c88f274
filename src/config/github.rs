//! Settings of the GitHub commands (`cherry-pick`, `start`, `tag`), from the
//! inputs and what the runner provides (`GITHUB_API_URL`,
//! `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_SHA`, the push event).
//!
//! Everything that later reaches git as a ref name (incident, slug, version,
//! branches, commits) is checked here to be ref-safe, so no later step has
//! to wonder whether a value could be read as an option or a range.

use std::path::PathBuf;

use secrecy::SecretString;

use super::values::{self, ValueError, shown};
use super::{Command, Resolver};
use crate::action::Env;
use crate::http::HttpSettings;

/// How expedite signs in to GitHub.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A token (the job's `GITHUB_TOKEN`, a PAT or an installation token).
    Token(SecretString),
    /// A GitHub App: a JWT signed with the key buys an installation token.
    App {
        /// The numeric app id or the client id (the JWT's `iss`).
        app_id: String,
        /// The private key, PEM.
        private_key: SecretString,
    },
}

/// Where the repository is and how to reach it.
#[derive(Debug, Clone)]
pub struct GithubAccess {
    /// REST base (`GITHUB_API_URL`, e.g. `https://api.github.com`).
    pub api_url: url::Url,
    /// Web and git base (`GITHUB_SERVER_URL`, e.g. `https://github.com`).
    pub server_url: url::Url,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Credentials.
    pub auth: GithubAuth,
    /// TLS trust and host resolution (the `ca-cert` and `resolve` inputs),
    /// for REST and for git.
    pub http: HttpSettings,
}

impl GithubAccess {
    /// `https://server/owner/repo.git`.
    pub fn clone_url(&self) -> String {
        format!(
            "{}/{}/{}.git",
            self.server_url.as_str().trim_end_matches('/'),
            self.owner,
            self.repo
        )
    }
}

/// Where the hotfix commits come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitSource {
    /// The `commits` input: SHAs and `a..b` ranges, in order.
    Listed(Vec<String>),
    /// The `hotfix-tag` input: its commits since the release it fixes.
    HotfixTag(String),
    /// The push event: its `commits[]`, else `before..after`.
    PushEvent {
        /// `commits[].id`, oldest first.
        commits: Vec<String>,
        /// `before` (all zeros for a new branch).
        before: Option<String>,
        /// `after`.
        after: Option<String>,
    },
}

/// How a clean pick lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickMode {
    /// A branch and a pull request.
    PullRequest,
    /// Straight onto the target branch (a pull request when it is protected).
    Push,
}

/// Settings of `cherry-pick`.
#[derive(Debug, Clone)]
pub struct CherryPickConfig {
    /// The repository.
    pub github: GithubAccess,
    /// The hotfix commits.
    pub source: CommitSource,
    /// Where they go.
    pub target_branch: String,
    /// Pull request or push.
    pub mode: PickMode,
    /// Labels for the pull request.
    pub labels: Vec<String>,
    /// Fallback assignees for a conflict pull request.
    pub assignees: Vec<String>,
    /// Fail the step on a conflict.
    pub fail_on_conflict: bool,
    /// Release tag prefix.
    pub tag_prefix: String,
    /// Where the scratch repository goes (a fresh directory is made inside).
    pub work_dir: PathBuf,
}

/// Settings of `start`.
#[derive(Debug, Clone)]
pub struct StartConfig {
    /// The repository.
    pub github: GithubAccess,
    /// Incident id (ref-safe).
    pub incident: String,
    /// Short name (ref-safe).
    pub slug: Option<String>,
    /// The version production serves; `None`: the highest release tag.
    pub version: Option<String>,
    /// Release tag prefix.
    pub tag_prefix: String,
}

/// Settings of `tag`.
#[derive(Debug, Clone)]
pub struct TagConfig {
    /// The repository.
    pub github: GithubAccess,
    /// The new version.
    pub version: String,
    /// The commit (SHA or branch) to tag.
    pub git_ref: String,
    /// Release tag prefix.
    pub tag_prefix: String,
}

/// True when `s` can be one component of a git ref name and never reads as
/// an option, a range or a pattern: letters, digits, `.`, `_`, `-`, not
/// starting with `-` or `.`, no `..`, not ending in `.lock` or `.`.
pub fn ref_component_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.starts_with(['-', '.'])
        && !s.ends_with('.')
        && !s.ends_with(".lock")
        && !s.contains("..")
}

/// True when `s` is a ref-safe branch or tag name (components joined by `/`).
pub fn ref_name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 250 && s.split('/').all(ref_component_ok)
}

fn ref_safe(what: &'static str) -> impl Fn(&str) -> Result<String, ValueError> {
    move |v: &str| {
        if ref_component_ok(v) {
            Ok(v.to_string())
        } else {
            Err(ValueError {
                problem: format!("{} cannot be part of a branch name", shown(v)),
                accepted: format!(
                    "{what}: letters, digits, . _ - (not starting with - or ., no ..)"
                ),
            })
        }
    }
}

fn commit_token_ok(s: &str) -> bool {
    let hex = |x: &str| (4..=40).contains(&x.len()) && x.chars().all(|c| c.is_ascii_hexdigit());
    match s.split_once("..") {
        Some((a, b)) => !b.starts_with('.') && ref_name_ok(a) && ref_name_ok(b),
        None => hex(s) || ref_name_ok(s),
    }
}

fn parse_repository(v: &str) -> Result<(String, String), ValueError> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && !s.starts_with(['-', '.'])
    };
    match v.split_once('/') {
        Some((o, r)) if ok(o) && ok(r) => Ok((o.to_string(), r.to_string())),
        _ => Err(ValueError {
            problem: format!("{} is not a repository", shown(v)),
            accepted: "owner/name, e.g. contoso/payments".into(),
        }),
    }
}

/// Reads the App key: PEM text, or (for the CLI) a path to a PEM file. The
/// key is checked now so a bad one is an input error, never echoed.
fn app_key(v: &str) -> Result<SecretString, ValueError> {
    let text = if v.contains("-----BEGIN") {
        v.to_string()
    } else {
        std::fs::read_to_string(v).map_err(|_| ValueError {
            problem: "is neither PEM text nor a readable PEM file".into(),
            accepted: "the App's private key (the .pem GitHub generated), as text or a path".into(),
        })?
    };
    // Keys pasted into a secret often lose their line breaks or gain
    // indentation; rebuild the lines before checking.
    let text: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    crate::github::auth::app_key(&text).map_err(|_| ValueError {
        problem: "is not an RSA private key in PEM".into(),
        accepted: "the App's private key exactly as GitHub generated it \
                   (-----BEGIN RSA PRIVATE KEY----- …)"
            .into(),
    })?;
    Ok(SecretString::from(text))
}

fn access(
    r: &mut Resolver<'_>,
    env: &Env,
    common_token: Option<&SecretString>,
) -> Option<GithubAccess> {
    let raw = r.raw;
    let runner = env.runner();
    let api_url = match values::parse_url(
        runner
            .api_url
            .as_deref()
            .unwrap_or("https://api.github.com"),
    ) {
        Ok(u) => Some(u),
        Err(e) => {
            r.error(
                "repository",
                format!("GITHUB_API_URL: {}", e.problem),
                e.accepted,
            );
            None
        }
    };
    let server_url = match values::parse_url(&runner.server_url) {
        Ok(u) => Some(u),
        Err(e) => {
            r.error(
                "repository",
                format!("GITHUB_SERVER_URL: {}", e.problem),
                e.accepted,
            );
            None
        }
    };
    let repository = match raw.get("repository").or(runner.repository.as_deref()) {
        Some(v) => match parse_repository(v) {
            Ok(x) => Some(x),
            Err(e) => {
                r.error("repository", e.problem, e.accepted);
                None
            }
        },
        None => {
            r.error(
                "repository",
                "is not given and GITHUB_REPOSITORY is not set",
                "give the repository as owner/name",
            );
            None
        }
    };
    let (resolve, ca_pem) = super::http_inputs(r);
    let app_id = raw.get("app-id").map(str::to_string);
    let auth = match (app_id, raw.get("app-private-key")) {
        (Some(id), Some(_)) => {
            let id_ok = id.chars().all(|c| c.is_ascii_alphanumeric()) && id.len() <= 64;
            if !id_ok {
                r.error(
                    "app-id",
                    format!("{} is not an App id", shown(&id)),
                    "the App's numeric id or its client id (Settings → Developer settings → GitHub Apps)",
                );
            }
            let key = r.parse("app-private-key", app_key);
            match key {
                Some(private_key) if id_ok => Some(GithubAuth::App {
                    app_id: id,
                    private_key,
                }),
                _ => None,
            }
        }
        (Some(_), None) => {
            r.error(
                "app-private-key",
                "is required with app-id",
                "give the App's private key (a secret), or remove app-id to use github-token",
            );
            None
        }
        (None, Some(_)) => {
            r.error(
                "app-id",
                "is required with app-private-key",
                "give the App's id, or remove app-private-key to use github-token",
            );
            None
        }
        (None, None) => match common_token {
            Some(t) => Some(GithubAuth::Token(t.clone())),
            None => {
                r.error(
                    "github-token",
                    "is not given (and neither is a GitHub App)",
                    "pass `github-token` (the default is the job's token), or app-id and app-private-key",
                );
                None
            }
        },
    };
    let (owner, repo) = repository?;
    Some(GithubAccess {
        api_url: api_url?,
        server_url: server_url?,
        owner,
        repo,
        auth: auth?,
        http: HttpSettings {
            resolve: resolve.unwrap_or_default(),
            extra_ca_pem: ca_pem.into_iter().collect(),
            ..HttpSettings::default()
        },
    })
}

fn tag_prefix(r: &mut Resolver<'_>) -> Option<String> {
    r.parse("tag-prefix", |v| {
        let bare = v.trim_end_matches('/');
        if v.is_empty() || ref_name_ok(bare) {
            Ok(v.to_string())
        } else {
            Err(ValueError {
                problem: format!("{} cannot start a tag name", shown(v)),
                accepted: "letters, digits, . _ - and /, e.g. release/ or v".into(),
            })
        }
    })
}

/// The push event's commits, when the run was started by a push.
fn push_event(env: &Env) -> Option<CommitSource> {
    let path = env.runner().event_path?;
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let id_ok = |s: &&str| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit());
    let commits: Vec<String> = v
        .get("commits")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("id").and_then(|i| i.as_str()))
                .filter(id_ok)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let sha = |k: &str| {
        v.get(k)
            .and_then(|s| s.as_str())
            .filter(id_ok)
            .map(str::to_string)
    };
    let (before, after) = (sha("before"), sha("after"));
    if commits.is_empty() && after.is_none() {
        return None;
    }
    Some(CommitSource::PushEvent {
        commits,
        before,
        after,
    })
}

/// `cherry-pick`'s settings.
pub(super) fn cherry_pick_config(
    r: &mut Resolver<'_>,
    env: &Env,
    token: Option<&SecretString>,
) -> Option<CherryPickConfig> {
    let github = access(r, env, token);
    let raw = r.raw;
    let listed = r.parse("commits", |v| {
        let list = values::parse_list(v);
        match list.iter().find(|c| !commit_token_ok(c)) {
            Some(bad) => Err(ValueError {
                problem: format!("{} is not a commit", shown(bad)),
                accepted: "commit SHAs or a..b ranges, oldest first".into(),
            }),
            None => Ok(list),
        }
    });
    let hotfix_tag = r.parse("hotfix-tag", |v| {
        let v = v.strip_prefix("refs/tags/").unwrap_or(v);
        if ref_name_ok(v) {
            Ok(v.to_string())
        } else {
            Err(ValueError {
                problem: format!("{} is not a tag name", shown(v)),
                accepted: "a tag such as release/2.4.1".into(),
            })
        }
    });
    let source = match (listed, hotfix_tag) {
        (Some(_), Some(_)) => {
            r.error(
                "hotfix-tag",
                "is given together with commits",
                "give either commits or hotfix-tag",
            );
            None
        }
        (Some(list), None) => Some(CommitSource::Listed(list)),
        (None, Some(tag)) => Some(CommitSource::HotfixTag(tag)),
        (None, None) if raw.given("commits") || raw.given("hotfix-tag") => None,
        (None, None) => match push_event(env) {
            Some(s) => Some(s),
            None => {
                r.error(
                    "commits",
                    "is not given, nor hotfix-tag, and the run has no push event with commits",
                    "list the hotfix commits, or give the hotfix's release tag as hotfix-tag",
                );
                None
            }
        },
    };
    let target_branch = r.parse("target-branch", |v| {
        let v = v.strip_prefix("refs/heads/").unwrap_or(v);
        if ref_name_ok(v) {
            Ok(v.to_string())
        } else {
            Err(ValueError {
                problem: format!("{} is not a branch name", shown(v)),
                accepted: "a branch such as main".into(),
            })
        }
    });
    let mode = r.parse("mode", |v| match v {
        "pull-request" | "pr" => Ok(PickMode::PullRequest),
        "push" => Ok(PickMode::Push),
        other => Err(ValueError {
            problem: format!("{} is not a mode", shown(other)),
            accepted: "pull-request or push".into(),
        }),
    });
    let labels = raw
        .get("labels")
        .map(values::parse_list)
        .unwrap_or_default();
    let assignees = r
        .parse("assignees", |v| {
            let list: Vec<String> = values::parse_list(v)
                .into_iter()
                .map(|a| a.trim_start_matches('@').to_string())
                .collect();
            match list.iter().find(|a| !login_ok(a)) {
                Some(bad) => Err(ValueError {
                    problem: format!("{} is not a GitHub login", shown(bad)),
                    accepted: "GitHub logins, comma-separated".into(),
                }),
                None => Ok(list),
            }
        })
        .unwrap_or_default();
    let fail_on_conflict = r.parse("fail-on-conflict", values::parse_bool);
    let prefix = tag_prefix(r);
    let work_dir = env.runner().temp;
    Some(CherryPickConfig {
        github: github?,
        source: source?,
        target_branch: target_branch?,
        mode: mode?,
        labels,
        assignees,
        fail_on_conflict: fail_on_conflict.unwrap_or(true),
        tag_prefix: prefix?,
        work_dir,
    })
}

fn login_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '[' || c == ']')
        && !s.starts_with('-')
}

/// `start`'s settings.
pub(super) fn start_config(
    r: &mut Resolver<'_>,
    env: &Env,
    token: Option<&SecretString>,
) -> Option<StartConfig> {
    let github = access(r, env, token);
    let incident = r.parse("incident", ref_safe("the incident id"));
    let slug = r.parse("slug", ref_safe("the slug"));
    let version = r.parse("version", |v| {
        values::parse_version(v).and_then(|v| {
            if ref_component_ok(&v) {
                Ok(v)
            } else {
                Err(ValueError {
                    problem: format!("{} cannot be part of a tag name", shown(&v)),
                    accepted: "a version such as 2.4.0".into(),
                })
            }
        })
    });
    let prefix = tag_prefix(r);
    Some(StartConfig {
        github: github?,
        incident: incident?,
        slug,
        version,
        tag_prefix: prefix?,
    })
}

/// `tag`'s settings.
pub(super) fn tag_config(
    r: &mut Resolver<'_>,
    env: &Env,
    token: Option<&SecretString>,
) -> Option<TagConfig> {
    let github = access(r, env, token);
    let version = r.parse("version", |v| {
        let v = values::parse_version(v)?;
        if semver::Version::parse(v.trim_start_matches('v')).is_err() || !ref_component_ok(&v) {
            return Err(ValueError {
                problem: format!("{} is not a release version", shown(&v)),
                accepted: "a semantic version such as 2.4.1 (or v2.4.1)".into(),
            });
        }
        Ok(v)
    });
    let git_ref = match r.raw.get("ref").or(env.runner().sha.as_deref()) {
        Some(v) => {
            let v = v.strip_prefix("refs/heads/").unwrap_or(v);
            if commit_token_ok(v) && !v.contains("..") {
                Some(v.to_string())
            } else {
                r.error(
                    "ref",
                    format!("{} is not a commit or branch", shown(v)),
                    "a commit SHA or a branch name",
                );
                None
            }
        }
        None => {
            r.error(
                "ref",
                "is not given and GITHUB_SHA is not set",
                "give the commit to tag",
            );
            None
        }
    };
    let prefix = tag_prefix(r);
    Some(TagConfig {
        github: github?,
        version: version?,
        git_ref: git_ref?,
        tag_prefix: prefix?,
    })
}

/// What `incident` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentAction {
    /// Open the record (idempotent per id).
    Create {
        /// How bad.
        severity: crate::notify::Sev,
        /// What is broken (untrusted text).
        title: String,
    },
    /// A timeline comment.
    Update {
        /// What happened (untrusted text).
        message: String,
    },
    /// Root cause and action items, then the issue is closed.
    Resolve {
        /// The root cause (untrusted text).
        root_cause: Option<String>,
        /// Follow-ups, one each (untrusted text).
        action_items: Vec<String>,
    },
}

/// Settings of `incident`.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    /// The repository holding the incident issues.
    pub github: GithubAccess,
    /// The incident id (`INC-2041`).
    pub id: String,
    /// What to do.
    pub action: IncidentAction,
}

/// What deploy, rollback, cherry-pick and incident record besides their own
/// work: the incident timeline, GitHub deployments and notifications. Each
/// part is optional, and none of them can fail the command.
#[derive(Debug, Clone, Default)]
pub struct RecordsConfig {
    /// The repository, when a token (or App) and a repository are known.
    pub github: Option<GithubAccess>,
    /// The incident whose timeline gets a comment.
    pub incident: Option<String>,
    /// The GitHub deployment environment (deploy, rollback).
    pub environment: String,
    /// Where notifications go.
    pub targets: crate::notify::Targets,
    /// TLS trust and host resolution for the notifier (the command's own).
    pub http: HttpSettings,
}

/// True when an incident id is safe in a title prefix, a PagerDuty dedup
/// key and a branch name: the ref-safe characters.
fn incident_id(v: &str) -> Result<String, ValueError> {
    ref_safe("the incident id")(v)
}

fn notify_targets(r: &mut Resolver<'_>) -> crate::notify::Targets {
    use crate::notify::SecretUrl;
    let webhook = |v: &str| {
        v.parse::<SecretUrl>().map_err(|problem| ValueError {
            problem,
            accepted: "the webhook's https URL".into(),
        })
    };
    let slack = r.parse("slack-webhook-url", webhook);
    let teams = r.parse("teams-webhook-url", webhook);
    let key = r.parse("pagerduty-routing-key", |v| {
        if v.len() >= 20 && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(SecretString::from(v.to_string()))
        } else {
            Err(ValueError {
                problem: "is not a routing key".into(),
                accepted: "the 32-character integration key of an Events API v2 integration".into(),
            })
        }
    });
    let base = r.parse("pagerduty-url", |v| {
        let u = values::parse_url(v)?;
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if u.scheme() == "https" || loopback {
            Ok(u)
        } else {
            Err(ValueError {
                problem: format!("{} is not https", shown(v)),
                accepted: "https://events.pagerduty.com or https://events.eu.pagerduty.com".into(),
            })
        }
    });
    crate::notify::Targets {
        slack,
        teams,
        pagerduty: key.zip(base),
    }
}

/// The records of deploy, rollback, cherry-pick and incident. Deploy and
/// rollback look for GitHub access only when a token or App is given, so a
/// terminal run without one records nothing; cherry-pick and incident
/// (`own_access`) bring their own, and incident reads its id itself.
pub(super) fn records_config(
    r: &mut Resolver<'_>,
    env: &Env,
    token: Option<&SecretString>,
    own_access: Option<&GithubAccess>,
) -> RecordsConfig {
    let raw = r.raw;
    let incident = if raw.command == Command::Incident {
        None
    } else {
        r.parse("incident", incident_id)
    };
    let environment = r
        .parse("environment", |v| {
            // azure/login's `environment` is the Azure cloud; here it is the
            // GitHub deployment environment. A cloud's name is that mistake.
            const CLOUDS: [&str; 5] = [
                "azurecloud",
                "azurechinacloud",
                "azureusgovernment",
                "azuregermancloud",
                "azurestack",
            ];
            if CLOUDS.iter().any(|c| c.eq_ignore_ascii_case(v)) {
                return Err(ValueError {
                    problem: format!(
                        "{} is an Azure cloud (azure/login's `environment`); here `environment` is the GitHub deployment environment",
                        shown(v)
                    ),
                    accepted: "a GitHub environment name such as production; for another Azure cloud set arm-endpoint and authority-host".into(),
                });
            }
            if !v.is_empty() && v.len() <= 255 && !v.chars().any(char::is_control) {
                Ok(v.to_string())
            } else {
                Err(ValueError {
                    problem: format!("{} is not an environment name", shown(v)),
                    accepted: "a name such as production".into(),
                })
            }
        })
        .unwrap_or_else(|| "production".into());
    let targets = notify_targets(r);
    let has_auth = token.is_some() || raw.get("app-id").is_some();
    let has_repo = raw.get("repository").is_some() || env.runner().repository.is_some();
    let github = if matches!(raw.command, Command::CherryPick | Command::Incident) {
        own_access.cloned()
    } else if has_auth && has_repo {
        access(r, env, token)
    } else {
        if incident.is_some() {
            // Asked for a timeline and cannot write one: an input error now
            // beats a silent gap in the record.
            r.error(
                "incident",
                "needs a GitHub token and repository to comment on the incident's timeline",
                "pass github-token (the default in a workflow) and repository",
            );
        }
        None
    };
    let http = github.as_ref().map(|g| g.http.clone()).unwrap_or_else(|| {
        let resolve = r
            .raw
            .get("resolve")
            .map(|v| {
                values::parse_list(v)
                    .iter()
                    .filter_map(|rule| rule.parse::<crate::http::ResolveRule>().ok())
                    .collect()
            })
            .unwrap_or_default();
        let ca = r
            .raw
            .get("ca-cert")
            .and_then(|p| std::fs::read_to_string(p).ok());
        HttpSettings {
            resolve,
            extra_ca_pem: ca.into_iter().collect(),
            ..HttpSettings::default()
        }
    });
    RecordsConfig {
        github,
        incident,
        environment,
        targets,
        http,
    }
}

/// `incident`'s settings.
pub(super) fn incident_config(
    r: &mut Resolver<'_>,
    env: &Env,
    token: Option<&SecretString>,
) -> Option<IncidentConfig> {
    let github = access(r, env, token);
    let id = r.parse("incident", incident_id);
    let raw = r.raw;
    let text = |name: &str| raw.get(name).map(str::to_string);
    let action = match raw.get("incident-action") {
        Some("create") => {
            let severity = match raw.get("severity") {
                Some(v) => match v.parse::<crate::notify::Sev>() {
                    Ok(s) => Some(s),
                    Err(_) => {
                        r.error(
                            "severity",
                            format!("{} is not a severity", shown(v)),
                            "sev0, sev1, sev2 or sev3",
                        );
                        None
                    }
                },
                None => {
                    r.error(
                        "severity",
                        "is required by `create`",
                        "sev0, sev1, sev2 or sev3",
                    );
                    None
                }
            };
            let title = text("title");
            if title.is_none() {
                r.error(
                    "title",
                    "is required by `create`",
                    "say in one line what is broken",
                );
            }
            match (severity, title) {
                (Some(severity), Some(title)) => Some(IncidentAction::Create {
                    severity,
                    title: title.lines().next().unwrap_or_default().to_string(),
                }),
                _ => None,
            }
        }
        Some("update") => match text("message") {
            Some(message) => Some(IncidentAction::Update { message }),
            None => {
                r.error("message", "is required by `update`", "say what happened");
                None
            }
        },
        Some("resolve") => Some(IncidentAction::Resolve {
            root_cause: text("root-cause"),
            action_items: raw
                .get("action-items")
                .map(|v| {
                    v.lines()
                        .map(|l| l.trim().trim_start_matches(['-', '*']).trim())
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }),
        Some(other) => {
            r.error(
                "incident-action",
                format!("{} is not an action", shown(other)),
                "create, update or resolve",
            );
            None
        }
        None => None,
    };
    Some(IncidentConfig {
        github: github?,
        id: id?,
        action: action?,
    })
}

/// Which command each builder serves (keeps `Config::resolve`'s edit small).
pub(super) fn applies(c: Command) -> bool {
    matches!(c, Command::CherryPick | Command::Start | Command::Tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_safety() {
        for ok in ["INC-4521", "large-orders", "2.4.1", "a_b"] {
            assert!(ref_component_ok(ok), "{ok}");
        }
        for bad in [
            "", "-rf", ".hidden", "a..b", "x.lock", "a b", "a;rm", "$(x)", "a/b", "ä", "x.",
        ] {
            assert!(!ref_component_ok(bad), "{bad}");
        }
        assert!(commit_token_ok("abc1234"));
        assert!(commit_token_ok("release/2.4.0..release/2.4.1"));
        assert!(!commit_token_ok("a...b"));
        assert!(!commit_token_ok("--upload-pack=x"));
    }
}
