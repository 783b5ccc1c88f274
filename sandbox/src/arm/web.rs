//! Microsoft.Web (App Service) under ARM: sites and slots, `config/web` with
//! traffic-routing rules, app settings, sticky names, swap (LRO via
//! `Location`), swap with preview, start/stop/restart (reference §3), and
//! the publishing profile (`publishxml`, which `az webapp show` reads).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{invalid_resource_type, method_not_emulated};
use crate::faults::FaultKind;
use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::world::{OpStatus, PRODUCTION, RampUpRule, RunState, Site, Slot, SwapOperation, World};

/// What the request addresses under `sites/{app}`.
struct Target {
    site: String,
    slot: String,
    /// Path below the site or slot.
    sub: Vec<String>,
    /// `W` or `W/slots/{slot}`, as an ARM resource id.
    resource_id: String,
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn bad_request(message: impl Into<String>) -> Resp {
    // (guessed) extended code 51021 = "The parameter {0} has an invalid value."
    respond::web_error(StatusCode::BAD_REQUEST, "BadRequest", message, "51021")
}

fn busy_conflict(world: &World, site: &Site) -> Option<Resp> {
    let op_id = site.busy.as_ref()?;
    let created = world
        .operations
        .get(op_id)
        .map(|op| op.started_utc.format("%-m/%-d/%Y %-I:%M:%S %p").to_string())
        .unwrap_or_default();
    Some(respond::web_error(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Cannot modify this site because another operation is in progress. Details: Id: {op_id}, OperationName: SwapSiteSlots, CreatedTime: {created}, WebSystemName: WebSites, SubscriptionName: {}, WebSpace: {}-WestEuropewebspace-Linux, SiteName: {}, SlotName: , ServerFarm: {}, GeoLocation: WestEurope",
            world.ids.subscription_id, world.ids.resource_group, site.name, world.ids.server_farm
        ),
        "59203",
    ))
}

fn preview_conflict(site: &Site, slot: &str) -> Option<Resp> {
    let p = site.preview.as_ref()?;
    (p.source == slot || p.target == slot).then(|| {
        respond::web_error(
            StatusCode::CONFLICT,
            "Conflict",
            "The slot cannot be changed because its configuration settings have been prepared for swap.",
            "04162",
        )
    })
}

fn site_id(world: &World, site: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
        world.ids.subscription_id, world.ids.resource_group, site
    )
}

fn slot_id(world: &World, site: &str, slot: &str) -> String {
    if slot == PRODUCTION {
        site_id(world, site)
    } else {
        format!("{}/slots/{}", site_id(world, site), slot)
    }
}

pub(crate) async fn handle(shared: &Shared, req: &Req, version: &str, rest: &[String]) -> Outcome {
    let target = {
        let world = shared.world();
        if rest.is_empty() {
            return list_sites(&world, req, shared.config.list_page_size);
        }
        let site_key = rest[0].to_ascii_lowercase();
        let Some(site) = world.sites.get(&site_key) else {
            return respond::arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!(
                    "The Resource 'Microsoft.Web/sites/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                    rest[0], world.ids.resource_group
                ),
            )
            .into();
        };
        let after = &rest[1..];
        if after.len() == 1 && eq(&after[0], "slots") {
            return list_slots(&world, site, req, shared.config.list_page_size);
        }
        let (slot, sub) = if after.len() >= 2 && eq(&after[0], "slots") {
            (after[1].to_ascii_lowercase(), after[2..].to_vec())
        } else {
            (PRODUCTION.to_owned(), after.to_vec())
        };
        if !site.slots.contains_key(&slot)
            || (slot == PRODUCTION && after.len() >= 2 && eq(&after[0], "slots"))
        {
            return respond::arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!(
                    "The Resource 'Microsoft.Web/sites/{}/slots/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                    site.name, after[1], world.ids.resource_group
                ),
            )
            .into();
        }
        Target {
            resource_id: slot_id(&world, &site.name, &slot),
            site: site_key,
            slot,
            sub,
        }
    };
    let sub: Vec<&str> = target.sub.iter().map(String::as_str).collect();
    let m = &req.method;
    match sub.as_slice() {
        [] if *m == Method::GET => get_site(shared, &target).into(),
        [] => method_not_emulated(req).into(),
        [c, w] if eq(c, "config") && eq(w, "web") => match *m {
            Method::GET => get_config(shared, &target).into(),
            Method::PATCH => write_config(shared, req, &target, false).into(),
            Method::PUT => write_config(shared, req, &target, true).into(),
            _ => method_not_emulated(req).into(),
        },
        [c, a, l]
            if eq(c, "config") && eq(a, "appsettings") && eq(l, "list") && *m == Method::POST =>
        {
            list_app_settings(shared, &target).into()
        }
        [c, a] if eq(c, "config") && eq(a, "appsettings") && *m == Method::PUT => {
            put_app_settings(shared, req, &target).into()
        }
        [c, n] if eq(c, "config") && eq(n, "slotConfigNames") && target.slot == PRODUCTION => {
            match *m {
                Method::GET => get_slot_config_names(shared, &target).into(),
                Method::PUT => put_slot_config_names(shared, req, &target).into(),
                _ => method_not_emulated(req).into(),
            }
        }
        [b, s]
            if eq(b, "basicPublishingCredentialsPolicies") && eq(s, "scm") && *m == Method::GET =>
        {
            respond::json(
                StatusCode::OK,
                &json!({
                    "id": format!("{}/basicPublishingCredentialsPolicies/scm", target.resource_id),
                    "name": "scm",
                    "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
                    "properties": {"allow": false}
                }),
            )
            .into()
        }
        [p] if eq(p, "publishxml") && *m == Method::POST => {
            publish_xml(shared, req, &target).into()
        }
        [s] if eq(s, "slotsswap") && *m == Method::POST => {
            swap(shared, req, version, &target).await
        }
        [s] if eq(s, "applySlotConfig") && *m == Method::POST => {
            apply_slot_config(shared, req, &target).into()
        }
        [s] if eq(s, "resetSlotConfig") && *m == Method::POST => {
            reset_slot_config(shared, &target).into()
        }
        [o, id] if eq(o, "operationresults") && *m == Method::GET => {
            operation_result(shared, version, &target, id).into()
        }
        [a] if (eq(a, "start") || eq(a, "stop") || eq(a, "restart")) && *m == Method::POST => {
            power(shared, &target, &a.to_ascii_lowercase()).into()
        }
        [first, ..] => {
            let parent = if target.slot == PRODUCTION {
                "sites"
            } else {
                "sites/slots"
            };
            invalid_resource_type(&format!("{parent}/{first}"), "Microsoft.Web", version).into()
        }
    }
}

