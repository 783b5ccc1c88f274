//! Workflow-command formatting with the runner's escaping rules.
//!
//! The runner parses every line of stdout and stderr that starts with `::`
//! (after trimming leading white space) as a command `::name k=v,k=v::data`.
//! Data and property values are escaped exactly as `actions/toolkit`'s
//! `command.ts` does, `%` first, so an untrusted string can never end a
//! property early, add a property, or start a new line (and so a new command).

use std::fmt::Write as _;

/// Replaces each character `map` names, in one pass (so a replacement is
/// never escaped again). Shared with [`super::vso`], whose agent escapes
/// differently.
pub(crate) fn escape_chars(s: &str, map: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match map(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

/// Escapes a command's data part: `%`, CR and LF.
pub fn escape_data(s: &str) -> String {
    escape_chars(s, escape_data_char)
}

/// Escapes a property value: the data escapes plus `:` and `,`, which would
/// otherwise end the property list or split it.
pub fn escape_property(s: &str) -> String {
    escape_chars(s, |c| match c {
        ':' => Some("%3A"),
        ',' => Some("%2C"),
        c => escape_data_char(c),
    })
}

fn escape_data_char(c: char) -> Option<&'static str> {
    match c {
        '%' => Some("%25"),
        '\r' => Some("%0D"),
        '\n' => Some("%0A"),
        _ => None,
    }
}

/// Annotation level, as the runner names the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `::error`
    Error,
    /// `::warning`
    Warning,
    /// `::notice`
    Notice,
}

impl Level {
    /// The command name.
    pub fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// An annotation: a message the runner shows on the run page, optionally
/// attached to a file and line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Annotation {
    /// Short title shown in bold.
    pub title: Option<String>,
    /// Path of the file the message is about (workspace-relative or absolute).
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// Last line of the range; dropped by the runner without `line`.
    pub end_line: Option<u32>,
    /// 1-based column; dropped by the runner without `line`.
    pub col: Option<u32>,
    /// The message itself.
    pub message: String,
}

impl Annotation {
    /// An annotation carrying only a message.
    pub fn message(message: impl Into<String>) -> Self {
        Annotation {
            message: message.into(),
            ..Annotation::default()
        }
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Renders the full command line (without the trailing newline).
    pub fn render(&self, level: Level) -> String {
        let mut props: Vec<(&str, String)> = Vec::new();
        if let Some(title) = &self.title {
            props.push(("title", title.clone()));
        }
        if let Some(file) = &self.file {
            props.push(("file", file.clone()));
        }
        if let Some(line) = self.line {
            props.push(("line", line.to_string()));
            if let Some(end) = self.end_line.filter(|e| *e >= line) {
                props.push(("endLine", end.to_string()));
            }
            if let Some(col) = self.col {
                props.push(("col", col.to_string()));
            }
        }
        command(level.command(), &props, &self.message)
    }
}

/// Renders `::name k=v,...::data` with both parts escaped.
pub fn command(name: &str, props: &[(&str, String)], data: &str) -> String {
    let mut line = String::with_capacity(data.len() + 16);
    line.push_str("::");
    line.push_str(name);
    for (i, (k, v)) in props.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        // Writing to a String cannot fail.
        let _ = write!(line, "{k}={}", escape_property(v));
    }
    line.push_str("::");
    line.push_str(&escape_data(data));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_escapes_percent_first() {
        assert_eq!(escape_data("100%\nx"), "100%25%0Ax");
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn property_escapes_separators() {
        assert_eq!(escape_property("a:b,c=d"), "a%3Ab%2Cc=d");
    }

    #[test]
    fn annotation_cannot_break_out() {
        let a = Annotation {
            title: Some("t,file=evil".into()),
            file: Some("src/a.rs".into()),
            line: Some(3),
            message: "bad\n::set-output name=x::1".into(),
            ..Annotation::default()
        };
        let line = a.render(Level::Error);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(
            line,
            "::error title=t%2Cfile=evil,file=src/a.rs,line=3::bad%0A::set-output name=x::1"
        );
    }

    #[test]
    fn end_line_before_line_is_dropped() {
        let a = Annotation {
            line: Some(5),
            end_line: Some(2),
            ..Annotation::message("m")
        };
        assert_eq!(a.render(Level::Warning), "::warning line=5::m");
    }
}
