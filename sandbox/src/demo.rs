//! The demo "payments" app served on every slot host, revision FQDN and
//! Static Web Apps environment host, and the front ends in front of it: App
//! Service production's traffic split by `rampUpRules` with
//! `x-ms-routing-name` cookie/query pinning (reference §3.3), Container Apps'
//! split by traffic weights (§5.4), stopped slots and inactive revisions,
//! static-site environments not deployed yet, and the build's behaviour by
//! version (the 2.4.0 large-order bug, configurable bad builds).

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use rand::Rng;
use serde_json::{Value, json};

use crate::respond::{self, Outcome, Req, Resp};
use crate::server::Shared;
use crate::world::{
    Build, CaTarget, DropoutMode, HostTarget, MinuteStats, Order, OrderBook, PRODUCTION, Process,
    RunState, World,
};

/// Cookie and query parameter App Service routes by.
pub const ROUTING_NAME: &str = "x-ms-routing-name";

/// Which slot serves a request to `target`, and the routing cookie to set.
fn choose_slot(world: &mut World, req: &Req, target: &HostTarget) -> (String, Option<String>) {
    if target.slot != PRODUCTION {
        return (target.slot.clone(), None);
    }
    let Some(site) = world.sites.get(&target.site) else {
        return (PRODUCTION.to_owned(), None);
    };
    if site.ramp_up_rules.is_empty() {
        return (PRODUCTION.to_owned(), None);
    }
    let slot_of = |name: &str| -> Option<String> {
        if name.eq_ignore_ascii_case("self") {
            return Some(PRODUCTION.to_owned());
        }
        let rule = site
            .ramp_up_rules
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))?;
        site.slots
            .values()
            .find(|s| s.host == rule.action_host_name)
            .map(|s| s.name.clone())
    };
    // A query parameter forces a slot and pins it with the cookie.
    if let Some(name) = req.query_param(ROUTING_NAME)
        && let Some(slot) = slot_of(name)
    {
        return (slot, Some(name.to_ascii_lowercase()));
    }
    // A cookie keeps its slot, even when the rule is at 0 %.
    if let Some(name) = cookie(req, ROUTING_NAME)
        && let Some(slot) = slot_of(&name)
    {
        return (slot, None);
    }
    let draw: f64 = world.rng.random_range(0.0..100.0);
    let Some(site) = world.sites.get(&target.site) else {
        return (PRODUCTION.to_owned(), None);
    };
    let mut cumulative = 0.0;
    for rule in &site.ramp_up_rules {
        cumulative += rule.reroute_percentage;
        if draw < cumulative
            && let Some(slot) = site
                .slots
                .values()
                .find(|s| s.host == rule.action_host_name)
        {
            return (slot.name.clone(), Some(rule.name.clone()));
        }
    }
    (PRODUCTION.to_owned(), Some("self".to_owned()))
}

fn cookie(req: &Req, name: &str) -> Option<String> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_owned())
}

/// The path label for metrics: ids folded so label sets stay bounded.
fn path_label(path: &str) -> String {
    match path {
        "/" | "/health" | "/api/health" | "/api/version" | "/metrics" | "/api/payments" => {
            path.to_owned()
        }
        p if p.starts_with("/api/payments/") => "/api/payments/{id}".to_owned(),
        _ => "other".to_owned(),
    }
}

/// One running copy of the demo app: a slot's content or a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Workload {
    Slot {
        site: String,
        slot: String,
    },
    Revision {
        app: String,
        revision: String,
    },
    /// A Static Web Apps environment (`default` = production).
    StaticEnv {
        site: String,
        env: String,
    },
    /// A Kubernetes pod running `version` (its image's tag) since `started`.
    Pod {
        namespace: String,
        pod: String,
        version: String,
        started: Instant,
    },
}

