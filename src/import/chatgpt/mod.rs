//! Import of a ChatGPT data export (`conversations.json`) as a tree of local nodes.
//!
//! Exports run to hundreds of megabytes, so the importer streams: `document`
//! parses the export one conversation at a time into typed structs holding only
//! the fields it uses, `nodes` turns each conversation into nodes as soon as it
//! is parsed (and the parsed conversation is dropped), and this file drives the
//! two and hands the nodes to a writer thread's staged insert (written ahead
//! in chunks where the store can, published at once at the end). What stays in memory is a
//! chunk of nodes and every node's topology, not the document.

mod document;
mod nodes;
mod split;

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use self::nodes::Builder;
use self::split::{Cut, Splitter};
use super::{ImportPhase, ImportProgress, ImportReport};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::tree::{ResponseTree, StagedInsert};

/// The `what` of the [`Error::Decode`] errors this importer returns.
const WHAT: &str = "ChatGPT export";

/// How much of the document's start a [`Error::Decode`] shows.
const HEAD: usize = 512;

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
///   [`NodeStatus::Incomplete`](crate::NodeStatus::Incomplete); an assistant message with no user message before
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
/// reaches), with the position of the conversation (and its id, once it parsed);
/// [`Error::InvalidTree`] or [`Error::Storage`] if the insert fails.
pub fn import_chatgpt(tree: &ResponseTree, text: &str) -> Result<ImportReport> {
    import_chatgpt_reader(tree, text.as_bytes(), |_| {})
}

/// Imports a ChatGPT data export read from `reader` (a file, standard input),
/// calling `on_progress` after each conversation and once more before the write.
///
/// This is [`import_chatgpt`] without holding the document in memory: the
/// export is parsed as it is read, one conversation at a time. Into a store
/// that stages writes (the sled store) the nodes are written ahead in chunks
/// as they are made, invisible, and published in one small write once the
/// whole document has been read and checked, so memory holds one chunk of
/// nodes, not the import (`docs/benchmarks.md`, *Large imports*); other stores
/// get every node in one insert at the end. Either way the import is atomic:
/// a malformed conversation anywhere in the file adds nothing, and an import
/// cut short by a crash is deleted when the store is next opened. `reader`
/// need not be buffered. The reading, parsing and the callback run on the
/// calling thread; the store's writes on a second thread, alongside.
///
/// ```
/// use resptree::{ResponseTree, import};
/// let export = br#"[{"mapping": {
///   "u": {"message": {"author": {"role": "user"}, "content": {"parts": ["Hi"]}}, "children": ["a"]},
///   "a": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["Hello"]}}, "parent": "u"}
/// }}]"#;
/// let tree = ResponseTree::in_memory();
/// let mut seen = Vec::new();
/// let report = import::import_chatgpt_reader(&tree, &export[..], |p| seen.push(p.clone()))?;
/// assert_eq!(report.nodes, 1);
/// let last = seen.last().unwrap();
/// assert_eq!((last.phase, last.conversations, last.nodes), (import::ImportPhase::Writing, 1, 1));
/// assert_eq!(last.bytes, export.len() as u64);
/// # Ok::<(), resptree::Error>(())
/// ```
///
/// # Errors
///
/// As [`import_chatgpt`]; a failure to read from `reader` is an
/// [`Error::Decode`] whose source is the I/O error.
pub fn import_chatgpt_reader<R: Read>(
    tree: &ResponseTree,
    reader: R,
    mut on_progress: impl FnMut(&ImportProgress),
) -> Result<ImportReport> {
    let head = Rc::new(Head::default());
    let counted = Counted {
        inner: reader,
        head: Rc::clone(&head),
    };
    let mut split = Splitter::new(counted);
    // Dropped on any error below, which deletes whatever was staged.
    let insert = tree.staged_insert()?;
    // Two threads, so an import uses both cores of a small machine: this one
    // reads, parses and builds nodes (the reader and the callback stay on the
    // caller's thread, so neither need be `Send`); a writer hands them to the
    // store in chunks. The channel holds one batch, so memory holds at most
    // the writer's chunk, one batch queued and one being built.
    let (nodes, made) = std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Node>>(1);
        // `Builder`, not `scope.spawn`: a thread the OS refuses is an error
        // (the staged chunks are deleted as `insert` drops), not a panic.
        let writer = std::thread::Builder::new()
            .name("resptree-import-writer".into())
            .spawn_scoped(scope, move || -> Result<StagedInsert<'_>> {
                let mut insert = insert;
                for batch in received {
                    for node in batch {
                        insert.add(node)?;
                    }
                }
                Ok(insert)
            })
            .map_err(|e| Error::storage("starting the import's writer thread", e))?;
        let read = read_all(&mut split, &head, &mut on_progress, |batch| {
            // A closed channel means the writer stopped on an error, which
            // its join below returns.
            batches.send(batch).is_ok()
        });
        drop(batches);
        let written = match writer.join() {
            Ok(written) => written,
            // The writer panicked: a bug, not bad input; let it surface.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // A reading error wins: the writer only stopped because reading did.
        let made = read?;
        Ok::<_, Error>((written?, made))
    })?;
    let mut progress = made;
    progress.phase = ImportPhase::Writing;
    progress.bytes = head.read.get();
    on_progress(&progress);
    let report = ImportReport {
        nodes: nodes.len(),
        refs: 0,
    };
    nodes.publish(Vec::new())?;
    Ok(report)
}

