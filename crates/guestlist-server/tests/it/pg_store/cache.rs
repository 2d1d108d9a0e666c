//! The check-status cache of each replica (issue 13 §2 "A decision is seen at once",
//! `store/pg/check_cache.rs`): answers come from memory, yet a write acknowledged by one replica
//! is what every other replica answers next, also while it is answering a stream of checks for
//! the same people, also when it is stuck (its lease lapses before the write is acknowledged),
//! and also after a reopen.

use super::*;

/// Waits (at most 10 s) until `store` answers `c` from its cache, which needs a lease.
async fn until_cached(store: &PgStore, c: &Claims, policy: &Policy) {
    let started = Instant::now();
    loop {
        let (hits, _, _) = store.check_cache_stats();
        store
            .check_status(c, policy, OffsetDateTime::now_utc())
            .await
            .unwrap();
        if store.check_cache_stats().0 > hits {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the cache never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes ann's pending request on `a` (at `now`) and waits until each of `readers` answers her
/// from its cache: her claims and the request's id and version.
async fn ann_cached(
    a: &PgStore,
    readers: &[&PgStore],
    now: OffsetDateTime,
) -> (Claims, uuid::Uuid, u64) {
    let policy = Policy::default();
    let ann = claims("ann@fabrikam.example", "google.com");
    a.request_approval(&ann, &policy, now, time::Duration::seconds(120))
        .await
        .unwrap();
    for reader in readers {
        until_cached(reader, &ann, &policy).await;
    }
    let r = a.list(None, None, None, 10).await.unwrap().items.remove(0);
    (ann, r.id, r.version)
}

/// Denies request `id` (at `version`) on `store`: its new version and how long the call took
/// (the writers' barrier included).
async fn deny_timed(
    store: &PgStore,
    id: uuid::Uuid,
    version: u64,
    now: OffsetDateTime,
) -> (u64, Duration) {
    let started = Instant::now();
    let deny = Decision::Deny {
        reason: "no".into(),
    };
    let (denied, _) = store
        .decide(id, &deny, &Actor::policy("test"), Some(version), None, now)
        .await
        .unwrap();
    (denied.version, started.elapsed())
}

/// What `store` answers for `c` now.
async fn answer_now(store: &PgStore, c: &Claims, policy: &Policy) -> Option<MessageKind> {
    store
        .check_status(c, policy, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .0
}

/// Asserts that `b` answers `c` denied right after `write` was acknowledged, not the pending it
/// held in memory, and that the write took `took`, at most `bound` (it may wait for leases).
async fn denied_now_after(b: &PgStore, c: &Claims, write: &str, took: Duration, bound: Duration) {
    assert_eq!(
        answer_now(b, c, &Policy::default()).await,
        Some(MessageKind::Denied),
        "B answered from before {write}"
    );
    eprintln!("{write}: acknowledged after {took:?}");
    assert!(took <= bound, "{write} took {took:?}, more than {bound:?}");
}

/// 40 people asked about on B from its cache while A decides each of them: right after each
/// decision returns on A, B answers the decision, with a task on B checking all 40 people over
/// and over meanwhile (so fills race the invalidations). A denial of one identity is answered
/// for the same person's other identity provider too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_answers_follow_decisions_made_on_another_replica() {
    let (a, b, _) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let people: Vec<Claims> = (0..40)
        .map(|i| claims(&format!("p{i}@fabrikam.example"), "google.com"))
        .collect();
    let other_idp = claims("p1@fabrikam.example", "live.com");
    for c in people.iter().chain([&other_idp]) {
        a.request_approval(c, &policy, now, w).await.unwrap();
    }
    until_cached(&b, &people[0], &policy).await;
    for c in people.iter().chain([&other_idp]) {
        assert_eq!(
            b.check_status(c, &policy, now).await.unwrap().0,
            Some(MessageKind::Pending)
        );
    }
    let (hits_before, _, entries) = b.check_cache_stats();
    assert!(entries >= 41, "{entries} entries");
    // B checks everyone, all the time, while A decides.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (b, people, policy, stop) = (b.clone(), people.clone(), policy.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for c in &people {
                    b.check_status(c, &policy, OffsetDateTime::now_utc())
                        .await
                        .unwrap();
                    n += 1;
                    // A cache hit never waits; an HTTP handler yields on its socket anyway.
                    tokio::task::yield_now().await;
                }
            }
            n
        })
    };
    let items = a.list(None, None, None, 100).await.unwrap().items;
    let actor = Actor::policy("test");
    let mut took = Vec::new();
    for (i, c) in people.iter().enumerate() {
        let email = format!("p{i}@fabrikam.example");
        let r = items
            .iter()
            .find(|r| r.key.email == email && r.key.issuer == "google.com")
            .unwrap();
        let (decision, expected) = if i % 2 == 0 {
            (
                Decision::Approve {
                    directory_object_id: format!("obj-{i}"),
                    how: ProvisionedBy::UserCreated,
                },
                MessageKind::Approved,
            )
        } else {
            (
                Decision::Deny {
                    reason: "no".into(),
                },
                MessageKind::Denied,
            )
        };
        let started = Instant::now();
        a.decide(r.id, &decision, &actor, Some(r.version), None, now)
            .await
            .unwrap();
        took.push(started.elapsed());
        assert_eq!(
            answer_now(&b, c, &policy).await,
            Some(expected),
            "person {i} right after the decision"
        );
        if i == 1 {
            assert_eq!(
                answer_now(&b, &other_idp, &policy).await,
                Some(MessageKind::Denied),
                "the same person under another identity provider"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let hammered = hammer.await.unwrap();
    let (hits, misses, _) = b.check_cache_stats();
    took.sort();
    eprintln!(
        "cache: {hammered} checks on B during 40 decisions on A; {hits} hits, {misses} misses; \
         a decision took {:?} (median), {:?} (max)",
        took[took.len() / 2],
        took[took.len() - 1]
    );
    assert!(
        hits > hits_before + 40,
        "B answered from its cache meanwhile"
    );
    // And from memory again afterwards, with the new answers.
    for (i, c) in people.iter().enumerate() {
        let expected = if i % 2 == 0 {
            MessageKind::Approved
        } else {
            MessageKind::Denied
        };
        assert_eq!(
            b.check_status(c, &policy, now).await.unwrap().0,
            Some(expected)
        );
    }
    let metrics = Backend::render_metrics(&*b);
    assert!(
        metrics.contains("guestlist_check_cache_hits_total ")
            && metrics.contains("guestlist_check_cache_invalidations_total "),
        "{metrics}"
    );
}

/// A replica that is stuck (it neither drains nor renews, but still holds a cached answer)
/// holds a decision on another replica back until its lease has lapsed, and then answers the
/// decision, never the cached "pending". A reopen on A is seen on B too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_replica_is_waited_for_until_its_lease_lapses() {
    let (a, b, _) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let (ann, id, version) = ann_cached(&a, &[&b], now).await;
    b.stall_check_cache_sync(Duration::from_secs(30));
    let (denied_version, waited) = deny_timed(&a, id, version, now).await;
    denied_now_after(
        &b,
        &ann,
        "a decision on A while B is stuck",
        waited,
        3 * guestlist_server::store::pg::CHECK_CACHE_LEASE,
    )
    .await;
    // B comes back: it empties its cache, takes a new lease, and follows A again.
    b.stall_check_cache_sync(Duration::ZERO);
    until_cached(&b, &ann, &policy).await;
    assert_eq!(
        b.check_status(&ann, &policy, now).await.unwrap().0,
        Some(MessageKind::Denied)
    );
    a.reopen(
        id,
        "appeal upheld",
        &Actor::policy("test"),
        denied_version,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(
        answer_now(&b, &ann, &policy).await,
        Some(MessageKind::Pending),
        "reopened on A, pending on B at once"
    );
}

/// The caches' sync connections terminated (`pg_terminate_backend`): a replica stops serving
/// from memory at once, a decision made meanwhile is answered by it, and it takes a new lease
/// and serves from memory again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_cache_connection_is_cut_reconnects_and_is_never_stale() {
    let (a, b, url) = two_replicas().await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    // Both replicas hold a lease (so both sync connections are up) before they are cut.
    let (ann, id, version) = ann_cached(&a, &[&a, &b], now).await;
    let terminated = Cluster::shared()
        .psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{db}' AND application_name LIKE '%(check cache)'"
        ))
        .unwrap();
    assert_eq!(terminated.trim(), "2", "both replicas' cache connections");
    let (_, took) = deny_timed(&a, id, version, now).await;
    eprintln!("cut cache connections: the decision took {took:?}");
    assert_eq!(
        answer_now(&b, &ann, &policy).await,
        Some(MessageKind::Denied)
    );
    until_cached(&b, &ann, &policy).await;
    assert_eq!(
        b.check_status(&ann, &policy, now).await.unwrap().0,
        Some(MessageKind::Denied)
    );
}

