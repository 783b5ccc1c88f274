//! Cancellation: signals, the `timeout` deadline, and a lock holder being
//! asked to stop (an emergency rollback) or losing its lock.
//!
//! The binary is PID 1 in its container, where the kernel installs no
//! default handlers, so without this SIGTERM would be ignored until the
//! runner's SIGKILL. The first SIGTERM/SIGINT (or the deadline) cancels the
//! run: the rollout stops at its next checkpoint and restores production
//! in-process, on a terminal and in a job alike (the action's post stage
//! finishes the job if the container is killed first). A second signal
//! exits at once, printing what is left and the command that fixes it
//! ([`set_last_words`]).
//!
//! A [`Cancel::child`] is cancelled with its parent, or on its own: one
//! service's deploy can be preempted without stopping the others.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Why a run was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// A signal arrived (the workflow was cancelled, or Ctrl-C).
    Signal(&'static str),
    /// The `timeout` input's deadline passed.
    Timeout(Duration),
    /// Another run (an emergency rollback) asked the lock holder to stop;
    /// the text says who and why.
    Preempted(String),
    /// The lock lapsed and another run holds it now.
    LockLost(String),
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelReason::Signal(s) => write!(f, "{s} received (the run was cancelled)"),
            CancelReason::Timeout(d) => write!(f, "the timeout of {}s passed", d.as_secs()),
            CancelReason::Preempted(by) => write!(f, "asked to stop by {by}"),
            CancelReason::LockLost(why) => write!(f, "the lock was lost: {why}"),
        }
    }
}

/// A shared cancellation flag with its reason.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
    /// The parent's reason, for a child cancelled through its parent.
    parent: Option<Arc<Mutex<Option<CancelReason>>>>,
    deadline: Arc<Mutex<Option<Instant>>>,
}

/// Returned by waits that were cut short.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cancelled: {0}")]
pub struct Cancelled(pub CancelReason);

impl Cancel {
    /// A fresh, uncancelled flag.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Cancels; the first reason wins.
    pub fn cancel(&self, reason: CancelReason) {
        if let Ok(mut r) = self.reason.lock()
            && r.is_none()
        {
            *r = Some(reason);
        }
        self.token.cancel();
    }

    /// A flag cancelled with this one, or on its own (without cancelling
    /// this one); it shares the deadline.
    pub fn child(&self) -> Cancel {
        Cancel {
            token: self.token.child_token(),
            reason: Arc::new(Mutex::new(None)),
            parent: Some(self.reason.clone()),
            deadline: self.deadline.clone(),
        }
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason, once cancelled (its own, else its parent's).
    pub fn reason(&self) -> Option<CancelReason> {
        let own = self.reason.lock().ok().and_then(|r| r.clone());
        own.or_else(|| {
            self.parent
                .as_ref()
                .and_then(|p| p.lock().ok().and_then(|r| r.clone()))
        })
    }

    /// When the `timeout` deadline falls, if one is set.
    pub fn deadline_at(&self) -> Option<Instant> {
        self.deadline.lock().ok().and_then(|d| *d)
    }

    /// Fails if cancelled: call before starting each change.
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.reason() {
            Some(r) if self.is_cancelled() => Err(Cancelled(r)),
            _ => Ok(()),
        }
    }

    /// Resolves when cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Sleeps, or returns early with the reason when cancelled.
    pub async fn sleep(&self, d: Duration) -> Result<(), Cancelled> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.token.cancelled() => Err(Cancelled(self.reason().unwrap_or(CancelReason::Signal("cancel")))),
        }
    }

    /// Cancels with [`CancelReason::Timeout`] after `d`.
    pub fn deadline(&self, d: Duration) {
        if let Ok(mut at) = self.deadline.lock() {
            *at = Some(Instant::now() + d);
        }
        let me = self.clone();
        tokio::spawn(async move {
            if me.sleep(d).await.is_ok() {
                me.cancel(CancelReason::Timeout(d));
            }
        });
    }
}

/// What a run would leave behind if it stopped now, and the command that
/// fixes it, by key (a service): printed when a second signal ends the
/// process at once.
static LAST_WORDS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Records (or, with `None`, clears) what is left for `key` if the process
/// ended now.
pub fn set_last_words(key: &str, text: Option<String>) {
    if let Ok(mut words) = LAST_WORDS.lock() {
        match text {
            Some(t) => {
                words.insert(key.to_string(), t);
            }
            None => {
                words.remove(key);
            }
        }
    }
}

