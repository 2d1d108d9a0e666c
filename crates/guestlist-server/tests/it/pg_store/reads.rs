//! The shared check-status connections (issue 13 §5, `store/pg/reads.rs`,
//! `store/pg/check_batch.rs`): many concurrent checks, batched into shared statements, each
//! get their own answer, a terminated connection is replaced without restarting the replica,
//! and an outage fails fast and is recovered from.

use super::*;
use guestlist_server::store::pg::PoolConfig;

/// The backends of `db` whose last statement is the batched check-status query.
fn check_backends(db: &str) -> BTreeSet<u32> {
    Cluster::shared()
        .psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{db}' \
             AND query LIKE 'SELECT q.i, r.id, r.status, r.created_at,%'"
        ))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// People with a pending request, a denied one, none, and a denied one erased with its
/// denial kept (only a tombstone is left), in that order of `i % 4`.
fn person(i: usize) -> (Claims, Option<MessageKind>) {
    let c = claims(&format!("p{i}@pipe.example"), "google.com");
    let answer = match i % 4 {
        0 => Some(MessageKind::Pending),
        1 | 3 => Some(MessageKind::Denied),
        _ => None,
    };
    (c, answer)
}

/// How many people [`store_people`] stores (a quarter of each kind of [`person`]).
const PEOPLE: usize = 40;

/// Stores the requests of [`person`] `0..PEOPLE` (the denied ones decided, then every fourth
/// erased with its denial kept).
async fn store_people(store: &PgStore) {
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    for i in 0..PEOPLE {
        let (c, answer) = person(i);
        if answer.is_none() {
            continue;
        }
        store
            .request_approval(&c, &policy, now, time::Duration::ZERO)
            .await
            .unwrap();
        if answer == Some(MessageKind::Denied) {
            let email = format!("p{i}@pipe.example");
            let r = store.requests_of_email(&email).await.unwrap()[0].clone();
            let deny = Decision::Deny {
                reason: "no".into(),
            };
            store
                .decide(r.id, &deny, &Actor::policy("t"), None, None, now)
                .await
                .unwrap();
            if i % 4 == 3 {
                store
                    .erase_email(&email, true, &Actor::policy("t"), now)
                    .await
                    .unwrap();
                assert!(store.requests_of_email(&email).await.unwrap().is_empty());
            }
        }
    }
}

/// `rounds` × `n` concurrent checks of [`person`] `i % PEOPLE`: each answer is that person's own
/// (the lookups of concurrent callers share statements, so an answer matched to the wrong
/// caller would show here). Returns (answered, refused with
/// `store.unavailable`); any other error or a wrong answer fails the test.
async fn concurrent_checks(store: &Arc<PgStore>, n: usize, rounds: usize) -> (usize, usize) {
    let policy = Policy::default();
    let now = OffsetDateTime::now_utc();
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..rounds {
        let calls: Vec<_> = (0..n)
            .map(|i| {
                let (store, policy) = (store.clone(), policy.clone());
                tokio::spawn(async move {
                    let (c, want) = person(i % PEOPLE);
                    let got = tokio::time::timeout(
                        Duration::from_secs(10),
                        store.check_status(&c, &policy, now),
                    )
                    .await
                    .expect("no check hangs");
                    (i, want, got.map(|(kind, _)| kind))
                })
            })
            .collect();
        for call in calls {
            let (i, want, got) = call.await.unwrap();
            match got {
                Ok(kind) => {
                    assert_eq!(kind, want, "person {i}");
                    answered += 1;
                }
                Err(e) => {
                    assert_eq!(e.code(), Code::StoreUnavailable, "person {i}: {e}");
                    refused += 1;
                }
            }
        }
    }
    (answered, refused)
}

/// A fresh database with [`store_people`], and a store on it with 2 shared check-status
/// connections; returns the database URL too.
async fn two_shared_connections_with_people() -> (String, Arc<PgStore>) {
    let url = Cluster::shared().fresh_database();
    let store = PgStore::connect_with(
        &url,
        // The database path itself: no check-status cache in front of it (`cache.rs` tests
        // the cache).
        &PoolConfig {
            read_pool_size: 2,
            check_cache: false,
            ..PoolConfig::default()
        },
    )
    .await
    .unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let store = Arc::new(store);
    store_people(&store).await;
    (url, store)
}

/// 3 × 300 concurrent checks on 2 shared connections: every one answered, each with its own
/// person's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_on_shared_connections_each_get_their_own_answer() {
    let (url, store) = two_shared_connections_with_people().await;
    let (answered, refused) = concurrent_checks(&store, 300, 3).await;
    assert_eq!((answered, refused), (900, 0));
    let db = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        check_backends(&db).len(),
        2,
        "the checks ran on the two shared connections"
    );
}

