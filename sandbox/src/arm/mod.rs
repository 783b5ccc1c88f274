//! Azure Resource Manager front door: the cloud's metadata document (no
//! token), framing (411), authentication (401), api-version checks,
//! subscriptions, tenants, providers, subscription/resource-group resolution
//! and the correlation headers of reference §1.2, then dispatch to a
//! provider (Microsoft.Web sites and staticSites, Microsoft.App,
//! Microsoft.Insights, the Tags API).

pub(crate) mod app;
pub(crate) mod insights;
pub(crate) mod resources;
pub(crate) mod static_sites;
pub(crate) mod tags;
pub(crate) mod web;

use http::{Method, StatusCode};
use serde_json::json;

use crate::respond::{self, Outcome, Req, Resp};
use crate::server::{Shared, is_post_like};
use crate::tokens::{self, ARM_AUDIENCES};

/// api-versions of `Microsoft.Web/sites` (and slots) the sandbox accepts:
/// every version of `WebApps.json` in azure-rest-api-specs
/// (`specification/web/resource-manager/Microsoft.Web/AppService`), from
/// 2015-08-01 (`service.json`) to 2026-09-01. The sandbox answers every one
/// with the same (newest) shapes.
pub const WEB_API_VERSIONS: [&str; 25] = [
    "2015-08-01",
    "2016-08-01",
    "2018-02-01",
    "2018-11-01",
    "2019-08-01",
    "2020-06-01",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-01-15",
    "2021-02-01",
    "2021-03-01",
    "2022-03-01",
    "2022-09-01",
    "2023-01-01",
    "2023-12-01",
    "2024-04-01",
    "2024-11-01",
    "2025-03-01",
    "2025-05-01",
    "2026-03-01-preview",
    "2026-03-15",
    "2026-07-15",
    "2026-09-01",
];

/// The front end's text for a body-less POST without `Content-Length`
/// (reference §1.1; HTTP.sys wording).
const LENGTH_REQUIRED_HTML: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n<HTML><HEAD><TITLE>Length Required</TITLE>\r\n<META HTTP-EQUIV=\"Content-Type\" Content-Type=\"text/html; charset=us-ascii\"></HEAD>\r\n<BODY><h2>Length Required</h2>\r\n<hr><p>HTTP Error 411. The request must be chunked or have a content length.</p>\r\n</BODY></HTML>\r\n";

/// One page of an ARM list, as ARM pages them: `{"value": […], "nextLink":
/// …}` where `nextLink` is the whole URL of the next page (the request's own
/// api-version and an opaque `$skiptoken`), or `null` on the last page.
/// Pages of `page_size` items ([`crate::SandboxConfig::list_page_size`]);
/// an unknown skip token is a 400, as ARM answers a tampered one.
pub(crate) fn page(req: &Req, page_size: Option<usize>, items: Vec<serde_json::Value>) -> Resp {
    let start = match req.query_param("$skiptoken") {
        None => 0,
        Some(t) => match t.strip_prefix("sbx-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => {
                return respond::arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    format!("The skip token '{t}' is not valid."),
                );
            }
        },
    };
    let size = page_size.unwrap_or(usize::MAX).max(1);
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "api-version",
                req.query_param("api-version").unwrap_or_default(),
            )
            .append_pair("$skiptoken", &format!("sbx-{end}"))
            .finish();
        format!("https://{}{}?{query}", req.host, req.path)
    });
    let value: Vec<serde_json::Value> = items.into_iter().skip(start).take(end - start).collect();
    respond::json(StatusCode::OK, &json!({"value": value, "nextLink": next}))
}

/// Answers 411 when a POST/PUT/PATCH says nothing about its body length.
pub(crate) fn length_required(req: &Req) -> Option<Resp> {
    (is_post_like(&req.method) && req.no_length)
        .then(|| respond::html(StatusCode::LENGTH_REQUIRED, LENGTH_REQUIRED_HTML))
}

/// Why a bearer token was refused.
pub(crate) struct AuthFailure {
    pub code: &'static str,
    pub message: String,
}

