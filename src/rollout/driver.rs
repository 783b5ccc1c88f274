//! The I/O half of the rollout: performs each [`Phase`] on App Service and
//! reports a [`Result`](super::Result) to [`step`](super::step), writing the
//! journal after every step.
//!
//! Every phase that changes something checks cancellation first, and every
//! outcome that is not certain is found out by reading state (slot swap
//! status, what production serves), never by repeating an action.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Outcome, Phase, Result as R, State, step};
use crate::azure::arm::ArmError;
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::platform::app_service::{
    self, AppService, PRODUCTION, RoutingRule, SlotInfo, SwapStatus,
};
use crate::probe::{Endpoints, Probe, Schedule};

/// What to do about routing rules left behind by an earlier canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StalePolicy {
    /// Remove them (with a warning): after the swap they would send users
    /// to the old build.
    Clear,
    /// Stop before changing anything.
    Fail,
}

/// Everything a deploy needs to know, validated.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    /// The deployment slot to stage in.
    pub slot: String,
    /// The package to upload to the slot, if any.
    pub package: Option<Vec<u8>>,
    /// Health and version endpoints.
    pub endpoints: Endpoints,
    /// The version the new build must report.
    pub expected_version: String,
    /// Staging checks.
    pub staging: Schedule,
    /// How long production must stay good after the swap.
    pub verify_window: Duration,
    /// Time between production checks during the window.
    pub verify_interval: Duration,
    /// Independent requests at the end of the window, all of which must
    /// reach the new version.
    pub verify_samples: usize,
    /// Bound on the swap (and the swap back).
    pub swap_timeout: Duration,
    /// Stale routing rules policy.
    pub stale: StalePolicy,
    /// How long to wait for another deploy of the same app to finish.
    pub lock_wait: Duration,
    /// This run's identity in the lease (e.g. `owner/repo#run_id.attempt`).
    pub run_id: String,
    /// Where the journal goes (for the post stage).
    pub journal: Option<PathBuf>,
}

/// Facts gathered along the way, kept in the journal and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Production's host.
    pub production_host: String,
    /// The slot's host.
    pub slot_host: String,
    /// The slot's Kudu host.
    pub scm_host: Option<String>,
    /// What production served before (the last known good version).
    pub previous_version: Option<String>,
    /// Rules found in preflight.
    pub stale_rules: Vec<String>,
    /// The swap status before our swap, to recognise our own swap later.
    pub swap_status_before: Option<SwapStatus>,
    /// What sampling production found at the end (version → requests).
    pub production_sample: BTreeMap<String, usize>,
    /// What the staging slot answered to the last check.
    #[serde(default)]
    pub staging_answer: Option<String>,
}

/// One phase's record, for the summary's table and timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// Milliseconds since the rollout started.
    pub started_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// What it found.
    pub result: String,
}

/// The journal: written after every step, read by the post stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The state machine's state.
    pub state: State,
    /// Facts.
    pub facts: Facts,
    /// Phase records.
    pub phases: Vec<PhaseRecord>,
    /// The lease value we hold, if any.
    pub lease: Option<String>,
}

/// The site tag that serialises deploys of one app.
pub const LEASE_TAG: &str = "expedite-deploy-lease";

/// The site tag recording what production served before expedite's last
/// promotion: `rollback`'s default target.
pub const PREVIOUS_VERSION_TAG: &str = "expedite-previous-version";

/// Runs a rollout on App Service.
pub struct AppServiceRollout {
    /// The app.
    pub app: AppService,
    /// Token source (for Kudu).
    pub tokens: std::sync::Arc<TokenProvider>,
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// Probes.
    pub probe: Probe,
    /// The plan.
    pub plan: DeployPlan,
    /// Cancellation.
    pub cancel: Cancel,
}

fn describe(e: &ArmError) -> String {
    e.to_string()
}

