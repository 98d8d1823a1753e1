//! The emulator facing bad clients: every malformed request gets the real
//! `{"error": {...}}` envelope with a 4xx status, and the server stays up under
//! a burst of them (and of raw garbage on the socket).

use std::time::Duration;

use resptree::emulator::Emulator;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// One bad request: a name, the content type and the body.
struct Bad {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// The `param` the envelope must name, when it names one.
    param: Option<&'static str>,
}

fn json_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn bad_requests() -> Vec<Bad> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let too_many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    vec![
        Bad {
            name: "body over the size limit",
            path: "/v1/responses",
            content_type: "application/json",
            body: json_body(&json!({"model": "m", "input": "x".repeat(70_000)})),
            param: None,
        },
        Bad {
            name: "17 metadata pairs",
            path: "/v1/responses",
            content_type: "application/json",
            body: json_body(&json!({"model": "m", "input": "hi", "metadata": too_many})),
            param: Some("metadata"),
        },
        Bad {
            name: "metadata key of 65 characters",
            path: "/v1/responses",
            content_type: "application/json",
            body: json_body(
                &json!({"model": "m", "input": "hi", "metadata": {"k".repeat(65): "v"}}),
            ),
            param: Some("metadata"),
        },
        Bad {
            name: "metadata value of 513 characters",
            path: "/v1/responses",
            content_type: "application/json",
            body: json_body(
                &json!({"model": "m", "input": "hi", "metadata": {"k": "v".repeat(513)}}),
            ),
            param: Some("metadata.k"),
        },
        Bad {
            name: "malformed JSON",
            path: "/v1/responses",
            content_type: "application/json",
            body: b"{\"model\": \"m\", \"input\": ".to_vec(),
            param: None,
        },
        Bad {
            name: "not JSON at all",
            path: "/v1/responses",
            content_type: "application/json",
            body: vec![0xff, 0xfe, 0x00, 0x01],
            param: None,
        },
        Bad {
            name: "wrong content type",
            path: "/v1/responses",
            content_type: "text/plain",
            body: json_body(&json!({"model": "m", "input": "hi"})),
            param: None,
        },
        Bad {
            name: "huge n",
            path: "/v1/chat/completions",
            content_type: "application/json",
            body: json_body(
                &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1_000_000_000}),
            ),
            param: Some("n"),
        },
        Bad {
            name: "deeply nested input arrays",
            path: "/v1/responses",
            content_type: "application/json",
            body: format!("{{\"model\": \"m\", \"input\": {deep}}}").into_bytes(),
            param: None,
        },
        Bad {
            name: "input of the wrong type",
            path: "/v1/responses",
            content_type: "application/json",
            body: json_body(&json!({"model": "m", "input": [[[[1]]]]})),
            param: None,
        },
    ]
}

async fn send(http: &reqwest::Client, base: &str, bad: &Bad) -> (u16, Value) {
    let reply = http
        .post(format!("{base}{}", bad.path.trim_start_matches("/v1")))
        .header("content-type", bad.content_type)
        .body(bad.body.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: no answer: {e}", bad.name));
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{}: not a JSON envelope: {text}", bad.name));
    (status, body)
}

fn assert_envelope(bad: &Bad, status: u16, body: &Value) {
    assert!(
        (400..500).contains(&status),
        "{}: status {status}: {body}",
        bad.name
    );
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}: {body}",
        bad.name
    );
    assert!(error["type"].is_string(), "{}: {body}", bad.name);
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{}: {body}",
        bad.name
    );
    if let Some(param) = bad.param {
        assert_eq!(error["param"], param, "{}: {body}", bad.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_error_envelope_and_the_server_survives_a_burst() {
    let emu = Emulator::builder()
        .max_body_bytes(64 * 1024)
        .spawn()
        .await
        .unwrap();
    let base = emu.base_url();
    // A fresh connection per request: after refusing an oversized body unread, the
    // server closes that connection, and a pooled client may race to reuse it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let bad = bad_requests();
    for b in &bad {
        let (status, body) = send(&http, &base, b).await;
        assert_envelope(b, status, &body);
    }

    // A burst: 20 rounds of every bad request at once, plus raw garbage on the socket.
    let addr = emu.addr();
    let mut answered = 0;
    for _ in 0..20 {
        let requests = bad.iter().map(|b| send(&http, &base, b));
        let garbage = async {
            let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = sock
                .write_all(b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n\xff\xff")
                .await;
            let _ = sock.shutdown().await;
        };
        let (replies, ()) = tokio::join!(futures_util::future::join_all(requests), garbage);
        for (b, (status, body)) in bad.iter().zip(replies) {
            assert_envelope(b, status, &body);
            answered += 1;
        }
    }
    assert_eq!(answered, 20 * bad.len());

    // Still up, still correct.
    let ok: Value = tokio::time::timeout(
        Duration::from_secs(30),
        http.post(format!("{base}/responses"))
            .json(&json!({"model": "m", "input": "still there?"}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ok["status"], "completed", "{ok}");
    assert_eq!(
        emu.response_count(),
        1,
        "a bad request left a stored response"
    );
}
