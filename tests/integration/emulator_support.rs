//! Helpers for the emulator tests: fixtures, shape comparison, plain-HTTP calls and an
//! SSE splitter. Deliberately independent of resptree's own client and wire types.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::header::HeaderMap;
use serde_json::Value;

pub(crate) use crate::support::fixture_text;

/// A JSON protocol fixture (from the in-repo copy, `tests/fixtures/protocol/`).
pub(crate) fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Asserts that `actual` has exactly the keys of `expected`, recursively, with the same
/// JSON kinds (integer and decimal numbers are different kinds). Array elements are
/// compared with the expected element at the same index (or the last one).
pub(crate) fn assert_same_shape(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let missing: Vec<_> = e.keys().filter(|k| !a.contains_key(*k)).collect();
            let extra: Vec<_> = a.keys().filter(|k| !e.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "at {at}: missing keys {missing:?}, extra keys {extra:?}"
            );
            for (k, v) in e {
                assert_same_shape(&a[k], v, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let Some(last) = e.last() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(item, e.get(i).unwrap_or(last), &format!("{at}[{i}]"));
                }
            }
        }
        _ => assert_eq!(
            kind(actual),
            kind(expected),
            "at {at}: {actual} vs {expected}"
        ),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "decimal",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A plain HTTP reply: status, headers, body text.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error envelope's `error` object, checking the envelope's shape.
    pub(crate) fn error(&self) -> Value {
        let body = self.json();
        let keys: Vec<&String> = body.as_object().expect("envelope").keys().collect();
        assert_eq!(keys, ["error"], "{body}");
        let error = body["error"].clone();
        let mut keys: Vec<&String> = error.as_object().expect("error object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
        assert!(
            error["message"].is_string() && error["type"].is_string(),
            "{body}"
        );
        // `param` and `code` are nullable strings (see the error fixtures).
        assert!(
            error["param"].is_string() || error["param"].is_null(),
            "{body}"
        );
        assert!(
            error["code"].is_string() || error["code"].is_null(),
            "{body}"
        );
        error
    }
}

pub(crate) async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body failed");
    Reply {
        status,
        headers,
        text,
    }
}

pub(crate) async fn post(base: &str, path: &str, body: &Value) -> Reply {
    send(
        reqwest::Client::new()
            .post(format!("{base}{path}"))
            .json(body),
    )
    .await
}

pub(crate) async fn post_raw(base: &str, path: &str, body: impl Into<reqwest::Body>) -> Reply {
    send(
        reqwest::Client::new()
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

pub(crate) async fn get(base: &str, path: &str) -> Reply {
    send(reqwest::Client::new().get(format!("{base}{path}"))).await
}

pub(crate) async fn delete(base: &str, path: &str) -> Reply {
    send(reqwest::Client::new().delete(format!("{base}{path}"))).await
}

/// Creates a response and returns its JSON, asserting 200.
pub(crate) async fn create(base: &str, body: Value) -> Value {
    let reply = post(base, "/responses", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

/// The output text of a Response object.
pub(crate) fn output_text(response: &Value) -> String {
    response["output"][0]["content"][0]["text"]
        .as_str()
        .expect("no output text")
        .to_owned()
}

/// One SSE block: the `event:` name (if any) and the `data:` payload.
#[derive(Debug)]
pub(crate) struct SseBlock {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Splits an SSE body into blocks, asserting the framing (each block ends with a blank
/// line and has exactly one `data:` line).
pub(crate) fn sse_blocks(body: &str) -> Vec<SseBlock> {
    assert!(body.ends_with("\n\n"), "stream must end with a blank line");
    body.trim_end_matches('\n')
        .split("\n\n")
        .map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    assert!(event.replace(e.to_owned()).is_none(), "two event lines");
                } else if let Some(d) = line.strip_prefix("data: ") {
                    assert!(data.replace(d.to_owned()).is_none(), "two data lines");
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            SseBlock {
                event,
                data: data.expect("block without data"),
            }
        })
        .collect()
}

/// The token estimate the emulator documents for one message: `4 + ceil(chars / 4)`.
pub(crate) fn item_tokens(text: &str) -> u64 {
    4 + (text.chars().count() as u64).div_ceil(4)
}

/// Whether `id` is `prefix` followed by 32 lowercase hex digits.
pub(crate) fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}
