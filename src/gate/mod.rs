//! Critical-test and security gate (issue 6): reads test result files (JUnit XML, TRX,
//! NUnit 3) and SARIF security scans, selects the critical tests with a `dotnet test
//! --filter` expression, and decides pass or fail.
//!
//! # What fails the gate
//! - any critical test that failed, errored, timed out or was aborted;
//! - fewer critical tests *run* (passed + failed) than `min_critical_tests` (default 1), so a
//!   filter with a typo fails instead of passing on zero tests; skipped and not-executed
//!   critical tests are counted apart and do not count towards the minimum;
//! - a results pattern that matched no file, and a file that is missing, empty (0 bytes or
//!   whitespace), truncated, not well-formed, or of an unknown format;
//! - a run-level problem in any file, whatever the filter: a TRX run aborted or in error, a
//!   test host that crashed or exited (RunInfos), a run marked Failed with no failed test, a
//!   jest suite that failed to run, a pytest module that could not be collected (its tests
//!   never ran), an NUnit fixture that failed in its one-time setup or teardown, a
//!   cancelled NUnit run;
//! - a SARIF finding at or above the security threshold (default: level `error`, or
//!   `security-severity` ≥ 7.0), a SARIF run without results or whose execution failed;
//! - no SARIF at all, unless a security waiver with a reason is given (then the summary says
//!   the scan was waived, and why). A waiver never hides findings of a scan that was given.
//!
//! # How categories are found (what `Category=…` matches)
//! - **TRX**: `TestDefinitions/UnitTest/TestCategory/TestCategoryItem@TestCategory`, joined
//!   to each result by `testId`. `Properties/Property` Key/Value pairs are traits; a trait
//!   named Category or TestCategory (xUnit's `[Trait("Category", …)]`) also matches
//!   `Category=`.
//! - **NUnit 3**: `properties/property name="Category"` on the test case and on every
//!   enclosing `test-suite` (a category on a fixture applies to its tests, as in NUnit).
//!   Other test-case properties are traits.
//! - **JUnit**: `<property name="Category">` (also `category`, `TestCategory`, `categories`;
//!   values split on commas) on the test case or any enclosing `<testsuite>`, plus tags in the
//!   test name or class name matched by the category pattern (default `[{}]`: `charges card
//!   [Critical]` has category `Critical`; `@{}` would read `@critical`; an empty pattern
//!   turns name tags off). Other test-case properties are traits. JUnit has no standard
//!   category, so for each tool:
//!   - pytest: markers are not written to JUnit. Use `record_property("category",
//!     "Critical")` in the test or in a fixture (an autouse fixture can record the test's
//!     markers), `record_testsuite_property("category", "Critical")` for a whole run, or a
//!     tag in the test id (`pytest.param(..., id="[Critical]")`, read as `test_x[[Critical]]`).
//!     A skipped test runs no fixture, so only the id tag marks it (and a skipped critical
//!     test is then reported as skipped instead of being invisible). `-o
//!     junit_suite_name=…` only renames the suite; select by module instead with
//!     `FullyQualifiedName~test_payments`.
//!   - jest-junit, Go, nextest, Surefire: put the tag in the test name (`it("[Critical]
//!     charges the card")`, `func TestCharge_Critical` with `FullyQualifiedName~_Critical`),
//!     or filter on `FullyQualifiedName`/`ClassName`.
//!
//! `FullyQualifiedName` is `classname.name` for JUnit, `className.methodName` from
//! `TestMethod` for TRX, and `fullname` for NUnit; `Name` is the display name.
//!
//! # Memory
//! Every parser streams (quick-xml over a buffered reader; serde_json from a reader for
//! SARIF into structs holding only the fields used) and hands each test case to the
//! aggregation, which keeps counts and at most 250 failures and 200 findings. TRX must keep
//! a compact record per result until its definition is read (see `trx.rs`).

mod filter;
mod junit;
mod model;
mod nunit;
mod parse;
mod report;
mod sarif;
mod threshold;
mod trx;
mod xml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use filter::{Filter, FilterError};
pub use junit::CategoryPattern;
pub use model::{
    Finding, Format, Outcome, OutcomeCounts, ParseError, ParsedFile, SarifLevel, TestCase,
};
pub use report::{AnnotationLevel, Failure, FileSummary, GateAnnotation, GateReport, Verdict};
pub use threshold::{SecurityThreshold, ThresholdError};

