//! The command line: `expedite <command> --input value …`.
//!
//! Global flags are a clap derive struct; each subcommand's flags are made
//! from the input table, so input `foo-bar` is always `--foo-bar` and the
//! CLI cannot drift from the action. Clap's multi-line errors become one
//! line that says what was wrong and what is accepted.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Args, FromArgMatches};

use crate::config::{COMMAND_INPUT, Command, INPUTS, InputSpec};

/// Flags that exist only on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Also write the job summary (markdown) to this file.
    #[arg(long, global = true, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
    /// Show expedite's debug output (same as RUNNER_DEBUG=1); twice (-vv)
    /// also the HTTP and TLS libraries' (same as EXPEDITE_DEBUG=2).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How the outputs are printed on stdout: `text` (`name=value` lines)
    /// or `json` (one JSON object: `outcome`, every output, `error`). Logs
    /// stay on stderr either way.
    #[arg(
        long,
        global = true,
        value_name = "text|json",
        default_value = "text",
        value_parser = ["text", "json"]
    )]
    pub output: String,
}

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The subcommand.
    pub command: Command,
    /// Input name → value, as given.
    pub flags: BTreeMap<String, String>,
    /// CLI-only flags.
    pub global: GlobalArgs,
}

/// What to do instead of running a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Print this (help or version) on stdout and exit 0.
    Info(String),
    /// Print this one-line error (and the usage hint) and exit 1.
    Error(String),
}

/// What a flag takes, for `--help` (`--timeout <DURATION>`): a word a
/// person reads, or the choices. Booleans are `true|false`.
fn value_name(name: &str) -> &'static str {
    match name {
        "timeout" | "check-interval" | "swap-timeout" | "check-timeout" | "verify-window"
        | "verify-interval" | "canary-window" | "evidence-interval" | "latency-threshold"
        | "max-silence" | "inconclusive-wait" | "lock-wait" | "lock-ttl" => "DURATION",
        "health-status" | "check-attempts" | "min-critical-tests" | "max-parallel"
        | "verify-requests" | "min-requests" | "seed" | "https-port" | "http-port" => "N",
        "probe-rate" => "PER_SECOND",
        "alpha" | "baseline-error-rate" | "max-error-rate" => "FRACTION",
        "health-path" | "version-path" => "URL_PATH",
        "results" | "sarif" => "GLOBS",
        "manifest" | "ca-cert" | "audit-log" | "faults" | "app-private-key" => "FILE",
        "arm-endpoint" | "authority-host" | "prometheus-url" | "slack-webhook-url"
        | "teams-webhook-url" | "pagerduty-url" | "oidc-audience" => "URL",
        "subscription-id" | "tenant-id" | "client-id" | "app-id" => "ID",
        "service-connection-id" => "GUID",
        "github-token"
        | "client-secret"
        | "prometheus-token"
        | "pagerduty-routing-key"
        | "federated-token" => "SECRET",
        "azure-credentials" => "JSON",
        "version" | "expected-version" | "to-version" => "VERSION",
        "app-name" | "resource-group" | "container" | "slot" | "environment" | "scenario"
        | "namespace" | "service" | "kube-context" => "NAME",
        "strategy" => "blue-green|canary",
        "kubeconfig" => "FILE|YAML",
        "production-url" => "URL",
        "services" => "NAMES|all",
        "platform" => "PLATFORM",
        "image" => "IMAGE",
        "package" => "ZIP|URL",
        "canary" => "PERCENTS",
        "evidence" => "SOURCES",
        "probe-requests" => "REQUESTS",
        "prometheus-requests-query" | "prometheus-failures-query" | "prometheus-slow-query" => {
            "PROMQL"
        }
        "critical-filter" => "FILTER",
        "critical-filter-optional" => "PARTS",
        "junit-category-pattern" => "REGEX",
        "test-command" => "COMMAND",
        "resolve" => "HOST=ADDR,…",
        "repository" => "OWNER/REPO",
        "target-branch" => "BRANCH",
        "ref" => "REF",
        "commits" => "SHAS",
        "hotfix-tag" => "TAG",
        "tag-prefix" => "PREFIX",
        "slug" => "SLUG",
        "labels" | "assignees" => "LIST",
        "incident" => "INCIDENT_ID",
        "severity" => "sev0|sev1|sev2|sev3",
        "security-threshold" => "LEVELS",
        "reason" | "title" | "message" | "root-cause" | "security-waiver" => "TEXT",
        "action-items" => "LINES",
        "on-failure" => "rollback-all|rollback-failed|stop",
        "mode" => "pull-request|push",
        "incident-action" => "create|update|resolve",
        "lock" => "auto|github|lease|none",
        "on-inconclusive" => "wait|fail|promote",
        "on-stale-routing" => "clear|fail",
        "failure-clumping" => "estimate|independent",
        "sabotage" => "breaker",
        _ => "VALUE",
    }
}

