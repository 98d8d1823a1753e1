//! [`Preview`]: the few fields of a node that a one-line view shows, taken
//! from a [`Node`] or decoded straight from a node's JSON record.
//!
//! Both ways live here, side by side, because they must agree: a renderer
//! reading from sled (which decodes previews from the stored JSON) and one
//! reading from memory (which takes them from the record) must draw the same
//! lines. The decoder mirrors what [`Node::user_text`], [`Node::tool_calls`],
//! [`tool_output_of`] and [`item_text`] read from the raw items, and skips
//! everything else unparsed ([`IgnoredAny`]): the text of every output
//! message, the settings, the origin. Decoding a whole [`Node`] builds a
//! `serde_json::Value` tree for every item, and was most of the time of a
//! deep chain's render from sled (`docs/benchmarks.md`, section 4).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Node, NodeStatus, ToolCall, ToolOutput, tool_output_of};

/// Answers `value` for every JSON scalar (`null`, booleans, numbers).
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Answers the strings, borrowed from the record when they hold no escape.
macro_rules! strings_are {
    ($wrap:expr) => {
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Borrowed(s)))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Owned(s.to_owned())))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Owned(s)))
        }
    };
}

/// What a one-line view of a node shows, without the rest of its record:
/// the user's text, the answers to function calls it sends, the output text,
/// the function calls it makes, its status and token counts.
///
/// Read in bulk with [`Store::for_each_preview`](crate::store::Store::for_each_preview),
/// which a store can decode far more cheaply than whole [`Node`]s; the
/// renderers draw from previews. Built from a node with [`Preview::of`].
///
/// ```
/// use resptree::{Node, NodeId, node::Preview};
/// let node = Node::new(NodeId::new("resp_a")?, None)
///     .with_user_text("Plan a weekend")
///     .with_output_text("Louvre on Saturday.");
/// let preview = Preview::of(&node);
/// assert_eq!(preview.user_text.as_deref(), Some("Plan a weekend"));
/// assert_eq!(preview.output_text, "Louvre on Saturday.");
/// assert!(preview.tool_calls.is_empty());
/// # Ok::<(), resptree::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preview<'a> {
    /// The text of the last user message of the input ([`Node::user_text`]),
    /// else of the first input item ([`item_text`](super::item_text));
    /// `None` when the input is empty.
    pub user_text: Option<Cow<'a, str>>,
    /// The `type` of the first input item, when it is a string: what a view
    /// shows for an input without text.
    pub first_input_type: Option<Cow<'a, str>>,
    /// The answers to function calls in the input, in order
    /// ([`tool_output_of`]).
    pub tool_outputs: Vec<ToolOutput>,
    /// The function calls of the output, in order ([`Node::tool_calls`]).
    pub tool_calls: Vec<ToolCall>,
    /// [`Node::output_text`].
    pub output_text: Cow<'a, str>,
    /// [`Node::status`].
    pub status: NodeStatus,
    /// The usage's `input_tokens`.
    pub input_tokens: u64,
    /// The usage's `output_tokens`.
    pub output_tokens: u64,
}

impl<'a> Preview<'a> {
    /// The preview of `node`, borrowing its texts where they are stored whole.
    pub fn of(node: &'a Node) -> Self {
        let user = node
            .input
            .iter()
            .rev()
            .find(|item| item.get("role").and_then(Value::as_str) == Some("user"));
        let first = node.input.first();
        Self {
            user_text: user.or(first).map(content_of),
            first_input_type: first
                .and_then(|item| item.get("type"))
                .and_then(Value::as_str)
                .map(Cow::Borrowed),
            tool_outputs: node.input.iter().filter_map(tool_output_of).collect(),
            tool_calls: node.tool_calls(),
            output_text: Cow::Borrowed(&node.output_text),
            status: node.status,
            input_tokens: node.usage.input_tokens,
            output_tokens: node.usage.output_tokens,
        }
    }
}

/// [`item_text`](super::item_text), borrowing a string `content`.
fn content_of(item: &Value) -> Cow<'_, str> {
    match item.get("content") {
        Some(Value::String(s)) => Cow::Borrowed(s),
        _ => Cow::Owned(super::item_text(item)),
    }
}

/// A node's JSON record (as [`Node`] serialises) decoded as its
/// [`Preview`] only. Fails where decoding the node would fail on the fields a
/// preview reads (the status, the token counts, the items' and output text's
/// JSON types, the document's syntax); damage elsewhere in the record is not
/// seen here.
#[derive(Debug)]
pub(crate) struct StoredPreview<'a>(pub(crate) Preview<'a>);

