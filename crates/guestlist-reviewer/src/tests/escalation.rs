//! A `request.escalated` event (issue 14 §2) is a changed request to the live sync: the cached
//! request takes the escalated version (`escalatedAt`), and a fallback approver who never had
//! the request gets it in the queue. Real SQLCipher files. Escalation keeps the version (issue
//! 14, stop 22): the cache takes the escalated copy at the same version, from the event or from
//! an incremental sync.

use super::*;
use crate::live::{Batch, SseEvent};
use guestlist_core::model::Event;

fn escalated_event(seq: u64, r: &ApprovalRequest) -> SseEvent {
    let ev = Event::with_request(seq, "request.escalated", r.clone());
    SseEvent {
        id: Some(seq.to_string()),
        event: ev.kind.clone(),
        data: serde_json::to_string(&ev).unwrap(),
        retry: None,
    }
}

#[tokio::test]
async fn a_request_escalated_event_updates_or_adds_the_cached_request() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let cache = &r.inner.cache;
    let known = request(1, "ana@fabrikam.com", json!({"displayName": "Ana"}), 3);
    cache
        .store_pending(std::slice::from_ref(&known), true)
        .unwrap();
    let at = OffsetDateTime::now_utc();
    // Escalation keeps the version: the cache must take the escalated copy all the same.
    let mut escalated = known.clone();
    escalated.escalated_at = Some(at);
    // Never seen by this approver until it escalated to their role.
    let mut new = request(2, "ben@fabrikam.com", json!({"displayName": "Ben"}), 3);
    new.escalated_at = Some(at);
    let mut batch = Batch::default();
    r.inner
        .apply(&escalated_event(7, &escalated), &mut batch)
        .unwrap();
    r.inner
        .apply(&escalated_event(8, &new), &mut batch)
        .unwrap();
    let cached = cache.request(&known.id.to_string()).unwrap().unwrap();
    assert_eq!(cached.version, known.version);
    assert!(cached.escalated_at.is_some());
    // The same copy again (an incremental sync after the event) changes nothing.
    let (added, updated, _) = cache
        .store_pending(std::slice::from_ref(&escalated), false)
        .unwrap();
    assert_eq!((added, updated), (0, 0));
    let added = cache.request(&new.id.to_string()).unwrap().unwrap();
    assert!(added.escalated_at.is_some());
    assert_eq!(cache.meta("last_event_id").unwrap().as_deref(), Some("8"));
}

/// The queue list's "Escalated" marker and filter (issue 14, stop 22): each item carries
/// `escalatedAt`, and `escalatedOnly` keeps the escalated requests only.
#[tokio::test]
async fn the_queue_marks_and_filters_escalated_requests() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path()).await;
    let cache = &r.inner.cache;
    let plain = request(1, "ana@fabrikam.com", json!({"displayName": "Ana"}), 3);
    let mut late = request(2, "ben@fabrikam.com", json!({"displayName": "Ben"}), 5);
    late.escalated_at = Some(OffsetDateTime::now_utc());
    cache
        .store_pending(&[plain.clone(), late.clone()], true)
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let all = cache.query(&crate::QueueQuery::default(), now).unwrap();
    assert_eq!(all.items.len(), 2);
    let marked: Vec<(&str, bool)> = all
        .items
        .iter()
        .map(|i| (i.email.as_str(), i.escalated_at.is_some()))
        .collect();
    assert_eq!(
        marked,
        vec![("ben@fabrikam.com", true), ("ana@fabrikam.com", false)]
    );
    let only = cache
        .query(
            &crate::QueueQuery {
                escalated_only: true,
                ..Default::default()
            },
            now,
        )
        .unwrap();
    let ids: Vec<String> = only.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, vec![late.id.to_string()]);
    assert_eq!(only.total_matching, 1);
}
