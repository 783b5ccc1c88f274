//! Fixtures for the GitHub commands: a sandbox GitHub, repositories built
//! with plain git and pushed into its bare repositories, and a `Job` set up
//! the way a workflow would call expedite against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support

use std::path::{Path, PathBuf};
use std::process::Command;

use expedite_sandbox::Sandbox;

use crate::common::{Job, StepResult};

pub const OWNER: &str = "contoso";
pub const REPO: &str = "payments";

/// Plain git in `dir`, isolated from the user's configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_out(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn git_out(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("git");
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dana Hotfix")
        .env("GIT_AUTHOR_EMAIL", "dana@contoso.test")
        .env("GIT_COMMITTER_NAME", "Dana Hotfix")
        .env("GIT_COMMITTER_EMAIL", "dana@contoso.test")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .output()
        .unwrap()
}

/// A repository `contoso/payments` in the sandbox and a local working copy
/// that pushes straight into its bare repository.
pub struct Fixture {
    pub work: tempfile::TempDir,
    pub bare: PathBuf,
}

pub const ORDERS: &str = "namespace Contoso.Payments;\n\npublic class Orders\n{\n    public const decimal Limit = 10_000m;\n    public bool Accept(decimal total) => total < Limit; // BUG: drops large orders\n    public string Currency => \"USD\";\n}\n";

impl Fixture {
    /// Release 2.4.0 on `main` (tagged `release/2.4.0`, annotated), with the
    /// order code, a workflow and a binary asset.
    pub fn new(sb: &Sandbox) -> Fixture {
        let bare = sb.handle().github_create_repo(OWNER, REPO, "main").unwrap();
        let work = tempfile::tempdir().unwrap();
        let f = Fixture { work, bare };
        git(f.dir(), &["init", "-q"]);
        f.write("src/Orders.cs", ORDERS);
        f.write("README.md", "# payments\n");
        f.write(".github/workflows/ci.yml", "on: push\njobs: {}\n");
        std::fs::create_dir_all(f.dir().join("assets")).unwrap();
        std::fs::write(f.dir().join("assets/logo.bin"), binary(1)).unwrap();
        f.commit("release 2.4.0");
        git(
            f.dir(),
            &["tag", "-a", "release/2.4.0", "-m", "Release 2.4.0"],
        );
        f.push_all();
        f
    }

    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.dir().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn commit(&self, message: &str) -> String {
        git(self.dir(), &["add", "-A"]);
        git(self.dir(), &["commit", "-q", "-m", message]);
        git(self.dir(), &["rev-parse", "HEAD"])
    }

    /// Pushes every branch and tag straight into the bare repository.
    pub fn push_all(&self) {
        git(
            self.dir(),
            &["push", "-q", "-f", self.bare.to_str().unwrap(), "--all"],
        );
        git(
            self.dir(),
            &["push", "-q", "-f", self.bare.to_str().unwrap(), "--tags"],
        );
    }

    /// Switches (creating from `from` when given).
    pub fn switch(&self, branch: &str, from: Option<&str>) {
        match from {
            Some(f) => git(self.dir(), &["switch", "-q", "-c", branch, f]),
            None => git(self.dir(), &["switch", "-q", branch]),
        };
    }

    /// The hotfix: on `hotfix/INC-4521-large-orders` from release/2.4.0,
    /// orders at the limit and above are accepted.
    pub fn hotfix(&self) -> String {
        self.switch("hotfix/INC-4521-large-orders", Some("release/2.4.0"));
        self.write(
            "src/Orders.cs",
            &ORDERS.replace(
                "total < Limit; // BUG: drops large orders",
                "total > 0m; // large orders are valid",
            ),
        );
        let sha = self.commit("fix: accept orders over $10,000 (INC-4521)");
        self.push_all();
        sha
    }

    /// `rev` in the bare repository.
    pub fn remote_rev(&self, rev: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.bare)
            .args(["rev-parse", "--verify", "--quiet", rev])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `git <args>` in the bare repository.
    pub fn remote_git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.bare)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Bytes that git treats as binary.
pub fn binary(seed: u8) -> Vec<u8> {
    (0..2048u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(u32::from(seed) * 7) % 251) as u8)
        .chain([0u8, 0, 0])
        .collect()
}

/// A job for `command` against the sandbox GitHub with the personal token.
pub fn job(sb: &Sandbox, command: &str) -> Job {
    let s = sb.settings();
    Job::new()
        .input("command", command)
        .input("github-token", &s.github_token)
        .input("resolve", &s.resolve_string())
        .input("ca-cert", &s.ca_cert_path.to_string_lossy())
        .env("GITHUB_API_URL", &s.github_api_url)
        .env("GITHUB_SERVER_URL", &s.github_server_url)
}

