//! What a client needs before and around the resource APIs, as Azure
//! answers it (issue #15): the cloud's metadata document without a token,
//! scopes read as `{resource}/.default`, subscriptions, tenants and
//! providers, the documented api-versions of each emulated type, and the
//! publishing profile. The Azure CLI's own run of these is
//! `tests/azure_cli.rs`; this file needs no CLI.
#![cfg(test)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn token_for(env: &Env, scope: &str) -> (u16, Value) {
    let s = &env.settings;
    let r = env
        .client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            s.authority_host, s.tenant_id
        ))
        .form(&[
            ("client_id", s.client_id.as_str()),
            ("client_secret", s.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The `aud` claim of a JWT (not verified: the sandbox's own tests do that).
fn audience(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["aud"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn scopes_are_read_as_resource_slash_default_with_or_without_a_trailing_slash() {
    let env = start().await;
    for (scope, aud) in [
        // What a cloud registered with `https://management.azure.test/` asks.
        (
            "https://management.azure.test//.default",
            "https://management.azure.test/",
        ),
        (
            "https://management.azure.test/.default",
            "https://management.azure.test/",
        ),
        // The public cloud's ids, either way, any case.
        (
            "https://management.core.windows.net//.default",
            "https://management.core.windows.net/",
        ),
        (
            "https://management.core.windows.net/.default",
            "https://management.core.windows.net/",
        ),
        (
            "https://management.azure.com//.default",
            "https://management.azure.com/",
        ),
        (
            "https://Management.Azure.com/.default",
            "https://management.azure.com/",
        ),
        // OpenID scopes beside the resource name none.
        (
            "openid profile offline_access https://management.azure.com/.default",
            "https://management.azure.com/",
        ),
    ] {
        let (status, body) = token_for(&env, scope).await;
        assert_eq!(status, 200, "{scope}: {body}");
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(audience(token), aud, "{scope}");
        // ARM takes every one of them.
        let r = env
            .client
            .get(env.arm(""))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scope}");
    }
    for (scope, error, code) in [
        (
            "https://graph.microsoft.com/.default",
            "invalid_resource",
            500011,
        ),
        (
            "https://management.azure.test///.default",
            "invalid_resource",
            500011,
        ),
        ("https://management.azure.com/", "invalid_scope", 1002012),
        ("/.default", "invalid_scope", 1002012),
        (
            "https://management.azure.com/.default https://management.azure.test/.default",
            "invalid_scope",
            28000,
        ),
    ] {
        let (status, body) = token_for(&env, scope).await;
        assert_eq!(status, 400, "{scope}: {body}");
        assert_eq!(body["error"], error, "{scope}");
        assert_eq!(body["error_codes"], json!([code]), "{scope}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}:")),
            "{description}"
        );
    }
}

#[tokio::test]
async fn the_metadata_document_is_served_without_a_token() {
    let env = start().await;
    let get = |v: Option<&str>| {
        let url = match v {
            Some(v) => format!(
                "{}/metadata/endpoints?api-version={v}",
                env.settings.arm_endpoint
            ),
            None => format!("{}/metadata/endpoints", env.settings.arm_endpoint),
        };
        let client = env.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // 2022-09-01, what `az cloud register` asks: one cloud.
    let (status, cloud) = get(Some("2022-09-01")).await;
    assert_eq!(status, 200, "{cloud}");
    assert_eq!(cloud["resourceManager"], "https://management.azure.test/");
    assert_eq!(
        cloud["authentication"]["loginEndpoint"],
        env.settings.authority_host
    );
    assert_eq!(
        cloud["authentication"]["audiences"][0],
        "https://management.azure.test/"
    );
    assert_eq!(cloud["authentication"]["tenant"], "common");
    assert_eq!(cloud["suffixes"]["storage"], "core.test");
    for field in [
        "portal",
        "media",
        "graphAudience",
        "graph",
        "name",
        "batch",
        "vmImageAliasDoc",
        "activeDirectoryDataLake",
        "sqlManagement",
        "microsoftGraphResourceId",
        "appInsightsResourceId",
        "appInsightsTelemetryChannelResourceId",
        "attestationResourceId",
        "synapseAnalyticsResourceId",
        "logAnalyticsResourceId",
        "ossrDbmsResourceId",
    ] {
        assert!(cloud[field].is_string(), "{field}: {cloud}");
    }
    assert_eq!(cloud["suffixes"].as_object().unwrap().len(), 14);
    // 2019-05-01 (ARM_CLOUD_METADATA_URL, Go, PowerShell): a list of clouds.
    let (status, clouds) = get(Some("2019-05-01")).await;
    assert_eq!(status, 200);
    assert_eq!(clouds[0]["resourceManager"], cloud["resourceManager"]);
    assert_eq!(clouds[0]["suffixes"].as_object().unwrap().len(), 7);
    // The older flat document.
    for v in [Some("2015-01-01"), Some("1.0"), Some("2018-01-01"), None] {
        let (status, doc) = get(v).await;
        assert_eq!(status, 200, "{v:?}");
        assert!(doc["authentication"]["loginEndpoint"].is_string(), "{doc}");
        assert!(doc["galleryEndpoint"].is_string(), "{doc}");
    }
    let (status, err) = get(Some("2030-01-01")).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "InvalidApiVersionParameter");
    // Anything else on ARM still wants a token.
    let r = env
        .client
        .get(format!(
            "{}/subscriptions?api-version=2022-12-01",
            env.settings.arm_endpoint
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn subscriptions_tenants_and_providers_answer_as_arm_does() {
    let env = start().await;
    let s = env.settings.clone();
    let arm = |path: &str| format!("{}{path}", s.arm_endpoint);
    let (status, subs) = env.get(&arm("/subscriptions?api-version=2022-12-01")).await;
    assert_eq!(status, 200, "{subs}");
    assert_eq!(
        subs["value"][0]["subscriptionId"],
        s.subscription_id.as_str()
    );
    assert_eq!(subs["value"][0]["tenantId"], s.tenant_id.as_str());
    assert_eq!(subs["value"][0]["state"], "Enabled");
    assert_eq!(subs["count"]["value"], 1);
    let (status, sub) = env
        .get(&arm(&format!(
            "/subscriptions/{}?api-version=2020-01-01",
            s.subscription_id
        )))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sub, subs["value"][0]);
    let (status, tenants) = env.get(&arm("/tenants?api-version=2022-12-01")).await;
    assert_eq!(status, 200);
    assert_eq!(tenants["value"][0]["tenantId"], s.tenant_id.as_str());
    // ARM's own endpoints refuse versions they do not have, listing theirs.
    let (status, err) = env.get(&arm("/subscriptions?api-version=2025-05-01")).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "InvalidApiVersionParameter");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2022-12-01")
    );

    let providers = format!("/subscriptions/{}/providers", s.subscription_id);
    let (status, web) = env
        .get(&arm(&format!(
            "{providers}/Microsoft.Web?api-version=2024-11-01"
        )))
        .await;
    assert_eq!(status, 200, "{web}");
    assert_eq!(web["namespace"], "Microsoft.Web");
    assert_eq!(web["registrationState"], "Registered");
    let types = web["resourceTypes"].as_array().unwrap();
    let sites = types.iter().find(|t| t["resourceType"] == "sites").unwrap();
    let versions: Vec<&str> = sites["apiVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(versions.contains(&"2023-01-01") && versions.contains(&"2015-08-01"));
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(sites["locations"], json!(["West Europe"]));
    assert!(types.iter().any(|t| t["resourceType"] == "staticSites"));
    // Case-insensitive namespace, the list, registration, unknown ones.
    let (status, app) = env
        .get(&arm(&format!(
            "{providers}/microsoft.app?api-version=2021-04-01"
        )))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app["namespace"], "Microsoft.App");
    let (status, all) = env
        .get(&arm(&format!("{providers}?api-version=2021-04-01")))
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["namespace"].as_str())
        .collect();
    assert_eq!(
        names,
        ["Microsoft.App", "Microsoft.Insights", "Microsoft.Web"]
    );
    let (status, reg) = env
        .post_empty(&arm(&format!(
            "{providers}/Microsoft.Web/register?api-version=2021-04-01"
        )))
        .await;
    assert_eq!(
        (status, reg["registrationState"].as_str()),
        (200, Some("Registered"))
    );
    let (status, err) = env
        .get(&arm(&format!(
            "{providers}/Microsoft.Nope?api-version=2021-04-01"
        )))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("InvalidResourceNamespace"))
    );
}

