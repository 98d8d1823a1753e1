//! Streaming one response: text deltas to the caller, the node committed at the end.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use serde_json::Value;

use super::pipeline::Call;
use super::task_stream::TaskStream;
use super::{Engine, RespondOptions};
use crate::error::Result;
use crate::ids::{NodeId, ResponseId};
use crate::node::Node;

/// One step of a streamed response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamUpdate {
    /// The server assigned the response its id (journaled before this is
    /// yielded). In background mode it comes again, with a new id, when a
    /// response stuck in the queue was cancelled and sent again; the deltas
    /// that follow are the new response's.
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
        let result = async {
            let plan = engine.plan(parent.as_ref(), input, &options).await?;
            engine.run_single(plan, Call::Stream(tx.clone())).await
        }
        .await;
        let _ = tx.send(result.map(|node| StreamUpdate::Committed(Box::new(node))));
    }))
}
