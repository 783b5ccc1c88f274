//! The gate's verdict on real fixtures and on the edge cases other reporters get wrong:
//! zero tests selected, crashed hosts, truncated or empty files, missing scans.
// Helpers outside #[test] functions unwrap too; clippy's test allowance does not see them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use expedite::gate::{
    AnnotationLevel, GateError, GateReport, GateSettings, Outcome, SecurityThreshold, Verdict,
    evaluate,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-results");

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Settings over the fixture directory with a waiver, so that tests about test results are
/// not failed by the (separately tested) missing security scan.
fn settings(results: &[&str], filter: Option<&str>) -> GateSettings {
    GateSettings {
        results: results.iter().map(|s| s.to_string()).collect(),
        filter: filter.map(str::to_owned),
        security_waiver: Some("scan covered by another job in these tests".to_owned()),
        base_dir: PathBuf::from(FIXTURES),
        ..GateSettings::default()
    }
}

fn run(s: &GateSettings) -> GateReport {
    evaluate(s).unwrap_or_else(|e| panic!("settings rejected: {e}"))
}

fn has_reason(report: &GateReport, text: &str) -> bool {
    report.reasons.iter().any(|r| r.contains(text))
}

#[track_caller]
fn assert_fails_with(report: &GateReport, text: &str) {
    assert_eq!(report.verdict, Verdict::Fail, "{:?}", report.reasons);
    assert!(
        has_reason(report, text),
        "no reason containing {text:?} in {:#?}",
        report.reasons
    );
}

#[track_caller]
fn assert_passes(report: &GateReport) {
    assert_eq!(report.verdict, Verdict::Pass, "{:#?}", report.reasons);
    assert!(report.reasons.is_empty());
}

fn tempdir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

fn in_dir(dir: &Path, results: &[&str], filter: Option<&str>) -> GateSettings {
    GateSettings {
        base_dir: dir.to_path_buf(),
        ..settings(results, filter)
    }
}

// ---- critical selection ----

#[test]
fn filter_matching_zero_tests_fails_and_names_the_categories_present() {
    let r = run(&settings(
        &["trx-mstest-categories-failures.trx"],
        Some("Category=Critcal"),
    ));
    assert_fails_with(&r, "only 0 critical tests ran, at least 1 required");
    assert_fails_with(&r, "selected 0 of 7 tests in 1 file: check the filter");
    assert_fails_with(&r, "categories present: Fail, Skip");
    assert_eq!(r.critical_total, 0);
    assert_eq!(r.tests_total, 7);
    // The 3 failures are not critical, so only the zero-tests reason is given.
    assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
    assert_eq!(r.non_critical_failed, 3);
}

#[test]
fn only_non_critical_failures_pass() {
    let r = run(&settings(
        &["trx-mstest-categories-failures.trx"],
        Some("Name=PassingTest|Name=AttachImage"),
    ));
    assert_passes(&r);
    assert_eq!(
        (r.critical_total, r.critical_passed, r.critical_failed),
        (2, 2, 0)
    );
    assert_eq!(r.non_critical_failed, 3);
    assert!(r.failures.iter().all(|f| !f.critical));
    // Non-critical failures are warnings, never errors.
    let annotations = r.annotations();
    assert!(
        annotations
            .iter()
            .all(|a| a.level == AnnotationLevel::Warning)
    );
    assert!(
        annotations
            .iter()
            .any(|a| a.title.contains("Non-critical test failed"))
    );
}

#[test]
fn a_critical_failure_fails_with_its_details() {
    let r = run(&settings(
        &["trx-mstest-categories-failures.trx"],
        Some("Category=Fail"),
    ));
    assert_fails_with(&r, "1 critical test failed (1 failed)");
    assert_eq!((r.critical_total, r.critical_failed), (1, 1));
    let failure = r.failures.iter().find(|f| f.critical).unwrap();
    assert_eq!(
        failure.test,
        "SampleProject.MSTest.TestServiceTests.FailTest"
    );
    assert_eq!(failure.outcome, Outcome::Failed);
    assert_eq!(failure.result_file, "trx-mstest-categories-failures.trx");
    let annotations = r.annotations();
    assert_eq!(annotations[0].level, AnnotationLevel::Error);
    assert!(annotations.iter().any(|a| a.level == AnnotationLevel::Error
        && a.title.contains("FailTest")
        && !a.message.is_empty()));
}

#[test]
fn skipped_critical_tests_do_not_satisfy_the_minimum() {
    let r = run(&settings(
        &["trx-mstest-categories-failures.trx"],
        Some("Category=Skip"),
    ));
    assert_fails_with(&r, "only 0 critical tests ran");
    assert_fails_with(&r, "(1 more selected but skipped)");
    assert_eq!(
        (r.critical_total, r.critical_skipped, r.critical_passed),
        (1, 1, 0)
    );
    assert!(r.notes.iter().any(|n| n.contains("did not run")));
}

#[test]
fn minimum_above_what_ran_fails() {
    let mut s = settings(&["trx-xunitv3-passed-blame-warning.trx"], None);
    s.min_critical_tests = 3;
    assert_fails_with(&run(&s), "only 2 critical tests ran, at least 3 required");
    s.min_critical_tests = 2;
    assert_passes(&run(&s));
}

#[test]
fn nunit_empty_passed_run_fails_on_the_minimum() {
    let r = run(&settings(&["nunit3-empty-run-passed.xml"], None));
    assert_fails_with(&r, "only 0 critical tests ran");
    assert_eq!(r.reasons.len(), 1);
}

