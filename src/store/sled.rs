//! [`SledStore`]: the embedded, durable [`Store`] on sled 0.34.
//!
//! Layout (see `docs/store-format.md`): one sled tree per kind of record, so a
//! reopen scans only the small topology records and never touches the bodies.
//!
//! | tree       | key                          | value                              |
//! |------------|------------------------------|------------------------------------|
//! | `segments` | segment number (u32 BE)      | many nodes: id, topology, body     |
//! | `topology` | node id                      | version + binary topology (≤ 3)    |
//! | `bodies`   | node id                      | version + JSON [`Node`] (≤ 3)      |
//! | `refs`     | ref name                     | version + target id                |
//! | `attempts` | attempt UUID (16 bytes)      | older stores only: see below       |
//! | `meta`     | `schema_version`             | `u32` little-endian                |
//! | `meta`     | `commit_seq`                 | `u64` little-endian, +1 per batch  |
//! | `meta`     | `snapshot`                   | where the topology snapshot is     |
//! | `topology_log` | commit number (u64 BE)   | the batch's topology changes       |
//! | `annotations` | node id `0x00` annotation key | version + JSON [`Stamped`](crate::Stamped) |
//! | `search_lists`, `search_docs` | see [`super::sled_search`] | the search index |
//! | `staged_segments` | segment number (u32 BE)   | stage number: a segment not yet published |
//!
//! The `annotations` tree is absent in stores written before annotations
//! existed; sled creates it empty on open, so no schema change was needed.
//!
//! There is no child index on disk (schema 3 dropped it: the graph knows each
//! node's children), and stores created by schemas 3–5 let sled compress its
//! pages with zstd: together a quarter of the space per small node that schema
//! 2 took (`docs/store-format.md`, *Space*). Stores created since schema 6
//! compress their segments themselves instead ([`super::compress`]): sled
//! creates a zstd context per page it writes, which cost more CPU than the
//! compression.
//!
//! Since schema 4 a batch writes its nodes packed into a few **segment**
//! records ([`super::segment`]) instead of two records per node: sled's cost is
//! per record, so this is what makes bulk inserts and group commits cheap. The
//! snapshot and log carry each node's segment, from which a load builds the
//! in-memory id → segment map ([`super::segment_index`]) that body reads use.
//! Nodes written by schema 3 and older stay in their own `topology` and
//! `bodies` records, which are still read (and removed when such a node is
//! replaced or removed).
//!
//! The engine's attempt journal is a file beside the database, `attempts.log`
//! ([`attempt_log`]), not a sled tree: sled's cost is per record, and a
//! request journaled three. Stores written before it have their attempts in
//! the `attempts` tree, moved into the file at open.
//!
//! The topology snapshot (a file beside the database) and the topology log are
//! derived data that make a reopen read one file instead of every record; see
//! [`super::snapshot`]. Whenever they cannot be used, `load` scans `topology`.
//!
//! Beside the database, the file `resptree-commit` holds the last commit number
//! known to be durable (written after each flush). sled 0.34 treats the first
//! damaged record of its log as the end of the log and opens without an error;
//! a store whose `commit_seq` is behind that file has lost acknowledged writes,
//! and [`Store::load`] reports it instead of staying silent.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use foldhash::HashMapExt as _;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::annotation::{AnnotationKind, Stamped};
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::{Node, Preview};

use super::codec::{self, SCHEMA_VERSION};
use super::segment;
use super::segment_index::SegmentIndex;
use super::sled_search;
use super::snapshot::{self, LogChange, LogOp, NO_PARENT, OWN_RECORDS, Pointer, Positioned};
use super::{
    Attempt, AttemptId, Batch, Durability, Loaded, Op, StageId, Store, Topology, corrupt, trace,
};

mod attempt_log;
mod staging;

use attempt_log::{AttemptLog, AttemptOp};

/// For `crate::fuzzing`: whether `bytes`, read as an attempt journal file,
/// keep their live attempts through a compaction (see
/// `attempt_log::round_trips`).
pub(crate) fn attempt_journal_round_trips(bytes: &[u8]) -> bool {
    attempt_log::round_trips(bytes)
}

/// sled's page cache. sled's default (1 GiB) would dwarf the graph itself; the
/// graph holds what a reopen needs, and bodies are read one at a time. A larger
/// cache does not speed up bulk inserts: 256 MiB built 10^5 nodes with the same
/// CPU time (sled's inserts are CPU-bound there, not waiting on reads).
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// zstd's level for sled's page compression, in the stores created by schemas
/// 3–5 that use it (newer stores compress their segments themselves:
/// [`segment::Packing`]). sled compresses every page it writes with a fresh
/// zstd context, and since schema 4 (segments) and the grouped search index
/// that was the largest single cost of a bulk insert (about a quarter of its
/// CPU at 10^5 nodes with the index at level 3: `docs/benchmarks.md`,
/// section 4, *Bulk insert profiled*). Level 1 (zstd's `fast` strategy; sled
/// accepts nothing below 1) is measured there against 3. The level is not part
/// of the store: sled does not record it, pages of either level decompress
/// alike, so such stores simply write new pages at this level.
const COMPRESSION_LEVEL: i32 = 1;

const SCHEMA_KEY: &[u8] = b"schema_version";
const COMMIT_KEY: &[u8] = b"commit_seq";
const SNAPSHOT_KEY: &[u8] = b"snapshot";
/// The child index of schema versions 1 and 2 (`parent 0x00 child` → empty),
/// dropped by the upgrade to version 3.
const CHILD_INDEX_TREE: &[u8] = b"children";

/// How many nodes [`Store::for_each_node`] reads under one hold of the
/// segment index (writers that move nodes wait at most that long).
const READ_CHUNK: usize = 1024;
/// A reopen rewrites the snapshot once it has replayed this many logged changes,
/// or an eighth of the tree if that is more: the log then stays a small part of
/// what a reopen reads, and a rewrite is paid for by many cheap reopens.
const COMPACT_MIN: usize = 1024;
/// With [`Durability::Buffered`], a write flushes sled once this many
/// attempt removals wait for a flush (see [`attempt_log`]).
const PENDING_CLEARS_MAX: usize = 1024;
/// The commit watermark file, inside the store's directory.
const MARKER_FILE: &str = "resptree-commit";
/// How many bytes this build writes to the watermark file: a `u64` in
/// decimal, padded with spaces in front.
const WATERMARK_WIDTH: usize = 20;

/// The commit watermark as this handle last wrote it (see
/// `SledStore::write_watermark`).
#[derive(Debug, Default)]
struct Watermark {
    /// The commit number written.
    written: u64,
    /// The file, once this handle created it whole: later numbers overwrite
    /// it in place.
    file: Option<std::fs::File>,
}

/// How long an open waits for a held lock by default (see [`SledOptions::lock_wait`]).
///
/// sled releases its file lock only when the last of its background threads lets
/// go of the database, some time after the last handle is dropped. On an idle
/// machine that takes milliseconds, but it depends on when those threads are
/// scheduled, so on a loaded machine (two cores, several compilers) a margin of
/// half a second, what this used to be, is a flaky one. Five seconds makes
/// drop-then-reopen reliable there, and a store that is really in use by another
/// process is still reported soon enough for a person at a terminal.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The first and the longest pause between two attempts to take a held lock:
/// short at first, since a lock released in the background usually goes within
/// milliseconds, then doubling so a long wait does not spin.
const LOCK_POLL_FIRST: Duration = Duration::from_millis(5);
const LOCK_POLL_MAX: Duration = Duration::from_millis(100);

/// How [`SledStore::open_with`] opens a store.
///
/// ```
/// use std::time::Duration;
/// use resptree::store::{SledOptions, SledStore};
/// let dir = tempfile::tempdir()?;
/// // Fail at once instead of waiting for a store held by someone else.
/// let options = SledOptions::default().with_lock_wait(Duration::ZERO);
/// let store = SledStore::open_with(dir.path().join("tree"), options)?;
/// # drop(store);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledOptions {
    /// How long an open waits for a store locked by another handle (in this or
    /// another process) before it gives up with [`Error::StoreInUse`]. Default
    /// 5 seconds.
    ///
    /// sled drops its file lock from background threads some time after the
    /// last handle is closed, so even a reopen in the same process may find the
    /// lock still held for a moment; waiting covers that. A shorter wait reports
    /// a store really in use sooner; `Duration::ZERO` tries once.
    pub lock_wait: Duration,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

impl SledOptions {
    /// Sets [`SledOptions::lock_wait`].
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }
}

