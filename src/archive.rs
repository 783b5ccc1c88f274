//! The package archive: what a rollback needs to put a version back when
//! no slot holds it any more (ADR 8).
//!
//! App Service keeps one build per slot; after a later deploy has used the
//! staging slot, the version before the last promotion exists nowhere in
//! Azure. So expedite keeps, in the repository's git database, the package
//! of every version it promotes, and — before it overwrites a slot that
//! holds a version not archived yet — that slot's content (Kudu's zip of
//! `site/wwwroot`). Each is a commit on
//! `refs/expedite/packages/{subscription}/{group}/{app}/{version}` whose
//! tree holds `package.zip` and whose message records the version, size
//! and source. Refs outside `refs/heads` and `refs/tags` are not fetched by
//! a clone and trigger no workflow; list them with
//! `git ls-remote origin 'refs/expedite/packages/*'` and prune one with
//! `git push origin --delete <ref>`. GitHub's blob API takes at most
//! 100 MB: a larger package is not archived (a warning says so).

use serde::{Deserialize, Serialize};

use crate::github::{Api, GithubError, TreeEntry};
use crate::http::PACKAGE_BODY_LIMIT;
use crate::lock::LockKey;

/// Where the package refs live.
pub const REF_PREFIX: &str = "refs/expedite/packages";

/// The file in each archived tree.
const FILE: &str = "package.zip";

/// Where an archived package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The package a deploy uploaded (and promoted).
    Deployed,
    /// A slot's content, zipped by Kudu before expedite overwrote it.
    SlotContent,
}

/// The record in an archive commit's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The version exactly as the app reports it.
    pub version: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Where it came from.
    pub source: Source,
    /// When (RFC 3339).
    pub at: String,
    /// Which run archived it.
    pub by: String,
}

/// Why archiving or reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Over GitHub's blob limit.
    #[error(
        "the package of {version} is {bytes} bytes; GitHub's blob API takes at most {limit}, so it is not archived"
    )]
    TooLarge {
        /// The version.
        version: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// GitHub refused or failed.
    #[error("the package archive in {repo}: {source}")]
    Github {
        /// The repository.
        repo: String,
        /// GitHub's answer.
        #[source]
        source: GithubError,
    },
    /// The archived commit is not one of ours.
    #[error("the package archive's entry {name} is not readable: {detail}")]
    Corrupt {
        /// The ref.
        name: String,
        /// What was wrong.
        detail: String,
    },
}

impl ArchiveError {
    /// True when trying again later may work (GitHub unreachable, 429, 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            ArchiveError::Github { source, .. } => {
                source.status().is_none_or(|s| s == 429 || s >= 500)
            }
            _ => false,
        }
    }
}

/// A package archive in one repository.
#[derive(Clone)]
pub struct Archive {
    api: Api,
    by: String,
}

fn ref_component(version: &str) -> String {
    let mut s: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("..") {
        s = s.replace("..", "-");
    }
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, 'v');
    }
    if s.ends_with(".lock") || s.ends_with('.') {
        s.push('-');
    }
    s
}

impl Archive {
    /// An archive written through `api` by the run `by`.
    pub fn new(api: Api, by: impl Into<String>) -> Archive {
        Archive { api, by: by.into() }
    }

    /// The ref holding `version` of the service `key`.
    pub fn ref_name(key: &LockKey, version: &str) -> String {
        format!("{REF_PREFIX}/{}/{}", key.path, ref_component(version))
    }

    /// Where the archive lives, for people.
    pub fn describe(&self, key: &LockKey) -> String {
        format!("{REF_PREFIX}/{}/* in {}", key.path, self.api.repo)
    }

    fn err(&self, source: GithubError) -> ArchiveError {
        ArchiveError::Github {
            repo: self.api.repo.clone(),
            source,
        }
    }

