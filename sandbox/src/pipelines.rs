//! Azure Pipelines' OIDC token service for a job (`System.OidcRequestUri`),
//! which mints the tokens an Azure Resource Manager service connection with
//! workload identity federation presents to Entra ID.
//!
//! What a client sends (azure-identity's `AzurePipelinesCredential`, the
//! AzureCLI@2 recipe in the Azure DevOps release notes, sprint 240):
//! `POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId={id}`
//! with `Authorization: Bearer {System.AccessToken}` and
//! `Content-Type: application/json`; the answer is `{"oidcToken": "…"}`.
//! `SYSTEM_OIDCREQUESTURI` is the job's
//! `{org}/{projectId}/_apis/distributedtask/hubs/build/plans/{planId}/jobs/{jobId}/oidctoken`
//! (REST reference "Oidctoken - Create").
//!
//! The token: issuer `https://vstoken.dev.azure.com/{organizationId}` (here
//! `https://vstoken.dev.azure.test/{organizationId}`), subject
//! `sc://{organization}/{project}/{serviceConnectionName}`, audience
//! `api://AzureADTokenExchange` (the "Azure DevOps issuer" of the workload
//! identity troubleshooting page), valid for ten minutes (the expiry
//! AADSTS700024 reports for AzureCLI@2's `idToken`, azure-cli#28708). It is
//! signed with a key of its own, so it never verifies as GitHub's.
//!
//! Refusals: a `System.AccessToken` that is missing or wrong gets 401 with
//! Azure DevOps' `TF400813` body when the client sends
//! `X-TFS-FedAuthRedirect: Suppress`, and otherwise 203 with the HTML
//! sign-in page (the Azure SDKs added that header because of the 203,
//! azure-sdk-for-cpp#5786, azure-sdk-for-net#46135); `GET` gets 405 with
//! the body terraform-provider-azapi#852 quotes; an unknown service
//! connection gets "No service connection found with identifier …" (the
//! azure-identity troubleshooting guides; its status, 404, is guessed).

use http::{Method, StatusCode};
use serde_json::json;

use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::tokens::{self, Signer};

/// The sandbox's Azure DevOps organization.
pub const ORGANIZATION: &str = "contoso";
/// Its project.
pub const PROJECT: &str = "payments";
/// The Azure Resource Manager service connection the job may use.
pub const SERVICE_CONNECTION: &str = "sc-contoso-prod";
/// How long a minted token is valid (AzureCLI@2's `idToken`: ten minutes).
pub const TOKEN_LIFETIME_SECS: i64 = 600;

const ORGANIZATION_ID: &str = "0de0c0de-0a0a-4000-8000-00000000a201";
const PROJECT_ID: &str = "0de0c0de-0b0b-4000-8000-00000000a202";
const PLAN_ID: &str = "0de0c0de-0c0c-4000-8000-00000000a203";
const JOB_ID: &str = "0de0c0de-0d0d-4000-8000-00000000a204";
const SERVICE_CONNECTION_ID: &str = "0de0c0de-5c5c-4000-8000-00000000a205";

/// The pipeline job whose steps ask for tokens, and the federated identity
/// credential Entra holds for its service connection.
pub(crate) struct PipelineJob {
    /// `System.AccessToken` (random per start).
    pub access_token: String,
    pub service_connection_id: String,
    /// The federated credential: issuer, subject, audience.
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    /// The issuer's signing key.
    pub signer: Signer,
}

impl PipelineJob {
    pub fn new(access_token: String) -> Result<Self, crate::SandboxError> {
        Ok(PipelineJob {
            access_token,
            service_connection_id: SERVICE_CONNECTION_ID.to_owned(),
            issuer: format!(
                "https://{}/{ORGANIZATION_ID}",
                crate::hosts::PIPELINES_ISSUER
            ),
            subject: format!("sc://{ORGANIZATION}/{PROJECT}/{SERVICE_CONNECTION}"),
            audience: crate::FEDERATED_AUDIENCE.to_owned(),
            signer: Signer::generate("sandbox-pipelines-1")?,
        })
    }

    /// `SYSTEM_OIDCREQUESTURI` (no query).
    pub fn request_uri(&self) -> String {
        format!("https://{}{}", crate::hosts::PIPELINES, request_path())
    }
}

fn request_path() -> String {
    format!(
        "/{ORGANIZATION}/{PROJECT_ID}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken"
    )
}

