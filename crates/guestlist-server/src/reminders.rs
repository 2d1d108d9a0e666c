//! Server-side notifications, part 2: reminders. With `notifications.webhook_url` and
//! `notifications.remind_after_hours` set, a periodic task (every
//! `notifications.reminder_interval_seconds`) posts one message listing the requests pending
//! longer than that many hours to the webhook ([`crate::webhook`], same template and retries).
//! A request is reminded about at most once per `remind_after_hours`, across restarts: when it was
//! last reminded about is kept in the store (`Store::reminded`, `Store::record_reminded`, table
//! `reminded`). Ends when the server's event sender is dropped.

use std::sync::Arc;
use std::time::Duration;

use guestlist_core::model::{ApprovalRequest, Event, Status};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::{Store, StoreError};
use crate::webhook::{Notifications, Sender};

/// The pending requests older than `hours` at `now` that were not reminded about in the last
/// `hours`; they are then recorded as reminded at `now` in the store (table `reminded`), so a
/// restarted server does not remind about them again before `hours` have passed. Records of
/// requests that are no longer pending are dropped at the same time.
///
/// Errors: [`StoreError`] on database failure.
pub fn due(
    store: &Store,
    hours: u64,
    now: OffsetDateTime,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let age = time::Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX / 3600));
    let reminded = store.reminded()?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(Some(Status::Pending), None, cursor.as_deref(), 500)?;
        for r in page.items {
            if r.created_at + age <= now && reminded.get(&r.id).is_none_or(|t| *t + age <= now) {
                out.push(r);
            }
        }
        match page.next_cursor {
            Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
            _ => break,
        }
    }
    let ids: Vec<Uuid> = out.iter().map(|r| r.id).collect();
    store.record_reminded(&ids, now)?;
    Ok(out)
}

/// Starts the reminder task when a webhook and `remind_after_hours` are configured.
pub fn start(config: &Notifications, store: Arc<Store>, mut events: broadcast::Receiver<Event>) {
    let (Some(sender), Some(hours)) = (Sender::new(config), config.remind_after_hours) else {
        return;
    };
    let every = Duration::from_secs(config.reminder_interval_seconds.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                e = events.recv() => match e {
                    Err(broadcast::error::RecvError::Closed) => return,
                    _ => continue,
                },
            }
            let st = store.clone();
            let now = OffsetDateTime::now_utc();
            let due = match tokio::task::spawn_blocking(move || due(&st, hours, now)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "reminder check failed");
                    continue;
                }
            };
            match due {
                Ok(d) if !d.is_empty() => {
                    let body = sender.reminder_message(&d, hours);
                    let s = sender.clone();
                    tokio::spawn(async move { s.deliver(&body).await });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reminder check failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::connector::Claims;
    use guestlist_core::model::{Actor, Decision, ProvisionedBy};
    use guestlist_core::policy::Policy;
    use serde_json::json;

    fn ask(store: &Store, email: &str, at: OffsetDateTime) -> Uuid {
        let c = Claims::from_json(json!({"email": email, "displayName": email})).unwrap();
        store
            .request_approval(&c, &Policy::default(), at, time::Duration::seconds(120))
            .unwrap();
        store.list(None, Some(email), None, 10).unwrap().items[0].id
    }

    #[test]
    fn requests_pending_too_long_are_reminded_once_per_period_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let mut store = Store::open(&db).unwrap();
        let t0 = OffsetDateTime::now_utc();
        let h = time::Duration::hours(1);
        let a = ask(&store, "a@fabrikam.com", t0);
        let b = ask(&store, "b@fabrikam.com", t0 + h * 10);
        let ids = |v: Vec<ApprovalRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert!(due(&store, 24, t0 + h * 23).unwrap().is_empty());
        assert_eq!(ids(due(&store, 24, t0 + h * 25).unwrap()), vec![a]);
        // The record is in the database: a new store on the same file (a restarted server)
        // does not remind about `a` again.
        drop(store);
        store = Store::open(&db).unwrap();
        assert!(
            due(&store, 24, t0 + h * 30).unwrap().is_empty(),
            "a was reminded 5 h ago; b is 20 h old"
        );
        assert_eq!(ids(due(&store, 24, t0 + h * 35).unwrap()), vec![b]);
        // Decided requests are never reminded about.
        let current = store.get(a).unwrap();
        store
            .decide(
                a,
                &Decision::Approve {
                    directory_object_id: "u1".into(),
                    how: ProvisionedBy::UserCreated,
                },
                &Actor {
                    kind: "user".into(),
                    id: "o".into(),
                    name: "Ada".into(),
                    username: None,
                    client: None,
                },
                Some(current.version),
                Some("k1"),
                t0 + h * 40,
            )
            .unwrap();
        assert!(due(&store, 24, t0 + h * 50).unwrap().is_empty());
        assert_eq!(ids(due(&store, 24, t0 + h * 60).unwrap()), vec![b]);
        // Only pending requests keep a record.
        let kept: Vec<Uuid> = store.reminded().unwrap().into_keys().collect();
        assert_eq!(kept, vec![b]);
    }
}
