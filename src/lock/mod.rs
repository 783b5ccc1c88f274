//! One change at a time per service (invariant 6): a lock whose every
//! transition is a compare-and-set, so two runs can never both believe they
//! hold it — whatever their timing (ADR 8).
//!
//! The lock is a chain of small records. Taking a free or released lock,
//! renewing it, recording what the holder is about to do (its *intent*),
//! asking the holder to stop, and releasing it each append one record
//! *only if the chain still ends where the writer last saw it* — the store
//! refuses the write otherwise, and the writer reads again. The GitHub store
//! ([`github`]) keeps the chain as commits on `refs/expedite/locks/…`:
//! creating a ref that exists, and moving a ref other than by a
//! fast-forward, are refused atomically by GitHub (422).
//!
//! - A holder whose lock expired, or whose workflow run has completed, is
//!   *stale*: the next run takes the lock over with a compare-and-set (two
//!   runs taking over at once: one wins) and, from the stale holder's last
//!   intent, restores production before doing its own work.
//! - An emergency rollback does not wait out a 30-minute canary: it appends
//!   a *stop request* to a preemptible holder's chain. The holder's
//!   heartbeat notices within one poll, the rollout stops at its next
//!   checkpoint, restores and releases; the rollback then takes the lock.
//! - The heartbeat renews the lock well before it expires; a holder that
//!   finds someone else's record at the end of the chain has lost the lock
//!   and stops without another change.
//!
//! The post stage continues as the main stage's holder: its identity and
//! the chain's tip are in the journal.
//!
//! A second store keeps the record in a Kubernetes Lease ([`lease`]), whose
//! `resourceVersion` is the API server's compare-and-set; the protocol
//! tests run against both.

pub mod github;
pub mod lease;
#[cfg(test)]
mod memory;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::action::identity::{ActionsRun, RunIdentity};
use crate::cancel::{Cancel, CancelReason, Cancelled};

/// The record format's version.
pub const SCHEMA: u32 = 1;

/// Which service a lock serialises: a stable, lower-case path
/// (`{subscription}/{resource-group}/{app}`) and a name for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockKey {
    /// Path components, lower-case, ref-safe.
    pub path: String,
    /// For people: the app's name.
    pub display: String,
}

impl LockKey {
    /// The key of an Azure app (App Service and Container Apps share the
    /// namespace: one lock per resource name in a group).
    pub fn azure(subscription: &str, resource_group: &str, app: &str) -> LockKey {
        let part = |s: &str| {
            let mut p: String = s
                .to_ascii_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            if p.is_empty() {
                p.push('-');
            }
            p
        };
        LockKey {
            path: format!(
                "{}/{}/{}",
                part(subscription),
                part(resource_group),
                part(app)
            ),
            display: app.to_string(),
        }
    }
}

/// Held or given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockState {
    /// Someone holds it until `expires`.
    Held,
    /// Free; the record says who held it last and what they left.
    Released,
}

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The run's identity (unique per process).
    pub id: String,
    /// For people.
    pub who: String,
    /// What it is doing: `deploy 2.4.1`, `rollback to 2.4.0`.
    pub command: String,
    /// The run's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The workflow run (staleness is checked against it).
    #[serde(default)]
    pub run: Option<ActionsRun>,
    /// Whether an emergency rollback may ask it to stop (a deploy may be;
    /// a rollback and a post stage are short and not).
    #[serde(default)]
    pub preemptible: bool,
}

impl Holder {
    /// This run as a holder doing `command`.
    pub fn new(me: &RunIdentity, command: impl Into<String>, preemptible: bool) -> Holder {
        Holder {
            id: me.id.clone(),
            who: me.who.clone(),
            command: command.into(),
            url: me.url.clone(),
            run: me.run.clone(),
            preemptible,
        }
    }

    /// "deploy 2.4.1 by octocat in run 42 (…)".
    pub fn describe(&self) -> String {
        let mut s = format!("{} by {}", self.command, self.who);
        if let Some(u) = &self.url {
            s.push_str(&format!(" ({u})"));
        }
        s
    }
}

