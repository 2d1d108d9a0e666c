//! The shared check-status connections (issue 13 §5, `store/pg/reads.rs`): many checks
//! pipelined on one connection each get their own answer, a terminated connection is replaced
//! without restarting the replica, and an outage fails fast and is recovered from.

use super::*;
use guestlist_server::store::pg::PoolConfig;

/// The backends of `db` whose last statement is the check-status query.
fn check_backends(db: &str) -> BTreeSet<u32> {
    Cluster::shared()
        .psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{db}' \
             AND query LIKE 'SELECT r.id, r.status, r.created_at,%'"
        ))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// People with a pending request, a denied one, and none, in that order of `i % 3`.
fn person(i: usize) -> (Claims, Option<MessageKind>) {
    let c = claims(&format!("p{i}@pipe.example"), "google.com");
    let answer = match i % 3 {
        0 => Some(MessageKind::Pending),
        1 => Some(MessageKind::Denied),
        _ => None,
    };
    (c, answer)
}

/// How many people [`store_people`] stores (a third pending, a third denied, a third none).
const PEOPLE: usize = 30;

/// Stores the requests of [`person`] `0..PEOPLE` (the denied ones decided).
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
        }
    }
}

/// `rounds` × `n` concurrent checks of [`person`] `i % PEOPLE`: each answer is that person's own
/// (the queries of concurrent callers are pipelined on the shared connections, so an answer
/// matched to the wrong caller would show here). Returns (answered, refused with
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

/// 3 × 300 concurrent checks on 2 shared connections: every one answered, each with its own
/// person's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_on_shared_connections_each_get_their_own_answer() {
    let url = Cluster::shared().fresh_database();
    let store = PgStore::connect_with(
        &url,
        &PoolConfig {
            read_pool_size: 2,
            ..PoolConfig::default()
        },
    )
    .await
    .unwrap();
    store.set_tombstone_key(KEY.to_vec()).await.unwrap();
    let store = Arc::new(store);
    store_people(&store).await;
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
/// administrator does): checks in flight or made at that moment answer `store.unavailable`
/// (never another error, a wrong answer or a hang), and the replica makes new connections by
/// itself and answers every check again, without being restarted.
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
    let store = PgStore::connect(&url).await.unwrap();
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
