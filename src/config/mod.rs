//! Raw inputs → validated, typed configuration, in one place.
//!
//! Two sources feed one type: the action's `INPUT_*` variables and the CLI's
//! flags ([`RawInputs::from_action`], [`RawInputs::from_cli`]). Defaults from
//! the [`spec`] table apply the same way to both. [`Config::resolve`] turns
//! the strings into typed values and reports *every* bad input at once, each
//! naming the input and what it accepts; nothing runs before it succeeds.
//!
//! This file reads raw inputs and assembles the [`Config`]; each command's
//! part is its own module (`deploy`, `rollback`, `gate`, `sandbox`, `lock`,
//! `azure` for the sign-in, [`github`] for the GitHub commands), and one
//! service's settings are checked by [`service`], for the inputs and the
//! manifest alike.

mod azure;
mod deploy;
pub mod docs;
mod gate;
pub mod github;
mod kube;
mod lock;
mod rollback;
mod sandbox;
pub mod service;
pub mod spec;
pub mod values;

pub use azure::AzureConfig;
use azure::{azure_config, http_inputs, http_settings};
pub use deploy::{DeployConfig, MultiConfig, PlanConfig};
use deploy::{deploy_config, load_manifest, parse_platform, plan_config};
pub use gate::GateConfig;
use gate::gate_config;
pub use lock::LockConfig;
use lock::lock_config;
pub use rollback::RollbackConfig;
use rollback::rollback_config;
pub use sandbox::SandboxCliConfig;
use sandbox::sandbox_config;

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;

use crate::action::Env;
use crate::action::console::Style;
pub use spec::{COMMAND_INPUT, Command, INPUTS, InputSpec, OUTPUTS, OutputSpec};
use values::{ValueError, shown};

/// Where a raw value came from (reported by errors and in debug output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `--flag` on the command line.
    Flag,
    /// An `INPUT_*` variable set by the runner.
    Input,
    /// An environment variable the CLI falls back to.
    Env(&'static str),
    /// The table's default.
    Default,
}

/// One bad input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input's name.
    pub input: String,
    /// What is wrong.
    pub problem: String,
    /// What is accepted, or how to fix it.
    pub fix: String,
}

impl InputError {
    fn from_value(input: &str, e: ValueError) -> Self {
        InputError {
            input: input.to_string(),
            problem: e.problem,
            fix: e.accepted,
        }
    }

    /// One line naming the input as the user wrote it in this mode.
    pub fn render(&self, style: Style) -> String {
        let name = match style {
            Style::Action => format!("input '{}'", self.input),
            // A pipeline runs the CLI in a script step: flags, as on a terminal.
            Style::Cli | Style::Pipelines if self.input == COMMAND_INPUT => "command".to_string(),
            Style::Cli | Style::Pipelines => format!("--{}", self.input),
        };
        format!("{name}: {}; {}", self.problem, self.fix)
    }
}

/// Strings as given, before validation.
#[derive(Debug, Clone)]
pub struct RawInputs {
    /// The selected command.
    pub command: Command,
    values: BTreeMap<&'static str, (String, Origin)>,
    /// Inputs given a value for a command that does not use them.
    pub ignored: Vec<&'static str>,
}

/// Input names the runner may pass to any container action that are not ours.
const RUNNER_INPUTS: &[&str] = &["entrypoint", "args"];

