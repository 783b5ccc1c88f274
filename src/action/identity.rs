//! Who this run is: one identity per process, read once from the
//! environment, so that two runs never mistake each other's lock (two
//! engineers' terminals, two steps of one job, the main and post stage of
//! one step) and the sandbox's request log can tell runs apart.
//!
//! - In a workflow: `owner/repo#run.attempt/job/nonce`, with the run's page
//!   and the run id (a lock whose run has completed is stale).
//! - On a terminal: `user@host/pid/nonce`.
//!
//! The post stage is a new process with a new nonce; it continues as the
//! main stage's holder by reading that identity from the journal.

use serde::{Deserialize, Serialize};

use super::Env;

/// The GitHub Actions run a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsRun {
    /// `owner/name`.
    pub repository: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: u64,
    /// `GITHUB_RUN_ATTEMPT`.
    pub attempt: u32,
}

/// One process's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// Unique to this process.
    pub id: String,
    /// For people: "octocat in run 42 (attempt 1), job deploy" or
    /// "alice@laptop (terminal, pid 4242)".
    pub who: String,
    /// The run's page, in a workflow.
    #[serde(default)]
    pub url: Option<String>,
    /// The workflow run, in a workflow.
    #[serde(default)]
    pub run: Option<ActionsRun>,
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl RunIdentity {
    /// This process's identity, from `env`.
    pub fn from_env(env: &Env) -> RunIdentity {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
        let nonce = nonce();
        let runner = env.runner();
        match (runner.repository.as_deref(), runner.run_id.as_deref()) {
            (Some(repo), Some(run)) if runner.in_actions => {
                let attempt = runner.attempt.as_str();
                let job = runner.job.as_deref().unwrap_or("job");
                let actor = runner.actor.as_deref().unwrap_or("someone");
                RunIdentity {
                    id: format!("{repo}#{run}.{attempt}/{job}/{nonce}"),
                    who: format!("{actor} in run {run} (attempt {attempt}), job {job}"),
                    url: runner.run_url(),
                    run: run.parse().ok().map(|run_id| ActionsRun {
                        repository: repo.to_string(),
                        run_id,
                        attempt: attempt.parse().unwrap_or(1),
                    }),
                }
            }
            _ => {
                let user = get("USER")
                    .or_else(|| get("LOGNAME"))
                    .or_else(|| get("USERNAME"))
                    .unwrap_or("someone");
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .or_else(|| get("HOSTNAME").map(str::to_string))
                    .unwrap_or_else(|| "localhost".into());
                let pid = std::process::id();
                RunIdentity {
                    id: format!("{user}@{host}/{pid}/{nonce}"),
                    who: format!("{user}@{host} (terminal, pid {pid})"),
                    url: None,
                    run: None,
                }
            }
        }
    }

    /// A short token unique to this process, for names that must differ
    /// between runs (a Container Apps revision suffix).
    pub fn nonce(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or("")
    }

    /// The run id and attempt for names (`"local"` on a terminal).
    pub fn run_and_attempt(&self) -> (String, String) {
        match &self.run {
            Some(r) => (r.run_id.to_string(), r.attempt.to_string()),
            None => ("local".into(), "1".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_is_someone_else() {
        let env = Env::from_pairs([("USER".to_string(), "alice".to_string())]);
        let a = RunIdentity::from_env(&env);
        let b = RunIdentity::from_env(&env);
        assert_ne!(a.id, b.id, "two terminal runs never share an identity");
        assert!(a.id.starts_with("alice@"), "{}", a.id);
        assert!(a.who.contains("terminal"));
        assert_eq!(a.run, None);
        assert_eq!(a.nonce().len(), 8);
    }

    #[test]
    fn a_workflow_run_names_its_run_and_job() {
        let env = Env::from_pairs(
            [
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REPOSITORY", "contoso/payments"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_RUN_ATTEMPT", "2"),
                ("GITHUB_JOB", "deploy"),
                ("GITHUB_ACTOR", "octocat"),
                ("GITHUB_SERVER_URL", "https://github.com"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let a = RunIdentity::from_env(&env);
        assert!(
            a.id.starts_with("contoso/payments#42.2/deploy/"),
            "{}",
            a.id
        );
        assert_eq!(
            a.url.as_deref(),
            Some("https://github.com/contoso/payments/actions/runs/42")
        );
        assert_eq!(
            a.run,
            Some(ActionsRun {
                repository: "contoso/payments".into(),
                run_id: 42,
                attempt: 2
            })
        );
        assert_ne!(a.id, RunIdentity::from_env(&env).id);
    }
}
