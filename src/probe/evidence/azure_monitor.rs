//! Evidence from Azure Monitor platform metrics
//! (`{resourceId}/providers/Microsoft.Insights/metrics`, reference §6).
//!
//! - App Service: each slot is its own resource (`…/sites/{app}` for
//!   production, `…/sites/{app}/slots/{name}` otherwise); `Requests` and
//!   `Http5xx` with `Total`, one query per arm and reading. Arm labels are
//!   slot names.
//! - Container Apps: one resource; `Requests` split by `revisionName` and
//!   `statusCodeCategory` (`5xx` are failures), one query per reading for
//!   both arms. Arm labels are revision names.
//!
//! Metrics come in one-minute buckets and the newest bucket is partial.
//! "Cumulative since start" is: the start time's minute `M0` is recorded,
//! with each counter's value in bucket `M0` as seen at start (`base`); a
//! reading sums every bucket from `M0` on and subtracts `base`. Buckets only
//! grow, so the result only grows; a running maximum keeps it monotone even
//! if Azure revises a bucket down.
//!
//! Production's history before the watch is its minute buckets of the
//! last half hour before the start's minute (one query).
//!
//! Caveat: Azure ingests with a delay of one to three minutes. When bucket
//! `M0` is not visible yet at start, `base` is 0 and the first reading
//! includes the requests served in `M0` before the start (at most one
//! minute). Evidence is also that late: the breaker's silence timeout must
//! allow for it. Neither slow-request counts nor quantiles are available
//! (App Service only has an average response time).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ArmRef, Arms, Counters, EvidenceError, EvidenceSource, Reading, Tally};
use crate::azure::arm::{Arm, ArmError};
use crate::cancel::Cancel;

/// The source's name in logs and the summary.
pub const NAME: &str = "azure-monitor";

/// api-version of the metrics API.
pub const METRICS_API_VERSION: &str = "2024-02-01";

/// App Service's production slot name.
pub const PRODUCTION_SLOT: &str = "production";

/// The resource id of an App Service site.
pub fn web_site_id(subscription: &str, resource_group: &str, app: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Web/sites/{app}"
    )
}

/// The resource id of a container app.
pub fn container_app_id(subscription: &str, resource_group: &str, app: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.App/containerApps/{app}"
    )
}

/// The resource whose metrics describe the arms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorTarget {
    /// An App Service site ([`web_site_id`]); arm labels are slot names
    /// (`production` for the site itself).
    AppService {
        /// The site's resource id.
        site_id: String,
    },
    /// A container app ([`container_app_id`]); arm labels are revision
    /// names.
    ContainerApp {
        /// The container app's resource id.
        app_id: String,
    },
}

impl MonitorTarget {
    /// Checks the resource id's form.
    pub fn validate(&self) -> Result<(), String> {
        let r = match self {
            MonitorTarget::AppService { site_id } => {
                check_resource_id(site_id, "Microsoft.Web", "sites")
            }
            MonitorTarget::ContainerApp { app_id } => {
                check_resource_id(app_id, "Microsoft.App", "containerApps")
            }
        };
        r.map(|_| ()).map_err(|e| match e {
            EvidenceError::Misconfigured { detail, .. } => detail,
            other => other.to_string(),
        })
    }
}

/// Per-minute (requests, failures) of one arm, keyed by unix minute.
type Buckets = BTreeMap<i64, (f64, f64)>;

#[derive(Debug, Clone)]
struct Started {
    canary: ArmRef,
    baseline: ArmRef,
    /// Unix minute of the start.
    minute: i64,
    /// Values of bucket `minute` at start: canary, baseline.
    base: [(f64, f64); 2],
    /// Highest totals reported so far: canary, baseline.
    high: [(u64, u64); 2],
}

/// Reads per-arm request and 5xx counts from Azure Monitor.
#[derive(Debug)]
pub struct AzureMonitorSource {
    arm: Arm,
    target: MonitorTarget,
    started: Option<Started>,
}

fn misconfigured(detail: impl Into<String>) -> EvidenceError {
    EvidenceError::misconfigured(NAME, detail)
}

fn unavailable(detail: impl Into<String>) -> EvidenceError {
    EvidenceError::unavailable(NAME, detail)
}

