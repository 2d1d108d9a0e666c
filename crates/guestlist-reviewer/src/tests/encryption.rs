//! The cache at rest (issue 5): SQLCipher encryption with the key in the token store, the
//! migration of a plaintext cache, a lost or unusable key, and sign-out's key deletion. Real
//! SQLite files in temporary directories; the bytes on disk are searched for personal data.

use std::time::Instant;

use super::*;
use crate::cache::{Cache, CacheKey, key_account};

/// Personal data that must never be found in clear in the cache files.
const EMAIL: &str = "zelda.quuxworth@fabrikam.com";
const NAME: &str = "Zelda Quuxworth";
const REASON: &str = "unknown sponsor Qwertyuiop";

fn zelda(id: u128) -> ApprovalRequest {
    request(
        id,
        EMAIL,
        json!({"displayName": NAME, "companyName": "Fabrikam"}),
        2,
    )
}

fn account(dir: &Path) -> String {
    key_account(&std::fs::canonicalize(dir).unwrap())
}

fn stored_key(store: &dyn TokenStore, dir: &Path) -> Option<String> {
    store.load(&account(dir)).unwrap()
}

/// Bytes of `reviewer.db` and its `-wal` (empty when missing).
fn files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_default();
    (read("reviewer.db"), read("reviewer.db-wal"))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_no_personal_data(dir: &Path) {
    let (db, wal) = files(dir);
    assert!(!db.starts_with(b"SQLite format 3\0"), "plaintext header");
    for needle in [EMAIL, NAME, REASON, "fabrikam"] {
        assert!(!contains(&db, needle), "{needle} in reviewer.db");
        assert!(!contains(&wal, needle), "{needle} in reviewer.db-wal");
    }
}

/// A token store whose every call fails, like the OS keyring with no Secret Service.
#[derive(Debug)]
struct BrokenKeyring;

impl TokenStore for BrokenKeyring {
    fn load(&self, _: &str) -> Result<Option<String>, ReviewerError> {
        Err(ReviewerError::new(
            codes::KEYRING_UNAVAILABLE,
            "the OS keyring cannot be used: no session bus",
        ))
    }
    fn save(&self, a: &str, _: &str) -> Result<(), ReviewerError> {
        self.load(a).map(|_| ())
    }
    fn delete(&self, a: &str) -> Result<(), ReviewerError> {
        self.load(a).map(|_| ())
    }
}

