//! The fake model: deterministic replies that make their context visible, and the
//! token estimate. See the module docs of [`emulator`](super) for the exact formats.

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

/// The default reply for a context:
/// `[ctx N msgs] You said: "<latest user text>". Take K: <sentence>`.
///
/// `ordinal` is the reply's position among its siblings (0-based), so siblings
/// always differ ("Take 1", "Take 2", …) even with identical input.
pub(crate) fn default_reply(seed: u64, context: &[Value], ordinal: u64) -> String {
    let latest = latest_user_text(context);
    let quote = crate::text::truncate(&latest, QUOTE_MAX_CHARS);
    let h = mix64(seed ^ mix64(context_digest(context) ^ mix64(ordinal)));
    let pick = |shift: u32, len: usize| ((h >> shift) % len as u64) as usize;
    format!(
        "[ctx {n} msgs] You said: \"{quote}\". Take {take}: {} {} {}",
        OPENERS[pick(0, OPENERS.len())],
        ACTIONS[pick(16, ACTIONS.len())],
        ENDINGS[pick(32, ENDINGS.len())],
        n = context.len(),
        take = ordinal + 1,
    )
}

/// The text of the newest user message in the context ("" when there is none).
pub(crate) fn latest_user_text(context: &[Value]) -> String {
    context
        .iter()
        .rev()
        .find(|item| item.get("role").and_then(Value::as_str) == Some("user"))
        .map(items::text_of)
        .unwrap_or_default()
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

/// A stable digest of the context (FNV-1a over the items' JSON): `std`'s hasher is
/// not guaranteed stable across Rust releases, and replies must be.
fn context_digest(context: &[Value]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for item in context {
        // Ids are random per run, so they must not influence the reply.
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
        let reply = default_reply(7, &ctx, 0);
        assert!(
            reply.starts_with("[ctx 3 msgs] You said: \"second\". Take 1: "),
            "{reply}"
        );
    }

    #[test]
    fn reply_is_deterministic_and_differs_across_siblings_and_seeds() {
        let ctx = [user("hi")];
        assert_eq!(default_reply(1, &ctx, 0), default_reply(1, &ctx, 0));
        assert_ne!(default_reply(1, &ctx, 0), default_reply(1, &ctx, 1));
        let seeds: std::collections::HashSet<_> =
            (0..16).map(|s| default_reply(s, &ctx, 0)).collect();
        assert!(seeds.len() > 1);
    }

    #[test]
    fn long_quotes_are_truncated() {
        let long = "x".repeat(500);
        let reply = default_reply(0, &[user(&long)], 0);
        // 200 characters in all, the last of them the ellipsis.
        assert!(reply.contains(&format!("\"{}…\"", "x".repeat(199))));
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
    fn deltas_concatenate_to_the_text() {
        let text = "one two three four five six seven";
        let parts = deltas(text);
        assert_eq!(parts.concat(), text);
        assert_eq!(parts.len(), 3);
        assert_eq!(deltas(""), vec![String::new()]);
    }
}
