//! The emulator's shared state: stored responses, conversations, scripted replies,
//! faults and the request log. One `std::sync::Mutex` per concern, never held across
//! an `.await`, and held for look-ups and inserts only: contexts are shared
//! [`Segment`] lists, so no critical section copies or reads a history, and replies
//! are generated outside every lock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

use super::activity::{Activity, Gate};
use super::background::Jobs;
use super::config::EmulatorConfig;
use super::context::Segment;
use super::failure::Failure;
use super::fault::FaultPlan;
use super::log::RequestLog;
use super::model::{self, Summary};

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    store: Mutex<Store>,
    pub(crate) faults: Mutex<FaultPlan>,
    pub(crate) log: Mutex<RequestLog>,
    scripted: Mutex<VecDeque<String>>,
    /// Ordinal of the next root response (no parent, no conversation).
    roots: AtomicU64,
    /// The current "thinking time" in nanoseconds: starts as `config.latency` and
    /// can be changed while serving ([`Emulator::set_latency`](super::Emulator::set_latency)).
    latency_nanos: AtomicU64,
    /// Requests in flight (an `Arc`: a streamed body keeps its count alive).
    pub(crate) activity: Arc<Activity>,
    /// Where [`Fault::Hold`](super::Fault::Hold) requests wait.
    pub(crate) gate: Gate,
    /// Background responses: their state and events.
    pub(crate) jobs: Jobs,
    /// The newest ids of the responses created so far (bounded like the request
    /// log, so a long-running emulator does not grow); see [`Shared::record_created`].
    created_ids: Mutex<VecDeque<String>>,
    /// How many responses were created: a `watch`, so tests can wait for a count.
    created_total: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Store {
    responses: HashMap<String, Stored>,
    conversations: HashMap<String, Conversation>,
    /// How many responses were deleted or expired by hand so far: a chain verified
    /// live at this count is still live (see [`Stored::verified`]).
    deaths: u64,
}

/// A stored response.
#[derive(Debug)]
struct Stored {
    /// The full Response object, as `GET` returns it.
    object: Value,
    /// Its context: its own input then output items, after everything it inherited.
    context: Arc<Segment>,
    /// How many of the context segment's own items are input (the rest is output).
    input_len: usize,
    /// The previous response, when it continued one: its chain is part of this one's.
    /// (A response that joined a conversation starts a chain: the items it
    /// inherited are a snapshot that cannot expire.)
    previous: Option<String>,
    created: Instant,
    /// When the first response of its chain was stored. Each response is stored
    /// after the one it continues, so this is the oldest on the chain, and the chain
    /// is within the TTL exactly when this is.
    chain_start: Instant,
    expired: bool,
    /// The value of [`Store::deaths`] when every response on its chain was last seen
    /// live; `None` when never. While no response dies, checking a chain is O(1);
    /// after a death, the first check walks it (up to a response verified since).
    verified: Option<u64>,
    /// How many children were created from it (the sibling ordinal of the next one).
    children: u64,
}

/// A conversation.
#[derive(Debug)]
pub(crate) struct Conversation {
    pub(crate) id: String,
    pub(crate) created_at: i64,
    pub(crate) metadata: Value,
    /// Its items, as a shared list: responses in it keep a snapshot by cloning the
    /// `Arc`, so snapshots cost nothing however long the conversation grows.
    items: Option<Arc<Segment>>,
    locked: bool,
    responses: u64,
}

impl Conversation {
    /// Every item, oldest first (the `Arc` keeps them while the caller reads).
    pub(crate) fn items(&self) -> Option<Arc<Segment>> {
        self.items.clone()
    }

    /// Appends items.
    pub(crate) fn append(&mut self, items: Vec<Value>) {
        if !items.is_empty() {
            self.items = Some(Segment::new(self.items.take(), items));
        }
    }

    /// The `conversation` object.
    pub(crate) fn object(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        })
    }
}

/// Where a new response starts from.
#[derive(Debug)]
pub(crate) enum Start<'a> {
    Root,
    Previous(&'a str),
    Conversation(&'a str),
}

/// The resolved context for a new response.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Every inherited item (`None`: nothing is inherited).
    pub(crate) inherited: Option<Arc<Segment>>,
    /// The sibling ordinal of the new response.
    pub(crate) ordinal: u64,
    /// The lock on the conversation, when there is one.
    pub(crate) lock: Option<ConversationLock>,
}