/// `pg_terminate_backend` on the shared check-status connections (as a failover or an
/// administrator does): the replica makes new connections by itself, before any call needs
/// them; checks in flight or made at that moment answer `store.unavailable` (never another
/// error, a wrong answer or a hang), and then every check is answered, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_check_status_connections_are_replaced_without_a_restart() {
    let url = Cluster::shared().fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let store = Arc::new(store);
    store_people(&store).await;
    assert_eq!(concurrent_checks(&store, 64, 1).await, (64, 0));
    let db = url.rsplit('/').next().unwrap().to_owned();
    let before = check_backends(&db);
    assert_eq!(
        before.len(),
        PoolConfig::DEFAULT_READ_POOL_SIZE,
        "{before:?}"
    );
    let pids = before
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let terminated = Cluster::shared()
        .psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid IN ({pids})"
        ))
        .unwrap();
    assert_eq!(terminated.trim(), before.len().to_string());
    // Replaced by themselves, before any call needs them (a worker that gets no calls
    // would otherwise keep a dead connection).
    let replaced = Instant::now();
    loop {
        let now = check_backends(&db);
        if now.len() == before.len() && now.is_disjoint(&before) {
            break;
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(10),
            "the terminated connections were not replaced by themselves: {before:?} → {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "terminated check connections replaced by themselves after {:?}",
        replaced.elapsed()
    );

    // Checks go on; the first ones after the termination may be refused, then all answer.
    let started = Instant::now();
    let (mut answered, mut refused) = (0, 0);
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(20) {
        let (a, r) = concurrent_checks(&store, 64, 1).await;
        answered += a;
        refused += r;
        if r == 0 && a == 64 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "terminated check connections: {refused} checks refused, {answered} answered, \
         recovered after {:?}",
        started.elapsed()
    );
    assert!(
        recovered,
        "new check-status connections are made by themselves"
    );
    // Every shared connection is replaced, not only the one the next call picked.
    assert_eq!(concurrent_checks(&store, 64, 2).await, (128, 0));
    let after = check_backends(&db);
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert!(after.is_disjoint(&before), "{before:?} → {after:?}");
}

/// While PostgreSQL is down a check fails with `store.unavailable` within about a second
/// (never hanging toward Entra's 20 s), and once it is back the same store answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_fail_fast_during_an_outage_and_recover_after_it() {
    // Its own cluster: stopping the shared one would break the other tests.
    let cluster = Cluster::start().unwrap();
    let url = cluster.fresh_database();
    // The database path: a cached answer may be served until the cache's own connection is
    // seen lost (`cache.rs`: answers stay right, as no decision can commit meanwhile).
    let store = PgStore::connect_with(
        &url,
        &PoolConfig {
            check_cache: false,
            ..PoolConfig::default()
        },
    )
    .await
    .unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let store = Arc::new(store);
    store_people(&store).await;
    assert_eq!(concurrent_checks(&store, 3, 1).await, (3, 0));
    cluster.stop().unwrap();
    for round in 0..3 {
        let started = Instant::now();
        let (answered, refused) = concurrent_checks(&store, 64, 1).await;
        eprintln!(
            "outage: round {round}: 64 checks refused in {:?}",
            started.elapsed()
        );
        assert_eq!((answered, refused), (0, 64), "round {round}");
    }
    cluster.start_again().unwrap();
    let back = Instant::now();
    let mut recovered = false;
    while back.elapsed() < Duration::from_secs(30) {
        if concurrent_checks(&store, 3, 1).await == (3, 0) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "outage: checks answered {:?} after the restart",
        back.elapsed()
    );
    assert!(recovered, "the shared connections reconnect by themselves");
}

/// How many statements of `db` wait for a lock.
fn waiting_on_a_lock(db: &str) -> usize {
    Cluster::shared()
        .psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
             AND wait_event_type = 'Lock'"
        ))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits (at most 20 s) until `n` statements of `db` wait for a lock.
async fn until_waiting(db: &str, n: usize) {
    let started = Instant::now();
    while waiting_on_a_lock(db) < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{n} check-status statements never waited for the table lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls that arrive while both workers are busy share one statement (`store/pg/check_batch.rs`),
/// each still getting its own answer; a call whose caller went away meanwhile is not looked up.
/// The workers are held busy by an `ACCESS EXCLUSIVE` lock on `requests` that another session
/// keeps until the calls are queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_checks_share_a_statement_and_callers_that_left_are_skipped() {
    let (url, store) = two_shared_connections_with_people().await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    let (locker, connection) =
        tokio_postgres::connect(&Cluster::shared().superuser_url(&db), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (sent_statements, sent_lookups) = store.check_status_sent();

    // One call per worker, each waiting for the lock in its own statement.
    let spawn_check = |i: usize| {
        let store = store.clone();
        tokio::spawn(async move {
            let (c, want) = person(i % PEOPLE);
            let got = store
                .check_status(&c, &Policy::default(), OffsetDateTime::now_utc())
                .await;
            (i, want, got.map(|(kind, _)| kind))
        })
    };
    let mut kept = vec![spawn_check(0)];
    until_waiting(&db, 1).await;
    kept.push(spawn_check(1));
    until_waiting(&db, 2).await;

    // 100 more queue behind them; every other caller goes away before the lock is released.
    let mut left = Vec::new();
    for i in 2..102 {
        if i % 2 == 0 {
            left.push(spawn_check(i));
        } else {
            kept.push(spawn_check(i));
        }
    }
    for call in &left {
        call.abort();
    }
    for call in left {
        assert!(call.await.unwrap_err().is_cancelled());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    locker.batch_execute("COMMIT").await.unwrap();

    for call in kept {
        let (i, want, got) = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("no check hangs")
            .unwrap();
        assert_eq!(got.unwrap(), want, "person {i}");
    }
    let (statements, lookups) = store.check_status_sent();
    let (statements, lookups) = (statements - sent_statements, lookups - sent_lookups);
    eprintln!("52 answered calls: {statements} statements, {lookups} lookups");
    assert_eq!(lookups, 52, "the 50 callers that left were not looked up");
    assert!(
        statements <= 5,
        "the 50 queued calls shared statements ({statements} statements)"
    );
}
