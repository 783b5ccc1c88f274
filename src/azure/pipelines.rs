//! Azure Pipelines sign-in: an Azure Resource Manager service connection
//! with workload identity federation, as azure-identity's
//! `AzurePipelinesCredential` does it, and a federated token given directly.
//!
//! The job's OIDC token service is `SYSTEM_OIDCREQUESTURI` (the predefined
//! `System.OidcRequestUri`): `POST {uri}?api-version=7.1&serviceConnectionId={id}`
//! with `Authorization: Bearer {System.AccessToken}` answers
//! `{"oidcToken": "…"}`, a JWT whose issuer and subject the service
//! connection's federated credential names (`https://vstoken.dev.azure.com/{organizationId}`
//! and `sc://{org}/{project}/{connection}`, or Entra's issuer for newer
//! connections) and whose audience is `api://AzureADTokenExchange`. It
//! lives ten minutes, so expedite asks for a fresh one for every Entra
//! request rather than keeping one.
//!
//! `System.AccessToken` reaches a script only when the step maps it
//! (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`); the service
//! connection's id is `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` inside
//! AzureCLI@2 and AzurePowerShell@5, which also authorize the job to use
//! the connection. Without `X-TFS-FedAuthRedirect: Suppress` Azure DevOps
//! answers a refused token with a 203 sign-in page instead of a 401; both
//! are read here, as is a redirect to the sign-in page.

use secrecy::{ExposeSecret, SecretString};

use crate::cancel::Cancel;
use crate::http::{self, HttpError, Idempotency, RetryPolicy};

/// The API version azure-identity sends.
pub const OIDC_API_VERSION: &str = "7.1";

/// Cap on the token service's answer: a JWT is a few kilobytes.
pub const OIDC_BODY_LIMIT: usize = 64 << 10;

/// The fix for a refused `System.AccessToken`, said in every such error.
const MAP_ACCESS_TOKEN: &str =
    "map it into the step with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`";

/// What it takes to ask the pipeline job for an OIDC token.
#[derive(Clone)]
pub struct PipelineOidc {
    /// `SYSTEM_OIDCREQUESTURI`.
    pub request_uri: url::Url,
    /// `SYSTEM_ACCESSTOKEN` (`System.AccessToken`).
    pub access_token: SecretString,
    /// The Azure Resource Manager service connection's id.
    pub service_connection_id: String,
}

impl std::fmt::Debug for PipelineOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PipelineOidc(service_connection_id={})",
            self.service_connection_id
        )
    }
}

impl PipelineOidc {
    /// The token request's URL: the URI with `api-version` and
    /// `serviceConnectionId` added.
    pub fn request_url(&self) -> url::Url {
        let mut url = self.request_uri.clone();
        url.query_pairs_mut()
            .append_pair("api-version", OIDC_API_VERSION)
            .append_pair("serviceConnectionId", &self.service_connection_id);
        url
    }

    /// Asks the job's token service for a fresh OIDC token for the service
    /// connection (retried on transient failures: minting twice is
    /// harmless). The error says what to fix; it never holds a secret.
    pub async fn request_token(
        &self,
        client: &reqwest::Client,
        policy: &RetryPolicy,
        cancel: &Cancel,
    ) -> Result<SecretString, super::auth::AuthError> {
        use super::auth::AuthError;
        let url = self.request_url();
        let result = http::send_limited(
            || {
                client
                    .post(url.clone())
                    .bearer_auth(self.access_token.expose_secret())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    // A 401 rather than a 203 sign-in page for a bad token.
                    .header("X-TFS-FedAuthRedirect", "Suppress")
            },
            Idempotency::Idempotent,
            policy,
            OIDC_BODY_LIMIT,
            cancel,
        )
        .await;
        let answer = match result {
            Ok(r) => Answer {
                status: r.status.as_u16(),
                content_type: r.header("content-type").map(str::to_string),
                location: r.header("location").map(str::to_string),
                body: r.bytes,
            },
            // A refusal is read for what to fix; 429 and 5xx (after the
            // retries) are the service being unavailable, as below.
            Err(HttpError::Status { status, body, .. })
                if status.as_u16() != 429 && status.as_u16() < 500 =>
            {
                Answer {
                    status: status.as_u16(),
                    content_type: None,
                    location: None,
                    body: body.into_bytes(),
                }
            }
            Err(HttpError::TooLarge { limit, .. }) => {
                return Err(AuthError::PipelineOidc(format!(
                    "the pipeline's OIDC endpoint answered more than {} KiB, far more than a token; check SYSTEM_OIDCREQUESTURI is the job's System.OidcRequestUri",
                    limit >> 10
                )));
            }
            // Unreachable, throttled, failing or cancelled: typed, so the
            // rollout waits and retries (a restore above all) instead of
            // calling it a refused sign-in.
            Err(e) => return Err(AuthError::Http(e)),
        };
        answer
            .read(&self.service_connection_id)
            .map(SecretString::from)
            .map_err(AuthError::PipelineOidc)
    }
}

