//! One service's change — a deploy or a rollback — under the service's
//! lock: what every command that changes production shares (`deploy`, the
//! manifest's deploys and rollbacks, `rollback`, the post stage). Not a
//! command itself; commands use it and never each other.
//!
//! The order is the guarantee (ADR 8):
//! 1. take the service's lock (waiting, asking a deploy to stop for an
//!    emergency rollback, taking over a dead holder);
//! 2. if the holder before us died mid-change, restore production from its
//!    last intent first;
//! 3. only then read the service (preflight) and change it — nothing read
//!    before the wait is used after it;
//! 4. give the lock back with the final journal as its intent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::action::console::Console;
use crate::archive::Archive;
use crate::azure::arm::Arm;
use crate::azure::auth::TokenProvider;
use crate::cancel::Cancel;
use crate::commands::Report;
use crate::commands::{CommandError, Ctx};
use crate::config::{AzureConfig, RollbackConfig};
use crate::lock::{Guard, Holder, LockError, LockNews, Request, Store, Timing};
use crate::manifest::Service;
use crate::probe::{Endpoints, Probe, Schedule};
use crate::rollout::canary::SourceClients;
use crate::rollout::driver::{
    DeployPlan, Facts, Journal, Place, Rollout, StalePolicy, intent, journal_from_intent,
    show_sample,
};
use crate::rollout::platforms::AzureAccess;
use crate::rollout::{Outcome, State, Stop, StopKind};

/// What a run talks to remote APIs with: the shared HTTP client, Azure
/// (tokens and ARM) when it signed in, and where a Kubernetes connection
/// comes from when a service is on Kubernetes.
pub struct Clients {
    /// Shared HTTP client (TLS, resolution, timeouts).
    pub http: reqwest::Client,
    /// Azure, when the configuration signed in.
    pub azure: Option<AzureAccess>,
    /// The kubeconfig (or the pod's service account), when one is needed.
    pub kube: Option<crate::kube::Source>,
}

impl Clients {
    /// ARM's read and write counts (zero without Azure).
    pub fn arm_counts(&self) -> (u64, u64) {
        self.azure.as_ref().map_or((0, 0), |a| a.arm.counts())
    }
}

/// Builds the clients: Azure's when `azure` is given, with `http`'s trust
/// and resolution either way.
pub fn clients(
    console: &Console,
    azure: Option<&AzureConfig>,
    http: &crate::http::HttpSettings,
    kube: Option<&crate::kube::Source>,
) -> Result<Clients, CommandError> {
    let settings = azure.map_or(http, |a| &a.http);
    let client = crate::http::client(settings).map_err(|e| CommandError::Failed(e.to_string()))?;
    let azure = azure.map(|azure| {
        let tokens = Arc::new(TokenProvider::new(
            client.clone(),
            azure.authority_host.clone(),
            &azure.arm_endpoint,
            azure.identity.clone(),
            console.clone(),
        ));
        let arm = Arm::new(client.clone(), azure.arm_endpoint.clone(), tokens.clone());
        AzureAccess { arm, tokens }
    });
    Ok(Clients {
        http: client,
        azure,
        kube: kube.cloned(),
    })
}

/// Writes a JSON audit log (creating its directory); warns and returns false
/// when it cannot, so a full disk never turns a good deploy into a failure.
pub fn write_audit(path: &std::path::Path, audit: &serde_json::Value) -> bool {
    // An audit log is kept and shared (an artifact, a ticket): a URL's
    // query — where a SAS token lives — never reaches it.
    fn without_queries(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s)
                if (s.starts_with("https://") || s.starts_with("http://")) && s.contains('?') =>
            {
                *s = crate::config::service::redacted_url(s);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(without_queries),
            serde_json::Value::Object(m) => m.values_mut().for_each(without_queries),
            _ => {}
        }
    }
    let mut audit = audit.clone();
    without_queries(&mut audit);
    let text = match serde_json::to_string_pretty(&audit) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot encode the audit log: {e}");
            return false;
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        tracing::warn!("cannot create {}: {e}", dir.display());
        return false;
    }
    match std::fs::write(path, text) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot write the audit log {}: {e}", path.display());
            false
        }
    }
}

