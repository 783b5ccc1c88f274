//! The runner's own variables (`GITHUB_*`, `RUNNER_*`), each read here
//! once, with one fallback each, so every part of expedite names the same
//! run the same way: the lock, the audit log, a notification, an incident
//! comment, a tag message. Outside `action/` nothing reads them
//! (`tests/runner_contract.rs` checks). File commands (`GITHUB_OUTPUT`, …)
//! live in [`super::files`]; inputs in [`super::Env::input`].

use std::path::PathBuf;

use super::Env;

/// What the runner says about the run, or what stands in on a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// `GITHUB_ACTIONS=true`: inside a workflow job.
    pub in_actions: bool,
    /// `GITHUB_REPOSITORY` (`owner/name`).
    pub repository: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT` (1 when not given).
    pub attempt: String,
    /// `GITHUB_JOB`.
    pub job: Option<String>,
    /// `GITHUB_ACTOR`.
    pub actor: Option<String>,
    /// `GITHUB_WORKFLOW`.
    pub workflow: Option<String>,
    /// `GITHUB_SERVER_URL` (`https://github.com` when not given).
    pub server_url: String,
    /// `GITHUB_API_URL`, when given.
    pub api_url: Option<String>,
    /// `GITHUB_REF`.
    pub git_ref: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_EVENT_PATH`.
    pub event_path: Option<PathBuf>,
    /// `RUNNER_TEMP`, else the system's temporary directory.
    pub temp: PathBuf,
}

impl Runner {
    /// Reads the variables from `env`; empty ones count as absent.
    pub fn from_env(env: &Env) -> Runner {
        let get = |k: &str| {
            env.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Runner {
            in_actions: env.in_actions(),
            repository: get("GITHUB_REPOSITORY"),
            run_id: get("GITHUB_RUN_ID"),
            attempt: get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into()),
            job: get("GITHUB_JOB"),
            actor: get("GITHUB_ACTOR"),
            workflow: get("GITHUB_WORKFLOW"),
            server_url: get("GITHUB_SERVER_URL")
                .map(|s| s.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "https://github.com".into()),
            api_url: get("GITHUB_API_URL"),
            git_ref: get("GITHUB_REF"),
            sha: get("GITHUB_SHA"),
            event_path: env.path("GITHUB_EVENT_PATH"),
            temp: env.path("RUNNER_TEMP").unwrap_or_else(std::env::temp_dir),
        }
    }

    /// The run's page, when this is a workflow run.
    pub fn run_url(&self) -> Option<String> {
        let repo = self.repository.as_deref()?;
        let id = self.run_id.as_deref()?;
        Some(format!("{}/{repo}/actions/runs/{id}", self.server_url))
    }

    /// Who started it: the workflow's actor, or `(terminal)`.
    pub fn actor(&self) -> &str {
        self.actor.as_deref().unwrap_or("(terminal)")
    }

    /// `owner/repo#run.attempt`, or `local` on a terminal: how audit logs,
    /// notifications and tag messages name the run.
    pub fn run_name(&self) -> String {
        match (&self.repository, &self.run_id) {
            (Some(r), Some(id)) => format!("{r}#{id}.{}", self.attempt),
            _ => "local".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_terminal_is_named_local_by_everything() {
        let r = Runner::from_env(&env(&[("GITHUB_RUN_ID", "")]));
        assert_eq!(r.run_name(), "local");
        assert_eq!(r.run_url(), None);
        assert_eq!(r.actor(), "(terminal)");
        assert_eq!(r.attempt, "1");
    }

    #[test]
    fn a_workflow_run_is_named_by_its_repository_run_and_attempt() {
        let r = Runner::from_env(&env(&[
            ("GITHUB_REPOSITORY", "contoso/payments"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_SERVER_URL", "https://ghe.contoso.test/"),
            ("GITHUB_ACTOR", "octocat"),
        ]));
        assert_eq!(r.run_name(), "contoso/payments#42.2");
        assert_eq!(
            r.run_url().as_deref(),
            Some("https://ghe.contoso.test/contoso/payments/actions/runs/42")
        );
        assert_eq!(r.actor(), "octocat");
    }
}
