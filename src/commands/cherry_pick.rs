//! `cherry-pick`: carry the hotfix commits back to the target branch
//! (`main`), and never report success when that did not happen.
//!
//! The hotfix commits come from the `commits` input, the `hotfix-tag`
//! (its commits since the release it fixes), or the push event. A scratch
//! repository fetches only those commits, their parents and the target's
//! tip (see [`crate::git`]); each commit is merged onto the target in order.
//!
//! - All already on the target (each merge leaves the target's tree as it
//!   is) → `already-applied`, nothing created.
//! - Clean → a branch `auto/cherry-pick-<sha>-to-<target>` (see
//!   [`auto_branch`]: one branch per hotfix and target) and a pull request
//!   into the target, or with `mode: push` straight onto the target — unless
//!   the target is protected (GitHub says so, or refuses the push with
//!   GH006): then a pull request, with a notice.
//! - A conflict → the conflicted merge is committed with its markers on the
//!   branch (the commit message is the one `git cherry-pick -x` writes,
//!   nothing more, so finishing it with `--amend --no-edit` leaves nothing to
//!   clean up), a **draft** pull request lists every hotfix commit with its
//!   state, the files, and the commands to resolve them and pick the commits
//!   after the conflict; the hotfix author (or `assignees`) is assigned, and
//!   the step fails with the link (`fail-on-conflict`).
//! - A re-run finds the open pull request from its branch into the same
//!   target and reports it; nothing is created twice.
//! - GitHub failing to answer the pull request's creation (5xx, or the
//!   answer lost) after the push: the state is read back (did it open?), the
//!   creation is sent once more if not, and if that fails too the error says
//!   the branch is pushed and a re-run is safe.

use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::{CommandError, Ctx, Report};
use crate::action::escape::{Annotation, Level};
use crate::config::github::{CherryPickConfig, CommitSource, PickMode};
use crate::git::{self, CommitMeta, PushError, Remote, Scratch};
use crate::github::{Api, GithubError, NewPull, Pull, auth};
use crate::http::HttpError;
use crate::report::{md_block, md_cell, md_code, md_fenced, md_link};

/// Bound on each git operation (a fetch of a huge repository included).
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Pause before sending a failed pull request creation once more.
const CREATE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Longest target slug in an auto branch name (a longer one is cut and
/// told apart by a hash).
const MAX_TARGET_SLUG: usize = 40;

/// A commit's state in the table: picked.
const PICKED: &str = "picked";
/// A commit's state in the table: its change is on the target already.
const ON_TARGET: &str = "already on target";
/// A commit's state in the table: the one that conflicts.
const CONFLICT: &str = "conflict";
/// A commit's state in the table: after the conflict, left for the person
/// resolving it (the resolution commands pick it).
const NOT_PICKED: &str = "not picked: after the conflict — pick it after resolving";

/// Why the pick could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// Signing in failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A REST call failed.
    #[error(transparent)]
    Api(#[from] GithubError),
    /// git failed.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// A push was refused.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The inputs name commits that cannot be picked.
    #[error("{0}")]
    Commits(String),
    /// The target branch does not exist.
    #[error(
        "the target branch '{0}' does not exist in {1}; set target-branch to an existing branch"
    )]
    NoTarget(String, String),
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
    /// The auto branch is the head of an open pull request into another
    /// branch (someone changed its base): it is not this run's to replace.
    #[error(
        "the branch {branch} is the head of open pull request {url} into {base}, not into {target}; change that pull request's base back to {target} or close it, then run the step again"
    )]
    BranchTaken {
        /// The auto branch.
        branch: String,
        /// The pull request.
        url: String,
        /// Its base.
        base: String,
        /// The target of this run.
        target: String,
    },
    /// The branch is pushed but GitHub did not open the pull request (it
    /// failed twice, or its answer was lost and it is not there).
    #[error(
        "GitHub did not open the pull request from {branch} into {target} ({cause}); the branch {branch} is pushed, so running the step again is safe: it finds the pull request if GitHub opened it after all, or opens it"
    )]
    PullNotOpened {
        /// The pushed branch.
        branch: String,
        /// The base.
        target: String,
        /// What GitHub answered, or what happened.
        cause: String,
    },
}

