//! Dependency-ordered deploys of several services: the scheduling and the
//! failure policy, apart from the I/O (a [`ServiceRunner`] deploys or rolls
//! back one service), so every ordering rule is a unit test.
//!
//! The rules:
//! - a service starts only after every service it depends on has finished
//!   **verified in production** (promoted, or already on the version) —
//!   workflow `needs:` orders jobs, not readiness;
//! - independent services run at the same time, at most `max_parallel`;
//! - after a failure nothing new starts; what is running finishes;
//! - then, by policy: `rollback-all` rolls back every service this run
//!   promoted and every failed one whose failure left a change behind
//!   (`Step::undo`: a `command` service whose deploy ran), in reverse
//!   dependency order (dependents first); `rollback-failed` rolls back only
//!   those failed ones (an App Service or Container Apps rollout restores
//!   itself); `stop` rolls nothing back.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::cancel::Cancel;
use crate::manifest::Manifest;

/// What to do after a service fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Roll back everything this run promoted, in reverse order.
    RollbackAll,
    /// Only the failed services are restored (a rollout restores itself; a
    /// `command` service's `rollback:` runs).
    RollbackFailed,
    /// Start nothing more; roll nothing back.
    Stop,
}

/// How one service's deploy or rollback ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `promoted`, `unchanged`, `rolled-back`, `failed-before-change`,
    /// `needs-attention`, `inconclusive`, `failed`.
    pub result: String,
    /// True when the service is verified healthy in production on the
    /// version asked for (its dependents may start).
    pub verified: bool,
    /// One line for the summary.
    pub detail: String,
    /// A failed deploy that left a change behind, which the service's own
    /// rollback undoes (a `command` service whose deploy command ran); a
    /// rollout that failed restored itself and says false.
    #[serde(default)]
    pub undo: bool,
}

/// Deploys and rolls back single services.
pub trait ServiceRunner: Send + Sync + 'static {
    /// Deploys `service` and verifies it in production.
    fn deploy(&self, service: String) -> impl Future<Output = Step> + Send;
    /// Puts back what `service` served before this run's deploy of it.
    fn rollback(&self, service: String) -> impl Future<Output = Step> + Send;
}

/// One service's record in the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRecord {
    /// The service.
    pub service: String,
    /// Its deploy, if it started.
    pub deploy: Option<Step>,
    /// Its rollback after another service failed, if any.
    pub rollback: Option<Step>,
    /// Milliseconds since the run started, when its deploy started.
    pub started_ms: Option<u64>,
    /// …and ended.
    pub finished_ms: Option<u64>,
}

