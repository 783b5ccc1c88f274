//! TRX (VSTest) parser.
//!
//! A result (`<UnitTestResult>` or any other direct child of `<Results>`) carries the outcome
//! and display name; its class, method, categories (`TestCategory/TestCategoryItem`) and
//! traits (`Properties/Property` Key/Value) live in the matching `<TestDefinitions>` entry,
//! joined by `testId`. Current VSTest writes Results first and TestDefinitions after, older
//! MSTest the other way round, so whichever side comes first is kept as a compact record
//! until the other side arrives: memory grows with the number of tests, not the file size.
//! Inner results of data-driven tests are not counted separately (their parent is).
//!
//! Run-level problems come from `ResultSummary outcome` (Aborted, Error, Timeout, …),
//! from `RunInfos/RunInfo` errors whose text reveals a crashed or vanished test host, and
//! from a run marked Failed in which no test failed.

use std::collections::HashMap;
use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::model::{Outcome, ParseError, ParsedFile, TestCase, TestSink, first_line, push_capped};
use super::parse::MESSAGE_CAP;
use super::xml::{Node, XmlStream};

/// Failure messages of results waiting for their definitions stop being kept past this
/// many bytes, so a file with 100,000 failures still parses in bounded memory.
const PENDING_MESSAGE_BUDGET: usize = 4 * 1024 * 1024;

/// Lower-case phrases that, in a RunInfo with outcome Error, mean the test host died or the
/// run was cut short rather than a test failing.
const HOST_FAILURE_PHRASES: &[&str] = &[
    "test run was aborted",
    "test run aborted",
    "test host process crashed",
    "testhost process crashed",
    "host process exited",
    "testhost process exited",
    "testhost exited",
    "process exited unexpectedly",
    "process crashed",
    "could not find testhost",
    "failed to launch testhost",
    "testhost process for source",
    "inactivity time",
    "hang dump",
    "it was not possible to find any compatible framework",
];

/// A `testId`: VSTest writes GUIDs, packed here into 16 bytes; anything else is kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TestKey {
    Guid(u128),
    Text(Box<str>),
}

impl TestKey {
    fn new(id: &str) -> Self {
        let mut value: u128 = 0;
        let mut digits = 0;
        for b in id.bytes() {
            match (b as char).to_digit(16) {
                Some(d) if digits < 32 => {
                    value = (value << 4) | u128::from(d);
                    digits += 1;
                }
                None if b == b'-' => {}
                _ => return TestKey::Text(Box::from(id)),
            }
        }
        if digits == 32 {
            TestKey::Guid(value)
        } else {
            TestKey::Text(Box::from(id))
        }
    }
}

/// No further result shares the key.
const END_OF_CHAIN: u32 = u32::MAX;

/// A result waiting for its definition: what is needed to report it, and nothing else.
struct PendingResult {
    name: Box<str>,
    message: Option<Box<str>>,
    outcome: Outcome,
    /// Index of the next pending result with the same `testId` (data-driven and retried
    /// tests have several).
    next: u32,
}

#[derive(Default)]
struct Definition {
    name: String,
    class_name: String,
    method: String,
    categories: Vec<String>,
    traits: Vec<(String, String)>,
}

struct OpenResult {
    level: usize,
    test_id: String,
    name: String,
    outcome: Outcome,
    message: String,
    capture: Option<usize>,
}

struct OpenDefinition {
    level: usize,
    id: String,
    def: Definition,
    /// (level, key, value, which of the two the text goes to).
    property: Option<(usize, String, String)>,
    capture: Option<(usize, bool)>,
}

struct RunInfo {
    level: usize,
    outcome: String,
    text: String,
    capture: Option<usize>,
}

#[derive(Default)]
struct Parser {
    results_level: Option<usize>,
    results_done: bool,
    definitions_level: Option<usize>,
    definitions_done: bool,
    result: Option<OpenResult>,
    definition: Option<OpenDefinition>,
    /// Results waiting for their definitions, in file order.
    pending: Vec<PendingResult>,
    /// First and last index in `pending` of the results of each `testId`.
    pending_index: HashMap<TestKey, (u32, u32)>,
    /// Results with no `testId` cannot be joined; they are reported without a definition.
    unjoinable: Vec<PendingResult>,
    definitions: HashMap<TestKey, Definition>,
    message_bytes: usize,
    summary_outcome: Option<String>,
    counted_failures: u64,
    /// `Counters total`, when the file has it.
    counted_total: Option<u64>,
    run_info: Option<RunInfo>,
    host_problems: Vec<String>,
    run_errors: Vec<String>,
    passed_but_run_aborted: u64,
}

