//! The PostgreSQL store across replicas (issue 13 §2), on a real PostgreSQL that the test
//! starts itself (guestlist-testkit: `initdb`/`pg_ctl` in a temp dir, `synchronous_commit=on`).
//! Two `PgStore`s on one database stand for two replicas: each has its own pool, so nothing is
//! shared between them but the database. [`pool`]: the pools and round trips of the write
//! path (issue 13 §5).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use guestlist_core::Code;
use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, Decision, ProvisionedBy, Status};
use guestlist_core::policy::{MessageKind, Policy};
use guestlist_server::store::pg::PgStore;
use guestlist_server::store::{Backend, ClusterSignal, HeldLock};
use guestlist_testkit::postgres::Cluster;
use serde_json::json;
use time::OffsetDateTime;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-tombstone-key";

fn claims(email: &str, idp: &str) -> Claims {
    Claims::from_json(json!({
        "email": email,
        "displayName": "Zoë Müller",
        "identities": [{"signInType": "federated", "issuer": idp, "issuerAssignedId": email}]
    }))
    .unwrap()
}

/// Two replicas on one fresh database, both with the tombstone key.
async fn two_replicas() -> (Arc<PgStore>, Arc<PgStore>, String) {
    let url = Cluster::shared().fresh_database();
    let a = PgStore::connect(&url).await.unwrap();
    let b = PgStore::connect(&url).await.unwrap();
    for s in [&a, &b] {
        s.set_tombstone_key(KEY.to_vec()).await.unwrap();
    }
    (Arc::new(a), Arc::new(b), url)
}

/// Entra's retries of one sign-up land on both replicas at once: 50 identical calls make one
/// request with one attempt and one history entry, and every call gets the first call's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_identical_sign_ups_on_two_replicas_store_one_request() {
    let (a, b, _) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let c = claims("race@fabrikam.example", "google.com");
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (c, policy) = (c.clone(), policy.clone());
            tokio::spawn(async move {
                store
                    .request_approval(&c, &policy, now, time::Duration::seconds(120))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for call in calls {
        let out = call.await.unwrap();
        assert_eq!(out.block, Some(MessageKind::Requested));
        created += usize::from(out.event.is_some());
    }
    assert_eq!(created, 1, "one call creates the request");
    let page = b.list(None, None, None, 100).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let r = &page.items[0];
    assert_eq!(r.attempts, 1, "retries are not attempts");
    assert_eq!(r.version, 1);
    let history = a.history(r.id).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(a.events_after(0, 100).await.unwrap().len(), 1);
}

/// A decision acknowledged by replica A is what replica B answers next: approvals, denials,
/// the denial of the same person under another identity provider, and the version check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_one_replica_is_seen_at_once_on_the_other() {
    let (a, b, _) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let ann = claims("ann@fabrikam.example", "google.com");
    let bob = claims("bob@fabrikam.example", "google.com");
    let bob_ms = claims("bob@fabrikam.example", "live.com");
    for c in [&ann, &bob, &bob_ms] {
        a.request_approval(c, &policy, now, w).await.unwrap();
    }
    let items = b
        .list(Some(Status::Pending), None, None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(items.len(), 3);
    let id_of = |email: &str, idp: &str| {
        items
            .iter()
            .find(|r| r.key.email == email && r.key.issuer == idp)
            .unwrap()
            .clone()
    };
    let ann_r = id_of("ann@fabrikam.example", "google.com");
    let bob_r = id_of("bob@fabrikam.example", "google.com");
    let actor = Actor::policy("test");
    let approve = Decision::Approve {
        directory_object_id: "obj-1".into(),
        how: ProvisionedBy::UserCreated,
    };
    a.decide(ann_r.id, &approve, &actor, Some(ann_r.version), None, now)
        .await
        .unwrap();
    assert_eq!(
        b.check_status(&ann, &policy, now).await.unwrap().0,
        Some(MessageKind::Approved)
    );
    // B sees A's new version: a stale If-Match is refused there.
    let deny = Decision::Deny {
        reason: "no".into(),
    };
    let err = b
        .decide(ann_r.id, &deny, &actor, Some(ann_r.version), None, now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::RequestAlreadyDecided);
    let (_, events) = a
        .decide_all(bob_r.id, &deny, &actor, None, Some("idem-1"), now)
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        2,
        "the same person's other request is denied too"
    );
    for c in [&bob, &bob_ms] {
        assert_eq!(
            b.check_status(c, &policy, now).await.unwrap().0,
            Some(MessageKind::Denied)
        );
    }
    // The Idempotency-Key holds across replicas.
    let (again, none) = b
        .decide_all(bob_r.id, &deny, &actor, None, Some("idem-1"), now)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(again.version, bob_r.version + 1);
    let err = b
        .decide_all(bob_r.id, &approve, &actor, None, Some("idem-1"), now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::RequestIdempotencyKeyReused);
}