/// A [`Store`] in a sled database on disk (or in a temporary directory).
///
/// sled is single-process: a second process (or a second open in this process)
/// gets [`Error::StoreInUse`]. To share one tree between processes or hosts, use a
/// networked store instead.
///
/// [`Store::load`] reads the topology snapshot (a `topology-<n>.snapshot` file in
/// the store's directory) and replays the topology log written since, instead
/// of every node's record; when the snapshot is missing or damaged it scans the
/// records. Either way it may write a fresh snapshot before it returns (see
/// [`SledStore::with_snapshot_every`] and `docs/store-format.md`).
///
/// ```
/// use resptree::store::{SledStore, Store};
/// let dir = tempfile::tempdir()?;
/// let store = SledStore::open(dir.path().join("tree"))?;
/// assert!(store.load()?.nodes.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sled")))]
#[derive(Debug)]
pub struct SledStore {
    /// The attempt journal ([`attempt_log`]): a file beside the database.
    /// First, so that it is closed before sled lets go of its lock (fields
    /// drop in order), which is what keeps it to one process.
    journal: AttemptLog,
    db: sled::Db,
    path: Option<PathBuf>,
    durability: Durability,
    /// Nodes written by schema 3 and older: one topology record each.
    topology: sled::Tree,
    /// Nodes written by schema 3 and older: one body record each.
    bodies: sled::Tree,
    /// How this store writes its segments: compressed here, unless sled
    /// compresses its pages (a store created by schemas 3–5).
    packing: segment::Packing,
    /// Nodes written since schema 4, many per record.
    segments: sled::Tree,
    refs: sled::Tree,
    /// The attempts of stores written before the journal file: emptied into
    /// it at open (see `migrate_attempts`), otherwise unused.
    attempts: sled::Tree,
    meta: sled::Tree,
    topology_log: sled::Tree,
    /// Annotations, keyed `node id 0x00 annotation key` (see `annotation_key`).
    annotations: sled::Tree,
    /// The search index ([`sled_search`]): postings lists per term and group.
    search_lists: sled::Tree,
    /// The search index: which node each chunk's slots stand for.
    search_docs: sled::Tree,
    /// See [`SledStore::with_snapshot_every`]; `None` for the default.
    snapshot_every: Option<usize>,
    /// The commit number last written to the watermark file, and the file.
    watermark: std::sync::Mutex<Watermark>,
    /// The commit number the last flush covered; writers that need a flush
    /// take turns on it (see `sync_to`).
    flushed: std::sync::Mutex<u64>,
    /// Flushes done through this handle.
    flushes: std::sync::atomic::AtomicU64,
    /// Why the store looks truncated, found at open: `(key, reason)`.
    lost_writes: Option<(String, String)>,
    /// Which segment holds each node; built by a load (or, for a store used
    /// without one, by a scan of the segments at the first read or write).
    /// A writer that moves or removes existing nodes holds it exclusively
    /// during its transaction, so a read never misses a node in between.
    index: std::sync::RwLock<Option<SegmentIndex>>,
    /// The next segment number to give out.
    next_segment: std::sync::atomic::AtomicU32,
    /// Whether `topology`/`bodies` may hold nodes (a store upgraded from
    /// schema 3 or older): only then do reads and removals look there.
    own_records: std::sync::atomic::AtomicBool,
    /// Writers take turns: segment numbers and the index change with each
    /// batch, and the group commit sends one writer at a time anyway.
    writing: std::sync::Mutex<()>,
    /// Segments written ahead of their publication ([`staging`]): no scan
    /// reads them as nodes.
    staged: sled::Tree,
    /// The stages in progress through this handle.
    stages: std::sync::Mutex<foldhash::HashMap<u64, staging::Stage>>,
    /// The next stage number to give out.
    next_stage: std::sync::atomic::AtomicU64,
    /// The snapshot file as read while sled was opening ([`snapshot::read_ahead`]),
    /// taken by the first load.
    read_ahead: std::sync::Mutex<Option<std::thread::JoinHandle<Option<snapshot::ReadAhead>>>>,
}

