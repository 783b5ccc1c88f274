#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! `start` and `tag` through the built binary against the sandbox GitHub:
//! the hotfix branch from the release tag, the nearest tags when it is
//! missing, ref-safe inputs, and a release tag that is never moved.

mod common;
#[path = "common/github.rs"]
mod gh;

use gh::{Fixture, github_writes, job, run};

async fn sandbox() -> expedite_sandbox::Sandbox {
    expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_branches_from_the_release_tag_and_a_rerun_changes_nothing() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    // main has moved on: the branch must start from the tag, not main.
    f.write("README.md", "# payments\n\nunreleased work\n");
    f.commit("unreleased");
    f.push_all();
    let release = f.remote_rev("release/2.4.0^{commit}").unwrap();
    let j = job(&sb, "start")
        .input("incident", "INC-4521")
        .input("slug", "large-orders")
        .input("version", "2.4.0");
    let (j, r) = run(j).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("created"));
    assert_eq!(r.output("branch"), Some("hotfix/INC-4521-large-orders"));
    assert_eq!(r.output("base-tag"), Some("release/2.4.0"));
    assert_eq!(r.output("next-version"), Some("2.4.1"));
    assert_eq!(
        f.remote_rev("refs/heads/hotfix/INC-4521-large-orders"),
        Some(release)
    );
    let writes = github_writes(&sb).len();
    let r = tokio::task::spawn_blocking(move || j.run_main())
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("already-exists"));
    // The re-run tried the create once (refused) and created nothing.
    assert!(github_writes(&sb).len() <= writes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_defaults_to_the_highest_release_tag() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    f.write("README.md", "2.4.10\n");
    f.commit("2.4.10");
    gh::git(f.dir(), &["tag", "release/2.4.10"]);
    f.push_all();
    let (_, r) = run(job(&sb, "start").input("incident", "INC-9")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(
        r.output("base-tag"),
        Some("release/2.4.10"),
        "semver order, not text"
    );
    assert_eq!(r.output("branch"), Some("hotfix/INC-9"));
    assert_eq!(r.output("next-version"), Some("2.4.11"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tag_lists_the_nearest_and_bad_names_are_refused() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    for v in ["2.3.0", "2.4.2", "3.0.0"] {
        gh::git(f.dir(), &["tag", &format!("release/{v}")]);
    }
    f.push_all();
    let (_, r) = run(job(&sb, "start")
        .input("incident", "INC-4521")
        .input("version", "2.4.1"))
    .await;
    assert_eq!(r.code, 1);
    let e = r.output("error").unwrap();
    assert!(
        e.contains("release/2.4.1 does not exist")
            && e.contains("the nearest are: release/2.4.0, release/2.4.2"),
        "{e}"
    );
    assert!(github_writes(&sb).is_empty());

    let (_, r) = run(job(&sb, "start")
        .input("incident", "INC-1;rm -rf ~")
        .input("slug", "--force"))
    .await;
    assert_eq!(r.code, 1);
    let text = r.all_text();
    assert!(
        text.contains("input 'incident'") && text.contains("input 'slug'"),
        "{text}"
    );
    assert!(github_writes(&sb).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_is_created_rerun_is_a_noop_and_it_is_never_moved() {
    let sb = sandbox().await;
    let f = Fixture::new(&sb);
    let fix = f.hotfix();
    let j = job(&sb, "tag")
        .input("version", "2.4.1")
        .input("ref", "hotfix/INC-4521-large-orders");
    let (j, r) = run(j).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("created"));
    assert_eq!(r.output("tag"), Some("release/2.4.1"));
    assert_eq!(r.output("commit"), Some(fix.as_str()));
    assert_eq!(
        f.remote_git(&["cat-file", "-t", "refs/tags/release/2.4.1"])
            .trim(),
        "tag",
        "annotated"
    );
    assert_eq!(
        f.remote_rev("release/2.4.1^{commit}").as_deref(),
        Some(fix.as_str())
    );
    let tag_obj = f.remote_rev("refs/tags/release/2.4.1");

    let writes = github_writes(&sb).len();
    let r = tokio::task::spawn_blocking(move || j.run_main())
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("already-exists"));
    assert_eq!(github_writes(&sb).len(), writes, "nothing created");

    let release = f.remote_rev("release/2.4.0^{commit}").unwrap();
    let (_, r) = run(job(&sb, "tag")
        .input("version", "2.4.1")
        .input("ref", &release))
    .await;
    assert_eq!(r.code, 1);
    let e = r.output("error").unwrap();
    assert!(e.contains("never moved") && e.contains(&fix), "{e}");
    assert_eq!(f.remote_rev("refs/tags/release/2.4.1"), tag_obj);
}