#[test]
fn nunit_category_on_fixture_selects_its_tests() {
    let r = run(&settings(
        &["nunit3-console-categories-failure.xml"],
        Some("Category=Automated Testing"),
    ));
    assert_fails_with(&r, "1 critical test failed");
    assert_eq!((r.critical_total, r.critical_passed), (4, 3));
}

#[test]
fn nunit_timeouts_and_errors_are_critical_failures() {
    let r = run(&settings(
        &["nunit3-console-failures-skipped.xml"],
        Some("FullyQualifiedName~CalculatorTests"),
    ));
    assert_fails_with(
        &r,
        "5 critical tests failed (2 failed, 2 error, 1 timed out)",
    );
    assert_eq!(r.critical_skipped, 1);
}

// ---- run-level problems ----

#[test]
fn crashed_test_host_fails_even_when_other_files_pass() {
    let r = run(&settings(
        &[
            "trx-xunitv3-passed-blame-warning.trx",
            "trx-testhost-exited-error.trx",
        ],
        None,
    ));
    assert_fails_with(
        &r,
        "trx-testhost-exited-error.trx: the test host failed: Testhost process exited",
    );
    assert_eq!(r.critical_passed, 2);
}

#[test]
fn aborted_trx_run_fails() {
    let r = run(&settings(&["trx-mstest-hostcrash-error.trx"], None));
    assert_fails_with(&r, "the test run ended with outcome Error");
    assert_fails_with(&r, "Test host process exited unexpectedly");
    assert_fails_with(&r, "1 critical test failed (1 aborted)");
}

#[test]
fn green_trx_with_blame_warning_passes() {
    assert_passes(&run(&settings(
        &["trx-xunitv3-passed-blame-warning.trx"],
        None,
    )));
}

#[test]
fn active_run_aborted_message_fails_a_run_whose_tests_passed() {
    let trx = br#"<?xml version="1.0" encoding="utf-8"?>
<TestRun id="1" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
  <Results>
    <UnitTestResult testId="a" testName="Pays" outcome="Passed" />
  </Results>
  <TestDefinitions>
    <UnitTest name="Pays" id="a"><TestMethod className="Shop.Tests" name="Pays" /></UnitTest>
  </TestDefinitions>
  <ResultSummary outcome="Completed">
    <Counters total="1" executed="1" passed="1" failed="0" />
    <RunInfos>
      <RunInfo computerName="ci" outcome="Error" timestamp="2024-01-01T00:00:00Z">
        <Text>The active test run was aborted. Reason: Test host process crashed : Stack overflow.</Text>
      </RunInfo>
    </RunInfos>
  </ResultSummary>
</TestRun>"#;
    let dir = tempdir_with(&[("r.trx", trx)]);
    let r = run(&in_dir(dir.path(), &["*.trx"], None));
    assert_fails_with(
        &r,
        "r.trx: the test host failed: The active test run was aborted",
    );
    assert_eq!(r.critical_passed, 1);
}

#[test]
fn trx_failed_run_without_failed_tests_fails() {
    let trx = br#"<TestRun><Results><UnitTestResult testId="a" testName="A" outcome="Passed"/></Results>
<ResultSummary outcome="Failed"><Counters total="1" passed="1" failed="0"/></ResultSummary></TestRun>"#;
    let dir = tempdir_with(&[("r.trx", trx)]);
    let r = run(&in_dir(dir.path(), &["r.trx"], None));
    assert_fails_with(&r, "marked Failed but no test failed");
}

#[test]
fn trx_without_result_summary_fails() {
    let trx = br#"<TestRun><Results><UnitTestResult testId="a" testName="A" outcome="Passed"/></Results></TestRun>"#;
    let dir = tempdir_with(&[("r.trx", trx)]);
    assert_fails_with(
        &run(&in_dir(dir.path(), &["r.trx"], None)),
        "no <ResultSummary>",
    );
}

#[test]
fn jest_suite_that_failed_to_run_fails_whatever_the_filter() {
    let r = run(&settings(
        &[
            "junit-jest-junit-suite-failed-to-run.xml",
            "trx-xunitv3-passed-blame-warning.trx",
        ],
        Some("FullyQualifiedName~SharpClaw"),
    ));
    assert_fails_with(&r, "test suite \"libs/foo.spec.ts\" failed to run");
    assert_fails_with(&r, "test suite \"libs/bar.spec.ts\" failed to run");
    assert_eq!(r.critical_passed, 2);
}

#[test]
fn nunit_one_time_setup_failure_and_cancelled_run_fail() {
    let xml = br#"<test-run id="0" result="Failed" label="Cancelled" total="1" passed="1" failed="0">
  <test-suite type="TestFixture" name="Payments" fullname="Shop.Payments" result="Failed" site="TearDown">
    <failure><message><![CDATA[OneTimeTearDown: database still locked]]></message></failure>
    <test-case name="Pays" fullname="Shop.Payments.Pays" result="Passed" />
  </test-suite>
</test-run>"#;
    let dir = tempdir_with(&[("TestResult.xml", xml)]);
    let r = run(&in_dir(dir.path(), &["TestResult.xml"], None));
    assert_fails_with(
        &r,
        "\"Shop.Payments\" failed in its one-time teardown: OneTimeTearDown: database still locked",
    );
    assert_fails_with(&r, "the test run was cancelled");
    assert_eq!(r.critical_passed, 1);
}

// ---- files that are not there or not whole ----

fn half_of(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(name)).unwrap();
    bytes[..bytes.len() / 2].to_vec()
}

