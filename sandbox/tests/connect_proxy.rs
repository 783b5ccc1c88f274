//! The sandbox's HTTPS proxy (`HTTPS_PROXY`, CONNECT): any client reaches
//! the emulated hosts by name with the sandbox CA — a reqwest client, and
//! curl, a client nobody here wrote, with only the printed variables — and
//! nothing else is reachable through it.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_with_https_proxy_reaches_the_sandbox_hosts_by_name() {
    let env = start().await;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
        .proxy(reqwest::Proxy::https(&env.settings.proxy_url).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // A demo app, and ARM itself with a token: both by name, through TLS
    // inside the tunnel (SNI picks the certificate as without a proxy).
    let r = client
        .get(format!("https://{PAYMENTS}.azurewebsites.test/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"version":"2.4.0"}"#);
    let r = client
        .get(format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{PAYMENTS}?{API}",
            env.settings.arm_endpoint, env.settings.subscription_id, env.settings.resource_group
        ))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Logged like any other request.
    assert!(
        env.sb
            .request_log()
            .iter()
            .any(|r| r.host == format!("{PAYMENTS}.azurewebsites.test") && r.status == 200)
    );
}

/// curl, given only the variables the sandbox prints for other clients,
/// reaches a demo app; skipped when curl is missing (unless CI requires
/// the tools).
#[tokio::test]
async fn curl_with_the_printed_variables_reaches_a_demo_app() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("EXPEDITE_REQUIRE_TOOLS").is_none(),
            "curl is required here"
        );
        eprintln!("skipped: no curl");
        return;
    }
    let env = start().await;
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .arg(format!("https://{PAYMENTS}.azurewebsites.test/api/version"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.settings.client_env())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"version":"2.4.0"}"#
    );
    // The bundle keeps the system's roots beside the sandbox CA, so the
    // variables break nothing else in that shell.
    let bundle = std::fs::read_to_string(&env.settings.ca_bundle_path).unwrap();
    assert!(
        bundle.ends_with(env.sb.ca_pem())
            || bundle.trim_end().ends_with(env.sb.ca_pem().trim_end())
    );
}

async fn raw(proxy: &str, head: &str) -> String {
    let addr = proxy.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A proxy that hangs up on an endless head may reset the connection:
    // what was read by then is the answer.
    let _ = s.write_all(head.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the proxy answers or hangs up within 10 s");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_proxy_reaches_nothing_else() {
    let env = start().await;
    let p = &env.settings.proxy_url;
    for (head, status) in [
        (
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "403",
        ),
        ("CONNECT management.azure.test:22 HTTP/1.1\r\n\r\n", "403"),
        ("CONNECT evilazure.test:443 HTTP/1.1\r\n\r\n", "403"),
        (
            "GET http://management.azure.test/ HTTP/1.1\r\nHost: management.azure.test\r\n\r\n",
            "405",
        ),
        ("hello\r\n\r\n", "400"),
    ] {
        let answer = raw(p, head).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{head:?} → {answer}"
        );
    }
    // A head that never ends is cut off at 8 KiB, not read forever.
    let long = format!("CONNECT {}", "a".repeat(20_000));
    let answer = raw(p, &long).await;
    assert_eq!(answer, "");
}
