//! The Azure Pipelines runner contract, through the built binary run the
//! way an agent runs a script step (a clean environment with `TF_BUILD=True`
//! and the agent's directories, flags on the command line): outputs become
//! output variables a later step reads, a bad input is exactly one error
//! issue, a secret is declared a secret variable and never shown, text from
//! outside can start no logging command, and the summary file is attached.
//!
//! The agent's parse (microsoft/azure-pipelines-agent `Command.cs`) is
//! re-done here: every line of stdout and stderr — split on `\n` and on a
//! bare `\r` — with `##vso[` anywhere in it is a logging command, and one
//! starting with `##[` a formatting command.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::Path;

struct Step {
    code: Option<i32>,
    /// stdout then stderr, as the agent reads both.
    text: String,
    temp: tempfile::TempDir,
}

fn step(args: &[&str], extra_env: &[(&str, &str)]) -> Step {
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("s");
    std::fs::create_dir_all(&work).unwrap();
    let name = "trx-xunitv3-passed-blame-warning.trx";
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/test-results")
            .join(name),
        work.join(name),
    )
    .unwrap();
    let out = std::process::Command::new(common::exe())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TF_BUILD", "True")
        .env("AGENT_TEMPDIRECTORY", temp.path())
        .env("BUILD_SOURCESDIRECTORY", &work)
        .envs(extra_env.iter().copied())
        .current_dir(&work)
        .output()
        .unwrap();
    Step {
        code: out.status.code(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        temp,
    }
}

/// The agent's unescaping, in its order.
fn unescape(s: &str) -> String {
    s.replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%AZP25", "%")
}

#[derive(Debug)]
struct Command {
    name: String,
    props: Vec<(String, String)>,
    data: String,
}

impl Command {
    fn prop(&self, k: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

/// Every logging command the agent would act on, and every formatting
/// command line.
fn agent_reads(text: &str) -> (Vec<Command>, Vec<String>) {
    let mut commands = Vec::new();
    let mut formatting = Vec::new();
    for line in text.split(['\n', '\r']) {
        if let Some(at) = line.find("##vso[") {
            let rest = &line[at + 6..];
            let Some(end) = rest.find(']') else { continue };
            let head = &rest[..end];
            let (name, props) = head.split_once(' ').unwrap_or((head, ""));
            commands.push(Command {
                name: name.to_string(),
                props: props
                    .split(';')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), unescape(v)))
                    .collect(),
                data: unescape(&rest[end + 1..]),
            });
        } else if line.trim_start().starts_with("##[") {
            formatting.push(line.trim_start().to_string());
        }
    }
    (commands, formatting)
}

fn outputs(commands: &[Command]) -> Vec<(String, String)> {
    commands
        .iter()
        .filter(|c| c.name == "task.setvariable" && c.prop("isoutput") == Some("true"))
        .map(|c| (c.prop("variable").unwrap().to_string(), c.data.clone()))
        .collect()
}

#[test]
fn outputs_are_output_variables_and_the_summary_is_attached() {
    let s = step(
        &[
            "gate",
            "--results",
            "trx-*.trx",
            "--security-waiver",
            "scan runs nightly",
        ],
        &[],
    );
    assert_eq!(s.code, Some(0), "{}", s.text);
    let (commands, _) = agent_reads(&s.text);
    let outs = outputs(&commands);
    for (name, value) in [
        ("outcome", "success"),
        ("verdict", "pass"),
        ("critical_total", "2"),
        ("critical_failed", "0"),
    ] {
        assert!(
            outs.iter().any(|(k, v)| k == name && v == value),
            "{name}={value} not in {outs:?}\n{}",
            s.text
        );
    }
    // The summary: one file in the agent's temporary directory, attached once.
    let uploads: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.uploadsummary")
        .collect();
    assert_eq!(uploads.len(), 1, "{}", s.text);
    let path = Path::new(&uploads[0].data);
    assert!(path.starts_with(s.temp.path()), "{path:?}");
    let md = std::fs::read_to_string(path).unwrap();
    assert!(md.contains("Gate passed"), "{md}");
    // No name=value lines and no GitHub workflow commands in a pipeline.
    assert!(!s.text.contains("::set-output") && !s.text.contains("::error"));
    assert!(
        !s.text.lines().any(|l| l.starts_with("outcome=")),
        "{}",
        s.text
    );
}

#[test]
fn a_bad_input_is_exactly_one_error_issue() {
    let s = step(
        &["gate", "--results", "x.trx", "--min-critical-tests", "lots"],
        &[],
    );
    assert_eq!(s.code, Some(1), "{}", s.text);
    let (commands, _) = agent_reads(&s.text);
    let errors: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.logissue" && c.prop("type") == Some("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", s.text);
    assert!(
        errors[0].data.contains("--min-critical-tests"),
        "{:?}",
        errors[0]
    );
    // Still attached, and the outcome still set for a later step.
    assert!(commands.iter().any(|c| c.name == "task.uploadsummary"));
    assert!(
        outputs(&commands)
            .iter()
            .any(|(k, v)| k == "outcome" && v == "failure")
    );
}

#[test]
fn a_secret_is_a_secret_variable_and_never_shown() {
    let secret = "ghp_pipelineSecret0123456789abcdefABCDEF";
    let s = step(
        &[
            "tag",
            "--version",
            "2.4.1",
            "--repository",
            "contoso/payments",
        ],
        &[
            ("GITHUB_TOKEN", secret),
            ("GITHUB_API_URL", "https://127.0.0.1:9/api"),
        ],
    );
    let (commands, _) = agent_reads(&s.text);
    let declared: Vec<&Command> = commands
        .iter()
        .filter(|c| c.name == "task.setvariable" && c.prop("issecret") == Some("true"))
        .collect();
    assert!(
        declared.iter().any(|c| c.data == secret),
        "not declared secret: {}",
        s.text
    );
    // The only line that carries it is the agent's own command.
    for line in s.text.lines() {
        if line.contains(secret) {
            assert!(
                line.starts_with("##vso[task.setvariable ") && line.contains("issecret=true"),
                "leaked: {line}"
            );
        }
    }
}

#[test]
fn text_from_outside_starts_no_logging_command() {
    // A test command's output is text from outside: it prints commands of
    // both kinds, after a bare carriage return and mid-line too.
    let hostile = "printf '##vso[task.setvariable variable=injected;isoutput=true]1\\nok\\r##[error]injected\\nsee ##vso[task.complete result=Failed]injected\\n'; exit 3";
    let s = step(
        &[
            "gate",
            "--results",
            "trx-*.trx",
            "--security-waiver",
            "test",
            "--test-command",
            hostile,
        ],
        &[],
    );
    assert_eq!(s.code, Some(0), "{}", s.text);
    // The output is shown…
    assert!(s.text.contains("injected"), "{}", s.text);
    // …and the agent acts on none of it.
    let (commands, formatting) = agent_reads(&s.text);
    for c in &commands {
        assert!(
            !c.data.contains("injected") && c.props.iter().all(|(_, v)| v != "injected"),
            "acted on: {c:?}"
        );
        assert!(
            matches!(
                c.name.as_str(),
                "task.setvariable" | "task.logissue" | "task.uploadsummary" | "task.complete"
            ),
            "{c:?}"
        );
    }
    for f in &formatting {
        assert!(!f.contains("injected"), "formatting: {f}");
    }
}
