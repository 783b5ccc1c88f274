//! Locks as refs in a GitHub repository: `refs/expedite/locks/{key}`.
//!
//! Each record is a commit whose message is the record's JSON (its tree is
//! a fixed one-file tree explaining the ref). The compare-and-set is
//! GitHub's own: `POST /git/refs` answers 422 when the ref exists, and
//! `PATCH /git/refs/…` with `force: false` answers 422 unless the new
//! commit descends from where the ref points — every record's parent is the
//! record it replaces, so an update succeeds only from the tip the writer
//! read. Refs outside `refs/heads` and `refs/tags` trigger no workflow and
//! are not fetched by a normal clone.
//!
//! Reads are conditional (`If-None-Match`): a poll that finds the ref
//! unchanged is a `304`, which GitHub does not count against the rate
//! limit; commits are immutable, so each is read once.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use super::{CasError, LockError, LockKey, Record, Versioned};
use crate::action::identity::ActionsRun;
use crate::github::{Api, Conditional, GitRef, GithubError, TreeEntry};

/// Where the lock refs live below `refs/`.
pub const REF_PREFIX: &str = "refs/expedite/locks";

const README: &str = "This ref is expedite's deploy lock for one service.\n\
Each commit message is one record (who holds it, until when, what it was doing).\n\
Delete the ref only when no expedite run is deploying the service.\n";

/// Bounds the per-process caches (a run touches a handful of locks).
const CACHE_MAX: usize = 256;

/// A ref's `ETag` and the sha it pointed at.
type Seen = (Option<String>, String);

/// A lock store in one repository.
#[derive(Clone)]
pub struct GithubStore {
    api: Api,
    tree: Arc<OnceCell<String>>,
    /// ref → (etag, sha) from the last conditional read.
    refs: Arc<Mutex<BTreeMap<String, Seen>>>,
    /// commit sha → record.
    records: Arc<Mutex<BTreeMap<String, Record>>>,
}

fn ref_name(key: &LockKey) -> String {
    format!("{REF_PREFIX}/{}", key.path)
}

fn classify(what: &str, e: GithubError) -> LockError {
    match e.status() {
        Some(401 | 403 | 404) => LockError::Denied {
            what: what.to_string(),
            detail: e.to_string(),
            fix: "the lock is a ref in the repository: the token needs `contents: write` (in a workflow: `permissions: contents: write`), or set `lock: none` when no other run can deploy this app".into(),
        },
        _ => LockError::Unavailable {
            what: what.to_string(),
            detail: e.to_string(),
        },
    }
}