/// What is left, one line per key.
pub fn last_words() -> Vec<String> {
    LAST_WORDS
        .lock()
        .map(|w| w.values().cloned().collect())
        .unwrap_or_default()
}

/// What a second signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalPolicy {
    /// A person's terminal: a second Ctrl-C exits at once, printing what
    /// puts production back.
    Terminal,
    /// A job (GitHub Actions, Azure Pipelines): the runner sends a second
    /// signal on its own, so the restore goes on; `after_kill` says what
    /// finishes it if the step is killed.
    Job {
        /// What finishes the restore after a kill.
        after_kill: &'static str,
    },
}

/// Listens for SIGTERM and SIGINT (Windows: Ctrl-C and Ctrl-Break): the
/// first cancels (the run restores production, then ends). On a terminal a second one exits at once after
/// printing what is left. In a job later signals are the runner's
/// escalation (GitHub: SIGINT, then SIGTERM 7.5 s later, then SIGKILL; an
/// Azure Pipelines agent likewise signals, then kills after its cancel
/// timeout): the restore goes on and prints what is left, and what
/// finishes it after a kill is said (the post stage; in a pipeline, which
/// has none, the printed command).
pub fn listen_for_signals(cancel: &Cancel, policy: SignalPolicy) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let Ok(mut interrupts) = Interrupts::listen() else {
            tracing::warn!("cannot listen for signals; cancellation will not be graceful");
            return;
        };
        let mut seen = 0;
        loop {
            let name = interrupts.next().await;
            seen += 1;
            if seen > 1
                && let SignalPolicy::Job { after_kill } = policy
            {
                tracing::warn!(
                    "{name} received again: still restoring production; if this step is killed, {after_kill}"
                );
                for line in last_words() {
                    tracing::warn!("{line}");
                }
                continue;
            }
            if seen == 1 {
                tracing::warn!(
                    "{name} received: stopping at the next checkpoint and restoring production; send it again to exit at once"
                );
                cancel.cancel(CancelReason::Signal(name));
            } else {
                let left = last_words();
                if left.is_empty() {
                    tracing::error!(
                        "{name} received again: exiting now; nothing was left half-done"
                    );
                } else {
                    for line in left {
                        tracing::error!("{name} received again: exiting now. {line}");
                    }
                }
                std::process::exit(130);
            }
        }
    });
}

/// The interrupts a person or a runner sends. Unix: SIGTERM and SIGINT.
/// Windows has no SIGTERM: Ctrl-C and Ctrl-Break in the console are the
/// interrupts (closing the window or `taskkill /F` ends the process with
/// nothing to act on, like SIGKILL).
#[cfg(unix)]
struct Interrupts {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Interrupts {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next one's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(windows)]
struct Interrupts {
    c: tokio::signal::windows::CtrlC,
    brk: tokio::signal::windows::CtrlBreak,
}

#[cfg(windows)]
impl Interrupts {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            c: tokio::signal::windows::ctrl_c()?,
            brk: tokio::signal::windows::ctrl_break()?,
        })
    }

    /// The next one's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.c.recv() => "Ctrl-C",
            _ = self.brk.recv() => "Ctrl-Break",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleep_returns_early_with_the_first_reason() {
        let c = Cancel::new();
        let c2 = c.clone();
        tokio::spawn(async move {
            c2.cancel(CancelReason::Signal("SIGTERM"));
            c2.cancel(CancelReason::Timeout(Duration::from_secs(1)));
        });
        let err = c.sleep(Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(err.0, CancelReason::Signal("SIGTERM"));
        assert!(c.check().is_err());
    }

    #[tokio::test]
    async fn a_child_is_cancelled_with_its_parent_or_alone() {
        let parent = Cancel::new();
        let a = parent.child();
        let b = parent.child();
        a.cancel(CancelReason::Preempted("rollback by octocat".into()));
        assert!(a.is_cancelled() && !b.is_cancelled() && !parent.is_cancelled());
        parent.cancel(CancelReason::Signal("SIGINT"));
        assert!(b.is_cancelled());
        assert_eq!(b.reason(), Some(CancelReason::Signal("SIGINT")));
        assert_eq!(
            a.reason(),
            Some(CancelReason::Preempted("rollback by octocat".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_cancels() {
        let c = Cancel::new();
        c.deadline(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(
            c.reason(),
            Some(CancelReason::Timeout(Duration::from_secs(5)))
        );
    }
}
