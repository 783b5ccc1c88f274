//! `deploy` and `plan`: one service from the inputs, or a manifest's
//! services; the canary and its evidence sources. Each service setting goes
//! through [`super::service`], as a manifest entry's does.

use std::time::Duration;

use super::values::{self, ValueError, shown};
use super::*;
use crate::action::Env;

/// Settings of `deploy`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// The platform.
    pub platform: &'static dyn crate::rollout::platforms::Platform,
    /// The platform's settings (`slot`, `container`, `package`…), checked,
    /// defaults filled in.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Several services from the manifest instead of `app-name`.
    pub multi: Option<MultiConfig>,
    /// Azure access; `None` when no service is on Azure.
    pub azure: Option<AzureConfig>,
    /// How HTTP clients are built (resolution, extra CA): Azure's when it
    /// is there, else from the same inputs.
    pub http: crate::http::HttpSettings,
    /// Where the Kubernetes connection comes from; `None` when no service
    /// is on Kubernetes.
    pub kube: Option<crate::kube::Source>,
    /// The app.
    pub resource: crate::rollout::platforms::Resource,
    /// What to do, validated.
    pub plan: crate::rollout::driver::DeployPlan,
    /// The package file, if any (read when the deploy starts).
    pub package: Option<std::path::PathBuf>,
    /// Where the audit log goes.
    pub audit_log: std::path::PathBuf,
    /// Only read and say what would change (`--dry-run`).
    pub dry_run: bool,
}

/// A deploy of several services from the manifest.
#[derive(Debug, Clone)]
pub struct MultiConfig {
    /// Where the manifest was read from.
    pub path: std::path::PathBuf,
    /// The services to deploy (a selection keeps their dependencies).
    pub manifest: crate::manifest::Manifest,
    /// What a failure does to the others.
    pub on_failure: crate::rollout::multi::OnFailure,
    /// At most this many services at once.
    pub max_parallel: usize,
}

/// Settings of `plan`.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// Where the manifest was read from.
    pub path: std::path::PathBuf,
    /// The validated manifest.
    pub manifest: crate::manifest::Manifest,
}