/// Runs the job's main stage off the async runtime (the sandbox serves on it).
pub async fn run(job: Job) -> (Job, StepResult) {
    tokio::task::spawn_blocking(move || {
        let r = job.run_main();
        (job, r)
    })
    .await
    .unwrap()
}

/// A REST GET against the sandbox GitHub with the personal token.
pub async fn api_get(sb: &Sandbox, path: &str) -> serde_json::Value {
    let (status, v) = api_send(sb, reqwest::Method::GET, path, None).await;
    assert!((200..300).contains(&status), "GET {path}: {status}");
    v
}

/// A REST request against the sandbox GitHub with the personal token:
/// (status, body).
pub async fn api_send(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let s = sb.settings();
    let http = expedite::http::client(&expedite::http::HttpSettings {
        resolve: s
            .resolve
            .iter()
            .map(|e| expedite::http::ResolveRule {
                host: e.host.clone(),
                addr: e.addr,
            })
            .collect(),
        extra_ca_pem: vec![sb.ca_pem().to_string()],
        system_roots: false,
        ..expedite::http::HttpSettings::default()
    })
    .unwrap();
    let mut rb = http
        .request(method, format!("{}{path}", s.github_api_url))
        .bearer_auth(&s.github_token)
        .header("accept", "application/vnd.github+json");
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Mutating REST requests the sandbox GitHub saw.
pub fn github_writes(sb: &Sandbox) -> Vec<String> {
    sb.handle()
        .request_log()
        .into_iter()
        .filter(|r| r.host == "api.github.test" && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Plain git in `dir` as a person runs it against the sandbox's
/// `github.test` with their own credentials (the personal token) and the
/// sandbox's transport recipe; nothing of the user's own configuration, and
/// no editor (a command that needs one fails instead of waiting).
pub async fn user_git(sb: &Sandbox, dir: &Path, args: &[&str]) -> std::process::Output {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("x-access-token:{}", sb.settings().github_token));
    let mut cmd = tokio::process::Command::new("git");
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_EDITOR", "false")
        .args(sb.git_config_args())
        .args([
            "-c",
            "user.name=Oncall Lead",
            "-c",
            "user.email=lead@contoso.test",
        ])
        .args([
            "-c",
            &format!("http.extraHeader=Authorization: Basic {basic}"),
        ])
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("git took over 120 s")
        .unwrap()
}

/// A clone of `contoso/payments` over the sandbox's smart HTTP, in `parent/clone`.
pub async fn user_clone(sb: &Sandbox, parent: &Path) -> PathBuf {
    let url = sb.handle().github_clone_url(OWNER, REPO);
    let out = user_git(sb, parent, &["clone", "-q", &url, "clone"]).await;
    assert!(
        out.status.success(),
        "clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parent.join("clone")
}

/// The commands of the first ```sh block of a pull request body, comments
/// and blank lines left out, each split into words the way sh would
/// (single quotes, `'\''`).
pub fn resolution_commands(body: &str) -> Vec<Vec<String>> {
    let start = body.find("```sh\n").expect("a ```sh block in the body") + "```sh\n".len();
    let end = start + body[start..].find("```").expect("the block ends");
    body[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(shell_words)
        .collect()
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                assert!(
                    quoted || !matches!(c, '"' | '$' | '`' | '\\' | ';' | '&' | '|'),
                    "the test runs plain commands only: {line}"
                );
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote: {line}");
    if in_word {
        words.push(word);
    }
    words
}

/// Runs `commands` literally in `dir` (each must be `git …` and succeed),
/// calling `resolve` just before the first `git add` (the step where a
/// person edits the conflicted files). Returns what each printed.
pub async fn follow(
    sb: &Sandbox,
    dir: &Path,
    commands: &[Vec<String>],
    mut resolve: impl FnMut(&Path),
) -> Vec<String> {
    let mut resolved = false;
    let mut printed = Vec::new();
    for cmd in commands {
        assert_eq!(cmd[0], "git", "{cmd:?}");
        if cmd.get(1).map(String::as_str) == Some("add") && !resolved {
            resolve(dir);
            resolved = true;
        }
        let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
        let out = user_git(sb, dir, &args).await;
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(resolved, "the commands never add the resolved files");
    printed
}

/// Every pull request of `contoso/payments`, any state.
pub async fn all_pulls(sb: &Sandbox) -> Vec<serde_json::Value> {
    api_get(sb, "/repos/contoso/payments/pulls?state=all")
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// A POST to the sandbox's control API; panics unless it succeeds.
pub async fn control_post(sb: &Sandbox, path: &str, body: serde_json::Value) {
    let http = expedite::http::client(&expedite::http::HttpSettings::default()).unwrap();
    let r = http
        .post(format!("{}{path}", sb.settings().control_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "POST {path}: {}", r.status());
}