/// Checks `Authorization: Bearer <token>` for an ARM-audience token signed by
/// the sandbox Entra, within its validity window. Shared with Kudu.
pub(crate) fn authenticate(shared: &Shared, req: &Req) -> Result<(), AuthFailure> {
    let Some(header) = req.header("authorization") else {
        return Err(AuthFailure {
            code: "AuthenticationFailed",
            message: "Authentication failed. The 'Authorization' header is missing.".into(),
        });
    };
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(AuthFailure {
                code: "AuthenticationFailed",
                message: "Authentication failed. The 'Authorization' header is provided in an invalid format.".into(),
            });
        }
    };
    let claims = shared.entra.verify(token).map_err(|_| AuthFailure {
        code: "InvalidAuthenticationToken",
        message: "The access token is invalid.".into(),
    })?;
    let auds = claims.aud.as_ref().map(|a| a.values()).unwrap_or_default();
    if !auds.iter().any(|a| ARM_AUDIENCES.contains(a)) {
        return Err(AuthFailure {
            code: "InvalidAuthenticationTokenAudience",
            message: format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com','https://management.azure.test/','https://management.azure.test'.",
                auds.join(",")
            ),
        });
    }
    let now = tokens::now_unix();
    let fmt = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    let exp = claims.exp.unwrap_or(0);
    if exp <= now {
        return Err(AuthFailure {
            code: "ExpiredAuthenticationToken",
            message: format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                fmt(exp),
                fmt(now)
            ),
        });
    }
    if let Some(nbf) = claims.nbf
        && nbf > now
    {
        return Err(AuthFailure {
            code: "InvalidAuthenticationToken",
            message: format!(
                "The access token is not yet valid: its 'nbf' UTC time '{}' is later than current UTC time '{}'.",
                fmt(nbf),
                fmt(now)
            ),
        });
    }
    Ok(())
}

/// Adds the correlation and throttling headers ARM puts on every answer.
fn decorate(req: &Req, resp: &mut Resp, location: &str, remaining: Option<(&'static str, u64)>) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation = req
        .header("x-ms-correlation-request-id")
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    respond::set_header(resp, "x-ms-request-id", &request_id);
    respond::set_header(resp, "x-ms-correlation-request-id", &correlation);
    if let Some(c) = req.header("x-ms-client-request-id") {
        respond::set_header(resp, "x-ms-client-request-id", c);
    }
    let routing = format!(
        "{}:{}:{}",
        location.to_ascii_uppercase(),
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        request_id
    );
    respond::set_header(resp, "x-ms-routing-request-id", &routing);
    if let Some((name, n)) = remaining {
        respond::set_header(resp, name, &n.to_string());
    }
    respond::set_header(resp, "cache-control", "no-cache");
    respond::set_header(resp, "pragma", "no-cache");
    respond::set_header(resp, "expires", "-1");
}

pub(crate) async fn handle(shared: &Shared, req: &Req) -> Outcome {
    let location = shared.world().ids.location.clone();
    let (outcome, remaining) = dispatch(shared, req).await;
    match outcome {
        Outcome::Respond(mut r) => {
            decorate(req, &mut r, &location, remaining);
            Outcome::Respond(r)
        }
        Outcome::Drop => Outcome::Drop,
    }
}

fn valid_api_version_format(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10
}

/// `Ok(version)` or ARM's 400 for a missing or malformed api-version.
fn api_version(req: &Req) -> Result<String, Resp> {
    // A repeated parameter reaches ARM's front end joined with commas (as
    // ASP.NET joins one), so `?api-version=A&api-version=A` is the invalid
    // version "A,A" — what a client that appends its own api-version to a
    // `nextLink` gets.
    let given: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v.as_str())
        .collect();
    let joined = given.join(",");
    match (!given.is_empty()).then_some(joined.as_str()) {
        None | Some("") => Err(respond::arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if !valid_api_version_format(v) => Err(respond::arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '2025-05-01,2024-11-01'."
            ),
        )),
        Some(v) => Ok(v.to_owned()),
    }
}

/// ARM's 400 for a well-formed api-version the resource type does not have.
pub(crate) fn unsupported_api_version(
    v: &str,
    type_name: &str,
    location: &str,
    supported: &[&str],
) -> Resp {
    respond::arm_error(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{v}' for type '{type_name}'. The supported api-versions are '{}'. The supported locations are '{location}'.",
            supported.join(", ")
        ),
    )
}

