//! The plain-HTTP control and inspection API under `/_sandbox/`: estate
//! state, request log, reset, faults, the behaviour table (error rates and
//! how errors clump), Azure Monitor series that vanish
//! (`/_sandbox/metrics/dropouts`), traffic, clock, settings.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::faults::FaultSpec;
use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::traffic::TrafficSpec;
use crate::world::{Behaviour, MetricsDropout};

fn error(status: StatusCode, message: impl Into<String>) -> Resp {
    respond::json(status, &json!({"error": message.into()}))
}

pub(crate) fn handle(shared: &Arc<Shared>, req: &Req) -> Resp {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &req.method;
    match segs.as_slice() {
        ["_sandbox", "state"] if *m == Method::GET => {
            let now = Instant::now();
            let world = shared.world().snapshot(now);
            let faults = shared.faults().list(now);
            respond::json(
                StatusCode::OK,
                &json!({"world": world, "faults": faults, "clock": clock(shared)}),
            )
        }
        ["_sandbox", "requests"] if *m == Method::GET => {
            let since = match req.query_param("since").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    return error(StatusCode::BAD_REQUEST, "since must be a sequence number");
                }
            };
            let log = shared.log();
            respond::json(
                StatusCode::OK,
                &json!({"lastSeq": log.last_seq(), "requests": log.since(since)}),
            )
        }
        ["_sandbox", "reset"] if *m == Method::POST => {
            crate::reset_world(shared);
            respond::json(StatusCode::OK, &json!({"reset": true}))
        }
        ["_sandbox", "faults"] => match *m {
            Method::GET => {
                respond::json(StatusCode::OK, &json!(shared.faults().list(Instant::now())))
            }
            Method::DELETE => {
                shared.faults().clear();
                respond::empty(StatusCode::NO_CONTENT)
            }
            Method::POST => add_faults(shared, req),
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE"),
        },
        ["_sandbox", "faults", id] if *m == Method::DELETE => match id.parse::<u64>() {
            Ok(id) if shared.faults().remove(id) => respond::empty(StatusCode::NO_CONTENT),
            _ => error(StatusCode::NOT_FOUND, format!("no fault with id '{id}'")),
        },
        ["_sandbox", "behaviours"] if *m == Method::GET => {
            respond::json(StatusCode::OK, &json!(shared.world().behaviours))
        }
        ["_sandbox", "behaviours", version] => match *m {
            Method::PUT => {
                let behaviour: Behaviour = match serde_json::from_slice(&req.body) {
                    Ok(b) => b,
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, format!("invalid behaviour: {e}"));
                    }
                };
                if let Err(e) = behaviour.validate() {
                    return error(StatusCode::BAD_REQUEST, e);
                }
                shared
                    .world()
                    .behaviours
                    .insert((*version).to_owned(), behaviour.clone());
                respond::json(
                    StatusCode::OK,
                    &json!({"version": version, "behaviour": behaviour}),
                )
            }
            Method::DELETE => {
                shared.world().behaviours.remove(*version);
                respond::empty(StatusCode::NO_CONTENT)
            }
            Method::GET => match shared.world().behaviours.get(*version) {
                Some(b) => respond::json(StatusCode::OK, &json!(b)),
                None => error(
                    StatusCode::NOT_FOUND,
                    format!("no behaviour for version '{version}'"),
                ),
            },
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or DELETE"),
        },
        ["_sandbox", "traffic"] => match *m {
            Method::GET => {
                let runs = shared
                    .traffic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                respond::json(StatusCode::OK, &json!(runs))
            }
            Method::POST => {
                let spec: TrafficSpec = match serde_json::from_slice(&req.body) {
                    Ok(s) => s,
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("invalid traffic spec: {e}"),
                        );
                    }
                };
                match crate::traffic::start(shared, spec) {
                    Ok(id) => respond::json(StatusCode::CREATED, &json!({"id": id})),
                    Err(e) => error(StatusCode::BAD_REQUEST, e),
                }
            }
            Method::DELETE => {
                shared.traffic_epoch.fetch_add(1, Ordering::SeqCst);
                respond::empty(StatusCode::NO_CONTENT)
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE"),
        },
        ["_sandbox", "metrics", "dropouts"] => match *m {
            Method::GET => respond::json(
                StatusCode::OK,
                &json!(shared.world().metrics_dropouts.clone()),
            ),
            Method::POST => {
                let dropout: MetricsDropout = match serde_json::from_slice(&req.body) {
                    Ok(d) => d,
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, format!("invalid dropout: {e}"));
                    }
                };
                match shared.world().add_dropout(dropout) {
                    Ok(d) => respond::json(StatusCode::CREATED, &json!(d)),
                    Err(e) => error(StatusCode::BAD_REQUEST, e),
                }
            }
            Method::DELETE => {
                shared.world().metrics_dropouts.clear();
                respond::empty(StatusCode::NO_CONTENT)
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE"),
        },
        ["_sandbox", "clock"] if *m == Method::GET => respond::json(StatusCode::OK, &clock(shared)),
        ["_sandbox", "settings"] if *m == Method::GET => match shared.settings.get() {
            Some(s) => respond::json(StatusCode::OK, &json!(s)),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "settings not ready"),
        },
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no control route {} {}", req.method, req.path),
        ),
    }
}

fn add_faults(shared: &Shared, req: &Req) -> Resp {
    let specs: Vec<FaultSpec> = match req.json_body() {
        Ok(Some(Value::Array(items))) => {
            match items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")),
            }
        }
        Ok(Some(v)) => match serde_json::from_value(v) {
            Ok(s) => vec![s],
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")),
        },
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "send a fault object or an array of them",
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let mut ids = Vec::new();
    let now = Instant::now();
    let mut faults = shared.faults();
    for spec in specs {
        match faults.add(spec, now) {
            Ok(id) => ids.push(id),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    }
    respond::json(StatusCode::CREATED, &json!({"ids": ids}))
}

fn clock(shared: &Shared) -> Value {
    let uptime = shared.elapsed_ms();
    let now = chrono::Utc::now();
    let started = now - chrono::Duration::milliseconds(i64::try_from(uptime).unwrap_or(0));
    json!({
        "startedAt": started.to_rfc3339(),
        "now": now.to_rfc3339(),
        "uptimeMs": uptime,
        "swapDurationMs": shared.config.swap_duration.as_millis() as u64,
        "buildDurationMs": shared.config.build_duration.as_millis() as u64,
    })
}