fn arg_for(spec: &InputSpec) -> Arg {
    let mut help = spec.description.to_string();
    if let Some(var) = spec.cli_env {
        // clap shows the default itself: this says where else it comes from.
        help.push_str(&format!(" [env: {var}]"));
    }
    // A secret is read from its environment variable only: on the command
    // line `ps` and shell history would show it. The flag exists, hidden,
    // so that giving it gets that explanation rather than "unknown input".
    let mut arg = Arg::new(spec.name)
        .long(spec.name)
        .help(help)
        .hide(spec.secret);
    // Peer actions' names for the same input; long flags only.
    for alias in spec
        .aliases
        .iter()
        .filter(|a| a.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
    {
        arg = arg.visible_alias(*alias);
    }
    if spec.boolean {
        arg = arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_name("true|false")
            .action(ArgAction::Set);
    } else {
        arg = arg.value_name(value_name(spec.name)).action(ArgAction::Set);
    }
    if let Some(d) = spec.default {
        arg = arg.default_value(d);
    }
    arg
}

/// The clap command tree.
pub fn clap_command() -> clap::Command {
    let mut root = clap::Command::new("expedite")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true);
    // After the global flags: their struct's doc comment would otherwise
    // become the program's description.
    root = GlobalArgs::augment_args(root).about(
        "The expedited hotfix path for services on Azure: gate, deploy behind a canary, \
         roll back, carry the fix to main",
    );
    for c in Command::ALL {
        let mut sub = clap::Command::new(c.name()).about(c.about());
        let mut secrets = Vec::new();
        for spec in INPUTS
            .iter()
            .filter(|s| s.name != COMMAND_INPUT && s.scope.includes(c))
        {
            sub = sub.arg(arg_for(spec));
            if let (true, Some(var)) = (spec.secret, spec.cli_env) {
                secrets.push(format!("  {var:<32} {}", spec.name));
            }
        }
        if !secrets.is_empty() {
            sub = sub.after_help(format!(
                "Secrets are read from the environment only (never from flags):\n{}",
                secrets.join("\n")
            ));
        }
        root = root.subcommand(sub);
    }
    root
}

/// Parses the command line.
pub fn parse(argv: &[OsString]) -> Result<Invocation, Exit> {
    let matches = clap_command()
        .try_get_matches_from(argv)
        .map_err(one_line)?;
    let global = GlobalArgs::from_arg_matches(&matches).map_err(one_line)?;
    let (name, sub) = matches
        .subcommand()
        .ok_or_else(|| Exit::Error("no command given".into()))?;
    let command =
        Command::parse(name).ok_or_else(|| Exit::Error(format!("unknown command '{name}'")))?;
    let mut flags = BTreeMap::new();
    for spec in INPUTS
        .iter()
        .filter(|s| s.name != COMMAND_INPUT && s.scope.includes(command))
    {
        // Defaults are applied by the config layer, for both sources alike.
        if sub.value_source(spec.name) == Some(clap::parser::ValueSource::CommandLine)
            && let Some(v) = sub.get_one::<String>(spec.name)
        {
            if spec.secret {
                return Err(Exit::Error(format!(
                    "--{} is a secret, and a flag's value is visible to `ps` and in shell history; export {} instead",
                    spec.name,
                    spec.cli_env.unwrap_or("the variable its help names")
                )));
            }
            flags.insert(spec.name.to_string(), v.clone());
        }
    }
    Ok(Invocation {
        command,
        flags,
        global,
    })
}

