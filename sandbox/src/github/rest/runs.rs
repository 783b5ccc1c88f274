//! `GET /repos/{o}/{r}/actions/runs/{run_id}`: workflow runs as the control
//! API set them, in the `workflow-run` shape.

use serde_json::{Value, json};

use super::{Ctx, actor_json, commit_info, fnv, iso, node_id, repo_json};
use crate::github::{Actor, Repo, WorkflowRun};

pub(super) fn workflow_run_json(ctx: &Ctx<'_>, r: &Repo, run: &WorkflowRun) -> Value {
    let api = format!("{}/repos/{}/{}", ctx.api, r.owner, r.name);
    let web = format!("{}/{}/{}", ctx.web, r.owner, r.name);
    let id = run.id;
    let suite = fnv(&format!("check-suite:{}/{}:{id}", r.owner, r.name));
    let workflow_id = fnv(&format!("workflow:{}/{}:{}", r.owner, r.name, run.path));
    let head_commit = commit_info(&r.path, &run.head_sha).map(|c| {
        json!({
            "id": c.sha,
            "tree_id": c.tree,
            "message": c.message.trim_end_matches('\n'),
            "timestamp": c.committer.date,
            "author": {"name": c.author.name, "email": c.author.email},
            "committer": {"name": c.committer.name, "email": c.committer.email},
        })
    });
    let repository = repo_json(ctx, r, None);
    let actor = actor_json(ctx, &Actor::personal());
    json!({
        "id": id,
        "name": run.name,
        "node_id": node_id("WorkflowRun", id),
        "check_suite_id": suite,
        "check_suite_node_id": node_id("CheckSuite", suite),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": run.path,
        "display_title": run.display_title,
        "run_number": run.run_number,
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "workflow_id": workflow_id,
        "url": format!("{api}/actions/runs/{id}"),
        "html_url": format!("{web}/actions/runs/{id}"),
        "pull_requests": [],
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "actor": actor,
        "triggering_actor": actor,
        "run_attempt": run.run_attempt,
        "referenced_workflows": [],
        "run_started_at": iso(run.run_started_at),
        "jobs_url": format!("{api}/actions/runs/{id}/jobs"),
        "logs_url": format!("{api}/actions/runs/{id}/logs"),
        "check_suite_url": format!("{api}/check-suites/{suite}"),
        "artifacts_url": format!("{api}/actions/runs/{id}/artifacts"),
        "cancel_url": format!("{api}/actions/runs/{id}/cancel"),
        "rerun_url": format!("{api}/actions/runs/{id}/rerun"),
        "previous_attempt_url": (run.run_attempt > 1)
            .then(|| format!("{api}/actions/runs/{id}/attempts/{}", run.run_attempt - 1)),
        "workflow_url": format!("{api}/actions/workflows/{workflow_id}"),
        "head_commit": head_commit,
        "repository": repository,
        "head_repository": repository,
        "head_repository_id": r.id,
    })
}