#[test]
fn truncated_files_of_every_format_fail_with_the_offset() {
    for (name, expect) in [
        (
            "junit-gotestsum-failures.xml",
            "truncated: the file ends at byte",
        ),
        ("trx-xunit-failures.trx", "truncated: the file ends at byte"),
        (
            "nunit3-console-failures-skipped.xml",
            "truncated: the file ends at byte",
        ),
        ("sarif-codeql-csharp.sarif", "not valid JSON at line"),
    ] {
        let dir = tempdir_with(&[(name, &half_of(name))]);
        let mut s = in_dir(dir.path(), &["*.xml", "*.trx"], None);
        s.results.retain(|p| name.ends_with(&p[1..]));
        if name.ends_with(".sarif") {
            // The SARIF is the scan; use a passing result file beside it.
            s.results = vec![
                fixture("trx-xunitv3-passed-blame-warning.trx")
                    .display()
                    .to_string(),
            ];
            s.sarif = vec![name.to_owned()];
            s.security_waiver = None;
        }
        let r = run(&s);
        assert_fails_with(&r, expect);
        assert_fails_with(&r, name);
    }
}

#[test]
fn a_file_cut_inside_a_tag_is_truncated_too() {
    let dir = tempdir_with(&[(
        "r.xml",
        b"<testsuites><testsuite name=\"a\"><testcase name=\"x\" cla",
    )]);
    let r = run(&in_dir(dir.path(), &["r.xml"], None));
    assert_fails_with(&r, "r.xml: truncated: the file ends at byte");
}

#[test]
fn empty_and_whitespace_files_fail() {
    let dir = tempdir_with(&[("empty.xml", b""), ("blank.trx", b" \r\n\t\n")]);
    let r = run(&in_dir(dir.path(), &["empty.xml", "blank.trx"], None));
    assert_fails_with(&r, "empty.xml: file is empty (0 bytes");
    assert_fails_with(&r, "blank.trx: file is empty (5 bytes");
}

#[test]
fn patterns_matching_nothing_and_missing_files_fail() {
    let r = run(&settings(&["does-not-exist/**/*.xml", "missing.trx"], None));
    assert_fails_with(
        &r,
        "test results pattern \"does-not-exist/**/*.xml\" matched no file",
    );
    assert_fails_with(&r, "test results file \"missing.trx\" not found");
}

#[test]
fn a_directory_given_as_results_is_explained() {
    let dir = tempdir_with(&[(
        "out/r.xml",
        b"<testsuite><testcase name=\"a\"/></testsuite>",
    )]);
    let r = run(&in_dir(dir.path(), &["out"], None));
    assert_fails_with(
        &r,
        "\"out\" is a directory; give a file or a pattern such as \"out/**/*.xml\"",
    );
    let r = run(&in_dir(dir.path(), &["out/**/*.xml"], None));
    assert_passes(&r);
}

#[test]
fn unparsable_and_unknown_files_fail() {
    let dir = tempdir_with(&[
        (
            "bad.xml",
            b"<testsuites><testsuite></testcase></testsuites>",
        ),
        ("page.xml", b"<html><body>not results</body></html>"),
        (
            "entity.xml",
            b"<testsuite><testcase name=\"&nbsp;\"/></testsuite>",
        ),
    ]);
    let r = run(&in_dir(dir.path(), &["*.xml"], None));
    assert_fails_with(&r, "bad.xml: not well-formed XML at byte 23");
    assert_fails_with(&r, "page.xml: unknown format: XML root element <html>");
    assert_fails_with(&r, "entity.xml: not well-formed XML");
}

#[test]
fn sarif_given_as_test_results_is_refused() {
    let r = run(&settings(&["sarif-trivy-image.sarif"], None));
    assert_fails_with(
        &r,
        "sarif-trivy-image.sarif: is SARIF, but a test result file",
    );
}

#[test]
fn files_matched_twice_are_read_once() {
    let r = run(&settings(
        &["trx-xunitv3-*.trx", "trx-xunitv3-passed-blame-warning.trx"],
        None,
    ));
    assert_passes(&r);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.critical_passed, 2);
}

// ---- security scan ----

fn with_sarif(sarif: &[&str], threshold: Option<&str>) -> GateSettings {
    let mut s = settings(&["trx-xunitv3-passed-blame-warning.trx"], None);
    s.sarif = sarif.iter().map(|s| s.to_string()).collect();
    s.security_waiver = None;
    if let Some(t) = threshold {
        s.security_threshold = t.parse::<SecurityThreshold>().unwrap();
    }
    s
}

#[test]
fn sarif_above_the_default_threshold_fails() {
    let r = run(&with_sarif(&["sarif-codeql-javascript.sarif"], None));
    // 14 errors, plus 13 warnings at severity 7.5 or 9.8; 2 warnings at 6.1 are below.
    assert_fails_with(&r, "27 security findings at or above the threshold");
    assert_eq!((r.security_findings, r.security_findings_below), (27, 2));
    assert_eq!(r.findings.len(), 27);
    assert!(r.findings.iter().all(|f| f.at_or_above_threshold));
    let annotations = r.annotations();
    let finding = annotations
        .iter()
        .find(|a| a.title.contains("js/hardcoded-credentials"))
        .unwrap();
    assert_eq!(finding.level, AnnotationLevel::Error);
    assert!(finding.file.is_some() && finding.line.is_some());
}

