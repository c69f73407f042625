//! The state store, audit trail and API keys against real SQLite and
//! PostgreSQL databases: every test runs once on each.

mod common;

use std::sync::Arc;

use bulwark_ops::{
    append_audit, create_key, has_active_admin, list_keys, query_audit, revoke_key, verify_audit,
    Actor, Authenticator, Entry, Filter, KeyError, Outcome, Role, Store, StoreError, StoreKeys,
    AUDIT_GENESIS, KEY_PREFIX,
};
use common::TestDb;

/// The newest migration.
const LATEST: i64 = 9;

fn entry(i: usize) -> Entry {
    Entry::new(
        &Actor::system("test"),
        "test.event",
        &format!("target-{i}"),
        Outcome::Success,
    )
    .detail(serde_json::json!({ "i": i }))
}

async fn append_n(store: &Store, n: usize) {
    for i in 1..=n {
        append_audit(store, entry(i)).await.expect("append");
    }
}

async fn drop_append_only_triggers(db: &TestDb) {
    let mut conn = db.raw().await;
    let statements: &[&str] = if db.is_postgres() {
        &["DROP TRIGGER audit_log_no_change ON audit_log"]
    } else {
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ]
    };
    for sql in statements {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
}

async fn hand_edit(db: &TestDb, sql: &str) {
    drop_append_only_triggers(db).await;
    let mut conn = db.raw().await;
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
}

on_both!(migrations_are_idempotent, migrations_are_idempotent_body);
async fn migrations_are_idempotent_body(store: Store, db: TestDb) {
    assert_eq!(store.schema_version().await.unwrap(), LATEST);
    // A second instance opening the same database finds nothing to do.
    let again = match &db {
        TestDb::Postgres { url } => Store::open_postgres(url).await.unwrap(),
        TestDb::Sqlite { url, .. } => {
            Store::open_sqlite(std::path::Path::new(url.trim_start_matches("sqlite://")))
                .await
                .unwrap()
        }
    };
    assert_eq!(again.schema_version().await.unwrap(), LATEST);
}

