//! A small W3C WebDriver client for the real-browser tests.
//!
//! WebDriver is JSON over HTTP, and the tests need a dozen of its commands
//! (a session with headless Chromium, navigate, find, click, keys, script,
//! screenshot), so this speaks it over the `reqwest` client the crate already
//! has rather than pulling in fantoccini or thirtyfour and their dependency
//! trees. The driver is Debian's `chromedriver`, which `bash scripts/test`
//! installs when missing, starts on a free loopback port and names in
//! `RESPTREE_TEST_WEBDRIVER_URL`.
//!
//! Every helper panics with the command and the driver's message when the
//! browser refuses: in a test that is a failure, and the message says where.
//! A [`Browser`] deletes its session (closing Chromium) when dropped, also when
//! the test panicked.

// Test helpers panic on purpose: a failed command is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Not every test uses every helper.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The environment variable naming the WebDriver server (`http://host:port`).
pub(crate) const URL_VAR: &str = "RESPTREE_TEST_WEBDRIVER_URL";

/// The key W3C WebDriver names an element reference with.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a find waits for its element to appear, and a [`Browser::wait_until`]
/// for its condition. Generous: the tests run beside compilers on a loaded
/// machine, and a wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(20);

/// Keys as WebDriver spells them (code points in the Unicode private use area).
pub(crate) mod keys {
    pub(crate) const ENTER: &str = "\u{E007}";
    pub(crate) const ESCAPE: &str = "\u{E00C}";
    pub(crate) const HOME: &str = "\u{E011}";
    pub(crate) const LEFT: &str = "\u{E012}";
    pub(crate) const UP: &str = "\u{E013}";
    pub(crate) const RIGHT: &str = "\u{E014}";
    pub(crate) const DOWN: &str = "\u{E015}";
}

/// The URL of the WebDriver server. Without one the browser tests fail (they
/// are never skipped silently), saying how to get one.
pub(crate) fn webdriver_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "{URL_VAR} is not set: the browser tests need a WebDriver server. \
             Run `bash scripts/test`, which installs Debian's chromium and \
             chromium-driver if needed (as root) and starts chromedriver on loopback, \
             or start one yourself (`chromedriver --port=9515`) and set \
             {URL_VAR}=http://127.0.0.1:9515"
        ),
    }
}

/// Where the tests write screenshots for humans: `target/browser/`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One WebDriver session: a headless Chromium window.
#[derive(Debug)]
pub(crate) struct Browser {
    http: reqwest::Client,
    /// `{driver}/session/{id}`: every command's URL starts with it.
    session: String,
}

/// An element of the current page.
#[derive(Debug)]
pub(crate) struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

/// What the driver answered when it refused a command.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The W3C error code, e.g. `no such element`.
    pub(crate) error: String,
    pub(crate) message: String,
}

impl Browser {
    /// Starts a headless Chromium session (1280×900) with the waits above, on
    /// the driver named by `RESPTREE_TEST_WEBDRIVER_URL`.
    pub(crate) async fn start() -> Self {
        Self::start_at(&webdriver_url()).await
    }