/// Signs a pipeline OIDC token for the service connection, valid from
/// `offset` seconds from now for `lifetime` seconds.
pub(crate) fn issue_token(
    shared: &Shared,
    lifetime: i64,
    offset: i64,
) -> Result<String, crate::SandboxError> {
    let job = &shared.pipelines;
    let now = tokens::now_unix() + offset;
    // Claims beyond the registered ones are (guessed) Azure DevOps names.
    shared.pipelines.signer.sign(&json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": job.issuer,
        "sub": job.subject,
        "aud": job.audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "org_id": ORGANIZATION_ID,
        "prj_id": PROJECT_ID,
        "sc_id": job.service_connection_id,
        "pln_id": PLAN_ID,
        "job_id": JOB_ID,
    }))
}

/// Azure DevOps' error body (`TF…` and `Vss…` exceptions).
fn devops_error(status: StatusCode, message: &str, type_key: &str) -> Resp {
    respond::json(
        status,
        &json!({
            "$id": "1",
            "innerException": null,
            "message": message,
            "typeName": format!("Microsoft.TeamFoundation.DistributedTask.WebApi.{type_key}, Microsoft.TeamFoundation.DistributedTask.WebApi"),
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
        }),
    )
}

/// The sign-in page Azure DevOps answers an unauthenticated browser-like
/// request with (203 Non-Authoritative Information).
const SIGN_IN_PAGE: &str = "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body><p>Sign in to your account to continue to Azure DevOps.</p></body></html>";

/// `POST {request path}?api-version=7.1&serviceConnectionId={id}`.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    if !req.path.eq_ignore_ascii_case(&request_path()) {
        return respond::text(
            StatusCode::NOT_FOUND,
            "The sandbox serves only its pipeline job's OIDC token endpoint on this host (SYSTEM_OIDCREQUESTURI in its settings).",
        );
    }
    let job = &shared.pipelines;
    let authorized = req
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token == job.access_token
        });
    if !authorized {
        let suppressed = req
            .header("x-tfs-fedauthredirect")
            .is_some_and(|v| v.eq_ignore_ascii_case("suppress"));
        if !suppressed {
            return respond::html(StatusCode::NON_AUTHORITATIVE_INFORMATION, SIGN_IN_PAGE);
        }
        let mut r = respond::json(
            StatusCode::UNAUTHORIZED,
            &json!({
                "$id": "1",
                "innerException": null,
                "message": "TF400813: The user '' is not authorized to access this resource.",
                "typeName": "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server",
                "typeKey": "UnauthorizedRequestException",
                "errorCode": 0,
                "eventId": 3000,
            }),
        );
        respond::set_header(&mut r, "www-authenticate", "Bearer");
        return r;
    }
    if req.method != Method::POST {
        return respond::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"count": 1, "value": {"Message": format!("The requested resource does not support http method '{}'.", req.method)}}),
        );
    }
    match req.query_param("api-version") {
        None => {
            return devops_error(
                StatusCode::BAD_REQUEST,
                "No api-version was supplied for the \"POST\" request. The version must be supplied either as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a query parameter (e.g. '?api-version=1.0').",
                "VssVersionNotSpecifiedException",
            );
        }
        // 7.1 and its preview (the REST reference's `7.1-preview.1`, what
        // older SDKs send) carry the endpoint; (guessed) wording otherwise.
        Some(v) if v == "7.1" || v.starts_with("7.1-preview") || v.starts_with("7.2-preview") => {}
        Some(v) => {
            return devops_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The requested REST API version of {v} is out of range for this resource. Use api-version 7.1."
                ),
                "VssVersionOutOfRangeException",
            );
        }
    }
    let Some(id) = req
        .query_param("serviceConnectionId")
        .filter(|v| !v.is_empty())
    else {
        // (guessed) A job-scoped token without a service connection is not
        // emulated; the sandbox asks for the parameter instead.
        return devops_error(
            StatusCode::BAD_REQUEST,
            "The sandbox mints tokens for a service connection only: add serviceConnectionId to the query.",
            "ArgumentException",
        );
    };
    if !id.eq_ignore_ascii_case(&job.service_connection_id) {
        return devops_error(
            StatusCode::NOT_FOUND,
            &format!("No service connection found with identifier {id}."),
            "ServiceEndpointNotFoundException",
        );
    }
    match issue_token(shared, TOKEN_LIFETIME_SECS, 0) {
        Ok(token) => respond::json(StatusCode::OK, &json!({"oidcToken": token})),
        Err(e) => respond::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
