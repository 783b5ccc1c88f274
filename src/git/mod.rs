//! The `git` binary, driven for the cherry-pick: a scratch bare repository,
//! a minimal fetch, the three-way merge of each hotfix commit, a push.
//!
//! - **Minimal fetch**: `git init --bare`, then one `git fetch --depth=2
//!   --filter=blob:none` of exactly the hotfix commits (depth 2: each commit
//!   and its parent, the merge base of a cherry-pick) and the target branch
//!   tip. Trees come with the commits; blobs are fetched lazily by the
//!   promisor remote, only for the paths the merge actually reads.
//! - **The pick**: `git merge-tree --write-tree --merge-base=<parent>
//!   <target> <commit>` is the three-way merge `git cherry-pick` performs
//!   (the same merge-ort machinery, rename detection on, `-X
//!   find-renames`), computed without a working tree — a checkout would
//!   need every blob of the target and undo the partial fetch (ADR 0006).
//!   The commit is written with `git commit-tree`, keeping the original
//!   author and adding the `(cherry picked from commit …)` line `-x` adds.
//!   A conflicted merge still yields a tree, with conflict markers in the
//!   files; that tree is committed so the draft pull request shows them.
//! - **Safety**: arguments are passed as a vector (never a shell); refs are
//!   validated upstream; the environment is cleared (no user or system
//!   config, `GIT_TERMINAL_PROMPT=0`); the token travels as an
//!   `http.extraHeader` in `GIT_CONFIG_*` variables — never in the URL or
//!   argv, where logs and `ps` would show it; every run is bounded in time
//!   and killed on cancellation.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;

use crate::cancel::Cancel;
use crate::http::HttpSettings;

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git is missing or cannot start.
    #[error("cannot run git ({0}); install git 2.40 or later in the image or on the runner")]
    Spawn(String),
    /// The scratch directory could not be prepared.
    #[error("cannot prepare the scratch repository {path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: String,
    },
    /// The operation ran past its bound and was killed.
    #[error("git {op} took longer than {secs} s and was stopped")]
    Timeout {
        /// The operation.
        op: String,
        /// The bound.
        secs: u64,
    },
    /// Cancelled (signal or deadline) while git ran; it was killed.
    #[error("git {0} was stopped: the run was cancelled")]
    Cancelled(String),
    /// git failed; `stderr` is git's own explanation.
    #[error("git {op} failed: {stderr}")]
    Failed {
        /// The operation.
        op: String,
        /// git's stderr (redacted of the token by construction: it never
        /// sees the token in a URL).
        stderr: String,
    },
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Branch protection refused it (`GH006`): open a pull request instead.
    #[error("{branch} is protected: {detail}")]
    Protected {
        /// The branch.
        branch: String,
        /// GitHub's words.
        detail: String,
    },
    /// The token lacks the `workflows` permission for a change under
    /// `.github/workflows/`.
    #[error(
        "GitHub refused the push because it changes {} and the token lacks the `workflows` permission. Grant the GitHub App \"Workflows: Read and write\" (App settings → Permissions, then accept the new permission on the installation), or use a token with the `workflow` scope; the job's GITHUB_TOKEN can never push workflow changes",
        file.as_deref().map(|f| format!("`{f}`")).unwrap_or_else(|| "a file under .github/workflows/".into())
    )]
    WorkflowsPermission {
        /// The workflow file GitHub named.
        file: Option<String>,
    },
    /// The branch moved since the fetch: not a fast-forward.
    #[error("{branch} moved while the pick was prepared (not a fast-forward); run the step again")]
    NotFastForward {
        /// The branch.
        branch: String,
    },
    /// Anything else.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Who and how to reach.
#[derive(Clone)]
pub struct Remote {
    /// `https://server/owner/repo.git`.
    pub url: String,
    /// The token (sent as Basic `x-access-token:<token>`, as GitHub expects
    /// for installation tokens and accepts for every token).
    pub token: SecretString,
    /// TLS trust and resolution overrides (applied to git's curl).
    pub http: HttpSettings,
}

/// The identity commits are written as (the committer; authors are kept).
#[derive(Debug, Clone)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// A commit as git stores it.
#[derive(Debug, Clone)]
pub struct CommitMeta {
    /// SHA.
    pub sha: String,
    /// Parents.
    pub parents: Vec<String>,
    /// `Name`.
    pub author_name: String,
    /// `email`.
    pub author_email: String,
    /// `1700000000 +0100` (git's internal date format).
    pub author_date: String,
    /// The message (untrusted text).
    pub message: String,
}