#[tokio::test]
async fn cache_files_hold_no_personal_data_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let r = open_in(dir.path(), store.clone()).await;
    r.inner
        .cache
        .store_pending(&[zelda(1), zelda(2)], true)
        .unwrap();
    r.deny(vec![zelda(2).id.to_string()], REASON.into())
        .await
        .unwrap();
    // Still open: the last writes are in the WAL, which must be encrypted too.
    let (_, wal) = files(dir.path());
    assert!(!wal.is_empty(), "the WAL holds the writes");
    assert_no_personal_data(dir.path());
    let key = stored_key(store.as_ref(), dir.path()).expect("a key in the store");
    assert!(CacheKey::from_hex(&key).is_some(), "64 hex digits");
    assert_eq!(
        r.queue(QueueQuery {
            q: Some("quuxworth".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .total_matching,
        2,
        "search works on the decrypted data"
    );
    drop(r);
    assert_no_personal_data(dir.path());

    // The same data in a plaintext cache (the earlier versions) is found by the same search:
    // the check above is able to see it.
    let plain = tempfile::tempdir().unwrap();
    let c = Cache::open_plaintext(&plain.path().join("reviewer.db")).unwrap();
    c.store_pending(&[zelda(1)], true).unwrap();
    let (db, wal) = files(plain.path());
    assert!(contains(&db, EMAIL) || contains(&wal, EMAIL));
}

#[tokio::test]
async fn the_same_key_reopens_the_cache_and_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviewer.db");
    let key = CacheKey::generate().unwrap();
    {
        let c = Cache::open(&path, &key).unwrap();
        c.store_pending(&[zelda(3)], true).unwrap();
        c.enqueue(
            &zelda(3),
            DecisionKind::Approve,
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    }
    let again = CacheKey::from_hex(&key.to_hex().to_uppercase()).unwrap();
    let c = Cache::open(&path, &again).unwrap();
    assert_eq!(c.request_ids().unwrap(), [zelda(3).id.to_string()]);
    assert_eq!(
        c.outbox(&zelda(3).id.to_string()).unwrap().unwrap().state,
        OutboxState::Queued
    );
    drop(c);
    let other = CacheKey::generate().unwrap();
    assert_ne!(other, key);
    let e = Cache::open(&path, &other).unwrap_err();
    assert_eq!(e.code, codes::CACHE_KEY_MISMATCH);
    assert!(e.message.contains("reviewer.db"), "{}", e.message);
    assert_eq!(format!("{key:?}"), "CacheKey([redacted])");
    assert_eq!(CacheKey::from_hex("x'00'"), None);
}

#[tokio::test]
async fn a_plaintext_cache_is_encrypted_in_place_with_its_queue_and_outbox() {
    // A plaintext cache written by the earlier code path, captured as a kill -9 would leave it:
    // the last writes only in its WAL.
    let old = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (unsent, idempotency_key) = {
        let c = Cache::open_plaintext(&old.path().join("reviewer.db")).unwrap();
        c.store_pending(&[zelda(4), zelda(5), zelda(6)], true)
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let mut row = c
            .enqueue(&zelda(5), DecisionKind::Deny, Some(REASON), now)
            .unwrap();
        row.state = OutboxState::Provisioned;
        row.attempts = 2;
        c.save_outbox(&row, now).unwrap();
        c.set_meta("last_sync_at", Some("2025-01-01T00:00:00Z"))
            .unwrap();
        for f in ["reviewer.db", "reviewer.db-wal", "reviewer.db-shm"] {
            std::fs::copy(old.path().join(f), dir.path().join(f)).unwrap();
        }
        (row.request_id, row.idempotency_key)
    };
    let (db, wal) = files(dir.path());
    assert!(db.starts_with(b"SQLite format 3\0"));
    assert!(contains(&wal, EMAIL), "the copy is a real plaintext cache");

    let store = Arc::new(MemoryStore::new());
    let r = open_in(dir.path(), store.clone()).await;
    let st = r.status().await;
    assert_eq!(st.last_error, None);
    assert_eq!(st.pending_count, 3);
    assert_eq!(st.last_sync_at.as_deref(), Some("2025-01-01T00:00:00Z"));
    let row = r.inner.cache.outbox(&unsent).unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Provisioned);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.idempotency_key, idempotency_key, "the same decision");
    assert_eq!(row.reason.as_deref(), Some(REASON));
    assert_no_personal_data(dir.path());
    assert!(!dir.path().join("reviewer.db.encrypting").exists());
    drop(r);
    // The key in the store opens the migrated file (schema version kept: no re-migration).
    let key = CacheKey::from_hex(&stored_key(store.as_ref(), dir.path()).unwrap()).unwrap();
    let c = Cache::open(&dir.path().join("reviewer.db"), &key).unwrap();
    assert_eq!(c.pending_count().unwrap(), 3);
    assert_no_personal_data(dir.path());
}