impl SledStore {
    /// Opens (or creates) the store at `path`, with the default [`SledOptions`].
    ///
    /// If the store is locked, the open waits for the lock for up to
    /// [`SledOptions::lock_wait`] (5 seconds), blocking the calling thread: sled
    /// drops its lock in the background after a handle is closed, so a reopen
    /// right after a drop must wait for it.
    ///
    /// # Errors
    ///
    /// [`Error::StoreInUse`] if another process (or another handle in this
    /// process) holds it open,
    /// [`Error::CorruptRecord`] if it was written by a newer schema version,
    /// [`Error::Storage`] for any other failure.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SledOptions::default())
    }

    /// Opens (or creates) the store at `path` with the given options.
    ///
    /// Blocks the calling thread for up to [`SledOptions::lock_wait`] while
    /// another handle holds the store.
    ///
    /// # Errors
    ///
    /// As [`SledStore::open`]; [`Error::StoreInUse`] comes after the lock was
    /// still held when `options.lock_wait` ran out.
    // By value, as `PostgresStore::connect_with` takes its options: an option
    // that is not `Copy` can be added later without changing any caller.
    #[allow(clippy::needless_pass_by_value)]
    pub fn open_with(path: impl AsRef<Path>, options: SledOptions) -> Result<Self> {
        let path = path.as_ref();
        let (config, packing) = config(path)?;
        let started = Instant::now();
        // The snapshot is read and decoded while sled opens (it is checked
        // against the pointer sled holds before it is used). No thread, no
        // read ahead: the load reads it itself.
        let dir = path.to_path_buf();
        let read_ahead = std::thread::Builder::new()
            .name("resptree-snapshot".into())
            .spawn(move || snapshot::read_ahead(&dir))
            .ok();
        let db = open_waiting(&config, path, options.lock_wait)?;
        tracing::debug!(target: "resptree::store", store = "sled", path = %path.display(), waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "opened");
        let store = Self::from_db(db, Some(path.to_path_buf()), packing)?;
        *store
            .read_ahead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = read_ahead;
        Ok(store)
    }

    /// A store in a fresh temporary directory, deleted when the store is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the temporary database cannot be created.
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|e| Error::storage("creating a temporary store", e))?;
        Self::from_db(db, None, segment::Packing::Compressed)
    }

    /// Sets when writes become durable (default [`Durability::Flush`]).
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets how many logged changes a [`Store::load`] may replay on top of the
    /// topology snapshot before it writes a fresh snapshot. The default is 1024
    /// or an eighth of the tree, whichever is larger; `1` rewrites it at every
    /// load that found any change, `usize::MAX` only when there is none yet.
    ///
    /// The snapshot (see `docs/store-format.md`) is what lets a reopen read one
    /// file instead of every node's record: a larger setting makes loads that
    /// follow many writes read more, a smaller one makes them write more.
    #[must_use]
    pub fn with_snapshot_every(mut self, changes: usize) -> Self {
        self.snapshot_every = Some(changes);
        self
    }

    /// Makes the next [`Store::load`] scan every node's record, instead of
    /// reading the topology snapshot and log, and so report any record that
    /// is corrupt. Use it after the database was changed by other means than
    /// this store (the snapshot and log only know what went through
    /// [`Store::apply`]); the scan then writes a fresh snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the change cannot be written.
    pub fn forget_snapshot(&self) -> Result<()> {
        self.meta
            .remove(SNAPSHOT_KEY)
            .map_err(|e| Error::storage("forgetting the topology snapshot", e))?;
        self.flush_db()
    }

    /// The store's durability setting.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The directory of the database, or `None` for a temporary store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every `(parent, child)` pair, ordered by parent then child id, as the
    /// topology records say. Used to check a store's structure from outside.
    ///
    /// Schema 3 no longer keeps a separate child index on disk (nothing read it:
    /// the graph knows every node's children), so this derives the pairs from
    /// a scan of the `topology` records.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, [`Error::CorruptRecord`] for a record
    /// that does not decode.
    pub fn child_index(&self) -> Result<Vec<(NodeId, NodeId)>> {
        let mut problems = Vec::new();
        let (nodes, _) = self.scan_topology(&mut problems)?;
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        let mut out: Vec<(NodeId, NodeId)> = nodes
            .into_iter()
            .filter_map(|t| Some((t.parent?, t.id)))
            .collect();
        out.sort();
        Ok(out)
    }

    fn from_db(db: sled::Db, path: Option<PathBuf>, packing: segment::Packing) -> Result<Self> {
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| Error::storage("opening the store", e))
        };
        let segments = tree("segments")?;
        let next_segment = match segments.last() {
            Ok(Some((key, _))) => segment_number(&key).map_or(u32::MAX, |n| n.saturating_add(1)),
            Ok(None) => OWN_RECORDS + 1,
            Err(e) => return Err(Error::storage("opening the store", e)),
        };
        let topology = tree("topology")?;
        let bodies = tree("bodies")?;
        let own_records = !topology.is_empty() || !bodies.is_empty();
        // sled holds its lock by now: the journal is this process's alone.
        let journal = match &path {
            Some(dir) => AttemptLog::open(dir)?,
            None => AttemptLog::in_memory(),
        };
        let mut store = Self {
            journal,
            topology,
            bodies,
            packing,
            segments,
            index: std::sync::RwLock::new(None),
            next_segment: std::sync::atomic::AtomicU32::new(next_segment),
            own_records: std::sync::atomic::AtomicBool::new(own_records),
            writing: std::sync::Mutex::new(()),
            refs: tree("refs")?,
            attempts: tree("attempts")?,
            meta: tree("meta")?,
            topology_log: tree("topology_log")?,
            annotations: tree("annotations")?,
            search_lists: tree(sled_search::LISTS_TREE)?,
            search_docs: tree(sled_search::DOCS_TREE)?,
            staged: tree(staging::STAGED_TREE)?,
            stages: std::sync::Mutex::new(foldhash::HashMap::new()),
            next_stage: std::sync::atomic::AtomicU64::new(1),
            read_ahead: std::sync::Mutex::new(None),
            snapshot_every: None,
            watermark: std::sync::Mutex::new(Watermark::default()),
            flushed: std::sync::Mutex::new(0),
            flushes: std::sync::atomic::AtomicU64::new(0),
            path,
            durability: Durability::Flush,
            lost_writes: None,
            db,
        };
        store.check_schema()?;
        store.migrate_attempts()?;
        store.lost_writes = store.check_watermark();
        // Before the index check: a re-index reads every segment.
        store.remove_abandoned_stages()?;
        store.check_search_index()?;
        // What sled read at open is on disk: only later commits need a flush
        // (an attempt-only write then costs no sled flush at all).
        let seq = store.commit_seq();
        *store
            .flushed
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = seq;
        Ok(store)
    }

    /// Moves the attempts of a store written before the journal file from
    /// the sled `attempts` tree into the file: the file is fsynced before the
    /// tree is cleared, so a crash in between leaves them in both, and the
    /// next open finds them journaled already and only clears the tree. The
    /// schema version (5) keeps older builds, which would not see the
    /// journaled attempts, out of the store (docs/store-format.md). A record that does not decode stops the
    /// migration: the tree stays as it is and the journal reports that record
    /// as [`Store::attempts`] did before.
    fn migrate_attempts(&self) -> Result<()> {
        if self.path.is_none() || self.attempts.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        for entry in self.attempts.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("reading the attempts", e))?;
            match codec::decode_attempt(&value) {
                Ok(attempt) => found.push(attempt),
                Err(reason) => {
                    tracing::error!(target: "resptree::store", store = "sled", key = %hex(&key), reason = %reason, "an attempt record does not decode; attempts left in the sled tree");
                    self.journal
                        .mark_damaged(format!("attempts/{}", hex(&key)), reason);
                    return Ok(());
                }
            }
        }
        let moved = self.journal.migrate(found)?;
        self.attempts
            .clear()
            .map_err(|e| Error::storage("clearing the migrated attempts", e))?;
        self.flush_db()?;
        tracing::info!(target: "resptree::store", store = "sled", attempts = moved, "attempts moved from the sled tree into the journal file");
        Ok(())
    }

    /// How many times this handle fsynced the attempt journal file: with
    /// [`SledStore::flushes`], every fsync the store made.
    pub fn journal_syncs(&self) -> u64 {
        self.journal.syncs()
    }

    /// The number of the last batch committed to sled.
    fn commit_seq(&self) -> u64 {
        // An unreadable counter reads as 0: the watermark check then reports it.
        self.meta
            .get(COMMIT_KEY)
            .ok()
            .flatten()
            .map_or(0, |bytes| decode_seq(&bytes))
    }

    fn marker_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| p.join(MARKER_FILE))
    }

    /// Records `seq` as durable. Best effort: the batch itself is already
    /// durable, so failing the caller here would invite a duplicate retry.
    /// Not fsynced, so it can only lag behind the database, never lead.
    ///
    /// The first write of a handle creates the file whole (a temporary file,
    /// renamed), so a crash never leaves it empty or torn; later writes
    /// overwrite its [`WATERMARK_WIDTH`] bytes in place, in the one sector at
    /// its start, which a crash leaves old or new. (A rename per commit group
    /// cost 1–3 ms on ext4, which flushes a file renamed over another:
    /// `docs/benchmarks.md` section 2b.)
    ///
    /// Concurrent batches take turns, and a batch that finishes late must not
    /// put an older number back.
    fn write_watermark(&self, seq: u64) {
        use std::io::{Seek as _, Write as _};
        let Some(marker) = self.marker_path() else {
            return;
        };
        let mut watermark = self
            .watermark
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seq <= watermark.written {
            return;
        }
        // Right-aligned decimal, space-padded: every build reads it (`trim`,
        // then a number), and every write is the same length.
        let text = format!("{seq:>WATERMARK_WIDTH$}");
        let in_place = watermark.file.as_mut().is_some_and(|file| {
            file.seek(std::io::SeekFrom::Start(0)).is_ok()
                && file.write_all(text.as_bytes()).is_ok()
        });
        if in_place {
            watermark.written = seq;
            return;
        }
        watermark.file = None;
        let tmp = marker.with_extension("tmp");
        let created = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            std::fs::rename(&tmp, &marker)?;
            Ok(file)
        });
        if let Ok(file) = created {
            watermark.file = Some(file);
            watermark.written = seq;
        }
    }

    /// Compares the database's commit counter with the last one known durable.
    fn check_watermark(&self) -> Option<(String, String)> {
        let marker = self.marker_path()?;
        let text = match std::fs::read_to_string(&marker) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some((MARKER_FILE.to_owned(), format!("unreadable: {e}"))),
        };
        let Ok(durable) = text.trim().parse::<u64>() else {
            return Some((MARKER_FILE.to_owned(), "not a commit number".to_owned()));
        };
        let found = self.commit_seq();
        (found < durable).then(|| {
            (
                "meta/commit_seq".to_owned(),
                format!(
                    "the database ends at commit {found}, but commit {durable} was durable: \
                     sled stopped reading its log at a damaged record, and the writes of \
                     {} later commits are lost",
                    durable - found
                ),
            )
        })
    }

    fn check_schema(&self) -> Result<()> {
        let meta = self
            .db
            .open_tree("meta")
            .map_err(|e| Error::storage("opening the store", e))?;
        let stored = meta
            .get(SCHEMA_KEY)
            .map_err(|e| Error::storage("reading the schema version", e))?;
        match stored {
            None => {
                // A new store: its log is complete from the first commit, so it
                // starts with an empty snapshot and a load replays the log
                // instead of scanning the records.
                let mut fresh = sled::Batch::default();
                fresh.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_le_bytes());
                fresh.insert(SNAPSHOT_KEY, Pointer::EMPTY.encode());
                meta.apply_batch(fresh)
                    .map_err(|e| Error::storage("writing the schema version", e))?;
                Ok(())
            }
            Some(bytes) => {
                let version = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_le_bytes)
                    .map_err(|_| corrupt("meta", SCHEMA_KEY, "not a u32"))?;
                if version > SCHEMA_VERSION {
                    Err(corrupt(
                        "meta",
                        SCHEMA_KEY,
                        format!(
                            "schema version {version} is newer than this build ({SCHEMA_VERSION})"
                        ),
                    ))
                } else if version < SCHEMA_VERSION {
                    self.upgrade(&meta, version)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Keeping the search index ([`sled_search`]) current across builds.
impl SledStore {
    /// Re-indexes the store if its index cannot be trusted: missing or of
    /// another format (a store made before the index, or by a build with
    /// format 1), behind its nodes (written since by a build that did not keep
    /// this index), or marked damaged by a search. No schema bump: the index
    /// trees are derived data, and an older build that opens the store only
    /// leaves this index behind, which `search_index_seq` lagging
    /// `commit_seq` shows.
    ///
    /// The markers are written only after the rebuild, so a crash half way
    /// leaves them saying "rebuild" and the next open starts over.
    fn check_search_index(&self) -> Result<()> {
        let state = |e| Error::storage("reading the search index state", e);
        let commit = self.commit_seq();
        let current = self
            .meta
            .get(sled_search::INDEX_SEQ_KEY)
            .map_err(state)?
            .map(|bytes| decode_seq(&bytes));
        let format = self
            .meta
            .get(sled_search::FORMAT_KEY)
            .map_err(state)?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .map(u32::from_le_bytes);
        let damaged = self
            .meta
            .contains_key(sled_search::DAMAGED_KEY)
            .map_err(state)?;
        if current == Some(commit) && format == Some(sled_search::FORMAT) && !damaged {
            return Ok(());
        }
        let started = Instant::now();
        let record = |e| Error::storage("recording the search index state", e);
        // Format 1's trees: a record per term and node, now only taking space.
        for name in sled_search::FORMAT_1_TREES {
            self.db.drop_tree(name).map_err(record)?;
        }
        let indexed = sled_search::reindex(&self.search_trees())?;
        let mut done = sled::Batch::default();
        done.insert(sled_search::INDEX_SEQ_KEY, &commit.to_le_bytes());
        done.insert(sled_search::FORMAT_KEY, &sled_search::FORMAT.to_le_bytes());
        done.remove(sled_search::DAMAGED_KEY);
        done.remove(sled_search::FORMAT_1_SEQ_KEY);
        self.meta.apply_batch(done).map_err(record)?;
        self.flush_db()?;
        tracing::info!(target: "resptree::store", store = "sled", nodes = indexed, duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "search index rebuilt");
        Ok(())
    }

    /// The trees the search index is planned and rebuilt from.
    fn search_trees(&self) -> sled_search::Trees<'_> {
        sled_search::Trees {
            lists: &self.search_lists,
            docs: &self.search_docs,
            segments: &self.segments,
            bodies: &self.bodies,
            meta: &self.meta,
        }
    }
}

/// Upgrading a store written by an older schema version, in place.
impl SledStore {
    /// Brings a store of schema `version` (older than [`SCHEMA_VERSION`]) up to
    /// date. Each step may run again if the process dies before the new number
    /// is written, so each is idempotent; the number is written last, and keeps
    /// older builds (which would write the old layout) out from then on.
    fn upgrade(&self, meta: &sled::Tree, version: u32) -> Result<()> {
        // 1 → 2 added the topology log: nothing to rewrite, since with no
        // snapshot pointer yet the first load scans the records (and writes one).
        // 2 → 3 dropped the child index: nothing read it, and it cost a record
        // and about 800 bytes on disk per small node. The other records keep
        // their encodings. (sled's page compression, the other half of schema
        // 3, is fixed when sled creates a database: see `config`.)
        if version < 3 {
            self.db
                .drop_tree(CHILD_INDEX_TREE)
                .map_err(|e| Error::storage("upgrading the store: dropping the child index", e))?;
        }
        // 3 → 4 writes new nodes into segments: the nodes already stored keep
        // their own records, which this build still reads (and removes when
        // such a node is replaced or removed), so nothing is rewritten. Their
        // snapshot and log entries (version 1) read as "own records". Schema 3
        // builds, which would not see nodes in segments, refuse the store from
        // then on.
        // 4 → 5 moved the attempt journal into `attempts.log`: the move itself
        // is `migrate_attempts`, which runs at every open while the sled tree
        // holds any, so a crash after the number below is written still moves
        // them. Schema 4 builds, which would neither see the file's attempts
        // nor keep their journal there, refuse the store from then on.
        // 5 → 6 lets a store compress its segments itself (segment version 2),
        // which a store does when sled does not compress its pages (a store of
        // schema 1 or 2; every store created since 6): nothing is rewritten,
        // plain segments stay readable. Schema 5 builds, which cannot read a
        // compressed segment, refuse the store from then on.
        meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_le_bytes())
            .map_err(|e| Error::storage("upgrading the schema version", e))?;
        self.flush_db()
    }
}

