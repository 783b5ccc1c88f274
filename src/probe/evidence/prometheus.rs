//! Evidence from Prometheus: PromQL instant queries per arm.
//!
//! Each counter is a PromQL template in which `$arm` is replaced by the
//! arm's label (the slot name on App Service, the revision name on Container
//! Apps). The label is escaped for a **double-quoted** PromQL string literal
//! (`\` and `"`); labels holding a quote of another kind, a backtick or a
//! control character are refused. In a regex matcher (`=~"$arm"`) the
//! label's regex metacharacters are *not* escaped.
//!
//! A template must return **one** series or a scalar: wrap it in `sum()`
//! (several series are a configuration error, never summed silently).
//!
//! - `requests`: an empty result means *no data* (the target is down, the
//!   series is stale, the label matches nothing): the arm has no evidence.
//!   For the canary that makes the reading fail as
//!   [`EvidenceError::Unavailable`]; for the baseline it is `None`.
//! - `failures` and `slow`: an empty result while `requests` has data is
//!   zero (a `code=~"5.."` series only exists after the first 5xx).
//! - Counters are made cumulative since [`EvidenceSource::start`] by a
//!   running total of their increases. A value lower than the previous one
//!   (a process restarted, or a pod left the `sum()`: scaled down,
//!   replaced) counts **nothing** and becomes the new base. PromQL's
//!   `increase` would count the whole new value, which for a sum is every
//!   surviving pod's history again — a batch of duplicated evidence, and
//!   exposure the step never had. What a drop costs instead is that one
//!   reading's growth (at most an `evidence-interval` of traffic); the
//!   total stays monotone and never counts a request twice.
//! - The queries of one reading are evaluated at the same `time`, so the
//!   counters describe one moment.
//!
//! Reads are idempotent and retried with backoff through [`http::send`].

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{Arms, Counters, EvidenceError, EvidenceSource, Quantiles, Reading, Tally};
use crate::cancel::Cancel;
use crate::http::{self, HttpError, Idempotency, Redacted, RetryPolicy};

/// The source's name in logs and the summary.
pub const NAME: &str = "prometheus";

/// Requests served by an arm (a counter with a `slot` label).
pub const DEFAULT_REQUESTS: &str = r#"sum(http_requests_total{slot="$arm"})"#;

/// Requests an arm answered with a 5xx.
pub const DEFAULT_FAILURES: &str = r#"sum(http_requests_total{slot="$arm",code=~"5.."})"#;

/// Requests slower than the threshold: all requests minus those in the
/// histogram bucket whose upper bound is the threshold. `$threshold` must
/// be one of the histogram's bucket boundaries (`le` values); it becomes a
/// regex matching both the way Prometheus 2 keeps the exposed label (`1`)
/// and the way Prometheus 3 normalises it (`1.0`).
pub const DEFAULT_SLOW: &str = r#"sum(http_request_duration_seconds_count{slot="$arm"}) - sum(http_request_duration_seconds_bucket{slot="$arm",le=~"$threshold"})"#;

/// Latency quantile over the last minute; `$quantile` is 0.5, 0.95, 0.99.
pub const DEFAULT_LATENCY: &str = r#"histogram_quantile($quantile, sum by (le) (rate(http_request_duration_seconds_bucket{slot="$arm"}[1m])))"#;

/// The PromQL templates a [`PrometheusSource`] evaluates per arm.
#[derive(Debug, Clone, PartialEq)]
pub struct PromQueries {
    /// Requests served (required; `$arm`).
    pub requests: String,
    /// Of which failed (required; `$arm`).
    pub failures: String,
    /// Of which slower than the threshold (`$arm`, optionally `$threshold`).
    pub slow: Option<String>,
    /// The latency threshold `$threshold` stands for: a histogram bucket
    /// boundary.
    pub slow_threshold: Option<Duration>,
    /// A latency quantile (`$arm`, `$quantile`); three extra queries per
    /// arm and reading, so off by default.
    pub latency: Option<String>,
}

impl Default for PromQueries {
    /// [`DEFAULT_REQUESTS`] and [`DEFAULT_FAILURES`]; no slow count, no
    /// quantiles.
    fn default() -> Self {
        PromQueries {
            requests: DEFAULT_REQUESTS.into(),
            failures: DEFAULT_FAILURES.into(),
            slow: None,
            slow_threshold: None,
            latency: None,
        }
    }
}

impl PromQueries {
    /// The default queries, with [`DEFAULT_SLOW`] when a threshold (a
    /// bucket boundary of `http_request_duration_seconds`) is given.
    pub fn standard(slow_threshold: Option<Duration>) -> Self {
        PromQueries {
            slow: slow_threshold.map(|_| DEFAULT_SLOW.to_string()),
            slow_threshold,
            ..PromQueries::default()
        }
    }

    /// Adds [`DEFAULT_LATENCY`] quantiles.
    pub fn with_latency(mut self) -> Self {
        self.latency = Some(DEFAULT_LATENCY.into());
        self
    }

