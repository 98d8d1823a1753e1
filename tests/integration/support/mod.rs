//! Shared helpers for the integration tests.

pub(crate) mod raw_http;
pub(crate) mod shared_store;
pub(crate) mod stores;
pub(crate) mod webdriver;

use std::path::PathBuf;

/// The protocol fixtures: hand-written examples of what the OpenAI API sends.
///
/// This is the repository's own copy of the team's protocol reference; the tests
/// read only this copy, never anything outside the repository. How to refresh it
/// is in `tests/fixtures/protocol/README.md`. The emulator tests, the client tests
/// and the fuzz seeds all read this one directory.
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protocol")
}

/// A protocol fixture file's text.
pub(crate) fn fixture_text(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The number of property-test cases to run: `PROPTEST_CASES` when it is set,
/// else `default`.
///
/// proptest's `ProptestConfig::default()` reads `PROPTEST_CASES`, but a test that
/// sets `cases` itself would override it; going through here keeps the
/// environment in charge (a quick local run, or a long soak in CI).
pub(crate) fn proptest_cases(default: u32) -> u32 {
    cases_from(std::env::var("PROPTEST_CASES").ok().as_deref(), default)
}

fn cases_from(env: Option<&str>, default: u32) -> u32 {
    env.and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[test]
fn proptest_cases_prefers_the_environment() {
    assert_eq!(cases_from(None, 48), 48);
    assert_eq!(cases_from(Some("2000"), 48), 2000);
    // proptest warns and keeps its default on a bad value; so do we.
    assert_eq!(cases_from(Some("lots"), 48), 48);
}

/// Opens the sled database under a store directly, to read or damage records
/// behind the store's back.
///
/// Raw sled does not wait for a lock the way `SledStore::open` does (sled drops
/// its file lock from background threads after the last handle closes), so this
/// waits here, as long as the library would by default.
///
/// sled only opens a database with the compression setting it was created with
/// (stores of schema 3 compress, older ones do not): its `conf` file says which.
pub(crate) fn open_raw(path: &std::path::Path) -> sled::Db {
    // Not UTF-8 throughout: sled ends the file with a binary checksum.
    let conf = std::fs::read(path.join("conf")).unwrap_or_default();
    let conf = String::from_utf8_lossy(&conf);
    let config = sled::Config::new()
        .path(path)
        .use_compression(!conf.contains("use_compression: false"));
    let wait = resptree::store::SledOptions::default().lock_wait;
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return db,
            Err(_) if started.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening {} with sled: {e}", path.display()),
        }
    }
}

/// Makes the next load of the store at `path` scan its records, as it must
/// after they were edited behind the store's back (see
/// `SledStore::forget_snapshot`).
pub(crate) fn forget_snapshot(path: &std::path::Path) {
    resptree::store::SledStore::open(path)
        .unwrap()
        .forget_snapshot()
        .unwrap();
}
