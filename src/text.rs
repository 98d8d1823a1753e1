//! Small text helpers shared by the renderers, error messages and the emulator.

/// `s` cut to at most `max` characters (Unicode scalar values, not bytes or
/// terminal columns), the last of them `…` when anything was cut, so a reader
/// can tell a cut text from a short one.
///
/// Only the first `max + 1` characters are looked at, so cutting a huge input
/// (a rejected id, a pasted document) costs O(`max`).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut ends = s.char_indices().map(|(i, _)| i);
    // The byte offset of character `max - 1` (where `…` goes) and whether a
    // character `max` exists (whether there is anything to cut).
    let Some(keep) = max.checked_sub(1) else {
        return String::new();
    };
    let cut = ends.nth(keep);
    match (cut, ends.next()) {
        (Some(cut), Some(_)) => {
            let mut out = String::with_capacity(cut + '…'.len_utf8());
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn cuts_to_max_characters_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 7), "abcdef");
        assert_eq!(truncate("abcdef", 5), "abcd…");
        assert_eq!(truncate("abcdef", 1), "…");
        assert_eq!(truncate("abcdef", 0), "");
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(truncate("héllo wörld", 11), "héllo wörld");
        assert_eq!(truncate("héllo wörld", 8), "héllo w…");
        assert_eq!(truncate("日本語テキスト", 4), "日本語…");
        for max in 0..12 {
            let cut = truncate("héllo wörld", max);
            assert!(cut.chars().count() <= max, "{max}: {cut:?}");
        }
    }
}
