//! Tool loops as trees: answering a node's function calls makes its child, and
//! different answers to the same calls make siblings.
//!
//! A node whose output holds `function_call` items has *pending* calls
//! ([`Node::pending_tool_calls`]). Every request continuing it must answer all
//! of them with `function_call_output` items, or the server refuses it; the
//! engine checks that before anything is sent ([`check_answers`]).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Engine, RespondOptions};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::{Node, ToolCall, ToolOutput, tool_output_of};

impl Engine {
    /// Answers `node`'s function calls: one child whose input is a
    /// `function_call_output` item per output, with the parent's settings
    /// (tools included) re-sent. Several parallel calls are answered together,
    /// in one request.
    ///
    /// # Errors
    ///
    /// [`Error::UnansweredToolCalls`] if `outputs` leave one of `node`'s calls
    /// unanswered, [`Error::UnknownToolCall`] if one answers a call `node` did
    /// not make (or the same call twice): both before any request is sent.
    /// Otherwise the errors of [`Engine::respond_with`].
    pub async fn submit_tool_outputs(
        &self,
        node: &NodeId,
        outputs: impl IntoIterator<Item = ToolOutput>,
    ) -> Result<Node> {
        self.submit_tool_outputs_with(node, outputs, &RespondOptions::default())
            .await
    }

    /// Like [`Engine::submit_tool_outputs`], with options (e.g. other settings,
    /// or a user message appended after the outputs with
    /// [`Engine::respond_with`] directly).
    ///
    /// # Errors
    ///
    /// As [`Engine::submit_tool_outputs`].
    pub async fn submit_tool_outputs_with(
        &self,
        node: &NodeId,
        outputs: impl IntoIterator<Item = ToolOutput>,
        options: &RespondOptions,
    ) -> Result<Node> {
        let input = outputs.into_iter().map(|o| o.to_item()).collect();
        self.respond_with(Some(node), input, options).await
    }

    /// Branches at a tool call: one child of `node` per set of outputs, sent
    /// concurrently, each answering `node`'s calls differently ("what if the
    /// weather were sunny / rainy?"). Each set must answer every pending call.
    /// As with [`Engine::branch`], the result has one entry per set, in order.
    ///
    /// # Errors
    ///
    /// The checks of [`Engine::submit_tool_outputs`], for every set, before any
    /// request is sent; then each child's own error in its entry.
    pub async fn branch_tool_outputs<I, O>(
        &self,
        node: &NodeId,
        alternatives: I,
    ) -> Result<Vec<Result<Node>>>
    where
        I: IntoIterator<Item = O>,
        O: IntoIterator<Item = ToolOutput>,
    {
        let inputs = alternatives
            .into_iter()
            .map(|set| set.into_iter().map(|o| o.to_item()).collect())
            .collect();
        self.branch_with(Some(node), inputs, &RespondOptions::default())
            .await
    }
}

/// Checks that `input` answers every pending call of `parent` exactly once and
/// answers nothing else. Calls made inside `input` itself (a hand-built
/// history) may be answered there too.
///
/// # Errors
///
/// [`Error::UnknownToolCall`] for an output answering no pending call (or one
/// already answered), then [`Error::UnansweredToolCalls`] naming every call left
/// unanswered.
pub(super) fn check_answers(
    parent: Option<&NodeId>,
    pending: &[ToolCall],
    input: &[Value],
) -> Result<()> {
    let mut open: BTreeSet<&str> = pending.iter().map(|c| c.call_id.as_str()).collect();
    let mut answered = BTreeSet::new();
    for item in input {
        if item.get("type").and_then(Value::as_str) == Some("function_call") {
            if let Some(id) = item.get("call_id").and_then(Value::as_str) {
                open.insert(id);
            }
            continue;
        }
        let Some(output) = tool_output_of(item) else {
            continue;
        };
        let id = item
            .get("call_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !open.remove(id) {
            return Err(Error::UnknownToolCall {
                node: parent.cloned(),
                call_id: output.call_id,
            });
        }
        answered.insert(id);
    }
    let unanswered: Vec<String> = pending
        .iter()
        .filter(|c| !answered.contains(c.call_id.as_str()))
        .map(|c| c.call_id.clone())
        .collect();
    match parent {
        Some(node) if !unanswered.is_empty() => Err(Error::UnansweredToolCalls {
            node: node.clone(),
            call_ids: unanswered,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall::from_item(
            &json!({"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"}),
        )
        .unwrap()
    }

    #[test]
    fn every_pending_call_must_be_answered_once() {
        let node = NodeId::new("n1").unwrap();
        let pending = [call("c1"), call("c2")];
        let both = [
            ToolOutput::new("c1", "a").to_item(),
            ToolOutput::new("c2", "b").to_item(),
        ];
        check_answers(Some(&node), &pending, &both).unwrap();
        let one = [ToolOutput::new("c2", "b").to_item()];
        match check_answers(Some(&node), &pending, &one) {
            Err(Error::UnansweredToolCalls { node: n, call_ids }) => {
                assert_eq!(n, node);
                assert_eq!(call_ids, ["c1"]);
            }
            other => panic!("{other:?}"),
        }
        let plain = [json!({"role": "user", "content": "hi"})];
        let err = check_answers(Some(&node), &pending, &plain).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node n1 has unanswered function calls: c1, c2"
        );
        let twice = [
            ToolOutput::new("c1", "a").to_item(),
            ToolOutput::new("c1", "a").to_item(),
        ];
        assert!(matches!(
            check_answers(Some(&node), &pending, &twice),
            Err(Error::UnknownToolCall { call_id, .. }) if call_id == "c1"
        ));
        let stranger = [ToolOutput::new("zz", "a").to_item()];
        assert!(matches!(
            check_answers(None, &[], &stranger),
            Err(Error::UnknownToolCall { node: None, .. })
        ));
        // A hand-built history may carry its own call and answer.
        let history = [
            json!({"type": "function_call", "call_id": "h", "name": "f", "arguments": "{}"}),
            ToolOutput::new("h", "x").to_item(),
        ];
        check_answers(None, &[], &history).unwrap();
        check_answers(Some(&node), &[], &plain).unwrap();
    }
}
