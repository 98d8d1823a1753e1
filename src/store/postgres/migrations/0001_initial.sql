-- resptree schema, version 1: nodes, their extra-context edges, refs, removals
-- (for the change feed) and the engine's attempt journal.

-- One row per node. `parent` is a single column, so a node has at most one
-- parent by construction; the foreign key makes the parent exist. It is checked
-- at commit (DEFERRABLE INITIALLY DEFERRED) so that one batch may hold a node and
-- its parent in any order, and may remove a subtree children-last.
CREATE TABLE nodes (
    id               TEXT PRIMARY KEY,
    parent           TEXT REFERENCES nodes (id) DEFERRABLE INITIALLY DEFERRED,
    -- 'root' or 'child', kept in step with `parent` by a check.
    kind             TEXT NOT NULL,
    -- Milliseconds since the Unix epoch, exactly as `Timestamp` holds it.
    created_at       BIGINT NOT NULL,
    status           TEXT NOT NULL,
    backend          TEXT NOT NULL,
    model            TEXT,
    response_id      TEXT,
    input_tokens     BIGINT NOT NULL,
    cached_tokens    BIGINT NOT NULL,
    output_tokens    BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    total_tokens     BIGINT NOT NULL,
    -- The whole `Node` record; the columns above are copies for SQL users.
    body             JSONB NOT NULL,
    -- Insertion order for the change feed: a fresh value on every write of the
    -- row. Writers of nodes serialise on a table lock, so the order of `seq` is
    -- the order of commits and a reader never skips a late-committing row.
    seq              BIGSERIAL NOT NULL UNIQUE,
    CONSTRAINT nodes_kind CHECK (kind IN ('root', 'child')
                                 AND (kind = 'root') = (parent IS NULL)),
    CONSTRAINT nodes_not_own_parent CHECK (parent IS DISTINCT FROM id)
);
CREATE INDEX nodes_parent ON nodes (parent);

-- Extra-context (merge) edges: `node` was given `context`'s content as input.
-- The context node may be removed later; the edge then dangles, as in the other
-- stores, and is dropped when the tree is loaded.
CREATE TABLE context_edges (
    node     TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    context  TEXT NOT NULL,
    PRIMARY KEY (node, position)
);

-- Removed nodes, numbered from the same sequence as `nodes.seq`, so that a
-- refreshing reader learns about removals too.
CREATE TABLE removed_nodes (
    seq BIGINT PRIMARY KEY,
    id  TEXT NOT NULL
);

CREATE TABLE refs (
    name   TEXT PRIMARY KEY,
    target TEXT NOT NULL REFERENCES nodes (id) DEFERRABLE INITIALLY DEFERRED
);

-- The engine's journal of in-flight requests. UUID v7 ids sort by start time.
CREATE TABLE attempts (
    id   UUID PRIMARY KEY,
    body JSONB NOT NULL
);
