//! GitHub's REST API, the part the hotfix commands use: refs and tags,
//! commits and compare, branches, pull requests, labels and assignees,
//! issues and comments (incident records), deployments and their statuses.
//!
//! Requests go through [`crate::http`] (ADR 0006): the same TLS trust
//! (`ca-cert`), host resolution (`resolve`), timeouts and retry policy as
//! every other client — GET retried on 429/5xx/transport errors, POST sent
//! once (a repeated "create pull request" would open two). Responses are
//! typed serde structs holding only the fields read. Errors keep GitHub's
//! status, message and `errors[]`.

pub mod auth;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cancel::Cancel;
use crate::config::github::GithubAccess;
use crate::http::{self, HttpError, Idempotency, RetryPolicy};

/// The REST API version requested (the one GitHub assumes when absent).
pub const API_VERSION: &str = "2022-11-28";

/// A REST call that failed.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub answered with an error status; `message` and `errors` are
    /// GitHub's own words.
    #[error("GitHub answered {status} to {method} {path}: {message}{}", if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) })]
    Api {
        /// HTTP status.
        status: u16,
        /// Method.
        method: String,
        /// Path below the API base.
        path: String,
        /// `message`.
        message: String,
        /// `errors[]`, one line each.
        errors: Vec<String>,
    },
    /// No answer (network, TLS, timeout) or a client configuration problem.
    #[error(transparent)]
    Http(HttpError),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from GitHub to {what}: {detail}")]
    Decode {
        /// The request.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl GithubError {
    /// The HTTP status GitHub answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the request may or may not have been acted on: GitHub
    /// answered 5xx, the answer was lost on the way (sent, then the
    /// connection failed or timed out), or it could not be read. Read the
    /// state before sending it again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            GithubError::Api { status, .. } => *status >= 500,
            GithubError::Http(HttpError::Transport { maybe_applied, .. }) => *maybe_applied,
            GithubError::Http(_) => false,
            GithubError::Decode { .. } => true,
        }
    }

    /// True when GitHub's message or errors contain `text`.
    pub fn mentions(&self, text: &str) -> bool {
        match self {
            GithubError::Api {
                message, errors, ..
            } => message.contains(text) || errors.iter().any(|e| e.contains(text)),
            _ => false,
        }
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

fn api_error(method: &str, path: &str, e: HttpError) -> GithubError {
    match e {
        HttpError::Status { status, body, .. } => {
            let parsed: ErrorBody = serde_json::from_str(&body).unwrap_or_else(|_| ErrorBody {
                message: body.trim().chars().take(300).collect(),
                errors: Vec::new(),
            });
            let errors = parsed
                .errors
                .iter()
                .map(|e| match e {
                    serde_json::Value::String(s) => s.clone(),
                    v => v
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            let f = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
                            format!("{} {} {}", f("resource"), f("field"), f("code"))
                                .trim()
                                .to_string()
                        }),
                })
                .collect();
            GithubError::Api {
                status: status.as_u16(),
                method: method.to_string(),
                path: path.to_string(),
                message: parsed.message,
                errors,
            }
        }
        other => GithubError::Http(other),
    }
}

/// One signed-in REST client for one repository.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    cancel: Cancel,
    policy: RetryPolicy,
    /// `owner/repo`.
    pub repo: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("repo", &self.repo)
            .finish()
    }
}

/// A ref (`GET git/ref/…`).
#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    /// `refs/heads/x`, `refs/tags/y`.
    #[serde(rename = "ref")]
    pub name: String,
    /// What it points at.
    pub object: GitObject,
}

/// An object a ref or tag points at.
#[derive(Debug, Clone, Deserialize)]
pub struct GitObject {
    /// Its SHA.
    pub sha: String,
    /// `commit`, `tag`, `tree`, `blob`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An annotated tag object.
#[derive(Debug, Clone, Deserialize)]
pub struct TagObject {
    /// The tag object's SHA.
    pub sha: String,
    /// The tag's name.
    pub tag: String,
    /// What it tags.
    pub object: GitObject,
}

/// A GitHub user (the login behind a commit's e-mail, when GitHub knows it).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Login.
    pub login: String,
}

