//! Streaming a native fan-out: one request with `n` choices, deltas routed by
//! choice index, the `n` sibling nodes committed together at the end.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::pipeline::Call;
use super::task_stream::TaskStream;
use super::{Engine, RespondOptions};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::Node;

/// One step of a streamed fan-out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FanOutUpdate {
    /// More output text of choice `index` (0..n). Choices interleave.
    Delta {
        /// Which choice the text extends.
        index: usize,
        /// The new text.
        text: String,
    },
    /// Every choice completed and the sibling nodes are committed, in choice
    /// order. Always the last item.
    Committed(Vec<Node>),
}

/// The stream returned by [`Engine::fan_out_stream`].
///
/// Yields [`FanOutUpdate`]s and ends after [`FanOutUpdate::Committed`] or an
/// error. The nodes are committed together, only once the whole reply is
/// complete: a failed stream, or a `FanOutStream` dropped early (which cancels
/// the request), leaves no node behind.
///
/// ```
/// # #[cfg(feature = "emulator")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let emu = resptree::emulator::Emulator::spawn().await?;
/// # let client = resptree::Client::builder().base_url(emu.base_url()).api_key("sk-local").build()?;
/// use futures_util::StreamExt;
/// use resptree::backend::ChatBackend;
/// use resptree::engine::{FanOutUpdate, RespondOptions};
/// use resptree::{Engine, ResponseTree};
///
/// let engine = Engine::builder(ResponseTree::in_memory(), ChatBackend::new(client)).build()?;
/// let mut texts = vec![String::new(); 3];
/// let mut stream = engine.fan_out_stream(None, "Plan an evening in Paris", 3, &RespondOptions::default());
/// while let Some(update) = stream.next().await {
///     match update? {
///         FanOutUpdate::Delta { index, text } => texts[index].push_str(&text),
///         FanOutUpdate::Committed(nodes) => {
///             for (node, text) in nodes.iter().zip(&texts) {
///                 assert_eq!(&node.output_text, text);
///             }
///         }
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "emulator"))]
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct FanOutStream(TaskStream<FanOutUpdate>);

impl Stream for FanOutStream {
    type Item = Result<FanOutUpdate>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next(cx)
    }
}

/// Starts the streaming task.
pub(super) fn start(
    engine: Engine,
    parent: Option<NodeId>,
    input: Vec<Value>,
    n: usize,
    options: RespondOptions,
) -> FanOutStream {
    FanOutStream(TaskStream::spawn(|tx| async move {
        let result = run(&engine, parent.as_ref(), input, n, &options, &tx).await;
        let _ = tx.send(result.map(FanOutUpdate::Committed));
    }))
}

async fn run(
    engine: &Engine,
    parent: Option<&NodeId>,
    input: Vec<Value>,
    n: usize,
    options: &RespondOptions,
    tx: &mpsc::UnboundedSender<Result<FanOutUpdate>>,
) -> Result<Vec<Node>> {
    if n == 0 {
        // As `Engine::fan_out`: nothing asked, nothing sent.
        return Ok(Vec::new());
    }
    if !engine.backend().has_native_fan_out() {
        return Err(Error::Unsupported(
            "streaming fan-out on a backend without native fan-out",
        ));
    }
    let plan = engine.plan(parent, input, options).await?;
    engine
        .run(vec![(plan, Call::NativeStream(n, tx.clone()))])
        .await?
        .pop()
        .ok_or(Error::Internal("the pipeline returned no result for a job"))?
}
