//! The web explorer at the HTTP level: the read API, the streamed actions, and
//! the security rules of docs/web.md (Host, token, CSRF, Origin, headers,
//! hostile text, the API key).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::StatusCode;
use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::{Emulator, Fault};
use resptree::web::WebServer;
use resptree::{Engine, Node, NodeId, ResponseTree};
use serde_json::{Value, json};

/// Recognisable, and never a real key.
const FAKE_KEY: &str = "sk-resptree-WEB-FAKE-KEY-7c21d9";

/// An explorer with an engine over an in-memory tree and an emulator.
struct Live {
    server: WebServer,
    engine: Engine,
    base: String,
    http: reqwest::Client,
    _emulator: Emulator,
}

impl Live {
    async fn start() -> Self {
        let emulator = Emulator::spawn().await.unwrap();
        let client = Client::builder()
            .base_url(emulator.base_url())
            .api_key(FAKE_KEY)
            .build()
            .unwrap();
        let engine = Engine::builder(ResponseTree::in_memory(), ResponsesBackend::new(client))
            .build()
            .unwrap();
        let server = WebServer::with_engine(engine.clone())
            .spawn()
            .await
            .unwrap();
        let base = server.url().trim_end_matches('/').to_owned();
        Self {
            server,
            engine,
            base,
            http: reqwest::Client::new(),
            _emulator: emulator,
        }
    }

    fn tree(&self) -> &ResponseTree {
        self.engine.tree()
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// A write with the session's CSRF token.
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, String) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", self.server.csrf_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// POSTs an action and parses the event stream into (name, data) pairs.
    async fn events(&self, path: &str, body: Value) -> Vec<(String, Value)> {
        let (status, text) = self.send(reqwest::Method::POST, path, body).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        parse_events(&text)
    }
}

fn parse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            Some((name?, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

fn named<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d)
        .collect()
}

/// One request with exactly the given header lines (reqwest always writes its
/// own Host); returns the status code and the whole reply.
async fn raw(addr: SocketAddr, request_line: &str, headers: &[&str]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Async: the server runs on this test's runtime, which a blocking read
    // would stall.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{request_line}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, reply)
}

fn node(id: &str, parent: Option<&str>, user: &str, answer: &str) -> Node {
    Node::new(
        NodeId::new(id).unwrap(),
        parent.map(|p| NodeId::new(p).unwrap()),
    )
    .with_user_text(user)
    .with_output_text(answer)
}

#[tokio::test]
async fn outline_pages_children_and_node_view_shows_siblings_and_path() {
    let live = Live::start().await;
    let tree = live.tree();
    tree.insert(node("resp_root", None, "hi", "hello")).unwrap();
    let kids: Vec<Node> = (0..250)
        .map(|i| {
            node(
                &format!("resp_kid{i:03}"),
                Some("resp_root"),
                &format!("q{i}"),
                "a",
            )
            .with_created_at(resptree::Timestamp(1_000 + i))
        })
        .collect();
    tree.insert_all(kids, vec![]).unwrap();

    let roots = live.json("/api/roots").await;
    assert_eq!(roots["total"], 1);
    assert_eq!(roots["items"][0]["children"], 250);
    assert_eq!(roots["items"][0]["prompt"], "hi");

    let page = live.json("/api/nodes/resp_root/children").await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(250), 100)
    );
    let last = live
        .json("/api/nodes/resp_root/children?offset=200&limit=100")
        .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 50);
    assert_eq!(last["items"][49]["id"], "resp_kid249");

    let view = live.json("/api/nodes/resp_kid001").await;
    assert_eq!(view["siblings"]["index"], 1);
    assert_eq!(view["siblings"]["total"], 250);
    assert_eq!(view["siblings"]["prev"], "resp_kid000");
    assert_eq!(view["siblings"]["next"], "resp_kid002");
    assert_eq!(view["path"], json!(["resp_root", "resp_kid001"]));
    assert_eq!(view["node"]["output_text"], "a");

    let path = live.json("/api/nodes/resp_kid001/path").await;
    assert_eq!(path["total"], 2);
    assert_eq!(path["steps"][0]["id"], "resp_root");

    // No favourite yet: an answer, not an error.
    assert_eq!(
        live.json("/api/favourite").await,
        json!({"favourite": null})
    );
    // Short ids and refs resolve in paths too.
    tree.set_ref("favourite", &NodeId::new("resp_kid007").unwrap())
        .unwrap();
    let view = live.json("/api/nodes/favourite").await;
    assert_eq!(view["summary"]["id"], "resp_kid007");
    assert_eq!(view["summary"]["refs"], json!(["favourite"]));
    assert_eq!(
        live.json("/api/favourite").await["favourite"],
        json!({"id": "resp_kid007", "path": ["resp_root", "resp_kid007"], "path_offset": 0, "depth": 1, "root": "resp_root"})
    );

    let (status, body) = live.get("/api/nodes/resp_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "not_found"
    );
}

