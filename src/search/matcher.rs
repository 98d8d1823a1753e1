//! Checking a node against a query, scoring it and cutting snippets.

use std::ops::Range;

use super::document::Segment;
use super::query::Query;
use super::tokens::{Token, tokens};
use super::{MAX_SNIPPETS, SNIPPET_BYTES, Snippet};

/// How a node matched: its score and the snippets to show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matched {
    pub(crate) score: f32,
    pub(crate) snippets: Vec<Snippet>,
}

/// Matches `query` against a node's `segments`: `None` unless every clause
/// occurs (a word anywhere, a phrase as consecutive tokens of one segment).
///
/// The score is `Σ ln(1 + occurrences)` over the clauses: every hit holds
/// every clause, so what tells hits apart is how often they hold them, with
/// diminishing returns.
pub(crate) fn matches(query: &Query, segments: &[Segment]) -> Option<Matched> {
    let tokenised: Vec<Vec<Token>> = segments.iter().map(|s| tokens(&s.text)).collect();
    let mut counts = vec![0_usize; query.clauses.len()];
    // Per segment, the byte ranges of every occurrence of every clause.
    let mut ranges: Vec<Vec<Range<usize>>> = vec![Vec::new(); segments.len()];
    for (c, clause) in query.clauses.iter().enumerate() {
        let len = clause.tokens.len();
        for (s, toks) in tokenised.iter().enumerate() {
            if toks.len() < len {
                continue;
            }
            for start in 0..=toks.len() - len {
                let window = &toks[start..start + len];
                if window.iter().zip(&clause.tokens).all(|(t, q)| t.text == *q) {
                    counts[c] += 1;
                    ranges[s].push(window[0].range.start..window[len - 1].range.end);
                }
            }
        }
    }
    if counts.contains(&0) {
        return None;
    }
    // Occurrence counts far beyond f32's exact integers are irrelevant to the
    // ordering, so the lossy conversion is fine.
    #[allow(clippy::cast_precision_loss)]
    let score = counts.iter().map(|&n| (1.0 + n as f32).ln()).sum();
    let mut snippets = Vec::new();
    for (segment, mut found) in segments.iter().zip(ranges) {
        if found.is_empty() {
            continue;
        }
        for snippet in cut(segment, &mut found) {
            if snippets.len() == MAX_SNIPPETS {
                break;
            }
            snippets.push(snippet);
        }
    }
    Some(Matched { score, snippets })
}

/// Cuts the text of `segment` into snippets around `found` (match ranges):
/// each a window of about [`SNIPPET_BYTES`] starting a little before its
/// first match, holding every match that fits.
fn cut(segment: &Segment, found: &mut Vec<Range<usize>>) -> Vec<Snippet> {
    found.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    // Overlapping occurrences (a word inside a phrase) merge into one range.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in found.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let text = segment.text.as_str();
    let mut out = Vec::new();
    let mut i = 0;
    while i < merged.len() && out.len() < MAX_SNIPPETS {
        let first = merged[i].clone();
        let start = window_start(text, first.start);
        let end = window_end(text, start, first.end);
        let mut matches = Vec::new();
        while i < merged.len() && merged[i].start < end {
            let r = &merged[i];
            matches.push(r.start - start..r.end.min(end) - start);
            i += 1;
        }
        out.push(Snippet {
            field: segment.field,
            item: segment.item,
            text: text[start..end].to_owned(),
            matches,
            cut_before: start > 0,
            cut_after: end < text.len(),
        });
    }
    out
}

/// Where a snippet whose first match starts at `at` begins: a quarter of a
/// window before it, moved forward to the start of a word when one is near.
fn window_start(text: &str, at: usize) -> usize {
    let lead = SNIPPET_BYTES / 4;
    if at <= lead {
        return 0;
    }
    let mut start = floor_boundary(text, at - lead);
    if let Some(space) = text[start..at].find(char::is_whitespace) {
        start += space;
        start = ceil_boundary(text, start + 1);
    }
    start
}

/// Where a snippet starting at `start` ends: [`SNIPPET_BYTES`] later (but at
/// least past its first match, at `first_end`), moved back to the end of a
/// word when one is near.
fn window_end(text: &str, start: usize, first_end: usize) -> usize {
    let limit = (start + SNIPPET_BYTES).max(first_end);
    if limit >= text.len() {
        return text.len();
    }
    let end = floor_boundary(text, limit);
    match text[first_end..end].rfind(char::is_whitespace) {
        Some(space) if first_end + space > start + SNIPPET_BYTES / 2 => first_end + space,
        _ => end,
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Field;

    fn seg(text: &str) -> Segment {
        Segment {
            field: Field::Output,
            item: 0,
            text: text.to_owned(),
        }
    }

    fn run(query: &str, texts: &[&str]) -> Option<Matched> {
        let segments: Vec<Segment> = texts.iter().map(|t| seg(t)).collect();
        matches(&Query::parse(query).unwrap(), &segments)
    }

    fn marked(s: &Snippet) -> Vec<&str> {
        s.matches.iter().map(|r| &s.text[r.clone()]).collect()
    }

    #[test]
    fn every_clause_must_occur() {
        assert!(run("paris louvre", &["Paris has the Louvre"]).is_some());
        assert!(run("paris louvre", &["Paris", "the LOUVRE"]).is_some());
        assert!(run("paris rome", &["Paris has the Louvre"]).is_none());
        assert!(run("par", &["Paris"]).is_none());
    }

    #[test]
    fn phrases_need_consecutive_tokens_in_one_segment() {
        assert!(run(r#""eiffel tower""#, &["the Eiffel  Tower, at night"]).is_some());
        assert!(run(r#""eiffel tower""#, &["the Eiffel-tower"]).is_some());
        assert!(run(r#""eiffel tower""#, &["the tower Eiffel"]).is_none());
        assert!(run(r#""eiffel tower""#, &["Eiffel", "tower"]).is_none());
    }

    #[test]
    fn snippets_mark_each_match_with_byte_ranges() {
        let m = run("cat", &["The Cat sat on the cat mat"]).unwrap();
        assert_eq!(m.snippets.len(), 1);
        assert_eq!(marked(&m.snippets[0]), ["Cat", "cat"]);
        assert!(!m.snippets[0].cut_before && !m.snippets[0].cut_after);
        let phrase = run(r#""the cat" cat"#, &["The Cat sat"]).unwrap();
        assert_eq!(marked(&phrase.snippets[0]), ["The Cat"]);
    }

    #[test]
    fn long_text_is_cut_around_matches_at_char_boundaries() {
        let text = format!("{} needle {}", "ü ".repeat(300), "ö ".repeat(300));
        let m = run("needle", &[&text]).unwrap();
        let s = &m.snippets[0];
        assert!(s.cut_before && s.cut_after);
        assert!(s.text.len() <= SNIPPET_BYTES + 4);
        assert_eq!(marked(s), ["needle"]);
        // Matches far apart get snippets of their own, at most MAX_SNIPPETS.
        let spread = format!(
            "a {} a {} a {} a {} a",
            "x ".repeat(200),
            "x ".repeat(200),
            "x ".repeat(200),
            "x ".repeat(200)
        );
        let m = run("a", &[&spread]).unwrap();
        assert_eq!(m.snippets.len(), MAX_SNIPPETS);
    }

    #[test]
    fn more_occurrences_score_higher() {
        let once = run("cat", &["cat"]).unwrap().score;
        let twice = run("cat", &["cat cat"]).unwrap().score;
        assert!(twice > once);
    }
}