/// Events written concurrently on two replicas are read in sequence order by a reader on one
/// of them that polls while they are written, without skipping one that committed after a
/// higher number; and the other replica's listener is told about them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_readers_in_sequence_order_under_concurrent_writers() {
    let (a, b, _) = two_replicas().await;
    let mut signals = b.listen_events().await.unwrap().unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            let policy = policy.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let c = claims(&format!("w{w}-{i}@x.example"), "google.com");
                    store
                        .request_approval(&c, &policy, now, time::Duration::ZERO)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // The reader: polls from its mark, as a live stream resuming with Last-Event-ID does,
    // until the writers are done and a read finds nothing more.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (b, writing) = (b.clone(), writing.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut mark = 0u64;
            loop {
                let done = !writing.load(std::sync::atomic::Ordering::SeqCst);
                let page = b.events_after(mark, 7).await.unwrap();
                if page.is_empty() && done {
                    return seen;
                }
                for e in page {
                    assert!(e.seq > mark, "out of order: {} after {mark}", e.seq);
                    mark = e.seq;
                    seen.push(e.seq);
                }
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader catches up")
        .unwrap();
    let stored: Vec<u64> = a
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(stored.len(), WRITERS * EACH);
    assert_eq!(seen, stored, "the polling reader saw every event, in order");
    // Replica B's listener was told about the last commits (its own and A's): notifications
    // are sent after commit, one per group of commits, carrying the sequence's last value.
    let last = *stored.last().unwrap();
    let mut notified = BTreeSet::new();
    while notified.last().is_none_or(|n| *n < last) {
        match tokio::time::timeout(Duration::from_secs(10), signals.next()).await {
            Ok(Some(Ok(ClusterSignal::Event(seq)))) => {
                notified.insert(seq);
            }
            Ok(Some(Ok(ClusterSignal::Resync))) => {}
            other => panic!("listener ended early: {other:?}"),
        }
    }
    assert!(
        notified.len() <= stored.len(),
        "at most one notification per commit: {} for {} events",
        notified.len(),
        stored.len()
    );
    // The since= sync mark covers every change too.
    let page = b.list_page(Some(0), None, None, None, 500).await.unwrap();
    assert_eq!(page.items.len(), WRITERS * EACH);
}

/// An event committed without any notification (its replica died between the commit and the
/// `pg_notify`) still reaches another replica's listener: after an interval without
/// notifications it reports a resync, and a read from its mark finds the event. Without the
/// catch-up the listener stays silent and this fails on the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_without_a_notification_reaches_the_other_listener() {
    let (a, b, url) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    a.request_approval(
        &claims("first@x.example", "google.com"),
        &policy,
        now,
        time::Duration::ZERO,
    )
    .await
    .unwrap();
    let mark = b.latest_event_seq().await.unwrap();
    assert_eq!(mark, 1);
    let mut signals = b.listen_events().await.unwrap().unwrap();
    // Let the notification of the first write (if still in flight) arrive and be drained.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while futures::FutureExt::now_or_never(signals.next()).is_some() {}
    // A replica commits an event and dies before notifying: the row is written on a raw
    // connection, with no pg_notify anywhere.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let copied = client
        .execute(
            "INSERT INTO events (seq, kind, request_id, at, body)
             SELECT nextval('event_seq'), kind, request_id, at, body FROM events WHERE seq = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(copied, 1);
    drop(client);
    let _ = driver.await;
    // The catch-up resync (a late notification of the first write, if any, is skipped).
    let resync = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match signals.next().await {
                Some(Ok(ClusterSignal::Resync)) => return,
                Some(Ok(ClusterSignal::Event(_))) => {}
                other => panic!("listener ended: {other:?}"),
            }
        }
    })
    .await;
    assert!(
        resync.is_ok(),
        "the listener catches up within 5 s without any notification"
    );
    let read = b.events_after(mark, 100).await.unwrap();
    assert_eq!(read.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
}

