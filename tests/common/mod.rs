//! Runs the built binary the way the Actions runner starts a container
//! action: a cleared environment holding only `INPUT_*` (hyphens kept), the
//! `GITHUB_*` variables pointing at fresh files under a `/github`-style tree,
//! `GITHUB_ACTIONS=true`, `HOME=<root>/github/home`, workdir the workspace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod azure;
pub mod kube;
pub mod safety;

use expedite::action::files::parse_key_value_file;

/// The built binary: cargo names it for tests; an example (the safety
/// sweep) finds it next to its own directory (`target/<profile>/`).
pub fn exe() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_expedite") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent()?.parent().map(|d| d.join("expedite")))
            .unwrap_or_else(|| PathBuf::from("target/debug/expedite")),
    }
}

/// Runs the binary as a person does on a terminal (no runner variables, a
/// cleared environment): its exit code and everything it printed.
pub fn cli(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(exe())
        .args(args)
        .env_clear()
        .output()
        .expect("run expedite");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

pub struct Job {
    pub root: tempfile::TempDir,
    pub inputs: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: Vec<(String, String)>,
    pub state: Vec<(String, String)>,
    pub summary: String,
}

impl StepResult {
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn state(&self, name: &str) -> Option<&str> {
        self.state
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Lines the runner would parse as `::error`.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| l.trim_start().starts_with("::error"))
            .collect()
    }
    pub fn all_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{:?}",
            self.stdout, self.stderr, self.summary, self.outputs
        )
    }
}