impl Workload {
    pub fn label(&self) -> String {
        match self {
            Workload::Slot { site, slot } => format!("app:{site}/{slot}"),
            Workload::Revision { app, revision } => format!("ca:{app}/{revision}"),
            Workload::StaticEnv { site, env } => format!("swa:{site}/{env}"),
            Workload::Pod { namespace, pod, .. } => format!("k8s:{namespace}/{pod}"),
        }
    }
}

/// Static Web Apps' answer for a host with nothing deployed.
fn static_site_not_found() -> Resp {
    // (guessed) page text.
    respond::html(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html><html><head><title>Azure Static Web Apps - 404: Not found</title></head><body><h1>404: Not Found</h1><p>We couldn't find that page, please check the URL and try again.</p></body></html>",
    )
}

/// Whether a workload can serve, and what it runs.
enum Availability {
    Serving { build: Build, started: Instant },
    Unavailable(Resp),
}

fn availability(world: &World, w: &Workload, now: Instant) -> Availability {
    match w {
        Workload::Slot { site, slot } => {
            let Some(slot) = world.sites.get(site).and_then(|s| s.slots.get(slot)) else {
                return Availability::Unavailable(respond::empty(StatusCode::NOT_FOUND));
            };
            if slot.state == RunState::Stopped {
                return Availability::Unavailable(respond::html(
                    StatusCode::FORBIDDEN,
                    "<!DOCTYPE html><html><head><title>Web App - Unavailable</title></head><body><h1>Error 403 - This web app is stopped.</h1><p>The web app you have attempted to reach is currently stopped and does not accept any requests.</p></body></html>",
                ));
            }
            Availability::Serving {
                build: slot.content.build.clone(),
                started: slot.process.started,
            }
        }
        Workload::Revision { app, revision } => {
            let Some(rev) = world
                .container_apps
                .get(app)
                .and_then(|a| a.revisions.get(revision))
            else {
                return Availability::Unavailable(stopped_container_app());
            };
            if !rev.active {
                return Availability::Unavailable(stopped_container_app());
            }
            if !rev.ready(now) {
                // (guessed) Envoy's answer while no replica is ready.
                return Availability::Unavailable(respond::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                ));
            }
            Availability::Serving {
                build: rev.build.clone(),
                started: rev.process.started,
            }
        }
        Workload::StaticEnv { site, env } => {
            let served = world
                .static_sites
                .get(site)
                .and_then(|s| s.environments.get(env))
                .and_then(|e| e.build.clone().map(|b| (b, e.process.started)));
            match served {
                Some((build, started)) => Availability::Serving { build, started },
                None => Availability::Unavailable(static_site_not_found()),
            }
        }
        // The cluster decided the pod serves (ready) before asking.
        Workload::Pod {
            version, started, ..
        } => Availability::Serving {
            build: Build {
                version: version.clone(),
                behaviour: None,
                deployment_id: None,
                package: None,
            },
            started: *started,
        },
    }
}

fn stopped_container_app() -> Resp {
    respond::html(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html><html><head><title>Azure Container App - Unavailable</title></head><body><h1>Error 404 - This Container App is stopped or does not exist.</h1></body></html>",
    )
}

fn process<'w>(world: &'w World, w: &Workload) -> Option<&'w Process> {
    match w {
        Workload::Slot { site, slot } => world
            .sites
            .get(site)
            .and_then(|s| s.slots.get(slot))
            .map(|s| &s.process),
        Workload::Revision { app, revision } => world
            .container_apps
            .get(app)
            .and_then(|a| a.revisions.get(revision))
            .map(|r| &r.process),
        Workload::StaticEnv { site, env } => world
            .static_sites
            .get(site)
            .and_then(|s| s.environments.get(env))
            .map(|e| &e.process),
        Workload::Pod { .. } => None,
    }
}

