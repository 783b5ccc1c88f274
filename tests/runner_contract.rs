//! The runner contract, end to end through the built binary (issue 2).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
use common::{Job, cli, processed_lines};

#[test]
fn missing_required_input_is_exactly_one_error_naming_it() {
    let r = Job::new().run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("input 'command'"), "{}", errors[0]);
    assert_eq!(r.output("outcome"), Some("failure"));
    assert!(r.summary.contains("Nothing was changed"));
}

#[test]
fn newline_in_a_value_cannot_create_an_output() {
    let r = Job::new()
        .input("command", "gate")
        .input("results", "r.xml")
        .input("timeout", "5\nx=1")
        .run_main();
    assert_eq!(r.code, 1);
    let names: Vec<&str> = r.outputs.iter().map(|(k, _)| k.as_str()).collect();
    assert!(!names.contains(&"x"), "{:?}", r.outputs);
    assert_eq!(names, ["outcome", "error"]);
    // The error names the input and shows the value on one line.
    let error = r.output("error").unwrap();
    assert!(
        error.contains("input 'timeout'") && error.contains(r"'5\nx=1'"),
        "{error}"
    );
    // And no line of the log can start a command from that value.
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("x=1")),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_and_malformed_inputs_each_get_one_line() {
    let r = Job::new()
        .input("command", "gate")
        .input("results", "r.xml")
        .input("timeotu", "5m")
        .run_main();
    assert_eq!(r.code, 1);
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("input 'timeotu'") && errors[0].contains("did you mean 'timeout'"),
        "{}",
        errors[0]
    );

    let r = Job::new().input("command", "deplyo").run_main();
    assert!(
        r.error_lines()[0].contains("did you mean 'deploy'"),
        "{}",
        r.stdout
    );

    let r = Job::new()
        .input("command", "gate")
        .input("results", "r.xml")
        .input("summary", "yes")
        .run_main();
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("input 'summary'") && errors[0].contains("true or false"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_secret_input_never_appears_in_stdout_or_stderr() {
    let secret = "ghs_5ecr3tT0kenThatMustNeverBePrinted0000";
    // `tag` takes the token; it is not available yet, so it fails with an
    // error message — the path where leaks usually happen.
    let r = Job::new()
        .input("command", "deploy")
        .input("github-token", secret)
        .input("timeout", secret)
        .run_main();
    assert_eq!(r.code, 1);
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for line in text.lines() {
            if line.contains(secret) {
                assert_eq!(
                    line,
                    format!("::add-mask::{secret}"),
                    "{stream} leaks the secret: {line}"
                );
            }
        }
    }
    assert!(!r.summary.contains(secret));
    assert!(
        r.outputs.iter().all(|(_, v)| !v.contains(secret)),
        "{:?}",
        r.outputs
    );
    assert!(
        r.stdout.lines().next().unwrap().starts_with("::add-mask::"),
        "mask first: {}",
        r.stdout
    );
}

/// The commands `expedite --help` lists (not `help` itself).
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues further in.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_the_help_lists_is_built() {
    // No placeholder commands: each command `--help` lists answers its own
    // `--help`, and none says it is not available. Benchmarks are
    // `cargo run --release --example …` (BENCHMARKS.md), not a command.
    let (code, help) = cli(&["--help"]);
    assert_eq!(code, Some(0), "{help}");
    assert!(
        help.lines()
            .next()
            .unwrap_or_default()
            .starts_with("The expedited hotfix path"),
        "{help}"
    );
    let commands = listed_commands(&help);
    assert!(commands.len() >= 10, "{commands:?}");
    assert!(!commands.iter().any(|c| c == "bench"), "{commands:?}");
    for c in &commands {
        let (code, text) = cli(&[c, "--help"]);
        assert_eq!(code, Some(0), "{c} --help: {text}");
        assert!(!text.contains("not available"), "{c}: {text}");
    }
}

