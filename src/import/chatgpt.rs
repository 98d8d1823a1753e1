//! Import of a ChatGPT data export (`conversations.json`) as a tree of local nodes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::ImportReport;
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::{Node, NodeStatus, Origin, Timestamp, message_item};
use crate::tree::ResponseTree;

/// The `what` of the [`Error::Decode`] errors this importer returns.
const WHAT: &str = "ChatGPT export";

/// Imports a ChatGPT data export (the `conversations.json` of "Export data") into
/// `tree`, atomically: either every conversation is added or nothing is.
///
/// The file is an array of conversations (a single conversation object is
/// accepted too). Each conversation's `mapping` holds its messages, each with a
/// `parent` and `children`; editing a message or regenerating an answer in ChatGPT
/// adds a sibling, so a conversation is a tree. It becomes a tree of local nodes:
///
/// - A user message and one assistant message that answers it become **one node**
///   (input: the user message, output: the answer). A user message with several
///   answers (regenerations) becomes one sibling node per answer, each with the
///   same input — the shape [`Engine::fan_out`](crate::Engine::fan_out) makes.
/// - Consecutive assistant messages with no branch between them (an answer split
///   around a tool call) are joined into the same node's output.
/// - A user message with no answer becomes a node with no output and status
///   [`NodeStatus::Incomplete`]; an assistant message with no user message before
///   it becomes a node with no input.
/// - A node's parent is the node holding the message before its user message, so
///   edited questions become siblings too.
/// - Messages without text (the empty root, system and tool messages, images) are
///   skipped; their children attach to the nearest kept ancestor.
///
/// Nodes get fresh local ids, their messages' `create_time`, the answer's
/// `model_slug` as model, origin backend `"import"`, and metadata
/// `chatgpt.conversation` (the conversation id) and `chatgpt.message` (the id of
/// the last message in the node); root nodes also get `chatgpt.title`.
///
/// ```
/// use resptree::{ResponseTree, import};
/// let export = r#"[{"title": "Paris", "mapping": {
///   "root": {"message": null, "parent": null, "children": ["u"]},
///   "u":  {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["Plan a weekend"]}},
///          "parent": "root", "children": ["a1", "a2"]},
///   "a1": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Louvre"]}},
///          "parent": "u", "children": []},
///   "a2": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Orsay"]}},
///          "parent": "u", "children": []}
/// }}]"#;
/// let tree = ResponseTree::in_memory();
/// let report = import::import_chatgpt(&tree, export)?;
/// assert_eq!(report.nodes, 2); // one node per answer to the same question
/// assert_eq!(tree.roots().len(), 2);
/// # Ok::<(), resptree::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Decode`] naming what was wrong if the text is not such an export
/// (malformed JSON, a conversation without `mapping`, a child or parent that is not
/// in the mapping, a child whose `parent` disagrees, messages that no root
/// reaches); [`Error::Storage`] if the store write fails.
pub fn import_chatgpt(tree: &ResponseTree, text: &str) -> Result<ImportReport> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::decode(WHAT, text.as_bytes(), e))?;
    let conversations = match value {
        Value::Array(items) => items,
        other @ Value::Object(_) => vec![other],
        _ => {
            return Err(bad(
                text,
                "expected an array of conversations or one conversation object".to_owned(),
            ));
        }
    };
    let mut nodes = Vec::new();
    for (index, raw) in conversations.into_iter().enumerate() {
        let conversation: Conversation = serde_json::from_value(raw)
            .map_err(|e| bad(text, format!("conversation {index}: {e}")))?;
        let builder = Builder::new(&conversation)
            .map_err(|reason| bad(text, format!("conversation {index}: {reason}")))?;
        nodes.extend(builder.build());
    }
    let report = ImportReport {
        nodes: nodes.len(),
        refs: 0,
    };
    tree.insert_all(nodes, Vec::new())?;
    Ok(report)
}

/// A [`Error::Decode`] for an export that parsed but says something wrong.
fn bad(text: &str, reason: String) -> Error {
    Error::decode(WHAT, text.as_bytes(), reason)
}

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
    mapping: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    children: Vec<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<String>,
    author: Author,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct Author {
    role: String,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Option<Vec<Value>>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

/// A message that becomes part of a node.
struct Kept<'a> {
    role: Role,
    text: String,
    message_id: &'a str,
    created_at: Option<Timestamp>,
    model: Option<String>,
}