fn from_arm(e: ArmError) -> EvidenceError {
    match e {
        ArmError::Cancelled(_) => EvidenceError::Cancelled,
        ArmError::NotFound { what, message, .. } => misconfigured(format!(
            "{what} was not found ({message}): check the resource id and the slot or revision name"
        )),
        ArmError::Refused {
            status: 401 | 403,
            what,
            message,
            ..
        } => misconfigured(format!(
            "reading {what} was refused ({message}): the principal needs Microsoft.Insights/metrics/read (Monitoring Reader) on the resource"
        )),
        ArmError::Refused {
            status: 400,
            what,
            code,
            message,
            ..
        } => misconfigured(format!("{what}: {code}: {message}")),
        ArmError::Invalid { what, message } => misconfigured(format!("{what}: {message}")),
        other => unavailable(other.to_string()),
    }
}

fn check_resource_id(id: &str, provider: &str, kind: &str) -> Result<String, EvidenceError> {
    let id = id.trim().trim_end_matches('/');
    let segs: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let ok = id.starts_with('/')
        && segs.len() == 8
        && segs[0].eq_ignore_ascii_case("subscriptions")
        && segs[2].eq_ignore_ascii_case("resourceGroups")
        && segs[4].eq_ignore_ascii_case("providers")
        && segs[5].eq_ignore_ascii_case(provider)
        && segs[6].eq_ignore_ascii_case(kind)
        && segs.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
        });
    if ok {
        Ok(id.to_string())
    } else {
        Err(misconfigured(format!(
            "'{id}' is not a resource id of the form /subscriptions/{{sub}}/resourceGroups/{{rg}}/providers/{provider}/{kind}/{{name}}"
        )))
    }
}

/// Slot and revision names are `[A-Za-z0-9-]`; anything else could not be
/// put in a path or an OData string safely.
fn check_label(label: &str) -> Result<(), EvidenceError> {
    if !label.is_empty()
        && label.len() <= 128
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(misconfigured(format!(
            "'{label}' is not a slot or revision name (letters, digits and '-')"
        )))
    }
}

/// `%20` for spaces (form encoding's `+` is not what Azure's SDKs send).
fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The metrics path for `resource` from `from_minute` to a minute after now.
fn metrics_path(
    resource: &str,
    metricnames: &str,
    from_minute: i64,
    filter: Option<&str>,
) -> Result<String, EvidenceError> {
    let start = DateTime::from_timestamp(from_minute * 60, 0)
        .ok_or_else(|| misconfigured("the clock is out of range"))?;
    let end = Utc::now() + chrono::Duration::minutes(1);
    let mut q = format!(
        "{resource}/providers/Microsoft.Insights/metrics?metricnames={}&aggregation=Total&interval=PT1M&timespan={}",
        encode(metricnames),
        encode(&format!("{}/{}", iso(start), iso(end)))
    );
    if let Some(f) = filter {
        // `top` defaults to 10 series when splitting.
        q.push_str(&format!("&$filter={}&top=100", encode(f)));
    }
    Ok(q)
}

fn minute_of(point: &Value) -> Option<i64> {
    let ts = point.get("timeStamp").and_then(Value::as_str)?;
    let t = DateTime::parse_from_rfc3339(ts).ok()?;
    Some(t.timestamp().div_euclid(60))
}

/// The `value` entry of metric `name` (case-insensitive).
fn metric<'v>(body: &'v Value, name: &str) -> Result<&'v Value, EvidenceError> {
    let values = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| unavailable("the metrics answer has no 'value' array"))?;
    let m = values
        .iter()
        .find(|m| {
            m.pointer("/name/value")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| misconfigured(format!("the metrics answer has no metric '{name}'")))?;
    if let Some(code) = m.get("errorCode").and_then(Value::as_str)
        && !code.eq_ignore_ascii_case("Success")
    {
        let msg = m
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(unavailable(format!("metric '{name}': {code} {msg}")));
    }
    Ok(m)
}

/// Totals per minute of one time series (points without `total` are
/// empty minutes).
fn series_totals(series: &Value) -> impl Iterator<Item = (i64, f64)> + '_ {
    series
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((minute_of(p)?, p.get("total").and_then(Value::as_f64)?)))
}