pub(crate) fn parse<R: BufRead>(
    xml: &mut XmlStream<R>,
    _root: &BytesStart<'_>,
    root_empty: bool,
    sink: &mut dyn TestSink,
    out: &mut ParsedFile,
) -> Result<(), ParseError> {
    let mut p = Parser::default();
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
    p.finish(sink, out);
    Ok(())
}

fn map_outcome(outcome: Option<&str>) -> (Outcome, Option<String>) {
    match outcome {
        Some("Passed" | "Completed" | "Warning" | "PassedButRunAborted") => (Outcome::Passed, None),
        Some("Failed") => (Outcome::Failed, None),
        Some("Error" | "NotRunnable") => (Outcome::Errored, None),
        Some("Timeout") => (Outcome::TimedOut, None),
        // InProgress in a finished file: the test started and never ended.
        Some("Aborted" | "Disconnected" | "InProgress") => (Outcome::Aborted, None),
        Some("NotExecuted") => (Outcome::Skipped, None),
        Some("Inconclusive" | "Pending") => (Outcome::Inconclusive, None),
        // Fail closed: an outcome we do not know is not a pass.
        Some(other) => (
            Outcome::Errored,
            Some(format!("unknown TRX outcome \"{other}\"")),
        ),
        None => (
            Outcome::Errored,
            Some("the result has no outcome attribute".to_owned()),
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
        let name = start.local_name();
        let name = name.as_ref();
        // Results and their contents.
        if let Some(results_level) = self.results_level {
            if level == results_level + 1 && self.result.is_none() {
                let [outcome_attr, test_id, test_name] =
                    xml.attrs(start, ["outcome", "testId", "testName"])?;
                if outcome_attr.as_deref() == Some("PassedButRunAborted") {
                    self.passed_but_run_aborted += 1;
                }
                let (outcome, note) = map_outcome(outcome_attr.as_deref());
                self.result = Some(OpenResult {
                    level,
                    test_id: test_id.unwrap_or_default(),
                    name: test_name.unwrap_or_default(),
                    outcome,
                    message: note.unwrap_or_default(),
                    capture: None,
                });
            } else if let Some(result) = &mut self.result
                && name == b"Message"
                && result.message.is_empty()
                && !empty
            {
                result.capture = Some(level);
            }
            return Ok(());
        }
        if let Some(definitions_level) = self.definitions_level {
            if level == definitions_level + 1 && self.definition.is_none() {
                let [id, name] = xml.attrs(start, ["id", "name"])?;
                self.definition = Some(OpenDefinition {
                    level,
                    id: id.unwrap_or_default(),
                    def: Definition {
                        name: name.unwrap_or_default(),
                        ..Definition::default()
                    },
                    property: None,
                    capture: None,
                });
            } else if let Some(open) = &mut self.definition {
                match name {
                    b"TestCategoryItem" => {
                        if let Some(category) = xml.attr(start, "TestCategory")? {
                            let category = category.trim();
                            if !category.is_empty() {
                                open.def.categories.push(category.to_owned());
                            }
                        }
                    }
                    b"TestMethod" => {
                        let [class_name, method] = xml.attrs(start, ["className", "name"])?;
                        open.def.class_name = class_name.unwrap_or_default();
                        open.def.method = method.unwrap_or_default();
                    }
                    b"Property" => open.property = Some((level, String::new(), String::new())),
                    b"Key" if open.property.is_some() && !empty => {
                        open.capture = Some((level, true))
                    }
                    b"Value" if open.property.is_some() && !empty => {
                        open.capture = Some((level, false));
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        match name {
            b"Results" if !empty => self.results_level = Some(level),
            b"TestDefinitions" if !empty => self.definitions_level = Some(level),
            b"ResultSummary" => {
                self.summary_outcome = Some(xml.attr(start, "outcome")?.unwrap_or_default());
            }
            b"Counters" => {
                for counter in ["failed", "error", "timeout", "aborted"] {
                    if let Some(n) = xml.attr(start, counter)?
                        && let Ok(n) = n.trim().parse::<u64>()
                    {
                        self.counted_failures = self.counted_failures.saturating_add(n);
                    }
                }
                if let Some(n) = xml.attr(start, "total")?
                    && let Ok(n) = n.trim().parse::<u64>()
                {
                    self.counted_total = Some(n);
                }
            }
            b"RunInfo" => {
                self.run_info = Some(RunInfo {
                    level,
                    outcome: xml.attr(start, "outcome")?.unwrap_or_default(),
                    text: String::new(),
                    capture: None,
                });
            }
            b"Text" if !empty => {
                if let Some(info) = &mut self.run_info {
                    info.capture = Some(level);
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
        if let Some(result) = &mut self.result {
            if result.capture.is_some() {
                xml.push_text(event, &mut result.message, MESSAGE_CAP)?;
            }
        } else if let Some(open) = &mut self.definition {
            if let (Some((_, is_key)), Some((_, key, value))) = (open.capture, &mut open.property) {
                xml.push_text(event, if is_key { key } else { value }, MESSAGE_CAP)?;
            }
        } else if let Some(info) = &mut self.run_info
            && info.capture.is_some()
        {
            xml.push_text(event, &mut info.text, MESSAGE_CAP)?;
        }
        Ok(())
    }

    fn close(&mut self, level: usize, sink: &mut dyn TestSink, out: &mut ParsedFile) {
        if let Some(result) = &mut self.result {
            if result.capture == Some(level) {
                result.capture = None;
            } else if result.level == level
                && let Some(result) = self.result.take()
            {
                self.result_done(result, sink, out);
            }
            return;
        }
        if self.results_level == Some(level) {
            self.results_level = None;
            self.results_done = true;
            return;
        }
        if let Some(open) = &mut self.definition {
            if open.capture.is_some_and(|(l, _)| l == level) {
                open.capture = None;
            } else if open.property.as_ref().is_some_and(|(l, _, _)| *l == level) {
                if let Some((_, key, value)) = open.property.take() {
                    let key = key.trim();
                    if !key.is_empty() {
                        open.def
                            .traits
                            .push((key.to_owned(), value.trim().to_owned()));
                    }
                }
            } else if open.level == level
                && let Some(open) = self.definition.take()
            {
                self.definition_done(open.id, open.def, sink, out);
            }
            return;
        }
        if self.definitions_level == Some(level) {
            self.definitions_level = None;
            self.definitions_done = true;
            return;
        }
        if let Some(info) = &mut self.run_info {
            if info.capture == Some(level) {
                info.capture = None;
            } else if info.level == level
                && let Some(info) = self.run_info.take()
            {
                self.run_info_done(info);
            }
        }
    }

    fn result_done(&mut self, result: OpenResult, sink: &mut dyn TestSink, out: &mut ParsedFile) {
        let message = result.message.trim();
        if self.definitions_done {
            let def = self.definitions.get(&TestKey::new(&result.test_id));
            emit(&result.name, result.outcome, message, def, sink, out);
            return;
        }
        // Waiting for the definition: keep the message only while the budget lasts.
        let message = if message.is_empty() {
            None
        } else if self.message_bytes + message.len() <= PENDING_MESSAGE_BUDGET {
            self.message_bytes += message.len();
            Some(Box::from(message))
        } else {
            Some(Box::from(
                "(message not kept: too many failure messages in this file)",
            ))
        };
        let pending = PendingResult {
            name: result.name.into_boxed_str(),
            message,
            outcome: result.outcome,
            next: END_OF_CHAIN,
        };
        let index = u32::try_from(self.pending.len())
            .ok()
            .filter(|i| *i != END_OF_CHAIN);
        let (Some(index), false) = (index, result.test_id.is_empty()) else {
            self.unjoinable.push(pending);
            return;
        };
        self.pending.push(pending);
        match self.pending_index.entry(TestKey::new(&result.test_id)) {
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let (_, last) = entry.get_mut();
                if let Some(previous) = self.pending.get_mut(*last as usize) {
                    previous.next = index;
                }
                *last = index;
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert((index, index));
            }
        }
    }

    /// Reports every pending result of one `testId`.
    fn emit_chain(
        &self,
        first: u32,
        def: Option<&Definition>,
        sink: &mut dyn TestSink,
        out: &mut ParsedFile,
    ) {
        let mut at = first;
        while let Some(r) = self.pending.get(at as usize) {
            emit(
                &r.name,
                r.outcome,
                r.message.as_deref().unwrap_or(""),
                def,
                sink,
                out,
            );
            at = r.next;
        }
    }

    fn definition_done(
        &mut self,
        id: String,
        def: Definition,
        sink: &mut dyn TestSink,
        out: &mut ParsedFile,
    ) {
        let key = TestKey::new(&id);
        if self.results_done {
            if let Some((first, _)) = self.pending_index.remove(&key) {
                self.emit_chain(first, Some(&def), sink, out);
            }
        } else {
            self.definitions.insert(key, def);
        }
    }

    fn run_info_done(&mut self, info: RunInfo) {
        let text = info.text.trim();
        if !info.outcome.eq_ignore_ascii_case("Error") {
            return;
        }
        let lower = text.to_lowercase();
        if HOST_FAILURE_PHRASES.iter().any(|p| lower.contains(p)) {
            if self.host_problems.len() < 5 {
                self.host_problems
                    .push(format!("the test host failed: {}", first_line(text, 300)));
            }
        } else if self.run_errors.len() < 5 && !text.is_empty() {
            self.run_errors.push(first_line(text, 300));
        }
    }

    fn finish(mut self, sink: &mut dyn TestSink, out: &mut ParsedFile) {
        // Results whose definition never came (or came before we knew to wait for it).
        // In file order, so that the kept failure list is stable.
        let mut chains: Vec<(u32, TestKey)> = std::mem::take(&mut self.pending_index)
            .into_iter()
            .map(|(key, (first, _))| (first, key))
            .collect();
        chains.sort_by_key(|(first, _)| *first);
        for (first, key) in chains {
            self.emit_chain(first, self.definitions.get(&key), sink, out);
        }
        for r in std::mem::take(&mut self.unjoinable) {
            emit(
                &r.name,
                r.outcome,
                r.message.as_deref().unwrap_or(""),
                None,
                sink,
                out,
            );
        }

        out.problems.append(&mut self.host_problems);
        // The run's own counters against the results the file lists: a
        // disagreement either way means results are missing (or invented),
        // whatever the summary's outcome says.
        let listed_failures = out.tests.failures();
        if self.summary_outcome.is_some() && self.counted_failures != listed_failures {
            out.problems.push(format!(
                "the run's counters report {} failed test{} (failed, error, timeout, aborted), but the file lists {listed_failures}: results are missing or do not match the run",
                self.counted_failures,
                if self.counted_failures == 1 { "" } else { "s" }
            ));
        }
        if let Some(total) = self.counted_total
            && total != out.tests.total()
        {
            out.problems.push(format!(
                "the run's counters report {total} test{}, but the file lists {}: results are missing or do not match the run",
                if total == 1 { "" } else { "s" },
                out.tests.total()
            ));
        }
        if self.passed_but_run_aborted > 0 {
            out.problems.push(format!(
                "the test run was aborted ({} tests are marked PassedButRunAborted)",
                self.passed_but_run_aborted
            ));
        }
        match self.summary_outcome.as_deref() {
            None => out.problems.push(
                "no <ResultSummary>: the test run did not finish writing its results".to_owned(),
            ),
            Some(
                outcome @ ("Aborted" | "Error" | "Timeout" | "Disconnected" | "InProgress"
                | "Pending" | "NotRunnable"),
            ) => {
                out.problems.push(format!(
                    "the test run ended with outcome {outcome}{}",
                    self.run_errors
                        .first()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
            }
            Some("Failed")
                if out.tests.failures() == 0
                    && self.counted_failures == 0
                    && out.problems.is_empty() =>
            {
                out.problems.push(format!(
                    "the test run is marked Failed but no test failed{}",
                    self.run_errors
                        .first()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_else(|| " (the test host may have failed)".to_owned())
                ));
            }
            Some(_) => {}
        }
    }
}

fn emit(
    name: &str,
    outcome: Outcome,
    message: &str,
    def: Option<&Definition>,
    sink: &mut dyn TestSink,
    out: &mut ParsedFile,
) {
    let mut case = TestCase::new(outcome);
    push_capped(&mut case.message, message, MESSAGE_CAP);
    match def {
        Some(def) => {
            case.name = if name.is_empty() {
                def.name.clone()
            } else {
                name.to_owned()
            };
            case.class_name = def.class_name.clone();
            case.fully_qualified_name = if !def.class_name.is_empty() && !def.method.is_empty() {
                format!("{}.{}", def.class_name, def.method)
            } else {
                case.name.clone()
            };
            case.categories = def.categories.clone();
            case.traits = def.traits.clone();
        }
        None => {
            case.name = name.to_owned();
            case.fully_qualified_name = name.to_owned();
        }
    }
    out.tests.add(outcome);
    sink.test_case(&case);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_ids_pack_into_128_bits_and_others_stay_text() {
        assert_eq!(
            TestKey::new("dcecfeee-3998-3d8c-a5d6-9411bf1f1b06"),
            TestKey::new("DCECFEEE39983D8CA5D69411BF1F1B06")
        );
        assert!(matches!(
            TestKey::new("dcecfeee-3998-3d8c-a5d6-9411bf1f1b06"),
            TestKey::Guid(_)
        ));
        assert!(matches!(TestKey::new("test-1"), TestKey::Text(_)));
        assert!(matches!(
            TestKey::new("dcecfeee39983d8ca5d69411bf1f1b0600"),
            TestKey::Text(_)
        ));
        assert_ne!(TestKey::new("a"), TestKey::new("b"));
    }
}
