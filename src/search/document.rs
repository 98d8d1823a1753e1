//! What of a node is searched: the text of its input and output items.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::node::Node;

use super::Field;
use super::tokens;
#[cfg(test)]
use super::tokens::tokens;

/// Keys whose string values are text a person would search for: message
/// text (`text`, or `content` when it is a plain string), function call
/// names and arguments, function call outputs, refusals. Ids, types, roles,
/// statuses and `encrypted_content` are not.
const TEXT_KEYS: &[&str] = &["text", "content", "output", "arguments", "name", "refusal"];

/// The prefix of the index term that names a node's model: `\u{1}` is not
/// alphanumeric, so no token can collide with it.
const MODEL_PREFIX: char = '\u{1}';

/// One searchable piece of a node: the text of one input or output item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Input or output.
    pub(crate) field: Field,
    /// The item's position in the node's input or output.
    pub(crate) item: usize,
    /// The item's text: its strings under [`TEXT_KEYS`], joined by newlines.
    pub(crate) text: String,
}

/// The searchable text of `node`, one segment per item that has any. A node
/// whose output items hold no text but whose `output_text` does (a node built
/// by hand) is searched through `output_text`.
pub(crate) fn segments(node: &Node) -> Vec<Segment> {
    let mut out = Vec::new();
    for (field, items) in [(Field::Input, &node.input), (Field::Output, &node.output)] {
        for (item, value) in items.iter().enumerate() {
            let mut parts = Vec::new();
            collect(value, true, &mut parts);
            if !parts.is_empty() {
                out.push(Segment {
                    field,
                    item,
                    text: parts.join("\n"),
                });
            }
        }
    }
    if !out.iter().any(|s| s.field == Field::Output) && !node.output_text.is_empty() {
        out.push(Segment {
            field: Field::Output,
            item: 0,
            text: node.output_text.clone(),
        });
    }
    out
}

/// Pushes the text strings of `value`: strings under [`TEXT_KEYS`] at any
/// depth, and `value` itself when it is a string in a text position.
fn collect<'a>(value: &'a Value, text_position: bool, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) if text_position && !s.is_empty() => out.push(s),
        Value::Array(items) => {
            for item in items {
                collect(item, text_position, out);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                collect(value, TEXT_KEYS.contains(&key.as_str()), out);
            }
        }
        _ => {}
    }
}

/// The index entries of `node`: each distinct term of its text with how often
/// it occurs, plus its model's term ([`model_term`]) once. Sorted by term.
///
/// The same terms as tokenising each of [`segments`]' texts, computed without
/// building them: every stored node goes through here when the index is
/// written, so the strings are tokenised where they lie (a segment's parts
/// are joined by a newline, which separates tokens anyway) and only each
/// distinct term is allocated.
pub(crate) fn index_terms(node: &Node) -> Vec<(String, u32)> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut buffer = String::new();
    let mut count = |term: &str| match counts.get_mut(term) {
        Some(n) => *n = n.saturating_add(1),
        None => {
            counts.insert(term.to_owned(), 1);
        }
    };
    let mut parts = Vec::new();
    let mut output_text = false;
    for (field, items) in [(Field::Input, &node.input), (Field::Output, &node.output)] {
        for value in items {
            parts.clear();
            collect(value, true, &mut parts);
            output_text |= field == Field::Output && !parts.is_empty();
            for part in &parts {
                tokens::for_each_term(part, &mut buffer, &mut count);
            }
        }
    }
    if !output_text {
        tokens::for_each_term(&node.output_text, &mut buffer, &mut count);
    }
    if let Some(model) = &node.model {
        counts.insert(model_term(model), 1);
    }
    counts.into_iter().collect()
}

/// The index term that marks nodes answered by `model` (compared exactly, not
/// tokenised): a prefix no token can have, then the model name cut to
/// [`tokens::MAX_TERM_BYTES`] with NUL bytes dropped (index keys use NUL as a
/// separator). Hits are still checked against the node's exact model.
pub(crate) fn model_term(model: &str) -> String {
    let clean: String = model.chars().filter(|c| *c != '\0').collect();
    let mut term = String::with_capacity(clean.len() + 1);
    term.push(MODEL_PREFIX);
    term.push_str(tokens::term(&clean));
    term
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use serde_json::json;

    #[test]
    fn text_comes_from_messages_calls_and_outputs_not_ids() {
        let mut node = Node::new(NodeId::local(), None).with_user_text("Where is Paris?");
        node.input.push(json!({"type": "function_call_output", "call_id": "call_secretid", "output": "{\"temp\": 21}"}));
        node.output = vec![
            json!({"type": "reasoning", "id": "rs_1", "encrypted_content": "opaque", "summary": [{"type": "summary_text", "text": "thinking"}]}),
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_x", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}),
        ];
        let segments = segments(&node);
        let text: Vec<(Field, usize, &str)> = segments
            .iter()
            .map(|s| (s.field, s.item, s.text.as_str()))
            .collect();
        assert_eq!(
            text,
            [
                (Field::Input, 0, "Where is Paris?"),
                (Field::Input, 1, "{\"temp\": 21}"),
                (Field::Output, 0, "thinking"),
                (Field::Output, 1, "{\"city\":\"Paris\"}\nget_weather"),
            ]
        );
    }

    #[test]
    fn output_text_stands_in_for_textless_output() {
        let mut node = Node::new(NodeId::local(), None);
        node.output_text = "hand made".to_owned();
        assert_eq!(segments(&node)[0].text, "hand made");
    }

    /// The reference: [`index_terms`] as tokenising [`segments`] gives it.
    fn terms_through_segments(node: &Node) -> Vec<(String, u32)> {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for segment in segments(node) {
            for token in tokens(&segment.text) {
                *counts
                    .entry(tokens::term(&token.text).to_owned())
                    .or_default() += 1;
            }
        }
        if let Some(model) = &node.model {
            counts.insert(model_term(model), 1);
        }
        counts.into_iter().collect()
    }

    #[test]
    fn index_terms_are_the_terms_of_the_segments() {
        let mut node = Node::new(NodeId::local(), None).with_user_text("Where is Paris? ÉTÉ");
        node.input.push(json!({"type": "function_call_output", "call_id": "call_secretid", "output": "{\"temp\": 21}"}));
        node.input.push(json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b a"}]}));
        node.output = vec![
            json!({"type": "reasoning", "id": "rs_1", "encrypted_content": "opaque", "summary": [{"type": "summary_text", "text": "thinking"}]}),
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_x", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}),
        ];
        node.output_text = "not searched: the output has text".to_owned();
        node.model = Some("o3".to_owned());
        assert_eq!(index_terms(&node), terms_through_segments(&node));
        // Output without text: `output_text` stands in.
        node.output = vec![json!({"type": "reasoning", "id": "rs_2", "encrypted_content": "x"})];
        assert_eq!(index_terms(&node), terms_through_segments(&node));
        assert!(index_terms(&node).contains(&("searched".to_owned(), 1)));
    }

    #[test]
    fn index_terms_count_tokens_and_mark_the_model() {
        let mut node = Node::new(NodeId::local(), None)
            .with_user_text("the cat and THE dog")
            .with_output_text("Cat!");
        node.model = Some("gpt-4o\0x".to_owned());
        let terms = index_terms(&node);
        assert!(terms.contains(&("the".to_owned(), 2)));
        assert!(terms.contains(&("cat".to_owned(), 2)));
        assert!(terms.contains(&("\u{1}gpt-4ox".to_owned(), 1)));
    }
}