/// A background job's lock is held by one replica at a time, and released when dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lock_is_exclusive_across_replicas() {
    let (a, b, _) = two_replicas().await;
    let held = a.try_job_lock_guard("retention").await.unwrap();
    assert!(held.is_some());
    assert!(b.try_job_lock_guard("retention").await.unwrap().is_none());
    assert!(a.try_job_lock_guard("retention").await.unwrap().is_none());
    // Another job is independent, and an explicit release frees it at once (no retry).
    let reminders = b.try_job_lock_guard("reminders").await.unwrap();
    let reminders = reminders.expect("another job's lock is free");
    HeldLock::release(Box::new(reminders)).await;
    assert!(
        a.try_job_lock_guard("reminders").await.unwrap().is_some(),
        "a released lock is free as soon as release returns"
    );
    drop(held);
    // Dropping closes the holder's session; PostgreSQL frees its locks once it has noticed,
    // which a loaded machine can delay past a second (waited for, 10 s at most).
    let mut taken = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        taken = b.try_job_lock_guard("retention").await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        taken.is_some(),
        "the lock is free once its holder is dropped (not within 10 s)"
    );
}

/// After an erasure no row of any table holds the e-mail (nor the claims), yet the denial
/// stays in force on every replica through the tombstone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_row_with_the_email() {
    let (a, b, url) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::ZERO;
    let email = "erase.me@fabrikam.example";
    let google = claims(email, "google.com");
    let live = claims(email, "live.com");
    a.request_approval(&google, &policy, now, w).await.unwrap();
    a.request_approval(&live, &policy, now, w).await.unwrap();
    // A second attempt stores the claims in the history too.
    a.request_approval(&google, &policy, now + time::Duration::seconds(5), w)
        .await
        .unwrap();
    let r = b.list(None, None, None, 10).await.unwrap().items[0].clone();
    let deny = Decision::Deny {
        reason: format!("{email} is not a customer"),
    };
    a.decide_all(r.id, &deny, &Actor::policy("t"), None, Some("k-erase"), now)
        .await
        .unwrap();
    a.record_reminded(&[r.id], now).await.unwrap();
    let erased = b
        .erase_email(email, true, &Actor::policy("t"), now)
        .await
        .unwrap();
    assert_eq!(erased.counts.requests, 2);
    assert!(erased.counts.denial_kept);
    a.checkpoint_truncate().await.unwrap();
    // Every row of every table, as text.
    let db = url.rsplit('/').next().unwrap().to_owned();
    let admin = Cluster::shared().superuser_url(&db);
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap();
    assert!(tables.len() >= 9, "{tables:?}");
    for t in tables {
        let table: String = t.get(0);
        let n: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM {table} t WHERE t::text ILIKE '%erase.me%'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "table {table} still holds the e-mail");
    }
    // The denial holds on both replicas, for both identity providers.
    for s in [&a, &b] {
        for c in [&google, &live] {
            assert_eq!(
                s.check_status(c, &policy, now).await.unwrap().0,
                Some(MessageKind::Denied)
            );
            let out = s.request_approval(c, &policy, now, w).await.unwrap();
            assert_eq!(out.block, Some(MessageKind::Denied));
            assert!(out.event.is_none());
        }
    }
    assert!(a.list(None, None, None, 10).await.unwrap().items.is_empty());
}

