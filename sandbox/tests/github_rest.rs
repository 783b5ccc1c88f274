//! The sandbox GitHub REST subset (`api.github.test`): App JWT auth and
//! installation tokens, refs, tags, commits, compare, branches, pulls,
//! issues, deployments, and GitHub's error shapes.
#![cfg(test)]

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

const API: &str = "https://api.github.test";
const O: &str = "contoso";
const R: &str = "payments";

struct Gh<'a> {
    env: &'a Env,
    auth: Option<String>,
}

impl Gh<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{API}{path}");
        let mut rb = self
            .env
            .client
            .request(method.parse().unwrap(), url)
            .header("user-agent", "expedite-test")
            .header("accept", "application/vnd.github+json");
        if let Some(a) = &self.auth {
            rb = rb.header("authorization", a);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, p: &str) -> (u16, Value) {
        self.call("GET", p, None).await
    }
    async fn post(&self, p: &str, b: Value) -> (u16, Value) {
        self.call("POST", p, Some(b)).await
    }
    async fn patch(&self, p: &str, b: Value) -> (u16, Value) {
        self.call("PATCH", p, Some(b)).await
    }
}

fn gh<'a>(env: &'a Env, auth: &str) -> Gh<'a> {
    Gh {
        env,
        auth: Some(auth.to_owned()),
    }
}

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(["-c", "user.name=Test", "-c", "user.email=t@example.test"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// main: c1 - c2 ; feature: c2 - f1 ; side: c1 - s1 (diverged from main)
struct Fixture {
    c1: String,
    c2: String,
    f1: String,
    s1: String,
}

fn seed(env: &Env, work: &Path) -> Fixture {
    let bare = env.sb.github_create_repo(O, R, "main").unwrap();
    let w = work.join("seed");
    std::fs::create_dir_all(&w).unwrap();
    sh(&w, &["init", "-q", "-b", "main"]);
    std::fs::write(w.join("a.txt"), "one\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "c1"]);
    let c1 = sh(&w, &["rev-parse", "HEAD"]);
    std::fs::write(w.join("a.txt"), "one\ntwo\n").unwrap();
    sh(&w, &["commit", "-q", "-am", "c2"]);
    let c2 = sh(&w, &["rev-parse", "HEAD"]);
    sh(&w, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(w.join("f.txt"), "feature\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "f1\n\nbody"]);
    let f1 = sh(&w, &["rev-parse", "HEAD"]);
    sh(&w, &["checkout", "-q", "-b", "side", &c1]);
    std::fs::write(w.join("s.txt"), "side\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "s1"]);
    let s1 = sh(&w, &["rev-parse", "HEAD"]);
    sh(
        &w,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "main",
            "feature",
            "side",
        ],
    );
    Fixture { c1, c2, f1, s1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_jwt_and_installation_tokens() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    seed(&env, work.path());
    let sb = &env.sb;
    let jwt = sb.github_app_jwt(-60, 600).unwrap();
    let app = gh(&env, &format!("Bearer {jwt}"));
    let (s, v) = app.get("/app").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], 4242);
    assert_eq!(v["slug"], "expedite-sandbox");

    let sign = |pem: &str, iss: &str, iat: i64, exp: i64| {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let now = chrono::Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"iat": now + iat, "exp": now + exp, "iss": iss}),
            &key,
        )
        .unwrap()
    };
    let key = sb.github_app_private_key_pem();
    let wrong = expedite_sandbox::github::WRONG_PRIVATE_KEY_PEM;
    let cases = [
        (
            sign(wrong, "4242", -60, 540),
            "A JSON web token could not be decoded",
        ),
        (sign(key, "9999", -60, 540), "Integration not found"),
        (
            sign(key, "4242", -1200, -600),
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            sign(key, "4242", 0, 3600),
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            sign(key, "4242", 600, 900),
            "'Issued at' claim ('iat') is in the future",
        ),
        (
            "eyJnot.a.jwt".to_owned(),
            "A JSON web token could not be decoded",
        ),
    ];
    for (token, message) in cases {
        let (s, v) = gh(&env, &format!("Bearer {token}")).get("/app").await;
        assert_eq!((s, v["message"].as_str().unwrap()), (401, message), "{v}");
        assert!(
            v["documentation_url"]
                .as_str()
                .unwrap()
                .starts_with("https://docs.github.com/")
        );
    }
    // iat that is not an integer.
    let k = jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
    let bad_iat = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"iat": "now", "exp": chrono::Utc::now().timestamp() + 300, "iss": 4242}),
        &k,
    )
    .unwrap();
    let (s, v) = gh(&env, &format!("Bearer {bad_iat}")).get("/app").await;
    assert_eq!(s, 401);
    assert_eq!(
        v["message"],
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
    );
    // A personal token is not a JWT.
    let (s, _) = gh(&env, &format!("token {}", sb.github_token()))
        .get("/app")
        .await;
    assert_eq!(s, 401);

    // Installation lookup and token minting.
    let (s, inst) = app.get("/repos/contoso/payments/installation").await;
    assert_eq!(s, 200, "{inst}");
    let id = inst["id"].as_u64().unwrap();
    assert_eq!(Some(id), sb.github_installation_id(O));
    assert_eq!(app.get("/repos/contoso/nope/installation").await.0, 404);
    let (s, tok) = app
        .post(&format!("/app/installations/{id}/access_tokens"), json!({}))
        .await;
    assert_eq!(s, 201, "{tok}");
    let token = tok["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghs_"));
    assert!(tok["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(tok["permissions"]["workflows"], "write");
    assert_eq!(tok["repository_selection"], "all");
    assert_eq!(
        app.post("/app/installations/1/access_tokens", json!({}))
            .await
            .0,
        404
    );
    // Narrowed.
    let (s, narrow) = app
        .post(
            &format!("/app/installations/{id}/access_tokens"),
            json!({"permissions": {"contents": "read"}, "repositories": ["payments"]}),
        )
        .await;
    assert_eq!(s, 201, "{narrow}");
    assert_eq!(narrow["repository_selection"], "selected");
    assert_eq!(narrow["repositories"][0]["name"], "payments");
    let ro = gh(
        &env,
        &format!("token {}", narrow["token"].as_str().unwrap()),
    );
    assert_eq!(ro.get("/repos/contoso/payments").await.0, 200);
    let (s, v) = ro
        .post("/repos/contoso/payments/issues", json!({"title": "x"}))
        .await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (403, "Resource not accessible by integration")
    );
    // Withheld permissions cannot be requested.
    sb.github_set_installation_permissions(O, &[("contents", "write"), ("metadata", "read")])
        .unwrap();
    let (s, v) = app
        .post(
            &format!("/app/installations/{id}/access_tokens"),
            json!({"permissions": {"workflows": "write"}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = app
        .post(&format!("/app/installations/{id}/access_tokens"), json!({}))
        .await;
    assert_eq!(s, 201);
    assert!(v["permissions"].get("workflows").is_none(), "{v}");

    // Token use: Bearer and `token` both work; revoked tokens stop working.
    let user = gh(&env, &format!("Bearer {token}"));
    let (s, repo) = user.get("/repos/contoso/payments").await;
    assert_eq!(s, 200);
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["full_name"], "contoso/payments");
    assert_eq!(repo["private"], true);
    assert_eq!(
        user.call("DELETE", "/installation/token", None).await.0,
        204
    );
    let (s, v) = user.get("/repos/contoso/payments").await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (401, "Bad credentials")
    );
    // No credentials: private repositories are invisible.
    let anon = Gh {
        env: &env,
        auth: None,
    };
    assert_eq!(anon.get("/repos/contoso/payments").await.0, 404);
    // An App JWT is not a repository credential.
    assert_eq!(app.get("/repos/contoso/payments").await.0, 403);

    let log = sb.request_log();
    assert!(log.iter().any(|r| r.host == "api.github.test"
        && r.target == "github"
        && r.path == "/app"
        && r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_tags_commits_compare_and_branches() {
    let env = start().await;
    let empty = env.sb.github_create_repo(O, "empty", "main").unwrap();
    assert!(empty.is_dir());
    let work = tempfile::tempdir().unwrap();
    let fx = seed(&env, work.path());
    let g = gh(&env, &format!("token {}", env.sb.github_token()));
    let base = "/repos/contoso/payments";

    assert_eq!(
        g.get("/repos/contoso/empty/git/ref/heads/main").await.0,
        409
    );
    let (s, v) = g.get(&format!("{base}/git/ref/heads/main")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ref"], "refs/heads/main");
    assert_eq!(v["object"]["sha"], fx.c2.as_str());
    assert_eq!(v["object"]["type"], "commit");
    assert_eq!(g.get(&format!("{base}/git/ref/heads%2Fmain")).await.0, 200);
    let (s, v) = g.get(&format!("{base}/git/ref/heads/nope")).await;
    assert_eq!((s, v["message"].as_str().unwrap()), (404, "Not Found"));
    let (_, v) = g.get(&format!("{base}/git/matching-refs/heads/")).await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    let (_, v) = g.get(&format!("{base}/git/matching-refs/heads/fea")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);

    // Create, update (FF, non-FF, force), delete.
    let (s, v) = g
        .post(
            &format!("{base}/git/refs"),
            json!({"ref": "refs/heads/release", "sha": fx.c1}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = g
        .post(
            &format!("{base}/git/refs"),
            json!({"ref": "refs/heads/release", "sha": fx.c1}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(v["message"], "Reference already exists");
    assert_eq!(v["errors"][0]["code"], "already_exists");
    let (s, v) = g
        .post(
            &format!("{base}/git/refs"),
            json!({"ref": "heads/x", "sha": fx.c1}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = g
        .post(
            &format!("{base}/git/refs"),
            json!({"ref": "refs/heads/y", "sha": "0123456789012345678901234567890123456789"}),
        )
        .await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (422, "Object does not exist")
    );
    let (s, v) = g
        .patch(
            &format!("{base}/git/refs/heads/release"),
            json!({"sha": fx.f1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"]["sha"], fx.f1.as_str());
    let (s, v) = g
        .patch(
            &format!("{base}/git/refs/heads/release"),
            json!({"sha": fx.s1, "force": false}),
        )
        .await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (422, "Update is not a fast forward")
    );
    let (s, _) = g
        .patch(
            &format!("{base}/git/refs/heads/release"),
            json!({"sha": fx.s1, "force": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        g.call("DELETE", &format!("{base}/git/refs/heads/release"), None)
            .await
            .0,
        204
    );
    let (s, v) = g
        .call("DELETE", &format!("{base}/git/refs/heads/release"), None)
        .await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (422, "Reference does not exist")
    );
    let (s, _) = g
        .patch(
            &format!("{base}/git/refs/heads/release"),
            json!({"sha": fx.c1}),
        )
        .await;
    assert_eq!(s, 422);
    // Protected branches refuse REST updates too.
    env.sb.github_protect_branch(O, R, "feature").unwrap();
    let (s, _) = g
        .patch(
            &format!("{base}/git/refs/heads/feature"),
            json!({"sha": fx.f1}),
        )
        .await;
    assert_eq!(s, 422);

    // Annotated tags.
    let (s, tag) = g
        .post(
            &format!("{base}/git/tags"),
            json!({"tag": "v1.0.0", "message": "release 1", "object": fx.c2, "type": "commit",
                   "tagger": {"name": "Rel", "email": "rel@example.test", "date": "2026-01-02T03:04:05Z"}}),
        )
        .await;
    assert_eq!(s, 201, "{tag}");
    let tag_sha = tag["sha"].as_str().unwrap().to_owned();
    assert_eq!(tag["object"]["sha"], fx.c2.as_str());
    assert_eq!(tag["tagger"]["date"], "2026-01-02T03:04:05Z");
    let (s, v) = g
        .post(
            &format!("{base}/git/refs"),
            json!({"ref": "refs/tags/v1.0.0", "sha": tag_sha}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["object"]["type"], "tag");
    let (s, v) = g.get(&format!("{base}/git/tags/{tag_sha}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["tag"], "v1.0.0");
    assert_eq!(v["message"], "release 1\n");
    assert_eq!(g.get(&format!("{base}/git/tags/{}", fx.c2)).await.0, 404);
    let (s, v) = g
        .post(&format!("{base}/git/tags"), json!({"tag": "v2"}))
        .await;
    assert_eq!(s, 422);
    assert_eq!(v["message"], "Validation Failed");
    let (_, v) = g.get(&format!("{base}/tags")).await;
    assert_eq!(v[0]["name"], "v1.0.0");
    assert_eq!(v[0]["commit"]["sha"], fx.c2.as_str());

    // Commits.
    let (s, v) = g.get(&format!("{base}/commits/feature")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sha"], fx.f1.as_str());
    assert_eq!(v["commit"]["message"], "f1\n\nbody");
    assert_eq!(v["files"][0]["filename"], "f.txt");
    assert_eq!(v["files"][0]["status"], "added");
    assert_eq!(v["stats"]["additions"], 1);
    assert_eq!(v["parents"][0]["sha"], fx.c2.as_str());
    let (s, v) = g.get(&format!("{base}/commits/nope")).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = g.get(&format!("{base}/git/commits/{}", fx.c2)).await;
    assert_eq!(s, 200);
    assert_eq!(v["message"], "c2\n");
    assert_eq!(v["parents"][0]["sha"], fx.c1.as_str());
    assert_eq!(v["verification"]["verified"], false);

    // Compare.
    let cmp = |b: &str, h: &str| format!("{base}/compare/{b}...{h}");
    let (_, v) = g.get(&cmp("main", "feature")).await;
    assert_eq!(
        (
            v["status"].as_str().unwrap(),
            v["ahead_by"].as_u64().unwrap(),
            v["behind_by"].as_u64().unwrap()
        ),
        ("ahead", 1, 0)
    );
    assert_eq!(v["commits"][0]["sha"], fx.f1.as_str());
    assert_eq!(v["files"][0]["filename"], "f.txt");
    let (_, v) = g.get(&cmp("feature", "main")).await;
    assert_eq!(v["status"], "behind");
    let (_, v) = g.get(&cmp("main", "main")).await;
    assert_eq!(v["status"], "identical");
    assert_eq!(v["total_commits"], 0);
    let (_, v) = g.get(&cmp("main", "side")).await;
    assert_eq!(v["status"], "diverged");
    assert_eq!(v["merge_base_commit"]["sha"], fx.c1.as_str());
    let (_, v) = g.get(&cmp(&fx.c1, "contoso:main")).await;
    assert_eq!(v["ahead_by"], 1);
    assert_eq!(g.get(&cmp("main", "nope")).await.0, 404);

    // Branches.
    let (s, v) = g.get(&format!("{base}/branches/main")).await;
    assert_eq!(s, 200);
    assert_eq!(v["protected"], false);
    assert_eq!(v["commit"]["sha"], fx.c2.as_str());
    let (_, v) = g.get(&format!("{base}/branches/feature")).await;
    assert_eq!(v["protected"], true);
    let (s, v) = g.get(&format!("{base}/branches/nope")).await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (404, "Branch not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_issues_and_deployments() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let fx = seed(&env, work.path());
    let g = gh(&env, &format!("Bearer {}", env.sb.github_token()));
    let base = "/repos/contoso/payments";

    // Pull requests.
    let (s, pr) = g
        .post(&format!("{base}/pulls"), json!({"title": "Feature", "head": "feature", "base": "main", "body": "b", "draft": true}))
        .await;
    assert_eq!(s, 201, "{pr}");
    assert_eq!(pr["number"], 1);
    assert_eq!(pr["draft"], true);
    assert_eq!(pr["head"]["sha"], fx.f1.as_str());
    assert_eq!(pr["head"]["label"], "contoso:feature");
    assert_eq!(pr["commits"], 1);
    assert_eq!(pr["mergeable"], true);
    let (s, v) = g
        .post(
            &format!("{base}/pulls"),
            json!({"title": "Again", "head": "contoso:feature", "base": "main"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["message"],
        "A pull request already exists for contoso:feature."
    );
    let (s, v) = g
        .post(
            &format!("{base}/pulls"),
            json!({"title": "None", "head": "main", "base": "feature"}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        v["errors"][0]["message"],
        "No commits between feature and main"
    );
    let (s, v) = g
        .post(
            &format!("{base}/pulls"),
            json!({"title": "x", "head": "nope", "base": "main"}),
        )
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str().unwrap()),
        (422, "head")
    );
    let (_, v) = g
        .get(&format!(
            "{base}/pulls?head=contoso:feature&state=open&base=main"
        ))
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = g.get(&format!("{base}/pulls?head=contoso:side")).await;
    assert!(v.as_array().unwrap().is_empty());
    let (_, v) = g.get(&format!("{base}/pulls?state=closed")).await;
    assert!(v.as_array().unwrap().is_empty());
    let (s, v) = g.get(&format!("{base}/pulls/1")).await;
    assert_eq!((s, v["title"].as_str().unwrap()), (200, "Feature"));
    assert_eq!(g.get(&format!("{base}/pulls/2")).await.0, 404);

    // Issues share the number sequence.
    let (s, issue) = g
        .post(
            &format!("{base}/issues"),
            json!({"title": "Incident", "body": "orders dropped", "labels": ["incident"]}),
        )
        .await;
    assert_eq!(s, 201, "{issue}");
    assert_eq!(issue["number"], 2);
    assert_eq!(issue["labels"][0]["name"], "incident");
    let (s, v) = g
        .post(&format!("{base}/issues"), json!({"body": "no title"}))
        .await;
    assert_eq!(s, 422);
    assert_eq!(v["errors"][0]["code"], "missing_field");
    let (s, v) = g
        .post(
            &format!("{base}/issues/2/labels"),
            json!({"labels": ["sev1", "incident"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (s, v) = g
        .post(
            &format!("{base}/issues/2/assignees"),
            json!({"assignees": ["alice"]}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["assignees"][0]["login"], "alice");
    let (s, c) = g
        .post(
            &format!("{base}/issues/2/comments"),
            json!({"body": "rolling back"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["body"], "rolling back");
    g.post(
        &format!("{base}/issues/1/comments"),
        json!({"body": "on the PR"}),
    )
    .await;
    let (_, v) = g.get(&format!("{base}/issues/2/comments")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = g
        .get(&format!("{base}/issues?labels=incident,sev1&state=open"))
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["comments"], 1);
    let (_, v) = g.get(&format!("{base}/issues")).await;
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "the issues list includes pull requests"
    );
    assert!(v[1]["pull_request"]["url"].is_string());
    let (s, v) = g
        .patch(
            &format!("{base}/issues/2"),
            json!({"state": "closed", "state_reason": "not_planned"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            v["state"].as_str().unwrap(),
            v["state_reason"].as_str().unwrap()
        ),
        ("closed", "not_planned")
    );
    assert!(v["closed_at"].is_string());
    let (s, _) = g
        .patch(&format!("{base}/issues/2"), json!({"state": "shut"}))
        .await;
    assert_eq!(s, 422);
    let (_, v) = g
        .get(&format!("{base}/issues?labels=incident&state=closed"))
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = g
        .patch(&format!("{base}/issues/2"), json!({"state": "open"}))
        .await;
    assert_eq!(v["state_reason"], "reopened");
    let (s, v) = g.get(&format!("{base}/issues/2")).await;
    assert_eq!((s, v["title"].as_str().unwrap()), (200, "Incident"));
    assert_eq!(g.get(&format!("{base}/issues/99")).await.0, 404);

    // Deployments.
    let (s, d) = g
        .post(&format!("{base}/deployments"), json!({"ref": "main", "environment": "production", "payload": {"slot": "staging"}, "required_contexts": [], "auto_merge": false}))
        .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["sha"], fx.c2.as_str());
    assert_eq!(d["production_environment"], true);
    assert_eq!(d["payload"]["slot"], "staging");
    let id = d["id"].as_u64().unwrap();
    let (s, v) = g
        .post(&format!("{base}/deployments"), json!({"ref": "nope"}))
        .await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (422, "No ref found for: nope")
    );
    let (s, st) = g
        .post(&format!("{base}/deployments/{id}/statuses"), json!({"state": "in_progress", "log_url": "https://example.test/log", "description": "deploying"}))
        .await;
    assert_eq!(s, 201, "{st}");
    assert_eq!(st["target_url"], "https://example.test/log");
    g.post(
        &format!("{base}/deployments/{id}/statuses"),
        json!({"state": "success"}),
    )
    .await;
    let (s, _) = g
        .post(
            &format!("{base}/deployments/{id}/statuses"),
            json!({"state": "done"}),
        )
        .await;
    assert_eq!(s, 422);
    let (_, v) = g.get(&format!("{base}/deployments/{id}/statuses")).await;
    assert_eq!(v[0]["state"], "success", "newest first");
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = g
        .get(&format!("{base}/deployments?environment=production"))
        .await;
    assert_eq!(v[0]["id"], id);
    let (_, v) = g
        .get(&format!("{base}/deployments?environment=staging"))
        .await;
    assert!(v.as_array().unwrap().is_empty());
    assert_eq!(g.get(&format!("{base}/deployments/{id}")).await.0, 200);
    assert_eq!(
        g.post(
            &format!("{base}/deployments/424242/statuses"),
            json!({"state": "success"})
        )
        .await
        .0,
        404
    );

    // Errors and pagination.
    let (s, v) = g.get("/repos/contoso/missing").await;
    assert_eq!((s, v["message"].as_str().unwrap()), (404, "Not Found"));
    let (s, v) = gh(&env, "token ghp_wrong").get(base).await;
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (401, "Bad credentials")
    );
    let resp = env
        .client
        .get(format!("{API}{base}/issues?state=all&per_page=1"))
        .header("authorization", format!("token {}", env.sb.github_token()))
        .header("user-agent", "t")
        .send()
        .await
        .unwrap();
    let link = resp.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("rel=\"next\"") && link.contains("page=2"),
        "{link}"
    );
    let log = env.sb.request_log();
    assert!(log.iter().any(|r| r.method == "POST"
        && r.path == "/repos/contoso/payments/pulls"
        && r.status == 201));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_answers_apply_the_request_then_close_the_connection() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    seed(&env, work.path());
    let g = gh(&env, &format!("Bearer {}", env.sb.github_token()));
    let base = "/repos/contoso/payments";
    let arm = |body: Value| {
        env.client
            .post(env.control("/_sandbox/github/drop-answers"))
            .json(&body)
            .send()
    };
    // Bad rules are refused.
    for bad in [
        json!({"method": "POST"}),
        json!({"method": "POST", "path_prefix": "/x", "times": 0}),
    ] {
        assert_eq!(arm(bad).await.unwrap().status(), 400);
    }
    let r = arm(json!({"method": "POST", "path_prefix": format!("{base}/pulls"), "times": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // The creation is applied; its answer never comes.
    let sent = env
        .client
        .post(format!("{API}{base}/pulls"))
        .header("authorization", format!("Bearer {}", env.sb.github_token()))
        .header("user-agent", "expedite-test")
        .json(&json!({"title": "Feature", "head": "feature", "base": "main"}))
        .send()
        .await;
    assert!(sent.is_err(), "answered: {:?}", sent.map(|r| r.status()));
    let (s, list) = g.get(&format!("{base}/pulls?state=all")).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["head"]["ref"], "feature");
    let log: Vec<_> = env
        .sb
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("{base}/pulls"))
        .map(|r| r.status)
        .collect();
    assert_eq!(log, [0]);

    // Spent after `times`: the next one is answered (422: it exists).
    let (s, v) = g
        .post(
            &format!("{base}/pulls"),
            json!({"title": "Again", "head": "feature", "base": "main"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let cleared = env
        .client
        .delete(env.control("/_sandbox/github/drop-answers"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
}