use parse::{Expect, ParseOptions};
use report::{Aggregator, MAX_FINDINGS};

/// What to gate on. Paths and patterns are relative to `base_dir` unless absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSettings {
    /// Glob patterns (or plain paths) of test result files.
    pub results: Vec<String>,
    /// `dotnet test --filter` expression selecting the critical tests; `None` or blank means
    /// every test is critical.
    pub filter: Option<String>,
    /// Parts of the filter (alternatives or conditions, as written) allowed to
    /// match no test; every other part must match at least one.
    pub filter_optional: Vec<String>,
    /// Critical tests that must have run (passed or failed); skipped ones do not count.
    pub min_critical_tests: u32,
    /// Glob patterns (or plain paths) of SARIF files from the security scan.
    pub sarif: Vec<String>,
    pub security_threshold: SecurityThreshold,
    /// Why the security scan is skipped; only used when `sarif` gives no file.
    pub security_waiver: Option<String>,
    /// Where JUnit test names carry categories (`prefix{}suffix`); `None` is the default
    /// `[{}]`, an empty string turns it off.
    pub junit_category_pattern: Option<String>,
    pub base_dir: PathBuf,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            results: Vec::new(),
            filter: None,
            filter_optional: Vec::new(),
            min_critical_tests: 1,
            sarif: Vec::new(),
            security_threshold: SecurityThreshold::default(),
            security_waiver: None,
            junit_category_pattern: None,
            base_dir: PathBuf::from("."),
        }
    }
}

/// Settings the gate cannot run with. Problems with the files themselves are not errors:
/// they fail the verdict and are listed in the report.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no test result files given: set results to one or more paths or glob patterns")]
    NoResults,
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("invalid glob pattern \"{pattern}\" at character {position}: {message}")]
    Glob {
        pattern: String,
        position: usize,
        message: String,
    },
    #[error(
        "\"{entry}\" in critical-filter-optional is not an alternative or condition of the filter (they are: {parts})"
    )]
    OptionalNotInFilter {
        /// The entry.
        entry: String,
        /// What it could have been.
        parts: String,
    },
    #[error("{0}")]
    CategoryPattern(String),
    #[error(
        "the security waiver is empty: give the reason the scan is skipped (and who decided), or pass the SARIF file"
    )]
    EmptyWaiver,
}

/// Checks that every entry of `optional` is an alternative or condition of
/// `filter` (compared in canonical form); the error names the first that is
/// not, with what the parts are.
pub fn check_optional(filter: &str, optional: &[String]) -> Result<(), String> {
    let f = Filter::parse(filter).map_err(|e| e.to_string())?;
    let parts = filter::Coverage::new(&f).parts();
    for entry in optional {
        let text = filter::canonical(entry).map_err(|e| e.to_string())?;
        if !parts.iter().any(|p| p.eq_ignore_ascii_case(&text)) {
            return Err(format!(
                "\"{entry}\" is not an alternative or condition of the filter (they are: {})",
                parts.join(", ")
            ));
        }
    }
    Ok(())
}