impl Store for SledStore {
    fn load(&self) -> Result<Loaded> {
        let started = Instant::now();
        let mut loaded = Loaded::default();
        if let Some((key, reason)) = &self.lost_writes {
            loaded
                .problems
                .push(Error::corrupt(key.clone(), reason.clone()));
        }
        // Read before any record: every batch committed after this number is in
        // the log, so a snapshot labelled with it misses nothing. (Replaying a
        // change the records already showed is harmless: each is a whole put
        // or removal of one node.)
        let seq = self.commit_seq();
        let mut found = match self.load_snapshot() {
            Some((mut found, replayed)) => {
                tracing::debug!(target: "resptree::store", store = "sled", replayed, "topology from the snapshot and its log");
                let every = self
                    .snapshot_every
                    .unwrap_or_else(|| COMPACT_MIN.max(found.nodes.len() / 8));
                if replayed > 0 && replayed >= every {
                    // Replayed nodes have no positions yet; find them all.
                    found.parents = snapshot::position_parents(&mut found.nodes);
                    self.compact(seq, &found);
                }
                found
            }
            None => {
                if self.path.is_some() && self.snapshot_pointer().is_some() {
                    // The store had a snapshot and cannot use it (a damaged or
                    // missing file): this open scans every record, which is
                    // slow on a large store; the scan writes a new snapshot.
                    tracing::warn!(target: "resptree::store", store = "sled", "the topology snapshot is unusable: scanning the records");
                } else {
                    tracing::debug!(target: "resptree::store", store = "sled", "no snapshot yet: scanning the records");
                }
                let before = loaded.problems.len();
                let (mut nodes, segments) = self.scan_topology(&mut loaded.problems)?;
                let parents = snapshot::position_parents(&mut nodes);
                let found = Positioned {
                    nodes,
                    parents,
                    segments,
                    index: None,
                };
                // A snapshot would hide the records the scan had to skip; they
                // stay reported until they are fixed.
                if loaded.problems.len() == before && !found.nodes.is_empty() {
                    self.compact(seq, &found);
                }
                found
            }
        };
        let index = match found.index.take() {
            Some(index) => index,
            None => found.segment_index(),
        };
        *self.index_mut() = Some(index);
        loaded.nodes = found.nodes;
        loaded.parent_positions = found.parents;
        for entry in self.refs.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("loading the refs", e))?;
            let name = std::str::from_utf8(&key)
                .map_err(|e| e.to_string())
                .and_then(|s| RefName::new(s).map_err(|e| e.to_string()));
            match (name, codec::decode_ref(&value)) {
                (Ok(name), Ok(target)) => loaded.refs.push((name, target)),
                (Err(reason), _) | (_, Err(reason)) => {
                    loaded.problems.push(corrupt("refs", &key, reason));
                }
            }
        }
        trace::loaded("sled", &loaded, started);
        Ok(loaded)
    }

    fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        // Held while reading, so a writer moving this node waits for us.
        let index = self.index()?;
        self.read_node(index.as_ref(), id, &mut None)
    }

    /// Reads in chunks under one hold of the index (writers that move nodes
    /// wait for a chunk), keeping the last segment read: the nodes of a
    /// branch were mostly written together, so consecutive ids of a walk
    /// usually share a segment and cost one sled read between them.
    fn for_each_node(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Node>) -> Result<()>,
    ) -> Result<()> {
        for chunk in ids.chunks(READ_CHUNK) {
            let index = self.index()?;
            let mut last = None;
            for id in chunk {
                let node = self.read_node(index.as_ref(), id, &mut last)?;
                f(id, node.as_ref())?;
            }
        }
        Ok(())
    }

    /// As [`SledStore::for_each_node`] reads, but decodes each body as a
    /// preview only (`codec::decode_preview`), its texts borrowed from the
    /// segment where they hold no escape: no `serde_json::Value` is built.
    fn for_each_preview(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Preview<'_>>) -> Result<()>,
    ) -> Result<()> {
        for chunk in ids.chunks(READ_CHUNK) {
            let index = self.index()?;
            let mut last = None;
            for id in chunk {
                let Some(body) = self.find_body(index.as_ref(), id, &mut last)? else {
                    f(id, None)?;
                    continue;
                };
                let preview = codec::decode_preview(body.bytes(&last))
                    .map_err(|reason| body.corrupt(id, reason))?;
                f(id, Some(&preview))?;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let seq = self.write_batch(batch)?;
        match self.durability {
            Durability::Flush => self.sync_all(seq),
            Durability::Buffered => {
                // Removals wait for a sled flush (see `attempt_log`); sled's
                // own background flushes are invisible here, so take one
                // now and then rather than keep them all in memory.
                if self.journal.pending() >= PENDING_CLEARS_MAX {
                    self.sync_to(seq)?;
                }
                Ok(())
            }
        }
    }

    fn apply_deferred(&self, batch: Batch) -> Result<()> {
        self.write_batch(batch).map(drop)
    }

    fn sync(&self) -> Result<()> {
        match self.durability {
            Durability::Flush => self.sync_all(self.commit_seq()),
            Durability::Buffered => Ok(()),
        }
    }

    /// From the journal file (`attempts.log`), read at open.
    fn attempts(&self) -> Result<Vec<Attempt>> {
        self.journal.attempts()
    }

    fn refs(&self) -> Result<Vec<(RefName, NodeId)>> {
        let mut out = Vec::new();
        for entry in self.refs.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("reading the refs", e))?;
            let name = std::str::from_utf8(&key)
                .ok()
                .and_then(|s| RefName::new(s).ok())
                .ok_or_else(|| corrupt("refs", &key, "not a valid ref name"))?;
            let target =
                codec::decode_ref(&value).map_err(|reason| corrupt("refs", &key, reason))?;
            out.push((name, target));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.sync_all(self.commit_seq())
    }

    fn annotations(&self, node: &NodeId) -> Result<Vec<Stamped>> {
        let mut out = Vec::new();
        for entry in self.annotations.scan_prefix(annotation_prefix(node)) {
            let (key, value) = entry.map_err(|e| Error::storage("reading annotations", e))?;
            out.push(decode_annotation(&key, &value)?.1);
        }
        Ok(out)
    }

    fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        let mut out = Vec::new();
        for entry in self.annotations.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("reading annotations", e))?;
            let (node, stamped) = decode_annotation(&key, &value)?;
            if kind.is_none_or(|k| stamped.annotation.kind() == k) {
                out.push((node, stamped));
            }
        }
        Ok(out)
    }

    /// From the inverted index in `search_lists`, written with every batch.
    /// A record of it that does not decode is skipped (its nodes are not
    /// found, never wrongly found) and the index is rebuilt at the next open.
    fn search(
        &self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<Vec<crate::search::Candidate>>> {
        let found = sled_search::query(&self.search_lists, &self.search_docs, query)?;
        if found.damaged {
            sled_search::mark_damaged(&self.meta);
        }
        Ok(Some(found.candidates))
    }

    /// From the same index, best first: each group's time bounds let the
    /// walk read the newest chunks first and name only what it hands out
    /// (`sled_search::ranked`).
    fn search_ranked<'a>(
        &'a self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<crate::search::RankedCandidates<'a>>> {
        let walk = sled_search::ranked(&self.search_lists, &self.search_docs, &self.meta, query)?;
        Ok(Some(Box::new(walk)))
    }

    /// Stages chunks as segments listed in `staged_segments` (`src/store/sled/staging.rs`).
    fn begin_stage(&self) -> Result<Option<StageId>> {
        Ok(Some(self.begin_staging()))
    }

    fn stage_nodes(&self, stage: StageId, nodes: &[Node]) -> Result<()> {
        self.stage_chunk(stage, nodes)
    }

    fn publish_stage(&self, stage: StageId, refs: &[(RefName, NodeId)]) -> Result<()> {
        self.publish(stage, refs)
    }

    fn abandon_stage(&self, stage: StageId) -> Result<()> {
        self.abandon(stage)
    }
}

