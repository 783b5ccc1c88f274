//! Azure Pipelines logging commands (`##vso[area.action k=v;k=v]data`) and
//! the formatting commands (`##[group]`, `##[debug]`…), with the agent's
//! escaping rules — and the one function that makes any other text inert.
//!
//! How the agent reads a script step's output (microsoft/azure-pipelines-
//! agent, `Command.cs` and `CommandStringConvertor.cs`): it reads stdout and
//! stderr, splits lines on `\n` and also on a bare `\r`, and finds the first
//! `##vso[` **anywhere** in a line (an ordinal `IndexOf`, not a prefix
//! match), then the first `]` after it; the rest of the line is the data.
//! A line it processes is not shown. `##[` formatting commands count only
//! at the start of a line. Values are unescaped `%3B` → `;`, `%0D`, `%0A`,
//! `%5D` → `]`, then `%AZP25` → `%` (in that order, so `%AZP253B` is not
//! decoded twice) — the escaping `azure-pipelines-task-lib` writes.
//!
//! So, unlike GitHub's runner (commands only at a line's start), flattening
//! text onto one line protects nothing here: [`inert`] breaks every
//! `##vso[` wherever it is, and every `##[` at a line's start.

use std::fmt::Write as _;

use super::escape::escape_chars;

/// Escapes a logging command's data: `%`, CR and LF (task-lib's
/// `escapedata`).
pub fn escape_data(s: &str) -> String {
    escape_chars(s, data_char)
}

/// Escapes a property value: the data escapes plus `;` (ends a property)
/// and `]` (ends the property list).
pub fn escape_property(s: &str) -> String {
    escape_chars(s, |c| match c {
        ';' => Some("%3B"),
        ']' => Some("%5D"),
        c => data_char(c),
    })
}

fn data_char(c: char) -> Option<&'static str> {
    match c {
        '%' => Some("%AZP25"),
        '\r' => Some("%0D"),
        '\n' => Some("%0A"),
        _ => None,
    }
}

/// Renders `##vso[area.action k=v;k=v;]data`, both parts escaped.
pub fn command(area_action: &str, props: &[(&str, String)], data: &str) -> String {
    let mut line = String::with_capacity(data.len() + 32);
    line.push_str("##vso[");
    line.push_str(area_action);
    for (i, (k, v)) in props.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ';' });
        let _ = write!(line, "{k}={}", escape_property(v));
    }
    if !props.is_empty() {
        line.push(';');
    }
    line.push(']');
    line.push_str(&escape_data(data));
    line
}

/// The word joiner (U+2060): invisible, and it breaks the agent's match.
const JOINER: char = '\u{2060}';

/// Text the agent can never read as a command: every `##vso[` anywhere gets
/// an invisible joiner after its `##` (so it still reads `##vso[` to a
/// person), a `##[` at the start of a line the same, and a bare `\r` — a
/// line break to the agent, which could start a line — becomes `\n`.
pub fn inert(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let broken = line.replace("##vso[", &format!("##{JOINER}vso["));
        let start = broken.len() - broken.trim_start().len();
        if broken[start..].starts_with("##[") {
            out.push_str(&broken[..start]);
            out.push('#');
            out.push(JOINER);
            out.push_str(&broken[start + 1..]);
        } else {
            out.push_str(&broken);
        }
    }
    out
}

/// True when the agent would act on some line of `text`.
pub fn would_command(text: &str) -> bool {
    text.split(['\n', '\r'])
        .any(|l| l.contains("##vso[") || l.trim_start().starts_with("##["))
}

/// An output or variable name the agent accepts: letters, digits, `.` and
/// `_` (a hyphen becomes `_`: `previous-version` is `previous_version`).
pub fn variable_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's unescaping, in its order (`CommandStringConvertor.cs`).
    fn unescape(s: &str) -> String {
        s.replace("%3B", ";")
            .replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%5D", "]")
            .replace("%AZP25", "%")
    }

    /// (area.action, properties, data).
    type Parsed = (String, Vec<(String, String)>, String);

    /// The agent's parse of one line.
    fn parse(line: &str) -> Option<Parsed> {
        let at = line.find("##vso[")?;
        let rest = &line[at + 6..];
        let end = rest.find(']')?;
        let head = &rest[..end];
        let (name, props) = head.split_once(' ').unwrap_or((head, ""));
        let props = props
            .split(';')
            .filter(|p| !p.trim().is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape(v)))
            .collect();
        Some((name.to_string(), props, unescape(&rest[end + 1..])))
    }

    #[test]
    fn values_round_trip_through_the_agents_unescaping() {
        for value in [
            "plain",
            "100%",
            "a;b]c",
            "two\nlines\r\n",
            "%3B stays %3B",
            "%AZP25",
            "x]##vso[task.setvariable variable=evil]1",
        ] {
            let line = command(
                "task.setvariable",
                &[("variable", "out".into()), ("isoutput", "true".into())],
                value,
            );
            assert_eq!(line.lines().count(), 1, "{line}");
            let (name, props, data) = parse(&line).unwrap();
            assert_eq!(name, "task.setvariable");
            assert_eq!(
                props,
                [
                    ("variable".to_string(), "out".to_string()),
                    ("isoutput".to_string(), "true".to_string())
                ]
            );
            assert_eq!(data, value, "{line}");
            // A property carrying the same text cannot add a property.
            let line = command("task.logissue", &[("type", value.into())], "m");
            let (_, props, _) = parse(&line).unwrap();
            assert_eq!(props.len(), 1, "{line}");
            assert_eq!(props[0].1, value);
        }
    }

    #[test]
    fn inert_text_starts_no_command_anywhere() {
        for hostile in [
            "##vso[task.setvariable variable=x]1",
            "reason: ##vso[task.prependpath]/tmp/evil",
            "##[error]fake",
            "   ##[group]fake",
            "ok\r##vso[task.complete result=Failed]",
            "ok\r##[warning]x",
            "a\r\n##vso[artifact.upload]x",
        ] {
            let safe = inert(hostile);
            assert!(!would_command(&safe), "{hostile:?} → {safe:?}");
            // What a person reads is unchanged but for the invisible joiner.
            assert_eq!(
                safe.replace(JOINER, ""),
                hostile.replace("\r\n", "\n").replace('\r', "\n")
            );
        }
        // Text without commands is untouched.
        assert_eq!(
            inert("deploy 2.4.1: promoted (## 5)"),
            "deploy 2.4.1: promoted (## 5)"
        );
    }

    #[test]
    fn variable_names_are_what_the_agent_accepts() {
        assert_eq!(variable_name("previous-version"), "previous_version");
        assert_eq!(variable_name("result"), "result");
    }
}
