//! The run, from arguments and environment to an exit code.
//!
//! Order matters and is the point of this module:
//! 1. parse the command line (help and version have no side effects);
//! 2. mask every secret input before anything else is printed;
//! 3. read and validate **all** inputs — nothing is changed before they are
//!    valid, and every bad input gets one error naming it and the fix;
//! 4. record for the post stage that the main stage started;
//! 5. run the command under cancellation (signals and the deadline);
//! 6. write outputs, summary, annotations; record whether it finished or
//!    left work for the post stage.
//!
//! The post stage (`expedite-post`, same inputs) stops after step 3 unless
//! the main stage left work; then it finishes an interrupted deploy.
//!
//! Exit codes: 0 success; 1 anything else (bad input, a failed gate or
//! deploy, cancellation). A second signal exits with 130.

use std::ffi::OsString;

use serde::{Deserialize, Serialize};

use crate::action::console::{Console, Secrets};
use crate::action::escape::{Annotation, Level};
use crate::action::identity::RunIdentity;
use crate::action::{self, Env, Sinks, Stage};
use crate::cancel::{self, Cancel};
use crate::cli::{self, Exit};
use crate::commands::{self, CommandError, Ctx, Report};
use crate::config::{Config, INPUTS, InputError, RawInputs};

/// Name of the state entry the post stage reads (`STATE_expedite-run`).
pub const STATE_RUN: &str = "expedite-run";

/// What the main stage records for the post stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunState {
    /// The command's name.
    pub command: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// True when the main stage left nothing for the post stage (it got to
    /// the end, whatever the outcome, and was not interrupted mid-change).
    pub finished: bool,
}

/// Runs expedite and returns the process exit code.
pub async fn run(argv: Vec<OsString>, env: Env) -> u8 {
    // One crypto backend for every TLS client in the process (ADR 0002).
    crate::http::install_crypto_provider();

    let style = action::style_for(&env);
    let invocation = if argv.len() > 1 {
        match cli::parse(&argv) {
            Ok(inv) => Some(inv),
            Err(Exit::Info(text)) => {
                print!("{text}");
                return 0;
            }
            Err(Exit::Error(message)) => {
                let console = Console::stdio(style, env.debug(), Secrets::default());
                console.annotate(Level::Error, &Annotation::message(message));
                return 1;
            }
        }
    } else {
        None
    };
    let verbose = invocation.as_ref().map_or(0, |i| i.global.verbose);
    let debug = env.debug() || verbose >= 1;
    // Libraries' own logs (connection pools, TLS) drown expedite's: only on
    // request.
    let libraries = verbose >= 2 || env.get("EXPEDITE_DEBUG") == Some("2");
    let console = Console::stdio(style, debug || libraries, Secrets::default());
    // Progress rewrites one status line only on a terminal that can show
    // it; a pipe, a job's log, `NO_COLOR` or `TERM=dumb` get plain lines.
    console.use_status_line(
        style == action::console::Style::Cli
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
            && env.get("NO_COLOR").is_none_or(str::is_empty)
            && env.get("TERM") != Some("dumb"),
    );
    action::log::install(&console, libraries);
    mask_secret_inputs(&console, &env);

    let mut sinks = Sinks::from_env(&env);
    if let Some(path) = invocation
        .as_ref()
        .and_then(|i| i.global.summary_file.clone())
    {
        // A file named on the command line holds this run's summary only
        // (the runner's file is per step and starts empty the same way).
        if let Err(e) = std::fs::write(&path, "") {
            console.annotate(
                Level::Warning,
                &Annotation::message(format!(
                    "cannot write the summary file {}: {e}",
                    path.display()
                )),
            );
        }
        sinks.summary = Some(path);
    }

    sinks.json = invocation
        .as_ref()
        .is_some_and(|i| i.global.output == "json");

    let argv0 = argv.first().cloned().unwrap_or_default();
    let stage = Stage::detect(&argv0, &env);
    if stage == Stage::Post && !post_has_work(&env, &console) {
        return 0;
    }

    let raw = match invocation {
        Some(inv) => Ok(RawInputs::from_cli(inv.command, &inv.flags, &env)),
        None if env.in_actions() => RawInputs::from_action(&env),
        None => {
            console.annotate(
                Level::Error,
                &Annotation::message("no command given; run `expedite --help` to see the commands"),
            );
            return 1;
        }
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(errors) => return reject_inputs(&console, &sinks, &errors),
    };
    for secret in raw.secret_values() {
        console.add_mask(secret);
    }
    for credential in raw.embedded_credentials() {
        console.add_mask(credential);
    }
    // Redacted from everything expedite writes (an Azure error that echoes
    // the URL included). Not announced to the runner: it is the user's URL,
    // not a credential of the job.
    for part in raw.sensitive_parts() {
        console.secrets().register(part);
    }
    for name in &raw.ignored {
        tracing::warn!(
            "input '{name}' is not used by `{}`; it was ignored",
            raw.command.name()
        );
    }
    let config = match Config::resolve(&raw, &env) {
        Ok(c) => c,
        Err(errors) => return reject_inputs(&console, &sinks, &errors),
    };

    if stage == Stage::Post {
        return post_stage(console, sinks, env, config).await;
    }

    let started_at = chrono::Utc::now().to_rfc3339();
    save_run_state(
        &sinks,
        &RunState {
            command: config.command.name().into(),
            started_at: started_at.clone(),
            finished: false,
        },
    );

    let cancel = Cancel::new();
    cancel::listen_for_signals(
        &cancel,
        if env.in_actions() {
            cancel::SignalPolicy::Job {
                after_kill: "the post stage finishes the restore",
            }
        } else if env.in_pipelines() {
            cancel::SignalPolicy::Job {
                after_kill: "a pipeline has no post stage: run the `expedite rollback` command this step prints to finish it",
            }
        } else {
            cancel::SignalPolicy::Terminal
        },
    );
    if let Some(deadline) = config.common.timeout {
        cancel.deadline(deadline);
    }
    let identity = RunIdentity::from_env(&env);
    crate::http::set_run_tag(&identity.id);
    let ctx = Ctx {
        console: console.clone(),
        sinks: sinks.clone(),
        env,
        cancel,
        config,
        identity,
    };
    let result = commands::run(&ctx).await;
    let interrupted = match &result {
        Ok(r) => r.interrupted,
        Err(CommandError::Cancelled(_)) => true,
        Err(_) => false,
    };
    let code = finish(&ctx, result);
    save_run_state(
        &sinks,
        &RunState {
            command: ctx.config.command.name().into(),
            started_at,
            // An interrupted command left work for the post stage.
            finished: !interrupted,
        },
    );
    code
}

