//! Azure Monitor metrics (`{resourceId}/providers/Microsoft.Insights/metrics`,
//! reference §6) computed from the traffic the sandbox really served: App
//! Service `Requests`, `Http2xx`…`Http5xx`, `HttpResponseTime` per slot, and
//! Container Apps `Requests` split by `revisionName` / `statusCodeCategory`.
//! One-minute grain; the newest bucket is whatever has been served so far.
//! A series can be made to vanish from a point on
//! ([`crate::world::MetricsDropout`]): `stale` stops counting it (older
//! minutes stay), `empty` answers it with no time series at all.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::respond::{self, Req, Resp};
use crate::server::Shared;
use crate::world::{DropoutMode, MinuteStats, PRODUCTION, World};

/// api-versions of the metrics API the sandbox accepts.
pub const METRICS_API_VERSIONS: [&str; 3] = ["2018-01-01", "2023-10-01", "2024-02-01"];

const WEB_METRICS: [(&str, &str, &str); 6] = [
    ("Requests", "Requests", "Count"),
    ("Http2xx", "Http 2xx", "Count"),
    ("Http3xx", "Http 3xx", "Count"),
    ("Http4xx", "Http 4xx", "Count"),
    ("Http5xx", "Http Server Errors", "Count"),
    ("HttpResponseTime", "Response Time", "Seconds"),
];

fn bad(message: impl Into<String>) -> Resp {
    respond::arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// Which resource the metrics are for.
enum Resource {
    Slot { site: String, slot: String },
    ContainerApp(String),
}

fn resolve(world: &World, segs: &[String]) -> Result<(Resource, String), Resp> {
    let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    let not_found = || {
        respond::arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The Resource '{}' was not found.", segs[4..].join("/")),
        )
    };
    if !eq(2, "resourceGroups")
        || !segs[3].eq_ignore_ascii_case(&world.ids.resource_group)
        || !eq(4, "providers")
    {
        return Err(not_found());
    }
    if eq(5, "Microsoft.Web")
        && eq(6, "sites")
        && (segs.len() == 8 || (segs.len() == 10 && eq(8, "slots")))
    {
        let site = segs[7].to_ascii_lowercase();
        let slot = if segs.len() == 10 {
            segs[9].to_ascii_lowercase()
        } else {
            PRODUCTION.to_owned()
        };
        if world
            .sites
            .get(&site)
            .is_some_and(|s| s.slots.contains_key(&slot))
        {
            let ns = if segs.len() == 10 {
                "microsoft.web/sites/slots"
            } else {
                "microsoft.web/sites"
            };
            return Ok((Resource::Slot { site, slot }, ns.to_owned()));
        }
        return Err(not_found());
    }
    if eq(5, "Microsoft.App") && eq(6, "containerApps") && segs.len() == 8 {
        let app = segs[7].to_ascii_lowercase();
        if world.container_apps.contains_key(&app) {
            return Ok((
                Resource::ContainerApp(app),
                "microsoft.app/containerapps".to_owned(),
            ));
        }
    }
    Err(not_found())
}

/// ISO-8601 durations the metrics API takes for `interval`.
fn interval_minutes(v: &str) -> Option<i64> {
    match v.to_ascii_uppercase().as_str() {
        "PT1M" => Some(1),
        "PT5M" => Some(5),
        "PT15M" => Some(15),
        "PT30M" => Some(30),
        "PT1H" => Some(60),
        "PT6H" => Some(360),
        "PT12H" => Some(720),
        "P1D" => Some(1440),
        _ => None,
    }
}

fn parse_timespan(v: Option<&str>) -> Result<(DateTime<Utc>, DateTime<Utc>), Resp> {
    let now = Utc::now();
    let Some(v) = v else {
        return Ok((now - ChronoDuration::hours(1), now));
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                bad(format!(
                    "Invalid timespan '{v}': expected ISO-8601 'start/end'."
                ))
            })
    };
    match v.split_once('/') {
        Some((a, b)) => {
            let (start, end) = (parse(a)?, parse(b)?);
            if end <= start {
                return Err(bad(format!(
                    "Invalid timespan '{v}': the end must be after the start."
                )));
            }
            Ok((start, end))
        }
        None => Err(bad(format!(
            "Invalid timespan '{v}': expected ISO-8601 'start/end'."
        ))),
    }
}