/// App Service: `Requests` and `Http5xx` of one slot resource.
fn parse_web(body: &Value) -> Result<Buckets, EvidenceError> {
    let mut out = Buckets::new();
    for (name, failures) in [("Requests", false), ("Http5xx", true)] {
        let m = metric(body, name)?;
        for series in m
            .get("timeseries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (minute, v) in series_totals(series) {
                let e = out.entry(minute).or_default();
                if failures {
                    e.1 += v;
                } else {
                    e.0 += v;
                }
            }
        }
    }
    Ok(out)
}

fn dimension<'v>(series: &'v Value, name: &str) -> Option<&'v str> {
    series
        .get("metadatavalues")
        .and_then(Value::as_array)?
        .iter()
        .find(|d| {
            d.pointer("/name/value")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|d| d.get("value").and_then(Value::as_str))
}

/// Container Apps: `Requests` split by revision and status category.
fn parse_container_app(body: &Value) -> Result<BTreeMap<String, Buckets>, EvidenceError> {
    let m = metric(body, "Requests")?;
    let mut out: BTreeMap<String, Buckets> = BTreeMap::new();
    for series in m
        .get("timeseries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(rev) = dimension(series, "revisionName") else {
            return Err(unavailable(
                "a Requests series carries no revisionName: the split was not applied",
            ));
        };
        let is_5xx =
            dimension(series, "statusCodeCategory").is_some_and(|c| c.eq_ignore_ascii_case("5xx"));
        let buckets = out.entry(rev.to_ascii_lowercase()).or_default();
        for (minute, v) in series_totals(series) {
            let e = buckets.entry(minute).or_default();
            e.0 += v;
            if is_5xx {
                e.1 += v;
            }
        }
    }
    Ok(out)
}

impl AzureMonitorSource {
    /// A source for `target`. Never fails: an invalid target makes
    /// [`EvidenceSource::start`] fail with [`EvidenceError::Misconfigured`].
    pub fn new(arm: Arm, target: MonitorTarget) -> Self {
        AzureMonitorSource {
            arm,
            target,
            started: None,
        }
    }

    /// App Service: `site_id` is the site's resource id
    /// ([`web_site_id`]); arm labels are slot names (`production` for the
    /// site itself).
    pub fn app_service(arm: Arm, site_id: &str) -> Result<Self, EvidenceError> {
        let site_id = check_resource_id(site_id, "Microsoft.Web", "sites")?;
        Ok(Self::new(arm, MonitorTarget::AppService { site_id }))
    }

    /// Container Apps: `app_id` is the container app's resource id
    /// ([`container_app_id`]); arm labels are revision names.
    pub fn container_app(arm: Arm, app_id: &str) -> Result<Self, EvidenceError> {
        let app_id = check_resource_id(app_id, "Microsoft.App", "containerApps")?;
        Ok(Self::new(arm, MonitorTarget::ContainerApp { app_id }))
    }

    fn slot_resource(site_id: &str, slot: &str) -> String {
        if slot.eq_ignore_ascii_case(PRODUCTION_SLOT) {
            site_id.to_string()
        } else {
            format!("{site_id}/slots/{slot}")
        }
    }

    /// Per-minute buckets from `from_minute` for both arms (the canary's
    /// empty, and not asked for, when `canary` is `None`).
    async fn buckets(
        &self,
        canary: Option<&str>,
        baseline: &str,
        from_minute: i64,
        cancel: &Cancel,
    ) -> Result<[Buckets; 2], EvidenceError> {
        match &self.target {
            MonitorTarget::AppService { site_id } => {
                let get = |slot: &str| {
                    let path = metrics_path(
                        &Self::slot_resource(site_id, slot),
                        "Requests,Http5xx",
                        from_minute,
                        None,
                    );
                    async move {
                        let body = self
                            .arm
                            .get(&path?, METRICS_API_VERSION, cancel)
                            .await
                            .map_err(from_arm)?;
                        parse_web(&body)
                    }
                };
                let c = async {
                    match canary {
                        Some(c) => get(c).await,
                        None => Ok(Buckets::new()),
                    }
                };
                let (c, b) = tokio::try_join!(c, get(baseline))?;
                Ok([c, b])
            }
            MonitorTarget::ContainerApp { app_id } => {
                let path = metrics_path(
                    app_id,
                    "Requests",
                    from_minute,
                    Some("revisionName eq '*' and statusCodeCategory eq '*'"),
                )?;
                let body = self
                    .arm
                    .get(&path, METRICS_API_VERSION, cancel)
                    .await
                    .map_err(from_arm)?;
                let mut by_rev = parse_container_app(&body)?;
                let mut take = |r: &str| by_rev.remove(&r.to_ascii_lowercase()).unwrap_or_default();
                Ok([canary.map(&mut take).unwrap_or_default(), take(baseline)])
            }
        }
    }
}

