//! The job summary of a single-service deploy: the outcome in one line and
//! what production serves, then the canary's steps (a mermaid flow, their
//! evidence table folded below it) and the phases (a gantt timeline, their
//! table folded below it). Untrusted text goes through [`crate::report`]
//! (ADR 9).

use crate::config::DeployConfig;
use crate::report::{md_cell, md_code};
use crate::rollout::Outcome;
use crate::rollout::canary::StepRecord;
use crate::rollout::driver::{Journal, phase_name, show_sample};

/// The summary's title for an outcome; `touched`: whether the run ever
/// changed what production serves (a stop before that restored nothing).
pub fn title(outcome: Outcome, touched: bool) -> &'static str {
    match (outcome, touched) {
        (Outcome::Promoted, _) => "✅ Deployed",
        (Outcome::Unchanged, _) => "✅ Already deployed",
        (Outcome::RolledBack, _) => "↩️ Rolled back",
        (Outcome::FailedBeforeChange, _) => "❌ Failed before any change to production",
        (Outcome::NeedsAttention, _) => "⚠️ Needs attention",
        (Outcome::Interrupted, true) => "⏹️ Interrupted, production restored",
        (Outcome::Interrupted, false) => "⏹️ Interrupted before any change to production",
        (Outcome::Preempted, true) => "⏹️ Stopped for an emergency rollback, production restored",
        (Outcome::Preempted, false) => {
            "⏹️ Stopped for an emergency rollback before any change to production"
        }
        (Outcome::Inconclusive, _) => "❔ Canary inconclusive, withdrawn",
    }
}

/// Whether the run ever changed what production serves: a canary share, a
/// swap (or promotion), or a swap back.
pub fn touched_production(j: &Journal) -> bool {
    use crate::rollout::Phase as P;
    j.state.trail.iter().any(|p| {
        matches!(
            p,
            P::CanaryShift
                | P::CanaryAbort
                | P::Swap
                | P::ResolveSwap
                | P::SwapBack
                | P::ResolveSwapBack
        )
    })
}

pub(super) fn summary(
    config: &DeployConfig,
    j: &Journal,
    outcome: Outcome,
    deployed: &str,
    url: &str,
    elapsed: std::time::Duration,
    notes: &[String],
) -> String {
    let mut md = format!(
        "## {} — {} {}\n\n",
        title(outcome, touched_production(j)),
        md_cell(&config.resource.app),
        md_cell(&config.plan.expected_version)
    );
    if let Some(line) = verdict(j, outcome, elapsed) {
        md.push_str(&format!("**{line}**\n\n"));
    }
    let rows = [
        ("result", format!("`{}`", outcome.as_str())),
        (
            "previous version (last known good)",
            md_cell(j.facts.previous_version.as_deref().unwrap_or("unknown")),
        ),
        (
            "production serves now",
            if deployed.is_empty() {
                format!(
                    "unknown or mixed ({})",
                    md_cell(&show_sample(&j.facts.serving_at_end))
                )
            } else {
                md_cell(deployed)
            },
        ),
        ("production", md_cell(url)),
        (
            "staged in",
            crate::commands::shared::platforms::staged_in(
                &super::place_of(config),
                j.facts.new_revision.as_deref(),
            ),
        ),
        ("duration", format!("{:.1} s", elapsed.as_secs_f64())),
    ];
    // The first row is the table's header: `| | |` would render an empty one.
    for (i, (k, v)) in rows.into_iter().enumerate() {
        md.push_str(&format!("| {k} | {v} |\n"));
        if i == 0 {
            md.push_str("|---|---|\n");
        }
    }
    if let Some(f) = &j.state.failure {
        md.push_str(&format!("| why | {} |\n", md_cell(f)));
    }
    if let Some(f) = &j.state.rollback_failure {
        md.push_str(&format!("| rollback problem | {} |\n", md_cell(f)));
    }
    if !j.facts.stale_rules.is_empty() {
        md.push_str(&format!(
            "| leftover routing cleared | {} |\n",
            md_cell(&j.facts.stale_rules.join("; "))
        ));
    }
    if let Some(answer) = &j.facts.staging_answer {
        md.push_str(&format!("| staging answered | {} |\n", md_cell(answer)));
    }
    if !j.facts.production_sample.is_empty() {
        let sample: Vec<String> = j
            .facts
            .production_sample
            .iter()
            .map(|(v, n)| format!("{n} × {v}"))
            .collect();
        md.push_str(&format!(
            "| production sample | {} |\n",
            md_cell(&sample.join(", "))
        ));
    }
    for kept in &j.facts.kept {
        md.push_str(&format!("| kept for rollback | {} |\n", md_cell(kept)));
    }
    for note in notes {
        md.push_str(&format!("| lock | {} |\n", md_cell(note)));
    }
    if !j.facts.canary_steps.is_empty() {
        md.push_str(&canary_summary(&j.facts.canary_steps));
    }
    md.push_str(&phases_md(j));
    for note in &j.state.notes {
        md.push_str(&format!("\n> {}\n", md_code(note)));
    }
    md
}