fn orders<'w>(world: &'w mut World, w: &Workload) -> Option<&'w mut OrderBook> {
    match w {
        Workload::Slot { site, .. } => world.sites.get_mut(site).map(|s| &mut s.orders),
        Workload::Revision { app, .. } => world.container_apps.get_mut(app).map(|a| &mut a.orders),
        Workload::StaticEnv { site, .. } => world.static_sites.get_mut(site).map(|s| &mut s.orders),
        Workload::Pod { .. } => Some(&mut world.kube_orders),
    }
}

/// What the request will get, decided under the lock.
enum Plan {
    Answer(Resp),
    /// Wait, then run the app.
    App {
        delay: Option<Duration>,
    },
}

fn plan(world: &mut World, w: &Workload, now: Instant) -> Plan {
    let (build, started) = match availability(world, w, now) {
        Availability::Unavailable(r) => return Plan::Answer(r),
        Availability::Serving { build, started } => (build, started),
    };
    let behaviour = world.effective_behaviour(&build, started, now);
    if behaviour.crash_loop {
        return Plan::Answer(respond::html(
            StatusCode::SERVICE_UNAVAILABLE,
            "<!DOCTYPE html><html><head><title>Application Error</title></head><body><h1>:( Application Error</h1><p>If you are the application administrator, you can access the diagnostic resources.</p></body></html>",
        ));
    }
    let delay = (behaviour.slow_rate > 0.0 && world.rng.random_bool(behaviour.slow_rate))
        .then(|| Duration::from_millis(behaviour.slow_ms));
    Plan::App { delay }
}

/// Runs one request through a workload: plan under the lock, wait without
/// it, answer, record.
async fn serve(shared: &Shared, req: &Req, w: &Workload, plan_now: Plan, started: Instant) -> Resp {
    let resp = match plan_now {
        Plan::Answer(r) => r,
        Plan::App { delay } => {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            app(shared, req, w)
        }
    };
    record(shared, req, w, resp.status().as_u16(), started.elapsed());
    resp
}

/// Serves a request on a ready Kubernetes pod running `version` (through
/// the API server's pod or service proxy, or the mesh's ingress).
pub(crate) async fn handle_pod(shared: &Shared, req: &Req, w: Workload) -> Resp {
    let started = Instant::now();
    let p = {
        let mut world = shared.world();
        plan(&mut world, &w, started)
    };
    serve(shared, req, &w, p, started).await
}

/// Serves a request to an App Service site host; returns the outcome and
/// the slot that served it.
pub(crate) async fn handle_site(
    shared: &Shared,
    req: &Req,
    target: &HostTarget,
) -> (Outcome, String) {
    let started = Instant::now();
    let (w, set_cookie, p) = {
        let mut world = shared.world();
        let (slot, set_cookie) = choose_slot(&mut world, req, target);
        let w = Workload::Slot {
            site: target.site.clone(),
            slot,
        };
        let p = plan(&mut world, &w, started);
        (w, set_cookie, p)
    };
    let mut resp = serve(shared, req, &w, p, started).await;
    if let Some(name) = set_cookie {
        respond::append_header(
            &mut resp,
            "set-cookie",
            &format!("{ROUTING_NAME}={name}; path=/"),
        );
    }
    (resp.into(), w.label())
}

/// Which revision serves a request to a container app host.
fn choose_revision(world: &mut World, target: &CaTarget, now: Instant) -> Option<Workload> {
    let (app_name, revision) = match target {
        CaTarget::Revision(app, rev) => (app.clone(), rev.clone()),
        CaTarget::Label(app, label) => {
            let a = world.container_apps.get(app)?;
            let rev = a
                .traffic
                .iter()
                .find(|t| t.label.as_deref() == Some(label.as_str()))
                .and_then(|t| {
                    if t.latest_revision {
                        a.latest_ready_revision(now).map(|r| r.name.clone())
                    } else {
                        t.revision_name.clone()
                    }
                })?;
            (app.clone(), rev)
        }
        CaTarget::App(app) => {
            let a = world.container_apps.get(app)?;
            let single = a
                .configuration
                .get("activeRevisionsMode")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case("single"));
            let weights = a.effective_traffic(now);
            let total: i64 = weights.iter().map(|(_, w)| w).sum();
            let chosen = if single || total <= 0 {
                a.latest_ready_revision(now).map(|r| r.name.clone())
            } else {
                let draw = world.rng.random_range(0..total);
                let mut cumulative = 0;
                weights.into_iter().find_map(|(name, w)| {
                    cumulative += w;
                    (draw < cumulative).then_some(name)
                })
            }?;
            (app.clone(), chosen)
        }
    };
    Some(Workload::Revision {
        app: app_name,
        revision,
    })
}

