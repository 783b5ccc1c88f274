//! The Azure Pipelines OIDC token service (`dev.azure.test`), driven the
//! way azure-identity's `AzurePipelinesCredential` drives Azure DevOps'
//! (`POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=…`,
//! `Authorization: Bearer {System.AccessToken}`), and Entra accepting its
//! tokens as federated assertions for the service connection's credential.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

/// Asks the job's token service; `suppress` sends `X-TFS-FedAuthRedirect`.
async fn ask(
    env: &Env,
    access_token: &str,
    query: &str,
    suppress: bool,
) -> (u16, Option<String>, String) {
    let s = &env.settings;
    let mut req = env
        .client
        .post(format!("{}?{query}", s.pipelines_oidc_request_uri))
        .bearer_auth(access_token)
        .header("content-type", "application/json")
        .header("content-length", "0");
    if suppress {
        req = req.header("X-TFS-FedAuthRedirect", "Suppress");
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, ct, r.text().await.unwrap())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn exchange(env: &Env, assertion: &str) -> (u16, Value) {
    let s = &env.settings;
    let r = env
        .client
        .post(format!(
            "https://login.azure.test/{}/oauth2/v2.0/token",
            s.tenant_id
        ))
        .form(&[
            ("client_id", s.client_id.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_job_mints_a_service_connection_token_entra_accepts() {
    let env = start().await;
    let s = env.settings.clone();
    assert!(
        s.pipelines_oidc_request_uri
            .starts_with("https://dev.azure.test/contoso/")
            && s.pipelines_oidc_request_uri.ends_with("/oidctoken"),
        "{}",
        s.pipelines_oidc_request_uri
    );
    let query = format!(
        "api-version=7.1&serviceConnectionId={}",
        s.pipelines_service_connection_id
    );
    let (status, _, body) = ask(&env, &s.pipelines_access_token, &query, true).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let token = body["oidcToken"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(c["iss"], s.pipelines_federated_issuer.as_str());
    assert!(
        s.pipelines_federated_issuer
            .starts_with("https://vstoken.dev.azure.test/")
    );
    assert_eq!(c["sub"], "sc://contoso/payments/sc-contoso-prod");
    assert_eq!(c["sub"], s.pipelines_federated_subject.as_str());
    assert_eq!(c["aud"], "api://AzureADTokenExchange");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        600,
        "ten minutes, as AzureCLI@2's idToken"
    );
    // The older preview version the REST reference names works too.
    let preview = query.replace("7.1", "7.1-preview.1");
    assert_eq!(
        ask(&env, &s.pipelines_access_token, &preview, true).await.0,
        200
    );

    // Entra: the service connection's federated credential accepts it.
    let (status, body) = exchange(&env, &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("eyJ"));
    // GitHub's credential still works beside it.
    let github = env
        .sb
        .issue_id_token("api://AzureADTokenExchange", &s.federated_subject, 300)
        .unwrap();
    assert_eq!(exchange(&env, &github).await.0, 200);
    // A spent pipeline token: AADSTS700024, as AzureCLI@2 users meet it.
    let spent = env.sb.issue_pipeline_token(-900, 600).unwrap();
    let (status, body) = exchange(&env, &spent).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([700024]));
    // A GitHub token cannot pass for the pipeline's, nor the reverse: each
    // issuer's key signs only its own tokens (an Entra access token is
    // neither's).
    let access = body_token(&env).await;
    let (status, body) = exchange(&env, &access).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"], json!([700027]));
}

async fn body_token(env: &Env) -> String {
    env.sb.issue_access_token(0, 600).unwrap()
}

#[tokio::test]
async fn refusals_have_azure_devops_shapes() {
    let env = start().await;
    let s = env.settings.clone();
    let query = format!(
        "api-version=7.1&serviceConnectionId={}",
        s.pipelines_service_connection_id
    );
    // A wrong System.AccessToken: the sign-in page (203) unless the client
    // suppresses the redirect, then TF400813 (401).
    let (status, ct, body) = ask(&env, "not-the-token", &query, false).await;
    assert_eq!(status, 203);
    assert!(ct.unwrap().starts_with("text/html") && body.contains("Sign In"));
    let (status, _, body) = ask(&env, "not-the-token", &query, true).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().starts_with("TF400813"));

    // A service connection the job does not have.
    let other = "0de0c0de-5c5c-4000-8000-0000000000ff";
    let (status, _, body) = ask(
        &env,
        &s.pipelines_access_token,
        &format!("api-version=7.1&serviceConnectionId={other}"),
        true,
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        format!("No service connection found with identifier {other}.")
    );

    // No api-version.
    let (status, _, body) = ask(
        &env,
        &s.pipelines_access_token,
        &format!("serviceConnectionId={}", s.pipelines_service_connection_id),
        true,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("VssVersionNotSpecifiedException"), "{body}");

    // GET, as a GitHub-style client sends: 405.
    let r = env
        .client
        .get(format!("{}?{query}", s.pipelines_oidc_request_uri))
        .bearer_auth(&s.pipelines_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["value"]["Message"],
        "The requested resource does not support http method 'GET'."
    );

    // The request log names the surface.
    assert!(
        env.sb
            .request_log()
            .iter()
            .filter(|r| r.host == "dev.azure.test")
            .all(|r| r.target == "pipelines")
    );
}

#[tokio::test]
async fn settings_carry_what_a_pipeline_step_sees() {
    let env = start().await;
    let s = &env.settings;
    let vars = s.pipelines_env();
    let get = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("TF_BUILD"), "True");
    assert_eq!(get("SYSTEM_OIDCREQUESTURI"), s.pipelines_oidc_request_uri);
    assert_eq!(get("SYSTEM_ACCESSTOKEN"), s.pipelines_access_token);
    assert_eq!(
        get("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
        s.pipelines_service_connection_id
    );
    assert_eq!(get("AZURESUBSCRIPTION_CLIENT_ID"), s.client_id);
    // Printed for people, commented out: `eval` keeps the secret sign-in.
    let exports = s.export_lines();
    assert!(
        exports.contains("# export SYSTEM_ACCESSTOKEN='"),
        "{exports}"
    );
    assert!(
        !exports.contains("\nexport SYSTEM_ACCESSTOKEN"),
        "{exports}"
    );
    // The JSON round-trips.
    let parsed: expedite_sandbox::Settings = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(&parsed, s);
}