/// Holds a conversation's one-active-request lock; releases it on drop.
#[derive(Debug)]
pub(crate) struct ConversationLock {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for ConversationLock {
    fn drop(&mut self) {
        if let Some(conv) = self.shared.store().conversations.get_mut(&self.id) {
            conv.locked = false;
        }
    }
}

/// What to store when a response completes.
#[derive(Debug)]
pub(crate) struct Commit {
    pub(crate) id: String,
    pub(crate) object: Value,
    pub(crate) start: OwnedStart,
    pub(crate) inherited: Option<Arc<Segment>>,
    pub(crate) input: Vec<Value>,
    pub(crate) output: Vec<Value>,
    pub(crate) store: bool,
    pub(crate) lock: Option<ConversationLock>,
}

/// An owned [`Start`].
#[derive(Debug, Clone)]
pub(crate) enum OwnedStart {
    Root,
    Previous(String),
    Conversation(String),
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        let latency_nanos = AtomicU64::new(nanos(config.latency));
        let log = Mutex::new(RequestLog::new(config.request_log_capacity));
        Self {
            latency_nanos,
            config,
            store: Mutex::default(),
            faults: Mutex::default(),
            log,
            scripted: Mutex::default(),
            roots: AtomicU64::new(0),
            activity: Arc::default(),
            gate: Gate::default(),
            jobs: Jobs::default(),
            created_ids: Mutex::default(),
            created_total: watch::Sender::new(0),
        }
    }