/// A node view carries the last ids of its path, not the whole path: a deep
/// chain's view stays small, and more ancestors come on request.
#[tokio::test]
async fn a_node_view_carries_the_tail_of_its_path_and_its_depth() {
    let live = Live::start().await;
    let tree = live.tree();
    let chain: Vec<Node> = (0..250)
        .map(|i| {
            let parent = (i > 0).then(|| format!("resp_d{:03}", i - 1));
            node(&format!("resp_d{i:03}"), parent.as_deref(), "q", "a")
        })
        .collect();
    tree.insert_all(chain, vec![]).unwrap();

    let view = live.json("/api/nodes/resp_d249").await;
    let path = view["path"].as_array().unwrap();
    assert_eq!(path.len(), 100);
    assert_eq!(
        (path[0].as_str(), path[99].as_str()),
        (Some("resp_d150"), Some("resp_d249"))
    );
    assert_eq!(view["path_offset"], 150);
    assert_eq!(view["depth"], 249);
    assert_eq!(view["root"], "resp_d000");

    let view = live.json("/api/nodes/resp_d249?ancestors=3").await;
    assert_eq!(view["path"], json!(["resp_d247", "resp_d248", "resp_d249"]));
    let view = live.json("/api/nodes/resp_d249?ancestors=1000").await;
    assert_eq!(view["path"].as_array().unwrap().len(), 250);
    assert_eq!(view["path_offset"], 0);
}

/// A transcript page can start anywhere in the path (the page asks for the
/// one step a move along a chain lacks); without an offset it is the path's
/// last `limit` steps, and a range past the end is cut, not an error.
#[tokio::test]
async fn a_transcript_page_starts_at_any_offset_of_the_path() {
    let live = Live::start().await;
    let chain: Vec<Node> = (0..50)
        .map(|i| {
            let parent = (i > 0).then(|| format!("resp_p{:02}", i - 1));
            node(
                &format!("resp_p{i:02}"),
                parent.as_deref(),
                &format!("q{i}"),
                &format!("a{i}"),
            )
        })
        .collect();
    live.tree().insert_all(chain, vec![]).unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let tail = live.json("/api/nodes/resp_p40/path?limit=20").await;
    assert_eq!(
        (tail["total"].clone(), tail["offset"].clone()),
        (json!(41), json!(21))
    );
    let tail_ids = ids(&tail);
    assert_eq!(tail_ids.len(), 20);
    assert_eq!(
        (tail_ids[0].as_str(), tail_ids[19].as_str()),
        ("resp_p21", "resp_p40")
    );
    assert_eq!(tail["steps"][19]["output_text"], "a40");

    let one = live
        .json("/api/nodes/resp_p40/path?offset=20&limit=1")
        .await;
    assert_eq!(one["offset"], 20);
    assert_eq!(ids(&one), ["resp_p20"]);
    assert_eq!(one["steps"][0]["output_text"], "a20");

    let middle = live.json("/api/nodes/resp_p40/path?offset=5&limit=3").await;
    assert_eq!(ids(&middle), ["resp_p05", "resp_p06", "resp_p07"]);

    // Cut at the end of the path; past it, empty.
    let cut = live
        .json("/api/nodes/resp_p40/path?offset=39&limit=20")
        .await;
    assert_eq!(ids(&cut), ["resp_p39", "resp_p40"]);
    let past = live
        .json("/api/nodes/resp_p40/path?offset=99&limit=5")
        .await;
    assert_eq!(
        (past["offset"].clone(), past["steps"].clone()),
        (json!(41), json!([]))
    );

    // The default is still the last 200 (here: all 41).
    assert_eq!(ids(&live.json("/api/nodes/resp_p40/path").await).len(), 41);
}

