//! Data shared by the parsers, the filter and the verdict: formats, outcomes, one test case,
//! the per-file parse result and the parse errors.

use std::fmt;

/// A result-file format, recognised from the content (root element or JSON fields), never
/// from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JUnit XML (`<testsuites>` or `<testsuite>` root): Surefire, pytest, jest-junit,
    /// gotestsum, cargo-nextest and others.
    JUnit,
    /// Visual Studio TRX (`<TestRun>` root), from `dotnet test --logger trx`.
    Trx,
    /// NUnit 3 result XML (`<test-run>` root).
    NUnit3,
    /// SARIF 2.1.0 (JSON), from a security scanner.
    Sarif,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::JUnit => "JUnit XML",
            Format::Trx => "TRX",
            Format::NUnit3 => "NUnit 3 XML",
            Format::Sarif => "SARIF",
        })
    }
}

/// The outcome of one test case, normalised across formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    /// An assertion failed.
    Failed,
    /// The test threw, or its setup failed, or the tool could not run it.
    Errored,
    TimedOut,
    /// The test started but did not finish (crashed host, cancellation).
    Aborted,
    /// Skipped, ignored, not executed, explicit.
    Skipped,
    /// Ran without reaching a verdict (NUnit/MSTest Inconclusive, still pending).
    Inconclusive,
}

impl Outcome {
    /// Failed, errored, timed out or aborted: what fails the gate when the test is critical.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Errored | Outcome::TimedOut | Outcome::Aborted
        )
    }

    /// Skipped or inconclusive: the test gave no evidence either way.
    pub fn is_not_run(self) -> bool {
        matches!(self, Outcome::Skipped | Outcome::Inconclusive)
    }

    /// A short lower-case word for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Errored => "error",
            Outcome::TimedOut => "timed out",
            Outcome::Aborted => "aborted",
            Outcome::Skipped => "skipped",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One test case as every parser reports it to the aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Display name (JUnit `name`, TRX `testName`, NUnit `name`).
    pub name: String,
    /// Class, module or suite the test belongs to; empty when the format has none.
    pub class_name: String,
    /// What `FullyQualifiedName` matches in a filter.
    pub fully_qualified_name: String,
    /// Categories, already inherited from enclosing suites where the format has them.
    pub categories: Vec<String>,
    /// Other name/value properties (traits).
    pub traits: Vec<(String, String)>,
    pub outcome: Outcome,
    /// Failure or skip message, truncated; empty when there is none.
    pub message: String,
    /// Source file of the test, when the format records it (JUnit `file`).
    pub source_file: Option<String>,
    /// Source line, when the format records it (JUnit `line`).
    pub line: Option<u32>,
}

impl TestCase {
    pub(crate) fn new(outcome: Outcome) -> Self {
        TestCase {
            name: String::new(),
            class_name: String::new(),
            fully_qualified_name: String::new(),
            categories: Vec::new(),
            traits: Vec::new(),
            outcome,
            message: String::new(),
            source_file: None,
            line: None,
        }
    }
}

/// Receives every test case while a file is parsed, so that nothing but counts and capped
/// lists has to stay in memory.
pub(crate) trait TestSink {
    fn test_case(&mut self, case: &TestCase);
}

/// Per-outcome counts of test cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub skipped: u64,
    pub inconclusive: u64,
}

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Passed => &mut self.passed,
            Outcome::Failed => &mut self.failed,
            Outcome::Errored => &mut self.errored,
            Outcome::TimedOut => &mut self.timed_out,
            Outcome::Aborted => &mut self.aborted,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Inconclusive => &mut self.inconclusive,
        };
        *slot += 1;
    }

    /// Every test case seen.
    pub fn total(&self) -> u64 {
        self.passed
            + self.failed
            + self.errored
            + self.timed_out
            + self.aborted
            + self.skipped
            + self.inconclusive
    }

    /// Failed, errored, timed out and aborted together.
    pub fn failures(&self) -> u64 {
        self.failed + self.errored + self.timed_out + self.aborted
    }

    /// Skipped and inconclusive together.
    pub fn not_run(&self) -> u64 {
        self.skipped + self.inconclusive
    }
}

/// SARIF result level, ordered `None < Note < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SarifLevel {
    None,
    Note,
    Warning,
    Error,
}

impl SarifLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SarifLevel::None => "none",
            SarifLevel::Note => "note",
            SarifLevel::Warning => "warning",
            SarifLevel::Error => "error",
        }
    }

    /// The SARIF spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(SarifLevel::None),
            "note" => Some(SarifLevel::Note),
            "warning" => Some(SarifLevel::Warning),
            "error" => Some(SarifLevel::Error),
            _ => None,
        }
    }
}