/// While PostgreSQL is down calls fail fast with `store.unavailable` (never hanging toward
/// Entra's 20 s), and once it is back the same store works again without being recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unavailable_at_once_and_recovered_from() {
    // Its own cluster: stopping the shared one would break the other tests.
    let cluster = Cluster::start().unwrap();
    let url = cluster.fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::ZERO;
    store
        .request_approval(&claims("before@x.example", "google.com"), &policy, now, w)
        .await
        .unwrap();
    cluster.stop().unwrap();
    for call in 0..3 {
        let started = Instant::now();
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            store.request_approval(&claims("during@x.example", "google.com"), &policy, now, w),
        )
        .await
        .expect("a call during an outage must not hang");
        let err = out.unwrap_err();
        assert_eq!(err.code(), Code::StoreUnavailable, "call {call}: {err}");
        eprintln!(
            "outage: call {call} failed in {:?}: {err}",
            started.elapsed()
        );
        let ping = tokio::time::timeout(Duration::from_secs(10), store.ping())
            .await
            .expect("ping must not hang");
        assert_eq!(ping.unwrap_err().code(), Code::StoreUnavailable);
    }
    cluster.start_again().unwrap();
    let back = Instant::now();
    let mut recovered = false;
    while back.elapsed() < Duration::from_secs(30) {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store reconnects by itself");
    eprintln!("outage: recovered {:?} after the restart", back.elapsed());
    let out = store
        .request_approval(&claims("after@x.example", "google.com"), &policy, now, w)
        .await
        .unwrap();
    assert_eq!(out.block, Some(MessageKind::Requested));
    assert_eq!(
        store.list(None, None, None, 10).await.unwrap().items.len(),
        2
    );
}

/// Without a configured key, the replicas share the tombstone key kept in the database: a
/// person erased on one replica with their denial kept stays denied on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_without_a_configured_key_share_the_one_in_the_database() {
    let url = Cluster::shared().fresh_database();
    let a = PgStore::connect(&url).await.unwrap();
    let b = PgStore::connect(&url).await.unwrap();
    let (ra, rb) = tokio::join!(a.ensure_tombstone_key(), b.ensure_tombstone_key());
    ra.unwrap();
    rb.unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let c = claims("kept@x.example", "google.com");
    a.request_approval(&c, &policy, now, time::Duration::ZERO)
        .await
        .unwrap();
    let r = a.list(None, None, None, 1).await.unwrap().items[0].clone();
    let deny = Decision::Deny {
        reason: "no".into(),
    };
    a.decide(r.id, &deny, &Actor::policy("t"), None, None, now)
        .await
        .unwrap();
    a.erase_email("kept@x.example", true, &Actor::policy("t"), now)
        .await
        .unwrap();
    assert!(b.is_tombstoned("kept@x.example").await.unwrap());
    assert_eq!(
        b.check_status(&c, &policy, now).await.unwrap().0,
        Some(MessageKind::Denied)
    );
}

/// A replica cut off from PostgreSQL (its sessions terminated by the administrator, as a
/// failover or `pg_terminate_backend` does) answers `store.unavailable`, never another error
/// or a hang, and serves again by itself once new connections are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_sessions_are_terminated_recovers_by_itself() {
    let (a, _b, url) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::ZERO;
    a.request_approval(&claims("one@x.example", "google.com"), &policy, now, w)
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let terminated = Cluster::shared()
        .psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ))
        .unwrap();
    assert!(
        terminated.trim().parse::<u32>().unwrap() >= 1,
        "{terminated}"
    );
    let started = Instant::now();
    let mut served = 0;
    let mut refused = 0;
    for i in 0..20 {
        let c = claims(&format!("after{i}@x.example"), "google.com");
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            a.request_approval(&c, &policy, now, w),
        )
        .await
        .expect("no call hangs");
        match out {
            Ok(o) => {
                assert_eq!(o.block, Some(MessageKind::Requested));
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::StoreUnavailable, "{e}");
                refused += 1;
            }
        }
    }
    eprintln!(
        "terminated sessions: {refused} calls refused, {served} served, in {:?}",
        started.elapsed()
    );
    assert!(served >= 15, "the pool replaces the terminated connections");
    a.ping().await.unwrap();
    let stored = a.list(None, None, None, 100).await.unwrap().items.len();
    assert_eq!(
        stored,
        1 + served,
        "every served call is stored, no refused one"
    );
}

mod cache;
mod pool;
mod reads;