impl CommitMeta {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }
}

/// The result of merging one commit.
#[derive(Debug, Clone)]
pub struct Merge {
    /// The merged tree (with conflict markers when it conflicted).
    pub tree: String,
    /// Conflicted paths.
    pub conflicts: Vec<String>,
    /// git's messages about the conflicts (`CONFLICT (binary): …`).
    pub messages: Vec<String>,
}

/// Bytes for a child's stdin, with extra environment for that one run.
type Stdin<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);

/// A scratch bare repository with `origin` set up for partial fetches.
pub struct Scratch {
    dir: PathBuf,
    env: Vec<(String, OsString)>,
    cancel: Cancel,
    timeout: Duration,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The scratch repository holds nothing anyone needs afterwards.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Basic authorization value git sends (mask it: it encodes the token).
pub fn basic_auth(token: &SecretString) -> String {
    base64(format!("x-access-token:{}", token.expose_secret()).as_bytes())
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// `GIT_CONFIG_*` pairs making git's curl trust the extra CA and honour the
/// resolve rules for `url`'s host. curl's resolve cannot change the port, so
/// a rule with another port also rewrites the URL (`url.<x>.insteadOf`).
fn transport_config(
    url: &str,
    http: &HttpSettings,
    ca_file: Option<&Path>,
) -> Vec<(String, String)> {
    let mut cfg = Vec::new();
    if let Some(ca) = ca_file {
        cfg.push(("http.sslCAInfo".into(), ca.display().to_string()));
    }
    let Ok(u) = url::Url::parse(url) else {
        return cfg;
    };
    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else {
        return cfg;
    };
    if let Some(rule) = http.resolve.iter().find(|r| r.matches(host)) {
        let to_port = if rule.addr.port() == 0 {
            port
        } else {
            rule.addr.port()
        };
        let ip = match rule.addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        cfg.push((
            "http.curloptResolve".into(),
            format!("{host}:{to_port}:{ip}"),
        ));
        if to_port != port {
            cfg.push((
                format!("url.{}://{host}:{to_port}/.insteadOf", u.scheme()),
                format!("{}://{host}/", u.scheme()),
            ));
        }
    }
    cfg
}

impl Scratch {
    /// Creates `parent/expedite-<name>-<random>` as a bare repository whose
    /// `origin` is `remote`, a promisor for lazily fetched blobs.
    pub async fn create(
        parent: &Path,
        name: &str,
        remote: &Remote,
        committer: &Identity,
        cancel: Cancel,
        timeout: Duration,
    ) -> Result<Scratch, GitError> {
        let dir = parent.join(format!("expedite-{name}-{}", uuid::Uuid::new_v4().simple()));
        let io = |e: std::io::Error| GitError::Io {
            path: dir.display().to_string(),
            error: e.to_string(),
        };
        std::fs::create_dir_all(dir.join("home")).map_err(io)?;
        let ca_file = if remote.http.extra_ca_pem.is_empty() {
            None
        } else {
            // curl replaces its trust store with sslCAInfo; keep the
            // system's roots beside the extra CA so a corporate proxy's CA
            // does not cut github.com off.
            let mut bundle = String::new();
            if remote.http.system_roots {
                for p in [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/ssl/cert.pem",
                ] {
                    if let Ok(t) = std::fs::read_to_string(p) {
                        bundle.push_str(&t);
                        bundle.push('\n');
                        break;
                    }
                }
            }
            for pem in &remote.http.extra_ca_pem {
                bundle.push_str(pem);
                bundle.push('\n');
            }
            let p = dir.join("ca.pem");
            std::fs::write(&p, bundle).map_err(io)?;
            Some(p)
        };
        let mut cfg: Vec<(String, String)> = vec![
            (
                "http.extraHeader".into(),
                format!("Authorization: Basic {}", basic_auth(&remote.token)),
            ),
            ("credential.helper".into(), String::new()),
            ("protocol.version".into(), "2".into()),
            ("gc.auto".into(), "0".into()),
            ("maintenance.auto".into(), "false".into()),
            ("fetch.writeCommitGraph".into(), "false".into()),
            ("merge.renames".into(), "true".into()),
            ("diff.renames".into(), "true".into()),
            ("core.quotePath".into(), "false".into()),
            ("user.name".into(), committer.name.clone()),
            ("user.email".into(), committer.email.clone()),
        ];
        cfg.extend(transport_config(
            &remote.url,
            &remote.http,
            ca_file.as_deref(),
        ));
        let mut env: Vec<(String, OsString)> = vec![
            (
                "PATH".into(),
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            ),
            ("HOME".into(), dir.join("home").into_os_string()),
            ("LC_ALL".into(), "C".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_CONFIG_COUNT".into(), cfg.len().to_string().into()),
        ];
        for (i, (k, v)) in cfg.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), k.into()));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), v.into()));
        }
        let s = Scratch {
            dir: dir.join("repo.git"),
            env,
            cancel,
            timeout,
        };
        s.run_in(
            &dir,
            "init",
            &["init", "--quiet", "--bare", "repo.git"],
            None,
        )
        .await?;
        for (k, v) in [
            ("remote.origin.url", remote.url.as_str()),
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialclonefilter", "blob:none"),
        ] {
            s.git("config", &["config", k, v]).await?;
        }
        Ok(s)
    }

    /// The repository's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    async fn run_in(
        &self,
        cwd: &Path,
        op: &str,
        args: &[&str],
        stdin: Option<Stdin<'_>>,
    ) -> Result<String, GitError> {
        let out = self.output(cwd, op, args, stdin).await?;
        if out.0 {
            Ok(out.1)
        } else {
            Err(GitError::Failed {
                op: op.to_string(),
                stderr: out.2,
            })
        }
    }

    /// Runs git; `(success, stdout, stderr)`. Exit status is the caller's
    /// to interpret (merge-tree exits 1 on conflicts).
    async fn output(
        &self,
        cwd: &Path,
        op: &str,
        args: &[&str],
        input: Option<Stdin<'_>>,
    ) -> Result<(bool, String, String, Option<i32>), GitError> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((_, extra)) = input {
            for (k, v) in extra {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().map_err(|e| GitError::Spawn(e.to_string()))?;
        if let Some((bytes, _)) = input
            && let Some(mut stdin) = child.stdin.take()
        {
            stdin
                .write_all(bytes)
                .await
                .map_err(|e| GitError::Spawn(e.to_string()))?;
            drop(stdin);
        }
        let wait = child.wait_with_output();
        let out = tokio::select! {
            r = tokio::time::timeout(self.timeout, wait) => match r {
                Ok(r) => r.map_err(|e| GitError::Spawn(e.to_string()))?,
                Err(_) => return Err(GitError::Timeout { op: op.to_string(), secs: self.timeout.as_secs() }),
            },
            () = self.cancel.cancelled() => return Err(GitError::Cancelled(op.to_string())),
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Ok((out.status.success(), stdout, stderr, out.status.code()))
    }

    async fn git(&self, op: &str, args: &[&str]) -> Result<String, GitError> {
        self.run_in(&self.dir, op, args, None).await
    }

    /// Fetches exactly `commits` with their parents and the tip of
    /// `branch` (as `refs/remotes/origin/<branch>`), trees only. Returns the
    /// branch tip, or `None` when the branch does not exist.
    pub async fn fetch_minimal(
        &self,
        commits: &[String],
        branch: &str,
    ) -> Result<Option<String>, GitError> {
        let tracking = format!("refs/remotes/origin/{branch}");
        let spec = format!("+refs/heads/{branch}:{tracking}");
        let mut args: Vec<&str> = vec![
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--depth=2",
            "--filter=blob:none",
            "origin",
        ];
        args.extend(commits.iter().map(String::as_str));
        args.push(&spec);
        match self.git("fetch", &args).await {
            Ok(_) => {}
            Err(GitError::Failed { stderr, .. })
                if stderr.contains("couldn't find remote ref") && stderr.contains(branch) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        Ok(Some(
            self.git("rev-parse", &["rev-parse", &tracking])
                .await?
                .trim()
                .to_string(),
        ))
    }

    /// Reads a commit.
    pub async fn commit(&self, sha: &str) -> Result<CommitMeta, GitError> {
        let raw = self.git("cat-file", &["cat-file", "commit", sha]).await?;
        let (headers, message) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut meta = CommitMeta {
            sha: sha.to_string(),
            parents: Vec::new(),
            author_name: String::new(),
            author_email: String::new(),
            author_date: String::new(),
            message: message.to_string(),
        };
        for line in headers.lines() {
            if let Some(p) = line.strip_prefix("parent ") {
                meta.parents.push(p.trim().to_string());
            } else if let Some(a) = line.strip_prefix("author ") {
                // `Name <email> 1700000000 +0100`
                if let (Some(lt), Some(gt)) = (a.find('<'), a.rfind('>')) {
                    meta.author_name = a[..lt].trim().to_string();
                    meta.author_email = a[lt + 1..gt].to_string();
                    meta.author_date = a[gt + 1..].trim().to_string();
                }
            }
        }
        Ok(meta)
    }

    /// The tree of a commit.
    pub async fn tree_of(&self, commit: &str) -> Result<String, GitError> {
        Ok(self
            .git("rev-parse", &["rev-parse", &format!("{commit}^{{tree}}")])
            .await?
            .trim()
            .to_string())
    }

    /// Three-way merges `commit` onto `onto` with `commit`'s parent as the
    /// base (what `git cherry-pick` does), rename detection on. `ours_label`
    /// names the target in conflict markers.
    pub async fn merge_commit(
        &self,
        onto: &str,
        ours_label: &str,
        commit: &CommitMeta,
    ) -> Result<Merge, GitError> {
        let parent = commit.parents.first().ok_or_else(|| GitError::Failed {
            op: "cherry-pick".into(),
            stderr: format!(
                "{} is a root commit; there is nothing to pick it onto",
                commit.sha
            ),
        })?;
        // Labels in conflict markers are the revision arguments as given:
        // a local branch named like the target, and the short SHA.
        let label_ref = format!("refs/heads/{ours_label}");
        self.git("update-ref", &["update-ref", &label_ref, onto])
            .await?;
        let short = &commit.sha[..commit.sha.len().min(12)];
        let base = format!("--merge-base={parent}");
        let (ok, stdout, stderr, code) = self
            .output(
                &self.dir,
                "merge-tree",
                &[
                    "merge-tree",
                    "--write-tree",
                    "-z",
                    "--name-only",
                    "-X",
                    "find-renames",
                    &base,
                    ours_label,
                    short,
                ],
                None,
            )
            .await?;
        if !ok && code != Some(1) {
            return Err(GitError::Failed {
                op: "merge-tree".into(),
                stderr,
            });
        }
        let mut parts = stdout.split('\0');
        let tree = parts.next().unwrap_or_default().trim().to_string();
        let mut conflicts = Vec::new();
        for p in parts.by_ref() {
            if p.is_empty() {
                break;
            }
            if !conflicts.iter().any(|c| c == p) {
                conflicts.push(p.to_string());
            }
        }
        // Messages: `<n>\0<path>…\0<type>\0<message>\0`, repeated.
        let mut messages = Vec::new();
        let rest: Vec<&str> = parts.collect();
        let mut i = 0;
        while i < rest.len() {
            let Ok(n) = rest[i].trim().parse::<usize>() else {
                break;
            };
            let kind = rest.get(i + 1 + n).copied().unwrap_or_default();
            let text = rest.get(i + 2 + n).copied().unwrap_or_default();
            if kind.starts_with("CONFLICT") {
                messages.push(text.trim().to_string());
            }
            i += n + 3;
        }
        if code == Some(1) && conflicts.is_empty() {
            return Err(GitError::Failed {
                op: "merge-tree".into(),
                stderr: format!("reported a conflict without naming a file: {stderr}"),
            });
        }
        Ok(Merge {
            tree,
            conflicts,
            messages,
        })
    }

    /// Writes a commit of `tree` on `parent` with `commit`'s author and
    /// `message`; returns its SHA.
    pub async fn write_commit(
        &self,
        tree: &str,
        parent: &str,
        author: &CommitMeta,
        message: &str,
    ) -> Result<String, GitError> {
        let env = [
            ("GIT_AUTHOR_NAME", author.author_name.as_str()),
            ("GIT_AUTHOR_EMAIL", author.author_email.as_str()),
            ("GIT_AUTHOR_DATE", author.author_date.as_str()),
        ];
        let out = self
            .output(
                &self.dir,
                "commit-tree",
                &["commit-tree", tree, "-p", parent, "-F", "-"],
                Some((message.as_bytes(), &env)),
            )
            .await?;
        if !out.0 {
            return Err(GitError::Failed {
                op: "commit-tree".into(),
                stderr: out.2,
            });
        }
        Ok(out.1.trim().to_string())
    }

    /// Pushes `sha` to `refs/heads/<branch>` (never forced: a branch that
    /// moved is refused, not overwritten).
    pub async fn push(&self, sha: &str, branch: &str) -> Result<(), PushError> {
        self.push_lease(sha, branch, None).await
    }

    /// Pushes `sha` to `branch`; with `lease`, replaces the branch only if
    /// it still points at `lease` (an expedite branch an earlier run left).
    pub async fn push_lease(
        &self,
        sha: &str,
        branch: &str,
        lease: Option<&str>,
    ) -> Result<(), PushError> {
        let spec = match lease {
            Some(_) => format!("+{sha}:refs/heads/{branch}"),
            None => format!("{sha}:refs/heads/{branch}"),
        };
        let lease_arg = lease
            .map(|old| format!("--force-with-lease=refs/heads/{branch}:{old}"))
            .unwrap_or_default();
        let mut args = vec!["push", "--porcelain", "--no-verify"];
        if lease.is_some() {
            args.push(&lease_arg);
        }
        args.extend(["origin", spec.as_str()]);
        let (ok, stdout, stderr, _) = self.output(&self.dir, "push", &args, None).await?;
        if ok {
            return Ok(());
        }
        let all = format!("{stdout}\n{stderr}");
        if all.contains("without `workflows` permission")
            || all.contains("without `workflow` scope")
        {
            let file = all
                .split("workflow `")
                .nth(1)
                .and_then(|s| s.split('`').next())
                .map(str::to_string);
            return Err(PushError::WorkflowsPermission { file });
        }
        if all.contains("GH006") || all.contains("protected branch") {
            let detail = all
                .lines()
                .find(|l| l.contains("GH006"))
                .unwrap_or("protected branch hook declined")
                .trim_start_matches("remote: ")
                .trim()
                .to_string();
            return Err(PushError::Protected {
                branch: branch.to_string(),
                detail,
            });
        }
        if all.contains("non-fast-forward") || all.contains("fetch first") {
            return Err(PushError::NotFastForward {
                branch: branch.to_string(),
            });
        }
        Err(PushError::Git(GitError::Failed {
            op: "push".into(),
            stderr: all.trim().to_string(),
        }))
    }

    /// Bytes of objects held locally (packs and loose): what the fetches
    /// and lazy blob fetches brought in.
    pub async fn bytes_fetched(&self) -> u64 {
        let Ok(out) = self.git("count-objects", &["count-objects", "-v"]).await else {
            return 0;
        };
        out.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                matches!(k, "size" | "size-pack").then(|| v.trim().parse::<u64>().ok())?
            })
            .sum::<u64>()
            * 1024
    }
}

