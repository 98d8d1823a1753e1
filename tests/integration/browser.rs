//! The web explorer in a real browser: headless Chromium driven over WebDriver
//! (`support::webdriver`), against `resptree::web::WebServer` started in
//! process on loopback over a temporary sled store that the emulator filled.
//!
//! They need `RESPTREE_TEST_WEBDRIVER_URL`; `bash scripts/test` installs
//! Chromium and chromedriver when missing and provides it. Screenshots for
//! humans land in `target/browser/`.
//!
//! The DOM hooks they use are the ones `docs/web.md` promises: `#outline`
//! (`li.row[data-node-id]`, the current row's `.line.current`), `#node-view`
//! (`data-node-id`, one `li.step` per node of the path, the current one
//! `.current`), `#actions` (`#message`, `button[data-action]`, answers in
//! `#stream .answer`), `#search`, and `body[data-ready]` once the app started.

use std::time::Duration;

use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::{Emulator, Fault};
use resptree::web::{WebServer, export_html};
use resptree::{Engine, Node, NodeId, ResponseTree};
use serde_json::json;

use crate::support::webdriver::{Browser, file_url, keys};

/// The driver client itself, on a page of its own: finds, keys, clicks,
/// scripts, dialogs and screenshots do what the app tests rely on.
#[tokio::test]
async fn webdriver_client_drives_a_page() {
    let browser = Browser::start().await;
    let page = "<!doctype html><title>probe</title>\
        <input id=box><button id=go onclick=\"document.getElementById('out').textContent = \
        document.getElementById('box').value\">go</button><p id=out></p>\
        <button id=ask onclick=\"alert('hi')\">ask</button>\
        <script>document.addEventListener('keydown', e => { \
          if (e.key === 'ArrowDown') document.body.dataset.down = '1'; })</script>";
    browser
        .goto(&format!("data:text/html,{}", urlencode(page)))
        .await;
    assert_eq!(browser.title().await, "probe");

    browser.find("#box").await.send_keys("hello <b>").await;
    browser.find("#go").await.click().await;
    assert_eq!(browser.find("#out").await.text().await, "hello <b>");
    assert_eq!(browser.count("#out b").await, 0);
    assert!(browser.find_all("#missing").await.is_empty());

    // A key pressed on the page reaches the document's listeners.
    browser
        .exec("document.activeElement.blur();", json!([]))
        .await;
    browser.press(keys::DOWN).await;
    browser
        .wait_until("the key handler", "document.body.dataset.down === '1'")
        .await;

    // A dialog is seen, not silently dismissed.
    assert_eq!(browser.alert_text().await, None);
    browser.find("#ask").await.click().await;
    assert_eq!(browser.alert_text().await.as_deref(), Some("hi"));
    browser.accept_alert().await;

    let png = browser.screenshot("webdriver-probe.png").await;
    assert!(std::fs::metadata(png).unwrap().len() > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outline_renders_the_tree_and_a_click_shows_the_path() {
    let app = App::start().await;
    let tree = app.sample().await;
    let browser = Browser::start().await;
    app.open(&browser, None).await;

    // One root row, closed: children load when it is opened.
    assert_eq!(
        row_ids(&browser, "#roots > li.row").await,
        [tree.root.to_string()]
    );
    assert_eq!(browser.count("#roots li.row li.row").await, 0);
    let root_row = browser.find("#roots > li.row").await;
    assert!(
        root_row.text().await.contains("Plan a weekend in Paris"),
        "{}",
        root_row.text().await
    );
    root_row.find(".toggle").await.click().await;
    browser
        .wait_until(
            "the root's children",
            "document.querySelectorAll('#roots > li.row > ul.kids > li.row').length === 3",
        )
        .await;
    let children: Vec<String> = app
        .tree()
        .children(&tree.root)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        row_ids(&browser, "#roots > li.row > ul.kids > li.row").await,
        children,
        "the outline lists the children in the tree's sibling order"
    );

    // A click on a row opens its node: the whole path as a transcript.
    let target = &tree.kids[1];
    browser
        .find(&format!(
            "#outline li.row[data-node-id='{target}'] > .line a.label"
        ))
        .await
        .click()
        .await;
    wait_for_node(&browser, target).await;
    let steps = row_ids(&browser, "#node-view li.step").await;
    assert_eq!(steps, [tree.root.to_string(), target.to_string()]);
    let transcript = browser.find("#transcript").await.text().await;
    let node = app.tree().get(target).unwrap();
    let prompt = node.user_text().unwrap();
    for text in [
        "Plan a weekend in Paris",
        &prompt,
        node.output_text.as_str(),
    ] {
        assert!(transcript.contains(text), "{text:?} not in {transcript:?}");
    }
    assert_eq!(
        browser
            .count(&format!(
                "#outline li.row[data-node-id='{target}'] > .line.current"
            ))
            .await,
        1,
        "the outline marks the open node"
    );
    browser.screenshot("explorer.png").await;
    assert_no_page_errors(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_keys_walk_parent_child_and_siblings_and_r_goes_to_the_root() {
    let app = App::start().await;
    let tree = app.sample().await;
    let browser = Browser::start().await;
    let [first, second, third] = [&tree.kids[0], &tree.kids[1], &tree.kids[2]];
    app.open(&browser, Some(first)).await;
    wait_for_node(&browser, first).await;

    // The pager shows where the node is among its siblings.
    assert_eq!(
        browser.find("#sibling-pager .pos").await.text().await,
        "1/3"
    );
    for (key, expect) in [
        (keys::DOWN, second),
        (keys::DOWN, third),
        (keys::DOWN, third), // the last sibling: nothing further
        (keys::UP, second),
        (keys::LEFT, &tree.root),
        // → goes back to the child last visited, not the first one.
        (keys::RIGHT, second),
        (keys::UP, first),
        (keys::RIGHT, &tree.grandchild),
        ("r", &tree.root),
        (keys::RIGHT, first),
        (keys::RIGHT, &tree.grandchild),
        (keys::HOME, &tree.root),
    ] {
        browser.press(key).await;
        wait_for_node(&browser, expect).await;
    }
    assert_eq!(
        browser.find("#sibling-pager .pos").await.text().await,
        "1/1"
    );

    // `?` opens the key help, Escape closes it.
    browser.press("?").await;
    browser
        .wait_until(
            "the help overlay",
            "!document.getElementById('help').hidden",
        )
        .await;
    browser.press(keys::ESCAPE).await;
    browser
        .wait_until("the help closed", "document.getElementById('help').hidden")
        .await;
    assert_no_page_errors(&browser).await;
}

/// A deep chain's node view shows the last 20 steps of its path, "Show
/// earlier" prepends 20 more, and ←/→ reuse the steps the page holds: a
/// move asks the server for the one step it lacks, not the whole page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_transcript_is_paged_and_moves_ask_only_the_missing_step() {
    let app = App::start().await;
    let id = |i: usize| NodeId::new(&format!("resp_chain{i:03}")).unwrap();
    let chain: Vec<Node> = (0..45)
        .map(|i| {
            Node::new(id(i), i.checked_sub(1).map(id))
                .with_user_text(format!("question {i}"))
                .with_output_text(format!("answer {i}"))
        })
        .collect();
    app.tree().insert_all(chain, vec![]).unwrap();
    let browser = Browser::start().await;
    app.open(&browser, Some(&id(44))).await;
    wait_for_node(&browser, &id(44)).await;
    let steps = |from: usize, to: usize| -> Vec<String> {
        (from..=to).map(|i| id(i).to_string()).collect()
    };
    assert_eq!(
        row_ids(&browser, "#transcript li.step").await,
        steps(25, 44)
    );
    assert!(
        browser
            .find("#transcript .earlier")
            .await
            .text()
            .await
            .starts_with("25 earlier step(s) not shown")
    );

    // Record the page's requests from here on.
    browser
        .exec(
            "window.asked = [];
             const fetch0 = window.fetch;
             window.fetch = (url, opts) => { window.asked.push(String(url)); return fetch0(url, opts); };",
            json!([]),
        )
        .await;
    let asked_paths = || async {
        let asked = browser
            .exec("return window.asked.splice(0);", json!([]))
            .await;
        let asked: Vec<String> = serde_json::from_value(asked).unwrap();
        asked
            .into_iter()
            .filter(|url| url.contains("/path"))
            .collect::<Vec<_>>()
    };

    browser.press(keys::LEFT).await;
    wait_for_node(&browser, &id(43)).await;
    assert_eq!(
        row_ids(&browser, "#transcript li.step").await,
        steps(24, 43)
    );
    let transcript = browser.find("#transcript").await.text().await;
    assert!(transcript.contains("answer 24") && transcript.contains("question 43"));
    let asked = asked_paths().await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].ends_with("/path?limit=1&offset=24"), "{asked:?}");

    // Back down: every step is already in the page.
    browser.press(keys::RIGHT).await;
    wait_for_node(&browser, &id(44)).await;
    assert_eq!(
        row_ids(&browser, "#transcript li.step").await,
        steps(25, 44)
    );
    assert_eq!(asked_paths().await, Vec::<String>::new());

    // Show earlier: 20 more, then the last 5 and no more button.
    browser
        .find("#transcript .earlier button")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "20 earlier steps",
            "document.querySelectorAll('#transcript li.step').length === 40",
        )
        .await;
    assert_eq!(row_ids(&browser, "#transcript li.step").await, steps(5, 44));
    browser
        .find("#transcript .earlier button")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the whole path",
            "document.querySelectorAll('#transcript li.step').length === 45",
        )
        .await;
    assert_eq!(row_ids(&browser, "#transcript li.step").await, steps(0, 44));
    assert_eq!(browser.count("#transcript .earlier").await, 0);
    assert_no_page_errors(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bookmark_key_bookmarks_the_open_node_for_good() {
    let app = App::start().await;
    let tree = app.sample().await;
    let browser = Browser::start().await;
    let target = &tree.kids[2];
    // A score (as `explore` or `annotate --score` leaves one) shows in the node view.
    app.tree()
        .annotate(
            target,
            resptree::Annotation::Score(resptree::Score::new(
                "thrift",
                0.75,
                resptree::ScoreMethod::Rubric,
            )),
        )
        .unwrap();
    app.open(&browser, Some(target)).await;
    wait_for_node(&browser, target).await;
    browser
        .wait_until(
            "the node's score",
            "(document.querySelector('#scores') || {}).textContent === 'thrift 0.75'",
        )
        .await;
    // Money shows with the totals once the user rests on the node.
    browser
        .wait_until(
            "the node's cost",
            "/^node \\$[0-9.]+.* · path \\$.* · subtree \\$/.test((document.querySelector('#cost') || {}).textContent || '')",
        )
        .await;
    let bookmarked = format!("#bookmarks li[data-node-id='{target}']");
    assert_eq!(browser.count(&bookmarked).await, 0);

    browser.press("b").await;
    browser
        .wait_until(
            "the star to light up",
            "document.querySelector('#bookmark-toggle.on') !== null",
        )
        .await;
    browser
        .wait_until(
            "the bookmark list",
            &format!("document.querySelector(\"{bookmarked}\") !== null"),
        )
        .await;

    // It is in the store: a fresh page lists it too, and `b` again removes it.
    app.open(&browser, Some(target)).await;
    wait_for_node(&browser, target).await;
    assert_eq!(browser.count(&bookmarked).await, 1);
    browser
        .wait_until(
            "the star of a bookmarked node",
            "document.querySelector('#bookmark-toggle.on') !== null",
        )
        .await;
    browser.press("b").await;
    browser
        .wait_until(
            "the bookmark to go",
            &format!("document.querySelector(\"{bookmarked}\") === null"),
        )
        .await;
    assert_no_page_errors(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branching_from_a_node_streams_the_answers_and_the_new_nodes_appear() {
    let app = App::start().await;
    let tree = app.sample().await;
    let browser = Browser::start().await;
    let parent = &tree.kids[0];
    app.open(&browser, Some(parent)).await;
    wait_for_node(&browser, parent).await;
    let before = app.tree().children(parent).unwrap();

    // The emulator holds both answers after their `response.created`: the page
    // must show them in flight before anything is committed.
    app.emu.inject(Fault::Hold { count: 2 });
    browser
        .find("#message")
        .await
        .send_keys("Plan for rain\nPlan for the night")
        .await;
    browser
        .find("#actions button[data-action='branch']")
        .await
        .click()
        .await;
    app.emu.wait_held(2).await;
    browser
        .wait_until(
            "two answers streaming",
            "document.querySelectorAll('#stream .answer.streaming').length === 2",
        )
        .await;
    assert_eq!(app.tree().children(parent).unwrap(), before);

    app.emu.release(2);
    // Read in the same instant the condition held: the page's next refresh
    // redraws the node view.
    let answers = browser
        .wait_for(
            "both answers committed",
            "document.querySelectorAll('#stream .answer[data-node-id]').length === 2 \
             && !document.querySelector('#stream .answer.streaming')",
            "Array.from(document.querySelectorAll('#stream .answer'))\
             .map(a => [a.dataset.nodeId, a.innerText])",
        )
        .await;
    let answers: Vec<(String, String)> = serde_json::from_value(answers).unwrap();
    let after = app.tree().children(parent).unwrap();
    assert_eq!(after.len(), before.len() + 2);
    for (id, text) in &answers {
        let id: NodeId = id.parse().unwrap();
        assert!(after.contains(&id), "{id} is not a child of {parent}");
        let node = app.tree().get(&id).unwrap();
        assert!(
            text.contains(node.output_text.trim()),
            "the streamed text is the committed answer: {text:?} vs {:?}",
            node.output_text
        );
        // And the outline shows the new node under its parent.
        browser
            .wait_until(
                "the new node in the outline",
                &format!(
                    "document.querySelector(\"#outline li.row[data-node-id='{parent}'] > \
                     ul.kids > li.row[data-node-id='{id}']\") !== null"
                ),
            )
            .await;
    }
    browser.screenshot("branch.png").await;
    assert_no_page_errors(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_highlights_hits_and_jumps_to_the_node() {
    let app = App::start().await;
    let tree = app.sample().await;
    let browser = Browser::start().await;
    app.open(&browser, Some(&tree.root)).await;
    wait_for_node(&browser, &tree.root).await;

    // `/` focuses the box; typing lists the hits with the match marked.
    browser.press("/").await;
    browser
        .wait_until(
            "the search box to have the focus",
            "document.activeElement === document.getElementById('search')",
        )
        .await;
    browser.press("S").await;
    let search = browser.find("#search").await;
    search.send_keys("unday").await;
    browser
        .wait_until(
            "the hits",
            &format!(
                "document.querySelector(\"#search-results li.hit[data-node-id='{}'] mark\") !== null",
                tree.grandchild
            ),
        )
        .await;
    let hits = row_ids(&browser, "#search-results li.hit").await;
    assert_eq!(
        hits,
        [tree.grandchild.to_string()],
        "only one node says Sunday"
    );
    let marked = browser
        .find("#search-results li.hit mark")
        .await
        .text()
        .await;
    assert_eq!(marked.to_lowercase(), "sunday");

    // Enter jumps to the first hit.
    search.send_keys(keys::ENTER).await;
    wait_for_node(&browser, &tree.grandchild).await;
    assert_no_page_errors(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_model_and_user_text_stays_inert_text() {
    let app = App::start().await;
    app.emu.script_replies([HOSTILE]);
    let root = app.engine.respond(None, HOSTILE).await.unwrap();
    app.emu.script_replies(["A calm sibling."]);
    app.engine.respond(Some(&root.id), "calm").await.unwrap();
    let browser = Browser::start().await;
    app.open(&browser, Some(&root.id)).await;
    wait_for_node(&browser, &root.id).await;
    // The graph view shows the texts too (in its tooltips).
    browser.press("g").await;
    browser
        .wait_until(
            "the graph",
            "document.querySelectorAll('#graph .gnode').length === 2",
        )
        .await;

    assert_inert(&browser).await;
    // The text is shown as the text it is, in the outline and the node view.
    let view = browser.find("#node-view").await.text().await;
    for text in [
        "<script>window.resptreePwned = 'script'</script>",
        "<img src=x onerror=",
        "javascript:",
    ] {
        assert!(view.contains(text), "{text:?} not shown in {view:?}");
    }
    let row = browser
        .find(&format!("#outline li.row[data-node-id='{}']", root.id))
        .await
        .text()
        .await;
    assert!(row.contains("<script>"), "{row:?}");
    // Only http(s) links survive, and they cannot reach the opener.
    let links = browser
        .exec(
            "return Array.from(document.querySelectorAll('#node-view .md a'))\
             .map(a => [a.protocol, a.rel]);",
            json!([]),
        )
        .await;
    for link in links.as_array().unwrap() {
        assert!(
            link[0] == "https:" || link[0] == "http:",
            "unsafe link {link}"
        );
        assert!(link[1].as_str().unwrap().contains("noopener"), "{link}");
    }
    browser.screenshot("hostile.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_export_renders_offline_from_a_file_url() {
    let app = App::start().await;
    let tree = app.sample().await;
    app.emu.script_replies([HOSTILE]);
    let hostile = app
        .engine
        .respond(
            Some(&tree.kids[2]),
            "</script><script>window.resptreePwned = 'export'</script>",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tree.html");
    std::fs::write(&file, export_html(app.tree()).unwrap()).unwrap();
    // The server is not needed: the file must stand alone.
    drop(app.server);

    let browser = Browser::start().await;
    browser.goto(&file_url(&file)).await;
    wait_ready(&browser).await;
    assert_eq!(
        row_ids(&browser, "#roots > li.row").await,
        [tree.root.to_string()]
    );
    browser
        .find("#roots > li.row > .line .toggle")
        .await
        .click()
        .await;
    let target = &tree.kids[1];
    browser
        .find(&format!("#outline li.row[data-node-id='{target}'] a.label"))
        .await
        .click()
        .await;
    wait_for_node(&browser, target).await;
    let prompt = app.engine.tree().get(target).unwrap().user_text().unwrap();
    let transcript = browser.find("#transcript").await.text().await;
    assert!(
        transcript.contains(&prompt),
        "{prompt:?} not in {transcript:?}"
    );

    // The search box searches the embedded data and jumps to the first hit.
    let search = browser.find("#search").await;
    search.send_keys("Sunday").await;
    search.send_keys(keys::ENTER).await;
    wait_for_node(&browser, &tree.grandchild).await;

    // A node whose text closes the data block stays data.
    browser
        .goto(&format!("{}#node={}", file_url(&file), hostile.id))
        .await;
    wait_ready(&browser).await;
    wait_for_node(&browser, &hostile.id).await;
    assert_inert(&browser).await;
    assert!(
        browser
            .find("#node-view")
            .await
            .text()
            .await
            .contains("</script><script>")
    );
    browser.screenshot("export.png").await;
}

/// Model (and user) text that would run script if it reached the DOM as HTML.
/// Each path sets `window.resptreePwned`; the flag's name has no underscores, so
/// Markdown emphasis cannot take it apart.
const HOSTILE: &str = "# Title <script>window.resptreePwned = 'script'</script>\n\n\
    <img src=x onerror=\"window.resptreePwned = 'img'\"> and **bold**\n\n\
    [click me](javascript:window.resptreePwned='link') \
    <a href=\"javascript:window.resptreePwned='a'\">raw</a>\n\n\
    <svg onload=\"window.resptreePwned = 'svg'\"></svg>\
    <iframe src=\"javascript:window.resptreePwned='iframe'\"></iframe>\n\n\
    [fine](https://example.com/\" onclick=\"window.resptreePwned='attr')\n\n\
    ```\n</code></pre><script>window.resptreePwned = 'code'</script>\n```\n";

/// Nothing of [`HOSTILE`] ran or became an element.
/// Another process's commit to a PostgreSQL tree appears in the open page by
/// itself: the store's NOTIFY wakes the server, whose answer to the page's
/// change long poll makes the page reload its outline.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_by_another_process_appears_in_the_open_page() {
    use crate::support::stores::{Backend, Postgres};
    use crate::tree::node;

    let pg = Postgres::new();
    let ours = std::sync::Arc::new(ResponseTree::with_store(pg.open()).unwrap());
    let theirs = ResponseTree::with_store(pg.open()).unwrap();
    theirs
        .insert(node("resp_first", None, 1, "Already there", "yes"))
        .unwrap();
    ours.refresh().unwrap();
    let server = WebServer::read_only(std::sync::Arc::clone(&ours))
        .spawn()
        .await
        .unwrap();
    let browser = Browser::start().await;
    browser.goto(&server.url()).await;
    wait_ready(&browser).await;
    assert_eq!(row_ids(&browser, "#roots > li.row").await, ["resp_first"]);

    theirs
        .insert(node("resp_second", None, 2, "Written elsewhere", "hello"))
        .unwrap();
    browser
        .wait_until(
            "the other process's root in the outline",
            "document.querySelector(\"#roots > li.row[data-node-id='resp_second']\") !== null",
        )
        .await;
    let row = browser
        .find("#roots > li.row[data-node-id='resp_second']")
        .await;
    assert!(row.text().await.contains("Written elsewhere"));
    assert_eq!(
        browser
            .exec(
                "return document.getElementById('live').className;",
                json!([])
            )
            .await,
        json!("ok"),
        "the page's change poll is up"
    );
    assert_no_page_errors(&browser).await;
    server.shutdown().await;
}

async fn assert_inert(browser: &Browser) {
    assert_eq!(browser.alert_text().await, None, "a dialog opened");
    assert_eq!(
        browser
            .exec("return window.resptreePwned === undefined;", json!([]))
            .await,
        json!(true),
        "injected script ran: {}",
        browser
            .exec("return String(window.resptreePwned);", json!([]))
            .await
    );
    let injected = "#outline script, #outline img, #outline svg, #outline iframe, \
        #main script, #main img, #main iframe, #node-view svg, \
        [onerror], [onload], [onclick], [srcdoc]";
    assert_eq!(browser.count(injected).await, 0, "injected elements");
    let bad_links = browser
        .exec(
            "return Array.from(document.querySelectorAll('a[href]'))\
             .filter(a => a.protocol === 'javascript:').length;",
            json!([]),
        )
        .await;
    assert_eq!(bad_links, json!(0), "javascript: links");
}

/// The app's `fail` shows errors in `#toast.error`; the browser logs blocked
/// scripts (CSP) and uncaught exceptions as SEVERE. Neither may happen.
async fn assert_no_page_errors(browser: &Browser) {
    let toast = browser
        .exec(
            "const t = document.getElementById('toast'); \
             return t && t.classList.contains('error') ? t.textContent : null;",
            json!([]),
        )
        .await;
    assert_eq!(toast, json!(null), "the app showed an error");
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        // Chromium logs every failed fetch. It asks every site for an icon (the
        // app has none: 404 is a normal answer). The app learns whether there
        // is a favourite from `/api/favourite`, which says so without a 404.
        .filter(|e| !(e.contains("/favicon.ico") && e.contains("status of 404")))
        .collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
}

/// The `data-node-id`s of the elements matching `css`, in document order.
async fn row_ids(browser: &Browser, css: &str) -> Vec<String> {
    let ids = browser
        .exec(
            "return Array.from(document.querySelectorAll(arguments[0]))\
             .map(e => e.dataset.nodeId);",
            json!([css]),
        )
        .await;
    serde_json::from_value(ids).unwrap()
}

async fn wait_ready(browser: &Browser) {
    browser
        .wait_until("the app to start", "document.body.dataset.ready === 'true'")
        .await;
}

/// Waits until the node view shows `id` with its transcript.
async fn wait_for_node(browser: &Browser, id: &NodeId) {
    browser
        .wait_until(
            &format!("the node view of {id}"),
            &format!(
                "document.querySelector(\"#node-view[data-node-id='{id}'] li.step.current\
                 [data-node-id='{id}']\") !== null"
            ),
        )
        .await;
}

/// An emulator, an engine over a sled store in a temporary directory, and the
/// explorer serving it with that engine on a free loopback port.
struct App {
    emu: Emulator,
    engine: Engine,
    server: WebServer,
    _dir: tempfile::TempDir,
}

/// The tree [`App::sample`] grows.
struct Sample {
    root: NodeId,
    /// The root's three children, in the tree's sibling order.
    kids: Vec<NodeId>,
    /// The first child's child.
    grandchild: NodeId,
}

impl App {
    async fn start() -> Self {
        let emu = Emulator::spawn().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree = ResponseTree::open(dir.path().join("store")).unwrap();
        let client = Client::builder()
            .base_url(emu.base_url())
            .api_key("sk-test-browser")
            .retry_base_delay(Duration::from_millis(1))
            .build()
            .unwrap();
        let engine = Engine::builder(tree, ResponsesBackend::new(client))
            .model("gpt-4o-mini")
            .build()
            .unwrap();
        let server = WebServer::with_engine(engine.clone())
            .spawn()
            .await
            .unwrap();
        Self {
            emu,
            engine,
            server,
            _dir: dir,
        }
    }

    fn tree(&self) -> &ResponseTree {
        self.engine.tree()
    }

    /// A root with three children (a branch), the first with a child.
    async fn sample(&self) -> Sample {
        let root = self
            .engine
            .respond(None, "Plan a weekend in Paris")
            .await
            .unwrap();
        for child in self
            .engine
            .branch(&root.id, ["Cheaper", "Museums", "Food"])
            .await
            .unwrap()
        {
            child.unwrap();
        }
        let kids = self.tree().children(&root.id).unwrap();
        let grandchild = self
            .engine
            .respond(Some(&kids[0]), "Only Sunday")
            .await
            .unwrap();
        Sample {
            root: root.id,
            kids,
            grandchild: grandchild.id,
        }
    }

    /// Opens the explorer (on node `at`, if given) and waits for it to start.
    async fn open(&self, browser: &Browser, at: Option<&NodeId>) {
        let url = match at {
            Some(id) => format!("{}#node={id}", self.server.url()),
            None => self.server.url(),
        };
        browser.goto(&url).await;
        wait_ready(browser).await;
    }
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
