//! The replay builder: a path's transcript made safe to send as explicit input
//! to a server that holds none of it (stateless mode, a forgotten parent, a
//! Chat Completions server).
//!
//! Stored output items cannot be sent back verbatim. The rules, item by item
//! in path order (each node's input, then its output):
//!
//! - **Reasoning items** travel only with their `encrypted_content`, which is
//!   what the server reads back; they keep their `rs_…` id, which the input
//!   form requires. A reasoning item without encrypted content is dropped: the
//!   server could only resolve it by id, and it did not store it (404). The
//!   engine asks for the content whenever a node may need replay (see
//!   `Engine::plan`). Encrypted reasoning only decrypts for the model that
//!   made it, so it is dropped too when the request names another model.
//! - **Ids of messages and function calls/outputs are removed**: the server
//!   would look a `msg_…`/`fc_…` id up in its store, which holds nothing for
//!   `store: false` responses. `call_id`s stay: they pair calls with outputs.
//! - **No item id is sent twice** (the server answers 400 "Duplicate item
//!   found"): a later item with an id already sent is dropped.
//! - **Calls and outputs stay paired**: a function call that no later item of
//!   the path answers is dropped with an answer nobody asked for (an output
//!   whose call is not in the replay). The last node's calls are kept: the new
//!   input answers them (the engine checked that before planning).
//! - Everything else — the assistant `phase`, `status`, content parts, items of
//!   unknown types — is kept as it was.

use std::collections::HashSet;

use serde_json::Value;

use crate::node::Node;

/// Item types whose input form has an optional `id` that we remove.
const ID_OPTIONAL: [&str; 3] = ["message", "function_call", "function_call_output"];

/// The replay of `path` (root first) for a request to `model`, following the
/// module's rules.
pub(super) fn replay_items(path: &[Node], model: &str) -> Vec<Value> {
    let items: Vec<(usize, bool, &Value)> = path
        .iter()
        .enumerate()
        .flat_map(|(step, node)| {
            let same_model = same_model(node.model.as_deref(), model);
            node.input
                .iter()
                .chain(&node.output)
                .map(move |i| (step, same_model, i))
        })
        .collect();
    let last = path.len().saturating_sub(1);
    let answered: HashSet<&str> = items
        .iter()
        .filter(|(_, _, item)| kind(item) == Some("function_call_output"))
        .filter_map(|(_, _, item)| call_id(item))
        .collect();
    let mut called: HashSet<&str> = HashSet::new();
    let mut ids_sent: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (step, same_model, item) in items {
        match kind(item) {
            Some("reasoning") if !same_model || !has_encrypted_content(item) => continue,
            Some("function_call") => {
                let Some(id) = call_id(item) else { continue };
                if step != last && !answered.contains(id) {
                    continue;
                }
                called.insert(id);
            }
            Some("function_call_output")
                if !call_id(item).is_some_and(|id| called.contains(id)) =>
            {
                continue;
            }
            _ => {}
        }
        let mut item = item.clone();
        let strip =
            item.get("role").is_some() || kind(&item).is_some_and(|k| ID_OPTIONAL.contains(&k));
        if let Some(map) = item.as_object_mut() {
            if strip {
                map.remove("id");
            } else if let Some(id) = map.get("id").and_then(Value::as_str) {
                if !ids_sent.insert(id.to_owned()) {
                    continue;
                }
            }
        }
        out.push(item);
    }
    out
}

/// Whether a node answered by `made_by` (as the server reported it, e.g.
/// `o4-mini-2025-04-16`) was made by the model a request names (`o4-mini`,
/// or the same dated name):
/// encrypted reasoning only decrypts for the model that produced it. Unknown
/// (`None`) counts as the same.
fn same_model(made_by: Option<&str>, model: &str) -> bool {
    made_by.is_none_or(|m| m == model || m.strip_prefix(model).is_some_and(is_date_suffix))
}