fn host_ssl_states(slot: &Slot) -> Value {
    json!([
        {"name": slot.host, "sslState": "Disabled", "ipBasedSslResult": null, "virtualIP": null,
         "virtualIPv6": null, "thumbprint": null, "certificateResourceId": null, "toUpdate": null,
         "toUpdateIpBasedSsl": null, "ipBasedSslState": "NotConfigured", "hostType": "Standard"},
        {"name": slot.scm_host, "sslState": "Disabled", "ipBasedSslResult": null, "virtualIP": null,
         "virtualIPv6": null, "thumbprint": null, "certificateResourceId": null, "toUpdate": null,
         "toUpdateIpBasedSsl": null, "ipBasedSslState": "NotConfigured", "hostType": "Repository"}
    ])
}

pub(crate) fn site_json(world: &World, site: &Site, slot: &Slot) -> Value {
    let id = slot_id(world, &site.name, &slot.name);
    let (name, ty) = if slot.name == PRODUCTION {
        (site.name.clone(), "Microsoft.Web/sites")
    } else {
        (
            format!("{}/{}", site.name, slot.name),
            "Microsoft.Web/sites/slots",
        )
    };
    let state = match slot.state {
        RunState::Running => "Running",
        RunState::Stopped => "Stopped",
    };
    json!({
        "id": id,
        "name": name,
        "type": ty,
        "kind": "app,linux",
        "location": world.ids.location_display,
        "tags": world.tags.get(&id.to_ascii_lowercase()).cloned().unwrap_or_default(),
        "properties": {
            "name": name,
            "state": state,
            "hostNames": [slot.host],
            "webSpace": format!("{}-WestEuropewebspace-Linux", world.ids.resource_group),
            "selfLink": format!("https://waws-prod-am2-001.api.azurewebsites.windows.net:454/subscriptions/{}/webspaces/{}-WestEuropewebspace-Linux/sites/{}", world.ids.subscription_id, world.ids.resource_group, name),
            "repositorySiteName": site.name,
            "owner": null,
            "usageState": "Normal",
            "enabled": true,
            "adminEnabled": true,
            "enabledHostNames": [slot.host, slot.scm_host],
            "availabilityState": "Normal",
            "hostNameSslStates": host_ssl_states(slot),
            "serverFarmId": format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/{}", world.ids.subscription_id, world.ids.resource_group, world.ids.server_farm),
            "reserved": true,
            "isXenon": false,
            "hyperV": false,
            "lastModifiedTimeUtc": respond::utc_now_rfc3339(),
            "siteConfig": {"numberOfWorkers": 1, "linuxFxVersion": "", "acrUseManagedIdentityCreds": false, "alwaysOn": false, "http20Enabled": false, "functionAppScaleLimit": 0, "minimumElasticInstanceCount": 1},
            "deploymentId": site.name,
            "slotName": if slot.name == PRODUCTION { Value::Null } else { json!(slot.name) },
            "sku": "PremiumV3",
            "scmSiteAlsoStopped": false,
            "targetSwapSlot": null,
            "clientAffinityEnabled": false,
            "clientCertEnabled": false,
            "clientCertMode": "Required",
            "hostNamesDisabled": false,
            "containerSize": 0,
            "dailyMemoryTimeQuota": 0,
            "resourceGroup": world.ids.resource_group,
            "defaultHostName": slot.host,
            "slotSwapStatus": slot.slot_swap_status,
            "httpsOnly": true,
            "redundancyMode": "None",
            "inProgressOperationId": site.busy,
            "publicNetworkAccess": "Enabled",
            "storageAccountRequired": false,
            "keyVaultReferenceIdentity": "SystemAssigned",
            "autoGeneratedDomainNameLabelScope": null,
            "defaultHostNameScope": "Global"
        }
    })
}

