//! The sled store's attempt journal: an append-only file, `attempts.log`,
//! beside the database.
//!
//! Why not a sled tree: every sled record costs tens of microseconds of CPU
//! (and, in stores whose sled compresses its pages, a zstd compression with a
//! fresh context: sled 0.34's `Log::reserve`), and an engine request wrote
//! three of them to the journal (the attempt, its response id, its removal):
//! about a third of what a durable fan-out child cost the store
//! (docs/benchmarks.md §2b). Here those are three small appends.
//!
//! **Format.** An 8-byte magic ([`MAGIC`]), then records:
//! `length u32 LE | crc32 u32 LE | kind u8 | body`, where `length` counts
//! `kind + body` and the CRC covers them. Kinds: a **put** (the whole
//! [`Attempt`], as the sled tree stored it: version byte + JSON), an
//! **update** (attempt id + its response id and owner as JSON: what the
//! engine's id write and lease renewals change) and a **clear** (attempt id).
//! Replaying them in order gives the live attempts.
//!
//! **Durability** (see docs/reliability.md). Puts and updates are written
//! (`write`) before the sled transaction of their batch and fsynced by the
//! store's next flush, so a journaled attempt is on disk before its request
//! is sent, as before. A clear that comes with a sled write (a node
//! committed together with the removal of its attempt) is written only once
//! sled has flushed that write: a crash in between leaves the attempt *and*
//! the node, which `recover` already settles (the node is there: the attempt
//! is only removed), never a removed attempt without its node. Clears are
//! never fsynced on their own: one that a crash loses only brings back an
//! attempt whose node is committed.
//!
//! **Damage.** A crash mid-append leaves a torn tail: a last record that runs
//! past the end of the file, fails its CRC, or is followed only by zeros. It
//! is cut at the last good record at open and reported through `tracing`.
//! Anything else that does not read (a bad record with good ones after it,
//! a CRC-valid record that does not decode, a wrong magic) is *damage*:
//! [`Store::attempts`](crate::store::Store::attempts) and every batch that
//! journals or settles an attempt fail with [`Error::CorruptRecord`] naming
//! the file and the offset, and the file is left as it is (nothing is
//! appended after the damage). The store's nodes still load and read.
//!
//! **Compaction.** When cleared records dominate (at least
//! [`COMPACT_MIN_RECORDS`] records, four times the live attempts), the live
//! attempts are written to a temporary file, fsynced, renamed over the
//! journal, and the directory fsynced: a crash leaves the old file or the
//! new one, both whole.
//!
//! One process at a time: the file relies on sled's lock on the database
//! (`Error::StoreInUse`), taken before the journal is opened.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ResponseId;
use crate::store::codec;
use crate::store::{Attempt, AttemptId, AttemptOwner};

/// The journal's file name, inside the store's directory.
pub(crate) const FILE: &str = "attempts.log";
/// The first bytes of the file: what it is and its format (1).
const MAGIC: &[u8; 8] = b"RTATTLG1";
/// Record header: length and CRC.
const HEADER: usize = 8;
/// No record is this large (an attempt's input is one turn's items); a
/// length beyond it is damage, not a record to allocate for.
const MAX_RECORD: usize = 256 << 20;
/// Compaction waits for at least this many records in the file, so that a
/// busy journal rewrites itself rarely (each rewrite costs two fsyncs).
pub(crate) const COMPACT_MIN_RECORDS: usize = 4096;

const PUT: u8 = 1;
const UPDATE: u8 = 2;
const CLEAR: u8 = 3;

/// One attempt operation of a batch, in batch order.
#[derive(Debug)]
pub(super) enum AttemptOp {
    Put(Box<Attempt>),
    Remove(AttemptId),
}

/// The journal of a sled store (or, for a temporary store, its in-memory
/// state alone: the database goes with the process anyway).
#[derive(Debug)]
pub(super) struct AttemptLog {
    /// The file; `None` for a temporary store.
    path: Option<PathBuf>,
    state: Mutex<State>,
    /// fsyncs of the file, for the benches' commits-per-fsync.
    syncs: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Open for appending; `None` for a temporary store.
    file: Option<File>,
    /// Bytes in the file that hold good records (the append position).
    len: u64,
    /// Records in the file.
    records: usize,
    /// The attempts the file holds live, by id (UUID v7: oldest first).
    /// Includes those whose clear waits for sled (`pending`).
    live: BTreeMap<AttemptId, Attempt>,
    /// Attempts removed by a batch whose sled write is not yet known durable,
    /// with that batch's commit number: their clear is written after the
    /// flush that covers it. Not shown by `attempts`.
    pending: HashMap<AttemptId, u64>,
    /// Puts or updates written since the last fsync.
    unsynced: bool,
    /// Why the file cannot be trusted: `(key, reason)` of the damage found.
    damaged: Option<(String, String)>,
}