#[tokio::test]
async fn a_lost_key_keeps_the_file_aside_and_starts_an_empty_cache() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(MemoryStore::new());
    {
        let r = open_in(dir.path(), first.clone()).await;
        r.inner.cache.store_pending(&[zelda(7)], true).unwrap();
        r.deny(vec![zelda(7).id.to_string()], REASON.into())
            .await
            .unwrap();
    }
    let old_key = CacheKey::from_hex(&stored_key(first.as_ref(), dir.path()).unwrap()).unwrap();

    // Another keyring (reset, another machine): no key for this cache.
    let fresh = Arc::new(MemoryStore::new());
    let r = open_in(dir.path(), fresh.clone()).await;
    let st = r.status().await;
    let e = st.last_error.expect("the approver is told");
    assert_eq!(e.code, codes::CACHE_KEY_LOST);
    assert!(e.message.contains("not in the keyring"), "{}", e.message);
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("reviewer.db.unreadable-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let aside_name = aside[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.message.contains(&aside_name), "{}", e.message);
    assert_eq!(st.pending_count, 0, "a new, empty cache");
    assert!(st.outbox.is_empty());
    assert!(
        stored_key(fresh.as_ref(), dir.path()).is_some(),
        "a new key"
    );
    drop(r);
    // Nothing was lost: the old key still opens the file that was moved aside.
    let old = Cache::open(&aside[0], &old_key).unwrap();
    assert_eq!(old.request_ids().unwrap(), [zelda(7).id.to_string()]);
    assert_eq!(
        old.outbox(&zelda(7).id.to_string())
            .unwrap()
            .unwrap()
            .reason
            .as_deref(),
        Some(REASON)
    );
    drop(old);
    // The new cache opens with the new key, without an error.
    let r = open_in(dir.path(), fresh.clone()).await;
    assert_eq!(r.status().await.last_error, None);
    r.inner.cache.store_pending(&[zelda(8)], true).unwrap();
    drop(r);

    // A key that does not open the file: moved aside too, and that key is kept under a side
    // account in case it was the file that was damaged.
    let wrong = CacheKey::generate().unwrap().to_hex();
    fresh.save(&account(dir.path()), &wrong).unwrap();
    let r = open_in(dir.path(), fresh.clone()).await;
    let e = r.status().await.last_error.unwrap();
    assert_eq!(e.code, codes::CACHE_KEY_LOST);
    assert!(e.message.contains("cannot be decrypted"), "{}", e.message);
    let side = e
        .message
        .split('"')
        .nth(1)
        .expect("the side account is named")
        .to_owned();
    assert!(side.starts_with(&account(dir.path())), "{side}");
    assert_eq!(fresh.load(&side).unwrap().as_deref(), Some(wrong.as_str()));
    assert_ne!(stored_key(fresh.as_ref(), dir.path()).unwrap(), wrong);
}

#[tokio::test]
async fn an_unusable_keyring_writes_nothing_to_disk() {
    // No cache yet: nothing may be created.
    let dir = tempfile::tempdir().unwrap();
    let r = open_in(dir.path(), Arc::new(BrokenKeyring)).await;
    let e = r.status().await.last_error.unwrap();
    assert_eq!(e.code, codes::CACHE_KEY_UNAVAILABLE);
    assert!(e.message.contains("no session bus"), "{}", e.message);
    assert!(!r.inner.cache.is_persistent());
    // The app still answers (an empty queue); what it is given stays in memory.
    r.inner.cache.store_pending(&[zelda(9)], true).unwrap();
    assert_eq!(
        r.queue(QueueQuery::default()).await.unwrap().total_pending,
        1
    );
    assert!(!dir.path().join("reviewer.db").exists());
    assert!(!dir.path().join("reviewer.db-wal").exists());
    drop(r);

    // An existing encrypted cache is left exactly as it is (no move, no write).
    let store = Arc::new(MemoryStore::new());
    drop(open_in(dir.path(), store.clone()).await);
    let before = std::fs::read(dir.path().join("reviewer.db")).unwrap();
    let r = open_in(dir.path(), Arc::new(BrokenKeyring)).await;
    assert_eq!(
        r.status().await.last_error.unwrap().code,
        codes::CACHE_KEY_UNAVAILABLE
    );
    drop(r);
    assert_eq!(
        std::fs::read(dir.path().join("reviewer.db")).unwrap(),
        before
    );
    let r = open_in(dir.path(), store).await;
    assert_eq!(
        r.status().await.last_error,
        None,
        "opens once the keyring is back"
    );
}

