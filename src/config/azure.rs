//! Signing in to Azure: the service principal, GitHub OIDC federation, an
//! Azure Pipelines service connection or a federated token given directly;
//! the ARM and Entra endpoints, and the HTTP settings (`resolve`, `ca-cert`)
//! every command that builds HTTP clients shares.
//!
//! The proof, when `azure-credentials` is not given, is the first of:
//! `client-secret`; `federated-token`; `service-connection-id` (the job's
//! OIDC token through `SYSTEM_OIDCREQUESTURI` with `SYSTEM_ACCESSTOKEN`);
//! GitHub OIDC (`ACTIONS_ID_TOKEN_REQUEST_URL`). A secret and a federated
//! token together are refused; a service connection id beside either is
//! not used (AzureCLI@2 sets `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` for
//! every script it runs). Inside AzureCLI@2 and AzurePowerShell@5,
//! `client-id` and `tenant-id` fall back to `AZURESUBSCRIPTION_CLIENT_ID`
//! and `AZURESUBSCRIPTION_TENANT_ID`.

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
            if ids.iter().any(Option::is_some)
                || raw.get("client-secret").is_some()
                || raw.get("federated-token").is_some()
            {
                r.error(
                    "azure-credentials",
                    "is given together with client-id, tenant-id, subscription-id, client-secret or federated-token",
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
            // What AzureCLI@2 and AzurePowerShell@5 give every script.
            let from_task = |var: &str| {
                env.get(var)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            // The connection's client id only for the connection's own
            // proofs: a client secret is another identity's, and the
            // connection's id beside it would make Entra blame the secret.
            // (The tenant is the organisation's either way.)
            let connection = raw.get("client-secret").is_none();
            let from_connection = |var: &str| connection.then(|| from_task(var)).flatten();
            let [client, tenant, subscription] = ids;
            let ids = [
                client.or_else(|| from_connection("AZURESUBSCRIPTION_CLIENT_ID")),
                tenant.or_else(|| from_task("AZURESUBSCRIPTION_TENANT_ID")),
                subscription,
            ];
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
            let proof = match (raw.get("client-secret"), raw.get("federated-token")) {
                (Some(_), Some(_)) => {
                    r.error(
                        "federated-token",
                        "is given together with client-secret",
                        "give one proof: the secret or the federated token",
                    );
                    None
                }
                (Some(secret), None) => Some(ClientProof::Secret(secrecy::SecretString::from(
                    secret.to_string(),
                ))),
                (None, Some(token)) => federated_token_proof(r, token),
                (None, None) => match raw.get("service-connection-id") {
                    Some(id) => pipeline_proof(r, env, id),
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
                            _ if in_pipelines(env) => {
                                r.error(
                                    "service-connection-id",
                                    "is not given, and neither is client-secret nor federated-token: expedite has no way to sign in to Azure from this pipeline",
                                    format!(
                                        "run expedite inside AzureCLI@2 or AzurePowerShell@5 with `azureSubscription:` (they set AZURESUBSCRIPTION_SERVICE_CONNECTION_ID) or give the service connection's id, with {MAP_ACCESS_TOKEN}; or give client-secret"
                                    ),
                                );
                                None
                            }
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
                },
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

/// How an Azure Pipelines step is told to map `System.AccessToken`.
const MAP_ACCESS_TOKEN: &str = "`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)` on the step (scripts get System.AccessToken only when it is mapped)";

/// True inside an Azure Pipelines job (the runner contract's `TF_BUILD`,
/// or the job's OIDC endpoint).
fn in_pipelines(env: &Env) -> bool {
    env.in_pipelines()
        || env
            .get("SYSTEM_OIDCREQUESTURI")
            .is_some_and(|v| !v.trim().is_empty())
}

/// A federated token given directly: a JWT that has not expired.
fn federated_token_proof(
    r: &mut Resolver<'_>,
    token: &str,
) -> Option<crate::azure::auth::ClientProof> {
    use crate::azure::pipelines::{RENEWABLE_INSTEAD, check_federated_token};
    let now = chrono::Utc::now().timestamp();
    match check_federated_token(token, now) {
        Ok(()) => Some(crate::azure::auth::ClientProof::FederatedToken(
            secrecy::SecretString::from(token.trim().to_string()),
        )),
        Err(problem) => {
            r.error("federated-token", problem, RENEWABLE_INSTEAD);
            None
        }
    }
}

/// An Azure Pipelines service connection: its id, the job's OIDC endpoint
/// (`SYSTEM_OIDCREQUESTURI`) and `System.AccessToken`, each checked here
/// so a step that lacks one is told before anything runs.
fn pipeline_proof(
    r: &mut Resolver<'_>,
    env: &Env,
    id: &str,
) -> Option<crate::azure::auth::ClientProof> {
    const INPUT: &str = "service-connection-id";
    let mut ok = true;
    if uuid::Uuid::try_parse(id.trim()).is_err() {
        r.error(
            INPUT,
            format!("{} is not a service connection id", shown(id)),
            "give the id (a GUID: the resourceId in the address of the service connection's page, or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, which AzureCLI@2 sets), not the service connection's name",
        );
        ok = false;
    }
    let request_uri = match env
        .get("SYSTEM_OIDCREQUESTURI")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => {
            r.error(
                INPUT,
                "is given, but SYSTEM_OIDCREQUESTURI is not set: this is not an Azure Pipelines job, whose agent sets it",
                "run expedite in an Azure Pipelines job, or sign in another way (client-secret, federated-token)",
            );
            None
        }
        Some(v) => match url::Url::parse(v) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Some(u),
            _ => {
                r.error(
                    INPUT,
                    format!(
                        "needs the job's OIDC endpoint, and SYSTEM_OIDCREQUESTURI ({}) is not an https URL",
                        shown(v)
                    ),
                    "leave SYSTEM_OIDCREQUESTURI as the agent sets it (System.OidcRequestUri)",
                );
                None
            }
        },
    };
    let access_token = match env
        .get("SYSTEM_ACCESSTOKEN")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => {
            r.error(
                INPUT,
                "needs System.AccessToken to ask the pipeline for a token, and SYSTEM_ACCESSTOKEN is not set",
                format!("add {MAP_ACCESS_TOKEN}"),
            );
            None
        }
        // An unknown variable's macro is passed on as it is written.
        Some(v) if v.starts_with("$(") => {
            let macro_text = if v.len() <= 64 && v.ends_with(')') {
                format!(" ({})", shown(v))
            } else {
                String::new()
            };
            r.error(
                INPUT,
                format!(
                    "needs System.AccessToken, and SYSTEM_ACCESSTOKEN holds a macro the pipeline did not expand{macro_text}: it names no variable"
                ),
                format!("write it exactly: {MAP_ACCESS_TOKEN}"),
            );
            None
        }
        Some(v) => Some(secrecy::SecretString::from(v.to_string())),
    };
    match (ok, request_uri, access_token) {
        (true, Some(request_uri), Some(access_token)) => {
            Some(crate::azure::auth::ClientProof::AzurePipelines(
                crate::azure::pipelines::PipelineOidc {
                    request_uri,
                    access_token,
                    service_connection_id: id.trim().to_string(),
                },
            ))
        }
        _ => None,
    }
}

/// How a run's HTTP clients are built: the Azure sign-in's settings when
/// there is one (its `resolve` and `ca-cert` are read there), else the same
/// inputs read here.
pub(super) fn http_settings(
    r: &mut Resolver<'_>,
    azure: &Option<Option<AzureConfig>>,
) -> Option<crate::http::HttpSettings> {
    match azure {
        Some(Some(a)) => return Some(a.http.clone()),
        // The sign-in failed: its errors (those inputs' included) are said.
        None => return None,
        Some(None) => {}
    }
    let (resolve, ca_pem) = http_inputs(r);
    Some(crate::http::HttpSettings {
        resolve: resolve.unwrap_or_default(),
        extra_ca_pem: ca_pem.into_iter().collect(),
        ..crate::http::HttpSettings::default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::auth::ClientProof;

    /// A rollback on the command line with `vars` as the environment: its
    /// Azure sign-in, or the errors about signing in.
    fn sign_in(vars: &[(&str, &str)]) -> Result<AzureConfig, Vec<InputError>> {
        let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let flags: BTreeMap<String, String> = [
            ("reason", "INC-1"),
            ("services", "app-contoso-payments"),
            ("resource-group", "rg"),
            ("lock", "none"),
            ("subscription-id", "00000000-0000-4000-8000-00000000c0de"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let raw = RawInputs::from_cli(Command::Rollback, &flags, &env);
        match Config::resolve(&raw, &env) {
            Ok(c) => Ok(c.rollback.and_then(|r| r.azure).expect("azure config")),
            Err(errors) => Err(errors),
        }
    }

    const SC: &str = "0de0c0de-5c5c-4000-8000-00000000a205";
    const URI: &str =
        "https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/x/jobs/y/oidctoken";

    /// An AzureCLI@2 step with the access token mapped.
    fn pipeline_step() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TF_BUILD", "True"),
            ("SYSTEM_OIDCREQUESTURI", URI),
            ("SYSTEM_ACCESSTOKEN", "sat-value"),
            ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", SC),
            ("AZURESUBSCRIPTION_CLIENT_ID", "client-from-task"),
            ("AZURESUBSCRIPTION_TENANT_ID", "tenant-from-task"),
        ]
    }

    fn problems(errors: &[InputError]) -> String {
        errors
            .iter()
            .map(|e| e.render(crate::action::console::Style::Cli))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn an_azure_cli_step_signs_in_through_its_service_connection() {
        let c = sign_in(&pipeline_step()).unwrap();
        assert_eq!(c.identity.client_id, "client-from-task");
        assert_eq!(c.identity.tenant_id, "tenant-from-task");
        let ClientProof::AzurePipelines(p) = &c.identity.proof else {
            panic!("{:?}", c.identity.proof);
        };
        assert_eq!(p.service_connection_id, SC);
        assert_eq!(p.request_uri.as_str(), URI);
        // Given ids win over the task's; a secret wins over the connection
        // AzureCLI@2 names for every script.
        let mut vars = pipeline_step();
        vars.push(("AZURE_CLIENT_ID", "given-client"));
        vars.push(("AZURE_CLIENT_SECRET", "s3cr3t"));
        let c = sign_in(&vars).unwrap();
        assert_eq!(c.identity.client_id, "given-client");
        assert!(matches!(c.identity.proof, ClientProof::Secret(_)));
        // A secret without its client id does not borrow the connection's.
        vars.retain(|(k, _)| *k != "AZURE_CLIENT_ID");
        let e = problems(&sign_in(&vars).unwrap_err());
        assert!(e.contains("client-id"), "{e}");
    }

    #[test]
    fn a_step_without_what_the_pipeline_route_needs_is_told_what_to_add() {
        let without = |name: &str| -> String {
            let vars: Vec<_> = pipeline_step()
                .into_iter()
                .filter(|(k, _)| *k != name)
                .collect();
            problems(&sign_in(&vars).unwrap_err())
        };
        let e = without("SYSTEM_ACCESSTOKEN");
        assert!(
            e.contains("--service-connection-id: needs System.AccessToken")
                && e.contains("env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)"),
            "{e}"
        );
        let e = without("SYSTEM_OIDCREQUESTURI");
        assert!(e.contains("SYSTEM_OIDCREQUESTURI is not set"), "{e}");
        let e = without("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID");
        assert!(
            e.contains("--service-connection-id: is not given") && e.contains("AzureCLI@2"),
            "{e}"
        );
        // A macro naming no variable is passed on unexpanded.
        let mut vars = pipeline_step();
        vars.retain(|(k, _)| *k != "SYSTEM_ACCESSTOKEN");
        vars.push(("SYSTEM_ACCESSTOKEN", "$(System.AccesToken)"));
        let e = problems(&sign_in(&vars).unwrap_err());
        assert!(e.contains("did not expand ('$(System.AccesToken)')"), "{e}");
        // The name is not the id.
        let mut vars = pipeline_step();
        vars.retain(|(k, _)| *k != "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID");
        vars.push(("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc-contoso-prod"));
        let e = problems(&sign_in(&vars).unwrap_err());
        assert!(
            e.contains("'sc-contoso-prod' is not a service connection id")
                && e.contains("not the service connection's name"),
            "{e}"
        );
        // Outside a pipeline, the GitHub advice stays as it was.
        let e =
            problems(&sign_in(&[("AZURE_CLIENT_ID", "c"), ("AZURE_TENANT_ID", "t")]).unwrap_err());
        assert!(
            e.contains("id-token: write") && !e.contains("service-connection"),
            "{e}"
        );
    }

    #[test]
    fn a_federated_token_given_directly_is_one_proof_and_never_shown() {
        use base64::Engine;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = |exp: i64| {
            format!(
                "{}.{}.c2ln",
                b.encode(r#"{"alg":"ES256"}"#),
                b.encode(format!(r#"{{"exp":{exp},"sub":"sc://o/p/c"}}"#))
            )
        };
        let now = chrono::Utc::now().timestamp();
        let fresh = jwt(now + 600);
        let c = sign_in(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_FEDERATED_TOKEN", &fresh),
        ])
        .unwrap();
        assert!(matches!(c.identity.proof, ClientProof::FederatedToken(_)));
        let stale = jwt(now - 1200);
        let e = problems(
            &sign_in(&[
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_FEDERATED_TOKEN", &stale),
            ])
            .unwrap_err(),
        );
        assert!(
            e.contains("--federated-token: expired 20 minutes ago")
                && e.contains("service-connection-id")
                && !e.contains(&stale),
            "{e}"
        );
        let e = problems(
            &sign_in(&[
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_SECRET", "s"),
                ("AZURE_FEDERATED_TOKEN", &fresh),
            ])
            .unwrap_err(),
        );
        assert!(
            e.contains("--federated-token: is given together with client-secret"),
            "{e}"
        );
    }
}
