//! A thin streaming layer over quick-xml shared by the JUnit, TRX and NUnit parsers: it
//! tracks the open elements (to tell a truncated file from a complete one), turns quick-xml
//! errors into [`ParseError`]s with byte offsets, and decodes attributes and text.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::model::{ParseError, push_capped};

/// Deeper nesting than any real result file has; stops hostile input from growing the stack
/// of open element names without bound.
const MAX_DEPTH: usize = 512;

pub(crate) struct XmlStream<R> {
    reader: Reader<R>,
    path: String,
    /// Bytes consumed before quick-xml saw the input (BOM, leading whitespace).
    base: u64,
    /// Names of the open elements, concatenated (one buffer, no allocation per tag).
    open_names: Vec<u8>,
    /// End of each open element's name in `open_names`.
    open_ends: Vec<usize>,
    root_seen: bool,
    root_closed: bool,
}

impl<R: BufRead> XmlStream<R> {
    pub(crate) fn new(inner: R, path: &str, base: u64) -> Self {
        XmlStream {
            reader: Reader::from_reader(inner),
            path: path.to_owned(),
            base,
            open_names: Vec::new(),
            open_ends: Vec::new(),
            root_seen: false,
            root_closed: false,
        }
    }

    /// Number of elements open after the last event (an `End` has already been popped).
    pub(crate) fn depth(&self) -> usize {
        self.open_ends.len()
    }

    fn innermost(&self) -> Option<String> {
        let end = *self.open_ends.last()?;
        let start = self.open_ends.iter().rev().nth(1).copied().unwrap_or(0);
        Some(lossy(&self.open_names[start..end]))
    }

    fn pop(&mut self) {
        self.open_ends.pop();
        self.open_names
            .truncate(self.open_ends.last().copied().unwrap_or(0));
    }

    fn offset(&self) -> u64 {
        self.base + self.reader.buffer_position()
    }

    /// The next event. `Eof` is returned only when every element was closed; otherwise the
    /// file is reported as truncated.
    pub(crate) fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, ParseError> {
        buf.clear();
        let event = match self.reader.read_event_into(buf) {
            Ok(event) => event,
            Err(err) => return Err(self.reader_error(err)),
        };
        match &event {
            Event::Start(start) | Event::Empty(start) => {
                if self.root_closed {
                    return Err(self.error(format!(
                        "a second root element <{}> after the document ended (two files concatenated?)",
                        lossy(start.local_name().as_ref())
                    )));
                }
                self.root_seen = true;
                if matches!(event, Event::Start(_)) {
                    if self.open_ends.len() >= MAX_DEPTH {
                        return Err(
                            self.error(format!("elements nested deeper than {MAX_DEPTH} levels"))
                        );
                    }
                    self.open_names
                        .extend_from_slice(start.local_name().as_ref());
                    self.open_ends.push(self.open_names.len());
                } else if self.open_ends.is_empty() {
                    self.root_closed = true;
                }
            }
            Event::End(_) => {
                // check_end_names (on by default) already rejected a mismatched end tag.
                self.pop();
                if self.open_ends.is_empty() {
                    self.root_closed = true;
                }
            }
            Event::GeneralRef(reference) => {
                // Entities are validated even where the text is not kept: an unknown entity
                // means the file is not what the tool wrote.
                resolve_reference(reference).map_err(|message| self.error(message))?;
            }
            Event::Text(text)
                if self.open_ends.is_empty() && !text.iter().all(u8::is_ascii_whitespace) =>
            {
                return Err(self.error("text outside the root element".to_owned()));
            }
            Event::Eof => {
                if let Some(element) = self.innermost() {
                    return Err(ParseError::Truncated {
                        path: self.path.clone(),
                        offset: self.offset(),
                        element,
                    });
                }
                if !self.root_seen {
                    return Err(ParseError::UnknownFormat {
                        path: self.path.clone(),
                        detail: "XML without a root element".to_owned(),
                    });
                }
            }
            _ => {}
        }
        Ok(event)
    }

