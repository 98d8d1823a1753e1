//! `POST /responses/input_tokens`: what a create would bill as input, asked
//! before creating it (the explorer prices each level with it).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::transport::Call;
use super::{Client, CreateResponse, request_body};
use crate::error::Result;

/// The create fields the endpoint reads (protocol reference §4). A create body
/// carries more (`store`, `metadata`, `max_output_tokens`, sampling, caching
/// hints): the endpoint does not take them, so they are left out rather than
/// risk a 400 for an unknown parameter.
const COUNTED_FIELDS: [&str; 12] = [
    "model",
    "input",
    "previous_response_id",
    "conversation",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "truncation",
    "personality",
];

/// The endpoint's reply: `{"object": "response.input_tokens", "input_tokens": N}`.
#[derive(Debug, Deserialize)]
struct InputTokens {
    input_tokens: u64,
}

impl Client {
    /// How many input tokens `request` would be billed if it were created
    /// (`POST /responses/input_tokens`): the new input plus everything the
    /// request inherits (`previous_response_id`, instructions, tools, text
    /// format), as the create's `usage.input_tokens` would report it. Nothing
    /// is created or billed.
    ///
    /// Only the fields the endpoint reads are sent (model, input, previous
    /// response, conversation, instructions, tools, tool choice, parallel
    /// tool calls, text, reasoning, truncation); the rest of `request` is
    /// ignored.
    ///
    /// ```no_run
    /// # async fn demo() -> resptree::Result<()> {
    /// use resptree::client::{Client, CreateResponse, Input};
    /// let client = Client::from_env()?;
    /// let request = CreateResponse::new("gpt-4o-mini", Input::text("How long is the Seine?"))
    ///     .previous_response_id("resp_123");
    /// let tokens = client.count_input_tokens(&request).await?;
    /// println!("this request would read {tokens} input tokens");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::create`] (an unknown previous response is [`Error::Api`](crate::Error::Api),
    /// a context over the model's window `context_length_exceeded`), and
    /// [`Error::Decode`](crate::Error::Decode) for a reply without `input_tokens`.
    pub async fn count_input_tokens(&self, request: &CreateResponse) -> Result<u64> {
        let body = counted_body(request_body(request, false)?);
        let reply = self
            .execute(&Call::new(Method::POST, "responses/input_tokens").json(&body))
            .await?;
        Ok(reply
            .decode::<InputTokens>("input tokens count")?
            .input_tokens)
    }
}

/// The part of a create body that `POST /responses/input_tokens` reads.
fn counted_body(body: Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| COUNTED_FIELDS.contains(&key.as_str()))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_fields_the_endpoint_reads_are_sent() {
        let body = json!({
            "model": "m", "input": [], "previous_response_id": "resp_1",
            "instructions": "be brief", "text": {"format": {"type": "text"}},
            "store": true, "metadata": {"k": "v"}, "max_output_tokens": 10,
            "temperature": 0.5, "prompt_cache_key": "k",
        });
        assert_eq!(
            counted_body(body),
            json!({
                "model": "m", "input": [], "previous_response_id": "resp_1",
                "instructions": "be brief", "text": {"format": {"type": "text"}},
            })
        );
    }
}
