//! Evidence for the canary breaker: per-arm request, failure and slow-request
//! counters read from where they live.
//!
//! Every source reports **cumulative** counters since it was started (the
//! form Prometheus, Azure Monitor and our own probes all have); the driver
//! takes differences between readings and feeds those to
//! [`crate::breaker`]. Keeping sources cumulative means a missed reading loses
//! nothing — the next difference covers the gap — and "no new requests" is
//! visible as a zero difference, which the breaker treats as no evidence
//! (never as a failure).
//!
//! Sources: [`prometheus`] (PromQL instant queries, and range queries for
//! production's history before the watch), Azure Monitor metrics, and
//! expedite's own synthetic probes.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;

pub mod azure_monitor;
pub mod probes;
pub mod prometheus;

/// One side of the comparison: the canary (new build) or the baseline (the
/// build production serves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmRef {
    /// The label a metric source knows this arm by: the slot name on App
    /// Service (`staging`, `production`), the revision name on Container
    /// Apps.
    pub label: String,
    /// The host that serves only this arm (slot host, revision FQDN).
    pub host: String,
}

/// Which arms to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arms {
    /// The new build.
    pub canary: ArmRef,
    /// The build production serves.
    pub baseline: ArmRef,
}

/// Latency quantiles in seconds, where a source can tell them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Cumulative counters for one arm since the source was started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests served.
    pub requests: u64,
    /// Of which failed (5xx, timeout, reset).
    pub failures: u64,
    /// Of which slower than the latency threshold, if the source can tell.
    pub slow: Option<u64>,
    /// Latency quantiles over the source's recent window, if it can tell.
    pub latency: Option<Quantiles>,
}

/// One reading of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When the reading was taken.
    pub at: Instant,
    /// The canary's counters.
    pub canary: Counters,
    /// The baseline's counters; `None` if the source cannot see it.
    pub baseline: Option<Counters>,
}

/// Requests and failures in one interval (a source's history).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests served.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
}

/// Why a reading could not be taken. A failed reading is *no evidence*: the
/// driver logs it, and the breaker's silence timeout decides when a lack of
/// evidence becomes INCONCLUSIVE.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The source is unreachable or answered an error; try again later.
    #[error("{source_name}: {detail}")]
    Unavailable {
        /// Which source.
        source_name: String,
        /// What happened (status and body, redacted).
        detail: String,
    },
    /// The source answered something that cannot be used (a query that
    /// returns several series, a non-numeric value): a configuration error.
    #[error("{source_name}: {detail}")]
    Misconfigured {
        /// Which source.
        source_name: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl EvidenceError {
    /// A configuration error of `source_name`.
    pub fn misconfigured(source_name: &str, detail: impl Into<String>) -> EvidenceError {
        EvidenceError::Misconfigured {
            source_name: source_name.into(),
            detail: detail.into(),
        }
    }

    /// `source_name` could not answer now.
    pub fn unavailable(source_name: &str, detail: impl Into<String>) -> EvidenceError {
        EvidenceError::Unavailable {
            source_name: source_name.into(),
            detail: detail.into(),
        }
    }
}

/// A place evidence comes from.
pub trait EvidenceSource: Send {
    /// A short name for logs and the summary (`prometheus`, `azure-monitor`,
    /// `probes`).
    fn name(&self) -> &str;

    /// Starts counting: records the counters' current values so later
    /// readings are relative to now.
    fn start(
        &mut self,
        arms: &Arms,
        cancel: &Cancel,
    ) -> impl std::future::Future<Output = Result<(), EvidenceError>> + Send;

    /// Reads the counters accumulated since [`EvidenceSource::start`].
    fn read(
        &mut self,
        cancel: &Cancel,
    ) -> impl std::future::Future<Output = Result<Reading, EvidenceError>> + Send;

    /// Production's traffic before the watch: the baseline's requests and
    /// failures per `step` over the last `lookback`, oldest first, from
    /// which the breaker learns how production's failures clump
    /// ([`crate::breaker::Breaker::learn_production`]). Called after
    /// [`EvidenceSource::start`]. A source that keeps no history (our own
    /// probes start with the watch) has none.
    fn production_history(
        &mut self,
        lookback: std::time::Duration,
        step: std::time::Duration,
        cancel: &Cancel,
    ) -> impl std::future::Future<Output = Result<Vec<Tally>, EvidenceError>> + Send {
        let _ = (lookback, step, cancel);
        async { Ok(Vec::new()) }
    }
}

/// A future an [`AnySource`] returns.
pub type SourceFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, EvidenceError>> + Send + 'a>>;

/// Any [`EvidenceSource`], behind a pointer: what the canary watch holds, so
/// the sources it runs are built in one place (`SourceSpec::build`) and a new
/// source is its own file plus one line there.
pub trait AnySource: Send {
    /// [`EvidenceSource::name`].
    fn name(&self) -> &str;
    /// [`EvidenceSource::start`].
    fn start<'a>(&'a mut self, arms: &'a Arms, cancel: &'a Cancel) -> SourceFuture<'a, ()>;
    /// [`EvidenceSource::read`].
    fn read<'a>(&'a mut self, cancel: &'a Cancel) -> SourceFuture<'a, Reading>;
    /// [`EvidenceSource::production_history`].
    fn production_history<'a>(
        &'a mut self,
        lookback: std::time::Duration,
        step: std::time::Duration,
        cancel: &'a Cancel,
    ) -> SourceFuture<'a, Vec<Tally>>;
}

impl<T: EvidenceSource> AnySource for T {
    fn name(&self) -> &str {
        EvidenceSource::name(self)
    }
    fn start<'a>(&'a mut self, arms: &'a Arms, cancel: &'a Cancel) -> SourceFuture<'a, ()> {
        Box::pin(EvidenceSource::start(self, arms, cancel))
    }
    fn read<'a>(&'a mut self, cancel: &'a Cancel) -> SourceFuture<'a, Reading> {
        Box::pin(EvidenceSource::read(self, cancel))
    }
    fn production_history<'a>(
        &'a mut self,
        lookback: std::time::Duration,
        step: std::time::Duration,
        cancel: &'a Cancel,
    ) -> SourceFuture<'a, Vec<Tally>> {
        Box::pin(EvidenceSource::production_history(
            self, lookback, step, cancel,
        ))
    }
}