    /// The fake model's thinking time before a non-streamed reply: first held at
    /// the gate when the request drew a [`Fault::Hold`](super::Fault::Hold), then
    /// the current latency ([`Shared::latency`]). (Streamed replies think in their
    /// [`Step::Think`](super::stream::Step::Think).)
    pub(crate) async fn think(&self, hold: bool) {
        if hold {
            self.gate.pass().await;
        }
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// The "thinking time" before a generated reply, as configured or last set.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    /// Changes the "thinking time" for requests that start from now on.
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency_nanos.store(nanos(latency), Ordering::Relaxed);
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Resolves the context of a new response and reserves its sibling ordinal; takes
    /// the conversation lock when the response joins a conversation.
    pub(crate) fn resolve(self: &Arc<Self>, start: &Start<'_>) -> Result<Resolved, Failure> {
        let mut store = self.store();
        match start {
            Start::Root => Ok(Resolved {
                inherited: None,
                ordinal: self.roots.fetch_add(1, Ordering::Relaxed),
                lock: None,
            }),
            Start::Previous(id) => {
                if !self.chain_is_live(&mut store, id) {
                    return Err(Failure::previous_not_found(id));
                }
                let parent = store
                    .responses
                    .get_mut(*id)
                    .ok_or_else(|| Failure::previous_not_found(id))?;
                let ordinal = parent.children;
                parent.children += 1;
                Ok(Resolved {
                    inherited: Some(Arc::clone(&parent.context)),
                    ordinal,
                    lock: None,
                })
            }
            Start::Conversation(id) => {
                let conv = store
                    .conversations
                    .get_mut(*id)
                    .ok_or_else(|| conversation_not_found(id, Some("conversation")))?;
                if conv.locked {
                    return Err(Failure::conversation_locked());
                }
                conv.locked = true;
                let ordinal = conv.responses;
                conv.responses += 1;
                Ok(Resolved {
                    inherited: conv.items(),
                    ordinal,
                    lock: Some(ConversationLock {
                        shared: Arc::clone(self),
                        id: (*id).to_owned(),
                    }),
                })
            }
        }
    }

    /// Whether the response `id` and every response before it on its chain are
    /// live. A missing, expired or deleted link anywhere on the chain breaks it.
    fn chain_is_live(&self, store: &mut Store, id: &str) -> bool {
        let deaths = store.deaths;
        let Some(stored) = store.responses.get(id) else {
            return false;
        };
        if !self.within_ttl(stored.chain_start) {
            return false;
        }
        if stored.verified == Some(deaths) {
            return true;
        }
        // Something died since this chain was last checked: walk it, up to the
        // first response verified since then.
        let mut cursor = stored;
        loop {
            if cursor.expired {
                return false;
            }
            if cursor.verified == Some(deaths) {
                break;
            }
            let Some(previous) = &cursor.previous else {
                break;
            };
            match store.responses.get(previous) {
                Some(next) => cursor = next,
                None => return false,
            }
        }
        if let Some(stored) = store.responses.get_mut(id) {
            stored.verified = Some(deaths);
        }
        true
    }

    /// Whether something stored at `created` is still within the TTL.
    fn within_ttl(&self, created: Instant) -> bool {
        self.config
            .response_ttl
            .is_none_or(|ttl| created.elapsed() < ttl)
    }

    fn is_live(&self, stored: &Stored) -> bool {
        !stored.expired && self.within_ttl(stored.created)
    }

    /// Stores a completed response (when `store` was set) and appends its input and
    /// output to its conversation; releases the conversation lock.
    pub(crate) fn commit(&self, commit: Commit) {
        let Commit {
            id,
            object,
            start,
            inherited,
            input,
            output,
            store: keep,
            lock,
        } = commit;
        // A background response was counted when it was queued.
        if object.get("background") != Some(&Value::Bool(true)) {
            self.record_created(&id);
        }
        let in_conversation = matches!(start, OwnedStart::Conversation(_));
        if !keep && !in_conversation {
            drop(lock);
            return;
        }
        let input_len = input.len();
        let mut items = input;
        items.extend(output);
        // Built before taking the lock: O(own items), and the history is shared.
        let context = Segment::new(inherited.clone(), items);
        let created = Instant::now();
        let mut store = self.store();
        if let OwnedStart::Conversation(conv_id) = &start
            && let Some(conv) = store.conversations.get_mut(conv_id)
        {
            let unchanged = match (&conv.items, &inherited) {
                (Some(now), Some(then)) => Arc::ptr_eq(now, then),
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                // The usual case: the response's own segment is the conversation's
                // next one, shared.
                conv.items = Some(Arc::clone(&context));
            } else {
                // Items were added while the response was generated: they come first.
                conv.append(context.own_items().to_vec());
            }
        }
        if keep {
            let (previous, chain_start, verified) = match start {
                OwnedStart::Previous(parent) => {
                    let (chain_start, verified) = store
                        .responses
                        .get(&parent)
                        .map_or((created, None), |p| (p.chain_start, p.verified));
                    (Some(parent), chain_start, verified)
                }
                OwnedStart::Root | OwnedStart::Conversation(_) => {
                    (None, created, Some(store.deaths))
                }
            };
            store.responses.insert(
                id,
                Stored {
                    object,
                    context,
                    input_len,
                    previous,
                    created,
                    chain_start,
                    expired: false,
                    verified,
                    children: 0,
                },
            );
        }
        drop(store);
        // Released last, so a waiting request sees the appended items.
        drop(lock);
    }

    /// Counts a response as created: a completed (or incomplete) one when it is
    /// committed, stored or not; a background one when it is queued.
    pub(crate) fn record_created(&self, id: &str) {
        let capacity = self.config.request_log_capacity;
        let mut ids = lock(&self.created_ids);
        if capacity > 0 {
            if ids.len() == capacity {
                ids.pop_front();
            }
            ids.push_back(id.to_owned());
        }
        drop(ids);
        self.created_total.send_modify(|n| *n += 1);
    }

    /// The newest ids of the responses created, oldest first.
    pub(crate) fn created_ids(&self) -> Vec<String> {
        lock(&self.created_ids).iter().cloned().collect()
    }

    /// How many responses were created.
    pub(crate) fn created_count(&self) -> u64 {
        *self.created_total.borrow()
    }

    /// Resolves once at least `n` responses were created.
    pub(crate) async fn wait_created(&self, n: u64) {
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = self.created_total.subscribe().wait_for(|&c| c >= n).await;
    }

    /// The Response object: a background response's as it is now, else the
    /// stored one, if it is live.
    pub(crate) fn response(&self, id: &str) -> Option<Value> {
        if let Some(job) = self.jobs.get(id) {
            return Some(job.object());
        }
        let store = self.store();
        store
            .responses
            .get(id)
            .filter(|s| self.is_live(s))
            .map(|s| s.object.clone())
    }

    /// A live response's context, whose own items start with its `input_len` input
    /// items: `(context, input_len)`.
    pub(crate) fn input_items(&self, id: &str) -> Option<(Arc<Segment>, usize)> {
        let store = self.store();
        store
            .responses
            .get(id)
            .filter(|s| self.is_live(s))
            .map(|s| (Arc::clone(&s.context), s.input_len))
    }

    /// Deletes a response; `false` when it was not (or no longer) there.
    pub(crate) fn delete_response(&self, id: &str) -> bool {
        // A background response still running is stopped and forgotten.
        let was_job = self.jobs.remove(id);
        let mut store = self.store();
        let live = store.responses.get(id).is_some_and(|s| self.is_live(s));
        if store.responses.remove(id).is_some() {
            store.deaths += 1;
        }
        live || was_job
    }

    /// Marks a response expired, as if its TTL had passed.
    pub(crate) fn expire_response(&self, id: &str) -> bool {
        let was_job = self.jobs.remove(id);
        let mut store = self.store();
        let live = store.responses.get(id).is_some_and(|s| self.is_live(s));
        if let Some(stored) = store.responses.get_mut(id) {
            stored.expired = true;
            store.deaths += 1;
        }
        live || was_job
    }

    /// How many responses are stored and live.
    pub(crate) fn response_count(&self) -> usize {
        let store = self.store();
        store.responses.values().filter(|s| self.is_live(s)).count()
    }

    /// The next scripted reply, if a test queued one.
    pub(crate) fn next_scripted(&self) -> Option<String> {
        lock(&self.scripted).pop_front()
    }

    pub(crate) fn script(&self, replies: impl IntoIterator<Item = String>) {
        lock(&self.scripted).extend(replies);
    }

    /// The reply for a context: the next scripted reply, else the default one.
    pub(crate) fn reply(&self, context: &Summary, ordinal: u64) -> String {
        self.next_scripted()
            .unwrap_or_else(|| model::default_reply(self.config.seed, context, ordinal))
    }

    pub(crate) fn create_conversation(&self, metadata: Value, items: Vec<Value>) -> Value {
        let mut conv = Conversation {
            id: super::ids::conversation(),
            created_at: unix_now(),
            metadata,
            items: None,
            locked: false,
            responses: 0,
        };
        conv.append(items);
        let object = conv.object();
        self.store().conversations.insert(conv.id.clone(), conv);
        object
    }

    /// Runs `f` on a conversation, or fails with the real 404.
    pub(crate) fn with_conversation<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Conversation) -> T,
    ) -> Result<T, Failure> {
        let mut store = self.store();
        let conv = store
            .conversations
            .get_mut(id)
            .ok_or_else(|| conversation_not_found(id, None))?;
        Ok(f(conv))
    }

    pub(crate) fn delete_conversation(&self, id: &str) -> bool {
        self.store().conversations.remove(id).is_some()
    }
}

