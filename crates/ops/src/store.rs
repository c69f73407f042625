//! The state store: SQLite in the data directory by default, PostgreSQL when
//! `[server] database` names one.
//!
//! Queries are written once, in the SQL both dialects accept, and run through
//! sqlx's `Any` driver; `$1`-style placeholders work on both (SQLite reads
//! them as numbered parameters). Where the dialects genuinely differ (DDL for
//! triggers, locking) the code branches on [`Dialect`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which SQL engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Errors of the state store. The database URL never appears in them: it
/// may carry a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the {dialect:?} database: {source}")]
    Connect {
        dialect: Dialect,
        source: sqlx::Error,
    },
    #[error("database migration {version} ({name}) failed: {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("the database schema is at version {found}, newer than this binary knows ({known}); upgrade bulwark")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database migration {missing} ({name}) was never applied although {newer} was; refusing to guess the schema, restore the database from a backup")]
    MigrationGap {
        missing: i64,
        name: &'static str,
        newer: i64,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A handle to the state store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// Serialises audit appends within this process so concurrent requests do
    /// not race for the next sequence number (across processes the primary
    /// key on `seq` is the arbiter and the loser retries).
    pub(crate) audit_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// One schema change, in each dialect. Versions only ever grow; a shipped
/// migration is never edited.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    /// A migration whose plain SQL both engines accept: one file serves both
    /// dialects.
    const fn shared(version: i64, name: &'static str, sql: &'static str) -> Migration {
        Migration {
            version,
            name,
            sqlite: sql,
            postgres: sql,
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys and audit trail",
        sqlite: include_str!("../migrations/0001_init.sqlite.sql"),
        postgres: include_str!("../migrations/0001_init.postgres.sql"),
    },
    Migration::shared(
        2,
        "monitoring, slos and alerting",
        include_str!("../migrations/0002_monitoring.sql"),
    ),
    Migration::shared(
        3,
        "secrets, scheduled jobs and drill reports",
        include_str!("../migrations/0003_secrets_jobs.sql"),
    ),
    Migration::shared(
        4,
        "alert groups",
        include_str!("../migrations/0004_alert_groups.sql"),
    ),
    Migration::shared(
        5,
        "hourly rollups",
        include_str!("../migrations/0005_hourly_rollups.sql"),
    ),
    Migration {
        version: 6,
        name: "cancelled job runs",
        sqlite: include_str!("../migrations/0006_cancelled_runs.sqlite.sql"),
        postgres: include_str!("../migrations/0006_cancelled_runs.postgres.sql"),
    },
    Migration::shared(
        7,
        "dashboard sessions",
        include_str!("../migrations/0007_sessions.sql"),
    ),
    Migration::shared(
        8,
        "event export",
        include_str!("../migrations/0008_events.sql"),
    ),
    Migration::shared(
        9,
        "storage usage",
        include_str!("../migrations/0009_storage_usage.sql"),
    ),
];

/// Fixed key for `pg_advisory_lock` while migrating, so that several
/// instances starting at once migrate one after another.
const MIGRATION_LOCK_KEY: i64 = 0x6275_6c77_0001;

impl Store {
    /// Opens the store: PostgreSQL when `database` is given, else SQLite at
    /// `<data_dir>/bulwark.db` (created, WAL mode). Runs pending migrations.
    ///
    /// # Errors
    /// When the data directory cannot be created, the database cannot be
    /// reached, or a migration fails.
    pub async fn open(database: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        match database {
            Some(url) => Store::open_postgres(url).await,
            None => {
                let db = data_dir.join("bulwark.db");
                // Private before SQLite touches it: the database holds the
                // audit trail and job history, and its `-wal`/`-shm` files
                // take the database file's mode.
                crate::files::private_dir(data_dir)
                    .and_then(|()| crate::files::private_file(&db))
                    .map_err(|source| StoreError::DataDir {
                        path: data_dir.to_path_buf(),
                        source,
                    })?;
                Store::open_sqlite(&db).await
            }
        }
    }

    /// Opens (creating if needed) a SQLite database file.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options = AnyConnectOptions::from_str(&url).map_err(|source| StoreError::Connect {
            dialect: Dialect::Sqlite,
            source,
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed while one writer commits; the
                    // busy timeout turns writer contention into waiting
                    // instead of SQLITE_BUSY errors.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                dialect: Dialect::Sqlite,
                source,
            })?;
        Store::with_pool(pool, Dialect::Sqlite).await
    }

    /// Connects to PostgreSQL at `url` (`postgres://` or `postgresql://`).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url).map_err(|source| StoreError::Connect {
            dialect: Dialect::Postgres,
            source,
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                dialect: Dialect::Postgres,
                source,
            })?;
        Store::with_pool(pool, Dialect::Postgres).await
    }

    async fn with_pool(pool: AnyPool, dialect: Dialect) -> Result<Store, StoreError> {
        let store = Store {
            pool,
            dialect,
            audit_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The schema version the database is at.
    ///
    /// # Errors
    /// On a database error.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM bulwark_migrations")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Closes every connection, waiting for running queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // One connection for the whole run: PostgreSQL advisory locks belong
        // to the session that took them.
        let mut conn = self.pool.acquire().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        let result = self.migrate_on(&mut conn).await;
        if self.dialect == Dialect::Postgres {
            // Released even when a migration failed, so another instance can try.
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    async fn migrate_on(&self, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bulwark_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&mut *conn)
        .await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM bulwark_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await?;
        let current = applied.last().copied().unwrap_or(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > known {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known,
            });
        }
        // Only versions above the newest applied one run, so a hole below it
        // (a row deleted by hand, a half-restored backup) would never be
        // filled: the schema would lack what that migration made.
        if let Some((missing, newer)) = first_gap(&applied) {
            return Err(StoreError::MigrationGap {
                missing,
                name: MIGRATIONS
                    .iter()
                    .find(|m| m.version == missing)
                    .map_or("unknown", |m| m.name),
                newer,
            });
        }
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let sql = match self.dialect {
                Dialect::Sqlite => migration.sqlite,
                Dialect::Postgres => migration.postgres,
            };
            let wrap = |source| StoreError::Migrate {
                version: migration.version,
                name: migration.name,
                source,
            };
            // Both engines have transactional DDL: a failed migration leaves
            // the schema as it was.
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(wrap)?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(wrap)?;
            sqlx::query(
                "INSERT INTO bulwark_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(crate::time::Timestamp::now().as_millis())
            .execute(&mut *tx)
            .await
            .map_err(wrap)?;
            tx.commit().await.map_err(wrap)?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied database migration"
            );
        }
        Ok(())
    }
}

/// The first version missing from `applied` (ascending) below its newest
/// entry, with the applied version that follows it.
fn first_gap(applied: &[i64]) -> Option<(i64, i64)> {
    let mut expected = 1;
    for &v in applied {
        if v > expected {
            return Some((expected, v));
        }
        expected = expected.max(v + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_in_applied_versions() {
        let check = |applied: &[i64], expected: Option<(i64, i64)>| {
            assert_eq!(first_gap(applied), expected, "{applied:?}");
        };
        check(&[], None);
        check(&[1], None);
        check(&[1, 2, 3, 4, 5], None);
        check(&[2], Some((1, 2)));
        check(&[1, 3], Some((2, 3)));
        check(&[1, 4, 5], Some((2, 4)));
        check(&[1, 2, 4], Some((3, 4)));
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        // So a gap in a database always names a migration this binary has.
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(versions, expected);
    }
}
