//! Health and identity probes against the hosts that serve an app.
//!
//! A `200` from `/health` says the process is up; it does not say *which*
//! build answered. Every check here also reads the version endpoint, and a
//! deploy only counts as verified when the host reports the expected build.
//! [`Probe::sample_versions`] sends independent requests (no cookies, new
//! routing decision each time) to see what share of real traffic each
//! version gets — how a leftover routing rule shows up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cancel::{Cancel, Cancelled};
use crate::http::error_chain;

pub mod evidence;

/// Where an app answers health checks unless told otherwise.
pub const HEALTH_PATH: &str = "/health";
/// Where an app reports its version unless told otherwise.
pub const VERSION_PATH: &str = "/api/version";

/// What to check on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// Path of the health endpoint (e.g. `/health`).
    pub health_path: String,
    /// Status the health endpoint must return.
    pub health_status: u16,
    /// Path of the version endpoint (e.g. `/api/version`), if any.
    pub version_path: Option<String>,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The health status, if an answer came.
    pub health: Option<u16>,
    /// The version reported, if read.
    pub version: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl Observation {
    /// True when healthy and (if `expected` is given) the expected version.
    pub fn good(&self, endpoints: &Endpoints, expected: Option<&str>) -> bool {
        self.error.is_none()
            && self.health == Some(endpoints.health_status)
            && expected.is_none_or(|e| self.version.as_deref() == Some(e))
    }

    /// One line for logs and summaries.
    pub fn describe(&self) -> String {
        let h = self
            .health
            .map_or_else(|| "no answer".to_string(), |s| s.to_string());
        let v = self.version.clone().unwrap_or_else(|| "unknown".into());
        match &self.error {
            Some(e) => format!("health {h}, version {v} ({e})"),
            None => format!("health {h}, version {v}"),
        }
    }
}

/// Reads a version from a version endpoint's body: a JSON object's
/// `version` (or `Version`, `build`), a JSON string, or plain text.
pub fn parse_version_body(body: &str) -> Option<String> {
    let text = body.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let found = match &v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => ["version", "Version", "build", "buildVersion"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|x| x.as_str().map(str::to_string))),
            _ => None,
        };
        return found
            .map(|s| s.trim().trim_start_matches('v').to_string())
            .filter(|s| !s.is_empty());
    }
    // Plain text: the first line, if it looks like an identifier.
    let line = text.lines().next()?.trim();
    (line.len() <= 128 && !line.contains(char::is_whitespace))
        .then(|| line.trim_start_matches('v').to_string())
}

/// Probes hosts over HTTPS with the shared client.
#[derive(Debug, Clone)]
pub struct Probe {
    http: crate::http::Dial,
    /// Bound on each probe request.
    pub request_timeout: Duration,
}

impl Probe {
    /// A prober using `http` (built by [`crate::http::client`]).
    pub fn new(http: reqwest::Client) -> Self {
        Probe::dialing(crate::http::Dial::new(http))
    }

