//! [`open_location`]: a store from what a user typed (a path or a URL).

use std::ffi::OsStr;
use std::path::Path;

use crate::error::{Error, Result};

use super::Store;

/// Opens the store at `location`: a `postgres://` or `postgresql://` URL opens a
/// PostgreSQL store (feature `postgres`), anything else is the path of a sled
/// store (feature `sled`), created if missing.
///
/// This is what the CLI's `--store`, `RESPTREE_STORE` and `migrate --from/--to`
/// accept. A location that is not UTF-8 can only be a path.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let store = resptree::store::open_location(dir.path().join("tree").to_str().unwrap())?;
/// assert!(store.load()?.nodes.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] for an empty location; [`Error::Unsupported`] if the
/// backend it names was not compiled in; otherwise the errors of
/// `PostgresStore::connect` or `SledStore::open`.
pub fn open_location(location: impl AsRef<OsStr>) -> Result<Box<dyn Store>> {
    let location = location.as_ref();
    match location.to_str().map(str::trim) {
        Some("") => Err(Error::config("the store location is empty")),
        Some(url) if is_postgres_url(url) => open_postgres(url),
        Some(path) => open_sled(Path::new(path)),
        None => open_sled(Path::new(location)),
    }
}

/// Whether `location` names a PostgreSQL database rather than a path.
fn is_postgres_url(location: &str) -> bool {
    let lower = location.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<Box<dyn Store>> {
    Ok(Box::new(super::PostgresStore::connect(url)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_url: &str) -> Result<Box<dyn Store>> {
    Err(Error::Unsupported(
        "PostgreSQL store locations need resptree's `postgres` feature",
    ))
}

#[cfg(feature = "sled")]
fn open_sled(path: &Path) -> Result<Box<dyn Store>> {
    Ok(Box::new(super::SledStore::open(path)?))
}

#[cfg(not(feature = "sled"))]
fn open_sled(_path: &Path) -> Result<Box<dyn Store>> {
    Err(Error::Unsupported(
        "store paths need resptree's `sled` feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_postgres_url("postgres://u@127.0.0.1/db"));
        assert!(is_postgres_url("PostgreSQL://u@127.0.0.1/db"));
        assert!(!is_postgres_url("./postgres"));
        assert!(!is_postgres_url("/var/lib/resptree"));
        assert!(matches!(open_location("  "), Err(Error::Config { .. })));
    }
}