/// How many nodes the reading thread hands the writer at a time: small
/// against a staged chunk ([`STAGE_CHUNK`](crate::tree::STAGE_CHUNK)), so
/// the pipeline adds little memory, large enough that the channel's cost
/// vanishes.
const BATCH: usize = 256;

/// Reads every conversation of the document, calling `on_progress` after
/// each and `send` with every [`BATCH`] nodes made (and the rest at the end);
/// stops early, without an error, when `send` returns `false`. Returns the
/// last progress.
fn read_all<R: Read>(
    split: &mut Splitter<Counted<R>>,
    head: &Head,
    on_progress: &mut impl FnMut(&ImportProgress),
    mut send: impl FnMut(Vec<Node>) -> bool,
) -> Result<ImportProgress> {
    let mut progress = ImportProgress {
        phase: ImportPhase::Reading,
        bytes: 0,
        conversations: 0,
        nodes: 0,
    };
    let mut batch = Vec::with_capacity(BATCH);
    for index in 0.. {
        let piece = match split.next_piece() {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(Cut::Read(e)) => return Err(Error::decode(WHAT, &head.bytes(), e)),
            Err(Cut::Shape(message)) => return Err(bad(head, &message)),
            Err(Cut::Truncated(message)) => {
                return Err(bad(head, &format!("conversation {index}: {message}")));
            }
        };
        let conversation: document::Conversation<'_> = serde_json::from_slice(piece.bytes)
            .map_err(|e| {
                let message = split::located(&e, &piece);
                bad(head, &format!("conversation {index}: {message}"))
            })?;
        let built = Builder::new(&conversation)
            .map_err(|reason| bad(head, &conversation_error(index, &conversation, &reason)))?;
        for node in built.build() {
            batch.push(node);
            progress.nodes += 1;
            if batch.len() >= BATCH
                && !send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
            {
                return Ok(progress);
            }
        }
        progress.conversations = index + 1;
        progress.bytes = head.read.get();
        on_progress(&progress);
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(progress)
}

/// What a conversation that parsed but does not hold together says wrong,
/// naming it by position and (when it has one) id.
fn conversation_error(
    index: usize,
    conversation: &document::Conversation<'_>,
    reason: &str,
) -> String {
    match conversation.key() {
        Some(id) => format!("conversation {index} ({id:?}): {reason}"),
        None => format!("conversation {index}: {reason}"),
    }
}

/// A [`Error::Decode`] for an export that parsed but says something wrong.
fn bad(head: &Head, reason: &str) -> Error {
    Error::decode(WHAT, &head.bytes(), reason.to_owned())
}

/// The start of the document (for error messages) and how much of it was read
/// (for progress), kept by [`Counted`] as the parser reads.
#[derive(Default)]
struct Head {
    start: std::cell::RefCell<Vec<u8>>,
    read: Cell<u64>,
}

impl Head {
    fn bytes(&self) -> Vec<u8> {
        self.start.borrow().clone()
    }
}

/// A reader that counts what passes through it and keeps its first [`HEAD`] bytes.
struct Counted<R> {
    inner: R,
    head: Rc<Head>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = self.head.read.get();
        if read < HEAD as u64 {
            let mut start = self.head.start.borrow_mut();
            let wanted = HEAD - start.len();
            start.extend_from_slice(&buf[..n.min(wanted)]);
        }
        self.head.read.set(read + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use crate::node::{NodeStatus, Timestamp};
    use serde_json::{Value, json};

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
            "conversation 0: missing field `mapping` at line 1 column 15"
        );
        assert_eq!(
            decode_error("42"),
            "invalid type: integer `42`, expected an array of conversations or one \
             conversation object at line 1 column 2"
        );
        assert_eq!(
            decode_error("[] []"),
            "trailing characters at line 1 column 4"
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

    /// `n` conversations of one question and answer each; conversation `bad`
    /// (if any) lists a child that is not in its mapping.
    fn many(n: usize, bad: Option<usize>) -> String {
        let conversations: Vec<Value> = (0..n)
            .map(|i| {
                let last: &[&str] = if Some(i) == bad { &["gone"] } else { &[] };
                json!({"id": format!("c{i}"), "title": format!("t{i}"), "mapping": {
                    "u": entry(&msg("user", &format!("q{i}"), 1.0), None, &["a"]),
                    "a": entry(&msg("assistant", &format!("r{i}"), 2.0), Some("u"), last),
                }})
            })
            .collect();
        Value::Array(conversations).to_string()
    }

    #[test]
    fn a_bad_conversation_in_the_middle_is_named_and_nothing_is_written() {
        assert_eq!(
            decode_error(&many(5, Some(3))),
            r#"conversation 3 ("c3"): message "a" lists child "gone", which is not in the mapping"#
        );
        // Broken JSON inside the third conversation: named by position (it has
        // no id until it parses), with the parser's line and column.
        let good = many(5, None);
        let broken = good.replace(r#""title":"t2""#, r#""title":"t2" "x""#);
        assert_ne!(broken, good);
        let message = decode_error(&broken);
        assert!(message.starts_with("conversation 2: "), "{message}");
        assert!(message.contains("line 1 column"), "{message}");
    }

    /// Errors inside a conversation of a pretty-printed export name the
    /// conversation and the line and column in the whole document, wherever
    /// the reader's reads end.
    #[test]
    fn errors_name_document_lines_in_a_multi_line_export() {
        let conversations: Vec<Value> = serde_json::from_str(&many(3, None)).unwrap();
        let pretty = serde_json::to_string_pretty(&conversations).unwrap();
        // The third conversation's title becomes a number: a type error.
        let broken = pretty.replace(r#""title": "t2""#, r#""title": 22"#);
        assert_ne!(broken, pretty);
        let line = broken
            .lines()
            .position(|l| l.contains(r#""title": 22"#))
            .unwrap()
            + 1;
        let column = broken.lines().nth(line - 1).unwrap().find("22").unwrap() + 2;
        let message = decode_error(&broken);
        assert_eq!(
            message,
            format!(
                "conversation 2: invalid type: integer `22`, expected a string at line {line} column {column}"
            )
        );
        // Read a few bytes at a time, the same.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = 5.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let tree = ResponseTree::in_memory();
        let err = import_chatgpt_reader(&tree, Slow(broken.as_bytes()), |_| {}).unwrap_err();
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            message
        );
        assert!(tree.is_empty());
        // The unbroken pretty export imports all three.
        assert_eq!(import_chatgpt(&tree, &pretty).unwrap().nodes, 3);
    }

    /// Strings with escapes are unescaped copies, the rest borrowed: both
    /// read back as written, in ids, titles and texts alike.
    #[test]
    fn escaped_and_plain_strings_read_alike() {
        let export = json!([{"title": "say \"hi\" \u{e9}", "conversation_id": "c\\1", "mapping": {
            "u\n": entry(&msg("user", "line one\nline \"two\" ]}", 1.0), None, &["a"]),
            "a": entry(&msg("assistant", "plain", 2.0), Some("u\n"), &[]),
        }}])
        .to_string();
        assert!(export.contains(r#"\""#), "{export}");
        let tree = ResponseTree::in_memory();
        assert_eq!(import_chatgpt(&tree, &export).unwrap().nodes, 1);
        let node = tree.get(&tree.roots()[0]).unwrap();
        assert_eq!(
            node.user_text().as_deref(),
            Some("line one\nline \"two\" ]}")
        );
        assert_eq!(node.output_text, "plain");
        assert_eq!(node.metadata["chatgpt.title"], "say \"hi\" \u{e9}");
        assert_eq!(node.metadata["chatgpt.conversation"], "c\\1");
    }

    #[test]
    fn the_reader_reports_progress_per_conversation_and_reads_like_the_text() {
        let export = many(4, None);
        let tree = ResponseTree::in_memory();
        let mut seen = Vec::new();
        let report =
            import_chatgpt_reader(&tree, export.as_bytes(), |p| seen.push(p.clone())).unwrap();
        assert_eq!(report.nodes, 4);
        let counts: Vec<(ImportPhase, usize, usize)> = seen
            .iter()
            .map(|p| (p.phase, p.conversations, p.nodes))
            .collect();
        assert_eq!(
            counts,
            [
                (ImportPhase::Reading, 1, 1),
                (ImportPhase::Reading, 2, 2),
                (ImportPhase::Reading, 3, 3),
                (ImportPhase::Reading, 4, 4),
                (ImportPhase::Writing, 4, 4),
            ]
        );
        assert!(seen.windows(2).all(|w| w[0].bytes <= w[1].bytes));
        assert_eq!(seen.last().unwrap().bytes, export.len() as u64);
        // The same nodes as from the text (ids aside, which are fresh).
        let from_text = ResponseTree::in_memory();
        import_chatgpt(&from_text, &export).unwrap();
        let shown =
            |t: &ResponseTree| -> Vec<String> { t.roots().iter().map(|r| summary(t, r)).collect() };
        assert_eq!(shown(&tree), shown(&from_text));
        assert_eq!(shown(&tree), ["q0>r0", "q1>r1", "q2>r2", "q3>r3"]);
    }

    /// Past one chunk of staged nodes into sled: the import is searchable at
    /// once and after a reopen.
    #[cfg(feature = "sled")]
    #[test]
    fn a_large_import_into_sled_is_staged_and_searchable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let n = crate::tree::STAGE_CHUNK + 50;
        {
            let tree = ResponseTree::open(&path).unwrap();
            let report = import_chatgpt(&tree, &many(n, None)).unwrap();
            assert_eq!((report.nodes, tree.len()), (n, n));
            let hits = tree
                .search(&format!("q{}", n - 1), &Default::default())
                .unwrap();
            assert_eq!(hits.len(), 1);
            assert_eq!(summary(&tree, &hits[0].id), format!("q{0}>r{0}", n - 1));
        }
        let tree = ResponseTree::open(&path).unwrap();
        assert_eq!(tree.len(), n);
        assert!(tree.load_problems().is_empty());
        let hits = tree.search("r7", &Default::default()).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(summary(&tree, &hits[0].id), "q7>r7");
    }

    /// A bad conversation after a chunk was staged: nothing of the import is
    /// in the tree, on disk or in the search index.
    #[cfg(feature = "sled")]
    #[test]
    fn a_bad_conversation_after_staged_chunks_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let n = crate::tree::STAGE_CHUNK + 50;
        {
            let tree = ResponseTree::open(&path).unwrap();
            let err = import_chatgpt(&tree, &many(n, Some(n - 1))).unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{err:?}");
            assert!(tree.is_empty());
            assert!(tree.search("q7", &Default::default()).unwrap().is_empty());
        }
        let tree = ResponseTree::open(&path).unwrap();
        assert!(tree.is_empty());
        assert!(tree.load_problems().is_empty());
        assert!(tree.search("q7", &Default::default()).unwrap().is_empty());
    }

    /// A sled store whose `stage_nodes` fails from its `fail_at`-th call on.
    #[cfg(feature = "sled")]
    #[derive(Debug)]
    struct FailingStage {
        inner: crate::store::SledStore,
        calls: std::sync::atomic::AtomicUsize,
        fail_at: usize,
    }

    #[cfg(feature = "sled")]
    impl crate::store::Store for FailingStage {
        fn load(&self) -> Result<crate::store::Loaded> {
            self.inner.load()
        }
        fn node(&self, id: &NodeId) -> Result<Option<crate::Node>> {
            self.inner.node(id)
        }
        fn apply(&self, batch: crate::store::Batch) -> Result<()> {
            self.inner.apply(batch)
        }
        fn attempts(&self) -> Result<Vec<crate::store::Attempt>> {
            self.inner.attempts()
        }
        fn refs(&self) -> Result<Vec<(crate::RefName, NodeId)>> {
            self.inner.refs()
        }
        fn flush(&self) -> Result<()> {
            self.inner.flush()
        }
        fn begin_stage(&self) -> Result<Option<crate::store::StageId>> {
            self.inner.begin_stage()
        }
        fn stage_nodes(&self, stage: crate::store::StageId, nodes: &[crate::Node]) -> Result<()> {
            let call = self
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if call >= self.fail_at {
                return Err(Error::Unsupported("disk full (test)"));
            }
            self.inner.stage_nodes(stage, nodes)
        }
        fn publish_stage(
            &self,
            stage: crate::store::StageId,
            refs: &[(crate::RefName, NodeId)],
        ) -> Result<()> {
            self.inner.publish_stage(stage, refs)
        }
        fn abandon_stage(&self, stage: crate::store::StageId) -> Result<()> {
            self.inner.abandon_stage(stage)
        }
    }

    /// The store fails on the writer thread after a chunk was staged: the
    /// import returns that error (reading stops), and nothing of it is left.
    #[cfg(feature = "sled")]
    #[test]
    fn a_store_failing_while_reading_goes_on_fails_the_import_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let n = 3 * crate::tree::STAGE_CHUNK + 50;
        {
            let store = FailingStage {
                inner: crate::store::SledStore::open(&path).unwrap(),
                calls: std::sync::atomic::AtomicUsize::new(0),
                fail_at: 1,
            };
            let tree = ResponseTree::with_store(store).unwrap();
            let mut last = None;
            let err = import_chatgpt_reader(&tree, many(n, None).as_bytes(), |p| {
                last = Some(p.clone());
            })
            .unwrap_err();
            assert!(
                matches!(err, Error::Unsupported(m) if m.contains("disk full")),
                "{err:?}"
            );
            // Never got to the write phase.
            assert_eq!(last.map(|p| p.phase), Some(ImportPhase::Reading));
            assert!(tree.is_empty());
            assert!(tree.search("q7", &Default::default()).unwrap().is_empty());
        }
        let tree = ResponseTree::open(&path).unwrap();
        assert!(tree.is_empty());
        assert!(tree.load_problems().is_empty());
        assert!(tree.search("q7", &Default::default()).unwrap().is_empty());
    }

    #[test]
    fn parts_and_metadata_of_other_shapes_are_skipped() {
        let export = json!([{"mapping": {
            "u": {"message": {"author": {"role": "user"}, "metadata": [1, 2],
                  "content": {"parts": ["a", {"text": "b"}, {"image": 1}, 7, null, ["c"], {"text": 3}]}},
                  "children": ["a"]},
            "a": {"message": {"author": {"role": "assistant"}, "metadata": {"model_slug": "gpt-4o", "x": {"model_slug": "no"}},
                  "content": {"parts": [{"text": "ok", "text": "fine"}]}}, "parent": "u"},
        }}])
        .to_string();
        let tree = ResponseTree::in_memory();
        assert_eq!(import_chatgpt(&tree, &export).unwrap().nodes, 1);
        let node = tree.get(&tree.roots()[0]).unwrap();
        assert_eq!(node.user_text().as_deref(), Some("a\nb"));
        // The last of two `text` keys wins, as it did in a `serde_json::Map`.
        assert_eq!(node.output_text, "fine");
        assert_eq!(node.model.as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn a_failing_reader_is_a_decode_error() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 = 0;
                buf[..2].copy_from_slice(b"[{");
                Ok(2)
            }
        }
        let tree = ResponseTree::in_memory();
        let err = import_chatgpt_reader(&tree, Failing(1), |_| {}).unwrap_err();
        assert!(
            matches!(&err, Error::Decode { snippet, .. } if snippet == "[{"),
            "{err:?}"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("disk on fire"), "{source}");
        assert!(tree.is_empty());
    }
}