/// `$filter` clauses `dim eq 'value'` joined by `and`; `'*'` splits.
fn parse_filter(v: Option<&str>, dims: &[&str]) -> Result<Vec<(String, String)>, Resp> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for clause in v.split(" and ") {
        let parts: Vec<&str> = clause.trim().splitn(3, ' ').collect();
        let [dim, op, value] = parts.as_slice() else {
            return Err(bad(format!("Invalid $filter '{v}'.")));
        };
        if !op.eq_ignore_ascii_case("eq") {
            return Err(bad(format!(
                "Invalid $filter '{v}': only 'eq' is supported by the sandbox."
            )));
        }
        let Some(dim) = dims.iter().find(|d| d.eq_ignore_ascii_case(dim)) else {
            return Err(bad(format!(
                "Metric dimension name '{dim}' is invalid; valid dimensions are: {}.",
                dims.join(", ")
            )));
        };
        let value = value.trim().trim_matches('\'');
        out.push(((*dim).to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Per-minute samples for one time series, keyed by unix minute.
type Series = BTreeMap<i64, (f64, f64)>; // (value, weight for averages)

fn points(
    series: &Series,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: i64,
    aggs: &[String],
    average_metric: bool,
) -> Vec<Value> {
    let mut out = Vec::new();
    let first = start.timestamp().div_euclid(60);
    let last = end.timestamp().div_euclid(60);
    let mut m = first - first.rem_euclid(step);
    // Bounded by the timespan: at most one point per step.
    while m <= last && out.len() < 100_000 {
        let samples: Vec<(f64, f64)> = series.range(m..m + step).map(|(_, v)| *v).collect();
        let ts = DateTime::from_timestamp(m * 60, 0).unwrap_or(start);
        let mut p = serde_json::Map::new();
        p.insert(
            "timeStamp".into(),
            json!(ts.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        if !samples.is_empty() {
            let total: f64 = samples.iter().map(|s| s.0).sum();
            let weight: f64 = samples.iter().map(|s| s.1).sum();
            for agg in aggs {
                let v = match agg.as_str() {
                    "total" => total,
                    "count" => samples.len() as f64,
                    "average" if average_metric => {
                        if weight > 0.0 {
                            total / weight
                        } else {
                            0.0
                        }
                    }
                    "average" => total / samples.len() as f64,
                    "minimum" => samples.iter().map(|s| s.0).fold(f64::INFINITY, f64::min),
                    "maximum" => samples
                        .iter()
                        .map(|s| s.0)
                        .fold(f64::NEG_INFINITY, f64::max),
                    _ => continue,
                };
                p.insert(agg.clone(), json!(v));
            }
        }
        out.push(Value::Object(p));
        m += step;
    }
    out
}

fn web_series(stats: &BTreeMap<i64, MinuteStats>, metric: &str) -> Series {
    stats
        .iter()
        .map(|(m, s)| {
            let v = match metric {
                "Requests" => (s.requests as f64, 1.0),
                "Http2xx" => (s.http2xx as f64, 1.0),
                "Http3xx" => (s.http3xx as f64, 1.0),
                "Http4xx" => (s.http4xx as f64, 1.0),
                "Http5xx" => (s.http5xx as f64, 1.0),
                // Average over requests, not over minutes.
                _ => (s.response_time_sum_secs, s.requests as f64),
            };
            (*m, v)
        })
        .collect()
}

/// One metric's entry in the answer's `value` array.
fn metric_value(
    resource_id: &str,
    canonical: &str,
    display: &str,
    unit: &str,
    timeseries: Vec<Value>,
) -> Value {
    json!({
        "id": format!("{resource_id}/providers/Microsoft.Insights/metrics/{canonical}"),
        "type": "Microsoft.Insights/metrics",
        "name": {"value": canonical, "localizedValue": display},
        "displayDescription": format!("{display} served by the resource."),
        "unit": unit,
        "errorCode": "Success",
        "timeseries": timeseries,
    })
}

pub(crate) fn handle(shared: &Shared, req: &Req, version: &str, resource: &[String]) -> Resp {
    if req.method != Method::GET {
        return super::method_not_emulated(req);
    }
    let world = shared.world();
    if !METRICS_API_VERSIONS.contains(&version) {
        return super::unsupported_api_version(
            version,
            "metrics",
            &world.ids.location,
            &METRICS_API_VERSIONS,
        );
    }
    let (res, namespace) = match resolve(&world, resource) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(names) = req.query_param("metricnames").filter(|s| !s.is_empty()) else {
        return bad("The metricnames query parameter is required by the sandbox.");
    };
    let interval = req.query_param("interval").unwrap_or("PT1M");
    let Some(step) = interval_minutes(interval) else {
        return bad(format!("Invalid interval '{interval}'."));
    };
    let (start, end) = match parse_timespan(req.query_param("timespan")) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let aggs: Vec<String> = req
        .query_param("aggregation")
        .unwrap_or("Total")
        .split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    if let Some(a) = aggs
        .iter()
        .find(|a| !["total", "count", "average", "minimum", "maximum"].contains(&a.as_str()))
    {
        return bad(format!("Invalid aggregation '{a}'."));
    }
    let resource_id = resource.iter().map(|s| format!("/{s}")).collect::<String>();
    // Buckets younger than the ingestion latency are not visible yet.
    let latency = i64::try_from(world.timing.metrics_latency.as_secs()).unwrap_or(i64::MAX);
    let cutoff = (Utc::now().timestamp().saturating_sub(latency)).div_euclid(60);
    let mut values = Vec::new();
    for name in names.split(',').map(str::trim) {
        let (canonical, timeseries, unit, display) = match &res {
            Resource::Slot { site, slot } => {
                let Some((canonical, display, unit)) = WEB_METRICS
                    .iter()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                else {
                    return bad(format!(
                        "Failed to find metric configuration for provider: Microsoft.Web, resource Type: sites, metric: {name}, Valid metrics: {}",
                        WEB_METRICS.map(|m| m.0).join(",")
                    ));
                };
                let filter = match parse_filter(req.query_param("$filter"), &["Instance"]) {
                    Ok(f) => f,
                    Err(e) => return e,
                };
                let empty = world.slot_dropout(site, slot) == Some(DropoutMode::Empty);
                let Some(slot) = world.sites.get(site).and_then(|s| s.slots.get(slot)) else {
                    return respond::empty(StatusCode::NOT_FOUND);
                };
                if empty {
                    // The series vanished: no time series at all.
                    values.push(metric_value(
                        &resource_id,
                        canonical,
                        display,
                        unit,
                        Vec::new(),
                    ));
                    continue;
                }
                let mut series = web_series(&slot.monitor, canonical);
                series.retain(|m, _| *m <= cutoff);
                let data = points(
                    &series,
                    start,
                    end,
                    step,
                    &aggs,
                    *canonical == "HttpResponseTime",
                );
                let meta = if filter.is_empty() {
                    json!([])
                } else {
                    json!([{"name": {"value": "instance", "localizedValue": "instance"}, "value": "lw1sdlwk000001"}])
                };
                (
                    *canonical,
                    vec![json!({"metadatavalues": meta, "data": data})],
                    *unit,
                    *display,
                )
            }
            Resource::ContainerApp(app) => {
                if !name.eq_ignore_ascii_case("Requests") {
                    return bad(format!(
                        "Failed to find metric configuration for provider: Microsoft.App, resource Type: containerApps, metric: {name}, Valid metrics: Requests"
                    ));
                }
                let filter = match parse_filter(
                    req.query_param("$filter"),
                    &["revisionName", "statusCodeCategory"],
                ) {
                    Ok(f) => f,
                    Err(e) => return e,
                };
                let Some(app) = world.container_apps.get(app) else {
                    return respond::empty(StatusCode::NOT_FOUND);
                };
                // Group samples by the dimensions split with '*'.
                let split: Vec<&str> = filter
                    .iter()
                    .filter(|(_, v)| v == "*")
                    .map(|(d, _)| d.as_str())
                    .collect();
                let mut groups: BTreeMap<Vec<String>, Series> = BTreeMap::new();
                for (minute, counts) in app.monitor.range(..=cutoff) {
                    for ((rev, cat), n) in counts {
                        if world.revision_dropout(&app.name, rev) == Some(DropoutMode::Empty) {
                            // The revision's series vanished from the split.
                            continue;
                        }
                        let value_of = |d: &str| {
                            if d == "revisionName" {
                                rev.clone()
                            } else {
                                cat.clone()
                            }
                        };
                        if filter
                            .iter()
                            .any(|(d, v)| v != "*" && !value_of(d).eq_ignore_ascii_case(v))
                        {
                            continue;
                        }
                        let key: Vec<String> = split.iter().map(|d| value_of(d)).collect();
                        let e = groups
                            .entry(key)
                            .or_default()
                            .entry(*minute)
                            .or_insert((0.0, 1.0));
                        e.0 += *n as f64;
                    }
                }
                if groups.is_empty() && split.is_empty() {
                    groups.insert(Vec::new(), Series::new());
                }
                let ts: Vec<Value> = groups
                    .iter()
                    .map(|(key, series)| {
                        let meta: Vec<Value> = split
                            .iter()
                            .zip(key)
                            .map(|(d, v)| json!({"name": {"value": d.to_ascii_lowercase(), "localizedValue": d}, "value": v}))
                            .collect();
                        json!({"metadatavalues": meta, "data": points(series, start, end, step, &aggs, false)})
                    })
                    .collect();
                ("Requests", ts, "Count", "Requests")
            }
        };
        values.push(metric_value(
            &resource_id,
            canonical,
            display,
            unit,
            timeseries,
        ));
    }
    respond::json(
        StatusCode::OK,
        &json!({
            "cost": 0,
            "timespan": format!("{}/{}", start.format("%Y-%m-%dT%H:%M:%SZ"), end.format("%Y-%m-%dT%H:%M:%SZ")),
            "interval": interval,
            "namespace": namespace,
            "resourceregion": world.ids.location,
            "value": values,
        }),
    )
}
