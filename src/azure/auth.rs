//! Microsoft Entra ID tokens for Azure Resource Manager.
//!
//! The ways in, as `azure/login` and Azure Pipelines offer them:
//! - **OIDC federation**: a GitHub ID token (`ACTIONS_ID_TOKEN_REQUEST_URL`,
//!   needs `permissions: id-token: write`) exchanged as a client assertion.
//!   GitHub's assertions live about five minutes, so a fresh one is fetched
//!   for every Entra request and never cached;
//! - **an Azure Pipelines service connection** with workload identity
//!   federation: the job's OIDC token (`SYSTEM_OIDCREQUESTURI` with
//!   `System.AccessToken`, [`super::pipelines`]), likewise fetched fresh for
//!   every Entra request (they live ten minutes);
//! - **a federated token given directly** (AzureCLI@2's `idToken`), which
//!   cannot be renewed: its expiry is checked before each use;
//! - a **client secret**;
//! - the **`azure-credentials` JSON** that `azure/login`'s `creds:` takes.
//!
//! Every token is registered with the console's mask the moment it exists.
//! The ARM scope is `{arm-endpoint}/.default`, as the Azure SDKs derive it,
//! so sovereign clouds and the sandbox need only their endpoints.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::action::console::Console;
use crate::cancel::Cancel;
use crate::http::{self, HttpError, Idempotency, RetryPolicy};

/// The audience GitHub's ID token is requested for (Entra's default for
/// workload identity federation, and `azure/login`'s).
pub const DEFAULT_OIDC_AUDIENCE: &str = "api://AzureADTokenExchange";

/// How to obtain the client's proof of identity.
#[derive(Clone)]
pub enum ClientProof {
    /// A client secret.
    Secret(SecretString),
    /// A GitHub Actions ID token, fetched fresh for every Entra request.
    GithubOidc {
        /// `ACTIONS_ID_TOKEN_REQUEST_URL` (already carries a query string).
        request_url: url::Url,
        /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
        request_token: SecretString,
        /// The `aud` to ask for.
        audience: String,
    },
    /// An Azure Pipelines job's OIDC token for a service connection,
    /// fetched fresh for every Entra request.
    AzurePipelines(super::pipelines::PipelineOidc),
    /// A federated token given as it is (`AZURE_FEDERATED_TOKEN`): never
    /// renewed, refused once expired.
    FederatedToken(SecretString),
}

impl std::fmt::Debug for ClientProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientProof::Secret(_) => f.write_str("Secret(***)"),
            ClientProof::GithubOidc { audience, .. } => {
                write!(f, "GithubOidc(audience={audience})")
            }
            ClientProof::AzurePipelines(p) => write!(f, "AzurePipelines({p:?})"),
            ClientProof::FederatedToken(_) => f.write_str("FederatedToken(***)"),
        }
    }
}

/// Who we are in Entra ID.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Secret or federated assertion.
    pub proof: ClientProof,
}

/// The JSON `azure/login` accepts as `creds:` (`az ad sp create-for-rbac
/// --json-auth`). Only these keys matter; others are ignored, as there.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureCredentialsJson {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Subscription id.
    pub subscription_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// ARM endpoint for sovereign clouds.
    #[serde(default)]
    pub resource_manager_endpoint_url: Option<String>,
    /// Entra endpoint for sovereign clouds.
    #[serde(default)]
    pub active_directory_endpoint_url: Option<String>,
}

impl AzureCredentialsJson {
    /// Parses the JSON, saying which key is missing without echoing values.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let Some(obj) = value.as_object() else {
            return Err("is not a JSON object".into());
        };
        if obj.contains_key("clientCertificate") && !obj.contains_key("clientSecret") {
            return Err("uses a client certificate, which expedite does not support; use a client secret or OIDC".into());
        }
        let missing: Vec<&str> = ["clientId", "clientSecret", "subscriptionId", "tenantId"]
            .into_iter()
            .filter(|k| {
                obj.get(*k)
                    .is_none_or(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "lacks {} (the keys `az ad sp create-for-rbac --json-auth` prints)",
                missing.join(", ")
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("has a value of the wrong type ({e})"))
    }
}

