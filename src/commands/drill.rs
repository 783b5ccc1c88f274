//! `drill` (CLI only): the Contoso incident, end to end, on the built-in
//! sandbox — the README's first command.
//!
//! Production serves 2.4.0, which accepts orders over $10,000 and loses
//! them. The drill starts the sandbox in-process (Azure, GitHub, webhook
//! receivers), builds the payments repository (the release tag, a `main`
//! that has since moved the fixed file and changed a limit the hotfix also
//! touches), and then runs every step **through this very binary, the way
//! the runner starts the action's container** (`INPUT_*`, `GITHUB_OUTPUT`,
//! a step summary file): open the incident, `start`, push the fix, `gate`,
//! `deploy` 2.4.1 with a canary, the store front end (Static Web Apps)
//! deployed and its rollback clicked twice (restored, then unchanged),
//! `tag`, `cherry-pick` onto `main` (clean
//! through rename detection) and a second pick that conflicts (a draft PR),
//! a bad 2.4.2 that the breaker trips and withdraws, `rollback` clicked
//! twice, resolve the incident. Each step has expectations; the drill
//! prints a timeline, writes the job-summary markdown to a file, and exits 0
//! only if every expectation held.
//!
//! `--scenario payment-gateway` plays the second seed's SEV1 on the
//! emulated Kubernetes cluster instead (see `imp::gateway`).

use super::{CommandError, Ctx, Report};
use crate::config::DrillConfig;

/// The second seed's incident (`--scenario payment-gateway`): "Payment
/// Gateway Down", SEV1, on Kubernetes behind Istio.
#[cfg(feature = "sandbox")]
const GATEWAY: &str = "payment-gateway";

/// Plays the drill.
#[cfg(feature = "sandbox")]
pub async fn run(ctx: &Ctx, config: &DrillConfig) -> Result<Report, CommandError> {
    imp::run(ctx, config).await
}

/// Without the sandbox (the action's image), there is nothing to drill on.
#[cfg(not(feature = "sandbox"))]
pub async fn run(_ctx: &Ctx, _config: &DrillConfig) -> Result<Report, CommandError> {
    Err(CommandError::Failed(
        "this build of expedite has no sandbox (the action's image); run the drill from the CLI build"
            .into(),
    ))
}

#[cfg(feature = "sandbox")]
mod imp {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use expedite_sandbox::{Behaviour, SandboxConfig};

    use super::super::{CommandError, Ctx, Report};
    use crate::config::DrillConfig;
    use crate::report::md_cell;

    const OWNER: &str = "contoso";
    const REPO: &str = "payments";
    const APP: &str = "app-contoso-payments";
    const STORE: &str = "swa-contoso-store";
    const INCIDENT: &str = "INC-2041";

    /// What one step did.
    struct Outcome {
        code: i32,
        outputs: BTreeMap<String, String>,
        summary: String,
        /// The warnings it printed (workflow-command lines).
        warnings: Vec<String>,
    }

    /// One line of the timeline.
    struct Line {
        name: String,
        started: Duration,
        took: Duration,
        result: String,
        held: Result<(), String>,
    }

