#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! `cherry-pick` through the built binary, started as the runner starts the
//! container, against the sandbox GitHub (real bare repositories, git
//! smart-HTTP): clean picks, push mode, protection, renames, conflicts
//! (text and binary), re-runs, several commits, App auth, the `workflows`
//! permission and untrusted text; one hotfix to two targets; the draft pull
//! request's own resolution commands run by plain git; GitHub failing (5xx,
//! a lost answer) to the pull request's creation.

mod common;
#[path = "common/github.rs"]
mod gh;

use common::processed_lines;
use expedite_sandbox::{FaultKind, FaultSpec};
use gh::{Fixture, ORDERS, all_pulls, api_get, api_send, github_writes, job, run};

async fn sandbox() -> expedite_sandbox::Sandbox {
    expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap()
}

/// `main` moves on after the release with an unrelated change.
fn main_moves_on(f: &Fixture) {
    f.switch("main", None);
    f.write("README.md", "# payments\n\nNow with docs.\n");
    f.commit("docs: readme");
    f.push_all();
}

/// The auto branch of a hotfix ending in `sha`, carried to `main`.
fn branch_for(sha: &str) -> String {
    format!("auto/cherry-pick-{}-to-main", &sha[..7])
}

/// `main`'s own change to the line the hotfix fixes: the pick conflicts.
fn main_changes_the_same_line(f: &Fixture) {
    f.switch("main", None);
    f.write(
        "src/Orders.cs",
        &ORDERS.replace(
            "total < Limit; // BUG: drops large orders",
            "total <= Limit && total > 0m; // main's own attempt",
        ),
    );
    f.commit("orders: validate totals");
    f.push_all();
}