    /// Checks the templates: `$arm` everywhere, `$threshold` only with a
    /// threshold, `$quantile` in the latency template.
    pub fn validate(&self) -> Result<(), String> {
        let mut all = vec![("requests", &self.requests), ("failures", &self.failures)];
        if let Some(s) = &self.slow {
            all.push(("slow", s));
        }
        if let Some(l) = &self.latency {
            all.push(("latency", l));
        }
        for (name, q) in &all {
            if q.trim().is_empty() {
                return Err(format!("the {name} query is empty"));
            }
            if !q.contains("$arm") {
                return Err(format!(
                    "the {name} query must select the arm with $arm (e.g. {{slot=\"$arm\"}}): {q}"
                ));
            }
        }
        if let Some(s) = &self.slow
            && s.contains("$threshold")
        {
            match self.slow_threshold {
                None => {
                    return Err(
                        "the slow query uses $threshold but no latency threshold is set".into(),
                    );
                }
                Some(t) => {
                    threshold_pattern(t)?;
                }
            }
        }
        if let Some(l) = &self.latency
            && !l.contains("$quantile")
        {
            return Err(format!("the latency query must contain $quantile: {l}"));
        }
        Ok(())
    }
}

/// How to authenticate to Prometheus (a proxy in front of it, a managed
/// service). The secrets are never logged.
#[derive(Clone)]
pub enum PromAuth {
    /// `Authorization: Bearer …`.
    Bearer(SecretString),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: SecretString,
    },
}

impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromAuth::Bearer(_) => f.write_str("Bearer(***)"),
            PromAuth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

/// Escapes an arm label for a double-quoted PromQL string literal.
pub fn promql_string_escape(label: &str) -> Result<String, String> {
    if label.is_empty() {
        return Err("the arm label is empty".into());
    }
    if let Some(c) = label
        .chars()
        .find(|c| c.is_control() || *c == '\'' || *c == '`')
    {
        return Err(format!(
            "the arm label {label:?} contains {c:?}, which cannot be put in a PromQL string"
        ));
    }
    Ok(label.replace('\\', r"\\").replace('"', r#"\""#))
}

/// The `le` label regex (inside a PromQL string) for a bucket boundary:
/// `0.5` → `0\\.5`, `1` → `1|1\\.0` (Prometheus 3 writes `1.0`).
pub fn threshold_pattern(threshold: Duration) -> Result<String, String> {
    let secs = threshold.as_secs_f64();
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!(
            "the latency threshold must be positive, got {threshold:?}"
        ));
    }
    let shown = format!("{secs}");
    let mut forms = vec![shown.clone()];
    if !shown.contains(['.', 'e', 'E']) {
        forms.push(format!("{shown}.0"));
    }
    Ok(forms
        .iter()
        .map(|f| f.replace('.', r"\\."))
        .collect::<Vec<_>>()
        .join("|"))
}

/// The template with `$threshold`, `$quantile` and (last, so a label can
/// never introduce a placeholder) `$arm` replaced.
fn splice(
    template: &str,
    arm: &str,
    threshold: Option<&str>,
    quantile: Option<&str>,
) -> Result<String, String> {
    let mut q = template.to_string();
    if let Some(t) = threshold {
        q = q.replace("$threshold", t);
    }
    if let Some(x) = quantile {
        q = q.replace("$quantile", x);
    }
    Ok(q.replace("$arm", &promql_string_escape(arm)?))
}

/// What an instant query's answer means.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// One value (NaN and infinities included; the caller decides).
    Value(f64),
    /// An empty vector.
    Empty,
}

/// Why an answer cannot be used.
#[derive(Debug, Clone, PartialEq)]
enum Unusable {
    Misconfigured(String),
    Unavailable(String),
}

fn parse_sample_value(v: &Value) -> Result<f64, Unusable> {
    // `[<unix time>, "<value>"]`
    let text = v
        .as_array()
        .and_then(|a| a.get(1))
        .and_then(Value::as_str)
        .ok_or_else(|| Unusable::Misconfigured(format!("malformed sample {v}")))?;
    text.parse::<f64>()
        .map_err(|_| Unusable::Misconfigured(format!("the value {text:?} is not a number")))
}

/// The `data` of a query's answer (success or error envelope).
fn parse_data(body: &str) -> Result<Value, Unusable> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        Unusable::Unavailable(format!(
            "the answer is not JSON ({e}); is this the Prometheus base URL?"
        ))
    })?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "success" {
        let kind = v.get("errorType").and_then(Value::as_str).unwrap_or("");
        let message = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("(no error message)");
        return Err(match kind {
            "bad_data" | "execution" => Unusable::Misconfigured(format!("{kind}: {message}")),
            _ => Unusable::Unavailable(format!(
                "status {status:?} {}{message}",
                if kind.is_empty() {
                    String::new()
                } else {
                    format!("{kind}: ")
                }
            )),
        });
    }
    match v {
        Value::Object(mut o) => o
            .remove("data")
            .ok_or_else(|| Unusable::Unavailable("the answer has no data".into())),
        _ => Err(Unusable::Unavailable("the answer has no data".into())),
    }
}

