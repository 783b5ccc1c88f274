//! What a client needs to talk to a running sandbox: endpoints, identities,
//! credentials, host resolution and the CA to trust — as a struct, as shell
//! `export` lines and as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One host-resolution override, curl `--resolve` style (`pattern=addr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveEntry {
    /// Exact host, or `*.domain` for every name under `domain`.
    pub host: String,
    pub addr: SocketAddr,
}

/// Everything the CLI (or any client) needs to use the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub arm_endpoint: String,
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    /// Random per start; it is a sandbox credential, printed on purpose.
    pub client_secret: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    /// The federated identity credential Entra accepts assertions for.
    pub federated_issuer: String,
    pub federated_subject: String,
    pub federated_audience: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (already carries a query string).
    pub oidc_request_url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub oidc_request_token: String,
    /// Azure Pipelines: `SYSTEM_OIDCREQUESTURI` of the sandbox's job.
    #[serde(default)]
    pub pipelines_oidc_request_uri: String,
    /// The job's `System.AccessToken` (random per start, printed on purpose).
    #[serde(default)]
    pub pipelines_access_token: String,
    /// The id of its Azure Resource Manager service connection
    /// (`AZURESUBSCRIPTION_SERVICE_CONNECTION_ID`).
    #[serde(default)]
    pub pipelines_service_connection_id: String,
    /// The federated credential Entra holds for that service connection.
    #[serde(default)]
    pub pipelines_federated_issuer: String,
    #[serde(default)]
    pub pipelines_federated_subject: String,
    pub resolve: Vec<ResolveEntry>,
    /// PEM file of the sandbox CA.
    pub ca_cert_path: PathBuf,
    /// The system's roots and the sandbox CA in one PEM file, for clients
    /// whose CA variable replaces their trust store.
    #[serde(default)]
    pub ca_bundle_path: PathBuf,
    pub https_addr: SocketAddr,
    /// `HTTPS_PROXY` for any other client (az, gh, curl, SDKs): a CONNECT
    /// proxy that reaches the sandbox's hosts by name.
    #[serde(default)]
    pub proxy_url: String,
    /// Base URL of the plain-HTTP control API (`/_sandbox/...`).
    pub control_url: String,
    /// Web apps of the scenario.
    pub web_apps: Vec<String>,
    /// Container apps of the scenario.
    pub container_apps: Vec<String>,
    /// Static web apps (`Microsoft.Web/staticSites`) of the scenario.
    #[serde(default)]
    pub static_sites: Vec<String>,
    /// Base URL of the scenario's Blob Storage account for build artifacts
    /// (`https://stcontosobuilds.blob.core.test`); blobs are
    /// `{blob_endpoint}/{container}/{name}`.
    #[serde(default)]
    pub blob_endpoint: String,
    /// `GITHUB_API_URL` of the sandbox GitHub (`https://api.github.test`).
    #[serde(default)]
    pub github_api_url: String,
    /// `GITHUB_SERVER_URL` (`https://github.test`, git smart-HTTP).
    #[serde(default)]
    pub github_server_url: String,
    /// Personal token (`ghp_sandbox…`), random per start, printed on purpose.
    #[serde(default)]
    pub github_token: String,
    /// The sandbox GitHub App's id.
    #[serde(default)]
    pub github_app_id: u64,
    /// PEM file of the App's private key (a fixed TEST key).
    #[serde(default)]
    pub github_app_private_key_path: PathBuf,
    /// Slack incoming-webhook URL of the sandbox receiver (token in the path).
    #[serde(default)]
    pub slack_webhook_url: String,
    /// Teams Workflows webhook URL of the sandbox receiver (`sig` in the query).
    #[serde(default)]
    pub teams_webhook_url: String,
    /// PagerDuty Events API v2 routing key the sandbox accepts (32 characters).
    #[serde(default)]
    pub pagerduty_routing_key: String,
    /// PagerDuty Events API base URL (`https://events.pagerduty.test`).
    #[serde(default)]
    pub pagerduty_url: String,
    /// A kubeconfig for the emulated Kubernetes API server (its CA, its
    /// token, `tls-server-name`); `KUBECONFIG` in [`Settings::client_env`].
    #[serde(default)]
    pub kubeconfig_path: PathBuf,
    /// The Kubernetes API server's URL (`https://127.0.0.1:{port}`).
    #[serde(default)]
    pub kube_server: String,
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