pub(super) fn deploy_config(r: &mut Resolver<'_>, env: &Env) -> Option<DeployConfig> {
    use crate::probe::{Endpoints, Schedule};
    use crate::rollout::driver::{DeployPlan, StalePolicy};
    let raw = r.raw;
    // Services off Azure (`command`, `kubernetes`) need no Azure sign-in.
    let multi = multi_config(r);
    let platform = r.parse("platform", parse_platform);
    let (azure_needed, kube_needed) = match &multi {
        Some(Some(m)) => (m.manifest.needs_azure(), m.manifest.needs_kube()),
        _ => (
            platform.is_none_or(|p| p.needs_azure()),
            platform.is_some_and(|p| p.needs_kube()),
        ),
    };
    let azure = if azure_needed {
        azure_config(r, env).map(Some)
    } else {
        Some(None)
    };
    let http = http_settings(r, &azure);
    let kube = if kube_needed {
        super::kube::kube_source(r, env)
    } else {
        None
    };
    if !raw.given("manifest") && raw.get("resource-group").is_none() && azure_needed {
        r.error(
            "resource-group",
            "is required by `deploy`",
            "the Azure resource group of the app, e.g. rg-contoso-prod",
        );
    }
    let health_path = r.parse("health-path", |v| service::url_path("health-path", v));
    let version_path = r.parse("version-path", |v| service::url_path("version-path", v));
    let health_status = r.parse("health-status", |v| {
        values::parse_uint(v, 100, 599).map(|n| n as u16)
    });
    let expected_version = r.parse("expected-version", values::parse_version);
    let attempts = r.parse("check-attempts", |v| {
        values::parse_uint(v, 1, 10_000).map(|n| n as u32)
    });
    let interval = r.parse("check-interval", values::parse_duration);
    let check_timeout = duration_at_least(r, "check-timeout", Duration::from_secs(1));
    let verify_window = r.parse("verify-window", values::parse_duration);
    let verify_interval = duration_at_least(r, "verify-interval", Duration::from_millis(100));
    let samples = r.parse("verify-requests", |v| {
        values::parse_uint(v, 1, 10_000).map(|n| n as usize)
    });
    let swap_timeout = duration_at_least(r, "swap-timeout", Duration::from_secs(10));
    let lock_wait = r.parse("lock-wait", values::parse_duration);
    let stale = r.parse("on-stale-routing", |v| match v {
        "clear" => Ok(StalePolicy::Clear),
        "fail" => Ok(StalePolicy::Fail),
        other => Err(ValueError {
            problem: format!("{} is not a policy", shown(other)),
            accepted: "clear or fail".into(),
        }),
    });
    r.parse("resource-group", service::resource_name);
    r.parse("app-name", service::app_name_check(platform));
    let runner = env.runner();
    let run_id = runner.run_name();
    let app = raw.get("app-name").unwrap_or_default().to_string();
    // Files are named after the app, or after the manifest for several.
    let stem = if app.is_empty() {
        "manifest"
    } else {
        app.as_str()
    };
    let dir = runner.temp;
    let audit_log = raw
        .get("audit-log")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join(format!("expedite-deploy-{stem}.json")));
    let journal = dir.join(format!("expedite-journal-{stem}.json"));
    let mut resource = crate::rollout::platforms::Resource {
        subscription: azure
            .as_ref()
            .and_then(|a| a.as_ref().map(|a| a.subscription_id.clone()))
            .unwrap_or_default(),
        resource_group: raw.get("resource-group").unwrap_or_default().to_string(),
        app,
    };
    let staging = Schedule {
        attempts: attempts?,
        interval: interval?,
        timeout: check_timeout?,
    };
    // The platform's settings, checked as a manifest entry's are; a
    // setting of another platform is refused, not ignored.
    let (settings, package, image) = match platform {
        Some(p) => {
            let given = |key: &str| raw.given(key).then(|| raw.get(key)).flatten();
            let (settings, refusals) = service::platform_settings(p, false, given);
            for f in refusals {
                r.error(f.key, &f.problem, &f.accepted);
            }
            let package = settings
                .get("package")
                .filter(|_| {
                    p.takes()
                        .iter()
                        .any(|t| t.setting == crate::rollout::platforms::Setting::Package)
                })
                .and_then(|v| package_file(r, v));
            let image = settings.get("image").cloned();
            let canary_given = raw.get("canary").is_some_and(|c| !c.trim().is_empty());
            if let Err((key, problem, accepted)) = p.check(&settings, canary_given) {
                r.error(key, problem, accepted);
            }
            if multi.as_ref().is_some_and(Option::is_none)
                && let Some(source) = &kube
            {
                super::kube::check_connection(
                    r,
                    source,
                    settings.get("kube-context").map(String::as_str),
                );
            }
            (Some(settings), package, image)
        }
        None => (None, None, None),
    };
    if let Some(p) = platform
        && r.raw.get("canary").is_some_and(|c| !c.trim().is_empty())
        && !p.canary()
    {
        r.error(
            "canary",
            format!(
                "cannot run on platform {}: it has no way to send a share of production's traffic to the new build",
                p.name()
            ),
            "leave it out (the new build is checked in its staging place, then promoted and verified)",
        );
    }
    // The platform says what the three parts are (Kubernetes: context,
    // namespace, Deployment).
    if let (Some(p), Some(settings)) = (platform, &settings) {
        resource = p.resource(
            &resource.subscription,
            &resource.resource_group,
            &resource.app,
            settings,
        );
    }
    // A platform whose metrics are not `http_requests_total` by `slot`
    // (Istio's `istio_requests_total` by `destination_version`) brings its
    // own Prometheus defaults.
    let prom_defaults = match (platform, &settings) {
        (Some(p), Some(settings)) => p.prometheus_defaults(&crate::rollout::platforms::Place {
            platform: p,
            resource: resource.clone(),
            settings: settings.clone(),
        }),
        _ => None,
    };
    let canary = canary_config(r, prom_defaults);
    if raw.get("app-name").is_none() && !raw.given("manifest") {
        r.error(
            "app-name",
            "is required by `deploy` (or give `manifest` to deploy several services)",
            "the app's name, e.g. app-contoso-payments",
        );
    }
    let multi = multi?;
    let settings = settings?;
    let settings_slot = settings.get("slot").cloned().unwrap_or_default();
    Some(DeployConfig {
        platform: platform?,
        settings,
        multi,
        plan: DeployPlan {
            image,
            canary: canary?,
            slot: settings_slot,
            package: None,
            endpoints: Endpoints {
                health_path: health_path?,
                health_status: health_status?,
                version_path: Some(version_path?),
            },
            expected_version: expected_version?,
            staging,
            verify_window: verify_window?,
            verify_interval: verify_interval?,
            verify_samples: samples?,
            swap_timeout: swap_timeout?,
            stale: stale?,
            lock_wait: lock_wait?,
            run_id,
            journal: Some(journal),
            rollback: false,
            revision: None,
            patience: Duration::from_secs(900),
        },
        azure: azure?,
        http: http?,
        kube,
        resource,
        package,
        audit_log,
        dry_run: r.parse("dry-run", values::parse_bool).unwrap_or(false),
    })
}

