//! The single table of commands, inputs and outputs.
//!
//! Everything that names an input is derived from here: the action's
//! `INPUT_*` reading, the CLI's `--flags`, `action.yml`, the README's
//! reference tables (both checked by `tests/metadata.rs`), which inputs are
//! secrets (masked at once), and unknown-input detection.

/// A command, as the `command` input and the CLI's subcommand name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Critical-test and security gate from result files.
    Gate,
    /// Verified deploy through a staging slot, canary and swap.
    Deploy,
    /// Emergency rollback to the last known good version.
    Rollback,
    /// Carry the hotfix commits back to `main`.
    CherryPick,
    /// Open a hotfix branch from the release tag production serves.
    Start,
    /// Create the hotfix's annotated release tag.
    Tag,
    /// Incident records and notifications.
    Incident,
    /// Validate a multi-service manifest and print its stages.
    Plan,
    /// Run the local emulation of every remote API (CLI only).
    Sandbox,
    /// Play the Contoso incident end to end on the sandbox (CLI only).
    Drill,
}

impl Command {
    /// Every command, in help order.
    pub const ALL: [Command; 10] = [
        Command::Gate,
        Command::Deploy,
        Command::Rollback,
        Command::CherryPick,
        Command::Start,
        Command::Tag,
        Command::Incident,
        Command::Plan,
        Command::Sandbox,
        Command::Drill,
    ];

    /// The commands the action's `command` input accepts.
    pub const ACTION: [Command; 8] = [
        Command::Gate,
        Command::Deploy,
        Command::Rollback,
        Command::CherryPick,
        Command::Start,
        Command::Tag,
        Command::Incident,
        Command::Plan,
    ];

    /// The name used on the command line and in the `command` input.
    pub fn name(self) -> &'static str {
        match self {
            Command::Gate => "gate",
            Command::Deploy => "deploy",
            Command::Rollback => "rollback",
            Command::CherryPick => "cherry-pick",
            Command::Start => "start",
            Command::Tag => "tag",
            Command::Incident => "incident",
            Command::Plan => "plan",
            Command::Sandbox => "sandbox",
            Command::Drill => "drill",
        }
    }

    /// Looks a command up by name.
    pub fn parse(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// One line of help.
    pub fn about(self) -> &'static str {
        match self {
            Command::Gate => "Gate on critical tests and the security scan from result files",
            Command::Deploy => {
                "Deploy to a staging place (slot, revision, environment, Deployment), check health and version, canary, promote, verify; roll back on any failure"
            }
            Command::Rollback => {
                "Roll one or several services back to a known good version (idempotent)"
            }
            Command::CherryPick => {
                "Carry the hotfix commits to main (a draft PR when they conflict)"
            }
            Command::Start => "Open a hotfix branch from the release tag production serves",
            Command::Tag => "Create the annotated release tag for the hotfix",
            Command::Incident => "Create, update or resolve an incident record and notify",
            Command::Plan => "Validate a multi-service manifest and print its deploy stages",
            Command::Sandbox => {
                "Run the local emulation of Azure, GitHub and a Kubernetes cluster with Istio until Ctrl-C"
            }
            Command::Drill => {
                "Play an incident end to end on the built-in sandbox (Contoso on Azure, or the payment gateway on Kubernetes)"
            }
        }
    }

    /// Whether this version of expedite implements the command. A command
    /// that is not built yet says so and exits 1; it never pretends.
    pub fn available(self) -> bool {
        matches!(
            self,
            Command::Gate
                | Command::Deploy
                | Command::Rollback
                | Command::CherryPick
                | Command::Start
                | Command::Tag
                | Command::Incident
                | Command::Plan
        ) || (matches!(self, Command::Sandbox | Command::Drill) && cfg!(feature = "sandbox"))
    }

    /// True for commands only the CLI runs (not the action).
    pub fn cli_only(self) -> bool {
        !Command::ACTION.contains(&self)
    }

    /// The issue that builds a command not available yet, for the message.
    pub fn planned_in(self) -> &'static str {
        match self {
            Command::Gate => "the gate work",
            Command::Deploy | Command::Rollback => "the deploy and rollback work",
            Command::CherryPick | Command::Start | Command::Tag => "the GitHub work",
            Command::Incident | Command::Drill => "the on-call work",
            Command::Plan => "the multi-service work",
            Command::Sandbox if cfg!(feature = "sandbox") => "the sandbox work",
            Command::Sandbox => {
                "builds with the `sandbox` feature (the release binaries and `cargo install` have it; the action's image does not)"
            }
        }
    }
}

/// Where an input applies.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every command the action runs.
    All,
    /// Only these commands.
    Only(&'static [Command]),
}

impl Scope {
    /// True when the input applies to `c`.
    pub fn includes(self, c: Command) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(cs) => cs.contains(&c),
        }
    }
}

/// One input: `foo-bar` is `INPUT_FOO-BAR` in the action and `--foo-bar` on
/// the command line.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// The input's name.
    pub name: &'static str,
    /// What it does, with accepted values (shown in help, action.yml, README).
    pub description: &'static str,
    /// The default applied when it is absent or empty, in both modes.
    pub default: Option<&'static str>,
    /// The default written into `action.yml` when it differs (an expression
    /// such as `${{ github.token }}` that only the runner can evaluate).
    pub action_default: Option<&'static str>,
    /// Commands it applies to.
    pub scope: Scope,
    /// Commands for which it must be given.
    pub required_for: &'static [Command],
    /// Never printed; masked the moment it is read.
    pub secret: bool,
    /// Environment variable the CLI falls back to (secrets should come from
    /// the environment, not from argv where `ps` and shell history see them).
    pub cli_env: Option<&'static str>,
    /// A flag that takes no value on the command line (`--summary`), still
    /// accepting `--summary=false`.
    pub boolean: bool,
    /// Other names it is accepted under, where a peer action calls the
    /// same thing differently (`slot-name` in azure/webapps-deploy).
    pub aliases: &'static [&'static str],
}