fn with_site<T>(shared: &Shared, target: &Target, f: impl FnOnce(&mut World, &str) -> T) -> T {
    let mut world = shared.world();
    f(&mut world, &target.site)
}

fn list_sites(world: &World, req: &Req, page_size: Option<usize>) -> Outcome {
    if req.method != Method::GET {
        return method_not_emulated(req).into();
    }
    let value: Vec<Value> = world
        .sites
        .values()
        .filter_map(|s| s.slots.get(PRODUCTION).map(|p| site_json(world, s, p)))
        .collect();
    super::page(req, page_size, value).into()
}

fn list_slots(world: &World, site: &Site, req: &Req, page_size: Option<usize>) -> Outcome {
    if req.method != Method::GET {
        return method_not_emulated(req).into();
    }
    let value: Vec<Value> = site
        .slots
        .values()
        .filter(|s| s.name != PRODUCTION)
        .map(|s| site_json(world, site, s))
        .collect();
    super::page(req, page_size, value).into()
}

fn get_site(shared: &Shared, target: &Target) -> Resp {
    with_site(shared, target, |world, key| {
        let Some(site) = world.sites.get(key) else {
            return respond::empty(StatusCode::NOT_FOUND);
        };
        match site.slots.get(&target.slot) {
            Some(slot) => respond::json(StatusCode::OK, &site_json(world, site, slot)),
            None => respond::empty(StatusCode::NOT_FOUND),
        }
    })
}

fn config_json(world: &World, site: &Site, slot: &Slot) -> Value {
    let mut props = slot.config.clone();
    let rules = if slot.name == PRODUCTION {
        serde_json::to_value(&site.ramp_up_rules).unwrap_or_else(|_| json!([]))
    } else {
        json!([])
    };
    props.insert("experiments".into(), json!({"rampUpRules": rules}));
    props.insert("routingRules".into(), json!([]));
    let (name, ty) = if slot.name == PRODUCTION {
        (format!("{}/web", site.name), "Microsoft.Web/sites/config")
    } else {
        (
            format!("{}/{}/web", site.name, slot.name),
            "Microsoft.Web/sites/slots/config",
        )
    };
    json!({
        "id": format!("{}/config/web", slot_id(world, &site.name, &slot.name)),
        "name": name,
        "type": ty,
        "location": world.ids.location_display,
        "properties": props,
    })
}

fn get_config(shared: &Shared, target: &Target) -> Resp {
    with_site(shared, target, |world, key| {
        let Some(site) = world.sites.get(key) else {
            return respond::empty(StatusCode::NOT_FOUND);
        };
        match site.slots.get(&target.slot) {
            Some(slot) => respond::json(StatusCode::OK, &config_json(world, site, slot)),
            None => respond::empty(StatusCode::NOT_FOUND),
        }
    })
}

/// SiteConfig fields the sandbox accepts besides those it returns (a subset
/// of the public model; anything else is rejected, see module docs).
const EXTRA_SITE_CONFIG_FIELDS: [&str; 24] = [
    "appSettings",
    "connectionStrings",
    "metadata",
    "handlerMappings",
    "documentRoot",
    "phpVersion",
    "pythonVersion",
    "nodeVersion",
    "powerShellVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
    "windowsFxVersion",
    "appCommandLine",
    "healthCheckPath",
    "ipSecurityRestrictions",
    "scmIpSecurityRestrictions",
    "virtualApplications",
    "autoHealRules",
    "websiteTimeZone",
    "keyVaultReferenceIdentity",
    "elasticWebAppScaleLimit",
    "functionAppScaleLimit",
    "limits",
];

const RULE_FIELDS: [&str; 8] = [
    "actionHostName",
    "reroutePercentage",
    "changeStep",
    "changeIntervalInMinutes",
    "minReroutePercentage",
    "maxReroutePercentage",
    "changeDecisionCallbackUrl",
    "name",
];

fn same_json_type(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Null, _)
            | (_, Value::Null)
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Object(_), Value::Object(_))
    )
}

