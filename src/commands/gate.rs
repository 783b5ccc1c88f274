//! `gate`: the critical-test and security gate, wired to the runner
//! contract. The decisions live in [`crate::gate`]; this module runs the
//! optional test command, evaluates, and turns the report into annotations,
//! outputs and the job summary.

use std::process::Stdio;
use std::time::Instant;

use tokio::io::AsyncReadExt;

use super::{CommandError, Ctx, Report};
use crate::action::escape::{Annotation, Level};
use crate::config::GateConfig;
use crate::gate::{self, AnnotationLevel, Verdict};

/// Most test-command output kept for the log (the tail, where failures are).
const OUTPUT_LIMIT: usize = 256 * 1024;

/// Runs the gate.
pub async fn run(ctx: &Ctx, config: &GateConfig) -> Result<Report, CommandError> {
    let mut notes = Vec::new();
    if let Some(command) = &config.test_command {
        match run_test_command(ctx, command).await? {
            TestCommand::Exited(0) => {}
            TestCommand::Exited(code) => notes.push(format!(
                "`test-command` exited with {code}; the verdict comes from the result files"
            )),
            TestCommand::NotStarted(why) => {
                return Ok(Report {
                    success: false,
                    errors: vec![format!("`test-command` could not start: {why}")],
                    ..Report::default()
                });
            }
        }
    }
    ctx.cancel.check()?;
    let settings = config.settings.clone();
    // Parsing reads files synchronously; keep it off the async workers.
    let evaluated = tokio::task::spawn_blocking(move || gate::evaluate(&settings)).await;
    let report = match evaluated {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            return Ok(Report {
                success: false,
                errors: vec![e.to_string()],
                ..Report::default()
            });
        }
        Err(e) => {
            return Ok(Report {
                success: false,
                errors: vec![format!("the gate stopped unexpectedly: {e}")],
                ..Report::default()
            });
        }
    };
    for a in report.annotations() {
        let level = match a.level {
            AnnotationLevel::Error => Level::Error,
            AnnotationLevel::Warning => Level::Warning,
        };
        ctx.console.annotate(
            level,
            &Annotation {
                title: Some(a.title),
                file: a.file,
                line: a.line,
                message: a.message,
                ..Annotation::default()
            },
        );
    }
    let pass = report.verdict == Verdict::Pass;
    ctx.console.info(&format!(
        "gate: {} — {} critical tests ({} passed, {} failed, {} skipped), {} security findings at or above the threshold",
        if pass { "PASS" } else { "FAIL" },
        report.critical_total,
        report.critical_passed,
        report.critical_failed,
        report.critical_skipped,
        report.security_findings
    ));
    let mut summary = report.summary_markdown();
    for n in &notes {
        summary.push_str(&format!("\n> {}\n", crate::report::md_code(n)));
    }
    Ok(Report {
        success: pass,
        outputs: vec![
            ("verdict", if pass { "pass" } else { "fail" }.to_string()),
            ("critical-total", report.critical_total.to_string()),
            ("critical-passed", report.critical_passed.to_string()),
            ("critical-failed", report.critical_failed.to_string()),
            ("security-findings", report.security_findings.to_string()),
        ],
        summary,
        errors: report.reasons.clone(),
        // report.annotations() carries each reason as a "Gate failed" error.
        errors_annotated: true,
        interrupted: false,
        outputs_shown: false,
    })
}

enum TestCommand {
    Exited(i32),
    NotStarted(String),
}

/// Runs `sh -c <command>`, printing its output inside a stop-commands
/// fence (test names and messages are untrusted text), killed on
/// cancellation.
async fn run_test_command(ctx: &Ctx, command: &str) -> Result<TestCommand, CommandError> {
    let _group = ctx.console.group("test-command");
    ctx.console.untrusted("running", command);
    let started = Instant::now();
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Ok(TestCommand::NotStarted(e.to_string())),
    };
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Ok(TestCommand::NotStarted("no output pipes".into()));
    };
    let read = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut a), err.read_to_end(&mut b));
        a.extend_from_slice(&b);
        a
    };
    let waited = tokio::select! {
        r = async { let output = read.await; (child.wait().await, output) } => Some(r),
        () = ctx.cancel.cancelled() => None,
    };
    let Some((status, output)) = waited else {
        let _ = child.kill().await;
        ctx.cancel.check()?;
        return Ok(TestCommand::NotStarted("cancelled".into()));
    };
    let text = String::from_utf8_lossy(&output);
    let tail = if text.len() > OUTPUT_LIMIT {
        let cut = text.ceil_char_boundary(text.len() - OUTPUT_LIMIT);
        format!(
            "[… {cut} bytes of earlier output omitted]\n{}",
            &text[cut..]
        )
    } else {
        text.into_owned()
    };
    ctx.console.untrusted("test-command output", &tail);
    let code = match status {
        Ok(s) => s.code().unwrap_or(-1),
        Err(e) => return Ok(TestCommand::NotStarted(e.to_string())),
    };
    ctx.console.info(&format!(
        "test-command exited with {code} after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(TestCommand::Exited(code))
}
