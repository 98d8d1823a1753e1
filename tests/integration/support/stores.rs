//! Store factories for the generic store suite, and the PostgreSQL test database.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use resptree::store::{Durability, MemoryStore, SledStore, Store};

pub(crate) use super::shared_store::Shared;

/// A store under test. `open` may be called again (after every earlier handle
/// was dropped) to reopen the same store, as a restarted process would.
pub(crate) trait Backend {
    /// Opens the store.
    fn open(&self) -> Box<dyn Store>;
}

/// An in-memory store; reopening hands back the same store.
#[derive(Debug, Default)]
pub(crate) struct Memory(Arc<MemoryStore>);

impl Backend for Memory {
    fn open(&self) -> Box<dyn Store> {
        Box::new(Shared(self.0.clone()))
    }
}

/// A sled store in a temporary directory.
#[derive(Debug)]
pub(crate) struct Sled {
    _dir: tempfile::TempDir,
    path: PathBuf,
    durability: Durability,
}

impl Sled {
    pub(crate) fn new(durability: Durability) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        Self {
            _dir: dir,
            path,
            durability,
        }
    }
}

impl Backend for Sled {
    fn open(&self) -> Box<dyn Store> {
        Box::new(
            SledStore::open(&self.path)
                .unwrap()
                .with_durability(self.durability),
        )
    }
}

#[cfg(feature = "postgres")]
pub(crate) use self::postgres::{Postgres, postgres_url};

#[cfg(feature = "postgres")]
mod postgres {
    use resptree::store::{PostgresOptions, PostgresStore, Store};

    use super::Backend;

    /// The environment variable naming the test database.
    const URL_VAR: &str = "RESPTREE_TEST_POSTGRES_URL";

    /// The URL of the test database. Without one the PostgreSQL tests fail (they
    /// are never skipped silently), saying how to get one.
    pub(crate) fn postgres_url() -> String {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "{URL_VAR} is not set: the PostgreSQL store tests need a database. \
                 Run `bash scripts/test`, which installs PostgreSQL if needed and starts a \
                 throwaway cluster on loopback, or set {URL_VAR}=postgres://user@127.0.0.1:port/db \
                 (a database where the user may create schemas)"
            ),
        }
    }

    /// A store in a fresh schema of the test database, so tests never see each
    /// other's rows.
    #[derive(Debug)]
    pub(crate) struct Postgres {
        url: String,
        schema: String,
    }

    impl Postgres {
        pub(crate) fn new() -> Self {
            Self {
                url: postgres_url(),
                schema: format!("t_{}", uuid::Uuid::now_v7().simple()),
            }
        }

        /// The schema the tables are in.
        pub(crate) fn schema(&self) -> &str {
            &self.schema
        }

        /// Runs `sql` behind the store's back (`{schema}` stands for the
        /// store's schema), as an older build or another tool would.
        pub(crate) fn execute(&self, sql: &str) {
            let sql = sql.replace("{schema}", &self.schema);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                client.batch_execute(&sql).await.unwrap();
            });
        }

        /// A new connection to the same store, with its concrete type.
        pub(crate) fn connect(&self) -> PostgresStore {
            PostgresStore::connect_with(
                &self.url,
                PostgresOptions::default().with_schema(self.schema.clone()),
            )
            .unwrap()
        }
    }

    impl Backend for Postgres {
        fn open(&self) -> Box<dyn Store> {
            Box::new(self.connect())
        }
    }
}