/// A request to a holder to stop and give the lock back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Who asks (for people).
    pub by: String,
    /// The asker's identity.
    pub id: String,
    /// Why (the rollback's reason).
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One record of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`SCHEMA`].
    pub v: u32,
    /// The lock's key path.
    pub key: String,
    /// Held or released.
    pub state: LockState,
    /// Who.
    pub holder: Holder,
    /// When the holder took it (RFC 3339).
    pub since: String,
    /// When it lapses unless renewed (RFC 3339).
    pub expires: String,
    /// What the holder last said it was doing (the rollout's journal, for
    /// whoever has to restore after it).
    #[serde(default)]
    pub intent: Option<Value>,
    /// A pending stop request.
    #[serde(default)]
    pub stop: Option<StopRequest>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Record {
    fn fresh(key: &LockKey, holder: &Holder, ttl: Duration) -> Record {
        let now = Utc::now();
        Record {
            v: SCHEMA,
            key: key.path.clone(),
            state: LockState::Held,
            holder: holder.clone(),
            since: rfc3339(now),
            expires: rfc3339(now + ttl_delta(ttl)),
            intent: None,
            stop: None,
        }
    }

    /// When it lapses (a record whose date cannot be read has lapsed).
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.expires)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// For people: who holds it, doing what, until when.
    pub fn describe(&self) -> String {
        format!(
            "{} (since {}, expires {})",
            self.holder.describe(),
            self.since,
            self.expires
        )
    }
}

fn ttl_delta(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5))
}

/// A record and the store's version of it (the chain's tip).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// Opaque version (a commit SHA for the GitHub store).
    pub version: String,
    /// The record.
    pub record: Record,
}

/// A lock failure, by what the caller does.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The store cannot be reached or throttles (retry later).
    #[error("the deploy lock ({what}) cannot be reached: {detail}")]
    Unavailable {
        /// The lock.
        what: String,
        /// The last failure.
        detail: String,
    },
    /// The credentials may not read or write the lock (abort; fix the
    /// permissions).
    #[error("the deploy lock ({what}) cannot be written: {detail}. {fix}")]
    Denied {
        /// The lock.
        what: String,
        /// The store's words.
        detail: String,
        /// What to grant.
        fix: String,
    },
    /// Another run held it for longer than the caller would wait.
    #[error(
        "another run holds the deploy lock of {app}: {holder}; waited {waited}s (lock-wait). Nothing was changed; run again when it has finished"
    )]
    Busy {
        /// The app.
        app: String,
        /// Who, doing what, until when.
        holder: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The lock's chain ends in something expedite did not write.
    #[error(
        "the deploy lock ({what}) holds something expedite cannot read ({detail}); if no deploy is running, delete it: {fix}"
    )]
    Corrupt {
        /// The lock.
        what: String,
        /// What was wrong.
        detail: String,
        /// How to clear it.
        fix: String,
    },
    /// Another run holds the lock now (ours lapsed or was never ours).
    #[error("the deploy lock of {app} is held by {holder}, not by this run")]
    Lost {
        /// The app.
        app: String,
        /// Who holds it.
        holder: String,
    },
    /// Stopped while waiting for it.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Why a compare-and-set did not apply.
#[derive(Debug)]
pub enum CasError {
    /// The chain moved (or the lock exists): read again.
    Conflict,
    /// The store failed.
    Failed(LockError),
}

impl From<LockError> for CasError {
    fn from(e: LockError) -> Self {
        CasError::Failed(e)
    }
}

/// Where locks live.
#[derive(Clone)]
pub enum Store {
    /// Refs in a GitHub repository.
    Github(github::GithubStore),
    /// Leases in a Kubernetes namespace.
    Lease(lease::LeaseStore),
    /// In memory (unit tests of the protocol).
    #[cfg(test)]
    Memory(Arc<memory::MemoryStore>),
}

impl Store {
    async fn read(&self, key: &LockKey) -> Result<Option<Versioned>, LockError> {
        match self {
            Store::Github(s) => s.read(key).await,
            Store::Lease(s) => s.read(key).await,
            #[cfg(test)]
            Store::Memory(s) => s.read(key).await,
        }
    }

    async fn create(&self, key: &LockKey, record: &Record) -> Result<String, CasError> {
        match self {
            Store::Github(s) => s.create(key, record).await,
            Store::Lease(s) => s.create(key, record).await,
            #[cfg(test)]
            Store::Memory(s) => s.create(key, record).await,
        }
    }

    async fn replace(
        &self,
        key: &LockKey,
        expected: &str,
        record: &Record,
    ) -> Result<String, CasError> {
        match self {
            Store::Github(s) => s.replace(key, expected, record).await,
            Store::Lease(s) => s.replace(key, expected, record).await,
            #[cfg(test)]
            Store::Memory(s) => s.replace(key, expected, record).await,
        }
    }