impl ServiceRecord {
    /// The service's final state in one word.
    pub fn outcome(&self) -> String {
        match (&self.deploy, &self.rollback) {
            (None, _) => "not-started".into(),
            (Some(_), Some(r)) if r.verified => "rolled-back".into(),
            (Some(_), Some(_)) => "rollback-failed".into(),
            (Some(d), None) => d.result.clone(),
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiReport {
    /// Per service, in dependency order.
    pub services: Vec<ServiceRecord>,
    /// True when every service ended verified on its version.
    pub success: bool,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// The order rollbacks ran in.
    pub rollback_order: Vec<String>,
}

/// Runs the deploy of every service of `manifest` in dependency order.
pub async fn run<R: ServiceRunner>(
    manifest: &Manifest,
    runner: Arc<R>,
    max_parallel: usize,
    policy: OnFailure,
    cancel: &Cancel,
) -> MultiReport {
    let started = Instant::now();
    let order = manifest.order();
    let deps: BTreeMap<String, Vec<String>> = manifest
        .services
        .iter()
        .map(|s| (s.name.clone(), s.depends_on.clone()))
        .collect();
    let mut records: BTreeMap<String, ServiceRecord> = order
        .iter()
        .map(|n| {
            (
                n.clone(),
                ServiceRecord {
                    service: n.clone(),
                    deploy: None,
                    rollback: None,
                    started_ms: None,
                    finished_ms: None,
                },
            )
        })
        .collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut failure: Option<String> = None;
    let mut tasks = tokio::task::JoinSet::new();
    let ms = |at: Instant| at.saturating_duration_since(started).as_millis() as u64;
    loop {
        // Start everything ready, in dependency order, within the bound.
        if failure.is_none() && !cancel.is_cancelled() {
            for name in &order {
                if running.len() >= max_parallel.max(1) {
                    break;
                }
                let ready = !done.contains(name)
                    && !running.contains(name)
                    && records.get(name).is_some_and(|r| r.deploy.is_none())
                    && deps.get(name).is_none_or(|d| {
                        d.iter().all(|dep| {
                            records
                                .get(dep)
                                .and_then(|r| r.deploy.as_ref())
                                .is_some_and(|s| s.verified)
                        })
                    });
                if ready {
                    running.insert(name.clone());
                    if let Some(r) = records.get_mut(name) {
                        r.started_ms = Some(ms(Instant::now()));
                    }
                    let (runner, name) = (runner.clone(), name.clone());
                    tracing::info!("{name}: deploy starts");
                    tasks.spawn(async move {
                        let step = runner.deploy(name.clone()).await;
                        (name, step)
                    });
                }
            }
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (name, step) = match joined {
            Ok(x) => x,
            Err(e) => {
                // A panicking deploy is a bug; record it as a failure of
                // whatever was running and stop starting more.
                failure.get_or_insert_with(|| format!("a deploy task failed: {e}"));
                continue;
            }
        };
        running.remove(&name);
        done.insert(name.clone());
        tracing::info!("{name}: {} ({})", step.result, step.detail);
        if !step.verified && failure.is_none() {
            failure = Some(format!("{name}: {} — {}", step.result, step.detail));
        }
        if let Some(r) = records.get_mut(&name) {
            r.finished_ms = Some(ms(Instant::now()));
            r.deploy = Some(step);
        }
    }
    let cancelled = cancel.is_cancelled();
    let mut rollback_order = Vec::new();
    if (failure.is_some() || cancelled) && policy != OnFailure::Stop {
        // Dependents first: the reverse of the deploy order.
        for name in order.iter().rev() {
            let deploy = records.get(name).and_then(|r| r.deploy.as_ref());
            let promoted = deploy.is_some_and(|s| s.result == "promoted");
            let left_a_change = deploy.is_some_and(|s| !s.verified && s.undo);
            let roll = match policy {
                OnFailure::RollbackAll => promoted || left_a_change,
                OnFailure::RollbackFailed => left_a_change,
                OnFailure::Stop => false,
            };
            if !roll {
                continue;
            }
            tracing::info!(
                "{name}: rolling back ({})",
                if left_a_change {
                    "its own deploy failed after changing it"
                } else {
                    "policy rollback-all"
                }
            );
            let step = runner.rollback(name.clone()).await;
            rollback_order.push(name.clone());
            if let Some(r) = records.get_mut(name) {
                r.rollback = Some(step);
            }
        }
    }
    if cancelled && failure.is_none() {
        failure = Some("cancelled".into());
    }
    let services: Vec<ServiceRecord> = order.iter().filter_map(|n| records.remove(n)).collect();
    let success = failure.is_none()
        && services
            .iter()
            .all(|r| r.deploy.as_ref().is_some_and(|d| d.verified));
    MultiReport {
        services,
        success,
        failure,
        rollback_order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    const GRAPH: &str = r#"
services:
  - name: core
    platform: command
    deploy: "true"
    verify: "true"
  - name: payments
    app: app-p
    resource-group: rg
    depends_on: [core]
  - name: notifications
    app: app-n
    resource-group: rg
    depends_on: [core]
  - name: web
    app: app-w
    resource-group: rg
    depends_on: [payments, notifications]
"#;

    #[derive(Default)]
    struct Fake {
        fail: Option<&'static str>,
        /// The failing deploy left a change behind (a command service).
        undo: bool,
        log: Mutex<Vec<String>>,
        live: Mutex<usize>,
        peak: Mutex<usize>,
    }

    impl ServiceRunner for Fake {
        async fn deploy(&self, service: String) -> Step {
            {
                let mut live = self.live.lock().unwrap();
                *live += 1;
                let mut peak = self.peak.lock().unwrap();
                *peak = (*peak).max(*live);
            }
            self.log.lock().unwrap().push(format!("start {service}"));
            // The failing one takes longer, so its sibling finishes first.
            let ms = if Some(service.as_str()) == self.fail {
                40
            } else {
                10
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            *self.live.lock().unwrap() -= 1;
            self.log.lock().unwrap().push(format!("end {service}"));
            let bad = Some(service.as_str()) == self.fail;
            Step {
                result: if bad && self.undo {
                    "failed"
                } else if bad {
                    "failed-before-change"
                } else {
                    "promoted"
                }
                .into(),
                verified: !bad,
                detail: String::new(),
                undo: bad && self.undo,
            }
        }

        async fn rollback(&self, service: String) -> Step {
            self.log.lock().unwrap().push(format!("rollback {service}"));
            Step {
                result: "rolled-back".into(),
                verified: true,
                detail: String::new(),
                undo: false,
            }
        }
    }

    fn manifest() -> Manifest {
        crate::manifest::parse(GRAPH, None).unwrap()
    }

    fn position(log: &[String], what: &str) -> usize {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("{what} not in {log:?}"))
    }

    #[tokio::test]
    async fn dependents_start_only_after_their_dependencies_are_verified() {
        let fake = Arc::new(Fake::default());
        let r = run(
            &manifest(),
            fake.clone(),
            4,
            OnFailure::RollbackAll,
            &Cancel::new(),
        )
        .await;
        assert!(r.success, "{r:#?}");
        let log = fake.log.lock().unwrap().clone();
        assert!(position(&log, "end core") < position(&log, "start payments"));
        assert!(position(&log, "end payments") < position(&log, "start web"));
        assert!(position(&log, "end notifications") < position(&log, "start web"));
        assert_eq!(
            *fake.peak.lock().unwrap(),
            2,
            "the two middle services ran together"
        );
    }

    #[tokio::test]
    async fn parallelism_is_bounded() {
        let fake = Arc::new(Fake::default());
        run(
            &manifest(),
            fake.clone(),
            1,
            OnFailure::RollbackAll,
            &Cancel::new(),
        )
        .await;
        assert_eq!(*fake.peak.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failure_stops_dependents_and_rolls_back_in_reverse_order() {
        let fake = Arc::new(Fake {
            fail: Some("notifications"),
            ..Fake::default()
        });
        let r = run(
            &manifest(),
            fake.clone(),
            4,
            OnFailure::RollbackAll,
            &Cancel::new(),
        )
        .await;
        assert!(!r.success);
        let outcome: BTreeMap<_, _> = r
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.outcome()))
            .collect();
        assert_eq!(outcome["web"], "not-started");
        assert_eq!(outcome["notifications"], "failed-before-change");
        assert_eq!(outcome["payments"], "rolled-back");
        assert_eq!(outcome["core"], "rolled-back");
        assert_eq!(r.rollback_order, ["payments", "core"], "dependents first");
        assert!(r.failure.unwrap().starts_with("notifications"));
    }

    #[tokio::test]
    async fn rollback_failed_and_stop_keep_the_others() {
        for policy in [OnFailure::RollbackFailed, OnFailure::Stop] {
            let fake = Arc::new(Fake {
                fail: Some("notifications"),
                ..Fake::default()
            });
            let r = run(&manifest(), fake.clone(), 4, policy, &Cancel::new()).await;
            assert!(r.rollback_order.is_empty(), "{policy:?}");
            let payments = r.services.iter().find(|s| s.service == "payments").unwrap();
            assert_eq!(payments.outcome(), "promoted");
            assert!(
                !fake
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.starts_with("rollback"))
            );
        }
    }

    #[tokio::test]
    async fn a_failed_deploy_that_left_a_change_is_undone_unless_stop() {
        for (policy, expected) in [
            (
                OnFailure::RollbackAll,
                vec!["notifications", "payments", "core"],
            ),
            (OnFailure::RollbackFailed, vec!["notifications"]),
            (OnFailure::Stop, vec![]),
        ] {
            let fake = Arc::new(Fake {
                fail: Some("notifications"),
                undo: true,
                ..Fake::default()
            });
            let r = run(&manifest(), fake.clone(), 4, policy, &Cancel::new()).await;
            assert_eq!(r.rollback_order, expected, "{policy:?}");
            let failed = r
                .services
                .iter()
                .find(|s| s.service == "notifications")
                .unwrap();
            if policy == OnFailure::Stop {
                // Left as the failed deploy left it, and said so.
                assert_eq!(failed.outcome(), "failed");
            } else {
                assert_eq!(failed.outcome(), "rolled-back", "{policy:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_first_stage_failure_starts_nothing_else() {
        let fake = Arc::new(Fake {
            fail: Some("core"),
            ..Fake::default()
        });
        let r = run(
            &manifest(),
            fake.clone(),
            4,
            OnFailure::RollbackAll,
            &Cancel::new(),
        )
        .await;
        let started: Vec<_> = fake
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("start"))
            .cloned()
            .collect();
        assert_eq!(started, ["start core"]);
        assert!(r.rollback_order.is_empty(), "nothing was promoted");
    }
}
