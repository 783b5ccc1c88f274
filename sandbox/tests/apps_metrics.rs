//! Container Apps over ARM and on their FQDNs, Azure Monitor metrics from
//! served traffic, and the traffic generator.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::*;
use expedite_sandbox::TrafficSpec;
use reqwest::Method;
use serde_json::{Value, json};

const CA: &str = "ca-contoso-payments";
const DOMAIN: &str = "happyhill-1a2b3c4d.westeurope.azurecontainerapps.test";
const APP_API: &str = "api-version=2025-07-01";

fn ca_url(env: &Env, below: &str) -> String {
    format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.App/containerApps/{CA}{below}?{APP_API}",
        env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
    )
}

/// A client that resolves every host the sandbox serves right now
/// (new revisions get new FQDNs).
fn fresh_client(env: &Env) -> reqwest::Client {
    client_for(&env.sb)
}

async fn version(client: &reqwest::Client, host: &str) -> (u16, String) {
    let r = client
        .get(format!("https://{host}/api/version"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v["version"].as_str().unwrap_or("").to_owned())
}

/// PATCHes and waits for the Azure-AsyncOperation to succeed.
async fn patch_and_wait(env: &Env, body: Value) -> (u16, Value) {
    let r = env
        .client
        .patch(ca_url(env, ""))
        .bearer_auth(&env.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 202 {
        return (status, r.json().await.unwrap());
    }
    let op = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(op.contains(&format!(
        "/subscriptions/{}/providers/Microsoft.App/locations/westeurope/containerappOperationStatuses/",
        env.settings.subscription_id
    )));
    assert!(r.headers().contains_key("location"));
    for _ in 0..100 {
        let (s, body) = env.get(&op).await;
        assert_eq!(s, 200);
        if body["status"] != "InProgress" {
            assert_eq!(body["status"], "Succeeded");
            return env.get(&ca_url(env, "")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("container app operation did not finish");
}

fn template(image: &str, suffix: &str) -> Value {
    json!({"properties": {"template": {
        "revisionSuffix": suffix,
        "containers": [{"name": "payments", "image": image,
                        "env": [{"name": "ASPNETCORE_URLS", "value": "http://+:8080"}],
                        "resources": {"cpu": 0.5, "memory": "1Gi"}}]
    }}})
}

#[tokio::test]
async fn container_app_revisions_traffic_and_fqdns() {
    let env = start().await;
    let (status, app) = env.get(&ca_url(&env, "")).await;
    assert_eq!(status, 200);
    let props = &app["properties"];
    assert_eq!(props["configuration"]["activeRevisionsMode"], "Multiple");
    assert_eq!(
        props["configuration"]["ingress"]["traffic"],
        json!([{"weight": 100, "latestRevision": true}])
    );
    assert_eq!(
        props["configuration"]["ingress"]["fqdn"],
        format!("{CA}.{DOMAIN}")
    );
    assert_eq!(props["latestRevisionName"], format!("{CA}--v240"));
    let app_host = format!("{CA}.{DOMAIN}");
    assert_eq!(version(&env.client, &app_host).await, (200, "2.4.0".into()));

    // Pin traffic by name first (no new revision for a traffic-only change).
    let pin = json!({"properties": {"configuration": {"ingress": {"traffic": [{"revisionName": format!("{CA}--v240"), "weight": 100}]}}}});
    let (status, app) = patch_and_wait(&env, pin).await;
    assert_eq!(status, 200);
    assert_eq!(
        app["properties"]["configuration"]["ingress"]["traffic"][0]["revisionName"],
        format!("{CA}--v240")
    );
    let (_, revs) = env.get(&ca_url(&env, "/revisions")).await;
    assert_eq!(revs["value"].as_array().unwrap().len(), 1);

    // New image → new revision; pinned traffic keeps users on the old one.
    let (status, app) = patch_and_wait(
        &env,
        template("contosoacr.azurecr.io/payments:2.4.1", "hotfix-241"),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(
        app["properties"]["latestReadyRevisionName"],
        format!("{CA}--hotfix-241")
    );
    let client = fresh_client(&env);
    assert_eq!(
        version(&client, &format!("{CA}--hotfix-241.{DOMAIN}")).await,
        (200, "2.4.1".into())
    );
    for _ in 0..20 {
        assert_eq!(version(&client, &app_host).await.1, "2.4.0");
    }
    let (_, rev) = env
        .get(&ca_url(&env, &format!("/revisions/{CA}--hotfix-241")))
        .await;
    assert_eq!(rev["properties"]["provisioningState"], "Provisioned");
    assert_eq!(rev["properties"]["healthState"], "Healthy");
    assert_eq!(rev["properties"]["trafficWeight"], 0);

    // Canary 80/20, then all in.
    let split = json!({"properties": {"configuration": {"ingress": {"traffic": [
        {"revisionName": format!("{CA}--v240"), "weight": 80},
        {"revisionName": format!("{CA}--hotfix-241"), "weight": 20}]}}}});
    assert_eq!(patch_and_wait(&env, split).await.0, 200);
    let mut new = 0;
    for _ in 0..200 {
        if version(&client, &app_host).await.1 == "2.4.1" {
            new += 1;
        }
    }
    assert!((20..=70).contains(&new), "≈20 % of 200, got {new}");

    // Merge-patch replaced the containers array whole.
    let bare = json!({"properties": {"template": {"revisionSuffix": "bare-1", "containers": [{"name": "payments", "image": "contosoacr.azurecr.io/payments:2.4.1"}]}}});
    let (_, app) = patch_and_wait(&env, bare).await;
    assert!(
        app["properties"]["template"]["containers"][0]
            .get("env")
            .is_none()
    );

    // Deactivated revisions stop answering at their FQDN.
    let (status, _) = env
        .post_empty(&ca_url(&env, &format!("/revisions/{CA}--v240/deactivate")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        version(&client, &format!("{CA}--v240.{DOMAIN}")).await.0,
        404
    );
    assert_eq!(
        env.post_empty(&ca_url(&env, &format!("/revisions/{CA}--v240/activate")))
            .await
            .0,
        200
    );
    assert_eq!(
        version(&client, &format!("{CA}--v240.{DOMAIN}")).await.0,
        200
    );
}

#[tokio::test]
async fn latest_revision_traffic_follows_a_new_revision_at_once() {
    let env = start_with(expedite_sandbox::SandboxConfig {
        build_duration: Duration::from_millis(1500),
        ..fast_config()
    })
    .await;
    let r = env
        .client
        .patch(ca_url(&env, ""))
        .bearer_auth(&env.token)
        .json(&template(
            "contosoacr.azurecr.io/payments:2.4.1",
            "hotfix-a",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (_, app) = env.get(&ca_url(&env, "")).await;
    assert_eq!(app["properties"]["provisioningState"], "InProgress");
    assert_eq!(
        app["properties"]["latestRevisionName"],
        format!("{CA}--hotfix-a")
    );
    assert_eq!(
        app["properties"]["latestReadyRevisionName"],
        format!("{CA}--v240")
    );
    // While provisioning: another PATCH conflicts, traffic still on the old one.
    let (status, body) = env
        .send_json(
            Method::PATCH,
            &ca_url(&env, ""),
            &template("contosoacr.azurecr.io/payments:2.4.1", "hotfix-b"),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        version(&env.client, &format!("{CA}.{DOMAIN}")).await.1,
        "2.4.0"
    );
    // Once the revision is ready, all traffic moves without any traffic change.
    let mut moved = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if version(&env.client, &format!("{CA}.{DOMAIN}")).await.1 == "2.4.1" {
            moved = true;
            break;
        }
    }
    assert!(moved, "latestRevision:true moved 100 % to the new revision");
    for _ in 0..10 {
        assert_eq!(
            version(&env.client, &format!("{CA}.{DOMAIN}")).await.1,
            "2.4.1"
        );
    }
}

#[tokio::test]
async fn container_app_patch_errors() {
    let env = start().await;
    let cases = [
        (
            template("contosoacr.azurecr.io/payments:2.4.1", "v240"),
            "already exists",
        ),
        (
            template("contosoacr.azurecr.io/payments:2.4.1", "Hotfix_1"),
            "revision suffix",
        ),
        (
            json!({"properties": {"template": {"revisionSuffix": "x1", "containers": []}}}),
            "containers",
        ),
        (
            json!({"properties": {"configuration": {"ingress": {"traffic": [{"revisionName": format!("{CA}--v240"), "weight": 90}]}}}}),
            "must be 100",
        ),
        (
            json!({"properties": {"configuration": {"ingress": {"traffic": [{"revisionName": format!("{CA}--nope"), "weight": 100}]}}}}),
            "does not exist",
        ),
        (
            json!({"properties": {"configuration": {"ingress": {"traffic": [{"revisionName": format!("{CA}--v240"), "latestRevision": true, "weight": 100}]}}}}),
            "exactly one",
        ),
        (
            json!({"properties": {"configuration": {"activeRevisionsMode": "Single", "ingress": {"traffic": [{"latestRevision": true, "weight": 50}, {"revisionName": format!("{CA}--v240"), "weight": 50}]}}}}),
            "Multiple",
        ),
        (json!({"properties": {"templates": {}}}), "templates"),
    ];
    for (body, expect) in cases {
        let (status, resp) = env.send_json(Method::PATCH, &ca_url(&env, ""), &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        let message = resp["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expect),
            "{message} should mention {expect}"
        );
    }
    let (status, body) = env
        .get(&format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.App/containerApps/{CA}?api-version=2025-05-01",
            env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("NoRegisteredProviderFound"))
    );
    let (_, revs) = env.get(&ca_url(&env, "/revisions")).await;
    assert_eq!(
        revs["value"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
}

fn metrics_url(env: &Env, resource: &str, query: &str) -> String {
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%SZ");
    let end = (now + chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "{}{resource}/providers/Microsoft.Insights/metrics?api-version=2024-02-01&interval=PT1M&timespan={start}/{end}&{query}",
        env.settings.arm_endpoint
    )
}

fn total(series: &Value) -> f64 {
    series["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["total"].as_f64())
        .sum()
}

#[tokio::test]
async fn metrics_come_from_served_traffic() {
    let env = start().await;
    env.sb
        .set_behaviour(
            "2.3.1",
            expedite_sandbox::Behaviour {
                error_rate: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
    for _ in 0..6 {
        env.client
            .post("https://app-contoso-payments-staging.azurewebsites.test/api/payments")
            .json(&json!({"amount": 5, "currency": "USD"}))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..4 {
        env.client
            .get("https://app-contoso-payments-staging.azurewebsites.test/health")
            .send()
            .await
            .unwrap();
    }
    let slot = format!("{}/slots/staging", env.site_path(PAYMENTS));
    let (status, body) = env
        .get(&metrics_url(
            &env,
            &slot,
            "metricnames=Requests,Http5xx,HttpResponseTime&aggregation=Total,Average",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["namespace"], "microsoft.web/sites/slots");
    let values = body["value"].as_array().unwrap();
    assert_eq!(values[0]["name"]["value"], "Requests");
    assert_eq!(total(&values[0]["timeseries"][0]), 10.0);
    assert_eq!(total(&values[1]["timeseries"][0]), 6.0);
    let rt = values[2]["timeseries"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p["average"].as_f64());
    assert!(rt.is_some_and(|v| v >= 0.0));
    // Empty minutes carry no aggregation field.
    assert!(
        values[0]["timeseries"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.get("total").is_none())
    );
    // Production served nothing.
    let (_, prod) = env
        .get(&metrics_url(
            &env,
            &env.site_path(PAYMENTS),
            "metricnames=Requests&aggregation=Total",
        ))
        .await;
    assert_eq!(total(&prod["value"][0]["timeseries"][0]), 0.0);
    let (status, body) = env
        .get(&metrics_url(&env, &slot, "metricnames=Bogus"))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Http5xx")
    );

    // Container Apps: Requests split by revision and status category.
    let ca = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.App/containerApps/{CA}",
        env.settings.subscription_id, env.settings.resource_group
    );
    env.sb
        .set_behaviour(
            "2.4.0",
            expedite_sandbox::Behaviour {
                error_rate: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
    for _ in 0..3 {
        env.client
            .post(format!("https://{CA}.{DOMAIN}/api/payments"))
            .json(&json!({"amount": 5, "currency": "USD"}))
            .send()
            .await
            .unwrap();
        env.client
            .get(format!("https://{CA}.{DOMAIN}/api/version"))
            .send()
            .await
            .unwrap();
    }
    let (status, body) = env
        .get(&metrics_url(&env, &ca, "metricnames=Requests&aggregation=Total&$filter=revisionName eq '*' and statusCodeCategory eq '5xx'"))
        .await;
    assert_eq!(status, 200, "{body}");
    let ts = body["value"][0]["timeseries"].as_array().unwrap();
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0]["metadatavalues"][0]["value"], format!("{CA}--v240"));
    assert_eq!(total(&ts[0]), 3.0);
    let (_, all) = env
        .get(&metrics_url(
            &env,
            &ca,
            "metricnames=Requests&aggregation=Total",
        ))
        .await;
    assert_eq!(total(&all["value"][0]["timeseries"][0]), 6.0);
}

#[tokio::test]
async fn metrics_latency_hides_fresh_buckets() {
    let env = start_with(expedite_sandbox::SandboxConfig {
        metrics_latency: Duration::from_secs(180),
        ..fast_config()
    })
    .await;
    for _ in 0..5 {
        env.client
            .get("https://app-contoso-payments.azurewebsites.test/health")
            .send()
            .await
            .unwrap();
    }
    let (status, body) = env
        .get(&metrics_url(
            &env,
            &env.site_path(PAYMENTS),
            "metricnames=Requests&aggregation=Total",
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        total(&body["value"][0]["timeseries"][0]),
        0.0,
        "not ingested yet: {body}"
    );
}

#[tokio::test]
async fn traffic_generator_runs_bounded_and_feeds_metrics() {
    let env = start().await;
    let id = env
        .sb
        .generate_traffic(TrafficSpec {
            host: "app-contoso-payments-staging.azurewebsites.test".into(),
            rps: 200.0,
            duration_ms: 400,
            order_ratio: 1.0,
            large_order_ratio: 0.0,
        })
        .unwrap();
    for _ in 0..100 {
        if env.sb.traffic_runs().iter().all(|r| r.done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = env
        .sb
        .traffic_runs()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert!(run.done);
    // At most rate × duration; fewer only if the machine is very busy.
    assert!(
        (10..=81).contains(&run.sent),
        "≈80 requests, got {}",
        run.sent
    );
    assert_eq!(run.by_status.get(&200).copied(), Some(run.sent));
    let metrics = env
        .client
        .get("https://app-contoso-payments-staging.azurewebsites.test/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("path=\"/api/payments\"}} {}", run.sent)),
        "{metrics}"
    );

    let r = env
        .client
        .post(env.control("/_sandbox/traffic"))
        .json(&json!({"host": "x", "rps": 5000, "duration_ms": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env.client.post(env.control("/_sandbox/traffic")).json(&json!({"host": "app-contoso-payments.azurewebsites.test", "rps": 5, "duration_ms": 60000})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = env
        .client
        .delete(env.control("/_sandbox/traffic"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let runs: Value = env
        .client
        .get(env.control("/_sandbox/traffic"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        runs.as_array().unwrap().iter().all(|r| r["done"] == true),
        "{runs}"
    );
}
