//! The background thread that runs the async PostgreSQL driver for the
//! synchronous [`Store`](crate::store::Store) methods.
//!
//! The store trait is synchronous, and users call it from async code too (a
//! `ResponseTree` method in a tokio task). Blocking on a future there would
//! panic (`block_on` inside a runtime) or starve the caller's runtime. So the
//! driver lives on its own thread with its own single-threaded runtime; a trait
//! method sends a job over a channel and waits on a plain `std` channel for the
//! reply, which is safe on any thread, async or not.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc as async_mpsc;

use crate::error::{Error, Result};

/// A job: given the pool, a future that does the work and sends its own reply.
type Job = Box<dyn FnOnce(Pool) -> BoxFuture<'static, ()> + Send>;

/// The handle on the background thread. Dropping it closes the job channel and
/// waits for the thread, which drops the pool and its connections.
#[derive(Debug)]
pub(super) struct Worker {
    jobs: Option<async_mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and its runtime around `pool`.
    pub(super) fn start(pool: Pool) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::storage("starting the PostgreSQL worker", e))?;
        let (jobs, mut queue) = async_mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("resptree-postgres".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // Each job is its own task, so concurrent callers use
                    // several pooled connections at once.
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job(pool.clone()));
                    }
                });
            })
            .map_err(|e| Error::storage("starting the PostgreSQL worker", e))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` on the background runtime and blocks until it is done.
    ///
    /// Blocking here is fine on any thread: the reply comes over a `std`
    /// channel, which never needs the caller's runtime.
    pub(super) fn call<T, F, Fut>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |pool| {
            Box::pin(async move {
                // The caller may have given up (it cannot, it blocks), so a
                // failed send only means nobody is listening.
                let _ = reply.send(work(pool).await);
            })
        });
        let stopped = || Error::storage(op, "the PostgreSQL worker thread has stopped");
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl Worker {
    /// Starts `task` on the background runtime and returns at once. The task
    /// runs until it ends or the worker is dropped (which drops the runtime,
    /// and with it every task still running).
    pub(super) fn spawn<F>(&self, op: &'static str, task: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let job: Job = Box::new(move |_pool| Box::pin(task));
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::storage(op, "the PostgreSQL worker thread has stopped"))?
            .send(job)
            .map_err(|_| Error::storage(op, "the PostgreSQL worker thread has stopped"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // A panicked worker has nothing left to clean up.
            let _ = thread.join();
        }
    }
}