/// Orders.cs as the person resolving the conflict leaves it.
fn resolve_orders(dir: &std::path::Path) {
    let path = dir.join("src/Orders.cs");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("<<<<<<< "),
        "the markers are committed: {text}"
    );
    std::fs::write(
        &path,
        ORDERS.replace(
            "total < Limit; // BUG: drops large orders",
            "total > 0m; // large orders are valid",
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_pick_opens_a_pull_request_with_the_x_trailer() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    let branch = branch_for(&fix);
    assert_eq!(r.output("branch"), Some(branch.as_str()));
    let url = r.output("pull-request-url").unwrap();
    assert!(url.contains("/pull/"), "{url}");
    // The branch holds one commit on top of main, with -x's trailer and the
    // original author.
    let log = f.remote_git(&["log", "-1", "--format=%an%n%B", &branch]);
    assert!(
        log.starts_with("Dana Hotfix\nfix: accept orders over $10,000"),
        "{log}"
    );
    assert!(
        log.contains(&format!("(cherry picked from commit {fix})")),
        "{log}"
    );
    assert_eq!(
        f.remote_rev(&format!("{branch}~1")),
        f.remote_rev("refs/heads/main")
    );
    let file = f.remote_git(&["show", &format!("{branch}:src/Orders.cs")]);
    assert!(file.contains("total > 0m"));
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    assert_eq!(pr["draft"], false);
    assert_eq!(pr["base"]["ref"], "main");
    let labels: Vec<_> = pr["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(labels, ["hotfix", "cherry-pick"]);
    // main itself is untouched.
    assert!(
        f.remote_git(&["show", "main:src/Orders.cs"])
            .contains("BUG")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_mode_lands_on_an_unprotected_branch() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    let before = f.remote_rev("refs/heads/main").unwrap();
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("commits", &fix)
        .input("mode", "push"))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pushed"));
    assert_eq!(r.output("pull-request-url"), Some(""));
    assert_eq!(f.remote_rev("refs/heads/main~1").unwrap(), before);
    let msg = f.remote_git(&["log", "-1", "--format=%B", "main"]);
    assert!(msg.contains(&format!("(cherry picked from commit {fix})")));
    assert!(!github_writes(&sb).iter().any(|w| w.ends_with("/pulls")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_branch_gets_a_pull_request_with_a_notice() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    sb.handle()
        .github_protect_branch("contoso", "payments", "main")
        .unwrap();
    let before = f.remote_rev("refs/heads/main");
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("commits", &fix)
        .input("mode", "push"))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("::notice") && l.contains("protected")),
        "{}",
        r.stdout
    );
    assert_eq!(f.remote_rev("refs/heads/main"), before);
    assert!(r.output("pull-request-url").unwrap().contains("/pull/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_moved_on_main_applies_through_rename_detection() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    f.switch("main", None);
    git_mv(&f, "src/Orders.cs", "src/Billing/Orders.cs");
    f.commit("refactor: move Orders into Billing");
    f.push_all();
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    let branch = branch_for(&fix);
    let moved = f.remote_git(&["show", &format!("{branch}:src/Billing/Orders.cs")]);
    assert!(moved.contains("total > 0m"), "{moved}");
    let tree = f.remote_git(&["ls-tree", "-r", "--name-only", &branch]);
    assert!(!tree.lines().any(|l| l == "src/Orders.cs"), "{tree}");
}

fn git_mv(f: &Fixture, from: &str, to: &str) {
    std::fs::create_dir_all(f.dir().join(to).parent().unwrap()).unwrap();
    gh::git(f.dir(), &["mv", from, to]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_lines_changed_on_main_give_a_failing_step_and_a_draft_pr_and_a_rerun_creates_nothing()
{
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    f.switch("main", None);
    f.write(
        "src/Orders.cs",
        &ORDERS.replace(
            "total < Limit; // BUG: drops large orders",
            "total <= Limit && total > 0m; // main's own attempt",
        ),
    );
    f.commit("orders: validate totals");
    f.push_all();
    let main_before = f.remote_rev("refs/heads/main");
    let job = job(&sb, "cherry-pick")
        .input("commits", &fix)
        .input("assignees", "oncall-lead");
    let (job, r) = run(job).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("conflict"));
    assert_eq!(r.output("conflicted-files"), Some("src/Orders.cs"));
    let url = r.output("pull-request-url").unwrap().to_string();
    let error = r.output("error").unwrap();
    assert!(
        error.contains(&url) && error.contains("src/Orders.cs"),
        "{error}"
    );
    assert!(r.error_lines().iter().any(|l| l.contains(&url)));
    // The conflict is committed with its markers on the auto branch.
    let branch = branch_for(&fix);
    let file = f.remote_git(&["show", &format!("{branch}:src/Orders.cs")]);
    assert!(
        file.contains("<<<<<<< main") && file.contains(">>>>>>> "),
        "{file}"
    );
    assert_eq!(f.remote_rev("refs/heads/main"), main_before);
    // A draft PR with the files, the commands, labels and the fallback
    // assignee (the sandbox knows no GitHub user behind the commit e-mail).
    let n = r.output("pull-request-number").unwrap().to_string();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    assert_eq!(pr["draft"], true);
    let body = pr["body"].as_str().unwrap();
    assert!(body.contains("src/Orders.cs") && body.contains(&format!("git switch {branch}")));
    let issue = api_get(&sb, &format!("/repos/contoso/payments/issues/{n}")).await;
    assert_eq!(issue["assignees"][0]["login"], "oncall-lead");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("::notice") && l.contains("assign"))
    );

    // Re-run: finds the PR, creates nothing, still fails with the link.
    let writes_before = github_writes(&sb).len();
    let branch_before = f.remote_rev(&branch);
    let r2 = tokio::task::spawn_blocking(move || job.run_main())
        .await
        .unwrap();
    assert_eq!(r2.code, 1, "{}", r2.all_text());
    assert_eq!(r2.output("result"), Some("existing"));
    assert_eq!(r2.output("pull-request-url"), Some(url.as_str()));
    assert_eq!(
        github_writes(&sb).len(),
        writes_before,
        "{:?}",
        github_writes(&sb)
    );
    assert_eq!(f.remote_rev(&branch), branch_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_file_conflict_is_reported() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    f.switch("hotfix/logo", Some("release/2.4.0"));
    std::fs::write(f.dir().join("assets/logo.bin"), gh::binary(2)).unwrap();
    let fix = f.commit("fix: logo");
    f.switch("main", None);
    std::fs::write(f.dir().join("assets/logo.bin"), gh::binary(3)).unwrap();
    f.commit("brand: new logo");
    f.push_all();
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("commits", &fix)
        .input("fail-on-conflict", "false"))
    .await;
    assert_eq!(r.code, 0, "fail-on-conflict: false {}", r.all_text());
    assert_eq!(r.output("result"), Some("conflict"));
    assert_eq!(r.output("conflicted-files"), Some("assets/logo.bin"));
    assert!(r.stdout.lines().any(|l| l.starts_with("::warning")));
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    assert_eq!(pr["draft"], true);
    assert!(pr["body"].as_str().unwrap().contains("binary"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_hotfix_commits_from_the_hotfix_tag_keep_their_order_and_reapplied_is_noop() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let first = f.hotfix();
    f.write(
        "src/Orders.cs",
        &std::fs::read_to_string(f.dir().join("src/Orders.cs"))
            .unwrap()
            .replace("\"USD\"", "\"USD\"; // large orders logged"),
    );
    let second = f.commit("fix: log large orders");
    gh::git(
        f.dir(),
        &["tag", "-a", "release/2.4.1", "-m", "Release 2.4.1"],
    );
    main_moves_on(&f);
    let (_, r) = run(job(&sb, "cherry-pick").input("hotfix-tag", "release/2.4.1")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(
        r.output("commits"),
        Some(format!("{first},{second}").as_str())
    );
    let branch = branch_for(&second);
    let log = f.remote_git(&["log", "--format=%s|%b", "-2", &branch]);
    let lines: Vec<_> = log.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("fix: log large orders"), "{log}");
    assert!(log.contains(&format!("cherry picked from commit {first}")));
    assert!(log.contains(&format!("cherry picked from commit {second}")));
    assert_eq!(
        f.remote_rev(&format!("{branch}~2")),
        f.remote_rev("refs/heads/main")
    );

    // Once main has the same changes, a pick changes nothing (the first
    // commit alone: its branch has no pull request yet).
    gh::git(
        f.dir(),
        &["merge", "-q", "--no-edit", "hotfix/INC-4521-large-orders"],
    );
    f.push_all();
    let writes = github_writes(&sb).len();
    let main_before = f.remote_rev("refs/heads/main");
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &first)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("already-applied"));
    assert_eq!(f.remote_rev("refs/heads/main"), main_before);
    assert_eq!(github_writes(&sb).len(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_signs_in_pushes_and_opens_the_pr() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    let h = sb.handle();
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("github-token", "")
        .input("app-id", &h.github_app_id().to_string())
        .input("app-private-key", h.github_app_private_key_pem())
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    let paths: Vec<String> = h
        .request_log()
        .into_iter()
        .map(|r| format!("{} {} {}", r.method, r.host, r.path))
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p == "GET api.github.test /repos/contoso/payments/installation")
    );
    assert!(paths.iter().any(
        |p| p.starts_with("POST api.github.test /app/installations/")
            && p.ends_with("/access_tokens")
    ));
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("POST github.test /contoso/payments.git/git-receive-pack"))
    );
    // The minted token was masked before anything else used it.
    let masks = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::add-mask::"))
        .count();
    assert!(masks >= 3, "{}", r.stdout);
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    assert_eq!(pr["user"]["login"], "expedite-sandbox[bot]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_id_or_key_is_a_clear_error() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    let h = sb.handle();
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("app-id", "999999")
        .input("app-private-key", h.github_app_private_key_pem())
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 1);
    let e = r.output("error").unwrap();
    assert!(
        e.contains("refused the App's JWT") && e.contains("app-id"),
        "{e}"
    );
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("app-id", "4242")
        .input(
            "app-private-key",
            expedite_sandbox::github::WRONG_PRIVATE_KEY_PEM,
        )
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 1);
    let e = r.output("error").unwrap();
    assert!(
        e.contains("refused the App's JWT") && e.contains("app-private-key"),
        "{e}"
    );
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("app-id", "4242")
        .input(
            "app-private-key",
            "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----",
        )
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.all_text().contains("input 'app-private-key'"),
        "{}",
        r.all_text()
    );
    // The key is a secret: only the mask line (which the runner consumes)
    // carries it.
    for l in r.all_text().lines().filter(|l| l.contains("not a key")) {
        assert!(l.starts_with("::add-mask::"), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_change_without_the_workflows_permission_says_what_to_grant() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    f.switch("hotfix/ci", Some("release/2.4.0"));
    f.write(".github/workflows/ci.yml", "on: push\njobs: {} # hotfix\n");
    let fix = f.commit("ci: hotfix");
    main_moves_on(&f);
    let h = sb.handle();
    h.github_set_installation_permissions(
        "contoso",
        &[
            ("contents", "write"),
            ("pull_requests", "write"),
            ("issues", "write"),
            ("metadata", "read"),
        ],
    )
    .unwrap();
    let (_, r) = run(job(&sb, "cherry-pick")
        .input("app-id", "4242")
        .input("app-private-key", h.github_app_private_key_pem())
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    let e = r.output("error").unwrap();
    assert!(
        e.contains("`workflows` permission")
            && e.contains(".github/workflows/ci.yml")
            && e.contains("Workflows: Read and write"),
        "{e}"
    );
    assert!(!github_writes(&sb).iter().any(|w| w.ends_with("/pulls")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_commit_text_stays_inert() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    f.switch("hotfix/evil", Some("release/2.4.0"));
    f.write("src/Orders.cs", &ORDERS.replace("USD", "EUR"));
    let fix = f.commit(
        "::set-output name=result::pwned\n\n::error title=fake::injected\n::add-mask::x\n$(touch /tmp/expedite-pwned) `id`",
    );
    main_moves_on(&f);
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    for l in processed_lines(&r.stdout) {
        assert!(
            !l.contains("set-output") && !l.contains("injected") && l != "::add-mask::x",
            "processed: {l}"
        );
    }
    assert!(
        r.stdout.contains("::set-output name=result::pwned"),
        "printed, fenced"
    );
    assert!(!std::path::Path::new("/tmp/expedite-pwned").exists());
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    assert!(pr["title"].as_str().unwrap().contains("::set-output"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hotfix_to_two_targets_opens_a_pull_request_into_each_and_reruns_find_their_own() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    f.switch("release/2.5", Some("release/2.4.0"));
    f.write("VERSION", "2.5\n");
    f.commit("release 2.5");
    main_moves_on(&f);
    let main_before = f.remote_rev("refs/heads/main");
    let release_before = f.remote_rev("refs/heads/release/2.5");

    let to_main = job(&sb, "cherry-pick").input("commits", &fix);
    let (to_main, r1) = run(to_main).await;
    assert_eq!(r1.code, 0, "{}", r1.all_text());
    assert_eq!(r1.output("result"), Some("pull-request"));
    let b1 = r1.output("branch").unwrap().to_string();
    assert_eq!(b1, branch_for(&fix));

    let to_release = job(&sb, "cherry-pick")
        .input("commits", &fix)
        .input("target-branch", "release/2.5");
    let (to_release, r2) = run(to_release).await;
    assert_eq!(r2.code, 0, "{}", r2.all_text());
    assert_eq!(r2.output("result"), Some("pull-request"), "not `existing`");
    let b2 = r2.output("branch").unwrap().to_string();
    assert!(
        b2.starts_with(&format!("auto/cherry-pick-{}-to-release-2.5", &fix[..7])),
        "{b2}"
    );
    assert_ne!(r1.output("pull-request-url"), r2.output("pull-request-url"));

    // Two pull requests, each from its own branch into its own target, and
    // each branch one picked commit on top of its target.
    let pulls = all_pulls(&sb).await;
    assert_eq!(pulls.len(), 2, "{pulls:#?}");
    let mut pairs: Vec<(String, String)> = pulls
        .iter()
        .map(|p| {
            (
                p["head"]["ref"].as_str().unwrap().to_string(),
                p["base"]["ref"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut want = vec![
        (b1.clone(), "main".to_string()),
        (b2.clone(), "release/2.5".to_string()),
    ];
    want.sort();
    assert_eq!(pairs, want);
    assert_eq!(f.remote_rev(&format!("{b1}~1")), main_before);
    assert_eq!(f.remote_rev(&format!("{b2}~1")), release_before);
    for b in [&b1, &b2] {
        let file = f.remote_git(&["show", &format!("{b}:src/Orders.cs")]);
        assert!(file.contains("total > 0m"), "{b}: {file}");
        let msg = f.remote_git(&["log", "-1", "--format=%B", b]);
        assert!(msg.contains(&format!("(cherry picked from commit {fix})")));
    }
    assert_eq!(f.remote_rev("refs/heads/main"), main_before);
    assert_eq!(f.remote_rev("refs/heads/release/2.5"), release_before);

    // A re-run per target finds its own pull request and creates nothing.
    for (job, first) in [(to_main, &r1), (to_release, &r2)] {
        let writes = github_writes(&sb).len();
        let again = tokio::task::spawn_blocking(move || job.run_main())
            .await
            .unwrap();
        assert_eq!(again.code, 0, "{}", again.all_text());
        assert_eq!(again.output("result"), Some("existing"));
        assert_eq!(
            again.output("pull-request-url"),
            first.output("pull-request-url")
        );
        assert_eq!(again.output("branch"), first.output("branch"));
        assert_eq!(github_writes(&sb).len(), writes, "{:?}", github_writes(&sb));
    }
    assert_eq!(all_pulls(&sb).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conflict_pull_requests_own_commands_finish_it_with_a_clean_message() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_changes_the_same_line(&f);
    let main_before = f.remote_rev("refs/heads/main").unwrap();
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("conflict"));
    let branch = branch_for(&fix);
    // The committed conflict carries the message `git cherry-pick -x`
    // writes, nothing that would have to be cleaned up.
    let msg = f.remote_git(&["log", "-1", "--format=%B", &branch]);
    assert!(!msg.lines().any(|l| l.starts_with('#')), "{msg}");

    // A person follows the draft pull request's instructions literally.
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    let commands = gh::resolution_commands(pr["body"].as_str().unwrap());
    assert!(
        commands
            .iter()
            .any(|c| c.join(" ") == "git commit --amend --no-edit"),
        "{commands:?}"
    );
    let home = tempfile::tempdir().unwrap();
    let clone = gh::user_clone(&sb, home.path()).await;
    gh::follow(&sb, &clone, &commands, resolve_orders).await;

    // The finished pick: one commit on main, resolved, with the original
    // message and -x's line, no comment or conflict lines.
    let msg = f.remote_git(&["log", "-1", "--format=%B", &branch]);
    assert!(
        msg.starts_with("fix: accept orders over $10,000 (INC-4521)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("(cherry picked from commit {fix})")),
        "{msg}"
    );
    assert!(
        !msg.lines().any(|l| l.trim_start().starts_with('#')),
        "{msg}"
    );
    assert!(
        !msg.contains("Conflicts") && !msg.contains("markers"),
        "{msg}"
    );
    assert_eq!(f.remote_rev(&format!("{branch}~1")).unwrap(), main_before);
    let file = f.remote_git(&["show", &format!("{branch}:src/Orders.cs")]);
    assert!(
        file.contains("total > 0m") && !file.contains("<<<<<<<"),
        "{file}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_commits_with_the_second_conflicting_list_all_three_and_the_commands_pick_the_third()
{
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    f.switch("hotfix/INC-4600", Some("release/2.4.0"));
    f.write(
        "src/Limits.cs",
        "namespace Contoso.Payments;\n\npublic static class Limits { }\n",
    );
    let first = f.commit("fix: limits in one place");
    f.write(
        "src/Orders.cs",
        &ORDERS.replace(
            "total < Limit; // BUG: drops large orders",
            "total > 0m; // large orders are valid",
        ),
    );
    let second = f.commit("fix: accept orders over $10,000 (INC-4600)");
    f.write(
        "src/Audit.cs",
        "namespace Contoso.Payments;\n\npublic static class Audit { }\n",
    );
    let third = f.commit("fix: audit large orders");
    f.push_all();
    main_changes_the_same_line(&f);
    let main_before = f.remote_rev("refs/heads/main").unwrap();

    let (_, r) = run(job(&sb, "cherry-pick")
        .input("commits", &format!("{first},{second},{third}"))
        .input("fail-on-conflict", "false"))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("conflict"));
    assert_eq!(r.output("conflicted-files"), Some("src/Orders.cs"));
    let branch = branch_for(&third);
    assert_eq!(r.output("branch"), Some(branch.as_str()));

    // The body names every commit of the hotfix with its state.
    let n = r.output("pull-request-number").unwrap();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    let title = pr["title"].as_str().unwrap();
    assert_eq!(
        title,
        "[conflict] Cherry-pick to main: fix: limits in one place (+2 more)"
    );
    let body = pr["body"].as_str().unwrap();
    let row = |sha: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("| {} |", &sha[..12])))
            .unwrap_or_else(|| panic!("no row for {sha} in:\n{body}"))
            .to_string()
    };
    assert!(row(&first).contains("limits in one place") && row(&first).ends_with("| picked |"));
    assert!(row(&second).contains("INC-4600") && row(&second).ends_with("| conflict |"));
    let third_row = row(&third);
    assert!(
        third_row.contains("audit large orders") && third_row.contains("not picked"),
        "{third_row}"
    );
    let commands = gh::resolution_commands(body);
    let pick_third = format!("git cherry-pick -x {third}");
    assert!(
        commands.iter().any(|c| c.join(" ") == pick_third),
        "{commands:?}"
    );
    // The step summary lists them too.
    assert!(r.summary.contains(&third[..12]), "{}", r.summary);

    // Following the commands literally finishes the whole hotfix.
    let home = tempfile::tempdir().unwrap();
    let clone = gh::user_clone(&sb, home.path()).await;
    gh::follow(&sb, &clone, &commands, resolve_orders).await;
    assert_eq!(f.remote_rev(&format!("{branch}~3")).unwrap(), main_before);
    let log = f.remote_git(&["log", "--format=%B%x00", "-3", &branch]);
    for sha in [&first, &second, &third] {
        assert!(
            log.contains(&format!("(cherry picked from commit {sha})")),
            "{log}"
        );
    }
    assert!(!log.lines().any(|l| l.starts_with('#')), "{log}");
    let tree = f.remote_git(&["ls-tree", "-r", "--name-only", &branch]);
    assert!(
        tree.contains("src/Audit.cs") && tree.contains("src/Limits.cs"),
        "{tree}"
    );
}

/// Fails the next `times` pull request creations with 502.
fn pulls_answer_502(sb: &expedite_sandbox::Sandbox, times: u32) {
    sb.handle()
        .add_fault(
            FaultSpec::new(FaultKind::Status { status: 502 })
                .host("api.github.test")
                .method("POST")
                .path_prefix("/repos/contoso/payments/pulls")
                .times(times),
        )
        .unwrap();
}

/// The statuses the sandbox answered the pull request creations with, in
/// order (0: no answer, the connection was closed).
fn creations(sb: &expedite_sandbox::Sandbox) -> Vec<u16> {
    sb.handle()
        .request_log()
        .into_iter()
        .filter(|r| {
            r.host == "api.github.test"
                && r.method == "POST"
                && r.path == "/repos/contoso/payments/pulls"
        })
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_to_the_pull_request_creation_is_read_back_and_sent_once_more() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    pulls_answer_502(&sb, 1);
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    assert_eq!(creations(&sb), [502, 201], "{:?}", github_writes(&sb));
    let pulls = all_pulls(&sb).await;
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["head"]["ref"], branch_for(&fix).as_str());
    assert_eq!(pulls[0]["html_url"].as_str(), r.output("pull-request-url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_502s_say_the_branch_is_pushed_and_a_rerun_opens_exactly_one_pull_request() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    pulls_answer_502(&sb, 2);
    let job = job(&sb, "cherry-pick").input("commits", &fix);
    let (job, r) = run(job).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    let branch = branch_for(&fix);
    let e = r.output("error").unwrap();
    let first_line = e.lines().next().unwrap();
    assert!(
        first_line.contains("did not open the pull request")
            && first_line.contains(&format!("the branch {branch} is pushed"))
            && first_line.contains("running the step again is safe")
            && first_line.contains("502"),
        "{e}"
    );
    assert_eq!(creations(&sb), [502, 502]);
    assert!(all_pulls(&sb).await.is_empty());
    assert!(f.remote_rev(&branch).is_some(), "the branch is pushed");
    assert!(sb.handle().faults().is_empty(), "both faults fired");

    let again = tokio::task::spawn_blocking(move || job.run_main())
        .await
        .unwrap();
    assert_eq!(again.code, 0, "{}", again.all_text());
    assert_eq!(again.output("result"), Some("pull-request"));
    assert_eq!(creations(&sb), [502, 502, 201]);
    let pulls = all_pulls(&sb).await;
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["head"]["ref"], branch.as_str());
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert_eq!(
        f.remote_rev(&format!("{branch}~1")),
        f.remote_rev("refs/heads/main")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_applied_whose_answer_is_lost_is_found_not_sent_again() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    gh::control_post(
        &sb,
        "/_sandbox/github/drop-answers",
        serde_json::json!({
            "method": "POST",
            "path_prefix": "/repos/contoso/payments/pulls",
            "times": 1,
        }),
    )
    .await;
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("pull-request"));
    // Sent once, applied, never answered: read back, not sent again.
    assert_eq!(creations(&sb), [0], "{:?}", github_writes(&sb));
    assert!(
        r.all_text().contains("although its answer failed"),
        "{}",
        r.all_text()
    );
    let pulls = all_pulls(&sb).await;
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["html_url"].as_str(), r.output("pull-request-url"));
    // The labels went to the pull request GitHub did open.
    assert_eq!(pulls[0]["labels"].as_array().unwrap().len(), 2);
}

/// Someone moved the pick's pull request to another base: a re-run does not
/// push over its branch or open a second one; it names the pull request and
/// says how to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_moved_to_another_base_is_left_alone_and_the_step_says_why() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    main_moves_on(&f);
    f.switch("develop", Some("main"));
    f.push_all();
    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let n = r.output("pull-request-number").unwrap().to_owned();
    let url = r.output("pull-request-url").unwrap().to_owned();
    let branch = branch_for(&fix);
    let (status, pr) = api_send(
        &sb,
        reqwest::Method::PATCH,
        &format!("/repos/contoso/payments/pulls/{n}"),
        Some(serde_json::json!({"base": "develop"})),
    )
    .await;
    assert_eq!(status, 200, "{pr}");
    assert_eq!(pr["base"]["ref"], "develop");
    let head = f.remote_rev(&format!("refs/heads/{branch}"));
    let pulls = all_pulls(&sb).await.len();
    let writes = github_writes(&sb).len();

    let (_, r) = run(job(&sb, "cherry-pick").input("commits", &fix)).await;
    assert_ne!(r.code, 0, "{}", r.all_text());
    let text = r.all_text();
    assert!(
        text.contains(&format!(
            "the branch {branch} is the head of open pull request {url} into develop, not into main"
        )) && text.contains("change that pull request's base back to main or close it"),
        "{text}"
    );
    assert_eq!(
        f.remote_rev(&format!("refs/heads/{branch}")),
        head,
        "the branch was not pushed over"
    );
    assert_eq!(all_pulls(&sb).await.len(), pulls, "no second pull request");
    assert_eq!(
        github_writes(&sb).len(),
        writes,
        "nothing written to GitHub"
    );
}