    /// A prober whose requests go through `dial` (a Kubernetes target's:
    /// hosts under its API server are reached with the cluster's
    /// credentials).
    pub fn dialing(dial: crate::http::Dial) -> Self {
        Probe {
            http: dial,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// How this prober reaches hosts.
    pub fn dial(&self) -> &crate::http::Dial {
        &self.http
    }

    fn url(host: &str, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!("https://{host}{path}")
    }

    /// Health and version of `host`, once. Pin a slot with `routing_name`
    /// (`x-ms-routing-name`), or leave it `None` to get what a new visitor
    /// gets.
    pub async fn observe(
        &self,
        host: &str,
        endpoints: &Endpoints,
        routing_name: Option<&str>,
    ) -> Observation {
        let get = |path: &str| {
            let mut rb = self
                .http
                .get(&Probe::url(host, path))
                .timeout(self.request_timeout);
            if let Some(name) = routing_name {
                rb = rb.query(&[("x-ms-routing-name", name)]);
            }
            rb.send()
        };
        let health = match get(&endpoints.health_path).await {
            Ok(r) => Some(r.status().as_u16()),
            Err(e) => {
                return Observation {
                    health: None,
                    version: None,
                    error: Some(error_chain(&e)),
                };
            }
        };
        let Some(vpath) = &endpoints.version_path else {
            return Observation {
                health,
                version: None,
                error: None,
            };
        };
        match get(vpath).await {
            Ok(r) if r.status().is_success() => {
                match crate::http::read_text(r, crate::http::PROBE_BODY_LIMIT).await {
                    Ok(body) => {
                        let version = parse_version_body(&body);
                        let error = version
                            .is_none()
                            .then(|| format!("{vpath} answered without a version"));
                        Observation {
                            health,
                            version,
                            error,
                        }
                    }
                    Err(e) => Observation {
                        health,
                        version: None,
                        error: Some(format!("{vpath}: {e}")),
                    },
                }
            }
            Ok(r) => Observation {
                health,
                version: None,
                error: Some(format!("{vpath} answered HTTP {}", r.status())),
            },
            Err(e) => Observation {
                health,
                version: None,
                error: Some(error_chain(&e)),
            },
        }
    }

    /// Polls until `host` is healthy and reports `expected`, up to
    /// `attempts` tries `interval` apart and `timeout` overall. Returns every
    /// observation (the last one says why it failed).
    pub async fn wait_until_good(
        &self,
        host: &str,
        endpoints: &Endpoints,
        expected: Option<&str>,
        routing_name: Option<&str>,
        schedule: Schedule,
        cancel: &Cancel,
    ) -> Result<Vec<Observation>, Cancelled> {
        let started = Instant::now();
        let mut seen: Vec<Observation> = Vec::new();
        let attempts = schedule.attempts.max(1);
        for attempt in 1..=attempts {
            cancel.check()?;
            let o = self.observe(host, endpoints, routing_name).await;
            let good = o.good(endpoints, expected);
            let said = o.describe();
            // A log line when the answer changes (the first one included),
            // so a job's log keeps every transition without one line per
            // check; the figures in between are progress (a status line on
            // a terminal, a plain line every 15 s elsewhere).
            if seen.last().is_none_or(|p| p.describe() != said) {
                tracing::info!("{host}: check {attempt} of {attempts}: {said}");
            } else {
                let elapsed = started.elapsed().as_secs();
                tracing::info!(
                    progress = true,
                    done = u64::from(100 * attempt / attempts),
                    "{host}: check {attempt} of {attempts} · {elapsed} s, at most {} s left · {said}",
                    schedule.timeout.as_secs().saturating_sub(elapsed)
                );
            }
            seen.push(o);
            if good
                || attempt == schedule.attempts
                || started.elapsed() + schedule.interval > schedule.timeout
            {
                break;
            }
            cancel.sleep(schedule.interval).await?;
        }
        Ok(seen)
    }

    /// Sends `n` independent version requests to `host` and counts what each
    /// answered (`"error"` for failures).
    pub async fn sample_versions(
        &self,
        host: &str,
        version_path: &str,
        n: usize,
    ) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        let url = Probe::url(host, version_path);
        // One after another, each on its own routing decision: the client
        // keeps no cookie jar, so every request is a new visitor.
        for _ in 0..n {
            let key = match self
                .http
                .get(&url)
                .timeout(self.request_timeout)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    match crate::http::read_text(r, crate::http::PROBE_BODY_LIMIT).await {
                        Ok(body) => {
                            parse_version_body(&body).unwrap_or_else(|| "unparsable".into())
                        }
                        Err(crate::http::ReadError::TooLarge { .. }) => "too large".into(),
                        Err(crate::http::ReadError::Transport(_)) => "error".into(),
                    }
                }
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(_) => "error".into(),
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }
}

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Most tries.
    pub attempts: u32,
    /// Wait between tries.
    pub interval: Duration,
    /// Bound on the whole wait.
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_common_shapes() {
        assert_eq!(
            parse_version_body(r#"{"version":"2.4.1"}"#).as_deref(),
            Some("2.4.1")
        );
        assert_eq!(
            parse_version_body(r#"{"Version":"v2.4.1","x":1}"#).as_deref(),
            Some("2.4.1")
        );
        assert_eq!(parse_version_body(r#""2.4.1""#).as_deref(), Some("2.4.1"));
        assert_eq!(parse_version_body("2.4.1\n").as_deref(), Some("2.4.1"));
        assert_eq!(parse_version_body("<html>hello world</html>"), None);
        assert_eq!(parse_version_body(r#"{"status":"ok"}"#), None);
        assert_eq!(parse_version_body(""), None);
    }

    #[test]
    fn good_needs_health_and_identity() {
        let e = Endpoints {
            health_path: "/health".into(),
            health_status: 200,
            version_path: Some("/api/version".into()),
        };
        let o = Observation {
            health: Some(200),
            version: Some("2.4.0".into()),
            error: None,
        };
        assert!(o.good(&e, None));
        assert!(
            !o.good(&e, Some("2.4.1")),
            "a healthy old build is not a deployed new one"
        );
        assert!(o.good(&e, Some("2.4.0")));
        let down = Observation {
            health: Some(500),
            version: Some("2.4.1".into()),
            error: None,
        };
        assert!(!down.good(&e, Some("2.4.1")));
    }
}
