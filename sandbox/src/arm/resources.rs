//! ARM's own endpoints (Microsoft.Resources): the cloud's metadata document
//! (`/metadata/endpoints`, served without a token, as a custom-cloud `az
//! cloud register` discovers endpoints), subscriptions and tenants (what
//! `az login` lists), and resource providers with the api-versions of each
//! emulated resource type (`az provider show`, SDKs that pick a version).

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::world::Ids;

/// api-versions of ARM's own endpoints (subscriptions, tenants, resource
/// groups, providers): the union of azure-rest-api-specs'
/// `Microsoft.Resources` `resources` and `subscriptions` packages, newest
/// first (ARM's error lists them so).
pub(crate) const RESOURCES_API_VERSIONS: [&str; 31] = [
    "2025-04-01",
    "2025-03-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-12-01",
    "2022-09-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-08-01",
    "2020-06-01",
    "2020-01-01",
    "2019-11-01",
    "2019-10-01",
    "2019-08-01",
    "2019-07-01",
    "2019-06-01",
    "2019-05-10",
    "2019-05-01",
    "2019-03-01",
    "2018-06-01",
    "2018-05-01",
    "2018-02-01",
    "2017-05-10",
    "2016-09-01",
    "2016-07-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
];

/// ARM's 400 for an api-version its own endpoints do not have (these are
/// not a resource provider's types, so not `NoRegisteredProviderFound`).
pub(crate) fn check_version(version: &str) -> Result<(), Resp> {
    if RESOURCES_API_VERSIONS.contains(&version) {
        return Ok(());
    }
    Err(respond::arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidApiVersionParameter",
        format!(
            "The api-version '{version}' is invalid. The supported versions are '{}'.",
            RESOURCES_API_VERSIONS.join(",")
        ),
    ))
}

