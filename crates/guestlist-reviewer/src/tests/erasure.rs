//! Requests erased on the approval service leave the cache (issue 12 item 8): through a
//! `since=` sync page's `erased` ids and through a `request.erased` event. Real SQLCipher files.

use super::*;
use crate::cache::Cache;
use crate::live::{Batch, SseEvent};
use crate::sync::Fetched;
use guestlist_core::model::Event;

fn person(id: u128, email: &str, name: &str) -> ApprovalRequest {
    request(id, email, json!({ "displayName": name }), 1)
}

/// One request per outbox situation: 1 only queued, 2 decided and unsent, 3 approved with the
/// account already created (unsent report), 4 reported, 5 decided but not erased.
fn seed(cache: &Cache) -> Vec<String> {
    let reqs: Vec<ApprovalRequest> = (1..=5)
        .map(|n| {
            person(
                n,
                &format!("erased{n}@fabrikam.com"),
                &format!("Erik Erased{n}"),
            )
        })
        .collect();
    cache.store_pending(&reqs, true).unwrap();
    let now = OffsetDateTime::now_utc();
    cache
        .enqueue(
            &reqs[1],
            DecisionKind::Deny,
            Some("Qwertyuiop sponsor"),
            now,
        )
        .unwrap();
    let mut provisioned = cache
        .enqueue(&reqs[2], DecisionKind::Approve, None, now)
        .unwrap();
    provisioned.state = OutboxState::Provisioned;
    provisioned.directory_object_id = Some("oid-333".into());
    provisioned.write_started = true;
    cache.save_outbox(&provisioned, now).unwrap();
    let mut reported = cache
        .enqueue(&reqs[3], DecisionKind::Deny, Some("no"), now)
        .unwrap();
    reported.state = OutboxState::Reported;
    cache.save_outbox(&reported, now).unwrap();
    cache
        .enqueue(&reqs[4], DecisionKind::Approve, None, now)
        .unwrap();
    reqs.iter().map(|r| r.id.to_string()).collect()
}

/// What is left of erased requests 1–4 and untouched request 5.
fn assert_erased(cache: &Cache, ids: &[String]) {
    assert_eq!(cache.request_ids().unwrap(), [ids[4].clone()]);
    assert!(cache.outbox(&ids[0]).unwrap().is_none());
    assert!(
        cache.outbox(&ids[3]).unwrap().is_none(),
        "reported item deleted"
    );
    for (n, oid) in [(1, None), (2, Some("oid-333"))] {
        let row = cache.outbox(&ids[n]).unwrap().unwrap();
        assert_eq!(row.state, OutboxState::Failed);
        let err = row.last_error.clone().unwrap();
        assert_eq!(err.code, codes::ERASED);
        assert!(err.message.contains("cannot apply"), "{}", err.message);
        match oid {
            Some(o) => assert!(err.message.contains(o) && err.message.contains("delete it")),
            None => assert!(err.message.contains("Nothing was written")),
        }
        assert_eq!(row.directory_object_id.as_deref(), oid);
        // Nothing personal is left in the item.
        assert!(row.label.starts_with("Erased request "), "{}", row.label);
        assert!(row.request.claims.is_empty() && row.request.key.email.is_empty());
        assert_eq!((row.reason.as_deref(), row.current.as_ref()), (None, None));
        let text = serde_json::to_string(&row.item()).unwrap();
        assert!(
            !text.contains("Erik") && !text.contains("@fabrikam"),
            "{text}"
        );
    }
    let untouched = cache.outbox(&ids[4]).unwrap().unwrap();
    assert_eq!(untouched.state, OutboxState::Queued);
}

#[tokio::test]
async fn a_since_sync_drops_erased_requests_and_fails_their_unsent_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let r = open_in(dir.path(), Arc::new(MemoryStore::new())).await;
    let cache = &r.inner.cache;
    let ids = seed(cache);
    let mut erased: Vec<String> = ids[..4].to_vec();
    erased.push(uuid::Uuid::from_u128(999).to_string());
    let fetched = Fetched {
        items: vec![],
        pages: 1,
        mark: Some(7),
        erased,
    };
    let rep = r
        .apply_sync(
            fetched,
            false,
            "http://api".into(),
            std::time::Instant::now(),
        )
        .await
        .unwrap();
    assert_eq!((rep.removed, rep.pending), (4, 1));
    assert_erased(cache, &ids);
    let st = r.status().await;
    assert_eq!(
        st.outbox
            .iter()
            .filter(|o| o
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == codes::ERASED))
            .count(),
        2,
        "the approver sees both failed decisions"
    );

    // The same erasure arriving again (the stream, then a sync) changes nothing.
    let again = cache
        .erase_requests(&ids[..4], OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(again, crate::cache::ErasedReport::default());
    assert_erased(cache, &ids);
}

#[tokio::test]
async fn a_request_erased_event_drops_the_request_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let r = open_in(dir.path(), Arc::new(MemoryStore::new())).await;
    let cache = &r.inner.cache;
    let ids = seed(cache);
    let mut batch = Batch::default();
    for (n, id) in ids[..4].iter().enumerate() {
        let ev = Event::erased(40 + n as u64, id.parse().unwrap());
        let sse = SseEvent {
            id: Some(ev.seq.to_string()),
            event: ev.kind.clone(),
            data: serde_json::to_string(&ev).unwrap(),
            retry: None,
        };
        r.inner.apply(&sse, &mut batch).unwrap();
    }
    assert_erased(cache, &ids);
    assert_eq!(cache.meta("last_event_id").unwrap().as_deref(), Some("43"));
}