/// Parses a `/api/v1/query` body (success or error envelope).
fn parse_instant(body: &str) -> Result<Answer, Unusable> {
    let data = parse_data(body)?;
    let kind = data.get("resultType").and_then(Value::as_str).unwrap_or("");
    let result = data.get("result").unwrap_or(&Value::Null);
    match kind {
        "scalar" => parse_sample_value(result).map(Answer::Value),
        "vector" => {
            let series = result.as_array().ok_or_else(|| {
                Unusable::Misconfigured("the vector result is not an array".into())
            })?;
            match series.as_slice() {
                [] => Ok(Answer::Empty),
                [one] => {
                    parse_sample_value(one.get("value").unwrap_or(&Value::Null)).map(Answer::Value)
                }
                [a, b, ..] => Err(Unusable::Misconfigured(format!(
                    "the query returned {} series (e.g. {} and {}); it must return one series: wrap it in sum()",
                    series.len(),
                    a.get("metric").unwrap_or(&Value::Null),
                    b.get("metric").unwrap_or(&Value::Null)
                ))),
            }
        }
        other => Err(Unusable::Misconfigured(format!(
            "the query returned a {other:?} result; it must return an instant vector with one series or a scalar"
        ))),
    }
}

/// Parses a `/api/v1/query_range` body: the one series' finite samples
/// `(unix time, value)`, oldest first; none when the query matched
/// nothing.
fn parse_range(body: &str) -> Result<Vec<(f64, f64)>, Unusable> {
    let data = parse_data(body)?;
    let kind = data.get("resultType").and_then(Value::as_str).unwrap_or("");
    if kind != "matrix" {
        return Err(Unusable::Misconfigured(format!(
            "the range query returned a {kind:?} result; a counter query must return one series"
        )));
    }
    let series = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| Unusable::Misconfigured("the matrix result is not an array".into()))?;
    let one = match series.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => one,
        [a, b, ..] => {
            return Err(Unusable::Misconfigured(format!(
                "the query returned {} series (e.g. {} and {}); it must return one series: wrap it in sum()",
                series.len(),
                a.get("metric").unwrap_or(&Value::Null),
                b.get("metric").unwrap_or(&Value::Null)
            )));
        }
    };
    let values = one
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| Unusable::Misconfigured("a series without values".into()))?;
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let t = v
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_f64)
            .ok_or_else(|| Unusable::Misconfigured(format!("malformed sample {v}")))?;
        let x = parse_sample_value(v)?;
        if x.is_finite() && t.is_finite() {
            out.push((t, x));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// Production's requests and failures per step, from the samples of one
/// range query of each counter (the same start and step, so the same
/// timestamps).
///
/// - A step in which either counter went down (a process restarted, or one
///   of the series a `sum()` adds up did) is left out: it is one batch
///   fewer for an estimate, where counting the new process's whole total
///   as one batch would look like a huge clump.
/// - The failures series exists only once the first 5xx was counted: a
///   timestamp it lacks holds its last value, 0 before the first.
/// - A gap in the requests series (the target was down) makes one longer
///   step.
fn history_increments(requests: &[(f64, f64)], failures: &[(f64, f64)]) -> Vec<Tally> {
    let key = |t: f64| (t * 1000.0).round() as i64;
    let fails: std::collections::BTreeMap<i64, f64> =
        failures.iter().map(|&(t, f)| (key(t), f)).collect();
    let mut out = Vec::with_capacity(requests.len());
    let mut previous: Option<(f64, f64)> = None;
    for &(t, r) in requests {
        let f = fails.range(..=key(t)).next_back().map_or(0.0, |(_, &f)| f);
        if let Some((r0, f0)) = previous
            && r >= r0
            && f >= f0
        {
            let requests = (r - r0).round() as u64;
            out.push(Tally {
                requests,
                failures: ((f - f0).round() as u64).min(requests),
            });
        }
        previous = Some((r, f));
    }
    out
}

/// Now, in Unix seconds: the `time` and range ends Prometheus takes.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Most points one history query asks for (Prometheus refuses more than
/// 11,000 per series): a longer lookback takes a coarser step.
pub const MAX_HISTORY_POINTS: f64 = 10_000.0;

/// Makes a counter cumulative across resets, never counting a request
/// twice (see the module docs: a drop counts nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CounterTrack {
    last: Option<f64>,
    total: f64,
}

impl CounterTrack {
    /// Starts at `value` (`None`: the series does not exist yet, so it
    /// will count from 0 when it appears).
    pub fn starting_at(value: Option<f64>) -> Self {
        CounterTrack {
            last: value,
            total: 0.0,
        }
    }

    /// Takes the counter's current value: what it grew by counts; a lower
    /// value than the last counts nothing and is the new base (a series
    /// that did not exist counts from 0).
    pub fn observe(&mut self, value: f64) {
        let value = value.max(0.0);
        match self.last {
            Some(last) if value >= last => self.total += value - last,
            Some(_) => {}
            None => self.total += value,
        }
        self.last = Some(value);
    }

    /// The total since the start, rounded (counters are whole numbers;
    /// extrapolating queries may not be).
    pub fn total(&self) -> u64 {
        self.total.round() as u64
    }
}

#[derive(Debug, Clone)]
struct ArmState {
    label: String,
    requests: CounterTrack,
    failures: CounterTrack,
    slow: CounterTrack,
}

/// One arm's values at one moment (before tracking).
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// `None`: no data.
    requests: Option<f64>,
    failures: f64,
    slow: Option<f64>,
    /// The slow query answered an empty vector (counted as 0).
    slow_empty: bool,
    latency: Option<Quantiles>,
}

