//! NUnit 3 result XML parser (`<test-run>` root).
//!
//! A `<test-case>` is reported when its end tag is read. Categories are the
//! `properties/property name="Category"` values of the test case and of every enclosing
//! `<test-suite>` (fixtures, namespaces, assemblies), as NUnit itself applies them; other
//! test-case properties become traits. Outcomes come from `result` and `label`: Failed with
//! label Error or Invalid is an error, Cancelled is aborted, a label mentioning a timeout
//! is a timeout; Warning counts as passed (NUnit reports passing tests with warnings so).
//!
//! Run-level problems: a suite that failed in its SetUp or TearDown (the one-time setup of
//! a fixture, which may hide tests that never ran or a teardown that broke after they
//! passed), a cancelled run, and a run whose result is Failed while no test failed.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::model::{Outcome, ParseError, ParsedFile, TestCase, TestSink, first_line};
use super::parse::MESSAGE_CAP;
use super::xml::{Node, XmlStream};

struct Suite {
    level: usize,
    name: String,
    categories: Vec<String>,
    result: String,
    label: String,
    site: String,
    message: String,
}

struct Case {
    level: usize,
    case: TestCase,
    result: Option<String>,
    label: String,
    site: String,
}

#[derive(Default)]
struct Parser {
    run_result: String,
    run_label: String,
    suites: Vec<Suite>,
    case: Option<Case>,
    properties_level: Option<usize>,
    /// Level of the `<failure>` or `<reason>` being read.
    detail_level: Option<usize>,
    /// Level of the `<message>` inside it whose text is kept.
    capture: Option<usize>,
    cancelled: bool,
}

pub(crate) fn parse<R: BufRead>(
    xml: &mut XmlStream<R>,
    root: &BytesStart<'_>,
    root_empty: bool,
    sink: &mut dyn TestSink,
    out: &mut ParsedFile,
) -> Result<(), ParseError> {
    let mut p = Parser {
        run_result: xml.attr(root, "result")?.unwrap_or_default(),
        run_label: xml.attr(root, "label")?.unwrap_or_default(),
        ..Parser::default()
    };
    if root_empty {
        // Still read to the end so that trailing garbage is reported.
        super::xml::drain(xml)?;
    } else {
        super::xml::pump(xml, |xml, node| {
            match node {
                Node::Open {
                    start,
                    level,
                    empty,
                } => p.open(xml, start, level, empty)?,
                Node::Close { level } => p.close(level, sink, out),
                Node::Text(event) => p.text(xml, event)?,
            }
            Ok(())
        })?;
    }
    p.finish(out);
    Ok(())
}

