//! The change feed's wake-up: `NOTIFY` in every writing transaction, and one
//! `LISTEN` connection per store that turns notifications into
//! [`ChangeSignal`] wake-ups.
//!
//! A notification is delivered only if its transaction commits, so a wake-up
//! always follows committed data. Notifications sent while the listener is
//! disconnected are lost; the listener therefore wakes everyone when it
//! (re)connects, and reports meanwhile that it is not listening
//! ([`ChangeSignal::is_listening`]) so waiters poll. Several trees can share a
//! database in different schemas: every store notifies on one channel with
//! its schema as the payload, and a listener passes on only its own schema's.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::Result;
use crate::store::{ChangeNotifier, ChangeSignal};

use super::worker::Worker;

/// The channel every resptree store notifies on.
const CHANNEL: &str = "resptree_changes";

/// What a writing transaction runs before it commits: one notification
/// carrying the schema its tables are in. PostgreSQL merges identical
/// notifications of one transaction, so a batch sends one however many rows
/// it writes.
pub(super) const NOTIFY: &str =
    "SELECT pg_notify('resptree_changes', coalesce(current_schema(), ''))";

/// The first wait before reconnecting a lost listener; it doubles up to
/// [`MAX_BACKOFF`] while connecting keeps failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The store's listener: started on the first [`Listener::signal`] call, then
/// shared by every signal handed out.
#[derive(Debug, Default)]
pub(super) struct Listener {
    notifier: Mutex<Option<Arc<ChangeNotifier>>>,
}

impl Listener {
    /// A signal on this store's listener, starting it on `worker` if this is
    /// the first.
    pub(super) fn signal(
        &self,
        worker: &Worker,
        config: &tokio_postgres::Config,
    ) -> Result<ChangeSignal> {
        // A poisoned lock still holds a usable `Option`.
        let mut notifier = self.notifier.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = notifier.as_ref() {
            return Ok(running.subscribe());
        }
        let (sender, signal) = ChangeSignal::pair();
        let sender = Arc::new(sender);
        worker.spawn(
            "starting the change listener",
            listen(config.clone(), Arc::clone(&sender)),
        )?;
        *notifier = Some(sender);
        Ok(signal)
    }
}

/// Listens until the worker's runtime stops, reconnecting after every loss.
async fn listen(config: tokio_postgres::Config, notifier: Arc<ChangeNotifier>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listen_once(&config, &notifier).await {
            // It was connected, so the next failure starts a fresh backoff.
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(err) => {
                tracing::warn!(target: "resptree::store", store = "postgres", error = %err, retry_in_ms = backoff.as_millis() as u64, "the change listener lost its connection");
            }
        }
        notifier.listening(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One listening connection, until it closes: `Ok` if it was listening when
/// it closed, the error that stopped it otherwise.
async fn listen_once(
    config: &tokio_postgres::Config,
    notifier: &ChangeNotifier,
) -> std::result::Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (payloads, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    // The connection must be polled for the client's own queries to run too;
    // `poll_message` does that and hands out what the server sends unasked.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    if payloads.send(n.payload().to_owned()).is_err() {
                        return Ok(());
                    }
                }
                // Notices, and other channels (never listened to).
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            }
        }
    });
    let schema = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        let row = client
            .query_one("SELECT coalesce(current_schema(), '')", &[])
            .await?;
        row.try_get::<_, String>(0)
    }
    .await;
    let schema = match schema {
        Ok(schema) => schema,
        Err(err) => {
            driver.abort();
            return Err(err);
        }
    };
    notifier.listening(true);
    tracing::debug!(target: "resptree::store", store = "postgres", schema = %schema, "change listener connected");
    while let Some(payload) = received.recv().await {
        if payload == schema {
            notifier.notify();
        }
    }
    // The driver stopped: the connection closed or failed.
    match driver.await {
        Ok(Err(err)) => Err(err),
        _ => Ok(()),
    }
}
