//! The sandbox GitHub: the REST subset expedite uses (`api.github.test`,
//! shaped like api.github.com), a GraphQL subset for reading it back
//! (`api.github.test/graphql`), and git smart-HTTP (`github.test`) through
//! `git http-backend`. `github.test` also serves both APIs in GitHub
//! Enterprise Server's layout (`/api/v3/…`, `/api/graphql`), which gh and
//! other clients use for any host but github.com. All of it is backed by
//! real bare repositories in a temp dir the sandbox owns. Every read goes
//! to git (`rev-parse`, `cat-file`, `rev-list`, `diff`) and every git
//! database write to git plumbing (`hash-object`, `mktree`,
//! `update-ref`); only what git cannot hold
//! (issues, pull requests, comments, labels, deployments, workflow runs,
//! installations, tokens, protection) lives in [`State`].
//!
//! Auth: a fixed-per-start personal token (`ghp_sandbox…`, every
//! permission), and a GitHub App (id [`APP_ID`], fixed TEST key
//! [`APP_PRIVATE_KEY_PEM`]) whose RS256 JWTs reach `/app*` and
//! `/repos/{o}/{r}/installation`, and whose installations (one per owner,
//! created with the owner's first repository) mint `ghs_…` tokens with a
//! per-installation permission set.
//!
//! Git recipe (see [`GitHub::git_config`]): the sandbox listens on a random
//! port, and curl's `RESOLVE` cannot change ports, so clients rewrite
//! `https://github.test/` to `https://github.test:{port}/` with
//! `url.<base>.insteadOf` and resolve `github.test:{port}` to 127.0.0.1 with
//! `http.curloptResolve`, trusting the CA with `http.sslCAInfo`.

mod auth;
mod git_http;
mod graphql;
mod keys;
mod rest;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use crate::SandboxError;
use crate::respond::{self, Req, Resp};
use crate::server::Shared;

pub use keys::{APP_PRIVATE_KEY_PEM, WRONG_PRIVATE_KEY_PEM};

pub(crate) use git_http::{full_body, is_git_request, serve_git};
pub(crate) use rest::handle_api;

/// The REST API host (like `api.github.com`).
pub const API_HOST: &str = "api.github.test";
/// The git smart-HTTP host (like `github.com`).
pub const GIT_HOST: &str = "github.test";
/// The sandbox GitHub App's id.
pub const APP_ID: u64 = 4242;
/// The sandbox GitHub App's slug (its bot is `expedite-sandbox[bot]`).
pub const APP_SLUG: &str = "expedite-sandbox";
/// The sandbox GitHub App's client id (also accepted as JWT `iss`).
pub const APP_CLIENT_ID: &str = "Iv23liSandbox4242";
/// Login of the personal token's user.
pub const TOKEN_USER: &str = "sandbox-user";

