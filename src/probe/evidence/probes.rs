//! expedite's own synthetic probes: real requests to the canary's host and
//! the baseline's host at a configured rate, so the breaker has evidence
//! even when users send little traffic — and on the paths that matter
//! (`POST /api/payments` with a read-back), not only `/health`.
//!
//! A probe fails when the answer is not 2xx/3xx, times out or the connection
//! breaks, and — for a request with a read-back — when the created resource
//! cannot be read back (the 2.4.0 bug: the order is accepted, then lost).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Arms, Counters, EvidenceError, EvidenceSource, Quantiles, Reading};
use crate::cancel::Cancel;

/// One request the probes send.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// `GET`, `POST`, …
    pub method: reqwest::Method,
    /// Path and query.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// A path to read the created resource back from; `{id}` is replaced
    /// by the `id` field of the first answer.
    pub read_back: Option<String>,
}

impl std::fmt::Display for ProbeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(rb) = &self.read_back {
            write!(f, " → GET {rb}")?;
        }
        Ok(())
    }
}

/// Parses the `probe-requests` input: one request per line,
/// `METHOD /path [JSON body] [=> GET /path/{id}]`.
pub fn parse_requests(text: &str) -> Result<Vec<ProbeRequest>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: String| format!("line {}: {why}", n + 1);
        let (request, read_back) = match line.split_once("=>") {
            Some((a, b)) => (a.trim(), Some(b.trim())),
            None => (line, None),
        };
        let (method, rest) = request
            .split_once(char::is_whitespace)
            .ok_or_else(|| at(format!("`{request}` is not `METHOD /path`")))?;
        let method = match method.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") => {
                reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| at(e.to_string()))?
            }
            other => return Err(at(format!("`{other}` is not an HTTP method"))),
        };
        let rest = rest.trim();
        let (path, body) = match rest.split_once(char::is_whitespace) {
            Some((p, b)) => (p, Some(b.trim())),
            None => (rest, None),
        };
        if !path.starts_with('/') || path.chars().any(char::is_control) {
            return Err(at(format!("`{path}` is not a path starting with /")));
        }
        let body = match body {
            Some(b) => Some(
                serde_json::from_str::<Value>(b)
                    .map_err(|e| at(format!("the body is not JSON: {e}")))?,
            ),
            None => None,
        };
        let read_back = match read_back {
            None => None,
            Some(rb) => {
                let p = rb
                    .strip_prefix("GET ")
                    .or_else(|| rb.strip_prefix("get "))
                    .unwrap_or(rb)
                    .trim();
                if !p.starts_with('/') || !p.contains("{id}") {
                    return Err(at(format!(
                        "the read-back `{rb}` must be `GET /path/{{id}}`"
                    )));
                }
                Some(p.to_string())
            }
        };
        out.push(ProbeRequest {
            method,
            path: path.to_string(),
            body,
            read_back,
        });
    }
    if out.is_empty() {
        return Err("no probe request given".into());
    }
    Ok(out)
}

/// How the probes run.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Requests per second to *each* arm.
    pub rate: f64,
    /// What to send, in turn.
    pub requests: Vec<ProbeRequest>,
    /// A probe slower than this counts as slow.
    pub slow_threshold: Option<Duration>,
    /// Bound on each request.
    pub timeout: Duration,
}

/// Latencies kept for quantiles (the most recent).
const LATENCY_WINDOW: usize = 2048;
/// Requests in flight per arm at most; beyond, ticks are skipped (a slow
/// arm is already evidence).
const MAX_IN_FLIGHT: usize = 32;

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    failures: u64,
    slow: u64,
    latencies: std::collections::VecDeque<f64>,
    in_flight: usize,
}

impl Tally {
    fn counters(&self, with_slow: bool) -> Counters {
        let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
            sorted.get(i).copied()
        };
        Counters {
            requests: self.requests,
            failures: self.failures,
            slow: with_slow.then_some(self.slow),
            latency: (!sorted.is_empty()).then(|| Quantiles {
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
            }),
        }
    }
}

/// Synthetic probes as an evidence source.
pub struct ProbeSource {
    http: crate::http::Dial,
    settings: ProbeSettings,
    tallies: [Arc<Mutex<Tally>>; 2],
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ProbeSource {
    /// Probes through `http` (the shared client, or a Kubernetes target's
    /// [`crate::http::Dial`]).
    pub fn new(http: crate::http::Dial, settings: ProbeSettings) -> Self {
        ProbeSource {
            http,
            settings,
            tallies: Default::default(),
            tasks: Vec::new(),
        }
    }

    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for ProbeSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One probe: the request, then its read-back. `Err` says why it failed.
async fn probe_once(
    http: &crate::http::Dial,
    base: &str,
    pin: Option<&str>,
    r: &ProbeRequest,
    timeout: Duration,
) -> Result<(), String> {
    let send = |method: reqwest::Method, path: &str, body: Option<&Value>| {
        let mut rb = http
            .request(method, &format!("{base}{path}"))
            .timeout(timeout);
        if let Some(p) = pin {
            rb = rb.query(&[("x-ms-routing-name", p)]);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        rb.send()
    };
    let first = send(r.method.clone(), &r.path, r.body.as_ref())
        .await
        .map_err(|e| crate::http::error_chain(&e))?;
    let status = first.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(format!("{r} answered HTTP {}", status.as_u16()));
    }
    let Some(read_back) = &r.read_back else {
        return Ok(());
    };
    let body = crate::http::read_body(first, crate::http::PROBE_BODY_LIMIT)
        .await
        .map_err(|e| format!("{r}: {e}"))?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| format!("{r}: the answer is not JSON ({e})"))?;
    let id = match body.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(format!("{r}: the answer has no `id` to read back")),
    };
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("{r}: the id is not a plain identifier"));
    }
    let path = read_back.replace("{id}", &id);
    let back = send(reqwest::Method::GET, &path, None)
        .await
        .map_err(|e| crate::http::error_chain(&e))?;
    if back.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "{r}: accepted, but GET {path} answered HTTP {}",
            back.status().as_u16()
        ))
    }
}

