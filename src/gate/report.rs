//! The gate's verdict and what is shown to people: the report, its Markdown job summary and
//! its annotations. Also the streaming aggregation that builds the counts from test cases.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::filter::Filter;
use super::model::{Finding, Format, Outcome, OutcomeCounts, TestCase, TestSink};
use super::threshold::SecurityThreshold;

/// Critical failures kept with their details; the rest are only counted.
pub(crate) const MAX_CRITICAL_FAILURES: usize = 200;
/// Non-critical failures kept with their details.
pub(crate) const MAX_OTHER_FAILURES: usize = 50;
/// Findings at or above the threshold kept with their details.
pub(crate) const MAX_FINDINGS: usize = 200;
/// Distinct category names remembered to help spot a typo in the filter.
const MAX_CATEGORIES_SEEN: usize = 30;
/// Reasons listed in the summary; GitHub truncates a job summary past 1 MiB.
const MAX_REASON_ROWS: usize = 50;
/// Rows of the per-file table in the summary.
const MAX_FILE_ROWS: usize = 100;
/// Longest message shown in a summary table cell.
const CELL_CAP: usize = 300;

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
}

/// One result or SARIF file the gate read.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    /// As given by the pattern, relative to the base directory when possible.
    pub path: String,
    /// `None` when the file could not be read far enough to tell.
    pub format: Option<Format>,
    pub tests: OutcomeCounts,
    /// Test cases in this file selected by the filter.
    pub critical_tests: u64,
    /// SARIF findings (kind fail, not suppressed).
    pub findings: u64,
    pub findings_at_or_above: u64,
    /// Run-level problems and read errors; each one also fails the gate.
    pub problems: Vec<String>,
}

/// A failed, errored, timed-out or aborted test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Fully qualified name.
    pub test: String,
    pub outcome: Outcome,
    pub message: String,
    /// The result file it was read from.
    pub result_file: String,
    /// Source file of the test, when the format records it.
    pub source_file: Option<String>,
    pub line: Option<u32>,
    /// Selected by the filter.
    pub critical: bool,
}

/// Everything the gate decided and why.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    pub verdict: Verdict,
    /// Every reason for a `Fail`, one sentence each; empty when the gate passes.
    pub reasons: Vec<String>,
    /// Things a reviewer should know that did not fail the gate (waiver used, critical
    /// tests skipped).
    pub notes: Vec<String>,
    /// The filter used; `None` means every test is critical.
    pub filter: Option<String>,
    /// Each top-level alternative of the filter and the tests it selected.
    pub filter_alternatives: Vec<(String, u64)>,
    pub min_critical_tests: u32,
    /// Test cases in all files.
    pub tests_total: u64,
    pub critical_total: u64,
    pub critical_passed: u64,
    /// Failed, errored, timed out or aborted.
    pub critical_failed: u64,
    /// Skipped, not executed or inconclusive: neither passed nor failed.
    pub critical_skipped: u64,
    pub non_critical_failed: u64,
    /// SARIF findings at or above the threshold.
    pub security_findings: u64,
    /// SARIF findings below the threshold.
    pub security_findings_below: u64,
    pub security_threshold: SecurityThreshold,
    /// The waiver's reason, when the waiver was used because no scan was given.
    pub security_waiver: Option<String>,
    pub files: Vec<FileSummary>,
    /// Critical failures first-come (at most 200), then non-critical ones (at most 50).
    pub failures: Vec<Failure>,
    pub failures_omitted: u64,
    /// Findings at or above the threshold (at most 200).
    pub findings: Vec<Finding>,
    pub findings_omitted: u64,
}

/// Severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Error,
    Warning,
}

/// One annotation for the runner (`::error title=…,file=…,line=…::message`). The caller
/// applies the runner's limit (10 per level per step) and leaves the rest to the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAnnotation {
    pub level: AnnotationLevel,
    pub title: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// Receives test cases while files are parsed; keeps counts and capped lists only.
pub(crate) struct Aggregator<'f> {
    filter: Option<&'f Filter>,
    pub(crate) critical: OutcomeCounts,
    pub(crate) other: OutcomeCounts,
    pub(crate) file_critical: u64,
    result_file: String,
    pub(crate) failures: Vec<Failure>,
    critical_kept: usize,
    other_kept: usize,
    pub(crate) failures_omitted: u64,
    pub(crate) categories_seen: BTreeSet<String>,
    /// What each part of the filter matched.
    pub(crate) coverage: Option<super::filter::Coverage>,
}

