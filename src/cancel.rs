//! Cancellation: signals and the `timeout` deadline.
//!
//! The binary is PID 1 in its container, where the kernel installs no
//! default handlers, so without this SIGTERM would be ignored until the
//! runner's SIGKILL. The first SIGTERM/SIGINT (or the deadline) cancels the
//! run: commands stop *starting* changes at their next check and record what
//! they did; the post stage finishes the job. A second signal exits at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why a run was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// A signal arrived (the workflow was cancelled, or Ctrl-C).
    Signal(&'static str),
    /// The `timeout` input's deadline passed.
    Timeout(Duration),
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelReason::Signal(s) => write!(f, "{s} received (the run was cancelled)"),
            CancelReason::Timeout(d) => write!(f, "the timeout of {}s passed", d.as_secs()),
        }
    }
}

/// A shared cancellation flag with its reason.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
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

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason, once cancelled.
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason.lock().ok().and_then(|r| r.clone())
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
        let me = self.clone();
        tokio::spawn(async move {
            if me.sleep(d).await.is_ok() {
                me.cancel(CancelReason::Timeout(d));
            }
        });
    }
}

/// Listens for SIGTERM and SIGINT: the first cancels, the second exits.
pub fn listen_for_signals(cancel: &Cancel) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot listen for signals; cancellation will not be graceful");
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            seen += 1;
            if seen == 1 {
                tracing::warn!(
                    "{name} received: finishing the current step, starting no new changes"
                );
                cancel.cancel(CancelReason::Signal(name));
            } else {
                tracing::error!(
                    "{name} received again: exiting now; the post stage will restore a safe state"
                );
                std::process::exit(130);
            }
        }
    });
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