/// Turns one validated conversation into nodes.
struct Builder<'a> {
    conversation: &'a Conversation,
    kept: BTreeMap<&'a str, Kept<'a>>,
    roots: Vec<&'a str>,
}

impl<'a> Builder<'a> {
    /// Checks the mapping's links and picks out the messages that carry text.
    fn new(conversation: &'a Conversation) -> std::result::Result<Self, String> {
        let mapping = &conversation.mapping;
        let mut roots = Vec::new();
        for (id, entry) in mapping {
            match entry.parent.as_deref() {
                None => roots.push(id.as_str()),
                Some(parent) if !mapping.contains_key(parent) => {
                    return Err(format!(
                        "message {id:?} names parent {parent:?}, which is not in the mapping"
                    ));
                }
                Some(_) => {}
            }
            for child in &entry.children {
                let Some(child_entry) = mapping.get(child) else {
                    return Err(format!(
                        "message {id:?} lists child {child:?}, which is not in the mapping"
                    ));
                };
                if child_entry.parent.as_deref() != Some(id.as_str()) {
                    return Err(format!(
                        "message {id:?} lists child {child:?}, whose parent is {:?}",
                        child_entry.parent
                    ));
                }
            }
        }
        // Every message has one parent and parents list their children, so the
        // messages reached from the roots are exactly those not on a cycle.
        let mut reached = 0;
        let mut stack = roots.clone();
        while let Some(id) = stack.pop() {
            reached += 1;
            if reached > mapping.len() {
                break;
            }
            if let Some(entry) = mapping.get(id) {
                stack.extend(entry.children.iter().map(String::as_str));
            }
        }
        if reached != mapping.len() {
            return Err(format!(
                "{} of {} messages are not reachable from a root message (a parent cycle)",
                mapping.len().abs_diff(reached.min(mapping.len())),
                mapping.len()
            ));
        }
        let kept = mapping
            .iter()
            .filter_map(|(id, entry)| Some((id.as_str(), kept(id, entry.message.as_ref()?)?)))
            .collect();
        Ok(Self {
            conversation,
            kept,
            roots,
        })
    }

    /// The nodes, parents before children.
    fn build(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut work: Vec<(&str, Option<usize>)> = Vec::new();
        for root in self.roots.iter().rev() {
            if self.kept.contains_key(root) {
                work.push((root, None));
            } else {
                work.extend(self.kids(root).into_iter().rev().map(|k| (k, None)));
            }
        }
        while let Some((id, parent)) = work.pop() {
            let Some(message) = self.kept.get(id) else {
                continue;
            };
            // Children are pushed in reverse so they are processed (and get ids)
            // in the export's order.
            let mut next: Vec<(&str, Option<usize>)> = Vec::new();
            match message.role {
                Role::User => {
                    let kids = self.kids(id);
                    let (answers, others): (Vec<&str>, Vec<&str>) = kids
                        .iter()
                        .partition(|k| self.role(k) == Some(Role::Assistant));
                    if answers.is_empty() {
                        let at = self.push(&mut nodes, parent, Some(message), &[]);
                        next.extend(others.into_iter().map(|k| (k, Some(at))));
                    } else {
                        let mut first = None;
                        for answer in answers {
                            let chain = self.follow(answer);
                            let at = self.push(&mut nodes, parent, Some(message), &chain);
                            first.get_or_insert(at);
                            let last = chain.last().copied().unwrap_or(answer);
                            next.extend(self.kids(last).into_iter().map(|k| (k, Some(at))));
                        }
                        // A user message followed directly by another user message
                        // next to answers (rare): attach it under the first answer.
                        next.extend(others.into_iter().map(|k| (k, first)));
                    }
                }
                Role::Assistant => {
                    let chain = self.follow(id);
                    let at = self.push(&mut nodes, parent, None, &chain);
                    let last = chain.last().copied().unwrap_or(id);
                    next.extend(self.kids(last).into_iter().map(|k| (k, Some(at))));
                }
            }
            work.extend(next.into_iter().rev());
        }
        nodes
    }

    fn role(&self, id: &str) -> Option<Role> {
        self.kept.get(id).map(|k| k.role)
    }

    /// The kept messages directly below `id`, looking through skipped ones.
    fn kids(&self, id: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut stack: Vec<&'a str> = self.children(id).into_iter().rev().collect();
        while let Some(child) = stack.pop() {
            if self.kept.contains_key(child) {
                out.push(child);
            } else {
                stack.extend(self.children(child).into_iter().rev());
            }
        }
        out
    }