    /// True when the chain still ends at `version` (a cheap poll).
    async fn unchanged(&self, key: &LockKey, version: &str) -> Result<bool, LockError> {
        match self {
            Store::Github(s) => s.unchanged(key, version).await,
            Store::Lease(s) => s.unchanged(key, version).await,
            #[cfg(test)]
            Store::Memory(s) => s.unchanged(key, version).await,
        }
    }

    /// Whether a workflow run is over (`None`: cannot tell).
    async fn run_over(&self, run: &ActionsRun) -> Option<bool> {
        match self {
            Store::Github(s) => s.run_over(run).await,
            // A Lease cannot tell: only the record's expiry makes it stale.
            Store::Lease(_) => None,
            #[cfg(test)]
            Store::Memory(s) => s.run_over(run),
        }
    }

    /// Where the lock lives, for people.
    pub fn describe(&self, key: &LockKey) -> String {
        match self {
            Store::Github(s) => s.describe(key),
            Store::Lease(s) => s.describe(key),
            #[cfg(test)]
            Store::Memory(_) => format!("memory:{}", key.path),
        }
    }

    /// The command that clears a lock by hand.
    fn clear_hint(&self, key: &LockKey) -> String {
        match self {
            Store::Github(s) => s.clear_hint(key),
            Store::Lease(s) => s.clear_hint(key),
            #[cfg(test)]
            Store::Memory(_) => "restart the test".into(),
        }
    }
}

/// Timings of a lock.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a record holds without renewal.
    pub ttl: Duration,
    /// How often a holder looks for stop requests and a waiter for the
    /// lock (a cheap conditional read).
    pub poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ttl: Duration::from_secs(300),
            poll: Duration::from_secs(5),
        }
    }
}

/// What the caller wants when taking a lock.
#[derive(Debug, Clone)]
pub struct Request {
    /// The service.
    pub key: LockKey,
    /// This run.
    pub holder: Holder,
    /// How long to wait for a live holder.
    pub wait: Duration,
    /// When set, ask a preemptible holder to stop, with this reason (an
    /// emergency rollback).
    pub preempt: Option<String>,
    /// After asking a holder to stop, how much longer to wait for it to
    /// restore and hand over (its restore may include a swap back).
    pub preempt_grace: Duration,
    /// Timings.
    pub timing: Timing,
}

/// What [`Guard::acquire`] tells its caller while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockNews<'a> {
    /// A new fact worth a log line ("asked X to stop…", "waiting for X").
    Said(&'a str),
    /// Still waiting for `holder`: a status update, repeated every poll.
    Waiting {
        /// Who holds the lock, in words.
        holder: &'a str,
        /// How long this wait has lasted.
        waited: Duration,
        /// How long it may last in all.
        at_most: Duration,
    },
}

/// How the lock was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Acquired {
    /// The record before ours: who held it last and what they left.
    pub previous: Option<Record>,
    /// Why we took it from a holder that had not released it (it expired,
    /// or its run finished): restore from its intent before anything else.
    pub took_over: Option<String>,
    /// The holder we asked to stop, if we did.
    pub preempted: Option<String>,
}

/// What a guard's watcher found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// A stop request: who and why.
    Stop(StopRequest),
    /// Someone else's record: the lock is gone.
    Lost(String),
}

struct Tip {
    version: String,
    record: Record,
}

struct Inner {
    store: Store,
    key: LockKey,
    me: Holder,
    timing: Timing,
    tip: Mutex<Tip>,
    alarm: std::sync::Mutex<Option<Alarm>>,
    watcher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A held lock. Give it back with [`Guard::release`]; dropping it stops the
/// heartbeat, and the lock then lapses at its expiry.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

/// What the journal keeps to continue as the holder (the post stage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHandle {
    /// The service.
    pub key: LockKey,
    /// Who holds it.
    pub holder: Holder,
    /// The chain's tip when last written.
    pub version: String,
}

/// A short random pause after losing a compare-and-set race, so racing
/// writers spread out instead of retrying in lockstep.
async fn after_conflict(cancel: &Cancel) -> Result<(), Cancelled> {
    use rand::Rng;
    let ms = rand::rng().random_range(20..200);
    cancel.sleep(Duration::from_millis(ms)).await
}

fn stale_reason(now: DateTime<Utc>, r: &Record) -> Option<String> {
    (r.expires_at() <= now).then(|| format!("its lock expired at {}", r.expires))
}