/// What an installation may do unless a test narrows it.
pub fn default_permissions() -> BTreeMap<String, String> {
    [
        ("actions", "write"),
        ("checks", "write"),
        ("contents", "write"),
        ("deployments", "write"),
        ("issues", "write"),
        ("metadata", "read"),
        ("pull_requests", "write"),
        ("statuses", "write"),
        ("workflows", "write"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub(crate) struct GitHub {
    pub root: PathBuf,
    pub repos_dir: PathBuf,
    hooks_dir: PathBuf,
    pub api_url: String,
    pub server_url: String,
    pub personal_token: String,
    pub key_path: PathBuf,
    pub https_port: u16,
    decoding: jsonwebtoken::DecodingKey,
    pub state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub repos: BTreeMap<String, Repo>,
    pub installations: BTreeMap<String, Installation>,
    pub tokens: HashMap<String, Token>,
    pub next_id: u64,
    /// Requests whose answer is withheld after they were applied (set with
    /// `POST /_sandbox/github/drop-answers`).
    pub drop_answers: Vec<DropAnswer>,
}

/// "Apply the next `remaining` matching REST requests, then close the
/// connection instead of answering": a lost answer to a write that took
/// effect (the front door's `drop_connection` fault drops before applying).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DropAnswer {
    /// HTTP method, case-insensitive.
    pub method: String,
    /// Path prefix on `api.github.test` (`/repos/o/r/pulls`).
    pub path_prefix: String,
    /// Matches left.
    pub remaining: u32,
}

impl State {
    /// Whether the answer to this (already applied) request is to be
    /// dropped; counts the rule down.
    pub fn take_drop_answer(&mut self, method: &str, path: &str) -> bool {
        let Some(rule) = self.drop_answers.iter_mut().find(|r| {
            r.remaining > 0
                && r.method.eq_ignore_ascii_case(method)
                && path.starts_with(r.path_prefix.as_str())
        }) else {
            return false;
        };
        rule.remaining -= 1;
        self.drop_answers.retain(|r| r.remaining > 0);
        true
    }
}

impl State {
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

pub(crate) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub path: PathBuf,
    pub default_branch: String,
    pub protected: BTreeSet<String>,
    pub created_at: DateTime<Utc>,
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
    pub labels: BTreeMap<String, Label>,
    pub deployments: Vec<Deployment>,
    /// Workflow runs, set through the control API (nothing runs them).
    pub runs: BTreeMap<u64, WorkflowRun>,
}

/// A GitHub Actions workflow run as `GET /actions/runs/{id}` shows it.
#[derive(Clone, Debug)]
pub(crate) struct WorkflowRun {
    pub id: u64,
    pub name: String,
    pub display_title: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub head_branch: Option<String>,
    pub head_sha: String,
    pub event: String,
    pub path: String,
    pub run_number: u64,
    pub run_attempt: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub run_started_at: DateTime<Utc>,
}

/// Statuses GitHub documents for workflow runs.
const RUN_STATUSES: &[&str] = &[
    "requested",
    "waiting",
    "pending",
    "queued",
    "in_progress",
    "completed",
];
/// Conclusions GitHub documents for completed runs.
const RUN_CONCLUSIONS: &[&str] = &[
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "stale",
    "startup_failure",
];

/// What `PUT /_sandbox/github/repos/{o}/{r}/runs/{id}` sends: the status
/// and conclusion, and optionally what the run is about (kept from the last
/// update, else defaulted on creation).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunUpdate {
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_title: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u64>,
}

#[derive(Clone)]
pub(crate) struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
}

/// An issue or a pull request (they share one number sequence).
#[derive(Clone)]
pub(crate) struct Item {
    pub number: u64,
    pub id: u64,
    pub pr_id: u64,
    pub title: String,
    pub body: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub user: Actor,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub pull: Option<Pull>,
}

#[derive(Clone)]
pub(crate) struct Pull {
    pub head_ref: String,
    pub base_ref: String,
    pub draft: bool,
    pub maintainer_can_modify: bool,
}

#[derive(Clone)]
pub(crate) struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: Actor,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub(crate) struct Deployment {
    pub id: u64,
    pub sha: String,
    pub git_ref: String,
    pub task: String,
    pub payload: Value,
    pub environment: String,
    pub original_environment: String,
    pub description: Option<String>,
    pub creator: Actor,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub transient: bool,
    pub production: bool,
    pub statuses: Vec<DeploymentStatus>,
}

#[derive(Clone)]
pub(crate) struct DeploymentStatus {
    pub id: u64,
    pub state: String,
    pub description: String,
    pub environment: String,
    pub target_url: String,
    pub log_url: String,
    pub environment_url: String,
    pub creator: Actor,
    pub created_at: DateTime<Utc>,
}

pub(crate) struct Installation {
    pub id: u64,
    pub owner: String,
    pub permissions: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

/// Who a credential acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Actor {
    pub login: String,
    pub id: u64,
    pub bot: bool,
}

impl Actor {
    pub fn personal() -> Self {
        Actor {
            login: TOKEN_USER.into(),
            id: 1001,
            bot: false,
        }
    }

