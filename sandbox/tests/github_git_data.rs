//! The sandbox GitHub's git database (`api.github.test`): blobs, trees and
//! commits written and read through the REST API, conditional requests,
//! refs as compare-and-set under concurrency (also outside refs/heads and
//! refs/tags), and workflow runs set through the control API.
#![cfg(test)]

mod common;

use std::path::Path;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

const API: &str = "https://api.github.test";
const O: &str = "contoso";
const R: &str = "payments";
const BASE: &str = "/repos/contoso/payments";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct Gh {
    client: reqwest::Client,
    auth: String,
}

impl Gh {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut rb = self
            .client
            .request(method.parse().unwrap(), format!("{API}{path}"))
            .header("user-agent", "expedite-test")
            .header("authorization", &self.auth);
        let mut accept = false;
        for (k, v) in headers {
            accept |= k.eq_ignore_ascii_case("accept");
            rb = rb.header(*k, *v);
        }
        if !accept {
            rb = rb.header("accept", "application/vnd.github+json");
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let resp = rb.send().await.unwrap();
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.unwrap().to_vec(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let a = self
            .send(method, path, body.map(|b| b.to_string().into_bytes()), &[])
            .await;
        (a.status, a.json())
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

    async fn delete(&self, p: &str) -> (u16, Value) {
        self.call("DELETE", p, None).await
    }
}

fn pat(env: &Env) -> Gh {
    Gh {
        client: env.client.clone(),
        auth: format!("token {}", env.sb.github_token()),
    }
}

/// An installation token narrowed to `permissions`.
async fn app_token(env: &Env, permissions: Value) -> Gh {
    let app = Gh {
        client: env.client.clone(),
        auth: format!("Bearer {}", env.sb.github_app_jwt(-60, 600).unwrap()),
    };
    let id = env.sb.github_installation_id(O).unwrap();
    let (s, tok) = app
        .post(
            &format!("/app/installations/{id}/access_tokens"),
            json!({ "permissions": permissions }),
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    Gh {
        client: env.client.clone(),
        auth: format!("token {}", tok["token"].as_str().unwrap()),
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

/// `contoso/payments` with main at one commit holding `a.txt`; returns the
/// bare repository and main's commit.
fn seed(env: &Env, work: &Path) -> (std::path::PathBuf, String) {
    let bare = env.sb.github_create_repo(O, R, "main").unwrap();
    let w = work.join("seed");
    std::fs::create_dir_all(&w).unwrap();
    sh(&w, &["init", "-q", "-b", "main"]);
    std::fs::write(w.join("a.txt"), "one\n").unwrap();
    sh(&w, &["add", "."]);
    sh(&w, &["commit", "-q", "-m", "c1"]);
    let c1 = sh(&w, &["rev-parse", "HEAD"]);
    sh(&w, &["push", "-q", bare.to_str().unwrap(), "main"]);
    (bare, c1)
}

fn bare_git(bare: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("--git-dir")
        .arg(bare)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_trees_and_commits_build_a_branch() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let (bare, c1) = seed(&env, work.path());
    let g = pat(&env);

    // An empty repository has no git database yet (GitHub: 409).
    env.sb.github_create_repo(O, "empty", "main").unwrap();
    let (s, v) = g
        .post("/repos/contoso/empty/git/blobs", json!({"content": "x"}))
        .await;
    assert_eq!((s, message(&v)), (409, "Git Repository is empty."), "{v}");

    // Blobs: utf-8 and base64 in, base64 (or raw) out.
    let a = g
        .send(
            "POST",
            &format!("{BASE}/git/blobs"),
            Some(
                json!({"content": "hello\n", "encoding": "utf-8"})
                    .to_string()
                    .into_bytes(),
            ),
            &[],
        )
        .await;
    assert_eq!(a.status, 201);
    let blob = a.json();
    let hello = blob["sha"].as_str().unwrap().to_owned();
    assert_eq!(hello, "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(blob["url"], format!("{API}{BASE}/git/blobs/{hello}"));
    assert_eq!(a.header("location"), blob["url"].as_str());
    assert!(a.header("etag").is_none(), "only GETs carry an ETag");

    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
    let (s, v) = g
        .post(
            &format!("{BASE}/git/blobs"),
            json!({"content": b64, "encoding": "base64"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let bin = v["sha"].as_str().unwrap().to_owned();
    assert_eq!(bare_git(&bare, &["cat-file", "-s", &bin]).trim(), "1000");

    let (s, v) = g.get(&format!("{BASE}/git/blobs/{bin}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sha"], bin.as_str());
    assert_eq!(v["size"], 1000);
    assert_eq!(v["encoding"], "base64");
    assert!(v["node_id"].is_string());
    assert_eq!(v["url"], format!("{API}{BASE}/git/blobs/{bin}"));
    let content = v["content"].as_str().unwrap();
    assert!(content.ends_with('\n'));
    assert!(content.lines().all(|l| l.len() <= 60));
    assert_eq!(content.lines().next().unwrap().len(), 60);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(content.replace('\n', ""))
        .unwrap();
    assert_eq!(decoded, binary);
    for accept in [
        "application/vnd.github.raw",
        "application/vnd.github.raw+json",
        "application/vnd.github.v3.raw",
    ] {
        let a = g
            .send(
                "GET",
                &format!("{BASE}/git/blobs/{bin}"),
                None,
                &[("accept", accept)],
            )
            .await;
        assert_eq!(a.status, 200, "{accept}");
        assert_eq!(a.header("content-type"), Some("application/octet-stream"));
        assert_eq!(a.bytes, binary, "{accept}");
    }
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let (s, v) = g.get(&format!("{BASE}/git/blobs/{missing}")).await;
    assert_eq!((s, message(&v)), (404, "Not Found"));
    assert_eq!(v["status"], "404");
    assert!(
        v["documentation_url"]
            .as_str()
            .unwrap()
            .ends_with("/git/blobs#get-a-blob")
    );
    let tree_c1 = bare_git(&bare, &["rev-parse", &format!("{c1}^{{tree}}")])
        .trim()
        .to_owned();
    assert_eq!(g.get(&format!("{BASE}/git/blobs/{tree_c1}")).await.0, 404);
    let (s, v) = g.post(&format!("{BASE}/git/blobs"), json!({})).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = g
        .post(
            &format!("{BASE}/git/blobs"),
            json!({"content": "x", "encoding": "latin-1"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["status"], "422");

    // Trees: base_tree plus a new file, a nested path made from content, a
    // deletion.
    let (s, v) = g
        .post(
            &format!("{BASE}/git/trees"),
            json!({"base_tree": tree_c1, "tree": [
                {"path": "b.txt", "mode": "100644", "type": "blob", "sha": hello},
                {"path": "dir/nested/c.txt", "mode": "100644", "type": "blob", "content": "nested\n"},
                {"path": "run.sh", "mode": "100755", "type": "blob", "content": "#!/bin/sh\n"},
                {"path": "a.txt", "mode": "100644", "type": "blob", "sha": null},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let tree = v["sha"].as_str().unwrap().to_owned();
    assert_eq!(v["truncated"], false);
    assert_eq!(v["url"], format!("{API}{BASE}/git/trees/{tree}"));
    let names: Vec<&str> = v["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b.txt", "dir", "run.sh"]);
    let b = &v["tree"][0];
    assert_eq!(
        (&b["mode"], &b["type"], &b["sha"], &b["size"]),
        (&json!("100644"), &json!("blob"), &json!(hello), &json!(6))
    );
    assert_eq!(b["url"], format!("{API}{BASE}/git/blobs/{hello}"));
    assert_eq!(v["tree"][1]["mode"], "040000");
    assert_eq!(v["tree"][1]["type"], "tree");
    assert!(v["tree"][1].get("size").is_none());
    assert_eq!(v["tree"][2]["mode"], "100755");
    assert_eq!(
        bare_git(&bare, &["ls-tree", "-r", "--name-only", &tree]),
        "b.txt\ndir/nested/c.txt\nrun.sh\n"
    );
    // Read back, recursively and by ref name.
    let (s, v) = g.get(&format!("{BASE}/git/trees/{tree}?recursive=1")).await;
    assert_eq!(s, 200);
    let paths: Vec<&str> = v["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["b.txt", "dir", "dir/nested", "dir/nested/c.txt", "run.sh"]
    );
    assert_eq!(v["tree"][3]["size"], 7);
    let (s, v) = g.get(&format!("{BASE}/git/trees/main")).await;
    assert_eq!((s, v["sha"].as_str().unwrap()), (200, tree_c1.as_str()));
    assert_eq!(g.get(&format!("{BASE}/git/trees/{missing}")).await.0, 404);
    // Replacing a subtree by SHA, and a tree from nothing.
    let (s, v) = g
        .post(
            &format!("{BASE}/git/trees"),
            json!({"tree": [{"path": "copy", "mode": "040000", "type": "tree", "sha": tree}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tree"][0]["sha"], tree.as_str());

    for (body, want) in [
        (
            json!({"tree": [{"path": "x", "mode": "100644", "type": "blob", "sha": missing}]}),
            format!("tree.sha {missing} is not a valid blob"),
        ),
        (
            json!({"base_tree": missing, "tree": []}),
            "base_tree is not a valid tree oid".to_owned(),
        ),
        (
            json!({"base_tree": c1, "tree": []}),
            "base_tree is not a valid tree oid".to_owned(),
        ),
        (
            json!({"tree": [{"path": "/abs", "mode": "100644", "type": "blob", "content": "x"}]}),
            "tree.path contains a malformed path component".to_owned(),
        ),
        (
            json!({"tree": [{"path": "a/../b", "mode": "100644", "type": "blob", "content": "x"}]}),
            "tree.path contains a malformed path component".to_owned(),
        ),
        (
            json!({"base_tree": tree_c1, "tree": [{"path": "nope.txt", "mode": "100644", "type": "blob", "sha": null}]}),
            "GitRPC::BadObjectState".to_owned(),
        ),
    ] {
        let (s, v) = g.post(&format!("{BASE}/git/trees"), body.clone()).await;
        assert_eq!((s, message(&v)), (422, want.as_str()), "{body}");
    }
    let (s, v) = g
        .post(
            &format!("{BASE}/git/trees"),
            json!({"tree": [{"path": "x", "mode": "100644", "type": "blob", "sha": hello, "content": "x"}]}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = g
        .post(
            &format!("{BASE}/git/trees"),
            json!({"tree": [{"path": "x", "mode": "100666", "type": "blob", "sha": hello}]}),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // Commits: with author and date, committer defaulting to the author.
    let (s, v) = g
        .post(
            &format!("{BASE}/git/commits"),
            json!({"message": "hotfix: guard large orders", "tree": tree, "parents": [c1],
                   "author": {"name": "Dana", "email": "dana@example.test", "date": "2026-03-04T05:06:07+01:00"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let commit = v["sha"].as_str().unwrap().to_owned();
    assert_eq!(v["tree"]["sha"], tree.as_str());
    assert_eq!(v["parents"][0]["sha"], c1.as_str());
    assert_eq!(v["message"], "hotfix: guard large orders");
    assert_eq!(v["author"]["name"], "Dana");
    assert_eq!(v["author"]["date"], "2026-03-04T04:06:07Z");
    assert_eq!(v["committer"], v["author"]);
    assert_eq!(v["verification"]["verified"], false);
    assert_eq!(v["url"], format!("{API}{BASE}/git/commits/{commit}"));
    let raw = bare_git(&bare, &["cat-file", "commit", &commit]);
    assert!(
        raw.contains("author Dana <dana@example.test> 1772597167 +0100\n"),
        "{raw}"
    );
    let (s, read) = g.get(&format!("{BASE}/git/commits/{commit}")).await;
    assert_eq!(s, 200);
    assert_eq!(read, v, "POST answers what GET shows");
    // Defaults: the token's user, now; a root commit without parents.
    let (s, v) = g
        .post(
            &format!("{BASE}/git/commits"),
            json!({"message": "root", "tree": tree}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["parents"], json!([]));
    assert_eq!(v["author"]["name"], "sandbox-user");
    for (body, want) in [
        (
            json!({"message": "m", "tree": missing, "parents": [c1]}),
            "Tree SHA does not exist",
        ),
        (
            json!({"message": "m", "tree": c1, "parents": [c1]}),
            "Tree SHA is not a tree object",
        ),
        (
            json!({"message": "m", "tree": tree, "parents": [missing]}),
            "Parent SHA does not exist or is not a commit object",
        ),
        (
            json!({"message": "m", "tree": tree, "parents": [tree]}),
            "Parent SHA does not exist or is not a commit object",
        ),
    ] {
        let (s, v) = g.post(&format!("{BASE}/git/commits"), body.clone()).await;
        assert_eq!((s, message(&v)), (422, want), "{body}");
    }
    let (s, v) = g
        .post(&format!("{BASE}/git/commits"), json!({"tree": tree}))
        .await;
    assert_eq!(s, 422, "{v}");

    // The branch moves to it (a fast forward) and git sees the files.
    let (s, v) = g
        .patch(
            &format!("{BASE}/git/refs/heads/main"),
            json!({"sha": commit, "force": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        bare_git(&bare, &["show", "main:dir/nested/c.txt"]),
        "nested\n"
    );

    // Writing needs contents: write.
    let ro = app_token(&env, json!({"contents": "read"})).await;
    let (s, v) = ro
        .post(&format!("{BASE}/git/blobs"), json!({"content": "x"}))
        .await;
    assert_eq!(
        (s, message(&v)),
        (403, "Resource not accessible by integration")
    );
    assert_eq!(ro.get(&format!("{BASE}/git/blobs/{hello}")).await.0, 200);
    let (s, _) = ro
        .post(
            &format!("{BASE}/git/commits"),
            json!({"message": "m", "tree": tree}),
        )
        .await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_over_100_mib_are_refused() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    seed(&env, work.path());
    let g = pat(&env);
    const MAX: usize = 100 * 1024 * 1024;
    let body = |n: usize| {
        let mut b = Vec::with_capacity(n + 40);
        b.extend_from_slice(br#"{"encoding":"utf-8","content":""#);
        b.resize(b.len() + n, b'a');
        b.extend_from_slice(br#""}"#);
        b
    };
    let a = g
        .send(
            "POST",
            &format!("{BASE}/git/blobs"),
            Some(body(MAX + 1)),
            &[],
        )
        .await;
    assert_eq!(a.status, 422);
    let v = a.json();
    assert_eq!(v["errors"][0]["code"], "too_large", "{v}");
    let a = g
        .send("POST", &format!("{BASE}/git/blobs"), Some(body(MAX)), &[])
        .await;
    assert_eq!(a.status, 201, "exactly 100 MiB is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_gets_answer_304_until_something_changes() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let (_, c1) = seed(&env, work.path());
    let g = pat(&env);
    let ref_path = format!("{BASE}/git/ref/heads/main");

    for path in [ref_path.clone(), format!("{BASE}/git/commits/{c1}")] {
        let first = g.send("GET", &path, None, &[]).await;
        assert_eq!(first.status, 200);
        let tag = first.header("etag").unwrap().to_owned();
        assert!(tag.starts_with("W/\"") && tag.ends_with('"'), "{tag}");
        assert_eq!(tag.len(), 36, "{tag}");
        assert!(
            first
                .header("cache-control")
                .unwrap()
                .contains("max-age=60")
        );
        let again = g.send("GET", &path, None, &[]).await;
        assert_eq!(again.header("etag"), Some(tag.as_str()), "stable");

        let cached = g.send("GET", &path, None, &[("if-none-match", &tag)]).await;
        assert_eq!(cached.status, 304, "{path}");
        assert!(cached.bytes.is_empty());
        assert_eq!(cached.header("etag"), Some(tag.as_str()));
        // Weak comparison: the strong form and lists match too.
        let strong = tag.trim_start_matches("W/").to_owned();
        assert_eq!(
            g.send("GET", &path, None, &[("if-none-match", &strong)])
                .await
                .status,
            304
        );
        let list = format!("W/\"0000\", {tag}");
        assert_eq!(
            g.send("GET", &path, None, &[("if-none-match", &list)])
                .await
                .status,
            304
        );
        let other = g
            .send("GET", &path, None, &[("if-none-match", "W/\"0000\"")])
            .await;
        assert_eq!(other.status, 200);
        assert_eq!(other.bytes, first.bytes);
    }

    // Moving the ref changes the answer, so the old tag no longer matches.
    let old = g.send("GET", &ref_path, None, &[]).await;
    let tag = old.header("etag").unwrap().to_owned();
    let (_, c) = g.get(&format!("{BASE}/git/commits/{c1}")).await;
    let (s, child) = g
        .post(
            &format!("{BASE}/git/commits"),
            json!({"message": "next", "tree": c["tree"]["sha"], "parents": [c1]}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        g.patch(
            &format!("{BASE}/git/refs/heads/main"),
            json!({"sha": child["sha"]})
        )
        .await
        .0,
        200
    );
    let fresh = g
        .send("GET", &ref_path, None, &[("if-none-match", &tag)])
        .await;
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.header("etag"), Some(tag.as_str()));
    assert_eq!(fresh.json()["object"]["sha"], child["sha"]);
    // Errors carry no ETag.
    let miss = g
        .send("GET", &format!("{BASE}/git/ref/heads/nope"), None, &[])
        .await;
    assert_eq!(miss.status, 404);
    assert!(miss.header("etag").is_none());
}

/// Twenty children of `parent` (same tree), created through the API.
async fn children(g: &Gh, parent: &str, n: usize) -> Vec<String> {
    let (_, c) = g.get(&format!("{BASE}/git/commits/{parent}")).await;
    let tree = c["tree"]["sha"].as_str().unwrap().to_owned();
    let mut out = Vec::new();
    for i in 0..n {
        let (s, v) = g
            .post(
                &format!("{BASE}/git/commits"),
                json!({"message": format!("child {i}"), "tree": tree, "parents": [parent]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        out.push(v["sha"].as_str().unwrap().to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ref_writes_are_compare_and_set() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let (bare, c1) = seed(&env, work.path());
    let g = pat(&env);
    let kids = children(&g, &c1, 20).await;

    // Twenty updates from the same old SHA to twenty different children:
    // exactly one wins, the rest are not fast forwards of the winner.
    assert_eq!(
        g.post(
            &format!("{BASE}/git/refs"),
            json!({"ref": "refs/heads/race", "sha": c1})
        )
        .await
        .0,
        201
    );
    let mut tasks = tokio::task::JoinSet::new();
    for kid in kids.clone() {
        let g = g.clone();
        tasks.spawn(async move {
            let (s, v) = g
                .patch(
                    &format!("{BASE}/git/refs/heads/race"),
                    json!({"sha": kid, "force": false}),
                )
                .await;
            (s, v, kid)
        });
    }
    let results = tasks.join_all().await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, _, k)| k)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (s, v, _) in results.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!((*s, message(v)), (422, "Update is not a fast forward"));
    }
    assert_eq!(
        bare_git(&bare, &["rev-parse", "refs/heads/race"]).trim(),
        winners[0].as_str()
    );

    // Twenty creations of one ref: one 201, the rest "already exists".
    let mut tasks = tokio::task::JoinSet::new();
    for kid in kids.clone() {
        let g = g.clone();
        tasks.spawn(async move {
            g.post(
                &format!("{BASE}/git/refs"),
                json!({"ref": "refs/heads/once", "sha": kid}),
            )
            .await
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{results:?}"
    );
    for (s, v) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!((*s, message(v)), (422, "Reference already exists"));
    }

    // Twenty deletions: one 204, the rest "does not exist".
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let g = g.clone();
        tasks.spawn(async move { g.delete(&format!("{BASE}/git/refs/heads/once")).await });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 204).count(),
        1,
        "{results:?}"
    );
    for (s, v) in results.iter().filter(|(s, _)| *s != 204) {
        assert_eq!((*s, message(v)), (422, "Reference does not exist"));
    }
    assert!(!bare_git(&bare, &["for-each-ref", "--format=%(refname)"]).contains("refs/heads/once"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_outside_heads_and_tags_work_like_branches() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let (bare, c1) = seed(&env, work.path());
    let g = pat(&env);
    let kids = children(&g, &c1, 2).await;
    let name = "refs/expedite/locks/payments/production";

    let (s, v) = g
        .post(&format!("{BASE}/git/refs"), json!({"ref": name, "sha": c1}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ref"], name);
    assert_eq!(v["url"], format!("{API}{BASE}/git/{name}"));
    assert_eq!(v["object"]["sha"], c1.as_str());
    let (s, v) = g
        .post(&format!("{BASE}/git/refs"), json!({"ref": name, "sha": c1}))
        .await;
    assert_eq!((s, message(&v)), (422, "Reference already exists"));

    let (s, v) = g
        .get(&format!(
            "{BASE}/git/ref/expedite/locks/payments/production"
        ))
        .await;
    assert_eq!(
        (s, v["object"]["sha"].as_str().unwrap()),
        (200, c1.as_str())
    );
    let (s, v) = g
        .get(&format!("{BASE}/git/matching-refs/expedite/locks/"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["ref"], name);

    let path = format!("{BASE}/git/refs/expedite/locks/payments/production");
    let (s, v) = g.patch(&path, json!({"sha": kids[0]})).await;
    assert_eq!(
        (s, v["object"]["sha"].as_str().unwrap()),
        (200, kids[0].as_str())
    );
    let (s, v) = g
        .patch(&path, json!({"sha": kids[1], "force": false}))
        .await;
    assert_eq!((s, message(&v)), (422, "Update is not a fast forward"));
    let (s, _) = g.patch(&path, json!({"sha": kids[1], "force": true})).await;
    assert_eq!(s, 200);
    assert_eq!(
        bare_git(&bare, &["rev-parse", name]).trim(),
        kids[1].as_str()
    );

    assert_eq!(g.delete(&path).await.0, 204);
    assert_eq!(
        g.get(&format!(
            "{BASE}/git/ref/expedite/locks/payments/production"
        ))
        .await
        .0,
        404
    );
    let (s, v) = g.delete(&path).await;
    assert_eq!((s, message(&v)), (422, "Reference does not exist"));
    let (s, v) = g.patch(&path, json!({"sha": c1})).await;
    assert_eq!((s, message(&v)), (422, "Reference does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_runs_are_set_through_the_control_api() {
    let env = start().await;
    let work = tempfile::tempdir().unwrap();
    let (_, c1) = seed(&env, work.path());
    let g = pat(&env);
    let run = format!("{BASE}/actions/runs/7");

    let (s, v) = g.get(&run).await;
    assert_eq!((s, message(&v)), (404, "Not Found"));
    assert!(
        v["documentation_url"]
            .as_str()
            .unwrap()
            .ends_with("#get-a-workflow-run")
    );

    env.sb
        .github_set_workflow_run(O, R, 7, "in_progress", None)
        .unwrap();
    let (s, v) = g.get(&run).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], 7);
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["conclusion"], Value::Null);
    assert_eq!(v["run_attempt"], 1);
    assert_eq!(v["run_number"], 1);
    assert_eq!(v["head_branch"], "main");
    assert_eq!(v["head_sha"], c1.as_str());
    assert_eq!(v["head_commit"]["id"], c1.as_str());
    assert_eq!(v["event"], "workflow_dispatch");
    assert_eq!(v["path"], ".github/workflows/deploy.yml");
    assert_eq!(v["name"], "deploy");
    assert_eq!(
        v["html_url"],
        "https://github.test/contoso/payments/actions/runs/7"
    );
    assert_eq!(v["url"], format!("{API}{BASE}/actions/runs/7"));
    assert_eq!(v["repository"]["full_name"], "contoso/payments");
    let created = v["created_at"].as_str().unwrap().to_owned();
    assert!(v["updated_at"].as_str().unwrap() >= created.as_str());

    // The control API: completed with a conclusion, and other fields.
    let r = env
        .client
        .put(env.control("/_sandbox/github/repos/contoso/payments/runs/7"))
        .json(&json!({"status": "completed", "conclusion": "failure", "run_attempt": 2, "name": "hotfix"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = g.get(&run).await;
    assert_eq!(
        (v["status"].as_str(), v["conclusion"].as_str()),
        (Some("completed"), Some("failure"))
    );
    assert_eq!(v["run_attempt"], 2);
    assert_eq!(v["name"], "hotfix");
    assert_eq!(v["created_at"], created.as_str());
    assert_eq!(
        v["previous_attempt_url"],
        format!("{API}{BASE}/actions/runs/7/attempts/1")
    );
    env.sb
        .github_set_workflow_run(O, R, 7, "completed", Some("success"))
        .unwrap();
    assert_eq!(g.get(&run).await.1["conclusion"], "success");

    // Refused: contradictory or unknown values, unknown repositories.
    assert!(
        env.sb
            .github_set_workflow_run(O, R, 8, "completed", None)
            .is_err()
    );
    assert!(
        env.sb
            .github_set_workflow_run(O, R, 8, "queued", Some("success"))
            .is_err()
    );
    assert!(
        env.sb
            .github_set_workflow_run(O, R, 8, "running", None)
            .is_err()
    );
    assert!(
        env.sb
            .github_set_workflow_run(O, "nope", 8, "queued", None)
            .is_err()
    );
    for (path, body, want) in [
        (
            "/_sandbox/github/repos/contoso/payments/runs/8",
            json!({"status": "done"}),
            400,
        ),
        (
            "/_sandbox/github/repos/contoso/payments/runs/x",
            json!({"status": "queued"}),
            400,
        ),
        (
            "/_sandbox/github/repos/contoso/nope/runs/8",
            json!({"status": "queued"}),
            404,
        ),
    ] {
        let r = env
            .client
            .put(env.control(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{path} {body}");
    }

    // Reading runs needs `actions`.
    let no_actions = app_token(&env, json!({"contents": "read"})).await;
    assert_eq!(no_actions.get(&run).await.0, 403);
    let actions = app_token(&env, json!({"actions": "read"})).await;
    assert_eq!(actions.get(&run).await.0, 200);

    let r = env
        .client
        .delete(env.control("/_sandbox/github/repos/contoso/payments/runs/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(g.get(&run).await.0, 404);
}
