//! One parsed conversation → nodes: a question and its answer become one node,
//! regenerations and edits become siblings.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::document::{Content, Conversation, Message, Str};
use crate::ids::NodeId;
use crate::node::{Node, NodeStatus, Origin, Timestamp, message_item};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

/// A message that becomes part of a node.
struct Kept<'a> {
    role: Role,
    /// Borrowed from the conversation unless it joins several parts.
    text: Cow<'a, str>,
    message_id: &'a str,
    created_at: Option<Timestamp>,
    model: Option<&'a str>,
}

/// Turns one validated conversation into nodes.
pub(super) struct Builder<'a> {
    conversation: &'a Conversation<'a>,
    kept: BTreeMap<&'a str, Kept<'a>>,
    roots: Vec<&'a str>,
}

impl<'a> Builder<'a> {
    /// Checks the mapping's links and picks out the messages that carry text.
    pub(super) fn new(conversation: &'a Conversation<'a>) -> std::result::Result<Self, String> {
        let mapping = &conversation.mapping;
        let mut roots = Vec::new();
        for (id, entry) in mapping {
            let id = id.as_str();
            match entry.parent.as_ref().map(Str::as_str) {
                None => roots.push(id),
                Some(parent) if !mapping.contains_key(parent) => {
                    return Err(format!(
                        "message {id:?} names parent {parent:?}, which is not in the mapping"
                    ));
                }
                Some(_) => {}
            }
            for child in &entry.children {
                let child = child.as_str();
                let Some(child_entry) = mapping.get(child) else {
                    return Err(format!(
                        "message {id:?} lists child {child:?}, which is not in the mapping"
                    ));
                };
                if child_entry.parent.as_ref().map(Str::as_str) != Some(id) {
                    return Err(format!(
                        "message {id:?} lists child {child:?}, whose parent is {:?}",
                        child_entry.parent.as_ref().map(Str::as_str)
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
                stack.extend(entry.children.iter().map(Str::as_str));
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
            .filter_map(|(id, entry)| {
                let id = id.as_str();
                Some((id, kept(id, entry.message.as_ref()?)?))
            })
            .collect();
        Ok(Self {
            conversation,
            kept,
            roots,
        })
    }

    /// The nodes, parents before children.
    pub(super) fn build(&self) -> Vec<Node> {
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
            .map(|e| e.children.iter().map(Str::as_str).collect())
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
        node.output_text = match answers.as_slice() {
            [one] => one.text.clone().into_owned(),
            _ => answers
                .iter()
                .map(|a| a.text.as_ref())
                .collect::<Vec<_>>()
                .join("\n\n"),
        };
        node.model = answers
            .iter()
            .rev()
            .find_map(|a| a.model.map(str::to_owned));
        if answers.is_empty() {
            node.status = NodeStatus::Incomplete;
        }
        node.origin = Origin::backend("import");
        if let Some(id) = self.conversation.key() {
            node.metadata
                .insert("chatgpt.conversation".to_owned(), id.to_owned());
        }
        if let Some(last) = answers.last().copied().or(question) {
            node.metadata
                .insert("chatgpt.message".to_owned(), last.message_id.to_owned());
        }
        if parent_node.is_none() {
            if let Some(title) = &self.conversation.title {
                node.metadata
                    .insert("chatgpt.title".to_owned(), title.as_str().to_owned());
            }
        }
        nodes.push(node);
        nodes.len() - 1
    }
}

/// The message as a kept message, or `None` when it is skipped (no text, or a
/// role other than user and assistant).
fn kept<'a>(id: &'a str, message: &'a Message<'a>) -> Option<Kept<'a>> {
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
        message_id: message.id.as_ref().map_or(id, Str::as_str),
        created_at: message.create_time.and_then(timestamp),
        model: message.metadata.text.as_ref().map(Str::as_str),
    })
}

/// The text of a message: its string parts (or parts with a `text` field) joined
/// by newlines, else its `text` field (code and execution output).
fn content_text<'a>(content: &'a Content<'a>) -> Cow<'a, str> {
    if let Some(parts) = &content.parts {
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.text.as_ref().map(Str::as_str))
            .collect();
        match texts.as_slice() {
            [] => {}
            // The usual case: one part, not copied.
            [one] => return Cow::Borrowed(one),
            _ => return Cow::Owned(texts.join("\n")),
        }
    }
    content
        .text
        .as_ref()
        .map_or(Cow::Borrowed(""), |t| Cow::Borrowed(t.as_str()))
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