/// Validates `experiments.rampUpRules` (reference §3.2–3.3); returns the
/// rules or the App Service 400.
fn parse_rules(site: &Site, slot: &str, value: &Value) -> Result<Vec<RampUpRule>, Resp> {
    let Value::Array(items) = value else {
        return Err(bad_request(
            "The parameter properties.experiments.rampUpRules has an invalid value.",
        ));
    };
    if slot != PRODUCTION && !items.is_empty() {
        // (guessed) wording; routing rules exist only on production since 2019.
        return Err(bad_request(
            "Traffic routing rules can only be configured on the production slot.",
        ));
    }
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = |f: &str| format!("properties.experiments.rampUpRules[{i}].{f}");
        let invalid =
            |f: &str| bad_request(format!("The parameter {} has an invalid value.", p(f)));
        let Value::Object(obj) = item else {
            return Err(bad_request(format!(
                "The parameter properties.experiments.rampUpRules[{i}] has an invalid value."
            )));
        };
        if let Some(unknown) = obj.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
            return Err(bad_request(format!(
                "The parameter {} is not a member of RampUpRule.",
                p(unknown)
            )));
        }
        let opt_num = |f: &str| -> Result<Option<f64>, Resp> {
            match obj.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| invalid(f)),
                Some(_) => Err(invalid(f)),
            }
        };
        let action_host_name = match obj.get("actionHostName") {
            Some(Value::String(s)) if !s.is_empty() => s.to_ascii_lowercase(),
            _ => return Err(invalid("actionHostName")),
        };
        // (guessed) App Service must route to one of the site's own slots.
        let known = site
            .slots
            .values()
            .any(|s| s.name != PRODUCTION && s.host == action_host_name);
        if !known {
            return Err(bad_request(format!(
                "The parameter {} has an invalid value: '{action_host_name}' is not the host name of a deployment slot of site '{}'.",
                p("actionHostName"),
                site.name
            )));
        }
        let pct = match opt_num("reroutePercentage")? {
            Some(v) if (0.0..=100.0).contains(&v) => v,
            _ => return Err(invalid("reroutePercentage")),
        };
        let name = match obj.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(invalid("name")),
        };
        let interval = match obj.get("changeIntervalInMinutes") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_i64()
                    .ok_or_else(|| invalid("changeIntervalInMinutes"))?,
            ),
            Some(_) => return Err(invalid("changeIntervalInMinutes")),
        };
        let callback = match obj.get("changeDecisionCallbackUrl") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("changeDecisionCallbackUrl")),
        };
        for f in ["minReroutePercentage", "maxReroutePercentage"] {
            if let Some(v) = opt_num(f)?
                && !(0.0..=100.0).contains(&v)
            {
                return Err(invalid(f));
            }
        }
        rules.push(RampUpRule {
            action_host_name,
            reroute_percentage: pct,
            change_step: opt_num("changeStep")?,
            change_interval_in_minutes: interval,
            min_reroute_percentage: opt_num("minReroutePercentage")?,
            max_reroute_percentage: opt_num("maxReroutePercentage")?,
            change_decision_callback_url: callback,
            name,
        });
    }
    // (guessed) duplicate names and totals above 100 % are refused.
    let total: f64 = rules.iter().map(|r| r.reroute_percentage).sum();
    if total > 100.0 {
        return Err(bad_request(format!(
            "The total reroutePercentage of all rampUpRules must not exceed 100, got {total}."
        )));
    }
    for (i, r) in rules.iter().enumerate() {
        if rules[..i]
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&r.name))
        {
            return Err(bad_request(format!(
                "The parameter properties.experiments.rampUpRules has a duplicate rule name '{}'.",
                r.name
            )));
        }
        if r.name.eq_ignore_ascii_case("self") {
            return Err(bad_request(
                "The rule name 'self' is reserved for the production slot.",
            ));
        }
    }
    Ok(rules)
}

