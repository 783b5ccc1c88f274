//! Every real-world fixture in tests/fixtures/test-results parses with exactly the counts
//! SOURCES.md states for it.

use std::path::PathBuf;

use expedite::gate::{
    Format, Outcome, OutcomeCounts, ParsedFile, SarifLevel, TestCase, read_tests,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test-results")
        .join(name)
}

fn read(name: &str) -> (ParsedFile, Vec<TestCase>) {
    let mut cases = Vec::new();
    let parsed = read_tests(&fixture(name), &mut |c| cases.push(c.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        parsed.tests.total(),
        cases.len() as u64,
        "{name}: counts and cases disagree"
    );
    (parsed, cases)
}

fn counts(
    passed: u64,
    failed: u64,
    errored: u64,
    timed_out: u64,
    aborted: u64,
    skipped: u64,
) -> OutcomeCounts {
    OutcomeCounts {
        passed,
        failed,
        errored,
        timed_out,
        aborted,
        skipped,
        inconclusive: 0,
    }
}

fn find<'a>(cases: &'a [TestCase], name: &str) -> &'a TestCase {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no test named {name}"))
}

// ---- TRX ----

#[test]
fn trx_xunit_failures() {
    let (p, cases) = read("trx-xunit-failures.trx");
    assert_eq!(p.format, Some(Format::Trx));
    assert_eq!(p.tests, counts(3, 3, 0, 0, 0, 1));
    // RunInfos with outcome Error that only echo "[FAIL]" are test failures, not a crash.
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let custom = find(&cases, "Custom Name");
    assert_eq!(
        custom.fully_qualified_name,
        "DotnetTests.XUnitTests.CalculatorTests.Passing_Test_With_Name"
    );
    assert_eq!(custom.class_name, "DotnetTests.XUnitTests.CalculatorTests");
    let failed: Vec<&TestCase> = cases
        .iter()
        .filter(|c| c.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|c| !c.message.is_empty()));
    assert!(cases.iter().all(|c| c.categories.is_empty()));
}

#[test]
fn trx_mstest_categories_are_joined_from_test_definitions() {
    let (p, cases) = read("trx-mstest-categories-failures.trx");
    assert_eq!(p.tests, counts(3, 3, 0, 0, 0, 1));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let fail = find(&cases, "FailTest");
    assert_eq!(fail.categories, vec!["Fail"]);
    assert_eq!(fail.outcome, Outcome::Failed);
    assert_eq!(
        fail.fully_qualified_name,
        "SampleProject.MSTest.TestServiceTests.FailTest"
    );
    let skip = find(&cases, "SkipTest");
    assert_eq!(skip.categories, vec!["Skip"]);
    assert_eq!(skip.outcome, Outcome::Skipped);
    assert_eq!(skip.message, "Skipped");
    assert_eq!(cases.iter().filter(|c| c.categories.is_empty()).count(), 5);
}

#[test]
fn trx_nunit_adapter_failures() {
    let (p, cases) = read("trx-nunit-adapter-failures.trx");
    assert_eq!(p.tests, counts(2, 3, 0, 0, 0, 1));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(cases.len(), 6);
}

#[test]
fn trx_green_run_with_blame_warning_has_no_problem() {
    let (p, _) = read("trx-xunitv3-passed-blame-warning.trx");
    assert_eq!(p.tests, counts(2, 0, 0, 0, 0, 0));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
}

#[test]
fn trx_testhost_that_never_started_is_a_problem() {
    let (p, cases) = read("trx-testhost-exited-error.trx");
    assert!(cases.is_empty());
    assert_eq!(p.tests.total(), 0);
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(
        p.problems[0].contains("Testhost process exited with error"),
        "{:?}",
        p.problems
    );
}

#[test]
fn trx_crashed_host_old_element_order() {
    let (p, cases) = read("trx-mstest-hostcrash-error.trx");
    assert_eq!(p.tests, counts(0, 0, 0, 0, 1, 0));
    let case = &cases[0];
    assert_eq!(case.name, "ValidatingHomePage");
    assert_eq!(
        case.traits,
        vec![("FeatureTitle".to_owned(), "ValidateHomePage".to_owned())]
    );
    assert!(
        p.problems.iter().any(|m| m.contains("outcome Error")),
        "{:?}",
        p.problems
    );
    assert!(
        p.problems
            .iter()
            .any(|m| m.contains("Test host process exited unexpectedly")),
        "{:?}",
        p.problems
    );
}

