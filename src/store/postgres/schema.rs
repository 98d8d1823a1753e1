//! The embedded, versioned schema migrations.

use deadpool_postgres::Client;

use crate::error::{Error, Result};

/// Every migration, in order: `(version, name, SQL)`. A database records the
/// versions it has in `schema_migrations`; a newer build applies the rest.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "annotations",
        include_str!("migrations/0002_annotations.sql"),
    ),
    (3, "search", include_str!("migrations/0003_search.sql")),
];

/// The newest schema version this build knows.
pub(super) const LATEST: i32 = 3;

/// An arbitrary, fixed advisory-lock key ("rsptree" in ASCII), so that processes
/// connecting at the same time do not race to create the same tables.
const MIGRATION_LOCK: i64 = 0x0072_7370_7472_6565;

/// Brings the schema (in `schema`, or the connection's default) up to
/// [`LATEST`], in one transaction.
pub(super) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<()> {
    let op = "migrating the PostgreSQL schema";
    let db = |e| Error::storage(op, e);
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    if let Some(schema) = schema {
        // `schema` was checked to be a plain identifier, so quoting it is enough.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(db)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(db)?;
    let current: i32 = row.try_get(0).map_err(db)?;
    if current > LATEST {
        return Err(Error::corrupt(
            "schema_migrations",
            format!("schema version {current} is newer than this build ({LATEST})"),
        ));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_latest() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        let expected: Vec<i32> = (1..=LATEST).collect();
        assert_eq!(versions, expected);
    }
}