    pub fn app_bot() -> Self {
        Actor {
            login: format!("{APP_SLUG}[bot]"),
            id: 900_000 + APP_ID,
            bot: true,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub actor: Actor,
    /// `None` for the personal token (every permission, every repository).
    pub installation: Option<u64>,
    pub owner: Option<String>,
    pub repositories: Option<BTreeSet<String>>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Token {
    /// Whether the token grants `perm` at `write` (or only `read`) level.
    pub fn can(&self, perm: &str, write: bool) -> bool {
        if self.installation.is_none() {
            return true;
        }
        if perm == "metadata" && !write {
            return true;
        }
        match self.permissions.get(perm).map(String::as_str) {
            Some("write" | "admin") => true,
            Some("read") => !write,
            _ => false,
        }
    }

    /// Whether the token reaches `owner/name` at all.
    pub fn reaches(&self, owner: &str, name: &str) -> bool {
        match (&self.owner, &self.repositories) {
            (None, _) => true,
            (Some(o), repos) => {
                o.eq_ignore_ascii_case(owner)
                    && repos
                        .as_ref()
                        .is_none_or(|r| r.contains(&name.to_ascii_lowercase()))
            }
        }
    }
}

pub(crate) fn repo_key(owner: &str, name: &str) -> String {
    format!(
        "{}/{}",
        owner.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    )
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The pre-receive hook every sandbox repository runs. It reads what the
/// server passes to `git http-backend`; a local push (tests writing
/// fixtures straight into the bare repository) sets none of it and passes.
const PRE_RECEIVE: &str = r#"#!/bin/sh
# expedite sandbox GitHub: default-branch deletion, branch protection and the
# App `workflows` permission. Reasons go to $EXPEDITE_GH_REASONS (one
# "ref reason" line each) so the server can put them in the push report.
z40=0000000000000000000000000000000000000000
fail=0
while read old new ref; do
  reason=
  if [ "$new" = "$z40" ] && [ -n "$EXPEDITE_GH_DEFAULT" ] && [ "$ref" = "refs/heads/$EXPEDITE_GH_DEFAULT" ]; then
    reason="refusing to delete the current branch: $ref"
  fi
  if [ -z "$reason" ]; then
    case " $EXPEDITE_GH_PROTECTED " in
      *" $ref "*)
        echo "error: GH006: Protected branch update failed for $ref." >&2
        echo "error: Changes must be made through a pull request." >&2
        reason="protected branch hook declined";;
    esac
  fi
  if [ -z "$reason" ] && [ "$EXPEDITE_GH_WORKFLOWS" = 0 ] && [ "$new" != "$z40" ]; then
    f=$(git log --format= --name-only --no-renames -m --root "$new" --not --all -- .github/workflows/ | grep -m1 .)
    if [ -z "$f" ] && [ "$old" != "$z40" ]; then
      f=$(git diff --name-only --no-renames "$old" "$new" -- .github/workflows/ | grep -m1 .)
    fi
    if [ -n "$f" ]; then
      reason="refusing to allow a GitHub App to create or update workflow \`$f\` without \`workflows\` permission"
      echo "$reason" >&2
    fi
  fi
  if [ -n "$reason" ]; then
    fail=1
    if [ -n "$EXPEDITE_GH_REASONS" ]; then echo "$ref $reason" >> "$EXPEDITE_GH_REASONS"; fi
  fi
done
exit $fail
"#;

/// Runs git against a bare repository with a clean environment.
pub(crate) fn git_cmd(repo: &Path) -> Command {
    let mut c = Command::new("git");
    scrub_env(&mut c);
    c.arg("--git-dir").arg(repo);
    c.stdin(Stdio::null());
    c
}

/// Drops variables that would point git somewhere else.
pub(crate) fn scrub_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("GIT_") {
            c.env_remove(&k);
        }
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
}

/// `git <args>` in `repo`; stdout on success, stderr on failure.
pub(crate) fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let out = git_cmd(repo)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `git <args>`; raw stdout on success (blob contents), stderr on failure.
pub(crate) fn git_bytes(repo: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = git_cmd(repo)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `git <args>` with `input` on stdin.
pub(crate) fn git_stdin(repo: &Path, args: &[&str], input: &[u8]) -> Result<String, String> {
    use std::io::Write;
    let mut child = git_cmd(repo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("git failed: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

impl GitHub {
    /// Creates the temp dir (repos, hook, the App key file).
    pub fn new(https_port: u16) -> Result<Self, SandboxError> {
        let io = |e: std::io::Error| SandboxError::Invalid(format!("GitHub sandbox setup: {e}"));
        let root = std::env::temp_dir().join(format!(
            "expedite-sandbox-github-{}-{}",
            std::process::id(),
            https_port
        ));
        let repos_dir = root.join("repos");
        let hooks_dir = root.join("hooks");
        std::fs::create_dir_all(&repos_dir).map_err(io)?;
        std::fs::create_dir_all(&hooks_dir).map_err(io)?;
        let hook = hooks_dir.join("pre-receive");
        std::fs::write(&hook, PRE_RECEIVE).map_err(io)?;
        // Git runs hooks through sh on Windows and needs no mode bit there.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        let key_path = root.join("app-private-key.pem");
        std::fs::write(&key_path, APP_PRIVATE_KEY_PEM).map_err(io)?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(keys::APP_PUBLIC_KEY_PEM.as_bytes())
            .map_err(|e| SandboxError::Tls(e.to_string()))?;
        Ok(Self {
            root,
            repos_dir,
            hooks_dir,
            api_url: format!("https://{API_HOST}"),
            server_url: format!("https://{GIT_HOST}"),
            personal_token: format!("ghp_sandbox{}", crate::random_token(29)),
            key_path,
            https_port,
            decoding,
            state: Mutex::new(State {
                next_id: 1_000_000,
                ..State::default()
            }),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes every repository (at sandbox shutdown).
    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// `(key, value)` git configuration that reaches this sandbox.
    pub fn git_config(&self, ca: &Path) -> Vec<(String, String)> {
        let port = self.https_port;
        vec![
            ("http.sslCAInfo".into(), ca.display().to_string()),
            (
                "http.curloptResolve".into(),
                format!("{GIT_HOST}:{port}:127.0.0.1"),
            ),
            (
                format!("url.https://{GIT_HOST}:{port}/.insteadOf"),
                format!("https://{GIT_HOST}/"),
            ),
        ]
    }

    /// Creates a bare repository (and the owner's installation).
    pub fn create_repo(
        &self,
        owner: &str,
        name: &str,
        default_branch: &str,
    ) -> Result<PathBuf, String> {
        let name = name.strip_suffix(".git").unwrap_or(name);
        if !valid_name(owner) || !valid_name(name) {
            return Err(format!("invalid repository name '{owner}/{name}'"));
        }
        if default_branch.is_empty() || default_branch.starts_with('-') {
            return Err(format!("invalid default branch '{default_branch}'"));
        }
        let mut st = self.state();
        let key = repo_key(owner, name);
        if st.repos.contains_key(&key) {
            return Err(format!("repository '{owner}/{name}' already exists"));
        }
        let path = self
            .repos_dir
            .join(owner.to_ascii_lowercase())
            .join(format!("{}.git", name.to_ascii_lowercase()));
        let mut init = Command::new("git");
        scrub_env(&mut init);
        let out = init
            .args(["init", "--quiet", "--bare"])
            .arg(format!("--initial-branch={default_branch}"))
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let hooks = self.hooks_dir.display().to_string();
        for (k, v) in [
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("uploadpack.allowTipSHA1InWant", "true"),
            ("http.receivepack", "true"),
            ("http.uploadpack", "true"),
            ("receive.advertisePushOptions", "true"),
            ("gc.auto", "0"),
            ("core.hooksPath", hooks.as_str()),
        ] {
            git(&path, &["config", k, v])?;
        }
        let id = st.id();
        st.repos.insert(
            key,
            Repo {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                path: path.clone(),
                default_branch: default_branch.to_owned(),
                protected: BTreeSet::new(),
                created_at: Utc::now(),
                items: Vec::new(),
                comments: Vec::new(),
                labels: BTreeMap::new(),
                deployments: Vec::new(),
                runs: BTreeMap::new(),
            },
        );
        let owner_key = owner.to_ascii_lowercase();
        if !st.installations.contains_key(&owner_key) {
            let id = st.id();
            st.installations.insert(
                owner_key,
                Installation {
                    id,
                    owner: owner.to_owned(),
                    permissions: default_permissions(),
                    created_at: Utc::now(),
                },
            );
        }
        Ok(path)
    }

    pub fn protect_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        on: bool,
    ) -> Result<(), String> {
        let mut st = self.state();
        let r = st
            .repos
            .get_mut(&repo_key(owner, repo))
            .ok_or_else(|| format!("no repository '{owner}/{repo}'"))?;
        let b = branch
            .strip_prefix("refs/heads/")
            .unwrap_or(branch)
            .to_owned();
        if on {
            r.protected.insert(b);
        } else {
            r.protected.remove(&b);
        }
        Ok(())
    }

    pub fn set_installation_permissions(
        &self,
        owner: &str,
        permissions: BTreeMap<String, String>,
    ) -> Result<u64, String> {
        for (k, v) in &permissions {
            if !matches!(v.as_str(), "read" | "write" | "admin") {
                return Err(format!("permission {k}: '{v}' is not read, write or admin"));
            }
        }
        let mut st = self.state();
        let inst = st
            .installations
            .get_mut(&owner.to_ascii_lowercase())
            .ok_or_else(|| format!("no installation for '{owner}' (create a repository first)"))?;
        inst.permissions = permissions;
        Ok(inst.id)
    }

    /// Creates or updates workflow run `id` of `owner/repo`.
    pub fn set_workflow_run(
        &self,
        owner: &str,
        repo: &str,
        id: u64,
        update: RunUpdate,
    ) -> Result<(), String> {
        if id == 0 {
            return Err("run ids start at 1".into());
        }
        if !RUN_STATUSES.contains(&update.status.as_str()) {
            return Err(format!(
                "status '{}' is not one of {}",
                update.status,
                RUN_STATUSES.join(", ")
            ));
        }
        match (update.status.as_str(), update.conclusion.as_deref()) {
            ("completed", None) => {
                return Err("a completed run needs a conclusion".into());
            }
            ("completed", Some(c)) if !RUN_CONCLUSIONS.contains(&c) => {
                return Err(format!(
                    "conclusion '{c}' is not one of {}",
                    RUN_CONCLUSIONS.join(", ")
                ));
            }
            ("completed", Some(_)) => {}
            (s, Some(_)) => {
                return Err(format!(
                    "a run that is {s} has no conclusion yet (send null)"
                ));
            }
            (_, None) => {}
        }
        if let Some(sha) = &update.head_sha
            && (sha.len() != 40 || !sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(format!("head_sha '{sha}' is not a full commit SHA"));
        }
        if update.run_attempt == Some(0) {
            return Err("run_attempt starts at 1".into());
        }
        let mut st = self.state();
        let r = st
            .repos
            .get_mut(&repo_key(owner, repo))
            .ok_or_else(|| format!("no repository '{owner}/{repo}'"))?;
        let now = Utc::now();
        let run_number = r.runs.len() as u64 + 1;
        let default_branch = r.default_branch.clone();
        let path = r.path.clone();
        let run = r.runs.entry(id).or_insert_with(|| {
            let name = update.name.clone().unwrap_or_else(|| "deploy".into());
            WorkflowRun {
                id,
                display_title: name.clone(),
                name,
                status: String::new(),
                conclusion: None,
                head_branch: Some(default_branch.clone()),
                head_sha: String::new(),
                event: "workflow_dispatch".into(),
                path: ".github/workflows/deploy.yml".into(),
                run_number,
                run_attempt: 1,
                created_at: now,
                updated_at: now,
                run_started_at: now,
            }
        });
        if let Some(n) = update.name {
            if update.display_title.is_none() && run.display_title == run.name {
                run.display_title = n.clone();
            }
            run.name = n;
        }
        if let Some(t) = update.display_title {
            run.display_title = t;
        }
        if let Some(b) = update.head_branch {
            run.head_branch = Some(b);
        }
        if let Some(e) = update.event {
            run.event = e;
        }
        if let Some(p) = update.path {
            run.path = p;
        }
        if let Some(a) = update.run_attempt {
            if a != run.run_attempt {
                run.run_started_at = now;
            }
            run.run_attempt = a;
        }
        match update.head_sha {
            Some(sha) => run.head_sha = sha,
            None if run.head_sha.is_empty() => {
                let branch = run.head_branch.clone().unwrap_or(default_branch);
                run.head_sha = git(
                    &path,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("refs/heads/{branch}"),
                    ],
                )
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| s.len() == 40)
                .unwrap_or_else(|| "0".repeat(40));
            }
            None => {}
        }
        run.status = update.status;
        run.conclusion = update.conclusion;
        run.updated_at = now;
        Ok(())
    }

    /// Removes workflow run `id`; whether it existed.
    pub fn remove_workflow_run(&self, owner: &str, repo: &str, id: u64) -> bool {
        self.state()
            .repos
            .get_mut(&repo_key(owner, repo))
            .is_some_and(|r| r.runs.remove(&id).is_some())
    }

    pub fn installation_id(&self, owner: &str) -> Option<u64> {
        self.state()
            .installations
            .get(&owner.to_ascii_lowercase())
            .map(|i| i.id)
    }

    pub fn repo_path(&self, owner: &str, repo: &str) -> Option<PathBuf> {
        self.state()
            .repos
            .get(&repo_key(owner, repo))
            .map(|r| r.path.clone())
    }

    /// A signed App JWT whose `iat` is `now + iat_offset_secs`.
    pub fn app_jwt(
        &self,
        iat_offset_secs: i64,
        lifetime_secs: i64,
    ) -> Result<String, SandboxError> {
        auth::sign_app_jwt(
            APP_PRIVATE_KEY_PEM,
            &APP_ID.to_string(),
            iat_offset_secs,
            lifetime_secs,
        )
    }
}

fn control_error(status: StatusCode, message: impl Into<String>) -> Resp {
    respond::json(status, &json!({"error": message.into()}))
}

/// `/_sandbox/github/*` on the control listener.
pub(crate) fn handle_control(shared: &Arc<Shared>, req: &Req) -> Resp {
    let gh = &shared.github;
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let body = match req.json_body() {
        Ok(b) => b.unwrap_or(Value::Null),
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["_sandbox", "github", "repos"]) => {
            let (Some(owner), Some(name)) = (s("owner"), s("name")) else {
                return control_error(StatusCode::BAD_REQUEST, "send {\"owner\", \"name\"}");
            };
            let branch = s("default_branch").unwrap_or("main");
            match gh.create_repo(owner, name, branch) {
                Ok(path) => {
                    for b in body
                        .get("protected_branches")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        let _ = gh.protect_branch(owner, name, b, true);
                    }
                    respond::json(
                        StatusCode::CREATED,
                        &json!({
                            "owner": owner, "name": name, "default_branch": branch,
                            "path": path,
                            "clone_url": format!("{}/{owner}/{name}.git", gh.server_url),
                            "installation_id": gh.installation_id(owner),
                        }),
                    )
                }
                Err(e) => control_error(StatusCode::CONFLICT, e),
            }
        }
        ("GET", ["_sandbox", "github", "repos"]) => {
            let st = gh.state();
            let list: Vec<Value> = st
                .repos
                .values()
                .map(|r| {
                    json!({"owner": r.owner, "name": r.name, "path": r.path,
                           "default_branch": r.default_branch, "protected": r.protected})
                })
                .collect();
            respond::json(StatusCode::OK, &json!(list))
        }
        (
            "POST" | "DELETE",
            [
                "_sandbox",
                "github",
                "repos",
                owner,
                repo,
                "protection",
                branch,
            ],
        ) => match gh.protect_branch(owner, repo, branch, req.method == http::Method::POST) {
            Ok(()) => respond::empty(StatusCode::NO_CONTENT),
            Err(e) => control_error(StatusCode::NOT_FOUND, e),
        },
        ("PUT" | "DELETE", ["_sandbox", "github", "repos", owner, repo, "runs", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    format!("run id '{id}' is not a number"),
                );
            };
            if req.method == http::Method::DELETE {
                return if gh.remove_workflow_run(owner, repo, id) {
                    respond::empty(StatusCode::NO_CONTENT)
                } else {
                    control_error(
                        StatusCode::NOT_FOUND,
                        format!("no run {id} in {owner}/{repo}"),
                    )
                };
            }
            let update: RunUpdate = match serde_json::from_value(body) {
                Ok(u) => u,
                Err(e) => {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        format!("send {{\"status\", \"conclusion\"}}: {e}"),
                    );
                }
            };
            if gh.repo_path(owner, repo).is_none() {
                return control_error(
                    StatusCode::NOT_FOUND,
                    format!("no repository '{owner}/{repo}'"),
                );
            }
            match gh.set_workflow_run(owner, repo, id, update) {
                Ok(()) => {
                    let st = gh.state();
                    let run = st
                        .repos
                        .get(&repo_key(owner, repo))
                        .and_then(|r| r.runs.get(&id));
                    respond::json(
                        StatusCode::OK,
                        &json!({
                            "id": id,
                            "status": run.map(|r| r.status.clone()),
                            "conclusion": run.and_then(|r| r.conclusion.clone()),
                            "head_sha": run.map(|r| r.head_sha.clone()),
                        }),
                    )
                }
                Err(e) => control_error(StatusCode::BAD_REQUEST, e),
            }
        }
        ("POST", ["_sandbox", "github", "drop-answers"]) => {
            let (Some(method), Some(prefix)) = (s("method"), s("path_prefix")) else {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    "send {\"method\", \"path_prefix\", \"times\"}",
                );
            };
            let times = match body.get("times") {
                None => 1,
                Some(v) => match v.as_u64().and_then(|t| u32::try_from(t).ok()) {
                    Some(t) if t > 0 => t,
                    _ => {
                        return control_error(
                            StatusCode::BAD_REQUEST,
                            "times must be a whole number of at least 1",
                        );
                    }
                },
            };
            gh.state().drop_answers.push(DropAnswer {
                method: method.to_owned(),
                path_prefix: prefix.to_owned(),
                remaining: times,
            });
            respond::empty(StatusCode::NO_CONTENT)
        }
        ("DELETE", ["_sandbox", "github", "drop-answers"]) => {
            gh.state().drop_answers.clear();
            respond::empty(StatusCode::NO_CONTENT)
        }
        ("PUT", ["_sandbox", "github", "installations", owner, "permissions"]) => {
            let perms: BTreeMap<String, String> = match serde_json::from_value(body) {
                Ok(p) => p,
                Err(e) => {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        format!("send {{\"permission\": \"read|write\"}}: {e}"),
                    );
                }
            };
            match gh.set_installation_permissions(owner, perms) {
                Ok(id) => respond::json(StatusCode::OK, &json!({"installation_id": id})),
                Err(e) => control_error(StatusCode::BAD_REQUEST, e),
            }
        }
        _ => control_error(
            StatusCode::NOT_FOUND,
            format!("no control route {} {}", req.method, req.path),
        ),
    }
}
