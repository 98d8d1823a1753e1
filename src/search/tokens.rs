//! Tokenisation: how text becomes the words that queries and the index compare.
//!
//! A token is a maximal run of alphanumeric characters (Unicode's `Alphabetic`
//! or `Numeric`, as [`char::is_alphanumeric`] says), lowercased with Unicode's
//! full lowercase mapping ([`str::to_lowercase`]). Everything else — spaces,
//! punctuation, symbols, combining marks — separates tokens. There is no
//! stemming, no stop-word list and no Unicode normalisation: `run` does not
//! find `running`, and a decomposed `é` (`e` + U+0301) splits its word. That
//! keeps the rules short enough to state here and identical in every store.

use std::ops::Range;

/// The longest index term, in bytes: longer tokens are indexed by their first
/// 64 bytes (cut at a character boundary). Matching still compares whole
/// tokens, so a long token only makes the index's candidate set larger, never
/// loses a hit. It bounds the size of an index key whatever the text holds.
pub(crate) const MAX_TERM_BYTES: usize = 64;

/// One token: its lowercase form and where it is in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The lowercase form.
    pub(crate) text: String,
    /// Its byte range in the text it came from.
    pub(crate) range: Range<usize>,
}

/// The tokens of `text`, in order.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                out.push(token(text, from..at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        out.push(token(text, from..text.len()));
    }
    out
}

/// Calls `f` with the index term ([`term`]) of each token of `text`, in order:
/// the same terms as [`tokens`] followed by [`term`] give, without allocating
/// per token. Writing the index tokenises every stored node, so this path
/// reuses `buffer` for each lowercase form and lowercases a run of ASCII
/// characters byte by byte (Unicode's mapping agrees with ASCII's there); a
/// run with any other character takes [`str::to_lowercase`], whose
/// context-dependent rules (a final sigma) need the whole run.
pub(crate) fn for_each_term(text: &str, buffer: &mut String, mut f: impl FnMut(&str)) {
    let mut start = None;
    let mut ascii = true;
    for (at, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(at);
                ascii = true;
            }
            ascii &= c.is_ascii();
        } else if let Some(from) = start.take() {
            lowercase_into(&text[from..at], ascii, buffer);
            f(term(buffer));
        }
    }
    if let Some(from) = start {
        lowercase_into(&text[from..], ascii, buffer);
        f(term(buffer));
    }
}

/// Puts the lowercase form of `run` in `buffer`.
fn lowercase_into(run: &str, ascii: bool, buffer: &mut String) {
    buffer.clear();
    if ascii {
        buffer.push_str(run);
        buffer.make_ascii_lowercase();
    } else {
        buffer.push_str(&run.to_lowercase());
    }
}

fn token(text: &str, range: Range<usize>) -> Token {
    Token {
        text: text[range.clone()].to_lowercase(),
        range,
    }
}

/// The index term of a (lowercase) token: the token, cut to [`MAX_TERM_BYTES`].
pub(crate) fn term(token: &str) -> &str {
    if token.len() <= MAX_TERM_BYTES {
        return token;
    }
    let mut end = MAX_TERM_BYTES;
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    &token[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn splits_on_anything_not_alphanumeric_and_lowercases() {
        assert_eq!(
            words("Hello, World! it's GPT-4o (v2.1)"),
            ["hello", "world", "it", "s", "gpt", "4o", "v2", "1"]
        );
        assert_eq!(
            words("Straße ÉCOLE Москва 東京"),
            ["straße", "école", "москва", "東京"]
        );
        assert!(words(" ,.;:!?--\n\t").is_empty());
        assert!(words("").is_empty());
    }

    #[test]
    fn ranges_point_into_the_original_text() {
        let text = "¡Größe MATTERS!";
        for t in tokens(text) {
            assert_eq!(text[t.range.clone()].to_lowercase(), t.text);
        }
        assert_eq!(tokens(text)[0].range, 2..9);
    }

    /// The reference: every token's term, through the allocating path.
    fn terms_of(text: &str) -> Vec<String> {
        tokens(text)
            .into_iter()
            .map(|t| term(&t.text).to_owned())
            .collect()
    }

    fn fast_terms(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_term(text, &mut String::new(), |t| out.push(t.to_owned()));
        out
    }

    #[test]
    fn the_fast_path_gives_the_same_terms_as_the_tokens() {
        for text in [
            "Hello, World! it's GPT-4o (v2.1)",
            "Straße ÉCOLE Москва 東京 ΟΔΟΣ ὈΔΥΣΣΕΎΣ",
            "mixedÉCase ASCIIthenÜMLAUT İstanbul",
            "",
            " ,.;:!?--\n\t",
            "trailing",
            &"x".repeat(100),
            &format!("{} tail", "É".repeat(50)),
        ] {
            assert_eq!(fast_terms(text), terms_of(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_on_any_text(text in "\\PC{0,80}") {
            proptest::prop_assert_eq!(fast_terms(&text), terms_of(&text));
        }

        #[test]
        fn the_fast_path_agrees_on_ascii_text(text in "[ -~]{0,200}") {
            proptest::prop_assert_eq!(fast_terms(&text), terms_of(&text));
        }
    }

    #[test]
    fn long_tokens_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40); // 80 bytes
        let cut = term(&long);
        assert!(cut.len() <= MAX_TERM_BYTES);
        assert_eq!(cut, "é".repeat(32));
        assert_eq!(term("short"), "short");
    }
}
