//! Azure Static Web Apps (Microsoft.Web/staticSites) over ARM and the
//! minimal Blob Storage its zip deployment reads from: site and builds,
//! zip deployment to preview environments and production as LROs, what
//! each environment's host serves, deletion, failures, limits, secrets,
//! tags, faults and the request log.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::*;
use expedite_sandbox::{FaultKind, FaultSpec};
use reqwest::Method;
use serde_json::{Value, json};

const STORE: &str = "swa-contoso-store";
const STORE_HOST: &str = "swa-contoso-store.azurestaticapps.test";

/// ARM URL below the store (`""` = the site), with `api-version`.
fn swa(env: &Env, below: &str) -> String {
    swa_at(env, below, API)
}

fn swa_at(env: &Env, below: &str, api: &str) -> String {
    format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites/{STORE}{below}?{api}",
        env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
    )
}

fn blob(env: &Env, name: &str) -> String {
    format!("{}/store/{name}", env.settings.blob_endpoint)
}

/// POSTs a zip deployment; returns the status, the polling URL (both
/// headers must agree) and the body.
async fn zip_deploy(env: &Env, below: &str, body: &Value) -> (u16, Option<String>, String) {
    let r = env
        .client
        .post(swa(env, below))
        .bearer_auth(&env.token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let (async_op, location) = (header("azure-asyncoperation"), header("location"));
    assert_eq!(async_op, location, "both polling headers name one URL");
    (status, async_op, r.text().await.unwrap())
}

/// Polls an operation URL until it leaves `InProgress` (bounded); every
/// answer must be 200.
async fn finish(env: &Env, url: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = env.get(url).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] != "InProgress" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("operation did not finish");
}

/// Deploys `url` to `below` and waits for the operation's end.
async fn deploy_and_wait(env: &Env, below: &str, url: &str) -> Value {
    let (status, op, body) =
        zip_deploy(env, below, &json!({"properties": {"appZipUrl": url}})).await;
    assert_eq!(status, 202, "{body}");
    finish(env, &op.unwrap()).await
}