#[test]
fn sarif_threshold_is_configurable() {
    let r = run(&with_sarif(
        &["sarif-codeql-javascript.sarif"],
        Some("error"),
    ));
    assert_eq!(r.security_findings, 14);
    let r = run(&with_sarif(&["sarif-codeql-javascript.sarif"], Some("9.0")));
    assert_eq!(r.security_findings, 3);
    // Trivy: one secret at error / 8.0, six notes at 2.0.
    let r = run(&with_sarif(&["sarif-trivy-image.sarif"], None));
    assert_fails_with(&r, "1 security finding at or above");
    let r = run(&with_sarif(&["sarif-trivy-image.sarif"], Some("critical")));
    assert_passes(&r);
    assert_eq!((r.security_findings, r.security_findings_below), (0, 7));
}

#[test]
fn sarif_below_the_threshold_passes() {
    // Both C# findings are level error by rule default, severity 6.1.
    let r = run(&with_sarif(&["sarif-codeql-csharp.sarif"], Some("high")));
    assert_passes(&r);
    assert_eq!(r.security_findings_below, 2);
    let r = run(&with_sarif(&["sarif-codeql-csharp.sarif"], None));
    assert_fails_with(&r, "2 security findings");
}

#[test]
fn missing_security_scan_fails_unless_waived() {
    let mut s = settings(&["trx-xunitv3-passed-blame-warning.trx"], None);
    s.security_waiver = None;
    assert_fails_with(
        &run(&s),
        "no SARIF security scan was given: the security scan is required",
    );

    s.security_waiver = Some("CodeQL outage INC-42, approved by @lead".to_owned());
    let r = run(&s);
    assert_passes(&r);
    assert_eq!(
        r.security_waiver.as_deref(),
        Some("CodeQL outage INC-42, approved by @lead")
    );
    assert!(
        r.summary_markdown()
            .contains("**Waived**: `CodeQL outage INC-42, approved by @lead`")
    );
    assert!(
        r.annotations()
            .iter()
            .any(|a| a.level == AnnotationLevel::Warning && a.message.contains("waived"))
    );

    s.security_waiver = Some("   ".to_owned());
    assert!(matches!(evaluate(&s), Err(GateError::EmptyWaiver)));
}

#[test]
fn a_waiver_does_not_hide_findings_of_a_given_scan() {
    let mut s = with_sarif(&["sarif-trivy-image.sarif"], None);
    s.security_waiver = Some("scanner flaky".to_owned());
    let r = run(&s);
    assert_fails_with(&r, "1 security finding");
    assert!(r.security_waiver.is_none());
}

#[test]
fn a_waived_scan_pattern_that_matches_nothing_passes() {
    let mut s = with_sarif(&["scan/*.sarif"], None);
    assert_fails_with(&run(&s), "SARIF pattern \"scan/*.sarif\" matched no file");
    s.security_waiver = Some("scan job skipped for the hotfix, approved by @sec".to_owned());
    assert_passes(&run(&s));
}

#[test]
fn sarif_runs_that_did_not_complete_fail() {
    let dir = tempdir_with(&[
        ("noresults.sarif", br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Scanner"}}}]}"#),
        (
            "failed.sarif",
            br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Other"}},"invocations":[{"executionSuccessful":false}],"results":[]}]}"#,
        ),
        ("old.sarif", br#"{"version":"1.0.0","runLogs":[]}"#),
        ("norun.sarif", br#"{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[]}"#),
    ]);
    let mut s = with_sarif(&["*.sarif"], None);
    s.results = vec![
        fixture("trx-xunitv3-passed-blame-warning.trx")
            .display()
            .to_string(),
    ];
    s.base_dir = dir.path().to_path_buf();
    let r = run(&s);
    assert_fails_with(&r, "noresults.sarif: Scanner run has no \"results\" array");
    assert_fails_with(&r, "failed.sarif: Other reports executionSuccessful: false");
    assert_fails_with(
        &r,
        "old.sarif: unknown format: SARIF version \"1.0.0\" is not supported",
    );
    assert_fails_with(&r, "norun.sarif: the SARIF log has no runs");
}

#[test]
fn suppressed_and_non_failing_sarif_results_are_not_findings() {
    let sarif = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"S","rules":[{"id":"R1","defaultConfiguration":{"level":"error"}}]}},
      "results":[
        {"ruleId":"R1","message":{"text":"suppressed"},"suppressions":[{"kind":"inSource"}]},
        {"ruleId":"R1","message":{"text":"rejected suppression"},"suppressions":[{"kind":"external","status":"rejected"}]},
        {"ruleId":"R1","kind":"pass","message":{"text":"passed check"}},
        {"ruleId":"R2","message":{"text":"unknown rule: warning by default"},"properties":{"security-severity":6.9}}
      ]}]}"#;
    let dir = tempdir_with(&[("s.sarif", sarif)]);
    let mut s = with_sarif(&["s.sarif"], None);
    s.results = vec![
        fixture("trx-xunitv3-passed-blame-warning.trx")
            .display()
            .to_string(),
    ];
    s.base_dir = dir.path().to_path_buf();
    let r = run(&s);
    assert_fails_with(&r, "1 security finding at or above");
    assert_eq!(r.findings[0].message, "rejected suppression");
    assert_eq!(r.security_findings_below, 1);
}

// ---- settings errors ----

