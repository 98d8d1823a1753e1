//! A synthetic ChatGPT data export (`conversations.json`) shaped like a real one:
//! each message carries the fields "Export data" writes (author, status, weight,
//! metadata with model slug, request id, finish details, …), not only the few
//! the importer reads, so parsing pays for skipping them as it would on a real
//! file. Deterministic: the same sizes give the same bytes.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// Writes an export of `conversations` linear conversations of `messages`
/// messages each (alternating user and assistant, after the empty root and
/// system entries every real conversation starts with) to `path`; returns the
/// file's size in bytes.
pub(crate) fn write_export(path: &Path, conversations: usize, messages: usize) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"[").unwrap();
    let mut words = Words(0x2545_f491_4f6c_dd1d);
    for c in 0..conversations {
        if c > 0 {
            out.write_all(b",").unwrap();
        }
        serde_json::to_writer(&mut out, &conversation(c, messages, &mut words)).unwrap();
    }
    out.write_all(b"]").unwrap();
    out.flush().unwrap();
    drop(out);
    std::fs::metadata(path).unwrap().len()
}

fn conversation(c: usize, messages: usize, words: &mut Words) -> Value {
    let id = |m: usize| uuid(c, m);
    let started = 1_700_000_000.0 + c as f64 * 3_600.0;
    let mut mapping = serde_json::Map::new();
    // Entry 0 is the empty root, entry 1 the (hidden, empty) system message,
    // entries 2.. the conversation.
    let last = messages + 1;
    for m in 0..=last {
        let parent = m.checked_sub(1).map(id);
        let children: Vec<String> = if m < last {
            vec![id(m + 1)]
        } else {
            Vec::new()
        };
        let message = match m {
            0 => Value::Null,
            1 => message(&id(1), "system", "", started, parent.as_deref()),
            _ => {
                let (role, len) = if m % 2 == 0 {
                    ("user", 100)
                } else {
                    ("assistant", 400)
                };
                let text = words.text(len);
                let at = started + m as f64 * 20.0;
                message(&id(m), role, &text, at, parent.as_deref())
            }
        };
        mapping.insert(
            id(m),
            json!({"id": id(m), "message": message, "parent": parent, "children": children}),
        );
    }
    json!({
        "title": format!("Conversation {c}"),
        "create_time": started,
        "update_time": started + 3_000.0,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": id(last),
        "plugin_ids": null,
        "conversation_id": uuid(c, usize::MAX),
        "conversation_template_id": null,
        "gizmo_id": null,
        "is_archived": false,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": uuid(c, usize::MAX),
    })
}

fn message(id: &str, role: &str, text: &str, at: f64, parent: Option<&str>) -> Value {
    json!({
        "id": id,
        "author": {"role": role, "name": null, "metadata": {}},
        "create_time": at,
        "update_time": null,
        "content": {"content_type": "text", "parts": [text]},
        "status": "finished_successfully",
        "end_turn": if role == "assistant" { json!(true) } else { Value::Null },
        "weight": 1.0,
        "metadata": {
            "request_id": "8a1b2c3d4e5f6a7b-IAD",
            "timestamp_": "absolute",
            "message_type": null,
            "model_slug": "gpt-4o",
            "default_model_slug": "gpt-4o",
            "parent_id": parent,
            "finish_details": {"type": "stop", "stop_tokens": [200_002]},
            "is_complete": true,
            "citations": [],
        },
        "recipient": "all",
        "channel": null,
    })
}

/// A uuid-shaped id, distinct per (conversation, message).
fn uuid(c: usize, m: usize) -> String {
    let x = (c as u128) << 64 | m as u128;
    let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    let s = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..]
    )
}

/// Words of varying length from a xorshift generator.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// About `len` bytes of lower-case words.
    fn text(&mut self, len: usize) -> String {
        const WORDS: &[&str] = &[
            "the",
            "tree",
            "branch",
            "answer",
            "question",
            "model",
            "response",
            "weekend",
            "museum",
            "because",
            "would",
            "consider",
            "example",
            "important",
            "context",
            "token",
            "Paris",
            "river",
            "walk",
            "plan",
            "cheaper",
            "option",
            "first",
            "then",
            "finally",
            "however",
            "which",
            "data",
            "store",
            "import",
            "export",
            "node",
        ];
        let mut out = String::with_capacity(len + 16);
        while out.len() < len {
            let r = self.next();
            out.push_str(WORDS[(r % WORDS.len() as u64) as usize]);
            out.push(if r % 13 == 0 { '.' } else { ' ' });
        }
        out
    }
}