/// Front-door checks in ARM's order — framing, authentication, throttling —
/// then routing. Returns the remaining-budget header to add.
async fn dispatch(shared: &Shared, req: &Req) -> (Outcome, Option<(&'static str, u64)>) {
    // The cloud's metadata document is public: ARM serves it without a
    // token (a custom cloud's endpoint discovery reads it before sign-in).
    let segs = req.segments();
    if segs.len() == 2
        && segs[0].eq_ignore_ascii_case("metadata")
        && segs[1].eq_ignore_ascii_case("endpoints")
    {
        return (resources::metadata_endpoints(shared, req).into(), None);
    }
    if let Some(r) = length_required(req) {
        return (r.into(), None);
    }
    if let Err(f) = authenticate(shared, req) {
        let tenant = shared.world().ids.tenant_id.clone();
        let mut r = respond::arm_error(StatusCode::UNAUTHORIZED, f.code, f.message.clone());
        respond::set_header(
            &mut r,
            "www-authenticate",
            &format!(
                "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{}\"",
                shared.authority,
                tenant,
                f.message.replace('"', "'")
            ),
        );
        return (r.into(), None);
    }
    let write = !matches!(req.method, Method::GET | Method::HEAD);
    let header = if write {
        "x-ms-ratelimit-remaining-subscription-writes"
    } else {
        "x-ms-ratelimit-remaining-subscription-reads"
    };
    let taken = shared
        .arm_limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(write, std::time::Instant::now());
    match taken {
        Ok(remaining) => (route(shared, req).await, Some((header, remaining))),
        Err(wait_secs) => {
            let (sub, client) = {
                let w = shared.world();
                (w.ids.subscription_id.clone(), w.ids.client_id.clone())
            };
            let kind = if write { "write" } else { "read" };
            let mut r = respond::arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "Number of '{kind}' requests for subscription '{sub}' actor '{client}' exceeded. Please try again after '{wait_secs}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"
                ),
            );
            respond::set_header(&mut r, "retry-after", &wait_secs.to_string());
            (r.into(), Some((header, 0)))
        }
    }
}