/// The lock store and the package archive of a run. Both live in the
/// repository and go through a GitHub client whose cancellation is not the
/// run's: a lock is given back, and a package archived, after Ctrl-C too.
#[derive(Clone, Default)]
pub struct Keeper {
    /// Where locks live (`None`: `lock: none`).
    pub store: Option<Store>,
    /// Where packages are kept for rollbacks.
    pub archive: Option<Archive>,
    /// Lock timings.
    pub timing: Timing,
}

impl Keeper {
    /// Signs in to GitHub when the configuration asks for the lock or
    /// allows the archive. A lock that cannot be had is an error before
    /// anything changes; an archive that cannot be had is a warning.
    pub async fn connect(ctx: &Ctx) -> Result<Keeper, CommandError> {
        let lock = ctx.config.lock.clone().unwrap_or_default();
        let mut keeper = Keeper {
            store: None,
            archive: None,
            timing: Timing {
                ttl: lock.ttl,
                poll: (lock.ttl / 6).clamp(Duration::from_millis(200), Duration::from_secs(5)),
            },
        };
        if lock.lease {
            keeper.store = Some(Store::Lease(lease_store(ctx)?));
        }
        let access = ctx.config.records.as_ref().and_then(|r| r.github.clone());
        let Some(access) = access else {
            if lock.github {
                return Err(CommandError::Failed(
                    "the deploy lock needs a GitHub token and repository; give github-token and repository, or set lock: none".into(),
                ));
            }
            return Ok(keeper);
        };
        let http =
            crate::http::client(&access.http).map_err(|e| CommandError::Failed(e.to_string()))?;
        // Not the run's cancellation: the lock must be released after Ctrl-C.
        let own = Cancel::new();
        let token = match crate::github::auth::token(&http, &access, &ctx.console, &own).await {
            Ok(t) => t,
            Err(e) if lock.github => {
                return Err(CommandError::Failed(format!(
                    "cannot sign in to GitHub for the deploy lock: {e}; nothing was changed"
                )));
            }
            Err(e) => {
                tracing::warn!("cannot sign in to GitHub ({e}); no package archive this run");
                return Ok(keeper);
            }
        };
        let api = crate::github::Api::new(http, &access, token, own);
        keeper.archive = Some(Archive::new(api.clone(), ctx.identity.id.clone()));
        if lock.github {
            keeper.store = Some(Store::Github(crate::lock::github::GithubStore::new(api)));
        } else if keeper.store.is_none() {
            tracing::warn!(
                "lock: none — nothing stops another run from changing this app at the same time"
            );
        }
        Ok(keeper)
    }
}

/// The Lease store of `lock: lease`: on the cluster of the run's
/// Kubernetes services, in the namespace given (else the context's).
fn lease_store(ctx: &Ctx) -> Result<crate::lock::lease::LeaseStore, CommandError> {
    let (source, settings) = match (&ctx.config.deploy, &ctx.config.rollback) {
        (Some(d), _) => (d.kube.as_ref(), &d.settings),
        (None, Some(r)) => (r.kube.as_ref(), &r.settings),
        (None, None) => (None, &BTreeMap::new()),
    };
    let source = source.ok_or_else(|| {
        CommandError::Failed(
            "lock: lease needs a Kubernetes connection (kubeconfig); nothing was changed".into(),
        )
    })?;
    let kube = crate::kube::Kube::connect(source, settings.get("kube-context").map(String::as_str))
        .map_err(|e| {
            CommandError::Failed(format!(
                "cannot connect to the cluster for the deploy lock: {e}; nothing was changed"
            ))
        })?;
    let namespace = settings
        .get("namespace")
        .cloned()
        .unwrap_or_else(|| kube.namespace.clone());
    Ok(crate::lock::lease::LeaseStore::new(kube, namespace))
}