impl RawInputs {
    /// Reads the action's inputs from `INPUT_*` variables. Fails when the
    /// command is missing or unknown, or an input is not one of ours (a typo
    /// such as `expected-verison` must not be silently ignored).
    pub fn from_action(env: &Env) -> Result<RawInputs, Vec<InputError>> {
        let mut errors = Vec::new();
        for name in env.input_names() {
            if spec::input_spec(&name).is_none()
                && spec::input_by_alias(&name).is_none()
                && !RUNNER_INPUTS.contains(&name.as_str())
            {
                let fix = match closest(&name, INPUTS.iter().map(|i| i.name)) {
                    Some(s) => format!("did you mean '{s}'? Remove it or fix its name in `with:`"),
                    None => "remove it from `with:`; see the inputs in action.yml".to_string(),
                };
                errors.push(InputError {
                    input: name,
                    problem: "is not an input of expedite".into(),
                    fix,
                });
            }
        }
        let command = match env.input(COMMAND_INPUT) {
            None => {
                errors.push(InputError {
                    input: COMMAND_INPUT.into(),
                    problem: "is required and was not given".into(),
                    fix: format!("add `command:` to `with:`, one of: {}", action_commands()),
                });
                None
            }
            Some(v) => match Command::parse(&v).filter(|c| Command::ACTION.contains(c)) {
                Some(c) => Some(c),
                None => {
                    let hint = closest(&v, Command::ACTION.iter().map(|c| c.name()))
                        .map(|s| format!("did you mean '{s}'? "))
                        .unwrap_or_default();
                    errors.push(InputError {
                        input: COMMAND_INPUT.into(),
                        problem: format!("{} is not a command", shown(&v)),
                        fix: format!("{hint}use one of: {}", action_commands()),
                    });
                    None
                }
            },
        };
        let Some(command) = command else {
            return Err(errors);
        };
        let mut raw = RawInputs {
            command,
            values: BTreeMap::new(),
            ignored: Vec::new(),
        };
        for spec in INPUTS.iter().filter(|s| s.name != COMMAND_INPUT) {
            let mut given = env.input(spec.name);
            // A peer action's name for the same input. The runner passes a
            // declared input's default as if given, so an alias wins over
            // the default; two different values are a mistake said aloud.
            for alias in spec.aliases {
                let Some(v) = env.input(alias) else { continue };
                match given.as_deref() {
                    Some(g) if g != v && Some(g) != spec.default => errors.push(InputError {
                        input: spec.name.into(),
                        problem: format!(
                            "is given twice, as '{}' and as its alias '{alias}', with different values",
                            spec.name
                        ),
                        fix: format!("keep one of `{}:` and `{alias}:` in `with:`", spec.name),
                    }),
                    _ => given = Some(v),
                }
            }
            if !spec.scope.includes(command) {
                // The runner passes every declared input with its default;
                // only a value someone set on purpose deserves a warning.
                let is_default = given.as_deref() == spec.default
                    || (spec.action_default.is_some() && spec.default.is_none());
                if given.is_some() && !is_default {
                    raw.ignored.push(spec.name);
                }
                continue;
            }
            raw.insert(spec, given.map(|v| (v, Origin::Input)));
        }
        if errors.is_empty() {
            Ok(raw)
        } else {
            Err(errors)
        }
    }

    /// Builds raw inputs from CLI values (flag name → value), falling back to
    /// the spec's environment variable, then to its default.
    pub fn from_cli(command: Command, flags: &BTreeMap<String, String>, env: &Env) -> RawInputs {
        let mut raw = RawInputs {
            command,
            values: BTreeMap::new(),
            ignored: Vec::new(),
        };
        for spec in INPUTS
            .iter()
            .filter(|s| s.name != COMMAND_INPUT && s.scope.includes(command))
        {
            let given = flags
                .get(spec.name)
                .map(|v| (v.trim().to_string(), Origin::Flag))
                .or_else(|| {
                    let var = spec.cli_env?;
                    env.get(var)
                        .map(|v| (v.trim().to_string(), Origin::Env(var)))
                });
            raw.insert(spec, given);
        }
        raw
    }

    fn insert(&mut self, spec: &'static InputSpec, given: Option<(String, Origin)>) {
        // An empty value means "not given", as in @actions/core.
        match given.filter(|(v, _)| !v.is_empty()) {
            Some(v) => {
                self.values.insert(spec.name, v);
            }
            None => {
                if let Some(d) = spec.default {
                    self.values
                        .insert(spec.name, (d.to_string(), Origin::Default));
                }
            }
        }
    }

