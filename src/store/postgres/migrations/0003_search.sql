-- resptree schema, version 3: full-text search.
--
-- `search` holds each node's search terms as resptree's own tokeniser makes
-- them (lowercase words; see `resptree::search`), written by the store with
-- the node, in the same transaction, as a tsvector literal: each term once,
-- with one position per occurrence (so the store can rank by occurrences).
-- It is not `to_tsvector(...)`: PostgreSQL's parser splits words by the
-- database's locale, and every store must find the same nodes.
--
-- Rows written before this migration have `search IS NULL`; the store fills
-- them in when it connects (the partial index finds them without a scan).
ALTER TABLE nodes ADD COLUMN search tsvector;
CREATE INDEX nodes_search ON nodes USING GIN (search);
CREATE INDEX nodes_unindexed ON nodes (id) WHERE search IS NULL;
