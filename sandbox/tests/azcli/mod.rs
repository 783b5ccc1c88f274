//! The real Azure CLI against a sandbox, and the seed's own scripts run
//! through it. Shared by `tests/azure_cli.rs` and the baseline example
//! (`examples/seed_baseline.rs`).
//!
//! The CLI is the pinned `azure-cli` that `.ci/install-az.sh` puts in
//! `.ci/az-venv` (or `EXPEDITE_AZ`, or `az` on `PATH`). It reaches the
//! sandbox by name through the sandbox's HTTPS proxy with the variables
//! [`Settings::client_env`] gives, keeps its profile in a temporary
//! `AZURE_CONFIG_DIR`, and signs in to a custom cloud registered by endpoint
//! discovery — the way a sovereign cloud is used. MSAL's instance discovery
//! (a call to `login.microsoftonline.com` that knows no other authority) is
//! off, as for any authority Microsoft's discovery does not list.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use expedite_sandbox::Settings;
use serde_json::Value;

/// The Azure CLI release the sandbox is proven against (`.ci/install-az.sh`).
pub const PINNED_AZ_VERSION: &str = "2.91.0";

/// The name the custom cloud is registered under.
pub const CLOUD: &str = "ExpediteSandbox";

/// Longest one CLI command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// The workspace root (the parent of the sandbox crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Whether CI demands the CLI (then a missing one fails instead of skipping).
pub fn required() -> bool {
    std::env::var("EXPEDITE_REQUIRE_AZ_CLI").is_ok_and(|v| v == "1")
}

/// The `az` to run: `EXPEDITE_AZ`, the pinned one in `.ci/az-venv`, or `az`
/// on `PATH` — the first that answers `az version`.
pub fn find_az() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("EXPEDITE_AZ") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(workspace().join(".ci/az-venv/bin/az"));
    candidates.push(PathBuf::from("az"));
    candidates.into_iter().find(|c| version_of(c).is_some())
}

/// `az version`'s `azure-cli` for a CLI binary.
pub fn version_of(bin: &Path) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let out = std::process::Command::new(bin)
        .args(["version", "--output", "json"])
        .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
        .env("AZURE_CONFIG_DIR", dir.path())
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["azure-cli"].as_str().map(str::to_owned)
}

/// The CLI, or `None` (with a note) when it is missing and not required;
/// panics when it is missing and required. `curl` and `bash`, which the
/// seed's scripts use, are checked the same way.
pub fn az_or_skip() -> Option<PathBuf> {
    let tools_ok = ["curl", "bash"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match find_az() {
        Some(az) if tools_ok => Some(az),
        found => {
            let missing = if found.is_none() {
                "the Azure CLI (run .ci/install-az.sh)"
            } else {
                "curl or bash"
            };
            assert!(
                !required(),
                "EXPEDITE_REQUIRE_AZ_CLI=1 but {missing} is missing"
            );
            eprintln!(
                "skipped: {missing} not found (EXPEDITE_REQUIRE_AZ_CLI=1 makes this a failure)"
            );
            None
        }
    }
}

/// One CLI run's result.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    fn from(out: Output, elapsed: Duration) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The Azure CLI set up for one sandbox: its own profile directory, the
/// sandbox's client variables, nothing from the caller's environment.
pub struct Az {
    pub bin: PathBuf,
    /// `AZURE_CONFIG_DIR` and `HOME` (removed on drop).
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Az {
    pub fn new(bin: &Path, settings: &Settings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin_dir = bin
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| format!("{}:", p.display()))
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!(
                    "{bin_dir}{}",
                    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
                ),
            ),
            ("HOME".into(), dir.path().display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
            (
                "AZURE_CONFIG_DIR".into(),
                dir.path().join("azure").display().to_string(),
            ),
            // Microsoft's instance discovery knows no custom authority.
            ("AZURE_CORE_INSTANCE_DISCOVERY".into(), "false".into()),
            ("AZURE_CORE_COLLECT_TELEMETRY".into(), "false".into()),
            ("AZURE_CORE_SURVEY_MESSAGE".into(), "false".into()),
            ("AZURE_CORE_NO_COLOR".into(), "true".into()),
        ];
        env.extend(
            settings
                .client_env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        Self {
            bin: bin.to_path_buf(),
            dir,
            env,
        }
    }

    /// The variables every CLI run and script gets.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Runs `az ARGS` (bounded in time).
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let start = Instant::now();
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("az {args:?} did not finish in {COMMAND_TIMEOUT:?}"))
            .expect("az runs");
        Run::from(out, start.elapsed())
    }

    /// Runs `az ARGS` and returns stdout; panics with stderr on failure.
    pub async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert!(
            r.success(),
            "az {} failed ({:?}):\n{}",
            args.join(" "),
            r.code,
            r.stderr
        );
        r.stdout
    }

    /// Runs `az ARGS --output json` and parses stdout (`null` when empty).
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all).await;
        if out.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("az {args:?}: {e}: {out}"))
    }

    /// `az version`'s `azure-cli`.
    pub async fn version(&self) -> String {
        let v = self.json(&["version"]).await;
        v["azure-cli"].as_str().unwrap_or_default().to_owned()
    }

    /// Registers the sandbox as a custom cloud by endpoint discovery (only
    /// its ARM endpoint is given; the rest comes from
    /// `/metadata/endpoints`), selects it and signs in as the sandbox's
    /// service principal. Returns `az login`'s output.
    pub async fn sign_in(&self, settings: &Settings) -> Value {
        let arm = format!("{}/", settings.arm_endpoint.trim_end_matches('/'));
        self.ok(&[
            "cloud",
            "register",
            "--name",
            CLOUD,
            "--endpoint-resource-manager",
            &arm,
        ])
        .await;
        self.ok(&["cloud", "set", "--name", CLOUD]).await;
        self.json(&[
            "login",
            "--service-principal",
            "--username",
            &settings.client_id,
            "--password",
            &settings.client_secret,
            "--tenant",
            &settings.tenant_id,
        ])
        .await
    }

    /// Runs a shell script as a GitHub Actions `run:` step does (`bash
    /// --noprofile --norc -eo pipefail`), with the CLI's environment plus
    /// `extra`.
    pub async fn bash(&self, script: &str, extra: &[(&str, &str)]) -> Run {
        static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.dir.path().join(format!("step-{n}.sh"));
        std::fs::write(&file, script).expect("write the step");
        self.bash_file(&["--noprofile", "--norc", "-eo", "pipefail"], &file, extra)
            .await
    }

    /// Runs a script file with `bash ARGS FILE`.
    pub async fn bash_file(&self, args: &[&str], file: &Path, extra: &[(&str, &str)]) -> Run {
        let mut cmd = tokio::process::Command::new("bash");
        cmd.args(args)
            .arg(file)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let start = Instant::now();
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{} did not finish in {COMMAND_TIMEOUT:?}", file.display()))
            .expect("bash runs");
        Run::from(out, start.elapsed())
    }
}