impl From<PickError> for CommandError {
    fn from(e: PickError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

/// What happened.
#[derive(Debug, Default)]
struct Outcome {
    result: &'static str,
    success: bool,
    branch: String,
    pull: Option<Pull>,
    commits: Vec<String>,
    conflicts: Vec<String>,
    errors: Vec<String>,
    notes: Vec<String>,
    bytes: u64,
    picked: Vec<(String, String, &'static str)>,
}

/// Runs the cherry-pick.
pub async fn run(ctx: &Ctx, config: &CherryPickConfig) -> Result<Report, CommandError> {
    let started = Instant::now();
    let o = pick(ctx, config).await?;
    let outputs = vec![
        ("result", o.result.to_string()),
        ("branch", o.branch.clone()),
        ("commits", o.commits.join(",")),
        ("conflicted-files", o.conflicts.join("\n")),
        (
            "pull-request-url",
            o.pull
                .as_ref()
                .map(|p| p.html_url.clone())
                .unwrap_or_default(),
        ),
        (
            "pull-request-number",
            o.pull
                .as_ref()
                .map(|p| p.number.to_string())
                .unwrap_or_default(),
        ),
    ];
    let mut report = Report {
        success: o.success,
        outputs,
        summary: summary(config, &o, started.elapsed()),
        errors: o.errors.clone(),
        errors_annotated: false,
        interrupted: false,
        outputs_shown: false,
    };
    let mut rec =
        super::shared::records::Records::connect(ctx, ctx.config.records.as_deref()).await;
    super::shared::records::after_cherry_pick(ctx, &mut rec, &mut report).await;
    Ok(report)
}

fn notice(ctx: &Ctx, title: &str, text: &str) {
    ctx.console.annotate(
        Level::Notice,
        &Annotation::message(text.to_string()).with_title(title.to_string()),
    );
}

async fn client_and_api(
    ctx: &Ctx,
    config: &CherryPickConfig,
) -> Result<(Api, SecretString), PickError> {
    let http =
        crate::http::client(&config.github.http).map_err(|e| PickError::Client(e.to_string()))?;
    let token = auth::token(&http, &config.github, &ctx.console, &ctx.cancel).await?;
    // git sends the token base64-encoded; mask that form too.
    ctx.console.add_mask(&git::basic_auth(&token));
    Ok((
        Api::new(http, &config.github, token.clone(), ctx.cancel.clone()),
        token,
    ))
}

/// The hotfix commits as full SHAs, oldest first.
async fn resolve_commits(api: &Api, config: &CherryPickConfig) -> Result<Vec<String>, PickError> {
    let mut out: Vec<String> = Vec::new();
    let range = |base: String, head: String| async move {
        let c = api
            .compare(&base, &head)
            .await
            .map_err(|e| match e.status() {
                Some(404) => PickError::Commits(format!(
                    "cannot compare {base}...{head}: one of them is not in {}",
                    api.repo
                )),
                _ => PickError::Api(e),
            })?;
        if c.total_commits as usize > c.commits.len() {
            return Err(PickError::Commits(format!(
                "{base}..{head} holds {} commits, more than the {} GitHub lists; list the hotfix commits in `commits`",
                c.total_commits,
                c.commits.len()
            )));
        }
        Ok::<_, PickError>(c.commits)
    };
    let push_commit = |c: crate::github::Commit, out: &mut Vec<String>| {
        if c.parents.len() > 1 {
            return Err(PickError::Commits(format!(
                "{} is a merge commit; list the commits it brings in `commits` instead",
                c.sha
            )));
        }
        if !out.contains(&c.sha) {
            out.push(c.sha);
        }
        Ok(())
    };
    match &config.source {
        CommitSource::Listed(list) => {
            for item in list {
                if let Some((a, b)) = item.split_once("..") {
                    for c in range(a.to_string(), b.to_string()).await? {
                        push_commit(c, &mut out)?;
                    }
                } else {
                    let c = api.commit(item).await?.ok_or_else(|| {
                        PickError::Commits(format!("commit {item} is not in {}", api.repo))
                    })?;
                    push_commit(c, &mut out)?;
                }
            }
        }
        CommitSource::HotfixTag(tag) => {
            let base = fixed_release(api, &config.tag_prefix, tag).await?;
            for c in range(base, tag.clone()).await? {
                push_commit(c, &mut out)?;
            }
        }
        CommitSource::PushEvent {
            commits,
            before,
            after,
        } => {
            if !commits.is_empty() {
                for sha in commits {
                    let c = api.commit(sha).await?.ok_or_else(|| {
                        PickError::Commits(format!("pushed commit {sha} is not in {}", api.repo))
                    })?;
                    push_commit(c, &mut out)?;
                }
            } else {
                match (before, after) {
                    (Some(b), Some(a)) if b.chars().any(|c| c != '0') => {
                        for c in range(b.clone(), a.clone()).await? {
                            push_commit(c, &mut out)?;
                        }
                    }
                    _ => {
                        return Err(PickError::Commits(
                            "the push event created a branch and lists no commits; give `commits` or `hotfix-tag`".into(),
                        ));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        return Err(PickError::Commits(
            "there are no hotfix commits to pick (the range is empty)".into(),
        ));
    }
    Ok(out)
}

/// The release a hotfix tag fixes: the highest `prefix` version below it.
async fn fixed_release(api: &Api, prefix: &str, tag: &str) -> Result<String, PickError> {
    let version = |name: &str| {
        name.strip_prefix(prefix)
            .map(|v| v.trim_start_matches('v'))
            .and_then(|v| semver::Version::parse(v).ok())
    };
    let Some(mine) = version(tag) else {
        return Err(PickError::Commits(format!(
            "hotfix-tag '{tag}' is not `{prefix}<version>`; give the hotfix's release tag"
        )));
    };
    let refs = api.matching_refs(&format!("tags/{prefix}")).await?;
    refs.iter()
        .filter_map(|r| {
            let name = r.name.strip_prefix("refs/tags/")?;
            version(name).map(|v| (v, name.to_string()))
        })
        .filter(|(v, _)| *v < mine)
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, n)| n)
        .ok_or_else(|| {
            PickError::Commits(format!(
                "no release tag below {tag} to compare with; list the hotfix commits in `commits`"
            ))
        })
}

async fn pick(ctx: &Ctx, config: &CherryPickConfig) -> Result<Outcome, PickError> {
    let (api, token) = client_and_api(ctx, config).await?;
    let commits = resolve_commits(&api, config).await?;
    let head = commits.last().cloned().unwrap_or_default();
    let branch = auto_branch(&head, &config.target_branch);
    let mut o = Outcome {
        commits: commits.clone(),
        branch: branch.clone(),
        ..Outcome::default()
    };
    ctx.console.info(&format!(
        "picking {} commit(s) onto {} of {}",
        commits.len(),
        config.target_branch,
        api.repo
    ));

    // A re-run: the pull request an earlier run opened from this branch
    // into this target is the answer. One into another base (someone
    // changed it) is not, and keeps its branch (checked before the push).
    let (mine, others): (Vec<Pull>, Vec<Pull>) = api
        .pulls_from(&branch)
        .await?
        .into_iter()
        .filter(|p| p.state == "open")
        .partition(|p| p.base.name == config.target_branch);
    if let Some(pr) = mine.into_iter().next() {
        ctx.console.info(&format!(
            "an earlier run opened {}; nothing new to do",
            pr.html_url
        ));
        o.result = "existing";
        o.success = !(pr.draft && config.fail_on_conflict);
        if !o.success {
            o.errors.push(format!(
                "the cherry-pick conflicts and is waiting in draft pull request {}; resolve it there",
                pr.html_url
            ));
        }
        o.pull = Some(pr);
        return Ok(o);
    }

    // Already on the target: merged there (the target contains it), or
    // picked before with `-x` (the target's newer commits name it).
    let mut on_target = std::collections::BTreeSet::new();
    for sha in &commits {
        let c = api.compare(sha, &config.target_branch).await?;
        let trailer = format!("(cherry picked from commit {sha})");
        if matches!(c.status.as_str(), "ahead" | "identical")
            || c.commits.iter().any(|x| {
                x.commit
                    .as_ref()
                    .is_some_and(|d| d.message.contains(&trailer))
            })
        {
            on_target.insert(sha.clone());
        }
    }
    if on_target.len() == commits.len() {
        o.result = "already-applied";
        o.success = true;
        o.branch.clear();
        o.picked = commits
            .iter()
            .map(|c| (c.clone(), String::new(), ON_TARGET))
            .collect();
        ctx.console.info(&format!(
            "every hotfix commit is already on {}; nothing to do",
            config.target_branch
        ));
        return Ok(o);
    }

    let remote = Remote {
        url: config.github.clone_url(),
        token,
        http: config.github.http.clone(),
    };
    let committer = git::Identity {
        name: "github-actions[bot]".into(),
        email: "41898282+github-actions[bot]@users.noreply.github.com".into(),
    };
    let scratch = Scratch::create(
        &config.work_dir,
        "cherry-pick",
        &remote,
        &committer,
        ctx.cancel.clone(),
        GIT_TIMEOUT,
    )
    .await?;
    let fetch_started = Instant::now();
    let Some(target_tip) = scratch
        .fetch_minimal(&commits, &config.target_branch)
        .await?
    else {
        return Err(PickError::NoTarget(
            config.target_branch.clone(),
            api.repo.clone(),
        ));
    };
    tracing::debug!("minimal fetch took {:?}", fetch_started.elapsed());

    let mut current = target_tip.clone();
    let mut current_tree = scratch.tree_of(&current).await?;
    let mut metas: Vec<CommitMeta> = Vec::new();
    let mut conflict_at: Option<usize> = None;
    let mut conflict_messages = Vec::new();
    for (i, sha) in commits.iter().enumerate() {
        ctx.cancel
            .check()
            .map_err(|e| PickError::Commits(e.to_string()))?;
        let meta = scratch.commit(sha).await?;
        if on_target.contains(sha) {
            o.picked
                .push((sha.clone(), meta.subject().to_string(), ON_TARGET));
            continue;
        }
        ctx.console
            .untrusted(&format!("commit {}", short(sha)), meta.subject());
        if meta.parents.len() != 1 {
            return Err(PickError::Commits(format!(
                "{sha} has {} parents; only ordinary commits can be picked",
                meta.parents.len()
            )));
        }
        let merge = scratch
            .merge_commit(&current, &config.target_branch, &meta)
            .await?;
        if merge.conflicts.is_empty() && merge.tree == current_tree {
            o.picked
                .push((sha.clone(), meta.subject().to_string(), ON_TARGET));
            metas.push(meta);
            continue;
        }
        // Exactly what `git cherry-pick -x` writes, even on a conflict: the
        // commit is finished with `git commit --amend --no-edit`, which
        // keeps the message as it is, so a note about the conflict here
        // would land on the target. The pull request says it instead.
        let message = git::cherry_pick_message(&meta.message, sha);
        current = scratch
            .write_commit(&merge.tree, &current, &meta, &message)
            .await?;
        current_tree = merge.tree.clone();
        let conflicted = !merge.conflicts.is_empty();
        o.picked.push((
            sha.clone(),
            meta.subject().to_string(),
            if conflicted { CONFLICT } else { PICKED },
        ));
        metas.push(meta);
        if conflicted {
            o.conflicts = merge.conflicts;
            conflict_messages = merge.messages;
            conflict_at = Some(i);
            break;
        }
    }
    // The commits after a conflict are not picked here: the person resolving
    // it picks them (the pull request lists them and the commands).
    if let Some(i) = conflict_at {
        for sha in commits.iter().skip(i + 1) {
            let subject = scratch.commit(sha).await?.subject().to_string();
            let state = if on_target.contains(sha) {
                ON_TARGET
            } else {
                NOT_PICKED
            };
            o.picked.push((sha.clone(), subject, state));
        }
    }
    o.bytes = scratch.bytes_fetched().await;

    if current == target_tip {
        o.result = "already-applied";
        o.success = true;
        o.branch.clear();
        ctx.console.info(&format!(
            "every hotfix commit is already on {}; nothing to do",
            config.target_branch
        ));
        return Ok(o);
    }

    // An auto branch left by an earlier run whose pull request never
    // opened is ours to replace; anything else is never overwritten.
    let existing = api.get_ref(&format!("heads/{branch}")).await?;

    if conflict_at.is_none() && config.mode == PickMode::Push {
        let protected = api
            .branch(&config.target_branch)
            .await?
            .is_some_and(|b| b.protected);
        if protected {
            let n = format!(
                "{} is protected; opening a pull request instead of pushing",
                config.target_branch
            );
            notice(ctx, "Protected branch", &n);
            o.notes.push(n);
        } else {
            match scratch.push(&current, &config.target_branch).await {
                Ok(()) => {
                    o.result = "pushed";
                    o.success = true;
                    o.branch = config.target_branch.clone();
                    ctx.console
                        .info(&format!("pushed the pick onto {}", config.target_branch));
                    return Ok(o);
                }
                Err(PushError::Protected { detail, .. }) => {
                    let n = format!(
                        "{} refused the push ({detail}); opening a pull request instead",
                        config.target_branch
                    );
                    notice(ctx, "Protected branch", &n);
                    o.notes.push(n);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    if let Some(pr) = others.first() {
        return Err(PickError::BranchTaken {
            branch,
            url: pr.html_url.clone(),
            base: pr.base.name.clone(),
            target: config.target_branch.clone(),
        });
    }
    scratch
        .push_lease(
            &current,
            &branch,
            existing.as_ref().map(|r| r.object.sha.as_str()),
        )
        .await?;
    let conflicted = conflict_at.is_some();
    let title = pr_title(&o, conflicted, &config.target_branch);
    let body = pr_body(config, &o, &metas, &conflict_messages, &branch);
    let new = NewPull {
        title: &title,
        head: &branch,
        base: &config.target_branch,
        body: &body,
        draft: conflicted,
        maintainer_can_modify: true,
    };
    let pr = open_pull(ctx, &api, &new).await?;
    ctx.console.info(&format!("opened {}", pr.html_url));
    if !config.labels.is_empty()
        && let Err(e) = api.add_labels(pr.number, &config.labels).await
    {
        tracing::warn!("could not label {}: {e}", pr.html_url);
    }
    if conflicted {
        assign(ctx, &api, config, &pr, metas.last(), &mut o).await;
    }
    o.result = if conflicted {
        "conflict"
    } else {
        "pull-request"
    };
    o.success = !(conflicted && config.fail_on_conflict);
    if conflicted {
        let msg = format!(
            "the cherry-pick onto {} conflicts in {}; resolve it in draft pull request {}",
            config.target_branch,
            o.conflicts.join(", "),
            pr.html_url
        );
        if config.fail_on_conflict {
            o.errors.push(msg);
        } else {
            tracing::warn!(title = "Cherry-pick conflict", "{msg}");
        }
    }
    o.pull = Some(pr);
    Ok(o)
}

/// The auto branch for the hotfix whose last commit is `head`, carried to
/// `target`: `auto/cherry-pick-<sha7>-to-<target-slug>`. The slug is the
/// target with `/` written as `-`; when that loses something (a `/`, or a
/// target longer than [`MAX_TARGET_SLUG`], cut) a hash of the exact target
/// follows, so `release/2.5` and `release-2.5` never share a branch. Always
/// a valid ref name (one component below `auto/`, at most 80 characters).
fn auto_branch(head: &str, target: &str) -> String {
    let sha: String = head
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(7)
        .collect();
    let mapped: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut slug: String = mapped.chars().take(MAX_TARGET_SLUG).collect();
    // A cut may end in `.` (or `.lock`): the hash follows then anyway.
    while slug.ends_with(['.', '-']) {
        slug.pop();
    }
    if slug != target {
        format!("auto/cherry-pick-{sha}-to-{slug}-{:08x}", fnv1a32(target))
    } else {
        format!("auto/cherry-pick-{sha}-to-{slug}")
    }
}

/// FNV-1a, 32 bits: a short, stable tag for a name.
fn fnv1a32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The open pull request from `branch` into `target`, if there is one.
async fn open_pull_from(
    api: &Api,
    branch: &str,
    target: &str,
) -> Result<Option<Pull>, GithubError> {
    Ok(api
        .pulls_from(branch)
        .await?
        .into_iter()
        .find(|p| p.state == "open" && p.base.name == target))
}

/// True when sending the creation again may be the answer: GitHub answered
/// 5xx, the answer was lost or unreadable, or the request never left.
fn worth_another_try(e: &GithubError) -> bool {
    e.outcome_unknown() || matches!(e, GithubError::Http(HttpError::Transport { .. }))
}

/// Opens the pull request after its branch was pushed. A creation whose
/// outcome is unknown (5xx, the answer lost) is read back — did GitHub open
/// it? — and sent once more if not; GitHub's "already exists" means a
/// concurrent run (or the lost first try) opened it: that one is reported.
/// When it still is not open, the error says the branch is pushed and that
/// a re-run is safe (the re-run finds the pull request, or opens it).
async fn open_pull(ctx: &Ctx, api: &Api, new: &NewPull<'_>) -> Result<Pull, PickError> {
    let (branch, target) = (new.head, new.base);
    let not_opened = |cause: String| PickError::PullNotOpened {
        branch: branch.to_string(),
        target: target.to_string(),
        cause,
    };
    let mut first_error = None;
    for attempt in 1..=2 {
        match api.create_pull(new).await {
            Ok(pr) => return Ok(pr),
            Err(e) if e.status() == Some(422) && e.mentions("already exists") => {
                return match open_pull_from(api, branch, target).await {
                    Ok(Some(pr)) => Ok(pr),
                    Ok(None) => Err(PickError::Api(e)),
                    Err(read) => Err(not_opened(format!("{e}; reading it back failed: {read}"))),
                };
            }
            Err(e) if worth_another_try(&e) => {
                tracing::warn!(
                    "opening the pull request from {branch} into {target} failed ({e}); reading back whether it opened"
                );
                match open_pull_from(api, branch, target).await {
                    Ok(Some(pr)) => {
                        ctx.console.info(&format!(
                            "GitHub opened {} although its answer failed",
                            pr.html_url
                        ));
                        return Ok(pr);
                    }
                    Ok(None) => {}
                    Err(read) => {
                        return Err(not_opened(format!("{e}; reading it back failed: {read}")));
                    }
                }
                if attempt == 1 {
                    first_error = Some(e);
                    ctx.cancel
                        .sleep(CREATE_RETRY_PAUSE)
                        .await
                        .map_err(|c| not_opened(c.to_string()))?;
                    ctx.console
                        .info("the pull request is not open; asking GitHub once more");
                } else {
                    let cause = match first_error.take() {
                        Some(f) if f.to_string() == e.to_string() => format!("twice: {e}"),
                        Some(f) => format!("first: {f}; then: {e}"),
                        None => e.to_string(),
                    };
                    return Err(not_opened(cause));
                }
            }
            Err(e) if attempt == 1 => return Err(e.into()),
            // The second try answered differently (403, 422…): GitHub's
            // reason, and what is left behind.
            Err(e) => return Err(not_opened(e.to_string())),
        }
    }
    Err(not_opened("no answer".into()))
}

async fn assign(
    ctx: &Ctx,
    api: &Api,
    config: &CherryPickConfig,
    pr: &Pull,
    meta: Option<&CommitMeta>,
    o: &mut Outcome,
) {
    let login = match meta {
        Some(m) => api
            .commit(&m.sha)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.author)
            .map(|u| u.login),
        None => None,
    };
    let who: Vec<String> = match login {
        Some(l) => vec![l],
        None => {
            let n = if config.assignees.is_empty() {
                "GitHub does not know the hotfix author's account (their commit e-mail is not on a GitHub account), and `assignees` is empty; the pull request is unassigned".to_string()
            } else {
                format!(
                    "GitHub does not know the hotfix author's account; assigning {} (assignees)",
                    config.assignees.join(", ")
                )
            };
            notice(ctx, "Assignee", &n);
            o.notes.push(n);
            config.assignees.clone()
        }
    };
    if !who.is_empty()
        && let Err(e) = api.add_assignees(pr.number, &who).await
    {
        tracing::warn!("could not assign {}: {e}", pr.html_url);
    }
}

/// `[conflict] Cherry-pick to main: <first subject> (+N more)`, counting
/// every hotfix commit the pull request carries or leaves to pick.
fn pr_title(o: &Outcome, conflicted: bool, target: &str) -> String {
    let carried: Vec<&str> = o
        .picked
        .iter()
        .filter(|(_, _, r)| *r != ON_TARGET)
        .map(|(_, subject, _)| subject.as_str())
        .collect();
    let first = carried.first().copied().unwrap_or("hotfix");
    let more = if carried.len() > 1 {
        format!(" (+{} more)", carried.len() - 1)
    } else {
        String::new()
    };
    let prefix = if conflicted { "[conflict] " } else { "" };
    let t = format!("{prefix}Cherry-pick to {target}: {first}{more}");
    t.chars().take(250).collect()
}

/// The pull request's text: every hotfix commit with its state, and on a
/// conflict the files and the commands that finish the pick (resolve,
/// amend, pick the commits after the conflict, push).
fn pr_body(
    config: &CherryPickConfig,
    o: &Outcome,
    metas: &[CommitMeta],
    messages: &[String],
    branch: &str,
) -> String {
    let conflicted = o.picked.iter().any(|(_, _, r)| *r == CONFLICT);
    let pending: Vec<&str> = o
        .picked
        .iter()
        .filter(|(_, _, r)| *r == NOT_PICKED)
        .map(|(sha, _, _)| sha.as_str())
        .collect();
    let mut b = String::new();
    if conflicted {
        b.push_str(&format!(
            "⚠️ The hotfix does **not** apply cleanly to {}. The conflict is committed **with its markers** so you can see it here; do not merge this pull request as it is.\n\n",
            md_cell(&config.target_branch)
        ));
    } else {
        b.push_str(&format!(
            "Carries the hotfix to {} (picked with the `-x` trailer).\n\n",
            md_cell(&config.target_branch)
        ));
    }
    b.push_str("| commit | subject | result |\n|---|---|---|\n");
    for (sha, subject, r) in &o.picked {
        b.push_str(&format!(
            "| {} | {} | {r} |\n",
            short(sha),
            md_cell(subject)
        ));
    }
    if !pending.is_empty() {
        b.push_str(&format!(
            "\n{} commit(s) after the conflict are **not** on this branch yet; the commands below pick them once the conflict is resolved.\n",
            pending.len()
        ));
    }
    if conflicted {
        b.push_str("\n**Conflicted files**\n\n");
        for f in &o.conflicts {
            b.push_str(&format!("- {}\n", md_code(f)));
        }
        if !messages.is_empty() {
            b.push_str("\n<details><summary>git's messages</summary>\n\n");
            b.push_str(&md_block(&messages.join("\n")));
            b.push_str("</details>\n");
        }
        let fetch_more: String = pending.iter().map(|s| format!(" {s}")).collect();
        // The commands hold file names (anything but NUL): one fenced
        // block whose fence no line can close.
        let mut sh = format!(
            "git fetch origin {branch}{fetch_more}\ngit switch {branch}\n# edit the files above: keep the right lines, remove the <<<<<<< ======= >>>>>>> markers\n# (a binary file holds the {target} version; take the hotfix's with: git checkout {sha} -- <file>)\ngit add -- {files}\ngit commit --amend --no-edit\n",
            target = config.target_branch,
            sha = &metas.last().map(|m| m.sha.clone()).unwrap_or_default(),
            files = o
                .conflicts
                .iter()
                .map(|f| shell_quote(f))
                .collect::<Vec<_>>()
                .join(" "),
        );
        if !pending.is_empty() {
            sh.push_str(
                "# the commits after the conflict (if one stops on a conflict: resolve it, git add, git cherry-pick --continue)\n",
            );
        }
        for rest in &pending {
            sh.push_str(&format!("git cherry-pick -x {rest}\n"));
        }
        sh.push_str("git push --force-with-lease\n");
        b.push_str("\n**To resolve**\n\n");
        b.push_str(&md_fenced("sh", &sh));
        b.push_str("\nThen mark this pull request ready for review.\n");
    }
    b
}

/// The first 12 characters of a SHA, for people.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Quotes a path for the resolution commands shown to people.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn summary(config: &CherryPickConfig, o: &Outcome, elapsed: Duration) -> String {
    let mut s = format!(
        "## Cherry-pick to {}: {}\n\n",
        md_cell(&config.target_branch),
        o.result
    );
    if let Some(pr) = &o.pull {
        s.push_str(&format!(
            "Pull request: {}{}\n\n",
            md_link(&format!("#{}", pr.number), &pr.html_url),
            if pr.draft { " (draft)" } else { "" }
        ));
    }
    for n in &o.notes {
        s.push_str(&format!("> {}\n\n", md_code(n)));
    }
    if !o.picked.is_empty() {
        s.push_str("| commit | subject | result |\n|---|---|---|\n");
        for (sha, subject, r) in &o.picked {
            s.push_str(&format!(
                "| {} | {} | {r} |\n",
                short(sha),
                md_cell(subject)
            ));
        }
    }
    if !o.conflicts.is_empty() {
        s.push_str("\nConflicted files:\n");
        for f in &o.conflicts {
            s.push_str(&format!("- {}\n", md_code(f)));
        }
    }
    s.push_str(&format!(
        "\nFetched {} KiB (commits, their parents and the target's tip; blobs on demand) in {:.1} s.\n",
        o.bytes / 1024,
        elapsed.as_secs_f64()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::github::ref_name_ok;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn auto_branches_carry_the_target_and_stay_ref_safe() {
        assert_eq!(auto_branch(SHA, "main"), "auto/cherry-pick-0123456-to-main");
        assert_eq!(
            auto_branch(SHA, "release-2.5"),
            "auto/cherry-pick-0123456-to-release-2.5"
        );
        let slashed = auto_branch(SHA, "release/2.5");
        assert!(
            slashed.starts_with("auto/cherry-pick-0123456-to-release-2.5-"),
            "{slashed}"
        );
        assert_ne!(slashed, auto_branch(SHA, "release-2.5"));
        assert_ne!(auto_branch(SHA, "main"), auto_branch(SHA, "develop"));
        let long = format!("releases/{}", "x".repeat(240));
        let cut = [
            long.as_str(),
            "a/b",
            "foo-",
            "v1.",
            "team/x.lock-free",
            &format!("{}.lock/y", "z".repeat(35)),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for t in ["main", "release/2.5", "release-2.5"]
            .iter()
            .chain(cut.iter())
        {
            let b = auto_branch(SHA, t);
            assert!(ref_name_ok(&b), "{t} → {b}");
            assert!(b.len() <= 80, "{t} → {b} ({} chars)", b.len());
            assert!(seen.insert(b.clone()), "{t} → {b} twice");
        }
        // Stable across runs (a re-run must find the same branch).
        assert_eq!(
            auto_branch(SHA, "release/2.5"),
            auto_branch(SHA, "release/2.5")
        );
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
    }
}