/// The token totals read one body per node, so the server stops adding up a
/// path or a subtree above 2 000 nodes (null, with the count) rather than
/// spend seconds on a deep chain; below the cap they are exact.
#[tokio::test]
async fn usage_totals_stop_above_the_cap_and_still_count() {
    const CAP: usize = 2_000;
    let live = Live::start().await;
    let tree = live.tree();
    let chain: Vec<Node> = (0..=CAP)
        .map(|i| {
            let id = format!("resp_c{i:05}");
            let parent = i.checked_sub(1).map(|p| format!("resp_c{p:05}"));
            let mut n = node(&id, parent.as_deref(), "q", "a");
            n.usage = resptree::Usage::new(2, 1);
            n
        })
        .collect();
    tree.insert_all(chain, vec![]).unwrap();

    // The leaf: a path of CAP + 1 steps is over the cap, its subtree is itself.
    let leaf = live.json(&format!("/api/nodes/resp_c{CAP:05}/usage")).await;
    assert_eq!(leaf["node"]["total_tokens"], 3);
    assert_eq!(leaf["path"], Value::Null);
    assert_eq!(leaf["cost"]["path"], Value::Null);
    assert_eq!(leaf["cost"]["node"]["unpriced"], 1);
    assert_eq!(leaf["path_steps"], CAP + 1);
    assert_eq!(leaf["subtree"]["total_tokens"], 3);
    assert_eq!(leaf["subtree_nodes"], 1);

    // The root: the mirror image.
    let root = live.json("/api/nodes/resp_c00000/usage").await;
    assert_eq!(root["path"]["total_tokens"], 3);
    assert_eq!(root["path_steps"], 1);
    assert_eq!(root["subtree"], Value::Null);
    assert_eq!(root["subtree_nodes"], CAP + 1);
    assert_eq!(root["cost"]["subtree"], Value::Null);
    assert_eq!(root["cost"]["path"]["unpriced"], 1);

    // Exactly at the cap both are still added up.
    let at = live
        .json(&format!("/api/nodes/resp_c{:05}/usage", CAP - 1))
        .await;
    assert_eq!(at["path_steps"], CAP);
    assert_eq!(at["path"]["total_tokens"], 3 * CAP);
    assert_eq!(at["subtree_nodes"], 2);
    assert_eq!(at["subtree"]["total_tokens"], 6);
}

/// Money in the node view: node, path and subtree at the server's price
/// table; a model the table does not know is counted as unpriced, never as
/// free.
#[tokio::test]
async fn usage_prices_the_node_path_and_subtree_at_the_servers_prices() {
    use resptree::cost::{ModelPrice, PriceTable};
    let tree = Arc::new(ResponseTree::in_memory());
    let mut root = node("resp_r", None, "q", "a");
    root.model = Some("priced-model".into());
    root.usage = resptree::Usage::new(1_000_000, 0);
    let mut child = node("resp_c", Some("resp_r"), "q2", "a2");
    child.model = Some("priced-model".into());
    child.usage = resptree::Usage::new(0, 1_000_000);
    let mut stray = node("resp_s", Some("resp_r"), "q3", "a3");
    stray.model = Some("mystery-model".into());
    stray.usage = resptree::Usage::new(10, 5);
    tree.insert_all(vec![root, child, stray], vec![]).unwrap();
    let mut prices = PriceTable::empty();
    // $1 per million input tokens, $2 per million output tokens.
    prices.insert("priced-model", ModelPrice::new(1_000_000, 2_000_000));
    let server = WebServer::read_only(Arc::clone(&tree))
        .prices(prices)
        .spawn()
        .await
        .unwrap();
    let get = |id: &str| {
        let url = format!("http://{}/api/nodes/{id}/usage", server.addr());
        async move {
            let resp = reqwest::get(url).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        }
    };

    let leaf = get("resp_c").await;
    assert_eq!(leaf["cost"]["node"]["total"], "2.00");
    assert_eq!(leaf["cost"]["path"]["total"], "3.00");
    assert_eq!(leaf["cost"]["path"]["unpriced"], 0);

    let root = get("resp_r").await;
    assert_eq!(root["cost"]["node"]["total"], "1.00");
    let subtree = &root["cost"]["subtree"];
    assert_eq!(subtree["total"], "3.00");
    assert_eq!(subtree["unpriced"], 1);
    assert_eq!(subtree["unknown_models"], json!(["mystery-model"]));
}

