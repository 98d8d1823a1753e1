//! [`PostgresStore`]: one tree shared by many processes and hosts, on PostgreSQL.
//!
//! The schema (see `migrations/`) keeps each node as a row whose `parent` column
//! is a foreign key to its parent, so the database itself enforces one parent per
//! node and that the parent exists. A [`Batch`] is one transaction. Refs move
//! with compare-and-swap ([`Op::SetRefIf`]), and a `seq` column numbers every
//! node write so that [`Store::changes_since`] is one indexed query. Every
//! writing transaction also sends a `NOTIFY`, which a `LISTEN` connection turns
//! into [`Store::change_signal`] wake-ups (`notify.rs`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use crate::annotation::{AnnotationKind, Stamped};
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::{Node, Timestamp};

use super::{Attempt, Batch, ChangeSignal, Changes, Loaded, Op, Store, Topology, trace};

mod notify;
mod schema;
mod search;
mod worker;

use worker::Worker;

/// How long a connection attempt may take unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A [`Store`] in a PostgreSQL database, for trees that many processes append to
/// at once.
///
/// The store trait is synchronous; this store runs the async driver
/// (tokio-postgres, with a deadpool connection pool) on a background thread of
/// its own, so its methods may be called from any thread, including from inside
/// a tokio runtime (they block that thread for one round trip, like any store).
///
/// ```no_run
/// use resptree::store::PostgresStore;
/// use resptree::ResponseTree;
/// let store = PostgresStore::connect("postgres://resptree@127.0.0.1/trees")?;
/// // The tree owns its store: no other handle can write behind its back.
/// let tree = ResponseTree::with_store(store)?;
/// // ... other processes append ...
/// let news = tree.refresh()?;
/// println!("{} new nodes", news.added.len());
/// # Ok::<(), resptree::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresStore {
    worker: Worker,
    /// The schema the tables live in (`None`: the connection's default).
    schema: Option<String>,
    /// How to connect, for the listening connection (which cannot come from
    /// the pool: it must stay open and is never recycled).
    config: tokio_postgres::Config,
    /// The `LISTEN` connection behind [`Store::change_signal`], once asked for.
    listener: notify::Listener,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is deliberately left out: it may carry a password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Options for [`PostgresStore::connect_with`].
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the pool opens (default 4).
    pub pool_size: usize,
    /// The schema to keep the tables in, created if missing (default: the
    /// connection's `search_path`, normally `public`). One database can hold
    /// several independent trees this way.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            schema: None,
        }
    }
}