    /// As [`Browser::start`], on the driver at `driver` (`http://host:port`).
    pub(crate) async fn start_at(driver: &str) -> Self {
        let http = reqwest::Client::builder()
            // A command never takes longer than its own wait plus page load.
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let args = [
            "--headless=new",
            // Chromium's sandbox refuses to run as root (CI runs as root).
            "--no-sandbox",
            "--disable-gpu",
            // Small containers have a small /dev/shm; Chromium then crashes tabs.
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "args": args },
                    // Alerts stay open so a test can see one (the default
                    // dismisses them and reports an error on the next command).
                    "unhandledPromptBehavior": "ignore",
                    // Lets a test read the page's console errors.
                    "goog:loggingPrefs": { "browser": "SEVERE" },
                }
            }
        });
        let reply = send(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(caps),
        )
        .await
        .unwrap_or_else(|r| panic!("cannot start a browser session at {driver}: {r:?}"));
        let id = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {reply}"));
        let browser = Self {
            http,
            session: format!("{driver}/session/{id}"),
        };
        let ms = u64::try_from(WAIT.as_millis()).unwrap();
        browser
            .post(
                "timeouts",
                json!({ "implicit": ms, "script": ms, "pageLoad": 60_000 }),
            )
            .await;
        browser
    }

    /// Opens `url` and waits for the page to load.
    pub(crate) async fn goto(&self, url: &str) {
        self.post("url", json!({ "url": url })).await;
    }

    /// The URL of the current page.
    pub(crate) async fn url(&self) -> String {
        self.get("url").await.as_str().unwrap().to_owned()
    }

    /// The document's title.
    pub(crate) async fn title(&self) -> String {
        self.get("title").await.as_str().unwrap().to_owned()
    }

    /// The first element matching the CSS selector, waiting for it to appear.
    pub(crate) async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .post("element", json!({ "using": "css selector", "value": css }))
            .await;
        self.element(&found)
    }

    /// Every element matching the CSS selector now (no wait).
    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        // The driver waits the implicit timeout when nothing matches; counting
        // first keeps "none" instant.
        if self.count(css).await == 0 {
            return Vec::new();
        }
        let found = self
            .post("elements", json!({ "using": "css selector", "value": css }))
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    /// How many elements match the CSS selector now.
    pub(crate) async fn count(&self, css: &str) -> usize {
        let n = self
            .exec(
                "return document.querySelectorAll(arguments[0]).length;",
                json!([css]),
            )
            .await;
        usize::try_from(n.as_u64().unwrap()).unwrap()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub(crate) async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Waits until the JavaScript expression `condition` is truthy in the page,
    /// re-checking whenever the document changes; panics naming `what` if it
    /// does not hold within the wait.
    ///
    /// The check runs in the browser: a test waits on the condition itself,
    /// never on a fixed sleep.
    pub(crate) async fn wait_until(&self, what: &str, condition: &str) {
        self.wait_for(what, condition, "true").await;
    }

    /// As [`Browser::wait_until`], and then returns the value of the JavaScript
    /// expression `result`, evaluated at the moment `condition` was first seen
    /// to hold (benches read `performance.now()` there).
    pub(crate) async fn wait_for(&self, what: &str, condition: &str, result: &str) -> Value {
        let ms = WAIT.as_millis().saturating_sub(1_000);
        // A MutationObserver sees DOM changes at once; the slow interval covers
        // conditions the DOM does not show (focus, scroll, globals).
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const check = () => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }};
             const value = () => ({{ ok: true, value: ({result}) }});
             if (check()) {{ done(value()); return; }}
             let finished = false;
             const finish = (reply) => {{
               if (finished) return;
               finished = true;
               observer.disconnect(); clearInterval(poll); clearTimeout(limit);
               done(reply);
             }};
             const observer = new MutationObserver(() => {{ if (check()) finish(value()); }});
             observer.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
             const poll = setInterval(() => {{ if (check()) finish(value()); }}, 50);
             const limit = setTimeout(() => finish({{ ok: false }}), {ms});"
        );
        let reply = self
            .post("execute/async", json!({ "script": script, "args": [] }))
            .await;
        if reply["ok"] != json!(true) {
            let body = self
                .exec(
                    "return document.body ? document.body.innerText.slice(0, 2000) : '';",
                    json!([]),
                )
                .await;
            panic!(
                "timed out waiting for {what} (`{condition}`); the page shows:\n{}",
                body.as_str().unwrap_or_default()
            );
        }
        reply["value"].clone()
    }

    /// Presses and releases `key` (see [`keys`], or one character) on whatever
    /// has the focus, as a user would.
    pub(crate) async fn press(&self, key: &str) {
        self.post(
            "actions",
            json!({ "actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [
                    { "type": "keyDown", "value": key },
                    { "type": "keyUp", "value": key },
                ],
            }]}),
        )
        .await;
        // Releases the input state, so the next press starts clean.
        self.send(reqwest::Method::DELETE, "actions", None)
            .await
            .unwrap();
    }

    /// The text of the open alert/confirm/prompt, if there is one.
    pub(crate) async fn alert_text(&self) -> Option<String> {
        match self.send(reqwest::Method::GET, "alert/text", None).await {
            Ok(text) => Some(text.as_str().unwrap_or_default().to_owned()),
            Err(r) if r.error == "no such alert" => None,
            Err(r) => panic!("GET alert/text: {r:?}"),
        }
    }

    /// Accepts the open dialog (the "OK" of a `confirm`).
    pub(crate) async fn accept_alert(&self) {
        self.post("alert/accept", json!({})).await;
    }

    /// Saves a PNG of the window to `target/browser/NAME` and returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.get("screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = screenshot_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Messages the page logged at level SEVERE (errors, CSP violations).
    pub(crate) async fn console_errors(&self) -> Vec<String> {
        match self
            .send(
                reqwest::Method::POST,
                "se/log",
                Some(json!({ "type": "browser" })),
            )
            .await
        {
            Ok(Value::Array(entries)) => entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn element(&self, found: &Value) -> Element<'_> {
        let id = found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {found}"));
        Element {
            browser: self,
            id: id.to_owned(),
        }
    }

    async fn get(&self, command: &str) -> Value {
        self.send(reqwest::Method::GET, command, None)
            .await
            .unwrap_or_else(|r| panic!("GET {command}: {r:?}"))
    }

    async fn post(&self, command: &str, body: Value) -> Value {
        let shown = body.to_string();
        self.send(reqwest::Method::POST, command, Some(body))
            .await
            .unwrap_or_else(|r| panic!("POST {command} {shown}: {r:?}"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        command: &str,
        body: Option<Value>,
    ) -> Result<Value, Refusal> {
        send(
            &self.http,
            method,
            &format!("{}/{command}", self.session),
            body,
        )
        .await
    }
}

impl Element<'_> {
    /// Clicks the element (scrolled into view first, as the driver does).
    pub(crate) async fn click(&self) {
        self.post("click", json!({})).await;
    }

    /// Types `text` into the element (it gets the focus first).
    pub(crate) async fn send_keys(&self, text: &str) {
        self.post("value", json!({ "text": text })).await;
    }

    /// The element's rendered text, as a user sees it.
    pub(crate) async fn text(&self) -> String {
        self.get("text")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute's value, if the element has it.
    pub(crate) async fn attr(&self, name: &str) -> Option<String> {
        self.get(&format!("attribute/{name}"))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// The first descendant matching the CSS selector, waiting for it.
    pub(crate) async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .post("element", json!({ "using": "css selector", "value": css }))
            .await;
        self.browser.element(&found)
    }

    async fn get(&self, command: &str) -> Value {
        let command = format!("element/{}/{command}", self.id);
        self.browser.get(&command).await
    }

    async fn post(&self, command: &str, body: Value) -> Value {
        let command = format!("element/{}/{command}", self.id);
        self.browser.post(&command, body).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await, and the runtime may be gone (or be the one running
        // this drop): delete the session with a plain blocking request, so
        // Chromium never outlives its test.
        delete_session(&self.session);
    }
}

/// One WebDriver command: the `value` of the reply, or the driver's refusal.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, Refusal> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| Refusal {
        error: "transport".to_owned(),
        message: format!("{e:#} (is chromedriver running at {url}?)"),
    })?;
    let status = response.status();
    let text = response.text().await.map_err(|e| Refusal {
        error: "transport".to_owned(),
        message: e.to_string(),
    })?;
    let reply: Value = serde_json::from_str(&text).map_err(|e| Refusal {
        error: "decode".to_owned(),
        message: format!("{e}: {text}"),
    })?;
    let value = reply.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(Refusal {
            error: value["error"].as_str().unwrap_or("unknown").to_owned(),
            message: value["message"].as_str().unwrap_or(&text).to_owned(),
        })
    }
}

/// `DELETE {session}` over a blocking socket; errors are ignored (the driver
/// may already be gone at the end of a run).
fn delete_session(session: &str) {
    let Some(rest) = session.strip_prefix("http://") else {
        return;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // Waits for the reply: the driver answers once Chromium has quit. It
        // keeps the connection open despite `Connection: close`, so reading to
        // the end would wait out the read timeout: stop at the whole reply.
        let mut reply = Vec::new();
        let mut buf = [0_u8; 1024];
        while !whole_reply(&reply) {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Whether `reply` holds an HTTP reply's head and its `Content-Length` body.
fn whole_reply(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    reply.len() >= end + 4 + length
}

/// A `file://` URL for a local path.
pub(crate) fn file_url(path: &Path) -> String {
    let path = path.canonicalize().unwrap();
    format!("file://{}", path.display())
}