#[test]
fn invalid_settings_are_errors_not_verdicts() {
    let s = settings(&["*.trx"], Some("Category=A|(Name=B"));
    match evaluate(&s) {
        Err(GateError::Filter(e)) => {
            assert_eq!(e.column, 12);
            assert!(
                e.to_string().contains("column 12: '(' is never closed"),
                "{e}"
            );
        }
        other => panic!("expected a filter error, got {other:?}"),
    }
    let s = settings(&["results/[.xml"], None);
    let err = evaluate(&s).unwrap_err();
    assert!(matches!(err, GateError::Glob { .. }), "{err}");
    assert!(err.to_string().contains("results/[.xml"));
    assert!(matches!(
        evaluate(&settings(&[], None)),
        Err(GateError::NoResults)
    ));
    assert!(matches!(
        evaluate(&settings(&["  "], None)),
        Err(GateError::NoResults)
    ));
    let mut s = settings(&["*.trx"], None);
    s.junit_category_pattern = Some("[]".to_owned());
    assert!(matches!(evaluate(&s), Err(GateError::CategoryPattern(_))));
}

#[test]
fn blank_filter_means_every_test_is_critical() {
    let r = run(&settings(&["junit-pytest-failures.xml"], Some("  ")));
    assert_eq!(r.filter, None);
    assert_eq!(r.critical_total, 3);
    assert_fails_with(&r, "2 critical tests failed");
}

// ---- JUnit categories ----

const JUNIT_CATEGORIES: &[u8] = br#"<?xml version="1.0"?>
<testsuites>
  <testsuite name="payments">
    <properties><property name="category" value="Payment"/></properties>
    <testcase classname="tests.test_pay" name="test_charge" file="tests/test_pay.py" line="12">
      <properties><property name="Category" value="Critical"/><property name="owner" value="team-a"/></properties>
    </testcase>
    <testcase classname="tests.test_pay" name="test_refund [Critical]"><failure message="boom">trace</failure></testcase>
    <testcase classname="tests.test_pay" name="test_notes @smoke"><skipped/></testcase>
  </testsuite>
  <testsuite name="other">
    <testcase classname="tests.test_misc" name="test_misc"><error message="crash"/></testcase>
  </testsuite>
</testsuites>"#;

#[test]
fn junit_categories_from_properties_suites_and_names() {
    let dir = tempdir_with(&[("junit.xml", JUNIT_CATEGORIES)]);
    let r = run(&in_dir(
        dir.path(),
        &["junit.xml"],
        Some("Category=Critical"),
    ));
    assert_fails_with(&r, "1 critical test failed");
    assert_eq!((r.critical_total, r.critical_passed), (2, 1));
    let f = r.failures.iter().find(|f| f.critical).unwrap();
    assert_eq!(f.test, "tests.test_pay.test_refund [Critical]");
    assert_eq!(f.message, "boom");

    // The suite's category is inherited by its three test cases.
    let r = run(&in_dir(
        dir.path(),
        &["junit.xml"],
        Some("Category=Payment&Category!=Critical"),
    ));
    assert_eq!((r.critical_total, r.critical_skipped), (1, 1));

    // Traits from test-case properties.
    let r = run(&in_dir(dir.path(), &["junit.xml"], Some("owner=team-a")));
    assert_passes(&r);
    assert_eq!(r.critical_total, 1);

    // A custom name pattern; the default one no longer applies.
    let mut s = in_dir(
        dir.path(),
        &["junit.xml"],
        Some("Category=smoke|Category=Critical"),
    );
    s.junit_category_pattern = Some("@{}".to_owned());
    let r = run(&s);
    assert_eq!(r.critical_total, 2, "{:?}", r.failures);
    s.junit_category_pattern = Some(String::new());
    s.filter = Some("Category=smoke".to_owned());
    assert_eq!(run(&s).critical_total, 0);
}

#[test]
fn junit_failure_annotation_points_at_the_source() {
    let xml = br#"<testsuite><testcase classname="t" name="a" file="tests/test_a.py" line="7"><failure message="bad">x</failure></testcase></testsuite>"#;
    let dir = tempdir_with(&[("j.xml", xml)]);
    let r = run(&in_dir(dir.path(), &["j.xml"], None));
    let a = r
        .annotations()
        .into_iter()
        .find(|a| a.title.contains("t.a"))
        .unwrap();
    assert_eq!(
        (a.file.as_deref(), a.line),
        (Some("tests/test_a.py"), Some(7))
    );
    assert_eq!(a.message, "bad");
}

// ---- volume and presentation ----

#[test]
fn failure_lists_are_capped_and_the_rest_counted() {
    let mut xml = String::from("<testsuite name=\"big\">");
    for i in 0..1000 {
        xml.push_str(&format!(
            "<testcase classname=\"c\" name=\"t{i}\"><failure message=\"m{i}\"/></testcase>"
        ));
    }
    xml.push_str("</testsuite>");
    let dir = tempdir_with(&[("big.xml", xml.as_bytes())]);
    let r = run(&in_dir(dir.path(), &["big.xml"], None));
    assert_eq!(r.critical_failed, 1000);
    assert_eq!(r.failures.len(), 200);
    assert_eq!(r.failures_omitted, 800);
    assert!(
        r.summary_markdown()
            .contains("…and 800 more failures not listed.")
    );
}

#[test]
fn summary_is_a_table_with_untrusted_text_escaped() {
    let xml = br#"<testsuite><testcase classname="c" name="a|b &lt;img src=x&gt;"><failure message="line1&#10;line2 | pipe"/></testcase></testsuite>"#;
    let dir = tempdir_with(&[("j.xml", xml)]);
    let r = run(&in_dir(dir.path(), &["j.xml"], Some("Name~a")));
    let md = r.summary_markdown();
    assert!(md.starts_with("## ❌ Gate failed"), "{md}");
    assert!(md.contains("| Critical failed | 1 |"), "{md}");
    // Untrusted text is shown as written inside code spans (ADR 9).
    assert!(md.contains("`c.a\\|b <img src=x>`"), "{md}");
    assert!(md.contains("line1<br>`line2 \\| pipe`"), "{md}");
    assert!(md.contains("`Name~a`"), "{md}");
    assert!(
        md.contains("| j.xml | JUnit XML | 1 | 0 | 1 | 0 | 1 |"),
        "{md}"
    );
}

