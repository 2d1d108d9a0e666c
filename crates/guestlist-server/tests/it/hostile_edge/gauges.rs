//! The `guestlist_requests` gauges of `/metrics` follow every write and survive reopening.

use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, Decision, ProvisionedBy};
use guestlist_core::policy::{ExpiredBehaviour, Policy};

use super::*;

/// The `guestlist_requests` gauges come from memory and follow approvals, denials, expiry
/// and re-requests, and are right again after the database is reopened (compared with a
/// `GROUP BY` of the table).
#[tokio::test]
async fn status_gauges_follow_every_write_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let policy = Policy {
        expire_after_days: Some(7),
        expired: ExpiredBehaviour::AllowReRequest,
        ..Policy::default()
    };
    let p2 = policy.clone();
    let s = start(&db, move |c| c.policy = p2).await;
    let store = s.state.store.clone();
    let now = time::OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let actor = Actor::policy("test");
    let c = |n: u32| Claims::from_json(claims(n)).unwrap();
    for n in 0..10 {
        store
            .request_approval(&c(n), &policy, now, w)
            .await
            .unwrap();
    }
    let ids: Vec<_> = store
        .list(None, None, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    for (i, id) in ids.iter().enumerate().take(5) {
        let d = if i % 2 == 0 {
            Decision::Approve {
                directory_object_id: format!("o{i}"),
                how: ProvisionedBy::UserCreated,
            }
        } else {
            Decision::Deny {
                reason: "no".into(),
            }
        };
        store
            .decide(*id, &d, &actor, None, None, now)
            .await
            .unwrap();
    }
    // Two requests 8 days old, expired by check-status over HTTP; one requested again.
    let old = now - time::Duration::days(8);
    for n in [20, 21] {
        store
            .request_approval(&c(n), &policy, old, w)
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{}/connectors/check-approval-status", s.base_url()))
            .basic_auth(USER, Some(PASS))
            .json(&claims(n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    store
        .request_approval(&c(21), &policy, now, w)
        .await
        .unwrap();
    let expect = |table: Vec<(String, u64)>| {
        let mut m = std::collections::BTreeMap::new();
        for (k, v) in table {
            m.insert(k, v);
        }
        m
    };
    let table = expect(store.counts().await.unwrap());
    assert_eq!(table.get("pending"), Some(&6), "{table:?}");
    assert_eq!(table.get("approved"), Some(&3));
    assert_eq!(table.get("denied"), Some(&2));
    assert_eq!(table.get("expired"), Some(&1));
    for (status, n) in &table {
        let series = format!("guestlist_requests{{status=\"{status}\"}}");
        assert_eq!(metric(&s, &series).await, *n, "{series}");
    }
    drop(store);
    s.shutdown().await;
    let s = start(&db, |_| {}).await;
    for (status, n) in &table {
        let series = format!("guestlist_requests{{status=\"{status}\"}}");
        assert_eq!(metric(&s, &series).await, *n, "{series} after reopening");
    }
    s.shutdown().await;
}
