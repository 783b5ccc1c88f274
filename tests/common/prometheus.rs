//! A real Prometheus (the `prometheus` binary) scraping a sandbox's demo
//! app through the sandbox's forward proxy: one job per arm, each target a
//! slot host with a static `slot` label, so the default PromQL templates
//! work unchanged. Killed on drop.
//!
//! Without the binary the tests skip with a message, unless
//! `EXPEDITE_REQUIRE_PROMETHEUS=1` (CI), when they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One scrape target.
pub struct Target {
    /// The `slot` label (`staging`, `production`).
    pub slot: String,
    /// The demo-app host (`app-contoso-payments-staging.azurewebsites.test`).
    pub host: String,
    /// Query parameters (`x-ms-routing-name=self` pins production).
    pub params: Vec<(String, String)>,
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/`.
    pub url: url::Url,
}

/// The binary, or `None` (after saying why) when the test should skip.
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("EXPEDITE_PROMETHEUS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("prometheus"))
                .find(|p| p.is_file())
        });
    match found {
        Some(p) => Some(p),
        None if std::env::var("EXPEDITE_REQUIRE_PROMETHEUS").as_deref() == Ok("1") => {
            panic!("prometheus is not installed and EXPEDITE_REQUIRE_PROMETHEUS=1")
        }
        None => {
            eprintln!("SKIPPED: prometheus is not installed (apt-get install prometheus)");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(proxy: &str, targets: &[Target]) -> String {
    let mut y = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for t in targets {
        y.push_str(&format!(
            "  - job_name: {slot}\n    scheme: http\n    metrics_path: /metrics\n    proxy_url: {proxy}\n",
            slot = t.slot
        ));
        if !t.params.is_empty() {
            y.push_str("    params:\n");
            for (k, v) in &t.params {
                y.push_str(&format!("      {k}: ['{v}']\n"));
            }
        }
        y.push_str(&format!(
            "    static_configs:\n      - targets: ['{host}']\n        labels:\n          slot: {slot}\n",
            host = t.host,
            slot = t.slot
        ));
    }
    y
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` through the sandbox proxy at
    /// `control_url`, and waits (bounded) until every target is up.
    /// `None` when the binary is missing and not required.
    pub async fn start(control_url: &str, targets: &[Target]) -> Option<Prometheus> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config(control_url, targets)).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            dir,
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        };
        p.wait_up(targets.len(), Duration::from_secs(60)).await;
        Some(p)
    }

    /// Prometheus's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn client() -> reqwest::Client {
        expedite::http::client(&expedite::http::HttpSettings {
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .unwrap()
    }

    async fn wait_up(&self, n: usize, bound: Duration) {
        let client = Self::client();
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < bound {
            if let Ok(r) = client
                .get(self.url.join("api/v1/targets?state=active").unwrap())
                .send()
                .await
                && let Ok(v) = r.json::<Value>().await
            {
                let targets = v["data"]["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let up = targets.iter().filter(|t| t["health"] == "up").count();
                if targets.len() == n && up == n {
                    return;
                }
                last = v.to_string();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "prometheus targets not up after {bound:?}: {last}\nlog:\n{}",
            self.log()
        );
    }

    /// Evaluates `promql` now (for waits in tests).
    pub async fn query(&self, promql: &str) -> Value {
        Self::client()
            .get(self.url.join("api/v1/query").unwrap())
            .query(&[("query", promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