/// The phases: a mermaid timeline, and their table folded below it.
pub fn phases_md(j: &Journal) -> String {
    if j.phases.is_empty() {
        return String::new();
    }
    let span = j
        .phases
        .iter()
        .map(|p| p.started_ms + p.duration_ms.max(1))
        .max()
        .unwrap_or(0);
    let mut md = format!(
        "\n### Phases\n\n```mermaid\ngantt\n  dateFormat x\n{}  section deploy\n",
        crate::report::gantt_axis(span)
    );
    for (i, p) in j.phases.iter().enumerate() {
        // Red for what went wrong (a trip, a failure, a lost lock…), grey
        // for what went as planned.
        let wrong = [
            "failed",
            "tripped",
            "unknown",
            "state unknown",
            "inconclusive",
            "lock lost",
            "stopped",
        ];
        let state = if wrong.iter().any(|w| p.result.starts_with(w)) {
            "crit"
        } else {
            "done"
        };
        let end = p.started_ms + p.duration_ms.max(1);
        md.push_str(&format!(
            "  {} :{state}, p{i}, {}, {}\n",
            phase_name(p.phase).replace(':', " "),
            p.started_ms,
            end
        ));
    }
    md.push_str(&format!(
        "```\n\n<details><summary>{} phases: start, duration and result</summary>\n\n| phase | start | duration | result |\n|---|---|---|---|\n",
        j.phases.len()
    ));
    for p in &j.phases {
        md.push_str(&format!(
            "| {} | +{:.1} s | {:.1} s | {} |\n",
            phase_name(p.phase),
            p.started_ms as f64 / 1000.0,
            p.duration_ms as f64 / 1000.0,
            md_cell(&p.result)
        ));
    }
    md.push_str("\n</details>\n");
    md
}

/// The canary's verdict in one sentence, before any table: the last step,
/// what its canary and production saw, and what expedite did
/// (`canary 10 %: 8 of 25 requests failed vs 0 of 25 on production → rolled
/// back in 2.1 s`). `None` without a canary. The figures are the source that
/// saw the most canary failures (the one that decided, when one tripped).
pub fn verdict(j: &Journal, outcome: Outcome, elapsed: std::time::Duration) -> Option<String> {
    let step = j.facts.canary_steps.last()?;
    let f = step
        .sources
        .iter()
        .max_by_key(|f| (f.canary.failures, f.canary.requests))?;
    let production = match &f.baseline {
        Some(b) => format!("{} of {} on production", b.failures, b.requests),
        None => "no baseline figures".into(),
    };
    let did = match outcome {
        Outcome::Promoted => "promoted",
        Outcome::RolledBack => "rolled back",
        Outcome::Inconclusive => "withdrawn, inconclusive",
        Outcome::Interrupted if touched_production(j) => "interrupted, production restored",
        Outcome::Interrupted => "interrupted before any change to production",
        Outcome::Preempted if touched_production(j) => {
            "stopped for a rollback, production restored"
        }
        Outcome::Preempted => "stopped for a rollback before any change to production",
        Outcome::NeedsAttention => "needs attention",
        Outcome::Unchanged => "unchanged",
        Outcome::FailedBeforeChange => "failed before any change",
    };
    Some(format!(
        "canary {} %: {} of {} requests failed vs {production} → {did} in {:.1} s",
        step.percent,
        f.canary.failures,
        f.canary.requests,
        elapsed.as_secs_f64()
    ))
}

fn fmt_latency(c: &crate::probe::evidence::Counters) -> String {
    let Some(q) = c.latency else {
        return "–".into();
    };
    let ms = |v: Option<f64>| v.map_or_else(|| "–".into(), |s| format!("{:.0}", s * 1000.0));
    format!("{} / {} / {}", ms(q.p50), ms(q.p95), ms(q.p99))
}

fn rate(c: &crate::probe::evidence::Counters) -> String {
    if c.requests == 0 {
        return "–".into();
    }
    format!("{:.2} %", 100.0 * c.failures as f64 / c.requests as f64)
}

