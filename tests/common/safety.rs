//! The safety rig: the built binary, started the way the runner starts it,
//! against a sandbox whose GitHub holds the deploy lock — several runs at
//! once, kills at every change, throttling, a terminal's Ctrl-C. Shared by
//! `tests/safety.rs` (a few trials) and `examples/safety_sweep.rs` (the
//! 100-trial sweep whose figures are in BENCHMARKS.md).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use expedite::cancel::Cancel;
use expedite::platform::container_apps::{ContainerAppRef, ContainerApps};
use expedite::probe::Probe;
use expedite_sandbox::{Sandbox, SandboxConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Job, Running, StepResult, seed_repo};

pub const APP: &str = "app-contoso-payments";
pub const CA: &str = "ca-contoso-payments";
pub const APP_HOST: &str = "app-contoso-payments.azurewebsites.test";
/// The Kubernetes app: Deployment and Service `payments` in `shop`,
/// behind an Istio VirtualService.
pub const KUBE_NS: &str = "shop";
pub const KUBE_APP: &str = "payments";
pub const KUBE_HOST: &str = "payments--shop.mesh.test";

/// Which platform a trial drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    AppService,
    ContainerApps,
    /// An Istio canary (`strategy: canary`), the lock a Lease.
    Kubernetes,
}

impl Platform {
    /// The app's name, as the inputs and the journal's file name give it.
    pub fn app(self) -> &'static str {
        match self {
            Platform::AppService => APP,
            Platform::ContainerApps => CA,
            Platform::Kubernetes => KUBE_APP,
        }
    }
}

/// A sandbox with the repository the lock lives in.
pub struct Rig {
    pub sb: Sandbox,
}