/// Why no token could be obtained. Each variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// OIDC was asked for but the job cannot mint ID tokens.
    #[error(
        "GitHub OIDC is not available in this job: ACTIONS_ID_TOKEN_REQUEST_URL is not set; add `permissions: id-token: write` to the job"
    )]
    OidcUnavailable,
    /// GitHub refused or failed to mint an ID token.
    #[error("could not get a GitHub OIDC token: {0}")]
    Oidc(String),
    /// The Azure Pipelines job refused or failed to mint an OIDC token.
    #[error("could not get an OIDC token from the Azure Pipelines job: {0}")]
    PipelineOidc(String),
    /// The federated token given directly cannot be used any more.
    #[error("the federated token (federated-token, AZURE_FEDERATED_TOKEN) {0}; it cannot be renewed: {renew}", renew = super::pipelines::RENEWABLE_INSTEAD)]
    FederatedToken(String),
    /// Entra ID refused the request; `hint` says what usually fixes it.
    #[error("Microsoft Entra ID refused the token request ({status} {code}): {description}{}", .hint.map(|h| format!(" — {h}")).unwrap_or_default())]
    Entra {
        /// HTTP status.
        status: u16,
        /// OAuth error code (`invalid_client`, …).
        code: String,
        /// Entra's description (with the AADSTS code).
        description: String,
        /// What to check.
        hint: Option<&'static str>,
    },
    /// Entra ID answered 200 with something that is not a token.
    #[error(
        "Microsoft Entra ID answered without a usable access token ({0}); check authority-host points at Entra ID"
    )]
    BadAnswer(String),
    /// The token endpoint's URL cannot be formed from the settings.
    #[error("cannot form the token endpoint's URL from authority-host and tenant-id: {0}")]
    Endpoint(String),
    /// The token endpoint could not be reached or answered nonsense.
    #[error("token endpoint: {0}")]
    Http(#[from] HttpError),
}

/// A token's lifetime from `expires_in`: seconds as a number or (older
/// endpoints) a string; missing, zero, negative or malformed means the
/// usual hour rather than an error — the token itself is good.
fn lifetime_of(expires_in: Option<&serde_json::Value>) -> Duration {
    Duration::from_secs(
        expires_in
            .and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .filter(|s| *s > 0)
            .unwrap_or(3599),
    )
}

