//! The SQLite store's WAL checkpoints (`store/writer.rs` module docs): the writer connection
//! never checkpoints inside a commit; a background thread copies the WAL into the database file
//! once it passes 1,000 pages, and the WAL restarts from its beginning, so under a sustained
//! sign-up load the database file fills and the WAL file stays bounded while the store is open.

use std::time::{Duration, Instant};

use guestlist_core::connector::Claims;
use guestlist_core::policy::Policy;
use guestlist_server::store::SqliteStore;
use serde_json::json;
use time::OffsetDateTime;

fn claims(i: usize) -> Claims {
    let email = format!("wal-{i}@contoso.example");
    Claims::from_json(json!({
        "email": email, "displayName": "Wal Guest", "givenName": "Wal", "surname": "Guest",
        "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]
    }))
    .unwrap()
}

fn len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Sign-ups stored by [`sign_ups`], 64 at a time (so the writer commits them in groups).
const SIGN_UPS: usize = 4096;

async fn sign_ups(store: &SqliteStore, from: usize, n: usize) {
    let policy = Policy::default();
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(64) {
        let calls = chunk.iter().map(|&i| {
            let (store, policy) = (store.clone(), policy.clone());
            async move {
                store
                    .request_approval_async(
                        &claims(i),
                        &policy,
                        OffsetDateTime::now_utc(),
                        time::Duration::ZERO,
                    )
                    .await
            }
        });
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
    }
}

#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wal.db");
    let wal = dir.path().join("wal.db-wal");
    let store = SqliteStore::open(&db).unwrap();
    let empty = len(&db);
    sign_ups(&store, 0, SIGN_UPS).await;
    let wal_after_first = len(&wal);
    // The database file grows as the checkpointer copies the WAL into it, with the store open
    // and nobody asking for a checkpoint (bounded wait: the last checkpoint may still run).
    let deadline = Instant::now() + Duration::from_secs(20);
    while len(&db) < empty + (wal_after_first / 2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grown = len(&db) - empty;
    // The same load again: the WAL restarts from its beginning after each complete checkpoint,
    // so its file does not grow with what was written, while the database file does.
    sign_ups(&store, SIGN_UPS, SIGN_UPS).await;
    let wal_after_second = len(&wal);
    let data = len(&db) - empty;
    println!(
        "database file +{} KiB then +{} KiB; WAL file {} KiB after the first {SIGN_UPS} sign-ups, {} KiB after the second",
        grown / 1024,
        data / 1024,
        wal_after_first / 1024,
        wal_after_second / 1024
    );
    assert!(
        grown >= 1024 * 1024,
        "the WAL was not checkpointed into the database file while the store was open \
         (database file +{grown} bytes)"
    );
    // 1,000 pages of 4 KiB is the checkpoint threshold; the WAL may pass it by what is written
    // while a checkpoint runs, never by the whole load.
    assert!(
        wal_after_second < 3 * wal_after_first.max(8 * 1024 * 1024),
        "the WAL grew with the load: {wal_after_first} then {wal_after_second} bytes"
    );
    assert_eq!(store.verify_check_index(&[]).unwrap().1, 2 * SIGN_UPS);
}