impl PostgresOptions {
    /// Sets the pool size.
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the schema: lowercase ASCII letters, digits and `_`, starting with a
    /// letter or `_`, at most 63 bytes.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or the key/value form) with the default [`PostgresOptions`], and brings
    /// its schema up to date.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect_with`].
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default())
    }

    /// Connects to the database at `url` with `options`, and brings its schema up
    /// to date (creating the tables on first use).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if `url` cannot be parsed, the pool size is zero or the
    /// schema name is not a plain identifier; [`Error::Storage`] if the database
    /// cannot be reached or the schema cannot be created;
    /// [`Error::CorruptRecord`] if the database was migrated by a newer build.
    pub fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        // The parser's message is not echoed: it could quote part of the URL,
        // password included.
        let mut config = tokio_postgres::Config::from_str(url).map_err(|_| {
            Error::config("the PostgreSQL URL cannot be parsed (see the libpq URI format)")
        })?;
        if config.get_connect_timeout().is_none() {
            // Without a limit, an unreachable host would hang the caller for the
            // operating system's TCP timeout (minutes).
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if options.pool_size == 0 {
            return Err(Error::config("the PostgreSQL pool size must be at least 1"));
        }
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .build()
            .map_err(|e| Error::storage("creating the PostgreSQL pool", e))?;
        let store = Self {
            worker: Worker::start(pool)?,
            schema: options.schema,
            config,
            listener: notify::Listener::default(),
        };
        let schema = store.schema.clone();
        store
            .worker
            .call("connecting to PostgreSQL", |pool| async move {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| Error::storage("connecting to PostgreSQL", e))?;
                schema::migrate(&mut client, schema.as_deref()).await?;
                drop(client);
                // Rows written before the search column existed (none after
                // the first connect: every write fills it in).
                let filled = search::backfill(&pool).await?;
                if filled > 0 {
                    tracing::info!(target: "resptree::store", store = "postgres", nodes = filled, "search index filled in");
                }
                Ok(())
            })?;
        // Never the URL: it may hold the password.
        tracing::info!(
            target: "resptree::store",
            store = "postgres",
            schema = store.schema.as_deref(),
            pool_size = options.pool_size,
            "connected"
        );
        Ok(store)
    }

    /// The schema version the database is at (the newest this build knows, once
    /// connected).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the database cannot be read.
    pub fn schema_version(&self) -> Result<i32> {
        self.worker
            .call("reading the schema version", |pool| async move {
                let op = "reading the schema version";
                let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
                let row = client
                    .query_one("SELECT max(version) FROM schema_migrations", &[])
                    .await
                    .map_err(|e| Error::storage(op, e))?;
                row.try_get(0).map_err(|e| Error::storage(op, e))
            })
    }

    /// The topology of every node from the root down to `id` (root first), read
    /// with one recursive query: enough to work on one branch without loading
    /// the forest.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not stored; [`Error::InvalidTree`] if
    /// parent links loop; [`Error::Unsupported`] for a path longer than 100 000
    /// nodes; [`Error::Storage`] on IO failure; [`Error::CorruptRecord`] for a
    /// stored id that is not valid.
    pub fn path_to_root(&self, id: &NodeId) -> Result<Vec<Topology>> {
        let path = self.walk(
            "reading a path",
            format!(
                "WITH RECURSIVE up(id, parent, created_at, depth) AS (
                     SELECT id, parent, created_at, 0 FROM nodes WHERE id = $1
                     UNION ALL
                     SELECT n.id, n.parent, n.created_at, up.depth + 1
                     FROM nodes n JOIN up ON n.id = up.parent
                     WHERE up.depth < $2
                 )
                 SELECT id, parent, created_at, {CONTEXTS} FROM up
                 ORDER BY depth DESC"
            ),
            id,
        )?;
        if path.first().is_some_and(|top| top.parent.is_some()) {
            return Err(Error::Unsupported(
                "path_to_root walks at most 100 000 ancestors",
            ));
        }
        Ok(path)
    }

    /// The topology of `id` and every node below it, parents before children
    /// (by depth, then creation time, then id), read with one recursive query.
    ///
    /// The first record is `id` itself, parent included. Together with
    /// [`PostgresStore::path_to_root`] of `id` it makes a graph of one branch
    /// (build it with [`Graph::build`](crate::tree::Graph::build)); on its own,
    /// clear the first record's parent to make `id` the root.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::path_to_root`]; levels deeper than 100 000 below `id`
    /// are left out.
    pub fn subtree(&self, id: &NodeId) -> Result<Vec<Topology>> {
        self.walk(
            "reading a subtree",
            format!(
                "WITH RECURSIVE down(id, parent, created_at, depth) AS (
                     SELECT id, parent, created_at, 0 FROM nodes WHERE id = $1
                     UNION ALL
                     SELECT n.id, n.parent, n.created_at, down.depth + 1
                     FROM nodes n JOIN down ON n.parent = down.id
                     WHERE down.depth < $2
                 )
                 SELECT id, parent, created_at, {CONTEXTS} FROM down
                 ORDER BY depth, created_at, id COLLATE \"C\""
            ),
            id,
        )
    }

    /// Runs a recursive walk from `id`: `sql` binds `id` as `$1` and the depth
    /// bound as `$2`, and returns topology rows in walk order.
    fn walk(&self, op: &'static str, sql: String, id: &NodeId) -> Result<Vec<Topology>> {
        let id = id.clone();
        self.worker.call(op, move |pool| async move {
            let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            let rows = client
                .query(&sql, &[&id.as_str(), &MAX_DEPTH])
                .await
                .map_err(|e| Error::storage(op, e))?;
            walked(id, &rows)
        })
    }
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Loaded> {
        let started = Instant::now();
        let loaded = self.worker.call("loading the tree", |pool| async move {
            let op = "loading the tree";
            let db = |e| Error::storage(op, e);
            let mut client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            // One snapshot for all reads, so nodes, edges, refs and the cursor agree.
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db)?;
            let rows = tx
                .query("SELECT id, parent, created_at FROM nodes", &[])
                .await
                .map_err(db)?;
            let mut loaded = Loaded::default();
            let mut contexts = context_edges(&tx, op, None).await?;
            for row in &rows {
                match topology(row) {
                    Ok(mut t) => {
                        t.extra_context = contexts.remove(&t.id).unwrap_or_default();
                        loaded.nodes.push(t);
                    }
                    Err(problem) => loaded.problems.push(problem),
                }
            }
            for (name, target) in ref_rows(&tx, op).await? {
                match (RefName::new(&name), NodeId::new(&target)) {
                    (Ok(name), Ok(target)) => loaded.refs.push((name, target)),
                    (Err(e), _) | (_, Err(e)) => loaded
                        .problems
                        .push(Error::corrupt(format!("refs/{name}"), e.to_string())),
                }
            }
            let row = tx
                .query_one(
                    "SELECT greatest((SELECT coalesce(max(seq), 0) FROM nodes),
                                     (SELECT coalesce(max(seq), 0) FROM removed_nodes))",
                    &[],
                )
                .await
                .map_err(db)?;
            loaded.cursor = Some(cursor_of(row.try_get(0).map_err(db)?));
            tx.commit().await.map_err(db)?;
            Ok(loaded)
        })?;
        trace::loaded("postgres", &loaded, started);
        Ok(loaded)
    }

    fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        let id = id.clone();
        self.worker.call("reading a node", move |pool| async move {
            let op = "reading a node";
            let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            let row = client
                .query_opt("SELECT body FROM nodes WHERE id = $1", &[&id.as_str()])
                .await
                .map_err(|e| Error::storage(op, e))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let body: Value = row.try_get(0).map_err(|e| Error::storage(op, e))?;
            serde_json::from_value(body)
                .map(Some)
                .map_err(|e| Error::corrupt(format!("nodes/{id}"), e.to_string()))
        })
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ops = batch.into_ops();
        let (started, count) = (Instant::now(), ops.len());
        // The attempts journal is this process's business; everything else
        // is news to other readers of the tree.
        let notify = ops
            .iter()
            .any(|o| !matches!(o, Op::PutAttempt(_) | Op::RemoveAttempt(_)));
        self.worker
            .call("writing a batch", move |pool| async move {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| Error::storage("writing a batch", e))?;
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| Error::storage("writing a batch", e))?;
                apply_ops(&tx, ops).await?;
                if notify {
                    // Delivered at commit, and only if the commit succeeds.
                    tx.batch_execute(notify::NOTIFY)
                        .await
                        .map_err(|e| Error::storage("writing a batch", e))?;
                }
                tx.commit()
                    .await
                    .map_err(|e| Error::storage("committing a batch", e))
            })?;
        // A committed transaction is durable: the commit is the flush.
        trace::committed("postgres", count, None, started);
        Ok(())
    }

    fn attempts(&self) -> Result<Vec<Attempt>> {
        self.worker.call("reading the attempts", |pool| async move {
            let op = "reading the attempts";
            let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            let rows = client
                .query("SELECT id, body FROM attempts ORDER BY id", &[])
                .await
                .map_err(|e| Error::storage(op, e))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: uuid::Uuid = row.try_get(0).map_err(|e| Error::storage(op, e))?;
                let body: Value = row.try_get(1).map_err(|e| Error::storage(op, e))?;
                let attempt = serde_json::from_value(body)
                    .map_err(|e| Error::corrupt(format!("attempts/{id}"), e.to_string()))?;
                out.push(attempt);
            }
            Ok(out)
        })
    }

    fn refs(&self) -> Result<Vec<(RefName, NodeId)>> {
        self.worker.call("reading the refs", |pool| async move {
            let op = "reading the refs";
            let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            ref_rows(&client, op)
                .await?
                .into_iter()
                .map(|(name, target)| {
                    let key = || format!("refs/{name}");
                    let parsed_name =
                        RefName::new(&name).map_err(|e| Error::corrupt(key(), e.to_string()))?;
                    let target =
                        NodeId::new(&target).map_err(|e| Error::corrupt(key(), e.to_string()))?;
                    Ok((parsed_name, target))
                })
                .collect()
        })
    }

    /// A committed transaction is already durable in PostgreSQL: nothing to do.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    /// From the `search` tsvector column and its GIN index, written with
    /// each node in the same transaction.
    fn search(
        &self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<Vec<crate::search::Candidate>>> {
        let query = query.clone();
        self.worker.call("searching", move |pool| async move {
            let client = pool
                .get()
                .await
                .map_err(|e| Error::storage("searching", e))?;
            search::query(&client, &query).await.map(Some)
        })
    }

    fn annotations(&self, node: &NodeId) -> Result<Vec<Stamped>> {
        let node = node.clone();
        self.worker.call("reading annotations", move |pool| async move {
            let op = "reading annotations";
            let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            let rows = client
                .query(
                    "SELECT node, key, body FROM annotations WHERE node = $1 ORDER BY key COLLATE \"C\"",
                    &[&node.as_str()],
                )
                .await
                .map_err(|e| Error::storage(op, e))?;
            rows.iter()
                .map(|row| annotation_row(row, op).map(|(_, a)| a))
                .collect()
        })
    }

    fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        self.worker
            .call("reading annotations", move |pool| async move {
                let op = "reading annotations";
                let client = pool.get().await.map_err(|e| Error::storage(op, e))?;
                // `COLLATE "C"` orders as the other stores do (by bytes).
                let rows = match kind {
                    Some(kind) => {
                        client
                            .query(
                                "SELECT node, key, body FROM annotations WHERE kind = $1
                             ORDER BY node COLLATE \"C\", key COLLATE \"C\"",
                                &[&kind.as_str()],
                            )
                            .await
                    }
                    None => {
                        client
                            .query(
                                "SELECT node, key, body FROM annotations
                             ORDER BY node COLLATE \"C\", key COLLATE \"C\"",
                                &[],
                            )
                            .await
                    }
                }
                .map_err(|e| Error::storage(op, e))?;
                rows.iter().map(|row| annotation_row(row, op)).collect()
            })
    }

    /// From `LISTEN/NOTIFY`: one listening connection for the store, opened
    /// on the first call and reconnected (with backoff) when lost.
    fn change_signal(&self) -> Result<Option<ChangeSignal>> {
        self.listener.signal(&self.worker, &self.config).map(Some)
    }

    fn changes_since(&self, cursor: u64) -> Result<Changes> {
        self.worker.call("reading changes", move |pool| async move {
            let op = "reading changes";
            let db = |e| Error::storage(op, e);
            let since = i64::try_from(cursor).unwrap_or(i64::MAX);
            let mut client = pool.get().await.map_err(|e| Error::storage(op, e))?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db)?;
            let mut changes = Changes {
                cursor,
                ..Changes::default()
            };
            let rows = tx
                .query(
                    "SELECT id, parent, created_at, seq FROM nodes WHERE seq > $1 ORDER BY seq",
                    &[&since],
                )
                .await
                .map_err(db)?;
            let mut contexts = context_edges(&tx, op, Some(since)).await?;
            for row in &rows {
                let seq: i64 = row.try_get(3).map_err(db)?;
                changes.cursor = changes.cursor.max(cursor_of(seq));
                // A record with an invalid id is reported by `load`; the feed
                // only carries what a graph can take.
                if let Ok(mut t) = topology(row) {
                    t.extra_context = contexts.remove(&t.id).unwrap_or_default();
                    changes.nodes.push(t);
                }
            }
            let rows = tx
                .query(
                    "SELECT id, seq FROM removed_nodes WHERE seq > $1 ORDER BY seq",
                    &[&since],
                )
                .await
                .map_err(db)?;
            for row in &rows {
                let id: String = row.try_get(0).map_err(db)?;
                let seq: i64 = row.try_get(1).map_err(db)?;
                changes.cursor = changes.cursor.max(cursor_of(seq));
                if let Ok(id) = NodeId::new(&id) {
                    changes.removed.push(id);
                }
            }
            for (name, target) in ref_rows(&tx, op).await? {
                if let (Ok(name), Ok(target)) = (RefName::new(&name), NodeId::new(&target)) {
                    changes.refs.push((name, target));
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(changes)
        })
    }
}

