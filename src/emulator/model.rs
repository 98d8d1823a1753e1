//! The fake model: deterministic replies that make their context visible, and the
//! token estimate. See the module docs of [`emulator`](super) for the exact formats.

use std::sync::Arc;

use serde_json::Value;

use super::fault::mix64;
use super::items;

/// The longest quote of the latest user message, in characters.
const QUOTE_MAX_CHARS: usize = 200;

const OPENERS: [&str; 8] = [
    "I would",
    "My suggestion is to",
    "You could",
    "It makes sense to",
    "A good plan is to",
    "Consider a way to",
    "The simplest option is to",
    "Many people prefer to",
];

const ACTIONS: [&str; 8] = [
    "start with the Louvre",
    "walk along the Seine",
    "book a table in Le Marais",
    "climb up to Sacré-Cœur",
    "take the metro to Montmartre",
    "rest in the Tuileries",
    "visit the Musée d'Orsay",
    "watch the sunset at the Trocadéro",
];

const ENDINGS: [&str; 8] = [
    "and keep the evening free.",
    "before the crowds arrive.",
    "and then see how you feel.",
    "with a long lunch in between.",
    "and finish with a crêpe.",
    "while the light is good.",
    "and book tickets ahead.",
    "at your own pace.",
];

/// What the fake model needs to know of a context, kept up to date item by item so
/// that a context can be extended without reading what came before: its length, its
/// token count, the digest the reply hashes, and the latest user text.
///
/// `summary(a ++ b) == summary(a).extend(b)`, so a stored response keeps the summary
/// of its whole context and a child extends it with its own items only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// How many items the context holds.
    pub(crate) len: u64,
    /// The sum of [`item_tokens`] over the items.
    pub(crate) tokens: u64,
    /// FNV-1a state over every item's role and text (see [`Summary::extend`]).
    digest: u64,
    /// The text of the newest `user` item, if there is one.
    latest_user: Option<Arc<str>>,
    /// The `call_id`s of `function_call` items no `function_call_output` answered
    /// yet, oldest first: a continuation must answer them.
    pending_calls: Vec<String>,
}

impl Default for Summary {
    /// The summary of an empty context.
    fn default() -> Self {
        Self {
            len: 0,
            tokens: 0,
            digest: FNV_OFFSET,
            latest_user: None,
            pending_calls: Vec::new(),
        }
    }
}

impl Summary {
    /// The summary of `items`.
    pub(crate) fn of(items: &[Value]) -> Self {
        let mut summary = Self::default();
        summary.extend(items);
        summary
    }

    /// Appends `items` to the summarised context.
    pub(crate) fn extend(&mut self, items: &[Value]) {
        for item in items {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("");
            let text = items::text_of(item);
            // A stable digest (FNV-1a over roles and texts): `std`'s hasher is not
            // guaranteed stable across Rust releases, and replies must be. Ids are
            // random per run, so they must not influence the reply.
            for byte in role.bytes().chain([0]).chain(text.bytes()).chain([0xff]) {
                self.digest ^= u64::from(byte);
                self.digest = self.digest.wrapping_mul(FNV_PRIME);
            }
            self.tokens += item_tokens(item);
            self.len += 1;
            if role == "user" {
                self.latest_user = Some(text.into());
            }
            let call_id = || item.get("call_id").and_then(Value::as_str);
            match item.get("type").and_then(Value::as_str) {
                Some("function_call") => {
                    if let Some(id) = call_id() {
                        self.pending_calls.push(id.to_owned());
                    }
                }
                Some("function_call_output") => {
                    if let Some(id) = call_id() {
                        self.pending_calls.retain(|c| c != id);
                    }
                }
                _ => {}
            }
        }
    }

    /// The text of the newest `user` item, if there is one.
    pub(crate) fn latest_user(&self) -> Option<&str> {
        self.latest_user.as_deref()
    }

    /// The calls of this context still waiting for their output, oldest first.
    pub(crate) fn pending_calls(&self) -> &[String] {
        &self.pending_calls
    }

