//! Server plumbing, Entra/OIDC tokens and ARM's front-door errors.
#![cfg(test)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn start_serves_settings_and_shutdown_cleans_up() {
    let env = start().await;
    let s = &env.settings;
    assert!(env.sb.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let ca_on_disk = std::fs::read_to_string(&s.ca_cert_path).unwrap();
    assert_eq!(ca_on_disk, env.sb.ca_pem());
    assert_eq!(s.arm_endpoint, "https://management.azure.test");
    assert_eq!(s.authority_host, "https://login.azure.test");
    assert_eq!(s.resource_group, "rg-contoso-prod");
    let exports = s.export_lines();
    for name in [
        "EXPEDITE_ARM_ENDPOINT",
        "AZURE_AUTHORITY_HOST",
        "EXPEDITE_RESOLVE",
        "EXPEDITE_CA_CERT",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_SUBSCRIPTION_ID",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ] {
        assert!(
            exports.contains(&format!("export {name}='")),
            "{name} missing in {exports}"
        );
    }
    assert!(exports.contains(&format!("*.azure.test={}", env.sb.https_addr())));
    let parsed: expedite_sandbox::Settings = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(&parsed, s);
    // The control API serves the same settings.
    let via_http: Value = env
        .client
        .get(env.control("/_sandbox/settings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(via_http["client_secret"], s.client_secret.as_str());

    let https = env.sb.https_addr();
    let ca_path = s.ca_cert_path.clone();
    env.sb.shutdown().await;
    assert!(tokio::net::TcpStream::connect(https).await.is_err());
    assert!(!ca_path.exists(), "temp CA dir should be removed");
}

#[tokio::test]
async fn client_secrets_differ_per_start() {
    let a = expedite_sandbox::start(fast_config()).await.unwrap();
    let b = expedite_sandbox::start(fast_config()).await.unwrap();
    assert_ne!(a.settings().client_secret, b.settings().client_secret);
    assert_eq!(a.settings().tenant_id, b.settings().tenant_id);
}

#[tokio::test]
async fn unknown_hosts_and_routes_are_azure_shaped_404s_and_logged() {
    let env = start().await;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
        .resolve("nowhere.azurewebsites.test", env.sb.https_addr())
        .build()
        .unwrap();
    let r = client
        .get("https://nowhere.azurewebsites.test/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Web app not found"));

    let (status, body) = env
        .get(&format!(
            "https://management.azure.test/subscriptions/{}/resourceGroups/rg-contoso-prod/providers/Microsoft.Web/sitez/x?{API}",
            env.settings.subscription_id
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "InvalidResourceType");

    let (status, body) = env.get(&env.arm("/frobnicate")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "InvalidResourceType");

    let log = env.sb.request_log();
    let unknown = log
        .iter()
        .find(|r| r.host == "nowhere.azurewebsites.test")
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.target, "unknown");
    assert!(
        log.iter()
            .any(|r| r.path.contains("/sitez/x") && r.status == 404 && r.target == "arm")
    );
}

#[tokio::test]
async fn request_log_records_client_request_id_and_pages_by_seq() {
    let env = start().await;
    let before = env.sb.last_seq();
    let r = env
        .client
        .get(env.arm(""))
        .bearer_auth(&env.token)
        .header(
            "x-ms-client-request-id",
            "6f1b0c2e-1111-4222-8333-444455556666",
        )
        .header("x-ms-correlation-request-id", "corr-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-ms-client-request-id"],
        "6f1b0c2e-1111-4222-8333-444455556666"
    );
    assert_eq!(r.headers()["x-ms-correlation-request-id"], "corr-1");
    assert!(r.headers().contains_key("x-ms-request-id"));
    assert!(r.headers().contains_key("x-ms-routing-request-id"));

    let body: Value = env
        .client
        .get(env.control(&format!("/_sandbox/requests?since={before}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reqs = body["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{body}");
    assert_eq!(
        reqs[0]["client_request_id"],
        "6f1b0c2e-1111-4222-8333-444455556666"
    );
    assert_eq!(reqs[0]["method"], "GET");
    assert_eq!(reqs[0]["status"], 200);
    assert_eq!(reqs[0]["seq"].as_u64().unwrap(), before + 1);
    assert!(reqs[0]["path"].as_str().unwrap().ends_with(API));
}

async fn token_request(env: &Env, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = env
        .client
        .post(format!(
            "https://login.azure.test/{tenant}/oauth2/v2.0/token"
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn entra_client_secret_flow_and_errors() {
    let env = start().await;
    let s = env.settings.clone();
    let ok = [
        ("client_id", s.client_id.as_str()),
        ("client_secret", s.client_secret.as_str()),
        ("grant_type", "client_credentials"),
        ("scope", "https://management.azure.com/.default"),
    ];
    let (status, body) = token_request(&env, &s.tenant_id, &ok).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);

    let mut wrong = ok;
    wrong[1].1 = "not-the-secret";
    let (status, body) = token_request(&env, &s.tenant_id, &wrong).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215:")
    );
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());

    let mut scope = ok;
    scope[3].1 = "https://graph.microsoft.com/.default";
    let (status, body) = token_request(&env, &s.tenant_id, &scope).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_resource"))
    );
    scope[3].1 = "https://management.azure.com/user_impersonation";
    let (status, body) = token_request(&env, &s.tenant_id, &scope).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    let (status, body) = token_request(&env, "00000000-dead-4000-8000-000000000000", &ok).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([90002]));

    let (status, body) = token_request(&env, &s.tenant_id, &ok[..3]).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'scope'")
    );

    let mut client = ok;
    client[0].1 = "11111111-2222-4333-8444-555555555555";
    let (status, body) = token_request(&env, &s.tenant_id, &client).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn discovery_documents_publish_keys_that_verify_issued_tokens() {
    let env = start().await;
    let s = &env.settings;
    let cfg: Value = env
        .client
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            s.authority_host, s.tenant_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cfg["token_endpoint"],
        format!("{}/{}/oauth2/v2.0/token", s.authority_host, s.tenant_id)
    );
    let entra_keys: Value = env
        .client
        .get(cfg["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oidc_cfg: Value = env
        .client
        .get("https://token.actions.test/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc_cfg["issuer"], "https://token.actions.test");
    let oidc_keys: Value = env
        .client
        .get(oidc_cfg["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let verify = |token: &str, jwks: &Value| {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &key, &v).map(|d| d.claims)
    };
    let access = verify(&env.token, &entra_keys).unwrap();
    assert_eq!(access["aud"], "https://management.azure.com/");
    assert_eq!(access["tid"], s.tenant_id.as_str());
    assert!(
        verify(&env.token, &oidc_keys).is_err(),
        "issuers sign with different keys"
    );
    let id = env
        .sb
        .issue_id_token("api://AzureADTokenExchange", &s.federated_subject, 300)
        .unwrap();
    let claims = verify(&id, &oidc_keys).unwrap();
    assert_eq!(
        claims["sub"],
        "repo:contoso/payments:environment:production"
    );
}

async fn oidc_token(env: &Env, bearer: &str) -> reqwest::Response {
    env.client
        .get(format!(
            "{}&audience=api%3A%2F%2FAzureADTokenExchange",
            env.settings.oidc_request_url
        ))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn github_oidc_federation_flow_and_assertion_errors() {
    let env = start().await;
    let s = env.settings.clone();
    assert_eq!(oidc_token(&env, "wrong").await.status(), 401);
    let resp = oidc_token(&env, &s.oidc_request_token).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let assertion = body["value"].as_str().unwrap().to_owned();

    let exchange = |assertion: String| {
        let s = s.clone();
        let env = &env;
        async move {
            token_request(
                env,
                &s.tenant_id,
                &[
                    ("client_id", s.client_id.as_str()),
                    ("grant_type", "client_credentials"),
                    ("scope", "https://management.azure.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange(assertion).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let r = env
        .client
        .get(env.arm(""))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let aud = "api://AzureADTokenExchange";
    let wrong_sub = env
        .sb
        .issue_id_token(aud, "repo:contoso/payments:ref:refs/heads/main", 300)
        .unwrap();
    let (status, body) = exchange(wrong_sub).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([700213]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("repo:contoso/payments:ref:refs/heads/main")
    );

    let wrong_aud = env
        .sb
        .issue_id_token("https://github.com/contoso", &s.federated_subject, 300)
        .unwrap();
    let (_, body) = exchange(wrong_aud).await;
    assert_eq!(body["error_codes"], json!([700212]));

    let expired = env
        .sb
        .issue_id_token(aud, &s.federated_subject, -10)
        .unwrap();
    let (status, body) = exchange(expired).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([700024]));

    // Signed by the wrong issuer key (an Entra access token is no GitHub token).
    let (status, body) = exchange(access).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn arm_rejects_missing_expired_forged_and_wrong_audience_tokens() {
    let env = start().await;
    let r = env.client.get(env.arm("")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");

    let expired = env.sb.issue_access_token(-7200, 3600).unwrap();
    let body: Value = env
        .client
        .get(env.arm(""))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "ExpiredAuthenticationToken");

    let mut forged = env.token.clone();
    forged.pop();
    forged.push(if env.token.ends_with('A') { 'B' } else { 'A' });
    let r = env
        .client
        .get(env.arm(""))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let graph = env
        .sb
        .issue_access_token_for("https://graph.microsoft.com", 600)
        .unwrap();
    let body: Value = env
        .client
        .get(env.arm(""))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationTokenAudience");

    // Kudu takes the same bearer and refuses the same forgeries.
    let r = env
        .client
        .get("https://app-contoso-payments-staging.scm.azurewebsites.test/api/deployments/latest")
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn arm_api_version_and_scope_errors() {
    let env = start().await;
    let base = format!("{}{}", env.settings.arm_endpoint, env.site_path(PAYMENTS));
    let (status, body) = env.get(&base).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");
    let (status, body) = env.get(&format!("{base}?api-version=2030-01-01")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2025-05-01")
    );
    let (_, body) = env.get(&format!("{base}?api-version=banana")).await;
    assert_eq!(body["error"]["code"], "InvalidApiVersionParameter");
    let (status, _) = env.get(&format!("{base}?api-version=2024-11-01")).await;
    assert_eq!(status, 200);

    let (status, body) = env
        .get(&format!(
            "https://management.azure.test/subscriptions/{}/resourceGroups/rg-nope/providers/Microsoft.Web/sites/x?{API}",
            env.settings.subscription_id
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );
    let (status, body) = env
        .get(&format!(
            "https://management.azure.test/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-contoso-prod?{API}"
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("SubscriptionNotFound"))
    );
    let (status, body) = env
        .get(&format!(
            "{}{}?{API}",
            env.settings.arm_endpoint,
            env.site_path("app-nope")
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
}

/// Sends raw HTTP/1.1 over TLS, so no client library adds Content-Length.
async fn raw_https(env: &Env, request: String) -> String {
    let config = Arc::new(env.sb.client_tls_config().unwrap());
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(env.sb.https_addr())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("management.azure.test").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn body_less_post_without_content_length_gets_411() {
    let env = start().await;
    let path = format!("{}/restart?{API}", env.site_path(PAYMENTS));
    let bare = format!(
        "POST {path} HTTP/1.1\r\nHost: management.azure.test\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        env.token
    );
    let answer = raw_https(&env, bare).await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(answer.contains("The request must be chunked or have a content length"));

    let with_length = format!(
        "POST {path} HTTP/1.1\r\nHost: management.azure.test\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        env.token
    );
    let answer = raw_https(&env, with_length).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Kudu's front end applies the same rule.
    let kudu = format!(
        "POST /api/zipdeploy HTTP/1.1\r\nHost: app-contoso-payments-staging.scm.azurewebsites.test\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        env.token
    );
    let answer = raw_https(&env, kudu).await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
}
