//! Azure Static Web Apps through the built binary and the sandbox: the
//! built site's zip goes to a preview environment, is checked there,
//! promoted by deploying the same zip to production, and rolled back by
//! deploying the previous version's zip. What the request log proves was
//! and was not done, and what is refused before anything runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use common::{Job, StepResult};
use expedite_sandbox::{FaultKind, FaultSpec, SandboxConfig};

const SITE: &str = "swa-contoso-store";
/// Where the sandbox's scenario keeps the store's builds.
const ZIPS: &str = "https://stcontosobuilds.blob.core.test/store/store-${version}.zip";

async fn sandbox() -> expedite_sandbox::Sandbox {
    expedite_sandbox::start(SandboxConfig {
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// A job deploying the store's `version` from its zip.
fn job(sb: &expedite_sandbox::Sandbox, version: &str) -> Job {
    Job::new()
        .input("command", "deploy")
        .azure_of(&sb.settings())
        .input("lock", "none")
        .input("platform", "static-web-apps")
        .input("app-name", SITE)
        .input("package", ZIPS)
        .input("expected-version", version)
        .input("check-interval", "200ms")
        .input("verify-window", "1s")
        .input("verify-interval", "250ms")
        .input("verify-requests", "50")
}

async fn run(job: Job) -> (Job, StepResult) {
    tokio::task::spawn_blocking(move || {
        let r = job.run_main();
        (job, r)
    })
    .await
    .unwrap()
}

/// ARM changes, in order (method and path, query left out).
fn arm_writes(sb: &expedite_sandbox::Sandbox) -> Vec<String> {
    sb.handle()
        .request_log()
        .into_iter()
        .filter(|r| r.host.starts_with("management.") && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path.split('?').next().unwrap_or("")))
        .collect()
}

/// The next `times` POSTs of the promotion (the zip deployment to
/// production) meet `kind`.
fn fault_the_promotion(sb: &expedite_sandbox::Sandbox, kind: FaultKind, times: u32) {
    let s = sb.settings();
    sb.handle()
        .add_fault(FaultSpec {
            host: Some("management.azure.test".into()),
            method: Some("POST".into()),
            path_prefix: Some(format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites/{SITE}/zipdeploy",
                s.subscription_id, s.resource_group
            )),
            times: Some(times),
            ..FaultSpec::new(kind)
        })
        .unwrap();
}

fn production_deploys(sb: &expedite_sandbox::Sandbox) -> usize {
    arm_writes(sb)
        .iter()
        .filter(|w| {
            w.starts_with("POST ") && w.ends_with(&format!("/staticSites/{SITE}/zipdeploy"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_is_checked_in_its_preview_environment_promoted_and_rolled_back() {
    let sb = sandbox().await;
    let h = sb.handle();
    assert_eq!(
        h.static_site_version(SITE, "default").as_deref(),
        Some("2.4.0")
    );

    let (_job, r) = run(job(&sb, "2.4.1")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(r.output("previous-version"), Some("2.4.0"));
    assert_eq!(
        h.static_site_version(SITE, "default").as_deref(),
        Some("2.4.1")
    );
    assert_eq!(
        h.static_site_version(SITE, "staging").as_deref(),
        Some("2.4.1")
    );
    // The preview environment first, then production, once each.
    let writes = arm_writes(&sb);
    let staged = writes
        .iter()
        .position(|w| w.ends_with(&format!("/staticSites/{SITE}/builds/staging/zipdeploy")))
        .unwrap_or_else(|| panic!("never staged: {writes:#?}"));
    let promoted = writes
        .iter()
        .position(|w| w.ends_with(&format!("/staticSites/{SITE}/zipdeploy")))
        .unwrap_or_else(|| panic!("never promoted: {writes:#?}"));
    assert!(staged < promoted, "{writes:#?}");
    assert_eq!(production_deploys(&sb), 1, "{writes:#?}");
    assert!(
        r.summary
            .contains("| staged in | preview environment staging |"),
        "{}",
        r.summary
    );

    // The one-click rollback: back to what production served before the
    // promotion (recorded on the site), by deploying that version's zip.
    let rollback = Job::new()
        .input("command", "rollback")
        .azure_of(&sb.settings())
        .input("lock", "none")
        .input("platform", "static-web-apps")
        .input("services", SITE)
        .input("package", ZIPS)
        .input("reason", "store checkout broken")
        .input("verify-requests", "20");
    let (_job, rb) = run(rollback).await;
    assert_eq!(rb.code, 0, "{}", rb.all_text());
    assert_eq!(
        h.static_site_version(SITE, "default").as_deref(),
        Some("2.4.0")
    );
    assert_eq!(production_deploys(&sb), 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_failing_in_its_preview_environment_never_reaches_production() {
    let sb = sandbox().await;
    // The scenario's bad build: its health endpoint answers 503.
    let (_job, r) = run(job(&sb, "2.4.2-bad")).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert_eq!(
        r.output("result"),
        Some("failed-before-change"),
        "{}",
        r.all_text()
    );
    assert_eq!(
        sb.handle().static_site_version(SITE, "default").as_deref(),
        Some("2.4.0")
    );
    assert_eq!(production_deploys(&sb), 0, "{:#?}", arm_writes(&sb));
    // The preview environment keeps the rejected build for inspection
    // (the next deploy reuses it: environments are few).
    assert_eq!(
        sb.handle().static_site_version(SITE, "staging").as_deref(),
        Some("2.4.2-bad")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_azure_cannot_fetch_fails_before_production_and_says_where() {
    let sb = sandbox().await;
    let (_job, r) = run(job(&sb, "9.9.9")).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        r.all_text()
            .contains("https://stcontosobuilds.blob.core.test/store/store-9.9.9.zip"),
        "{}",
        r.all_text()
    );
    assert_eq!(production_deploys(&sb), 0);
    assert_eq!(
        sb.handle().static_site_version(SITE, "default").as_deref(),
        Some("2.4.0")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sas_token_in_the_zip_url_is_never_printed() {
    let sb = sandbox().await;
    let secret = "sig=Zm9vYmFyc2VjcmV0";
    let url = format!("{ZIPS}?sv=2024-11-04&sp=r&{secret}");
    // A failing deploy prints the most (the URL in the error).
    let (job, r) = run(job(&sb, "9.9.9").input("package", &url)).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        r.all_text().contains("store-9.9.9.zip?…"),
        "{}",
        r.all_text()
    );
    let audit = std::fs::read_to_string(r.output("audit-log").unwrap()).unwrap_or_default();
    for (what, text) in [
        ("stdout", r.stdout.as_str()),
        ("stderr", r.stderr.as_str()),
        ("summary", r.summary.as_str()),
        ("audit log", audit.as_str()),
    ] {
        assert!(
            !text.contains(secret),
            "{what} shows the SAS token:\n{text}"
        );
    }
    drop(job);
    // Azure's own error echoing the URL, SAS and all: masked there too.
    let s = sb.settings();
    sb.handle()
        .add_fault(FaultSpec {
            host: Some("management.azure.test".into()),
            method: Some("POST".into()),
            path_prefix: Some(format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites/{SITE}/builds/staging/zipdeploy",
                s.subscription_id, s.resource_group
            )),
            times: Some(1),
            ..FaultSpec::new(FaultKind::Error {
                status: 400,
                message: format!(
                    "The appZipUrl {} could not be read.",
                    url.replace("${version}", "2.4.1")
                ),
            })
        })
        .unwrap();
    let (echoed, r) = run(self::job(&sb, "2.4.1").input("package", &url)).await;
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        r.all_text().contains("could not be read"),
        "{}",
        r.all_text()
    );
    for (what, text) in [
        ("stdout", r.stdout.as_str()),
        ("stderr", r.stderr.as_str()),
        ("summary", r.summary.as_str()),
    ] {
        assert!(
            !text.contains(secret),
            "{what} shows the SAS token:\n{text}"
        );
    }
    drop(echoed);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_control_plane_still_deploys_to_production_once() {
    let sb = sandbox().await;
    fault_the_promotion(
        &sb,
        FaultKind::Throttle {
            retry_after_secs: 1,
        },
        2,
    );
    let (_job, r) = run(job(&sb, "2.4.1")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(
        sb.handle().static_site_version(SITE, "default").as_deref(),
        Some("2.4.1")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_promotion_is_settled_by_reading_production() {
    let sb = sandbox().await;
    fault_the_promotion(&sb, FaultKind::DropConnection, 1);
    let (_job, r) = run(job(&sb, "2.4.1")).await;
    // Whatever the lost answer hid, the run reads production and says
    // what it serves: never a second blind deployment.
    let prod = sb.handle().static_site_version(SITE, "default");
    match r.output("result") {
        Some("promoted") => assert_eq!(prod.as_deref(), Some("2.4.1")),
        Some("failed-before-change") => {
            assert_eq!(prod.as_deref(), Some("2.4.0"), "{}", r.all_text());
        }
        other => panic!("{other:?}: {}", r.all_text()),
    }
    assert!(production_deploys(&sb) <= 1, "{:#?}", arm_writes(&sb));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_that_happened_but_whose_answer_was_lost_is_not_sent_again() {
    let sb = sandbox().await;
    fault_the_promotion(&sb, FaultKind::AnswerLost, 1);
    let (_job, r) = run(job(&sb, "2.4.1")).await;
    // Azure deployed it; expedite could not know until it read production.
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("promoted"));
    assert_eq!(
        sb.handle().static_site_version(SITE, "default").as_deref(),
        Some("2.4.1")
    );
    assert_eq!(production_deploys(&sb), 1, "{:#?}", arm_writes(&sb));
    sb.shutdown().await;
}

/// Every way the promotion's answer can go wrong — throttled, a server
/// error before or after the work, a dropped connection, a lost answer,
/// a slow one — ends with production on exactly one version that the
/// result names: `promoted` only when production serves 2.4.1,
/// `failed-before-change` only when it still serves 2.4.0, never anything
/// else, and never more than one accepted deployment to production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_the_promotion_ends_on_one_version_the_result_names() {
    let kinds = [
        FaultKind::Throttle {
            retry_after_secs: 1,
        },
        FaultKind::Status { status: 500 },
        FaultKind::Status { status: 503 },
        FaultKind::Error {
            status: 409,
            message: "Another deployment is in progress.".into(),
        },
        FaultKind::DropConnection,
        FaultKind::AnswerLost,
        FaultKind::Delay { ms: 1500 },
    ];
    for kind in kinds {
        let sb = sandbox().await;
        fault_the_promotion(&sb, kind.clone(), 1);
        let (_job, r) = run(job(&sb, "2.4.1")).await;
        let prod = sb.handle().static_site_version(SITE, "default");
        match (r.output("result"), prod.as_deref()) {
            (Some("promoted"), Some("2.4.1")) => assert_eq!(r.code, 0, "{kind:?}"),
            (Some("failed-before-change"), Some("2.4.0")) => assert_eq!(r.code, 1, "{kind:?}"),
            (result, serves) => panic!(
                "{kind:?}: result {result:?} while production serves {serves:?}:\n{}",
                r.all_text()
            ),
        }
        // Accepted deployments to production (a refused one changed nothing).
        let accepted = sb
            .handle()
            .request_log()
            .iter()
            .filter(|q| {
                q.method == "POST"
                    && q.path.contains(&format!("/staticSites/{SITE}/zipdeploy"))
                    && !q.target.starts_with("fault:")
            })
            .count();
        let lost = matches!(kind, FaultKind::AnswerLost) as usize;
        assert!(
            accepted + lost <= 1,
            "{kind:?}: {accepted} accepted:\n{:#?}",
            arm_writes(&sb)
        );
        sb.shutdown().await;
    }
}

/// What is refused before anything runs, from the inputs and from a
/// manifest entry alike.
#[test]
fn what_static_web_apps_cannot_do_is_refused_up_front() {
    let base = || {
        Job::new()
            .input("command", "deploy")
            .input("client-id", "00000000-0000-0000-0000-000000000001")
            .input("tenant-id", "00000000-0000-0000-0000-000000000002")
            .input("subscription-id", "00000000-0000-0000-0000-000000000003")
            .input("client-secret", "not-used")
            .input("lock", "none")
            .input("resource-group", "rg-contoso-prod")
            .input("expected-version", "2.4.1")
            .input("platform", "static-web-apps")
            .input("app-name", SITE)
    };
    for (job, said) in [
        (
            base(),
            "input 'package': is required by `platform: static-web-apps`",
        ),
        (
            base().input("package", ZIPS).input("canary", "10,50"),
            "input 'canary': cannot run on platform static-web-apps",
        ),
        (
            base().input("package", "https://x.blob.core.windows.net/s/site.zip"),
            "names no ${version}",
        ),
        (
            base().input("package", "http://x.blob.core.windows.net/s/${version}.zip"),
            "is not an https:// URL",
        ),
        (base().input("package", "site.zip"), "input 'package': "),
        (
            base().input("package", ZIPS).input("slot", "production"),
            "input 'slot': ",
        ),
        (
            base()
                .input("package", ZIPS)
                .input("image", "contoso.azurecr.io/x:1"),
            "input 'image': is not a setting of platform static-web-apps",
        ),
    ] {
        let r = job.run_main();
        assert_eq!(r.code, 1, "{said}: {}", r.all_text());
        assert!(
            r.error_lines().iter().any(|l| l.contains(said)),
            "{said}: {}",
            r.all_text()
        );
    }
    // The manifest says the same of its entry.
    let job = Job::new().input("command", "plan");
    std::fs::create_dir_all(job.workspace().join(".github")).unwrap();
    std::fs::write(
        job.workspace().join(".github/expedite.yml"),
        format!(
            "version: 1\ndefaults:\n  resource-group: rg\nservices:\n  - name: store\n    platform: static-web-apps\n    app: {SITE}\n    canary: '10,50'\n    slot: production\n"
        ),
    )
    .unwrap();
    let r = job.input("manifest", ".github/expedite.yml").run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    for said in [
        "service 'store': `package` is required by `platform: static-web-apps`",
        "service 'store': `canary` cannot run on platform static-web-apps",
        "service 'store': slot: ",
    ] {
        assert!(
            r.error_lines().iter().any(|l| l.contains(said)),
            "{said}: {}",
            r.all_text()
        );
    }
}

/// `--dry-run` on Static Web Apps: reads the site and says what would
/// change; not one ARM write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing() {
    let sb = sandbox().await;
    let (_job, r) = run(job(&sb, "2.4.1").input("dry-run", "true")).await;
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("result"), Some("dry-run"));
    assert!(
        r.summary.contains("store-2.4.1.zip") && r.summary.contains("preview environment"),
        "{}",
        r.summary
    );
    assert_eq!(arm_writes(&sb), Vec::<String>::new());
    sb.shutdown().await;
}
