//! A `request.escalated` event (issue 14 §2) is a changed request to the live sync: the cached
//! request takes the escalated version (`escalatedAt`), and a fallback approver who never had
//! the request gets it in the queue. Real SQLCipher files.

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
    let mut escalated = known.clone();
    escalated.version = 2;
    escalated.escalated_at = Some(at);
    // Never seen by this approver until it escalated to their role.
    let mut new = request(2, "ben@fabrikam.com", json!({"displayName": "Ben"}), 3);
    new.version = 2;
    new.escalated_at = Some(at);
    let mut batch = Batch::default();
    r.inner
        .apply(&escalated_event(7, &escalated), &mut batch)
        .unwrap();
    r.inner
        .apply(&escalated_event(8, &new), &mut batch)
        .unwrap();
    let cached = cache.request(&known.id.to_string()).unwrap().unwrap();
    assert_eq!(cached.version, 2);
    assert!(cached.escalated_at.is_some());
    let added = cache.request(&new.id.to_string()).unwrap().unwrap();
    assert!(added.escalated_at.is_some());
    assert_eq!(cache.meta("last_event_id").unwrap().as_deref(), Some("8"));
}