/// The canary section: a mermaid chart of the steps, why a step did not
/// pass, and folded below them per step and source the traffic each arm
/// saw, the test statistics against their thresholds, and the decision.
fn canary_summary(steps: &[StepRecord]) -> String {
    let mut table = String::from(
        "| step | source | arm | requests | failures | error rate | slow | latency p50/p95/p99 (ms) | tests (statistic / threshold, nats) | decision |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in steps {
        for f in &s.sources {
            let tests = f
                .tests
                .iter()
                .map(|t| format!("{} {:.2} / {:.2}", t.test, t.statistic, t.threshold))
                .collect::<Vec<_>>()
                .join("; ");
            let arms = std::iter::once(("canary", Some(&f.canary)))
                .chain(std::iter::once(("baseline", f.baseline.as_ref())));
            for (i, (arm, c)) in arms.enumerate() {
                let Some(c) = c else { continue };
                table.push_str(&format!(
                    "| {} | {} | {arm} | {} | {} | {} | {} | {} | {} | {} |\n",
                    if i == 0 {
                        format!("{} %", s.percent)
                    } else {
                        String::new()
                    },
                    if i == 0 {
                        md_cell(&f.source)
                    } else {
                        String::new()
                    },
                    c.requests,
                    c.failures,
                    rate(c),
                    c.slow.map_or_else(|| "–".into(), |n| n.to_string()),
                    fmt_latency(c),
                    if i == 0 {
                        md_cell(&tests)
                    } else {
                        String::new()
                    },
                    if i == 0 {
                        format!("**{}**", md_cell(&s.decision))
                    } else {
                        String::new()
                    },
                ));
            }
        }
    }
    let mut notes = String::new();
    for s in steps {
        if s.decision != "pass" {
            notes.push_str(&format!(
                "\n> {} % step: {} — {}\n",
                s.percent,
                md_code(&s.decision),
                md_code(&s.detail)
            ));
        }
    }
    let mut md = String::from("\n### Canary\n\n```mermaid\nflowchart LR\n  start([staged])");
    for (i, s) in steps.iter().enumerate() {
        let requests: u64 = s.sources.first().map_or(0, |f| f.canary.requests);
        let failures: u64 = s.sources.first().map_or(0, |f| f.canary.failures);
        // Mermaid labels: quotes and brackets would end the node.
        let label = format!(
            "{} %: {} req, {} failed, {:.0} s: {}",
            s.percent,
            requests,
            failures,
            s.duration_ms as f64 / 1000.0,
            s.decision
        )
        .replace(['"', '[', ']', '(', ')'], "");
        md.push_str(&format!(" --> s{i}[\"{label}\"]"));
    }
    let last = steps.last().map(|s| s.decision.as_str()).unwrap_or("");
    let end = match last {
        "pass" | "promoted-inconclusive" => "promote([promote])",
        "trip" => "back([withdrawn: production restored])",
        _ => "stop([withdrawn])",
    };
    md.push_str(&format!(" --> {end}\n"));
    for (i, s) in steps.iter().enumerate() {
        let class = match s.decision.as_str() {
            "pass" => "pass",
            "promoted-inconclusive" | "inconclusive" => "warn",
            _ => "fail",
        };
        md.push_str(&format!("  class s{i} {class}\n"));
    }
    md.push_str("  classDef pass fill:#d4f7d4\n  classDef warn fill:#fff3c4\n  classDef fail fill:#ffd6d6\n```\n");
    md.push_str(&notes);
    md.push_str(&format!(
        "\n<details><summary>Canary statistics: {} step{} — requests, failures, latency and tests per arm</summary>\n\n{table}\n</details>\n",
        steps.len(),
        if steps.len() == 1 { "" } else { "s" }
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Phase;
    use crate::rollout::driver::PhaseRecord;

    /// A phase that went wrong is drawn red (`crit`) whatever its kind of
    /// failure (a trip included); one that went as planned is grey.
    #[test]
    fn a_tripped_or_failed_phase_is_red_in_the_gantt() {
        let mut j = crate::commands::shared::service::refused("2.4.2", "x".into());
        for (i, result) in [
            "ok",
            "tripped: 8 of 25 failed",
            "failed: swap",
            "lock lost: y",
        ]
        .into_iter()
        .enumerate()
        {
            j.phases.push(PhaseRecord {
                phase: Phase::CanaryWatch,
                started_ms: i as u64 * 1000,
                duration_ms: 1000,
                result: result.into(),
            });
        }
        let md = phases_md(&j);
        let states: Vec<&str> = md
            .lines()
            .filter_map(|l| l.split(" :").nth(1))
            .filter_map(|l| l.split(',').next())
            .collect();
        assert_eq!(states, ["done", "crit", "crit", "crit"], "{md}");
    }

    /// A run stopped before it changed production does not claim to have
    /// restored it.
    #[test]
    fn a_stop_before_any_change_says_so() {
        use crate::rollout::Outcome;
        let mut j = crate::commands::shared::service::refused("2.4.1", "x".into());
        j.state.trail = vec![Phase::Preflight, Phase::Upload, Phase::CheckStaging];
        assert!(!touched_production(&j));
        assert_eq!(
            title(Outcome::Interrupted, touched_production(&j)),
            "⏹️ Interrupted before any change to production"
        );
        j.state.trail.push(Phase::CanaryShift);
        assert!(touched_production(&j));
        assert_eq!(
            title(Outcome::Interrupted, touched_production(&j)),
            "⏹️ Interrupted, production restored"
        );
    }
}
