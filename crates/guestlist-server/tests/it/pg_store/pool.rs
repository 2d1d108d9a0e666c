//! The PostgreSQL store's pools and round trips (issue 13 §5): check-status never waits
//! behind writers for a connection, and a new sign-up is a bounded number of round trips.

use super::*;

/// Check-status has its own pool (issue 13 §5): while every connection of the main pool is
/// held by a sign-up waiting for a person's lock, a check of someone else still answers.
/// Before the read pool it waited for a free slot and failed with `store.unavailable` after
/// the pool's 1 s acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_status_answers_while_every_write_connection_waits() {
    let url = Cluster::shared().fresh_database();
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let known = claims("known@fabrikam.example", "google.com");
    store
        .request_approval(&known, &policy, now, w)
        .await
        .unwrap();

    // Hold the person lock of "blocked@…" from another session: the store's per-e-mail lock is
    // `pg_advisory_xact_lock(0x676c656d /* "glem" */, hashtext(email))`.
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let blocked = "blocked@fabrikam.example";
    holder
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&0x676c_656d_i32, &blocked],
        )
        .await
        .unwrap();
    // As many as the main pool has connections (more would wait for a slot and fail after
    // its 1 s acquire timeout).
    let writers: Vec<_> = (0..guestlist_server::store::pg::POOL_SIZE)
        .map(|_| {
            let (store, policy) = (store.clone(), policy.clone());
            tokio::spawn(async move {
                store
                    .request_approval(&claims(blocked, "google.com"), &policy, now, w)
                    .await
            })
        })
        .collect();
    // Every connection of the main pool is taken once as many sessions wait on the lock.
    let waiting = Instant::now();
    loop {
        let n = sessions_where(&holder, "wait_event_type = 'Lock'").await;
        if n >= guestlist_server::store::pg::POOL_SIZE as i64 {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(3),
            "only {n} sign-ups wait on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (block, event) = store.check_status(&known, &policy, now).await.unwrap();
    assert_eq!(block, Some(MessageKind::Pending));
    assert!(event.is_none());
    holder
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&0x676c_656d_i32, &blocked],
        )
        .await
        .unwrap();
    // The waiting sign-ups then run one after the other: one request, one first answer.
    let mut created = 0;
    for writer in writers {
        let out = writer.await.unwrap().unwrap();
        created += usize::from(out.event.is_some());
    }
    assert_eq!(created, 1);
}

/// A TCP relay in front of PostgreSQL that counts round trips: each time a connection's
/// client sends after the server has answered since its previous send, one more.
async fn round_trip_counter(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let turns = Arc::new(AtomicU64::new(0));
    let counted = turns.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (mut client_r, mut client_w) = client.into_split();
            let (mut server_r, mut server_w) = server.into_split();
            let answered = Arc::new(AtomicBool::new(true));
            let (answered_up, turns) = (answered.clone(), counted.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = client_r.read(&mut buf).await {
                    if answered_up.swap(false, Ordering::SeqCst) {
                        turns.fetch_add(1, Ordering::SeqCst);
                    }
                    if server_w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = server_r.read(&mut buf).await {
                    answered.store(true, Ordering::SeqCst);
                    if client_w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, turns)
}

/// A new sign-up costs at most three round trips to PostgreSQL (issue 13 §5, module docs of
/// `store::pg::signup`): `BEGIN`, the sequence lock, the person's lock and the lookup
/// (pipelined); the row, history entry, event and `COMMIT` (pipelined); plus the notifier's
/// one `pg_notify` after the commit. Before: four for the transaction (`BEGIN` and `COMMIT`
/// each alone), and fourteen before that (each statement parsed, then executed). The first
/// sign-up on a connection also prepares the statements, so each pooled connection is warmed
/// first. One runtime thread, so each pipelined group is queued whole before the connection
/// task writes it.
#[tokio::test(flavor = "current_thread")]
async fn a_new_sign_up_takes_at_most_three_round_trips() {
    use std::sync::atomic::Ordering;
    let url = Cluster::shared().fresh_database();
    let parsed = url::Url::parse(&url).unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], parsed.port().unwrap()));
    let (relay, turns) = round_trip_counter(target).await;
    let mut via_relay = parsed.clone();
    via_relay.set_port(Some(relay.port())).unwrap();
    // No check-status cache: its sync connection's renewals would cross the relay too.
    let pools = guestlist_server::store::pg::PoolConfig {
        pool_size: 1,
        read_pool_size: 1,
        check_cache: false,
    };
    let store = PgStore::connect_with(via_relay.as_str(), &pools)
        .await
        .unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    // Warm the one connection's statement cache (and let the notifier's first wake pass).
    store
        .request_approval(
            &claims("warm@fabrikam.example", "google.com"),
            &policy,
            now,
            w,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        let before = turns.load(Ordering::SeqCst);
        let out = store
            .request_approval(
                &claims(&format!("new{i}@fabrikam.example"), "google.com"),
                &policy,
                now,
                w,
            )
            .await
            .unwrap();
        assert!(out.event.is_some(), "a new request");
        // The notifier's pg_notify after the commit.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let used = turns.load(Ordering::SeqCst) - before;
        eprintln!("sign-up {i}: {used} round trips");
        assert!(used <= 3, "sign-up {i}: {used} round trips");
    }
}