#[tokio::test]
async fn compare_starts_at_the_common_ancestor_and_usage_adds_up() {
    let live = Live::start().await;
    let tree = live.tree();
    let mut root = node("resp_r", None, "q", "a");
    root.usage = resptree::Usage::new(10, 5);
    let mut left = node("resp_l", Some("resp_r"), "left?", "L");
    left.usage = resptree::Usage::new(20, 7);
    let mut right = node("resp_x", Some("resp_r"), "right?", "R");
    right.usage = resptree::Usage::new(30, 9);
    tree.insert_all(vec![root, left, right], vec![]).unwrap();

    let diff = live.json("/api/compare?left=resp_l&right=resp_x").await;
    assert_eq!(diff["common"]["id"], "resp_r");
    assert_eq!(diff["left"][0]["id"], "resp_l");
    assert_eq!(diff["right"][0]["id"], "resp_x");

    let usage = live.json("/api/nodes/resp_r/usage").await;
    assert_eq!(usage["node"]["total_tokens"], 15);
    assert_eq!(usage["subtree"]["total_tokens"], 15 + 27 + 39);
    assert_eq!(usage["subtree_nodes"], 3);
    let usage = live.json("/api/nodes/resp_l/usage").await;
    assert_eq!(usage["path"]["total_tokens"], 15 + 27);
    assert_eq!(usage["path_steps"], 2);

    let graph = live.json("/api/graph?root=resp_r").await;
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(graph["truncated"], false);
    let graph = live.json("/api/graph?root=resp_r&limit=2").await;
    assert_eq!(graph["truncated"], true);
}

#[tokio::test]
async fn continue_streams_deltas_then_the_committed_node() {
    let live = Live::start().await;
    let before = live.json("/api/changes").await["version"].as_u64().unwrap();
    let events = live
        .events("/api/respond", json!({"text": "Plan a weekend in Paris"}))
        .await;
    assert_eq!(events.first().unwrap().0, "start");
    assert_eq!(events.last().unwrap().0, "done");
    let text: String = named(&events, "delta")
        .iter()
        .map(|d| d["text"].as_str().unwrap())
        .collect();
    let nodes = named(&events, "node");
    assert_eq!(nodes.len(), 1);
    let id = NodeId::new(nodes[0]["node"]["id"].as_str().unwrap()).unwrap();
    let stored = live.tree().get(&id).unwrap();
    assert_eq!(stored.output_text, text, "the deltas add up to the answer");
    assert!(!text.is_empty());
    let after = live.json("/api/changes").await["version"].as_u64().unwrap();
    assert!(after > before, "the change counter moved");

    // Continue that node: the child appears under it.
    let events = live
        .events(
            "/api/respond",
            json!({"parent": id.short(), "text": "And Sunday?"}),
        )
        .await;
    let child = named(&events, "node")[0]["node"].clone();
    assert_eq!(child["parent"], id.as_str());
    let kids = live
        .json(&format!("/api/nodes/{}/children", id.as_str()))
        .await;
    assert_eq!(kids["items"][0]["id"], child["id"]);
}

