//! The deploy lock (`lock`, `lock-ttl`) for the commands that change
//! production.

use std::time::Duration;

use super::values::{ValueError, shown};
use super::*;

/// How deploys and rollbacks of one service exclude each other.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// The lock is a ref in the repository (`lock: github`, or `auto` with
    /// a token and repository); false: `lock: none`.
    pub github: bool,
    /// How long a holder's lock lasts without renewal: at most this long a
    /// run that died without its post stage blocks the next one.
    pub ttl: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            github: false,
            ttl: Duration::from_secs(300),
        }
    }
}

/// The `lock` and `lock-ttl` inputs, for the commands that change
/// production; `has_github`: a token and repository are known;
/// `on_azure`: the run changes a service on Azure (what the lock guards).
pub(super) fn lock_config(
    r: &mut Resolver<'_>,
    has_github: bool,
    on_azure: bool,
) -> Option<LockConfig> {
    let ttl = duration_at_least(r, "lock-ttl", Duration::from_secs(5));
    let mode = r.parse("lock", |v| match v {
        "auto" | "github" | "none" => Ok(v.to_string()),
        other => Err(ValueError {
            problem: format!("{} is not a lock", shown(other)),
            accepted:
                "auto (a ref in the repository when a GitHub token is given), github, or none"
                    .into(),
        }),
    });
    let github = match mode.as_deref() {
        Some("none") => false,
        Some("github" | "auto") | None if has_github => true,
        Some("auto") | None if !on_azure => false,
        Some(m) => {
            r.error(
                "lock",
                format!(
                    "is {m}, but no GitHub token and repository are given: the deploy lock is a ref in the repository, so that two runs never change one app at once"
                ),
                "give github-token (in a workflow the default) and repository (GITHUB_TOKEN and GITHUB_REPOSITORY on a terminal), or set lock: none when nobody else can deploy this app",
            );
            return None;
        }
        None => return None,
    };
    Some(LockConfig {
        github,
        ttl: ttl.unwrap_or(Duration::from_secs(300)),
    })
}
