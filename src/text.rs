//! Plain-text helpers shared by every writer (summaries, notifications,
//! error lines): cutting text to a bound in characters, never inside one;
//! and a stable hash for names derived from text.

/// 64-bit FNV-1a of `bytes`: a stable hash for names and seeds derived from
/// text (std's hasher is not stable across Rust releases).
pub fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `text` cut to at most `max` characters, the last being `…` when it was
/// cut: a hard bound for fields with a limit (Slack's 3,000 characters, a
/// table cell, a one-line error).
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_characters_within_the_bound() {
        assert_eq!(clip("äöü", 2), "ä…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 1), "…");
        for max in 0..6 {
            assert!(clip("héllo wörld", max).chars().count() <= max.max(1));
        }
    }
}