impl<'de> Deserialize<'de> for StoredPreview<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = StoredPreview<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut input = Input::default();
        let mut calls = Calls::default();
        let mut output_text = Cow::Borrowed("");
        let mut status = None;
        let mut tokens = Tokens::default();
        // A key given twice counts once, as its last value (what a
        // `serde_json::Value` object keeps).
        while let Some(key) = map.next_key::<RecordKey>()? {
            match key {
                RecordKey::Input => input = map.next_value()?,
                RecordKey::Output => calls = map.next_value()?,
                RecordKey::OutputText => output_text = map.next_value::<Text<'de>>()?.0,
                RecordKey::Status => status = Some(map.next_value::<NodeStatus>()?),
                RecordKey::Usage => tokens = map.next_value()?,
                RecordKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let status = status.ok_or_else(|| de::Error::missing_field("status"))?;
        Ok(StoredPreview(Preview {
            user_text: input.last_user.or(input.first_text),
            first_input_type: input.first_type,
            tool_outputs: input.tool_outputs,
            tool_calls: calls.0,
            output_text,
            status,
            input_tokens: tokens.input_tokens,
            output_tokens: tokens.output_tokens,
        }))
    }
}

/// The keys of a node record that a preview reads.
enum RecordKey {
    Input,
    Output,
    OutputText,
    Status,
    Usage,
    Other,
}

impl<'de> Deserialize<'de> for RecordKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_key(deserializer, |key| match key {
            b"input" => RecordKey::Input,
            b"output" => RecordKey::Output,
            b"output_text" => RecordKey::OutputText,
            b"status" => RecordKey::Status,
            b"usage" => RecordKey::Usage,
            _ => RecordKey::Other,
        })
    }
}

/// Reads a map key as bytes and names it with `classify` (both key enums
/// share this visitor): compared with
/// ASCII names, a key needs no UTF-8 check.
fn deserialize_key<'de, D, K, F>(deserializer: D, classify: F) -> Result<K, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&[u8]) -> K,
{
    struct KeyVisitor<F>(F);
    impl<K, F: FnOnce(&[u8]) -> K> Visitor<'_> for KeyVisitor<F> {
        type Value = K;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a field name")
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<K, E> {
            Ok((self.0)(key.as_bytes()))
        }
        fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<K, E> {
            Ok((self.0)(key))
        }
    }
    deserializer.deserialize_bytes(KeyVisitor(classify))
}

/// The token counts of a record's `usage`.
#[derive(Default, Deserialize)]
struct Tokens {
    input_tokens: u64,
    output_tokens: u64,
}

/// What a preview takes from the input items, gathered in one pass.
#[derive(Default)]
struct Input<'a> {
    first_text: Option<Cow<'a, str>>,
    first_type: Option<Cow<'a, str>>,
    last_user: Option<Cow<'a, str>>,
    tool_outputs: Vec<ToolOutput>,
}

impl<'de> Deserialize<'de> for Input<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;
        impl<'de> Visitor<'de> for InputVisitor {
            type Value = Input<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of input items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input<'de>, A::Error> {
                let mut input = Input::default();
                let mut first = true;
                while let Some(InputItem(item)) = seq.next_element()? {
                    if first {
                        first = false;
                        input.first_text = Some(item.content.clone());
                        input.first_type = item.kind.clone();
                    }
                    if item.kind.as_deref() == Some("function_call_output") {
                        if let Some(call_id) = item.call_id {
                            input
                                .tool_outputs
                                .push(ToolOutput::new(call_id, item.output.into_owned()));
                        }
                    }
                    if item.role.as_deref() == Some("user") {
                        input.last_user = Some(item.content);
                    }
                }
                Ok(input)
            }
        }
        deserializer.deserialize_seq(InputVisitor)
    }
}

/// The function calls among a record's output items.
#[derive(Default)]
struct Calls(Vec<ToolCall>);

impl<'de> Deserialize<'de> for Calls {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CallsVisitor;
        impl<'de> Visitor<'de> for CallsVisitor {
            type Value = Calls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of output items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Calls, A::Error> {
                let mut calls = Vec::new();
                while let Some(OutputItem(item)) = seq.next_element()? {
                    if item.kind.as_deref() != Some("function_call") {
                        continue;
                    }
                    if let Some(call_id) = item.call_id {
                        calls.push(ToolCall {
                            call_id: call_id.into_owned(),
                            name: item.name.map(Cow::into_owned).unwrap_or_default(),
                            arguments: item.arguments.map(Cow::into_owned).unwrap_or_default(),
                        });
                    }
                }
                Ok(Calls(calls))
            }
        }
        deserializer.deserialize_seq(CallsVisitor)
    }
}

