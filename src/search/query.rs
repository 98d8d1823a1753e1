//! Parsing a search query into clauses: words and `"quoted phrases"`.

use crate::error::{Error, Result};

use super::tokens::{self, tokens};
use super::{MAX_QUERY_BYTES, MAX_QUERY_TERMS};

/// A parsed query: every clause must match (AND).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Query {
    /// Distinct clauses, in the order they first appear.
    pub(crate) clauses: Vec<Clause>,
}

/// One clause: a word (one token) or a phrase (tokens that must appear
/// consecutively, in order, within one item's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    /// The lowercase tokens.
    pub(crate) tokens: Vec<String>,
}

impl Query {
    /// Parses `input`.
    ///
    /// Outside quotes the text is split into words by the tokeniser (so
    /// punctuation is ignored); between a pair of `"` it is one phrase. A
    /// phrase of one word is that word; a phrase with no word is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] for an unclosed `"`, a query over
    /// [`MAX_QUERY_BYTES`], or more than [`MAX_QUERY_TERMS`] distinct words.
    pub(crate) fn parse(input: &str) -> Result<Self> {
        if input.len() > MAX_QUERY_BYTES {
            return Err(invalid(
                input,
                format!(
                    "{} bytes long; at most {MAX_QUERY_BYTES} are allowed",
                    input.len()
                ),
            ));
        }
        let mut query = Self::default();
        let mut rest = input;
        let mut offset = 0;
        while let Some(open) = rest.find('"') {
            query.add_words(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('"') else {
                return Err(invalid(
                    input,
                    format!("unclosed quote at byte {}", offset + open),
                ));
            };
            query.add(
                tokens(&after[..close])
                    .into_iter()
                    .map(|t| t.text)
                    .collect(),
            );
            offset += open + 1 + close + 1;
            rest = &after[close + 1..];
        }
        query.add_words(rest);
        let terms = query.terms().len();
        if terms > MAX_QUERY_TERMS {
            return Err(invalid(
                input,
                format!("{terms} distinct words; at most {MAX_QUERY_TERMS} are allowed"),
            ));
        }
        Ok(query)
    }

    /// Whether the query has no word at all (it then matches nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// The distinct index terms of every clause, in order of first appearance.
    pub(crate) fn terms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for token in self.clauses.iter().flat_map(|c| &c.tokens) {
            let term = tokens::term(token);
            if !out.iter().any(|t| t == term) {
                out.push(term.to_owned());
            }
        }
        out
    }

    fn add_words(&mut self, text: &str) {
        for token in tokens(text) {
            self.add(vec![token.text]);
        }
    }

    fn add(&mut self, tokens: Vec<String>) {
        if !tokens.is_empty() && !self.clauses.iter().any(|c| c.tokens == tokens) {
            self.clauses.push(Clause { tokens });
        }
    }
}

fn invalid(query: &str, reason: String) -> Error {
    Error::InvalidQuery {
        query: crate::text::truncate(query, 128),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clauses(input: &str) -> Vec<Vec<String>> {
        Query::parse(input)
            .unwrap()
            .clauses
            .into_iter()
            .map(|c| c.tokens)
            .collect()
    }

    #[test]
    fn words_and_phrases() {
        assert_eq!(
            clauses(r#"Paris "Eiffel  Tower" louvre"#),
            [vec!["paris"], vec!["eiffel", "tower"], vec!["louvre"]]
        );
        assert_eq!(clauses(r#""one""#), [vec!["one"]]);
        assert_eq!(clauses(r#"a "" b "!!" a"#), [vec!["a"], vec!["b"]]);
    }

    #[test]
    fn empty_and_punctuation_only_queries_have_no_clause() {
        assert!(Query::parse("").unwrap().is_empty());
        assert!(Query::parse("  ?!,.- ").unwrap().is_empty());
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_its_position() {
        let err = Query::parse(r#"a "b c"  "d"#).unwrap_err();
        match err {
            Error::InvalidQuery { reason, .. } => assert_eq!(reason, "unclosed quote at byte 9"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn huge_queries_are_refused() {
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert!(matches!(
            Query::parse(&long),
            Err(Error::InvalidQuery { .. })
        ));
        let many: String = (0..=MAX_QUERY_TERMS).map(|i| format!("w{i} ")).collect();
        assert!(matches!(
            Query::parse(&many),
            Err(Error::InvalidQuery { .. })
        ));
        let repeated = "same ".repeat(500);
        assert_eq!(clauses(&repeated), [vec!["same"]]);
    }

    #[test]
    fn terms_are_distinct_across_clauses() {
        let q = Query::parse(r#"tower "eiffel tower""#).unwrap();
        assert_eq!(q.terms(), ["tower", "eiffel"]);
    }
}