impl EvidenceSource for ProbeSource {
    fn name(&self) -> &str {
        "probes"
    }

    async fn start(&mut self, arms: &Arms, cancel: &Cancel) -> Result<(), EvidenceError> {
        self.stop();
        self.tallies = Default::default();
        let period = Duration::from_secs_f64(1.0 / self.settings.rate.max(0.01));
        // The baseline is read through production's host pinned to the
        // production slot (`self`); the canary through its own host.
        let targets = [
            (arms.canary.host.clone(), None),
            (arms.baseline.host.clone(), Some("self")),
        ];
        for (i, (host, pin)) in targets.into_iter().enumerate() {
            let tally = self.tallies[i].clone();
            let http = self.http.clone();
            let settings = self.settings.clone();
            let cancel = cancel.clone();
            let base = format!("https://{host}");
            self.tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut turn = 0usize;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = cancel.cancelled() => return,
                    }
                    {
                        let Ok(mut t) = tally.lock() else { return };
                        if t.in_flight >= MAX_IN_FLIGHT {
                            continue;
                        }
                        t.in_flight += 1;
                    }
                    let Some(request) = settings
                        .requests
                        .get(turn % settings.requests.len())
                        .cloned()
                    else {
                        return;
                    };
                    turn += 1;
                    let (http, base, tally, timeout, slow) = (
                        http.clone(),
                        base.clone(),
                        tally.clone(),
                        settings.timeout,
                        settings.slow_threshold,
                    );
                    tokio::spawn(async move {
                        let began = Instant::now();
                        let result = probe_once(&http, &base, pin, &request, timeout).await;
                        let took = began.elapsed();
                        let Ok(mut t) = tally.lock() else { return };
                        t.in_flight = t.in_flight.saturating_sub(1);
                        t.requests += 1;
                        if result.is_err() {
                            t.failures += 1;
                        }
                        if slow.is_some_and(|s| took > s) {
                            t.slow += 1;
                        }
                        if t.latencies.len() == LATENCY_WINDOW {
                            t.latencies.pop_front();
                        }
                        t.latencies.push_back(took.as_secs_f64());
                    });
                }
            }));
        }
        Ok(())
    }

    async fn read(&mut self, _cancel: &Cancel) -> Result<Reading, EvidenceError> {
        let with_slow = self.settings.slow_threshold.is_some();
        let read = |i: usize| -> Result<Counters, EvidenceError> {
            self.tallies[i]
                .lock()
                .map(|t| t.counters(with_slow))
                .map_err(|_| EvidenceError::Unavailable {
                    source_name: "probes".into(),
                    detail: "probe state poisoned".into(),
                })
        };
        Ok(Reading {
            at: Instant::now(),
            canary: read(0)?,
            baseline: Some(read(1)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_bodies_and_read_backs() {
        let r = parse_requests(
            "# critical paths\nGET /health\nPOST /api/payments {\"amount\": 12000, \"currency\": \"USD\"} => GET /api/payments/{id}\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].method, reqwest::Method::GET);
        assert_eq!(r[1].body.as_ref().unwrap()["amount"], 12000);
        assert_eq!(r[1].read_back.as_deref(), Some("/api/payments/{id}"));
        assert_eq!(
            r[1].to_string(),
            "POST /api/payments → GET /api/payments/{id}"
        );
    }

    #[test]
    fn bad_requests_say_which_line_and_why() {
        for (text, want) in [
            ("GET", "line 1"),
            ("FETCH /x", "not an HTTP method"),
            ("GET health", "not a path"),
            ("POST /x {amount}", "not JSON"),
            ("POST /x {} => GET /x", "{id}"),
            ("\n# only comments\n", "no probe request"),
        ] {
            let e = parse_requests(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn quantiles_come_from_recent_latencies() {
        let mut t = Tally::default();
        for i in 1..=100 {
            t.latencies.push_back(f64::from(i) / 100.0);
        }
        t.requests = 100;
        let c = t.counters(true);
        let q = c.latency.unwrap();
        assert_eq!(q.p50, Some(0.51));
        assert_eq!(q.p99, Some(0.99));
        assert_eq!(c.slow, Some(0));
        assert_eq!(t.counters(false).slow, None);
    }
}