/// How a change asks for the lock.
#[derive(Debug, Clone)]
pub struct LockAsk {
    /// What the holder is doing, for whoever waits (`deploy 2.4.1`).
    pub command: String,
    /// A deploy may be asked to stop by an emergency rollback.
    pub preemptible: bool,
    /// A rollback asks a preemptible holder to stop, with its reason.
    pub preempt: Option<String>,
    /// After asking, how much longer to wait for the holder's restore.
    pub preempt_grace: Duration,
    /// How long to wait for a live holder.
    pub wait: Duration,
    /// The journal the post stage reads: written as soon as the lock is
    /// held, so a run killed before its first phase still gives it back.
    pub journal: Option<std::path::PathBuf>,
}

/// The lock, held (or `lock: none`), and what taking it involved.
pub struct Held {
    guard: Option<Guard>,
    /// What people should know (who we waited for, whom we took over).
    pub notes: Vec<String>,
    /// The restore of a dead holder's change, when there was one.
    pub reconciled: Option<Journal>,
}

impl Held {
    /// Gives the lock back, leaving `last` as its intent.
    pub async fn release(self, last: Option<&Journal>) {
        if let Some(g) = self.guard
            && let Err(e) = g.release(last.map(intent)).await
        {
            tracing::warn!("could not give the deploy lock back ({e}); it lapses by itself");
        }
    }

    /// The guard, for the rollout.
    pub fn guard(&self) -> Option<Guard> {
        self.guard.clone()
    }
}

/// The plan a restore runs with: the journal's own settings over `base`.
fn restore_plan(base: Option<&DeployPlan>, j: &Journal) -> DeployPlan {
    let s = j.restore.as_ref();
    let endpoints = s
        .map(|s| s.endpoints.clone())
        .or_else(|| base.map(|b| b.endpoints.clone()))
        .unwrap_or(Endpoints {
            health_path: crate::probe::HEALTH_PATH.into(),
            health_status: 200,
            version_path: Some(crate::probe::VERSION_PATH.into()),
        });
    let swap_timeout = s
        .map(|s| Duration::from_secs(s.swap_timeout_secs.max(10)))
        .or_else(|| base.map(|b| b.swap_timeout))
        .unwrap_or(Duration::from_secs(300));
    DeployPlan {
        slot: match s.and_then(|s| s.place.staging_slot()) {
            Some(slot) => slot.to_string(),
            None => base
                .map(|b| b.slot.clone())
                .unwrap_or_else(|| "staging".into()),
        },
        package: None,
        endpoints,
        expected_version: j.expected_version.clone(),
        staging: Schedule {
            attempts: 30,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(300),
        },
        verify_window: Duration::ZERO,
        verify_interval: Duration::from_secs(1),
        verify_samples: s
            .map(|s| s.verify_samples)
            .or_else(|| base.map(|b| b.verify_samples))
            .unwrap_or(50),
        swap_timeout,
        stale: StalePolicy::Clear,
        lock_wait: Duration::ZERO,
        run_id: base.map(|b| b.run_id.clone()).unwrap_or_default(),
        journal: base.and_then(|b| b.journal.clone()),
        image: None,
        canary: None,
        rollback: !j.state.swap_back,
        revision: None,
        patience: Duration::from_secs(900),
    }
}

/// How a rollout starts: under which lock and cancellation, and from which
/// journal (a resumed one, for a restore).
pub struct Start {
    /// The service's lock, held.
    pub lock: Option<Guard>,
    /// The rollout's cancellation.
    pub cancel: Cancel,
    /// The journal to resume, if any.
    pub from: Option<Journal>,
}

/// Runs a rollout on `target` (from `start.from` when resuming). Callers box
/// it: a rollout's future is large, and every command awaits one.
pub(super) async fn roll<T: crate::rollout::target::Target>(
    target: T,
    probe: Probe,
    plan: DeployPlan,
    sources: Option<SourceClients>,
    place: &Place,
    start: Start,
) -> Journal {
    let rollout = Rollout {
        target,
        probe,
        plan,
        sources,
        cancel: start.cancel,
        lock: start.lock,
        place: Some(place.clone()),
    };
    match start.from {
        Some(j) => rollout.run_from(j).await,
        None => rollout.run().await,
    }
}