/// Hints for the Entra errors people actually hit, worded for the way in:
/// a GitHub job's federated credential names a repository, a pipeline's a
/// service connection. The first code found in `description` wins, so
/// longer codes come before their prefixes (AADSTS700213 before AADSTS70021).
fn hint_for(description: &str, proof: &ClientProof) -> Option<&'static str> {
    const GITHUB: &[(&str, &str)] = &[
        (
            "AADSTS700213",
            "no federated credential matches this job's subject: add one for the `sub` claim shown (e.g. repo:OWNER/REPO:environment:NAME)",
        ),
        (
            "AADSTS700024",
            "the GitHub assertion expired; expedite fetches a fresh one per request, so check the runner's clock",
        ),
    ];
    const PIPELINES: &[(&str, &str)] = &[
        (
            "AADSTS700213",
            "no federated credential of the app has this service connection's subject: add one with the subject shown (sc://ORGANIZATION/PROJECT/CONNECTION) and the issuer the service connection's page shows, or save the service connection again to have Azure DevOps add it",
        ),
        (
            "AADSTS700211",
            "no federated credential of the app has the service connection's issuer (https://vstoken.dev.azure.com/ORGANIZATION-ID, or https://login.microsoftonline.com/TENANT-ID/v2.0 for newer connections): use the issuer the service connection's page shows",
        ),
        (
            "AADSTS700024",
            "the pipeline's OIDC token expired; expedite asks for a fresh one per sign-in, so check the agent's clock",
        ),
    ];
    const FEDERATED_TOKEN: &[(&str, &str)] = &[
        (
            "AADSTS700213",
            "no federated credential of the app has this token's subject: add one with the subject shown and the token's issuer",
        ),
        (
            "AADSTS700024",
            "the federated token expired (AzureCLI@2's idToken lives ten minutes): give service-connection-id with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)` so expedite asks the pipeline for fresh ones",
        ),
    ];
    const COMMON: &[(&str, &str)] = &[
        (
            "AADSTS700223",
            "workload identity federation is disabled or restricted in this tenant: ask its administrator to allow it",
        ),
        (
            "AADSTS700238",
            "workload identity federation is restricted in this tenant for this issuer: ask its administrator to allow it",
        ),
        (
            "AADSTS70025",
            "the app has no federated identity credentials: add one for the issuer and subject shown",
        ),
        (
            "AADSTS70021",
            "no federated credential matches the presented assertion: check issuer, subject and audience",
        ),
        (
            "AADSTS7000215",
            "the client secret is wrong or expired: create a new one and update the secret",
        ),
        (
            "AADSTS7000222",
            "the client secret expired: create a new one and update the secret",
        ),
        (
            "AADSTS700016",
            "no application with this client id in the tenant: check client-id and tenant-id",
        ),
        (
            "AADSTS90002",
            "the tenant was not found: check tenant-id and the authority host (sovereign clouds)",
        ),
        (
            "AADSTS500011",
            "the resource (ARM endpoint) is not known in this tenant: check arm-endpoint",
        ),
    ];
    let specific = match proof {
        ClientProof::GithubOidc { .. } | ClientProof::Secret(_) => GITHUB,
        ClientProof::AzurePipelines(_) => PIPELINES,
        ClientProof::FederatedToken(_) => FEDERATED_TOKEN,
    };
    specific
        .iter()
        .chain(COMMON)
        .find(|(code, _)| description.contains(code))
        .map(|(_, h)| *h)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds, as a number or (older endpoints) a string; anything else —
    /// missing, zero, negative — means the usual hour.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct OidcResponse {
    value: String,
}

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// Obtains and caches ARM access tokens.
pub struct TokenProvider {
    http: reqwest::Client,
    authority: url::Url,
    identity: Identity,
    scope: String,
    console: Console,
    policy: RetryPolicy,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("authority", &self.authority.as_str())
            .field("scope", &self.scope)
            .finish()
    }
}

/// Adds a federated token to the form as the client assertion.
fn push_assertion(form: &mut Vec<(&str, String)>, assertion: &SecretString) {
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
    ));
    form.push(("client_assertion", assertion.expose_secret().to_string()));
}