impl Guard {
    /// Takes the lock for `req.key`, waiting up to `req.wait` for a live
    /// holder (asking it to stop when `req.preempt` says so), taking over a
    /// stale one. `progress` hears what it is waiting for.
    pub async fn acquire(
        store: Store,
        req: Request,
        cancel: &Cancel,
        mut progress: impl FnMut(LockNews<'_>),
    ) -> Result<(Guard, Acquired), LockError> {
        let started = tokio::time::Instant::now();
        let mut asked: Option<String> = None;
        let mut last_said = String::new();
        let mut wait = req.wait;
        // Bounded: each pass either returns, waits one poll, or follows a
        // store that moved (at most a few in a row).
        let max_passes = 10_000usize;
        for _ in 0..max_passes {
            cancel.check()?;
            let mine = Record::fresh(&req.key, &req.holder, req.timing.ttl);
            let current = store.read(&req.key).await?;
            let Some(cur) = current else {
                match store.create(&req.key, &mine).await {
                    Ok(version) => {
                        let guard = Guard::new(store, &req, version, mine);
                        return Ok((
                            guard,
                            Acquired {
                                previous: None,
                                took_over: None,
                                preempted: asked,
                            },
                        ));
                    }
                    Err(CasError::Conflict) => {
                        after_conflict(cancel).await?;
                        continue;
                    }
                    Err(CasError::Failed(e)) => return Err(e),
                }
            };
            let rec = cur.record.clone();
            let now = Utc::now();
            let took_over = if rec.state == LockState::Released {
                None
            } else if rec.holder.id == req.holder.id {
                Some("it was this run's own".to_string())
            } else if let Some(why) = stale_reason(now, &rec) {
                Some(why)
            } else if let Some(run) = rec.holder.run.as_ref()
                && store.run_over(run).await == Some(true)
            {
                Some(format!(
                    "its workflow run {} has finished",
                    rec.holder
                        .url
                        .clone()
                        .unwrap_or_else(|| run.run_id.to_string())
                ))
            } else {
                // A live holder: ask it to stop (once), or wait.
                if let Some(reason) = &req.preempt
                    && rec.holder.preemptible
                    && rec.stop.is_none()
                    && asked.is_none()
                {
                    let mut stop = rec.clone();
                    stop.stop = Some(StopRequest {
                        by: req.holder.describe(),
                        id: req.holder.id.clone(),
                        reason: reason.clone(),
                        at: rfc3339(now),
                    });
                    match store.replace(&req.key, &cur.version, &stop).await {
                        Ok(_) => {
                            asked = Some(rec.holder.describe());
                            wait = wait.max(started.elapsed() + req.preempt_grace);
                            progress(LockNews::Said(&format!(
                                "asked {} to stop and restore (it holds the lock)",
                                rec.holder.describe()
                            )));
                        }
                        Err(CasError::Conflict) => after_conflict(cancel).await?,
                        Err(CasError::Failed(e)) => return Err(e),
                    }
                    continue;
                }
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(LockError::Busy {
                        app: req.key.display.clone(),
                        holder: rec.describe(),
                        waited: waited.as_secs(),
                    });
                }
                let holder = rec.holder.describe();
                let say = format!("waiting for {holder} to finish");
                if say != last_said {
                    progress(LockNews::Said(&say));
                    last_said = say;
                } else {
                    progress(LockNews::Waiting {
                        holder: &holder,
                        waited,
                        at_most: wait,
                    });
                }
                cancel
                    .sleep(
                        req.timing
                            .poll
                            .min(wait.saturating_sub(waited))
                            .max(Duration::from_millis(10)),
                    )
                    .await?;
                continue;
            };
            match store.replace(&req.key, &cur.version, &mine).await {
                Ok(version) => {
                    let guard = Guard::new(store, &req, version, mine);
                    return Ok((
                        guard,
                        Acquired {
                            previous: Some(rec),
                            took_over,
                            preempted: asked,
                        },
                    ));
                }
                Err(CasError::Conflict) => {
                    after_conflict(cancel).await?;
                    continue;
                }
                Err(CasError::Failed(e)) => return Err(e),
            }
        }
        Err(LockError::Unavailable {
            what: store.describe(&req.key),
            detail: "the lock kept changing under every attempt".into(),
        })
    }

