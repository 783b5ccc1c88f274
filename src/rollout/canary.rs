//! The canary watch: reads every evidence source on a fixed cadence, feeds
//! the differences to one [`Breaker`] per source, and turns their verdicts
//! and judgements into the result of a [`super::Phase::CanaryWatch`] step.
//!
//! Several sources measure the same requests, so their evidence is not
//! added up: each source has its own breaker with an equal share of the
//! false-trip budget (`alpha / sources`), any of them may trip, and a step
//! passes only when every source has seen enough to pass it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Result as R;
use crate::breaker::{self, Batch, Breaker, Judgement, Verdict};
use crate::cancel::Cancel;
use crate::probe::evidence::azure_monitor::AzureMonitorSource;
use crate::probe::evidence::probes::{ProbeSettings, ProbeSource};
use crate::probe::evidence::prometheus::PrometheusSource;
use crate::probe::evidence::{AnySource, Arms, Counters, EvidenceError, Reading};

/// What to do when the evidence stays inconclusive (no or too little
/// traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InconclusivePolicy {
    /// Keep watching for up to `inconclusive-wait` more, then as `Fail`.
    Wait,
    /// Withdraw the canary; the deploy ends `inconclusive` (exit 1).
    Fail,
    /// Go on as if the step passed, with a warning.
    Promote,
}

/// Where the canary's evidence comes from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// expedite's own synthetic probes.
    Probes(ProbeSettings),
    /// PromQL queries against a Prometheus server.
    Prometheus(Box<crate::probe::evidence::prometheus::PrometheusSpec>),
    /// Azure Monitor platform metrics of the slot or revision.
    AzureMonitor,
}

impl SourceSpec {
    /// The source this spec describes, ready to start: the one place
    /// sources are registered.
    pub fn build(&self, clients: &SourceClients) -> Result<Box<dyn AnySource>, String> {
        Ok(match self {
            SourceSpec::Probes(p) => {
                let dial = clients
                    .dial
                    .clone()
                    .unwrap_or_else(|| crate::http::Dial::new(clients.http.clone()));
                Box::new(ProbeSource::new(dial, p.clone()))
            }
            SourceSpec::Prometheus(p) => {
                Box::new(PrometheusSource::new(clients.http.clone(), (**p).clone()))
            }
            SourceSpec::AzureMonitor => {
                let Some((arm, monitor)) = &clients.monitor else {
                    return Err("azure-monitor evidence needs a service on an Azure platform; use probes or prometheus".into());
                };
                Box::new(AzureMonitorSource::new(arm.clone(), monitor.clone()))
            }
        })
    }

    /// The source's name as the `evidence` input spells it.
    pub fn name(&self) -> &'static str {
        match self {
            SourceSpec::Probes(_) => "probes",
            SourceSpec::Prometheus(_) => "prometheus",
            SourceSpec::AzureMonitor => "azure-monitor",
        }
    }
}

/// The canary part of a deploy plan.
#[derive(Debug, Clone)]
pub struct CanaryPlan {
    /// Percentages of production traffic, increasing.
    pub steps: Vec<u8>,
    /// How long each step is watched at least.
    pub window: Duration,
    /// Time between readings of the sources.
    pub interval: Duration,
    /// The breaker's settings (alpha is the whole budget, split by source).
    pub breaker: breaker::Settings,
    /// Evidence sources (at least one).
    pub sources: Vec<SourceSpec>,
    /// What an inconclusive step does.
    pub on_inconclusive: InconclusivePolicy,
    /// Extra watching under [`InconclusivePolicy::Wait`].
    pub inconclusive_wait: Duration,
}

/// One source's figures for one step (differences over the step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFigures {
    /// The source.
    pub source: String,
    /// Canary counters over the step.
    pub canary: Counters,
    /// Baseline counters over the step, if the source sees it.
    pub baseline: Option<Counters>,
    /// Each test's statistic and threshold at the end of the step (nats).
    pub tests: Vec<TestFigure>,
}

/// A test's state, for the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFigure {
    /// Which test.
    pub test: String,
    /// Its statistic (log e-value, nats).
    pub statistic: f64,
    /// Where it trips.
    pub threshold: f64,
}

/// One canary step's record (journal, summary, audit log).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Share of production traffic on the new build.
    pub percent: u8,
    /// Milliseconds since the watch started.
    pub started_ms: u64,
    /// How long the step was watched.
    pub duration_ms: u64,
    /// Per source.
    pub sources: Vec<SourceFigures>,
    /// `pass`, `trip`, `inconclusive`, `promoted-inconclusive`,
    /// `cancelled`, `failed`.
    pub decision: String,
    /// Why, in a sentence.
    pub detail: String,
}