    fn reader_error(&self, err: quick_xml::Error) -> ParseError {
        use quick_xml::errors::SyntaxError;
        match err {
            quick_xml::Error::Io(io) => ParseError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(io.kind(), io.to_string()),
            },
            // An unclosed tag, comment or CDATA at the end of input is a cut-off file.
            quick_xml::Error::Syntax(
                SyntaxError::UnclosedTag
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedPIOrXmlDecl
                | SyntaxError::UnclosedDoctype,
            ) if self.root_seen => ParseError::Truncated {
                path: self.path.clone(),
                offset: self.offset(),
                element: self.innermost().unwrap_or_else(|| "a tag".to_owned()),
            },
            other => ParseError::Xml {
                path: self.path.clone(),
                offset: self.base + self.reader.error_position(),
                message: other.to_string(),
            },
        }
    }

    /// A well-formedness error at the current position.
    pub(crate) fn error(&self, message: String) -> ParseError {
        ParseError::Xml {
            path: self.path.clone(),
            offset: self.offset(),
            message,
        }
    }

    /// The unescaped value of attribute `name` (local name, namespace prefix ignored).
    pub(crate) fn attr(
        &self,
        start: &BytesStart<'_>,
        name: &str,
    ) -> Result<Option<String>, ParseError> {
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.error(format!("bad attribute: {e}")))?;
            if attr.key.local_name().as_ref() == name.as_bytes() {
                let value = attr
                    .unescape_value()
                    .map_err(|e| self.error(format!("bad value of attribute {name}: {e}")))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    /// The unescaped values of several attributes, read in one pass over the tag.
    pub(crate) fn attrs<const N: usize>(
        &self,
        start: &BytesStart<'_>,
        names: [&str; N],
    ) -> Result<[Option<String>; N], ParseError> {
        let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.error(format!("bad attribute: {e}")))?;
            let key = attr.key.local_name();
            if let Some(i) = names.iter().position(|n| n.as_bytes() == key.as_ref()) {
                let value = attr
                    .unescape_value()
                    .map_err(|e| self.error(format!("bad value of attribute {}: {e}", names[i])))?;
                values[i] = Some(value.into_owned());
            }
        }
        Ok(values)
    }

    /// Appends the character data of a `Text`, `CData` or `GeneralRef` event to `dst`, capped
    /// at `cap` bytes. Other events are ignored.
    pub(crate) fn push_text(
        &self,
        event: &Event<'_>,
        dst: &mut String,
        cap: usize,
    ) -> Result<(), ParseError> {
        match event {
            Event::Text(text) => {
                let text = text
                    .decode()
                    .map_err(|e| self.error(format!("text is not UTF-8: {e}")))?;
                push_capped(dst, &text, cap);
            }
            Event::CData(data) => {
                let data = data
                    .decode()
                    .map_err(|e| self.error(format!("CDATA is not UTF-8: {e}")))?;
                push_capped(dst, &data, cap);
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(reference).map_err(|m| self.error(m))?;
                push_capped(dst, &resolved, cap);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Local name of an element as text.
pub(crate) fn local_name(start: &BytesStart<'_>) -> String {
    lossy(start.local_name().as_ref())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `&#10;`, `&#x9;` and the five predefined entities; anything else is an error.
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, String> {
    match reference.resolve_char_ref() {
        Ok(Some(ch)) => return Ok(ch.to_string()),
        Ok(None) => {}
        Err(e) => return Err(format!("bad character reference: {e}")),
    }
    let name = reference
        .decode()
        .map_err(|e| format!("entity name is not UTF-8: {e}"))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

/// One element-level event, as the parsers handle them.
pub(crate) enum Node<'e, 'b> {
    /// An element opens (`empty`: it also closes at once, and a
    /// [`Node::Close`] for it follows).
    Open {
        /// The start tag.
        start: &'e BytesStart<'b>,
        /// Its depth (the root is 1).
        level: usize,
        /// `<x/>`.
        empty: bool,
    },
    /// The element at `level` closes.
    Close {
        /// Its depth.
        level: usize,
    },
    /// Text, CDATA or an entity reference inside the current element.
    Text(&'e Event<'b>),
}

/// Reads events to the end of the input and hands each element-level event
/// to `on`. Every parser walks its file this way; keeping the walk in one
/// place keeps their depth bookkeeping identical.
pub(crate) fn pump<R: BufRead>(
    xml: &mut XmlStream<R>,
    mut on: impl FnMut(&XmlStream<R>, Node<'_, '_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut buf = Vec::new();
    loop {
        let event = xml.next(&mut buf)?;
        match &event {
            Event::Start(start) => {
                let level = xml.depth();
                on(
                    xml,
                    Node::Open {
                        start,
                        level,
                        empty: false,
                    },
                )?;
            }
            Event::Empty(start) => {
                let level = xml.depth() + 1;
                on(
                    xml,
                    Node::Open {
                        start,
                        level,
                        empty: true,
                    },
                )?;
                on(xml, Node::Close { level })?;
            }
            Event::End(_) => on(
                xml,
                Node::Close {
                    level: xml.depth() + 1,
                },
            )?,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => on(xml, Node::Text(&event))?,
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Reads to the end without handling anything, so that trailing garbage
/// after an empty root element is still reported.
pub(crate) fn drain<R: BufRead>(xml: &mut XmlStream<R>) -> Result<(), ParseError> {
    let mut buf = Vec::new();
    while !matches!(xml.next(&mut buf)?, Event::Eof) {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_names_the_innermost_open_element() {
        let mut xml = XmlStream::new(&b"<a><bb><ccc></ccc><dd>"[..], "f", 0);
        let mut buf = Vec::new();
        let err = loop {
            match xml.next(&mut buf) {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        match err {
            ParseError::Truncated {
                element, offset, ..
            } => {
                assert_eq!(element, "dd");
                assert_eq!(offset, 22);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn text_outside_the_root_and_a_second_root_are_errors() {
        for input in [&b"<a/>junk"[..], &b"<a></a><b/>"[..], &b"junk<a/>"[..]] {
            let mut xml = XmlStream::new(input, "f", 0);
            let mut buf = Vec::new();
            let mut failed = false;
            for _ in 0..10 {
                match xml.next(&mut buf) {
                    Ok(Event::Eof) => break,
                    Ok(_) => {}
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "{}", String::from_utf8_lossy(input));
        }
    }
}