/// A plain connection to `url` (no `guestlist.check_cache_barrier`): an operator's SQL, or a
/// replica of a version before the cache, neither of which waits at the writers' barrier.
async fn operator(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A writer that does not wait at the barrier after its commit (an operator's SQL, a replica of
/// an earlier version during a rolling upgrade) is held by the caches' trigger until B's lease
/// has lapsed: once its statement returns (committed), B answers the new state, not the cached
/// one. guestlist's own writers are not held so (B follows A's decisions in milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_without_the_barrier_commits_only_after_every_lease_lapsed() {
    let (a, b, url) = two_replicas().await;
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let ann = claims("ann@fabrikam.example", "google.com");
    let bob = claims("bob@fabrikam.example", "google.com");
    for c in [&ann, &bob] {
        a.request_approval(c, &policy, now, time::Duration::seconds(120))
            .await
            .unwrap();
    }
    until_cached(&b, &ann, &policy).await;
    until_cached(&b, &bob, &policy).await;
    let items = a.list(None, None, None, 10).await.unwrap().items;
    let id_of = |email: &str| items.iter().find(|r| r.key.email == email).unwrap();
    // guestlist's own writer: B drops the answer before A acknowledges; no lease lapses.
    let bob_r = id_of("bob@fabrikam.example");
    let (_, took) = deny_timed(&a, bob_r.id, bob_r.version, now).await;
    assert_eq!(
        answer_now(&b, &bob, &policy).await,
        Some(MessageKind::Denied)
    );
    // Nothing else left B's memory (its lease did not lapse): ann is still a hit.
    let (hits, _, _) = b.check_cache_stats();
    assert_eq!(
        answer_now(&b, &ann, &policy).await,
        Some(MessageKind::Pending)
    );
    assert_eq!(
        b.check_cache_stats().0,
        hits + 1,
        "A's decision ({took:?}) emptied B's cache: A's sessions must announce the barrier"
    );
    // An operator's UPDATE (autocommit): held until B's lease lapsed.
    let ann_r = id_of("ann@fabrikam.example");
    let sql = operator(&url).await;
    let started = Instant::now();
    let updated = sql
        .execute(
            "UPDATE requests SET status = 'denied' WHERE id = $1",
            &[&ann_r.id],
        )
        .await
        .unwrap();
    let held = started.elapsed();
    assert_eq!(updated, 1);
    eprintln!("A's own decision took {took:?}");
    denied_now_after(
        &b,
        &ann,
        "an operator's UPDATE without the barrier",
        held,
        2 * guestlist_server::store::pg::CHECK_CACHE_LEASE,
    )
    .await;
    // B takes a new lease and serves from memory again, the new state.
    until_cached(&b, &ann, &policy).await;
    assert_eq!(
        b.check_status(&ann, &policy, now).await.unwrap().0,
        Some(MessageKind::Denied)
    );
}

/// A replica that starts while a write is in flight registers its cache only after that write
/// committed (it takes the sequence lock exclusively; the write holds it shared): until then it
/// answers from the database, and afterwards it never serves what it could have read before
/// the commit, although the write appended only to the replicas registered before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_starts_during_a_write_registers_after_it() {
    let url = Cluster::shared().fresh_database();
    let a = PgStore::connect(&url).await.unwrap();
    a.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let (ann, id, _) = ann_cached(&a, &[&a], now).await;
    let sql = operator(&url).await;
    sql.batch_execute("BEGIN").await.unwrap();
    sql.execute(
        "UPDATE requests SET status = 'denied' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    // B starts while the write is in flight, and is asked about ann over and over.
    let b = PgStore::connect(&url).await.unwrap();
    let asked = Instant::now();
    while asked.elapsed() < Duration::from_secs(1) {
        assert_eq!(
            answer_now(&b, &ann, &policy).await,
            Some(MessageKind::Pending),
            "not committed yet"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caches: i64 = sql
        .query_one("SELECT count(*) FROM check_caches", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(caches, 1, "B registered while the write was in flight");
    assert_eq!(b.check_cache_stats().0, 0, "B answered from memory");
    sql.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        answer_now(&b, &ann, &policy).await,
        Some(MessageKind::Denied)
    );
    until_cached(&b, &ann, &policy).await;
    assert_eq!(
        answer_now(&b, &ann, &policy).await,
        Some(MessageKind::Denied)
    );
}
