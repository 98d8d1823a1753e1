//! The OpenAI Responses API as an engine backend, over [`Client`].

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    Backend, BackendEvent, BackendReply, BackendRequest, BoxFuture, Context, RetrievedResponse,
};
use crate::client::{
    Client, CreateResponse, Input, InputItemsQuery, Order, Response, ResponseStream, StreamEvent,
};
use crate::error::{Error, Result};
use crate::ids::ResponseId;
use crate::node::{NodeStatus, Timestamp, Usage};

/// Drives the Responses API (`POST /v1/responses`), continuing server-side parents
/// with `previous_response_id`.
///
/// ```no_run
/// # async fn demo() -> resptree::Result<()> {
/// use resptree::backend::ResponsesBackend;
/// use resptree::client::Client;
/// let backend = ResponsesBackend::new(Client::from_env()?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ResponsesBackend {
    client: Client,
}

impl ResponsesBackend {
    /// A backend that sends its requests with `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client this backend uses.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Backend for ResponsesBackend {
    fn name(&self) -> &str {
        "responses"
    }

    fn is_stateful(&self) -> bool {
        true
    }

    /// `response.created` carries the id, and stored responses can be retrieved.
    fn reports_id_early(&self) -> bool {
        true
    }

    fn respond(&self, request: BackendRequest) -> BoxFuture<'_, Result<BackendReply>> {
        Box::pin(async move {
            let response = self.client.create(&to_wire(&request)).await?;
            reply_from(&response)
        })
    }

    fn respond_stream(
        &self,
        request: BackendRequest,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        Box::pin(async move {
            let stream = self.client.create_stream(&to_wire(&request)).await?;
            self.follow(stream, &events, request.background, false)
                .await
        })
    }

    /// Background mode, cancel and `GET /responses/{id}?stream=true` are all
    /// in the Responses API.
    fn supports_background(&self) -> bool {
        true
    }

    fn resume_stream(
        &self,
        id: &ResponseId,
        starting_after: Option<u64>,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        let id = id.clone();
        Box::pin(async move {
            let stream = self
                .client
                .retrieve_stream(id.as_str(), starting_after)
                .await?;
            self.follow(stream, &events, true, true).await
        })
    }

    fn cancel(&self, id: &ResponseId) -> BoxFuture<'_, Result<BackendReply>> {
        let id = id.clone();
        Box::pin(async move { reply_from(&self.client.cancel(id.as_str()).await?) })
    }

    fn retrieve(&self, id: &ResponseId) -> BoxFuture<'_, Result<RetrievedResponse>> {
        let id = id.clone();
        Box::pin(async move {
            let response = self.client.retrieve(id.as_str()).await?;
            let query = InputItemsQuery::default().order(Order::Asc).limit(100);
            let mut items = Vec::new();
            let mut pages = std::pin::pin!(self.client.input_items(id.as_str(), query));
            while let Some(item) = pages.next().await {
                items.push(item?);
            }
            Ok(RetrievedResponse {
                previous_response_id: response
                    .previous_response_id
                    .as_deref()
                    .map(ResponseId::new)
                    .transpose()?,
                instructions: instructions_text(response.instructions.as_ref()),
                metadata: response.metadata.clone().unwrap_or_default(),
                pending: matches!(response.status.as_deref(), Some("queued" | "in_progress")),
                input: items.into_iter().map(strip_item_id).collect(),
                reply: reply_from(&response)?,
            })
        })
    }

    fn delete(&self, id: &ResponseId) -> BoxFuture<'_, Result<()>> {
        let id = id.clone();
        Box::pin(async move {
            match self.client.delete(id.as_str()).await {
                Ok(_) => Ok(()),
                Err(e) if e.status() == Some(404) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// `POST /responses/input_tokens` with the body a create would send.
    fn count_input_tokens(&self, request: BackendRequest) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move { self.client.count_input_tokens(&to_wire(&request)).await })
    }
}