impl Job {
    pub fn new() -> Job {
        let root = tempfile::tempdir().expect("tempdir");
        for d in [
            "github/home",
            "github/workspace",
            "github/workflow",
            "github/file_commands",
            "github/runner_temp",
        ] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        std::fs::write(root.path().join("github/workflow/event.json"), "{}").expect("event");
        Job {
            root,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn workspace(&self) -> PathBuf {
        self.path("github/workspace")
    }

    pub fn input(mut self, name: &str, value: &str) -> Job {
        self.inputs.insert(name.to_string(), value.to_string());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Job {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Azure sign-in and the sandbox's endpoints, resolution and CA, as a
    /// workflow passes them (a client secret).
    pub fn azure_of(self, s: &expedite_sandbox::Settings) -> Job {
        self.input("resource-group", &s.resource_group)
            .input("subscription-id", &s.subscription_id)
            .input("tenant-id", &s.tenant_id)
            .input("client-id", &s.client_id)
            .input("client-secret", &s.client_secret)
            .input("arm-endpoint", &s.arm_endpoint)
            .input("authority-host", &s.authority_host)
            .input("resolve", &s.resolve_string())
            .input("ca-cert", &s.ca_cert_path.to_string_lossy())
    }

    /// The sandbox's GitHub as the workflow's: its API and server, its
    /// token as `github-token`, and `contoso/payments` (created with one
    /// commit when missing) — where the deploy lock, the package archive
    /// and the deployment records live.
    pub fn github_of(self, sb: &expedite_sandbox::Sandbox) -> Job {
        let s = sb.settings();
        seed_repo(sb, "contoso", "payments");
        self.env("GITHUB_API_URL", &s.github_api_url)
            .env("GITHUB_SERVER_URL", &s.github_server_url)
            .input("github-token", &sb.handle().github_token())
    }

    /// Runs the main stage (`entrypoint`) as a fresh step.
    pub fn run_main(&self) -> StepResult {
        self.run_step(&exe(), &[])
    }

    /// Runs the post stage: a new container from the same image whose
    /// entrypoint is the `expedite-post` link, with `STATE_*` from `state`.
    pub fn run_post(&self, state: &[(String, String)]) -> StepResult {
        let link = self.path("expedite-post");
        if !link.exists() {
            std::os::unix::fs::symlink(exe(), &link).expect("symlink");
        }
        let vars: Vec<(String, String)> = state
            .iter()
            .map(|(k, v)| (format!("STATE_{k}"), v.clone()))
            .collect();
        self.run_step(&link, &vars)
    }

    /// Runs the main stage under a wrapper that reads its peak resident
    /// memory when it exits (`getrusage(RUSAGE_CHILDREN)`): the result and
    /// the peak in KiB.
    pub fn run_main_measured(&self) -> (StepResult, u64) {
        let wrapper = self.path("measure.py");
        std::fs::write(
            &wrapper,
            "#!/usr/bin/env python3\nimport os, resource, subprocess, sys\n\
             p = subprocess.run([os.environ['EXPEDITE_MEASURED']])\n\
             open(os.environ['EXPEDITE_RSS_FILE'], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
             sys.exit(p.returncode)\n",
        )
        .expect("wrapper");
        let mut perms = std::fs::metadata(&wrapper).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&wrapper, perms).expect("chmod");
        let rss = self.path("rss.txt");
        let extra = [
            (
                "EXPEDITE_MEASURED".to_string(),
                exe().to_string_lossy().into_owned(),
            ),
            (
                "EXPEDITE_RSS_FILE".to_string(),
                rss.to_string_lossy().into_owned(),
            ),
        ];
        let r = self.run_step(&wrapper, &extra);
        let kib = std::fs::read_to_string(&rss)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(u64::MAX);
        (r, kib)
    }

    /// Starts the main stage without waiting (to signal it).
    pub fn start_main(&self) -> Running {
        self.start_step(&exe(), &[])
    }

    fn run_step(&self, program: &Path, extra: &[(String, String)]) -> StepResult {
        self.start_step(program, extra).wait()
    }

    fn start_step(&self, program: &Path, extra: &[(String, String)]) -> Running {
        let id = uuid_like();
        let fc = self.path("github/file_commands");
        let files = [
            ("GITHUB_OUTPUT", fc.join(format!("set_output_{id}"))),
            ("GITHUB_STATE", fc.join(format!("save_state_{id}"))),
            ("GITHUB_ENV", fc.join(format!("set_env_{id}"))),
            ("GITHUB_PATH", fc.join(format!("add_path_{id}"))),
            ("GITHUB_STEP_SUMMARY", fc.join(format!("step_summary_{id}"))),
        ];
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(self.workspace())
            .stdin(Stdio::null());
        for (k, p) in &files {
            std::fs::write(p, "").expect("file command");
            cmd.env(k, p);
        }
        let r = |p: &str| self.path(p).to_string_lossy().into_owned();
        let base = [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("CI", "true".to_string()),
            ("HOME", r("github/home")),
            ("GITHUB_WORKSPACE", r("github/workspace")),
            ("GITHUB_EVENT_PATH", r("github/workflow/event.json")),
            ("RUNNER_TEMP", r("github/runner_temp")),
            ("GITHUB_REPOSITORY", "contoso/payments".to_string()),
            ("GITHUB_RUN_ID", "4242".to_string()),
            ("GITHUB_RUN_ATTEMPT", "1".to_string()),
            (
                "GITHUB_SHA",
                "0123456789abcdef0123456789abcdef01234567".to_string(),
            ),
            (
                "GITHUB_REF",
                "refs/heads/hotfix/INC-4521-payments".to_string(),
            ),
            ("GITHUB_ACTOR", "oncall".to_string()),
            ("RUNNER_OS", "Linux".to_string()),
            (
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
        ];
        for (k, v) in base {
            cmd.env(k, v);
        }
        for (k, v) in &self.inputs {
            cmd.env(format!("INPUT_{}", k.to_uppercase()), v);
        }
        for (k, v) in self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(extra.iter().cloned())
        {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("run expedite");
        Running {
            child,
            output: files[0].1.clone(),
            state: files[1].1.clone(),
            summary: files[4].1.clone(),
        }
    }
}

/// A step that is running.
pub struct Running {
    pub child: std::process::Child,
    output: PathBuf,
    state: PathBuf,
    summary: PathBuf,
}

impl Running {
    /// Sends a signal (the runner cancels a container with SIGTERM).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the step to end and reads what it wrote.
    pub fn wait(self) -> StepResult {
        let out = self.child.wait_with_output().expect("wait for expedite");
        let read = |p: &PathBuf| std::fs::read_to_string(p).expect("read file command");
        StepResult {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_key_value_file(&read(&self.output))
                .expect("runner parses GITHUB_OUTPUT"),
            state: parse_key_value_file(&read(&self.state)).expect("runner parses GITHUB_STATE"),
            summary: read(&self.summary),
        }
    }
}

/// Creates `owner/repo` in the sandbox with one empty commit on `main`
/// (refs cannot be created in an empty repository); a repository that
/// exists is left as it is.
pub fn seed_repo(sb: &expedite_sandbox::Sandbox, owner: &str, repo: &str) {
    let h = sb.handle();
    if h.github_repo_path(owner, repo).is_some() {
        return;
    }
    let Ok(bare) = h.github_create_repo(owner, repo, "main") else {
        return;
    };
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&bare)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Dana Hotfix")
            .env("GIT_AUTHOR_EMAIL", "dana@contoso.test")
            .env("GIT_COMMITTER_NAME", "Dana Hotfix")
            .env("GIT_COMMITTER_EMAIL", "dana@contoso.test")
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let tree = git(&["mktree"]);
    let commit = git(&["commit-tree", &tree, "-m", "initial commit"]);
    git(&["update-ref", "refs/heads/main", &commit]);
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lines the runner would process as commands: everything outside
/// `::stop-commands::TOKEN` … `::TOKEN::` fences.
pub fn processed_lines(stdout: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for line in stdout.lines() {
        match &fence {
            Some(token) if line == format!("::{token}::") => fence = None,
            Some(_) => {}
            None => match line.strip_prefix("::stop-commands::") {
                Some(token) => fence = Some(token.to_string()),
                None => out.push(line),
            },
        }
    }
    out
}
