//! Contexts as persistent lists of immutable, shared segments.
//!
//! A response's context is every item of every response before it on its chain (or
//! its conversation's items) plus its own input. Copying that for each request made
//! a request's cost grow with the history (a branch at 1 000 turns cost 17× one at
//! 10, `docs/benchmarks.md`). Instead, each stored response and each conversation
//! keeps an `Arc<Segment>`: its own items, a pointer to the segment before them and
//! the [`Summary`] of the whole list so far. A child's context is its parent's `Arc`
//! plus its own items, so extending a context costs O(own items) and shares the rest;
//! only listing a conversation's items walks the list.

use std::sync::Arc;

use serde_json::Value;

use super::model::Summary;

/// An immutable run of items at the end of a context, and everything before it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The segment before this one (`None`: this one starts the context).
    parent: Option<Arc<Segment>>,
    /// This segment's own items, oldest first.
    items: Box<[Value]>,
    /// The summary of the whole context up to and including `items`.
    summary: Summary,
}

impl Segment {
    /// `items` appended to the context ending at `parent`.
    pub(crate) fn new(parent: Option<Arc<Segment>>, items: Vec<Value>) -> Arc<Self> {
        let summary = summary_of(parent.as_ref()).extended(&items);
        Arc::new(Self {
            parent,
            items: items.into_boxed_slice(),
            summary,
        })
    }

    /// This segment's own items.
    pub(crate) fn own_items(&self) -> &[Value] {
        &self.items
    }

    /// The summary of the whole context ending here.
    pub(crate) fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Every item of the context ending here, oldest first. Walks the whole list: for
    /// listing a conversation, never on the path of a generated reply.
    pub(crate) fn items(&self) -> Vec<&Value> {
        let mut segments = Vec::new();
        let mut cursor = Some(self);
        while let Some(segment) = cursor {
            segments.push(segment);
            cursor = segment.parent.as_deref();
        }
        let len = usize::try_from(self.summary.len).unwrap_or(0);
        let mut items = Vec::with_capacity(len);
        for segment in segments.iter().rev() {
            items.extend(segment.items.iter());
        }
        items
    }
}

/// The summary of the context ending at `segment` (empty for `None`).
pub(crate) fn summary_of(segment: Option<&Arc<Segment>>) -> Summary {
    segment.map(|s| s.summary().clone()).unwrap_or_default()
}

impl Drop for Segment {
    /// Unlinks the list iteratively: the default recursive drop of a chain whose
    /// segments are owned only by their children would use one stack frame per
    /// segment and overflow a thread's stack on a deep chain.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(segment) = next {
            next = match Arc::into_inner(segment) {
                Some(mut owned) => owned.parent.take(),
                // Someone else still holds it (and so everything before it).
                None => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    #[test]
    fn a_child_shares_its_parent_and_lists_every_item_in_order() {
        let root = Segment::new(None, vec![user("a"), user("b")]);
        let left = Segment::new(Some(Arc::clone(&root)), vec![user("c")]);
        let right = Segment::new(Some(Arc::clone(&root)), vec![user("d"), user("e")]);
        let texts = |s: &Segment| -> Vec<String> {
            s.items()
                .into_iter()
                .map(|i| i["content"][0]["text"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(texts(&left), ["a", "b", "c"]);
        assert_eq!(texts(&right), ["a", "b", "d", "e"]);
        assert_eq!(right.summary().len, 4);
        let all: Vec<Value> = right.items().into_iter().cloned().collect();
        assert_eq!(*right.summary(), Summary::of(&all));
        assert_eq!(right.own_items().len(), 2);
        // Both children point at the one root: nothing was copied.
        assert_eq!(Arc::strong_count(&root), 3);
        assert_eq!(summary_of(None), Summary::default());
    }

    #[test]
    fn dropping_a_very_deep_chain_does_not_overflow_the_stack() {
        // Run on a small stack, so that a recursive drop would certainly overflow.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut tip = Segment::new(None, Vec::new());
                for _ in 0..200_000 {
                    tip = Segment::new(Some(tip), Vec::new());
                }
                assert_eq!(tip.summary().len, 0);
                drop(tip);
            })
            .unwrap();
        handle.join().unwrap();
    }
}