/// The `platform` input: a registered platform's name.
pub(super) fn parse_platform(
    v: &str,
) -> Result<&'static dyn crate::rollout::platforms::Platform, ValueError> {
    crate::rollout::platforms::find(v).ok_or_else(|| ValueError {
        problem: format!("{} is not a platform", shown(v)),
        accepted: crate::rollout::platforms::names(),
    })
}

/// The `package` input of a platform that takes a zip file: a readable zip.
fn package_file(r: &mut Resolver<'_>, v: &str) -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(v);
    let mut magic = [0u8; 4];
    let ok = std::fs::File::open(&p)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok();
    if !ok {
        r.error(
            "package",
            format!("{} cannot be read", shown(v)),
            "the path of a zip file",
        );
        None
    } else if &magic != b"PK\x03\x04" {
        r.error(
            "package",
            format!("{} is not a zip file", shown(v)),
            "a zip file (zip a directory first: `cd publish && zip -r ../app.zip .`)",
        );
        None
    } else {
        Some(p)
    }
}

/// A fraction given as `0.01` or `1%`.
pub(super) fn parse_fraction(v: &str) -> Result<f64, ValueError> {
    let accepted = "a fraction between 0 and 1 (0.01) or a percentage (1%)";
    let t = v.trim();
    let f = if t.ends_with('%') {
        values::parse_percent(t)? / 100.0
    } else {
        t.parse::<f64>().map_err(|_| ValueError {
            problem: format!("{} is not a number", shown(t)),
            accepted: accepted.into(),
        })?
    };
    if !(f > 0.0 && f < 1.0) {
        return Err(ValueError {
            problem: format!("{} is not strictly between 0 and 1", shown(t)),
            accepted: accepted.into(),
        });
    }
    Ok(f)
}

/// Reads and validates the manifest named by `manifest` (or the default
/// path), each problem reported as its own error.
pub(super) fn load_manifest(
    r: &mut Resolver<'_>,
) -> Option<(std::path::PathBuf, crate::manifest::Manifest)> {
    let raw = r.raw;
    let path =
        std::path::PathBuf::from(raw.get("manifest").unwrap_or(crate::manifest::DEFAULT_PATH));
    match crate::manifest::Manifest::load(&path, raw.get("resource-group")) {
        Ok(m) => Some((path, m)),
        Err(e) => {
            for p in e.problems {
                r.error(
                    "manifest",
                    p,
                    "fix the manifest (see the README's manifest section)",
                );
            }
            None
        }
    }
}