    fn children(&self, id: &str) -> Vec<&'a str> {
        self.conversation
            .mapping
            .get(id)
            .map(|e| e.children.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// `answer` and the assistant messages that follow it with no branch between.
    fn follow(&self, answer: &'a str) -> Vec<&'a str> {
        let mut chain = vec![answer];
        loop {
            let last = chain.last().copied().unwrap_or(answer);
            match self.kids(last).as_slice() {
                [only] if self.role(only) == Some(Role::Assistant) => chain.push(only),
                _ => return chain,
            }
        }
    }

    /// Appends the node for `question` and `answers` and returns its position.
    fn push(
        &self,
        nodes: &mut Vec<Node>,
        parent: Option<usize>,
        question: Option<&Kept<'a>>,
        answers: &[&str],
    ) -> usize {
        let parent_node = parent.and_then(|i| nodes.get(i));
        let answers: Vec<&Kept<'a>> = answers.iter().filter_map(|a| self.kept.get(a)).collect();
        let mut node = Node::new(NodeId::local(), parent_node.map(|p| p.id.clone()));
        node.created_at = question
            .and_then(|q| q.created_at)
            .or_else(|| answers.first().and_then(|a| a.created_at))
            .or_else(|| parent_node.map(|p| p.created_at))
            .or_else(|| self.conversation.create_time.and_then(timestamp))
            .unwrap_or_default();
        if let Some(q) = question {
            node.input.push(message_item("user", &q.text));
        }
        node.output = answers.iter().map(|a| assistant_item(&a.text)).collect();
        node.output_text = answers
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        node.model = answers.iter().rev().find_map(|a| a.model.clone());
        if answers.is_empty() {
            node.status = NodeStatus::Incomplete;
        }
        node.origin = Origin::backend("import");
        let conversation = self
            .conversation
            .conversation_id
            .as_ref()
            .or(self.conversation.id.as_ref());
        if let Some(id) = conversation {
            node.metadata
                .insert("chatgpt.conversation".to_owned(), id.clone());
        }
        if let Some(last) = answers.last().copied().or(question) {
            node.metadata
                .insert("chatgpt.message".to_owned(), last.message_id.to_owned());
        }
        if parent_node.is_none() {
            if let Some(title) = &self.conversation.title {
                node.metadata
                    .insert("chatgpt.title".to_owned(), title.clone());
            }
        }
        nodes.push(node);
        nodes.len() - 1
    }
}

/// The message as a kept message, or `None` when it is skipped (no text, or a
/// role other than user and assistant).
fn kept<'a>(id: &'a str, message: &'a Message) -> Option<Kept<'a>> {
    let role = match message.author.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return None,
    };
    let text = message.content.as_ref().map(content_text)?;
    if text.trim().is_empty() {
        return None;
    }
    Some(Kept {
        role,
        text,
        message_id: message.id.as_deref().unwrap_or(id),
        created_at: message.create_time.and_then(timestamp),
        model: message
            .metadata
            .as_ref()
            .and_then(|m| m.get("model_slug"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The text of a message: its string parts (or parts with a `text` field) joined
/// by newlines, else its `text` field (code and execution output).
fn content_text(content: &Content) -> String {
    if let Some(parts) = &content.parts {
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
            .collect();
        if !texts.is_empty() {
            return texts.join("\n");
        }
    }
    content.text.clone().unwrap_or_default()
}

fn timestamp(seconds: f64) -> Option<Timestamp> {
    // Exports hold fractional Unix seconds; anything else is treated as absent.
    (0.0..1e14)
        .contains(&seconds)
        .then(|| Timestamp((seconds * 1000.0).round() as i64))
}

/// An assistant output message in the Responses API shape.
fn assistant_item(text: &str) -> Value {
    serde_json::json!({
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(role: &str, text: &str, t: f64) -> Value {
        json!({"id": format!("m-{text}"), "author": {"role": role}, "create_time": t,
               "content": {"content_type": "text", "parts": [text]}})
    }

    fn entry(message: &Value, parent: Option<&str>, children: &[&str]) -> Value {
        json!({"message": message, "parent": parent, "children": children})
    }

    /// root → system → u1 → {a1 → u2 → a3, a2}, u1' (edited question) → a4.
    fn branched() -> String {
        json!([{
            "title": "Trip", "create_time": 100.0, "conversation_id": "conv-1",
            "mapping": {
                "root": entry(&Value::Null, None, &["sys"]),
                "sys": entry(&msg("system", "", 100.0), Some("root"), &["u1", "u1e"]),
                "u1": entry(&msg("user", "q1", 101.0), Some("sys"), &["a1", "a2"]),
                "a1": entry(&msg("assistant", "r1", 102.0), Some("u1"), &["u2"]),
                "a2": entry(&msg("assistant", "r2", 103.0), Some("u1"), &[]),
                "u2": entry(&msg("user", "q2", 104.0), Some("a1"), &["a3"]),
                "a3": entry(&msg("assistant", "r3", 105.0), Some("u2"), &[]),
                "u1e": entry(&msg("user", "q1 edited", 106.0), Some("sys"), &["a4"]),
                "a4": entry(&msg("assistant", "r4", 107.0), Some("u1e"), &[]),
            }
        }])
        .to_string()
    }

    fn summary(tree: &ResponseTree, id: &NodeId) -> String {
        let n = tree.get(id).unwrap();
        format!("{}>{}", n.user_text().unwrap_or_default(), n.output_text)
    }

    #[test]
    fn pairs_questions_with_answers_and_keeps_branches() {
        let tree = ResponseTree::in_memory();
        let report = import_chatgpt(&tree, &branched()).unwrap();
        assert_eq!(report.nodes, 4);
        let roots = tree.roots();
        let shown: Vec<String> = roots.iter().map(|r| summary(&tree, r)).collect();
        assert_eq!(shown, ["q1>r1", "q1>r2", "q1 edited>r4"]);
        let below = tree.children(&roots[0]).unwrap();
        assert_eq!(below.len(), 1);
        assert_eq!(summary(&tree, &below[0]), "q2>r3");
        let root = tree.get(&roots[0]).unwrap();
        assert_eq!(root.metadata["chatgpt.title"], "Trip");
        assert_eq!(root.metadata["chatgpt.conversation"], "conv-1");
        assert_eq!(root.metadata["chatgpt.message"], "m-r1");
        assert_eq!(root.created_at, Timestamp(101_000));
        assert_eq!(root.origin.backend, "import");
    }

    #[test]
    fn unanswered_question_and_split_answer() {
        let export = json!({"mapping": {
            "u": entry(&msg("user", "q", 1.0), None, &["a"]),
            "a": entry(&msg("assistant", "part one", 2.0), Some("u"), &["t"]),
            "t": entry(&msg("tool", "tool output", 3.0), Some("a"), &["b"]),
            "b": entry(&msg("assistant", "part two", 4.0), Some("t"), &["u2"]),
            "u2": entry(&msg("user", "left hanging", 5.0), Some("b"), &[]),
        }})
        .to_string();
        let tree = ResponseTree::in_memory();
        assert_eq!(import_chatgpt(&tree, &export).unwrap().nodes, 2);
        let root = tree.roots()[0].clone();
        let node = tree.get(&root).unwrap();
        assert_eq!(node.output_text, "part one\n\npart two");
        assert_eq!(node.output.len(), 2);
        let child = tree.get(&tree.children(&root).unwrap()[0]).unwrap();
        assert_eq!(child.user_text().as_deref(), Some("left hanging"));
        assert_eq!(child.status, NodeStatus::Incomplete);
        assert!(child.output.is_empty());
    }

    fn decode_error(text: &str) -> String {
        let tree = ResponseTree::in_memory();
        let err = import_chatgpt(&tree, text).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        assert!(tree.is_empty());
        std::error::Error::source(&err).unwrap().to_string()
    }

    #[test]
    fn malformed_exports_name_the_problem() {
        assert!(decode_error("[{").contains("EOF"));
        assert_eq!(
            decode_error(r#"[{"title": "x"}]"#),
            "conversation 0: missing field `mapping`"
        );
        assert_eq!(
            decode_error("42"),
            "expected an array of conversations or one conversation object"
        );
        let dangling = json!([{"mapping": {"a": entry(&Value::Null, None, &["b"])}}]).to_string();
        assert_eq!(
            decode_error(&dangling),
            r#"conversation 0: message "a" lists child "b", which is not in the mapping"#
        );
        let cycle = json!([{"mapping": {
            "r": entry(&Value::Null, None, &[]),
            "a": entry(&Value::Null, Some("b"), &["b"]),
            "b": entry(&Value::Null, Some("a"), &["a"]),
        }}])
        .to_string();
        assert_eq!(
            decode_error(&cycle),
            "conversation 0: 2 of 3 messages are not reachable from a root message (a parent cycle)"
        );
    }
}