#[test]
fn main_records_state_and_post_reads_it() {
    // A gate whose results match nothing: it runs (and fails) quickly.
    let job = Job::new()
        .input("command", "gate")
        .input("results", "none/*.xml")
        .input("security-waiver", "no scan in this test");
    let main = job.run_main();
    let state = main.state("expedite-run").expect("state saved");
    let state: serde_json::Value = serde_json::from_str(state).unwrap();
    assert_eq!(state["command"], "gate");
    assert_eq!(state["finished"], true);

    // The post stage gets the same inputs and the saved state.
    let post = job.run_post(&main.state);
    assert_eq!(post.code, 0, "{}", post.all_text());
    assert!(post.error_lines().is_empty());

    // An interrupted main stage (finished: false) is reported by the post stage.
    let interrupted = vec![(
        "expedite-run".to_string(),
        r#"{"command":"gate","started_at":"2026-11-22T10:00:00Z","finished":false}"#.to_string(),
    )];
    let post = job.run_post(&interrupted);
    assert_eq!(post.code, 0);
    assert!(
        post.stdout.contains("::notice::post stage: `gate`"),
        "{}",
        post.stdout
    );
}

#[test]
fn cli_and_version_work_outside_actions() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_expedite"))
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("expedite {}", env!("CARGO_PKG_VERSION"))
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_expedite"))
        .args(["gate", "--timeout=-5s", "--results", "x.xml"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--timeout") && err.contains("negative"),
        "{err}"
    );
}

fn copy_fixture(job: &Job, name: &str) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test-results")
        .join(name);
    std::fs::copy(src, job.workspace().join(name)).unwrap();
}

#[test]
fn a_passing_gate_writes_outputs_summary_and_state() {
    let job = Job::new()
        .input("command", "gate")
        .input("results", "trx-*.trx")
        .input("sarif", "sarif-trivy-image.sarif")
        .input("security-threshold", "critical");
    copy_fixture(&job, "trx-xunitv3-passed-blame-warning.trx");
    copy_fixture(&job, "sarif-trivy-image.sarif");
    let r = job.run_main();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert_eq!(r.output("outcome"), Some("success"));
    assert_eq!(r.output("verdict"), Some("pass"));
    assert_eq!(r.output("critical-total"), Some("2"));
    assert_eq!(r.output("critical-passed"), Some("2"));
    assert_eq!(r.output("critical-failed"), Some("0"));
    assert_eq!(r.output("security-findings"), Some("0"));
    assert_eq!(r.output("error"), None);
    assert!(r.summary.contains("Gate passed"), "{}", r.summary);
    let state: serde_json::Value = serde_json::from_str(r.state("expedite-run").unwrap()).unwrap();
    assert_eq!(
        (state["command"].as_str(), state["finished"].as_bool()),
        (Some("gate"), Some(true))
    );
    assert!(r.error_lines().is_empty(), "{:?}", r.error_lines());
}

#[test]
fn a_failing_gate_fails_the_step_with_one_error_per_reason() {
    let job = Job::new()
        .input("command", "gate")
        .input("results", "trx-mstest-categories-failures.trx")
        .input("critical-filter", "TestCategory=Fail")
        .input("security-waiver", "scan runs in the nightly pipeline");
    copy_fixture(&job, "trx-mstest-categories-failures.trx");
    let r = job.run_main();
    assert_eq!(r.code, 1);
    assert_eq!(r.output("verdict"), Some("fail"));
    assert_eq!(r.output("critical-failed"), Some("1"));
    let errors = r.error_lines();
    assert_eq!(
        errors.iter().filter(|l| l.contains("Gate failed")).count(),
        1,
        "{errors:?}"
    );
    assert!(errors.iter().any(|l| l.contains("FailTest")), "{errors:?}");
    assert!(
        r.summary.contains("scan runs in the nightly pipeline"),
        "the waiver stands in the summary"
    );
}

#[test]
fn test_command_output_cannot_issue_workflow_commands() {
    let job = Job::new()
        .input("command", "gate")
        .input("results", "trx-*.trx")
        .input("security-waiver", "test")
        .input(
            "test-command",
            "printf '::set-output name=x::1\\n::error::injected\\n::add-mask::x\\n'; cp ../../seed.trx trx-ran.trx; exit 3",
        );
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test-results/trx-xunitv3-passed-blame-warning.trx");
    std::fs::copy(src, job.path("seed.trx")).unwrap();
    let r = job.run_main();
    assert_eq!(r.code, 0, "{}", r.all_text());
    assert!(
        r.stdout.contains("::error::injected"),
        "the output is shown"
    );
    for line in processed_lines(&r.stdout) {
        assert!(
            !line.contains("injected") && !line.starts_with("::set-output"),
            "unfenced: {line}"
        );
    }
    assert!(r.outputs.iter().all(|(k, _)| k != "x"));
    assert!(r.summary.contains("exited with 3"), "{}", r.summary);
}