/// Writing batches and making them durable.
impl SledStore {
    /// Encodes `batch`'s operations. A removed node's annotations are removed
    /// with it: sled's transactions cannot scan, so their keys are looked up
    /// here, before the transaction. Every write of a tree holds its edit lock,
    /// so no annotation of the node can appear between this scan and the
    /// transaction; annotations put earlier in the same batch are found in
    /// the batch itself.
    fn prepare(&self, batch: Batch) -> Result<Vec<Prepared>> {
        let ops = batch.into_ops();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            if let Op::RemoveNode(id) = &op {
                let prefix = annotation_prefix(id);
                let mut keys: Vec<Vec<u8>> = out
                    .iter()
                    .filter_map(|p| match p {
                        Prepared::PutAnnotation(key, _) if key.starts_with(&prefix) => {
                            Some(key.clone())
                        }
                        _ => None,
                    })
                    .collect();
                for key in self.annotations.scan_prefix(&prefix).keys() {
                    let key = key.map_err(|e| Error::storage("reading annotations", e))?;
                    keys.push(key.to_vec());
                }
                out.extend(keys.into_iter().map(Prepared::RemoveAnnotation));
            }
            out.push(Prepared::from(op));
        }
        Ok(out)
    }

    /// Writes `batch` in one sled transaction, without flushing; returns the
    /// commit number it got.
    fn write_batch(&self, batch: Batch) -> Result<u64> {
        let started = Instant::now();
        // Encode once, outside the transaction closure, which sled may rerun.
        let (ops, attempt_ops) = split_attempts(skip_overwritten_attempts(self.prepare(batch)?));
        let _turn = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut journal = self.journal.turn();
        if ops.is_empty() {
            // Only the journal: no sled transaction, no commit number.
            journal.write(&attempt_ops)?;
            journal.finish(attempt_ops, None)?;
            return Ok(self.commit_seq());
        }
        // The journal's puts go first: if the transaction then fails they are
        // taken back, and a crash in between leaves an attempt that was never
        // sent, which is what a crash before sending always leaves.
        let mark = journal.write(&attempt_ops)?;
        let result = self.write_sled(&ops, started);
        match &result {
            Ok(seq) => journal.finish(attempt_ops, Some(*seq))?,
            Err(_) => journal.undo(mark),
        }
        result
    }

    /// Writes a batch's sled operations (everything but attempts) in one
    /// transaction, under the writer's turn.
    fn write_sled(&self, ops: &[Prepared], started: Instant) -> Result<u64> {
        let plan = self.plan_nodes(ops)?;
        let log_entry = self.log_entry(ops, &plan);
        let search = self.plan_search(ops, &plan)?;
        // A batch that moves or removes stored nodes keeps readers out until
        // the index knows where they went (see `node`).
        let mut exclusive = plan.moves_stored().then(|| self.index_mut());
        let trees = (
            &self.topology,
            &self.bodies,
            &self.refs,
            &self.meta,
            &self.topology_log,
            &self.annotations,
            &self.search_lists,
            &self.search_docs,
            &self.segments,
        );
        // The commit number this batch got (the closure may run more than once).
        let committed = std::cell::Cell::new(0);
        let result: std::result::Result<(), TransactionError<Error>> = trees.transaction(
            |(topology, bodies, refs, meta, log, annotations, lists, docs, segments)| {
                for op in ops {
                    match op {
                        // Nodes are written below, as the plan packed them.
                        Prepared::PutNode { .. } | Prepared::RemoveNode(_) => {}
                        Prepared::SetRef(name, target) => {
                            refs.insert(name.as_bytes(), target.as_slice())?;
                        }
                        Prepared::SetRefIf {
                            name,
                            expected,
                            new,
                        } => {
                            let current = refs.get(name.as_str().as_bytes())?;
                            let actual = current.as_deref().map(codec::decode_ref);
                            let holds = match (&actual, expected) {
                                (None, None) => true,
                                (Some(Ok(actual)), Some(expected)) => actual == expected,
                                _ => false,
                            };
                            if !holds {
                                // A stored target that does not decode is reported as
                                // corrupt rather than as a conflict.
                                let actual =
                                    match actual {
                                        Some(Err(reason)) => {
                                            return Err(ConflictableTransactionError::Abort(
                                                corrupt("refs", name.as_str().as_bytes(), reason),
                                            ));
                                        }
                                        Some(Ok(id)) => Some(id),
                                        None => None,
                                    };
                                return Err(ConflictableTransactionError::Abort(Error::Conflict {
                                    name: name.clone(),
                                    expected: expected.clone(),
                                    actual,
                                }));
                            }
                            refs.insert(name.as_str().as_bytes(), codec::encode_ref(new))?;
                        }
                        Prepared::DeleteRef(name) => {
                            refs.remove(name.as_bytes())?;
                        }
                        // Split off before the transaction.
                        Prepared::PutAttempt(_) | Prepared::RemoveAttempt(_) => {}
                        Prepared::PutAnnotation(key, value) => {
                            annotations.insert(key.as_slice(), value.as_slice())?;
                        }
                        Prepared::RemoveAnnotation(key) => {
                            annotations.remove(key.as_slice())?;
                        }
                    }
                }
                for id in &plan.own_records {
                    topology.remove(id.as_bytes())?;
                    bodies.remove(id.as_bytes())?;
                }
                for (&number, gone) in &plan.rewrite {
                    drop_from_segment(segments, number, gone, self.packing)?;
                }
                for (number, bytes) in &plan.segments {
                    segments.insert(&number.to_be_bytes(), bytes.as_slice())?;
                }
                // Their postings, in the same transaction.
                search.write(lists, docs, meta)?;
                committed.set(stamp_commit(meta, log, log_entry.as_deref())?);
                Ok::<(), ConflictableTransactionError<Error>>(())
            },
        );
        match result {
            Ok(()) => {
                let placed = plan
                    .placed
                    .iter()
                    .map(|&(i, number)| (ops[i].node_id(), number));
                match exclusive.as_mut() {
                    Some(index) => index
                        .get_or_insert_with(SegmentIndex::default)
                        .extend(placed),
                    None => self
                        .index_mut()
                        .get_or_insert_with(SegmentIndex::default)
                        .extend(placed),
                }
                trace::committed("sled", ops.len(), Some(committed.get()), started);
                Ok(committed.get())
            }
            Err(TransactionError::Storage(e)) => Err(Error::storage("writing a batch", e)),
            Err(TransactionError::Abort(e)) => Err(e),
        }
    }

    /// Decides where a batch's nodes go: the nodes it stores (the last write
    /// of each id wins) packed into new segments, and the older copies of the
    /// nodes it replaces or removes, to be dropped in the same transaction.
    fn plan_nodes(&self, ops: &[Prepared]) -> Result<NodePlan> {
        let mut plan = NodePlan::default();
        let mut last: foldhash::HashMap<&str, usize> = foldhash::HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, Prepared::PutNode { .. } | Prepared::RemoveNode(_)) {
                last.insert(op.node_id(), i);
            }
        }
        if last.is_empty() {
            return Ok(plan);
        }
        // Older copies: in segments (the index may name segments that do not
        // hold the id after all; the rewrite then leaves them alone) and, in an
        // upgraded store, in the node's own records.
        {
            let index = self.index()?;
            let own_records = self.own_records.load(std::sync::atomic::Ordering::Acquire);
            for &id in last.keys() {
                for number in index
                    .as_ref()
                    .map(|i| i.candidates(id))
                    .into_iter()
                    .flatten()
                {
                    plan.rewrite.entry(number).or_default().push(id.to_owned());
                }
                let stored = own_records
                    && self
                        .bodies
                        .contains_key(id.as_bytes())
                        .map_err(|e| Error::storage("reading a node", e))?;
                if stored {
                    plan.own_records.push(id.to_owned());
                }
            }
        }
        // The puts that stand at the end of the batch, in order.
        let live: Vec<(usize, segment::Entry<'_>)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Prepared::PutNode {
                    id, topology, body, ..
                } if last.get(id.as_str()) == Some(&i) => {
                    Some((i, segment::Entry { id, topology, body }))
                }
                _ => None,
            })
            .collect();
        let packed = segment::pack(live.iter().map(|&(_, entry)| entry), self.packing);
        let first = self.segment_numbers(packed.len())?;
        // `pack` keeps the order, so the live puts fill the segments in turn.
        let mut live = live.into_iter().map(|(i, _)| i);
        for (number, (bytes, nodes)) in (first..).zip(packed) {
            plan.placed
                .extend(live.by_ref().take(nodes).map(|i| (i, number)));
            plan.segments.push((number, bytes));
        }
        Ok(plan)
    }

    /// The search index writes of a batch: postings for the nodes `plan`
    /// stores, grouped (one list per term), and the removal of the postings of
    /// the older copies it drops. Read under the writer's turn, so the index
    /// does not change before the transaction writes it.
    fn plan_search(&self, ops: &[Prepared], plan: &NodePlan) -> Result<sled_search::Writes> {
        let added = plan.placed.iter().filter_map(|&(i, number)| match &ops[i] {
            Prepared::PutNode { id, index, .. } => Some((number, id.as_str(), index)),
            _ => None,
        });
        sled_search::Writes::plan(
            &self.search_trees(),
            added,
            &plan.rewrite,
            &plan.own_records,
        )
    }

    /// Makes every batch up to commit `seq` durable, and the journal file's
    /// puts and updates. When both sled and the file have something to write
    /// (a commit group with both a node and a response id, which a fan-out's
    /// groups often are), the two fsyncs run at once, on this thread and a
    /// scoped one: on this VM disk each takes 0.5–7 ms (tens under other
    /// processes' writes; `docs/benchmarks.md` section 2b), and every writer
    /// of the group waits for the later of them instead of their sum.
    ///
    /// Neither order matters for what a crash leaves: no writer of the group
    /// has been answered yet, and the journal's clears, which must follow the
    /// nodes they settle, are appended by `sync_to` after sled's flush.
    fn sync_all(&self, seq: u64) -> Result<()> {
        let sled_behind = *self
            .flushed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            < seq;
        if !(sled_behind && self.journal.needs_sync()) {
            self.sync_to(seq)?;
            return self.journal.sync();
        }
        let (journal, sled) = beside(
            "resptree-journal-sync",
            || self.journal.sync(),
            || self.sync_to(seq),
        );
        sled.and(journal)
    }

    /// Makes every batch up to commit `seq` durable, sharing flushes: callers
    /// take turns, and one whose batch a flush that started after it already
    /// covered returns without flushing again. This is the group commit: N
    /// writers waiting on one fsync cost one more fsync, not N.
    fn sync_to(&self, seq: u64) -> Result<()> {
        let mut flushed = self
            .flushed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *flushed >= seq {
            let durable = *flushed;
            drop(flushed);
            // A batch may have handed its removals to the journal after the
            // flush that covered it read the counter.
            self.release_clears(durable);
            return Ok(());
        }
        // Read before flushing: everything up to `covering` is durable after it.
        let covering = self.commit_seq();
        let started = Instant::now();
        self.flush_db()?;
        trace::flushed("sled", Some(covering), started.elapsed());
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *flushed = covering;
        drop(flushed);
        self.write_watermark(covering);
        self.release_clears(covering);
        Ok(())
    }

    /// Writes the journal's removals that waited for sled commit `durable`.
    /// Best effort, as the watermark: the nodes are durable, and a lost
    /// removal only brings back an attempt whose node `recover` finds.
    fn release_clears(&self, durable: u64) {
        if let Err(e) = self.journal.release(durable) {
            tracing::warn!(target: "resptree::store", store = "sled", error = %e, "could not write attempt removals to the journal");
        }
    }

    /// How many times this handle flushed sled to disk: with
    /// [`SledStore::commits`], the commits-per-fsync a group commit achieved.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many batches the store has committed in its life (its commit counter).
    pub fn commits(&self) -> u64 {
        self.commit_seq()
    }
}