impl ResponsesBackend {
    /// Reads `stream` to its terminal event, reporting progress to `events`;
    /// with `numbered` (background mode) also when the server starts working
    /// ([`BackendEvent::Running`]) and each event's sequence number
    /// ([`BackendEvent::Sequence`]), after the event's other reports.
    ///
    /// A `resumed` stream starts after the items it would collect were sent,
    /// so if its final response comes with an empty `output` (a sparse final
    /// object), the response is retrieved whole instead.
    async fn follow(
        &self,
        mut stream: ResponseStream,
        events: &mpsc::UnboundedSender<BackendEvent>,
        numbered: bool,
        resumed: bool,
    ) -> Result<BackendReply> {
        let mut items = std::collections::BTreeMap::new();
        while let Some(event) = stream.next().await {
            let event = event?;
            let numbered_now = numbered.then(|| stream.last_sequence_number()).flatten();
            match event {
                StreamEvent::Created(response) => {
                    let response_id = ResponseId::new(&response.id)?;
                    let _ = events.send(BackendEvent::Started { response_id });
                }
                StreamEvent::InProgress(_) if numbered => {
                    let _ = events.send(BackendEvent::Running);
                }
                StreamEvent::OutputTextDelta { delta, .. } => {
                    let _ = events.send(BackendEvent::Delta(delta));
                }
                StreamEvent::OutputItemDone { output_index, item } => {
                    items.insert(output_index, item);
                }
                StreamEvent::Completed(mut response) | StreamEvent::Incomplete(mut response) => {
                    // Some servers leave the final `output` empty; the items
                    // arrived in `output_item.done` events.
                    if response.output.is_empty() {
                        if resumed {
                            response = self.client.retrieve(&response.id).await?;
                        } else {
                            response.output = items.into_values().collect();
                        }
                    }
                    return reply_from(&response);
                }
                StreamEvent::Failed(response) => return Err(stream.failed_error(&response)),
                _ => {}
            }
            if let Some(n) = numbered_now {
                let _ = events.send(BackendEvent::Sequence(n));
            }
        }
        Err(Error::stream(
            "stream ended without a terminal event",
            stream.request_id().map(str::to_owned),
        ))
    }
}

/// The wire request for `request`.
fn to_wire(request: &BackendRequest) -> CreateResponse {
    super::trace_request("responses", request, 1);
    let mut wire = CreateResponse::new(request.model.clone(), Input::items(request.full_input()))
        .store(request.store);
    if request.background {
        wire = wire.background(true);
    }
    if let Context::Previous(id) = &request.context {
        wire = wire.previous_response_id(id.as_str());
    }
    if let Some(text) = &request.instructions {
        wire = wire.instructions(text.clone());
    }
    if !request.metadata.is_empty() {
        wire = wire.metadata(request.metadata.clone());
    }
    // Settings first: the request's own `max_output_tokens`/`temperature`
    // fields win over the same settings (they are typed fields of the wire
    // request, so they must not also travel in its `extra`).
    for (key, value) in request.settings.to_body() {
        match key.as_str() {
            "max_output_tokens" | "temperature" => {}
            _ => wire = wire.param(key, value),
        }
    }
    if let Some(max) = request
        .max_output_tokens
        .or(request.settings.max_output_tokens)
    {
        wire = wire.max_output_tokens(u64::from(max));
    }
    if let Some(t) = request.temperature.or(request.settings.temperature) {
        wire = wire.temperature(t);
    }
    wire
}

/// Our view of a completed wire response.
fn reply_from(response: &Response) -> Result<BackendReply> {
    let status = match response.status.as_deref() {
        Some("completed") | None => NodeStatus::Completed,
        Some("incomplete") => NodeStatus::Incomplete,
        Some("cancelled") => NodeStatus::Cancelled,
        Some(_) => NodeStatus::Failed,
    };
    let mut usage = response.usage.as_ref().map(Usage::from).unwrap_or_default();
    // Cache writes arrive as an extra detail the wire type keeps untyped.
    usage.cache_write_tokens = response
        .usage
        .as_ref()
        .and_then(|u| u.input_tokens_details.as_ref())
        .and_then(|d| d.extra.get("cache_write_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(BackendReply {
        response_id: Some(ResponseId::new(&response.id)?),
        output: response.output_json(),
        output_text: response.output_text(),
        model: Some(response.model.clone()),
        status,
        usage,
        created_at: Timestamp::from_unix_seconds(response.created_at),
        stored: response.store.unwrap_or(true),
    })
}

fn instructions_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Input items come back from the server with item ids; a node keeps them as the
/// items that were sent, without the server's ids.
fn strip_item_id(mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.remove("id");
        map.remove("status");
    }
    item
}
