//! File commands: `$GITHUB_OUTPUT`, `$GITHUB_STATE`, `$GITHUB_ENV` and
//! `$GITHUB_STEP_SUMMARY`.
//!
//! Key/value files get `name<<DELIM` blocks with a fresh random delimiter
//! per value, as `@actions/core` writes them. A fixed or guessable delimiter
//! would let a value holding a line equal to it end the block early and
//! smuggle in further `name=value` lines — extra outputs or environment
//! variables for later steps. A value that contains the delimiter is refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The runner aborts a step summary larger than this (1 MiB).
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Failure to write a file command.
#[derive(Debug, thiserror::Error)]
pub enum FileCommandError {
    /// The name cannot be written safely.
    #[error(
        "{kind} name {name:?} is invalid: names must be non-empty and free of '=', '<<' and line breaks"
    )]
    InvalidName {
        /// Which file.
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// The value contains the delimiter (which should be impossible by chance).
    #[error("{kind} value for {name:?} contains the random delimiter; refusing to write it")]
    DelimiterInValue {
        /// Which file.
        kind: &'static str,
        /// The output or state name.
        name: String,
    },
    /// The file could not be written.
    #[error("cannot write {kind} file {path}: {source}")]
    Io {
        /// Which file.
        kind: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Appends one `name<<DELIM` block to a key/value file command.
pub fn append_key_value(
    kind: &'static str,
    path: &Path,
    name: &str,
    value: &str,
) -> Result<(), FileCommandError> {
    if name.is_empty() || name.contains('=') || name.contains("<<") || name.contains(['\n', '\r']) {
        return Err(FileCommandError::InvalidName {
            kind,
            name: name.to_string(),
        });
    }
    let delimiter = format!("ghadelimiter_{}", uuid::Uuid::new_v4());
    if value.contains(&delimiter) || name.contains(&delimiter) {
        return Err(FileCommandError::DelimiterInValue {
            kind,
            name: name.to_string(),
        });
    }
    let block = format!("{name}<<{delimiter}\n{value}\n{delimiter}\n");
    append(kind, path, block.as_bytes())
}

fn append(kind: &'static str, path: &Path, bytes: &[u8]) -> Result<(), FileCommandError> {
    let io = |source| FileCommandError::Io {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.flush().map_err(io)
}

/// Appends markdown to the step summary, keeping the whole file under the
/// runner's limit. Returns how many bytes were dropped to stay under it.
pub fn append_summary(path: &Path, markdown: &str) -> Result<usize, FileCommandError> {
    let existing = std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let room = SUMMARY_LIMIT.saturating_sub(existing);
    if markdown.len() <= room {
        append("step summary", path, markdown.as_bytes())?;
        return Ok(0);
    }
    let note =
        "\n\n> **Summary truncated** at the runner's 1 MiB limit; the audit log has everything.\n";
    let keep = markdown.floor_char_boundary(room.saturating_sub(note.len()));
    let mut text = markdown[..keep].to_string();
    text.push_str(note);
    append("step summary", path, text.as_bytes())?;
    Ok(markdown.len() - keep)
}

/// Parses a key/value file exactly as the runner does (`EnvFileKeyValuePairs`
/// on Linux), so tests and the drill see what a workflow would see.
pub fn parse_key_value_file(content: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = content.split('\n').collect();
    let mut i = 0;
    // The runner splits on "\n" and ignores a final empty element.
    let n = if content.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    while i < n {
        let line = lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let name = &line[..e];
                if name.is_empty() {
                    return Err(format!("invalid line {i}: empty name"));
                }
                out.push((name.to_string(), line[e + 1..].to_string()));
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delim = &line[h + 2..];
                if name.is_empty() || delim.is_empty() {
                    return Err(format!("invalid line {i}: empty name or delimiter"));
                }
                let mut value: Vec<&str> = Vec::new();
                let mut closed = false;
                while i < n {
                    let l = lines[i];
                    i += 1;
                    if l == delim {
                        closed = true;
                        break;
                    }
                    value.push(l);
                }
                if !closed {
                    return Err(format!("Matching delimiter not found '{delim}'"));
                }
                out.push((name.to_string(), value.join("\n")));
            }
            _ => return Err(format!("invalid line {i}: {line:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_injection_cannot_create_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        append_key_value("output", &p, "error", "bad value\nx=1\nEOF\ny<<EOF\n2\nEOF").unwrap();
        append_key_value("output", &p, "result", "ok").unwrap();
        let parsed = parse_key_value_file(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let names: Vec<_> = parsed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["error", "result"]);
        assert_eq!(parsed[0].1, "bad value\nx=1\nEOF\ny<<EOF\n2\nEOF");
    }

    #[test]
    fn delimiters_are_fresh_per_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        append_key_value("output", &p, "a", "1").unwrap();
        append_key_value("output", &p, "b", "2").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let delims: Vec<_> = text.lines().filter(|l| l.contains("<<")).collect();
        assert_ne!(delims[0].split("<<").nth(1), delims[1].split("<<").nth(1));
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        for name in ["", "a=b", "a<<b", "a\nb"] {
            assert!(
                append_key_value("output", &p, name, "v").is_err(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn parser_matches_runner_on_simple_and_heredoc() {
        let parsed = parse_key_value_file("a=1\n\nb<<E\nx\ny\nE\nc=p<<q\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x\ny".into()),
                ("c".into(), "p<<q".into())
            ]
        );
        assert!(parse_key_value_file("b<<E\nx\n").is_err());
    }

    #[test]
    fn summary_stays_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.md");
        let big = "é".repeat(SUMMARY_LIMIT);
        let dropped = append_summary(&p, &big).unwrap();
        assert!(dropped > 0);
        let len = std::fs::metadata(&p).unwrap().len() as usize;
        assert!(len <= SUMMARY_LIMIT, "{len}");
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .contains("Summary truncated")
        );
    }
}