fn write_config(shared: &Shared, req: &Req, target: &Target, put: bool) -> Resp {
    let body = match req.json_body() {
        Ok(Some(Value::Object(b))) => b,
        Ok(_) => return bad_request("The parameter siteConfig has an invalid value."),
        Err(e) => {
            return bad_request(format!(
                "The request content was invalid and could not be deserialized: {e}"
            ));
        }
    };
    if let Some(unknown) = body.keys().find(|k| {
        ![
            "id",
            "name",
            "type",
            "kind",
            "location",
            "tags",
            "properties",
        ]
        .contains(&k.as_str())
    }) {
        return bad_request(format!(
            "The parameter {unknown} is not a member of SiteConfigResource."
        ));
    }
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => return bad_request("The parameter properties has an invalid value."),
    };
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site).or_else(|| preview_conflict(site, &target.slot)) {
        return r;
    }
    let Some(slot) = site.slots.get(&target.slot) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let mut new_config = slot.config.clone();
    let mut new_rules: Option<Vec<RampUpRule>> = None;
    for (key, value) in &props {
        match key.as_str() {
            "experiments" => match value {
                Value::Null => {}
                Value::Object(exp) => {
                    if let Some(unknown) = exp.keys().find(|k| k.as_str() != "rampUpRules") {
                        return bad_request(format!(
                            "The parameter properties.experiments.{unknown} is not a member of Experiments."
                        ));
                    }
                    if let Some(rules) = exp.get("rampUpRules") {
                        match parse_rules(site, &target.slot, rules) {
                            Ok(r) => new_rules = Some(r),
                            Err(resp) => return resp,
                        }
                    }
                }
                _ => {
                    return bad_request(
                        "The parameter properties.experiments has an invalid value.",
                    );
                }
            },
            // Legacy field the service returns; accepted and ignored.
            "routingRules" => {}
            k => {
                let known = slot.config.get(k);
                if known.is_none() && !EXTRA_SITE_CONFIG_FIELDS.contains(&k) {
                    return bad_request(format!(
                        "The parameter properties.{k} is not a member of SiteConfig."
                    ));
                }
                if let Some(current) = known
                    && !same_json_type(current, value)
                {
                    return bad_request(format!(
                        "The parameter properties.{k} has an invalid value."
                    ));
                }
                new_config.insert(k.to_owned(), value.clone());
            }
        }
    }
    // (guessed) a PUT without `experiments` resets the rules.
    if put && new_rules.is_none() && target.slot == PRODUCTION {
        new_rules = Some(Vec::new());
    }
    let Some(site) = world.sites.get_mut(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(rules) = new_rules
        && target.slot == PRODUCTION
    {
        site.ramp_up_rules = rules;
    }
    if let Some(slot) = site.slots.get_mut(&target.slot) {
        slot.config = new_config;
    }
    let (Some(site), w) = (world.sites.get(&target.site), &*world) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    match site.slots.get(&target.slot) {
        Some(slot) => respond::json(StatusCode::OK, &config_json(w, site, slot)),
        None => respond::empty(StatusCode::NOT_FOUND),
    }
}

fn list_app_settings(shared: &Shared, target: &Target) -> Resp {
    with_site(shared, target, |world, key| {
        let Some(slot) = world.sites.get(key).and_then(|s| s.slots.get(&target.slot)) else {
            return respond::empty(StatusCode::NOT_FOUND);
        };
        respond::json(
            StatusCode::OK,
            &json!({
                "id": format!("{}/config/appsettings", target.resource_id),
                "name": "appsettings",
                "type": "Microsoft.Web/sites/config",
                "location": world.ids.location_display,
                "properties": slot.content.app_settings,
            }),
        )
    })
}

fn put_app_settings(shared: &Shared, req: &Req, target: &Target) -> Resp {
    let props = match req.json_body() {
        Ok(Some(Value::Object(b))) => match b.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            _ => return bad_request("The parameter properties has an invalid value."),
        },
        _ => return bad_request("The parameter properties has an invalid value."),
    };
    let mut settings = BTreeMap::new();
    for (k, v) in props {
        match v {
            Value::String(s) => {
                settings.insert(k, s);
            }
            _ => {
                return bad_request(format!(
                    "The parameter properties.{k} has an invalid value."
                ));
            }
        }
    }
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site).or_else(|| preview_conflict(site, &target.slot)) {
        return r;
    }
    let now = Instant::now();
    if let Some(slot) = world
        .sites
        .get_mut(&target.site)
        .and_then(|s| s.slots.get_mut(&target.slot))
    {
        slot.content.app_settings = settings.clone();
        // Changing app settings restarts the app, as on App Service.
        slot.process.restart(now);
    }
    respond::json(
        StatusCode::OK,
        &json!({
            "id": format!("{}/config/appsettings", target.resource_id),
            "name": "appsettings",
            "type": "Microsoft.Web/sites/config",
            "location": world.ids.location_display,
            "properties": settings,
        }),
    )
}

fn slot_config_names_json(world: &World, site: &Site) -> Value {
    json!({
        "id": format!("{}/config/slotConfigNames", site_id(world, &site.name)),
        "name": "slotConfigNames",
        "type": "Microsoft.Web/sites/config",
        "location": world.ids.location_display,
        "properties": site.slot_config_names,
    })
}

fn get_slot_config_names(shared: &Shared, target: &Target) -> Resp {
    with_site(shared, target, |world, key| match world.sites.get(key) {
        Some(site) => respond::json(StatusCode::OK, &slot_config_names_json(world, site)),
        None => respond::empty(StatusCode::NOT_FOUND),
    })
}