/// Runs the gate.
pub fn evaluate(settings: &GateSettings) -> Result<GateReport, GateError> {
    if settings.results.iter().all(|r| r.trim().is_empty()) {
        return Err(GateError::NoResults);
    }
    let filter = match settings.filter.as_deref().map(str::trim) {
        Some(f) if !f.is_empty() => Some(Filter::parse(f)?),
        _ => None,
    };
    // Optional parts must be parts of the filter: a typo there would
    // silence the check it exists to relax.
    let optional: Vec<String> = match &filter {
        Some(f) => {
            let parts = filter::Coverage::new(f).parts();
            let mut out = Vec::new();
            for entry in settings
                .filter_optional
                .iter()
                .map(|e| e.trim())
                .filter(|e| !e.is_empty())
            {
                let text = filter::canonical(entry)?;
                if !parts.iter().any(|p| p.eq_ignore_ascii_case(&text)) {
                    return Err(GateError::OptionalNotInFilter {
                        entry: entry.to_owned(),
                        parts: parts.join(", "),
                    });
                }
                out.push(text);
            }
            out
        }
        None => Vec::new(),
    };
    let category_pattern = match settings.junit_category_pattern.as_deref() {
        None => Some(CategoryPattern::default_brackets()),
        Some(p) if p.trim().is_empty() => None,
        Some(p) => Some(CategoryPattern::parse(p.trim()).map_err(GateError::CategoryPattern)?),
    };
    let waiver = match settings.security_waiver.as_deref().map(str::trim) {
        Some("") => return Err(GateError::EmptyWaiver),
        Some(w) => Some(w.to_owned()),
        None => None,
    };
    let result_patterns: Vec<&str> = settings
        .results
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let sarif_patterns: Vec<&str> = settings
        .sarif
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    for pattern in result_patterns.iter().chain(&sarif_patterns) {
        glob::Pattern::new(pattern).map_err(|e| GateError::Glob {
            pattern: (*pattern).to_owned(),
            position: e.pos + 1,
            message: e.msg.to_owned(),
        })?;
    }
    let opts = ParseOptions { category_pattern };

    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let mut files = Vec::new();
    let mut agg = Aggregator::new(filter.as_ref());

    let result_files = expand_all(
        &settings.base_dir,
        &result_patterns,
        "test results",
        &mut reasons,
    );
    for (path, display) in &result_files {
        agg.begin_file(display);
        let mut summary = FileSummary {
            path: display.clone(),
            format: None,
            tests: OutcomeCounts::default(),
            critical_tests: 0,
            findings: 0,
            findings_at_or_above: 0,
            problems: Vec::new(),
        };
        match parse::parse_path(path, display, Expect::TestResults, &opts, &mut agg) {
            Ok(parsed) => {
                summary.format = parsed.format;
                summary.tests = parsed.tests;
                summary.critical_tests = agg.file_critical;
                for problem in parsed.problems {
                    reasons.push(format!("{display}: {problem}"));
                    summary.problems.push(problem);
                }
            }
            Err(err) => {
                // Test cases read before the error still count: the file fails the gate
                // either way, and partial counts help to see how far it got.
                summary.critical_tests = agg.file_critical;
                reasons.push(err.to_string());
                summary.problems.push(err.to_string());
            }
        }
        files.push(summary);
    }

    let threshold = settings.security_threshold;
    let mut findings = Vec::new();
    let (mut at_or_above, mut below, mut findings_omitted) = (0u64, 0u64, 0u64);
    let mut waiver_used = None;
    let sarif_files = if sarif_patterns.is_empty() {
        Vec::new()
    } else {
        // With a waiver, a pattern that matches nothing is the waived case, not an error.
        let mut sarif_reasons = Vec::new();
        let found = expand_all(
            &settings.base_dir,
            &sarif_patterns,
            "SARIF",
            &mut sarif_reasons,
        );
        if waiver.is_none() {
            reasons.append(&mut sarif_reasons);
        } else {
            notes.append(&mut sarif_reasons);
        }
        found
    };
    if sarif_files.is_empty() {
        match &waiver {
            Some(reason) => {
                notes.push(format!("security scan waived: {reason}"));
                waiver_used = Some(reason.clone());
            }
            None if sarif_patterns.is_empty() => reasons.push(
                "no SARIF security scan was given: the security scan is required (pass its SARIF file, or a security waiver with the reason it is skipped)".to_owned(),
            ),
            None => {}
        }
    } else if waiver.is_some() {
        notes.push(
            "a security waiver was given but not used: the SARIF scan was evaluated".to_owned(),
        );
    }
    for (path, display) in &sarif_files {
        let mut summary = FileSummary {
            path: display.clone(),
            format: None,
            tests: OutcomeCounts::default(),
            critical_tests: 0,
            findings: 0,
            findings_at_or_above: 0,
            problems: Vec::new(),
        };
        let mut discard = Aggregator::new(None);
        match parse::parse_path(path, display, Expect::Sarif, &opts, &mut discard) {
            Ok(parsed) => {
                summary.format = parsed.format;
                for problem in parsed.problems {
                    reasons.push(format!("{display}: {problem}"));
                    summary.problems.push(problem);
                }
                for mut finding in parsed.findings {
                    summary.findings += 1;
                    if threshold.trips(&finding) {
                        summary.findings_at_or_above += 1;
                        at_or_above += 1;
                        finding.at_or_above_threshold = true;
                        if findings.len() < MAX_FINDINGS {
                            findings.push(finding);
                        } else {
                            findings_omitted += 1;
                        }
                    } else {
                        below += 1;
                    }
                }
            }
            Err(err) => {
                reasons.push(err.to_string());
                summary.problems.push(err.to_string());
            }
        }
        files.push(summary);
    }

    let critical = agg.critical;
    let other = agg.other;
    let tests_total = critical.total() + other.total();
    if critical.failures() > 0 {
        reasons.push(format!(
            "{} critical test{} failed ({})",
            critical.failures(),
            plural(critical.failures()),
            breakdown(&critical)
        ));
    }
    let ran = critical.passed + critical.failures();
    if ran < u64::from(settings.min_critical_tests) {
        reasons.push(too_few_message(
            ran,
            settings.min_critical_tests,
            &critical,
            tests_total,
            result_files.len(),
            filter.as_ref(),
            &agg.categories_seen,
        ));
    }
    if critical.not_run() > 0 {
        notes.push(format!(
            "{} critical test{} did not run (skipped, not executed or inconclusive) and count neither as passed nor towards the minimum",
            critical.not_run(),
            plural(critical.not_run())
        ));
    }
    // Every part of the filter must match something: an alternative or
    // condition that matches nothing is a typo that silently drops tests
    // (or, in an exclusion, excludes nothing).
    let mut filter_alternatives = Vec::new();
    if let Some(coverage) = &agg.coverage {
        filter_alternatives = coverage.alternatives();
        if tests_total > 0 {
            for dead in coverage.dead(&optional) {
                reasons.push(format!(
                    "the filter's {} `{}` {} in these results: {} (if it is expected to match nothing here, list it in critical-filter-optional)",
                    if dead.alternative { "alternative" } else { "condition" },
                    dead.text,
                    if dead.alternative { "selects no test" } else { "matches no test" },
                    dead.why
                ));
            }
        }
        for o in &optional {
            notes.push(format!(
                "`{o}` may match no test (critical-filter-optional)"
            ));
        }
    }
    if settings.min_critical_tests == 0 {
        notes.push(
            "min_critical_tests is 0: the gate passes even if no critical test ran".to_owned(),
        );
    }
    if at_or_above > 0 {
        reasons.push(format!(
            "{at_or_above} security finding{} at or above the threshold ({threshold})",
            plural(at_or_above)
        ));
    }

    Ok(GateReport {
        verdict: if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
        notes,
        filter: filter.as_ref().map(|f| f.as_str().to_owned()),
        filter_alternatives,
        min_critical_tests: settings.min_critical_tests,
        tests_total,
        critical_total: critical.total(),
        critical_passed: critical.passed,
        critical_failed: critical.failures(),
        critical_skipped: critical.not_run(),
        non_critical_failed: other.failures(),
        security_findings: at_or_above,
        security_findings_below: below,
        security_threshold: threshold,
        security_waiver: waiver_used,
        files,
        failures: agg.failures,
        failures_omitted: agg.failures_omitted,
        findings,
        findings_omitted,
    })
}

