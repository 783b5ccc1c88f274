//! The built-in traffic generator: synthetic users hitting a demo-app host
//! at a given rate for a bounded time, in-process (through the same routing,
//! faults, behaviours and metrics as real requests, but not the request log),
//! so canary metrics have something to measure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::respond::{Outcome, Req};
use crate::server::Shared;

/// Highest rate accepted, requests per second.
pub const MAX_RPS: f64 = 1000.0;
/// Longest run accepted.
pub const MAX_DURATION_MS: u64 = 600_000;

/// What to generate (`POST /_sandbox/traffic` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// A demo-app host, e.g. `app-contoso-payments.azurewebsites.test`.
    pub host: String,
    /// Requests per second (at most 1000).
    pub rps: f64,
    /// How long to run (at most 600000).
    pub duration_ms: u64,
    /// Fraction (0..=1) of requests that place an order; the rest read
    /// `/api/version`.
    #[serde(default = "default_order_ratio")]
    pub order_ratio: f64,
    /// Fraction (0..=1) of orders above 10,000.
    #[serde(default)]
    pub large_order_ratio: f64,
}

fn default_order_ratio() -> f64 {
    0.5
}

impl TrafficSpec {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.rps > 0.0 && self.rps <= MAX_RPS) {
            return Err(format!("rps must be within (0, {MAX_RPS}]"));
        }
        if self.duration_ms == 0 || self.duration_ms > MAX_DURATION_MS {
            return Err(format!("duration_ms must be within 1..={MAX_DURATION_MS}"));
        }
        for (n, v) in [
            ("order_ratio", self.order_ratio),
            ("large_order_ratio", self.large_order_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{n} must be within 0..=1"));
            }
        }
        Ok(())
    }
}

/// Progress of one generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrafficRun {
    pub id: u64,
    pub spec: TrafficSpec,
    pub sent: u64,
    /// Status code → count (0 = dropped connection).
    pub by_status: BTreeMap<u16, u64>,
    pub done: bool,
}

pub(crate) fn start(shared: &Arc<Shared>, spec: TrafficSpec) -> Result<u64, String> {
    spec.validate()?;
    let id = {
        let mut runs = shared.traffic.lock().unwrap_or_else(|e| e.into_inner());
        let id = runs.len() as u64 + 1;
        runs.push(TrafficRun {
            id,
            spec: spec.clone(),
            sent: 0,
            by_status: BTreeMap::new(),
            done: false,
        });
        id
    };
    let epoch = shared.traffic_epoch.load(Ordering::SeqCst);
    let shared = shared.clone();
    tokio::spawn(async move { run(shared, id, spec, epoch).await });
    Ok(id)
}

async fn run(shared: Arc<Shared>, id: u64, spec: TrafficSpec, epoch: u64) {
    let period = Duration::from_secs_f64(1.0 / spec.rps);
    let deadline = Instant::now() + Duration::from_millis(spec.duration_ms);
    // Bounded in count as well as time.
    let max = (spec.rps * spec.duration_ms as f64 / 1000.0).ceil() as u64;
    let mut rng = StdRng::seed_from_u64(shared.config.seed ^ id);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = shared.shutdown.clone();
    for _ in 0..max {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if Instant::now() >= deadline
            || *shutdown.borrow()
            || shared.traffic_epoch.load(Ordering::SeqCst) != epoch
        {
            break;
        }
        let req = synthetic(&spec, &mut rng);
        let (outcome, _) = crate::server::route(&shared, &req).await;
        let status = match outcome {
            Outcome::Respond(r) => r.status().as_u16(),
            Outcome::Drop => 0,
        };
        let mut runs = shared.traffic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = runs.iter_mut().find(|r| r.id == id) {
            r.sent += 1;
            *r.by_status.entry(status).or_insert(0) += 1;
        }
    }
    let mut runs = shared.traffic.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = runs.iter_mut().find(|r| r.id == id) {
        r.done = true;
    }
}

fn synthetic(spec: &TrafficSpec, rng: &mut StdRng) -> Req {
    let order = rng.random_bool(spec.order_ratio);
    let (method, path, body) = if order {
        let amount = if rng.random_bool(spec.large_order_ratio) {
            12_000
        } else {
            120
        };
        (
            Method::POST,
            "/api/payments",
            Bytes::from(format!(r#"{{"amount":{amount},"currency":"USD"}}"#)),
        )
    } else {
        (Method::GET, "/api/version", Bytes::new())
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Req {
        method,
        host: spec.host.to_ascii_lowercase(),
        path: path.to_owned(),
        raw_query: None,
        query: Vec::new(),
        headers,
        body,
        no_length: false,
    }
}
