//! Opening a result file, telling its format from its content, and handing it to the right
//! streaming parser.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use quick_xml::events::Event;

use super::junit::CategoryPattern;
use super::model::{Format, ParseError, ParsedFile, TestSink};
use super::xml::{XmlStream, local_name};
use super::{junit, nunit, sarif, trx};

/// Longest failure message kept per test, in bytes.
pub(crate) const MESSAGE_CAP: usize = 2000;

/// Read buffer; large enough that big files are read in few system calls, small enough to
/// be irrelevant to peak memory.
const READ_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub(crate) struct ParseOptions {
    /// Categories in JUnit test names; `None` turns name tags off.
    pub(crate) category_pattern: Option<CategoryPattern>,
}

/// What the caller accepts in this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// JUnit, TRX or NUnit 3.
    TestResults,
    /// SARIF only.
    Sarif,
    /// Exactly this format.
    Exactly(Format),
}

impl Expect {
    fn accepts(self, format: Format) -> bool {
        match self {
            Expect::TestResults => format != Format::Sarif,
            Expect::Sarif => format == Format::Sarif,
            Expect::Exactly(f) => f == format,
        }
    }

    fn describe(self) -> String {
        match self {
            Expect::TestResults => {
                "a test result file (JUnit XML, TRX or NUnit 3; SARIF goes to the security scan setting)"
                    .to_owned()
            }
            Expect::Sarif => "a SARIF security scan (test results go to the results setting)".to_owned(),
            Expect::Exactly(f) => f.to_string(),
        }
    }
}

/// Parses the file at `path`; `display` is how errors and summaries name it.
pub(crate) fn parse_path(
    path: &Path,
    display: &str,
    expect: Expect,
    opts: &ParseOptions,
    sink: &mut dyn TestSink,
) -> Result<ParsedFile, ParseError> {
    let io_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ParseError::Missing {
                path: display.to_owned(),
            }
        } else {
            ParseError::Io {
                path: display.to_owned(),
                source,
            }
        }
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if metadata.is_dir() {
        return Err(ParseError::Directory {
            path: display.to_owned(),
        });
    }
    let file = File::open(path).map_err(io_error)?;
    parse_reader(
        BufReader::with_capacity(READ_BUFFER, file),
        display,
        expect,
        opts,
        sink,
    )
}

/// Parses from any buffered reader (the file, or bytes in memory).
pub(crate) fn parse_reader<R: BufRead>(
    mut reader: R,
    display: &str,
    expect: Expect,
    opts: &ParseOptions,
    sink: &mut dyn TestSink,
) -> Result<ParsedFile, ParseError> {
    let (first, skipped) = sniff(&mut reader, display)?;
    let mut out = ParsedFile::default();
    match first {
        b'<' => {
            let mut xml = XmlStream::new(reader, display, skipped);
            let mut buf = Vec::new();
            let (root, empty) = loop {
                match xml.next(&mut buf)? {
                    Event::Start(start) => break (start.into_owned(), false),
                    Event::Empty(start) => break (start.into_owned(), true),
                    _ => {}
                }
            };
            let format = match root.local_name().as_ref() {
                b"testsuites" | b"testsuite" => Format::JUnit,
                b"TestRun" => Format::Trx,
                b"test-run" => Format::NUnit3,
                b"test-results" => {
                    return Err(ParseError::UnknownFormat {
                        path: display.to_owned(),
                        detail: "NUnit 2 result XML (<test-results>) is not supported; write NUnit 3 results (nunit3-console --result=TestResult.xml) or TRX".to_owned(),
                    });
                }
                _ => {
                    return Err(ParseError::UnknownFormat {
                        path: display.to_owned(),
                        detail: format!(
                            "XML root element <{}>; expected <testsuites> or <testsuite> (JUnit), <TestRun> (TRX) or <test-run> (NUnit 3)",
                            local_name(&root)
                        ),
                    });
                }
            };
            check(expect, format, display)?;
            out.format = Some(format);
            match format {
                Format::JUnit => junit::parse(&mut xml, &root, empty, opts, sink, &mut out)?,
                Format::Trx => trx::parse(&mut xml, &root, empty, sink, &mut out)?,
                Format::NUnit3 => nunit::parse(&mut xml, &root, empty, sink, &mut out)?,
                Format::Sarif => {}
            }
        }
        b'{' => {
            check(expect, Format::Sarif, display)?;
            out.format = Some(Format::Sarif);
            sarif::parse(reader, display, &mut out)?;
        }
        other => {
            return Err(ParseError::UnknownFormat {
                path: display.to_owned(),
                detail: format!(
                    "starts with {}; expected XML (JUnit, TRX, NUnit 3) or SARIF JSON",
                    describe_byte(other)
                ),
            });
        }
    }
    Ok(out)
}

