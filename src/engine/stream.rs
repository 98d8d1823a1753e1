//! Streaming one response: text deltas to the caller, the node committed at the end.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::task_stream::TaskStream;
use super::{Engine, RespondOptions};
use crate::backend::BackendEvent;
use crate::error::Result;
use crate::ids::{NodeId, ResponseId};
use crate::node::Node;

/// One step of a streamed response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamUpdate {
    /// The server assigned the response its id (journaled before this is yielded).
    Started(ResponseId),
    /// More output text.
    Delta(String),
    /// The response completed and its node is committed. Always the last item.
    Committed(Box<Node>),
}

/// The stream returned by [`Engine::respond_stream`].
///
/// Yields [`StreamUpdate`]s and ends after [`StreamUpdate::Committed`] or an
/// error. The node is committed only when the response is complete: a failed
/// stream, or a `NodeStream` dropped early (which cancels the request), leaves no
/// node behind.
///
/// ```no_run
/// # async fn demo(engine: resptree::Engine) -> resptree::Result<()> {
/// use futures_util::StreamExt;
/// use resptree::engine::{RespondOptions, StreamUpdate};
/// let mut stream = engine.respond_stream(None, "Plan a weekend in Paris", &RespondOptions::default());
/// while let Some(update) = stream.next().await {
///     match update? {
///         StreamUpdate::Delta(text) => print!("{text}"),
///         StreamUpdate::Committed(node) => println!("\n[{}]", node.id),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NodeStream(TaskStream<StreamUpdate>);

impl Stream for NodeStream {
    type Item = Result<StreamUpdate>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next(cx)
    }
}

/// Starts the streaming task; the request runs even if the caller polls slowly.
pub(super) fn start(
    engine: Engine,
    parent: Option<NodeId>,
    input: Vec<Value>,
    options: RespondOptions,
) -> NodeStream {
    NodeStream(TaskStream::spawn(|tx| async move {
        let result = run(&engine, parent.as_ref(), input, &options, &tx).await;
        let _ = tx.send(result.map(|node| StreamUpdate::Committed(Box::new(node))));
    }))
}

async fn run(
    engine: &Engine,
    parent: Option<&NodeId>,
    input: Vec<Value>,
    options: &RespondOptions,
    tx: &mpsc::UnboundedSender<Result<StreamUpdate>>,
) -> Result<Node> {
    let plan = engine.plan(parent, input, options).await?;
    let attempt = engine.journal_attempt(&plan).await?;
    let _permit = engine.permit().await?;
    let sent = engine
        .send_with_fallback(plan, |backend, request| {
            let (events, mut received) = mpsc::unbounded_channel();
            let engine = engine.clone();
            let attempt = attempt.clone();
            let tx = tx.clone();
            // Forward events as they arrive; the forwarding future is polled
            // together with the request so deltas reach the caller live.
            Box::pin(async move {
                let request = backend.respond_stream(request, events);
                let forward = async {
                    while let Some(event) = received.recv().await {
                        match event {
                            BackendEvent::Started { response_id } => {
                                // A failed journal write is not fatal: the node is
                                // still committed on completion.
                                let _ = engine
                                    .journal_response_id(&attempt, response_id.clone())
                                    .await;
                                let _ = tx.send(Ok(StreamUpdate::Started(response_id)));
                            }
                            BackendEvent::Delta(text) => {
                                let _ = tx.send(Ok(StreamUpdate::Delta(text)));
                            }
                        }
                    }
                };
                let (reply, ()) = tokio::join!(request, forward);
                reply
            })
        })
        .await;
    let (reply, plan) = engine.settle(sent, &attempt).await?;
    let node = engine.node_from(&plan, reply, None);
    let mut committed = engine.commit(vec![node], &attempt).await?;
    committed
        .pop()
        .ok_or(crate::error::Error::Unsupported("an empty commit"))
}
