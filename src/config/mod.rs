//! Raw inputs → validated, typed configuration, in one place.
//!
//! Two sources feed one type: the action's `INPUT_*` variables and the CLI's
//! flags ([`RawInputs::from_action`], [`RawInputs::from_cli`]). Defaults from
//! the [`spec`] table apply the same way to both. [`Config::resolve`] turns
//! the strings into typed values and reports *every* bad input at once, each
//! naming the input and what it accepts; nothing runs before it succeeds.

pub mod docs;
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
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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

/// Settings of `deploy`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Azure access.
    pub azure: AzureConfig,
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
    /// Azure access.
    pub azure: AzureConfig,
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
        if !r.errors.is_empty() {
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

fn azure_config(r: &mut Resolver<'_>, env: &Env) -> Option<AzureConfig> {
    use crate::azure::auth::{AzureCredentialsJson, ClientProof, Identity};
    use secrecy::ExposeSecret;
    let raw = r.raw;
    let arm_endpoint = r.parse("arm-endpoint", values::parse_url);
    let authority_host = r.parse("authority-host", values::parse_url);
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
    let azure = azure_config(r, env);
    let raw = r.raw;
    let path = |name: &str, v: &str| -> Result<String, ValueError> {
        if v.starts_with('/') && !v.contains(char::is_whitespace) {
            Ok(v.to_string())
        } else {
            Err(ValueError {
                problem: format!("{} is not a URL path", shown(v)),
                accepted: format!("a path starting with /, e.g. the default of {name}"),
            })
        }
    };
    let health_path = r.parse("health-path", |v| path("health-path", v));
    let version_path = r.parse("version-path", |v| path("version-path", v));
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
    let slot = r.parse("slot", |v| {
        if v == crate::platform::app_service::PRODUCTION
            || v.is_empty()
            || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            Err(ValueError {
                problem: format!("{} is not a deployment slot", shown(v)),
                accepted: "the name of a slot other than production, e.g. staging".into(),
            })
        } else {
            Ok(v.to_string())
        }
    });
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
    let name_ok = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
    };
    for name in ["resource-group", "app-name"] {
        if let Some(v) = raw.get(name)
            && !name_ok(v)
        {
            r.error(
                name,
                format!("{} is not an Azure resource name", shown(v)),
                "letters, digits, - _ . ( )",
            );
        }
    }
    let run_id = format!(
        "{}#{}.{}",
        env.get("GITHUB_REPOSITORY").unwrap_or("local"),
        env.get("GITHUB_RUN_ID").unwrap_or("0"),
        env.get("GITHUB_RUN_ATTEMPT").unwrap_or("1")
    );
    let app = raw.get("app-name").unwrap_or_default().to_string();
    let dir = env.path("RUNNER_TEMP").unwrap_or_else(std::env::temp_dir);
    let audit_log = raw
        .get("audit-log")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join(format!("expedite-deploy-{app}.json")));
    let journal = dir.join(format!("expedite-journal-{app}.json"));
    let azure = azure?;
    let site = crate::platform::app_service::SiteRef {
        subscription: azure.subscription_id.clone(),
        resource_group: raw.get("resource-group")?.to_string(),
        app,
    };
    let staging = Schedule {
        attempts: attempts?,
        interval: interval?,
        timeout: check_timeout?,
    };
    Some(DeployConfig {
        plan: DeployPlan {
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
        },
        azure,
        site,
        package,
        audit_log,
    })
}

fn url_path(name: &str, v: &str) -> Result<String, ValueError> {
    if v.starts_with('/') && !v.contains(char::is_whitespace) {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a URL path", shown(v)),
            accepted: format!("a path starting with /, like the default of {name}"),
        })
    }
}

fn resource_name_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 90
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn rollback_config(r: &mut Resolver<'_>, env: &Env) -> Option<RollbackConfig> {
    let azure = azure_config(r, env);
    let raw = r.raw;
    let services = r.parse("services", |v| {
        let list = values::parse_list(v);
        if list.iter().any(|s| s.eq_ignore_ascii_case("all")) {
            return Err(ValueError {
                problem: "`all` needs the multi-service manifest, which this version does not read"
                    .into(),
                accepted: "app names, comma-separated".into(),
            });
        }
        match list.iter().find(|s| !resource_name_ok(s)) {
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
    let to_version = r.parse("to-version", values::parse_version);
    let health_path = r.parse("health-path", |v| url_path("health-path", v));
    let version_path = r.parse("version-path", |v| url_path("version-path", v));
    let health_status = r.parse("health-status", |v| {
        values::parse_uint(v, 100, 599).map(|n| n as u16)
    });
    let samples = r.parse("verify-requests", |v| {
        values::parse_uint(v, 1, 10_000).map(|n| n as usize)
    });
    let swap_timeout = duration_at_least(r, "swap-timeout", Duration::from_secs(10));
    let lock_wait = r.parse("lock-wait", values::parse_duration);
    let slot = r.parse("slot", |v| {
        if v == crate::platform::app_service::PRODUCTION || !resource_name_ok(v) {
            Err(ValueError {
                problem: format!("{} is not a deployment slot", shown(v)),
                accepted: "a slot other than production, e.g. staging".into(),
            })
        } else {
            Ok(v.to_string())
        }
    });
    if let Some(v) = raw.get("resource-group")
        && !resource_name_ok(v)
    {
        r.error(
            "resource-group",
            format!("{} is not an Azure resource name", shown(v)),
            "letters, digits, - _ . ( )",
        );
    }
    let dir = env.path("RUNNER_TEMP").unwrap_or_else(std::env::temp_dir);
    let audit_log = raw
        .get("audit-log")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("expedite-rollback.json"));
    Some(RollbackConfig {
        azure: azure?,
        resource_group: raw.get("resource-group")?.to_string(),
        services: services?,
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
    GateConfig {
        settings: GateSettings {
            results,
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