/// The token service's answer, as read off the wire (no `Debug`: a 200's
/// body is a token).
#[derive(Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Location`, on a redirect.
    pub location: Option<String>,
    /// The body (already bounded).
    pub body: Vec<u8>,
}

impl Answer {
    /// The token, or what to fix. A 200's body is never quoted (it may hold
    /// a token); an error's message is, shortened.
    pub fn read(&self, service_connection_id: &str) -> Result<String, String> {
        let text = String::from_utf8_lossy(&self.body);
        let html = self
            .content_type
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().contains("text/html"))
            || text.trim_start().starts_with('<');
        let refused = |what: &str| {
            format!(
                "the pipeline's OIDC endpoint refused System.AccessToken ({what}): {MAP_ACCESS_TOKEN}"
            )
        };
        match self.status {
            200 if html => Err(refused("it answered a sign-in page")),
            200 => read_token(&text),
            203 => Err(refused("203, a sign-in page")),
            300..=399 => {
                let to_sign_in = self
                    .location
                    .as_deref()
                    .is_some_and(|l| l.to_ascii_lowercase().contains("signin"));
                if to_sign_in {
                    Err(refused(&format!(
                        "{}, a redirect to the sign-in page",
                        self.status
                    )))
                } else {
                    Err(format!(
                        "the pipeline's OIDC endpoint redirected the request ({}); check SYSTEM_OIDCREQUESTURI is the job's System.OidcRequestUri",
                        self.status
                    ))
                }
            }
            401 => Err(refused("401")),
            403 => Err(format!(
                "{}, or this pipeline may not use service connection {service_connection_id}: allow it under the service connection's Security, Pipeline permissions",
                refused("403")
            )),
            status => {
                let message = devops_message(&text);
                let said = message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                let no_connection = message
                    .as_deref()
                    .is_some_and(|m| m.contains("No service connection found"));
                if status == 404 || no_connection {
                    Err(format!(
                        "the pipeline's OIDC endpoint knows no service connection {service_connection_id} in this job ({status}{said}): give service-connection-id the connection's id (the resourceId in the address of its page in Project settings, Service connections), not its name, and use the connection in a task of this job (run expedite inside AzureCLI@2 with `azureSubscription:`), which lets the job use it"
                    ))
                } else if (500..=599).contains(&status) {
                    Err(format!(
                        "the pipeline's OIDC endpoint failed ({status}{said}) after retries; Azure DevOps may be having trouble: run the job again"
                    ))
                } else {
                    Err(format!(
                        "the pipeline's OIDC endpoint refused the request ({status}{said}); check SYSTEM_OIDCREQUESTURI is the job's System.OidcRequestUri"
                    ))
                }
            }
        }
    }
}

/// `oidcToken` from a 200's JSON.
fn read_token(text: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        "the pipeline's OIDC endpoint answered something that is not JSON; check SYSTEM_OIDCREQUESTURI is the job's System.OidcRequestUri".to_string()
    })?;
    let token = value
        .get("oidcToken")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            "the pipeline's OIDC endpoint answered without an `oidcToken`; check SYSTEM_OIDCREQUESTURI is the job's System.OidcRequestUri".to_string()
        })?;
    if !looks_like_jwt(token) {
        return Err(
            "the pipeline's OIDC endpoint answered an `oidcToken` that is not a JWT".to_string(),
        );
    }
    Ok(token.to_string())
}

/// Azure DevOps' error message: `message` of a `TF…`/`Vss…` exception body,
/// or `value.Message` of a routing error; first line, at most 300 chars.
fn devops_message(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let message = value
        .get("message")
        .or_else(|| value.get("value").and_then(|v| v.get("Message")))
        .and_then(serde_json::Value::as_str)?;
    let line = message.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return None;
    }
    let mut shortened: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        shortened.push('…');
    }
    Some(shortened)
}