impl<'f> Aggregator<'f> {
    pub(crate) fn new(filter: Option<&'f Filter>) -> Self {
        Aggregator {
            coverage: filter.map(super::filter::Coverage::new),
            filter,
            critical: OutcomeCounts::default(),
            other: OutcomeCounts::default(),
            file_critical: 0,
            result_file: String::new(),
            failures: Vec::new(),
            critical_kept: 0,
            other_kept: 0,
            failures_omitted: 0,
            categories_seen: BTreeSet::new(),
        }
    }

    /// Starts counting a new file.
    pub(crate) fn begin_file(&mut self, display: &str) {
        self.result_file = display.to_owned();
        self.file_critical = 0;
    }
}

impl TestSink for Aggregator<'_> {
    fn test_case(&mut self, case: &TestCase) {
        if let Some(c) = self.coverage.as_mut() {
            c.observe(case);
        }
        let critical = self.filter.is_none_or(|f| f.matches(case));
        if critical {
            self.critical.add(case.outcome);
            self.file_critical += 1;
        } else {
            self.other.add(case.outcome);
        }
        for category in &case.categories {
            if self.categories_seen.len() >= MAX_CATEGORIES_SEEN {
                break;
            }
            if !self.categories_seen.contains(category) {
                self.categories_seen.insert(category.clone());
            }
        }
        if !case.outcome.is_failure() {
            return;
        }
        let keep = if critical {
            self.critical_kept < MAX_CRITICAL_FAILURES
        } else {
            self.other_kept < MAX_OTHER_FAILURES
        };
        if !keep {
            self.failures_omitted += 1;
            return;
        }
        if critical {
            self.critical_kept += 1;
        } else {
            self.other_kept += 1;
        }
        self.failures.push(Failure {
            test: failure_label(case),
            outcome: case.outcome,
            message: case.message.clone(),
            result_file: self.result_file.clone(),
            source_file: case.source_file.clone(),
            line: case.line,
            critical,
        });
    }
}

/// How a failed test is named to people: the fully qualified name, made specific with the
/// display name when that says more (a data row `TestTheory (False)`, xUnit's custom
/// `DisplayName`).
fn failure_label(case: &TestCase) -> String {
    let fqn = case.fully_qualified_name.as_str();
    let name = case.name.as_str();
    if fqn.is_empty() {
        return name.to_owned();
    }
    if name.is_empty() || fqn.ends_with(name) {
        return fqn.to_owned();
    }
    match fqn.rsplit_once('.') {
        Some((class, method)) if name.starts_with(method) => format!("{class}.{name}"),
        _ => format!("{fqn} ({name})"),
    }
}

/// Untrusted text (test names, messages, paths) in a table cell: code
/// (`crate::report`), cut at `CELL_CAP` characters.
fn cell(text: &str) -> String {
    crate::report::md_cell(&crate::text::clip(text, CELL_CAP))
}

/// Untrusted text in a list item or a sentence: code, cut likewise.
fn line(text: &str) -> String {
    crate::report::md_code(&crate::text::clip(text, CELL_CAP))
}

fn location(file: Option<&str>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.to_owned(),
        _ => String::new(),
    }
}

/// SARIF URIs may be `file://` URLs; annotations want a path.
fn annotation_path(uri: &str) -> String {
    uri.strip_prefix("file://").unwrap_or(uri).to_owned()
}

impl GateReport {
    /// The gate as a GitHub job summary (Markdown, tables; all untrusted text escaped).
    pub fn summary_markdown(&self) -> String {
        let mut md = String::new();
        let _ = match self.verdict {
            Verdict::Pass => writeln!(md, "## ✅ Gate passed\n"),
            Verdict::Fail => writeln!(md, "## ❌ Gate failed\n"),
        };
        if !self.reasons.is_empty() {
            md.push_str("**Why it failed**\n\n");
            for reason in self.reasons.iter().take(MAX_REASON_ROWS) {
                let _ = writeln!(md, "- {}", line(reason));
            }
            if self.reasons.len() > MAX_REASON_ROWS {
                let _ = writeln!(
                    md,
                    "- …and {} more reasons (see the annotations and the log)",
                    self.reasons.len() - MAX_REASON_ROWS
                );
            }
            md.push('\n');
        }
        if !self.notes.is_empty() {
            md.push_str("**Notes**\n\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {}", line(note));
            }
            md.push('\n');
        }