pub(super) fn plan_config(r: &mut Resolver<'_>) -> Option<PlanConfig> {
    let (path, manifest) = load_manifest(r)?;
    Some(PlanConfig { path, manifest })
}

/// `Some(None)`: a single-app deploy; `Some(Some(_))`: the manifest's
/// services; `None`: an error was recorded.
pub(super) fn multi_config(r: &mut Resolver<'_>) -> Option<Option<MultiConfig>> {
    let raw = r.raw;
    if !raw.given("manifest") {
        if raw.given("services") {
            r.error(
                "services",
                "selects services of a manifest, but no `manifest` is given",
                "give `manifest` too, or deploy one app with `app-name`",
            );
            return None;
        }
        for n in ["on-failure", "max-parallel"] {
            if raw.given(n) {
                r.error(
                    n,
                    "is for a multi-service deploy, but no `manifest` is given",
                    "give `manifest`, or leave it out",
                );
                return None;
            }
        }
        return Some(None);
    }
    for n in ["app-name", "package", "image", "container"] {
        if raw.get(n).is_some() {
            r.error(
                n,
                "is per service in a multi-service deploy",
                "set it for the service in the manifest, or deploy one app without `manifest`",
            );
        }
    }
    let on_failure = r.parse("on-failure", |v| {
        use crate::rollout::multi::OnFailure;
        match v {
            "rollback-all" => Ok(OnFailure::RollbackAll),
            "rollback-failed" => Ok(OnFailure::RollbackFailed),
            "stop" => Ok(OnFailure::Stop),
            other => Err(ValueError {
                problem: format!("{} is not a policy", shown(other)),
                accepted: "rollback-all, rollback-failed or stop".into(),
            }),
        }
    });
    let max_parallel = r.parse("max-parallel", |v| {
        values::parse_uint(v, 1, 64).map(|n| n as usize)
    });
    let (path, manifest) = load_manifest(r)?;
    let manifest = match raw.get("services") {
        Some(v) => {
            let names = values::parse_list(v);
            match manifest.select(&names) {
                Ok(m) => m,
                Err(e) => {
                    for p in e.problems {
                        r.error(
                            "services",
                            p,
                            "names of the manifest's services, comma-separated",
                        );
                    }
                    return None;
                }
            }
        }
        None => manifest,
    };
    Some(Some(MultiConfig {
        path,
        manifest,
        on_failure: on_failure?,
        max_parallel: max_parallel?,
    }))
}

/// The Prometheus source's settings from the `prometheus-*` inputs.
pub(super) fn prometheus_spec(
    r: &mut Resolver<'_>,
    latency: Option<Duration>,
    defaults: Option<(String, String)>,
) -> Option<crate::probe::evidence::prometheus::PrometheusSpec> {
    use crate::probe::evidence::prometheus::{PromAuth, PromQueries, PrometheusSpec};
    let raw = r.raw;
    if raw.get("prometheus-url").is_none() {
        r.error(
            "prometheus-url",
            "is required by `evidence: prometheus`",
            "the Prometheus server's base URL, e.g. http://prometheus:9090",
        );
        return None;
    }
    let url = r.parse("prometheus-url", values::parse_url)?;
    let mut spec = PrometheusSpec::new(url);
    spec.queries = PromQueries::standard(latency);
    if let Some((requests, failures)) = defaults {
        spec.queries.requests = requests;
        spec.queries.failures = failures;
    }
    if let Some(q) = raw.get("prometheus-requests-query") {
        spec.queries.requests = q.to_string();
    }
    if let Some(q) = raw.get("prometheus-failures-query") {
        spec.queries.failures = q.to_string();
    }
    if let Some(q) = raw.get("prometheus-slow-query") {
        if latency.is_none() {
            r.error(
                "prometheus-slow-query",
                "is set, but there is no latency-threshold",
                "set latency-threshold (a histogram bucket bound), or remove the query",
            );
        }
        spec.queries.slow = Some(q.to_string());
    }
    if let Some(t) = raw.get("prometheus-token") {
        spec.auth = Some(PromAuth::Bearer(t.to_string().into()));
    }
    if let Err(e) = spec.validate() {
        r.error(
            "prometheus-url",
            e.to_string(),
            "fix the Prometheus settings",
        );
        return None;
    }
    Some(spec)
}

