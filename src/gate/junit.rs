//! JUnit XML parser (Surefire, pytest, jest-junit, gotestsum, cargo-nextest dialects).
//!
//! Streams `<testsuites>`/`<testsuite>`/`<testcase>` in one pass; a test case is reported to
//! the sink when its end tag is read. Categories: `<property name="Category"|"category"|
//! "TestCategory"|"categories">` on the test case or any enclosing suite (values split on
//! commas), plus tags found in the test name by the configured [`CategoryPattern`]. Other
//! test-case properties become traits. `<flakyFailure>`/`<rerunFailure>` (Surefire and
//! nextest retries) are not outcomes: the final outcome is given by `<failure>`, `<error>`
//! or `<skipped>` alone.
//!
//! Run-level problems: a jest-junit "Test suite failed to run" pseudo test, a pytest
//! "collection failure" (a module that could not be imported), and a `<failure>`/`<error>`
//! directly inside a `<testsuite>`.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::model::{Outcome, ParseError, ParsedFile, TestCase, TestSink, first_line, push_capped};
use super::parse::{MESSAGE_CAP, ParseOptions};
use super::xml::{Node, XmlStream};

/// The pseudo class name jest-junit gives a test file that could not even be loaded.
const JEST_SUITE_FAILED: &str = "Test suite failed to run";

/// The error message pytest gives a test module it could not import.
const PYTEST_COLLECTION_FAILURE: &str = "collection failure";

struct Suite {
    level: usize,
    name: String,
    categories: Vec<String>,
}

struct Case {
    level: usize,
    case: TestCase,
    /// Level of the `<failure>`/`<error>`/`<skipped>` whose body is being read as the message.
    capture: Option<usize>,
    /// pytest's `<error message="collection failure">`: a test module that could not be
    /// imported, so none of its tests ran.
    collection_failure: bool,
}

struct Property {
    level: usize,
    name: String,
    value: String,
}

/// A `<failure>`/`<error>` directly inside a `<testsuite>`: some tools report a suite that
/// crashed before its tests this way.
struct SuiteError {
    level: usize,
    suite: String,
    message: String,
}

#[derive(Default)]
struct Parser {
    suites: Vec<Suite>,
    case: Option<Case>,
    properties_level: Option<usize>,
    property: Option<Property>,
    suite_error: Option<SuiteError>,
}

pub(crate) fn parse<R: BufRead>(
    xml: &mut XmlStream<R>,
    root: &BytesStart<'_>,
    root_empty: bool,
    opts: &ParseOptions,
    sink: &mut dyn TestSink,
    out: &mut ParsedFile,
) -> Result<(), ParseError> {
    let mut p = Parser::default();
    p.open(xml, root, 1, root_empty)?;
    if root_empty {
        p.close(1, opts, sink, out);
    }
    super::xml::pump(xml, |xml, node| {
        match node {
            Node::Open {
                start,
                level,
                empty,
            } => p.open(xml, start, level, empty)?,
            Node::Close { level } => p.close(level, opts, sink, out),
            Node::Text(event) => p.text(xml, event)?,
        }
        Ok(())
    })
}

fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Passed => 0,
        Outcome::Skipped | Outcome::Inconclusive => 1,
        Outcome::Failed | Outcome::TimedOut | Outcome::Aborted => 2,
        Outcome::Errored => 3,
    }
}

