//! Fault injection (every kind) and the control API.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use expedite_sandbox::{FaultKind, FaultSpec};
use serde_json::{Value, json};

#[tokio::test]
async fn throttle_then_recover() {
    let env = start().await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Throttle {
                retry_after_secs: 7,
            })
            .host("management.azure.test")
            .times(2),
        )
        .unwrap();
    for _ in 0..2 {
        let r = env
            .client
            .get(env.arm(""))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    let (status, _) = env.get(&env.arm("")).await;
    assert_eq!(status, 200);
    assert!(env.sb.faults().is_empty(), "retired after two");
    let log = env.sb.request_log();
    assert_eq!(
        log.iter().filter(|r| r.target == "fault:throttle").count(),
        2
    );
}

#[tokio::test]
async fn arm_throttles_reads_per_token_bucket() {
    let env = start_with(expedite_sandbox::SandboxConfig {
        arm_limits: expedite_sandbox::ArmLimits {
            read_capacity: 3,
            read_refill_per_sec: 0.5,
            ..Default::default()
        },
        ..fast_config()
    })
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = env
            .client
            .get(env.arm(""))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        remaining.push(
            r.headers()["x-ms-ratelimit-remaining-subscription-reads"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = env
        .client
        .get(env.arm(""))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'read' requests")
    );
    // Writes have their own budget.
    let (status, _) = env.post_empty(&env.arm("/restart")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn server_errors_delay_and_dropped_connections() {
    let env = start().await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Status { status: 503 })
                .method("GET")
                .path_prefix("/subscriptions")
                .times(1),
        )
        .unwrap();
    let (status, body) = env.get(&env.arm("")).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "ServiceUnavailable");

    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Delay { ms: 400 })
                .host("*.azurewebsites.test")
                .path_prefix("/api/version")
                .times(1),
        )
        .unwrap();
    let t = Instant::now();
    assert_eq!(
        env.version_at("app-contoso-payments.azurewebsites.test")
            .await,
        "2.4.0"
    );
    assert!(t.elapsed() >= Duration::from_millis(400));

    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::DropConnection)
                .host("app-contoso-payments.azurewebsites.test")
                .times(1),
        )
        .unwrap();
    let err = env
        .client
        .get("https://app-contoso-payments.azurewebsites.test/health")
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err}");
    let last = env.sb.request_log().pop().unwrap();
    assert_eq!(
        (last.status, last.target.as_str()),
        (0, "fault:drop_connection")
    );

    assert!(
        env.sb
            .add_fault(FaultSpec::new(FaultKind::Status { status: 404 }))
            .is_err()
    );
    assert!(
        env.sb
            .add_fault(FaultSpec::new(FaultKind::Delay { ms: 3_600_000 }))
            .is_err(),
        "held requests must end"
    );
}

#[tokio::test]
async fn swap_warmup_failure_ends_the_operation_in_400_and_changes_nothing() {
    let env = start().await;
    env.sb
        .add_fault(FaultSpec::new(FaultKind::SwapWarmupFailure).times(1))
        .unwrap();
    let location = env.begin_swap().await;
    let (status, body) = env.await_operation(&location).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("application initialization")
    );
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.4.0")
    );
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "staging").as_deref(),
        Some("2.3.1")
    );
    let (_, site) = env.get(&env.arm("")).await;
    assert!(site["properties"]["slotSwapStatus"].is_null());
    // The lock is released: the next swap works.
    let location = env.begin_swap().await;
    assert_eq!(env.await_operation(&location).await.0, 200);
    assert_eq!(
        env.sb.slot_version(PAYMENTS, "production").as_deref(),
        Some("2.3.1")
    );
}

#[tokio::test]
async fn swap_that_times_out_for_the_caller_still_completes() {
    let env = start().await;
    env.sb
        .add_fault(FaultSpec::new(FaultKind::SwapTimeout { hold_ms: 1_500 }).times(1))
        .unwrap();
    let result = env
        .client
        .post(env.arm("/slots/staging/slotsswap"))
        .bearer_auth(&env.token)
        .timeout(Duration::from_millis(700))
        .json(&json!({"targetSlot": "production", "preserveVnet": true}))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // The state, read before any retry, shows the swap happened.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, site) = env.get(&env.arm("")).await;
    assert_eq!(
        site["properties"]["slotSwapStatus"]["sourceSlotName"],
        "staging"
    );
    assert_eq!(
        env.version_at("app-contoso-payments.azurewebsites.test")
            .await,
        "2.3.1"
    );
}