fn put_slot_config_names(shared: &Shared, req: &Req, target: &Target) -> Resp {
    let props = match req.json_body() {
        Ok(Some(Value::Object(b))) => match b.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            _ => return bad_request("The parameter properties has an invalid value."),
        },
        _ => return bad_request("The parameter properties has an invalid value."),
    };
    let list = |name: &str| -> Result<Vec<String>, Resp> {
        match props.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    bad_request(format!(
                        "The parameter properties.{name} has an invalid value."
                    ))
                }),
            Some(_) => Err(bad_request(format!(
                "The parameter properties.{name} has an invalid value."
            ))),
        }
    };
    const FIELDS: [&str; 3] = [
        "appSettingNames",
        "connectionStringNames",
        "azureStorageConfigNames",
    ];
    if let Some(unknown) = props.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return bad_request(format!(
            "The parameter properties.{unknown} is not a member of SlotConfigNames."
        ));
    }
    let (apps, conns, storage) = match (list(FIELDS[0]), list(FIELDS[1]), list(FIELDS[2])) {
        (Ok(a), Ok(c), Ok(s)) => (a, c, s),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site) {
        return r;
    }
    let Some(site) = world.sites.get_mut(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    site.slot_config_names.app_setting_names = apps;
    site.slot_config_names.connection_string_names = conns;
    site.slot_config_names.azure_storage_config_names = storage;
    match world.sites.get(&target.site) {
        Some(site) => respond::json(StatusCode::OK, &slot_config_names_json(world, site)),
        None => respond::empty(StatusCode::NOT_FOUND),
    }
}

/// Parses `CsmSlotEntity` `{targetSlot, preserveVnet}`.
fn parse_slot_entity(req: &Req) -> Result<String, Resp> {
    let body = match req.json_body() {
        Ok(Some(Value::Object(b))) => b,
        Ok(None) => {
            return Err(bad_request(
                "The parameter slotSwapEntity has an invalid value: a CsmSlotEntity body {\"targetSlot\",\"preserveVnet\"} is required.",
            ));
        }
        Ok(Some(_)) => {
            return Err(bad_request(
                "The parameter slotSwapEntity has an invalid value.",
            ));
        }
        Err(e) => {
            return Err(bad_request(format!(
                "The request content was invalid and could not be deserialized: {e}"
            )));
        }
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["targetSlot", "preserveVnet"].contains(&k.as_str()))
    {
        return Err(bad_request(format!(
            "The parameter {unknown} is not a member of CsmSlotEntity."
        )));
    }
    let target = match body.get("targetSlot") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.to_ascii_lowercase(),
        Some(_) => {
            return Err(bad_request(
                "The parameter targetSlot has an invalid value.",
            ));
        }
        None => return Err(bad_request("The parameter targetSlot is required.")),
    };
    // (guessed) required like the model says; the SDKs always send it.
    match body.get("preserveVnet") {
        Some(Value::Bool(_)) => {}
        Some(_) => {
            return Err(bad_request(
                "The parameter preserveVnet has an invalid value.",
            ));
        }
        None => return Err(bad_request("The parameter preserveVnet is required.")),
    }
    Ok(target)
}

/// Checks that source and target are distinct, existing, running slots.
fn check_pair(site: &Site, source: &str, target: &str) -> Result<(), Resp> {
    if source == target {
        return Err(bad_request(format!(
            "Cannot swap slot '{source}' with itself. The source and target slots must be different."
        )));
    }
    if !site.slots.contains_key(target) {
        return Err(bad_request(format!(
            "The target slot '{target}' does not exist for site '{}'.",
            site.name
        )));
    }
    for s in [source, target] {
        if site
            .slots
            .get(s)
            .is_some_and(|slot| slot.state == RunState::Stopped)
        {
            // (guessed) wording and status; swapping a stopped slot fails at once.
            return Err(bad_request(format!(
                "Cannot swap slots for site '{}' because the '{s}' slot is stopped. Start the slot and try again.",
                site.name
            )));
        }
    }
    Ok(())
}

async fn swap(shared: &Shared, req: &Req, version: &str, target: &Target) -> Outcome {
    let to = match parse_slot_entity(req) {
        Ok(t) => t,
        Err(r) => return r.into(),
    };
    let fault = shared.faults().take(
        &req.host,
        req.method.as_str(),
        &req.path,
        true,
        Instant::now(),
    );
    let location = {
        let mut world = shared.world();
        let world = &mut *world;
        let Some(site) = world.sites.get(&target.site) else {
            return respond::empty(StatusCode::NOT_FOUND).into();
        };
        if let Some(r) = busy_conflict(world, site) {
            return r.into();
        }
        if let Some(p) = &site.preview
            && !(p.source == target.slot && p.target == to)
        {
            return respond::web_error(
                StatusCode::CONFLICT,
                "Conflict",
                "The slot cannot be changed because its configuration settings have been prepared for swap.",
                "04162",
            )
            .into();
        }
        if let Err(r) = check_pair(site, &target.slot, &to) {
            return r.into();
        }
        let id = uuid::Uuid::new_v4().to_string();
        let op = SwapOperation {
            id: id.clone(),
            site: target.site.clone(),
            source: target.slot.clone(),
            target: to.clone(),
            started_utc: chrono::Utc::now(),
            completes_at: Instant::now() + world.timing.swap_duration,
            status: OpStatus::Running,
            fail_warmup: matches!(fault, Some(FaultKind::SwapWarmupFailure)),
        };
        world.prune_operations();
        world.operations.insert(id.clone(), op);
        if let Some(site) = world.sites.get_mut(&target.site) {
            site.busy = Some(id.clone());
        }
        format!(
            "{}{}/operationresults/{}?api-version={}",
            shared.arm_base, target.resource_id, id, version
        )
    };
    if let Some(FaultKind::SwapTimeout { hold_ms }) = fault {
        // The swap runs; the caller never hears back.
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        return Outcome::Drop;
    }
    let retry_after = shared.world().timing.retry_after_secs;
    let mut r = respond::empty(StatusCode::ACCEPTED);
    respond::set_header(&mut r, "location", &location);
    respond::set_header(&mut r, "retry-after", &retry_after.to_string());
    r.into()
}