/// What the watch needs to build its sources.
pub struct SourceClients {
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// How probes reach the arms' hosts, when not through `http` alone (a
    /// Kubernetes target's API-server proxy).
    pub dial: Option<crate::http::Dial>,
    /// ARM and the resource whose metrics Azure Monitor has (`None`: the
    /// platform has no such metrics).
    pub monitor: Option<(
        crate::azure::arm::Arm,
        crate::probe::evidence::azure_monitor::MonitorTarget,
    )>,
}

struct Feed {
    source: Box<dyn AnySource>,
    breaker: Breaker,
    last: Option<Reading>,
    /// The baseline's counters in the latest reading that had them. A
    /// reading without them (the series missing for a while) must not make
    /// the next one count the baseline's whole history again: the
    /// baseline's increments are taken against this.
    last_baseline: Option<Counters>,
    /// The counters when the step began (the baseline's as last known).
    at_step_start: Option<Reading>,
}

impl Feed {
    fn new(source: Box<dyn AnySource>, breaker: Breaker) -> Feed {
        Feed {
            source,
            breaker,
            last: None,
            last_baseline: None,
            at_step_start: None,
        }
    }

    /// What this source counted since the current step began: the canary,
    /// and the baseline once its series has been read.
    fn step_figures(&self) -> (Counters, Option<Counters>) {
        let now = self.last.as_ref();
        let start = self.at_step_start.as_ref();
        let canary = now.map_or_else(Counters::default, |n| {
            figures_between(&n.canary, start.map(|s| &s.canary))
        });
        let baseline = self
            .last_baseline
            .as_ref()
            .map(|b| figures_between(b, start.and_then(|s| s.baseline.as_ref())));
        (canary, baseline)
    }

    /// A new step: its figures count from the latest reading.
    fn begin_step(&mut self) {
        self.at_step_start = self.last.as_ref().map(|r| Reading {
            baseline: self.last_baseline,
            ..r.clone()
        });
    }

    /// The batch of increments from the previous reading to `reading`
    /// (times in seconds since `origin`, the watch's start); the baseline's
    /// against the latest reading that had it.
    fn advance(&mut self, reading: Reading, origin: Instant) -> Batch {
        let secs = |at: Instant| at.saturating_duration_since(origin).as_secs_f64();
        let (before_at, before_canary) = self
            .last
            .as_ref()
            .map_or((origin, Counters::default()), |r| (r.at, r.canary));
        let batch = Batch {
            start: secs(before_at),
            end: secs(reading.at),
            canary: diff(&reading.canary, &before_canary),
            baseline: reading
                .baseline
                .as_ref()
                .map(|now| diff(now, &self.last_baseline.unwrap_or_default())),
        };
        if self.at_step_start.is_none() {
            self.at_step_start = Some(Reading {
                at: before_at,
                canary: before_canary,
                baseline: self.last_baseline,
            });
        }
        if reading.baseline.is_some() {
            self.last_baseline = reading.baseline;
        }
        self.last = Some(reading);
        batch
    }
}

/// How far back the breaker looks at production's traffic before the
/// watch, where the source keeps history: at 0.1 % errors and a few
/// hundred requests a second that is hundreds of failures, enough to tell
/// independent failures from clumps before the canary's first.
pub const PRODUCTION_HISTORY: Duration = Duration::from_secs(30 * 60);

/// Teaches `breaker` how production's failures clump from the source's
/// history at the watch's cadence. No history (a source without any, an
/// error, a cancel) only means the estimate starts from its prior: said
/// in the log, never fatal.
async fn learn_history(
    source: &mut dyn AnySource,
    breaker: &mut Breaker,
    interval: Duration,
    c: &Cancel,
) {
    if breaker.settings().independent_failures {
        return; // `failure-clumping: independent`: nothing to learn
    }
    let name = source.name().to_string();
    match source
        .production_history(PRODUCTION_HISTORY, interval, c)
        .await
    {
        Ok(history) if history.is_empty() => {}
        Ok(history) => {
            let (mut requests, mut failures) = (0u64, 0u64);
            for t in &history {
                breaker.learn_production(t.requests, t.failures);
                requests = requests.saturating_add(t.requests);
                failures = failures.saturating_add(t.failures.min(t.requests));
            }
            tracing::info!(
                "{name}: production's last {} min: {requests} requests, {failures} failed; failures clump by {:.2} (1 = independent)",
                PRODUCTION_HISTORY.as_secs() / 60,
                breaker.clump_index()
            );
        }
        Err(EvidenceError::Cancelled) => {}
        Err(e) => tracing::warn!(
            "{name}: cannot read production's history ({e}); the breaker learns how failures clump from the watch alone"
        ),
    }
}