#[tokio::test]
async fn token_endpoint_down_kudu_busy_and_flapping_health() {
    let env = start().await;
    env.sb
        .add_fault(FaultSpec::new(FaultKind::TokenEndpointDown).times(1))
        .unwrap();
    let r = env
        .client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            env.settings.authority_host, env.settings.tenant_id
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    secret_token(&env.client, &env.settings).await;

    env.sb
        .add_fault(FaultSpec::new(FaultKind::KuduBusy).times(1))
        .unwrap();
    let package = zip_with(&[("expedite-demo.json", r#"{"version":"2.4.1"}"#)]);
    let post = || {
        env.client
            .post(
                "https://app-contoso-payments-staging.scm.azurewebsites.test/api/publish?type=zip",
            )
            .bearer_auth(&env.token)
            .body(package.clone())
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 409);
    assert_eq!(post().await.unwrap().status(), 200);

    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::FlappingHealth)
                .host("app-contoso-payments.azurewebsites.test")
                .times(3),
        )
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..7 {
        let r = env
            .client
            .get("https://app-contoso-payments.azurewebsites.test/health")
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [500, 200, 500, 200, 500, 200, 200]);
}

async fn probabilistic_pattern(seed: u64) -> String {
    let env = start_with(expedite_sandbox::SandboxConfig {
        seed,
        ..fast_config()
    })
    .await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Status { status: 500 })
                .host("*.azurewebsites.test")
                .probability(0.5),
        )
        .unwrap();
    let mut out = String::new();
    for _ in 0..32 {
        let r = env
            .client
            .get("https://app-contoso-payments.azurewebsites.test/")
            .send()
            .await
            .unwrap();
        out.push(if r.status() == 500 { 'x' } else { '.' });
    }
    out
}

#[tokio::test]
async fn probabilistic_faults_are_deterministic_for_a_seed() {
    let a = probabilistic_pattern(7).await;
    let b = probabilistic_pattern(7).await;
    let c = probabilistic_pattern(8).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.contains('x') && a.contains('.'));
}

#[tokio::test]
async fn fault_time_window_expires() {
    let env = start().await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::Status { status: 500 })
                .host("*.azurewebsites.test")
                .for_ms(1000),
        )
        .unwrap();
    let get = || {
        env.client
            .get("https://app-contoso-payments.azurewebsites.test/health")
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 500);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get().await.unwrap().status(), 200);
}

#[tokio::test]
async fn control_api_faults_state_reset_clock() {
    let env = start().await;
    let r = env
        .client
        .post(env.control("/_sandbox/faults"))
        .json(&json!([
            {"kind": "throttle", "retry_after_secs": 2, "host": "management.azure.test", "times": 1},
            {"kind": "swap_timeout", "hold_ms": 100}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ids: Value = r.json().await.unwrap();
    assert_eq!(ids["ids"], json!([1, 2]));
    let r = env
        .client
        .post(env.control("/_sandbox/faults"))
        .json(&json!({"kind": "teleport"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let list: Value = env
        .client
        .get(env.control("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["kind"], "throttle");
    let r = env
        .client
        .delete(env.control("/_sandbox/faults/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = env
        .client
        .delete(env.control("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(env.sb.faults().is_empty());

    // Change the estate, look at it, reset it.
    let rule = json!([{"actionHostName": "app-contoso-payments-staging.azurewebsites.test", "reroutePercentage": 5, "name": "staging"}]);
    assert_eq!(env.set_rules(rule).await.0, 200);
    let state: Value = env
        .client
        .get(env.control("/_sandbox/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payments = &state["world"]["sites"][PAYMENTS];
    assert_eq!(payments["rampUpRules"][0]["reroutePercentage"], 5.0);
    assert_eq!(payments["slots"]["production"]["version"], "2.4.0");
    assert_eq!(payments["slots"]["staging"]["version"], "2.3.1");
    assert_eq!(
        state["world"]["behaviours"]["2.4.0"]["drops_orders_over"],
        10000.0
    );
    assert!(state["clock"]["uptimeMs"].is_u64());

    let r = env
        .client
        .post(env.control("/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(env.sb.routing_rules(PAYMENTS).is_empty());

    let clock: Value = env
        .client
        .get(env.control("/_sandbox/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["swapDurationMs"], 300);
    let behaviours: Value = env
        .client
        .get(env.control("/_sandbox/behaviours"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(behaviours["2.3.1"].is_object());
    let r = env
        .client
        .get(env.control("/_sandbox/requests?since=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env
        .client
        .get(env.control("/_sandbox/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