/// Refresh this long before a token expires (clock skew, long requests).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl TokenProvider {
    /// A provider for ARM at `arm_endpoint`, authenticating at `authority`.
    pub fn new(
        http: reqwest::Client,
        authority: url::Url,
        arm_endpoint: &url::Url,
        identity: Identity,
        console: Console,
    ) -> Self {
        let scope = format!("{}/.default", arm_endpoint.as_str().trim_end_matches('/'));
        // Secrets that came from the environment rather than an input
        // (inputs are masked as they are read): registered before any
        // request can echo them.
        match &identity.proof {
            ClientProof::AzurePipelines(p) => console.add_mask(p.access_token.expose_secret()),
            ClientProof::FederatedToken(t) => console.add_mask(t.expose_secret()),
            ClientProof::Secret(_) | ClientProof::GithubOidc { .. } => {}
        }
        TokenProvider {
            http,
            authority,
            identity,
            scope,
            console,
            policy: RetryPolicy::default(),
            cached: Mutex::new(None),
        }
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// A valid token, from the cache or freshly obtained.
    pub async fn token(&self, cancel: &Cancel) -> Result<SecretString, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.request(cancel).await?;
        let refresh_in = lifetime
            .saturating_sub(REFRESH_MARGIN)
            .max(Duration::from_secs(30));
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_in,
        });
        Ok(token)
    }

    /// Drops the cached token (after a 401: it may have been revoked).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self, cancel: &Cancel) -> Result<(SecretString, Duration), AuthError> {
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", self.identity.client_id.clone()),
            ("grant_type", "client_credentials".into()),
            ("scope", self.scope.clone()),
        ];
        match &self.identity.proof {
            ClientProof::Secret(s) => form.push(("client_secret", s.expose_secret().to_string())),
            ClientProof::GithubOidc {
                request_url,
                request_token,
                audience,
            } => {
                let assertion = self
                    .github_id_token(request_url, request_token, audience, cancel)
                    .await?;
                push_assertion(&mut form, &assertion);
            }
            ClientProof::AzurePipelines(p) => {
                let assertion = p.request_token(&self.http, &self.policy, cancel).await?;
                // Mask before anything else can print it.
                self.console.add_mask(assertion.expose_secret());
                push_assertion(&mut form, &assertion);
            }
            ClientProof::FederatedToken(token) => {
                let now = chrono::Utc::now().timestamp();
                super::pipelines::check_federated_token(token.expose_secret(), now)
                    .map_err(AuthError::FederatedToken)?;
                push_assertion(&mut form, token);
            }
        }
        let url = self
            .authority
            .join(&format!("{}/oauth2/v2.0/token", self.identity.tenant_id))
            .map_err(|e| AuthError::Endpoint(e.to_string()))?;
        let result = http::send(
            || self.http.post(url.clone()).form(&form),
            Idempotency::Idempotent,
            &self.policy,
            cancel,
        )
        .await;
        let response = match result {
            Ok(r) => r,
            Err(HttpError::Status { status, body, .. }) if status.is_client_error() => {
                let e: EntraError = serde_json::from_str(&body).unwrap_or_default();
                let description = self.console.secrets().redact(&e.error_description);
                return Err(AuthError::Entra {
                    status: status.as_u16(),
                    code: if e.error.is_empty() {
                        "unknown".into()
                    } else {
                        e.error
                    },
                    hint: hint_for(&description, &self.identity.proof),
                    description: description.lines().next().unwrap_or_default().to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let parsed: TokenResponse = serde_json::from_slice(&response.bytes).map_err(|e| {
            // The parser's words are for debugging, not for the first line.
            tracing::debug!("token response: {e}");
            AuthError::BadAnswer("no `access_token` string in its JSON".into())
        })?;
        // Mask before anything else can print it.
        self.console.add_mask(&parsed.access_token);
        let lifetime = lifetime_of(parsed.expires_in.as_ref());
        Ok((SecretString::from(parsed.access_token), lifetime))
    }

    async fn github_id_token(
        &self,
        request_url: &url::Url,
        request_token: &SecretString,
        audience: &str,
        cancel: &Cancel,
    ) -> Result<SecretString, AuthError> {
        let mut url = request_url.clone();
        url.query_pairs_mut().append_pair("audience", audience);
        let result = http::send(
            || {
                self.http
                    .get(url.clone())
                    .bearer_auth(request_token.expose_secret())
            },
            Idempotency::Idempotent,
            &self.policy,
            cancel,
        )
        .await;
        let response = match result {
            Ok(r) => r,
            Err(HttpError::Status { status, .. }) => {
                return Err(AuthError::Oidc(format!(
                    "GitHub answered HTTP {status}; the job needs `permissions: id-token: write`"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let parsed: OidcResponse = serde_json::from_slice(&response.bytes)
            .map_err(|_| AuthError::Oidc("the response has no `value`".into()))?;
        self.console.add_mask(&parsed.value);
        Ok(SecretString::from(parsed.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lifetime_in_any_shape_is_read_or_defaults_to_an_hour() {
        let v = |j: &str| serde_json::from_str::<serde_json::Value>(j).unwrap();
        assert_eq!(lifetime_of(Some(&v("3599"))), Duration::from_secs(3599));
        assert_eq!(lifetime_of(Some(&v("\"600\""))), Duration::from_secs(600));
        for odd in ["-3600", "0", "null", "\"soon\"", "1.5"] {
            assert_eq!(
                lifetime_of(Some(&v(odd))),
                Duration::from_secs(3599),
                "{odd}"
            );
        }
        assert_eq!(lifetime_of(None), Duration::from_secs(3599));
        // The whole answer parses whatever shape `expires_in` has: a good
        // token is never refused for it.
        for odd in ["-3600", "\"3599\"", "null", "1.5", "{}"] {
            let body = format!(r#"{{"access_token":"t","expires_in":{odd}}}"#);
            let parsed: TokenResponse = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed.access_token, "t", "{odd}");
        }
    }

    #[test]
    fn a_token_error_names_what_failed_without_library_words() {
        let e = AuthError::BadAnswer("no `access_token` string in its JSON".into()).to_string();
        assert!(
            e.starts_with("Microsoft Entra ID answered without a usable access token"),
            "{e}"
        );
        assert!(!e.contains("OIDC") && !e.contains("expected"), "{e}");
    }

    #[test]
    fn credentials_json_errors_name_keys_not_values() {
        let e = AzureCredentialsJson::parse(
            r#"{"clientId":"c","clientSecret":"TOPSECRET","tenantId":"t"}"#,
        )
        .err()
        .unwrap();
        assert!(
            e.contains("subscriptionId") && !e.contains("TOPSECRET"),
            "{e}"
        );
        let e = AzureCredentialsJson::parse("{not json").err().unwrap();
        assert!(e.starts_with("is not valid JSON"), "{e}");
        let e = AzureCredentialsJson::parse(
            r#"{"clientId":"c","clientCertificate":"x","tenantId":"t","subscriptionId":"s"}"#,
        )
        .err()
        .unwrap();
        assert!(e.contains("certificate"), "{e}");
        let ok = AzureCredentialsJson::parse(
            r#"{"clientId":"c","clientSecret":"s","subscriptionId":"sub","tenantId":"t","resourceManagerEndpointUrl":"https://management.azure.com/","galleryEndpointUrl":"x"}"#,
        )
        .ok()
        .unwrap();
        assert_eq!(ok.subscription_id, "sub");
        assert_eq!(ok.client_secret.expose_secret(), "s");
    }

    #[test]
    fn hints_match_aadsts_codes() {
        let secret = ClientProof::Secret(SecretString::from("s".to_string()));
        assert!(
            hint_for(
                "AADSTS700213: No matching federated identity record",
                &secret
            )
            .unwrap()
            .contains("subject")
        );
        assert!(
            hint_for("AADSTS7000215: Invalid client secret provided", &secret)
                .unwrap()
                .contains("secret")
        );
        assert_eq!(hint_for("something else", &secret), None);
    }

    #[test]
    fn a_pipeline_is_told_of_service_connections_not_repositories() {
        let pipeline = ClientProof::AzurePipelines(crate::azure::pipelines::PipelineOidc {
            request_uri: url::Url::parse("https://dev.azure.com/o/p/oidctoken").unwrap(),
            access_token: SecretString::from("sat".to_string()),
            service_connection_id: "id".into(),
        });
        let given = ClientProof::FederatedToken(SecretString::from("t".to_string()));
        let h = hint_for("AADSTS700213: No matching federated identity record found for presented assertion subject 'sc://o/p/c'", &pipeline).unwrap();
        assert!(h.contains("sc://") && !h.contains("repo:"), "{h}");
        let h = hint_for("AADSTS700211: No matching federated identity record found for presented assertion issuer", &pipeline).unwrap();
        assert!(h.contains("vstoken.dev.azure.com"), "{h}");
        let h = hint_for(
            "AADSTS700024: Client assertion is not within its valid time range.",
            &given,
        )
        .unwrap();
        assert!(h.contains("service-connection-id"), "{h}");
        // Debug shows neither the access token nor the federated token.
        let shown = format!("{pipeline:?} {given:?}");
        assert!(
            !shown.contains("sat") && shown.contains("FederatedToken(***)"),
            "{shown}"
        );
    }
}