#[tokio::test]
async fn branch_and_fan_out_make_one_child_per_answer() {
    let live = Live::start().await;
    let root = live.engine.respond(None, "Start").await.unwrap();
    let events = live
        .events(
            "/api/branch",
            json!({"parent": root.id.as_str(), "texts": ["formal", "funny"]}),
        )
        .await;
    assert_eq!(named(&events, "start")[0]["count"], 2);
    let mut indexes: Vec<u64> = named(&events, "node")
        .iter()
        .map(|n| n["index"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1]);
    let events = live
        .events(
            "/api/fanout",
            json!({"parent": root.id.as_str(), "text": "again", "n": 3}),
        )
        .await;
    assert_eq!(named(&events, "node").len(), 3);
    assert_eq!(live.tree().children(&root.id).unwrap().len(), 5);

    for (body, why) in [
        (json!({"parent": root.id.as_str(), "texts": []}), "no texts"),
        (json!({"parent": root.id.as_str(), "texts": [" "]}), "blank"),
    ] {
        let (status, _) = live.send(reqwest::Method::POST, "/api/branch", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
    }
    let (status, _) = live
        .send(
            reqwest::Method::POST,
            "/api/fanout",
            json!({"parent": root.id.as_str(), "text": "x", "n": 17}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_failed_answer_is_an_error_event_without_the_key() {
    let live = Live::start().await;
    live._emulator.inject(Fault::Status {
        status: 400,
        count: 1,
    });
    let events = live.events("/api/respond", json!({"text": "hi"})).await;
    let errors = named(&events, "error");
    assert_eq!(errors.len(), 1, "{events:?}");
    assert!(named(&events, "node").is_empty());
    assert!(live.tree().is_empty());
    for (_, data) in &events {
        assert!(!data.to_string().contains(FAKE_KEY));
    }
}

#[tokio::test]
async fn prune_needs_the_full_id_repeated() {
    let live = Live::start().await;
    let root = live.engine.respond(None, "Start").await.unwrap();
    let child = live.engine.respond(Some(&root.id), "more").await.unwrap();
    let (status, body) = live
        .send(
            reqwest::Method::POST,
            "/api/prune",
            json!({"id": child.id.short(), "confirm": child.id.short()}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(live.tree().contains(&child.id));
    let (status, body) = live
        .send(
            reqwest::Method::POST,
            "/api/prune",
            json!({"id": child.id.short(), "confirm": child.id.as_str()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["removed"],
        json!([child.id.as_str()])
    );
    assert!(!live.tree().contains(&child.id));
}

#[tokio::test]
async fn refs_are_named_and_deleted_with_the_csrf_token() {
    let live = Live::start().await;
    let root = live.engine.respond(None, "Start").await.unwrap();
    let (status, _) = live
        .send(
            reqwest::Method::PUT,
            "/api/refs/ideas/best",
            json!({"target": root.id.short()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live.tree().resolve("ideas/best").unwrap(), root.id);
    let (status, _) = live
        .send(
            reqwest::Method::PUT,
            "/api/refs/bad%20name",
            json!({"target": root.id.short()}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = live
        .send(reqwest::Method::DELETE, "/api/refs/ideas/best", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(live.tree().list_refs().is_empty());
}

#[tokio::test]
async fn writes_without_the_csrf_token_or_from_another_origin_are_refused() {
    let live = Live::start().await;
    let root = live.engine.respond(None, "Start").await.unwrap();
    let url = format!("{}/api/refs/x", live.base);
    let body = json!({"target": root.id.as_str()});
    let resp = live.http.put(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = live
        .http
        .put(&url)
        .header("x-csrf-token", "0".repeat(64))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = live
        .http
        .put(&url)
        .header("x-csrf-token", live.server.csrf_token())
        .header("origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A stream action without the token starts nothing.
    let resp = live
        .http
        .post(format!("{}/api/respond", live.base))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(live.tree().list_refs().is_empty());
    assert_eq!(live.tree().len(), 1);
    // Same origin, with the token: accepted.
    let resp = live
        .http
        .put(&url)
        .header("x-csrf-token", live.server.csrf_token())
        .header("origin", live.base.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_host_header_is_refused() {
    let live = Live::start().await;
    let addr = live.server.addr();
    let port = addr.port();
    let ok = format!("Host: 127.0.0.1:{port}");
    assert_eq!(raw(addr, "GET /api/info HTTP/1.1", &[&ok]).await.0, 200);
    let ok = format!("Host: localhost:{port}");
    assert_eq!(raw(addr, "GET /api/info HTTP/1.1", &[&ok]).await.0, 200);
    // DNS rebinding: evil.example now resolves to 127.0.0.1.
    let evil = format!("Host: evil.example:{port}");
    let (status, reply) = raw(addr, "GET / HTTP/1.1", &[&evil]).await;
    assert_eq!(status, 403);
    assert!(
        !reply.contains("resptree-csrf"),
        "the page (and its token) is not served"
    );
    let (status, _) = raw(addr, "GET /api/info HTTP/1.0", &[]).await;
    assert_eq!(status, 403, "no Host at all");
}

#[tokio::test]
async fn remote_mode_needs_the_flag_and_then_the_token() {
    let tree = Arc::new(ResponseTree::in_memory());
    let err = WebServer::read_only(Arc::clone(&tree))
        .listen("0.0.0.0:0".parse().unwrap())
        .spawn()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow_remote"), "{err}");

    let server = WebServer::read_only(tree)
        .allow_remote(true)
        .spawn()
        .await
        .unwrap();
    let token = server.access_token().unwrap().to_owned();
    assert!(server.url().ends_with(&format!("/?token={token}")));
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();
    for path in ["/", "/app.js", "/api/info", "/api/roots"] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let resp = http
        .get(format!("{base}/api/info"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = http
        .get(format!("{base}/api/info"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The printed URL works and leaves the token in a cookie for the rest.
    let resp = http.get(server.url()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    let resp = http
        .get(format!("{base}/api/roots"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Any Host is fine with the token (the token is the rebinding defence).
    let auth = format!("Authorization: Bearer {token}");
    let (status, _) = raw(
        server.addr(),
        "GET /api/info HTTP/1.1",
        &["Host: box.lan", &auth],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_read_only_explorer_refuses_writes() {
    let tree = Arc::new(ResponseTree::in_memory());
    tree.insert(node("resp_a", None, "q", "a")).unwrap();
    let server = WebServer::read_only(Arc::clone(&tree))
        .spawn()
        .await
        .unwrap();
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{base}/api/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["writable"], false);
    for (path, body) in [
        ("/api/respond", json!({"text": "hi"})),
        ("/api/prune", json!({"id": "resp_a", "confirm": "resp_a"})),
    ] {
        let resp = http
            .post(format!("{base}{path}"))
            .header("x-csrf-token", server.csrf_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "read_only");
    }
    assert_eq!(tree.len(), 1);
}

#[tokio::test]
async fn hostile_text_comes_back_only_as_json_strings() {
    let live = Live::start().await;
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3))";
    live.tree()
        .insert(node("resp_evil", None, evil, evil))
        .unwrap();
    live.tree()
        .set_ref("evil", &NodeId::new("resp_evil").unwrap())
        .unwrap();
    for path in [
        "/api/roots",
        "/api/nodes/resp_evil",
        "/api/nodes/resp_evil/path",
        "/api/graph",
        "/api/compare?left=resp_evil&right=resp_evil",
    ] {
        let resp = live
            .http
            .get(format!("{}{path}", live.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let text = resp.text().await.unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(
            value
                .to_string()
                .contains(&serde_json::to_string(evil).unwrap()[1..20]),
            "{path} returns the text as a string"
        );
    }
    // The page itself never carries tree text: the script inserts it.
    let (_, page) = live.get("/").await;
    assert!(!page.contains("alert"));
}

#[tokio::test]
async fn the_page_and_assets_carry_the_security_headers() {
    let live = Live::start().await;
    let resp = live
        .http
        .get(format!("{}/", live.base))
        .send()
        .await
        .unwrap();
    let headers = resp.headers().clone();
    let page = resp.text().await.unwrap();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(page.contains(&format!(
        "<meta name=\"resptree-csrf\" content=\"{}\">",
        live.server.csrf_token()
    )));
    assert!(page.contains("<script src=\"/app.js\" defer></script>"));
    assert!(!page.contains("<script>"), "no inline script");
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/markdown.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let resp = live
            .http
            .get(format!("{}{path}", live.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

#[tokio::test]
async fn the_api_key_never_reaches_a_response() {
    let live = Live::start().await;
    let root = live.engine.respond(None, "Start").await.unwrap();
    let id = root.id.as_str().to_owned();
    let mut bodies = Vec::new();
    for path in [
        "/".to_owned(),
        "/app.js".to_owned(),
        "/api/info".to_owned(),
        "/api/roots".to_owned(),
        "/api/refs".to_owned(),
        "/api/changes".to_owned(),
        format!("/api/nodes/{id}"),
        format!("/api/nodes/{id}/path"),
        format!("/api/nodes/{id}/usage"),
        format!("/api/nodes/{id}/children"),
        format!("/api/graph?root={id}"),
        format!("/api/compare?left={id}&right={id}"),
        "/api/nodes/nope".to_owned(),
        "/nope".to_owned(),
    ] {
        let resp = live
            .http
            .get(format!("{}{path}", live.base))
            .send()
            .await
            .unwrap();
        bodies.push(format!("{:?}", resp.headers()));
        bodies.push(resp.text().await.unwrap());
    }
    let events = live
        .events("/api/respond", json!({"parent": id, "text": "more"}))
        .await;
    bodies.push(format!("{events:?}"));
    live._emulator.inject(Fault::Status {
        status: 401,
        count: 1,
    });
    let events = live
        .events("/api/respond", json!({"parent": id, "text": "fails"}))
        .await;
    assert_eq!(named(&events, "error").len(), 1);
    bodies.push(format!("{events:?}"));
    for body in bodies {
        assert!(
            !body.contains(FAKE_KEY) && !body.contains("FAKE-KEY"),
            "{body}"
        );
    }
}