#[test]
fn a_passing_gate_says_so() {
    let r = run(&settings(
        &["trx-xunitv3-passed-blame-warning.trx"],
        Some("FullyQualifiedName~ControlUi"),
    ));
    assert_passes(&r);
    assert_eq!(r.critical_passed, 2);
    let md = r.summary_markdown();
    assert!(md.starts_with("## ✅ Gate passed"), "{md}");
    assert!(
        r.annotations()
            .iter()
            .all(|a| a.level == AnnotationLevel::Warning)
    );
}

// ---- TRX joins ----

const TRX_DEFINITIONS: &str = r#"<TestDefinitions>
    <UnitTest name="Pays" id="11111111-1111-1111-1111-111111111111">
      <TestCategory><TestCategoryItem TestCategory="Critical" /></TestCategory>
      <Properties><Property><Key>Owner</Key><Value>payments</Value></Property></Properties>
      <TestMethod className="Shop.PaymentTests" name="Pays" />
    </UnitTest>
    <UnitTest name="Refunds" id="refund-test">
      <TestMethod className="Shop.PaymentTests" name="Refunds" />
    </UnitTest>
  </TestDefinitions>"#;

const TRX_RESULTS: &str = r#"<Results>
    <UnitTestResult testId="11111111-1111-1111-1111-111111111111" testName="Pays (row 1)" outcome="Passed" />
    <UnitTestResult testId="11111111111111111111111111111111" testName="Pays (row 2)" outcome="Failed">
      <Output><ErrorInfo><Message>row 2 &lt;broken&gt;</Message></ErrorInfo></Output>
    </UnitTestResult>
    <UnitTestResult testId="refund-test" testName="Refunds" outcome="Passed" />
    <UnitTestResult testId="no-definition" testName="Orphan" outcome="Passed" />
    <UnitTestResult testName="NoId" outcome="Timeout" />
  </Results>"#;

fn trx(body: &str) -> Vec<u8> {
    format!(
        "<TestRun xmlns=\"http://microsoft.com/schemas/VisualStudio/TeamTest/2010\">{body}<ResultSummary outcome=\"Failed\"><Counters total=\"5\" failed=\"1\" timeout=\"1\" /></ResultSummary></TestRun>"
    )
    .into_bytes()
}

#[test]
fn trx_results_join_definitions_in_either_order() {
    for (name, body) in [
        ("new-order.trx", format!("{TRX_RESULTS}{TRX_DEFINITIONS}")),
        ("old-order.trx", format!("{TRX_DEFINITIONS}{TRX_RESULTS}")),
    ] {
        let dir = tempdir_with(&[(name, &trx(&body))]);
        // Both results of the data-driven test carry the category and trait of its
        // definition, whichever came first in the file.
        let r = run(&in_dir(
            dir.path(),
            &[name],
            Some("Category=Critical&Owner=payments"),
        ));
        assert_eq!(
            (r.critical_total, r.critical_passed, r.critical_failed),
            (2, 1, 1),
            "{name}"
        );
        let f = r.failures.iter().find(|f| f.critical).unwrap();
        // The data row that failed is named, not just the method.
        assert_eq!(f.test, "Shop.PaymentTests.Pays (row 2)", "{name}");
        assert_eq!(f.message, "row 2 <broken>", "{name}");

        // Results without a definition (or an id) still count, under their test name.
        let r = run(&in_dir(dir.path(), &[name], Some("Name=Orphan|Name=NoId")));
        assert_eq!((r.critical_total, r.critical_passed), (2, 1), "{name}");
        assert_fails_with(&r, "1 critical test failed (1 timed out)");
        assert_eq!(r.tests_total, 5, "{name}");

        let r = run(&in_dir(
            dir.path(),
            &[name],
            Some("FullyQualifiedName=Shop.PaymentTests.Refunds"),
        ));
        assert_passes(&r);
    }
}