    /// The value of an input, after defaults.
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(spec::input_spec(name).is_some(), "unknown input {name}");
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// True when the input was set to something other than its default
    /// (the runner passes action.yml's defaults as if given).
    pub fn given(&self, name: &str) -> bool {
        let default = spec::input_spec(name).and_then(|s| s.default);
        self.values
            .get(name)
            .is_some_and(|(v, o)| *o != Origin::Default && default != Some(v.as_str()))
    }

    /// Where an input's value came from.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.values.get(name).map(|(_, o)| *o)
    }

    /// Values of secret inputs, to be masked before anything is printed.
    pub fn secret_values(&self) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(name, _)| spec::input_spec(name).is_some_and(|s| s.secret))
            .map(|(_, (v, _))| v.as_str())
            .collect()
    }

    /// Parts of ordinary inputs that must never be shown: a package URL's
    /// query, where a SAS token lives (the whole query, and each `sig`).
    pub fn sensitive_parts(&self) -> Vec<&str> {
        let Some((_, query)) = self
            .values
            .get("package")
            .and_then(|(v, _)| v.split_once('?'))
            .filter(|(_, q)| !q.is_empty())
        else {
            return Vec::new();
        };
        std::iter::once(query)
            .chain(
                query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("sig="))
                    .filter(|sig| !sig.is_empty()),
            )
            .collect()
    }

    /// Credentials inside an ordinary input, to be masked like secrets: a
    /// kubeconfig given as content — its tokens, keys and passwords (a
    /// kubeconfig's *path* stays readable: it says which file was used).
    pub fn embedded_credentials(&self) -> Vec<&str> {
        const SECRET_KEYS: [&str; 6] = [
            "token",
            "client-key-data",
            "client-certificate-data",
            "password",
            "id-token",
            "refresh-token",
        ];
        let Some((content, _)) = self
            .values
            .get("kubeconfig")
            .filter(|(v, _)| v.contains('\n'))
        else {
            return Vec::new();
        };
        content
            .lines()
            .filter_map(|line| line.trim().trim_start_matches("- ").split_once(':'))
            .filter(|(key, _)| SECRET_KEYS.contains(&key.trim()))
            .map(|(_, value)| value.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|value| !value.is_empty())
            .collect()
    }
}

fn action_commands() -> String {
    Command::ACTION
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest candidate within a small edit distance, for "did you mean".
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// Deadline for the whole command (`None`: runs until stopped).
    pub timeout: Option<Duration>,
    /// Whether to write the job summary.
    pub summary: bool,
    /// The GitHub token, for commands that talk to GitHub.
    pub github_token: Option<SecretString>,
}

/// Validated configuration for one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The command to run.
    pub command: Command,
    /// Shared settings.
    pub common: Common,
    /// The gate's settings, when the command is `gate`.
    pub gate: Option<GateConfig>,
    /// The sandbox's settings, when the command is `sandbox`.
    pub sandbox: Option<SandboxCliConfig>,
    /// The deploy's settings, when the command is `deploy`.
    pub deploy: Option<Box<DeployConfig>>,
    /// The rollback's settings, when the command is `rollback`.
    pub rollback: Option<Box<RollbackConfig>>,
    /// The cherry-pick's settings, when the command is `cherry-pick`.
    pub cherry_pick: Option<Box<github::CherryPickConfig>>,
    /// The start's settings, when the command is `start`.
    pub start: Option<Box<github::StartConfig>>,
    /// The tag's settings, when the command is `tag`.
    pub tag: Option<Box<github::TagConfig>>,
    /// The incident's settings, when the command is `incident`.
    pub incident: Option<Box<github::IncidentConfig>>,
    /// Timeline, deployments and notifications (deploy, rollback,
    /// cherry-pick, incident).
    pub records: Option<Box<github::RecordsConfig>>,
    /// The plan's settings, when the command is `plan`.
    pub plan: Option<Box<PlanConfig>>,
    /// The drill's settings, when the command is `drill`.
    pub drill: Option<DrillConfig>,
    /// The deploy lock (deploy, rollback).
    pub lock: Option<LockConfig>,
}

