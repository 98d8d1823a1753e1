//! The web explorer in a real browser: headless Chromium driven over WebDriver
//! (`support::webdriver`).
//!
//! They need `RESPTREE_TEST_WEBDRIVER_URL`; `bash scripts/test` installs
//! Chromium and chromedriver when missing and provides it.

use serde_json::json;

use crate::support::webdriver::{Browser, keys};

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