/// The keys of an input or output item that a preview reads: each is what
/// `item.get(key)` would see, a string field being `None` when the value is
/// not a string, and an item that is not an object having none.
#[derive(Default)]
struct Item<'a> {
    kind: Option<Cow<'a, str>>,
    role: Option<Cow<'a, str>>,
    call_id: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    arguments: Option<Cow<'a, str>>,
    /// [`item_text`](super::item_text) of the item.
    content: Cow<'a, str>,
    /// A function call output's `output`, as [`tool_output_of`] reads it.
    output: Cow<'a, str>,
}

/// An input item: its role, type, text, and the call id and output of a
/// function call output.
struct InputItem<'a>(Item<'a>);

impl<'de> Deserialize<'de> for InputItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ItemVisitor { output: false })
            .map(InputItem)
    }
}

/// An output item: its type, and the call id, name and arguments of a
/// function call. The content of a message, most of a record, is skipped.
struct OutputItem<'a>(Item<'a>);

impl<'de> Deserialize<'de> for OutputItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ItemVisitor { output: true })
            .map(OutputItem)
    }
}

/// Reads the keys of an input item, or of an output item when `output`.
struct ItemVisitor {
    output: bool,
}

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item<'de>, A::Error> {
        let mut item = Item::default();
        while let Some(key) = map.next_key::<ItemKey>()? {
            match (key, self.output) {
                (ItemKey::Type, _) => item.kind = map.next_value::<Loose<'de>>()?.0,
                (ItemKey::CallId, _) => item.call_id = map.next_value::<Loose<'de>>()?.0,
                (ItemKey::Role, false) => item.role = map.next_value::<Loose<'de>>()?.0,
                (ItemKey::Content, false) => item.content = map.next_value::<Content<'de>>()?.0,
                (ItemKey::Output, false) => item.output = map.next_value::<Content<'de>>()?.0,
                (ItemKey::Name, true) => item.name = map.next_value::<Loose<'de>>()?.0,
                (ItemKey::Arguments, true) => item.arguments = map.next_value::<Loose<'de>>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(item)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item<'de>, A::Error> {
        drain_seq(seq)?;
        Ok(Item::default())
    }
    strings_are!(|_: Cow<'de, str>| Item::default());
    scalars_are!(Item::default());
}

/// The keys of an item, or of a content part, that a preview reads.
enum ItemKey {
    Text,
    Type,
    Role,
    CallId,
    Name,
    Arguments,
    Content,
    Output,
    Other,
}

impl<'de> Deserialize<'de> for ItemKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_key(deserializer, |key| match key {
            b"text" => ItemKey::Text,
            b"type" => ItemKey::Type,
            b"role" => ItemKey::Role,
            b"call_id" => ItemKey::CallId,
            b"name" => ItemKey::Name,
            b"arguments" => ItemKey::Arguments,
            b"content" => ItemKey::Content,
            b"output" => ItemKey::Output,
            _ => ItemKey::Other,
        })
    }
}

/// A string field: the string, or `None` for any other JSON value (what
/// `value.as_str()` gives).
struct Loose<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            strings_are!(|s| Loose(Some(s)));
            scalars_are!(Loose(None));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Loose<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Loose<'de>, A::Error> {
                drain_map(map)?;
                Ok(Loose(None))
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

