//! Fault injection: rules that make matching requests fail the way Azure's
//! services fail in the field (throttling, 5xx, slowness, dropped
//! connections, failed or half-answered swaps, Entra outages, busy Kudu,
//! flapping health checks).
//!
//! A rule fires for the next `times` matches and/or within a time window;
//! `probability` draws from an RNG seeded by the sandbox seed, so a run with
//! the same seed and the same request order injects the same faults.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// 429 with `Retry-After` (ARM-shaped body on ARM).
    Throttle {
        #[serde(default = "default_retry_after")]
        retry_after_secs: u32,
    },
    /// A bare server error (500, 502, 503, 504) in the host's error shape.
    Status { status: u16 },
    /// An error answer (400..=599) carrying `message` in the host's error
    /// shape (ARM's `{"error":{"code","message"}}`, Entra's, else text): what
    /// the server says reaches the caller's error report verbatim, the way
    /// tests feed markup and odd text through every place that shows it.
    Error { status: u16, message: String },
    /// Answer normally, but only after `ms` milliseconds.
    Delay { ms: u64 },
    /// Close the connection without answering.
    DropConnection,
    /// Handle the request as usual — the change happens — then close the
    /// connection instead of answering: the caller cannot know it worked.
    AnswerLost,
    /// The swap is accepted (202) but its operation ends in App Service's
    /// 400 "application initialization ... failed"; nothing is exchanged.
    SwapWarmupFailure,
    /// The swap starts and completes, but the POST's response is withheld for
    /// `hold_ms` and then the connection is dropped: the caller times out.
    SwapTimeout {
        #[serde(default = "default_hold")]
        hold_ms: u64,
    },
    /// The Entra token endpoint answers 503 (defaults to `login.azure.test`).
    TokenEndpointDown,
    /// Kudu answers 409 "deployment in progress" to deployment POSTs.
    KuduBusy,
    /// Every other matching health probe answers 500 (defaults to `/health`).
    FlappingHealth,
    /// 200 with a JSON content type and a body of exactly `bytes` bytes
    /// (`{"padding":"xxx…"}` once it is long enough), `Content-Length`
    /// set, streamed lazily in 64 KiB chunks: never allocated whole, and
    /// nothing more is generated once the client goes away. At most 8 GiB.
    HugeBody { bytes: u64 },
    /// [`FaultKind::HugeBody`] without `Content-Length`: chunked transfer
    /// encoding, so the client learns the size only by reading to the end.
    HugeBodyChunked { bytes: u64 },
}

/// Largest `huge_body` / `huge_body_chunked` body.
pub const MAX_HUGE_BODY: u64 = 8 * 1024 * 1024 * 1024;

fn default_retry_after() -> u32 {
    1
}

fn default_hold() -> u64 {
    5_000
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Throttle { .. } => "throttle",
            FaultKind::Status { .. } => "status",
            FaultKind::Error { .. } => "error",
            FaultKind::Delay { .. } => "delay",
            FaultKind::DropConnection => "drop_connection",
            FaultKind::AnswerLost => "answer_lost",
            FaultKind::SwapWarmupFailure => "swap_warmup_failure",
            FaultKind::SwapTimeout { .. } => "swap_timeout",
            FaultKind::TokenEndpointDown => "token_endpoint_down",
            FaultKind::KuduBusy => "kudu_busy",
            FaultKind::FlappingHealth => "flapping_health",
            FaultKind::HugeBody { .. } => "huge_body",
            FaultKind::HugeBodyChunked { .. } => "huge_body_chunked",
        }
    }

    /// Swap faults are consumed by the swap handler, not at the front door.
    pub fn is_swap(&self) -> bool {
        matches!(
            self,
            FaultKind::SwapWarmupFailure | FaultKind::SwapTimeout { .. }
        )
    }
}

/// A fault rule as clients submit it (`POST /_sandbox/faults` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Exact host, or `*.suffix` for any host under it. Kinds with a natural
    /// target default it (`token_endpoint_down` → `login.azure.test`,
    /// `kudu_busy` → `*.scm.azurewebsites.test`).
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP method, case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix, case-insensitive (ARM paths are case-insensitive).
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Fire for this many matches, then retire.
    #[serde(default)]
    pub times: Option<u32>,
    /// Start firing this many ms after the rule is added.
    #[serde(default)]
    pub after_ms: Option<u64>,
    /// Stop firing (and retire) this many ms after the rule is added.
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// Fire on this fraction of matches (0..=1), drawn from the seeded RNG.
    #[serde(default)]
    pub probability: Option<f64>,
}