#[test]
fn many_broken_files_keep_the_summary_small() {
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| (format!("r{i:03}.xml"), Vec::new()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let dir = tempdir_with(&refs);
    let r = run(&in_dir(dir.path(), &["*.xml"], None));
    // 300 empty files plus "no critical test ran".
    assert_eq!(r.reasons.len(), 301);
    let md = r.summary_markdown();
    assert!(md.contains("…and 251 more reasons"), "{md}");
    assert!(md.contains("…and 200 more files."), "{md}");
    assert!(md.len() < 100_000, "{}", md.len());
}

// ---- every part of the filter must match something ----

/// NUnit 3 results with categories and traits the sweep's filters name.
fn generated_nunit(dir: &Path) -> PathBuf {
    let tests = [
        ("Shop.Payments.Charge", "Critical", "1", "team-a"),
        ("Shop.Payments.Refund", "Payment", "1", "team-a"),
        ("Shop.Orders.Place", "Critical", "2", "team-b"),
        ("Shop.Orders.Slowly", "Slow", "2", "team-b"),
    ];
    let mut cases = String::new();
    for (fqn, category, priority, owner) in tests {
        let (class, name) = fqn.rsplit_once('.').unwrap();
        cases.push_str(&format!(
            r#"<test-case id="{fqn}" name="{name}" fullname="{fqn}" classname="{class}" result="Passed"><properties><property name="Category" value="{category}" /><property name="Priority" value="{priority}" /><property name="Owner" value="{owner}" /></properties></test-case>"#
        ));
    }
    let xml = format!(
        r#"<test-run id="2" testcasecount="4" total="4" passed="4" failed="0" inconclusive="0" skipped="0" result="Passed"><test-suite type="Assembly" name="Shop.Tests.dll" result="Passed">{cases}</test-suite></test-run>"#
    );
    let path = dir.join("generated-nunit.xml");
    std::fs::write(&path, xml).unwrap();
    path
}

/// A misspelling: two neighbouring letters swapped.
fn misspell(word: &str) -> String {
    let mut c: Vec<char> = word.chars().collect();
    if c.len() < 2 {
        return format!("{word}0");
    }
    let i = c.len() / 2;
    c.swap(i - 1, i);
    c.into_iter().collect()
}

#[test]
fn a_misspelt_property_or_value_in_any_alternative_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated_nunit(dir.path());
    let file = file.to_string_lossy().into_owned();
    // Each alternative as (property, op, value) conditions joined by '&'.
    let alternatives: Vec<Vec<(&str, &str, &str)>> = vec![
        vec![("Category", "=", "Critical")],
        vec![("Category", "=", "Payment"), ("Priority", "=", "1")],
        vec![("Owner", "=", "team-b"), ("Category", "!=", "Slow")],
        vec![("Name", "~", "Refund")],
    ];
    let render = |alts: &[Vec<(String, &str, String)>]| {
        alts.iter()
            .map(|a| {
                a.iter()
                    .map(|(p, o, v)| format!("{p}{o}{v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    let owned: Vec<Vec<(String, &str, String)>> = alternatives
        .iter()
        .map(|a| {
            a.iter()
                .map(|(p, o, v)| (p.to_string(), *o, v.to_string()))
                .collect()
        })
        .collect();
    // The filter as meant passes, and says what each alternative selected.
    let good = render(&owned);
    let r = run(&GateSettings {
        results: vec![file.clone()],
        ..settings(&[], Some(&good))
    });
    assert_passes(&r);
    assert_eq!(r.filter_alternatives.len(), 4);
    assert!(
        r.filter_alternatives.iter().all(|(_, n)| *n > 0),
        "{:?}",
        r.filter_alternatives
    );
    let mut tried = 0;
    for (i, alt) in owned.iter().enumerate() {
        for (j, (p, o, v)) in alt.iter().enumerate() {
            // Name, FullyQualifiedName and ClassName are built into every
            // test: only their values can be misspelt. Category is a trait
            // like any other, and its name is the issue's typo.
            let mut kinds = vec![("value", p.clone(), misspell(v))];
            if !matches!(p.as_str(), "Name" | "FullyQualifiedName" | "ClassName") {
                kinds.push(("property", misspell(p), v.clone()));
            }
            for (kind, p2, v2) in kinds {
                let mut bad = owned.clone();
                bad[i][j] = (p2.clone(), *o, v2.clone());
                let filter = render(&bad);
                let r = run(&GateSettings {
                    results: vec![file.clone()],
                    ..settings(&[], Some(&filter))
                });
                tried += 1;
                let part = format!("{p2}{o}{v2}");
                assert_eq!(
                    r.verdict,
                    Verdict::Fail,
                    "{kind} misspelt in `{part}` of {filter}: passed"
                );
                assert!(
                    r.reasons.iter().any(|x| x.contains(&part)),
                    "{kind} misspelt in `{part}` of {filter}: {:?}",
                    r.reasons
                );
                // Marked optional, that part no longer fails the gate.
                let r = run(&GateSettings {
                    results: vec![file.clone()],
                    filter_optional: vec![part.clone()],
                    ..settings(&[], Some(&filter))
                });
                assert!(
                    !r.reasons.iter().any(|x| x.contains(&format!("`{part}`"))),
                    "{part} optional: {:?}",
                    r.reasons
                );
            }
        }
    }
    // Six conditions, five of them on traits whose names can be misspelt too.
    assert_eq!(tried, 11);
}

#[test]
fn the_issue_example_names_the_typo_and_its_nearest_property() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated_nunit(dir.path()).to_string_lossy().into_owned();
    let r = run(&GateSettings {
        results: vec![file],
        ..settings(&[], Some("Categroy=Critical|Category=Payment"))
    });
    assert_fails_with(&r, "`Categroy=Critical`");
    assert_fails_with(&r, "no test carries a property named 'Categroy'");
    assert_fails_with(&r, "did you mean Category?");
}

#[test]
fn an_optional_entry_must_be_part_of_the_filter() {
    let e = evaluate(&GateSettings {
        filter_optional: vec!["Category=Paymnet".into()],
        ..settings(
            &["trx-mstest-categories-failures.trx"],
            Some("Category=Fail|Category=Payment"),
        )
    })
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(
            "\"Category=Paymnet\" in critical-filter-optional is not an alternative or condition"
        ) && text.contains("Category=Payment"),
        "{text}"
    );
}

#[test]
fn trx_counters_that_disagree_with_the_listed_results_fail_either_way() {
    // (listed passed, listed failed, counters total, counters failed)
    let cases: [(u64, u64, u64, u64); 8] = [
        (3, 0, 6, 3), // the issue's case: counters say 3 failed, only passes listed
        (3, 0, 3, 1), // a failure counted, none listed
        (2, 1, 3, 0), // a failure listed, none counted
        (2, 1, 3, 2), // more counted than listed
        (3, 0, 5, 0), // results missing: total counts more
        (3, 0, 2, 0), // more listed than counted
        (3, 0, 3, 0), // agreeing: passes
        (2, 1, 3, 1), // agreeing, with a failure
    ];
    for (i, (passed, failed, total, counted_failed)) in cases.into_iter().enumerate() {
        for summary in ["Completed", "Failed"] {
            let mut results = String::new();
            for n in 0..passed {
                results.push_str(&format!(
                    r#"<UnitTestResult testName="Ok{n}" outcome="Passed" />"#
                ));
            }
            for n in 0..failed {
                results.push_str(&format!(
                    r#"<UnitTestResult testName="Bad{n}" outcome="Failed" />"#
                ));
            }
            let xml = format!(
                r#"<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"><Results>{results}</Results><ResultSummary outcome="{summary}"><Counters total="{total}" passed="{}" failed="{counted_failed}" /></ResultSummary></TestRun>"#,
                total.saturating_sub(counted_failed)
            );
            let name = format!("c{i}.trx");
            let dir = tempdir_with(&[(&name, xml.as_bytes())]);
            // Only the passing tests are critical, so a listed failure alone
            // never decides the verdict here.
            let r = run(&in_dir(dir.path(), &[&name], Some("Name~Ok")));
            let agree = total == passed + failed && counted_failed == failed;
            let says = r
                .reasons
                .iter()
                .any(|x| x.contains("the run's counters report"));
            if agree {
                assert!(!says, "case {i} ({summary}) agrees: {:?}", r.reasons);
            } else {
                assert!(says, "case {i} ({summary}) disagrees: {:?}", r.reasons);
                assert_eq!(r.verdict, Verdict::Fail, "case {i}");
            }
        }
    }
}

#[test]
fn a_finding_is_suppressed_only_when_every_suppression_stands() {
    // Every combination of up to two suppressions drawn from these statuses
    // (None: no status, which SARIF reads as accepted).
    let statuses: [Option<&str>; 4] = [
        None,
        Some("accepted"),
        Some("rejected"),
        Some("underReview"),
    ];
    let mut combos: Vec<Vec<Option<&str>>> = vec![vec![]];
    for a in statuses {
        combos.push(vec![a]);
        for b in statuses {
            combos.push(vec![a, b]);
        }
    }
    for combo in combos {
        let list: Vec<String> = combo
            .iter()
            .map(|s| match s {
                Some(st) => format!(r#"{{"kind":"external","status":"{st}"}}"#),
                None => r#"{"kind":"inSource"}"#.to_string(),
            })
            .collect();
        let sarif = format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"S","rules":[{{"id":"R1","defaultConfiguration":{{"level":"error"}}}}]}}}},"results":[{{"ruleId":"R1","message":{{"text":"x"}},"suppressions":[{}]}}]}}]}}"#,
            list.join(",")
        );
        let dir = tempdir_with(&[("s.sarif", sarif.as_bytes())]);
        let mut s = with_sarif(&["s.sarif"], None);
        s.results = vec![
            fixture("trx-xunitv3-passed-blame-warning.trx")
                .display()
                .to_string(),
        ];
        s.base_dir = dir.path().to_path_buf();
        let r = run(&s);
        let stands =
            !combo.is_empty() && combo.iter().all(|st| st.is_none_or(|st| st == "accepted"));
        assert_eq!(
            r.security_findings,
            u64::from(!stands),
            "suppressions {combo:?}: {:?}",
            r.reasons
        );
    }
}