/// Where and what to query: everything a [`PrometheusSource`] is built
/// from, checked at configuration time with [`PrometheusSpec::validate`].
#[derive(Debug, Clone)]
pub struct PrometheusSpec {
    /// The Prometheus root (`http://prometheus:9090/`, or
    /// `https://host/prometheus/` behind a path prefix).
    pub base_url: url::Url,
    /// The templates.
    pub queries: PromQueries,
    /// Retries of each query.
    pub policy: RetryPolicy,
    /// Credentials, if Prometheus needs them.
    pub auth: Option<PromAuth>,
}

impl PrometheusSpec {
    /// The default queries against `base_url`, with [`evidence_retry_policy`].
    pub fn new(base_url: url::Url) -> Self {
        PrometheusSpec {
            base_url,
            queries: PromQueries::default(),
            policy: evidence_retry_policy(),
            auth: None,
        }
    }

    /// Checks the URL and the templates.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.base_url.scheme(), "http" | "https") {
            return Err(format!(
                "the Prometheus URL must be http or https: {}",
                Redacted(&self.base_url)
            ));
        }
        query_url(&self.base_url)?;
        self.queries.validate()?;
        if let Some(t) = self.queries.slow_threshold {
            threshold_pattern(t)?;
        }
        Ok(())
    }
}

fn query_url(base: &url::Url) -> Result<url::Url, String> {
    api_url(base, "api/v1/query")
}

fn api_url(base: &url::Url, path: &str) -> Result<url::Url, String> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path)
        .map_err(|e| format!("bad Prometheus URL: {e}"))
}

/// Reads per-arm counters from Prometheus.
#[derive(Debug)]
pub struct PrometheusSource {
    http: reqwest::Client,
    query_url: url::Url,
    range_url: url::Url,
    queries: PromQueries,
    threshold: Option<String>,
    policy: RetryPolicy,
    auth: Option<PromAuth>,
    /// A configuration error found when building; [`EvidenceSource::start`]
    /// reports it.
    invalid: Option<String>,
    arms: Option<(ArmState, ArmState)>,
    warned_slow: bool,
}

/// A retry policy for evidence reads: a few quick attempts, then the
/// reading fails and the next one covers the gap.
pub fn evidence_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(2),
        budget: Duration::from_secs(10),
    }
}

fn misconfigured(detail: impl Into<String>) -> EvidenceError {
    EvidenceError::misconfigured(NAME, detail)
}

fn unavailable(detail: impl Into<String>) -> EvidenceError {
    EvidenceError::unavailable(NAME, detail)
}

impl PrometheusSource {
    /// A source for `spec`. Never fails: a spec that does not pass
    /// [`PrometheusSpec::validate`] makes [`EvidenceSource::start`] fail
    /// with [`EvidenceError::Misconfigured`].
    pub fn new(http: reqwest::Client, spec: PrometheusSpec) -> Self {
        let invalid = spec.validate().err();
        let threshold = spec
            .queries
            .slow_threshold
            .and_then(|t| threshold_pattern(t).ok());
        let query_url = query_url(&spec.base_url).unwrap_or_else(|_| spec.base_url.clone());
        let range_url =
            api_url(&spec.base_url, "api/v1/query_range").unwrap_or_else(|_| spec.base_url.clone());
        PrometheusSource {
            http,
            query_url,
            range_url,
            queries: spec.queries,
            threshold,
            policy: spec.policy,
            auth: spec.auth,
            invalid,
            arms: None,
            warned_slow: false,
        }
    }

    /// Authenticates every query.
    pub fn with_auth(mut self, auth: PromAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The query endpoint (for logs; credentials removed).
    pub fn endpoint(&self) -> String {
        Redacted(&self.query_url).to_string()
    }

    fn classify(&self, promql: &str, e: HttpError) -> EvidenceError {
        match e {
            HttpError::Cancelled(_) => EvidenceError::Cancelled,
            HttpError::Config(m) => misconfigured(m),
            HttpError::Status { status, body, .. } => {
                let reason = match parse_instant(&body) {
                    Err(Unusable::Misconfigured(m) | Unusable::Unavailable(m)) => m,
                    Ok(_) => body,
                };
                match status {
                    StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                        misconfigured(format!("query {promql}: {reason}"))
                    }
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => misconfigured(format!(
                        "{}: HTTP {status}: check the credentials ({reason})",
                        self.endpoint()
                    )),
                    StatusCode::NOT_FOUND => misconfigured(format!(
                        "{}: HTTP 404: is the base URL the Prometheus root?",
                        self.endpoint()
                    )),
                    s => unavailable(format!("{}: HTTP {s}: {reason}", self.endpoint())),
                }
            }
            t @ HttpError::Transport { .. } => unavailable(t.to_string()),
            // A broken or hostile server: no evidence from it, and retrying
            // would only read the same flood again.
            t @ HttpError::TooLarge { .. } => misconfigured(t.to_string()),
        }
    }

    /// One instant query at `time` (unix seconds).
    async fn query(
        &self,
        promql: &str,
        time: &str,
        cancel: &Cancel,
    ) -> Result<Answer, EvidenceError> {
        let body = self
            .get(&self.query_url, promql, &[("time", time)], cancel)
            .await?;
        parse_instant(&body).map_err(|u| self.unusable(promql, u))
    }