/// Serves a request to a Container Apps host.
pub(crate) async fn handle_container_app(
    shared: &Shared,
    req: &Req,
    target: &CaTarget,
) -> (Outcome, String) {
    let started = Instant::now();
    let chosen = {
        let mut world = shared.world();
        choose_revision(&mut world, target, started).map(|w| {
            let p = plan(&mut world, &w, started);
            (w, p)
        })
    };
    match chosen {
        Some((w, p)) => {
            let resp = serve(shared, req, &w, p, started).await;
            (resp.into(), w.label())
        }
        None => (stopped_container_app().into(), "unknown".into()),
    }
}

/// Serves a request to a Static Web Apps host (production or a preview
/// environment).
pub(crate) async fn handle_static_site(
    shared: &Shared,
    req: &Req,
    site: &str,
    env: &str,
) -> (Outcome, String) {
    let started = Instant::now();
    let w = Workload::StaticEnv {
        site: site.to_owned(),
        env: env.to_owned(),
    };
    let p = plan(&mut shared.world(), &w, started);
    let resp = serve(shared, req, &w, p, started).await;
    (resp.into(), w.label())
}

fn app(shared: &Shared, req: &Req, w: &Workload) -> Resp {
    let mut world = shared.world();
    let world = &mut *world;
    let now = Instant::now();
    let (build, started) = match availability(world, w, now) {
        Availability::Unavailable(r) => return r,
        Availability::Serving { build, started } => (build, started),
    };
    let version = build.version.clone();
    let behaviour = world.effective_behaviour(&build, started, now);
    let is_static = matches!(w, Workload::StaticEnv { .. });
    // A static web app's backend lives under `/api/` (its managed
    // functions), so the store answers its health check there too.
    let path = match req.path.as_str() {
        "/api/health" if is_static => "/health",
        p => p,
    };
    let product = if is_static {
        "Contoso store"
    } else {
        "Contoso payments"
    };
    let is_api = path.starts_with("/api/payments");
    if is_api && world.draw_error(&w.label(), started, &behaviour) {
        return respond::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "internal_error", "message": "Unhandled exception."}),
        );
    }
    match (&req.method, path) {
        (&Method::GET | &Method::HEAD, "/") => {
            respond::text(StatusCode::OK, format!("{product} {version}\n"))
        }
        (&Method::GET | &Method::HEAD, "/health") => {
            let status = behaviour.health_status.unwrap_or(200);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let word = if code.is_success() {
                "healthy"
            } else {
                "unhealthy"
            };
            respond::json(code, &json!({"status": word, "version": version}))
        }
        (&Method::GET, "/api/version") => {
            respond::json(StatusCode::OK, &json!({"version": version}))
        }
        (&Method::GET, "/metrics") => {
            let text = process(world, w)
                .map(|p| p.metrics.render())
                .unwrap_or_default();
            let mut r = respond::text(StatusCode::OK, text);
            respond::set_header(
                &mut r,
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            );
            r
        }
        (&Method::POST, "/api/payments") => {
            let body = match req.json_body() {
                Ok(Some(Value::Object(b))) => b,
                _ => {
                    return invalid(
                        "the body must be a JSON object {\"amount\": number, \"currency\": \"USD\"}",
                    );
                }
            };
            let amount = match body.get("amount").and_then(Value::as_f64) {
                Some(a) if a > 0.0 && a.is_finite() => a,
                _ => return invalid("amount must be a positive number"),
            };
            let currency = match body.get("currency").and_then(Value::as_str) {
                Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => {
                    c.to_owned()
                }
                _ => return invalid("currency must be a three-letter ISO 4217 code"),
            };
            let id = uuid::Uuid::new_v4().to_string();
            let dropped = behaviour
                .drops_orders_over
                .is_some_and(|limit| amount > limit);
            if !dropped && let Some(book) = orders(world, w) {
                book.insert(Order {
                    id: id.clone(),
                    amount,
                    currency,
                    status: "accepted".into(),
                    created: respond::utc_now_rfc3339(),
                    version,
                });
            }
            respond::json(StatusCode::OK, &json!({"id": id, "status": "accepted"}))
        }
        (&Method::GET, p) if p.starts_with("/api/payments/") => {
            let id = &p["/api/payments/".len()..];
            match orders(world, w).and_then(|b| b.get(id).cloned()) {
                Some(order) => respond::json(StatusCode::OK, &json!(order)),
                None => respond::json(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "not_found", "message": format!("No payment with id '{id}'.")}),
                ),
            }
        }
        _ => respond::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