impl AppServiceRollout {
    /// Runs to the end and returns the journal.
    pub async fn run(&self) -> Journal {
        let started = Instant::now();
        let mut journal = Journal {
            state: State::new(self.plan.package.is_some()),
            facts: Facts::default(),
            phases: Vec::new(),
            lease: None,
        };
        // The state machine terminates on every path (tested exhaustively);
        // the bound is a second guard against a driver bug.
        for _ in 0..64 {
            if journal.state.finished() {
                break;
            }
            let phase = journal.state.phase;
            let t = Instant::now();
            tracing::info!("phase {phase:?}");
            let result = if self.cancel.is_cancelled() && changes(phase) {
                R::Cancelled
            } else {
                self.perform(phase, &mut journal).await
            };
            journal.phases.push(PhaseRecord {
                phase,
                started_ms: (t - started).as_millis() as u64,
                duration_ms: t.elapsed().as_millis() as u64,
                result: match &result {
                    R::Failed(w) => format!("failed: {w}"),
                    R::Ambiguous(w) => format!("unknown: {w}"),
                    other => format!("{other:?}").to_lowercase(),
                },
            });
            if let R::Failed(why) = &result {
                tracing::warn!("{phase:?}: {why}");
            }
            journal.state = step(journal.state.clone(), result);
            self.write_journal(&journal);
        }
        journal
    }

