//! Building blocks for what expedite writes in markdown: job summaries,
//! pull-request and issue bodies, timeline comments.
//!
//! Untrusted text — anything a person, a repository or a server wrote:
//! rollback reasons, commit subjects, branch, tag and service names, test
//! names, incident titles, server error bodies — is shown *as code*: a code
//! span inline ([`md_cell`], [`md_code`]) or a fenced block over several
//! lines ([`md_block`]). Inside code GitHub renders no link, image, HTML,
//! emphasis, autolink, `@mention` or `#reference`, whatever the text holds.
//! Escaping character by character cannot promise that: GitHub's renderer
//! (cmark-gfm) still turns `a\@b.example` and `a&#64;b.example` into mail
//! links, and mentions are found after escapes are decoded (ADR 9).
//!
//! Our own words (labels, results, numbers) are written as they are.

/// Characters that make text read differently from what it holds: the
/// bidirectional overrides and isolates ("Trojan Source") and the other
/// C0/C1 controls. Shown as U+FFFD so the reader sees something is there.
fn deceptive(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || (c.is_control() && c != '\n' && c != '\t')
}

/// One line of untrusted text, ready for a code span: line breaks become
/// ` ⏎ `, tabs spaces, deceptive characters U+FFFD.
fn one_line(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str(" ⏎ "),
            '\t' => out.push(' '),
            c if deceptive(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in text.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// A code span around `line` (one line, already cleaned): a fence one
/// backtick longer than any run inside, so nothing in it can close the
/// span; padded with a space each side when it starts or ends with a
/// backtick or a space (CommonMark strips exactly one from each side).
fn span(line: &str) -> String {
    if line.is_empty() {
        return String::new();
    }
    if plain(line) {
        return line.to_string();
    }
    let fence = "`".repeat(longest_run(line, '`') + 1);
    // Content of spaces only is kept whole, so it needs no pad.
    let edge = line.starts_with(['`', ' ']) || line.ends_with(['`', ' ']);
    let pad = if edge && line.trim() != "" { " " } else { "" };
    format!("{fence}{pad}{line}{pad}{fence}")
}

/// Text that renders as itself wherever it stands (a cell, a sentence, a
/// heading): letters, digits, spaces and `. , % ( ) / - ×`, with no
/// character that opens markdown or HTML (`[ ! < > & * _ ~ # @ : | \ \``)
/// and none of the patterns GitHub's extensions read in plain words (`www.`
/// autolinks, a list marker `1. `, a leading `-`). Such text — a version,
/// `rolled-back`, `200 × 2.4.1` — is written plain so a summary stays
/// readable; anything else is code. `tests/summaries_inert.rs` renders a
/// sweep of such words with cmark-gfm to hold this.
fn plain(line: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " .,%()/-×".contains(c);
    let list_marker = {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        digits > 0
            && matches!(line[digits..].chars().next(), Some('.' | ')'))
            && matches!(line[digits + 1..].chars().next(), None | Some(' '))
    };
    line.chars().all(allowed)
        && line.trim() == line
        && !line.starts_with(['-', '.'])
        && !line.to_ascii_lowercase().contains("www")
        && !list_marker
}

/// Untrusted text inline, outside a table (a list item, a sentence, a
/// quote): a code span. Several lines become one, joined by ` ⏎ `.
pub fn md_code(text: &str) -> String {
    span(&one_line(text))
}

/// Untrusted text in a markdown table cell: a code span whose pipes are
/// escaped for the table (GitHub splits cells before it reads spans, and
/// turns `\|` back into `|` inside the span). Several lines stay several:
/// one span per line, joined by `<br>`.
pub fn md_cell(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    text.split('\n')
        .map(|l| span(&one_line(l)).replace('|', "\\|"))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Untrusted text of several lines (an incident description, a root
/// cause, a rollback reason) as a fenced code block: each line shown as
/// written. The fence is longer than any backtick run inside, so no line
/// can close it.
pub fn md_block(text: &str) -> String {
    md_fenced("text", text)
}

/// [`md_block`] with another info string (`sh` for commands to copy):
/// the same fence, so a line of the text (a file name holding a newline
/// and backticks, say) cannot close it.
pub fn md_fenced(info: &str, text: &str) -> String {
    let body: String = text
        .trim_end_matches(['\n', '\r'])
        .lines()
        .map(|l| {
            l.chars()
                .map(|c| match c {
                    '\t' => c,
                    c if deceptive(c) => '\u{FFFD}',
                    c => c,
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let fence = "`".repeat(longest_run(&body, '`').max(2) + 1);
    format!("{fence}{info}\n{body}\n{fence}\n")
}

/// A link to `url` (a server's answer, so checked) labelled `label` (our
/// own words): only an http(s) URL becomes a link, written in angle
/// brackets after the url crate has percent-encoded what could end it;
/// anything else is shown as code.
pub fn md_link(label: &str, url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => format!("[{label}](<{u}>)"),
        _ => format!("{label} {}", md_cell(url)),
    }
}

/// The axis lines of a mermaid gantt chart whose bars are milliseconds from
/// 0 (`dateFormat x`) and span `span_ms`: minutes and seconds, with a tick
/// every 1, 2, 5, 10, 15 or 30 seconds or 1, 2, 5, 10, 15 or 30 minutes —
/// the first that gives no more than 11 ticks. Left to itself mermaid ticks
/// every 500 ms on a 6 s deploy, and `%M:%S` then shows each second twice.
/// Past an hour the hour is shown too; mermaid draws the axis in the
/// reader's time zone, so that hour is off by the zone's offset from UTC
/// (minutes and seconds are right in every whole-hour zone).
pub fn gantt_axis(span_ms: u64) -> String {
    const STEPS: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
    let span_s = span_ms.div_ceil(1000);
    let every = STEPS.into_iter().find(|s| span_s / s <= 10).unwrap_or(3600);
    let tick = match every {
        s if s < 60 => format!("{s}second"),
        s if s < 3600 => format!("{}minute", s / 60),
        s => format!("{}hour", s / 3600),
    };
    let format = if span_s < 3600 { "%M:%S" } else { "%H:%M:%S" };
    format!("  axisFormat {format}\n  tickInterval {tick}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text that would be a link, an image, HTML, a mention, an autolink,
    /// emphasis, a heading, a table break or a fence if it were not code.
    const PAYLOADS: &[&str] = &[
        "[Approve here](https://evil.example/approve)",
        "![x](https://evil.example/pixel.png)",
        "<img src=x onerror=alert(1)>",
        "<script>alert(1)</script>",
        "@contoso/oncall please look",
        "https://evil.example/login",
        "www.evil.example",
        "mail a@b.example",
        "**bold** _em_ ~~gone~~",
        "# heading",
        "a | b | c",
        "a \\| b",
        "ends with a backslash \\",
        "`",
        "``",
        "` x `",
        "```\nfenced\n```",
        "line one\nline two\r\nline three",
        "<!-- comment -->",
        "&lt;entity&gt; &#64;",
        "bidi \u{202E}txt.exe",
        "",
        " ",
    ];

    /// The text inside a code span as CommonMark reads it back.
    fn unspan(s: &str) -> String {
        let n = s.chars().take_while(|&c| c == '`').count();
        let inner = &s[n..s.len() - n];
        if inner.len() >= 2 && inner.starts_with(' ') && inner.ends_with(' ') && inner.trim() != ""
        {
            inner[1..inner.len() - 1].to_string()
        } else {
            inner.to_string()
        }
    }

    #[test]
    fn every_payload_is_one_closed_span_that_reads_back_as_written() {
        for p in PAYLOADS {
            let s = md_code(p);
            if p.is_empty() {
                assert_eq!(s, "");
                continue;
            }
            assert!(!s.contains('\n'), "{p:?} -> {s:?}");
            let n = s.chars().take_while(|&c| c == '`').count();
            let fence = "`".repeat(n);
            assert!(s.ends_with(&fence), "{p:?} -> {s:?}");
            // Nothing inside is a run of backticks as long as the fence.
            assert!(longest_run(&s[n..s.len() - n], '`') < n, "{p:?} -> {s:?}");
            assert_eq!(unspan(&s), one_line(p), "{p:?}");
        }
    }

    #[test]
    fn cells_escape_every_pipe_and_keep_lines_apart() {
        for p in PAYLOADS {
            let c = md_cell(p);
            assert!(!c.contains('\n'), "{p:?} -> {c:?}");
            let unescaped = c.replace("\\|", "");
            assert!(!unescaped.contains('|'), "{p:?} -> {c:?}");
        }
        assert_eq!(md_cell("a\nb"), "a<br>b");
        assert_eq!(md_cell("a\n`b`"), "a<br>`` `b` ``");
        assert_eq!(md_cell("x|y"), "`x\\|y`");
    }

    #[test]
    fn blocks_cannot_be_closed_from_inside() {
        for p in PAYLOADS {
            let b = md_block(p);
            let first = b.lines().next().unwrap_or_default();
            let fence = first.trim_end_matches("text");
            assert!(fence.len() >= 3, "{b:?}");
            let inner: Vec<&str> = b.lines().skip(1).collect();
            let closing = inner.iter().filter(|l| l.starts_with(fence)).count();
            assert_eq!(closing, 1, "{p:?} -> {b:?}");
        }
    }

    #[test]
    fn our_kind_of_words_stay_plain_and_near_misses_are_code() {
        for w in [
            "2.4.1",
            "rolled-back",
            "200 × 2.4.1",
            "health 200, version 2.4.1 after 1 check(s)",
            "slot staging",
            "10 %",
        ] {
            assert_eq!(md_cell(w), w);
            assert_eq!(md_code(w), w);
        }
        for w in [
            "1. x",
            "1)",
            "12.",
            "- x",
            "-x",
            ".x",
            "www.evil.example",
            "WWW.x",
            " x",
            "x ",
            "a_b",
            "a:b",
            "a@b",
            "#1",
            "a*b",
            "a~b",
            "a&b",
            "a\\b",
            "é",
        ] {
            assert!(md_code(w).starts_with('`'), "{w:?} -> {}", md_code(w));
        }
    }

    #[test]
    fn gantt_axes_tick_about_ten_times_and_never_twice_a_second() {
        let axis = gantt_axis;
        assert_eq!(axis(0), "  axisFormat %M:%S\n  tickInterval 1second\n");
        assert_eq!(axis(6_100), "  axisFormat %M:%S\n  tickInterval 1second\n");
        assert_eq!(axis(16_200), "  axisFormat %M:%S\n  tickInterval 2second\n");
        assert_eq!(
            axis(95_000),
            "  axisFormat %M:%S\n  tickInterval 10second\n"
        );
        assert_eq!(
            axis(1_500_000),
            "  axisFormat %M:%S\n  tickInterval 5minute\n"
        );
        assert_eq!(
            axis(7_200_000),
            "  axisFormat %H:%M:%S\n  tickInterval 15minute\n"
        );
        assert_eq!(
            axis(90_000_000),
            "  axisFormat %H:%M:%S\n  tickInterval 1hour\n"
        );
    }

    #[test]
    fn deceptive_characters_are_shown_not_obeyed() {
        assert_eq!(md_code("a\u{202E}b\u{7}c"), "`a\u{FFFD}b\u{FFFD}c`");
        assert!(md_block("x\u{2066}y").contains("x\u{FFFD}y"));
    }

    #[test]
    fn links_are_only_http_and_cannot_be_ended_early() {
        assert_eq!(
            md_link("#2", "https://github.test/o/r/issues/2"),
            "[#2](<https://github.test/o/r/issues/2>)"
        );
        let l = md_link("#2", "https://x.test/a> [b](https://evil.example)");
        // Only our own angle brackets: nothing in the URL can end it.
        assert_eq!(
            (l.matches('<').count(), l.matches('>').count()),
            (1, 1),
            "{l}"
        );
        assert_eq!(
            md_link("#2", "javascript:alert(1)"),
            "#2 `javascript:alert(1)`"
        );
    }
}