/// Settings of `drill` (CLI only).
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// Which incident: `contoso` (Azure) or `payment-gateway` (Kubernetes).
    pub scenario: String,
    /// The sandbox's seed.
    pub seed: u64,
    /// The expectation to break on purpose, if any.
    pub sabotage: Option<String>,
}

/// Collects typed values and every error on the way.
struct Resolver<'a> {
    raw: &'a RawInputs,
    errors: Vec<InputError>,
}

impl Resolver<'_> {
    fn required(&mut self, name: &str) -> Option<&str> {
        let v = self.raw.get(name);
        if v.is_none() {
            self.errors.push(InputError {
                input: name.to_string(),
                problem: format!("is required by `{}`", self.raw.command.name()),
                fix: "give it a value".to_string(),
            });
        }
        v
    }

    fn parse<T>(&mut self, name: &str, f: impl FnOnce(&str) -> Result<T, ValueError>) -> Option<T> {
        let value = self.raw.get(name)?;
        match f(value) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut err = InputError::from_value(name, e);
                if spec::input_spec(name).is_some_and(|s| s.secret) {
                    // Never echo a secret, even a malformed one.
                    err.problem = "is not valid (value hidden: it is a secret)".into();
                }
                self.errors.push(err);
                None
            }
        }
    }
}