    /// One range query (unix seconds; `step` in seconds): the series'
    /// samples.
    async fn query_range(
        &self,
        promql: &str,
        (start, end, step): (f64, f64, f64),
        cancel: &Cancel,
    ) -> Result<Vec<(f64, f64)>, EvidenceError> {
        let (start, end, step) = (
            format!("{start:.3}"),
            format!("{end:.3}"),
            format!("{step:.3}"),
        );
        let params = [
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
        ];
        let body = self.get(&self.range_url, promql, &params, cancel).await?;
        parse_range(&body).map_err(|u| self.unusable(promql, u))
    }

    fn unusable(&self, promql: &str, u: Unusable) -> EvidenceError {
        match u {
            Unusable::Misconfigured(m) => misconfigured(format!("query {promql}: {m}")),
            Unusable::Unavailable(m) => unavailable(format!("{}: {m}", self.endpoint())),
        }
    }

    /// GET `url` with `query=promql` and `params`: the answer's body.
    async fn get(
        &self,
        url: &url::Url,
        promql: &str,
        params: &[(&str, &str)],
        cancel: &Cancel,
    ) -> Result<String, EvidenceError> {
        let build = || {
            let rb = self
                .http
                .get(url.clone())
                .query(&[("query", promql)])
                .query(params)
                .header(reqwest::header::ACCEPT, "application/json");
            match &self.auth {
                Some(PromAuth::Bearer(t)) => rb.bearer_auth(t.expose_secret()),
                Some(PromAuth::Basic { user, password }) => {
                    rb.basic_auth(user, Some(password.expose_secret()))
                }
                None => rb,
            }
        };
        let resp = http::send(build, Idempotency::Idempotent, &self.policy, cancel)
            .await
            .map_err(|e| self.classify(promql, e))?;
        Ok(resp.text().into_owned())
    }

    /// A counter's value: `None` for no data; NaN/∞ is a configuration
    /// error.
    async fn counter(
        &self,
        template: &str,
        arm: &str,
        time: &str,
        cancel: &Cancel,
    ) -> Result<Option<f64>, EvidenceError> {
        let q = splice(template, arm, self.threshold.as_deref(), None).map_err(misconfigured)?;
        match self.query(&q, time, cancel).await? {
            Answer::Empty => Ok(None),
            Answer::Value(v) if v.is_finite() => Ok(Some(v)),
            Answer::Value(v) => Err(misconfigured(format!(
                "query {q}: a counter must be a finite number, got {v}"
            ))),
        }
    }

    async fn quantiles(
        &self,
        template: &str,
        arm: &str,
        time: &str,
        cancel: &Cancel,
    ) -> Result<Quantiles, EvidenceError> {
        let one = |x: &'static str| async move {
            let q =
                splice(template, arm, self.threshold.as_deref(), Some(x)).map_err(misconfigured)?;
            Ok::<_, EvidenceError>(match self.query(&q, time, cancel).await? {
                Answer::Value(v) if v.is_finite() => Some(v),
                _ => None,
            })
        };
        let (p50, p95, p99) = tokio::try_join!(one("0.5"), one("0.95"), one("0.99"))?;
        Ok(Quantiles { p50, p95, p99 })
    }

    async fn sample(
        &self,
        arm: &str,
        time: &str,
        cancel: &Cancel,
    ) -> Result<Sample, EvidenceError> {
        let slow = async {
            match &self.queries.slow {
                Some(t) => self.counter(t, arm, time, cancel).await.map(Some),
                None => Ok(None),
            }
        };
        let latency = async {
            match &self.queries.latency {
                Some(t) => self.quantiles(t, arm, time, cancel).await.map(Some),
                None => Ok(None),
            }
        };
        let (requests, failures, slow, latency) = tokio::try_join!(
            self.counter(&self.queries.requests, arm, time, cancel),
            self.counter(&self.queries.failures, arm, time, cancel),
            slow,
            latency,
        )?;
        Ok(Sample {
            requests,
            failures: failures.unwrap_or(0.0),
            slow_empty: matches!(slow, Some(None)),
            slow: slow.map(|s| s.unwrap_or(0.0)),
            latency,
        })
    }

    async fn sample_both(
        &self,
        canary: &str,
        baseline: &str,
        cancel: &Cancel,
    ) -> Result<(Sample, Sample), EvidenceError> {
        cancel.check().map_err(|_| EvidenceError::Cancelled)?;
        let time = format!("{:.3}", unix_now());
        tokio::try_join!(
            self.sample(canary, &time, cancel),
            self.sample(baseline, &time, cancel)
        )
    }

    fn warn_empty_slow(&mut self, arm: &str, s: &Sample) {
        // With the default template an empty slow result while requests
        // have data means the threshold is not a bucket boundary.
        if !self.warned_slow
            && s.requests.is_some_and(|r| r > 0.0)
            && s.slow_empty
            && self.queries.slow.as_deref() == Some(DEFAULT_SLOW)
        {
            tracing::warn!(
                "{NAME}: the slow-request query for {arm} returned nothing although requests were counted; \
                 the latency threshold must be a bucket boundary of http_request_duration_seconds"
            );
            self.warned_slow = true;
        }
    }
}