/// Production's history: one [`Tally`] per minute bucket in `from..to`
/// (the start's own minute, still filling, is the watch's).
fn history_between(buckets: &Buckets, from: i64, to: i64) -> Vec<Tally> {
    buckets
        .range(from..to)
        .map(|(_, &(r, f))| {
            let requests = r.max(0.0).round() as u64;
            Tally {
                requests,
                failures: (f.max(0.0).round() as u64).min(requests),
            }
        })
        .collect()
}

/// (requests, failures) summed over buckets from `minute` on, minus `base`.
fn since(buckets: &Buckets, minute: i64, base: (f64, f64)) -> (f64, f64) {
    let (r, f) = buckets
        .range(minute..)
        .fold((0.0, 0.0), |acc, (_, v)| (acc.0 + v.0, acc.1 + v.1));
    ((r - base.0).max(0.0), (f - base.1).max(0.0))
}

impl EvidenceSource for AzureMonitorSource {
    fn name(&self) -> &str {
        NAME
    }

    async fn start(&mut self, arms: &Arms, cancel: &Cancel) -> Result<(), EvidenceError> {
        self.target.validate().map_err(misconfigured)?;
        check_label(&arms.canary.label)?;
        check_label(&arms.baseline.label)?;
        let minute = Utc::now().timestamp().div_euclid(60);
        let [c, b] = self
            .buckets(
                Some(&arms.canary.label),
                &arms.baseline.label,
                minute,
                cancel,
            )
            .await?;
        let at = |bk: &Buckets| bk.get(&minute).copied().unwrap_or_default();
        self.started = Some(Started {
            canary: arms.canary.clone(),
            baseline: arms.baseline.clone(),
            minute,
            base: [at(&c), at(&b)],
            high: [(0, 0); 2],
        });
        Ok(())
    }

    async fn read(&mut self, cancel: &Cancel) -> Result<Reading, EvidenceError> {
        let Some(s) = &self.started else {
            return Err(misconfigured("read before start"));
        };
        let all = self
            .buckets(Some(&s.canary.label), &s.baseline.label, s.minute, cancel)
            .await?;
        let at = Instant::now();
        let Some(s) = self.started.as_mut() else {
            return Err(misconfigured("read before start"));
        };
        let mut out = [Counters::default(); 2];
        for i in 0..2 {
            let (r, f) = since(&all[i], s.minute, s.base[i]);
            let (hr, hf) = &mut s.high[i];
            *hr = (*hr).max(r.round() as u64);
            *hf = (*hf).max(f.round() as u64).min(*hr);
            out[i] = Counters {
                requests: *hr,
                failures: *hf,
                slow: None,
                latency: None,
            };
        }
        Ok(Reading {
            at,
            canary: out[0],
            baseline: Some(out[1]),
        })
    }

