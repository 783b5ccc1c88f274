#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Untrusted text renders inert everywhere expedite writes markdown: every
//! field a person, a repository or a server fills (test names and
//! messages, a waiver, a rollback reason, a server's error message, an
//! incident's title, update, root cause and action items, a command's
//! output, an input's value) is fed each payload below — a link, an image,
//! raw HTML, mentions and autolinks, emphasis, a table break, backtick
//! fences, several lines — through the built binary, and what it wrote (the
//! job summary, issue bodies and comments) is rendered by GitHub's own
//! renderer (cmark-gfm, through Python's `cmarkgfm`).
//!
//! Inert means: the rendered HTML has exactly the elements the same writer
//! produces for plain words (no link, image, script, emphasis, heading or
//! extra table cell came from the payload), and the payload is still shown.
//!
//! Needs `EXPEDITE_PYTHON` (default `python3`) with `cmarkgfm`; skipped
//! without it unless `EXPEDITE_REQUIRE_TOOLS` is set (`.ci/run` sets it).

mod common;
#[path = "common/github.rs"]
mod gh;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Job;
use expedite_sandbox::{FaultKind, FaultSpec, Sandbox, SandboxConfig};
use gh::{api_get, run};

/// Each payload carries a marker (`zq1`…) that must still be visible.
const PAYLOADS: &[(&str, &str)] = &[
    ("zq1", "[Approve zq1](https://evil.example/approve)"),
    ("zq2", "![zq2](https://evil.example/pixel.png)"),
    (
        "zq3",
        "<img src=x onerror=alert(1)> zq3 <script>alert(1)</script>",
    ),
    (
        "zq4",
        "@contoso/oncall zq4 see https://evil.example/x www.evil.example a@b.example #12",
    ),
    ("zq5", "**zq5** _em_ ~~gone~~ <!-- hidden -->"),
    ("zq6", "zq6 | breaks | the table \\| too"),
    ("zq7", "``` zq7 ` `` ~~~"),
    (
        "zq8",
        "line zq8\n# heading\n- [ ] task\n<details><summary>x",
    ),
];

/// What plain words look like through the same writer.
const PLAIN: (&str, &str) = ("zq0", "plain words zq0");