/// `GET /metadata/endpoints?api-version=…`: the cloud's endpoints, which ARM
/// serves to anyone (no token). 2022-09-01 (what `az cloud register` asks)
/// is one cloud object; 2019-05-01 (`ARM_CLOUD_METADATA_URL`, Go and
/// PowerShell) an array of clouds; 2018-01-01 and 2015-01-01 (or 1.0, or no
/// version) the older flat document. Shapes as ARM answers for the public
/// cloud, with the sandbox's `.test` hosts.
pub(crate) fn metadata_endpoints(shared: &Shared, req: &Req) -> Resp {
    if req.method != Method::GET && req.method != Method::HEAD {
        return super::method_not_emulated(req);
    }
    let login = shared.authority.trim_end_matches('/').to_owned();
    let arm = format!("{}/", shared.arm_base.trim_end_matches('/'));
    let host = arm
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let location = shared.world().ids.location.clone();
    // az takes `audiences[0]` as the resource it signs in to (scope
    // `https://management.azure.test//.default`); tokens for the second are
    // accepted too.
    let audiences = json!([arm, "https://management.core.windows.net/"]);
    let authentication = json!({
        "loginEndpoint": login,
        "audiences": audiences,
        "tenant": "common",
        "identityProvider": "AAD",
    });
    let suffixes_2019 = json!({
        "azureDataLakeStoreFileSystem": "azuredatalakestore.test",
        "acrLoginServer": "azurecr.test",
        "sqlServerHostname": "database.azure.test",
        "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.test",
        "keyVaultDns": "vault.azure.test",
        "storage": "core.test",
        "azureFrontDoorEndpointSuffix": "azurefd.test",
    });
    let mut suffixes = suffixes_2019.clone();
    for (k, v) in [
        ("storageSyncEndpointSuffix", "afs.azure.test"),
        ("mhsmDns", "managedhsm.azure.test"),
        ("mysqlServerEndpoint", "mysql.database.azure.test"),
        ("postgresqlServerEndpoint", "postgres.database.azure.test"),
        ("mariadbServerEndpoint", "mariadb.database.azure.test"),
        ("synapseAnalytics", "dev.azuresynapse.test"),
        ("attestationEndpoint", "attest.azure.test"),
    ] {
        suffixes[k] = json!(v);
    }
    let cloud_2019 = json!({
        "portal": "https://portal.azure.test",
        "authentication": authentication,
        "media": "https://rest.media.azure.test",
        "graphAudience": "https://graph.azure.test/",
        "graph": "https://graph.azure.test/",
        "name": "ExpediteSandbox",
        "suffixes": suffixes_2019,
        "batch": "https://batch.core.test/",
        "resourceManager": arm,
        "vmImageAliasDoc": "https://aliases.azure.test/arm-compute/quickstart-templates/aliases.json",
        "activeDirectoryDataLake": "https://datalake.azure.test/",
        "sqlManagement": "https://management.core.azure.test:8443/",
        "gallery": "https://gallery.azure.test/",
    });
    let body = match req.query_param("api-version") {
        Some("2022-09-01") => {
            let mut cloud = cloud_2019;
            if let Some(o) = cloud.as_object_mut() {
                o.remove("gallery");
                o.insert("suffixes".into(), suffixes);
                for (k, v) in [
                    ("microsoftGraphResourceId", "https://graph.azure.test/"),
                    (
                        "appInsightsResourceId",
                        "https://api.applicationinsights.test",
                    ),
                    (
                        "appInsightsTelemetryChannelResourceId",
                        "https://dc.applicationinsights.azure.test/v2/track",
                    ),
                    ("attestationResourceId", "https://attest.azure.test"),
                    (
                        "synapseAnalyticsResourceId",
                        "https://dev.azuresynapse.test",
                    ),
                    ("logAnalyticsResourceId", "https://api.loganalytics.test"),
                    (
                        "ossrDbmsResourceId",
                        "https://ossrdbms-aad.database.azure.test",
                    ),
                ] {
                    o.insert(k.into(), json!(v));
                }
            }
            cloud
        }
        Some("2019-05-01") => json!([cloud_2019]),
        Some("2018-01-01") => json!({
            "galleryEndpoint": "https://gallery.azure.test/",
            "graphEndpoint": "https://graph.azure.test/",
            "portalEndpoint": "https://portal.azure.test/",
            "graphAudience": "https://graph.azure.test/",
            "authentication": {
                "loginEndpoint": format!("{login}/"),
                "audiences": audiences,
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "cloudEndpoint": {"expediteSandbox": {"endpoint": host, "locations": [location]}},
        }),
        // (guessed) no api-version answers as the oldest one.
        None | Some("2015-01-01") | Some("1.0") => json!({
            "galleryEndpoint": "https://gallery.azure.test/",
            "graphEndpoint": "https://graph.azure.test/",
            "portalEndpoint": "https://portal.azure.test/",
            "authentication": {"loginEndpoint": format!("{login}/"), "audiences": audiences},
        }),
        Some(v) => {
            // (guessed) wording; ARM's document has exactly these versions.
            return respond::arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{v}' is invalid. The supported versions are '2022-09-01,2019-05-01,2018-01-01,2015-01-01,1.0'."
                ),
            );
        }
    };
    respond::json(StatusCode::OK, &body)
}

