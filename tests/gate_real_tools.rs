//! JUnit XML written by the real tools (pytest, cargo-nextest) for tiny projects made in a
//! temporary directory, gated through `evaluate` with a filter.
//!
//! pytest: `EXPEDITE_PYTHON` names the interpreter (default `python3`); the test is skipped,
//! with the reason printed, only when `<python> -m pytest --version` fails. nextest: skipped
//! the same way only when `cargo nextest --version` fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use expedite::gate::{GateReport, GateSettings, Verdict, evaluate};

fn gate(dir: &Path, results: &str, filter: &str) -> GateReport {
    evaluate(&GateSettings {
        results: vec![results.to_owned()],
        filter: Some(filter.to_owned()),
        security_waiver: Some("no scan in this tool test".to_owned()),
        base_dir: dir.to_path_buf(),
        ..GateSettings::default()
    })
    .expect("valid settings")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

const PYTEST_PROJECT: &str = r#"
import pytest

@pytest.fixture
def critical(record_property):
    # pytest markers are not written to JUnit XML; a recorded property is.
    record_property("category", "Critical")

def test_charge_small_order(critical):
    assert 10 + 0 == 10

def test_charge_large_order(critical):
    assert 10_001 > 10_000

def test_report_totals():
    assert 1 == 2, "report totals differ"

# A skipped test never runs its fixtures, so record_property cannot tag it; a tag in the
# test id (the default category pattern "[{}]") can.
@pytest.mark.skip(reason="needs the sandbox")
@pytest.mark.parametrize("amount", [pytest.param(5, id="[Critical]")])
def test_refund(amount):
    pass
"#;

#[test]
fn pytest_junit_through_the_gate() {
    let python = std::env::var("EXPEDITE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-m", "pytest", "--version"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        println!(
            "SKIPPED pytest_junit_through_the_gate: `{python} -m pytest --version` failed ({why}); set EXPEDITE_PYTHON to an interpreter with pytest"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "test_payments.py", PYTEST_PROJECT);
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=junit.xml",
            "test_payments.py",
        ])
        .current_dir(dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    // Exit code 1: tests ran and one failed, which is what the project is made to do.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let r = gate(dir.path(), "junit.xml", "Category=Critical");
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.reasons);
    assert_eq!(
        (
            r.critical_total,
            r.critical_passed,
            r.critical_skipped,
            r.non_critical_failed
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(r.tests_total, 4);

    let r = gate(
        dir.path(),
        "junit.xml",
        "Category=Critical|Name=test_report_totals",
    );
    assert_eq!(r.verdict, Verdict::Fail);
    let failure = r
        .failures
        .iter()
        .find(|f| f.critical)
        .expect("a critical failure");
    assert_eq!(failure.test, "test_payments.test_report_totals");
    assert!(
        failure.message.contains("report totals differ"),
        "{}",
        failure.message
    );

    // A module that cannot be imported hides its tests; with
    // --continue-on-collection-errors the rest still runs and passes.
    write(
        dir.path(),
        "test_broken.py",
        "import payments_sdk_missing\n\ndef test_charge_eur():\n    pass\n",
    );
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            "--junitxml=junit-broken.xml",
            "test_payments.py",
            "test_broken.py",
        ])
        .current_dir(dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    assert_ne!(out.status.code(), Some(0));
    let r = gate(dir.path(), "junit-broken.xml", "Category=Critical");
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.critical_passed, 2);
    assert!(
        r.reasons
            .iter()
            .any(|m| m.contains("pytest could not collect \"test_broken\"")
                && m.contains("ModuleNotFoundError: No module named 'payments_sdk_missing'")),
        "{:#?}",
        r.reasons
    );

    // A typo in the category selects nothing and must fail.
    let r = gate(dir.path(), "junit.xml", "Category=Critcal");
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reasons[0].contains("categories present: Critical"),
        "{:?}",
        r.reasons
    );
}

const NEXTEST_LIB: &str = r#"
pub fn charge(amount: u32) -> u32 {
    amount
}

#[cfg(test)]
mod tests {
    #[test]
    fn critical_charge_small_order() {
        assert_eq!(super::charge(10), 10);
    }

    #[test]
    fn critical_charge_large_order() {
        assert_eq!(super::charge(10_001), 10_001);
    }

    #[test]
    fn report_totals() {
        assert_eq!(1, 2, "report totals differ");
    }
}
"#;

#[test]
fn nextest_junit_through_the_gate() {
    let cargo = std::env::var("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| "cargo".into());
    let probe = Command::new(&cargo).args(["nextest", "--version"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        println!(
            "SKIPPED nextest_junit_through_the_gate: `cargo nextest --version` failed; install cargo-nextest"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("probe");
    write(
        &project,
        "Cargo.toml",
        "[package]\nname = \"gate-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(&project, "src/lib.rs", NEXTEST_LIB);
    write(
        &project,
        ".config/nextest.toml",
        // The store (where the JUnit file goes) is relative to the project, not the
        // target directory.
        "[store]\ndir = \"store\"\n\n[profile.ci]\nfail-fast = false\n\n[profile.ci.junit]\npath = \"junit.xml\"\n",
    );
    let target = dir.path().join("target");
    let mut cmd = Command::new(&cargo);
    cmd.args(["nextest", "run", "--profile", "ci", "--offline"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target);
    // The outer test run may itself be under nextest; its settings must not leak in.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEXTEST_") {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().expect("run cargo nextest");
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let junit = project.join("store/ci/junit.xml");
    assert!(junit.is_file(), "nextest wrote no {}", junit.display());
    let r = gate(&project, "store/ci/junit.xml", "Name~critical_");
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.reasons);
    assert_eq!(
        (r.critical_total, r.critical_passed, r.non_critical_failed),
        (2, 2, 1)
    );

    let r = gate(
        &project,
        "store/**/*.xml",
        "Name~critical_|Name=tests::report_totals",
    );
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.critical_failed, 1);
    let failure = r
        .failures
        .iter()
        .find(|f| f.critical)
        .expect("a critical failure");
    assert!(
        failure.test.ends_with("tests::report_totals"),
        "{}",
        failure.test
    );

    let r = gate(&project, "store/ci/junit.xml", "Name~critcal_");
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reasons[0].contains("selected 0 of 3 tests"),
        "{:?}",
        r.reasons
    );
}