/// Masks secret inputs straight from the environment, before validation can
/// print anything (a malformed secret must not appear in an error either).
fn mask_secret_inputs(console: &Console, env: &Env) {
    for spec in INPUTS.iter().filter(|s| s.secret) {
        if let Some(v) = env.input(spec.name) {
            console.add_mask(&v);
        }
        if let Some(v) = spec
            .cli_env
            .and_then(|var| env.get(var))
            .filter(|v| !v.trim().is_empty())
        {
            console.add_mask(v);
        }
    }
}

fn reject_inputs(console: &Console, sinks: &Sinks, errors: &[InputError]) -> u8 {
    let lines: Vec<String> = errors.iter().map(|e| e.render(console.style())).collect();
    for line in &lines {
        console.annotate(
            Level::Error,
            &Annotation::message(line.clone()).with_title("Invalid input"),
        );
    }
    write_outputs(
        console,
        sinks,
        &[
            ("outcome", "failure".to_string()),
            ("error", lines.join("\n")),
        ],
    );
    let mut md = String::from(
        "### expedite did not start: invalid input\n\nNothing was changed.\n\n| input | problem |\n|---|---|\n",
    );
    for e in errors {
        md.push_str(&format!(
            "| {} | {} |\n",
            crate::report::md_cell(&e.input),
            crate::report::md_cell(&format!("{}; {}", e.problem, e.fix))
        ));
    }
    if let Err(e) = sinks.append_summary(console, &md) {
        console.annotate(Level::Warning, &Annotation::message(e.to_string()));
    }
    sinks.finish_pipeline_step(console, false);
    1
}

fn write_outputs(console: &Console, sinks: &Sinks, outputs: &[(&str, String)]) -> bool {
    if sinks.json && sinks.output.is_none() && !sinks.pipelines {
        // One object for a program to parse; a secret never reaches it.
        let object: serde_json::Map<String, serde_json::Value> = outputs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    serde_json::Value::String(console.secrets().redact(v)),
                )
            })
            .collect();
        console.data(&format!("{}\n", serde_json::Value::Object(object)));
        return true;
    }
    let mut ok = true;
    for (name, value) in outputs {
        if let Err(e) = sinks.set_output(console, name, value) {
            console.annotate(Level::Error, &Annotation::message(e.to_string()));
            ok = false;
        }
    }
    ok
}