/// Where a write left the file, to undo it if the batch fails.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    len: u64,
    records: usize,
}

impl AttemptLog {
    /// A journal kept in memory only (a temporary store).
    pub(super) fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(State::default()),
            syncs: AtomicU64::new(0),
        }
    }

    /// Opens (or creates) the journal in directory `dir`: replays it, cuts a
    /// torn tail, compacts it if cleared records dominate.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the file cannot be read, created or cut. Damage
    /// is not an error here: it is reported by `attempts` and by writes.
    pub(super) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::storage("reading the attempt journal", e)),
        };
        let mut state = State::default();
        match bytes {
            None => {
                state.file = Some(create(&path, dir, &[])?);
                state.len = MAGIC.len() as u64;
            }
            Some(bytes) => {
                let parsed = parse(&bytes);
                state.records = parsed.records;
                state.live = parsed.live;
                state.len = parsed.end as u64;
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::storage("opening the attempt journal", e))?;
                match parsed.problem {
                    Some(Problem::Torn { offset, reason }) => {
                        let cut = bytes.len() - offset;
                        if parsed.end < MAGIC.len() {
                            // Not even the magic was whole: a crash right at
                            // creation. Start the file again.
                            state.file = Some(create(&path, dir, &[])?);
                            state.len = MAGIC.len() as u64;
                        } else {
                            file.set_len(offset as u64)
                                .and_then(|()| file.sync_data())
                                .map_err(|e| Error::storage("cutting the attempt journal", e))?;
                            state.file = Some(file);
                        }
                        tracing::warn!(target: "resptree::store", store = "sled", file = %path.display(), offset, cut, reason, "torn tail of the attempt journal cut (a crash during an append)");
                    }
                    Some(Problem::Damaged { offset, reason }) => {
                        tracing::error!(target: "resptree::store", store = "sled", file = %path.display(), offset, reason = %reason, "attempt journal damaged");
                        state.damaged = Some((format!("{}@{offset}", path.display()), reason));
                        state.file = Some(file);
                    }
                    None => state.file = Some(file),
                }
            }
        }
        let log = Self {
            path: Some(path),
            state: Mutex::new(state),
            syncs: AtomicU64::new(0),
        };
        {
            let mut state = log.lock();
            if state.damaged.is_none() && dominated(&state) {
                log.compact(&mut state)?;
            }
        }
        Ok(log)
    }

    /// Marks the journal damaged: `attempts` and writes fail with
    /// [`Error::CorruptRecord`] for `key`, `reason` from now on.
    pub(super) fn mark_damaged(&self, key: String, reason: String) {
        self.lock().damaged = Some((key, reason));
    }

    /// The live attempts, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRecord`] naming the file and offset if it is damaged.
    pub(super) fn attempts(&self) -> Result<Vec<Attempt>> {
        let state = self.lock();
        check(&state)?;
        Ok(state
            .live
            .values()
            .filter(|a| !state.pending.contains_key(&a.id))
            .cloned()
            .collect())
    }

    /// Adds `attempts` (read from the sled `attempts` tree of an older store)
    /// and fsyncs the file, so that the tree can then be cleared. An attempt
    /// already live (a migration that a crash cut before the tree was
    /// cleared, run again) is left as it is.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRecord`] if the journal is damaged; [`Error::Storage`]
    /// if the write or the fsync fails.
    pub(super) fn migrate(&self, attempts: Vec<Attempt>) -> Result<usize> {
        let mut state = self.lock();
        check(&state)?;
        let mut bytes = Vec::new();
        let mut added = Vec::new();
        for attempt in attempts {
            if !state.live.contains_key(&attempt.id) {
                push_record(&mut bytes, PUT, &[], &codec::encode_attempt(&attempt));
                added.push(attempt);
            }
        }
        let count = added.len();
        if count > 0 {
            self.append(&mut state, &bytes, count)?;
            for attempt in added {
                state.live.insert(attempt.id, attempt);
            }
        }
        self.sync_locked(&mut state, true)?;
        Ok(count)
    }

    /// Takes the journal for one batch: its write, its sled transaction and
    /// then its `finish` or `undo`, with no other append in between (so that
    /// an undo cuts only this batch's records).
    pub(super) fn turn(&self) -> Turn<'_> {
        Turn {
            log: self,
            state: self.lock(),
        }
    }

    /// Writes the clears that waited for sled commit `durable` or an earlier
    /// one to be flushed; compacts the file if cleared records now dominate.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a write (or a compaction) fails.
    pub(super) fn release(&self, durable: u64) -> Result<()> {
        let mut state = self.lock();
        if state.pending.is_empty() {
            return Ok(());
        }
        let due: Vec<AttemptId> = state
            .pending
            .iter()
            .filter(|&(_, &seq)| seq <= durable)
            .map(|(&id, _)| id)
            .collect();
        for id in &due {
            state.pending.remove(id);
        }
        self.clear(&mut state, &due)
    }

    /// How many removals wait for a sled flush.
    pub(super) fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether puts or updates were written since the last fsync, so that
    /// [`AttemptLog::sync`] has something to do.
    pub(super) fn needs_sync(&self) -> bool {
        self.lock().unsynced
    }

    /// fsyncs the file if puts or updates were written since the last fsync.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the fsync fails.
    pub(super) fn sync(&self) -> Result<()> {
        let mut state = self.lock();
        self.sync_locked(&mut state, false)
    }

    /// How many times the file was fsynced through this handle.
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is made whole before anything can fail.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync_locked(&self, state: &mut State, always: bool) -> Result<()> {
        if !state.unsynced && !always {
            return Ok(());
        }
        if let Some(file) = &state.file {
            file.sync_data()
                .map_err(|e| Error::storage("flushing the attempt journal", e))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        state.unsynced = false;
        Ok(())
    }

    /// Appends `bytes` (`count` whole records) at the end of the file.
    fn append(&self, state: &mut State, bytes: &[u8], count: usize) -> Result<()> {
        if let Some(file) = state.file.as_mut() {
            file.write_all(bytes)
                .map_err(|e| Error::storage("writing the attempt journal", e))?;
        }
        state.len += bytes.len() as u64;
        state.records += count;
        Ok(())
    }

    fn undo_locked(&self, state: &mut State, mark: Mark) {
        if state.len == mark.len {
            return;
        }
        let cut = state
            .file
            .as_ref()
            .map_or(Ok(()), |file| file.set_len(mark.len));
        match cut {
            Ok(()) => {
                state.len = mark.len;
                state.records = mark.records;
            }
            // The records stay: attempts of a batch that failed, which a
            // later open would show as journaled but never answered
            // (`recover` reports them). Appends go on after them.
            Err(e) => {
                tracing::warn!(target: "resptree::store", store = "sled", file = ?self.path, error = %e, "could not take back the attempt journal records of a failed batch");
            }
        }
    }

    /// Forgets `ids` and writes their clears (not fsynced: see the module doc).
    fn clear(&self, state: &mut State, ids: &[AttemptId]) -> Result<()> {
        let mut bytes = Vec::with_capacity(ids.len() * (HEADER + 17));
        let mut count = 0;
        for id in ids {
            if state.live.remove(id).is_some() {
                push_record(&mut bytes, CLEAR, id.as_uuid().as_bytes(), &[]);
                count += 1;
            }
        }
        if count == 0 {
            return Ok(());
        }
        self.append(state, &bytes, count)?;
        if dominated(state) {
            self.compact(state)?;
        }
        Ok(())
    }

    /// Rewrites the file with the live attempts only (see the module doc).
    fn compact(&self, state: &mut State) -> Result<()> {
        let Some(path) = &self.path else {
            state.records = state.live.len();
            return Ok(());
        };
        let Some(dir) = path.parent() else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for attempt in state.live.values() {
            push_record(&mut bytes, PUT, &[], &codec::encode_attempt(attempt));
        }
        let tmp = path.with_extension("log.tmp");
        let file = create(&tmp, dir, &bytes)?;
        std::fs::rename(&tmp, path)
            .and_then(|()| sync_dir(dir))
            .map_err(|e| Error::storage("compacting the attempt journal", e))?;
        tracing::debug!(target: "resptree::store", store = "sled", records = state.records, live = state.live.len(), "attempt journal compacted");
        state.file = Some(file);
        state.len = (MAGIC.len() + bytes.len()) as u64;
        state.records = state.live.len();
        state.unsynced = false;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The journal held for one batch (see [`AttemptLog::turn`]).
pub(super) struct Turn<'a> {
    log: &'a AttemptLog,
    state: MutexGuard<'a, State>,
}

impl Turn<'_> {
    /// Writes the puts and updates of `ops` (not the removals: see
    /// [`Turn::finish`]) and returns where the file stood before, for
    /// [`Turn::undo`]. Nothing changes in memory yet.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRecord`] if the journal is damaged; [`Error::Storage`]
    /// if the write fails (the file is then cut back).
    pub(super) fn write(&mut self, ops: &[AttemptOp]) -> Result<Mark> {
        let (log, state) = (self.log, &mut *self.state);
        check(state)?;
        let mark = Mark {
            len: state.len,
            records: state.records,
        };
        let mut bytes = Vec::new();
        let mut count = 0;
        // What the batch's earlier ops made of each attempt, for updates.
        let mut seen: HashMap<AttemptId, &Attempt> = HashMap::new();
        for op in ops {
            let AttemptOp::Put(attempt) = op else {
                continue;
            };
            let before = seen
                .get(&attempt.id)
                .copied()
                .or_else(|| state.live.get(&attempt.id));
            match before {
                Some(before) if same_request(before, attempt) => {
                    let change = Update {
                        response_id: attempt.response_id.clone(),
                        owner: attempt.owner.clone(),
                    };
                    let json = serde_json::to_vec(&change)
                        .map_err(|e| Error::storage("encoding an attempt update", e))?;
                    push_record(&mut bytes, UPDATE, attempt.id.as_uuid().as_bytes(), &json);
                }
                _ => push_record(&mut bytes, PUT, &[], &codec::encode_attempt(attempt)),
            }
            seen.insert(attempt.id, attempt);
            count += 1;
        }
        if count > 0 {
            if let Err(e) = log.append(state, &bytes, count) {
                log.undo_locked(state, mark);
                return Err(e);
            }
            state.unsynced = true;
        }
        Ok(mark)
    }

    /// Takes back what [`Turn::write`] wrote, for a batch that failed.
    pub(super) fn undo(mut self, mark: Mark) {
        self.log.undo_locked(&mut self.state, mark);
    }

    /// Applies `ops` in memory once their batch is written. `commit` is the
    /// sled commit number of the batch's other writes, if it had any: its
    /// removals then wait for the flush that covers it ([`AttemptLog::release`]);
    /// without one they are written now.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a clear cannot be written. The attempts are gone
    /// from memory either way (a lost clear only brings an attempt back at
    /// the next open, where `recover` settles it).
    pub(super) fn finish(mut self, ops: Vec<AttemptOp>, commit: Option<u64>) -> Result<()> {
        let (log, state) = (self.log, &mut *self.state);
        let mut clears = Vec::new();
        for op in ops {
            match op {
                AttemptOp::Put(attempt) => {
                    state.pending.remove(&attempt.id);
                    state.live.insert(attempt.id, *attempt);
                }
                AttemptOp::Remove(id) => {
                    if !state.live.contains_key(&id) {
                        continue;
                    }
                    match commit {
                        Some(seq) => {
                            state.pending.insert(id, seq);
                        }
                        None => clears.push(id),
                    }
                }
            }
        }
        log.clear(state, &clears)
    }
}