impl GithubStore {
    /// A store writing through `api` (a client whose cancellation is not
    /// the run's: a lock must be given back after Ctrl-C too).
    pub fn new(api: Api) -> GithubStore {
        GithubStore {
            api,
            tree: Arc::new(OnceCell::new()),
            refs: Arc::new(Mutex::new(BTreeMap::new())),
            records: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// `refs/expedite/locks/… in owner/repo`.
    pub fn describe(&self, key: &LockKey) -> String {
        format!("{} in {}", ref_name(key), self.api.repo)
    }

    /// The command that removes a lock by hand.
    pub fn clear_hint(&self, key: &LockKey) -> String {
        format!(
            "gh api -X DELETE repos/{}/git/{}",
            self.api.repo,
            ref_name(key)
        )
    }

    async fn tree(&self, key: &LockKey) -> Result<String, LockError> {
        self.tree
            .get_or_try_init(|| async {
                self.api
                    .create_tree(&[TreeEntry {
                        path: "README.md",
                        mode: "100644",
                        kind: "blob",
                        sha: None,
                        content: Some(README),
                    }])
                    .await
                    .map(|t| t.sha)
                    .map_err(|e| classify(&self.describe(key), e))
            })
            .await
            .cloned()
    }

    async fn commit(
        &self,
        key: &LockKey,
        record: &Record,
        parent: Option<&str>,
    ) -> Result<String, LockError> {
        let tree = self.tree(key).await?;
        let message = serde_json::to_string(record).map_err(|e| LockError::Unavailable {
            what: self.describe(key),
            detail: e.to_string(),
        })?;
        let parents: Vec<&str> = parent.into_iter().collect();
        let c = self
            .api
            .create_commit(&message, &tree, &parents)
            .await
            .map_err(|e| classify(&self.describe(key), e))?;
        self.remember(&c.sha, record).await;
        Ok(c.sha)
    }

    async fn remember(&self, sha: &str, record: &Record) {
        let mut records = self.records.lock().await;
        if records.len() >= CACHE_MAX {
            records.clear();
        }
        records.insert(sha.to_string(), record.clone());
    }

    /// The sha the ref points at now (`None`: no lock yet).
    async fn tip(&self, key: &LockKey) -> Result<Option<String>, LockError> {
        let name = ref_name(key);
        let etag = self
            .refs
            .lock()
            .await
            .get(&name)
            .and_then(|(e, _)| e.clone());
        let got = self
            .api
            .get_conditional(&self.api.ref_path(&name), etag.as_deref())
            .await
            .map_err(|e| classify(&self.describe(key), e))?;
        let mut refs = self.refs.lock().await;
        match got {
            Conditional::NotModified => Ok(refs.get(&name).map(|(_, sha)| sha.clone())),
            Conditional::Missing => {
                refs.remove(&name);
                Ok(None)
            }
            Conditional::Found { etag, body } => {
                let r: GitRef =
                    serde_json::from_str(&body).map_err(|e| LockError::Unavailable {
                        what: self.describe(key),
                        detail: format!("unexpected answer for the ref: {e}"),
                    })?;
                if refs.len() >= CACHE_MAX {
                    refs.clear();
                }
                refs.insert(name, (etag, r.object.sha.clone()));
                Ok(Some(r.object.sha))
            }
        }
    }

    /// The record at the chain's tip.
    pub async fn read(&self, key: &LockKey) -> Result<Option<Versioned>, LockError> {
        let Some(sha) = self.tip(key).await? else {
            return Ok(None);
        };
        if let Some(r) = self.records.lock().await.get(&sha) {
            return Ok(Some(Versioned {
                version: sha,
                record: r.clone(),
            }));
        }
        let c = self
            .api
            .git_commit(&sha)
            .await
            .map_err(|e| classify(&self.describe(key), e))?;
        let record: Record =
            serde_json::from_str(c.message.trim()).map_err(|e| LockError::Corrupt {
                what: self.describe(key),
                detail: format!("commit {sha}: {e}"),
                fix: self.clear_hint(key),
            })?;
        if record.key != key.path {
            return Err(LockError::Corrupt {
                what: self.describe(key),
                detail: format!("commit {sha} is a record of '{}'", record.key),
                fix: self.clear_hint(key),
            });
        }
        self.remember(&sha, &record).await;
        Ok(Some(Versioned {
            version: sha,
            record,
        }))
    }

    /// Creates the lock: refused (a conflict) when it exists.
    pub async fn create(&self, key: &LockKey, record: &Record) -> Result<String, CasError> {
        let sha = self.commit(key, record, None).await?;
        match self.api.create_ref(&ref_name(key), &sha).await {
            Ok(_) => Ok(sha),
            Err(e) if e.status() == Some(422) => Err(CasError::Conflict),
            Err(e) if e.status().is_none_or(|s| s >= 500) => {
                // The answer was lost or broken: read to learn whether it
                // applied.
                match self.tip(key).await {
                    Ok(Some(tip)) if tip == sha => Ok(sha),
                    Ok(_) => Err(CasError::Conflict),
                    Err(_) => Err(CasError::Failed(classify(&self.describe(key), e))),
                }
            }
            Err(e) => Err(CasError::Failed(classify(&self.describe(key), e))),
        }
    }

    /// Appends `record` after `expected`: refused (a conflict) unless the
    /// chain still ends there.
    pub async fn replace(
        &self,
        key: &LockKey,
        expected: &str,
        record: &Record,
    ) -> Result<String, CasError> {
        let sha = self.commit(key, record, Some(expected)).await?;
        match self.api.update_ref(&ref_name(key), &sha, false).await {
            Ok(_) => Ok(sha),
            // "Update is not a fast forward", "Reference does not exist".
            Err(e) if e.status() == Some(422) => Err(CasError::Conflict),
            Err(e) if e.status().is_none_or(|s| s >= 500) => match self.tip(key).await {
                Ok(Some(tip)) if tip == sha => Ok(sha),
                Ok(_) => Err(CasError::Conflict),
                Err(_) => Err(CasError::Failed(classify(&self.describe(key), e))),
            },
            Err(e) => Err(CasError::Failed(classify(&self.describe(key), e))),
        }
    }

    /// True when the ref still points at `version` (a `304` costs nothing).
    pub async fn unchanged(&self, key: &LockKey, version: &str) -> Result<bool, LockError> {
        Ok(self.tip(key).await?.as_deref() == Some(version))
    }

    /// Whether the holder's workflow run attempt is over (`None`: another
    /// repository's run, or the token may not read Actions).
    pub async fn run_over(&self, run: &ActionsRun) -> Option<bool> {
        if !run.repository.eq_ignore_ascii_case(&self.api.repo) {
            return None;
        }
        match self.api.workflow_run(run.run_id).await {
            Ok(Some(r)) => {
                Some(r.status == "completed" || r.run_attempt.is_some_and(|a| a > run.attempt))
            }
            _ => None,
        }
    }
}