/// Applies `ops` inside `tx`; the caller commits.
async fn apply_ops(tx: &deadpool_postgres::Transaction<'_>, ops: Vec<Op>) -> Result<()> {
    let op = "writing a batch";
    let db = |e| Error::storage(op, e);
    if ops
        .iter()
        .any(|o| matches!(o, Op::PutNode(_) | Op::RemoveNode(_)))
    {
        // Node writers take turns (readers do not wait): `seq` values are then
        // handed out in commit order, so a reader that has seen `seq = n` has seen
        // every smaller one, and `changes_since` never skips a row that was still
        // uncommitted when it looked. Batches are short, so the wait is too.
        tx.batch_execute("LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(db)?;
    }
    for o in ops {
        match o {
            Op::PutNode(node) => {
                put_node(tx, &node).await?;
                search::put(tx, &node).await?;
            }
            Op::RemoveNode(id) => {
                let removed = tx
                    .execute("DELETE FROM nodes WHERE id = $1", &[&id.as_str()])
                    .await
                    .map_err(db)?;
                if removed > 0 {
                    tx.execute(
                        "INSERT INTO removed_nodes (seq, id)
                         VALUES (nextval(pg_get_serial_sequence('nodes', 'seq')), $1)",
                        &[&id.as_str()],
                    )
                    .await
                    .map_err(db)?;
                }
            }
            Op::SetRef(name, target) => {
                tx.execute(
                    "INSERT INTO refs (name, target) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target",
                    &[&name.as_str(), &target.as_str()],
                )
                .await
                .map_err(db)?;
            }
            Op::SetRefIf {
                name,
                expected,
                new,
            } => {
                // Both statements are atomic under concurrency: the insert waits
                // for a competing insert of the same name and then does nothing;
                // the update re-checks its condition on the newest row version.
                let changed = match &expected {
                    None => tx
                        .execute(
                            "INSERT INTO refs (name, target) VALUES ($1, $2)
                             ON CONFLICT (name) DO NOTHING",
                            &[&name.as_str(), &new.as_str()],
                        )
                        .await
                        .map_err(db)?,
                    Some(old) => tx
                        .execute(
                            "UPDATE refs SET target = $3 WHERE name = $1 AND target = $2",
                            &[&name.as_str(), &old.as_str(), &new.as_str()],
                        )
                        .await
                        .map_err(db)?,
                };
                if changed == 0 {
                    let row = tx
                        .query_opt("SELECT target FROM refs WHERE name = $1", &[&name.as_str()])
                        .await
                        .map_err(db)?;
                    let actual = match row {
                        Some(row) => {
                            let target: String = row.try_get(0).map_err(db)?;
                            Some(NodeId::new(&target).map_err(|e| {
                                Error::corrupt(format!("refs/{name}"), e.to_string())
                            })?)
                        }
                        None => None,
                    };
                    return Err(Error::Conflict {
                        name,
                        expected,
                        actual,
                    });
                }
            }
            Op::DeleteRef(name) => {
                tx.execute("DELETE FROM refs WHERE name = $1", &[&name.as_str()])
                    .await
                    .map_err(db)?;
            }
            Op::PutAttempt(attempt) => {
                let body = serde_json::to_value(&*attempt)
                    .map_err(|e| Error::storage("encoding an attempt", e))?;
                tx.execute(
                    "INSERT INTO attempts (id, body) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                    &[&attempt.id.as_uuid(), &body],
                )
                .await
                .map_err(db)?;
            }
            Op::RemoveAttempt(id) => {
                tx.execute("DELETE FROM attempts WHERE id = $1", &[&id.as_uuid()])
                    .await
                    .map_err(db)?;
            }
            Op::PutAnnotation { node, annotation } => {
                let body = serde_json::to_value(&*annotation)
                    .map_err(|e| Error::storage("encoding an annotation", e))?;
                let key = annotation.key();
                tx.execute(
                    "INSERT INTO annotations (node, key, kind, at, body) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (node, key) DO UPDATE
                         SET kind = EXCLUDED.kind, at = EXCLUDED.at, body = EXCLUDED.body",
                    &[
                        &node.as_str(),
                        &key.as_str(),
                        &key.kind().as_str(),
                        &annotation.at.0,
                        &body,
                    ],
                )
                .await
                .map_err(db)?;
            }
            Op::RemoveAnnotation { node, key } => {
                tx.execute(
                    "DELETE FROM annotations WHERE node = $1 AND key = $2",
                    &[&node.as_str(), &key.as_str()],
                )
                .await
                .map_err(db)?;
            }
        }
    }
    Ok(())
}

/// The node and annotation of a `node, key, body` row; a row that does not
/// decode is reported by its node and key.
fn annotation_row(row: &Row, op: &'static str) -> Result<(NodeId, Stamped)> {
    let node: String = row.try_get(0).map_err(|e| Error::storage(op, e))?;
    let key: String = row.try_get(1).map_err(|e| Error::storage(op, e))?;
    let body: Value = row.try_get(2).map_err(|e| Error::storage(op, e))?;
    let bad = |reason: String| Error::corrupt(format!("annotations/{node}/{key}"), reason);
    let id = NodeId::new(&node).map_err(|e| bad(e.to_string()))?;
    let stamped: Stamped = serde_json::from_value(body).map_err(|e| bad(e.to_string()))?;
    if stamped.key().as_str() != key {
        return Err(bad("the record does not belong in this slot".to_owned()));
    }
    Ok((id, stamped))
}

/// Stores one node: an upsert of its row (with a fresh `seq`), then its context
/// edges. A plain append is a single round trip.
async fn put_node(tx: &deadpool_postgres::Transaction<'_>, node: &Node) -> Result<()> {
    let op = "writing a node";
    let db = |e| Error::storage(op, e);
    let body = serde_json::to_value(node).map_err(|e| Error::storage("encoding a node", e))?;
    let status = serde_json::to_value(node.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    // The usage columns are copies for SQL users; the body is the record, so a
    // count beyond `i64::MAX` (never seen in practice) is clamped there only.
    let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let u = &node.usage;
    let statement = tx
        .prepare_cached(
            "INSERT INTO nodes (id, parent, kind, created_at, status, backend, model, response_id,
                                input_tokens, cached_tokens, output_tokens, reasoning_tokens,
                                total_tokens, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (id) DO UPDATE SET
                 parent = EXCLUDED.parent, kind = EXCLUDED.kind,
                 created_at = EXCLUDED.created_at, status = EXCLUDED.status,
                 backend = EXCLUDED.backend, model = EXCLUDED.model,
                 response_id = EXCLUDED.response_id,
                 input_tokens = EXCLUDED.input_tokens, cached_tokens = EXCLUDED.cached_tokens,
                 output_tokens = EXCLUDED.output_tokens,
                 reasoning_tokens = EXCLUDED.reasoning_tokens,
                 total_tokens = EXCLUDED.total_tokens, body = EXCLUDED.body,
                 seq = nextval(pg_get_serial_sequence('nodes', 'seq'))
             RETURNING (xmax = 0) AS inserted",
        )
        .await
        .map_err(db)?;
    let kind = if node.parent.is_some() {
        "child"
    } else {
        "root"
    };
    let row = tx
        .query_one(
            &statement,
            &[
                &node.id.as_str(),
                &node.parent.as_ref().map(NodeId::as_str),
                &kind,
                &node.created_at.0,
                &status,
                &node.origin.backend,
                &node.model,
                &node.origin.response_id.as_ref().map(|r| r.as_str()),
                &tokens(u.input_tokens),
                &tokens(u.cached_tokens),
                &tokens(u.output_tokens),
                &tokens(u.reasoning_tokens),
                &tokens(u.total_tokens),
                &body,
            ],
        )
        .await
        .map_err(db)?;
    let inserted: bool = row.try_get(0).map_err(db)?;
    if !inserted {
        tx.execute(
            "DELETE FROM context_edges WHERE node = $1",
            &[&node.id.as_str()],
        )
        .await
        .map_err(db)?;
    }
    if !node.extra_context.is_empty() {
        let contexts: Vec<&str> = node.extra_context.iter().map(NodeId::as_str).collect();
        tx.execute(
            "INSERT INTO context_edges (node, position, context)
             SELECT $1, (ord - 1)::integer, ctx FROM unnest($2::text[]) WITH ORDINALITY AS u(ctx, ord)",
            &[&node.id.as_str(), &contexts],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// The context ids of a walked row, as one array column (one round trip for
/// the whole walk).
const CONTEXTS: &str = "ARRAY(SELECT c.context FROM context_edges c \
                        WHERE c.node = id ORDER BY c.position) AS contexts";

/// How deep `path_to_root` and `subtree` walk. Parent links cannot loop through
/// the tree API, but a raw [`Op::PutNode`] replacing a node can make a loop the
/// foreign key does not catch; the cap makes that a finite query, whose repeated
/// ids are then reported as a cycle. (A `CYCLE` clause would catch it exactly, but costs time
/// quadratic in the depth: 5x slower at depth 200.)
const MAX_DEPTH: i32 = 100_000;

/// The topologies of the `id, parent, created_at, contexts` rows of a walk from
/// `start`.
fn walked(start: NodeId, rows: &[Row]) -> Result<Vec<Topology>> {
    if rows.is_empty() {
        return Err(Error::NodeNotFound(start));
    }
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut t = topology(row)?;
        // Only a loop of parent links visits a node twice.
        if !seen.insert(t.id.clone()) {
            return Err(Error::InvalidTree(crate::error::TreeViolation::Cycle {
                from: t.parent.clone().unwrap_or_else(|| t.id.clone()),
                to: t.id,
            }));
        }
        let contexts: Vec<String> = row
            .try_get(3)
            .map_err(|e| Error::storage("decoding a node row", e))?;
        t.extra_context = contexts
            .iter()
            .filter_map(|c| NodeId::new(c).ok())
            .collect();
        out.push(t);
    }
    Ok(out)
}

/// Every context edge (or those of nodes written after `since`), grouped by node
/// in position order. Edges with an invalid id are left out; the node itself is
/// reported.
async fn context_edges<C: GenericClient>(
    client: &C,
    op: &'static str,
    since: Option<i64>,
) -> Result<HashMap<NodeId, Vec<NodeId>>> {
    let rows =
        match since {
            None => {
                client
                    .query(
                        "SELECT node, context FROM context_edges ORDER BY node, position",
                        &[],
                    )
                    .await
            }
            Some(since) => client
                .query(
                    "SELECT e.node, e.context FROM context_edges e JOIN nodes n ON n.id = e.node
                     WHERE n.seq > $1 ORDER BY e.node, e.position",
                    &[&since],
                )
                .await,
        }
        .map_err(|e| Error::storage(op, e))?;
    group_edges(&rows, op)
}

fn group_edges(rows: &[Row], op: &'static str) -> Result<HashMap<NodeId, Vec<NodeId>>> {
    let mut out: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for row in rows {
        let node: String = row.try_get(0).map_err(|e| Error::storage(op, e))?;
        let context: String = row.try_get(1).map_err(|e| Error::storage(op, e))?;
        if let (Ok(node), Ok(context)) = (NodeId::new(&node), NodeId::new(&context)) {
            out.entry(node).or_default().push(context);
        }
    }
    Ok(out)
}

/// Every ref as raw `(name, target)` text, ordered by name bytewise (the `C`
/// collation), as the other stores order them.
async fn ref_rows<C: GenericClient>(client: &C, op: &'static str) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT name, target FROM refs ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(|e| Error::storage(op, e))?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(|e| Error::storage(op, e))?,
                row.try_get(1).map_err(|e| Error::storage(op, e))?,
            ))
        })
        .collect()
}