fn check(expect: Expect, format: Format, display: &str) -> Result<(), ParseError> {
    if expect.accepts(format) {
        Ok(())
    } else {
        Err(ParseError::WrongFormat {
            path: display.to_owned(),
            found: format,
            expected: expect.describe(),
        })
    }
}

fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("byte 0x{byte:02X}")
    }
}

/// Skips a UTF-8 byte order mark and leading whitespace and returns the first significant
/// byte (not consumed) and how many bytes were skipped. A file with nothing else is empty.
fn sniff<R: BufRead>(reader: &mut R, display: &str) -> Result<(u8, u64), ParseError> {
    let io_error = |source| ParseError::Io {
        path: display.to_owned(),
        source,
    };
    let mut skipped: u64 = 0;
    loop {
        let buf = reader.fill_buf().map_err(io_error)?;
        if buf.is_empty() {
            return Err(ParseError::Empty {
                path: display.to_owned(),
                bytes: skipped,
            });
        }
        if skipped == 0 {
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                reader.consume(3);
                skipped = 3;
                continue;
            }
            if buf.starts_with(&[0xFF, 0xFE]) || buf.starts_with(&[0xFE, 0xFF]) {
                return Err(ParseError::UnknownFormat {
                    path: display.to_owned(),
                    detail: "the file is UTF-16; save result files as UTF-8".to_owned(),
                });
            }
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                let first = buf[at];
                reader.consume(at);
                return Ok((first, skipped + at as u64));
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::model::TestCase;

    struct Discard;
    impl TestSink for Discard {
        fn test_case(&mut self, _case: &TestCase) {}
    }

    fn parse(bytes: &[u8]) -> Result<ParsedFile, ParseError> {
        parse_reader(
            bytes,
            "f.xml",
            Expect::TestResults,
            &ParseOptions::default(),
            &mut Discard,
        )
    }

    #[test]
    fn whitespace_and_bom_only_is_empty() {
        let err = parse(b"\xEF\xBB\xBF \n\t ").unwrap_err();
        assert!(matches!(err, ParseError::Empty { bytes: 7, .. }), "{err}");
        assert!(matches!(
            parse(b"").unwrap_err(),
            ParseError::Empty { bytes: 0, .. }
        ));
    }

    #[test]
    fn unknown_root_and_utf16_are_named() {
        let err = parse(b"<html><body/></html>").unwrap_err().to_string();
        assert!(err.contains("<html>") && err.contains("f.xml"), "{err}");
        let err = parse(b"\xFF\xFE<\0").unwrap_err().to_string();
        assert!(err.contains("UTF-16"), "{err}");
        let err = parse(b"hello").unwrap_err().to_string();
        assert!(err.contains("'h'"), "{err}");
    }

    #[test]
    fn sarif_is_refused_where_test_results_are_expected() {
        let err = parse(br#"{"version":"2.1.0","runs":[]}"#).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::WrongFormat {
                    found: Format::Sarif,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn offsets_count_the_skipped_prefix() {
        let err = parse(b"\xEF\xBB\xBF  <testsuites><testsuite></testsuites>").unwrap_err();
        match err {
            // 3 (BOM) + 2 (spaces) + 23: where `</testsuites>` starts.
            ParseError::Xml { offset, .. } => assert_eq!(offset, 28),
            other => panic!("unexpected {other}"),
        }
    }
}