impl Config {
    /// Validates everything; on failure returns every problem found. `env`
    /// supplies what the runner provides outside inputs (OIDC request URL,
    /// `RUNNER_TEMP`, the run's identity).
    pub fn resolve(raw: &RawInputs, env: &Env) -> Result<Config, Vec<InputError>> {
        let mut r = Resolver {
            raw,
            errors: Vec::new(),
        };
        let timeout = r.parse("timeout", values::parse_duration);
        if timeout.is_some_and(|t| t.is_zero()) {
            r.errors.push(InputError {
                input: "timeout".into(),
                problem: "is zero".into(),
                fix: "give the command time to run, e.g. 30m".into(),
            });
        }
        let summary = r.parse("summary", values::parse_bool);
        let github_token =
            if spec::input_spec("github-token").is_some_and(|s| s.scope.includes(raw.command)) {
                raw.get("github-token")
                    .map(|t| SecretString::from(t.to_string()))
            } else {
                None
            };
        for spec in INPUTS.iter().filter(|s| s.required_by(raw.command)) {
            r.required(spec.name);
        }
        let gate = (raw.command == Command::Gate).then(|| gate_config(&mut r));
        let sandbox = (raw.command == Command::Sandbox).then(|| sandbox_config(&mut r));
        let deploy = if raw.command == Command::Deploy {
            deploy_config(&mut r, env).map(Box::new)
        } else {
            None
        };
        let rollback = if raw.command == Command::Rollback {
            rollback_config(&mut r, env).map(Box::new)
        } else {
            None
        };
        let drill = if raw.command == Command::Drill {
            let seed = r.parse("seed", |v| values::parse_uint(v, 0, u64::MAX));
            let sabotage = r.parse("sabotage", |v| match v {
                "breaker" => Ok(v.to_string()),
                other => Err(ValueError {
                    problem: format!("{} is not a drill expectation", shown(other)),
                    accepted: "breaker".into(),
                }),
            });
            let scenario = r.parse("scenario", |v| match v {
                "contoso" | "payment-gateway" => Ok(v.to_string()),
                other => Err(ValueError {
                    problem: format!("{} is not a drill scenario", shown(other)),
                    accepted: "contoso (orders lost on App Service), payment-gateway (Payment Gateway Down on Kubernetes with Istio)".into(),
                }),
            });
            Some(DrillConfig {
                scenario: scenario.unwrap_or_else(|| "contoso".into()),
                seed: seed.unwrap_or(0),
                sabotage,
            })
        } else {
            None
        };
        let plan = if raw.command == Command::Plan {
            plan_config(&mut r).map(Box::new)
        } else {
            None
        };
        let (mut cherry_pick, mut start, mut tag) = (None, None, None);
        if github::applies(raw.command) {
            let t = github_token.as_ref();
            match raw.command {
                Command::CherryPick => {
                    cherry_pick = github::cherry_pick_config(&mut r, env, t).map(Box::new)
                }
                Command::Start => start = github::start_config(&mut r, env, t).map(Box::new),
                _ => tag = github::tag_config(&mut r, env, t).map(Box::new),
            }
        }
        let incident = if raw.command == Command::Incident {
            github::incident_config(&mut r, env, github_token.as_ref()).map(Box::new)
        } else {
            None
        };
        // Incident timeline, GitHub deployments and notifications.
        let records = matches!(
            raw.command,
            Command::Deploy | Command::Rollback | Command::CherryPick | Command::Incident
        )
        .then(|| {
            let own = cherry_pick
                .as_ref()
                .map(|c| &c.github)
                .or(incident.as_ref().map(|c| &c.github));
            Box::new(github::records_config(
                &mut r,
                env,
                github_token.as_ref(),
                own,
            ))
        });
        let lock = if matches!(raw.command, Command::Deploy | Command::Rollback) {
            let has_github = records.as_ref().is_some_and(|r| r.github.is_some());
            // Only rollouts on a platform take the lock: a manifest of
            // `command` services runs what it says, one service at a time.
            let on_azure = deploy.as_ref().is_some_and(|d| d.azure.is_some())
                || rollback.as_ref().is_some_and(|d| d.azure.is_some());
            let on_kube = deploy.as_ref().is_some_and(|d| d.kube.is_some())
                || rollback.as_ref().is_some_and(|d| d.kube.is_some());
            lock_config(&mut r, has_github, on_azure, on_kube)
        } else {
            None
        };
        if !r.errors.is_empty() {
            // Inputs shared by several sections (resolve, ca-cert) are
            // read by each; a person needs each problem once.
            let mut seen = std::collections::BTreeSet::new();
            r.errors
                .retain(|e| seen.insert((e.input.clone(), e.problem.clone())));
            return Err(r.errors);
        }
        Ok(Config {
            command: raw.command,
            common: Common {
                timeout,
                summary: summary.unwrap_or(true),
                github_token,
            },
            gate,
            sandbox,
            deploy,
            rollback,
            cherry_pick,
            start,
            tag,
            plan,
            drill,
            incident,
            records,
            lock,
        })
    }
}

