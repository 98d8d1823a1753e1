//! PostgreSQL's side of search: the `search` tsvector column (migration
//! `0003_search.sql`) with a GIN index, kept by [`put`] in the node's own
//! transaction, filled in for older rows by [`backfill`], and read by [`query`].
//!
//! The column holds resptree's own terms ([`crate::search`]), not what
//! `to_tsvector` would make, so PostgreSQL finds the same candidates as the
//! other stores. The query is a `tsquery` of those terms (`'a' & 'b'`), cast
//! from its literal form, which takes lexemes as they are.

use deadpool_postgres::{GenericClient, Pool};

use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::Node;
use crate::search::document::index_terms;
use crate::search::{Candidate, IndexQuery};

/// PostgreSQL keeps at most 256 positions per lexeme; more occurrences
/// count as 255 (only the ranking sees the difference).
const MAX_POSITIONS: u32 = 255;
/// A tsvector may not exceed 1 MB; a node with more distinct terms than fit
/// in half of that (far beyond any chat message) is indexed by the first
/// terms in alphabetical order, and the rest of its words are not found in
/// PostgreSQL. Documented in `docs/store-format.md`.
const MAX_LITERAL_BYTES: usize = 512 * 1024;
/// Rows per statement when filling in rows written before the column existed.
const BACKFILL_CHUNK: i64 = 1_000;

/// The tsvector literal of `node`'s terms: `'term':1,2 'other':1`.
pub(super) fn literal(node: &Node) -> String {
    let mut out = String::new();
    for (term, tf) in index_terms(node) {
        // The model is a column of its own; its index term is not a word.
        if term.starts_with('\u{1}') {
            continue;
        }
        let mut entry = String::with_capacity(term.len() + 8);
        entry.push('\'');
        for c in term.chars() {
            // Terms are alphanumeric, but the literal must stay well formed whatever they hold.
            if c == '\'' || c == '\\' {
                entry.push(c);
            }
            entry.push(c);
        }
        entry.push_str("':");
        let positions: Vec<String> = (1..=tf.clamp(1, MAX_POSITIONS))
            .map(|p| p.to_string())
            .collect();
        entry.push_str(&positions.join(","));
        if out.len() + entry.len() + 1 > MAX_LITERAL_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&entry);
    }
    out
}

/// Writes `node`'s terms into its row (inside the caller's transaction, after
/// the row was written).
pub(super) async fn put(client: &impl GenericClient, node: &Node) -> Result<()> {
    client
        .execute(
            "UPDATE nodes SET search = $2::text::tsvector WHERE id = $1",
            &[&node.id.as_str(), &literal(node)],
        )
        .await
        .map(drop)
        .map_err(|e| Error::storage("indexing a node for search", e))
}

/// Fills in `search` for rows written before the column existed, a chunk at
/// a time; a body that does not decode gets an empty vector (never found)
/// rather than being read again on every connect. Returns how many rows it
/// filled in.
pub(super) async fn backfill(pool: &Pool) -> Result<usize> {
    let op = "indexing older nodes for search";
    let db = |e: tokio_postgres::Error| Error::storage(op, e);
    let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
    let mut done = 0;
    loop {
        let rows = client
            .query(
                "SELECT id, body FROM nodes WHERE search IS NULL LIMIT $1",
                &[&BACKFILL_CHUNK],
            )
            .await
            .map_err(db)?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut literals = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get(0).map_err(db)?;
            let body: serde_json::Value = row.try_get(1).map_err(db)?;
            literals.push(
                serde_json::from_value::<Node>(body)
                    .map(|node| literal(&node))
                    .unwrap_or_default(),
            );
            ids.push(id);
        }
        client
            .execute(
                "UPDATE nodes SET search = v.terms::tsvector
                 FROM unnest($1::text[], $2::text[]) AS v(id, terms)
                 WHERE nodes.id = v.id",
                &[&ids, &literals],
            )
            .await
            .map_err(db)?;
        done += rows.len();
    }
}

/// The candidates for `query`: rows whose terms hold every word (and whose
/// model is the one asked for), scored `Σ ln(1 + occurrences)` as the other
/// stores score them.
pub(super) async fn query(
    client: &impl GenericClient,
    query: &IndexQuery,
) -> Result<Vec<Candidate>> {
    let op = "searching";
    let db = |e: tokio_postgres::Error| Error::storage(op, e);
    if query.terms.is_empty() {
        return Ok(Vec::new());
    }
    let tsquery = query
        .terms
        .iter()
        .map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ");
    let rows = client
        .query(
            "SELECT id,
                    (SELECT coalesce(sum(ln(1 + coalesce(array_length(u.positions, 1), 1))), 0)
                       FROM unnest(search) AS u WHERE u.lexeme = ANY($2::text[]))::real
               FROM nodes
              WHERE search @@ $1::text::tsquery AND ($3::text IS NULL OR model = $3)",
            &[&tsquery, &query.terms, &query.model],
        )
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0).map_err(db)?;
        let score: f32 = row.try_get(1).map_err(db)?;
        // An id the table holds but that is not valid is reported by `load`.
        if let Ok(id) = NodeId::new(&id) {
            out.push(Candidate::new(id, score));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_lists_each_term_with_one_position_per_occurrence() {
        let mut node = Node::new(NodeId::local(), None).with_user_text("cat dog cat");
        node.model = Some("m".to_owned());
        assert_eq!(literal(&node), "'cat':1,2 'dog':1");
        let many = Node::new(NodeId::local(), None).with_user_text("x ".repeat(1000));
        assert_eq!(
            literal(&many).matches(',').count(),
            MAX_POSITIONS as usize - 1
        );
    }
}
