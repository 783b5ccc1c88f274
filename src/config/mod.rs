//! Raw inputs → validated, typed configuration, in one place.
//!
//! Two sources feed one type: the action's `INPUT_*` variables and the CLI's
//! flags ([`RawInputs::from_action`], [`RawInputs::from_cli`]). Defaults from
//! the [`spec`] table apply the same way to both. [`Config::resolve`] turns
//! the strings into typed values and reports *every* bad input at once, each
//! naming the input and what it accepts; nothing runs before it succeeds.

pub mod docs;
pub mod github;
pub mod service;
pub mod spec;
pub mod values;

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
            Style::Cli if self.input == COMMAND_INPUT => "command".to_string(),
            Style::Cli => format!("--{}", self.input),
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
            if spec::input_spec(&name).is_none() && !RUNNER_INPUTS.contains(&name.as_str()) {
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
            let given = env.input(spec.name);
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

/// Settings of the `gate` command.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// What the gate evaluates.
    pub settings: crate::gate::GateSettings,
    /// A command to run first (through `sh -c`) that writes the results.
    pub test_command: Option<String>,
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

/// How deploys and rollbacks of one service exclude each other.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// The lock is a ref in the repository (`lock: github`, or `auto` with
    /// a token and repository); false: `lock: none`.
    pub github: bool,
    /// How long a holder's lock lasts without renewal: at most this long a
    /// run that died without its post stage blocks the next one.
    pub ttl: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            github: false,
            ttl: Duration::from_secs(300),
        }
    }
}

/// Settings of `drill` (CLI only).
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// The sandbox's seed.
    pub seed: u64,
    /// The expectation to break on purpose, if any.
    pub sabotage: Option<String>,
}

/// Settings of `plan`.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// Where the manifest was read from.
    pub path: std::path::PathBuf,
    /// The validated manifest.
    pub manifest: crate::manifest::Manifest,
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

/// How to reach and sign in to Azure (deploy, rollback).
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// ARM endpoint.
    pub arm_endpoint: url::Url,
    /// Entra ID endpoint.
    pub authority_host: url::Url,
    /// Who to sign in as.
    pub identity: crate::azure::auth::Identity,
    /// Subscription of the app.
    pub subscription_id: String,
    /// TLS trust and host resolution.
    pub http: crate::http::HttpSettings,
}

/// Which platform a deploy drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// App Service: slot, routing rules, swap.
    AppService,
    /// Container Apps: revisions, traffic weights.
    ContainerApps,
}

/// Settings of `deploy`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// The platform.
    pub platform: PlatformKind,
    /// Container Apps: which container gets the image.
    pub container: Option<String>,
    /// Several services from the manifest instead of `app-name`.
    pub multi: Option<MultiConfig>,
    /// Azure access; `None` for a manifest of `command` services only.
    pub azure: Option<AzureConfig>,
    /// The app.
    pub site: crate::platform::app_service::SiteRef,
    /// What to do, validated.
    pub plan: crate::rollout::driver::DeployPlan,
    /// The package file, if any (read when the deploy starts).
    pub package: Option<std::path::PathBuf>,
    /// Where the audit log goes.
    pub audit_log: std::path::PathBuf,
}

/// Settings of `rollback`.
#[derive(Debug, Clone)]
pub struct RollbackConfig {
    /// The platform of the apps named in `services` (a manifest names each
    /// service's own).
    pub platform: PlatformKind,
    /// `services: all`: the manifest, whose services are rolled back in
    /// reverse dependency order (`services` holds that order).
    pub manifest: Option<crate::manifest::Manifest>,
    /// Azure access; `None` for a manifest of `command` services only.
    pub azure: Option<AzureConfig>,
    /// Resource group of the apps.
    pub resource_group: String,
    /// Apps to roll back, in order.
    pub services: Vec<String>,
    /// The slot holding the previous build.
    pub slot: String,
    /// Why (data, never interpreted).
    pub reason: String,
    /// Explicit target version.
    pub to_version: Option<String>,
    /// Health and version endpoints.
    pub endpoints: crate::probe::Endpoints,
    /// Requests that must all reach the target afterwards.
    pub verify_samples: usize,
    /// Bound on the swap.
    pub swap_timeout: Duration,
    /// How long to wait for a site operation in progress.
    pub lock_wait: Duration,
    /// Where the audit log goes.
    pub audit_log: std::path::PathBuf,
}