/// Parses one file of the given format from memory, without gating. Never panics, whatever
/// the bytes (the fuzz targets call it).
pub fn parse_bytes(format: Format, bytes: &[u8]) -> Result<ParsedFile, ParseError> {
    let mut discard = Aggregator::new(None);
    let opts = ParseOptions {
        category_pattern: Some(CategoryPattern::default_brackets()),
    };
    parse::parse_reader(
        bytes,
        "<bytes>",
        Expect::Exactly(format),
        &opts,
        &mut discard,
    )
}

/// Reads one file of any supported format (detected from its content) and calls `on_case`
/// for every test case, with the default JUnit category pattern. For tools and tests that
/// want to see what the gate sees.
pub fn read_tests(
    path: &Path,
    on_case: &mut dyn FnMut(&TestCase),
) -> Result<ParsedFile, ParseError> {
    struct Callback<'a>(&'a mut dyn FnMut(&TestCase));
    impl model::TestSink for Callback<'_> {
        fn test_case(&mut self, case: &TestCase) {
            (self.0)(case);
        }
    }
    let display = path.display().to_string();
    let opts = ParseOptions {
        category_pattern: Some(CategoryPattern::default_brackets()),
    };
    let expect = Expect::TestResults;
    match parse::parse_path(path, &display, expect, &opts, &mut Callback(on_case)) {
        Err(ParseError::WrongFormat {
            found: Format::Sarif,
            ..
        }) => parse::parse_path(path, &display, Expect::Sarif, &opts, &mut Callback(on_case)),
        other => other,
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn breakdown(c: &OutcomeCounts) -> String {
    let parts: Vec<String> = [
        (c.failed, "failed"),
        (c.errored, "error"),
        (c.timed_out, "timed out"),
        (c.aborted, "aborted"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    parts.join(", ")
}

fn too_few_message(
    ran: u64,
    min: u32,
    critical: &OutcomeCounts,
    tests_total: u64,
    files: usize,
    filter: Option<&Filter>,
    categories: &BTreeSet<String>,
) -> String {
    let mut msg = format!(
        "only {ran} critical test{} ran, at least {min} required",
        plural(ran)
    );
    if critical.not_run() > 0 {
        let _ = std::fmt::Write::write_fmt(
            &mut msg,
            format_args!(" ({} more selected but skipped)", critical.not_run()),
        );
    }
    match filter {
        Some(f) => {
            msg.push_str(&format!(
                "; the filter \"{}\" selected {} of {tests_total} test{} in {files} file{}: check the filter for a typo",
                f.as_str(),
                critical.total(),
                plural(tests_total),
                plural(files as u64)
            ));
            if !categories.is_empty() {
                let list: Vec<&str> = categories.iter().map(String::as_str).collect();
                msg.push_str(&format!(" (categories present: {})", list.join(", ")));
            } else {
                msg.push_str(" (no test in these files has a category)");
            }
        }
        None => msg.push_str(&format!(
            "; the result files hold {tests_total} test{} in {files} file{}",
            plural(tests_total),
            plural(files as u64)
        )),
    }
    msg
}

/// Expands every pattern; a pattern that gives no file adds a reason. Files found by more
/// than one pattern are read once.
fn expand_all(
    base: &Path,
    patterns: &[&str],
    what: &str,
    reasons: &mut Vec<String>,
) -> Vec<(PathBuf, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for pattern in patterns {
        let literal = !pattern.contains(['*', '?', '[']);
        let full = if Path::new(pattern).is_absolute() {
            (*pattern).to_owned()
        } else {
            let base = glob::Pattern::escape(&base.to_string_lossy());
            format!("{}/{pattern}", base.trim_end_matches('/'))
        };
        let mut matched = 0usize;
        match glob::glob(&full) {
            Ok(paths) => {
                for entry in paths {
                    match entry {
                        Ok(path) if path.is_dir() => {}
                        Ok(path) => {
                            matched += 1;
                            if seen.insert(path.clone()) {
                                let display = path
                                    .strip_prefix(base)
                                    .map(|p| p.display().to_string())
                                    .unwrap_or_else(|_| path.display().to_string());
                                out.push((path, display));
                            }
                        }
                        Err(e) => reasons.push(format!(
                            "{what} pattern \"{pattern}\": cannot read {}: {}",
                            e.path().display(),
                            e.error()
                        )),
                    }
                }
            }
            // Validated before; only a base directory with odd characters gets here.
            Err(e) => reasons.push(format!(
                "{what} pattern \"{pattern}\" is invalid: {}",
                e.msg
            )),
        }
        if matched == 0 {
            let full_path = base.join(pattern);
            reasons.push(if literal && full_path.is_dir() {
                format!("{what} path \"{pattern}\" is a directory; give a file or a pattern such as \"{pattern}/**/*.xml\"")
            } else if literal {
                format!("{what} file \"{pattern}\" not found (in {})", base.display())
            } else {
                format!("{what} pattern \"{pattern}\" matched no file (in {})", base.display())
            });
        }
    }
    out
}