/// A commit's SHA.
#[derive(Debug, Clone, Deserialize)]
pub struct Sha {
    /// SHA.
    pub sha: String,
}

/// A commit as `GET commits/{ref}` and compare list it.
#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    /// SHA.
    pub sha: String,
    /// The author's GitHub account (null when GitHub cannot map the e-mail).
    pub author: Option<User>,
    /// Parents.
    #[serde(default)]
    pub parents: Vec<Sha>,
    /// The git commit (message).
    pub commit: Option<CommitDetail>,
}

/// The git part of a [`Commit`].
#[derive(Debug, Clone, Deserialize)]
pub struct CommitDetail {
    /// The message (untrusted text).
    #[serde(default)]
    pub message: String,
}

/// `GET compare/{base}...{head}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Compare {
    /// `ahead`, `behind`, `diverged`, `identical`.
    pub status: String,
    /// Commits in head not in base, oldest first (at most 250).
    #[serde(default)]
    pub commits: Vec<Commit>,
    /// All of them.
    #[serde(default)]
    pub total_commits: u64,
}

/// `GET branches/{b}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    /// Whether protection rules apply.
    #[serde(default)]
    pub protected: bool,
    /// Its tip.
    pub commit: Sha,
}

/// A pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    /// Number.
    pub number: u64,
    /// Web URL.
    pub html_url: String,
    /// Draft or not.
    #[serde(default)]
    pub draft: bool,
    /// `open`, `closed`.
    pub state: String,
    /// The branch it merges into.
    #[serde(default)]
    pub base: PullBranch,
}

/// One side of a pull request (`base`, `head`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PullBranch {
    /// The branch name (`main`).
    #[serde(rename = "ref", default)]
    pub name: String,
}

/// What a new pull request holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewPull<'a> {
    /// Title.
    pub title: &'a str,
    /// Head branch.
    pub head: &'a str,
    /// Base branch.
    pub base: &'a str,
    /// Body (markdown).
    pub body: &'a str,
    /// Draft.
    pub draft: bool,
    /// Let maintainers push to the branch.
    pub maintainer_can_modify: bool,
}

impl Api {
    /// A client for `access`'s repository signed in with `token`.
    pub fn new(
        http: reqwest::Client,
        access: &GithubAccess,
        token: SecretString,
        cancel: Cancel,
    ) -> Self {
        Api {
            http,
            base: access.api_url.as_str().trim_end_matches('/').to_string(),
            token,
            cancel,
            policy: RetryPolicy {
                max_attempts: 4,
                budget: std::time::Duration::from_secs(60),
                ..RetryPolicy::default()
            },
            repo: format!("{}/{}", access.owner, access.repo),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(self.token.expose_secret())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<http::Response, GithubError> {
        let idempotency = if method == reqwest::Method::GET {
            Idempotency::Idempotent
        } else {
            Idempotency::Once
        };
        let m = method.clone();
        http::send(
            || {
                let r = self.request(m.clone(), path);
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            },
            idempotency,
            &self.policy,
            &self.cancel,
        )
        .await
        .map_err(|e| api_error(method.as_str(), path, e))
    }

    fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, GithubError> {
        serde_json::from_str(body).map_err(|e| GithubError::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })
    }

    /// `GET path` as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, GithubError> {
        let r = self.call(reqwest::Method::GET, path, None).await?;
        Self::decode(&format!("GET {path}"), &r.text())
    }