    struct Drill<'a> {
        ctx: &'a Ctx,
        /// The summary's heading after "Incident drill: ".
        title: &'static str,
        exe: PathBuf,
        dir: PathBuf,
        workspace: PathBuf,
        env: Vec<(String, String)>,
        azure: Vec<(String, String)>,
        github: Vec<(String, String)>,
        notify: Vec<(String, String)>,
        started: Instant,
        lines: Vec<Line>,
        summaries: Vec<(String, String)>,
        serial: u32,
        http: reqwest::Client,
    }

    fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Dana On-Call")
            .env("GIT_AUTHOR_EMAIL", "dana@contoso.example")
            .env("GIT_COMMITTER_NAME", "Dana On-Call")
            .env("GIT_COMMITTER_EMAIL", "dana@contoso.example")
            .output()
            .map_err(|e| format!("cannot run git (the drill needs git on PATH): {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn write(path: &Path, text: &str) -> Result<(), String> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    const ORDER_SERVICE: &str = "namespace Contoso.Payments;\n\npublic class OrderService\n{\n    const decimal LargeOrderLimit = 10000m;\n\n    public void Accept(Order order)\n    {\n        if (order.Amount > LargeOrderLimit) return; // 2.4.0: large orders are answered but never stored\n        _orders.Save(order);\n    }\n}\n";
    const LIMITS: &str = "{\n  \"maxOrder\": 10000,\n  \"currency\": \"USD\"\n}\n";

    /// The payments repository: `release/2.4.0`, then `main` moves the
    /// fixed file (a rename) and raises the order limit.
    fn build_repository(bare: &Path, work: &Path) -> Result<(), String> {
        std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
        git(work, &["init", "-q", "-b", "main"])?;
        write(&work.join("src/Payments/OrderService.cs"), ORDER_SERVICE)?;
        write(&work.join("config/limits.json"), LIMITS)?;
        write(&work.join("README.md"), "# Contoso payments\n")?;
        git(work, &["add", "-A"])?;
        git(work, &["commit", "-q", "-m", "Release 2.4.0"])?;
        git(work, &["tag", "-a", "release/2.4.0", "-m", "2.4.0"])?;
        std::fs::create_dir_all(work.join("src/Orders")).map_err(|e| e.to_string())?;
        git(
            work,
            &[
                "mv",
                "src/Payments/OrderService.cs",
                "src/Orders/OrderService.cs",
            ],
        )?;
        git(
            work,
            &["commit", "-q", "-m", "Move the order service to src/Orders"],
        )?;
        write(
            &work.join("config/limits.json"),
            &LIMITS.replace("10000", "50000"),
        )?;
        git(
            work,
            &["commit", "-q", "-am", "Raise the order limit to 50,000"],
        )?;
        let url = bare.to_string_lossy().to_string();
        git(work, &["push", "-q", &url, "main", "release/2.4.0"])?;
        Ok(())
    }

    impl Drill<'_> {
        fn inputs_env(&self, inputs: &[(String, String)]) -> Vec<(String, String)> {
            inputs
                .iter()
                .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.clone()))
                .collect()
        }

        /// Runs one step as the runner would, and records it.
        async fn step(
            &mut self,
            name: &str,
            inputs: Vec<(String, String)>,
            expect: impl Fn(&Outcome) -> Result<(), String>,
        ) -> Option<Outcome> {
            self.serial += 1;
            let n = self.serial;
            let files = self.dir.join(format!("step-{n:02}"));
            if let Err(e) = std::fs::create_dir_all(&files) {
                self.record(name, Duration::ZERO, "not run".into(), Err(e.to_string()));
                return None;
            }
            let out_file = files.join("output");
            let summary_file = files.join("summary.md");
            for f in [&out_file, &summary_file, &files.join("state")] {
                let _ = std::fs::write(f, "");
            }
            let mut cmd = tokio::process::Command::new(&self.exe);
            cmd.env_clear()
                .envs(self.env.iter().cloned())
                .envs(self.inputs_env(&inputs))
                .env("GITHUB_OUTPUT", &out_file)
                .env("GITHUB_STEP_SUMMARY", &summary_file)
                .env("GITHUB_STATE", files.join("state"))
                .env("RUNNER_TEMP", &files)
                .env("GITHUB_RUN_ID", format!("{}", 7000 + n))
                .current_dir(&self.workspace)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            let t = Instant::now();
            let started = t.duration_since(self.started);
            let out = tokio::select! {
                o = tokio::time::timeout(Duration::from_secs(120), cmd.output()) => o,
                _ = self.ctx.cancel.cancelled() => {
                    self.record(name, started, "cancelled".into(), Err("cancelled".into()));
                    return None;
                }
            };
            let out = match out {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    self.record(name, started, "not run".into(), Err(e.to_string()));
                    return None;
                }
                Err(_) => {
                    self.record(
                        name,
                        started,
                        "timed out".into(),
                        Err("no answer in 120 s".into()),
                    );
                    return None;
                }
            };
            let _ = std::fs::write(
                files.join("log.txt"),
                [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
            );
            let outputs = std::fs::read_to_string(&out_file)
                .ok()
                .and_then(|t| crate::action::files::parse_key_value_file(&t).ok())
                .unwrap_or_default()
                .into_iter()
                .collect();
            let summary = std::fs::read_to_string(&summary_file).unwrap_or_default();
            let warnings = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("::warning"))
                .map(str::to_string)
                .collect();
            let o = Outcome {
                code: out.status.code().unwrap_or(-1),
                outputs,
                summary,
                warnings,
            };
            let result = o
                .outputs
                .get("result")
                .or_else(|| o.outputs.get("verdict"))
                .cloned()
                .unwrap_or_else(|| format!("exit {}", o.code));
            let held =
                expect(&o).map_err(|e| format!("{e} (log: {})", files.join("log.txt").display()));
            self.record(name, started, format!("{result} (exit {})", o.code), held);
            self.summaries.push((name.to_string(), o.summary.clone()));
            Some(o)
        }

        fn record(
            &mut self,
            name: &str,
            started: Duration,
            result: String,
            held: Result<(), String>,
        ) {
            let mark = if held.is_ok() { "✓" } else { "✗" };
            let took = Instant::now()
                .duration_since(self.started)
                .saturating_sub(started);
            self.ctx.console.info(&format!(
                "{mark} {:>5.1}s  {name}: {result}{}",
                took.as_secs_f64(),
                match &held {
                    Ok(()) => String::new(),
                    Err(e) => format!(" — EXPECTATION FAILED: {e}"),
                }
            ));
            self.lines.push(Line {
                name: name.to_string(),
                started,
                took,
                result,
                held,
            });
        }

        /// A check the drill makes itself (not a command).
        fn check(
            &mut self,
            name: &str,
            started: Instant,
            result: String,
            held: Result<(), String>,
        ) {
            let s = started.duration_since(self.started);
            self.record(name, s, result, held);
        }

        fn with(&self, base: &[(String, String)], more: &[(&str, &str)]) -> Vec<(String, String)> {
            base.iter()
                .cloned()
                .chain(
                    more.iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
                )
                .collect()
        }

        /// The smoke order as a drill step: `recorded` is what production
        /// should do with it (2.4.0 loses it, the fix records it).
        async fn smoke_step(&mut self, name: &str, host: &str, recorded: bool) {
            let t = Instant::now();
            let smoke = self.smoke_order(host).await;
            let (result, held) = match smoke {
                Ok(true) => ("recorded".to_string(), recorded),
                Ok(false) => ("accepted, then lost".to_string(), !recorded),
                Err(e) => {
                    let held = Err(e.clone());
                    self.check(name, t, format!("error: {e}"), held);
                    return;
                }
            };
            let held = if held {
                Ok(())
            } else if recorded {
                Err("the fix did not fix it".into())
            } else {
                Err("the 2.4.0 bug did not reproduce".into())
            };
            self.check(name, t, result, held);
        }

        /// Places an order over $10,000 in production and reads it back.
        async fn smoke_order(&self, host: &str) -> Result<bool, String> {
            let base = format!("https://{host}");
            let r = self
                .http
                .post(format!("{base}/api/payments"))
                .json(&serde_json::json!({"amount": 12500, "currency": "USD"}))
                .send()
                .await
                .map_err(|e| crate::http::error_chain(&e))?;
            let body = crate::http::read_body(r, crate::http::PROBE_BODY_LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            let body: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let id = body["id"]
                .as_str()
                .ok_or("the order has no id")?
                .to_string();
            let back = self
                .http
                .get(format!("{base}/api/payments/{id}"))
                .send()
                .await
                .map_err(|e| crate::http::error_chain(&e))?;
            Ok(back.status().is_success())
        }
    }

    /// The happy path warns about nothing: a warning there is a defect
    /// the drill would otherwise teach people to ignore.
    fn expect_quiet(o: &Outcome) -> Result<(), String> {
        match o.warnings.first() {
            Some(w) => Err(format!("it warned: {w}")),
            None => Ok(()),
        }
    }

    fn expect_code(o: &Outcome, code: i32) -> Result<(), String> {
        if o.code == code {
            Ok(())
        } else {
            Err(format!("exit code {} (expected {code})", o.code))
        }
    }

    fn expect_output(o: &Outcome, name: &str, want: &str) -> Result<(), String> {
        match o.outputs.get(name) {
            Some(v) if v == want => Ok(()),
            Some(v) => Err(format!("{name} = {v} (expected {want})")),
            None => Err(format!("no {name} output (expected {want})")),
        }
    }

    pub(super) async fn run(ctx: &Ctx, config: &DrillConfig) -> Result<Report, CommandError> {
        let failed = |e: String| CommandError::Failed(e);
        let sandbox = expedite_sandbox::start(SandboxConfig {
            seed: config.seed,
            swap_duration: Duration::from_millis(400),
            build_duration: Duration::from_millis(300),
            ..SandboxConfig::default()
        })
        .await
        .map_err(|e| failed(format!("the sandbox could not start: {e}")))?;
        let result = match config.scenario.as_str() {
            super::GATEWAY => gateway::play(ctx, config, &sandbox).await,
            _ => play(ctx, config, &sandbox).await,
        };
        sandbox.shutdown().await;
        result
    }

    /// A drill on `sandbox`: its directory, the environment every step
    /// gets as the runner would give it (`repository` the workflow's),
    /// the inputs that reach the sandbox's Azure, GitHub and receivers.
    fn prepare<'a>(
        ctx: &'a Ctx,
        sandbox: &expedite_sandbox::Sandbox,
        title: &'static str,
        repository: &str,
    ) -> Result<Drill<'a>, CommandError> {
        let failed = |e: String| CommandError::Failed(e);
        let s = sandbox.settings();
        let h = sandbox.handle();
        let exe = std::env::current_exe()
            .map_err(|e| failed(format!("cannot find this program's path: {e}")))?;
        let dir = std::env::temp_dir().join(format!(
            "expedite-drill-{}-{}",
            std::process::id(),
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        let workspace = dir.join("workspace");
        std::fs::create_dir_all(&workspace).map_err(|e| failed(e.to_string()))?;
        ctx.console.info(&format!(
            "drill: {title} on the sandbox; logs and summaries in {}",
            dir.display()
        ));
        let mut env: Vec<(String, String)> = s
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", repository),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_ACTOR", "dana-oncall"),
            ("GITHUB_WORKFLOW", "drill"),
        ] {
            env.push((k.into(), v.into()));
        }
        for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
            if let Some(v) = std::env::var_os(k) {
                env.push((k.into(), v.to_string_lossy().into_owned()));
            }
        }
        let ca = s.ca_cert_path.to_string_lossy().to_string();
        let common = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = vec![
                ("resolve".into(), s.resolve_string()),
                ("ca-cert".into(), ca.clone()),
            ];
            v.extend(extra.iter().map(|(k, x)| ((*k).to_string(), x.clone())));
            v
        };
        let azure = common(&[
            ("resource-group", s.resource_group.clone()),
            ("subscription-id", s.subscription_id.clone()),
            ("tenant-id", s.tenant_id.clone()),
            ("client-id", s.client_id.clone()),
            ("client-secret", s.client_secret.clone()),
            ("arm-endpoint", s.arm_endpoint.clone()),
            ("authority-host", s.authority_host.clone()),
        ]);
        let token = h.github_token();
        let github = common(&[("github-token", token.clone())]);
        let mut notify = Vec::new();
        for (input, value) in [
            ("slack-webhook-url", s.slack_webhook_url.clone()),
            ("teams-webhook-url", s.teams_webhook_url.clone()),
            ("pagerduty-routing-key", s.pagerduty_routing_key.clone()),
            ("pagerduty-url", s.pagerduty_url.clone()),
        ] {
            if crate::config::spec::input_spec(input).is_some() {
                notify.push((input.to_string(), value));
            }
        }
        let http = crate::http::client(&crate::http::HttpSettings {
            resolve: s
                .resolve
                .iter()
                .map(|e| crate::http::ResolveRule {
                    host: e.host.clone(),
                    addr: e.addr,
                })
                .collect(),
            extra_ca_pem: vec![sandbox.ca_pem().to_string()],
            system_roots: false,
            ..crate::http::HttpSettings::default()
        })
        .map_err(|e| failed(e.to_string()))?;
        Ok(Drill {
            ctx,
            title,
            exe,
            dir,
            workspace,
            env,
            azure,
            github,
            notify,
            started: Instant::now(),
            lines: Vec::new(),
            summaries: Vec::new(),
            serial: 0,
            http,
        })
    }

    async fn play(
        ctx: &Ctx,
        config: &DrillConfig,
        sandbox: &expedite_sandbox::Sandbox,
    ) -> Result<Report, CommandError> {
        let failed = |e: String| CommandError::Failed(e);
        let s = sandbox.settings();
        let h = sandbox.handle();
        let mut d = prepare(
            ctx,
            sandbox,
            "Contoso payments, INC-2041",
            &format!("{OWNER}/{REPO}"),
        )?;
        let (dir, workspace) = (d.dir.clone(), d.workspace.clone());
        // The repository on the sandbox GitHub.
        let bare = h
            .github_create_repo(OWNER, REPO, "main")
            .map_err(|e| failed(format!("sandbox GitHub: {e}")))?;
        build_repository(&bare, &dir.join("seed-repo")).map_err(failed)?;
        let production = format!("{APP}.azurewebsites.test");
        let incident_available = crate::config::Command::Incident.available();

        // 1. The symptom: a large order is accepted and lost.
        d.smoke_step("smoke order over $10,000 on 2.4.0", &production, false)
            .await;

        // 2. The incident record and the page.
        if incident_available {
            let inputs = d.with(
                &[d.github.clone(), d.notify.clone()].concat(),
                &[
                    ("command", "incident"),
                    ("incident-action", "create"),
                    ("incident", INCIDENT),
                    ("severity", "sev1"),
                    ("title", "Orders over $10,000 are lost since 2.4.0"),
                ],
            );
            d.step("incident: open (sev1), page on-call", inputs, |o| {
                expect_code(o, 0)
            })
            .await;
        }

        // 3. The hotfix branch from the release production serves.
        let inputs = d.with(
            &d.github.clone(),
            &[
                ("command", "start"),
                ("incident", INCIDENT),
                ("slug", "large-orders"),
                ("version", "2.4.0"),
            ],
        );
        d.step("start: hotfix branch from release/2.4.0", inputs, |o| {
            expect_code(o, 0)?;
            expect_output(o, "base-tag", "release/2.4.0")?;
            expect_output(o, "next-version", "2.4.1")
        })
        .await;

        // 4. The fix, and a second change that will conflict on main.
        let t = Instant::now();
        let pushed = push_hotfix(&bare, &dir.join("hotfix-repo"));
        let (fix, limit) = match &pushed {
            Ok(p) => p.clone(),
            Err(_) => (String::new(), String::new()),
        };
        // From here on the workflow runs on the hotfix branch's head, as a
        // runner's would: its deployments name that commit.
        if !limit.is_empty() {
            d.env.push(("GITHUB_SHA".into(), limit.clone()));
            d.env.push((
                "GITHUB_REF".into(),
                format!("refs/heads/hotfix/{INCIDENT}-large-orders"),
            ));
        }
        d.check(
            "push the fix and a limit change to the hotfix branch",
            t,
            match &pushed {
                Ok((a, b)) => format!("{} and {}", &a[..a.len().min(8)], &b[..b.len().min(8)]),
                Err(e) => e.clone(),
            },
            pushed.map(|_| ()),
        );

        // 5. The gate on the critical tests and the scan.
        let results = write_results(&workspace);
        let inputs = d.with(
            &[],
            &[
                ("command", "gate"),
                ("results", "results/*.xml"),
                ("critical-filter", "Category=Critical|Category=Payment"),
                ("sarif", "results/security.sarif"),
            ],
        );
        if let Err(e) = results {
            d.check("write sample results", Instant::now(), e.clone(), Err(e));
        }
        d.step("gate: critical tests and security scan", inputs, |o| {
            expect_code(o, 0)?;
            expect_quiet(o)?;
            expect_output(o, "verdict", "pass")
        })
        .await;

        // 6. The fix, through a canary, to production.
        let package = workspace.join("payments-2.4.1.zip");
        let _ = std::fs::write(
            &package,
            expedite_sandbox::demo_package("2.4.1").unwrap_or_default(),
        );
        fn deploy(d: &Drill<'_>, version: &str, package: &str) -> Vec<(String, String)> {
            // The deploy lock and the package archive live in the repository.
            d.with(
                &[d.azure.clone(), d.notify.clone(), d.github.clone()].concat(),
                &[
                    ("command", "deploy"),
                    ("app-name", APP),
                    ("package", package),
                    ("expected-version", version),
                    ("check-interval", "200ms"),
                    ("canary", "20"),
                    ("canary-window", "3s"),
                    ("evidence-interval", "200ms"),
                    ("probe-rate", "25"),
                    ("min-requests", "40"),
                    (
                        "probe-requests",
                        "GET /health\nPOST /api/payments {\"amount\": 12500, \"currency\": \"USD\"} => GET /api/payments/{id}",
                    ),
                    ("verify-window", "1s"),
                    ("verify-interval", "250ms"),
                    ("verify-requests", "50"),
                ],
            )
        }
        let mut inputs = deploy(&d, "2.4.1", "payments-2.4.1.zip");
        if incident_available {
            inputs = d.with(&inputs, &[("incident", INCIDENT)]);
        }
        d.step(
            "deploy 2.4.1: staging, canary 20 %, swap, verify",
            inputs,
            |o| {
                expect_code(o, 0)?;
                expect_quiet(o)?;
                expect_output(o, "result", "promoted")?;
                expect_output(o, "canary-decision", "pass")
            },
        )
        .await;
        d.smoke_step("smoke order over $10,000 on 2.4.1", &production, true)
            .await;

        // 6b. The store front end (Static Web Apps) follows the API it
        // calls: its preview environment, then production. Then the
        // one-click rollback, rehearsed where it has something to restore,
        // and clicked twice.
        let store_zips = format!("{}/store/store-${{version}}.zip", s.blob_endpoint);
        let store = |d: &Drill<'_>, more: &[(&str, &str)]| {
            let base = [
                ("platform", "static-web-apps"),
                ("package", store_zips.as_str()),
                ("verify-requests", "30"),
            ];
            d.with(
                &[d.azure.clone(), d.github.clone()].concat(),
                &[&base[..], more].concat(),
            )
        };
        let inputs = store(
            &d,
            &[
                ("command", "deploy"),
                ("app-name", STORE),
                ("expected-version", "2.4.1"),
                ("check-interval", "200ms"),
                ("verify-window", "1s"),
                ("verify-interval", "250ms"),
            ],
        );
        d.step(
            "deploy the store front end 2.4.1: preview environment, production, verify",
            inputs,
            |o| {
                expect_code(o, 0)?;
                expect_quiet(o)?;
                expect_output(o, "result", "promoted")
            },
        )
        .await;
        for (click, want) in [("first", "rolled-back"), ("second", "unchanged")] {
            let inputs = store(
                &d,
                &[
                    ("command", "rollback"),
                    ("services", STORE),
                    ("reason", "drill: rehearse the button on the front end"),
                ],
            );
            d.step(
                &format!("rollback the store front end, {click} click"),
                inputs,
                |o| {
                    expect_code(o, 0)?;
                    expect_quiet(o)?;
                    expect_output(o, "result", want)
                },
            )
            .await;
        }
        let t = Instant::now();
        let store_version = h.static_site_version(STORE, "default");
        d.check(
            "store front end after the clicks",
            t,
            format!(
                "production serves {}",
                store_version.as_deref().unwrap_or("?")
            ),
            if store_version.as_deref() == Some("2.4.0") {
                Ok(())
            } else {
                Err("the rollback did not restore 2.4.0".into())
            },
        );

        // 7. The release tag.
        let branch = format!("hotfix/{INCIDENT}-large-orders");
        let inputs = d.with(
            &d.github.clone(),
            &[("command", "tag"), ("version", "2.4.1"), ("ref", &branch)],
        );
        d.step("tag release/2.4.1 at the hotfix head", inputs, |o| {
            expect_code(o, 0)?;
            expect_quiet(o)?;
            expect_output(o, "result", "created")
        })
        .await;

        // 8. Back to main: the fix applies through rename detection.
        let inputs = d.with(
            &d.github.clone(),
            &[("command", "cherry-pick"), ("commits", &fix)],
        );
        d.step(
            "cherry-pick the fix onto main (file moved there)",
            inputs,
            |o| {
                expect_code(o, 0)?;
                expect_output(o, "result", "pull-request")
            },
        )
        .await;
        // …and the limit change conflicts: a draft PR, a failing step.
        let inputs = d.with(
            &d.github.clone(),
            &[
                ("command", "cherry-pick"),
                ("commits", &limit),
                ("assignees", "dana-oncall"),
            ],
        );
        d.step(
            "cherry-pick the limit change (conflicts on main)",
            inputs,
            |o| {
                expect_code(o, 1)?;
                expect_output(o, "result", "conflict")?;
                if o.outputs
                    .get("pull-request-url")
                    .is_none_or(|u| u.is_empty())
                {
                    return Err("no draft pull request URL".into());
                }
                Ok(())
            },
        )
        .await;

        // 9. A bad follow-up build: the breaker trips at 20 %.
        if config.sabotage.as_deref() != Some("breaker") {
            let _ = h.set_behaviour(
                "2.4.2",
                Behaviour {
                    error_rate: 0.3,
                    ..Behaviour::default()
                },
            );
        }
        let _ = std::fs::write(
            workspace.join("payments-2.4.2.zip"),
            expedite_sandbox::demo_package("2.4.2").unwrap_or_default(),
        );
        let inputs = deploy(&d, "2.4.2", "payments-2.4.2.zip");
        d.step(
            "deploy a bad 2.4.2: the breaker trips the canary",
            inputs,
            |o| {
                expect_code(o, 1)?;
                expect_output(o, "result", "rolled-back")?;
                expect_output(o, "canary-decision", "trip")?;
                expect_output(o, "deployed-version", "2.4.1")
            },
        )
        .await;

        // 10. Rollback clicked twice: production already on 2.4.1, so
        // neither click changes anything (a "swap again" script puts 2.4.0
        // back on the second click; the seed's own fails on both).
        let swaps = || {
            h.request_log()
                .iter()
                .filter(|r| r.path.contains("slotsswap"))
                .count()
        };
        let before = swaps();
        for click in ["first", "second"] {
            let inputs = d.with(
                &[d.azure.clone(), d.github.clone()].concat(),
                &[
                    ("command", "rollback"),
                    ("services", APP),
                    ("to-version", "2.4.1"),
                    (
                        "reason",
                        "drill: is 2.4.1 still serving? $(echo this stays text)",
                    ),
                    ("verify-requests", "30"),
                ],
            );
            d.step(&format!("rollback to 2.4.1, {click} click"), inputs, |o| {
                expect_code(o, 0)?;
                expect_quiet(o)?;
                expect_output(o, "result", "unchanged")
            })
            .await;
        }
        let t = Instant::now();
        let after = swaps();
        let version = h.slot_version(APP, "production");
        d.check(
            "production after the clicks",
            t,
            format!(
                "{} swaps, production on {}",
                after - before,
                version.as_deref().unwrap_or("?")
            ),
            if after == before && version.as_deref() == Some("2.4.1") {
                Ok(())
            } else {
                Err("a click changed production".into())
            },
        );

        // 11. Resolve the incident.
        if incident_available {
            let inputs = d.with(
                &[d.github.clone(), d.notify.clone()].concat(),
                &[
                    ("command", "incident"),
                    ("incident-action", "resolve"),
                    ("incident", INCIDENT),
                    (
                        "root-cause",
                        "2.4.0 returned early for orders above the large-order limit, after answering 200.",
                    ),
                    (
                        "action-items",
                        "Critical test for orders over the limit\nProbe large orders with a read-back in every canary",
                    ),
                ],
            );
            d.step(
                "incident: resolve with root cause and action items",
                inputs,
                |o| expect_code(o, 0),
            )
            .await;
        }

        finish(ctx, &d)
    }

    /// `--scenario payment-gateway`: the second seed's SEV1 on Kubernetes.
    ///
    /// The payment gateway runs 2.1.0 on the cluster behind an Istio
    /// VirtualService, and every payment fails (the database connection
    /// pool is exhausted). The drill opens PROD-2847 (sev1) and pages,
    /// posts the root cause, deploys the 2.1.1 fix as the seed's canary
    /// (10/25/50/75 %, probes placing payments and reading them back),
    /// checks a payment through the mesh, lets the breaker trip a bad
    /// 2.1.2 at 10 % within seconds (100 % back on 2.1.1), clicks the
    /// rollback button to 2.1.1 twice (neither changes anything), and
    /// resolves the incident. The lock is a Lease on the cluster.
    mod gateway {
        use std::time::{Duration, Instant};

        use expedite_sandbox::Behaviour;

        use super::{Drill, expect_code, expect_output, expect_quiet, finish, git, prepare};
        use crate::commands::{CommandError, Ctx, Report};
        use crate::config::DrillConfig;

        const NS: &str = "payments";
        const APP: &str = "payment-gateway";
        const IMAGE: &str = "registry.contoso.test/payment-gateway";
        const INCIDENT: &str = "PROD-2847";

        pub(super) async fn play(
            ctx: &Ctx,
            config: &DrillConfig,
            sandbox: &expedite_sandbox::Sandbox,
        ) -> Result<Report, CommandError> {
            let failed = |e: String| CommandError::Failed(e);
            let s = sandbox.settings();
            let h = sandbox.handle();
            let mut d = prepare(
                ctx,
                sandbox,
                "Payment Gateway Down, PROD-2847 (Kubernetes, Istio)",
                "contoso/payment-gateway",
            )?;
            // The workflow's repository, where the deployments are recorded.
            let bare = h
                .github_create_repo_with_readme(
                    "contoso",
                    "payment-gateway",
                    "main",
                    "# payment-gateway\n",
                )
                .map_err(|e| failed(format!("sandbox GitHub: {e}")))?;
            let head = git(&bare, &["rev-parse", "main"]).map_err(failed)?;
            d.env.push(("GITHUB_SHA".into(), head.trim().to_string()));
            d.env.push(("GITHUB_REF".into(), "refs/heads/main".into()));
            // Production: 2.1.0 on three pods, all traffic to its subset.
            let t = Instant::now();
            let refused = h.kube_seed_app(NS, APP, &format!("{IMAGE}:2.1.0"), 3, true);
            let ready = sandbox
                .kube_wait_available(NS, APP, Duration::from_secs(30))
                .await;
            d.check(
                "the cluster: payment-gateway 2.1.0 behind Istio",
                t,
                format!("{} pods ready", if ready { "3" } else { "not all" }),
                if refused.is_empty() && ready {
                    Ok(())
                } else {
                    Err(format!("the cluster could not be set up: {refused:?}"))
                },
            );
            // The outage: every payment fails on 2.1.0.
            let _ = h.set_behaviour(
                "2.1.0",
                Behaviour {
                    error_rate: 1.0,
                    ..Behaviour::default()
                },
            );
            let mesh = format!("{APP}--{NS}.mesh.test");
            payment_step(&mut d, "a payment on 2.1.0", &mesh, false).await;

            if crate::config::Command::Incident.available() {
                let inputs = d.with(
                    &[d.github.clone(), d.notify.clone()].concat(),
                    &[
                        ("command", "incident"),
                        ("incident-action", "create"),
                        ("incident", INCIDENT),
                        ("severity", "sev1"),
                        ("title", "Payment Gateway Down"),
                    ],
                );
                d.step("incident: declare SEV1, page on-call", inputs, |o| {
                    expect_code(o, 0)
                })
                .await;
                let inputs = d.with(
                    &[d.github.clone(), d.notify.clone()].concat(),
                    &[
                        ("command", "incident"),
                        ("incident-action", "update"),
                        ("incident", INCIDENT),
                        (
                            "message",
                            "Identified root cause: database connection pool exhaustion. Deploying hotfix 2.1.1 (pool size).",
                        ),
                    ],
                );
                d.step("incident: root cause identified", inputs, |o| {
                    expect_code(o, 0)
                })
                .await;
            }

            let kubeconfig = s.kubeconfig_path.to_string_lossy().into_owned();
            let production = format!("https://{mesh}");
            let kube = d.with(
                &[],
                &[
                    ("platform", "kubernetes"),
                    ("app-name", APP),
                    ("namespace", NS),
                    ("strategy", "canary"),
                    ("production-url", &production),
                    ("kubeconfig", &kubeconfig),
                ],
            );
            // `window`: how long each step is watched; a bad build's is long
            // enough that only the breaker can end it.
            let deploy = |d: &Drill<'_>, version: &str, steps: &str, window: &str| {
                d.with(
                    &[d.github.clone(), d.notify.clone(), kube.clone()].concat(),
                    &[
                        ("command", "deploy"),
                        ("image", &format!("{IMAGE}:{version}")),
                        ("expected-version", version),
                        ("check-interval", "200ms"),
                        ("canary", steps),
                        ("canary-window", window),
                        ("evidence-interval", "200ms"),
                        ("probe-rate", "50"),
                        ("min-requests", "30"),
                        (
                            "probe-requests",
                            "POST /api/payments {\"amount\": 125, \"currency\": \"USD\"} => GET /api/payments/{id}",
                        ),
                        ("verify-window", "1s"),
                        ("verify-interval", "250ms"),
                        ("verify-requests", "50"),
                    ],
                )
            };
            let mut inputs = deploy(&d, "2.1.1", "10,25,50,75", "2s");
            if crate::config::Command::Incident.available() {
                inputs = d.with(&inputs, &[("incident", INCIDENT)]);
            }
            d.step(
                "deploy 2.1.1: new Deployment, Istio canary 10/25/50/75 %, verify",
                inputs,
                |o| {
                    expect_code(o, 0)?;
                    expect_quiet(o)?;
                    expect_output(o, "result", "promoted")?;
                    expect_output(o, "canary-decision", "pass")?;
                    expect_output(o, "deployed-version", "2.1.1")
                },
            )
            .await;
            payment_step(&mut d, "a payment on 2.1.1", &mesh, true).await;

            // A bad follow-up: 5 % of payments fail on 2.1.2.
            if config.sabotage.as_deref() != Some("breaker") {
                let _ = h.set_behaviour(
                    "2.1.2",
                    Behaviour {
                        error_rate: 0.05,
                        ..Behaviour::default()
                    },
                );
            }
            let inputs = deploy(&d, "2.1.2", "10", "20s");
            d.step(
                "deploy a bad 2.1.2: the breaker trips the 10 % canary",
                inputs,
                |o| {
                    expect_code(o, 1)?;
                    expect_output(o, "result", "rolled-back")?;
                    expect_output(o, "canary-decision", "trip")?;
                    expect_output(o, "deployed-version", "2.1.1")
                },
            )
            .await;

            // The rollback button to 2.1.1, twice: production is there.
            let writes = || {
                h.request_log()
                    .iter()
                    .filter(|r| {
                        r.target.starts_with("kube")
                            && r.method != "GET"
                            && !r.path.contains("/leases")
                    })
                    .count()
            };
            let before = writes();
            for click in ["first", "second"] {
                let inputs = d.with(
                    &[d.github.clone(), kube.clone()].concat(),
                    &[
                        ("command", "rollback"),
                        ("services", APP),
                        ("to-version", "2.1.1"),
                        ("reason", "drill: is 2.1.1 still serving?"),
                        ("verify-requests", "30"),
                    ],
                );
                let inputs: Vec<(String, String)> = inputs
                    .into_iter()
                    .filter(|(k, _)| k != "app-name")
                    .collect();
                d.step(&format!("rollback to 2.1.1, {click} click"), inputs, |o| {
                    expect_code(o, 0)?;
                    expect_quiet(o)?;
                    expect_output(o, "result", "unchanged")
                })
                .await;
            }
            let t = Instant::now();
            let changed = writes() - before;
            let weights = h
                .kube_object("virtualservices", NS, APP)
                .map(|vs| vs["spec"]["http"][0]["route"].to_string())
                .unwrap_or_default();
            d.check(
                "production after the clicks",
                t,
                format!("{changed} writes to the app; routes {weights}"),
                if changed == 0 && weights.contains("v2-1-1") && !weights.contains("v2-1-2") {
                    Ok(())
                } else {
                    Err("a click changed production".into())
                },
            );

            if crate::config::Command::Incident.available() {
                let inputs = d.with(
                    &[d.github.clone(), d.notify.clone()].concat(),
                    &[
                        ("command", "incident"),
                        ("incident-action", "resolve"),
                        ("incident", INCIDENT),
                        (
                            "root-cause",
                            "Database connection pool exhaustion in 2.1.0 under payment load.",
                        ),
                        (
                            "action-items",
                            "Alert on connection pool saturation\nCanary every gateway release with payment probes",
                        ),
                    ],
                );
                d.step("incident: resolve with root cause", inputs, |o| {
                    expect_code(o, 0)
                })
                .await;
            }
            finish(ctx, &d)
        }

        /// A payment through the mesh, as a customer's: `works` is what
        /// it should do.
        async fn payment_step(d: &mut Drill<'_>, name: &str, host: &str, works: bool) {
            let t = Instant::now();
            let got = d
                .http
                .post(format!("https://{host}/api/payments"))
                .json(&serde_json::json!({"amount": 125, "currency": "USD"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| crate::http::error_chain(&e));
            let (result, held) = match got {
                Ok(code) if (200..300).contains(&code) == works => (format!("HTTP {code}"), Ok(())),
                Ok(code) => (
                    format!("HTTP {code}"),
                    Err(if works {
                        "the fix did not fix it".to_string()
                    } else {
                        "the outage did not reproduce".to_string()
                    }),
                ),
                Err(e) => (format!("error: {e}"), Err(e)),
            };
            d.check(name, t, result, held);
        }
    }

    /// The hotfix branch gets the fix (in the file's old place) and a limit
    /// change; returns both commits.
    fn push_hotfix(bare: &Path, work: &Path) -> Result<(String, String), String> {
        let url = bare.to_string_lossy().to_string();
        let branch = format!("hotfix/{INCIDENT}-large-orders");
        std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
        git(work, &["init", "-q"])?;
        git(work, &["fetch", "-q", &url, &format!("{branch}:{branch}")])?;
        git(work, &["checkout", "-q", &branch])?;
        write(
            &work.join("src/Payments/OrderService.cs"),
            &ORDER_SERVICE.replace(
                "        if (order.Amount > LargeOrderLimit) return; // 2.4.0: large orders are answered but never stored\n",
                "        // Large orders are stored like any other (fix for INC-2041).\n",
            ),
        )?;
        git(
            work,
            &[
                "commit",
                "-q",
                "-am",
                "Store orders over the large-order limit (INC-2041)",
            ],
        )?;
        let fix = git(work, &["rev-parse", "HEAD"])?;
        write(
            &work.join("config/limits.json"),
            &LIMITS.replace("10000", "25000"),
        )?;
        git(
            work,
            &[
                "commit",
                "-q",
                "-am",
                "Raise the order limit to 25,000 for the hotfix",
            ],
        )?;
        let limit = git(work, &["rev-parse", "HEAD"])?;
        git(work, &["push", "-q", &url, &branch])?;
        Ok((fix, limit))
    }

    /// Sample results: the critical and payment tests pass, the scan is
    /// clean.
    fn write_results(ws: &Path) -> Result<(), String> {
        let junit = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="Contoso.Payments.Tests" tests="4" failures="0" errors="0" skipped="0">
    <testcase classname="OrderServiceTests" name="stores_orders_over_the_limit [Critical]" time="0.012"/>
    <testcase classname="OrderServiceTests" name="reads_back_a_large_order [Payment]" time="0.010"/>
    <testcase classname="OrderServiceTests" name="rejects_negative_amounts [Payment]" time="0.004"/>
    <testcase classname="UiTests" name="renders_the_receipt" time="0.200"/>
  </testsuite>
</testsuites>
"#;
        let sarif = r#"{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"CodeQL","rules":[]}},"results":[]}]}"#;
        write(&ws.join("results/tests.xml"), junit)?;
        write(&ws.join("results/security.sarif"), sarif)
    }

    fn finish(ctx: &Ctx, d: &Drill<'_>) -> Result<Report, CommandError> {
        let total = d.started.elapsed();
        let broken: Vec<&Line> = d.lines.iter().filter(|l| l.held.is_err()).collect();
        let mut md = format!(
            "# {} Incident drill: {}\n\n{} steps in {:.1} s; {} expectation(s) broken.\n\n| # | step | start | took | result | expectation |\n|---|---|---|---|---|---|\n",
            if broken.is_empty() { "✅" } else { "❌" },
            d.title,
            d.lines.len(),
            total.as_secs_f64(),
            broken.len()
        );
        for (i, l) in d.lines.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | +{:.1} s | {:.1} s | {} | {} |\n",
                i + 1,
                md_cell(&l.name),
                l.started.as_secs_f64(),
                l.took.as_secs_f64(),
                md_cell(&l.result),
                match &l.held {
                    Ok(()) => "✓ held".to_string(),
                    Err(e) => format!("✗ {}", md_cell(e)),
                }
            ));
        }
        md.push_str(&format!(
            "\n```mermaid\ngantt\n  dateFormat x\n{}  section drill\n",
            crate::report::gantt_axis(total.as_millis() as u64)
        ));
        for (i, l) in d.lines.iter().enumerate() {
            let a = l.started.as_millis() as u64;
            let b = a + (l.took.as_millis() as u64).max(1);
            let state = if l.held.is_ok() { "done" } else { "crit" };
            md.push_str(&format!(
                "  {} :{state}, s{i}, {a}, {b}\n",
                l.name.replace([':', ';', '#'], " ")
            ));
        }
        md.push_str("```\n");
        for (name, summary) in &d.summaries {
            if !summary.trim().is_empty() {
                md.push_str(&format!(
                    "\n<details><summary>{}</summary>\n\n{}\n</details>\n",
                    // Raw HTML: markdown (a code span) does not render here.
                    name.replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;"),
                    summary
                ));
            }
        }
        let path = d.dir.join("summary.md");
        let written = match std::fs::write(&path, &md) {
            Ok(()) => {
                ctx.console
                    .info(&format!("drill summary (markdown): {}", path.display()));
                true
            }
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", path.display());
                false
            }
        };
        let errors: Vec<String> = broken
            .iter()
            .map(|l| {
                format!(
                    "drill expectation broken at '{}': {}",
                    l.name,
                    l.held.as_ref().err().cloned().unwrap_or_default()
                )
            })
            .collect();
        if broken.is_empty() {
            ctx.console.info(&format!(
                "drill passed: every expectation held ({:.1} s)",
                total.as_secs_f64()
            ));
        }
        let mut outputs = vec![
            ("steps", d.lines.len().to_string()),
            ("broken", broken.len().to_string()),
        ];
        if written {
            outputs.push(("summary-file", path.display().to_string()));
        }
        Ok(Report {
            success: broken.is_empty(),
            outputs,
            summary: md,
            errors,
            ..Report::default()
        })
    }
}