        let filter = match &self.filter {
            Some(f) => format!("filter {}", line(f)),
            None => "no filter: every test is critical".to_owned(),
        };
        md.push_str("### Critical tests\n\n");
        let _ = writeln!(
            md,
            "Selected by {filter}; at least {} must run.\n",
            self.min_critical_tests
        );
        if self.filter_alternatives.len() > 1 {
            md.push_str("| filter alternative | tests selected |\n|---|---:|\n");
            for (alt, n) in &self.filter_alternatives {
                let _ = writeln!(md, "| {} | {n} |", cell(alt));
            }
            md.push('\n');
        }
        md.push_str("| | Tests |\n|---|---:|\n");
        for (label, n) in [
            ("Critical", self.critical_total),
            ("Critical passed", self.critical_passed),
            ("Critical failed", self.critical_failed),
            ("Critical skipped / not run", self.critical_skipped),
            ("Non-critical failed", self.non_critical_failed),
            ("All tests in all files", self.tests_total),
        ] {
            let _ = writeln!(md, "| {label} | {n} |");
        }
        md.push('\n');

        md.push_str("### Security scan\n\n");
        let _ = writeln!(
            md,
            "Threshold: {}.\n",
            line(&self.security_threshold.to_string())
        );
        if let Some(reason) = &self.security_waiver {
            let _ = writeln!(md, "**Waived**: {}\n", line(reason));
        }
        let _ = writeln!(
            md,
            "Findings at or above the threshold: **{}**; below: {}.\n",
            self.security_findings, self.security_findings_below
        );