    /// `POST path` with a JSON body, sent once.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, GithubError> {
        let r = self.call(reqwest::Method::POST, path, Some(body)).await?;
        Self::decode(&format!("POST {path}"), &r.text())
    }

    async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, GithubError> {
        match self.get_json(path).await {
            Ok(t) => Ok(Some(t)),
            Err(GithubError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every page of a list (`Link: <…>; rel="next"`), up to `max` items.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> Result<Vec<T>, GithubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut out = Vec::new();
        while let Some(p) = next.take() {
            let r = self.call(reqwest::Method::GET, &p, None).await?;
            let page: Vec<T> = Self::decode(&format!("GET {p}"), &r.text())?;
            out.extend(page);
            if out.len() >= max {
                break;
            }
            next = r.header("link").and_then(|l| next_link(l, &self.base));
        }
        Ok(out)
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{rest}", self.repo)
    }

    /// A ref (`heads/x`, `tags/y`), or `None`.
    pub async fn get_ref(&self, name: &str) -> Result<Option<GitRef>, GithubError> {
        self.get_opt(&self.repo_path(&format!("git/ref/{}", enc_path(name))))
            .await
    }

    /// Refs starting with `prefix` (`tags/release/`).
    pub async fn matching_refs(&self, prefix: &str) -> Result<Vec<GitRef>, GithubError> {
        match self
            .list(
                &self.repo_path(&format!("git/matching-refs/{}", enc_path(prefix))),
                10_000,
            )
            .await
        {
            Ok(v) => Ok(v),
            // An empty repository has no refs at all.
            Err(GithubError::Api { status: 409, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Creates `refs/…` at `sha`.
    pub async fn create_ref(&self, full_name: &str, sha: &str) -> Result<GitRef, GithubError> {
        self.post_json(
            &self.repo_path("git/refs"),
            &serde_json::json!({ "ref": full_name, "sha": sha }),
        )
        .await
    }

    /// Creates an annotated tag object (no ref yet).
    pub async fn create_tag_object(
        &self,
        tag: &str,
        message: &str,
        commit: &str,
    ) -> Result<TagObject, GithubError> {
        self.post_json(
            &self.repo_path("git/tags"),
            &serde_json::json!({ "tag": tag, "message": message, "object": commit, "type": "commit" }),
        )
        .await
    }

    /// An annotated tag object.
    pub async fn tag_object(&self, sha: &str) -> Result<TagObject, GithubError> {
        self.get_json(&self.repo_path(&format!("git/tags/{sha}")))
            .await
    }

    /// The commit a ref names, through annotated tags (a ref to a tag
    /// object points at the tag, which points at the commit; at most four
    /// levels are followed).
    pub async fn peel(&self, r: &GitRef) -> Result<String, GithubError> {
        let mut obj = r.object.clone();
        for _ in 0..4 {
            if obj.kind != "tag" {
                break;
            }
            obj = self.tag_object(&obj.sha).await?.object;
        }
        Ok(obj.sha)
    }

    /// A commit by SHA or ref name; `None` when there is none.
    pub async fn commit(&self, rev: &str) -> Result<Option<Commit>, GithubError> {
        match self
            .get_json(&self.repo_path(&format!("commits/{}", enc_path(rev))))
            .await
        {
            Ok(c) => Ok(Some(c)),
            // GitHub answers 422 "No commit found for SHA" for unknown refs.
            Err(GithubError::Api {
                status: 404 | 422, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `compare/{base}...{head}`.
    pub async fn compare(&self, base: &str, head: &str) -> Result<Compare, GithubError> {
        self.get_json(&self.repo_path(&format!("compare/{}...{}", enc_path(base), enc_path(head))))
            .await
    }

    /// A branch, or `None`.
    pub async fn branch(&self, name: &str) -> Result<Option<Branch>, GithubError> {
        self.get_opt(&self.repo_path(&format!("branches/{}", enc_path(name))))
            .await
    }

    /// Pull requests from `branch` of this repository (any state).
    pub async fn pulls_from(&self, branch: &str) -> Result<Vec<Pull>, GithubError> {
        let owner = self.repo.split('/').next().unwrap_or_default();
        let head = url::form_urlencoded::byte_serialize(format!("{owner}:{branch}").as_bytes())
            .collect::<String>();
        self.list(
            &self.repo_path(&format!("pulls?state=all&head={head}")),
            100,
        )
        .await
    }

    /// Opens a pull request.
    pub async fn create_pull(&self, pull: &NewPull<'_>) -> Result<Pull, GithubError> {
        let body = serde_json::to_value(pull).map_err(|e| GithubError::Decode {
            what: "pull request body".into(),
            detail: e.to_string(),
        })?;
        self.post_json(&self.repo_path("pulls"), &body).await
    }

    /// Adds labels to an issue or pull request.
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), GithubError> {
        self.call(
            reqwest::Method::POST,
            &self.repo_path(&format!("issues/{number}/labels")),
            Some(&serde_json::json!({ "labels": labels })),
        )
        .await
        .map(|_| ())
    }

    /// Assigns people to an issue or pull request.
    pub async fn add_assignees(&self, number: u64, logins: &[String]) -> Result<(), GithubError> {
        self.call(
            reqwest::Method::POST,
            &self.repo_path(&format!("issues/{number}/assignees")),
            Some(&serde_json::json!({ "assignees": logins })),
        )
        .await
        .map(|_| ())
    }
}

/// What a conditional GET found.
#[derive(Debug, Clone)]
pub enum Conditional {
    /// `304 Not Modified`: what the caller holds is current (and the call
    /// did not count against the rate limit).
    NotModified,
    /// The resource, with its `ETag` for the next call.
    Found {
        /// The validator to send back as `If-None-Match`.
        etag: Option<String>,
        /// The JSON body.
        body: String,
    },
    /// `404`.
    Missing,
}

/// A workflow run's progress (what a lock needs to know of its holder).
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    /// The latest attempt.
    #[serde(default)]
    pub run_attempt: Option<u32>,
}

/// One entry of a new tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeEntry<'a> {
    /// File name.
    pub path: &'a str,
    /// `100644` for a file.
    pub mode: &'a str,
    /// `blob`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// An existing blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<&'a str>,
    /// Or its text (GitHub creates the blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// A tree as GitHub returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Tree {
    /// Its SHA.
    pub sha: String,
    /// Entries.
    #[serde(default)]
    pub tree: Vec<TreeItem>,
}

/// One entry of a tree.
#[derive(Debug, Clone, Deserialize)]
pub struct TreeItem {
    /// File name.
    pub path: String,
    /// The object's SHA.
    pub sha: String,
    /// `blob` or `tree`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size of a blob.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A commit object from the git database.
#[derive(Debug, Clone, Deserialize)]
pub struct GitCommit {
    /// Its SHA.
    pub sha: String,
    /// The message.
    pub message: String,
    /// Its tree.
    pub tree: Sha,
}

impl Api {
    /// A conditional `GET`: `304` when `etag` still matches.
    pub async fn get_conditional(
        &self,
        path: &str,
        etag: Option<&str>,
    ) -> Result<Conditional, GithubError> {
        let r = http::send(
            || {
                let mut r = self.request(reqwest::Method::GET, path);
                if let Some(e) = etag {
                    r = r.header("if-none-match", e);
                }
                r
            },
            Idempotency::Idempotent,
            &self.policy,
            &self.cancel,
        )
        .await;
        match r {
            Ok(r) if r.status == reqwest::StatusCode::NOT_MODIFIED => Ok(Conditional::NotModified),
            Ok(r) => Ok(Conditional::Found {
                etag: r.header("etag").map(str::to_string),
                body: r.text().into_owned(),
            }),
            Err(e) => match api_error("GET", path, e) {
                GithubError::Api { status: 404, .. } => Ok(Conditional::Missing),
                other => Err(other),
            },
        }
    }

    /// The path of a ref below the API (`git/ref/…`), from its full name.
    pub fn ref_path(&self, full_name: &str) -> String {
        let short = full_name.strip_prefix("refs/").unwrap_or(full_name);
        self.repo_path(&format!("git/ref/{}", enc_path(short)))
    }

    /// Moves `refs/…` to `sha`; without `force` only as a fast-forward, which
    /// GitHub checks atomically (a compare-and-set: 422 otherwise).
    pub async fn update_ref(
        &self,
        full_name: &str,
        sha: &str,
        force: bool,
    ) -> Result<GitRef, GithubError> {
        let short = full_name.strip_prefix("refs/").unwrap_or(full_name);
        let path = self.repo_path(&format!("git/refs/{}", enc_path(short)));
        let r = self
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(&serde_json::json!({ "sha": sha, "force": force })),
            )
            .await?;
        Self::decode(&format!("PATCH {path}"), &r.text())
    }

    /// Deletes `refs/…`.
    pub async fn delete_ref(&self, full_name: &str) -> Result<(), GithubError> {
        let short = full_name.strip_prefix("refs/").unwrap_or(full_name);
        let path = self.repo_path(&format!("git/refs/{}", enc_path(short)));
        self.call(reqwest::Method::DELETE, &path, None)
            .await
            .map(|_| ())
    }

    /// Creates a tree from `entries`.
    pub async fn create_tree(&self, entries: &[TreeEntry<'_>]) -> Result<Tree, GithubError> {
        self.post_json(
            &self.repo_path("git/trees"),
            &serde_json::json!({ "tree": entries }),
        )
        .await
    }

    /// A tree.
    pub async fn tree(&self, sha: &str) -> Result<Tree, GithubError> {
        self.get_json(&self.repo_path(&format!("git/trees/{sha}")))
            .await
    }

    /// Creates a commit object (no ref moves).
    pub async fn create_commit(
        &self,
        message: &str,
        tree: &str,
        parents: &[&str],
    ) -> Result<GitCommit, GithubError> {
        self.post_json(
            &self.repo_path("git/commits"),
            &serde_json::json!({ "message": message, "tree": tree, "parents": parents }),
        )
        .await
    }

    /// A commit object from the git database.
    pub async fn git_commit(&self, sha: &str) -> Result<GitCommit, GithubError> {
        self.get_json(&self.repo_path(&format!("git/commits/{sha}")))
            .await
    }

    /// Stores `bytes` as a blob (GitHub takes at most 100 MB).
    pub async fn create_blob(&self, bytes: &[u8]) -> Result<Sha, GithubError> {
        use base64::Engine;
        let content = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.post_json(
            &self.repo_path("git/blobs"),
            &serde_json::json!({ "content": content, "encoding": "base64" }),
        )
        .await
    }

    /// A blob's raw bytes, read up to `limit`.
    pub async fn blob_raw(&self, sha: &str, limit: usize) -> Result<Vec<u8>, GithubError> {
        let path = self.repo_path(&format!("git/blobs/{sha}"));
        let r = http::send_limited(
            || {
                self.request(reqwest::Method::GET, &path)
                    .header("accept", "application/vnd.github.raw")
            },
            Idempotency::Idempotent,
            &self.policy,
            limit,
            &self.cancel,
        )
        .await
        .map_err(|e| api_error("GET", &path, e))?;
        Ok(r.bytes)
    }

    /// A workflow run of this repository, or `None` (unknown, or the token
    /// may not read Actions).
    pub async fn workflow_run(&self, id: u64) -> Result<Option<WorkflowRun>, GithubError> {
        match self
            .get_json(&self.repo_path(&format!("actions/runs/{id}")))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(GithubError::Api {
                status: 403 | 404, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An issue (incident records are issues).
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// Number.
    pub number: u64,
    /// Web URL.
    pub html_url: String,
    /// Title (untrusted text).
    #[serde(default)]
    pub title: String,
    /// `open`, `closed`.
    pub state: String,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Set on pull requests (the issues list includes them).
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

/// A label on an issue.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    /// Name.
    pub name: String,
}

/// An issue comment.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    /// Id.
    pub id: u64,
    /// Web URL.
    pub html_url: String,
}

/// A deployment (`POST/GET deployments`).
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    /// Id.
    pub id: u64,
    /// The environment.
    #[serde(default)]
    pub environment: String,
    /// What the creator attached (expedite: app and versions).
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A deployment status.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    /// Id.
    pub id: u64,
    /// `in_progress`, `success`, `failure`, …
    pub state: String,
}

impl Api {
    /// Opens an issue.
    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Issue, GithubError> {
        self.post_json(
            &self.repo_path("issues"),
            &serde_json::json!({ "title": title, "body": body, "labels": labels }),
        )
        .await
    }

    /// Issues (not pull requests) carrying `label`, open and closed, newest
    /// first, up to `max`.
    pub async fn issues_labelled(
        &self,
        label: &str,
        max: usize,
    ) -> Result<Vec<Issue>, GithubError> {
        let l = url::form_urlencoded::byte_serialize(label.as_bytes()).collect::<String>();
        let all: Vec<Issue> = self
            .list(
                &self.repo_path(&format!(
                    "issues?state=all&labels={l}&sort=created&direction=desc"
                )),
                max,
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect())
    }

    /// One issue, or `None`.
    pub async fn issue(&self, number: u64) -> Result<Option<Issue>, GithubError> {
        self.get_opt(&self.repo_path(&format!("issues/{number}")))
            .await
    }

    /// Changes an issue (`state`, `state_reason`, `title`, …).
    pub async fn patch_issue(
        &self,
        number: u64,
        changes: &serde_json::Value,
    ) -> Result<Issue, GithubError> {
        let path = self.repo_path(&format!("issues/{number}"));
        let r = self
            .call(reqwest::Method::PATCH, &path, Some(changes))
            .await?;
        Self::decode(&format!("PATCH {path}"), &r.text())
    }

    /// Comments on an issue or pull request.
    pub async fn comment(&self, number: u64, body: &str) -> Result<IssueComment, GithubError> {
        self.post_json(
            &self.repo_path(&format!("issues/{number}/comments")),
            &serde_json::json!({ "body": body }),
        )
        .await
    }

    /// Creates a deployment (`body` as the REST API documents it).
    pub async fn create_deployment(
        &self,
        body: &serde_json::Value,
    ) -> Result<Deployment, GithubError> {
        self.post_json(&self.repo_path("deployments"), body).await
    }

    /// Deployments of `environment`, newest first, up to `max`.
    pub async fn deployments(
        &self,
        environment: &str,
        max: usize,
    ) -> Result<Vec<Deployment>, GithubError> {
        let e = url::form_urlencoded::byte_serialize(environment.as_bytes()).collect::<String>();
        self.list(
            &self.repo_path(&format!("deployments?environment={e}")),
            max,
        )
        .await
    }

    /// Adds a status to a deployment (`body`: state, log_url, …).
    pub async fn create_deployment_status(
        &self,
        id: u64,
        body: &serde_json::Value,
    ) -> Result<DeploymentStatus, GithubError> {
        self.post_json(&self.repo_path(&format!("deployments/{id}/statuses")), body)
            .await
    }

    /// A deployment's statuses, newest first.
    pub async fn deployment_statuses(&self, id: u64) -> Result<Vec<DeploymentStatus>, GithubError> {
        self.list(&self.repo_path(&format!("deployments/{id}/statuses")), 100)
            .await
    }
}

/// Percent-encodes each path segment of a ref name, keeping the slashes.
fn enc_path(s: &str) -> String {
    s.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn percent_encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` link as a path below `base` (links elsewhere are not
/// followed: the token must not travel to another host).
fn next_link(header: &str, base: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        if !rel.contains("rel=\"next\"") {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        url.strip_prefix(base).map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_paths() {
        let h = r#"<https://api.github.test/repos/o/r/pulls?page=2>; rel="next", <https://api.github.test/repos/o/r/pulls?page=3>; rel="last""#;
        assert_eq!(
            next_link(h, "https://api.github.test").as_deref(),
            Some("/repos/o/r/pulls?page=2")
        );
        assert_eq!(next_link(h, "https://evil.test"), None);
        assert_eq!(enc_path("tags/release/2.4.1"), "tags/release/2.4.1");
        assert_eq!(enc_path("heads/a b#"), "heads/a%20b%23");
    }

    #[test]
    fn github_errors_keep_status_and_message() {
        let e = api_error(
            "POST",
            "/repos/o/r/pulls",
            HttpError::Status {
                method: reqwest::Method::POST,
                url: "x".into(),
                status: reqwest::StatusCode::UNPROCESSABLE_ENTITY,
                body: r#"{"message":"Validation Failed","errors":[{"message":"A pull request already exists for o:b."}]}"#.into(),
                request_id: None,
            },
        );
        assert_eq!(e.status(), Some(422));
        assert!(e.mentions("already exists"));
        assert!(e.to_string().contains("Validation Failed"));
    }
}