/// A content value as [`item_text`](super::item_text) reads it: a string
/// whole, an array as the `text` strings of its parts joined, anything else
/// empty.
struct Content<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Content<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            strings_are!(Content);
            scalars_are!(Content(Cow::Borrowed("")));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'de>, A::Error> {
                // One text part (the usual case) is kept as it is, borrowed.
                let mut joined: Option<Cow<'de, str>> = None;
                while let Some(part) = seq.next_element::<Part<'de>>()? {
                    let Some(text) = part.0 else { continue };
                    joined = Some(match joined {
                        None => text,
                        Some(before) => Cow::Owned(before.into_owned() + &text),
                    });
                }
                Ok(Content(joined.unwrap_or(Cow::Borrowed(""))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Content<'de>, A::Error> {
                drain_map(map)?;
                Ok(Content(Cow::Borrowed("")))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// A content part: its `text` when that is a string.
struct Part<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Part<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartVisitor;
        impl<'de> Visitor<'de> for PartVisitor {
            type Value = Part<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content part")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part<'de>, A::Error> {
                let mut text = None;
                while let Some(key) = map.next_key::<ItemKey>()? {
                    if matches!(key, ItemKey::Text) {
                        text = map.next_value::<Loose<'de>>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Part(text))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Part<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(Part(None))
            }
            strings_are!(|_: Cow<'de, str>| Part(None));
            scalars_are!(Part(None));
        }
        deserializer.deserialize_any(PartVisitor)
    }
}

/// A string that must be one ([`Node::output_text`]).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            strings_are!(Text);
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use serde_json::json;

    /// The preview decoded from `node`'s JSON equals the one taken from it.
    fn agrees(node: &Node) -> Preview<'static> {
        let text = serde_json::to_string(node).unwrap();
        let decoded = serde_json::from_str::<StoredPreview<'_>>(&text).unwrap().0;
        let taken = Preview::of(node);
        assert_eq!(decoded, taken, "{text}");
        owned(taken)
    }

    fn owned(p: Preview<'_>) -> Preview<'static> {
        Preview {
            user_text: p.user_text.map(|t| Cow::Owned(t.into_owned())),
            first_input_type: p.first_input_type.map(|t| Cow::Owned(t.into_owned())),
            tool_outputs: p.tool_outputs,
            tool_calls: p.tool_calls,
            output_text: Cow::Owned(p.output_text.into_owned()),
            status: p.status,
            input_tokens: p.input_tokens,
            output_tokens: p.output_tokens,
        }
    }

    fn node() -> Node {
        Node::new(NodeId::new("resp_p").unwrap(), None)
    }

    #[test]
    fn a_plain_turn_previews_the_same_both_ways() {
        let mut n = node()
            .with_user_text("Plan\na \"weekend\"")
            .with_output_text("Louvre.");
        n.usage = crate::node::Usage::new(12, 3);
        n.model = Some("gpt-test".into());
        let p = agrees(&n);
        assert_eq!(p.user_text.as_deref(), Some("Plan\na \"weekend\""));
        assert_eq!((p.input_tokens, p.output_tokens), (12, 3));
        assert_eq!(p.output_text, "Louvre.");
    }

    #[test]
    fn odd_items_preview_the_same_both_ways() {
        let mut n = node();
        // Not objects, non-string fields, part arrays, a last user message
        // after a first non-user item, tool outputs of every shape.
        n.input = vec![
            json!({"type": "function_call_output", "call_id": "c1", "output": "18°C"}),
            json!("just a string"),
            json!([1, 2]),
            json!({"role": "user", "content": [
                {"type": "input_text", "text": "sec"}, {"text": 5}, "x", {"text": "ond"}
            ]}),
            json!({"role": 7, "content": "not a user"}),
            json!({"type": "function_call_output", "call_id": "c2",
                   "output": [{"type": "output_text", "text": "a"}, {"text": "b"}]}),
            json!({"type": "function_call_output", "call_id": "c3", "output": {"k": 1}}),
            json!({"type": "function_call_output", "call_id": 4, "output": "no id"}),
            json!({"type": "function_call_output", "call_id": "c5"}),
        ];
        n.output = vec![
            json!({"type": "reasoning", "summary": [{"text": "hm"}]}),
            json!({"type": "function_call", "call_id": "k1", "name": "get", "arguments": "{\"a\":1}"}),
            json!({"type": "function_call", "name": "no call id"}),
            json!({"type": "function_call", "call_id": "k2", "name": 3}),
            json!(null),
        ];
        n.status = NodeStatus::Incomplete;
        let p = agrees(&n);
        assert_eq!(p.user_text.as_deref(), Some("second"));
        assert_eq!(p.first_input_type.as_deref(), Some("function_call_output"));
        assert_eq!(p.tool_outputs.len(), 4);
        assert_eq!(p.tool_calls.len(), 2);
    }

    #[test]
    fn without_a_user_message_the_first_item_speaks() {
        let mut n = node();
        n.input = vec![
            json!({"role": "developer", "content": "be brief"}),
            json!({"role": "user"}),
        ];
        // The last user message has no text: it still wins, empty.
        assert_eq!(agrees(&n).user_text.as_deref(), Some(""));
        n.input = vec![json!({"role": "developer", "content": [{"text": "be brief"}]})];
        assert_eq!(agrees(&n).user_text.as_deref(), Some("be brief"));
        n.input.clear();
        assert_eq!(agrees(&n).user_text, None);
    }

    #[test]
    fn a_record_without_status_or_with_bad_types_is_refused() {
        let bad = [
            r#"{"input": []}"#,
            r#"{"status": "completed", "output_text": 5}"#,
            r#"{"status": "completed", "input": {}}"#,
            r#"{"status": "completed", "usage": {"input_tokens": "many"}}"#,
            r#"{"status": "completed", "input": [{"content": "unterminated}]}"#,
        ];
        for text in bad {
            assert!(
                serde_json::from_str::<StoredPreview<'_>>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn plain_strings_are_borrowed_from_the_record() {
        let n = node().with_user_text("hello").with_output_text("world");
        let text = serde_json::to_string(&n).unwrap();
        let p = serde_json::from_str::<StoredPreview<'_>>(&text).unwrap().0;
        assert!(matches!(p.user_text, Some(Cow::Borrowed("hello"))));
        assert!(matches!(p.output_text, Cow::Borrowed("world")));
    }
}