// ---- NUnit 3 ----

#[test]
fn nunit_fixture_category_is_inherited() {
    let (p, cases) = read("nunit3-console-categories-failure.xml");
    assert_eq!(p.format, Some(Format::NUnit3));
    assert_eq!(p.tests, counts(3, 1, 0, 0, 0, 0));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert!(
        cases
            .iter()
            .all(|c| c.categories == vec!["Automated Testing"])
    );
    let failed = cases.iter().find(|c| c.outcome == Outcome::Failed).unwrap();
    assert!(!failed.message.is_empty());
    assert!(
        failed
            .fully_qualified_name
            .starts_with("TestRailTesting.trc_automated_tests.")
    );
    // Test-case properties are traits; fixture properties other than Category are not.
    assert!(failed.traits.iter().any(|(n, _)| n == "Description"));
    assert!(!failed.traits.iter().any(|(n, _)| n == "Author"));
}

#[test]
fn nunit_failures_errors_timeout_and_skip() {
    let (p, cases) = read("nunit3-console-failures-skipped.xml");
    assert_eq!(p.tests, counts(3, 2, 2, 1, 0, 1));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let timeout = find(&cases, "Timeout_Test");
    assert_eq!(timeout.outcome, Outcome::TimedOut);
    assert!(timeout.message.contains("Timeout"), "{}", timeout.message);
    assert_eq!(find(&cases, "Exception_In_Test").outcome, Outcome::Errored);
    assert_eq!(find(&cases, "Is_Even_Number(3)").outcome, Outcome::Failed);
    assert_eq!(find(&cases, "Skipped_Test").outcome, Outcome::Skipped);
}

#[test]
fn nunit_empty_run_is_zero_tests_and_no_problem() {
    // Passed with zero tests: the min-critical-tests rule, not the parser, fails it.
    let (p, cases) = read("nunit3-empty-run-passed.xml");
    assert_eq!(p.format, Some(Format::NUnit3));
    assert!(cases.is_empty());
    assert!(p.problems.is_empty());
}

// ---- JUnit ----

#[test]
fn junit_surefire_testng() {
    let (p, cases) = read("junit-surefire-testng-failure.xml");
    assert_eq!(p.format, Some(Format::JUnit));
    assert_eq!(p.tests, counts(11, 1, 0, 0, 0, 0));
    assert!(p.problems.is_empty());
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.name == "validateCreateNewContact")
            .count(),
        3
    );
    // The 51 JVM system properties on the suite are neither traits nor categories.
    assert!(
        cases
            .iter()
            .all(|c| c.traits.is_empty() && c.categories.is_empty())
    );
    let failed = cases.iter().find(|c| c.outcome == Outcome::Failed).unwrap();
    assert!(
        failed.message.contains("NoSuchElementException")
            || failed.message.contains("no such element"),
        "{}",
        failed.message
    );
}

#[test]
fn junit_jest_failures() {
    let (p, cases) = read("junit-jest-junit-failures.xml");
    assert_eq!(p.tests, counts(1, 4, 0, 0, 0, 1));
    assert!(p.problems.is_empty());
    // No message attribute: the body is the message.
    assert!(
        cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .all(|c| !c.message.is_empty())
    );
}

#[test]
fn junit_jest_suite_failed_to_run_is_a_problem() {
    let (p, cases) = read("junit-jest-junit-suite-failed-to-run.xml");
    assert_eq!(p.tests, counts(0, 0, 2, 0, 0, 0));
    assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
    assert!(p.problems[0].contains("libs/foo.spec.ts"));
    assert!(p.problems[0].contains("TS6258"), "{}", p.problems[0]);
    assert!(
        cases[0].message.contains("'typeRoots'"),
        "{}",
        cases[0].message
    );
}