    /// Continues as the holder a journal names (the post stage): the lock is
    /// this run's again when the chain still ends in this run's record (held
    /// or released; the record is returned); anyone else's, it is
    /// [`LockError::Lost`].
    pub async fn resume(
        store: Store,
        handle: &LockHandle,
        timing: Timing,
    ) -> Result<(Guard, Option<Record>), LockError> {
        // A restore is not asked to stop: it is what a stop would ask for.
        let holder = Holder {
            preemptible: false,
            ..handle.holder.clone()
        };
        let req = Request {
            key: handle.key.clone(),
            holder,
            wait: Duration::ZERO,
            preempt: None,
            preempt_grace: Duration::ZERO,
            timing,
        };
        for _ in 0..20 {
            let cur = store.read(&handle.key).await?;
            let Some(cur) = cur else {
                // Deleted by hand: take it afresh.
                let mine = Record::fresh(&req.key, &req.holder, timing.ttl);
                match store.create(&req.key, &mine).await {
                    Ok(v) => return Ok((Guard::new(store, &req, v, mine), None)),
                    Err(CasError::Conflict) => continue,
                    Err(CasError::Failed(e)) => return Err(e),
                }
            };
            let rec = cur.record.clone();
            // Only our own record: anyone who held the lock after us took
            // it over and restored from our intent, and a record of someone
            // else's — even a lapsed one — is theirs to finish (the next
            // run's `acquire` restores from it).
            if rec.holder.id != handle.holder.id {
                return Err(LockError::Lost {
                    app: handle.key.display.clone(),
                    holder: rec.describe(),
                });
            }
            let mut mine = Record::fresh(&req.key, &req.holder, timing.ttl);
            mine.since = rec.since.clone();
            mine.intent = rec.intent.clone();
            match store.replace(&req.key, &cur.version, &mine).await {
                Ok(v) => return Ok((Guard::new(store, &req, v, mine), Some(rec))),
                Err(CasError::Conflict) => continue,
                Err(CasError::Failed(e)) => return Err(e),
            }
        }
        Err(LockError::Unavailable {
            what: store.describe(&handle.key),
            detail: "the lock kept changing under every attempt".into(),
        })
    }