impl Settings {
    /// `EXPEDITE_RESOLVE` value: comma-separated `pattern=addr` entries.
    pub fn resolve_string(&self) -> String {
        self.resolve
            .iter()
            .map(|e| format!("{}={}", e.host, e.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Environment variables, in a stable order.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EXPEDITE_ARM_ENDPOINT", self.arm_endpoint.clone()),
            ("AZURE_AUTHORITY_HOST", self.authority_host.clone()),
            ("EXPEDITE_RESOLVE", self.resolve_string()),
            ("EXPEDITE_CA_CERT", self.ca_cert_path.display().to_string()),
            ("EXPEDITE_SANDBOX_URL", self.control_url.clone()),
            ("EXPEDITE_RESOURCE_GROUP", self.resource_group.clone()),
            ("AZURE_TENANT_ID", self.tenant_id.clone()),
            ("AZURE_CLIENT_ID", self.client_id.clone()),
            ("AZURE_CLIENT_SECRET", self.client_secret.clone()),
            ("AZURE_SUBSCRIPTION_ID", self.subscription_id.clone()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                self.oidc_request_url.clone(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                self.oidc_request_token.clone(),
            ),
            ("GITHUB_API_URL", self.github_api_url.clone()),
            ("GITHUB_SERVER_URL", self.github_server_url.clone()),
            ("EXPEDITE_SANDBOX_GITHUB_TOKEN", self.github_token.clone()),
            (
                "EXPEDITE_SANDBOX_GITHUB_APP_ID",
                self.github_app_id.to_string(),
            ),
            (
                "EXPEDITE_SANDBOX_GITHUB_APP_KEY",
                self.github_app_private_key_path.display().to_string(),
            ),
            ("EXPEDITE_SLACK_WEBHOOK_URL", self.slack_webhook_url.clone()),
            ("EXPEDITE_TEAMS_WEBHOOK_URL", self.teams_webhook_url.clone()),
            (
                "EXPEDITE_PAGERDUTY_ROUTING_KEY",
                self.pagerduty_routing_key.clone(),
            ),
            ("EXPEDITE_PAGERDUTY_URL", self.pagerduty_url.clone()),
            ("EXPEDITE_SANDBOX_BLOB_ENDPOINT", self.blob_endpoint.clone()),
        ]
    }

    /// What other clients need (the Azure CLI, `gh`, curl, SDKs): the
    /// proxy that reaches the sandbox's hosts by name, and the CA in the
    /// variables each reads. Not in [`Settings::env`]: expedite itself
    /// reaches the sandbox through `EXPEDITE_RESOLVE` (it would honour the
    /// proxy too).
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        let ca = self.ca_bundle_path.display().to_string();
        vec![
            ("HTTPS_PROXY", self.proxy_url.clone()),
            ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
            // Python requests (the Azure CLI), OpenSSL and Go (gh), curl, Node.
            ("REQUESTS_CA_BUNDLE", ca.clone()),
            ("SSL_CERT_FILE", ca.clone()),
            ("CURL_CA_BUNDLE", ca.clone()),
            ("NODE_EXTRA_CA_CERTS", ca),
            // kubectl and the Kubernetes clients.
            ("KUBECONFIG", self.kubeconfig_path.display().to_string()),
        ]
    }

    /// What a step of an Azure Pipelines job sees when it uses the
    /// sandbox's service connection (AzureCLI@2 or AzurePowerShell@5, with
    /// `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`). Not in
    /// [`Settings::env`]: with them, expedite signs in as a pipeline does,
    /// through the job's OIDC token service, instead of with the secret.
    pub fn pipelines_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TF_BUILD", "True".to_owned()),
            (
                "SYSTEM_OIDCREQUESTURI",
                self.pipelines_oidc_request_uri.clone(),
            ),
            ("SYSTEM_ACCESSTOKEN", self.pipelines_access_token.clone()),
            (
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                self.pipelines_service_connection_id.clone(),
            ),
            ("AZURESUBSCRIPTION_CLIENT_ID", self.client_id.clone()),
            ("AZURESUBSCRIPTION_TENANT_ID", self.tenant_id.clone()),
        ]
    }

    /// `export NAME='value'` lines for `eval "$(…)"`: expedite's settings,
    /// then the other clients', then (commented out) a pipeline job's.
    pub fn export_lines(&self) -> String {
        let mut lines: String = self
            .env()
            .into_iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(&v)))
            .collect();
        lines.push_str(
            "# other clients (az, gh, curl, SDKs) reach the sandbox's hosts through its proxy\n",
        );
        for (k, v) in self.client_env() {
            lines.push_str(&format!("export {k}={}\n", shell_quote(&v)));
        }
        lines.push_str(
            "# an Azure Pipelines job using the sandbox's service connection: uncomment and unset AZURE_CLIENT_SECRET to sign in as a pipeline does\n",
        );
        for (k, v) in self.pipelines_env() {
            lines.push_str(&format!("# export {k}={}\n", shell_quote(&v)));
        }
        lines
    }

    /// Pretty JSON of every field.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_shell_quoting() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
        assert_eq!(shell_quote("plain"), "'plain'");
    }
}
