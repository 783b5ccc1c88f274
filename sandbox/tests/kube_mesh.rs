//! The demo app on the emulated cluster: reached through the API server's
//! pod and service proxy (a new build checked before users see it), through
//! the mesh's ingress by the Service's selector or by an Istio
//! VirtualService's weights over DestinationRule subsets, and counted as
//! `istio_requests_total` for Prometheus. Pods that never become ready are
//! the API server's and Envoy's 503s, not a version.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use expedite_sandbox::kube::PodBehaviour;
use expedite_sandbox::kube::mesh::{METRICS_HOST, ingress_host};
use serde_json::{Value, json};

struct Kube {
    client: reqwest::Client,
    auth: String,
}

impl Kube {
    fn new(env: &Env) -> Self {
        let s = env.sb.settings();
        let token = std::fs::read_to_string(&s.kubeconfig_path)
            .unwrap()
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_owned))
            .unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(env.sb.client_tls_config().unwrap())
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .resolve("kubernetes.test", env.sb.https_addr())
            .resolve(&ingress_host("web", "shop"), env.sb.https_addr())
            .resolve(&ingress_host("bad", "shop"), env.sb.https_addr())
            .resolve(METRICS_HOST, env.sb.https_addr())
            .build()
            .unwrap();
        Kube {
            client,
            auth: format!("Bearer {token}"),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        ct: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("https://kubernetes.test{path}"))
            .header("authorization", &self.auth)
            .header("content-type", ct)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, path: &str, body: Value) {
        let (code, v) = self
            .send(reqwest::Method::POST, path, "application/json", body)
            .await;
        assert_eq!(code, 201, "{path}: {v}");
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, "application/json", Value::Null)
            .await
    }

    /// The version the mesh's ingress for `service` answers with.
    async fn ingress_version(&self, service: &str) -> Result<String, (u16, String)> {
        let r = self
            .client
            .get(format!(
                "https://{}/api/version",
                ingress_host(service, "shop")
            ))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        if code != 200 {
            return Err((code, text));
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        Ok(v["version"].as_str().unwrap().to_owned())
    }
}