const fn input(name: &'static str, description: &'static str) -> InputSpec {
    InputSpec {
        name,
        description,
        default: None,
        action_default: None,
        scope: Scope::All,
        required_for: &[],
        secret: false,
        cli_env: None,
        boolean: false,
        aliases: &[],
    }
}

impl InputSpec {
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    const fn action_default(mut self, d: &'static str) -> Self {
        self.action_default = Some(d);
        self
    }
    const fn only(mut self, cs: &'static [Command]) -> Self {
        self.scope = Scope::Only(cs);
        self
    }
    const fn required(mut self, cs: &'static [Command]) -> Self {
        self.required_for = cs;
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    const fn env(mut self, var: &'static str) -> Self {
        self.cli_env = Some(var);
        self
    }
    const fn boolean(mut self) -> Self {
        self.boolean = true;
        self
    }
    const fn aliases(mut self, names: &'static [&'static str]) -> Self {
        self.aliases = names;
        self
    }

    /// True when this input must be given for `c`.
    pub fn required_by(&self, c: Command) -> bool {
        self.required_for.contains(&c)
    }

    /// True when no action command uses it (a CLI-only flag, left out of
    /// `action.yml`).
    pub fn cli_only(&self) -> bool {
        !Command::ACTION.iter().any(|c| self.scope.includes(*c))
    }
}

const GATE: &[Command] = &[Command::Gate];
const SANDBOX: &[Command] = &[Command::Sandbox];
const SANDBOX_AND_DRILL: &[Command] = &[Command::Sandbox, Command::Drill];
const DRILL: &[Command] = &[Command::Drill];
const DEPLOY: &[Command] = &[Command::Deploy];
const AZURE: &[Command] = &[Command::Deploy, Command::Rollback];
const ROLLBACK: &[Command] = &[Command::Rollback];
const MANIFEST: &[Command] = &[Command::Plan, Command::Deploy, Command::Rollback];
const PLAN: &[Command] = &[Command::Plan];
const WITH_RESOURCE_GROUP: &[Command] = &[Command::Deploy, Command::Rollback, Command::Plan];
/// Commands bounded by the `timeout` input (not the sandbox, which serves
/// until it is stopped).
const BOUNDED: &[Command] = &[
    Command::Gate,
    Command::Deploy,
    Command::Rollback,
    Command::CherryPick,
    Command::Start,
    Command::Tag,
    Command::Incident,
    Command::Plan,
    Command::Drill,
];
const INCIDENT: &[Command] = &[Command::Incident];
/// Commands that read `incident` (and write to its timeline).
const INCIDENT_SCOPE: &[Command] = &[
    Command::Start,
    Command::Incident,
    Command::Deploy,
    Command::Rollback,
    Command::CherryPick,
];
/// Commands that send notifications.
const NOTIFY: &[Command] = &[
    Command::Deploy,
    Command::Rollback,
    Command::CherryPick,
    Command::Incident,
];
const GITHUB: &[Command] = &[
    Command::Deploy,
    Command::Rollback,
    Command::CherryPick,
    Command::Start,
    Command::Tag,
    Command::Incident,
];

/// The name of the input that selects the command in the action.
pub const COMMAND_INPUT: &str = "command";

