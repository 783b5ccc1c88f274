//! Entra ID's v2.0 token endpoint (client credentials with a secret or a
//! federated client assertion, reference §2.1–2.2) and the GitHub Actions
//! OIDC token service that mints those assertions (Azure Pipelines' is in
//! `pipelines.rs`).

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::tokens;

/// The client-assertion type Entra accepts for federated credentials.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The ARM resources of the sandbox tenant (the application ID URIs of its
/// Azure Resource Manager service principal), without a trailing slash.
/// `https://management.core.windows.net/` is what the az CLI asks for on the
/// public cloud; the sandbox is a cloud whose ARM lives at
/// `management.azure.test`, so a client that derives the resource from the
/// endpoint (the Azure SDKs, a custom-cloud `az cloud register`) asks for
/// that one.
const ARM_RESOURCES: [&str; 3] = [
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.azure.test",
];

/// OpenID Connect scopes a client may add beside a resource's `.default`
/// (MSAL adds them on user flows); they name no resource.
const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// Why a `scope` was refused: `(error, code, description)`.
type ScopeError = (&'static str, u32, String);

/// Reads `scope` as Entra does for the client-credentials grant: one
/// `{resource}/.default` (OIDC scopes beside it are ignored), the resource
/// matched case-insensitively with or without a trailing slash (so
/// `https://management.azure.test//.default`, what a resource id registered
/// as `https://management.azure.test/` becomes, names the same resource).
/// Returns the token audience: the resource's canonical id with a trailing
/// slash.
fn scope_audience(scope: &str) -> Result<String, ScopeError> {
    let invalid = |scope: &str| {
        (
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    };
    let resources: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.iter().any(|o| s.eq_ignore_ascii_case(o)))
        .collect();
    let one = match resources.as_slice() {
        [one] => *one,
        [] => return Err(invalid(scope)),
        _ => {
            // (guessed) wording of AADSTS28000 for two resources in one request.
            return Err((
                "invalid_scope",
                28000,
                format!(
                    "Provided value for the input parameter scope '{scope}' is not valid because it contains more than one resource. Scope {scope} is not valid."
                ),
            ));
        }
    };
    let Some(resource) = one.strip_suffix("/.default").filter(|r| !r.is_empty()) else {
        return Err(invalid(one));
    };
    let canonical = resource.strip_suffix('/').unwrap_or(resource);
    match ARM_RESOURCES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(canonical))
    {
        Some(r) => Ok(format!("{r}/")),
        None => Err((
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named Contoso. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )),
    }
}

fn err(shared: &Shared, status: StatusCode, error: &str, code: u32, description: &str) -> Resp {
    respond::entra_error(status, error, code, description, &shared.authority)
}

