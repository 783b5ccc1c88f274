//! gh (GitHub's CLI, Debian's package), a client nobody here wrote, reads
//! back what expedite writes: the incident issue and its comments, the
//! cherry-pick draft pull request, deployments and refs. gh treats any host
//! but github.com as GitHub Enterprise Server, so it reaches the sandbox's
//! `github.test` at `/api/v3/…` (REST) and `/api/graphql` (GraphQL, which
//! `issue`/`pr` `view`/`list` use), through the sandbox's HTTPS proxy with
//! only the variables `Settings::client_env` prints. Everything gh prints
//! is checked against what the sandbox's own REST API holds.
//!
//! Skips when gh is missing, unless `EXPEDITE_REQUIRE_GH=1` (CI), where
//! that is a failure.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const O: &str = "contoso";
const R: &str = "payments";
const PICK: &str = "expedite/cherry-pick/hotfix-1.2.3";

fn gh_version() -> Option<String> {
    let out = std::process::Command::new("gh")
        .arg("--version")
        .env("GH_NO_UPDATE_NOTIFIER", "1")
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args([
            "-c",
            "user.name=Expedite",
            "-c",
            "user.email=expedite@contoso.test",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `contoso/payments`: main is c1 - c2; the pick branch is c1 and the
/// hotfix (two commits). Returns (main's head, the pick branch's head).
fn seed(env: &Env) -> (String, String) {
    let bare = env.sb.github_create_repo(O, R, "main").unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().join("seed");
    std::fs::create_dir_all(&w).unwrap();
    sh(&w, &["init", "-q", "-b", "main"]);
    std::fs::write(w.join("app.cfg"), "timeout = 30\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "c1"]);
    sh(&w, &["checkout", "-q", "-b", PICK]);
    std::fs::write(w.join("app.cfg"), "timeout = 30\nretries = 3\n").unwrap();
    sh(
        &w,
        &[
            "commit",
            "-q",
            "-am",
            "fix: retry payments",
            "-m",
            "Hotfix 1.2.3.",
        ],
    );
    std::fs::write(w.join("NOTES.md"), "hotfix\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "docs: hotfix notes"]);
    let pick_head = sh(&w, &["rev-parse", "HEAD"]);
    sh(&w, &["checkout", "-q", "main"]);
    std::fs::write(w.join("README.md"), "payments\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "c2"]);
    let main_head = sh(&w, &["rev-parse", "HEAD"]);
    sh(&w, &["push", "-q", bare.to_str().unwrap(), "main", PICK]);
    (main_head, pick_head)
}

/// The sandbox's REST API on `api.github.test`, as expedite calls it.
async fn rest(env: &Env, auth: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut rb = env
        .client
        .request(
            method.parse().unwrap(),
            format!("https://api.github.test{path}"),
        )
        .header("authorization", format!("token {auth}"))
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "expedite-test");
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

struct Gh<'a> {
    env: &'a Env,
    home: &'a Path,
    token: String,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Gh<'_> {
    /// Runs gh with a clean environment: the proxy and CA variables, the
    /// Enterprise host and token, a throwaway config directory.
    async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new("gh");
        cmd.args(args)
            .current_dir(self.home)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .envs(self.env.settings.client_env())
            .env("GH_HOST", "github.test")
            .env("GH_REPO", format!("github.test/{O}/{R}"))
            .env("GH_ENTERPRISE_TOKEN", &self.token)
            .env("GH_CONFIG_DIR", self.home.join("gh-config"))
            .env("GH_PROMPT_DISABLED", "1")
            .env("GH_NO_UPDATE_NOTIFIER", "1")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("gh {args:?} took over 60 s"))
            .unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert!(
            r.ok,
            "gh {args:?} failed\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("gh {args:?}: {e}: {out}"))
    }
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gh_reads_the_incident_issue_the_pick_pr_and_deployments() {
    let Some(version) = gh_version() else {
        assert!(
            std::env::var("EXPEDITE_REQUIRE_GH").as_deref() != Ok("1"),
            "EXPEDITE_REQUIRE_GH=1 but gh is not installed (apt-get install gh)"
        );
        eprintln!("skipped: no gh");
        return;
    };
    let started = Instant::now();
    let env = start().await;
    let token = env.sb.github_token();

    let (main_head, pick_head) = seed(&env);

    // What expedite writes: the incident issue (labelled, two comments, the
    // second by the App's bot), the draft pick PR, a deployment.
    let issue = rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/issues"),
        Some(json!({"title": "Hotfix 1.2.3 rolled back in production",
                    "body": "The canary **tripped** at 5 %.\n\nRolled back to 1.2.2.",
                    "labels": ["incident", "expedite"]})),
    )
    .await;
    assert_eq!(issue["number"], 1);
    rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/issues/1/comments"),
        Some(json!({"body": "Error rate 7.9 % against 0.4 % (baseline)."})),
    )
    .await;
    let jwt = env.sb.github_app_jwt(0, 300).unwrap();
    let inst = env.sb.github_installation_id(O).unwrap();
    let minted = env
        .client
        .post(format!(
            "https://api.github.test/app/installations/{inst}/access_tokens"
        ))
        .bearer_auth(&jwt)
        .header("user-agent", "expedite-test")
        .json(&json!({"permissions": {"issues": "write"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 201);
    let issues_only: Value = minted.json().await.unwrap();
    let issues_only = issues_only["token"].as_str().unwrap().to_owned();
    rest(
        &env,
        &issues_only,
        "POST",
        &format!("/repos/{O}/{R}/issues/1/comments"),
        Some(json!({"body": "Rollback finished: production serves 1.2.2."})),
    )
    .await;
    let pr = rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/pulls"),
        Some(
            json!({"title": "Cherry-pick hotfix 1.2.3 onto main", "head": PICK, "base": "main",
                    "body": "Carries the hotfix to main.\n\nConflicts: none.", "draft": true}),
        ),
    )
    .await;
    assert_eq!(pr["number"], 2);
    rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/issues/2/labels"),
        Some(json!({"labels": ["cherry-pick"]})),
    )
    .await;
    let dep = rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/deployments"),
        Some(
            json!({"ref": "main", "environment": "production", "description": "hotfix 1.2.3",
                    "auto_merge": false, "required_contexts": []}),
        ),
    )
    .await;
    let dep_id = dep["id"].as_u64().unwrap();
    rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/deployments/{dep_id}/statuses"),
        Some(json!({"state": "failure", "description": "canary tripped"})),
    )
    .await;

    let home = tempfile::tempdir().unwrap();
    let gh = Gh {
        env: &env,
        home: home.path(),
        token: token.clone(),
    };
    let log_start = env.sb.request_log().len();

    // ---- gh issue view: the issue and every comment, as REST holds them.
    let rest_comments = rest(
        &env,
        &token,
        "GET",
        &format!("/repos/{O}/{R}/issues/1/comments"),
        None,
    )
    .await;
    let v = gh
        .json(&[
            "issue",
            "view",
            "1",
            "--json",
            "number,title,body,state,closed,labels,comments,author,url,createdAt,id",
        ])
        .await;
    assert_eq!(v["number"], 1);
    assert_eq!(v["title"], issue["title"]);
    assert_eq!(v["body"], issue["body"]);
    assert_eq!(v["state"], "OPEN");
    assert_eq!(v["closed"], false);
    assert_eq!(v["url"], issue["html_url"]);
    assert_eq!(v["id"], issue["node_id"]);
    assert_eq!(v["createdAt"], issue["created_at"]);
    assert_eq!(v["author"]["login"], "sandbox-user");
    assert_eq!(strs(&v["labels"], "name"), ["incident", "expedite"]);
    assert_eq!(strs(&v["comments"], "body"), strs(&rest_comments, "body"));
    let comments = v["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    for (g, r) in comments.iter().zip(rest_comments.as_array().unwrap()) {
        assert_eq!(g["id"], r["node_id"]);
        assert_eq!(g["url"], r["html_url"]);
        assert_eq!(g["createdAt"], r["created_at"]);
    }
    // GraphQL spells the App's bot without `[bot]` (REST: `expedite-sandbox[bot]`).
    assert_eq!(rest_comments[1]["user"]["login"], "expedite-sandbox[bot]");
    assert_eq!(comments[1]["author"]["login"], "expedite-sandbox");

    let plain = gh.ok(&["issue", "view", "1"]).await;
    for line in [
        "title:\tHotfix 1.2.3 rolled back in production",
        "state:\tOPEN",
        "labels:\tincident, expedite",
        "comments:\t2",
        "number:\t1",
        "The canary **tripped** at 5 %.",
    ] {
        assert!(plain.contains(line), "{line:?} not in:\n{plain}");
    }
    let with_comments = gh.ok(&["issue", "view", "1", "--comments"]).await;
    for c in rest_comments.as_array().unwrap() {
        assert!(
            with_comments.contains(c["body"].as_str().unwrap()),
            "{with_comments}"
        );
    }

    // ---- gh issue list: the repository's issues (not the PR), and by label (search).
    let plain = gh.ok(&["issue", "list"]).await;
    assert!(
        plain.starts_with("1\tOPEN\tHotfix 1.2.3 rolled back in production\tincident, expedite\t"),
        "{plain}"
    );
    assert_eq!(plain.lines().count(), 1, "{plain}");
    let v = gh
        .json(&["issue", "list", "--json", "number,title,labels,state"])
        .await;
    assert_eq!(strs(&v, "title"), [issue["title"].as_str().unwrap()]);
    let v = gh
        .json(&["issue", "list", "--label", "incident", "--json", "number"])
        .await;
    assert_eq!(v, json!([{"number": 1}]));
    let v = gh
        .json(&[
            "issue",
            "list",
            "--label",
            "cherry-pick",
            "--json",
            "number",
        ])
        .await;
    assert_eq!(v, json!([]));
    let v = gh
        .json(&["issue", "list", "--state", "closed", "--json", "number"])
        .await;
    assert_eq!(v, json!([]));

    // ---- gh pr view: the draft pick PR, as REST holds it.
    let rest_pr = rest(
        &env,
        &token,
        "GET",
        &format!("/repos/{O}/{R}/pulls/2"),
        None,
    )
    .await;
    let v = gh
        .json(&[
            "pr",
            "view",
            "2",
            "--json",
            "number,title,body,state,isDraft,baseRefName,headRefName,headRefOid,labels,url,id,\
             additions,deletions,changedFiles,commits,files,mergeable,author,isCrossRepository",
        ])
        .await;
    assert_eq!(v["number"], 2);
    assert_eq!(v["title"], rest_pr["title"]);
    assert_eq!(v["body"], rest_pr["body"]);
    assert_eq!(v["state"], "OPEN");
    assert_eq!(v["isDraft"], true);
    assert_eq!(v["baseRefName"], "main");
    assert_eq!(v["headRefName"], PICK);
    assert_eq!(v["headRefOid"], pick_head.as_str());
    assert_eq!(v["headRefOid"], rest_pr["head"]["sha"]);
    assert_eq!(v["url"], rest_pr["html_url"]);
    assert_eq!(v["id"], rest_pr["node_id"]);
    assert_eq!(v["additions"], rest_pr["additions"]);
    assert_eq!(v["deletions"], rest_pr["deletions"]);
    assert_eq!(v["changedFiles"], rest_pr["changed_files"]);
    assert_eq!(v["mergeable"], "MERGEABLE");
    assert_eq!(v["isCrossRepository"], false);
    assert_eq!(strs(&v["labels"], "name"), ["cherry-pick"]);
    assert_eq!(
        strs(&v["commits"], "messageHeadline"),
        ["fix: retry payments", "docs: hotfix notes"]
    );
    assert_eq!(v["commits"][0]["messageBody"], "Hotfix 1.2.3.");
    assert_eq!(v["commits"][1]["oid"], pick_head.as_str());
    assert_eq!(strs(&v["files"], "path"), ["NOTES.md", "app.cfg"]);
    assert_eq!(rest_pr["commits"], 2);

    let plain = gh.ok(&["pr", "view", "2"]).await;
    for line in [
        "title:\tCherry-pick hotfix 1.2.3 onto main",
        "state:\tDRAFT",
        "labels:\tcherry-pick",
        "number:\t2",
        "url:\thttps://github.test/contoso/payments/pull/2",
        "Carries the hotfix to main.",
    ] {
        assert!(plain.contains(line), "{line:?} not in:\n{plain}");
    }

    // ---- gh pr list: the repository's PRs, drafts (search), by head branch.
    let plain = gh.ok(&["pr", "list"]).await;
    assert!(
        plain.starts_with(&format!(
            "2\tCherry-pick hotfix 1.2.3 onto main\t{PICK}\tDRAFT\t"
        )),
        "{plain}"
    );
    let v = gh
        .json(&[
            "pr",
            "list",
            "--json",
            "number,title,isDraft,headRefName,baseRefName",
        ])
        .await;
    assert_eq!(
        v,
        json!([{"number": 2, "title": rest_pr["title"], "isDraft": true,
                "headRefName": PICK, "baseRefName": "main"}])
    );
    let v = gh
        .json(&["pr", "list", "--draft", "--json", "number"])
        .await;
    assert_eq!(v, json!([{"number": 2}]));
    let v = gh
        .json(&["pr", "list", "--head", PICK, "--json", "number"])
        .await;
    assert_eq!(v, json!([{"number": 2}]));
    let v = gh
        .json(&["pr", "list", "--state", "closed", "--json", "number"])
        .await;
    assert_eq!(v, json!([]));
    // The PR diff (REST, diff media type): the hotfix, from the merge base.
    let diff = gh.ok(&["pr", "diff", "2"]).await;
    assert!(diff.contains("diff --git a/app.cfg b/app.cfg"), "{diff}");
    assert!(diff.contains("+retries = 3"), "{diff}");
    assert!(
        !diff.contains("README.md"),
        "main's own change is not the PR's: {diff}"
    );

    // ---- gh api (REST under /api/v3): deployments, statuses, refs.
    let rest_deps = rest(
        &env,
        &token,
        "GET",
        &format!("/repos/{O}/{R}/deployments"),
        None,
    )
    .await;
    let v = gh.json(&["api", "repos/{owner}/{repo}/deployments"]).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    for k in [
        "id",
        "sha",
        "ref",
        "environment",
        "description",
        "task",
        "node_id",
        "created_at",
    ] {
        assert_eq!(v[0][k], rest_deps[0][k], "{k}");
    }
    assert_eq!(v[0]["sha"], main_head.as_str());
    // Answers link to the layout they were asked on.
    assert_eq!(
        v[0]["url"],
        format!("https://github.test/api/v3/repos/{O}/{R}/deployments/{dep_id}")
    );
    let v = gh
        .json(&[
            "api",
            &format!("repos/{{owner}}/{{repo}}/deployments/{dep_id}/statuses"),
        ])
        .await;
    assert_eq!(strs(&v, "state"), ["failure"]);
    let v = gh.json(&["api", "repos/{owner}/{repo}/git/refs"]).await;
    assert_eq!(
        strs(&v, "ref"),
        [format!("refs/heads/{PICK}"), "refs/heads/main".to_owned()]
    );
    let v = gh
        .json(&["api", "repos/{owner}/{repo}/git/refs/heads/main"])
        .await;
    assert_eq!(v["object"]["sha"], main_head.as_str());
    let v = gh
        .json(&[
            "api",
            "repos/{owner}/{repo}/git/matching-refs/heads/expedite/",
        ])
        .await;
    assert_eq!(strs(&v, "ref"), [format!("refs/heads/{PICK}")]);

    // ---- gh api graphql: the same issue, by hand.
    let v = gh
        .json(&[
            "api", "graphql", "-F", "n=1", "-f",
            "query=query($n: Int!) { repository(owner: \"contoso\", name: \"payments\") { issue(number: $n) { title comments(last: 1) { totalCount nodes { body author { __typename login } } } } } }",
        ])
        .await;
    let i = &v["data"]["repository"]["issue"];
    assert_eq!(i["title"], issue["title"]);
    assert_eq!(i["comments"]["totalCount"], 2);
    assert_eq!(
        i["comments"]["nodes"][0]["body"],
        "Rollback finished: production serves 1.2.2."
    );
    assert_eq!(
        i["comments"]["nodes"][0]["author"],
        json!({"__typename": "Bot", "login": "expedite-sandbox"})
    );

    // ---- What the sandbox does not have is an error naming it, never an
    // empty answer: a missing issue, a field outside the subset.
    let r = gh.run(&["issue", "view", "99"]).await;
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("Could not resolve to an issue or pull request with the number of 99"),
        "{}",
        r.stderr
    );
    let r = gh.run(&["release", "list"]).await;
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("Field 'releases' doesn't exist on type 'Repository'"),
        "{}",
        r.stderr
    );

    // ---- An installation token without pull request access reads the
    // issue but not the PR (GitHub's FORBIDDEN, not an empty PR).
    let narrow = Gh {
        env: &env,
        home: home.path(),
        token: issues_only,
    };
    let v = narrow
        .json(&["issue", "view", "1", "--json", "title"])
        .await;
    assert_eq!(v["title"], issue["title"]);
    let r = narrow.run(&["pr", "view", "2", "--json", "title"]).await;
    assert!(!r.ok);
    assert!(
        r.stderr.contains("Resource not accessible by integration"),
        "{}",
        r.stderr
    );

    // Every request gh made went to github.test's API layout, none failed
    // for want of a route.
    let log = env.sb.request_log();
    let gh_reqs: Vec<_> = log[log_start..]
        .iter()
        .filter(|r| {
            r.user_agent
                .as_deref()
                .is_some_and(|u| u.starts_with("GitHub CLI"))
        })
        .collect();
    assert!(gh_reqs.len() >= 20, "{gh_reqs:?}");
    for r in &gh_reqs {
        assert_eq!(r.host, "github.test", "{r:?}");
        assert!(
            r.path.starts_with("/api/graphql") || r.path.starts_with("/api/v3/"),
            "{r:?}"
        );
        assert_eq!(r.target, "github", "{r:?}");
    }
    assert!(gh_reqs.iter().any(|r| r.path == "/api/graphql"));
    eprintln!(
        "{version}: {} gh requests, {:.1} s",
        gh_reqs.len(),
        started.elapsed().as_secs_f64()
    );
}

