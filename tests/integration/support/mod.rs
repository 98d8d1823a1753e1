//! Shared helpers for the integration tests.

pub(crate) mod raw_http;
pub(crate) mod shared_store;
pub(crate) mod stores;

/// Opens the sled database under a store directly, waiting for the lock the last
/// `ResponseTree` released: sled drops its file lock from a background thread.
pub(crate) fn open_raw(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
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