/// Every input, in the order the reference lists them.
pub const INPUTS: &[InputSpec] = &[
    input(
        COMMAND_INPUT,
        "What to run: gate, deploy, rollback, cherry-pick, start, tag, incident or plan.",
    ),
    input(
        "github-token",
        "Token for the GitHub API and git pushes. Defaults to the job's token; a GitHub App \
         installation token or PAT is needed for pull requests that trigger CI.",
    )
    .action_default("${{ github.token }}")
    .only(GITHUB)
    .secret()
    .env("GITHUB_TOKEN"),
    input(
        "timeout",
        "Upper bound for the whole command, as a duration (30s, 5m, 1h30m). At the deadline \
         expedite stops starting changes and leaves production in a safe state.",
    )
    .default("30m")
    .only(BOUNDED),
    input("summary", "Write the job summary (true or false).")
        .default("true")
        .boolean(),
    input(
        "results",
        "Test result files to gate on: glob patterns, one per line or comma-separated \
         (JUnit XML, TRX, NUnit 3). A pattern that matches no file fails the gate.",
    )
    .only(GATE)
    .required(GATE),
    input(
        "critical-filter",
        "Which tests are critical, in `dotnet test --filter` syntax, e.g. \
         `Category=Critical|Category=Payment`. Empty: every test is critical.",
    )
    .only(GATE),
    input(
        "critical-filter-optional",
        "Parts of `critical-filter` (alternatives or conditions, as written there; comma- or \
         line-separated) that may match no test in these results. Every other part must match \
         at least one test: a misspelt alternative would otherwise drop its tests silently, and \
         a misspelt exclusion would exclude nothing.",
    )
    .only(GATE),
    input(
        "min-critical-tests",
        "Fewest critical tests that must run and pass; a filter typo that matches nothing \
         fails the gate.",
    )
    .default("1")
    .only(GATE),
    input(
        "sarif",
        "SARIF files from the security scan (glob patterns). Required unless \
         `security-waiver` gives a reason.",
    )
    .only(GATE),
    input(
        "security-threshold",
        "Findings at or above this fail the gate: a SARIF level (error, warning, note), a \
         security-severity score (0.1–10) or band (critical, high, medium, low), or both \
         comma-separated (either trips it).",
    )
    .default("error,7.0")
    .only(GATE),
    input(
        "security-waiver",
        "Skip the security scan requirement, with the reason (recorded in the summary).",
    )
    .only(GATE),
    input(
        "junit-category-pattern",
        "Where JUnit test names carry their category when the file has no category \
         properties, as `prefix{}suffix` (default `[{}]`: `test_pay [Critical]`); `none` turns \
         it off.",
    )
    .only(GATE),
    input(
        "test-command",
        "A command that produces the result files, run first (through `sh -c`).",
    )
    .only(GATE),
    input(
        "resource-group",
        "The Azure resource group of the app (with a manifest: of services that name none). \
         Required for a service on Azure; a manifest of `command` services alone needs none \
         (nor any Azure sign-in).",
    )
    .only(WITH_RESOURCE_GROUP)
    .aliases(&["resource-group-name", "resourceGroup"])
    .env("EXPEDITE_RESOURCE_GROUP"),
    input(
        "app-name",
        "The app to deploy to: an App Service web app, a container app with \
         `platform: container-apps`, or with `platform: kubernetes` the stable Deployment \
         (its name also names the lock). Required unless `manifest` names the services.",
    )
    .only(DEPLOY)
    .aliases(&["containerAppName"]),
    input(
        "platform",
        "Where the app runs: `app-service` (a staging slot, routing rules, a swap), \
         `container-apps` (a new revision, traffic weights), `static-web-apps` (a preview \
         environment, then the same zip to production; no canary) or `kubernetes` (a new \
         Deployment per version, then the Service's `version` selector or Istio weights). \
         Rollback: the platform of the apps in `services`.",
    )
    .default("app-service")
    .only(AZURE),
    input(
        "image",
        "Container Apps and Kubernetes: the image of the new build (e.g. \
         `contoso.azurecr.io/payments:2.4.1`).",
    )
    .only(DEPLOY)
    .aliases(&["images", "imageToDeploy"]),
    input(
        "container",
        "Container Apps and Kubernetes: which container gets the image, when the app has \
         several.",
    )
    .only(DEPLOY),
    input(
        "namespace",
        "Kubernetes: the namespace of the Deployment and its Service (default: the \
         context's namespace, else `default`).",
    )
    .only(AZURE),
    input(
        "service",
        "Kubernetes: the Service users reach (default: the Deployment's name).",
    )
    .only(AZURE),
    input(
        "strategy",
        "Kubernetes: `blue-green` (switch the Service's `version` selector once the new \
         Deployment is checked) or `canary` (step an Istio VirtualService's weights over \
         DestinationRule subsets by `version`, under the breaker).",
    )
    .default("blue-green")
    .only(AZURE),
    input(
        "kube-context",
        "Kubernetes: the kubeconfig context to use (default: its current context).",
    )
    .only(AZURE),
    input(
        "production-url",
        "Kubernetes: where users reach the service (`https://…`, through the mesh's \
         ingress). Required by `strategy: canary`; blue-green checks production through the \
         API server's service proxy when it is not given.",
    )
    .only(AZURE),
    input(
        "kubeconfig",
        "Kubernetes: the kubeconfig's path, or its content (default: `KUBECONFIG`, then the \
         pod's service account when run in a cluster, then `~/.kube/config`). Given as content, \
         its tokens and keys are masked; exec plugins and `insecure-skip-tls-verify` are \
         refused.",
    )
    .env("KUBECONFIG")
    .only(AZURE),
    input(
        "services",
        "Deploy: the manifest's services to deploy (default: all). Rollback: the App Service \
         apps to roll back in order, or `all` for every service of the manifest in reverse \
         dependency order.",
    )
    .only(AZURE)
    .required(ROLLBACK),
    input(
        "manifest",
        "The multi-service manifest (default `.github/expedite.yml`): services, their \
         platforms and `depends_on`. Given to `deploy`, it deploys the services in dependency \
         order instead of `app-name`.",
    )
    .only(MANIFEST),
    input(
        "on-failure",
        "Multi-service deploy, when a service fails: `rollback-all` (roll back every service \
         already promoted, in reverse dependency order), `rollback-failed` (only the failed \
         one; the others stay) or `stop` (start nothing more, roll nothing back).",
    )
    .default("rollback-all")
    .only(DEPLOY),
    input(
        "max-parallel",
        "Multi-service deploy: at most this many services deploy at once (independent ones).",
    )
    .default("4")
    .only(DEPLOY),
    input(
        "reason",
        "Why production is being rolled back; recorded in the summary and audit log as text, \
         never run or interpreted.",
    )
    .only(ROLLBACK)
    .required(ROLLBACK),
    input(
        "to-version",
        "The version to roll back to. Default: the version production served before \
         expedite's last promotion.",
    )
    .only(ROLLBACK),
    input(
        "slot",
        "Where the new build waits for its checks: the App Service deployment slot, or the \
         Static Web Apps preview environment. Never `production`.",
    )
        .default("staging")
        .only(AZURE)
        .aliases(&["slot-name"]),
    input(
        "subscription-id",
        "Azure subscription id. Also read from `azure-credentials`.",
    )
    .only(AZURE)
    .env("AZURE_SUBSCRIPTION_ID"),
    input(
        "tenant-id",
        "Microsoft Entra tenant id (OIDC or client secret). Also read from `azure-credentials`.",
    )
    .only(AZURE)
    .env("AZURE_TENANT_ID"),
    input(
        "client-id",
        "Application (client) id of the identity expedite signs in as. With no secret, \
         GitHub OIDC federation is used (the job needs `permissions: id-token: write`), or in \
         Azure Pipelines `service-connection-id`.",
    )
    .only(AZURE)
    .env("AZURE_CLIENT_ID"),
    input(
        "client-secret",
        "Client secret, when not using OIDC federation.",
    )
    .only(AZURE)
    .secret()
    .env("AZURE_CLIENT_SECRET"),
    input(
        "azure-credentials",
        "The JSON `azure/login` takes as `creds:` (clientId, clientSecret, subscriptionId, \
         tenantId), instead of the three ids and a secret.",
    )
    .only(AZURE)
    .aliases(&["creds"])
    .secret()
    .env("AZURE_CREDENTIALS"),
    input(
        "oidc-audience",
        "Audience of the GitHub OIDC token exchanged with Entra ID.",
    )
    .default("api://AzureADTokenExchange")
    .only(AZURE),
    input(
        "service-connection-id",
        "Azure Pipelines: the id (a GUID, not the name) of the Azure Resource Manager service \
         connection with workload identity federation to sign in through. expedite asks the \
         job's OIDC endpoint (`SYSTEM_OIDCREQUESTURI`) for a token with `System.AccessToken` \
         (map it: `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`) and exchanges it with \
         Entra ID, a fresh one each time. AzureCLI@2 and AzurePowerShell@5 set it, and \
         `client-id` and `tenant-id`, for their scripts. Not used when client-secret or \
         federated-token is given.",
    )
    .only(AZURE)
    .env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
    input(
        "federated-token",
        "A federated (OIDC) token to present to Entra ID as it is, such as AzureCLI@2's \
         `$idToken` with `addSpnToEnvironment: true`. It cannot be renewed (AzureCLI@2's lives \
         ten minutes): prefer `service-connection-id`.",
    )
    .only(AZURE)
    .secret()
    .env("AZURE_FEDERATED_TOKEN"),
    input(
        "arm-endpoint",
        "Azure Resource Manager endpoint (sovereign clouds, the sandbox).",
    )
    .default("https://management.azure.com")
    .only(AZURE)
    .env("EXPEDITE_ARM_ENDPOINT"),
    input(
        "authority-host",
        "Microsoft Entra ID endpoint (sovereign clouds, the sandbox).",
    )
    .default("https://login.microsoftonline.com")
    .only(AZURE)
    .env("AZURE_AUTHORITY_HOST"),
    input(
        "resolve",
        "Host-resolution overrides as curl's --resolve: `host=addr:port`, `*.suffix=addr:port`, \
         comma-separated (the sandbox prints them).",
    )
    .only(&[
        Command::Deploy,
        Command::Rollback,
        Command::CherryPick,
        Command::Start,
        Command::Tag,
        Command::Incident,
    ])
    .env("EXPEDITE_RESOLVE"),
    input(
        "ca-cert",
        "A PEM file of extra CA certificates to trust (the sandbox's CA, a corporate proxy).",
    )
    .only(&[
        Command::Deploy,
        Command::Rollback,
        Command::CherryPick,
        Command::Start,
        Command::Tag,
        Command::Incident,
    ])
    .env("EXPEDITE_CA_CERT"),
    input(
        "package",
        "The build. App Service: a zip file deployed to the slot through Kudu OneDeploy \
         (empty: the slot already holds the build). A platform that downloads the build \
         itself takes an `https://` URL of the zip with `${version}` where the version \
         goes (a rollback redeploys the previous version's zip, so rollback takes it too).",
    )
    .only(AZURE),
    input(
        "expected-version",
        "The version the new build must report on `version-path`; a healthy slot serving \
         anything else is not the fix.",
    )
    .only(DEPLOY)
    .required(DEPLOY),
    input(
        "version-path",
        "Path of the app's version endpoint (JSON `version`, or plain text).",
    )
    .default(crate::probe::VERSION_PATH)
    .only(AZURE),
    input("health-path", "Path of the app's health endpoint.")
        .default(crate::probe::HEALTH_PATH)
        .only(AZURE),
    input("health-status", "Status the health endpoint must answer.")
        .default("200")
        .only(AZURE),
    input("check-attempts", "Most staging checks before giving up.")
        .default("30")
        .only(DEPLOY),
    input("check-interval", "Time between staging checks.")
        .default("5s")
        .only(DEPLOY),
    input(
        "check-timeout",
        "Bound on the staging checks (and on the package deployment).",
    )
    .default("5m")
    .only(DEPLOY),
    input(
        "verify-window",
        "How long production must stay healthy on the new version after the swap.",
    )
    .default("60s")
    .only(DEPLOY),
    input(
        "verify-interval",
        "Time between production checks during the window.",
    )
    .default("5s")
    .only(DEPLOY),
    input(
        "verify-requests",
        "Independent requests at the end of verification (and after a rollback), every one \
         of which must reach the expected version.",
    )
    .default("50")
    .only(AZURE),
    input("swap-timeout", "Bound on a slot swap.")
        .default("15m")
        .only(AZURE),
    input(
        "canary",
        "Canary steps before promotion: percentages of production traffic on the new build, \
         increasing (e.g. `10,50`). Each step is watched by the circuit breaker. Empty: no \
         canary.",
    )
    .only(DEPLOY),
    input(
        "canary-window",
        "How long each canary step is watched at least before it may pass.",
    )
    .default("5m")
    .only(DEPLOY),
    input(
        "evidence",
        "Where the breaker's evidence comes from, comma-separated: `probes` (expedite's own \
         requests), `prometheus`, `azure-monitor`.",
    )
    .default("probes")
    .only(DEPLOY),
    input(
        "evidence-interval",
        "Time between readings of the evidence.",
    )
    .default("2s")
    .only(DEPLOY),
    input(
        "probe-rate",
        "Synthetic probe requests per second to each of the canary and the baseline.",
    )
    .default("5")
    .only(DEPLOY),
    input(
        "probe-requests",
        "What the probes send, one per line: `METHOD /path [JSON body] [=> GET /path/{id}]` \
         (the read-back must find what the request created). Default: `GET` the health path.",
    )
    .only(DEPLOY),
    input(
        "alpha",
        "The breaker's false-trip budget for the whole rollout (e.g. 0.01: a good build is \
         rolled back at most 1 % of the time).",
    )
    .default("0.01")
    .only(DEPLOY),
    input(
        "baseline-error-rate",
        "Error rate that is acceptable (the null hypothesis), as a fraction or percentage.",
    )
    .default("0.1%")
    .only(DEPLOY),
    input(
        "max-error-rate",
        "Error rate the breaker is designed to catch quickly, as a fraction or percentage.",
    )
    .default("1%")
    .only(DEPLOY),
    input(
        "latency-threshold",
        "Requests slower than this count as slow; a canary with more slow requests than the \
         baseline trips. Empty: no latency test. (Prometheus: must be a histogram bucket bound.)",
    )
    .only(DEPLOY),
    input(
        "min-requests",
        "Canary requests a step must see before it may pass. Default: as many as a sequential \
         test needs to tell `max-error-rate` from `baseline-error-rate` (508 for the defaults).",
    )
    .only(DEPLOY),
    input(
        "max-silence",
        "No canary requests for this long, or a baseline series missing or counting no request while the canary's counts some, for this long, makes a step INCONCLUSIVE (never a trip, never a pass).",
    )
    .default("2m")
    .only(DEPLOY),
    input(
        "dry-run",
        "Check everything a deploy checks before it changes anything (the inputs, the \
         sign-in, what production serves, routing left behind), then say what it would \
         change and in which order, and change nothing: no lock, no upload, no GitHub \
         deployment. With a manifest: every service, stage by stage (commands listed, \
         not run).",
    )
    .default("false")
    .boolean()
    .only(DEPLOY),
    input(
        "failure-clumping",
        "How the breaker counts failures that come in clumps (a request and its retries, one \
         sick instance): `estimate` (learn from both versions' failures how they clump — \
         with `prometheus` or `azure-monitor` evidence, from production's last 30 minutes \
         first — and count a clump as one piece of evidence — a good canary is not rolled back for \
         clumps production has too; a lone failure still counts in full, so at low traffic \
         a bad build trips about as fast as with `independent`) or `independent` (every \
         failure is evidence; for services whose failures are known to be independent).",
    )
    .default("estimate")
    .only(DEPLOY),
    input(
        "on-inconclusive",
        "What an inconclusive step does: `wait` (keep watching up to `inconclusive-wait`, then \
         fail), `fail` (withdraw the canary, exit 1) or `promote` (go on, with a warning).",
    )
    .default("wait")
    .only(DEPLOY),
    input(
        "inconclusive-wait",
        "How long `on-inconclusive: wait` keeps watching beyond the window.",
    )
    .default("10m")
    .only(DEPLOY),
    input(
        "prometheus-url",
        "Prometheus server for `evidence: prometheus` (its base URL).",
    )
    .only(DEPLOY),
    input(
        "prometheus-requests-query",
        "PromQL for an arm's cumulative request count; `$arm` is the slot or revision name.",
    )
    .only(DEPLOY),
    input(
        "prometheus-failures-query",
        "PromQL for an arm's cumulative failed requests; `$arm` as above.",
    )
    .only(DEPLOY),
    input(
        "prometheus-slow-query",
        "PromQL for an arm's cumulative slow requests; `$arm` and `$threshold` are replaced.",
    )
    .only(DEPLOY),
    input(
        "prometheus-token",
        "Bearer token for the Prometheus server, if it needs one.",
    )
    .only(DEPLOY)
    .secret()
    .env("EXPEDITE_PROMETHEUS_TOKEN"),
    input(
        "on-stale-routing",
        "Routing rules left by an earlier canary: `clear` them (with a warning) or `fail`.",
    )
    .default("clear")
    .only(DEPLOY),
    input(
        "lock-wait",
        "How long to wait for another run changing the same app (a deploy waits; a rollback \
         asks a running deploy to stop and waits for it to restore) before failing without a \
         change.",
    )
    .default("5m")
    .only(AZURE),
    input(
        "lock",
        "How runs of one app exclude each other: `auto` (a ref `refs/expedite/locks/…` in \
         the repository, created and moved by compare-and-set; needs `github-token` with \
         `contents: write` and `repository` — or, when every service is on Kubernetes, a \
         Lease), `github` (the ref, required), `lease` (a Kubernetes `coordination.k8s.io` Lease \
         in the service's namespace, moved by `resourceVersion` compare-and-set), or `none` (no \
         exclusion: only when nobody else can deploy the app).",
    )
    .default("auto")
    .only(AZURE),
    input(
        "lock-ttl",
        "How long a lock lasts unless its holder renews it: the longest a run that died \
         without its post stage (a lost runner) blocks the next one. A holder whose workflow \
         run has finished is taken over at once.",
    )
    .default("5m")
    .only(AZURE),
    input(
        "audit-log",
        "Where to write the JSON audit log (default: in $RUNNER_TEMP, or the system temp \
         directory; the `audit-log` output names it).",
    )
    .only(AZURE),
    // cherry-pick, start and tag: the GitHub commands (src/config/github.rs).
    input(
        "repository",
        "The GitHub repository as owner/name. Default: the workflow's repository \
         (GITHUB_REPOSITORY). deploy and rollback record deployments and incident timeline \
         comments there when a token is available.",
    )
    .only(GITHUB)
    .env("GITHUB_REPOSITORY"),
    input(
        "app-id",
        "GitHub App id (or client id) to act as, instead of `github-token`: expedite signs a \
         JWT with `app-private-key` and uses an installation token for the repository (pull \
         requests it opens trigger CI; the job's token cannot do that).",
    )
    .only(&[Command::CherryPick, Command::Start, Command::Tag])
    .env("GITHUB_APP_ID"),
    input(
        "app-private-key",
        "The GitHub App's private key, PEM text (on the command line also a path to the PEM \
         file).",
    )
    .only(&[Command::CherryPick, Command::Start, Command::Tag])
    .secret()
    .env("GITHUB_APP_PRIVATE_KEY"),
    input(
        "commits",
        "cherry-pick: the hotfix commits, oldest first (SHAs or `a..b` ranges, comma- or \
         line-separated). Default: the commits of `hotfix-tag`, else the push event's commits.",
    )
    .only(&[Command::CherryPick]),
    input(
        "hotfix-tag",
        "cherry-pick: a release tag (e.g. release/2.4.1); its commits since the release it \
         fixes (the highest lower `tag-prefix` version) are picked.",
    )
    .only(&[Command::CherryPick]),
    input(
        "target-branch",
        "cherry-pick: the branch the hotfix is carried to. Each target gets its own branch \
         (`auto/cherry-pick-<sha>-to-<target>`) and pull request; carry a hotfix to several \
         branches with one step per target.",
    )
    .default("main")
    .only(&[Command::CherryPick]),
    input(
        "mode",
        "cherry-pick: `pull-request` (a branch and a pull request) or `push` (straight onto \
         the target; a protected target gets a pull request instead, with a notice).",
    )
    .default("pull-request")
    .only(&[Command::CherryPick]),
    input(
        "labels",
        "cherry-pick: labels for the pull request, comma-separated.",
    )
    .default("hotfix,cherry-pick")
    .only(&[Command::CherryPick]),
    input(
        "assignees",
        "cherry-pick: who to assign a conflict pull request to when the hotfix author's \
         GitHub login is unknown (logins, comma-separated).",
    )
    .only(&[Command::CherryPick]),
    input(
        "fail-on-conflict",
        "cherry-pick: fail the step when the pick conflicts (the draft pull request is \
         opened either way).",
    )
    .default("true")
    .only(&[Command::CherryPick])
    .boolean(),
    input(
        "incident",
        "The incident id (e.g. INC-4521). start: in the branch name. incident: the record to \
         create, update or resolve (the GitHub issue titled `[INC-4521] …`). deploy, \
         rollback, cherry-pick: the incident whose timeline gets a comment at the end.",
    )
    .only(INCIDENT_SCOPE)
    .required(&[Command::Start, Command::Incident]),
    input(
        "incident-action",
        "incident: `create` (an issue labelled `incident` and the severity; an open one for \
         the id is reused), `update` (a timeline comment with `message`) or `resolve` (a \
         comment with `root-cause` and `action-items`, then the issue is closed).",
    )
    .only(INCIDENT)
    .required(INCIDENT),
    input(
        "severity",
        "incident: sev0 (worst) to sev3; required by `create` (a label and the PagerDuty \
         severity).",
    )
    .only(INCIDENT),
    input(
        "title",
        "incident: what is broken, one line (create); the issue is titled `[ID] title`.",
    )
    .only(INCIDENT),
    input(
        "message",
        "incident: what happened (update), recorded as text in a timeline comment.",
    )
    .only(INCIDENT),
    input(
        "root-cause",
        "incident: the root cause (resolve), recorded as text.",
    )
    .only(INCIDENT),
    input(
        "action-items",
        "incident: follow-up actions, one per line (resolve); they become a task list.",
    )
    .only(INCIDENT),
    input(
        "environment",
        "deploy: the GitHub deployment environment the deploy is recorded in; rollback reads \
         the last good version from it.",
    )
    .default("production")
    .only(AZURE),
    input(
        "slack-webhook-url",
        "Slack incoming-webhook URL for incident and deploy messages (a secret).",
    )
    .only(NOTIFY)
    .secret()
    .env("EXPEDITE_SLACK_WEBHOOK_URL"),
    input(
        "teams-webhook-url",
        "Microsoft Teams Workflows webhook URL for incident and deploy messages (a secret).",
    )
    .only(NOTIFY)
    .secret()
    .env("EXPEDITE_TEAMS_WEBHOOK_URL"),
    input(
        "pagerduty-routing-key",
        "PagerDuty Events API v2 routing key: incidents trigger and resolve an alert, deploys \
         send change events (a secret).",
    )
    .only(NOTIFY)
    .secret()
    .env("EXPEDITE_PAGERDUTY_ROUTING_KEY"),
    input(
        "pagerduty-url",
        "PagerDuty Events API base URL (the EU service: https://events.eu.pagerduty.com).",
    )
    .default("https://events.pagerduty.com")
    .only(NOTIFY)
    .env("EXPEDITE_PAGERDUTY_URL"),
    input(
        "slug",
        "start: a short name for the fix, in the branch name (e.g. large-orders).",
    )
    .only(&[Command::Start]),
    input(
        "version",
        "start: the version production serves (default: the highest `tag-prefix` tag). tag: \
         the new release's version (e.g. 2.4.1).",
    )
    .only(&[Command::Start, Command::Tag])
    .required(&[Command::Tag]),
    input(
        "ref",
        "tag: the commit to tag (a SHA or branch). Default: GITHUB_SHA.",
    )
    .only(&[Command::Tag]),
    input("tag-prefix", "Release tags are `<tag-prefix><version>`.")
        .default("release/")
        .only(&[Command::CherryPick, Command::Start, Command::Tag]),
    input(
        "scenario",
        "sandbox: the estate it emulates, contoso (Contoso's payments estate, with an empty \
         cluster). drill: the incident played, contoso (orders over $10,000 lost on App \
         Service; the README's drill) or payment-gateway (the second seed's \"Payment Gateway \
         Down\", SEV1, on Kubernetes with an Istio canary).",
    )
    .default("contoso")
    .only(SANDBOX_AND_DRILL),
    input(
        "seed",
        "Seed for the sandbox's traffic split, demo errors and probabilistic faults.",
    )
    .default("0")
    .only(SANDBOX_AND_DRILL),
    input(
        "sabotage",
        "drill: break one expectation on purpose, to see the drill fail loudly: `breaker` (the \
         bad build is not bad, so the breaker has nothing to trip).",
    )
    .only(DRILL),
    input(
        "https-port",
        "Port of the sandbox's HTTPS listener (Azure surfaces); 0 picks a free one.",
    )
    .default("0")
    .only(SANDBOX),
    input(
        "http-port",
        "Port of the sandbox's control API (/_sandbox/); 0 picks a free one.",
    )
    .default("0")
    .only(SANDBOX),
    input(
        "faults",
        "A JSON file of faults to inject from the start: a list of fault rules in the control \
         API's format, or a scenario {\"faults\": [...], \"behaviours\": {\"2.4.1\": {...}}}.",
    )
    .only(SANDBOX),
    input(
        "json",
        "Print the sandbox's settings as JSON instead of shell `export` lines.",
    )
    .default("false")
    .only(SANDBOX)
    .boolean(),
];