/// Loading through the snapshot and the log, and keeping them short.
impl SledStore {
    /// Every readable topology record, in the nodes' own records and in
    /// segments, with the segment of each ([`OWN_RECORDS`] for the former);
    /// unreadable ones are added to `problems`.
    fn scan_topology(&self, problems: &mut Vec<Error>) -> Result<(Vec<Topology>, Vec<u32>)> {
        let mut nodes = Vec::new();
        for entry in self.topology.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("loading the tree", e))?;
            let id = match key_to_id(&key) {
                Ok(id) => id,
                Err(reason) => {
                    problems.push(corrupt("topology", &key, reason));
                    continue;
                }
            };
            match codec::decode_topology(id, &value) {
                Ok(t) => nodes.push(t),
                Err(reason) => problems.push(corrupt("topology", &key, reason)),
            }
        }
        let mut segments = vec![OWN_RECORDS; nodes.len()];
        // Stages are written, published and abandoned in turn with other
        // writers: holding the turn, the staged list matches the segments.
        let _turn = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let staged = self.staged_numbers()?;
        for entry in self.segments.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("loading the tree", e))?;
            let Some(number) = segment_number(&key) else {
                problems.push(corrupt("segments", &key, "not a segment number"));
                continue;
            };
            if staged.contains(&number) {
                continue;
            }
            let plain = segment::unpack(&value);
            let entries = match segment::decode_unpacked(&plain) {
                Ok(entries) => entries,
                Err(reason) => {
                    problems.push(Error::corrupt(format!("segments/{number}"), reason));
                    continue;
                }
            };
            for entry in entries {
                let decoded = NodeId::new(entry.id)
                    .map_err(|e| e.to_string())
                    .and_then(|id| codec::decode_topology(id, entry.topology));
                match decoded {
                    Ok(t) => {
                        nodes.push(t);
                        segments.push(number);
                    }
                    Err(reason) => problems.push(Error::corrupt(
                        format!("segments/{number}"),
                        format!("node {}: {reason}", entry.id),
                    )),
                }
            }
        }
        Ok((nodes, segments))
    }

    /// Node `id`'s record, looked up in `index` (held by the caller, so no
    /// writer moves nodes meanwhile). `last` is the segment read last, kept
    /// between calls that share the hold (never across holds): it is searched
    /// first, and a candidate segment equal to it is not read again.
    fn read_node(
        &self,
        index: Option<&SegmentIndex>,
        id: &NodeId,
        last: &mut Option<LastSegment>,
    ) -> Result<Option<Node>> {
        let Some(body) = self.find_body(index, id, last)? else {
            return Ok(None);
        };
        codec::decode_body(body.bytes(last))
            .map(Some)
            .map_err(|reason| body.corrupt(id, reason))
    }

    /// Where node `id`'s body is stored, found as [`SledStore::read_node`]
    /// describes; a body in a segment is left in `last`.
    fn find_body(
        &self,
        index: Option<&SegmentIndex>,
        id: &NodeId,
        last: &mut Option<LastSegment>,
    ) -> Result<Option<Body>> {
        let key = id.as_str().as_bytes();
        // The segment read last, for the node before this one in a walk,
        // usually holds this one too (a branch's nodes are written together),
        // and is then the answer without an index lookup: while the caller
        // holds the index, no writer moves a stored node (moves take it
        // exclusively), and a committed node is in one segment only (a move
        // drops the old copy in the same transaction). Within it, the entry
        // after the one found last is tried first.
        if let Some(cached) = last.as_mut() {
            if let Some(body) = cached.find(id)? {
                return Ok(Some(body));
            }
        }
        let candidates = index.map(|i| i.candidates(id.as_str()));
        for number in candidates.into_iter().flatten() {
            if last.as_ref().is_none_or(|cached| cached.number != number) {
                *last = self
                    .segments
                    .get(number.to_be_bytes())
                    .map_err(|e| Error::storage("reading a node", e))?
                    .map(|stored| {
                        let bytes = segment::unpack(stored).map_err(|reason| {
                            Error::corrupt(format!("segments/{number}"), reason)
                        })?;
                        Ok::<_, Error>(LastSegment {
                            number,
                            bytes,
                            next: 0,
                        })
                    })
                    .transpose()?;
            }
            let Some(cached) = last.as_mut().filter(|cached| cached.number == number) else {
                continue;
            };
            if let Some(body) = cached.find(id)? {
                return Ok(Some(body));
            }
        }
        if !self.own_records.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(None);
        }
        let bytes = self
            .bodies
            .get(key)
            .map_err(|e| Error::storage("reading a node", e))?;
        Ok(bytes.map(Body::Own))
    }

    /// The index of every readable segment, for a store used without a load
    /// (a load builds it from what it read).
    fn scan_index(&self) -> Result<SegmentIndex> {
        let mut index = SegmentIndex::default();
        // Not in turn with writers (a writer may be the caller): a stage
        // abandoned meanwhile leaves stale entries, which cost a read, never
        // a wrong answer; a staged node is found only by its id, which no
        // graph holds before publication.
        let staged = self.staged_numbers()?;
        for entry in self.segments.iter() {
            let (key, value) = entry.map_err(|e| Error::storage("reading the segments", e))?;
            // Unreadable segments are reported by the next load.
            let Some(number) = segment_number(&key).filter(|n| !staged.contains(n)) else {
                continue;
            };
            let plain = segment::unpack(&value);
            let Ok(entries) = segment::decode_unpacked(&plain) else {
                continue;
            };
            index.extend(entries.iter().map(|e| (e.id, number)));
        }
        Ok(index)
    }

    /// The index for reading, built first if no load has built it.
    fn index(&self) -> Result<std::sync::RwLockReadGuard<'_, Option<SegmentIndex>>> {
        {
            let index = self
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if index.is_some() {
                return Ok(index);
            }
        }
        {
            let mut index = self.index_mut();
            if index.is_none() {
                *index = Some(self.scan_index()?);
            }
        }
        Ok(self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Option<SegmentIndex>> {
        // A poisoned lock still guards a consistent index: entries are only
        // ever added whole, and a stale entry costs a read, never a wrong answer.
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The topology from the snapshot and the log after it, and how many
    /// logged changes were replayed; `None` if there is no usable snapshot, or
    /// any part of the log after it cannot be read (the caller then scans).
    fn load_snapshot(&self) -> Option<(Positioned, usize)> {
        let dir = self.path.as_deref()?;
        let pointer = self.snapshot_pointer()?;
        // Joined whatever the pointer says, so its file is not read twice at once.
        let ahead = self
            .read_ahead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .and_then(|handle| handle.join().ok().flatten());
        let mut found = match ahead.and_then(|ahead| ahead.into_found(&pointer)) {
            Some(found) => found,
            None => snapshot::read(dir, &pointer).ok()?,
        };
        let start = pointer.seq.checked_add(1)?;
        let mut changes = Vec::new();
        for entry in self.topology_log.range(start.to_be_bytes()..) {
            let (_, value) = entry.ok()?;
            changes.extend(snapshot::decode_log(&value).ok()?);
        }
        let replayed = changes.len();
        let appended = replay(&mut found, changes);
        // The snapshot's index knows the nodes as the snapshot held them; the
        // replayed puts went to the end. (Entries of nodes the log removed or
        // moved stay behind: a stale entry costs a read, never a wrong answer.)
        if let Some(index) = found.index.as_mut() {
            let start = found.nodes.len() - appended;
            index.extend(
                found.nodes[start..]
                    .iter()
                    .zip(&found.segments[start..])
                    .filter(|&(_, &number)| number != OWN_RECORDS)
                    .map(|(t, &number)| (t.id.as_str(), number)),
            );
        }
        Some((found, replayed))
    }

    fn snapshot_pointer(&self) -> Option<Pointer> {
        let bytes = self.meta.get(SNAPSHOT_KEY).ok()??;
        Pointer::decode(&bytes).ok()
    }

    /// Writes `found`, the state as of commit `seq`, as the new snapshot, then
    /// drops what it replaces: the log up to `seq` and older snapshot files.
    ///
    /// Best effort: `nodes` are already loaded, and a snapshot that could not
    /// be written only means the next open reads more.
    fn compact(&self, seq: u64, found: &Positioned) {
        let Some(dir) = self.path.as_deref() else {
            return;
        };
        let Some(bytes) = snapshot::encode(found) else {
            return;
        };
        let generation = self
            .snapshot_pointer()
            .map_or(1, |p| p.generation.wrapping_add(1));
        let mut pointer = match snapshot::write(dir, generation, &bytes) {
            Ok(pointer) => pointer,
            Err(error) => {
                // Nobody else hears of it: the load succeeds, only slower next time.
                tracing::warn!(target: "resptree::store", store = "sled", %error, "could not write the topology snapshot");
                return;
            }
        };
        pointer.seq = seq;
        // The pointer must be durable before what it replaces is deleted.
        if self.meta.insert(SNAPSHOT_KEY, pointer.encode()).is_err() || self.flush_db().is_err() {
            return;
        }
        let mut covered = sled::Batch::default();
        for key in self
            .topology_log
            .range(..=seq.to_be_bytes())
            .keys()
            .flatten()
        {
            covered.remove(key);
        }
        let _ = self.topology_log.apply_batch(covered);
        snapshot::remove_others(dir, generation);
        tracing::debug!(target: "resptree::store", store = "sled", seq, generation, nodes = found.nodes.len(), bytes = bytes.len(), "topology snapshot written");
    }

    /// The log entry of a batch: its topology changes (each stored node with
    /// the segment `plan` put it in), or `None` if it has none or the store is
    /// temporary (never reopened, so never reads its log).
    fn log_entry(&self, ops: &[Prepared], plan: &NodePlan) -> Option<Vec<u8>> {
        self.path.as_ref()?;
        let mut placed = plan.placed.iter().peekable();
        let changes: Vec<LogChange<'_>> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                // A put that a later op of the batch overrides is not stored.
                Prepared::PutNode { id, topology, .. } => placed
                    .next_if(|&&(at, _)| at == i)
                    .map(|&(_, number)| LogChange::Put(id, topology, number)),
                Prepared::RemoveNode(id) => Some(LogChange::Remove(id)),
                _ => None,
            })
            .collect();
        (!changes.is_empty()).then(|| snapshot::encode_log(changes))
    }

    fn flush_db(&self) -> Result<()> {
        self.db
            .flush()
            .map(drop)
            .map_err(|e| Error::storage("flushing the store", e))
    }
}

/// Applies logged `changes`, oldest first, to a snapshot's records: the last
/// change of each node wins. Changed nodes move to the end, in the order of
/// their last change, and lose their parent positions, as do the children of
/// nodes that moved (the graph finds those parents by id). Returns how many
/// nodes it put at the end.
fn replay(found: &mut Positioned, changes: Vec<LogOp>) -> usize {
    if changes.is_empty() {
        return 0;
    }
    // One hash per change: each id's latest change, and which changes a later
    // one superseded.
    let mut latest: foldhash::HashMap<NodeId, usize> =
        foldhash::HashMap::with_capacity(changes.len());
    let mut superseded = vec![false; changes.len()];
    for (i, change) in changes.iter().enumerate() {
        let id = match change {
            LogOp::Put(t, _) => &t.id,
            LogOp::Remove(id) => id,
        };
        if let Some(earlier) = latest.insert(id.clone(), i) {
            superseded[earlier] = true;
        }
    }
    if !found.nodes.is_empty() {
        let nodes = std::mem::take(&mut found.nodes);
        let parents = std::mem::take(&mut found.parents);
        let segments = std::mem::take(&mut found.segments);
        let mut renumbered = vec![NO_PARENT; nodes.len()];
        for (i, t) in nodes.into_iter().enumerate() {
            if !latest.contains_key(&t.id) {
                // Fits: positions are u32 and the snapshot had at least this many.
                renumbered[i] = found.nodes.len() as u32;
                found.nodes.push(t);
                found
                    .parents
                    .push(parents.get(i).copied().unwrap_or(NO_PARENT));
                found
                    .segments
                    .push(segments.get(i).copied().unwrap_or(OWN_RECORDS));
            }
        }
        for parent in &mut found.parents {
            *parent = renumbered
                .get(*parent as usize)
                .copied()
                .unwrap_or(NO_PARENT);
        }
    }
    drop(latest);
    let mut appended = 0;
    for (change, superseded) in changes.into_iter().zip(superseded) {
        if let (LogOp::Put(t, segment), false) = (change, superseded) {
            found.nodes.push(t);
            found.parents.push(NO_PARENT);
            found.segments.push(segment);
            appended += 1;
        }
    }
    appended
}