impl Rig {
    pub async fn new() -> Rig {
        let sb = expedite_sandbox::start(SandboxConfig {
            swap_duration: Duration::from_millis(600),
            build_duration: Duration::from_millis(200),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        seed_repo(&sb, "contoso", "payments");
        let refused = sb.kube_seed_app(KUBE_NS, KUBE_APP, "registry.test/payments:2.4.0", 2, true);
        assert!(refused.is_empty(), "{refused:?}");
        assert!(
            sb.kube_wait_available(KUBE_NS, KUBE_APP, Duration::from_secs(20))
                .await
        );
        Rig { sb }
    }

    /// The cluster (the sandbox's kubeconfig, trust and resolution) and
    /// GitHub for `job`, with short lock timings; the lock is a Lease.
    pub fn kube(&self, job: Job) -> Job {
        let s = self.sb.settings();
        job.github_of(&self.sb)
            .input("platform", "kubernetes")
            .input("namespace", KUBE_NS)
            .input("strategy", "canary")
            .input("production-url", &format!("https://{KUBE_HOST}"))
            .input("kubeconfig", &s.kubeconfig_path.to_string_lossy())
            .input("resolve", &s.resolve_string())
            .input("ca-cert", &s.ca_cert_path.to_string_lossy())
            .input("lock-ttl", "6s")
            .input("lock-wait", "3m")
            .input("verify-requests", "30")
    }

    /// A deploy of `version` to the Kubernetes app (its image's tag).
    pub fn deploy_kube(&self, version: &str) -> Job {
        self.kube(Job::new())
            .input("command", "deploy")
            .input("app-name", KUBE_APP)
            .input("image", &format!("registry.test/payments:{version}"))
            .input("expected-version", version)
            .input("check-interval", "200ms")
            .input("verify-window", "500ms")
            .input("verify-interval", "250ms")
    }

    /// Azure sign-in and GitHub (the lock) for `job`, with short lock
    /// timings (a one-second poll).
    pub fn azure(&self, job: Job) -> Job {
        let s = self.sb.settings();
        job.github_of(&self.sb)
            .azure_of(&s)
            .input("lock-ttl", "6s")
            .input("lock-wait", "3m")
            .input("verify-requests", "30")
    }

    /// A deploy of `version` to the App Service app from a package.
    pub fn deploy(&self, version: &str) -> Job {
        let job = Job::new();
        std::fs::write(
            job.workspace().join("app.zip"),
            expedite_sandbox::demo_package(version).unwrap(),
        )
        .unwrap();
        self.azure(job)
            .input("command", "deploy")
            .input("app-name", APP)
            .input("package", "app.zip")
            .input("expected-version", version)
            .input("check-interval", "200ms")
            .input("verify-window", "500ms")
            .input("verify-interval", "250ms")
    }

    /// A deploy of `version` to the container app.
    pub fn deploy_ca(&self, version: &str) -> Job {
        self.azure(Job::new())
            .input("command", "deploy")
            .input("app-name", CA)
            .input("platform", "container-apps")
            .input(
                "image",
                &format!("contosoacr.azurecr.io/payments:{version}"),
            )
            .input("expected-version", version)
            .input("check-interval", "200ms")
            .input("verify-window", "500ms")
            .input("verify-interval", "250ms")
    }

    /// A deploy on `platform`.
    pub fn deploy_on(&self, platform: Platform, version: &str) -> Job {
        match platform {
            Platform::AppService => self.deploy(version),
            Platform::ContainerApps => self.deploy_ca(version),
            Platform::Kubernetes => self.deploy_kube(version),
        }
    }

    /// The one-click rollback of the app on `platform`.
    pub fn rollback(&self, platform: Platform, to_version: Option<&str>) -> Job {
        let job = match platform {
            Platform::Kubernetes => self.kube(Job::new()),
            _ => self.azure(Job::new()),
        };
        let mut job = job
            .input("command", "rollback")
            .input("reason", "drill: the rollback button");
        job = match platform {
            Platform::AppService => job.input("services", APP),
            Platform::ContainerApps => job
                .input("services", CA)
                .input("platform", "container-apps"),
            Platform::Kubernetes => job.input("services", KUBE_APP),
        };
        match to_version {
            Some(v) => job.input("to-version", v),
            None => job,
        }
    }

    /// Changes to the platforms (ARM and Kudu writes; writes to the API
    /// server but the lock's Leases), in order, with the run that made
    /// each (from its `User-Agent`).
    pub fn mutations(&self) -> Vec<(u64, String, String)> {
        self.sb
            .handle()
            .request_log()
            .into_iter()
            .filter(|r| {
                r.method != "GET"
                    && (r.host == "management.azure.test"
                        || r.host.contains(".scm.")
                        || (r.target.starts_with("kube") && !r.path.contains("/leases")))
            })
            .map(|r| {
                let run = r
                    .user_agent
                    .as_deref()
                    .and_then(|ua| ua.split("(run ").nth(1))
                    .map(|s| s.trim_end_matches(')').to_string())
                    .unwrap_or_else(|| "unknown".into());
                (r.seq, run, format!("{} {}{}", r.method, r.host, r.path))
            })
            .collect()
    }

    /// What `n` requests to the production host get.
    pub async fn serving(&self, platform: Platform, n: usize) -> BTreeMap<String, usize> {
        let c = super::azure::clients(&self.sb);
        let host = match platform {
            Platform::AppService => APP_HOST.to_string(),
            Platform::ContainerApps => self
                .container_app()
                .get(&Cancel::new())
                .await
                .unwrap()
                .fqdn
                .unwrap(),
            Platform::Kubernetes => KUBE_HOST.to_string(),
        };
        Probe::new(c.http)
            .sample_versions(&host, "/api/version", n)
            .await
    }

    pub fn container_app(&self) -> ContainerApps {
        let c = super::azure::clients(&self.sb);
        let s = &c.settings;
        ContainerApps::new(
            c.arm(),
            ContainerAppRef {
                subscription: s.subscription_id.clone(),
                resource_group: s.resource_group.clone(),
                app: CA.into(),
            },
        )
    }

    /// The container app's traffic: revision → weight, where > 0.
    pub async fn ca_traffic(&self) -> BTreeMap<String, u32> {
        self.container_app()
            .get(&Cancel::new())
            .await
            .unwrap()
            .traffic
            .into_iter()
            .filter(|t| t.weight > 0)
            .map(|t| (t.revision, t.weight))
            .collect()
    }

    /// Invariant 1, read from outside: production serves exactly one
    /// version at 100 %, with no routing rule or traffic split left.
    pub async fn one_version(&self, platform: Platform) -> Result<String, String> {
        match platform {
            Platform::AppService => {
                let rules = self.sb.handle().routing_rules(APP);
                if !rules.is_empty() {
                    return Err(format!("routing rules left: {rules:?}"));
                }
            }
            Platform::ContainerApps => {
                let t = self.ca_traffic().await;
                if t.len() != 1 || t.values().next() != Some(&100) {
                    return Err(format!("traffic is split: {t:?}"));
                }
            }
            Platform::Kubernetes => {
                let w = self.kube_weights();
                if w.len() != 1 || w.values().next() != Some(&100) {
                    return Err(format!("the VirtualService splits traffic: {w:?}"));
                }
            }
        }
        let sample = self.serving(platform, 30).await;
        match sample.iter().collect::<Vec<_>>().as_slice() {
            [(v, 30)] => Ok((*v).clone()),
            _ => Err(format!("production serves {sample:?}")),
        }
    }

    /// The VirtualService's weights by subset, where > 0.
    pub fn kube_weights(&self) -> BTreeMap<String, u64> {
        super::kube::weights(&self.sb)
            .into_iter()
            .filter(|(_, w)| *w > 0)
            .collect()
    }

    /// The lock record of the app on `platform`: the tip of its ref in the
    /// repository, or its Lease's annotation.
    pub fn lock_record(&self, platform: Platform) -> Option<serde_json::Value> {
        if platform == Platform::Kubernetes {
            let key = expedite::lock::LockKey::azure("", KUBE_NS, KUBE_APP);
            let lease =
                self.sb
                    .kube_object("leases", KUBE_NS, &expedite::lock::lease::lease_name(&key))?;
            let text = lease["metadata"]["annotations"][expedite::lock::lease::RECORD_ANNOTATION]
                .as_str()?;
            return serde_json::from_str(text).ok();
        }
        let s = self.sb.settings();
        let bare = self.sb.handle().github_repo_path("contoso", "payments")?;
        let name = format!(
            "refs/expedite/locks/{}/{}/{}",
            s.subscription_id,
            s.resource_group,
            platform.app()
        );
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&bare)
            .args(["log", "-1", "--format=%B", &name])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    pub async fn shutdown(self) {
        self.sb.shutdown().await;
    }
}

/// A 10 % canary watched for `window` by probes that place an order and
/// read it back.
pub fn canary(job: Job, window: &str) -> Job {
    job.input("canary", "10")
        .input("canary-window", window)
        .input("evidence-interval", "200ms")
        .input("probe-rate", "20")
        .input("min-requests", "10")
        .input(
            "probe-requests",
            "GET /health\nPOST /api/payments {\"amount\": 25, \"currency\": \"USD\"} => GET /api/payments/{id}",
        )
}

/// Polls `cond` every 5 ms for up to 60 s.
pub async fn until(mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// An emergency rollback clicked `after` the canary went live: how long
/// the click took to finish, and both runs' results.
pub async fn preemption(after: Duration) -> Result<(Duration, StepResult, StepResult), String> {
    let rig = Rig::new().await;
    let deploy_job = canary(rig.deploy("2.4.1"), "120s");
    let deploy = deploy_job.start_main();
    if !until(|| !rig.sb.handle().routing_rules(APP).is_empty()).await {
        deploy.signal("KILL");
        let d = tokio::task::spawn_blocking(move || deploy.wait())
            .await
            .unwrap();
        return Err(format!("the canary never went live: {}", d.all_text()));
    }
    tokio::time::sleep(after).await;
    let clicked = Instant::now();
    let rollback = rig
        .rollback(Platform::AppService, Some("2.4.0"))
        .input("reason", "checkout is down");
    let rb = tokio::task::spawn_blocking(move || {
        let r = rollback.run_main();
        (rollback, r)
    })
    .await
    .unwrap()
    .1;
    let took = clicked.elapsed();
    let d = tokio::task::spawn_blocking(move || deploy.wait())
        .await
        .unwrap();
    drop(deploy_job);
    let end = rig.one_version(Platform::AppService).await;
    rig.shutdown().await;
    match end {
        Ok(v) if v == "2.4.0" => Ok((took, d, rb)),
        Ok(v) => Err(format!("production serves {v}")),
        Err(e) => Err(e),
    }
}

/// The first run whose Azure changes are split by another run's, if any.
pub fn interleaving(muts: &[(u64, String, String)]) -> Option<String> {
    let mut finished: Vec<&str> = Vec::new();
    let mut current: Option<&str> = None;
    for (_, run, what) in muts {
        if current == Some(run.as_str()) {
            continue;
        }
        if finished.contains(&run.as_str()) {
            return Some(format!(
                "{run} changed Azure again after another run did: {what}"
            ));
        }
        if let Some(c) = current {
            finished.push(c);
        }
        current = Some(run.as_str());
    }
    None
}

/// A run in a trial.
#[derive(Debug, Clone)]
pub enum Kind {
    Deploy(String),
    Rollback(Option<String>),
}

/// What one trial found.
#[derive(Debug)]
pub struct Trial {
    pub runs: Vec<(Kind, u64, StepResult)>,
    pub serving: Result<String, String>,
    pub interleaved: Option<String>,
    pub wall: Duration,
}

impl Trial {
    /// Every promise of the trial, or the first one broken.
    pub fn check(&self) -> Result<(), String> {
        if let Some(i) = &self.interleaved {
            return Err(format!("interleaved: {i}"));
        }
        let v = self.serving.clone()?;
        for (kind, offset, r) in &self.runs {
            let result = r.output("result").unwrap_or("");
            let error = r.output("error").unwrap_or("");
            if r.all_text().contains("panicked") {
                return Err(format!("{kind:?} panicked"));
            }
            // A loser waits or stops with words; never a silent failure.
            if r.code != 0 && error.trim().is_empty() {
                return Err(format!(
                    "{kind:?} (+{offset} ms) failed without a message: {}",
                    r.all_text()
                ));
            }
            if matches!(result, "needs-attention") {
                return Err(format!("{kind:?} needs attention: {error}"));
            }
        }
        // The version serving is one a run verified.
        let verified: Vec<String> = self
            .runs
            .iter()
            .filter_map(|(_, _, r)| r.output("deployed-version").map(str::to_string))
            .filter(|v| !v.is_empty())
            .collect();
        if !verified.contains(&v) {
            return Err(format!(
                "production serves {v}, which no run reported ({verified:?})"
            ));
        }
        Ok(())
    }
}

/// One trial: 2–4 runs of one app (deploys and rollbacks) started at
/// random 0–300 ms offsets.
pub async fn concurrency_trial(platform: Platform, seed: u64) -> Trial {
    let rig = Rig::new().await;
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.random_range(2..=4);
    let mut kinds = Vec::new();
    let mix = rng.random_range(0..3);
    for i in 0..n {
        let k = match (mix, i % 2) {
            // deploy + deploy
            (0, _) => Kind::Deploy(["2.4.1", "2.4.2", "2.4.3", "2.4.4"][i].to_string()),
            // deploy + rollback
            (1, 0) => Kind::Deploy(["2.4.1", "2.4.2", "2.4.3", "2.4.4"][i].to_string()),
            (1, _) => Kind::Rollback(Some("2.4.0".into())),
            // rollback + rollback (after a deploy, so there is a target)
            _ if i == 0 => Kind::Deploy("2.4.1".into()),
            _ => Kind::Rollback(None),
        };
        kinds.push(k);
    }
    let started = Instant::now();
    let mut running: Vec<(Kind, u64, Job, Running)> = Vec::new();
    let mut offsets: Vec<u64> = (0..n).map(|_| rng.random_range(0..=300)).collect();
    offsets.sort_unstable();
    for (k, offset) in kinds.into_iter().zip(offsets) {
        let elapsed = started.elapsed().as_millis() as u64;
        if offset > elapsed {
            tokio::time::sleep(Duration::from_millis(offset - elapsed)).await;
        }
        let job = match &k {
            Kind::Deploy(v) => rig.deploy_on(platform, v),
            Kind::Rollback(v) => rig.rollback(platform, v.as_deref()),
        };
        let r = job.start_main();
        running.push((k, offset, job, r));
    }
    let mut runs = Vec::new();
    for (k, offset, job, r) in running {
        let result = tokio::task::spawn_blocking(move || r.wait()).await.unwrap();
        drop(job);
        runs.push((k, offset, result));
    }
    let wall = started.elapsed();
    let interleaved = interleaving(&rig.mutations());
    let serving = rig.one_version(platform).await;
    rig.shutdown().await;
    Trial {
        runs,
        serving,
        interleaved,
        wall,
    }
}
