//! `Microsoft.Resources/tags/default` at a resource's scope: the ARM Tags API
//! (`Tags_GetAtScope`, `Tags_CreateOrUpdateAtScope`, `Tags_UpdateAtScope`,
//! `Tags_DeleteAtScope`). `PATCH` takes `operation` `Merge` (add or update
//! the given tags only), `Replace` or `Delete` (remove the given names), so a
//! client can change one tag without racing anyone editing the others.
//! Tags are stored per resource id and shown on the resource's GET (web
//! sites and slots, static sites, container apps).

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::respond::{self, Req, Resp};
use crate::server::Shared;

/// api-versions of Microsoft.Resources the sandbox accepts for tags: the
/// `resources` packages of azure-rest-api-specs that have the Tags API at a
/// scope (`{scope}/providers/Microsoft.Resources/tags/default`, 2019-10-01
/// on).
pub(crate) const TAGS_API_VERSIONS: [&str; 13] = [
    "2019-10-01",
    "2020-06-01",
    "2020-08-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
];

fn bad(message: impl Into<String>) -> Resp {
    respond::arm_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", message)
}

/// Canonical (lower-case) resource id of an existing resource, or a 404.
fn existing_resource(shared: &Shared, resource: &[String]) -> Result<String, Resp> {
    let world = shared.world();
    let lower: Vec<String> = resource.iter().map(|s| s.to_ascii_lowercase()).collect();
    let exists = match lower.get(4..).unwrap_or_default() {
        [_, ns, ty, name] if ns == "microsoft.web" && ty == "sites" => {
            world.sites.keys().any(|k| k.eq_ignore_ascii_case(name))
        }
        [_, ns, ty, name, slots, slot]
            if ns == "microsoft.web" && ty == "sites" && slots == "slots" =>
        {
            world.sites.iter().any(|(k, s)| {
                k.eq_ignore_ascii_case(name)
                    && s.slots
                        .keys()
                        .any(|n| n.eq_ignore_ascii_case(slot) && n != "production")
            })
        }
        [_, ns, ty, name] if ns == "microsoft.web" && ty == "staticsites" => world
            .static_sites
            .keys()
            .any(|k| k.eq_ignore_ascii_case(name)),
        [_, ns, ty, name] if ns == "microsoft.app" && ty == "containerapps" => world
            .container_apps
            .keys()
            .any(|k| k.eq_ignore_ascii_case(name)),
        _ => false,
    };
    if !exists {
        return Err(respond::arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{}' was not found.",
                resource.get(5..).unwrap_or_default().join("/")
            ),
        ));
    }
    Ok(format!("/{}", lower.join("/")))
}

fn validate(tags: &Value) -> Result<BTreeMap<String, String>, Resp> {
    let Some(obj) = tags.as_object() else {
        return Err(bad(
            "The request content 'properties.tags' must be an object.",
        ));
    };
    if obj.len() > 50 {
        return Err(bad("The number of tags exceeds the limit of 50."));
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if k.is_empty() || k.len() > 512 || k.contains(['<', '>', '%', '&', '\\', '?', '/']) {
            return Err(respond::arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidTagNameCharacters",
                format!(
                    "The tag names '{k}' have reserved characters '<,>,%,&,\\,?,/' or control characters."
                ),
            ));
        }
        let Some(v) = v.as_str() else {
            return Err(bad(format!("The value of tag '{k}' must be a string.")));
        };
        if v.len() > 256 {
            return Err(bad(format!(
                "The tag value of '{k}' exceeds 256 characters."
            )));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

fn body(id: &str, tags: &BTreeMap<String, String>) -> Value {
    json!({"id": format!("{id}/providers/Microsoft.Resources/tags/default"), "name": "default", "type": "Microsoft.Resources/tags", "properties": {"tags": tags}})
}

/// Handles `{resource}/providers/Microsoft.Resources/tags/default`.
pub(crate) fn handle(shared: &Shared, req: &Req, version: &str, resource: &[String]) -> Resp {
    if !TAGS_API_VERSIONS.contains(&version) {
        let location = shared.world().ids.location.clone();
        return super::unsupported_api_version(version, "tags", &location, &TAGS_API_VERSIONS);
    }
    let id = match existing_resource(shared, resource) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let payload = match req.json_body() {
        Ok(v) => v,
        Err(e) => {
            return bad(format!(
                "The request content was invalid and could not be deserialized: '{e}'."
            ));
        }
    };
    let mut world = shared.world();
    let current = world.tags.get(&id).cloned().unwrap_or_default();
    let given = |p: &Option<Value>| -> Result<BTreeMap<String, String>, Resp> {
        match p.as_ref().and_then(|v| v.pointer("/properties/tags")) {
            Some(t) => validate(t),
            None => Err(bad("The request content must have 'properties.tags'.")),
        }
    };
    let updated = match req.method {
        Method::GET => return respond::json(StatusCode::OK, &body(&id, &current)),
        Method::DELETE => {
            world.tags.remove(&id);
            return respond::build(StatusCode::OK, None, Default::default());
        }
        Method::PUT => match given(&payload) {
            Ok(t) => t,
            Err(r) => return r,
        },
        Method::PATCH => {
            let tags = match given(&payload) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let op = payload
                .as_ref()
                .and_then(|p| p.get("operation"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut next = current;
            match op {
                "Merge" => next.extend(tags),
                "Replace" => next = tags,
                "Delete" => {
                    for (k, v) in &tags {
                        // Delete removes a name when the value matches or is empty.
                        if next.get(k).is_some_and(|cur| v.is_empty() || cur == v) {
                            next.remove(k);
                        }
                    }
                }
                other => {
                    return bad(format!(
                        "The operation '{other}' is not valid; use Merge, Replace or Delete."
                    ));
                }
            }
            next
        }
        _ => return super::method_not_emulated(req),
    };
    if updated.len() > 50 {
        return bad("The number of tags exceeds the limit of 50.");
    }
    world.tags.insert(id.clone(), updated.clone());
    respond::json(StatusCode::OK, &body(&id, &updated))
}