fn deployment(name: &str, version: &str, image: &str, replicas: u32) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name.split('-').next().unwrap(), "version": version}},
            "template": {
                "metadata": {"labels": {"app": name.split('-').next().unwrap(), "version": version}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

async fn wait_ready(env: &Env, name: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = env.sb.kube_object("deployments", "shop", name).unwrap();
        if d["status"]["readyReplicas"] == n {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not ready: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_reached_by_proxy_by_selector_and_by_istio_weights() {
    let env = start().await;
    let k = Kube::new(&env);
    k.create("/api/v1/namespaces", json!({"metadata": {"name": "shop"}}))
        .await;
    let deployments = "/apis/apps/v1/namespaces/shop/deployments";
    k.create(
        deployments,
        deployment("web-blue", "blue", "contoso.azurecr.io/payments:2.4.1", 2),
    )
    .await;
    k.create(
        deployments,
        deployment("web-green", "green", "contoso.azurecr.io/payments:2.4.2", 1),
    )
    .await;
    k.create(
        "/api/v1/namespaces/shop/services",
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web", "version": "blue"}, "ports": [{"port": 80}]}}),
    )
    .await;
    wait_ready(&env, "web-blue", 2).await;
    wait_ready(&env, "web-green", 1).await;

    // The green pod, checked through the API server before any user sees it.
    let (_, pods) = k
        .get("/api/v1/namespaces/shop/pods?labelSelector=version%3Dgreen")
        .await;
    let green = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, v) = k
        .get(&format!(
            "/api/v1/namespaces/shop/pods/{green}/proxy/api/version"
        ))
        .await;
    assert_eq!((code, v["version"].as_str()), (200, Some("2.4.2")), "{v}");
    let (code, v) = k
        .get("/api/v1/namespaces/shop/services/web:80/proxy/health")
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["version"], "2.4.1");

    // Users, by the Service's selector: blue only.
    for _ in 0..30 {
        assert_eq!(k.ingress_version("web").await.unwrap(), "2.4.1");
    }

    // A canary by Istio weights: the Service selects both, a VirtualService
    // sends 10 % to the green subset.
    let (code, v) = k
        .send(
            reqwest::Method::PATCH,
            "/api/v1/namespaces/shop/services/web",
            "application/merge-patch+json",
            json!({"spec": {"selector": {"version": null}}}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    k.create(
        "/apis/networking.istio.io/v1/namespaces/shop/destinationrules",
        json!({"metadata": {"name": "web"}, "spec": {"host": "web", "subsets": [
            {"name": "stable", "labels": {"version": "blue"}},
            {"name": "canary", "labels": {"version": "green"}}]}}),
    )
    .await;
    k.create(
        "/apis/networking.istio.io/v1/namespaces/shop/virtualservices",
        json!({"metadata": {"name": "web"}, "spec": {"hosts": ["web"], "http": [{"route": [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 90},
            {"destination": {"host": "web", "subset": "canary"}, "weight": 10}]}]}}),
    )
    .await;
    let n = 600;
    let mut green_seen = 0;
    for _ in 0..n {
        if k.ingress_version("web").await.unwrap() == "2.4.2" {
            green_seen += 1;
        }
    }
    // Binomial(600, 0.1): mean 60, sd ≈ 7.3; ±4.5 sd.
    assert!(
        (27..=93).contains(&green_seen),
        "{green_seen} of {n} went to the canary"
    );

    // What the mesh counted is what Prometheus would scrape.
    let metrics = k
        .client
        .get(format!("https://{METRICS_HOST}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |version: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("istio_requests_total{")
                    && l.contains(&format!("destination_version=\"{version}\""))
                    && l.contains("destination_service=\"web.shop.svc.cluster.local\"")
                    && l.contains("response_code=\"200\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count("green"), green_seen, "{metrics}");
    assert_eq!(count("blue"), 30 + n - green_seen, "{metrics}");

    // A subset narrows the Service's endpoints, as in Istio: a Service that
    // selects blue itself leaves the green subset none — Envoy's 503.
    let (code, v) = k
        .send(
            reqwest::Method::PATCH,
            "/api/v1/namespaces/shop/services/web",
            "application/merge-patch+json",
            json!({"spec": {"selector": {"version": "blue"}}}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = k
        .send(
            reqwest::Method::PATCH,
            "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/web",
            "application/merge-patch+json",
            json!({"spec": {"http": [{"route": [
                {"destination": {"host": "web", "subset": "canary"}, "weight": 100}]}]}}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    for _ in 0..5 {
        assert_eq!(
            k.ingress_version("web").await,
            Err((503, "no healthy upstream".to_owned()))
        );
    }

    // Pods that never become ready serve nothing: 503s, not a version.
    env.sb.kube_set_pod_behaviour(
        "contoso.azurecr.io/payments:9.9.9",
        PodBehaviour {
            ready_after: Duration::ZERO,
            never_ready: true,
        },
    );
    k.create(
        deployments,
        deployment("bad-one", "one", "contoso.azurecr.io/payments:9.9.9", 1),
    )
    .await;
    k.create(
        "/api/v1/namespaces/shop/services",
        json!({"metadata": {"name": "bad"}, "spec": {"selector": {"app": "bad"}}}),
    )
    .await;
    let (code, v) = k
        .get("/api/v1/namespaces/shop/services/bad/proxy/health")
        .await;
    assert_eq!(code, 503, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no endpoints available"),
        "{v}"
    );
    assert_eq!(
        k.ingress_version("bad").await,
        Err((503, "no healthy upstream".to_owned()))
    );
    let (code, _) = k
        .get("/api/v1/namespaces/shop/services/nope/proxy/health")
        .await;
    assert_eq!(code, 404);
}