/// The segment a reader read last, kept between the lookups of a walk.
struct LastSegment {
    number: u32,
    /// The segment's plain record.
    bytes: segment::Unpacked<sled::IVec>,
    /// Where the entry after the one found last begins (0: none found yet).
    next: usize,
}

impl LastSegment {
    /// Where node `id`'s body is in this segment, if it holds it; looks at
    /// the entries after the one found last first.
    fn find(&mut self, id: &NodeId) -> Result<Option<Body>> {
        match segment::find_range_from(&self.bytes, id.as_str(), self.next) {
            Ok(Some(range)) => {
                self.next = range.end;
                Ok(Some(Body::InSegment {
                    number: self.number,
                    range,
                }))
            }
            Ok(None) => Ok(None),
            Err(reason) => Err(Error::corrupt(format!("segments/{}", self.number), reason)),
        }
    }
}

/// Where [`SledStore::find_body`] found a node's stored body.
enum Body {
    /// In segment `number`, which the reader's [`LastSegment`] holds, at `range`.
    InSegment { number: u32, range: Range<usize> },
    /// In the node's own record (a store upgraded from schema 3).
    Own(sled::IVec),
}

impl Body {
    /// The body's bytes; `last` is the segment the lookup left there.
    fn bytes<'a>(&'a self, last: &'a Option<LastSegment>) -> &'a [u8] {
        match self {
            Body::Own(bytes) => bytes,
            // `find_body` leaves the segment it found the body in as `last`;
            // were it not there, the empty bytes decode as a corrupt record.
            Body::InSegment { number, range } => last
                .as_ref()
                .filter(|cached| cached.number == *number)
                .and_then(|cached| cached.bytes.get(range.clone()))
                .unwrap_or_default(),
        }
    }

    /// The error for node `id`'s body that does not decode, for `reason`.
    fn corrupt(&self, id: &NodeId, reason: String) -> Error {
        let key = id.as_str().as_bytes();
        match self {
            Body::InSegment { number, .. } => {
                corrupt("bodies", key, format!("{reason} (in segment {number})"))
            }
            Body::Own(_) => corrupt("bodies", key, reason),
        }
    }
}

/// Takes a write transaction's commit number and records it: the commit
/// counter, the search index's marker (the transaction wrote its postings, so
/// the index is current with it) and the topology log entry under that number.
fn stamp_commit(
    meta: &sled::transaction::TransactionalTree,
    log: &sled::transaction::TransactionalTree,
    log_entry: Option<&[u8]>,
) -> std::result::Result<u64, sled::transaction::UnabortableTransactionError> {
    let seq = meta.get(COMMIT_KEY)?.map_or(0, |b| decode_seq(&b)) + 1;
    meta.insert(COMMIT_KEY, &seq.to_le_bytes())?;
    meta.insert(sled_search::INDEX_SEQ_KEY, &seq.to_le_bytes())?;
    if let Some(entry) = log_entry {
        log.insert(&seq.to_be_bytes(), entry)?;
    }
    Ok(seq)
}

/// A commit counter; anything but 8 bytes reads as 0.
fn decode_seq(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes)
}

/// A batch operation with its keys and values already encoded.
enum Prepared {
    PutNode {
        id: String,
        topology: Vec<u8>,
        body: Vec<u8>,
        index: sled_search::Entry,
    },
    RemoveNode(String),
    SetRef(String, Vec<u8>),
    SetRefIf {
        name: RefName,
        expected: Option<NodeId>,
        new: NodeId,
    },
    DeleteRef(String),
    /// Attempts go to the journal file, not to sled (see `write_batch`).
    PutAttempt(Box<Attempt>),
    RemoveAttempt(AttemptId),
    /// An annotation's key (`annotation_key`) and encoded record.
    PutAnnotation(Vec<u8>, Vec<u8>),
    RemoveAnnotation(Vec<u8>),
}

impl Prepared {
    /// The node a `PutNode` or `RemoveNode` is about (empty for other ops).
    fn node_id(&self) -> &str {
        match self {
            Self::PutNode { id, .. } | Self::RemoveNode(id) => id,
            _ => "",
        }
    }
}

/// Where one batch's nodes go (see `SledStore::plan_nodes`).
#[derive(Default)]
struct NodePlan {
    /// The new segments: number and record.
    segments: Vec<(u32, Vec<u8>)>,
    /// For each put that is stored, in batch order: its position among the
    /// batch's ops and its segment.
    placed: Vec<(usize, u32)>,
    /// Segments that may hold an older copy of a node the batch replaces or
    /// removes, with those nodes' ids.
    rewrite: std::collections::BTreeMap<u32, Vec<String>>,
    /// Nodes of the batch that have their own records (schema 3 and older).
    own_records: Vec<String>,
}

impl NodePlan {
    /// Whether the batch moves or removes nodes already stored.
    fn moves_stored(&self) -> bool {
        !self.rewrite.is_empty() || !self.own_records.is_empty()
    }
}

/// Drops every attempt write that a later op of the same batch undoes: a
/// group commit may carry a child's journal update (its response id) and the
/// commit that removes its attempt together, and each is a journal record.
fn skip_overwritten_attempts(ops: Vec<Prepared>) -> Vec<Prepared> {
    // Each attempt's last removal in the batch.
    let mut removed: foldhash::HashMap<AttemptId, usize> = foldhash::HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Prepared::RemoveAttempt(id) = op {
            removed.insert(*id, i);
        }
    }
    if removed.is_empty() {
        return ops;
    }
    ops.into_iter()
        .enumerate()
        .filter(|(i, op)| match op {
            Prepared::PutAttempt(attempt) => removed.get(&attempt.id).is_none_or(|&at| at < *i),
            _ => true,
        })
        .map(|(_, op)| op)
        .collect()
}

/// Splits a batch into its sled operations and its attempt operations (for
/// the journal file), each in batch order.
fn split_attempts(ops: Vec<Prepared>) -> (Vec<Prepared>, Vec<AttemptOp>) {
    let mut attempts = Vec::new();
    let others = ops
        .into_iter()
        .filter_map(|op| match op {
            Prepared::PutAttempt(attempt) => {
                attempts.push(AttemptOp::Put(attempt));
                None
            }
            Prepared::RemoveAttempt(id) => {
                attempts.push(AttemptOp::Remove(id));
                None
            }
            other => Some(other),
        })
        .collect();
    (others, attempts)
}

/// Removes the nodes `gone` from segment `number`, inside a transaction:
/// rewrites the segment without them, or deletes it if nothing is left.
fn drop_from_segment(
    segments: &sled::transaction::TransactionalTree,
    number: u32,
    gone: &[String],
    packing: segment::Packing,
) -> std::result::Result<(), ConflictableTransactionError<Error>> {
    let key = number.to_be_bytes();
    let Some(bytes) = segments.get(key)? else {
        return Ok(());
    };
    // A segment that does not decode cannot be rewritten without losing the
    // other nodes in it: refuse the batch and say which record it is.
    let refuse = |reason| {
        ConflictableTransactionError::Abort(Error::corrupt(format!("segments/{number}"), reason))
    };
    let plain = segment::unpack(&bytes).map_err(refuse)?;
    let entries = segment::decode(&plain).map_err(refuse)?;
    let kept: Vec<segment::Entry<'_>> = entries
        .iter()
        .filter(|e| !gone.iter().any(|id| id == e.id))
        .copied()
        .collect();
    if kept.len() == entries.len() {
        return Ok(());
    }
    if kept.is_empty() {
        segments.remove(&key)?;
    } else {
        segments.insert(&key, segment::encode(&kept, packing))?;
    }
    Ok(())
}

/// A segment's number from its key (4 bytes, big-endian, so they sort).
fn segment_number(key: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(key).ok().map(u32::from_be_bytes)
}

impl From<Op> for Prepared {
    fn from(op: Op) -> Self {
        match op {
            Op::PutNode(node) => Self::PutNode {
                id: node.id.as_str().to_owned(),
                topology: codec::encode_topology(&super::Topology::of(&node)),
                body: codec::encode_body(&node),
                index: sled_search::entry(&node),
            },
            Op::RemoveNode(id) => Self::RemoveNode(id.as_str().to_owned()),
            Op::SetRef(name, target) => {
                Self::SetRef(name.as_str().to_owned(), codec::encode_ref(&target))
            }
            Op::SetRefIf {
                name,
                expected,
                new,
            } => Self::SetRefIf {
                name,
                expected,
                new,
            },
            Op::DeleteRef(name) => Self::DeleteRef(name.as_str().to_owned()),
            Op::PutAttempt(attempt) => Self::PutAttempt(attempt),
            Op::RemoveAttempt(id) => Self::RemoveAttempt(id),
            Op::PutAnnotation { node, annotation } => Self::PutAnnotation(
                annotation_key(&node, annotation.key().as_str()),
                encode_annotation(&annotation),
            ),
            Op::RemoveAnnotation { node, key } => {
                Self::RemoveAnnotation(annotation_key(&node, key.as_str()))
            }
        }
    }
}

/// The version byte of an annotation record.
const ANNOTATION_VERSION: u8 = 1;

/// The prefix of every annotation key of `node`: its id and a 0x00, which no
/// id contains (ids have no control characters), so one node's annotations
/// are one contiguous range and never mix with another's whose id extends it.
fn annotation_prefix(node: &NodeId) -> Vec<u8> {
    let mut key = Vec::with_capacity(node.as_str().len() + 1);
    key.extend_from_slice(node.as_str().as_bytes());
    key.push(0);
    key
}