/// `-YYYY-MM-DD`: how a snapshot name extends its alias.
fn is_date_suffix(rest: &str) -> bool {
    let bytes = rest.as_bytes();
    bytes.len() == 11
        && bytes.iter().enumerate().all(|(i, b)| match i {
            0 | 5 | 8 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn kind(item: &Value) -> Option<&str> {
    item.get("type").and_then(Value::as_str)
}

fn call_id(item: &Value) -> Option<&str> {
    item.get("call_id").and_then(Value::as_str)
}

fn has_encrypted_content(item: &Value) -> bool {
    item.get("encrypted_content")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::NodeId;

    fn node(input: Vec<Value>, output: Vec<Value>) -> Node {
        let mut node = Node::new(NodeId::local(), None);
        node.input = input;
        node.output = output;
        node
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    fn call(id: &str, call_id: &str) -> Value {
        json!({"id": id, "type": "function_call", "call_id": call_id, "name": "get_weather",
               "arguments": "{\"city\":\"Paris\"}", "status": "completed"})
    }

    fn output(call_id: &str) -> Value {
        json!({"type": "function_call_output", "call_id": call_id, "output": "{\"temp\":18}"})
    }

    #[test]
    fn agent_turns_replay_without_ids_and_with_encrypted_reasoning() {
        let path = [
            node(
                vec![user("Weather in Paris?")],
                vec![
                    json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}),
                    call("fc_1", "call_1"),
                    call("fc_2", "call_2"),
                ],
            ),
            node(
                vec![output("call_1"), output("call_2")],
                vec![
                    json!({"id": "rs_2", "type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}),
                    json!({"id": "msg_1", "type": "message", "role": "assistant", "phase": "final_answer",
                           "status": "completed", "content": [{"type": "output_text", "text": "18°C", "annotations": []}]}),
                ],
            ),
        ];
        assert_eq!(
            replay_items(&path, "gpt-4o-mini"),
            vec![
                user("Weather in Paris?"),
                // Kept with its id: the encrypted content is what the server reads.
                json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}),
                json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
                       "arguments": "{\"city\":\"Paris\"}", "status": "completed"}),
                json!({"type": "function_call", "call_id": "call_2", "name": "get_weather",
                       "arguments": "{\"city\":\"Paris\"}", "status": "completed"}),
                output("call_1"),
                output("call_2"),
                // rs_2 had no encrypted content: dropped, never referenced by id.
                json!({"type": "message", "role": "assistant", "phase": "final_answer",
                       "status": "completed", "content": [{"type": "output_text", "text": "18°C", "annotations": []}]}),
            ]
        );
    }

    #[test]
    fn unpaired_calls_and_outputs_are_dropped_but_the_last_nodes_calls_stay() {
        let path = [
            // An imported node whose call was never answered, and a stray output.
            node(
                vec![user("a"), output("call_x")],
                vec![call("fc_0", "call_0")],
            ),
            node(vec![user("b")], vec![call("fc_1", "call_1")]),
        ];
        assert_eq!(
            replay_items(&path, "gpt-4o-mini"),
            vec![
                user("a"),
                user("b"),
                json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
                       "arguments": "{\"city\":\"Paris\"}", "status": "completed"}),
            ]
        );
    }

    #[test]
    fn encrypted_reasoning_replays_only_to_the_model_that_made_it() {
        let mut made = node(
            vec![user("a")],
            vec![
                json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "e"}),
            ],
        );
        made.model = Some("o4-mini-2025-04-16".to_owned());
        let path = [made];
        assert_eq!(replay_items(&path, "o4-mini").len(), 2);
        assert_eq!(replay_items(&path, "o4-mini-2025-04-16").len(), 2);
        assert_eq!(replay_items(&path, "o3").len(), 1);
        assert_eq!(replay_items(&path, "o4").len(), 1);
    }

    #[test]
    fn no_item_id_is_sent_twice() {
        let reasoning =
            json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "e"});
        let search = json!({"id": "ws_1", "type": "web_search_call", "status": "completed"});
        let path = [
            node(vec![user("a")], vec![reasoning.clone(), search.clone()]),
            // The same items again (e.g. a hand-made history that repeats them).
            node(vec![reasoning.clone(), search.clone()], vec![]),
        ];
        let items = replay_items(&path, "gpt-4o-mini");
        assert_eq!(items, vec![user("a"), reasoning, search]);
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|i| i.get("id").and_then(Value::as_str))
            .collect();
        let unique: HashSet<&&str> = ids.iter().collect();
        assert_eq!(ids.len(), unique.len());
    }
}
