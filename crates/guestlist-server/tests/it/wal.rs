//! The SQLite store's WAL checkpoints (`store/writer.rs` module docs): the writer connection
//! never checkpoints inside a commit; a background thread copies the WAL into the database file
//! as it grows by 1,000 pages, and once the writes pause the whole WAL is copied and the next
//! write starts it again from its beginning.

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

/// The WAL's last valid frame, `mxFrame` of the wal-index header in `<database>-shm`
/// (<https://sqlite.org/walformat.html>, "The WAL-Index Header": a 32-bit native-order integer
/// at byte 16): read from the file, so observing it checkpoints nothing.
fn wal_frames(shm: &std::path::Path) -> u32 {
    let bytes = std::fs::read(shm).unwrap();
    u32::from_ne_bytes(bytes[16..20].try_into().unwrap())
}

#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wal.db");
    let shm = dir.path().join("wal.db-shm");
    let store = SqliteStore::open(&db).unwrap();
    let empty = len(&db);
    sign_ups(&store, 0, SIGN_UPS).await;
    let frames_after_load = wal_frames(&shm);
    // The database file fills as the checkpointer copies the WAL into it, with the store open
    // and nobody asking for a checkpoint (bounded wait: the last checkpoint may still run).
    let deadline = Instant::now() + Duration::from_secs(20);
    while len(&db) < empty + 1024 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grown = len(&db) - empty;
    assert!(
        grown >= 1024 * 1024,
        "the WAL was not checkpointed into the database file while the store was open \
         (database file +{grown} bytes)"
    );
    // Once the writes pause, the checkpointer copies what the load left and the next write
    // starts the WAL again from its beginning (without it the WAL would only restart at the
    // writer's own checkpoint, 16,000 pages on).
    let mut frames = frames_after_load;
    let mut i = SIGN_UPS;
    while frames >= 1000 && Instant::now() < deadline + Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sign_ups(&store, i, 1).await;
        i += 1;
        frames = wal_frames(&shm);
    }
    println!(
        "database file +{} KiB; WAL {frames_after_load} frames after {SIGN_UPS} sign-ups, {frames} after a pause",
        grown / 1024
    );
    assert!(
        frames_after_load >= 1000,
        "the load should have passed the checkpoint threshold ({frames_after_load} frames)"
    );
    assert!(
        frames < 1000,
        "the WAL did not restart after the writes paused ({frames} frames)"
    );
    assert_eq!(store.verify_check_index(&[]).unwrap().1, i);
    // The checkpoint thread did the copying, not the writer inside its commits: the writer's
    // own checkpoint is only for a WAL past 16,000 pages, which this load does not reach.
    let (background, by_writer) = store.wal_checkpoints();
    println!("checkpoints: {background} by the checkpoint thread, {by_writer} by the writer");
    assert!(
        frames_after_load < 16_000,
        "the load passed the writer's own threshold ({frames_after_load} frames)"
    );
    assert!(
        background >= 1,
        "the checkpoint thread never ran a checkpoint"
    );
    assert_eq!(by_writer, 0, "the writer checkpointed inside its commits");
    // The same counters on `/metrics`.
    let metrics = guestlist_server::store::backend::Backend::render_metrics(&store);
    for line in [
        format!("guestlist_sqlite_wal_checkpoints_total{{by=\"background\"}} {background}\n"),
        "guestlist_sqlite_wal_checkpoints_total{by=\"writer\"} 0\n".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line:?} not in {metrics}");
    }
}