/// The watch over a whole canary (all steps): sources and breakers persist
/// across steps, so the trip-only tests see the whole rollout.
pub struct Watch {
    feeds: Vec<Feed>,
    started: Instant,
    step_started: Instant,
}

fn diff(now: &Counters, before: &Counters) -> breaker::Arm {
    breaker::Arm {
        requests: now.requests.saturating_sub(before.requests),
        failures: now.failures.saturating_sub(before.failures),
        slow: match (now.slow, before.slow) {
            (Some(a), Some(b)) => Some(a.saturating_sub(b)),
            _ => None,
        },
    }
}

fn figures_between(now: &Counters, before: Option<&Counters>) -> Counters {
    let zero = Counters::default();
    let before = before.unwrap_or(&zero);
    let d = diff(now, before);
    Counters {
        requests: d.requests,
        failures: d.failures,
        slow: d.slow.or(now.slow.filter(|_| before.slow.is_none())),
        latency: now.latency,
    }
}

impl Watch {
    /// Builds and starts every source for `arms`.
    pub async fn start(
        plan: &CanaryPlan,
        clients: &SourceClients,
        arms: &Arms,
        c: &Cancel,
    ) -> Result<Watch, String> {
        let share = plan.sources.len().max(1) as f64;
        let mut feeds = Vec::new();
        for spec in &plan.sources {
            let mut source = spec.build(clients)?;
            source
                .start(arms, c)
                .await
                .map_err(|e| format!("cannot start the {} evidence source: {e}", spec.name()))?;
            let mut settings = plan.breaker.clone();
            settings.alpha /= share;
            let mut breaker = Breaker::new(settings).map_err(|e| e.to_string())?;
            learn_history(&mut *source, &mut breaker, plan.interval, c).await;
            feeds.push(Feed::new(source, breaker));
        }
        let now = Instant::now();
        Ok(Watch {
            feeds,
            started: now,
            step_started: now,
        })
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
    }

    /// Watches one step at `percent` until it passes, trips, stays
    /// inconclusive, or is cancelled.
    /// One line of progress for the current step: time, each source's
    /// requests and failures per arm in this step, and how near the
    /// closest test is to tripping.
    fn progress(&self, percent: u8, window: f64) -> String {
        let elapsed = self.step_started.elapsed().as_secs_f64();
        let mut parts = vec![format!(
            "canary {percent} %: {elapsed:.0} s of {window:.0} s"
        )];
        for f in &self.feeds {
            let (canary, baseline) = f.step_figures();
            let closest = f
                .breaker
                .evidence()
                .tests
                .iter()
                .filter(|t| t.threshold.is_finite() && t.threshold > 0.0)
                .map(|t| (t.statistic.max(0.0) / t.threshold).min(1.0))
                .fold(0.0f64, f64::max);
            parts.push(format!(
                "{}: new build {} requests, {} failed; production {}; breaker {:.0} % of the way to a trip",
                f.source.name(),
                canary.requests,
                canary.failures,
                baseline.map_or_else(
                    || "not read yet".to_string(),
                    |b| format!("{} requests, {} failed", b.requests, b.failures)
                ),
                closest * 100.0
            ));
        }
        parts.join(" · ")
    }