/// GET through a fresh client (it resolves hosts created since start).
async fn fetch(env: &Env, url: &str) -> (u16, String) {
    let client = client_for(&env.sb);
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_store_and_its_production_build_are_visible_through_arm() {
    let env = start().await;
    assert_eq!(env.settings.static_sites, vec![STORE.to_owned()]);
    assert_eq!(
        env.settings.blob_endpoint,
        "https://stcontosobuilds.blob.core.test"
    );
    assert!(
        env.settings
            .resolve
            .iter()
            .any(|e| e.host == "*.azurestaticapps.test")
    );
    assert!(
        env.settings
            .resolve
            .iter()
            .any(|e| e.host == "stcontosobuilds.blob.core.test")
    );

    let (status, site) = env.get(&swa(&env, "")).await;
    assert_eq!(status, 200, "{site}");
    assert_eq!(site["name"], STORE);
    assert_eq!(site["type"], "Microsoft.Web/staticSites");
    assert_eq!(site["sku"], json!({"name": "Standard", "tier": "Standard"}));
    assert_eq!(site["properties"]["defaultHostname"], STORE_HOST);
    assert_eq!(site["properties"]["stagingEnvironmentPolicy"], "Enabled");
    assert_eq!(site["properties"]["customDomains"], json!([]));
    assert!(
        site["id"]
            .as_str()
            .unwrap()
            .ends_with("/staticSites/swa-contoso-store")
    );

    let list_url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites?{API}",
        env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
    );
    let (status, list) = env.get(&list_url).await;
    assert_eq!(status, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    let (status, missing) = env.get(&swa(&env, "").replace(STORE, "swa-nope")).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );

    let (status, builds) = env.get(&swa(&env, "/builds")).await;
    assert_eq!(status, 200);
    assert_eq!(builds["nextLink"], Value::Null);
    let value = builds["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "{builds}");
    assert_eq!(value[0]["name"], "default");
    assert_eq!(value[0]["type"], "Microsoft.Web/staticSites/builds");
    assert_eq!(value[0]["properties"]["buildId"], "default");
    assert_eq!(value[0]["properties"]["status"], "Ready");
    assert_eq!(value[0]["properties"]["hostname"], STORE_HOST);

    let (status, prod) = env.get(&swa(&env, "/builds/default")).await;
    assert_eq!(status, 200);
    assert_eq!(prod["properties"]["hostname"], STORE_HOST);
    assert!(prod["properties"]["createdTimeUtc"].as_str().is_some());
    let (status, body) = env.get(&swa(&env, "/builds/pr-1")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["code"].is_string());

    // Production serves the demo store at 2.4.0, healthy, over HTTPS.
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.0");
    let (status, health) = fetch(&env, &format!("https://{STORE_HOST}/api/health")).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(
        env.sb.static_site_version(STORE, "default").as_deref(),
        Some("2.4.0")
    );
    let world = env.sb.snapshot();
    assert_eq!(
        world["staticSites"][STORE]["environments"]["default"]["version"],
        "2.4.0"
    );
    assert!(
        world["storageAccounts"]["stcontosobuilds"]["containers"]["store"]["store-2.4.1.zip"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn zip_deploy_creates_a_preview_environment_then_promotes_to_production() {
    let env = start().await;
    // The SAS a CI job would append is ignored.
    let url = format!("{}?sv=2025-01-05&sig=secret", blob(&env, "store-2.4.1.zip"));
    let body = json!({"properties": {"appZipUrl": url, "deploymentTitle": "Hotfix 2.4.1", "provider": "expedite"}});
    let (status, op, text) = zip_deploy(&env, "/builds/pr-7/zipdeploy", &body).await;
    assert_eq!(status, 202, "{text}");
    assert!(text.is_empty(), "{text}");
    let op = op.unwrap();
    assert!(
        op.starts_with(&format!(
            "https://management.azure.test/subscriptions/{}/providers/Microsoft.Web/locations/westeurope/operationResults/",
            env.settings.subscription_id
        )),
        "{op}"
    );
    assert!(op.contains("api-version=2025-05-01"), "{op}");

    // While it runs, the environment exists and says so.
    let (_, build) = env.get(&swa(&env, "/builds/pr-7")).await;
    let status = build["properties"]["status"].as_str().unwrap().to_owned();
    assert!(
        ["Uploading", "Deploying", "Ready"].contains(&status.as_str()),
        "{build}"
    );
    let (_, first) = env.get(&op).await;
    assert!(
        first["status"] == "InProgress" || first["status"] == "Succeeded",
        "{first}"
    );

    let done = finish(&env, &op).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    assert!(done["endTime"].is_string());
    let (_, build) = env.get(&swa(&env, "/builds/pr-7")).await;
    assert_eq!(build["properties"]["status"], "Ready");
    let host = build["properties"]["hostname"].as_str().unwrap().to_owned();
    assert_eq!(
        host,
        "swa-contoso-store-pr-7.westeurope.azurestaticapps.test"
    );
    assert_eq!(
        env.sb.static_site_hostname(STORE, "pr-7").as_deref(),
        Some(host.as_str())
    );
    let (status, version) = fetch(&env, &format!("https://{host}/api/version")).await;
    assert_eq!((status, version.as_str()), (200, r#"{"version":"2.4.1"}"#));
    let (status, _) = fetch(&env, &format!("https://{host}/api/health")).await;
    assert_eq!(status, 200);
    // Production is untouched.
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.0");
    let (_, builds) = env.get(&swa(&env, "/builds")).await;
    assert_eq!(builds["value"].as_array().unwrap().len(), 2);

    // Promotion: the same artifact deployed to production.
    let (status, op, _) = zip_deploy(&env, "/zipdeploy", &body).await;
    assert_eq!(status, 202);
    assert_eq!(finish(&env, &op.unwrap()).await["status"], "Succeeded");
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.1");
    let (_, site) = env.get(&swa(&env, "")).await;
    assert_eq!(site["properties"]["provider"], "expedite");
    // `builds/default/zipdeploy` is production too: roll back to 2.4.0.
    let done = deploy_and_wait(
        &env,
        "/builds/default/zipdeploy",
        &blob(&env, "store-2.4.0.zip"),
    )
    .await;
    assert_eq!(done["status"], "Succeeded");
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.0");
    assert_eq!(
        env.sb.static_site_version(STORE, "pr-7").as_deref(),
        Some("2.4.1")
    );

    // Every request went through the log, ARM decorations included.
    let log = env.sb.request_log();
    assert!(log.iter().any(|r| {
        r.host == "management.azure.test"
            && r.path
                .contains("/staticSites/swa-contoso-store/builds/pr-7/zipdeploy")
            && r.status == 202
    }));
    assert!(
        log.iter()
            .any(|r| r.host == host && r.target == "swa:swa-contoso-store/pr-7")
    );
}

#[tokio::test]
async fn a_bad_build_deploys_but_fails_its_health_check() {
    let env = start().await;
    let done = deploy_and_wait(
        &env,
        "/builds/canary/zipdeploy",
        &blob(&env, "store-2.4.2-bad.zip"),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let host = env.sb.static_site_hostname(STORE, "canary").unwrap();
    let (status, version) = fetch(&env, &format!("https://{host}/api/version")).await;
    assert_eq!(
        (status, version.as_str()),
        (200, r#"{"version":"2.4.2-bad"}"#)
    );
    for path in ["/api/health", "/health"] {
        let (status, body) = fetch(&env, &format!("https://{host}{path}")).await;
        assert_eq!(status, 503, "{path}: {body}");
    }
    // The mislabelled 2.4.3 is healthy but reports another version.
    let done = deploy_and_wait(
        &env,
        "/builds/canary/zipdeploy",
        &blob(&env, "store-2.4.3.zip"),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let (status, version) = fetch(&env, &format!("https://{host}/api/version")).await;
    assert_eq!((status, version.as_str()), (200, r#"{"version":"2.4.1"}"#));
    let (status, _) = fetch(&env, &format!("https://{host}/api/health")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_deployments_report_deployment_failed_and_change_nothing() {
    let env = start().await;
    // A blob that is not there.
    let done = deploy_and_wait(
        &env,
        "/builds/pr-9/zipdeploy",
        &blob(&env, "store-9.9.9.zip"),
    )
    .await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert_eq!(done["error"]["code"], "DeploymentFailed");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BlobNotFound"),
        "{done}"
    );
    let (_, build) = env.get(&swa(&env, "/builds/pr-9")).await;
    assert_eq!(build["properties"]["status"], "Failed");
    let host = build["properties"]["hostname"].as_str().unwrap().to_owned();
    let (status, _) = fetch(&env, &format!("https://{host}/api/version")).await;
    assert_eq!(status, 404, "nothing deployed, nothing served");

    // A zip that is not a demo package, uploaded like CI would.
    let r = client_for(&env.sb)
        .put(blob(&env, "junk.zip"))
        .header("x-ms-blob-type", "BlockBlob")
        .body(zip_with(&[("index.html", "<h1>hi</h1>")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let done = deploy_and_wait(&env, "/zipdeploy", &blob(&env, "junk.zip")).await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expedite-demo.json"),
        "{done}"
    );
    // Production keeps serving what it served.
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.0");

    // Outside the sandbox's blob hosts: never fetched, the operation fails.
    let done = deploy_and_wait(
        &env,
        "/builds/pr-9/zipdeploy",
        "https://example.com/app.zip?sig=x",
    )
    .await;
    assert_eq!(done["status"], "Failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("example.com"), "{message}");
    assert!(!message.contains("sig=x"), "the SAS stays out: {message}");

    // Bodies refused at once.
    for bad in [
        json!({"properties": {}}),
        json!({"properties": {"appZipUrl": "http://stcontosobuilds.blob.core.test/store/store-2.4.1.zip"}}),
        json!({"properties": {"appZipUrl": "store/store-2.4.1.zip"}}),
        json!({"properties": {"appZipUrl": 42}}),
        json!({"properties": {"appZipUrl": blob(&env, "store-2.4.1.zip"), "branch": "main"}}),
        json!({"properties": {"appZipUrl": blob(&env, "store-2.4.1.zip"), "apiZipUrl": "ftp://x/y.zip"}}),
        json!({"appZipUrl": blob(&env, "store-2.4.1.zip")}),
    ] {
        let (status, op, text) = zip_deploy(&env, "/builds/pr-10/zipdeploy", &bad).await;
        assert_eq!(status, 400, "{bad} -> {text}");
        assert!(op.is_none());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "BadRequest", "{v}");
    }
    // An environment name that cannot be part of a host name.
    let (status, _, text) = zip_deploy(
        &env,
        "/builds/-bad-/zipdeploy",
        &json!({"properties": {"appZipUrl": blob(&env, "store-2.4.1.zip")}}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let (_, builds) = env.get(&swa(&env, "/builds")).await;
    let names: Vec<&str> = builds["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "pr-9"],
        "refused requests create nothing"
    );
}

#[tokio::test]
async fn one_operation_per_environment_at_a_time() {
    let env = start().await;
    let body = json!({"properties": {"appZipUrl": blob(&env, "store-2.4.1.zip")}});
    let (status, op, _) = zip_deploy(&env, "/builds/pr-1/zipdeploy", &body).await;
    assert_eq!(status, 202);
    let (status, _, text) = zip_deploy(&env, "/builds/pr-1/zipdeploy", &body).await;
    assert_eq!(status, 409, "{text}");
    let (status, body409) = env
        .send_json(Method::DELETE, &swa(&env, "/builds/pr-1"), &json!({}))
        .await;
    assert_eq!(status, 409, "{body409}");
    assert_eq!(finish(&env, &op.unwrap()).await["status"], "Succeeded");
}

#[tokio::test]
async fn deleting_a_build_removes_the_environment() {
    let env = start().await;
    let done = deploy_and_wait(
        &env,
        "/builds/pr-3/zipdeploy",
        &blob(&env, "store-2.4.1.zip"),
    )
    .await;
    assert_eq!(done["status"], "Succeeded");
    let host = env.sb.static_site_hostname(STORE, "pr-3").unwrap();
    // Built while the host exists (it resolves only what exists).
    let client = client_for(&env.sb);

    let r = env
        .client
        .delete(swa(&env, "/builds/pr-3"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let op = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.headers()["location"].to_str().unwrap(), op);
    let (_, build) = env.get(&swa(&env, "/builds/pr-3")).await;
    assert!(
        build["properties"]["status"] == "Deleting" || build["error"].is_object(),
        "{build}"
    );
    assert_eq!(finish(&env, &op).await["status"], "Succeeded");
    let (status, _) = env.get(&swa(&env, "/builds/pr-3")).await;
    assert_eq!(status, 404);
    let (_, builds) = env.get(&swa(&env, "/builds")).await;
    assert_eq!(builds["value"].as_array().unwrap().len(), 1);
    let r = client
        .get(format!("https://{host}/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Absent: nothing to do. Production: refused.
    let r = env
        .client
        .delete(swa(&env, "/builds/pr-3"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = env
        .send_json(Method::DELETE, &swa(&env, "/builds/default"), &json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(env.version_at(STORE_HOST).await, "2.4.0");
}

#[tokio::test]
async fn an_eleventh_preview_environment_is_refused() {
    let env = start().await;
    let body = json!({"properties": {"appZipUrl": blob(&env, "store-2.4.1.zip")}});
    let mut ops = Vec::new();
    for i in 1..=10 {
        let (status, op, text) =
            zip_deploy(&env, &format!("/builds/pr-{i}/zipdeploy"), &body).await;
        assert_eq!(status, 202, "pr-{i}: {text}");
        ops.push(op.unwrap());
    }
    let (status, _, text) = zip_deploy(&env, "/builds/pr-11/zipdeploy", &body).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["error"]["message"],
        "This Static Web App already has the maximum number of staging environments (10). Please remove one and try again."
    );
    for op in &ops {
        assert_eq!(finish(&env, op).await["status"], "Succeeded");
    }
    // Existing environments and production still take deployments.
    let (status, op, _) = zip_deploy(&env, "/builds/pr-10/zipdeploy", &body).await;
    assert_eq!(status, 202);
    finish(&env, &op.unwrap()).await;
    let (status, op, _) = zip_deploy(&env, "/zipdeploy", &body).await;
    assert_eq!(status, 202);
    finish(&env, &op.unwrap()).await;
}

#[tokio::test]
async fn other_api_versions_are_refused() {
    let env = start().await;
    // Before the type existed (sites had 2018-02-01; staticSites start in
    // 2019-08-01).
    let (status, body) = env.get(&swa_at(&env, "", "api-version=2018-02-01")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");
    for v in [
        "2019-08-01",
        "2022-03-01",
        "2023-12-01",
        "2024-11-01",
        "2025-03-01",
    ] {
        let (status, _) = env
            .get(&swa_at(&env, "/builds", &format!("api-version={v}")))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, body) = env.get(&swa_at(&env, "", "api-version=latest")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "InvalidApiVersionParameter");
}

#[tokio::test]
async fn list_secrets_gives_the_deployment_token() {
    let env = start().await;
    let (status, secrets) = env.post_empty(&swa(&env, "/listSecrets")).await;
    assert_eq!(status, 200, "{secrets}");
    assert_eq!(secrets["name"], "secrets");
    assert_eq!(secrets["type"], "Microsoft.Web/staticSites/secrets");
    let key = secrets["properties"]["apiKey"].as_str().unwrap();
    assert!(key.len() >= 40, "{key}");
    assert!(secrets["properties"]["dnsOwnershipKey"].is_string());
    let (_, again) = env.post_empty(&swa(&env, "/listSecrets")).await;
    assert_eq!(again["properties"]["apiKey"], key, "stable until reset");
    // GET is not how secrets are listed.
    let (status, _) = env.get(&swa(&env, "/listSecrets")).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn tags_work_on_a_static_site_as_on_a_web_site() {
    let env = start().await;
    let tags_url = swa_at(
        &env,
        "/providers/Microsoft.Resources/tags/default",
        "api-version=2021-04-01",
    );
    let (status, body) = env
        .send_json(
            Method::PATCH,
            &tags_url,
            &json!({"operation": "Merge", "properties": {"tags": {"expedite-lock": "run-1", "team": "store"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, site) = env.get(&swa(&env, "")).await;
    assert_eq!(site["tags"]["expedite-lock"], "run-1");
    let (status, body) = env
        .send_json(
            Method::PATCH,
            &tags_url,
            &json!({"operation": "Delete", "properties": {"tags": {"expedite-lock": "run-1"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["properties"]["tags"], json!({"team": "store"}));
    let (status, body) = env.get(&tags_url).await;
    assert_eq!(status, 200);
    assert_eq!(body["properties"]["tags"], json!({"team": "store"}));
    let (status, _) = env.get(&tags_url.replace(STORE, "swa-nope")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn blob_storage_stores_and_serves_block_blobs() {
    let env = start().await;
    let client = client_for(&env.sb);
    let url = format!(
        "{}/artifacts/run-1/site.zip?sv=x&sig=y",
        env.settings.blob_endpoint
    );
    // No container yet.
    let r = client
        .put(&url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("zip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-ms-error-code"], "ContainerNotFound");
    let container = format!("{}/artifacts?restype=container", env.settings.blob_endpoint);
    let r = client.put(&container).body("").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = client.put(&container).body("").send().await.unwrap();
    assert_eq!(r.status(), 409);

    let r = client.put(&url).body("zip").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "MissingRequiredHeader");
    let bytes = expedite_sandbox::demo_package("2.4.1").unwrap();
    let r = client
        .put(&url)
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-type", "application/zip")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("etag"));

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.headers()["x-ms-blob-type"], "BlockBlob");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);

    let r = client
        .get(format!("{}/artifacts/nope.zip", env.settings.blob_endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-ms-error-code"], "BlobNotFound");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<Code>BlobNotFound</Code>")
    );

    // What was uploaded deploys.
    let done = deploy_and_wait(&env, "/builds/run-1/zipdeploy", &url).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    assert_eq!(
        env.sb.static_site_version(STORE, "run-1").as_deref(),
        Some("2.4.1")
    );
    // And a blob put through the handle does too.
    let url = env
        .sb
        .put_blob(
            "stcontosobuilds",
            "store",
            "store-2.5.0.zip",
            expedite_sandbox::demo_package("2.5.0").unwrap(),
        )
        .unwrap();
    assert_eq!(url, blob(&env, "store-2.5.0.zip"));
    deploy_and_wait(&env, "/zipdeploy", &url).await;
    assert_eq!(env.version_at(STORE_HOST).await, "2.5.0");

    let r = client.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn faults_apply_to_static_sites_and_blobs() {
    let env = start().await;
    let prefix = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/staticSites",
        env.settings.subscription_id, env.settings.resource_group
    );
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Throttle {
                retry_after_secs: 2,
            })
            .host("management.azure.test")
            .path_prefix(prefix)
            .times(1),
        )
        .unwrap();
    let r = env
        .client
        .get(swa(&env, "/builds"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "TooManyRequests");
    let (status, _) = env.get(&swa(&env, "/builds")).await;
    assert_eq!(status, 200);

    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Status { status: 503 })
                .host("*.blob.core.test")
                .times(1),
        )
        .unwrap();
    let (status, _) = fetch(&env, &blob(&env, "store-2.4.1.zip")).await;
    assert_eq!(status, 503);
    let (status, _) = fetch(&env, &blob(&env, "store-2.4.1.zip")).await;
    assert_eq!(status, 200);
    let log = env.sb.request_log();
    assert!(
        log.iter()
            .any(|r| r.target == "fault:throttle" && r.path.contains("/staticSites/"))
    );
    assert!(
        log.iter()
            .any(|r| r.host == "stcontosobuilds.blob.core.test" && r.status == 503)
    );
}

#[tokio::test]
async fn static_hosts_are_served_through_the_proxy() {
    let env = start().await;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
        .proxy(reqwest::Proxy::http(&env.settings.control_url).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{STORE_HOST}/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"version":"2.4.0"}"#);
}
