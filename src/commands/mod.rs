//! The commands. Each takes the run's [`Ctx`] and returns a [`Report`]; the
//! app writes the report's outputs and summary and maps failure to the exit
//! code, so every command follows the runner contract the same way.

pub mod cherry_pick;
pub mod deploy;
pub mod drill;
pub mod gate;
pub mod incident;
pub mod plan;
pub mod rollback;
pub mod sandbox;
pub mod shared;
pub mod start;
pub mod tag;

use crate::action::Env;
use crate::action::Sinks;
use crate::action::console::Console;
use crate::cancel::{Cancel, Cancelled};
use crate::config::{Command, Config};

/// Everything a command needs from the run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// What people see.
    pub console: Console,
    /// Outputs, state, summary.
    pub sinks: Sinks,
    /// The environment snapshot.
    pub env: Env,
    /// Cancellation (signals, deadline).
    pub cancel: Cancel,
    /// Validated configuration.
    pub config: Config,
    /// Who this run is (locks, names that must differ per run).
    pub identity: crate::action::identity::RunIdentity,
}

/// What a command produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// True when the command did what was asked.
    pub success: bool,
    /// Outputs to set (declared in the spec table).
    pub outputs: Vec<(&'static str, String)>,
    /// Markdown for the job summary.
    pub summary: String,
    /// Why it failed, one line each (also the `error` output).
    pub errors: Vec<String>,
    /// True when the command already showed `errors` as annotations (with
    /// better titles), so the app only writes the `error` output.
    pub errors_annotated: bool,
    /// True when cancellation stopped the command with work left for the
    /// post stage (the main stage then records that it did not finish).
    pub interrupted: bool,
    /// True when the command already printed its one `--output json`
    /// object (a server prints it when ready, not when it stops).
    pub outputs_shown: bool,
}

/// A command that could not run to a report.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Not implemented in this version: exits 1, never a pretend success.
    #[error(
        "`{}` is not available in this version of expedite ({}); it arrives with {}. Available now: {}",
        .0.name(), env!("CARGO_PKG_VERSION"), .0.planned_in(), available_list()
    )]
    NotAvailable(Command),
    /// Stopped by a signal or the deadline before finishing.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The command could not do its work; the message says why.
    #[error("{0}")]
    Failed(String),
}

fn available_list() -> String {
    let names: Vec<_> = Command::ALL
        .iter()
        .filter(|c| c.available())
        .map(|c| c.name())
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Runs the configured command.
pub async fn run(ctx: &Ctx) -> Result<Report, CommandError> {
    let command = ctx.config.command;
    if !command.available() {
        return Err(CommandError::NotAvailable(command));
    }
    ctx.cancel.check()?;
    let c = &ctx.config;
    match command {
        Command::Gate if let Some(config) = &c.gate => gate::run(ctx, config).await,
        Command::Sandbox if let Some(config) = &c.sandbox => sandbox::run(ctx, config).await,
        // Boxed: these futures hold whole rollouts.
        Command::Deploy if let Some(config) = &c.deploy => Box::pin(deploy::run(ctx, config)).await,
        Command::Rollback if let Some(config) = &c.rollback => {
            Box::pin(rollback::run(ctx, config)).await
        }
        Command::CherryPick if let Some(config) = &c.cherry_pick => {
            cherry_pick::run(ctx, config).await
        }
        Command::Start if let Some(config) = &c.start => start::run(ctx, config).await,
        Command::Tag if let Some(config) = &c.tag => tag::run(ctx, config).await,
        Command::Incident if let Some(config) = &c.incident => incident::run(ctx, config).await,
        Command::Plan if let Some(config) = &c.plan => plan::run(ctx, config).await,
        Command::Drill if let Some(config) = &c.drill => drill::run(ctx, config).await,
        _ => Err(CommandError::NotAvailable(command)),
    }
}