/// Takes the service's lock (`lock: none`: nothing to take). When the
/// holder before us died mid-change, production is restored from its last
/// intent before this returns. An error means nothing was changed.
pub async fn take(
    ctx: &Ctx,
    clients: &Clients,
    keeper: &Keeper,
    place: &Place,
    ask: &LockAsk,
    cancel: &Cancel,
) -> Result<Held, String> {
    // A mistake in the inputs is refused before anything is written, the
    // lock included.
    super::platforms::precheck(ctx, clients, place, cancel)
        .await
        .map_err(|why| format!("{why}; nothing was changed"))?;
    let mut held = Held {
        guard: None,
        notes: Vec::new(),
        reconciled: None,
    };
    let Some(store) = &keeper.store else {
        return Ok(held);
    };
    let name = place.name().to_string();
    let req = Request {
        key: place.key(),
        holder: Holder::new(&ctx.identity, ask.command.clone(), ask.preemptible),
        wait: ask.wait,
        preempt: ask.preempt.clone(),
        preempt_grace: ask.preempt_grace,
        timing: keeper.timing,
    };
    let console = ctx.console.clone();
    let (guard, acquired) = Guard::acquire(store.clone(), req, cancel, |news| match news {
        LockNews::Said(s) => console.info(&format!("{name}: {s}")),
        LockNews::Waiting {
            holder,
            waited,
            at_most,
        } => console.progress_done(
            &format!(
                "{name}: waiting for {holder} to finish · {} s, at most {} s left",
                waited.as_secs(),
                at_most.saturating_sub(waited).as_secs()
            ),
            u8::try_from((100 * waited.as_millis() / at_most.as_millis().max(1)).min(100)).ok(),
        ),
    })
    .await
    .map_err(|e| match e {
        LockError::Cancelled(c) => {
            format!("stopped while waiting for the deploy lock ({c}); nothing was changed")
        }
        other => other.to_string(),
    })?;
    guard.watch(cancel);
    held.guard = Some(guard.clone());
    if let Some(path) = &ask.journal {
        let mut first = refused("", String::new());
        first.state = State::new(false);
        first.lock = Some(guard.handle().await);
        match serde_json::to_vec_pretty(&first) {
            Ok(bytes) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = std::fs::write(path, bytes) {
                    tracing::warn!("cannot write the journal {}: {e}", path.display());
                }
            }
            Err(e) => tracing::warn!("cannot encode the journal: {e}"),
        }
    }
    if let Some(by) = &acquired.preempted {
        held.notes.push(format!(
            "asked {by} to stop; it restored production and gave the lock back"
        ));
    }
    let Some(previous) = &acquired.previous else {
        return Ok(held);
    };
    let last = previous.intent.as_ref().and_then(journal_from_intent);
    if let Some(why) = &acquired.took_over {
        held.notes.push(format!(
            "took the deploy lock over from {} ({why})",
            previous.holder.describe()
        ));
    }
    let Some(last) = last else {
        return Ok(held);
    };
    if last.state.outcome == Some(Outcome::NeedsAttention) {
        let why = last
            .state
            .rollback_failure
            .clone()
            .or(last.state.failure.clone())
            .unwrap_or_default();
        if ask.preemptible {
            // A deploy would read whatever serves now as the last known
            // good, and record it as the rollback target. A rollback is the
            // way out: it targets a version and verifies it.
            let describe = previous.holder.describe();
            held.release(Some(&last)).await;
            return Err(format!(
                "the last change of {} ({describe}) ended needs-attention ({why}), so what production serves now is not known to be good; put it on a known version first with `rollback` (to-version if needed), then deploy again. Nothing was changed",
                place.name()
            ));
        }
        held.notes.push(format!(
            "the last change ({}) ended needs-attention: {why}; production was read again before this rollback",
            previous.holder.describe(),
        ));
    }
    if acquired.took_over.is_none() || !last.state.at_risk() {
        return Ok(held);
    }
    // The holder died mid-change: restore from its journal first.
    let place = last
        .restore
        .as_ref()
        .map(|r| r.place.clone())
        .unwrap_or_else(|| place.clone());
    tracing::warn!(
        title = "Restoring after a run that died",
        "{} stopped during '{}' and never finished; restoring production from its journal before anything else",
        previous.holder.describe(),
        crate::rollout::driver::phase_name(last.state.phase)
    );
    let mut plan = restore_plan(None, &last);
    // The post stage reads this run's journal: it tracks the restore too.
    plan.journal = ask.journal.clone();
    let state = crate::rollout::resume(
        last.state.clone(),
        Stop {
            kind: StopKind::Resumed,
            detail: format!("taken over from {}", previous.holder.who),
        },
    );
    let out = super::platforms::drive(
        ctx,
        clients,
        keeper,
        &place,
        plan,
        Start {
            lock: Some(guard),
            cancel: Cancel::new(),
            from: Some(Journal { state, ..last }),
        },
    )
    .await;
    let bad = out.outcome() == Some(Outcome::NeedsAttention);
    let serving = show_sample(&out.facts.serving_at_end);
    held.notes.push(format!(
        "restored after {}: {} (production serves {serving})",
        previous.holder.describe(),
        out.outcome().map_or("unknown", Outcome::as_str)
    ));
    if bad {
        let why = out
            .state
            .rollback_failure
            .clone()
            .or(out.state.failure.clone())
            .unwrap_or_default();
        held.release(Some(&out)).await;
        return Err(format!(
            "the run before this one ({}) died mid-change and production could not be restored: {why}; nothing else was changed",
            previous.holder.describe()
        ));
    }
    held.reconciled = Some(out);
    Ok(held)
}