    /// Whether `version` is archived.
    pub async fn has(&self, key: &LockKey, version: &str) -> Result<bool, ArchiveError> {
        let name = Archive::ref_name(key, version);
        self.api
            .get_ref(name.strip_prefix("refs/").unwrap_or(&name))
            .await
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Archives `bytes` as `version` (replacing an earlier package of the
    /// same version: the newest promoted one is what served last).
    pub async fn put(
        &self,
        key: &LockKey,
        version: &str,
        bytes: &[u8],
        source: Source,
    ) -> Result<(), ArchiveError> {
        if bytes.len() > PACKAGE_BODY_LIMIT {
            return Err(ArchiveError::TooLarge {
                version: version.to_string(),
                bytes: bytes.len(),
                limit: PACKAGE_BODY_LIMIT,
            });
        }
        let blob = self.api.create_blob(bytes).await.map_err(|e| self.err(e))?;
        let tree = self
            .api
            .create_tree(&[TreeEntry {
                path: FILE,
                mode: "100644",
                kind: "blob",
                sha: Some(&blob.sha),
                content: None,
            }])
            .await
            .map_err(|e| self.err(e))?;
        let entry = Entry {
            version: version.to_string(),
            bytes: bytes.len() as u64,
            source,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            by: self.by.clone(),
        };
        let message = serde_json::to_string(&entry).map_err(|e| ArchiveError::Corrupt {
            name: Archive::ref_name(key, version),
            detail: e.to_string(),
        })?;
        let commit = self
            .api
            .create_commit(&message, &tree.sha, &[])
            .await
            .map_err(|e| self.err(e))?;
        let name = Archive::ref_name(key, version);
        match self.api.create_ref(&name, &commit.sha).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(422) => self
                .api
                .update_ref(&name, &commit.sha, true)
                .await
                .map(|_| ())
                .map_err(|e| self.err(e)),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The archived package of `version`, if there is one.
    pub async fn get(
        &self,
        key: &LockKey,
        version: &str,
    ) -> Result<Option<(Entry, Vec<u8>)>, ArchiveError> {
        let name = Archive::ref_name(key, version);
        let short = name.strip_prefix("refs/").unwrap_or(&name);
        let Some(r) = self.api.get_ref(short).await.map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let commit = self
            .api
            .git_commit(&r.object.sha)
            .await
            .map_err(|e| self.err(e))?;
        let entry: Entry =
            serde_json::from_str(commit.message.trim()).map_err(|e| ArchiveError::Corrupt {
                name: name.clone(),
                detail: e.to_string(),
            })?;
        if entry.version != version {
            return Err(ArchiveError::Corrupt {
                name,
                detail: format!("it holds {}, not {version}", entry.version),
            });
        }
        let tree = self
            .api
            .tree(&commit.tree.sha)
            .await
            .map_err(|e| self.err(e))?;
        let Some(file) = tree
            .tree
            .iter()
            .find(|t| t.path == FILE && t.kind == "blob")
        else {
            return Err(ArchiveError::Corrupt {
                name,
                detail: format!("no {FILE} in its tree"),
            });
        };
        let bytes = self
            .api
            .blob_raw(&file.sha, PACKAGE_BODY_LIMIT)
            .await
            .map_err(|e| self.err(e))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(ArchiveError::Corrupt {
                name,
                detail: format!("{} bytes, the record says {}", bytes.len(), entry.bytes),
            });
        }
        Ok(Some((entry, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_safe_ref_names() {
        let k = LockKey::azure("s", "rg", "app");
        assert_eq!(
            Archive::ref_name(&k, "2.4.1"),
            "refs/expedite/packages/s/rg/app/2.4.1"
        );
        assert_eq!(ref_component("a..b"), "a-b");
        assert_eq!(ref_component(".x"), "v.x");
        assert_eq!(ref_component("1.lock"), "1.lock-");
        assert_eq!(ref_component("v 1/2"), "v-1-2");
    }
}
