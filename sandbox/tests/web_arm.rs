//! Microsoft.Web over ARM: sites, slots, config/web routing rules, swap,
//! swap with preview, start/stop, app settings.
#![cfg(test)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn site_and_slots_expose_host_names_from_arm() {
    let env = start().await;
    let (status, site) = env.get(&env.arm("")).await;
    assert_eq!(status, 200);
    assert_eq!(site["name"], PAYMENTS);
    assert_eq!(site["type"], "Microsoft.Web/sites");
    assert_eq!(site["properties"]["state"], "Running");
    assert_eq!(
        site["properties"]["defaultHostName"],
        "app-contoso-payments.azurewebsites.test"
    );
    let states = site["properties"]["hostNameSslStates"].as_array().unwrap();
    assert!(states.iter().any(|s| s["hostType"] == "Repository"
        && s["name"] == "app-contoso-payments.scm.azurewebsites.test"));

    let (status, slots) = env.get(&env.arm("/slots")).await;
    assert_eq!(status, 200);
    let value = slots["value"].as_array().unwrap();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["name"], "app-contoso-payments/staging");
    assert_eq!(value[0]["type"], "Microsoft.Web/sites/slots");

    let (status, slot) = env.get(&env.arm("/slots/staging")).await;
    assert_eq!(status, 200);
    assert_eq!(
        slot["properties"]["defaultHostName"],
        "app-contoso-payments-staging.azurewebsites.test"
    );
    let (status, body) = env.get(&env.arm("/slots/canary")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );

    let list_url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites?{API}",
        env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
    );
    let (_, list) = env.get(&list_url).await;
    // Payments, notifications and the web front end.
    assert_eq!(list["value"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn routing_rules_are_validated_and_replaced_whole() {
    let env = start().await;
    let (status, cfg) = env.get(&env.arm("/config/web")).await;
    assert_eq!(status, 200);
    assert_eq!(cfg["properties"]["experiments"]["rampUpRules"], json!([]));

    let rule = json!({"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 10, "name": "staging"});
    let (status, body) = env.set_rules(json!([rule])).await;
    assert_eq!(status, 200, "{body}");
    let rules = &body["properties"]["experiments"]["rampUpRules"];
    assert_eq!(rules[0]["reroutePercentage"], 10.0);
    assert_eq!(rules[0]["name"], "staging");
    assert_eq!(env.sb.routing_rules(PAYMENTS).len(), 1);

    // Invalid bodies: App Service's unwrapped PascalCase 400; nothing changes.
    for bad in [
        json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 150, "name": "staging"}]),
        json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": "10", "name": "staging"}]),
        json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 10, "name": "staging", "weight": 3}]),
        json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.net", "reroutePercentage": 10, "name": "staging"}]),
        json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": -1, "name": "staging"}]),
        json!({"staging": 10}),
    ] {
        let (status, body) = env.set_rules(bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert_eq!(body["Code"], "BadRequest", "{body}");
        assert!(body["Details"].is_array());
        assert_eq!(env.sb.routing_rules(PAYMENTS)[0].reroute_percentage, 10.0);
    }
    let (status, _) = env
        .send_json(
            Method::PATCH,
            &env.arm("/config/web"),
            &json!({"properties": {"alwaysOnn": true}}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = env
        .send_json(
            Method::PATCH,
            &env.arm("/config/web"),
            &json!({"properties": {"alwaysOn": "yes"}}),
        )
        .await;
    assert_eq!(status, 400);

    // Rules belong to production only.
    let (status, body) = env
        .send_json(
            Method::PATCH,
            &env.arm("/slots/staging/config/web"),
            &json!({"properties": {"experiments": {"rampUpRules": [rule]}}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Other config fields merge; rules untouched when `experiments` is absent.
    let (status, body) = env
        .send_json(
            Method::PATCH,
            &env.arm("/config/web"),
            &json!({"properties": {"alwaysOn": false}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["properties"]["alwaysOn"], false);
    assert_eq!(
        body["properties"]["experiments"]["rampUpRules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // PUT replaces the config: without `experiments` the rules are gone.
    assert_eq!(env.set_rules(json!([rule])).await.0, 200);
    let (status, body) = env
        .send_json(
            Method::PUT,
            &env.arm("/config/web"),
            &json!({"properties": {"alwaysOn": true}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(env.sb.routing_rules(PAYMENTS).is_empty());
    assert_eq!(env.set_rules(json!([rule])).await.0, 200);

    // An empty list clears (whole-array replacement).
    let (status, body) = env.set_rules(json!([])).await;
    assert_eq!(status, 200);
    assert_eq!(body["properties"]["experiments"]["rampUpRules"], json!([]));
    assert!(env.sb.routing_rules(PAYMENTS).is_empty());
}

#[tokio::test]
async fn swap_exchanges_code_keeps_rules_and_locks_the_site() {
    // Long enough that the in-flight checks below run while it swaps, even
    // on a loaded machine.
    let env = start_with(expedite_sandbox::SandboxConfig {
        swap_duration: std::time::Duration::from_millis(1500),
        ..fast_config()
    })
    .await;
    let rule = json!({"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 20, "name": "staging"});
    assert_eq!(env.set_rules(json!([rule])).await.0, 200);
    let (_, site) = env.get(&env.arm("")).await;
    assert!(site["properties"]["slotSwapStatus"].is_null());

    let r = env
        .client
        .post(env.arm("/slots/staging/slotsswap"))
        .bearer_auth(&env.token)
        .json(&json!({"targetSlot": "production", "preserveVnet": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["retry-after"], "1");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!(
        "https://management.azure.test{}/slots/staging/operationresults/",
        env.site_path(PAYMENTS)
    )));
    assert!(location.ends_with(API));

    // While swapping: writes get App Service's 409, reads work.
    let (status, body) = env.set_rules(json!([])).await;
    assert_eq!(status, 409);
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("another operation is in progress")
    );
    let r = env
        .client
        .post(env.arm("/slots/staging/slotsswap"))
        .bearer_auth(&env.token)
        .json(&json!({"targetSlot": "production", "preserveVnet": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (status, _) = env.post_empty(&env.arm("/restart")).await;
    assert_eq!(status, 409);
    let (status, site) = env.get(&env.arm("")).await;
    assert_eq!(status, 200);
    assert!(site["properties"]["inProgressOperationId"].is_string());

    let (status, _) = env.get(&location).await;
    assert_eq!(status, 202, "first poll is still running");
    let (status, _) = env.await_operation(&location).await;
    assert_eq!(status, 200);

    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.3.1")
    );
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "staging").as_deref(),
        Some("2.4.0")
    );
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.4.0"
    );
    // Routing rules stayed on production: 20 % now reaches the old build.
    let rules = env.sb.routing_rules(PAYMENTS);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].reroute_percentage, 20.0);

    let (_, site) = env.get(&env.arm("")).await;
    let sss = &site["properties"]["slotSwapStatus"];
    assert_eq!(sss["sourceSlotName"], "staging");
    assert_eq!(sss["destinationSlotName"], "production");
    assert!(sss["timestampUtc"].is_string());
    assert!(site["properties"]["inProgressOperationId"].is_null());

    // Non-sticky settings travel with the code, sticky ones stay.
    let (_, prod) = env.post_empty(&env.arm("/config/appsettings/list")).await;
    assert_eq!(prod["properties"]["BUILD_VERSION"], "2.3.1");
    assert_eq!(prod["properties"]["SLOT_NAME"], "production");
    let (_, staging) = env
        .post_empty(&env.arm("/slots/staging/config/appsettings/list"))
        .await;
    assert_eq!(staging["properties"]["BUILD_VERSION"], "2.4.0");
    assert_eq!(staging["properties"]["SLOT_NAME"], "staging");

    // Writes work again; the log shows exactly one accepted swap.
    assert_eq!(env.set_rules(json!([])).await.0, 200);
    let accepted = env
        .sb
        .request_log()
        .iter()
        .filter(|r| r.path.contains("/slotsswap") && r.status == 202)
        .count();
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn swap_with_production_endpoint_and_body_errors() {
    let env = start().await;
    let url = env.arm("/slotsswap");
    for (body, why) in [
        (json!({"preserveVnet": true}), "missing targetSlot"),
        (json!({"targetSlot": "staging"}), "missing preserveVnet"),
        (
            json!({"targetSlot": "staging", "preserveVnet": true, "force": true}),
            "unknown field",
        ),
        (
            json!({"targetSlot": "production", "preserveVnet": true}),
            "same slot",
        ),
        (
            json!({"targetSlot": "canary", "preserveVnet": true}),
            "no such slot",
        ),
        (json!(["staging"]), "not an object"),
    ] {
        let (status, resp) = env.send_json(Method::POST, &url, &body).await;
        assert_eq!(status, 400, "{why}: {resp}");
        assert_eq!(resp["Code"], "BadRequest", "{why}");
    }
    assert!(
        env.sb.snapshot()["swapOperations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let r = env
        .client
        .post(&url)
        .bearer_auth(&env.token)
        .json(&json!({"targetSlot": "staging", "preserveVnet": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains(&format!("{}/operationresults/", env.site_path(PAYMENTS))));
    assert!(!location.contains("/slots/"));
    assert_eq!(env.await_operation(&location).await.0, 200);
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.3.1")
    );
    let (_, site) = env.get(&env.arm("")).await;
    assert_eq!(
        site["properties"]["slotSwapStatus"]["sourceSlotName"],
        "production"
    );
    assert_eq!(
        site["properties"]["slotSwapStatus"]["destinationSlotName"],
        "staging"
    );
    // The other web app was never touched.
    assert_eq!(
        env.sb
            .slot_version("app-contoso-notifications", "production")
            .as_deref(),
        Some("2.4.0")
    );
}

#[tokio::test]
async fn swap_with_preview_locks_config_until_reset_or_completed() {
    let env = start().await;
    let entity = json!({"targetSlot": "production", "preserveVnet": true});
    let (status, _) = env
        .send_json(
            Method::POST,
            &env.arm("/slots/staging/applySlotConfig"),
            &entity,
        )
        .await;
    assert_eq!(status, 200);
    // Phase 1 applied production's sticky settings to staging.
    let (_, staging) = env
        .post_empty(&env.arm("/slots/staging/config/appsettings/list"))
        .await;
    assert_eq!(staging["properties"]["SLOT_NAME"], "production");

    for url in [env.arm("/config/web"), env.arm("/slots/staging/config/web")] {
        let (status, body) = env
            .send_json(
                Method::PATCH,
                &url,
                &json!({"properties": {"alwaysOn": true}}),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .contains("prepared for swap")
        );
    }
    // Resetting the target leaves the preview pending; the source resets it.
    assert_eq!(env.post_empty(&env.arm("/resetSlotConfig")).await.0, 200);
    assert!(!env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"].is_null());
    assert_eq!(
        env.post_empty(&env.arm("/slots/staging/resetSlotConfig"))
            .await
            .0,
        200
    );
    assert!(env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"].is_null());
    let (_, staging) = env
        .post_empty(&env.arm("/slots/staging/config/appsettings/list"))
        .await;
    assert_eq!(staging["properties"]["SLOT_NAME"], "staging");
    let (status, _) = env
        .send_json(
            Method::PATCH,
            &env.arm("/config/web"),
            &json!({"properties": {"alwaysOn": true}}),
        )
        .await;
    assert_eq!(status, 200);

    // Preview again, then complete with the swap.
    assert_eq!(
        env.send_json(
            Method::POST,
            &env.arm("/slots/staging/applySlotConfig"),
            &entity
        )
        .await
        .0,
        200
    );
    let location = env.begin_swap().await;
    assert_eq!(env.await_operation(&location).await.0, 200);
    assert!(env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"].is_null());
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.3.1")
    );
    let (_, prod) = env.post_empty(&env.arm("/config/appsettings/list")).await;
    assert_eq!(prod["properties"]["SLOT_NAME"], "production");
    let (_, staging) = env
        .post_empty(&env.arm("/slots/staging/config/appsettings/list"))
        .await;
    assert_eq!(staging["properties"]["SLOT_NAME"], "staging");
}

#[tokio::test]
async fn stopped_slot_cannot_swap_and_serves_403() {
    let env = start().await;
    assert_eq!(env.post_empty(&env.arm("/slots/staging/stop")).await.0, 200);
    let (_, slot) = env.get(&env.arm("/slots/staging")).await;
    assert_eq!(slot["properties"]["state"], "Stopped");
    let r = env
        .client
        .get("https://app-contoso-payments-staging.azurewebsites.test/health")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, body) = env
        .send_json(
            Method::POST,
            &env.arm("/slots/staging/slotsswap"),
            &json!({"targetSlot": "production", "preserveVnet": true}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["Message"].as_str().unwrap().contains("stopped"));
    assert_eq!(
        env.post_empty(&env.arm("/slots/staging/start")).await.0,
        200
    );
    let (_, slot) = env.get(&env.arm("/slots/staging")).await;
    assert_eq!(slot["properties"]["state"], "Running");
    assert_eq!(
        env.version_at("app-contoso-payments-staging.azurewebsites.test")
            .await,
        "2.3.1"
    );
    assert_eq!(
        env.post_empty(&format!("{}&softRestart=false", env.arm("/restart")))
            .await
            .0,
        200
    );
    assert_eq!(
        env.sb.snapshot()["sites"][PAYMENTS]["slots"]["production"]["processRestarts"],
        1
    );
}

#[tokio::test]
async fn app_settings_and_sticky_names_round_trip() {
    let env = start().await;
    let (status, names) = env.get(&env.arm("/config/slotConfigNames")).await;
    assert_eq!(status, 200);
    assert_eq!(
        names["properties"]["appSettingNames"],
        json!(["SLOT_NAME", "ASPNETCORE_ENVIRONMENT"])
    );
    let (status, _) = env
        .send_json(
            Method::PUT,
            &env.arm("/config/slotConfigNames"),
            &json!({"properties": {"appSettingNames": ["SLOT_NAME", "DB"]}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = env
        .send_json(
            Method::PUT,
            &env.arm("/slots/staging/config/slotConfigNames"),
            &json!({"properties": {"appSettingNames": []}}),
        )
        .await;
    assert_eq!(status, 404, "slotConfigNames exists on production only");

    let (status, body) = env
        .send_json(
            Method::PUT,
            &env.arm("/slots/staging/config/appsettings"),
            &json!({"properties": {"SLOT_NAME": "staging", "DB": "staging-db", "BUILD_VERSION": "2.3.1"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = env
        .send_json(
            Method::PUT,
            &env.arm("/slots/staging/config/appsettings"),
            &json!({"properties": {"N": 1}}),
        )
        .await;
    assert_eq!(status, 400);
    let (_, list) = env
        .post_empty(&env.arm("/slots/staging/config/appsettings/list"))
        .await;
    assert_eq!(list["properties"]["DB"], "staging-db");
    let (status, body) = env
        .get(&env.arm("/basicPublishingCredentialsPolicies/scm"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["properties"]["allow"], false);
    let _: Value = body;
}