fn missing(shared: &Shared, name: &str) -> Resp {
    err(
        shared,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// Entra's discovery documents: `/{tenant}/v2.0/.well-known/openid-configuration`
/// and the signing keys at `/{tenant}/discovery/v2.0/keys`.
fn discovery(shared: &Shared, segs: &[String]) -> Option<Resp> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let tenant = shared.world().ids.tenant_id.clone();
    let base = format!("{}/{tenant}", shared.authority);
    match s.as_slice() {
        [t, "v2.0", ".well-known", "openid-configuration"] if t.eq_ignore_ascii_case(&tenant) => {
            Some(respond::json(
                StatusCode::OK,
                &json!({
                    "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                    "issuer": format!("{base}/v2.0"),
                    "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                    "tenant_region_scope": "EU",
                    "cloud_instance_name": "azure.test",
                }),
            ))
        }
        [t, "discovery", "v2.0", "keys"] if t.eq_ignore_ascii_case(&tenant) => {
            Some(respond::json(StatusCode::OK, &shared.entra.jwks()))
        }
        _ => None,
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    let segs = req.segments();
    if req.method == Method::GET
        && let Some(r) = discovery(shared, &segs)
    {
        return r;
    }
    let is_token_path = segs.len() == 4
        && segs[1].eq_ignore_ascii_case("oauth2")
        && segs[2].eq_ignore_ascii_case("v2.0")
        && segs[3].eq_ignore_ascii_case("token");
    if !is_token_path {
        return respond::text(
            StatusCode::NOT_FOUND,
            "The sandbox serves only /{tenant}/oauth2/v2.0/token on this host.",
        );
    }
    if req.method != Method::POST {
        return err(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            &format!(
                "The endpoint only accepts POST requests. Received a {} request.",
                req.method
            ),
        );
    }
    let tenant = &segs[0];
    let (tenant_id, client_id) = {
        let w = shared.world();
        (w.ids.tenant_id.clone(), w.ids.client_id.clone())
    };
    if !tenant.eq_ignore_ascii_case(&tenant_id) {
        return err(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(grant_type) = get("grant_type") else {
        return missing(shared, "grant_type");
    };
    if grant_type != "client_credentials" {
        return err(
            shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client) = get("client_id") else {
        return missing(shared, "client_id");
    };
    if !client.eq_ignore_ascii_case(&client_id) {
        return err(
            shared,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client}' was not found in the directory 'Contoso'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let Some(scope) = get("scope") else {
        return missing(shared, "scope");
    };
    let audience = match scope_audience(scope) {
        Ok(aud) => aud,
        Err((error, code, description)) => {
            return err(shared, StatusCode::BAD_REQUEST, error, code, &description);
        }
    };

    match (get("client_secret"), get("client_assertion")) {
        (Some(_), Some(_)) => {
            // (guessed) wording; Entra rejects more than one client credential.
            return err(
                shared,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90023,
                "Only one client authentication method may be used: client_secret or client_assertion.",
            );
        }
        (None, None) => {
            return err(
                shared,
                StatusCode::BAD_REQUEST,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            );
        }
        (Some(secret), None) => {
            if secret != shared.client_secret {
                return err(
                    shared,
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                );
            }
        }
        (None, Some(assertion)) => {
            match get("client_assertion_type") {
                None => return missing(shared, "client_assertion_type"),
                Some(t) if t != JWT_BEARER => {
                    // (guessed) code; the message names the expected type.
                    return err(
                        shared,
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        50027,
                        &format!(
                            "client_assertion_type '{t}' is not supported; expected '{JWT_BEARER}'."
                        ),
                    );
                }
                Some(_) => {}
            }
            if let Err(resp) = check_assertion(shared, assertion) {
                return resp;
            }
        }
    }

    let lifetime = i64::try_from(shared.config.token_lifetime.as_secs()).unwrap_or(3599);
    match issue_access_token(shared, &audience, lifetime, 0) {
        Ok(token) => {
            let mut r = respond::json(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": token,
                }),
            );
            respond::set_header(&mut r, "cache-control", "no-store, no-cache");
            respond::set_header(&mut r, "pragma", "no-cache");
            r
        }
        Err(e) => respond::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Validates a federated client assertion as Entra does: the token names
/// its issuer, a federated identity credential of the app must have that
/// issuer, the token must be signed by that issuer's key, and the credential's
/// audience and subject must match. The app has two: GitHub's
/// (`token.actions.test`) and the Azure Pipelines service connection's
/// (`vstoken.dev.azure.test/{organizationId}`).
fn check_assertion(shared: &Shared, assertion: &str) -> Result<(), Resp> {
    // (issuer, subject, audience, the issuer's key)
    let credentials = [
        (
            shared.federated.issuer.as_str(),
            shared.federated.subject.as_str(),
            shared.federated.audience.as_str(),
            &shared.oidc,
        ),
        (
            shared.pipelines.issuer.as_str(),
            shared.pipelines.subject.as_str(),
            shared.pipelines.audience.as_str(),
            &shared.pipelines.signer,
        ),
    ];
    let mut first_error = None;
    let mut verified = None;
    for (i, (.., signer)) in credentials.iter().enumerate() {
        match signer.verify(assertion) {
            Ok(c) => {
                verified = Some((c, i));
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((claims, signed_by)) = verified else {
        use jsonwebtoken::errors::ErrorKind;
        let bad_signature = first_error
            .as_ref()
            .is_some_and(|e| matches!(e.kind(), ErrorKind::InvalidSignature));
        return Err(if bad_signature {
            bad_signature_error(shared)
        } else {
            err(
                shared,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            )
        });
    };
    let iss = claims.iss.clone().unwrap_or_default();
    let Some(at) = credentials.iter().position(|(issuer, ..)| *issuer == iss) else {
        return Err(no_match(shared, 700211, "issuer", &iss));
    };
    // The issuer's key must have signed it, not another issuer's.
    if at != signed_by {
        return Err(bad_signature_error(shared));
    }
    let (_, subject, audience, _) = credentials[at];
    let auds = claims.aud.as_ref().map(|a| a.values()).unwrap_or_default();
    if !auds.contains(&audience) {
        return Err(no_match(shared, 700212, "audience", &auds.join(",")));
    }
    let sub = claims.sub.clone().unwrap_or_default();
    if sub != subject {
        return Err(no_match(shared, 700213, "subject", &sub));
    }
    let now = tokens::now_unix();
    let exp = claims.exp.unwrap_or(0);
    let nbf = claims.nbf.unwrap_or(i64::MIN);
    if now >= exp || now < nbf {
        let fmt = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_else(|| t.to_string())
        };
        return Err(err(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                fmt(now),
                fmt(claims.nbf.or(claims.iat).unwrap_or(now)),
                fmt(exp)
            ),
        ));
    }
    Ok(())
}

fn bad_signature_error(shared: &Shared) -> Resp {
    err(
        shared,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700027,
        "Client assertion failed signature validation.",
    )
}

fn no_match(shared: &Shared, code: u32, what: &str, value: &str) -> Resp {
    err(
        shared,
        StatusCode::BAD_REQUEST,
        "invalid_client",
        code,
        &format!(
            "No matching federated identity record found for presented assertion {what} '{value}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
        ),
    )
}

/// Signs an Entra access token for `audience`, valid from `offset` seconds
/// from now for `lifetime` seconds (negative values make expired tokens for
/// tests).
pub(crate) fn issue_access_token(
    shared: &Shared,
    audience: &str,
    lifetime: i64,
    offset: i64,
) -> Result<String, crate::SandboxError> {
    let (tenant, client) = {
        let w = shared.world();
        (w.ids.tenant_id.clone(), w.ids.client_id.clone())
    };
    let now = tokens::now_unix() + offset;
    let claims = json!({
        "aud": audience,
        "iss": format!("{}/{}/v2.0", shared.authority, tenant),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": client,
        "azp": client,
        "idtyp": "app",
        "oid": "c0de0000-0b1d-4000-8000-0000000000a1",
        "sub": "c0de0000-0b1d-4000-8000-0000000000a1",
        "tid": tenant,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        "ver": "2.0",
    });
    shared.entra.sign(&claims)
}

/// Signs a GitHub-style OIDC ID token.
pub(crate) fn issue_id_token(
    shared: &Shared,
    audience: &str,
    subject: &str,
    lifetime: i64,
) -> Result<String, crate::SandboxError> {
    let now = tokens::now_unix();
    let claims: Value = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": subject,
        "aud": audience,
        "iss": shared.federated.issuer,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "repository": "contoso/payments",
        "repository_owner": "contoso",
        "environment": "production",
        "ref": "refs/heads/hotfix/inc-4711-large-orders",
        "ref_type": "branch",
        "event_name": "workflow_dispatch",
        "runner_environment": "github-hosted",
        "workflow": "hotfix",
    });
    shared.oidc.sign(&claims)
}

/// GitHub's OIDC token service: `GET /_apis/oidc/token?api-version=2.0&audience=…`
/// with `Authorization: Bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>`.
pub(crate) fn handle_oidc(shared: &Shared, req: &Req) -> Resp {
    // The issuer's discovery documents, which Entra reads to verify tokens.
    if req.method == Method::GET && req.path == "/.well-known/openid-configuration" {
        let iss = &shared.federated.issuer;
        return respond::json(
            StatusCode::OK,
            &json!({
                "issuer": iss,
                "jwks_uri": format!("{iss}/.well-known/jwks"),
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["id_token"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_owner", "environment", "event_name", "runner_environment"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["openid"],
            }),
        );
    }
    if req.method == Method::GET && req.path == "/.well-known/jwks" {
        return respond::json(StatusCode::OK, &shared.oidc.jwks());
    }
    if req.path != "/_apis/oidc/token" {
        return respond::text(StatusCode::NOT_FOUND, "Not Found");
    }
    if req.method != Method::GET && req.method != Method::POST {
        return respond::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let expected = format!("Bearer {}", shared.oidc_request_token);
    if req.header("authorization") != Some(expected.as_str()) {
        return respond::json(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "The token is not valid for this request."}),
        );
    }
    let audience = req
        .query_param("audience")
        .map(str::to_owned)
        .unwrap_or_else(|| "https://github.com/contoso".to_owned());
    match issue_id_token(shared, &audience, &shared.federated.subject, 300) {
        Ok(token) => respond::json(StatusCode::OK, &json!({"count": 1, "value": token})),
        Err(e) => respond::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