    fn new(store: Store, req: &Request, version: String, record: Record) -> Guard {
        Guard {
            inner: Arc::new(Inner {
                store,
                key: req.key.clone(),
                me: req.holder.clone(),
                timing: req.timing,
                tip: Mutex::new(Tip { version, record }),
                alarm: std::sync::Mutex::new(None),
                watcher: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Where the lock lives, for people.
    pub fn describe(&self) -> String {
        self.inner.store.describe(&self.inner.key)
    }

    /// What the journal keeps.
    pub async fn handle(&self) -> LockHandle {
        let tip = self.inner.tip.lock().await;
        LockHandle {
            key: self.inner.key.clone(),
            holder: self.inner.me.clone(),
            version: tip.version.clone(),
        }
    }

    /// What the watcher found, if anything.
    pub fn alarm(&self) -> Option<Alarm> {
        self.inner.alarm.lock().ok().and_then(|a| a.clone())
    }

    /// Starts the heartbeat: renews the lock before it lapses and, on a
    /// stop request or a lost lock, cancels `cancel` with the reason.
    pub fn watch(&self, cancel: &Cancel) {
        // The task holds the guard weakly: dropping every guard ends it.
        let me = Arc::downgrade(&self.inner);
        let cancel = cancel.clone();
        let handle = tokio::spawn(heartbeat(me, cancel));
        if let Ok(mut w) = self.inner.watcher.lock()
            && let Some(old) = w.replace(handle)
        {
            old.abort();
        }
    }

    fn stop_watching(&self) {
        if let Ok(mut w) = self.inner.watcher.lock()
            && let Some(h) = w.take()
        {
            h.abort();
        }
    }

    fn raise(&self, alarm: Alarm, cancel: &Cancel) {
        if let Ok(mut a) = self.inner.alarm.lock() {
            // A stop can still turn into a loss; nothing turns a loss back.
            if matches!(&*a, Some(Alarm::Lost(_)))
                || (a.is_some() && matches!(alarm, Alarm::Stop(_)))
            {
                return;
            }
            *a = Some(alarm.clone());
        }
        match alarm {
            Alarm::Stop(req) => cancel.cancel(CancelReason::Preempted(format!(
                "{} ({})",
                req.by, req.reason
            ))),
            Alarm::Lost(who) => cancel.cancel(CancelReason::LockLost(who)),
        }
    }

    async fn pending_stop(&self) -> Option<StopRequest> {
        self.inner.tip.lock().await.record.stop.clone()
    }

    /// Reads the chain when it moved: adopts a stop request appended to our
    /// record; anything else means the lock is gone.
    async fn check(&self) -> Result<(), LockError> {
        let version = self.inner.tip.lock().await.version.clone();
        if self
            .inner
            .store
            .unchanged(&self.inner.key, &version)
            .await?
        {
            return Ok(());
        }
        self.adopt().await
    }

    async fn adopt(&self) -> Result<(), LockError> {
        let cur = self.inner.store.read(&self.inner.key).await?;
        let mut tip = self.inner.tip.lock().await;
        match cur {
            Some(cur)
                if cur.record.holder.id == self.inner.me.id
                    && cur.record.state == LockState::Held =>
            {
                tip.version = cur.version;
                tip.record = cur.record;
                Ok(())
            }
            Some(cur) => Err(LockError::Lost {
                app: self.inner.key.display.clone(),
                holder: cur.record.describe(),
            }),
            None => Err(LockError::Lost {
                app: self.inner.key.display.clone(),
                holder: "nobody (the lock was deleted)".into(),
            }),
        }
    }

    /// Appends our record, changed by `edit`, renewed; follows a chain that
    /// moved under us only while it is still ours.
    async fn rewrite(&self, edit: impl Fn(&mut Record)) -> Result<Record, LockError> {
        for _ in 0..5 {
            let (version, mut next) = {
                let tip = self.inner.tip.lock().await;
                (tip.version.clone(), tip.record.clone())
            };
            next.expires = rfc3339(Utc::now() + ttl_delta(self.inner.timing.ttl));
            edit(&mut next);
            match self
                .inner
                .store
                .replace(&self.inner.key, &version, &next)
                .await
            {
                Ok(v) => {
                    let mut tip = self.inner.tip.lock().await;
                    tip.version = v;
                    tip.record = next.clone();
                    return Ok(next);
                }
                Err(CasError::Conflict) => self.adopt().await?,
                Err(CasError::Failed(e)) => return Err(e),
            }
        }
        Err(LockError::Unavailable {
            what: self.describe(),
            detail: "the lock kept changing under every attempt".into(),
        })
    }

    /// Records what the holder is about to do (the rollout's journal), so
    /// that whoever takes over after a crash can restore from it.
    pub async fn write_intent(&self, intent: Value) -> Result<(), LockError> {
        self.rewrite(|r| r.intent = Some(intent.clone()))
            .await
            .map(|_| ())
    }

    /// Gives the lock back, leaving `intent` (the final journal) for the
    /// next holder. Ends the heartbeat.
    pub async fn release(&self, intent: Option<Value>) -> Result<(), LockError> {
        self.stop_watching();
        self.rewrite(|r| {
            r.state = LockState::Released;
            r.stop = None;
            if let Some(i) = &intent {
                r.intent = Some(i.clone());
            }
            // Released records never lapse into a takeover.
            r.expires = r.since.clone();
        })
        .await
        .map(|_| ())
    }

    /// How to clear the lock by hand, for messages.
    pub fn clear_hint(&self) -> String {
        self.inner.store.clear_hint(&self.inner.key)
    }
}

/// Renews the lock before it lapses and looks for stop requests, until the
/// guard is released or dropped, or the lock is lost; each pass sleeps one
/// poll.
async fn heartbeat(inner: std::sync::Weak<Inner>, cancel: Cancel) {
    let Some(poll) = inner.upgrade().map(|i| i.timing.poll) else {
        return;
    };
    loop {
        tokio::time::sleep(poll).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let guard = Guard { inner };
        let ttl = guard.inner.timing.ttl;
        let due = {
            let tip = guard.inner.tip.lock().await;
            // Renew once a third of the lease has gone by.
            tip.record.expires_at() - Utc::now() < ttl_delta(ttl - ttl / 3)
        };
        let r = if due {
            guard.rewrite(|_| {}).await.map(|_| ())
        } else {
            guard.check().await
        };
        match r {
            Ok(()) => {}
            Err(LockError::Lost { holder, .. }) => {
                guard.raise(Alarm::Lost(holder), &cancel);
                return;
            }
            Err(e) => {
                // Keep trying. The rollout writes its intent — a renewal
                // that must succeed — before every change, so a holder that
                // cannot reach the lock changes nothing more.
                tracing::warn!("could not renew the deploy lock ({e}); retrying");
            }
        }
        if let Some(stop) = guard.pending_stop().await {
            guard.raise(Alarm::Stop(stop), &cancel);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut w) = self.watcher.lock()
            && let Some(h) = w.take()
        {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests;