/// Routes an authenticated, admitted ARM request.
async fn route(shared: &Shared, req: &Req) -> Outcome {
    let version = match api_version(req) {
        Ok(v) => v,
        Err(r) => return r.into(),
    };
    let segs = req.segments();
    let ids = shared.world().ids.clone();
    let not_found_uri = || {
        respond::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "No HTTP resource was found that matches the request URI '{}{}'.",
                shared.arm_base,
                req.path_and_query()
            ),
        )
    };
    let seg_is = |i: usize, name: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(name));
    // Tenant-level ARM: the principal's subscriptions and tenants (what
    // `az login` lists).
    if segs.len() == 1 && (seg_is(0, "subscriptions") || seg_is(0, "tenants")) {
        if req.method != Method::GET {
            return method_not_emulated(req).into();
        }
        if let Err(r) = resources::check_version(&version) {
            return r.into();
        }
        return if seg_is(0, "tenants") {
            resources::list_tenants(&ids)
        } else {
            resources::list_subscriptions(&ids)
        }
        .into();
    }
    if !seg_is(0, "subscriptions") || segs.len() < 2 {
        return not_found_uri().into();
    }
    if !segs[1].eq_ignore_ascii_case(&ids.subscription_id) {
        return respond::arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", segs[1]),
        )
        .into();
    }
    let sub_id = format!("/subscriptions/{}", ids.subscription_id);
    if segs.len() == 2 {
        if req.method != Method::GET {
            return not_found_uri().into();
        }
        if let Err(r) = resources::check_version(&version) {
            return r.into();
        }
        return resources::get_subscription(&ids).into();
    }
    // `/subscriptions/{id}/providers[/{namespace}[/register]]`.
    if seg_is(2, "providers") && segs.len() <= 5 {
        if let Err(r) = resources::check_version(&version) {
            return r.into();
        }
        return resources::handle_providers(shared, req, &segs[3..]).into();
    }
    // Subscription-scoped Container Apps LRO URLs (reference §5.2).
    if seg_is(2, "providers")
        && seg_is(3, "Microsoft.App")
        && seg_is(4, "locations")
        && segs.len() == 8
        && req.method == Method::GET
        && (seg_is(6, "containerappOperationStatuses") || seg_is(6, "containerappOperationResults"))
    {
        if !app::APP_API_VERSIONS.contains(&version.as_str()) {
            return unsupported_api_version(
                &version,
                "locations/containerappOperationStatuses",
                &ids.location,
                &app::APP_API_VERSIONS,
            )
            .into();
        }
        return app::operation(shared, &version, &segs[6], &segs[7]).into();
    }
    // Subscription-scoped Microsoft.Web LRO URL of Static Web Apps' zip
    // deployments and build deletions.
    if seg_is(2, "providers")
        && seg_is(3, "Microsoft.Web")
        && seg_is(4, "locations")
        && seg_is(6, "operationResults")
        && segs.len() == 8
        && req.method == Method::GET
    {
        if !static_sites::STATIC_SITES_API_VERSIONS.contains(&version.as_str()) {
            return unsupported_api_version(
                &version,
                "locations/operationResults",
                &ids.location,
                static_sites::STATIC_SITES_API_VERSIONS,
            )
            .into();
        }
        return static_sites::operation(shared, &segs[5], &segs[7]).into();
    }
    if !seg_is(2, "resourceGroups") || segs.len() < 4 {
        return not_found_uri().into();
    }
    if !segs[3].eq_ignore_ascii_case(&ids.resource_group) {
        return respond::arm_error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{}' could not be found.", segs[3]),
        )
        .into();
    }
    if segs.len() == 4 {
        if req.method != Method::GET {
            return not_found_uri().into();
        }
        if let Err(r) = resources::check_version(&version) {
            return r.into();
        }
        return respond::json(
            StatusCode::OK,
            &json!({
                "id": format!("{sub_id}/resourceGroups/{}", ids.resource_group),
                "name": ids.resource_group,
                "type": "Microsoft.Resources/resourceGroups",
                "location": ids.location,
                "properties": {"provisioningState": "Succeeded"}
            }),
        )
        .into();
    }
    if !seg_is(4, "providers") || segs.len() < 7 {
        return not_found_uri().into();
    }
    let n = segs.len();
    // `{resourceId}/providers/Microsoft.Resources/tags/default`: the Tags API.
    if n >= 12
        && segs[n - 4].eq_ignore_ascii_case("providers")
        && segs[n - 3].eq_ignore_ascii_case("Microsoft.Resources")
        && segs[n - 2].eq_ignore_ascii_case("tags")
        && segs[n - 1].eq_ignore_ascii_case("default")
    {
        return tags::handle(shared, req, &version, &segs[..n - 4]).into();
    }
    // `{resourceId}/providers/Microsoft.Insights/metrics` (reference §6.1).
    if n >= 10
        && segs[n - 3].eq_ignore_ascii_case("providers")
        && segs[n - 2].eq_ignore_ascii_case("Microsoft.Insights")
        && segs[n - 1].eq_ignore_ascii_case("metrics")
    {
        return insights::handle(shared, req, &version, &segs[..n - 3]).into();
    }
    let namespace = segs[5].as_str();
    let type_name = segs[6].as_str();
    if namespace.eq_ignore_ascii_case("Microsoft.Web")
        && type_name.eq_ignore_ascii_case("staticSites")
    {
        if !static_sites::STATIC_SITES_API_VERSIONS.contains(&version.as_str()) {
            return unsupported_api_version(
                &version,
                "staticSites",
                &ids.location,
                static_sites::STATIC_SITES_API_VERSIONS,
            )
            .into();
        }
        return static_sites::handle(shared, req, &version, &segs[7..]);
    }
    if namespace.eq_ignore_ascii_case("Microsoft.Web") {
        if !type_name.eq_ignore_ascii_case("sites") {
            return invalid_resource_type(type_name, namespace, &version).into();
        }
        if !WEB_API_VERSIONS.contains(&version.as_str()) {
            return unsupported_api_version(&version, "sites", &ids.location, &WEB_API_VERSIONS)
                .into();
        }
        return web::handle(shared, req, &version, &segs[7..]).await;
    }
    if namespace.eq_ignore_ascii_case("Microsoft.App") {
        if !type_name.eq_ignore_ascii_case("containerApps") {
            return invalid_resource_type(type_name, namespace, &version).into();
        }
        if !app::APP_API_VERSIONS.contains(&version.as_str()) {
            return unsupported_api_version(
                &version,
                "containerApps",
                &ids.location,
                &app::APP_API_VERSIONS,
            )
            .into();
        }
        return app::handle(shared, req, &version, &segs[7..]);
    }
    if namespace.eq_ignore_ascii_case("Microsoft.Insights") {
        return invalid_resource_type(type_name, namespace, &version).into();
    }
    respond::arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceNamespace",
        format!("The resource namespace '{namespace}' is invalid."),
    )
    .into()
}

pub(crate) fn invalid_resource_type(type_name: &str, namespace: &str, version: &str) -> Resp {
    respond::arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource type '{type_name}' could not be found in the namespace '{namespace}' for api version '{version}'."
        ),
    )
}

/// The answer to a method ARM routes but the sandbox does not emulate.
pub(crate) fn method_not_emulated(req: &Req) -> Resp {
    respond::arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "The requested method '{}' is not allowed on '{}' in the sandbox.",
            req.method, req.path
        ),
    )
}

/// Tenant-scope token helper shared by Kudu.
pub(crate) fn unauthorized_kudu() -> Resp {
    respond::text(StatusCode::UNAUTHORIZED, "Unauthorized")
}