/// What an update record carries: the fields of an attempt that change
/// after it is journaled.
#[derive(Debug, Serialize, Deserialize)]
struct Update {
    response_id: Option<ResponseId>,
    owner: Option<AttemptOwner>,
}

/// Whether `after` differs from `before` only in what an update carries.
fn same_request(before: &Attempt, after: &Attempt) -> bool {
    before.parent == after.parent
        && before.started_at == after.started_at
        && before.params == after.params
        && before.input == after.input
}

fn dominated(state: &State) -> bool {
    state.records >= COMPACT_MIN_RECORDS && state.records >= 4 * state.live.len()
}

fn check(state: &State) -> Result<()> {
    match &state.damaged {
        Some((key, reason)) => Err(Error::corrupt(key.clone(), reason.clone())),
        None => Ok(()),
    }
}

/// Creates `path` holding the magic and `records`, fsynced, and fsyncs `dir`
/// so that the new name is durable too; returns it open for appending.
fn create(path: &Path, dir: &Path, records: &[u8]) -> Result<File> {
    let fail = |e| Error::storage("creating the attempt journal", e);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(fail)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + records.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(records);
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .and_then(|()| sync_dir(dir))
        .map_err(fail)?;
    // Reopened for appending: writes then always go to the end.
    OpenOptions::new().append(true).open(path).map_err(fail)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends one record: header, kind, `id` (16 bytes or none) and `body`.
fn push_record(out: &mut Vec<u8>, kind: u8, id: &[u8], body: &[u8]) {
    let payload = 1 + id.len() + body.len();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(id);
    crc.update(body);
    // A payload beyond u32 cannot come from one attempt; the saturated
    // length then reads back as damage, never as another record.
    out.extend_from_slice(&u32::try_from(payload).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(id);
    out.extend_from_slice(body);
}

/// What a read of the file found.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// The live attempts after every good record.
    live: BTreeMap<AttemptId, Attempt>,
    /// Good records read.
    records: usize,
    /// Where the good records end.
    end: usize,
    problem: Option<Problem>,
}

#[derive(Debug, PartialEq)]
enum Problem {
    /// A crash mid-append: cut at `offset`.
    Torn { offset: usize, reason: &'static str },
    /// Not a torn tail: the file cannot be trusted from `offset` on.
    Damaged { offset: usize, reason: String },
}

/// Replays a journal file's bytes. Never panics, whatever they are (the
/// `store_record` fuzz target runs it, through [`round_trips`]).
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    if bytes.len() < MAGIC.len() {
        parsed.problem = Some(if MAGIC.starts_with(bytes) || only_zeros(bytes) {
            Problem::Torn {
                offset: 0,
                reason: "the file ends inside its header",
            }
        } else {
            Problem::Damaged {
                offset: 0,
                reason: "not an attempt journal".to_owned(),
            }
        });
        return parsed;
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        parsed.problem = Some(Problem::Damaged {
            offset: 0,
            reason: "not an attempt journal of a format this build reads".to_owned(),
        });
        return parsed;
    }
    let mut at = MAGIC.len();
    parsed.end = at;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Ok((kind, payload, next)) => {
                if let Err(reason) = replay(&mut parsed.live, kind, payload) {
                    parsed.problem = Some(Problem::Damaged { offset: at, reason });
                    return parsed;
                }
                parsed.records += 1;
                at = next;
                parsed.end = at;
            }
            Err(problem) => {
                parsed.problem = Some(problem);
                return parsed;
            }
        }
    }
    parsed
}