/// The canary part of `deploy`: `Some(None)` when there is no canary,
/// `None` when an input was wrong (the error is recorded).
pub(super) fn canary_config(
    r: &mut Resolver<'_>,
    prom_defaults: Option<(String, String)>,
) -> Option<Option<crate::rollout::canary::CanaryPlan>> {
    use crate::probe::evidence::probes::{ProbeSettings, parse_requests};
    use crate::rollout::canary::{CanaryPlan, InconclusivePolicy, SourceSpec};
    let raw = r.raw;
    let canary_inputs = [
        "canary-window",
        "evidence",
        "evidence-interval",
        "probe-rate",
        "probe-requests",
        "alpha",
        "baseline-error-rate",
        "max-error-rate",
        "latency-threshold",
        "min-requests",
        "max-silence",
        "failure-clumping",
        "on-inconclusive",
        "inconclusive-wait",
        "prometheus-url",
        "prometheus-requests-query",
        "prometheus-failures-query",
        "prometheus-slow-query",
        "prometheus-token",
    ];
    let Some(steps_text) = raw.get("canary") else {
        // Settings without a canary are a mistake worth saying; defaults
        // are not settings.
        let given: Vec<&str> = canary_inputs
            .iter()
            .copied()
            .filter(|n| raw.given(n))
            .collect();
        if let Some(first) = given.first() {
            r.error(
                first,
                format!(
                    "is set, but there is no canary ({} ignored)",
                    given.join(", ")
                ),
                "set `canary` (e.g. 10,50), or remove the canary settings",
            );
            return None;
        }
        return Some(None);
    };
    let steps = r.parse("canary", |_| service::canary_steps(steps_text));
    let window = duration_at_least(r, "canary-window", Duration::from_secs(1));
    let interval = duration_at_least(r, "evidence-interval", Duration::from_millis(100));
    let rate = r.parse("probe-rate", |v| {
        let x: f64 = v.trim().parse().map_err(|_| ValueError {
            problem: format!("{} is not a number", shown(v)),
            accepted: "requests per second, from 0.1 to 200".into(),
        })?;
        if (0.1..=200.0).contains(&x) {
            Ok(x)
        } else {
            Err(ValueError {
                problem: format!("{x} is out of range"),
                accepted: "requests per second, from 0.1 to 200".into(),
            })
        }
    });
    let health = raw
        .get("health-path")
        .unwrap_or(crate::probe::HEALTH_PATH)
        .to_string();
    let requests = match raw.get("probe-requests") {
        Some(text) => r.parse("probe-requests", |_| {
            parse_requests(text).map_err(|e| ValueError {
                problem: e,
                accepted: "one request per line: METHOD /path [JSON body] [=> GET /path/{id}]"
                    .into(),
            })
        }),
        None => parse_requests(&format!("GET {health}")).ok(),
    };
    let alpha = r.parse("alpha", |v| {
        let a = parse_fraction(v)?;
        if a > 0.2 {
            return Err(ValueError {
                problem: format!("{a} would roll back good builds too often"),
                accepted: "at most 0.2 (typically 0.01)".into(),
            });
        }
        Ok(a)
    });
    let p0 = r.parse("baseline-error-rate", parse_fraction);
    let p1 = r.parse("max-error-rate", parse_fraction);
    if let (Some(a), Some(b)) = (p0, p1)
        && b <= a
    {
        r.error(
            "max-error-rate",
            format!("{b} is not above baseline-error-rate {a}"),
            "an error rate above the acceptable one, e.g. 1% against 0.1%",
        );
    }
    let latency = match raw.get("latency-threshold") {
        Some(_) => Some(duration_at_least(
            r,
            "latency-threshold",
            Duration::from_millis(1),
        )?),
        None => None,
    };
    let min_requests = match raw.get("min-requests") {
        Some(_) => r.parse("min-requests", |v| values::parse_uint(v, 1, 10_000_000)),
        None => Some(0),
    };
    let max_silence = duration_at_least(r, "max-silence", Duration::from_secs(1));
    let independent_failures = r.parse("failure-clumping", |v| match v {
        "estimate" => Ok(false),
        "independent" => Ok(true),
        other => Err(ValueError {
            problem: format!("{} is not a way of counting failures", shown(other)),
            accepted: "estimate or independent".into(),
        }),
    });
    let on_inconclusive = r.parse("on-inconclusive", |v| match v {
        "wait" => Ok(InconclusivePolicy::Wait),
        "fail" => Ok(InconclusivePolicy::Fail),
        "promote" => Ok(InconclusivePolicy::Promote),
        other => Err(ValueError {
            problem: format!("{} is not a policy", shown(other)),
            accepted: "wait, fail or promote".into(),
        }),
    });
    let inconclusive_wait = r.parse("inconclusive-wait", values::parse_duration);
    let mut sources = Vec::new();
    let names = values::parse_list(raw.get("evidence").unwrap_or("probes"));
    let mut seen = std::collections::BTreeSet::new();
    for name in &names {
        if !seen.insert(name.clone()) {
            r.error(
                "evidence",
                format!("{} is listed twice", shown(name)),
                "each source once",
            );
            continue;
        }
        match name.as_str() {
            "probes" => {
                if let (Some(rate), Some(requests)) = (rate, requests.clone()) {
                    sources.push(SourceSpec::Probes(ProbeSettings {
                        rate,
                        requests,
                        slow_threshold: latency,
                        timeout: Duration::from_secs(10),
                    }));
                }
            }
            "azure-monitor" => sources.push(SourceSpec::AzureMonitor),
            "prometheus" => {
                if let Some(spec) = prometheus_spec(r, latency, prom_defaults.clone()) {
                    sources.push(SourceSpec::Prometheus(Box::new(spec)));
                }
            }
            other => r.error(
                "evidence",
                format!("{} is not an evidence source", shown(other)),
                "probes, prometheus, azure-monitor (comma-separated)",
            ),
        }
    }
    if names.is_empty() {
        r.error(
            "evidence",
            "no source given",
            "probes, prometheus or azure-monitor",
        );
    }
    if !names.iter().any(|n| n == "prometheus") {
        for n in [
            "prometheus-url",
            "prometheus-requests-query",
            "prometheus-failures-query",
            "prometheus-slow-query",
            "prometheus-token",
        ] {
            if raw.given(n) {
                r.error(
                    n,
                    "is set, but `evidence` does not include prometheus",
                    "add prometheus to `evidence`, or remove it",
                );
            }
        }
    }
    let mut settings = crate::breaker::Settings {
        alpha: alpha?,
        baseline_error_rate: p0?,
        max_error_rate: p1?,
        latency_threshold: latency.map(|d| d.as_secs_f64()),
        min_requests: min_requests?,
        max_silence: max_silence?.as_secs_f64(),
        independent_failures: independent_failures?,
        ..crate::breaker::Settings::default()
    };
    if settings.min_requests == 0 {
        settings.min_requests = settings.suggested_min_requests();
    }
    if let Err(e) = crate::breaker::Breaker::new(settings.clone()) {
        r.error("canary", e.to_string(), "adjust the breaker settings");
        return None;
    }
    Some(Some(CanaryPlan {
        steps: steps?,
        window: window?,
        interval: interval?,
        breaker: settings,
        sources,
        on_inconclusive: on_inconclusive?,
        inconclusive_wait: inconclusive_wait?,
    }))
}
