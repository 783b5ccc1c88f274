//! Building blocks for job summaries and reports (markdown).

/// Escapes text for a markdown table cell: pipes, line breaks, and HTML
/// that GitHub would render (untrusted text must stay text).
pub fn md_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push_str("&#96;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_tables_or_inject_html() {
        assert_eq!(md_cell("a|b\nc<script>"), "a\\|b<br>c&lt;script&gt;");
    }
}