/// The message `git cherry-pick -x` writes: the original, then
/// `(cherry picked from commit <sha>)` — in the trailer block when the
/// message ends with one, else after a blank line.
pub fn cherry_pick_message(original: &str, sha: &str) -> String {
    let body = original.trim_end();
    let last = body.rsplit("\n\n").next().unwrap_or("");
    let is_trailers = body.contains("\n\n")
        && !last.is_empty()
        && last.lines().all(|l| {
            l.split_once(": ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }) || l.starts_with("(cherry picked from commit ")
        });
    let sep = if is_trailers { "\n" } else { "\n\n" };
    format!("{body}{sep}(cherry picked from commit {sha})\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn x_trailer_like_git() {
        assert_eq!(
            cherry_pick_message("fix: orders\n", "abc"),
            "fix: orders\n\n(cherry picked from commit abc)\n"
        );
        assert_eq!(
            cherry_pick_message("fix\n\nbody\n\nSigned-off-by: A <a@b>\n", "abc"),
            "fix\n\nbody\n\nSigned-off-by: A <a@b>\n(cherry picked from commit abc)\n"
        );
    }

    #[test]
    fn resolve_rules_reach_git() {
        let http = HttpSettings {
            resolve: vec!["github.test=127.0.0.1:8443".parse().unwrap()],
            ..HttpSettings::default()
        };
        let cfg = transport_config("https://github.test/o/r.git", &http, None);
        assert!(cfg.contains(&(
            "http.curloptResolve".into(),
            "github.test:8443:127.0.0.1".into()
        )));
        assert!(cfg.contains(&(
            "url.https://github.test:8443/.insteadOf".into(),
            "https://github.test/".into()
        )));
    }
}
