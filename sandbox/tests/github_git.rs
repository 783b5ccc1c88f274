//! The sandbox GitHub's git smart-HTTP (`github.test`) driven by real git:
//! clone, shallow and partial fetch, push, Basic auth, branch protection and
//! the App `workflows` permission.
#![cfg(test)]

mod common;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use common::*;
use expedite_sandbox::Sandbox;
use serde_json::{Value, json};

const OWNER: &str = "contoso";
const REPO: &str = "payments";

/// Runs git with the sandbox recipe; `token` becomes a Basic
/// `x-access-token:<token>` header.
async fn git(sb: &Sandbox, dir: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new("git");
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(sb.git_config_args())
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.test"])
        .args(["-c", "protocol.version=2", "-c", "init.defaultBranch=main"]);
    if let Some(t) = token {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{t}"));
        cmd.args([
            "-c",
            &format!("http.extraHeader=Authorization: Basic {basic}"),
        ]);
    }
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("git took over 60 s")
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "git failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A repository with three commits on `main`, pushed locally into the bare repo.
async fn seeded(sb: &Sandbox, work: &Path) -> std::path::PathBuf {
    let bare = sb.github_create_repo(OWNER, REPO, "main").unwrap();
    let seed = work.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    ok(&git(sb, &seed, None, &["init", "-q", "-b", "main"]).await);
    for i in 1..=3 {
        std::fs::write(seed.join("a.txt"), format!("version {i}\n")).unwrap();
        std::fs::write(seed.join(format!("big{i}.bin")), vec![b'x'; 4096]).unwrap();
        ok(&git(sb, &seed, None, &["add", "."]).await);
        ok(&git(
            sb,
            &seed,
            None,
            &["commit", "-q", "-m", &format!("commit {i}")],
        )
        .await);
    }
    ok(&git(
        sb,
        &seed,
        None,
        &["push", "-q", bare.to_str().unwrap(), "main"],
    )
    .await);
    bare
}

async fn app_token(env: &Env, owner: &str, body: Value) -> String {
    let id = env.sb.github_installation_id(owner).unwrap();
    let jwt = env.sb.github_app_jwt(-60, 600).unwrap();
    let resp = env
        .client
        .post(format!(
            "https://api.github.test/app/installations/{id}/access_tokens"
        ))
        .bearer_auth(jwt)
        .header("user-agent", "test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn bare_rev(bare: &Path, rev: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["rev-parse", "--verify", "--quiet", rev])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_shallow_partial_fetch_and_push_over_https() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let bare = seeded(&env.sb, work.path()).await;
    let url = env.sb.github_clone_url(OWNER, REPO);
    assert_eq!(url, "https://github.test/contoso/payments.git");
    let token = app_token(&env, OWNER, json!({})).await;

    // Full clone with an installation token.
    ok(&git(
        &env.sb,
        work.path(),
        Some(&token),
        &["clone", "-q", &url, "full"],
    )
    .await);
    let full = work.path().join("full");
    assert_eq!(
        std::fs::read_to_string(full.join("a.txt")).unwrap(),
        "version 3\n"
    );
    assert_eq!(
        ok(&git(&env.sb, &full, None, &["rev-list", "--count", "HEAD"]).await),
        "3"
    );

    // Shallow (protocol v2) and partial clones.
    ok(&git(
        &env.sb,
        work.path(),
        Some(&token),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    )
    .await);
    let shallow = work.path().join("shallow");
    assert_eq!(
        ok(&git(&env.sb, &shallow, None, &["rev-list", "--count", "HEAD"]).await),
        "1"
    );
    ok(&git(
        &env.sb,
        work.path(),
        Some(&token),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &url,
            "partial",
        ],
    )
    .await);
    let partial = work.path().join("partial");
    assert_eq!(
        ok(&git(
            &env.sb,
            &partial,
            None,
            &["config", "remote.origin.partialclonefilter"]
        )
        .await),
        "blob:none"
    );
    let missing = ok(&git(
        &env.sb,
        &partial,
        None,
        &["rev-list", "--objects", "--missing=print", "HEAD"],
    )
    .await);
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "blobs should be missing: {missing}"
    );
    // Fetching one commit by SHA, shallow, as expedite does.
    let first = bare_rev(&bare, "main~2").unwrap();
    ok(&git(
        &env.sb,
        &shallow,
        Some(&token),
        &["fetch", "-q", "--depth", "1", "origin", &first],
    )
    .await);

    // Push a new commit.
    std::fs::write(full.join("b.txt"), "new\n").unwrap();
    ok(&git(&env.sb, &full, None, &["add", "b.txt"]).await);
    ok(&git(&env.sb, &full, None, &["commit", "-q", "-m", "add b"]).await);
    ok(&git(
        &env.sb,
        &full,
        Some(&token),
        &["push", "-q", "origin", "main"],
    )
    .await);
    let head = ok(&git(&env.sb, &full, None, &["rev-parse", "HEAD"]).await);
    assert_eq!(bare_rev(&bare, "refs/heads/main").unwrap(), head);

    // The personal token works too, as user name or password.
    ok(&git(
        &env.sb,
        work.path(),
        Some(&env.sb.github_token()),
        &["ls-remote", &url],
    )
    .await);

    let log = env.sb.request_log();
    let git_log: Vec<_> = log.iter().filter(|r| r.host == "github.test").collect();
    assert!(
        git_log.iter().all(|r| r.target == "git:contoso/payments"),
        "{git_log:?}"
    );
    assert!(
        git_log
            .iter()
            .any(|r| r.path.ends_with("/git-receive-pack") && r.status == 200)
    );
    assert!(
        git_log
            .iter()
            .any(|r| r.path.ends_with("/git-upload-pack") && r.status == 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_without_or_with_bad_credentials_is_refused() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    seeded(&env.sb, work.path()).await;
    let url = env.sb.github_clone_url(OWNER, REPO);

    let resp = env
        .client
        .get(format!("{url}/info/refs?service=git-receive-pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"GitHub\""
    );
    let out = git(&env.sb, work.path(), None, &["clone", "-q", &url, "x"]).await;
    assert!(!out.status.success());
    let out = git(
        &env.sb,
        work.path(),
        Some("ghs_nonsense"),
        &["clone", "-q", &url, "y"],
    )
    .await;
    assert!(!out.status.success());
    // A valid token for an unknown repository.
    let out = git(
        &env.sb,
        work.path(),
        Some(&env.sb.github_token()),
        &["ls-remote", "https://github.test/contoso/nope.git"],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // A token without contents:write cannot push.
    env.sb
        .github_set_installation_permissions(OWNER, &[("contents", "read"), ("metadata", "read")])
        .unwrap();
    let token = app_token(&env, OWNER, json!({})).await;
    ok(&git(
        &env.sb,
        work.path(),
        Some(&token),
        &["clone", "-q", &url, "ro"],
    )
    .await);
    let ro = work.path().join("ro");
    ok(&git(
        &env.sb,
        &ro,
        None,
        &["commit", "-q", "--allow-empty", "-m", "x"],
    )
    .await);
    let out = git(&env.sb, &ro, Some(&token), &["push", "origin", "main"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission to contoso/payments.git denied to expedite-sandbox[bot]"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_branch_and_workflow_pushes_are_refused() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let bare = seeded(&env.sb, work.path()).await;
    let url = env.sb.github_clone_url(OWNER, REPO);
    let pat = env.sb.github_token();
    ok(&git(
        &env.sb,
        work.path(),
        Some(&pat),
        &["clone", "-q", &url, "w"],
    )
    .await);
    let w = work.path().join("w");
    let before = bare_rev(&bare, "refs/heads/main").unwrap();

    // Protected branch.
    env.sb.github_protect_branch(OWNER, REPO, "main").unwrap();
    ok(&git(
        &env.sb,
        &w,
        None,
        &["commit", "-q", "--allow-empty", "-m", "direct"],
    )
    .await);
    let out = git(&env.sb, &w, Some(&pat), &["push", "origin", "main"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("GH006: Protected branch update failed for refs/heads/main."),
        "{err}"
    );
    assert!(
        err.contains("[remote rejected] main -> main (protected branch hook declined)"),
        "{err}"
    );
    assert_eq!(bare_rev(&bare, "refs/heads/main").unwrap(), before);
    // Other branches are fine.
    ok(&git(
        &env.sb,
        &w,
        Some(&pat),
        &["push", "-q", "origin", "HEAD:refs/heads/feature"],
    )
    .await);
    // The default branch cannot be deleted either.
    env.sb.github_unprotect_branch(OWNER, REPO, "main").unwrap();
    let out = git(&env.sb, &w, Some(&pat), &["push", "origin", ":main"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to delete the current branch"),
        "{}",
        stderr(&out)
    );

    // Workflows: an App token without `workflows`.
    env.sb
        .github_set_installation_permissions(
            OWNER,
            &[
                ("contents", "write"),
                ("metadata", "read"),
                ("pull_requests", "write"),
            ],
        )
        .unwrap();
    let token = app_token(&env, OWNER, json!({})).await;
    std::fs::create_dir_all(w.join(".github/workflows")).unwrap();
    std::fs::write(w.join(".github/workflows/x.yml"), "on: push\n").unwrap();
    ok(&git(&env.sb, &w, None, &["add", "."]).await);
    ok(&git(&env.sb, &w, None, &["commit", "-q", "-m", "workflow"]).await);
    let out = git(
        &env.sb,
        &w,
        Some(&token),
        &["push", "origin", "HEAD:refs/heads/wf"],
    )
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("(refusing to allow a GitHub App to create or update workflow `.github/workflows/x.yml` without `workflows` permission)"),
        "{err}"
    );
    assert!(bare_rev(&bare, "refs/heads/wf").is_none());
    // The REST ref API refuses the same commit.
    let sha = ok(&git(&env.sb, &w, None, &["rev-parse", "HEAD"]).await);
    ok(&git(
        &env.sb,
        &w,
        Some(&pat),
        &["push", "-q", "origin", "HEAD:refs/heads/by-pat"],
    )
    .await);
    let resp = env
        .client
        .post("https://api.github.test/repos/contoso/payments/git/refs")
        .bearer_auth(&token)
        .header("user-agent", "test")
        .json(&json!({"ref": "refs/heads/wf2", "sha": sha}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("without `workflows` permission"),
        "{v}"
    );
    // A commit that does not touch workflows passes with the same token.
    std::fs::write(w.join("c.txt"), "c\n").unwrap();
    ok(&git(&env.sb, &w, None, &["add", "c.txt"]).await);
    ok(&git(&env.sb, &w, None, &["commit", "-q", "-m", "plain"]).await);
    ok(&git(
        &env.sb,
        &w,
        Some(&token),
        &["push", "-q", "origin", "HEAD:refs/heads/by-pat"],
    )
    .await);
    // With `workflows` granted, the workflow push goes through.
    let mut perms = expedite_sandbox::github::default_permissions();
    perms.insert("workflows".into(), "write".into());
    let pairs: Vec<(&str, &str)> = perms
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.sb
        .github_set_installation_permissions(OWNER, &pairs)
        .unwrap();
    let token = app_token(&env, OWNER, json!({})).await;
    ok(&git(
        &env.sb,
        &w,
        Some(&token),
        &["push", "-q", "origin", &format!("{sha}:refs/heads/wf")],
    )
    .await);
}

#[tokio::test]
async fn control_api_creates_repositories() {
    let env = start().await;
    let resp = env
        .client
        .post(env.control("/_sandbox/github/repos"))
        .json(&json!({"owner": "fabrikam", "name": "site", "default_branch": "trunk", "protected_branches": ["trunk"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["clone_url"], "https://github.test/fabrikam/site.git");
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    assert!(path.join("HEAD").is_file());
    assert_eq!(env.sb.github_repo_path("fabrikam", "site").unwrap(), path);
    assert!(v["installation_id"].as_u64().is_some());
    let again = env
        .client
        .post(env.control("/_sandbox/github/repos"))
        .json(&json!({"owner": "fabrikam", "name": "site"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let s = env.settings.clone();
    assert_eq!(s.github_api_url, "https://api.github.test");
    assert_eq!(s.github_server_url, "https://github.test");
    let exports = s.export_lines();
    assert!(exports.contains("export GITHUB_API_URL='https://api.github.test'"));
    assert!(exports.contains("export GITHUB_SERVER_URL='https://github.test'"));
    assert!(exports.contains("export EXPEDITE_SANDBOX_GITHUB_TOKEN='ghp_sandbox"));
    assert!(s.resolve_string().contains("api.github.test="));
    let root = path.parent().unwrap().parent().unwrap().to_owned();
    drop(env);
    assert!(!root.exists(), "repositories are removed with the sandbox");
}