/// Renders markdown documents with GitHub's cmark-gfm (raw HTML kept, so
/// any that came through shows); `None` when the renderer is missing.
fn render(docs: &[String]) -> Option<Vec<String>> {
    let python = std::env::var("EXPEDITE_PYTHON").unwrap_or_else(|_| "python3".into());
    const SCRIPT: &str = "import sys, json, cmarkgfm\n\
        from cmarkgfm.cmark import Options\n\
        docs = json.load(sys.stdin)\n\
        json.dump([cmarkgfm.github_flavored_markdown_to_html(d, options=Options.CMARK_OPT_UNSAFE) for d in docs], sys.stdout)\n";
    let child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return missing(&format!("{python}: {e}")),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(docs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return missing(&String::from_utf8_lossy(&out.stderr));
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn missing(why: &str) -> Option<Vec<String>> {
    assert!(
        std::env::var("EXPEDITE_REQUIRE_TOOLS").is_err(),
        "cmarkgfm is required (EXPEDITE_REQUIRE_TOOLS): {why}"
    );
    println!("SKIPPED: no cmarkgfm ({why}); set EXPEDITE_PYTHON to a Python with cmarkgfm");
    None
}

/// Element names and how often each opens, ignoring `code` and `br` (a
/// payload of several lines is several code spans, by design).
fn elements(html: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (i, _) in html.match_indices('<') {
        let name: String = html[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() || name == "code" || name == "br" {
            continue;
        }
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

/// The visible text: tags dropped, the entities cmark-gfm writes decoded.
fn visible(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// One writer's documents for plain words and for each payload: the
/// documents rendered with a payload have the plain documents' elements,
/// and show the payload's marker.
fn assert_inert(writer: &str, plain: &[String], attacked: &[(&str, Vec<String>)]) -> bool {
    let mut docs: Vec<String> = plain.to_vec();
    for (_, d) in attacked {
        docs.extend(d.iter().cloned());
    }
    let Some(html) = render(&docs) else {
        return false;
    };
    let (plain_html, rest) = html.split_at(plain.len());
    // Every table has a header a person can read: GitHub renders `| | |`
    // as an empty header row above a key/value table.
    for (i, h) in plain_html.iter().enumerate() {
        let mut at = 0;
        while let Some(start) = h[at..].find("<thead>") {
            let start = at + start;
            let end = start + h[start..].find("</thead>").unwrap();
            assert!(
                !visible(&h[start..end]).trim().is_empty(),
                "{writer}, document {i}: a table with an empty header row\n{}",
                plain[i]
            );
            at = end;
        }
    }
    let mut rest = rest.iter();
    for (marker, d) in attacked {
        for (i, doc) in d.iter().enumerate() {
            let h = rest.next().unwrap();
            assert_eq!(
                elements(h),
                elements(&plain_html[i]),
                "{writer}, payload {marker}, document {i}: the payload changed what renders\n--- markdown\n{doc}\n--- html\n{h}"
            );
            assert!(
                visible(h).contains(marker),
                "{writer}, payload {marker}, document {i}: the payload is not shown\n{h}"
            );
        }
    }
    true
}

fn payloads() -> impl Iterator<Item = (&'static str, &'static str)> {
    PAYLOADS.iter().copied()
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
}

/// The gate: a failing critical test whose name and message are the
/// payload, and the security waiver's reason.
fn gate_summary(text: &str) -> String {
    let job = Job::new();
    let junit = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="payments" tests="2" failures="1">
  <testcase classname="Payments" name="{name}"><failure message="{name}">{body}</failure></testcase>
  <testcase classname="Payments" name="passes"/>
</testsuite>
"#,
        name = xml_attr(text),
        body = xml_attr(text)
    );
    std::fs::write(job.workspace().join("junit.xml"), junit).unwrap();
    let r = job
        .input("command", "gate")
        .input("results", "junit.xml")
        .input("security-waiver", text)
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    r.summary
}

#[test]
fn the_gate_summary_shows_test_names_messages_and_the_waiver_as_text() {
    let plain = vec![gate_summary(PLAIN.1)];
    let attacked: Vec<_> = payloads()
        .map(|(m, p)| (m, vec![gate_summary(p)]))
        .collect();
    assert_inert("gate", &plain, &attacked);
}

/// An input's value, echoed in the "did not start" table.
fn invalid_input_summary(text: &str) -> String {
    let r = Job::new()
        .input("command", "gate")
        .input("results", "junit.xml")
        .input("min-critical-tests", text)
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    r.summary
}

#[test]
fn the_invalid_input_table_shows_the_value_as_text() {
    let plain = vec![invalid_input_summary(PLAIN.1)];
    let attacked: Vec<_> = payloads()
        .map(|(m, p)| (m, vec![invalid_input_summary(p)]))
        .collect();
    assert_inert("invalid input", &plain, &attacked);
}

/// A manifest's command service fails, printing the payload last.
fn multi_summary(text: &str) -> String {
    let job = Job::new();
    let ws = job.workspace();
    std::fs::write(ws.join("said.txt"), text).unwrap();
    std::fs::write(
        ws.join("expedite.yml"),
        "version: 1\nservices:\n  - name: schema\n    platform: command\n    deploy: 'cat said.txt >&2; echo >&2; tr \"\\\\n\" \" \" < said.txt >&2; exit 3'\n    verify: 'true'\n",
    )
    .unwrap();
    let r = job
        .input("command", "deploy")
        .input("manifest", "expedite.yml")
        .input("expected-version", "2.4.1")
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    r.summary
}

#[test]
fn the_multi_service_summary_shows_what_a_command_printed_as_text() {
    let plain = vec![multi_summary(PLAIN.1)];
    let attacked: Vec<_> = payloads()
        .map(|(m, p)| (m, vec![multi_summary(p)]))
        .collect();
    assert_inert("multi-service deploy", &plain, &attacked);
}

async fn sandbox() -> Sandbox {
    let sb = expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(200),
        build_duration: Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    common::seed_repo(&sb, "contoso", "payments");
    sb
}

/// An incident opened with the payload as title, updated with it, resolved
/// with it as root cause and action item; then a rollback whose reason is
/// the payload fails on a server error whose message is the payload (as
/// does a deploy before it), and both record themselves on the incident. Returns every document written: the
/// summaries, the issue's body and its comments.
async fn incident_and_rollback(sb: &Sandbox, id: &str, text: &str) -> Vec<String> {
    let incident = |action: &str| {
        gh::job(sb, "incident")
            .input("incident", id)
            .input("incident-action", action)
            .env("GITHUB_REPOSITORY", "contoso/payments")
    };
    let mut docs = Vec::new();
    let (_, r) = run(incident("create")
        .input("severity", "sev2")
        .input("title", text))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    let number = r.output("incident-number").unwrap().to_string();
    docs.push(r.summary);
    let (_, r) = run(incident("update").input("message", text)).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    docs.push(r.summary);

    // The rollback's first write is refused with the payload as message.
    let s = sb.settings();
    let arm_host = url::Url::parse(&s.arm_endpoint)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let fault = sb
        .handle()
        .add_fault(
            FaultSpec::new(FaultKind::Error {
                status: 400,
                message: text.to_string(),
            })
            .host(&arm_host),
        )
        .unwrap();
    let deploy = Job::new();
    std::fs::write(
        deploy.workspace().join("app.zip"),
        expedite_sandbox::demo_package("2.4.1").unwrap(),
    )
    .unwrap();
    let (_, r) = run(deploy
        .input("command", "deploy")
        .azure_of(&s)
        .github_of(sb)
        .env("GITHUB_REPOSITORY", "contoso/payments")
        .input("app-name", "app-contoso-payments")
        .input("package", "app.zip")
        .input("expected-version", "2.4.1")
        .input("incident", id))
    .await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    docs.push(r.summary);
    let (_, r) = run(Job::new()
        .input("command", "rollback")
        .azure_of(&s)
        .github_of(sb)
        .env("GITHUB_REPOSITORY", "contoso/payments")
        .input("services", "app-contoso-payments")
        .input("to-version", "2.4.0")
        .input("verify-requests", "5")
        .input("incident", id)
        .input("reason", text))
    .await;
    sb.handle().clear_faults();
    let _ = fault;
    assert_eq!(r.code, 1, "{}", r.all_text());
    docs.push(r.summary);

    let (_, r) = run(incident("resolve").input("root-cause", text).input(
        "action-items",
        &format!("{}\nplain item", text.replace('\n', " ")),
    ))
    .await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    docs.push(r.summary);

    let issue = api_get(sb, &format!("/repos/contoso/payments/issues/{number}")).await;
    docs.push(issue["body"].as_str().unwrap().to_string());
    let comments = api_get(
        sb,
        &format!("/repos/contoso/payments/issues/{number}/comments"),
    )
    .await;
    for c in comments.as_array().unwrap() {
        docs.push(c["body"].as_str().unwrap().to_string());
    }
    docs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_rollbacks_and_server_errors_show_as_text_in_summaries_and_issues() {
    let sb = sandbox().await;
    let plain = incident_and_rollback(&sb, "INC-100", PLAIN.1).await;
    let mut attacked = Vec::new();
    for (i, (m, p)) in payloads().enumerate() {
        let docs = incident_and_rollback(&sb, &format!("INC-{}", 101 + i), p).await;
        assert_eq!(docs.len(), plain.len(), "{m}: {docs:#?}");
        attacked.push((m, docs));
    }
    // The server's message reached the deploy and rollback summaries and
    // the timeline.
    assert!(
        plain[2].contains("BadRequest: plain words zq0"),
        "{}",
        plain[2]
    );
    assert!(
        plain[3].contains("BadRequest: plain words zq0"),
        "{}",
        plain[3]
    );
    assert!(plain.iter().any(|d| d.contains("### Rollback: failed")));
    assert_inert("incident and rollback", &plain, &attacked);
    sb.shutdown().await;
}

/// A hotfix whose commit subject is the payload conflicts on `main` in a
/// file whose name is the payload too (both add it): the step summary and
/// the draft pull request's body.
async fn cherry_pick_docs(text: &str) -> Vec<String> {
    let sb = expedite_sandbox::start(SandboxConfig::default())
        .await
        .unwrap();
    let f = gh::Fixture::new(&sb);
    let name = format!("notes/{text}");
    f.switch("main", None);
    f.write(&name, "main's note\n");
    f.commit("notes: main's");
    f.push_all();
    f.switch("hotfix/notes", Some("release/2.4.0"));
    f.write(&name, "the hotfix's note\n");
    let fix = f.commit(text);
    f.push_all();
    let (_, r) = run(gh::job(&sb, "cherry-pick")
        .env("GITHUB_REPOSITORY", "contoso/payments")
        .input("commits", &fix))
    .await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("conflict"), "{}", r.all_text());
    let n = r.output("pull-request-number").unwrap().to_string();
    let pr = api_get(&sb, &format!("/repos/contoso/payments/pulls/{n}")).await;
    let body = pr["body"].as_str().unwrap().to_string();
    sb.shutdown().await;
    vec![r.summary, body]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cherry_pick_summaries_and_pull_requests_show_subjects_and_file_names_as_text() {
    let plain = cherry_pick_docs(PLAIN.1).await;
    let mut attacked = Vec::new();
    for (m, p) in payloads() {
        attacked.push((m, cherry_pick_docs(p).await));
    }
    assert!(plain[1].contains("**To resolve**"), "{}", plain[1]);
    assert_inert("cherry-pick", &plain, &attacked);
}

/// The writers show words like `2.4.1`, `rolled-back` or `200 × 2.4.1`
/// plain, and anything else as code. A sweep of 400 generated strings —
/// words we write plain and their near misses (`www.`, `1. `, `_`, `@`,
/// `:`, leading dashes) — each rendered in a table cell, in a sentence and
/// at the start of a line: none adds an element, each reads back as
/// written.
#[test]
fn plain_words_and_their_near_misses_render_as_themselves() {
    use expedite::report::{md_cell, md_code};
    const PIECES: &[&str] = &[
        "2.4.1",
        "rolled-back",
        "200",
        "×",
        " ",
        "%",
        "(s)",
        "/",
        ",",
        ".",
        "-",
        "1. ",
        "1)",
        "www.",
        "evil",
        "example",
        "_x_",
        "@org",
        "a:b",
        "#12",
        "*",
        "~",
        "[x]",
        "(y)",
        "!",
        "<b>",
        "&amp;",
        "`",
        "|",
        "\\",
        "é",
        "http",
        "://",
    ];
    let mut seed: u64 = 0x5eed_1234;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let mut words = Vec::new();
    while words.len() < 400 {
        let len = 1 + next(5);
        let w: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
        words.push(w);
    }
    let doc = |w: &str| {
        format!(
            "| k | v |\n|---|---|\n| x | {} |\n\nSee {} here.\n\n{}\n",
            md_cell(w),
            md_code(w),
            md_code(w)
        )
    };
    let mut docs = vec![doc("zq0")];
    docs.extend(words.iter().map(|w| doc(w)));
    let Some(html) = render(&docs) else {
        return;
    };
    let plain_count = words
        .iter()
        .filter(|w| !md_code(w).starts_with('`'))
        .count();
    assert!(
        plain_count > 20,
        "the sweep hit the plain path {plain_count} times"
    );
    for (w, h) in words.iter().zip(&html[1..]) {
        assert_eq!(
            elements(h),
            elements(&html[0]),
            "{w:?} changed what renders\n{}\n{h}",
            doc(w)
        );
        let shown = w.trim();
        assert!(
            visible(h).matches(shown).count() >= 3,
            "{w:?} is not shown as written three times\n{h}"
        );
    }
}
