-- resptree schema, version 2: annotations (scores, labels, bookmarks, notes).

-- One row per annotation slot of a node: `key` is the slot
-- (`score/<criterion>`, `label/<text>`, `bookmark`, `note`), `body` the whole
-- `Stamped` record; `kind` and `at` are copies for SQL users and for listing
-- one kind. Removing a node removes its annotations (the cascade is immediate);
-- the foreign key is checked at commit, so a batch may annotate a node it
-- also inserts, in any order.
CREATE TABLE annotations (
    node TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    key  TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- Milliseconds since the Unix epoch, as `Timestamp` holds it.
    at   BIGINT NOT NULL,
    body JSONB NOT NULL,
    PRIMARY KEY (node, key)
);
CREATE INDEX annotations_kind ON annotations (kind, node);
