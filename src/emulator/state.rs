//! The emulator's shared state: stored responses, conversations, scripted replies,
//! faults and the request log. One `std::sync::Mutex` per concern, never held across
//! an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::config::EmulatorConfig;
use super::failure::Failure;
use super::fault::FaultPlan;
use super::log::LogEntry;
use super::model;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    store: Mutex<Store>,
    pub(crate) faults: Mutex<FaultPlan>,
    pub(crate) log: Mutex<Vec<LogEntry>>,
    scripted: Mutex<VecDeque<String>>,
    /// Ordinal of the next root response (no parent, no conversation).
    roots: AtomicU64,
    /// The current "thinking time" in nanoseconds: starts as `config.latency` and
    /// can be changed while serving ([`Emulator::set_latency`](super::Emulator::set_latency)).
    latency_nanos: AtomicU64,
}

#[derive(Debug, Default)]
struct Store {
    responses: HashMap<String, Stored>,
    conversations: HashMap<String, Conversation>,
}

/// A stored response.
#[derive(Debug)]
struct Stored {
    /// The full Response object, as `GET` returns it.
    object: Value,
    /// Where this response's context came from.
    base: Base,
    /// Its own input items (with ids).
    input: Arc<[Value]>,
    /// Its output items.
    output: Arc<[Value]>,
    created: Instant,
    expired: bool,
    /// How many children were created from it (the sibling ordinal of the next one).
    children: u64,
}

#[derive(Debug, Clone)]
enum Base {
    Root,
    Parent(String),
    /// The conversation's items when the response was created.
    Conversation(Arc<[Value]>),
}

/// A conversation.
#[derive(Debug)]
pub(crate) struct Conversation {
    pub(crate) id: String,
    pub(crate) created_at: i64,
    pub(crate) metadata: Value,
    pub(crate) items: Vec<Value>,
    locked: bool,
    responses: u64,
}

impl Conversation {
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
    /// Every inherited item, oldest first.
    pub(crate) inherited: Vec<Value>,
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
    pub(crate) inherited: Vec<Value>,
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
        Self {
            latency_nanos,
            config,
            store: Mutex::default(),
            faults: Mutex::default(),
            log: Mutex::default(),
            scripted: Mutex::default(),
            roots: AtomicU64::new(0),
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
                inherited: Vec::new(),
                ordinal: self.roots.fetch_add(1, Ordering::Relaxed),
                lock: None,
            }),
            Start::Previous(id) => {
                let inherited = self.chain(&store, id)?;
                let parent = store
                    .responses
                    .get_mut(*id)
                    .ok_or_else(|| Failure::previous_not_found(id))?;
                let ordinal = parent.children;
                parent.children += 1;
                Ok(Resolved {
                    inherited,
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
                    inherited: conv.items.clone(),
                    ordinal,
                    lock: Some(ConversationLock {
                        shared: Arc::clone(self),
                        id: (*id).to_owned(),
                    }),
                })
            }
        }
    }

    /// Every item on the chain ending at `id` (inputs and outputs, oldest first).
    /// A missing, expired or deleted link anywhere on the chain breaks it.
    fn chain(&self, store: &Store, id: &str) -> Result<Vec<Value>, Failure> {
        // (input, output) of each response on the chain, newest first.
        type Segment = (Arc<[Value]>, Arc<[Value]>);
        let mut segments: Vec<Segment> = Vec::new();
        let mut prefix: Option<Arc<[Value]>> = None;
        let mut cursor = id.to_owned();
        loop {
            let stored = store
                .responses
                .get(&cursor)
                .filter(|s| self.is_live(s))
                .ok_or_else(|| Failure::previous_not_found(id))?;
            segments.push((Arc::clone(&stored.input), Arc::clone(&stored.output)));
            match &stored.base {
                Base::Root => break,
                Base::Parent(parent) => cursor = parent.clone(),
                Base::Conversation(items) => {
                    prefix = Some(Arc::clone(items));
                    break;
                }
            }
        }
        let mut items: Vec<Value> = prefix.map(|p| p.to_vec()).unwrap_or_default();
        for (input, output) in segments.iter().rev() {
            items.extend(input.iter().cloned());
            items.extend(output.iter().cloned());
        }
        Ok(items)
    }

    fn is_live(&self, stored: &Stored) -> bool {
        !stored.expired
            && self
                .config
                .response_ttl
                .is_none_or(|ttl| stored.created.elapsed() < ttl)
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
        let mut store = self.store();
        if let OwnedStart::Conversation(conv_id) = &start
            && let Some(conv) = store.conversations.get_mut(conv_id)
        {
            conv.items.extend(input.iter().cloned());
            conv.items.extend(output.iter().cloned());
        }
        if keep {
            let base = match start {
                OwnedStart::Root => Base::Root,
                OwnedStart::Previous(parent) => Base::Parent(parent),
                OwnedStart::Conversation(_) => Base::Conversation(inherited.into()),
            };
            store.responses.insert(
                id,
                Stored {
                    object,
                    base,
                    input: input.into(),
                    output: output.into(),
                    created: Instant::now(),
                    expired: false,
                    children: 0,
                },
            );
        }
        drop(store);
        // Released last, so a waiting request sees the appended items.
        drop(lock);
    }

    /// The stored Response object, if it is live.
    pub(crate) fn response(&self, id: &str) -> Option<Value> {
        let store = self.store();
        store
            .responses
            .get(id)
            .filter(|s| self.is_live(s))
            .map(|s| s.object.clone())
    }

    /// A live response's own input items.
    pub(crate) fn input_items(&self, id: &str) -> Option<Arc<[Value]>> {
        let store = self.store();
        store
            .responses
            .get(id)
            .filter(|s| self.is_live(s))
            .map(|s| Arc::clone(&s.input))
    }

    /// Deletes a response; `false` when it was not (or no longer) there.
    pub(crate) fn delete_response(&self, id: &str) -> bool {
        let mut store = self.store();
        let live = store.responses.get(id).is_some_and(|s| self.is_live(s));
        store.responses.remove(id);
        live
    }

    /// Marks a response expired, as if its TTL had passed.
    pub(crate) fn expire_response(&self, id: &str) -> bool {
        let mut store = self.store();
        let live = store.responses.get(id).is_some_and(|s| self.is_live(s));
        if let Some(stored) = store.responses.get_mut(id) {
            stored.expired = true;
        }
        live
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
    pub(crate) fn reply(&self, context: &[Value], ordinal: u64) -> String {
        self.next_scripted()
            .unwrap_or_else(|| model::default_reply(self.config.seed, context, ordinal))
    }

    pub(crate) fn create_conversation(&self, metadata: Value, items: Vec<Value>) -> Value {
        let conv = Conversation {
            id: super::ids::conversation(),
            created_at: unix_now(),
            metadata,
            items,
            locked: false,
            responses: 0,
        };
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