/// Three base64url segments separated by dots.
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// A JWT's `exp` (seconds since the epoch), read without verifying it (the
/// issuer's key is Entra's business): `None` when it has none or is not a
/// JWT.
pub fn jwt_expiry(token: &str) -> Option<i64> {
    use base64::Engine;
    if !looks_like_jwt(token) {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp").and_then(serde_json::Value::as_i64)
}

/// Checks a federated token given directly (`federated-token`,
/// `AZURE_FEDERATED_TOKEN`) at `now` (seconds since the epoch): a JWT, not
/// expired. It cannot be renewed, so an expired one is said at once. The
/// problem never quotes the token.
pub fn check_federated_token(token: &str, now: i64) -> Result<(), String> {
    if !looks_like_jwt(token.trim()) {
        return Err(
            "is not a JWT (three base64url parts separated by dots; value hidden: it is a secret)"
                .into(),
        );
    }
    match jwt_expiry(token.trim()) {
        Some(exp) if exp <= now => {
            let at = chrono::DateTime::from_timestamp(exp, 0)
                .map(|d| d.format("%H:%M:%S UTC").to_string())
                .unwrap_or_else(|| exp.to_string());
            let ago = now - exp;
            let ago = if ago >= 120 {
                format!("{} minutes", ago / 60)
            } else {
                format!("{ago} seconds")
            };
            Err(format!(
                "expired {ago} ago (at {at}); AzureCLI@2's idToken lives ten minutes"
            ))
        }
        _ => Ok(()),
    }
}

/// The fix for an expired or soon-useless federated token.
pub const RENEWABLE_INSTEAD: &str = "give service-connection-id (AZURESUBSCRIPTION_SERVICE_CONNECTION_ID inside AzureCLI@2) with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)` instead: expedite then asks the pipeline for a fresh token whenever it signs in";

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(claims: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            b.encode(r#"{"alg":"ES256","typ":"JWT"}"#),
            b.encode(claims)
        )
    }

    fn answer(status: u16, content_type: Option<&str>, body: &str) -> Answer {
        Answer {
            status,
            content_type: content_type.map(str::to_string),
            location: None,
            body: body.as_bytes().to_vec(),
        }
    }

    const SC: &str = "0de0c0de-5c5c-4000-8000-00000000a205";

    #[test]
    fn the_request_carries_the_api_version_and_the_service_connection() {
        let p = PipelineOidc {
            request_uri: url::Url::parse(
                "https://dev.azure.com/contoso/0de0/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken",
            )
            .unwrap(),
            access_token: SecretString::from("sat".to_string()),
            service_connection_id: SC.into(),
        };
        assert_eq!(
            p.request_url().as_str(),
            format!(
                "https://dev.azure.com/contoso/0de0/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken?api-version=7.1&serviceConnectionId={SC}"
            )
        );
        // Debug never shows the access token.
        assert!(!format!("{p:?}").contains("sat"));
    }

    /// An endpoint that cannot be reached is the service being unavailable
    /// (typed: the rollout waits and retries, a restore above all), never a
    /// refused sign-in.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_not_refused() {
        crate::http::install_crypto_provider();
        // A port nothing listens on: connection refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = PipelineOidc {
            request_uri: url::Url::parse(&format!("https://127.0.0.1:{port}/oidctoken")).unwrap(),
            access_token: SecretString::from("sat".to_string()),
            service_connection_id: SC.into(),
        };
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(2),
            budget: std::time::Duration::from_secs(2),
        };
        let e = p
            .request_token(&reqwest::Client::new(), &policy, &Cancel::new())
            .await
            .unwrap_err();
        assert!(matches!(e, super::super::auth::AuthError::Http(_)), "{e:?}");
    }

    #[test]
    fn a_token_is_read_from_oidc_token_and_nothing_else() {
        let t = jwt(r#"{"exp":1}"#);
        let ok = answer(
            200,
            Some("application/json"),
            &format!(r#"{{"oidcToken":"{t}"}}"#),
        );
        assert_eq!(ok.read(SC).unwrap(), t);
        // GitHub's shape is not Azure DevOps'.
        let e = answer(200, None, &format!(r#"{{"value":"{t}"}}"#))
            .read(SC)
            .unwrap_err();
        assert!(
            e.contains("without an `oidcToken`") && !e.contains(&t),
            "{e}"
        );
        for odd in [
            r#"{"oidcToken":""}"#,
            r#"{"oidcToken":null}"#,
            r#"{"oidcToken":7}"#,
            "{}",
        ] {
            let e = answer(200, None, odd).read(SC).unwrap_err();
            assert!(e.contains("without an `oidcToken`"), "{odd}: {e}");
        }
        let e = answer(200, None, r#"{"oidcToken":"not a jwt"}"#)
            .read(SC)
            .unwrap_err();
        assert!(e.contains("not a JWT"), "{e}");
        let e = answer(200, Some("text/plain"), "oops")
            .read(SC)
            .unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn a_refused_access_token_says_how_to_map_it_whatever_shape_the_refusal_has() {
        let tf400813 = r#"{"$id":"1","innerException":null,"message":"TF400813: The user '' is not authorized to access this resource.","typeKey":"UnauthorizedRequestException","errorCode":0,"eventId":3000}"#;
        let sign_in = "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head></html>";
        let mut redirect = answer(302, Some("text/html"), "<html>Object moved</html>");
        redirect.location =
            Some("https://spsprodcus3.vssps.visualstudio.com/_signin?realm=dev.azure.com".into());
        for (a, what) in [
            (answer(401, Some("application/json"), tf400813), "(401)"),
            (
                answer(203, Some("text/html"), sign_in),
                "(203, a sign-in page)",
            ),
            (
                answer(200, Some("text/html; charset=utf-8"), sign_in),
                "sign-in page",
            ),
            (redirect, "redirect to the sign-in page"),
        ] {
            let e = a.read(SC).unwrap_err();
            assert!(
                e.starts_with("the pipeline's OIDC endpoint refused System.AccessToken")
                    && e.contains(what)
                    && e.contains("env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)"),
                "{e}"
            );
        }
        let e = answer(403, None, "").read(SC).unwrap_err();
        assert!(
            e.contains("(403)") && e.contains("Pipeline permissions"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_service_connection_is_named_with_where_to_find_the_id() {
        let body = format!(
            r#"{{"$id":"1","message":"No service connection found with identifier {SC}.","typeKey":"x"}}"#
        );
        for status in [404, 400] {
            let e = answer(status, Some("application/json"), &body)
                .read(SC)
                .unwrap_err();
            assert!(
                e.contains(&format!("knows no service connection {SC}"))
                    && e.contains("No service connection found with identifier")
                    && e.contains("not its name")
                    && e.contains("AzureCLI@2"),
                "{e}"
            );
        }
        // Routing errors' `value.Message` is read too; 5xx says to retry.
        let e = answer(
            405,
            None,
            r#"{"count":1,"value":{"Message":"The requested resource does not support http method 'GET'."}}"#,
        )
        .read(SC)
        .unwrap_err();
        assert!(
            e.contains("(405: The requested resource does not support"),
            "{e}"
        );
        let e = answer(503, None, "").read(SC).unwrap_err();
        assert!(
            e.contains("(503)") && e.contains("run the job again"),
            "{e}"
        );
        // A long message is shortened.
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
        let e = answer(400, None, &long).read(SC).unwrap_err();
        assert!(e.len() < 700, "{}", e.len());
    }

    #[test]
    fn a_federated_token_given_directly_is_checked_for_shape_and_expiry() {
        let now = 1_700_000_000;
        assert_eq!(
            check_federated_token(&jwt(&format!(r#"{{"exp":{}}}"#, now + 600)), now),
            Ok(())
        );
        // No `exp`: Entra decides.
        assert_eq!(check_federated_token(&jwt(r#"{"sub":"x"}"#), now), Ok(()));
        let e =
            check_federated_token(&jwt(&format!(r#"{{"exp":{}}}"#, now - 900)), now).unwrap_err();
        assert!(
            e.starts_with("expired 15 minutes ago (at ") && e.contains("ten minutes"),
            "{e}"
        );
        let e = check_federated_token(&jwt(&format!(r#"{{"exp":{}}}"#, now - 5)), now).unwrap_err();
        assert!(e.starts_with("expired 5 seconds ago"), "{e}");
        for bad in [
            "",
            "abc",
            "a.b",
            "a..c",
            "a.b.c.d",
            "ey J.x.y",
            "s3cr3t-not-a-jwt",
        ] {
            let e = check_federated_token(bad, now).unwrap_err();
            assert!(e.starts_with("is not a JWT"), "{bad}: {e}");
        }
        let e = check_federated_token("s3cr3t-not-a-jwt", now).unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":42}"#)), Some(42));
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }
}
