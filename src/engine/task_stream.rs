//! The machinery behind the engine's streams: a spawned task sends updates over a
//! channel; dropping the stream aborts the task.

use std::future::Future;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;

/// Updates of type `T` produced by a background task.
///
/// The task runs even while the caller polls slowly (text keeps arriving);
/// dropping the `TaskStream` cancels it: the task stops at its next await, and a
/// commit it has started is one atomic store write, so nothing is half-written.
#[derive(Debug)]
pub(super) struct TaskStream<T> {
    updates: mpsc::UnboundedReceiver<Result<T>>,
    task: JoinHandle<()>,
}

impl<T: Send + 'static> TaskStream<T> {
    /// Spawns `work`, handing it the sender for its updates.
    pub(super) fn spawn<F, Fut>(work: F) -> Self
    where
        F: FnOnce(mpsc::UnboundedSender<Result<T>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, updates) = mpsc::unbounded_channel();
        let task = tokio::spawn(work(tx));
        Self { updates, task }
    }

    /// The next update, if any.
    pub(super) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.updates.poll_recv(cx)
    }
}

impl<T> Drop for TaskStream<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