fn context(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

fn one_line(err: clap::Error) -> Exit {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Info(err.render().to_string()),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            Exit::Error(format!(
                "no command given; use one of: {} (see `expedite --help`)",
                command_list()
            ))
        }
        ErrorKind::InvalidSubcommand => {
            let bad = context(&err, ContextKind::InvalidSubcommand).unwrap_or_default();
            let hint = context(&err, ContextKind::SuggestedSubcommand)
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            Exit::Error(format!(
                "unknown command '{bad}'; {hint}commands: {}",
                command_list()
            ))
        }
        ErrorKind::UnknownArgument => {
            let bad = context(&err, ContextKind::InvalidArg).unwrap_or_default();
            if bad.len() > 1
                && bad.starts_with('-')
                && bad[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                return Exit::Error(format!(
                    "'{bad}…' was read as a flag; attach a value that starts with '-' with '=', e.g. --timeout=-5s"
                ));
            }
            let hint = context(&err, ContextKind::SuggestedArg)
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            Exit::Error(format!(
                "unknown input '{bad}'; {hint}see `expedite <command> --help` for the inputs each command takes"
            ))
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            Exit::Error(format!("{first} (see `expedite --help`)"))
        }
    }
}

fn command_list() -> String {
    Command::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("expedite")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn clap_tree_is_consistent() {
        clap_command().debug_assert();
    }

    #[test]
    fn flags_are_input_names() {
        let inv = parse(&argv(&[
            "gate",
            "--results",
            "a.xml",
            "--min-critical-tests",
            "2",
            "--summary",
        ]))
        .unwrap();
        assert_eq!(inv.command, Command::Gate);
        assert_eq!(inv.flags.get("results").map(String::as_str), Some("a.xml"));
        assert_eq!(inv.flags.get("summary").map(String::as_str), Some("true"));
        assert!(
            !inv.flags.contains_key("timeout"),
            "defaults come from the config layer"
        );
    }

    #[test]
    fn errors_are_one_line() {
        for args in [
            &["deplyo"][..],
            &["gate", "--resutls", "x"],
            &["gate", "--results"],
            &[],
        ] {
            match parse(&argv(args)) {
                Err(Exit::Error(msg)) => assert_eq!(msg.lines().count(), 1, "{args:?}: {msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let Err(Exit::Error(msg)) = parse(&argv(&["deplyo"])) else {
            panic!()
        };
        assert!(msg.contains("did you mean 'deploy'"), "{msg}");
        let Err(Exit::Error(msg)) = parse(&argv(&["gate", "--timeout", "-5s"])) else {
            panic!()
        };
        assert!(msg.contains("--timeout=-5s"), "{msg}");
        let Err(Exit::Error(msg)) = parse(&argv(&["gate", "--resutls", "x"])) else {
            panic!()
        };
        assert!(msg.contains("--results"), "{msg}");
    }

    #[test]
    fn every_flag_says_what_it_takes_and_shows_one_default() {
        // `command` is the subcommand on the command line, not a flag.
        for spec in INPUTS
            .iter()
            .filter(|s| !s.boolean && s.name != COMMAND_INPUT)
        {
            assert_ne!(
                value_name(spec.name),
                "VALUE",
                "--{} has no value name",
                spec.name
            );
        }
        for spec in INPUTS.iter().filter(|s| s.cli_env.is_some()) {
            let help = arg_for(spec)
                .get_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(!help.contains("[default: $"), "--{}: {help}", spec.name);
        }
    }

    #[test]
    fn a_peer_flag_name_is_its_input() {
        for (flag, input) in [
            ("--slot-name", "slot"),
            ("--images", "image"),
            ("--resource-group-name", "resource-group"),
        ] {
            let inv = parse(&argv(&["deploy", flag, "x"])).expect(flag);
            assert_eq!(
                inv.flags.get(input).map(String::as_str),
                Some("x"),
                "{flag}"
            );
        }
    }

    #[test]
    fn help_and_version_are_info() {
        assert!(
            matches!(parse(&argv(&["--version"])), Err(Exit::Info(v)) if v.contains(env!("CARGO_PKG_VERSION")))
        );
        assert!(matches!(
            parse(&argv(&["gate", "--help"])),
            Err(Exit::Info(_))
        ));
    }
}
