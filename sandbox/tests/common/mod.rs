//! Shared test helpers: a sandbox with fast timings and a reqwest client
//! that trusts its CA and resolves every sandbox host to its listener.
#![cfg(test)]
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use expedite_sandbox::{Sandbox, SandboxConfig, Settings};
use serde_json::Value;

pub const API: &str = "api-version=2025-05-01";
pub const PAYMENTS: &str = "app-contoso-payments";

pub struct Env {
    pub sb: Sandbox,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub token: String,
}

pub fn fast_config() -> SandboxConfig {
    SandboxConfig {
        swap_duration: Duration::from_millis(300),
        build_duration: Duration::from_millis(300),
        seed: 42,
        ..SandboxConfig::default()
    }
}

pub fn client_for(sb: &Sandbox) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(sb.client_tls_config().unwrap())
        .timeout(Duration::from_secs(20))
        .no_proxy();
    for host in sb.hosts() {
        b = b.resolve(&host, sb.https_addr());
    }
    b.build().unwrap()
}

pub async fn start() -> Env {
    start_with(fast_config()).await
}

pub async fn start_with(config: SandboxConfig) -> Env {
    let sb = expedite_sandbox::start(config).await.unwrap();
    let client = client_for(&sb);
    let settings = sb.settings();
    let token = secret_token(&client, &settings).await;
    Env {
        sb,
        client,
        settings,
        token,
    }
}

/// Client-credentials token with the client secret, through the endpoint.
pub async fn secret_token(client: &reqwest::Client, s: &Settings) -> String {
    let resp = client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            s.authority_host, s.tenant_id
        ))
        .form(&[
            ("client_id", s.client_id.as_str()),
            ("client_secret", s.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

impl Env {
    pub fn site_path(&self, app: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{app}",
            self.settings.subscription_id, self.settings.resource_group
        )
    }

    /// ARM URL for a path below the payments site ("" = the site).
    pub fn arm(&self, below_site: &str) -> String {
        format!(
            "{}{}{}?{API}",
            self.settings.arm_endpoint,
            self.site_path(PAYMENTS),
            below_site
        )
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let r = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST with an explicit empty body (`Content-Length: 0`).
    pub async fn post_empty(&self, url: &str) -> (u16, Value) {
        let r = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .header("content-length", "0")
            .body(Vec::<u8>::new())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn set_rules(&self, rules: Value) -> (u16, Value) {
        self.send_json(
            reqwest::Method::PATCH,
            &self.arm("/config/web"),
            &serde_json::json!({"properties": {"experiments": {"rampUpRules": rules}}}),
        )
        .await
    }

    /// Starts staging→production and returns the Location to poll.
    pub async fn begin_swap(&self) -> String {
        let r = self
            .client
            .post(self.arm("/slots/staging/slotsswap"))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"targetSlot": "production", "preserveVnet": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Polls an operationresults URL until it stops answering 202 (bounded).
    pub async fn await_operation(&self, location: &str) -> (u16, Value) {
        for _ in 0..100 {
            let (status, body) = self.get(location).await;
            if status != 202 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation did not finish");
    }

    pub async fn version_at(&self, host: &str) -> String {
        let body: Value = self
            .client
            .get(format!("https://{host}/api/version"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["version"].as_str().unwrap().to_owned()
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{}", self.settings.control_url, path)
    }
}

/// A zip package with the given files.
pub fn zip_with(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}