/// The runner's variables are read in one place (`src/action/runner.rs`,
/// with the runner contract beside it in `src/action/`), so every part of
/// expedite names a run the same way and falls back the same way. A read
/// anywhere else fails here.
#[test]
fn runner_variables_are_read_only_by_the_runner_contract() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    assert!(files.len() > 40, "{} files", files.len());
    let mut reads = Vec::new();
    for f in files {
        if f.starts_with(root.join("src/action")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for call in ["get(\"", "path(\"", "var(\"", "var_os(\""] {
                for prefix in ["GITHUB_", "RUNNER_", "ACTIONS_"] {
                    if line.contains(&format!("{call}{prefix}")) {
                        reads.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    // OIDC's request URL and token are credentials read where the Azure
    // sign-in is configured; they are not the run's description.
    reads.retain(|r| !r.contains("ACTIONS_ID_TOKEN_REQUEST_"));
    assert!(
        reads.is_empty(),
        "runner variables read outside src/action/: {reads:#?}"
    );
}

#[test]
fn a_secret_is_never_taken_from_a_flag_and_help_names_its_variable() {
    use expedite::config::{Command, INPUTS};
    // Every secret input, on every command that takes it.
    let mut cases = Vec::new();
    for spec in INPUTS.iter().filter(|s| s.secret) {
        let var = spec
            .cli_env
            .expect("every secret has a variable (tests/metadata.rs)");
        for c in Command::ALL.iter().filter(|c| spec.scope.includes(**c)) {
            cases.push((c.name(), spec.name, var));
        }
    }
    assert!(cases.len() >= 15, "{cases:?}");
    for (command, flag, var) in cases {
        let (code, text) = cli(&[command, &format!("--{flag}"), "s3cr3t-value"]);
        assert_eq!(code, Some(1), "{command} --{flag}: {text}");
        assert!(text.contains(&format!("export {var} instead")), "{text}");
        assert!(
            !text.contains("s3cr3t-value"),
            "the secret was echoed: {text}"
        );
        let (code, help) = cli(&[command, "--help"]);
        assert_eq!(code, Some(0));
        assert!(
            !help.contains(&format!("--{flag}")),
            "{command} --help shows --{flag}"
        );
        assert!(
            help.contains("Secrets are read from the environment only") && help.contains(var),
            "{help}"
        );
    }
}

/// `--output json`: one JSON object on stdout for every command — whether
/// it succeeds or refuses its inputs — with `outcome`, every output and
/// `error`; the logs stay on stderr. (`sandbox` serves until stopped: its
/// object, printed when ready, is checked in `tests/sandbox_cli.rs`; `drill`
/// is the whole incident, checked in `tests/drill.rs`.)
#[test]
fn every_command_prints_one_json_object_with_output_json() {
    let (_, help) = cli(&["--help"]);
    let commands: Vec<String> = listed_commands(&help)
        .into_iter()
        .filter(|c| !["sandbox", "drill"].contains(&c.as_str()))
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::exe())
            .args(args)
            .env_clear()
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for c in &commands {
        let (code, stdout, stderr) = run(&[c, "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("{c}: stdout is not one JSON object ({e}):\n{stdout}\n{stderr}")
        });
        assert!(v.is_object(), "{c}: {stdout}");
        assert_eq!(v["outcome"], "failure", "{c}: {stdout}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{c}: {stdout}"
        );
        assert_eq!(code, Some(1), "{c}: {stdout}");
    }
    // A command that succeeds: every output in the object.
    std::fs::write(
        dir.path().join("r.xml"),
        r#"<testsuite name="s" tests="1"><testcase classname="A" name="critical_one [Critical]"/></testsuite>"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "gate",
        "--output",
        "json",
        "--results",
        "r.xml",
        "--security-waiver",
        "no scan in this test",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("gate: {e}:\n{stdout}\n{stderr}"));
    assert_eq!(
        (code, v["outcome"].as_str()),
        (Some(0), Some("success")),
        "{stdout}\n{stderr}"
    );
    assert_eq!(v["verdict"], "pass", "{stdout}");
}
