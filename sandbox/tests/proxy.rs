//! The control listener as a forward proxy for the demo app's hosts (what a
//! real Prometheus scrapes through with `proxy_url`).
#![cfg(test)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn proxied(env: &Env) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
        .proxy(reqwest::Proxy::http(&env.settings.control_url).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn app_hosts_are_served_through_the_proxy_like_over_tls() {
    let env = start().await;
    let client = proxied(&env);
    let staging = "app-contoso-payments-staging.azurewebsites.test";
    let r = client
        .get(format!("http://{staging}/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"version":"2.3.1"}"#);
    // Production pinned to itself, with a port as Prometheus sends it.
    let r = client
        .get(format!(
            "http://{PAYMENTS}.azurewebsites.test:80/metrics?x-ms-routing-name=self"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    // The staging process counted the proxied request, as over TLS.
    let metrics = client
        .get(format!("http://{staging}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{code="200",method="GET",path="/api/version"} 1"#),
        "{metrics}"
    );
    // Container Apps hosts too.
    let r = client
        .get("http://ca-contoso-payments.happyhill-1a2b3c4d.westeurope.azurecontainerapps.test/api/version")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"version":"2.4.0"}"#);
    // Logged like HTTPS requests.
    let log = env.sb.request_log();
    assert!(
        log.iter()
            .any(|r| r.host == staging && r.path == "/api/version" && r.status == 200),
        "{log:?}"
    );
    // The control API still answers ordinary requests.
    let r = env
        .client
        .get(format!("{}/_sandbox/state", env.settings.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn other_hosts_and_tunnels_are_refused() {
    let env = start().await;
    let client = proxied(&env);
    for (url, status) in [
        ("http://example.com/", 403),
        ("http://management.azure.test/subscriptions", 403),
        (
            "http://app-contoso-payments.scm.azurewebsites.test/api/deployments",
            403,
        ),
        ("http://127.0.0.1:1/", 403),
    ] {
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{url}");
        let body = r.text().await.unwrap();
        assert!(body.contains("never connects anywhere else"), "{body}");
    }
    // CONNECT (what an https:// target through a proxy would use).
    let mut s = tokio::net::TcpStream::connect(env.sb.http_addr())
        .await
        .unwrap();
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // An https:// target in absolute form.
    let mut s = tokio::net::TcpStream::connect(env.sb.http_addr())
        .await
        .unwrap();
    s.write_all(b"GET https://app-contoso-payments.azurewebsites.test/ HTTP/1.1\r\nHost: app-contoso-payments.azurewebsites.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}