/// A sign-up whose call is dropped while its transaction is open (Entra's HTTP connection
/// closed under it) must not leave that transaction, and the person's lock it holds, on a
/// pooled connection (module docs of `store::pg::signup`): the connection is taken out of the
/// pool, so the next sign-up of that person — on the other replica — runs at once, and the
/// replica's one pooled connection is replaced. Before the guard, the pipelined transaction's
/// connection went back to the pool idle inside the transaction holding the lock, and the other
/// replica's call failed after the 5 s `lock_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_dropped_mid_transaction_leaves_no_lock_behind() {
    let url = Cluster::shared().fresh_database();
    let pools = guestlist_server::store::pg::PoolConfig {
        pool_size: 1,
        read_pool_size: 1,
        ..Default::default()
    };
    let a = Arc::new(PgStore::connect_with(&url, &pools).await.unwrap());
    let b = PgStore::connect(&url).await.unwrap();
    for s in [&*a, &b] {
        s.set_tombstone_key(KEY.to_vec()).await.unwrap();
    }
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let person = claims("dropped@fabrikam.example", "google.com");
    // Warm a's one connection (statements prepared), then hold the person's lock elsewhere.
    a.request_approval(
        &claims("warm@fabrikam.example", "google.com"),
        &policy,
        now,
        w,
    )
    .await
    .unwrap();
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&0x676c_656d_i32, &"dropped@fabrikam.example"],
        )
        .await
        .unwrap();
    // a's call waits on the lock inside its transaction; it is dropped there.
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        a.request_approval(&person, &policy, now, w),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the call waited on the lock and was dropped"
    );
    holder
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&0x676c_656d_i32, &"dropped@fabrikam.example"],
        )
        .await
        .unwrap();
    // The other replica's sign-up of the same person is not held up by a's abandoned one.
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(4),
        b.request_approval(&person, &policy, now, w),
    )
    .await
    .expect("the person's lock was left held")
    .unwrap();
    assert_eq!(out.block, Some(MessageKind::Requested));
    assert!(
        out.event.is_some(),
        "b creates the request: a's call committed nothing"
    );
    eprintln!("b's sign-up after the drop: {:?}", started.elapsed());
    // a still serves calls on a new connection, and sees b's request (one, one attempt).
    let again = a.request_approval(&person, &policy, now, w).await.unwrap();
    assert_eq!(again.block, Some(MessageKind::Requested), "Entra's retry");
    assert!(again.event.is_none());
    let page = a.list(None, None, None, 10).await.unwrap();
    let stored: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.key.email == "dropped@fabrikam.example")
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].attempts, 1);
    // Nothing of a's is left idle inside a transaction.
    let idle_in_tx = sessions_where(&holder, "state = 'idle in transaction'").await;
    assert_eq!(idle_in_tx, 0);
}

/// Every branch of the two-round-trip request-approval on PostgreSQL (module docs of
/// `store::pg::signup`) writes what the SQLite store writes: a call with other claims outside
/// the retry window is one more attempt; a pending request past its expiry is expired and, with
/// `AllowReRequest`, requested again in the same call — two changes of one row pipelined before
/// the `COMMIT` (versions 2 and 3, history `requested`, `attempted`, `expired`, `requested`,
/// one `request.created` event per request made); with `Block` the expiry alone is committed
/// and the call answers "expired".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_expiry_and_re_request_are_written_in_one_pipelined_transaction() {
    use guestlist_core::policy::ExpiredBehaviour;
    let url = Cluster::shared().fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let w = time::Duration::seconds(120);
    let days_ago = OffsetDateTime::now_utc() - time::Duration::days(3);
    let mut policy = Policy {
        expire_after_days: Some(1),
        expired: ExpiredBehaviour::AllowReRequest,
        ..Policy::default()
    };
    let person = claims("again@fabrikam.example", "google.com");
    let first = store
        .request_approval(&person, &policy, days_ago, w)
        .await
        .unwrap();
    assert!(first.event.is_some());
    // Other claims, outside the retry window, before expiry: one more attempt.
    let changed = Claims::from_json(json!({
        "email": "again@fabrikam.example",
        "displayName": "Zoë M.",
        "identities": [{"signInType": "federated", "issuer": "google.com",
                        "issuerAssignedId": "again@fabrikam.example"}]
    }))
    .unwrap();
    let later = days_ago + time::Duration::minutes(10);
    let attempted = store
        .request_approval(&changed, &policy, later, w)
        .await
        .unwrap();
    assert_eq!(attempted.block, Some(MessageKind::Pending));
    assert!(attempted.event.is_none());
    // Three days later: expired, then requested again, in one call.
    let now = OffsetDateTime::now_utc();
    let again = store
        .request_approval(&person, &policy, now, w)
        .await
        .unwrap();
    assert_eq!(again.block, Some(MessageKind::Requested));
    let event = again.event.expect("a request.created event");
    let page = store.list(None, None, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let r = &page.items[0];
    assert_eq!(r.state.status(), Status::Pending);
    assert_eq!((r.version, r.attempts), (4, 3));
    assert_eq!(
        event.seq, 2,
        "one event per request made: the first and the re-request"
    );
    let actions: Vec<String> = store
        .history(r.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(actions, ["requested", "attempted", "expired", "requested"]);
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 2);
    // With `Block`, an expired request stays expired: the expiry alone is committed.
    policy.expired = ExpiredBehaviour::Block;
    let blocked = claims("blocked-expiry@fabrikam.example", "google.com");
    store
        .request_approval(&blocked, &policy, days_ago, w)
        .await
        .unwrap();
    let out = store
        .request_approval(&blocked, &policy, now, w)
        .await
        .unwrap();
    assert_eq!(out.block, Some(MessageKind::Expired));
    assert!(out.event.is_none());
    let expired = store
        .list(None, None, None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.key.email == "blocked-expiry@fabrikam.example")
        .unwrap();
    assert_eq!(expired.state.status(), Status::Expired);
    assert_eq!(expired.version, 2);
}

/// How many sessions of `client`'s database match `condition` (SQL over `pg_stat_activity`).
async fn sessions_where(client: &tokio_postgres::Client, condition: &str) -> i64 {
    client
        .query_one(
            &format!(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND {condition}"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