/// One output, written to `$GITHUB_OUTPUT` (or stdout on a terminal).
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec {
    /// The output's name.
    pub name: &'static str,
    /// What it holds.
    pub description: &'static str,
    /// Commands that set it.
    pub scope: Scope,
}

const fn output(name: &'static str, description: &'static str, scope: Scope) -> OutputSpec {
    OutputSpec {
        name,
        description,
        scope,
    }
}

/// Every output.
pub const OUTPUTS: &[OutputSpec] = &[
    output(
        "outcome",
        "How the command ended: success, failure or cancelled.",
        Scope::All,
    ),
    output(
        "error",
        "When the command failed: the error message (one line per error), for notifications.",
        Scope::All,
    ),
    output("verdict", "Gate verdict: pass or fail.", Scope::Only(GATE)),
    output(
        "critical-total",
        "Critical tests found by the filter.",
        Scope::Only(GATE),
    ),
    output(
        "critical-passed",
        "Critical tests that passed.",
        Scope::Only(GATE),
    ),
    output(
        "critical-failed",
        "Critical tests that failed, errored or timed out.",
        Scope::Only(GATE),
    ),
    output(
        "security-findings",
        "Security findings at or above the threshold.",
        Scope::Only(GATE),
    ),
    output(
        "result",
        "How the command ended. deploy: promoted (the new version verified in production), \
         unchanged (production already served it), rolled-back (a tripped canary, or a \
         failure after promotion; the previous version verified again), inconclusive (the \
         canary's evidence stayed inconclusive under on-inconclusive: fail; withdrawn), \
         failed-before-change (production untouched), interrupted (a signal or the deadline \
         stopped it; production restored to the previous version and verified), preempted (an \
         emergency rollback asked for the lock; restored, verified, handed over), or \
         needs-attention (production could not be restored, verified or read before the \
         deadline; the error says what is known and the command to run). With a manifest: \
         promoted, rolled-back or failed. rollback: rolled-back, unchanged, failed (production \
         still serves what it served), interrupted or needs-attention. cherry-pick: pull-request, pushed, \
         conflict, already-applied or existing (a re-run found its pull request into target-branch). start, \
         tag: created or already-exists. incident: created, already-exists, updated, \
         resolved.",
        Scope::Only(&[
            Command::Deploy,
            Command::Rollback,
            Command::CherryPick,
            Command::Start,
            Command::Tag,
            Command::Incident,
        ]),
    ),
    output(
        "canary-decision",
        "The canary's last decision: pass, trip, inconclusive, promoted-inconclusive, \
         cancelled (a signal or the deadline stopped the run during the canary, which was \
         withdrawn), preempted (an emergency rollback stopped it), or none when there was no \
         canary.",
        Scope::Only(DEPLOY),
    ),
    output(
        "services",
        "Multi-service deploy and rollback: JSON object of service → result.",
        Scope::Only(AZURE),
    ),
    output(
        "stages",
        "plan: JSON list of stages, each a list of services that can deploy together.",
        Scope::Only(PLAN),
    ),
    output(
        "matrix",
        "plan: JSON for `strategy.matrix` (`{\"include\": [{\"service\", \"stage\", \"needs\"}…]}`), \
         for one job per service with `needs:`.",
        Scope::Only(PLAN),
    ),
    output(
        "previous-version",
        "The version production served before (the last known good).",
        Scope::Only(AZURE),
    ),
    output(
        "deployed-version",
        "The version production serves at the end, as requests to it read then (one version \
         at 100 %); empty when it serves a mix, could not be read, or the run never reached \
         it (another run held the app's lock).",
        Scope::Only(AZURE),
    ),
    output(
        "rolled-back",
        "true when production was rolled back to the previous version.",
        Scope::Only(AZURE),
    ),
    output(
        "duration-seconds",
        "Wall time of the command.",
        Scope::Only(AZURE),
    ),
    output("production-url", "The production URL.", Scope::Only(AZURE)),
    output(
        "audit-log",
        "Path of the JSON audit log.",
        Scope::Only(AZURE),
    ),
    // cherry-pick, start and tag (the GitHub commands); `result` above
    // carries their outcome.
    output(
        "pull-request-url",
        "cherry-pick: the pull request carrying the pick (a draft when it conflicts).",
        Scope::Only(&[Command::CherryPick]),
    ),
    output(
        "pull-request-number",
        "cherry-pick: the pull request's number.",
        Scope::Only(&[Command::CherryPick]),
    ),
    output(
        "branch",
        "cherry-pick: the branch holding the pick, `auto/cherry-pick-<sha>-to-<target>` (or \
         the target, when pushed). start: the hotfix branch.",
        Scope::Only(&[Command::CherryPick, Command::Start]),
    ),
    output(
        "commits",
        "cherry-pick: the hotfix commits picked, oldest first, comma-separated.",
        Scope::Only(&[Command::CherryPick]),
    ),
    output(
        "conflicted-files",
        "cherry-pick: files left with conflicts, one per line.",
        Scope::Only(&[Command::CherryPick]),
    ),
    output(
        "base-tag",
        "start: the release tag the hotfix branch starts from.",
        Scope::Only(&[Command::Start]),
    ),
    output(
        "next-version",
        "start: the next patch version (what `tag` should create).",
        Scope::Only(&[Command::Start]),
    ),
    output(
        "tag",
        "tag: the release tag's name (e.g. release/2.4.1).",
        Scope::Only(&[Command::Tag]),
    ),
    output(
        "commit",
        "tag: the commit the tag points at.",
        Scope::Only(&[Command::Tag]),
    ),
    output(
        "incident-url",
        "incident: the incident's GitHub issue.",
        Scope::Only(INCIDENT),
    ),
    output(
        "incident-number",
        "incident: the issue's number.",
        Scope::Only(INCIDENT),
    ),
    output(
        "steps",
        "drill: how many steps the drill played.",
        Scope::Only(DRILL),
    ),
    output(
        "broken",
        "drill: how many expectations broke (0 when the drill passed).",
        Scope::Only(DRILL),
    ),
    output(
        "summary-file",
        "drill: the markdown summary of the whole drill (every command's summary folded in).",
        Scope::Only(DRILL),
    ),
];