/// Bytes of the plaintext copy of the cache at `path` opened with `key` (`sqlcipher_export` into
/// an unencrypted database next to it): what anyone holding `key` can read from the file.
fn decrypted_bytes(path: &Path, key: &CacheKey) -> Vec<u8> {
    let plain = path.with_extension("plain");
    let _ = std::fs::remove_file(&plain);
    let conn = crate::cache::open_connection(path, key).unwrap();
    conn.execute(
        "ATTACH DATABASE ?1 AS plain KEY ''",
        [plain.to_str().unwrap()],
    )
    .unwrap();
    conn.query_row("SELECT sqlcipher_export('plain')", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch("DETACH DATABASE plain").unwrap();
    drop(conn);
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::remove_file(&plain).unwrap();
    bytes
}

/// Sign-out with "wipe" destroys the cache key in both cases (issue 12 item 8): with nothing
/// unsent the file is deleted; with an unsent decision the file is replaced by a copy of that
/// row under a new key. Either way the old key (captured here first) is gone from the store and
/// opens nothing that is left, and what the new key can read holds the unsent decision and
/// none of the wiped queue (before the fix, the old key stayed and still opened the file with
/// the wiped rows in its free pages).
#[tokio::test]
async fn sign_out_with_wipe_destroys_the_key_even_with_an_unsent_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reviewer.db");
    let store = Arc::new(MemoryStore::new());
    let r = open_in(dir.path(), store.clone()).await;
    let cache = &r.inner.cache;
    let other = request(
        11,
        "olle.pending@contoso.com",
        json!({"displayName": "Olle Pending"}),
        1,
    );
    cache
        .store_pending(&[zelda(10), other.clone()], true)
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let mut row = cache
        .enqueue(&other, DecisionKind::Deny, Some("no sponsor"), now)
        .unwrap();
    let key0 = stored_key(store.as_ref(), dir.path()).unwrap();
    let old = CacheKey::from_hex(&key0).unwrap();
    assert!(
        contains(&decrypted_bytes(&db, &old), NAME),
        "the test reads what the key can"
    );

    // An unsent decision: it survives, but under a new key, in a new file.
    r.sign_out(true).await.unwrap();
    let key1 = stored_key(store.as_ref(), dir.path()).unwrap();
    assert_ne!(key1, key0, "the old key is gone from the store");
    assert_eq!(
        store
            .load(&format!("{}|rekeying", account(dir.path())))
            .unwrap(),
        None
    );
    let st = r.status().await;
    assert_eq!((st.pending_count, st.outbox.len()), (0, 1));
    // The file was replaced (its -wal/-shm with it): the old key opens nothing left.
    assert_eq!(
        crate::cache::open_connection(&db, &old).unwrap_err().code,
        codes::CACHE_KEY_MISMATCH,
        "the old key opens nothing left"
    );
    assert!(!dir.path().join("reviewer.db.rekeying").exists());
    let readable = decrypted_bytes(&db, &CacheKey::from_hex(&key1).unwrap());
    assert!(
        contains(&readable, "olle.pending@contoso.com"),
        "the unsent decision is kept"
    );
    for needle in [EMAIL, NAME, REASON] {
        assert!(
            !contains(&readable, needle),
            "{needle} readable after the wipe"
        );
    }
    assert_no_personal_data(dir.path());

    // Sent: the next wipe deletes the file and the key and goes on under a new key.
    row = cache.outbox(&row.request_id).unwrap().unwrap();
    row.state = OutboxState::Reported;
    cache.save_outbox(&row, now).unwrap();
    r.sign_out(true).await.unwrap();
    let key2 = stored_key(store.as_ref(), dir.path()).unwrap();
    assert_ne!(key2, key1);
    let st = r.status().await;
    assert_eq!((st.pending_count, st.outbox.len()), (0, 0));
    assert_eq!(st.last_error, None);
    // The app goes on, durably, in the new file.
    cache.store_pending(&[zelda(12)], true).unwrap();
    assert_no_personal_data(dir.path());
    drop(r);
    for k in [&key0, &key1] {
        assert_eq!(
            Cache::open(&db, &CacheKey::from_hex(k).unwrap())
                .unwrap_err()
                .code,
            codes::CACHE_KEY_MISMATCH,
            "an old key opens nothing any more"
        );
    }
    let r = open_in(dir.path(), store).await;
    assert_eq!(r.status().await.last_error, None);
    assert_eq!(
        r.inner.cache.request_ids().unwrap(),
        [zelda(12).id.to_string()]
    );
}