/// The fuzz targets' check (`crate::fuzzing::store_record`): `bytes` read as
/// a journal file must never panic, and the live attempts of a file that
/// reads must survive what compaction does with them (written back as puts,
/// read again) unchanged. Returns `false` when they do not.
pub(crate) fn round_trips(bytes: &[u8]) -> bool {
    let parsed = parse(bytes);
    if parsed.problem.is_some() {
        return true;
    }
    let mut again = MAGIC.to_vec();
    for attempt in parsed.live.values() {
        push_record(&mut again, PUT, &[], &codec::encode_attempt(attempt));
    }
    let reread = parse(&again);
    reread.problem.is_none() && reread.live == parsed.live
}

/// The record at `at`: its kind, its payload after the kind, and where the
/// next one starts; or why it does not read.
fn record_at(bytes: &[u8], at: usize) -> std::result::Result<(u8, &[u8], usize), Problem> {
    let rest = &bytes[at..];
    let torn = |reason| Problem::Torn { offset: at, reason };
    let (Some(length), Some(crc)) = (
        rest.get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes),
        rest.get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes),
    ) else {
        return Err(torn("the file ends inside a record header"));
    };
    let length = length as usize;
    if length == 0 || length > MAX_RECORD {
        return Err(if only_zeros(rest) {
            torn("zeros after the last record")
        } else {
            Problem::Damaged {
                offset: at,
                reason: format!("impossible record length {length}"),
            }
        });
    }
    let Some(payload) = rest.get(HEADER..HEADER + length) else {
        return Err(torn("the last record runs past the end of the file"));
    };
    if crc32fast::hash(payload) != crc {
        let last = HEADER + length == rest.len();
        return Err(if last || only_zeros(&rest[HEADER + length..]) {
            torn("the last record's checksum does not match")
        } else {
            Problem::Damaged {
                offset: at,
                reason: "checksum mismatch in a record followed by others".to_owned(),
            }
        });
    }
    Ok((payload[0], &payload[1..], at + HEADER + length))
}