fn invalid(message: &str) -> Resp {
    respond::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_request", "message": message}),
    )
}

/// Counts the request in the serving process's Prometheus metrics and in
/// the per-minute series Azure Monitor answers from (bound to the slot's or
/// the app's resource id, not to the code).
fn record(shared: &Shared, req: &Req, w: &Workload, status: u16, took: Duration) {
    let mut world = shared.world();
    let secs = took.as_secs_f64();
    let minute = chrono::Utc::now().timestamp().div_euclid(60);
    let label = path_label(&req.path);
    match w {
        Workload::Slot { site, slot } => {
            let dropped = world.slot_dropout(site, slot);
            let Some(slot) = world
                .sites
                .get_mut(site)
                .and_then(|s| s.slots.get_mut(slot))
            else {
                return;
            };
            slot.process
                .metrics
                .record(status, req.method.as_str(), &label, secs);
            if dropped == Some(DropoutMode::Stale) {
                // Azure Monitor no longer ingests this slot's series.
                return;
            }
            let stats = slot
                .monitor
                .entry(minute)
                .or_insert_with(MinuteStats::default);
            stats.requests += 1;
            match status {
                200..=299 => stats.http2xx += 1,
                300..=399 => stats.http3xx += 1,
                400..=499 => stats.http4xx += 1,
                500..=599 => stats.http5xx += 1,
                _ => {}
            }
            stats.response_time_sum_secs += secs;
            // Keep one day, as a bounded window.
            while slot.monitor.len() > 1440 {
                slot.monitor.pop_first();
            }
        }
        Workload::StaticEnv { site, env } => {
            // Static Web Apps has no per-environment Azure Monitor series in
            // the sandbox: only the process counts the request.
            if let Some(e) = world
                .static_sites
                .get_mut(site)
                .and_then(|s| s.environments.get_mut(env))
            {
                e.process
                    .metrics
                    .record(status, req.method.as_str(), &label, secs);
            }
        }
        // The mesh counts its own requests (`istio_requests_total`).
        Workload::Pod { .. } => {}
        Workload::Revision { app, revision } => {
            let dropped = world.revision_dropout(app, revision);
            let Some(app) = world.container_apps.get_mut(app) else {
                return;
            };
            if let Some(rev) = app.revisions.get_mut(revision) {
                rev.process
                    .metrics
                    .record(status, req.method.as_str(), &label, secs);
            }
            if dropped == Some(DropoutMode::Stale) {
                return;
            }
            let category = format!("{}xx", status / 100);
            *app.monitor
                .entry(minute)
                .or_default()
                .entry((revision.clone(), category))
                .or_insert(0) += 1;
            while app.monitor.len() > 1440 {
                app.monitor.pop_first();
            }
        }
    }
}