#[tokio::test]
async fn the_documented_api_versions_are_accepted_and_others_refused() {
    let env = start().await;
    let site = format!("{}{}", env.settings.arm_endpoint, env.site_path(PAYMENTS));
    // Older api-versions of sites, which older CLI releases and other tools
    // send, answer as the newest do.
    for v in [
        "2015-08-01",
        "2016-08-01",
        "2022-03-01",
        "2023-01-01",
        "2026-09-01",
    ] {
        let (status, body) = env.get(&format!("{site}?api-version={v}")).await;
        assert_eq!(status, 200, "{v}: {body}");
        assert_eq!(body["name"], PAYMENTS);
        let (status, _) = env.get(&format!("{site}/config/web?api-version={v}")).await;
        assert_eq!(status, 200, "{v}");
    }
    for v in ["2023-01-02", "2014-04-01", "2030-01-01"] {
        let (status, body) = env.get(&format!("{site}?api-version={v}")).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("2023-01-01") && message.contains("2016-08-01"),
            "{message}"
        );
    }
    // Container Apps and the Tags API likewise.
    let ca = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.App/containerApps/ca-contoso-payments",
        env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
    );
    for v in [
        "2022-03-01",
        "2023-05-01",
        "2024-10-02-preview",
        "2025-01-01",
    ] {
        let (status, body) = env.get(&format!("{ca}?api-version={v}")).await;
        assert_eq!(status, 200, "{v}: {body}");
    }
    let tags = format!("{site}/providers/Microsoft.Resources/tags/default");
    for (v, want) in [
        ("2019-10-01", 200),
        ("2025-04-01", 200),
        ("2019-08-01", 400),
    ] {
        let (status, _) = env.get(&format!("{tags}?api-version={v}")).await;
        assert_eq!(status, want, "{v}");
    }
}