fn map_outcome(result: Option<&str>, label: &str, site: &str) -> (Outcome, Option<String>) {
    match result {
        Some("Passed" | "Warning") => (Outcome::Passed, None),
        Some("Skipped") => (Outcome::Skipped, None),
        Some("Inconclusive") => (Outcome::Inconclusive, None),
        Some("Failed") => {
            let outcome = match label {
                "Cancelled" => Outcome::Aborted,
                "Error" | "Invalid" => Outcome::Errored,
                l if l.to_ascii_lowercase().contains("timeout") => Outcome::TimedOut,
                // The fixture's setup or teardown failed, not the test's assertion.
                _ if matches!(site, "SetUp" | "TearDown" | "Parent") => Outcome::Errored,
                _ => Outcome::Failed,
            };
            (outcome, None)
        }
        Some(other) => (
            Outcome::Errored,
            Some(format!("unknown NUnit result \"{other}\"")),
        ),
        None => (
            Outcome::Errored,
            Some("the test case has no result attribute".to_owned()),
        ),
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
            b"test-suite" if self.case.is_none() => {
                let name = match xml.attr(start, "fullname")? {
                    Some(n) if !n.is_empty() => n,
                    _ => xml.attr(start, "name")?.unwrap_or_default(),
                };
                self.suites.push(Suite {
                    level,
                    name,
                    categories: self
                        .suites
                        .last()
                        .map(|s| s.categories.clone())
                        .unwrap_or_default(),
                    result: xml.attr(start, "result")?.unwrap_or_default(),
                    label: xml.attr(start, "label")?.unwrap_or_default(),
                    site: xml.attr(start, "site")?.unwrap_or_default(),
                    message: String::new(),
                });
            }
            b"test-case" if self.case.is_none() => {
                let mut case = TestCase::new(Outcome::Passed);
                case.name = xml.attr(start, "name")?.unwrap_or_default();
                case.class_name = xml.attr(start, "classname")?.unwrap_or_default();
                case.fully_qualified_name = xml.attr(start, "fullname")?.unwrap_or_default();
                if case.fully_qualified_name.is_empty() {
                    case.fully_qualified_name = case.name.clone();
                }
                if let Some(suite) = self.suites.last() {
                    case.categories = suite.categories.clone();
                }
                self.case = Some(Case {
                    level,
                    case,
                    result: xml.attr(start, "result")?,
                    label: xml.attr(start, "label")?.unwrap_or_default(),
                    site: xml.attr(start, "site")?.unwrap_or_default(),
                });
            }
            b"properties" => self.properties_level = Some(level),
            b"property" if self.properties_level.is_some() => {
                let name = xml.attr(start, "name")?.unwrap_or_default();
                let value = xml.attr(start, "value")?.unwrap_or_default();
                self.apply_property(name, value);
            }
            b"failure" | b"reason" if self.detail_level.is_none() => {
                self.detail_level = Some(level);
            }
            b"message" if self.detail_level.is_some() && !empty => {
                let already = match &self.case {
                    Some(case) => !case.case.message.is_empty(),
                    None => self.suites.last().is_none_or(|s| !s.message.is_empty()),
                };
                if !already {
                    self.capture = Some(level);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_property(&mut self, name: String, value: String) {
        let is_category = name.eq_ignore_ascii_case("Category");
        let value = value.trim().to_owned();
        if let Some(case) = &mut self.case {
            if is_category {
                if !value.is_empty() && !case.case.categories.contains(&value) {
                    case.case.categories.push(value);
                }
            } else {
                case.case.traits.push((name, value));
            }
        } else if is_category
            && !value.is_empty()
            && let Some(suite) = self.suites.last_mut()
            && !suite.categories.contains(&value)
        {
            suite.categories.push(value);
        }
    }

    fn text<R: BufRead>(
        &mut self,
        xml: &XmlStream<R>,
        event: &Event<'_>,
    ) -> Result<(), ParseError> {
        if self.capture.is_none() {
            return Ok(());
        }
        match &mut self.case {
            Some(case) => xml.push_text(event, &mut case.case.message, MESSAGE_CAP)?,
            None => {
                if let Some(suite) = self.suites.last_mut() {
                    xml.push_text(event, &mut suite.message, MESSAGE_CAP)?;
                }
            }
        }
        Ok(())
    }

    fn close(&mut self, level: usize, sink: &mut dyn TestSink, out: &mut ParsedFile) {
        if self.capture == Some(level) {
            self.capture = None;
            return;
        }
        if self.detail_level == Some(level) {
            self.detail_level = None;
            return;
        }
        if self.properties_level == Some(level) {
            self.properties_level = None;
            return;
        }
        if self.case.as_ref().is_some_and(|c| c.level == level) {
            if let Some(case) = self.case.take() {
                let (outcome, note) = map_outcome(case.result.as_deref(), &case.label, &case.site);
                let mut test = case.case;
                test.outcome = outcome;
                test.message = match note {
                    Some(note) => note,
                    None => test.message.trim().to_owned(),
                };
                if outcome == Outcome::TimedOut && test.message.is_empty() {
                    test.message = case.label;
                }
                out.tests.add(outcome);
                sink.test_case(&test);
            }
            return;
        }
        if self.suites.last().is_some_and(|s| s.level == level)
            && let Some(suite) = self.suites.pop()
        {
            if suite.label == "Cancelled" {
                self.cancelled = true;
            }
            if suite.result.starts_with("Failed")
                && matches!(suite.site.as_str(), "SetUp" | "TearDown")
            {
                let phase = if suite.site == "SetUp" {
                    "one-time setup"
                } else {
                    "one-time teardown"
                };
                out.problems.push(format!(
                    "test suite \"{}\" failed in its {phase}: {}",
                    suite.name,
                    first_line(&suite.message, 300)
                ));
            }
        }
    }

    fn finish(self, out: &mut ParsedFile) {
        if self.cancelled || self.run_label == "Cancelled" {
            out.problems
                .push("the test run was cancelled before it finished".to_owned());
        }
        if self.run_result.starts_with("Failed")
            && out.tests.failures() == 0
            && out.problems.is_empty()
        {
            out.problems.push(format!(
                "the test run result is Failed{} but no test failed",
                if self.run_label.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.run_label)
                }
            ));
        }
    }
}