#[test]
fn junit_pytest() {
    let (p, cases) = read("junit-pytest-failures.xml");
    assert_eq!(p.tests, counts(1, 2, 0, 0, 0, 0));
    let fails = find(&cases, "test_which_fails");
    assert_eq!(
        fails.fully_qualified_name,
        "python.test_sample.test_which_fails"
    );
    assert!(
        fails
            .message
            .starts_with("AssertionError: assert 'test' == 'xyz'\n"),
        "{}",
        fails.message
    );
}

#[test]
fn junit_gotestsum() {
    let (p, cases) = read("junit-gotestsum-failures.xml");
    assert_eq!(p.tests, counts(138, 23, 0, 0, 0, 0));
    assert_eq!(cases.len(), 161);
    assert!(p.problems.is_empty());
    // go.version is a suite property: not a trait.
    assert!(cases.iter().all(|c| c.traits.is_empty()));
}

// ---- SARIF ----

fn by_level(p: &ParsedFile, level: SarifLevel) -> usize {
    p.findings.iter().filter(|f| f.level == level).count()
}

#[test]
fn sarif_codeql_csharp_rules_in_extension() {
    let (p, _) = read("sarif-codeql-csharp.sarif");
    assert_eq!(p.format, Some(Format::Sarif));
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.findings.len(), 2);
    for f in &p.findings {
        assert_eq!(f.rule_id, "cs/web/xss");
        // No level on the result: the rule's default (error) applies.
        assert_eq!(f.level, SarifLevel::Error);
        assert_eq!(f.security_severity, Some(6.1));
        assert!(f.uri.is_some() && f.line.is_some());
        assert_eq!(f.tool, "CodeQL");
    }
}

#[test]
fn sarif_codeql_javascript_levels_and_severities() {
    let (p, _) = read("sarif-codeql-javascript.sarif");
    assert_eq!(p.findings.len(), 29);
    assert_eq!(by_level(&p, SarifLevel::Error), 14);
    assert_eq!(by_level(&p, SarifLevel::Warning), 15);
    let count = |rule: &str, level: SarifLevel, severity: f64| {
        p.findings
            .iter()
            .filter(|f| {
                f.rule_id == rule && f.level == level && f.security_severity == Some(severity)
            })
            .count()
    };
    assert_eq!(count("js/reflected-xss", SarifLevel::Error, 6.1), 12);
    assert_eq!(
        count("js/missing-token-validation", SarifLevel::Error, 8.8),
        1
    );
    assert_eq!(
        count(
            "js/type-confusion-through-parameter-tampering",
            SarifLevel::Error,
            9.8
        ),
        1
    );
    assert_eq!(
        count("js/missing-rate-limiting", SarifLevel::Warning, 7.5),
        11
    );
    assert_eq!(
        count("js/hardcoded-credentials", SarifLevel::Warning, 9.8),
        2
    );
    assert_eq!(
        count("js/xss-through-exception", SarifLevel::Warning, 6.1),
        2
    );
}

#[test]
fn sarif_trivy_explicit_levels() {
    let (p, _) = read("sarif-trivy-image.sarif");
    assert_eq!(p.findings.len(), 7);
    assert_eq!(by_level(&p, SarifLevel::Note), 6);
    assert!(
        p.findings
            .iter()
            .filter(|f| f.level == SarifLevel::Note)
            .all(|f| f.security_severity == Some(2.0))
    );
    let secret = p
        .findings
        .iter()
        .find(|f| f.level == SarifLevel::Error)
        .unwrap();
    assert_eq!(secret.security_severity, Some(8.0));
    assert!(
        secret
            .uri
            .as_deref()
            .unwrap()
            .contains("ssl-cert-snakeoil.key")
    );
}

#[test]
fn every_fixture_listed_in_sources_is_tested_here() {
    // Keeps this file in step with the directory: a new fixture needs a test above.
    let dir = fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SOURCES.md")
        .collect();
    names.sort();
    let this_file = include_str!("gate_fixtures.rs");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    for name in names {
        assert!(
            this_file.contains(&format!("\"{name}\"")),
            "{name} has no test"
        );
        assert!(
            sources.contains(&format!("`{name}`")),
            "{name} is not in SOURCES.md"
        );
    }
}