/// A topology (without context edges) from an `id, parent, created_at` row; a
/// bad id is a [`Error::CorruptRecord`] naming the row.
fn topology(row: &Row) -> Result<Topology> {
    let id: String = row
        .try_get(0)
        .map_err(|e| Error::storage("decoding a node row", e))?;
    let parent: Option<String> = row
        .try_get(1)
        .map_err(|e| Error::storage("decoding a node row", e))?;
    let created_at: i64 = row
        .try_get(2)
        .map_err(|e| Error::storage("decoding a node row", e))?;
    let bad = |e: Error| Error::corrupt(format!("nodes/{id}"), e.to_string());
    Ok(Topology {
        id: NodeId::new(&id).map_err(bad)?,
        parent: parent
            .as_deref()
            .map(NodeId::new)
            .transpose()
            .map_err(bad)?,
        extra_context: Vec::new(),
        created_at: Timestamp(created_at),
    })
}

fn cursor_of(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// Schema names are spliced into SQL (`search_path`, `CREATE SCHEMA`), so only
/// plain lowercase identifiers are accepted.
fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_well && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(Error::config(format!(
            "PostgreSQL schema name {:?} must be a lowercase identifier (a-z, 0-9, _; at most 63 bytes)",
            crate::text::truncate(schema, 80)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_must_be_plain_identifiers() {
        assert!(check_schema_name("tree_1").is_ok());
        assert!(check_schema_name("_x").is_ok());
        for bad in [
            "",
            "1tree",
            "Tree",
            "a-b",
            "a\"; DROP TABLE nodes; --",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(check_schema_name(bad), Err(Error::Config { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unreachable_server_is_a_storage_error_without_the_password() {
        // Port 1 on loopback: nothing listens there, the connection is refused.
        let err = PostgresStore::connect("postgres://user:s3cret@127.0.0.1:1/db").unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        assert!(!format!("{err:?}").contains("s3cret"));
    }

    #[test]
    fn bad_urls_are_config_errors_that_do_not_echo_the_url() {
        let err = PostgresStore::connect("postgres://user:s3cret@host:notaport/db").unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(!err.to_string().contains("s3cret"));
    }
}