    fn write_journal(&self, journal: &Journal) {
        let Some(path) = &self.plan.journal else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(journal).map_err(std::io::Error::other)?,
            )?;
            // Atomic replace: the post stage never reads half a journal.
            std::fs::rename(tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot write the journal {}: {e}", path.display());
        }
    }

    async fn perform(&self, phase: Phase, j: &mut Journal) -> R {
        match phase {
            Phase::Preflight => self.preflight(j).await,
            Phase::AcquireLease => self.acquire_lease(j).await,
            Phase::ClearStaleRouting | Phase::ClearRouting | Phase::ClearRoutingAfterRollback => {
                self.clear_routing().await
            }
            Phase::Upload => self.upload(j).await,
            Phase::CheckStaging => self.check_staging(j).await,
            Phase::Swap | Phase::SwapBack => self.swap(phase).await,
            Phase::ResolveSwap => {
                self.resolve_swap(j, Some(self.plan.expected_version.as_str()))
                    .await
            }
            Phase::ResolveSwapBack => {
                self.resolve_swap(j, j.facts.previous_version.clone().as_deref())
                    .await
            }
            Phase::VerifyProduction => self.verify_production(j).await,
            Phase::VerifyRollback => self.verify_rollback(j).await,
            Phase::ReleaseLease => self.release_lease(j).await,
            Phase::Done => R::Ok,
        }
    }

    async fn preflight(&self, j: &mut Journal) -> R {
        let c = &self.cancel;
        let prod = match self.app.slot(PRODUCTION, c).await {
            Ok(p) => p,
            Err(ArmError::NotFound { .. }) => {
                return R::Failed(format!(
                    "the web app '{}' was not found in resource group '{}'",
                    self.app.site().app,
                    self.app.site().resource_group
                ));
            }
            Err(e) => return R::Failed(describe(&e)),
        };
        let slot = match self.app.slot(&self.plan.slot, c).await {
            Ok(s) => s,
            Err(ArmError::NotFound { .. }) => {
                let known = self.app.slot_names(c).await.unwrap_or_default();
                return R::Failed(format!(
                    "the slot '{}' does not exist on '{}' (slots: {})",
                    self.plan.slot,
                    self.app.site().app,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            Err(e) => return R::Failed(describe(&e)),
        };
        for s in [&prod, &slot] {
            if s.state != "Running" {
                return R::Failed(format!(
                    "{} is {}, not Running; start it first",
                    s.slot, s.state
                ));
            }
        }
        if let Some(target) = prod
            .target_swap_slot
            .as_ref()
            .or(slot.target_swap_slot.as_ref())
        {
            return R::Failed(format!(
                "a swap with preview is pending (target '{target}'): complete it or reset it (POST …/resetSlotConfig) before deploying"
            ));
        }
        j.facts.production_host = prod.default_host_name.clone();
        j.facts.slot_host = slot.default_host_name.clone();
        j.facts.scm_host = slot.scm_host.clone();
        j.facts.swap_status_before = prod.swap_status.clone();
        if self.plan.package.is_some() && slot.scm_host.is_none() {
            return R::Failed(format!(
                "the slot '{}' has no Kudu (SCM) host to deploy the package to",
                self.plan.slot
            ));
        }
        if let Err(why) = self.wait_for_other_operations(&prod).await {
            return R::Failed(why);
        }
        let now = self
            .probe
            .observe(&prod.default_host_name, &self.plan.endpoints, Some("self"))
            .await;
        j.facts.previous_version = now.version.clone();
        if now.version.is_none() {
            tracing::warn!(
                "production's version could not be read ({}); the previous version is unknown",
                now.describe()
            );
        }
        let rules = match self.app.routing_rules(c).await {
            Ok(r) => r,
            Err(e) => return R::Failed(describe(&e)),
        };
        j.facts.stale_rules = rules
            .iter()
            .map(|r| {
                format!(
                    "{} {}% → {}",
                    r.name, r.reroute_percentage, r.action_host_name
                )
            })
            .collect();
        if now.version.as_deref() == Some(self.plan.expected_version.as_str())
            && rules.is_empty()
            && now.good(&self.plan.endpoints, None)
        {
            return R::AlreadyDeployed;
        }
        if !rules.is_empty() {
            return match self.plan.stale {
                StalePolicy::Clear => {
                    tracing::warn!(
                        title = "Leftover traffic routing",
                        "production still routes traffic by old rules ({}); they will be removed",
                        j.facts.stale_rules.join("; ")
                    );
                    R::StaleRouting
                }
                StalePolicy::Fail => R::Failed(format!(
                    "production has leftover routing rules ({}); clear them or set on-stale-routing: clear",
                    j.facts.stale_rules.join("; ")
                )),
            };
        }
        R::Ok
    }

    /// Waits (up to the lock bound) while another run holds the lease or a
    /// site operation (a swap) is in progress.
    async fn wait_for_other_operations(&self, first: &SlotInfo) -> std::result::Result<(), String> {
        let started = Instant::now();
        let mut info = first.clone();
        loop {
            let lease = info
                .tags
                .get(LEASE_TAG)
                .and_then(|v| Lease::parse(v))
                .filter(|l| l.live() && l.run != self.plan.run_id);
            let busy = info.in_progress_operation.clone();
            if lease.is_none() && busy.is_none() {
                return Ok(());
            }
            let what = match (&lease, &busy) {
                (Some(l), _) => format!(
                    "another deploy ({}) holds the lease until {}",
                    l.run, l.expires
                ),
                (None, Some(op)) => format!("a site operation ({op}) is in progress"),
                (None, None) => String::new(),
            };
            if started.elapsed() >= self.plan.lock_wait {
                return Err(format!(
                    "{what}; waited {}s (lock-wait)",
                    self.plan.lock_wait.as_secs()
                ));
            }
            tracing::info!("{what}; waiting");
            self.cancel
                .sleep(Duration::from_secs(2).min(self.plan.lock_wait))
                .await
                .map_err(|e| e.to_string())?;
            info = self
                .app
                .slot(PRODUCTION, &self.cancel)
                .await
                .map_err(|e| describe(&e))?;
        }
    }

    async fn acquire_lease(&self, j: &mut Journal) -> R {
        let c = &self.cancel;
        let lease = Lease::new(
            &self.plan.run_id,
            self.plan.swap_timeout
                + self.plan.verify_window
                + self.plan.staging.timeout
                + Duration::from_secs(600),
        );
        let ours = BTreeMap::from([(LEASE_TAG.to_string(), lease.render())]);
        if let Err(e) = self.app.merge_tags(&ours, c).await {
            return R::Failed(describe(&e));
        }
        // Last writer wins on tags: read back to learn whether we do.
        match self.app.slot(PRODUCTION, c).await {
            Ok(p) if p.tags.get(LEASE_TAG) == Some(&lease.render()) => {
                j.lease = Some(lease.render());
                R::Ok
            }
            Ok(p) => R::Failed(format!(
                "another deploy took the lease first ({})",
                p.tags.get(LEASE_TAG).cloned().unwrap_or_default()
            )),
            Err(e) => R::Failed(describe(&e)),
        }
    }

    async fn release_lease(&self, j: &mut Journal) -> R {
        // After a promotion, record the version to roll back to.
        if j.state.outcome == Some(Outcome::Promoted)
            && let Some(previous) = &j.facts.previous_version
        {
            let tag = BTreeMap::from([(PREVIOUS_VERSION_TAG.to_string(), previous.clone())]);
            if let Err(e) = self.app.merge_tags(&tag, &self.cancel).await {
                tracing::warn!(
                    "could not record the previous version {previous} for rollback ({e}); rollback will need to-version"
                );
            }
        }
        let Some(ours) = j.lease.clone() else {
            return R::Ok;
        };
        // Delete matches the value too: a lease someone else took after ours
        // expired is left alone.
        let tag = BTreeMap::from([(LEASE_TAG.to_string(), ours)]);
        match self.app.delete_tags(&tag, &self.cancel).await {
            Ok(()) => j.lease = None,
            Err(e) => {
                tracing::warn!("could not release the deploy lease ({e}); it expires by itself")
            }
        }
        R::Ok
    }

    async fn clear_routing(&self) -> R {
        let c = &self.cancel;
        if let Err(e) = self.app.set_routing_rules(&[], c).await {
            return R::Failed(describe(&e));
        }
        match self.app.routing_rules(c).await {
            Ok(r) if r.is_empty() => R::Ok,
            Ok(r) => R::Failed(format!(
                "routing rules are still set after clearing: {}",
                rules_text(&r)
            )),
            Err(e) => R::Failed(describe(&e)),
        }
    }

    async fn upload(&self, j: &Journal) -> R {
        let (Some(package), Some(scm)) = (&self.plan.package, &j.facts.scm_host) else {
            return R::Failed("no package or no Kudu host".into());
        };
        match app_service::deploy_package(
            &self.http,
            &self.tokens,
            scm,
            package.clone(),
            self.plan.staging.timeout,
            &self.cancel,
        )
        .await
        {
            Ok(()) => R::Ok,
            Err(e) => R::Failed(e.to_string()),
        }
    }

    async fn check_staging(&self, j: &mut Journal) -> R {
        let seen = match self
            .probe
            .wait_until_good(
                &j.facts.slot_host,
                &self.plan.endpoints,
                Some(&self.plan.expected_version),
                None,
                self.plan.staging,
                &self.cancel,
            )
            .await
        {
            Ok(s) => s,
            Err(_) => return R::Cancelled,
        };
        if let Some(last) = seen.last() {
            j.facts.staging_answer =
                Some(format!("{} after {} check(s)", last.describe(), seen.len()));
        }
        match seen.last() {
            Some(o) if o.good(&self.plan.endpoints, Some(&self.plan.expected_version)) => R::Ok,
            Some(o) => R::Failed(format!(
                "staging slot '{}' is not ready after {} checks: {} (expected health {} and version {})",
                self.plan.slot,
                seen.len(),
                o.describe(),
                self.plan.endpoints.health_status,
                self.plan.expected_version
            )),
            None => R::Failed("staging was not checked".into()),
        }
    }

    async fn swap(&self, phase: Phase) -> R {
        match self
            .app
            .swap_into_production(&self.plan.slot, self.plan.swap_timeout, &self.cancel)
            .await
        {
            Ok(()) => R::Ok,
            Err(ArmError::Ambiguous { detail, .. }) => R::Ambiguous(detail),
            // A 5xx or dropped answer to the POST itself: the swap may
            // have started. Find out; never repeat it blindly.
            Err(ArmError::Unavailable { detail, .. }) => R::Ambiguous(detail),
            Err(ArmError::Cancelled(_)) => {
                R::Ambiguous(format!("{phase:?} interrupted by cancellation"))
            }
            Err(e) => R::Failed(describe(&e)),
        }
    }

    /// After an unknown outcome: wait for any site operation to end, then
    /// decide from what production serves and the recorded swap status.
    async fn resolve_swap(&self, j: &Journal, expected: Option<&str>) -> R {
        let c = &self.cancel;
        let deadline = Instant::now() + self.plan.swap_timeout;
        let info = loop {
            match self.app.slot(PRODUCTION, c).await {
                Ok(p) if p.in_progress_operation.is_none() => break p,
                Ok(_) if Instant::now() < deadline => {
                    if c.sleep(Duration::from_secs(2)).await.is_err() {
                        return R::Ambiguous("cancelled while a swap was in progress".into());
                    }
                }
                Ok(_) => return R::Ambiguous("a swap is still in progress".into()),
                Err(e) => return R::Ambiguous(describe(&e)),
            }
        };
        let now = self
            .probe
            .observe(&j.facts.production_host, &self.plan.endpoints, Some("self"))
            .await;
        match (expected, now.version.as_deref()) {
            (Some(want), Some(got)) if want == got => R::Swapped,
            (Some(_), Some(_)) => R::NotSwapped,
            _ => {
                // No version to compare: the swap status tells.
                if info.swap_status != j.facts.swap_status_before {
                    R::Swapped
                } else {
                    R::NotSwapped
                }
            }
        }
    }

    async fn verify_production(&self, j: &mut Journal) -> R {
        let started = Instant::now();
        let want = self.plan.expected_version.as_str();
        loop {
            let o = self
                .probe
                .observe(&j.facts.production_host, &self.plan.endpoints, None)
                .await;
            if !o.good(&self.plan.endpoints, Some(want)) {
                return R::Failed(format!(
                    "production check failed: {} (expected version {want})",
                    o.describe()
                ));
            }
            if started.elapsed() + self.plan.verify_interval > self.plan.verify_window {
                break;
            }
            if self.cancel.sleep(self.plan.verify_interval).await.is_err() {
                return R::Cancelled;
            }
        }
        match self.app.routing_rules(&self.cancel).await {
            Ok(r) if r.is_empty() => {}
            Ok(r) => {
                return R::Failed(format!(
                    "routing rules appeared during verification: {}",
                    rules_text(&r)
                ));
            }
            Err(e) => return R::Failed(describe(&e)),
        }
        if let Some(path) = &self.plan.endpoints.version_path {
            let sample = self
                .probe
                .sample_versions(&j.facts.production_host, path, self.plan.verify_samples)
                .await;
            j.facts.production_sample = sample.clone();
            let good = sample.get(want).copied().unwrap_or(0);
            if good != self.plan.verify_samples {
                return R::Failed(format!(
                    "{good} of {} production requests reached {want}: {sample:?}",
                    self.plan.verify_samples
                ));
            }
        }
        R::Ok
    }

    async fn verify_rollback(&self, j: &mut Journal) -> R {
        let want = j.facts.previous_version.clone();
        let o = self
            .probe
            .observe(&j.facts.production_host, &self.plan.endpoints, None)
            .await;
        if !o.good(&self.plan.endpoints, want.as_deref()) {
            return R::Failed(format!(
                "after rolling back, production answers {} (expected {})",
                o.describe(),
                want.unwrap_or_else(|| "healthy".into())
            ));
        }
        if let (Some(path), Some(want)) = (&self.plan.endpoints.version_path, &want) {
            let sample = self
                .probe
                .sample_versions(&j.facts.production_host, path, self.plan.verify_samples)
                .await;
            j.facts.production_sample = sample.clone();
            if sample.get(want).copied().unwrap_or(0) != self.plan.verify_samples {
                return R::Failed(format!(
                    "after rolling back, production serves {sample:?} (expected all {want})"
                ));
            }
        }
        R::Ok
    }
}

/// True for phases that change something (and so are not started after
/// cancellation). Reading state and giving back the lease are always done.
fn changes(phase: Phase) -> bool {
    !matches!(
        phase,
        Phase::Preflight
            | Phase::ResolveSwap
            | Phase::ResolveSwapBack
            | Phase::ReleaseLease
            | Phase::Done
    )
}

fn rules_text(rules: &[RoutingRule]) -> String {
    rules
        .iter()
        .map(|r| format!("{} {}%", r.name, r.reroute_percentage))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A lease value: `run;expires-rfc3339`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub run: String,
    /// When it lapses.
    pub expires: String,
}

impl Lease {
    fn new(run: &str, ttl: Duration) -> Lease {
        let expires = chrono::Utc::now()
            + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        Lease {
            run: run.replace(';', ","),
            expires: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Parses a tag value; `None` if it is not one of ours.
    pub fn parse(v: &str) -> Option<Lease> {
        let (run, expires) = v.rsplit_once(';')?;
        chrono::DateTime::parse_from_rfc3339(expires).ok()?;
        Some(Lease {
            run: run.into(),
            expires: expires.into(),
        })
    }

    /// Whether it has not lapsed.
    pub fn live(&self) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.expires).is_ok_and(|e| e > chrono::Utc::now())
    }

    fn render(&self) -> String {
        format!("{};{}", self.run, self.expires)
    }
}

impl Journal {
    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<Outcome> {
        self.state.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_trip_and_expire() {
        let l = Lease::new("contoso/payments#42.1", Duration::from_secs(60));
        let back = Lease::parse(&l.render()).unwrap();
        assert_eq!(back, l);
        assert!(back.live());
        assert!(!Lease::parse("x;2000-01-01T00:00:00Z").unwrap().live());
        assert_eq!(Lease::parse("not a lease"), None);
        assert!(Lease::new("a;b", Duration::from_secs(1)).run.contains(','));
    }

    #[test]
    fn only_read_phases_run_after_cancellation() {
        assert!(!changes(Phase::ReleaseLease));
        assert!(changes(Phase::Swap));
        assert!(changes(Phase::SwapBack));
    }
}
