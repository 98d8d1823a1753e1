//! Shared helpers for the integration tests.

pub(crate) mod raw_http;
pub(crate) mod stores;

/// Opens the sled database under a store directly, waiting for the lock the last
/// `ResponseTree` released: sled drops its file lock from a background thread.
/// sled only opens a database with the compression setting it was created with
/// (stores of schema 3 compress, older ones do not): its `conf` file says which.
pub(crate) fn open_raw(path: &std::path::Path) -> sled::Db {
    // Not UTF-8 throughout: sled ends the file with a binary checksum.
    let conf = std::fs::read(path.join("conf")).unwrap_or_default();
    let conf = String::from_utf8_lossy(&conf);
    let config = sled::Config::new()
        .path(path)
        .use_compression(!conf.contains("use_compression: false"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match config.open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
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