pub(crate) fn is_category_property(name: &str) -> bool {
    ["category", "categories", "testcategory"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

fn push_categories(dst: &mut Vec<String>, value: &str) {
    for part in value.split(',') {
        let part = part.trim();
        if !part.is_empty() && !dst.iter().any(|c| c == part) {
            dst.push(part.to_owned());
        }
    }
}

impl Parser {
    fn open<R: BufRead>(
        &mut self,
        xml: &XmlStream<R>,
        start: &BytesStart<'_>,
        level: usize,
        empty: bool,
    ) -> Result<(), ParseError> {
        match start.local_name().as_ref() {
            b"testsuite" => {
                let name = xml.attr(start, "name")?.unwrap_or_default();
                let categories = self
                    .suites
                    .last()
                    .map(|s| s.categories.clone())
                    .unwrap_or_default();
                self.suites.push(Suite {
                    level,
                    name,
                    categories,
                });
            }
            b"testcase" if self.case.is_none() => {
                let mut case = TestCase::new(Outcome::Passed);
                let [name, class_name, file, line] =
                    xml.attrs(start, ["name", "classname", "file", "line"])?;
                case.name = name.unwrap_or_default();
                case.class_name = class_name.unwrap_or_default();
                case.source_file = file.filter(|f| !f.is_empty());
                case.line = line.and_then(|l| l.trim().parse::<u32>().ok());
                if let Some(suite) = self.suites.last() {
                    case.categories = suite.categories.clone();
                }
                self.case = Some(Case {
                    level,
                    case,
                    capture: None,
                    collection_failure: false,
                });
            }
            b"properties" => self.properties_level = Some(level),
            b"property" if self.properties_level.is_some() => {
                let name = xml.attr(start, "name")?.unwrap_or_default();
                match xml.attr(start, "value")? {
                    Some(value) => self.apply_property(&name, &value),
                    // Some writers put the value in the element body.
                    None if !empty => {
                        self.property = Some(Property {
                            level,
                            name,
                            value: String::new(),
                        });
                    }
                    None => self.apply_property(&name, ""),
                }
            }
            tag @ (b"failure" | b"error" | b"skipped") => {
                let outcome = match tag {
                    b"error" => Outcome::Errored,
                    b"failure" => Outcome::Failed,
                    _ => Outcome::Skipped,
                };
                let message = xml.attr(start, "message")?.unwrap_or_default();
                if let Some(case) = &mut self.case {
                    if rank(outcome) > rank(case.case.outcome) {
                        case.case.outcome = outcome;
                        case.case.message.clear();
                        case.collection_failure =
                            outcome == Outcome::Errored && message == PYTEST_COLLECTION_FAILURE;
                        if !case.collection_failure {
                            // Its body (the import error) says more than the attribute.
                            push_capped(&mut case.case.message, message.trim(), MESSAGE_CAP);
                        }
                        case.capture = (case.case.message.is_empty() && !empty).then_some(level);
                    }
                } else if outcome != Outcome::Skipped
                    && let Some(suite) = self.suites.last()
                    && self.suite_error.is_none()
                {
                    let mut text = String::new();
                    push_capped(&mut text, message.trim(), MESSAGE_CAP);
                    self.suite_error = Some(SuiteError {
                        level,
                        suite: suite.name.clone(),
                        message: text,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn text<R: BufRead>(
        &mut self,
        xml: &XmlStream<R>,
        event: &Event<'_>,
    ) -> Result<(), ParseError> {
        if let Some(property) = &mut self.property {
            xml.push_text(event, &mut property.value, MESSAGE_CAP)?;
        } else if let Some(case) = &mut self.case {
            if case.capture.is_some() {
                xml.push_text(event, &mut case.case.message, MESSAGE_CAP)?;
            }
        } else if let Some(error) = &mut self.suite_error
            && error.message.is_empty()
        {
            xml.push_text(event, &mut error.message, MESSAGE_CAP)?;
        }
        Ok(())
    }

    fn apply_property(&mut self, name: &str, value: &str) {
        if let Some(case) = &mut self.case {
            if is_category_property(name) {
                push_categories(&mut case.case.categories, value);
            } else {
                case.case.traits.push((name.to_owned(), value.to_owned()));
            }
        } else if let Some(suite) = self.suites.last_mut()
            && is_category_property(name)
        {
            // Suite properties other than categories are environment dumps (Surefire puts
            // every JVM system property there): they are not traits of the tests.
            push_categories(&mut suite.categories, value);
        }
    }

    fn close(
        &mut self,
        level: usize,
        opts: &ParseOptions,
        sink: &mut dyn TestSink,
        out: &mut ParsedFile,
    ) {
        if self.property.as_ref().is_some_and(|p| p.level == level) {
            if let Some(property) = self.property.take() {
                self.apply_property(&property.name, property.value.trim());
            }
            return;
        }
        if self.properties_level == Some(level) {
            self.properties_level = None;
            return;
        }
        if let Some(case) = &mut self.case {
            if case.capture == Some(level) {
                case.capture = None;
                case.case.message = case.case.message.trim().to_owned();
                return;
            }
            if case.level == level {
                if let Some(case) = self.case.take() {
                    finish_case(case.case, case.collection_failure, opts, sink, out);
                }
                return;
            }
        }
        if self.suite_error.as_ref().is_some_and(|e| e.level == level) {
            if let Some(error) = self.suite_error.take() {
                out.problems.push(format!(
                    "test suite \"{}\" reported an error outside any test case: {}",
                    error.suite,
                    first_line(&error.message, 300)
                ));
            }
            return;
        }
        if self.suites.last().is_some_and(|s| s.level == level) {
            self.suites.pop();
        }
    }
}

fn finish_case(
    mut case: TestCase,
    collection_failure: bool,
    opts: &ParseOptions,
    sink: &mut dyn TestSink,
    out: &mut ParsedFile,
) {
    case.fully_qualified_name = if case.class_name.is_empty() {
        case.name.clone()
    } else {
        format!("{}.{}", case.class_name, case.name)
    };
    if let Some(pattern) = &opts.category_pattern {
        for text in [&case.name, &case.class_name] {
            for category in pattern.extract(text) {
                if !case.categories.contains(&category) {
                    case.categories.push(category);
                }
            }
        }
    }
    if case.class_name == JEST_SUITE_FAILED && case.outcome.is_failure() {
        // jest's first line repeats "● Test suite failed to run"; the cause is the next one.
        let cause = case
            .message
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.contains(JEST_SUITE_FAILED))
            .unwrap_or("no message");
        out.problems.push(format!(
            "test suite \"{}\" failed to run, so none of its tests ran: {}",
            case.name,
            first_line(cause, 300)
        ));
    }
    if collection_failure {
        // pytest's last "E   " line is the exception that stopped the import.
        let cause = case
            .message
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("E "))
            .unwrap_or(&case.message);
        out.problems.push(format!(
            "pytest could not collect \"{}\", so none of its tests ran: {}",
            case.name,
            first_line(cause, 300)
        ));
    }
    out.tests.add(case.outcome);
    sink.test_case(&case);
}

/// Where categories are read from JUnit test names: `prefix{}suffix`, e.g. the default
/// `[{}]` finds `Critical` in `test_charge [Critical]`. The captured text is split on commas.
/// With an empty suffix (`@{}`) a tag ends at the next whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryPattern {
    prefix: String,
    suffix: String,
}

impl CategoryPattern {
    /// The default: `[Category]` tags in the test name.
    pub fn default_brackets() -> Self {
        CategoryPattern {
            prefix: "[".to_owned(),
            suffix: "]".to_owned(),
        }
    }

    /// Parses `prefix{}suffix`; the prefix must not be empty and `{}` must appear once.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some((prefix, suffix)) = pattern.split_once("{}") else {
            return Err(format!(
                "JUnit category pattern \"{pattern}\" has no {{}} placeholder; expected e.g. \"[{{}}]\" or \"@{{}}\""
            ));
        };
        if suffix.contains("{}") {
            return Err(format!(
                "JUnit category pattern \"{pattern}\" has more than one {{}} placeholder"
            ));
        }
        if prefix.is_empty() {
            return Err(format!(
                "JUnit category pattern \"{pattern}\" needs text before {{}} (e.g. \"[{{}}]\"), or it would match every word"
            ));
        }
        Ok(CategoryPattern {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// Every category tagged in `text`.
    pub fn extract(&self, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(&self.prefix) {
            let after = &rest[at + self.prefix.len()..];
            let (mut inner, next) = if self.suffix.is_empty() {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            } else {
                match after.find(&self.suffix) {
                    Some(end) => (&after[..end], &after[end + self.suffix.len()..]),
                    None => break,
                }
            };
            // pytest wraps a parameter id in brackets: `test_x[[Critical]]`; the tag is
            // what follows the innermost prefix.
            if let Some(at) = inner.rfind(&self.prefix) {
                inner = &inner[at + self.prefix.len()..];
            }
            push_categories(&mut found, inner);
            rest = next;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern_extracts_bracket_tags() {
        let p = CategoryPattern::default_brackets();
        assert_eq!(p.extract("charges card [Critical]"), vec!["Critical"]);
        assert_eq!(
            p.extract("[Critical, Payment] refund [Smoke]"),
            vec!["Critical", "Payment", "Smoke"]
        );
        assert!(p.extract("no tag [unterminated").is_empty());
        assert_eq!(p.extract("test_refund[[Critical]]"), vec!["Critical"]);
        assert_eq!(p.extract("test_x[small-[Smoke]]"), vec!["Smoke"]);
    }

    #[test]
    fn pattern_without_suffix_ends_at_whitespace() {
        let p = CategoryPattern::parse("@{}").unwrap();
        assert_eq!(
            p.extract("pays @critical and @smoke"),
            vec!["critical", "smoke"]
        );
    }

    #[test]
    fn pattern_errors_say_what_is_expected() {
        assert!(
            CategoryPattern::parse("[]")
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(CategoryPattern::parse("{}").unwrap_err().contains("before"));
        assert!(
            CategoryPattern::parse("[{}]{}")
                .unwrap_err()
                .contains("more than one")
        );
    }
}