/// Settings of the `sandbox` command (CLI only).
#[derive(Debug, Clone)]
pub struct SandboxCliConfig {
    /// Scenario name, validated.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// HTTPS port (0: any free one).
    pub https_port: u16,
    /// Control API port (0: any free one).
    pub http_port: u16,
    /// Print settings as JSON.
    pub json: bool,
    /// Faults and behaviours to apply at start (validated JSON scenario).
    pub scenario_file: Option<serde_json::Value>,
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
            Some(DrillConfig {
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
            // Only rollouts on Azure take the lock: a manifest of `command`
            // services runs what it says, one service at a time.
            let on_azure = deploy.as_ref().is_some_and(|d| d.azure.is_some())
                || rollback.as_ref().is_some_and(|d| d.azure.is_some());
            lock_config(&mut r, has_github, on_azure)
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

/// The `lock` and `lock-ttl` inputs, for the commands that change
/// production; `has_github`: a token and repository are known;
/// `on_azure`: the run changes a service on Azure (what the lock guards).
fn lock_config(r: &mut Resolver<'_>, has_github: bool, on_azure: bool) -> Option<LockConfig> {
    let ttl = duration_at_least(r, "lock-ttl", Duration::from_secs(5));
    let mode = r.parse("lock", |v| match v {
        "auto" | "github" | "none" => Ok(v.to_string()),
        other => Err(ValueError {
            problem: format!("{} is not a lock", shown(other)),
            accepted:
                "auto (a ref in the repository when a GitHub token is given), github, or none"
                    .into(),
        }),
    });
    let github = match mode.as_deref() {
        Some("none") => false,
        Some("github" | "auto") | None if has_github => true,
        Some("auto") | None if !on_azure => false,
        Some(m) => {
            r.error(
                "lock",
                format!(
                    "is {m}, but no GitHub token and repository are given: the deploy lock is a ref in the repository, so that two runs never change one app at once"
                ),
                "give github-token (in a workflow the default) and repository (GITHUB_TOKEN and GITHUB_REPOSITORY on a terminal), or set lock: none when nobody else can deploy this app",
            );
            return None;
        }
        None => return None,
    };
    Some(LockConfig {
        github,
        ttl: ttl.unwrap_or(Duration::from_secs(300)),
    })
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

fn azure_config(r: &mut Resolver<'_>, env: &Env) -> Option<AzureConfig> {
    use crate::azure::auth::{AzureCredentialsJson, ClientProof, Identity};
    use secrecy::ExposeSecret;
    let raw = r.raw;
    let arm_endpoint = r.parse("arm-endpoint", values::parse_url);
    let authority_host = r.parse("authority-host", values::parse_url);
    let (resolve, ca_pem) = http_inputs(r);
    let audience = raw
        .get("oidc-audience")
        .unwrap_or(crate::azure::auth::DEFAULT_OIDC_AUDIENCE)
        .to_string();
    let ids = ["client-id", "tenant-id", "subscription-id"].map(|k| raw.get(k).map(str::to_string));
    let identity = match raw.get("azure-credentials") {
        Some(json) => {
            if ids.iter().any(Option::is_some) || raw.get("client-secret").is_some() {
                r.error(
                    "azure-credentials",
                    "is given together with client-id, tenant-id, subscription-id or client-secret",
                    "give either azure-credentials or the ids (with a secret or OIDC), not both",
                );
                None
            } else {
                match AzureCredentialsJson::parse(json) {
                    Ok(c) => Some((
                        Identity {
                            tenant_id: c.tenant_id,
                            client_id: c.client_id,
                            proof: ClientProof::Secret(c.client_secret),
                        },
                        c.subscription_id,
                    )),
                    Err(problem) => {
                        r.error(
                            "azure-credentials",
                            problem,
                            "use the JSON `az ad sp create-for-rbac --json-auth` prints",
                        );
                        None
                    }
                }
            }
        }
        None => {
            let names = ["client-id", "tenant-id", "subscription-id"];
            let mut missing = false;
            for (name, v) in names.iter().zip(&ids) {
                if v.is_none() {
                    r.error(
                        name,
                        "is required to sign in to Azure",
                        "set it, or give azure-credentials instead",
                    );
                    missing = true;
                }
            }
            let proof = match raw.get("client-secret") {
                Some(secret) => Some(ClientProof::Secret(secrecy::SecretString::from(
                    secret.to_string(),
                ))),
                None => {
                    let url = env
                        .get("ACTIONS_ID_TOKEN_REQUEST_URL")
                        .filter(|u| !u.is_empty());
                    let token = env
                        .get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
                        .filter(|t| !t.is_empty());
                    match (url.map(url::Url::parse), token) {
                        (Some(Ok(request_url)), Some(t)) => Some(ClientProof::GithubOidc {
                            request_url,
                            request_token: secrecy::SecretString::from(t.to_string()),
                            audience: audience.clone(),
                        }),
                        _ => {
                            r.error(
                                "client-secret",
                                "is not given, and GitHub OIDC is not available in this job (no ACTIONS_ID_TOKEN_REQUEST_URL)",
                                "add `permissions: id-token: write` to the job for OIDC federation, or give client-secret or azure-credentials",
                            );
                            None
                        }
                    }
                }
            };
            match (missing, proof, ids) {
                (false, Some(proof), [Some(client_id), Some(tenant_id), Some(sub)]) => Some((
                    Identity {
                        tenant_id,
                        client_id,
                        proof,
                    },
                    sub,
                )),
                _ => None,
            }
        }
    };
    let (identity, subscription_id) = identity?;
    if let ClientProof::Secret(s) = &identity.proof
        && s.expose_secret().trim().is_empty()
    {
        r.error("client-secret", "is empty", "give the secret's value");
    }
    Some(AzureConfig {
        arm_endpoint: arm_endpoint?,
        authority_host: authority_host?,
        identity,
        subscription_id,
        http: crate::http::HttpSettings {
            resolve: resolve.unwrap_or_default(),
            extra_ca_pem: ca_pem.into_iter().collect(),
            ..crate::http::HttpSettings::default()
        },
    })
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

fn deploy_config(r: &mut Resolver<'_>, env: &Env) -> Option<DeployConfig> {
    use crate::probe::{Endpoints, Schedule};
    use crate::rollout::driver::{DeployPlan, StalePolicy};
    let raw = r.raw;
    // A manifest of `command` services only needs no Azure sign-in.
    let multi = multi_config(r);
    let azure_needed = match &multi {
        Some(Some(m)) => m.manifest.needs_azure(),
        _ => true,
    };
    let azure = if azure_needed {
        azure_config(r, env).map(Some)
    } else {
        Some(None)
    };
    if !raw.given("manifest") && raw.get("resource-group").is_none() {
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
    let slot = r.parse("slot", service::slot);
    let package = r.parse("package", |v| {
        let p = std::path::PathBuf::from(v);
        let mut magic = [0u8; 4];
        let ok = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok();
        if !ok {
            Err(ValueError {
                problem: format!("{} cannot be read", shown(v)),
                accepted: "the path of a zip file".into(),
            })
        } else if &magic != b"PK\x03\x04" {
            Err(ValueError {
                problem: format!("{} is not a zip file", shown(v)),
                accepted: "a zip file (zip a directory first: `cd publish && zip -r ../app.zip .`)"
                    .into(),
            })
        } else {
            Ok(p)
        }
    });
    for name in ["resource-group", "app-name"] {
        r.parse(name, service::resource_name);
    }
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
    let site = crate::platform::app_service::SiteRef {
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
    let platform = r.parse("platform", parse_platform);
    let image = raw.get("image").map(str::to_string);
    r.parse("image", service::image);
    match platform {
        Some(PlatformKind::ContainerApps) => {
            if image.is_none() {
                r.error(
                    "image",
                    "is required by `platform: container-apps`",
                    "the image of the new build, e.g. contoso.azurecr.io/payments:2.4.1",
                );
            }
            if raw.get("package").is_some() {
                r.error(
                    "package",
                    "is for App Service; Container Apps deploys an image",
                    "set `image` instead, or `platform: app-service`",
                );
            }
        }
        Some(PlatformKind::AppService) => {
            for name in ["image", "container"] {
                if raw.get(name).is_some() {
                    r.error(
                        name,
                        "is for Container Apps",
                        "set `platform: container-apps`, or leave it out",
                    );
                }
            }
        }
        None => {}
    }
    let canary = canary_config(r);
    let container = raw.get("container").map(str::to_string);
    r.parse("container", service::container);
    if raw.get("app-name").is_none() && !raw.given("manifest") {
        r.error(
            "app-name",
            "is required by `deploy` (or give `manifest` to deploy several services)",
            "the app's name, e.g. app-contoso-payments",
        );
    }
    let multi = multi?;
    Some(DeployConfig {
        platform: platform?,
        container,
        multi,
        plan: DeployPlan {
            image,
            canary: canary?,
            slot: slot?,
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
        site,
        package,
        audit_log,
    })
}

/// The `platform` input.
fn parse_platform(v: &str) -> Result<PlatformKind, ValueError> {
    match v {
        "app-service" => Ok(PlatformKind::AppService),
        "container-apps" => Ok(PlatformKind::ContainerApps),
        other => Err(ValueError {
            problem: format!("{} is not a platform", shown(other)),
            accepted: "app-service or container-apps".into(),
        }),
    }
}

/// A fraction given as `0.01` or `1%`.
fn parse_fraction(v: &str) -> Result<f64, ValueError> {
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
fn load_manifest(r: &mut Resolver<'_>) -> Option<(std::path::PathBuf, crate::manifest::Manifest)> {
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

fn plan_config(r: &mut Resolver<'_>) -> Option<PlanConfig> {
    let (path, manifest) = load_manifest(r)?;
    Some(PlanConfig { path, manifest })
}

/// `Some(None)`: a single-app deploy; `Some(Some(_))`: the manifest's
/// services; `None`: an error was recorded.
fn multi_config(r: &mut Resolver<'_>) -> Option<Option<MultiConfig>> {
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

/// The `resolve` and `ca-cert` inputs, shared by every command that builds
/// HTTP clients (Azure, GitHub).
fn http_inputs(r: &mut Resolver<'_>) -> (Option<Vec<crate::http::ResolveRule>>, Option<String>) {
    let resolve = r.parse("resolve", |v| {
        values::parse_list(v)
            .iter()
            .map(|rule| rule.parse::<crate::http::ResolveRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ValueError {
                problem: e,
                accepted: "comma-separated rules".into(),
            })
    });
    let ca_pem = r.parse("ca-cert", |v| {
        let text = std::fs::read_to_string(v).map_err(|e| ValueError {
            problem: format!("cannot read {}: {e}", shown(v)),
            accepted: "the path of a PEM file with CA certificates".into(),
        })?;
        crate::http::parse_pem_certs(&text)
            .map(|_| text)
            .map_err(|e| ValueError {
                problem: format!("{}: {e}", shown(v)),
                accepted: "a PEM file of CA certificates".into(),
            })
    });
    (resolve, ca_pem)
}

/// The Prometheus source's settings from the `prometheus-*` inputs.
fn prometheus_spec(
    r: &mut Resolver<'_>,
    latency: Option<Duration>,
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
fn canary_config(r: &mut Resolver<'_>) -> Option<Option<crate::rollout::canary::CanaryPlan>> {
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
                if let Some(spec) = prometheus_spec(r, latency) {
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

fn rollback_config(r: &mut Resolver<'_>, env: &Env) -> Option<RollbackConfig> {
    let raw = r.raw;
    let services = r.parse("services", |v| {
        let list = values::parse_list(v);
        if list.iter().any(|s| s.eq_ignore_ascii_case("all")) {
            if list.len() > 1 {
                return Err(ValueError {
                    problem: "`all` cannot be combined with names".into(),
                    accepted: "`all`, or app names, comma-separated".into(),
                });
            }
            return Ok(list);
        }
        match list.iter().find(|s| service::resource_name(s).is_err()) {
            Some(bad) => Err(ValueError {
                problem: format!("{} is not an app name", shown(bad)),
                accepted: "app names, comma-separated".into(),
            }),
            None if list.is_empty() => Err(ValueError {
                problem: "names no app".into(),
                accepted: "app names, comma-separated".into(),
            }),
            None => Ok(list),
        }
    });
    let reason = raw.get("reason").map(str::to_string);
    let platform = r.parse("platform", parse_platform);
    let to_version = r.parse("to-version", values::parse_version);
    let health_path = r.parse("health-path", |v| service::url_path("health-path", v));
    let version_path = r.parse("version-path", |v| service::url_path("version-path", v));
    let health_status = r.parse("health-status", |v| {
        values::parse_uint(v, 100, 599).map(|n| n as u16)
    });
    let samples = r.parse("verify-requests", |v| {
        values::parse_uint(v, 1, 10_000).map(|n| n as usize)
    });
    let swap_timeout = duration_at_least(r, "swap-timeout", Duration::from_secs(10));
    let lock_wait = r.parse("lock-wait", values::parse_duration);
    let slot = r.parse("slot", service::slot);
    r.parse("resource-group", service::resource_name);
    let dir = env.runner().temp;
    let audit_log = raw
        .get("audit-log")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("expedite-rollback.json"));
    let all = services
        .as_ref()
        .is_some_and(|s| s.len() == 1 && s[0].eq_ignore_ascii_case("all"));
    if !all && raw.get("resource-group").is_none() {
        r.error(
            "resource-group",
            "is required by `rollback` (unless `services: all` reads the manifest)",
            "the Azure resource group of the apps, e.g. rg-contoso-prod",
        );
    }
    // Read before the Azure inputs: a manifest of `command` services only
    // needs no Azure sign-in.
    let loaded = if all { load_manifest(r) } else { None };
    let azure_needed = loaded.as_ref().is_none_or(|(_, m)| m.needs_azure());
    let azure = if azure_needed {
        azure_config(r, env).map(Some)
    } else {
        Some(None)
    };
    let mut services = services?;
    let mut manifest = None;
    if all {
        let (_, m) = loaded?;
        // Dependents first: the reverse of the deploy order.
        services = m.order().into_iter().rev().collect();
        if to_version.is_some() {
            r.error(
                "to-version",
                "cannot apply to every service of the manifest",
                "leave it out: each service goes back to what it served before expedite's last deploy",
            );
            return None;
        }
        manifest = Some(m);
    } else if raw.given("manifest") {
        r.error(
            "manifest",
            "is read by `rollback` only with `services: all`",
            "set services: all, or leave manifest out",
        );
    }
    Some(RollbackConfig {
        platform: platform?,
        manifest,
        azure: azure?,
        resource_group: raw.get("resource-group").unwrap_or_default().to_string(),
        services,
        slot: slot?,
        reason: reason?,
        to_version,
        endpoints: crate::probe::Endpoints {
            health_path: health_path?,
            health_status: health_status?,
            version_path: Some(version_path?),
        },
        verify_samples: samples?,
        swap_timeout: swap_timeout?,
        lock_wait: lock_wait?,
        audit_log,
    })
}

fn sandbox_config(r: &mut Resolver<'_>) -> SandboxCliConfig {
    let port = |v: &str| values::parse_uint(v, 0, 65535).map(|p| p as u16);
    SandboxCliConfig {
        scenario: r
            .parse("scenario", |v| {
                let known = ["contoso"];
                let lower = v.to_ascii_lowercase();
                if known.contains(&lower.as_str()) {
                    Ok(lower)
                } else {
                    Err(ValueError {
                        problem: format!("{} is not a scenario", shown(v)),
                        accepted: known.join(", "),
                    })
                }
            })
            .unwrap_or_else(|| "contoso".into()),
        seed: r
            .parse("seed", |v| values::parse_uint(v, 0, u64::MAX))
            .unwrap_or(0),
        https_port: r.parse("https-port", port).unwrap_or(0),
        http_port: r.parse("http-port", port).unwrap_or(0),
        json: r.parse("json", values::parse_bool).unwrap_or(false),
        scenario_file: r.parse("faults", parse_scenario_file),
    }
}

/// Reads and checks a sandbox scenario file: a list of fault rules, or an
/// object with `faults` and `behaviours`. Checked against the sandbox's own
/// types, so a typo in a rule is an input error, not a silent no-op.
fn parse_scenario_file(path: &str) -> Result<serde_json::Value, ValueError> {
    let accepted = "a JSON file: [fault rules] or {\"faults\": [...], \"behaviours\": {...}}";
    let text = std::fs::read_to_string(path).map_err(|e| ValueError {
        problem: format!("cannot read {}: {e}", shown(path)),
        accepted: accepted.into(),
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ValueError {
        problem: format!(
            "{} is not JSON (line {}, column {})",
            shown(path),
            e.line(),
            e.column()
        ),
        accepted: accepted.into(),
    })?;
    let scenario = match &value {
        serde_json::Value::Array(_) => serde_json::json!({ "faults": value }),
        serde_json::Value::Object(_) => value.clone(),
        _ => {
            return Err(ValueError {
                problem: format!("{} holds neither a list nor an object", shown(path)),
                accepted: accepted.into(),
            });
        }
    };
    #[cfg(feature = "sandbox")]
    {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // read only to validate
        struct Scenario {
            #[serde(default)]
            faults: Vec<expedite_sandbox::FaultSpec>,
            #[serde(default)]
            behaviours: BTreeMap<String, expedite_sandbox::Behaviour>,
        }
        serde_json::from_value::<Scenario>(scenario.clone()).map_err(|e| ValueError {
            problem: format!("{}: {e}", shown(path)),
            accepted: accepted.into(),
        })?;
    }
    Ok(scenario)
}

fn gate_config(r: &mut Resolver<'_>) -> GateConfig {
    use crate::gate::{CategoryPattern, Filter, GateSettings, SecurityThreshold};
    let raw = r.raw;
    let results = raw
        .get("results")
        .map(values::parse_list)
        .unwrap_or_default();
    let filter = r.parse("critical-filter", |v| {
        Filter::parse(v)
            .map(|_| v.to_string())
            .map_err(|e| ValueError {
                problem: format!("{} at column {}", e.message, e.column),
                accepted:
                    "a `dotnet test --filter` expression such as Category=Critical|Category=Payment"
                        .into(),
            })
    });
    let min_critical_tests = r
        .parse("min-critical-tests", |v| {
            values::parse_uint(v, 1, 1_000_000).map_err(|mut e| {
                e.accepted
                    .push_str(" (0 is refused: a filter typo matching nothing would pass)");
                e
            })
        })
        .unwrap_or(1);
    let security_threshold = r
        .parse("security-threshold", |v| {
            v.parse::<SecurityThreshold>().map_err(|e| ValueError {
                problem: format!("{}: {}", shown(v), e.reason),
                accepted: "error, warning, note, critical, high, medium, low, a score 0.1–10, or a level and a score comma-separated".into(),
            })
        })
        .unwrap_or_default();
    let junit_category_pattern = r.parse("junit-category-pattern", |v| {
        if v.eq_ignore_ascii_case("none") {
            return Ok(String::new());
        }
        CategoryPattern::parse(v)
            .map(|_| v.to_string())
            .map_err(|problem| ValueError {
                problem,
                accepted: "prefix{}suffix, e.g. [{}] or @{}; none to turn it off".into(),
            })
    });
    let filter_optional: Vec<String> = raw
        .get("critical-filter-optional")
        .map(values::parse_list)
        .unwrap_or_default();
    match (&filter, filter_optional.is_empty()) {
        (_, true) => {}
        (Some(f), false) => {
            if let Err(problem) = crate::gate::check_optional(f, &filter_optional) {
                r.error(
                    "critical-filter-optional",
                    problem,
                    "list alternatives or conditions exactly as critical-filter has them",
                );
            }
        }
        (None, false) => r.error(
            "critical-filter-optional",
            "is set, but there is no critical-filter",
            "leave it out, or set critical-filter",
        ),
    }
    GateConfig {
        settings: GateSettings {
            results,
            filter_optional,
            filter,
            min_critical_tests: u32::try_from(min_critical_tests).unwrap_or(u32::MAX),
            sarif: raw.get("sarif").map(values::parse_list).unwrap_or_default(),
            security_threshold,
            security_waiver: raw.get("security-waiver").map(str::to_string),
            junit_category_pattern,
            base_dir: std::path::PathBuf::from("."),
        },
        test_command: raw.get("test-command").map(str::to_string),
    }
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