/// The seed's scripts (`examples/seed/`), byte-identical copies of the
/// seed's lines, and the substitutions a runner makes before a shell sees
/// them.
pub mod seed {
    use super::*;

    /// `examples/seed/`.
    pub fn dir() -> PathBuf {
        workspace().join("examples/seed")
    }

    pub fn read(name: &str) -> String {
        let path = dir().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The workflow-level `env:` of a workflow as the seed prints it (its
    /// indentation lost): the `KEY: value` lines between `env:` and `jobs:`.
    pub fn workflow_env(workflow: &str) -> BTreeMap<String, String> {
        workflow
            .lines()
            .skip_while(|l| l.trim() != "env:")
            .skip(1)
            .take_while(|l| l.trim() != "jobs:")
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| {
                (
                    k.trim().to_owned(),
                    v.trim().trim_matches('\'').trim_matches('"').to_owned(),
                )
            })
            .collect()
    }

    /// The `run: |` block of the step named `name`: the lines after `run:
    /// |` up to the next step (the seed's copy has no indentation to end a
    /// block by).
    pub fn step(workflow: &str, name: &str) -> String {
        let header = format!("- name: {name}");
        let mut lines = workflow.lines().skip_while(|l| l.trim() != header);
        assert!(lines.next().is_some(), "no step named {name:?}");
        let body: Vec<&str> = lines
            .skip_while(|l| l.trim() != "run: |")
            .skip(1)
            .take_while(|l| !l.starts_with("- name:") && !l.starts_with("- uses:"))
            .collect();
        assert!(!body.is_empty(), "step {name:?} has no run block");
        let mut s = body.join("\n");
        s.push('\n');
        s
    }

    /// What a runner does to a step before the shell runs it — GitHub
    /// evaluates `${{ env.X }}` and `${{ job.status }}` (and `${{
    /// inputs.X }}`) — plus the one change the sandbox needs: its cloud's
    /// App Service DNS suffix, `azurewebsites.test`, where the seed names
    /// the public cloud's `azurewebsites.net` (as a script for a sovereign
    /// cloud names `azurewebsites.us`). Returns the script and how many
    /// host names were changed.
    pub fn for_sandbox(script: &str, vars: &BTreeMap<String, String>) -> (String, usize) {
        let mut out = script.to_owned();
        for (k, v) in vars {
            out = out.replace(&format!("${{{{ env.{k} }}}}"), v);
            out = out.replace(&format!("${{{{ inputs.{k} }}}}"), v);
        }
        out = out.replace("${{ job.status }}", "success");
        assert!(
            !out.contains("${{"),
            "an expression the harness does not evaluate is left: {out}"
        );
        let hosts = out.matches(".azurewebsites.net").count();
        (
            out.replace(".azurewebsites.net", ".azurewebsites.test"),
            hosts,
        )
    }
}