impl Resolver<'_> {
    fn error(&mut self, input: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(InputError {
            input: input.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }
}

fn duration_at_least(r: &mut Resolver<'_>, name: &str, min: Duration) -> Option<Duration> {
    let d = r.parse(name, values::parse_duration)?;
    if d < min {
        r.error(
            name,
            format!("{}s is too short", d.as_secs_f64()),
            format!("at least {}ms", min.as_millis()),
        );
        return None;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_inputs_are_validated_before_running() {
        let e = env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_RESULTS", "a.trx\nb/*.xml"),
            ("INPUT_CRITICAL-FILTER", "Category=Critical|("),
            ("INPUT_MIN-CRITICAL-TESTS", "0"),
            ("INPUT_SECURITY-THRESHOLD", "none"),
            ("INPUT_JUNIT-CATEGORY-PATTERN", "no-placeholder"),
        ]);
        let errs = Config::resolve(&RawInputs::from_action(&e).unwrap(), &e).unwrap_err();
        let inputs: Vec<_> = errs.iter().map(|e| e.input.as_str()).collect();
        assert_eq!(
            inputs,
            [
                "critical-filter",
                "min-critical-tests",
                "security-threshold",
                "junit-category-pattern"
            ]
        );
        let ok = env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_RESULTS", "a.trx, b/*.xml"),
            ("INPUT_JUNIT-CATEGORY-PATTERN", "none"),
        ]);
        let c = Config::resolve(&RawInputs::from_action(&ok).unwrap(), &ok).unwrap();
        let g = c.gate.unwrap();
        assert_eq!(g.settings.results, ["a.trx", "b/*.xml"]);
        assert_eq!(g.settings.junit_category_pattern.as_deref(), Some(""));
        assert_eq!(
            g.settings.security_threshold,
            crate::gate::SecurityThreshold::default()
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn hyphenated_inputs_are_read() {
        let e = env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_RESULTS", " a.xml "),
            ("INPUT_MIN-CRITICAL-TESTS", "3"),
        ]);
        let raw = RawInputs::from_action(&e).unwrap();
        assert_eq!(raw.get("results"), Some("a.xml"));
        assert_eq!(raw.get("min-critical-tests"), Some("3"));
        assert_eq!(raw.origin("timeout"), Some(Origin::Default));
    }

    #[test]
    fn missing_command_is_one_error_naming_it() {
        let errs = RawInputs::from_action(&env(&[])).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].input, "command");
        assert!(
            errs[0]
                .render(Style::Action)
                .starts_with("input 'command': is required")
        );
    }

    #[test]
    fn unknown_command_and_input_suggest() {
        let errs = RawInputs::from_action(&env(&[
            ("INPUT_COMMAND", "deplyo"),
            ("INPUT_TIMEOTU", "5m"),
        ]))
        .unwrap_err();
        let text: Vec<_> = errs.iter().map(|e| e.render(Style::Action)).collect();
        assert!(
            text.iter().any(|t| t.contains("did you mean 'deploy'")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("did you mean 'timeout'")),
            "{text:?}"
        );
    }

    #[test]
    fn runner_inputs_are_not_unknown() {
        let raw = RawInputs::from_action(&env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_ENTRYPOINT", ""),
            ("INPUT_RESULTS", "x"),
        ]));
        assert!(raw.is_ok());
    }

    #[test]
    fn bad_values_are_all_reported() {
        let raw = RawInputs::from_action(&env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_TIMEOUT", "5\nx=1"),
            ("INPUT_SUMMARY", "yes"),
        ]))
        .unwrap();
        let errs = Config::resolve(&raw, &Env::default()).unwrap_err();
        let inputs: Vec<_> = errs.iter().map(|e| e.input.as_str()).collect();
        assert_eq!(inputs, ["timeout", "summary", "results"]);
        for e in &errs {
            assert!(!e.render(Style::Action).contains('\n'));
        }
    }

    #[test]
    fn empty_means_default_and_cli_matches_action() {
        let e = env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_TIMEOUT", ""),
            ("INPUT_RESULTS", "r.xml"),
        ]);
        let a = Config::resolve(&RawInputs::from_action(&e).unwrap(), &e).unwrap();
        let flags = BTreeMap::from([("results".to_string(), "r.xml".to_string())]);
        let c = Config::resolve(
            &RawInputs::from_cli(Command::Gate, &flags, &env(&[])),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(a.common.timeout, c.common.timeout);
        assert_eq!(a.common.timeout, Some(Duration::from_secs(1800)));
    }

    #[test]
    fn out_of_scope_values_are_noted_not_used() {
        let e = env(&[
            ("INPUT_COMMAND", "gate"),
            ("INPUT_RESULTS", "r"),
            ("INPUT_GITHUB-TOKEN", "ghs_x"),
        ]);
        let raw = RawInputs::from_action(&e).unwrap();
        assert!(
            raw.ignored.is_empty(),
            "the runner's token default is not a user choice"
        );
        assert!(
            Config::resolve(&raw, &Env::default())
                .unwrap()
                .common
                .github_token
                .is_none()
        );
    }
}
