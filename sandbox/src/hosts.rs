//! The host names the sandbox answers to (RFC 6761 `.test` names, so nothing
//! ever leaves the machine).

/// Azure Resource Manager.
pub const ARM: &str = "management.azure.test";
/// Entra ID (the authority host).
pub const LOGIN: &str = "login.azure.test";
/// GitHub Actions' OIDC token service.
pub const OIDC: &str = "token.actions.test";
/// Azure DevOps: the pipeline job's OIDC token service
/// (`SYSTEM_OIDCREQUESTURI`, as `dev.azure.com`).
pub const PIPELINES: &str = "dev.azure.test";
/// The issuer named in pipeline OIDC tokens (`vstoken.dev.azure.com`); a
/// name only: the sandbox's Entra holds the issuer's key.
pub const PIPELINES_ISSUER: &str = "vstoken.dev.azure.test";
/// Parent domain of App Service site and SCM hosts.
pub const WEB_DOMAIN: &str = "azurewebsites.test";
/// Parent domain of Container Apps environments.
pub const CONTAINER_APPS_DOMAIN: &str = "azurecontainerapps.test";
/// Parent domain of Static Web Apps hosts: production
/// `{site}.azurestaticapps.test`, previews
/// `{site}-{env}.{location}.azurestaticapps.test`.
pub const STATIC_APPS_DOMAIN: &str = "azurestaticapps.test";
/// Parent domain of Blob Storage accounts (`{account}.blob.core.test`).
pub const BLOB_DOMAIN: &str = "blob.core.test";

/// The `Host` header without port, lower-cased.
pub(crate) fn normalise(host: &str) -> String {
    let h = host.trim().trim_end_matches('.');
    let without_port = match h.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => h,
    };
    without_port.to_ascii_lowercase()
}