/// The cost of encryption on what a sync of 10,000 pending requests does to the cache (one
/// transaction of inserts, then an unchanged re-sync, then the queue's first page), plaintext
/// against encrypted, in one run on real files. `cargo test -p guestlist-reviewer --release --
/// --ignored --nocapture encryption_cost`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn encryption_cost_of_storing_10000_requests() {
    let requests: Vec<ApprovalRequest> = (0..10_000u128)
        .map(|i| {
            request(
                100_000 + i,
                &format!("guest{i}@example{}.com", i % 97),
                json!({"displayName": format!("Guest Number {i}"), "companyName": "Fabrikam",
                       "identities": fb(100_000 + i)["identities"]}),
                (i % 200) as i64,
            )
        })
        .collect();
    let key = CacheKey::generate().unwrap();
    let mut lines = Vec::new();
    for round in 0..3 {
        for encrypted in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("reviewer.db");
            let t = Instant::now();
            let c = if encrypted {
                Cache::open(&path, &key).unwrap()
            } else {
                Cache::open_plaintext(&path).unwrap()
            };
            let open_ms = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let (added, _, _) = c.store_pending(&requests, true).unwrap();
            let store_ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(added, 10_000);
            let t = Instant::now();
            let (a, u, rm) = c.store_pending(&requests, true).unwrap();
            let resync_ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!((a, u, rm), (0, 0, 0));
            let t = Instant::now();
            let v = c
                .query(&QueueQuery::default(), OffsetDateTime::now_utc())
                .unwrap();
            let query_ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(v.total_pending, 10_000);
            lines.push(format!(
                "round={round} encrypted={encrypted} open_ms={open_ms:.1} store_ms={store_ms:.1} \
                 resync_ms={resync_ms:.1} query_ms={query_ms:.1}"
            ));
        }
    }
    for l in lines {
        println!("{l}");
    }
}

/// The cost of sign-out's wipe over a cache of 10,000 requests: with nothing unsent (the file
/// is deleted) and with one unsent decision (the file is re-encrypted under a new key with that
/// row only), and what `secure_delete` costs a full sync that drops every request. One run on
/// real files. `cargo test -p guestlist-reviewer --release -- --ignored --nocapture wipe_cost`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn wipe_cost_over_10000_requests() {
    let requests: Vec<ApprovalRequest> = (0..10_000u128)
        .map(|i| {
            request(
                100_000 + i,
                &format!("guest{i}@example{}.com", i % 97),
                json!({"displayName": format!("Guest Number {i}"), "companyName": "Fabrikam"}),
                (i % 200) as i64,
            )
        })
        .collect();
    for unsent in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reviewer.db");
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let (c, _) = Cache::open_keyed(&path, store, "cache-key|bench").unwrap();
        c.store_pending(&requests, true).unwrap();
        if unsent {
            c.enqueue(
                &requests[0],
                DecisionKind::Approve,
                None,
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let before = size(&path) + size(&path.with_extension("db-wal"));
        let t = Instant::now();
        assert!(c.wipe_and_forget_key().unwrap());
        let wipe_ms = t.elapsed().as_secs_f64() * 1e3;
        let after = size(&path) + size(&path.with_extension("db-wal"));
        println!("unsent={unsent} wipe_ms={wipe_ms:.1} bytes_before={before} bytes_after={after}");
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Cache::open(
        &dir.path().join("reviewer.db"),
        &CacheKey::generate().unwrap(),
    )
    .unwrap();
    c.store_pending(&requests, true).unwrap();
    let t = Instant::now();
    let (_, _, removed) = c.store_pending(&[], true).unwrap();
    assert_eq!(removed, 10_000);
    println!(
        "secure_delete full-sync removal of 10000: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