/// Applies one good record to the live attempts.
fn replay(
    live: &mut BTreeMap<AttemptId, Attempt>,
    kind: u8,
    payload: &[u8],
) -> std::result::Result<(), String> {
    match kind {
        PUT => {
            let attempt = codec::decode_attempt(payload)?;
            live.insert(attempt.id, attempt);
        }
        UPDATE => {
            let (id, json) = split_id(payload)?;
            let change: Update = serde_json::from_slice(json)
                .map_err(|e| format!("an attempt update does not decode: {e}"))?;
            // An update of an attempt cleared before it is stale: ignored.
            if let Some(attempt) = live.get_mut(&id) {
                attempt.response_id = change.response_id;
                attempt.owner = change.owner;
            }
        }
        CLEAR => {
            let (id, rest) = split_id(payload)?;
            if !rest.is_empty() {
                return Err("a clear record with trailing bytes".to_owned());
            }
            live.remove(&id);
        }
        other => return Err(format!("unknown record kind {other}")),
    }
    Ok(())
}

fn split_id(payload: &[u8]) -> std::result::Result<(AttemptId, &[u8]), String> {
    let (id, rest) = payload
        .split_first_chunk::<16>()
        .ok_or("a record too short for an attempt id")?;
    Ok((AttemptId::from(uuid::Uuid::from_bytes(*id)), rest))
}

