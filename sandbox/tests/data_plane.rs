//! The demo payments app, production's traffic split and cookie pinning,
//! and Kudu deployments.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::*;
use expedite_sandbox::Behaviour;
use serde_json::{Value, json};

const PROD: &str = "https://app-contoso-payments.azurewebsites.test";
const STAGING: &str = "https://app-contoso-payments-staging.azurewebsites.test";
const STAGING_SCM: &str = "https://app-contoso-payments-staging.scm.azurewebsites.test";

async fn pay(env: &Env, base: &str, amount: f64) -> String {
    let r = env
        .client
        .post(format!("{base}/api/payments"))
        .json(&json!({"amount": amount, "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    body["id"].as_str().unwrap().to_owned()
}

async fn order_status(env: &Env, base: &str, id: &str) -> u16 {
    env.client
        .get(format!("{base}/api/payments/{id}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn bad_release_drops_large_orders_and_previous_build_keeps_them() {
    let env = start().await;
    assert_eq!(
        env.version_at("app-contoso-payments.azurewebsites.test")
            .await,
        "2.4.0"
    );
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.3.1"
    );

    let big_on_prod = pay(&env, PROD, 12_000.0).await;
    assert_eq!(
        order_status(&env, PROD, &big_on_prod).await,
        404,
        "2.4.0 silently drops it"
    );
    let small_on_prod = pay(&env, PROD, 120.0).await;
    assert_eq!(order_status(&env, PROD, &small_on_prod).await, 200);
    let big_on_staging = pay(&env, STAGING, 12_000.0).await;
    assert_eq!(order_status(&env, STAGING, &big_on_staging).await, 200);
    // One database per app: production sees staging's order too.
    assert_eq!(order_status(&env, PROD, &big_on_staging).await, 200);

    let r = env
        .client
        .post(format!("{PROD}/api/payments"))
        .json(&json!({"amount": -5, "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let health: Value = env
        .client
        .get(format!("{PROD}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
}

#[tokio::test]
async fn metrics_count_what_was_served() {
    let env = start().await;
    for _ in 0..3 {
        pay(&env, STAGING, 10.0).await;
    }
    let r = env
        .client
        .get(format!("{STAGING}/api/payments/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let text = env
        .client
        .get(format!("{STAGING}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("http_requests_total{code=\"200\",method=\"POST\",path=\"/api/payments\"} 3"),
        "{text}"
    );
    assert!(
        text.contains(
            "http_requests_total{code=\"404\",method=\"GET\",path=\"/api/payments/{id}\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_count{path=\"/api/payments\"} 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
    // Production served none of it.
    let prod = env
        .client
        .get(format!("{PROD}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!prod.contains("path=\"/api/payments\""), "{prod}");
}

/// Asks production for its version `n` times without cookies; returns how
/// many answers came from staging and whether cookies were set.
async fn split(env: &Env, n: usize) -> (usize, bool) {
    let mut staging = 0;
    let mut cookies = true;
    for _ in 0..n {
        let r = env
            .client
            .get(format!("{PROD}/api/version"))
            .send()
            .await
            .unwrap();
        cookies &= r.headers().get("set-cookie").is_some();
        let body: Value = r.json().await.unwrap();
        if body["version"] == "2.3.1" {
            staging += 1;
        }
    }
    (staging, cookies)
}

async fn version_with_cookie(env: &Env, cookie: &str) -> String {
    let body: Value = env
        .client
        .get(format!("{PROD}/api/version"))
        .header("cookie", format!("x-ms-routing-name={cookie}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn production_splits_by_rules_and_honours_routing_cookie() {
    let env = start().await;
    let (none, cookies) = split(&env, 50).await;
    assert_eq!(none, 0, "no rules: production only");
    assert!(!cookies, "no routing cookie without rules");

    let rule = |pct: f64| json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": pct, "name": "staging"}]);
    assert_eq!(env.set_rules(rule(30.0)).await.0, 200);
    let (to_staging, cookies) = split(&env, 400).await;
    assert!(
        (80..=160).contains(&to_staging),
        "≈30 % of 400, got {to_staging}"
    );
    assert!(cookies);
    for _ in 0..10 {
        assert_eq!(version_with_cookie(&env, "staging").await, "2.3.1");
        assert_eq!(version_with_cookie(&env, "self").await, "2.4.0");
    }

    // At 0 % the cookie still pins, but nobody new is routed.
    assert_eq!(env.set_rules(rule(0.0)).await.0, 200);
    assert_eq!(version_with_cookie(&env, "staging").await, "2.3.1");
    assert_eq!(split(&env, 50).await.0, 0);

    // The query parameter forces a slot and sets the cookie.
    let r = env
        .client
        .get(format!("{PROD}/api/version?x-ms-routing-name=staging"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("x-ms-routing-name=staging")
    );
    assert_eq!(r.json::<Value>().await.unwrap()["version"], "2.3.1");

    // Removing the rule stops all slot traffic, cookies included.
    assert_eq!(env.set_rules(json!([])).await.0, 200);
    assert_eq!(version_with_cookie(&env, "staging").await, "2.4.0");
    let log = env.sb.request_log();
    assert!(
        log.iter()
            .any(|r| r.target == "app:app-contoso-payments/staging"
                && r.host == "app-contoso-payments.azurewebsites.test")
    );
}

#[tokio::test]
async fn split_is_deterministic_for_a_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let env = start().await;
        let rule = json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 50, "name": "staging"}]);
        assert_eq!(env.set_rules(rule).await.0, 200);
        let mut seq = String::new();
        for _ in 0..40 {
            let body: Value = env
                .client
                .get(format!("{PROD}/api/version"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seq.push(if body["version"] == "2.3.1" { 's' } else { 'p' });
        }
        runs.push(seq);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains('s') && runs[0].contains('p'));
}

async fn latest(env: &Env, scm: &str) -> Value {
    env.client
        .get(format!("{scm}/api/deployments/latest"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn await_deployment(env: &Env, scm: &str) -> Value {
    for _ in 0..100 {
        let d = latest(env, scm).await;
        if d["complete"] == true {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("deployment did not finish");
}

#[tokio::test]
async fn kudu_zipdeploy_changes_only_that_slot() {
    // Long enough to observe the running deployment and its 409.
    let env = start_with(expedite_sandbox::SandboxConfig {
        build_duration: Duration::from_millis(1500),
        ..fast_config()
    })
    .await;
    let package = zip_with(&[
        ("expedite-demo.json", r#"{"version":"2.4.1"}"#),
        ("app.dll", "MZ"),
    ]);
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/zipdeploy?isAsync=true"))
        .bearer_auth(&env.token)
        .header("content-type", "application/octet-stream")
        .body(package.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{STAGING_SCM}/api/deployments/latest")));
    let first = latest(&env, STAGING_SCM).await;
    assert!(matches!(first["status"].as_u64(), Some(0..=2)), "{first}");
    assert_eq!(first["complete"], false);

    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/publish?type=zip&async=true"))
        .bearer_auth(&env.token)
        .body(package)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "one deployment at a time");

    let done = await_deployment(&env, STAGING_SCM).await;
    assert_eq!(done["status"], 4);
    assert_eq!(done["active"], true);
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.4.1"
    );
    assert_eq!(
        env.version_at("app-contoso-payments.azurewebsites.test")
            .await,
        "2.4.0"
    );
    assert_eq!(
        env.version_at("app-contoso-notifications-staging.azurewebsites.test")
            .await,
        "2.3.1"
    );
    let big = pay(&env, STAGING, 12_000.0).await;
    assert_eq!(
        order_status(&env, STAGING, &big).await,
        200,
        "2.4.1 fixes the bug"
    );
    // Nothing in production's Kudu was touched.
    assert!(
        !env.sb
            .request_log()
            .iter()
            .any(|r| r.host == "app-contoso-payments.scm.azurewebsites.test")
    );
}

#[tokio::test]
async fn kudu_package_without_manifest_fails_with_a_reason() {
    let env = start().await;
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/publish?type=zip&async=true"))
        .bearer_auth(&env.token)
        .body(zip_with(&[("app.dll", "MZ")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let done = await_deployment(&env, STAGING_SCM).await;
    assert_eq!(done["status"], 3);
    let log: Value = env
        .client
        .get(done["log_url"].as_str().unwrap())
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = log.as_array().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last.contains("expedite-demo.json"), "{last}");
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.3.1"
    );

    // Synchronous OneDeploy of a good package answers when done.
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/publish?type=zip"))
        .bearer_auth(&env.token)
        .body(zip_with(&[(
            "expedite-demo.json",
            r#"{"version":"2.4.1"}"#,
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.4.1"
    );

    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/publish?type=zip"))
        .body(zip_with(&[(
            "expedite-demo.json",
            r#"{"version":"2.4.2"}"#,
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "Kudu needs the bearer token");
}

#[tokio::test]
async fn behaviour_table_and_packaged_behaviour_shape_bad_builds() {
    let env = start().await;
    env.sb
        .set_behaviour(
            "9.0.0",
            Behaviour {
                health_status: Some(500),
                ..Behaviour::default()
            },
        )
        .unwrap();
    let r = env
        .client
        .put(env.control("/_sandbox/behaviours/9.0.1"))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env
        .client
        .put(env.control("/_sandbox/behaviours/9.0.2"))
        .json(&json!({"error_rate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let deploy = |version: &'static str, extra: &'static str| {
        let env = &env;
        async move {
            let manifest = format!(r#"{{"version":"{version}"{extra}}}"#);
            let r = env
                .client
                .post(format!("{STAGING_SCM}/api/zipdeploy"))
                .bearer_auth(&env.token)
                .body(zip_with(&[("expedite-demo.json", manifest.as_str())]))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    deploy("9.0.0", "").await;
    assert_eq!(
        env.client
            .get(format!("{STAGING}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    deploy("9.0.1", "").await;
    let r = env
        .client
        .post(format!("{STAGING}/api/payments"))
        .json(&json!({"amount": 1, "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    deploy("9.0.3", r#","behaviour":{"crash_loop":true}"#).await;
    assert_eq!(
        env.client
            .get(format!("{STAGING}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    deploy("9.0.4", r#","behaviour":{"slow_rate":1.0,"slow_ms":300}"#).await;
    let t = std::time::Instant::now();
    assert_eq!(
        env.client
            .get(format!("{STAGING}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    deploy(
        "9.0.5",
        r#","behaviour":{"health_status":500,"regression_after_secs":3600}"#,
    )
    .await;
    assert_eq!(
        env.client
            .get(format!("{STAGING}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "not regressed yet"
    );
}

async fn download_wwwroot(env: &Env, scm: &str) -> Vec<u8> {
    let r = env
        .client
        .get(format!("{scm}/api/zip/site/wwwroot/"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    r.bytes().await.unwrap().to_vec()
}

fn manifest_version(package: &[u8]) -> String {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
    let mut text = String::new();
    zip.by_name("expedite-demo.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn kudu_zip_download_hands_back_what_the_slot_serves() {
    let env = start().await;
    let prod_scm = "https://app-contoso-payments.scm.azurewebsites.test";

    // Bearer auth like every Kudu endpoint.
    let r = env
        .client
        .get(format!("{prod_scm}/api/zip/site/wwwroot/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = env
        .client
        .get(format!("{prod_scm}/api/zip/site/other/"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The scenario's starting build: a package of the version it serves,
    // which OneDeploy accepts back (production's 2.4.0 onto staging).
    let prod = download_wwwroot(&env, prod_scm).await;
    assert_eq!(&prod[..4], b"PK\x03\x04");
    assert_eq!(manifest_version(&prod), "2.4.0");
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/publish?type=zip"))
        .bearer_auth(&env.token)
        .body(prod)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.4.0"
    );

    // A deployed package comes back byte for byte, and moves with a swap.
    let package = zip_with(&[
        ("expedite-demo.json", r#"{"version":"2.4.1"}"#),
        ("wwwroot/index.html", "<h1>payments</h1>"),
    ]);
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/zipdeploy"))
        .bearer_auth(&env.token)
        .body(package.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(download_wwwroot(&env, STAGING_SCM).await, package);
    let location = env.begin_swap().await;
    assert_eq!(env.await_operation(&location).await.0, 200);
    assert_eq!(download_wwwroot(&env, prod_scm).await, package);
    assert_eq!(
        manifest_version(&download_wwwroot(&env, STAGING_SCM).await),
        "2.4.0"
    );
    // A failed deployment changes nothing.
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/zipdeploy"))
        .bearer_auth(&env.token)
        .body(zip_with(&[("readme.txt", "no manifest")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        manifest_version(&download_wwwroot(&env, STAGING_SCM).await),
        "2.4.0"
    );
}