    /// The baseline's minute buckets before the start's minute: Azure
    /// keeps nothing finer, and the watch's readings see the same minutes
    /// (`step` is not used).
    async fn production_history(
        &mut self,
        lookback: std::time::Duration,
        _step: std::time::Duration,
        cancel: &Cancel,
    ) -> Result<Vec<Tally>, EvidenceError> {
        let Some(s) = &self.started else {
            return Err(misconfigured("history before start"));
        };
        let minutes = i64::try_from(lookback.as_secs() / 60).unwrap_or(i64::MAX);
        let from = s.minute.saturating_sub(minutes);
        let [_, baseline] = self.buckets(None, &s.baseline.label, from, cancel).await?;
        Ok(history_between(&baseline, from, s.minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_ids_and_labels_are_checked() {
        let id = web_site_id("sub-1", "rg", "app-1");
        assert_eq!(
            AzureMonitorSource::slot_resource(&id, "staging"),
            format!("{id}/slots/staging")
        );
        assert_eq!(AzureMonitorSource::slot_resource(&id, "Production"), id);
        assert!(check_resource_id(&id, "Microsoft.Web", "sites").is_ok());
        assert!(check_resource_id(&format!("{id}/slots/x"), "Microsoft.Web", "sites").is_err());
        assert!(check_resource_id("sites/app", "Microsoft.Web", "sites").is_err());
        assert!(
            check_resource_id(
                &container_app_id("s", "r", "ca"),
                "Microsoft.App",
                "containerApps"
            )
            .is_ok()
        );
        assert!(check_label("ca-contoso--v240").is_ok());
        for bad in ["", "a'b", "a b", "../x"] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_query_is_encoded_for_azure() {
        let p = metrics_path("/r", "Requests,Http5xx", 29_000_000, Some("a eq '*'")).unwrap();
        assert!(p.starts_with("/r/providers/Microsoft.Insights/metrics?metricnames=Requests%2CHttp5xx&aggregation=Total&interval=PT1M&timespan=2025-02-19T"), "{p}");
        assert!(p.ends_with("&$filter=a%20eq%20%27*%27&top=100"), "{p}");
    }

    fn point(minute: i64, total: Option<f64>) -> Value {
        let ts = iso(DateTime::from_timestamp(minute * 60, 0).unwrap());
        match total {
            Some(t) => json!({"timeStamp": ts, "total": t}),
            None => json!({"timeStamp": ts}),
        }
    }

    #[test]
    fn web_answers_sum_per_minute_and_subtract_the_start() {
        let body = json!({"value": [
            {"name": {"value": "Requests"}, "errorCode": "Success", "timeseries": [{"metadatavalues": [], "data": [point(10, Some(5.0)), point(11, None), point(12, Some(7.0))]}]},
            {"name": {"value": "Http5xx"}, "errorCode": "Success", "timeseries": [{"metadatavalues": [], "data": [point(10, Some(1.0)), point(12, Some(2.0))]}]},
        ]});
        let b = parse_web(&body).unwrap();
        assert_eq!(b.get(&10), Some(&(5.0, 1.0)));
        assert_eq!(since(&b, 10, (3.0, 1.0)), (9.0, 2.0));
        assert_eq!(since(&b, 11, (0.0, 0.0)), (7.0, 2.0));
        // History: the minutes before the start's (12), one tally each;
        // an empty minute has no bucket.
        let tally = |requests, failures| Tally { requests, failures };
        assert_eq!(history_between(&b, 0, 12), vec![tally(5, 1)]);
        assert_eq!(history_between(&b, 10, 13), vec![tally(5, 1), tally(7, 2)]);
        assert_eq!(history_between(&b, 12, 12), vec![]);
        let missing = json!({"value": [{"name": {"value": "Requests"}, "timeseries": []}]});
        assert!(matches!(
            parse_web(&missing),
            Err(EvidenceError::Misconfigured { .. })
        ));
    }

    #[test]
    fn container_app_answers_split_by_revision_and_category() {
        let series = |rev: &str, cat: &str, data: Vec<Value>| {
            json!({"metadatavalues": [
                {"name": {"value": "revisionname"}, "value": rev},
                {"name": {"value": "statuscodecategory"}, "value": cat}], "data": data})
        };
        let body = json!({"value": [{"name": {"value": "Requests"}, "errorCode": "Success", "timeseries": [
            series("ca--new", "2xx", vec![point(1, Some(8.0))]),
            series("ca--new", "5xx", vec![point(1, Some(2.0))]),
            series("ca--old", "2xx", vec![point(1, Some(20.0)), point(2, Some(1.0))]),
            series("ca--old", "4xx", vec![point(2, Some(3.0))]),
        ]}]});
        let by = parse_container_app(&body).unwrap();
        assert_eq!(by["ca--new"].get(&1), Some(&(10.0, 2.0)));
        assert_eq!(since(&by["ca--old"], 1, (0.0, 0.0)), (24.0, 0.0));
    }
}