impl ArmState {
    fn new(label: &str, s: &Sample) -> Self {
        ArmState {
            label: label.to_string(),
            requests: CounterTrack::starting_at(s.requests),
            failures: CounterTrack::starting_at(s.requests.map(|_| s.failures)),
            slow: CounterTrack::starting_at(s.requests.and(s.slow)),
        }
    }

    /// Takes a sample; `None` when it holds no data for this arm (the
    /// trackers are then left as they were).
    fn update(&mut self, s: &Sample) -> Option<Counters> {
        let requests = s.requests?;
        self.requests.observe(requests);
        self.failures.observe(s.failures);
        if let Some(slow) = s.slow {
            self.slow.observe(slow);
        }
        let total = self.requests.total();
        Some(Counters {
            requests: total,
            failures: self.failures.total().min(total),
            slow: s.slow.map(|_| self.slow.total().min(total)),
            latency: s.latency,
        })
    }
}

impl EvidenceSource for PrometheusSource {
    fn name(&self) -> &str {
        NAME
    }

    async fn start(&mut self, arms: &Arms, cancel: &Cancel) -> Result<(), EvidenceError> {
        if let Some(e) = &self.invalid {
            return Err(misconfigured(e.clone()));
        }
        for arm in [&arms.canary, &arms.baseline] {
            promql_string_escape(&arm.label).map_err(misconfigured)?;
        }
        let (c, b) =
            Box::pin(self.sample_both(&arms.canary.label, &arms.baseline.label, cancel)).await?;
        self.warn_empty_slow(&arms.canary.label, &c);
        self.warn_empty_slow(&arms.baseline.label, &b);
        self.arms = Some((
            ArmState::new(&arms.canary.label, &c),
            ArmState::new(&arms.baseline.label, &b),
        ));
        Ok(())
    }

    async fn read(&mut self, cancel: &Cancel) -> Result<Reading, EvidenceError> {
        let (canary, baseline) = match &self.arms {
            Some((c, b)) => (c.label.clone(), b.label.clone()),
            None => return Err(misconfigured("read before start")),
        };
        let (c, b) = Box::pin(self.sample_both(&canary, &baseline, cancel)).await?;
        let at = Instant::now();
        self.warn_empty_slow(&canary, &c);
        self.warn_empty_slow(&baseline, &b);
        if c.requests.is_none() {
            return Err(unavailable(format!(
                "no data for the canary {canary:?}: the requests query returned nothing (is the target up and labelled?)"
            )));
        }
        let Some((cs, bs)) = self.arms.as_mut() else {
            return Err(misconfigured("read before start"));
        };
        let canary_counters = cs.update(&c).unwrap_or_default();
        let baseline_counters = bs.update(&b);
        Ok(Reading {
            at,
            canary: canary_counters,
            baseline: baseline_counters,
        })
    }

