//! Signing in to Azure: the service principal or GitHub OIDC federation,
//! the ARM and Entra endpoints, and the HTTP settings (`resolve`, `ca-cert`)
//! every command that builds HTTP clients shares.

use super::values::{self, ValueError, shown};
use super::*;
use crate::action::Env;

/// How to reach and sign in to Azure (deploy, rollback).
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// ARM endpoint.
    pub arm_endpoint: url::Url,
    /// Entra ID endpoint.
    pub authority_host: url::Url,
    /// Who to sign in as.
    pub identity: crate::azure::auth::Identity,
    /// Subscription of the app.
    pub subscription_id: String,
    /// TLS trust and host resolution.
    pub http: crate::http::HttpSettings,
}

pub(super) fn azure_config(r: &mut Resolver<'_>, env: &Env) -> Option<AzureConfig> {
    use crate::azure::auth::{AzureCredentialsJson, ClientProof, Identity};
    use secrecy::ExposeSecret;
    let raw = r.raw;
    let arm_endpoint = r.parse("arm-endpoint", values::parse_url);
    let authority_host = r.parse("authority-host", values::parse_url);
    let (resolve, ca_pem) = http_inputs(r);
    let audience = raw
        .get("oidc-audience")
        .unwrap_or(crate::azure::auth::DEFAULT_OIDC_AUDIENCE)
        .to_string();
    let ids = ["client-id", "tenant-id", "subscription-id"].map(|k| raw.get(k).map(str::to_string));
    let identity = match raw.get("azure-credentials") {
        Some(json) => {
            if ids.iter().any(Option::is_some) || raw.get("client-secret").is_some() {
                r.error(
                    "azure-credentials",
                    "is given together with client-id, tenant-id, subscription-id or client-secret",
                    "give either azure-credentials or the ids (with a secret or OIDC), not both",
                );
                None
            } else {
                match AzureCredentialsJson::parse(json) {
                    Ok(c) => Some((
                        Identity {
                            tenant_id: c.tenant_id,
                            client_id: c.client_id,
                            proof: ClientProof::Secret(c.client_secret),
                        },
                        c.subscription_id,
                    )),
                    Err(problem) => {
                        r.error(
                            "azure-credentials",
                            problem,
                            "use the JSON `az ad sp create-for-rbac --json-auth` prints",
                        );
                        None
                    }
                }
            }
        }
        None => {
            let names = ["client-id", "tenant-id", "subscription-id"];
            let mut missing = false;
            for (name, v) in names.iter().zip(&ids) {
                if v.is_none() {
                    r.error(
                        name,
                        "is required to sign in to Azure",
                        "set it, or give azure-credentials instead",
                    );
                    missing = true;
                }
            }
            let proof = match raw.get("client-secret") {
                Some(secret) => Some(ClientProof::Secret(secrecy::SecretString::from(
                    secret.to_string(),
                ))),
                None => {
                    let url = env
                        .get("ACTIONS_ID_TOKEN_REQUEST_URL")
                        .filter(|u| !u.is_empty());
                    let token = env
                        .get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
                        .filter(|t| !t.is_empty());
                    match (url.map(url::Url::parse), token) {
                        (Some(Ok(request_url)), Some(t)) => Some(ClientProof::GithubOidc {
                            request_url,
                            request_token: secrecy::SecretString::from(t.to_string()),
                            audience: audience.clone(),
                        }),
                        _ => {
                            r.error(
                                "client-secret",
                                "is not given, and GitHub OIDC is not available in this job (no ACTIONS_ID_TOKEN_REQUEST_URL)",
                                "add `permissions: id-token: write` to the job for OIDC federation, or give client-secret or azure-credentials",
                            );
                            None
                        }
                    }
                }
            };
            match (missing, proof, ids) {
                (false, Some(proof), [Some(client_id), Some(tenant_id), Some(sub)]) => Some((
                    Identity {
                        tenant_id,
                        client_id,
                        proof,
                    },
                    sub,
                )),
                _ => None,
            }
        }
    };
    let (identity, subscription_id) = identity?;
    if let ClientProof::Secret(s) = &identity.proof
        && s.expose_secret().trim().is_empty()
    {
        r.error("client-secret", "is empty", "give the secret's value");
    }
    Some(AzureConfig {
        arm_endpoint: arm_endpoint?,
        authority_host: authority_host?,
        identity,
        subscription_id,
        http: crate::http::HttpSettings {
            resolve: resolve.unwrap_or_default(),
            extra_ca_pem: ca_pem.into_iter().collect(),
            ..crate::http::HttpSettings::default()
        },
    })
}

/// The `resolve` and `ca-cert` inputs, shared by every command that builds
/// HTTP clients (Azure, GitHub).
pub(super) fn http_inputs(
    r: &mut Resolver<'_>,
) -> (Option<Vec<crate::http::ResolveRule>>, Option<String>) {
    let resolve = r.parse("resolve", |v| {
        values::parse_list(v)
            .iter()
            .map(|rule| rule.parse::<crate::http::ResolveRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ValueError {
                problem: e,
                accepted: "comma-separated rules".into(),
            })
    });
    let ca_pem = r.parse("ca-cert", |v| {
        let text = std::fs::read_to_string(v).map_err(|e| ValueError {
            problem: format!("cannot read {}: {e}", shown(v)),
            accepted: "the path of a PEM file with CA certificates".into(),
        })?;
        crate::http::parse_pem_certs(&text)
            .map(|_| text)
            .map_err(|e| ValueError {
                problem: format!("{}: {e}", shown(v)),
                accepted: "a PEM file of CA certificates".into(),
            })
    });
    (resolve, ca_pem)
}