#[tokio::test]
async fn publishxml_gives_the_publish_profiles_of_a_site_and_a_slot() {
    let env = start().await;
    let post = |below: &'static str, body: Value| {
        let env = &env;
        async move {
            let r = env
                .client
                .post(env.arm(below))
                .bearer_auth(&env.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, ct, r.text().await.unwrap())
        }
    };
    let (status, ct, xml) = post("/publishxml", json!({"format": "WebDeploy"})).await;
    assert_eq!(status, 200, "{xml}");
    assert!(ct.starts_with("application/xml"), "{ct}");
    assert!(xml.starts_with("<publishData><publishProfile profileName=\"app-contoso-payments - Web Deploy\" publishMethod=\"MSDeploy\" publishUrl=\"app-contoso-payments.scm.azurewebsites.test:443\" msdeploySite=\"app-contoso-payments\" userName=\"$app-contoso-payments\""), "{xml}");
    assert_eq!(xml.matches("<publishProfile ").count(), 3);
    assert!(xml.contains("publishMethod=\"FTP\" publishUrl=\"ftps://"));
    assert!(xml.contains("publishMethod=\"ZipDeploy\""));
    assert!(xml.ends_with("</publishData>"));
    // The same password each time, a slot's own names.
    let (_, _, again) = post("/publishxml", json!({"format": "WebDeploy"})).await;
    assert_eq!(again, xml);
    let (status, _, slot) = post(
        "/slots/staging/publishxml",
        json!({"format": "WebDeploy", "includeDisasterRecoveryEndpoints": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(slot.contains("profileName=\"app-contoso-payments-staging - Zip Deploy\""));
    assert!(slot.contains("userName=\"$app-contoso-payments__staging\""));
    assert!(
        slot.contains("userName=\"app-contoso-payments__staging\\$app-contoso-payments__staging\"")
    );
    assert!(slot.contains(" - ReadOnly - FTP\""));
    assert_eq!(slot.matches("<publishProfile ").count(), 4);
    let (status, _, _) = post("/publishxml", json!({"format": "Bogus"})).await;
    assert_eq!(status, 400);
    let (status, _, _) = post("/publishxml", json!({"format": "WebDeploy", "extra": 1})).await;
    assert_eq!(status, 400);
    let (status, _) = env
        .send_json(Method::GET, &env.arm("/publishxml"), &json!({}))
        .await;
    assert_ne!(status, 200);
}