    /// The summary of this context followed by `items`.
    pub(crate) fn extended(&self, items: &[Value]) -> Self {
        let mut summary = self.clone();
        summary.extend(items);
        summary
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// The default reply for a context:
/// `[ctx N msgs] You said: "<latest user text>". Take K: <sentence>`.
///
/// `ordinal` is the reply's position among its siblings (0-based), so siblings
/// always differ ("Take 1", "Take 2", …) even with identical input.
pub(crate) fn default_reply(seed: u64, context: &Summary, ordinal: u64) -> String {
    let quote = crate::text::truncate(
        context.latest_user.as_deref().unwrap_or(""),
        QUOTE_MAX_CHARS,
    );
    let h = mix64(seed ^ mix64(context.digest ^ mix64(ordinal)));
    let pick = |shift: u32, len: usize| ((h >> shift) % len as u64) as usize;
    format!(
        "[ctx {n} msgs] You said: \"{quote}\". Take {take}: {} {} {}",
        OPENERS[pick(0, OPENERS.len())],
        ACTIONS[pick(16, ACTIONS.len())],
        ENDINGS[pick(32, ENDINGS.len())],
        n = context.len,
        take = ordinal + 1,
    )
}

/// Context windows in tokens by model-name prefix; the first match wins, so
/// longer prefixes come first. Figures from the models' pages (2026-12).
const CONTEXT_WINDOWS: [(&str, u64); 12] = [
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-5", 400_000),
    ("o1-mini", 128_000),
    ("o1", 200_000),
    ("o3-mini", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("chatgpt-4o", 128_000),
];

/// The window of models the table does not know.
const DEFAULT_CONTEXT_WINDOW: u64 = 128_000;

/// The context window of `model`, in tokens: a name ending in `-ctx<N>` (e.g.
/// `gpt-4o-mini-ctx200`, for tests) has a window of `N`; otherwise the table above,
/// else 128 000.
pub(crate) fn context_window(model: &str) -> u64 {
    if let Some((_, n)) = model.rsplit_once("-ctx")
        && let Ok(n) = n.parse::<u64>()
    {
        return n;
    }
    CONTEXT_WINDOWS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map_or(DEFAULT_CONTEXT_WINDOW, |(_, window)| *window)
}

/// Tokens of one context item: `4 + ceil(chars / 4)`, where `chars` counts the
/// characters of its text parts (for non-message items, of its compact JSON).
pub(crate) fn item_tokens(item: &Value) -> u64 {
    let chars = if item.get("content").is_some() {
        items::text_of(item).chars().count()
    } else {
        item.to_string().chars().count()
    };
    4 + (chars as u64).div_ceil(4)
}

/// Tokens of generated text: `ceil(chars / 4)`, at least 1.
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// Tokens of `instructions`: `4 + ceil(chars / 4)`, or 0 when absent.
pub(crate) fn instruction_tokens(instructions: Option<&str>) -> u64 {
    instructions.map_or(0, |s| 4 + (s.chars().count() as u64).div_ceil(4))
}

/// Splits a reply into stream deltas of up to three words; the pieces concatenate
/// back to exactly `text`.
pub(crate) fn deltas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    for word in text.split_inclusive(' ') {
        current.push_str(word);
        words += 1;
        if words == 3 {
            out.push(std::mem::take(&mut current));
            words = 0;
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// Splits `text` into stream deltas of up to `n` characters (at least one, possibly
/// empty, delta); the pieces concatenate back to exactly `text`.
pub(crate) fn deltas_of_chars(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    #[test]
    fn reply_shows_context_size_and_latest_user_text() {
        let ctx = [
            user("first"),
            json!({"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}),
            user("second"),
        ];
        let reply = default_reply(7, &Summary::of(&ctx), 0);
        assert!(
            reply.starts_with("[ctx 3 msgs] You said: \"second\". Take 1: "),
            "{reply}"
        );
    }

    #[test]
    fn reply_is_deterministic_and_differs_across_siblings_and_seeds() {
        let ctx = Summary::of(&[user("hi")]);
        assert_eq!(default_reply(1, &ctx, 0), default_reply(1, &ctx, 0));
        assert_ne!(default_reply(1, &ctx, 0), default_reply(1, &ctx, 1));
        let seeds: std::collections::HashSet<_> =
            (0..16).map(|s| default_reply(s, &ctx, 0)).collect();
        assert!(seeds.len() > 1);
    }

    #[test]
    fn long_quotes_are_truncated() {
        let long = "x".repeat(500);
        let reply = default_reply(0, &Summary::of(&[user(&long)]), 0);
        // 200 characters in all, the last of them the ellipsis.
        assert!(reply.contains(&format!("\"{}…\"", "x".repeat(199))));
    }

    /// The digest as it was computed before contexts were summarised incrementally:
    /// in one pass over the whole context. Replies must not change.
    fn whole_context_digest(context: &[Value]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for item in context {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("");
            for byte in role
                .bytes()
                .chain([0])
                .chain(items::text_of(item).bytes())
                .chain([0xff])
            {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    #[test]
    fn a_summary_extended_piecewise_equals_the_summary_of_the_whole() {
        let ctx = [
            user("first"),
            json!({"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "42"}),
            user("second"),
            json!({"role": "assistant", "content": "plain"}),
        ];
        let whole = Summary::of(&ctx);
        assert_eq!(whole.len, 5);
        assert_eq!(whole.tokens, ctx.iter().map(item_tokens).sum::<u64>());
        assert_eq!(whole.digest, whole_context_digest(&ctx));
        assert_eq!(whole.latest_user.as_deref(), Some("second"));
        for cut in 0..=ctx.len() {
            let (head, tail) = ctx.split_at(cut);
            assert_eq!(Summary::of(head).extended(tail), whole, "cut at {cut}");
        }
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(Summary::of(&ctx[1..3]).latest_user, None);
    }

    #[test]
    fn tokens_follow_the_documented_formula() {
        assert_eq!(item_tokens(&user("abcdefghi")), 4 + 3);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens(""), 1);
        assert_eq!(instruction_tokens(Some("abcde")), 6);
        assert_eq!(instruction_tokens(None), 0);
    }

    #[test]
    fn context_windows_by_model() {
        assert_eq!(context_window("gpt-4o-mini"), 128_000);
        assert_eq!(context_window("gpt-4.1-nano"), 1_047_576);
        assert_eq!(context_window("gpt-4-0613"), 8_192);
        assert_eq!(context_window("gpt-5.1"), 400_000);
        assert_eq!(context_window("o1-mini"), 128_000);
        assert_eq!(context_window("o3"), 200_000);
        assert_eq!(context_window("gpt-4o-mini-ctx200"), 200);
        assert_eq!(context_window("my-local-model"), 128_000);
    }

    #[test]
    fn pending_calls_follow_calls_and_outputs() {
        let call = |id: &str| json!({"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"});
        let output =
            |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "x"});
        let s = Summary::of(&[user("go"), call("a"), call("b"), output("a")]);
        assert_eq!(s.pending_calls(), ["b"]);
        assert_eq!(
            s.extended(&[output("b")]).pending_calls(),
            [] as [String; 0]
        );
        assert_eq!(s.latest_user(), Some("go"));
    }

    #[test]
    fn deltas_concatenate_to_the_text() {
        let text = "one two three four five six seven";
        let parts = deltas(text);
        assert_eq!(parts.concat(), text);
        assert_eq!(parts.len(), 3);
        assert_eq!(deltas(""), vec![String::new()]);
        let args = r#"{"city":"Paris","unit":"celsius"}"#;
        let parts = deltas_of_chars(args, 16);
        assert_eq!(parts.concat(), args);
        assert_eq!(parts.len(), 3);
    }
}