    async fn production_history(
        &mut self,
        lookback: Duration,
        step: Duration,
        cancel: &Cancel,
    ) -> Result<Vec<Tally>, EvidenceError> {
        let Some((_, baseline)) = &self.arms else {
            return Err(misconfigured("history before start"));
        };
        cancel.check().map_err(|_| EvidenceError::Cancelled)?;
        let end = unix_now();
        let lookback = lookback.as_secs_f64();
        let step = step
            .as_secs_f64()
            .max(lookback / MAX_HISTORY_POINTS)
            .max(0.001);
        let range = (end - lookback, end, step);
        let arm = |t: &str| {
            splice(t, &baseline.label, self.threshold.as_deref(), None).map_err(misconfigured)
        };
        let (rq, fq) = (arm(&self.queries.requests)?, arm(&self.queries.failures)?);
        let (requests, failures) = tokio::try_join!(
            self.query_range(&rq, range, cancel),
            self.query_range(&fq, range, cancel)
        )?;
        Ok(history_increments(&requests, &failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_goes_down_counts_nothing_and_stays_monotone() {
        let mut t = CounterTrack::starting_at(Some(100.0));
        let mut seen = Vec::new();
        for v in [100.0, 110.0, 125.0, 3.0, 10.0, 10.0, 2.0, 40.0] {
            t.observe(v);
            seen.push(t.total());
        }
        // +10, +15, drop (nothing), +7, 0, drop, +38
        assert_eq!(seen, vec![0, 10, 25, 25, 32, 32, 32, 70]);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        // sum() over three pods, 100 requests each; one is replaced (its
        // series gone, a new one from 0) while the others grow by 10:
        // the survivors' 220 are not counted again; what comes after is.
        let mut t = CounterTrack::starting_at(Some(300.0));
        for v in [320.0, 220.0, 235.0] {
            t.observe(v);
        }
        assert_eq!(t.total(), 35, "20, then nothing for the drop, then 15");
        // A series that did not exist at the start counts from 0.
        let mut t = CounterTrack::starting_at(None);
        t.observe(7.0);
        assert_eq!(t.total(), 7);
    }

    /// 100 seeded trials of a `sum()` over 1–4 pods that grow, restart,
    /// leave and join at random: the tracked total never counts more than
    /// the pods really served, never goes down, loses nothing while the
    /// sum never drops, and the history's per-step tallies follow the same
    /// rule (their sum equals the tracked total).
    #[test]
    fn summed_counters_that_restart_leave_or_join_are_never_counted_twice() {
        use rand::{Rng, SeedableRng};
        let mut whole = 0;
        for seed in 0..100u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut pods: Vec<f64> = (0..rng.random_range(1..=4)).map(|_| 100.0).collect();
            let start: f64 = pods.iter().sum();
            let mut t = CounterTrack::starting_at(Some(start));
            let (mut served, mut dropped, mut last) = (0.0, false, t.total());
            let mut samples = vec![(0.0, start)];
            let steps = rng.random_range(5..=60);
            for step in 1..=steps {
                for p in pods.iter_mut() {
                    let grew = f64::from(rng.random_range(0..10u32));
                    if rng.random_bool(0.05) {
                        *p = grew; // restarted: counts from 0 again
                    } else {
                        *p += grew;
                    }
                    served += grew;
                }
                if pods.len() > 1 && rng.random_bool(0.05) {
                    pods.swap_remove(rng.random_range(0..pods.len())); // scaled away
                }
                if rng.random_bool(0.05) {
                    let new = f64::from(rng.random_range(0..3u32));
                    pods.push(new); // a new pod, its first requests
                    served += new;
                }
                let sum: f64 = pods.iter().sum();
                dropped |= sum < samples.last().map_or(0.0, |s| s.1);
                samples.push((f64::from(step), sum));
                t.observe(sum);
                assert!(t.total() >= last, "seed {seed}: went down");
                last = t.total();
                assert!(t.total() as f64 <= served, "seed {seed}: counted twice");
            }
            if !dropped {
                assert_eq!(t.total() as f64, served, "seed {seed}: lost requests");
                whole += 1;
            }
            let zeros: Vec<(f64, f64)> = samples.iter().map(|&(at, _)| (at, 0.0)).collect();
            let tallied: u64 = history_increments(&samples, &zeros)
                .iter()
                .map(|x| x.requests)
                .sum();
            assert_eq!(
                tallied,
                t.total(),
                "seed {seed}: history and readings differ"
            );
        }
        // Both kinds of trial happened: some with no drop at all.
        assert!((5..95).contains(&whole), "{whole} trials without a drop");
    }

    #[test]
    fn labels_are_escaped_or_refused() {
        assert_eq!(promql_string_escape("staging").unwrap(), "staging");
        assert_eq!(promql_string_escape(r#"a"b\c"#).unwrap(), r#"a\"b\\c"#);
        for bad in ["", "a'b", "a`b", "a\nb", "a\u{0}b"] {
            assert!(promql_string_escape(bad).is_err(), "{bad:?}");
        }
        let q = splice(DEFAULT_FAILURES, r#"x"} or vector(1) #"#, None, None).unwrap();
        assert_eq!(
            q,
            r#"sum(http_requests_total{slot="x\"} or vector(1) #",code=~"5.."})"#
        );
        // A label cannot smuggle a placeholder in.
        let q = splice(
            "f{a=\"$arm\",le=\"$threshold\"}",
            "$threshold",
            Some("1"),
            None,
        )
        .unwrap();
        assert_eq!(q, "f{a=\"$threshold\",le=\"1\"}");
    }

    #[test]
    fn thresholds_match_both_label_spellings() {
        assert_eq!(
            threshold_pattern(Duration::from_millis(500)).unwrap(),
            r"0\\.5"
        );
        assert_eq!(
            threshold_pattern(Duration::from_secs(1)).unwrap(),
            r"1|1\\.0"
        );
        assert_eq!(
            threshold_pattern(Duration::from_millis(2500)).unwrap(),
            r"2\\.5"
        );
        assert!(threshold_pattern(Duration::ZERO).is_err());
        let q = PromQueries::standard(Some(Duration::from_millis(250)));
        q.validate().unwrap();
        let s = splice(q.slow.as_deref().unwrap(), "staging", Some(r"0\\.25"), None).unwrap();
        assert!(s.contains(r#"le=~"0\\.25""#), "{s}");
        let no_threshold = PromQueries {
            slow: Some(DEFAULT_SLOW.into()),
            ..PromQueries::default()
        };
        assert!(no_threshold.validate().is_err());
        let no_arm = PromQueries {
            requests: "sum(http_requests_total)".into(),
            ..PromQueries::default()
        };
        assert!(no_arm.validate().unwrap_err().contains("$arm"));
    }

    #[test]
    fn answers_are_parsed() {
        let ok = |r: &str| format!(r#"{{"status":"success","data":{r}}}"#);
        assert_eq!(
            parse_instant(&ok(
                r#"{"resultType":"vector","result":[{"metric":{},"value":[1.5,"42"]}]}"#
            )),
            Ok(Answer::Value(42.0))
        );
        assert_eq!(
            parse_instant(&ok(r#"{"resultType":"vector","result":[]}"#)),
            Ok(Answer::Empty)
        );
        assert_eq!(
            parse_instant(&ok(r#"{"resultType":"scalar","result":[1.5,"3"]}"#)),
            Ok(Answer::Value(3.0))
        );
        match parse_instant(&ok(
            r#"{"resultType":"vector","result":[{"metric":{"code":"200"},"value":[1,"1"]},{"metric":{"code":"500"},"value":[1,"2"]}]}"#,
        )) {
            Err(Unusable::Misconfigured(m)) => {
                assert!(m.contains("sum()") && m.contains("2 series"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_instant(&ok(r#"{"resultType":"matrix","result":[]}"#)),
            Err(Unusable::Misconfigured(_))
        ));
        match parse_instant(&ok(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}"#,
        )) {
            Ok(Answer::Value(v)) => assert!(v.is_nan()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_instant(&ok(
                r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}"#
            )),
            Ok(Answer::Value(f64::INFINITY))
        );
        assert!(matches!(
            parse_instant(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            Err(Unusable::Misconfigured(m)) if m.contains("parse error")
        ));
        assert!(matches!(
            parse_instant(r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#),
            Err(Unusable::Unavailable(_))
        ));
        assert!(matches!(
            parse_instant("<html>nginx</html>"),
            Err(Unusable::Unavailable(_))
        ));
    }

    #[test]
    fn range_answers_are_parsed() {
        let ok = |r: &str| format!(r#"{{"status":"success","data":{r}}}"#);
        assert_eq!(
            parse_range(&ok(
                r#"{"resultType":"matrix","result":[{"metric":{},"values":[[2,"5"],[1,"3"],[3,"NaN"],[4,"9"]]}]}"#
            )),
            Ok(vec![(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]),
            "sorted, and a value that is not a number left out"
        );
        assert_eq!(
            parse_range(&ok(r#"{"resultType":"matrix","result":[]}"#)),
            Ok(vec![])
        );
        match parse_range(&ok(
            r#"{"resultType":"matrix","result":[{"metric":{"code":"200"},"values":[]},{"metric":{"code":"500"},"values":[]}]}"#,
        )) {
            Err(Unusable::Misconfigured(m)) => assert!(m.contains("sum()"), "{m}"),
            other => panic!("{other:?}"),
        }
        for bad in [
            r#"{"resultType":"vector","result":[]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[["x","1"]]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"one"]]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{}}]}"#,
        ] {
            assert!(
                matches!(parse_range(&ok(bad)), Err(Unusable::Misconfigured(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_range(r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries"}"#),
            Err(Unusable::Misconfigured(m)) if m.contains("11,000")
        ));
        assert!(matches!(
            parse_range("<html>proxy error</html>"),
            Err(Unusable::Unavailable(_))
        ));
    }

    #[test]
    fn history_is_per_step_increments_without_resets() {
        let t = |r: &[(f64, f64)]| r.to_vec();
        let tally = |requests, failures| Tally { requests, failures };
        // Failures appear at t=3 (the first 5xx); the requests counter
        // resets between t=4 and t=5 (a restart): that step is left out.
        let requests = t(&[
            (1.0, 100.0),
            (2.0, 110.0),
            (3.0, 130.0),
            (4.0, 140.0),
            (5.0, 4.0),
            (6.0, 24.0),
        ]);
        let failures = t(&[(3.0, 2.0), (4.0, 2.0), (5.0, 2.0), (6.0, 5.0)]);
        assert_eq!(
            history_increments(&requests, &failures),
            vec![tally(10, 0), tally(20, 2), tally(10, 0), tally(20, 3)]
        );
        // A failures counter that resets alone also leaves its step out;
        // a missing failures sample holds the last value; a gap in the
        // requests makes one longer step.
        let requests = t(&[(0.0, 0.0), (1.0, 10.0), (2.0, 20.0), (5.0, 50.0)]);
        let failures = t(&[(0.0, 7.0), (1.0, 8.0), (2.0, 1.0)]);
        assert_eq!(
            history_increments(&requests, &failures),
            vec![tally(10, 1), tally(30, 0)]
        );
        // Extrapolated (fractional) counters are rounded; failures never
        // exceed requests.
        let requests = t(&[(0.0, 0.0), (1.0, 2.4)]);
        let failures = t(&[(0.0, 0.0), (1.0, 3.0)]);
        assert_eq!(history_increments(&requests, &failures), vec![tally(2, 2)]);
        assert_eq!(history_increments(&[], &failures), vec![]);
    }

    #[test]
    fn samples_track_per_arm() {
        let s = |r: Option<f64>, f: f64| Sample {
            requests: r,
            failures: f,
            slow: None,
            slow_empty: false,
            latency: None,
        };
        let mut a = ArmState::new("staging", &s(Some(50.0), 0.0));
        assert_eq!(a.update(&s(None, 0.0)), None, "no data is not zero");
        let c = a.update(&s(Some(150.0), 20.0)).unwrap();
        assert_eq!((c.requests, c.failures, c.slow), (100, 20, None));
        // The process restarted: the drop counts nothing, and the counters
        // grow from their new values.
        let c = a.update(&s(Some(30.0), 5.0)).unwrap();
        assert_eq!((c.requests, c.failures), (100, 20));
        let c = a.update(&s(Some(40.0), 6.0)).unwrap();
        assert_eq!((c.requests, c.failures), (110, 21));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = PromAuth::Bearer(SecretString::from("s3cr3t".to_string()));
        assert!(!format!("{a:?}").contains("s3cr3t"));
        let b = PromAuth::Basic {
            user: "u".into(),
            password: SecretString::from("pw-123".to_string()),
        };
        assert!(!format!("{b:?}").contains("pw-123"));
    }
}