/// A journal for a change that never started (the lock was not had, or
/// its target could not be resolved).
pub fn refused(expected_version: &str, why: String) -> Journal {
    let mut state = State::new(false);
    state.failure = Some(why);
    state.outcome = Some(Outcome::FailedBeforeChange);
    state.phase = crate::rollout::Phase::Done;
    Journal {
        state,
        facts: Facts::default(),
        phases: Vec::new(),
        lock: None,
        expected_version: expected_version.to_string(),
        restore: None,
    }
}

/// The post stage for one journal: continues as its lock's holder and, when
/// production may serve an unverified build, restores it. `None` when there
/// was nothing to do.
pub async fn finish_interrupted(
    ctx: &Ctx,
    clients: &Clients,
    keeper: &Keeper,
    base: Option<&DeployPlan>,
    journal: Journal,
) -> Result<Option<Journal>, String> {
    let at_risk = journal.state.at_risk();
    if !at_risk && journal.lock.is_none() {
        return Ok(None);
    }
    let mut guard = None;
    // The restore's own cancellation: the lock's heartbeat cancels it if the
    // lock is lost (someone else may be changing the app then).
    let cancel = Cancel::new();
    if let (Some(store), Some(handle)) = (&keeper.store, &journal.lock) {
        match Guard::resume(store.clone(), handle, keeper.timing).await {
            Ok((g, _)) => {
                g.watch(&cancel);
                guard = Some(g);
            }
            Err(LockError::Lost { holder, .. }) => {
                ctx.console.info(&format!(
                    "post stage: {holder} holds the lock now (it took it over and restored from this run's journal, or will); the post stage changes nothing"
                ));
                return Ok(None);
            }
            Err(e @ LockError::Unavailable { .. }) => {
                // Nobody can take a lock the store cannot write either; a
                // journal at risk is restored now rather than never.
                tracing::warn!("post stage: cannot reach the deploy lock ({e}); restoring anyway");
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if !at_risk {
        if let Some(g) = guard
            && let Err(e) = g.release(Some(intent(&journal))).await
        {
            tracing::warn!("post stage: could not give the lock back ({e}); it lapses by itself");
        }
        return Ok(None);
    }
    let Some(settings) = journal.restore.clone() else {
        return Err("the journal does not say where the service runs".into());
    };
    let plan = restore_plan(base, &journal);
    let state = crate::rollout::resume(
        journal.state.clone(),
        Stop {
            kind: StopKind::Resumed,
            detail: "the post stage, after the main stage stopped".into(),
        },
    );
    let out = super::platforms::drive(
        ctx,
        clients,
        keeper,
        &settings.place,
        plan,
        Start {
            lock: guard.clone(),
            cancel,
            from: Some(Journal { state, ..journal }),
        },
    )
    .await;
    if let Some(g) = guard
        && let Err(e) = g.release(Some(intent(&out))).await
    {
        tracing::warn!("post stage: could not give the lock back ({e}); it lapses by itself");
    }
    Ok(Some(out))
}

pub use crate::rollout::platforms::Aim;

/// What production serves at the end, as one version, when it serves
/// exactly one (the `deployed-version` output); empty otherwise.
pub fn serving_one(j: &Journal) -> String {
    let answered: Vec<_> = j
        .facts
        .serving_at_end
        .iter()
        .filter(|(_, n)| **n > 0)
        .collect();
    match answered.as_slice() {
        [(v, _)] if !v.starts_with("HTTP ") && *v != "error" && *v != "unparsable" => (*v).clone(),
        _ => String::new(),
    }
}

/// What happened to one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceResult {
    /// The app.
    pub app: String,
    /// What production served before.
    pub before: Option<String>,
    /// The version rolled back to.
    pub target: Option<String>,
    /// `rolled-back`, `unchanged`, `failed`, `needs-attention` or
    /// `interrupted`.
    pub result: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// Production's version sample at the end.
    pub sample: BTreeMap<String, usize>,
    /// What production serves at the end, when it is one version.
    pub serving: String,
    /// Production's URL.
    pub url: String,
    /// What happened on the way (the lock, a re-stage).
    pub notes: Vec<String>,
}

impl ServiceResult {
    /// A service not rolled back yet (`failed` until it is).
    pub fn new(app: &str, target: Option<String>) -> ServiceResult {
        ServiceResult {
            app: app.to_string(),
            before: None,
            target,
            result: "failed",
            error: None,
            sample: BTreeMap::new(),
            serving: String::new(),
            url: String::new(),
            notes: Vec::new(),
        }
    }
}

/// The `result` of one service's rollback, from its rollout.
pub fn result_of(j: &Journal) -> &'static str {
    match j.outcome() {
        Some(Outcome::Promoted) => "rolled-back",
        Some(Outcome::Unchanged) => "unchanged",
        Some(Outcome::NeedsAttention) => "needs-attention",
        Some(Outcome::Interrupted | Outcome::Preempted) => "interrupted",
        _ => "failed",
    }
}

/// What a rollback of one service needs besides where it is.
#[derive(Debug, Clone)]
pub struct RollbackSettings {
    /// Why (the lock's stop request carries it).
    pub reason: String,
    /// Explicit target version.
    pub to_version: Option<String>,
    /// Health and version endpoints.
    pub endpoints: Endpoints,
    /// Requests that must all reach the target.
    pub verify_samples: usize,
    /// Bound on the swap.
    pub swap_timeout: Duration,
    /// How long to wait for the lock.
    pub lock_wait: Duration,
    /// Where journals go.
    pub journal_dir: Option<std::path::PathBuf>,
    /// Ask a running deploy to stop (an emergency rollback) rather than
    /// wait for it.
    pub preempt: bool,
}

impl RollbackSettings {
    /// The settings of the `rollback` command.
    pub fn of(config: &RollbackConfig) -> RollbackSettings {
        RollbackSettings {
            reason: config.reason.clone(),
            to_version: config.to_version.clone(),
            endpoints: config.endpoints.clone(),
            verify_samples: config.verify_samples,
            swap_timeout: config.swap_timeout,
            lock_wait: config.lock_wait,
            journal_dir: config.audit_log.parent().map(std::path::Path::to_path_buf),
            preempt: true,
        }
    }
}

/// Rolls one service back: takes its lock (asking a running deploy to
/// stop), finds the target, rolls out the known-good version, gives the
/// lock back. Also used by the manifest's `on-failure` rollbacks.
pub async fn rollback_one(
    ctx: &Ctx,
    clients: &Clients,
    keeper: &Keeper,
    place: &Place,
    settings: &RollbackSettings,
    recorded: Option<String>,
) -> (ServiceResult, Option<Journal>) {
    let mut r = ServiceResult::new(place.name(), settings.to_version.clone());
    let cancel = ctx.cancel.child();
    let journal_path = settings
        .journal_dir
        .as_ref()
        .map(|d| d.join(format!("expedite-journal-rollback-{}.json", place.name())));
    let ask = LockAsk {
        command: "rollback".into(),
        preemptible: false,
        preempt: settings.preempt.then(|| settings.reason.clone()),
        // A deploy asked to stop may be mid-swap: it resolves the swap by
        // reading state, swaps back and verifies.
        preempt_grace: settings.swap_timeout * 2 + Duration::from_secs(120),
        wait: settings.lock_wait,
        journal: journal_path.clone(),
    };
    let held = match take(ctx, clients, keeper, place, &ask, &cancel).await {
        Ok(h) => h,
        Err(why) => {
            r.error = Some(why);
            return (r, None);
        }
    };
    r.notes = held.notes.clone();
    for n in &held.notes {
        ctx.console.info(&format!("{}: {n}", place.name()));
    }
    let aim = match super::platforms::aim(
        ctx,
        clients,
        place,
        settings.to_version.as_deref(),
        recorded,
        &cancel,
    )
    .await
    {
        Ok(a) => a,
        Err(why) => {
            held.release(None).await;
            r.error = Some(why);
            return (r, None);
        }
    };
    ctx.console.info(&format!(
        "{}: rolling back to {} ({})",
        place.name(),
        aim.version,
        aim.from
    ));
    r.target = Some(aim.version.clone());
    let plan = DeployPlan {
        slot: place.staging_slot().unwrap_or_default().to_string(),
        package: None,
        endpoints: settings.endpoints.clone(),
        expected_version: aim.version.clone(),
        staging: Schedule {
            attempts: 60,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(300),
        },
        verify_window: Duration::ZERO,
        verify_interval: Duration::from_secs(1),
        verify_samples: settings.verify_samples,
        swap_timeout: settings.swap_timeout,
        stale: StalePolicy::Clear,
        lock_wait: settings.lock_wait,
        run_id: ctx.identity.id.clone(),
        journal: journal_path,
        image: None,
        canary: None,
        rollback: true,
        revision: aim.revision.clone(),
        patience: Duration::from_secs(900),
    };
    let journal = super::platforms::drive(
        ctx,
        clients,
        keeper,
        place,
        plan,
        Start {
            lock: held.guard(),
            cancel: cancel.clone(),
            from: None,
        },
    )
    .await;
    held.release(Some(&journal)).await;
    r.before = journal.facts.previous_version.clone();
    r.url = if journal.facts.production_host.is_empty() {
        String::new()
    } else {
        format!("https://{}", journal.facts.production_host)
    };
    r.sample = journal.facts.serving_at_end.clone();
    r.serving = serving_one(&journal);
    r.notes.extend(journal.facts.kept.iter().cloned());
    r.result = result_of(&journal);
    if !matches!(r.result, "rolled-back" | "unchanged") {
        r.error = Some(
            journal
                .state
                .rollback_failure
                .clone()
                .or(journal.state.failure.clone())
                .unwrap_or_else(|| format!("ended {}", r.result)),
        );
    } else if r.serving != aim.version {
        // Never report what production does not serve.
        r.result = "needs-attention";
        r.error = Some(format!(
            "production serves {} at the end, not {}",
            show_sample(&r.sample),
            aim.version
        ));
    }
    (r, Some(journal))
}

/// Runs a manifest command with the service's name and version in the
/// environment (never spliced into the command text), bounded in time; its
/// output is shown fenced.
pub async fn manifest_command(
    ctx: &Ctx,
    s: &Service,
    version: &str,
    what: &str,
    command: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("EXPEDITE_SERVICE", &s.name)
        .env("EXPEDITE_VERSION", version)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::select! {
        out = tokio::time::timeout(timeout, cmd.output()) => out,
        _ = ctx.cancel.cancelled() => return Err(format!("{what} cancelled")),
    };
    let out = match out {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("cannot run the {what} command: {e}")),
        Err(_) => {
            return Err(format!(
                "the {what} command did not finish within {}s (check-timeout)",
                timeout.as_secs()
            ));
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.trim().is_empty() {
        ctx.console
            .untrusted(&format!("{} {what}", s.name), text.trim_end());
    }
    if out.status.success() {
        return Ok(());
    }
    // The last thing it printed usually says why; the log has the rest.
    let last = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {}", crate::text::clip(l, 300)))
        .unwrap_or_default();
    Err(format!(
        "the {what} command exited with {}{last}",
        out.status
    ))
}

/// State entry pointing the post stage at the journals (a JSON list of
/// paths; older runs wrote one path).
pub const STATE_JOURNAL: &str = "expedite-journal";

/// Records `paths` for the post stage.
pub fn save_journal_paths(ctx: &Ctx, paths: &[std::path::PathBuf]) {
    let list: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let value = serde_json::to_string(&list).unwrap_or_default();
    if let Err(e) = ctx.sinks.save_state(STATE_JOURNAL, &value) {
        tracing::warn!("cannot record the journal for the post stage: {e}");
    }
}

/// The post stage: finishes what the main stage's journals say is left —
/// restores production where it may serve an unverified build (from the
/// phase that may have been in flight), gives the locks back.
pub async fn post(
    ctx: &Ctx,
    azure: Option<&AzureConfig>,
    http: &crate::http::HttpSettings,
    kube: Option<&crate::kube::Source>,
    base: Option<&DeployPlan>,
) -> Result<Report, CommandError> {
    let paths: Vec<std::path::PathBuf> = match ctx.env.get(&format!("STATE_{STATE_JOURNAL}")) {
        Some(v) => serde_json::from_str::<Vec<String>>(v)
            .map(|l| l.into_iter().map(std::path::PathBuf::from).collect())
            .unwrap_or_else(|_| vec![std::path::PathBuf::from(v)]),
        None => base.and_then(|b| b.journal.clone()).into_iter().collect(),
    };
    let journals: Vec<(std::path::PathBuf, Journal)> = paths
        .into_iter()
        .filter_map(|p| {
            let j = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Journal>(&b).ok())?;
            Some((p, j))
        })
        .collect();
    if journals
        .iter()
        .all(|(_, j)| !j.state.at_risk() && j.lock.is_none())
    {
        ctx.console
            .info("post stage: the deploy left nothing to finish");
        return Ok(Report {
            success: true,
            ..Report::default()
        });
    }
    let _group = ctx
        .console
        .group("post stage: finishing the interrupted deploy");
    let clients = clients(&ctx.console, azure, http, kube)?;
    let keeper = Keeper::connect(ctx).await.unwrap_or_default();
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for (path, journal) in journals {
        let name = journal
            .restore
            .as_ref()
            .map(|r| r.place.name().to_string())
            .unwrap_or_else(|| "the service".into());
        match finish_interrupted(ctx, &clients, &keeper, base, journal).await {
            Ok(None) => done.push(format!("{name}: the lock was given back")),
            Ok(Some(out)) => {
                let outcome = out.outcome().unwrap_or(Outcome::NeedsAttention);
                let serving = show_sample(&out.facts.serving_at_end);
                if outcome == Outcome::NeedsAttention {
                    errors.push(format!(
                        "post stage: {name}: {}; production serves {serving}; production needs a human",
                        out.state
                            .rollback_failure
                            .clone()
                            .or(out.state.failure.clone())
                            .unwrap_or_default()
                    ));
                } else {
                    done.push(format!(
                        "{name}: restored — production serves {serving} ({})",
                        outcome.as_str()
                    ));
                }
                let text = serde_json::to_vec_pretty(&out).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text) {
                    tracing::warn!("cannot update the journal {}: {e}", path.display());
                }
            }
            Err(e) => errors.push(format!("post stage: {name}: {e}; production needs a human")),
        }
    }
    let message = format!(
        "post stage finished the interrupted deploy: {}",
        if done.is_empty() {
            "nothing restored".to_string()
        } else {
            done.join("; ")
        }
    );
    if !done.is_empty() {
        ctx.console.annotate(
            crate::action::escape::Level::Warning,
            &crate::action::escape::Annotation::message(message),
        );
    }
    Ok(Report {
        success: errors.is_empty(),
        summary: format!(
            "### ⏹️ Interrupted deploy finished by the post stage\n\n{}",
            done.iter()
                .map(|d| format!("- {}\n", crate::report::md_code(d)))
                .collect::<String>()
        ),
        errors,
        ..Report::default()
    })
}