fn annotation_key(node: &NodeId, key: &str) -> Vec<u8> {
    let mut out = annotation_prefix(node);
    out.extend_from_slice(key.as_bytes());
    out
}

fn encode_annotation(stamped: &Stamped) -> Vec<u8> {
    let mut out = vec![ANNOTATION_VERSION];
    // Serializing a plain data type to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, stamped);
    out
}

/// The node and annotation of a stored record; a record that does not decode
/// is reported by its key.
fn decode_annotation(key: &[u8], value: &[u8]) -> Result<(NodeId, Stamped)> {
    let bad = |reason: String| corrupt("annotations", key, reason);
    let id_len = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| bad("no 0x00 after the node id".to_owned()))?;
    let node = key_to_id(&key[..id_len]).map_err(&bad)?;
    let body = match value.split_first() {
        Some((&ANNOTATION_VERSION, body)) => body,
        Some((version, _)) => return Err(bad(format!("unknown record version {version}"))),
        None => return Err(bad("empty record".to_owned())),
    };
    let stamped: Stamped = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    if stamped.key().as_str().as_bytes() != &key[id_len + 1..] {
        return Err(bad("the record does not belong in this slot".to_owned()));
    }
    Ok((node, stamped))
}

fn key_to_id(key: &[u8]) -> std::result::Result<NodeId, String> {
    let s = std::str::from_utf8(key).map_err(|e| format!("key is not UTF-8: {e}"))?;
    NodeId::new(s).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the database, retrying while its lock is held until `wait` has passed.
///
/// sled releases its file lock from background threads after the last handle is
/// dropped, so a held lock may be one that is about to go: only a lock still
/// held after `wait` means that someone else has the store.
fn open_waiting(config: &sled::Config, path: &Path, wait: Duration) -> Result<sled::Db> {
    let start = Instant::now();
    let mut pause = LOCK_POLL_FIRST;
    loop {
        // sled 0.34 panics on some damaged databases while recovering them
        // (a log cut short can leave a page it then refuses to snapshot:
        // "tried to serialize Uninitialized"). A damaged store is an error to
        // report, not a crash. Best effort: nothing of sled's is used after
        // the panic, but its half-built state is dropped while unwinding, and
        // a build with `panic = "abort"` still aborts. The default panic hook
        // has printed sled's message to stderr by then.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        let error = match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => open_error(path, e),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                return Err(Error::storage(
                    "opening the store",
                    format!(
                        "sled panicked while opening the store (as it does on some \
                         damaged databases): {what}"
                    ),
                ));
            }
        };
        let left = wait.saturating_sub(start.elapsed());
        if !matches!(error, Error::StoreInUse { .. }) || left.is_zero() {
            return Err(error);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(LOCK_POLL_MAX);
    }
}

/// Runs `side` on a scoped thread named `name` while `here` runs on this one,
/// and returns both results (`side`'s first). If the OS refuses a thread,
/// `side` runs here after `here` instead of panicking; a panic in `side` (a
/// bug, not bad input) goes on here.
fn beside<A: Send, B>(name: &str, side: impl Fn() -> A + Sync, here: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn_scoped(scope, &side);
        let b = here();
        let a = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => side(),
        };
        (a, b)
    })
}

/// sled's settings for the store at `path`, and how the store writes its
/// segments.
///
/// New stores (since schema 6) leave sled's pages uncompressed and compress
/// their segments themselves ([`segment::Packing::Compressed`]). sled refuses
/// to open a database with another compression setting than it was created
/// with, so a store keeps the setting it was created with, which its `conf`
/// file (written by sled at creation) says: one created by schemas 3–5
/// compresses sled's pages (see [`COMPRESSION_LEVEL`]) and so writes its
/// segments plain; one created by schema 1 or 2 compresses neither way (its
/// new segments are compressed here).
///
/// A store whose `db` file exists but whose `conf` does not say either way
/// (deleted, cut short, damaged) is refused: guessing would have sled read
/// compressed pages as plain ones or the reverse, and rewrite `conf` with the
/// guess.
fn config(path: &Path) -> Result<(sled::Config, segment::Packing)> {
    let conf = std::fs::read(path.join("conf")).unwrap_or_default();
    let sled_compresses = if contains(&conf, b"use_compression: true") {
        true
    } else if contains(&conf, b"use_compression: false") || !path.join("db").exists() {
        // Said so, or a new store.
        false
    } else {
        return Err(Error::corrupt(
            "conf",
            "sled's settings file is missing or damaged: it does not say whether \
             the store's pages are compressed",
        ));
    };
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY)
        .use_compression(sled_compresses)
        .compression_factor(COMPRESSION_LEVEL);
    let packing = if sled_compresses {
        segment::Packing::Plain
    } else {
        segment::Packing::Compressed
    };
    Ok((config, packing))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Maps a failure to open the database; sled reports a held file lock as a plain
/// IO error whose message says so.
fn open_error(path: &Path, e: sled::Error) -> Error {
    if let sled::Error::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock")
        {
            return Error::StoreInUse {
                path: path.display().to_string(),
            };
        }
    }
    Error::storage("opening the store", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: usize) -> NodeId {
        NodeId::new(&format!("resp_{i:04}")).unwrap()
    }

    fn node(i: usize) -> Node {
        Node::new(id(i), i.checked_sub(1).map(id))
            .with_created_at(crate::node::Timestamp(i as i64))
            .with_user_text(format!("question {i}"))
            .with_output_text(format!("answer {i}"))
    }

    #[test]
    fn a_version_2_snapshot_still_opens_and_finds_every_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let store = SledStore::open(&path).unwrap();
        store
            .apply((0..100).map(|i| Op::PutNode(Box::new(node(i)))).collect())
            .unwrap();
        drop(store);
        // The first load replays the whole log and, with a threshold of one
        // change, writes a (version 3) snapshot.
        let store = SledStore::open(&path).unwrap().with_snapshot_every(1);
        store.load().unwrap();
        let pointer = store.snapshot_pointer().unwrap();
        let bytes = std::fs::read(pointer.file(&path)).unwrap();
        let index = snapshot::decode(&bytes).unwrap().index.unwrap();
        assert_eq!(index.len(), 100);

        // Rewrite it as a version 2 snapshot (no index block), as an older
        // build left it.
        let mut v2 = bytes[..bytes.len() - 8 - 12 * index.len()].to_vec();
        v2[8] = 2;
        let mut older = snapshot::write(&path, pointer.generation + 1, &v2).unwrap();
        older.seq = pointer.seq;
        store.meta.insert(SNAPSHOT_KEY, older.encode()).unwrap();
        store.flush().unwrap();
        drop(store);

        // It loads through that snapshot (no scan, which would write a new
        // one), computes the segment index, and finds every body.
        let store = SledStore::open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.nodes.len(), 100);
        assert_eq!(store.snapshot_pointer(), Some(older));
        for i in 0..100 {
            assert_eq!(store.node(&id(i)).unwrap(), Some(node(i)), "node {i}");
        }
        // And in bulk, in any order, with a missing id among them.
        let mut ids: Vec<NodeId> = (0..100).rev().map(id).collect();
        ids.insert(50, id(1000));
        let seen = walk(&store, &ids);
        let expected: Vec<(NodeId, Option<Node>)> = ids
            .iter()
            .map(|asked| (asked.clone(), (asked != &id(1000)).then(|| node_of(asked))))
            .collect();
        assert_eq!(seen, expected);
    }

    /// What `for_each_node` hands out for `ids`, in order.
    fn walk(store: &SledStore, ids: &[NodeId]) -> Vec<(NodeId, Option<Node>)> {
        let mut seen = Vec::new();
        store
            .for_each_node(ids, &mut |asked, found| {
                seen.push((asked.clone(), found.cloned()));
                Ok(())
            })
            .unwrap();
        seen
    }

    /// The node `node(i)` whose id is `asked`.
    fn node_of(asked: &NodeId) -> Node {
        let i: usize = asked.as_str()["resp_".len()..].parse().unwrap();
        node(i)
    }

    #[test]
    fn nodes_logged_after_a_version_3_snapshot_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let store = SledStore::open(&path).unwrap();
        store
            .apply((0..50).map(|i| Op::PutNode(Box::new(node(i)))).collect())
            .unwrap();
        drop(store);
        let store = SledStore::open(&path).unwrap().with_snapshot_every(1);
        store.load().unwrap();
        // After the snapshot: new nodes, a replaced one, a removed one.
        let mut replaced = node(10);
        replaced.output_text = "answer 10, again".into();
        let batch: Batch = (50..80)
            .map(|i| Op::PutNode(Box::new(node(i))))
            .chain([
                Op::PutNode(Box::new(replaced.clone())),
                Op::RemoveNode(id(20)),
            ])
            .collect();
        store.apply(batch).unwrap();
        drop(store);

        let store = SledStore::open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.nodes.len(), 79);
        for i in (0..80).filter(|&i| i != 10 && i != 20) {
            assert_eq!(store.node(&id(i)).unwrap(), Some(node(i)), "node {i}");
        }
        assert_eq!(store.node(&id(10)).unwrap(), Some(replaced));
        assert_eq!(store.node(&id(20)).unwrap(), None);
    }

    /// `for_each_node` looks a node up in the segment it read last before
    /// asking the index: a node moved out of that segment must be read from
    /// where it went, and a removed one must not be found at all.
    #[test]
    fn a_walk_reads_moved_nodes_from_their_new_segment() {
        let store = SledStore::temporary().unwrap();
        store
            .apply((0..10).map(|i| Op::PutNode(Box::new(node(i)))).collect())
            .unwrap();
        let mut replaced = node(4);
        replaced.output_text = "answer 4, again".into();
        store
            .apply(
                [
                    Op::PutNode(Box::new(replaced.clone())),
                    Op::RemoveNode(id(9)),
                ]
                .into_iter()
                .collect(),
            )
            .unwrap();
        let ids: Vec<NodeId> = (0..10).map(id).collect();
        let seen = walk(&store, &ids);
        let want: Vec<(NodeId, Option<Node>)> = (0..10)
            .map(|i| match i {
                4 => (id(4), Some(replaced.clone())),
                9 => (id(9), None),
                i => (id(i), Some(node(i))),
            })
            .collect();
        assert_eq!(seen, want);
    }
}