impl FaultSpec {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            host: None,
            method: None,
            path_prefix: None,
            kind,
            times: None,
            after_ms: None,
            for_ms: None,
            probability: None,
        }
    }

    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub fn for_ms(mut self, ms: u64) -> Self {
        self.for_ms = Some(ms);
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let FaultKind::Status { status } = self.kind
            && !(500..=599).contains(&status)
        {
            return Err(format!("status must be 500..=599, got {status}"));
        }
        if let FaultKind::Error { status, message } = &self.kind {
            if !(400..=599).contains(status) {
                return Err(format!("status must be 400..=599, got {status}"));
            }
            if message.len() > 64 * 1024 {
                return Err(format!(
                    "the message is at most 64 KiB, got {} bytes",
                    message.len()
                ));
            }
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability must be within 0..=1, got {p}"));
        }
        // Every held or delayed request must end: at most ten minutes.
        match self.kind {
            FaultKind::Delay { ms } | FaultKind::SwapTimeout { hold_ms: ms } if ms > 600_000 => {
                return Err(format!("delays are at most 600000 ms, got {ms}"));
            }
            FaultKind::Throttle { retry_after_secs } if retry_after_secs > 3600 => {
                return Err(format!(
                    "retry_after_secs is at most 3600, got {retry_after_secs}"
                ));
            }
            FaultKind::HugeBody { bytes } | FaultKind::HugeBodyChunked { bytes }
                if bytes > MAX_HUGE_BODY =>
            {
                return Err(format!(
                    "huge bodies are at most {MAX_HUGE_BODY} bytes (8 GiB), got {bytes}"
                ));
            }
            _ => {}
        }
        if self.times == Some(0) {
            return Err("times must be at least 1".into());
        }
        Ok(())
    }

    fn effective_host(&self) -> Option<&str> {
        match (&self.host, &self.kind) {
            (Some(h), _) => Some(h.as_str()),
            (None, FaultKind::TokenEndpointDown) => Some(crate::hosts::LOGIN),
            (None, FaultKind::KuduBusy) => Some("*.scm.azurewebsites.test"),
            (None, FaultKind::SwapWarmupFailure | FaultKind::SwapTimeout { .. }) => {
                Some(crate::hosts::ARM)
            }
            _ => None,
        }
    }

    fn effective_method(&self) -> Option<&str> {
        match (&self.method, &self.kind) {
            (Some(m), _) => Some(m.as_str()),
            (None, FaultKind::KuduBusy) => Some("POST"),
            _ => None,
        }
    }

    fn effective_prefix(&self) -> Option<&str> {
        match (&self.path_prefix, &self.kind) {
            (Some(p), _) => Some(p.as_str()),
            (None, FaultKind::FlappingHealth) => Some("/health"),
            _ => None,
        }
    }

    fn matches(&self, host: &str, method: &str, path: &str) -> bool {
        let host_ok = match self.effective_host() {
            None => true,
            Some(pattern) => host_matches(pattern, host),
        };
        let method_ok = self
            .effective_method()
            .is_none_or(|m| m.eq_ignore_ascii_case(method));
        let path_ok = self.effective_prefix().is_none_or(|p| {
            path.len() >= p.len()
                && path
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p))
        });
        host_ok && method_ok && path_ok
    }
}

/// `*.suffix` matches any host ending in `.suffix`; otherwise exact match.
pub(crate) fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            let host = host.to_ascii_lowercase();
            host.ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// A rule as listed by the control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// How often it fired so far.
    pub fired: u32,
    /// How many requests matched it so far (fired or not).
    pub matched: u64,
}

pub(crate) struct FaultTable {
    rules: Vec<(ActiveFault, Instant)>,
    next_id: u64,
    rng: StdRng,
}

impl FaultTable {
    pub fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            next_id: 1,
            // Distinct stream from the traffic-split RNG with the same seed.
            rng: StdRng::seed_from_u64(seed ^ 0xfa17_fa17_fa17_fa17),
        }
    }

    pub fn add(&mut self, spec: FaultSpec, now: Instant) -> Result<u64, String> {
        spec.validate()?;
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push((
            ActiveFault {
                id,
                spec,
                fired: 0,
                matched: 0,
            },
            now,
        ));
        Ok(id)
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(r, _)| r.id != id);
        before != self.rules.len()
    }

    pub fn list(&mut self, now: Instant) -> Vec<ActiveFault> {
        self.retire(now);
        self.rules.iter().map(|(r, _)| r.clone()).collect()
    }

    fn retire(&mut self, now: Instant) {
        self.rules.retain(|(r, added)| {
            let exhausted = r.spec.times.is_some_and(|t| r.fired >= t);
            let expired = r
                .spec
                .for_ms
                .is_some_and(|ms| now.duration_since(*added) >= Duration::from_millis(ms));
            !exhausted && !expired
        });
    }

    /// The first rule of the wanted class (front door or swap) that matches
    /// and decides to fire; counts it.
    pub fn take(
        &mut self,
        host: &str,
        method: &str,
        path: &str,
        swap: bool,
        now: Instant,
    ) -> Option<FaultKind> {
        self.retire(now);
        for (rule, added) in &mut self.rules {
            if rule.spec.kind.is_swap() != swap || !rule.spec.matches(host, method, path) {
                continue;
            }
            if let Some(after) = rule.spec.after_ms
                && now.duration_since(*added) < Duration::from_millis(after)
            {
                continue;
            }
            rule.matched += 1;
            let fire = match (&rule.spec.kind, rule.spec.probability) {
                // Flapping alternates deterministically: matches 1, 3, 5… fail.
                (FaultKind::FlappingHealth, _) => rule.matched % 2 == 1,
                (_, Some(p)) => self.rng.random_bool(p),
                (_, None) => true,
            };
            if fire {
                rule.fired += 1;
                return Some(rule.spec.kind.clone());
            }
        }
        None
    }
}