        if !self.files.is_empty() {
            md.push_str("### Files\n\n| File | Format | Tests | Passed | Failed | Skipped | Critical | Findings (≥ threshold) | Problems |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n");
            for file in self.files.iter().take(MAX_FILE_ROWS) {
                let format = file
                    .format
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "?".to_owned());
                let problems = file
                    .problems
                    .iter()
                    .map(|p| cell(p))
                    .collect::<Vec<_>>()
                    .join("<br>");
                let findings = if file.format == Some(Format::Sarif) {
                    format!("{} ({})", file.findings, file.findings_at_or_above)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    md,
                    "| {} | {format} | {} | {} | {} | {} | {} | {findings} | {problems} |",
                    cell(&file.path),
                    file.tests.total(),
                    file.tests.passed,
                    file.tests.failures(),
                    file.tests.not_run(),
                    file.critical_tests,
                );
            }
            if self.files.len() > MAX_FILE_ROWS {
                let _ = writeln!(
                    md,
                    "\n…and {} more files.",
                    self.files.len() - MAX_FILE_ROWS
                );
            }
            md.push('\n');
        }

        for (critical, title) in [
            (true, "Critical failures"),
            (false, "Non-critical failures (advisory)"),
        ] {
            let rows: Vec<&Failure> = self
                .failures
                .iter()
                .filter(|f| f.critical == critical)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(
                md,
                "### {title}\n\n| Test | Outcome | Message | Where |\n|---|---|---|---|"
            );
            for f in rows {
                let place = location(f.source_file.as_deref(), f.line);
                let place = if place.is_empty() {
                    f.result_file.clone()
                } else {
                    place
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    cell(&f.test),
                    f.outcome,
                    cell(&f.message),
                    cell(&place)
                );
            }
            md.push('\n');
        }
        if self.failures_omitted > 0 {
            let _ = writeln!(
                md,
                "…and {} more failures not listed.\n",
                self.failures_omitted
            );
        }

        if !self.findings.is_empty() {
            md.push_str("### Security findings at or above the threshold\n\n| Rule | Level | Severity | Location | Message |\n|---|---|---:|---|---|\n");
            for f in &self.findings {
                let severity = f
                    .security_severity
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {} | {} | {severity} | {} | {} |",
                    cell(&f.rule_id),
                    f.level,
                    cell(&location(f.uri.as_deref(), f.line)),
                    cell(&f.message)
                );
            }
            if self.findings_omitted > 0 {
                let _ = writeln!(
                    md,
                    "\n…and {} more findings not listed.",
                    self.findings_omitted
                );
            }
            md.push('\n');
        }
        md
    }

    /// Annotations, most important first: every reason the gate failed, then each critical
    /// failure and each finding at or above the threshold (errors); notes and non-critical
    /// failures (warnings).
    pub fn annotations(&self) -> Vec<GateAnnotation> {
        let mut out = Vec::new();
        for reason in &self.reasons {
            out.push(GateAnnotation {
                level: AnnotationLevel::Error,
                title: "Gate failed".to_owned(),
                message: reason.clone(),
                file: None,
                line: None,
            });
        }
        for f in self.failures.iter().filter(|f| f.critical) {
            out.push(GateAnnotation {
                level: AnnotationLevel::Error,
                title: format!("Critical test {}: {}", f.outcome, f.test),
                message: if f.message.is_empty() {
                    format!("{} (in {})", f.outcome, f.result_file)
                } else {
                    f.message.clone()
                },
                file: f.source_file.clone(),
                line: f.line,
            });
        }
        for f in &self.findings {
            let severity = f
                .security_severity
                .map(|s| format!(", security-severity {s:.1}"))
                .unwrap_or_default();
            out.push(GateAnnotation {
                level: AnnotationLevel::Error,
                title: format!("{} {} ({}{severity})", f.tool, f.rule_id, f.level),
                message: f.message.clone(),
                file: f.uri.as_deref().map(annotation_path),
                line: f.line,
            });
        }
        for note in &self.notes {
            out.push(GateAnnotation {
                level: AnnotationLevel::Warning,
                title: "Gate".to_owned(),
                message: note.clone(),
                file: None,
                line: None,
            });
        }
        for f in self.failures.iter().filter(|f| !f.critical) {
            out.push(GateAnnotation {
                level: AnnotationLevel::Warning,
                title: format!("Non-critical test {}: {}", f.outcome, f.test),
                message: if f.message.is_empty() {
                    f.outcome.to_string()
                } else {
                    f.message.clone()
                },
                file: f.source_file.clone(),
                line: f.line,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(cell("a|b\nc<script>`x`"), "`a\\|b`<br>`` c<script>`x` ``");
        let long = "x".repeat(1000);
        // The cap (its ellipsis included) and the span's two backticks.
        assert_eq!(cell(&long).chars().count(), CELL_CAP + 2);
        assert_eq!(line("a<b"), "`a<b`");
    }

    #[test]
    fn failure_labels_keep_the_data_row_and_display_name() {
        let label = |fqn: &str, name: &str| {
            let mut c = TestCase::new(Outcome::Failed);
            c.fully_qualified_name = fqn.to_owned();
            c.name = name.to_owned();
            failure_label(&c)
        };
        assert_eq!(label("A.B.Pays", "Pays"), "A.B.Pays");
        assert_eq!(label("A.B.Theory", "Theory (False)"), "A.B.Theory (False)");
        assert_eq!(label("A.B.Named", "Custom Name"), "A.B.Named (Custom Name)");
        assert_eq!(label("", "Orphan"), "Orphan");
        assert_eq!(label("A.B.C", ""), "A.B.C");
    }

    #[test]
    fn aggregator_caps_failure_lists_but_counts_everything() {
        let filter = Filter::parse("Category=Critical").unwrap();
        let mut agg = Aggregator::new(Some(&filter));
        agg.begin_file("r.xml");
        let mut critical = TestCase::new(Outcome::Failed);
        critical.categories = vec!["Critical".into()];
        let other = TestCase::new(Outcome::Errored);
        for _ in 0..(MAX_CRITICAL_FAILURES + 10) {
            agg.test_case(&critical);
        }
        for _ in 0..(MAX_OTHER_FAILURES + 5) {
            agg.test_case(&other);
        }
        assert_eq!(agg.critical.failed, (MAX_CRITICAL_FAILURES + 10) as u64);
        assert_eq!(agg.other.errored, (MAX_OTHER_FAILURES + 5) as u64);
        assert_eq!(
            agg.failures.len(),
            MAX_CRITICAL_FAILURES + MAX_OTHER_FAILURES
        );
        assert_eq!(agg.failures_omitted, 15);
        assert_eq!(agg.file_critical, (MAX_CRITICAL_FAILURES + 10) as u64);
        assert!(agg.categories_seen.contains("Critical"));
    }
}