/// The 404 for an unknown conversation.
pub(crate) fn conversation_not_found(id: &str, param: Option<&str>) -> Failure {
    Failure::not_found(format!("Conversation with id '{id}' not found."), param)
}

/// Locks a mutex, recovering from poisoning: every critical section leaves the data
/// consistent, so a panic elsewhere must not take the emulator down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A duration in whole nanoseconds, saturating (u64 nanoseconds cover 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::items;

    fn texts(segment: Option<&Arc<Segment>>) -> Vec<String> {
        segment
            .map(|s| s.items().into_iter().map(items::text_of).collect())
            .unwrap_or_default()
    }

    fn commit_in(shared: &Arc<Shared>, conv: &str, resolved: Resolved, text: &str) -> String {
        let id = format!("resp_{text}");
        shared.commit(Commit {
            id: id.clone(),
            object: Value::Null,
            start: OwnedStart::Conversation(conv.to_owned()),
            inherited: resolved.inherited,
            input: vec![items::message("user", text)],
            output: vec![items::message("assistant", &format!("re {text}"))],
            store: true,
            lock: resolved.lock,
        });
        id
    }

    #[test]
    fn a_conversation_shares_its_responses_segments_and_orders_items_added_meanwhile() {
        let shared = Arc::new(Shared::new(EmulatorConfig::default()));
        let conv = shared.create_conversation(Value::Null, vec![items::message("user", "a")]);
        let conv = conv["id"].as_str().unwrap().to_owned();
        let items_now = || shared.with_conversation(&conv, |c| c.items()).unwrap();

        // No one adds items while `b` is generated: its segment becomes the
        // conversation's, shared rather than copied.
        let resolved = shared.resolve(&Start::Conversation(&conv)).unwrap();
        let b = commit_in(&shared, &conv, resolved, "b");
        let (b_context, _) = shared.input_items(&b).unwrap();
        assert!(Arc::ptr_eq(&items_now().unwrap(), &b_context));

        // Items added while `c` is generated come before its own items, and `c`'s
        // context is the conversation as it was when `c` started.
        let resolved = shared.resolve(&Start::Conversation(&conv)).unwrap();
        shared
            .with_conversation(&conv, |c| c.append(vec![items::message("user", "added")]))
            .unwrap();
        let c = commit_in(&shared, &conv, resolved, "c");
        assert_eq!(
            texts(items_now().as_ref()),
            ["a", "b", "re b", "added", "c", "re c"]
        );
        let (c_context, input_len) = shared.input_items(&c).unwrap();
        assert_eq!(input_len, 1);
        assert_eq!(texts(Some(&c_context)), ["a", "b", "re b", "c", "re c"]);
        // The conversation's lock was released by the commit.
        assert!(shared.resolve(&Start::Conversation(&conv)).is_ok());
    }
}