fn operation_result(shared: &Shared, version: &str, target: &Target, id: &str) -> Resp {
    let world = shared.world();
    let Some(op) = world.operations.get(id).filter(|op| op.site == target.site) else {
        return respond::web_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation '{id}' was not found."),
            "51004",
        );
    };
    match &op.status {
        OpStatus::Running => {
            let mut r = respond::empty(StatusCode::ACCEPTED);
            let location = format!(
                "{}{}/operationresults/{}?api-version={}",
                shared.arm_base, target.resource_id, id, version
            );
            respond::set_header(&mut r, "location", &location);
            respond::set_header(
                &mut r,
                "retry-after",
                &world.timing.retry_after_secs.to_string(),
            );
            r
        }
        OpStatus::Succeeded => respond::empty(StatusCode::OK),
        OpStatus::Failed {
            http_status,
            code,
            message,
        } => respond::web_error(
            StatusCode::from_u16(*http_status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message.clone(),
            "04111",
        ),
    }
}

fn apply_slot_config(shared: &Shared, req: &Req, target: &Target) -> Resp {
    let to = match parse_slot_entity(req) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut world = shared.world();
    let world = &mut *world;
    let now = Instant::now();
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site) {
        return r;
    }
    if let Some(p) = &site.preview {
        if p.source == target.slot && p.target == to {
            return respond::empty(StatusCode::OK);
        }
        return respond::web_error(
            StatusCode::CONFLICT,
            "Conflict",
            "The slot cannot be changed because its configuration settings have been prepared for swap.",
            "04162",
        );
    }
    if let Err(r) = check_pair(site, &target.slot, &to) {
        return r;
    }
    let sticky = site.slot_config_names.app_setting_names.clone();
    let target_values: BTreeMap<String, Option<String>> = sticky
        .iter()
        .map(|n| {
            let v = site
                .slots
                .get(&to)
                .and_then(|s| s.content.app_settings.get(n).cloned());
            (n.clone(), v)
        })
        .collect();
    let Some(site) = world.sites.get_mut(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(source) = site.slots.get_mut(&target.slot) {
        source.preview_saved_settings = Some(source.content.app_settings.clone());
        for (name, value) in target_values {
            match value {
                Some(v) => source.content.app_settings.insert(name, v),
                None => source.content.app_settings.remove(&name),
            };
        }
        source.process.restart(now);
    }
    site.preview = Some(crate::world::Preview {
        source: target.slot.clone(),
        target: to,
    });
    respond::empty(StatusCode::OK)
}

fn reset_slot_config(shared: &Shared, target: &Target) -> Resp {
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site) {
        return r;
    }
    let Some(site) = world.sites.get_mut(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    // Only the slot phase 1 modified is reset (guessed: resetting the
    // target leaves the preview pending, per the operation's description).
    if site
        .preview
        .as_ref()
        .is_some_and(|p| p.source == target.slot)
    {
        site.preview = None;
        if let Some(slot) = site.slots.get_mut(&target.slot)
            && let Some(saved) = slot.preview_saved_settings.take()
        {
            slot.content.app_settings = saved;
            slot.process.restart(Instant::now());
        }
    }
    respond::empty(StatusCode::OK)
}

fn power(shared: &Shared, target: &Target, action: &str) -> Resp {
    let mut world = shared.world();
    let world = &mut *world;
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if let Some(r) = busy_conflict(world, site) {
        return r;
    }
    let now = Instant::now();
    if let Some(slot) = world
        .sites
        .get_mut(&target.site)
        .and_then(|s| s.slots.get_mut(&target.slot))
    {
        match action {
            "stop" => slot.state = RunState::Stopped,
            "start" => {
                if slot.state == RunState::Stopped {
                    slot.process.restart(now);
                }
                slot.state = RunState::Running;
            }
            _ => slot.process.restart(now),
        }
    }
    respond::empty(StatusCode::OK)
}