on_both!(
    migrations_refuse_a_gap_in_applied_versions,
    migration_gap_body
);
async fn migration_gap_body(store: Store, db: TestDb) {
    store.close().await;
    let mut conn = db.raw().await;
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT version, name, applied_at FROM bulwark_migrations")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows.len() as i64, LATEST);
    // (versions deleted by hand, the missing one named, the newer one named)
    let cases: &[(&[i64], i64, i64)] = &[
        (&[2], 2, 3),
        (&[1], 1, 2),
        (&[2, 3], 2, 4),
        (&[4], 4, 5),
        // A gap and a migration pending above it: nothing is applied.
        (&[3, LATEST], 3, 4),
    ];
    for (deleted, missing, newer) in cases {
        for v in *deleted {
            sqlx::query("DELETE FROM bulwark_migrations WHERE version = $1")
                .bind(v)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        match db.open_again().await {
            Err(e @ StoreError::MigrationGap { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(&format!("migration {missing} ("))
                        && text.contains(&format!("although {newer} was")),
                    "{deleted:?}: {text}"
                );
            }
            other => panic!("{deleted:?}: expected a migration gap, got {other:?}"),
        }
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bulwark_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left as usize, rows.len() - deleted.len(), "{deleted:?}");
        for (version, name, applied_at) in rows.iter().filter(|r| deleted.contains(&r.0)) {
            sqlx::query(
                "INSERT INTO bulwark_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(name)
            .bind(applied_at)
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    // With every version back, it opens again.
    let store = db.open_again().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), LATEST);
}

on_both!(keys_lifecycle, keys_lifecycle_body);
async fn keys_lifecycle_body(store: Store, _db: TestDb) {
    let admin = Actor::cli();
    let created = create_key(&store, &admin, Role::Analyst, "grafana")
        .await
        .unwrap();
    let secret = created.secret.expose().clone();
    assert!(secret.starts_with(KEY_PREFIX));
    assert_eq!(secret.len(), KEY_PREFIX.len() + 64);

    let auth = Authenticator::new(vec![Arc::new(StoreKeys::new(store.clone()))]);
    let principal = auth
        .authenticate(&secret)
        .await
        .unwrap()
        .expect("key works");
    assert_eq!(principal.name, "grafana");
    assert_eq!(principal.role, Role::Analyst);
    assert_eq!(principal.key_id.as_deref(), Some(created.info.id.as_str()));
    assert!(auth.authenticate("bwk_not-a-key").await.unwrap().is_none());

    let listed = list_keys(&store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.info.id);
    assert!(listed[0].revoked_at.is_none());
    assert!(!has_active_admin(&store).await.unwrap());

    let revoked = revoke_key(&store, &admin, &created.info.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(
        auth.authenticate(&secret).await.unwrap().is_none(),
        "revoked key refused"
    );
    assert!(matches!(
        revoke_key(&store, &admin, &created.info.id).await,
        Err(KeyError::AlreadyRevoked(_))
    ));
    assert!(matches!(
        revoke_key(&store, &admin, "k_nope").await,
        Err(KeyError::NotFound(_))
    ));
    assert!(matches!(
        create_key(&store, &admin, Role::Admin, "no spaces allowed").await,
        Err(KeyError::InvalidName(_))
    ));

    // Both changes are audited, and the key itself appears nowhere.
    let records = query_audit(&store, &Filter::default()).await.unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["key.revoke", "key.create"]);
    for r in &records {
        let text = format!("{r:?}");
        assert!(
            !text.contains(&secret),
            "audit record leaks the key: {text}"
        );
        assert!(
            !text.contains(&secret[4..20]),
            "audit record leaks part of the key: {text}"
        );
    }
    assert!(verify_audit(&store).await.unwrap().is_intact());
}

on_both!(audit_verify_passes_on_an_untouched_trail, audit_intact_body);
async fn audit_intact_body(store: Store, _db: TestDb) {
    let empty = verify_audit(&store).await.unwrap();
    assert!(empty.is_intact());
    assert_eq!(empty.records, 0);
    assert_eq!(empty.head, AUDIT_GENESIS);

    append_n(&store, 2500).await; // more than one verification page
    let v = verify_audit(&store).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.records, 2500);
    let newest = query_audit(
        &store,
        &Filter {
            limit: Some(1),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(v.head, newest[0].hash);
}

on_both!(audit_verify_names_an_altered_record, audit_altered_body);
async fn audit_altered_body(store: Store, db: TestDb) {
    append_n(&store, 5).await;
    hand_edit(
        &db,
        "UPDATE audit_log SET target = 'something-else' WHERE seq = 3",
    )
    .await;
    let v = verify_audit(&store).await.unwrap();
    let b = v.first_break.expect("tampering detected");
    assert_eq!(b.seq, 3);
    assert!(b.reason.contains("altered"), "{}", b.reason);
    assert_eq!(v.records, 2);
}

on_both!(audit_verify_names_a_removed_record, audit_removed_body);
async fn audit_removed_body(store: Store, db: TestDb) {
    append_n(&store, 5).await;
    hand_edit(&db, "DELETE FROM audit_log WHERE seq = 4").await;
    let b = verify_audit(&store)
        .await
        .unwrap()
        .first_break
        .expect("removal detected");
    assert_eq!(b.seq, 4);
    assert!(b.reason.contains("missing"), "{}", b.reason);
}

on_both!(audit_verify_names_reordered_records, audit_reordered_body);
async fn audit_reordered_body(store: Store, db: TestDb) {
    append_n(&store, 5).await;
    // Swap records 2 and 3 whole (content and hashes), keeping the sequence
    // numbers dense, as someone hiding the order of events would.
    hand_edit(&db, "UPDATE audit_log SET seq = 100 WHERE seq = 2").await;
    let mut conn = db.raw().await;
    for sql in [
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let b = verify_audit(&store)
        .await
        .unwrap()
        .first_break
        .expect("reordering detected");
    assert_eq!(b.seq, 2);
}

on_both!(
    audit_log_refuses_updates_and_deletes,
    audit_append_only_body
);
async fn audit_append_only_body(store: Store, db: TestDb) {
    append_n(&store, 1).await;
    let mut conn = db.raw().await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'x'")
        .execute(&mut conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&mut conn)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert!(verify_audit(&store).await.unwrap().is_intact());
}

on_both!(audit_query_filters_and_pages, audit_query_body);
async fn audit_query_body(store: Store, _db: TestDb) {
    let alice = Actor::cli();
    let bot = Actor::system("scheduler");
    append_audit(
        &store,
        Entry::new(&alice, "key.create", "k_1", Outcome::Success),
    )
    .await
    .unwrap();
    append_audit(
        &store,
        Entry::new(&bot, "backup.run", "app", Outcome::Failure),
    )
    .await
    .unwrap();
    append_audit(
        &store,
        Entry::new(&alice, "key.revoke", "k_1", Outcome::Success),
    )
    .await
    .unwrap();
    append_audit(
        &store,
        Entry::new(
            &Actor::anonymous("192.0.2.1"),
            "auth.unauthenticated",
            "GET /x",
            Outcome::Denied,
        ),
    )
    .await
    .unwrap();
    // `_` in a prefix is a literal, not a LIKE wildcard.
    append_audit(
        &store,
        Entry::new(&bot, "keyXcreate", "k_2", Outcome::Success),
    )
    .await
    .unwrap();

    let check = |filter: Filter, expected: &'static [i64]| {
        let store = store.clone();
        async move {
            let got: Vec<i64> = query_audit(&store, &filter)
                .await
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect();
            assert_eq!(got, expected, "{filter:?}");
        }
    };
    check(Filter::default(), &[5, 4, 3, 2, 1]).await;
    check(
        Filter {
            actor: Some(alice.to_string()),
            ..Default::default()
        },
        &[3, 1],
    )
    .await;
    check(
        Filter {
            action: Some("key.*".into()),
            ..Default::default()
        },
        &[3, 1],
    )
    .await;
    check(
        Filter {
            action: Some("key.create".into()),
            ..Default::default()
        },
        &[1],
    )
    .await;
    check(
        Filter {
            action: Some("key_*".into()),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        Filter {
            outcome: Some(Outcome::Denied),
            ..Default::default()
        },
        &[4],
    )
    .await;
    check(
        Filter {
            outcome: Some(Outcome::Failure),
            actor: Some(bot.to_string()),
            ..Default::default()
        },
        &[2],
    )
    .await;
    check(
        Filter {
            limit: Some(2),
            ..Default::default()
        },
        &[5, 4],
    )
    .await;
    check(
        Filter {
            limit: Some(2),
            before_seq: Some(4),
            ..Default::default()
        },
        &[3, 2],
    )
    .await;
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    check(
        Filter {
            since: Some(future),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        Filter {
            until: Some(future),
            limit: Some(1),
            ..Default::default()
        },
        &[5],
    )
    .await;
}

on_both!(
    concurrent_appends_from_two_instances_keep_one_chain,
    audit_concurrent_body
);
async fn audit_concurrent_body(store: Store, db: TestDb) {
    // A second Store is what a second Bulwark instance would hold: its own
    // pool and its own in-process lock, sharing only the database.
    let other = match &db {
        TestDb::Postgres { url } => Store::open_postgres(url).await.unwrap(),
        TestDb::Sqlite { url, .. } => {
            Store::open_sqlite(std::path::Path::new(url.trim_start_matches("sqlite://")))
                .await
                .unwrap()
        }
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(
            async move { append_audit(&s, entry(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().expect("concurrent append");
    }
    let v = verify_audit(&store).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.records, 40);
}