/// Looks up an input by name.
pub fn input_spec(name: &str) -> Option<&'static InputSpec> {
    INPUTS.iter().find(|i| i.name == name)
}

/// The input `name` is an alias of (runner input names are
/// case-insensitive: `imageToDeploy` arrives as `imagetodeploy`).
pub fn input_by_alias(name: &str) -> Option<&'static InputSpec> {
    INPUTS
        .iter()
        .find(|i| i.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// Looks up an output by name.
pub fn output_spec(name: &str) -> Option<&'static OutputSpec> {
    OUTPUTS.iter().find(|o| o.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for i in INPUTS {
            assert!(seen.insert(i.name), "duplicate input {}", i.name);
            assert!(
                i.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                i.name
            );
            assert!(!i.description.is_empty());
            if i.secret {
                assert!(
                    i.default.is_none(),
                    "a secret has no literal default: {}",
                    i.name
                );
            }
            for c in i.required_for {
                assert!(
                    i.scope.includes(*c),
                    "{} required for {c:?} outside its scope",
                    i.name
                );
            }
        }
        let mut seen = HashSet::new();
        for o in OUTPUTS {
            assert!(seen.insert(o.name), "duplicate output {}", o.name);
        }
    }

    #[test]
    fn commands_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::parse(c.name()), Some(c));
        }
        assert_eq!(Command::parse("deploy "), None);
    }
}
