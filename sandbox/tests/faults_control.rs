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
async fn an_answer_lost_after_the_change_still_changed_it() {
    let env = start().await;
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::AnswerLost)
                .host("management.azure.test")
                .times(1),
        )
        .unwrap();
    let result = env
        .client
        .post(env.arm("/slots/staging/slotsswap"))
        .bearer_auth(&env.token)
        .json(&json!({"targetSlot": "production", "preserveVnet": true}))
        .send()
        .await;
    assert!(result.is_err(), "the answer was lost: {result:?}");
    // The swap was accepted all the same: the state shows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, site) = env.get(&env.arm("")).await;
        if site["properties"]["slotSwapStatus"]["sourceSlotName"] == "staging" {
            break;
        }
        assert!(Instant::now() < deadline, "the swap never happened: {site}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = env.sb.request_log();
    assert!(
        log.iter()
            .any(|r| r.target.starts_with("fault:answer_lost") && r.status == 0),
        "{log:#?}"
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

#[tokio::test]
async fn request_log_records_the_user_agent() {
    let env = start().await;
    let r = env
        .client
        .get(env.arm(""))
        .bearer_auth(&env.token)
        .header("user-agent", "expedite/9.9.9 (sandbox test)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let since = env.sb.last_seq();
    let r = env
        .client
        .get("https://app-contoso-payments.azurewebsites.test/api/version")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let log = env.sb.request_log();
    let arm = log
        .iter()
        .rev()
        .find(|r| r.host == "management.azure.test")
        .unwrap();
    assert_eq!(
        arm.user_agent.as_deref(),
        Some("expedite/9.9.9 (sandbox test)")
    );
    // reqwest sends no User-Agent unless told to.
    let app = env.sb.request_log_since(since);
    assert_eq!(app.len(), 1, "{app:?}");
    assert_eq!(app[0].user_agent, None);

    // The control API's log carries it too.
    let body: Value = env
        .client
        .get(env.control("/_sandbox/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests = body["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r["user_agent"] == "expedite/9.9.9 (sandbox test)"),
        "{body}"
    );
    assert!(requests.iter().any(|r| r["user_agent"].is_null()));

    // Records written before the field existed still parse.
    let old: expedite_sandbox::RequestRecord = serde_json::from_value(json!({
        "seq": 1, "ms": 2, "host": "management.azure.test", "method": "GET",
        "path": "/", "status": 200, "client_request_id": null, "target": "arm"
    }))
    .unwrap();
    assert_eq!(old.user_agent, None);
}

/// User + system CPU time of this process in clock ticks (Linux only).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Reads a whole body chunk by chunk, counting bytes (bounded by `limit`).
async fn count_body(mut r: reqwest::Response, limit: u64) -> (u64, Vec<u8>) {
    let (mut n, mut head) = (0u64, Vec::new());
    while let Some(c) = r.chunk().await.unwrap() {
        n += c.len() as u64;
        if head.len() < 64 {
            head.extend_from_slice(&c[..c.len().min(64 - head.len())]);
        }
        assert!(n <= limit, "body longer than {limit}");
    }
    (n, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_streamed_on_every_host() {
    let env = start().await;
    let s = &env.settings;
    let ca_host = env
        .sb
        .hosts()
        .into_iter()
        .find(|h| h.ends_with(".azurecontainerapps.test"))
        .unwrap();
    let token_url = format!("{}/{}/oauth2/v2.0/token", s.authority_host, s.tenant_id);
    let form = [
        ("client_id", s.client_id.as_str()),
        ("client_secret", s.client_secret.as_str()),
        ("grant_type", "client_credentials"),
        ("scope", "https://management.azure.com/.default"),
    ];
    let targets: Vec<(&str, String)> = vec![
        ("management.azure.test", env.arm("")),
        ("login.azure.test", token_url.clone()),
        (
            "app-contoso-payments.azurewebsites.test",
            "https://app-contoso-payments.azurewebsites.test/health".into(),
        ),
        (
            "app-contoso-payments-staging.azurewebsites.test",
            "https://app-contoso-payments-staging.azurewebsites.test/api/version".into(),
        ),
        (ca_host.as_str(), format!("https://{ca_host}/api/version")),
        (
            "api.github.test",
            "https://api.github.test/repos/contoso/payments".into(),
        ),
    ];
    for (i, (host, url)) in targets.iter().enumerate() {
        for chunked in [false, true] {
            let bytes = 300_007 + i as u64 * 1000 + u64::from(chunked);
            let kind = if chunked {
                FaultKind::HugeBodyChunked { bytes }
            } else {
                FaultKind::HugeBody { bytes }
            };
            env.sb
                .add_fault(FaultSpec::new(kind).host(*host).times(1))
                .unwrap();
            let rb = if *host == "login.azure.test" {
                env.client.post(url).form(&form)
            } else {
                env.client.get(url).bearer_auth(&env.token)
            };
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 200, "{host}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{host}"
            );
            if chunked {
                assert!(r.headers().get("content-length").is_none(), "{host}");
                assert_eq!(r.headers()["transfer-encoding"], "chunked", "{host}");
            } else {
                assert_eq!(r.content_length(), Some(bytes), "{host}");
            }
            let (n, head) = count_body(r, bytes).await;
            assert_eq!(n, bytes, "{host} chunked={chunked}");
            assert!(head.starts_with(b"{\"padding\":\"xxx"), "{host}");
        }
    }
    let log = env.sb.request_log();
    assert_eq!(
        log.iter().filter(|r| r.target == "fault:huge_body").count(),
        targets.len()
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.target == "fault:huge_body_chunked" && r.status == 200)
            .count(),
        targets.len()
    );
    // Rules retired, the hosts answer normally again.
    assert!(env.sb.faults().is_empty());
    assert_eq!(env.get(&env.arm("")).await.0, 200);
    assert!(!env.version_at(&ca_host).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_client_that_hangs_up_early_leaves_the_sandbox_healthy() {
    let env = start().await;
    let app = "https://app-contoso-payments.azurewebsites.test";
    for kind in [
        FaultKind::HugeBody {
            bytes: expedite_sandbox::faults::MAX_HUGE_BODY,
        },
        FaultKind::HugeBodyChunked {
            bytes: expedite_sandbox::faults::MAX_HUGE_BODY,
        },
    ] {
        env.sb
            .add_fault(
                FaultSpec::new(kind)
                    .host("app-contoso-payments.azurewebsites.test")
                    .path_prefix("/api/version")
                    .times(1),
            )
            .unwrap();
        let mut r = env
            .client
            .get(format!("{app}/api/version"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut read = 0usize;
        while read < 1024 * 1024 {
            read += r.chunk().await.unwrap().unwrap().len();
        }
        // Hang up with ~8 GiB unread.
        drop(r);
    }
    // Nothing keeps generating (and encrypting) the rest: this process,
    // sandbox included, stays nearly idle for a while.
    if let Some(before) = cpu_ticks() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = cpu_ticks().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = cpu_ticks().unwrap() - t0;
        // Clock ticks are 1/100 s: an 8 GiB TLS stream would burn ~100.
        assert!(
            used < 40,
            "{used} ticks of CPU in 1 s after hanging up ({before})"
        );
    }
    // The sandbox keeps answering promptly, on every connection.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            env.version_at("app-contoso-payments.azurewebsites.test")
                .await,
            "2.4.0"
        );
    }
    assert_eq!(env.get(&env.arm("")).await.0, 200);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(env.sb.faults().is_empty());
}

#[tokio::test]
async fn huge_body_is_bounded_and_added_over_the_control_api() {
    let env = start().await;
    let too_big = expedite_sandbox::faults::MAX_HUGE_BODY + 1;
    assert!(
        env.sb
            .add_fault(FaultSpec::new(FaultKind::HugeBody { bytes: too_big }))
            .is_err()
    );
    let r = env
        .client
        .post(env.control("/_sandbox/faults"))
        .json(&json!({"kind": "huge_body_chunked", "bytes": too_big}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env
        .client
        .post(env.control("/_sandbox/faults"))
        .json(&json!({"kind": "huge_body", "bytes": 20, "host": "*.azurewebsites.test", "path_prefix": "/health", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = env
        .client
        .get("https://app-contoso-payments.azurewebsites.test/health")
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_length(), Some(20));
    assert_eq!(r.text().await.unwrap(), r#"{"padding":"xxxxxx"}"#);
    // Through the control listener's forward proxy too.
    env.sb
        .add_fault(
            FaultSpec::new(FaultKind::HugeBodyChunked { bytes: 70_000 })
                .host("app-contoso-payments.azurewebsites.test")
                .times(1),
        )
        .unwrap();
    let proxied = reqwest::Client::builder()
        .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
        .proxy(reqwest::Proxy::http(&env.settings.control_url).unwrap())
        .build()
        .unwrap();
    let r = proxied
        .get("http://app-contoso-payments.azurewebsites.test/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 70_000);
}