fn only_zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::super::{SCHEMA_KEY, SledStore, config, open_waiting};
    use super::*;
    use crate::store::{AttemptParams, Batch, Op, Store as _};

    fn attempt(text: &str) -> Attempt {
        Attempt::new(
            None,
            vec![serde_json::json!({"role": "user", "content": text})],
            AttemptParams::default(),
        )
    }

    fn put(a: &Attempt) -> AttemptOp {
        AttemptOp::Put(Box::new(a.clone()))
    }

    /// Journals `attempts` as one batch without sled writes, and fsyncs.
    fn journal(log: &AttemptLog, ops: Vec<AttemptOp>) {
        apply(log, ops, None);
        log.sync().unwrap();
    }

    /// One batch's journal part, with `commit` as its sled commit number.
    fn apply(log: &AttemptLog, ops: Vec<AttemptOp>, commit: Option<u64>) {
        let mut turn = log.turn();
        turn.write(&ops).unwrap();
        turn.finish(ops, commit).unwrap();
    }

    #[test]
    fn puts_updates_and_clears_replay_to_the_live_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (attempt("a"), attempt("b"), attempt("c"));
        let mut b_with_id = b.clone();
        b_with_id.response_id = Some(ResponseId::new("resp_b").unwrap());
        {
            let log = AttemptLog::open(dir.path()).unwrap();
            journal(&log, vec![put(&a), put(&b), put(&c)]);
            journal(&log, vec![put(&b_with_id)]);
            journal(&log, vec![AttemptOp::Remove(a.id)]);
            assert_eq!(log.attempts().unwrap(), vec![b_with_id.clone(), c.clone()]);
        }
        let bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        let parsed = parse(&bytes);
        assert_eq!(parsed.problem, None);
        assert_eq!(parsed.records, 5);
        // The id arrived as a small update record, not a second copy.
        let update = HEADER + 1 + 16 + r#"{"response_id":"resp_b","owner":null}"#.len();
        let clear = HEADER + 1 + 16;
        let put_len = |x: &Attempt| HEADER + 1 + codec::encode_attempt(x).len();
        assert_eq!(
            bytes.len(),
            MAGIC.len() + put_len(&a) + put_len(&b) + put_len(&c) + update + clear
        );
        let log = AttemptLog::open(dir.path()).unwrap();
        assert_eq!(log.attempts().unwrap(), vec![b_with_id, c]);
    }

    #[test]
    fn a_removal_that_came_with_a_sled_write_waits_for_its_flush() {
        let dir = tempfile::tempdir().unwrap();
        let a = attempt("a");
        let log = AttemptLog::open(dir.path()).unwrap();
        journal(&log, vec![put(&a)]);
        let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        // The commit of a's node, sled commit 7: gone for readers at once...
        apply(&log, vec![AttemptOp::Remove(a.id)], Some(7));
        assert!(log.attempts().unwrap().is_empty());
        assert_eq!(log.pending(), 1);
        // ...but not written before sled flushed commit 7.
        log.release(6).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join(FILE)).unwrap().len(), len);
        assert_eq!(
            AttemptLog::open(dir.path()).unwrap().attempts().unwrap(),
            vec![a.clone()]
        );
        log.release(7).unwrap();
        assert_eq!(log.pending(), 0);
        assert!(
            AttemptLog::open(dir.path())
                .unwrap()
                .attempts()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (attempt("a"), attempt("b"));
        {
            let log = AttemptLog::open(dir.path()).unwrap();
            journal(&log, vec![put(&a)]);
            journal(&log, vec![put(&b)]);
        }
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        let first_end = MAGIC.len() + HEADER + 1 + codec::encode_attempt(&a).len();
        // Every way an append of b can be cut: mid-header, mid-body, and
        // whole-length but with the body's last bytes zeroed (a file system
        // that extended the file before writing its data).
        let mut zeroed = whole.clone();
        let n = zeroed.len();
        zeroed[n - 5..].fill(0);
        let mut zeros_after = whole[..first_end].to_vec();
        zeros_after.extend_from_slice(&[0; 300]);
        for torn in [
            whole[..first_end + 3].to_vec(),
            whole[..whole.len() - 1].to_vec(),
            zeroed,
            zeros_after,
        ] {
            std::fs::write(&path, &torn).unwrap();
            let log = AttemptLog::open(dir.path()).unwrap();
            assert_eq!(log.attempts().unwrap(), vec![a.clone()]);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                first_end as u64,
                "cut at the last good record"
            );
            // Appends go on after it.
            journal(&log, vec![put(&b)]);
            drop(log);
            assert_eq!(
                AttemptLog::open(dir.path()).unwrap().attempts().unwrap(),
                vec![a.clone(), b.clone()]
            );
        }
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_an_error_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (attempt("a"), attempt("b"), attempt("c"));
        {
            let log = AttemptLog::open(dir.path()).unwrap();
            journal(&log, vec![put(&a), put(&b), put(&c)]);
        }
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = MAGIC.len() + HEADER + 1 + codec::encode_attempt(&a).len();
        bytes[second + HEADER + 5] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let log = AttemptLog::open(dir.path()).unwrap();
        let expect = |e: Error| match e {
            Error::CorruptRecord { key, reason } => {
                assert!(key.ends_with(&format!("{FILE}@{second}")), "{key}");
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected a corrupt record, got {other:?}"),
        };
        expect(log.attempts().unwrap_err());
        // Nothing is written after the damage, and the file stays as it was.
        expect(log.turn().write(&[put(&attempt("d"))]).unwrap_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_record_with_a_good_checksum_that_does_not_decode_is_damage() {
        let mut bytes = MAGIC.to_vec();
        push_record(&mut bytes, 9, &[], b"what");
        let parsed = parse(&bytes);
        assert!(matches!(
            parsed.problem,
            Some(Problem::Damaged { offset: 8, .. })
        ));
        assert!(matches!(
            parse(b"something else entirely").problem,
            Some(Problem::Damaged { offset: 0, .. })
        ));
    }

    #[test]
    fn cleared_records_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let keep = attempt("keep");
        let log = AttemptLog::open(dir.path()).unwrap();
        journal(&log, vec![put(&keep)]);
        let mut largest = 0;
        for round in 0..COMPACT_MIN_RECORDS {
            let a = attempt(&format!("round {round}"));
            apply(&log, vec![put(&a)], None);
            apply(&log, vec![AttemptOp::Remove(a.id)], None);
            largest = largest.max(std::fs::metadata(&path).unwrap().len());
        }
        let now = std::fs::metadata(&path).unwrap().len();
        let one = (HEADER + 1 + codec::encode_attempt(&keep).len()) as u64;
        assert!(
            now < largest / 4,
            "compacted: {now} bytes, was up to {largest}"
        );
        assert!(largest > one * COMPACT_MIN_RECORDS as u64 / 4);
        assert_eq!(log.attempts().unwrap(), vec![keep.clone()]);
        drop(log);
        let parsed = parse(&std::fs::read(&path).unwrap());
        assert_eq!(parsed.problem, None);
        assert_eq!(
            AttemptLog::open(dir.path()).unwrap().attempts().unwrap(),
            vec![keep]
        );
        assert!(!path.with_extension("log.tmp").exists());
    }

    #[test]
    fn a_failed_batch_takes_its_records_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = attempt("a");
        let log = AttemptLog::open(dir.path()).unwrap();
        let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        let mut turn = log.turn();
        let mark = turn.write(&[put(&a)]).unwrap();
        turn.undo(mark);
        assert_eq!(std::fs::metadata(dir.path().join(FILE)).unwrap().len(), len);
        assert!(log.attempts().unwrap().is_empty());
    }

    #[test]
    fn migration_ignores_attempts_already_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (attempt("a"), attempt("b"));
        let log = AttemptLog::open(dir.path()).unwrap();
        assert_eq!(log.migrate(vec![a.clone()]).unwrap(), 1);
        // A re-run after a crash before the sled tree was cleared.
        assert_eq!(log.migrate(vec![a.clone(), b.clone()]).unwrap(), 1);
        drop(log);
        let parsed = parse(&std::fs::read(dir.path().join(FILE)).unwrap());
        assert_eq!(parsed.records, 2);
        assert_eq!(parsed.live.into_values().collect::<Vec<_>>(), vec![a, b]);
    }

    /// A store of an older build (schema 4), at `path`, whose sled
    /// `attempts` tree holds `records` (attempt id, record bytes).
    fn older_store(path: &Path, records: &[(AttemptId, Vec<u8>)]) {
        drop(SledStore::open(path).unwrap());
        std::fs::remove_file(path.join(FILE)).unwrap();
        let db = open_raw(path);
        let tree = db.open_tree("attempts").unwrap();
        for (id, bytes) in records {
            tree.insert(id.as_uuid().as_bytes(), bytes.as_slice())
                .unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, &4_u32.to_le_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    fn sled_tree_len(path: &Path) -> usize {
        let db = open_raw(path);
        db.open_tree("attempts").unwrap().len()
    }

    /// The store at `path` opened with sled itself, as the store would.
    fn open_raw(path: &Path) -> sled::Db {
        open_waiting(
            &config(path).unwrap().0,
            path,
            std::time::Duration::from_secs(5),
        )
        .unwrap()
    }

    /// The schema version recorded in the store at `path`.
    fn schema_version(path: &Path) -> u32 {
        let db = open_raw(path);
        let bytes = db.open_tree("meta").unwrap().get(SCHEMA_KEY).unwrap();
        u32::from_le_bytes(bytes.unwrap().as_ref().try_into().unwrap())
    }

    fn sorted(mut attempts: Vec<Attempt>) -> Vec<Attempt> {
        attempts.sort_by_key(|a| a.id);
        attempts
    }

    #[test]
    fn attempts_in_the_sled_tree_move_into_the_file_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let (a, b) = (attempt("a"), attempt("b"));
        let record = |x: &Attempt| (x.id, codec::encode_attempt(x));
        older_store(&path, &[record(&a), record(&b)]);
        let store = SledStore::open(&path).unwrap();
        assert_eq!(
            store.attempts().unwrap(),
            sorted(vec![a.clone(), b.clone()])
        );
        // Settled after the migration: stays settled (the tree was cleared).
        store
            .apply(Batch::from(vec![Op::RemoveAttempt(a.id)]))
            .unwrap();
        drop(store);
        assert_eq!(sled_tree_len(&path), 0);
        // Upgraded: a schema 4 build, which would not see the file, refuses it.
        assert_eq!(schema_version(&path), crate::store::codec::SCHEMA_VERSION);
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.attempts().unwrap(), vec![b]);
    }

    #[test]
    fn a_migration_cut_before_the_tree_was_cleared_runs_again_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let (a, b) = (attempt("a"), attempt("b"));
        let record = |x: &Attempt| (x.id, codec::encode_attempt(x));
        older_store(&path, &[record(&a), record(&b)]);
        // The crash: the file has the attempts (fsynced), the tree still too.
        AttemptLog::open(&path)
            .unwrap()
            .migrate(vec![a.clone(), b.clone()])
            .unwrap();
        let store = SledStore::open(&path).unwrap();
        assert_eq!(
            store.attempts().unwrap(),
            sorted(vec![a.clone(), b.clone()])
        );
        drop(store);
        assert_eq!(sled_tree_len(&path), 0);
        let parsed = parse(&std::fs::read(path.join(FILE)).unwrap());
        assert_eq!((parsed.records, parsed.problem), (2, None));
    }

    #[test]
    fn an_undecodable_attempt_in_the_sled_tree_is_reported_and_left_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let a = attempt("a");
        older_store(&path, &[(a.id, b"\x01{not json".to_vec())]);
        let store = SledStore::open(&path).unwrap();
        match store.attempts() {
            Err(Error::CorruptRecord { key, .. }) => assert!(key.starts_with("attempts/"), "{key}"),
            other => panic!("expected a corrupt record, got {other:?}"),
        }
        drop(store);
        assert_eq!(sled_tree_len(&path), 1);
    }

    #[test]
    fn a_journal_that_reads_survives_compaction_unchanged() {
        let (a, b) = (attempt("a"), attempt("b"));
        let mut bytes = MAGIC.to_vec();
        push_record(&mut bytes, PUT, &[], &codec::encode_attempt(&a));
        push_record(&mut bytes, PUT, &[], &codec::encode_attempt(&b));
        push_record(&mut bytes, CLEAR, a.id.as_uuid().as_bytes(), &[]);
        assert_eq!(parse(&bytes).live.len(), 1);
        assert!(round_trips(&bytes));
        // Damage is reported, not compacted.
        assert!(round_trips(&bytes[..bytes.len() - 1]));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut bytes = MAGIC.to_vec();
        push_record(&mut bytes, PUT, &[], &codec::encode_attempt(&attempt("a")));
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut]);
            let mut flipped = bytes.clone();
            flipped[cut] ^= 0xff;
            let _ = parse(&flipped);
        }
    }
}