    pub async fn step(&mut self, plan: &CanaryPlan, percent: u8, c: &Cancel) -> (R, StepRecord) {
        self.step_started = Instant::now();
        let at = self.secs(self.step_started);
        for f in &mut self.feeds {
            f.breaker.set_canary_share(f64::from(percent) / 100.0);
            f.breaker.begin_step(at);
            f.begin_step();
        }
        let mut record = StepRecord {
            percent,
            started_ms: (at * 1000.0) as u64,
            ..StepRecord::default()
        };
        let window = plan.window.as_secs_f64();
        let mut warned_unavailable = false;
        let mut last_progress: Option<Instant> = None;
        let result = loop {
            if c.sleep(plan.interval).await.is_err() {
                break R::Cancelled;
            }
            // What a person watching sees move: at least every 2 s (the
            // console turns it into a status line, or a log line every 15 s).
            if last_progress.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(2)) {
                last_progress = Some(Instant::now());
                let done = (100.0 * self.step_started.elapsed().as_secs_f64() / window.max(1e-9))
                    .clamp(0.0, 100.0) as u64;
                tracing::info!(progress = true, done, "{}", self.progress(percent, window));
            }
            let mut tripped = None;
            let origin = self.started;
            for f in &mut self.feeds {
                let reading = match f.source.read(c).await {
                    Ok(r) => r,
                    Err(EvidenceError::Cancelled) => {
                        tripped = Some(R::Cancelled);
                        break;
                    }
                    Err(e @ EvidenceError::Misconfigured { .. }) => {
                        tripped = Some(R::Failed(format!("evidence: {e}")));
                        break;
                    }
                    Err(e) => {
                        // No reading is no evidence: the silence timeout
                        // decides when that becomes inconclusive.
                        if !warned_unavailable {
                            tracing::warn!("evidence unavailable, retrying: {e}");
                            warned_unavailable = true;
                        }
                        continue;
                    }
                };
                let batch = f.advance(reading, origin);
                if let Verdict::Trip(t) = f.breaker.observe(&batch) {
                    tripped = Some(R::Tripped(format!(
                        "{} ({}: statistic {:.2} ≥ threshold {:.2} nats)",
                        t.reason,
                        f.source.name(),
                        t.statistic,
                        t.threshold
                    )));
                    break;
                }
            }
            if let Some(r) = tripped {
                break r;
            }
            let now = self.secs(Instant::now());
            let judgements: Vec<Judgement> = self
                .feeds
                .iter()
                .map(|f| f.breaker.judge(now, window))
                .collect();
            if judgements.iter().all(|j| *j == Judgement::Pass) {
                break R::Ok;
            }
            if let Some(reason) = judgements.iter().find_map(|j| match j {
                Judgement::Inconclusive(r) => Some(r.clone()),
                _ => None,
            }) {
                match plan.on_inconclusive {
                    InconclusivePolicy::Fail => break R::Inconclusive(reason),
                    InconclusivePolicy::Promote => {
                        tracing::warn!(
                            title = "Canary promoted without evidence",
                            "canary step {percent}% is inconclusive ({reason}); on-inconclusive: promote goes on"
                        );
                        record.decision = "promoted-inconclusive".into();
                        break R::Ok;
                    }
                    InconclusivePolicy::Wait => {
                        let waited = self.step_started.elapsed().as_secs_f64() - window;
                        if waited >= plan.inconclusive_wait.as_secs_f64() {
                            break R::Inconclusive(format!(
                                "{reason}; waited {}s beyond the window (inconclusive-wait)",
                                plan.inconclusive_wait.as_secs()
                            ));
                        }
                    }
                }
            }
        };
        record.duration_ms = self.step_started.elapsed().as_millis() as u64;
        record.sources = self
            .feeds
            .iter()
            .map(|f| {
                let (canary, baseline) = f.step_figures();
                SourceFigures {
                    source: f.source.name().to_string(),
                    canary,
                    baseline,
                    tests: f
                        .breaker
                        .evidence()
                        .tests
                        .iter()
                        .map(|t| TestFigure {
                            test: serde_json::to_value(t.test)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            statistic: t.statistic,
                            threshold: t.threshold,
                        })
                        .collect(),
                }
            })
            .collect();
        let (decision, detail) = match &result {
            R::Ok if record.decision.is_empty() => {
                // The figures a person checks the pass against.
                let seen: Vec<String> = record
                    .sources
                    .iter()
                    .map(|f| {
                        let production = f.baseline.as_ref().map_or_else(String::new, |b| {
                            format!(", production {} of {}", b.failures, b.requests)
                        });
                        format!(
                            "{}: canary {} of {} failed{production}",
                            f.source, f.canary.failures, f.canary.requests
                        )
                    })
                    .collect();
                (
                    "pass",
                    format!(
                        "{}; no test tripped, and the window and minimum exposure were met",
                        seen.join("; ")
                    ),
                )
            }
            R::Ok => (
                "promoted-inconclusive",
                "inconclusive, promoted by policy".into(),
            ),
            R::Tripped(why) => ("trip", why.clone()),
            R::Inconclusive(why) => ("inconclusive", why.clone()),
            R::Cancelled => ("cancelled", "cancelled".into()),
            R::Failed(why) => ("failed", why.clone()),
            other => ("failed", format!("{other:?}")),
        };
        record.decision = decision.into();
        record.detail = detail;
        (result, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::evidence::EvidenceSource;

    /// A source that never reads, whose history is given (`None`: it
    /// cannot be read).
    struct Remembers {
        history: Option<Vec<crate::probe::evidence::Tally>>,
        asked: usize,
    }

    impl EvidenceSource for Remembers {
        fn name(&self) -> &str {
            "remembers"
        }
        async fn start(&mut self, _: &Arms, _: &Cancel) -> Result<(), EvidenceError> {
            Ok(())
        }
        async fn read(&mut self, _: &Cancel) -> Result<Reading, EvidenceError> {
            Err(EvidenceError::unavailable("remembers", "never reads"))
        }
        async fn production_history(
            &mut self,
            lookback: Duration,
            step: Duration,
            _: &Cancel,
        ) -> Result<Vec<crate::probe::evidence::Tally>, EvidenceError> {
            assert_eq!(
                (lookback, step),
                (PRODUCTION_HISTORY, Duration::from_secs(5))
            );
            self.asked += 1;
            self.history
                .clone()
                .ok_or_else(|| EvidenceError::unavailable("remembers", "HTTP 503"))
        }
    }

    /// The watch teaches each breaker how production's failures clumped
    /// before the canary's first request; a history it cannot read leaves
    /// the prior, and `failure-clumping: independent` does not ask.
    #[tokio::test]
    async fn production_history_teaches_the_breaker_how_failures_clump() {
        let interval = Duration::from_secs(5);
        let cancel = Cancel::new();
        // Half an hour of 5-s batches, a clump of 3 in every tenth.
        let clumped: Vec<_> = (0..360)
            .map(|i| crate::probe::evidence::Tally {
                requests: 500,
                failures: if i % 10 == 0 { 3 } else { 0 },
            })
            .collect();
        let fresh = || Breaker::new(breaker::Settings::default()).unwrap();
        let prior = fresh().clump_index();

        let mut src = Remembers {
            history: Some(clumped.clone()),
            asked: 0,
        };
        let mut b = fresh();
        learn_history(&mut src, &mut b, interval, &cancel).await;
        assert_eq!(src.asked, 1);
        assert!(
            (2.5..=3.0).contains(&b.clump_index()),
            "{} (prior {prior})",
            b.clump_index()
        );

        let mut broken = Remembers {
            history: None,
            asked: 0,
        };
        let mut b = fresh();
        learn_history(&mut broken, &mut b, interval, &cancel).await;
        assert_eq!((broken.asked, b.clump_index()), (1, prior));

        let mut src = Remembers {
            history: Some(clumped),
            asked: 0,
        };
        let mut b = Breaker::new(breaker::Settings {
            independent_failures: true,
            ..breaker::Settings::default()
        })
        .unwrap();
        learn_history(&mut src, &mut b, interval, &cancel).await;
        assert_eq!((src.asked, b.clump_index()), (0, 1.0));
    }

    fn counters(requests: u64, failures: u64) -> Counters {
        Counters {
            requests,
            failures,
            ..Counters::default()
        }
    }

    /// A baseline series missing from one reading and back in the next
    /// (a scrape gap) adds what it counted meanwhile, not its whole
    /// history since the start again.
    #[test]
    fn a_baseline_back_after_a_gap_is_not_counted_twice() {
        let origin = Instant::now();
        let mut f = Feed::new(
            Box::new(Remembers {
                history: None,
                asked: 0,
            }),
            Breaker::new(breaker::Settings::default()).unwrap(),
        );
        let at = |s: u64| origin + Duration::from_secs(s);
        let reading = |s: u64, c: Counters, b: Option<Counters>| Reading {
            at: at(s),
            canary: c,
            baseline: b,
        };
        let arm = |r: u64, x: u64| breaker::Arm {
            requests: r,
            failures: x,
            slow: None,
        };
        let b1 = f.advance(reading(1, counters(10, 0), Some(counters(100, 1))), origin);
        assert_eq!((b1.start, b1.end), (0.0, 1.0));
        assert_eq!(b1.baseline, Some(arm(100, 1)));
        f.begin_step();
        let b2 = f.advance(reading(2, counters(20, 0), None), origin);
        assert_eq!((b2.canary, b2.baseline), (arm(10, 0), None));
        let b3 = f.advance(reading(3, counters(30, 1), Some(counters(250, 2))), origin);
        assert_eq!(b3.canary, arm(10, 1));
        assert_eq!(b3.baseline, Some(arm(150, 1)), "not 250 requests again");
        // The step's figures: from the step's start (after reading 1).
        let (canary, baseline) = f.step_figures();
        assert_eq!((canary.requests, canary.failures), (20, 1));
        let baseline = baseline.unwrap();
        assert_eq!((baseline.requests, baseline.failures), (150, 1));
        // While the series is missing, the figures keep the last known.
        f.advance(reading(4, counters(40, 1), None), origin);
        assert_eq!(f.step_figures().1.map(|b| b.requests), Some(150));
    }
}