fn finish(ctx: &Ctx, result: Result<Report, CommandError>) -> u8 {
    let console = &ctx.console;
    let (report, outcome) = match result {
        Ok(report) => {
            let outcome = if report.interrupted {
                "cancelled"
            } else if report.success {
                "success"
            } else {
                "failure"
            };
            (report, outcome)
        }
        Err(CommandError::Cancelled(c)) => (
            Report {
                errors: vec![format!("cancelled: {}", c.0)],
                ..Report::default()
            },
            "cancelled",
        ),
        Err(e) => (
            Report {
                errors: vec![e.to_string()],
                ..Report::default()
            },
            "failure",
        ),
    };
    if !report.errors_annotated {
        for e in &report.errors {
            console.annotate(Level::Error, &Annotation::message(e.clone()));
        }
    }
    let mut outputs: Vec<(&str, String)> = vec![("outcome", outcome.to_string())];
    outputs.extend(report.outputs.iter().map(|(k, v)| (*k, v.clone())));
    if !report.errors.is_empty() {
        outputs.push(("error", report.errors.join("\n")));
    }
    let wrote = (report.outputs_shown && ctx.sinks.json && report.errors.is_empty())
        || write_outputs(console, &ctx.sinks, &outputs);
    if ctx.config.common.summary
        && !report.summary.is_empty()
        && let Err(e) = ctx.sinks.append_summary(console, &report.summary)
    {
        console.annotate(Level::Warning, &Annotation::message(e.to_string()));
    }
    let success = outcome == "success" && wrote;
    ctx.sinks.finish_pipeline_step(console, success);
    u8::from(!success)
}

fn save_run_state(sinks: &Sinks, state: &RunState) {
    match serde_json::to_string(state) {
        Ok(json) => {
            if let Err(e) = sinks.save_state(STATE_RUN, &json) {
                tracing::warn!("cannot save state for the post stage: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot encode state for the post stage: {e}"),
    }
}

/// Whether the post stage has anything to finish: the main stage started
/// a command and did not record that it finished.
fn post_has_work(env: &Env, console: &Console) -> bool {
    let Some(raw) = env.get(&format!("STATE_{STATE_RUN}")) else {
        console.debug(
            "post stage: the main stage saved no state (it did not start); nothing to finish",
        );
        return false;
    };
    let state: RunState = match serde_json::from_str(raw) {
        Ok(s) => s,
        Err(e) => {
            console.annotate(
                Level::Warning,
                &Annotation::message(format!(
                    "post stage: unreadable state from the main stage ({e}); nothing was changed"
                )),
            );
            return false;
        }
    };
    if state.finished {
        console.debug(&format!(
            "post stage: `{}` finished in the main stage; nothing to finish",
            state.command
        ));
        return false;
    }
    if state.command != crate::config::Command::Deploy.name()
        && state.command != crate::config::Command::Rollback.name()
    {
        // Only `deploy` and `rollback` change production.
        console.annotate(
            Level::Notice,
            &Annotation::message(format!(
                "post stage: `{}` (started {}) did not finish in the main stage; it leaves nothing to restore",
                state.command, state.started_at
            )),
        );
        return false;
    }
    true
}

/// The post stage of an interrupted `deploy` or `rollback`: runs at the end
/// of the job (after failure and cancellation too) with the same inputs, and
/// restores production to a safe state from the journals.
async fn post_stage(console: Console, sinks: Sinks, env: Env, config: Config) -> u8 {
    let (azure, http, kube, base) = match (&config.deploy, &config.rollback) {
        (Some(d), _) => (
            d.azure.clone(),
            d.http.clone(),
            d.kube.clone(),
            Some(d.plan.clone()),
        ),
        (None, Some(r)) => (r.azure.clone(), r.http.clone(), r.kube.clone(), None),
        (None, None) => return 0,
    };
    // Only rollouts on a platform keep journals; a run of command services
    // alone has nothing for the post stage to restore.
    if azure.is_none() && kube.is_none() {
        return 0;
    }
    let identity = RunIdentity::from_env(&env);
    crate::http::set_run_tag(&identity.id);
    let ctx = Ctx {
        console: console.clone(),
        sinks,
        env,
        cancel: Cancel::new(),
        config,
        identity,
    };
    match crate::commands::shared::service::post(
        &ctx,
        azure.as_ref(),
        &http,
        kube.as_ref(),
        base.as_ref(),
    )
    .await
    {
        Ok(report) => {
            for e in &report.errors {
                console.annotate(Level::Error, &Annotation::message(e.clone()));
            }
            if !report.summary.is_empty()
                && let Err(e) = ctx.sinks.append_summary(&console, &report.summary)
            {
                console.annotate(Level::Warning, &Annotation::message(e.to_string()));
            }
            u8::from(!report.success)
        }
        Err(e) => {
            console.annotate(
                Level::Error,
                &Annotation::message(format!("post stage: {e}")),
            );
            1
        }
    }
}