/// Escapes a value for an XML attribute.
fn xml_attr(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The publishing password of a site or slot: random per sandbox start,
/// stable within it (as App Service keeps one until it is reset). Basic
/// authentication is off on the scenario's sites
/// (`basicPublishingCredentialsPolicies/scm`), so it opens nothing.
fn publishing_password(site: &str, slot: &str) -> String {
    use std::hash::{Hash, Hasher};
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let salt = SALT.get_or_init(|| uuid::Uuid::new_v4().simple().to_string());
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(60);
    let mut round = 0u64;
    while out.len() < 60 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, site, slot, round).hash(&mut h);
        let mut n = h.finish();
        for _ in 0..10 {
            let i = usize::try_from(n % 62).unwrap_or(0);
            out.push(char::from(ALPHABET[i]));
            n /= 62;
        }
        round += 1;
    }
    out.truncate(60);
    out
}

/// `POST sites/{app}[/slots/{slot}]/publishxml` with a
/// `CsmPublishingProfileOptions` body: the publish profile as App Service
/// writes it (`application/xml`, `<publishData>` with the Web Deploy, FTP
/// and Zip Deploy profiles; `includeDisasterRecoveryEndpoints` adds the
/// read-only FTP one). Only the `WebDeploy` format is emulated.
fn publish_xml(shared: &Shared, req: &Req, target: &Target) -> Resp {
    let body = match req.json_body() {
        Ok(Some(Value::Object(b))) => b,
        Ok(None) => serde_json::Map::new(),
        Ok(Some(_)) | Err(_) => {
            return bad_request("The parameter publishingProfileOptions has an invalid value.");
        }
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["format", "includeDisasterRecoveryEndpoints"].contains(&k.as_str()))
    {
        return bad_request(format!(
            "The parameter {unknown} is not a member of CsmPublishingProfileOptions."
        ));
    }
    match body.get("format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f.eq_ignore_ascii_case("WebDeploy") => {}
        Some(Value::String(f))
            if ["FileZilla3", "Ftp"]
                .iter()
                .any(|x| x.eq_ignore_ascii_case(f)) =>
        {
            return bad_request(format!(
                "The sandbox emulates only the WebDeploy publishing profile format, not '{f}'."
            ));
        }
        Some(_) => return bad_request("The parameter format has an invalid value."),
    }
    let disaster_recovery = match body.get("includeDisasterRecoveryEndpoints") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return bad_request(
                "The parameter includeDisasterRecoveryEndpoints has an invalid value.",
            );
        }
    };
    let world = shared.world();
    let Some(site) = world.sites.get(&target.site) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let Some(slot) = site.slots.get(&target.slot) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let (profile, system) = if slot.name == PRODUCTION {
        (site.name.clone(), site.name.clone())
    } else {
        (
            format!("{}-{}", site.name, slot.name),
            format!("{}__{}", site.name, slot.name),
        )
    };
    let password = publishing_password(&site.name, &slot.name);
    let user = format!("${system}");
    let ftp_user = format!("{system}\\{user}");
    let app_url = format!("http://{}", slot.host);
    let scm = format!("{}:443", slot.scm_host);
    // The attributes every profile ends with, and its (empty) databases.
    let tail = format!(
        "destinationAppUrl=\"{}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"https://portal.azure.test\" webSystem=\"WebSites\"><databases /></publishProfile>",
        xml_attr(&app_url)
    );
    let mut xml = String::from("<publishData>");
    xml.push_str(&format!(
        "<publishProfile profileName=\"{} - Web Deploy\" publishMethod=\"MSDeploy\" publishUrl=\"{}\" msdeploySite=\"{}\" userName=\"{}\" userPWD=\"{password}\" {}",
        xml_attr(&profile),
        xml_attr(&scm),
        xml_attr(&system),
        xml_attr(&user),
        tail
    ));
    let ftp = |name: &str, host: &str| {
        format!(
            "<publishProfile profileName=\"{} - {name}\" publishMethod=\"FTP\" publishUrl=\"ftps://{host}.ftp.azurewebsites.test/site/wwwroot\" ftpPassiveMode=\"True\" userName=\"{}\" userPWD=\"{password}\" {}",
            xml_attr(&profile),
            xml_attr(&ftp_user),
            tail
        )
    };
    xml.push_str(&ftp("FTP", "waws-prod-am2-001"));
    xml.push_str(&format!(
        "<publishProfile profileName=\"{} - Zip Deploy\" publishMethod=\"ZipDeploy\" publishUrl=\"{}\" userName=\"{}\" userPWD=\"{password}\" {}",
        xml_attr(&profile),
        xml_attr(&scm),
        xml_attr(&user),
        tail
    ));
    if disaster_recovery {
        xml.push_str(&ftp("ReadOnly - FTP", "waws-prod-am2-001dr"));
    }
    xml.push_str("</publishData>");
    respond::build(
        StatusCode::OK,
        Some("application/xml"),
        bytes::Bytes::from(xml),
    )
}