impl fmt::Display for SarifLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SARIF result that counts as a finding (kind `fail`, not suppressed).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_id: String,
    /// Result level, else the rule's `defaultConfiguration.level`, else `warning`.
    pub level: SarifLevel,
    /// `properties."security-severity"` of the result, else of its rule.
    pub security_severity: Option<f64>,
    pub message: String,
    /// `artifactLocation.uri` of the first location.
    pub uri: Option<String>,
    /// `region.startLine` of the first location.
    pub line: Option<u32>,
    /// Name of the tool (driver) that reported it.
    pub tool: String,
    /// The SARIF file it came from (`<bytes>` for [`parse_bytes`](super::parse_bytes)).
    pub sarif_file: String,
    /// Whether it is at or above the gate's security threshold.
    pub at_or_above_threshold: bool,
}

/// What parsing one file produced besides the test cases sent to the sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFile {
    /// `None` only before detection finished.
    pub format: Option<Format>,
    /// Test cases by outcome (zero for SARIF).
    pub tests: OutcomeCounts,
    /// Run-level problems that fail the gate whatever the filter: a crashed or aborted test
    /// host, a suite that failed to run or to set up, a SARIF run without results.
    pub problems: Vec<String>,
    /// SARIF findings (every one, kind `fail` and not suppressed), in file order.
    pub findings: Vec<Finding>,
    /// SARIF results left out because they were suppressed or not of kind `fail`.
    pub suppressed_findings: u64,
}

/// Why a result file could not be read. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{path}: file not found")]
    Missing { path: String },
    #[error("{path}: is a directory, not a result file")]
    Directory { path: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is empty ({bytes} bytes, nothing but whitespace)")]
    Empty { path: String, bytes: u64 },
    #[error(
        "{path}: truncated: the file ends at byte {offset} inside <{element}> (the writer was killed or the copy is incomplete)"
    )]
    Truncated {
        path: String,
        offset: u64,
        element: String,
    },
    #[error("{path}: not well-formed XML at byte {offset}: {message}")]
    Xml {
        path: String,
        offset: u64,
        message: String,
    },
    #[error("{path}: not valid JSON at line {line}, column {column}: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: unknown format: {detail}")]
    UnknownFormat { path: String, detail: String },
    #[error("{path}: is {found}, but {expected} was expected here")]
    WrongFormat {
        path: String,
        found: Format,
        expected: String,
    },
}

impl ParseError {
    /// The file the error is about.
    pub fn path(&self) -> &str {
        match self {
            ParseError::Missing { path }
            | ParseError::Directory { path }
            | ParseError::Io { path, .. }
            | ParseError::Empty { path, .. }
            | ParseError::Truncated { path, .. }
            | ParseError::Xml { path, .. }
            | ParseError::Json { path, .. }
            | ParseError::UnknownFormat { path, .. }
            | ParseError::WrongFormat { path, .. } => path,
        }
    }
}

/// Appends `text` to `dst` without letting `dst` grow past `cap` bytes (cut at a character
/// boundary, with an ellipsis), so huge stack traces never pile up in memory.
pub(crate) fn push_capped(dst: &mut String, text: &str, cap: usize) {
    if dst.len() >= cap {
        return;
    }
    let room = cap - dst.len();
    if text.len() <= room {
        dst.push_str(text);
        return;
    }
    dst.push_str(&text[..text.floor_char_boundary(room)]);
    dst.push('…');
}

/// The first non-empty line of `text`, trimmed and capped: what goes into one-line problems.
pub(crate) fn first_line(text: &str, cap: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out = String::new();
    push_capped(&mut out, line, cap);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_capped_cuts_at_char_boundary() {
        let mut s = String::new();
        push_capped(&mut s, "aé", 2);
        assert_eq!(s, "a…");
        push_capped(&mut s, "more", 2);
        assert_eq!(s, "a…");
        let mut t = String::from("ab");
        push_capped(&mut t, "cd", 10);
        assert_eq!(t, "abcd");
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  \n  boom here \nnext", 100), "boom here");
        assert_eq!(first_line("abcdef", 3), "abc…");
    }

    #[test]
    fn outcome_counts_group_failures_and_not_run() {
        let mut c = OutcomeCounts::default();
        for o in [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Errored,
            Outcome::TimedOut,
            Outcome::Aborted,
            Outcome::Skipped,
            Outcome::Inconclusive,
        ] {
            c.add(o);
        }
        assert_eq!(c.total(), 7);
        assert_eq!(c.failures(), 4);
        assert_eq!(c.not_run(), 2);
    }
}