/// Surefire's XML as JUnit 5 writes it: `@Tag("critical")` appears nowhere
/// (no properties, nothing in the names). `Category=` cannot select these
/// tests and fails closed; a name filter, or gating results of a run of
/// only the tagged tests with no filter, works — what the README says.
#[test]
fn junit5_tags_never_reach_surefire_xml_so_critical_tests_are_chosen_by_name() {
    const SUREFIRE_JUNIT5: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="com.contoso.payments.PaymentCriticalTests" time="0.41" tests="2" errors="0" skipped="0" failures="0">
  <properties>
    <property name="java.version" value="21.0.5"/>
    <property name="surefire.test.class.path" value="/work/target/test-classes"/>
  </properties>
  <testcase name="acceptsOrdersOverTheLimit" classname="com.contoso.payments.PaymentCriticalTests" time="0.2"/>
  <testcase name="refundsLargeOrders" classname="com.contoso.payments.PaymentCriticalTests" time="0.2"/>
</testsuite>
"#;
    let dir = tempdir_with(&[(
        "TEST-com.contoso.payments.PaymentCriticalTests.xml",
        SUREFIRE_JUNIT5.as_bytes(),
    )]);
    let results = ["TEST-*.xml"];
    let by_tag = run(&in_dir(dir.path(), &results, Some("Category=Critical")));
    assert_eq!(by_tag.verdict, Verdict::Fail, "{:#?}", by_tag.reasons);
    assert_eq!(by_tag.critical_total, 0);
    let by_name = run(&in_dir(
        dir.path(),
        &results,
        Some("FullyQualifiedName~PaymentCritical"),
    ));
    assert_passes(&by_name);
    assert_eq!(by_name.critical_passed, 2);
    let only_tagged_ran = run(&in_dir(dir.path(), &results, None));
    assert_passes(&only_tagged_ran);
    assert_eq!(only_tagged_ran.critical_passed, 2);
}