fn subscription_json(ids: &Ids) -> Value {
    json!({
        "id": format!("/subscriptions/{}", ids.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": ids.subscription_id,
        "tenantId": ids.tenant_id,
        "displayName": "Contoso Production",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "EnterpriseAgreement_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

/// `GET /subscriptions`: the one subscription the sandbox principal sees.
pub(crate) fn list_subscriptions(ids: &Ids) -> Resp {
    respond::json(
        StatusCode::OK,
        &json!({"value": [subscription_json(ids)], "count": {"type": "Total", "value": 1}}),
    )
}

/// `GET /subscriptions/{id}`.
pub(crate) fn get_subscription(ids: &Ids) -> Resp {
    respond::json(StatusCode::OK, &subscription_json(ids))
}

/// `GET /tenants`: the sandbox tenant (Contoso).
pub(crate) fn list_tenants(ids: &Ids) -> Resp {
    respond::json(
        StatusCode::OK,
        &json!({
            "value": [{
                "id": format!("/tenants/{}", ids.tenant_id),
                "tenantId": ids.tenant_id,
                "countryCode": "NL",
                "displayName": "Contoso",
                "domains": ["contoso.onmicrosoft.test"],
                "tenantCategory": "Home",
                "defaultDomain": "contoso.onmicrosoft.test",
                "tenantType": "AAD"
            }],
            "count": {"type": "Total", "value": 1}
        }),
    )
}

const TRACKED: &str = "CrossResourceGroupResourceMove, CrossSubscriptionResourceMove, SystemAssignedResourceIdentity, SupportsTags, SupportsLocation";

/// A resource type a provider lists: its name, the api-versions the
/// sandbox accepts for it, and its capabilities.
type ResourceType = (&'static str, &'static [&'static str], &'static str);

/// The emulated resource providers, each with the types the sandbox serves.
fn providers() -> Vec<(&'static str, Vec<ResourceType>)> {
    vec![
        (
            "Microsoft.App",
            vec![
                ("containerApps", &super::app::APP_API_VERSIONS[..], TRACKED),
                (
                    "locations/containerappOperationStatuses",
                    &super::app::APP_API_VERSIONS[..],
                    "None",
                ),
                (
                    "locations/containerappOperationResults",
                    &super::app::APP_API_VERSIONS[..],
                    "None",
                ),
            ],
        ),
        (
            "Microsoft.Insights",
            vec![(
                "metrics",
                &super::insights::METRICS_API_VERSIONS[..],
                "None",
            )],
        ),
        (
            "Microsoft.Web",
            vec![
                ("sites", &super::WEB_API_VERSIONS[..], TRACKED),
                (
                    "sites/slots",
                    &super::WEB_API_VERSIONS[..],
                    "SupportsTags, SupportsLocation",
                ),
                (
                    "staticSites",
                    super::static_sites::STATIC_SITES_API_VERSIONS,
                    TRACKED,
                ),
                (
                    "staticSites/builds",
                    super::static_sites::STATIC_SITES_API_VERSIONS,
                    "None",
                ),
                (
                    "locations/operationResults",
                    super::static_sites::STATIC_SITES_API_VERSIONS,
                    "None",
                ),
            ],
        ),
    ]
}

fn provider_json(ids: &Ids, namespace: &str, types: &[ResourceType]) -> Value {
    let resource_types: Vec<Value> = types
        .iter()
        .map(|(ty, versions, capabilities)| {
            let mut newest_first: Vec<&str> = versions.to_vec();
            newest_first.sort_unstable_by(|a, b| b.cmp(a));
            json!({
                "resourceType": ty,
                "locations": [ids.location_display],
                "apiVersions": newest_first,
                "capabilities": capabilities,
            })
        })
        .collect();
    json!({
        "id": format!("/subscriptions/{}/providers/{namespace}", ids.subscription_id),
        "namespace": namespace,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": resource_types,
    })
}

/// `/subscriptions/{id}/providers[/{namespace}[/register]]`; `rest` is what
/// follows `providers`.
pub(crate) fn handle_providers(shared: &Shared, req: &Req, rest: &[String]) -> Resp {
    let ids = shared.world().ids.clone();
    let all = providers();
    match rest {
        [] if req.method == Method::GET => {
            let items: Vec<Value> = all
                .iter()
                .map(|(ns, types)| provider_json(&ids, ns, types))
                .collect();
            super::page(req, shared.config.list_page_size, items)
        }
        [ns] | [ns, _] => {
            let Some((name, types)) = all.iter().find(|(n, _)| n.eq_ignore_ascii_case(ns)) else {
                // (guessed) status; ARM's code and wording for an unknown namespace.
                return respond::arm_error(
                    StatusCode::NOT_FOUND,
                    "InvalidResourceNamespace",
                    format!("The resource namespace '{ns}' is invalid."),
                );
            };
            let action = rest.get(1).map(|a| a.to_ascii_lowercase());
            match (action.as_deref(), &req.method) {
                (None, &Method::GET) => {
                    respond::json(StatusCode::OK, &provider_json(&ids, name, types))
                }
                // Always registered: the sandbox's providers cannot be turned off.
                (Some("register" | "unregister"), &Method::POST) => {
                    respond::json(StatusCode::OK, &provider_json(&ids, name, types))
                }
                (None | Some("register" | "unregister"), _) => super::method_not_emulated(req),
                (Some(_), _) => respond::arm_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!(
                        "No HTTP resource was found that matches the request URI '{}{}'.",
                        shared.arm_base,
                        req.path_and_query()
                    ),
                ),
            }
        }
        _ => super::method_not_emulated(req),
    }
}
