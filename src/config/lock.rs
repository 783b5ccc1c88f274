//! The deploy lock (`lock`, `lock-ttl`) for the commands that change
//! production.

use std::time::Duration;

use super::values::{ValueError, shown};
use super::*;

/// How deploys and rollbacks of one service exclude each other.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// The lock is a ref in the repository (`lock: github`, or `auto` with
    /// a token and repository when a service is on Azure).
    pub github: bool,
    /// The lock is a `coordination.k8s.io` Lease on the cluster
    /// (`lock: lease`, or `auto` when every service is on Kubernetes).
    /// Neither: `lock: none`.
    pub lease: bool,
    /// How long a holder's lock lasts without renewal: at most this long a
    /// run that died without its post stage blocks the next one.
    pub ttl: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            github: false,
            lease: false,
            ttl: Duration::from_secs(300),
        }
    }
}

/// The `lock` and `lock-ttl` inputs, for the commands that change
/// production; `has_github`: a token and repository are known;
/// `on_azure`, `on_kube`: the run changes a service on Azure, on
/// Kubernetes (what the lock guards).
pub(super) fn lock_config(
    r: &mut Resolver<'_>,
    has_github: bool,
    on_azure: bool,
    on_kube: bool,
) -> Option<LockConfig> {
    let ttl = duration_at_least(r, "lock-ttl", Duration::from_secs(5));
    let mode = r.parse("lock", |v| match v {
        "auto" | "github" | "lease" | "none" => Ok(v.to_string()),
        other => Err(ValueError {
            problem: format!("{} is not a lock", shown(other)),
            accepted:
                "auto, github (a ref in the repository), lease (a Kubernetes Lease on the services' cluster), or none"
                    .into(),
        }),
    });
    let (github, lease) = match mode.as_deref() {
        Some("none") => (false, false),
        Some("lease") if on_kube => (false, true),
        Some("lease") => {
            r.error(
                "lock",
                "is lease, but no service runs on Kubernetes: the Lease lives on the services' cluster",
                "lock: github (or auto) for services on Azure",
            );
            return None;
        }
        // Services on Kubernetes alone: the cluster's own Lease, with no
        // GitHub permission needed.
        Some("auto") | None if on_kube && !on_azure => (false, true),
        Some("github" | "auto") | None if has_github => (true, false),
        Some("auto") | None if !on_azure && !on_kube => (false, false),
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
        lease,
        ttl: ttl.unwrap_or(Duration::from_secs(300)),
    })
}
