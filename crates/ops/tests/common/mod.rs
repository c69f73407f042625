//! Real databases for the store tests: a SQLite file in a temporary
//! directory, and a fresh schema in the PostgreSQL server that
//! `scripts/test.sh` starts (its URL in `BULWARK_TEST_DATABASE_URL`).

#![allow(dead_code)]

use std::str::FromStr;

use bulwark_ops::Store;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions};

pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        url: String,
    },
}

impl TestDb {
    /// A second, independent connection: what someone editing the database
    /// by hand would use.
    pub async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url } => url,
        };
        AnyConnectOptions::from_str(url)
            .expect("test database url")
            .connect()
            .await
            .expect("raw connection to the test database")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

pub async fn sqlite() -> (Store, TestDb) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bulwark.db");
    let store = Store::open_sqlite(&path).await.expect("open sqlite store");
    let url = format!("sqlite://{}", path.display());
    (store, TestDb::Sqlite { _dir: dir, url })
}

pub fn postgres_url() -> String {
    std::env::var("BULWARK_TEST_DATABASE_URL").expect(
        "BULWARK_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, \
         which installs and starts PostgreSQL and sets it",
    )
}

pub async fn postgres() -> (Store, TestDb) {
    sqlx::any::install_default_drivers();
    let base = postgres_url();
    let schema = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut admin = AnyConnectOptions::from_str(&base)
        .expect("postgres url")
        .connect()
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open_postgres(&url)
        .await
        .expect("open postgres store");
    (store, TestDb::Postgres { url })
}

/// Runs an async test body once on SQLite and once on PostgreSQL, as two
/// named tests.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, db) = $crate::common::sqlite().await;
                super::$body(store, db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (store, db) = $crate::common::postgres().await;
                super::$body(store, db).await;
            }
        }
    };
}