/// POSTs a GraphQL request; (status, body).
async fn graphql(env: &Env, url: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut rb = env
        .client
        .post(url)
        .header("user-agent", "expedite-test")
        .json(&body);
    if let Some(a) = auth {
        rb = rb.header("authorization", format!("bearer {a}"));
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The GraphQL endpoint without gh: GitHub's error shapes (a document
/// naming something outside the schema gets an error naming it and no
/// data), pagination, introspection, both layouts; and REST under
/// `/api/v3` linking to that layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_answers_in_githubs_shapes_on_both_layouts() {
    let env = start().await;
    let token = env.sb.github_token();
    seed(&env);
    for i in 1..=3 {
        rest(
            &env,
            &token,
            "POST",
            &format!("/repos/{O}/{R}/issues"),
            Some(json!({"title": format!("incident {i}"), "labels": ["incident"]})),
        )
        .await;
    }
    let pr = rest(
        &env,
        &token,
        "POST",
        &format!("/repos/{O}/{R}/pulls"),
        Some(json!({"title": "pick", "head": PICK, "base": "main", "draft": true})),
    )
    .await;
    let ghes = "https://github.test/api/graphql";
    let dotcom = "https://api.github.test/graphql";
    let q = |query: &str| json!({"query": query});

    // Credentials as REST checks them.
    let (st, v) = graphql(&env, ghes, None, q("{ viewer { login } }")).await;
    assert_eq!(st, 401);
    assert_eq!(
        v["message"],
        "This endpoint requires you to be authenticated."
    );
    let (st, v) = graphql(&env, ghes, Some("ghp_nope"), q("{ viewer { login } }")).await;
    assert_eq!((st, v["message"].as_str()), (401, Some("Bad credentials")));
    let (st, v) = graphql(&env, dotcom, Some(&token), q("{ viewer { login } }")).await;
    assert_eq!(
        (st, &v),
        (200, &json!({"data": {"viewer": {"login": "sandbox-user"}}}))
    );

    // Syntax and validation errors: 200, `errors`, no `data`.
    let (st, v) = graphql(&env, ghes, Some(&token), q("{ viewer { login }")).await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"errors": [{"message": "Unexpected end of document", "locations": [{"line": 1, "column": 19}]}]})
    );
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("query Q { repository(owner: \"contoso\", name: \"payments\") { issue(number: 1) { title isPinned } } }"),
    )
    .await;
    assert!(v.get("data").is_none(), "{v}");
    let e = &v["errors"][0];
    assert_eq!(e["extensions"]["code"], "undefinedField");
    assert_eq!(e["extensions"]["typeName"], "Issue");
    assert_eq!(e["extensions"]["fieldName"], "isPinned");
    assert_eq!(
        e["path"],
        json!(["query Q", "repository", "issue", "isPinned"])
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Field 'isPinned' doesn't exist on type 'Issue'"),
        "{e}"
    );
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("{ repository(owner: \"contoso\") { issues(first: 1, labels: [\"x\"]) { totalCount } } }"),
    )
    .await;
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["missingRequiredArguments", "argumentNotAccepted"],
        "{v}"
    );
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        json!({"query": "query($n: Int!) { repository(owner: \"contoso\", name: \"payments\") { issue(number: $n) { title } } }"}),
    )
    .await;
    assert_eq!(
        v["errors"][0]["message"],
        "Variable $n of type Int! was provided invalid value"
    );
    let (_, v) = graphql(&env, ghes, Some(&token), q("mutation { addComment { x } }")).await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Schema is not configured for mutations")
    );

    // Execution errors sit on their path beside the data.
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("{ repository(owner: \"contoso\", name: \"nope\") { id } }"),
    )
    .await;
    assert_eq!(v["data"], json!({"repository": null}));
    assert_eq!(v["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(v["errors"][0]["path"], json!(["repository"]));
    assert_eq!(
        v["errors"][0]["message"],
        "Could not resolve to a Repository with the name 'contoso/nope'."
    );

    // Unions, fragments, aliases, __typename; ids are REST's node_ids.
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        json!({"query": "fragment t on Issue { title } query($o: String!) { repository(owner: $o, name: \"payments\") { a: issueOrPullRequest(number: 1) { __typename ...t } b: issueOrPullRequest(number: 4) { __typename ... on PullRequest { isDraft id headRefName } } } }", "variables": {"o": "contoso"}}),
    )
    .await;
    assert_eq!(
        v,
        json!({"data": {"repository": {
            "a": {"__typename": "Issue", "title": "incident 1"},
            "b": {"__typename": "PullRequest", "isDraft": true, "id": pr["node_id"], "headRefName": PICK},
        }}})
    );
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        json!({"query": "query($id: ID!) { node(id: $id) { ... on PullRequest { number } } }", "variables": {"id": pr["node_id"]}}),
    )
    .await;
    assert_eq!(v, json!({"data": {"node": {"number": 4}}}));

    // Pagination: first/after, at most 100, counts without items.
    let page = |after: Option<&str>| {
        let after = after
            .map(|a| format!(", after: \"{a}\""))
            .unwrap_or_default();
        q(&format!(
            "{{ repository(owner: \"contoso\", name: \"payments\") {{ issues(first: 2{after}, orderBy: {{field: CREATED_AT, direction: ASC}}) {{ totalCount nodes {{ number }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
        ))
    };
    let (_, v) = graphql(&env, ghes, Some(&token), page(None)).await;
    let issues = &v["data"]["repository"]["issues"];
    assert_eq!(issues["totalCount"], 3);
    assert_eq!(issues["nodes"], json!([{"number": 1}, {"number": 2}]));
    assert_eq!(issues["pageInfo"]["hasNextPage"], true);
    let cursor = issues["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let (_, v) = graphql(&env, ghes, Some(&token), page(Some(&cursor))).await;
    let issues = &v["data"]["repository"]["issues"];
    assert_eq!(issues["nodes"], json!([{"number": 3}]));
    assert_eq!(issues["pageInfo"]["hasNextPage"], false);
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("{ repository(owner: \"contoso\", name: \"payments\") { issues { nodes { number } } } }"),
    )
    .await;
    assert_eq!(
        v["errors"][0]["message"],
        "You must provide a `first` or `last` value to properly paginate the `issues` connection."
    );
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("{ repository(owner: \"contoso\", name: \"payments\") { issues(first: 101) { totalCount } } }"),
    )
    .await;
    assert_eq!(
        v["errors"][0]["message"],
        "Requesting 101 records on the `issues` connection exceeds the `first` limit of 100 records."
    );

    // Introspection describes the sandbox's schema (what gh's feature
    // detection asks on Enterprise hosts).
    let (_, v) = graphql(
        &env,
        ghes,
        Some(&token),
        q("{ __type(name: \"Issue\") { kind fields(includeDeprecated: true) { name } } none: __type(name: \"Nope\") { name } }"),
    )
    .await;
    let fields: Vec<&str> = v["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"stateReason") && fields.contains(&"comments"),
        "{fields:?}"
    );
    assert!(!fields.contains(&"isPinned"));
    assert_eq!(v["data"]["__type"]["kind"], "OBJECT");
    assert_eq!(v["data"]["none"], Value::Null);

    // REST in the Enterprise layout links to it; unknown API paths 404.
    let r = env
        .client
        .get(format!(
            "https://github.test/api/v3/repos/{O}/{R}/issues?per_page=1"
        ))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!(
            "<https://github.test/api/v3/repos/{O}/{R}/issues?per_page=1&page=2>"
        )),
        "{link}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v[0]["url"],
        format!("https://github.test/api/v3/repos/{O}/{R}/issues/4")
    );
    let r = env
        .client
        .get("https://github.test/api/v4/user")
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "Not Found");
}
